"""The runner's grep operation (RUNNER-OPS.md 5.5), against the real runner over its
WebSocket. One suite, run twice: once with rg on the runner's PATH and once without (the
built-in PCRE2 engine), each run checking from the runner's log which engine searched. The
two must give the same answers: rg's, with a pattern that can never be an option, paths
with ':' whole, smart case, hidden, binary and ignored files skipped, gitignore-style
include globs, lines kept as they are (CR, invalid UTF-8), the match cap, the spill of a
large content, and a cancel that stops a long search."""

import json
import os
import re
import shutil
import secrets
import time

import pytest

from conftest import RunnerProcess, child_pids, wait_for
from mock_platform import MockPlatform

CAP = 40
RG_DIR = os.path.dirname(shutil.which("rg", path="/usr/bin:/bin") or "/nonexistent/rg")


@pytest.fixture(scope="module", params=["rg", "builtin"])
def engine(request, credbroker, certs, tmp_path_factory):
    """(name, platform, runner): a runner whose PATH has rg, or has nothing at all."""
    name = request.param
    if name == "rg":
        assert os.path.exists(os.path.join(RG_DIR, "rg")), \
            "rg is not installed: scripts/deps installs Debian's ripgrep"
        path = RG_DIR
    else:
        empty = tmp_path_factory.mktemp("empty-path")
        path = str(empty)
    platform = MockPlatform(tmp_path_factory.mktemp("platform"),
                            token="rt-" + secrets.token_hex(16))
    runner = RunnerProcess(credbroker, platform, tmp_path_factory.mktemp("runner"), certs.ca,
                           args=["--set", "ops.grep.max_matches=%d" % CAP],
                           env={"PATH": path})
    yield name, platform, runner
    runner.close()
    platform.stop()


@pytest.fixture
def ws(engine):
    """An empty workspace for each test (the search root is always the whole workspace)."""
    root = engine[2].workspace
    for entry in list(root.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return root


def grep(engine, pattern=None, include=None, **extra):
    name, platform, runner = engine
    args = {}
    if pattern is not None:
        args["pattern"] = pattern
    if include is not None:
        args["include"] = include
    args.update(extra)
    mark = len(runner.log())
    res = platform.result(platform.task("grep", args), timeout=60)
    want = "grep: rg searches" if name == "rg" else "grep: no rg on PATH"
    wait_for(lambda: want in runner.log()[mark:], what="the runner to log its engine: " + want)
    assert res["success"] is True, res
    return res["result"]


def found(engine, pattern=None, include=None):
    return [(m["path"], m["line_number"], m["content"])
            for m in grep(engine, pattern, include)["matches"]]


def test_gos_documented_case_and_the_result_shape(engine, ws):
    (ws / "a.txt").write_text("hello world\nfoo bar\nhello again")
    (ws / "b.txt").write_text("no match here")
    res = grep(engine, "hello")
    assert res["matches"] == [
        {"path": "./a.txt", "line_number": 1, "content": "hello world"},
        {"path": "./a.txt", "line_number": 3, "content": "hello again"}]
    content = "./a.txt:1:hello world\n./a.txt:3:hello again\n"
    assert res == {"matches": res["matches"], "content": content, "total_size": len(content)}


def test_nothing_found_is_an_empty_list_and_an_empty_content(engine, ws):
    (ws / "a.txt").write_text("hello\n")
    assert grep(engine, "absent") == {"matches": [], "content": ""}


def test_empty_or_missing_pattern_matches_every_line(engine, ws):
    (ws / "a.txt").write_text("one\n\nthree\n")
    want = [("./a.txt", 1, "one"), ("./a.txt", 2, ""), ("./a.txt", 3, "three")]
    assert found(engine, "") == want
    assert found(engine) == want


def test_a_pattern_is_never_an_option(engine, ws):
    """Go passed the pattern positionally, so --pre=CMD ran CMD on every file."""
    marker = ws / "pre-ran"
    script = ws / "pre.sh"
    script.write_text("#!/bin/sh\ntouch %s\ncat \"$1\"\n" % marker)
    script.chmod(0o755)
    (ws / "flags.txt").write_text("x --pre=%s y\n-foo here\n--files\n" % script)
    assert found(engine, "--pre=%s" % script) == [("./flags.txt", 1, "x --pre=%s y" % script)]
    assert not marker.exists()
    assert found(engine, "-foo") == [("./flags.txt", 2, "-foo here")]
    assert found(engine, "--files") == [("./flags.txt", 3, "--files")]
    # An include is one --glob=... element: it cannot become an option either.
    assert found(engine, "here", include=["--pre=%s" % script]) == []
    assert not marker.exists()


def test_a_path_with_a_colon_comes_back_whole(engine, ws):
    (ws / "we:ird.txt").write_text("needle\n")
    (ws / "d:1").mkdir()
    (ws / "d:1" / "x:2:3.txt").write_text("a\nneedle\n")
    assert found(engine, "needle") == [("./d:1/x:2:3.txt", 2, "needle"),
                                       ("./we:ird.txt", 1, "needle")]


def test_smart_case(engine, ws):
    (ws / "c.txt").write_text("Hello\nhello\nHELLO\n")
    assert [m[1] for m in found(engine, "hello")] == [1, 2, 3]   # no capital: any case
    assert [m[1] for m in found(engine, "Hello")] == [1]         # a capital: exact case
    assert [m[1] for m in found(engine, r"\Shello")] == []       # an escape is no capital
    assert [m[1] for m in found(engine, r"\w+LLO")] == [3]


def test_hidden_binary_and_symlinked_files_are_skipped(engine, ws, tmp_path):
    (ws / "seen.txt").write_text("needle\n")
    (ws / ".hidden.txt").write_text("needle\n")
    (ws / ".dir").mkdir()
    (ws / ".dir" / "in.txt").write_text("needle\n")
    (ws / "bin.dat").write_bytes(b"needle\x00\nneedle\n")
    outside = tmp_path / "outside.txt"
    outside.write_text("needle\n")
    (ws / "link.txt").symlink_to(outside)
    (ws / "dirlink").symlink_to(tmp_path)
    os.mkfifo(ws / "pipe")                       # never opened: a search must not hang
    assert found(engine, "needle") == [("./seen.txt", 1, "needle")]


def test_ignore_files(engine, ws):
    (ws / "a.txt").write_text("needle\n")
    (ws / "b.txt").write_text("needle\n")
    (ws / "sub").mkdir()
    (ws / "sub" / "c.txt").write_text("needle\n")
    (ws / ".ignore").write_text("b.txt\n")
    assert [m[0] for m in found(engine, "needle")] == ["./a.txt", "./sub/c.txt"]
    # .gitignore counts inside a git work tree only.
    (ws / ".gitignore").write_text("sub/\n")
    assert [m[0] for m in found(engine, "needle")] == ["./a.txt", "./sub/c.txt"]
    (ws / ".git").mkdir()
    assert [m[0] for m in found(engine, "needle")] == ["./a.txt"]
    # .rgignore beats .gitignore; a deeper .ignore can whitelist again.
    (ws / ".rgignore").write_text("!sub/\n")
    assert [m[0] for m in found(engine, "needle")] == ["./a.txt", "./sub/c.txt"]


def test_include_globs_are_gitignore_style(engine, ws):
    (ws / "top.go").write_text("needle\n")
    (ws / "top.txt").write_text("needle\n")
    (ws / "src" / "deep").mkdir(parents=True)
    (ws / "src" / "deep" / "x.go").write_text("needle\n")
    (ws / "src" / "y.md").write_text("needle\n")
    (ws / ".dot.go").write_text("needle\n")
    every = ["./.dot.go", "./src/deep/x.go", "./top.go"]
    assert [m[0] for m in found(engine, "needle", ["*.go"])] == every   # any depth, hidden too
    assert [m[0] for m in found(engine, "needle", ["!*.go"])] == ["./src/y.md", "./top.txt"]
    assert [m[0] for m in found(engine, "needle", ["src/**"])] == ["./src/deep/x.go",
                                                                  "./src/y.md"]
    assert [m[0] for m in found(engine, "needle", ["*.{md,txt}"])] == ["./src/y.md",
                                                                      "./top.txt"]
    assert [m[0] for m in found(engine, "needle", ["*.go", "!**/deep/**"])] == \
        ["./.dot.go", "./top.go"]


def test_lines_are_kept_as_they_are(engine, ws):
    (ws / "crlf.txt").write_bytes(b"one\r\nneedle two\r\n")
    (ws / "bad.txt").write_bytes(b"needle \xff\xfe end\n")
    (ws / b"name-\xff.txt".decode("utf-8", "surrogateescape")).write_bytes(b"needle\n")
    got = found(engine, "needle")
    assert ("./crlf.txt", 2, "needle two\r") in got
    assert ("./bad.txt", 1, "needle \ufffd\ufffd end") in got
    assert ("./name-\ufffd.txt", 1, "needle") in got


def test_invalid_patterns_are_an_empty_success(engine, ws):
    (ws / "a.txt").write_text("aaa(\n")
    for pattern in ("(", "[a", "a{2", "(?=a)", "(?<!b)a", r"(a)\1", "(?>a)", r"\K", r"\k<x>"):
        assert grep(engine, pattern) == {"matches": [], "content": ""}, pattern
    assert found(engine, r"a{2,3}\(") == [("./a.txt", 1, "aaa(")]


def test_the_match_cap_stops_the_search(engine, ws):
    (ws / "many.txt").write_text("hit\n" * (CAP + 5))
    res = grep(engine, "hit")
    assert len(res["matches"]) == CAP and res["truncated"] is True
    assert [m["line_number"] for m in res["matches"]] == list(range(1, CAP + 1))
    (ws / "many.txt").write_text("hit\n" * CAP)
    res = grep(engine, "hit")
    assert len(res["matches"]) == CAP and "truncated" not in res


def test_a_large_content_is_spilled(engine, ws):
    line = "needle " + "x" * 1000
    (ws / "big.txt").write_text((line + "\n") * 35)
    res = grep(engine, "needle")
    assert len(res["matches"]) == 35                      # never shortened by the spill
    whole = "".join("./big.txt:%d:%s\n" % (i, line) for i in range(1, 36))
    assert res["truncated"] is True and res["total_size"] == len(whole)
    assert re.fullmatch(r"\.outputs/grep_[0-9a-f]{8}_\d+\.txt", res["file_path"]), res
    assert (ws / res["file_path"]).read_text() == whole
    assert res["content"].startswith("<output_truncated>\nOutput too large (%d chars, 36 lines)"
                                     ". Full content saved to: %s\n" % (len(whole),
                                                                       res["file_path"]))
    # The spill directory is hidden: a second search does not find the first's file.
    assert len(grep(engine, "needle")["matches"]) == 35


def test_bad_args_are_gos_error(engine, ws):
    _, platform, _ = engine
    res = platform.result(platform.task("grep", {"pattern": 5}), timeout=20)
    assert res["success"] is False and res["error"] == (
        "invalid grep args: json: cannot unmarshal number into Go struct field "
        "GrepArgs.pattern of type string"), res


def test_a_cancel_stops_a_long_search(engine, ws, own_runner_for):
    """Millions of matching lines with no cap: seconds of work, stopped at once."""
    platform, runner = own_runner_for(engine)
    with open(runner.workspace / "huge.txt", "w") as f:
        f.write("hit\n" * 3_000_000)
    task_id = platform.grep("hit")
    platform.cancel(task_id)
    res = platform.result(task_id, timeout=60)
    assert res["success"] is False and res["error"] == "context canceled", \
        {k: v for k, v in res.items() if k != "result"}
    # rg was killed, not left to search to the end, and is gone.
    if engine[0] == "rg":
        assert "grep: rg stopped (cancelled)" in runner.log()
        wait_for(lambda: not child_pids(runner.proc.pid, "rg"), what="rg to be gone")


@pytest.fixture
def own_runner_for(own_runner):
    """A runner of the engine's kind with no cap and room for a huge result."""
    def start(engine):
        path = RG_DIR if engine[0] == "rg" else str(engine[2].workspace.parent / "no-rg")
        os.makedirs(path, exist_ok=True)
        return own_runner(args=["--set", "ops.grep.max_matches=10000000",
                                "--set", "tasks.max_message_bytes=2147483648"],
                          env={"PATH": path})
    return start


def test_rg_gets_nothing_of_the_runners_environment(own_runner, tmp_path):
    """rg is started with PATH alone (no token, no secret of the runner's), and with the
    pattern and each include in argv elements of their own. A wrapper named rg, first on
    PATH, records both and runs the real one."""
    wrapper_dir = tmp_path / "wrapper"
    wrapper_dir.mkdir()
    record = tmp_path / "rg-record"
    wrapper = wrapper_dir / "rg"
    wrapper.write_text("#!/bin/sh\n"
                       "tr '\\0' '\\n' < /proc/$$/environ > %s.env\n"
                       "for a in \"$@\"; do printf '%%s\\n' \"$a\"; done > %s.argv\n"
                       "exec %s/rg \"$@\"\n" % (record, record, RG_DIR))
    wrapper.chmod(0o755)
    path = "%s:%s" % (wrapper_dir, RG_DIR)
    platform, runner = own_runner(env={"PATH": path, "RUNNER_SECRET_X": "s3cr3t-value"})
    (runner.workspace / "a.txt").write_text("-x needle\n")
    res = platform.result(platform.grep("-x needle", include=["*.txt", "!b*"]), timeout=30)
    assert res["success"] is True and [m["path"] for m in res["result"]["matches"]] == ["./a.txt"]
    env = (tmp_path / "rg-record.env").read_text().splitlines()
    assert env == ["PATH=" + path], env
    argv = (tmp_path / "rg-record.argv").read_text().splitlines()
    assert argv[-3:] == ["-e", "-x needle", "."]
    assert "--glob=*.txt" in argv and "--glob=!b*" in argv and "--no-config" in argv
