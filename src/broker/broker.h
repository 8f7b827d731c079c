/*
 * broker.h - the broker as a library: one event loop serves any number of
 * invocations at once, each with its own key, control channel and connections,
 * all sharing one upstream connection pool.
 *
 * An invocation is one command's authority: broker_invocation_new() returns the
 * child's end of a fresh control channel (to be placed at fd 3 of the command),
 * and broker_invocation_end() takes the authority back: dials stop, every
 * connection closes, every upstream request in flight is cancelled.
 *
 * Not for: starting the command (src/exec), reading keys from files (src/cli).
 */
#ifndef CREDBROKER_BROKER_H
#define CREDBROKER_BROKER_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "rewrite.h"
#include "route.h"

struct broker;
struct broker_invocation;
struct policy;
struct secret;
struct audit;

/* Per-invocation limits and timeouts (DESIGN.md sections 2 and 4). */
struct broker_limits {
    unsigned max_conns;          /* live brokered connections (64) */
    unsigned max_dials_per_sec;  /* dial rate (100) */
    /* A dial over max_conns or the rate waits for a slot, in order, instead of failing; it
     * is refused (0xFF) only when max_waiting_dials already wait or after dial_wait_ms. */
    unsigned max_waiting_dials;  /* (1024) */
    uint64_t dial_wait_ms;       /* (10 s; 0: refuse at once, as before waiting existed) */
    uint64_t max_body;           /* request body bytes (64 MiB) */
    uint64_t head_timeout_ms;    /* read a request head (10 s) */
    uint64_t idle_timeout_ms;    /* keep-alive idle (60 s) */
    uint64_t response_head_timeout_ms; /* upstream response head (60 s) */
    uint64_t stall_timeout_ms;   /* a transfer with no progress (120 s) */
};

void broker_limits_default(struct broker_limits *l);

struct broker_options {
    const char *cacert;          /* NULL: system CAs */
    uint64_t connect_timeout_ms; /* upstream connect (10 s) */
    struct audit *audit;         /* NULL: no audit log; not owned */
};

/* Returns 0 or a negative code. */
int broker_new(uv_loop_t *loop, const struct broker_options *opts, struct broker **out);
/* Ends every invocation still open and closes the upstream pool; the memory is
 * released once the loop has run the close callbacks. Accepts NULL. */
void broker_close(struct broker *b);

/*
 * An API an invocation brokers besides its default route (issue 21), reached at
 * http://NAME.broker.local. Read during broker_invocation_new only: the invocation keeps
 * copies (its own key in the arena, its own policy).
 */
struct broker_route {
    const char *name;                     /* route_name_valid, unique in the invocation */
    const struct upstream_base *upstream;
    const struct inject *inject;
    const char *allow;                    /* route_policy_new's "METHOD GLOB;..."; NULL: all */
    const struct secret *key;
};

struct broker_invocation_options {
    const char *label;           /* shown in logs and the audit ("inv-1" if NULL) */
    /* The default route, ROUTE_DEFAULT_NAME: the key given to broker_invocation_new. A Host
     * outside .broker.local reaches it too, as before routes. */
    struct upstream_base upstream;
    struct inject inject;
    struct policy *policy;       /* NULL = allow all; ownership passes to the invocation */
    /* More routes: at most ROUTE_MAX - 1 of them. */
    const struct broker_route *routes;
    size_t nroutes;
    struct broker_limits limits;
    bool scrub;                  /* mask every route's key in every response (default on) */
    /* Called once when an ended invocation has released everything. May be NULL. */
    void (*on_released)(void *data);
    void *data;
};

/*
 * Opens an invocation. key is the default route's: validated, and ownership passes to the
 * invocation (also on failure: it is freed); NULL for no default route (then opts->routes
 * must name at least one, and a request to a Host outside .broker.local gets 421). Every
 * route's key is validated, route names must be unique (ERR_INVALID otherwise). *child_fd receives the child's end of the
 * control channel (SOCK_SEQPACKET, close-on-exec): the caller places it at fd 3 of
 * the command and closes its own copy right after the spawn. Returns 0 or a
 * negative code; on failure nothing is left open.
 */
int broker_invocation_new(struct broker *b, const struct broker_invocation_options *opts,
                          struct secret *key, int *child_fd, struct broker_invocation **out);

/* Tears the invocation down (idempotent); memory is released asynchronously,
 * then on_released runs. */
void broker_invocation_end(struct broker_invocation *inv);

struct broker_invocation_stats {
    uint64_t dials, refusals, requests;
    unsigned live_conns;
};
void broker_invocation_stats(const struct broker_invocation *inv,
                             struct broker_invocation_stats *out);

/* True if this build and platform can run the broker (Linux, not -Dbroker=disabled). */
bool broker_supported(void);

#endif
