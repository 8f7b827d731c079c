"""The runner's read operation (RUNNER-OPS.md 5.1), against the real runner over its
WebSocket: Go's documented case and error texts, paths that cannot escape the
workspace (3.2), the 8 MiB cap (here lowered with ops.read.max_bytes), special files."""

import base64
import os
import secrets

import pytest

RUNNER_ARGS = ["--set", "ops.read.max_bytes=100000"]


@pytest.fixture(scope="module")
def ws(runner):
    """The runner's workspace root, as the runner was given it."""
    return runner.workspace


def read(platform, args):
    """The task.result payload of a read task with these args."""
    task_id = platform.task("read", args)
    return platform.result(task_id, timeout=20)


def content(res):
    assert res["success"] is True, res
    return base64.b64decode(res["result"]["content"], validate=True)


def test_gos_documented_case(platform, ws):
    (ws / "hello.txt").write_text("Hello, World!")
    res = read(platform, {"path": "hello.txt", "offset": 7, "limit": 5})
    assert res["result"] == {"content": "V29ybGQ=", "total_size": 13}
    assert "error" not in res or res["error"] == ""


def test_ranges(platform, ws):
    data = bytes(range(256)) * 4
    (ws / "bin").write_bytes(data)
    assert content(read(platform, {"path": "bin"})) == data            # binary-safe, to EOF
    assert content(read(platform, {"path": "bin", "offset": -5, "limit": 3})) == data[:3]
    assert content(read(platform, {"path": "bin", "offset": 1000, "limit": 0})) == data[1000:]
    assert content(read(platform, {"path": "bin", "offset": 1000, "limit": 99})) == data[1000:]
    for offset in (1024, 5000):  # at or past the end: empty, with the size
        res = read(platform, {"path": "bin", "offset": offset})
        assert res["result"] == {"content": "", "total_size": 1024}
    (ws / "empty").write_bytes(b"")
    assert read(platform, {"path": "empty"})["result"] == {"content": "", "total_size": 0}
    # Keys fold case, as Go's decoder does; absolute paths are re-rooted.
    assert content(read(platform, {"PATH": "/bin", "Limit": 2})) == data[:2]


def test_the_cap_is_exact(platform, ws):
    """ops.read.max_bytes is 100000 here: that many bytes whole, one more cut to it."""
    data = os.urandom(100001)
    (ws / "cap").write_bytes(data)
    res = read(platform, {"path": "cap", "limit": 100000})
    assert "truncated" not in res["result"] and content(res) == data[:100000]
    res = read(platform, {"path": "cap"})
    assert res["result"]["truncated"] is True and content(res) == data[:100000]
    res = read(platform, {"path": "cap", "offset": 1})
    assert "truncated" not in res["result"] and content(res) == data[1:]


def test_a_range_over_the_cap_is_cut_and_says_so(platform, ws):
    data = os.urandom(250000)
    (ws / "big").write_bytes(data)
    res = read(platform, {"path": "big", "offset": 10})
    assert res["result"]["truncated"] is True and res["result"]["total_size"] == 250000
    assert content(res) == data[10:100010]
    res = read(platform, {"path": "big", "offset": 10, "limit": 100000})
    assert "truncated" not in res["result"] and content(res) == data[10:100010]


def error_of(platform, args):
    res = read(platform, args)
    assert res["success"] is False and res["exit_code"] == 1, res
    return res["error"]


def test_error_texts(platform, ws):
    (ws / "adir").mkdir(exist_ok=True)
    root = str(ws)
    assert error_of(platform, {"path": ""}) == "cannot read a directory: "
    assert error_of(platform, {"path": "adir"}) == "cannot read a directory: adir"
    assert error_of(platform, {"path": "nope.txt"}) == \
        "failed to stat file: stat %s/nope.txt: no such file or directory" % root
    assert error_of(platform, {"path": "/etc/passwd"}) == \
        "failed to stat file: stat %s/etc/passwd: no such file or directory" % root
    assert error_of(platform, {"path": "hello.txt/x"}) == \
        "failed to stat file: stat %s/hello.txt/x: not a directory" % root
    assert error_of(platform, {"offset": "7"}) == (
        "invalid read args: json: cannot unmarshal string into Go struct field "
        "ReadArgs.offset of type int64")
    assert error_of(platform, {"path": 3}) == (
        "invalid read args: json: cannot unmarshal number into Go struct field "
        "ReadArgs.path of type string")


@pytest.mark.parametrize("path", ["../etc/passwd", "../../../../../../etc/passwd", "a/../../x"])
def test_paths_above_the_root_are_outside(platform, path):
    assert error_of(platform, {"path": path}) == "path is outside workspace root: " + path


def test_symlinks_are_followed_only_beneath_the_root(platform, ws, tmp_path):
    outside = tmp_path / ("outside-" + secrets.token_hex(4))
    outside.mkdir()
    (outside / "secret").write_text("not for the agent")
    evil = ws.parent / (ws.name + "-evil")  # Go's hole (a): /ws-evil passed for /ws
    evil.mkdir(exist_ok=True)
    (evil / "x").write_text("evil")
    (ws / "out-abs").symlink_to(outside / "secret")
    (ws / "out-rel").symlink_to(os.path.relpath(outside / "secret", ws))
    (ws / "out-dir").symlink_to(outside)
    (ws / "to-evil").symlink_to(evil)
    (ws / "sub").mkdir(exist_ok=True)
    (ws / "sub" / "in.txt").write_text("inside")
    (ws / "in-abs").symlink_to(ws / "sub")
    (ws / "in-rel").symlink_to("sub/in.txt")
    for name in ("out-abs", "out-rel", "out-dir/secret", "to-evil/x"):
        assert error_of(platform, {"path": name}) == \
            "path escapes workspace root via symlink: " + name
    assert error_of(platform, {"path": "../%s-evil/x" % ws.name}) == \
        "path is outside workspace root: ../%s-evil/x" % ws.name
    assert content(read(platform, {"path": "in-abs/in.txt"})) == b"inside"
    assert content(read(platform, {"path": "in-rel"})) == b"inside"
    (ws / "loop1").symlink_to("loop2")
    (ws / "loop2").symlink_to("loop1")
    assert error_of(platform, {"path": "loop1"}) == \
        "failed to resolve symlinks: EvalSymlinks: too many links"


def test_a_fifo_reads_as_empty_and_never_blocks(platform, ws):
    os.mkfifo(ws / "fifo")
    assert read(platform, {"path": "fifo"})["result"] == {"content": "", "total_size": 0}
    # The runner still answers (its loop never waited on the FIFO).
    assert content(read(platform, {"path": "hello.txt"})) == b"Hello, World!"


def test_a_symlink_swapped_in_between_two_operations(platform, ws, tmp_path):
    """Each operation resolves its path afresh beneath the root: a directory read a moment
    ago, replaced by a symlink out of the workspace, is refused by the next read, write,
    list and grep, and nothing outside is read or written."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f").write_text("outside secret")
    d = ws / ("swap-" + secrets.token_hex(4))
    d.mkdir()
    (d / "f").write_text("inside")
    name = d.name
    assert content(read(platform, {"path": name + "/f"})) == b"inside"
    (d / "f").unlink()
    d.rmdir()
    d.symlink_to(outside)
    res = read(platform, {"path": name + "/f"})
    assert res["success"] is False and \
        res["error"] == "path escapes workspace root via symlink: %s/f" % name, res
    res = platform.result(platform.write(name + "/new", b"x"), timeout=20)
    assert res["success"] is False and "escapes workspace root" in res["error"], res
    assert not (outside / "new").exists()
    res = platform.result(platform.list(name), timeout=20)
    assert res["success"] is False and "escapes workspace root" in res["error"], res
    res = platform.result(platform.grep("outside secret"), timeout=20)
    assert res["success"] is True and res["result"]["matches"] == [], res


def test_a_9_mib_file_reads_as_the_default_8_mib_and_says_so(own_runner):
    platform, runner = own_runner()
    data = os.urandom(9 * 1024 * 1024)
    (runner.workspace / "nine").write_bytes(data)
    res = platform.result(platform.read("nine"), timeout=60)
    assert res["result"]["truncated"] is True and res["result"]["total_size"] == len(data)
    assert content(res) == data[:8 * 1024 * 1024]
