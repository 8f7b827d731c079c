#!/usr/bin/python3
"""A TLS (or plain TCP) server for tests/unit/test_netconn.c.

    tls_peer.py MODE [--cert PEM --key PEM] [--plain] [--alpn LIST] [--tls12 | --tls11]
                     [--bytes N] [--answer TEXT] [--listen ADDR]

Listens on ADDR (127.0.0.1), port chosen by the kernel, prints the port on stdout, then serves
every connection in its own thread until killed, or until its stdin ends (the test
holds the other end: a test that dies takes its peers with it). MODE, per connection:

  echo       sends back what it reads; at EOF closes with close_notify
  info       first sends "alpn=<picked or none> reused=<0|1> version=<TLS version>
             sni=<server name or none>\\n", then echoes
  send       sends N random bytes, then the 64 hex digits of their SHA-256, then
             close_notify
  sink       reads N bytes slowly (a pause every 64 KiB), then sends the hex SHA-256
             of them
  raw-close  sends "bye\\n", then closes the TCP connection without close_notify
  garbage    sends "hi\\n", then a TLS application-data record that cannot decrypt
  proxy      a fake HTTP proxy: reads a request head, answers TEXT (with \\r \\n
             escapes; "" answers nothing and closes), then echoes (plain only)
"""
import argparse
import hashlib
import os
import socket
import socketserver
import ssl
import sys
import threading
import time


def tls_context(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    if args.tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if args.tls11:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # else OpenSSL 3 refuses to speak it at all
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    if args.alpn:
        ctx.set_alpn_protocols(args.alpn.split(","))
    ctx.sni_callback = remember_sni
    return ctx


def remember_sni(sock, name, ctx):
    sock.sni_name = name


def recv_exact(sock, n):
    got = bytearray()
    while len(got) < n:
        piece = sock.recv(min(65536, n - len(got)))
        if not piece:
            break
        got += piece
    return bytes(got)


def echo(sock):
    while True:
        data = sock.recv(65536)
        if not data:
            return
        sock.sendall(data)


def close_notify(sock):
    if isinstance(sock, ssl.SSLSocket):
        try:
            sock = sock.unwrap()
        except (OSError, ssl.SSLError):
            pass
    sock.close()


def serve(sock, args):
    mode = args.mode
    if mode == "echo":
        echo(sock)
        close_notify(sock)
    elif mode == "info":
        alpn = sock.selected_alpn_protocol() or "none"
        line = "alpn=%s reused=%d version=%s sni=%s\n" % (
            alpn, int(sock.session_reused), sock.version(), getattr(sock, "sni_name", None) or "none")
        sock.sendall(line.encode())
        echo(sock)
        close_notify(sock)
    elif mode == "send":
        data = os.urandom(args.bytes)
        sock.sendall(data)
        sock.sendall(hashlib.sha256(data).hexdigest().encode())
        close_notify(sock)
    elif mode == "sink":
        digest = hashlib.sha256()
        left = args.bytes
        while left > 0:
            piece = sock.recv(min(65536, left))
            if not piece:
                break
            digest.update(piece)
            left -= len(piece)
            time.sleep(0.002)  # the slow reader: the client's queue must fill and drain
        sock.sendall(digest.hexdigest().encode())
        echo(sock)
        close_notify(sock)
    elif mode == "raw-close":
        sock.sendall(b"bye\n")
        # SSLSocket.shutdown drops the TLS layer without a close_notify.
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
    elif mode == "garbage":
        sock.sendall(b"hi\n")
        raw = socket.socket(fileno=os.dup(sock.fileno()))
        raw.sendall(b"\x17\x03\x03\x00\x20" + os.urandom(32))
        raw.close()
        echo(sock)
    elif mode == "proxy":
        head = b""
        while b"\r\n\r\n" not in head:
            piece = sock.recv(4096)
            if not piece:
                return
            head += piece
        answer = args.answer.encode().decode("unicode_escape").encode("latin-1")
        if not answer:
            sock.close()
            return
        sock.sendall(answer)
        echo(sock)
        sock.close()


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        try:
            if not self.server.args.plain:
                sock = self.server.ctx.wrap_socket(sock, server_side=True)
            serve(sock, self.server.args)
        except (OSError, ssl.SSLError, ValueError):
            pass  # the client under test went away or refused us: expected in tests


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def exit_at_eof():
    while sys.stdin.buffer.read(4096):
        pass
    os._exit(0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--plain", action="store_true")
    p.add_argument("--alpn")
    p.add_argument("--tls12", action="store_true")
    p.add_argument("--tls11", action="store_true")
    p.add_argument("--bytes", type=int, default=0)
    p.add_argument("--answer", default="")
    p.add_argument("--listen", default="127.0.0.1")
    args = p.parse_args()
    server = Server((args.listen, 0), Handler)
    server.args = args
    server.ctx = None if args.plain else tls_context(args)
    print(server.server_address[1], flush=True)
    sys.stdout.close()
    threading.Thread(target=exit_at_eof, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
