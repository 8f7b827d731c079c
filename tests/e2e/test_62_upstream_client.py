"""The broker's own upstream client (issue 18; DESIGN.md section 3) against real peers:
a 502 that names the TLS failure (a certificate for another host, one from a CA nobody
trusts, an expired one), a --cacert checked at start and loaded at the first connect,
HTTPS_PROXY through Debian's tinyproxy, and a keep-alive connection the upstream closed
while idle. The HTTP/2 cases (GOAWAY, RST_STREAM, the
stream limit, flow control per child, the idle PING) run end to end in
test_63_upstream_h2.py, against nginx in test_60_egress.py and against a python3-h2 peer
in tests/unit/test_h2conn.c; the HTTP/1.1 connection's own cases in
tests/unit/test_h1conn.c; hostile heads in test_95_adversarial.py."""

import hashlib
import json
import shutil
import socket
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from children import rawhttp
from children.held import Held
from conftest import E2E, PYTHON, REPO, PeerProcess, Upstream, download_slowly_at_once, \
    make_child_env, read_json_lines, run_process, wait_for

NET_CERTS = REPO / "tests" / "unit" / "peers" / "net_certs.sh"
TINYPROXY = "/usr/bin/tinyproxy"


@pytest.fixture(scope="module")
def netcerts(tmp_path_factory):
    """net_certs.sh's certificates: ca.pem, and a server.pem/server.key directory for
    each bad leaf (wrong: other.example only; expired: 2020; untrusted: another CA)."""
    d = tmp_path_factory.mktemp("netcerts")
    subprocess.run(["bash", str(NET_CERTS), str(d)], check=True)
    for name in ("wrong", "expired", "untrusted"):
        sub = d / name
        sub.mkdir()
        shutil.copy(d / (name + ".pem"), sub / "server.pem")
        shutil.copy(d / (name + ".key"), sub / "server.key")
    return d


@pytest.mark.parametrize("leaf,cause", [
    ("wrong", "mismatch"),
    ("untrusted", "unable to get local issuer certificate"),
    ("expired", "certificate has expired"),
])
def test_a_tls_failure_is_a_502_naming_its_cause(held, netcerts, tmp_path, key_file, leaf,
                                                 cause):
    up = Upstream(SimpleNamespace(dir=netcerts / leaf), tmp_path)
    try:
        h = held(upstream_url=up.url, cacert=netcerts / "ca.pem")
        status, _, body = h.request("GET", "/status/200")
        assert status == 502, body
        message = json.loads(body)["error"]["message"]
        assert message.startswith("upstream unreachable: ") and "TLS" in message, message
        assert cause in message.lower(), message
        assert key_file[1].encode() not in body
        assert up.requests() == []  # nothing was sent over the failed handshake
    finally:
        up.stop()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def tinyproxy(tmp_path):
    if not Path(TINYPROXY).exists():
        pytest.skip("tinyproxy not installed (scripts/deps installs it)")
    port = free_port()
    conf = tmp_path / "tinyproxy.conf"
    log = tmp_path / "tinyproxy.log"
    conf.write_text("Port %d\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\nLogLevel Connect\n"
                    "LogFile \"%s\"\n" % (port, log))
    proc = subprocess.Popen([TINYPROXY, "-d", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

    def listening():
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_for(listening, timeout=10, what="tinyproxy listening")
        yield SimpleNamespace(url="http://127.0.0.1:%d" % port, log=log)
    finally:
        proc.terminate()
        proc.wait()


def test_https_proxy_through_tinyproxy(exec_argv, upstream, tinyproxy, tmp_path):
    """A real proxy in the middle: the broker opens a CONNECT tunnel through it and
    verifies the upstream's certificate through the tunnel."""
    upstream.clear_log()
    env = make_child_env({"HTTPS_PROXY": tinyproxy.url})
    for name in ("NO_PROXY", "no_proxy", "https_proxy"):
        env.pop(name, None)
    h = Held(lambda child: exec_argv(child=child), env, tmp_path)
    try:
        status, _, body = h.request("GET", "/status/200")
    finally:
        h.close()
    assert status == 200, body
    port = upstream.url.rsplit(":", 1)[1]
    assert "CONNECT 127.0.0.1:%s" % port in tinyproxy.log.read_text(), tinyproxy.log.read_text()
    [rec] = upstream.wait_requests(1)
    assert rec["path"] == "/status/200"


class Hostile(PeerProcess):
    """tests/e2e/hostile_upstream.py over TLS, with its log."""

    def __init__(self, certs, workdir):
        self.log_path = Path(workdir) / "hostile.log"
        self.log_path.touch()
        super().__init__([PYTHON, str(E2E / "hostile_upstream.py"), "--port", "0", "--cert",
                          str(certs.dir), "--log", str(self.log_path)], workdir, "hostile")

    def events(self, kind):
        return [r for r in read_json_lines(self.log_path) if r.get("event") == kind]

    def clear_log(self):
        self.log_path.write_bytes(b"")


@pytest.fixture(scope="module")
def hostile(certs, tmp_path_factory):
    peer = Hostile(certs, tmp_path_factory.mktemp("hostile"))
    yield peer
    peer.stop()


def test_a_connection_the_upstream_closed_while_idle_is_not_used_again(held, hostile):
    """The upstream ends a keep-alive connection after its answer (an idle timeout):
    the next request still gets its answer, on a new connection."""
    h = held(upstream_url=hostile.url)
    hostile.clear_log()
    status, _, _ = h.request("GET", "/ok-then-idle-close")
    assert status == 200
    wait_for(lambda: hostile.events("idle_closed"), timeout=10, what="the upstream's close")
    for _ in range(3):
        status, _, body = h.request("GET", "/ok")
        assert status == 200, body


@pytest.mark.python_upstream("counts upstream.py's own TCP connections")
def test_the_http1_pool_reuses_the_connection_idle_last_and_opens_none_more(held, upstream):
    """Three requests at once take three HTTP/1.1 connections; the requests after them, one
    at a time, all go on the one that went idle last (the warmest; the others age out), and
    no request opens a fourth."""
    h = held()
    upstream.clear_log()
    conns = [rawhttp.RawConn(h.dial()) for _ in range(3)]
    for i, c in enumerate(conns):  # each answer waits 300 ms: all three overlap upstream
        c.send(rawhttp.request("GET", "/download?size=10&head_delay_ms=300&n=%d" % i))
    assert [c.response().status for c in conns] == [200] * 3
    at_once = {r["peer_port"] for r in upstream.wait_requests(3)}
    assert len(at_once) == 3, at_once
    c = conns[0]
    for i in range(6):
        c.send(rawhttp.request("GET", "/echo?m=%d" % i))
        assert c.response().status == 200
    later = [r["peer_port"] for r in upstream.wait_requests(9)[3:]]
    assert len(set(later)) == 1 and later[0] in at_once, (at_once, later)


def test_a_close_delimited_body_read_slowly_arrives_whole(held, hostile):
    """The upstream's close ends the body while the child is still reading it slowly: what
    the connection holds for the paused reader is delivered first, then the end."""
    h = held(["--stall-timeout", "20s"], upstream_url=hostile.url)
    sizes = [6 * 1024 * 1024 + 5, 3 * 1024 * 1024]
    results = download_slowly_at_once(h, ["/close-delimited?size=%d" % n for n in sizes])
    for (got, digest), n in zip(results, sizes):
        assert (got, digest) == (n, hashlib.sha256(b"c" * n).hexdigest())


@pytest.mark.parametrize("content,why", [
    (b"not a certificate\n", "no PEM certificate in it"),
    (b"", "no PEM certificate in it"),
    (None, "No such file or directory"),
])
def test_a_ca_bundle_without_a_certificate_stops_exec_at_start(exec_argv, tmp_path, content,
                                                               why):
    """The bundle is checked at start (a text check: OpenSSL loads it at the first TLS
    connect), so a wrong --cacert is one line and exit 2, and the command never runs."""
    ca = tmp_path / "ca.pem"
    if content is not None:
        ca.write_bytes(content)
    ran = tmp_path / "ran"
    rc, _, err = run_process(exec_argv(child=["/usr/bin/touch", str(ran)], cacert=ca))
    assert rc == 2, err
    assert err.strip().splitlines() == ["credbroker exec: --cacert %s: %s" % (ca, why)], err
    assert not ran.exists()


def test_a_ca_bundle_openssl_refuses_is_a_502_naming_it(held, upstream, tmp_path, key_file):
    """A bundle that looks like PEM but holds no certificate OpenSSL can read passes the
    start check; the first TLS connect loads it, and the request gets a 502 naming the
    bundle. Nothing reaches the upstream and the broker keeps serving."""
    ca = tmp_path / "broken-ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n")
    upstream.clear_log()
    h = held(cacert=ca)
    for _ in range(2):
        status, _, body = h.request("GET", "/status/200")
        assert status == 502, body
        message = json.loads(body)["error"]["message"]
        assert "the CA bundle %s holds no certificate OpenSSL can load" % ca in message, message
        assert key_file[1].encode() not in body
    assert upstream.requests() == []
