#!/usr/bin/python3
"""A mock agent platform: the WebSocket peer of `credbroker runner` (DESIGN.md
section 6), for the e2e tests and the demo.

    /usr/bin/python3 tools/mock_platform.py --port 0 --control-port 0 \
        --ready-file F [--token T | --token-file TF] [--cert DIR] [--log F] \
        [--ping-interval S]

Binds 127.0.0.1. The runner endpoint is ws://127.0.0.1:PORT/runner/ws (wss://
with --cert DIR, which holds server.pem and server.key from tools/gen-certs).
Once both ports listen, the ready file is written atomically with
{"ws_port": P, "control_port": C}. SIGTERM/SIGINT: close open runner
connections with 1001 (at most 2 s each), then exit 0.

Handshake: path must be /runner/ws (else 404); the query parameter `token`
must appear exactly once and equal the accepted token (--token, the stripped
content of --token-file, or POST /token; with none, any token or none is
accepted), else 401. POST /reject forces 401 for the next n attempts. Every
attempt is recorded (see /state). After accepting, the platform sends
`welcome` {"worknode_id": "wn-<connection id>", "name": "mock-worknode",
"labels": ["mock", "e2e"]} at once. Messages are JSON
{"id": "msg_<hex>", "type", "payload", "timestamp": unix ms}. Keepalive pings
every --ping-interval s (default 20; 0 disables), frames up to 64 MiB.

Every frame the runner sends is kept in memory and appended to --log as one
JSON line: {"seq", "conn", "received_at" (unix s), "size" (bytes), "type",
"task_id" (payload.task_id, else payload.call_id, else null), "message" (the parsed JSON, or null),
and for a frame that is not a JSON object "error" and "text" (the raw text;
binary frames as latin-1)}. Connection events are logged too, as
{"event": "connect"|"reject"|"close", "conn": {connection record}}.

Control API: HTTP/1.1 JSON on 127.0.0.1:CONTROL_PORT (Connection: close).
Errors are {"error": "..."} with 400 (bad request), 404, 408 (wait timed out),
409 (no runner connected / no such open connection). "conn" in a POST body
picks an open connection by id; the default is the newest open one.

  GET  /state        {"connected": bool, "current": id|null, "last_seq": n,
                      "token_set": bool, "reject_remaining": n,
                      "connections": [record, ...]}; a record is
                      {"id", "at", "peer", "path", "query" (raw), "params"
                      ({name: last value}), "headers" ([[k, v], ...]),
                      "token_ok", "status" (101, 401, 404; null until the
                      upgrade finished), "rejected" (null|"token"|"forced"|
                      "path"), "connected" (open now), "connected_at",
                      "closed_at", "close_code", "close_reason", "dropped"
                      (null|"close"|"abort"), "worknode_id"}
  GET  /messages?type=&task_id=&conn=&since=SEQ
                     [message record, ...] oldest first (all filters optional)
  GET  /wait?type=&task_id=&conn=&since=SEQ&timeout=10
                     the oldest matching message record, waiting for one up
                     to timeout s; 408 if none arrives
  GET  /wait_connection?state=connected|attempt|closed&id=N|after=N&timeout=10
                     the first connection record (with this id, or with id >
                     after, default 0) that has been accepted ("connected",
                     the default; it may have closed since), merely recorded
                     ("attempt"), or closed ("closed"); 408 on timeout
  POST /task         {"task_id"?, "operation"? ("bash"), "args"? ({}),
                      "trace_id"?, "source_instance_id"?, "conn"?}
                     sends task.request -> {"task_id", "id", "conn"}
  POST /cancel       {"task_id", "conn"?} sends task.cancel -> {"id", "conn"}
  POST /send         {"type", "payload"?, "conn"?} sends a well-formed message
                     of any type -> {"id", "conn"}
  POST /send_raw     {"text", "conn"?} sends the text frame as is -> {"conn"}
  POST /drop         {"mode": "close"|"abort", "conn"?} close frame 1001 (and
                     wait for the close handshake, at most 2 s) or
                     transport.abort() (no close frame); returns the closed
                     connection record
  POST /reject       {"count": n} -> {"reject_remaining": n}
  POST /token        {"token": "..."|null} -> {"token_set": bool}

The client section at the end (stdlib only) is importable with tools/ on
sys.path: `from mock_platform import MockPlatform, PlatformClient`.
"""

import argparse
import asyncio
import hmac
import http
import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.parse
import uuid
from pathlib import Path

MAX_FRAME = 64 * 1024 * 1024
CLOSE_TIMEOUT = 2.0
WS_PATH = "/runner/ws"
WELCOME_NAME = "mock-worknode"
WELCOME_LABELS = ["mock", "e2e"]
MAX_CONTROL_BODY = 256 * 1024 * 1024


def envelope(msg_type, payload):
    msg_id = "msg_" + uuid.uuid4().hex
    return msg_id, json.dumps({"id": msg_id, "type": msg_type, "payload": payload,
                               "timestamp": int(time.time() * 1000)})


class HTTPError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


# -- the platform ---------------------------------------------------------------

class OpenConnection:
    def __init__(self, ws, record):
        self.ws = ws
        self.record = record
        self.done = asyncio.Event()


class Platform:
    def __init__(self, token, log_path):
        self.token = token
        self.reject_remaining = 0
        self.connections = []      # every attempt, oldest first
        self.open = {}             # id -> OpenConnection
        self.messages = []
        self.cond = asyncio.Condition()
        self.log = open(log_path, "a", encoding="utf-8") if log_path else None

    # -- bookkeeping ------------------------------------------------------

    def write_log(self, obj):
        if self.log is not None:
            self.log.write(json.dumps(obj) + "\n")
            self.log.flush()

    async def changed(self):
        async with self.cond:
            self.cond.notify_all()

    def current(self):
        return self.open[max(self.open)] if self.open else None

    def pick(self, conn):
        if conn is None:
            entry = self.current()
            if entry is None:
                raise HTTPError(409, "no runner connected")
            return entry
        entry = self.open.get(conn) if isinstance(conn, int) else None
        if entry is None:
            raise HTTPError(409, "connection %r is not open" % (conn,))
        return entry

    # -- the WebSocket side -----------------------------------------------

    async def check_request(self, protocol, path, headers):
        target = urllib.parse.urlsplit(path)
        pairs = urllib.parse.parse_qsl(target.query, keep_blank_values=True)
        tokens = [v for k, v in pairs if k == "token"]
        if self.token is None:
            token_ok = True
        else:
            token_ok = len(tokens) == 1 and hmac.compare_digest(tokens[0].encode(),
                                                                 self.token.encode())
        peer = protocol.remote_address
        record = {
            "id": len(self.connections) + 1,
            "at": time.time(),
            "peer": "%s:%s" % (peer[0], peer[1]) if peer else None,
            "path": target.path,
            "query": target.query,
            "params": dict(pairs),
            "headers": [[k, v] for k, v in headers.raw_items()],
            "token_ok": token_ok,
            "status": None,
            "rejected": None,
            "connected": False,
            "connected_at": None,
            "closed_at": None,
            "close_code": None,
            "close_reason": None,
            "dropped": None,
            "worknode_id": None,
        }
        self.connections.append(record)
        protocol.cb_record = record
        if target.path != WS_PATH:
            record["status"], record["rejected"] = 404, "path"
        elif self.reject_remaining > 0:
            self.reject_remaining -= 1
            record["status"], record["rejected"] = 401, "forced"
        elif not token_ok:
            record["status"], record["rejected"] = 401, "token"
        if record["rejected"] is None:
            return None
        self.write_log({"event": "reject", "conn": record})
        await self.changed()
        body = json.dumps({"error": "not found" if record["status"] == 404
                           else "invalid token"}).encode()
        return (http.HTTPStatus(record["status"]), [("Content-Type", "application/json"),
                                                    ("Connection", "close")], body)

    async def handler(self, ws, path=None):
        from websockets.exceptions import ConnectionClosed

        record = ws.cb_record
        conn_id = record["id"]
        entry = OpenConnection(ws, record)
        record.update(status=101, connected=True, connected_at=time.time(),
                      worknode_id="wn-%d" % conn_id)
        self.open[conn_id] = entry
        self.write_log({"event": "connect", "conn": record})
        await self.changed()
        try:
            _, welcome = envelope("welcome", {"worknode_id": record["worknode_id"],
                                              "name": WELCOME_NAME,
                                              "labels": WELCOME_LABELS})
            await ws.send(welcome)
            async for data in ws:
                await self.record_message(conn_id, data)
        except ConnectionClosed:
            pass
        finally:
            record.update(connected=False, closed_at=time.time(), close_code=ws.close_code,
                          close_reason=ws.close_reason)
            del self.open[conn_id]
            entry.done.set()
            self.write_log({"event": "close", "conn": record})
            await self.changed()

    async def record_message(self, conn_id, data):
        rec = {"seq": len(self.messages) + 1, "conn": conn_id, "received_at": time.time(),
               "size": len(data.encode() if isinstance(data, str) else data),
               "type": None, "task_id": None, "message": None}
        try:
            if isinstance(data, bytes):
                raise ValueError("binary frame")
            msg = json.loads(data)
            if not isinstance(msg, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            rec["error"] = "invalid JSON: %s" % e if isinstance(e, json.JSONDecodeError) else str(e)
            rec["text"] = data if isinstance(data, str) else data.decode("latin-1")
        else:
            rec["message"] = msg
            if isinstance(msg.get("type"), str):
                rec["type"] = msg["type"]
            payload = msg.get("payload")
            if isinstance(payload, dict) and isinstance(payload.get("task_id"), str):
                rec["task_id"] = payload["task_id"]
            elif isinstance(payload, dict) and isinstance(payload.get("call_id"), str):
                rec["task_id"] = payload["call_id"]  # an mcp.result, found by its call_id
        self.messages.append(rec)
        self.write_log(rec)
        await self.changed()

    # -- the control side -------------------------------------------------

    def match_messages(self, q):
        since = int(q.get("since", "0") or 0)
        conn = int(q["conn"]) if q.get("conn") else None
        return [m for m in self.messages[since:]
                if ("type" not in q or m["type"] == q["type"])
                and ("task_id" not in q or m["task_id"] == q["task_id"])
                and (conn is None or m["conn"] == conn)]

    def match_connection(self, q):
        state = q.get("state", "connected")
        if state not in ("connected", "attempt", "closed"):
            raise HTTPError(400, "state must be connected, attempt or closed")
        want_id = int(q["id"]) if q.get("id") else None
        after = int(q.get("after", "0") or 0)
        for rec in self.connections:
            if want_id is not None and rec["id"] != want_id:
                continue
            if want_id is None and rec["id"] <= after:
                continue
            if (state == "attempt"
                    or (state == "connected" and rec["connected_at"] is not None)
                    or (state == "closed" and rec["closed_at"] is not None)):
                return rec
        return None

    async def wait_until(self, find, timeout):
        async with self.cond:
            try:
                return await asyncio.wait_for(self.cond.wait_for(find), timeout)
            except asyncio.TimeoutError:
                raise HTTPError(408, "timed out after %s s" % timeout) from None

    def state(self):
        cur = self.current()
        return {"connected": bool(self.open), "current": cur.record["id"] if cur else None,
                "last_seq": len(self.messages), "token_set": self.token is not None,
                "reject_remaining": self.reject_remaining, "connections": self.connections}

    async def send(self, body, text):
        from websockets.exceptions import ConnectionClosed

        entry = self.pick(body.get("conn"))
        try:
            await entry.ws.send(text)
        except ConnectionClosed:
            raise HTTPError(409, "connection %d closed while sending" % entry.record["id"])
        return entry.record["id"]

    async def control(self, method, path, query, body):
        q = {k: v for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True)}
        if method == "GET":
            timeout = float(q.get("timeout", "10"))
            if path == "/state":
                return 200, self.state()
            if path == "/messages":
                return 200, self.match_messages(q)
            if path == "/wait":
                return 200, await self.wait_until(
                    lambda: next(iter(self.match_messages(q)), None), timeout)
            if path == "/wait_connection":
                self.match_connection(q)  # validates state= before waiting
                return 200, await self.wait_until(lambda: self.match_connection(q), timeout)
            raise HTTPError(404, "no such endpoint")
        if method != "POST":
            raise HTTPError(405, "use GET or POST")
        if not isinstance(body, dict):
            raise HTTPError(400, "body must be a JSON object")
        if path == "/task":
            entry = self.pick(body.get("conn"))
            task_id = body.get("task_id") or "task-" + uuid.uuid4().hex[:12]
            payload = {"task_id": task_id,
                       "trace_id": body.get("trace_id") or "trace-" + uuid.uuid4().hex[:12],
                       "source_instance_id": body.get("source_instance_id") or "si-mock",
                       "operation": body.get("operation", "bash"),
                       "args": body.get("args", {})}
            msg_id, text = envelope("task.request", payload)
            conn = await self.send({"conn": entry.record["id"]}, text)
            return 200, {"task_id": task_id, "id": msg_id, "conn": conn}
        if path == "/cancel":
            if not isinstance(body.get("task_id"), str):
                raise HTTPError(400, "task_id (string) required")
            msg_id, text = envelope("task.cancel", {"task_id": body["task_id"]})
            return 200, {"id": msg_id, "conn": await self.send(body, text)}
        if path == "/send":
            if not isinstance(body.get("type"), str):
                raise HTTPError(400, "type (string) required")
            msg_id, text = envelope(body["type"], body.get("payload", {}))
            return 200, {"id": msg_id, "conn": await self.send(body, text)}
        if path == "/send_raw":
            if not isinstance(body.get("text"), str):
                raise HTTPError(400, "text (string) required")
            return 200, {"conn": await self.send(body, body["text"])}
        if path == "/drop":
            mode = body.get("mode", "close")
            if mode not in ("close", "abort"):
                raise HTTPError(400, "mode must be close or abort")
            entry = self.pick(body.get("conn"))
            entry.record["dropped"] = mode
            if mode == "close":
                await entry.ws.close(code=1001, reason="going away")
            else:
                entry.ws.transport.abort()
            try:
                await asyncio.wait_for(entry.done.wait(), CLOSE_TIMEOUT + 3)
            except asyncio.TimeoutError:
                pass
            return 200, entry.record
        if path == "/reject":
            count = body.get("count", 1)
            if not isinstance(count, int) or count < 0:
                raise HTTPError(400, "count must be an integer >= 0")
            self.reject_remaining = count
            return 200, {"reject_remaining": count}
        if path == "/token":
            token = body.get("token")
            if token is not None and not isinstance(token, str):
                raise HTTPError(400, "token must be a string or null")
            self.token = token
            return 200, {"token_set": token is not None}
        raise HTTPError(404, "no such endpoint")

    async def serve_control(self, reader, writer):
        try:
            status, result = await self._control_request(reader)
        except HTTPError as e:
            status, result = e.status, {"error": e.message}
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        except Exception as e:  # a bug here must not kill the server
            status, result = 500, {"error": "%s: %s" % (type(e).__name__, e)}
        data = json.dumps(result).encode()
        reason = http.client.responses.get(status, "Unknown")
        head = ("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                "Connection: close\r\n\r\n" % (status, reason, len(data))).encode()
        try:
            writer.write(head + data)
            await writer.drain()
            writer.close()
            await writer.wait_closed()
        except ConnectionError:
            pass

    async def _control_request(self, reader):
        line = (await reader.readuntil(b"\r\n")).decode("latin-1").rstrip("\r\n")
        parts = line.split(" ")
        if len(parts) != 3:
            raise HTTPError(400, "bad request line")
        method, target, _ = parts
        length = 0
        while True:
            h = (await reader.readuntil(b"\r\n")).decode("latin-1").rstrip("\r\n")
            if not h:
                break
            name, _, value = h.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
            elif name.strip().lower() == "transfer-encoding":
                raise HTTPError(400, "send Content-Length")
        if length > MAX_CONTROL_BODY:
            raise HTTPError(400, "body too large")
        raw = await reader.readexactly(length) if length else b""
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise HTTPError(400, "body is not JSON") from None
        split = urllib.parse.urlsplit(target)
        try:
            return await self.control(method, split.path, split.query, body)
        except ValueError as e:  # int()/float() of a bad query parameter
            raise HTTPError(400, "bad parameter: %s" % e) from None


def write_ready_file(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(obj) + "\n")
    os.replace(tmp, path)


async def run(args, token):
    import websockets.legacy.server as wsserver

    platform = Platform(token, args.log)

    class Protocol(wsserver.WebSocketServerProtocol):
        async def process_request(self, path, request_headers):
            return await platform.check_request(self, path, request_headers)

    tls = None
    if args.cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(os.path.join(args.cert, "server.pem"),
                            os.path.join(args.cert, "server.key"))
        tls.set_alpn_protocols(["http/1.1"])

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    ping = args.ping_interval if args.ping_interval > 0 else None
    ws_server = await wsserver.serve(platform.handler, "127.0.0.1", args.port, ssl=tls,
                                     create_protocol=Protocol, max_size=MAX_FRAME,
                                     ping_interval=ping, ping_timeout=ping,
                                     close_timeout=CLOSE_TIMEOUT)
    control = await asyncio.start_server(platform.serve_control, "127.0.0.1", args.control_port,
                                         limit=1024 * 1024)
    ws_port = ws_server.sockets[0].getsockname()[1]
    control_port = control.sockets[0].getsockname()[1]
    write_ready_file(args.ready_file, {"ws_port": ws_port, "control_port": control_port})

    await stop.wait()
    control.close()
    ws_server.close()  # closes open connections with 1001
    try:
        await asyncio.wait_for(ws_server.wait_closed(), CLOSE_TIMEOUT + 1)
    except asyncio.TimeoutError:
        for entry in list(platform.open.values()):
            entry.ws.transport.abort()
    if platform.log is not None:
        platform.log.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description="mock agent platform for credbroker runner")
    ap.add_argument("--port", type=int, default=0, help="WebSocket port (0: any)")
    ap.add_argument("--control-port", type=int, default=0, help="control API port (0: any)")
    ap.add_argument("--ready-file", required=True)
    ap.add_argument("--token", default=None, help="the accepted runner token")
    ap.add_argument("--token-file", default=None, help="file holding the accepted token")
    ap.add_argument("--cert", default=None, help="directory with server.pem, server.key: wss")
    ap.add_argument("--log", default=None, help="JSON-lines log of received messages")
    ap.add_argument("--ping-interval", type=float, default=20.0,
                    help="keepalive ping interval and timeout in s (0: none)")
    args = ap.parse_args(argv)
    token = args.token
    if args.token_file:
        if token is not None:
            ap.error("--token and --token-file are exclusive")
        with open(args.token_file) as f:
            token = f.read().strip()
        if not token:
            ap.error("empty token file")
    asyncio.run(run(args, token))
    return 0


# -- client (stdlib only): for tests and the demo ---------------------------------

def read_json_lines(path):
    """The JSON records of a JSON-lines log so far (a line being written is skipped).
    Also used by the e2e suite for its upstreams' logs."""
    out = []
    for line in Path(path).read_bytes().split(b"\n"):
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError:  # a line being written right now
                pass
    return out


class PlatformError(Exception):
    """An unexpected answer from the control API; .status, .body."""

    def __init__(self, method, path, status, body):
        super().__init__("%s %s -> %s %s" % (method, path, status, body))
        self.status = status
        self.body = body


class PlatformClient:
    """Talks to a running mock platform's control API.

    control(method, path, body=None) returns (status, parsed JSON) for any
    status; the helpers raise PlatformError on an unexpected status."""

    def __init__(self, control_port, host="127.0.0.1", ws_port=None, tls=False):
        self.host = host
        self.control_port = int(control_port)
        self.ws_port = ws_port
        if ws_port is not None:
            self.ws_url = "%s://%s:%d%s" % ("wss" if tls else "ws", host, ws_port, WS_PATH)

    def url(self, token=None, broker=False, **params):
        """ws_url with ?token=..&broker=1 and any other query parameters."""
        q = {}
        if token is not None:
            q["token"] = token
        if broker:
            q["broker"] = "1"
        q.update(params)
        return self.ws_url + ("?" + urllib.parse.urlencode(q) if q else "")

    def control(self, method, path, body=None, timeout=30.0):
        conn = http.client.HTTPConnection(self.host, self.control_port, timeout=timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            headers = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read() or b"null")
        finally:
            conn.close()

    def _ok(self, method, path, body=None, timeout=30.0):
        status, result = self.control(method, path, body, timeout)
        if status != 200:
            raise PlatformError(method, path, status, result)
        return result

    @staticmethod
    def _query(**params):
        q = {k: v for k, v in params.items() if v is not None}
        return "?" + urllib.parse.urlencode(q) if q else ""

    # -- reading ----------------------------------------------------------

    def state(self):
        return self._ok("GET", "/state")

    def connections(self):
        return self.state()["connections"]

    def messages(self, type=None, task_id=None, conn=None, since=None):
        return self._ok("GET", "/messages" + self._query(type=type, task_id=task_id, conn=conn,
                                                         since=since))

    def wait(self, type=None, task_id=None, timeout=10.0, conn=None, since=None):
        """The oldest matching message record; raises TimeoutError after timeout s."""
        path = "/wait" + self._query(type=type, task_id=task_id, conn=conn, since=since,
                                     timeout=timeout)
        status, result = self.control("GET", path, timeout=timeout + 10)
        if status == 408:
            raise TimeoutError("no message type=%s task_id=%s within %s s" % (type, task_id, timeout))
        if status != 200:
            raise PlatformError("GET", path, status, result)
        return result

    def result(self, task_id, timeout=10.0):
        """The payload of the task.result for task_id (waits for it)."""
        return self.wait("task.result", task_id, timeout)["message"]["payload"]

    def wait_connection(self, state="connected", id=None, after=None, timeout=10.0):
        """The first connection record with this id (or id > after) in the
        state connected|attempt|closed; raises TimeoutError after timeout s."""
        path = "/wait_connection" + self._query(state=state, id=id, after=after, timeout=timeout)
        status, result = self.control("GET", path, timeout=timeout + 10)
        if status == 408:
            raise TimeoutError("no connection %s (id=%s after=%s) within %s s"
                               % (state, id, after, timeout))
        if status != 200:
            raise PlatformError("GET", path, status, result)
        return result

    # -- acting -----------------------------------------------------------

    def task(self, operation="bash", args=None, task_id=None, trace_id=None,
             source_instance_id=None, conn=None):
        """Sends a task.request; returns its task_id."""
        body = {"operation": operation, "args": {} if args is None else args}
        for k, v in (("task_id", task_id), ("trace_id", trace_id),
                     ("source_instance_id", source_instance_id), ("conn", conn)):
            if v is not None:
                body[k] = v
        return self._ok("POST", "/task", body)["task_id"]

    def bash(self, command, workdir=None, timeout=None, credential=None, env=None, **kw):
        """task("bash", {"command", "workdir"?, "timeout"?, "credential"?, "env"?})."""
        args = {"command": command}
        for k, v in (("workdir", workdir), ("timeout", timeout), ("credential", credential),
                     ("env", env)):
            if v is not None:
                args[k] = v
        return self.task("bash", args, **kw)

    # The file operations (RUNNER-OPS.md 5): each sends its task.request and returns the
    # task_id; the args left as None are not sent (the runner's defaults apply).
    def _op(self, operation, kw, **args):
        return self.task(operation, {k: v for k, v in args.items() if v is not None}, **kw)

    def read(self, path, offset=None, limit=None, **kw):
        return self._op("read", kw, path=path, offset=offset, limit=limit)

    def write(self, path, data, **kw):
        """data: bytes, sent base64-encoded as the platform does."""
        import base64
        return self._op("write", kw, path=path, content=base64.b64encode(data).decode())

    def list(self, path, recursive=None, ignore=None, **kw):
        return self._op("list", kw, path=path, recursive=recursive, ignore=ignore)

    def glob(self, pattern, **kw):
        return self._op("glob", kw, pattern=pattern)

    def grep(self, pattern, include=None, **kw):
        return self._op("grep", kw, pattern=pattern, include=include)

    def sync_skill(self, skill_dir, archive, checksum=None, skill_name=None, **kw):
        """archive: bytes (zip or tar.gz), sent base64-encoded as zip_data."""
        import base64
        return self._op("sync_skill", kw, skill_dir=skill_dir, skill_name=skill_name,
                        zip_data=base64.b64encode(archive).decode(), checksum=checksum)

    def cancel(self, task_id, conn=None):
        return self._ok("POST", "/cancel", {"task_id": task_id, "conn": conn})

    def mcp_call(self, payload, conn=None):
        """Sends an mcp.call with payload (call_id, server, tool_name, arguments: sent as
        given, so a test can send bad ones); returns the message id."""
        return self.send("mcp.call", payload, conn)["id"]

    def mcp_result(self, call_id, timeout=10.0):
        """The payload of the mcp.result for call_id (waits for it)."""
        return self.wait("mcp.result", call_id, timeout)["message"]["payload"]

    def send(self, type, payload=None, conn=None):
        return self._ok("POST", "/send", {"type": type, "payload": payload or {}, "conn": conn})

    def send_raw(self, text, conn=None):
        return self._ok("POST", "/send_raw", {"text": text, "conn": conn})

    def drop(self, mode="close", conn=None):
        """Ends a runner connection; returns its (closed) record."""
        return self._ok("POST", "/drop", {"mode": mode, "conn": conn})

    def reject(self, count):
        return self._ok("POST", "/reject", {"count": count})

    def set_token(self, token):
        return self._ok("POST", "/token", {"token": token})


class MockPlatform(PlatformClient):
    """Starts tools/mock_platform.py (with /usr/bin/python3) in workdir and
    waits until it listens. .ws_url, .control_port, .log_path, .stop()."""

    def __init__(self, workdir, token=None, token_file=None, cert_dir=None,
                 python="/usr/bin/python3", extra_args=(), name="mock_platform"):
        workdir = Path(workdir)
        self.token = token
        self.ready_file = workdir / (name + ".ready")
        self.log_path = workdir / (name + ".log")
        self.stderr_path = workdir / (name + ".stderr")
        self.log_path.touch()
        argv = [python, str(Path(__file__).resolve()), "--port", "0", "--control-port", "0",
                "--ready-file", str(self.ready_file), "--log", str(self.log_path)]
        if token is not None:
            argv += ["--token", token]
        if token_file is not None:
            argv += ["--token-file", str(token_file)]
        if cert_dir is not None:
            argv += ["--cert", str(cert_dir)]
        argv += [str(a) for a in extra_args]
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._stderr,
                                     stderr=self._stderr)
        deadline = time.monotonic() + 15
        while not self.ready_file.exists():
            if self.proc.poll() is not None:
                self._stderr.close()
                raise RuntimeError("%s exited with %s before it was ready:\n%s"
                                   % (name, self.proc.returncode, self.stderr()))
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("%s not ready after 15 s:\n%s" % (name, self.stderr()))
            time.sleep(0.01)
        ports = json.loads(self.ready_file.read_text())
        super().__init__(ports["control_port"], ws_port=ports["ws_port"],
                         tls=cert_dir is not None)

    def stderr(self):
        return self.stderr_path.read_text(errors="replace")

    def log_lines(self):
        """The --log records written so far (messages and events)."""
        return read_json_lines(self.log_path)

    def stop(self, timeout=5):
        """SIGTERM, then SIGKILL after timeout s; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self._stderr.closed:
            self._stderr.close()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


if __name__ == "__main__":
    sys.exit(main())
