/*
 * fileop_grep.c - the grep operation (RUNNER-OPS.md 5.5): one behaviour, two engines.
 *
 * With rg on PATH, rg runs as a child of the loop: `rg --json ... -e PATTERN .` in the
 * root, so a pattern is never an option (`--pre=CMD` is searched for, not run) and a path
 * holding ':' comes back whole. Its match events are read on the loop as they come. Without
 * rg, the built-in engine (grep_builtin.h) walks the workspace on the pool. Both hand each
 * matching line to grep_add, which keeps the match cap and the message ceiling (2.7); the
 * pool then builds the content, spills it when large (section 4) and builds the result, so
 * the loop only starts the search and sends the answer.
 *
 * Grep never fails (Go's rule): an invalid pattern or an engine that cannot run gives an
 * empty success. A cancel is the exception: it kills rg or stops the walk, and the task
 * ends with "context canceled".
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fileop_internal.h"
#include "grep_builtin.h"
#include "grep_rgjson.h"
#include "log.h"
#include "outspill.h"
#include "proto.h"
#include "wspath.h"

/* What a match's object adds to the result besides its two strings:
 * {"path":,"line_number":18446744073709551615,"content":}, */
#define GREP_MATCH_OVERHEAD 56
/* The inline content once spilled: the template around an 8000-byte preview, each preview
 * byte escaped at worst (proto_json_string_bound), and the file's name. */
#define GREP_SPILLED_CONTENT_BOUND (6 * 8000 + 1024)
/* How much of rg's match events the loop keeps before it stops rg: GREP_RG_EVENTS_RATIO
 * times what the result may hold, plus GREP_RG_EVENT_OVERHEAD per event. An event holds
 * the path and the line (escaped no worse than in our result) and each submatch's text
 * with its offsets, so ordinary events fit many times over; a line with thousands of
 * submatches (one letter in a minified file) takes more, and may end the search early,
 * truncated, rather than hold the runner's memory. */
#define GREP_RG_EVENTS_RATIO 4
#define GREP_RG_EVENT_OVERHEAD 256
#define GREP_RG_EVENT_PREFIX "{\"type\":\"match\""

struct grep_hit {
    char *path;   /* "./dir/name", raw bytes */
    size_t path_len;
    uint64_t line_number;
    char *line;   /* without its "\n", raw bytes */
    size_t line_len;
};

/* The rg child while it runs: on the loop only. The loop does no more than split rg's
 * output into lines and keep the match events, counting them for the cap; they are parsed
 * on the pool (rg_parse), so a search that finds much never holds the loop. */
struct grep_rg {
    struct fileop *op;
    uv_process_t process;
    uv_pipe_t out;
    bool in_match;          /* the line being read is a match event (kept) */
    bool line_start;        /* the next byte starts a line */
    size_t nmatches;
    bool exited, eof, killed;
    int open_handles;
};

/* ---- matches: the cap and the ceiling ---- */

static size_t digits_of(uint64_t n)
{
    size_t d = 1;

    while (n >= 10) {
        n /= 10;
        d++;
    }
    return d;
}

/* Keeps one matching line, unless the cap or the message ceiling says stop: then the
 * result is truncated and the engine is told to stop. */
static bool grep_add(struct fileop *op, const char *path, size_t path_len, uint64_t line_number,
                     const char *line, size_t line_len)
{
    struct fileop_grep *g = &op->grep;
    size_t strings, content_line, escaped_content, total;
    struct grep_hit *h;

    if (g->nhits == op->limits.grep_max_matches) {
        op->truncated = true;
        return false;
    }
    strings = proto_json_string_bound((const uint8_t *)path, path_len) +
              proto_json_string_bound((const uint8_t *)line, line_len);
    content_line = path_len + 1 + digits_of(line_number) + 1 + line_len + 1;
    /* The content appears twice while it is inline; once over the spill threshold it is
     * the bounded template instead. */
    escaped_content = g->content_len + content_line <= OUTSPILL_MAX_INLINE
                          ? g->escaped_content + strings + 24
                          : GREP_SPILLED_CONTENT_BOUND;
    total = g->escaped_matches + strings + GREP_MATCH_OVERHEAD + escaped_content;
    if (total > op->limits.max_result_bytes) {
        op->truncated = true;
        return false;
    }
    if (g->nhits == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;

        if ((h = reallocarray(g->hits, cap, sizeof(*h))) == NULL)
            goto nomem;
        g->hits = h;
        g->cap = cap;
    }
    h = &g->hits[g->nhits];
    if ((h->path = malloc(path_len + 1)) == NULL)
        goto nomem;
    if ((h->line = malloc(line_len + 1)) == NULL) {
        free(h->path);
        goto nomem;
    }
    memcpy(h->path, path, path_len);
    h->path[path_len] = '\0';
    memcpy(h->line, line, line_len);
    h->line[line_len] = '\0';
    h->path_len = path_len;
    h->line_len = line_len;
    h->line_number = line_number;
    g->nhits++;
    g->escaped_matches += strings + GREP_MATCH_OVERHEAD;
    g->escaped_content += strings + 24;
    g->content_len += content_line;
    return true;
nomem:
    fileop__fail(op, "out of memory");
    g->failed = true;
    return false;
}

static bool on_builtin_match(const struct grep_match *m, void *data)
{
    return grep_add(data, m->path, m->path_len, m->line_number, m->line, m->line_len);
}

/* ---- the result, built on the pool ---- */

/* The content Go builds, "{path}:{line_number}:{content}\n" per match, through section 4
 * into res. */
static int grep_content(struct fileop *op, json_t *res)
{
    struct fileop_grep *g = &op->grep;
    char *text = malloc(g->content_len + 1), *p = text, *end = text + g->content_len + 1;
    int r;

    if (text == NULL)
        return ERR_NOMEM;
    for (size_t i = 0; i < g->nhits; i++) {
        const struct grep_hit *h = &g->hits[i];

        memcpy(p, h->path, h->path_len);
        p += h->path_len;
        p += snprintf(p, (size_t)(end - p), ":%" PRIu64 ":", h->line_number);
        memcpy(p, h->line, h->line_len);
        p += h->line_len;
        *p++ = '\n';
    }
    r = fileop__put_content(op, res, "grep", (const uint8_t *)text, (size_t)(p - text),
                            op->truncated);
    free(text);
    return r;
}

static json_t *sanitized(const char *s, size_t len)
{
    return proto_json_bytes((const uint8_t *)s, len);
}

static int grep_build(struct fileop *op)
{
    struct fileop_grep *g = &op->grep;
    json_t *res = json_object(), *matches = json_array();
    int r = ERR_NOMEM;

    if (res == NULL || matches == NULL || json_object_set_new(res, "matches", matches) != 0) {
        json_decref(matches);
        goto out;
    }
    for (size_t i = 0; i < g->nhits; i++) {
        const struct grep_hit *h = &g->hits[i];
        json_t *m = json_object();

        if (m == NULL || json_array_append_new(matches, m) != 0 ||
            json_object_set_new(m, "path", sanitized(h->path, h->path_len)) != 0 ||
            json_object_set_new(m, "line_number", json_integer((json_int_t)h->line_number)) != 0 ||
            json_object_set_new(m, "content", sanitized(h->line, h->line_len)) != 0)
            goto out;
    }
    if ((r = grep_content(op, res)) != 0)
        goto out;
    g->result = res;
    res = NULL;
    r = 0;
out:
    json_decref(res);
    return r;
}

/* ---- the rg engine, on the loop ---- */

/* One of the kept match events, through the cap and the ceiling; false to stop. */
static bool rg_event(struct fileop *op, const char *line, size_t len)
{
    struct grep_rgjson_match m;
    bool go_on = true;
    int r = grep_rgjson_match(line, len, &m);

    if (r == ERR_NOMEM) {
        fileop__fail(op, "out of memory");
        op->grep.failed = true;
        return false;
    }
    if (r == 1)
        go_on = grep_add(op, (const char *)m.path, m.path_len, m.line_number,
                         (const char *)m.line, m.line_len);
    grep_rgjson_match_free(&m);
    return go_on;
}

static void rg_kill(struct grep_rg *rg, const char *why)
{
    if (!rg->exited && !rg->killed) {
        rg->killed = true;
        (void)uv_process_kill(&rg->process, SIGKILL);
        log_info("grep: rg stopped (%s)", why);
    }
}

static void rg_close_cb(uv_handle_t *h)
{
    struct grep_rg *rg = h->data;
    struct fileop *op = rg->op;

    if (--rg->open_handles > 0)
        return;
    free(rg);
    if (op == NULL)
        return; /* it never ran: the built-in engine searched instead */
    op->grep.rg = NULL;
    op->grep.engine_done = true;
    /* The rest (content, spill, result) is pool work; a cancel stops it there. */
    fileop__queue(op);
}

/* rg has exited and its output is drained (or no longer wanted): close both handles. */
static void rg_maybe_done(struct grep_rg *rg)
{
    if (!rg->exited || !rg->eof)
        return;
    uv_close((uv_handle_t *)&rg->out, rg_close_cb);
    uv_close((uv_handle_t *)&rg->process, rg_close_cb);
}

static void rg_on_exit(uv_process_t *p, int64_t status, int signum)
{
    struct grep_rg *rg = p->data;

    rg->exited = true; /* its status means nothing to grep (Go ignores it too) */
    rg_maybe_done(rg);
}

static void rg_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char chunk[64 * 1024]; /* the loop's only thread reads here, line by line */

    buf->base = chunk;
    buf->len = sizeof(chunk);
}

/* Keeps len bytes of a match event; false when the result is full (or no memory). */
static bool rg_keep(struct grep_rg *rg, const char *data, size_t len)
{
    struct fileop *op = rg->op;
    struct fileop_grep *g = &op->grep;
    size_t room = GREP_RG_EVENTS_RATIO * op->limits.max_result_bytes +
                  GREP_RG_EVENT_OVERHEAD * rg->nmatches;

    if (g->rg_events_len + len > room) {
        op->truncated = true;
        return false;
    }
    if (g->rg_events_len + len > g->rg_events_cap) {
        size_t cap = g->rg_events_cap ? g->rg_events_cap : 64 * 1024;
        char *p;

        while (cap < g->rg_events_len + len)
            cap *= 2;
        if ((p = realloc(g->rg_events, cap)) == NULL) {
            fileop__fail(op, "out of memory");
            g->failed = true;
            return false;
        }
        g->rg_events = p;
        g->rg_events_cap = cap;
    }
    memcpy(g->rg_events + g->rg_events_len, data, len);
    g->rg_events_len += len;
    return true;
}

/* Splits rg's output into its JSON lines: a match event is kept whole, with its "\n";
 * every other event (begin, end, context, summary) is skipped. rg writes each event on
 * one line starting with its type, so the prefix tells them apart. */
static bool rg_feed(struct grep_rg *rg, const char *data, size_t len)
{
    static const char prefix[] = GREP_RG_EVENT_PREFIX;

    while (len > 0) {
        const char *nl;
        size_t part;

        if (rg->line_start) {
            rg->line_start = false;
            /* rg writes the prefix in one go; a read boundary inside it only loses the
             * event to the check, never keeps a wrong one. */
            rg->in_match = len >= sizeof(prefix) - 1 &&
                           memcmp(data, prefix, sizeof(prefix) - 1) == 0;
            if (rg->in_match && ++rg->nmatches > rg->op->limits.grep_max_matches) {
                rg->op->truncated = true;
                return false;
            }
        }
        nl = memchr(data, '\n', len);
        part = nl != NULL ? (size_t)(nl - data) + 1 : len;
        if (rg->in_match && !rg_keep(rg, data, part))
            return false;
        if (nl != NULL)
            rg->line_start = true;
        data += part;
        len -= part;
    }
    return true;
}

static void rg_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct grep_rg *rg = s->data;

    if (n == 0)
        return;
    if (n > 0 && !rg->killed && rg_feed(rg, buf->base, (size_t)n))
        return;
    /* The end of its output, a read error, the cap, or a cancel: no more is read. */
    uv_read_stop(s);
    rg->eof = true;
    rg_kill(rg, n > 0 ? "enough found" : "its output ended");
    rg_maybe_done(rg);
}

/* On the pool: the kept match events, in order, through the cap and the ceiling. */
static void rg_parse(struct fileop *op)
{
    struct fileop_grep *g = &op->grep;
    const char *p = g->rg_events, *end = p + g->rg_events_len;

    while (p < end && !fileop__stopping(op)) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);

        if (!rg_event(op, p, len))
            break;
        p += len + 1;
    }
    free(g->rg_events);
    g->rg_events = NULL;
    g->rg_events_len = g->rg_events_cap = 0;
}

/*
 * Starts rg for op. Returns 0 when it runs (its end queues the pool work), UV_ENOENT when
 * there is no rg on PATH (the built-in engine is used), or another UV error.
 */
static int rg_start(uv_loop_t *loop, struct fileop *op)
{
    const struct grep_args *a = &op->args.grep;
    struct grep_rg *rg;
    char **argv, *env[2] = {NULL, NULL}, *path_env = NULL, **globs = NULL;
    const char *path = getenv("PATH");
    uv_stdio_container_t stdio[3];
    uv_process_options_t o;
    size_t n = 0;
    int r = UV_ENOMEM;

    if ((rg = calloc(1, sizeof(*rg))) == NULL ||
        (argv = calloc(12 + a->include.n, sizeof(char *))) == NULL) {
        free(rg);
        return UV_ENOMEM;
    }
    if ((globs = calloc(a->include.n + 1, sizeof(char *))) == NULL)
        goto out;
    argv[n++] = "rg";
    argv[n++] = "--json";
    argv[n++] = "--no-config";         /* no RIPGREP_CONFIG_PATH of the runner's user */
    argv[n++] = "--sort=path";         /* deterministic, as the built-in engine */
    argv[n++] = "--smart-case";
    argv[n++] = "--no-ignore-parent";  /* ignore files above the root do not count */
    argv[n++] = "--no-ignore-global";
    argv[n++] = "--no-ignore-exclude";
    for (size_t i = 0; i < a->include.n; i++) {
        /* One argv element, so the glob can never become an option of its own. */
        if (asprintf(&globs[i], "--glob=%s", a->include.v[i]) < 0) {
            globs[i] = NULL;
            goto out;
        }
        argv[n++] = globs[i];
    }
    argv[n++] = "-e"; /* the next element is the pattern, whatever it starts with */
    argv[n++] = a->pattern != NULL ? a->pattern : "";
    argv[n++] = ".";
    argv[n] = NULL;
    /* Nothing of the runner's environment but the search path: no secret reaches rg. */
    if (asprintf(&path_env, "PATH=%s", path != NULL ? path : "/usr/bin:/bin") < 0) {
        path_env = NULL;
        goto out;
    }
    env[0] = path_env;

    rg->op = op;
    rg->line_start = true;
    uv_pipe_init(loop, &rg->out, 0);
    rg->out.data = rg;
    rg->process.data = rg;
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&rg->out;
    stdio[2].flags = UV_IGNORE;
    memset(&o, 0, sizeof(o));
    o.file = "rg";
    o.args = argv;
    o.env = env;
    o.cwd = op->ws->real;
    o.stdio = stdio;
    o.stdio_count = 3;
    o.exit_cb = rg_on_exit;
    rg->open_handles = 2;
    if ((r = uv_spawn(loop, &rg->process, &o)) != 0) {
        /* Both handles are still to be closed; rg goes with the second (rg_close_cb). */
        rg->op = NULL;
        uv_close((uv_handle_t *)&rg->process, rg_close_cb);
        uv_close((uv_handle_t *)&rg->out, rg_close_cb);
        rg = NULL;
        goto out;
    }
    op->grep.rg = rg;
    rg = NULL;
    if (uv_read_start((uv_stream_t *)&op->grep.rg->out, rg_alloc, rg_on_read) != 0) {
        op->grep.rg->eof = true;
        rg_kill(op->grep.rg, "its output cannot be read");
    }
out:
    free(rg);
    for (size_t i = 0; globs != NULL && i < a->include.n; i++)
        free(globs[i]);
    free(globs);
    free(argv);
    free(path_env);
    return r;
}

/* ---- the work, on the pool ---- */

/* The work: the built-in engine (unless rg ran), then the result. */
void fileop__grep_work(struct fileop *op)
{
    struct fileop_grep *g = &op->grep;
    const struct grep_args *a = &op->args.grep;
    int r;

    if (g->engine_done) {
        rg_parse(op);
        if (op->stopped || g->failed)
            return;
    } else {
        r = grep_builtin_run(op->ws, a->pattern != NULL ? a->pattern : "", a->include.v,
                             a->include.n, &op->cancelled, on_builtin_match, op);
        if (r == GREP_CANCELLED || fileop__stopping(op)) {
            op->stopped = true;
            return;
        }
        if (g->failed)
            return;
        if (r == ERR_NOMEM) {
            fileop__fail(op, "out of memory");
            return;
        }
        if (r == GREP_TRUNCATED)
            op->truncated = true; /* a line past the engine's limit: never a silent cut */
        /* Anything else, an invalid pattern included, stands as what was found. */
    }
    if (grep_build(op) != 0) {
        fileop__fail(op, "out of memory");
        return;
    }
    op->success = true;
}

json_t *fileop__grep_result(const struct fileop *op)
{
    return json_incref(op->grep.result);
}

/* The hook fileop_start calls: rg if it can run, else the built-in engine on the pool. */
int fileop__grep_start(uv_loop_t *loop, struct fileop *op)
{
    int r = rg_start(loop, op);

    if (r == 0) {
        log_info("grep: rg searches");
        return 1; /* rg runs; its end queues the rest */
    }
    if (r != UV_ENOENT)
        log_warn("grep: rg could not start (%s): the built-in engine searches instead",
                 uv_strerror(r));
    else
        log_info("grep: no rg on PATH: the built-in engine searches");
    return 0;
}

void fileop__grep_cancel(struct fileop *op)
{
    if (op->grep.rg != NULL)
        rg_kill(op->grep.rg, "cancelled");
}

void fileop__grep_free(struct fileop *op)
{
    struct fileop_grep *g = &op->grep;

    for (size_t i = 0; i < g->nhits; i++) {
        free(g->hits[i].path);
        free(g->hits[i].line);
    }
    free(g->hits);
    free(g->rg_events);
    json_decref(g->result);
}
