/*
 * fileop.c - see fileop.h.
 *
 * The work runs on libuv's thread pool and touches nothing of the loop's: it reads the
 * op's args, the workspace root (read-only after start) and the cancel flag, and fills
 * the op's outcome, which the loop turns into JSON in after_work.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "fileop.h"
#include "opargs.h"
#include "wspath.h"

#define FILEOP_CHUNK (1024 * 1024) /* read between two looks at the cancel flag */
#define FILEOP_ERROR_MAX 1024

enum fileop_kind { FILEOP_READ };

struct fileop {
    uv_work_t work;
    enum fileop_kind kind;
    const struct wspath_root *ws;
    struct fileop_limits limits;
    union {
        struct read_args read;
    } args;
    bool args_ok;
    atomic_bool cancelled;
    fileop_done_cb done;
    void *data;
    /* the outcome, written by the work */
    bool success;
    char error[FILEOP_ERROR_MAX];
    uint8_t *content;
    size_t content_len;
    int64_t total_size;
    bool truncated;
};

bool fileop_supports(const char *operation)
{
    return strcmp(operation, "read") == 0;
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

        if (atomic_load(&op->cancelled))
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
    size_t b64_len = 4 * ((op->content_len + 2) / 3);
    char *b64 = malloc(b64_len + 1);
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    json_t *o;
    size_t i, j = 0;

    if (b64 == NULL)
        return NULL;
    /* base64, standard alphabet, padded (Go's StdEncoding) */
    for (i = 0; i + 2 < op->content_len; i += 3) {
        uint32_t v = (uint32_t)op->content[i] << 16 | (uint32_t)op->content[i + 1] << 8 |
                     op->content[i + 2];

        b64[j++] = alphabet[v >> 18 & 63];
        b64[j++] = alphabet[v >> 12 & 63];
        b64[j++] = alphabet[v >> 6 & 63];
        b64[j++] = alphabet[v & 63];
    }
    if (i < op->content_len) {
        uint32_t v = (uint32_t)op->content[i] << 16 |
                     (i + 1 < op->content_len ? (uint32_t)op->content[i + 1] << 8 : 0);

        b64[j++] = alphabet[v >> 18 & 63];
        b64[j++] = alphabet[v >> 12 & 63];
        b64[j++] = i + 1 < op->content_len ? alphabet[v >> 6 & 63] : '=';
        b64[j++] = '=';
    }
    b64[j] = '\0';
    o = json_pack("{s:s#, s:I}", "content", b64, j, "total_size", (json_int_t)op->total_size);
    free(b64);
    if (o != NULL && op->truncated && json_object_set_new(o, "truncated", json_true()) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- the op ---- */

static void on_work(uv_work_t *w)
{
    struct fileop *op = w->data;

    if (!op->args_ok || atomic_load(&op->cancelled))
        return;
    switch (op->kind) {
    case FILEOP_READ: read_work(op); break;
    }
}

static void on_after_work(uv_work_t *w, int status)
{
    struct fileop *op = w->data;
    json_t *result = NULL;

    if (status == UV_ECANCELED || (op->args_ok && atomic_load(&op->cancelled))) {
        op->done(op, false, NULL, "context canceled", op->data);
        return;
    }
    if (!op->success) {
        op->done(op, false, NULL, op->error, op->data);
        return;
    }
    switch (op->kind) {
    case FILEOP_READ: result = read_result(op); break;
    }
    if (result == NULL)
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
    op->kind = FILEOP_READ;
    op->ws = ws;
    op->limits = *limits;
    op->done = done;
    op->data = data;
    op->work.data = op;
    atomic_init(&op->cancelled, false);
    (void)operation; /* read is the only one so far (fileop_supports) */
    /* A bad args fails from the work's completion too: one path to done. */
    op->args_ok = opargs_parse(&opargs_read, args, &op->args.read, op->error,
                               sizeof(op->error)) == 0;
    if ((r = uv_queue_work(loop, &op->work, on_work, on_after_work)) != 0) {
        opargs_free(&opargs_read, &op->args.read);
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
    opargs_free(&opargs_read, &op->args.read);
    free(op->content);
    free(op);
}
