"""Layer 96: findings of the broker's security review (issue 20), kept as regression tests.

  item 7a  an error after the upstream's response head reached the child cuts the
           connection; it never writes a second head

SECURITY.md maps each to its row. The upstream is tests/e2e/hostile_upstream.py.
"""

import re
import socket
from pathlib import Path

import pytest

from children import rawhttp
from conftest import PYTHON, PeerProcess, read_json_lines

E2E = Path(__file__).resolve().parent


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
def hostile(certs, tmp_path_factory):
    peer = Peer("hostile_upstream.py", ["--cert", str(certs.dir)],
                tmp_path_factory.mktemp("hostile"), "hostile")
    yield peer
    peer.stop()


def read_until_closed(c):
    """Everything c (a rawhttp.RawConn) receives until the broker closes; fails the
    test if it has not closed within c's timeout."""
    try:
        while c._fill():
            pass
    except socket.timeout:
        pytest.fail("the broker kept the connection open after %r" % c.buf[:300])
    return c.buf


# == item 7a: never a second response head =======================================================

def status_lines(data):
    return re.findall(rb"HTTP/1\.[01] \d{3} ", data)


@pytest.mark.parametrize("path,args", [
    ("/reset-mid-body?size=100000&sent=5000", []),
    ("/cut-mid-body?size=100000&sent=5000&how=close", []),
    ("/cut-mid-body?size=100000&sent=5000&how=stall", ["--stall-timeout", "1s"]),
    ("/cut-mid-body?sent=5000&how=close&chunked=1", []),
], ids=["reset", "close", "stall", "close-chunked"])
def test_upstream_failing_mid_body_gives_one_head_and_a_closed_connection(held, hostile, path,
                                                                         args):
    h = held(args, upstream_url=hostile.url)
    c = rawhttp.RawConn(h.dial())
    c.send(rawhttp.request("GET", path))
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
