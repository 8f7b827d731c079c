"""Fixtures of the end-to-end suite: real peers around the real credbroker.

    certs       (session)  test CA + server cert from tools/gen-certs
    upstream    (session)  tests/e2e/upstream.py over HTTPS, with its request log; with
                           CREDBROKER_E2E_UPSTREAM=nginx-h2 or nginx-h1 behind an nginx
                           (HTTP/2, or HTTP/1.1 only) that the broker is given instead
    mock_api    (session)  tools/mock_api.py (Flashduty-like), with its valid key
    build_dir   (session)  $CREDBROKER_BUILD or <repo>/build; skips if no credbroker
    credbroker  (session)  path of the credbroker binary (skips likewise)
    key_file    (function) (path, key): a mode-600 file with a random 32-hex key
    exec_argv   (function) builds a `credbroker exec ...` argv
    child_env   (function) environment for a broker whose child imports `brokered`
    run_exec    (function) runs credbroker exec with a Python child
    held        (function) starts `credbroker exec` around children/held.py, which hands
                           its fd 3 to the test (raw datagrams and bytes from pytest)
    wait_for    (any)      polls a predicate every 10 ms

Tests never sleep to wait for something they can poll: use wait_for.

CREDBROKER_E2E_UPSTREAM picks what the `upstream` fixture's URL reaches (`make test-nginx`):
    python    (default) upstream.py itself, over HTTPS
    nginx-h2  a Debian nginx terminating TLS with HTTP/2 offered by ALPN, proxying every
              path to upstream.py (plain HTTP, keep-alive): same endpoints, same log
    nginx-h1  the same nginx without http2: the broker speaks HTTP/1.1 to nginx
Under nginx only the tests that use the `upstream` fixture (directly or through exec_argv,
run_exec, held) run; the others are deselected. A test whose subject is something nginx
itself changes (a TCP reset from the upstream, a header's case or order, a raw target nginx
rewrites, the broker's connections to the upstream) is marked
@pytest.mark.python_upstream("why") and skipped under nginx.
"""

import atexit
import collections
import concurrent.futures
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from children.held import Held

REPO = Path(__file__).resolve().parents[2]
E2E = REPO / "tests" / "e2e"
PYTHON = "/usr/bin/python3"  # Debian's: has pytest and websockets
if str(E2E) not in sys.path:
    sys.path.insert(0, str(E2E))

UPSTREAM_FRONTS = ("python", "nginx-h2", "nginx-h1")
UPSTREAM_FRONT = os.environ.get("CREDBROKER_E2E_UPSTREAM") or "python"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
NGINX_ACCESS_LOGS = []  # of every NginxFront started, for pytest_terminal_summary


def pytest_configure(config):
    if UPSTREAM_FRONT not in UPSTREAM_FRONTS:
        raise pytest.UsageError("CREDBROKER_E2E_UPSTREAM=%s: expected one of %s"
                                % (UPSTREAM_FRONT, ", ".join(UPSTREAM_FRONTS)))
    config.addinivalue_line(
        "markers", "python_upstream(reason): the test's subject is something an nginx in front "
        "of upstream.py changes; skipped when CREDBROKER_E2E_UPSTREAM is nginx-h2 or nginx-h1")


def pytest_report_header(config):
    return "upstream: %s (CREDBROKER_E2E_UPSTREAM)" % UPSTREAM_FRONT


def pytest_terminal_summary(terminalreporter):
    """Under nginx: how many requests reached it over each protocol (its access logs), the
    sign that the broker spoke HTTP/2 (nginx-h2) or HTTP/1.1 (nginx-h1) to it."""
    for access_log in NGINX_ACCESS_LOGS:
        if access_log.exists():
            counts = collections.Counter(line.split()[1] for line in
                                         access_log.read_text().splitlines() if line.strip())
            terminalreporter.write_line("%s front: %s" % (UPSTREAM_FRONT, ", ".join(
                "%d requests over %s" % (n, proto) for proto, n in sorted(counts.items()))
                or "no requests"))


def pytest_collection_modifyitems(config, items):
    if UPSTREAM_FRONT != "python":
        # Under nginx only the tests that reach the upstream run: the others would repeat
        # the default run.
        deselected = [item for item in items if "upstream" not in item.fixturenames]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = [item for item in items if "upstream" in item.fixturenames]
    for item in items:
        marker = item.get_closest_marker("python_upstream")
        if marker is None:
            continue
        reason = marker.args[0] if marker.args else marker.kwargs.get("reason", "")
        assert reason, "%s: python_upstream needs a reason" % item.nodeid
        if UPSTREAM_FRONT != "python":
            item.add_marker(pytest.mark.skip(reason="needs upstream.py unfronted (not %s): %s"
                                             % (UPSTREAM_FRONT, reason)))


def wait_for(predicate, timeout=5.0, interval=0.01, what=None):
    """Calls predicate() every interval seconds until it returns something
    truthy, and returns that. Fails the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1f s waiting for %s"
                                 % (timeout, what or getattr(predicate, "__name__", "condition")))
        time.sleep(interval)


@pytest.fixture(name="wait_for")
def _wait_for_fixture():
    return wait_for


def child_pids(pid, name=None):
    """The pids of pid's children (from /proc), only those whose command name is name when
    given. Processes that end while we look are passed over."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if ppid == pid and (name is None or comm == name):
            found.append(int(entry))
    return found


def read_body_slowly(resp, piece=65536, pause_every=1 << 20):
    """Reads an http.client response body like a slow consumer: stops for a moment after
    every MiB, so the broker's output to the child fills and it pauses the upstream
    transfer with TLS records still buffered, then resumes. (The pause shapes the traffic;
    nothing waits on it.) Returns (bytes, sha256 hex)."""
    digest = hashlib.sha256()
    total, next_pause = 0, pause_every
    while True:
        data = resp.read(piece)
        if not data:
            return total, digest.hexdigest()
        digest.update(data)
        total += len(data)
        if total >= next_pause:
            time.sleep(0.05)
            next_pause += pause_every


def download_slowly_at_once(held_broker, paths):
    """GETs every path through held_broker (a Held), each on its own brokered connection
    and all at once, asserts each answer is 200 and reads each body with
    read_body_slowly. Returns the (bytes, sha256 hex) of each, in order."""

    def one(path):
        conn = held_broker.connection()
        conn.request("GET", path)
        resp = conn.getresponse()
        assert resp.status == 200, path
        got = read_body_slowly(resp)
        conn.close()
        return got

    with concurrent.futures.ThreadPoolExecutor(len(paths)) as pool:
        return list(pool.map(one, paths))


# -- certificates -------------------------------------------------------------

@dataclass(frozen=True)
class Certs:
    dir: Path
    ca: Path           # ca.pem: give to --cacert / ssl contexts
    server_cert: Path  # server.pem
    server_key: Path   # server.key


def make_certs(directory):
    directory = Path(directory)
    subprocess.run([str(REPO / "tools" / "gen-certs"), str(directory)], check=True)
    return Certs(directory, directory / "ca.pem", directory / "server.pem", directory / "server.key")


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


# -- peer processes -----------------------------------------------------------

class PeerProcess:
    """A peer server started with --port 0 --ready-file; stopped by stop()."""

    def __init__(self, argv, workdir, name):
        self.name = name
        self.ready_file = Path(workdir) / (name + ".ready")
        self.stderr_path = Path(workdir) / (name + ".stderr")
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(argv + ["--ready-file", str(self.ready_file)],
                                     stdin=subprocess.DEVNULL, stdout=self._stderr,
                                     stderr=self._stderr)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("%s exited with %s before it was ready:\n%s"
                                     % (name, self.proc.returncode, self.stderr()))
            return self.ready_file.exists()

        wait_for(ready, timeout=15, what=name + " to listen")
        self.port = int(self.ready_file.read_text())
        self.url = "https://127.0.0.1:%d" % self.port

    def stderr(self):
        return self.stderr_path.read_text(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()


class Upstream(PeerProcess):
    """tests/e2e/upstream.py; see its docstring for endpoints and log format. plain=True
    serves plain HTTP (.url http://...), as the backend of an nginx front; args go to
    upstream.py as they are (--key-file K)."""

    def __init__(self, certs, workdir, plain=False, args=()):
        self.log_path = Path(workdir) / "upstream.log"
        self.log_path.touch()
        where = ["--plain"] if plain else ["--cert", str(certs.dir)]
        super().__init__([PYTHON, str(E2E / "upstream.py"), "--port", "0"] + where
                         + ["--log", str(self.log_path)] + [str(a) for a in args], workdir,
                         "upstream")
        if plain:
            self.url = "http://127.0.0.1:%d" % self.port

    def _lines(self):
        return read_json_lines(self.log_path)

    def requests(self):
        """Request records logged so far, oldest first."""
        return [r for r in self._lines() if "event" not in r]

    def events(self):
        """Event records ({"event": "client_gone", ...}) logged so far."""
        return [r for r in self._lines() if "event" in r]

    def clear_log(self):
        self.log_path.write_bytes(b"")

    def wait_requests(self, n, timeout=5.0):
        """Waits until at least n requests are logged; returns them."""
        def enough():
            reqs = self.requests()
            return reqs if len(reqs) >= n else None

        return wait_for(enough, timeout, what="%d upstream request(s)" % n)


class MockApi(PeerProcess):
    """tools/mock_api.py; .key is the one valid app_key, .key_file its file."""

    def __init__(self, certs, workdir):
        self.key = secrets.token_hex(16)
        self.key_file = Path(workdir) / "mock_api.key"
        fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.key + "\n")
        super().__init__([PYTHON, str(REPO / "tools" / "mock_api.py"), "--port", "0",
                          "--cert", str(certs.dir), "--key-file", str(self.key_file)],
                         workdir, "mock_api")


# The nginx in front of upstream.py (CREDBROKER_E2E_UPSTREAM=nginx-*): as transparent as a
# proxy gets. The target goes on unchanged ($request_uri), Host as received (from :authority
# over HTTP/2), over kept-alive HTTP/1.1 connections; nothing is buffered either way
# (streaming, slow bodies, early answers and a client's cancel pass through); no body size
# limit, timeouts longer than any test's, no gzip; headers with underscores or odd names pass;
# connections to the broker last (nginx's 1000 requests per connection would close them
# where upstream.py never does). A stale kept-alive connection to upstream.py is retried
# once (proxy_next_upstream error), as nginx does by default.
NGINX_FRONT_CONF = """
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
{user}
events {{ worker_connections 1024; }}
http {{
    log_format front '$connection $server_protocol "$request_method $uri" $status '
                     '$body_bytes_sent $upstream_status $request_time';
    access_log {prefix}/access.log front;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    upstream backend {{
        server 127.0.0.1:{backend_port};
        keepalive 64;
        keepalive_requests 1000000;
        keepalive_timeout 600s;
    }}
    server {{
        listen 127.0.0.1:{port} ssl{http2};
        ssl_certificate {cert};
        ssl_certificate_key {key};
        keepalive_requests 1000000;
        keepalive_timeout 600s;
        client_header_timeout 600s;
        client_body_timeout 600s;
        send_timeout 600s;
        client_max_body_size 0;
        client_header_buffer_size 64k;
        large_client_header_buffers 16 256k;
        underscores_in_headers on;
        ignore_invalid_headers off;
        merge_slashes off;
        gzip off;
        location / {{
            proxy_pass http://backend$request_uri;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_buffer_size 256k;
            proxy_buffers 4 256k;
            proxy_busy_buffers_size 512k;
            proxy_connect_timeout 10s;
            proxy_read_timeout 600s;
            proxy_send_timeout 600s;
            proxy_next_upstream error;
            proxy_next_upstream_tries 2;
        }}
    }}
}}
"""


class NginxFront:
    """Debian's nginx in its own prefix (workdir/nginx), on a free loopback port, with the
    test CA's server cert, proxying to backend_port; http2=False: HTTP/1.1 only (ALPN
    offers http/1.1 alone). .url https://127.0.0.1:port; stop() ends it. In .prefix: its
    error.log and access.log, a line per request: connection, protocol, method and path
    (not the query: it holds the key), status, bytes sent, upstream.py's status, time."""

    def __init__(self, certs, workdir, backend_port, http2):
        if not os.access(NGINX, os.X_OK):
            raise AssertionError("CREDBROKER_E2E_UPSTREAM=%s needs nginx (scripts/deps installs it)"
                                 % UPSTREAM_FRONT)
        self.prefix = Path(workdir) / "nginx"
        self.prefix.mkdir()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        conf = self.prefix / "nginx.conf"
        conf.write_text(NGINX_FRONT_CONF.format(
            prefix=self.prefix, port=self.port, backend_port=backend_port,
            http2=" http2" if http2 else "", cert=certs.server_cert, key=certs.server_key,
            user="user root;" if os.geteuid() == 0 else ""))
        self.stderr_path = self.prefix / "nginx.stderr"
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(self.prefix)],
                                         stdin=subprocess.DEVNULL, stdout=err, stderr=err)

        def listening():
            if self.proc.poll() is not None:
                raise AssertionError("nginx exited with %s:\n%s" % (self.proc.returncode,
                                                                    self.stderr()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                return False

        wait_for(listening, timeout=15, what="nginx to listen")
        self.url = "https://127.0.0.1:%d" % self.port
        NGINX_ACCESS_LOGS.append(self.prefix / "access.log")

    def stderr(self):
        """nginx's stderr, then its error log."""
        text = self.stderr_path.read_text(errors="replace")
        error_log = self.prefix / "error.log"
        if error_log.exists():
            text += error_log.read_text(errors="replace")
        return text

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class FrontedUpstream(Upstream):
    """upstream.py over plain HTTP behind a NginxFront: .url and .port are nginx's (what
    the broker is given), .backend_url upstream.py's; the log and endpoints are the same."""

    def __init__(self, certs, workdir, http2):
        super().__init__(certs, workdir, plain=True)
        self.backend_url = self.url
        try:
            self.front = NginxFront(certs, workdir, self.port, http2)
        except BaseException:
            super().stop()
            raise
        self.url, self.port = self.front.url, self.front.port

    def stop(self):
        self.front.stop()
        super().stop()


def start_upstream(certs, workdir):
    """The `upstream` fixture's server for CREDBROKER_E2E_UPSTREAM."""
    if UPSTREAM_FRONT == "python":
        return Upstream(certs, workdir)
    return FrontedUpstream(certs, workdir, http2=UPSTREAM_FRONT == "nginx-h2")


@pytest.fixture(scope="session")
def upstream(certs, tmp_path_factory):
    server = start_upstream(certs, tmp_path_factory.mktemp("upstream"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mock_api(certs, tmp_path_factory):
    server = MockApi(certs, tmp_path_factory.mktemp("mock_api"))
    yield server
    server.stop()


# -- credbroker ---------------------------------------------------------------

@pytest.fixture(scope="session")
def build_dir():
    path = Path(os.environ.get("CREDBROKER_BUILD") or REPO / "build")
    if not path.is_absolute():
        path = REPO / path
    if not os.access(path / "credbroker", os.X_OK):
        pytest.skip("%s not found: build it first (make build)" % (path / "credbroker"))
    return path


@pytest.fixture(scope="session")
def credbroker(build_dir):
    return build_dir / "credbroker"


def write_key_file(path, key, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    os.chmod(path, mode)  # the umask may have narrowed it
    return Path(path)


@pytest.fixture(scope="session")
def isolation_available(credbroker):
    """Skips the test where this host does not allow user namespaces."""
    info = json.loads(subprocess.run([str(credbroker), "version", "--json"], check=True,
                                     capture_output=True, text=True).stdout)
    if info["isolation"] != "namespaces":
        pytest.skip("this host does not allow user namespaces (version --json: isolation none)")
    return True


@pytest.fixture
def key_file(tmp_path):
    key = secrets.token_hex(16)
    return write_key_file(tmp_path / "app_key", key), key


def make_child_env(extra=None):
    """The environment for credbroker: ours, minus anything FLASHDUTY_, plus
    PYTHONPATH so a Python child can `import brokered`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASHDUTY_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(E2E), env.get("PYTHONPATH")) if p)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # credbroker checks at exit that every fd and secret of its invocations is gone.
    env["CREDBROKER_LEAK_CHECK"] = "1"
    if extra:
        env.update(extra)
    return env


@pytest.fixture
def child_env():
    return make_child_env


E2E_ROUTES = os.environ.get("CREDBROKER_E2E_ROUTES") == "1"
_SPARE_ROUTE_KEY = []


def spare_route_key():
    """The key file of make test-routes' extra route (made once per session)."""
    if not _SPARE_ROUTE_KEY:
        fd, path = tempfile.mkstemp(prefix="credbroker-spare-route-")
        os.write(fd, (secrets.token_hex(16) + "\n").encode())
        os.close(fd)
        atexit.register(os.unlink, path)
        _SPARE_ROUTE_KEY.append(path)
    return _SPARE_ROUTE_KEY[0]


@pytest.fixture
def exec_argv(credbroker, upstream, certs, key_file):
    """exec_argv(args=(), child=None, *, code=None, upstream_url=None,
    cacert=None, key_path=None) -> list: `credbroker exec --upstream URL
    --cacert CA --key-file K [args] -- CHILD...` where CHILD is the given argv
    list or, with code=, `/usr/bin/python3 -c CODE`. Pass upstream_url="" (or
    cacert="", key_path="") to leave that option out."""

    def build(args=(), child=None, *, code=None, upstream_url=None, cacert=None, key_path=None):
        if child is None:
            if code is None:
                raise ValueError("exec_argv needs child argv or code=")
            child = [PYTHON, "-c", code]
        argv = [str(credbroker), "exec"]
        url = upstream.url if upstream_url is None else upstream_url
        ca = certs.ca if cacert is None else cacert
        kp = key_file[0] if key_path is None else key_path
        if url:
            argv += ["--upstream", str(url)]
        if ca:
            argv += ["--cacert", str(ca)]
        if kp:
            argv += ["--key-file", str(kp)]
        if E2E_ROUTES and "--legacy" not in [str(a) for a in args]:
            # make test-routes: every exec also offers a second route (issue 21); nothing the
            # suite checks may change for it. (--legacy has no broker, hence no routes.)
            argv += ["--route", "spare=https://127.0.0.1:9,key-file=%s,inject=bearer"
                     % spare_route_key()]
        return argv + [str(a) for a in args] + ["--"] + [str(c) for c in child]

    return build


def run_process(argv, timeout=30, env=None, input=None, text=True):
    """Runs argv in its own session and returns (returncode, stdout, stderr).
    On timeout the whole process group is killed and the test fails."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            start_new_session=True)
    if isinstance(input, str):
        input = input.encode()
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
        raise AssertionError("timed out after %s s: %s\nstdout:\n%s\nstderr:\n%s"
                             % (timeout, " ".join(argv), out.decode(errors="replace"),
                                err.decode(errors="replace")))
    if text:
        out, err = out.decode(errors="replace"), err.decode(errors="replace")
    return proc.returncode, out, err


@pytest.fixture
def run_exec(exec_argv):
    """run_exec(args, child_code, *, timeout=30, env=None, input=None,
    text=True, **exec_argv_kwargs) -> (returncode, stdout, stderr).

    Runs `credbroker exec --upstream <upstream> --cacert <CA> --key-file
    <key_file> [args] -- /usr/bin/python3 -c child_code`; the child can
    `import brokered`. env adds to the default environment (make_child_env)."""

    def run(args, child_code, *, timeout=30, env=None, input=None, text=True, **kwargs):
        argv = exec_argv(args, code=child_code, **kwargs)
        return run_process(argv, timeout=timeout, env=make_child_env(env), input=input, text=text)

    return run


@pytest.fixture
def held(exec_argv, tmp_path):
    """held(args=(), **exec_argv_kwargs) -> Held: credbroker exec running held.py."""
    started = []

    def start(args=(), **kwargs):
        h = Held(lambda child: exec_argv(args, child=child, **kwargs), make_child_env(), tmp_path)
        started.append(h)
        return h

    yield start
    for h in started:
        h.close()


# -- the runner (test_90_runner.py) ---------------------------------------------

TOOLS = REPO / "tools"
if str(TOOLS) not in sys.path:
    sys.path.insert(0, str(TOOLS))

from mock_platform import MockPlatform, read_json_lines  # noqa: E402


class RunnerProcess:
    """`credbroker runner` against a MockPlatform: workspace workdir/workspace,
    debug log in .log_path, stderr in .stderr_path, the token in
    FLASHDUTY_RUNNER_API_KEY (token=None: none), broker.cacert = the test CA.
    stop() sends a signal and returns the exit status; close() (the fixtures'
    teardown) stops it if it still runs and asserts exit 0."""

    def __init__(self, binary, platform, workdir, cacert, token="", args=(), env=None,
                 wait_connected=True, name="runner"):
        workdir = Path(workdir)
        self.platform = platform
        self.workspace = workdir / (name + "-workspace")
        self.workspace.mkdir(exist_ok=True)
        self.log_path = workdir / (name + ".log")
        self.stderr_path = workdir / (name + ".stderr")
        self.token = platform.token if token == "" else token
        self.argv = [str(binary), "runner", "--api-url", platform.ws_url,
                     "--workspace-root", str(self.workspace), "--log-file", str(self.log_path),
                     "--log-level", "debug", "--set", "broker.cacert=%s" % cacert]
        self.argv += [str(a) for a in args]
        extra = {} if self.token is None else {"FLASHDUTY_RUNNER_API_KEY": self.token}
        extra.update(env or {})
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self._stderr,
                                     stderr=self._stderr, env=make_child_env(extra),
                                     start_new_session=True)
        self.returncode = None
        if wait_connected:
            self.connection = self.wait_connected(timeout=10)

    def wait_connected(self, timeout=10.0):
        """The open connection's record, once the platform has one."""
        def connected():
            if self.proc.poll() is not None:
                raise AssertionError("runner exited with %s:\n%s\n%s"
                                     % (self.proc.returncode, self.stderr(), self.log()))
            state = self.platform.state()
            if state["connected"]:
                return next(c for c in state["connections"] if c["id"] == state["current"])
            return None

        return wait_for(connected, timeout, interval=0.02, what="the runner to connect")

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stderr(self):
        return self.stderr_path.read_text(errors="replace")

    def wait_log(self, *texts, timeout=10.0):
        """The first log line containing every one of texts, once there is one."""
        def line():
            return next((ln for ln in self.log().splitlines() if all(t in ln for t in texts)),
                        None)

        return wait_for(line, timeout, what="runner log line with %r" % (texts,))

    def stop(self, sig=signal.SIGTERM, timeout=40.0):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("runner still running %s s after signal %d:\n%s"
                                     % (timeout, sig, self.log()))
        self.returncode = self.proc.returncode
        if not self._stderr.closed:
            self._stderr.close()
        return self.returncode

    def close(self):
        stopped_by_test = self.returncode is not None or self.proc.poll() is not None
        rc = self.stop()
        if not stopped_by_test:
            assert rc == 0, "runner exited %s at teardown:\n%s\n%s" % (rc, self.stderr(),
                                                                     self.log()[-4000:])


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """A MockPlatform (tools/mock_platform.py) accepting the random .token."""
    p = MockPlatform(tmp_path_factory.mktemp("platform"), token="rt-" + secrets.token_hex(16))
    yield p
    p.stop()


@pytest.fixture
def own_runner(request, credbroker, certs, tmp_path):
    """own_runner(args=(), env=None, token=None (the runner's: "" = the platform's), platform_token=
    random) -> (MockPlatform, RunnerProcess) for this test alone, connected. Both are stopped
    at teardown, also when starting fails (the platform, or a runner that never connects)."""

    def start(args=(), env=None, token="", platform_token=None):
        (tmp_path / "platform").mkdir()
        platform = MockPlatform(tmp_path / "platform",
                                token=platform_token or "rt-" + secrets.token_hex(16))
        request.addfinalizer(platform.stop)
        r = RunnerProcess(credbroker, platform, tmp_path, certs.ca, token=token, args=args,
                          env=env, wait_connected=False)
        request.addfinalizer(r.close)
        r.connection = r.wait_connected(timeout=10)
        return platform, r

    return start


@pytest.fixture(scope="module")
def runner(request, credbroker, certs, platform, tmp_path_factory):
    """A RunnerProcess connected to `platform` (one per module), with the
    module's RUNNER_ARGS (a list of extra options) if it has any."""
    r = RunnerProcess(credbroker, platform, tmp_path_factory.mktemp("runner"), certs.ca,
                      args=getattr(request.module, "RUNNER_ARGS", ()))
    yield r
    r.close()
