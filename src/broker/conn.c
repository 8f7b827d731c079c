/*
 * conn.c - a brokered connection. See conn.h.
 *
 * States of a connection:
 *   HEAD   waiting for (the rest of) a request head; idle or head timeout runs
 *   BODY   the request is upstream and its body is still arriving from the child
 *   WAIT   the request is complete; its response is awaited or streaming back
 * Requests are served one after the other (sequential pipelining): bytes of the
 * next request wait in `in` until the current response is done.
 *
 * Backpressure both ways: reading from the child stops while the upload buffer
 * is full (libcurl pulls from it), and the upstream transfer pauses while too
 * many response bytes wait to be written to the child.
 *
 * Ownership: the conn owns its pipe and timer handles, its buffers, the upstream
 * request in flight and the scrub stream. It is freed only once both handles'
 * close callbacks have run; then the invocation is told (broker__conn_released).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "audit.h"
#include "broker_internal.h"
#include "buf.h"
#include "chunked.h"
#include "conn.h"
#include "err.h"
#include "http1.h"
#include "log.h"
#include "policy.h"
#include "reqheaders.h"
#include "response.h"
#include "rewrite.h"
#include "scrub.h"
#include "secret.h"

#define CONN_IN_MAX (HTTP1_MAX_HEAD + 64 * 1024) /* head plus one read of what follows */
#define CONN_BODY_HIGH (256 * 1024)              /* stop reading the child's body above this */
#define CONN_WRITE_HIGH (512 * 1024) /* pause the upstream above this many unwritten bytes */
/* Staging buffer sizes: a small response fits the first; a body that outgrows it gets the
 * second at once (CONN_WRITE_HIGH plus libcurl's largest piece), not a doubling series of
 * copies. */
#define CONN_STAGE_SMALL 4096
#define CONN_STAGE_STREAM (1024 * 1024)
#define CONN_URL_MAX (HTTP1_MAX_HEAD + 16 * 1024)
#define CONN_METHOD_MAX 32

enum conn_state { CONN_HEAD, CONN_BODY, CONN_WAIT };

struct conn_request {
    char method[CONN_METHOD_MAX + 1];
    struct buf *audit_path; /* path and query with the credential as [broker] */
    int minor;
    bool keep_alive;
    bool is_head;
    bool has_body;
    enum http1_body body_kind;
    uint64_t body_left; /* HTTP1_BODY_LENGTH: bytes still to come */
    struct chunked_decoder chunked;
    bool body_done;     /* the whole body has been received from the child */
    bool body_eof_sent; /* libcurl was told the body ended */
    struct buf *body;   /* received, not yet taken by libcurl */
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
    struct conn *prev, *next;
    uint64_t id;
    uv_pipe_t pipe;
    uv_timer_t timer;
    uv_prepare_t flush;  /* runs before the loop next waits, while bytes are staged */
    int open_handles;
    enum conn_state state;
    struct buf *in;      /* bytes from the child not yet parsed or moved to the body */
    /* Scrubbed response bytes about to be framed. Not a BUF_WIPE buffer: it only ever holds
     * what the child is sent (a match is written as '*', never copied first), and wiping it
     * on every reset cost as much as the scrubbing itself (callgrind, 1 GiB download). */
    struct buf *scratch;
    struct conn_request req;
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

static void conn__process(struct conn *c);
static void conn__update_reading(struct conn *c);
static void conn__close(struct conn *c);

/* ---- writing to the child ---- */

/* What follows the end of a write: w written (status 0) or failed. */
static void conn__write_done(struct conn *c, struct conn_write *w, int status)
{
    c->write_pending -= w->len;
    /* While the upstream is still sending, the next turn will want a buffer this size. */
    if (!c->closing && c->req.ureq != NULL && c->spare == NULL && w->cap == CONN_STAGE_STREAM)
        c->spare = w;
    else
        free(w);
    if (c->closing)
        return;
    if (status < 0) {
        log_debug("%s conn %llu: write failed: %s", c->inv->label, (unsigned long long)c->id,
                  uv_strerror(status));
        conn_abort(c);
        return;
    }
    if (c->req.ureq != NULL && c->write_pending < CONN_WRITE_HIGH / 2)
        upstream_req_resume(c->req.ureq);
    if (c->close_when_written && c->write_pending == 0)
        conn__close(c);
}

static void on_written(uv_write_t *req, int status)
{
    struct conn_write *w = (struct conn_write *)req;

    conn__write_done(w->conn, w, status);
}

/*
 * Output is staged and written with one uv_write from the prepare phase, which runs
 * before the loop next waits for I/O: a small response (head, body, last chunk) is one
 * write(2), not three, and a download one per loop turn instead of one per TLS record
 * (bench W2, W3: a system call is the dearest thing the broker does here). Not the check
 * phase: bytes staged from a timer would then wait for the next I/O event.
 *
 * A finished response (no transfer attached) is first tried with uv_try_write: it nearly
 * always goes whole, and unlike a uv_write that completes, that leaves the pipe's epoll
 * entry alone (libuv 1.44 re-registers it after every completed uv_write: one epoll_ctl
 * per response in bench W2). While a transfer streams, writes stay with uv_write: their
 * completion resumes the transfer (conn__write_done), a call into libcurl that may stage
 * more output, which must not happen here, after this turn's flush.
 */
static void conn__flush(struct conn *c)
{
    struct conn_write *w = c->staged;
    uv_buf_t ub;
    int n;

    uv_prepare_stop(&c->flush);
    if (w == NULL)
        return;
    c->staged = NULL;
    ub = uv_buf_init((char *)w->data, (unsigned)w->len);
    if (c->req.ureq == NULL) {
        n = uv_try_write((uv_stream_t *)&c->pipe, &ub, 1);
        if (n == (int)w->len || (n < 0 && n != UV_EAGAIN)) {
            conn__write_done(c, w, n < 0 ? n : 0);
            return;
        }
        if (n > 0) {
            /* The rest goes with uv_write; w->len counts what is still pending. */
            c->write_pending -= (size_t)n;
            w->len -= (size_t)n;
            ub = uv_buf_init((char *)w->data + n, (unsigned)w->len);
        }
    }
    if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &ub, 1, on_written) != 0) {
        c->write_pending -= w->len;
        free(w);
        conn_abort(c);
    }
}

static void on_flush(uv_prepare_t *h)
{
    conn__flush(h->data);
}

/* The staging buffer with room for `need` bytes in all, or NULL (out of memory; what was
 * staged stays). */
static struct conn_write *conn__stage_room(struct conn *c, size_t need)
{
    struct conn_write *w = c->staged;
    size_t cap;

    if (w != NULL && need <= w->cap)
        return w;
    if (w == NULL && c->spare != NULL && need <= c->spare->cap) {
        w = c->spare;
        c->spare = NULL;
    } else {
        cap = need <= CONN_STAGE_SMALL ? CONN_STAGE_SMALL
              : need <= CONN_STAGE_STREAM ? CONN_STAGE_STREAM
                                          : need;
        if ((w = realloc(w, sizeof(*w) + cap)) == NULL)
            return NULL;
        w->cap = cap;
    }
    if (c->staged == NULL) {
        w->conn = c;
        w->len = 0;
        uv_prepare_start(&c->flush, on_flush);
    }
    c->staged = w;
    return w;
}

/* Stages up to three pieces (chunk line, data, CRLF). */
static int conn__write3(struct conn *c, const void *a, size_t alen, const void *b, size_t blen,
                        const void *d, size_t dlen)
{
    size_t len = alen + blen + dlen;
    struct conn_write *w;

    if (len == 0)
        return 0;
    if ((w = conn__stage_room(c, (c->staged != NULL ? c->staged->len : 0) + len)) == NULL)
        return ERR_NOMEM; /* the caller aborts the connection */
    if (alen)
        memcpy(w->data + w->len, a, alen);
    if (blen)
        memcpy(w->data + w->len + alen, b, blen);
    if (dlen)
        memcpy(w->data + w->len + alen + blen, d, dlen);
    w->len += len;
    c->write_pending += len;
    return 0;
}

static int conn__write(struct conn *c, const void *data, size_t len)
{
    return conn__write3(c, data, len, NULL, 0, NULL, 0);
}

/* Closes once what is staged or queued has been written; reads nothing more meanwhile. */
static void conn__close_after_writes(struct conn *c)
{
    c->draining = false;
    c->close_when_written = true;
    if (c->write_pending == 0)
        conn__close(c);
    else
        conn__update_reading(c);
}

/* ---- audit ---- */

static void conn__audit(struct conn *c, const char *outcome)
{
    struct conn_request *q = &c->req;
    struct audit_record rec = {
        .invocation = c->inv->label,
        .connection = c->id,
        .method = q->method,
        .path = q->audit_path != NULL ? buf_cstr(q->audit_path) : "",
        .status = q->status,
        .bytes_in = q->bytes_in,
        .bytes_out = q->bytes_out,
        .upstream_ms = q->upstream_ms,
        .total_ms = uv_now(c->inv->broker->loop) - q->start_ms,
        .outcome = outcome,
    };

    audit_write(c->inv->broker->audit, &rec);
    log_debug("%s conn %llu: %s %.200s -> %d %s", c->inv->label, (unsigned long long)c->id,
              rec.method, rec.path, rec.status, outcome);
}

/* Forgets the current request (the next one starts from a clean slate). */
static void conn__request_reset(struct conn *c)
{
    struct conn_request *q = &c->req;

    upstream_req_cancel(q->ureq);
    free(c->spare); /* an idle connection keeps no stream-sized buffer */
    c->spare = NULL;
    buf_free(q->audit_path);
    buf_free(q->body);
    scrub_stream_free(q->scrub);
    memset(q, 0, sizeof(*q));
}

/* Ends the request's life in the audit exactly once. */
static void conn__request_done(struct conn *c, const char *outcome)
{
    if (c->req.active) {
        conn__audit(c, outcome);
        c->inv->stats.requests++;
        c->req.active = false;
    }
}

/* ---- errors the broker makes itself ---- */

static const char *error_code(int status)
{
    switch (status) {
    case 400:
        return "BadRequest";
    case 403:
        return "PolicyDenied";
    case 405:
        return "MethodNotAllowed";
    case 408:
        return "RequestTimeout";
    case 413:
        return "RequestEntityTooLarge";
    case 431:
        return "RequestHeaderFieldsTooLarge";
    case 501:
        return "NotImplemented";
    case 502:
        return "BadGateway";
    case 504:
        return "GatewayTimeout";
    default:
        return "BrokerError";
    }
}

/*
 * Answers with a JSON error in the upstream's envelope and closes the
 * connection once it is written. The message is ours, never the upstream's or
 * the child's text, so it cannot carry the key.
 */
static void conn__send_error(struct conn *c, int status, const char *message, const char *outcome)
{
    struct buf *out = buf_new(4096, 0);
    char body[512];
    int n;

    c->req.status = status;
    conn__request_done(c, outcome);
    c->close_when_written = true;
    if (out == NULL) {
        conn_abort(c);
        return;
    }
    n = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}",
                 error_code(status), message);
    if (n < 0 || (size_t)n >= sizeof(body) ||
        http1_put_status_line(out, c->req.minor, status) != 0 ||
        buf_putf(out,
                 "Content-Type: application/json\r\nContent-Length: %d\r\n"
                 "Connection: close\r\n\r\n%s",
                 n, body) != 0 ||
        conn__write(c, buf_ptr(out), buf_len(out)) != 0) {
        buf_free(out);
        conn_abort(c);
        return;
    }
    buf_free(out);
    conn__close_after_writes(c);
}

static int status_for_parse_error(int r)
{
    switch (r) {
    case ERR_HTTP_HEAD_TOO_LARGE:
        return 431;
    case ERR_HTTP_BODY_TOO_LARGE:
        return 413;
    case ERR_HTTP_METHOD:
        return 405;
    case ERR_HTTP_NOT_IMPLEMENTED:
        return 501;
    default:
        return 400;
    }
}

/* ---- the upstream's callbacks ---- */

static void on_upstream_head(void *ud, int status, const struct http1_header *h, size_t n)
{
    struct conn *c = ud;
    struct conn_request *q = &c->req;
    struct http1_forward fw = {
        .status = status,
        .minor_version = q->minor,
        .is_head = q->is_head,
        /* A body still arriving leaves the connection unusable after this response. */
        .keep_alive = q->keep_alive && q->body_done,
    };
    struct buf *out = buf_new(HTTP1_MAX_HEAD * 4, 0);
    int r;

    q->status = status;
    q->upstream_ms = upstream_req_head_ms(q->ureq);
    if (out == NULL) {
        conn_abort(c);
        return;
    }
    r = http1_put_forwarded_head(out, &fw, h, n);
    q->framing = fw.framing;
    q->keep_alive = fw.keep_alive;
    q->content_length = fw.content_length;
    if (r == 0 && c->inv->scrubber != NULL) {
        scrubber_mask_all(c->inv->scrubber, buf_mutable_ptr(out), buf_len(out));
        if (q->framing != HTTP1_FRAME_NONE)
            r = scrub_stream_new(c->inv->scrubber, &q->scrub);
    }
    if (r == 0)
        r = conn__write(c, buf_ptr(out), buf_len(out));
    buf_free(out);
    if (r != 0) {
        conn_abort(c);
        return;
    }
    q->head_sent = true;
}

/* Frames and writes response body bytes that are ready (already scrubbed). */
static int conn__write_body(struct conn *c, const uint8_t *data, size_t len)
{
    char line[HTTP1_CHUNK_LINE_MAX];
    size_t n;

    if (len == 0)
        return 0;
    c->req.bytes_out += len;
    if (c->req.framing != HTTP1_FRAME_CHUNKED)
        return conn__write(c, data, len);
    n = http1_chunk_line(line, len);
    return conn__write3(c, line, n, data, len, "\r\n", 2);
}

static int on_upstream_body(void *ud, const uint8_t *data, size_t len)
{
    struct conn *c = ud;
    struct conn_request *q = &c->req;
    int r;

    if (c->write_pending >= CONN_WRITE_HIGH)
        return UPSTREAM_PAUSE;
    if (q->framing == HTTP1_FRAME_NONE)
        return 0;
    if (q->framing == HTTP1_FRAME_LENGTH && len > q->content_length - q->body_received) {
        /* More than the upstream declared: those bytes would read as the child's next
         * response. Cut the connection instead. */
        log_info("%s conn %llu: upstream sent more than its Content-Length", c->inv->label,
                 (unsigned long long)c->id);
        conn__request_done(c, "upstream_error");
        conn_abort(c);
        return 0;
    }
    q->body_received += len;
    if (q->scrub == NULL) {
        r = conn__write_body(c, data, len);
    } else {
        buf_reset(c->scratch);
        r = scrub_stream_feed(q->scrub, data, len, c->scratch);
        if (r == 0)
            r = conn__write_body(c, buf_ptr(c->scratch), buf_len(c->scratch));
    }
    if (r != 0)
        conn_abort(c); /* upstream_req_cancel from here is deferred by the upstream module */
    return 0;
}

static ssize_t on_upstream_read_body(void *ud, uint8_t *dst, size_t max)
{
    struct conn *c = ud;
    struct conn_request *q = &c->req;
    size_t n;

    /* Body bytes may be waiting in `in` (the upload buffer was full when they came). */
    if (c->state == CONN_BODY && buf_len(c->in) > 0 && buf_len(q->body) < max) {
        conn__process(c);
        if (c->closing || c->close_when_written)
            return UPSTREAM_PAUSE; /* the request is being cancelled */
    }
    n = buf_len(q->body);
    if (n == 0) {
        if (q->body_done) {
            q->body_eof_sent = true;
            return 0;
        }
        return UPSTREAM_PAUSE;
    }
    if (n > max)
        n = max;
    memcpy(dst, buf_ptr(q->body), n);
    (void)buf_consume(q->body, n);
    conn__update_reading(c);
    return (ssize_t)n;
}

/* Finishes a response that completed upstream: tail, terminator, then next request. */
static void conn__finish_response(struct conn *c)
{
    struct conn_request *q = &c->req;
    int r = 0;

    if (q->scrub != NULL) {
        buf_reset(c->scratch);
        r = scrub_stream_finish(q->scrub, c->scratch);
        if (r == 0)
            r = conn__write_body(c, buf_ptr(c->scratch), buf_len(c->scratch));
    }
    if (r == 0 && q->framing == HTTP1_FRAME_CHUNKED)
        r = conn__write(c, "0\r\n\r\n", 5);
    if (r != 0) {
        conn_abort(c);
        return;
    }
    conn__request_done(c, "ok");
    if (!q->body_done && c->state == CONN_BODY && !c->read_eof) {
        /* The upstream answered before taking the whole body (an early 401 or 413). Closing
         * now would fail the child's send with EPIPE before it reads the answer (Python's
         * http.client raises BrokenPipeError); like nginx's lingering close, the rest of the
         * body is read and dropped, within the head timeout and max_body, then we close. */
        c->draining = true;
        buf_reset(q->body);
        conn__process(c);
        return;
    }
    if (!q->keep_alive || !q->body_done || c->read_eof) {
        conn__close_after_writes(c);
        return;
    }
    conn__request_reset(c);
    c->state = CONN_HEAD;
    conn__process(c);
}

static void on_upstream_done(void *ud, int result, const char *detail)
{
    struct conn *c = ud;
    struct conn_request *q = &c->req;

    q->ureq = NULL; /* freed by the upstream module after this returns */
    if (result == 0) {
        conn__finish_response(c);
        return;
    }
    log_info("%s conn %llu: upstream %s %.200s: %.200s", c->inv->label, (unsigned long long)c->id,
             q->method, q->audit_path ? buf_cstr(q->audit_path) : "", detail);
    if (q->head_sent) {
        /* Mid-body: the child sees a truncated response (no last chunk / short length). */
        conn__request_done(c, result == UPSTREAM_ERR_STALLED ? "stalled" : "upstream_error");
        conn_abort(c);
    } else if (result == UPSTREAM_ERR_HEAD_TIMEOUT) {
        conn__send_error(c, 504, "upstream did not answer in time", "timeout");
    } else {
        conn__send_error(c, 502, "upstream unreachable", "upstream_error");
    }
}

static const struct upstream_req_ops conn_upstream_ops = {
    .on_head = on_upstream_head,
    .on_body = on_upstream_body,
    .read_body = on_upstream_read_body,
    .on_done = on_upstream_done,
};

/* ---- the request ---- */

static bool method_has_body_semantics(const char *m)
{
    return strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0;
}

/* Starts the upstream request for a parsed head. Returns 0, or an HTTP status to answer. */
static int conn__start_request(struct conn *c, const struct http1_request *hr)
{
    struct broker_invocation *inv = c->inv;
    struct conn_request *q = &c->req;
    struct buf *url = NULL, *lines = NULL;
    const char *path, *starts[REQHEADERS_MAX_LINES];
    size_t path_len, nstarts = 0, prefix;
    struct upstream_req_spec spec;
    int status = 502, r;

    if (hr->method.len > CONN_METHOD_MAX)
        return 400;
    memcpy(q->method, hr->method.base, hr->method.len);
    q->method[hr->method.len] = '\0';
    q->minor = hr->minor_version;
    q->keep_alive = hr->keep_alive;
    q->is_head = strcmp(q->method, "HEAD") == 0;
    q->body_kind = hr->body;
    if (strcmp(q->method, "CONNECT") == 0)
        return 405;
    if (hr->upgrade)
        return 501;
    if (hr->body == HTTP1_BODY_LENGTH && hr->content_length > inv->limits.max_body)
        return 413;
    if (rewrite_target_path(hr->target.base, hr->target.len, &path, &path_len) != 0)
        return 400;
    if ((q->audit_path = buf_new(CONN_URL_MAX, 0)) == NULL ||
        (q->body = buf_new(CONN_BODY_HIGH + CONN_IN_MAX, 0)) == NULL)
        return 500;
    /* The audit shows the rewritten path and query, with "[broker]" for the key. */
    if (rewrite_url(q->audit_path, &inv->upstream, hr->target.base, hr->target.len, &inv->inject,
                    (const uint8_t *)"[broker]", 8, REWRITE_KEY_VERBATIM) != 0)
        return 400;
    prefix = inv->upstream.origin_len + inv->upstream.path_len;
    (void)buf_consume(q->audit_path, prefix);
    if (inv->policy != NULL &&
        !policy_allows(inv->policy, q->method, strlen(q->method), path, path_len))
        return 403;

    if ((url = buf_new(CONN_URL_MAX, BUF_WIPE)) == NULL ||
        (lines = buf_new(HTTP1_MAX_HEAD * 2, BUF_WIPE)) == NULL) {
        status = 500;
        goto out;
    }
    if ((r = rewrite_url(url, &inv->upstream, hr->target.base, hr->target.len, &inv->inject,
                         secret_data(inv->key), secret_len(inv->key), 0)) != 0) {
        status = r == ERR_HTTP_BAD_REQUEST ? 400 : 500;
        goto out;
    }
    if (reqheaders_build(lines, hr, &inv->inject, secret_data(inv->key), secret_len(inv->key)) !=
            0 ||
        buf_cstr(url) == NULL) {
        status = 500;
        goto out;
    }
    nstarts = reqheaders_split(lines, starts, sizeof(starts) / sizeof(starts[0]));
    q->has_body = hr->body == HTTP1_BODY_CHUNKED ||
                  (hr->body == HTTP1_BODY_LENGTH &&
                   (hr->content_length > 0 || method_has_body_semantics(q->method)));
    q->body_left = hr->body == HTTP1_BODY_LENGTH ? hr->content_length : 0;
    q->body_done = !q->has_body || (hr->body == HTTP1_BODY_LENGTH && hr->content_length == 0);
    if (hr->body == HTTP1_BODY_CHUNKED)
        chunked_init(&q->chunked);
    memset(&spec, 0, sizeof(spec));
    spec.method = q->method;
    spec.url = buf_cstr(url);
    spec.headers = starts;
    spec.nheaders = nstarts;
    spec.has_body = q->has_body;
    spec.body_len = hr->body == HTTP1_BODY_LENGTH ? (int64_t)hr->content_length : -1;
    spec.response_head_timeout_ms = inv->limits.response_head_timeout_ms;
    spec.stall_timeout_ms = inv->limits.stall_timeout_ms;
    if ((r = upstream_req_start(inv->broker->upstream, &spec, &conn_upstream_ops, c, &q->ureq)) !=
        0) {
        log_warn_r(r, "%s conn %llu: cannot start the upstream request", inv->label,
                   (unsigned long long)c->id);
        status = 502;
        goto out;
    }
    status = 0;
out:
    buf_free(url);   /* wiped: it held the key */
    buf_free(lines); /* wiped: it may hold the key */
    return status;
}

/* Moves request body bytes from `in` to the upload buffer. Returns 0 or a status to answer. */
static int conn__pump_body(struct conn *c)
{
    struct conn_request *q = &c->req;
    const char *p = (const char *)buf_ptr(c->in);
    size_t avail = buf_len(c->in), used = 0;
    int r = 0;

    while (!q->body_done && used < avail && buf_len(q->body) < CONN_BODY_HIGH) {
        size_t room = CONN_BODY_HIGH - buf_len(q->body);

        if (q->body_kind == HTTP1_BODY_LENGTH) {
            size_t n = avail - used;

            if (n > q->body_left)
                n = (size_t)q->body_left;
            if (n > room)
                n = room;
            if (!c->draining && (r = buf_put(q->body, p + used, n)) != 0)
                break;
            used += n;
            q->bytes_in += n;
            q->body_left -= n;
            q->body_done = q->body_left == 0;
        } else {
            size_t consumed = 0, dlen = 0;
            const char *data = NULL;
            int d = chunked_decode(&q->chunked, p + used, avail - used, &consumed, &data, &dlen);

            if (d < 0) {
                r = ERR_HTTP_BAD_REQUEST;
                break;
            }
            if (dlen > 0) {
                if (q->bytes_in + dlen > c->inv->limits.max_body) {
                    r = ERR_HTTP_BODY_TOO_LARGE;
                    break;
                }
                if (!c->draining && (r = buf_put(q->body, data, dlen)) != 0)
                    break;
                q->bytes_in += dlen;
            }
            used += consumed;
            /* A chunk announcing more than the limit allows is refused now, not once its
             * bytes have arrived. */
            if (q->bytes_in + chunked_pending(&q->chunked) > c->inv->limits.max_body) {
                r = ERR_HTTP_BODY_TOO_LARGE;
                break;
            }
            if (d == 1)
                q->body_done = true;
            else if (consumed == 0)
                break;
        }
    }
    (void)buf_consume(c->in, used);
    if (r != 0)
        return r == ERR_HTTP_BODY_TOO_LARGE ? 413 : 400;
    if (q->ureq != NULL && (buf_len(q->body) > 0 || q->body_done))
        upstream_req_resume(q->ureq);
    if (q->body_done && c->state == CONN_BODY)
        c->state = CONN_WAIT;
    return 0;
}

static void on_conn_timer(uv_timer_t *t)
{
    struct conn *c = t->data;

    if (c->closing)
        return;
    if (c->state == CONN_HEAD && buf_len(c->in) > 0 && c->write_pending == 0 &&
        !c->close_when_written) {
        c->req.active = true;
        c->req.start_ms = uv_now(c->inv->broker->loop);
        conn__send_error(c, 408, "request head not received in time", "head_timeout");
        return;
    }
    log_debug("%s conn %llu: idle, closing", c->inv->label, (unsigned long long)c->id);
    conn_abort(c);
}

/* Runs the right timer for the state: idle / head while waiting for a head, drain when
 * closing; none while a request is upstream (its own deadlines apply). */
static void conn__update_timer(struct conn *c)
{
    struct broker_limits *l = &c->inv->limits;

    if (c->close_when_written) {
        uv_timer_start(&c->timer, on_conn_timer, l->stall_timeout_ms, 0);
        c->head_timer_running = false;
    } else if (c->draining) {
        /* Counted once from the start of the drain, like a head: a trickle cannot extend it. */
        if (!c->head_timer_running)
            uv_timer_start(&c->timer, on_conn_timer, l->head_timeout_ms, 0);
        c->head_timer_running = true;
    } else if (c->state != CONN_HEAD) {
        uv_timer_stop(&c->timer);
        c->head_timer_running = false;
    } else if (buf_len(c->in) == 0) {
        uv_timer_start(&c->timer, on_conn_timer, l->idle_timeout_ms, 0);
        c->head_timer_running = false;
    } else if (!c->head_timer_running) {
        /* Counted from the first byte, not renewed per read: a slowloris gets 10 s in all. */
        uv_timer_start(&c->timer, on_conn_timer, l->head_timeout_ms, 0);
        c->head_timer_running = true;
    }
}

/* Parses heads and moves bodies while there is input and the state allows. */
static void conn__process(struct conn *c)
{
    struct http1_request hr;
    int r, status;

    while (!c->closing && !c->close_when_written) {
        if (c->state == CONN_HEAD) {
            if (buf_len(c->in) == 0)
                break;
            r = http1_parse_request((const char *)buf_ptr(c->in), buf_len(c->in), &hr);
            if (r == ERR_INCOMPLETE) {
                if (c->read_eof) {
                    conn_abort(c);
                    return;
                }
                break;
            }
            c->req.active = true;
            c->req.start_ms = uv_now(c->inv->broker->loop);
            if (r != 0) {
                c->req.minor = 1;
                conn__send_error(c, status_for_parse_error(r), "malformed or ambiguous request",
                                 "bad_request");
                return;
            }
            status = conn__start_request(c, &hr);
            (void)buf_consume(c->in, hr.head_len);
            if (status != 0) {
                conn__send_error(c, status,
                                 status == 403   ? "request not allowed by the broker's policy"
                                 : status == 413 ? "request body too large"
                                 : status == 405 ? "CONNECT is not supported"
                                 : status == 501 ? "protocol upgrades are not supported"
                                 : status == 400 ? "malformed or ambiguous request"
                                                 : "broker error",
                                 status == 403 ? "policy" : "refused");
                return;
            }
            if (hr.expect_continue && c->req.has_body && !c->req.body_done && c->req.minor >= 1 &&
                conn__write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25) != 0) {
                conn_abort(c);
                return;
            }
            c->state = c->req.body_done ? CONN_WAIT : CONN_BODY;
        } else if (c->state == CONN_BODY && c->draining) {
            /* The answer is already staged: any end of the body (done, malformed, over the
             * limit, the child gone) closes after writing it, never with a second answer. */
            if (conn__pump_body(c) != 0 || c->req.body_done || c->read_eof) {
                conn__close_after_writes(c);
                return;
            }
            break;
        } else if (c->state == CONN_BODY) {
            if ((status = conn__pump_body(c)) != 0) {
                upstream_req_cancel(c->req.ureq);
                c->req.ureq = NULL;
                conn__send_error(
                    c, status, status == 413 ? "request body too large" : "malformed request body",
                    "bad_request");
                return;
            }
            if (c->state == CONN_BODY) {
                if (c->read_eof) {
                    conn__request_done(c, "client_gone");
                    conn_abort(c);
                    return;
                }
                break;
            }
        } else {
            break; /* CONN_WAIT: pipelined bytes wait for the response to finish */
        }
    }
    if (!c->closing) {
        conn__update_reading(c);
        conn__update_timer(c);
    }
}

/* ---- reading from the child ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    /* One read buffer for every connection: reads are consumed before the next one. */
    static char readbuf[64 * 1024];

    out->base = readbuf;
    out->len = sizeof(readbuf);
}

/* True if the child closed its end completely (not just shut down its sending side). */
static bool peer_gone(struct conn *c)
{
    uv_os_fd_t fd;

    if (uv_fileno((uv_handle_t *)&c->pipe, &fd) != 0)
        return true;
    return send(fd, "", 0, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno == EPIPE;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct conn *c = s->data;

    if (c->closing)
        return;
    if (nread < 0) {
        c->read_eof = true;
        uv_read_stop(s);
        c->reading = false;
        if (c->draining && nread == UV_EOF) {
            conn__close_after_writes(c); /* the child stopped sending; it may still read */
            return;
        }
        if (nread != UV_EOF || c->state == CONN_BODY || peer_gone(c)) {
            if (c->req.active)
                conn__request_done(c, "client_gone");
            conn_abort(c);
            return;
        }
        if (c->state == CONN_HEAD) {
            if (buf_len(c->in) > 0 && c->req.active == false && c->write_pending == 0) {
                conn_abort(c); /* a partial head and nothing more will come */
                return;
            }
            conn__close_after_writes(c);
            return;
        }
        return; /* CONN_WAIT: finish the response, then close */
    }
    if (nread == 0)
        return;
    if (buf_put(c->in, b->base, (size_t)nread) != 0) {
        /* Cannot happen while reading is limited by conn__update_reading. */
        conn_abort(c);
        return;
    }
    conn__process(c);
}

static void conn__update_reading(struct conn *c)
{
    bool want;

    if (c->closing || c->read_eof)
        return;
    switch (c->state) {
    case CONN_HEAD:
        want = !c->close_when_written && buf_len(c->in) <= HTTP1_MAX_HEAD;
        break;
    case CONN_BODY:
        want = !c->close_when_written && buf_len(c->req.body) < CONN_BODY_HIGH &&
               buf_len(c->in) < HTTP1_MAX_HEAD;
        break;
    default:
        /* Pipelined bytes: take a head's worth, then wait for the response to finish. */
        want = !c->close_when_written && buf_len(c->in) <= HTTP1_MAX_HEAD;
        break;
    }
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) == 0)
            c->reading = true;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->pipe);
        c->reading = false;
    }
}

/* ---- life cycle ---- */

static void conn_handle_close_cb(uv_handle_t *h)
{
    struct conn *c = h->data;

    if (--c->open_handles > 0)
        return;
    buf_free(c->in);
    buf_free(c->scratch);
    broker__conn_released(c->inv, c);
    free(c);
}

static void conn__close(struct conn *c)
{
    struct broker_invocation *inv = c->inv;

    if (c->closing)
        return;
    c->closing = true;
    if (c->linked) {
        if (c->prev != NULL)
            c->prev->next = c->next;
        else
            inv->conns = c->next;
        if (c->next != NULL)
            c->next->prev = c->prev;
        c->linked = false;
    }
    if (c->req.active)
        conn__request_done(c, "client_gone");
    conn__request_reset(c);
    if (c->staged != NULL) {
        c->write_pending -= c->staged->len;
        free(c->staged);
        c->staged = NULL;
    }
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, conn_handle_close_cb);
    uv_close((uv_handle_t *)&c->flush, conn_handle_close_cb);
    uv_close((uv_handle_t *)&c->pipe, conn_handle_close_cb); /* cancels pending writes */
}

void conn_abort(struct conn *c)
{
    conn__close(c);
}

int conn_new(struct broker_invocation *inv, int fd, struct conn **out)
{
    struct conn *c;
    int r;

    *out = NULL;
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        close(fd);
        return ERR_NOMEM;
    }
    c->inv = inv;
    c->id = ++inv->next_conn_id;
    if ((c->in = buf_new(CONN_IN_MAX, 0)) == NULL ||
        (c->scratch = buf_new(SIZE_MAX, 0)) == NULL) {
        buf_free(c->in);
        free(c);
        close(fd);
        return ERR_NOMEM;
    }
    if ((r = uv_timer_init(inv->broker->loop, &c->timer)) != 0) {
        buf_free(c->in);
        buf_free(c->scratch);
        free(c);
        close(fd);
        return r;
    }
    c->timer.data = c;
    (void)uv_prepare_init(inv->broker->loop, &c->flush); /* cannot fail */
    c->flush.data = c;
    c->open_handles = 2;
    inv->nconns++; /* until conn_handle_close_cb releases it */
    if ((r = uv_pipe_init(inv->broker->loop, &c->pipe, 0)) != 0) {
        close(fd);
        c->closing = true;
        uv_close((uv_handle_t *)&c->timer, conn_handle_close_cb);
        uv_close((uv_handle_t *)&c->flush, conn_handle_close_cb);
        return r;
    }
    c->pipe.data = c;
    c->open_handles = 3;
    /* From here on, conn__close() undoes everything (and closes fd with the pipe). */
    if ((r = uv_pipe_open(&c->pipe, fd)) != 0) {
        close(fd);
        conn__close(c);
        return r;
    }
    c->state = CONN_HEAD;
    conn__update_reading(c);
    if (!c->reading) {
        conn__close(c);
        return ERR_INVALID;
    }
    conn__update_timer(c);
    c->next = inv->conns;
    if (inv->conns != NULL)
        inv->conns->prev = c;
    inv->conns = c;
    c->linked = true;
    *out = c;
    return 0;
}
