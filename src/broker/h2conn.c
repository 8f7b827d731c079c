/*
 * h2conn.c - one HTTP/2 client connection: the nghttp2 session, its callbacks, the pump,
 * and the connection's life cycle (h2conn.h). Requests, their HEADERS and the delivery of
 * their responses are in h2conn_stream.c.
 *
 * Why a pump: nghttp2 must never be re-entered from its own callbacks, and a user
 * callback may do anything (cancel, submit, free the connection). So nghttp2's callbacks
 * only record what arrived in struct h2_stream (head fields, body bytes, END_STREAM, the
 * close code), and conn__run() hands it on afterwards, outside nghttp2, looking after
 * every user callback whether the stream or the connection is still there. Frames are
 * produced with nghttp2_session_mem_send, which calls no user code either (request bodies
 * are read ahead by the pump into a small per-stream buffer).
 *
 * Not for: sockets, TLS, timeouts or choosing a connection (the pool).
 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "h2conn_internal.h"
#include "response.h"
#include "wipe.h"

static void conn__timer_cb(uv_timer_t *t);

/* ---- the pump ---- */

void h2conn__fail(struct h2conn *c, const char *fmt, ...)
{
    va_list ap;

    if (c->failing)
        return;
    c->failing = true;
    va_start(ap, fmt);
    vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
    va_end(ap);
    h2conn__schedule(c);
}

void h2conn__schedule(struct h2conn *c)
{
    if (c->running) {
        c->again = true;
        return;
    }
    if (!c->closed && !uv_is_active((uv_handle_t *)c->timer))
        uv_timer_start(c->timer, conn__timer_cb, 0, 0);
}

/* Sends what is gathered; false when the transport failed (c is failing). */
static bool conn__send(struct h2conn *c, const uint8_t *p, size_t n)
{
    int r;

    if (n == 0)
        return true;
    r = c->tr.send(c->t, p, n);
    if (p == c->tr.gather)
        explicit_bzero(c->tr.gather, n);
    if (r < 0) {
        c->transport_gone = true;
        h2conn__fail(c, "sending to the upstream failed: %s", err_str(r));
        return false;
    }
    return true;
}

void h2conn__flush(struct h2conn *c)
{
    const uint8_t *p;
    size_t gathered = 0;
    ssize_t n;

    if (c->closed || c->transport_gone)
        return;
    while (c->tr.pending(c->t) + gathered < H2CONN_SEND_HIGH_WATER) {
        n = nghttp2_session_mem_send(c->ng, &p);
        if (n < 0) {
            explicit_bzero(c->tr.gather, gathered);
            h2conn__fail(c, "HTTP/2 session failed: %s", nghttp2_strerror((int)n));
            return;
        }
        if (n == 0)
            break;
        if (gathered + (size_t)n > H2CONN_GATHER) {
            if (!conn__send(c, c->tr.gather, gathered))
                return;
            gathered = 0;
        }
        if ((size_t)n >= H2CONN_GATHER) { /* a whole record's worth: as it is */
            if (!conn__send(c, p, (size_t)n))
                return;
            continue;
        }
        memcpy(c->tr.gather + gathered, p, (size_t)n);
        gathered += (size_t)n;
    }
    (void)conn__send(c, c->tr.gather, gathered);
}

/* nghttp2 ended the session by itself (it sent a GOAWAY for a connection error). */
static void conn__check_session(struct h2conn *c)
{
    if (c->failing || c->closed || c->goaway_received)
        return;
    if (nghttp2_session_want_read(c->ng) || nghttp2_session_want_write(c->ng))
        return;
    if (c->goaway_sent)
        h2conn__fail(c, "HTTP/2 connection error (%s sent): %s",
                     nghttp2_http2_strerror(c->goaway_sent_code),
                     c->conn_invalid ? nghttp2_strerror(c->conn_invalid) : "invalid frame");
    else
        h2conn__fail(c, "the HTTP/2 session ended");
}

/* Unlinks and frees dead streams. Only where no callback of theirs is on the stack. */
static void conn__sweep(struct h2conn *c)
{
    struct h2_stream *s = c->head, *next;

    for (; s; s = next) {
        next = s->next;
        if (!s->dead)
            continue;
        if (s->prev)
            s->prev->next = s->next;
        else
            c->head = s->next;
        if (s->next)
            s->next->prev = s->prev;
        else
            c->tail = s->prev;
        h2conn__stream_free(s);
    }
}

static void conn__notify(struct h2conn *c)
{
    if (c->closed || c->closed_notified)
        return;
    if ((c->failing || c->draining) && c->live == 0) {
        c->closed_notified = true;
        if (c->ev.on_closed)
            c->ev.on_closed(c, c->reason, c->ud);
        return;
    }
    if (c->cap_changed && h2conn_available(c)) {
        c->cap_changed = false;
        if (c->ev.on_capacity)
            c->ev.on_capacity(c, c->ud);
    }
}

/* The one stream open on a usable connection, or NULL (none, or more than one): what read
 * batching and the read pause may act for without holding back another stream. */
static const struct h2_stream *conn__lone_stream(const struct h2conn *c)
{
    const struct h2_stream *s = c->head;

    if (c->live != 1 || c->closed || c->failing || c->transport_gone)
        return NULL;
    while (s != NULL && s->dead)
        s = s->next;
    return s;
}

/* Feeding paused while the one open stream's reader is (h2conn_transport.read_pause). */
static void conn__read_control(struct h2conn *c)
{
    const struct h2_stream *s = conn__lone_stream(c);
    bool pause = s != NULL && s->paused && !s->failed && !s->ng_closed;

    if (c->tr.read_pause == NULL)
        return;
    if (pause != c->read_paused) {
        c->read_paused = pause;
        c->tr.read_pause(c->t, pause);
    }
}

/* The one place user callbacks are called from: stream steps, on_capacity, on_closed. */
static void conn__run(struct h2conn *c)
{
    struct h2_stream *s;

    if (c->running) {
        c->again = true;
        return;
    }
    c->running = true;
    do {
        c->again = false;
        /* Streams appended by a callback are visited in the same pass. */
        for (s = c->head; s && !c->closed; s = s->next)
            if (!s->dead)
                h2conn__stream_step(c, s);
        if (c->closed)
            break;
        h2conn__flush(c);
        conn__check_session(c);
        conn__sweep(c);
        conn__notify(c);
        if (!c->closed)
            conn__read_control(c);
    } while (c->again && !c->closed);
    c->running = false;
    if (!c->free_pending)
        conn__sweep(c);
}

/* ---- nghttp2 callbacks: record, never call the user ---- */

static struct h2_stream *conn__stream(nghttp2_session *ng, int32_t id)
{
    struct h2_stream *s = nghttp2_session_get_stream_user_data(ng, id);

    return s && !s->dead ? s : NULL;
}

static int on_begin_headers_cb(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    struct h2_stream *s = conn__stream(ng, f->hd.stream_id);

    (void)ud;
    if (!s || f->hd.type != NGHTTP2_HEADERS)
        return 0;
    s->blk_bytes = 0;
    s->blk_fields = 0;
    if (!s->head_ready) { /* a 1xx head before is forgotten */
        s->status = 0;
        s->hlen = 0;
        s->nfields = 0;
        s->resp_len = -1;
    }
    return 0;
}

/* A content-length's value (http1.c's rule, RFC 9110 8.6), -1 for anything else. Used
 * only to know how much of the body is still to come (h2conn_due). */
static int64_t conn__content_length(const uint8_t *v, size_t len)
{
    const struct http1_iov iov = {(const char *)v, len};
    uint64_t n;

    return http1_parse_content_length(&iov, &n) && n <= INT64_MAX ? (int64_t)n : -1;
}

static int on_header_cb(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                        size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                        void *ud)
{
    struct h2_stream *s = conn__stream(ng, f->hd.stream_id);

    (void)flags;
    (void)ud;
    if (!s || s->failed || f->hd.type != NGHTTP2_HEADERS)
        return 0;
    /* RFC 9113 6.5.2: name + value + 32 per field, per header block. Returning
     * TEMPORAL_CALLBACK_FAILURE resets the stream (INTERNAL_ERROR); nghttp2 still decodes
     * the rest of the block, so HPACK stays in step and the connection lives on. */
    s->blk_fields++;
    s->blk_bytes += namelen + valuelen + 32;
    if (s->blk_fields > H2CONN_MAX_HEAD_FIELDS) {
        h2conn__stream_fail(s, false, "response head with more than %u header fields",
                            (unsigned)H2CONN_MAX_HEAD_FIELDS);
        s->reset_queued = true;
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    if (s->blk_bytes > H2CONN_MAX_HEAD_BYTES) {
        h2conn__stream_fail(s, false, "response head over %u bytes",
                            (unsigned)H2CONN_MAX_HEAD_BYTES);
        s->reset_queued = true;
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    if (s->head_ready) /* trailers: counted, not passed on */
        return 0;
    if (namelen > 0 && name[0] == ':') {
        /* nghttp2's HTTP messaging checks make :status exactly 3 digits */
        if (namelen == 7 && memcmp(name, ":status", 7) == 0 && valuelen == 3)
            s->status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
        return 0;
    }
    if (namelen == 14 && memcmp(name, "content-length", 14) == 0)
        s->resp_len = conn__content_length(value, valuelen);
    if (h2conn__stream_add_field(s, name, namelen, value, valuelen) != 0) {
        h2conn__stream_fail(s, false, "out of memory for the response head");
        s->reset_queued = true;
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return 0;
}

static int on_frame_recv_cb(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    struct h2conn *c = ud;
    struct h2_stream *s = f->hd.stream_id ? conn__stream(ng, f->hd.stream_id) : NULL;

    switch (f->hd.type) {
    case NGHTTP2_HEADERS:
        if (!s || s->failed)
            break;
        if (!s->head_ready && s->status >= 200)
            s->head_ready = true;
        else if (!s->head_ready && s->status < 100)
            h2conn__stream_fail(s, false, "invalid :status from the upstream");
        if ((f->hd.flags & NGHTTP2_FLAG_END_STREAM) && s->head_ready)
            s->remote_ended = true;
        break;
    case NGHTTP2_DATA:
        if (s && (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
            s->remote_ended = true;
        break;
    case NGHTTP2_RST_STREAM:
        if (s)
            s->rst_received = true;
        break;
    case NGHTTP2_SETTINGS:
        if (!(f->hd.flags & NGHTTP2_FLAG_ACK))
            c->cap_changed = true;
        break;
    case NGHTTP2_GOAWAY:
        /* nghttp2 closes the open streams above last_stream_id (REFUSED_STREAM); the
         * pump fails the ones not yet sent. */
        c->goaway_received = true;
        c->goaway_last_id = f->goaway.last_stream_id;
        if (!c->draining) {
            c->draining = true;
            snprintf(c->reason, sizeof(c->reason), "the upstream sent GOAWAY (%s)",
                     nghttp2_http2_strerror(f->goaway.error_code));
        }
        break;
    case NGHTTP2_PING:
        if (f->hd.flags & NGHTTP2_FLAG_ACK) {
            c->ping_outstanding = false;
            c->pings_acked++;
        }
        break;
    default:
        break;
    }
    return 0;
}

static int on_data_chunk_cb(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                            size_t len, void *ud)
{
    struct h2_stream *s = conn__stream(ng, id);
    int r;

    (void)flags;
    (void)ud;
    /* The connection window is handed back at once: the bytes are ours now (held per
     * stream, bounded by the stream window), so a slow reader stalls only its stream. */
    if (nghttp2_is_fatal(nghttp2_session_consume_connection(ng, len)))
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (!s || s->failed)
        return 0;
    s->resp_got += len;
    if ((r = h2conn__stream_hold(s, data, len)) != 0)
        h2conn__stream_fail(s, false,
                            r == ERR_NOMEM ? "out of memory for the response body"
                                           : "the upstream overran the stream window");
    return 0;
}

static int on_stream_close_cb(nghttp2_session *ng, int32_t id, uint32_t code, void *ud)
{
    struct h2conn *c = ud;
    struct h2_stream *s = conn__stream(ng, id);

    if (!s)
        return 0;
    s->ng_closed = true;
    /* RFC 9113 8.1: a reset after a complete response (the server did not want the rest
     * of the request body) leaves the response whole. */
    if ((s->head_ready && s->remote_ended) || s->failed)
        return 0;
    if (c->goaway_received && id > c->goaway_last_id)
        h2conn__stream_fail(s, true,
                            "the upstream sent GOAWAY (last stream %d): the request was not "
                            "processed",
                            (int)c->goaway_last_id);
    else if (s->not_sent)
        h2conn__stream_fail(s,
                            s->not_sent == NGHTTP2_ERR_START_STREAM_NOT_ALLOWED ||
                                s->not_sent == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE,
                            "request not sent: %s", nghttp2_strerror(s->not_sent));
    else if (s->rst_received)
        h2conn__stream_fail(s, code == NGHTTP2_REFUSED_STREAM, "stream reset by the upstream: %s",
                            nghttp2_http2_strerror(code));
    else if (s->invalid)
        h2conn__stream_fail(s, false, "invalid response from the upstream: %s",
                            nghttp2_strerror(s->invalid));
    else
        h2conn__stream_fail(s, false, "stream closed: %s", nghttp2_http2_strerror(code));
    return 0;
}

static int on_frame_send_cb(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    struct h2conn *c = ud;
    struct h2_stream *s;

    if (f->hd.type == NGHTTP2_HEADERS && (s = conn__stream(ng, f->hd.stream_id)) != NULL)
        s->headers_sent = true;
    else if (f->hd.type == NGHTTP2_GOAWAY) {
        c->goaway_sent = true;
        c->goaway_sent_code = f->goaway.error_code;
    }
    return 0;
}

static int on_frame_not_send_cb(nghttp2_session *ng, const nghttp2_frame *f, int lib_error,
                                void *ud)
{
    struct h2_stream *s;

    (void)ud;
    if (f->hd.type == NGHTTP2_HEADERS && (s = conn__stream(ng, f->hd.stream_id)) != NULL)
        s->not_sent = lib_error;
    return 0;
}

static int on_invalid_frame_cb(nghttp2_session *ng, const nghttp2_frame *f, int lib_error, void *ud)
{
    struct h2conn *c = ud;
    struct h2_stream *s;

    if (f->hd.stream_id == 0)
        c->conn_invalid = lib_error;
    else if ((s = conn__stream(ng, f->hd.stream_id)) != NULL)
        s->invalid = lib_error;
    return 0;
}

ssize_t h2conn__read_body_cb(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                             uint32_t *data_flags, nghttp2_data_source *src, void *ud)
{
    struct h2_stream *s = conn__stream(ng, id);
    size_t n;

    (void)src;
    (void)ud;
    if (!s) /* done or cancelled: its RST_STREAM is queued ahead of any DATA */
        return NGHTTP2_ERR_DEFERRED;
    if (s->slen > 0) {
        n = length < s->slen ? length : s->slen;
        memcpy(buf, s->sb + s->soff, n);
        s->soff += n;
        s->slen -= n;
        if (s->slen == 0) {
            s->soff = 0;
            if (s->body_eof)
                *data_flags |= NGHTTP2_DATA_FLAG_EOF;
            else
                h2conn__schedule(s->c); /* read the next piece */
        }
        return (ssize_t)n;
    }
    if (s->body_eof) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        return 0;
    }
    s->data_deferred = true; /* h2conn__stream_step resumes it */
    h2conn__schedule(s->c);
    return NGHTTP2_ERR_DEFERRED;
}

/* ---- life cycle ---- */

static void conn__timer_close_cb(uv_handle_t *h)
{
    free(h);
}

static void conn__destroy(struct h2conn *c)
{
    struct h2_stream *s, *next;

    for (s = c->head; s; s = next) {
        next = s->next;
        h2conn__stream_free(s);
    }
    nghttp2_session_del(c->ng);
    uv_close((uv_handle_t *)c->timer, conn__timer_close_cb);
    memset(c, 0, sizeof(*c));
    free(c);
}

static void conn__enter(struct h2conn *c)
{
    c->busy++;
}

/* Returns true if c was freed (h2conn_free from a callback). */
static bool conn__leave(struct h2conn *c)
{
    if (--c->busy == 0 && c->free_pending) {
        conn__destroy(c);
        return true;
    }
    return false;
}

static void conn__timer_cb(uv_timer_t *t)
{
    struct h2conn *c = t->data;

    conn__enter(c);
    conn__run(c);
    conn__leave(c);
}

/* nghttp2 copies a request's headers (the key too, in :path or a header) and frees the
 * copy once the HEADERS are sent: every block it frees is wiped first (wipe.h). */
static void *h2conn__malloc(size_t size, void *ud)
{
    return malloc(size);
}

static void h2conn__free(void *p, void *ud)
{
    wipe_free(p);
}

static void *h2conn__calloc(size_t n, size_t size, void *ud)
{
    return calloc(n, size);
}

static void *h2conn__realloc(void *p, size_t size, void *ud)
{
    return wipe_realloc(p, size);
}

static nghttp2_mem h2conn__wiping_mem = {NULL, h2conn__malloc, h2conn__free, h2conn__calloc,
                                         h2conn__realloc};

static int conn__callbacks(nghttp2_session_callbacks **out)
{
    nghttp2_session_callbacks *cb;

    if (nghttp2_session_callbacks_new(&cb) != 0)
        return ERR_NOMEM;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers_cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header_cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close_cb);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send_cb);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cb, on_frame_not_send_cb);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, on_invalid_frame_cb);
    *out = cb;
    return 0;
}

int h2conn_new(uv_loop_t *loop, const struct h2conn_transport *tr, void *t,
               const struct h2conn_events *ev, void *ud, struct h2conn **out)
{
    const nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2CONN_STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, H2CONN_MAX_HEAD_BYTES},
    };
    nghttp2_session_callbacks *cb = NULL;
    nghttp2_option *opt = NULL;
    struct h2conn *c = NULL;
    int r;

    assert(tr->gather != NULL);
    *out = NULL;
    if ((c = calloc(1, sizeof(*c))) == NULL || (c->timer = malloc(sizeof(*c->timer))) == NULL) {
        r = ERR_NOMEM;
        goto out;
    }
    c->loop = loop;
    c->tr = *tr;
    c->t = t;
    c->ev = *ev;
    c->ud = ud;
    if ((r = uv_timer_init(loop, c->timer)) != 0) {
        free(c->timer);
        c->timer = NULL;
        goto out;
    }
    c->timer->data = c;
    if ((r = conn__callbacks(&cb)) != 0 || nghttp2_option_new(&opt) != 0) {
        r = ERR_NOMEM;
        goto out;
    }
    /* Windows follow the reader (h2conn.h); one stream before the server's SETTINGS. */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_peer_max_concurrent_streams(opt, 1);
    nghttp2_option_set_max_continuations(opt, H2CONN_MAX_CONTINUATIONS);
    if (nghttp2_session_client_new3(&c->ng, cb, c, opt, &h2conn__wiping_mem) != 0) {
        r = ERR_NOMEM;
        goto out;
    }
    if (nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
        nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0,
                                              (int32_t)H2CONN_CONN_WINDOW) != 0) {
        r = ERR_NOMEM;
        goto out;
    }
    h2conn__flush(c); /* the preface leaves now; a send failure shows on first use */
    *out = c;
    c = NULL; /* transferred */
    r = 0;
out:
    nghttp2_session_callbacks_del(cb);
    nghttp2_option_del(opt);
    if (c) {
        if (c->ng)
            nghttp2_session_del(c->ng);
        if (c->timer)
            uv_close((uv_handle_t *)c->timer, conn__timer_close_cb);
        free(c);
    }
    return r;
}

int h2conn_feed(struct h2conn *c, const uint8_t *data, size_t len)
{
    ssize_t n;
    bool usable;

    if (c->closed || c->failing)
        return ERR_CLOSED;
    conn__enter(c);
    n = nghttp2_session_mem_recv(c->ng, data, len);
    if (n < 0)
        h2conn__fail(c, "HTTP/2 connection error: %s", nghttp2_strerror((int)n));
    conn__run(c);
    usable = !c->closed && !c->failing;
    if (conn__leave(c))
        return ERR_CLOSED;
    return usable ? 0 : ERR_CLOSED;
}

void h2conn_on_drain(struct h2conn *c)
{
    if (c->closed)
        return;
    conn__enter(c);
    conn__run(c);
    conn__leave(c);
}

void h2conn_transport_closed(struct h2conn *c, const char *reason)
{
    if (c->closed)
        return;
    c->transport_gone = true;
    h2conn__fail(c, "the connection to the upstream closed: %.100s", reason ? reason : "EOF");
    conn__enter(c);
    conn__run(c);
    conn__leave(c);
}

bool h2conn_open(const struct h2conn *c)
{
    return !c->closed && !c->failing && !c->draining && !c->transport_gone;
}

bool h2conn_available(const struct h2conn *c)
{
    uint32_t max;

    if (!h2conn_open(c))
        return false;
    max = nghttp2_session_get_remote_settings(c->ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    return c->live < max;
}

uint64_t h2conn_due(const struct h2conn *c)
{
    /* One stream only: with others open, a batch of this one's bytes could hold back
     * theirs (and their frames are promised by nobody). */
    const struct h2_stream *s = conn__lone_stream(c);
    int32_t stream_win, conn_win;
    uint64_t due;

    if (s == NULL || !s->head_ready || s->remote_ended || s->ng_closed || s->failed ||
        s->is_head || http1_status_has_no_body(s->status) || s->resp_len < 0 ||
        (uint64_t)s->resp_len <= s->resp_got)
        return 0;
    due = (uint64_t)s->resp_len - s->resp_got;
    /* What the server may send before it needs a WINDOW_UPDATE from us. */
    stream_win = nghttp2_session_get_stream_local_window_size(c->ng, s->id);
    conn_win = nghttp2_session_get_local_window_size(c->ng);
    if (stream_win < 0 || conn_win < 0)
        return 0;
    if ((uint64_t)stream_win < due)
        due = (uint64_t)stream_win;
    if ((uint64_t)conn_win < due)
        due = (uint64_t)conn_win;
    return due;
}

size_t h2conn_active(const struct h2conn *c)
{
    return c->live;
}

void h2conn_ping(struct h2conn *c)
{
    if (c->closed || c->failing)
        return;
    if (c->ping_outstanding)
        h2conn__fail(c, "ping timeout: the upstream did not answer a PING");
    else if (nghttp2_submit_ping(c->ng, NGHTTP2_FLAG_NONE, NULL) != 0)
        h2conn__fail(c, "out of memory for a PING");
    else
        c->ping_outstanding = true;
    conn__enter(c);
    conn__run(c);
    conn__leave(c);
}

void h2conn_close(struct h2conn *c)
{
    struct h2_stream *s;
    const uint8_t *p;
    ssize_t n;

    if (!c || c->closed)
        return;
    for (s = c->head; s; s = s->next)
        if (!s->dead) {
            s->dead = true;
            c->live--;
            if (!s->ng_closed)
                nghttp2_session_set_stream_user_data(c->ng, s->id, NULL);
        }
    /* GOAWAY goes out ahead of any queued DATA (nghttp2 sends it before the data queue);
     * after it nghttp2 produces nothing more. The high-water mark is ignored: the caller
     * closes the transport next and wants the GOAWAY in it. */
    if (!c->transport_gone && nghttp2_session_terminate_session(c->ng, NGHTTP2_NO_ERROR) == 0)
        while ((n = nghttp2_session_mem_send(c->ng, &p)) > 0)
            if (c->tr.send(c->t, p, (size_t)n) < 0)
                break;
    c->closed = true;
    uv_timer_stop(c->timer);
    if (!c->running)
        conn__sweep(c);
}

void h2conn_free(struct h2conn *c)
{
    if (!c)
        return;
    if (c->busy > 0) {
        c->free_pending = true;
        c->closed = true;
        uv_timer_stop(c->timer);
        return;
    }
    conn__destroy(c);
}

uint64_t h2conn_pings_acked(const struct h2conn *c)
{
    return c->pings_acked;
}
