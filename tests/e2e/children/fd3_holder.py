#!/usr/bin/python3
"""A background process that keeps the command's fd 3 after the command exits.

    fd3_holder.py OUT_FILE COMMAND_PID

Started by the command (detached: own session, stdio not shared) with fd 3
inherited. While the command lives it dials once, makes a request on that
connection and keeps it open; then it prints "ready" on stdout (a pipe to
the command) and closes stdout. Once COMMAND_PID is gone it checks that
  - the connection it kept is closed by the broker, and
  - dialing again fails because the control channel is shut down (EOF),
and writes a JSON report to OUT_FILE (atomically).
"""

import json
import os
import socket
import sys
import time

import brokered

out_file, command_pid = sys.argv[1], int(sys.argv[2])
report = {}
http = brokered.connection(ctl_fd=3, timeout=10)
http.request("GET", "/status/200?from=holder")
resp = http.getresponse()
resp.read()
report["before"] = resp.status
conn = http.sock  # kept open, idle, after a complete exchange
sys.stdout.write("ready\n")
sys.stdout.flush()
devnull = os.open(os.devnull, os.O_RDWR)
os.dup2(devnull, 1)

# The command exits once it has read "ready"; wait (bounded) until it has.
deadline = time.monotonic() + 10
while os.getppid() == command_pid and time.monotonic() < deadline:
    time.sleep(0.01)
report["command_gone"] = os.getppid() != command_pid

# The kept connection: the broker must close it.
conn.settimeout(5)
try:
    rest = conn.recv(65536)
    report["kept_connection"] = "eof" if rest == b"" else "data: %r" % rest[:200]
except ConnectionResetError:
    report["kept_connection"] = "eof"
except socket.timeout:
    report["kept_connection"] = "still open after 5 s"

# New dials: the control channel must end up shut down.
outcomes = []
deadline = time.monotonic() + 5
while time.monotonic() < deadline:
    try:
        s = brokered.dial(3, timeout=2)
    except brokered.BrokerClosed:
        outcomes.append("closed")
        break
    except brokered.BrokerRefused:
        outcomes.append("refused")
    except TimeoutError:
        outcomes.append("no reply")
    else:
        s.close()
        outcomes.append("connected")
    time.sleep(0.02)
report["dials"] = outcomes

tmp = out_file + ".tmp"
with open(tmp, "w") as f:
    json.dump(report, f)
os.replace(tmp, out_file)
