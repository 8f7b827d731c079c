"""Isolation of the command from the broker's secrets (DESIGN.md 4b): a command
running as root, and one running as an unprivileged user, each try every door
to the key the issue names — the key file named on the broker's command line,
the runner's config file, /proc/<broker>/mem and environ, process_vm_readv,
PTRACE_ATTACH, unmounting the covers — and all fail, while the same command's
brokered call and ordinary tools still work."""

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import PYTHON, E2E, make_child_env, run_process, write_key_file

UNPRIVILEGED = 65534

# Runs inside the command: tries each door and prints one JSON object of outcomes.
ATTACKS = r"""
import ctypes, ctypes.util, errno, json, os, subprocess, sys
broker = os.getppid()
key_file, config_file = sys.argv[1], sys.argv[2]
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
out = {"uid": os.getuid()}

def try_read(path):
    try:
        with open(path, "rb") as f:
            return "read:%d" % len(f.read())
    except OSError as e:
        return "denied:" + errno.errorcode.get(e.errno, str(e.errno))

out["key_file"] = try_read(key_file)
out["config_file"] = try_read(config_file)
out["mem"] = try_read("/proc/%d/mem" % broker)
out["environ"] = try_read("/proc/%d/environ" % broker)

class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
buf = ctypes.create_string_buffer(64)
local = iovec(ctypes.cast(buf, ctypes.c_void_p), 64)
remote = iovec(0x400000, 64)
libc.process_vm_readv.restype = ctypes.c_ssize_t
n = libc.process_vm_readv(broker, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
out["process_vm_readv"] = "ok" if n >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")
PTRACE_ATTACH = 16
libc.ptrace.restype = ctypes.c_long
r = libc.ptrace(PTRACE_ATTACH, broker, None, None)
out["ptrace"] = "attached" if r == 0 else errno.errorcode.get(ctypes.get_errno(), "?")
for name, path in (("umount_key", key_file), ("umount_config", config_file)):
    r = libc.umount2(path.encode(), 2)  # MNT_DETACH
    out[name] = "unmounted" if r == 0 else errno.errorcode.get(ctypes.get_errno(), "?")
out["key_file_after_umount"] = try_read(key_file)
# A new namespace of its own does not help: the covers are locked there.
r = subprocess.run(["unshare", "-U", "-m", "-r", "sh", "-c",
                    "umount -l %s 2>/dev/null; cat %s 2>/dev/null | wc -c" % (key_file, key_file)],
                   capture_output=True, text=True)
out["nested_ns_read"] = r.stdout.strip() or r.stderr.strip()[:80]

import brokered
c = brokered.connection()
c.request("GET", "/echo?app_key=sentinel")
resp = c.getresponse()
resp.read()
out["brokered"] = resp.status
out["ps"] = subprocess.run(["ps", "-o", "pid=", "-p", str(os.getpid())],
                           capture_output=True, text=True).stdout.strip() == str(os.getpid())
out["tools"] = subprocess.run(["sh", "-c", "ls / >/dev/null && id -u && python3 -c 'print(1)'"],
                              capture_output=True, text=True).returncode
out["own_proc"] = os.path.exists("/proc/self/status")
print(json.dumps(out))
"""


@pytest.fixture
def request_cleanup():
    dirs = []
    yield dirs
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


def run_attacks(credbroker, upstream, certs, request_cleanup, as_user):
    """Runs the attack script as root or as an unprivileged user, under a broker whose
    key file is named on its command line, with a 'runner config' secret path."""
    key = "isolation-test-key-0123456789"
    # Under /tmp itself: pytest's tmp dirs are not traversable by another user.
    home = Path(tempfile.mkdtemp(prefix="credbroker-iso-", dir="/tmp"))
    home.chmod(0o755)
    request_cleanup.append(home)
    key_path = write_key_file(home / "key", key)
    config = home / "config.yaml"
    config.write_text("api_key: runner-token-must-stay-hidden\n")
    config.chmod(0o600)
    ca = home / "ca.pem"
    shutil.copy(certs.ca, ca)
    script = home / "attacks.py"
    script.write_text(ATTACKS)
    for p in (home, key_path, config, ca, script):  # the unprivileged user owns its files
        os.chown(p, as_user, as_user)
    ca.chmod(0o644)
    script.chmod(0o644)
    argv = [str(credbroker), "exec", "--upstream", upstream.url, "--cacert", str(ca),
            "--key-file", str(key_path), "--secret-path", str(config), "--isolation", "required",
            "--", PYTHON, str(script), str(key_path), str(config)]
    if as_user != 0:
        if shutil.which("setpriv") is None:
            pytest.skip("setpriv (util-linux) is missing")
        argv = ["setpriv", "--reuid=%d" % as_user, "--regid=%d" % as_user, "--clear-groups"] + argv
    env = make_child_env({"PYTHONPATH": str(E2E)})
    code, out, err = run_process(argv, env=env, timeout=60)
    assert code == 0, err
    assert key not in out and key not in err
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("as_user", [0, UNPRIVILEGED], ids=["root", "unprivileged"])
def test_isolated_command_cannot_reach_the_key_but_still_works(
        isolation_available, credbroker, upstream, certs, request_cleanup, as_user):
    if as_user == 0 and os.geteuid() != 0:
        pytest.skip("the root case needs the tests to run as root")
    if as_user != 0 and os.geteuid() != 0:
        pytest.skip("switching to an unprivileged user needs root")
    out = run_attacks(credbroker, upstream, certs, request_cleanup, as_user)
    assert out["uid"] == as_user  # identity-mapped: id looks the same inside
    assert out["key_file"].startswith("denied") or out["key_file"] == "read:0"
    assert out["config_file"].startswith("denied") or out["config_file"] == "read:0"
    assert out["mem"].startswith("denied")
    assert out["environ"].startswith("denied")
    assert out["process_vm_readv"] != "ok"
    assert out["ptrace"] != "attached"
    assert out["umount_key"] != "unmounted" and out["umount_config"] != "unmounted"
    assert out["key_file_after_umount"].startswith("denied") or \
        out["key_file_after_umount"] == "read:0"
    assert out["nested_ns_read"] == "0"
    assert out["brokered"] == 200
    assert out["ps"] is True and out["tools"] == 0 and out["own_proc"] is True


def test_isolation_off_warns_that_the_key_file_is_readable(credbroker, upstream, certs, key_file):
    path, key = key_file
    code, out, err = run_process(
        [str(credbroker), "exec", "--upstream", upstream.url, "--cacert", str(certs.ca),
         "--key-file", str(path), "--isolation", "off", "--", "cat", str(path)],
        env=make_child_env())
    assert code == 0
    assert "can read the key file" in err and "--key-fd" in err
    assert key not in err


def without_user_namespaces(argv):
    """argv run where no user namespace can be made: in a user namespace of its own whose
    max_user_namespaces is 0 (a per-namespace limit), as on a host that forbids them."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is missing")
    script = 'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"'
    return ["unshare", "--user", "--map-root-user", "sh", "-c", script, "sh"] + argv


def test_isolation_required_fails_closed_where_unavailable(
        isolation_available, credbroker, upstream, certs, key_file):
    path, key = key_file
    argv = [str(credbroker), "exec", "--upstream", upstream.url, "--cacert", str(certs.ca),
            "--key-file", str(path)]
    code, out, _ = run_process(without_user_namespaces([str(credbroker), "version", "--json"]),
                               env=make_child_env())
    assert code == 0 and json.loads(out)["isolation"] == "none", out
    # required: exit 125, and the command never runs.
    code, out, err = run_process(without_user_namespaces(
        argv + ["--isolation", "required", "--", "sh", "-c", "echo ran; cat %s" % path]),
        env=make_child_env())
    assert code == 125, (code, out, err)
    assert "ran" not in out and key not in out + err
    assert "--isolation required, but this host does not allow user namespaces" in err
    # auto: runs without, and says so.
    code, out, err = run_process(without_user_namespaces(
        argv + ["--isolation", "auto", "--", "sh", "-c", "echo ran"]), env=make_child_env())
    assert code == 0 and "ran" in out, err
    assert "isolation unavailable" in err
    # A bad mode is a usage error.
    code, _, err = run_process(argv + ["--isolation", "sometimes", "--", "true"],
                               env=make_child_env())
    assert code == 2 and "isolation" in err


def test_runner_with_isolation_required_does_not_start_where_unavailable(
        isolation_available, credbroker, tmp_path):
    config = tmp_path / "runner.yaml"
    config.write_text("api_key: rt-iso-required-token\nbroker:\n  isolation: required\n")
    config.chmod(0o600)
    code, out, err = run_process(without_user_namespaces(
        [str(credbroker), "runner", "--config", str(config), "--api-url", "ws://127.0.0.1:9/ws",
         "--workspace-root", str(tmp_path / "ws")]), env=make_child_env(), timeout=30)
    assert code != 0, (out, err)
    assert "broker.isolation is required, but this host does not allow user namespaces" in err
    assert "rt-iso-required-token" not in out + err


def test_runner_task_cannot_read_the_runners_config_or_token(
        isolation_available, credbroker, certs, tmp_path):
    """A task of the runner tries to read the runner's config file (which holds its
    token) and the runner's /proc: all refused, while the task itself runs."""
    from conftest import MockPlatform, RunnerProcess

    token = "rt-config-token-" + os.urandom(8).hex()
    (tmp_path / "platform").mkdir()
    platform = MockPlatform(tmp_path / "platform", token=token)
    config = tmp_path / "runner.yaml"
    config.write_text("api_key: %s\nname: iso-runner\n" % token)
    config.chmod(0o600)
    runner = RunnerProcess(credbroker, platform, tmp_path, certs.ca, token=None,
                           args=["--config", str(config)])
    try:
        task = platform.bash("cat %s; echo config_rc=$?; head -c 100 /proc/$PPID/environ;"
                             " echo environ_rc=$?; cat /proc/$PPID/cmdline | tr '\\0' ' '"
                             % config, timeout=20)
        result = platform.result(task, timeout=20)["result"]
        # Each read failed on its own...
        assert "config_rc=1" in result["stdout"] and "environ_rc=1" in result["stdout"], result
        assert token not in result["stdout"] + result["stderr"]  # ...and nothing leaked
        assert "Permission denied" in result["stderr"]
    finally:
        runner.close()
        platform.stop()


def test_no_fd_is_closed_while_the_event_loop_watches_it(
        isolation_available, credbroker, build_dir, upstream, certs, key_file, tmp_path):
    """An isolated command's start (the id-map handshake, src/exec/child.c) closes no fd
    that the broker's epoll set still watches: tests/fdaudit reports every such close.
    Closed while watched, the file stays registered as long as the not-yet-exec'd child
    holds a copy, and its hang-up reached the next connection given that number (a false
    end of stream: scripts/soak lost a request to it)."""
    if os.geteuid() != 0:
        pytest.skip("the broker maps an isolated command's ids only as root")
    audit = build_dir / "tests" / "fdaudit" / "libfdaudit.so"
    if not audit.exists():
        pytest.skip("%s is not built" % audit)
    ldd = subprocess.run(["ldd", str(credbroker)], capture_output=True, text=True).stdout
    if "libasan" in ldd:
        pytest.skip("a preloaded library cannot come before the ASan runtime")
    path, key = key_file
    log = tmp_path / "fdaudit.log"
    env = make_child_env({"LD_PRELOAD": str(audit), "CREDBROKER_FDAUDIT_LOG": str(log)})
    call = ("import brokered; c = brokered.connection(); c.request('GET', '/echo'); "
            "print(c.getresponse().status)")
    code, out, err = run_process(
        [str(credbroker), "exec", "--upstream", upstream.url, "--cacert", str(certs.ca),
         "--key-file", str(path), "--isolation", "required", "--", PYTHON, "-c", call],
        env=env)
    assert code == 0 and out.strip() == "200", (code, out, err)
    text = log.read_text()
    assert re.search(r"^epoll \d+$", text, re.M), text  # the audit ran in the broker
    assert "close(" not in text, text
