"""Layer 20: the brokered connection (DESIGN.md section 2) — strict request
parsing, the request rewrite, and response framing towards the child.

Most tests speak raw bytes over a brokered socket from the test process (the
command is children/held.py, which lends its fd 3); the upstream's log shows
what left the broker.
"""

import hashlib
import json
import os
import secrets
import time
import urllib.parse

import pytest

from children import rawhttp
from conftest import wait_for
from upstream import pattern_bytes


def header_values(record, name):
    return [v for k, v in record["headers"] if k.lower() == name.lower()]


def upstream_host(upstream):
    return "127.0.0.1:%d" % upstream.port


def raw(h):
    return rawhttp.RawConn(h.dial())


def exchange_one(h, data, method="GET"):
    """Sends data on a new brokered connection; returns (response, conn)."""
    c = raw(h)
    c.send(data)
    return c.response(method), c


def requests_until_marker(h, upstream):
    """Makes a marked request and returns the upstream's requests before it:
    proof of what did (not) reach the upstream up to now."""
    marker = secrets.token_hex(6)
    status, _, _ = h.request("GET", "/status/200?marker=" + marker)
    assert status == 200

    def logged():
        reqs = upstream.requests()
        for i, r in enumerate(reqs):
            if marker in r["query"]:
                return reqs[:i] or [None]
        return None

    return [r for r in wait_for(logged, what="the marker request upstream") if r is not None]


def assert_error_envelope(resp, key):
    assert resp.header("Content-Type") is None or "json" in resp.header("Content-Type")
    body = resp.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert key.encode() not in resp.body


# -- the authenticated call ---------------------------------------------------

def test_call_carries_exactly_one_key_and_the_upstream_host(run_exec, upstream, key_file):
    _, key = key_file
    upstream.clear_log()
    child = (
        "import brokered, json\n"
        "status, headers, body = brokered.request('GET',\n"
        "    '/echo?z=9&app_key=sentinel&a=1&app%5Fkey=x&m=%20two&app_key&a=2')\n"
        "print(json.dumps({'status': status, 'body': body.decode()}))\n")
    rc, out, err = run_exec([], child)
    assert rc == 0, err
    result = json.loads(out)
    assert result["status"] == 200
    [rec] = upstream.wait_requests(1)
    assert rec["path"] == "/echo"
    assert rec["query"] == "z=9&a=1&m=%20two&a=2&app_key=" + key
    params = urllib.parse.parse_qsl(rec["query"], keep_blank_values=True)
    assert [v for k, v in params if k == "app_key"] == [key]
    assert "sentinel" not in rec["raw_target"]
    assert header_values(rec, "Host") == [upstream_host(upstream)]
    # The echo carries the key back; the child sees it masked.
    assert key not in result["body"]
    assert "app_key=" + "*" * len(key) in result["body"]


def test_child_host_and_absolute_form_authority_are_ignored(held, upstream, key_file):
    _, key = key_file
    h = held()
    upstream.clear_log()
    resp, c = exchange_one(h, b"GET http://evil.example:8080/echo?q=1 HTTP/1.1\r\n"
                              b"Host: evil.example\r\n\r\n")
    assert resp.status == 200, resp
    [rec] = upstream.wait_requests(1)
    assert rec["raw_target"] == "/echo?q=1&app_key=" + key
    assert header_values(rec, "Host") == [upstream_host(upstream)]
    assert "evil.example" not in json.dumps(rec)


def test_upstream_base_path_prefixes_the_childs_path(held, upstream, key_file):
    _, key = key_file
    h = held(upstream_url=upstream.url + "/api/v2")
    upstream.clear_log()
    resp, c = exchange_one(h, rawhttp.request("GET", "/channel/list?a=1"))
    assert resp.status == 404, resp  # the test upstream has no /api/v2
    [rec] = upstream.wait_requests(1)
    assert rec["raw_target"] == "/api/v2/channel/list?a=1&app_key=" + key


def test_hop_by_hop_headers_are_dropped_and_others_kept(held, upstream):
    h = held()
    upstream.clear_log()
    data = rawhttp.request("GET", "/echo", headers=[
        ("Connection", "keep-alive, X-Custom-Hop"), ("X-Custom-Hop", "1"),
        ("Keep-Alive", "timeout=5"), ("Proxy-Authorization", "Basic eA=="),
        ("Proxy-Connection", "keep-alive"), ("TE", "trailers"), ("Trailer", "X-T"),
        ("X-Keep", "yes"), ("X-Keep-Too", "also")])
    resp, c = exchange_one(h, data)
    assert resp.status == 200, resp
    [rec] = upstream.wait_requests(1)
    names = [k.lower() for k, _ in rec["headers"]]
    for hop in ("x-custom-hop", "keep-alive", "proxy-authorization", "proxy-connection",
                "te", "trailer", "upgrade"):
        assert hop not in names, rec["headers"]
    assert not any("x-custom-hop" in v.lower() for v in header_values(rec, "Connection"))
    assert header_values(rec, "X-Keep") == ["yes"]
    assert header_values(rec, "X-Keep-Too") == ["also"]
    assert names.index("x-keep") < names.index("x-keep-too")


@pytest.mark.parametrize("mode,name,expected", [
    ("header:X-Api-Key", "X-Api-Key", "{key}"),
    ("bearer", "Authorization", "Bearer {key}"),
])
def test_header_inject_modes_set_the_key_and_drop_the_childs_copy(held, upstream, key_file,
                                                                   mode, name, expected):
    _, key = key_file
    h = held(["--inject", mode])
    upstream.clear_log()
    resp, c = exchange_one(h, rawhttp.request("GET", "/echo?x=1", headers=[
        (name.lower(), "childs-own-value"), ("X-Other", "kept")]))
    assert resp.status == 200, resp
    [rec] = upstream.wait_requests(1)
    assert header_values(rec, name) == [expected.format(key=key)]
    assert "childs-own-value" not in json.dumps(rec)
    assert rec["query"] == "x=1"  # no app_key added in header modes
    assert header_values(rec, "X-Other") == ["kept"]
    assert key.encode() not in resp.body


@pytest.mark.parametrize("target", ["/a/../echo", "/./echo", "/echo/.", "/echo/..", "/a/./echo"])
def test_dot_segments_in_the_path_are_refused(held, upstream, key_file, target):
    h = held()
    upstream.clear_log()
    resp, c = exchange_one(h, rawhttp.request("GET", target))
    assert resp.status == 400, resp
    assert_error_envelope(resp, key_file[1])
    assert c.closed()
    assert requests_until_marker(h, upstream) == []


# -- strict parsing -------------------------------------------------------------

H = b"Host: flashduty.broker.local\r\n"

REJECTED = [
    ("both-cl-and-te", b"POST /echo HTTP/1.1\r\n" + H +
     b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("differing-duplicate-cl", b"POST /echo HTTP/1.1\r\n" + H +
     b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
    ("non-numeric-cl", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 5x\r\n\r\nhello", 400),
    ("negative-cl", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", 400),
    ("te-xchunked", b"POST /echo HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400),
    ("te-chunked-not-final", b"POST /echo HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400),
    ("te-not-single-chunked", b"POST /echo HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400),
    ("te-identity", b"POST /echo HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: identity\r\n\r\n", 400),
    ("obs-fold", b"GET /echo HTTP/1.1\r\n" + H + b"X-A: one\r\n  folded\r\n\r\n", 400),
    ("bare-lf", b"GET /echo HTTP/1.1\r\n" + H + b"X-A: one\nX-B: two\r\n\r\n", 400),
    ("bare-lf-request-line", b"GET /echo HTTP/1.1\n" + H + b"\r\n", 400),
    ("bare-cr", b"GET /echo HTTP/1.1\r\n" + H + b"X-A: on\re\r\n\r\n", 400),
    ("nul-in-value", b"GET /echo HTTP/1.1\r\n" + H + b"X-A: on\x00e\r\n\r\n", 400),
    ("nul-in-target", b"GET /ec\x00ho HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("control-byte-in-value", b"GET /echo HTTP/1.1\r\n" + H + b"X-A: on\x01e\r\n\r\n", 400),
    ("space-in-header-name", b"GET /echo HTTP/1.1\r\n" + H + b"Bad Name: x\r\n\r\n", 400),
    ("space-before-colon", b"GET /echo HTTP/1.1\r\n" + H + b"X-A : x\r\n\r\n", 400),
    ("invalid-method-token", b"GE(T /echo HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("bad-version", b"GET /echo HTTP/2.7\r\n" + H + b"\r\n", (400, 505)),
    ("connect", b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n", 405),
    ("upgrade", b"GET /echo HTTP/1.1\r\n" + H +
     b"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 501),
    ("head-over-64k", b"GET /echo HTTP/1.1\r\n" + H + b"X-Big: " + b"a" * 70000 + b"\r\n\r\n",
     431),
    ("101-header-fields", b"GET /echo HTTP/1.1\r\n" + H +
     b"".join(b"X-H%d: %d\r\n" % (i, i) for i in range(100)) + b"\r\n", 431),
]


@pytest.mark.parametrize("data,status", [r[1:] for r in REJECTED], ids=[r[0] for r in REJECTED])
def test_malformed_request_gets_its_status_and_the_connection_closes(held, upstream, key_file,
                                                                      data, status):
    h = held()
    upstream.clear_log()
    c = raw(h)
    c.send(data)  # the broker may close before it has read everything
    resp = c.response()
    assert resp.status in (status if isinstance(status, tuple) else (status,)), resp
    assert_error_envelope(resp, key_file[1])
    assert c.closed(), "the broker kept the connection open after %d" % resp.status
    assert requests_until_marker(h, upstream) == []


def test_exactly_100_header_fields_are_accepted(held, upstream):
    # The test upstream (http.server) itself refuses over 100 fields, and the
    # broker adds its own; a policy that refuses everything shows that the
    # broker parsed the head (403, not 431) without involving the upstream.
    h = held(["--allow", "GET /nothing"])
    data = (b"GET /status/200 HTTP/1.1\r\n" + H +
            b"".join(b"X-H%d: %d\r\n" % (i, i) for i in range(99)) + b"\r\n")
    resp, c = exchange_one(h, data)
    assert resp.status == 403, resp


def test_body_over_max_body_is_413_and_at_the_limit_passes(held, upstream, key_file):
    h = held(["--max-body", "1000"])
    upstream.clear_log()
    resp, c = exchange_one(h, rawhttp.request("POST", "/upload", body=b"x" * 1001))
    assert resp.status == 413, resp
    assert_error_envelope(resp, key_file[1])
    assert c.closed()
    resp, c = exchange_one(h, rawhttp.request("POST", "/upload", headers=[
        ("Transfer-Encoding", "chunked")], body=rawhttp.chunked(b"y" * 1001, [600])))
    assert resp.status == 413, resp
    assert c.closed()
    body = os.urandom(1000)
    resp, c = exchange_one(h, rawhttp.request("POST", "/upload", body=body))
    assert resp.status == 200 and resp.body == body
    reqs = requests_until_marker(h, upstream)
    assert [r["body_len"] for r in reqs if r["path"] == "/upload"] == [1000]


def test_policy_miss_is_403_and_never_reaches_the_upstream(held, upstream, key_file):
    h = held(["--allow", "POST /channel/*"])
    upstream.clear_log()
    for method, target in (("GET", "/other"), ("GET", "/channel/list"), ("POST", "/other"),
                           ("POST", "/channelx/list")):
        resp, c = exchange_one(h, rawhttp.request(method, target, body=b"{}"))
        assert resp.status == 403, (method, target, resp)
        assert_error_envelope(resp, key_file[1])
        c.close()
    resp, c = exchange_one(h, rawhttp.request("POST", "/channel/list?app_key=s", body=b"{}"))
    assert resp.status == 404, resp  # the upstream's own answer: it got there
    reqs = wait_for(lambda: upstream.requests(), what="the allowed request upstream")
    assert [(r["method"], r["path"]) for r in reqs] == [("POST", "/channel/list")]


# -- connection handling and framing ------------------------------------------------------

def test_keep_alive_serves_several_requests_on_one_connection(held, upstream):
    h = held()
    upstream.clear_log()
    c = raw(h)
    body = os.urandom(5000)
    c.send(rawhttp.request("GET", "/echo?n=1"))
    assert c.response().status == 200
    c.send(rawhttp.request("POST", "/upload?n=2", body=body))
    r = c.response()
    assert r.status == 200 and r.body == body
    c.send(rawhttp.request("GET", "/status/204?n=3"))
    assert c.response().status == 204
    c.send(rawhttp.request("DELETE", "/status/503?n=4"))
    r = c.response()
    assert r.status == 503 and r.json() == {"status": 503}
    assert not c.closed(timeout=0.2)
    reqs = upstream.wait_requests(4)
    assert [r["query"].split("&")[0] for r in reqs] == ["n=1", "n=2", "n=3", "n=4"]


def test_each_request_goes_upstream_with_its_own_method_and_body(held, upstream):
    # The broker reuses libcurl handles between requests: nothing of one request's method
    # or body may carry over to the next (a GET after a POST, a GET after a HEAD).
    h = held()
    upstream.clear_log()
    c = raw(h)
    sequence = [("PUT", b"p" * 3000), ("HEAD", None), ("GET", None), ("POST", b"q" * 10),
                ("DELETE", None), ("PATCH", b"r" * 70000), ("GET", None), ("OPTIONS", None)]
    for i, (method, body) in enumerate(sequence):
        c.send(rawhttp.request(method, "/echo?n=%d" % i, body=body or b""))
        assert c.response(method).status == 200
    reqs = upstream.wait_requests(len(sequence))
    assert [(r["method"], r["body_len"]) for r in reqs] == \
        [(m, len(b) if b is not None else 0) for m, b in sequence]
    assert [r["query"].split("&")[0] for r in reqs] == ["n=%d" % i for i in range(len(sequence))]


def test_pipelined_requests_are_answered_in_order(held, upstream):
    h = held()
    a, b = os.urandom(70000), os.urandom(3000)
    c = raw(h)
    c.send(rawhttp.request("POST", "/upload?p=1", body=a) +
           rawhttp.request("GET", "/status/202?p=2") +
           rawhttp.request("POST", "/upload?p=3", headers=[("Transfer-Encoding", "chunked")],
                           body=rawhttp.chunked(b, [1, 1000])) +
           rawhttp.request("GET", "/status/201?p=4"))
    r1, r2, r3, r4 = (c.response() for _ in range(4))
    assert (r1.status, r1.body) == (200, a)
    assert r2.status == 202
    assert (r3.status, r3.body) == (200, b)
    assert r4.status == 201


@pytest.mark.parametrize("size", [262_145, 1_048_577])
@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_request_body_over_the_upload_buffer_arrives_whole(held, upstream, framing, size):
    # The broker buffers 256 KiB of a request body; the rest must follow once
    # libcurl has taken some, even when the child has nothing more to send.
    # Whether the last bytes wait in the broker or in the socket depends on
    # timing, so a few rounds.
    h = held()
    for attempt in range(5):
        upstream.clear_log()
        body = os.urandom(size)
        if framing == "length":
            data = rawhttp.request("POST", "/upload", body=body)
        else:
            data = rawhttp.request("POST", "/upload", headers=[("Transfer-Encoding", "chunked")],
                                   body=rawhttp.chunked(body, [1, 17, 65536, 100_000]))
        c = rawhttp.RawConn(h.dial(), timeout=5)
        c.send(data)
        try:
            resp = c.response()
        except TimeoutError:
            logged = upstream.requests()
            raise AssertionError("round %d: no response within 5 s; the upstream got %s of %d "
                                 "body bytes" % (attempt, [r["body_len"] for r in logged], size))
        assert resp.status == 200 and resp.body == body
        [rec] = upstream.wait_requests(1)
        assert rec["body_len"] == len(body) and rec["body_complete"]
        assert rec["body_sha256"] == hashlib.sha256(body).hexdigest()
        c.close()


def test_expect_100_continue_is_answered_before_the_body(held, upstream):
    h = held()
    body = os.urandom(20000)
    c = raw(h)
    c.send(rawhttp.request("POST", "/upload", headers=[
        ("Content-Length", str(len(body))), ("Expect", "100-continue")]))
    version, status, _, _ = c.head()
    assert status == 100, "expected 100 Continue before sending the body, got %d" % status
    c.send(body)
    r = c.response()
    assert r.status == 200 and r.body == body


def test_head_response_has_no_body(held, upstream):
    h = held()
    c = raw(h)
    c.send(rawhttp.request("HEAD", "/download?size=1000"))
    r = c.response("HEAD")
    assert r.status == 200
    assert r.header("Content-Length") in (None, "1000")
    assert r.header("Transfer-Encoding") is None or r.header("Content-Length") is None
    # No stray body bytes: the next response on the connection parses.
    c.send(rawhttp.request("GET", "/status/201"))
    assert c.response().status == 201


def test_response_with_known_length_keeps_content_length(held, upstream):
    h = held()
    size = 300_000
    resp, c = exchange_one(h, rawhttp.request("GET", "/download?size=%d" % size))
    assert resp.status == 200
    assert resp.framing == "length" and resp.header("Content-Length") == str(size)
    assert resp.body == pattern_bytes(size)


def test_response_of_unknown_length_is_chunked_to_an_http11_child(held, upstream):
    h = held()
    size = 200_000
    resp, c = exchange_one(h, rawhttp.request("GET", "/download?size=%d&chunked=1" % size))
    assert resp.status == 200
    assert resp.framing == "chunked", resp
    assert resp.body == pattern_bytes(size)
    c.send(rawhttp.request("GET", "/status/200"))
    assert c.response().status == 200


@pytest.mark.parametrize("chunked_upstream", [False, True])
def test_http10_request_gets_an_unchunked_response_and_the_connection_closes(held, upstream,
                                                                             chunked_upstream):
    h = held()
    size = 100_000
    target = "/download?size=%d%s" % (size, "&chunked=1" if chunked_upstream else "")
    resp, c = exchange_one(h, rawhttp.request("GET", target, version="HTTP/1.0", host=None))
    assert resp.status == 200
    assert resp.framing in ("length", "close"), resp
    assert resp.header("Transfer-Encoding") is None
    assert resp.body == pattern_bytes(size)
    assert c.closed()


def test_connection_close_from_the_child_closes_after_the_response(held, upstream):
    h = held()
    resp, c = exchange_one(h, rawhttp.request("GET", "/status/200",
                                              headers=[("Connection", "close")]))
    assert resp.status == 200
    assert c.closed()


def test_idle_and_slow_head_connections_are_closed_at_their_timeouts(held, upstream):
    h = held(["--idle-timeout", "1s", "--head-timeout", "1s"])
    idle = raw(h)
    idle.send(rawhttp.request("GET", "/status/200"))
    assert idle.response().status == 200
    partial = raw(h)
    partial.send(b"GET /status/200 HTTP/1.1\r\nHost: x\r\n")
    start = time.monotonic()
    assert idle.closed(timeout=10), "idle keep-alive connection still open"
    # The slow head may get a 408 before the close.
    partial.sock.settimeout(12)
    rest = b""
    while True:
        data = partial.sock.recv(65536)
        if not data:
            break
        rest += data
    assert rest == b"" or rest.split(b" ")[1] == b"408", rest
    # Cut by its own 1 s timer: not before it, and well before the default 10 s one.
    assert 0.9 <= time.monotonic() - start < 10
