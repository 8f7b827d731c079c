"""Secret covers follow the object, not the path (SECURITY.md 4.1, issue 20 items 1, 3, 7).

A command may rename a parent of a secret on the shared filesystem: a cover resolved
afresh by path at the next spawn would find nothing there and the secret would sit
readable under its new name. Here each move of the review is made between two runs of
`credbroker exec` (as an unprivileged user) and between two runner tasks, and the second
never reads the secret: the runner refuses the task with "secret path changed: PATH",
exec refuses to start on a secret path that names nothing. Also: a working directory at
or under a covered directory is refused; the runner's log is covered from its tasks,
through a rotation; --key-env without isolation warns."""

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import make_child_env, run_process, write_key_file

UNPRIVILEGED = 65534


@pytest.fixture
def home():
    """A directory an unprivileged user owns (under /tmp: pytest's are not traversable),
    holding conf/config.yaml, the secret; the key file beside it."""
    if os.geteuid() != 0:
        pytest.skip("switching to an unprivileged user needs root")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is missing")
    base = Path(tempfile.mkdtemp(prefix="credbroker-covers-", dir="/tmp"))
    base.chmod(0o755)
    h = base / "home"
    (h / "conf").mkdir(parents=True)
    secret = "runner-token-" + os.urandom(8).hex()
    (h / "conf" / "config.yaml").write_text("api_key: %s\n" % secret)
    (h / "conf" / "config.yaml").chmod(0o600)
    write_key_file(base / "key", "covers-test-key-0123456789")
    for p in (base, h, h / "conf", h / "conf" / "config.yaml", base / "key"):
        os.chown(p, UNPRIVILEGED, UNPRIVILEGED)
    yield h, secret
    shutil.rmtree(base, ignore_errors=True)


def exec_as_nobody(credbroker, upstream, home, command, secret_path=None, cwd=None):
    """credbroker exec as the unprivileged user, hiding home/conf/config.yaml (or
    secret_path), running `sh -c command`."""
    argv = ["setpriv", "--reuid=%d" % UNPRIVILEGED, "--regid=%d" % UNPRIVILEGED,
            "--clear-groups", str(credbroker), "exec", "--upstream", upstream.url,
            "--key-file", str(home.parent / "key"), "--isolation", "required",
            "--secret-path", str(secret_path or home / "conf" / "config.yaml"),
            "--", "sh", "-c", command]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=cwd,
                          env=make_child_env())
    return proc.returncode, proc.stdout, proc.stderr


# Each move a command can make between two runs, and how the second run then tries to read
# the secret. {h} is the home directory.
MOVES = {
    "parent": ("mv {h}/conf {h}/conf.moved", "cat {h}/conf.moved/config.yaml"),
    "grandparent": ("mv {h} {h}.moved", "cat {h}.moved/conf/config.yaml"),
    "symlinked-parent": ("mv {h}/conf {h}/conf.real && ln -s conf.real {h}/conf",
                         "cat {h}/conf.real/config.yaml; cat {h}/conf/config.yaml"),
}


@pytest.mark.parametrize("move", sorted(MOVES))
def test_exec_a_moved_secret_stays_hidden_from_the_next_run(
        isolation_available, credbroker, upstream, home, move):
    h, secret = home
    mover, reader = (t.format(h=h) for t in MOVES[move])
    code, out, err = exec_as_nobody(credbroker, upstream, h, mover + "; echo moved=$?")
    assert code == 0 and "moved=0" in out, (out, err)
    # The next run names the same secret path.
    code, out, err = exec_as_nobody(credbroker, upstream, h, reader + "; echo ran")
    assert secret not in out and secret not in err
    if move == "symlinked-parent":
        # The path still reaches the secret (through the symlink): it is covered where it
        # is, whichever name the command reads it by.
        assert code == 0 and "ran" in out, (out, err)
    else:
        # It names nothing now: what it hid may be elsewhere, so the command is not run.
        assert code == 2 and "ran" not in out, (code, out, err)
        assert "--secret-path %s" % (h / "conf" / "config.yaml") in err
        assert "No such file or directory" in err


def test_exec_a_secret_deleted_and_created_again_is_covered_anew(
        isolation_available, credbroker, upstream, home):
    h, secret = home
    config = h / "conf" / "config.yaml"
    code, out, err = exec_as_nobody(credbroker, upstream, h, "rm -f %s; echo rm=$?" % config)
    # Inside the command the file is a mount point: it cannot be removed there.
    assert code == 0 and "rm=0" not in out and "busy" in err, (out, err)
    # From outside (another process of the user, an editor's write-and-rename), it can.
    os.unlink(config)
    config.write_text("api_key: %s\n" % secret)
    os.chown(config, UNPRIVILEGED, UNPRIVILEGED)
    code, out, err = exec_as_nobody(credbroker, upstream, h, "cat %s; echo ran" % config)
    assert code == 0 and "ran" in out and secret not in out + err, (out, err)


@pytest.mark.parametrize("at", ["at", "below"])
def test_exec_refuses_a_working_directory_under_a_covered_directory(
        isolation_available, credbroker, upstream, home, at):
    h, secret = home
    (h / "conf" / "sub").mkdir()
    os.chown(h / "conf" / "sub", UNPRIVILEGED, UNPRIVILEGED)
    cwd = h / "conf" if at == "at" else h / "conf" / "sub"
    code, out, err = exec_as_nobody(credbroker, upstream, h,
                                    "cat ./config.yaml ../config.yaml; echo ran",
                                    secret_path=h / "conf", cwd=cwd)
    assert code == 125 and "ran" not in out, (code, out, err)
    assert "working directory is at or under the secret path %s" % (h / "conf") in err
    assert secret not in out + err


def test_exec_key_env_without_isolation_warns_that_the_parent_keeps_it(credbroker, upstream):
    env = make_child_env({"COVERS_TEST_KEY": "key-env-test-key-0123456789"})
    code, out, err = run_process(
        [str(credbroker), "exec", "--upstream", upstream.url, "--key-env", "COVERS_TEST_KEY",
         "--isolation", "off", "--", "true"], env=env)
    assert code == 0, err
    assert "--key-env without isolation" in err and "/proc/PID/environ" in err
    code, out, err = run_process([str(credbroker), "exec", "--help"])
    assert "/proc/PID/environ" in out + err


# ---- the runner ----

@pytest.fixture
def covered_runner(isolation_available, own_runner, tmp_path):
    """A runner whose config (holding its token) is home/conf/config.yaml."""
    token = "rt-covers-token-" + os.urandom(8).hex()
    h = tmp_path / "home"
    (h / "conf").mkdir(parents=True)
    config = h / "conf" / "config.yaml"
    config.write_text("api_key: %s\nname: covers-runner\n" % token)
    config.chmod(0o600)
    platform, runner = own_runner(args=["--config", str(config)], token=None,
                                  platform_token=token)
    return platform, runner, h, token


def run_task(platform, command, **kw):
    """The task's payload, with "stdout" and "stderr" lifted from its result ("" when the
    command never ran)."""
    res = platform.result(platform.bash(command, timeout=20, **kw), timeout=30)
    ran = res.get("result") or {}
    return dict(res, stdout=ran.get("stdout", ""), stderr=ran.get("stderr", ""))


@pytest.mark.parametrize("move", sorted(MOVES))
def test_runner_task_cannot_unhide_the_config_for_the_next_task(covered_runner, move):
    platform, runner, h, token = covered_runner
    config = h / "conf" / "config.yaml"
    mover, reader = (t.format(h=h) for t in MOVES[move])
    res = run_task(platform, mover + "; echo moved=$?")
    assert "moved=0" in res["stdout"], res
    res = run_task(platform, reader + "; echo ran")
    assert token not in res["stdout"] + res["stderr"]
    assert res["success"] is False and "ran" not in res["stdout"], res
    assert res["error"] == "secret path changed: %s" % config, res
    runner.wait_log("secret path changed: %s" % config)
    # Put back, the secret is the object opened at start again: tasks run.
    undo = {"parent": lambda: (h / "conf.moved").rename(h / "conf"),
            "grandparent": lambda: Path(str(h) + ".moved").rename(h),
            "symlinked-parent": lambda: ((h / "conf").unlink(),
                                         (h / "conf.real").rename(h / "conf"))}
    undo[move]()
    res = run_task(platform, "cat %s; echo ran" % config)
    assert res["error"] == "" and "ran" in res["stdout"], res
    assert token not in res["stdout"] + res["stderr"]


def test_runner_a_config_deleted_and_created_again_fails_tasks_closed(covered_runner):
    platform, runner, h, token = covered_runner
    config = h / "conf" / "config.yaml"
    # Outside any task (an editor's write-and-rename): a new object at the path.
    os.unlink(config)
    config.write_text("api_key: %s\n" % token)
    res = run_task(platform, "cat %s; echo ran" % config)
    assert res["success"] is False and res["error"] == "secret path changed: %s" % config, res
    assert token not in res["stdout"] + res["stderr"]


@pytest.mark.parametrize("at", ["at", "below"])
def test_runner_refuses_a_workdir_under_a_covered_directory(
        isolation_available, own_runner, tmp_path, at):
    workspace = tmp_path / "runner-workspace"
    hidden = workspace / "hidden"
    (hidden / "sub").mkdir(parents=True)
    (hidden / "note").write_text("hidden-note-" + os.urandom(4).hex())
    platform, runner = own_runner(args=["--set", "broker.secret_paths=%s" % hidden])
    res = run_task(platform, "cat note ../note; echo ran",
                   workdir="hidden" if at == "at" else "hidden/sub")
    assert res["success"] is False and "ran" not in res["stdout"], res
    assert res["error"] == "workdir is under a secret path: %s" % hidden, res
    # The same directory's parent is fine, and the cover holds there.
    res = run_task(platform, "cat hidden/note; echo ran")
    assert res["error"] == "" and "ran" in res["stdout"], res
    assert "hidden-note" not in res["stdout"]


def test_runner_log_is_covered_from_tasks_through_a_rotation(covered_runner):
    platform, runner, h, token = covered_runner
    log = runner.log_path
    res = run_task(platform, "cat %s; echo rc=$?" % log)
    assert "task started" in runner.log()          # there is something to read...
    assert "task started" not in res["stdout"] and "rc=0" not in res["stdout"], res
    # A rotation: renamed, the runner still writes the old file until SIGHUP.
    rotated = Path(str(log) + ".1")
    log.rename(rotated)
    res = run_task(platform, "cat %s; echo rc=$?" % rotated)
    assert "task started" not in res["stdout"] and "rc=0" not in res["stdout"], res
    runner.proc.send_signal(signal.SIGHUP)
    runner.wait_log("SIGHUP: log file reopened")
    res = run_task(platform, "cat %s; echo rc=$?" % log)
    assert res["error"] == "", res
    assert "task" not in res["stdout"] and "rc=0" not in res["stdout"], res


# ---- the child half, driven directly through the unprivileged trampoline ----

def trampoline_as_nobody(credbroker, covers, command, cwd):
    """`credbroker __isolate` (isolate.h), which an unprivileged broker execs in its child:
    here without the parent's checks, so what the child itself does is what is seen."""
    argv = ["setpriv", "--reuid=%d" % UNPRIVILEGED, "--regid=%d" % UNPRIVILEGED,
            "--clear-groups", str(credbroker), "__isolate", "/bin/sh", str(len(covers))]
    for kind, path in covers:
        st = os.stat(path)
        argv.append("%s:%d:%d:%s" % (kind, st.st_dev, st.st_ino, path))
    argv += ["--", "sh", "-c", command]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=cwd,
                          env=make_child_env())
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize("at", ["at", "below"])
def test_child_enters_its_working_directory_again_through_the_covers(
        isolation_available, credbroker, home, at):
    h, secret = home
    (h / "conf" / "sub").mkdir()
    os.chown(h / "conf" / "sub", UNPRIVILEGED, UNPRIVILEGED)
    code, out, err = trampoline_as_nobody(
        credbroker, [("d", h / "conf")], "cat ./config.yaml ../config.yaml; echo ran",
        cwd=h / "conf" if at == "at" else h / "conf" / "sub")
    assert secret not in out + err
    if at == "at":
        # Re-entered by its path, the directory is the empty cover.
        assert code == 0 and "ran" in out, (code, out, err)
    else:
        # Below the cover there is nothing to re-enter: it does not run.
        assert code == 125 and "ran" not in out and "cannot isolate" in err, (code, out, err)


def test_child_refuses_a_cover_whose_object_changed_after_the_plan(
        isolation_available, credbroker, home):
    h, secret = home
    config = h / "conf" / "config.yaml"
    st = os.stat(config)
    # What a rename between the parent's check and the child's mount looks like to the
    # child: the path now names another object.
    other = h / "conf" / "other"
    other.write_text("x")
    os.chown(other, UNPRIVILEGED, UNPRIVILEGED)
    argv = ["setpriv", "--reuid=%d" % UNPRIVILEGED, "--regid=%d" % UNPRIVILEGED,
            "--clear-groups", str(credbroker), "__isolate", "/bin/sh", "1",
            "f:%d:%d:%s" % (st.st_dev, os.stat(other).st_ino, config),
            "--", "sh", "-c", "cat %s; echo ran" % config]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=make_child_env())
    assert proc.returncode == 125 and "ran" not in proc.stdout, proc
    assert "a secret path changed since start" in proc.stderr
    assert secret not in proc.stdout + proc.stderr
