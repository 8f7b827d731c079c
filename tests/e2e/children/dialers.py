#!/usr/bin/python3
"""Child for the dial-limit tests: THREADS threads share TOTAL requests, each on a
freshly dialed brokered connection (dial, GET PATH, read, close), all started at
once.

    dialers.py THREADS TOTAL PATH

Prints one JSON object: {"ok": N, "errors": [...], "answered": [seconds since
start at which each successful dial was answered], "peak": the most brokered
connections open at once}.
"""

import json
import sys
import threading
import time

import brokered

THREADS, TOTAL, PATH = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
lock = threading.Lock()
state = {"next": 0, "ok": 0, "open": 0, "peak": 0}
errors, answered = [], []
barrier = threading.Barrier(THREADS)
start = time.monotonic()


def take():
    with lock:
        if state["next"] == TOTAL:
            return None
        state["next"] += 1
        return state["next"]


def worker():
    barrier.wait()
    while take() is not None:
        try:
            conn = brokered.BrokeredHTTPConnection(timeout=60)
            conn.connect()
        except Exception as e:  # a refusal is what the test looks for
            with lock:
                errors.append("dial: %r" % e)
            continue
        with lock:
            answered.append(time.monotonic() - start)
            state["open"] += 1
            state["peak"] = max(state["peak"], state["open"])
        try:
            conn.request("GET", PATH)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError("status %d" % resp.status)
            with lock:
                state["ok"] += 1
        except Exception as e:
            with lock:
                errors.append("request: %r" % e)
        finally:
            with lock:
                state["open"] -= 1
            conn.close()


threads = [threading.Thread(target=worker) for _ in range(THREADS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"ok": state["ok"], "errors": errors[:20], "nerrors": len(errors),
                  "answered": sorted(answered), "peak": state["peak"]}))
