#!/usr/bin/python3
"""A background process that keeps using a brokered connection after the
command that started it has exited.

    attack_grandchild.py OUT_FILE COMMAND_PID

Started by the command (detached: own session, stdio not shared) with fd 3
inherited. While the command lives it dials once and makes one request on
that connection (seq=0); then it prints "ready" on stdout and closes it. Once
COMMAND_PID is gone it keeps writing requests on the same connection, one
after the other (seq=1, 2, ...), for up to 5 s or until the connection fails,
then sends one pipelined burst of 50 more; it writes a JSON report to OUT_FILE
(atomically):

  before        status of seq=0
  command_gone  whether the command was seen gone
  after         ["200" | "eof" | "epipe" | "reset" | "timeout", ...] per request
                after the command exited, in order
  first_failure seq of the first request that failed (null if none did)
  burst         outcome of the pipelined burst: "epipe", "eof", "reset" or
                "answered N"
  dial          outcome of a new dial: "closed", "refused", "no reply", "connected"
"""

import json
import os
import socket
import sys
import time

import brokered
from children import rawhttp

out_file, command_pid = sys.argv[1], int(sys.argv[2])
report = {"after": [], "first_failure": None}
c = rawhttp.RawConn(brokered.dial(3), timeout=5)
c.send(rawhttp.request("GET", "/status/200?from=grandchild&seq=0"))
report["before"] = c.response().status
sys.stdout.write("ready\n")
sys.stdout.flush()
devnull = os.open(os.devnull, os.O_RDWR)
os.dup2(devnull, 1)

deadline = time.monotonic() + 10
while os.getppid() == command_pid and time.monotonic() < deadline:
    time.sleep(0.01)  # polling the parent pid: there is no event to wait on
report["command_gone"] = os.getppid() != command_pid


def one(seq):
    if not c.send(rawhttp.request("GET", "/status/200?from=grandchild&seq=%d" % seq)):
        return "epipe"
    try:
        return str(c.response().status)
    except EOFError:
        return "eof"
    except ConnectionResetError:
        return "reset"
    except socket.timeout:
        return "timeout"


seq = 1
deadline = time.monotonic() + 5
while time.monotonic() < deadline:
    outcome = one(seq)
    report["after"].append(outcome)
    if outcome != "200":
        report["first_failure"] = seq
        break
    seq += 1

burst = b"".join(rawhttp.request("GET", "/status/200?from=grandchild&burst=%d" % i)
                 for i in range(50))
if not c.send(burst):
    report["burst"] = "epipe"
else:
    answered = 0
    try:
        while answered < 50:
            c.response()
            answered += 1
        report["burst"] = "answered %d" % answered
    except EOFError:
        report["burst"] = "eof" if answered == 0 else "answered %d" % answered
    except ConnectionResetError:
        report["burst"] = "reset"
    except socket.timeout:
        report["burst"] = "timeout"

try:
    brokered.dial(3, timeout=2).close()
    report["dial"] = "connected"
except brokered.BrokerClosed:
    report["dial"] = "closed"
except brokered.BrokerRefused:
    report["dial"] = "refused"
except TimeoutError:
    report["dial"] = "no reply"

tmp = out_file + ".tmp"
with open(tmp, "w") as f:
    json.dump(report, f)
os.replace(tmp, out_file)
