"""The runner's mcp_call and mcp_list_tools (RUNNER-OPS.md 9.5, 9.6) over stdio, through
the real runner and its session pool, against a stdio MCP server the runner starts
(tests/unit/peers/mcp_stdio_peer.py). Sessions per whole config, a failed call closing
its server, Go's error texts."""

import os
import subprocess

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


def test_a_listing_follows_next_cursor(platform, runner):
    res = platform.result(platform.task("mcp_list_tools", {"server": server("paged")}),
                          timeout=30)
    assert res["result"] == {"tools": [{"name": n, "description": ""}
                                       for n in ("one", "two", "three")]}, res


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


def test_permission_rules_gate_a_stdio_servers_command_line(own_runner, tmp_path):
    # A server config is data from the platform: its command line is checked as a bash
    # command would be (RUNNER-OPS.md 9.3), before anything starts.
    rules = tmp_path / "permission.yaml"
    rules.write_text('permission:\n  "*": deny\n  "/usr/bin/python3 %s ok": allow\n' % PEER)
    platform, r = own_runner(args=["--permission-config", str(rules)])
    res = platform.result(platform.task("mcp_list_tools", {"server": server()}), timeout=30)
    assert res["success"] is True, res
    res = platform.result(platform.task("mcp_list_tools", {"server": server("no-init")}),
                          timeout=30)
    assert res["error"] == ("failed to connect to MCP server 'peer': command denied by rule "
                            "'*': /usr/bin/python3 %s no-init" % PEER), res
    assert not peer_pids(r, "no-init")


# -- hostile servers: each gives a clear error, is closed, and leaves no process ----------

def peer_pids(runner, mode):
    """The runner's python3 children running the peer in mode."""
    found = []
    for pid in child_pids(runner.proc.pid, "python3"):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if mode.encode() in argv:
            found.append(pid)
    return found


def no_peer_left(runner, mode):
    wait_for(lambda: not peer_pids(runner, mode), timeout=20)


def test_a_server_answering_garbage(platform, runner):
    res = platform.result(platform.task("mcp_list_tools", {"server": server("garbage",
                                                                            name="garbled")}),
                          timeout=30)
    assert res["success"] is False
    assert res["error"].startswith("failed to connect to MCP server 'garbled': invalid message "
                                   "from the server: not JSON"), res
    no_peer_left(runner, "garbage")


def test_a_server_answering_20_mib(platform, runner):
    res = call(platform, server("huge-reply"), args={})
    assert res["success"] is False
    assert res["error"] == "failed to call tool 'echo': message too large (over 16777216 bytes)", \
        res
    no_peer_left(runner, "huge-reply")


def test_a_server_flooding_notifications(platform, runner):
    tid = platform.task("mcp_call", {"server": server("flood"), "tool_name": "echo",
                                     "args": {}, "timeout": 3})
    # The runner stays itself while the flood runs: another task is answered.
    wait_for(lambda: peer_pids(runner, "flood"), timeout=20)
    other = platform.result(platform.bash("echo still here"), timeout=20)
    assert other["success"] is True and other["result"]["stdout"] == "still here\n", other
    res = platform.result(tid, timeout=30)
    assert res["error"] == "failed to call tool 'echo': context deadline exceeded", res
    no_peer_left(runner, "flood")


def test_a_stalled_call_closes_its_server(platform, runner):
    # The server is alive and well, but the call timed out: its session is not trusted
    # again (RUNNER-OPS.md 9.4), the server is stopped.
    res = call(platform, server("stall"), args={}, timeout=1)
    assert res["error"] == "failed to call tool 'echo': context deadline exceeded", res
    no_peer_left(runner, "stall")


def test_a_server_that_never_answers_initialize(platform, runner):
    # Its connect would end at the 30 s connect deadline (unit-tested in test_mcp_pool with a
    # short one); here the task is cancelled while it waits, and the server goes.
    started = "mcp stdio server started"
    before = runner.log().count(started)
    tid = platform.task("mcp_list_tools", {"server": server("no-init", name="silent")})
    wait_for(lambda: runner.log().count(started) > before and peer_pids(runner, "no-init"),
             timeout=20)
    platform.cancel(tid)
    res = platform.result(tid, timeout=20)
    assert res["error"] == "failed to connect to MCP server 'silent': context canceled", res
    no_peer_left(runner, "no-init")


def test_a_server_flooding_stderr_is_not_blocked(platform, runner):
    # 8 MiB on stderr before it answers: the runner drains it (keeping 64 KiB), so the
    # server never blocks on a full pipe.
    res = call(platform, server("stderr-flood"), args={"message": "after the noise"})
    assert res["success"] is True, res
    assert res["result"]["content"].startswith("after the noise pid="), res


HTTP_PEER = REPO / "tests" / "unit" / "mcp_http_peer.py"


@pytest.fixture(scope="module")
def hostile_http():
    proc = subprocess.Popen(["/usr/bin/python3", str(HTTP_PEER)], stdout=subprocess.PIPE,
                            text=True)
    port = int(proc.stdout.readline())
    yield "http://127.0.0.1:%d" % port
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("path, reason", [
    ("/fail500", "HTTP 500 on a POST: internal failure"),
    ("/garbage", "an answer to a POST came as 'text/html', not JSON or an event stream"),
    ("/huge", "a JSON answer over the 16777216-byte message limit"),
    ("/cut", "a POST's event stream was cut inside an event"),
])
def test_a_hostile_http_server(platform, runner, hostile_http, path, reason):
    # tests/unit/mcp_http_peer.py: 500s, a wrong content type, 20 MiB, a broken SSE stream.
    srv = {"name": "hostile", "transport": "http", "url": hostile_http + path}
    res = platform.result(platform.task("mcp_list_tools", {"server": srv}), timeout=60)
    assert res["success"] is False
    assert res["error"] == "failed to connect to MCP server 'hostile': " + reason, res


def test_sessions_keyed_on_dynamic_headers_over_http(platform, runner, hostile_http):
    # Go keys sessions by name only: bob's call would ride alice's session and headers.
    def whoami(user):
        srv = {"name": "per-user", "transport": "http", "url": hostile_http + "/mcp",
               "headers": {"X-Team": "sre"}, "dynamic_headers": {"X-User": user}}
        res = call(platform, srv, tool="whoami", args={})
        assert res["success"] is True, res
        return dict(kv.split("=") for kv in res["result"]["content"].split())

    a1, b, a2 = whoami("alice"), whoami("bob"), whoami("alice")
    assert a1["session"] == a2["session"] != b["session"]
    assert (a1["user"], a1["now"]) == ("alice", "alice")
    assert (b["user"], b["now"]) == ("bob", "bob")


def test_the_least_recently_used_session_makes_room(platform, runner):
    # At most 32 live sessions (RUNNER-OPS.md 9.4). 32 new configs leave only theirs (each
    # newer than any earlier test's); lru-0 used again; the 33rd closes lru-1, the idle one
    # used longest ago, and its server is gone.
    def pid_of(tag):
        res = call(platform, server(tag=tag), args={})
        assert res["success"] is True, res
        return int(res["result"]["content"].split("pid=")[1].split()[0])

    pids = {i: pid_of("lru-%d" % i) for i in range(32)}
    assert pid_of("lru-0") == pids[0]
    pid_of("lru-32")
    wait_for(lambda: not os.path.exists("/proc/%d" % pids[1]), timeout=20)
    assert all(os.path.exists("/proc/%d" % pids[i]) for i in range(32) if i != 1)
    assert len(peer_pids(runner, "ok")) == 32


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
