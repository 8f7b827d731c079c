"""Layer 11: dials over a limit wait instead of failing (issue 19, DESIGN.md section 1).

A burst of fresh dials faster than --dial-rate, or more connections than --max-conns, is
slowed down, not refused: each dial is answered when a token or a slot is there, in
order. Only a dial beyond the queue of 1,024 waiting dials, or one that waited longer
than --dial-wait, gets 0xFF, and says so in the log and the audit. In a runner one task's
burst never takes another task's slots. (Separate from test_10: these take seconds.)
"""

import json
from pathlib import Path

from conftest import PYTHON, E2E, make_child_env, run_process, wait_for

CHILDREN = Path(__file__).resolve().parent / "children"


def run_child(exec_argv, args, child, timeout=120):
    env = make_child_env({"PYTHONPATH": str(E2E)})
    code, out, err = run_process(exec_argv(args, child=child), timeout=timeout, env=env)
    assert code == 0, err
    return json.loads(out.strip().splitlines()[-1]), err


def most_in_one_second(times):
    return max(sum(1 for u in times if t <= u < t + 1.0) for t in times)


def test_800_fresh_dials_from_8_threads_at_the_default_rate_all_succeed_paced(exec_argv):
    report, _ = run_child(exec_argv, ["--dial-rate", "100", "--max-conns", "64"],
                          [PYTHON, CHILDREN / "dialers.py", 8, 800, "/status/200"])
    assert report["nerrors"] == 0, report["errors"]
    assert report["ok"] == 800
    # Paced, not refused: 100 a second after a burst of 100. The whole run takes at least
    # the 7 s that 700 dials past the burst need, and no second saw more than rate + burst.
    assert report["answered"][-1] >= 6.5, report["answered"][-1]
    assert most_in_one_second(report["answered"]) <= 200 + 1


def test_200_concurrent_connections_at_max_conns_64_all_succeed(exec_argv):
    report, _ = run_child(exec_argv, ["--max-conns", "64", "--dial-rate", "100000"],
                          [PYTHON, CHILDREN / "dialers.py", 200, 200,
                           "/download?size=100&head_delay_ms=500"])
    assert report["nerrors"] == 0, report["errors"]
    assert report["ok"] == 200
    assert report["peak"] <= 64, report["peak"]


def test_a_full_dial_queue_and_a_dial_that_waited_too_long_get_0xff(exec_argv, tmp_path):
    audit = tmp_path / "audit.jsonl"
    marker, stop = tmp_path / "marker", tmp_path / "stop"
    report, err = run_child(
        exec_argv, ["--max-conns", "1", "--dial-wait", "1s", "--audit", audit],
        [PYTHON, CHILDREN / "flood.py", 1, 1030, marker, stop])
    replies = report["replies"]
    assert len(replies) == 1030
    assert all(byte == 0xFF and nfds == 0 for _, byte, nfds in replies), replies[:5]
    # The 6 beyond the queue's 1,024 first, refused at once; then the 1,024, each after
    # waiting its second (replies come in order).
    times = [t for t, _, _ in replies]
    assert max(times[:6]) <= min(times[6:]), times[:8]
    assert min(times[6:]) >= report["first_at"] + 0.95, (min(times[6:]), report["first_at"])
    assert "dial refused: the queue of waiting dials is full" in err
    assert "dial refused: it waited too long" in err
    outcomes = [json.loads(line)["outcome"] for line in audit.read_text().splitlines()]
    assert outcomes.count("dial_queue_full") == 6
    assert outcomes.count("dial_wait_timeout") == 1024


def test_one_runner_tasks_burst_does_not_take_another_tasks_slots(
        own_runner, upstream, tmp_path, build_dir):
    platform, runner = own_runner(
        args=["--set", "broker.max_conns=2", "--set", "broker.dial_wait=30s"])
    marker, stop = tmp_path / "marker", tmp_path / "stop"
    try:
        flood = platform.bash(
            "PYTHONPATH=%s %s %s 2 1100 %s %s" % (E2E, PYTHON, CHILDREN / "flood.py", marker,
                                                  stop),
            timeout=90, credential={"key": "flood-task-key-0123456789", "base_url": upstream.url})
        wait_for(marker.exists, timeout=30, what="the first task's dial queue to be full")
        other = platform.bash("%s GET /status/200" % (build_dir / "credfd"), timeout=30,
                              credential={"key": "other-task-key-0123456789",
                                          "base_url": upstream.url})
        res = platform.result(other, timeout=30)
        # Answered while the first task holds both its slots and its queue is full.
        assert not stop.exists()
        assert res["success"] is True, res
        assert '"status": 200' in res["result"]["stdout"], res
        stop.write_text("")
        res = platform.result(flood, timeout=60)
        report = json.loads(res["result"]["stdout"].strip().splitlines()[-1])
        refused = [r for r in report["replies"] if r[1] == 0xFF]
        assert len(refused) >= 1100 - 1024, len(refused)
    finally:
        stop.write_text("")
