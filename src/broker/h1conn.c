/*
 * h1conn.c - one HTTP/1.1 client connection to the upstream. See h1conn.h.
 *
 * Lifetime: h1conn_free marks the connection dead and closes its timer; the memory goes
 * in the timer's close callback, a later loop turn. So after any callback the struct is
 * still there to look at, and every path checks c->dead (or the exchange's own flags)
 * after calling out, instead of counting how deep it is.
 *
 * Response bytes the exchange does not take at once are kept in two places: `pend`,
 * decoded body bytes offered and refused (H1_PAUSE), delivered first on resume; and
 * `held`, raw bytes not yet looked at. Both hold at most what one transport read
 * brought, since reading stops while either is non-empty.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "chunked.h"
#include "err.h"
#include "h1conn.h"
#include "response.h"
#include "upstream.h"

#define H1CONN_BODY_CHUNK (16 * 1024)       /* request body read per read_body call */
#define H1CONN_HELD_MAX (4 * 1024 * 1024)   /* raw bytes kept while paused: a bound, not a goal */
#define H1CONN_REQ_HEAD_MAX (256 * 1024)    /* the request head we write */

struct h1_exchange {
    struct h1conn *c;
    const struct h1_exchange_ops *ops;
    void *ud;
    bool active;          /* submitted, no on_done yet, not cancelled */
    bool chunked_out;     /* the request body goes chunked */
    bool body_sent;       /* the whole request is written */
    bool body_paused;     /* read_body said H1_PAUSE */
    int64_t body_left;    /* of a known-length request body */
    bool head_done;       /* the final response head was delivered */
    bool is_head;         /* the request was HEAD: no response body */
    bool any_byte;        /* something of the response arrived */
    enum http1_response_body kind;
    uint64_t remaining;   /* HTTP1_RESPONSE_LENGTH: body bytes still to come */
    bool keep_alive;
    struct chunked_decoder dec;
};

struct h1conn {
    uv_loop_t *loop;
    const struct h1conn_transport *tr;
    void *t;
    const struct h1conn_events *ev;
    void *ud;
    uv_timer_t timer;     /* deliveries after resume, and on_closed after a cancel */
    struct h1_exchange x; /* one at a time */
    unsigned served;      /* exchanges completed on this connection */
    bool dead;            /* h1conn_free ran */
    bool finishing;       /* inside on_done: not idle yet */
    bool closed;          /* on_closed reported, or due: no more exchanges */
    bool close_due;       /* on_closed to be reported from the timer */
    bool read_paused;
    bool eof;             /* the transport ended: no more bytes */
    char eof_reason[160]; /* why, "" for a clean EOF */
    char close_reason[160];
    struct buf *head;     /* the response head as it arrives */
    struct buf *pend;     /* decoded body bytes refused by on_body */
    struct buf *held;     /* raw bytes not processed yet */
    struct buf *out;      /* the request head, and chunk framing (it may hold the key) */
    struct http1_response resp;
};

static void h1conn__process(struct h1conn *c, const uint8_t *p, size_t n);
static void on_timer(uv_timer_t *t);

/* ---- the end of things ---- */

static void on_timer_closed(uv_handle_t *h)
{
    struct h1conn *c = h->data;

    buf_free(c->head);
    buf_free(c->pend);
    buf_free(c->held);
    buf_free(c->out);
    free(c);
}

/* The connection is of no more use: once, to the owner (reason copied). */
static void h1conn__close(struct h1conn *c, const char *reason)
{
    if (c->closed || c->dead)
        return;
    c->closed = true;
    if (reason != c->close_reason)
        snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason);
    c->ev->on_closed(c, c->close_reason, c->ud);
}

static void h1conn__set_paused(struct h1conn *c, bool pause)
{
    if (c->read_paused != pause && !c->dead) {
        c->read_paused = pause;
        c->tr->read_pause(c->t, pause);
    }
}

/* The exchange's end: on_done, then the connection idle again or closed. */
static void h1conn__finish(struct h1conn *c, int result, const char *detail, bool retryable)
{
    struct h1_exchange *x = &c->x;
    bool reusable = result == 0 && x->keep_alive && x->body_sent && !c->eof &&
                    buf_len(c->held) == 0 && buf_len(c->head) == 0;

    if (!x->active)
        return;
    x->active = false;
    buf_reset(c->pend);
    if (result == 0)
        c->served++;
    /* Not idle until it is known to be reusable: on_done may look for a connection. */
    c->finishing = true;
    x->ops->on_done(x->ud, result, detail, retryable);
    c->finishing = false;
    if (c->dead)
        return;
    if (!reusable) {
        h1conn__close(c, result == 0 ? "the response's framing ends the connection" : detail);
        return;
    }
    buf_reset(c->held);
    h1conn__set_paused(c, false);
    c->ev->on_idle(c, c->ud);
}

static void h1conn__fail(struct h1conn *c, int result, const char *detail)
{
    h1conn__finish(c, result, detail, false);
    h1conn__close(c, detail);
}

/* ---- the request ---- */

static int put_request_head(struct h1conn *c, const struct h1_request *rq)
{
    struct buf *b = c->out;
    int r;

    buf_reset(b);
    if ((r = buf_put_str(b, rq->method)) != 0 || (r = buf_put_str(b, " ")) != 0 ||
        (r = buf_put_str(b, rq->path)) != 0 || (r = buf_put_str(b, " HTTP/1.1\r\nHost: ")) != 0 ||
        (r = buf_put_str(b, rq->authority)) != 0 || (r = buf_put_str(b, "\r\n")) != 0)
        return r;
    for (size_t i = 0; i < rq->nheaders; i++) {
        const char *line = rq->headers[i], *v;
        size_t nlen = strcspn(line, ":\r\n"), vlen;
        enum http1_field field;
        uint8_t *dst;

        if (nlen == 0 || line[nlen] != ':')
            return ERR_INVALID;
        for (v = line + nlen + 1; *v == ' ' || *v == '\t'; v++)
            ;
        vlen = strcspn(v, "\r\n");
        if (v[vlen] != '\0')
            return ERR_INVALID; /* a CR or LF would split the request */
        field = http1_field_of(line, nlen);
        if (field == HTTP1_FIELD_HOST || field == HTTP1_FIELD_CONTENT_LENGTH ||
            field == HTTP1_FIELD_TRANSFER_ENCODING || field == HTTP1_FIELD_CONNECTION)
            continue;
        /* One reservation for the line: name, ": ", value, CRLF. */
        if ((r = buf_reserve(b, nlen + vlen + 4, &dst)) != 0)
            return r;
        memcpy(dst, line, nlen);
        memcpy(dst + nlen, ": ", 2);
        memcpy(dst + nlen + 2, v, vlen);
        memcpy(dst + nlen + 2 + vlen, "\r\n", 2);
        buf_commit(b, nlen + vlen + 4);
    }
    if (rq->has_body && rq->body_len >= 0) {
        if ((r = buf_put_str(b, "Content-Length: ")) == 0 &&
            (r = buf_put_u64(b, (uint64_t)rq->body_len)) == 0)
            r = buf_put_str(b, "\r\n");
    }
    else if (rq->has_body)
        r = buf_put_str(b, "Transfer-Encoding: chunked\r\n");
    if (r == 0)
        r = buf_put_str(b, "\r\n");
    return r;
}

static int h1conn__send(struct h1conn *c, const void *p, size_t n)
{
    return n == 0 ? 0 : c->tr->send(c->t, p, n);
}

/* Pulls the request body while the transport's queue has room. */
static void h1conn__pump_body(struct h1conn *c)
{
    struct h1_exchange *x = &c->x;
    /* Not zeroed on entry (-ftrivial-auto-var-init): read_body fills what is used, and it
     * is wiped after; zeroing 16 KiB cost more than the rest of a small request's pump. */
    uint8_t chunk[H1CONN_BODY_CHUNK] __attribute__((uninitialized));
    char line[HTTP1_CHUNK_LINE_MAX];

    while (x->active && !x->body_sent && !x->body_paused &&
           c->tr->pending(c->t) < H1CONN_SEND_HIGH) {
        ssize_t n = x->ops->read_body(x->ud, chunk, sizeof(chunk));
        int r = 0;

        if (c->dead || !x->active)
            return;
        if (n == H1_PAUSE) {
            x->body_paused = true;
            return;
        }
        if (n < 0 || (!x->chunked_out && (n > x->body_left || (n == 0 && x->body_left > 0)))) {
            h1conn__fail(c, UPSTREAM_ERR_CONNECT, "the request body does not match its length");
            return;
        }
        if (n == 0) {
            x->body_sent = true;
            if (x->chunked_out)
                r = h1conn__send(c, "0\r\n\r\n", 5);
        } else if (x->chunked_out) {
            size_t ll = http1_chunk_line(line, (size_t)n);

            if ((r = h1conn__send(c, line, ll)) == 0 &&
                (r = h1conn__send(c, chunk, (size_t)n)) == 0)
                r = h1conn__send(c, "\r\n", 2);
        } else {
            x->body_left -= n;
            r = h1conn__send(c, chunk, (size_t)n);
        }
        explicit_bzero(chunk, (size_t)n);
        if (r != 0) {
            h1conn__fail(c, UPSTREAM_ERR_CONNECT, "cannot write to the upstream");
            return;
        }
    }
}

int h1conn_submit(struct h1conn *c, const struct h1_request *rq, const struct h1_exchange_ops *ops,
                  void *ud, struct h1_exchange **out)
{
    struct h1_exchange *x = &c->x;
    int r;

    *out = NULL;
    if (!h1conn_idle(c))
        return ERR_INVALID;
    if ((r = put_request_head(c, rq)) != 0) {
        buf_reset(c->out);
        return r == ERR_TOO_LARGE ? ERR_INVALID : r;
    }
    memset(x, 0, sizeof(*x));
    x->c = c;
    x->ops = ops;
    x->ud = ud;
    x->active = true;
    x->is_head = strcmp(rq->method, "HEAD") == 0;
    x->chunked_out = rq->has_body && rq->body_len < 0;
    x->body_left = rq->has_body && rq->body_len > 0 ? rq->body_len : 0;
    x->body_sent = !rq->has_body;
    chunked_init(&x->dec);
    buf_reset(c->head);
    r = h1conn__send(c, buf_ptr(c->out), buf_len(c->out));
    buf_reset(c->out); /* wiped: it held the request line and headers, so maybe the key */
    if (r != 0) {
        x->active = false;
        return r;
    }
    *out = x;
    /* The body follows from a loop turn of its own: no callback from inside submit. */
    if (!x->body_sent)
        uv_timer_start(&c->timer, on_timer, 0, 0);
    return 0;
}

/* ---- the response ---- */

/* What b holds, moved into a block of its own so that b can fill again while it is
 * processed; NULL (and the exchange failed) without memory. Release with h1conn__drop. */
static uint8_t *h1conn__take(struct h1conn *c, struct buf *b, size_t *n)
{
    uint8_t *p;

    *n = buf_len(b);
    if ((p = malloc(*n)) == NULL) {
        h1conn__fail(c, UPSTREAM_ERR_TRANSFER, "out of memory");
        return NULL;
    }
    memcpy(p, buf_ptr(b), *n);
    buf_reset(b);
    return p;
}

/* Wipes (it held a response body) and frees what h1conn__take gave. */
static void h1conn__drop(uint8_t *p, size_t n)
{
    explicit_bzero(p, n);
    free(p);
}

/* Offers body bytes; false when the exchange paused (they are kept in pend) or ended. */
static bool h1conn__deliver(struct h1conn *c, const uint8_t *p, size_t n)
{
    struct h1_exchange *x = &c->x;
    int r;

    if (n == 0)
        return true;
    r = x->ops->on_body(x->ud, p, n);
    if (c->dead || !x->active)
        return false;
    if (r == H1_PAUSE) {
        if (buf_put(c->pend, p, n) != 0) {
            h1conn__fail(c, UPSTREAM_ERR_TRANSFER, "out of memory");
            return false;
        }
        h1conn__set_paused(c, true);
        return false;
    }
    return true;
}

/* Keeps raw bytes for after the pause. */
static void h1conn__hold(struct h1conn *c, const uint8_t *p, size_t n)
{
    if (n > 0 && buf_put(c->held, p, n) != 0)
        h1conn__fail(c, UPSTREAM_ERR_TRANSFER, "too much data from the upstream while paused");
}

/* Body bytes in p[0..n), after the head. */
static void h1conn__process_body(struct h1conn *c, const uint8_t *p, size_t n)
{
    struct h1_exchange *x = &c->x;

    while (n > 0 && x->active) {
        size_t used = 0, dlen = 0;
        const char *data = NULL;
        int r = 0;

        switch (x->kind) {
        case HTTP1_RESPONSE_NONE:
            h1conn__fail(c, UPSTREAM_ERR_TRANSFER, "bytes after a response without a body");
            return;
        case HTTP1_RESPONSE_CLOSE:
            used = dlen = n;
            data = (const char *)p;
            break;
        case HTTP1_RESPONSE_LENGTH:
            used = dlen = n < x->remaining ? n : (size_t)x->remaining;
            data = (const char *)p;
            x->remaining -= dlen;
            break;
        case HTTP1_RESPONSE_CHUNKED:
            r = chunked_decode(&x->dec, (const char *)p, n, &used, &data, &dlen);
            if (r < 0) {
                h1conn__fail(c, UPSTREAM_ERR_TRANSFER, "malformed chunked body from the upstream");
                return;
            }
            break;
        }
        if (!h1conn__deliver(c, (const uint8_t *)data, dlen)) {
            if (!c->dead && x->active)
                h1conn__hold(c, p + used, n - used);
            return;
        }
        p += used;
        n -= used;
        if ((x->kind == HTTP1_RESPONSE_LENGTH && x->remaining == 0) ||
            (x->kind == HTTP1_RESPONSE_CHUNKED && r == 1)) {
            if (n > 0)
                x->keep_alive = false; /* bytes nobody asked for: do not reuse */
            h1conn__finish(c, 0, NULL, false);
            return;
        }
    }
}

/*
 * The head, once whole: 1xx skipped, the final one delivered, then what follows it. A head
 * that comes whole in one piece (the usual case) is parsed where it lies and what follows
 * it goes on as body: no copy into c->head and out again. Only a head cut across pieces is
 * gathered in c->head.
 */
static void h1conn__process(struct h1conn *c, const uint8_t *p, size_t n)
{
    struct h1_exchange *x = &c->x;
    bool gathered = buf_len(c->head) > 0;
    const uint8_t *head = p;
    size_t len = n;
    int r;

    if (n > 0)
        x->any_byte = true;
    if (x->head_done) {
        h1conn__process_body(c, p, n);
        return;
    }
    if (gathered) {
        if (buf_put(c->head, p, n) != 0) {
            h1conn__fail(c, UPSTREAM_ERR_CONNECT, "the upstream's response head is too large");
            return;
        }
        head = buf_ptr(c->head);
        len = buf_len(c->head);
    }
    for (;;) {
        r = http1_parse_response((const char *)head, len, x->is_head, &c->resp);
        if (r == ERR_INCOMPLETE) {
            /* What is left waits for the next piece, the interim heads dropped. */
            if (gathered)
                buf_consume(c->head, buf_len(c->head) - len); /* interim heads */
            else if (buf_put(c->head, head, len) != 0)
                r = ERR_HTTP_HEAD_TOO_LARGE;
            if (r == ERR_INCOMPLETE)
                return;
        }
        if (r != 0) {
            h1conn__fail(c, UPSTREAM_ERR_CONNECT, r == ERR_HTTP_HEAD_TOO_LARGE
                                                      ? "the upstream's response head is too large"
                                                      : "malformed response head from the upstream");
            return;
        }
        if (c->resp.status >= 200)
            break;
        if (c->resp.status == 101) {
            h1conn__fail(c, UPSTREAM_ERR_CONNECT, "the upstream switched protocols");
            return;
        }
        head += c->resp.head_len; /* 100 Continue, 103 Early Hints */
        len -= c->resp.head_len;
    }
    x->head_done = true;
    x->kind = c->resp.body;
    x->remaining = c->resp.content_length;
    x->keep_alive = c->resp.keep_alive;
    x->ops->on_head(x->ud, c->resp.status, c->resp.headers, c->resp.num_headers);
    if (c->dead || !x->active)
        return;
    head += c->resp.head_len;
    len -= c->resp.head_len;
    if (x->kind == HTTP1_RESPONSE_NONE || (x->kind == HTTP1_RESPONSE_LENGTH && x->remaining == 0)) {
        if (len > 0)
            x->keep_alive = false;
        if (gathered)
            buf_reset(c->head);
        h1conn__finish(c, 0, NULL, false);
        return;
    }
    if (!gathered) {
        h1conn__process_body(c, head, len);
    } else if (len > 0) {
        /* What came with the head is body: out of c->head first, as it is reused. */
        uint8_t *rest;

        buf_consume(c->head, buf_len(c->head) - len); /* the heads, to the body */
        if ((rest = h1conn__take(c, c->head, &len)) == NULL)
            return;
        h1conn__process_body(c, rest, len);
        h1conn__drop(rest, len);
    } else {
        buf_reset(c->head);
    }
}

void h1conn_feed(struct h1conn *c, const uint8_t *data, size_t len)
{
    if (c->dead || c->closed || len == 0)
        return;
    if (!c->x.active) {
        h1conn__close(c, "the upstream sent bytes between responses");
        return;
    }
    if (buf_len(c->pend) > 0 || buf_len(c->held) > 0) {
        h1conn__hold(c, data, len); /* a read that was under way when we paused */
        return;
    }
    h1conn__process(c, data, len);
}

/* The transport ended and nothing kept is left to process: a close-delimited body is
 * whole, anything else under way broke off. */
static void h1conn__eof(struct h1conn *c)
{
    struct h1_exchange *x = &c->x;
    const char *reason = c->eof_reason[0] != '\0' ? c->eof_reason : NULL;

    if (x->active && x->head_done && x->kind == HTTP1_RESPONSE_CLOSE && reason == NULL) {
        x->keep_alive = false;
        h1conn__finish(c, 0, NULL, false);
    } else if (x->active) {
        const char *detail = x->any_byte ? "the upstream closed the connection mid-response"
                             : reason != NULL ? reason
                                              : "the upstream closed the connection before answering";

        h1conn__finish(c, x->head_done ? UPSTREAM_ERR_TRANSFER : UPSTREAM_ERR_CONNECT, detail,
                       !x->any_byte && c->served > 0);
    }
    if (!c->dead)
        h1conn__close(c, reason != NULL ? reason : "closed by the upstream");
}

void h1conn_transport_closed(struct h1conn *c, const char *reason)
{
    if (c->dead || c->closed || c->eof)
        return;
    c->eof = true;
    snprintf(c->eof_reason, sizeof(c->eof_reason), "%s", reason != NULL ? reason : "");
    /* Bytes kept while paused come first: the end follows once they are taken. */
    if (c->x.active && (buf_len(c->pend) > 0 || buf_len(c->held) > 0))
        return;
    h1conn__eof(c);
}

/* ---- resume, drain, the timer ---- */

/* After a resume, from a loop turn of its own: kept bytes first, then the body to send. */
static void on_timer(uv_timer_t *t)
{
    struct h1conn *c = t->data;
    struct h1_exchange *x = &c->x;
    uint8_t *raw;
    size_t n;

    if (c->close_due) {
        c->close_due = false;
        c->closed = false;
        h1conn__close(c, c->close_reason);
        return;
    }
    if (x->active && buf_len(c->pend) > 0) {
        bool taken;

        if ((raw = h1conn__take(c, c->pend, &n)) == NULL)
            return;
        taken = h1conn__deliver(c, raw, n); /* refused again: back in pend */
        h1conn__drop(raw, n);
        if (!taken)
            return;
        if (x->kind == HTTP1_RESPONSE_LENGTH && x->remaining == 0 && buf_len(c->held) == 0) {
            h1conn__finish(c, 0, NULL, false);
            return;
        }
    }
    if (x->active && buf_len(c->held) > 0) {
        if ((raw = h1conn__take(c, c->held, &n)) == NULL)
            return;
        h1conn__process(c, raw, n);
        h1conn__drop(raw, n);
    }
    if (c->dead)
        return;
    if (c->eof && buf_len(c->pend) == 0 && buf_len(c->held) == 0) {
        h1conn__eof(c);
        return;
    }
    if (x->active && buf_len(c->pend) == 0 && buf_len(c->held) == 0)
        h1conn__set_paused(c, false);
    if (x->active)
        h1conn__pump_body(c);
}

void h1_exchange_resume(struct h1_exchange *x)
{
    struct h1conn *c = x->c;

    if (c->dead || !x->active)
        return;
    x->body_paused = false;
    uv_timer_start(&c->timer, on_timer, 0, 0);
}

void h1conn_on_drain(struct h1conn *c)
{
    if (!c->dead && c->x.active && !c->x.body_sent)
        h1conn__pump_body(c);
}

void h1_exchange_cancel(struct h1_exchange *x)
{
    struct h1conn *c = x->c;

    if (!x->active)
        return;
    x->active = false;
    buf_reset(c->pend);
    buf_reset(c->held);
    if (c->dead || c->closed)
        return;
    /* Cut short: what is left of it on the wire would be read as the next answer. */
    c->closed = true;
    c->close_due = true;
    snprintf(c->close_reason, sizeof(c->close_reason), "an exchange was cancelled");
    uv_timer_start(&c->timer, on_timer, 0, 0);
}

/* ---- the connection ---- */

bool h1conn_idle(const struct h1conn *c)
{
    return !c->dead && !c->closed && !c->x.active && !c->finishing;
}

uint64_t h1conn_due(const struct h1conn *c)
{
    const struct h1_exchange *x = &c->x;
    size_t held = buf_len(c->held);

    if (c->dead || c->closed || c->eof || !x->active || !x->head_done ||
        x->kind != HTTP1_RESPONSE_LENGTH)
        return 0;
    return x->remaining > held ? x->remaining - held : 0;
}

int h1conn_new(uv_loop_t *loop, const struct h1conn_transport *tr, void *t,
               const struct h1conn_events *ev, void *ud, struct h1conn **out)
{
    struct h1conn *c = calloc(1, sizeof(*c));

    *out = NULL;
    if (c == NULL)
        return ERR_NOMEM;
    c->head = buf_new(HTTP1_MAX_RESPONSE_HEAD + 64 * 1024, BUF_WIPE);
    c->pend = buf_new(H1CONN_HELD_MAX, BUF_WIPE);
    c->held = buf_new(H1CONN_HELD_MAX, BUF_WIPE);
    c->out = buf_new(H1CONN_REQ_HEAD_MAX, BUF_WIPE);
    if (c->head == NULL || c->pend == NULL || c->held == NULL || c->out == NULL) {
        buf_free(c->head);
        buf_free(c->pend);
        buf_free(c->held);
        buf_free(c->out);
        free(c);
        return ERR_NOMEM;
    }
    c->loop = loop;
    c->tr = tr;
    c->t = t;
    c->ev = ev;
    c->ud = ud;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    *out = c;
    return 0;
}

void h1conn_free(struct h1conn *c)
{
    if (c == NULL || c->dead)
        return;
    c->dead = true;
    c->x.active = false;
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}
