#!/usr/bin/python3
"""Child that reports everything of itself where a key could hide, for the
test to search (the child is not told the key).

Prints one JSON object:
  environ      /proc/self/environ, as text
  os_environ   os.environ
  cmdline      /proc/self/cmdline, as text
  fds          {fd: readlink} of /proc/self/fd, listed with os.scandir (the
               listing's own fd is named "listing_fd")
  listing_fd   the fd number the listing itself used, or null
  contents     {fd: text} of every fd whose content can be read without
               blocking: regular files from offset 0, readable pipes/sockets
               (peeked), character devices
  pgid, pid, ppid
"""

import json
import os
import select
import socket
import stat


def listing():
    fds = {}
    with os.scandir("/proc/self/fd") as it:
        own = None
        for entry in it:
            try:
                fds[int(entry.name)] = os.readlink(entry.path)
            except OSError:
                fds[int(entry.name)] = None  # the listing's fd, gone already
        try:
            own = it.fileno() if hasattr(it, "fileno") else None
        except OSError:
            own = None
    return fds, own


def read_fd(fd):
    st = os.fstat(fd)
    if stat.S_ISREG(st.st_mode):
        out, off = b"", 0
        while True:
            data = os.pread(fd, 65536, off)
            if not data:
                return out
            out += data
            off += len(data)
    if stat.S_ISSOCK(st.st_mode):
        s = socket.socket(fileno=os.dup(fd))
        try:
            s.setblocking(False)
            return s.recv(65536, socket.MSG_PEEK)
        except OSError:
            return b""
        finally:
            s.close()
    r, _, _ = select.select([fd], [], [], 0)
    if not r:
        return b""
    try:
        return os.read(fd, 65536)
    except OSError:
        return b""


def main():
    fds, own = listing()
    # The fd scandir used is closed by now; find it as the one that vanished.
    contents = {}
    for fd in sorted(fds):
        try:
            os.fstat(fd)
        except OSError:
            if own is None:
                own = fd
            continue
        try:
            contents[fd] = read_fd(fd).decode("latin-1")
        except OSError as e:
            contents[fd] = "<%s>" % e
    with open("/proc/self/environ", "rb") as f:
        environ = f.read().decode("latin-1")
    with open("/proc/self/cmdline", "rb") as f:
        cmdline = f.read().decode("latin-1")
    print(json.dumps({"environ": environ, "os_environ": dict(os.environ), "cmdline": cmdline,
                      "fds": fds, "listing_fd": own, "contents": contents,
                      "pid": os.getpid(), "ppid": os.getppid(), "pgid": os.getpgid(0)}))


main()
