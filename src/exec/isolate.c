/*
 * isolate.c - see isolate.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "isolate.h"

#ifndef CAP_SYS_ADMIN
#define CAP_SYS_ADMIN 21
#endif

int isolate_parse_mode(const char *s, enum isolate_mode *out)
{
    if (strcmp(s, "auto") == 0)
        *out = ISOLATE_AUTO;
    else if (strcmp(s, "required") == 0)
        *out = ISOLATE_REQUIRED;
    else if (strcmp(s, "off") == 0)
        *out = ISOLATE_OFF;
    else
        return -1;
    return 0;
}

bool isolate_available(void)
{
    static int cached = -1;
    int status;
    pid_t pid;

    if (cached >= 0)
        return cached == 1;
    /* Try in a child: unshare(CLONE_NEWUSER) is refused to a multithreaded process, and
     * a successful try must not change this process. */
    pid = fork();
    if (pid == 0)
        _exit(unshare(CLONE_NEWUSER | CLONE_NEWNS) == 0 ? 0 : 1);
    cached = pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
             WEXITSTATUS(status) == 0;
    return cached == 1;
}

int isolate_plan_init(struct isolate_plan *p, const char *const *paths, int n)
{
    memset(p, 0, sizeof(*p));
    p->sync_to_parent[0] = p->sync_to_parent[1] = -1;
    p->sync_to_child[0] = p->sync_to_child[1] = -1;
    p->enabled = true;
    for (int i = 0; i < n; i++) {
        struct stat st;
        char *real;

        if (paths[i] == NULL || paths[i][0] == '\0')
            continue;
        if ((real = realpath(paths[i], NULL)) == NULL)
            continue; /* nothing there to hide */
        if (p->npaths == ISOLATE_MAX_PATHS || stat(real, &st) != 0) {
            free(real);
            if (p->npaths == ISOLATE_MAX_PATHS)
                return ERR_TOO_LARGE;
            continue;
        }
        p->is_dir[p->npaths] = S_ISDIR(st.st_mode);
        p->paths[p->npaths++] = real;
    }
    /* Not root: the child writes its own one-id maps (the kernel allows that for the
     * process itself, and the broker could not open the files of its non-dumpable child). */
    p->self_map = geteuid() != 0;
    snprintf(p->uid_map, sizeof(p->uid_map), "%u %u 1\n", (unsigned)geteuid(),
             (unsigned)geteuid());
    snprintf(p->gid_map, sizeof(p->gid_map), "%u %u 1\n", (unsigned)getegid(),
             (unsigned)getegid());
    if (pipe2(p->sync_to_parent, O_CLOEXEC) != 0 || pipe2(p->sync_to_child, O_CLOEXEC) != 0)
        return -errno;
    return 0;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

void isolate_plan_free(struct isolate_plan *p)
{
    for (int i = 0; i < p->npaths; i++)
        free(p->paths[i]);
    close_fd(&p->sync_to_parent[0]);
    close_fd(&p->sync_to_parent[1]);
    close_fd(&p->sync_to_child[0]);
    close_fd(&p->sync_to_child[1]);
    memset(p, 0, sizeof(*p));
}

/* Writes text to an already-formatted /proc path (async-signal-safe). */
static int write_file(const char *path, const char *text)
{
    size_t len = strlen(text);
    int fd = open(path, O_WRONLY | O_CLOEXEC), r = 0;

    if (fd < 0)
        return -errno;
    if (write(fd, text, len) != (ssize_t)len)
        r = -EIO;
    close(fd);
    return r;
}

int isolate_child_enter(const struct isolate_plan *p)
{
    char b = 0;
    int r;

    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
        return -errno;
    if (p->self_map) {
        if ((r = write_file("/proc/self/uid_map", p->uid_map)) != 0 ||
            (r = write_file("/proc/self/setgroups", "deny\n")) != 0 ||
            (r = write_file("/proc/self/gid_map", p->gid_map)) != 0)
            return r;
    } else {
        if (write(p->sync_to_parent[1], "u", 1) != 1)
            return -errno;
        if (read(p->sync_to_child[0], &b, 1) != 1 || b != 'm')
            return -EPERM; /* the parent could not map our ids */
    }
    /* Our mounts must not propagate back to the host's namespace. */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        return -errno;
    for (int i = 0; i < p->npaths; i++) {
        const char *target = p->paths[i];

        if (p->is_dir[i]) {
            if (mount("credbroker-cover", target, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV |
                      MS_NOEXEC, "size=4k,mode=0555") != 0)
                return -errno;
        } else {
            if (mount("/dev/null", target, NULL, MS_BIND, NULL) != 0 ||
                mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID |
                      MS_NODEV | MS_NOEXEC, NULL) != 0)
                return -errno;
        }
    }
    /* Without CAP_SYS_ADMIN the command (even root in its namespace) cannot unmount the
     * covers; in namespaces it makes itself they are locked by the kernel. */
    if (prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0) != 0)
        return -errno;
    return 0;
}

/* Writes text to /proc/<pid>/<file>. */
static int write_proc(pid_t pid, const char *file, const char *text)
{
    char path[64];
    ssize_t n;
    int fd, r = 0;

    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
    if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0)
        return -errno;
    n = write(fd, text, strlen(text));
    if (n != (ssize_t)strlen(text))
        r = n < 0 ? -errno : -EIO;
    close(fd);
    return r;
}

void isolate_parent_after_fork(struct isolate_plan *p, int *from_child, int *to_child)
{
    close_fd(&p->sync_to_parent[1]);
    close_fd(&p->sync_to_child[0]);
    *from_child = *to_child = -1;
    if (p->self_map)
        return;
    *from_child = p->sync_to_parent[0];
    *to_child = p->sync_to_child[1];
    p->sync_to_parent[0] = p->sync_to_child[1] = -1;
}

int isolate_parent_map(int from_child, int to_child, pid_t child)
{
    char b = 0;
    ssize_t n;
    int r;

    do {
        n = read(from_child, &b, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1 || b != 'u')
        return -ECHILD; /* the child failed before its namespaces existed */
    /* Root: the whole range, identity-mapped, so root inside keeps its file access (it
     * still holds no capability over anything outside the namespace). */
    r = write_proc(child, "uid_map", "0 0 4294967295\n");
    if (r == 0)
        r = write_proc(child, "gid_map", "0 0 4294967295\n");
    if (write(to_child, r == 0 ? "m" : "x", 1) != 1 && r == 0)
        r = -errno;
    return r;
}

char **isolate_trampoline_argv(const struct isolate_plan *p, const char *file, char *const *argv)
{
    static char npaths[8];
    size_t argc = 0, i = 0;
    char **out;

    while (argv[argc] != NULL)
        argc++;
    if ((out = calloc(5 + (size_t)p->npaths + 1 + argc + 1, sizeof(char *))) == NULL)
        return NULL;
    snprintf(npaths, sizeof(npaths), "%d", p->npaths);
    out[i++] = "credbroker";
    out[i++] = ISOLATE_TRAMPOLINE_ARG;
    out[i++] = (char *)file;
    out[i++] = npaths;
    for (int k = 0; k < p->npaths; k++)
        out[i++] = p->paths[k];
    out[i++] = "--";
    for (size_t k = 0; k < argc; k++)
        out[i++] = argv[k];
    out[i] = NULL;
    return out;
}

int isolate_trampoline_main(int argc, char **argv)
{
    struct isolate_plan p;
    struct stat st;
    extern char **environ;
    const char *file;
    long n;
    int r, first;

    /* argv: credbroker __isolate FILE N PATH... -- ARGV... */
    if (argc < 6 || (n = strtol(argv[3], NULL, 10)) < 0 || n > ISOLATE_MAX_PATHS ||
        argc < 5 + n + 1 || strcmp(argv[4 + n], "--") != 0) {
        fprintf(stderr, "credbroker: bad isolation trampoline arguments\n");
        return ISOLATE_EXIT_FAILED;
    }
    memset(&p, 0, sizeof(p));
    p.sync_to_parent[0] = p.sync_to_parent[1] = p.sync_to_child[0] = p.sync_to_child[1] = -1;
    p.enabled = true;
    p.self_map = true;
    snprintf(p.uid_map, sizeof(p.uid_map), "%u %u 1\n", (unsigned)geteuid(),
             (unsigned)geteuid());
    snprintf(p.gid_map, sizeof(p.gid_map), "%u %u 1\n", (unsigned)getegid(),
             (unsigned)getegid());
    for (long i = 0; i < n; i++) {
        p.paths[p.npaths] = argv[4 + i];
        p.is_dir[p.npaths] = stat(argv[4 + i], &st) == 0 && S_ISDIR(st.st_mode);
        p.npaths++;
    }
    file = argv[2];
    first = (int)(5 + n);
    if ((r = isolate_child_enter(&p)) != 0) {
        fprintf(stderr, "credbroker: cannot isolate the command: %s\n", strerror(-r));
        return ISOLATE_EXIT_FAILED;
    }
    execve(file, argv + first, environ);
    fprintf(stderr, "credbroker: %s: %s\n", file, strerror(errno));
    return errno == ENOENT ? 127 : 126;
}
