"""Test peers for webfetch (RUNNER-OPS.md 8): a real HTTP/1.1 server (Python's
http.server, plain and TLS) with the routes the tests need, and a small forward proxy
(absolute-form GET and CONNECT) whose name table stands for a proxy's own DNS.

Both run in threads of the test process, bind 127.0.0.1, and record what they were
asked, so a test can check what reached them.

Routes of WebPeer (GET):
  /html                 a small HTML page (text/html; charset=utf-8)
  /text, /json          text/plain, application/json
  /headers              200 JSON: the request's headers, as [[name, value], ...]
  /status/N             status N with the body "status N body"
  /redirect/N[?code=C]  C (302) to /redirect/N-1 while N > 0, then 200 "done"
  /loop                 302 to itself
  /goto?u=URL[&code=C]  C (302) to URL
  /nolocation           302 without a Location: a response, not a redirect
  /gzip, /deflate, /br  GEN_TEXT encoded so (Content-Encoding), Content-Length set
  /gzip-bomb            50 MiB of zeros gzip'ed (about 50 KiB)
  /chunked              GEN_TEXT in 97 chunks (Transfer-Encoding: chunked)
  /slow?size=N&piece=P&delay_ms=D
                        Content-Length N, pieces of P bytes, D ms apart
  /big?size=N[&chunked=1]
                        N bytes 'a'..'z' repeated, Content-Length or chunked
  /stall?sent=M         Content-Length 1 MiB, M bytes, then nothing until the
                        client leaves
  /p/NAME               a page the test put in .pages[NAME] = (content_type, bytes)
"""

import brotli
import gzip
import http.server
import json
import socket
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse
import zlib

GEN_TEXT = b"".join(b"line %05d of the generated text\n" % i for i in range(4000))


def pattern(n):
    unit = bytes(range(ord("a"), ord("z") + 1))
    return (unit * (n // len(unit) + 1))[:n]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _send(self, status, body, ctype="text/plain", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, to, code=302):
        self.send_response(code)
        self.send_header("Location", to)
        self.send_header("Content-Length", "9")
        self.end_headers()
        self.wfile.write(b"redirect\n")

    def _chunked(self, pieces, ctype="text/plain"):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for p in pieces:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(p), p))
        self.wfile.write(b"0\r\n\r\n")

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        p = u.path
        self.server.peer.seen.append({"path": self.path, "headers": list(self.headers.items())})
        try:
            self._route(p, q)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _route(self, p, q):
        if p == "/html":
            self._send(200, b"<html><head><title>T</title></head><body><h1>Hello</h1>"
                       b"<p>A <a href=\"/x\">link</a>.</p></body></html>",
                       "text/html; charset=utf-8")
        elif p == "/text":
            self._send(200, b"plain text body\n")
        elif p == "/json":
            self._send(200, b'{"a": 1}', "application/json")
        elif p == "/headers":
            self._send(200, json.dumps(list(self.headers.items())).encode(), "application/json")
        elif p.startswith("/status/"):
            n = int(p.split("/")[2])
            self._send(n, b"status %d body" % n)
        elif p.startswith("/redirect/"):
            n = int(p.split("/")[2])
            if n > 0:
                self._redirect("/redirect/%d%s" % (n - 1, "?code=" + q["code"] if "code" in q
                                                   else ""), int(q.get("code", 302)))
            else:
                self._send(200, b"done")
        elif p == "/loop":
            self._redirect("/loop")
        elif p == "/goto":
            self._redirect(q["u"], int(q.get("code", 302)))
        elif p == "/nolocation":
            self._send(302, b"no location here")
        elif p == "/gzip":
            self._send(200, gzip.compress(GEN_TEXT), headers=[("Content-Encoding", "gzip")])
        elif p == "/deflate":
            self._send(200, zlib.compress(GEN_TEXT), headers=[("Content-Encoding", "deflate")])
        elif p == "/br":
            self._send(200, brotli.compress(GEN_TEXT), headers=[("Content-Encoding", "br")])
        elif p == "/gzip-bomb":
            self._send(200, self.server.peer.bomb(), headers=[("Content-Encoding", "gzip")])
        elif p == "/chunked":
            step = len(GEN_TEXT) // 96
            self._chunked([GEN_TEXT[i:i + step] for i in range(0, len(GEN_TEXT), step)])
        elif p == "/slow":
            size, piece = int(q["size"]), int(q.get("piece", 1024))
            body = pattern(size)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            for i in range(0, size, piece):
                self.wfile.write(body[i:i + piece])
                self.wfile.flush()
                time.sleep(int(q.get("delay_ms", 50)) / 1000)
        elif p == "/big":
            body = pattern(int(q["size"]))
            if q.get("chunked"):
                self._chunked([body[i:i + 65536] for i in range(0, len(body), 65536)])
            else:
                self._send(200, body)
        elif p == "/stall":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(1 << 20))
            self.end_headers()
            self.wfile.write(pattern(int(q.get("sent", 5000))))
            self.wfile.flush()
            # Until the client leaves (or the peer stops): a read returns b"" then.
            self.connection.settimeout(0.2)
            while not self.server.peer.stopping:
                try:
                    if self.connection.recv(1) == b"":
                        break
                except socket.timeout:
                    continue
            self.server.peer.stall_ended.set()
        elif p.startswith("/p/") and p[3:] in self.server.peer.pages:
            ctype, body = self.server.peer.pages[p[3:]]
            self._send(200, body, ctype)
        else:
            self._send(404, b"not found")


class _QuietWhenClientsGo:
    """A client that goes away mid-answer (a test's command cut short, a fetch
    abandoned) is not an error of the peer: no traceback in the test log."""

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (OSError, ValueError)):
            return
        super().handle_error(request, client_address)


class _Server(_QuietWhenClientsGo, http.server.ThreadingHTTPServer):
    daemon_threads = True


class WebPeer:
    """WebPeer(certs=None): serves on 127.0.0.1; .url(path) is http://, .surl(path)
    https:// (with certs: tools/gen-certs's server.pem/server.key)."""

    def __init__(self, certs=None):
        self.seen = []
        self.pages = {}
        self.stopping = False
        self.stall_ended = threading.Event()
        self._bomb = None
        self._servers = []
        self.port = self._serve(None)
        self.sport = self._serve(certs) if certs is not None else None

    def _serve(self, certs):
        srv = _Server(("127.0.0.1", 0), _Handler)
        srv.peer = self
        if certs is not None:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(certs.server_cert, certs.server_key)
            srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self._servers.append(srv)
        return srv.server_address[1]

    def bomb(self):
        if self._bomb is None:
            self._bomb = gzip.compress(bytes(50 << 20), compresslevel=9)
        return self._bomb

    def url(self, path, host="127.0.0.1"):
        return "http://%s:%d%s" % (host, self.port, path)

    def surl(self, path, host="127.0.0.1"):
        return "https://%s:%d%s" % (host, self.sport, path)

    def stop(self):
        self.stopping = True
        for s in self._servers:
            s.shutdown()
            s.server_close()


class _ProxyHandler(socketserver.BaseRequestHandler):
    def handle(self):
        c = self.request
        f = c.makefile("rb")
        line = f.readline().decode("latin-1").strip()
        head = []
        while True:
            h = f.readline()
            if h in (b"\r\n", b"\n", b""):
                break
            head.append(h)
        method, target, _ = line.split(" ", 2)
        proxy = self.server.proxy
        proxy.seen.append((method, target))
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
        else:
            u = urllib.parse.urlsplit(target)
            host, port = u.hostname, u.port or 80
        origin = proxy.names.get(host)
        if origin is None:
            c.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 14\r\n"
                      b"Connection: close\r\n\r\nunknown host\r\n")
            return
        up = socket.create_connection(origin)
        if method == "CONNECT":
            c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            u = urllib.parse.urlsplit(target)
            path = (u.path or "/") + ("?" + u.query if u.query else "")
            up.sendall(("%s %s HTTP/1.1\r\n" % (method, path)).encode() + b"".join(
                h for h in head if not h.lower().startswith(b"connection:")) +
                b"Connection: close\r\n\r\n")
        # Nothing was read past the head: a GET has no body, and a CONNECT client waits
        # for the 200 before it speaks.
        self._pipe(c, up)

    @staticmethod
    def _pipe(a, b):
        def one_way(src, dst):
            try:
                while True:
                    d = src.recv(65536)
                    if not d:
                        break
                    dst.sendall(d)
            except OSError:
                pass
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        t = threading.Thread(target=one_way, args=(b, a), daemon=True)
        t.start()
        one_way(a, b)
        t.join(10)


class _ProxyServer(_QuietWhenClientsGo, socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class ForwardProxy:
    """ForwardProxy(names): an HTTP proxy on 127.0.0.1 that reaches a host through
    names = {host: (ip, port)} (its own view of DNS; other hosts get 502). .seen lists
    (method, target) of every request it got."""

    def __init__(self, names):
        self.names = names
        self.seen = []
        self.srv = _ProxyServer(("127.0.0.1", 0), _ProxyHandler)
        self.srv.proxy = self
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()
