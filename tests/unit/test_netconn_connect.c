/*
 * Unit tests for src/net/netconn_connect.c: how a connect fails (refused, a name that
 * does not resolve, a silent server and the timeout, a close during the handshake, a bad
 * ALPN list), a cancel, and the CONNECT tunnel: through tinyproxy, with credentials, its
 * 407 and 403, a dead proxy, and answers from a fake proxy read strictly. Real peers
 * (tests/unit/netconn_fixture.h).
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "err.h"
#include "netconn_fixture.h"

/* What could not be sent safely is refused at once, without a callback. */
static void test_netconn_refuses_bad_arguments(void **state)
{
    struct got *g = *state;
    struct net_proxy px = {.host = "127.0.0.1", .port = 1};
    struct net_target t = {.host = "127.0.0.1", .port = 1, .tls = true, .alpn = "h2,,x"};
    struct net_connect *k;

    assert_int_equal(net_connect_start(g->loop, g->tls, &t, 0, on_connected, g, &k), ERR_INVALID);
    assert_null(k);
    t.alpn = "h2,";
    assert_int_equal(net_connect_start(g->loop, g->tls, &t, 0, on_connected, g, &k), ERR_INVALID);
    t.alpn = "h2";
    assert_int_equal(net_connect_start(g->loop, NULL, &t, 0, on_connected, g, &k), ERR_INVALID);
    /* A host or a proxy's credentials that would split the CONNECT request. */
    t.host = "example.com\r\nX-Injected: 1";
    assert_int_equal(net_connect_start(g->loop, g->tls, &t, 0, on_connected, g, &k), ERR_INVALID);
    t.host = "example.com 443";
    assert_int_equal(net_connect_start(g->loop, g->tls, &t, 0, on_connected, g, &k), ERR_INVALID);
    t.host = "";
    assert_int_equal(net_connect_start(g->loop, g->tls, &t, 0, on_connected, g, &k), ERR_INVALID);
    t.host = "example.com";
    t.proxy = &px;
    px.authorization = "Basic x\r\nX-Injected: 1";
    assert_int_equal(net_connect_start(g->loop, g->tls, &t, 0, on_connected, g, &k), ERR_INVALID);
    px.authorization = NULL;
    px.host = "proxy\n";
    assert_int_equal(net_connect_start(g->loop, g->tls, &t, 0, on_connected, g, &k), ERR_INVALID);
    assert_false(g->done);
}

static void test_netconn_reports_a_refused_connection(void **state)
{
    struct got *g = *state;
    struct net_target t = {.host = "127.0.0.1", .tls = true};
    char want[128];

    t.port = (uint16_t)peer_free_port();
    assert_null(connect_to(g, &t, WAIT_MS));
    snprintf(want, sizeof(want), "connect to 127.0.0.1:%u: connection refused", t.port);
    assert_string_equal(g->error, want);
}

static void test_netconn_reports_an_unresolvable_name(void **state)
{
    struct got *g = *state;
    struct net_target t = {.host = "nothing-here.invalid", .port = 443, .tls = true};

    assert_null(connect_to(g, &t, WAIT_MS));
    assert_true(contains(g->error, "cannot resolve nothing-here.invalid: "));
}

/* A listener whose backlog holds our connection but never reads: the ClientHello is
 * never answered. */
static void test_netconn_times_out_when_the_server_is_silent(void **state)
{
    struct got *g = *state;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct net_target t = {.host = "127.0.0.1", .tls = true};
    char want[128];

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    t.port = ntohs(a.sin_port);
    assert_null(connect_to(g, &t, 300));
    snprintf(want, sizeof(want), "connect to 127.0.0.1:%u timed out after 300 ms (TLS handshake)",
             t.port);
    assert_string_equal(g->error, want);
    close(fd);
}

static void test_netconn_cancel_means_no_callback(void **state)
{
    struct got *g = *state;
    struct peer *peer;
    struct net_target t = {.host = "localhost", .tls = true};
    struct net_connect *k;

    peer = peer_start(g, "echo", "leaf", NULL);
    t.port = (uint16_t)peer->port;
    /* At once (resolving), and after some turns of the loop (connecting, handshaking). */
    for (int turns = 0; turns < 6; turns++) {
        assert_int_equal(net_connect_start(g->loop, g->tls, &t, WAIT_MS, on_connected, g, &k), 0);
        for (int i = 0; i < turns; i++)
            uv_run(g->loop, UV_RUN_NOWAIT);
        if (!g->done)
            net_connect_cancel(k);
        else
            conn_free(g);
        g->done = false;
    }
    peer_run_until(g->loop, is_done, g, 100);
    assert_false(g->done);
    peer_stop(peer);
}

/* A server that accepts and closes at once. */
static void on_accept_and_close(uv_stream_t *server, int status)
{
    uv_tcp_t *client = malloc(sizeof(*client));

    assert_int_equal(status, 0);
    assert_non_null(client);
    uv_tcp_init(server->loop, client);
    assert_int_equal(uv_accept(server, (uv_stream_t *)client), 0);
    uv_close((uv_handle_t *)client, (uv_close_cb)free);
}

static void test_netconn_reports_a_close_during_the_handshake(void **state)
{
    struct got *g = *state;
    struct sockaddr_in a;
    int alen = sizeof(a);
    uv_tcp_t server;
    struct net_target t = {.host = "127.0.0.1", .tls = true};
    char want[128];

    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(g->loop, &server);
    assert_int_equal(uv_tcp_bind(&server, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&server, 8, on_accept_and_close), 0);
    assert_int_equal(uv_tcp_getsockname(&server, (struct sockaddr *)&a, &alen), 0);
    t.port = ntohs(a.sin_port);
    assert_null(connect_to(g, &t, WAIT_MS));
    snprintf(want, sizeof(want),
             "TLS handshake with 127.0.0.1:%u failed: connection closed during the handshake",
             t.port);
    /* A reset instead of an EOF is as good an answer. */
    if (strcmp(g->error, want) != 0) {
        snprintf(want, sizeof(want),
                 "TLS handshake with 127.0.0.1:%u failed: connection reset by peer", t.port);
        assert_string_equal(g->error, want);
    }
    uv_close((uv_handle_t *)&server, NULL);
    uv_run(g->loop, UV_RUN_NOWAIT); /* server lives on this stack: closed before we return */
}

static void test_netconn_tunnels_through_tinyproxy(void **state)
{
    struct got *g = *state;
    struct peer *peer, *proxy;
    struct net_proxy px = {.host = "127.0.0.1"};
    struct net_target t = {.host = "localhost", .tls = true, .alpn = "h2,http/1.1", .proxy = &px};
    struct net_conn *c;

    peer = peer_start(g, "info", "leaf", "--alpn", "h2", NULL);
    proxy = tinyproxy_start(g, "");
    t.port = (uint16_t)peer->port;
    px.port = (uint16_t)proxy->port;
    assert_non_null(c = connect_to(g, &t, WAIT_MS));
    assert_string_equal(net_conn_alpn(c), "h2");
    wait_bytes(g, 8);
    assert_memory_equal(g->data, "alpn=h2 ", 8);
    conn_free(g);
    peer_stop(proxy);
    peer_stop(peer);
}

static void test_netconn_proxy_credentials_and_407(void **state)
{
    struct got *g = *state;
    struct peer *peer, *proxy;
    struct net_proxy *px;
    struct net_target t = {.host = "127.0.0.1", .tls = true};
    char url[128], want[128];

    peer = peer_start(g, "echo", "leaf", NULL);
    proxy = tinyproxy_start(g, "BasicAuth tester s3cr.t-pw");
    t.port = (uint16_t)peer->port;
    /* Percent-decoded before it is encoded as Basic: "%2E" is the '.'. */
    snprintf(url, sizeof(url), "http://tester:s3cr%%2Et-pw@127.0.0.1:%d/", proxy->port);
    assert_int_equal(net_proxy_from_url(url, &px), 0);
    t.proxy = px;
    assert_non_null(connect_to(g, &t, WAIT_MS));
    write_all(g->c, "through", 7);
    wait_bytes(g, 7);
    conn_free(g);
    net_proxy_free(px);

    /* No credentials: 407. Wrong ones: tinyproxy says 401; the password is never told. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", proxy->port);
    assert_int_equal(net_proxy_from_url(url, &px), 0);
    t.proxy = px;
    assert_null(connect_to(g, &t, WAIT_MS));
    snprintf(want, sizeof(want),
             "proxy CONNECT to 127.0.0.1:%d refused: 407 Proxy Authentication Required",
             peer->port);
    assert_string_equal(g->error, want);
    net_proxy_free(px);
    snprintf(url, sizeof(url), "http://tester:wrong@127.0.0.1:%d", proxy->port);
    assert_int_equal(net_proxy_from_url(url, &px), 0);
    t.proxy = px;
    assert_null(connect_to(g, &t, WAIT_MS));
    snprintf(want, sizeof(want), "proxy CONNECT to 127.0.0.1:%d refused: 40", peer->port);
    assert_true(contains(g->error, want));
    assert_null(strstr(g->error, "wrong"));
    assert_null(strstr(g->error, "dGVzdGVyOndyb25n")); /* nor its Basic form */
    net_proxy_free(px);
    peer_stop(proxy);
    peer_stop(peer);
}

static void test_netconn_proxy_403(void **state)
{
    struct got *g = *state;
    struct peer *proxy;
    struct net_proxy px = {.host = "127.0.0.1"};
    struct net_target t = {.host = "127.0.0.1", .port = 8443, .tls = true, .proxy = &px};

    proxy = tinyproxy_start(g, "ConnectPort 443");
    px.port = (uint16_t)proxy->port;
    assert_null(connect_to(g, &t, WAIT_MS));
    assert_true(contains(g->error, "proxy CONNECT to 127.0.0.1:8443 refused: 403 "));
    peer_stop(proxy);
}

static void test_netconn_reports_a_dead_proxy(void **state)
{
    struct got *g = *state;
    struct net_proxy px = {.host = "127.0.0.1"};
    struct net_target t = {.host = "example.com", .port = 443, .tls = true, .proxy = &px};
    char want[128];

    px.port = (uint16_t)peer_free_port();
    assert_null(connect_to(g, &t, WAIT_MS));
    snprintf(want, sizeof(want), "connect to proxy 127.0.0.1:%u: connection refused", px.port);
    assert_string_equal(g->error, want);
}

/* A fake proxy (the peer's proxy mode) answering answer, for a plain target. */
static void fake_proxy_case(struct got *g, const char *answer, const char *want_error,
                            const char *want_first)
{
    struct peer *proxy;
    struct net_proxy px = {.host = "127.0.0.1"};
    struct net_target t = {.host = "10.0.0.1", .port = 80, .tls = false, .proxy = &px};
    struct net_conn *c;

    proxy = peer_start(g, "proxy", NULL, "--answer", answer, NULL);
    px.port = (uint16_t)proxy->port;
    c = connect_to(g, &t, WAIT_MS);
    if (want_error != NULL) {
        assert_null(c);
        assert_true(contains(g->error, want_error));
    } else {
        assert_non_null(c);
        wait_bytes(g, strlen(want_first));
        assert_memory_equal(g->data, want_first, strlen(want_first));
        write_all(c, "echo", 4);
        wait_bytes(g, strlen(want_first) + 4);
        conn_free(g);
    }
    reset_stream(g);
    peer_stop(proxy);
}

static void test_netconn_proxy_answers_read_strictly(void **state)
{
    struct got *g = *state;
    char big[20000];

    /* Bytes behind the head belong to the tunnel: delivered first. */
    fake_proxy_case(g, "HTTP/1.1 200 Connection established\\r\\nVia: x\\r\\n\\r\\nearly", NULL,
                    "early");
    fake_proxy_case(g, "HTTP/1.0 200 OK\\r\\n\\r\\n", NULL, "");
    /* RFC 9110 9.3.6: a 2xx to CONNECT has no body, whatever its framing says. */
    fake_proxy_case(g, "HTTP/1.1 200 OK\\r\\nContent-Length: 5\\r\\n\\r\\nearly", NULL, "early");
    fake_proxy_case(g, "SSH-2.0-OpenSSH\\r\\n", "failed: the proxy's answer is not HTTP", NULL);
    fake_proxy_case(g, "HTTP/1.1 200 OK\\nVia: x\\r\\n\\r\\n",
                    "failed: the proxy's answer is malformed", NULL);
    fake_proxy_case(g, "HTTP/1.1 200 OK\\r\\nVia: x\\r\\n folded\\r\\n\\r\\n", "is malformed",
                    NULL);
    fake_proxy_case(g, "HTTP/1.1 502 Bad \\x01Gateway\\r\\n\\r\\n", "is malformed", NULL);
    fake_proxy_case(g, "HTTP/1.1 502 Bad Gateway\\r\\n\\r\\n",
                    "proxy CONNECT to 10.0.0.1:80 refused: 502 Bad Gateway", NULL);
    fake_proxy_case(g, "", "failed: the proxy closed the connection before answering", NULL);
    snprintf(big, sizeof(big), "HTTP/1.1 200 OK\\r\\nX: %0*d\\r\\n\\r\\n", 17000, 0);
    fake_proxy_case(g, big, "failed: the proxy's answer head is too large", NULL);
    /* Its end within 16 KiB, the rest after it: in, and the rest is the tunnel's. */
    snprintf(big, sizeof(big), "HTTP/1.1 200 OK\\r\\nX: %0*d\\r\\n\\r\\nearly", 16000, 0);
    fake_proxy_case(g, big, NULL, "early");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        T(test_netconn_refuses_bad_arguments),
        T(test_netconn_reports_a_refused_connection),
        T(test_netconn_reports_an_unresolvable_name),
        T(test_netconn_times_out_when_the_server_is_silent),
        T(test_netconn_cancel_means_no_callback),
        T(test_netconn_reports_a_close_during_the_handshake),
        T(test_netconn_tunnels_through_tinyproxy),
        T(test_netconn_proxy_credentials_and_407),
        T(test_netconn_proxy_403),
        T(test_netconn_reports_a_dead_proxy),
        T(test_netconn_proxy_answers_read_strictly),
    };

    return netconn_fixture_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]));
}
