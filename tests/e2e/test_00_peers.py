"""The e2e suite's own peers, tested without credbroker: if these fail, a
failure elsewhere in tests/e2e says nothing about the broker.

Covers tools/gen-certs, tests/e2e/upstream.py, tools/mock_api.py and the
client helper tests/e2e/brokered.py (against an in-process fake broker).
"""

import array
import gzip
import hashlib
import http.client
import json
import os
import socket
import ssl
import stat
import subprocess
import threading

import pytest

import brokered
from conftest import PYTHON, make_certs, make_child_env, wait_for
from upstream import pattern_bytes, pattern_sha256


def https(server, certs, timeout=10):
    ctx = ssl.create_default_context(cafile=str(certs.ca))
    return http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=timeout)


def header_values(record, name):
    return [v for k, v in record["headers"] if k.lower() == name.lower()]


# -- tools/gen-certs ----------------------------------------------------------

def test_gen_certs_makes_private_keys_and_is_idempotent(tmp_path):
    c = make_certs(tmp_path / "c")
    for key in (c.dir / "ca.key", c.server_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    before = {p.name: p.read_bytes() for p in c.dir.iterdir()}
    make_certs(c.dir)
    assert {p.name: p.read_bytes() for p in c.dir.iterdir()} == before


def test_server_cert_is_rejected_without_the_test_ca(upstream):
    ctx = ssl.create_default_context()
    conn = http.client.HTTPSConnection("127.0.0.1", upstream.port, context=ctx, timeout=10)
    with pytest.raises(ssl.SSLCertVerificationError):
        conn.request("GET", "/echo")


# -- tests/e2e/upstream.py ----------------------------------------------------

def test_upstream_echoes_request_over_verified_tls(upstream, certs):
    conn = https(upstream, certs)
    conn.request("POST", "/echo?b=2&app_key=x%2By", body=b"hello",
                 headers={"X-First": "1", "X-Second": "2"})
    resp = conn.getresponse()
    echo = json.loads(resp.read())
    assert resp.status == 200
    assert echo["method"] == "POST"
    assert echo["path"] == "/echo"
    assert echo["query"] == "b=2&app_key=x%2By"
    assert echo["body_len"] == 5
    assert echo["body_sha256"] == hashlib.sha256(b"hello").hexdigest()
    names = [k for k, _ in echo["headers"]]
    assert names.index("X-First") < names.index("X-Second")


def test_upstream_logs_each_request_in_received_order(upstream, certs):
    upstream.clear_log()
    conn = https(upstream, certs)
    conn.request("PUT", "/echo?app_key=k1&app_key=k2", body=b"abc",
                 headers={"Host": "api.example", "X-Dup": "a"})
    conn.getresponse().read()
    [rec] = upstream.wait_requests(1)
    assert rec["method"] == "PUT"
    assert rec["raw_target"] == "/echo?app_key=k1&app_key=k2"
    assert rec["query"] == "app_key=k1&app_key=k2"
    assert header_values(rec, "Host") == ["api.example"]
    assert rec["body_len"] == 3 and rec["body_complete"]
    assert rec["body_sha256"] == hashlib.sha256(b"abc").hexdigest()


def test_upstream_keeps_the_connection_alive(upstream, certs):
    conn = https(upstream, certs)
    conn.request("GET", "/echo")
    conn.getresponse().read()
    first = conn.sock
    conn.request("GET", "/status/204")
    assert conn.getresponse().status == 204
    assert conn.sock is first


def test_upstream_decodes_chunked_request_body(upstream, certs):
    upstream.clear_log()
    body = pattern_bytes(200_000)
    conn = https(upstream, certs)
    conn.request("POST", "/echo", body=iter([body[:1], body[1:70_000], body[70_000:]]),
                 encode_chunked=True)
    echo = json.loads(conn.getresponse().read())
    assert echo["body_len"] == len(body)
    assert echo["body_sha256"] == hashlib.sha256(body).hexdigest()
    [rec] = upstream.wait_requests(1)
    assert header_values(rec, "Transfer-Encoding") == ["chunked"]


def test_upload_answers_with_the_same_bytes(upstream, certs):
    body = os.urandom(3 * 1024 * 1024 + 17)
    conn = https(upstream, certs)
    conn.request("POST", "/upload", body=body)
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("Content-Length") == str(len(body))
    assert resp.read() == body


@pytest.mark.parametrize("chunked", [False, True])
def test_download_streams_the_documented_pattern(upstream, certs, chunked):
    size = 5 * 65536 + 123
    conn = https(upstream, certs)
    conn.request("GET", "/download?size=%d%s" % (size, "&chunked=1" if chunked else ""))
    resp = conn.getresponse()
    data = resp.read()
    assert resp.status == 200
    assert (resp.getheader("Transfer-Encoding") == "chunked") == chunked
    assert len(data) == size
    assert data[:4] == bytes([3, 10, 17, 24])
    assert hashlib.sha256(data).hexdigest() == pattern_sha256(size)
    assert data == pattern_bytes(size)


def test_echo_query_echoes_the_raw_query_in_body_location_and_header(upstream, certs):
    conn = https(upstream, certs)
    conn.request("GET", "/echo-query?x=1&app_key=se%2Fcret")
    resp = conn.getresponse()
    body = json.loads(resp.read())
    assert resp.status == 400
    assert body == {"error": {"code": "Bad", "message": "bad request: x=1&app_key=se%2Fcret"}}
    assert resp.getheader("Location") == "https://example.invalid/?x=1&app_key=se%2Fcret"
    assert resp.getheader("X-Echo") == "x=1&app_key=se%2Fcret"


def test_echo_query_decoded_echoes_the_decoded_query(upstream, certs):
    conn = https(upstream, certs)
    conn.request("GET", "/echo-query-decoded?app_key=se%2Fcret")
    resp = conn.getresponse()
    assert json.loads(resp.read())["error"]["message"] == "bad request: app_key=se/cret"
    assert resp.getheader("X-Echo") == "app_key=se/cret"


def test_gzip_echo_query_compresses_only_when_asked(upstream, certs):
    conn = https(upstream, certs)
    conn.request("GET", "/gzip-echo-query?app_key=abc", headers={"Accept-Encoding": "gzip, br"})
    resp = conn.getresponse()
    raw = resp.read()
    assert resp.status == 200
    assert resp.getheader("Content-Encoding") == "gzip"
    assert json.loads(gzip.decompress(raw))["error"]["message"] == "bad request: app_key=abc"
    conn.request("GET", "/gzip-echo-query?app_key=abc", headers={"Accept-Encoding": "identity"})
    resp = conn.getresponse()
    assert resp.getheader("Content-Encoding") is None
    assert b"app_key=abc" in resp.read()


def test_status_answers_the_requested_code(upstream, certs):
    conn = https(upstream, certs)
    conn.request("DELETE", "/status/503")
    resp = conn.getresponse()
    assert resp.status == 503
    assert json.loads(resp.read()) == {"status": 503}


@pytest.mark.python_upstream("a TCP reset from upstream.py: nginx answers 502 for it")
def test_reset_closes_the_connection_without_a_response(upstream, certs):
    conn = https(upstream, certs)
    conn.request("GET", "/reset")
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected, ssl.SSLError)):
        conn.getresponse()


def test_silent_never_answers(upstream, certs):
    upstream.clear_log()
    conn = https(upstream, certs, timeout=0.3)
    conn.request("GET", "/silent")
    with pytest.raises(TimeoutError):
        conn.getresponse()
    assert upstream.wait_requests(1)[0]["path"] == "/silent"
    conn.close()


def test_slow_body_logs_client_gone_when_the_client_leaves(upstream, certs):
    upstream.clear_log()
    conn = https(upstream, certs)
    conn.request("GET", "/slow-body?size=100000&delay_ms=20&piece=100")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Length") == "100000"
    assert resp.read(300) == pattern_bytes(300)
    conn.sock.close()
    conn.close()
    gone = wait_for(lambda: [e for e in upstream.events() if e["event"] == "client_gone"],
                    timeout=5, what="client_gone")
    assert gone[0]["path"] == "/slow-body"
    assert 300 <= gone[0]["sent"] < 100000


def test_unknown_path_is_404(upstream, certs):
    conn = https(upstream, certs)
    conn.request("GET", "/nope")
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 404


# -- tools/mock_api.py --------------------------------------------------------

def api_call(mock_api, certs, path, key=None, body=b"{}"):
    conn = https(mock_api, certs)
    target = path if key is None else "%s?app_key=%s" % (path, key)
    conn.request("POST", target, body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    return resp.status, json.loads(resp.read())


@pytest.mark.parametrize("key", [None, "broker-sentinel"])
def test_mock_api_refuses_a_missing_or_wrong_key(mock_api, certs, key):
    status, body = api_call(mock_api, certs, "/channel/list", key)
    assert status == 401
    assert body["error"] == {"code": "Unauthorized", "message": "invalid app_key"}
    assert body["request_id"] and "data" not in body


@pytest.mark.parametrize("path", ["/channel/list", "/incident/list", "/member/list"])
def test_mock_api_answers_data_with_the_valid_key(mock_api, certs, path):
    status, body = api_call(mock_api, certs, path, mock_api.key)
    assert status == 200
    assert body["data"]["total"] == len(body["data"]["items"]) > 0
    assert "error" not in body


def test_mock_api_unknown_path_is_404_in_the_envelope(mock_api, certs):
    status, body = api_call(mock_api, certs, "/nope/list", mock_api.key)
    assert status == 404
    assert body["error"]["code"] == "NotFound" and body["request_id"]


# -- tests/e2e/brokered.py against a fake broker ---------------------------------

class FakeBroker:
    """Answers dials like DESIGN.md section 1; each connection answers one
    HTTP request with 200 and the request head as the body."""

    def __init__(self, max_dials=100):
        self.ours, self.theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.max_dials = max_dials
        self.dials = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                msg, anc, _, _ = self.ours.recvmsg(16, socket.CMSG_SPACE(64))
            except OSError:
                return
            if not msg and not anc:
                return
            for _, _, data in anc:
                for fd in array.array("i", data):
                    os.close(fd)
            if msg != b"\x01" or anc or self.dials >= self.max_dials:
                self.ours.sendmsg([b"\xff"])
                continue
            self.dials += 1
            mine, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            self.ours.sendmsg([b"\x01"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                           array.array("i", [peer.fileno()]))])
            peer.close()
            threading.Thread(target=self._http, args=(mine,), daemon=True).start()

    @staticmethod
    def _http(sock):
        with sock:
            head = b""
            while b"\r\n\r\n" not in head:
                data = sock.recv(4096)
                if not data:
                    return
                head += data
            # Read the body too: answering before it arrives would break the client's send.
            head, _, body = head.partition(b"\r\n\r\n")
            head += b"\r\n\r\n"
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            while len(body) < length:
                data = sock.recv(4096)
                if not data:
                    return
                body += data
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(head), head))

    def close(self):
        self.theirs.close()
        self.ours.shutdown(socket.SHUT_RDWR)
        self.thread.join(5)
        self.ours.close()


@pytest.fixture
def fake_broker():
    broker = FakeBroker(max_dials=2)
    yield broker
    broker.close()


def test_brokered_connection_speaks_http_over_the_dialed_fd(fake_broker):
    conn = brokered.connection(ctl_fd=fake_broker.theirs.fileno())
    assert conn.sock.family == socket.AF_UNIX and conn.sock.type == socket.SOCK_STREAM
    conn.request("GET", "/x?app_key=sentinel")
    resp = conn.getresponse()
    head = resp.read()
    assert resp.status == 200
    assert head.startswith(b"GET /x?app_key=sentinel HTTP/1.1\r\n")
    assert b"Host: flashduty.broker.local\r\n" in head
    conn.close()


def test_brokered_dial_reads_the_fd_from_the_environment(fake_broker, monkeypatch):
    monkeypatch.setenv("FLASHDUTY_CRED_FD", str(fake_broker.theirs.fileno()))
    with brokered.dial() as s:
        assert s.type == socket.SOCK_STREAM
    assert fake_broker.theirs.fileno() >= 0  # the control fd itself stays open


def test_brokered_dial_raises_on_refusal(fake_broker):
    fd = fake_broker.theirs.fileno()
    brokered.dial(fd).close()
    brokered.dial(fd).close()
    with pytest.raises(brokered.BrokerRefused):
        brokered.dial(fd)


def test_brokered_raw_datagram_returns_the_reply(fake_broker):
    fd = fake_broker.theirs.fileno()
    assert brokered.raw_datagram(b"\x02", ctl_fd=fd) == b"\xff"
    assert brokered.raw_datagram(b"\x01\x01", ctl_fd=fd) == b"\xff"
    with open(os.devnull) as f:
        assert brokered.raw_datagram(b"\x01", fds=[f.fileno()], ctl_fd=fd) == b"\xff"
    assert brokered.raw_datagram(b"\x01", ctl_fd=fd) == b"\x01"


def test_brokered_dial_reports_a_closed_channel():
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with ours, theirs:
        ours.shutdown(socket.SHUT_RDWR)
        with pytest.raises(brokered.BrokerClosed):
            brokered.dial(theirs.fileno())


def test_brokered_works_in_a_child_process_that_inherits_the_fd(fake_broker):
    fd = fake_broker.theirs.fileno()
    code = ("import brokered\n"
            "status, _, body = brokered.request('POST', '/c?app_key=s', body=b'{}')\n"
            "print(status, body.split(b'\\r\\n')[0].decode())\n")
    env = make_child_env({"FLASHDUTY_CRED_FD": str(fd)})
    out = subprocess.run([PYTHON, "-c", code], env=env, pass_fds=[fd], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "200 POST /c?app_key=s HTTP/1.1\n"
