/*
 * harden.c - see harden.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "harden.h"

/* OpenSSH's sanitise_stdfd: a closed 0-2 would be reused by our own sockets. */
static int sanitise_stdfd(void)
{
    int fd = -1;

    for (int i = 0; i <= 2; i++) {
        if (fcntl(i, F_GETFL) != -1 || errno != EBADF)
            continue;
        if (fd == -1 && (fd = open("/dev/null", O_RDWR)) == -1)
            return -errno;
        if (fd != i && dup2(fd, i) == -1)
            return -errno;
    }
    if (fd > 2)
        close(fd);
    return 0;
}

int harden_process(void)
{
    struct rlimit rl = {0, 0};
    int r;

    if ((r = sanitise_stdfd()) != 0)
        return r;
#ifdef __linux__
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        return -errno;
#endif
    if (setrlimit(RLIMIT_CORE, &rl) != 0)
        return -errno;
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        return -errno;
    return 0;
}

bool harden_is_undumpable(void)
{
#ifdef __linux__
    return prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0;
#else
    return false;
#endif
}
