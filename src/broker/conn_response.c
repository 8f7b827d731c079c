/*
 * conn_response.c - what a brokered connection writes to the child: output staged
 * during a loop turn and written once (backpressure: the upstream transfer pauses
 * while too much waits), the broker's own JSON errors, and the upstream's response
 * (head, scrubbed and framed body, its end) through the upstream callbacks. The
 * request half is conn.c; see conn.c for the connection's states.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_internal.h"
#include "conn.h"
#include "conn_internal.h"
#include "err.h"
#include "log.h"

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

/* The rest of w (all of it when n is UV_EAGAIN, or n's remainder) with uv_write. */
static void conn__write_queued(struct conn *c, struct conn_write *w, ssize_t n)
{
    size_t off = n > 0 ? (size_t)n : 0;
    uv_buf_t ub;
    int r;

    /* w->len counts what is still pending. */
    c->write_pending -= off;
    w->len -= off;
    ub = uv_buf_init((char *)w->data + off, (unsigned)w->len);
    if ((r = uv_write(&w->req, (uv_stream_t *)&c->pipe, &ub, 1, on_written)) != 0)
        conn__write_done(c, w, r);
}

/*
 * Output is staged and leaves from the prepare phase, which runs before the loop next
 * waits for I/O: a small response (head, body, last chunk) is one write, not three, and a
 * download one per loop turn instead of one per TLS record; and the writes of every
 * connection in the turn leave together, in one system call (netbatch.h; bench W2, W3: a
 * system call is the dearest thing the broker does here). Not the check phase: bytes
 * staged from a timer would then wait for the next I/O event.
 *
 * A finished response (no transfer attached) goes with the batch: the socket nearly
 * always takes it whole, and unlike a uv_write that completes, that leaves the pipe's
 * epoll entry alone (libuv 1.44 re-registers it after every completed uv_write: one
 * epoll_ctl per response in bench W2). While a transfer streams, writes stay with
 * uv_write: their completion resumes the transfer (conn__write_done), a call into the
 * upstream request that may stage more output, which must not happen in this turn's
 * flush.
 */
static size_t conn__batch_fill(struct netbatch_item *it, const uint8_t **data)
{
    struct conn *c = (struct conn *)((char *)it - offsetof(struct conn, batch));
    struct conn_write *w = c->staged;

    if (w == NULL)
        return 0;
    c->staged = NULL;
    if (c->req.ureq != NULL) {
        conn__write_queued(c, w, UV_EAGAIN);
        return 0;
    }
    c->batched = w;
    *data = w->data;
    return w->len;
}

static void conn__batch_done(struct netbatch_item *it, ssize_t n)
{
    struct conn *c = (struct conn *)((char *)it - offsetof(struct conn, batch));
    struct conn_write *w = c->batched;

    c->batched = NULL;
    if (n == (ssize_t)w->len || (n < 0 && n != UV_EAGAIN))
        conn__write_done(c, w, n < 0 ? (int)n : 0);
    else
        conn__write_queued(c, w, n);
}

void conn__batch_init(struct conn *c)
{
    netbatch_item_init(&c->batch, (uv_stream_t *)&c->pipe, conn__batch_fill, conn__batch_done);
}

static void on_flush(uv_prepare_t *h)
{
    uv_prepare_stop(h);
    netbatch_flush(h->loop); /* this connection's write among them, if not yet made */
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
        netbatch_add(&c->batch);
        uv_prepare_start(&c->flush, on_flush);
    }
    c->staged = w;
    return w;
}

/* Room for len more staged bytes, written by the caller and counted by conn__stage_commit;
 * NULL when out of memory (what was staged stays). */
static uint8_t *conn__stage_reserve(struct conn *c, size_t len)
{
    struct conn_write *w = conn__stage_room(c, (c->staged != NULL ? c->staged->len : 0) + len);

    return w != NULL ? w->data + w->len : NULL;
}

static void conn__stage_commit(struct conn *c, size_t len)
{
    c->staged->len += len;
    c->write_pending += len;
}

/* Stages up to three pieces (chunk line, data, CRLF). */
static int conn__write3(struct conn *c, const void *a, size_t alen, const void *b, size_t blen,
                        const void *d, size_t dlen)
{
    size_t len = alen + blen + dlen;
    uint8_t *dst;

    if (len == 0)
        return 0;
    if ((dst = conn__stage_reserve(c, len)) == NULL)
        return ERR_NOMEM; /* the caller aborts the connection */
    if (alen)
        memcpy(dst, a, alen);
    if (blen)
        memcpy(dst + alen, b, blen);
    if (dlen)
        memcpy(dst + alen + blen, d, dlen);
    conn__stage_commit(c, len);
    return 0;
}

int conn__write(struct conn *c, const void *data, size_t len)
{
    return conn__write3(c, data, len, NULL, 0, NULL, 0);
}

/*
 * Cuts the connection in the middle of a response (the upstream failed, or the request
 * did after the upstream's head went out): the child sees the response cut short. What
 * this loop turn staged, which may be the head itself, is first offered to the socket
 * once without waiting; otherwise a failure in the turn the head came would leave the
 * child no response at all, which a client may take for a request never sent and retry.
 * (uv_try_write writes nothing while earlier writes are queued, so no byte is reordered.)
 */
void conn__cut(struct conn *c, const char *outcome)
{
    conn__request_done(c, outcome);
    if (c->staged != NULL && !c->closing) {
        uv_buf_t ub = uv_buf_init((char *)c->staged->data, (unsigned)c->staged->len);

        (void)uv_try_write((uv_stream_t *)&c->pipe, &ub, 1);
    }
    conn_abort(c);
}

/* Closes once what is staged or queued has been written; reads nothing more meanwhile. */
void conn__close_after_writes(struct conn *c)
{
    c->draining = false;
    c->close_when_written = true;
    if (c->write_pending == 0)
        conn__close(c);
    else
        conn__update_reading(c);
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
    case 421:
        return "MisdirectedRequest";
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
 *
 * Once the upstream's head has gone to the child, there is no answering any more: a
 * second head would read as part of the body, or as the answer to the child's next
 * request. The connection is cut instead, and the child sees a truncated response. (The
 * upstream can answer before the child's body has all come, and the rest of that body can
 * still be malformed or too large.)
 */
void conn__send_error(struct conn *c, int status, const char *message, const char *outcome)
{
    if (c->req.head_sent) {
        log_debug("%s conn %llu: %d after the response head: cut", c->inv->label,
                  (unsigned long long)c->id, status);
        conn__cut(c, outcome);
        return;
    }
    if (conn__stage_error(c, status, message, outcome) == 0)
        conn__close_after_writes(c);
}

int conn__stage_error(struct conn *c, int status, const char *message, const char *outcome)
{
    struct buf *out;
    char body[512];
    int n;

    c->req.status = status;
    conn__request_done(c, outcome);
    if ((out = buf_new(4096, 0)) == NULL) {
        conn_abort(c);
        return -1;
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
        return -1;
    }
    buf_free(out);
    return 0;
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
    struct buf *out = c->scratch; /* free until the body comes */
    int r;

    q->status = status;
    q->upstream_ms = upstream_req_head_ms(q->ureq);
    buf_reset(out);
    r = http1_put_forwarded_head(out, &fw, h, n);
    if (r == 0 && buf_len(out) > CONN_HEAD_OUT_MAX)
        r = ERR_TOO_LARGE;
    q->framing = fw.framing;
    q->keep_alive = fw.keep_alive;
    q->content_length = fw.content_length;
    if (r == 0 && c->inv->scrubber != NULL) {
        scrubber_mask_all(c->inv->scrubber, buf_mutable_ptr(out), buf_len(out));
        if (q->framing != HTTP1_FRAME_NONE && c->scrub_spare != NULL) {
            q->scrub = c->scrub_spare; /* reset when its response ended */
            c->scrub_spare = NULL;
        } else if (q->framing != HTTP1_FRAME_NONE) {
            r = scrub_stream_new(c->inv->scrubber, &q->scrub);
        }
    }
    if (r == 0)
        r = conn__write(c, buf_ptr(out), buf_len(out));
    buf_reset(out);
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
    } else if (len > 0 && q->framing != HTTP1_FRAME_CHUNKED) {
        /* Scrubbed straight into the staged write: a download's bytes copied once less. */
        size_t n = 0;
        uint8_t *dst = conn__stage_reserve(c, scrub_stream_feed_room(q->scrub, len));

        r = dst != NULL ? scrub_stream_feed_to(q->scrub, data, len, dst, &n) : ERR_NOMEM;
        if (n > 0) {
            conn__stage_commit(c, n);
            q->bytes_out += n;
        }
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

/* prefix, then text as the inside of a JSON string (quotes and backslashes escaped,
 * control bytes left out, other non-ASCII bytes as '?'), cut to fit size. */
static void json_escape_into(char *out, size_t size, const char *prefix, const char *text)
{
    size_t n = (size_t)snprintf(out, size, "%s", prefix);

    for (; text != NULL && *text != '\0' && n + 3 < size; text++) {
        unsigned char ch = (unsigned char)*text;

        if (ch < 0x20 || ch == 0x7f)
            continue;
        if (ch >= 0x80)
            ch = '?';
        if (ch == '"' || ch == '\\')
            out[n++] = '\\';
        out[n++] = (char)ch;
    }
    out[n < size ? n : size - 1] = '\0';
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
             q->method, conn__audit_path(c), detail);
    if (q->head_sent) {
        /* Mid-body: the child sees a truncated response (no last chunk / short length). */
        conn__cut(c, result == UPSTREAM_ERR_STALLED ? "stalled" : "upstream_error");
    } else if (result == UPSTREAM_ERR_HEAD_TIMEOUT) {
        conn__send_error(c, 504, "upstream did not answer in time", "timeout");
    } else {
        /* The reason (DNS, connect, TLS, protocol) is the upstream module's: it names hosts
         * and causes, never a request's URL or headers, so the child may see it. */
        char message[320];

        json_escape_into(message, sizeof(message), "upstream unreachable: ", detail);
        conn__send_error(c, 502, message, "upstream_error");
    }
}

const struct upstream_req_ops conn_upstream_ops = {
    .on_head = on_upstream_head,
    .on_body = on_upstream_body,
    .read_body = on_upstream_read_body,
    .on_done = on_upstream_done,
};
