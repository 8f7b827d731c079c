"""Layer 95: adversarial — a command (and an upstream) that actively attack the broker.

The command under the broker is untrusted (an AI agent's command, possibly
steered by prompt injection); so is the upstream's behaviour. Each test is
one attack, written to DESIGN.md; each ends with the attack blocked and the
broker alive and serving the next normal request (`assert_serving`), except
where the attack is on the broker's entry (the broker then never starts) or on
the end of an invocation (the broker is then expected to be gone).

Layers 10-50 test the protocol's normal refusals; this file extends them
with floods, smuggling, slow peers, a hostile upstream
(tests/e2e/hostile_upstream.py) and same-uid attacks on the broker's process
(children/attack_proc.py). SECURITY.md maps each attack class to its test.
"""

import array
import json
import os
import secrets
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

import brokered
from children import rawhttp
from children.held import Held
from conftest import (PYTHON, PeerProcess, make_child_env, read_json_lines, run_process, wait_for,
                      write_key_file)
from hostile_upstream import BAD_STATUS, key_body

E2E = Path(__file__).resolve().parent
CHILDREN = E2E / "children"
NOBODY = 65534
SPECIAL_KEY_PREFIX = "k3y/with+special=chars&"  # needs percent-encoding in a query


# -- peers and helpers ----------------------------------------------------------------------------

class HostileUpstream(PeerProcess):
    """tests/e2e/hostile_upstream.py; see its docstring for modes and log format."""

    def __init__(self, certs, workdir):
        self.log_path = Path(workdir) / "hostile.log"
        self.log_path.touch()
        super().__init__([PYTHON, str(E2E / "hostile_upstream.py"), "--port", "0", "--cert",
                          str(certs.dir), "--log", str(self.log_path)], workdir, "hostile")

    def _lines(self):
        return read_json_lines(self.log_path)

    def requests(self):
        return [r for r in self._lines() if "event" not in r]

    def events(self, kind):
        return [r for r in self._lines() if r.get("event") == kind]

    def clear_log(self):
        self.log_path.write_bytes(b"")


@pytest.fixture(scope="module")
def hostile(certs, tmp_path_factory):
    server = HostileUpstream(certs, tmp_path_factory.mktemp("hostile"))
    yield server
    server.stop()


def broker_fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def broker_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def assert_serving(h, path="/status/200", key=None):
    """The broker is alive and answers a normal request (and never logged the key)."""
    assert h.proc.poll() is None, "the broker exited with %s:\n%s" % (h.proc.returncode,
                                                                     h.stderr()[-3000:])

    def answer():
        # Connections the test just closed count against --max-conns until the
        # broker has seen them go: a refusal right after a flood is retried.
        try:
            return h.request("GET", path, timeout=10)
        except brokered.BrokerRefused:
            return None

    status, _, body = wait_for(answer, timeout=5, interval=0.05, what="a normal request")
    assert status == 200, (status, body[:300])
    if key is not None:
        assert key not in h.stderr()


def assert_finishes_clean(h):
    """Ends the invocation: credbroker exits 0, which (with CREDBROKER_LEAK_CHECK=1 from
    make_child_env) also means no fd and no secret of the invocation was left behind."""
    rc, err = h.finish()
    assert rc == 0, "credbroker exited %d:\n%s" % (rc, err[-3000:])


def raw(h, timeout=10.0):
    return rawhttp.RawConn(h.dial(), timeout=timeout)


def send_in_background(sock, data, chunk=65536):
    """Sends data from a thread (the broker may stop reading, or close); returns
    (thread, result) where result["sent"] / result["error"] are filled in."""
    result = {"sent": 0, "error": None}

    def run():
        view = memoryview(data)
        try:
            while result["sent"] < len(data):
                n = sock.send(view[result["sent"]:result["sent"] + chunk])
                result["sent"] += n
        except OSError as e:
            result["error"] = type(e).__name__

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, result


def read_until_closed(sock, timeout=5.0):
    """Everything the peer sends until it closes; raises on timeout."""
    sock.settimeout(timeout)
    data = b""
    while True:
        try:
            piece = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not piece:
            return data
        data += piece


def answered_or_closed(socks):
    """Those of socks the broker has written to or closed (they have something to read):
    none, while it still waits for their requests."""
    poller = select.poll()
    for s in socks:
        poller.register(s, select.POLLIN)
    ready = {fd for fd, _ in poller.poll(0)}
    return [s for s in socks if s.fileno() in ready]


def error_body_ok(resp, key):
    body = resp.json()
    assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"], body
    assert key.encode() not in resp.body


def marker_request(h, upstream, what="/status/200"):
    """A marked request; returns every other upstream record logged by the time
    the marker arrives: what reached the upstream since the log was cleared."""
    marker = secrets.token_hex(6)
    status, _, _ = h.request("GET", "%s?marker=%s" % (what, marker), timeout=10)
    assert status == 200

    def logged():
        reqs = upstream.requests()
        if any(marker in r["query"] for r in reqs):
            return [r for r in reqs if marker not in r["query"]] or [None]
        return None

    return [r for r in wait_for(logged, what="the marker request upstream") if r is not None]


# -- a shared broker for the request-level attacks  -----------------------------------------------

SHARED_POLICY = ["--allow", "POST /upload", "--allow", "GET /status/*", "--allow", "GET /echo"]


@pytest.fixture(scope="module")
def shared_key(tmp_path_factory):
    key = secrets.token_hex(16)
    return write_key_file(tmp_path_factory.mktemp("shared-key") / "key", key), key


@pytest.fixture(scope="module")
def shared(credbroker, upstream, certs, shared_key, tmp_path_factory):
    """One `credbroker exec` (held.py) that every smuggling and authority case
    attacks in turn: it must survive them all. Policy: POST /upload, GET
    /status/*, GET /echo — so a smuggled GET /admin would also be a policy bypass."""
    workdir = tmp_path_factory.mktemp("shared")

    def argv(child):
        return [str(credbroker), "exec", "--upstream", upstream.url, "--cacert", str(certs.ca),
                "--key-file", str(shared_key[0])] + SHARED_POLICY + ["--"] + child

    h = Held(argv, make_child_env(), workdir)
    yield h
    h.close()


@pytest.fixture(scope="module")
def unrestricted(credbroker, upstream, certs, shared_key, tmp_path_factory):
    """Like `shared`, without a policy: every request the broker accepts goes upstream."""
    workdir = tmp_path_factory.mktemp("unrestricted")

    def argv(child):
        return [str(credbroker), "exec", "--upstream", upstream.url, "--cacert", str(certs.ca),
                "--key-file", str(shared_key[0]), "--"] + child

    h = Held(argv, make_child_env(), workdir)
    yield h
    h.close()


# == 1. the key, from the command's side of the process boundary ==================================

def nobody_workdir(certs):
    """A new directory (mode 755) with a copy of the test CA that user nobody can read."""
    d = tempfile.mkdtemp(prefix="credbroker-adv-")
    os.chmod(d, 0o755)
    ca = Path(shutil.copy(certs.ca, d))
    os.chmod(ca, 0o644)
    return d, ca


@pytest.mark.parametrize("source", ["key-env", "key-fd"])
def test_unprivileged_command_cannot_read_ptrace_or_steal_fds_of_its_broker(credbroker, upstream,
                                                                           certs, source):
    # Root passes every one of these checks (CAP_SYS_PTRACE), so the broker and
    # its command run as nobody: the same-uid case, which is the threat model.
    # The key comes by fd or environment: a key file would have to be nobody's.
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv not found")
    key = "adv-" + secrets.token_hex(16)
    workdir, ca = nobody_workdir(certs)
    broker = [str(credbroker), "exec", "--upstream", upstream.url, "--cacert", str(ca)]
    child = [PYTHON, str(CHILDREN / "attack_proc.py")]
    drop = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups"]
    env = make_child_env()
    r = None
    try:
        if source == "key-env":
            env["CB_ADV_KEY"] = key
            argv = drop + broker + ["--key-env", "CB_ADV_KEY", "--"] + child
            pass_fds = ()
        else:
            r, w = os.pipe()
            os.write(w, key.encode() + b"\n")
            os.close(w)
            argv = ["/bin/bash", "-c", 'exec "$@" 5<&%d %d<&-' % (r, r), "bash"] + drop + \
                broker + ["--key-fd", "5", "--"] + child
            pass_fds = (r,)
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30,
                              cwd=workdir, pass_fds=pass_fds)
    finally:
        if r is not None:
            os.close(r)
        shutil.rmtree(workdir, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["same_uid"], out
    files = out["files"]
    for name in ("environ", "mem", "maps", "auxv", "stack", "syscall", "fd",
                 "task/%d/mem" % out["ppid"], "task/%d/environ" % out["ppid"]):
        assert files[name].get("errno") in ("EACCES", "EPERM"), (name, files[name])
    opened = {n: v for n, v in files.items() if n.startswith("fd/") and "errno" not in v}
    assert not opened, opened
    assert "ok" in files["cmdline"]  # world-readable by design; it names no key
    assert out["ptrace"] == {"PTRACE_ATTACH": "EPERM", "PTRACE_SEIZE": "EPERM"}, out["ptrace"]
    assert out["vm_readv"] == "EPERM", out["vm_readv"]
    if out["pidfd_getfd"]["open"] != "ENOSYS":
        assert out["pidfd_getfd"]["fds"] == {"EPERM": 64}, out["pidfd_getfd"]
    assert out["call"] == 200  # the broker survived and still serves its command
    assert key not in proc.stdout and key not in proc.stderr


@pytest.fixture
def held_key_env(exec_argv, tmp_path):
    """held_key_env(key, args=()) -> Held: the key enters by --key-env CB_ADV_KEY."""
    started = []

    def start(key, args=()):
        h = Held(lambda child: exec_argv(["--key-env", "CB_ADV_KEY"] + list(args), child=child,
                                         key_path=""),
                 make_child_env({"CB_ADV_KEY": key}), tmp_path)
        started.append(h)
        return h

    yield start
    for h in started:
        h.close()


def readable_memory(pid):
    """Yields the bytes of every region of pid that /proc/pid/mem lets root read."""
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            name = fields[5] if len(fields) > 5 else ""
            if "r" not in fields[1] or hi - lo > 256 << 20 or name in ("[vvar]", "[vsyscall]"):
                continue
            try:
                mem.seek(lo)
                yield name, mem.read(hi - lo)
            except OSError:  # memfd_secret pages and the like
                continue


def key_locations(pid, key):
    forms = {key.encode(), urllib.parse.quote(key, safe="").encode()}
    return sorted({name or "anon" for name, data in readable_memory(pid)
                   for form in forms if form in data})


def test_key_env_value_is_wiped_from_the_brokers_environ_block_even_for_root(held_key_env,
                                                                           upstream):
    key = "adv-" + secrets.token_hex(16)
    h = held_key_env(key)
    pid = h.proc.pid
    with open("/proc/%d/environ" % pid, "rb") as f:  # root: non-dumpable does not stop us
        environ = f.read()
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        cmdline = f.read()
    assert key.encode() not in environ
    assert key.encode() not in cmdline
    assert "CB_ADV_KEY" not in h.info["env"]
    assert key not in json.dumps(h.info["env"])
    assert_serving(h, key=key)


def test_at_rest_the_key_is_in_no_memory_root_can_read_of_broker_or_command(credbroker, held,
                                                                           key_file):
    # Before any request, the key lives only in the secret arena. With
    # memfd_secret that is outside what even root can read through /proc/pid/mem;
    # with the mlock fallback root could read it, so the test needs memfd_secret.
    rc, out, _ = run_process([str(credbroker), "version", "--json"])
    if json.loads(out).get("secret_arena") != "memfd_secret":
        pytest.skip("the secret arena is not memfd_secret here")
    _, key = key_file
    h = held()
    assert key_locations(h.proc.pid, key) == [], "the key is in the broker's readable memory"
    assert key_locations(h.info["pid"], key) == [], "the key is in the command's memory"
    assert_serving(h, key=key)


READ_KEY_FILE_FROM_CMDLINE = (
    "import os, json, brokered\n"
    "args = open('/proc/%d/cmdline' % os.getppid(), 'rb').read().split(b'\\0')\n"
    "path = args[args.index(b'--key-file') + 1]\n"
    "try:\n"
    "    got = open(path, 'rb').read().decode().strip()\n"
    "except OSError as e:\n"
    "    got = 'error: ' + type(e).__name__\n"
    "status = brokered.request('GET', '/status/200')[0]\n"
    "print(json.dumps({'path': path.decode(), 'got': got, 'status': status}))\n")


def test_without_isolation_a_same_uid_command_reads_the_key_file_named_on_the_cmdline(
        credbroker, upstream, certs):
    # DESIGN.md 4b: per-command namespaces cover key files with an empty file.
    # Until then (`version --json` says "isolation": "none") this is the open
    # door SECURITY.md names; the test pins both sides of it.
    rc, out, _ = run_process([str(credbroker), "version", "--json"])
    isolation = json.loads(out).get("isolation")
    key = "file-" + secrets.token_hex(16)
    workdir, ca = nobody_workdir(certs)
    try:
        kf = write_key_file(Path(workdir) / "key", key)
        os.chown(kf, NOBODY, NOBODY)
        argv = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups",
                str(credbroker), "exec", "--upstream", upstream.url, "--cacert", str(ca),
                "--key-file", str(kf), "--", PYTHON, "-c", READ_KEY_FILE_FROM_CMDLINE]
        proc = subprocess.run(argv, env=make_child_env(), capture_output=True, text=True,
                              timeout=30, cwd=workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    got = out["got"]
    assert out["status"] == 200
    if isolation == "none":
        assert got == key, "expected the documented gap; got %r" % got
    else:
        assert key not in got, "isolation %r did not cover the key file" % isolation


# == 2. the control channel =======================================================================

def test_every_datagram_length_0_to_64_and_65536_except_1_is_refused(held):
    h = held()
    for n in list(range(0, 65)) + [65536]:
        if n == 1:
            continue
        for fill in (b"\x01", b"\x00"):
            msg, fds = h.exchange(fill * n)
            for fd in fds:
                os.close(fd)
            assert (msg, len(fds)) == (b"\xff", 0), "length %d of %r" % (n, fill)
    assert_serving(h)


def test_every_single_byte_datagram_but_0x01_is_refused(held):
    h = held(["--dial-rate", "100000"])
    for value in range(256):
        msg, fds = h.exchange(bytes([value]))
        for fd in fds:
            os.close(fd)
        if value == 0x01:
            assert (msg, len(fds)) == (b"\x01", 1)
        else:
            assert (msg, len(fds)) == (b"\xff", 0), "byte 0x%02x" % value
    assert_serving(h)


@pytest.mark.parametrize("payload", [b"\x01", b"\x02", b"", b"\x01" * 64],
                         ids=["dial", "bad-byte", "empty", "64-bytes"])
def test_253_attached_fds_are_all_closed_by_the_broker(held, payload):
    # 253 is the kernel's SCM_MAX_FD: more than the broker's receive buffer has
    # room for, so most arrive truncated (MSG_CTRUNC), and the kernel drops them.
    h = held()
    pid = h.proc.pid
    before = broker_fd_count(pid)
    pipes = [os.pipe() for _ in range(253)]
    try:
        msg, fds = h.exchange(payload, fds=[w for _, w in pipes])
        for fd in fds:
            os.close(fd)
        for _, w in pipes:
            os.close(w)
        assert (msg, len(fds)) == (b"\xff", 0)
        # Every write end is closed now on our side; EOF on a read end means the
        # broker closed its copy too.
        for r, _ in pipes:
            os.set_blocking(r, False)

        def all_eof():
            for r, _ in pipes:
                try:
                    if os.read(r, 1) != b"":
                        return False
                except BlockingIOError:
                    return False
            return True

        wait_for(all_eof, timeout=5, what="EOF on all 253 pipes")
    finally:
        for r, _ in pipes:
            os.close(r)
    assert broker_fd_count(pid) <= before
    assert_serving(h)
    assert_finishes_clean(h)


def test_passing_the_channel_or_a_connection_back_to_the_broker_is_refused_and_harmless(held):
    h = held()
    pid = h.proc.pid
    assert_serving(h)  # the upstream connection pool holds its fd from here on
    before = broker_fd_count(pid)
    conn = h.dial()
    ctl_copy = os.dup(h.ctl_fd)
    try:
        for fd in (ctl_copy, conn.fileno()):
            msg, fds = h.exchange(b"\x01", fds=[fd])
            for f in fds:
                os.close(f)
            assert (msg, len(fds)) == (b"\xff", 0)
        c = rawhttp.RawConn(conn)
        c.send(rawhttp.request("GET", "/status/200"))
        assert c.response().status == 200  # our copy of the connection still works
    finally:
        os.close(ctl_copy)
        conn.close()
    wait_for(lambda: broker_fd_count(pid) <= before, what="the broker's fd count to settle")
    assert_serving(h)
    assert_finishes_clean(h)


def test_10000_dials_never_closed_get_64_connections_and_0xff_for_the_rest(held):
    # Beyond 64, 1,024 dials wait (--dial-wait, 1 s here) and the rest are refused at once.
    h = held(["--dial-rate", "1000000", "--dial-wait", "1s"])
    pid = h.proc.pid
    before = broker_fd_count(pid)
    ctl = socket.socket(fileno=os.dup(h.ctl_fd))
    total = 10000
    sender_error = []

    def send_all():
        try:
            for _ in range(total):
                ctl.send(b"\x01")
        except OSError as e:
            sender_error.append(e)

    t = threading.Thread(target=send_all, daemon=True)
    t.start()
    kept, replies, peak = [], {b"\x01": 0, b"\xff": 0}, before
    ctl.settimeout(10)
    try:
        for i in range(total):
            msg, anc, flags, _ = ctl.recvmsg(16, socket.CMSG_SPACE(8 * 4))
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    a = array.array("i")
                    a.frombytes(data[:len(data) - len(data) % 4])
                    kept.extend(a)
            replies[msg] = replies.get(msg, 0) + 1
            if i % 500 == 0:
                peak = max(peak, broker_fd_count(pid))
        t.join(10)
        assert not sender_error, sender_error
        assert replies == {b"\x01": 64, b"\xff": total - 64}, replies
        assert len(kept) == 64
        peak = max(peak, broker_fd_count(pid))
        assert peak <= before + 64 + 4, "the broker's fd count went from %d to %d" % (before, peak)
    finally:
        for fd in kept:
            os.close(fd)
        ctl.close()
    wait_for(lambda: broker_fd_count(pid) <= before + 1, what="the broker to release the 64")
    assert_serving(h)
    assert_finishes_clean(h)


def test_dial_flood_with_replies_unread_loses_no_reply_and_blocks_nothing(held):
    # The command sends dials and never reads: once its receive queue is full
    # the broker must park the reply (not block, not drop it) and keep serving
    # other connections. The dials past --max-conns wait (--dial-wait, shortened from its
    # 10 s) and are then refused: their replies too come while the queue is full.
    h = held(["--dial-rate", "1000000", "--dial-wait", "1s"])
    conn = raw(h)  # dialed before the flood
    ctl = socket.socket(fileno=os.dup(h.ctl_fd))
    sent = 0
    try:
        while sent < 100000:
            try:
                ctl.send(b"\x01", socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            sent += 1
        assert sent < 100000, "the control socket never filled up"
        conn.send(rawhttp.request("GET", "/status/200?during=flood"))
        assert conn.response().status == 200
        ctl.settimeout(10)
        replies, kept = 0, []
        while replies < sent:
            msg, anc, _, _ = ctl.recvmsg(16, socket.CMSG_SPACE(8 * 4))
            assert msg in (b"\x01", b"\xff"), msg
            for level, kind, data in anc:
                a = array.array("i")
                a.frombytes(data[:len(data) - len(data) % 4])
                kept.extend(a)
            replies += 1
        ctl.setblocking(False)
        with pytest.raises(BlockingIOError):  # exactly one reply per dial
            ctl.recv(16)
        assert len(kept) <= 63
        for fd in kept:
            os.close(fd)
    finally:
        ctl.close()
        conn.close()
    assert_serving(h)


# == 3. request smuggling and malformed heads =====================================================

H = b"Host: flashduty.broker.local\r\n"
SMUGGLED = b"GET /admin HTTP/1.1\r\nHost: x\r\n\r\n"

SMUGGLING = [
    ("cl-te-with-smuggled-get", b"POST /upload HTTP/1.1\r\n" + H +
     b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" % (5 + len(SMUGGLED)) +
     SMUGGLED, (400,)),
    ("te-cl-with-smuggled-get", b"POST /upload HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n" + SMUGGLED +
     b"\r\n0\r\n\r\n", (400,)),
    ("te-chunked-twice", b"POST /upload HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", (400,)),
    ("te-chunked-quoted", b"POST /upload HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n", (400,)),
    ("te-vertical-tab", b"POST /upload HTTP/1.1\r\n" + H +
     b"Transfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n", (400,)),
    ("te-obs-folded", b"POST /upload HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: gzip,\r\n chunked\r\n\r\n0\r\n\r\n", (400,)),
    ("te-hidden-behind-bare-lf", b"POST /upload HTTP/1.1\r\n" + H +
     b"Content-Length: 0\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", (400,)),
    ("http10-with-te", b"POST /upload HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
     SMUGGLED, (400,)),
    ("cl-list-differing", b"POST /upload HTTP/1.1\r\n" + H + b"Content-Length: 5, 6\r\n\r\nhello!",
     (400,)),
    ("cl-plus-sign", b"POST /upload HTTP/1.1\r\n" + H + b"Content-Length: +5\r\n\r\nhello", (400,)),
    ("cl-hex", b"POST /upload HTTP/1.1\r\n" + H + b"Content-Length: 0x5\r\n\r\nhello", (400,)),
    ("cl-inner-space", b"POST /upload HTTP/1.1\r\n" + H + b"Content-Length: 1 5\r\n\r\nhello",
     (400,)),
    ("cl-2-pow-64", b"POST /upload HTTP/1.1\r\n" + H +
     b"Content-Length: 18446744073709551616\r\n\r\nhello", (400, 413)),
    ("cl-30-digits", b"POST /upload HTTP/1.1\r\n" + H + b"Content-Length: " + b"9" * 30 +
     b"\r\n\r\nhello", (400, 413)),
    ("cl-one-tebibyte", b"POST /upload HTTP/1.1\r\n" + H +
     b"Content-Length: 1099511627776\r\n\r\nhello", (413,)),
    ("chunk-size-negative", b"POST /upload HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\n\r\n-1\r\nx\r\n0\r\n\r\n", (400,)),
    ("chunk-size-overflows-64-bits", b"POST /upload HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n", (400, 413)),
    ("chunk-size-huge", b"POST /upload HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\nhello\r\n0\r\n\r\n", (400, 413)),
    ("chunk-size-0x", b"POST /upload HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", (400,)),
    ("chunk-bare-lf", b"POST /upload HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n", (400,)),
    ("chunk-data-overrun", b"POST /upload HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n" + SMUGGLED, (400,)),
    ("nul-in-method", b"GE\x00T /status/200 HTTP/1.1\r\n" + H + b"\r\n", (400,)),
    ("nul-after-version", b"GET /status/200 HTTP/1.1\x00\r\n" + H + b"\r\n", (400,)),
    ("nul-in-header-name", b"GET /status/200 HTTP/1.1\r\n" + H + b"X-A\x00: 1\r\n\r\n", (400,)),
    ("empty-header-name", b"GET /status/200 HTTP/1.1\r\n" + H + b": x\r\n\r\n", (400,)),
    ("one-mib-header", b"GET /status/200 HTTP/1.1\r\n" + H + b"X-Big: " + b"a" * (1 << 20) +
     b"\r\n\r\n", (431,)),
    ("one-mib-target", b"GET /status/200?" + b"a" * (1 << 20) + b" HTTP/1.1\r\n" + H + b"\r\n",
     (431, 414)),
    ("10000-headers", b"GET /status/200 HTTP/1.1\r\n" + H +
     b"".join(b"X-%d: %d\r\n" % (i, i) for i in range(10000)) + b"\r\n", (431,)),
]


@pytest.mark.parametrize("data,statuses", [s[1:] for s in SMUGGLING], ids=[s[0] for s in SMUGGLING])
def test_smuggling_attempt_is_refused_closed_and_never_reaches_the_upstream(shared, upstream,
                                                                            shared_key, data,
                                                                            statuses):
    _, key = shared_key
    upstream.clear_log()
    c = raw(shared, timeout=3)
    sender, sent = send_in_background(c.sock, data)
    resp = c.response()
    assert resp.status in statuses, resp
    error_body_ok(resp, key)
    assert c.closed(), "the broker kept the connection open after %d" % resp.status
    sender.join(10)
    assert not sender.is_alive(), "the sender is still blocked: the broker neither reads nor closes"
    c.close()
    reached = marker_request(shared, upstream)
    assert reached == [], "reached the upstream: %s" % [(r["method"], r["path"]) for r in reached]
    assert_serving(shared, key=key)
    assert not [r for r in upstream.requests() if r["path"] == "/admin"]


# == 4. slow and aborting clients =================================================================

HEAD_TIMEOUT = 5  # s: test_slowloris's --head-timeout


def test_slowloris_200_connections_do_not_delay_a_normal_request(held, upstream):
    """200 connections trickle a request head, one byte a second per connection, and
    three normal requests are answered meanwhile: all three while every one of the 200
    is still open and unanswered. That ordering is the check, not a latency figure,
    which a shared 2-core machine (and ASan) cannot promise. A broker whose loop or
    connection slots the slow heads held (reading heads in turn, --max-conns taken by
    them) would answer the normal requests only once the head timeout had cut slow
    ones, so --head-timeout is long enough (5 s) for three requests to fit before it.

    Then every slow head is cut (408 or a plain close): not before the head timeout,
    counted from the first byte (the timer waited), and well before the trickle could
    complete a head (about 2 min): a timer renewed by each trickled byte would fire
    only then. The ceiling is 10 times the timeout, far from both."""
    h = held(["--head-timeout", "%ds" % HEAD_TIMEOUT, "--max-conns", "256",
              "--dial-rate", "100000"])
    head = b"GET /status/200 HTTP/1.1\r\nHost: flashduty.broker.local\r\nX-Slow: " + b"s" * 64
    slow = [h.dial(timeout=10) for _ in range(200)]
    start = time.monotonic()
    for s in slow:
        s.send(head[:1])
    stop = threading.Event()

    def trickle():
        i = 1
        while not stop.wait(1.0) and i < len(head):
            for s in slow:
                try:
                    s.send(head[i:i + 1])
                except OSError:
                    pass
            i += 1

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    try:
        for _ in range(3):
            status, _, _ = h.request("GET", "/status/200?during=slowloris", timeout=30)
            assert status == 200
        early = answered_or_closed(slow)
        assert not early, ("%d slow heads were cut before the normal requests were answered "
                           "(%.1f s after their first byte, --head-timeout %ds)"
                           % (len(early), time.monotonic() - start, HEAD_TIMEOUT))
        ends, ceiling = [], start + 10 * HEAD_TIMEOUT
        for s in slow:
            try:
                rest = read_until_closed(s, timeout=max(0.1, ceiling - time.monotonic()))
            except TimeoutError:
                raise AssertionError("a slow head still open %.1f s after its first byte with "
                                     "--head-timeout %ds: is the timer renewed by each byte?"
                                     % (time.monotonic() - start, HEAD_TIMEOUT))
            ends.append(time.monotonic() - start)
            assert rest == b"" or rest.split(b" ")[1] == b"408", rest[:100]
        assert min(ends) >= 0.9 * HEAD_TIMEOUT, "a slow head was cut after %.1f s" % min(ends)
    finally:
        stop.set()
        for s in slow:
            s.close()
    t.join(5)
    assert_serving(h)


def test_sixty_slow_uploads_do_not_block_a_normal_request(held, upstream):
    """60 uploads send 1,000 of their 1,000,000 body bytes and stop: their upstream
    requests stay open (nothing cuts them for 120 s, the default stall timeout). They
    must not hold up the event loop, nor the upstream side, for anyone else: a malformed
    request, which the broker answers itself, gets its 400, and a normal request, which
    needs an upstream connection of its own, its 200, while all 60 uploads are still
    open and unanswered (checked after). The uploads end only when the test closes
    them, so a broker that served nothing else until they ended would leave the two
    unanswered until their receive timeouts (10 s and 30 s) failed the test. How fast
    the two are answered is a latency figure, which a shared 2-core machine (and ASan)
    cannot promise: this checks the ordering."""
    h = held()
    uploads = []
    try:
        for i in range(60):
            c = raw(h)
            c.send(rawhttp.request("POST", "/upload?slow=%d" % i,
                                   headers=[("Content-Length", "1000000")]) + b"x" * 1000)
            uploads.append(c)
        bad = raw(h)
        bad.send(b"GET /status/200 HTTP/1.1\r\nHost: x\r\nX-A: \x01\r\n\r\n")
        assert bad.response().status == 400
        bad.close()
        status, _, _ = h.request("GET", "/status/200?during=slow-uploads", timeout=30)
        assert status == 200
        early = answered_or_closed([c.sock for c in uploads])
        assert not early, "%d of the slow uploads were answered or closed" % len(early)
    finally:
        for c in uploads:
            c.close()
    assert_serving(h)


def test_child_that_pipelines_200_mib_and_never_reads_cannot_grow_the_brokers_memory(held,
                                                                                   upstream):
    """200 pipelined 1 MiB downloads, none read: backpressure must hold them in the
    upstream (paused transfer, unread pipelined heads), not in the broker. A normal
    request on another connection is answered while they are still unread (the
    connection is closed only after): a broker stuck on the unread one would leave it
    unanswered until its 30 s timeout failed the test. How fast it is answered is
    not asserted (a shared 2-core machine, and ASan, cannot promise a figure)."""
    h = held()
    pid = h.proc.pid
    start_rss = broker_rss_kib(pid)
    c = raw(h)
    c.send(b"".join(rawhttp.request("GET", "/download?size=1048576&n=%d" % i) for i in range(200)))
    peak = start_rss
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:  # sampling a level, not waiting for an event
        peak = max(peak, broker_rss_kib(pid))
        time.sleep(0.01)
    status, _, _ = h.request("GET", "/status/200?during=unread", timeout=30)
    assert status == 200
    assert peak - start_rss < 40 * 1024, "broker RSS grew by %d KiB" % (peak - start_rss)
    c.close()
    assert_serving(h)


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_client_aborting_mid_body_cancels_the_upstream_request(held, upstream, framing):
    h = held()
    upstream.clear_log()
    c = raw(h)
    piece = os.urandom(300_000)  # more than the broker buffers: the upload has started
    if framing == "length":
        c.send(rawhttp.request("POST", "/upload?abort=1", headers=[("Content-Length", "1000000")]) +
               piece)
    else:
        c.send(rawhttp.request("POST", "/upload?abort=1",
                               headers=[("Transfer-Encoding", "chunked")]) +
               b"%x\r\n" % len(piece) + piece + b"\r\n")

    # The upstream logs a request once its body ended, complete or not.
    c.close()
    [rec] = wait_for(lambda: [r for r in upstream.requests() if r["path"] == "/upload"],
                     what="the upstream to see the upload end")
    assert rec["body_complete"] is False, rec
    assert rec["body_len"] < 1_000_000
    assert_serving(h)


def test_body_sent_after_a_policy_403_is_not_forwarded_and_the_connection_closes(held, upstream,
                                                                                 key_file):
    h = held(["--allow", "GET /status/*"])
    upstream.clear_log()
    c = raw(h)
    body = b"b" * (16 << 20)
    sender, sent = send_in_background(
        c.sock, rawhttp.request("POST", "/upload", headers=[("Content-Length", str(len(body)))]) +
        body)
    resp = c.response()
    assert resp.status == 403, resp
    error_body_ok(resp, key_file[1])
    assert c.closed()
    sender.join(10)
    assert not sender.is_alive(), "the sender still blocks 10 s after the 403"
    assert sent["error"] is not None and sent["sent"] < len(body) // 2, sent
    assert [r["path"] for r in upstream.requests()] == []
    assert_serving(h, key=key_file[1])
    assert [r["path"] for r in upstream.requests()] == ["/status/200"]


def test_expect_100_continue_on_a_denied_request_gets_403_not_100(held, upstream):
    h = held(["--allow", "GET /status/*"])
    c = raw(h)
    c.send(rawhttp.request("POST", "/upload", headers=[("Content-Length", "100"),
                                                       ("Expect", "100-continue")]))
    _, status, _, _ = c.head()
    assert status == 403
    assert_serving(h)


# == 5. spoofed authority =========================================================================

@pytest.fixture(scope="module")
def bait():
    """A TCP listener on 127.0.0.1 that counts the connections it gets: the
    address a command tries to send the broker to."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    state = {"accepted": 0, "stop": False}

    def run():
        while not state["stop"]:
            try:
                s, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            state["accepted"] += 1
            s.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    state["port"] = listener.getsockname()[1]
    yield state
    state["stop"] = True
    t.join(2)
    listener.close()


AUTHORITY = [
    ("absolute-http", "GET http://127.0.0.1:{port}/echo HTTP/1.1\r\n"
                      "Host: 127.0.0.1:{port}\r\n\r\n"),
    ("absolute-https", "GET https://127.0.0.1:{port}/echo HTTP/1.1\r\n"
                       "Host: 127.0.0.1:{port}\r\n\r\n"),
    ("absolute-userinfo", "GET http://u:p@127.0.0.1:{port}/echo HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("absolute-no-path", "GET http://127.0.0.1:{port} HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("host-header", "GET /echo HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"),
    ("two-host-headers", "GET /echo HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                         "Host: evil.example\r\n\r\n"),
    ("network-path-target", "GET //127.0.0.1:{port}/echo HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("authority-form", "GET 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"),
    ("forwarded-headers", "GET /echo HTTP/1.1\r\nHost: x\r\nX-Forwarded-Host: 127.0.0.1:{port}\r\n"
                          "Forwarded: host=127.0.0.1:{port}\r\n\r\n"),
]


@pytest.mark.parametrize("template", [a[1] for a in AUTHORITY], ids=[a[0] for a in AUTHORITY])
def test_spoofed_authority_reaches_only_the_configured_upstream(unrestricted, upstream, bait,
                                                                template):
    upstream.clear_log()
    before = bait["accepted"]
    c = raw(unrestricted)
    c.send(template.format(port=bait["port"]).encode())
    resp = c.response()
    # 200 (rewritten to /echo upstream), the upstream's own 404 (a path it
    # lacks), or 400: but never an answer from anywhere else.
    assert resp.status in (200, 400, 404), resp
    c.close()
    reached = marker_request(unrestricted, upstream)
    for rec in reached:
        hosts = [v for k, v in rec["headers"] if k.lower() == "host"]
        assert hosts == ["127.0.0.1:%d" % upstream.port], rec["headers"]
    if resp.status == 200:
        assert [r["path"] for r in reached] == ["/echo"]
    assert bait["accepted"] == before, "the broker connected to the address the command named"
    assert_serving(unrestricted)


@pytest.mark.parametrize("target", ["/status/%2e%2e/upload", "/status/%2E%2e/upload",
                                    "/status/.%2e/upload", "/status/..;x/upload",
                                    "/status/x%2f..%2fupload", "/status/x%5c..%5cupload",
                                    "/status/x\\..\\upload"])
def test_encoded_dot_segments_cannot_walk_around_the_policy(shared, upstream, target):
    # The policy allows GET /status/*, not GET /upload: a server that decodes
    # %2e or treats ';' or '\' specially would resolve these to /upload.
    upstream.clear_log()
    c = raw(shared)
    c.send(rawhttp.request("GET", target))
    resp = c.response()
    assert resp.status in (400, 403), resp
    assert marker_request(shared, upstream) == []
    assert_serving(shared)


# == 6. the end of an invocation ==================================================================

GRANDCHILD_COMMAND = r"""
import os, subprocess, sys
gc = subprocess.Popen([sys.executable, sys.argv[1], sys.argv[2], str(os.getpid())],
                      pass_fds=[3], start_new_session=True, stdin=subprocess.DEVNULL,
                      stdout=subprocess.PIPE, stderr=open(sys.argv[2] + ".stderr", "w"))
print("grandchild:", gc.stdout.readline().decode().strip())
"""


def test_grandchild_writing_on_a_kept_connection_after_the_command_exits_gets_eof(exec_argv,
                                                                                upstream,
                                                                                tmp_path):
    report_file = tmp_path / "grandchild.json"
    upstream.clear_log()
    argv = exec_argv([], child=[PYTHON, "-c", GRANDCHILD_COMMAND,
                                CHILDREN / "attack_grandchild.py", report_file])
    rc, out, err = run_process(argv, env=make_child_env(), timeout=20)
    # The broker's work ends with the command: it exits (cleanly, leak check
    # included) without waiting for the grandchild.
    assert rc == 0, err
    assert out.strip() == "grandchild: ready", (out, err)

    def report():
        return json.loads(report_file.read_text()) if report_file.exists() else None

    result = wait_for(report, timeout=15, what="the grandchild's report")
    assert result["before"] == 200 and result["command_gone"], result
    # Requests written in the moment between the command's exit and the broker
    # reaping it may still be answered; then the connection ends, for good.
    after = result["after"]
    assert after and after[-1] in ("eof", "epipe", "reset"), result
    assert after.count("200") <= 1, result
    assert result["burst"] in ("epipe", "eof", "reset"), result
    assert result["dial"] == "closed", result
    seqs = sorted(int(urllib.parse.parse_qs(r["query"])["seq"][0]) for r in upstream.requests()
                  if "seq" in r["query"])
    # A request still in flight when the broker reaps the command is cancelled at
    # teardown, but may already have reached the upstream (the window is wider under
    # ASan): at most that one beyond those answered.
    assert seqs == list(range(len(seqs))) and len(seqs) <= 2 + after.count("200"), seqs
    assert not [r for r in upstream.requests() if "burst" in r["query"]]


class RecordingConn(rawhttp.RawConn):
    """RawConn that keeps every byte received, trailers included."""

    def __init__(self, sock, timeout=10.0):
        super().__init__(sock, timeout)
        self.everything = b""

    def _fill(self):
        before = len(self.buf)
        got = super()._fill()
        if got:
            self.everything += self.buf[before:]
        return got


# == 7. a hostile upstream ========================================================================

@pytest.fixture(scope="module")
def special_key(tmp_path_factory):
    """A key with characters that must be percent-encoded in a query."""
    key = SPECIAL_KEY_PREFIX + secrets.token_hex(4)
    return write_key_file(tmp_path_factory.mktemp("special-key") / "key", key), key


RESPONSE_TIMEOUT = 1  # s: facing_hostile's --response-timeout (the default is 60 s)


@pytest.fixture(scope="module")
def facing_hostile(credbroker, hostile, certs, special_key, tmp_path_factory):
    """One `credbroker exec` (held.py) whose upstream is the hostile one, with
    --response-timeout 1s; every upstream fault below hits it in turn."""
    workdir = tmp_path_factory.mktemp("facing-hostile")

    def argv(child):
        return [str(credbroker), "exec", "--upstream", hostile.url, "--cacert", str(certs.ca),
                "--key-file", str(special_key[0]), "--response-timeout",
                "%ds" % RESPONSE_TIMEOUT, "--"] + child

    h = Held(argv, make_child_env(), workdir)
    yield h
    h.close()


@pytest.mark.parametrize("path", ["/hang-status", "/hang-headers", "/endless-headers?delay_ms=50"])
def test_upstream_that_stalls_before_the_end_of_its_head_is_504_at_the_response_timeout(
        facing_hostile, special_key, path):
    # The 504 comes after the response timeout (the timer waited) and before a generous
    # ceiling of 10 times it, far below the 60 s default: the configured timer ended it.
    # /endless-headers keeps sending: a timer renewed by each header byte would never fire.
    h = facing_hostile
    t0 = time.monotonic()
    status, headers, body = h.request("GET", path, timeout=30)
    elapsed = time.monotonic() - t0
    assert status == 504, body
    assert json.loads(body)["error"]["code"]
    assert 0.9 * RESPONSE_TIMEOUT <= elapsed < 10 * RESPONSE_TIMEOUT, (
        "504 after %.2f s with --response-timeout %ds" % (elapsed, RESPONSE_TIMEOUT))
    assert_serving(h, "/ok", key=special_key[1])


@pytest.mark.parametrize("delay_ms", [100, 0], ids=["every-100ms", "flood"])
def test_upstream_sending_interim_responses_forever_is_cut_at_the_response_timeout(
        facing_hostile, special_key, delay_ms):
    # 100 Continue heads are not the response head: an upstream that never stops sending
    # them has sent no head, and gets 504 like a silent one (or 502 once the heads are over
    # a limit), before a generous ceiling of 10 times the response timeout: a timer renewed
    # by each interim head would never fire. A 504 comes after the timeout (it waited).
    h = facing_hostile
    c = raw(h, timeout=30)
    c.send(rawhttp.request("GET", "/endless-interim?delay_ms=%d" % delay_ms))
    t0 = time.monotonic()
    try:
        resp = c.response(interim=True)
    except TimeoutError:
        raise AssertionError("no answer %.1f s into an endless 1xx stream with "
                             "--response-timeout %ds" % (time.monotonic() - t0, RESPONSE_TIMEOUT))
    elapsed = time.monotonic() - t0
    assert resp.status in (502, 504), resp
    assert elapsed < 10 * RESPONSE_TIMEOUT, "cut after %.2f s" % elapsed
    if resp.status == 504:
        assert elapsed >= 0.9 * RESPONSE_TIMEOUT, "504 after %.2f s" % elapsed
    c.close()
    assert_serving(h, "/ok", key=special_key[1])


def test_endless_header_flood_is_cut_with_502(facing_hostile, hostile, special_key):
    # Cut by the limit on a response head: 502, where the response timeout would give 504
    # (as /endless-headers?delay_ms=50 does above), and before 8 MiB were sent.
    h = facing_hostile
    hostile.clear_log()
    status, _, body = h.request("GET", "/endless-headers?delay_ms=0", timeout=30)
    assert status == 502, body
    [ended] = wait_for(lambda: hostile.events("sent"), what="the flood to end")
    assert ended["why"] == "client_gone" and ended["bytes"] < 8 << 20, ended
    assert_serving(h, "/ok", key=special_key[1])


@pytest.mark.parametrize("line", [100, 0], ids=["100-byte-lines", "one-endless-line"])
def test_100_mb_header_flood_is_cut_with_502_and_rss_stays_small(facing_hostile, hostile,
                                                                 special_key, line):
    h = facing_hostile
    pid = h.proc.pid
    hostile.clear_log()
    peak, stop = [broker_rss_kib(pid)], threading.Event()

    def sample():
        while not stop.wait(0.005):
            try:
                peak.append(broker_rss_kib(pid))
            except OSError:
                return

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        status, _, body = h.request("GET", "/header-flood?size=%d&line=%d" % (100 << 20, line),
                                    timeout=20)
    finally:
        stop.set()
        t.join(2)
    assert status == 502, body
    assert max(peak) < 200 * 1024, "broker RSS reached %d KiB" % max(peak)
    [ended] = wait_for(lambda: hostile.events("sent"), what="the flood to end")
    assert ended["why"] == "client_gone" and ended["bytes"] < 100 << 20, ended
    assert_serving(h, "/ok", key=special_key[1])


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_upstream_reset_mid_body_gives_the_child_a_truncated_response(facing_hostile, special_key,
                                                                      chunked):
    h = facing_hostile
    c = RecordingConn(h.dial())
    c.send(rawhttp.request("GET", "/reset-mid-body?size=100000&sent=5000%s" %
                           ("&chunked=1" if chunked else "")))
    with pytest.raises(EOFError):  # short of Content-Length, or no last chunk
        c.response()
    assert c.everything.startswith(b"HTTP/1.1 200 "), c.everything[:200]
    assert b"r" * 100 in c.everything  # the part that came is delivered
    assert_serving(h, "/ok", key=special_key[1])


@pytest.mark.parametrize("variant", sorted(BAD_STATUS))
def test_malformed_upstream_status_line_is_502(facing_hostile, special_key, variant):
    h = facing_hostile
    status, _, body = h.request("GET", "/bad-status?v=" + variant, timeout=10)
    assert status == 502, (status, body[:200])
    assert json.loads(body)["error"]["code"]
    assert_serving(h, "/ok", key=special_key[1])


def test_interim_100_and_103_reach_the_child_as_the_final_200_only(facing_hostile, special_key):
    h = facing_hostile
    c = raw(h)
    c.send(rawhttp.request("GET", "/interim?codes=100,103"))
    resp = c.response(interim=True)  # the first head the child sees
    assert (resp.status, resp.body) == (200, b"final"), resp
    assert resp.header("Link") is None
    c.send(rawhttp.request("GET", "/ok"))  # the connection is still in step
    assert c.response().json() == {"ok": True}
    assert_serving(h, "/ok", key=special_key[1])


def test_unsolicited_101_from_the_upstream_never_reaches_the_child(facing_hostile, special_key):
    h = facing_hostile
    c = raw(h)
    c.send(rawhttp.request("GET", "/interim?codes=101"))
    resp = c.response(interim=True)
    assert resp.status in (200, 502), resp
    if resp.status == 200:
        assert resp.body == b"final"
    assert_serving(h, "/ok", key=special_key[1])


def test_upstream_sending_both_length_and_chunked_cannot_desync_the_childs_connection(
        facing_hostile, special_key):
    # RFC 9112 6.3: Transfer-Encoding overrides Content-Length. A broker that
    # forwarded "Content-Length: 5" with the 100-byte chunked body would leave 95
    # bytes that the child parses as the answer to its next request.
    h = facing_hostile
    c = raw(h)
    c.send(rawhttp.request("GET", "/both-lengths"))
    resp = c.response()
    assert resp.status == 200
    assert resp.body == b"0123456789" * 10, resp
    c.send(rawhttp.request("GET", "/ok"))
    nxt = c.response()
    assert (nxt.status, nxt.body) == (200, b'{"ok": true}'), nxt
    c.close()
    assert_serving(h, "/ok", key=special_key[1])


# (An unasked gzip body is passed on as it came, unscrubbed inside: test_96.)
@pytest.mark.parametrize("form", ["raw", "pct", "pct-lower", "mixed"])
def test_key_echoed_in_one_byte_chunks_by_the_upstream_is_still_masked(facing_hostile,
                                                                       special_key, form):
    _, key = special_key
    h = facing_hostile
    c = RecordingConn(h.dial())
    c.send(rawhttp.request("GET", "/echo-key-chunked?form=%s&piece=1&delay_ms=1" % form))
    resp = c.response()
    assert resp.status == 200
    plain = key_body(key, form)
    # The expected body: every occurrence of the key (in that form) masked whole.
    enc = plain.split(b"before ")[1].split(b" middle")[0]
    expected = plain.replace(enc, b"*" * len(enc))
    assert resp.body == expected, resp.body
    everything = c.everything.decode("latin-1")
    for text in (key, urllib.parse.quote(key, safe=""), urllib.parse.quote(key, safe="").lower()):
        assert text not in everything
    assert "X-Key" not in everything  # trailers are not forwarded
    assert_serving(h, "/ok", key=key)


def test_key_reflected_truncated_by_an_honest_upstream_is_not_handed_out_in_part(held, hostile,
                                                                                key_file):
    # A prefix of the key of at least scrubber_min_occurrence() bytes (9 for this 32-byte
    # key) is masked like the whole key (src/broker/scrub.h).
    _, key = key_file
    h = held(upstream_url=hostile.url)
    # The query upstream is "n=NN&app_key=KEY": echo all of it but the last byte.
    n = len("n=NN&app_key=") + len(key) - 1
    status, _, body = h.request("GET", "/echo-prefix?n=%d" % n)
    assert status == 400
    message = json.loads(body)["error"]["message"]
    longest = max((j - i for i in range(len(key)) for j in range(i + 1, len(key) + 1)
                   if key[i:j] in message), default=0)
    assert_serving(h, "/ok", key=key)
    assert longest <= 8, "the command got %d of the key's %d characters: %r" % (
        longest, len(key), message)


# == 8. keys at entry =============================================================================

def refused_at_entry(argv, env=None, stdin=None, key=None, **kw):
    rc, out, err = run_process(argv, env=make_child_env(env), input=stdin, **kw)
    assert "command ran" not in out, "the command ran with a refused key"
    assert rc == 2, "exit %d:\n%s" % (rc, err)
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    if key is not None:
        assert key not in err and key not in out
    return lines[0]


# {r} is a random part, the only part searched for in the error output.
BAD_KEYS = [
    ("cr", "{r}\r{r}"), ("lf", "{r}\n{r}"), ("crlf-header-injection", "{r}\r\nX-Injected: 1"),
    ("tab", "{r}\t{r}"), ("escape", "{r}\x1b[31m{r}"), ("del", "{r}\x7f{r}"),
    ("trailing-cr-only", "{r}\r"), ("two-trailing-newlines", "{r}\n\n"),
]


def bad_key(template):
    r = secrets.token_hex(8)
    return template.format(r=r), r


@pytest.mark.parametrize("template", [k[1] for k in BAD_KEYS], ids=[k[0] for k in BAD_KEYS])
def test_key_env_with_a_control_byte_is_refused_at_entry(credbroker, upstream, certs, template):
    secret, r = bad_key(template)
    argv = [str(credbroker), "exec", "--upstream", upstream.url, "--cacert", str(certs.ca),
            "--inject", "header:X-Api-Key", "--key-env", "CB_ADV_KEY", "--",
            PYTHON, "-c", "print('command ran')"]
    refused_at_entry(argv, env={"CB_ADV_KEY": secret}, key=r)


@pytest.mark.parametrize("template", [k[1] for k in BAD_KEYS] + ["{r}\x00{r}"],
                         ids=[k[0] for k in BAD_KEYS] + ["nul"])
def test_key_fd_with_a_control_byte_is_refused_at_entry(credbroker, upstream, certs, template):
    secret, r = bad_key(template)
    rfd, wfd = os.pipe()
    os.write(wfd, secret.encode())
    os.close(wfd)
    argv = ["/bin/bash", "-c", 'exec "$@" 3<&%d %d<&-' % (rfd, rfd), "bash", str(credbroker),
            "exec", "--upstream", upstream.url, "--cacert", str(certs.ca), "--key-fd", "3", "--",
            PYTHON, "-c", "print('command ran')"]
    try:
        proc = subprocess.run(argv, env=make_child_env(), pass_fds=[rfd], capture_output=True,
                              text=True, timeout=30)
    finally:
        os.close(rfd)
    assert "command ran" not in proc.stdout
    assert proc.returncode == 2, proc.stderr
    assert r not in proc.stderr


@pytest.mark.parametrize("template", [k[1] for k in BAD_KEYS if k[0] not in ("cr", "lf", "tab")],
                         ids=[k[0] for k in BAD_KEYS if k[0] not in ("cr", "lf", "tab")])
def test_key_file_with_a_control_byte_is_refused_at_entry(credbroker, upstream, certs, tmp_path,
                                                          template):
    # CR, LF and NUL inside a key file: test_40_hardening.py's CLI cases.
    secret, r = bad_key(template)
    path = tmp_path / "key"
    path.write_bytes(secret.encode())
    path.chmod(0o600)
    argv = [str(credbroker), "exec", "--upstream", upstream.url, "--cacert", str(certs.ca),
            "--key-file", str(path), "--", PYTHON, "-c", "print('command ran')"]
    refused_at_entry(argv, key=r)


def test_key_fd_0_on_a_seekable_stdin_is_refused(credbroker, upstream, certs, tmp_path):
    key = "stdin-" + secrets.token_hex(16)
    path = write_key_file(tmp_path / "key", key)
    argv = [str(credbroker), "exec", "--upstream", upstream.url, "--cacert", str(certs.ca),
            "--key-fd", "0", "--", PYTHON, "-c", "print('command ran')"]
    with open(path, "rb") as stdin:
        proc = subprocess.run(argv, env=make_child_env(), stdin=stdin, capture_output=True,
                              text=True, timeout=30)
    assert "command ran" not in proc.stdout
    assert proc.returncode == 2, proc.stderr
    assert key not in proc.stderr


REWIND_STDIN = (
    "import json, os, sys\n"
    "import brokered\n"
    "status = brokered.request('GET', '/status/200')[0]\n"
    "os.lseek(0, 0, os.SEEK_SET)\n"
    "print(json.dumps({'status': status, 'stdin': os.read(0, 4096).decode()}))\n")


def test_key_fd_3_duplicated_from_a_seekable_stdin_is_refused(credbroker, upstream, certs,
                                                              tmp_path):
    # `--key-fd 3 3<&0` passes the fd >= 3 rule, but fd 3 and the command's stdin
    # would share one open file description: the command could rewind its stdin
    # and read the key. The broker compares fd 3 with 0-2 (kcmp) and refuses a
    # seekable duplicate, before anything runs. A pipe (3< <(vault ...)) is fine.
    key = "dup-" + secrets.token_hex(16)
    path = write_key_file(tmp_path / "key", key)
    argv = ["/bin/bash", "-c", 'exec "$@" 3<&0', "bash", str(credbroker), "exec",
            "--upstream", upstream.url, "--cacert", str(certs.ca), "--key-fd", "3", "--",
            PYTHON, "-c", REWIND_STDIN]
    with open(path, "rb") as stdin:
        proc = subprocess.run(argv, env=make_child_env(), stdin=stdin, capture_output=True,
                              text=True, timeout=30)
    assert proc.returncode == 2
    assert "same open file as fd 0" in proc.stderr
    assert proc.stdout == "" and key not in proc.stderr


def test_key_fd_3_duplicated_from_a_piped_stdin_leaves_nothing_to_read(credbroker, upstream,
                                                                       certs):
    key = "pipe-" + secrets.token_hex(16)
    argv = ["/bin/bash", "-c", 'exec "$@" 3<&0', "bash", str(credbroker), "exec",
            "--upstream", upstream.url, "--cacert", str(certs.ca), "--key-fd", "3", "--",
            PYTHON, "-c", "import os, sys; print(repr(sys.stdin.read()))"]
    rc, out, err = run_process(argv, env=make_child_env(), input=key + "\n")
    assert rc == 0, err
    assert out.strip() == "''"  # the broker read the pipe to its end
    assert key not in out


# == 9. the runner: a task's command and a hostile platform message ===============================

def test_runner_token_is_in_neither_environ_block_nor_cmdline_of_the_runner_even_for_root(
        runner, platform):
    # The runner takes FLASHDUTY_RUNNER_API_KEY and wipes it in place; a task's
    # command (here root, which non-dumpability does not stop) reads its parent.
    pid = runner.proc.pid
    for name in ("environ", "cmdline"):
        with open("/proc/%d/%s" % (pid, name), "rb") as f:
            assert platform.token.encode() not in f.read(), name
    task_id = platform.bash("cat /proc/$PPID/environ /proc/$PPID/cmdline | tr '\\0' '\\n'; env")
    res = platform.result(task_id, timeout=20)
    assert res["success"] is True, res
    assert platform.token not in json.dumps(res)


@pytest.mark.parametrize("bad", ["abc\r\nX-Injected: 1", "k" * 5000],
                         ids=["crlf-header-injection", "over-4-kib"])
def test_platform_credential_that_could_inject_is_refused_and_the_runner_serves_on(
        runner, platform, upstream, build_dir, bad):
    upstream.clear_log()
    m = "m" + secrets.token_hex(8)
    cmd = "%s GET '/echo?marker=%s'" % (build_dir / "credfd", m)
    task_id = platform.bash(cmd, credential={"key": bad, "base_url": upstream.url})
    # The key is refused; the task must still be answered (README: a task whose
    # broker cannot be set up fails with a clear error), or the platform waits forever.
    try:
        res = platform.result(task_id, timeout=2)
    except TimeoutError:
        raise AssertionError("no task.result for a task whose credential was refused:\n%s"
                             % runner.log()[-1000:])
    assert res["success"] is False, res
    assert bad not in json.dumps(res)
    assert not [r for r in upstream.requests() if m in r["query"]]
    # Still connected, still serving, with a good key.
    good, m2 = secrets.token_hex(16), "m" + secrets.token_hex(8)
    task_id = platform.bash("%s GET '/echo?marker=%s'" % (build_dir / "credfd", m2),
                            credential={"key": good, "base_url": upstream.url})
    res = platform.result(task_id, timeout=20)
    assert res["success"] is True and res["exit_code"] == 0, res
    [rec] = upstream.wait_requests(1)
    assert urllib.parse.parse_qs(rec["query"])["app_key"] == [good]
