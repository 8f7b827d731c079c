/*
 * upstream.c - the broker's own HTTP client to the real API: one pool per process, keyed
 * by origin, shared by every invocation (DESIGN.md section 3). See upstream.h.
 *
 * An origin (scheme, host, port) keeps its connections (src/net: TCP, TLS, maybe a
 * CONNECT tunnel) and a queue of requests waiting for one. A connection speaks what ALPN
 * chose: HTTP/2 (h2conn.h: many streams, the server's stream limit, flow control per
 * stream) or HTTP/1.1 (h1conn.h: one exchange at a time, kept alive when the framing
 * allows). upstream__dispatch hands each waiting request to a connection that can take
 * it, or opens one: for an origin that spoke HTTP/2 last time, one connect serves every
 * waiting request; over HTTP/1.1 there is one connect per waiting request, up to
 * UPSTREAM_ORIGIN_CONNS.
 *
 * Idle connections stay open UPSTREAM_IDLE_MS (a brokered call from a short-lived CLI
 * then skips the TCP and TLS handshakes), at most UPSTREAM_ORIGIN_IDLE of them per origin.
 * One request's side (callbacks, deadlines, decoding, the retry) is upstream_req.c.
 *
 * Lifetime: a connection is dropped (pconn__drop) when its protocol layer reports it
 * closed or its idle time is over; its memory goes with its idle timer's close, a later
 * loop turn, so callbacks already under way find it marked dead, never freed.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "log.h"
#include "netconn.h"
#include "netproxy.h"
#include "upstream_internal.h"

#define UPSTREAM_ORIGIN_CONNS 64   /* connections (and connects) per origin */
#define UPSTREAM_ORIGIN_IDLE 64    /* idle HTTP/1.1 connections kept per origin: a 64-way load
                                     * keeps all of its own between requests */
#define UPSTREAM_IDLE_MS (90 * 1000)

static void pconn__drop(struct pconn *pc);

/* ---- the transports the protocol layers write through ---- */

static int tr_send(void *t, const uint8_t *data, size_t len)
{
    struct pconn *pc = t;

    return pc->dead || pc->nc == NULL || pc->nc_gone ? ERR_CLOSED
                                                     : net_conn_write(pc->nc, data, len);
}

static size_t tr_pending(void *t)
{
    struct pconn *pc = t;

    return pc->dead || pc->nc == NULL || pc->nc_gone ? 0 : net_conn_pending(pc->nc);
}

static void tr_read_pause(void *t, bool pause)
{
    struct pconn *pc = t;

    if (pc->dead || pc->nc == NULL || pc->nc_gone)
        return;
    if (pause)
        net_conn_read_stop(pc->nc);
    else
        net_conn_read_start(pc->nc);
}

static const struct h1conn_transport h1_transport = {tr_send, tr_pending, tr_read_pause};
static const struct h2conn_transport h2_transport = {tr_send, tr_pending, NULL, tr_read_pause};

/* ---- the connection's events ---- */

/* Tells the transport what the upstream owes this connection now, so that a download
 * is read in batches (net_conn_expect): after each delivery, and when a request starts
 * or ends on it. */
static void pconn__expect(struct pconn *pc)
{
    if (pc->dead || pc->nc == NULL || pc->nc_gone)
        return;
    net_conn_expect(pc->nc, pc->h1 != NULL   ? h1conn_due(pc->h1)
                            : pc->h2 != NULL ? h2conn_due(pc->h2)
                                             : 0);
}

static void on_net_read(struct net_conn *nc, const uint8_t *data, size_t len, void *ud)
{
    struct pconn *pc = ud;

    if (pc->dead)
        return;
    if (pc->h1 != NULL)
        h1conn_feed(pc->h1, data, len);
    else if (pc->h2 != NULL && h2conn_feed(pc->h2, data, len) != 0 && !pc->dead)
        pconn__drop(pc);
    pconn__expect(pc);
}

static void on_net_drain(struct net_conn *nc, void *ud)
{
    struct pconn *pc = ud;

    if (pc->dead)
        return;
    if (pc->h1 != NULL)
        h1conn_on_drain(pc->h1);
    else if (pc->h2 != NULL)
        h2conn_on_drain(pc->h2);
}

/* The transport ended. The protocol layer may still hold what it read for a paused
 * reader: it reports itself closed (on_closed, which drops the connection) once every
 * request on it has its end. */
static void on_net_close(struct net_conn *nc, const char *reason, void *ud)
{
    struct pconn *pc = ud;

    if (pc->dead)
        return;
    pc->nc_gone = true;
    if (pc->h1 != NULL)
        h1conn_transport_closed(pc->h1, reason);
    else if (pc->h2 != NULL)
        h2conn_transport_closed(pc->h2, reason != NULL ? reason : "closed by the upstream");
    else
        pconn__drop(pc);
}

static const struct net_conn_events net_events = {on_net_read, on_net_drain, on_net_close};

/* The deadline of an idle connection (set in pconn__idle, cleared when a request takes it).
 * An idle HTTP/2 connection is pinged every connect timeout: one whose PING is still
 * unanswered at the next tick fails (h2conn_ping), so a connection a middlebox dropped
 * silently is let go while idle, not found dead by the next request's head timeout. */
static void on_idle_deadline(struct deadline *d)
{
    struct pconn *pc = deadline_data(d);

    if (pc->active > 0 || pc->dead)
        return;
    if (pc->kind != PCONN_H2 || uv_now(pc->o->u->loop) - pc->idle_since >= UPSTREAM_IDLE_MS) {
        pconn__drop(pc);
        return;
    }
    h2conn_ping(pc->h2);
    deadline_set(&pc->idle, pc->o->u->opts.connect_timeout_ms);
}

static void pconn__unidle(struct pconn *pc)
{
    if (!pc->on_idle)
        return;
    TAILQ_REMOVE(&pc->o->idle, pc, idle_link);
    pc->o->nidle--;
    pc->on_idle = false;
}

/* No request on pc: it waits for the next one, for a while. */
static void pconn__idle(struct pconn *pc)
{
    struct origin *o = pc->o;

    if (pc->dead || pc->active > 0)
        return;
    pc->idle_since = uv_now(o->u->loop);
    if (pc->kind == PCONN_H2) {
        deadline_set(&pc->idle, o->u->opts.connect_timeout_ms);
        return;
    }
    if (pc->on_idle)
        return;
    if (o->nidle >= UPSTREAM_ORIGIN_IDLE) {
        pconn__drop(pc);
        return;
    }
    TAILQ_INSERT_HEAD(&o->idle, pc, idle_link);
    o->nidle++;
    pc->on_idle = true;
    deadline_set(&pc->idle, UPSTREAM_IDLE_MS);
}

static void on_h1_idle(struct h1conn *c, void *ud)
{
    struct pconn *pc = ud;

    pconn__idle(pc);
    upstream__dispatch(pc->o);
}

static void on_h1_closed(struct h1conn *c, const char *reason, void *ud)
{
    pconn__drop(ud);
}

static void on_h2_capacity(struct h2conn *c, void *ud)
{
    struct pconn *pc = ud;

    if (!pc->dead)
        upstream__dispatch(pc->o);
}

static void on_h2_closed(struct h2conn *c, const char *reason, void *ud)
{
    pconn__drop(ud);
}

static const struct h1conn_events h1_events = {on_h1_idle, on_h1_closed};
static const struct h2conn_events h2_events = {on_h2_capacity, on_h2_closed};

/* ---- connections ---- */

static void on_pconn_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Every waiting request of o fails with why: nothing is left that could serve them. */
static void origin__fail_waiting(struct origin *o, const char *why)
{
    struct upstream_req *r;

    while ((r = TAILQ_FIRST(&o->waiting)) != NULL)
        upstream__req_fail(r, UPSTREAM_ERR_CONNECT, why);
}

static void pconn__drop(struct pconn *pc)
{
    struct origin *o = pc->o;

    if (pc->dead)
        return;
    pc->dead = true;
    pconn__unidle(pc);
    LIST_REMOVE(pc, link);
    o->nconns--;
    if (pc->kind == PCONN_H2)
        o->nh2--;
    if (pc->connecting != NULL) {
        net_connect_cancel(pc->connecting);
        o->nconnecting--;
    }
    h1conn_free(pc->h1);
    if (pc->h2 != NULL) {
        h2conn_close(pc->h2);
        h2conn_free(pc->h2);
    }
    net_conn_free(pc->nc);
    pc->h1 = NULL;
    pc->h2 = NULL;
    pc->nc = NULL;
    deadline_close(&pc->idle, on_pconn_closed);
    /* Requests waiting for it go to another one, or a new one. */
    if (!o->u->closing && !TAILQ_EMPTY(&o->waiting))
        upstream__dispatch(o);
}

static void on_connected(struct net_conn *nc, const char *error, void *ud)
{
    struct pconn *pc = ud;
    struct origin *o = pc->o;
    int rc;

    pc->connecting = NULL;
    o->nconnecting--;
    if (nc == NULL) {
        char why[256];

        snprintf(why, sizeof(why), "%s", error != NULL ? error : "cannot connect");
        log_info("upstream %s: %s", o->authority, why);
        /* Nothing else to wait for: all of them fail as this one did. Else the first
         * one does, so a connect that keeps failing is never retried forever. */
        if (o->nconns == 1)
            origin__fail_waiting(o, why);
        else if (!TAILQ_EMPTY(&o->waiting))
            upstream__req_fail(TAILQ_FIRST(&o->waiting), UPSTREAM_ERR_CONNECT, why);
        pconn__drop(pc);
        return;
    }
    pc->nc = nc;
    if (strcmp(net_conn_alpn(nc), "h2") == 0) {
        pc->kind = PCONN_H2;
        o->nh2++;
        o->speaks_h2 = true;
        struct h2conn_transport tr = h2_transport;

        tr.gather = o->u->h2_gather;
        rc = h2conn_new(o->u->loop, &tr, pc, &h2_events, pc, &pc->h2);
    } else {
        pc->kind = PCONN_H1;
        o->speaks_h2 = false;
        rc = h1conn_new(o->u->loop, &h1_transport, pc, &h1_events, pc, &pc->h1);
    }
    if (rc != 0) {
        pconn__drop(pc);
        return;
    }
    net_conn_set_events(nc, &net_events, pc);
    if (pc->kind == PCONN_H1)
        pconn__idle(pc); /* where dispatch finds it */
    upstream__dispatch(o);
}

static int origin__connect(struct origin *o)
{
    struct upstream *u = o->u;
    struct pconn *pc = calloc(1, sizeof(*pc));
    struct net_target t = {o->host, o->port, o->tls, o->tls ? "h2,http/1.1" : NULL, NULL};
    struct net_proxy *proxy = NULL;
    int rc;

    if (pc == NULL)
        return ERR_NOMEM;
    if ((rc = net_proxy_for(&u->proxy, o->tls ? "https" : "http", o->host, o->port,
                            &proxy)) != 0) {
        free(pc);
        return rc;
    }
    t.proxy = proxy;
    pc->o = o;
    pc->kind = PCONN_CONNECTING;
    deadline_init(u->loop, &pc->idle, on_idle_deadline, pc);
    LIST_INSERT_HEAD(&o->conns, pc, link);
    o->nconns++;
    o->nconnecting++;
    rc = net_connect_start(u->loop, u->tls, &t, u->opts.connect_timeout_ms, on_connected, pc,
                           &pc->connecting);
    net_proxy_free(proxy);
    if (rc != 0) {
        o->nconnecting--;
        pc->connecting = NULL;
        pconn__drop(pc);
        return rc;
    }
    return 0;
}

/* ---- dispatch ---- */

/* An HTTP/2 connection of o that will take more streams once some of its own end: the
 * server's MAX_CONCURRENT_STREAMS holds for the origin, so requests queue for it rather
 * than open more connections. */
static bool origin__h2_open(const struct origin *o)
{
    const struct pconn *pc;

    if (o->nh2 == 0)
        return false;
    LIST_FOREACH(pc, &o->conns, link) {
        if (pc->kind == PCONN_H2 && !pc->dead && !pc->nc_gone && h2conn_open(pc->h2))
            return true;
    }
    return false;
}

/* A connection that can take r now, or NULL: an HTTP/2 one with a stream to spare, else
 * the HTTP/1.1 one idle last. One that can no longer serve leaves the idle list here; its
 * protocol layer drops it. */
static struct pconn *origin__pick(struct origin *o, const struct upstream_req *r)
{
    struct pconn *pc, *next;

    if (o->nh2 > 0) {
        LIST_FOREACH(pc, &o->conns, link) {
            if (pc->kind == PCONN_H2 && !pc->dead && !pc->nc_gone && h2conn_available(pc->h2))
                return pc;
        }
    }
    for (pc = TAILQ_FIRST(&o->idle); pc != NULL; pc = next) {
        next = TAILQ_NEXT(pc, idle_link);
        if (pc->nc_gone || !h1conn_idle(pc->h1))
            pconn__unidle(pc);
        else if (!r->fresh_only || pc->served == 0)
            return pc;
    }
    return NULL;
}

static void pconn__start(struct pconn *pc, struct upstream_req *r)
{
    struct origin *o = pc->o;
    int rc;

    TAILQ_REMOVE(&o->waiting, r, qlink);
    r->queued = false;
    r->pc = pc;
    pc->active++;
    pconn__unidle(pc);
    deadline_clear(&pc->idle);
    r->attempts++;
    if (pc->kind == PCONN_H1) {
        struct h1_request rq = {r->method, o->authority, r->path, (const char *const *)r->headers,
                                r->nheaders, r->has_body, r->body_len};

        rc = h1conn_submit(pc->h1, &rq, &upstream__h1_ops, r, &r->hx);
    } else {
        struct h2_request rq = {r->method, o->tls ? "https" : "http", o->authority, r->path,
                                (const char *const *)r->headers, r->nheaders, r->has_body,
                                r->body_len};

        rc = h2conn_submit(pc->h2, &rq, &upstream__h2_ops, r, &r->hs);
    }
    if (rc != 0)
        upstream__req_fail(r, UPSTREAM_ERR_CONNECT,
                           rc == ERR_INVALID ? "the request cannot be sent" : "out of memory");
    else
        pconn__expect(pc); /* a second stream: no batches that could hold its answer back */
}

/* The TLS context, made the first time a connect needs it: an exec broker whose command
 * never calls the API does without OpenSSL's start (about 1 MiB: bench W4). Fails every
 * request waiting for a TLS origin when the CAs cannot be loaded. */
static int upstream__tls(struct upstream *u)
{
    struct origin *o;
    char why[PATH_MAX + 64];
    int rc;

    if (u->tls != NULL)
        return 0;
    if ((rc = net_tls_ctx_new(u->cacert, &u->tls)) == 0)
        return 0;
    if (rc == ERR_NOMEM)
        snprintf(why, sizeof(why), "out of memory for the TLS context");
    else if (u->cacert != NULL)
        snprintf(why, sizeof(why), "the CA bundle %s holds no certificate OpenSSL can load",
                 u->cacert);
    else
        snprintf(why, sizeof(why), "the system's CA certificates cannot be loaded");
    log_error("upstream: %s", why);
    LIST_FOREACH(o, &u->origins, link) {
        if (o->tls)
            origin__fail_waiting(o, why);
    }
    return rc;
}

void upstream__dispatch(struct origin *o)
{
    struct upstream_req *r;
    struct pconn *pc;
    unsigned nwaiting = 0;

    if (o->u->closing)
        return;
    TAILQ_FOREACH(r, &o->waiting, qlink)
        nwaiting++;
    while ((r = TAILQ_FIRST(&o->waiting)) != NULL) {
        if ((pc = origin__pick(o, r)) != NULL) {
            pconn__start(pc, r);
            nwaiting--;
            continue;
        }
        /* An origin that speaks HTTP/2 gets one connect for everyone, and its requests
         * wait for a stream of the connection it has; over HTTP/1.1 each waiting request
         * wants its own (a retry always does). */
        if (o->nconnecting > 0 && !r->fresh_only &&
            (o->speaks_h2 || o->nconnecting >= nwaiting))
            return;
        if (!r->fresh_only && origin__h2_open(o))
            return;
        if (o->nconns >= UPSTREAM_ORIGIN_CONNS)
            return; /* one of them will come free */
        if (o->tls && upstream__tls(o->u) != 0)
            return;
        if (origin__connect(o) != 0) {
            origin__fail_waiting(o, "cannot start a connection to the upstream");
            return;
        }
        if (r->fresh_only)
            r->fresh_only = false; /* its connect is under way: the next free one is its */
        if (o->nconnecting >= nwaiting || o->speaks_h2)
            return;
    }
}

void upstream__release(struct upstream_req *r)
{
    struct pconn *pc = r->pc;

    if (pc == NULL)
        return;
    r->pc = NULL;
    pc->active--;
    pc->served++;
    pconn__expect(pc);
    if (pc->kind == PCONN_H2 && pc->active == 0)
        pconn__idle(pc);
}

/* ---- origins ---- */

/* Splits scheme://host[:port]/path?query; path (with its query) points into url. */
static int parse_url(const char *url, bool *tls, char *host, size_t hostlen, uint16_t *port,
                     const char **path)
{
    const char *p, *h, *hend, *end;
    unsigned long n = 0;

    if (strncasecmp(url, "https://", 8) == 0) {
        *tls = true;
        p = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        *tls = false;
        p = url + 7;
    } else {
        return ERR_BAD_URL;
    }
    end = p + strcspn(p, "/?#");
    *path = *end == '/' ? end : "/";
    if (*end == '?' || *end == '#')
        return ERR_BAD_URL; /* the broker always sends a path */
    h = p;
    if (*h == '[') {
        hend = memchr(h, ']', (size_t)(end - h));
        if (hend == NULL)
            return ERR_BAD_URL;
        h++;
        p = hend + 1;
    } else {
        hend = memchr(h, ':', (size_t)(end - h));
        if (hend == NULL)
            hend = end;
        p = hend;
    }
    if (hend == h || (size_t)(hend - h) >= hostlen || memchr(h, '@', (size_t)(hend - h)) != NULL)
        return ERR_BAD_URL;
    memcpy(host, h, (size_t)(hend - h));
    host[hend - h] = '\0';
    if (p < end && *p == ':') {
        for (p++; p < end; p++) {
            if (*p < '0' || *p > '9' || (n = n * 10 + (unsigned long)(*p - '0')) > 65535)
                return ERR_BAD_URL;
        }
        if (n == 0)
            return ERR_BAD_URL;
    } else if (p != end) {
        return ERR_BAD_URL;
    }
    *port = n != 0 ? (uint16_t)n : *tls ? 443 : 80;
    return 0;
}

static struct origin *upstream__origin(struct upstream *u, bool tls, const char *host,
                                       uint16_t port)
{
    struct origin *o;
    bool v6 = strchr(host, ':') != NULL;

    LIST_FOREACH(o, &u->origins, link) {
        if (o->tls == tls && o->port == port && strcasecmp(o->host, host) == 0)
            return o;
    }
    if ((o = calloc(1, sizeof(*o))) == NULL)
        return NULL;
    o->u = u;
    o->tls = tls;
    o->port = port;
    snprintf(o->host, sizeof(o->host), "%s", host);
    if (port == (tls ? 443 : 80))
        snprintf(o->authority, sizeof(o->authority), v6 ? "[%s]" : "%s", host);
    else
        snprintf(o->authority, sizeof(o->authority), v6 ? "[%s]:%u" : "%s:%u", host, port);
    LIST_INIT(&o->conns);
    TAILQ_INIT(&o->idle);
    TAILQ_INIT(&o->waiting);
    LIST_INSERT_HEAD(&u->origins, o, link);
    return o;
}

/* ---- the public side ---- */

static const char *env_get(const char *name)
{
    return getenv(name);
}

int upstream_new(uv_loop_t *loop, const struct upstream_options *opts, struct upstream **out)
{
    struct upstream *u = calloc(1, sizeof(*u));
    int rc;

    *out = NULL;
    if (u == NULL)
        return ERR_NOMEM;
    u->loop = loop;
    u->opts = *opts;
    u->opts.cacert = NULL;
    LIST_INIT(&u->origins);
    LIST_INIT(&u->reqs);
    if (opts->cacert != NULL && (rc = net_tls_cacert_check(opts->cacert)) != 0) {
        free(u);
        return rc;
    }
    if (opts->cacert != NULL && (u->cacert = strdup(opts->cacert)) == NULL) {
        free(u);
        return ERR_NOMEM;
    }
    if ((rc = webproxy_init(&u->proxy, env_get)) != 0) {
        webproxy_free(&u->proxy);
        free(u->cacert);
        free(u);
        return rc;
    }
    u->proxy.proxy_loopback = true; /* as the broker's egress always had it */
    *out = u;
    return 0;
}

void upstream_close(struct upstream *u)
{
    struct origin *o;

    if (u == NULL)
        return;
    u->closing = true;
    while (!LIST_EMPTY(&u->reqs))
        upstream_req_cancel(LIST_FIRST(&u->reqs));
    while ((o = LIST_FIRST(&u->origins)) != NULL) {
        while (!LIST_EMPTY(&o->conns))
            pconn__drop(LIST_FIRST(&o->conns));
        LIST_REMOVE(o, link);
        free(o);
    }
    webproxy_free(&u->proxy);
    net_tls_ctx_free(u->tls);
    free(u->cacert);
    free(u);
}

size_t upstream_active(const struct upstream *u)
{
    return u->active;
}

int upstream_req_start(struct upstream *u, const struct upstream_req_spec *spec,
                       const struct upstream_req_ops *ops, void *ud, struct upstream_req **out)
{
    char host[UPSTREAM_HOST_MAX];
    const char *path;
    struct origin *o;
    uint16_t port;
    bool tls;
    int rc;

    *out = NULL;
    if (u->closing)
        return ERR_CLOSED;
    if ((rc = parse_url(spec->url, &tls, host, sizeof(host), &port, &path)) != 0)
        return rc;
    if ((o = upstream__origin(u, tls, host, port)) == NULL)
        return ERR_NOMEM;
    if ((rc = upstream__req_new(u, o, spec, path, ops, ud, out)) != 0)
        return rc;
    upstream__dispatch(o);
    return 0;
}
