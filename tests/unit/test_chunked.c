/* Unit tests for src/http/chunked.c: the incremental chunked-body decoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
#include "chunked.h"
#include "err.h"

struct run {
    int rc;          /* last return of chunked_decode */
    size_t used;     /* bytes of input consumed in all */
    struct buf *out; /* body data yielded */
};

/*
 * Drives a decoder the way the broker does: bytes of in[0..len) arrive first
 * `first` bytes, then `step` bytes at a time; the decoder is always handed all
 * unconsumed bytes, copied into a heap block of exactly that size so ASan
 * catches reads past the end. Stops at the first non-zero return, or when the
 * input runs out.
 */
static void run_decoder(const char *in, size_t len, size_t first, size_t step, struct run *res)
{
    struct chunked_decoder d;
    size_t pos = 0, arrived = first < len ? first : len;

    res->out = buf_new(1 << 20, 0);
    assert_non_null(res->out);
    res->rc = 0;
    chunked_init(&d);
    for (;;) {
        size_t window, consumed;
        const char *data;
        size_t data_len;
        char *copy;

        if (pos == arrived) {
            if (arrived == len)
                break;
            arrived = len - arrived < step ? len : arrived + step;
            continue;
        }
        window = arrived - pos;
        copy = malloc(window);
        assert_non_null(copy);
        memcpy(copy, in + pos, window);
        res->rc = chunked_decode(&d, copy, window, &consumed, &data, &data_len);
        assert_true(consumed <= window);
        if (data_len > 0) {
            assert_true(data >= copy && data + data_len <= copy + window);
            assert_int_equal(buf_put(res->out, data, data_len), 0);
        }
        free(copy);
        pos += consumed;
        if (res->rc != 0)
            break;
        /* Progress is guaranteed: a 0 return with unconsumed input must have used some. */
        assert_true(consumed > 0);
    }
    res->used = pos;
}

static void run_free(struct run *res)
{
    buf_free(res->out);
}

/* Decodes s in one go and expects rc, body and bytes used. */
static void expect_decode(const char *s, int rc, const char *body, size_t used)
{
    struct run res;

    run_decoder(s, strlen(s), strlen(s), 1, &res);
    assert_int_equal(res.rc, rc);
    assert_int_equal(res.used, used);
    assert_int_equal(buf_len(res.out), strlen(body));
    assert_memory_equal(buf_ptr(res.out), body, strlen(body));
    run_free(&res);
}

/* Expects s to decode completely, consuming all of it, into body. */
static void expect_whole(const char *s, const char *body)
{
    expect_decode(s, 1, body, strlen(s));
}

/* Expects a rejection both when s arrives whole and when it arrives a byte at a time. */
static void expect_reject(const char *s)
{
    struct run res;

    run_decoder(s, strlen(s), strlen(s), 1, &res);
    assert_int_equal(res.rc, ERR_HTTP_BAD_REQUEST);
    run_free(&res);
    run_decoder(s, strlen(s), 1, 1, &res);
    assert_int_equal(res.rc, ERR_HTTP_BAD_REQUEST);
    run_free(&res);
}

/* ---- decoding ---- */

static void test_chunked_decodes_single_chunk(void **state)
{
    expect_whole("5\r\nhello\r\n0\r\n\r\n", "hello");
}

static void test_chunked_decodes_empty_body(void **state)
{
    expect_whole("0\r\n\r\n", "");
    expect_whole("000\r\n\r\n", "");
}

static void test_chunked_decodes_multiple_chunks_and_leaves_pipelined_bytes(void **state)
{
    static const char s[] = "3\r\nabc\r\nA\r\n0123456789\r\n1\r\n!\r\n0\r\n\r\nGET / HTTP/1.1\r\n";

    expect_decode(s, 1, "abc0123456789!", strlen(s) - strlen("GET / HTTP/1.1\r\n"));
}

static void test_chunked_accepts_hex_in_either_case_and_leading_zeros(void **state)
{
    struct run res;
    char s[64 + 0x1f];

    memcpy(s, "001F\r\n", 6);
    memset(s + 6, 'x', 0x1f);
    memcpy(s + 6 + 0x1f, "\r\n0\r\n\r\n", 7);
    run_decoder(s, 6 + 0x1f + 7, 6 + 0x1f + 7, 1, &res);
    assert_int_equal(res.rc, 1);
    assert_int_equal(buf_len(res.out), 0x1f);
    run_free(&res);
    expect_whole("b\r\nhello world\r\n0\r\n\r\n", "hello world");
}

static void test_chunked_decodes_identically_when_split_at_every_byte_boundary(void **state)
{
    static const char s[] = "4;ext=1\r\nWiki\r\n5 ; a = \"q\\\"x\" ; b\r\npedia\r\n"
                            "E\r\n in\r\n\r\nchunks.\r\n0;last\r\nX-Trailer: v\r\nY: \r\n\r\nNEXT";
    static const char body[] = "Wikipedia in\r\n\r\nchunks.";
    size_t len = strlen(s), used = len - 4;

    for (size_t k = 0; k <= len; k++) {
        struct run res;

        run_decoder(s, len, k, len, &res);
        assert_int_equal(res.rc, 1);
        assert_int_equal(res.used, used);
        assert_int_equal(buf_len(res.out), strlen(body));
        assert_memory_equal(buf_ptr(res.out), body, strlen(body));
        run_free(&res);
    }
    for (size_t step = 1; step <= 7; step++) {
        struct run res;

        run_decoder(s, len, step, step, &res);
        assert_int_equal(res.rc, 1);
        assert_int_equal(res.used, used);
        assert_memory_equal(buf_ptr(res.out), body, strlen(body));
        run_free(&res);
    }
}

static void test_chunked_yields_one_span_per_call(void **state)
{
    static const char s[] = "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n";
    struct chunked_decoder d;
    const char *data;
    size_t consumed, data_len, off = 0;

    chunked_init(&d);
    assert_int_equal(chunked_decode(&d, s, strlen(s), &consumed, &data, &data_len), 0);
    assert_int_equal(consumed, 6);
    assert_int_equal(data_len, 3);
    assert_memory_equal(data, "abc", 3);
    off += consumed;
    assert_int_equal(chunked_decode(&d, s + off, strlen(s) - off, &consumed, &data, &data_len), 0);
    assert_int_equal(consumed, 8);
    assert_int_equal(data_len, 3);
    assert_memory_equal(data, "def", 3);
    off += consumed;
    assert_int_equal(chunked_decode(&d, s + off, strlen(s) - off, &consumed, &data, &data_len), 1);
    assert_int_equal(data_len, 0);
    assert_int_equal(off + consumed, strlen(s));
}

static void test_chunked_hands_back_partial_chunk_data(void **state)
{
    struct chunked_decoder d;
    const char *data;
    size_t consumed, data_len;

    chunked_init(&d);
    assert_int_equal(chunked_decode(&d, "a\r\nhel", 6, &consumed, &data, &data_len), 0);
    assert_int_equal(consumed, 6);
    assert_int_equal(data_len, 3);
    assert_memory_equal(data, "hel", 3);
    assert_int_equal(chunked_decode(&d, "lo wor", 6, &consumed, &data, &data_len), 0);
    assert_int_equal(consumed, 6);
    assert_memory_equal(data, "lo wor", 6);
    assert_int_equal(chunked_decode(&d, "l", 1, &consumed, &data, &data_len), 0);
    assert_int_equal(data_len, 1);
    assert_int_equal(chunked_decode(&d, "\r\n0\r\n\r\n", 7, &consumed, &data, &data_len), 1);
    assert_int_equal(consumed, 7);
}

static void test_chunked_returns_done_again_after_completion(void **state)
{
    struct chunked_decoder d;
    const char *data;
    size_t consumed, data_len;

    chunked_init(&d);
    assert_int_equal(chunked_decode(&d, "0\r\n\r\nX", 6, &consumed, &data, &data_len), 1);
    assert_int_equal(consumed, 5);
    assert_int_equal(chunked_decode(&d, "X", 1, &consumed, &data, &data_len), 1);
    assert_int_equal(consumed, 0);
    assert_int_equal(data_len, 0);
}

static void test_chunked_accepts_empty_input(void **state)
{
    struct chunked_decoder d;
    const char *data;
    size_t consumed = 99, data_len = 99;

    chunked_init(&d);
    assert_int_equal(chunked_decode(&d, "", 0, &consumed, &data, &data_len), 0);
    assert_int_equal(consumed, 0);
    assert_int_equal(data_len, 0);
}

static void test_chunked_accepts_extensions(void **state)
{
    expect_whole("1;a\r\nx\r\n0\r\n\r\n", "x");
    expect_whole("1;a=b;c=\"d e\"\r\nx\r\n0\r\n\r\n", "x");
    expect_whole("1 ;\ta =\t\"q\\\\ \\\"\" ; c\r\nx\r\n0;z=1\r\n\r\n", "x");
    expect_whole("1;a=\"\xc3\xa9\"\r\nx\r\n0\r\n\r\n", "x");
    expect_whole("1;a=\"\"\r\nx\r\n0\r\n\r\n", "x");
}

static void test_chunked_accepts_extensions_up_to_the_cap(void **state)
{
    /* "1;" + name + CR: the ';', name and CR count, so the name may be CAP - 2 long. */
    size_t name_len = CHUNKED_MAX_EXT - 2, n = 0;
    char *s = malloc(name_len + 32);
    struct run res;

    assert_non_null(s);
    memcpy(s, "1;", 2);
    n = 2;
    memset(s + n, 'e', name_len);
    n += name_len;
    memcpy(s + n, "\r\nx\r\n0\r\n\r\n", 10);
    n += 10;
    run_decoder(s, n, n, 1, &res);
    assert_int_equal(res.rc, 1);
    run_free(&res);

    /* One more byte of name is one too many. */
    memcpy(s + 2 + name_len, "e\r\nx\r\n0\r\n\r\n", 11);
    run_decoder(s, n + 1, n + 1, 1, &res);
    assert_int_equal(res.rc, ERR_HTTP_BAD_REQUEST);
    run_free(&res);
    free(s);
}

static void test_chunked_accepts_trailers_and_discards_them(void **state)
{
    expect_whole("2\r\nok\r\n0\r\nX-Sum: abc\r\nX-Empty:\r\nX-Tab:\ta\tb\r\n\r\n", "ok");
}

static void test_chunked_accepts_largest_chunk_size(void **state)
{
    struct chunked_decoder d;
    const char *data;
    size_t consumed, data_len;

    chunked_init(&d);
    assert_int_equal(chunked_decode(&d, "ffffffffffffffff\r\nabc", 21, &consumed, &data, &data_len),
                     0);
    assert_int_equal(consumed, 21);
    assert_int_equal(data_len, 3);
}

/* Builds "0\r\nX: " + k 'a' + "\r\n\r\n": a trailer section of k + 7 bytes. */
static char *build_trailer(size_t k, size_t *len)
{
    char *s = malloc(k + 16);

    assert_non_null(s);
    memcpy(s, "0\r\nX: ", 6);
    memset(s + 6, 'a', k);
    memcpy(s + 6 + k, "\r\n\r\n", 4);
    *len = k + 10;
    return s;
}

static void test_chunked_accepts_trailer_section_up_to_the_cap(void **state)
{
    size_t len;
    char *s = build_trailer(CHUNKED_MAX_TRAILER - 7, &len);
    struct run res;

    run_decoder(s, len, len, 1, &res);
    assert_int_equal(res.rc, 1);
    assert_int_equal(res.used, len);
    run_free(&res);
    free(s);
}

/* ---- rejections ---- */

static void test_chunked_rejects_oversized_trailer_section(void **state)
{
    size_t len;
    char *s = build_trailer(CHUNKED_MAX_TRAILER - 6, &len);
    struct run res;

    run_decoder(s, len, len, 1, &res);
    assert_int_equal(res.rc, ERR_HTTP_BAD_REQUEST);
    run_free(&res);
    free(s);
}

static void test_chunked_rejects_oversized_extensions(void **state)
{
    char *s = malloc(2 * CHUNKED_MAX_EXT);
    struct run res;

    assert_non_null(s);
    memcpy(s, "1;a=", 4);
    memset(s + 4, 'v', 2 * CHUNKED_MAX_EXT - 4);
    /* Rejected while the line is still arriving: no waiting for its end. */
    run_decoder(s, 2 * CHUNKED_MAX_EXT, 2 * CHUNKED_MAX_EXT, 1, &res);
    assert_int_equal(res.rc, ERR_HTTP_BAD_REQUEST);
    run_free(&res);
    free(s);
}

static void test_chunked_rejects_empty_chunk_size(void **state)
{
    expect_reject("\r\nhello\r\n0\r\n\r\n");
}

static void test_chunked_rejects_negative_chunk_size(void **state)
{
    expect_reject("-1\r\nx\r\n0\r\n\r\n");
}

static void test_chunked_rejects_plus_sign_in_chunk_size(void **state)
{
    expect_reject("+1\r\nx\r\n0\r\n\r\n");
}

static void test_chunked_rejects_0x_prefix(void **state)
{
    expect_reject("0x10\r\n0123456789abcdef\r\n0\r\n\r\n");
}

static void test_chunked_rejects_space_before_size(void **state)
{
    expect_reject(" 1\r\nx\r\n0\r\n\r\n");
    expect_reject("\t1\r\nx\r\n0\r\n\r\n");
}

static void test_chunked_rejects_non_hex_size(void **state)
{
    expect_reject("g\r\nx\r\n0\r\n\r\n");
    expect_reject("1g\r\nx\r\n0\r\n\r\n");
}

static void test_chunked_rejects_seventeen_hex_digits(void **state)
{
    expect_reject("00000000000000001\r\nx\r\n0\r\n\r\n");
    expect_reject("10000000000000000\r\nx\r\n0\r\n\r\n");
}

static void test_chunked_rejects_bare_lf_after_size(void **state)
{
    expect_reject("1\nx\r\n0\r\n\r\n");
}

static void test_chunked_rejects_bare_cr_after_size(void **state)
{
    expect_reject("1\rx\r\n0\r\n\r\n");
}

static void test_chunked_rejects_trailing_whitespace_after_size(void **state)
{
    expect_reject("1 \r\nx\r\n0\r\n\r\n");
}

static void test_chunked_rejects_data_longer_than_chunk_size(void **state)
{
    expect_reject("5\r\nhelloX\r\n0\r\n\r\n");
}

static void test_chunked_rejects_data_shorter_than_chunk_size(void **state)
{
    /* "hell\r\n0" is taken as 5 data bytes "hell\r" followed by "\n0" where CRLF belongs. */
    expect_reject("5\r\nhell\r\n0\r\n\r\n");
}

static void test_chunked_rejects_bare_lf_after_data(void **state)
{
    expect_reject("5\r\nhello\n0\r\n\r\n");
}

static void test_chunked_rejects_bare_cr_after_data(void **state)
{
    expect_reject("5\r\nhello\r0\r\n\r\n");
}

static void test_chunked_rejects_extension_without_name(void **state)
{
    expect_reject("1;\r\nx\r\n0\r\n\r\n");
    expect_reject("1;=v\r\nx\r\n0\r\n\r\n");
    expect_reject("1;a;\r\nx\r\n0\r\n\r\n");
}

static void test_chunked_rejects_extension_with_empty_value(void **state)
{
    expect_reject("1;a=\r\nx\r\n0\r\n\r\n");
}

static void test_chunked_rejects_whitespace_at_end_of_extension(void **state)
{
    expect_reject("1;a \r\nx\r\n0\r\n\r\n");
    expect_reject("1;a=b \r\nx\r\n0\r\n\r\n");
    expect_reject("1;a=\"b\" \r\nx\r\n0\r\n\r\n");
}

static void test_chunked_rejects_separator_in_extension_token(void **state)
{
    expect_reject("1;a=b/c\r\nx\r\n0\r\n\r\n");
    expect_reject("1;a@=b\r\nx\r\n0\r\n\r\n");
}

static void test_chunked_rejects_unterminated_quoted_string(void **state)
{
    expect_reject("1;a=\"b\r\nx\r\n0\r\n\r\n");
}

static void test_chunked_rejects_text_after_quoted_string(void **state)
{
    expect_reject("1;a=\"b\"c\r\nx\r\n0\r\n\r\n");
}

static void test_chunked_rejects_control_byte_in_extension(void **state)
{
    expect_reject("1;a=\"\x01\"\r\nx\r\n0\r\n\r\n");
    expect_reject("1;a=\"\\\x01\"\r\nx\r\n0\r\n\r\n");
    expect_reject("1;a\x7f\r\nx\r\n0\r\n\r\n");
}

static void test_chunked_rejects_nul_in_extension(void **state)
{
    static const char s[] = "1;a=\"\0\"\r\nx\r\n0\r\n\r\n";
    struct run res;

    run_decoder(s, sizeof(s) - 1, sizeof(s) - 1, 1, &res);
    assert_int_equal(res.rc, ERR_HTTP_BAD_REQUEST);
    run_free(&res);
}

static void test_chunked_rejects_obs_fold_in_trailer(void **state)
{
    expect_reject("0\r\nX: a\r\n b\r\n\r\n");
    expect_reject("0\r\n\tX: a\r\n\r\n");
}

static void test_chunked_rejects_trailer_without_colon(void **state)
{
    expect_reject("0\r\nX-Trailer\r\n\r\n");
}

static void test_chunked_rejects_trailer_with_empty_name(void **state)
{
    expect_reject("0\r\n: v\r\n\r\n");
}

static void test_chunked_rejects_whitespace_before_colon_in_trailer(void **state)
{
    expect_reject("0\r\nX : v\r\n\r\n");
}

static void test_chunked_rejects_control_byte_in_trailer(void **state)
{
    expect_reject("0\r\nX: a\x01"
                  "b\r\n\r\n");
    expect_reject("0\r\nX: a\x7f\r\n\r\n");
    expect_reject("0\r\nX: a\rb\r\n\r\n");
}

static void test_chunked_rejects_nul_in_trailer(void **state)
{
    static const char s[] = "0\r\nX: a\0b\r\n\r\n";
    struct run res;

    run_decoder(s, sizeof(s) - 1, sizeof(s) - 1, 1, &res);
    assert_int_equal(res.rc, ERR_HTTP_BAD_REQUEST);
    run_free(&res);
}

static void test_chunked_rejects_bare_lf_in_trailer(void **state)
{
    expect_reject("0\r\nX: a\n\r\n");
}

static void test_chunked_rejects_bare_lf_as_final_line(void **state)
{
    expect_reject("0\r\n\n");
    expect_reject("0\r\nX: a\r\n\n");
}

static void test_chunked_rejects_bare_cr_as_final_line(void **state)
{
    expect_reject("0\r\n\rX");
}

static void test_chunked_keeps_failing_after_an_error(void **state)
{
    struct chunked_decoder d;
    const char *data;
    size_t consumed, data_len;

    chunked_init(&d);
    assert_int_equal(chunked_decode(&d, "z", 1, &consumed, &data, &data_len), ERR_HTTP_BAD_REQUEST);
    assert_int_equal(chunked_decode(&d, "0\r\n\r\n", 5, &consumed, &data, &data_len),
                     ERR_HTTP_BAD_REQUEST);
    assert_int_equal(consumed, 0);
    assert_int_equal(data_len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunked_decodes_single_chunk),
        cmocka_unit_test(test_chunked_decodes_empty_body),
        cmocka_unit_test(test_chunked_decodes_multiple_chunks_and_leaves_pipelined_bytes),
        cmocka_unit_test(test_chunked_accepts_hex_in_either_case_and_leading_zeros),
        cmocka_unit_test(test_chunked_decodes_identically_when_split_at_every_byte_boundary),
        cmocka_unit_test(test_chunked_yields_one_span_per_call),
        cmocka_unit_test(test_chunked_hands_back_partial_chunk_data),
        cmocka_unit_test(test_chunked_returns_done_again_after_completion),
        cmocka_unit_test(test_chunked_accepts_empty_input),
        cmocka_unit_test(test_chunked_accepts_extensions),
        cmocka_unit_test(test_chunked_accepts_extensions_up_to_the_cap),
        cmocka_unit_test(test_chunked_accepts_trailers_and_discards_them),
        cmocka_unit_test(test_chunked_accepts_largest_chunk_size),
        cmocka_unit_test(test_chunked_accepts_trailer_section_up_to_the_cap),
        cmocka_unit_test(test_chunked_rejects_oversized_trailer_section),
        cmocka_unit_test(test_chunked_rejects_oversized_extensions),
        cmocka_unit_test(test_chunked_rejects_empty_chunk_size),
        cmocka_unit_test(test_chunked_rejects_negative_chunk_size),
        cmocka_unit_test(test_chunked_rejects_plus_sign_in_chunk_size),
        cmocka_unit_test(test_chunked_rejects_0x_prefix),
        cmocka_unit_test(test_chunked_rejects_space_before_size),
        cmocka_unit_test(test_chunked_rejects_non_hex_size),
        cmocka_unit_test(test_chunked_rejects_seventeen_hex_digits),
        cmocka_unit_test(test_chunked_rejects_bare_lf_after_size),
        cmocka_unit_test(test_chunked_rejects_bare_cr_after_size),
        cmocka_unit_test(test_chunked_rejects_trailing_whitespace_after_size),
        cmocka_unit_test(test_chunked_rejects_data_longer_than_chunk_size),
        cmocka_unit_test(test_chunked_rejects_data_shorter_than_chunk_size),
        cmocka_unit_test(test_chunked_rejects_bare_lf_after_data),
        cmocka_unit_test(test_chunked_rejects_bare_cr_after_data),
        cmocka_unit_test(test_chunked_rejects_extension_without_name),
        cmocka_unit_test(test_chunked_rejects_extension_with_empty_value),
        cmocka_unit_test(test_chunked_rejects_whitespace_at_end_of_extension),
        cmocka_unit_test(test_chunked_rejects_separator_in_extension_token),
        cmocka_unit_test(test_chunked_rejects_unterminated_quoted_string),
        cmocka_unit_test(test_chunked_rejects_text_after_quoted_string),
        cmocka_unit_test(test_chunked_rejects_control_byte_in_extension),
        cmocka_unit_test(test_chunked_rejects_nul_in_extension),
        cmocka_unit_test(test_chunked_rejects_obs_fold_in_trailer),
        cmocka_unit_test(test_chunked_rejects_trailer_without_colon),
        cmocka_unit_test(test_chunked_rejects_trailer_with_empty_name),
        cmocka_unit_test(test_chunked_rejects_whitespace_before_colon_in_trailer),
        cmocka_unit_test(test_chunked_rejects_control_byte_in_trailer),
        cmocka_unit_test(test_chunked_rejects_nul_in_trailer),
        cmocka_unit_test(test_chunked_rejects_bare_lf_in_trailer),
        cmocka_unit_test(test_chunked_rejects_bare_lf_as_final_line),
        cmocka_unit_test(test_chunked_rejects_bare_cr_as_final_line),
        cmocka_unit_test(test_chunked_keeps_failing_after_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
