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
"""

import json
import os
import sys

mode = sys.argv[1] if len(sys.argv) > 1 else "ok"
if mode == "stderr-exit":
    sys.stderr.write("starting\nfatal: no config\n")
    sys.exit(1)


def send(msg):
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    req = json.loads(line)
    if "id" not in req:
        continue  # a notification
    method, rid = req.get("method"), req["id"]
    if mode == "no-init":
        continue
    if method == "initialize":
        version = "1999-01-01" if mode == "bad-version" else req["params"]["protocolVersion"]
        send({"jsonrpc": "2.0", "id": rid, "result": {
            "protocolVersion": version, "capabilities": {"tools": {}},
            "serverInfo": {"name": "peer", "version": "1"}}})
    elif method == "tools/list":
        send({"jsonrpc": "2.0", "id": rid, "result": {"tools": [
            {"name": "echo", "description": "echoes", "inputSchema": {"type": "object"}}]}})
    elif method == "tools/call":
        if mode == "exit-on-call":
            sys.exit(3)
        text = "%s pid=%d tag=%s" % (req["params"]["arguments"].get("message", ""), os.getpid(),
                                     os.environ.get("MCP_PEER_TAG", ""))
        send({"jsonrpc": "2.0", "id": rid, "result": {"content": [{"type": "text", "text": text}]}})
    else:
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "Method not found"}})
