/*
 * Unit tests for src/net/netproxy.c: a proxy URL read as Go reads it (default port,
 * IPv6, credentials percent-decoded into Basic, other schemes refused), the
 * environment's choice turned into a struct net_proxy, and the proxy's answer to
 * CONNECT parsed strictly (complete, need more, too large, malformed).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "netproxy.h"

static void from_url_ok(const char *url, const char *host, uint16_t port, const char *auth)
{
    struct net_proxy *p;

    assert_int_equal(net_proxy_from_url(url, &p), 0);
    assert_string_equal(p->host, host);
    assert_int_equal(p->port, port);
    if (auth == NULL)
        assert_null(p->authorization);
    else
        assert_string_equal(p->authorization, auth);
    net_proxy_free(p);
}

static void from_url_fails(const char *url, int code)
{
    struct net_proxy *p = (struct net_proxy *)&p;

    assert_int_equal(net_proxy_from_url(url, &p), code);
    assert_null(p);
}

static void test_netproxy_reads_a_proxy_url_as_go_does(void **state)
{
    from_url_ok("http://proxy.example:3128", "proxy.example", 3128, NULL);
    from_url_ok("http://proxy.example", "proxy.example", 80, NULL);
    from_url_ok("http://proxy.example:", "proxy.example", 80, NULL);
    from_url_ok("HTTP://[::1]:8080/ignored?x#y", "::1", 8080, NULL);
    from_url_ok("http://[fe80::1]", "fe80::1", 80, NULL);
    /* "u:p@ss" and "user:" in base64 */
    from_url_ok("http://u:p%40ss@10.0.0.1:1", "10.0.0.1", 1, "Basic dTpwQHNz");
    from_url_ok("http://user@h", "h", 80, "Basic dXNlcjo=");
    /* The last '@' ends the userinfo. */
    from_url_ok("http://u:a@b@h:2", "h", 2, "Basic dTphQGI=");
}

static void test_netproxy_refuses_what_it_cannot_use(void **state)
{
    from_url_fails("https://proxy:443", ERR_UNSUPPORTED);
    from_url_fails("socks5://proxy:1080", ERR_UNSUPPORTED);
    from_url_fails("proxy:3128", ERR_BAD_URL);
    from_url_fails("http://", ERR_BAD_URL);
    from_url_fails("http://:3128", ERR_BAD_URL);
    from_url_fails("http://h:0", ERR_BAD_URL);
    from_url_fails("http://h:65536", ERR_BAD_URL);
    from_url_fails("http://h:99999999999999999999", ERR_BAD_URL);
    from_url_fails("http://h:12a", ERR_BAD_URL);
    from_url_fails("http://[::1", ERR_BAD_URL);
    from_url_fails("http://[::1]x", ERR_BAD_URL);
    from_url_fails("http://h h:1", ERR_BAD_URL);
    from_url_fails("http://h\r\nX: y:1", ERR_BAD_URL);
    from_url_fails("http://u:%zz@h", ERR_BAD_URL);
    from_url_fails("http://u:%4@h", ERR_BAD_URL);
    from_url_fails("http://u:%00@h", ERR_BAD_URL);
}

static const char *fake_env(const char *name)
{
    if (strcmp(name, "HTTPS_PROXY") == 0)
        return "u:pw@proxy.example:3128"; /* no scheme: http:// */
    if (strcmp(name, "NO_PROXY") == 0)
        return "internal.example";
    return NULL;
}

static void test_netproxy_follows_the_environment(void **state)
{
    struct webproxy wp;
    struct net_proxy *p, *d;

    assert_int_equal(webproxy_init(&wp, fake_env), 0);
    assert_int_equal(net_proxy_for(&wp, "https", "api.example.com", 443, &p), 0);
    assert_non_null(p);
    assert_string_equal(p->host, "proxy.example");
    assert_int_equal(p->port, 3128);
    assert_string_equal(p->authorization, "Basic dTpwdw==");
    assert_int_equal(net_proxy_dup(p, &d), 0);
    assert_string_equal(d->host, "proxy.example");
    assert_string_equal(d->authorization, "Basic dTpwdw==");
    net_proxy_free(d);
    net_proxy_free(p);
    assert_int_equal(net_proxy_for(&wp, "https", "a.internal.example", 443, &p), 0);
    assert_null(p);
    assert_int_equal(net_proxy_for(&wp, "https", "localhost", 443, &p), 0);
    assert_null(p);
    assert_int_equal(net_proxy_for(&wp, "https", "::1", 443, &p), 0);
    assert_null(p);
    assert_int_equal(net_proxy_for(&wp, "http", "api.example.com", 80, &p), 0); /* no HTTP_PROXY */
    assert_null(p);
    assert_int_equal(net_proxy_dup(NULL, &d), 0);
    assert_null(d);
    net_proxy_free(NULL);
    webproxy_free(&wp);
}

static int parse(const char *s, struct net_proxy_answer *a)
{
    return net_proxy_parse_head((const uint8_t *)s, strlen(s), a);
}

static void test_netproxy_parses_an_answer_and_finds_the_tunnel(void **state)
{
    struct net_proxy_answer a;
    const char *ok = "HTTP/1.1 200 Connection established\r\nVia: 1.1 tinyproxy\r\n\r\nTLS";

    assert_int_equal(parse(ok, &a), 0);
    assert_int_equal(a.status, 200);
    assert_int_equal(a.line_len, strlen("HTTP/1.1 200 Connection established"));
    assert_int_equal(a.head_len, strlen(ok) - 3);
    assert_int_equal(parse("HTTP/1.0 407 Proxy Authentication Required\r\n"
                           "Proxy-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\n\r\n",
                           &a),
                     0);
    assert_int_equal(a.status, 407);
    assert_int_equal(parse("HTTP/1.1 200\r\n\r\n", &a), 0);
    assert_int_equal(parse("HTTP/1.1 200 \r\n\r\n", &a), 0);
    assert_int_equal(parse("HTTP/1.1 200 caf\xc3\xa9\r\nX:\r\n\r\n", &a), 0); /* obs-text, empty value */
    /* Every proper prefix of a head needs more. */
    for (size_t i = 0; i < strlen(ok) - 3; i++)
        assert_int_equal(net_proxy_parse_head((const uint8_t *)ok, i, &a), ERR_INCOMPLETE);
}

static void test_netproxy_rejects_malformed_answers(void **state)
{
    static const char *const bad[] = {
        "SSH-2.0-OpenSSH_9.2\r\n\r\n",
        "HTTP/2 200\r\n\r\n",
        "HTTP/1.1 20\r\n\r\n",
        "HTTP/1.1 099 Low\r\n\r\n",
        "HTTP/1.1 2000\r\n\r\n",
        "HTTP/1.1  200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\nVia: x\r\n\r\n",          /* bare LF */
        "HTTP/1.1 200 OK\rVia: x\r\n\r\n",          /* bare CR */
        "HTTP/1.1 200 OK\r\nVia: x\r\n folded\r\n\r\n", /* obs-fold */
        "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
        "HTTP/1.1 200 O\x01K\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\x7f\r\n\r\n",
    };
    struct net_proxy_answer a = {.status = -1};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &a) != ERR_INVALID)
            fail_msg("accepted: %s", bad[i]);
    }
    assert_int_equal(net_proxy_parse_head((const uint8_t *)"HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n",
                                          27, &a),
                     ERR_INVALID);
    assert_int_equal(a.status, -1); /* untouched */
    /* "HTTP/" is checked as soon as the bytes are there. */
    assert_int_equal(parse("SSH", &a), ERR_INVALID);
    assert_int_equal(parse("HT", &a), ERR_INCOMPLETE);
    assert_int_equal(parse("", &a), ERR_INCOMPLETE);
}

static void test_netproxy_bounds_the_head(void **state)
{
    size_t n = NET_PROXY_HEAD_MAX + 100;
    char *h = malloc(n);
    struct net_proxy_answer a;
    const char *start = "HTTP/1.1 200 OK\r\nX: ";

    assert_non_null(h);
    memcpy(h, start, strlen(start));
    memset(h + strlen(start), 'a', n - strlen(start));
    assert_int_equal(net_proxy_parse_head((uint8_t *)h, NET_PROXY_HEAD_MAX - 1, &a),
                     ERR_INCOMPLETE);
    assert_int_equal(net_proxy_parse_head((uint8_t *)h, NET_PROXY_HEAD_MAX, &a), ERR_TOO_LARGE);
    /* An end exactly at the limit is in; one byte later is not. */
    memcpy(h + NET_PROXY_HEAD_MAX - 4, "\r\n\r\n", 4);
    assert_int_equal(net_proxy_parse_head((uint8_t *)h, n, &a), 0);
    assert_int_equal(a.head_len, NET_PROXY_HEAD_MAX);
    memset(h + NET_PROXY_HEAD_MAX - 4, 'a', 4);
    memcpy(h + NET_PROXY_HEAD_MAX - 3, "\r\n\r\n", 4);
    assert_int_equal(net_proxy_parse_head((uint8_t *)h, n, &a), ERR_TOO_LARGE);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_netproxy_reads_a_proxy_url_as_go_does),
        cmocka_unit_test(test_netproxy_refuses_what_it_cannot_use),
        cmocka_unit_test(test_netproxy_follows_the_environment),
        cmocka_unit_test(test_netproxy_parses_an_answer_and_finds_the_tunnel),
        cmocka_unit_test(test_netproxy_rejects_malformed_answers),
        cmocka_unit_test(test_netproxy_bounds_the_head),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
