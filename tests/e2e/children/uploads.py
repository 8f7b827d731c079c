#!/usr/bin/python3
"""Child for the concurrency test: THREADS threads, each on its own brokered
connection (all dialed and live at once), POST PER random bodies to /upload
on that one keep-alive connection and check each echoed body.

    uploads.py THREADS PER MAX_SIZE

Body sizes are log-uniform in 1..MAX_SIZE (thread 0 sends exactly 1 byte and
exactly MAX_SIZE first). Prints one JSON object: {"results": {"t/i": [len,
sha256]}, "errors": [...], "nerrors": N}.
"""

import hashlib
import json
import math
import os
import random
import sys
import threading

import brokered

THREADS, PER, MAX_SIZE = (int(a) for a in sys.argv[1:4])
results = {}
errors = []
lock = threading.Lock()
barrier = threading.Barrier(THREADS)


def size_for(t, i, rng):
    if t == 0 and i < 2:
        return (1, MAX_SIZE)[i]
    return max(1, min(MAX_SIZE, int(math.exp(rng.uniform(0, math.log(MAX_SIZE))))))


def fail(msg):
    with lock:
        errors.append(msg)


def worker(t):
    rng = random.Random(t)
    try:
        conn = brokered.connection(timeout=60)
    except Exception as e:
        fail("thread %d: dial: %r" % (t, e))
        barrier.abort()
        return
    try:
        barrier.wait(timeout=30)  # every connection is live before any request
        first_sock = conn.sock
        for i in range(PER):
            body = os.urandom(size_for(t, i, rng))
            sha = hashlib.sha256(body).hexdigest()
            conn.request("POST", "/upload?t=%d&i=%d&app_key=sentinel" % (t, i), body=body,
                         headers={"Content-Type": "application/octet-stream"})
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200 or data != body:
                fail("thread %d request %d: status %d, %d bytes back for %d sent, %s"
                     % (t, i, resp.status, len(data), len(body),
                        "same" if data == body else "different"))
            with lock:
                results["%d/%d" % (t, i)] = [len(body), sha]
            if conn.sock is not first_sock:
                fail("thread %d: connection was replaced before request %d" % (t, i + 1))
                first_sock = conn.sock
    except Exception as e:
        fail("thread %d: %r" % (t, e))
    finally:
        conn.close()


threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
for th in threads:
    th.start()
for th in threads:
    th.join()
print(json.dumps({"results": results, "errors": errors[:20], "nerrors": len(errors)}))
