/*
 * fileop.c - see fileop.h.
 *
 * The work runs on libuv's thread pool and touches nothing of the loop's: it reads the
 * op's args, the workspace root (read-only after start) and the cancel flag, and fills
 * the op's outcome, which the loop turns into JSON in after_work.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base64.h"
#include "dsglob.h"
#include "err.h"
#include "fileop.h"
#include "gomatch.h"
#include "opargs.h"
#include "proto.h"
#include "wspath.h"

#define FILEOP_CHUNK (1024 * 1024) /* read between two looks at the cancel flag */
#define FILEOP_ERROR_MAX 1024

struct fileop;

struct list_entry {
    char *path; /* relative to the root's real path */
    bool is_dir;
    int64_t size;
};

/* One operation: its args, its work (on the pool) and its result (on the loop). */
struct fileop_kind {
    const char *name;
    const struct opargs_spec *spec;
    void (*work)(struct fileop *op);
    json_t *(*result)(const struct fileop *op);
};

struct fileop {
    uv_work_t work;
    const struct fileop_kind *kind;
    const struct wspath_root *ws;
    struct fileop_limits limits;
    mode_t umask;          /* the process's, for the mode of a new file */
    union {
        struct read_args read;
        struct write_args write;
        struct list_args list;
        struct glob_args glob;
    } args;
    bool args_ok;
    atomic_bool cancelled;
    bool stopped;          /* the work saw the cancel and stopped short (the work's own) */
    fileop_done_cb done;
    void *data;
    /* the outcome, written by the work */
    bool success;
    char error[FILEOP_ERROR_MAX];
    uint8_t *content;
    size_t content_len;
    int64_t total_size;
    bool truncated;
    struct list_entry *entries; /* list */
    size_t nentries, entries_cap;
};

static const struct fileop_kind *fileop__kind(const char *operation);

bool fileop_supports(const char *operation)
{
    return fileop__kind(operation) != NULL;
}

/* ---- Go's texts ---- */

/* Go's syscall.Errno text: glibc's message with its first letter lowercased. */
static void go_errno(int err, char *buf, size_t len)
{
    const char *s = strerror_r(err, buf, len);

    if (s != buf)
        snprintf(buf, len, "%s", s);
    if (buf[0] >= 'A' && buf[0] <= 'Z')
        buf[0] = (char)(buf[0] + 32);
}

/* <abs> for a path that is not there: the root as configured plus the clean path. */
static void lexical_abs(const struct fileop *op, const char *rel, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s%s", op->ws->abs, rel[0] != '\0' ? "/" : "", rel);
}

/* <abs> for what is there: its real path (the directory's, found through its descriptor,
 * plus the name), else the lexical one. */
static void real_abs(const struct fileop *op, int dirfd, const char *name, const char *rel,
                     char *buf, size_t len)
{
    char link[64], dir[PATH_MAX];
    ssize_t n;

    snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
    if ((n = readlink(link, dir, sizeof(dir) - 1)) <= 0) {
        lexical_abs(op, rel, buf, len);
        return;
    }
    dir[n] = '\0';
    snprintf(buf, len, "%s%s%s", dir, strcmp(dir, "/") == 0 ? "" : "/", name);
}

/* In the work: whether the task was cancelled; the work then stops short, and says so. A
 * cancel that comes after the work is done changes nothing: its result stands. */
static bool op_stopping(struct fileop *op)
{
    if (atomic_load(&op->cancelled))
        op->stopped = true;
    return op->stopped;
}

static void op_fail(struct fileop *op, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void op_fail(struct fileop *op, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(op->error, sizeof(op->error), fmt, ap);
    va_end(ap);
    op->success = false;
}

/* The errors every path can give before it names something (RUNNER-OPS.md 3.2). */
static bool op_path_error(struct fileop *op, int r, const char *p)
{
    if (r == ERR_WS_OUTSIDE)
        op_fail(op, "path is outside workspace root: %s", p);
    else if (r == ERR_WS_ESCAPE)
        op_fail(op, "path escapes workspace root via symlink: %s", p);
    else if (r == ERR_WS_LOOP)
        op_fail(op, "failed to resolve symlinks: EvalSymlinks: too many links");
    else if (r == ERR_NOMEM)
        op_fail(op, "out of memory");
    else
        return false;
    return true;
}

/* ---- read (RUNNER-OPS.md 5.1) ---- */

static void read_work(struct fileop *op)
{
    const struct read_args *a = &op->args.read;
    const char *p = a->path != NULL ? a->path : "";
    char *rel = NULL, *name = NULL, abs[PATH_MAX + 256], why[128];
    struct stat st, again;
    int r, dirfd = -1, pfd = -1, fd = -1;
    int64_t offset = a->offset > 0 ? a->offset : 0, want;
    size_t got = 0;

    if ((r = wspath_clean(p, &rel)) != 0) {
        op_path_error(op, r, p);
        goto out;
    }
    if (rel[0] == '\0') {
        op_fail(op, "cannot read a directory: %s", p);
        goto out;
    }
    /* The directory and the name, the last symlink followed beneath the root; then the
     * object itself opened with O_NOFOLLOW, so nothing can be swapped in between. */
    if ((r = wspath_open_parent(op->ws, rel, false, &dirfd, &name)) != 0) {
        if (!op_path_error(op, r, p)) {
            lexical_abs(op, rel, abs, sizeof(abs));
            go_errno(r == -EISDIR ? EISDIR : -r, why, sizeof(why));
            op_fail(op, "failed to stat file: stat %s: %s", abs, why);
        }
        goto out;
    }
    if ((pfd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC)) < 0 || fstat(pfd, &st) != 0) {
        lexical_abs(op, rel, abs, sizeof(abs));
        go_errno(errno, why, sizeof(why));
        op_fail(op, "failed to stat file: stat %s: %s", abs, why);
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        op_fail(op, "cannot read a directory: %s", p);
        goto out;
    }
    op->success = true;
    if (!S_ISREG(st.st_mode)) {
        /* A FIFO or device: size 0, nothing read (and never opened: opening some has
         * effects, and a FIFO would wait for a writer). */
        op->total_size = 0;
        goto out;
    }
    real_abs(op, dirfd, name, rel, abs, sizeof(abs));
    if ((fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)) < 0 ||
        fstat(fd, &again) != 0 || again.st_dev != st.st_dev || again.st_ino != st.st_ino) {
        go_errno(fd < 0 ? errno : ESTALE, why, sizeof(why));
        op_fail(op, "failed to open file: open %s: %s", abs, why);
        goto out;
    }
    op->total_size = (int64_t)again.st_size;
    if (offset >= op->total_size)
        goto out; /* {"content": "", "total_size": size} */
    want = a->limit <= 0 || a->limit > op->total_size - offset ? op->total_size - offset
                                                                 : a->limit;
    if ((uint64_t)want > op->limits.read_max_bytes) {
        want = (int64_t)op->limits.read_max_bytes;
        op->truncated = true;
    }
    if ((op->content = malloc((size_t)want + 1)) == NULL) {
        op_fail(op, "out of memory");
        goto out;
    }
    while (got < (size_t)want) {
        size_t chunk = (size_t)want - got < FILEOP_CHUNK ? (size_t)want - got : FILEOP_CHUNK;
        ssize_t n;

        if (op_stopping(op))
            goto out; /* after_work says "context canceled" */
        do {
            n = pread(fd, op->content + got, chunk, offset + (off_t)got);
        } while (n < 0 && errno == EINTR);
        if (n < 0 && got == 0) {
            go_errno(errno, why, sizeof(why));
            op_fail(op, "failed to read file: read %s: %s", abs, why);
            goto out;
        }
        if (n <= 0)
            break; /* a short read returns what it got */
        got += (size_t)n;
    }
    op->content_len = got;
out:
    if (fd >= 0)
        close(fd);
    if (pfd >= 0)
        close(pfd);
    if (dirfd >= 0)
        close(dirfd);
    free(name);
    free(rel);
}

static json_t *read_result(const struct fileop *op)
{
    char *b64 = malloc(BASE64_ENCODED_LEN(op->content_len) + 1);
    json_t *o;
    size_t len;

    if (b64 == NULL)
        return NULL;
    len = base64_encode(op->content, op->content_len, b64);
    o = json_pack("{s:s#, s:I}", "content", b64, len, "total_size", (json_int_t)op->total_size);
    free(b64);
    if (o != NULL && op->truncated && json_object_set_new(o, "truncated", json_true()) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- write (RUNNER-OPS.md 5.2) ---- */

/* A name for the temporary file beside name: hidden, ours, random. */
static void temp_name(const char *name, char *out, size_t len)
{
    uint32_t rnd = 0;

    if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
        rnd = (uint32_t)getpid() ^ (uint32_t)(uintptr_t)out;
    if (strlen(name) + 24 < len && strlen(name) + 24 <= NAME_MAX)
        snprintf(out, len, ".%s.credbroker-%08x", name, rnd);
    else
        snprintf(out, len, ".credbroker-write-%08x", rnd);
}

/* Writes all of data to fd, looking at the cancel flag between chunks. Returns 0,
 * -ECANCELED or -errno. */
static int write_all(struct fileop *op, int fd, const uint8_t *data, size_t len)
{
    size_t done = 0;

    while (done < len) {
        size_t chunk = len - done < FILEOP_CHUNK ? len - done : FILEOP_CHUNK;
        ssize_t n;

        if (op_stopping(op))
            return -ECANCELED;
        do {
            n = write(fd, data + done, chunk);
        } while (n < 0 && errno == EINTR);
        if (n < 0)
            return -errno;
        done += (size_t)n;
    }
    return 0;
}

/*
 * Atomic, unlike Go's truncate-in-place: a temporary file beside the target (O_EXCL,
 * 0600), every byte written and synced, the mode (and owner, where allowed) of the file
 * it replaces, then renamed over it. On a failure or a cancel the target is untouched.
 */
static void write_work(struct fileop *op)
{
    const struct write_args *a = &op->args.write;
    const char *p = a->path != NULL ? a->path : "", *b64 = a->content != NULL ? a->content : "";
    char *rel = NULL, *name = NULL, tmp[NAME_MAX + 1], abs[PATH_MAX + 256], why[128];
    uint8_t *data = NULL;
    size_t len = 0, bad = 0;
    struct stat st;
    bool exists;
    mode_t mode;
    int r, dirfd = -1, fd = -1;

    tmp[0] = '\0';
    if ((r = wspath_clean(p, &rel)) != 0) {
        op_path_error(op, r, p);
        goto out;
    }
    if ((data = malloc(BASE64_DECODED_MAX(strlen(b64)) + 1)) == NULL) {
        op_fail(op, "out of memory");
        goto out;
    }
    if (base64_decode_go(b64, strlen(b64), data, &len, &bad) != 0) {
        op_fail(op, "failed to decode content: illegal base64 data at input byte %zu", bad);
        goto out;
    }
    if ((r = wspath_open_parent(op->ws, rel, true, &dirfd, &name)) != 0) {
        if (r == -EISDIR) { /* the root itself */
            go_errno(EISDIR, why, sizeof(why));
            op_fail(op, "open %s: %s", op->ws->abs, why);
        } else if (!op_path_error(op, r, p)) {
            char *slash = strrchr(rel, '/');

            if (slash != NULL)
                *slash = '\0';
            lexical_abs(op, slash != NULL ? rel : "", abs, sizeof(abs));
            go_errno(-r, why, sizeof(why));
            op_fail(op, "failed to create directory: mkdir %s: %s", abs, why);
        }
        goto out;
    }
    real_abs(op, dirfd, name, rel, abs, sizeof(abs));
    exists = fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (exists && S_ISDIR(st.st_mode)) {
        go_errno(EISDIR, why, sizeof(why));
        op_fail(op, "open %s: %s", abs, why);
        goto out;
    }
    mode = exists && S_ISREG(st.st_mode) ? st.st_mode & 07777 : 0644 & ~op->umask;
    temp_name(name, tmp, sizeof(tmp));
    if ((fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
        tmp[0] = '\0';
        go_errno(errno, why, sizeof(why));
        op_fail(op, "open %s: %s", abs, why);
        goto out;
    }
    if ((r = write_all(op, fd, data, len)) == 0 && fsync(fd) != 0)
        r = -errno;
    if (r == 0 && op_stopping(op)) /* the last moment before the target changes */
        r = -ECANCELED;
    if (r == -ECANCELED)
        goto out; /* after_work says "context canceled"; the temporary file goes */
    if (r != 0) {
        go_errno(-r, why, sizeof(why));
        op_fail(op, "write %s: %s", abs, why);
        goto out;
    }
    if (exists && S_ISREG(st.st_mode))
        (void)!fchown(fd, st.st_uid, st.st_gid); /* where the runner may */
    if (fchmod(fd, mode) != 0 || renameat(dirfd, tmp, dirfd, name) != 0) {
        go_errno(errno, why, sizeof(why));
        op_fail(op, "write %s: %s", abs, why);
        goto out;
    }
    tmp[0] = '\0'; /* renamed: it is the target now */
    op->success = true;
out:
    if (fd >= 0)
        close(fd);
    if (tmp[0] != '\0')
        unlinkat(dirfd, tmp, 0);
    if (dirfd >= 0)
        close(dirfd);
    if (data != NULL) {
        explicit_bzero(data, len);
        free(data);
    }
    free(name);
    free(rel);
}

static json_t *write_result(const struct fileop *op)
{
    return json_pack("{s:b}", "success", 1);
}

/* ---- list (RUNNER-OPS.md 5.3) ---- */

/* Adds an entry. Returns false when the walk must stop (the cap: truncated; no memory). */
static bool list_add(struct fileop *op, const char *rel, const struct stat *st)
{
    struct list_entry *e;

    if (op->nentries == (op->kind->spec == &opargs_glob ? op->limits.glob_max_matches
                                                        : op->limits.list_max_entries)) {
        op->truncated = true;
        return false;
    }
    if (op->nentries == op->entries_cap) {
        size_t cap = op->entries_cap ? op->entries_cap * 2 : 64;

        if ((e = reallocarray(op->entries, cap, sizeof(*e))) == NULL) {
            op_fail(op, "out of memory");
            return false;
        }
        op->entries = e;
        op->entries_cap = cap;
    }
    e = &op->entries[op->nentries];
    if ((e->path = strdup(rel)) == NULL) {
        op_fail(op, "out of memory");
        return false;
    }
    e->is_dir = S_ISDIR(st->st_mode);
    e->size = (int64_t)st->st_size;
    op->nentries++;
    return true;
}

static bool list_ignored(const struct fileop *op, const char *name)
{
    const struct opargs_strings *ig = &op->args.list.ignore;

    for (size_t i = 0; i < ig->n; i++) {
        if (gomatch(ig->v[i], name))
            return true;
    }
    return false;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in directory dfd but . and .., sorted bytewise (Go's readDirNames). Returns
 * the array (caller frees each and it) and *n, or NULL with errno set. */
static char **list_names(int dfd, size_t *n)
{
    int copy = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
    DIR *d = copy >= 0 ? fdopendir(copy) : NULL;
    char **names = NULL;
    size_t cap = 0;
    struct dirent *de;
    int saved;

    *n = 0;
    if (d == NULL) {
        saved = errno;
        if (copy >= 0)
            close(copy);
        errno = saved;
        return NULL;
    }
    while ((errno = 0, de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (*n == cap) {
            char **grown = reallocarray(names, cap ? cap * 2 : 32, sizeof(char *));

            if (grown == NULL)
                goto fail;
            names = grown;
            cap = cap ? cap * 2 : 32;
        }
        if ((names[*n] = strdup(de->d_name)) == NULL)
            goto fail;
        (*n)++;
    }
    if (errno != 0)
        goto fail;
    closedir(d);
    if (*n > 0)
        qsort(names, *n, sizeof(char *), name_cmp);
    return names != NULL ? names : calloc(1, sizeof(char *));
fail:
    saved = errno != 0 ? errno : ENOMEM;
    while (*n > 0)
        free(names[--(*n)]);
    free(names);
    closedir(d);
    errno = saved;
    return NULL;
}

/*
 * The entries of directory dfd (opened O_RDONLY), whose path relative to the root is rel,
 * depth-first, pre-order, in bytewise order; its directories entered when recursive.
 * Symlinks are entries, never followed. Returns false when the walk stops (an error, the
 * cap, a cancel).
 */
static bool list_dir(struct fileop *op, int dfd, const char *rel)
{
    char **names, path[PATH_MAX], abs[PATH_MAX + 256], why[128];
    size_t n;
    bool go_on = true;

    if ((names = list_names(dfd, &n)) == NULL) {
        snprintf(abs, sizeof(abs), "%s%s%s", op->ws->real, rel[0] ? "/" : "", rel);
        go_errno(errno, why, sizeof(why));
        op_fail(op, "failed to list directory: open %s: %s", abs, why);
        return false;
    }
    for (size_t i = 0; i < n && go_on; i++) {
        struct stat st;
        int cfd;

        if (op_stopping(op)) {
            go_on = false;
            break;
        }
        if (snprintf(path, sizeof(path), "%s%s%s", rel, rel[0] ? "/" : "", names[i]) >=
            (int)sizeof(path)) {
            op_fail(op, "failed to list directory: %s: file name too long", rel);
            go_on = false;
            break;
        }
        if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT)
                continue; /* gone since the directory was read */
            snprintf(abs, sizeof(abs), "%s/%s", op->ws->real, path);
            go_errno(errno, why, sizeof(why));
            op_fail(op, "failed to list directory: lstat %s: %s", abs, why);
            go_on = false;
            break;
        }
        if (list_ignored(op, names[i]))
            continue; /* a directory pruned, a file skipped */
        if (!list_add(op, path, &st)) {
            go_on = false;
            break;
        }
        if (!S_ISDIR(st.st_mode) || !op->args.list.recursive)
            continue;
        if ((cfd = openat(dfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
            snprintf(abs, sizeof(abs), "%s/%s", op->ws->real, path);
            go_errno(errno, why, sizeof(why));
            op_fail(op, "failed to list directory: open %s: %s", abs, why);
            go_on = false;
            break;
        }
        go_on = list_dir(op, cfd, path);
        close(cfd);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return go_on;
}

static void list_work(struct fileop *op)
{
    const struct list_args *a = &op->args.list;
    const char *p = a->path != NULL ? a->path : "", *base;
    char *rel = NULL, start[PATH_MAX], abs[PATH_MAX + 256], why[128];
    struct stat st;
    int r, fd = -1, dfd = -1;

    if ((r = wspath_clean(p, &rel)) != 0) {
        op_path_error(op, r, p);
        goto out;
    }
    if ((fd = wspath_open(op->ws, rel, false)) < 0) {
        if (!op_path_error(op, fd, p)) {
            lexical_abs(op, rel, abs, sizeof(abs));
            go_errno(-fd, why, sizeof(why));
            op_fail(op, "failed to list directory: lstat %s: %s", abs, why);
        }
        goto out;
    }
    /* Entries are named from the root's real path: listing a symlink to a directory
     * inside the root lists the target under its own name. */
    if ((r = wspath_relative(op->ws, fd, start, sizeof(start))) != 0 || fstat(fd, &st) != 0) {
        if (!op_path_error(op, r, p))
            op_fail(op, "failed to list directory: %s", p);
        goto out;
    }
    op->success = true;
    base = strrchr(start, '/') != NULL ? strrchr(start, '/') + 1 : start;
    /* As Go's walk function: the ignore patterns first (the starting directory too,
     * the root included), then the root itself is no entry. */
    if (list_ignored(op, start[0] != '\0' ? base : strrchr(op->ws->real, '/') + 1))
        goto out;
    if (start[0] != '\0' && !list_add(op, start, &st))
        goto out;
    if (!S_ISDIR(st.st_mode))
        goto out;
    if ((dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        snprintf(abs, sizeof(abs), "%s%s%s", op->ws->real, start[0] ? "/" : "", start);
        go_errno(errno, why, sizeof(why));
        op_fail(op, "failed to list directory: open %s: %s", abs, why);
        goto out;
    }
    list_dir(op, dfd, start);
out:
    if (dfd >= 0)
        close(dfd);
    if (fd >= 0)
        close(fd);
    free(rel);
}

/* ---- glob (RUNNER-OPS.md 5.4) ---- */

struct glob_walk {
    const char *pattern;
    bool dirs_only;        /* the pattern ended in '/' */
    int max_depth;         /* levels below the root worth entering; -1 with a '**' */
    struct stat *path;     /* the directories on the way down: a link back is a loop */
    size_t depth;
};

/* Whether dfd's directory is already on the way down (a symlink back up: a loop). */
static bool glob_on_path(const struct glob_walk *g, const struct stat *st)
{
    for (size_t i = 0; i < g->depth; i++) {
        if (g->path[i].st_dev == st->st_dev && g->path[i].st_ino == st->st_ino)
            return true;
    }
    return false;
}

/* The entries of dfd (relative path rel, at depth levels below the root), tested and
 * entered. Returns false when the walk stops. File system errors are passed over, as
 * doublestar does. */
static bool glob_dir(struct fileop *op, struct glob_walk *g, int dfd, const char *rel)
{
    char **names, path[PATH_MAX];
    size_t n;
    bool go_on = true;

    if ((names = list_names(dfd, &n)) == NULL)
        return true;
    for (size_t i = 0; i < n && go_on; i++) {
        struct stat st, target;
        bool is_dir;
        int linkfd = -1, cfd = -1, m;

        if (op_stopping(op)) {
            go_on = false;
            break;
        }
        if (snprintf(path, sizeof(path), "%s%s%s", rel, rel[0] ? "/" : "", names[i]) >=
                (int)sizeof(path) ||
            fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        is_dir = S_ISDIR(st.st_mode);
        /* A symlinked directory counts (and is entered) only when it resolves beneath the
         * root; its own name can match either way. */
        if (S_ISLNK(st.st_mode) && (linkfd = wspath_open(op->ws, path, false)) >= 0 &&
            fstat(linkfd, &target) == 0 && S_ISDIR(target.st_mode)) {
            is_dir = true;
            st = target;
        }
        if (!g->dirs_only || is_dir) {
            if ((m = dsglob_match(g->pattern, path)) < 0) {
                op_fail(op, "failed to glob: pattern too complex");
                go_on = false;
            } else if (m == 1) {
                struct stat any = {0};

                go_on = list_add(op, path, &any);
            }
        }
        if (go_on && is_dir && (g->max_depth < 0 || (int)g->depth <= g->max_depth) &&
            !glob_on_path(g, &st)) {
            cfd = linkfd >= 0 ? openat(linkfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                              : openat(dfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                                       O_CLOEXEC);
            if (cfd >= 0) {
                g->path[g->depth++] = st;
                go_on = glob_dir(op, g, cfd, path);
                g->depth--;
                close(cfd);
            }
        }
        if (linkfd >= 0)
            close(linkfd);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return go_on;
}

/* A pattern that starts with '/' or has a '.' or '..' segment names no valid fs.FS path:
 * no results, no error (Go's io/fs rules). */
static bool glob_pattern_reachable(const char *p)
{
    if (p[0] == '/')
        return false;
    for (const char *seg = p; seg != NULL; seg = strchr(seg, '/') ? strchr(seg, '/') + 1 : NULL) {
        size_t len = strchr(seg, '/') ? (size_t)(strchr(seg, '/') - seg) : strlen(seg);

        if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return false;
    }
    return true;
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct list_entry *)a)->path, ((const struct list_entry *)b)->path);
}

static void glob_work(struct fileop *op)
{
    const char *pattern = op->args.glob.pattern != NULL ? op->args.glob.pattern : "";
    struct glob_walk g = {0};
    char *pat = NULL;
    size_t len = strlen(pattern);
    struct stat root;
    int dfd = -1;

    if (!dsglob_valid(pattern)) {
        op_fail(op, "failed to glob: syntax error in pattern");
        return;
    }
    op->success = true;
    if (len == 0 || !glob_pattern_reachable(pattern))
        return;
    if ((pat = strdup(pattern)) == NULL) {
        op_fail(op, "out of memory");
        return;
    }
    /* A trailing '/' matches directories only. */
    if (len > 1 && pat[len - 1] == '/' && pat[len - 2] != '\\') {
        pat[len - 1] = '\0';
        g.dirs_only = true;
    }
    g.pattern = pat;
    g.max_depth = strstr(pat, "**") != NULL ? -1 : 0;
    for (const char *c = pat; g.max_depth >= 0 && *c != '\0'; c++)
        g.max_depth += *c == '/';
    if ((g.path = calloc(PATH_MAX / 2, sizeof(*g.path))) == NULL) {
        op_fail(op, "out of memory");
        goto out;
    }
    /* "**" matches the directory it starts from: the root itself, ".". */
    if (strcmp(pat, "**") == 0) {
        struct stat any = {0};

        if (!list_add(op, ".", &any))
            goto out;
    }
    if ((dfd = openat(op->ws->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
        fstat(dfd, &root) != 0)
        goto out;
    g.path[g.depth++] = root;
    glob_dir(op, &g, dfd, "");
out:
    if (dfd >= 0)
        close(dfd);
    /* The first ones in walk order (names sorted per directory), then sorted. */
    if (op->success && op->nentries > 1)
        qsort(op->entries, op->nentries, sizeof(*op->entries), entry_cmp);
    free(g.path);
    free(pat);
}

/*
 * The result of list or glob: {"<name>": [...] or null when empty, "truncated": true?},
 * each entry as list's object or, for glob, its path alone. Names that are not UTF-8 are
 * sanitized (RUNNER-OPS.md 2.6).
 */
static json_t *entries_result(const struct fileop *op, const char *name, bool objects)
{
    json_t *o = json_object(), *items = op->nentries > 0 ? json_array() : json_null();

    if (o == NULL || items == NULL || json_object_set_new(o, name, items) != 0)
        goto fail;
    for (size_t i = 0; i < op->nentries; i++) {
        const struct list_entry *e = &op->entries[i];
        size_t len;
        char *path = proto_utf8_sanitize((const uint8_t *)e->path, strlen(e->path), &len);
        json_t *item = path == NULL ? NULL
                       : objects    ? json_pack("{s:s#, s:b, s:I}", "path", path, len, "is_dir",
                                                e->is_dir, "size", (json_int_t)e->size)
                                    : json_stringn(path, len);

        free(path);
        if (item == NULL || json_array_append_new(items, item) != 0)
            goto fail;
    }
    if (op->truncated && json_object_set_new(o, "truncated", json_true()) != 0)
        goto fail;
    return o;
fail:
    json_decref(o);
    return NULL;
}

static json_t *list_result(const struct fileop *op)
{
    return entries_result(op, "entries", true);
}

static json_t *glob_result(const struct fileop *op)
{
    return entries_result(op, "matches", false);
}

/* ---- the op ---- */

static const struct fileop_kind kinds[] = {
    {"read", &opargs_read, read_work, read_result},
    {"write", &opargs_write, write_work, write_result},
    {"list", &opargs_list, list_work, list_result},
    {"glob", &opargs_glob, glob_work, glob_result},
};

static const struct fileop_kind *fileop__kind(const char *operation)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strcmp(kinds[i].name, operation) == 0)
            return &kinds[i];
    }
    return NULL;
}


static void on_work(uv_work_t *w)
{
    struct fileop *op = w->data;

    if (!op->args_ok || op_stopping(op))
        return;
    op->kind->work(op);
}

static void on_after_work(uv_work_t *w, int status)
{
    struct fileop *op = w->data;
    json_t *result = NULL;

    /* Cancelled before it started, or stopped short by the cancel: nothing of it stands
     * (a write left its target untouched). */
    if (status == UV_ECANCELED || (op->args_ok && op->stopped)) {
        op->done(op, false, NULL, "context canceled", op->data);
        return;
    }
    if (!op->success) {
        op->done(op, false, NULL, op->error, op->data);
        return;
    }
    if ((result = op->kind->result(op)) == NULL)
        op->done(op, false, NULL, "out of memory", op->data);
    else
        op->done(op, true, result, NULL, op->data);
    json_decref(result);
}

int fileop_start(uv_loop_t *loop, const char *operation, const json_t *args,
                 const struct wspath_root *ws, const struct fileop_limits *limits,
                 fileop_done_cb done, void *data, struct fileop **out)
{
    struct fileop *op;
    int r;

    *out = NULL;
    if ((op = calloc(1, sizeof(*op))) == NULL)
        return ERR_NOMEM;
    if ((op->kind = fileop__kind(operation)) == NULL) {
        free(op);
        return ERR_INVALID;
    }
    op->ws = ws;
    op->limits = *limits;
    op->done = done;
    op->data = data;
    op->work.data = op;
    atomic_init(&op->cancelled, false);
    /* Read on the loop (no other thread changes it; the runner never sets it again). */
    op->umask = umask(0);
    umask(op->umask);
    /* A bad args fails from the work's completion too: one path to done. */
    op->args_ok = opargs_parse(op->kind->spec, args, &op->args, op->error,
                               sizeof(op->error)) == 0;
    if ((r = uv_queue_work(loop, &op->work, on_work, on_after_work)) != 0) {
        opargs_free(op->kind->spec, &op->args);
        free(op);
        return r;
    }
    *out = op;
    return 0;
}

void fileop_cancel(struct fileop *op)
{
    atomic_store(&op->cancelled, true);
    (void)uv_cancel((uv_req_t *)&op->work); /* only if it has not started */
}

void fileop_free(struct fileop *op)
{
    if (op == NULL)
        return;
    opargs_free(op->kind->spec, &op->args);
    free(op->content);
    for (size_t i = 0; i < op->nentries; i++)
        free(op->entries[i].path);
    free(op->entries);
    free(op);
}
