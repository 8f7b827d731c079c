/*
 * upstream.h - HTTP(S) requests to the real API with the broker's own client, on the
 * libuv loop (DESIGN.md section 3): TLS and connects from src/net, HTTP/2 (h2conn.h)
 * or HTTP/1.1 (h1conn.h) as ALPN picks.
 *
 * One struct upstream per process: one pool of connections keyed by origin, shared by
 * every invocation (warm TLS and HTTP/2 connections), and the proxy settings of the
 * environment (HTTPS_PROXY, NO_PROXY).
 *
 * A request streams both ways. The request body is pulled through read_body() and the
 * response body pushed through on_body(); either side can pause (the other end is slow)
 * and later resume the transfer. A compressed response is decoded on the way (the
 * caller sees it without Content-Encoding or Content-Length). This module knows nothing
 * about keys or the child: it moves bytes and reports what happened.
 */
#ifndef CREDBROKER_UPSTREAM_H
#define CREDBROKER_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "http1.h"

struct upstream;
struct upstream_req;

struct upstream_options {
    const char *cacert;          /* PEM bundle to verify with; NULL = system CAs */
    uint64_t connect_timeout_ms; /* resolve, TCP, a proxy's CONNECT and the TLS handshake */
};

/* Returns 0 or a negative code: net_tls_cacert_check's for a cacert that cannot serve
 * (netconn.h; OpenSSL itself loads it at the first TLS connect, and a bundle it refuses
 * then fails the requests waiting for it), ERR_NOMEM. Free with upstream_close() once
 * the loop is idle. */
int upstream_new(uv_loop_t *loop, const struct upstream_options *opts, struct upstream **out);
/* Cancels every request (no callbacks) and closes every connection; handles close
 * asynchronously. */
void upstream_close(struct upstream *u);

#define UPSTREAM_PAUSE (-1) /* from on_body / read_body: try again after resume */

struct upstream_req_ops {
    /* The final (non-1xx) response head. headers[] in received order, OWS trimmed; the
     * views are valid only during the call. */
    void (*on_head)(void *ud, int status, const struct http1_header *headers, size_t n);
    /* Response body bytes: return 0 when taken, UPSTREAM_PAUSE to be called again with the
     * same bytes after upstream_req_resume(). */
    int (*on_body)(void *ud, const uint8_t *data, size_t len);
    /* Request body: copy up to max bytes into dst and return the count, 0 at the end of the
     * body, or UPSTREAM_PAUSE when no bytes are available yet. */
    ssize_t (*read_body)(void *ud, uint8_t *dst, size_t max);
    /* The transfer ended: 0 ok, or a negative code (see upstream_req_error_status). Called once,
     * never after upstream_req_cancel(). The request is freed after this returns. */
    void (*on_done)(void *ud, int result, const char *detail);
};

/* What to send. Strings are copied by curl; url and headers may hold the key: the
 * caller wipes its own copies after upstream_req_start returns. */
struct upstream_req_spec {
    const char *method;         /* NUL-terminated */
    const char *url;            /* full URL */
    const char *const *headers; /* "Name: value" lines */
    size_t nheaders;
    bool has_body;
    int64_t body_len; /* -1 = unknown (chunked upstream) */
    uint64_t response_head_timeout_ms;
    uint64_t stall_timeout_ms;
};

/* Result codes of on_done besides 0. */
enum {
    UPSTREAM_ERR_CONNECT = -9100, /* could not connect / TLS failed / reset before the head: 502 */
    UPSTREAM_ERR_HEAD_TIMEOUT = -9101, /* no response head in time: 504 */
    UPSTREAM_ERR_STALLED = -9102,      /* no progress for stall_timeout_ms */
    UPSTREAM_ERR_TRANSFER = -9103,     /* failed after the head */
};

/* Starts a request. Returns 0 and *out, or a negative code (no callbacks then). */
int upstream_req_start(struct upstream *u, const struct upstream_req_spec *spec,
                       const struct upstream_req_ops *ops, void *ud, struct upstream_req **out);
/* Stops the transfer and frees the request; no callback runs after this. Accepts NULL. */
void upstream_req_cancel(struct upstream_req *r);
/* Wakes a paused side. Safe to call when not paused. on_body may run before this returns.
 * A request with a body is not sent before the first call: the caller makes it once body
 * bytes (or the body's end) are there, so an upstream never sees the head of a request
 * whose body is then refused. */
void upstream_req_resume(struct upstream_req *r);
/* Milliseconds from start to the response head (0 before it). */
uint64_t upstream_req_head_ms(const struct upstream_req *r);
/* Number of requests in flight (for tests and the debug dump). */
size_t upstream_active(const struct upstream *u);

#endif
