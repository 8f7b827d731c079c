#!/usr/bin/python3
"""An HTTP/2 server over plain TCP (h2c with prior knowledge, RFC 9113 3.3), written with
python3-h2, for the unit tests of the broker's HTTP/2 connection
(tests/unit/test_h2conn.c). It listens on 127.0.0.1, prints its port as the first line
of stdout, and runs until killed.

What it does is chosen by the request path:
  /echo           once the request has ended: 200, a JSON object {"method", "scheme",
                  "authority", "path", "headers": [[name, value], ...] (the regular
                  fields, in order), "body_len", "body" (the body as latin-1 text)}
  /size/N         200 and N body bytes of the pattern byte[i] = i % 251, sent only as
                  the flow-control windows allow (a reader that does not read stalls it)
  /hold           no answer until a /goaway on the same connection
  /goaway         a GOAWAY(NO_ERROR) whose last_stream_id is this stream's id - 2, then
                  200 "held" on every held stream up to that id; this stream and any later
                  one are never answered (ignored, as a server that sent GOAWAY does)
  /rst            200, 1000 body bytes, then RST_STREAM(INTERNAL_ERROR)
  /refused        RST_STREAM(REFUSED_STREAM) at once
  /early          (a POST) 200 "early" with END_STREAM at once, without reading the body,
                  then RST_STREAM(NO_ERROR) (RFC 9113 8.1)
  /early-noreset  the same without the RST_STREAM
  /bighead        200 with 30 fields of 10 KiB (300 KiB of head)
  /manyheaders    200 with 600 small fields
  /stats          JSON {"max_open": the most streams seen open at once on one connection,
                  "connections": how many connections so far}
  anything else   404
--max-streams N sets SETTINGS_MAX_CONCURRENT_STREAMS to N (default: h2's 100).

Only the standard library and python3-h2 (with hpack and hyperframe) from Debian.
"""
import asyncio
import json
import os
import sys

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from hyperframe.frame import GoAwayFrame

PATTERN = bytes(range(251)) * 70  # > 251 + 16384: any window of a DATA frame
STATS = {"max_open": 0, "connections": 0}
MAX_STREAMS = None


class Peer(asyncio.Protocol):
    def __init__(self):
        cfg = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.conn = h2.connection.H2Connection(config=cfg)
        if MAX_STREAMS is not None:
            self.conn.local_settings = h2.settings.Settings(
                client=False,
                initial_values={
                    h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: MAX_STREAMS,
                    h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 65536,
                })
        self.transport = None
        self.requests = {}  # stream id -> (headers dict, ordered list)
        self.bodies = {}
        self.senders = {}  # stream id -> [total, offset]
        self.held = []
        self.goaway_last = None  # after our GOAWAY, later streams are ignored

    def connection_made(self, transport):
        self.transport = transport
        STATS["connections"] += 1
        self.conn.initiate_connection()
        # A large connection window, so bytes a reset stream still carried never stall
        # the others.
        self.conn.increment_flow_control_window(16 * 1024 * 1024)
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.transport.write(data)

    def data_received(self, data):
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.flush()
            self.transport.close()
            return
        STATS["max_open"] = max(STATS["max_open"], self.conn.open_inbound_streams)
        for ev in events:
            self.on_event(ev)
        self.pump()
        self.flush()

    def on_event(self, ev):
        if isinstance(ev, h2.events.RequestReceived):
            self.on_request(ev.stream_id, ev.headers)
        elif isinstance(ev, h2.events.DataReceived):
            path = self.requests.get(ev.stream_id, ({}, []))[0].get(b":path", b"")
            if path.startswith(b"/early"):
                return  # not read, not acknowledged: the client's window runs out
            self.bodies.setdefault(ev.stream_id, bytearray()).extend(ev.data)
            self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            self.on_request_end(ev.stream_id)
        elif isinstance(ev, h2.events.StreamReset):
            self.senders.pop(ev.stream_id, None)
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.transport.close()

    def respond(self, sid, status, body=b"", headers=()):
        hdrs = [(b":status", str(status).encode())] + list(headers)
        hdrs.append((b"content-length", str(len(body)).encode()))
        self.conn.send_headers(sid, hdrs, end_stream=not body)
        if body:
            self.senders[sid] = [body, len(body), 0]
            self.pump()

    def on_request(self, sid, headers):
        if self.goaway_last is not None and sid > self.goaway_last:
            return
        d = {}
        for name, value in headers:
            d.setdefault(name, value)
        self.requests[sid] = (d, headers)
        path = d.get(b":path", b"").split(b"?")[0]
        if path.startswith(b"/size/"):
            total = int(path[6:])
            self.conn.send_headers(sid, [(b":status", b"200"),
                                         (b"content-length", str(total).encode())],
                                   end_stream=total == 0)
            if total:
                self.senders[sid] = [None, total, 0]
        elif path == b"/hold":
            self.held.append(sid)
        elif path == b"/goaway":
            last = sid - 2
            self.goaway_last = last
            self.flush()  # what h2 queued goes first
            # Written by hand: h2 would refuse to send anything after its own GOAWAY.
            self.transport.write(GoAwayFrame(0, last_stream_id=last, error_code=0).serialize())
            for held in [h for h in self.held if h <= last]:
                self.respond(held, 200, b"held")
            self.held = [h for h in self.held if h > last]
        elif path == b"/rst":
            self.conn.send_headers(sid, [(b":status", b"200")])
            self.conn.send_data(sid, b"r" * 1000)
            self.conn.reset_stream(sid, 2)  # INTERNAL_ERROR
        elif path == b"/refused":
            self.conn.reset_stream(sid, 7)  # REFUSED_STREAM
        elif path.startswith(b"/early"):
            self.respond(sid, 200, b"early")
            if path == b"/early":
                self.conn.reset_stream(sid, 0)  # NO_ERROR
        elif path == b"/bighead":
            self.respond(sid, 200, b"big",
                         [(b"x-big-%02d" % i, b"a" * 10240) for i in range(30)])
        elif path == b"/manyheaders":
            self.respond(sid, 200, b"many", [(b"x-h-%d" % i, b"v") for i in range(600)])

    def on_request_end(self, sid):
        if self.goaway_last is not None and sid > self.goaway_last:
            return
        d, headers = self.requests.get(sid, ({}, []))
        path = d.get(b":path", b"").split(b"?")[0]
        if path == b"/echo":
            body = bytes(self.bodies.pop(sid, b""))
            doc = {
                "method": d.get(b":method", b"").decode("latin-1"),
                "scheme": d.get(b":scheme", b"").decode("latin-1"),
                "authority": d.get(b":authority", b"").decode("latin-1"),
                "path": d.get(b":path", b"").decode("latin-1"),
                "headers": [[n.decode("latin-1"), v.decode("latin-1")]
                            for n, v in headers if not n.startswith(b":")],
                "body_len": len(body),
                "body": body.decode("latin-1"),
            }
            self.respond(sid, 200, json.dumps(doc).encode(),
                         [(b"content-type", b"application/json")])
        elif path == b"/stats":
            self.respond(sid, 200, json.dumps(STATS).encode())
        elif path.startswith(b"/early") or path.startswith(b"/size/") or path in (
                b"/hold", b"/goaway", b"/rst", b"/refused", b"/bighead", b"/manyheaders"):
            pass
        else:
            self.respond(sid, 404, b"no such path")

    def pump(self):
        """Sends what the windows allow of every response body (None: the pattern)."""
        for sid, st in list(self.senders.items()):
            data, total, off = st
            while off < total:
                try:
                    window = self.conn.local_flow_control_window(sid)
                except h2.exceptions.StreamClosedError:
                    self.senders.pop(sid, None)
                    break
                n = min(window, self.conn.max_outbound_frame_size, total - off)
                if n <= 0:
                    break
                if data is None:
                    chunk = PATTERN[off % 251:off % 251 + n]
                else:
                    chunk = data[off:off + n]
                self.conn.send_data(sid, chunk, end_stream=off + n == total)
                off += n
            st[2] = off
            if off >= total:
                self.senders.pop(sid, None)


async def main():
    global MAX_STREAMS
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "--max-streams":
        MAX_STREAMS = int(args[1])
    loop = asyncio.get_running_loop()
    parent = os.getppid()

    def watch():
        # A test that crashed cannot kill us: go when our parent has gone.
        if os.getppid() != parent:
            os._exit(0)
        loop.call_later(0.5, watch)

    watch()
    server = await loop.create_server(Peer, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
