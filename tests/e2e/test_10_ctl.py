"""Layer 10: the control channel at fd 3 (DESIGN.md section 1).

The test process borrows the command's fd 3 (children/held.py) and speaks
the datagram protocol itself; the concurrency test runs its threads in a real
child (children/uploads.py).
"""

import json
import os
import select
import socket
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

import brokered
from conftest import PYTHON, make_child_env, run_process

CHILDREN = Path(__file__).resolve().parent / "children"


def assert_dial_works(h):
    with h.dial() as s:
        assert s.family == socket.AF_UNIX
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_STREAM
    status, _, _ = h.request("GET", "/status/200")
    assert status == 200


def test_dial_is_answered_with_ok_and_exactly_one_stream_socket(held):
    h = held()
    msg, fds = h.exchange(b"\x01")
    try:
        assert msg == b"\x01"
        assert len(fds) == 1
        s = socket.socket(fileno=os.dup(fds[0]))
        with s:
            assert s.family == socket.AF_UNIX
            assert s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_STREAM
    finally:
        for fd in fds:
            os.close(fd)


def test_the_command_sees_the_channel_at_fd_3_with_the_placeholder_url(held):
    h = held()
    env = h.info["env"]
    assert env["FLASHDUTY_CRED_FD"] == "3"
    assert env["FLASHDUTY_BASE_URL"] == "http://flashduty.broker.local"
    s = socket.socket(fileno=os.dup(h.ctl_fd))
    with s:
        assert s.family == socket.AF_UNIX
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_SEQPACKET


MALFORMED = [
    ("empty", b""),
    ("dial-byte-twice", b"\x01\x01"),
    ("zero-byte", b"\x00"),
    ("byte-02", b"\x02"),
    ("byte-ff", b"\xff"),
    ("dial-then-nul", b"\x01\x00"),
    ("64-bytes", b"\x01" * 64),
    ("65536-bytes", b"\x01" * 65536),
]


@pytest.mark.parametrize("payload", [m[1] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_datagram_is_refused_and_a_later_dial_still_works(held, payload):
    h = held()
    msg, fds = h.exchange(payload)
    for fd in fds:
        os.close(fd)
    assert (msg, len(fds)) == (b"\xff", 0)
    assert_dial_works(h)


def test_several_malformed_datagrams_in_a_row_get_one_refusal_each(held):
    h = held()
    for payload in (b"\x02", b"", b"\x01\x01", b"\x7f" * 10):
        assert h.raw_datagram(payload) == b"\xff"
    assert_dial_works(h)


def test_dial_with_an_attached_fd_is_refused_and_the_fd_closed(held):
    h = held()
    mine, attached = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with mine:
        msg, fds = h.exchange(b"\x01", fds=[attached.fileno()])
        attached.close()
        for fd in fds:
            os.close(fd)
        assert (msg, len(fds)) == (b"\xff", 0)
        # Our copy is closed, so EOF here means the broker closed its copy too.
        r, _, _ = select.select([mine], [], [], 5)
        assert r, "the broker kept the fd that came with the refused datagram"
        assert mine.recv(1) == b""
    assert_dial_works(h)


def test_dials_over_max_conns_wait_for_a_free_slot(held):
    h = held(["--max-conns", "3"])
    live = [h.dial() for _ in range(3)]
    try:
        waiter = {}

        def dial_in_background():
            try:
                waiter["sock"] = h.dial(timeout=30)
            except Exception as e:
                waiter["error"] = e

        t = threading.Thread(target=dial_in_background)
        t.start()
        # Neither refused nor answered while all three are open...
        t.join(0.3)
        assert t.is_alive() and not waiter, waiter
        live.pop().close()
        # ...and answered with a connection once one of them closed.
        t.join(10)
        assert not t.is_alive() and "sock" in waiter, waiter
        live.append(waiter["sock"])
        with live[-1]:
            pass
    finally:
        for s in live:
            s.close()


def test_a_dial_that_waits_longer_than_dial_wait_is_refused(held):
    h = held(["--max-conns", "1", "--dial-wait", "300ms"])
    with h.dial():
        started = time.monotonic()
        with pytest.raises(brokered.BrokerRefused):
            h.dial()
        assert time.monotonic() - started >= 0.25  # it did wait
    with h.dial():  # the slot is free again
        pass
    rc, err = h.finish()
    assert rc == 0
    assert "dial refused: it waited too long" in err and "exec" in err


def test_dials_over_dial_rate_are_paced_not_refused(held):
    h = held(["--dial-rate", "20"])
    answered = []
    started = time.monotonic()
    for _ in range(40):
        h.dial().close()
        answered.append(time.monotonic() - started)
    # A burst of 20, then 20 a second: the last ones came later, none was refused, and no
    # second saw more than the rate plus the burst.
    assert answered[-1] >= 0.8, answered
    for t in answered:
        assert sum(1 for u in answered if t <= u < t + 1.0) <= 40 + 1


def test_64_concurrent_connections_upload_without_loss_or_interleaving(exec_argv, upstream,
                                                                       key_file):
    _, key = key_file
    threads, per, max_size = 64, 50, 256 * 1024
    upstream.clear_log()
    argv = exec_argv([], child=[PYTHON, CHILDREN / "uploads.py", threads, per, max_size])
    rc, out, err = run_process(argv, timeout=120, env=make_child_env())
    assert rc == 0, err
    report = json.loads(out)
    assert report["nerrors"] == 0, report["errors"]
    sent = report["results"]
    assert len(sent) == threads * per
    assert {tuple(v) for k, v in sent.items() if k in ("0/0", "0/1")} == {
        (1, sent["0/0"][1]), (max_size, sent["0/1"][1])}
    got = {}
    for rec in upstream.requests():
        if rec["path"] != "/upload":
            continue
        params = urllib.parse.parse_qsl(rec["query"])
        assert [v for k, v in params if k == "app_key"] == [key]
        d = dict(params)
        got.setdefault("%s/%s" % (d["t"], d["i"]), []).append(
            [rec["body_len"], rec["body_sha256"]])
    assert sorted(got) == sorted(sent)
    mismatched = [k for k in sent if got[k] != [sent[k]]]
    assert not mismatched, "%d bodies differ upstream, e.g. %s: sent %s, upstream %s" % (
        len(mismatched), mismatched[0], sent[mismatched[0]], got[mismatched[0]])
