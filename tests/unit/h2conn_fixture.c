/*
 * h2conn_fixture.c - the peer, the TCP transport, the "pool" and the recording requests
 * test_h2conn.c runs on (h2conn_fixture.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h2conn_fixture.h"
#include "h2conn_internal.h"

/* ---- the peer ---- */

static int peer_start(struct fx *f, const char *max_streams)
{
    char *argv[] = {PY, (char *)peer_script, max_streams ? "--max-streams" : NULL,
                    (char *)max_streams, NULL};
    struct peer p;

    if (peer_spawn(&p, argv, true, NULL) != 0)
        return -1;
    f->peer = p;
    return 0;
}

/* ---- the transport: ~40 lines around a uv_tcp_t ---- */

struct wreq {
    uv_write_t w;
    uv_buf_t b;
    struct fx *f;
    char data[];
};

static void on_write(uv_write_t *w, int status)
{
    struct wreq *r = (struct wreq *)w;
    struct fx *f = r->f;

    (void)status;
    free(r);
    if (f->c && f->tcp.write_queue_size == 0)
        h2conn_on_drain(f->c);
}

static int tr_send(void *t, const uint8_t *data, size_t len)
{
    struct fx *f = t;
    struct wreq *r;
    int rc;

    if (f->eof || (r = malloc(sizeof(*r) + len)) == NULL)
        return UV_EPIPE;
    memcpy(r->data, data, len);
    r->b = uv_buf_init(r->data, (unsigned)len);
    r->f = f;
    if ((rc = uv_write(&r->w, (uv_stream_t *)&f->tcp, &r->b, 1, on_write)) != 0)
        free(r);
    return rc;
}

static size_t tr_pending(void *t)
{
    struct fx *f = t;

    return f->stall ? H2CONN_SEND_HIGH_WATER : f->tcp.write_queue_size;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b);
static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *b);

static void tr_read_pause(void *t, bool pause)
{
    struct fx *f = t;

    if (pause) {
        f->read_pauses++;
        if (h2conn_active(f->c) != 1)
            f->read_pause_bad = true;
        uv_read_stop((uv_stream_t *)&f->tcp);
    } else if (!f->eof) {
        uv_read_start((uv_stream_t *)&f->tcp, on_alloc, on_read);
    }
    f->read_paused = pause;
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *b)
{
    struct fx *f = h->data;

    (void)size;
    *b = uv_buf_init(f->rbuf, sizeof(f->rbuf));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct fx *f = st->data;
    int r;

    if (n > 0 && f->c) {
        r = h2conn_feed(f->c, (const uint8_t *)b->base, (size_t)n);
        (void)r; /* a failure shows in on_closed */
    } else if (n < 0) {
        uv_read_stop(st);
        f->eof = true;
        if (f->c)
            h2conn_transport_closed(f->c, uv_strerror((int)n));
    }
}

static void on_connect(uv_connect_t *cr, int status)
{
    struct fx *f = cr->data;

    f->connected = true;
    f->connect_status = status;
}

/* ---- the conn's events and the "pool" ---- */

void submit(struct req *r);

void pool_pump(struct fx *f)
{
    while (f->c && f->qhead < f->nqueue && h2conn_available(f->c))
        submit(f->queue[f->qhead++]);
    if (f->c && h2conn_active(f->c) > f->max_active)
        f->max_active = h2conn_active(f->c);
}

static void ev_capacity(struct h2conn *c, void *ud)
{
    struct fx *f = ud;

    (void)c;
    f->capacity++;
    pool_pump(f);
}

static void ev_closed(struct h2conn *c, const char *reason, void *ud)
{
    struct fx *f = ud;

    (void)c;
    f->closed++;
    snprintf(f->closed_reason, sizeof(f->closed_reason), "%s", reason);
}

/* ---- running the loop ---- */

struct until {
    struct fx *f;
    bool (*cond)(struct fx *, void *);
    void *arg;
};

static bool until_holds(void *arg)
{
    struct until *u = arg;

    return u->cond(u->f, u->arg);
}

bool run_until(struct fx *f, bool (*cond)(struct fx *, void *), void *arg)
{
    struct until u = {f, cond, arg};

    return peer_run_until(&f->loop, until_holds, &u, WAIT_MS);
}

bool is_done(struct fx *f, void *a)
{
    (void)f;
    return ((struct req *)a)->dones > 0;
}

bool all_done(struct fx *f, void *a)
{
    size_t i;

    (void)a;
    for (i = 0; i < f->nall; i++)
        if (!f->all[i]->dones && !f->all[i]->cancelled)
            return false;
    return true;
}

bool pings_acked(struct fx *f, void *a)
{
    return f->c && h2conn_pings_acked(f->c) >= *(uint64_t *)a;
}

bool conn_gone(struct fx *f, void *a)
{
    (void)a;
    return f->c == NULL;
}

bool conn_closed(struct fx *f, void *a)
{
    (void)a;
    return f->closed > 0;
}

bool none_active(struct fx *f, void *a)
{
    (void)a;
    return f->c && h2conn_active(f->c) == 0;
}

/* ---- fixture ---- */

static void on_kick(uv_timer_t *t)
{
    struct fx *f = t->data;
    size_t i;

    for (i = 0; i < f->nall; i++)
        if (f->all[i]->want_resume && f->all[i]->s) {
            f->all[i]->want_resume = false;
            h2_stream_resume(f->all[i]->s);
        }
}

/* A connected h2conn whose first PING was answered (so the server's SETTINGS are in). */
void fx_open(struct fx *f, const char *max_streams)
{
    static uint8_t gather[H2CONN_GATHER];
    const struct h2conn_transport tr = {tr_send, tr_pending, gather, tr_read_pause};
    const struct h2conn_events ev = {ev_capacity, ev_closed};
    struct sockaddr_in a;
    uint64_t one = 1;

    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(peer_start(f, max_streams), 0);
    uv_timer_init(&f->loop, &f->kick);
    f->kick.data = f;
    uv_tcp_init(&f->loop, &f->tcp);
    f->tcp.data = f;
    f->creq.data = f;
    uv_ip4_addr("127.0.0.1", f->peer.port, &a);
    assert_int_equal(uv_tcp_connect(&f->creq, &f->tcp, (struct sockaddr *)&a, on_connect), 0);
    while (!f->connected)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(f->connect_status, 0);
    assert_int_equal(uv_read_start((uv_stream_t *)&f->tcp, on_alloc, on_read), 0);
    assert_int_equal(h2conn_new(&f->loop, &tr, f, &ev, f, &f->c), 0);
    if (f->no_settings_wait)
        return;
    h2conn_ping(f->c);
    assert_true(run_until(f, pings_acked, &one));
}

int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    *state = f;
    return f ? 0 : -1;
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int teardown(void **state)
{
    struct fx *f = *state;
    size_t i;

    if (f->c) {
        h2conn_close(f->c);
        h2conn_free(f->c);
        f->c = NULL;
    }
    uv_walk(&f->loop, close_walk, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    peer_stop(&f->peer);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    for (i = 0; i < f->nall; i++) {
        free(f->all[i]->body);
        free(f->all[i]);
    }
    free(f);
    return 0;
}

/* ---- requests ---- */

static void rq_head(void *ud, int status, const struct http1_header *h, size_t n)
{
    struct req *r = ud;

    (void)h;
    (void)n;
    r->heads++;
    r->status = status;
    if (r->body_calls)
        r->order_bad = true;
}

static int rq_body(void *ud, const uint8_t *d, size_t len)
{
    struct req *r = ud;
    uint64_t due;
    size_t i;

    r->body_calls++;
    if (!r->heads || r->dones)
        r->order_bad = true;
    /* What the connection says is still due: never more than the stream window, nor than
     * what the response (of r->total bytes, when the test set it) has left after d. */
    due = h2conn_due(r->f->c);
    if (due > r->due_max)
        r->due_max = due;
    if (due > H2CONN_STREAM_WINDOW || (r->total && due > r->total - r->got - len))
        r->due_bad = true;
    if (r->cancel_in_body) {
        r->cancelled = true;
        h2_stream_cancel(r->s);
        r->s = NULL;
        return 0;
    }
    if (r->paused_len && len != r->paused_len)
        r->reoffer_bad = true;
    r->paused_len = 0;
    if (r->slow && !r->released) {
        r->pauses++;
        r->paused_len = len;
        return H2_PAUSE;
    }
    if (r->keep_body) {
        r->body = realloc(r->body, r->got + len + 1);
        assert_non_null(r->body);
        memcpy(r->body + r->got, d, len);
        r->body[r->got + len] = 0;
    } else {
        for (i = 0; i < len; i++)
            if (d[i] != (uint8_t)((r->got + i) % 251))
                r->pattern_bad = true;
    }
    r->got += len;
    return 0;
}

static ssize_t rq_read(void *ud, uint8_t *dst, size_t max)
{
    struct req *r = ud;
    size_t n = r->body_total - r->body_sent, i;

    if (n == 0)
        return 0;
    if (++r->reads % 3 == 0) {
        r->want_resume = true;
        uv_timer_start(&r->f->kick, on_kick, 0, 0);
        return H2_PAUSE;
    }
    if (n > max)
        n = max;
    if (n > 7000)
        n = 7000;
    for (i = 0; i < n; i++)
        dst[i] = (uint8_t)('a' + (r->body_sent + i) % 26);
    r->body_sent += n;
    return (ssize_t)n;
}

static void rq_done(void *ud, int result, const char *detail, bool retryable)
{
    struct req *r = ud;

    r->dones++;
    r->result = result;
    r->retryable = retryable;
    snprintf(r->detail, sizeof(r->detail), "%s", detail ? detail : "");
    r->s = NULL;
    if (r->free_in_done) {
        h2conn_free(r->f->c);
        r->f->c = NULL;
    }
}

const struct h2_stream_ops rq_ops = {rq_head, rq_body, rq_read, rq_done};

struct req *req_new(struct fx *f, const char *method, const char *path)
{
    struct req *r = calloc(1, sizeof(*r));

    assert_non_null(r);
    assert_true(f->nall < MAX_REQS);
    f->all[f->nall++] = r;
    r->f = f;
    r->method = method;
    r->path = path;
    r->body_len = -1;
    return r;
}

void submit(struct req *r)
{
    struct h2_request rq = {.method = r->method,
                            .scheme = "http",
                            .authority = "127.0.0.1",
                            .path = r->path,
                            .headers = r->headers,
                            .nheaders = r->nheaders,
                            .has_body = r->has_body,
                            .body_len = r->body_len};

    assert_int_equal(h2conn_submit(r->f->c, &rq, &rq_ops, r, &r->s), 0);
}

struct req *start(struct fx *f, const char *method, const char *path)
{
    struct req *r = req_new(f, method, path);

    r->keep_body = true;
    submit(r);
    return r;
}

/* The JSON /echo answered r with; the caller json_decref()s it. */
json_t *echo_doc(struct req *r)
{
    json_t *doc;

    assert_int_equal(r->result, 0);
    assert_int_equal(r->status, 200);
    doc = json_loadb((const char *)r->body, r->got, 0, NULL);
    assert_non_null(doc);
    return doc;
}

/* The value of the first header named name in an /echo document, or NULL. */
const char *echo_header(json_t *doc, const char *name)
{
    json_t *pair;
    size_t i;

    json_array_foreach(json_object_get(doc, "headers"), i, pair) {
        if (strcmp(json_string_value(json_array_get(pair, 0)), name) == 0)
            return json_string_value(json_array_get(pair, 1));
    }
    return NULL;
}
