"""The runner's permission rules for bash (RUNNER-OPS.md 7), against the real runner: the
rules file (--permission-config, FLASHDUTY_RUNNER_PERMISSION_CONFIG) or the config era's
permission.bash map; every simple command, substitution and write redirect checked before
anything starts; a refused task is an error result and nothing is forked; a file that is
missing, malformed, empty or has an unknown action stops the runner from starting."""

import pytest

from conftest import make_child_env, run_process, wait_for

RULES = """permission:
  "*": deny
  "echo *": allow
  "ls *": allow
  "ls": allow
  "grep *": allow
  "touch *": allow
  "kubectl*": deny
  "kubectl get *": allow
  "rm *": deny
  "> /etc/*": deny
  "> *": allow
"""


def rules_file(tmp_path, text=RULES, name="permission.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def run(platform, command):
    return platform.result(platform.bash(command), timeout=20)


@pytest.fixture
def ruled(own_runner, tmp_path):
    """A runner started with the rules file above."""
    return own_runner(args=["--permission-config", str(rules_file(tmp_path))])


@pytest.mark.parametrize("command,error", [
    ("ls -l | grep foo", None),
    ("ls    -l", None),
    ("ls", None),
    ("ls; whoami", "command denied by rule '*': whoami"),
    ("ls && whoami", "command denied by rule '*': whoami"),
    ("ls | whoami", "command denied by rule '*': whoami"),
    ("kubectl get pods", None),                                   # most specific wins
    ("kubectl delete pod x", "command denied by rule 'kubectl*': kubectl delete pod x"),
    ("echo x > /etc/passwd", "command denied by rule '> /etc/*': > /etc/passwd"),
    ("echo x > \"/etc/passwd\"", "command denied by rule '> /etc/*': > /etc/passwd"),
    ("echo $(whoami)", "command denied by rule '*': whoami"),
    ("echo `id`", "command denied by rule '*': id"),
    ("export A=1", "command denied by rule '*': export A=1"),
    ("'rm' -rf /tmp/x", "command denied by rule 'rm *': rm -rf /tmp/x"),  # quotes removed
    ("\\rm -rf /tmp/x", "command denied by rule 'rm *': rm -rf /tmp/x"),
    ("r''m -rf /tmp/x", "command denied by rule 'rm *': rm -rf /tmp/x"),
    ("$cmd -rf /tmp/x", "command denied by rule '*': $cmd -rf /tmp/x"),  # only '*' matches
    ("echo $(", None),                                              # parse error (below)
    ("   ", "empty command"),
])
def test_every_command_is_checked_before_anything_runs(ruled, command, error):
    platform, runner = ruled
    res = run(platform, command)
    if command == "echo $(":
        assert res["success"] is False and \
            res["error"].startswith("failed to parse command: "), res
        return
    if error is None:
        assert res["success"] is True, res
    else:
        assert res["success"] is False and res["error"] == error, res
        assert res["result"] is None


def test_a_refused_task_forks_nothing(ruled):
    platform, runner = ruled
    marker = runner.workspace / "ran"
    res = run(platform, "touch ran; whoami")
    assert res["success"] is False and res["error"] == "command denied by rule '*': whoami"
    assert not marker.exists()
    res = run(platform, "touch ran")
    assert res["success"] is True and marker.exists()


def test_the_variable_names_the_file_too(own_runner, tmp_path):
    platform, runner = own_runner(env={
        "FLASHDUTY_RUNNER_PERMISSION_CONFIG": str(rules_file(tmp_path))})
    assert run(platform, "ls")["success"] is True
    assert run(platform, "whoami")["error"] == "command denied by rule '*': whoami"


def test_no_rules_allow_everything_with_a_warning(own_runner):
    platform, runner = own_runner()
    wait_for(lambda: "permission rules not configured: every bash command is allowed"
             in runner.log(), what="the warning at start")
    assert run(platform, "whoami; rm -f nothing")["success"] is True


def test_config_era_permission_bash_map_and_the_file_wins_over_it(own_runner, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text('permission:\n  bash:\n    "*": allow\n    "whoami": deny\n')
    platform, runner = own_runner(args=["--config", str(config)])
    assert run(platform, "whoami")["error"] == "command denied by rule 'whoami': whoami"
    assert run(platform, "id")["success"] is True


def test_the_file_wins_over_permission_bash_with_a_warning(own_runner, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text('permission:\n  bash: allow\n')
    platform, runner = own_runner(args=["--config", str(config),
                                        "--permission-config", str(rules_file(tmp_path))])
    assert run(platform, "whoami")["error"] == "command denied by rule '*': whoami"
    wait_for(lambda: "permission.bash is ignored" in runner.log(), what="the warning")


@pytest.mark.parametrize("text,reason", [
    (None, "no such file or directory"),
    ("permission: [", "parse error at line "),
    ("permission: {}\n", "no rules under 'permission'"),
    ("other: 1\n", "parse error at line 1: unexpected key (want only 'permission')"),
    ('permission:\n  "ls *": ask\n', "invalid action 'ask' for pattern 'ls *' "
                                     "(want allow or deny)"),
])
def test_a_bad_rules_file_stops_the_runner_from_starting(credbroker, tmp_path, text, reason):
    path = tmp_path / "permission.yaml"
    if text is not None:
        path.write_text(text)
    argv = [str(credbroker), "runner", "--url", "ws://127.0.0.1:9/ws",
            "--workspace", str(tmp_path / "ws"), "--permission-config", str(path)]
    rc, out, err = run_process(argv, timeout=10,
                               env=make_child_env({"FLASHDUTY_RUNNER_TOKEN": "rt-x" * 8}))
    assert rc == 2, (rc, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and ("permission config %s: %s" % (path, reason)) in lines[0], err


def test_a_command_starting_with_a_dash_is_a_command_not_bash_options(own_runner):
    """bash -c -- COMMAND: without the "--", "-x" or "+O extglob" would set bash's own
    options instead of being what the rules checked."""
    platform, runner = own_runner()
    res = run(platform, "-x")
    assert res["success"] is True and res["result"]["exit_code"] == 127, res
    assert "-x: command not found" in res["result"]["stderr"], res


def test_check_command_explains_a_decision_without_a_token_or_a_platform(credbroker, tmp_path):
    path = rules_file(tmp_path)
    argv = [str(credbroker), "runner", "--permission-config", str(path), "--check-command"]
    # Every string is shown, also after the first refusal.
    rc, out, err = run_process(argv + ["echo $(whoami); kubectl get pods | grep x > /tmp/o"],
                               timeout=10, env=make_child_env({}))
    assert rc == 1, (rc, out, err)
    assert out.splitlines() == [
        "allow 'echo *': echo $(whoami)",
        "deny  '*': whoami",
        "allow 'kubectl get *': kubectl get pods",
        "allow 'grep *': grep x",
        "allow '> *': > /tmp/o",
        "deny: command denied by rule '*': whoami"], out
    rc, out, err = run_process(argv + ["kubectl get pods"], timeout=10, env=make_child_env({}))
    assert rc == 0 and out.splitlines()[-1] == "allow", (rc, out, err)
    rc, out, err = run_process([str(credbroker), "runner", "--check-command", "rm -rf /"],
                               timeout=10, env=make_child_env({}))
    assert rc == 0 and out == "allow: no permission rules configured: every command is " \
        "allowed\n", (rc, out, err)
