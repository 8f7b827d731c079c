"""RUNNER-OPS.md 2.7: a task.result never exceeds tasks.max_message_bytes (lowered here to its
floor, 64 KiB). Each operation shrinks to fit and says truncated: read reads fewer bytes,
list and glob drop trailing entries, grep trailing matches, bash cuts stderr at its end."""

import base64

import pytest

CEILING = 65536
RUNNER_ARGS = ["--set", "tasks.max_message_bytes=%d" % CEILING]


@pytest.fixture(scope="module")
def ws(runner):
    return runner.workspace


def result(platform, op, args):
    task_id = platform.task(op, args)
    res = platform.result(task_id, timeout=60)
    size = platform.wait("task.result", task_id)["size"]
    assert size <= CEILING, (op, size)
    return res


def test_read_reads_fewer_bytes(platform, ws):
    data = bytes(range(256)) * 1000
    (ws / "big.bin").write_bytes(data)
    res = result(platform, "read", {"path": "big.bin"})
    assert res["success"] is True and res["result"]["truncated"] is True
    got = base64.b64decode(res["result"]["content"])
    assert 30000 < len(got) < CEILING and data.startswith(got)
    assert res["result"]["total_size"] == len(data)


def test_list_and_glob_drop_trailing_entries(platform, ws):
    (ws / "many").mkdir()
    for i in range(3000):
        (ws / "many" / ("entry-%05d.txt" % i)).write_bytes(b"")
    res = result(platform, "list", {"path": "many"})
    entries = res["result"]["entries"]
    assert res["result"]["truncated"] is True and 100 < len(entries) < 3000
    assert [e["path"] for e in entries] == ["many"] + ["many/entry-%05d.txt" % i
                                                       for i in range(len(entries) - 1)]
    res = result(platform, "glob", {"pattern": "many/*.txt"})
    assert res["result"]["truncated"] is True and 100 < len(res["result"]["matches"]) < 3000


def test_grep_drops_trailing_matches(platform, ws):
    (ws / "lines.txt").write_text("".join("match %05d %s\n" % (i, "x" * 40) for i in range(3000)))
    res = result(platform, "grep", {"pattern": "match", "include": ["lines.txt"]})
    matches = res["result"]["matches"]
    assert res["result"]["truncated"] is True and 100 < len(matches) < 3000
    assert [m["line_number"] for m in matches] == list(range(1, len(matches) + 1))


def test_bash_cuts_stderr_at_its_end(platform, ws):
    res = result(platform, "bash", {"command": "echo out; head -c 200000 /dev/zero | tr '\\0' e >&2"})
    out = res["result"]
    assert out["stdout"] == "out\n" and out["truncated"] is True
    assert out["stderr"].endswith("\n... [stderr truncated]")
    assert set(out["stderr"][:-len("\n... [stderr truncated]")]) == {"e"}
    assert len(out["stderr"]) > 30000
