/* Unit tests for src/http/response.c: response framing towards the child. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
#include "err.h"
#include "response.h"

static void test_response_reason_knows_standard_statuses(void **state)
{
    assert_string_equal(http1_reason(100), "Continue");
    assert_string_equal(http1_reason(200), "OK");
    assert_string_equal(http1_reason(204), "No Content");
    assert_string_equal(http1_reason(304), "Not Modified");
    assert_string_equal(http1_reason(400), "Bad Request");
    assert_string_equal(http1_reason(403), "Forbidden");
    assert_string_equal(http1_reason(404), "Not Found");
    assert_string_equal(http1_reason(405), "Method Not Allowed");
    assert_string_equal(http1_reason(413), "Content Too Large");
    assert_string_equal(http1_reason(431), "Request Header Fields Too Large");
    assert_string_equal(http1_reason(501), "Not Implemented");
    assert_string_equal(http1_reason(502), "Bad Gateway");
    assert_string_equal(http1_reason(504), "Gateway Timeout");
}

static void test_response_reason_is_unknown_for_other_statuses(void **state)
{
    assert_string_equal(http1_reason(299), "Unknown");
    assert_string_equal(http1_reason(599), "Unknown");
    assert_string_equal(http1_reason(0), "Unknown");
    assert_string_equal(http1_reason(-1), "Unknown");
}

static void test_response_puts_http11_status_line(void **state)
{
    struct buf *b = buf_new(256, 0);

    assert_non_null(b);
    assert_int_equal(http1_put_status_line(b, 1, 200), 0);
    assert_int_equal(http1_put_status_line(b, 1, 599), 0);
    assert_string_equal(buf_cstr(b), "HTTP/1.1 200 OK\r\nHTTP/1.1 599 Unknown\r\n");
    buf_free(b);
}

static void test_response_puts_http10_status_line(void **state)
{
    struct buf *b = buf_new(256, 0);

    assert_non_null(b);
    assert_int_equal(http1_put_status_line(b, 0, 404), 0);
    assert_string_equal(buf_cstr(b), "HTTP/1.0 404 Not Found\r\n");
    buf_free(b);
}

static void test_response_rejects_status_outside_three_digits(void **state)
{
    struct buf *b = buf_new(256, 0);

    assert_non_null(b);
    assert_int_equal(http1_put_status_line(b, 1, 99), ERR_INVALID);
    assert_int_equal(http1_put_status_line(b, 1, 1000), ERR_INVALID);
    assert_int_equal(http1_put_status_line(b, 1, -200), ERR_INVALID);
    assert_int_equal(buf_len(b), 0);
    buf_free(b);
}

static void test_response_status_line_fails_whole_when_buffer_is_full(void **state)
{
    struct buf *b = buf_new(10, 0);

    assert_non_null(b);
    assert_int_equal(http1_put_status_line(b, 1, 200), ERR_TOO_LARGE);
    assert_int_equal(buf_len(b), 0);
    buf_free(b);
}

static void test_response_puts_header(void **state)
{
    struct buf *b = buf_new(256, 0);

    assert_non_null(b);
    assert_int_equal(http1_put_header(b, "Content-Type", 12, "application/json", 16), 0);
    assert_int_equal(http1_put_header(b, "X-Empty", 7, "", 0), 0);
    assert_int_equal(http1_put_header(b, "X-Obs", 5, "caf\xc3\xa9\tx", 7), 0);
    assert_string_equal(buf_cstr(b),
                        "Content-Type: application/json\r\nX-Empty: \r\nX-Obs: caf\xc3\xa9\tx\r\n");
    buf_free(b);
}

static void test_response_header_uses_only_given_lengths(void **state)
{
    struct buf *b = buf_new(256, 0);

    assert_non_null(b);
    assert_int_equal(http1_put_header(b, "Host: evil", 4, "value\r\nX: y", 5), 0);
    assert_string_equal(buf_cstr(b), "Host: value\r\n");
    buf_free(b);
}

static void test_response_rejects_header_name_that_is_not_a_token(void **state)
{
    struct buf *b = buf_new(256, 0);

    assert_non_null(b);
    assert_int_equal(http1_put_header(b, "", 0, "v", 1), ERR_INVALID);
    assert_int_equal(http1_put_header(b, "X A", 3, "v", 1), ERR_INVALID);
    assert_int_equal(http1_put_header(b, "X:", 2, "v", 1), ERR_INVALID);
    assert_int_equal(http1_put_header(b, "X\r\n", 3, "v", 1), ERR_INVALID);
    assert_int_equal(http1_put_header(b, "X\0", 2, "v", 1), ERR_INVALID);
    assert_int_equal(http1_put_header(b, "X\xc3\xa9", 3, "v", 1), ERR_INVALID);
    assert_int_equal(buf_len(b), 0);
    buf_free(b);
}

static void test_response_rejects_cr_lf_or_nul_in_header_value(void **state)
{
    struct buf *b = buf_new(256, 0);

    assert_non_null(b);
    assert_int_equal(http1_put_header(b, "X", 1, "a\rb", 3), ERR_INVALID);
    assert_int_equal(http1_put_header(b, "X", 1, "a\nb", 3), ERR_INVALID);
    assert_int_equal(http1_put_header(b, "X", 1, "a\r\nSet-Cookie: x", 16), ERR_INVALID);
    assert_int_equal(http1_put_header(b, "X", 1, "a\0b", 3), ERR_INVALID);
    assert_int_equal(buf_len(b), 0);
    buf_free(b);
}

static void test_response_header_fails_whole_when_buffer_is_full(void **state)
{
    struct buf *b = buf_new(16, 0);

    assert_non_null(b);
    assert_int_equal(http1_put_header(b, "A", 1, "b", 1), 0);
    assert_int_equal(http1_put_header(b, "Name", 4, "value", 5), ERR_TOO_LARGE);
    assert_string_equal(buf_cstr(b), "A: b\r\n");
    buf_free(b);
}

static void test_response_chunk_line_is_lowercase_hex(void **state)
{
    char line[HTTP1_CHUNK_LINE_MAX];

    assert_int_equal(http1_chunk_line(line, 1), 3);
    assert_string_equal(line, "1\r\n");
    assert_int_equal(http1_chunk_line(line, 0xff), 4);
    assert_string_equal(line, "ff\r\n");
    assert_int_equal(http1_chunk_line(line, 4096), 6);
    assert_string_equal(line, "1000\r\n");
    assert_int_equal(http1_chunk_line(line, 0xabcdef), 8);
    assert_string_equal(line, "abcdef\r\n");
}

static void test_response_chunk_line_for_zero_is_last_chunk(void **state)
{
    char line[HTTP1_CHUNK_LINE_MAX];

    assert_int_equal(http1_chunk_line(line, 0), 3);
    assert_string_equal(line, "0\r\n");
}

static void test_response_chunk_line_fits_largest_size(void **state)
{
    char line[HTTP1_CHUNK_LINE_MAX];
    size_t n = http1_chunk_line(line, SIZE_MAX);

    assert_true(n < HTTP1_CHUNK_LINE_MAX);
    assert_int_equal(n, 2 * sizeof(size_t) + 2);
    assert_int_equal(line[n], '\0');
    assert_memory_equal(line + n - 2, "\r\n", 2);
}

static bool hop(const char *name)
{
    return http1_is_hop_by_hop(name, strlen(name));
}

static void test_response_knows_hop_by_hop_headers(void **state)
{
    assert_true(hop("Connection"));
    assert_true(hop("connection"));
    assert_true(hop("Keep-Alive"));
    assert_true(hop("Proxy-Connection"));
    assert_true(hop("Proxy-Authorization"));
    assert_true(hop("proxy-authenticate"));
    assert_true(hop("PROXY-anything"));
    assert_true(hop("TE"));
    assert_true(hop("Trailer"));
    assert_true(hop("Transfer-Encoding"));
    assert_true(hop("UPGRADE"));
}

static void test_response_passes_end_to_end_headers(void **state)
{
    assert_false(hop("Host"));
    assert_false(hop("Content-Length"));
    assert_false(hop("Content-Type"));
    assert_false(hop("Authorization"));
    assert_false(hop("Proxy"));
    assert_false(hop("Trailers"));
    assert_false(hop("TEX"));
    assert_false(hop("T"));
    assert_false(hop("Connections"));
    assert_false(hop(""));
    /* Only the given length counts. */
    assert_false(http1_is_hop_by_hop("Connection", 4));
}

static void test_response_knows_statuses_without_body(void **state)
{
    assert_true(http1_status_has_no_body(100));
    assert_true(http1_status_has_no_body(101));
    assert_true(http1_status_has_no_body(199));
    assert_true(http1_status_has_no_body(204));
    assert_true(http1_status_has_no_body(304));
    assert_false(http1_status_has_no_body(200));
    assert_false(http1_status_has_no_body(205));
    assert_false(http1_status_has_no_body(302));
    assert_false(http1_status_has_no_body(404));
    assert_false(http1_status_has_no_body(500));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_response_reason_knows_standard_statuses),
        cmocka_unit_test(test_response_reason_is_unknown_for_other_statuses),
        cmocka_unit_test(test_response_puts_http11_status_line),
        cmocka_unit_test(test_response_puts_http10_status_line),
        cmocka_unit_test(test_response_rejects_status_outside_three_digits),
        cmocka_unit_test(test_response_status_line_fails_whole_when_buffer_is_full),
        cmocka_unit_test(test_response_puts_header),
        cmocka_unit_test(test_response_header_uses_only_given_lengths),
        cmocka_unit_test(test_response_rejects_header_name_that_is_not_a_token),
        cmocka_unit_test(test_response_rejects_cr_lf_or_nul_in_header_value),
        cmocka_unit_test(test_response_header_fails_whole_when_buffer_is_full),
        cmocka_unit_test(test_response_chunk_line_is_lowercase_hex),
        cmocka_unit_test(test_response_chunk_line_for_zero_is_last_chunk),
        cmocka_unit_test(test_response_chunk_line_fits_largest_size),
        cmocka_unit_test(test_response_knows_hop_by_hop_headers),
        cmocka_unit_test(test_response_passes_end_to_end_headers),
        cmocka_unit_test(test_response_knows_statuses_without_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
