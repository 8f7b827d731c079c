"""Layer 96: findings of the broker's security review (issue 20), kept as regression tests.

  item 2   a compressed response must not escape the broker's backpressure: the broker
           asks for identity and passes a body the upstream encodes anyway on as it came,
           instead of letting libcurl inflate it into its pause buffer
  item 4   over a plain http:// upstream, no request waits behind another child's
           paused transfer
  item 7a  an error after the upstream's response head reached the child cuts the
           connection; it never writes a second head

SECURITY.md maps each to its row. The upstreams are tests/e2e/upstream.py (also
served over plain HTTP with --plain) and tests/e2e/hostile_upstream.py.
"""

import re
import secrets
import socket
from pathlib import Path

import pytest

from children import rawhttp
from conftest import PYTHON, PeerProcess, read_json_lines, wait_for
from hostile_upstream import key_body

E2E = Path(__file__).resolve().parent
MIB = 1 << 20


class Peer(PeerProcess):
    """An upstream script of tests/e2e started with args, its request log, and
    .url with the scheme it serves."""

    def __init__(self, script, args, workdir, name, scheme="https"):
        self.log_path = Path(workdir) / (name + ".log")
        self.log_path.touch()
        super().__init__([PYTHON, str(E2E / script), "--port", "0", "--log", str(self.log_path)]
                         + args, workdir, name)
        self.url = "%s://127.0.0.1:%d" % (scheme, self.port)

    def requests(self):
        return [r for r in read_json_lines(self.log_path) if "event" not in r]


@pytest.fixture(scope="module")
def plain_upstream(tmp_path_factory):
    """tests/e2e/upstream.py over plain HTTP: an http:// upstream."""
    peer = Peer("upstream.py", ["--plain"], tmp_path_factory.mktemp("plain"), "plain", "http")
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def hostile(certs, tmp_path_factory):
    peer = Peer("hostile_upstream.py", ["--cert", str(certs.dir)],
                tmp_path_factory.mktemp("hostile"), "hostile")
    yield peer
    peer.stop()


def broker_memory_kib(pid):
    """{"VmRSS": KiB, "VmHWM": KiB} of the broker, from /proc/PID/status."""
    mem = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                mem[name] = int(value.split()[0])
    return mem


def read_until_closed(c):
    """Everything c (a rawhttp.RawConn) receives until the broker closes; fails the
    test if it has not closed within c's timeout."""
    try:
        while c._fill():
            pass
    except socket.timeout:
        pytest.fail("the broker kept the connection open after %r" % c.buf[:300])
    return c.buf


# == item 2: compressed responses and the broker's memory =========================================

BOMB = 60 * MIB  # each body inflates to this: about 60 KiB of gzip
BOMBS = 24
GROWTH_LIMIT_KIB = 128 * 1024


def peeked(sock):
    """Bytes waiting unread in sock (looked at with MSG_PEEK: nothing is consumed)."""
    try:
        return sock.recv(1 << 16, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return b""


def read_zeros(c, size):
    """Reads a decoded (chunked) response of size zero bytes from c piece by piece: the
    whole body is never held here."""
    _, status, _, headers = c.head()
    names = {k.lower(): v for k, v in headers}
    assert status == 200
    assert "content-encoding" not in names, headers  # decoded for the child
    assert names.get("transfer-encoding") == "chunked", headers
    total = 0
    while True:
        line = c._line()
        n = int(line.split(b";")[0], 16)
        if n == 0:
            assert c._line() == b""
            break
        piece = c._exact(n)
        assert piece.count(0) == n
        total += n
        assert c._exact(2) == b"\r\n"
    assert total == size


def test_gzip_bombs_the_child_does_not_read_are_not_inflated_ahead(held, upstream):
    """24 connections each get ~60 KiB of gzip (sent unasked) that inflates to 60 MiB,
    and the child reads none of it for now. libcurl inflated it into its pause buffer:
    the broker grew past 1.4 GiB. The broker's own decoder is pulled at the child's
    pace: it stays small, and a child that then reads gets every byte, decoded."""
    h = held()
    conns = [rawhttp.RawConn(h.dial(), timeout=30) for _ in range(BOMBS)]
    # Growth, not the total: a sanitizer build starts far bigger, and its redzones and its
    # quarantine of freed blocks add tens of MiB (about 10 KiB without it). Inflating these
    # bodies ahead of their children, as libcurl did, takes 1.4 GiB.
    before = broker_memory_kib(h.proc.pid)["VmHWM"]
    for c in conns:
        c.send(rawhttp.request("GET", "/gzip-unasked?size=%d" % BOMB))
    seen = {}

    def all_answered_and_broker_small():
        mem = broker_memory_kib(h.proc.pid)
        seen.update(mem)
        assert mem["VmHWM"] - before < GROWTH_LIMIT_KIB, "the broker grew to %s" % mem
        return all(b"\r\n\r\n" in peeked(c.sock) for c in conns)

    wait_for(all_answered_and_broker_small, timeout=20, what="24 response heads")
    assert broker_memory_kib(h.proc.pid)["VmHWM"] - before < GROWTH_LIMIT_KIB
    print("broker memory with 24 unread gzip responses: %s KiB, from %d" % (seen, before))
    for c in conns[:2]:
        read_zeros(c, BOMB)
    for c in conns:
        c.close()


def test_a_200_mib_gzip_body_streams_through_to_a_reading_child_intact(held, upstream):
    """libcurl 7.88 failed this transfer ("Out of memory") once one read inflated past
    its 64 MiB pause buffer. Decoded at the child's pace, all 200 MiB arrive."""
    h = held()
    c = rawhttp.RawConn(h.dial(), timeout=60)
    c.send(rawhttp.request("GET", "/gzip-unasked?size=%d" % (200 * MIB)))
    read_zeros(c, 200 * MIB)


def test_upstream_is_asked_for_the_codings_the_broker_decodes(held, upstream):
    h = held()
    upstream.clear_log()
    c = rawhttp.RawConn(h.dial())
    c.send(rawhttp.request("GET", "/gzip-echo-query?x=1",
                           headers=[("Accept-Encoding", "compress, identity"),
                                    ("Accept-Encoding", "zstd")]))
    resp = c.response()
    assert resp.status == 200
    assert resp.header("Content-Encoding") is None
    assert resp.json()["error"]["message"].startswith("bad request: x=1&app_key=")
    [rec] = upstream.wait_requests(1)
    assert [v for k, v in rec["headers"] if k.lower() == "accept-encoding"] == \
        ["gzip, deflate, br, zstd"]


def test_key_inside_a_gzip_body_is_masked(held, hostile, key_file):
    """The scrubber sees the body decoded: an upstream that gzips an echo of the key
    (SECURITY.md's old limit) no longer hands it to the child."""
    path, key = key_file
    h = held(upstream_url=hostile.url, key_path=path)
    c = rawhttp.RawConn(h.dial())
    c.send(rawhttp.request("GET", "/echo-key-chunked?form=gzip&piece=64"))
    resp = c.response()
    assert resp.status == 200
    assert resp.header("Content-Encoding") is None
    plain = key_body(key, "gzip")
    assert resp.body == plain.replace(key.encode(), b"*" * len(key))
    assert key.encode() not in resp.body


# == item 4: no request waits behind another's paused transfer ===================================

def test_over_plain_http_a_paused_transfer_holds_back_no_other_request(held, plain_upstream):
    """The first request to the origin gets its head after 1 s, and its child never reads
    its 64 MiB: its transfer pauses for good. Three requests started meanwhile waited
    for that connection (CURLOPT_PIPEWAIT), were never sent, and got 504 at the
    response timeout. Now they take connections of their own."""
    h = held(["--response-timeout", "3s"], upstream_url=plain_upstream.url, cacert="")
    first = rawhttp.RawConn(h.dial())
    first.send(rawhttp.request("GET", "/download?size=%d&head_delay_ms=1000" % (64 * MIB)))
    wait_for(lambda: any(r["path"] == "/download" for r in plain_upstream.requests()),
             what="the first request upstream")
    others = [rawhttp.RawConn(h.dial()) for _ in range(3)]
    for i, c in enumerate(others):
        c.send(rawhttp.request("GET", "/status/200?other=%d" % i))
    statuses = [c.response().status for c in others]
    assert statuses == [200, 200, 200]
    _, status, _, _ = first.head()  # its body stays unread: the transfer stays paused
    assert status == 200
    for c in others + [first]:
        c.close()


# == item 7a: never a second response head =======================================================

def status_lines(data):
    return re.findall(rb"HTTP/1\.[01] \d{3} ", data)


@pytest.mark.parametrize("path,args", [
    ("/reset-mid-body?size=100000&sent=5000&go=GO", []),
    ("/cut-mid-body?size=100000&sent=5000&how=close", []),
    ("/cut-mid-body?size=100000&sent=5000&how=stall", ["--stall-timeout", "1s"]),
    ("/cut-mid-body?sent=5000&how=close&chunked=1", []),
], ids=["reset", "close", "stall", "close-chunked"])
def test_upstream_failing_mid_body_gives_one_head_and_a_closed_connection(held, hostile, path,
                                                                         args):
    h = held(args, upstream_url=hostile.url)
    c = rawhttp.RawConn(h.dial())
    go = hostile.log_path.parent / ("go-%s" % secrets.token_hex(4))
    c.send(rawhttp.request("GET", path.replace("GO", str(go))))
    if "go=" in path:
        # The RST discards what the broker has not read: it comes once the head is here.
        while b"\r\n\r\n" not in c.buf and c._fill():
            pass
        go.touch()
    data = read_until_closed(c)
    assert len(status_lines(data)) == 1, data[:400]
    assert data.startswith(b"HTTP/1.1 200 ")
    assert data.count(b"r") < 100000


@pytest.mark.parametrize("bad_rest,args", [
    (b"zz\r\n", []),
    (b"100000\r\n", ["--max-body", "1000"]),
], ids=["malformed-chunk", "chunk-over-max-body"])
def test_request_body_failing_after_the_response_head_gives_one_head(held, hostile, bad_rest,
                                                                     args):
    """The upstream answers before the request body has all come; then the rest of the
    body is malformed (400) or over --max-body (413). That answer came after the
    upstream's head, as a second head inside its body."""
    h = held(args, upstream_url=hostile.url)
    c = rawhttp.RawConn(h.dial())
    c.send(b"POST /answer-before-body?size=100000&sent=5000 HTTP/1.1\r\nHost: x\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
    while b"\r\n\r\n" not in c.buf:
        assert c._fill(), "closed before the upstream's head: %r" % c.buf
    c.send(bad_rest)
    data = read_until_closed(c)
    assert len(status_lines(data)) == 1, data[:400] + b"..." + data[-400:]
    assert data.startswith(b"HTTP/1.1 200 ")
    assert not data.endswith(b"}")  # no JSON error after the body
