#!/usr/bin/python3
"""A command that lends its control channel to the test process.

Most e2e tests talk to the broker from pytest itself rather than from a
child script: the command started by `credbroker exec` is this file, which
hands its fd 3 (the control socket) to the test over a unix socket and then
keeps the invocation alive until its stdin reaches EOF.

Child side (what credbroker runs):

    /usr/bin/python3 held.py ADDRESS [EXIT_STATUS]

connects to the abstract unix socket ADDRESS, sends one JSON message
{"pid", "ppid", "pgid", "env"} with fd 3 attached (SCM_RIGHTS), waits for EOF
on stdin, and exits with EXIT_STATUS (default 0).

Test side: Held(make_argv, env, workdir) starts credbroker with this command and
receives the fd; .dial() / .exchange() use it like a child would, .finish()
ends the invocation and returns (returncode, stderr).
"""

import array
import json
import os
import secrets
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
E2E = os.path.dirname(HERE)
if E2E not in sys.path:
    sys.path.insert(0, E2E)

import brokered  # noqa: E402  (tests/e2e/brokered.py)

SCRIPT = os.path.abspath(__file__)
PYTHON = "/usr/bin/python3"


def child_main(argv):
    address = "\0" + argv[1]
    status = int(argv[2]) if len(argv) > 2 else 0
    info = {"pid": os.getpid(), "ppid": os.getppid(), "pgid": os.getpgid(0),
            "env": dict(os.environ)}
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(address)
        s.sendmsg([json.dumps(info).encode()],
                  [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [3]))])
    while os.read(0, 4096):
        pass
    return status


class Held:
    """credbroker exec running held.py; .ctl_fd is a dup of the command's fd 3."""

    def __init__(self, make_argv, env, workdir, exit_status=0, timeout=15.0):
        """make_argv(child_argv) -> the full credbroker argv (e.g. exec_argv)."""
        name = "credbroker-held-" + secrets.token_hex(8)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind("\0" + name)
        self.listener.listen(1)
        self.listener.settimeout(0.05)
        self.stdout_path = os.path.join(str(workdir), name + ".stdout")
        self.stderr_path = os.path.join(str(workdir), name + ".stderr")
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        argv = [str(a) for a in make_argv([PYTHON, SCRIPT, name, str(exit_status)])]
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=self._out,
                                     stderr=self._err, env=env, start_new_session=True)
        self.ctl_fd = None
        self.info = None
        self.returncode = None
        deadline = time.monotonic() + timeout
        conn = None
        while conn is None:
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise AssertionError("credbroker exec did not start the held command "
                                         "(exit %s):\n%s" % (self.proc.returncode, self.stderr()))
        with conn:
            conn.settimeout(timeout)
            msg, anc, _, _ = conn.recvmsg(1 << 20, socket.CMSG_SPACE(4 * 4))
        fds = array.array("i")
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
        assert len(fds) == 1, "held.py sent %d fds" % len(fds)
        self.ctl_fd = fds[0]
        self.info = json.loads(msg)
        self.listener.close()

    # -- talking to the broker -------------------------------------------------

    def dial(self, timeout=10.0):
        """A brokered stream socket (raises brokered.BrokerRefused on 0xFF)."""
        s = brokered.dial(self.ctl_fd, timeout)
        s.settimeout(timeout)
        return s

    def exchange(self, payload, fds=(), timeout=10.0):
        return brokered.exchange(payload, fds, self.ctl_fd, timeout)

    def raw_datagram(self, payload, fds=(), timeout=10.0):
        return brokered.raw_datagram(payload, fds, self.ctl_fd, timeout)

    def request(self, method, path, body=None, headers=None, timeout=30.0):
        return brokered.request(method, path, body, headers, self.ctl_fd, timeout)

    def connection(self, timeout=30.0):
        return brokered.connection(self.ctl_fd, timeout)

    # -- lifecycle -------------------------------------------------------------

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def stdout(self):
        with open(self.stdout_path, "rb") as f:
            return f.read().decode(errors="replace")

    def end_command(self):
        """Lets the held command exit (closes its stdin); does not wait."""
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()

    def finish(self, timeout=10.0):
        """Ends the command, waits for credbroker; returns (returncode, stderr)."""
        self.end_command()
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            raise AssertionError("credbroker exec did not exit within %.0f s after its "
                                 "command ended:\n%s" % (timeout, self.stderr()))
        return self.returncode, self.stderr()

    def _kill(self):
        try:
            os.killpg(self.proc.pid, 9)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def close(self):
        """Cleanup for fixtures: never raises, kills what is left."""
        if self.ctl_fd is not None:
            try:
                os.close(self.ctl_fd)
            except OSError:
                pass
            self.ctl_fd = None
        self.end_command()
        if self.proc.poll() is None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self._kill()
        # The command's process group outlives credbroker if it misbehaved.
        pgid = (self.info or {}).get("pgid")
        if pgid:
            try:
                os.killpg(pgid, 9)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.listener.close()
        except OSError:
            pass
        self._out.close()
        self._err.close()


if __name__ == "__main__":
    sys.exit(child_main(sys.argv))
