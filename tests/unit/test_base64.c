/*
 * Unit tests for src/core/base64.c: encoding, and decoding as Go's StdEncoding with its
 * CorruptInputError indices (computed with Go's encoding/base64 rules).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "base64.h"

static void assert_decodes(const char *in, const char *want, size_t want_len)
{
    uint8_t out[64];
    size_t n = 99, bad = 99;

    assert_int_equal(base64_decode_go(in, strlen(in), out, &n, &bad), 0);
    assert_int_equal(n, want_len);
    assert_memory_equal(out, want, want_len);
}

static void assert_bad_at(const char *in, size_t at)
{
    uint8_t out[64];
    size_t n, bad = 99;

    assert_int_equal(base64_decode_go(in, strlen(in), out, &n, &bad), -1);
    assert_int_equal(bad, at);
}

static void test_encode_pads(void **state)
{
    char out[16];

    assert_int_equal(base64_encode((const uint8_t *)"World", 5, out), 8);
    assert_string_equal(out, "V29ybGQ=");
    base64_encode((const uint8_t *)"Wo", 2, out);
    assert_string_equal(out, "V28=");
    base64_encode((const uint8_t *)"W", 1, out);
    assert_string_equal(out, "Vw==");
    base64_encode((const uint8_t *)"", 0, out);
    assert_string_equal(out, "");
}

static void test_decode_as_go(void **state)
{
    assert_decodes("", "", 0);
    assert_decodes("SGVsbG8=", "Hello", 5);
    assert_decodes("SGVsbA==", "Hell", 4);
    assert_decodes("S\nGVs\r\nbG8=\n", "Hello", 5); /* CR and LF skipped anywhere */
    assert_decodes("SGVsbG8=\r\n", "Hello", 5);
    assert_decodes("SGVs", "Hel", 3);
}

static void test_decode_errors_at_gos_index(void **state)
{
    assert_bad_at("SGVsbG8", 4);    /* a partial last quantum: padding is required */
    assert_bad_at("A", 0);
    assert_bad_at("SGV-", 3);       /* not in the standard alphabet (URL-safe) */
    assert_bad_at("SGV_bG8=", 3);
    assert_bad_at("SGVs bG8=", 4);  /* a space is not skipped */
    assert_bad_at("=AAA", 0);       /* padding too early */
    assert_bad_at("A=AA", 1);
    assert_bad_at("AB=", 3);        /* "==" expected: not enough padding */
    assert_bad_at("AB=C", 2);       /* incorrect padding */
    assert_bad_at("SGVsbG8=x", 8);  /* data after the padding */
    assert_bad_at("SGVsbG8==", 8);
    assert_bad_at("SGVsbG==\nQQ==", 9);
}

static void test_round_trip(void **state)
{
    uint8_t data[256], back[256 + 3];
    char text[BASE64_ENCODED_LEN(256) + 1];

    for (int i = 0; i < 256; i++)
        data[i] = (uint8_t)i;
    for (size_t len = 0; len <= 256; len++) {
        size_t n, bad, tlen = base64_encode(data, len, text);

        assert_int_equal(base64_decode_go(text, tlen, back, &n, &bad), 0);
        assert_int_equal(n, len);
        assert_memory_equal(back, data, len);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_pads),
        cmocka_unit_test(test_decode_as_go),
        cmocka_unit_test(test_decode_errors_at_gos_index),
        cmocka_unit_test(test_round_trip),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
