/*
 * tests/fdaudit: an LD_PRELOAD for the e2e tests that catches a file descriptor closed
 * while the process's own epoll set still watches it.
 *
 * Why it matters: epoll watches the open file, not the number. Closed without leaving the
 * set first (libuv's uv_close does that; a bare close(2) does not), the file stays
 * registered for as long as any other copy lives (a forked child before its exec holds
 * them all), and its events keep arriving under the old number: libuv hands them to
 * whatever the process has opened since with that number. In the runner that was a
 * command's connection reading a false end of stream (src/exec/child.c,
 * child__idmap_end). The race is rare; the cause is not: every such close is reported
 * here, whether the race then struck or not.
 *
 * Each close(2) of the process that made an epoll set reads /proc/self/fdinfo of the set
 * ("tfd: N" lines) and, when N is the fd being closed, appends one line to the file named
 * by CREDBROKER_FDAUDIT_LOG. A forked child's closes are not the parent's: the set is
 * shared until exec, but its registrations are the parent's numbers. The log also gets
 * "epoll N" when a set is made, so a test can tell the audit ran at all.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define FDAUDIT_SETS 8

static struct {
    int fd;
    pid_t owner;
} sets[FDAUDIT_SETS];
static int nsets;

typedef int (*int_fn)(int);

/* The next definition of name (ISO C has no cast from void * to a function pointer). */
static int_fn next_fn(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    int_fn f;

    memcpy(&f, &p, sizeof(f));
    return f;
}

static int real_close(int fd)
{
    static int_fn fn;

    if (fn == NULL)
        fn = next_fn("close");
    return fn(fd);
}

static void audit_log(const char *line)
{
    const char *path = getenv("CREDBROKER_FDAUDIT_LOG");
    int fd;

    if (path == NULL || (fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0)
        return;
    (void)!write(fd, line, strlen(line));
    real_close(fd);
}

static void set_added(int fd)
{
    char line[64];

    if (fd < 0 || nsets == FDAUDIT_SETS)
        return;
    sets[nsets].fd = fd;
    sets[nsets].owner = getpid();
    nsets++;
    snprintf(line, sizeof(line), "epoll %d\n", fd);
    audit_log(line);
}

int epoll_create1(int flags)
{
    static int_fn fn;
    int fd;

    if (fn == NULL)
        fn = next_fn("epoll_create1");
    fd = fn(flags);
    set_added(fd);
    return fd;
}

int epoll_create(int size)
{
    static int_fn fn;
    int fd;

    if (fn == NULL)
        fn = next_fn("epoll_create");
    fd = fn(size);
    set_added(fd);
    return fd;
}

/* True if the set epfd has fd registered ("tfd: <fd> " in its fdinfo). */
static bool set_watches(int epfd, int fd)
{
    char path[64], text[65536], want[32];
    ssize_t n, got = 0;
    int f;

    snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", epfd);
    if ((f = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return false;
    while (got < (ssize_t)sizeof(text) - 1 &&
           (n = read(f, text + got, sizeof(text) - 1 - (size_t)got)) > 0)
        got += n;
    real_close(f);
    text[got] = '\0';
    snprintf(want, sizeof(want), "tfd: %8d ", fd);
    return strstr(text, want) != NULL;
}

int close(int fd)
{
    pid_t self = getpid();

    for (int i = 0; i < nsets; i++) {
        if (sets[i].owner != self)
            continue;
        if (sets[i].fd == fd) {
            sets[i] = sets[--nsets]; /* the set itself goes */
            break;
        }
        if (set_watches(sets[i].fd, fd)) {
            char line[384], target[256] = "?", link[64];
            ssize_t n;

            snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
            if ((n = readlink(link, target, sizeof(target) - 1)) >= 0)
                target[n] = '\0';
            snprintf(line, sizeof(line), "pid %d: close(%d) while epoll %d watches it (%s)\n",
                     (int)self, fd, sets[i].fd, target);
            audit_log(line);
        }
    }
    return real_close(fd);
}
