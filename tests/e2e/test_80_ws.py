"""src/runner/ws.c, the runner's WebSocket client, against a real peer.

tests/ws/ws_probe drives ws.c and prints one line per event ("open", "message <len>
<sha256>", "close <http_status> <close_code> <reason>", "freed"); tests/e2e/ws_peer.py
is the server, over ws:// and wss:// (test CA), well-behaved or not, chosen by path.

The probe comes from $WS_PROBE, else <build>/tests/ws/ws_probe; without one the tests
skip. Run the probe built with -fsanitize=address,undefined to check for leaks on
every path: a sanitizer report fails the test.
"""

import base64
import json
import os
import secrets
import time
from pathlib import Path

import pytest

from conftest import (PYTHON, E2E, REPO, MockPlatform, PeerProcess, RunnerProcess, make_certs,
                      run_process)
from ws_peer import pattern_sha256

TOKEN = "tok-5f1c9e0d7b3a4e21"  # stands for the runner's key: must never be printed
MIB = 1024 * 1024
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


@pytest.fixture(scope="session")
def ws_probe():
    env = os.environ.get("WS_PROBE")
    if env:
        path = Path(env)
    else:
        build = Path(os.environ.get("CREDBROKER_BUILD") or REPO / "build")
        path = (build if build.is_absolute() else REPO / build) / "tests" / "ws" / "ws_probe"
    if not os.access(path, os.X_OK):
        pytest.skip("ws_probe not found at %s: build it and/or set WS_PROBE" % path)
    return path


class WsPeer(PeerProcess):
    """tests/e2e/ws_peer.py; .base is ws://127.0.0.1:PORT or wss://..."""

    def __init__(self, workdir, name, certs=None):
        self.log_path = Path(workdir) / (name + ".log")
        self.log_path.touch()
        argv = [PYTHON, str(E2E / "ws_peer.py"), "--port", "0", "--log", str(self.log_path)]
        if certs is not None:
            argv += ["--cert", str(certs.dir), "--alias-host", "127.0.0.2"]
        else:
            argv += ["--alias-host", "::1"]
        super().__init__(argv, workdir, name)
        self.scheme = "wss" if certs is not None else "ws"

    def ws_url(self, path, host="127.0.0.1"):
        sep = "&" if "?" in path else "?"
        return "%s://%s:%d%s%stoken=%s" % (self.scheme, host, self.port, path, sep, TOKEN)

    def records(self):
        out = []
        for line in self.log_path.read_bytes().split(b"\n"):
            try:
                out.append(json.loads(line))
            except ValueError:  # empty, or being written
                pass
        return out

    def raw_done(self, path, since):
        """The raw mode's record for path, logged after `since` records."""
        for r in self.records()[since:]:
            if r.get("event") == "raw_done" and r["path"] == path:
                return r
        return None


@pytest.fixture(scope="module")
def ws_plain(tmp_path_factory):
    peer = WsPeer(tmp_path_factory.mktemp("ws_peer"), "ws_plain")
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def ws_tls(certs, tmp_path_factory):
    peer = WsPeer(tmp_path_factory.mktemp("ws_peer"), "ws_tls", certs)
    yield peer
    peer.stop()


@pytest.fixture(params=["ws", "wss"])
def peer(request, ws_plain, ws_tls):
    return ws_plain if request.param == "ws" else ws_tls


class Run:
    def __init__(self, rc, out, err, elapsed):
        self.rc, self.out, self.err, self.elapsed = rc, out, err, elapsed
        self.lines = out.splitlines()

    def close(self):
        """(http_status, close_code, reason) of the one close line."""
        closes = [line for line in self.lines if line.startswith("close ")]
        assert len(closes) == 1, self.out
        _, status, code, reason = closes[0].split(" ", 3)
        return int(status), int(code), reason

    def messages(self):
        return [tuple(line.split()[1:3]) for line in self.lines if line.startswith("message ")]


@pytest.fixture
def probe(ws_probe, certs):
    """probe(url, *args, cacert=True, timeout=60) -> Run; checks the exit code, that
    nothing printed the token, and that no sanitizer complained."""

    def run(url, *args, cacert=True, timeout=60, rc=0):
        argv = [str(ws_probe), url] + [str(a) for a in args]
        if cacert and url.startswith("wss:"):
            argv += ["--cacert", str(certs.ca)]
        start = time.monotonic()
        code, out, err = run_process(argv, timeout=timeout)
        result = Run(code, out, err, time.monotonic() - start)
        assert TOKEN not in out and TOKEN not in err, "the URL's query leaked:\n" + out + err
        for mark in SANITIZER_MARKS:
            assert mark not in err, err
        assert code == rc, "rc %d\nstdout:\n%s\nstderr:\n%s" % (code, out, err)
        return result

    return run


# -- messages -----------------------------------------------------------------

@pytest.mark.parametrize("size,count", [(0, 2), (1, 3), (125, 3), (126, 3), (65535, 3),
                                        (65536, 3), (MIB + 1, 3), (16 * MIB, 2)])
def test_ws_echo_round_trips_messages_of_every_length_encoding(probe, peer, size, count):
    run = probe(peer.ws_url("/echo"), "--send-size", size, "--count", count)
    assert run.lines[0] == "open"
    assert run.messages() == [(str(size), pattern_sha256(size, i)) for i in range(count)]
    assert run.close()[:2] == (0, 1000)  # we closed with 1000 and the peer answered


def test_ws_reassembles_a_fragmented_16_mib_message(probe, peer):
    run = probe(peer.ws_url("/bigsend"))  # 16 frames of 1 MiB
    assert run.messages() == [(str(16 * MIB), pattern_sha256(16 * MIB))]
    assert run.close()[:2] == (0, 1000)


@pytest.mark.parametrize("frag", [2 * MIB, 100_000], ids=["one-frame-over", "total-over"])
def test_ws_refuses_a_message_over_max_message(probe, ws_plain, frag):
    run = probe(ws_plain.ws_url("/bigsend?size=%d&frag=%d" % (2 * MIB, frag)),
                "--max-message", MIB)
    assert run.messages() == []
    status, code, reason = run.close()
    assert (status, code) == (0, 0)
    assert "message over %d bytes refused; close 1009 sent" % MIB in reason


# -- the handshake -------------------------------------------------------------

def test_ws_handshake_request_follows_rfc6455(probe, ws_plain):
    since = len(ws_plain.records())
    probe(ws_plain.ws_url("/echo?x=1"), "--count", 0, "--close-after", 0)
    probe(ws_plain.ws_url("/echo?x=2"), "--count", 0, "--close-after", 0)
    reqs = [r for r in ws_plain.records()[since:] if r.get("event") == "request"]
    assert [r["target"] for r in reqs] == ["/echo?x=1&token=" + TOKEN, "/echo?x=2&token=" + TOKEN]
    keys = []
    for r in reqs:
        h = {k.lower(): v for k, v in r["headers"]}
        assert len(h) == len(r["headers"])  # no header twice
        assert h["host"] == "127.0.0.1:%d" % ws_plain.port
        assert h["upgrade"] == "websocket"
        assert h["connection"] == "Upgrade"
        assert h["sec-websocket-version"] == "13"
        assert h["user-agent"] == "credbroker-runner"
        assert len(base64.b64decode(h["sec-websocket-key"], validate=True)) == 16
        keys.append(h["sec-websocket-key"])
    assert keys[0] != keys[1]


def test_ws_reports_the_http_status_of_a_refused_upgrade(probe, peer):
    run = probe(peer.ws_url("/reject401"))
    assert "open" not in run.lines
    status, code, reason = run.close()
    assert (status, code) == (401, 0)
    assert "401" in reason


def test_ws_refuses_a_wrong_sec_websocket_accept(probe, ws_plain, wait_for):
    since = len(ws_plain.records())
    run = probe(ws_plain.ws_url("/badaccept"))
    assert "open" not in run.lines
    status, code, reason = run.close()
    assert (status, code) == (0, 0)
    assert "Sec-WebSocket-Accept" in reason
    # Not a WebSocket connection: nothing was framed towards the server.
    done = wait_for(lambda: ws_plain.raw_done("/badaccept", since), what="raw_done")
    assert done["client_close"] == "none-received"


def test_ws_takes_upgrade_from_a_connection_list_and_refuses_a_101_without_it(probe, ws_plain,
                                                                               wait_for):
    # RFC 6455 4.1: the 101's Connection must hold the token "upgrade", as one element of
    # a comma list (RFC 9110 7.6.1) in any case.
    run = probe(ws_plain.ws_url("/connlist"))
    assert "open" in run.lines, run.lines
    assert run.close()[:2] == (0, 1000)  # the peer's close frame, after a valid 101
    run = probe(ws_plain.ws_url("/noupgrade"))
    assert "open" not in run.lines
    status, code, reason = run.close()
    assert (status, code) == (0, 0)
    assert "Connection" in reason, reason


def test_ws_reports_connection_refused(probe, tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    run = probe("ws://127.0.0.1:%d/echo?token=%s" % (port, TOKEN))
    assert run.close()[:2] == (0, 0)
    assert "connection refused" in run.close()[2]


def test_ws_connect_timeout_covers_the_tls_handshake(probe, ws_plain):
    """wss:// towards a plain server: our ClientHello gets no answer. The connect timeout
    ends it in the TLS handshake (net's line says so, with host and port only), after its
    500 ms (the timer waited) and before the default 10 s connect timeout could have
    fired: the option is what ended it. That is the ceiling; no figure closer to 500 ms,
    which a shared machine (and ASan) cannot promise for a whole probe run."""
    url = ws_plain.ws_url("/echo").replace("ws://", "wss://", 1)
    run = probe(url, "--connect-timeout", 500)
    assert run.close() == (0, 0, "connect to 127.0.0.1:%d timed out after 500 ms (TLS handshake)"
                           % ws_plain.port)
    assert 0.45 <= run.elapsed < 10, run.elapsed


@pytest.mark.parametrize("url", ["http://127.0.0.1/", "ws://user@127.0.0.1/", "ws://h/x#frag",
                                 "ws://h:65536/", "ws://h:/", "ws://h/a b", "ws://[::1/",
                                 "ws:///path", "ws://h\r\nX: y/"])
def test_ws_connect_refuses_a_bad_url(probe, url):
    run = probe(url, rc=2)
    assert run.lines == ["error -9030 bad URL"]


# -- TLS ----------------------------------------------------------------------

def test_wss_without_the_test_ca_is_refused(probe, ws_tls):
    run = probe(ws_tls.ws_url("/echo"), cacert=False)  # system CAs only
    assert "open" not in run.lines
    status, code, reason = run.close()
    assert (status, code) == (0, 0)
    assert reason == ("TLS handshake with 127.0.0.1:%d failed: certificate verify failed: "
                      "unable to get local issuer certificate" % ws_tls.port)


def test_wss_refuses_a_certificate_for_another_address(probe, ws_tls):
    # 127.0.0.2 reaches the same server, but the certificate names 127.0.0.1.
    run = probe(ws_tls.ws_url("/echo", host="127.0.0.2"))
    assert "open" not in run.lines
    assert "IP address mismatch" in run.close()[2]


def test_runner_log_names_why_the_platform_certificate_was_refused(credbroker, certs, tmp_path):
    """The runner against a wss:// platform whose certificate another CA signed: its log
    line says why (net's line: host, port and OpenSSL's verify result), and neither its
    log nor its stderr holds the token or the query. The same platform with the right CA
    connects: the CA made the difference."""
    for d in ("other-ca", "platform", "r0", "r1"):
        (tmp_path / d).mkdir()
    other = make_certs(tmp_path / "other-ca")
    with MockPlatform(tmp_path / "platform", token="rt-" + secrets.token_hex(16),
                      cert_dir=certs.dir) as p:
        r = RunnerProcess(credbroker, p, tmp_path / "r0", other.ca, wait_connected=False)
        line = r.wait_log("disconnected from the platform")
        assert line.endswith("(close code 0): TLS handshake with 127.0.0.1:%d failed: "
                             "certificate verify failed: unable to get local issuer "
                             'certificate"' % p.ws_port), line
        r.close()
        for text in (r.log(), r.stderr()):
            assert p.token not in text and "token=" not in text and "/runner/ws" not in text
        assert p.connections() == []  # no upgrade request reached the platform
        RunnerProcess(credbroker, p, tmp_path / "r1", certs.ca).close()  # waits until connected


def test_ws_connects_to_an_ipv6_literal(probe, ws_plain):
    since = len(ws_plain.records())
    run = probe(ws_plain.ws_url("/echo", host="[::1]"), "--send-size", 10, "--count", 1)
    if "connection refused" in run.out or "address family" in run.out:
        pytest.skip("no IPv6 loopback here: " + run.out.strip())
    assert run.messages() == [("10", pattern_sha256(10))]
    req = [r for r in ws_plain.records()[since:] if r.get("event") == "request"][0]
    assert ["Host", "[::1]:%d" % ws_plain.port] in req["headers"]


def test_wss_verifies_a_dns_name(probe, ws_tls):
    run = probe(ws_tls.ws_url("/echo", host="localhost"), "--send-size", 10, "--count", 1)
    assert run.messages() == [("10", pattern_sha256(10))]


# -- closing and dead links --------------------------------------------------------

def test_ws_reports_the_peer_close_code(probe, peer):
    run = probe(peer.ws_url("/close"))
    assert run.lines[0] == "open"
    status, code, reason = run.close()
    assert (status, code) == (0, 4001)
    assert "bye from ws_peer" in reason


def test_ws_read_timeout_ends_a_silent_link(probe, peer):
    """The read timeout (500 ms) ends a link that sends nothing, after its 500 ms (the
    timer waited) and before our first ping (every 20 s): the silence itself is found
    dead, not a ping left unanswered. No figure closer to 500 ms is asserted: a shared
    machine (and ASan) cannot promise one for a whole probe run."""
    run = probe(peer.ws_url("/silent"), "--read-timeout", 500)
    assert run.close() == (0, 0, "no traffic for 500 ms")
    assert 0.45 <= run.elapsed < 20, run.elapsed


def test_ws_pongs_keep_a_quiet_link_alive(probe, ws_plain):
    run = probe(ws_plain.ws_url("/silent"), "--ping", 100, "--read-timeout", 400,
                "--close-after", 1500)
    assert run.close()[:2] == (0, 1000)


def test_ws_close_gives_up_on_a_peer_that_never_answers(probe, ws_plain):
    """ws_close waits 5 s (WS_CLOSE_TIMEOUT_MS) for the peer's close frame, then drops the
    link: after those 5 s (the timer waited) and long before the read timeout (60 s),
    which shares the deadline timer and would print the same reason had ws_close not
    re-armed it. No figure closer to 5 s is asserted: a shared machine (and ASan) cannot
    promise one for a whole probe run."""
    run = probe(ws_plain.ws_url("/deaf"), "--close-after", 10, "--read-timeout", 60000)
    assert run.close() == (0, 0, "no close frame from peer within 5 s")
    assert 4.5 <= run.elapsed < 30, run.elapsed


def test_ws_reports_a_peer_reset(probe, ws_plain):
    run = probe(ws_plain.ws_url("/reset"))
    # When the RST comes in the same poll wake-up as the 101, libuv (uv__stream_io's
    # POLLHUP short-circuit after a partial read) reports EOF instead of ECONNRESET.
    assert run.close() in [(0, 0, "connection to 127.0.0.1:%d: connection reset by peer"
                            % ws_plain.port),
                           (0, 0, "connection closed by peer without a close frame")]


def test_ws_close_during_a_16_mib_send_completes(probe, ws_tls):
    # The close frame waits for the frame on the wire, then the exchange completes.
    run = probe(ws_tls.ws_url("/echo"), "--send-size", 16 * MIB, "--count", 1, "--close-after", 20)
    assert run.close()[:2] == (0, 1000)


# -- frames curl's lib/ws.c refuses (STYLE.md section 6) ------------------------------

@pytest.mark.parametrize("path,sent", [("/masked", 1002), ("/rsv", 1002), ("/opcode", 1002),
                                       ("/badcont", 1002), ("/badutf8", 1007),
                                       ("/bigping", None), ("/fragping", None)])
def test_ws_refuses_a_bad_frame_and_says_so(probe, ws_plain, wait_for, path, sent):
    since = len(ws_plain.records())
    run = probe(ws_plain.ws_url(path))
    assert run.lines[0] == "open"
    assert run.messages() == []
    status, code, reason = run.close()
    assert (status, code) == (0, 0)
    assert reason.startswith("protocol error from peer")
    # The refusal reached the server as a close frame (wslay's frame layer sends one
    # without a code for the malformed control frames).
    done = wait_for(lambda: ws_plain.raw_done(path, since), what="raw_done")
    assert done["client_close"] == sent


def test_wss_refuses_a_masked_frame(probe, ws_tls):
    run = probe(ws_tls.ws_url("/masked"))
    assert run.messages() == []
    assert "protocol error from peer" in run.close()[2]


# -- ws_free -------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ("--free-after", 0),                                              # resolving
    ("--free-on-message", 1, "--count", 3, "--send-size", 70000),     # inside on_message
    ("--free-after", 100, "--count", 1, "--send-size", 16 * MIB),     # mid 16 MiB send
], ids=["resolving", "in-on-message", "mid-send"])
def test_ws_free_is_safe_in_any_state(probe, ws_tls, args):
    run = probe(ws_tls.ws_url("/echo", host="localhost"), *args)
    assert run.lines[-1] == "freed"
    assert not any(line.startswith("close ") for line in run.lines)
