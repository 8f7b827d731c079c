"""Layer 40: key hygiene and hardening (DESIGN.md sections 4-5), the CLI's
refusals, the audit log, the legacy path and the -Dbroker=disabled build.
"""

import json
import os
import shutil
import subprocess
import tempfile
import urllib.parse
from pathlib import Path

import pytest

from conftest import PYTHON, make_child_env, run_process, write_key_file

CHILDREN = Path(__file__).resolve().parent / "children"
NOBODY = 65534

AUTH_CALL = (
    "import brokered, json, os, sys\n"
    "status, _, body = brokered.request('GET', '/echo?who=child&app_key=sentinel')\n"
    "print(json.dumps({'status': status, 'env': dict(os.environ),\n"
    "                  'fds': sorted(int(f) for f in os.listdir('/proc/self/fd'))}))\n")


def key_params(record):
    return [v for k, v in urllib.parse.parse_qsl(record["query"], keep_blank_values=True)
            if k == "app_key"]


def one_line(err):
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, "expected one line on stderr, got %d:\n%s" % (len(lines), err)
    return lines[0]


# -- what the command can see --------------------------------------------------------

def test_key_is_in_no_environ_argv_or_fd_of_the_command(exec_argv, upstream, key_file):
    path, key = key_file
    argv = exec_argv(["--env-deny", "CB_SECRET_*"], child=[PYTHON, CHILDREN / "inspect_self.py"])
    env = make_child_env({"FLASHDUTY_APP_KEY": key, "CB_SECRET_TOKEN": "hidden-" + key,
                          "CB_BENIGN": "visible"})
    rc, out, err = run_process(argv, env=env)
    assert rc == 0, err
    report = json.loads(out)
    env_seen = report["os_environ"]
    assert env_seen["FLASHDUTY_CRED_FD"] == "3"
    assert env_seen["FLASHDUTY_BASE_URL"] == "http://flashduty.broker.local"
    assert "FLASHDUTY_APP_KEY" not in env_seen
    assert "CB_SECRET_TOKEN" not in env_seen
    assert env_seen["CB_BENIGN"] == "visible"
    assert key not in report["environ"]
    assert key not in report["cmdline"]
    fds = {int(fd) for fd in report["fds"]} - {report["listing_fd"]}
    assert fds == {0, 1, 2, 3}, report["fds"]
    assert report["fds"]["3"].startswith("socket:")
    for fd, text in report["contents"].items():
        assert key not in text, "the key is readable from fd %s" % fd
    assert key not in json.dumps(report)
    assert str(path) not in report["environ"]


def test_command_cannot_read_the_brokers_memory_or_environ(credbroker, upstream, certs,
                                                          key_file):
    # Same-uid is the threat (DESIGN.md section 4). Root has CAP_SYS_PTRACE,
    # which overrides non-dumpability, so as root the whole invocation runs as
    # nobody.
    key = key_file[1]
    child = (
        "import json, os\n"
        "ppid = os.getppid()\n"
        "out = {'comm': open('/proc/%d/comm' % ppid).read().strip()}\n"
        "for name in ('mem', 'environ'):\n"
        "    try:\n"
        "        f = open('/proc/%d/%s' % (ppid, name), 'rb')\n"
        "    except OSError as e:\n"
        "        out[name] = 'open: ' + type(e).__name__\n"
        "        continue\n"
        "    out[name] = 'opened'\n"
        "    f.close()\n"
        "with open('/proc/%d/status' % ppid) as f:\n"
        "    out['status_readable'] = True\n"
        "print(json.dumps(out))\n")
    kwargs = {}
    workdir = None
    ca = certs.ca
    kf = key_file[0]
    if os.geteuid() == 0:
        workdir = tempfile.mkdtemp(prefix="credbroker-nobody-")
        os.chmod(workdir, 0o755)
        ca = Path(shutil.copy(certs.ca, workdir))
        os.chmod(ca, 0o644)
        kf = write_key_file(Path(workdir) / "key", key)
        os.chown(kf, NOBODY, NOBODY)
        kwargs = dict(user=NOBODY, group=NOBODY, extra_groups=[])
    try:
        argv = [str(credbroker), "exec", "--upstream", upstream.url, "--cacert", str(ca),
                "--key-file", str(kf), "--", PYTHON, "-c", child]
        proc = subprocess.run(argv, env=make_child_env(), capture_output=True, text=True,
                              timeout=30, cwd="/", **kwargs)
    finally:
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["comm"] == "credbroker"
    assert out["mem"] == "open: PermissionError", out
    assert out["environ"] == "open: PermissionError", out
    assert key not in proc.stdout


def test_legacy_mode_puts_the_key_and_real_url_in_the_environment(run_exec, upstream, key_file):
    _, key = key_file
    rc, out, err = run_exec(["--legacy"], "import json, os; print(json.dumps(dict(os.environ)))")
    assert rc == 0, err
    env = json.loads(out)
    assert env["FLASHDUTY_APP_KEY"] == key
    assert env["FLASHDUTY_BASE_URL"].rstrip("/") == upstream.url
    assert "FLASHDUTY_CRED_FD" not in env


# -- how the key gets in ----------------------------------------------------------------

def test_key_fd_5_is_read_and_closed_before_the_command(credbroker, upstream, certs, tmp_path):
    key = "fd-key-" + os.urandom(8).hex()
    r, w = os.pipe()
    os.write(w, (key + "\n").encode())
    os.close(w)
    argv = ["/bin/bash", "-c", 'exec "$@" 5<&%d %d<&-' % (r, r), "bash", str(credbroker), "exec",
            "--upstream", upstream.url, "--cacert", str(certs.ca), "--key-fd", "5", "--",
            PYTHON, "-c", AUTH_CALL]
    upstream.clear_log()
    try:
        proc = subprocess.run(argv, env=make_child_env(), pass_fds=[r], capture_output=True,
                              text=True, timeout=30)
    finally:
        os.close(r)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == 200
    assert result["fds"] in ([0, 1, 2, 3], [0, 1, 2, 3, 4])  # + the listing's own fd
    [rec] = upstream.wait_requests(1)
    assert key_params(rec) == [key]
    assert key not in proc.stdout + proc.stderr


def test_key_env_is_used_and_removed_from_the_command(credbroker, upstream, certs):
    key = "env-key-" + os.urandom(8).hex()
    argv = [str(credbroker), "exec", "--upstream", upstream.url, "--cacert", str(certs.ca),
            "--key-env", "CB_CI_API_KEY", "--", PYTHON, "-c", AUTH_CALL]
    upstream.clear_log()
    rc, out, err = run_process(argv, env=make_child_env({"CB_CI_API_KEY": key}))
    assert rc == 0, err
    result = json.loads(out)
    assert result["status"] == 200
    assert "CB_CI_API_KEY" not in result["env"]
    assert key not in out
    [rec] = upstream.wait_requests(1)
    assert key_params(rec) == [key]


def cli_case(tmp_path, name):
    """(extra argv before --, env additions, stdin, key to look for) per case."""
    k = "cli-" + os.urandom(8).hex()
    if name == "missing-key-file":
        return ["--key-file", str(tmp_path / "nope")], {}, None, k
    if name == "key-file-mode-644":
        return ["--key-file", str(write_key_file(tmp_path / "k", k, 0o644))], {}, None, k
    if name == "key-file-mode-640":
        return ["--key-file", str(write_key_file(tmp_path / "k", k, 0o640))], {}, None, k
    if name == "empty-key-file":
        p = tmp_path / "k"
        p.write_bytes(b"")
        p.chmod(0o600)
        return ["--key-file", str(p)], {}, None, k
    if name in ("key-with-cr", "key-with-lf", "key-with-nul"):
        sep = {"key-with-cr": b"\r", "key-with-lf": b"\n", "key-with-nul": b"\0"}[name]
        p = tmp_path / "k"
        p.write_bytes(k[:8].encode() + sep + k[8:].encode())
        p.chmod(0o600)
        return ["--key-file", str(p)], {}, None, k[8:]
    if name == "key-over-4k":
        big = k + "a" * 5000
        return ["--key-file", str(write_key_file(tmp_path / "k", big))], {}, None, big
    if name in ("key-fd-0", "key-fd-2"):
        return ["--key-fd", name[-1]], {}, k + "\n", k
    if name == "key-env-unset":
        return ["--key-env", "CB_UNSET_VARIABLE"], {}, None, k
    if name == "two-key-sources":
        return ["--key-file", str(write_key_file(tmp_path / "k", k)), "--key-env", "CB_K"], \
            {"CB_K": k}, None, k
    if name == "no-key-source":
        return [], {}, None, k
    kf = ["--key-file", str(write_key_file(tmp_path / "k", k))]
    extra = {
        "bad-upstream-url": ["--upstream", "not a url"],
        "ftp-upstream-url": ["--upstream", "ftp://example.com/"],
        "unknown-option": ["--bogus-option"],
        "bad-duration": ["--response-timeout", "soon"],
        "bad-inject-mode": ["--inject", "cookie:x"],
        "bad-allow-rule": ["--allow", "GET"],
        "zero-max-conns": ["--max-conns", "0"],
    }[name]
    return kf + extra, {}, None, k


CLI_CASES = ["missing-key-file", "key-file-mode-644", "key-file-mode-640", "empty-key-file",
             "key-with-cr", "key-with-lf", "key-with-nul", "key-over-4k", "key-fd-0", "key-fd-2",
             "key-env-unset", "two-key-sources", "no-key-source", "bad-upstream-url",
             "ftp-upstream-url", "unknown-option", "bad-duration", "bad-inject-mode",
             "bad-allow-rule", "zero-max-conns"]


@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_error_exits_2_with_one_clear_line_and_no_key(credbroker, upstream, certs,
                                                          tmp_path, case):
    args, env, stdin, key = cli_case(tmp_path, case)
    upstream_args = [] if case in ("bad-upstream-url", "ftp-upstream-url") else \
        ["--upstream", upstream.url]
    argv = [str(credbroker), "exec"] + upstream_args + ["--cacert", str(certs.ca)] + args + \
        ["--", PYTHON, "-c", "print('command ran')"]
    rc, out, err = run_process(argv, env=make_child_env(env), input=stdin)
    assert "command ran" not in out
    assert rc == 2, "exit %d\n%s" % (rc, err)
    line = one_line(err)
    assert len(line) < 300
    assert key not in err and key not in out


@pytest.mark.parametrize("argv_tail", [[], ["--"]], ids=["no-dashdash", "nothing-after-dashdash"])
def test_cli_without_a_command_exits_2(credbroker, key_file, argv_tail):
    rc, out, err = run_process([str(credbroker), "exec", "--key-file", str(key_file[0])] + argv_tail)
    assert rc == 2
    assert "command" in one_line(err)


def test_cli_command_not_found_exits_127(run_exec, exec_argv):
    rc, out, err = run_process(exec_argv(child=["/nonexistent/command-xyz"]), env=make_child_env())
    assert rc == 127
    assert "/nonexistent/command-xyz" in err


@pytest.mark.parametrize("what,reason", [("directory", "Permission denied"),
                                         ("no-format", "Exec format error")])
def test_cli_command_whose_exec_fails_exits_126_with_the_reason(exec_argv, tmp_path, what,
                                                                reason):
    """A path that is there but cannot run: its exec fails in the child, after the fork, and
    the errno comes back through the error pipe when the child is reaped (child_spawn does
    not wait for the exec)."""
    if what == "directory":
        path = tmp_path
    else:
        path = tmp_path / "not-a-program"
        path.write_bytes(b"\x00\x01 neither ELF nor #!\n")
        path.chmod(0o755)
    rc, out, err = run_process(exec_argv(child=[str(path)]), env=make_child_env())
    assert rc == 126, err
    line = one_line(err)
    assert str(path) in line and reason in line


@pytest.mark.parametrize("step,message", [
    ("broker", "cannot set up the broker: Too many open files"),
    ("setup", "cannot set up the command: No such file or directory")])
def test_cli_broker_or_fd_set_up_that_fails_exits_125_and_never_runs_the_command(
        exec_argv, tmp_path, step, message):
    """Nothing a test can arrange from outside fails these steps once the fd headroom is
    checked, so a test-only switch fails each; the command must never run."""
    marker = tmp_path / "ran"
    rc, out, err = run_process(exec_argv(child=["sh", "-c", "touch %s" % marker]),
                               env=make_child_env({"CREDBROKER_TEST_FAIL_AT": step}))
    assert rc == 125, (rc, err)
    assert message in err
    assert not marker.exists()


@pytest.mark.parametrize("limit", [4, 6, 8, 12, 16])
def test_too_few_file_descriptors_is_a_clear_125_not_a_crash(credbroker, upstream, certs,
                                                             key_file, tmp_path, limit):
    """libuv aborts the process when it cannot make its loop's pipes, and its default loop
    is NULL when it fails otherwise: both crashed credbroker under a low ulimit -n."""
    if shutil.which("prlimit") is None:
        pytest.skip("prlimit (util-linux) is missing")
    path, key = key_file
    marker = tmp_path / "ran"
    argv = ["prlimit", "--nofile=%d:%d" % (limit, limit), str(credbroker), "exec",
            "--upstream", upstream.url, "--cacert", str(certs.ca), "--key-file", str(path),
            "--", "sh", "-c", "touch %s" % marker]
    rc, out, err = run_process(argv, env=make_child_env())
    assert rc == 125, (rc, err)
    assert "too few file descriptors allowed (ulimit -n)" in err
    assert not marker.exists() and key not in err
    # With the hard limit higher, the soft one is raised as far as needed, and it runs.
    argv[1] = "--nofile=%d:1024" % limit
    rc, out, err = run_process(argv, env=make_child_env())
    assert rc == 0 and marker.exists(), err


# -- logs ---------------------------------------------------------------------------

AUDITED = (
    "import brokered\n"
    "assert brokered.request('GET', '/echo?x=1&app_key=sentinel')[0] == 200\n"
    "assert brokered.request('POST', '/upload', body=b'0123456789')[0] == 200\n"
    "assert brokered.request('GET', '/nope')[0] == 404\n"
    "c = brokered.connection()\n"
    "c.request('GET', '/status/204')\n"
    "assert c.getresponse().status == 204\n"
    "c.close()\n")

AUDIT_FIELDS = {"time", "invocation", "connection", "method", "path", "status", "bytes_in",
                "bytes_out", "upstream_ms", "total_ms", "outcome"}


def test_audit_log_has_one_line_per_request_without_the_key(run_exec, tmp_path, key_file):
    _, key = key_file
    audit = tmp_path / "audit.jsonl"
    rc, out, err = run_exec(["--audit", audit], AUDITED)
    assert rc == 0, err
    text = audit.read_text()
    assert key not in text
    lines = [json.loads(l) for l in text.splitlines() if l.strip()]
    assert len(lines) == 4, text
    for rec in lines:
        assert AUDIT_FIELDS <= set(rec), rec
        assert rec["outcome"] == "ok"
        assert isinstance(rec["upstream_ms"], (int, float)) and rec["total_ms"] >= 0
    assert len({rec["invocation"] for rec in lines}) == 1
    assert len({rec["connection"] for rec in lines}) == 4
    echo, upload, nope, empty = lines
    assert (echo["method"], echo["status"]) == ("GET", 200)
    assert echo["path"].startswith("/echo?x=1")
    assert "app_key=[broker]" in echo["path"] and "sentinel" not in echo["path"]
    assert (upload["method"], upload["status"], upload["bytes_in"], upload["bytes_out"]) == \
        ("POST", 200, 10, 10)
    assert nope["status"] == 404 and empty["status"] == 204


KEPT_ALIVE = r"""
import brokered
s = brokered.dial()

def answer():
    data = b''
    while b'\r\n\r\n' not in data:
        data += s.recv(65536)
    head, _, body = data.partition(b'\r\n\r\n')
    lengths = [int(l.split(b':')[1]) for l in head.split(b'\r\n')
               if l.lower().startswith(b'content-length:')]
    while len(body) < (lengths[0] if lengths else 0):
        body += s.recv(65536)
    return head.split(b' ')[1].decode()

for target in (b'/echo?first=1&app_key=sentinel', b'/status/204', b'/echo?third=3',
               b'/echo?bad=\x01'):
    s.sendall(b'GET ' + target + b' HTTP/1.1\r\nHost: x\r\n\r\n')
    print(answer())
"""


def test_audit_names_each_request_on_a_kept_alive_connection(run_exec, tmp_path, key_file):
    """The audit's path is each request's own, also the third on one connection, and a
    request that cannot be parsed after good ones shows no path, not the previous one's
    (the path is made from the request's target only when shown)."""
    _, key = key_file
    audit = tmp_path / "audit.jsonl"
    rc, out, err = run_exec(["--audit", audit], KEPT_ALIVE)
    assert rc == 0, err
    assert out.split() == ["200", "204", "200", "400"], out
    lines = [json.loads(l) for l in audit.read_text().splitlines() if l.strip()]
    assert len({rec["connection"] for rec in lines}) == 1, lines
    paths = [rec["path"] for rec in lines]
    assert paths[0].startswith("/echo?first=1") and "app_key=[broker]" in paths[0], paths
    assert paths[1].startswith("/status/204") and "first" not in paths[1], paths
    assert paths[2].startswith("/echo?third=3"), paths
    assert [rec["status"] for rec in lines] == [200, 204, 200, 400], lines
    assert paths[3] == "", paths
    assert key not in audit.read_text()


HALF_HEAD_THEN_NEXT = r"""
import socket
import brokered
s = brokered.dial()
s.sendall(b'GET /echo?left=1 HTTP/1.1\r\nHost: x\r\n')  # half a head, then gone
s.shutdown(socket.SHUT_WR)
assert s.recv(1) == b''  # the broker has closed it: it is a spare before the next dial
s.close()
for _ in range(3):
    c = brokered.connection()
    c.request('GET', '/echo?next=1')
    r = c.getresponse()
    r.read()
    print(r.status)
    c.close()
"""


def test_a_connection_the_child_left_mid_head_leaves_nothing_for_the_next(run_exec, key_file):
    """A closed connection is kept for the invocation's next dial (conn.c): what the child
    left unread in it (half a head) must not become the start of the next child's
    request. Three connections in turn, each answered 200."""
    rc, out, err = run_exec([], HALF_HEAD_THEN_NEXT)
    assert rc == 0, err
    assert out.split() == ["200", "200", "200"], (out, err)


def test_verbose_log_never_contains_the_key(run_exec, key_file):
    _, key = key_file
    rc, out, err = run_exec(["-v"], AUDITED + "brokered.request('GET', '/echo-query?y=2')\n")
    assert rc == 0, err
    assert "[broker]" in err or "debug" in err  # it did log
    assert key not in err and key not in out


# -- builds ---------------------------------------------------------------------------

def test_version_reports_broker_support(credbroker):
    rc, out, err = run_process([str(credbroker), "version", "--json"])
    assert rc == 0, err
    assert json.loads(out)["broker_supported"] is True
    assert json.loads(out)["routes"] is True


@pytest.fixture
def nobroker():
    path = os.environ.get("CREDBROKER_NOBROKER_BUILD")
    if not path:
        pytest.skip("CREDBROKER_NOBROKER_BUILD is not set (scripts/test builds build-nobroker "
                    "with -Dbroker=disabled and sets it)")
    binary = Path(path) / "credbroker"
    if not os.access(binary, os.X_OK):
        pytest.skip("%s not found" % binary)
    return binary


def test_disabled_build_reports_no_broker_support(nobroker):
    rc, out, err = run_process([str(nobroker), "version", "--json"])
    assert rc == 0, err
    assert json.loads(out)["broker_supported"] is False
    assert json.loads(out)["routes"] is False


def test_disabled_build_refuses_exec_without_legacy(nobroker, upstream, certs, key_file):
    path, key = key_file
    argv = [str(nobroker), "exec", "--upstream", upstream.url, "--cacert", str(certs.ca),
            "--key-file", str(path), "--", PYTHON, "-c", "print('command ran')"]
    rc, out, err = run_process(argv, env=make_child_env())
    assert rc == 125, err
    assert "command ran" not in out
    line = one_line(err)
    assert "--legacy" in line or "not supported" in line
    assert key not in err


def test_disabled_build_runs_the_legacy_path(nobroker, upstream, certs, key_file):
    path, key = key_file
    argv = [str(nobroker), "exec", "--legacy", "--upstream", upstream.url, "--cacert",
            str(certs.ca), "--key-file", str(path), "--", PYTHON, "-c",
            "import json, os; print(json.dumps(dict(os.environ)))"]
    rc, out, err = run_process(argv, env=make_child_env())
    assert rc == 0, err
    env = json.loads(out)
    assert env["FLASHDUTY_APP_KEY"] == key
    assert env["FLASHDUTY_BASE_URL"].rstrip("/") == upstream.url
