"""The broker's HTTP/2 upstream client (issue 18: src/broker/upstream.c, h2conn*.c) end to
end, against a python3-h2 peer over TLS with ALPN h2 (tests/e2e/h2_upstream.py: its
docstring lists the endpoints and the log). The test process is the command's side: it
dials the held broker (children/held.py) and speaks HTTP/1.1 with http.client, several
connections at once, all multiplexed by the broker onto its pooled HTTP/2 connection(s).

Each test first makes one request alone, so the pool has one HTTP/2 connection whose
SETTINGS it knows (before that, it opens one connection per waiting request), and then
checks in the peer's log which connection and stream served what.
"""

import concurrent.futures
import contextlib
import hashlib
import http.client
import json
import secrets
import socket
import threading
from pathlib import Path

import pytest

from conftest import E2E, PYTHON, PeerProcess, read_json_lines, wait_for
from upstream import pattern_sha256

MiB = 1024 * 1024


class H2Upstream(PeerProcess):
    """tests/e2e/h2_upstream.py over TLS with the suite's certificates."""

    def __init__(self, certs, workdir, max_streams=None):
        self.log_path = Path(workdir) / "h2_upstream.log"
        self.log_path.touch()
        argv = [PYTHON, str(E2E / "h2_upstream.py"), "--port", "0", "--cert", str(certs.dir),
                "--log", str(self.log_path)]
        if max_streams is not None:
            argv += ["--max-streams", str(max_streams)]
        super().__init__(argv, workdir, "h2_upstream")

    def events(self, kind, **match):
        """The log's records of this kind whose fields equal match's, oldest first."""
        return [r for r in read_json_lines(self.log_path) if r["event"] == kind and
                all(r.get(k) == v for k, v in match.items())]


@pytest.fixture(scope="module")
def h2up(certs, tmp_path_factory):
    peer = H2Upstream(certs, tmp_path_factory.mktemp("h2up"))
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def h2up_one_stream(certs, tmp_path_factory):
    """The same peer advertising SETTINGS_MAX_CONCURRENT_STREAMS 1."""
    peer = H2Upstream(certs, tmp_path_factory.mktemp("h2up1"), max_streams=1)
    yield peer
    peer.stop()


def new_group():
    return secrets.token_hex(6)


def get(h, path, method="GET", body=None):
    """(status, body) of one request on a new brokered connection."""
    status, _, data = h.request(method, path, body=body)
    return status, data


def get_json(h, path):
    status, data = get(h, path)
    assert status == 200, (path, status, data[:300])
    return json.loads(data)


def warm_up(h):
    """One request alone: the pool's HTTP/2 connection. Returns the peer's conn number."""
    return get_json(h, "/ok")["conn"]


@contextlib.contextmanager
def released(h, group):
    """Releases group's held requests if the block fails, so their threads end at once."""
    try:
        yield
    except BaseException:
        try:
            get(h, "/release?group=%s&tag=cleanup" % group)
        except OSError:
            pass
        raise


def assert_broker_error(status, body, key):
    assert status == 502, body[:300]
    err = json.loads(body)["error"]
    assert err["code"] == "BadGateway", err
    assert err["message"].startswith("upstream unreachable: "), err
    assert key.encode() not in body
    return err["message"]


def test_goaway_streams_above_the_last_id_are_retried_on_a_new_connection(held, h2up):
    """Six requests held open on one connection; a seventh makes the peer send GOAWAY with
    the third one's id as last-stream-id and answer the first three. The other three and
    the seventh were not processed: the broker sends each once more, on a new connection,
    and every request gets its answer, each served exactly once."""
    h = held(upstream_url=h2up.url)
    first = warm_up(h)
    group = new_group()
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        held_calls = [pool.submit(get_json, h, "/hold?group=%s&tag=%d" % (group, i))
                      for i in range(6)]
        with released(h, group):
            wait_for(lambda: len(h2up.events("request", group=group)) == 6,
                     what="the six held requests at the peer")
            goaway = get_json(h, "/goaway?group=%s&keep=3&tag=goaway" % group)
        answers = [c.result(timeout=30) for c in held_calls]

    [ga] = h2up.events("goaway", conn=first)
    last = ga["last_stream_id"]
    requests = h2up.events("request", group=group)
    served = h2up.events("served", group=group)
    on_first = [r for r in requests if r["conn"] == first]
    # The six held ones and the GOAWAY's own request went out on the pooled connection.
    assert sorted(r["tag"] for r in on_first) == sorted([str(i) for i in range(6)] + ["goaway"])
    # Every request was served exactly once, with status 200...
    assert sorted(r["tag"] for r in served) == sorted(r["tag"] for r in on_first), served
    assert {r["status"] for r in served} == {200}
    # ...the first connection served exactly those at or below the last id (three)...
    kept = sorted(r["tag"] for r in on_first if r["stream"] <= last)
    assert len(kept) == 3
    assert sorted(r["tag"] for r in served if r["conn"] == first) == kept
    # ...and only the requests above it were sent again, each once, elsewhere.
    again = [r for r in requests if r["conn"] != first]
    assert sorted(r["tag"] for r in again) == sorted(r["tag"] for r in on_first
                                                     if r["stream"] > last)
    assert all(r["conn"] > first for r in again)
    # What the children read is what the peer says it served.
    by_tag = {r["tag"]: (r["conn"], r["stream"]) for r in served}
    assert [(a["conn"], a["stream"]) for a in answers] == [by_tag[str(i)] for i in range(6)]
    assert (goaway["conn"], goaway["stream"]) == by_tag["goaway"]
    # The broker is still usable afterwards.
    assert warm_up(h) != first


def test_a_reset_stream_fails_alone_while_its_neighbours_complete(held, h2up, key_file):
    """RST_STREAM(INTERNAL_ERROR) before the head is the broker's 502 JSON error; after the
    head the child's body is cut short (IncompleteRead); REFUSED_STREAM is retried. A held
    request and a 2 MiB download on the same connection, open across the resets, complete."""
    h = held(upstream_url=h2up.url)
    first = warm_up(h)
    group = new_group()
    size = 2 * MiB
    down = h.connection()
    down.request("GET", "/download?size=%d&tag=%s" % (size, group))
    down_resp = down.getresponse()
    assert down_resp.status == 200
    with concurrent.futures.ThreadPoolExecutor(1) as pool, released(h, group):
        hold = pool.submit(get_json, h, "/hold?group=%s&tag=hold" % group)
        wait_for(lambda: h2up.events("request", group=group, tag="hold"),
                 what="the held request at the peer")

        status, body = get(h, "/rst?at=head&group=%s&tag=head" % group)
        message = assert_broker_error(status, body, key_file[1])
        assert "stream reset by the upstream: INTERNAL_ERROR" in message, message

        cut = h.connection()
        cut.request("GET", "/rst?at=body&group=%s&tag=body" % group)
        resp = cut.getresponse()
        assert resp.status == 200
        with pytest.raises(http.client.IncompleteRead) as exc:
            resp.read()
        assert exc.value.partial == b"r" * len(exc.value.partial)
        assert len(exc.value.partial) <= 1000
        cut.close()

        assert get_json(h, "/refused?group=%s&tag=refused" % group)["conn"] > 0

        assert get_json(h, "/release?group=%s&tag=release" % group)["conn"] == first
        assert hold.result(timeout=30)["conn"] == first
    got = down_resp.read()
    down.close()
    assert hashlib.sha256(got).hexdigest() == pattern_sha256(size)

    requests = h2up.events("request", group=group)
    assert {r["conn"] for r in requests if r["tag"] != "refused"} == {first}, requests
    resets = h2up.events("reset", conn=first, by="us")
    streams = {r["tag"]: r["stream"] for r in requests if r["tag"] != "refused"}
    assert {(r["stream"], r["code"]) for r in resets} >= {(streams["head"], 2),
                                                          (streams["body"], 2)}
    refused = [r for r in requests if r["tag"] == "refused"]
    assert len(refused) == 2  # refused once, answered the second time
    assert (refused[0]["stream"], 7) in {(r["stream"], r["code"]) for r in resets}
    assert [r["tag"] for r in h2up.events("served", group=group, status=200)].count(
        "refused") == 1


def test_twenty_requests_through_a_one_stream_upstream_never_overlap(held, h2up_one_stream):
    """The upstream allows one stream at a time: twenty requests at once all succeed, one
    after another on the one connection the pool has (the limit holds for the origin:
    requests queue for a stream rather than open more connections), and it never has two
    streams open (the peer counts them; h2 would also refuse an extra stream as a
    protocol error)."""
    peer = h2up_one_stream
    h = held(upstream_url=peer.url)
    first = warm_up(h)
    group = new_group()
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda i: get_json(h, "/delay?ms=20&group=%s&tag=%d"
                                                   % (group, i)), range(20)))
    requests = peer.events("request", group=group)
    assert sorted(int(r["tag"]) for r in requests) == list(range(20))
    assert sorted(int(r["tag"]) for r in peer.events("served", group=group)) == list(range(20))
    assert {r["open"] for r in requests} == {1}
    conns = {a["conn"] for a in answers}
    assert conns == {first}, "%d connections" % len(conns)
    # The broker's connections close with it: each says how many streams it saw open.
    code, err = h.finish()
    assert code == 0, err
    closed = wait_for(lambda: [c for c in peer.events("closed") if c["conn"] in conns]
                      if len({c["conn"] for c in peer.events("closed")} & conns) == len(conns)
                      else None, what="the broker's upstream connections to close")
    assert {c["max_open"] for c in closed} == {1}, closed
    assert peer.events("protocol_error") == []


def test_a_slow_reader_does_not_hold_back_a_fast_one_on_the_same_connection(held, h2up):
    """Two 32 MiB downloads on one HTTP/2 connection: the fast reader gets all of its own
    while the slow one has read 64 KiB, and the peer could send the slow stream only what
    its window allowed (under 2 MiB). Then the slow one is read to its end, intact."""
    h = held(upstream_url=h2up.url)
    first = warm_up(h)
    group = new_group()
    size = 32 * MiB
    slow = h.connection()
    slow.request("GET", "/download?size=%d&group=%s&tag=slow" % (size, group))
    slow_resp = slow.getresponse()
    assert slow_resp.status == 200
    slow_head = slow_resp.read(64 * 1024)

    fast = h.connection()
    fast.request("GET", "/download?size=%d&group=%s&tag=fast" % (size, group))
    fast_resp = fast.getresponse()
    assert fast_resp.status == 200
    digest, got = hashlib.sha256(), 0
    while True:
        piece = fast_resp.read(256 * 1024)
        if not piece:
            break
        digest.update(piece)
        got += len(piece)
    fast.close()
    assert (got, digest.hexdigest()) == (size, pattern_sha256(size))
    assert len(slow_head) < 2 * MiB

    requests = h2up.events("request", group=group)
    assert {r["conn"] for r in requests} == {first}, requests
    [sent] = h2up.events("sent", conn=first, tag="fast")
    # The slow stream, unread, got no more than its window and the socket buffers.
    assert sent["others"]["slow"] < 2 * MiB, sent

    digest, got = hashlib.sha256(slow_head), len(slow_head)
    while True:
        piece = slow_resp.read(256 * 1024)
        if not piece:
            break
        digest.update(piece)
        got += len(piece)
    slow.close()
    assert (got, digest.hexdigest()) == (size, pattern_sha256(size))


@pytest.mark.parametrize("status,reset", [(413, 1), (200, 1), (413, 0)])
def test_an_early_answer_to_a_post_is_delivered_and_the_connection_stays_usable(
        held, h2up, status, reset):
    """The peer answers a 1 MB POST from its head alone (END_STREAM), never reading the
    body, with or without RST_STREAM(NO_ERROR) after it: the child, which sends its whole
    body before reading, gets that answer; the next request goes on the same connection."""
    h = held(upstream_url=h2up.url)
    first = warm_up(h)
    group = new_group()
    got_status, body = get(h, "/early?status=%d&reset=%d&group=%s" % (status, reset, group),
                           method="POST", body=b"x" * 1_000_000)
    assert (got_status, body) == (status, b"early")
    assert get_json(h, "/ok")["conn"] == first
    [req] = h2up.events("request", group=group)
    assert req["conn"] == first
    if not reset:
        # The broker ended the stream itself: it holds no slot of the connection.
        assert h2up.events("reset", conn=first, stream=req["stream"], by="client",
                           code=0), h2up.events("reset", conn=first)


@pytest.mark.parametrize("path,what", [("/bighead", "response head over 262144 bytes"),
                                       ("/manyheaders", "more than 500 header fields")])
def test_an_oversized_response_head_is_a_502_and_the_connection_lives_on(held, h2up,
                                                                        key_file, path, what):
    h = held(upstream_url=h2up.url)
    first = warm_up(h)
    status, body = get(h, path)
    message = assert_broker_error(status, body, key_file[1])
    assert what in message, message
    # HPACK stayed in step: the next request works, on the same connection.
    assert get_json(h, "/ok")["conn"] == first
    code, err = h.finish()
    assert code == 0, err


class Blackhole:
    """A TCP relay to a peer that can turn into a dead path: once frozen it forwards
    nothing either way and drops what the client sends, as a middlebox that forgot the
    connection would. It counts the client connections and the ones the client closed."""

    def __init__(self, port):
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.frozen = threading.Event()
        self.lock = threading.Lock()
        self.accepted = self.client_closed = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            with self.lock:
                self.accepted += 1
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src, dst, from_client):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                if from_client:
                    with self.lock:
                        self.client_closed += 1
                for s in (src, dst):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)
                return
            if not self.frozen.is_set():
                with contextlib.suppress(OSError):
                    dst.sendall(data)

    def close(self):
        self.listener.close()


def test_an_idle_connection_that_stopped_answering_is_let_go_by_its_ping(held, h2up):
    """The pool pings an idle HTTP/2 connection every connect timeout and closes one
    whose PING went unanswered: a connection on a path that went dead is dropped while
    idle, and the next request opens a new one instead of waiting out its head timeout."""
    hole = Blackhole(int(h2up.url.rsplit(":", 1)[1]))
    try:
        h = held(["--connect-timeout", "300ms"], upstream_url="https://127.0.0.1:%d" % hole.port)
        first = warm_up(h)
        assert (hole.accepted, hole.client_closed) == (1, 0)
        hole.frozen.set()
        wait_for(lambda: hole.client_closed == 1, timeout=15,
                 what="the broker to close the connection whose PING went unanswered")
        hole.frozen.clear()
        assert warm_up(h) != first
        assert (hole.accepted, hole.client_closed) == (2, 1)
    finally:
        hole.close()
