#!/usr/bin/python3
"""An HTTP/1.1 origin server over plain TCP, Python stdlib only, for tests/unit/test_h1conn.c:
it answers as a real server does and misbehaves as the path says. It prints its port as the
first line of stdout and serves each connection on a thread, keep-alive.

Body bytes of /len, /chunked and /close are PATTERN: byte i is i % 251.

  /len/N          200, Content-Length N
  /chunked/N      200, chunked in 1000-byte chunks, with a trailer field
  /close/N        200, no length, Connection: close: the body ends with the connection
  /len-close/N    200, Content-Length N and "Connection: close", and the connection stays
                  open until the client closes it
  /echo           reads the body (Content-Length or chunked) and answers
                  "<method> <length> <sha256 hex> <content-type>" (Content-Length)
  /100/N          "100 Continue", "103 Early Hints", then as /len/N
  /dribble/N      as /100/N without the 103, in pieces 20 ms apart (TCP_NODELAY, so each
                  is a read of its own at the client): the interim head cut in two, the
                  final one cut mid-line, its end sent with the body's first bytes
  /bighead        300 KiB of header lines
  /manyheaders    600 header lines
  /garbage        a line that is no status line
  /cut/N          Content-Length N, half of it, then the close
  /early          413 at once without reading the body, Connection: close; then reads
                  and drops whatever comes, until the client closes
  /second-dies    answers, keep-alive; the next request on this connection gets the close
  /head           Content-Length 5 and no body (a HEAD's answer)
  /304            304 with a Content-Length and no body
"""
import hashlib
import socket
import sys
import threading
import time


def pattern(n):
    return bytes(i % 251 for i in range(n))


def read_head(conn, buf):
    while b"\r\n\r\n" not in buf:
        data = conn.recv(65536)
        if not data:
            return None, buf
        buf += data
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head.decode("latin-1"), rest


def read_body(conn, headers, rest):
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(rest) < n:
            data = conn.recv(65536)
            if not data:
                raise EOFError
            rest += data
        return rest[:n], rest[n:]
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            while b"\r\n" not in rest:
                rest += conn.recv(65536)
            line, rest = rest.split(b"\r\n", 1)
            size = int(line.split(b";")[0], 16)
            while len(rest) < size + 2:
                rest += conn.recv(65536)
            body += rest[:size]
            rest = rest[size + 2:]
            if size == 0:
                return body, rest
    return b"", rest


def answer(conn, status, headers, body=b""):
    head = "HTTP/1.1 %s\r\n" % status + "".join("%s: %s\r\n" % h for h in headers) + "\r\n"
    conn.sendall(head.encode("latin-1") + body)


def serve(conn):
    buf = b""
    served = 0
    while True:
        head, buf = read_head(conn, buf)
        if head is None:
            return
        lines = head.split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        parts = path.split("/")
        n = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else 0
        if parts[1] == "second-dies" and served == 1:
            return
        if parts[1] == "early":
            answer(conn, "413 Payload Too Large", [("Content-Length", "0"), ("Connection", "close")])
            while conn.recv(65536):
                pass
            return
        body, buf = read_body(conn, headers, buf)
        served += 1
        if parts[1] == "len":
            answer(conn, "200 OK", [("Content-Length", n)], pattern(n))
        elif parts[1] == "chunked":
            answer(conn, "200 OK", [("Transfer-Encoding", "chunked")])
            data = pattern(n)
            for i in range(0, n, 1000):
                piece = data[i:i + 1000]
                conn.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
            conn.sendall(b"0\r\nX-Trailer: yes\r\n\r\n")
        elif parts[1] == "len-close":
            answer(conn, "200 OK", [("Content-Length", n), ("Connection", "close")], pattern(n))
            while conn.recv(65536):
                pass
            return
        elif parts[1] == "close":
            answer(conn, "200 OK", [("Connection", "close")], pattern(n))
            return
        elif parts[1] == "echo":
            text = "%s %d %s %s" % (method, len(body), hashlib.sha256(body).hexdigest(),
                                    headers.get("content-type", "-"))
            answer(conn, "200 OK", [("Content-Length", len(text))], text.encode())
        elif parts[1] == "100":
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n"
                         b"Link: </a>\r\n\r\n")
            answer(conn, "200 OK", [("Content-Length", n)], pattern(n))
        elif parts[1] == "dribble":
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            final = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n
            data = b"HTTP/1.1 100 Continue\r\n\r\n" + final + pattern(n)
            interim = len(b"HTTP/1.1 100 Continue\r\n\r\n")
            cuts = [0, 12, interim + 20, interim + len(final) - 3, interim + len(final) + 5,
                    len(data)]
            for a, b in zip(cuts, cuts[1:]):
                conn.sendall(data[a:b])
                time.sleep(0.02)
        elif parts[1] == "bighead":
            answer(conn, "200 OK", [("X-Filler-%d" % i, "x" * 1000) for i in range(300)]
                   + [("Content-Length", 0)])
        elif parts[1] == "manyheaders":
            answer(conn, "200 OK", [("X-%d" % i, "v") for i in range(600)]
                   + [("Content-Length", 0)])
        elif parts[1] == "garbage":
            conn.sendall(b"SPDY/9 what\r\n\r\n")
            return
        elif parts[1] == "cut":
            answer(conn, "200 OK", [("Content-Length", n)], pattern(n // 2))
            return
        elif parts[1] == "second-dies":
            answer(conn, "200 OK", [("Content-Length", 2)], b"ok")
        elif parts[1] == "head":
            answer(conn, "200 OK", [("Content-Length", 5)])
        elif parts[1] == "304":
            answer(conn, "304 Not Modified", [("Content-Length", 5)])
        else:
            answer(conn, "404 Not Found", [("Content-Length", 0)])


def handle(conn):
    try:
        serve(conn)
    except (OSError, EOFError, ValueError):
        pass
    finally:
        conn.close()


def main():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    print(srv.getsockname()[1], flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
