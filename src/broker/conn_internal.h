/*
 * conn_internal.h - what the two halves of a brokered connection share: conn.c
 * (the request: reading the child, parsing, the body upstream, life cycle) and
 * conn_response.c (everything written to the child: staged output, the broker's
 * own errors, and the upstream's response through its callbacks). Nothing else
 * includes it; conn.h is the module's interface.
 */
#ifndef CREDBROKER_CONN_INTERNAL_H
#define CREDBROKER_CONN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <uv.h>

#include "buf.h"
#include "chunked.h"
#include "deadline.h"
#include "http1.h"
#include "netbatch.h"
#include "response.h"
#include "route.h"
#include "scrub.h"
#include "upstream.h"

struct broker_invocation;
struct inv_route;

#define CONN_IN_MAX (HTTP1_MAX_HEAD + 64 * 1024) /* head plus one read of what follows */
#define CONN_BODY_HIGH (256 * 1024)              /* stop reading the child's body above this */
#define CONN_WRITE_HIGH (512 * 1024) /* pause the upstream above this many unwritten bytes */
/* Staging buffer sizes: a small response fits the first; a body that outgrows it gets the
 * second at once (CONN_WRITE_HIGH plus the upstream's largest piece), not a doubling series of
 * copies. */
#define CONN_STAGE_SMALL 4096
#define CONN_STAGE_STREAM (1024 * 1024)
#define CONN_URL_MAX (HTTP1_MAX_HEAD + 16 * 1024)
#define CONN_HEAD_OUT_MAX (HTTP1_MAX_HEAD * 4) /* a response head as forwarded */
#define CONN_KEEP 4096 /* a per-connection buffer bigger than this is freed between requests */
#define CONN_SPARES 8  /* closed connections an invocation keeps for its next dials */
#define CONN_METHOD_MAX 32
#define CONN_REFUSED_DRAIN_MAX (256 * 1024) /* body bytes read and dropped after a refusal */

enum conn_state { CONN_HEAD, CONN_BODY, CONN_WAIT };

struct conn_request {
    char method[CONN_METHOD_MAX + 1];
    const struct inv_route *route; /* the route the request's host names; NULL until known */
    bool has_target;        /* conn->target is this request's */
    struct buf *audit_path; /* NULL until conn__audit_path makes it */
    int minor;
    bool keep_alive;
    bool is_head;
    bool has_body;
    enum http1_body body_kind;
    uint64_t body_left; /* HTTP1_BODY_LENGTH: bytes still to come */
    struct chunked_decoder chunked;
    bool body_done;     /* the whole body has been received from the child */
    bool body_eof_sent; /* the upstream request was told the body ended */
    struct buf *body;   /* conn->body: received, not yet taken by the upstream request */
    uint64_t bytes_in, bytes_out;
    struct upstream_req *ureq;
    bool head_sent;
    int status;
    enum http1_framing framing;
    uint64_t content_length; /* HTTP1_FRAME_LENGTH: what the child was told */
    uint64_t body_received;  /* response body bytes from the upstream */
    struct scrub_stream *scrub;
    uint64_t start_ms, upstream_ms;
    bool active;
};

struct conn {
    struct broker_invocation *inv;
    LIST_ENTRY(conn) link; /* on inv->conns, while linked */
    uint64_t id;
    /* The broker's end of the child's socketpair (AF_UNIX). A uv_tcp_t, not a uv_pipe_t:
     * libuv's stream code is the same for both, and uv_tcp_open makes one system call
     * (FIONBIO) where uv_pipe_open makes two (F_GETFL first): a tenth of a fresh dial's
     * calls, on a machine where each costs more than the work it does (bench W1). */
    uv_tcp_t pipe;
    struct deadline timer; /* idle, head, drain or closing: conn__update_timer */
    uv_prepare_t flush;  /* runs before the loop next waits, while bytes are staged */
    struct netbatch_item batch; /* the staged bytes' place in the turn's writes */
    struct conn_write *batched; /* given to the batch's write, not yet told the result */
    int open_handles;
    enum conn_state state;
    struct buf *in;      /* bytes from the child not yet parsed or moved to the body */
    /* Scrubbed response bytes about to be framed. Not a BUF_WIPE buffer: it only ever holds
     * what the child is sent (a match is written as '*', never copied first), and wiping it
     * on every reset cost as much as the scrubbing itself (callgrind, 1 GiB download). */
    struct buf *scratch;
    struct conn_request req;
    /* Kept from one request to the next, emptied instead of freed (callgrind: an
     * allocation and a free each, every request): the child's request-target, from which
     * the audit path is made only when something shows it; the upstream URL and header
     * lines (BUF_WIPE: they hold the key; wiped as soon as the upstream request has them);
     * the request body; the last response's scrub stream. */
    struct buf *target, *url, *lines, *body;
    struct scrub_stream *scrub_spare;
    /* The last request's host, as sent, and the route it named (conn__route). */
    char route_host[ROUTE_NAME_MAX + sizeof(ROUTE_HOST_SUFFIX) + 7]; /* ":65535" */
    size_t route_host_len;
    const struct inv_route *route;
    bool route_cached;
    struct conn *next_spare; /* on inv->spare_conns, once closed */
    size_t write_pending; /* bytes staged or handed to uv_write and not yet written */
    struct conn_write *staged; /* this loop turn's output, not yet handed to uv_write */
    struct conn_write *spare;  /* a written stream-sized buffer kept while a body streams */
    bool reading;
    bool read_eof; /* the child will send nothing more */
    bool closing;
    bool close_when_written; /* graceful close once write_pending drops to 0 */
    /* The response is out, the child is still sending its body: read it and drop it, so the
     * child's send does not fail before it reads the answer (see conn__finish_response). */
    bool draining;
    bool head_timer_running;
    bool linked; /* on inv->conns */
};

struct conn_write {
    uv_write_t req;
    struct conn *conn;
    size_t len, cap;
    uint8_t data[];
};

/* conn.c */
void conn__process(struct conn *c);
void conn__update_reading(struct conn *c);
void conn__close(struct conn *c);
void conn__request_reset(struct conn *c);
/* The request's path and query as the audit shows them, the credential as [broker];
 * "" when there is none yet. */
const char *conn__audit_path(struct conn *c);
/* Ends the request's life in the audit exactly once. */
void conn__request_done(struct conn *c, const char *outcome);

/* conn_response.c */
int conn__write(struct conn *c, const void *data, size_t len);
/* Sets up c->batch for c->pipe (a new connection, or a spare's new life). */
void conn__batch_init(struct conn *c);
/* Closes once what is staged or queued has been written; reads nothing more meanwhile. */
void conn__close_after_writes(struct conn *c);
/* Ends the request in the audit with outcome and closes now, mid-response: the child sees
 * the response cut short (what this turn staged is tried once, without waiting). */
void conn__cut(struct conn *c, const char *outcome);
void conn__send_error(struct conn *c, int status, const char *message, const char *outcome);
/* The broker's own error response, staged, the request ended in the audit; the connection
 * stays as it is. Returns 0, or -1 when it could not be staged (the connection is aborted). */
int conn__stage_error(struct conn *c, int status, const char *message, const char *outcome);
extern const struct upstream_req_ops conn_upstream_ops;

#endif
