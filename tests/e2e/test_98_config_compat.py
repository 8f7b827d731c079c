"""`credbroker runner` configured as either generation of the Go runner
(RUNNER-OPS.md 11, compatibility rows 51-53): the newer runner's --token,
--url, --workspace, --log-level and their FLASHDUTY_RUNNER_TOKEN, _URL,
_WORKSPACE, _LOG_LEVEL beside the config era's file keys and variables.

Precedence is flag > environment > config file > default; in one layer a
newer name wins over the config-era one, with a warning when the values
differ. Live runners connect to a MockPlatform that accepts one token, so a
connection proves which token won; `--print-config` shows the other settings
without connecting anywhere (the default URL is a real host).
"""

import json
import os
import secrets
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import MockPlatform, make_child_env, run_process, wait_for

DEFAULT_URL = "wss://api.flashcat.cloud/safari/worknode/ws"
TOKEN_ARGV_WARNING = "the token was given with --token"


def new_token():
    return "rt-" + secrets.token_hex(16)


class Runner:
    """`credbroker runner ARGS` with env (on top of make_child_env, which drops every
    inherited FLASHDUTY_*), logging to workdir/runner.log at debug unless args say
    otherwise. Nothing else is added: each test gives the names it tests."""

    def __init__(self, credbroker, workdir, args, env=None):
        self.log_path = Path(workdir) / "runner.log"
        self.stderr_path = Path(workdir) / "runner.stderr"
        self.argv = [str(credbroker), "runner", "--log-file", str(self.log_path)] + \
            [str(a) for a in args]
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self._stderr,
                                     stderr=self._stderr, env=make_child_env(env or {}),
                                     start_new_session=True)

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stderr(self):
        return self.stderr_path.read_text(errors="replace")

    def wait_connected(self, platform, timeout=10.0):
        def connected():
            if self.proc.poll() is not None:
                raise AssertionError("runner exited with %s:\n%s\n%s"
                                     % (self.proc.returncode, self.stderr(), self.log()))
            state = platform.state()
            if state["connected"]:
                return next(c for c in state["connections"] if c["id"] == state["current"])
            return None

        return wait_for(connected, timeout, interval=0.02, what="the runner to connect")

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self._stderr.closed:
            self._stderr.close()
        return self.proc.returncode


@pytest.fixture
def live(request, credbroker, tmp_path):
    """live(args, env=None, platform_token=random) -> (MockPlatform, Runner, connection record):
    a runner that must connect to a fresh platform accepting only platform_token. In args and
    env, "{url}" is replaced by the platform's URL. Both are stopped at teardown; the runner
    must exit 0."""

    def start(args, env=None, platform_token=None):
        n = len(list(tmp_path.glob("live*")))
        workdir = tmp_path / ("live%d" % n)
        workdir.mkdir()
        platform = MockPlatform(workdir, token=platform_token or new_token())
        request.addfinalizer(platform.stop)
        fill = lambda v: str(v).replace("{url}", platform.ws_url)  # noqa: E731
        r = Runner(credbroker, workdir, [fill(a) for a in args],
                   {k: fill(v) for k, v in (env or {}).items()})

        def stop():
            rc = r.close()
            assert rc == 0, "runner exited %s:\n%s\n%s" % (rc, r.stderr(), r.log()[-3000:])

        request.addfinalizer(stop)
        conn = r.wait_connected(platform)
        assert conn["token_ok"], conn
        return platform, r, conn

    return start


def print_config(credbroker, tmp_path, args=(), env=None):
    """(returncode, {setting: value} from --print-config, stderr without the warning every
    runner without permission rules gives)."""
    argv = [str(credbroker), "runner", "--print-config"] + [str(a) for a in args]
    rc, out, err = run_process(argv, timeout=10, env=make_child_env(
        dict({"HOME": str(tmp_path / "home")}, **(env or {}))))
    err = "".join(line for line in err.splitlines(keepends=True)
                  if "permission rules not configured" not in line)
    settings = {}
    for line in out.splitlines():
        name, sep, value = line.partition(": ")
        if sep:
            settings[name] = value
        elif line.endswith(":"):
            settings[line[:-1]] = ""
    return rc, settings, err


def config_file(tmp_path, text, name="config.yaml"):
    path = tmp_path / name
    path.write_text(text)
    path.chmod(0o600)
    return path


def bash(platform, command):
    res = platform.result(platform.bash(command), timeout=20)
    assert res["success"] is True and res["exit_code"] == 0, res
    return res["result"]["stdout"]


# -- the token ------------------------------------------------------------------------

@pytest.mark.parametrize("form", ["separate", "equals"])
def test_token_flag_connects_with_it_warns_and_is_wiped_from_cmdline(live, tmp_path, form):
    token = new_token()
    flag = ["--token", token] if form == "separate" else ["--token=" + token]
    platform, r, conn = live(flag + ["--url", "{url}", "--workspace", tmp_path / "ws"],
                             platform_token=token)
    assert conn["params"]["token"] == token
    with open("/proc/%d/cmdline" % r.proc.pid, "rb") as f:
        cmdline = f.read()
    assert token.encode() not in cmdline
    assert b"--token" in cmdline  # only the value is wiped
    assert r.argv[-1].encode() in cmdline  # and the rest of argv is intact
    # A command reading its parent's argv finds nothing either.
    out = bash(platform, "tr '\\0' '\\n' < /proc/$PPID/cmdline")
    assert token not in out
    warning = wait_for(lambda: next((ln for ln in r.log().splitlines()
                                     if TOKEN_ARGV_WARNING in ln), None),
                       what="the --token warning")
    assert "level=warn" in warning
    assert token not in r.log() + r.stderr()


def test_token_variable_connects_and_no_command_can_see_it(live, tmp_path):
    token = new_token()
    platform, r, conn = live(["--url", "{url}", "--workspace", tmp_path / "ws"],
                             env={"FLASHDUTY_RUNNER_TOKEN": token}, platform_token=token)
    assert conn["params"]["token"] == token
    out = bash(platform, "env; echo ===; tr '\\0' '\\n' < /proc/$PPID/environ 2>/dev/null; true")
    env_part = out.split("===")[0]
    assert "PATH=" in env_part  # env really ran
    assert token not in out
    assert "FLASHDUTY_RUNNER_TOKEN" not in out
    assert not [ln for ln in env_part.splitlines() if ln.startswith("FLASHDUTY_")]
    # Nor the runner's own environment block (tests run as root, so it is readable).
    try:
        with open("/proc/%d/environ" % r.proc.pid, "rb") as f:
            assert token.encode() not in f.read()
    except PermissionError:
        pass
    assert TOKEN_ARGV_WARNING not in r.log()
    assert token not in r.log() + r.stderr()


def test_token_variable_wins_over_api_key_variable_with_a_warning(live, tmp_path):
    token, other = new_token(), new_token()
    platform, r, conn = live(["--url", "{url}", "--workspace", tmp_path / "ws"],
                             env={"FLASHDUTY_RUNNER_TOKEN": token,  # first: order must not matter
                                  "FLASHDUTY_RUNNER_API_KEY": other},
                             platform_token=token)
    assert conn["params"]["token"] == token
    line = wait_for(lambda: next((ln for ln in r.log().splitlines() if "both set" in ln), None),
                    what="the warning")
    assert "FLASHDUTY_RUNNER_TOKEN and FLASHDUTY_RUNNER_API_KEY" in line and "level=warn" in line
    text = r.log() + r.stderr()
    assert token not in text and other not in text
    assert other not in bash(platform, "env")


def test_same_token_under_both_variables_is_not_warned_about(live, tmp_path):
    token = new_token()
    _, r, _ = live(["--url", "{url}", "--workspace", tmp_path / "ws"],
                   env={"FLASHDUTY_RUNNER_API_KEY": token, "FLASHDUTY_RUNNER_TOKEN": token},
                   platform_token=token)
    wait_for(lambda: "connected to the platform" in r.log(), what="the connected line")
    assert "both set" not in r.log()


def test_token_flag_wins_over_both_variables_and_the_file(live, tmp_path):
    token = new_token()
    cfg = config_file(tmp_path, "api_key: %s\n" % new_token())
    _, r, conn = live(["-c", cfg, "--token", token, "--url", "{url}",
                       "--workspace", tmp_path / "ws"],
                      env={"FLASHDUTY_RUNNER_API_KEY": new_token(),
                           "FLASHDUTY_RUNNER_TOKEN": new_token()},
                      platform_token=token)
    assert conn["params"]["token"] == token


def test_token_variable_wins_over_the_file(live, tmp_path):
    token = new_token()
    cfg = config_file(tmp_path, "api_key: %s\n" % new_token())
    _, r, conn = live(["--config", cfg, "--url", "{url}", "--workspace", tmp_path / "ws"],
                      env={"FLASHDUTY_RUNNER_TOKEN": token}, platform_token=token)
    assert conn["params"]["token"] == token
    assert "both set" not in r.log()  # the file is another layer


def test_config_era_token_and_url_still_work_alone(live, tmp_path):
    token = new_token()
    _, r, conn = live(["--workspace-root", tmp_path / "ws"],
                      env={"FLASHDUTY_RUNNER_API_KEY": token,
                           "FLASHDUTY_RUNNER_API_URL": "{url}"},
                      platform_token=token)
    assert conn["params"]["token"] == token and conn["path"] == "/runner/ws"


# -- URL and workspace, live ------------------------------------------------------------

def test_url_variable_and_workspace_variable_are_used(live, tmp_path):
    token = new_token()
    ws = tmp_path / "from-env"
    platform, r, conn = live([], env={"FLASHDUTY_RUNNER_TOKEN": token,
                                      "FLASHDUTY_RUNNER_URL": "{url}",
                                      "FLASHDUTY_RUNNER_WORKSPACE": str(ws)},
                             platform_token=token)
    assert conn["path"] == "/runner/ws"
    assert bash(platform, "pwd").strip() == os.path.realpath(ws)


def test_url_flag_wins_over_api_url_flag_and_workspace_flag_over_workspace_root(live, tmp_path):
    token = new_token()
    ws, other = tmp_path / "newer", tmp_path / "older"
    # The config-era values lead nowhere: port 9 is closed; the runner connects only if --url won.
    # The newer flags come first: argv order must not matter.
    platform, r, conn = live(["--url", "{url}", "--api-url", "ws://127.0.0.1:9/runner/ws",
                              "--workspace", ws, "--set", "workspace_root=%s" % other],
                             env={"FLASHDUTY_RUNNER_TOKEN": token}, platform_token=token)
    assert bash(platform, "pwd").strip() == os.path.realpath(ws)
    assert not other.exists()
    log = r.log()
    assert "--url and --api-url (or --set api_url=) are both given and differ: using --url" in log
    assert "--workspace and --workspace-root" in log
    assert "ws://127.0.0.1:9" not in log  # warnings name settings, never values


def test_url_variable_wins_over_api_url_variable_whatever_their_order(live, tmp_path):
    token = new_token()
    _, r, _ = live(["--workspace", tmp_path / "ws"],
                   env={"FLASHDUTY_RUNNER_URL": "{url}",
                        "FLASHDUTY_RUNNER_API_URL": "ws://127.0.0.1:9/runner/ws",
                        "FLASHDUTY_RUNNER_TOKEN": token},
                   platform_token=token)
    wait_for(lambda: "FLASHDUTY_RUNNER_URL and FLASHDUTY_RUNNER_API_URL are both set and differ"
             in r.log(), what="the URL warning")


@pytest.mark.parametrize("how", ["flag", "env"])
def test_log_level_flag_and_variable_set_the_level_of_a_live_runner(live, tmp_path, how):
    token = new_token()
    env = {"FLASHDUTY_RUNNER_TOKEN": token}
    args = ["--url", "{url}", "--workspace", tmp_path / "ws"]
    if how == "flag":
        args += ["--log-level", "warn"]
    else:
        env["FLASHDUTY_RUNNER_LOG_LEVEL"] = "warn"
    platform, r, _ = live(args, env=env, platform_token=token)
    bash(platform, "true")
    r.close()
    # "runner ... starting", "connected to the platform", "task finished" are info lines.
    assert "level=info" not in r.log() and "level=warning" in r.log(), r.log()


# -- precedence and defaults, with --print-config ----------------------------------------

def test_default_url_is_the_newer_runners(credbroker, tmp_path):
    rc, s, err = print_config(credbroker, tmp_path, env={"FLASHDUTY_RUNNER_TOKEN": new_token()})
    assert rc == 0, err
    assert s["api_url"] == DEFAULT_URL
    assert s["workspace_root"] == str(tmp_path / "home" / ".flashduty-runner" / "workspace")
    assert s["log.level"] == "info"
    assert s["api_key"] == "<set>"
    assert err == ""


def test_print_config_never_prints_the_token(credbroker, tmp_path):
    token = new_token()
    rc, s, err = print_config(credbroker, tmp_path, ["--token", token])
    assert rc == 0, err
    assert s["api_key"] == "<set>"
    assert token not in json.dumps(s) + err
    assert TOKEN_ARGV_WARNING in err


URL_F, URL_E_NEW, URL_E_OLD, URL_C = ("ws://flag/ws", "ws://env-newer/ws", "ws://env-older/ws",
                                     "ws://file/ws")


@pytest.mark.parametrize("flag,env_new,env_old,in_file,want", [
    (None, None, None, None, DEFAULT_URL),
    (None, None, None, URL_C, URL_C),
    (None, None, URL_E_OLD, URL_C, URL_E_OLD),
    (None, URL_E_NEW, None, URL_C, URL_E_NEW),
    (None, URL_E_NEW, URL_E_OLD, URL_C, URL_E_NEW),
    (URL_F, URL_E_NEW, URL_E_OLD, URL_C, URL_F),
    ("", URL_E_NEW, None, URL_C, URL_E_NEW),  # an empty --url is no --url (as in Go)
])
def test_url_precedence_flag_env_file_default(credbroker, tmp_path, flag, env_new, env_old,
                                              in_file, want):
    env = {"FLASHDUTY_RUNNER_TOKEN": new_token()}
    args = []
    if env_new is not None:
        env["FLASHDUTY_RUNNER_URL"] = env_new
    if env_old is not None:
        env["FLASHDUTY_RUNNER_API_URL"] = env_old
    if in_file is not None:
        args += ["--config", config_file(tmp_path, "api_url: %s\n" % in_file)]
    if flag is not None:
        args += ["--url", flag]
    rc, s, err = print_config(credbroker, tmp_path, args, env)
    assert rc == 0, err
    assert s["api_url"] == want
    assert ("both set and differ" in err) == (env_new is not None and env_old is not None)


@pytest.mark.parametrize("layer", ["flag", "env", "file"])
def test_workspace_precedence(credbroker, tmp_path, layer):
    env = {"FLASHDUTY_RUNNER_TOKEN": new_token()}
    args = ["--config", config_file(tmp_path, "workspace_root: /from/file\n")]
    if layer in ("flag", "env"):
        env["FLASHDUTY_RUNNER_WORKSPACE"] = "/from/env"
        env["FLASHDUTY_RUNNER_WORKSPACE_ROOT"] = "/from/env-older"
    if layer == "flag":
        args += ["--workspace-root", "/from/flag-older", "--workspace", "/from/flag"]
    rc, s, err = print_config(credbroker, tmp_path, args, env)
    assert rc == 0, err
    assert s["workspace_root"] == "/from/" + layer
    if layer != "file":
        assert ("--workspace and --workspace-root" in err) == (layer == "flag")
        assert "FLASHDUTY_RUNNER_WORKSPACE and FLASHDUTY_RUNNER_WORKSPACE_ROOT" in err


def test_log_level_precedence(credbroker, tmp_path):
    env = {"FLASHDUTY_RUNNER_TOKEN": new_token()}
    cfg = ["--config", config_file(tmp_path, "log:\n  level: error\n")]
    assert print_config(credbroker, tmp_path, cfg, env)[1]["log.level"] == "error"
    env["FLASHDUTY_RUNNER_LOG_LEVEL"] = "warn"
    assert print_config(credbroker, tmp_path, cfg, env)[1]["log.level"] == "warn"
    rc, s, err = print_config(credbroker, tmp_path,
                              cfg + ["--log-level", "debug", "--set", "log.level=info"], env)
    assert rc == 0 and s["log.level"] == "debug", err  # the newer flag wins, in any order
    assert "--log-level and --set log.level= are both given and differ" in err


def test_same_value_under_both_flag_names_is_not_warned_about(credbroker, tmp_path):
    rc, s, err = print_config(credbroker, tmp_path,
                              ["--url", "ws://h/ws", "--api-url", "ws://h/ws",
                               "--workspace", "/w", "--set", "workspace_root=/w"],
                              {"FLASHDUTY_RUNNER_TOKEN": new_token()})
    assert rc == 0 and s["api_url"] == "ws://h/ws" and s["workspace_root"] == "/w"
    assert err == ""


def test_short_config_flag(credbroker, tmp_path):
    cfg = config_file(tmp_path, "api_key: %s\nname: from-c\n" % new_token())
    rc, s, err = print_config(credbroker, tmp_path, ["-c", cfg])
    assert rc == 0, err
    assert s["config"] == str(cfg) and s["name"] == "from-c"


# -- errors: exit 2, one line, never the token ------------------------------------------

def usage_error(credbroker, tmp_path, args, env=None, secret=None):
    argv = [str(credbroker), "runner", "--log-file", str(tmp_path / "err.log")] + \
        [str(a) for a in args]
    rc, out, err = run_process(argv, timeout=10, env=make_child_env(env or {}))
    assert rc == 2, (rc, out, err)
    assert out == "" and len(err.strip().splitlines()) == 1, err
    if secret is not None:
        logged = (tmp_path / "err.log").read_text() if (tmp_path / "err.log").exists() else ""
        assert secret not in err + logged
    return err


@pytest.mark.parametrize("where", ["flag", "env"])
@pytest.mark.parametrize("url", ["https://h/ws", "h/ws", "wss:/h"])
def test_url_not_ws_or_wss_is_exit_2(credbroker, tmp_path, where, url):
    token = new_token()
    env = {"FLASHDUTY_RUNNER_TOKEN": token}
    args = ["--workspace", tmp_path]
    if where == "flag":
        args += ["--url", url]
    else:
        env["FLASHDUTY_RUNNER_URL"] = url
    err = usage_error(credbroker, tmp_path, args, env, secret=token)
    assert "api_url" in err and "ws://" in err


def test_bad_token_variable_is_exit_2_without_its_value(credbroker, tmp_path):
    token = new_token()
    err = usage_error(credbroker, tmp_path, ["--url", "ws://h/ws"],
                      {"FLASHDUTY_RUNNER_TOKEN": token + "\x01"}, secret=token)
    assert "FLASHDUTY_RUNNER_TOKEN" in err


def test_token_usage_errors(credbroker, tmp_path):
    token = new_token()
    key = tmp_path / "key"
    key.write_text(token)
    key.chmod(0o600)
    err = usage_error(credbroker, tmp_path, ["--url", "ws://127.0.0.1:9/runner/ws", "--token",
                                             token, "--api-key-file", key], secret=token)
    assert "--token and --api-key-file" in err
    err = usage_error(credbroker, tmp_path, ["--url", "ws://h/ws", "--token"])
    assert "--token" in err
    # A mistyped flag with the token after '=' is named without its value.
    err = usage_error(credbroker, tmp_path, ["--tokne=" + token], secret=token)
    assert "--tokne" in err
    err = usage_error(credbroker, tmp_path, ["--set", "api_key=" + token], secret=token)
    assert "never taken from --set" in err
    err = usage_error(credbroker, tmp_path, ["--url", "ws://h/ws"])
    assert "FLASHDUTY_RUNNER_TOKEN" in err  # what to set when there is no token


def test_help_names_the_newer_flags_and_variables(credbroker):
    rc, out, err = run_process([str(credbroker), "runner", "--help"], timeout=10)
    assert rc == 0 and err == ""
    for text in ("--token", "--url", "--workspace", "--log-level", "-c, --config",
                 "--print-config", "FLASHDUTY_RUNNER_TOKEN", "FLASHDUTY_RUNNER_URL",
                 "FLASHDUTY_RUNNER_WORKSPACE", "FLASHDUTY_RUNNER_LOG_LEVEL", DEFAULT_URL):
        assert text in out, text
