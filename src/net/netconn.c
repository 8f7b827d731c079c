/*
 * netconn.c - the stream of a connection: its handles and their lifetime, the write
 * queue, reading and backpressure, the owner's events. See netconn.h.
 *
 * The connect that builds a connection is netconn_connect.c; TLS is netconn_tls.c.
 * Both share struct net_conn (netconn_internal.h).
 *
 * Writes: bytes for the socket (ciphertext when TLS) are appended to out, and with no
 * write in flight they leave at the end of the loop turn with the turn's other writes,
 * in one system call (netbatch.h); what the socket does not take leaves with one
 * uv_write at a time, which takes all of out (inflight) while new bytes gather in a
 * fresh out, so many small writes leave as one. Both buffers are freed when a queued
 * write drains; out, emptied by a whole batched write, keeps at most NET_OUT_KEEP bytes
 * of memory for the next request (OpenSSL keeps its record buffers: see
 * net_tls_ctx_new).
 *
 * Events reach the owner from the loop only: read_start and set_events arm a
 * zero-timeout timer that delivers what was held back, then reads the socket again;
 * an end is reported from the same timer (conn__end), after the data before it.
 */
#include <assert.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "err.h"
#include "netconn_internal.h"

static void conn__on_timer(uv_timer_t *t);
static size_t conn__batch_fill(struct netbatch_item *it, const uint8_t **data);
static void conn__batch_done(struct netbatch_item *it, ssize_t n);

int conn__new(uv_loop_t *loop, struct net_conn **out)
{
    struct net_conn *c;
    int r;

    *out = NULL;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return ERR_NOMEM;
    c->loop = loop;
    if ((r = uv_timer_init(loop, &c->timer)) != 0) {
        free(c);
        return r;
    }
    c->timer.data = c;
    (void)uv_prepare_init(loop, &c->flush); /* cannot fail */
    c->flush.data = c;
    c->refs = 2;
    netbatch_item_init(&c->batch, (uv_stream_t *)&c->tcp, conn__batch_fill, conn__batch_done);
    *out = c;
    return 0;
}

static void conn__destroy(struct net_conn *c)
{
    free(c->host);
    free(c->hostport);
    net_proxy_free(c->proxy);
    buf_free(c->held);
    buf_free(c->out);
    buf_free(c->inflight);
    buf_free(c->connect.head);
    if (c->connect.ai != NULL)
        uv_freeaddrinfo(c->connect.ai);
    explicit_bzero(c, sizeof(*c));
    free(c);
}

bool conn__unref(struct net_conn *c)
{
    assert(c->refs > 0);
    if (--c->refs == 0 && c->released) {
        conn__destroy(c);
        return true;
    }
    return false;
}

static void conn__on_closed(uv_handle_t *h)
{
    conn__unref(h->data);
}

void conn__release(struct net_conn *c)
{
    assert(!c->released);
    c->released = true;
    tls__free(c);
    if (c->gai_active)
        uv_cancel((uv_req_t *)&c->gai); /* its callback still comes, with UV_EAI_CANCELED */
    netbatch_cancel(&c->batch); /* not told, if its write was made in this very flush */
    if (c->batched) {
        /* As a write made at once would have been: the owner's last before letting go. */
        if (c->tcp_open)
            conn__offer_out(c);
        c->batched = false;
    }
    c->writing = false;
    if (c->tcp_open) {
        c->tcp_open = false;
        c->uv_reading = false;
        uv_close((uv_handle_t *)&c->tcp, conn__on_closed); /* pending write: cancelled */
    }
    uv_close((uv_handle_t *)&c->timer, conn__on_closed);
    uv_close((uv_handle_t *)&c->flush, conn__on_closed);
    if (c->batch_timer_open)
        uv_close((uv_handle_t *)&c->batch_timer, conn__on_closed);
    c->batching = false;
    /* inflight stays until the handle is closed: uv_write may still point into it. */
    buf_free(c->out);
    buf_free(c->held);
    c->out = c->held = NULL;
}

void conn__start_timer(struct net_conn *c, uint64_t ms)
{
    uv_timer_start(&c->timer, conn__on_timer, ms, 0);
}

/* The socket's bytes go to out; a connection carrying plaintext (no TLS, or before
 * the handshake: the CONNECT request holds the proxy's credentials) wipes them. */
struct buf *conn__outbuf(struct net_conn *c)
{
    if (c->out == NULL)
        c->out = buf_new(SIZE_MAX, !c->use_tls || c->state != NET_OPEN ? BUF_WIPE : 0);
    return c->out;
}

int conn__queue(struct net_conn *c, const uint8_t *data, size_t len)
{
    struct buf *b = conn__outbuf(c);

    return b == NULL ? ERR_NOMEM : buf_put(b, data, len);
}

void conn__offer_out(struct net_conn *c)
{
    uv_buf_t b;

    if (c->out == NULL || buf_len(c->out) == 0)
        return;
    b.base = (char *)buf_mutable_ptr(c->out);
    b.len = buf_len(c->out);
    (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
}

/* A write failed: reported from the loop, as flush runs inside net_conn_write too. */
static void conn__write_failed(struct net_conn *c, int r)
{
    char why[NET_ERROR_MAX];

    c->write_failed = true;
    if (c->state == NET_OPEN) {
        snprintf(why, sizeof(why), "write to %s: %s", c->hostport, uv_strerror(r));
        conn__end(c, why);
    } else {
        connect__fail(c, "connect to %s: %s", c->hostport, uv_strerror(r));
    }
}

static void conn__on_write(uv_write_t *req, int status)
{
    struct net_conn *c = req->data;

    c->writing = false;
    buf_reset(c->inflight);
    if (c->released)
        return;
    if (status < 0) {
        conn__write_failed(c, status);
        return;
    }
    if (c->out != NULL && buf_len(c->out) > 0) {
        conn__flush(c);
        /* In this turn's batch, or failed: on_drain later, or never. */
        if (c->writing || c->write_failed || c->released || c->closed)
            return;
    }
    buf_free(c->out);
    buf_free(c->inflight);
    c->out = c->inflight = NULL;
    if (c->have_events && c->ev.on_drain != NULL && !c->closed)
        c->ev.on_drain(c, c->ud);
}

/* Hands out to uv_write (with nothing in flight): new bytes gather meanwhile in a fresh
 * out, and leave together when it completes (conn__on_write). */
static void conn__write_out(struct net_conn *c)
{
    struct buf *t = c->inflight;
    uv_buf_t b;
    int r;

    c->inflight = c->out;
    c->out = t; /* empty, or NULL */
    b.base = (char *)buf_mutable_ptr(c->inflight);
    b.len = buf_len(c->inflight); /* size_t here; uv_buf_init would cut it to unsigned */
    c->wreq.data = c;
    if ((r = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, conn__on_write)) == 0) {
        c->writing = true;
        return;
    }
    conn__write_failed(c, r);
}

static void conn__on_flush(uv_prepare_t *h)
{
    uv_prepare_stop(h);
    netbatch_flush(h->loop); /* this connection's write among them, if not yet made */
}

/*
 * Open, with nothing in flight, out leaves with this loop turn's batch of writes
 * (netbatch.h): the socket nearly always takes it all, in one system call with the
 * turn's other writes; and unlike a uv_write that completes, that leaves its epoll entry
 * alone (libuv 1.44 re-registers it after each completed uv_write: one epoll_ctl per
 * request over HTTP/1.1, bench W2). Before that (a proxy's CONNECT, the handshake) it
 * goes with uv_write.
 */
void conn__flush(struct net_conn *c)
{
    if (c->writing || c->out == NULL || buf_len(c->out) == 0 || !c->tcp_open || c->write_failed)
        return;
    if (c->state != NET_OPEN) {
        conn__write_out(c);
        return;
    }
    c->writing = true;
    c->batched = true;
    netbatch_add(&c->batch);
    uv_prepare_start(&c->flush, conn__on_flush);
}

static size_t conn__batch_fill(struct netbatch_item *it, const uint8_t **data)
{
    struct net_conn *c = (struct net_conn *)((char *)it - offsetof(struct net_conn, batch));

    c->batched = false;
    c->batch_len = c->out != NULL ? buf_len(c->out) : 0;
    if (c->batch_len == 0) {
        c->writing = false;
        return 0;
    }
    *data = buf_ptr(c->out);
    return c->batch_len;
}

static void conn__batch_done(struct netbatch_item *it, ssize_t n)
{
    struct net_conn *c = (struct net_conn *)((char *)it - offsetof(struct net_conn, batch));

    c->writing = false;
    if (n < 0 && n != UV_EAGAIN) {
        conn__write_failed(c, (int)n);
        return;
    }
    if (n > 0)
        (void)buf_consume(c->out, (size_t)n);
    if (n != (ssize_t)c->batch_len) {
        conn__write_out(c); /* the socket is full: the rest waits for it with uv_write */
        return;
    }
    if (buf_len(c->out) > 0) {
        conn__flush(c); /* written to while in the batch: again, in this flush */
        return;
    }
    /* Kept for the next request (an allocation each, callgrind) unless large. */
    buf_reset_keep(c->out, NET_OUT_KEEP);
    if (c->inflight != NULL) { /* an earlier uv_write's, done with */
        buf_free(c->inflight);
        c->inflight = NULL;
    }
    if (c->have_events && c->ev.on_drain != NULL && !c->closed)
        c->ev.on_drain(c, c->ud);
}

static void conn__on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    /* One read buffer for every connection of the loop (as the broker's own conn.c has):
     * each read is consumed (fed to TLS, handed on, or kept in a copy) before the next
     * one, and a malloc per read cost time and, under ASan, its quarantine. */
    static char readbuf[NET_READ_SIZE];

    b->base = readbuf;
    b->len = sizeof(readbuf);
}

/* Plaintext from the socket (no TLS), in the open state. */
static void conn__on_plain(struct net_conn *c, const uint8_t *data, size_t len)
{
    if (!c->reading || !c->have_events) {
        /* Not expected: the socket is not read while stopped. Kept, not lost. */
        if ((c->held == NULL && (c->held = buf_new(SIZE_MAX, BUF_WIPE)) == NULL) ||
            buf_put(c->held, data, len) != 0)
            conn__end(c, "out of memory");
        return;
    }
    c->ev.on_read(c, data, len, c->ud);
}

/* ---- read batching (net_conn_expect) ---- */

static int batch__lowat(struct net_conn *c, int bytes)
{
    uv_os_fd_t fd;

    if (!c->tcp_open || uv_fileno((const uv_handle_t *)&c->tcp, &fd) != 0)
        return -1;
    return setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &bytes, sizeof(bytes));
}

static void batch__stop(struct net_conn *c)
{
    if (!c->batching)
        return;
    c->batching = false;
    uv_timer_stop(&c->batch_timer);
    /* The kernel checks the queue against the new mark at once (tcp_set_rcvlowat), so
     * what waited below the old one is reported now. A socket left waiting for a batch
     * that may never come would hang the connection: end it instead. */
    if (batch__lowat(c, 1) != 0)
        conn__end(c, "cannot set the socket's receive low-water mark");
}

/* No read for NET_BATCH_WAIT_MS: the peer is slower than its promise (or stopped), and
 * a batch would only add latency. No more batches until the owner's next promise, or
 * until a read shows the peer ahead of us again. */
static void batch__on_timer(uv_timer_t *t)
{
    struct net_conn *c = t->data;

    if (c->released)
        return;
    c->batch_gave_up = true;
    batch__stop(c);
}

/* The wait for the next batch starts now. */
static void batch__arm(struct net_conn *c)
{
    uv_timer_start(&c->batch_timer, batch__on_timer, NET_BATCH_WAIT_MS, 0);
}

/* Batching on or off for what is due now; once per socket read, after its delivery. */
static void batch__decide(struct net_conn *c)
{
    uint64_t kept, coming;
    bool want;

    /* Bytes still to cross the socket: due less what is here already (ciphertext counts
     * for at least the plaintext it holds; a record may sit half-read in OpenSSL). */
    kept = NET_TLS_RECORD_MAX + (c->rkeep != NULL ? buf_len(c->rkeep) : 0) +
           (c->held != NULL ? buf_len(c->held) : 0);
    coming = c->due > kept ? c->due - kept : 0;
    if (c->due == 0)
        c->batch_gave_up = false;
    want = c->tcp_open && !c->closed && !c->released && coming >= NET_BATCH &&
           !c->batch_gave_up;
    if (want == c->batching)
        return;
    if (!want) {
        batch__stop(c);
        return;
    }
    if (!c->batch_timer_open) {
        if (uv_timer_init(c->loop, &c->batch_timer) != 0)
            return;
        c->batch_timer.data = c;
        c->batch_timer_open = true;
        c->refs++;
    }
    if (batch__lowat(c, NET_BATCH) != 0)
        return; /* not batching: reads go on as before */
    c->batching = true;
    batch__arm(c);
}

void net_conn_expect(struct net_conn *c, uint64_t due)
{
    assert(c != NULL && !c->released);
    c->due = due;
    /* Inside a read, the rest of it is still to be delivered and counts as here. */
    if (!c->in_read)
        batch__decide(c);
}

bool net_conn_batching(const struct net_conn *c)
{
    return c->batching;
}

static void conn__on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct net_conn *c = s->data;
    /* Decided before the bytes are handed on: a proxy's answer can start the handshake. */
    bool plaintext = !c->use_tls || c->state < NET_HANDSHAKE;

    if (n > 0) {
        c->in_read = true;
        if (c->batching)
            batch__arm(c);
        /* Half a batch waited for this read: the peer is ahead again (the wait that timed
         * out was the machine's hiccup, or the peer's, not a slow peer). */
        if (c->batch_gave_up && (size_t)n >= NET_BATCH / 2)
            c->batch_gave_up = false;
    }
    if (n > 0 && c->state != NET_OPEN)
        connect__on_data(c, (const uint8_t *)b->base, (size_t)n);
    else if (n > 0 && c->use_tls)
        tls__on_data(c, (const uint8_t *)b->base, (size_t)n);
    else if (n > 0)
        conn__on_plain(c, (const uint8_t *)b->base, (size_t)n);
    else if (n < 0 && c->state != NET_OPEN)
        connect__on_eof(c, (int)n);
    else if (n < 0) {
        conn__read_stop_uv(c);
        if (n == UV_EOF) {
            c->eof = true;
            if (c->use_tls)
                tls__pump(c); /* ends once what the peer sent before is delivered */
            else
                conn__end(c, NULL);
        } else {
            char why[NET_ERROR_MAX];

            snprintf(why, sizeof(why), "connection to %s: %s", c->hostport, uv_strerror((int)n));
            conn__end(c, why);
        }
    }
    /* Plaintext is wiped; ciphertext is not (a wasted pass over every byte of a download,
     * bench W3). c may be released here: its memory is not freed yet. */
    if (b->base != NULL && n > 0 && plaintext)
        explicit_bzero(b->base, (size_t)n);
    if (n > 0 && !c->released) {
        c->in_read = false;
        batch__decide(c);
    }
}

int conn__read_uv(struct net_conn *c)
{
    int r;

    if (c->uv_reading || !c->tcp_open || c->eof)
        return 0;
    c->tcp.data = c;
    if ((r = uv_read_start((uv_stream_t *)&c->tcp, conn__on_alloc, conn__on_read)) == 0)
        c->uv_reading = true;
    return r;
}

void conn__read_stop_uv(struct net_conn *c)
{
    if (c->uv_reading)
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->uv_reading = false;
}

void conn__end(struct net_conn *c, const char *reason)
{
    if (c->closed || c->released)
        return;
    c->closed = true;
    c->close_due = true;
    snprintf(c->reason, sizeof(c->reason), "%s", reason != NULL ? reason : "");
    conn__read_stop_uv(c);
    conn__start_timer(c, 0);
}

/* The open connection's timer: a due end, then what was held back, then the socket. */
static void conn__deliver(struct net_conn *c)
{
    if (!c->have_events)
        return;
    if (c->close_due) {
        c->close_due = false;
        c->ev.on_close(c, c->reason[0] != '\0' ? c->reason : NULL, c->ud);
        return;
    }
    if (!c->reading || c->closed)
        return;
    if (c->held != NULL) {
        struct buf *h = c->held;

        c->held = NULL;
        c->ev.on_read(c, buf_ptr(h), buf_len(h), c->ud);
        buf_free(h);
        if (c->released || !c->reading || c->closed)
            return;
    }
    if (c->use_tls)
        tls__pump(c);
    else if (c->eof)
        conn__end(c, NULL);
    if (!c->released && c->reading && !c->closed && conn__read_uv(c) != 0)
        conn__end(c, "cannot read from the socket");
}

static void conn__on_timer(uv_timer_t *t)
{
    struct net_conn *c = t->data;

    if (c->released)
        return;
    if (c->state != NET_OPEN)
        connect__on_timeout(c);
    else
        conn__deliver(c);
}

void net_conn_set_events(struct net_conn *c, const struct net_conn_events *ev, void *ud)
{
    assert(c != NULL && !c->released && c->state == NET_OPEN);
    assert(ev != NULL && ev->on_read != NULL && ev->on_close != NULL);
    c->ev = *ev;
    c->ud = ud;
    c->have_events = true;
    c->reading = true;
    conn__start_timer(c, 0);
}

int net_conn_write(struct net_conn *c, const uint8_t *data, size_t len)
{
    int r;

    assert(c != NULL && !c->released && c->state == NET_OPEN);
    if (c->closed || c->write_failed)
        return ERR_CLOSED;
    if (len == 0)
        return 0;
    if ((r = c->use_tls ? tls__write(c, data, len) : conn__queue(c, data, len)) != 0)
        return r;
    conn__flush(c);
    return 0;
}

size_t net_conn_pending(const struct net_conn *c)
{
    return (c->out != NULL ? buf_len(c->out) : 0) +
           (c->writing ? uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp) : 0);
}

void net_conn_read_stop(struct net_conn *c)
{
    assert(c != NULL && !c->released);
    c->reading = false;
    conn__read_stop_uv(c);
    if (!c->close_due)
        uv_timer_stop(&c->timer);
    if (c->batching) /* a pause of ours is not the peer being slow */
        uv_timer_stop(&c->batch_timer);
}

void net_conn_read_start(struct net_conn *c)
{
    assert(c != NULL && !c->released);
    if (c->reading || !c->have_events)
        return;
    c->reading = true;
    if (!c->closed)
        conn__start_timer(c, 0);
    if (c->batching)
        batch__arm(c);
}

const char *net_conn_alpn(const struct net_conn *c)
{
    return c->alpn;
}

bool net_conn_session_reused(const struct net_conn *c)
{
    return c->reused;
}

const char *net_conn_peer(const struct net_conn *c)
{
    return c->hostport;
}

void net_conn_free(struct net_conn *c)
{
    if (c == NULL)
        return;
    assert(!c->released && c->state == NET_OPEN);
    /* close_notify only on an idle stream: behind a half-written record it is noise. */
    if (c->use_tls && c->tcp_open && !c->write_failed && !c->writing &&
        (c->out == NULL || buf_len(c->out) == 0))
        tls__shutdown(c);
    conn__read_stop_uv(c);
    conn__release(c);
}
