/*
 * Unit tests for src/broker/h2conn.c (and h2conn_stream.c): one HTTP/2 connection over a
 * real TCP connection to a real server, tests/unit/peers/h2_peer.py (python3-h2, h2c with
 * prior knowledge), on a real libuv loop. The transport is the tests' own glue around a
 * uv_tcp_t and the "pool" a queue drained while h2conn_available() holds, both in
 * h2conn_fixture.c.
 *
 * Nothing sleeps and nothing is timed: the loop runs until a condition holds, with a
 * deadline only against hangs. Each test starts its own peer; it skips (77 from main)
 * when /usr/bin/python3 has no h2 module.
 *
 * argv[1]: h2_peer.py
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "h2conn.h"
#include "h2conn_fixture.h"
#include "h2conn_internal.h"
#include "upstream.h"

#define NSLOW 65 /* 65 stream windows are more than the connection window */
#define SIZE_4M (4u * 1024u * 1024u)

const char *peer_script;

/* ---- tests ---- */

static void test_h2conn_get_sends_clean_headers(void **state)
{
    struct fx *f = *state;
    static const char *const hdrs[] = {"X-Custom: One ",
                                       "Connection: keep-alive, X-Gone",
                                       "X-Gone: 1",
                                       "Keep-Alive: 5",
                                       "Transfer-Encoding: chunked",
                                       "Upgrade: h2c",
                                       "Host: evil",
                                       "Proxy-Connection: x",
                                       "TE: trailers, deflate",
                                       "Content-Length: 9"};
    struct req *r;
    json_t *doc;

    fx_open(f, NULL);
    r = req_new(f, "GET", "/echo?app_key=k");
    r->keep_body = true;
    r->headers = hdrs;
    r->nheaders = sizeof(hdrs) / sizeof(hdrs[0]);
    submit(r);
    assert_true(run_until(f, is_done, r));
    assert_int_equal(r->heads, 1);
    doc = echo_doc(r);
    assert_string_equal(json_string_value(json_object_get(doc, "method")), "GET");
    assert_string_equal(json_string_value(json_object_get(doc, "path")), "/echo?app_key=k");
    assert_string_equal(json_string_value(json_object_get(doc, "authority")), "127.0.0.1");
    assert_string_equal(echo_header(doc, "x-custom"), "One");
    assert_string_equal(echo_header(doc, "te"), "trailers");
    assert_int_equal(json_array_size(json_object_get(doc, "headers")), 2);
    json_decref(doc);
    assert_false(r->order_bad);
}

static void test_h2conn_posts_bodies_of_unknown_and_known_length(void **state)
{
    struct fx *f = *state;
    struct req *u, *k;
    json_t *doc;
    size_t i;
    const char *body;

    fx_open(f, NULL);
    u = req_new(f, "POST", "/echo");
    k = req_new(f, "POST", "/echo");
    u->keep_body = k->keep_body = true;
    u->has_body = k->has_body = true;
    u->body_total = 100000;
    k->body_total = 70001;
    k->body_len = 70001;
    submit(u);
    assert_true(run_until(f, is_done, u));
    submit(k);
    assert_true(run_until(f, is_done, k));
    doc = echo_doc(u);
    assert_null(echo_header(doc, "content-length"));
    assert_int_equal(json_integer_value(json_object_get(doc, "body_len")), 100000);
    body = json_string_value(json_object_get(doc, "body"));
    for (i = 0; i < 100000; i++)
        assert_int_equal(body[i], 'a' + i % 26);
    json_decref(doc);
    doc = echo_doc(k);
    assert_string_equal(echo_header(doc, "content-length"), "70001");
    assert_int_equal(json_integer_value(json_object_get(doc, "body_len")), 70001);
    json_decref(doc);
    assert_true(u->reads > 3 && k->reads > 3); /* it paused, and came back */
}

static void test_h2conn_body_not_matching_its_length_fails(void **state)
{
    struct fx *f = *state;
    struct req *longer, *shorter, *after;

    fx_open(f, NULL);
    longer = req_new(f, "POST", "/echo");
    shorter = req_new(f, "POST", "/echo");
    longer->has_body = shorter->has_body = true;
    longer->body_total = 20000;
    longer->body_len = 19999;
    shorter->body_total = 20000;
    shorter->body_len = 20001;
    submit(longer);
    submit(shorter);
    assert_true(run_until(f, all_done, NULL));
    assert_int_equal(longer->result, UPSTREAM_ERR_CONNECT);
    assert_string_equal(longer->detail, "request body longer than its content-length");
    assert_false(longer->retryable);
    assert_int_equal(shorter->result, UPSTREAM_ERR_CONNECT);
    assert_string_equal(shorter->detail, "request body shorter than its content-length");
    after = start(f, "GET", "/echo");
    assert_true(run_until(f, is_done, after));
    assert_int_equal(after->result, 0);
}

static void test_h2conn_respects_max_concurrent_streams(void **state)
{
    struct fx *f = *state;
    struct h2_stream *s;
    struct req *stats;
    json_t *doc;
    size_t i;

    fx_open(f, "1");
    for (i = 0; i < 20; i++)
        f->queue[f->nqueue++] = req_new(f, "GET", i % 2 ? "/size/30000" : "/size/1");
    pool_pump(f);
    assert_int_equal(h2conn_active(f->c), 1);
    assert_false(h2conn_available(f->c));
    {
        struct h2_request rq = {"GET", "http", NULL, "/echo", NULL, 0, false, -1};
        assert_int_equal(h2conn_submit(f->c, &rq, &rq_ops, NULL, &s), ERR_LIMIT);
        assert_null(s);
    }
    assert_true(run_until(f, all_done, NULL));
    for (i = 0; i < 20; i++) {
        assert_int_equal(f->all[i]->result, 0);
        assert_int_equal(f->all[i]->status, 200);
        assert_false(f->all[i]->pattern_bad);
    }
    assert_int_equal(f->max_active, 1);
    assert_true(f->capacity >= 19);
    stats = start(f, "GET", "/stats");
    assert_true(run_until(f, is_done, stats));
    doc = echo_doc(stats);
    assert_int_equal(json_integer_value(json_object_get(doc, "max_open")), 1);
    json_decref(doc);
}

/* Before the server's first SETTINGS one stream, not nghttp2's 100: a server with a lower
 * limit would refuse the rest of a burst. on_capacity says when SETTINGS raised it. */
static void test_h2conn_one_stream_until_the_servers_settings(void **state)
{
    struct fx *f = *state;
    size_t i;

    f->no_settings_wait = true;
    fx_open(f, NULL);
    for (i = 0; i < 5; i++)
        f->queue[f->nqueue++] = req_new(f, "GET", "/size/10");
    pool_pump(f);
    assert_int_equal(h2conn_active(f->c), 1);
    assert_false(h2conn_available(f->c));
    assert_int_equal(f->capacity, 0);
    assert_true(run_until(f, all_done, NULL));
    assert_true(f->capacity >= 1);
    assert_true(f->max_active > 1); /* the rest went out together once SETTINGS came */
    for (i = 0; i < 5; i++)
        assert_int_equal(f->all[i]->result, 0);
}

static bool reading_paused(struct fx *f, void *unused)
{
    (void)unused;
    return f->read_paused;
}

static bool never_true(void *unused)
{
    (void)unused;
    return false;
}

static void test_h2conn_slow_reader_never_blocks_a_fast_one(void **state)
{
    struct fx *f = *state;
    struct req *slow, *fast;

    fx_open(f, NULL);
    slow = req_new(f, "GET", "/size/4194304");
    fast = req_new(f, "GET", "/size/4194304");
    slow->slow = true;
    submit(slow);
    submit(fast);
    assert_true(run_until(f, is_done, fast));
    assert_int_equal(fast->result, 0);
    assert_int_equal(fast->got, SIZE_4M);
    assert_false(fast->pattern_bad);
    /* The slow one is still paused, holding at most its window and nothing more. */
    assert_int_equal(slow->dones, 0);
    assert_true(slow->pauses >= 1);
    assert_int_equal(slow->got, 0);
    assert_true(h2_stream_buffered(slow->s) > 0);
    assert_true(h2_stream_buffered_peak(slow->s) <= H2CONN_STREAM_WINDOW);
    slow->released = true;
    h2_stream_resume(slow->s);
    assert_true(run_until(f, is_done, slow));
    assert_int_equal(slow->result, 0);
    assert_int_equal(slow->got, SIZE_4M);
    assert_false(slow->pattern_bad);
    assert_false(slow->order_bad);
    assert_false(slow->reoffer_bad); /* exactly what it paused on came back first */
    assert_false(f->read_pause_bad); /* never with the fast one still open */
}

/* What the connection tells its transport it may wait for (read batching): the one open
 * stream's remainder within its window; nothing once the window is used up, nothing with
 * a second stream open (its answer must not wait behind a batch), nothing at the end. */
static void test_h2conn_due_is_one_streams_remainder_within_its_window(void **state)
{
    struct fx *f = *state;
    struct req *r, *held;

    fx_open(f, NULL);
    r = req_new(f, "GET", "/size/4194304");
    r->total = SIZE_4M;
    submit(r);
    assert_true(run_until(f, is_done, r));
    assert_int_equal(r->result, 0);
    assert_false(r->due_bad);
    assert_true(r->due_max > 0);
    assert_int_equal(h2conn_due(f->c), 0);

    /* A reader that does not take, alone on the connection: the transport is asked to stop
     * feeding us, and the server's bytes wait in the socket (within the stream window),
     * not in the stream's hold buffer; reading starts again when the reader takes. */
    r = req_new(f, "GET", "/size/4194304");
    r->slow = true;
    submit(r);
    assert_true(run_until(f, reading_paused, NULL));
    assert_true(r->pauses >= 1);
    peer_run_until(&f->loop, never_true, NULL, 50); /* nothing read meanwhile */
    assert_true(h2_stream_buffered(r->s) <= 64 * 1024);
    r->released = true;
    h2_stream_resume(r->s);
    assert_true(run_until(f, is_done, r));
    assert_int_equal(r->result, 0);
    assert_int_equal(r->got, SIZE_4M);
    assert_false(r->pattern_bad);
    assert_false(r->due_bad);
    assert_false(f->read_paused);
    assert_false(f->read_pause_bad);

    /* Beside a stream the server holds unanswered (submitted after it, so that the
     * download's stream is the first the connection looks at). */
    r = req_new(f, "GET", "/size/4194304");
    submit(r);
    held = req_new(f, "GET", "/hold");
    submit(held);
    assert_true(run_until(f, is_done, r));
    assert_int_equal(r->result, 0);
    assert_int_equal(r->due_max, 0);
    h2_stream_cancel(held->s);
    held->s = NULL;
}

/* More slow readers than the connection window holds: each keeps a full stream window of
 * bytes it has not taken. Had the connection window followed the readers too, they would
 * have used it up and the fast one would never finish. */
static void test_h2conn_slow_readers_never_use_up_the_connection_window(void **state)
{
    struct fx *f = *state;
    struct req *slow[NSLOW], *fast;
    size_t i;

    assert_true((size_t)NSLOW * H2CONN_STREAM_WINDOW > H2CONN_CONN_WINDOW);
    fx_open(f, NULL);
    for (i = 0; i < NSLOW; i++) {
        slow[i] = req_new(f, "GET", "/size/300000");
        slow[i]->slow = true;
        submit(slow[i]);
    }
    fast = req_new(f, "GET", "/size/4194304");
    submit(fast);
    assert_true(run_until(f, is_done, fast));
    assert_int_equal(fast->result, 0);
    assert_int_equal(fast->got, SIZE_4M);
    for (i = 0; i < NSLOW; i++) {
        assert_int_equal(slow[i]->dones, 0);
        assert_true(h2_stream_buffered_peak(slow[i]->s) <= H2CONN_STREAM_WINDOW);
        slow[i]->released = true;
        h2_stream_resume(slow[i]->s);
    }
    assert_true(run_until(f, all_done, NULL));
    for (i = 0; i < NSLOW; i++) {
        assert_int_equal(slow[i]->result, 0);
        assert_int_equal(slow[i]->got, 300000);
        assert_false(slow[i]->pattern_bad);
    }
}

static void test_h2conn_goaway_fails_streams_above_last_id_as_retryable(void **state)
{
    struct fx *f = *state;
    struct req *h1, *h3, *g5, *e7;
    struct h2_stream *s;
    struct h2_request rq = {"GET", "http", NULL, "/echo", NULL, 0, false, -1};

    fx_open(f, NULL);
    h1 = start(f, "GET", "/hold");
    h3 = start(f, "GET", "/hold");
    g5 = start(f, "GET", "/goaway");
    e7 = start(f, "GET", "/echo");
    assert_int_equal(h2_stream_id(g5->s), 5);
    assert_true(run_until(f, all_done, NULL));
    assert_int_equal(h1->result, 0);
    assert_int_equal(h3->result, 0);
    assert_string_equal((char *)h1->body, "held");
    assert_string_equal((char *)h3->body, "held");
    assert_int_equal(g5->result, UPSTREAM_ERR_CONNECT);
    assert_true(g5->retryable);
    assert_non_null(strstr(g5->detail, "GOAWAY"));
    assert_int_equal(e7->result, UPSTREAM_ERR_CONNECT);
    assert_true(e7->retryable);
    assert_false(h2conn_available(f->c));
    assert_int_equal(h2conn_submit(f->c, &rq, &rq_ops, NULL, &s), ERR_CLOSED);
    assert_true(run_until(f, conn_closed, NULL));
    assert_int_equal(f->closed, 1);
    assert_non_null(strstr(f->closed_reason, "GOAWAY"));
}

static void test_h2conn_rst_stream_fails_only_that_stream(void **state)
{
    struct fx *f = *state;
    struct req *rst, *refused, *ok;

    fx_open(f, NULL);
    rst = start(f, "GET", "/rst");
    refused = start(f, "GET", "/refused");
    ok = req_new(f, "GET", "/size/300000");
    submit(ok);
    assert_true(run_until(f, all_done, NULL));
    assert_int_equal(rst->heads, 1);
    assert_int_equal(rst->result, UPSTREAM_ERR_TRANSFER);
    assert_false(rst->retryable);
    assert_string_equal(rst->detail, "stream reset by the upstream: INTERNAL_ERROR");
    assert_int_equal(refused->heads, 0);
    assert_int_equal(refused->result, UPSTREAM_ERR_CONNECT);
    assert_true(refused->retryable);
    assert_string_equal(refused->detail, "stream reset by the upstream: REFUSED_STREAM");
    assert_int_equal(ok->result, 0);
    assert_int_equal(ok->got, 300000);
    assert_true(h2conn_available(f->c));
    assert_int_equal(f->closed, 0);
}

static void test_h2conn_early_answer_to_a_big_post_completes(void **state)
{
    struct fx *f = *state;
    struct req *early, *noreset, *after;

    fx_open(f, NULL);
    early = req_new(f, "POST", "/early");
    noreset = req_new(f, "POST", "/early-noreset");
    early->keep_body = noreset->keep_body = true;
    early->has_body = noreset->has_body = true;
    early->body_total = noreset->body_total = 8u * 1024 * 1024;
    early->body_len = (int64_t)early->body_total;
    submit(early);
    submit(noreset);
    assert_true(run_until(f, all_done, NULL));
    assert_int_equal(early->result, 0);
    assert_int_equal(early->status, 200);
    assert_string_equal((char *)early->body, "early");
    assert_int_equal(noreset->result, 0);
    assert_string_equal((char *)noreset->body, "early");
    assert_true(early->body_sent < early->body_total);
    assert_true(noreset->body_sent < noreset->body_total);
    after = start(f, "GET", "/echo");
    assert_true(run_until(f, is_done, after));
    assert_int_equal(after->result, 0);
    assert_int_equal(f->closed, 0);
}

static void test_h2conn_oversized_heads_fail_their_stream_only(void **state)
{
    struct fx *f = *state;
    struct req *big, *many, *after;

    fx_open(f, NULL);
    big = start(f, "GET", "/bighead");
    many = start(f, "GET", "/manyheaders");
    assert_true(run_until(f, all_done, NULL));
    assert_int_equal(big->heads, 0);
    assert_int_equal(big->result, UPSTREAM_ERR_CONNECT);
    assert_false(big->retryable);
    assert_string_equal(big->detail, "response head over 262144 bytes");
    assert_int_equal(many->heads, 0);
    assert_int_equal(many->result, UPSTREAM_ERR_CONNECT);
    assert_string_equal(many->detail, "response head with more than 500 header fields");
    after = start(f, "GET", "/echo");
    assert_true(run_until(f, is_done, after));
    assert_int_equal(after->result, 0);
    assert_int_equal(f->closed, 0);
}

/* Mid-body, and on a response whose last byte had already arrived. */
static void test_h2conn_cancel_from_inside_on_body(void **state)
{
    struct fx *f = *state;
    struct req *c, *whole, *after;

    fx_open(f, NULL);
    c = req_new(f, "GET", "/size/1048576");
    whole = req_new(f, "GET", "/size/100");
    c->cancel_in_body = whole->cancel_in_body = true;
    submit(c);
    submit(whole);
    assert_true(run_until(f, none_active, NULL));
    assert_true(c->cancelled && whole->cancelled);
    after = start(f, "GET", "/echo");
    assert_true(run_until(f, is_done, after));
    assert_int_equal(after->result, 0);
    assert_int_equal(h2conn_active(f->c), 0);
    assert_int_equal(c->dones + whole->dones, 0);
    assert_int_equal(c->body_calls, 1);
    assert_int_equal(whole->body_calls, 1);
}

static void test_h2conn_free_from_inside_on_done(void **state)
{
    struct fx *f = *state;
    struct req *a, *held;

    fx_open(f, NULL);
    held = start(f, "GET", "/hold");
    a = start(f, "GET", "/echo");
    a->free_in_done = true;
    assert_true(run_until(f, conn_gone, NULL));
    assert_int_equal(a->dones, 1);
    assert_int_equal(a->result, 0);
    assert_int_equal(held->heads + held->dones + (int)held->body_calls, 0);
    assert_int_equal(f->closed, 0);
}

static void test_h2conn_ping_is_answered_and_a_lost_one_fails(void **state)
{
    struct fx *f = *state;
    uint64_t two = 2;
    struct req *held;

    fx_open(f, NULL);
    h2conn_ping(f->c);
    assert_true(run_until(f, pings_acked, &two));
    assert_int_equal(f->closed, 0);
    held = start(f, "GET", "/hold");
    h2conn_ping(f->c);
    h2conn_ping(f->c); /* the first has had no chance of an ACK */
    assert_int_equal(f->closed, 1);
    assert_string_equal(f->closed_reason, "ping timeout: the upstream did not answer a PING");
    assert_int_equal(held->dones, 1);
    assert_int_equal(held->result, UPSTREAM_ERR_CONNECT);
    assert_false(held->retryable); /* its HEADERS had left */
    assert_false(h2conn_available(f->c));
}

static void test_h2conn_transport_close_flags_unsent_requests_retryable(void **state)
{
    struct fx *f = *state;
    struct req *sent, *unsent;

    fx_open(f, NULL);
    sent = start(f, "GET", "/hold");
    /* HEADERS leave from the pump, in the loop's next turn (one write for a turn's
     * requests), not inside start(). */
    (void)uv_run(&f->loop, UV_RUN_NOWAIT);
    f->stall = true;
    unsent = start(f, "GET", "/echo");
    h2conn_transport_closed(f->c, "test");
    assert_int_equal(sent->dones, 1);
    assert_false(sent->retryable);
    assert_int_equal(unsent->dones, 1);
    assert_true(unsent->retryable);
    assert_int_equal(unsent->result, UPSTREAM_ERR_CONNECT);
    assert_int_equal(f->closed, 1);
    assert_string_equal(f->closed_reason, "the connection to the upstream closed: test");
}

static void test_h2conn_close_calls_nothing_after(void **state)
{
    struct fx *f = *state;
    struct req *held;

    fx_open(f, NULL);
    held = start(f, "GET", "/hold");
    h2conn_close(f->c);
    assert_int_equal(h2conn_active(f->c), 0);
    assert_false(h2conn_available(f->c));
    /* The peer answers our GOAWAY by closing: EOF reaches a closed conn. */
    while (!f->eof)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(held->dones, 0);
    assert_int_equal(f->closed, 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_h2conn_get_sends_clean_headers),
        T(test_h2conn_posts_bodies_of_unknown_and_known_length),
        T(test_h2conn_body_not_matching_its_length_fails),
        T(test_h2conn_respects_max_concurrent_streams),
        T(test_h2conn_one_stream_until_the_servers_settings),
        T(test_h2conn_slow_reader_never_blocks_a_fast_one),
        T(test_h2conn_slow_readers_never_use_up_the_connection_window),
        T(test_h2conn_due_is_one_streams_remainder_within_its_window),
        T(test_h2conn_goaway_fails_streams_above_last_id_as_retryable),
        T(test_h2conn_rst_stream_fails_only_that_stream),
        T(test_h2conn_early_answer_to_a_big_post_completes),
        T(test_h2conn_oversized_heads_fail_their_stream_only),
        T(test_h2conn_cancel_from_inside_on_body),
        T(test_h2conn_free_from_inside_on_done),
        T(test_h2conn_ping_is_answered_and_a_lost_one_fails),
        T(test_h2conn_transport_close_flags_unsent_requests_retryable),
        T(test_h2conn_close_calls_nothing_after),
#undef T
    };

    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        fprintf(stderr, "usage: %s h2_peer.py\n", argv[0]);
        return 1;
    }
    peer_script = argv[1];
    if (system(PY " -c 'import h2' 2>/dev/null") != 0) {
        fprintf(stderr, "skipped: " PY " has no h2 module (python3-h2)\n");
        return 77;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
