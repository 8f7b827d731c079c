"""Layer 64: several APIs per invocation (issue 21).

Two real HTTPS upstreams with their own CAs and keys: A is the default route
(flashduty, query injection), B is the route `github` (bearer). Each knows the
other's key and echoes it on /leak-key, as an API that reflects a credential
would. One child reaches both over its one control fd, with Python's
http.client and with curl through the preload shim; each upstream must see only
its own key, every response must reach the child with both keys masked, and a
host that names no route must get 421 without any upstream seeing the request.
"""

import json
import os
import secrets
import shutil
import subprocess
import urllib.parse
from pathlib import Path

import pytest

from conftest import (PYTHON, Upstream, make_certs, make_child_env, run_process, wait_for,
                      write_key_file)

PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
              "ALL_PROXY", "no_proxy", "NO_PROXY")


class Apis:
    """Upstream A (default route) and B (route github), their keys, key files and CAs."""

    def __init__(self, workdir):
        workdir = Path(workdir)
        self.key_a = secrets.token_hex(16)
        self.key_b = "ghp_" + secrets.token_urlsafe(24)
        self.key_c = "grafana-" + secrets.token_hex(12)
        self.file_a = write_key_file(workdir / "a.key", self.key_a)
        self.file_b = write_key_file(workdir / "b.key", self.key_b)
        certs_a = make_certs(workdir / "certs-a")
        certs_b = make_certs(workdir / "certs-b")
        self.cacert = workdir / "cas.pem"
        self.cacert.write_bytes(certs_a.ca.read_bytes() + certs_b.ca.read_bytes())
        (workdir / "a").mkdir()
        (workdir / "b").mkdir()
        # Each knows the other's key: /leak-key echoes it.
        self.a = Upstream(certs_a, workdir / "a", args=["--key-file", self.file_b])
        self.b = Upstream(certs_b, workdir / "b", args=["--key-file", self.file_a])
        self.workdir = workdir

    def stop(self):
        self.a.stop()
        self.b.stop()

    def argv(self, credbroker, args=(), child=None, *, code=None, default=True):
        """credbroker exec with A as the default route (default=False: none) and the given
        args, then the child (argv, or python3 -c code)."""
        argv = [str(credbroker), "exec", "--cacert", str(self.cacert)]
        if default:
            argv += ["--upstream", self.a.url, "--key-file", str(self.file_a)]
        child = child if child is not None else [PYTHON, "-c", code]
        return argv + [str(a) for a in args] + ["--"] + [str(c) for c in child]

    def github(self, extra=""):
        return "--route=github=%s,key-file=%s,inject=bearer%s" % (self.b.url, self.file_b, extra)


@pytest.fixture(scope="module")
def apis(tmp_path_factory):
    a = Apis(tmp_path_factory.mktemp("routes"))
    yield a
    a.stop()


def tagged(upstream, t, n=1):
    def found():
        recs = [r for r in upstream.requests() if ("t=" + t) in r["query"].split("&")]
        return recs if len(recs) >= n else None

    return wait_for(found, what="%d request(s) tagged %s" % (n, t))


def untagged(upstream, t):
    return [r for r in upstream.requests() if t in json.dumps(r)]


def header(rec, name):
    return [v for k, v in rec["headers"] if k.lower() == name.lower()]


def app_keys(rec):
    return [v for k, v in urllib.parse.parse_qsl(rec["query"], keep_blank_values=True)
            if k == "app_key"]


def run(argv, env=None, **kwargs):
    e = make_child_env(env)
    for name in PROXY_VARS:
        e.pop(name, None)
    return run_process(argv, env=e, **kwargs)


# A child that sends each (host, method, path) on its own brokered connection and, last, two
# requests with different hosts on one kept-alive connection; prints statuses, bodies and its
# environment's route variables.
CALLS_CHILD = r"""
import brokered, json, os, sys
calls = json.loads(sys.argv[1])
out = {"results": [], "env": {k: v for k, v in os.environ.items()
                              if k.endswith("_BASE_URL") or k == "FLASHDUTY_CRED_FD"},
       "environ": "\n".join("%s=%s" % kv for kv in os.environ.items())}
for host, method, path in calls["single"]:
    c = brokered.connection(host=host)
    c.request(method, path, body=b"{}" if method == "POST" else None)
    r = c.getresponse()
    out["results"].append([r.status, dict(r.getheaders()), r.read().decode()])
    c.close()
c = brokered.connection()
for host, method, path in calls["shared"]:
    c.request(method, path, headers={"Host": host})
    r = c.getresponse()
    out["results"].append([r.status, dict(r.getheaders()), r.read().decode()])
print(json.dumps(out))
"""


def call(apis, credbroker, args, single, shared=(), default=True, env=None):
    rc, out, err = run(apis.argv(credbroker, args, code=CALLS_CHILD, default=default)[:-1]
                       + [CALLS_CHILD, json.dumps({"single": single, "shared": list(shared)})],
                       env=env)
    assert rc == 0, err
    return json.loads(out), err


def test_one_child_reaches_two_apis_each_with_only_its_own_key(apis, credbroker):
    t = secrets.token_hex(6)
    got, _ = call(apis, credbroker, [apis.github()], [
        ["flashduty.broker.local", "GET", "/echo?t=%s-a1" % t],
        ["github.broker.local", "GET", "/echo?t=%s-b1" % t],
        ["api.example.com", "GET", "/echo?t=%s-a2" % t],  # outside .broker.local: the default
    ], shared=[["github.broker.local", "GET", "/echo?t=%s-b3" % t],
               ["flashduty.broker.local", "GET", "/echo?t=%s-a3" % t],
               ["GitHub.Broker.Local.:80", "GET", "/echo?t=%s-b2" % t]])
    assert [r[0] for r in got["results"]] == [200] * 6, got["results"]
    for n in ("a1", "a2", "a3"):
        rec = tagged(apis.a, "%s-%s" % (t, n))[0]
        assert app_keys(rec) == [apis.key_a], rec
        assert header(rec, "Authorization") == []
        assert apis.key_b not in json.dumps(rec)
        assert header(rec, "Host") == [apis.a.url.split("//")[1]]
    for n in ("b1", "b2", "b3"):
        rec = tagged(apis.b, "%s-%s" % (t, n))[0]
        assert header(rec, "Authorization") == ["Bearer " + apis.key_b], rec
        assert app_keys(rec) == []
        assert apis.key_a not in json.dumps(rec)
        assert header(rec, "Host") == [apis.b.url.split("//")[1]]
    assert untagged(apis.b, t + "-a") == [] and untagged(apis.a, t + "-b") == []
    # Each route's placeholder in its variable; no key anywhere in the environment.
    assert got["env"]["FLASHDUTY_BASE_URL"] == "http://flashduty.broker.local"
    assert got["env"]["GITHUB_BASE_URL"] == "http://github.broker.local"
    assert got["env"]["FLASHDUTY_CRED_FD"] == "3"
    assert apis.key_a not in got["environ"] and apis.key_b not in got["environ"]


def test_a_response_echoing_the_other_routes_key_reaches_the_child_masked(apis, credbroker):
    got, _ = call(apis, credbroker, [apis.github()], [
        ["flashduty.broker.local", "GET", "/leak-key"],  # A knows B's key
        ["github.broker.local", "GET", "/leak-key"],     # B knows A's key
    ])
    (sa, ha, ba), (sb, hb, bb) = got["results"]
    assert sa == 200 and sb == 200
    text = json.dumps(got["results"])
    for key in (apis.key_a, apis.key_b):
        assert key not in text
        assert urllib.parse.quote(key, safe="") not in text
    assert json.loads(ba)["leaked"] == "*" * len(apis.key_b)
    assert json.loads(bb)["leaked"] == "*" * len(apis.key_a)
    assert ha["X-Leak"] == "*" * len(apis.key_b) and hb["X-Leak"] == "*" * len(apis.key_a)


def test_a_host_naming_no_route_gets_421_and_never_leaves_the_machine(apis, credbroker):
    t = secrets.token_hex(6)
    got, _ = call(apis, credbroker, [apis.github()], [
        ["nope.broker.local", "GET", "/echo?t=%s" % t],
        ["bad_label.broker.local", "GET", "/echo?t=%s" % t],
        ["a.b.broker.local", "GET", "/echo?t=%s" % t],
        # An absolute-form target names its route, whatever Host says.
        ["github.broker.local", "GET", "http://nope.broker.local/echo?t=%s" % t],
    ], shared=[["nope.broker.local", "GET", "/echo?t=%s" % t]])
    for status, headers, body in got["results"]:
        assert status == 421, (status, body)
        err = json.loads(body)["error"]
        assert err["code"] == "MisdirectedRequest"
        assert "flashduty.broker.local" in err["message"]
        assert "github.broker.local" in err["message"]
    assert untagged(apis.a, t) == [] and untagged(apis.b, t) == []


def test_an_absolute_form_target_picks_the_route_it_names(apis, credbroker):
    t = secrets.token_hex(6)
    got, _ = call(apis, credbroker, [apis.github()], [
        ["flashduty.broker.local", "GET", "http://github.broker.local/echo?t=%s" % t],
    ])
    assert got["results"][0][0] == 200
    assert header(tagged(apis.b, t)[0], "Authorization") == ["Bearer " + apis.key_b]


def test_a_routes_policy_binds_only_that_route(apis, credbroker):
    t = secrets.token_hex(6)
    got, _ = call(apis, credbroker, [apis.github(",allow=GET /echo*")], [
        ["github.broker.local", "GET", "/echo?t=%s-get" % t],
        ["github.broker.local", "POST", "/echo?t=%s-post" % t],
        ["flashduty.broker.local", "POST", "/echo?t=%s-default" % t],
    ])
    assert [r[0] for r in got["results"]] == [200, 403, 200], got["results"]
    assert json.loads(got["results"][1][2])["error"]["code"] == "PolicyDenied"
    tagged(apis.b, t + "-get")
    tagged(apis.a, t + "-default")
    assert untagged(apis.b, t + "-post") == []


def test_key_sources_file_fd_and_env_together(apis, credbroker):
    t = secrets.token_hex(6)
    rfd, wfd = os.pipe()
    os.write(wfd, (apis.key_b + "\n").encode())
    os.close(wfd)
    os.set_inheritable(rfd, True)
    args = ["--route", "github=%s,key-fd=%d,inject=bearer" % (apis.b.url, rfd),
            "--route", "grafana=%s,key-env=GRAFANA_TOKEN,inject=header:X-Grafana-Key,"
                       "env=GRAFANA_URL" % apis.a.url]
    argv = apis.argv(credbroker, args, code=CALLS_CHILD)[:-1] + [CALLS_CHILD, json.dumps({
        "single": [["github.broker.local", "GET", "/echo?t=%s-fd" % t],
                   ["grafana.broker.local", "GET", "/echo?t=%s-env" % t],
                   ["flashduty.broker.local", "GET", "/echo?t=%s-file" % t]], "shared": []})]
    # The key under another name too: no route's key reaches the command by any variable.
    env = make_child_env({"GRAFANA_TOKEN": apis.key_c, "COPY_OF_TOKEN": apis.key_c})
    proc = subprocess.run(argv, env=env, pass_fds=(rfd,), capture_output=True, text=True,
                          timeout=30)
    os.close(rfd)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert [r[0] for r in got["results"]] == [200, 200, 200]
    assert header(tagged(apis.b, t + "-fd")[0], "Authorization") == ["Bearer " + apis.key_b]
    rec = tagged(apis.a, t + "-env")[0]
    assert header(rec, "X-Grafana-Key") == [apis.key_c] and app_keys(rec) == []
    assert app_keys(tagged(apis.a, t + "-file")[0]) == [apis.key_a]
    assert "\nGRAFANA_URL=http://grafana.broker.local\n" in "\n%s\n" % got["environ"]
    assert "GRAFANA_TOKEN" not in got["environ"] and apis.key_c not in got["environ"]
    assert "COPY_OF_TOKEN" not in got["environ"]


def test_only_routes_and_no_default(apis, credbroker):
    t = secrets.token_hex(6)
    got, _ = call(apis, credbroker, [apis.github()], [
        ["github.broker.local", "GET", "/echo?t=%s-b" % t],
        ["flashduty.broker.local", "GET", "/echo?t=%s-a" % t],
        ["api.example.com", "GET", "/echo?t=%s-a" % t],
    ], default=False)
    assert [r[0] for r in got["results"]] == [200, 421, 421]
    assert "FLASHDUTY_BASE_URL" not in got["env"]
    tagged(apis.b, t + "-b")
    assert untagged(apis.a, t + "-a") == []


def test_audit_lines_name_the_route(apis, credbroker, tmp_path):
    t = secrets.token_hex(6)
    audit = tmp_path / "audit.jsonl"
    call(apis, credbroker, [apis.github(), "--audit", audit], [
        ["github.broker.local", "GET", "/echo?t=%s" % t],
        ["flashduty.broker.local", "GET", "/echo?t=%s" % t],
        ["nope.broker.local", "GET", "/echo?t=%s" % t],
    ])
    lines = [json.loads(x) for x in audit.read_text().splitlines()]
    assert [(x["route"], x["status"]) for x in lines] == [
        ("github", 200), ("flashduty", 200), (None, 421)], lines
    assert all(t in x["path"] for x in lines)
    text = audit.read_text()
    assert apis.key_a not in text and apis.key_b not in text


ROUTES_YAML = """\
# exec --routes: key sources only, never keys
routes:
  - name: github
    url: {b}
    key_file: {kb}
    inject: bearer
    allow:
      - GET /echo*
      - PUT /echo*
  - name: grafana
    url: {a}
    key-env: GRAFANA_TOKEN
    inject: header:X-Grafana-Key
"""


def test_routes_file(apis, credbroker, tmp_path):
    t = secrets.token_hex(6)
    f = tmp_path / "routes.yaml"
    f.write_text(ROUTES_YAML.format(a=apis.a.url, b=apis.b.url, kb=apis.file_b))
    got, _ = call(apis, credbroker, ["--routes", f], [
        ["github.broker.local", "GET", "/echo?t=%s-b" % t],
        ["github.broker.local", "POST", "/echo?t=%s-post" % t],
        ["grafana.broker.local", "GET", "/echo?t=%s-c" % t],
    ], env={"GRAFANA_TOKEN": apis.key_c})
    assert [r[0] for r in got["results"]] == [200, 403, 200]
    assert header(tagged(apis.b, t + "-b")[0], "Authorization") == ["Bearer " + apis.key_b]
    assert header(tagged(apis.a, t + "-c")[0], "X-Grafana-Key") == [apis.key_c]
    assert got["env"]["GRAFANA_BASE_URL"] == "http://grafana.broker.local"


def test_bad_routes_exit_2_with_one_clear_line_and_start_nothing(apis, credbroker, tmp_path):
    marker = tmp_path / "ran"
    crlf = tmp_path / "crlf.key"
    crlf.write_bytes(b"abc\r\ndef\n")
    crlf.chmod(0o600)
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("routes:\n  - name: x\n    url: [1, 2]\n")
    key_yaml = tmp_path / "key.yaml"
    key_yaml.write_text("- name: x\n  url: https://h\n  key: sk_live_pasted\n")
    b = apis.b.url
    cases = [
        (["--route", "github=%s,key-file=%s" % (b, crlf)], "control"),
        (["--route", "github=%s,key-file=%s" % (b, tmp_path / "missing.key")], "missing.key"),
        (["--route", "github=%s,key-file=%s" % (b, apis.file_b),
          "--route", "github=%s,key-file=%s" % (b, apis.file_b)], "given twice"),
        (["--route", "GitHub=%s,key-file=%s" % (b, apis.file_b)], "route name 'GitHub'"),
        (["--route", "flashduty=%s,key-file=%s" % (b, apis.file_b)], "default route"),
        (["--route", "x=%s,key-file=%s,env=GITHUB_BASE_URL" % (b, apis.file_b),
          "--route", "github=%s,key-file=%s" % (b, apis.file_b)], "both set GITHUB_BASE_URL"),
        (["--route", "github=%s" % b], "has no key"),
        (["--route", "github=ftp://h,key-file=%s" % apis.file_b], "URL"),
        (["--route", "github=%s,key-file=%s,allow=GET" % (b, apis.file_b)], "allow"),
        (["--route", "github=%s,key-file=%s,inject=cookie" % (b, apis.file_b)], "inject"),
        (["--routes", bad_yaml], "bad.yaml: line 3: url: a single value"),
        (["--routes", key_yaml], "unknown field 'key'"),
        (["--routes", tmp_path / "none.yaml"], "none.yaml"),
    ]
    for args, says in cases:
        rc, out, err = run(apis.argv(credbroker, args, ["/usr/bin/touch", marker]))
        assert rc == 2, (args, rc, err)
        assert err.count("\n") == 1 and says in err, (args, err)
        assert "sk_live_pasted" not in err
        assert not marker.exists(), args


def test_curl_through_the_preload_shim_reaches_each_route(apis, credbroker, build_dir):
    curl = shutil.which("curl")
    shim = build_dir / "libcredfd-preload.so"
    if curl is None or not shim.exists() or b"libasan.so" in shim.read_bytes():
        pytest.skip("curl or an uninstrumented preload shim is missing")
    t = secrets.token_hex(6)
    rc, out, err = run(apis.argv(credbroker, ["--preload", apis.github()], [
        curl, "-sS", "-w", "%{http_code} ", "-o", "/dev/null", "-o", "/dev/null", "-o",
        "/dev/null", "-o", "/dev/null",
        "http://github.broker.local/echo?t=%s-b" % t,
        "http://flashduty.broker.local/echo?t=%s-a" % t,
        "http://nope.broker.local/echo?t=%s-x" % t,
        "http://github.broker.local/leak-key"]))
    assert rc == 0, err
    assert out.split() == ["200", "200", "421", "200"]
    assert header(tagged(apis.b, t + "-b")[0], "Authorization") == ["Bearer " + apis.key_b]
    assert app_keys(tagged(apis.a, t + "-a")[0]) == [apis.key_a]
    assert untagged(apis.a, t + "-x") == [] and untagged(apis.b, t + "-x") == []


def test_credfd_takes_a_route_by_name_or_url(apis, credbroker, build_dir):
    credfd = build_dir / "credfd"
    t = secrets.token_hex(6)
    child = ["/bin/sh", "-c", '"$0" --route github "/echo?t=$1-name" && '
             '"$0" "http://github.broker.local/echo?t=$1-url" && "$0" "/echo?t=$1-default" && '
             '"$0" -f --route nope /echo; echo " rc=$?"', credfd, t]
    rc, out, err = run(apis.argv(credbroker, [apis.github()], child))
    assert rc == 0, err
    assert out.rstrip().endswith("rc=22"), out
    for n in ("name", "url"):
        rec = tagged(apis.b, "%s-%s" % (t, n))[0]
        assert header(rec, "Authorization") == ["Bearer " + apis.key_b]
        assert app_keys(rec) == []  # no sentinel on a route's request
        assert header(rec, "Host") == [apis.b.url.split("//")[1]]
    assert app_keys(tagged(apis.a, t + "-default")[0]) == [apis.key_a]


# -- the runner: broker.routes --------------------------------------------------------------

RUNNER_ROUTES_YAML = """\
broker:
  routes:
    - name: grafana
      url: {url}
      key_file: {key_file}
      inject: header:X-Grafana-Key
      allow: [GET /echo*, GET /leak-key]
"""


@pytest.fixture
def routed_runner(request, apis, credbroker, tmp_path):
    """A runner whose config offers the route grafana -> upstream A with B's key (A echoes
    that key on /leak-key), against its own MockPlatform."""
    from conftest import MockPlatform, RunnerProcess

    (tmp_path / "platform").mkdir()
    platform = MockPlatform(tmp_path / "platform", token="rt-" + secrets.token_hex(16))
    request.addfinalizer(platform.stop)
    cfg = tmp_path / "runner.yaml"
    cfg.write_text(RUNNER_ROUTES_YAML.format(url=apis.a.url, key_file=apis.file_b))
    r = RunnerProcess(credbroker, platform, tmp_path, apis.cacert, args=["--config", cfg],
                      wait_connected=False)
    request.addfinalizer(r.close)
    r.connection = r.wait_connected(timeout=10)
    return platform, r


def test_runner_offers_its_routes_to_a_task_without_a_credential(routed_runner, apis, build_dir,
                                                                credbroker):
    platform, runner = routed_runner
    t = secrets.token_hex(6)
    credfd = build_dir / "credfd"
    isolated = json.loads(subprocess.run([str(credbroker), "version", "--json"], check=True,
                                         capture_output=True).stdout)["isolation"] != "none"
    cmd = ("env; echo ---SPLIT---; {c} --route grafana '/echo?t={t}'; echo; "
           "{c} \"$GRAFANA_BASE_URL/leak-key\"; echo; {c} -X POST --route grafana /echo; echo; "
           "{cat} 2>&1; true").format(c=credfd, t=t,
                                      # Under isolation the route's key file is covered too.
                                      cat="cat %s" % apis.file_b if isolated else "")
    task_id = platform.bash(cmd)
    res = platform.result(task_id, timeout=20)
    assert res["success"] is True, res
    out = res["result"]["stdout"] + res["result"]["stderr"]
    env_text, _, rest = res["result"]["stdout"].partition("---SPLIT---\n")
    env = dict(line.partition("=")[::2] for line in env_text.splitlines() if "=" in line)
    assert env["GRAFANA_BASE_URL"] == "http://grafana.broker.local"
    assert env["FLASHDUTY_CRED_FD"] == "3" and "FLASHDUTY_BASE_URL" not in env
    rec = tagged(apis.a, t)[0]
    assert header(rec, "X-Grafana-Key") == [apis.key_b] and app_keys(rec) == []
    leak = json.loads(rest.splitlines()[1])
    assert leak["leaked"] == "*" * len(apis.key_b)
    assert "PolicyDenied" in rest.splitlines()[2]
    # The key nowhere: output, environment, the runner's log, the platform's messages.
    assert apis.key_b not in out
    assert apis.key_b not in runner.log() and apis.key_b not in runner.stderr()
    assert apis.key_b not in json.dumps(platform.messages())


def test_runner_task_with_its_own_credential_keeps_it_as_the_default_route(
        routed_runner, apis, build_dir):
    platform, runner = routed_runner
    t = secrets.token_hex(6)
    key = secrets.token_hex(16)
    cmd = "{c} '/echo?t={t}-own' && {c} --route grafana '/echo?t={t}-route'".format(
        c=build_dir / "credfd", t=t)
    task_id = platform.bash(cmd, credential={"key": key, "base_url": apis.b.url})
    res = platform.result(task_id, timeout=20)
    assert res["success"] is True and res["result"]["exit_code"] == 0, res
    own = tagged(apis.b, t + "-own")[0]
    assert app_keys(own) == [key] and apis.key_b not in json.dumps(own)
    route = tagged(apis.a, t + "-route")[0]
    assert header(route, "X-Grafana-Key") == [apis.key_b] and key not in json.dumps(route)


def test_runner_refuses_bad_routes_with_one_line(apis, credbroker, tmp_path):
    cases = [
        ("broker:\n  routes:\n    - name: flashduty\n      url: %s\n      key_file: %s\n"
         % (apis.a.url, apis.file_b), "default route"),
        ("broker:\n  routes:\n    - name: g\n      url: %s\n      key_file: %s/none\n"
         % (apis.a.url, tmp_path), "none"),
        ("broker:\n  routes: grafana\n", "list of routes"),
        ("broker:\n  routes:\n    - name: g\n      url: %s\n      key: sk_live_pasted\n"
         % apis.a.url, "unknown field 'key'"),
    ]
    for text, says in cases:
        cfg = tmp_path / "runner.yaml"
        cfg.write_text(text)
        rc, out, err = run([str(credbroker), "runner", "--config", cfg, "--api-url",
                            "ws://127.0.0.1:9/", "--workspace-root", tmp_path],
                           env={"FLASHDUTY_RUNNER_API_KEY": "rt-x"})
        assert rc == 2, (text, rc, err)
        assert len(err.strip().splitlines()) == 1 and says in err, (text, err)
        assert "sk_live_pasted" not in err
    rc, out, err = run([str(credbroker), "runner", "--api-url", "ws://127.0.0.1:9/",
                        "--workspace-root", tmp_path],
                       env={"FLASHDUTY_RUNNER_API_KEY": "rt-x",
                            "FLASHDUTY_RUNNER_BROKER_ROUTES": "g=https://h"})
    assert rc == 2 and "config file" in err, err


# A child that sends a POST head, reads the whole refusal, and only then sends the body: the
# broker must still be reading it (as after an upstream's early answer), not have closed.
REFUSED_THEN_BODY_CHILD = r"""
import brokered, json, sys
out = []
for host, path in json.loads(sys.argv[1]):
    s = brokered.dial()
    s.sendall(("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 65536\r\n\r\n" % (path, host)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    h, _, body = head.partition(b"\r\n\r\n")
    length = int([l.split(b":")[1] for l in h.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(body) < length:
        body += s.recv(4096)
    try:
        s.sendall(b"x" * 65536)
        sent = "sent"
    except OSError as e:
        sent = type(e).__name__
    rest = s.recv(4096)
    out.append([h.split(b"\r\n")[0].decode(), sent, rest.decode()])
    s.close()
print(json.dumps(out))
"""


def test_a_refused_post_gets_its_answer_and_may_still_send_its_body(apis, credbroker):
    t = secrets.token_hex(6)
    calls = [["github.broker.local", "/echo?t=%s-policy" % t],
             ["nope.broker.local", "/echo?t=%s-421" % t]]
    rc, out, err = run(apis.argv(credbroker, [apis.github(",allow=GET /echo*")],
                                 code=REFUSED_THEN_BODY_CHILD)[:-1]
                       + [REFUSED_THEN_BODY_CHILD, json.dumps(calls)])
    assert rc == 0, err
    got = json.loads(out)
    assert [g[0] for g in got] == ["HTTP/1.1 403 Forbidden", "HTTP/1.1 421 Misdirected Request"]
    # The body went out whole after the answer (no EPIPE), then the broker closed (EOF).
    assert [g[1:] for g in got] == [["sent", ""], ["sent", ""]], got
    assert untagged(apis.a, t) == [] and untagged(apis.b, t) == []
