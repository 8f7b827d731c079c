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

/* ---- http1_put_forwarded_head ---- */

#define HDR(n, v) {{n, sizeof(n) - 1}, {v, sizeof(v) - 1}}

static const char *forward(struct http1_forward *fw, const struct http1_header *h, size_t n,
                           struct buf **out)
{
    *out = buf_new(1 << 16, 0);
    assert_non_null(*out);
    assert_int_equal(http1_put_forwarded_head(*out, fw, h, n), 0);
    return buf_cstr(*out);
}

static void test_forwarded_head_keeps_a_known_length(void **state)
{
    struct http1_header h[] = {HDR("Content-Type", "application/json"),
                               HDR("Content-Length", "42")};
    struct http1_forward fw = {.status = 200, .minor_version = 1, .keep_alive = true};
    struct buf *out;

    assert_string_equal(forward(&fw, h, 2, &out),
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        "Content-Length: 42\r\n\r\n");
    assert_int_equal(fw.framing, HTTP1_FRAME_LENGTH);
    assert_int_equal(fw.content_length, 42);
    assert_true(fw.keep_alive);
    buf_free(out);
}

static void test_forwarded_head_chunks_an_unknown_length_for_http11(void **state)
{
    struct http1_header h[] = {HDR("Transfer-Encoding", "chunked"), HDR("X-A", "1")};
    struct http1_forward fw = {.status = 200, .minor_version = 1, .keep_alive = true};
    struct buf *out;

    assert_string_equal(forward(&fw, h, 2, &out),
                        "HTTP/1.1 200 OK\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_int_equal(fw.framing, HTTP1_FRAME_CHUNKED);
    buf_free(out);
}

static void test_forwarded_head_closes_an_unknown_length_for_http10(void **state)
{
    struct http1_header h[] = {HDR("X-A", "1")};
    struct http1_forward fw = {.status = 200, .minor_version = 0, .keep_alive = true};
    struct buf *out;

    assert_string_equal(forward(&fw, h, 1, &out),
                        "HTTP/1.0 200 OK\r\nX-A: 1\r\nConnection: close\r\n\r\n");
    assert_int_equal(fw.framing, HTTP1_FRAME_CLOSE);
    assert_false(fw.keep_alive);
    buf_free(out);
}

/* The broker passes an encoded body on as it came (it asks for identity; an upstream may
 * encode anyway): the child needs the coding to read it, and its length is still true. */
static void test_forwarded_head_keeps_length_and_coding_of_an_encoded_body(void **state)
{
    struct http1_header h[] = {HDR("Content-Encoding", "gzip"), HDR("Content-Length", "10"),
                               HDR("Vary", "Accept-Encoding")};
    struct http1_forward fw = {.status = 200, .minor_version = 1, .keep_alive = true};
    struct buf *out;

    assert_string_equal(forward(&fw, h, 3, &out),
                        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
                        "Vary: Accept-Encoding\r\nContent-Length: 10\r\n\r\n");
    assert_int_equal(fw.framing, HTTP1_FRAME_LENGTH);
    assert_int_equal(fw.content_length, 10);
    buf_free(out);
}

static void test_forwarded_head_chunks_an_encoded_body_of_unknown_length(void **state)
{
    struct http1_header h[] = {HDR("Content-Encoding", "br"), HDR("Content-Length", "x")};
    struct http1_forward fw = {.status = 200, .minor_version = 1, .keep_alive = true};
    struct buf *out;

    assert_string_equal(forward(&fw, h, 2, &out),
                        "HTTP/1.1 200 OK\r\nContent-Encoding: br\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n");
    buf_free(out);
}

static void test_forwarded_head_drops_hop_by_hop_and_connection_listed_headers(void **state)
{
    struct http1_header h[] = {HDR("Connection", "X-Secret-Hop, close"), HDR("X-Secret-Hop", "1"),
                               HDR("Keep-Alive", "timeout=5"), HDR("Proxy-Authenticate", "x"),
                               HDR("Upgrade", "h2c"), HDR("Content-Length", "0"),
                               HDR("X-Kept", "yes")};
    struct http1_forward fw = {.status = 200, .minor_version = 1, .keep_alive = false};
    struct buf *out;

    assert_string_equal(forward(&fw, h, 7, &out),
                        "HTTP/1.1 200 OK\r\nX-Kept: yes\r\nContent-Length: 0\r\n"
                        "Connection: close\r\n\r\n");
    buf_free(out);
}

static void test_forwarded_head_for_head_and_204_has_no_body(void **state)
{
    struct http1_header h[] = {HDR("Content-Length", "1000")};
    struct http1_forward head = {.status = 200, .minor_version = 1, .is_head = true,
                                 .keep_alive = true};
    struct http1_forward nc = {.status = 204, .minor_version = 1, .keep_alive = true};
    struct buf *out;

    /* HEAD keeps the length a GET would have had. */
    assert_string_equal(forward(&head, h, 1, &out),
                        "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
    assert_int_equal(head.framing, HTTP1_FRAME_NONE);
    buf_free(out);
    forward(&nc, NULL, 0, &out);
    assert_int_equal(nc.framing, HTTP1_FRAME_NONE);
    buf_free(out);
}

static void test_forwarded_head_chunks_when_lengths_disagree(void **state)
{
    struct http1_header h[] = {HDR("Content-Length", "5"), HDR("Content-Length", "6")};
    struct http1_forward fw = {.status = 200, .minor_version = 1, .keep_alive = true};
    struct buf *out;

    assert_string_equal(forward(&fw, h, 2, &out),
                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    buf_free(out);
}

static void test_forwarded_head_drops_a_header_with_a_bare_cr(void **state)
{
    struct http1_header h[] = {HDR("X-Bad", "a\rb"), HDR("X-Good", "ok")};
    struct http1_forward fw = {.status = 404, .minor_version = 1, .keep_alive = true};
    struct buf *out;

    assert_string_equal(forward(&fw, h, 2, &out),
                        "HTTP/1.1 404 Not Found\r\nX-Good: ok\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n");
    buf_free(out);
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
        cmocka_unit_test(test_forwarded_head_keeps_a_known_length),
        cmocka_unit_test(test_forwarded_head_chunks_an_unknown_length_for_http11),
        cmocka_unit_test(test_forwarded_head_closes_an_unknown_length_for_http10),
        cmocka_unit_test(test_forwarded_head_keeps_length_and_coding_of_an_encoded_body),
        cmocka_unit_test(test_forwarded_head_chunks_an_encoded_body_of_unknown_length),
        cmocka_unit_test(test_forwarded_head_drops_hop_by_hop_and_connection_listed_headers),
        cmocka_unit_test(test_forwarded_head_for_head_and_204_has_no_body),
        cmocka_unit_test(test_forwarded_head_chunks_when_lengths_disagree),
        cmocka_unit_test(test_forwarded_head_drops_a_header_with_a_bare_cr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
