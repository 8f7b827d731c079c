"""Layer 50: `credbroker exec` as a whole — exit status, signals, the end of
an invocation (DESIGN.md section 1, last paragraph), interactive use on a pty.
"""

import fcntl
import json
import os
import re
import select
import shutil
import signal
import subprocess
import termios
import time
import urllib.parse
from pathlib import Path

import pytest

import brokered
from children import rawhttp
from conftest import PYTHON, make_child_env, run_process, wait_for

CHILDREN = Path(__file__).resolve().parent / "children"


# -- exit status --------------------------------------------------------------------

@pytest.mark.parametrize("code,expected", [
    ("import sys; sys.exit(0)", 0),
    ("import sys; sys.exit(7)", 7),
    ("import os; os.kill(os.getpid(), 9)", 128 + 9),
    ("import os, signal; signal.signal(signal.SIGTERM, signal.SIG_DFL); "
     "os.kill(os.getpid(), signal.SIGTERM)", 128 + 15),
], ids=["exit-0", "exit-7", "sigkill", "sigterm"])
def test_exit_status_is_the_commands(run_exec, code, expected):
    rc, out, err = run_exec([], code)
    assert rc == expected, err


def test_command_runs_in_its_own_process_group(held):
    h = held()
    info = h.info
    assert info["pgid"] == info["pid"]
    assert info["ppid"] == h.proc.pid
    assert os.getpgid(h.proc.pid) != info["pgid"]


SIGNAL_CHILD = r"""
import json, os, signal, subprocess, sys
d, sig = sys.argv[1], int(sys.argv[2])
grandchild = subprocess.Popen([sys.executable, "-c", '''
import os, signal, sys
def term(signum, frame):
    open(sys.argv[1] + "/grandchild.term", "w").close()
    os._exit(0)
signal.signal(int(sys.argv[2]), term)
print("ready", flush=True)
while True:
    signal.pause()
''', d, str(sig)], stdout=subprocess.PIPE)
def term(signum, frame):
    open(d + "/command.term", "w").close()
    grandchild.wait(10)
    os._exit(3)
signal.signal(sig, term)
assert grandchild.stdout.readline() == b"ready\n"
with open(d + "/ready.tmp", "w") as f:
    json.dump({"pid": os.getpid(), "pgid": os.getpgid(0), "grandchild": grandchild.pid}, f)
os.replace(d + "/ready.tmp", d + "/ready")
while True:
    signal.pause()
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT],
                         ids=lambda s: s.name)
def test_signal_to_credbroker_reaches_the_commands_process_group(exec_argv, tmp_path, sig):
    argv = exec_argv([], child=[PYTHON, "-c", SIGNAL_CHILD, tmp_path, int(sig)])
    proc = subprocess.Popen(argv, env=make_child_env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    info = {}
    try:
        ready = tmp_path / "ready"
        wait_for(lambda: ready.exists() or proc.poll() is not None, timeout=15,
                 what="the command to start")
        assert ready.exists(), proc.stderr.read().decode(errors="replace")
        info = json.loads(ready.read_text())
        assert info["pgid"] != os.getpgid(proc.pid)
        proc.send_signal(sig)  # to credbroker alone
        rc = proc.wait(timeout=10)
        assert (tmp_path / "command.term").exists(), "the command never got %s" % sig.name
        assert (tmp_path / "grandchild.term").exists(), \
            "the command's group never got %s" % sig.name
        assert rc == 3, "credbroker exited %d; the command exited 3" % rc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if info.get("pgid"):
            try:
                os.killpg(info["pgid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.stderr.close()


# -- the end of an invocation ---------------------------------------------------------------

HOLDER_COMMAND = r"""
import os, subprocess, sys
holder = subprocess.Popen([sys.executable, sys.argv[1], sys.argv[2], str(os.getpid())],
                          pass_fds=[3], start_new_session=True, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=open(sys.argv[2] + ".stderr", "w"))
line = holder.stdout.readline()
print("holder:", line.decode().strip())
"""


def test_background_holder_of_fd_3_gets_eof_after_the_command_exits(exec_argv, upstream,
                                                                     tmp_path, key_file):
    report_file = tmp_path / "holder.json"
    upstream.clear_log()
    argv = exec_argv([], child=[PYTHON, "-c", HOLDER_COMMAND, CHILDREN / "fd3_holder.py",
                                report_file])
    rc, out, err = run_process(argv, env=make_child_env(), timeout=20)
    assert rc == 0, err
    assert out.strip() == "holder: ready", (out, Path(str(report_file) + ".stderr").read_text())
    # No bound on the time: a credbroker that waited for the holder would wait forever (the
    # holder reports only once the invocation is over), into run_process's timeout.

    def report():
        if report_file.exists():
            return json.loads(report_file.read_text())
        return None

    result = wait_for(report, timeout=15, what="the holder's report")
    assert result["before"] == 200  # it had authority while the command ran
    assert result["command_gone"]
    assert result["kept_connection"] == "eof", result
    assert result["dials"] and result["dials"][-1] == "closed", result
    reqs = upstream.requests()
    assert [urllib.parse.parse_qs(r["query"])["app_key"] for r in reqs] == [[key_file[1]]]


def test_command_exit_closes_connections_and_cancels_upstream_requests(held, upstream):
    h = held()
    upstream.clear_log()
    c = rawhttp.RawConn(h.dial())
    size = 5_000_000
    c.send(rawhttp.request("GET", "/slow-body?size=%d&delay_ms=20&piece=1000" % size))
    _, status, _, _ = c.head()
    assert status == 200
    idle = rawhttp.RawConn(h.dial())
    rc, err = h.finish()
    assert rc == 0, err
    got = len(c.buf)
    c.sock.settimeout(5)
    while True:
        data = c.sock.recv(65536)
        if not data:
            break
        got += len(data)
    assert got < size
    assert idle.closed(timeout=5)
    gone = wait_for(lambda: [e for e in upstream.events() if e["event"] == "client_gone"],
                    timeout=5, what="the upstream transfer to be cancelled")
    assert gone[0]["path"] == "/slow-body"
    with pytest.raises(brokered.BrokerClosed):
        h.exchange(b"\x01", timeout=5)


# -- interactive use ---------------------------------------------------------------------

class Pty:
    def __init__(self, master):
        self.master = master
        self.out = b""

    def write(self, data):
        os.write(self.master, data.encode() if isinstance(data, str) else data)

    def expect(self, pattern, timeout=10):
        """Reads until pattern (a regex on bytes) appears after what was matched
        last; returns the match."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = regex.search(self.out)
            if m:
                self.out = self.out[m.end():]
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r on the terminal within %s s; got:\n%r"
                                     % (pattern, timeout, self.out[-2000:]))
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    data = os.read(self.master, 65536)
                except OSError:  # EIO: the other side is gone
                    data = b""
                if not data:
                    raise AssertionError("the terminal closed while waiting for %r; got:\n%r"
                                         % (pattern, self.out[-2000:]))
                self.out += data


def processes_in_session(sid):
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                cmdline = f.read().split(b"\0")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[3]) == sid:  # field 6 of stat: session
            found.append((int(entry), [a.decode(errors="replace") for a in cmdline if a]))
    return found


def test_interactive_shell_on_a_pty_gets_brokered_calls_and_job_control(exec_argv, upstream,
                                                                        key_file):
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash not found")
    try:
        master, slave = os.openpty()
    except OSError as e:
        pytest.skip("cannot open a pty: %s" % e)

    def controlling_tty():
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    env = make_child_env({"PS1": "cb-prompt$ ", "TERM": "dumb", "HISTFILE": "/dev/null",
                          "INPUTRC": "/dev/null"})
    argv = exec_argv([], child=[bash, "--norc", "--noprofile", "-i"])
    upstream.clear_log()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                            start_new_session=True, preexec_fn=controlling_tty)
    os.close(slave)
    tty = Pty(master)
    try:
        tty.expect(rb"cb-prompt\$ ")
        tty.write("%s -c \"import brokered; s, h, b = brokered.request('GET', "
                  "'/echo?who=tty&app_key=sentinel'); print('ANS' + 'WER', s)\"\r" % PYTHON)
        tty.expect(rb"ANSWER 200")
        tty.expect(rb"cb-prompt\$ ")
        [rec] = upstream.wait_requests(1)
        assert urllib.parse.parse_qs(rec["query"]) == {"who": ["tty"], "app_key": [key_file[1]]}

        tty.write("sleep 30\r")
        sleeping = wait_for(lambda: [p for p, cmd in processes_in_session(proc.pid)
                                     if cmd == ["sleep", "30"]],
                            timeout=10, what="sleep 30 to start")
        start = time.monotonic()
        tty.write(b"\x03")
        tty.expect(rb"cb-prompt\$ ", timeout=10)
        tty.write("echo MARK$((6*7))\r")
        tty.expect(rb"MARK42")
        assert time.monotonic() - start < 25  # before the sleep would have ended by itself
        assert not os.path.exists("/proc/%d" % sleeping[0]) or \
            sleeping[0] not in [p for p, _ in processes_in_session(proc.pid)]
        assert proc.poll() is None, "credbroker exited on Ctrl-C"

        tty.write("exit\r")
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            for pid, _ in processes_in_session(proc.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.wait()
        os.close(master)
