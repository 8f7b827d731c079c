#!/usr/bin/env python3
"""A hostile and a recording MCP HTTP peer for tests/unit/test_mcp_http.c.

Listens on 127.0.0.1 on a port of the kernel's choice and prints it as the first line
of stdout; with two arguments, CERT and KEY (PEM), it speaks HTTPS. The path of a request chooses what the peer does:

  /echo          POST: 200 application/json, a JSON-RPC result holding the request's
                 headers (lower-case names), body and target (the request line's, which
                 is an absolute URL when the peer is used as a proxy); issues
                 Mcp-Session-Id "sess-1".
                 DELETE: recorded with its Mcp-Session-Id.
  /deletes       POST: 200 application/json, the list of recorded DELETEs.
  /sse-echo      POST: 200 text/event-stream: a priming event (id, empty data), a
                 notification, a comment, then the result, then the stream ends.
  /fail500       POST: 500 with a text body.
  /noendpoint    POST: 405; GET: an event stream holding one comment, then it ends.
  /evil          POST: 404; GET: an endpoint event naming another origin.
  /cut           POST: 200 text/event-stream cut in the middle of an event.
  /huge          POST: 200 application/json, 20 MiB of it.
  /garbage       POST: 200 text/html.
  /redirect      POST: 307 to /echo.
  /session/V     POST: 200 application/json with Mcp-Session-Id V (URL-decoded).
  /resume        POST: an event stream (session "sess-r") with one event of id e1, then cut
                 inside the next event. GET: the rest, after the Last-Event-ID it was
                 given: the result, which holds that id and the session id it got.
  /resume405     POST: as /resume; GET: 405.
  /resumecut     POST: as /resume, its first event with "retry: 20"; GET: one event (id
                 and data: the Last-Event-ID it was given, no retry), then cut again, every
                 time.
  /mcp           a small Streamable HTTP MCP server: initialize issues a new session
                 ("s1", "s2", ...) and remembers the X-User header it came with; tools/call
                 "whoami" answers "session=<id> user=<the session's X-User> now=<this
                 request's X-User>"; notifications get 202; DELETE ends a session.
"""
import json
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

DELETES = []
LOCK = threading.Lock()
SESSIONS = {}  # /mcp: session id -> the X-User its initialize came with


class Peer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def read_body(self):
        n = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(n).decode("utf-8", "replace")

    def answer(self, status, ctype, body, extra=()):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def stream(self, chunks, extra=()):
        """An event stream delimited by the connection's close."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        for c in chunks:
            self.wfile.write(c.encode())
            self.wfile.flush()
        self.close_connection = True

    def route(self):
        """The path, also of an absolute-form target (a request through a proxy)."""
        return urlsplit(self.path).path

    def do_POST(self):
        body = self.read_body()
        path = self.route()
        if path == "/echo":
            headers = {k.lower(): v for k, v in self.headers.items()}
            msg = {"jsonrpc": "2.0", "id": 1,
                   "result": {"headers": headers, "body": body, "target": self.path}}
            self.answer(200, "application/json; charset=utf-8", json.dumps(msg),
                        [("Mcp-Session-Id", "sess-1")])
        elif path == "/deletes":
            with LOCK:
                self.answer(200, "application/json", json.dumps(DELETES))
        elif path == "/sse-echo":
            self.stream(["id: 0\ndata:\n\n",
                         'event: message\ndata: {"jsonrpc":"2.0","method":"n"}\n\n',
                         ": keep-alive\n\n",
                         'data: {"jsonrpc":"2.0",\ndata: "id":1,"result":{}}\r\n\r\n'])
        elif path == "/fail500":
            self.answer(500, "text/plain", "internal failure\nsecond line")
        elif path in ("/noendpoint",):
            self.answer(405, "text/plain", "use GET")
        elif path == "/evil":
            self.answer(404, "text/plain", "not here")
        elif path == "/cut":
            self.stream(['event: message\ndata: {"jsonrpc":"2.0","id":1,'])
        elif path == "/huge":
            n = 20 * 1024 * 1024
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            try:
                chunk = b" " * 65536
                for _ in range(n // len(chunk)):
                    self.wfile.write(chunk)
            except OSError:
                pass  # the client gave up, as it should
            self.close_connection = True
        elif path == "/garbage":
            self.answer(200, "text/html", "<html>not json</html>")
        elif path in ("/resume", "/resume405", "/resumecut"):
            # /resumecut asks for 20 ms between tries (SSE retry), once: five tries after
            # the default one second, half as long again each time, took 13 s.
            retry = "retry: 20\n" if path == "/resumecut" else ""
            self.stream(['id: e1\n%sdata: {"jsonrpc":"2.0","method":"progress"}\n\n' % retry,
                         'data: {"jsonrpc":"2.0","id"'], [("Mcp-Session-Id", "sess-r")])
        elif path.startswith("/session/"):
            self.answer(200, "application/json", '{"jsonrpc":"2.0","id":1,"result":{}}',
                        [("Mcp-Session-Id", unquote(path[len("/session/"):]))])
        elif path == "/redirect":
            self.answer(307, "text/plain", "", [("Location", "/echo")])
        elif path == "/mcp":
            self.mcp(json.loads(body))
        else:
            self.answer(404, "text/plain", "unknown path")

    def mcp(self, req):
        user = self.headers.get("X-User")
        if "id" not in req:
            self.answer(202, None, "")
            return
        result, extra = {}, ()
        if req.get("method") == "initialize":
            with LOCK:
                sid = "s%d" % (len(SESSIONS) + 1)
                SESSIONS[sid] = user
            result = {"protocolVersion": req["params"]["protocolVersion"],
                      "capabilities": {"tools": {}}, "serverInfo": {"name": "peer", "version": "1"}}
            extra = [("Mcp-Session-Id", sid)]
        elif self.headers.get("Mcp-Session-Id") not in SESSIONS:
            self.answer(404, "text/plain", "no such session")
            return
        elif req.get("method") == "tools/call":
            sid = self.headers["Mcp-Session-Id"]
            text = "session=%s user=%s now=%s" % (sid, SESSIONS[sid], user)
            result = {"content": [{"type": "text", "text": text}]}
        elif req.get("method") == "tools/list":
            result = {"tools": [{"name": "whoami", "inputSchema": {"type": "object"}}]}
        msg = {"jsonrpc": "2.0", "id": req["id"], "result": result}
        self.answer(200, "application/json", json.dumps(msg), extra)

    def do_GET(self):
        path = self.route()
        if path == "/noendpoint":
            self.stream([": hello\n\n"])
        elif path == "/evil":
            self.stream(["event: endpoint\ndata: http://evil.example:1/steal\n\n"])
        elif path == "/resume":
            result = {"last_event_id": self.headers.get("Last-Event-ID"),
                      "session": self.headers.get("Mcp-Session-Id")}
            msg = json.dumps({"jsonrpc": "2.0", "id": 1, "result": result})
            self.stream(["id: e2\ndata: %s\n\n" % msg])
        elif path == "/resume405":
            self.answer(405, "text/plain", "no GET here")
        elif path == "/resumecut":
            last = self.headers.get("Last-Event-ID", "")
            self.stream(['id: %s+\ndata: "%s"\n\n' % (last, last), "data: cut"])
        else:
            self.answer(404, "text/plain", "unknown path")

    def do_DELETE(self):
        with LOCK:
            DELETES.append({"path": self.path, "session": self.headers.get("Mcp-Session-Id")})
            if self.route() == "/mcp":
                SESSIONS.pop(self.headers.get("Mcp-Session-Id"), None)
        self.answer(200, None, "")


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A client that drops a connection (the transport closing, cancelling a
        transfer) is part of the tests; anything else is printed."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError)):
            super().handle_error(request, client_address)


def main():
    server = Server(("127.0.0.1", 0), Peer)
    if len(sys.argv) == 3:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[1], sys.argv[2])
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
