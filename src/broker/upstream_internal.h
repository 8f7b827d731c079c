/*
 * upstream_internal.h - what upstream.c (the pool: origins, connections, dispatch) and
 * upstream_req.c (one request: its callbacks, timers, decoding, retry) share. Not for
 * other modules: their interface is upstream.h.
 */
#ifndef CREDBROKER_UPSTREAM_INTERNAL_H
#define CREDBROKER_UPSTREAM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <uv.h>

#include "deadline.h"
#include "h1conn.h"
#include "h2conn.h"
#include "http1.h"
#include "upstream.h"
#include "webproxy.h"

#define UPSTREAM_HOST_MAX 256
#define UPSTREAM_DECODE_CHUNK (16 * 1024)  /* decoded bytes offered to the child at once */
#define UPSTREAM_MAX_HEADERS HTTP1_MAX_RESPONSE_HEADERS

struct net_tls_ctx;

#define UPSTREAM_METHOD_MAX 32 /* with its NUL */
struct net_connect;
struct net_conn;
struct content_decoder;

/* One scheme://host:port the broker talks to, and its connections. */
struct origin {
    struct upstream *u;
    LIST_ENTRY(origin) link;
    bool tls;
    char host[UPSTREAM_HOST_MAX]; /* as in the URL, without brackets */
    uint16_t port;
    char authority[UPSTREAM_HOST_MAX + 8]; /* host[:port] for Host / :authority */
    LIST_HEAD(, pconn) conns;
    /* Its idle HTTP/1.1 connections, the one idle last first (the next request takes the
     * warmest; a surplus ages out at the far end): a request takes one, and one goes
     * idle, without a walk over every connection. */
    TAILQ_HEAD(, pconn) idle;
    TAILQ_HEAD(, upstream_req) waiting;
    unsigned nconns, nconnecting;
    unsigned nidle; /* on idle */
    unsigned nh2;   /* HTTP/2 connections among conns, not dropped */
    bool speaks_h2; /* its last connection chose HTTP/2: wait for it rather than open more */
};

enum pconn_kind { PCONN_CONNECTING, PCONN_H1, PCONN_H2 };

/* One pooled connection. */
struct pconn {
    struct origin *o;
    LIST_ENTRY(pconn) link;
    TAILQ_ENTRY(pconn) idle_link; /* on o->idle while on_idle */
    bool on_idle;
    enum pconn_kind kind;
    struct net_connect *connecting;
    struct net_conn *nc;
    struct h1conn *h1;
    struct h2conn *h2;
    struct deadline idle; /* closes it after the idle timeout (and pings an idle HTTP/2
                           * one); its timer's close frees the pconn */
    uint64_t idle_since;  /* loop time it became idle */
    unsigned active;      /* requests on it */
    unsigned served;
    bool dead;
    bool nc_gone;         /* the transport ended: nothing more is written to it */
};

struct upstream {
    uv_loop_t *loop;
    struct upstream_options opts;
    struct net_tls_ctx *tls; /* made for the first TLS connect (upstream_new) */
    char *cacert;            /* for it: opts.cacert, copied; NULL = the system's CAs */
    struct webproxy proxy;  /* HTTPS_PROXY, NO_PROXY, read at start */
    LIST_HEAD(, origin) origins;
    LIST_HEAD(, upstream_req) reqs;
    size_t active;
    bool closing;
    /* The views handed to on_head without Content-Encoding / Content-Length: here, not on
     * the stack (500 of them). */
    struct http1_header head_views[UPSTREAM_MAX_HEADERS];
    /* Where every HTTP/2 connection gathers its frames for a write (h2conn_transport). */
    uint8_t h2_gather[H2CONN_GATHER];
};

struct upstream_req {
    struct upstream *u;
    struct origin *o;
    struct pconn *pc;           /* while it runs on one */
    LIST_ENTRY(upstream_req) link;       /* on u->reqs */
    TAILQ_ENTRY(upstream_req) qlink;     /* on o->waiting while queued */
    bool queued;
    bool held;                  /* a body's first bytes not known yet: not queued */
    /* what to send (the path and headers may hold the key: wiped when freed); path and
     * the header lines are copied into one block (block_len bytes) with headers[] */
    char method[UPSTREAM_METHOD_MAX];
    char *path;
    char **headers;
    size_t nheaders;
    void *block;
    size_t block_len;
    bool has_body;
    int64_t body_len;
    const struct upstream_req_ops *ops;
    void *ud;
    struct deadline timer;      /* response-head timeout, then stall timeout */
    uint64_t head_timeout_ms, stall_timeout_ms, start_ms, head_ms;
    struct h1_exchange *hx;
    struct h2_stream *hs;
    bool head_done;
    bool body_read;             /* bytes of the request body were taken: not replayable */
    bool fresh_only;            /* a retry: only on a connection made for it */
    unsigned attempts;          /* times it was handed to a connection */
    bool finished;              /* on_done ran, or cancelled */
    /* response decoding (Content-Encoding), offered to the child in pieces */
    struct content_decoder *dec;
    uint8_t *dec_out;           /* UPSTREAM_DECODE_CHUNK bytes */
    size_t dec_off, dec_len;    /* decoded bytes not yet taken by the child */
    size_t skip;                /* of the encoded chunk offered again after a pause */
    bool dec_end;
};

/* upstream.c: the pool */
void upstream__dispatch(struct origin *o);
void upstream__release(struct upstream_req *r);       /* r leaves its connection */
/* upstream_req.c: the request side */
int upstream__req_new(struct upstream *u, struct origin *o, const struct upstream_req_spec *spec,
                      const char *path, const struct upstream_req_ops *ops, void *ud,
                      struct upstream_req **out) __attribute__((warn_unused_result));
extern const struct h1_exchange_ops upstream__h1_ops;
extern const struct h2_stream_ops upstream__h2_ops;
void upstream__req_fail(struct upstream_req *r, int result, const char *detail);

#endif
