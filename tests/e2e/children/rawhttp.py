"""Raw HTTP/1.x over a brokered stream socket, for tests that must control
every byte the broker receives (http.client would normalise them).

    c = RawConn(sock)
    c.send(b"GET /echo HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
    r = c.response()            # Response: status, headers, body, framing
    c.closed()                  # True once the broker has closed the connection
"""

import json
import socket


class Response:
    def __init__(self, version, status, reason, headers, body, framing):
        self.version = version    # b"HTTP/1.1"
        self.status = status      # int
        self.reason = reason
        self.headers = headers    # [(name, value)] as str, in order
        self.body = body          # bytes, de-chunked
        self.framing = framing    # "length" | "chunked" | "close" | "none"

    def header(self, name):
        values = self.all(name)
        return values[0] if values else None

    def all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %s %d %r %s body=%r>" % (self.version.decode(), self.status,
                                                    self.headers, self.framing, self.body[:300])


class RawConn:
    def __init__(self, sock, timeout=10.0):
        self.sock = sock
        self.sock.settimeout(timeout)
        self.buf = b""
        self.eof = False

    def send(self, data):
        """Sends data; returns False if the broker had already closed (EPIPE)."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def _fill(self):
        if self.eof:
            return False
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _line(self):
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise EOFError("connection closed mid-line; have %r" % self.buf[:200])
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError("connection closed after %d of %d body bytes" % (len(self.buf), n))
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def head(self):
        """Reads one response head: (version, status, reason, headers)."""
        while not self.buf and not self.eof:
            if not self._fill():
                break
        if not self.buf and self.eof:
            raise EOFError("connection closed before a response")
        status_line = self._line()
        version, _, rest = status_line.partition(b" ")
        code, _, reason = rest.partition(b" ")
        headers = []
        while True:
            line = self._line()
            if not line:
                break
            name, _, value = line.partition(b":")
            headers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
        return version, int(code), reason.decode("latin-1"), headers

    def response(self, method="GET", interim=False):
        """Reads one response. 1xx responses are skipped unless interim=True."""
        while True:
            version, status, reason, headers = self.head()
            if 100 <= status < 200 and not interim:
                continue
            break
        names = {k.lower(): v for k, v in headers}
        if method == "HEAD" or 100 <= status < 200 or status in (204, 304):
            return Response(version, status, reason, headers, b"", "none")
        te = names.get("transfer-encoding")
        if te is not None:
            assert te.lower() == "chunked", "unexpected Transfer-Encoding %r" % te
            body = b""
            while True:
                size = int(self._line().split(b";")[0].strip(), 16)
                if size == 0:
                    while self._line():
                        pass
                    return Response(version, status, reason, headers, body, "chunked")
                body += self._exact(size)
                assert self._line() == b"", "bad chunk end"
        if "content-length" in names:
            return Response(version, status, reason, headers,
                            self._exact(int(names["content-length"])), "length")
        while self._fill():
            pass
        body, self.buf = self.buf, b""
        return Response(version, status, reason, headers, body, "close")

    def closed(self, timeout=5.0):
        """True if the peer closes within timeout with nothing more to read
        (extra bytes make it False)."""
        if self.buf:
            return False
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        if data:
            self.buf += data
            return False
        self.eof = True
        return True

    def close(self):
        self.sock.close()


def request(method, target, headers=(), body=b"", version="HTTP/1.1", host="flashduty.broker.local"):
    """Bytes of a well-formed request; headers is a list of (name, value)."""
    lines = ["%s %s %s" % (method, target, version)]
    if host is not None:
        lines.append("Host: " + host)
    lines += ["%s: %s" % (k, v) for k, v in headers]
    if body and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in headers):
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(body, sizes):
    """body as chunked encoding, in pieces of the given sizes (rest at the end)."""
    out, pos = b"", 0
    for n in sizes:
        piece = body[pos:pos + n]
        if piece:
            out += b"%x\r\n%s\r\n" % (len(piece), piece)
        pos += n
    if pos < len(body):
        out += b"%x\r\n%s\r\n" % (len(body) - pos, body[pos:])
    return out + b"0\r\n\r\n"
