#!/usr/bin/python3
"""A small MCP server over stdio (newline-delimited JSON-RPC), Python stdlib only, for the
unit tests of the runner's MCP session pool (tests/unit/test_mcp_pool.c). The real
reference server (@modelcontextprotocol/server-everything) is what the e2e tests use; this
one exists for what a test must control: how the server misbehaves.

    mcp_stdio_peer.py [MODE]

MODE:
  ok           answers initialize, tools/list (one tool "echo"), tools/call echo
               ({"content": [{"type": "text", "text": <message>}]}) and shows its pid and
               the MCP_PEER_TAG variable in the echo: "<message> pid=<pid> tag=<tag>"
  exit-on-call exits with status 3 when a tools/call arrives
  no-init      reads everything, answers nothing
  bad-version  answers initialize with protocol version 1999-01-01
  stderr-exit  writes "fatal: no config" to stderr and exits 1 at once
  garbage      answers initialize with a line that is not JSON
  huge-reply   as ok, but answers tools/call with one 20 MiB message
  flood        as ok, but answers tools/call with notifications, without end
  stall        as ok, but never answers tools/call (and stays)
  paged        as ok, but tools/list answers in three pages (tools one, two, three)
  stderr-flood writes 8 MiB to stderr first, then as ok
"""

import json
import os
import sys

mode = sys.argv[1] if len(sys.argv) > 1 else "ok"
if mode == "stderr-exit":
    sys.stderr.write("starting\nfatal: no config\n")
    sys.exit(1)


if mode == "stderr-flood":
    sys.stderr.write(("noise " * 170 + "\n") * 8192)
    sys.stderr.flush()


def send(msg):
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def flood():
    note = json.dumps({"jsonrpc": "2.0", "method": "notifications/message",
                       "params": {"level": "info", "data": "x" * 200}}) + "\n"
    chunk = note * 64
    while True:
        sys.stdout.write(chunk)
        sys.stdout.flush()


for line in sys.stdin:
    req = json.loads(line)
    if "id" not in req:
        continue  # a notification
    method, rid = req.get("method"), req["id"]
    if mode == "no-init":
        continue
    if method == "initialize" and mode == "garbage":
        sys.stdout.write("<html>this is not JSON-RPC</html>\n")
        sys.stdout.flush()
    elif method == "initialize":
        version = "1999-01-01" if mode == "bad-version" else req["params"]["protocolVersion"]
        send({"jsonrpc": "2.0", "id": rid, "result": {
            "protocolVersion": version, "capabilities": {"tools": {}},
            "serverInfo": {"name": "peer", "version": "1"}}})
    elif method == "tools/list" and mode == "paged":
        cursor = (req.get("params") or {}).get("cursor")
        page = {None: ("one", "p2"), "p2": ("two", "p3"), "p3": ("three", "")}[cursor]
        send({"jsonrpc": "2.0", "id": rid, "result": {
            "tools": [{"name": page[0], "description": ""}], "nextCursor": page[1]}})
    elif method == "tools/list":
        send({"jsonrpc": "2.0", "id": rid, "result": {"tools": [
            {"name": "echo", "description": "echoes", "inputSchema": {"type": "object"}}]}})
    elif method == "tools/call":
        if mode == "exit-on-call":
            sys.exit(3)
        if mode == "flood":
            flood()
        if mode == "stall":
            continue
        if mode == "huge-reply":
            send({"jsonrpc": "2.0", "id": rid, "result": {"content": [
                {"type": "text", "text": "y" * (20 * 1024 * 1024)}]}})
            continue
        text = "%s pid=%d tag=%s" % (req["params"]["arguments"].get("message", ""), os.getpid(),
                                     os.environ.get("MCP_PEER_TAG", ""))
        send({"jsonrpc": "2.0", "id": rid, "result": {"content": [{"type": "text", "text": text}]}})
    else:
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "Method not found"}})
