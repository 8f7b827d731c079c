"""The walking operations on a tree of 100,000 files, against the real runner: each stops at
its cap and says so, and a cancel stops each in the middle of its walk ("context canceled":
with no cap in the way the walk would otherwise run to its end and succeed)."""

import os

import pytest

from conftest import child_pids, wait_for

FILES = 100_000


@pytest.fixture(scope="module")
def big(credbroker, certs, tmp_path_factory):
    """A runner whose workspace holds 100,000 files in 100 directories, with no caps in the
    way of a whole walk (so only a cancel can stop one short)."""
    from conftest import RunnerProcess
    from mock_platform import MockPlatform
    import secrets

    platform = MockPlatform(tmp_path_factory.mktemp("platform"),
                            token="rt-" + secrets.token_hex(16))
    runner = RunnerProcess(credbroker, platform, tmp_path_factory.mktemp("runner"), certs.ca,
                           args=["--set", "ops.list.max_entries=10000000",
                                 "--set", "ops.glob.max_matches=10000000",
                                 "--set", "tasks.max_message_bytes=2147483648"])
    for d in range(100):
        sub = runner.workspace / ("d%02d" % d)
        sub.mkdir()
        for f in range(FILES // 100):
            fd = os.open(sub / ("f%04d.txt" % f), os.O_CREAT | os.O_WRONLY, 0o644)
            os.write(fd, b"needle\n" if f % 1000 == 0 else b"hay\n")
            os.close(fd)
    yield platform, runner
    runner.close()
    platform.stop()


def test_a_whole_walk_finds_every_file(big):
    platform, _ = big
    res = platform.result(platform.task("list", {"path": "", "recursive": True}), timeout=120)
    assert res["success"] is True and "truncated" not in res["result"]
    assert len(res["result"]["entries"]) == FILES + 100
    res = platform.result(platform.task("glob", {"pattern": "**/*.txt"}), timeout=120)
    assert res["success"] is True and len(res["result"]["matches"]) == FILES
    res = platform.result(platform.task("grep", {"pattern": "needle"}), timeout=120)
    assert res["success"] is True and len(res["result"]["matches"]) == FILES // 1000


@pytest.mark.parametrize("op,args", [
    ("list", {"path": "", "recursive": True}),
    ("glob", {"pattern": "**/*.txt"}),
    ("grep", {"pattern": "needle", "include": ["*.txt"]}),
])
def test_a_cancel_stops_the_walk_in_the_middle(big, op, args):
    """The cancel is sent once the walk is seen under way (a directory of the tree open in
    the runner, or rg running), so it cannot be the one before the work starts."""
    platform, runner = big
    task_id = platform.task(op, args)
    wait_for(lambda: walking(runner), interval=0.001, what="the %s to be under way" % op)
    platform.cancel(task_id)
    res = platform.result(task_id, timeout=120)
    assert res["success"] is False and res["error"] == "context canceled", \
        {k: v for k, v in res.items() if k != "result"}


def walking(runner):
    """Whether the runner is in the middle of a walk of the tree: one of its directories
    open in the runner (a pool thread's), or an rg child searching it."""
    pid = runner.proc.pid
    prefix = str(runner.workspace) + "/d"
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                if os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith(prefix):
                    return True
            except OSError:
                pass
        if child_pids(pid, "rg"):
            return True
    except OSError:
        pass
    return False
