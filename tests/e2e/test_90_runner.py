"""`credbroker runner` (DESIGN.md section 6) against the mock agent platform
(tools/mock_platform.py) and the HTTPS test upstream.

Most tests share one runner (the `runner` fixture, one per module, started
with RUNNER_ARGS); the ones that end, starve or reconfigure a runner start
their own with `spawn` (a fresh MockPlatform each). Task results are waited
for through the platform's /wait; everything else is polled (wait_for).
"""

import json
import os
import re
import secrets
import signal
import time
import urllib.parse
from pathlib import Path

import pytest

from conftest import MockPlatform, RunnerProcess, make_child_env, run_process, wait_for

RUNNER_ARGS = ["--name", "e2e-runner", "--label", "team=sre", "--label", "zone=a"]
BROKER_URL = "http://flashduty.broker.local"


def new_key():
    return secrets.token_hex(16)


def marker():
    return "m" + secrets.token_hex(8)


def run_task(platform, command, wait=20.0, **kw):
    """Sends a bash task (kw: workdir, timeout, credential) and returns
    (task_id, task.result payload), waiting up to `wait` s for the result."""
    task_id = platform.bash(command, **kw)
    return task_id, platform.result(task_id, timeout=wait)


def env_of(text):
    """`env` output -> dict (lines without '=' are skipped)."""
    out = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            out[name] = value
    return out


def keys_by_marker(upstream, markers, timeout=10.0):
    """{marker: [app_key values]} for upstream requests with ?marker=M, once
    every marker has a request."""
    def collect():
        found = {}
        for req in upstream.requests():
            q = urllib.parse.parse_qs(req["query"], keep_blank_values=True)
            for m in q.get("marker", []):
                if m in markers:
                    found[m] = q.get("app_key", [])
        return found if set(found) == set(markers) else None

    return wait_for(collect, timeout, what="upstream requests for %d marker(s)" % len(markers))


def pid_gone(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")  # a zombie no longer runs


@pytest.fixture
def spawn(credbroker, certs, tmp_path):
    """spawn(binary=None, token="" (the platform's), args=(), wait_connected=True,
    platform_token=random) -> RunnerProcess against a fresh MockPlatform
    (.platform). Stopped at teardown (exit 0 asserted unless already stopped)."""
    started = []

    def start(binary=None, token="", args=(), wait_connected=True, platform_token=None, env=None):
        n = len(started)
        workdir = tmp_path / ("r%d" % n)
        workdir.mkdir()
        p = MockPlatform(workdir, token=platform_token or "rt-" + secrets.token_hex(16))
        started.append((p, None))
        r = RunnerProcess(binary or credbroker, p, workdir, certs.ca, token=token, args=args,
                          env=env, wait_connected=wait_connected)
        started[-1] = (p, r)
        return r

    yield start
    errors = []
    for p, r in started:
        try:
            if r is not None:
                r.close()
        except AssertionError as e:
            errors.append(str(e))
        finally:
            p.stop()
    assert not errors, "\n".join(errors)


@pytest.fixture(scope="module")
def nobroker_build():
    path = os.environ.get("CREDBROKER_NOBROKER_BUILD")
    if not path:
        pytest.skip("CREDBROKER_NOBROKER_BUILD is not set (scripts/test sets it to build-nobroker)")
    binary = Path(path) / "credbroker"
    if not os.access(binary, os.X_OK):
        pytest.skip("%s not found: meson setup build-nobroker -Dbroker=disabled" % binary)
    return binary


# -- connecting ---------------------------------------------------------------------

def test_normal_build_advertises_the_broker(runner, platform):
    params = runner.connection["params"]
    assert params == {"token": platform.token, "broker": "1"}
    assert runner.connection["token_ok"] and runner.connection["path"] == "/runner/ws"


def test_nobroker_build_does_not_advertise_the_broker(nobroker_build, spawn):
    r = spawn(binary=nobroker_build)
    assert r.connection["params"] == {"token": r.platform.token}
    hb = r.platform.wait("heartbeat")["message"]["payload"]
    assert hb["environment"]["broker_supported"] is False


@pytest.mark.parametrize("egress,advertised", [(False, False), (True, True)])
def test_probe_decides_whether_the_broker_is_advertised(spawn, egress, advertised):
    probe = "echo '{\"version\": \"1.0\", \"broker_egress\": %s}'" % json.dumps(egress)
    r = spawn(args=["--set", "broker.probe=" + probe])
    assert ("broker" in r.connection["params"]) is advertised
    if advertised:
        assert r.connection["params"]["broker"] == "1"
    else:
        r.wait_log("did not report")


def test_heartbeat_carries_version_environment_name_and_labels(runner, platform):
    rec = platform.wait("heartbeat", conn=runner.connection["id"])
    msg = rec["message"]
    assert msg["type"] == "heartbeat" and msg["id"] and isinstance(msg["timestamp"], int)
    hb = msg["payload"]
    assert hb["name"] == "e2e-runner"
    assert hb["labels"] == {"team": "sre", "zone": "a"}
    assert isinstance(hb["version"], str) and hb["version"]
    env = hb["environment"]
    assert env["os"] == "linux" and env["arch"] == os.uname().machine
    assert env["hostname"] == os.uname().nodename
    assert env["broker_supported"] is True and env["broker"] is True
    assert "worknode_id" in hb


# -- credentials --------------------------------------------------------------------

def test_credential_task_authenticates_through_the_broker_without_a_key(
        runner, platform, upstream, build_dir):
    key, m = new_key(), marker()
    cmd = "env; echo ---SPLIT---; %s GET '/echo?marker=%s'" % (build_dir / "credfd", m)
    _, res = run_task(platform, cmd, credential={"key": key, "base_url": upstream.url})
    assert res["success"] is True, res
    env_text, _, body = res["result"]["stdout"].partition("---SPLIT---\n")
    env = env_of(env_text)
    assert env["FLASHDUTY_CRED_FD"] == "3" and env["FLASHDUTY_BASE_URL"] == BROKER_URL
    assert "FLASHDUTY_APP_KEY" not in env
    assert not [n for n in env if n.startswith("FLASHDUTY_RUNNER")]
    for secret in (key, platform.token):
        assert secret not in res["result"]["stdout"] + res["result"]["stderr"]
    echo = json.loads(body)
    assert echo["path"] == "/echo"
    assert keys_by_marker(upstream, {m}) == {m: [key]}


def test_legacy_path_of_the_nobroker_build_puts_the_key_in_env(nobroker_build, spawn, upstream):
    r = spawn(binary=nobroker_build)
    key = new_key()
    _, res = run_task(r.platform, "env", credential={"key": key, "base_url": upstream.url})
    assert res["success"] is True, res
    env = env_of(res["result"]["stdout"])
    assert env["FLASHDUTY_APP_KEY"] == key
    assert env["FLASHDUTY_BASE_URL"] == upstream.url
    assert "FLASHDUTY_CRED_FD" not in env
    assert r.platform.token not in res["result"]["stdout"]


def test_two_tasks_at_once_each_reach_the_upstream_with_their_own_key(
        runner, platform, upstream, build_dir):
    # Each task waits until the other one has started before it calls: both
    # run, each under its own broker, at the same time.
    sync = runner.workspace / ("two-" + secrets.token_hex(4))
    sync.mkdir()
    tasks = {}
    for me, other in (("a", "b"), ("b", "a")):
        m, key = marker(), new_key()
        cmd = ("touch %s; for i in $(seq 500); do [ -e %s ] && break; sleep 0.01; done; "
               "[ -e %s ] || exit 9; %s -f GET '/echo?marker=%s' >/dev/null"
               % (sync / me, sync / other, sync / other, build_dir / "credfd", m))
        tasks[m] = (key, platform.bash(cmd, credential={"key": key, "base_url": upstream.url}))
    for m, (key, task_id) in tasks.items():
        res = platform.result(task_id, timeout=20)
        assert res["success"] is True, res
    seen = keys_by_marker(upstream, set(tasks))
    assert seen == {m: [key] for m, (key, _) in tasks.items()}


def test_fifty_concurrent_brokered_tasks_all_succeed_with_their_keys(
        runner, platform, upstream, build_dir):
    tasks = {}
    for _ in range(50):
        m, key = marker(), new_key()
        cmd = "%s -f GET '/echo?marker=%s' >/dev/null" % (build_dir / "credfd", m)
        tasks[m] = (key, platform.bash(cmd, credential={"key": key, "base_url": upstream.url},
                                       timeout=30))
    failures = []
    for m, (key, task_id) in tasks.items():
        res = platform.result(task_id, timeout=40)
        if res["success"] is not True:
            failures.append(res)
    assert not failures, failures[:3]
    seen = keys_by_marker(upstream, set(tasks))
    assert seen == {m: [key] for m, (key, _) in tasks.items()}


# -- running commands -----------------------------------------------------------------

def test_timeout_gives_124_and_command_timed_out(runner, platform):
    start = time.monotonic()
    _, res = run_task(platform, "echo started; sleep 30", timeout=1, wait=40)
    assert time.monotonic() - start < 25  # the timeout ended it, not the sleep
    assert res["success"] is False and res["exit_code"] == 124
    assert res["result"]["exit_code"] == 124
    assert res["result"]["stdout"] == "started\n"
    assert res["result"]["stderr"].rstrip("\n").endswith("command timed out")


def test_cancel_kills_the_command_and_its_children(runner, platform):
    d = runner.workspace / ("cancel-" + secrets.token_hex(4))
    d.mkdir()
    cmd = "sleep 1000 & echo $! > bg.pid; echo $$ > sh.pid; sleep 1000"
    task_id = platform.bash(cmd, workdir=d.name, timeout=60)
    pids = wait_for(lambda: [int((d / f).read_text()) for f in ("sh.pid", "bg.pid")]
                    if all((d / f).exists() and (d / f).read_text().endswith("\n")
                           for f in ("sh.pid", "bg.pid")) else None,
                    what="the command to write its pids")
    assert not any(pid_gone(p) for p in pids)
    platform.cancel(task_id)
    res = platform.result(task_id, timeout=10)
    assert res["success"] is False and res["error"], res
    wait_for(lambda: all(pid_gone(p) for p in pids), timeout=5, what="both pids to be gone")


def test_output_is_capped_at_10_mib_and_marked_truncated(runner, platform):
    cap = 10 * 1024 * 1024
    cmd = ("head -c 12000000 /dev/zero | tr '\\0' a; "
           "head -c 12000000 /dev/zero | tr '\\0' b >&2; echo tail")
    _, res = run_task(platform, cmd, wait=30, timeout=30)
    out = res["result"]
    # The captured 10 MiB of stdout went to a spill file (RUNNER-OPS.md 4), named in the
    # preview that replaces it; stderr is never spilled.
    assert out["stdout_truncated"] is True and out["truncated"] is True
    assert out["total_size"] == cap
    assert re.fullmatch(r"\.outputs/bash_[0-9a-f]{8}_\d+\.txt", out["file_path"]), out["file_path"]
    assert (runner.workspace / out["file_path"]).read_bytes() == b"a" * cap
    assert out["stdout"].startswith("<output_truncated>\nOutput too large (%d chars, 1 lines). "
                                    "Full content saved to: %s\n" % (cap, out["file_path"]))
    assert len(out["stderr"]) == cap and out["stderr_truncated"] is True
    assert out["stderr"] == "b" * cap
    assert out["exit_code"] == 0 and res["success"] is True  # drained to the end, no SIGPIPE


def test_large_stdout_is_spilled_and_a_command_reading_it_back_gets_it_whole(runner, platform):
    """RUNNER-OPS.md 4, byte for byte: over 30,000 bytes, stdout goes to .outputs/ and the
    result holds Go's preview of its first 20 lines; `cat .outputs/...` (the skip rule) gets
    the file whole. stderr is never spilled."""
    lines = ["line %03d %s" % (i, "x" * 300) for i in range(100)]
    whole = "\n".join(lines) + "\n"
    cmd = "for i in $(seq 0 99); do printf 'line %03d %s\\n' $i " + "x" * 300 + "; done; echo e >&2"
    _, res = run_task(platform, cmd)
    out = res["result"]
    path = out["file_path"]
    assert re.fullmatch(r"\.outputs/bash_[0-9a-f]{8}_\d+\.txt", path), out
    assert (runner.workspace / path).read_text() == whole
    preview = "\n".join(lines[:20])
    assert out["stdout"] == (
        "<output_truncated>\nOutput too large (%d chars, 101 lines). Full content saved to: %s"
        "\n\nPreview (first 20 lines):\n```\n%s\n```\n\nTo read more: read(\"%s\", offset=20, "
        "limit=100)\n</output_truncated>" % (len(whole), path, preview, path))
    assert out["truncated"] is True and out["total_size"] == len(whole)
    assert out["stderr"] == "e\n" and out["stdout_truncated"] is False
    # Reading the spill file back is not spilled again.
    _, res = run_task(platform, "cat %s" % path)
    assert res["result"]["stdout"] == whole and res["result"]["total_size"] == len(whole)
    assert "truncated" not in res["result"] and "file_path" not in res["result"]


def test_spill_files_are_pruned_by_age_at_start_and_by_total_when_a_spill_passes_it(
        own_runner, tmp_path):
    """RUNNER-OPS.md 4, a deviation from Go (which never deletes them): at start, spill files
    older than ops.output.spill_max_age_seconds go; a spill that takes .outputs/ over
    ops.output.spill_max_total_bytes removes the oldest until it is under. Other files there
    are never touched."""
    outputs = tmp_path / "runner-workspace" / ".outputs"
    outputs.mkdir(parents=True)
    now = time.time()
    files = {"bash_0aaaaaaa_1.txt": now - 9 * 86400,  # over the age limit
             "bash_1bbbbbbb_2.txt": now - 3 * 3600,   # oldest within it
             "grep_2ccccccc_3.txt": now - 2 * 3600,
             "bash_3ddddddd_4.txt": now - 1 * 3600}
    for name, mtime in files.items():
        # The one over the age limit is small: only its age can make it go at start.
        (outputs / name).write_bytes(b"o" * (100 if mtime < now - 86400 else 40000))
        os.utime(outputs / name, (mtime, mtime))
    (outputs / "notes.txt").write_bytes(b"n" * 200000)  # not a spill file's name
    platform, runner = own_runner(args=["--set", "ops.output.spill_max_total_bytes=130000"])
    wait_for(lambda: not (outputs / "bash_0aaaaaaa_1.txt").exists(),
             what="the start's prune to remove the file over the age limit")
    assert (outputs / "bash_1bbbbbbb_2.txt").exists()
    _, res = run_task(platform, "head -c 40001 /dev/zero | tr '\\0' z")
    new = res["result"]["file_path"]
    # 3 x 40000 (120000, under the cap at start) + 40001 is over 130000: the oldest goes,
    # the other two and the new one stay (120001 bytes), and notes.txt, never counted.
    left = sorted(p.name for p in outputs.iterdir())
    assert left == sorted(["grep_2ccccccc_3.txt", "bash_3ddddddd_4.txt",
                           os.path.basename(new), "notes.txt"]), left


def test_small_output_is_not_marked_truncated(runner, platform):
    _, res = run_task(platform, "echo out; echo err >&2")
    assert res["result"] == {"stdout": "out\n", "stderr": "err\n", "exit_code": 0,
                             "stdout_truncated": False, "stderr_truncated": False,
                             "total_size": 4}
    assert res["success"] is True and res["error"] == "" and res["exit_code"] == 0


def test_workdir_outside_the_workspace_is_refused(runner, platform, tmp_path):
    """RUNNER-OPS.md 3: workdir is resolved as every workspace path is: `..` above the root
    and symlinks out of it are refused with Go's texts; an absolute path is re-rooted (Go's
    Join), so it names a directory beneath the root, never the one outside."""
    outside = tmp_path / "outside"
    outside.mkdir()
    link = runner.workspace / ("escape-" + secrets.token_hex(4))
    link.symlink_to(outside)
    inside = runner.workspace / ("inside-" + secrets.token_hex(4))
    inside.mkdir()
    root = str(runner.workspace)
    cases = {"dotdot": ("../", "path is outside workspace root: ../"),
             "sibling": ("../%s-evil" % runner.workspace.name,
                         "path is outside workspace root: ../%s-evil" % runner.workspace.name),
             "symlink": (link.name, "path escapes workspace root via symlink: " + link.name),
             "absolute": (str(outside), "chdir %s%s: no such file or directory"
                          % (root, outside)),
             "symlink-abs": (str(link), "chdir %s%s: no such file or directory" % (root, link)),
             "a file": ("f.txt", "chdir %s/f.txt: not a directory" % root)}
    (runner.workspace / "f.txt").write_text("")
    for name, (workdir, error) in cases.items():
        proof = outside / ("ran-" + name)
        _, res = run_task(platform, "touch %s" % proof, workdir=workdir)
        assert res["success"] is False and res["error"] == error, (name, res)
        assert res["result"] is None, (name, res)
        assert not proof.exists(), name
    # Inside the workspace it runs: relative, and absolute re-rooted ("/inside-x").
    for workdir in (inside.name, "/" + inside.name, "./%s/../%s" % (inside.name, inside.name)):
        _, res = run_task(platform, "pwd; touch ran", workdir=workdir)
        assert res["success"] is True, res
        assert res["result"]["stdout"] == "%s\n" % os.path.realpath(inside)
        assert (inside / "ran").exists()


def test_stream_sends_output_before_the_result(runner, platform):
    cmd = "for i in 1 2 3; do echo line$i; sleep 0.05; done; echo err >&2"
    task_id = platform.task("bash", {"command": cmd, "stream": True})
    res = platform.result(task_id)
    result_rec = platform.wait("task.result", task_id)
    chunks = platform.messages(type="task.output", task_id=task_id)
    assert chunks, "no task.output"
    assert all(c["seq"] < result_rec["seq"] for c in chunks)
    by_stream = {}
    for c in chunks:
        p = c["message"]["payload"]
        by_stream[p["stream"]] = by_stream.get(p["stream"], "") + p["data"]
    assert by_stream["stdout"] == res["result"]["stdout"] == "line1\nline2\nline3\n"
    assert by_stream.get("stderr") == res["result"]["stderr"] == "err\n"


def test_no_stream_sends_no_output_messages(runner, platform):
    task_id, res = run_task(platform, "echo quiet")
    assert res["success"] is True
    assert platform.messages(type="task.output", task_id=task_id) == []


def test_unknown_operation_is_refused(runner, platform):
    # An operation the platform does not have is Go's "unknown operation"; the platform's
    # ten all exist now (the last two, MCP's, with issue 17).
    task_id = platform.task("format_disk", {})
    res = platform.result(task_id)
    assert res["task_id"] == task_id and res["source_instance_id"] == "si-mock"
    assert res["success"] is False and res["error"] == "unknown operation: format_disk"
    assert res["result"] is None


def test_args_missing_or_not_an_object_are_gos_errors(runner, platform):
    """Go's parseArgs: no args is "unexpected end of JSON input", null is every default."""
    for op, args, error in (
            ("read", None, "invalid read args: unexpected end of JSON input"),
            ("bash", None, "invalid bash args: unexpected end of JSON input"),
            ("list", "x", "invalid list args: json: cannot unmarshal string into Go value of "
                          "type protocol.ListArgs"),
            ("bash", [1], "invalid bash args: json: cannot unmarshal array into Go value of "
                          "type protocol.BashArgs")):
        task_id = "args-" + secrets.token_hex(4)
        payload = {"task_id": task_id, "operation": op}
        if args is not None:
            payload["args"] = args
        platform.send("task.request", payload)
        res = platform.result(task_id)
        assert res["success"] is False and res["error"] == error, (op, args, res)
    # "args": null is all defaults: a list of the root.
    task_id = "args-null-" + secrets.token_hex(4)
    platform.send("task.request", {"task_id": task_id, "operation": "list", "args": None})
    assert platform.result(task_id)["success"] is True


def test_malformed_and_unknown_messages_are_ignored(runner, platform):
    conn = runner.wait_connected()["id"]
    platform.send_raw("{not json")
    platform.send_raw("[1, 2, 3]")
    platform.send("no.such.type", {"x": 1})
    platform.send("task.request", {"garbage": True})
    _, res = run_task(platform, "echo still here")
    assert res["success"] is True and res["result"]["stdout"] == "still here\n"
    state = platform.state()
    assert state["connected"] and state["current"] == conn
    assert len(state["connections"]) == conn  # no reconnect happened
    runner.wait_log("unknown type 'no.such.type'")


# -- the link to the platform ---------------------------------------------------------

@pytest.mark.parametrize("mode", ["abort", "close"])
def test_result_of_a_task_running_across_a_drop_arrives_after_reconnecting(
        runner, platform, mode):
    """abort: the task outlives the connection and reports on the next one.
    close: the platform refuses the runner until the task has finished, so
    its result has to wait in the runner's queue."""
    old = runner.wait_connected()
    command = "sleep 2; echo done" if mode == "abort" else "sleep 1; echo done"
    task_id = platform.bash(command, timeout=20)
    runner.wait_log("task started", "task_id=%s" % task_id)
    if mode == "close":
        platform.reject(1000)
    dropped = platform.drop(mode)
    assert dropped["id"] == old["id"] and dropped["dropped"] == mode
    if mode == "close":
        runner.wait_log("task finished: exit 0", "task_id=%s" % task_id)
        assert not platform.state()["connected"]
        platform.reject(0)
    new = platform.wait_connection("connected", after=old["id"], timeout=15)
    rec = platform.wait("task.result", task_id, timeout=15)
    res = rec["message"]["payload"]
    assert res["success"] is True and res["result"]["stdout"] == "done\n"
    assert rec["conn"] == new["id"] != old["id"]
    assert platform.messages(task_id=task_id, conn=old["id"]) == []
    runner.wait_connected()


def test_results_kept_while_disconnected_are_bounded_oldest_dropped_with_a_warning(spawn):
    """tasks.result_queue 2: four tasks end while the platform refuses the runner; after
    the reconnect only the newest two results arrive, and the runner said it dropped."""
    r = spawn(args=["--set", "tasks.result_queue=2"])
    p = r.platform
    old = r.wait_connected()
    ids = [p.bash("sleep 1; echo task-%d" % i, timeout=20) for i in range(4)]
    for task_id in ids:
        r.wait_log("task started", "task_id=%s" % task_id)
    p.reject(1000)
    p.drop("close")
    for task_id in ids:
        r.wait_log("task finished: exit 0", "task_id=%s" % task_id)
    r.wait_log("result queue full (2): dropping the oldest undelivered task result")
    p.reject(0)
    new = p.wait_connection("connected", after=old["id"], timeout=15)
    finished_order = [tid for line in r.log().splitlines() if "task finished" in line
                      for tid in ids if "task_id=%s" % tid in line]
    kept = finished_order[-2:]
    for task_id in kept:
        rec = p.wait("task.result", task_id, timeout=15)
        assert rec["conn"] == new["id"]
    # Queued results go out oldest first, so the dropped ones would have come before these.
    got = [m["task_id"] for m in p.messages(type="task.result")]
    assert sorted(got) == sorted(kept), (got, kept, finished_order)


def test_sigterm_cancels_tasks_still_running_after_the_shutdown_grace(spawn):
    r = spawn(args=["--set", "tasks.shutdown_grace=1s"])
    p = r.platform
    task_id = p.bash("sleep 60; echo never", timeout=120)
    r.wait_log("task started", "task_id=%s" % task_id)
    r.proc.send_signal(signal.SIGTERM)
    r.wait_log("no new tasks")
    r.wait_log("still running after tasks.shutdown_grace (1000 ms): cancelling them",
               timeout=15)
    res = p.result(task_id, timeout=15)
    assert res["success"] is False and res["error"] == "cancelled", res
    assert r.proc.wait(timeout=15) == 0
    r.stop()


def test_wrong_token_is_retried_with_growing_delays_until_fixed(spawn):
    """The runner's own choices grow: its log says "reconnecting in D s", D between 0.5
    and 1 s, then between 1 and 2 s (1 s, doubled, each with jitter down to half). Each
    gap between attempts lasted at least the delay chosen before it (the timer waited).
    No gap has a ceiling: how much longer one lasts depends on the machine's load, not on
    the runner; the wait for the three attempts (20 s) stops a runner that never retries."""
    r = spawn(token="wrong-" + secrets.token_hex(8), wait_connected=False)
    p = r.platform

    def attempts():
        conns = p.connections()
        return conns if len(conns) >= 3 else None

    conns = wait_for(attempts, timeout=20, what="3 connection attempts")[:3]
    assert all(c["token_ok"] is False and c["status"] == 401 for c in conns), conns

    def chosen_delays():
        found = [float(line.split("reconnecting in ", 1)[1].split()[0])
                 for line in r.log().splitlines() if "reconnecting in " in line]
        return found[:2] if len(found) >= 2 else None

    delays = wait_for(chosen_delays, what="the first two delays in the runner's log")
    assert 0.5 <= delays[0] <= 1.0 and 1.0 <= delays[1] <= 2.0, delays
    gaps = [b["at"] - a["at"] for a, b in zip(conns, conns[1:])]
    assert all(gap >= delay - 0.1 for gap, delay in zip(gaps, delays)), (gaps, delays)
    r.wait_log("401")
    assert not p.state()["connected"]
    p.set_token(r.token)
    rec = p.wait_connection("connected", timeout=20)  # the next delay may be up to 8 s
    assert rec["token_ok"] and rec["params"]["token"] == r.token
    for text in (r.log(), r.stderr()):
        assert r.token not in text


def test_sigterm_finishes_the_running_task_refuses_new_ones_and_exits_0(spawn):
    r = spawn()
    p = r.platform
    stop = r.workspace / "stop"
    task_id = p.bash("while [ ! -e %s ]; do sleep 0.05; done; echo finished" % stop, timeout=20)
    r.wait_log("task started", "task_id=%s" % task_id)
    r.proc.send_signal(signal.SIGTERM)
    r.wait_log("no new tasks")
    # The link stays open while the running task drains, so a new task can be sent, and
    # must be refused.
    assert p.state()["connected"]
    late = p.bash("echo should not run")
    late_res = p.result(late, timeout=5)
    assert late_res["success"] is False and late_res["error"] == "runner is shutting down"
    assert late_res["result"] is None
    stop.write_text("")
    res = p.result(task_id, timeout=15)
    assert res["success"] is True and res["result"]["stdout"] == "finished\n"
    # No second signal: wait for the runner to end on its own.
    assert r.proc.wait(timeout=10) == 0
    r.stop()
    closed = p.wait_connection("closed", id=r.connection["id"])
    assert closed["close_code"] == 1001


# -- configuration and logs ------------------------------------------------------------

def config_error(credbroker, tmp_path, args, token="secret-" + secrets.token_hex(12)):
    env = make_child_env({} if token is None else {"FLASHDUTY_RUNNER_API_KEY": token})
    log = tmp_path / "runner.log"
    argv = [str(credbroker), "runner", "--api-url", "ws://127.0.0.1:9/runner/ws",
            "--workspace-root", str(tmp_path), "--log-file", str(log)] + args
    rc, out, err = run_process(argv, timeout=10, env=env)
    logged = log.read_text(errors="replace") if log.exists() else ""
    if token is not None:
        assert token not in out + err + logged
    return rc, out + err


def test_config_error_unknown_yaml_key(credbroker, tmp_path):
    token = "secret-" + secrets.token_hex(12)
    cfg = tmp_path / "runner.yaml"
    cfg.write_text("api_key: %s\nname: x\nbogus_key: 1\n" % token)
    cfg.chmod(0o600)  # a file holding api_key must be private
    rc, err = config_error(credbroker, tmp_path, ["--config", str(cfg)], token=token)
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and "bogus_key" in err, err


def test_config_error_bad_log_level(credbroker, tmp_path):
    rc, err = config_error(credbroker, tmp_path, ["--log-level", "loud"])
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and "loud" in err, err


def test_config_error_missing_token(credbroker, tmp_path):
    rc, err = config_error(credbroker, tmp_path, [], token=None)
    assert rc == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "token" in err or "api_key" in err, err


def test_log_lines_of_a_task_carry_task_id_and_trace_id(runner, platform, upstream):
    key = new_key()
    trace = "trace-" + secrets.token_hex(6)
    task_id = platform.task("bash", {"command": "exit 3",
                                     "credential": {"key": key, "base_url": upstream.url}},
                            trace_id=trace)
    res = platform.result(task_id)
    # It ran to its end: the task succeeded, the command's code is in the result (2.5).
    assert res["success"] is True and res["exit_code"] == 0 and res["error"] == ""
    assert res["result"]["exit_code"] == 3
    runner.wait_log("task finished: exit 3", "task_id=%s" % task_id)
    lines = [ln for ln in runner.log().splitlines() if task_id in ln]
    assert len(lines) >= 2, lines
    for ln in lines:
        assert " task_id=%s" % task_id in ln and " trace_id=%s" % trace in ln, ln
    # Neither the task's key nor the runner's token is ever logged.
    for text in (runner.log(), runner.stderr()):
        assert key not in text and platform.token not in text
