/*
 * Unit tests for src/net/netconn.c and netconn_tls.c: the stream and TLS against real
 * peers (tests/unit/netconn_fixture.h): echo over TLS and plain TCP; ALPN, SNI, session
 * resumption with TLS 1.3 and 1.2; the certificate checks and TLS 1.2 as the minimum;
 * read_stop/read_start with 8 MiB, with the download promised too (read batching) and a
 * promise the peer does not keep; an 8 MiB write to a slow reader; a free from inside
 * on_read; how a stream ends (EOF with or without close_notify, a bad record).
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "err.h"
#include "netconn_fixture.h"

static void test_netconn_echoes_over_tls(void **state)
{
    struct got *g = *state;
    struct peer *peer;
    struct net_target t = {.host = "127.0.0.1", .tls = true};
    struct net_conn *c;

    peer = peer_start(g, "echo", "leaf", NULL);
    t.port = (uint16_t)peer->port;
    assert_non_null(c = connect_to(g, &t, WAIT_MS));
    assert_string_equal(net_conn_alpn(c), ""); /* none offered */
    assert_false(net_conn_session_reused(c));
    write_all(c, "hello, ", 7);
    write_all(c, "world", 5);
    /* Both wait for the end of the loop turn and leave as one write: one drain. */
    assert_true(net_conn_pending(c) > 12); /* two records' bytes */
    assert_int_equal(g->drains, 0);
    wait_bytes(g, 12);
    assert_memory_equal(g->data, "hello, world", 12);
    assert_int_equal(net_conn_pending(c), 0);
    assert_int_equal(g->drains, 1);
    assert_false(g->closed);
    conn_free(g);
    peer_stop(peer);
}

static void test_netconn_echoes_over_plain_tcp(void **state)
{
    struct got *g = *state;
    struct peer *peer;
    struct net_target t = {.host = "localhost", .tls = false};
    struct net_conn *c;
    char peer_name[64];

    peer = peer_start(g, "echo", NULL, NULL);
    t.port = (uint16_t)peer->port;
    assert_non_null(c = connect_to(g, &t, WAIT_MS));
    assert_string_equal(net_conn_alpn(c), "");
    snprintf(peer_name, sizeof(peer_name), "localhost:%d", peer->port);
    assert_string_equal(net_conn_peer(c), peer_name);
    write_all(c, "plain", 5);
    wait_bytes(g, 5);
    assert_memory_equal(g->data, "plain", 5);
    conn_free(g);
    peer_stop(peer);
}

/* The server's "alpn=..." line, read through a connection offering offer. */
static void alpn_case(struct got *g, const char *server_alpn, const char *offer, const char *want)
{
    struct peer *peer;
    struct net_target t = {.host = "localhost", .tls = true, .alpn = offer};
    struct net_conn *c;
    char line[64];

    peer = peer_start(g, "info", "leaf", "--alpn", server_alpn, NULL);
    t.port = (uint16_t)peer->port;
    assert_non_null(c = connect_to(g, &t, WAIT_MS));
    assert_string_equal(net_conn_alpn(c), want);
    wait_line(g);
    snprintf(line, sizeof(line), "alpn=%s ", want);
    assert_memory_equal(g->data, line, strlen(line));
    conn_free(g);
    reset_stream(g);
    peer_stop(peer);
}

static void test_netconn_alpn_picks_h2_when_the_server_offers_it(void **state)
{
    alpn_case(*state, "h2,http/1.1", "h2,http/1.1", "h2");
}

static void test_netconn_alpn_falls_back_to_http11(void **state)
{
    alpn_case(*state, "http/1.1", "h2,http/1.1", "http/1.1");
}

/* RFC 6066 3: a host name goes in SNI; an address does not. */
static void test_netconn_sends_sni_for_names_only(void **state)
{
    struct got *g = *state;
    struct peer *peer = peer_start(g, "info", "leaf", NULL);
    struct net_target t = {.tls = true, .port = (uint16_t)peer->port};
    static const char *const hosts[] = {"localhost", "127.0.0.1"};
    static const char *const want[] = {"sni=localhost", "sni=none"};

    for (size_t i = 0; i < 2; i++) {
        t.host = hosts[i];
        assert_non_null(connect_to(g, &t, WAIT_MS));
        wait_line(g);
        assert_true(contains((const char *)g->data, want[i]));
        conn_free(g);
        reset_stream(g);
    }
    peer_stop(peer);
}

/* Two connections in a row: the second resumes the first's session, and both ends say so. */
static void resume_case(struct got *g, bool tls12)
{
    struct peer *peer;
    struct net_target t = {.host = "localhost", .tls = true};
    struct net_conn *c;

    peer = peer_start(g, "info", "leaf", tls12 ? "--tls12" : NULL, NULL);
    t.port = (uint16_t)peer->port;
    for (int i = 0; i < 2; i++) {
        assert_non_null(c = connect_to(g, &t, WAIT_MS));
        wait_line(g);
        assert_int_equal(net_conn_session_reused(c), i == 1);
        assert_true(contains((const char *)g->data, i == 1 ? "reused=1" : "reused=0"));
        assert_true(contains((const char *)g->data, tls12 ? "TLSv1.2" : "TLSv1.3"));
        conn_free(g);
        reset_stream(g);
    }
    peer_stop(peer);
}

static void test_netconn_resumes_the_session_with_tls13(void **state)
{
    resume_case(*state, false);
}

static void test_netconn_resumes_the_session_with_tls12(void **state)
{
    resume_case(*state, true);
}

/* A connect to a peer with certificate name, as host, fails with want in its error. */
static void verify_case(struct got *g, const char *name, const char *host, const char *want)
{
    struct peer *peer;
    struct net_target t = {.host = host, .tls = true};
    char prefix[128];

    peer = peer_start(g, "echo", name, "--listen",
                      strcmp(host, "localhost") == 0 ? "127.0.0.1" : host, NULL);
    t.port = (uint16_t)peer->port;
    assert_null(connect_to(g, &t, WAIT_MS));
    snprintf(prefix, sizeof(prefix), "TLS handshake with %s:%d failed: ", host, peer->port);
    assert_true(contains(g->error, prefix));
    assert_true(contains(g->error, want));
    assert_int_equal(ERR_peek_error(), 0);
    peer_stop(peer);
}

static void test_netconn_rejects_a_wrong_host_name(void **state)
{
    verify_case(*state, "wrong", "localhost", "certificate verify failed: hostname mismatch");
    verify_case(*state, "leaf", "127.0.0.2", "certificate verify failed: IP address mismatch");
}

static void test_netconn_rejects_an_untrusted_ca(void **state)
{
    verify_case(*state, "untrusted", "localhost",
                "certificate verify failed: unable to get local issuer certificate");
}

static void test_netconn_rejects_an_expired_certificate(void **state)
{
    verify_case(*state, "expired", "127.0.0.1",
                "certificate verify failed: certificate has expired");
}

/* A server that speaks TLS 1.1 at most is refused (TLS 1.2 is the minimum). */
static void test_netconn_refuses_tls11(void **state)
{
    struct got *g = *state;
    struct peer *peer = peer_start(g, "echo", "leaf", "--tls11", NULL);
    struct net_target t = {.host = "127.0.0.1", .port = (uint16_t)peer->port, .tls = true};
    char prefix[128];

    assert_null(connect_to(g, &t, WAIT_MS));
    snprintf(prefix, sizeof(prefix), "TLS handshake with 127.0.0.1:%d failed: ", peer->port);
    assert_true(contains(g->error, prefix));
    assert_true(contains(g->error, "alert protocol version"));
    peer_stop(peer);
}

/* The hex SHA-256 of data[0..n) equals the 64 characters after it. */
static void assert_sha256_trailer(const uint8_t *data, size_t n)
{
    unsigned char md[32];
    char hex[65];

    assert_int_equal(EVP_Digest(data, n, md, NULL, EVP_sha256(), NULL), 1);
    for (size_t i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    assert_memory_equal(hex, data + n, 64);
}

/* 8 MiB from the peer, stopping every MiB: nothing comes while stopped, all comes in
 * order (its SHA-256 follows it), then the clean end. */
static void backpressure_case(struct got *g, bool tls)
{
    struct peer *peer;
    struct net_target t = {.host = "127.0.0.1", .tls = tls};
    char n[16];
    unsigned stops = 0;

    snprintf(n, sizeof(n), "%u", BIG);
    peer = peer_start(g, "send", tls ? "leaf" : NULL, "--bytes", n, NULL);
    t.port = (uint16_t)peer->port;
    g->stop_every = g->next_stop = 1 << 20;
    assert_non_null(connect_to(g, &t, WAIT_MS));
    while (!g->closed) {
        assert_true(peer_run_until(g->loop, is_stopped_or_closed, g, WAIT_MS));
        if (!g->stopped)
            break;
        stops++;
        /* A few turns of the loop while stopped: nothing may be delivered. */
        peer_run_until(g->loop, never, NULL, 30);
        assert_false(g->read_while_stopped);
        g->stopped = false;
        net_conn_read_start(g->c);
        net_conn_read_start(g->c); /* repeated: harmless */
    }
    assert_true(stops >= 7);
    assert_true(g->clean); /* TLS: the peer's close_notify */
    assert_int_equal(g->len, BIG + 64);
    assert_sha256_trailer(g->data, BIG);
    conn_free(g);
    peer_stop(peer);
}

static void test_netconn_read_stop_holds_tls_data_until_read_start(void **state)
{
    backpressure_case(*state, true);
}

static void test_netconn_read_stop_holds_plain_data_until_read_start(void **state)
{
    backpressure_case(*state, false);
}

/* The same with the whole download promised (net_conn_expect after each delivery): read
 * in batches, every byte still comes, in order, and nothing while stopped. */
static void test_netconn_a_promised_download_comes_whole_through_stops(void **state)
{
    struct got *g = *state;

    g->promise = BIG + 64;
    backpressure_case(g, true);
    reset_stream(g);
    g->promise = BIG + 64;
    backpressure_case(g, false);
}

/* A promise the peer does not keep (the echo peer sends only what it is sent) must never
 * leave bytes waiting below the socket's mark: batching gives up after its short wait, and
 * stays off until nothing is due; a pause of ours does not count as the peer's slowness. */
static void promise_broken_case(struct got *g, bool tls)
{
    struct peer *peer;
    struct net_target t = {.host = "127.0.0.1", .tls = tls};

    peer = peer_start(g, "echo", tls ? "leaf" : NULL, NULL);
    t.port = (uint16_t)peer->port;
    assert_non_null(connect_to(g, &t, WAIT_MS));
    assert_false(net_conn_batching(g->c));
    net_conn_expect(g->c, 64 * 1024); /* less than a batch */
    assert_false(net_conn_batching(g->c));
    net_conn_expect(g->c, BIG);
    assert_true(net_conn_batching(g->c));
    net_conn_read_stop(g->c);
    peer_run_until(g->loop, never, NULL, 30);
    assert_true(net_conn_batching(g->c)); /* we stopped: the peer was not slow */
    net_conn_read_start(g->c);
    write_all(g->c, "hello", 5);
    wait_bytes(g, 5); /* five bytes, far below the mark */
    assert_memory_equal(g->data, "hello", 5);
    assert_false(net_conn_batching(g->c));
    net_conn_expect(g->c, BIG);
    assert_false(net_conn_batching(g->c)); /* given up on this promise */
    net_conn_expect(g->c, 0);
    net_conn_expect(g->c, BIG); /* the next one */
    assert_true(net_conn_batching(g->c));
    write_all(g->c, "again", 5);
    wait_bytes(g, 10);
    assert_memory_equal(g->data + 5, "again", 5);
    conn_free(g);
    peer_stop(peer);
}

static void test_netconn_a_broken_promise_costs_a_short_wait_over_tls(void **state)
{
    promise_broken_case(*state, true);
}

static void test_netconn_a_broken_promise_costs_a_short_wait_over_plain_tcp(void **state)
{
    promise_broken_case(*state, false);
}

static bool drained(void *arg)
{
    return ((struct got *)arg)->drains > 0;
}

static void test_netconn_write_to_a_slow_reader_queues_then_drains(void **state)
{
    struct got *g = *state;
    struct peer *peer;
    struct net_target t = {.host = "127.0.0.1", .tls = true};
    uint8_t *big = malloc(BIG + 64);
    char n[16];

    assert_non_null(big);
    assert_int_equal(RAND_bytes(big, BIG), 1);
    snprintf(n, sizeof(n), "%u", BIG);
    peer = peer_start(g, "sink", "leaf", "--bytes", n, NULL);
    t.port = (uint16_t)peer->port;
    assert_non_null(connect_to(g, &t, WAIT_MS));
    assert_int_equal(net_conn_pending(g->c), 0);
    write_all(g->c, big, BIG - 1000);
    /* The kernel cannot take 8 MiB at once from a reader this slow. */
    assert_true(net_conn_pending(g->c) > (1u << 20));
    /* Queued behind the write in flight, then taken by the socket at once when that one
     * completes: the drain must still be reported (it was not, and a WebSocket waiting
     * for it stood still until its next ping). */
    write_all(g->c, big + BIG - 1000, 1000);
    assert_true(peer_run_until(g->loop, drained, g, WAIT_MS));
    assert_int_equal(net_conn_pending(g->c), 0);
    wait_bytes(g, 64); /* the sink's hash of what it read */
    memcpy(big + BIG, g->data, 64);
    assert_sha256_trailer(big, BIG);
    conn_free(g);
    free(big);
    peer_stop(peer);
}

static void test_netconn_free_from_inside_on_read(void **state)
{
    struct got *g = *state;
    struct peer *peer;
    struct net_target t = {.host = "127.0.0.1", .tls = true};

    /* 1 MiB: many records in each socket read, so more wait behind the first on_read. */
    peer = peer_start(g, "send", "leaf", "--bytes", "1048576", NULL);
    t.port = (uint16_t)peer->port;
    g->free_on_read = true;
    assert_non_null(connect_to(g, &t, WAIT_MS));
    peer_run_until(g->loop, is_closed, g, 200);
    assert_int_equal(g->reads, 1);
    assert_false(g->closed);
    peer_stop(peer);
}

static void end_case(struct got *g, const char *mode, const char *first, bool clean,
                     const char *reason)
{
    struct peer *peer;
    struct net_target t = {.host = "127.0.0.1", .tls = true};

    peer = peer_start(g, mode, "leaf", NULL);
    t.port = (uint16_t)peer->port;
    assert_non_null(connect_to(g, &t, WAIT_MS));
    assert_true(peer_run_until(g->loop, is_closed, g, WAIT_MS));
    assert_true(g->len >= strlen(first));
    assert_memory_equal(g->data, first, strlen(first));
    assert_int_equal(g->clean, clean);
    assert_true(contains(g->reason, reason));
    assert_int_equal(net_conn_write(g->c, (const uint8_t *)"x", 1), ERR_CLOSED);
    conn_free(g);
    peer_stop(peer);
}

static void test_netconn_eof_without_close_notify_is_a_clean_end(void **state)
{
    end_case(*state, "raw-close", "bye\n", true, "");
}

static void test_netconn_a_record_that_cannot_decrypt_is_an_error(void **state)
{
    struct got *g = *state;

    end_case(g, "garbage", "hi\n", false, "TLS connection to 127.0.0.1:");
    assert_true(contains(g->reason, " failed: "));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        T(test_netconn_echoes_over_tls),
        T(test_netconn_echoes_over_plain_tcp),
        T(test_netconn_alpn_picks_h2_when_the_server_offers_it),
        T(test_netconn_alpn_falls_back_to_http11),
        T(test_netconn_sends_sni_for_names_only),
        T(test_netconn_resumes_the_session_with_tls13),
        T(test_netconn_resumes_the_session_with_tls12),
        T(test_netconn_rejects_a_wrong_host_name),
        T(test_netconn_rejects_an_untrusted_ca),
        T(test_netconn_rejects_an_expired_certificate),
        T(test_netconn_refuses_tls11),
        T(test_netconn_read_stop_holds_tls_data_until_read_start),
        T(test_netconn_read_stop_holds_plain_data_until_read_start),
        T(test_netconn_a_promised_download_comes_whole_through_stops),
        T(test_netconn_a_broken_promise_costs_a_short_wait_over_tls),
        T(test_netconn_a_broken_promise_costs_a_short_wait_over_plain_tcp),
        T(test_netconn_write_to_a_slow_reader_queues_then_drains),
        T(test_netconn_free_from_inside_on_read),
        T(test_netconn_eof_without_close_notify_is_a_clean_end),
        T(test_netconn_a_record_that_cannot_decrypt_is_an_error),
    };

    return netconn_fixture_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
