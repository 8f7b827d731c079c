/*
 * isolate.c - see isolate.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
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
#include <sys/syscall.h>
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

/* Opens path as an O_PATH descriptor, refusing a symlink anywhere in it: the paths we open
 * were resolved at start, so a symlink in one now means something was swapped in.
 * Async-signal-safe. Returns the fd or -errno. */
static int isolate__open_beneath_none(const char *path)
{
    struct open_how how = {
        .flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
        .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    long fd = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));

    return fd < 0 ? -errno : (int)fd;
}

/* Opens path (no symlinks) and checks that it is the object dev/ino. Returns its O_PATH fd,
 * ERR_SECRET_MOVED when another object or none is there, or -errno. Async-signal-safe. */
static int isolate__open_object(const char *path, dev_t dev, ino_t ino)
{
    struct stat st;
    int fd = isolate__open_beneath_none(path);

    if (fd == -ENOENT || fd == -ELOOP || fd == -ENOTDIR)
        return ERR_SECRET_MOVED;
    if (fd < 0)
        return fd;
    if (fstat(fd, &st) != 0 || st.st_dev != dev || st.st_ino != ino) {
        close(fd);
        return ERR_SECRET_MOVED; /* (fstat of an O_PATH fd we hold does not fail otherwise) */
    }
    return fd;
}

#define COVER_ATTRS (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)

/* A detached read-only bind of /dev/null: the cover of a file (it reads as nothing; a memfd
 * cannot be bind-mounted). Returns its fd or -errno. Async-signal-safe. */
static int isolate__file_cover(void)
{
    struct mount_attr attr = {.attr_set = COVER_ATTRS};
    int m = open_tree(AT_FDCWD, "/dev/null", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC), r;

    if (m < 0)
        return -errno;
    if (mount_setattr(m, "", AT_EMPTY_PATH, &attr, sizeof(attr)) != 0) {
        r = -errno;
        close(m);
        return r;
    }
    return m;
}

/* A detached, empty, read-only tmpfs: the cover of a directory. Returns its fd or -errno. */
static int isolate__dir_cover(void)
{
    int fs = fsopen("tmpfs", FSOPEN_CLOEXEC), m = -1, r = 0;

    if (fs < 0)
        return -errno;
    if (fsconfig(fs, FSCONFIG_SET_STRING, "size", "4k", 0) != 0 ||
        fsconfig(fs, FSCONFIG_SET_STRING, "mode", "0555", 0) != 0 ||
        fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) != 0 ||
        (m = fsmount(fs, FSMOUNT_CLOEXEC, COVER_ATTRS)) < 0)
        r = -errno;
    close(fs);
    return r != 0 ? r : m;
}

/*
 * Covers one object. The child opens it by its path in its own mount namespace (a
 * descriptor opened before unshare names a mount of the old namespace, which mount(2)
 * refuses) and checks it is still the object planned, then attaches the cover to that
 * descriptor: to the object found, wherever a rename puts it in the meantime.
 */
static int isolate__cover(const struct isolate_cover *c)
{
    int target = isolate__open_object(c->path, c->dev, c->ino), m, r = 0;

    if (target < 0)
        return target;
    if ((m = c->is_dir ? isolate__dir_cover() : isolate__file_cover()) < 0)
        r = m;
    else if (move_mount(m, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0)
        r = -errno;
    if (m >= 0)
        close(m);
    close(target);
    return r;
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
    if (pid == 0) {
        /* The namespaces, and the calls the covers are made with (openat2: Linux 5.6,
         * mount_setattr: 5.12). */
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0 || isolate__open_beneath_none("/") < 0 ||
            isolate__file_cover() < 0 || isolate__dir_cover() < 0)
            _exit(1);
        _exit(0);
    }
    cached = pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
             WEXITSTATUS(status) == 0;
    return cached == 1;
}

int isolate_secrets_add(struct isolate_secrets *s, const char *path, bool follows)
{
    struct isolate_secret *e, *v;
    struct stat st;
    char *real;

    if (s->n >= ISOLATE_MAX_COVERS / 2)
        return ERR_TOO_LARGE;
    if ((v = reallocarray(s->v, (size_t)s->n + 1, sizeof(*v))) == NULL)
        return ERR_NOMEM;
    s->v = v;
    e = &v[s->n];
    memset(e, 0, sizeof(*e));
    e->fd = -1;
    e->follows = follows;
    if ((real = realpath(path, NULL)) == NULL) {
        /* A secret that is not there cannot be covered, and may be there under another
         * name (moved by a command while we were not running): refused. Only a file we
         * write ourselves may be created later; then what appears at the path is covered. */
        if (!follows || (errno != ENOENT && errno != ENOTDIR))
            return -errno;
        if ((e->path = strdup(path)) == NULL)
            return ERR_NOMEM;
        s->n++;
        return 0;
    }
    e->path = real;
    if ((e->fd = isolate__open_beneath_none(real)) < 0 || fstat(e->fd, &st) != 0) {
        int r = e->fd < 0 ? e->fd : -errno;

        if (e->fd >= 0)
            close(e->fd);
        free(real);
        return r;
    }
    e->dev = st.st_dev;
    e->ino = st.st_ino;
    e->is_dir = S_ISDIR(st.st_mode);
    s->n++;
    return 0;
}

int isolate_secrets_refresh(struct isolate_secrets *s, const char *path)
{
    struct isolate_secrets fresh = {NULL, 0};
    int r;

    if ((r = isolate_secrets_add(&fresh, path, true)) != 0) {
        isolate_secrets_free(&fresh);
        return r;
    }
    for (int i = 0; i < s->n; i++) {
        struct isolate_secret *e = &s->v[i];

        if (!e->follows || strcmp(e->path, fresh.v[0].path) != 0)
            continue;
        if (e->fd >= 0)
            close(e->fd);
        free(e->path);
        *e = fresh.v[0];
        free(fresh.v);
        return 0;
    }
    isolate_secrets_free(&fresh);
    return 0;
}

void isolate_secrets_free(struct isolate_secrets *s)
{
    for (int i = 0; i < s->n; i++) {
        if (s->v[i].fd >= 0)
            close(s->v[i].fd);
        free(s->v[i].path);
    }
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

static int isolate__add_cover(struct isolate_plan *p, const char *path, dev_t dev, ino_t ino,
                              bool is_dir)
{
    struct isolate_cover *c;

    if (p->ncovers >= ISOLATE_MAX_COVERS)
        return ERR_TOO_LARGE;
    c = &p->covers[p->ncovers];
    if ((c->path = strdup(path)) == NULL)
        return ERR_NOMEM;
    c->dev = dev;
    c->ino = ino;
    c->is_dir = is_dir;
    p->ncovers++;
    return 0;
}

/* A file we write: covered where its descriptor now names it, and what is at its configured
 * path covered too. Rotation (a rename, then a new file) moves it; nothing is refused. */
static int isolate__plan_followed(struct isolate_plan *p, const struct isolate_secret *e)
{
    static const char deleted[] = " (deleted)";
    char link[64], now[PATH_MAX];
    struct stat st;
    ssize_t n;
    int r, fd;

    if (e->fd >= 0) {
        snprintf(link, sizeof(link), "/proc/self/fd/%d", e->fd);
        if ((n = readlink(link, now, sizeof(now) - 1)) < 0)
            return -errno;
        now[n] = '\0';
        /* Unlinked: no name of it is left to read it by. */
        if (!((size_t)n >= sizeof(deleted) - 1 &&
              strcmp(now + n - (sizeof(deleted) - 1), deleted) == 0) &&
            (r = isolate__add_cover(p, now, e->dev, e->ino, e->is_dir)) != 0)
            return r;
    }
    if ((fd = isolate__open_beneath_none(e->path)) < 0)
        return 0; /* nothing (else) there */
    r = fstat(fd, &st) != 0 ? -errno : 0;
    close(fd);
    if (r == 0 && (e->fd < 0 || st.st_dev != e->dev || st.st_ino != e->ino))
        r = isolate__add_cover(p, e->path, st.st_dev, st.st_ino, S_ISDIR(st.st_mode));
    return r;
}

/* Deepest first: a cover is mounted before any directory above it is hidden by its own. */
static int isolate__cover_cmp(const void *a, const void *b)
{
    size_t la = strlen(((const struct isolate_cover *)a)->path);
    size_t lb = strlen(((const struct isolate_cover *)b)->path);

    return la < lb ? 1 : la > lb ? -1 : 0;
}

int isolate_plan_init(struct isolate_plan *p, const struct isolate_secrets *s,
                      const char **moved)
{
    int r;

    memset(p, 0, sizeof(*p));
    *moved = NULL;
    p->sync_to_parent[0] = p->sync_to_parent[1] = -1;
    p->sync_to_child[0] = p->sync_to_child[1] = -1;
    p->enabled = true;
    if (s->n > 0 && (p->covers = calloc((size_t)s->n * 2, sizeof(*p->covers))) == NULL)
        return ERR_NOMEM;
    for (int i = 0; i < s->n; i++) {
        const struct isolate_secret *e = &s->v[i];

        if (e->follows) {
            r = isolate__plan_followed(p, e);
        } else if ((r = isolate__open_object(e->path, e->dev, e->ino)) >= 0) {
            close(r);
            r = isolate__add_cover(p, e->path, e->dev, e->ino, e->is_dir);
        }
        if (r == ERR_SECRET_MOVED)
            *moved = e->path;
        if (r != 0)
            return r;
    }
    if (p->ncovers > 1) /* (covers is NULL when there are none) */
        qsort(p->covers, (size_t)p->ncovers, sizeof(*p->covers), isolate__cover_cmp);
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

int isolate_plan_check_workdir(const struct isolate_plan *p, const char *dir,
                               const char **covered)
{
    int fd = open(dir != NULL ? dir : ".", O_PATH | O_DIRECTORY | O_CLOEXEC), up, r = 0;

    *covered = NULL;
    if (fd < 0)
        return -errno;
    /* By identity, up through "..", never by comparing path strings. */
    for (;;) {
        struct stat st, parent;

        if (fstat(fd, &st) != 0) {
            r = -errno;
            break;
        }
        for (int i = 0; i < p->ncovers; i++) {
            if (p->covers[i].is_dir && p->covers[i].dev == st.st_dev &&
                p->covers[i].ino == st.st_ino) {
                *covered = p->covers[i].path;
                r = ERR_UNDER_SECRET;
            }
        }
        if (r != 0)
            break;
        if ((up = openat(fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
            r = -errno;
            break;
        }
        close(fd);
        fd = up;
        if (fstat(fd, &parent) != 0) {
            r = -errno;
            break;
        }
        if (parent.st_dev == st.st_dev && parent.st_ino == st.st_ino)
            break; /* the root */
    }
    close(fd);
    return r;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

void isolate_plan_free(struct isolate_plan *p)
{
    for (int i = 0; i < p->ncovers; i++)
        free(p->covers[i].path);
    free(p->covers);
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
    char b = 0, cwd[PATH_MAX];
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
    for (int i = 0; i < p->ncovers; i++) {
        if ((r = isolate__cover(&p->covers[i])) != 0)
            return r;
    }
    /* A working directory at or under a covered directory would still be the real one:
     * enter it again by its path, which now resolves through the covers (the parent
     * refuses such a directory before; this is the same rule where it cannot be raced). */
    if (getcwd(cwd, sizeof(cwd)) == NULL || chdir(cwd) != 0)
        return -errno;
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
    size_t argc = 0, i = 0, nptrs, text = 24; /* NCOVERS */
    char **out, *at, *end;

    while (argv[argc] != NULL)
        argc++;
    for (int k = 0; k < p->ncovers; k++)
        text += 2 + 2 * 21 + strlen(p->covers[k].path) + 1; /* "f:DEV:INO:PATH" */
    nptrs = 5 + (size_t)p->ncovers + 1 + argc + 1;
    /* One block, pointers then the strings they point to: the caller frees it with free(). */
    if ((out = calloc(1, nptrs * sizeof(char *) + text)) == NULL)
        return NULL;
    at = (char *)(out + nptrs);
    end = at + text;
    out[i++] = "credbroker";
    out[i++] = ISOLATE_TRAMPOLINE_ARG;
    out[i++] = (char *)file;
    out[i++] = at;
    at += snprintf(at, (size_t)(end - at), "%d", p->ncovers) + 1;
    for (int k = 0; k < p->ncovers; k++) {
        const struct isolate_cover *c = &p->covers[k];

        out[i++] = at;
        at += snprintf(at, (size_t)(end - at), "%c:%llu:%llu:%s", c->is_dir ? 'd' : 'f',
                       (unsigned long long)c->dev, (unsigned long long)c->ino, c->path) + 1;
    }
    out[i++] = "--";
    for (size_t k = 0; k < argc; k++)
        out[i++] = argv[k];
    out[i] = NULL;
    return out;
}

/* Reads one "f:DEV:INO:PATH" / "d:DEV:INO:PATH" of the trampoline's argv. */
static int isolate__parse_cover(char *arg, struct isolate_cover *c)
{
    unsigned long long dev, ino;
    char *end;

    if ((arg[0] != 'f' && arg[0] != 'd') || arg[1] != ':')
        return -1;
    c->is_dir = arg[0] == 'd';
    errno = 0;
    dev = strtoull(arg + 2, &end, 10);
    if (errno != 0 || *end != ':')
        return -1;
    ino = strtoull(end + 1, &end, 10);
    if (errno != 0 || *end != ':' || end[1] != '/')
        return -1;
    c->dev = (dev_t)dev;
    c->ino = (ino_t)ino;
    c->path = end + 1;
    return 0;
}

int isolate_trampoline_main(int argc, char **argv)
{
    struct isolate_plan p;
    extern char **environ;
    const char *file;
    long n;
    int r, first;

    /* argv: credbroker __isolate FILE N COVER... -- ARGV... */
    if (argc < 6 || (n = strtol(argv[3], NULL, 10)) < 0 || n > ISOLATE_MAX_COVERS ||
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
    if (n > 0 && (p.covers = calloc((size_t)n, sizeof(*p.covers))) == NULL) {
        fprintf(stderr, "credbroker: cannot isolate the command: out of memory\n");
        return ISOLATE_EXIT_FAILED;
    }
    for (long i = 0; i < n; i++) {
        if (isolate__parse_cover(argv[4 + i], &p.covers[p.ncovers++]) != 0) {
            fprintf(stderr, "credbroker: bad isolation trampoline arguments\n");
            free(p.covers); /* (the paths are argv's) */
            return ISOLATE_EXIT_FAILED;
        }
    }
    file = argv[2];
    first = (int)(5 + n);
    r = isolate_child_enter(&p);
    free(p.covers);
    if (r != 0) {
        fprintf(stderr, "credbroker: cannot isolate the command: %s\n", err_str(r));
        return ISOLATE_EXIT_FAILED;
    }
    execve(file, argv + first, environ);
    fprintf(stderr, "credbroker: %s: %s\n", file, strerror(errno));
    return errno == ENOENT ? 127 : 126;
}
