#!/usr/bin/python3
"""Runs a command and reports its peak resident set size, for the flat-memory
test of credfd when /usr/bin/time is not installed.

    /usr/bin/python3 client_rss.py OUT_FILE COMMAND [ARG...]

The command inherits stdin, stdout, stderr and every fd without O_CLOEXEC
(fd 3 under credbroker). While it runs, VmHWM of /proc/PID/status is sampled
every 5 ms; the largest value (KiB) is written to OUT_FILE and this script
exits with the command's status. VmHWM is the command's own high-water mark
since its exec (Popen returns only once the exec has happened), so unlike
ru_maxrss of RUSAGE_CHILDREN it does not count the pages of this Python
process that the fork copied. Growth in the last 5 ms before exit can be
missed; a command that buffers a whole body grows long before that.
"""

import os
import subprocess
import sys
import time


def vm_hwm(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def main(argv):
    out_file, command = argv[1], argv[2:]
    proc = subprocess.Popen(command, close_fds=False)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, vm_hwm(proc.pid))
        time.sleep(0.005)  # sampling a running process, not waiting for an event
    with open(out_file, "w") as f:
        f.write("%d\n" % peak)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv))
