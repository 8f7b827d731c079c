/*
 * Unit tests for src/broker/h1conn.c against a real HTTP/1.1 server
 * (tests/unit/peers/h1_peer.py, started here), over plain TCP with this file's own few
 * lines of libuv glue as the transport: keep-alive reuse, Content-Length, chunked and
 * close-delimited bodies, interim heads, request bodies of known and unknown length,
 * a reader that pauses, heads over the limits, garbage, a cut body, a request that dies
 * on a reused connection (retryable), an early answer to a POST, cancel and free from
 * inside callbacks.
 *
 * argv[1]: h1_peer.py.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "err.h"
#include "h1conn.h"
#include "peer.h"
#include "upstream.h"

static const char *peer_script;
static struct peer peer; /* h1_peer.py, for every test */

/* ---- the transport: a TCP connection to the peer ---- */

struct tcp {
    uv_tcp_t handle;
    uv_connect_t connect;
    struct h1conn *conn;
    size_t pending;
    bool connected, closed;
    int paused_count;
};

struct wreq {
    uv_write_t req;
    struct tcp *tcp;
    size_t len;
    char data[];
};

static void on_written(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;

    (void)status;
    w->tcp->pending -= w->len;
    if (w->tcp->conn != NULL && w->tcp->pending == 0)
        h1conn_on_drain(w->tcp->conn);
    free(w);
}

static int tcp_send(void *t, const uint8_t *data, size_t len)
{
    struct tcp *tcp = t;
    struct wreq *w = malloc(sizeof(*w) + len);
    uv_buf_t b;

    if (w == NULL || tcp->closed) {
        free(w);
        return ERR_CLOSED;
    }
    memcpy(w->data, data, len);
    w->tcp = tcp;
    w->len = len;
    b = uv_buf_init(w->data, (unsigned)len);
    tcp->pending += len;
    if (uv_write(&w->req, (uv_stream_t *)&tcp->handle, &b, 1, on_written) != 0) {
        tcp->pending -= len;
        free(w);
        return ERR_CLOSED;
    }
    return 0;
}

static size_t tcp_pending(void *t)
{
    return ((struct tcp *)t)->pending;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)h;
    (void)hint;
    b->base = malloc(65536);
    b->len = b->base != NULL ? 65536 : 0;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct tcp *tcp = (struct tcp *)s;

    if (n > 0 && tcp->conn != NULL)
        h1conn_feed(tcp->conn, (const uint8_t *)b->base, (size_t)n);
    free(b->base);
    if (n < 0 && !tcp->closed) {
        tcp->closed = true;
        uv_read_stop(s);
        if (tcp->conn != NULL)
            h1conn_transport_closed(tcp->conn, n == UV_EOF ? NULL : uv_strerror((int)n));
    }
}

static void tcp_read_pause(void *t, bool pause)
{
    struct tcp *tcp = t;

    if (tcp->closed)
        return;
    if (pause) {
        tcp->paused_count++;
        uv_read_stop((uv_stream_t *)&tcp->handle);
    } else {
        uv_read_start((uv_stream_t *)&tcp->handle, on_alloc, on_read);
    }
}

static const struct h1conn_transport transport = {tcp_send, tcp_pending, tcp_read_pause};

/* ---- the connection's owner ---- */

struct owner {
    struct tcp tcp;
    struct h1conn *c;
    int idle, closed;
    char reason[200];
    bool free_on_done;
};

static void on_idle(struct h1conn *c, void *ud)
{
    ((struct owner *)ud)->idle++;
}

static void on_conn_closed(struct h1conn *c, const char *reason, void *ud)
{
    struct owner *o = ud;

    o->closed++;
    snprintf(o->reason, sizeof(o->reason), "%s", reason);
}

static const struct h1conn_events events = {on_idle, on_conn_closed};

static void on_connected(uv_connect_t *req, int status)
{
    struct tcp *tcp = req->data;

    assert_int_equal(status, 0);
    tcp->connected = true;
    uv_read_start((uv_stream_t *)&tcp->handle, on_alloc, on_read);
}

/* Runs the default loop until cond(arg), which must come. */
static void run_until(bool (*cond)(void *), void *arg)
{
    assert_true(peer_run_until(uv_default_loop(), cond, arg, 60000));
}

static bool is_connected(void *arg)
{
    return ((struct tcp *)arg)->connected;
}

static void owner_open(struct owner *o)
{
    struct sockaddr_in a;

    memset(o, 0, sizeof(*o));
    uv_ip4_addr("127.0.0.1", peer.port, &a);
    uv_tcp_init(uv_default_loop(), &o->tcp.handle);
    o->tcp.connect.data = &o->tcp;
    assert_int_equal(uv_tcp_connect(&o->tcp.connect, &o->tcp.handle, (struct sockaddr *)&a,
                                    on_connected), 0);
    run_until(is_connected, &o->tcp);
    assert_int_equal(h1conn_new(uv_default_loop(), &transport, &o->tcp, &events, o, &o->c), 0);
    o->tcp.conn = o->c;
}

static void on_tcp_closed(uv_handle_t *h)
{
    (void)h;
}

static void owner_close(struct owner *o)
{
    o->tcp.conn = NULL;
    h1conn_free(o->c);
    o->tcp.closed = true;
    uv_close((uv_handle_t *)&o->tcp.handle, on_tcp_closed);
    uv_run(uv_default_loop(), UV_RUN_NOWAIT);
    uv_run(uv_default_loop(), UV_RUN_NOWAIT);
}

/* ---- an exchange ---- */

struct exchange {
    struct owner *o;
    struct h1_exchange *x;
    int status, heads, done, result;
    bool retryable;
    char detail[200];
    uint8_t *body;
    size_t body_len;
    bool pattern_ok;
    /* request body */
    const uint8_t *req_body;
    size_t req_len, req_off;
    /* pausing */
    int pause_every, calls;
    uv_timer_t resume;
    bool cancel_in_body;
    /* h1conn_due as each body piece came: the most, and the most it put the body's end at
     * (what came before and with the piece, plus what it says is still due) */
    uint64_t due_max, due_end_max;
};

static void ex_on_head(void *ud, int status, const struct http1_header *h, size_t n)
{
    struct exchange *e = ud;

    e->status = status;
    e->heads++;
}

static void on_resume_timer(uv_timer_t *t)
{
    struct exchange *e = t->data;

    h1_exchange_resume(e->x);
}

static int ex_on_body(void *ud, const uint8_t *data, size_t len)
{
    struct exchange *e = ud;
    uint64_t due = h1conn_due(e->o->c);

    if (due > e->due_max)
        e->due_max = due;
    if (due + e->body_len + len > e->due_end_max)
        e->due_end_max = due + e->body_len + len;

    if (e->cancel_in_body) {
        h1_exchange_cancel(e->x);
        e->calls++;
        return 0;
    }
    if (e->pause_every > 0 && ++e->calls % e->pause_every == 0) {
        uv_timer_start(&e->resume, on_resume_timer, 1, 0);
        return H1_PAUSE;
    }
    e->body = realloc(e->body, e->body_len + len);
    assert_non_null(e->body);
    memcpy(e->body + e->body_len, data, len);
    e->body_len += len;
    return 0;
}

static ssize_t ex_read_body(void *ud, uint8_t *dst, size_t max)
{
    struct exchange *e = ud;
    size_t n = e->req_len - e->req_off;

    if (n > max)
        n = max;
    memcpy(dst, e->req_body + e->req_off, n);
    e->req_off += n;
    return (ssize_t)n;
}

static void ex_on_done(void *ud, int result, const char *detail, bool retryable)
{
    struct exchange *e = ud;

    e->done++;
    e->result = result;
    e->retryable = retryable;
    snprintf(e->detail, sizeof(e->detail), "%s", detail != NULL ? detail : "");
    if (e->o->free_on_done) {
        e->o->tcp.conn = NULL;
        h1conn_free(e->o->c);
    }
}

static const struct h1_exchange_ops ex_ops = {ex_on_head, ex_on_body, ex_read_body, ex_on_done};

static bool ex_finished(void *arg)
{
    return ((struct exchange *)arg)->done > 0;
}

static bool pattern_matches(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != i % 251)
            return false;
    }
    return true;
}

/* Sends method path (with body of len bytes when body != NULL, known length unless
 * chunked) on o, runs to its end. */
static void exchange(struct owner *o, struct exchange *e, const char *method, const char *path,
                     const uint8_t *body, size_t len, bool chunked)
{
    const char *headers[] = {"Content-Type: text/plain", "Accept:", "X-Test: yes"};
    struct h1_request rq = {method, "127.0.0.1", path, headers, 3, body != NULL,
                            body == NULL ? 0 : chunked ? -1 : (int64_t)len};
    int pause_every = e->pause_every;
    bool cancel = e->cancel_in_body;

    free(e->body);
    memset(e, 0, sizeof(*e));
    e->o = o;
    e->pause_every = pause_every;
    e->cancel_in_body = cancel;
    e->req_body = body;
    e->req_len = len;
    uv_timer_init(uv_default_loop(), &e->resume);
    e->resume.data = e;
    assert_true(h1conn_idle(o->c));
    assert_int_equal(h1conn_submit(o->c, &rq, &ex_ops, e, &e->x), 0);
    if (!cancel)
        run_until(ex_finished, e);
}

static void exchange_end(struct exchange *e)
{
    uv_close((uv_handle_t *)&e->resume, NULL);
    uv_run(uv_default_loop(), UV_RUN_NOWAIT);
    free(e->body);
    e->body = NULL;
}

/* ---- tests ---- */

static bool conn_closed(void *arg);

static void test_keep_alive_reuse_with_length_and_chunked_bodies(void **state)
{
    struct owner o;
    struct exchange e = {0};

    owner_open(&o);
    exchange(&o, &e, "GET", "/len/100000", NULL, 0, false);
    assert_int_equal(e.result, 0);
    assert_int_equal(e.status, 200);
    assert_int_equal(e.body_len, 100000);
    assert_true(pattern_matches(e.body, e.body_len));
    assert_int_equal(o.idle, 1);
    exchange(&o, &e, "GET", "/chunked/55555", NULL, 0, false);
    assert_int_equal(e.result, 0);
    assert_int_equal(e.body_len, 55555);
    assert_true(pattern_matches(e.body, e.body_len));
    exchange(&o, &e, "GET", "/100/777", NULL, 0, false); /* 100 and 103 skipped */
    assert_int_equal(e.heads, 1);
    assert_int_equal(e.status, 200);
    assert_int_equal(e.body_len, 777);
    /* Heads cut across reads are gathered; one that comes whole is parsed where it lies. */
    exchange(&o, &e, "GET", "/dribble/3000", NULL, 0, false);
    assert_int_equal(e.result, 0);
    assert_int_equal(e.heads, 1);
    assert_int_equal(e.status, 200);
    assert_int_equal(e.body_len, 3000);
    assert_true(pattern_matches(e.body, e.body_len));
    exchange(&o, &e, "HEAD", "/head", NULL, 0, false);
    assert_int_equal(e.status, 200);
    assert_int_equal(e.body_len, 0);
    exchange(&o, &e, "GET", "/304", NULL, 0, false);
    assert_int_equal(e.status, 304);
    assert_int_equal(o.idle, 6);
    assert_int_equal(o.closed, 0);
    exchange_end(&e);
    owner_close(&o);
}

/* A line that would split the request head, or is no "Name: value", is refused before a
 * byte is sent; the connection stays idle and serves the next request. */
static void test_request_lines_that_would_split_the_head_are_refused(void **state)
{
    static const char *const bad[] = {"X-A: 1\r\nX-Smuggled: 2", "X-A: 1\n", "X-A\r: 1",
                                      "No-Colon", ": no name", "X-A\n: 1"};
    struct owner o;
    struct exchange e = {0};

    (void)state;
    owner_open(&o);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *headers[] = {"Accept: */*", bad[i]};
        struct h1_request rq = {"GET", "127.0.0.1", "/len/10", headers, 2, false, 0};
        struct h1_exchange *x = NULL;

        assert_int_equal(h1conn_submit(o.c, &rq, &ex_ops, &e, &x), ERR_INVALID);
        assert_null(x);
        assert_true(h1conn_idle(o.c));
    }
    exchange(&o, &e, "GET", "/len/10", NULL, 0, false);
    assert_int_equal(e.result, 0);
    assert_int_equal(e.status, 200);
    assert_int_equal(e.body_len, 10);
    exchange_end(&e);
    owner_close(&o);
}

static void test_request_bodies_of_known_and_unknown_length(void **state)
{
    struct owner o;
    struct exchange e = {0};
    size_t n = 3 * 1024 * 1024 + 17;
    uint8_t *body = malloc(n);
    char want[64];

    for (size_t i = 0; i < n; i++)
        body[i] = (uint8_t)(i * 7);
    owner_open(&o);
    exchange(&o, &e, "POST", "/echo", body, n, false);
    assert_int_equal(e.result, 0);
    snprintf(want, sizeof(want), "POST %zu ", n);
    assert_true(e.body_len > strlen(want) && memcmp(e.body, want, strlen(want)) == 0);
    /* the headers went along */
    assert_true(memcmp(e.body + e.body_len - 10, "text/plain", 10) == 0);
    exchange(&o, &e, "PUT", "/echo", body, n, true);
    assert_int_equal(e.result, 0);
    snprintf(want, sizeof(want), "PUT %zu ", n);
    assert_true(memcmp(e.body, want, strlen(want)) == 0);
    exchange(&o, &e, "POST", "/echo", body, 0, true); /* an empty chunked body */
    assert_true(memcmp(e.body, "POST 0 ", 7) == 0);
    assert_int_equal(o.closed, 0);
    exchange_end(&e);
    owner_close(&o);
    free(body);
}

static void test_a_pausing_reader_gets_every_byte_in_order(void **state)
{
    struct owner o;
    struct exchange e = {.pause_every = 2};

    owner_open(&o);
    exchange(&o, &e, "GET", "/len/4194304", NULL, 0, false);
    assert_int_equal(e.result, 0);
    assert_int_equal(e.body_len, 4194304);
    assert_true(pattern_matches(e.body, e.body_len));
    assert_true(o.tcp.paused_count > 0);
    /* What it told the transport to wait for (read batching): some of the rest, never
     * past the end, nothing once the exchange is over. */
    assert_true(e.due_max > 0);
    assert_true(e.due_end_max <= 4194304);
    assert_int_equal(h1conn_due(o.c), 0);
    exchange(&o, &e, "GET", "/chunked/1000000", NULL, 0, false);
    assert_int_equal(e.body_len, 1000000);
    assert_true(pattern_matches(e.body, e.body_len));
    assert_int_equal(e.due_max, 0); /* a chunked body promises nothing ahead */
    exchange(&o, &e, "GET", "/len-close/1000", NULL, 0, false);
    assert_int_equal(e.body_len, 1000);
    run_until(conn_closed, &o); /* "Connection: close": not reused, the peer's socket open */
    assert_int_equal(o.idle, 2);
    exchange_end(&e);
    owner_close(&o);
    owner_open(&o);
    exchange(&o, &e, "GET", "/close/300000", NULL, 0, false); /* the close ends it */
    assert_int_equal(e.result, 0);
    assert_int_equal(e.body_len, 300000);
    assert_true(pattern_matches(e.body, e.body_len));
    assert_int_equal(o.closed, 1); /* not reusable */
    exchange_end(&e);
    owner_close(&o);
}

static void test_bad_heads_and_cut_bodies_fail_clearly(void **state)
{
    static const struct {
        const char *path;
        int result;
        const char *detail;
    } cases[] = {
        {"/bighead", UPSTREAM_ERR_CONNECT, "the upstream's response head is too large"},
        {"/manyheaders", UPSTREAM_ERR_CONNECT, "the upstream's response head is too large"},
        {"/garbage", UPSTREAM_ERR_CONNECT, "malformed response head from the upstream"},
        {"/cut/1000", UPSTREAM_ERR_TRANSFER, "the upstream closed the connection mid-response"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct owner o;
        struct exchange e = {0};

        owner_open(&o);
        exchange(&o, &e, "GET", cases[i].path, NULL, 0, false);
        assert_int_equal(e.result, cases[i].result);
        assert_string_equal(e.detail, cases[i].detail);
        assert_false(e.retryable);
        assert_int_equal(o.closed, 1);
        assert_false(h1conn_idle(o.c));
        exchange_end(&e);
        owner_close(&o);
    }
}

static void test_a_reused_connection_closed_before_an_answer_is_retryable(void **state)
{
    struct owner o;
    struct exchange e = {0};

    owner_open(&o);
    exchange(&o, &e, "GET", "/second-dies", NULL, 0, false);
    assert_int_equal(e.result, 0);
    assert_false(e.retryable);
    exchange(&o, &e, "GET", "/second-dies", NULL, 0, false);
    assert_int_equal(e.result, UPSTREAM_ERR_CONNECT);
    assert_true(e.retryable);
    assert_int_equal(o.closed, 1);
    exchange_end(&e);
    owner_close(&o);
}

static void test_an_early_answer_to_a_post_completes(void **state)
{
    struct owner o;
    struct exchange e = {0};
    size_t n = 8 * 1024 * 1024;
    uint8_t *body = calloc(1, n);

    owner_open(&o);
    exchange(&o, &e, "POST", "/early", body, n, false);
    assert_int_equal(e.result, 0);
    assert_int_equal(e.status, 413);
    assert_true(e.req_off < n); /* it stopped sending */
    assert_int_equal(o.closed, 1);
    exchange_end(&e);
    owner_close(&o);
    free(body);
}

static bool conn_closed(void *arg)
{
    return ((struct owner *)arg)->closed > 0;
}

static void test_cancel_and_free_from_inside_callbacks(void **state)
{
    struct owner o;
    struct exchange e = {.cancel_in_body = true};

    owner_open(&o);
    exchange(&o, &e, "GET", "/len/1000000", NULL, 0, false);
    run_until(conn_closed, &o); /* a cut exchange: the connection goes */
    assert_int_equal(e.done, 0);
    assert_int_equal(e.calls, 1);
    assert_string_equal(o.reason, "an exchange was cancelled");
    exchange_end(&e);
    owner_close(&o);

    owner_open(&o);
    o.free_on_done = true;
    e.cancel_in_body = false;
    exchange(&o, &e, "GET", "/len/10", NULL, 0, false);
    assert_int_equal(e.done, 1);
    assert_int_equal(o.idle, 0); /* freed inside on_done: nothing after */
    exchange_end(&e);
    o.tcp.closed = true;
    uv_close((uv_handle_t *)&o.tcp.handle, on_tcp_closed);
    uv_run(uv_default_loop(), UV_RUN_NOWAIT);
}

static int start_peer(void **state)
{
    char *argv[] = {"/usr/bin/python3", (char *)peer_script, NULL};

    return peer_spawn(&peer, argv, true, NULL);
}

static int stop_peer(void **state)
{
    peer_stop(&peer);
    return 0;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keep_alive_reuse_with_length_and_chunked_bodies),
        cmocka_unit_test(test_request_lines_that_would_split_the_head_are_refused),
        cmocka_unit_test(test_request_bodies_of_known_and_unknown_length),
        cmocka_unit_test(test_a_pausing_reader_gets_every_byte_in_order),
        cmocka_unit_test(test_bad_heads_and_cut_bodies_fail_clearly),
        cmocka_unit_test(test_a_reused_connection_closed_before_an_answer_is_retryable),
        cmocka_unit_test(test_an_early_answer_to_a_post_completes),
        cmocka_unit_test(test_cancel_and_free_from_inside_callbacks),
    };

    if (argc < 2) {
        fprintf(stderr, "usage: %s h1_peer.py\n", argv[0]);
        return 2;
    }
    peer_script = argv[1];
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, start_peer, stop_peer);
}
