"""A key in an inherited variable of any name never reaches the command (issue 19).

A user who exported the key under another name, or a CI system that sets it twice:
credbroker exec removes every variable of its own environment whose value (or name)
holds the key, and the runner every one that holds the task's key or its own token,
with a warning naming the variable, never its value."""

import os

import pytest

from conftest import make_child_env, run_process

SHOW_ENV = "env; echo ---; tr '\\0' '\\n' < /proc/self/environ; echo ---; sh -c env"


def test_exec_removes_the_key_from_any_inherited_variable(exec_argv, key_file):
    _, key = key_file
    env = make_child_env({"LEAKY_VAR": key, "LONGER_VAR": "https://x/?app_key=%s&y=1" % key,
                          "NEAR_VAR": key[:-1], "PLAIN_VAR": "plain"})
    code, out, err = run_process(exec_argv([], child=["sh", "-c", SHOW_ENV]), env=env)
    assert code == 0, err
    assert key not in out and key not in err
    # The command, /proc/self/environ and the command's children: none has them.
    assert "LEAKY_VAR" not in out and "LONGER_VAR" not in out
    assert out.count("NEAR_VAR=%s" % key[:-1]) == 3 and out.count("PLAIN_VAR=plain") == 3
    assert "variable LEAKY_VAR holds the key" in err
    assert "variable LONGER_VAR holds the key" in err
    assert "NEAR_VAR" not in err


def test_runner_removes_the_tasks_key_and_its_token_from_inherited_variables(
        own_runner, upstream):
    token = "rt-" + os.urandom(16).hex()
    task_key = "task-key-" + os.urandom(8).hex()
    platform, runner = own_runner(env={"TOKEN_COPY": token, "KEY_COPY": "x%sx" % task_key},
                                  platform_token=token)
    cred = {"key": task_key, "base_url": upstream.url}
    res = platform.result(platform.bash(SHOW_ENV, credential=cred, timeout=20), timeout=30)
    out = res["result"]["stdout"]
    assert res["success"] is True, res
    assert token not in out and task_key not in out
    assert "TOKEN_COPY" not in out and "KEY_COPY" not in out
    runner.wait_log("variable KEY_COPY holds the task's key")
    runner.wait_log("variable TOKEN_COPY holds the runner's token")
    assert task_key not in runner.log() and token not in runner.log()
    # Another task's key is not this one's: KEY_COPY is an ordinary variable to it.
    res = platform.result(platform.bash("env", timeout=20), timeout=30)
    assert "KEY_COPY=x%sx" % task_key in res["result"]["stdout"]


# ---- bash's env arg and the FLASHDUTY_* scrub (RUNNER-OPS.md 6) ----

def test_runner_scrubs_inherited_flashduty_variables_and_applies_the_tasks_env(
        own_runner, upstream):
    platform, runner = own_runner(env={"FLASHDUTY_EXTRA": "inherited", "FLASHDUTY_APP_KEY": "k"})
    value = "env-value-" + os.urandom(4).hex()
    res = platform.result(platform.bash(
        "env", timeout=20, env={"FOO": value, "_X1": "", "LD_LIBRARY_PATH": "/opt/lib"}),
        timeout=30)
    out = res["result"]["stdout"]
    assert res["success"] is True, res
    assert "FLASHDUTY_EXTRA" not in out and "FLASHDUTY_APP_KEY" not in out
    assert "FOO=%s\n" % value in out and "_X1=\n" in out
    assert "LD_LIBRARY_PATH=/opt/lib\n" in out  # no broker for this task: any name may be set
    assert value not in runner.log()            # env is never logged
    # With a credential, under the broker: its variables and the loader's are refused.
    cred = {"key": "env-test-key-0123456789", "base_url": upstream.url}
    for name in ("LD_PRELOAD", "LD_AUDIT", "FLASHDUTY_BASE_URL", "FLASHDUTY_CRED_FD",
                 "FLASHDUTY_APP_KEY"):
        res = platform.result(platform.bash("echo ran", timeout=20, credential=cred,
                                            env={name: "x"}), timeout=30)
        assert res["success"] is False and res["error"] == (
            "invalid bash args: env: %s may not be set when the credential broker is used"
            % name), res
    res = platform.result(platform.bash("echo $FOO", timeout=20, credential=cred,
                                        env={"FOO": "allowed"}), timeout=30)
    assert res["result"]["stdout"] == "allowed\n", res


@pytest.mark.parametrize("env,error", [
    ({"1BAD": "x"}, "invalid bash args: env: invalid variable name: 1BAD"),
    ({"A-B": "x"}, "invalid bash args: env: invalid variable name: A-B"),
    ({"A": "x\u0000y"}, "invalid bash args: env: value of A contains a NUL byte"),
    ({"A": 5}, "invalid bash args: json: cannot unmarshal number into Go struct field "
               "BashArgs.env of type string"),
    ("A=x", "invalid bash args: json: cannot unmarshal string into Go struct field "
            "BashArgs.env of type map[string]string"),
])
def test_bad_env_is_refused_and_nothing_runs(own_runner, env, error):
    platform, runner = own_runner()
    res = platform.result(platform.bash("echo ran", timeout=20, env=env), timeout=30)
    assert res["success"] is False and res["error"] == error, res
    assert res["result"] is None
