/*
 * harden.c - see harden.h.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "harden.h"
#include "log.h"
#include "secret.h"

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

int harden_fd_headroom(int need)
{
    struct rlimit rl;
    int open_now = harden_count_fds();
    rlim_t want;

    if (open_now < 0 || getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -EMFILE;
    want = (rlim_t)open_now + (rlim_t)need;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
            return -EMFILE;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            return -EMFILE;
    }
    return 0;
}

int harden_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.')
            n++;
    }
    closedir(d);
    return n - 1; /* the directory's own fd */
}

bool harden_leak_check(int fds_at_start, const char *what)
{
    const char *on = getenv("CREDBROKER_LEAK_CHECK");
    int fds;
    size_t secrets;

    if (on == NULL || strcmp(on, "1") != 0)
        return true;
    fds = harden_count_fds();
    secrets = secret_live_count();
    if (fds > fds_at_start || secrets > 0) {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *e;

        log_error("leak check (%s): %d fds open at exit (%d at start), %zu secrets not freed",
                  what, fds, fds_at_start, secrets);
        while (d != NULL && (e = readdir(d)) != NULL) {
            char path[300], target[256];
            ssize_t n;

            if (e->d_name[0] == '.' || (unsigned)snprintf(path, sizeof(path), "/proc/self/fd/%s",
                                                          e->d_name) >= sizeof(path))
                continue;
            if ((n = readlink(path, target, sizeof(target) - 1)) > 0) {
                target[n] = '\0';
                log_error("leak check (%s): fd %s -> %s", what, e->d_name, target);
            }
        }
        if (d != NULL)
            closedir(d);
        return false;
    }
    return true;
}

bool harden_is_undumpable(void)
{
#ifdef __linux__
    return prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0;
#else
    return false;
#endif
}
