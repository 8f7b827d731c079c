#!/usr/bin/python3
"""Child for the dial-queue tests: holds HOLD brokered connections (the limit), then
sends FLOOD dial datagrams at once on its control channel without waiting for the
replies, which a second thread reads.

    flood.py HOLD FLOOD MARKER STOPFILE

Once the first reply to the flood arrives, MARKER is written (the number of replies so
far). It exits when every dial of the flood has its reply, or STOPFILE exists, or after
60 s, and prints one JSON object: {"first_at", "sent_at": seconds (from start) when the
first and the last dial were sent, "replies": [[seconds, byte, number of fds], ...]}.
"""

import array
import json
import os
import select
import socket
import sys
import threading
import time

import brokered

HOLD, FLOOD, MARKER, STOPFILE = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
start = time.monotonic()
held = [brokered.dial() for _ in range(HOLD)]
ctl = socket.socket(fileno=os.dup(brokered.ctl_fd_from_env()))
replies = []
done = threading.Event()


def read_replies():
    while len(replies) < FLOOD and not os.path.exists(STOPFILE):
        r, _, _ = select.select([ctl], [], [], 0.05)
        if not r:
            continue
        msg, anc, _, _ = ctl.recvmsg(8, socket.CMSG_SPACE(8 * 4))
        if not msg:
            break  # the channel was shut down
        fds = array.array("i")
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
        for fd in fds:
            os.close(fd)
        replies.append([time.monotonic() - start, msg[0], len(fds)])
        if len(replies) == 1:
            with open(MARKER + ".tmp", "w") as f:
                f.write("%d\n" % len(replies))
            os.rename(MARKER + ".tmp", MARKER)
    done.set()


reader = threading.Thread(target=read_replies)
reader.start()
first_at = time.monotonic() - start
for _ in range(FLOOD):
    ctl.send(b"\x01")  # blocks while the broker is behind: it keeps reading
sent_at = time.monotonic() - start
deadline = time.monotonic() + 60
while not done.wait(0.05) and time.monotonic() < deadline:
    pass
print(json.dumps({"first_at": first_at, "sent_at": sent_at, "replies": replies}))
sys.stdout.flush()
os._exit(0)  # the reader may still be in select: do not wait for it
