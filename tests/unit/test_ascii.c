/*
 * Unit tests for src/core/ascii.h: the byte classes and the word-at-a-time helpers, each
 * against a byte-at-a-time definition written here from the RFC, over every byte value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "ascii.h"

/* RFC 9110 5.6.2, spelled out. */
static bool rfc_tchar(unsigned c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", (int)c) != NULL);
}

/* RFC 9110 5.5: field-vchar (VCHAR, obs-text), SP, HTAB. */
static bool rfc_value_byte(unsigned c)
{
    return c == ' ' || c == '\t' || (c >= 0x21 && c <= 0x7e) || c >= 0x80;
}

static unsigned char bytewise_lower(unsigned c)
{
    return (unsigned char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
}

static void test_tchar_is_the_rfc_set(void **state)
{
    (void)state;
    for (unsigned c = 0; c < 256; c++)
        assert_int_equal(ascii_is_tchar((unsigned char)c), rfc_tchar(c));
}

static void test_value_bytes_are_the_rfc_set(void **state)
{
    (void)state;
    for (unsigned c = 0; c < 256; c++)
        assert_int_equal(ascii_is_value_byte((unsigned char)c), rfc_value_byte(c));
}

/* Every byte value at every position of values 1..19 bytes long (both the eight-byte
 * words and the tail), among bytes that are fine and among a neighbour that is not. */
static void test_all_value_bytes_judges_every_position(void **state)
{
    char v[20];

    (void)state;
    for (size_t len = 1; len < sizeof(v); len++) {
        for (size_t at = 0; at < len; at++) {
            for (unsigned c = 0; c < 256; c++) {
                memset(v, 'a', len);
                v[at] = (char)c;
                assert_int_equal(ascii_all_value_bytes(v, len), rfc_value_byte(c));
                /* A tab before it (the word is then judged byte by byte). */
                if (at > 0) {
                    v[at - 1] = '\t';
                    assert_int_equal(ascii_all_value_bytes(v, len), rfc_value_byte(c));
                }
            }
        }
    }
    assert_true(ascii_all_value_bytes("", 0));
    /* Past n is not looked at. */
    assert_true(ascii_all_value_bytes("abcdefgh\r", 8));
}

/* Every pair of byte values in every two adjacent lanes: a borrow or carry from one lane
 * would show in the other. */
static void test_tolower8_is_bytewise_tolower(void **state)
{
    (void)state;
    for (unsigned lane = 0; lane < 7; lane++) {
        for (unsigned a = 0; a < 256; a++) {
            for (unsigned b = 0; b < 256; b++) {
                uint8_t in[8] = {'Q', 0x00, 0xff, 'z', '@', '[', 0x80, 'M'}, want[8];
                uint64_t x, got;

                in[lane] = (uint8_t)a;
                in[lane + 1] = (uint8_t)b;
                for (int i = 0; i < 8; i++)
                    want[i] = bytewise_lower(in[i]);
                memcpy(&x, in, 8);
                got = ascii_tolower8(x);
                assert_memory_equal(&got, want, 8);
            }
        }
    }
}

static void test_ieq_lower_n_matches_any_case_at_every_length(void **state)
{
    static const char lower[] = "abcdefghijklmnopqrstuvwxyz-0123456789-transfer-encoding";
    char s[sizeof(lower)];

    (void)state;
    for (size_t n = 0; n < sizeof(lower); n++) {
        for (size_t i = 0; i < n; i++) /* every other letter upper-case */
            s[i] = (char)(i % 2 && lower[i] >= 'a' && lower[i] <= 'z' ? lower[i] - 32 : lower[i]);
        assert_true(ascii_ieq_lower_n(s, lower, n));
        /* One byte off, anywhere (the words, and the overlapping last eight). */
        for (size_t at = 0; at < n; at++) {
            char keep = s[at];

            s[at] = (char)(keep ^ 0x01);
            assert_false(ascii_ieq_lower_n(s, lower, n));
            s[at] = keep;
        }
    }
}

/* Bytes 0x20 apart that are not a letter pair are not equal: '@' '`', '[' '{', CR '-'. */
static void test_ieq_lower_n_folds_letters_only(void **state)
{
    static const char pairs[][2] = {{'@', '`'}, {'[', '{'}, {']', '}'}, {'^', '~'},
                                    {'\r', '-'}, {'\x0f', '/'}, {'\xc1', '\xe1'}};

    (void)state;
    for (size_t p = 0; p < sizeof(pairs) / sizeof(pairs[0]); p++) {
        for (size_t n = 1; n <= 17; n++) {
            char s[17], lower[17];

            memset(s, 'x', n);
            memset(lower, 'x', n);
            s[n - 1] = pairs[p][0];
            lower[n - 1] = pairs[p][1];
            assert_false(ascii_ieq_lower_n(s, lower, n));
        }
    }
    assert_true(ascii_ieq_lower("Content-LENGTH", 14, "content-length"));
    assert_false(ascii_ieq_lower("Content-Length", 13, "content-length"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tchar_is_the_rfc_set),
        cmocka_unit_test(test_value_bytes_are_the_rfc_set),
        cmocka_unit_test(test_all_value_bytes_judges_every_position),
        cmocka_unit_test(test_tolower8_is_bytewise_tolower),
        cmocka_unit_test(test_ieq_lower_n_matches_any_case_at_every_length),
        cmocka_unit_test(test_ieq_lower_n_folds_letters_only),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
