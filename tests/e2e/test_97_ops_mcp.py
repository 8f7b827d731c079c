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


def test_the_mcp_call_message(platform, runner):
    # mcp.call / mcp.result (RUNNER-OPS.md 9.7): the same logic as mcp_call, the same
    # session (one config: the same server process, so the very same content).
    srv = server(tag="message")
    res = call(platform, srv, args={"message": "same"})
    assert res["success"] is True, res
    platform.mcp_call({"call_id": "c-1", "server": srv, "tool_name": "echo",
                       "arguments": {"message": "same"}})
    assert platform.mcp_result("c-1", timeout=30) == {"call_id": "c-1", "success": True,
                                                      "result": res["result"]}
    # A payload Go cannot read is answered under its call_id; bad arguments as mcp_call.
    platform.mcp_call({"call_id": "c-2", "server": [], "tool_name": "echo"})
    assert platform.mcp_result("c-2") == {
        "call_id": "c-2", "success": False,
        "error": "invalid mcp.call payload: json: cannot unmarshal array into Go struct field "
                 "MCPCallPayload.server of type protocol.MCPServerConfig"}
    platform.mcp_call({"call_id": "c-3", "server": srv, "tool_name": "echo", "arguments": [1]})
    assert platform.mcp_result("c-3")["error"] == (
        "failed to parse tool arguments: json: cannot unmarshal array into Go value of type "
        "map[string]interface {}")
    # No call_id to answer under: logged and dropped; the runner goes on.
    platform.mcp_call({"call_id": 7, "server": srv, "tool_name": "echo"})
    runner.wait_log("ignoring a malformed message from the platform: payload.call_id: "
                    "expected a string")
    platform.mcp_call({"call_id": "c-4", "server": srv, "tool_name": "echo",
                       "arguments": {"message": "after"}})
    assert platform.mcp_result("c-4", timeout=30)["result"]["content"].startswith("after pid=")
    assert sorted(m["task_id"] for m in platform.messages(type="mcp.result")) == \
        ["c-1", "c-2", "c-3", "c-4"]


# -- the MCP project's reference server (tools/mcp: npm, installed by scripts/deps) --------

EVERYTHING = REPO / "tools" / "mcp" / "node_modules" / "@modelcontextprotocol" / \
    "server-everything" / "dist" / "index.js"


def everything_stdio(name="everything"):
    return {"name": name, "transport": "stdio", "command": "node",
            "args": [str(EVERYTHING), "stdio"]}


def start_everything(tmp_path_factory, mode):
    """server-everything in mode on a free port of 127.0.0.1: (process, port, log)."""
    import socket
    import subprocess
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    log = open(tmp_path_factory.mktemp("everything") / "out.log", "wb")
    proc = subprocess.Popen(["node", str(EVERYTHING), mode], stdout=log,
                            stderr=subprocess.STDOUT, env=dict(os.environ, PORT=str(port)))

    def listening():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    wait_for(listening, timeout=20)
    return proc, port, log


@pytest.fixture(scope="module")
def everything_http(tmp_path_factory):
    """server-everything in its Streamable HTTP mode: its /mcp URL."""
    proc, port, log = start_everything(tmp_path_factory, "streamableHttp")
    yield "http://127.0.0.1:%d/mcp" % port
    proc.terminate()
    proc.wait(10)
    log.close()


@pytest.fixture(scope="module")
def everything_sse(tmp_path_factory):
    """server-everything in its legacy HTTP+SSE mode: its /sse URL."""
    proc, port, log = start_everything(tmp_path_factory, "sse")
    yield "http://127.0.0.1:%d/sse" % port
    proc.terminate()
    proc.wait(10)
    log.close()


def test_everything_over_stdio(platform, runner):
    res = platform.result(platform.task("mcp_list_tools", {"server": everything_stdio()}),
                          timeout=60)
    assert res["success"] is True, res
    names = [t["name"] for t in res["result"]["tools"]]
    assert "echo" in names and len(names) > 5, names
    echo = [t for t in res["result"]["tools"] if t["name"] == "echo"][0]
    assert echo["description"] and echo["input_schema"]["type"] == "object"
    res = call(platform, everything_stdio(), args={"message": "over stdio"}, wait=60)
    assert res["success"] is True, res
    assert "over stdio" in res["result"]["content"]


def test_everything_over_streamable_http(platform, runner, everything_http):
    for transport in ("http", "streamable_http", "streamable-http", "sse"):
        srv = {"name": "everything-http", "transport": transport, "url": everything_http}
        res = call(platform, srv, args={"message": "over " + transport}, wait=60)
        assert res["success"] is True, (transport, res)
        assert "over " + transport in res["result"]["content"]
    res = platform.result(platform.task("mcp_list_tools", {"server": srv}), timeout=60)
    assert res["success"] is True and any(t["name"] == "echo" for t in res["result"]["tools"])


def test_everything_over_legacy_sse(platform, runner, everything_sse):
    # The first POST gets a 4xx from a legacy server: the runner falls back to the GET
    # stream and its endpoint event (RUNNER-OPS.md 9.2).
    srv = {"name": "everything-sse", "transport": "sse", "url": everything_sse}
    res = call(platform, srv, args={"message": "over legacy sse"}, wait=60)
    assert res["success"] is True, res
    assert "over legacy sse" in res["result"]["content"]


def test_everything_tools_results(platform, runner):
    srv = everything_stdio("everything-results")
    res = call(platform, srv, tool="get-sum", args={"a": 2, "b": 3}, wait=60)
    assert res["success"] is True and "5" in res["result"]["content"], res
    res = call(platform, srv, tool="get-tiny-image", wait=60)
    assert res["success"] is True and "[Image: image/png]" in res["result"]["content"], res
    res = call(platform, srv, tool="get-structured-content", args={"location": "New York"},
               wait=60)
    assert res["success"] is True, res
    assert isinstance(res["result"].get("structured_content"), dict), res
    res = call(platform, srv, tool="no-such-tool", wait=60)
    # An unknown tool is the server's error (a JSON-RPC error or an isError result).
    assert (res["success"] is False and res["error"].startswith(
        "failed to call tool 'no-such-tool': ")) or res["result"].get("is_error") is True, res


def test_a_stdio_server_gets_the_scrubbed_environment_and_its_own(platform, runner):
    srv = everything_stdio("everything-env")
    srv["env"] = {"MY_SERVER_SETTING": "on"}
    res = call(platform, srv, tool="get-env", wait=60)
    assert res["success"] is True, res
    env = res["result"]["content"]
    assert "MY_SERVER_SETTING" in env
    assert "FLASHDUTY_" not in env  # never the runner's variables, or its token


def test_timeout_and_cancel_of_a_long_tool(platform, runner):
    srv = everything_stdio("everything-long")
    args = {"duration": 60, "steps": 60}
    res = call(platform, srv, tool="trigger-long-running-operation", args=args, timeout=1,
               wait=60)
    assert res["success"] is False
    assert res["error"] == ("failed to call tool 'trigger-long-running-operation': context "
                            "deadline exceeded"), res
    # The cancel must find the call under way, not its connect: it goes once the runner
    # has sent tools/call (its debug log says so).
    sent = "mcp: tools/call sent to 'everything-long'"
    before = runner.log().count(sent)
    tid = platform.task("mcp_call", {"server": srv, "tool_name": "trigger-long-running-operation",
                                     "args": args})
    wait_for(lambda: runner.log().count(sent) > before, timeout=30)
    platform.cancel(tid)
    res = platform.result(tid, timeout=30)
    assert res["success"] is False
    assert res["error"] == ("failed to call tool 'trigger-long-running-operation': context "
                            "canceled"), res
