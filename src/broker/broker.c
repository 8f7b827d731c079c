/*
 * broker.c - the broker and its invocations. See broker.h.
 *
 * A dial is minted in the order DESIGN.md section 1 sets: create the stream
 * pair, register the broker's own end on the loop and check it works, and only
 * then let the control channel send the peer end. A failure before the send
 * refuses cleanly instead of handing out a connection nobody serves.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "credbroker_config.h"

#include "broker_internal.h"
#include "conn.h"
#include "audit.h"
#include "buf.h"
#include "ctl.h"
#include "err.h"
#include "log.h"
#include "policy.h"
#include "route.h"
#include "scrub.h"
#include "secret.h"

bool broker_supported(void)
{
#if CREDBROKER_BROKER && defined(__linux__)
    return true;
#else
    return false;
#endif
}

void broker_limits_default(struct broker_limits *l)
{
    l->max_conns = 64;
    l->max_dials_per_sec = 100;
    l->max_waiting_dials = 1024;
    l->dial_wait_ms = 10 * 1000;
    l->max_body = 64ull * 1024 * 1024;
    l->head_timeout_ms = 10 * 1000;
    l->idle_timeout_ms = 60 * 1000;
    l->response_head_timeout_ms = 60 * 1000;
    l->stall_timeout_ms = 120 * 1000;
}

int broker_new(uv_loop_t *loop, const struct broker_options *opts, struct broker **out)
{
    struct upstream_options uo = {
        .cacert = opts->cacert,
        .connect_timeout_ms = opts->connect_timeout_ms ? opts->connect_timeout_ms : 10000,
    };
    struct broker *b;
    int r;

    *out = NULL;
    if (!broker_supported())
        return ERR_UNSUPPORTED;
    if ((b = calloc(1, sizeof(*b))) == NULL)
        return ERR_NOMEM;
    b->loop = loop;
    b->audit = opts->audit;
    if ((r = upstream_new(loop, &uo, &b->upstream)) != 0) {
        free(b);
        return r;
    }
    *out = b;
    return 0;
}

void broker_close(struct broker *b)
{
    if (b == NULL)
        return;
    b->closing = true;
    for (struct broker_invocation *inv = LIST_FIRST(&b->invocations), *next; inv != NULL;
         inv = next) {
        next = LIST_NEXT(inv, link);
        broker_invocation_end(inv); /* may free inv */
    }
    upstream_close(b->upstream);
    b->upstream = NULL;
    /* Invocations release asynchronously; the last one frees b (see inv__maybe_release). */
    if (LIST_EMPTY(&b->invocations))
        free(b);
    else
        b->free_when_empty = true;
}

/* Frees what the invocation holds, keys first, and the invocation (any part may be unset). */
static void inv__free(struct broker_invocation *inv)
{
    scrubber_free(inv->scrubber);
    for (size_t i = 0; inv->routes != NULL && i < inv->nroutes; i++) {
        struct inv_route *rt = &inv->routes[i];

        log_redact_remove(rt->key);
        secret_free(rt->key);
        policy_free(rt->policy);
    }
    free(inv->routes);
    free(inv->misdirected);
    explicit_bzero(inv, sizeof(*inv));
    free(inv);
}

/* Frees an ended invocation once its control channel and every connection are gone. */
static void inv__maybe_release(struct broker_invocation *inv)
{
    struct broker *b = inv->broker;
    void (*cb)(void *) = inv->on_released;
    void *data = inv->data;

    if (!inv->ended || inv->nconns > 0)
        return;
    LIST_REMOVE(inv, link);
    conn_free_spares(inv);
    inv__free(inv);
    if (b->free_when_empty && LIST_EMPTY(&b->invocations))
        free(b);
    if (cb != NULL)
        cb(data);
}

void broker__conn_released(struct broker_invocation *inv)
{
    inv->nconns--;
    if (!inv->ended)
        ctl_kick(inv->ctl); /* a dial waiting for a slot may have one now */
    inv__maybe_release(inv);
}

/* Token bucket: max_dials_per_sec tokens per second, at most that many stored. Returns 0
 * when a token was taken, else the milliseconds until one is there. */
static uint64_t inv__take_dial_token(struct broker_invocation *inv)
{
    uint64_t now = uv_now(inv->broker->loop);
    double rate = inv->limits.max_dials_per_sec;

    inv->dial_tokens += (double)(now - inv->dial_refill_ms) * rate / 1000.0;
    if (inv->dial_tokens > rate)
        inv->dial_tokens = rate;
    inv->dial_refill_ms = now;
    if (inv->dial_tokens < 1.0)
        return (uint64_t)((1.0 - inv->dial_tokens) * 1000.0 / rate) + 1;
    inv->dial_tokens -= 1.0;
    return 0;
}

static int inv__mint(void *data, int *peer_fd, uint64_t *retry_ms)
{
    struct broker_invocation *inv = data;
    struct conn *c;
    int sv[2], r;

    *peer_fd = -1;
    *retry_ms = 0;
    if (inv->ended) {
        inv->stats.dials++;
        inv->stats.refusals++;
        return ERR_CLOSED;
    }
    /* Over a limit: the dial waits (ctl.h); it counts once, when it is answered. Connections
     * still closing count too: their fds are not released yet. */
    if (inv->nconns >= inv->limits.max_conns)
        return CTL_MINT_WAIT; /* until broker__conn_released kicks the channel */
    if ((*retry_ms = inv__take_dial_token(inv)) != 0)
        return CTL_MINT_WAIT;
    inv->stats.dials++;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        r = -errno;
        log_warn_r(r, "%s: cannot create a connection", inv->label);
        inv->stats.refusals++;
        return r;
    }
    /* The child's end stays blocking, as a fresh socket would be; uv_pipe_open makes the
     * broker's end non-blocking (W1: two fcntl calls per dial were that again). */
    if ((r = conn_new(inv, sv[0], &c)) != 0) { /* sv[0] is closed on failure */
        close(sv[1]);
        inv->stats.refusals++;
        return r;
    }
    *peer_fd = sv[1];
    return 0;
}

/* A dial the channel refused for its own bounds: said at info level and in the audit. */
static void inv__dial_refused(void *data, enum ctl_refusal why)
{
    struct broker_invocation *inv = data;
    bool full = why == CTL_REFUSED_QUEUE_FULL;
    struct audit_record rec = {.invocation = inv->label,
                               .outcome = full ? "dial_queue_full" : "dial_wait_timeout"};

    inv->stats.dials++;
    inv->stats.refusals++;
    log_info("%s: dial refused: %s (limits: %u connections, %u dials per second; %u dials "
             "waiting, at most %u for %llu ms)", inv->label,
             full ? "the queue of waiting dials is full" : "it waited too long",
             inv->limits.max_conns, inv->limits.max_dials_per_sec, ctl_waiting(inv->ctl),
             inv->limits.max_waiting_dials, (unsigned long long)inv->limits.dial_wait_ms);
    audit_write(inv->broker->audit, &rec);
}

static const struct ctl_ops inv__ctl_ops = {inv__mint, inv__dial_refused};

const struct inv_route *broker__route_for_host(const struct broker_invocation *inv,
                                               const char *host, size_t len)
{
    char name[ROUTE_NAME_MAX + 1];

    switch (route_host_name(host, len, name)) {
    case 0:
        return inv->default_route;
    case 1:
        for (size_t i = 0; i < inv->nroutes; i++) {
            if (strcmp(inv->routes[i].name, name) == 0)
                return &inv->routes[i];
        }
        return NULL;
    default:
        return NULL;
    }
}

/* Sets up a route the invocation keeps; key and policy pass to it (also on failure). */
static int inv__route_init(struct broker_invocation *inv, struct inv_route *rt, const char *name,
                           const struct upstream_base *upstream, const struct inject *inject,
                           struct policy *policy, struct secret *key)
{
    int r;

    rt->key = key;
    rt->policy = policy;
    if (!route_name_valid(name, strlen(name)))
        return ERR_INVALID;
    for (struct inv_route *o = inv->routes; o < rt; o++) {
        if (strcmp(o->name, name) == 0)
            return ERR_INVALID; /* the names pick the route: two alike would be ambiguous */
    }
    if ((r = secret_validate_key(secret_data(key), secret_len(key))) != 0)
        return r;
    snprintf(rt->name, sizeof(rt->name), "%s", name);
    rt->upstream = *upstream;
    rt->inject = *inject;
    /* Known once: each request then copies the key into its URL instead of encoding it
     * byte by byte (CG). */
    rt->key_unreserved = rewrite_key_is_unreserved(secret_data(key), secret_len(key));
    return log_redact_add(key);
}

_Static_assert(ROUTE_MAX <= SCRUB_KEYS_MAX, "one scrubber masks every route's key");

/* The routes from opts and the default key (transferred, also on failure). */
static int inv__routes_init(struct broker_invocation *inv,
                            const struct broker_invocation_options *opts, struct secret *key)
{
    struct scrub_key keys[ROUTE_MAX];
    size_t total = (key != NULL) + opts->nroutes;
    int r;

    if (total == 0 || total > ROUTE_MAX) {
        secret_free(key);
        policy_free(opts->policy);
        return ERR_INVALID;
    }
    if ((inv->routes = calloc(total, sizeof(*inv->routes))) == NULL) {
        secret_free(key);
        policy_free(opts->policy);
        return ERR_NOMEM;
    }
    if (key != NULL) {
        inv->nroutes++;
        inv->default_route = &inv->routes[0];
        if ((r = inv__route_init(inv, &inv->routes[0], ROUTE_DEFAULT_NAME, &opts->upstream,
                                 &opts->inject, opts->policy, key)) != 0)
            return r;
    } else {
        policy_free(opts->policy);
    }
    for (size_t i = 0; i < opts->nroutes; i++) {
        const struct broker_route *br = &opts->routes[i];
        struct inv_route *rt = &inv->routes[inv->nroutes++];
        struct policy *policy = NULL;
        struct secret *copy = NULL;
        char why[160];

        if ((r = route_policy_new(br->allow, &policy, why, sizeof(why))) != 0 ||
            (r = secret_from(secret_data(br->key), secret_len(br->key), &copy)) != 0) {
            policy_free(policy);
            return r;
        }
        if ((r = inv__route_init(inv, rt, br->name, br->upstream, br->inject, policy, copy)) != 0)
            return r;
    }
    for (size_t i = 0; i < inv->nroutes; i++) {
        keys[i].data = secret_data(inv->routes[i].key);
        keys[i].len = secret_len(inv->routes[i].key);
    }
    return opts->scrub ? scrubber_new_keys(keys, inv->nroutes, &inv->scrubber) : 0;
}

/* The 421's message: no route answers to the request's host; these do. */
static int inv__misdirected_init(struct broker_invocation *inv)
{
    struct buf *b = buf_new(512, 0);
    int r = 0;

    if (b == NULL)
        return ERR_NOMEM;
    r = buf_putf(b, "no route for this host: the routes are ");
    for (size_t i = 0; r == 0 && i < inv->nroutes; i++) {
        if (buf_len(b) + strlen(inv->routes[i].name) + 24 > 360) {
            r = buf_putf(b, ", ...");
            break;
        }
        r = buf_putf(b, "%s%s" ROUTE_HOST_SUFFIX, i > 0 ? ", " : "", inv->routes[i].name);
    }
    if (r == 0 && inv->default_route != NULL)
        r = buf_putf(b, " (any other host: %s)", inv->default_route->name);
    if (r == 0 && (inv->misdirected = strdup(buf_cstr(b))) == NULL)
        r = ERR_NOMEM;
    buf_free(b);
    return r;
}

int broker_invocation_new(struct broker *b, const struct broker_invocation_options *opts,
                          struct secret *key, int *child_fd, struct broker_invocation **out)
{
    struct broker_invocation *inv = NULL;
    int sv[2] = {-1, -1}, r;

    *out = NULL;
    *child_fd = -1;
    if (b->closing) {
        r = ERR_CLOSED;
        goto fail;
    }
    if ((inv = calloc(1, sizeof(*inv))) == NULL) {
        r = ERR_NOMEM;
        goto fail;
    }
    inv->broker = b;
    inv->limits = opts->limits;
    inv->on_released = opts->on_released;
    inv->data = opts->data;
    inv->dial_tokens = opts->limits.max_dials_per_sec;
    inv->dial_refill_ms = uv_now(b->loop);
    if (opts->label != NULL)
        snprintf(inv->label, sizeof(inv->label), "%s", opts->label);
    else
        snprintf(inv->label, sizeof(inv->label), "inv-%llu",
                 (unsigned long long)++b->next_invocation);
    r = inv__routes_init(inv, opts, key);
    key = NULL; /* transferred, also on failure */
    if (r != 0 || (r = inv__misdirected_init(inv)) != 0)
        goto fail_inv;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        r = -errno;
        goto fail_inv;
    }
    r = ctl_open(b->loop, sv[0], &inv__ctl_ops,
                 &(struct ctl_limits){opts->limits.max_waiting_dials, opts->limits.dial_wait_ms},
                 inv, &inv->ctl);
    sv[0] = -1; /* transferred (closed by ctl_open on failure) */
    if (r != 0)
        goto fail_inv;
    LIST_INSERT_HEAD(&b->invocations, inv, link);
    *child_fd = sv[1];
    *out = inv;
    return 0;
fail_inv:
    if (sv[1] >= 0)
        close(sv[1]);
    inv__free(inv);
    return r;
fail:
    policy_free(opts->policy);
    secret_free(key);
    return r;
}

void broker_invocation_end(struct broker_invocation *inv)
{
    struct conn *c;

    if (inv == NULL || inv->ended)
        return;
    inv->ended = true;
    ctl_close(inv->ctl);
    inv->ctl = NULL;
    /* conn_abort unlinks c from inv->conns. */
    while ((c = LIST_FIRST(&inv->conns)) != NULL)
        conn_abort(c);
    inv__maybe_release(inv);
}

void broker_invocation_stats(const struct broker_invocation *inv,
                             struct broker_invocation_stats *out)
{
    *out = inv->stats;
    out->live_conns = inv->nconns;
}
