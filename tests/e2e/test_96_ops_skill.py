"""The runner's sync_skill operation (RUNNER-OPS.md 10), against the real runner over its
WebSocket, with archives built here by Python's zipfile and tarfile: zip and tar.gz skills
installed whole (nested directories, an executable script a bash task then runs, Go's
.checksum and result); every refused entry kind, the limits and a zip bomb refused with
the old skill left byte for byte and no temporary sibling behind; the workspace root
refused as a skill_dir; concurrent syncs of one skill ending with one whole skill; and a
cancel in the middle of a big sync."""

import base64
import io
import os
import stat
import tarfile
import zipfile

import pytest

from conftest import wait_for


@pytest.fixture(scope="module")
def ws(runner):
    return runner.workspace


# ---- archives ----

def zip_of(entries, compression=zipfile.ZIP_DEFLATED):
    """entries: (name, data bytes | None for a directory, mode) or (name, target, "symlink")."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as z:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            info.create_system = 3  # Unix: the mode is in the high bits of external_attr
            if mode == "symlink":
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                z.writestr(info, data)
            elif data is None:
                info.external_attr = (stat.S_IFDIR | mode) << 16 | 0x10
                z.writestr(info, b"")
            else:
                info.external_attr = (stat.S_IFREG | mode) << 16
                info.compress_type = compression
                z.writestr(info, data)
    return out.getvalue()


def tgz_of(entries):
    """entries: (name, data bytes | None for a directory, mode), or (name, link, kind) for
    kind in symlink, hardlink, chr, blk, fifo."""
    kinds = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE,
             "blk": tarfile.BLKTYPE, "fifo": tarfile.FIFOTYPE}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz", format=tarfile.PAX_FORMAT) as t:
        for name, data, mode in entries:
            info = tarfile.TarInfo(name)
            if isinstance(mode, str):
                info.type = kinds[mode]
                info.linkname = data or ""
                info.mode = 0o644
                t.addfile(info)
            elif data is None:
                info.type = tarfile.DIRTYPE
                info.mode = mode
                t.addfile(info)
            else:
                info.size = len(data)
                info.mode = mode
                t.addfile(info, io.BytesIO(data))
    return out.getvalue()


SKILL = [
    ("SKILL.md", b"---\nname: demo\n---\nSay hello.\n", 0o644),
    ("scripts/", None, 0o755),
    ("scripts/hello.sh", b"#!/bin/bash\necho \"hello from $(basename \"$0\")\"\n", 0o755),
    ("docs/deep/nested/notes.txt", b"notes\n", 0o600),
]


def sync(platform, skill_dir, archive, checksum="sum", timeout=60):
    return platform.result(platform.sync_skill(skill_dir, archive, checksum=checksum),
                           timeout=timeout)


def ok(res, skill_dir):
    assert res["success"] is True, res
    assert res["result"] == {"success": True, "path": skill_dir}


def error_of(res):
    assert res["success"] is False and res["exit_code"] == 1, res
    return res["error"]


def tree(path):
    """Every object under path: relative name -> (mode, bytes or link target or None)."""
    found = {}
    for parent, dirs, files in os.walk(path):
        for n in dirs + files:
            p = os.path.join(parent, n)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    body = f.read()
            elif stat.S_ISLNK(st.st_mode):
                body = os.readlink(p)
            else:
                body = None
            found[os.path.relpath(p, path)] = (st.st_mode, body)
    return found


def no_temporary(directory):
    return [n for n in os.listdir(directory) if ".tmp-" in n] == []


# ---- installing ----

@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_a_skill_is_installed_with_its_tree_modes_and_checksum(platform, ws, kind):
    archive = zip_of(SKILL) if kind == "zip" else tgz_of(SKILL)
    skill_dir = "skills/demo-" + kind
    ok(sync(platform, skill_dir, archive, checksum="sha256:abc"), skill_dir)
    root = ws / skill_dir
    assert (root / "SKILL.md").read_bytes() == SKILL[0][1]
    assert stat.S_IMODE((root / "scripts/hello.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((root / "docs/deep/nested/notes.txt").stat().st_mode) == 0o600
    assert (root / "docs/deep/nested/notes.txt").read_bytes() == b"notes\n"
    assert (root / ".checksum").read_bytes() == b"sha256:abc"
    assert stat.S_IMODE((root / ".checksum").stat().st_mode) == 0o644
    assert no_temporary(ws / "skills")
    # the executable bit kept: a bash task runs the script as it is
    res = platform.result(platform.bash("./scripts/hello.sh", workdir=skill_dir), timeout=20)
    assert res["success"] is True and res["result"]["exit_code"] == 0, res
    assert res["result"]["stdout"] == "hello from hello.sh\n"


def test_a_sync_replaces_the_whole_old_skill(platform, ws):
    ok(sync(platform, "skills/swap", zip_of(SKILL)), "skills/swap")
    (ws / "skills/swap/local-leftover.txt").write_text("made by a task")
    new = [("SKILL.md", b"v2\n", 0o644)]
    ok(sync(platform, "skills/swap", tgz_of(new), checksum="v2"), "skills/swap")
    assert sorted(os.listdir(ws / "skills/swap")) == [".checksum", "SKILL.md"]
    assert (ws / "skills/swap/SKILL.md").read_bytes() == b"v2\n"
    assert no_temporary(ws / "skills")


def test_args_are_read_as_gos_and_checksum_is_written_verbatim(platform, ws):
    archive = base64.b64encode(zip_of([("a.txt", b"a", 0o644)])).decode()
    res = platform.result(platform.task("sync_skill", {"Skill_Dir": "skills/args",
                                                       "ZIP_DATA": archive}), timeout=20)
    ok(res, "skills/args")
    assert (ws / "skills/args/.checksum").read_bytes() == b""  # no checksum: an empty file
    res = platform.result(platform.task("sync_skill", {"skill_dir": 5}), timeout=20)
    assert error_of(res) == ("invalid sync_skill args: json: cannot unmarshal number into Go "
                             "struct field SyncSkillArgs.skill_dir of type string")


# ---- refusals: the old skill stays byte for byte ----

GOOD_THEN = [("SKILL.md", b"new\n", 0o644), ("dir/good.txt", b"good\n", 0o644)]


@pytest.mark.parametrize("kind,bad,want", [
    ("zip", ("dir/link", "/etc/passwd", "symlink"), "unsupported entry type: dir/link (symlink)"),
    ("tar.gz", ("dir/link", "../../x", "symlink"), "unsupported entry type: dir/link (symlink)"),
    ("tar.gz", ("hard", "dir/good.txt", "hardlink"), "unsupported entry type: hard (hard link)"),
    ("tar.gz", ("dev", None, "chr"), "unsupported entry type: dev (character device)"),
    ("tar.gz", ("disk", None, "blk"), "unsupported entry type: disk (block device)"),
    ("tar.gz", ("pipe", None, "fifo"), "unsupported entry type: pipe (fifo)"),
    ("zip", ("../evil.txt", b"x", 0o644), "invalid file path in zip: ../evil.txt"),
    ("zip", ("/abs.txt", b"x", 0o644), "invalid file path in zip: /abs.txt"),
    ("tar.gz", ("a/../../evil.txt", b"x", 0o644), "invalid file path in zip: a/../../evil.txt"),
])
def test_a_bad_entry_after_good_ones_leaves_the_old_skill(platform, ws, kind, bad, want):
    skill_dir = "skills/kept"
    ok(sync(platform, skill_dir, zip_of(SKILL), checksum="old"), skill_dir)
    before = tree(ws / "skills")
    entries = GOOD_THEN + [bad, ("after.txt", b"after\n", 0o644)]
    archive = zip_of(entries) if kind == "zip" else tgz_of(entries)
    assert error_of(sync(platform, skill_dir, archive)) == "failed to unzip skill: " + want
    assert tree(ws / "skills") == before
    assert not (ws / "evil.txt").exists() and not (ws / "skills/evil.txt").exists()


def test_a_zip_bomb_is_refused_by_its_compression_ratio(platform, ws):
    skill_dir = "skills/bomb"
    ok(sync(platform, skill_dir, zip_of(SKILL)), skill_dir)
    before = tree(ws / "skills")
    bomb = zip_of([("SKILL.md", b"x", 0o644), ("zeros.bin", bytes(64 << 20), 0o644)],
                  compression=zipfile.ZIP_BZIP2)
    assert len(bomb) < 1 << 20
    assert error_of(sync(platform, skill_dir, bomb)) == \
        "failed to unzip skill: compression ratio too high: zeros.bin (limit 1000)"
    assert tree(ws / "skills") == before


def test_more_than_20000_entries_are_refused(platform, ws):
    skill_dir = "skills/many"
    ok(sync(platform, skill_dir, zip_of(SKILL)), skill_dir)
    before = tree(ws / "skills")
    many = zip_of([("d%d/f%d" % (i % 50, i), b"", 0o644) for i in range(20001)],
                  compression=zipfile.ZIP_STORED)
    assert error_of(sync(platform, skill_dir, many, timeout=120)) == \
        "failed to unzip skill: too many entries (limit 20000)"
    assert tree(ws / "skills") == before


def test_what_is_not_an_archive_and_bad_base64_fail_with_gos_texts(platform, ws):
    res = platform.result(platform.task("sync_skill", {"skill_dir": "skills/x",
                                                       "zip_data": "UEs$"}), timeout=20)
    assert error_of(res) == "failed to decode zip data: illegal base64 data at input byte 3"
    assert error_of(sync(platform, "skills/x", b"not an archive")) == \
        "failed to unzip skill: failed to read zip archive: zip: not a valid zip file"
    plain_tar = io.BytesIO()
    with tarfile.open(fileobj=plain_tar, mode="w") as t:
        t.addfile(tarfile.TarInfo("a"))
    assert error_of(sync(platform, "skills/x", plain_tar.getvalue())) == \
        "failed to unzip skill: failed to read zip archive: zip: not a valid zip file"
    assert not (ws / "skills/x").exists()


@pytest.mark.parametrize("skill_dir", ["", ".", "a/..", "/", "to-root"])
def test_the_workspace_root_is_never_a_skill_dir(platform, ws, skill_dir):
    if not (ws / "to-root").is_symlink():
        os.symlink(str(ws), ws / "to-root")
    (ws / "precious.txt").write_text("keep me")
    assert error_of(sync(platform, skill_dir, zip_of(SKILL))) == \
        "invalid skill_dir: resolves to the workspace root: " + skill_dir
    assert (ws / "precious.txt").read_text() == "keep me"
    assert no_temporary(ws)


def test_a_skill_dir_outside_the_workspace_is_refused(platform, ws):
    assert error_of(sync(platform, "../outside", zip_of(SKILL))) == \
        "path is outside workspace root: ../outside"
    assert not (ws.parent / "outside").exists()


def test_concurrent_syncs_of_one_skill_end_with_one_whole_skill(platform, ws):
    skill_dir = "skills/race"
    versions = {}
    for v in range(8):
        versions["v%d" % v] = [("SKILL.md", b"version %d\n" % v, 0o644)] + \
            [("part/%03d.txt" % i, b"v%d-%d\n" % (v, i), 0o644) for i in range(200)]
    ids = [platform.sync_skill(skill_dir, zip_of(entries), checksum=name)
           for name, entries in versions.items()]
    for task_id in ids:
        ok(platform.result(task_id, timeout=60), skill_dir)
    winner = (ws / skill_dir / ".checksum").read_text()
    want = {name: data for name, data, _ in versions[winner]}
    got = {os.path.relpath(os.path.join(p, n), ws / skill_dir): open(os.path.join(p, n), "rb").read()
           for p, _, files in os.walk(ws / skill_dir) for n in files}
    assert got.pop(".checksum") == winner.encode()
    assert got == want
    assert no_temporary(ws / "skills")


def test_a_cancel_in_the_middle_leaves_the_old_skill(platform, ws):
    """A sync of 20,000 files of random bytes takes a while; the cancel is sent once its
    temporary sibling is seen, so it is not the one before the work starts."""
    skill_dir = "skills/cancelled"
    ok(sync(platform, skill_dir, zip_of(SKILL), checksum="old"), skill_dir)
    before = tree(ws / "skills")
    big = zip_of([("d%d/f%d" % (i % 100, i), os.urandom(700), 0o644) for i in range(19000)],
                 compression=zipfile.ZIP_STORED)
    task_id = platform.sync_skill(skill_dir, big)
    wait_for(lambda: not no_temporary(ws / "skills"), timeout=60, interval=0.001,
             what="the sync to be under way")
    platform.cancel(task_id)
    assert error_of(platform.result(task_id, timeout=120)) == "context canceled"
    wait_for(lambda: no_temporary(ws / "skills"), what="the temporary sibling to go")
    assert tree(ws / "skills") == before


def test_the_limits_come_from_the_configuration(own_runner):
    platform, runner = own_runner(args=["--set", "ops.sync_skill.max_file_bytes=10"],
                                  env={"FLASHDUTY_RUNNER_OPS_SYNC_SKILL_MAX_TOTAL_BYTES": "15"})
    res = sync(platform, "s", zip_of([("a.txt", b"0123456789", 0o644),
                                      ("b.txt", b"01234567890", 0o644)]))
    assert error_of(res) == "failed to unzip skill: file too large: b.txt (limit 10 bytes)"
    res = sync(platform, "s", zip_of([("a.txt", b"0123456789", 0o644),
                                      ("b.txt", b"0123456789", 0o644)]))
    assert error_of(res) == "failed to unzip skill: archive too large (limit 15 bytes)"
    assert not (runner.workspace / "s").exists()
