/* Unit tests for src/runner/ws_url.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
#include "err.h"
#include "ws.h"
#include "ws_url.h"

static void assert_parts(const char *url, bool tls, const char *host, bool is_ip,
                         const char *port, const char *host_header, const char *target)
{
    struct ws_url u;

    assert_int_equal(ws_url_parse(url, &u), 0);
    assert_int_equal(u.tls, tls);
    assert_string_equal(u.host, host);
    assert_int_equal(u.host_is_ip, is_ip);
    assert_string_equal(u.port, port);
    assert_string_equal(u.host_header, host_header);
    assert_string_equal(buf_cstr(u.target), target);
    ws_url_free(&u);
    assert_null(u.host);
    assert_null(u.target);
}

static void test_ws_url_takes_apart_host_port_and_target(void **state)
{
    (void)state;
    assert_parts("ws://127.0.0.1:8080/runner/ws?token=t0k", false, "127.0.0.1", true, "8080",
                 "127.0.0.1:8080", "/runner/ws?token=t0k");
    assert_parts("wss://api.example.com/ws", true, "api.example.com", false, "443",
                 "api.example.com", "/ws");
    assert_parts("ws://runner_1.internal", false, "runner_1.internal", false, "80",
                 "runner_1.internal", "/");
}

/* RFC 6455 4.1: Host carries the port only when it is not the scheme's default. */
static void test_ws_url_host_header_has_the_port_only_when_not_the_default(void **state)
{
    (void)state;
    assert_parts("WSS://Example.COM:443", true, "Example.COM", false, "443", "Example.COM", "/");
    assert_parts("ws://h:80/", false, "h", false, "80", "h", "/");
    assert_parts("ws://h:443/", false, "h", false, "443", "h:443", "/");
    assert_parts("wss://h:80/", true, "h", false, "80", "h:80", "/");
}

static void test_ws_url_keeps_ipv6_brackets_for_host_only(void **state)
{
    (void)state;
    assert_parts("ws://[::1]:9000?x=1", false, "::1", true, "9000", "[::1]:9000", "/?x=1");
    assert_parts("wss://[2001:db8::7]/p", true, "2001:db8::7", true, "443", "[2001:db8::7]",
                 "/p");
}

static void test_ws_url_refuses_what_could_split_a_request_or_mislead(void **state)
{
    static const char *const bad[] = {
        "http://h/",      "ws:/h/",        "ws://user@h/",  "ws://user:pw@h/", "ws://h/x#frag",
        "ws://h:0/",      "ws://h:65536/", "ws://h:/",      "ws://h:8x/",      "ws://h:-1/",
        "ws://[::1/",     "ws://[zz]/",    "ws://[::1]x/",  "ws:///path",      "ws://h/a b",
        "ws://h\r\nX: y/", "ws://h\t/",    "ws://ho$t/",    "ws://h/\x7f",     "ws://h/\xc3\xa9",
        "",               "ws://",         "ws://:80/",
    };
    struct ws_url u;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&u, 0x5a, sizeof(u));
        if (ws_url_parse(bad[i], &u) != ERR_BAD_URL)
            fail_msg("accepted or misreported: \"%s\"", bad[i]);
        /* Nothing is left to free on failure. */
        assert_null(u.host);
        assert_null(u.host_header);
        assert_null(u.target);
    }
}

static void test_ws_url_limits_the_url_and_host_lengths(void **state)
{
    char *url = malloc(WS_URL_MAX + 2);
    struct ws_url u;

    (void)state;
    assert_non_null(url);
    /* A URL of exactly WS_URL_MAX bytes is taken, one byte more is too large. */
    memcpy(url, "ws://h/", 7);
    memset(url + 7, 'a', WS_URL_MAX - 7);
    url[WS_URL_MAX] = '\0';
    assert_int_equal(ws_url_parse(url, &u), 0);
    assert_int_equal(buf_len(u.target), WS_URL_MAX - 6);
    ws_url_free(&u);
    url[WS_URL_MAX] = 'a';
    url[WS_URL_MAX + 1] = '\0';
    assert_int_equal(ws_url_parse(url, &u), ERR_TOO_LARGE);
    /* A host name of 255 bytes is taken, 256 is not. */
    memcpy(url, "ws://", 5);
    memset(url + 5, 'h', 255);
    strcpy(url + 5 + 255, "/");
    assert_int_equal(ws_url_parse(url, &u), 0);
    ws_url_free(&u);
    memset(url + 5, 'h', 256);
    strcpy(url + 5 + 256, "/");
    assert_int_equal(ws_url_parse(url, &u), ERR_BAD_URL);
    free(url);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ws_url_takes_apart_host_port_and_target),
        cmocka_unit_test(test_ws_url_host_header_has_the_port_only_when_not_the_default),
        cmocka_unit_test(test_ws_url_keeps_ipv6_brackets_for_host_only),
        cmocka_unit_test(test_ws_url_refuses_what_could_split_a_request_or_mislead),
        cmocka_unit_test(test_ws_url_limits_the_url_and_host_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
