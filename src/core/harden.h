/*
 * harden.h - process hardening done once at start, before any key is read
 * (what OpenSSH's ssh-agent main() does).
 */
#ifndef CREDBROKER_HARDEN_H
#define CREDBROKER_HARDEN_H

#include <stdbool.h>

/*
 * Makes sure fds 0-2 are open (/dev/null where not), makes the process
 * non-dumpable (no ptrace, no /proc/<pid>/mem or environ for a same-uid process,
 * no core dump), sets RLIMIT_CORE to 0 and ignores SIGPIPE (a peer that goes
 * away is an error code, not a death). Returns 0 or -errno; the caller must fail
 * closed on error.
 */
int harden_process(void);

/*
 * Makes sure `need` more file descriptors can be opened: raises the soft RLIMIT_NOFILE
 * to (open fds + need) where it is lower and the hard limit allows, never higher (the
 * command inherits it). libuv aborts the process when it cannot make its loop's pipes,
 * so this is checked before the loop exists. Returns 0, or -EMFILE when the hard limit
 * is too low.
 */
int harden_fd_headroom(int need);

/* Number of open file descriptors of this process (from /proc/self/fd), or -1. */
int harden_count_fds(void);

/*
 * The self-check the tests ask for (CREDBROKER_LEAK_CHECK=1 in the environment):
 * compares the fds open now with fds_at_start and counts live secrets; on a
 * leak, logs it and returns false. True (and silent) when the check is off.
 */
bool harden_leak_check(int fds_at_start, const char *what);

/* True if the process is currently non-dumpable. */
bool harden_is_undumpable(void);

#endif
