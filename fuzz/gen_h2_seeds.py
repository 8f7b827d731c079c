#!/usr/bin/python3
"""Writes the seed corpus of fuzz_h2 (fuzz/corpus/h2/): valid server frame sequences,
made by python3-h2 playing the server against an h2 client that asked what the harness
asks (requests 1, 3, 5 in order), each behind the harness's 8 setting bytes and request
body (see the comment at the top of fuzz_h2.c).

    /usr/bin/python3 fuzz/gen_h2_seeds.py fuzz/corpus/h2

The output is deterministic; rerun it after changing a seed here and commit the files.
"""
import os
import sys

import h2.config
import h2.connection
import h2.settings
from hyperframe.frame import GoAwayFrame, PingFrame, RstStreamFrame

S = h2.settings.SettingCodes


def pair(nreq, methods=("GET", "GET", "GET"), max_streams=None):
    """A server that has read the client preface and nreq requests, its output cleared
    except its own SETTINGS and the ACK of ours."""
    cli = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    cli.local_settings = h2.settings.Settings(client=True, initial_values={
        S.ENABLE_PUSH: 0, S.INITIAL_WINDOW_SIZE: 262144, S.MAX_HEADER_LIST_SIZE: 262144})
    cli.initiate_connection()
    cli.increment_flow_control_window(16 * 1024 * 1024 - 65535)
    srv = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    if max_streams is not None:
        srv.local_settings = h2.settings.Settings(client=False, initial_values={
            S.MAX_CONCURRENT_STREAMS: max_streams})
    srv.initiate_connection()
    for i in range(nreq):
        sid = 1 + 2 * i
        m = methods[i]
        cli.send_headers(sid, [(":method", m), (":scheme", "https"),
                               (":authority", "api.example"), (":path", "/v1/x?app_key=k"),
                               ("accept", "*/*"), ("te", "trailers")],
                         end_stream=m in ("GET", "HEAD"))
    srv.receive_data(cli.data_to_send())
    return srv


def setting_bytes(nreq=1, bodies=0, known=False, free_in_done=False, close=False,
                  pause=0, read_pause=0, cancel=0xff, stall=0, ping=0, piece=6, body_len=0,
                  methods=(0, 0, 0)):
    b0 = ((nreq - 1) & 3) | (bodies << 2) | (0x20 if known else 0) | \
        (0x40 if free_in_done else 0) | (0x80 if close else 0)
    b7 = methods[0] | methods[1] << 2 | methods[2] << 4
    cancel = 3 if cancel == 0xff else cancel
    return bytes([b0, pause, read_pause, cancel, stall | ping << 4, piece, body_len, b7])


def resp(srv, sid, status=200, body=b"", headers=(), end=True, pad=0):
    srv.send_headers(sid, [(":status", str(status))] + list(headers), end_stream=not body and end)
    for off in range(0, len(body), 16000):
        last = off + 16000 >= len(body)
        srv.send_data(sid, body[off:off + 16000], end_stream=end and last,
                      pad_length=pad or None)


def seeds():
    out = {}

    srv = pair(1)
    resp(srv, 1, body=b"hello")
    out["get-200"] = setting_bytes() + srv.data_to_send()

    srv = pair(1)
    resp(srv, 1, body=b"x" * 40000, headers=[("content-type", "text/plain")])
    out["get-40k-paused"] = setting_bytes(pause=128, piece=10) + srv.data_to_send()

    srv = pair(3)
    srv.send_headers(3, [(":status", "200")])
    srv.send_headers(1, [(":status", "100")])
    srv.send_headers(1, [(":status", "204")], end_stream=True)
    srv.send_data(3, b"a" * 300, pad_length=20)
    srv.send_headers(5, [(":status", "404")])
    srv.send_data(5, b"nope", end_stream=True)
    srv.send_data(3, b"b" * 300)
    srv.send_headers(3, [("x-trailer", "1")], end_stream=True)
    out["three-interleaved-1xx-padding-trailers"] = setting_bytes(nreq=3, pause=60) + \
        srv.data_to_send()

    srv = pair(3)
    resp(srv, 1, body=b"one")
    srv.ping(b"12345678")
    data = srv.data_to_send()
    data += GoAwayFrame(0, last_stream_id=1, error_code=0).serialize()
    out["goaway-last-1"] = setting_bytes(nreq=3) + data

    srv = pair(2)
    srv.reset_stream(3, 7)
    resp(srv, 1, body=b"ok")
    out["rst-refused"] = setting_bytes(nreq=2) + srv.data_to_send()

    srv = pair(2)
    srv.send_headers(1, [(":status", "200")])
    srv.send_data(1, b"partial")
    srv.reset_stream(1, 2)
    resp(srv, 3, body=b"fine")
    out["rst-after-head"] = setting_bytes(nreq=2, cancel=1 | 0x80) + srv.data_to_send()

    srv = pair(1, methods=("POST",))
    resp(srv, 1, body=b"early")
    srv.reset_stream(1, 0)
    out["post-early-rst-no-error"] = setting_bytes(bodies=1, known=True, body_len=200,
                                                   read_pause=40, methods=(2, 0, 0)) + \
        bytes(range(200)) + srv.data_to_send()

    srv = pair(1, methods=("PUT",))
    resp(srv, 1, body=b"created", status=201)
    out["put-unknown-length"] = setting_bytes(bodies=1, body_len=100, methods=(3, 0, 0)) + \
        bytes(200 - i for i in range(100)) + srv.data_to_send()

    srv = pair(1, max_streams=1)  # stream 3 waits for stream 1 to end
    resp(srv, 1, body=b"z" * 20000)
    out["settings-max-streams-1"] = setting_bytes(nreq=2, stall=8) + srv.data_to_send()

    srv = pair(1)
    srv.send_headers(1, [(":status", "200")])
    data = srv.data_to_send()
    ack = PingFrame(0, opaque_data=b"\0" * 8, flags=["ACK"]).serialize()
    for i in range(8):
        srv.send_data(1, b"p" * 100, end_stream=i == 7)
        data += ack + srv.data_to_send()
    out["pings-acked"] = setting_bytes(ping=3, piece=7) + data

    srv = pair(1)
    resp(srv, 1, headers=[("x-h-%d" % i, "v") for i in range(501)])
    out["501-fields"] = setting_bytes() + srv.data_to_send()

    srv = pair(1, methods=("HEAD",))
    resp(srv, 1, headers=[("content-length", "10")])
    out["head-with-length"] = setting_bytes(methods=(1, 0, 0)) + srv.data_to_send()

    srv = pair(2)
    resp(srv, 1, body=b"first")
    resp(srv, 3, body=b"second")
    out["free-in-done"] = setting_bytes(nreq=2, free_in_done=True) + srv.data_to_send()

    srv = pair(2)
    srv.send_headers(1, [(":status", "200")])
    srv.send_data(1, b"q" * 5000)
    data = srv.data_to_send() + PingFrame(0, opaque_data=b"abcdefgh").serialize() + \
        RstStreamFrame(3, error_code=8).serialize()
    out["cancel-outside-then-close"] = setting_bytes(nreq=2, cancel=0 | 1 << 2, close=True) + data

    srv = pair(2)
    resp(srv, 1, body=b"whole")
    resp(srv, 3, body=b"other")
    out["cancel-inside-a-complete-response"] = setting_bytes(nreq=2, cancel=0x80, piece=14) + \
        srv.data_to_send()

    srv = pair(1)
    srv.send_headers(1, [(":status", "200"), ("content-length", "3")])
    srv.send_data(1, b"toolong", end_stream=True)
    out["content-length-mismatch"] = setting_bytes() + srv.data_to_send()
    return out


def main():
    d = sys.argv[1]
    os.makedirs(d, exist_ok=True)
    for name, data in seeds().items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
