"""The runner's glob operation (RUNNER-OPS.md 5.4), against the real runner over its
WebSocket: doublestar semantics, results sorted and relative to the root, null when none,
symlinked directories followed only beneath the root and never in a loop, Go's syntax
error, and the match cap (lowered here with ops.glob.max_matches)."""

import pytest

RUNNER_ARGS = ["--set", "ops.glob.max_matches=30"]


@pytest.fixture(scope="module")
def ws(runner):
    return runner.workspace


def glob(platform, pattern):
    res = platform.result(platform.task("glob", {"pattern": pattern}), timeout=20)
    assert res["success"] is True, res
    return res["result"]


def matches(platform, pattern):
    return glob(platform, pattern)["matches"]


def test_gos_documented_case_and_doublestar(platform, ws):
    for name in ("file1.txt", "file2.txt", "file3.log"):
        (ws / name).write_text("")
    assert matches(platform, "*.txt") == ["file1.txt", "file2.txt"]
    (ws / "src" / "cmd").mkdir(parents=True)
    (ws / "src" / "main.go").write_text("")
    (ws / "src" / "cmd" / "x.go").write_text("")
    (ws / ".env").write_text("")
    assert matches(platform, "**/*.go") == ["src/cmd/x.go", "src/main.go"]
    assert matches(platform, "src/**") == ["src", "src/cmd", "src/cmd/x.go", "src/main.go"]
    assert matches(platform, "src/**/") == ["src", "src/cmd"]   # directories only
    assert matches(platform, "*.{txt,log}") == ["file1.txt", "file2.txt", "file3.log"]
    assert matches(platform, "{src/cmd,src}/*.go") == ["src/cmd/x.go", "src/main.go"]
    assert matches(platform, "file[12].txt") == ["file1.txt", "file2.txt"]
    assert matches(platform, "file[!12].*") == ["file3.log"]
    assert matches(platform, "*env") == [".env"]                 # dotfiles are not special
    assert "." in matches(platform, "**")                        # ** matches the root too


def test_no_results_are_null_and_invalid_paths_give_none(platform, ws):
    for pattern in ("*.nothing", "/etc/*", "./*.txt", "src/../*.txt", ""):
        res = glob(platform, pattern)
        assert res == {"matches": None}, (pattern, res)


def test_malformed_pattern_is_gos_syntax_error(platform):
    for pattern in ("[a", "{a,b", "a\\"):
        res = platform.result(platform.task("glob", {"pattern": pattern}), timeout=20)
        assert res["success"] is False and res["error"] == \
            "failed to glob: syntax error in pattern", (pattern, res)


def test_symlinked_directories_only_beneath_the_root_and_no_loops(platform, ws, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("")
    (ws / "links").mkdir()
    (ws / "linked").mkdir()
    (ws / "linked" / "main.go").write_text("")
    (ws / "links" / "out").symlink_to(outside)        # its name may match, never entered
    (ws / "links" / "back").symlink_to("..")          # a loop
    (ws / "links" / "in").symlink_to("../linked")     # followed: inside the root
    got = matches(platform, "links/**")
    assert "links/out" in got and not any("secret" in m for m in got)
    assert "links/in/main.go" in got
    assert not any(m.startswith("links/back/links") for m in got)


def test_the_cap_says_truncated(platform, ws):
    (ws / "many").mkdir()
    for i in range(40):
        (ws / "many" / ("f%02d" % i)).write_text("")
    res = glob(platform, "many/*")
    assert res["truncated"] is True and len(res["matches"]) == 30
    assert res["matches"] == sorted(res["matches"])
