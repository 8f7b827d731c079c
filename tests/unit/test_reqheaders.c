/* Unit tests for src/broker/reqheaders.c: the upstream request's header lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
#include "http1.h"
#include "reqheaders.h"
#include "rewrite.h"

#define KEY "s3cret-key"

/* Parses req, builds the lines for inject spec and joins them with '|'. */
static char *build(const char *req, const char *inject, char *joined, size_t cap)
{
    struct http1_request hr;
    struct inject inj;
    struct buf *lines = buf_new(1 << 16, BUF_WIPE);
    const char *starts[REQHEADERS_MAX_LINES];
    size_t n, off = 0;

    assert_non_null(lines);
    assert_int_equal(http1_parse_request(req, strlen(req), &hr), 0);
    assert_int_equal(inject_parse(inject, &inj), 0);
    assert_int_equal(reqheaders_build(lines, &hr, &inj, (const uint8_t *)KEY, strlen(KEY)), 0);
    n = reqheaders_split(lines, starts, REQHEADERS_MAX_LINES);
    joined[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(starts[i]);

        assert_true(off + len + 2 < cap);
        if (i > 0)
            joined[off++] = '|';
        memcpy(joined + off, starts[i], len + 1);
        off += len;
    }
    buf_free(lines);
    return joined;
}

static void test_reqheaders_pass_end_to_end_and_drop_hop_by_hop(void **state)
{
    char out[4096];

    build("POST /x HTTP/1.1\r\nHost: evil.example\r\nConnection: keep-alive, X-Hop\r\n"
          "X-Hop: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nProxy-Authorization: p\r\n"
          "Content-Type: application/json\r\nAccept: */*\r\nAccept-Encoding: gzip\r\n"
          "X-Trace: abc\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n",
          NULL, out, sizeof(out));
    assert_string_equal(out, "Content-Type: application/json|Accept: */*|X-Trace: abc|"
                             "Accept-Encoding: gzip, deflate, br, zstd");
}

static void test_reqheaders_add_only_the_codings_the_broker_decodes(void **state)
{
    char out[4096];

    /* nothing of the broker's own but the codings it decodes, whatever the child asked */
    build("GET /x HTTP/1.1\r\nHost: h\r\nAccept-Encoding: compress, identity\r\n\r\n", NULL,
          out, sizeof(out));
    assert_string_equal(out, "Accept-Encoding: gzip, deflate, br, zstd");
}

static void test_reqheaders_header_mode_replaces_the_childs_copy(void **state)
{
    char out[4096];

    build("GET /x HTTP/1.1\r\nHost: h\r\nx-api-key: sentinel\r\nAccept: a\r\n"
          "Content-Type: t\r\n\r\n", "header:X-Api-Key", out, sizeof(out));
    assert_string_equal(out, "Accept: a|Content-Type: t|Accept-Encoding: gzip, deflate, br, zstd|"
                             "X-Api-Key: " KEY);
}

static void test_reqheaders_bearer_mode_replaces_authorization(void **state)
{
    char out[4096];

    build("GET /x HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer fake\r\nAccept: a\r\n"
          "Content-Type: t\r\n\r\n", "bearer", out, sizeof(out));
    assert_string_equal(out, "Accept: a|Content-Type: t|Accept-Encoding: gzip, deflate, br, zstd|"
                             "Authorization: Bearer " KEY);
}

static void test_reqheaders_query_mode_adds_no_header(void **state)
{
    char out[4096];

    build("GET /x HTTP/1.1\r\nHost: h\r\nAuthorization: mine\r\nAccept: a\r\n"
          "Content-Type: t\r\n\r\n", "query:app_key", out, sizeof(out));
    assert_string_equal(out, "Authorization: mine|Accept: a|Content-Type: t|"
                             "Accept-Encoding: gzip, deflate, br, zstd");
    assert_null(strstr(out, KEY));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reqheaders_pass_end_to_end_and_drop_hop_by_hop),
        cmocka_unit_test(test_reqheaders_add_only_the_codings_the_broker_decodes),
        cmocka_unit_test(test_reqheaders_header_mode_replaces_the_childs_copy),
        cmocka_unit_test(test_reqheaders_bearer_mode_replaces_authorization),
        cmocka_unit_test(test_reqheaders_query_mode_adds_no_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
