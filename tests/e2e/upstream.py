#!/usr/bin/python3
"""The e2e suite's HTTPS upstream: the real server credbroker forwards to.

It records what it received (one JSON line per request, written before the
response) so tests can check what left the broker: one app_key, the right
Host, the body unchanged. It also misbehaves on request (echoes the key,
never answers, resets, trickles a body) so tests can check the broker's
scrubbing, timeouts and cancellation.

    /usr/bin/python3 tests/e2e/upstream.py --port 0 (--cert DIR | --plain) \
        --ready-file F [--log F] [--key-file K]

DIR holds server.pem and server.key (tools/gen-certs); --plain serves plain
HTTP (an http:// upstream) instead of HTTPS. Binds 127.0.0.1; once
listening, writes the actual port to the ready file (atomically: the file
appears complete or not at all). Without --log nothing is logged (scripts/soak
runs it so, for hundreds of thousands of requests); --key-file K holds the key
/auth accepts (the file's content without its trailing newline).

Log lines (JSON, one per line, appended):
  request: {"method", "path", "raw_target", "query" (raw, "" if none),
            "headers": [[name, value], ...] in received order,
            "body_sha256", "body_len", "body_complete", "peer_port" (the
            client's end of the TCP connection: which connection carried it)},
           plus "body_error" (why) when body_complete is false
  event:   {"event": "client_gone", "path", "sent", "size"} when a client
           leaves before a /slow-body or /download response was fully sent;
           {"event": "closed_silently"} (see ?close=silent).

Endpoints (any method; HEAD gets the same head without a body):
  /echo                  200 JSON {"method","path","raw_target","query",
                         "headers","body_sha256","body_len"}
  /upload                200, body = the request body (Content-Length)
  /download?size=N[&chunked=1][&head_delay_ms=D]
                         N bytes of pattern_bytes(), Content-Length or chunked,
                         written 64 KiB at a time; the head D ms after the
                         request was logged (default 0)
  /echo-query            400 {"error":{"code":"Bad","message":"bad request: Q"}}
                         with "Location: https://example.invalid/?Q" and
                         "X-Echo: Q", Q = the raw query string
  /echo-query-decoded    same as /echo-query with Q percent-decoded (the key
                         appears raw even when the request carried it encoded)
  /gzip-echo-query       like /echo-query but 200, and the body is gzip'ed with
                         Content-Encoding: gzip if Accept-Encoding has gzip
  /gzip-unasked?size=N   200, Content-Encoding: gzip whatever was asked, with
                         Content-Length: the body is gzip_zeros(N), about a
                         thousandth of N that inflates to N zero bytes; its
                         sha256 in X-Body-Sha256
  /silent                reads the request, never answers; holds the
                         connection until the client leaves or the server stops
  /slow-body?size=N&delay_ms=D[&piece=P]
                         Content-Length N, then N pattern bytes in pieces of
                         P bytes (default 1024) with D ms between pieces
  /reset                 closes the TCP connection with RST (SO_LINGER 0),
                         no response
  /reset-mid-body?size=N&after=M
                         a 200 head with Content-Length N, the first M bytes
                         of pattern_bytes(N) (0 <= M < N), then, once the
                         peer has acknowledged them (at most 1 s), RST as
                         /reset: the response is cut off mid-body
  /auth[?close=1]        200 {"ok": true} if the query has exactly one app_key
                         and it equals the --key-file key, else 401 JSON (so
                         always 401 without --key-file): a 200 proves the
                         broker injected the key. With close=1 the answer has
                         "Connection: close" and the connection is closed
                         after it (the client's pool loses that connection)
  /leak-key              200 {"leaked": K, "encoded": %-encoded K} with
                         "X-Leak: K", K = the --key-file key (404 without
                         one): an API that echoes a credential it knows, as
                         another route's upstream could
  ...?close=silent       (any endpoint) the answer says nothing of it, but
                         the connection is closed after it, as a server's
                         idle timeout would (event "closed_silently" once
                         it is closed)
  /status/NNN            status NNN (200..599) with {"status": NNN}
  anything else          404 JSON

The download pattern: byte i of a body is (i * 7 + 3) & 0xff. Tests import
pattern_bytes(n) / pattern_sha256(n) from this module for expected values.
"""

import argparse
import fcntl
import functools
import gzip
import hashlib
import hmac
import http.server
import json
import os
import select
import signal
import socket
import ssl
import struct
import sys
import tempfile
import termios
import threading
import time
import urllib.parse
import zlib

IO_CHUNK = 64 * 1024
_PERIOD = bytes((i * 7 + 3) & 0xFF for i in range(256))
# IO_CHUNK is a multiple of the pattern's period (256), so every 64 KiB piece
# of a body starts at pattern offset 0 and is a prefix of this block.
_BLOCK = _PERIOD * (IO_CHUNK // len(_PERIOD))


def pattern_bytes(n, offset=0):
    """Bytes offset .. offset+n-1 of the download pattern ((i*7+3) & 0xff)."""
    start = offset % len(_PERIOD)
    reps = (start + n) // len(_PERIOD) + 1
    return (_PERIOD * reps)[start:start + n]


def pattern_sha256(n):
    """sha256 hex digest of pattern_bytes(n), computed without holding n bytes."""
    h = hashlib.sha256()
    full, rest = divmod(n, IO_CHUNK)
    for _ in range(full):
        h.update(_BLOCK)
    h.update(_BLOCK[:rest])
    return h.hexdigest()


_gzip_lock = threading.Lock()


def gzip_zeros(n):
    """gzip (deflate level 9, mtime 0: the same bytes every time) of n zero bytes: about
    n / 1000 bytes that inflate to n. /gzip-unasked serves it. Made once per n, however
    many requests ask at once."""
    with _gzip_lock:
        return _gzip_zeros(n)


@functools.lru_cache(maxsize=4)
def _gzip_zeros(n):
    co = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(min(n, 1 << 20))
    out = []
    left = n
    while left > 0:
        out.append(co.compress(zeros[:left]))
        left -= len(zeros)
    out.append(co.flush())
    return b"".join(out)


class BadRequest(Exception):
    pass


class RequestLog:
    """Appends JSON lines; reopened per line so a test may truncate the file."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()

    def write(self, record):
        if not self.path:
            return
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        with self.lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # A burst of new connections (a pool refilling after resets) must not
    # overflow the listen queue (socketserver's default is 5).
    request_queue_size = 128

    def __init__(self, addr, handler, tls, log, key=None):
        super().__init__(addr, handler)
        self.tls = tls
        self.log = log
        self.key = key
        self.stopping = threading.Event()

    def finish_request(self, request, client_address):
        # The TLS handshake runs here, in the connection's own thread, so a
        # client that connects and stalls cannot block accept().
        request.settimeout(10)
        # A response is a head and a body, written separately: without
        # TCP_NODELAY the body waits for the peer's delayed ACK (40 ms).
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is None:
            conn = request  # --plain
        else:
            try:
                conn = self.tls.wrap_socket(request, server_side=True)
            except (OSError, ValueError):
                return
        conn.settimeout(None)
        handler = None
        try:
            handler = self.RequestHandlerClass(conn, client_address, self)
        finally:
            try:
                conn.close()
            except OSError:
                pass
        if getattr(handler, "close_silently", False):
            self.log.write({"event": "closed_silently"})

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (OSError, ValueError)):  # client went away, bad TLS
            return
        super().handle_error(request, client_address)


class ClientGone(Exception):
    pass


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "credbroker-test-upstream"
    sys_version = ""

    def log_message(self, format, *args):  # quiet
        pass

    def __getattr__(self, name):
        # Every method (GET, POST, PATCH, whatever) goes to the same place.
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    # -- request ----------------------------------------------------------

    def _parse_target(self):
        target = self.path
        if "://" in target.split("?", 1)[0]:  # absolute-form
            parts = urllib.parse.urlsplit(target)
            path = parts.path or "/"
            query = parts.query
        else:
            path, _, query = target.partition("?")
        return target, path, query

    def _read_exact(self, n, sink):
        while n > 0:
            data = self.rfile.read(min(n, IO_CHUNK))
            if not data:
                raise ClientGone()
            sink(data)
            n -= len(data)

    def _read_line(self):
        line = self.rfile.readline(65537)
        if not line:
            raise ClientGone()
        if not line.endswith(b"\n"):
            raise BadRequest("line too long")
        return line

    def _read_body(self, sink):
        te = [v.strip().lower() for h in self.headers.get_all("Transfer-Encoding", [])
              for v in h.split(",") if v.strip()]
        if te:
            if te[-1] != "chunked":
                raise BadRequest("unsupported transfer-encoding")
            while True:
                size_field = self._read_line().split(b";", 1)[0].strip()
                try:
                    size = int(size_field, 16)
                except ValueError:
                    raise BadRequest("bad chunk size")
                if size == 0:
                    while self._read_line() not in (b"\r\n", b"\n"):  # trailers
                        pass
                    return
                self._read_exact(size, sink)
                if self._read_line() not in (b"\r\n", b"\n"):
                    raise BadRequest("bad chunk end")
        lengths = self.headers.get_all("Content-Length", [])
        if lengths:
            if len(set(v.strip() for v in lengths)) != 1 or not lengths[0].strip().isdigit():
                raise BadRequest("bad content-length")
            self._read_exact(int(lengths[0]), sink)

    # -- response helpers --------------------------------------------------

    def _write(self, data):
        if self.command != "HEAD" and data:
            self.wfile.write(data)

    def _send(self, status, body=b"", headers=(), ctype="application/json"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        if ctype and body:
            self.send_header("Content-Type", ctype)
        for name, value in headers:
            self.send_header(name, value)
        if status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status not in (204, 304):
            self._write(body)

    def _client_left(self):
        """True if the client closed (or sent anything) while we are answering.

        A client without pipelining sends nothing until the response is
        complete, so readability here means EOF, RST or a TLS close_notify.
        """
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(r)

    def _stream_pattern(self, size, chunked, piece=IO_CHUNK, delay=0.0):
        if self.command == "HEAD":
            return
        sent = 0
        try:
            while sent < size:
                n = min(piece, size - sent, IO_CHUNK)
                data = _BLOCK[sent % len(_PERIOD):][:n]
                if len(data) < n:
                    data = pattern_bytes(n, sent)
                if chunked:
                    self._write(b"%x\r\n%s\r\n" % (n, data))
                else:
                    self._write(data)
                sent += n
                if delay and sent < size:
                    r, _, _ = select.select([self.connection], [], [], delay)
                    if r or self.server.stopping.is_set():
                        raise ClientGone()
                elif piece < IO_CHUNK and self._client_left():
                    raise ClientGone()
            if chunked:
                self._write(b"0\r\n\r\n")
        except (ClientGone, OSError, ValueError):
            self.server.log.write({"event": "client_gone", "path": self._path,
                                   "sent": sent, "size": size})
            self.close_connection = True

    def _hold_silently(self):
        self.close_connection = True
        while not self.server.stopping.is_set():
            try:
                r, _, _ = select.select([self.connection], [], [], 0.1)
            except (OSError, ValueError):
                return
            if r:
                try:
                    if not self.connection.recv(IO_CHUNK):
                        return
                except (OSError, ValueError):
                    return

    def _reset(self):
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # The connection is closed (without close_notify) by finish_request.

    def _wait_acked(self, timeout):
        """Waits until every byte written has been acknowledged by the peer
        (the send queue is empty), at most timeout s: a RST discards what is
        still queued, and the bytes before it must arrive."""
        deadline = time.monotonic() + timeout
        buf = bytearray(struct.calcsize("i"))
        while time.monotonic() < deadline:
            try:
                fcntl.ioctl(self.connection.fileno(), termios.TIOCOUTQ, buf)  # = SIOCOUTQ
            except (OSError, ValueError):
                return
            if struct.unpack("i", buf)[0] == 0:
                return
            time.sleep(0.001)

    def _reset_mid_body(self, size, after):
        if not 0 <= after < size:
            self._send(400, {"error": {"code": "Bad", "message": "need 0 <= after < size"}})
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        try:
            self._write(pattern_bytes(after))
            self._wait_acked(1.0)
        except (OSError, ValueError):
            pass
        self._reset()

    def _auth_ok(self, query):
        keys = [v for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True)
                if k == "app_key"]
        key = self.server.key
        return (key is not None and len(keys) == 1
                and hmac.compare_digest(keys[0].encode(), key.encode()))

    # -- dispatch ----------------------------------------------------------

    def _handle(self):
        raw_target, path, query = self._parse_target()
        self._path = path
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        hasher = hashlib.sha256()
        body_len = 0
        spool = tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024) if path == "/upload" else None

        def sink(data):
            nonlocal body_len
            hasher.update(data)
            body_len += len(data)
            if spool is not None:
                spool.write(data)

        complete = True
        bad = None
        body_error = None
        try:
            self._read_body(sink)
        except (ClientGone, OSError):
            complete = False
            body_error = "client closed the connection mid-body"
        except BadRequest as e:
            complete = False
            bad = body_error = str(e)
        record = {
            "method": self.command,
            "path": path,
            "raw_target": raw_target,
            "query": query,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body_sha256": hasher.hexdigest(),
            "body_len": body_len,
            "body_complete": complete,
            "peer_port": self.client_address[1],
        }
        if body_error:
            record["body_error"] = body_error
        self.server.log.write(record)
        if bad is not None:
            self.close_connection = True
            self._send(400, {"error": {"code": "Bad", "message": bad}},
                       headers=[("Connection", "close")])
            return
        if not complete:
            self.close_connection = True
            return
        if params.get("close") == "silent":
            self.close_connection = self.close_silently = True

        try:
            if path == "/echo":
                echo = {k: record[k] for k in ("method", "path", "raw_target", "query",
                                               "headers", "body_sha256", "body_len")}
                self._send(200, echo)
            elif path == "/upload":
                spool.seek(0)
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(body_len))
                self.end_headers()
                while True:
                    data = spool.read(IO_CHUNK)
                    if not data:
                        break
                    self._write(data)
            elif path == "/download":
                size = int(params.get("size", "0"))
                chunked = params.get("chunked") == "1"
                head_delay = int(params.get("head_delay_ms", "0")) / 1000.0
                if head_delay and self.server.stopping.wait(head_delay):
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", str(size))
                self.end_headers()
                self._stream_pattern(size, chunked)
            elif path in ("/echo-query", "/echo-query-decoded", "/gzip-echo-query"):
                q = urllib.parse.unquote(query) if path == "/echo-query-decoded" else query
                body = json.dumps({"error": {"code": "Bad", "message": "bad request: " + q}},
                                  ensure_ascii=False).encode()
                headers = [("Location", "https://example.invalid/?" + q), ("X-Echo", q)]
                status = 400
                if path == "/gzip-echo-query":
                    status = 200
                    headers.append(("Vary", "Accept-Encoding"))
                    accept = ",".join(self.headers.get_all("Accept-Encoding", []))
                    codings = [c.split(";")[0].strip().lower() for c in accept.split(",")]
                    if "gzip" in codings:
                        body = gzip.compress(body)
                        headers.append(("Content-Encoding", "gzip"))
                self._send(status, body, headers=headers)
            elif path == "/gzip-unasked":
                body = gzip_zeros(int(params.get("size", "0")))
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Body-Sha256", hashlib.sha256(body).hexdigest())
                self.end_headers()
                self._write(body)
            elif path == "/silent":
                self._hold_silently()
            elif path == "/slow-body":
                size = int(params.get("size", "0"))
                delay = int(params.get("delay_ms", "10")) / 1000.0
                piece = max(1, int(params.get("piece", "1024")))
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(size))
                self.end_headers()
                self._stream_pattern(size, False, piece=piece, delay=delay)
            elif path == "/reset":
                self._reset()
            elif path == "/reset-mid-body":
                self._reset_mid_body(int(params.get("size", "0")), int(params.get("after", "0")))
            elif path == "/auth":
                headers = []
                if params.get("close") == "1":
                    self.close_connection = True
                    headers.append(("Connection", "close"))
                if self._auth_ok(query):
                    self._send(200, {"ok": True}, headers=headers)
                else:
                    self._send(401, {"error": {"code": "Unauthorized",
                                               "message": "app_key missing or wrong"}},
                               headers=headers)
            elif path == "/leak-key" and self.server.key is not None:
                key = self.server.key
                self._send(200, {"leaked": key, "encoded": urllib.parse.quote(key, safe="")},
                           headers=[("X-Leak", key)])
            elif path.startswith("/status/"):
                try:
                    status = int(path[len("/status/"):])
                except ValueError:
                    status = 0
                if not 200 <= status <= 599:
                    self._send(400, {"error": {"code": "Bad", "message": "status must be 200..599"}})
                else:
                    self._send(status, {"status": status})
            else:
                self._send(404, {"error": {"code": "NotFound", "message": "no such path"}})
        except ValueError:  # a bad size= or delay_ms=
            self._send(400, {"error": {"code": "Bad", "message": "bad parameter"}})
        finally:
            if spool is not None:
                spool.close()


def make_tls_context(cert_dir):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(cert_dir, "server.pem"), os.path.join(cert_dir, "server.key"))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def write_ready_file(path, port):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, path)


def serve(server, ready_file):
    """Runs until SIGTERM/SIGINT, then stops without waiting for clients."""

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if ready_file:
        write_ready_file(ready_file, server.server_address[1])
    try:
        server.serve_forever(poll_interval=0.1)
    except SystemExit:
        pass
    finally:
        server.stopping.set()
        server.server_close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--cert", help="directory with server.pem, server.key")
    where.add_argument("--plain", action="store_true", help="plain HTTP, no TLS")
    ap.add_argument("--ready-file", required=True)
    ap.add_argument("--log", default=None, help="JSON-lines request log (default: none)")
    ap.add_argument("--key-file", default=None, help="the key /auth accepts")
    args = ap.parse_args(argv)
    key = None
    if args.key_file:
        with open(args.key_file) as f:
            key = f.read().rstrip("\n")
        if not key:
            ap.error("empty key file")
    server = Server(("127.0.0.1", args.port), Handler,
                    None if args.plain else make_tls_context(args.cert), RequestLog(args.log), key)
    serve(server, args.ready_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
