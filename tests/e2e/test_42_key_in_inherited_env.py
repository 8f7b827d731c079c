"""A key in an inherited variable of any name never reaches the command (issue 19).

A user who exported the key under another name, or a CI system that sets it twice:
credbroker exec removes every variable of its own environment whose value (or name)
holds the key, and the runner every one that holds the task's key or its own token,
with a warning naming the variable, never its value."""

import os

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
