/*
 * Unit tests for src/net/netproxy.c: a proxy URL read as Go reads it (default port,
 * IPv6, credentials percent-decoded into Basic, other schemes refused), and the
 * environment's choice turned into a struct net_proxy. (The proxy's answer is read
 * by http1_parse_response: test_netconn_connect drives it with a fake proxy.)
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_netproxy_reads_a_proxy_url_as_go_does),
        cmocka_unit_test(test_netproxy_refuses_what_it_cannot_use),
        cmocka_unit_test(test_netproxy_follows_the_environment),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
