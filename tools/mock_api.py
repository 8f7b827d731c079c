#!/usr/bin/python3
"""A small Flashduty-like HTTPS API for the demo and the e2e tests.

    /usr/bin/python3 tools/mock_api.py --port 0 --cert DIR \
        --ready-file F --key-file K

DIR holds server.pem and server.key (tools/gen-certs); K holds the one valid
app_key (surrounding whitespace ignored). Binds 127.0.0.1 and writes the
actual port to the ready file once listening.

    POST /channel/list     POST /incident/list     POST /member/list
    GET /docs/runbook      an HTML runbook page (no key: the demo's webfetch reads it)

take a JSON object body (optional "p" page from 1, "limit" default 20) and
answer, only when the query parameter app_key is exactly the valid key:

    200 {"request_id": "...", "data": {"items": [...], "total": n, "p": p, "limit": l}}

Otherwise the Flashduty error envelope:

    401 {"request_id": "...", "error": {"code": "Unauthorized", "message": "invalid app_key"}}
    404 NotFound (unknown path; checked first), 405 MethodNotAllowed (not POST),
    400 InvalidParameter (body not a JSON object)
"""

import argparse
import hmac
import http.server
import json
import os
import signal
import ssl
import sys
import urllib.parse
import uuid

CHANNELS = [
    {"channel_id": 2451002751131, "channel_name": "Payments", "team_id": 2477033058131, "status": "enabled"},
    {"channel_id": 2451002751132, "channel_name": "Checkout Web", "team_id": 2477033058132, "status": "enabled"},
    {"channel_id": 2451002751133, "channel_name": "Data Platform", "team_id": 2477033058133, "status": "enabled"},
]

INCIDENTS = [
    {"incident_id": "6745a1f0c3e8d2b7a9f10001", "title": "Payment API p99 latency > 2s",
     "incident_severity": "Critical", "progress": "Triggered", "channel_id": 2451002751131,
     "start_time": 1732867200},
    {"incident_id": "6745a1f0c3e8d2b7a9f10002", "title": "Checkout 5xx rate above 1%",
     "incident_severity": "Warning", "progress": "Processing", "channel_id": 2451002751132,
     "start_time": 1732863600},
]

MEMBERS = [
    {"member_id": 3790001, "member_name": "Alice Chen", "email": "alice@example.com",
     "status": "enabled"},
    {"member_id": 3790002, "member_name": "Bob Martin", "email": "bob@example.com",
     "status": "enabled"},
]

RUNBOOK = """<!DOCTYPE html>
<html><head><title>Runbook: payments latency</title>
<script>window.analytics = {track: function () {}};</script>
<style>nav { float: left }</style></head>
<body><nav><a href="/">Home</a></nav>
<main><h1>Runbook: payments latency</h1>
<p>When the <b>Payments</b> channel pages for p99 latency, check the database first.</p>
<ol><li>Open the <a href="dashboards/payments">payments dashboard</a>.</li>
<li>Check replication lag: <code>SELECT now() - pg_last_xact_replay_timestamp();</code></li>
<li>If lag is over 30 s, fail over (see <a href="/docs/failover">failover</a>).</li></ol>
<table><tr><th>Signal</th><th>Threshold</th></tr>
<tr><td>p99 latency</td><td>800 ms</td></tr><tr><td>error rate</td><td>2%</td></tr></table>
</main></body></html>
"""

ROUTES = {"/channel/list": CHANNELS, "/incident/list": INCIDENTS, "/member/list": MEMBERS}
MAX_BODY = 1024 * 1024


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, tls, key):
        super().__init__(addr, handler)
        self.tls = tls
        self.key = key.encode()

    def finish_request(self, request, client_address):
        request.settimeout(10)
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (OSError, ValueError):
            return
        conn.settimeout(60)
        try:
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (OSError, ValueError)):
            return
        super().handle_error(request, client_address)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-flashduty-api"
    sys_version = ""

    def log_message(self, format, *args):
        pass

    def __getattr__(self, name):
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    def _reply(self, status, payload):
        body = json.dumps(dict({"request_id": uuid.uuid4().hex}, **payload), indent=None).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _page(self, html):
        body = html.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status, code, message):
        self._reply(status, {"error": {"code": code, "message": message}})

    def _read_body(self):
        if self.headers.get("Transfer-Encoding"):
            chunks = []
            total = 0
            while True:
                size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_BODY:
                    raise ValueError("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(n)

    def _handle(self):
        target = urllib.parse.urlsplit(self.path)
        try:
            raw = self._read_body()
        except ValueError:
            self.close_connection = True
            return self._error(400, "InvalidParameter", "unreadable body")
        if target.path == "/docs/runbook" and self.command in ("GET", "HEAD"):
            return self._page(RUNBOOK)
        items = ROUTES.get(target.path)
        if items is None:
            return self._error(404, "NotFound", "no such API: " + target.path)
        if self.command != "POST":
            return self._error(405, "MethodNotAllowed", "use POST")
        keys = [v for k, v in urllib.parse.parse_qsl(target.query, keep_blank_values=True)
                if k == "app_key"]
        if len(keys) != 1 or not hmac.compare_digest(keys[0].encode(), self.server.key):
            return self._error(401, "Unauthorized", "invalid app_key")
        try:
            req = json.loads(raw or b"{}")
            if not isinstance(req, dict):
                raise ValueError
            page = max(1, int(req.get("p", 1)))
            limit = max(1, min(100, int(req.get("limit", 20))))
        except (ValueError, TypeError):
            return self._error(400, "InvalidParameter", "body must be a JSON object")
        start = (page - 1) * limit
        self._reply(200, {"data": {"items": items[start:start + limit], "total": len(items),
                                   "p": page, "limit": limit}})


def main(argv=None):
    ap = argparse.ArgumentParser(description="Flashduty-like mock API over HTTPS")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cert", required=True, help="directory with server.pem, server.key")
    ap.add_argument("--ready-file", required=True)
    ap.add_argument("--key-file", required=True, help="file holding the valid app_key")
    args = ap.parse_args(argv)

    with open(args.key_file) as f:
        key = f.read().strip()
    if not key:
        ap.error("empty key file")

    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(os.path.join(args.cert, "server.pem"), os.path.join(args.cert, "server.key"))
    tls.set_alpn_protocols(["http/1.1"])
    server = Server(("127.0.0.1", args.port), Handler, tls, key)

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    tmp = args.ready_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.replace(tmp, args.ready_file)
    try:
        server.serve_forever(poll_interval=0.1)
    except SystemExit:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
