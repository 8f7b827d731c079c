#!/usr/bin/python3
"""A misbehaving HTTPS upstream, for the adversarial tests (test_95_adversarial.py).

tests/e2e/upstream.py is a well-behaved server that misbehaves a little on
request; this one writes raw bytes so it can break HTTP the ways a hostile or
broken API server would: never finish a status line, send headers forever,
reset in the middle of a body, answer with a malformed status line, send
interim (1xx) responses, or echo the key in tiny chunks.

    /usr/bin/python3 tests/e2e/hostile_upstream.py --port 0 --cert DIR \
        --ready-file F --log F

DIR holds server.pem and server.key (tools/gen-certs). Binds 127.0.0.1; once
listening, writes the port to the ready file (atomically). Standard library
only; one thread per connection; HTTP/1.1 only (ALPN offers http/1.1).

Log lines (JSON, one per line, appended; the file may be truncated by tests):
  {"event": "connection"}                       a TLS connection was accepted
  {"method", "path", "query", "raw_target", "headers": [[n, v], ...],
   "body_len", "body_complete"}                 a request head (and its body) was read
  {"event": "sent", "path", "bytes", "why"}     a flood or trickle ended (why:
                                                "client_gone", "done" or "stopped")

Modes, chosen by path (any method; query parameters as noted):
  /ok                       200 {"ok": true}, Content-Length, keep-alive
  /close-delimited?size=N   200 without a length, N bytes of "c", then the close ends
                            the body
  /ok-then-idle-close       as /ok, then the connection is closed as a server's idle
                            timeout would (logged as {"event": "idle_closed"})
  /status/NNN               NNN {"status": NNN}
  /hang-status              "HTTP/1.1 200 O" (no line end), then silence
  /hang-headers             a status line and one header, then silence
  /reset-mid-body?size=N&sent=M[&chunked=1][&go=PATH]
                            a 200 head announcing N bytes (or chunked), M bytes
                            of body, then a TCP RST (SO_LINGER 0, no close_notify);
                            with go, the RST waits (at most 10 s) until the file
                            PATH exists: an RST discards what the client has not
                            read yet, so a test that must see the head first
                            says when it has
  /cut-mid-body?size=N&sent=M&how=close|stall[&chunked=1]
                            the same head and M bytes, then the connection is
                            closed (FIN, no close_notify) or falls silent until
                            the client leaves
  /answer-before-body?size=N&sent=M
                            the same head and M bytes as soon as the request
                            head is read, before its body; then the body is read
                            and dropped until the client leaves, nothing more sent
  /endless-headers?delay_ms=D
                            a status line, then "X-Flood-i: ..." lines forever
                            (D ms apart; 0 = as fast as the peer reads)
  /header-flood?size=N[&line=L]
                            a status line, then N bytes of header lines of L
                            bytes each (L=0: one single line of N bytes, no end)
  /bad-status?v=NAME        a malformed status line (see BAD_STATUS), then a
                            plausible head and body, then close
  /interim?codes=100,103    those 1xx responses (103 with a Link header), then
                            200 with body "final"
  /endless-interim?delay_ms=D
                            "HTTP/1.1 100 Continue" heads forever
  /both-lengths             200 with "Content-Length: 5" and
                            "Transfer-Encoding: chunked"; the chunked body is
                            "0123456789" x 10
  /echo-key-chunked?form=F&piece=P&delay_ms=D&app_key=K
                            200, chunked, chunks of P bytes sent D ms apart; the
                            body holds K (the key the broker injected, decoded)
                            in form F: raw | pct (%XX upper) | pct-lower |
                            mixed (every other byte escaped) | gzip (raw, gzip'ed,
                            Content-Encoding: gzip); a trailer "X-Key: K" follows
  /echo-prefix?n=N          400 {"error": {"code": "Bad", "message": "bad request: Q"}}
                            where Q is the first N characters of the raw query
                            string: an honest server that truncates what it echoes
  anything else             404 {"error": ...}
"""

import argparse
import gzip
import json
import os
import select
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse

from upstream import RequestLog  # the same JSON-lines log as the ordinary upstream

BAD_STATUS = {
    "no-code": b"HTTP/1.1 OK\r\n",
    "two-digits": b"HTTP/1.1 20 OK\r\n",
    "four-digits": b"HTTP/1.1 2000 OK\r\n",
    "negative": b"HTTP/1.1 -200 OK\r\n",
    "letters": b"HTTP/1.1 2x0 OK\r\n",
    "not-http": b"FOO/1.1 200 OK\r\n",
    "garbage": b"\x16\x03\x01garbage\r\n",
    "version-9": b"HTTP/9.9 200 OK\r\n",
}


class Gone(Exception):
    """The client went away."""


class Conn:
    def __init__(self, sock, log, stopping):
        self.sock = sock
        self.log = log
        self.stopping = stopping
        self.buf = b""

    # -- reading -----------------------------------------------------------------

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise Gone()
        self.buf += data

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > 1 << 20:
                raise Gone()
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append([name, value.strip()])
        return method, target, headers

    def read_body(self, headers):
        names = {k.lower(): v for k, v in headers}
        if names.get("transfer-encoding", "").lower().endswith("chunked"):
            total = 0
            while True:
                while b"\r\n" not in self.buf:
                    self._fill()
                line, self.buf = self.buf.split(b"\r\n", 1)
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while True:
                        while b"\r\n" not in self.buf:
                            self._fill()
                        line, self.buf = self.buf.split(b"\r\n", 1)
                        if not line:
                            return total
                while len(self.buf) < size + 2:
                    self._fill()
                self.buf = self.buf[size + 2:]
                total += size
        n = int(names.get("content-length", "0") or 0)
        while len(self.buf) < n:
            self._fill()
        self.buf = self.buf[n:]
        return n

    # -- writing -----------------------------------------------------------------

    def send(self, data):
        try:
            self.sock.sendall(data)
        except (OSError, ValueError):
            raise Gone()

    def client_left(self, timeout=0.0):
        """True if the client closed (or sent more) within timeout seconds."""
        try:
            r, _, _ = select.select([self.sock], [], [], timeout)
        except (OSError, ValueError):
            return True
        if not r:
            return False
        try:
            self.sock.setblocking(False)
            try:
                data = self.sock.recv(65536)
            finally:
                self.sock.setblocking(True)
        except ssl.SSLWantReadError:
            return False
        except (OSError, ValueError):
            return True
        if not data:
            return True
        self.buf += data
        return False

    def hold(self):
        """Says nothing until the client leaves or the server stops."""
        while not self.stopping.is_set():
            if self.client_left(0.1):
                return

    def respond(self, status, body, headers=(), reason=b"X"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        head = b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % (
            status, reason, len(body))
        for k, v in headers:
            head += b"%s: %s\r\n" % (k.encode(), v.encode())
        self.send(head + b"\r\n" + body)

    def reset(self):
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass


def serve_connection(raw, tls, log, stopping):
    raw.settimeout(10)
    try:
        sock = tls.wrap_socket(raw, server_side=True)
    except (OSError, ValueError):
        raw.close()
        return
    sock.settimeout(None)
    log.write({"event": "connection"})
    c = Conn(sock, log, stopping)
    try:
        while not stopping.is_set():
            try:
                method, target, headers = c.read_head()
            except (Gone, OSError, ValueError):
                return
            path, _, query = target.partition("?")
            if "://" in path:
                path = urllib.parse.urlsplit(target).path
            record = {"method": method, "path": path, "query": query, "raw_target": target,
                      "headers": headers, "body_len": 0, "body_complete": False}
            if path == "/answer-before-body":
                log.write(record)
                params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
                c.send(partial_response(params))
                c.hold()
                return
            try:
                record["body_len"] = c.read_body(headers)
                record["body_complete"] = True
            except (Gone, OSError, ValueError):
                log.write(record)
                return
            log.write(record)
            params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
            params["_raw_query"] = query
            try:
                if not dispatch(c, method, path, params):
                    return
            except Gone:
                return
    finally:
        try:
            sock.close()
        except OSError:
            pass


def trickle(c, path, pieces, delay):
    """Sends pieces (an iterable of bytes) delay seconds apart until they run
    out, the client leaves or the server stops; logs how it ended."""
    sent, why = 0, "done"
    try:
        for piece in pieces:
            if c.stopping.is_set():
                why = "stopped"
                break
            c.send(piece)
            sent += len(piece)
            if delay and c.client_left(delay):
                why = "client_gone"
                break
    except Gone:
        why = "client_gone"
    c.log.write({"event": "sent", "path": path, "bytes": sent, "why": why})


def key_body(key, form):
    k = key.encode()
    if form == "raw" or form == "gzip":
        enc = k
    elif form == "pct":
        enc = "".join("%%%02X" % b for b in k).encode()
    elif form == "pct-lower":
        enc = "".join("%%%02x" % b for b in k).encode()
    elif form == "mixed":
        enc = "".join(("%%%02x" % b) if i % 2 else chr(b) for i, b in enumerate(k)).encode()
    else:
        raise ValueError(form)
    return b'{"echo": "before ' + enc + b' middle ' + enc + enc + b' after"}'


def partial_response(p):
    """A 200 head announcing size=N bytes (default 100000; or chunked=1) and the
    first sent=M of them (default 5000), all "r"."""
    size, sent = int(p.get("size", "100000")), int(p.get("sent", "5000"))
    if p.get("chunked") == "1":
        return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
                b"%x\r\n" % sent + b"r" * sent + b"\r\n")
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + b"r" * sent


def dispatch(c, method, path, p):
    """Answers one request; returns False when the connection must end."""
    if path == "/ok":
        c.respond(200, {"ok": True})
        return True
    if path == "/close-delimited":
        c.send(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"c" * int(p.get("size", "0")))
        return False
    if path == "/ok-then-idle-close":
        c.respond(200, {"ok": True})
        c.log.write({"event": "idle_closed"})
        return False
    if path.startswith("/status/"):
        status = int(path[len("/status/"):])
        c.respond(status, {"status": status})
        return True
    if path == "/hang-status":
        c.send(b"HTTP/1.1 200 O")
        c.hold()
        return False
    if path == "/hang-headers":
        c.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n")
        c.hold()
        return False
    if path == "/reset-mid-body":
        c.send(partial_response(p))
        if p.get("go"):
            deadline = time.monotonic() + 10
            while not os.path.exists(p["go"]) and time.monotonic() < deadline:
                time.sleep(0.01)
        else:
            time.sleep(0.05)  # let the bytes leave before the RST discards them
        c.reset()
        return False
    if path == "/cut-mid-body":
        c.send(partial_response(p))
        if p.get("how") == "stall":
            c.hold()
        return False
    if path == "/endless-headers":
        delay = int(p.get("delay_ms", "0")) / 1000.0

        def lines():
            yield b"HTTP/1.1 200 OK\r\n"
            i = 0
            while True:
                n = 1 if delay else 500
                block = b"".join(b"X-Flood-%d: %s\r\n" % (i + j, b"v" * 40) for j in range(n))
                i += n
                yield block

        trickle(c, path, lines(), delay)
        return False
    if path == "/header-flood":
        size, line = int(p.get("size", str(100 << 20))), int(p.get("line", "100"))

        def blocks():
            yield b"HTTP/1.1 200 OK\r\n"
            if line == 0:
                block = b"X-Huge: " + b"h" * (64 * 1024 - 8)
            else:
                one = b"X-F: " + b"f" * max(0, line - 7) + b"\r\n"
                block = one * max(1, (64 * 1024) // len(one))
            left = size
            while left > 0:
                yield block[:left]
                left -= len(block)

        trickle(c, path, blocks(), 0)
        return False
    if path == "/bad-status":
        c.send(BAD_STATUS[p.get("v", "garbage")] +
               b"Content-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
        return False
    if path == "/interim":
        out = b""
        for code in (int(x) for x in p.get("codes", "100,103").split(",")):
            if code == 103:
                out += b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
            elif code == 101:
                out += (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        b"Connection: Upgrade\r\n\r\n")
            else:
                out += b"HTTP/1.1 %d Interim\r\n\r\n" % code
        out += b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nfinal"
        c.send(out)
        return True
    if path == "/endless-interim":
        delay = int(p.get("delay_ms", "100")) / 1000.0
        one = b"HTTP/1.1 100 Continue\r\n\r\n"

        def heads():
            while True:
                yield one if delay else one * 2000

        trickle(c, path, heads(), delay)
        return False
    if path == "/both-lengths":
        body = b"0123456789" * 10
        c.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(body) + body +
               b"\r\n0\r\n\r\n")
        return True
    if path == "/echo-key-chunked":
        key, form = p.get("app_key", ""), p.get("form", "raw")
        piece, delay = max(1, int(p.get("piece", "1"))), int(p.get("delay_ms", "0")) / 1000.0
        body = key_body(key, form)
        extra = b""
        if form == "gzip":
            body = gzip.compress(body)
            extra = b"Content-Encoding: gzip\r\n"
        c.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra +
               b"Transfer-Encoding: chunked\r\nTrailer: X-Key\r\n\r\n")
        chunks = [b"%x\r\n%s\r\n" % (len(body[i:i + piece]), body[i:i + piece])
                  for i in range(0, len(body), piece)]
        chunks.append(b"0\r\nX-Key: " + key.encode() + b"\r\n\r\n")
        trickle(c, path, chunks, delay)
        return True
    if path == "/echo-prefix":
        query = p.get("_raw_query", "")
        n = int(p.get("n", "0"))
        c.respond(400, {"error": {"code": "Bad", "message": "bad request: " + query[:n]}})
        return True
    c.respond(404, {"error": {"code": "NotFound", "message": "no such path"}})
    return True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cert", required=True, help="directory with server.pem, server.key")
    ap.add_argument("--ready-file", required=True)
    ap.add_argument("--log", required=True)
    args = ap.parse_args(argv)

    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(os.path.join(args.cert, "server.pem"),
                        os.path.join(args.cert, "server.key"))
    tls.set_alpn_protocols(["http/1.1"])
    log = RequestLog(args.log)
    stopping = threading.Event()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))
    listener.listen(256)
    listener.settimeout(0.1)

    def stop(signum, frame):
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    tmp = args.ready_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % listener.getsockname()[1])
    os.replace(tmp, args.ready_file)
    while not stopping.is_set():
        try:
            raw, _ = listener.accept()
        except socket.timeout:
            continue
        except OSError:
            if stopping.is_set():
                break
            raise
        threading.Thread(target=serve_connection, args=(raw, tls, log, stopping),
                         daemon=True).start()
    listener.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
