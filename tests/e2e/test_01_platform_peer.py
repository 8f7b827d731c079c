"""tools/mock_platform.py tested alone, with websockets' own client playing the
runner: if these fail, a failure of a runner test says nothing about the runner.

Control calls made while a WebSocket client is open go through
asyncio.to_thread: the client's event loop must keep running (to answer the
close handshake of /drop, for instance).
"""

import asyncio
import json
import signal
import ssl
import subprocess
import sys
import time

import pytest
import websockets
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatusCode

from conftest import REPO

TOOLS = str(REPO / "tools")
if TOOLS not in sys.path:
    sys.path.insert(0, TOOLS)

from mock_platform import MockPlatform, PlatformClient, PlatformError  # noqa: E402

TOKEN = "runner-token-0123456789abcdef"
MAX = 64 * 1024 * 1024


@pytest.fixture
def platform(tmp_path):
    p = MockPlatform(tmp_path, token=TOKEN)
    yield p
    p.stop()


def connect(url, **kw):
    return websockets.connect(url, max_size=MAX, open_timeout=5, close_timeout=2, **kw)


def runner_msg(msg_type, payload):
    return json.dumps({"id": "msg_test", "type": msg_type, "payload": payload,
                       "timestamp": int(time.time() * 1000)})


async def recv_json(ws, timeout=5):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def call(fn, *args, **kw):
    return await asyncio.to_thread(fn, *args, **kw)


async def expect_status(url, status, **kw):
    with pytest.raises(InvalidStatusCode) as e:
        async with connect(url, **kw):
            pass
    assert e.value.status_code == status


# -- handshake ------------------------------------------------------------------

def test_wrong_or_missing_token_is_401_and_recorded(platform):
    async def main():
        await expect_status(platform.url(token="wrong", broker=True), 401)
        await expect_status(platform.url(), 401)
        await expect_status(platform.url(token=TOKEN).replace("/runner/ws", "/other"), 404)

    asyncio.run(main())
    state = platform.state()
    assert not state["connected"] and state["current"] is None
    wrong, missing, other = state["connections"]
    assert (wrong["status"], wrong["rejected"], wrong["token_ok"]) == (401, "token", False)
    assert wrong["params"] == {"token": "wrong", "broker": "1"}
    assert wrong["peer"].startswith("127.0.0.1:")
    assert (missing["status"], missing["token_ok"], missing["params"]) == (401, False, {})
    assert (other["status"], other["rejected"]) == (404, "path")
    assert not any(c["connected"] or c["connected_at"] for c in state["connections"])


def test_right_token_gets_welcome_first_and_params_are_recorded(platform):
    async def main():
        async with connect(platform.url(token=TOKEN, broker=True)) as ws:
            welcome = await recv_json(ws)
            state = await call(platform.state)
            assert state["connected"] and state["current"] == 1
        async with connect(platform.url(token=TOKEN)) as ws:
            second = await recv_json(ws)
        return welcome, second

    welcome, second = asyncio.run(main())
    assert welcome["type"] == "welcome"
    assert welcome["id"].startswith("msg_") and isinstance(welcome["timestamp"], int)
    assert welcome["payload"] == {"worknode_id": "wn-1", "name": "mock-worknode",
                                  "labels": ["mock", "e2e"]}
    assert second["payload"]["worknode_id"] == "wn-2"
    first, plain = platform.wait_connection("closed", id=1), platform.wait_connection("closed", id=2)
    assert first["params"] == {"token": TOKEN, "broker": "1"}
    assert first["query"] == "token=%s&broker=1" % TOKEN
    assert "broker" not in plain["params"]
    for rec in (first, plain):
        assert rec["token_ok"] and rec["status"] == 101 and rec["rejected"] is None
        assert rec["connected_at"] <= rec["closed_at"] and not rec["connected"]
        assert rec["close_code"] == 1000  # the client closed normally
    events = [(e["event"], e["conn"]["id"]) for e in platform.log_lines()]
    assert sorted(events) == [("close", 1), ("close", 2), ("connect", 1), ("connect", 2)]


def test_no_configured_token_accepts_any(tmp_path):
    with MockPlatform(tmp_path) as p:
        async def main():
            async with connect(p.url()) as ws:
                return await recv_json(ws)

        assert asyncio.run(main())["type"] == "welcome"
        assert p.connections()[0]["token_ok"]


def test_token_file_and_token_change(tmp_path):
    (tmp_path / "tok").write_text("  from-file\n")
    with MockPlatform(tmp_path, token_file=tmp_path / "tok") as p:
        async def main():
            async with connect(p.url(token="from-file")) as ws:
                await recv_json(ws)
            await call(p.set_token, "new-token")
            await expect_status(p.url(token="from-file"), 401)
            async with connect(p.url(token="new-token")) as ws:
                await recv_json(ws)

        asyncio.run(main())
        assert [c["status"] for c in p.connections()] == [101, 401, 101]


def test_reject_refuses_the_next_attempts_even_with_the_right_token(platform):
    assert platform.reject(2) == {"reject_remaining": 2}

    async def main():
        for _ in range(2):
            await expect_status(platform.url(token=TOKEN), 401)
        async with connect(platform.url(token=TOKEN)) as ws:
            return await recv_json(ws)

    assert asyncio.run(main())["type"] == "welcome"
    recs = platform.connections()
    assert [(c["status"], c["rejected"], c["token_ok"]) for c in recs] == [
        (401, "forced", True), (401, "forced", True), (101, None, True)]
    assert platform.state()["reject_remaining"] == 0


# -- messages both ways -----------------------------------------------------------

def test_task_request_is_delivered_and_the_result_recorded(platform):
    args = {"command": "echo hi", "workdir": "/tmp", "timeout": 5,
            "credential": {"key": "k", "base_url": "https://x.example"}}

    async def main():
        async with connect(platform.url(token=TOKEN, broker=True)) as ws:
            assert (await recv_json(ws))["type"] == "welcome"
            await ws.send(runner_msg("heartbeat", {"worknode_id": "wn-1", "name": "r",
                                                   "labels": [], "version": "0.1",
                                                   "environment": {"os": "linux"}}))
            task_id = await call(platform.task, "bash", args, trace_id="tr-1",
                                 source_instance_id="si-1")
            req = await recv_json(ws)
            generated = await call(platform.bash, "true")
            req2 = await recv_json(ws)
            await ws.send(runner_msg("task.output", {"task_id": task_id, "stream": "stdout",
                                                     "data": "hi\n"}))
            waiter = asyncio.ensure_future(call(platform.wait, "task.result", task_id, 10))
            await ws.send(runner_msg("task.result", {
                "task_id": task_id, "source_instance_id": "si-1", "success": True,
                "result": {"stdout": "hi\n", "stderr": "", "exit_code": 0},
                "error": "", "exit_code": 0}))
            result = await waiter
            await call(platform.cancel, task_id)
            cancel = await recv_json(ws)
            return task_id, req, generated, req2, result, cancel

    task_id, req, generated, req2, result, cancel = asyncio.run(main())
    assert req["type"] == "task.request" and req["id"].startswith("msg_")
    assert req["payload"] == {"task_id": task_id, "trace_id": "tr-1", "source_instance_id": "si-1",
                              "operation": "bash", "args": args}
    assert req2["payload"]["task_id"] == generated != task_id
    assert req2["payload"]["args"] == {"command": "true"}
    assert req2["payload"]["trace_id"] and req2["payload"]["source_instance_id"]
    assert cancel["type"] == "task.cancel" and cancel["payload"] == {"task_id": task_id}

    assert result["type"] == "task.result" and result["task_id"] == task_id and result["conn"] == 1
    assert result["message"]["payload"]["result"]["stdout"] == "hi\n"
    assert platform.result(task_id) == result["message"]["payload"]
    assert [m["type"] for m in platform.messages()] == ["heartbeat", "task.output", "task.result"]
    assert platform.messages(type="task.result", task_id=task_id) == [result]
    assert platform.messages(task_id=task_id, since=2) == [result]
    assert platform.messages(type="task.result", task_id="nope") == []
    logged = [r for r in platform.log_lines() if "seq" in r]
    assert [r["seq"] for r in logged] == [1, 2, 3] and logged[2] == result


def test_wait_times_out_with_408(platform):
    status, body = platform.control("GET", "/wait?type=task.result&task_id=x&timeout=0.2")
    assert status == 408 and "error" in body
    with pytest.raises(TimeoutError):
        platform.wait("task.result", "x", timeout=0.1)
    with pytest.raises(TimeoutError):
        platform.wait_connection(timeout=0.1)


def test_sending_without_a_runner_is_409(platform):
    for path, body in (("/task", {"operation": "bash", "args": {}}), ("/cancel", {"task_id": "t"}),
                       ("/send_raw", {"text": "x"}), ("/drop", {"mode": "close"})):
        status, result = platform.control("POST", path, body)
        assert status == 409, path
    with pytest.raises(PlatformError) as e:
        platform.bash("true")
    assert e.value.status == 409
    assert platform.control("GET", "/nope")[0] == 404
    assert platform.control("POST", "/drop", {"mode": "explode"})[0] == 400


def test_send_raw_and_send_deliver_frames_as_given(platform):
    async def main():
        async with connect(platform.url(token=TOKEN)) as ws:
            await recv_json(ws)
            await call(platform.send_raw, "{not json")
            raw = await asyncio.wait_for(ws.recv(), 5)
            await call(platform.send, "weird.type", {"x": 1})
            weird = await recv_json(ws)
            await ws.send("garbage from the runner")
            await ws.send(b"\x00\xff")
            return raw, weird

    raw, weird = asyncio.run(main())
    platform.wait(conn=1, since=1)  # the handler may still be reading the queue
    assert raw == "{not json"
    assert weird["type"] == "weird.type" and weird["payload"] == {"x": 1}
    text, binary = platform.messages()
    assert text["message"] is None and text["type"] is None and "JSON" in text["error"]
    assert text["text"] == "garbage from the runner"
    assert binary["error"] == "binary frame" and binary["size"] == 2


def test_large_result_is_accepted(platform):
    stdout = "x" * (17 * 1024 * 1024)

    async def main():
        async with connect(platform.url(token=TOKEN)) as ws:
            await recv_json(ws)
            await ws.send(runner_msg("task.result", {"task_id": "big", "success": True,
                                                     "result": {"stdout": stdout}}))
            return await call(platform.wait, "task.result", "big", 20)

    rec = asyncio.run(main())
    assert rec["size"] > len(stdout)
    assert rec["message"]["payload"]["result"]["stdout"] == stdout


# -- ending connections -----------------------------------------------------------

def test_drop_close_sends_close_frame_1001(platform):
    async def main():
        async with connect(platform.url(token=TOKEN)) as ws:
            await recv_json(ws)
            dropped = await call(platform.drop, "close")
            with pytest.raises(ConnectionClosedOK) as e:
                await asyncio.wait_for(ws.recv(), 5)
            return dropped, e.value

    dropped, closed = asyncio.run(main())
    assert closed.rcvd is not None and closed.rcvd.code == 1001
    assert dropped["dropped"] == "close" and not dropped["connected"]
    assert dropped["closed_at"] is not None and dropped["close_code"] == 1001
    assert not platform.state()["connected"]


def test_drop_abort_ends_without_close_frame(platform):
    async def main():
        async with connect(platform.url(token=TOKEN)) as ws:
            await recv_json(ws)
            dropped = await call(platform.drop, "abort")
            with pytest.raises(ConnectionClosedError) as e:
                await asyncio.wait_for(ws.recv(), 5)
            return dropped, e.value

    dropped, closed = asyncio.run(main())
    assert closed.rcvd is None and closed.code == 1006
    assert dropped["dropped"] == "abort" and not dropped["connected"]
    assert dropped["close_code"] == 1006


def test_newest_connection_is_current_and_conn_picks_another(platform):
    async def main():
        async with connect(platform.url(token=TOKEN)) as old, \
                connect(platform.url(token=TOKEN)) as new:
            await recv_json(old)
            await recv_json(new)
            await call(platform.send, "to.new")
            await call(platform.send, "to.old", conn=1)
            return (await recv_json(old))["type"], (await recv_json(new))["type"]

    assert asyncio.run(main()) == ("to.old", "to.new")


def test_sigterm_closes_runners_with_1001_and_exits_quickly(platform):
    """SIGTERM closes the open runner connection with 1001, and the platform then exits 0
    by itself within the 5 s that MockPlatform.stop() gives it before SIGKILL: "quickly"
    means no test teardown has to kill it. How much sooner is not asserted (it was under
    3 s): a shared 2-core machine cannot promise a figure, and the platform's own way out
    when a connection does not close (abort after 3 s) also ends in exit 0."""
    async def main():
        async with connect(platform.url(token=TOKEN)) as ws:
            await recv_json(ws)
            platform.proc.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosedOK) as e:
                await asyncio.wait_for(ws.recv(), 5)
            try:
                code = await asyncio.to_thread(platform.proc.wait, 5)
            except subprocess.TimeoutExpired:
                code = "still running 5 s after the close"
            return e.value, code

    closed, code = asyncio.run(main())
    assert closed.rcvd.code == 1001
    assert code == 0, code


# -- wss ----------------------------------------------------------------------------

def test_wss_with_cert_is_verified_by_the_test_ca(tmp_path, certs):
    with MockPlatform(tmp_path, token=TOKEN, cert_dir=certs.dir) as p:
        assert p.ws_url.startswith("wss://127.0.0.1:")
        ctx = ssl.create_default_context(cafile=str(certs.ca))

        async def main():
            with pytest.raises(ssl.SSLCertVerificationError):
                async with connect(p.url(token=TOKEN), ssl=ssl.create_default_context()):
                    pass
            async with connect(p.url(token=TOKEN, broker=True), ssl=ctx) as ws:
                welcome = await recv_json(ws)
                task_id = await call(p.bash, "id")
                req = await recv_json(ws)
                await ws.send(runner_msg("task.result", {"task_id": task_id, "success": True}))
                rec = await call(p.wait, "task.result", task_id)
                await call(p.drop, "abort")
                with pytest.raises(ConnectionClosedError):
                    await asyncio.wait_for(ws.recv(), 5)
                return welcome, req, rec

        welcome, req, rec = asyncio.run(main())
        assert welcome["type"] == "welcome" and req["payload"]["args"] == {"command": "id"}
        assert rec["message"]["payload"]["success"] is True
        conns = p.connections()
        assert conns[-1]["params"]["broker"] == "1" and conns[-1]["dropped"] == "abort"


def test_client_attaches_to_a_running_platform(platform):
    other = PlatformClient(platform.control_port)
    assert other.state()["connections"] == []
