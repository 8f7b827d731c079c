/*
 * broker_internal.h - the broker's and an invocation's state, shared by the
 * modules of src/broker only (broker.c, ctl.c, conn.c). Nothing outside
 * src/broker includes this.
 */
#ifndef CREDBROKER_BROKER_INTERNAL_H
#define CREDBROKER_BROKER_INTERNAL_H

#include <sys/queue.h>

#include "broker.h"
#include "upstream.h"

struct conn;
struct ctl;
struct scrubber;

struct broker {
    uv_loop_t *loop;
    struct upstream *upstream;
    struct audit *audit;
    LIST_HEAD(, broker_invocation) invocations;
    uint64_t next_invocation;
    bool closing;
    bool free_when_empty;            /* closed: the last released invocation frees it */
};

/* One route of an invocation: where its requests go, with which key, under which rules. */
struct inv_route {
    char name[ROUTE_NAME_MAX + 1];
    struct upstream_base upstream;
    struct inject inject;
    struct policy *policy;           /* NULL: everything allowed */
    struct secret *key;
    bool key_unreserved;             /* rewrite_key_is_unreserved: the URL takes it as it is */
};

struct broker_invocation {
    struct broker *broker;
    LIST_ENTRY(broker_invocation) link; /* on broker->invocations */
    char label[64];
    struct inv_route *routes;        /* the default route first, when there is one */
    size_t nroutes;
    struct inv_route *default_route; /* NULL: a Host outside .broker.local is misdirected */
    char *misdirected;               /* the 421's message: which routes there are */
    struct broker_limits limits;
    struct scrubber *scrubber;       /* every route's key; NULL when scrubbing is off */
    struct ctl *ctl;
    LIST_HEAD(, conn) conns;         /* live connections */
    unsigned nconns;                 /* connections not yet freed */
    struct conn *spare_conns;        /* closed ones kept for the next dials (conn.c) */
    unsigned nspare;
    uint64_t next_conn_id;
    /* dial rate limit: a token bucket refilled at max_dials_per_sec */
    double dial_tokens;
    uint64_t dial_refill_ms;
    struct broker_invocation_stats stats;
    bool ended;
    void (*on_released)(void *data);
    void *data;
};

/* conn.c calls this when a connection has released everything. */
void broker__conn_released(struct broker_invocation *inv);

/*
 * The route a request's Host (or absolute-form authority) host[0..len) names: NAME.broker.local
 * for the route NAME, anything outside .broker.local for the default route. NULL when no
 * route answers to it (421).
 */
const struct inv_route *broker__route_for_host(const struct broker_invocation *inv,
                                               const char *host, size_t len);

#endif
