/* Unit tests for src/http/http1.c: the strict request-head parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
#include "err.h"
#include "http1.h"

/*
 * Parses a copy of s held in a heap block of exactly len bytes, so that ASan
 * catches any read past len.
 */
static int parse_n(const char *s, size_t len, struct http1_request *req)
{
    char *copy = malloc(len == 0 ? 1 : len);
    int r;

    assert_non_null(copy);
    memcpy(copy, s, len);
    r = http1_parse_request(copy, len, req);
    free(copy);
    return r;
}

/* Parses in place (views stay valid); s must be a NUL-terminated string. */
static int parse(const char *s, struct http1_request *req)
{
    return http1_parse_request(s, strlen(s), req);
}

/* Parses a copy and returns only the result code, for rejection tests. */
static int parse_code(const char *s)
{
    struct http1_request req;

    return parse_n(s, strlen(s), &req);
}

static void assert_iov_equal(struct http1_iov v, const char *s)
{
    assert_int_equal(v.len, strlen(s));
    assert_memory_equal(v.base, s, v.len);
}

/* ---- valid requests ---- */

static void test_http1_parses_simple_get(void **state)
{
    static const char req_text[] = "GET /v1/items?a=b HTTP/1.1\r\nHost: api.example\r\n"
                                   "Accept: */*\r\n\r\n";
    struct http1_request req;

    assert_int_equal(parse(req_text, &req), 0);
    assert_iov_equal(req.method, "GET");
    assert_iov_equal(req.target, "/v1/items?a=b");
    assert_int_equal(req.minor_version, 1);
    assert_int_equal(req.num_headers, 2);
    assert_iov_equal(req.headers[0].name, "Host");
    assert_iov_equal(req.headers[0].value, "api.example");
    assert_iov_equal(req.headers[1].name, "Accept");
    assert_iov_equal(req.headers[1].value, "*/*");
    assert_int_equal(req.head_len, strlen(req_text));
    assert_int_equal(req.body, HTTP1_BODY_NONE);
    assert_true(req.keep_alive);
    assert_false(req.expect_continue);
    assert_false(req.upgrade);
}

static void test_http1_parses_post_with_content_length(void **state)
{
    static const char req_text[] = "POST /submit HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n"
                                   "hello world";
    struct http1_request req;

    assert_int_equal(parse(req_text, &req), 0);
    assert_iov_equal(req.method, "POST");
    assert_int_equal(req.body, HTTP1_BODY_LENGTH);
    assert_int_equal(req.content_length, 11);
    assert_int_equal(req.head_len, strlen(req_text) - 11);
}

static void test_http1_parses_zero_content_length_as_length_body(void **state)
{
    struct http1_request req;

    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", &req), 0);
    assert_int_equal(req.body, HTTP1_BODY_LENGTH);
    assert_int_equal(req.content_length, 0);
}

static void test_http1_parses_post_with_chunked_body(void **state)
{
    struct http1_request req;

    assert_int_equal(
        parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
              &req),
        0);
    assert_int_equal(req.body, HTTP1_BODY_CHUNKED);
}

static void test_http1_accepts_chunked_case_insensitively(void **state)
{
    struct http1_request req;

    assert_int_equal(
        parse("POST / HTTP/1.1\r\nHost: h\r\ntransfer-encoding:  ChUnKeD \r\n\r\n", &req), 0);
    assert_int_equal(req.body, HTTP1_BODY_CHUNKED);
}

static void test_http1_accepts_max_uint64_content_length(void **state)
{
    struct http1_request req;

    assert_int_equal(
        parse("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551615\r\n\r\n", &req),
        0);
    assert_true(req.content_length == UINT64_MAX);
}

static void test_http1_accepts_repeated_identical_content_length(void **state)
{
    struct http1_request req;

    assert_int_equal(
        parse("POST / HTTP/1.1\r\nContent-Length: 5\r\nHost: h\r\ncontent-length: 5\r\n\r\n", &req),
        0);
    assert_int_equal(req.body, HTTP1_BODY_LENGTH);
    assert_int_equal(req.content_length, 5);
}

static void test_http1_parses_http10_without_host_and_closes(void **state)
{
    struct http1_request req;

    assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n", &req), 0);
    assert_int_equal(req.minor_version, 0);
    assert_int_equal(req.num_headers, 0);
    assert_false(req.keep_alive);
}

static void test_http1_http10_keeps_alive_only_when_asked(void **state)
{
    struct http1_request req;

    assert_int_equal(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &req), 0);
    assert_true(req.keep_alive);
    assert_int_equal(parse("GET / HTTP/1.0\r\nConnection: foo, keep-alive, close\r\n\r\n", &req),
                     0);
    assert_false(req.keep_alive);
}

static void test_http1_http11_connection_close_disables_keep_alive(void **state)
{
    struct http1_request req;

    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: TE, Close\r\n\r\n", &req), 0);
    assert_false(req.keep_alive);
    assert_int_equal(
        parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nConnection: close\r\n\r\n",
              &req),
        0);
    assert_false(req.keep_alive);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n", &req), 0);
    assert_true(req.keep_alive);
}

static void test_http1_head_len_stops_at_first_pipelined_request(void **state)
{
    static const char first[] = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n";
    static const char both[] =
        "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n";
    struct http1_request req;

    assert_int_equal(parse(both, &req), 0);
    assert_int_equal(req.head_len, strlen(first));
    assert_iov_equal(req.target, "/a");
    assert_int_equal(req.num_headers, 1);
    assert_int_equal(parse(both + req.head_len, &req), 0);
    assert_iov_equal(req.target, "/b");
}

static void test_http1_skips_leading_empty_lines(void **state)
{
    static const char req_text[] = "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
    struct http1_request req;

    assert_int_equal(parse(req_text, &req), 0);
    assert_iov_equal(req.method, "GET");
    assert_int_equal(req.head_len, strlen(req_text));
}

static void test_http1_trims_ows_around_values(void **state)
{
    struct http1_request req;

    assert_int_equal(
        parse("GET / HTTP/1.1\r\nHost:h\r\nX-A: \t a b \t\r\nX-B:\r\nX-C:   \r\n\r\n", &req), 0);
    assert_int_equal(req.num_headers, 4);
    assert_iov_equal(req.headers[0].value, "h");
    assert_iov_equal(req.headers[1].value, "a b");
    assert_iov_equal(req.headers[2].value, "");
    assert_iov_equal(req.headers[3].value, "");
}

static void test_http1_accepts_htab_and_obs_text_in_values(void **state)
{
    struct http1_request req;

    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: h\r\nX-A: caf\xc3\xa9\tbar\xff\r\n\r\n", &req),
                     0);
    assert_iov_equal(req.headers[1].value, "caf\xc3\xa9\tbar\xff");
}

static void test_http1_accepts_any_tchar_method_and_absolute_target(void **state)
{
    struct http1_request req;

    assert_int_equal(
        parse("M-SEARCH!#$%&'*+.^_`|~ http://x.example/p?q=%41#f HTTP/1.1\r\nHost: x\r\n\r\n",
              &req),
        0);
    assert_iov_equal(req.method, "M-SEARCH!#$%&'*+.^_`|~");
    assert_iov_equal(req.target, "http://x.example/p?q=%41#f");
}

static void test_http1_accepts_empty_host_and_host_with_port(void **state)
{
    struct http1_request req;

    assert_int_equal(parse("GET / HTTP/1.1\r\nHost:\r\n\r\n", &req), 0);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", &req), 0);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n", &req), 0);
}

static void test_http1_sets_expect_continue(void **state)
{
    struct http1_request req;

    assert_int_equal(parse("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\n"
                           "Content-Length: 3\r\n\r\n",
                           &req),
                     0);
    assert_true(req.expect_continue);
}

static void test_http1_ignores_expect_continue_in_http10(void **state)
{
    struct http1_request req;

    assert_int_equal(
        parse("PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", &req), 0);
    assert_false(req.expect_continue);
}

static void test_http1_flags_upgrade(void **state)
{
    struct http1_request req;

    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n"
                           "upgrade: websocket\r\n\r\n",
                           &req),
                     0);
    assert_true(req.upgrade);
}

/* ---- incremental input and limits ---- */

static void test_http1_reports_incomplete_at_every_prefix(void **state)
{
    static const char *const reqs[] = {
        "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        "\r\nPOST /x?y HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nX-E:\r\n\r\nhello",
        "PUT / HTTP/1.0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    };

    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        struct http1_request req;
        size_t len = strlen(reqs[i]), head_len;

        assert_int_equal(parse_n(reqs[i], len, &req), 0);
        head_len = req.head_len;
        for (size_t k = 0; k < head_len; k++)
            assert_int_equal(parse_n(reqs[i], k, &req), ERR_INCOMPLETE);
        for (size_t k = head_len; k <= len; k++) {
            assert_int_equal(parse_n(reqs[i], k, &req), 0);
            assert_int_equal(req.head_len, head_len);
        }
    }
}

/* Builds "GET / HTTP/1.1\r\nHost: h\r\n" + n-1 more fields + "\r\n" into a new buffer. */
static struct buf *build_with_headers(size_t n)
{
    struct buf *b = buf_new(1 << 20, 0);

    assert_non_null(b);
    assert_int_equal(buf_put_str(b, "GET / HTTP/1.1\r\nHost: h\r\n"), 0);
    for (size_t i = 1; i < n; i++)
        assert_int_equal(buf_putf(b, "X-%zu: v\r\n", i), 0);
    assert_int_equal(buf_put_str(b, "\r\n"), 0);
    return b;
}

static void test_http1_accepts_exactly_100_headers(void **state)
{
    struct buf *b = build_with_headers(HTTP1_MAX_HEADERS);
    struct http1_request req;

    assert_int_equal(parse_n((const char *)buf_ptr(b), buf_len(b), &req), 0);
    assert_int_equal(req.num_headers, HTTP1_MAX_HEADERS);
    buf_free(b);
}

static void test_http1_rejects_101_headers_as_too_large(void **state)
{
    struct buf *b = build_with_headers(HTTP1_MAX_HEADERS + 1);
    struct http1_request req;

    assert_int_equal(parse_n((const char *)buf_ptr(b), buf_len(b), &req), ERR_HTTP_HEAD_TOO_LARGE);
    /* ... and says so as soon as the 101st line is in, without waiting for the end. */
    assert_int_equal(parse_n((const char *)buf_ptr(b), buf_len(b) - 2, &req),
                     ERR_HTTP_HEAD_TOO_LARGE);
    buf_free(b);
}

/* Fills a heap block of len bytes with a request whose one long header never ends. */
static char *build_unterminated(size_t len)
{
    static const char start[] = "GET / HTTP/1.1\r\nHost: h\r\nX-Long: ";
    char *p = malloc(len);

    assert_non_null(p);
    memset(p, 'a', len);
    memcpy(p, start, sizeof(start) - 1);
    return p;
}

static void test_http1_rejects_unterminated_64k_head_as_too_large(void **state)
{
    char *p = build_unterminated(HTTP1_MAX_HEAD);
    struct http1_request req;

    assert_int_equal(http1_parse_request(p, HTTP1_MAX_HEAD - 1, &req), ERR_INCOMPLETE);
    assert_int_equal(http1_parse_request(p, HTTP1_MAX_HEAD, &req), ERR_HTTP_HEAD_TOO_LARGE);
    free(p);
}

static void test_http1_rejects_head_ending_past_the_limit(void **state)
{
    char *p = build_unterminated(HTTP1_MAX_HEAD + 4);
    struct http1_request req;

    /* The final CRLF CRLF ends one byte past HTTP1_MAX_HEAD. */
    memcpy(p + HTTP1_MAX_HEAD - 3, "\r\n\r\n", 4);
    assert_int_equal(http1_parse_request(p, HTTP1_MAX_HEAD + 1, &req), ERR_HTTP_HEAD_TOO_LARGE);
    free(p);
}

static void test_http1_accepts_head_of_exactly_the_limit(void **state)
{
    char *p = build_unterminated(HTTP1_MAX_HEAD + 10);
    struct http1_request req;

    memcpy(p + HTTP1_MAX_HEAD - 4, "\r\n\r\n", 4);
    assert_int_equal(http1_parse_request(p, HTTP1_MAX_HEAD + 10, &req), 0);
    assert_int_equal(req.head_len, HTTP1_MAX_HEAD);
    free(p);
}

static void test_http1_rejects_endless_empty_lines_as_too_large(void **state)
{
    char *p = malloc(HTTP1_MAX_HEAD);
    struct http1_request req;

    assert_non_null(p);
    for (size_t i = 0; i < HTTP1_MAX_HEAD; i += 2)
        memcpy(p + i, "\r\n", 2);
    assert_int_equal(http1_parse_request(p, HTTP1_MAX_HEAD, &req), ERR_HTTP_HEAD_TOO_LARGE);
    free(p);
}

/* ---- rejections: line structure and bytes ---- */

static void test_http1_rejects_bare_lf_after_request_line(void **state)
{
    assert_int_equal(parse_code("GET / HTTP/1.1\nHost: h\r\n\r\n"), ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_bare_lf_after_field(void **state)
{
    assert_int_equal(parse_code("GET / HTTP/1.1\r\nHost: h\n\r\n"), ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_bare_lf_as_end_of_head(void **state)
{
    assert_int_equal(parse_code("GET / HTTP/1.1\r\nHost: h\r\n\n"), ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_bare_lf_before_request_line(void **state)
{
    assert_int_equal(parse_code("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"), ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_bare_cr_in_value(void **state)
{
    assert_int_equal(parse_code("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n"),
                     ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_bare_cr_in_request_line(void **state)
{
    assert_int_equal(parse_code("GET /\r HTTP/1.1\r\nHost: h\r\n\r\n"), ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_cr_cr_lf_line_end(void **state)
{
    assert_int_equal(parse_code("GET / HTTP/1.1\r\nHost: h\r\r\n\r\n"), ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_nul_in_value(void **state)
{
    static const char text[] = "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n";
    struct http1_request req;

    assert_int_equal(parse_n(text, sizeof(text) - 1, &req), ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_nul_in_target(void **state)
{
    static const char text[] = "GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n";
    struct http1_request req;

    assert_int_equal(parse_n(text, sizeof(text) - 1, &req), ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_control_byte_in_value(void **state)
{
    assert_int_equal(parse_code("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01"
                                "b\r\n\r\n"),
                     ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_del_in_value(void **state)
{
    assert_int_equal(parse_code("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7f\r\n\r\n"),
                     ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_control_byte_in_header_name(void **state)
{
    assert_int_equal(parse_code("GET / HTTP/1.1\r\nHost: h\r\nX\x01: a\r\n\r\n"),
                     ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_non_ascii_in_header_name(void **state)
{
    assert_int_equal(parse_code("GET / HTTP/1.1\r\nHost: h\r\nX-\xc3\xa9: a\r\n\r\n"),
                     ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_non_ascii_in_target(void **state)
{
    assert_int_equal(parse_code("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n"),
                     ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_non_ascii_in_method(void **state)
{
    assert_int_equal(parse_code("G\xc3\x89T / HTTP/1.1\r\nHost: h\r\n\r\n"), ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_del_in_target(void **state)
{
    assert_int_equal(parse_code("GET /\x7f HTTP/1.1\r\nHost: h\r\n\r\n"), ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_tab_in_target(void **state)
{
    assert_int_equal(parse_code("GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n"), ERR_HTTP_BAD_REQUEST);
}

/* ---- rejections: request line ---- */

static void test_http1_rejects_method_with_separator(void **state)
{
    assert_int_equal(parse_code("GE(T / HTTP/1.1\r\nHost: h\r\n\r\n"), ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_leading_space_before_method(void **state)
{
    assert_int_equal(parse_code(" GET / HTTP/1.1\r\nHost: h\r\n\r\n"), ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_double_space_in_request_line(void **state)
{
    assert_int_equal(parse_code("GET  / HTTP/1.1\r\nHost: h\r\n\r\n"), ERR_HTTP_BAD_REQUEST);
    assert_int_equal(parse_code("GET /  HTTP/1.1\r\nHost: h\r\n\r\n"), ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_tab_as_request_line_separator(void **state)
{
    assert_int_equal(parse_code("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n"), ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_missing_target(void **state)
{
    assert_int_equal(parse_code("GET HTTP/1.1\r\nHost: h\r\n\r\n"), ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_missing_version(void **state)
{
    assert_int_equal(parse_code("GET /\r\n\r\n"), ERR_HTTP_BAD_REQUEST);
    assert_int_equal(parse_code("GET / \r\n\r\n"), ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_unsupported_versions(void **state)
{
    assert_int_equal(parse_code("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), ERR_HTTP_BAD_REQUEST);
    assert_int_equal(parse_code("GET / HTTP/1.2\r\nHost: h\r\n\r\n"), ERR_HTTP_BAD_REQUEST);
    assert_int_equal(parse_code("GET / HTTP/0.9\r\nHost: h\r\n\r\n"), ERR_HTTP_BAD_REQUEST);
    assert_int_equal(parse_code("GET / HTTP/1.10\r\nHost: h\r\n\r\n"), ERR_HTTP_BAD_REQUEST);
    assert_int_equal(parse_code("GET / HTTP/1\r\nHost: h\r\n\r\n"), ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_lowercase_http_name(void **state)
{
    assert_int_equal(parse_code("GET / http/1.1\r\nHost: h\r\n\r\n"), ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_trailing_space_after_version(void **state)
{
    assert_int_equal(parse_code("GET / HTTP/1.1 \r\nHost: h\r\n\r\n"), ERR_HTTP_BAD_REQUEST);
}

/* ---- rejections: field lines ---- */

static void test_http1_rejects_obs_fold(void **state)
{
    assert_int_equal(parse_code("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n"),
                     ERR_HTTP_BAD_REQUEST);
    assert_int_equal(parse_code("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n\tb\r\n\r\n"),
                     ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_whitespace_line_after_request_line(void **state)
{
    assert_int_equal(parse_code("GET / HTTP/1.1\r\n Host: h\r\n\r\n"), ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_whitespace_before_colon(void **state)
{
    assert_int_equal(parse_code("GET / HTTP/1.1\r\nHost : h\r\n\r\n"), ERR_HTTP_BAD_REQUEST);
    assert_int_equal(parse_code("GET / HTTP/1.1\r\nHost: h\r\nContent-Length\t: 1\r\n\r\n"),
                     ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_empty_header_name(void **state)
{
    assert_int_equal(parse_code("GET / HTTP/1.1\r\nHost: h\r\n: a\r\n\r\n"), ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_header_line_without_colon(void **state)
{
    assert_int_equal(parse_code("GET / HTTP/1.1\r\nHost: h\r\nX-A\r\n\r\n"), ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_separator_in_header_name(void **state)
{
    assert_int_equal(parse_code("GET / HTTP/1.1\r\nHost: h\r\nX/A: a\r\n\r\n"),
                     ERR_HTTP_BAD_REQUEST);
}

/* ---- rejections: framing ---- */

static void test_http1_rejects_content_length_with_transfer_encoding(void **state)
{
    assert_int_equal(parse_code("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n"),
                     ERR_HTTP_BAD_REQUEST);
    assert_int_equal(parse_code("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                                "Content-Length: 5\r\n\r\n"),
                     ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_differing_repeated_content_length(void **state)
{
    assert_int_equal(parse_code("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
                                "Content-Length: 6\r\n\r\n"),
                     ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_content_length_list(void **state)
{
    assert_int_equal(parse_code("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\n"),
                     ERR_HTTP_BAD_REQUEST);
    /* Even an identical list: 1*DIGIT is the only form we take. */
    assert_int_equal(parse_code("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5,5\r\n\r\n"),
                     ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_negative_content_length(void **state)
{
    assert_int_equal(parse_code("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n"),
                     ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_signed_content_length(void **state)
{
    assert_int_equal(parse_code("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n"),
                     ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_space_inside_content_length(void **state)
{
    assert_int_equal(parse_code("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 0\r\n\r\n"),
                     ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_non_decimal_content_length(void **state)
{
    assert_int_equal(parse_code("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n"),
                     ERR_HTTP_BAD_REQUEST);
    assert_int_equal(parse_code("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5a\r\n\r\n"),
                     ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_empty_content_length(void **state)
{
    assert_int_equal(parse_code("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n"),
                     ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_content_length_overflow(void **state)
{
    assert_int_equal(
        parse_code("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551616\r\n\r\n"),
        ERR_HTTP_BAD_REQUEST);
    assert_int_equal(
        parse_code("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
        ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_coding_before_chunked(void **state)
{
    assert_int_equal(parse_code("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n"
                                "\r\n"),
                     ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_coding_split_across_te_headers(void **state)
{
    assert_int_equal(parse_code("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n"),
                     ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_xchunked(void **state)
{
    assert_int_equal(
        parse_code("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n"),
        ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_chunked_twice_in_one_header(void **state)
{
    assert_int_equal(
        parse_code("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
        ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_chunked_in_two_headers(void **state)
{
    assert_int_equal(parse_code("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n"),
                     ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_empty_transfer_encoding(void **state)
{
    assert_int_equal(parse_code("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n"),
                     ERR_HTTP_BAD_REQUEST);
    assert_int_equal(
        parse_code("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked,\r\n\r\n"),
        ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_identity_transfer_encoding(void **state)
{
    assert_int_equal(
        parse_code("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n"),
        ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_chunked_with_parameters(void **state)
{
    assert_int_equal(
        parse_code("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;q=1\r\n\r\n"),
        ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_transfer_encoding_in_http10(void **state)
{
    assert_int_equal(parse_code("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
                     ERR_HTTP_BAD_REQUEST);
}

/* ---- rejections: Host and Expect ---- */

static void test_http1_rejects_http11_without_host(void **state)
{
    assert_int_equal(parse_code("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"), ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_two_host_headers(void **state)
{
    assert_int_equal(parse_code("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"),
                     ERR_HTTP_BAD_REQUEST);
    assert_int_equal(parse_code("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"),
                     ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_invalid_host(void **state)
{
    assert_int_equal(parse_code("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), ERR_HTTP_BAD_REQUEST);
    assert_int_equal(parse_code("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), ERR_HTTP_BAD_REQUEST);
    assert_int_equal(parse_code("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"), ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_unknown_expectation(void **state)
{
    assert_int_equal(parse_code("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n"),
                     ERR_HTTP_BAD_REQUEST);
    assert_int_equal(parse_code("PUT / HTTP/1.1\r\nHost: h\r\nExpect:\r\n\r\n"),
                     ERR_HTTP_BAD_REQUEST);
}

static void test_http1_rejects_expectation_list(void **state)
{
    assert_int_equal(parse_code("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue, foo\r\n\r\n"),
                     ERR_HTTP_BAD_REQUEST);
}

/* ---- helpers ---- */

/* Each name the parser and the forwarders decide on, in any case; everything one byte
 * longer, shorter or different is some other field. */
static void test_http1_field_of_knows_each_name_in_any_case_and_nothing_near_it(void **state)
{
    static const struct {
        const char *name;
        enum http1_field field;
    } names[] = {
        {"accept-encoding", HTTP1_FIELD_ACCEPT_ENCODING},
        {"authorization", HTTP1_FIELD_AUTHORIZATION},
        {"connection", HTTP1_FIELD_CONNECTION},
        {"content-length", HTTP1_FIELD_CONTENT_LENGTH},
        {"expect", HTTP1_FIELD_EXPECT},
        {"host", HTTP1_FIELD_HOST},
        {"keep-alive", HTTP1_FIELD_KEEP_ALIVE},
        {"proxy-connection", HTTP1_FIELD_PROXY_ANY},
        {"proxy-authorization", HTTP1_FIELD_PROXY_ANY},
        {"proxy-", HTTP1_FIELD_PROXY_ANY},
        {"te", HTTP1_FIELD_TE},
        {"trailer", HTTP1_FIELD_TRAILER},
        {"transfer-encoding", HTTP1_FIELD_TRANSFER_ENCODING},
        {"upgrade", HTTP1_FIELD_UPGRADE},
    };
    char s[64];

    (void)state;
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        size_t n = strlen(names[k].name);

        memcpy(s, names[k].name, n + 1);
        assert_int_equal(http1_field_of(s, n), names[k].field);
        for (size_t i = 0; i < n; i++) /* upper, then every other byte upper */
            s[i] = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i]);
        assert_int_equal(http1_field_of(s, n), names[k].field);
        for (size_t i = 0; i < n; i += 2)
            s[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
        assert_int_equal(http1_field_of(s, n), names[k].field);
        if (names[k].field == HTTP1_FIELD_PROXY_ANY)
            continue;
        assert_int_equal(http1_field_of(s, n - 1), HTTP1_FIELD_OTHER);
        s[n] = 's';
        assert_int_equal(http1_field_of(s, n + 1), HTTP1_FIELD_OTHER);
        for (size_t i = 0; i < n; i++) {
            char keep = s[i];

            s[i] = keep == '-' ? '_' : (char)(keep ^ 0x01);
            assert_int_equal(http1_field_of(s, n), HTTP1_FIELD_OTHER);
            s[i] = keep;
        }
    }
    assert_int_equal(http1_field_of("proxy", 5), HTTP1_FIELD_OTHER);
    assert_int_equal(http1_field_of("proxy_connection", 16), HTTP1_FIELD_OTHER);
    assert_int_equal(http1_field_of("content-type", 12), HTTP1_FIELD_OTHER);
    assert_int_equal(http1_field_of("", 0), HTTP1_FIELD_OTHER);
}

static void test_http1_list_has_token_trims_and_ignores_case(void **state)
{
    static const char list[] = " foo ,\tKeep-Alive\t, ,close";

    assert_true(http1_list_has_token(list, strlen(list), "keep-alive", 10));
    assert_true(http1_list_has_token(list, strlen(list), "CLOSE", 5));
    assert_true(http1_list_has_token(list, strlen(list), "foo", 3));
    assert_false(http1_list_has_token(list, strlen(list), "keep", 4));
    assert_false(http1_list_has_token(list, strlen(list), "alive", 5));
    assert_false(http1_list_has_token("", 0, "close", 5));
    assert_false(http1_list_has_token("closed", 6, "close", 5));
    /* Only the first len bytes count. */
    assert_false(http1_list_has_token("a, close", 4, "close", 5));
}

static bool content_length(const char *text, uint64_t *out)
{
    struct http1_iov v = {text, strlen(text)};

    return http1_parse_content_length(&v, out);
}

/* The one rule both the request parser and the response framing use. */
static void test_http1_parse_content_length_is_1_digit_within_64_bits(void **state)
{
    static const char *const bad[] = {"", " 1", "1 ", "+1", "-1", "1,1", "0x10", "1e3",
                                      "18446744073709551616", "99999999999999999999"};
    uint64_t n = 7;

    (void)state;
    assert_true(content_length("0", &n));
    assert_true(n == 0);
    assert_true(content_length("0042", &n));
    assert_true(n == 42);
    assert_true(content_length("18446744073709551615", &n));
    assert_true(n == UINT64_MAX);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = 7;
        assert_false(content_length(bad[i], &n));
        assert_true(n == 7); /* untouched on failure */
    }
}

/* ---- responses ---- */

static struct http1_response resp; /* 500 headers: not on the stack */

static int parse_resp(const char *text, bool is_head)
{
    return http1_parse_response(text, strlen(text), is_head, &resp);
}

static void test_http1_response_framing(void **state)
{
    (void)state;
    assert_int_equal(parse_resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false), 0);
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.body, HTTP1_RESPONSE_LENGTH);
    assert_int_equal(resp.content_length, 5);
    assert_true(resp.keep_alive);
    assert_int_equal(resp.head_len, strlen("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"));
    assert_int_equal(parse_resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                                false), 0);
    assert_int_equal(resp.body, HTTP1_RESPONSE_CHUNKED);
    /* chunked not last: the body runs to the close, and the connection is not reused */
    assert_int_equal(parse_resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
                                false), 0);
    assert_int_equal(resp.body, HTTP1_RESPONSE_CLOSE);
    assert_false(resp.keep_alive);
    assert_int_equal(parse_resp("HTTP/1.1 200 OK\r\n\r\n", false), 0);
    assert_int_equal(resp.body, HTTP1_RESPONSE_CLOSE);
    assert_false(resp.keep_alive);
    /* no body whatever the headers say */
    assert_int_equal(parse_resp("HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n", false), 0);
    assert_int_equal(resp.body, HTTP1_RESPONSE_NONE);
    assert_int_equal(parse_resp("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true), 0);
    assert_int_equal(resp.body, HTTP1_RESPONSE_NONE);
    assert_int_equal(parse_resp("HTTP/1.1 100 Continue\r\n\r\n", false), 0);
    assert_int_equal(resp.status, 100);
    assert_int_equal(resp.body, HTTP1_RESPONSE_NONE);
    /* keep-alive */
    assert_int_equal(parse_resp("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                                false), 0);
    assert_false(resp.keep_alive);
    assert_int_equal(parse_resp("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false), 0);
    assert_false(resp.keep_alive);
    assert_int_equal(parse_resp("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
                                "Content-Length: 0\r\n\r\n", false), 0);
    assert_true(resp.keep_alive);
    /* an empty reason, with or without its space */
    assert_int_equal(parse_resp("HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", false), 0);
    assert_int_equal(resp.status, 404);
    assert_int_equal(parse_resp("HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", false), 0);
    assert_int_equal(parse_resp("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
                                false), 0);
    assert_int_equal(resp.content_length, 3);
    /* both lengths: chunked wins, and the connection is not reused */
    assert_int_equal(parse_resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n", false), 0);
    assert_int_equal(resp.body, HTTP1_RESPONSE_CHUNKED);
    assert_false(resp.keep_alive);
}

static void test_http1_response_rejects_what_is_ambiguous_or_malformed(void **state)
{
    static const char *const bad[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n",
        "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",      /* bare LF */
        "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",            /* obs-fold */
        "HTTP/1.1 200 OK\r\nX : a\r\n\r\n",                 /* space before the colon */
        "HTTP/1.1 200 OK\r\nX: a\x01\r\n\r\n",              /* a control byte */
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.2 200 OK\r\n\r\n",
        "http/1.1 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 099 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1  200 OK\r\n\r\n",
        "ICY 200 OK\r\n\r\n",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse_resp(bad[i], false) != ERR_INVALID)
            fail_msg("accepted: %s", bad[i]);
    }
}

static void test_http1_response_incomplete_and_limits(void **state)
{
    const char *full = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    char *big;
    size_t n = 0;

    (void)state;
    for (size_t i = 0; i < strlen(full); i++)
        assert_int_equal(http1_parse_response(full, i, false, &resp), ERR_INCOMPLETE);
    /* 300 KiB of head: refused once the limit is passed, not waited for */
    if ((big = malloc(300 * 1024)) == NULL) {
        fail();
        return;
    }
    n = (size_t)sprintf(big, "HTTP/1.1 200 OK\r\n");
    while (n < 300 * 1024 - 128)
        n += (size_t)sprintf(big + n, "X-Filler: %0100d\r\n", 0);
    assert_int_equal(http1_parse_response(big, n, false, &resp), ERR_HTTP_HEAD_TOO_LARGE);
    /* 600 short lines: over the count */
    n = (size_t)sprintf(big, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 600; i++)
        n += (size_t)sprintf(big + n, "X-%d: v\r\n", i);
    n += (size_t)sprintf(big + n, "\r\n");
    assert_int_equal(http1_parse_response(big, n, false, &resp), ERR_HTTP_HEAD_TOO_LARGE);
    /* 500 lines: within it */
    n = (size_t)sprintf(big, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 500; i++)
        n += (size_t)sprintf(big + n, "X-%d: v\r\n", i);
    n += (size_t)sprintf(big + n, "\r\n");
    assert_int_equal(http1_parse_response(big, n, false, &resp), 0);
    assert_int_equal(resp.num_headers, 500);
    assert_int_equal(resp.headers[499].name.len, 5);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http1_parses_simple_get),
        cmocka_unit_test(test_http1_parses_post_with_content_length),
        cmocka_unit_test(test_http1_parses_zero_content_length_as_length_body),
        cmocka_unit_test(test_http1_parses_post_with_chunked_body),
        cmocka_unit_test(test_http1_accepts_chunked_case_insensitively),
        cmocka_unit_test(test_http1_accepts_max_uint64_content_length),
        cmocka_unit_test(test_http1_accepts_repeated_identical_content_length),
        cmocka_unit_test(test_http1_parses_http10_without_host_and_closes),
        cmocka_unit_test(test_http1_http10_keeps_alive_only_when_asked),
        cmocka_unit_test(test_http1_http11_connection_close_disables_keep_alive),
        cmocka_unit_test(test_http1_head_len_stops_at_first_pipelined_request),
        cmocka_unit_test(test_http1_skips_leading_empty_lines),
        cmocka_unit_test(test_http1_trims_ows_around_values),
        cmocka_unit_test(test_http1_accepts_htab_and_obs_text_in_values),
        cmocka_unit_test(test_http1_accepts_any_tchar_method_and_absolute_target),
        cmocka_unit_test(test_http1_accepts_empty_host_and_host_with_port),
        cmocka_unit_test(test_http1_sets_expect_continue),
        cmocka_unit_test(test_http1_ignores_expect_continue_in_http10),
        cmocka_unit_test(test_http1_flags_upgrade),
        cmocka_unit_test(test_http1_reports_incomplete_at_every_prefix),
        cmocka_unit_test(test_http1_accepts_exactly_100_headers),
        cmocka_unit_test(test_http1_rejects_101_headers_as_too_large),
        cmocka_unit_test(test_http1_rejects_unterminated_64k_head_as_too_large),
        cmocka_unit_test(test_http1_rejects_head_ending_past_the_limit),
        cmocka_unit_test(test_http1_accepts_head_of_exactly_the_limit),
        cmocka_unit_test(test_http1_rejects_endless_empty_lines_as_too_large),
        cmocka_unit_test(test_http1_rejects_bare_lf_after_request_line),
        cmocka_unit_test(test_http1_rejects_bare_lf_after_field),
        cmocka_unit_test(test_http1_rejects_bare_lf_as_end_of_head),
        cmocka_unit_test(test_http1_rejects_bare_lf_before_request_line),
        cmocka_unit_test(test_http1_rejects_bare_cr_in_value),
        cmocka_unit_test(test_http1_rejects_bare_cr_in_request_line),
        cmocka_unit_test(test_http1_rejects_cr_cr_lf_line_end),
        cmocka_unit_test(test_http1_rejects_nul_in_value),
        cmocka_unit_test(test_http1_rejects_nul_in_target),
        cmocka_unit_test(test_http1_rejects_control_byte_in_value),
        cmocka_unit_test(test_http1_rejects_del_in_value),
        cmocka_unit_test(test_http1_rejects_control_byte_in_header_name),
        cmocka_unit_test(test_http1_rejects_non_ascii_in_header_name),
        cmocka_unit_test(test_http1_rejects_non_ascii_in_target),
        cmocka_unit_test(test_http1_rejects_non_ascii_in_method),
        cmocka_unit_test(test_http1_rejects_del_in_target),
        cmocka_unit_test(test_http1_rejects_tab_in_target),
        cmocka_unit_test(test_http1_rejects_method_with_separator),
        cmocka_unit_test(test_http1_rejects_leading_space_before_method),
        cmocka_unit_test(test_http1_rejects_double_space_in_request_line),
        cmocka_unit_test(test_http1_rejects_tab_as_request_line_separator),
        cmocka_unit_test(test_http1_rejects_missing_target),
        cmocka_unit_test(test_http1_rejects_missing_version),
        cmocka_unit_test(test_http1_rejects_unsupported_versions),
        cmocka_unit_test(test_http1_rejects_lowercase_http_name),
        cmocka_unit_test(test_http1_rejects_trailing_space_after_version),
        cmocka_unit_test(test_http1_rejects_obs_fold),
        cmocka_unit_test(test_http1_rejects_whitespace_line_after_request_line),
        cmocka_unit_test(test_http1_rejects_whitespace_before_colon),
        cmocka_unit_test(test_http1_rejects_empty_header_name),
        cmocka_unit_test(test_http1_rejects_header_line_without_colon),
        cmocka_unit_test(test_http1_rejects_separator_in_header_name),
        cmocka_unit_test(test_http1_rejects_content_length_with_transfer_encoding),
        cmocka_unit_test(test_http1_rejects_differing_repeated_content_length),
        cmocka_unit_test(test_http1_rejects_content_length_list),
        cmocka_unit_test(test_http1_rejects_negative_content_length),
        cmocka_unit_test(test_http1_rejects_signed_content_length),
        cmocka_unit_test(test_http1_rejects_space_inside_content_length),
        cmocka_unit_test(test_http1_rejects_non_decimal_content_length),
        cmocka_unit_test(test_http1_rejects_empty_content_length),
        cmocka_unit_test(test_http1_rejects_content_length_overflow),
        cmocka_unit_test(test_http1_rejects_coding_before_chunked),
        cmocka_unit_test(test_http1_rejects_coding_split_across_te_headers),
        cmocka_unit_test(test_http1_rejects_xchunked),
        cmocka_unit_test(test_http1_rejects_chunked_twice_in_one_header),
        cmocka_unit_test(test_http1_rejects_chunked_in_two_headers),
        cmocka_unit_test(test_http1_rejects_empty_transfer_encoding),
        cmocka_unit_test(test_http1_rejects_identity_transfer_encoding),
        cmocka_unit_test(test_http1_rejects_chunked_with_parameters),
        cmocka_unit_test(test_http1_rejects_transfer_encoding_in_http10),
        cmocka_unit_test(test_http1_rejects_http11_without_host),
        cmocka_unit_test(test_http1_rejects_two_host_headers),
        cmocka_unit_test(test_http1_rejects_invalid_host),
        cmocka_unit_test(test_http1_rejects_unknown_expectation),
        cmocka_unit_test(test_http1_rejects_expectation_list),
        cmocka_unit_test(test_http1_field_of_knows_each_name_in_any_case_and_nothing_near_it),
        cmocka_unit_test(test_http1_list_has_token_trims_and_ignores_case),
        cmocka_unit_test(test_http1_parse_content_length_is_1_digit_within_64_bits),
        cmocka_unit_test(test_http1_response_framing),
        cmocka_unit_test(test_http1_response_rejects_what_is_ambiguous_or_malformed),
        cmocka_unit_test(test_http1_response_incomplete_and_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
