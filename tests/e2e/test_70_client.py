"""Layer 70: the client side (DESIGN.md section 7).

Unmodified programs under `credbroker exec --preload` (the LD_PRELOAD shim,
libcredfd-preload.so): the real curl, Python's urllib and wget reach the HTTPS
test upstream through the broker, other names still resolve, and without
FLASHDUTY_CRED_FD the shim does nothing. Then credfd, the curl-like command
over the brokered channel: every option, its exit statuses, both response
framings byte for byte, and a 50 MB download in flat memory.
"""

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import urllib.parse
from pathlib import Path

import pytest

from conftest import PYTHON, make_child_env, run_process, wait_for
from upstream import pattern_bytes, pattern_sha256

CHILDREN = Path(__file__).resolve().parent / "children"
BASE = "http://flashduty.broker.local"
PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
              "ALL_PROXY", "no_proxy", "NO_PROXY")
RSS_LIMIT_KIB = 16 * 1024       # credfd's peak RSS for any body size
RSS_GROWTH_LIMIT_KIB = 4 * 1024 # peak RSS for 50 MB minus that for an empty body


def client_env(extra=None):
    """make_child_env without proxy variables: curl, wget and urllib must go to
    the placeholder host themselves, not to a proxy the machine may configure."""
    env = make_child_env(extra)
    for name in PROXY_VARS:
        env.pop(name, None)
    return env


def sanitized(path):
    """True for a binary built with -Db_sanitize=address (it needs libasan)."""
    return b"libasan.so" in Path(path).read_bytes()


def tag():
    return secrets.token_hex(6)


def app_keys(rec):
    params = urllib.parse.parse_qsl(rec["query"], keep_blank_values=True)
    return [v for k, v in params if k == "app_key"]


def header_values(rec, name):
    return [v for k, v in rec["headers"] if k.lower() == name.lower()]


def request_tagged(upstream, t, n=1):
    """The upstream's log records whose query carries t=<t> (waits for n of them)."""
    def found():
        recs = [r for r in upstream.requests() if ("t=" + t) in r["query"].split("&")]
        return recs if len(recs) >= n else None

    return wait_for(found, what="%d upstream request(s) tagged %s" % (n, t))


@pytest.fixture(scope="session")
def preload_lib(build_dir):
    path = build_dir / "libcredfd-preload.so"
    if not path.exists():
        pytest.skip("%s not built" % path)
    if sanitized(path):
        # The ASan runtime must come first in a process; curl, wget and
        # python are not built with it, so an ASan shim cannot load in them.
        pytest.skip("%s is built with ASan: it cannot be preloaded into "
                    "uninstrumented programs" % path)
    return path


@pytest.fixture(scope="session")
def credfd(build_dir):
    for path in (build_dir / "credfd",):
        if os.access(path, os.X_OK):
            return path
    pytest.skip("credfd not built (build/credfd)")


def need(program):
    path = shutil.which(program)
    if path is None:
        pytest.skip("%s not installed (scripts/deps installs it)" % program)
    return path


# -- unmodified programs under --preload ---------------------------------------------------

def run_preloaded(exec_argv, child, **kwargs):
    return run_process(exec_argv(["--preload"], child=child), env=client_env(), text=False,
                       **kwargs)


def test_curl_get_carries_exactly_one_real_key(preload_lib, exec_argv, upstream, key_file):
    _, key = key_file
    curl = need("curl")
    t = tag()
    rc, out, err = run_preloaded(exec_argv, [curl, "-sS", "-f",
                                             BASE + "/echo?t=%s&app_key=mine" % t])
    assert rc == 0, err
    [rec] = request_tagged(upstream, t)
    assert rec["method"] == "GET" and rec["path"] == "/echo"
    assert app_keys(rec) == [key]
    body = json.loads(out)
    assert body["path"] == "/echo" and key not in out.decode()


def test_curl_post_body_arrives_unchanged(preload_lib, exec_argv, upstream, key_file):
    _, key = key_file
    curl = need("curl")
    t = tag()
    rc, out, err = run_preloaded(exec_argv, [curl, "-sS", "-f", "-H",
                                             "Content-Type: application/json",
                                             "-d", '{"a":1}', BASE + "/echo?t=" + t])
    assert rc == 0, err
    [rec] = request_tagged(upstream, t)
    assert rec["method"] == "POST"
    assert rec["body_sha256"] == hashlib.sha256(b'{"a":1}').hexdigest()
    assert rec["body_len"] == 7 and rec["body_complete"]
    assert header_values(rec, "Content-Type") == ["application/json"]
    assert app_keys(rec) == [key]


def test_curl_downloads_5mb_byte_exact(preload_lib, exec_argv, upstream):
    curl = need("curl")
    size = 5 * 1024 * 1024
    rc, out, err = run_preloaded(exec_argv, [curl, "-sS", "-f",
                                             BASE + "/download?size=%d" % size])
    assert rc == 0, err
    assert len(out) == size
    assert hashlib.sha256(out).hexdigest() == pattern_sha256(size)


def test_curl_keeps_one_connection_alive_over_several_urls(preload_lib, exec_argv, upstream,
                                                           key_file):
    _, key = key_file
    curl = need("curl")
    t = tag()
    urls = [BASE + "/status/200?t=%s&n=%d" % (t, i) for i in range(3)]
    rc, out, err = run_preloaded(exec_argv, [curl, "-sS", "-f", "-o", "/dev/null", "-o",
                                             "/dev/null", "-o", "/dev/null",
                                             "-w", "%{http_code} %{num_connects}\\n"] + urls)
    assert rc == 0, err
    lines = out.decode().split()
    codes, connects = lines[0::2], [int(n) for n in lines[1::2]]
    assert codes == ["200"] * 3, out
    assert sum(connects) == 1, out  # one brokered connection, reused twice
    recs = request_tagged(upstream, t, 3)
    assert len(recs) == 3 and all(app_keys(r) == [key] for r in recs)


URLLIB_CHILD = r"""
import json, os, urllib.request
base = os.environ["FLASHDUTY_BASE_URL"]
t = os.environ["T"]
with urllib.request.urlopen(base + "/echo?t=" + t + "&m=get") as r:
    got = json.loads(r.read())
req = urllib.request.Request(base + "/upload?t=" + t + "&m=post", data=b"posted by urllib",
                             method="POST", headers={"Content-Type": "text/plain"})
with urllib.request.urlopen(req) as r:
    posted = r.read().decode()
print(json.dumps({"get_path": got["path"], "posted": posted}))
"""


def test_python_urllib_get_and_post(preload_lib, exec_argv, upstream, key_file):
    _, key = key_file
    t = tag()
    rc, out, err = run_process(exec_argv(["--preload"], code=URLLIB_CHILD),
                               env=client_env({"T": t}))
    assert rc == 0, err
    assert json.loads(out) == {"get_path": "/echo", "posted": "posted by urllib"}
    recs = request_tagged(upstream, t, 2)
    assert sorted(r["method"] for r in recs) == ["GET", "POST"]
    assert all(app_keys(r) == [key] for r in recs)
    [post] = [r for r in recs if r["method"] == "POST"]
    assert post["body_sha256"] == hashlib.sha256(b"posted by urllib").hexdigest()


def test_wget_get(preload_lib, exec_argv, upstream, key_file):
    _, key = key_file
    wget = need("wget")
    t = tag()
    rc, out, err = run_preloaded(exec_argv, [wget, "-q", "-O", "-", BASE + "/echo?t=" + t])
    assert rc == 0, err
    assert json.loads(out)["path"] == "/echo"
    [rec] = request_tagged(upstream, t)
    assert app_keys(rec) == [key]


RESOLVE_CHILD = r"""
import http.client, json, socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
def v4(name):
    return sorted({ai[4][0] for ai in socket.getaddrinfo(name, port, socket.AF_INET,
                                                          socket.SOCK_STREAM)})
out = {"localhost": v4("localhost"), "placeholder": v4("flashduty.broker.local"),
       "placeholder_byname": socket.gethostbyname("flashduty.broker.local")}
conn = http.client.HTTPSConnection("127.0.0.1", port,
                                   context=ssl.create_default_context(cafile=ca))
conn.request("GET", "/echo?direct=1&t=" + sys.argv[3])
resp = conn.getresponse()
out["direct"] = [resp.status, json.loads(resp.read())["query"]]
print(json.dumps(out))
"""


def test_other_names_resolve_and_connect_normally_under_the_shim(preload_lib, exec_argv,
                                                                 upstream, certs):
    t = tag()
    argv = exec_argv(["--preload"], child=[PYTHON, "-c", RESOLVE_CHILD, upstream.port,
                                           certs.ca, t])
    rc, out, err = run_process(argv, env=client_env())
    assert rc == 0, err
    got = json.loads(out)
    assert got["localhost"] == ["127.0.0.1"]
    assert got["placeholder"] == ["127.88.0.1"]
    assert got["placeholder_byname"] == "127.88.0.1"
    # Straight to the upstream over TLS: no broker, so no key was added.
    assert got["direct"] == [200, "direct=1&t=" + t]
    [rec] = request_tagged(upstream, t)
    assert app_keys(rec) == []


LOOKUP_CHILD = r"""
import json, socket
maps = open("/proc/self/maps").read()
try:
    result = sorted({ai[4][0] for ai in socket.getaddrinfo("flashduty.broker.local", 80)})
except socket.gaierror as e:
    result = "gaierror"
print(json.dumps({"shim_loaded": "libcredfd-preload.so" in maps, "result": result}))
"""


def test_without_cred_fd_the_shim_does_nothing(preload_lib):
    env = client_env()
    rc, plain, err = run_process([PYTHON, "-c", LOOKUP_CHILD], env=env)
    assert rc == 0, err
    env["LD_PRELOAD"] = str(preload_lib)
    rc, preloaded, err = run_process([PYTHON, "-c", LOOKUP_CHILD], env=env)
    assert rc == 0, err
    plain, preloaded = json.loads(plain), json.loads(preloaded)
    assert preloaded["shim_loaded"] and not plain["shim_loaded"]
    assert preloaded["result"] == plain["result"] == "gaierror"


# -- credfd --------------------------------------------------------------------------------

def run_credfd(exec_argv, credfd, args, *, exec_args=(), input=None, env=None):
    """credbroker exec [exec_args] -- credfd ARGS -> (rc, stdout bytes, stderr str)."""
    rc, out, err = run_process(exec_argv(list(exec_args), child=[credfd] + list(args)),
                               env=client_env(env), input=input, text=False)
    return rc, out, err.decode(errors="replace")


def test_credfd_get_appends_the_sentinel_and_the_broker_puts_the_key(exec_argv, credfd,
                                                                      upstream, key_file):
    _, key = key_file
    t = tag()
    rc, out, err = run_credfd(exec_argv, credfd, ["-v", "/echo?t=" + t])
    assert rc == 0, err
    assert err.splitlines() == ["> GET /echo?t=%s&app_key=broker-sentinel HTTP/1.1" % t,
                                "< HTTP/1.1 200 OK"]
    assert json.loads(out)["method"] == "GET"
    [rec] = request_tagged(upstream, t)
    assert app_keys(rec) == [key]


def test_credfd_keeps_an_app_key_the_path_already_has(exec_argv, credfd, upstream, key_file):
    _, key = key_file
    t = tag()
    rc, out, err = run_credfd(exec_argv, credfd, ["-v", "/echo?app%5Fkey=mine&t=" + t])
    assert rc == 0, err
    assert err.splitlines()[0] == "> GET /echo?app%%5Fkey=mine&t=%s HTTP/1.1" % t
    [rec] = request_tagged(upstream, t)
    assert app_keys(rec) == [key]


def test_credfd_method_header_and_data_options(exec_argv, credfd, upstream):
    t = tag()
    rc, out, err = run_credfd(exec_argv, credfd, [
        "-X", "PUT", "-H", "X-Credfd-Test: yes  ", "-H", "Accept:",
        "-H", "Content-Type: text/plain", "-d", "plain data", "/echo?t=" + t])
    assert rc == 0, err
    [rec] = request_tagged(upstream, t)
    assert rec["method"] == "PUT"
    assert header_values(rec, "X-Credfd-Test") == ["yes"]
    assert header_values(rec, "Accept") == []  # 'Name:' drops the default
    assert header_values(rec, "Content-Type") == ["text/plain"]
    assert rec["body_sha256"] == hashlib.sha256(b"plain data").hexdigest()


def test_credfd_data_is_posted_as_json_by_default(exec_argv, credfd, upstream):
    t = tag()
    rc, out, err = run_credfd(exec_argv, credfd, ["-d", '{"a":1}', "/echo?t=" + t])
    assert rc == 0, err
    [rec] = request_tagged(upstream, t)
    assert rec["method"] == "POST"
    assert header_values(rec, "Content-Type") == ["application/json"]
    assert rec["body_sha256"] == hashlib.sha256(b'{"a":1}').hexdigest()


def test_credfd_method_then_path_form(exec_argv, credfd, upstream):
    t = tag()
    rc, out, err = run_credfd(exec_argv, credfd, ["POST", "/upload?t=" + t, "-d", '{"b":2}'])
    assert rc == 0, err
    assert out == b'{"b":2}'
    [rec] = request_tagged(upstream, t)
    assert rec["method"] == "POST" and rec["body_len"] == 7


def test_credfd_data_from_a_file_is_streamed(exec_argv, credfd, upstream, tmp_path):
    t = tag()
    body = os.urandom(3 * 1024 * 1024 + 17)
    path = tmp_path / "body.bin"
    path.write_bytes(body)
    rc, out, err = run_credfd(exec_argv, credfd, ["-d", "@" + str(path), "/upload?t=" + t])
    assert rc == 0, err
    assert out == body
    [rec] = request_tagged(upstream, t)
    assert rec["body_sha256"] == hashlib.sha256(body).hexdigest() and rec["body_complete"]


def test_credfd_data_from_stdin_is_sent_chunked(exec_argv, credfd, upstream):
    t = tag()
    body = os.urandom(1024 * 1024 + 3)
    rc, out, err = run_credfd(exec_argv, credfd, ["-v", "-d", "@-", "/upload?t=" + t],
                              input=body)
    assert rc == 0, err
    assert out == body
    [rec] = request_tagged(upstream, t)
    assert rec["body_sha256"] == hashlib.sha256(body).hexdigest() and rec["body_complete"]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_credfd_response_body_is_byte_exact(exec_argv, credfd, upstream, chunked):
    size = 1024 * 1024 + 77
    path = "/download?size=%d%s" % (size, "&chunked=1" if chunked else "")
    rc, out, err = run_credfd(exec_argv, credfd, ["-i", path])
    assert rc == 0, err
    head, sep, body = out.partition(b"\r\n\r\n")
    assert sep and head.startswith(b"HTTP/1.1 200 OK\r\n")
    fields = [line.split(b":", 1)[0].lower() for line in head.split(b"\r\n")[1:]]
    assert (b"transfer-encoding" in fields) == chunked
    assert (b"content-length" in fields) == (not chunked)
    assert body == pattern_bytes(size)


def test_credfd_head_request_reads_no_body(exec_argv, credfd, upstream):
    rc, out, err = run_credfd(exec_argv, credfd, ["-X", "HEAD", "-i", "/download?size=1000"])
    assert rc == 0, err
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"\r\n\r\n")
    assert b"Content-Length: 1000\r\n" in out


@pytest.mark.parametrize("status,expected_rc", [(200, 0), (404, 22), (503, 22)])
def test_credfd_fail_exits_22_on_http_errors_and_prints_no_body(exec_argv, credfd, upstream,
                                                                 status, expected_rc):
    rc, out, err = run_credfd(exec_argv, credfd, ["-f", "-i", "/status/%d" % status])
    assert rc == expected_rc, err
    if expected_rc:
        assert out == b""
        assert err.strip() == "credfd: the server answered HTTP %d" % status
    else:
        assert out.endswith(b'{"status": 200}')


def test_credfd_without_fail_prints_an_error_body_and_exits_0(exec_argv, credfd, upstream):
    rc, out, err = run_credfd(exec_argv, credfd, ["/status/404"])
    assert rc == 0, err
    assert json.loads(out) == {"status": 404}


def test_credfd_stops_quietly_when_stdout_goes_away(exec_argv, credfd, upstream):
    argv = exec_argv(child=[credfd, "/download?size=%d" % (8 * 1024 * 1024)])
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=client_env(), start_new_session=True)
    try:
        assert len(proc.stdout.read(1000)) == 1000
        proc.stdout.close()
        rc = proc.wait(timeout=20)
        err = proc.stderr.read().decode(errors="replace")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
        proc.stderr.close()
    assert rc == 5, err  # not 128 + SIGPIPE
    assert err == ""


# -- credfd: errors ------------------------------------------------------------------------

@pytest.mark.parametrize("args,message", [
    ([], "credfd: no PATH given (see credfd --help)"),
    (["echo"], "credfd: PATH must start with '/', got 'echo'"),
    (["-z", "/echo"], "credfd: unknown option -z (see credfd --help)"),
    (["-X", "GET", "POST", "/echo"], "credfd: the method is given both by -X and as an argument"),
    (["GET", "/a", "/b"], "credfd: too many arguments at '/b' (see credfd --help)"),
    (["-H", "Content-Length: 3", "/echo"],
     "credfd: -H Content-Length: credfd sets this header itself"),
    (["-H", "no colon", "/echo"], "credfd: -H wants 'Name: value', got 'no colon'"),
    (["/a b"], "credfd: PATH holds a space, control or non-ASCII byte: percent-encode it"),
    (["-d"], "credfd: option -d needs an argument (see credfd --help)"),
], ids=["no-path", "relative", "unknown-option", "two-methods", "three-args",
        "framing-header", "bad-header", "space", "missing-arg"])
def test_credfd_usage_errors_exit_2_with_one_line(credfd, args, message):
    rc, out, err = run_process([str(credfd)] + args, env=client_env())
    assert rc == 2
    assert out == "" and err == message + "\n"


def test_credfd_help_goes_to_stdout(credfd):
    rc, out, err = run_process([str(credfd), "--help"], env=client_env())
    assert rc == 0 and err == ""
    assert out.startswith("usage: credfd [options] PATH\n")


@pytest.mark.parametrize("value,message", [
    (None, "credfd: not running under credbroker: FLASHDUTY_CRED_FD is not set"),
    ("three", "credfd: not running under credbroker: FLASHDUTY_CRED_FD='three' is not a "
              "control fd (a number >= 3)"),
    ("1", "credfd: not running under credbroker: FLASHDUTY_CRED_FD='1' is not a "
          "control fd (a number >= 3)"),
    ("9", "credfd: not running under credbroker: fd 9 is not a control channel "
          "(Bad file descriptor)"),
], ids=["unset", "not-a-number", "stdio", "not-open"])
def test_credfd_outside_the_broker_exits_3(credfd, value, message):
    env = client_env()
    if value is not None:
        env["FLASHDUTY_CRED_FD"] = value
    rc, out, err = run_process([str(credfd), "/echo"], env=env)
    assert rc == 3
    assert out == "" and err == message + "\n"


def run_on_ctl(credfd, ctl_fd, args, **kwargs):
    """Runs credfd from the test process on a control fd the test holds."""
    env = client_env({"FLASHDUTY_CRED_FD": str(ctl_fd)})
    return subprocess.run([str(credfd)] + args, env=env, pass_fds=(ctl_fd,), timeout=20,
                          capture_output=True, **kwargs)


def test_credfd_refused_over_the_connection_limit_exits_4(held, credfd, upstream):
    # A short --dial-wait: the refusal comes when the wait ends (10 s by default).
    h = held(["--max-conns", "1", "--dial-wait", "300ms"])
    with h.dial():  # the one connection allowed, held open
        proc = run_on_ctl(credfd, h.ctl_fd, ["/echo"])
    assert proc.returncode == 4, proc.stderr
    assert proc.stdout == b""
    assert proc.stderr.decode().startswith("credfd: the broker refused the connection")
    # The limit is per live connection: once the broker has seen it closed,
    # credfd gets through (polled slower than the broker's dial rate).
    proc = wait_for(lambda: (lambda p: p if p.returncode != 4 else None)(
        run_on_ctl(credfd, h.ctl_fd, ["/status/200"])), interval=0.05,
        what="the held connection to be released")
    assert proc.returncode == 0 and proc.stdout == b'{"status": 200}', proc.stderr
    h.finish()


def test_credfd_after_the_invocation_ended_exits_4(held, credfd, upstream):
    h = held()
    rc, err = h.finish()
    assert rc == 0, err
    proc = run_on_ctl(credfd, h.ctl_fd, ["/echo"])
    assert proc.returncode == 4, proc.stderr
    assert proc.stderr.decode() == ("credfd: the broker's control channel is closed "
                                    "(the invocation has ended)\n")


def test_credfd_body_cut_short_by_the_end_of_the_invocation_exits_5(held, credfd, upstream):
    h = held()
    env = client_env({"FLASHDUTY_CRED_FD": str(h.ctl_fd)})
    proc = subprocess.Popen([str(credfd), "/slow-body?size=1000000&delay_ms=5"], env=env,
                            pass_fds=(h.ctl_fd,), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert len(proc.stdout.read(1024)) == 1024  # the body is flowing
        h.finish()  # authority ends: the broker closes the connection mid-body
        rest = proc.stdout.read()
        rc = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert rc == 5, err
    assert 1024 + len(rest) < 1000000
    assert err.startswith("credfd: the response body was cut short (")


# -- credfd: flat memory -------------------------------------------------------------------

def measure_credfd(exec_argv, credfd, path, rss_file):
    """Runs credfd PATH under the broker with its peak RSS measured; reads its
    stdout as it comes. Returns (rc, stderr, byte count, sha256 hex, peak KiB)."""
    time_bin = "/usr/bin/time"
    if os.access(time_bin, os.X_OK):
        measured = [time_bin, "-f", "%M", "-o", str(rss_file), str(credfd)]
    else:
        measured = [PYTHON, str(CHILDREN / "client_rss.py"), str(rss_file), str(credfd)]
    proc = subprocess.Popen(exec_argv(child=measured + [path]), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=client_env(), start_new_session=True)
    digest, count = hashlib.sha256(), 0
    try:
        while True:
            data = proc.stdout.read(1 << 20)
            if not data:
                break
            digest.update(data)
            count += len(data)
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
        proc.stdout.close()
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    peak = int(rss_file.read_text().split()[-1]) if rc == 0 else 0
    return rc, err, count, digest.hexdigest(), peak


def test_credfd_streams_50mb_in_flat_memory(exec_argv, credfd, upstream, tmp_path):
    size = 50 * 1024 * 1024
    rc, err, _, _, base = measure_credfd(exec_argv, credfd, "/download?size=0",
                                         tmp_path / "empty.rss")
    assert rc == 0, err
    rc, err, count, digest, peak = measure_credfd(exec_argv, credfd, "/download?size=%d" % size,
                                                  tmp_path / "big.rss")
    assert rc == 0, err
    assert count == size
    assert digest == pattern_sha256(size)
    assert 0 < base and peak - base < RSS_GROWTH_LIMIT_KIB, \
        "credfd peak RSS %d KiB for 50 MB, %d KiB for nothing" % (peak, base)
    if not sanitized(credfd):  # ASan's shadow memory alone is bigger than the limit
        assert peak < RSS_LIMIT_KIB, "credfd peak RSS %d KiB" % peak
