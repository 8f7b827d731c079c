"""The runner's mcp_call and mcp_list_tools (RUNNER-OPS.md 9.5, 9.6) over stdio, through
the real runner and its session pool, against a stdio MCP server the runner starts
(tests/unit/peers/mcp_stdio_peer.py). Sessions per whole config, a failed call closing
its server, Go's error texts."""

import os

import pytest

from conftest import REPO, child_pids, wait_for

PEER = str(REPO / "tests" / "unit" / "peers" / "mcp_stdio_peer.py")


def server(mode="ok", tag="t", name="peer"):
    return {"name": name, "transport": "stdio", "command": "/usr/bin/python3",
            "args": [PEER, mode], "env": {"MCP_PEER_TAG": tag}}


def call(platform, srv, tool="echo", args=None, timeout=None, wait=30):
    a = {"server": srv, "tool_name": tool}
    if args is not None:
        a["args"] = args
    if timeout is not None:
        a["timeout"] = timeout
    return platform.result(platform.task("mcp_call", a), timeout=wait)


def test_list_and_call(platform, runner):
    res = platform.result(platform.task("mcp_list_tools", {"server": server()}), timeout=30)
    assert res["success"] is True, res
    assert res["result"] == {"tools": [{"name": "echo", "description": "echoes",
                                        "input_schema": {"type": "object"}}]}
    res = call(platform, server(), args={"message": "hello"})
    assert res["success"] is True, res
    assert res["result"]["content"].startswith("hello pid=")
    assert res["result"]["content"].endswith("tag=t")


def test_one_server_per_config(platform, runner):
    pids = set()
    for tag in ("alice", "alice", "bob"):
        res = call(platform, server(tag=tag), args={"message": "x"})
        assert res["success"] is True, res
        pids.add((tag, res["result"]["content"].split("pid=")[1].split()[0]))
    assert len(pids) == 2  # alice's two calls shared a server, bob got his own


def test_a_failed_call_closes_its_server(platform, runner):
    res = call(platform, server(mode="exit-on-call"), args={})
    assert res["success"] is False
    assert res["error"].startswith("failed to call tool 'echo': server exited with status 3"), res
    wait_for(lambda: not any("exit-on-call" in open("/proc/%d/cmdline" % p).read()
                             for p in child_pids(runner.proc.pid, "python3")
                             if os.path.exists("/proc/%d/cmdline" % p)), timeout=15)


def test_gos_error_texts(platform, runner):
    res = call(platform, server(), args=[1, 2])
    assert res["error"] == ("failed to parse tool arguments: json: cannot unmarshal array into "
                            "Go value of type map[string]interface {}")
    srv = server()
    srv["transport"] = "carrier-pigeon"
    assert call(platform, srv)["error"] == "unsupported transport type 'carrier-pigeon'"
    res = call(platform, server(mode="stderr-exit", name="broken"))
    assert res["error"].startswith("failed to connect to MCP server 'broken': server exited "
                                   "with status 1"), res
    assert "fatal: no config" in res["error"]
