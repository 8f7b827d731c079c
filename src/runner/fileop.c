/*
 * fileop.c - see fileop.h: an operation's life (args read on the loop, the work queued on
 * libuv's thread pool, the cancel, the result turned into JSON back on the loop) and the
 * Go texts every operation shares. The operations are fileop_file.c (read, write) and
 * fileop_walk.c (list, glob).
 *
 * The work runs on libuv's thread pool and touches nothing of the loop's: it reads the
 * op's args, the workspace root (read-only after start) and the cancel flag, and fills
 * the op's outcome, which the loop turns into JSON in after_work.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "fileop_internal.h"
#include "outspill.h"
#include "proto.h"
#include "wspath.h"

static const struct fileop_kind *fileop__kind(const char *operation);

bool fileop_supports(const char *operation)
{
    return fileop__kind(operation) != NULL;
}

/* ---- Go's texts ---- */

/* Go's syscall.Errno text: glibc's message with its first letter lowercased. */
void fileop__go_errno(int err, char *buf, size_t len)
{
    err_go_errno(err, buf, len);
}

/* <abs> for a path that is not there: the root as configured plus the clean path. */
void fileop__lexical_abs(const struct fileop *op, const char *rel, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s%s", op->ws->abs, rel[0] != '\0' ? "/" : "", rel);
}

/* <abs> for what is there: its real path (the directory's, found through its descriptor,
 * plus the name), else the lexical one. */
void fileop__real_abs(const struct fileop *op, int dirfd, const char *name, const char *rel,
                     char *buf, size_t len)
{
    char link[64], dir[PATH_MAX];
    ssize_t n;

    snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
    if ((n = readlink(link, dir, sizeof(dir) - 1)) <= 0) {
        fileop__lexical_abs(op, rel, buf, len);
        return;
    }
    dir[n] = '\0';
    snprintf(buf, len, "%s%s%s", dir, strcmp(dir, "/") == 0 ? "" : "/", name);
}

/* In the work: whether the task was cancelled; the work then stops short, and says so. A
 * cancel that comes after the work is done changes nothing: its result stands. */
bool fileop__stopping(struct fileop *op)
{
    if (atomic_load(&op->cancelled))
        op->stopped = true;
    return op->stopped;
}


void fileop__fail(struct fileop *op, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(op->error, sizeof(op->error), fmt, ap);
    va_end(ap);
    op->success = false;
}

/* The errors every path can give before it names something (RUNNER-OPS.md 3.2). */
bool fileop__path_error(struct fileop *op, int r, const char *p)
{
    if (r == ERR_WS_OUTSIDE)
        fileop__fail(op, "path is outside workspace root: %s", p);
    else if (r == ERR_WS_ESCAPE)
        fileop__fail(op, "path escapes workspace root via symlink: %s", p);
    else if (r == ERR_WS_LOOP)
        fileop__fail(op, "failed to resolve symlinks: EvalSymlinks: too many links");
    else if (r == ERR_NOMEM)
        fileop__fail(op, "out of memory");
    else
        return false;
    return true;
}
/* content through section 4 (prefix names the spill file) into res's fields. */
int fileop__put_content(struct fileop *op, json_t *res, const char *prefix,
                        const uint8_t *content, size_t len, bool truncated)
{
    struct outspill_result spill = {0};
    int r;

    if ((r = outspill_process(op->limits.spill, prefix, content, len, &spill)) != 0)
        return r;
    if (json_object_set_new(res, "content", proto_json_bytes((const uint8_t *)spill.content,
                                                             spill.content_len)) != 0 ||
        ((spill.truncated || truncated) &&
         json_object_set_new(res, "truncated", json_true()) != 0) ||
        (spill.file_path != NULL &&
         json_object_set_new(res, "file_path", json_string(spill.file_path)) != 0) ||
        (spill.total_size > 0 &&
         json_object_set_new(res, "total_size", json_integer(spill.total_size)) != 0))
        r = ERR_NOMEM;
    outspill_result_free(&spill);
    return r;
}

/* ---- the op ---- */

static const struct fileop_kind kinds[] = {
    {"read", &opargs_read, fileop__read_work, fileop__read_result, NULL, NULL, NULL},
    {"write", &opargs_write, fileop__write_work, fileop__write_result, NULL, NULL, NULL},
    {"list", &opargs_list, fileop__list_work, fileop__list_result, NULL, NULL, NULL},
    {"glob", &opargs_glob, fileop__glob_work, fileop__glob_result, NULL, NULL, NULL},
    {"grep", &opargs_grep, fileop__grep_work, fileop__grep_result, fileop__grep_start,
     fileop__grep_cancel, fileop__grep_free},
    {"sync_skill", &opargs_sync_skill, fileop__skill_work, fileop__skill_result, NULL, NULL,
     NULL},
    {"webfetch", &opargs_webfetch, fileop__webfetch_work, fileop__webfetch_result,
     fileop__webfetch_start, fileop__webfetch_cancel, fileop__webfetch_free},
    {"mcp_call", &opargs_mcp_call, fileop__mcp_work, fileop__mcp_result, fileop__mcp_call_start,
     fileop__mcp_cancel, fileop__mcp_free},
    {"mcp_list_tools", &opargs_mcp_list_tools, fileop__mcp_work, fileop__mcp_result,
     fileop__mcp_list_start, fileop__mcp_cancel, fileop__mcp_free},
    /* Not a task's operation but the mcp.call message (RUNNER-OPS.md 9.7): its payload
     * begins with an mcp_call's args, so it runs as one. */
    {"mcp.call", &opargs_mcp_call_payload, fileop__mcp_work, fileop__mcp_result,
     fileop__mcp_call_start, fileop__mcp_cancel, fileop__mcp_free},
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

    if (!op->args_ok || fileop__stopping(op))
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

void fileop__queue(struct fileop *op)
{
    if (uv_queue_work(op->loop, &op->work, on_work, on_after_work) != 0)
        op->done(op, false, NULL, "out of memory", op->data);
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
    op->loop = loop;
    op->limits = *limits;
    op->done = done;
    op->data = data;
    op->work.data = op;
    atomic_init(&op->cancelled, false);
    /* A bad args fails from the work's completion too: one path to done. */
    op->args_ok = opargs_parse(op->kind->spec, args, &op->args, op->error,
                               sizeof(op->error)) == 0;
    /* An op that runs elsewhere first (grep's rg) queues its work when that is over. */
    if (op->args_ok && op->kind->start != NULL && op->kind->start(loop, op) == 1) {
        *out = op;
        return 0;
    }
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
    (void)uv_cancel((uv_req_t *)&op->work); /* only if it is queued and has not started */
    if (op->kind->cancel != NULL)
        op->kind->cancel(op);
}

void fileop_free(struct fileop *op)
{
    if (op == NULL)
        return;
    if (op->kind->release != NULL)
        op->kind->release(op);
    opargs_free(op->kind->spec, &op->args);
    free(op->content);
    for (size_t i = 0; i < op->nentries; i++)
        free(op->entries[i].path);
    free(op->entries);
    free(op);
}
