/*
 * wspath.c - see wspath.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "err.h"
#include "wspath.h"

int wspath_clean(const char *p, char **rel)
{
    size_t len = strlen(p), n = 0;
    char *out;

    *rel = NULL;
    /* The result is never longer than p. */
    if ((out = malloc(len + 1)) == NULL)
        return ERR_NOMEM;
    while (*p != '\0') {
        const char *end = strchr(p, '/');
        size_t clen = end != NULL ? (size_t)(end - p) : strlen(p);

        if (clen == 0 || (clen == 1 && p[0] == '.')) {
            /* an empty segment ('//', a leading '/': re-rooted) or '.' */
        } else if (clen == 2 && p[0] == '.' && p[1] == '.') {
            if (n == 0) {
                free(out);
                return ERR_WS_OUTSIDE;
            }
            while (n > 0 && out[n - 1] != '/')
                n--;
            if (n > 0)
                n--; /* the '/' before the dropped segment */
        } else {
            if (n > 0)
                out[n++] = '/';
            memcpy(out + n, p, clen);
            n += clen;
        }
        p += clen;
        if (*p == '/')
            p++;
    }
    out[n] = '\0';
    *rel = out;
    return 0;
}

/*
 * Whether the absolute path abs lies beneath the root's real path, compared by
 * components (so "/ws-evil" is not beneath "/ws"): the rest of abs after the root,
 * without its leading '/' ("" for the root itself), or NULL.
 */
static const char *wspath__beneath(const struct wspath_root *r, const char *abs)
{
    size_t rlen = strcmp(r->real, "/") == 0 ? 0 : strlen(r->real);

    if (strncmp(abs, r->real, rlen) != 0 || (abs[rlen] != '\0' && abs[rlen] != '/'))
        return NULL;
    abs += rlen;
    while (*abs == '/')
        abs++;
    return abs;
}

/* ---- the walk ---- */

struct walk {
    const struct wspath_root *root;
    int *dirs;       /* dirs[0] is the root's fd (not ours); the rest are ours */
    size_t ndirs, cap;
    char *path;      /* what is left to resolve (owned) */
    const char *at;  /* its next component */
    int hops;
};

static int walk_init(struct walk *w, const struct wspath_root *r, const char *rel)
{
    memset(w, 0, sizeof(*w));
    w->root = r;
    if ((w->dirs = malloc(8 * sizeof(int))) == NULL || (w->path = strdup(rel)) == NULL) {
        free(w->dirs);
        return ERR_NOMEM;
    }
    w->cap = 8;
    w->dirs[0] = r->fd;
    w->ndirs = 1;
    w->at = w->path;
    return 0;
}

static void walk_free(struct walk *w)
{
    while (w->ndirs > 1)
        close(w->dirs[--w->ndirs]);
    free(w->dirs);
    free(w->path);
}

static int walk_top(const struct walk *w)
{
    return w->dirs[w->ndirs - 1];
}

static int walk_push(struct walk *w, int fd)
{
    if (w->ndirs == w->cap) {
        int *dirs = reallocarray(w->dirs, w->cap * 2, sizeof(int));

        if (dirs == NULL) {
            close(fd);
            return ERR_NOMEM;
        }
        w->dirs = dirs;
        w->cap *= 2;
    }
    w->dirs[w->ndirs++] = fd;
    return 0;
}

/* The next component into name; false when none is left. *last: no component follows. */
static bool walk_next(struct walk *w, char name[NAME_MAX + 1], bool *last, int *err)
{
    const char *p = w->at, *end;
    size_t len;

    *err = 0;
    while (*p == '/')
        p++;
    if (*p == '\0')
        return false;
    end = strchr(p, '/');
    len = end != NULL ? (size_t)(end - p) : strlen(p);
    if (len > NAME_MAX) {
        *err = -ENAMETOOLONG;
        return false;
    }
    memcpy(name, p, len);
    name[len] = '\0';
    p += len;
    while (*p == '/')
        p++;
    w->at = p;
    *last = *p == '\0';
    return true;
}

/*
 * A symlink's target takes its place: a relative one is spliced in before what is left;
 * an absolute one must lie beneath the root's real path (compared by components, as Go
 * does), and resolution starts again from the root.
 */
static int walk_splice(struct walk *w, const char *target)
{
    const char *rest = w->at;
    char *path;
    size_t plen;

    if (target[0] == '/') {
        if ((target = wspath__beneath(w->root, target)) == NULL)
            return ERR_WS_ESCAPE;
        while (w->ndirs > 1)
            close(w->dirs[--w->ndirs]);
    }
    plen = strlen(target) + 1 + strlen(rest) + 1;
    if ((path = malloc(plen)) == NULL)
        return ERR_NOMEM;
    snprintf(path, plen, "%s/%s", target, rest);
    free(w->path);
    w->path = path;
    w->at = path;
    return 0;
}

/* Reads the symlink fd names (an O_PATH | O_NOFOLLOW descriptor) and splices it in. */
static int walk_follow(struct walk *w, int fd)
{
    char target[PATH_MAX];
    ssize_t n;

    if (++w->hops > WSPATH_MAX_HOPS)
        return ERR_WS_LOOP;
    if ((n = readlinkat(fd, "", target, sizeof(target) - 1)) < 0)
        return -errno;
    target[n] = '\0';
    return walk_splice(w, target);
}

/*
 * Walks what is left. Resolving (parent false): *fd is the object named, the last symlink
 * followed unless nofollow. For a parent (parent true): *fd is the directory to hold the
 * last component and *name that component, the last symlink always followed, missing
 * directories made when mkdirs.
 */
static int walk_run(struct walk *w, bool nofollow, bool parent, bool mkdirs, int *fd_out,
                    char **name_out)
{
    char name[NAME_MAX + 1];
    bool last;
    int err;

    while (walk_next(w, name, &last, &err)) {
        struct stat st;
        int fd;

        if (strcmp(name, ".") == 0)
            continue;
        if (strcmp(name, "..") == 0) {
            if (w->ndirs == 1)
                return ERR_WS_ESCAPE; /* only a symlink's target can climb: lexically refused */
            close(w->dirs[--w->ndirs]);
            continue;
        }
        if ((fd = openat(walk_top(w), name, O_PATH | O_NOFOLLOW | O_CLOEXEC)) < 0) {
            if (errno != ENOENT || !parent)
                return -errno;
            if (last)
                goto found_parent; /* to be created here */
            if (!mkdirs)
                return -ENOENT;
            if (mkdirat(walk_top(w), name, 0755) != 0 && errno != EEXIST)
                return -errno;
            /* Not followed if something swapped a symlink in meanwhile. */
            if ((fd = openat(walk_top(w), name, O_PATH | O_NOFOLLOW | O_DIRECTORY |
                             O_CLOEXEC)) < 0)
                return -errno;
            if ((err = walk_push(w, fd)) != 0)
                return err;
            continue;
        }
        if (fstat(fd, &st) != 0) {
            err = -errno;
            close(fd);
            return err;
        }
        if (S_ISLNK(st.st_mode) && !(last && nofollow && !parent)) {
            err = walk_follow(w, fd);
            close(fd);
            if (err != 0)
                return err;
            continue;
        }
        if (last && parent) {
            close(fd);
            goto found_parent;
        }
        if (last) {
            *fd_out = fd;
            return 0;
        }
        if (!S_ISDIR(st.st_mode)) {
            close(fd);
            return -ENOTDIR;
        }
        if ((err = walk_push(w, fd)) != 0)
            return err;
    }
    if (err != 0)
        return err;
    /* Nothing left: the directory we stand in (the root, or where '..' led). */
    if (parent)
        return -EISDIR;
    if ((*fd_out = fcntl(walk_top(w), F_DUPFD_CLOEXEC, 0)) < 0)
        return -errno;
    return 0;

found_parent:
    if ((*name_out = strdup(name)) == NULL)
        return ERR_NOMEM;
    if ((*fd_out = fcntl(walk_top(w), F_DUPFD_CLOEXEC, 0)) < 0) {
        err = -errno;
        free(*name_out);
        *name_out = NULL;
        return err;
    }
    return 0;
}

/* ---- the public side ---- */

static long wspath__openat2(int dirfd, const char *path, int flags)
{
    struct open_how how = {
        .flags = (unsigned)(flags | O_CLOEXEC),
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };

    return syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

int wspath_open(const struct wspath_root *r, const char *rel, bool nofollow)
{
    struct walk w;
    int fd = -1, err;

    if (r->openat2) {
        long k = wspath__openat2(r->fd, rel[0] != '\0' ? rel : ".",
                                 O_PATH | (nofollow ? O_NOFOLLOW : 0));

        if (k >= 0)
            return (int)k;
        /* EXDEV: an absolute symlink (or a real escape); ELOOP: a magic link, or a loop;
         * EAGAIN: a rename raced the kernel's check. The walk tells them apart. */
        if (errno != EXDEV && errno != ELOOP && errno != EAGAIN)
            return -errno;
    }
    if ((err = walk_init(&w, r, rel)) != 0)
        return err;
    err = walk_run(&w, nofollow, false, false, &fd, NULL);
    walk_free(&w);
    return err != 0 ? err : fd;
}

int wspath_open_parent(const struct wspath_root *r, const char *rel, bool mkdirs, int *dirfd,
                       char **name)
{
    struct walk w;
    int err;

    *dirfd = -1;
    *name = NULL;
    if ((err = walk_init(&w, r, rel)) != 0)
        return err;
    err = walk_run(&w, false, true, mkdirs, dirfd, name);
    walk_free(&w);
    return err;
}

int wspath_relative(const struct wspath_root *r, int fd, char *out, size_t len)
{
    char link[64], real[PATH_MAX];
    const char *rest;
    ssize_t n;

    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    if ((n = readlink(link, real, sizeof(real) - 1)) < 0)
        return -errno;
    real[n] = '\0';
    if ((rest = wspath__beneath(r, real)) == NULL)
        return ERR_WS_ESCAPE; /* (renamed out from under us meanwhile) */
    if ((size_t)snprintf(out, len, "%s", rest) >= len)
        return -ENAMETOOLONG;
    return 0;
}

int wspath_root_open(struct wspath_root *r, const char *path)
{
    char cwd[PATH_MAX], *joined = NULL, *rel = NULL;
    size_t len;
    int err;

    memset(r, 0, sizeof(*r));
    r->fd = -1;
    if (path[0] != '/') {
        if (getcwd(cwd, sizeof(cwd)) == NULL)
            return -errno;
        len = strlen(cwd) + 1 + strlen(path) + 1;
        if ((joined = malloc(len)) == NULL)
            return ERR_NOMEM;
        snprintf(joined, len, "%s/%s", cwd, path);
        path = joined;
    }
    err = wspath_clean(path, &rel); /* an absolute path never climbs above '/' */
    free(joined);
    if (err != 0)
        return err;
    len = strlen(rel) + 2;
    if ((r->abs = malloc(len)) == NULL) {
        free(rel);
        return ERR_NOMEM;
    }
    snprintf(r->abs, len, "/%s", rel);
    free(rel);
    /* mkdir -p, 0755 (the configured root's own symlinks are the operator's choice). */
    for (char *slash = strchr(r->abs + 1, '/');; slash = strchr(slash + 1, '/')) {
        if (slash != NULL)
            *slash = '\0';
        if (r->abs[1] != '\0' && mkdir(r->abs, 0755) != 0 && errno != EEXIST) {
            err = -errno;
            if (slash != NULL)
                *slash = '/';
            goto fail;
        }
        if (slash == NULL)
            break;
        *slash = '/';
    }
    if ((r->fd = open(r->abs, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0 ||
        (r->real = realpath(r->abs, NULL)) == NULL) {
        err = -errno;
        goto fail;
    }
    {
        long k = wspath__openat2(r->fd, ".", O_PATH);

        r->openat2 = k >= 0;
        if (k >= 0)
            close((int)k);
    }
    return 0;
fail:
    wspath_root_close(r);
    return err;
}

void wspath_root_close(struct wspath_root *r)
{
    if (r->fd >= 0)
        close(r->fd);
    free(r->abs);
    free(r->real);
    memset(r, 0, sizeof(*r));
    r->fd = -1;
}
