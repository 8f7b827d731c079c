"""The upstream side (DESIGN.md section 3): HTTP/2 by ALPN, one pool shared by
the connections of an invocation, and HTTPS_PROXY honoured for egress.

The HTTP/2 peer is Debian's nginx (Python's standard library has no HTTP/2
server); the proxy is a small CONNECT tunnel written here that records what it
was asked to reach.
"""

import concurrent.futures
import json
import os
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from children import rawhttp
from conftest import (download_slowly_at_once, make_child_env, run_process, wait_for,
                      write_key_file)
from upstream import pattern_bytes, pattern_sha256

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
H2_KEY = "h2-test-key-0123456789abcdef"
WRONG_KEY = "wrong-key-0123456789abcdef"  # nginx answers 401 to it
BLOB_SIZE = 20 * 1024 * 1024 + 11         # nginx serves it as /blob.bin

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
{user}
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    map $arg_app_key $key_ok {{ "{app_key}" yes; default no; }}
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location /whoami {{
            default_type application/json;
            return 200 '{{"protocol":"$server_protocol","connection":"$connection","key_ok":"$key_ok","app_key":"$arg_app_key"}}';
        }}
        location = /blob.bin {{
            root {prefix};
        }}
        location /keyed {{
            default_type application/json;
            if ($key_ok = no) {{ return 401 '{{"error":"bad key"}}'; }}
            return 200 '{{"ok":true}}';
        }}
    }}
}}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def nginx_h2(certs, tmp_path_factory):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("nginx not installed (scripts/deps installs it)")
    prefix = tmp_path_factory.mktemp("nginx")
    port = free_port()
    conf = prefix / "nginx.conf"
    (prefix / "blob.bin").write_bytes(pattern_bytes(BLOB_SIZE))
    conf.write_text(NGINX_CONF.format(prefix=prefix, port=port, app_key=H2_KEY,
                                      cert=certs.server_cert,
                                      key=certs.server_key,
                                      user="user root;" if os.geteuid() == 0 else ""))
    proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(prefix)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def listening():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return proc.poll() is not None  # ends the wait; asserted below

    wait_for(listening, timeout=10, what="nginx to listen")
    assert proc.poll() is None, proc.stderr.read().decode(errors="replace")
    yield "https://127.0.0.1:%d" % port
    proc.terminate()
    proc.wait(timeout=10)


CHILD_TWO_CALLS = r"""
import brokered, json
out = []
for i in range(2):
    c = brokered.connection()          # a new brokered connection each time
    c.request("GET", "/whoami?app_key=sentinel")
    r = c.getresponse()
    out.append({"status": r.status, "body": json.loads(r.read())})
    c.close()
print(json.dumps(out))
"""


def test_upstream_speaks_http2_and_reuses_one_connection(nginx_h2, exec_argv, tmp_path):
    key_path = write_key_file(tmp_path / "h2key", H2_KEY)
    code, out, err = run_process(exec_argv(code=CHILD_TWO_CALLS, upstream_url=nginx_h2,
                                           key_path=key_path),
                                 env=make_child_env({"NO_PROXY": "*"}))
    assert code == 0, err
    calls = json.loads(out)
    assert [c["status"] for c in calls] == [200, 200]
    for c in calls:
        assert c["body"]["protocol"] == "HTTP/2.0"
        assert c["body"]["key_ok"] == "yes"            # nginx got the real key...
        assert c["body"]["app_key"] == "*" * len(H2_KEY)  # ...and its echo came back masked
    # Two brokered connections of the child, one pooled TLS connection upstream.
    assert calls[0]["body"]["connection"] == calls[1]["body"]["connection"]


def test_many_concurrent_requests_multiplexed_over_http2_all_succeed(nginx_h2, exec_argv,
                                                                     build_dir, tmp_path):
    # 32 brokered keep-alive connections at once share the pooled HTTP/2 connection(s):
    # every request must come back 200 (nginx checked the key). A correctness check under
    # concurrency, not a timing: bench/ measures speed.
    credload = build_dir / "bench" / "credload"
    if not credload.exists():
        pytest.skip("credload not built")
    key_path = write_key_file(tmp_path / "h2key", H2_KEY)
    argv = exec_argv(["--max-conns", "64", "--dial-rate", "100000"],
                     child=[str(credload), "--conns", "32", "--requests", "3000",
                            "--timeout", "20", "/keyed"],
                     upstream_url=nginx_h2, key_path=key_path)
    code, out, err = run_process(argv, env=make_child_env({"NO_PROXY": "*"}))
    assert code == 0, err[-2000:]
    r = json.loads(out.strip().splitlines()[-1])
    assert (r["requests"], r["errors"]) == (3000, 0), r


def test_downloads_read_slowly_over_one_http2_connection_arrive_whole(nginx_h2, held, tmp_path):
    # Three downloads share the pooled HTTP/2 connection while the child reads them slowly:
    # each paused stream holds at most its window, the connection keeps reading for the
    # others, and every stream must still end whole; --stall-timeout would cut one whose
    # tail sat in a buffer.
    key_path = write_key_file(tmp_path / "h2key", H2_KEY)
    h = held(["--stall-timeout", "5s"], upstream_url=nginx_h2, key_path=key_path)
    results = download_slowly_at_once(h, ["/blob.bin"] * 3)
    assert results == [(BLOB_SIZE, pattern_sha256(BLOB_SIZE))] * 3


def test_an_early_answer_to_a_large_post_over_http2_reaches_the_child_whole(nginx_h2, held,
                                                                            tmp_path):
    # nginx answers 401 (wrong key) without reading the 1 MB body. Over HTTP/2 it resets the
    # stream and libcurl 7.88, still sending, fails the transfer before handing over the
    # answer: the child got 502 for some of these. Large bodies go over HTTP/1.1 (upstream.c),
    # so every child gets nginx's 401 whole, and the audit says so.
    key_path = write_key_file(tmp_path / "wrong", WRONG_KEY)
    audit = tmp_path / "audit.jsonl"
    h = held(["--dial-rate", "100000", "--audit", str(audit)], upstream_url=nginx_h2,
             key_path=key_path)
    body = b"x" * 1_000_000
    head = b"POST /keyed HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body)

    def one_call(_):
        sock = h.dial()
        c = rawhttp.RawConn(sock)
        sender = threading.Thread(target=c.send, args=(head + body,), daemon=True)
        sender.start()
        try:
            r = c.response("POST")  # raises EOFError on a response cut short
        finally:
            sender.join(10)
            sock.close()
        assert (r.status, r.body) == (401, b'{"error":"bad key"}'), r.body[:200]
        return r.status

    # Four at a time: the stream resets show when streams share the upstream connection.
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(one_call, range(40)))  # re-raises a call's failure
    assert statuses == [401] * 40

    def all_audited():
        lines = [json.loads(line) for line in audit.read_text().splitlines() if line.strip()]
        return lines if len(lines) == len(statuses) else None

    records = wait_for(all_audited, what="one audit record per request")
    assert [(r["status"], r["outcome"]) for r in records] == [(401, "ok")] * 40


CHILD_LARGE_UPLOADS = r"""
import brokered, json
out = []
for size in (1_000_000, 5_000_000):
    c = brokered.connection()
    try:
        c.request("POST", "/keyed", body=b"x" * size)
        r = c.getresponse()
        out.append([r.status, len(r.read())])
    except Exception as e:
        out.append([type(e).__name__, 0])
    c.close()
print(json.dumps(out))
"""


def test_a_client_uploading_what_the_upstream_refuses_still_reads_its_answer(nginx_h2, exec_argv,
                                                                           tmp_path):
    # nginx answers before taking the body: 401 (wrong key) to 1 MB, 413 (over its 1 MB
    # client_max_body_size) to 5 MB. Python's http.client sends the whole body before it
    # reads; the broker drops the rest of the body instead of closing on it, so the client
    # reads the answer rather than failing with BrokenPipeError.
    key_path = write_key_file(tmp_path / "wrong", WRONG_KEY)
    code, out, err = run_process(exec_argv(code=CHILD_LARGE_UPLOADS, upstream_url=nginx_h2,
                                           key_path=key_path),
                                 env=make_child_env({"NO_PROXY": "*"}))
    assert code == 0, err
    (s1, n1), (s2, n2) = json.loads(out)
    assert (s1, n1) == (401, len('{"error":"bad key"}'))
    assert s2 == 413 and n2 > 0


def test_dropping_an_unwanted_body_ends_at_the_head_timeout(nginx_h2, held, tmp_path):
    # The child announces 1 MB, sends 300 KB and stops: the answer (401) is readable, and the
    # broker closes once the head timeout has passed instead of waiting for the rest.
    key_path = write_key_file(tmp_path / "wrong", WRONG_KEY)
    h = held(["--head-timeout", "1s"], upstream_url=nginx_h2, key_path=key_path)
    sock = h.dial()
    c = rawhttp.RawConn(sock, timeout=15)
    c.send(b"POST /keyed HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n" +
           b"x" * 300_000)
    r = c.response("POST")
    assert (r.status, r.body) == (401, b'{"error":"bad key"}')
    assert c.closed(timeout=15)
    sock.close()


class ConnectProxy:
    """An HTTP CONNECT proxy on 127.0.0.1 that tunnels bytes and records targets."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.targets = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk:
                client.close()
                return
            head += chunk
        line = head.split(b"\r\n", 1)[0].decode()
        method, target, _ = line.split(" ", 2)
        self.targets.append((method, target))
        if method != "CONNECT":
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            client.close()
            return
        host, port = target.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

        def pump(a, b):
            try:
                while True:
                    data = a.recv(65536)
                    if not data:
                        break
                    b.sendall(data)
            except OSError:
                pass
            finally:
                for s in (a, b):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
        pump(upstream, client)

    def close(self):
        self.closed = True
        self.sock.close()


def test_https_proxy_is_honoured_for_the_upstream(upstream, exec_argv, key_file):
    _, key = key_file
    proxy = ConnectProxy()
    try:
        env = make_child_env({"HTTPS_PROXY": "http://127.0.0.1:%d" % proxy.port})
        for name in ("NO_PROXY", "no_proxy", "https_proxy"):
            env.pop(name, None)
        upstream.clear_log()
        code, out, err = run_process(exec_argv(code=(
            "import brokered\n"
            "c = brokered.connection()\n"
            "c.request('GET', '/echo?app_key=sentinel')\n"
            "r = c.getresponse()\n"
            "r.read()  # the whole exchange, not just the head\n"
            "print(r.status)\n")), env=env)
        assert code == 0, err
        assert out.strip() == "200"
        port = upstream.url.rsplit(":", 1)[1]
        assert ("CONNECT", "127.0.0.1:" + port) in proxy.targets
        reqs = upstream.wait_requests(1)
        assert reqs[-1]["query"] == "app_key=" + key
    finally:
        proxy.close()


def test_upstream_certificate_is_verified(upstream, exec_argv, key_file):
    """Without --cacert the test CA is not trusted: the broker refuses to talk
    to the upstream (502) and the request never reaches it."""
    upstream.clear_log()
    code, out, err = run_process(exec_argv(code=(
        "import brokered, json\n"
        "c = brokered.connection()\n"
        "c.request('GET', '/echo?app_key=sentinel&marker=unverified')\n"
        "r = c.getresponse()\n"
        "print(r.status, json.loads(r.read())['error']['code'])\n"), cacert=""),
        env=make_child_env({"SSL_CERT_FILE": "/nonexistent", "CURL_CA_BUNDLE": "/nonexistent"}))
    assert code == 0, err
    assert out.split() == ["502", "BadGateway"]
    assert not [r for r in upstream.requests() if "marker=unverified" in r.get("query", "")]


def test_broker_runs_without_core_dumps(run_exec):
    """RLIMIT_CORE 0 in the broker (the command's parent), as /proc shows it."""
    code, out, err = run_exec([], (
        "import os\n"
        "for line in open('/proc/%d/limits' % os.getppid()):\n"
        "    if line.startswith('Max core file size'):\n"
        "        print(line.split()[4:6])\n"))
    assert code == 0, err
    assert out.strip() == "['0', '0']"
