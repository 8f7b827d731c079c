"""A loop turn's socket writes leave in one system call (io_submit; src/net/netbatch.c),
and where a seccomp profile refuses Linux AIO, one by one. The same traffic both ways,
every byte checked: keep-alive connections at once, request bodies bigger than a socket
takes in one write, a download that streams; and the broker's debug log says which path
it took."""

import platform

import pytest

from conftest import E2E, PYTHON, make_child_env, run_process

NOAIO = E2E / "noaio.py"
REFUSED = "socket writes are made one by one"

# 8 connections at once, 25 requests each: uploads the upstream echoes back (1 to 300 KiB:
# the larger ones more than a socket takes at once, so a write is cut short and finished
# by uv_write) and small echoes; then one 8 MiB download. Prints "ok" and the count.
CHILD = r'''
import hashlib, json, threading, brokered
errors, done = [], []
def worker(w):
    try:
        conn = brokered.connection()
        for i in range(25):
            n = 1 + (w * 7919 + i * 104729) % (300 * 1024)
            body = hashlib.sha256(b"%d.%d" % (w, i)).digest() * (n // 32 + 1)
            body = body[:n]
            conn.request("POST", "/upload", body=body)
            resp = conn.getresponse()
            got = resp.read()
            if resp.status != 200 or got != body:
                errors.append("upload %d.%d: %d, %d of %d bytes" % (w, i, resp.status, len(got), n))
            conn.request("GET", "/echo?w=%d&i=%d" % (w, i))
            resp = conn.getresponse()
            echo = json.loads(resp.read())
            if resp.status != 200 or not echo["query"].startswith("w=%d&i=%d&" % (w, i)):
                errors.append("echo %d.%d: %r" % (w, i, echo))
            done.append(1)
        conn.close()
    except Exception as e:
        errors.append("worker %d: %r" % (w, e))
threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
for t in threads: t.start()
for t in threads: t.join()
status, _, big = brokered.request("GET", "/download?size=%d" % (8 << 20))
if status != 200 or len(big) != 8 << 20:
    errors.append("download: %d, %d bytes" % (status, len(big)))
print("ok %d" % len(done) if not errors else "\n".join(errors))
'''


@pytest.mark.parametrize("aio", ["io_submit", "refused"])
def test_a_turns_writes_carry_every_byte_batched_or_one_by_one(exec_argv, aio):
    argv = exec_argv(["-v"], code=CHILD)
    if aio == "refused":
        if platform.machine() != "x86_64":
            pytest.skip("noaio.py's filter is written for x86_64")
        argv = [PYTHON, str(NOAIO)] + argv
    rc, out, err = run_process(argv, timeout=120, env=make_child_env())
    assert rc == 0, err[-3000:]
    assert out.strip() == "ok 200", out[-3000:]
    assert (REFUSED in err) == (aio == "refused"), err[-3000:]
