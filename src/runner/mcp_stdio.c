/*
 * mcp_stdio.c - see mcp_stdio.h.
 *
 * Life of a server: pipes and handles first, then the child (child.c: its own process
 * group, isolation), then messages both ways until one of the ends below, reported once
 * through on_closed:
 *   - the server exits: what it wrote before is still delivered (its pipes are drained, for
 *     at most MCP_STDIO_DRAIN_MS), then "server exited with status N";
 *   - its stdout ends, or its stdin (a write fails with EPIPE), while it runs:
 *     MCP_STDIO_SETTLE_MS for the exit that usually follows (and explains it better),
 *     then "server closed its stdout" or "write to server failed: broken pipe";
 *   - a failure of ours (line too long, write failed, queue full), or the caller's close.
 * After the end the close sequence runs: stdin closed, SIGTERM to the group after the
 * grace, SIGKILL after another (child_terminate), and once the server is reaped the rest
 * of its group is killed, so a background process it left holds nothing open.
 *
 * Ownership: s owns its child, its three pipe handles, its timer and its buffers. It is
 * freed only in a handle's close callback, never from inside another callback of ours, so
 * an on_message or on_closed that calls mcp_stdio_close leaves s valid until we return.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "child.h"
#include "env.h"
#include "err.h"
#include "isolate.h"
#include "log.h"
#include "mcp_stdio.h"
#include "task.h"

#define MCP_STDIO_SETTLE_MS 200   /* a pipe ended while the server runs: how long to wait
                                   * for the exit behind it */
#define MCP_STDIO_DRAIN_MS 1000   /* exited: how long its pipes may stay open (a holder
                                   * outside its group) */
#define MCP_STDIO_READ_CHUNK (64 * 1024)
#define MCP_STDIO_LINE_KEEP (64 * 1024) /* a line buffer grown past this is given back */
#define MCP_STDIO_LOG_LINE_MAX 1024     /* stderr logged per line, at most this much */
#define MCP_STDIO_REASON_MAX 256

struct mcp_stdio_write {
    uv_write_t req;
    struct mcp_stdio *s;
    size_t len;
    char bytes[]; /* the message and its "\n" */
};

struct mcp_stdio {
    uv_loop_t *loop;
    struct mcp_stdio_events ev;
    void *data;
    struct child *child;      /* until reaped */
    pid_t pid;
    char pidtext[16];         /* for the log */
    char *label;              /* for the log; may be NULL */
    char *file, *cwd;         /* for an exec or chdir error's text */
    uv_pipe_t in, out, err;   /* the server's stdin, stdout, stderr (our ends) */
    uv_timer_t timer;         /* one at a time: settle, grace, drain */
    bool in_open, out_open, err_open, timer_open;
    int handles_open;
    bool stopping;            /* the close sequence has begun */
    bool reported;            /* on_closed ran */
    bool released;            /* mcp_stdio_close ran */
    bool exited;
    const char *settle_reason; /* a pipe's end while it runs, until the settle timer */
    int status, exec_err;
    enum child_stage failed_at;
    size_t max_message;
    uint64_t kill_grace_ms;
    struct buf *line;         /* the stdout line being received */
    size_t queued;            /* bytes on stdin's queue */
    char *ring;               /* the last stderr bytes: ring_len of them, ending at ring_pos */
    size_t ring_cap, ring_len, ring_pos;
    uint64_t stderr_total;    /* stderr bytes ever read */
    char *tail;               /* mcp_stdio_stderr_tail's answer (ring_cap + 1 bytes) */
    char logline[MCP_STDIO_LOG_LINE_MAX];
    size_t logline_len;
    bool logline_cut;
    char readbuf[MCP_STDIO_READ_CHUNK];
};

static void stdio__stop(struct mcp_stdio *s);

/* ---- freeing ---- */

static void stdio__free(struct mcp_stdio *s)
{
    buf_free(s->line);
    free(s->ring);
    free(s->tail);
    free(s->label);
    free(s->file);
    free(s->cwd);
    free(s);
}

static void stdio_handle_close_cb(uv_handle_t *h)
{
    struct mcp_stdio *s = h->data;

    if (--s->handles_open == 0)
        stdio__free(s);
}

static void stdio__close_handle(struct mcp_stdio *s, uv_handle_t *h, bool *open)
{
    if (!*open)
        return;
    *open = false;
    h->data = s;
    uv_close(h, stdio_handle_close_cb);
}

/* The last step: once the caller let go and nothing is left to wait for, the timer goes
 * too, and its close callback (or a pipe's, still closing) frees s. */
static void stdio__maybe_free(struct mcp_stdio *s)
{
    if (!s->released || s->child != NULL || s->out_open || s->err_open)
        return;
    stdio__close_handle(s, (uv_handle_t *)&s->in, &s->in_open);
    uv_timer_stop(&s->timer);
    stdio__close_handle(s, (uv_handle_t *)&s->timer, &s->timer_open);
}

/* ---- the end ---- */

static void stdio__report(struct mcp_stdio *s, const char *reason)
{
    if (s->reported)
        return;
    s->reported = true;
    log_kv(LOG_LEVEL_DEBUG, (const char *const[]){"mcp_server", s->label, "pid", s->pidtext, NULL},
           "mcp stdio transport closed: %s", reason);
    s->ev.on_closed(s, reason, s->data);
}

/* A failure of the transport: reported, then the close sequence. */
static void __attribute__((format(printf, 2, 3))) stdio__fail(struct mcp_stdio *s,
                                                             const char *fmt, ...)
{
    char reason[MCP_STDIO_REASON_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    stdio__report(s, reason);
    stdio__stop(s);
}

/* Go's text for an errno ("no such file or directory"): strerror's, in lower case. */
static void stdio__errno_text(int err, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s", strerror(err));
    if (out[0] >= 'A' && out[0] <= 'Z')
        out[0] = (char)(out[0] - 'A' + 'a');
}

/* Reports the exit (or the failed start), once the pipes said all they had. */
static void stdio__report_exit(struct mcp_stdio *s)
{
    char why[128];

    if (s->exec_err == 0) {
        stdio__fail(s, "server exited with status %d", s->status);
        return;
    }
    stdio__errno_text(-s->exec_err, why, sizeof(why));
    if (s->failed_at == CHILD_STAGE_ISOLATION)
        stdio__fail(s, "cannot isolate the server: %s", why);
    else if (s->failed_at == CHILD_STAGE_SETUP && s->cwd != NULL)
        stdio__fail(s, "chdir %.200s: %s", s->cwd, why); /* what Go's exec says */
    else if (s->failed_at == CHILD_STAGE_SETUP)
        stdio__fail(s, "cannot start the server: %s", why);
    else
        stdio__fail(s, "fork/exec %.200s: %s", s->file, why);
}

/* A pipe reached its end: when the server is gone too, that is the end. */
static void stdio__after_pipe_end(struct mcp_stdio *s)
{
    if (s->exited && !s->out_open && !s->err_open) {
        uv_timer_stop(&s->timer);
        stdio__report_exit(s);
    }
    stdio__maybe_free(s);
}

static void on_grace(uv_timer_t *t)
{
    struct mcp_stdio *s = t->data;

    /* SIGTERM to the group now, SIGKILL after kill_grace_ms more (child.c). */
    if (s->child != NULL)
        child_terminate(s->child);
}

/* The close sequence (idempotent): stdin closed, so a well-behaved server exits; the
 * grace timer for one that does not. */
static void stdio__stop(struct mcp_stdio *s)
{
    if (s->stopping)
        return;
    s->stopping = true;
    stdio__close_handle(s, (uv_handle_t *)&s->in, &s->in_open);
    if (s->child != NULL)
        uv_timer_start(&s->timer, on_grace, s->kill_grace_ms, 0);
}

static void on_drain_deadline(uv_timer_t *t)
{
    struct mcp_stdio *s = t->data;

    /* A process outside the server's group holds its pipes: stop waiting for it. */
    stdio__close_handle(s, (uv_handle_t *)&s->out, &s->out_open);
    stdio__close_handle(s, (uv_handle_t *)&s->err, &s->err_open);
    stdio__after_pipe_end(s);
}

static void on_settle(uv_timer_t *t)
{
    struct mcp_stdio *s = t->data;

    stdio__fail(s, "%s", s->settle_reason);
}

/* The server's end of a pipe is gone while it runs. Usually its exit follows at once, and
 * says more (on_child_exit stops the timer); if not, reason, after MCP_STDIO_SETTLE_MS.
 * Once the server exited, its exit is the reason anyway. */
static void stdio__settle(struct mcp_stdio *s, const char *reason)
{
    if (s->exited || s->stopping || s->settle_reason != NULL)
        return;
    s->settle_reason = reason;
    uv_timer_start(&s->timer, on_settle, MCP_STDIO_SETTLE_MS, 0);
}

static void on_child_exit(struct child *c, int status, int exec_err, bool timed_out, void *data)
{
    struct mcp_stdio *s = data;

    s->exited = true;
    s->status = status;
    s->exec_err = exec_err;
    if (exec_err != 0)
        s->failed_at = child_failed_at(c);
    child_free(c);
    s->child = NULL;
    /* What is left of its group (a background process it started) goes with it: nothing
     * of the server outlives the transport. The group's id cannot have been reused yet
     * while any member lives; with none left this finds nothing. */
    kill(-s->pid, SIGKILL);
    uv_timer_stop(&s->timer);
    if (s->out_open || s->err_open) {
        uv_timer_start(&s->timer, on_drain_deadline, MCP_STDIO_DRAIN_MS, 0);
        return;
    }
    stdio__after_pipe_end(s);
}

/* ---- stdout: lines ---- */

/* One line without its "\n". Returns false when the transport failed. */
static bool stdio__deliver(struct mcp_stdio *s, const char *line, size_t len)
{
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len > s->max_message) {
        stdio__fail(s, "message too large (over %zu bytes)", s->max_message);
        return false;
    }
    if (len > 0)
        s->ev.on_message(s, line, len, s->data);
    return !s->reported;
}

/* Appends to the line being received. Returns false when the transport failed. */
static bool stdio__hold(struct mcp_stdio *s, const char *p, size_t len)
{
    int r = buf_put(s->line, p, len);

    if (r == ERR_TOO_LARGE)
        stdio__fail(s, "message too large (over %zu bytes)", s->max_message);
    else if (r != 0)
        stdio__fail(s, "out of memory for a message");
    return r == 0;
}

/* Ends the held line: delivered, and its memory given back if it grew large. */
static bool stdio__deliver_held(struct mcp_stdio *s)
{
    bool ok = stdio__deliver(s, (const char *)buf_ptr(s->line), buf_len(s->line));
    struct buf *fresh;

    if (buf_len(s->line) > MCP_STDIO_LINE_KEEP &&
        (fresh = buf_new(buf_max(s->line), 0)) != NULL) {
        buf_free(s->line);
        s->line = fresh;
    } else {
        buf_reset(s->line);
    }
    return ok;
}

/* Splits a chunk into lines: a whole line inside the chunk is delivered from it, with no
 * copy; only a line that spans reads is held (at most max_message + 1 bytes, the "\r"). */
static void stdio__split(struct mcp_stdio *s, const char *p, size_t n)
{
    const char *end = p + n;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);

        if (nl != NULL && buf_len(s->line) == 0) {
            if (!stdio__deliver(s, p, len))
                return;
        } else if (!stdio__hold(s, p, len) || (nl != NULL && !stdio__deliver_held(s))) {
            return;
        }
        if (nl == NULL)
            return;
        p = nl + 1;
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct mcp_stdio *s = h->data;

    /* Used up before the next read: one buffer serves both pipes. */
    b->base = s->readbuf;
    b->len = sizeof(s->readbuf);
}

static void stdio__out_ended(struct mcp_stdio *s)
{
    stdio__settle(s, "server closed its stdout");
    stdio__after_pipe_end(s);
}

static void on_stdout(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct mcp_stdio *s = st->data;

    if (n < 0) {
        stdio__close_handle(s, (uv_handle_t *)&s->out, &s->out_open);
        stdio__out_ended(s);
        return;
    }
    /* After the end the server's output is read and dropped, so it never blocks on a
     * full pipe while it exits. */
    if (n > 0 && !s->reported)
        stdio__split(s, b->base, (size_t)n);
}

/* ---- stderr: kept and logged ---- */

static void stdio__ring_put(struct mcp_stdio *s, const char *p, size_t n)
{
    s->stderr_total += n;
    if (n >= s->ring_cap) {
        memcpy(s->ring, p + n - s->ring_cap, s->ring_cap);
        s->ring_pos = 0;
        s->ring_len = s->ring_cap;
        return;
    }
    size_t first = s->ring_cap - s->ring_pos < n ? s->ring_cap - s->ring_pos : n;

    memcpy(s->ring + s->ring_pos, p, first);
    memcpy(s->ring, p + first, n - first);
    s->ring_pos = (s->ring_pos + n) % s->ring_cap;
    s->ring_len = s->ring_len + n < s->ring_cap ? s->ring_len + n : s->ring_cap;
}

static void stdio__log_line(struct mcp_stdio *s)
{
    log_kv(LOG_LEVEL_DEBUG, (const char *const[]){"mcp_server", s->label, "pid", s->pidtext, NULL},
           "mcp server stderr: %.*s%s", (int)s->logline_len, s->logline,
           s->logline_cut ? " [...]" : "");
    s->logline_len = 0;
    s->logline_cut = false;
}

/* Logs stderr line by line at debug level, each line cut at MCP_STDIO_LOG_LINE_MAX. */
static void stdio__log_stderr(struct mcp_stdio *s, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n')
            stdio__log_line(s);
        else if (s->logline_len < sizeof(s->logline))
            s->logline[s->logline_len++] = p[i];
        else
            s->logline_cut = true;
    }
}

static void on_stderr(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct mcp_stdio *s = st->data;

    if (n < 0) {
        if (s->logline_len > 0 && log_enabled(LOG_LEVEL_DEBUG))
            stdio__log_line(s);
        stdio__close_handle(s, (uv_handle_t *)&s->err, &s->err_open);
        stdio__after_pipe_end(s);
        return;
    }
    stdio__ring_put(s, b->base, (size_t)n);
    if (log_enabled(LOG_LEVEL_DEBUG))
        stdio__log_stderr(s, b->base, (size_t)n);
}

const char *mcp_stdio_stderr_tail(const struct mcp_stdio *s, size_t n)
{
    size_t k = n < s->ring_len ? n : s->ring_len;
    size_t start = (s->ring_pos + s->ring_cap - k) % s->ring_cap, skip = 0;
    /* The region starts a line when it is stderr's very start or follows a "\n" kept. */
    bool at_line = s->stderr_total == k ||
                   (k < s->ring_len && s->ring[(start + s->ring_cap - 1) % s->ring_cap] == '\n');

    for (size_t i = 0; i < k; i++)
        s->tail[i] = s->ring[(start + i) % s->ring_cap];
    while (k > 0 && (s->tail[k - 1] == '\n' || s->tail[k - 1] == '\r'))
        k--;
    if (!at_line) {
        const char *nl = memchr(s->tail, '\n', k);

        if (nl != NULL)
            skip = (size_t)(nl - s->tail) + 1;
    }
    for (size_t i = skip; i < k; i++) {
        if (s->tail[i] == '\0')
            s->tail[i] = '?';
    }
    s->tail[k] = '\0';
    return s->tail + skip;
}

/* ---- stdin ---- */

static void on_written(uv_write_t *req, int status)
{
    struct mcp_stdio_write *w = (struct mcp_stdio_write *)req;
    struct mcp_stdio *s = w->s;

    s->queued -= w->len;
    free(w);
    /* Cancelled: our own close of stdin. */
    if (status == UV_EPIPE)
        stdio__settle(s, "write to server failed: broken pipe");
    else if (status < 0 && status != UV_ECANCELED)
        stdio__fail(s, "write to server failed: %s", uv_strerror(status));
}

int mcp_stdio_send(struct mcp_stdio *s, const char *msg, size_t len)
{
    struct mcp_stdio_write *w;
    uv_buf_t b;
    int r;

    if (s->reported || s->stopping)
        return ERR_CLOSED;
    if (memchr(msg, '\n', len) != NULL)
        return ERR_INVALID;
    if (len >= MCP_STDIO_SEND_QUEUE_MAX || s->queued > MCP_STDIO_SEND_QUEUE_MAX - len - 1) {
        stdio__fail(s, "send queue full (over %zu bytes): the server is not reading its stdin",
                    MCP_STDIO_SEND_QUEUE_MAX);
        return ERR_LIMIT;
    }
    if ((w = malloc(sizeof(*w) + len + 1)) == NULL)
        return ERR_NOMEM;
    w->s = s;
    w->len = len + 1;
    memcpy(w->bytes, msg, len);
    w->bytes[len] = '\n';
    b = uv_buf_init(w->bytes, (unsigned int)w->len);
    if ((r = uv_write(&w->req, (uv_stream_t *)&s->in, &b, 1, on_written)) != 0) {
        free(w);
        stdio__fail(s, "write to server failed: %s", uv_strerror(r));
        return r;
    }
    s->queued += w->len;
    return 0;
}

/* ---- the start ---- */

/* A copy of base_env plus the config's env, last wins (RUNNER-OPS.md 9.1). NULL: no memory. */
static struct env *stdio__env(const struct mcp_stdio_options *o)
{
    struct env *e = env_new(o->base_env != NULL ? env_array(o->base_env) : NULL);

    for (size_t i = 0; e != NULL && i < o->nenv; i++) {
        const char *name = o->env_names[i], *value = o->env_values[i];

        /* Dropped silently, as Go drops them: no name, or one exec would split. */
        if (name == NULL || value == NULL || name[0] == '\0' || strchr(name, '=') != NULL)
            continue;
        if (env_set(e, name, value) != 0) {
            env_free(e);
            e = NULL;
        }
    }
    return e;
}

/* The struct, its buffers and its handles (not yet opened). NULL: no memory. */
static struct mcp_stdio *stdio__new(uv_loop_t *loop, const struct mcp_stdio_options *o)
{
    struct mcp_stdio *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->loop = loop;
    s->max_message = o->max_message_bytes ? o->max_message_bytes : MCP_STDIO_MAX_MESSAGE_DEFAULT;
    s->ring_cap = o->stderr_keep_bytes ? o->stderr_keep_bytes : MCP_STDIO_STDERR_KEEP_DEFAULT;
    s->kill_grace_ms = o->kill_grace_ms ? o->kill_grace_ms : MCP_STDIO_KILL_GRACE_DEFAULT;
    /* A "\r" may end a line of max_message bytes: room for it (stdio__deliver). */
    s->line = buf_new(s->max_message + 1, 0);
    s->ring = malloc(s->ring_cap);
    s->tail = malloc(s->ring_cap + 1);
    s->label = o->label != NULL ? strdup(o->label) : NULL;
    s->cwd = o->cwd != NULL ? strdup(o->cwd) : NULL;
    if (s->line == NULL || s->ring == NULL || s->tail == NULL ||
        (o->label != NULL && s->label == NULL) || (o->cwd != NULL && s->cwd == NULL) ||
        uv_timer_init(loop, &s->timer) != 0) {
        stdio__free(s);
        return NULL;
    }
    s->timer.data = s;
    s->timer_open = true;
    s->handles_open = 1;
    /* uv_pipe_init cannot fail on Unix (it only fills the struct). */
    uv_pipe_init(loop, &s->in, 0);
    uv_pipe_init(loop, &s->out, 0);
    uv_pipe_init(loop, &s->err, 0);
    s->in.data = s->out.data = s->err.data = s;
    s->in_open = s->out_open = s->err_open = true;
    s->handles_open += 3;
    return s;
}

/* A start that failed: nothing is reported, the handles close and their callbacks free s. */
static void stdio__abort(struct mcp_stdio *s)
{
    s->reported = s->released = s->stopping = true;
    stdio__close_handle(s, (uv_handle_t *)&s->in, &s->in_open);
    stdio__close_handle(s, (uv_handle_t *)&s->out, &s->out_open);
    stdio__close_handle(s, (uv_handle_t *)&s->err, &s->err_open);
    stdio__close_handle(s, (uv_handle_t *)&s->timer, &s->timer_open);
}

/* Our ends of the three pipes into the handles, reading started. On failure the fds not
 * yet given to a handle are closed by the caller (they stay in ours[]). */
static int stdio__open_pipes(struct mcp_stdio *s, int ours[3])
{
    int r;

    if ((r = uv_pipe_open(&s->in, ours[0])) != 0)
        return r;
    ours[0] = -1; /* transferred: closed with the handle */
    if ((r = uv_pipe_open(&s->out, ours[1])) != 0)
        return r;
    ours[1] = -1;
    if ((r = uv_pipe_open(&s->err, ours[2])) != 0)
        return r;
    ours[2] = -1;
    if ((r = uv_read_start((uv_stream_t *)&s->out, on_alloc, on_stdout)) != 0 ||
        (r = uv_read_start((uv_stream_t *)&s->err, on_alloc, on_stderr)) != 0)
        return r;
    return 0;
}

/* The pipes and the child. Returns 0, or a negative code with the reason in err. */
static int stdio__spawn(struct mcp_stdio *s, const struct mcp_stdio_options *o,
                        char *err, size_t errlen)
{
    struct env *env = NULL;
    struct isolate_plan plan = {.sync_to_parent = {-1, -1}, .sync_to_child = {-1, -1}};
    int inp[2] = {-1, -1}, outp[2] = {-1, -1}, errp[2] = {-1, -1}, ours[3] = {-1, -1, -1}, r;
    struct child_options co;

    if ((env = stdio__env(o)) == NULL) {
        r = ERR_NOMEM;
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (o->secrets != NULL &&
        (r = task_plan_isolation(o->secrets, o->cwd,
                                 (const char *const[]){"mcp_server", s->label, NULL}, &plan,
                                 err, errlen)) != 0)
        goto out;
    if (pipe2(inp, O_CLOEXEC) != 0 || pipe2(outp, O_CLOEXEC) != 0 ||
        pipe2(errp, O_CLOEXEC) != 0) {
        r = -errno;
        snprintf(err, errlen, "cannot create pipes: %s", strerror(errno));
        goto out;
    }
    ours[0] = inp[1];
    ours[1] = outp[0];
    ours[2] = errp[0];
    inp[1] = outp[0] = errp[0] = -1;
    /* Reading starts before the fork: a failure then leaves no child to stop. */
    if ((r = stdio__open_pipes(s, ours)) != 0) {
        snprintf(err, errlen, "cannot watch the server's pipes: %s", uv_strerror(r));
        goto out;
    }
    memset(&co, 0, sizeof(co));
    co.argv = o->argv;
    co.file = s->file;
    co.envp = env_array(env);
    co.cwd = o->cwd;
    co.ctl_fd = -1;
    co.stdio[0] = inp[0];
    co.stdio[1] = outp[1];
    co.stdio[2] = errp[1];
    co.isolate = o->secrets != NULL ? &plan : NULL;
    co.kill_grace_ms = s->kill_grace_ms;
    co.on_exit = on_child_exit;
    co.data = s;
    if ((r = child_spawn(s->loop, &co, &s->child)) != 0) {
        snprintf(err, errlen, "cannot start the server: %s", err_str(r));
        goto out;
    }
    s->pid = child_pid(s->child);
    snprintf(s->pidtext, sizeof(s->pidtext), "%d", (int)s->pid);
out:
    for (int i = 0; i < 3; i++) {
        if (ours[i] >= 0)
            close(ours[i]);
    }
    /* The child's ends: it has them now, or never will. */
    for (int i = 0; i < 2; i++) {
        if (inp[i] >= 0)
            close(inp[i]);
        if (outp[i] >= 0)
            close(outp[i]);
        if (errp[i] >= 0)
            close(errp[i]);
    }
    env_free(env);
    isolate_plan_free(&plan);
    return r;
}

int mcp_stdio_start(uv_loop_t *loop, const struct mcp_stdio_options *o,
                    const struct mcp_stdio_events *ev, void *data, struct mcp_stdio **out,
                    char *err, size_t errlen)
{
    char *const empty[] = {NULL};
    struct mcp_stdio *s;
    char *file;
    int r;

    /* Programmer errors, not a server's. */
    assert(ev != NULL && ev->on_message != NULL && ev->on_closed != NULL);
    assert(o->nenv == 0 || (o->env_names != NULL && o->env_values != NULL));
    *out = NULL;
    err[0] = '\0';
    if (o->argv == NULL || o->argv[0] == NULL || o->argv[0][0] == '\0') {
        snprintf(err, errlen, "exec: no command");
        return ERR_INVALID;
    }
    /* On the runner's PATH, as Go's exec.Command looks it up, before the config's env. */
    if ((file = child_resolve_command(o->argv[0],
                                      o->base_env != NULL ? env_array(o->base_env) : empty)) ==
        NULL) {
        snprintf(err, errlen, "exec: \"%.200s\": executable file not found in $PATH",
                 o->argv[0]);
        return -ENOENT;
    }
    if ((s = stdio__new(loop, o)) == NULL) {
        free(file);
        snprintf(err, errlen, "out of memory");
        return ERR_NOMEM;
    }
    s->file = file;
    s->ev = *ev;
    s->data = data;
    if ((r = stdio__spawn(s, o, err, errlen)) != 0) {
        stdio__abort(s);
        return r;
    }
    log_kv(LOG_LEVEL_INFO, (const char *const[]){"mcp_server", s->label, "pid", s->pidtext, NULL},
           "mcp stdio server started%s", o->secrets != NULL ? " (isolated)" : "");
    *out = s;
    return 0;
}

void mcp_stdio_close(struct mcp_stdio *s)
{
    if (s == NULL)
        return;
    s->released = true;
    stdio__report(s, "closed");
    stdio__stop(s);
    stdio__maybe_free(s);
}

pid_t mcp_stdio_pid(const struct mcp_stdio *s)
{
    return s->pid;
}
