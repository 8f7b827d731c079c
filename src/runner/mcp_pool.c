/*
 * mcp_pool.c - the runner's MCP connections. See mcp_pool.h.
 *
 * A session is one connection: its transport, its mcp_conn, the acquisitions waiting for
 * its connect, how many calls hold it. Outcomes of acquisitions are delivered from the
 * pool's "deliver" timer, a loop turn of their own, never from inside mcp_pool_acquire or
 * a transport's callback.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "err.h"
#include "log.h"
#include "mcp_client.h"
#include "mcp_http.h"
#include "mcp_pool.h"
#include "mcp_stdio.h"
#include "permission.h"

#define MCP_POOL_REASON_MAX 1024
#define MCP_POOL_STDERR_SHOWN 512 /* bytes of a failed server's stderr put in its error */

enum session_state { SESSION_CONNECTING, SESSION_READY, SESSION_BROKEN };

struct mcp_wait {
    struct mcp_pool *p;
    struct mcp_session *s;        /* waited for, or delivered (NULL with an error) */
    mcp_acquire_cb cb;
    void *ud;
    bool delivered;               /* on the pool's outcome queue */
    char error[MCP_POOL_REASON_MAX];
    TAILQ_ENTRY(mcp_wait) link;   /* on its session's waiters or the pool's outcomes */
};
TAILQ_HEAD(wait_list, mcp_wait);

struct mcp_session {
    struct mcp_pool *p;
    uint8_t key[32];
    char name[128];
    enum session_state state;
    bool closed;                  /* session_close ran: its memory goes with its timer */
    unsigned busy;                /* acquisitions not released */
    uint64_t last_used;
    struct mcp_stdio *stdio;      /* the transport: stdio, or */
    struct mcp_http *http;        /* Streamable HTTP (with the legacy fallback) */
    struct mcp_conn *conn;
    uv_timer_t timer;             /* the connect deadline, then the idle close */
    struct wait_list waiters;
    LIST_ENTRY(mcp_session) link;
};

struct mcp_pool {
    uv_loop_t *loop;
    struct mcp_pool_options o;
    LIST_HEAD(, mcp_session) sessions;
    size_t nsessions;
    struct wait_list outcomes;    /* delivered from the deliver timer */
    uv_timer_t deliver;
    bool closing;
};

/* ---- delivering outcomes ---- */

static void on_deliver(uv_timer_t *t)
{
    struct mcp_pool *p = t->data;
    struct mcp_wait *w;

    while (!p->closing && (w = TAILQ_FIRST(&p->outcomes)) != NULL) {
        TAILQ_REMOVE(&p->outcomes, w, link);
        w->cb(w->s, w->s != NULL ? NULL : w->error, w->ud);
        free(w);
    }
}

/* w's outcome: the session it holds (s, error NULL) or an error. */
static void wait_resolve(struct mcp_wait *w, struct mcp_session *s, const char *error)
{
    struct mcp_pool *p = w->p;

    w->s = error == NULL ? s : NULL;
    if (error != NULL)
        snprintf(w->error, sizeof(w->error), "%s", error);
    else
        s->busy++;
    w->delivered = true;
    TAILQ_INSERT_TAIL(&p->outcomes, w, link);
    uv_timer_start(&p->deliver, on_deliver, 0, 0);
}

static void session_close(struct mcp_session *s, const char *reason);

void mcp_wait_cancel(struct mcp_wait *w)
{
    struct mcp_session *s = w->s;

    if (w->delivered) {
        TAILQ_REMOVE(&w->p->outcomes, w, link);
        if (s != NULL)
            mcp_session_release(s, false);
        free(w);
        return;
    }
    TAILQ_REMOVE(&s->waiters, w, link);
    free(w);
    /* A connect nobody waits for any more is abandoned, as Go's is with its context: a
     * server that never answers initialize goes now, not at the connect deadline. */
    if (s->state == SESSION_CONNECTING && TAILQ_EMPTY(&s->waiters) && s->busy == 0)
        session_close(s, "context canceled");
}

/* ---- sessions ---- */

static void on_session_closed(uv_handle_t *h)
{
    struct mcp_session *s = h->data;

    /* Here, not in session_close: that may run inside the connection's own callbacks
     * (a call's end releasing the session), which still use it. */
    mcp_conn_free(s->conn);
    free(s);
}

/* Closes s for good: its waiters get reason, its transport is closed (a stdio server
 * stopped and reaped by mcp_stdio_close), its memory goes with its timer. */
static void session_close(struct mcp_session *s, const char *reason)
{
    struct mcp_wait *w;

    if (s->closed)
        return;
    s->closed = true;
    s->state = SESSION_BROKEN;
    while ((w = TAILQ_FIRST(&s->waiters)) != NULL) {
        TAILQ_REMOVE(&s->waiters, w, link);
        wait_resolve(w, NULL, reason);
    }
    LIST_REMOVE(s, link);
    s->p->nsessions--;
    if (s->stdio != NULL) {
        struct mcp_stdio *stdio = s->stdio;

        s->stdio = NULL;    /* its on_closed may run inside the close: it finds nothing */
        mcp_stdio_close(stdio);
    }
    mcp_http_close(s->http); /* sends DELETE for its session; no callback after this */
    s->http = NULL;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, on_session_closed);
}

/* A failure of the connection: broken now (its pending calls and waiters get reason);
 * closed once no call holds it. */
static void session_fail(struct mcp_session *s, const char *reason)
{
    struct mcp_wait *w;

    if (s->state == SESSION_BROKEN)
        return;
    s->state = SESSION_BROKEN; /* first: what the transport's end calls back finds it so */
    if (s->conn != NULL)
        mcp_conn_transport_closed(s->conn, reason); /* a call's end may release s: closed */
    if (s->closed)
        return;
    while ((w = TAILQ_FIRST(&s->waiters)) != NULL) {
        TAILQ_REMOVE(&s->waiters, w, link);
        wait_resolve(w, NULL, reason);
    }
    if (s->busy == 0)
        session_close(s, reason);
}

/* reason, and for a connect that failed, the last of the server's stderr: the error
 * someone setting up a server needs to see. */
static const char *session_reason(const struct mcp_session *s, const char *reason, char *buf,
                                  size_t len)
{
    const char *tail = s->state == SESSION_CONNECTING && s->stdio != NULL
                           ? mcp_stdio_stderr_tail(s->stdio, MCP_POOL_STDERR_SHOWN)
                           : "";

    snprintf(buf, len, "%s%s%s", reason, tail[0] != '\0' ? "; stderr: " : "", tail);
    return buf;
}

static void on_idle(uv_timer_t *t)
{
    struct mcp_session *s = t->data;

    if (s->busy == 0)
        session_close(s, "idle");
}

static void on_connect_deadline(uv_timer_t *t)
{
    session_fail(t->data, "context deadline exceeded");
}

/* The handshake's end: every waiter gets the session, or the reason. */
static void on_ready(struct mcp_conn *c, const char *error, void *ud)
{
    struct mcp_session *s = ud;
    struct mcp_wait *w;
    char reason[MCP_POOL_REASON_MAX];

    (void)c;
    if (s->state == SESSION_BROKEN)
        return; /* the failure that ended the handshake is being handled */
    if (error != NULL) {
        session_fail(s, session_reason(s, error, reason, sizeof(reason)));
        return;
    }
    uv_timer_stop(&s->timer);
    s->state = SESSION_READY;
    s->last_used = uv_now(s->p->loop);
    while ((w = TAILQ_FIRST(&s->waiters)) != NULL) {
        TAILQ_REMOVE(&s->waiters, w, link);
        wait_resolve(w, s, NULL);
    }
}

/* ---- the stdio transport ---- */

static int stdio_send(void *t, const char *msg, size_t len)
{
    struct mcp_session *s = t;

    return s->stdio != NULL ? mcp_stdio_send(s->stdio, msg, len) : ERR_CLOSED;
}

static void on_stdio_message(struct mcp_stdio *st, const char *line, size_t len, void *data)
{
    struct mcp_session *s = data;

    (void)st;
    if (s->conn != NULL && s->stdio != NULL)
        mcp_conn_receive(s->conn, line, len);
}

static void on_stdio_closed(struct mcp_stdio *st, const char *reason, void *data)
{
    struct mcp_session *s = data;

    char text[MCP_POOL_REASON_MAX];

    (void)st;
    if (s->stdio != NULL) /* else the pool closed it: nothing left to tell */
        session_fail(s, session_reason(s, reason, text, sizeof(text)));
}

/* ---- the HTTP transports ---- */

static int http_send(void *t, const char *msg, size_t len)
{
    struct mcp_session *s = t;

    return s->http != NULL ? mcp_http_send(s->http, msg, len) : ERR_CLOSED;
}

static void http_set_version(void *t, const char *version)
{
    struct mcp_session *s = t;

    if (s->http != NULL)
        mcp_http_set_protocol_version(s->http, version);
}

static void on_http_message(struct mcp_http *h, const char *msg, size_t len, void *data)
{
    struct mcp_session *s = data;

    (void)h;
    if (s->conn != NULL && s->http != NULL)
        mcp_conn_receive(s->conn, msg, len);
}

static void on_http_closed(struct mcp_http *h, const char *reason, void *data)
{
    struct mcp_session *s = data;

    (void)h;
    if (s->http != NULL)
        session_fail(s, reason);
}

static int session_start_http(struct mcp_session *s, const struct mcp_server_config *cfg,
                              char *err, size_t errlen)
{
    static const struct mcp_http_events events = {on_http_message, on_http_closed};
    struct mcp_http_options o = {
        .url = cfg->url,
        .header_names = cfg->header_names,
        .header_values = cfg->header_values,
        .nheaders = cfg->nheaders,
        .tls_skip_verify = cfg->tls_skip_verify,
        .proxy = s->p->o.proxy,
    };

    return mcp_http_start(s->p->loop, &o, &events, s, &s->http, err, errlen);
}

/* "'a' 'b c'": the command line as bash would be given it, for the permission rules,
 * each word single-quoted so that the rules see exactly the words. NULL when out of
 * memory. */
static char *quoted_command_line(const struct mcp_server_config *cfg)
{
    size_t cap = 1, n = 0;
    char *s;

    for (size_t i = 0; i <= cfg->nargs; i++) {
        const char *w = i == 0 ? cfg->command : cfg->args[i - 1];

        cap += 3 + strlen(w) * 4;
    }
    if ((s = malloc(cap)) == NULL)
        return NULL;
    for (size_t i = 0; i <= cfg->nargs; i++) {
        const char *w = i == 0 ? cfg->command : cfg->args[i - 1];

        if (i > 0)
            s[n++] = ' ';
        s[n++] = '\'';
        for (; *w != '\0'; w++) {
            if (*w == '\'') { /* close, an escaped quote, open again */
                memcpy(s + n, "'\\''", 4);
                n += 4;
            } else {
                s[n++] = *w;
            }
        }
        s[n++] = '\'';
    }
    s[n] = '\0';
    return s;
}

static int session_start_stdio(struct mcp_session *s, const struct mcp_server_config *cfg,
                               char *err, size_t errlen)
{
    static const struct mcp_stdio_events events = {on_stdio_message, on_stdio_closed};
    struct mcp_pool *p = s->p;
    struct mcp_stdio_options o = {0};
    char **argv;
    int r;

    if (p->o.rules != NULL) {
        char *line = quoted_command_line(cfg);

        if (line == NULL)
            return ERR_NOMEM;
        r = permission_check(p->o.rules, line, err, errlen);
        free(line);
        if (r != 0)
            return r;
    }
    if ((argv = calloc(cfg->nargs + 2, sizeof(*argv))) == NULL)
        return ERR_NOMEM;
    argv[0] = (char *)cfg->command;
    for (size_t i = 0; i < cfg->nargs; i++)
        argv[i + 1] = cfg->args[i];
    o.argv = argv;
    o.base_env = p->o.base_env;
    o.env_names = cfg->env_names;
    o.env_values = cfg->env_values;
    o.nenv = cfg->nenv;
    o.cwd = p->o.workspace;
    o.secrets = p->o.secrets;
    o.label = cfg->name;
    r = mcp_stdio_start(p->loop, &o, &events, s, &s->stdio, err, errlen);
    free(argv);
    return r;
}

/* A new session for cfg, its connect started; NULL with err when it cannot start. */
static struct mcp_session *session_new(struct mcp_pool *p, const struct mcp_server_config *cfg,
                                       char *err, size_t errlen)
{
    struct mcp_transport tr = {0};
    struct mcp_session *s = calloc(1, sizeof(*s));
    int r;

    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->p = p;
    memcpy(s->key, cfg->key, sizeof(s->key));
    snprintf(s->name, sizeof(s->name), "%s", cfg->name != NULL ? cfg->name : "");
    TAILQ_INIT(&s->waiters);
    /* The caller has checked the name: stdio, or one of the HTTP names (9.2). */
    if (strcmp(cfg->transport, "stdio") == 0) {
        r = session_start_stdio(s, cfg, err, errlen);
        tr.send = stdio_send;
    } else {
        r = session_start_http(s, cfg, err, errlen);
        tr.send = http_send;
        tr.set_protocol_version = http_set_version;
    }
    if (r != 0) {
        if (r == ERR_NOMEM)
            snprintf(err, errlen, "out of memory");
        free(s);
        return NULL;
    }
    tr.t = s;
    if ((s->conn = mcp_conn_new(&tr)) == NULL || mcp_conn_initialize(s->conn, on_ready, s) != 0) {
        snprintf(err, errlen, "cannot start the MCP handshake");
        mcp_conn_free(s->conn);
        mcp_stdio_close(s->stdio);
        mcp_http_close(s->http);
        free(s);
        return NULL;
    }
    uv_timer_init(p->loop, &s->timer); /* cannot fail on a live loop */
    s->timer.data = s;
    uv_timer_start(&s->timer, on_connect_deadline, p->o.connect_ms, 0);
    LIST_INSERT_HEAD(&p->sessions, s, link);
    p->nsessions++;
    return s;
}

/* Room for one more session: the least recently used idle one closed when at the cap. */
static bool pool_make_room(struct mcp_pool *p)
{
    struct mcp_session *s, *lru = NULL;

    if (p->nsessions < p->o.max_sessions)
        return true;
    LIST_FOREACH(s, &p->sessions, link) {
        if (s->state == SESSION_READY && s->busy == 0 &&
            (lru == NULL || s->last_used < lru->last_used))
            lru = s;
    }
    if (lru == NULL)
        return false;
    session_close(lru, "closed to make room");
    return true;
}

int mcp_pool_acquire(struct mcp_pool *p, const struct mcp_server_config *cfg, mcp_acquire_cb cb,
                     void *ud, struct mcp_wait **out)
{
    struct mcp_session *s;
    struct mcp_wait *w;
    char err[MCP_POOL_REASON_MAX];

    *out = NULL;
    if ((w = calloc(1, sizeof(*w))) == NULL)
        return ERR_NOMEM;
    w->p = p;
    w->cb = cb;
    w->ud = ud;
    *out = w;
    LIST_FOREACH(s, &p->sessions, link) {
        if (s->state != SESSION_BROKEN && memcmp(s->key, cfg->key, sizeof(s->key)) == 0)
            break;
    }
    if (s != NULL && s->state == SESSION_READY) {
        uv_timer_stop(&s->timer); /* no idle close while it is used */
        wait_resolve(w, s, NULL);
        return 0;
    }
    if (s == NULL) {
        if (!pool_make_room(p)) {
            snprintf(err, sizeof(err), "too many MCP connections (%zu in use)",
                     p->o.max_sessions);
            wait_resolve(w, NULL, err);
            return 0;
        }
        if ((s = session_new(p, cfg, err, sizeof(err))) == NULL) {
            wait_resolve(w, NULL, err);
            return 0;
        }
    }
    w->s = s;
    TAILQ_INSERT_TAIL(&s->waiters, w, link);
    return 0;
}

struct mcp_conn *mcp_session_conn(struct mcp_session *s)
{
    return s->conn;
}

void mcp_session_release(struct mcp_session *s, bool broken)
{
    s->busy--;
    if (broken && s->state != SESSION_BROKEN) {
        session_fail(s, "closed after a failed call"); /* and closed, when no call holds it */
        return;
    }
    if (s->state == SESSION_BROKEN) {
        if (s->busy == 0)
            session_close(s, "closed");
        return;
    }
    s->last_used = uv_now(s->p->loop);
    if (s->busy == 0)
        uv_timer_start(&s->timer, on_idle, s->p->o.idle_ms, 0);
}

size_t mcp_pool_size(const struct mcp_pool *p)
{
    return p->nsessions;
}

/* ---- the pool ---- */

int mcp_pool_new(uv_loop_t *loop, const struct mcp_pool_options *o, struct mcp_pool **out)
{
    struct mcp_pool *p = calloc(1, sizeof(*p));

    *out = NULL;
    if (p == NULL)
        return ERR_NOMEM;
    p->loop = loop;
    p->o = *o;
    if (p->o.max_sessions == 0)
        p->o.max_sessions = MCP_POOL_MAX_SESSIONS;
    if (p->o.idle_ms == 0)
        p->o.idle_ms = MCP_POOL_IDLE_MS;
    if (p->o.connect_ms == 0)
        p->o.connect_ms = MCP_POOL_CONNECT_MS;
    LIST_INIT(&p->sessions);
    TAILQ_INIT(&p->outcomes);
    uv_timer_init(loop, &p->deliver);
    p->deliver.data = p;
    *out = p;
    return 0;
}

static void on_pool_closed(uv_handle_t *h)
{
    free(h->data);
}

void mcp_pool_close(struct mcp_pool *p)
{
    struct mcp_wait *w;

    if (p == NULL)
        return;
    while (!LIST_EMPTY(&p->sessions))
        session_close(LIST_FIRST(&p->sessions), "runner shutting down");
    p->closing = true;
    while ((w = TAILQ_FIRST(&p->outcomes)) != NULL) {
        TAILQ_REMOVE(&p->outcomes, w, link);
        free(w);
    }
    uv_close((uv_handle_t *)&p->deliver, on_pool_closed);
}
