"""Client side of the broker's control channel, for child scripts in e2e tests.

A child started by `credbroker exec` imports this (the tests put tests/e2e on
PYTHONPATH) and reaches the API through brokered connections:

    import brokered
    conn = brokered.connection()            # http.client over a brokered fd
    conn.request("POST", "/channel/list?app_key=sentinel", body=b"{}")
    resp = conn.getresponse()

The wire format (DESIGN.md section 1): send the 1-byte datagram 0x01 on the
control socket (FLASHDUTY_CRED_FD); the reply is 0x01 with exactly one fd
(SCM_RIGHTS, a connected SOCK_STREAM unix socket) or 0xFF (refused).

Standard library only: this runs under whatever python the child uses.
"""

import array
import http.client
import os
import select
import socket
import threading

HOST = "flashduty.broker.local"
DIAL = b"\x01"
OK = b"\x01"
REFUSED = b"\xff"
MAX_FDS = 8  # room to notice a broker that sends more than the one fd it should

_lock = threading.Lock()  # one handshake at a time on the shared control socket


class BrokerRefused(ConnectionError):
    """The broker answered 0xFF: limit reached, invocation over, or bad request."""


class BrokerProtocolError(ConnectionError):
    """The broker's answer was not a well-formed reply."""


class BrokerClosed(BrokerProtocolError):
    """The control channel is shut down (the invocation is over)."""


def ctl_fd_from_env():
    value = os.environ.get("FLASHDUTY_CRED_FD")
    if value is None:
        raise BrokerProtocolError("FLASHDUTY_CRED_FD is not set: not running under a broker")
    try:
        return int(value)
    except ValueError:
        raise BrokerProtocolError("FLASHDUTY_CRED_FD is not a number: %r" % value)


def exchange(payload=DIAL, fds=(), ctl_fd=None, timeout=10.0):
    """Sends one datagram (with fds attached as SCM_RIGHTS if given) and
    returns (reply_bytes, received_fds). The caller owns received_fds.

    Raises BrokerClosed if the broker shut the channel down, and
    TimeoutError if no reply arrives within timeout seconds. The control fd
    itself is neither closed nor switched to non-blocking mode.
    """
    if ctl_fd is None:
        ctl_fd = ctl_fd_from_env()
    with _lock:
        # A dup, so closing our socket object leaves the inherited fd alone.
        ctl = socket.socket(fileno=os.dup(ctl_fd))
        try:
            anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
            try:
                ctl.sendmsg([payload], anc)
            except (BrokenPipeError, ConnectionResetError) as e:
                raise BrokerClosed("control channel closed by the broker (%s)" % e) from None
            r, _, _ = select.select([ctl], [], [], timeout)
            if not r:
                raise TimeoutError("no reply from the broker within %.1f s" % timeout)
            msg, ancdata, flags, _ = ctl.recvmsg(
                64, socket.CMSG_SPACE(MAX_FDS * array.array("i").itemsize),
                getattr(socket, "MSG_CMSG_CLOEXEC", 0))
        finally:
            ctl.close()
    received = []
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds_in = array.array("i")
            fds_in.frombytes(data[:len(data) - len(data) % fds_in.itemsize])
            received.extend(fds_in)
    if flags & socket.MSG_CTRUNC:
        _close_all(received)
        raise BrokerProtocolError("ancillary data truncated (broker sent too many fds)")
    if not msg and not received:
        raise BrokerClosed("control channel closed by the broker (EOF)")
    return msg, received


def raw_datagram(payload, fds=(), ctl_fd=None, timeout=10.0):
    """Sends an arbitrary datagram and returns the reply bytes; any fds the
    broker sent back are closed (use exchange() to keep them)."""
    msg, received = exchange(payload, fds, ctl_fd, timeout)
    _close_all(received)
    return msg


def dial(ctl_fd=None, timeout=10.0):
    """Performs the dial handshake and returns the brokered stream socket."""
    msg, received = exchange(DIAL, (), ctl_fd, timeout)
    if msg == REFUSED and not received:
        raise BrokerRefused("broker refused the dial (0xFF)")
    if msg != OK or len(received) != 1:
        _close_all(received)
        raise BrokerProtocolError("unexpected broker reply %r with %d fd(s)" % (msg, len(received)))
    return socket.socket(fileno=received[0])


class BrokeredHTTPConnection(http.client.HTTPConnection):
    """http.client.HTTPConnection whose connect() dials the broker instead of TCP.

    Reconnects (after the server closed a keep-alive connection, or after
    close()) dial again.
    """

    def __init__(self, host=HOST, timeout=30.0, ctl_fd=None):
        super().__init__(host, 80, timeout=timeout)
        self._ctl_fd = ctl_fd

    def connect(self):
        self.sock = dial(self._ctl_fd)
        if self.timeout is not None:
            self.sock.settimeout(self.timeout)


def connection(ctl_fd=None, timeout=30.0, host=HOST):
    """A BrokeredHTTPConnection already connected (its .sock is freshly dialed)."""
    conn = BrokeredHTTPConnection(host, timeout=timeout, ctl_fd=ctl_fd)
    conn.connect()
    return conn


def request(method, path, body=None, headers=None, ctl_fd=None, timeout=30.0):
    """One request on a fresh brokered connection: returns (status, headers, body).

    headers is the response's list of (name, value) pairs.
    """
    conn = connection(ctl_fd, timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.getheaders(), resp.read()
    finally:
        conn.close()


def _close_all(fds):
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
