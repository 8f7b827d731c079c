#!/usr/bin/python3
"""An HTTP/2 upstream over TLS (ALPN "h2" only) for the e2e cases of the broker's HTTP/2
client (test_63_upstream_h2.py), written with Debian's python3-h2 on asyncio.

    /usr/bin/python3 tests/e2e/h2_upstream.py --port 0 --cert DIR --ready-file F \
        --log F [--max-streams N]

DIR holds server.pem and server.key (tools/gen-certs). Binds 127.0.0.1; once listening,
writes the port to the ready file (atomically). --max-streams N advertises
SETTINGS_MAX_CONCURRENT_STREAMS N (default: none, so h2's unlimited). A client that does
not pick h2 by ALPN is logged and dropped. Response bodies are sent only as the client's
stream and connection windows allow, and only while the TLS transport is below its
high-water mark, so a reader that does not read stalls its stream and nothing else.

Behaviour by path (the query's app_key, the broker's, is ignored and never logged;
"group" and "tag" name requests for the test):
  /ok                    200 JSON {"conn", "stream"} once the request has ended
  /download?size=N       200, content-length N, N bytes of upstream.pattern_bytes
  /delay?ms=D            200 JSON {"conn", "stream"} D ms after the request ended
  /hold?group=G          held unanswered until group G is released (by /release or
                         /goaway); once it is, answered at once (200 JSON)
  /release?group=G       answers every held request of G (on any connection), then 200
  /goaway?group=G&keep=K on this connection: GOAWAY(NO_ERROR) with last-stream-id the id
                         of its K-th held request of G (oldest first), then answers those
                         K; the later ones and this request are never answered here (the
                         client must retry them elsewhere); G counts as released from
                         then on, and a /goaway of G on a later connection is a plain 200
  /rst?at=head           RST_STREAM(INTERNAL_ERROR) before any head
  /rst?at=body           200 with content-length 100000, 1000 body bytes, then
                         RST_STREAM(INTERNAL_ERROR)
  /refused?group=G       RST_STREAM(REFUSED_STREAM) the first time for G, then 200
  /early?status=S[&reset=1]
                         on the request's head, without reading its body: S with the body
                         "early" and END_STREAM, then with reset=1 RST_STREAM(NO_ERROR)
                         (RFC 9113 8.1); the body is never acknowledged on the stream
                         (the connection window is handed back, so other streams go on)
  /bighead               200 with 30 fields of 10 KiB (300 KiB of head), body "big"
  /manyheaders           200 with 600 small fields, body "many"
  anything else          404

Log (--log, JSON lines appended, "conn" numbers connections from 1):
  {"event": "connection", "conn"}                  a connection began (after ALPN h2)
  {"event": "request", "conn", "stream", "path", "group", "tag", "open"}
                                                   a request's head arrived; open = the
                                                   client's streams open on conn then
  {"event": "served", "conn", "stream", "path", "group", "tag", "status"}
                                                   a response head was sent
  {"event": "sent", "conn", "stream", "tag", "bytes", "others": {tag: bytes sent}}
                                                   a /download body was sent whole; others
                                                   are the other downloads still sending
                                                   on the same connection at that moment
  {"event": "goaway", "conn", "last_stream_id"}
  {"event": "reset", "conn", "stream", "code", "by": "us" | "client"}
  {"event": "closed", "conn", "max_open", "streams"}
                                                   the connection ended: the most streams
                                                   seen open at once, how many it carried
  {"event": "protocol_error", "conn", "error"}      h2 refused what the client sent
  {"event": "no_h2", "alpn"}                       a client without ALPN h2
"""

import argparse
import asyncio
import json
import os
import signal
import ssl
import sys
import urllib.parse

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from hyperframe.frame import GoAwayFrame

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from upstream import pattern_bytes  # noqa: E402  (the suite's download pattern)

RST_BODY_SIZE = 100000  # /rst?at=body announces this, sends 1000


class Peer:
    """State shared by the connections: the log, groups, settings."""

    def __init__(self, log_path, max_streams):
        self.log_file = open(log_path, "a", buffering=1)
        self.max_streams = max_streams
        self.nconns = 0
        self.held = {}          # group -> [(Conn, stream id)]
        self.released = set()   # groups released (or gone away)
        self.refused = set()    # groups already refused once

    def log(self, **rec):
        self.log_file.write(json.dumps(rec) + "\n")


class Download:
    def __init__(self, tag, total):
        self.tag, self.total, self.off = tag, total, 0


class Conn(asyncio.Protocol):
    def __init__(self, peer):
        self.peer = peer
        self.id = None
        self.transport = None
        self.h2 = None
        self.requests = {}       # stream id -> (path, query dict)
        self.downloads = {}      # stream id -> Download
        self.early = set()       # streams whose body we do not read
        self.handled = set()     # streams answered or reset on their head alone
        self.goaway_last = None  # our GOAWAY's last-stream-id: later streams are ignored
        self.paused = False
        self.max_open = 0
        self.nstreams = 0

    # -- transport -------------------------------------------------------------

    def connection_made(self, transport):
        self.transport = transport
        alpn = transport.get_extra_info("ssl_object").selected_alpn_protocol()
        if alpn != "h2":
            self.peer.log(event="no_h2", alpn=alpn)
            transport.close()
            return
        self.peer.nconns += 1
        self.id = self.peer.nconns
        self.peer.log(event="connection", conn=self.id)
        cfg = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.h2 = h2.connection.H2Connection(config=cfg)
        if self.peer.max_streams is not None:
            self.h2.local_settings = h2.settings.Settings(
                client=False,
                initial_values={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS:
                                self.peer.max_streams})
        self.h2.initiate_connection()
        # Room for request bodies: streams we do not read never stall the others.
        self.h2.increment_flow_control_window(16 * 1024 * 1024)
        self.flush()

    def connection_lost(self, exc):
        if self.id is None:
            return
        self.peer.log(event="closed", conn=self.id, max_open=self.max_open,
                      streams=self.nstreams)
        for group, items in self.peer.held.items():
            self.peer.held[group] = [(c, s) for c, s in items if c is not self]

    def pause_writing(self):
        self.paused = True

    def resume_writing(self):
        self.paused = False
        self.pump()
        self.flush()

    def flush(self):
        if self.h2 is None or self.transport.is_closing():
            return
        data = self.h2.data_to_send()
        if data:
            self.transport.write(data)

    def data_received(self, data):
        if self.h2 is None:
            return
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            self.peer.log(event="protocol_error", conn=self.id, error=repr(e))
            self.flush()
            self.transport.close()
            return
        for ev in events:
            self.on_event(ev)
        self.pump()
        self.flush()

    # -- events ----------------------------------------------------------------

    def on_event(self, ev):
        if isinstance(ev, h2.events.RequestReceived):
            self.on_request(ev.stream_id, dict(ev.headers))
        elif isinstance(ev, h2.events.DataReceived):
            if ev.stream_id in self.early:
                # Not read: only the connection's window is handed back.
                if ev.flow_controlled_length:
                    self.h2.increment_flow_control_window(ev.flow_controlled_length)
            else:
                self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            self.on_request_end(ev.stream_id)
        elif isinstance(ev, h2.events.StreamReset):
            self.downloads.pop(ev.stream_id, None)
            self.peer.log(event="reset", conn=self.id, stream=ev.stream_id,
                          code=int(ev.error_code), by="client" if ev.remote_reset else "us")
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.transport.close()

    def ignored(self, sid):
        return self.goaway_last is not None and sid > self.goaway_last

    def on_request(self, sid, headers):
        target = headers.get(b":path", b"").decode("latin-1")
        path, _, query = target.partition("?")
        q = dict(urllib.parse.parse_qsl(query))
        q.pop("app_key", None)
        self.requests[sid] = (path, q)
        self.nstreams += 1
        opened = self.h2.open_inbound_streams
        self.max_open = max(self.max_open, opened)
        self.peer.log(event="request", conn=self.id, stream=sid, path=path,
                      group=q.get("group"), tag=q.get("tag"), open=opened)
        if self.ignored(sid):
            return
        if path in ("/early", "/rst") or (path == "/refused" and
                                          q.get("group") not in self.peer.refused):
            self.handled.add(sid)
        if path == "/early":
            self.early.add(sid)
            self.respond(sid, int(q.get("status", "200")), b"early")
            if q.get("reset") == "1":
                self.reset(sid, h2.errors.ErrorCodes.NO_ERROR)
        elif path == "/rst":
            if q.get("at") == "body":
                self.send_head(sid, 200, [(b"content-length", b"%d" % RST_BODY_SIZE)])
                self.h2.send_data(sid, b"r" * 1000)
            self.reset(sid, h2.errors.ErrorCodes.INTERNAL_ERROR)
        elif path == "/refused" and q.get("group") not in self.peer.refused:
            self.peer.refused.add(q.get("group"))
            self.reset(sid, h2.errors.ErrorCodes.REFUSED_STREAM)

    def on_request_end(self, sid):
        if sid not in self.requests or self.ignored(sid) or sid in self.handled:
            return
        path, q = self.requests[sid]
        group = q.get("group")
        if path in ("/ok", "/refused"):
            self.respond_json(sid)
        elif path == "/delay":
            asyncio.get_running_loop().call_later(int(q.get("ms", "0")) / 1000.0,
                                                  self.respond_later, sid)
        elif path == "/download":
            size = int(q.get("size", "0"))
            self.send_head(sid, 200, [(b"content-length", b"%d" % size)], end=size == 0)
            if size:
                self.downloads[sid] = Download(q.get("tag"), size)
        elif path == "/hold":
            if group in self.peer.released:
                self.respond_json(sid)
            else:
                self.peer.held.setdefault(group, []).append((self, sid))
        elif path == "/release":
            self.peer.released.add(group)
            for conn, held in self.peer.held.pop(group, []):
                conn.respond_later(held)
            self.respond_json(sid)
        elif path == "/goaway":
            if group in self.peer.released:
                self.respond_json(sid)
            else:
                self.go_away(sid, group, int(q.get("keep", "0")))
        elif path == "/bighead":
            self.respond(sid, 200, b"big", [(b"x-big-%02d" % i, b"a" * 10240)
                                            for i in range(30)])
        elif path == "/manyheaders":
            self.respond(sid, 200, b"many", [(b"x-h-%d" % i, b"v") for i in range(600)])
        else:
            self.respond(sid, 404, b"no such path")

    def go_away(self, sid, group, keep):
        mine = sorted(s for c, s in self.peer.held.get(group, []) if c is self)
        last = mine[keep - 1] if keep > 0 else 0
        self.peer.released.add(group)
        self.goaway_last = last
        self.flush()  # what h2 has queued goes first
        # Written by hand: h2 sends nothing more once it has sent a GOAWAY itself.
        self.transport.write(GoAwayFrame(0, last_stream_id=last, error_code=0).serialize())
        self.peer.log(event="goaway", conn=self.id, last_stream_id=last)
        rest = []
        for c, s in self.peer.held.pop(group, []):
            if c is self and s <= last:
                self.respond_json(s)
            elif c is not self:
                rest.append((c, s))
        if rest:
            self.peer.held[group] = rest

    # -- responses -------------------------------------------------------------

    def log_served(self, sid, status):
        path, q = self.requests.get(sid, ("", {}))
        self.peer.log(event="served", conn=self.id, stream=sid, path=path,
                      group=q.get("group"), tag=q.get("tag"), status=status)

    def send_head(self, sid, status, headers=(), end=False):
        self.h2.send_headers(sid, [(b":status", b"%d" % status)] + list(headers),
                             end_stream=end)
        self.log_served(sid, status)

    def respond(self, sid, status, body, headers=()):
        self.send_head(sid, status, list(headers) + [(b"content-length", b"%d" % len(body))])
        self.h2.send_data(sid, body, end_stream=True)  # small: within any window

    def respond_json(self, sid):
        self.respond(sid, 200, json.dumps({"conn": self.id, "stream": sid}).encode(),
                     [(b"content-type", b"application/json")])

    def respond_later(self, sid):
        """Answers sid from outside data_received (a timer, another connection)."""
        if self.transport.is_closing():
            return
        try:
            self.respond_json(sid)
        except h2.exceptions.StreamClosedError:
            return  # the client gave up on it meanwhile
        self.flush()

    def reset(self, sid, code):
        self.h2.reset_stream(sid, code)
        self.peer.log(event="reset", conn=self.id, stream=sid, code=int(code), by="us")

    def pump(self):
        """Sends of each download what the windows and the transport allow."""
        for sid, d in list(self.downloads.items()):
            while d.off < d.total and not self.paused:
                try:
                    window = self.h2.local_flow_control_window(sid)
                except (h2.exceptions.StreamClosedError, KeyError):
                    del self.downloads[sid]
                    break
                n = min(window, self.h2.max_outbound_frame_size, d.total - d.off)
                if n <= 0:
                    break
                self.h2.send_data(sid, pattern_bytes(n, d.off), end_stream=d.off + n == d.total)
                d.off += n
                self.flush()
            if d.off == d.total and sid in self.downloads:
                del self.downloads[sid]
                self.peer.log(event="sent", conn=self.id, stream=sid, tag=d.tag, bytes=d.total,
                              others={o.tag: o.off for o in self.downloads.values()})


def write_ready_file(path, port):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, path)


async def serve(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(args.cert, "server.pem"),
                        os.path.join(args.cert, "server.key"))
    ctx.set_alpn_protocols(["h2"])
    peer = Peer(args.log, args.max_streams)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set_result, None)
    server = await loop.create_server(lambda: Conn(peer), "127.0.0.1", args.port, ssl=ctx)
    write_ready_file(args.ready_file, server.sockets[0].getsockname()[1])
    await stop
    server.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cert", required=True, help="directory with server.pem, server.key")
    ap.add_argument("--ready-file", required=True)
    ap.add_argument("--log", required=True, help="JSON-lines log")
    ap.add_argument("--max-streams", type=int, default=None)
    asyncio.run(serve(ap.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
