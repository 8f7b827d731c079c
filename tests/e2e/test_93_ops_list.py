"""The runner's list operation (RUNNER-OPS.md 5.3), against the real runner over its
WebSocket: Go's documented case, walk order, entries named from the root, symlinks as
entries never followed, ignore patterns as Go's filepath.Match on base names, the entry
cap (lowered here with ops.list.max_entries), error texts, and names that are not UTF-8."""

import os

import pytest

RUNNER_ARGS = ["--set", "ops.list.max_entries=50"]


@pytest.fixture(scope="module")
def ws(runner):
    return runner.workspace


def listing(platform, args):
    res = platform.result(platform.task("list", args), timeout=20)
    assert res["success"] is True, res
    return res["result"]


def paths(result):
    return [e["path"] for e in result["entries"] or []]


def error_of(platform, args):
    res = platform.result(platform.task("list", args), timeout=20)
    assert res["success"] is False and res["exit_code"] == 1, res
    return res["error"]


def test_gos_documented_case_first_on_an_empty_root(platform, ws):
    assert listing(platform, {})["entries"] is None  # nothing there: null, not []
    (ws / "dir1").mkdir()
    (ws / "dir2").mkdir()
    (ws / "file1.txt").write_text("x")
    (ws / "dir1" / "file2.txt").write_text("yy")
    flat = listing(platform, {"path": ""})
    assert paths(flat) == ["dir1", "dir2", "file1.txt"]
    assert flat["entries"][2] == {"path": "file1.txt", "is_dir": False, "size": 1}
    assert flat["entries"][0]["is_dir"] is True and "truncated" not in flat
    deep = listing(platform, {"path": ".", "recursive": True})
    assert paths(deep) == ["dir1", "dir1/file2.txt", "dir2", "file1.txt"]


def test_order_symlinks_and_named_from_the_root(platform, ws):
    t = ws / "t"
    (t / "B").mkdir(parents=True)
    (t / "a").write_text("")
    (t / "B" / "c").write_text("")
    (t / "link").symlink_to("B")              # an entry, not followed
    (ws / "to-t").symlink_to("t")             # listing it lists t, named t
    res = listing(platform, {"path": "t", "recursive": True})
    assert paths(res) == ["t", "t/B", "t/B/c", "t/a", "t/link"]  # bytewise: B before a
    link = res["entries"][-1]
    assert link == {"path": "t/link", "is_dir": False, "size": 1}
    assert paths(listing(platform, {"path": "to-t"})) == ["t", "t/B", "t/a", "t/link"]
    assert paths(listing(platform, {"path": "t/a"})) == ["t/a"]  # a file: itself


def test_ignore_is_gos_match_on_base_names(platform, ws):
    g = ws / "g"
    (g / "node_modules" / "pkg").mkdir(parents=True)
    (g / "src").mkdir()
    for name in ("main.o", "main.c", "src/util.o", "src/util.c", "node_modules/pkg/x.c"):
        (g / name).write_text("")
    res = listing(platform, {"path": "g", "recursive": True,
                             "ignore": ["*.o", "node_modules", "[", "[!x]"]})
    # A directory that matches is pruned, a file skipped; a bad pattern matches nothing;
    # "[!x]" is a class of '!' and 'x' in Go, not a negation.
    assert paths(res) == ["g", "g/main.c", "g/src", "g/src/util.c"]
    assert listing(platform, {"path": "g", "ignore": ["g"]})["entries"] is None


def test_the_cap_stops_the_walk_and_says_so(platform, ws):
    many = ws / "many"
    many.mkdir()
    for i in range(60):
        (many / ("f%02d" % i)).write_text("")
    res = listing(platform, {"path": "many"})
    assert res["truncated"] is True and len(res["entries"]) == 50
    assert paths(res)[:3] == ["many", "many/f00", "many/f01"]


def test_error_texts_and_escapes(platform, ws, tmp_path):
    root = str(ws)
    assert error_of(platform, {"path": "missing"}) == \
        "failed to list directory: lstat %s/missing: no such file or directory" % root
    assert error_of(platform, {"path": "../x"}) == "path is outside workspace root: ../x"
    (ws / "out").symlink_to(tmp_path)
    assert error_of(platform, {"path": "out"}) == \
        "path escapes workspace root via symlink: out"
    assert error_of(platform, {"recursive": "yes"}) == (
        "invalid list args: json: cannot unmarshal string into Go struct field "
        "ListArgs.recursive of type bool")


def test_names_that_are_not_utf8_keep_the_json_valid(platform, ws):
    odd = ws / "odd"
    odd.mkdir()
    with open(os.path.join(bytes(odd), b"bad-\xff-name"), "w"):
        pass
    assert paths(listing(platform, {"path": "odd"})) == ["odd", "odd/bad-\ufffd-name"]
