/*
 * fuzz_h2.c - one HTTP/2 client connection (h2conn.h) fed whatever a server may send,
 * against this file's own reading of the frames and of the stream contract.
 *
 * Input: 8 bytes of settings, L request body bytes, then the server's bytes.
 *   b0: bits 0-1 the number of requests (n % 3 + 1); bits 2-4 request i has a body (if
 *       its method takes one); bit 5 the body length is announced; bit 6 the first
 *       on_done frees the connection; bit 7 the end is h2conn_close, not a transport close
 *   b1: the chance (of 256) that an on_body call pauses
 *   b2: the chance that a read_body call pauses
 *   b3: a cancel: stream b3 & 3 (3: none), from inside its on_body call number
 *       (b3 >> 2) & 7 when bit 7 is set, else from outside before chunk (b3 >> 2) & 31
 *   b4: low nibble the chance (of 16) the transport stalls before a chunk; high nibble
 *       the chance of a PING
 *   b5: chunk sizes up to 2^(b5 % 15) bytes (the first chunk is the first whole frame)
 *   b6: L, the request body length
 *   b7: two bits per request: GET, HEAD, POST, PUT
 * Every other decision comes from a generator seeded by the input (fuzz.h).
 *
 * Properties: never a crash or a leak; per stream, on_head at most once and before any
 * on_body, on_done exactly once unless cancelled (after the final transport close, with
 * pauses lifted), no callback after h2_stream_cancel; the result is 0, CONNECT before
 * the head or TRANSFER after it, retryable only without a head; head names lower case,
 * no pseudo-header; the bytes on_body took are a prefix of the DATA payload this file
 * reads for that stream in the input (padding removed), and all of it up to the frame
 * with END_STREAM when the stream completed; after an H2_PAUSE the next on_body offers
 * exactly the same bytes; h2conn_active() counts the streams not done or cancelled;
 * h2conn_due() (what read batching may wait for) is within the stream window, and 0
 * unless exactly one stream is active; reading is paused only with one stream active.
 */
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "err.h"
#include "fuzz.h"
#include "h2conn.h"
#include "h2conn_internal.h"
#include "upstream.h"

#define NREQ_MAX 3
#define MAX_BODY_OUT (1u << 20) /* more than any input carries */

struct h;

struct st {
    struct h *h;
    struct h2_stream *s;
    size_t index;
    int32_t id;
    bool submitted, cancelled, done, has_body;
    int heads, dones;
    size_t body_calls, cancel_at;
    bool cancel_inside;
    /* what on_body took, and what it paused on */
    uint8_t *got;
    size_t ngot;
    uint8_t *held;
    size_t nheld;
    bool paused, want_resume;
    /* the request body */
    size_t sent;
    /* this file's reading of the input */
    uint8_t *carried;
    size_t ncarried, ncarried_end;
    bool ended;
};

struct h {
    uv_loop_t loop;
    struct h2conn *c;
    struct fuzz_rng rng;
    const uint8_t *settings;
    const uint8_t *body;
    size_t body_len;
    struct st st[NREQ_MAX];
    size_t n, nsubmitted;
    bool stall, free_in_done, lift_pauses, closed_by_us, read_paused;
    int on_closed;
};

static void append(uint8_t **p, size_t *n, const uint8_t *d, size_t len)
{
    uint8_t *np;

    if (len == 0)
        return;
    FUZZ_CHECK(*n + len <= MAX_BODY_OUT, "more body than the input holds");
    np = realloc(*p, *n + len);
    FUZZ_CHECK(np != NULL, "out of memory");
    memcpy(np + *n, d, len);
    *p = np;
    *n += len;
}

/* The DATA payloads per stream, read independently from the server bytes (RFC 9113 6.1):
 * whole frames, and the data part of a last partial one (data comes before padding). */
static void read_frames(struct h *h, const uint8_t *p, size_t len)
{
    size_t off = 0, flen, avail, start, end, i;
    uint8_t type, flags;
    uint32_t id;
    struct st *s;

    while (len - off >= 9) {
        flen = (size_t)p[off] << 16 | (size_t)p[off + 1] << 8 | p[off + 2];
        type = p[off + 3];
        flags = p[off + 4];
        id = (uint32_t)(p[off + 5] & 0x7f) << 24 | (uint32_t)p[off + 6] << 16 |
             (uint32_t)p[off + 7] << 8 | p[off + 8];
        avail = len - off - 9 < flen ? len - off - 9 : flen;
        s = NULL;
        for (i = 0; i < h->n; i++)
            if ((uint32_t)h->st[i].id == id)
                s = &h->st[i];
        if (s && type == 0 /* DATA */) {
            start = 0;
            end = flen;
            if (flags & 0x8) { /* PADDED */
                if (avail == 0)
                    break;
                start = 1;
                end = (size_t)p[off + 9] + 1 <= flen ? flen - p[off + 9] : 0;
            }
            if (end > avail)
                end = avail;
            if (end > start) {
                append(&s->carried, &s->ncarried, p + off + 9 + start, end - start);
                if (!s->ended)
                    s->ncarried_end = s->ncarried;
            }
        }
        if (s && (type == 0 || type == 1) && (flags & 0x1) && avail == flen)
            s->ended = true;
        if (avail < flen)
            break;
        off += 9 + flen;
    }
}

/* ---- the stream callbacks, checked ---- */

static void on_head(void *ud, int status, const struct http1_header *hd, size_t n)
{
    struct st *s = ud;
    size_t i, k;

    FUZZ_CHECK(!s->cancelled && !s->dones, "on_head after cancel or on_done");
    FUZZ_CHECK(s->heads == 0 && s->body_calls == 0, "on_head twice or after on_body");
    FUZZ_CHECK(status >= 200 && status <= 999, "final status %d", status);
    for (i = 0; i < n; i++) {
        FUZZ_CHECK(hd[i].name.len > 0 && hd[i].name.base[0] != ':', "a pseudo or empty name");
        for (k = 0; k < hd[i].name.len; k++)
            FUZZ_CHECK(!(hd[i].name.base[k] >= 'A' && hd[i].name.base[k] <= 'Z'), "upper case");
    }
    s->heads++;
}

static int on_body(void *ud, const uint8_t *d, size_t len)
{
    struct st *s = ud;
    struct h *h = s->h;

    FUZZ_CHECK(!s->cancelled && !s->dones, "on_body after cancel or on_done");
    FUZZ_CHECK(s->heads == 1, "on_body before on_head");
    FUZZ_CHECK(len > 0, "an empty on_body");
    if (s->paused) {
        FUZZ_CHECK(len == s->nheld && memcmp(d, s->held, len) == 0,
                   "after a pause, %zu bytes offered instead of the %zu held", len, s->nheld);
        s->paused = false;
    }
    s->body_calls++;
    if (s->cancel_inside && s->body_calls == s->cancel_at) {
        s->cancelled = true;
        h2_stream_cancel(s->s);
        s->s = NULL;
        return 0;
    }
    if (!h->lift_pauses && fuzz_rng_below(&h->rng, 256) < h->settings[1]) {
        free(s->held);
        s->held = fuzz_dup(d, len);
        s->nheld = len;
        s->paused = true;
        s->want_resume = true;
        return H2_PAUSE;
    }
    append(&s->got, &s->ngot, d, len);
    return 0;
}

static ssize_t read_body(void *ud, uint8_t *dst, size_t max)
{
    struct st *s = ud;
    struct h *h = s->h;
    size_t n, k;

    FUZZ_CHECK(!s->cancelled && !s->dones && s->has_body, "read_body out of turn");
    if (!h->lift_pauses && fuzz_rng_below(&h->rng, 256) < h->settings[2]) {
        s->want_resume = true;
        return H2_PAUSE;
    }
    n = h->body_len - s->sent;
    if (n > max)
        n = max;
    k = 1 + fuzz_rng_below(&h->rng, 64);
    if (n > k)
        n = k;
    memcpy(dst, h->body + s->sent, n);
    s->sent += n;
    return (ssize_t)n;
}

static void on_done(void *ud, int result, const char *detail, bool retryable)
{
    struct st *s = ud;
    struct h *h = s->h;

    FUZZ_CHECK(!s->cancelled && s->dones == 0, "on_done twice or after cancel");
    FUZZ_CHECK(detail && *detail, "no detail");
    FUZZ_CHECK(result == 0 || result == (s->heads ? UPSTREAM_ERR_TRANSFER : UPSTREAM_ERR_CONNECT),
               "result %d with %d heads", result, s->heads);
    FUZZ_CHECK(!retryable || (result != 0 && s->heads == 0), "retryable after a head");
    FUZZ_CHECK(result != 0 || s->heads == 1, "complete without a head");
    s->dones++;
    s->s = NULL;
    if (result == 0 && s->ended)
        FUZZ_CHECK(s->ngot == s->ncarried_end, "complete with %zu of %zu body bytes", s->ngot,
                   s->ncarried_end);
    if (h->free_in_done && h->c) {
        h2conn_free(h->c);
        h->c = NULL;
    }
}

static const struct h2_stream_ops ops = {on_head, on_body, read_body, on_done};

/* ---- the transport and events ---- */

static int tr_send(void *t, const uint8_t *d, size_t len)
{
    (void)t;
    (void)d;
    (void)len;
    return 0;
}

static size_t tr_pending(void *t)
{
    struct h *h = t;

    return h->stall ? H2CONN_SEND_HIGH_WATER : 0;
}

/* Asked only with one stream open (h2conn.h); the bytes keep coming regardless, as a read
 * already under way would bring them. */
static void tr_read_pause(void *t, bool pause)
{
    struct h *h = t;

    FUZZ_CHECK(!pause || h2conn_active(h->c) == 1, "reading paused with %zu streams open",
               h2conn_active(h->c));
    h->read_paused = pause;
}

static void submit_more(struct h *h);

static void ev_capacity(struct h2conn *c, void *ud)
{
    (void)c;
    submit_more(ud);
}

static void ev_closed(struct h2conn *c, const char *reason, void *ud)
{
    struct h *h = ud;

    (void)c;
    FUZZ_CHECK(reason && *reason, "no reason");
    FUZZ_CHECK(!h->closed_by_us, "on_closed after h2conn_close");
    h->on_closed++;
}

static void check_streams(struct h *h)
{
    size_t i, live = 0;

    for (i = 0; i < h->n; i++) {
        struct st *s = &h->st[i];

        FUZZ_CHECK(s->ngot <= s->ncarried &&
                       (s->ngot == 0 || memcmp(s->got, s->carried, s->ngot) == 0),
                   "stream %d: %zu body bytes taken, not a prefix of the %zu carried", (int)s->id,
                   s->ngot, s->ncarried);
        if (s->submitted && !s->cancelled && !s->dones)
            live++;
    }
    if (h->c)
        FUZZ_CHECK(h2conn_active(h->c) == live, "active %zu, live %zu", h2conn_active(h->c), live);
}

static void resume_all(struct h *h)
{
    size_t i;

    for (i = 0; i < h->n; i++)
        if (h->st[i].want_resume && h->st[i].s && h->c) {
            h->st[i].want_resume = false;
            h2_stream_resume(h->st[i].s);
        }
}

static void turn(struct h *h)
{
    uv_run(&h->loop, UV_RUN_NOWAIT);
}

/* Submits the requests not yet submitted while the connection takes them (a pool does
 * the same from on_capacity); they get stream ids 1, 3, 5 in order. */
static void submit_more(struct h *h)
{
    static const char *const methods[] = {"GET", "HEAD", "POST", "PUT"};
    static const char *const hdrs[] = {"Accept: */*", "TE: trailers"};
    const uint8_t *set = h->settings;
    struct h2_request rq = {NULL, "https", "api.example", "/v1/x?app_key=k", hdrs, 2, false, -1};
    struct st *s;

    while (h->c && h->nsubmitted < h->n && h2conn_available(h->c)) {
        s = &h->st[h->nsubmitted++];
        rq.method = methods[(set[7] >> (2 * s->index)) & 3];
        rq.has_body = s->has_body;
        rq.body_len = (set[0] & 0x20) ? (int64_t)h->body_len : -1;
        FUZZ_CHECK(h2conn_submit(h->c, &rq, &ops, s, &s->s) == 0, "submit while available");
        s->submitted = true;
        FUZZ_CHECK(h2_stream_id(s->s) == s->id, "stream id %d, not %d", (int)h2_stream_id(s->s),
                   (int)s->id);
    }
}

static void plan(struct h *h)
{
    const uint8_t *set = h->settings;
    size_t i;

    h->n = (size_t)(set[0] & 3) % 3 + 1;
    for (i = 0; i < h->n; i++) {
        struct st *s = &h->st[i];
        int m = (set[7] >> (2 * i)) & 3;

        s->h = h;
        s->index = i;
        s->id = (int32_t)(1 + 2 * i);
        s->has_body = m >= 2 && (set[0] & (4u << i));
        s->cancel_inside = (set[3] & 0x80) && (size_t)(set[3] & 3) == i;
        s->cancel_at = 1 + ((set[3] >> 2) & 7);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t gather[H2CONN_GATHER];
    const struct h2conn_transport tr = {tr_send, tr_pending, gather, tr_read_pause};
    const struct h2conn_events ev = {ev_capacity, ev_closed};
    struct h h;
    const uint8_t *srv;
    size_t nsrv, off, piece, chunk = 0, i, maxpiece;
    int r;

    if (size < 8)
        return 0;
    memset(&h, 0, sizeof(h));
    h.settings = data;
    h.body = data + 8;
    h.body_len = data[6] <= size - 8 ? data[6] : size - 8;
    srv = h.body + h.body_len;
    nsrv = size - 8 - h.body_len;
    h.free_in_done = data[0] & 0x40;
    fuzz_rng_seed(&h.rng, data, size);
    maxpiece = (size_t)1 << (data[5] % 15);
    FUZZ_CHECK(uv_loop_init(&h.loop) == 0, "uv_loop_init");
    FUZZ_CHECK(h2conn_new(&h.loop, &tr, &h, &ev, &h, &h.c) == 0, "h2conn_new");
    plan(&h);
    read_frames(&h, srv, nsrv);
    submit_more(&h);
    turn(&h);

    /* The first chunk is the first frame (the server's SETTINGS, in a real stream), so
     * that the requests held back until it are on the wire before their answers. */
    off = 0;
    while (off < nsrv && h.c) {
        if (off == 0 && nsrv >= 9)
            piece = 9 + ((size_t)srv[0] << 16 | (size_t)srv[1] << 8 | srv[2]);
        else
            piece = 1 + fuzz_rng_below(&h.rng, maxpiece);
        if (piece > nsrv - off)
            piece = nsrv - off;
        if (!(data[3] & 0x80) && (data[3] & 3) < h.n && chunk == ((size_t)data[3] >> 2 & 31)) {
            struct st *s = &h.st[data[3] & 3];

            if (s->s && !s->dones) {
                s->cancelled = true;
                h2_stream_cancel(s->s);
                s->s = NULL;
            }
        }
        if (h.stall && fuzz_rng_below(&h.rng, 2) == 0) {
            h.stall = false;
            h2conn_on_drain(h.c);
        } else if (!h.stall && fuzz_rng_below(&h.rng, 16) < (data[4] & 15u)) {
            h.stall = true;
        }
        if (h.c && fuzz_rng_below(&h.rng, 16) < (data[4] >> 4))
            h2conn_ping(h.c);
        if (h.c) {
            r = h2conn_feed(h.c, srv + off, piece);
            (void)r;
        }
        off += piece;
        chunk++;
        check_streams(&h);
        if (h.c) {
            uint64_t due = h2conn_due(h.c);

            FUZZ_CHECK(due <= H2CONN_STREAM_WINDOW, "due %llu: past the stream window",
                       (unsigned long long)due);
            FUZZ_CHECK(due == 0 || h2conn_active(h.c) == 1, "due %llu with %zu streams",
                       (unsigned long long)due, h2conn_active(h.c));
        }
        if (fuzz_rng_below(&h.rng, 2) == 0)
            resume_all(&h);
        turn(&h);
        check_streams(&h);
    }

    /* The end: pauses lifted, everything delivered that can be, then the transport goes. */
    h.lift_pauses = true;
    h.stall = false;
    if (h.c)
        h2conn_on_drain(h.c);
    for (i = 0; i < 4 && h.c; i++) {
        resume_all(&h);
        turn(&h);
    }
    check_streams(&h);
    if (h.c && (data[0] & 0x80)) {
        h.closed_by_us = true;
        h2conn_close(h.c); /* drops the open streams as a cancel does */
        for (i = 0; i < h.n; i++)
            if (h.st[i].submitted && !h.st[i].dones)
                h.st[i].cancelled = true;
    } else if (h.c) {
        h2conn_transport_closed(h.c, "end of input");
        for (i = 0; i < 4 && h.c; i++) {
            resume_all(&h);
            turn(&h);
        }
        if (h.c) {
            FUZZ_CHECK(h.on_closed == 1, "on_closed %d times", h.on_closed);
            FUZZ_CHECK(h2conn_active(h.c) == 0, "streams left after the close");
        }
        for (i = 0; i < h.n && h.c; i++)
            FUZZ_CHECK(!h.st[i].submitted || h.st[i].cancelled || h.st[i].dones == 1,
                       "stream %d: on_done %d times", (int)h.st[i].id, h.st[i].dones);
    }
    check_streams(&h);
    h2conn_free(h.c);
    uv_run(&h.loop, UV_RUN_DEFAULT); /* the timer's close */
    FUZZ_CHECK(uv_loop_close(&h.loop) == 0, "a handle left on the loop");
    for (i = 0; i < NREQ_MAX; i++) {
        free(h.st[i].got);
        free(h.st[i].held);
        free(h.st[i].carried);
    }
    return 0;
}
