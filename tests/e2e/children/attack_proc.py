#!/usr/bin/python3
"""A command that tries every same-uid door into its parent, the broker.

    attack_proc.py

Run (by the test) as an unprivileged user, under `credbroker exec` started as
that same user: root would pass every check through CAP_SYS_PTRACE, which is
why the threat here is a same-uid process (DESIGN.md section 4). The command
is not told the key; it prints one JSON object with what it got, and the test
searches that for the key:

  files      {name: {"ok": text (latin-1, first 64 KiB)} | {"errno": "EACCES"}}
             for /proc/<ppid>/{environ, mem, cmdline, maps, auxv, stack,
             syscall, task/<ppid>/mem, task/<ppid>/environ}, plus "fd" (a
             directory listing), "fd/N" (open of each of the first 32)
  ptrace     {"PTRACE_ATTACH": errno name or "ok", "PTRACE_SEIZE": ...}
  vm_readv   errno name of process_vm_readv on the parent, or "ok"
  pidfd_getfd {"open": errno name or "ok", "fds": {errno name: count}}
  same_uid   true if the parent runs with our uid (the test's precondition)
  call       status of one brokered request made after the attacks
"""

import ctypes
import errno
import json
import os
import sys

import brokered

PTRACE_ATTACH = 16
PTRACE_DETACH = 17
PTRACE_SEIZE = 0x4206
SYS_PIDFD_OPEN = 434    # same number on every architecture (new syscall table)
SYS_PIDFD_GETFD = 438

libc = ctypes.CDLL(None, use_errno=True)
ppid = os.getppid()
out = {"pid": os.getpid(), "ppid": ppid, "files": {}}


def errname(e):
    return errno.errorcode.get(e, str(e))


def read_file(name):
    path = "/proc/%d/%s" % (ppid, name)
    try:
        with open(path, "rb") as f:
            if name.endswith("mem"):
                data = b""
                try:
                    f.seek(0x400000)
                    data = f.read(4096)
                except OSError as e:
                    return {"opened_but": errname(e.errno)}
                return {"ok": data.decode("latin-1")}
            return {"ok": f.read(65536).decode("latin-1")}
    except OSError as e:
        return {"errno": errname(e.errno)}


with open("/proc/%d/status" % ppid) as f:
    uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
out["same_uid"] = all(int(u) == os.getuid() for u in uids)

for name in ("environ", "mem", "cmdline", "maps", "auxv", "stack", "syscall",
             "task/%d/mem" % ppid, "task/%d/environ" % ppid):
    out["files"][name] = read_file(name)
try:
    out["files"]["fd"] = {"ok": " ".join(sorted(os.listdir("/proc/%d/fd" % ppid)))}
except OSError as e:
    out["files"]["fd"] = {"errno": errname(e.errno)}
for fd in range(32):
    out["files"]["fd/%d" % fd] = read_file("fd/%d" % fd)

# ptrace: must fail with EPERM on a non-dumpable process of our uid.
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
out["ptrace"] = {}
for name, req in (("PTRACE_ATTACH", PTRACE_ATTACH), ("PTRACE_SEIZE", PTRACE_SEIZE)):
    ctypes.set_errno(0)
    r = libc.ptrace(req, ppid, None, None)
    if r == 0:
        out["ptrace"][name] = "ok"
        libc.ptrace(PTRACE_DETACH, ppid, None, None)
    else:
        out["ptrace"][name] = errname(ctypes.get_errno())


# process_vm_readv: the access check comes before the address is looked at,
# so EPERM (refused) and EFAULT (allowed, bad address) are distinguishable.
class IoVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


buf = ctypes.create_string_buffer(4096)
local = IoVec(ctypes.cast(buf, ctypes.c_void_p), 4096)
remote = IoVec(ctypes.c_void_p(0x400000), 4096)
libc.process_vm_readv.restype = ctypes.c_ssize_t
ctypes.set_errno(0)
n = libc.process_vm_readv(ppid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
out["vm_readv"] = "ok" if n >= 0 else errname(ctypes.get_errno())

# pidfd_getfd: stealing one of the broker's fds (its upstream sockets, the
# secret arena's memfd) needs PTRACE_MODE_ATTACH too.
libc.syscall.restype = ctypes.c_long
ctypes.set_errno(0)
pidfd = libc.syscall(SYS_PIDFD_OPEN, ctypes.c_int(ppid), ctypes.c_uint(0))
stolen = {}
if pidfd < 0:
    out["pidfd_getfd"] = {"open": errname(ctypes.get_errno()), "fds": {}}
else:
    for fd in range(64):
        ctypes.set_errno(0)
        r = libc.syscall(SYS_PIDFD_GETFD, ctypes.c_int(pidfd), ctypes.c_int(fd), ctypes.c_uint(0))
        if r >= 0:
            stolen["ok"] = stolen.get("ok", 0) + 1
            os.close(r)
        else:
            e = errname(ctypes.get_errno())
            stolen[e] = stolen.get(e, 0) + 1
    os.close(pidfd)
    out["pidfd_getfd"] = {"open": "ok", "fds": stolen}

# The broker still serves its command after all that.
status, _, _ = brokered.request("GET", "/status/200?from=attack_proc")
out["call"] = status
print(json.dumps(out))
sys.exit(0)
