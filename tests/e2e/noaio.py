"""noaio.py CMD [ARG...]: runs CMD with io_setup(2) refused (EPERM), as a container's
seccomp profile may refuse Linux AIO. A test peer for the broker's writes without
io_submit (src/net/netbatch.c). x86_64 only: elsewhere it exits 2 without running CMD.

The filter (classic BPF, seccomp(2)) allows every other call; no_new_privs, which a
filter needs without CAP_SYS_ADMIN, is inherited by CMD and its children."""

import ctypes
import errno
import os
import platform
import struct
import sys

AUDIT_ARCH_X86_64 = 0xC000003E
NR_IO_SETUP = 206  # x86_64
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
BPF_LD_W_ABS, BPF_JEQ_K, BPF_RET_K = 0x20, 0x15, 0x06
RET_ALLOW, RET_ERRNO = 0x7FFF0000, 0x00050000


def insn(code, jt, jf, k):
    return struct.pack("=HBBI", code, jt, jf, k)


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def refuse_io_setup():
    prog = b"".join([
        insn(BPF_LD_W_ABS, 0, 0, 4),                  # A = seccomp_data.arch
        insn(BPF_JEQ_K, 0, 3, AUDIT_ARCH_X86_64),     # another ABI: allow
        insn(BPF_LD_W_ABS, 0, 0, 0),                  # A = seccomp_data.nr
        insn(BPF_JEQ_K, 0, 1, NR_IO_SETUP),
        insn(BPF_RET_K, 0, 0, RET_ERRNO | errno.EPERM),
        insn(BPF_RET_K, 0, 0, RET_ALLOW),
    ])
    libc = ctypes.CDLL(None, use_errno=True)
    fprog = SockFprog(len(prog) // 8, prog)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or \
            libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        sys.exit("noaio: cannot install the filter: %s" % os.strerror(ctypes.get_errno()))
    ctx = ctypes.c_ulong(0)
    if libc.syscall(NR_IO_SETUP, 64, ctypes.byref(ctx)) != -1 or ctypes.get_errno() != errno.EPERM:
        sys.exit("noaio: io_setup was not refused")


if __name__ == "__main__":
    if platform.machine() != "x86_64":
        sys.exit(2)
    refuse_io_setup()
    os.execv(sys.argv[1], sys.argv[1:])
