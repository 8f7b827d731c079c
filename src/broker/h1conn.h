/*
 * h1conn.h - one HTTP/1.1 client connection to the upstream, over any byte transport
 * (issue 18; DESIGN.md section 3).
 *
 * The connection carries one exchange at a time (no pipelining): it writes the request
 * head and body through the transport, and turns what the transport feeds back into the
 * exchange's head and body callbacks, with http1_parse_response and the chunked decoder.
 * It reads nothing itself and owns no socket, so it runs over the TLS stream (src/net),
 * plain TCP, or a test's buffer alike. Timers and retries are the pool's (upstream.c).
 *
 * Backpressure both ways: the request body is pulled from read_body only while the
 * transport's queue is under H1CONN_SEND_HIGH; response body bytes the exchange will not
 * take yet (H1_PAUSE) are kept, and the transport is asked to stop reading until
 * h1_exchange_resume. So at most one transport read is ever held per connection.
 *
 * After an exchange the connection is reusable only when the framing allows it (a
 * Content-Length or chunked body read to its end, no "Connection: close", the whole
 * request sent); otherwise it reports itself closed and the owner drops it.
 *
 * Re-entrancy: every callback may call h1_exchange_cancel and h1conn_free on its own
 * connection; the free is then deferred until the outermost call into the connection
 * returns. No callback runs from inside h1conn_submit, h1_exchange_resume or
 * h1_exchange_cancel: deliveries they cause come from a loop turn of their own.
 */
#ifndef CREDBROKER_H1CONN_H
#define CREDBROKER_H1CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "http1.h"

#define H1_PAUSE (-1)
/* Queued bytes in the transport above which no more request body is produced. */
#define H1CONN_SEND_HIGH (256 * 1024)

struct h1conn;
struct h1_exchange;

/* How bytes leave, and how reading is paused. */
struct h1conn_transport {
    int (*send)(void *t, const uint8_t *data, size_t len); /* copies; 0 or negative */
    size_t (*pending)(void *t);                          /* bytes queued, not yet written */
    void (*read_pause)(void *t, bool pause);             /* stop / restart feeding us */
};

struct h1conn_events {
    /* The exchange ended and the connection may carry another. */
    void (*on_idle)(struct h1conn *c, void *ud);
    /* The connection is of no more use (closed by the peer, a protocol error, framing that
     * cannot be reused): the owner frees it and closes its transport. Once. */
    void (*on_closed)(struct h1conn *c, const char *reason, void *ud);
};

/* A request as the upstream gets it. Strings are borrowed for the duration of
 * h1conn_submit only: the head is written at once. */
struct h1_request {
    const char *method, *authority, *path; /* path: origin-form, with its query */
    /* "Name: value" lines, passed on as they are (an empty value too); Host,
     * Content-Length, Transfer-Encoding and Connection are the connection's own. */
    const char *const *headers;
    size_t nheaders;
    bool has_body;
    int64_t body_len; /* -1: unknown, sent chunked */
};

struct h1_exchange_ops {
    /* The final response head (1xx heads are skipped); views valid during the call. */
    void (*on_head)(void *ud, int status, const struct http1_header *headers, size_t n);
    /* Body bytes: 0 taken, H1_PAUSE to be called again with them after h1_exchange_resume. */
    int (*on_body)(void *ud, const uint8_t *data, size_t len);
    /* Request body: up to max bytes into dst; the count, 0 at its end, or H1_PAUSE (call
     * h1_exchange_resume once there are some). */
    ssize_t (*read_body)(void *ud, uint8_t *dst, size_t max);
    /* The end, once, never after a cancel: 0, or UPSTREAM_ERR_CONNECT (nothing of the
     * response came) / UPSTREAM_ERR_TRANSFER (it broke off after the head) with a detail.
     * retryable: nothing of the response arrived on a connection that had served an
     * exchange before (the peer may have closed it while idle). */
    void (*on_done)(void *ud, int result, const char *detail, bool retryable);
};

/* A connection over transport tr (t is its first argument). Returns 0 or ERR_NOMEM. */
int h1conn_new(uv_loop_t *loop, const struct h1conn_transport *tr, void *t,
               const struct h1conn_events *ev, void *ud, struct h1conn **out)
    __attribute__((warn_unused_result));
/* Frees c (a live exchange gets no more callbacks). The owner closes its transport.
 * Accepts NULL. */
void h1conn_free(struct h1conn *c);

/* Bytes from the transport. */
void h1conn_feed(struct h1conn *c, const uint8_t *data, size_t len);
/* The transport's queue went down: more request body may be produced. */
void h1conn_on_drain(struct h1conn *c);
/* The transport ended (reason NULL: a clean EOF). A close-delimited body ends well here. */
void h1conn_transport_closed(struct h1conn *c, const char *reason);

/* Response body bytes the upstream still owes the exchange and has not sent yet, as far
 * as the connection knows (a Content-Length body's remainder; 0 for any other framing, or
 * between exchanges): what the transport may wait for in batches (net_conn_expect). */
uint64_t h1conn_due(const struct h1conn *c);
/* Whether an exchange may be submitted now: open and between exchanges. */
bool h1conn_idle(const struct h1conn *c);
/* Starts an exchange (h1conn_idle must be true). Writes its head at once. Returns 0 and
 * *out, or ERR_NOMEM / ERR_INVALID (a header line with CR, LF or NUL, or not idle). */
int h1conn_submit(struct h1conn *c, const struct h1_request *rq, const struct h1_exchange_ops *ops,
                  void *ud, struct h1_exchange **out) __attribute__((warn_unused_result));
/* Wakes a paused side (body delivery or body reading). */
void h1_exchange_resume(struct h1_exchange *x);
/* Ends the exchange without callbacks. A connection whose exchange was cut short is not
 * reused: on_closed follows (from a loop turn of its own). */
void h1_exchange_cancel(struct h1_exchange *x);

#endif
