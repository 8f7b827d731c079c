#!/usr/bin/python3
"""The e2e suite's WebSocket server: the peer src/runner/ws.c talks to in test_80_ws.py.

    /usr/bin/python3 tests/e2e/ws_peer.py --port 0 --ready-file F [--cert DIR]
        [--alias-host ADDR]... [--log F]

Without --cert it serves ws://, with --cert (DIR from tools/gen-certs: server.pem,
server.key) wss://. Binds 127.0.0.1, and with --alias-host the same port on that
address too (127.0.0.2: an address the certificate does not carry; ::1: IPv6); an
alias that cannot be bound is skipped with a warning. Once listening, writes the port
to the ready file atomically. Stops on SIGTERM.

How: a raw asyncio front server reads each request head and logs it. Paths that need
a misbehaving server are answered by hand; every other path is proxied, bytes as
they are, to a websockets.serve() server on an internal port (TLS ends at the front).

Library modes (websockets 10.4, no keepalive pings, no compression, no size limit):
  /echo          echoes each message
  /reject401     the handshake is answered 401 (process_request)
  /silent        accepts and never sends anything
  /close         sends a close frame with code 4001 right after opening
  /bigsend[?size=N&frag=M]
                 sends one text message of N bytes (default 16 MiB) in frames of M
                 bytes (default 1 MiB), then closes with 1000

Raw modes (hand-made bytes after a correct 101, unless said otherwise):
  /badaccept     101 with a wrong Sec-WebSocket-Accept
  /connlist      101 with "Connection: keep-alive, Upgrade" (a list: valid), then a
                 close frame with 1000
  /noupgrade     101 with "Connection: keep-alive" (no upgrade token: invalid)
  /masked        a masked text frame (servers must not mask, RFC 6455 5.1)
  /rsv           a text frame with RSV1 set (no extension negotiated)
  /opcode        a frame with the reserved opcode 0x3
  /bigping       a ping with 126 bytes of payload (control frames: 125 at most)
  /fragping      a ping without FIN (control frames cannot be fragmented)
  /badcont       a continuation frame with no message to continue
  /badutf8       a text frame that is not UTF-8
  /reset         closes the connection with RST right after the 101
  /deaf          reads and never sends anything, not even an answer to a close frame

Log (JSON lines, appended):
  {"event": "request", "path", "target", "headers": [[name, value], ...]} for every
  request head, and for raw modes, once the client is gone:
  {"event": "raw_done", "path", "client_close": code | null | "none-received"}.

Message content: byte j of a /bigsend message is 'a' + j % 26 (pattern(n, 0)), the
same as ws_probe's message 0; pattern(n, i) is ws_probe's message i.
"""

import argparse
import asyncio
import base64
import hashlib
import json
import os
import signal
import socket
import ssl
import struct
import sys
import urllib.parse
from http import HTTPStatus

import websockets

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
ALPHABET = b"abcdefghijklmnopqrstuvwxyz"
HEAD_MAX = 16 * 1024
RAW_WAIT_S = 10


def pattern(n, i=0):
    """ws_probe's message i of n bytes: byte j is 'a' + (i + j) % 26."""
    start = i % 26
    rotated = ALPHABET[start:] + ALPHABET[:start]
    return (rotated * (n // 26 + 1))[:n]


def pattern_sha256(n, i=0):
    return hashlib.sha256(pattern(n, i)).hexdigest()


def accept_for(key):
    return base64.b64encode(hashlib.sha1(key.encode("latin-1") + GUID).digest()).decode()


class Log:
    def __init__(self, path):
        self.path = path

    def write(self, record):
        if not self.path:
            return
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


# -- library modes ----------------------------------------------------------------

async def lib_handler(websocket):
    url = urllib.parse.urlsplit(websocket.path)
    query = urllib.parse.parse_qs(url.query)
    if url.path == "/echo":
        async for message in websocket:
            await websocket.send(message)
    elif url.path == "/silent":
        await websocket.wait_closed()
    elif url.path == "/close":
        await websocket.close(code=4001, reason="bye from ws_peer")
    elif url.path == "/bigsend":
        size = int(query.get("size", [16 * 1024 * 1024])[0])
        frag = int(query.get("frag", [1024 * 1024])[0])
        text = pattern(size).decode()
        # An iterable makes websockets send one fragmented message, a frame per item.
        await websocket.send(text[off:off + frag] for off in range(0, max(size, 1), frag))
        await websocket.close(code=1000, reason="sent")
    else:
        await websocket.close(code=4004, reason="unknown path")


async def lib_process_request(path, request_headers):
    if urllib.parse.urlsplit(path).path == "/reject401":
        return HTTPStatus.UNAUTHORIZED, [("Content-Type", "text/plain")], b"no token\n"
    return None


# -- raw modes ----------------------------------------------------------------------

def frame(opcode, payload, fin=True, rsv=0, mask=None, length=None):
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload) if length is None else length
    mbit = 0x80 if mask is not None else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if mask is not None:
        payload = bytes(c ^ mask[k % 4] for k, c in enumerate(payload))
        head += mask
    return head + payload


RAW_FRAMES = {
    "/masked": frame(0x1, b"hello", mask=b"\x01\x02\x03\x04"),
    "/rsv": frame(0x1, b"hello", rsv=4),
    "/opcode": frame(0x3, b"hello"),
    "/bigping": frame(0x9, b"p" * 126),
    "/fragping": frame(0x9, b"", fin=False),
    "/badcont": frame(0x0, b"hello"),
    "/badutf8": frame(0x1, b"\xff\xfe"),
    "/connlist": frame(0x8, struct.pack("!H", 1000)),  # then closes at once: a valid run
}
RAW_PATHS = set(RAW_FRAMES) | {"/badaccept", "/noupgrade", "/reset", "/deaf"}
CONNECTION_HEADER = {"/connlist": "keep-alive, Upgrade", "/noupgrade": "keep-alive"}


def parse_client_close(data):
    """Walks the client's (masked) frames; returns the close code, None for a close
    frame without one, or "none-received"."""
    off = 0
    while off + 2 <= len(data):
        b0, b1 = data[off], data[off + 1]
        n = b1 & 0x7F
        off += 2
        if n == 126:
            if off + 2 > len(data):
                break
            n = struct.unpack("!H", data[off:off + 2])[0]
            off += 2
        elif n == 127:
            if off + 8 > len(data):
                break
            n = struct.unpack("!Q", data[off:off + 8])[0]
            off += 8
        mask = b"\0\0\0\0"
        if b1 & 0x80:
            mask = data[off:off + 4]
            off += 4
        payload = bytes(c ^ mask[k % 4] for k, c in enumerate(data[off:off + n]))
        off += n
        if b0 & 0x0F == 0x8:
            return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
    return "none-received"


async def read_until_gone(reader, wait_s):
    data = b""
    try:
        while len(data) < 1 << 20:
            chunk = await asyncio.wait_for(reader.read(65536), wait_s)
            if not chunk:
                break
            data += chunk
    except (asyncio.TimeoutError, ConnectionError, OSError):
        pass
    return data


async def raw_mode(path, headers, reader, writer, log):
    key = headers.get("sec-websocket-key", "")
    accept = accept_for(key + "x") if path == "/badaccept" else accept_for(key)
    connection = CONNECTION_HEADER.get(path, "Upgrade")
    writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  "Connection: %s\r\nSec-WebSocket-Accept: %s\r\n\r\n"
                  % (connection, accept)).encode())
    await writer.drain()
    if path == "/reset":
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        log.write({"event": "raw_done", "path": path, "client_close": None})
        return
    if path in RAW_FRAMES:
        writer.write(RAW_FRAMES[path])
        await writer.drain()
    data = await read_until_gone(reader, 60 if path == "/deaf" else RAW_WAIT_S)
    log.write({"event": "raw_done", "path": path, "client_close": parse_client_close(data)})


# -- the front --------------------------------------------------------------------

async def pipe(src, dst):
    try:
        while True:
            data = await src.read(65536)
            if not data:
                break
            dst.write(data)
            await dst.drain()
    except (ConnectionError, OSError):
        pass


async def proxy(head, reader, writer, backend_port):
    br, bw = await asyncio.open_connection("127.0.0.1", backend_port)
    bw.write(head)

    async def up():
        await pipe(reader, bw)
        # The client is gone or done sending: let the backend see it too.
        if bw.can_write_eof() and not bw.is_closing():
            bw.write_eof()

    async def down():
        await pipe(br, writer)
        # The backend closed: pass its close on to the client at once.
        writer.close()

    try:
        await asyncio.wait_for(asyncio.gather(up(), down()), 60)
    except (asyncio.TimeoutError, ConnectionError, OSError):
        pass
    finally:
        bw.close()


def parse_head(head):
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        if not line:
            break
        name, _, value = line.partition(":")
        headers.append([name, value.strip()])
    return method, target, headers


async def front(reader, writer, backend_port, log):
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), RAW_WAIT_S)
        if len(head) > HEAD_MAX:
            raise ValueError("head too large")
        _method, target, headers = parse_head(head)
        path = urllib.parse.urlsplit(target).path
        log.write({"event": "request", "path": path, "target": target, "headers": headers})
        if path in RAW_PATHS:
            await raw_mode(path, {k.lower(): v for k, v in headers}, reader, writer, log)
        else:
            await proxy(head, reader, writer, backend_port)
    except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
            ConnectionError, OSError, ValueError):
        pass
    finally:
        writer.close()


def write_ready_file(path, port):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, path)


async def serve(args):
    log = Log(args.log)
    tls = None
    if args.cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(os.path.join(args.cert, "server.pem"),
                            os.path.join(args.cert, "server.key"))
    backend = await websockets.serve(lib_handler, "127.0.0.1", 0,
                                     process_request=lib_process_request,
                                     ping_interval=None, max_size=None, compression=None)
    backend_port = backend.sockets[0].getsockname()[1]

    def handle(reader, writer):
        return front(reader, writer, backend_port, log)

    servers = [await asyncio.start_server(handle, "127.0.0.1", args.port, ssl=tls)]
    port = servers[0].sockets[0].getsockname()[1]
    for alias in args.alias_host:
        try:
            servers.append(await asyncio.start_server(handle, alias, port, ssl=tls))
        except OSError as e:  # e.g. no IPv6 here: tests that need it skip
            print("ws_peer: cannot listen on %s: %s" % (alias, e), file=sys.stderr)
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    if args.ready_file:
        write_ready_file(args.ready_file, port)
    await stop
    for s in servers:
        s.close()
    backend.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cert", help="directory with server.pem, server.key: serve wss://")
    ap.add_argument("--ready-file")
    ap.add_argument("--alias-host", action="append", default=[],
                    help="also listen on this address, same port (repeatable)")
    ap.add_argument("--log")
    args = ap.parse_args(argv)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
