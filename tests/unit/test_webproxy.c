/*
 * Unit tests for src/net/webproxy.c: Go's proxy choice from the environment
 * (golang.org/x/net/http/httpproxy): which variable for which scheme, upper case first,
 * NO_PROXY's entry kinds, loopback never proxied, the CGI rule.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "webproxy.h"

static const char *const *test_env;

static const char *fake_getenv(const char *name)
{
    size_t n = strlen(name);

    for (const char *const *e = test_env; *e != NULL; e++) {
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    }
    return NULL;
}

static void init(struct webproxy *p, const char *const *env)
{
    test_env = env;
    assert_int_equal(webproxy_init(p, fake_getenv), 0);
}

static void test_scheme_picks_the_variable_upper_case_first(void **state)
{
    static const char *const env[] = {"HTTP_PROXY=http://up:1", "http_proxy=http://low:1",
                                      "https_proxy=proxy.corp:3128", NULL};
    struct webproxy p;

    (void)state;
    init(&p, env);
    assert_string_equal(webproxy_for(&p, "http", "example.com", 80), "http://up:1");
    /* No scheme: Go assumes http://. */
    assert_string_equal(webproxy_for(&p, "https", "example.com", 443), "http://proxy.corp:3128");
    assert_null(webproxy_for(&p, "ftp", "example.com", 21));
    webproxy_free(&p);
}

static void test_loopback_and_localhost_go_direct(void **state)
{
    static const char *const env[] = {"HTTP_PROXY=http://p:1", NULL};
    struct webproxy p;

    (void)state;
    init(&p, env);
    assert_null(webproxy_for(&p, "http", "localhost", 80));
    assert_null(webproxy_for(&p, "http", "127.0.0.1", 80));
    assert_null(webproxy_for(&p, "http", "127.9.9.9", 80));
    assert_null(webproxy_for(&p, "http", "[::1]", 80));
    assert_non_null(webproxy_for(&p, "http", "10.0.0.1", 80));
    assert_non_null(webproxy_for(&p, "http", "localhost.example", 80));
    webproxy_free(&p);
}

static void test_no_proxy_entries(void **state)
{
    static const char *const env[] = {
        "HTTPS_PROXY=http://p:1",
        "no_proxy= Example.COM , .sub.org,*.star.net,10.0.0.0/8, 192.168.1.1 ,"
        "[2001:db8::1]:8443,ported.io:8443,,bad/entry",
        NULL};
    static const struct {
        const char *host;
        unsigned port;
        bool direct;
    } cases[] = {
        {"example.com", 443, true},   {"www.example.com", 443, true},
        {"notexample.com", 443, false}, {"sub.org", 443, false},
        {"a.sub.org", 443, true},     {"star.net", 443, false},
        {"x.star.net", 443, true},    {"10.1.2.3", 443, true},
        {"11.1.2.3", 443, false},     {"192.168.1.1", 443, true},
        {"192.168.1.2", 443, false},  {"[2001:db8::1]", 8443, true},
        {"[2001:db8::1]", 443, false}, {"ported.io", 8443, true},
        {"ported.io", 443, false},    {"api.ported.io", 8443, true},
        {"EXAMPLE.com", 443, true},
    };
    struct webproxy p;

    (void)state;
    init(&p, env);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool direct = webproxy_for(&p, "https", cases[i].host, cases[i].port) == NULL;

        if (direct != cases[i].direct)
            fail_msg("%s:%u: expected %s", cases[i].host, cases[i].port,
                     cases[i].direct ? "direct" : "proxied");
    }
    webproxy_free(&p);
}

static void test_star_and_cgi(void **state)
{
    static const char *const star[] = {"HTTP_PROXY=http://p:1", "NO_PROXY=a.com,*", NULL};
    static const char *const cgi[] = {"HTTP_PROXY=http://evil:1", "HTTPS_PROXY=http://p:1",
                                      "REQUEST_METHOD=GET", NULL};
    static const char *const none[] = {"HTTP_PROXY=", NULL};
    struct webproxy p;

    (void)state;
    init(&p, star);
    assert_null(webproxy_for(&p, "http", "example.com", 80));
    webproxy_free(&p);
    init(&p, cgi);
    assert_null(webproxy_for(&p, "http", "example.com", 80));
    assert_string_equal(webproxy_for(&p, "https", "example.com", 443), "http://p:1");
    webproxy_free(&p);
    init(&p, none);
    assert_null(webproxy_for(&p, "http", "example.com", 80));
    webproxy_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scheme_picks_the_variable_upper_case_first),
        cmocka_unit_test(test_loopback_and_localhost_go_direct),
        cmocka_unit_test(test_no_proxy_entries),
        cmocka_unit_test(test_star_and_cgi),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
