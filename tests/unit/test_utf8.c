/*
 * test_utf8.c - src/core/utf8.c: every code point round-trips, and what Table 3-7 rules
 * out is refused; utf8_is_white_space agrees with PCRE2's \p{White_Space} everywhere.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "utf8.h"

static void test_every_code_point_round_trips(void **state)
{
    unsigned char buf[UTF8_MAX];
    uint32_t back;

    for (uint32_t c = 0; c <= 0x10FFFF; c++) {
        size_t n;

        if (c >= 0xD800 && c <= 0xDFFF)
            continue;
        n = utf8_encode(c, buf);
        assert_true(n == (c < 0x80 ? 1u : c < 0x800 ? 2u : c < 0x10000 ? 3u : 4u));
        assert_int_equal(utf8_decode(buf, n, &back), n);
        assert_int_equal(back, c);
        /* Cut short, it is not a character. */
        if (n > 1)
            assert_int_equal(utf8_decode(buf, n - 1, &back), 0);
    }
}

static void test_ill_formed_sequences_are_refused(void **state)
{
    static const struct {
        const char *s;
        size_t len;
    } bad[] = {
        {"\x80", 1},             /* a lone continuation */
        {"\xc0\xaf", 2},         /* overlong '/' */
        {"\xc1\xbf", 2},
        {"\xe0\x80\xaf", 3},     /* overlong, three bytes */
        {"\xf0\x80\x80\xaf", 4}, /* overlong, four bytes */
        {"\xed\xa0\x80", 3},     /* U+D800, a surrogate */
        {"\xf4\x90\x80\x80", 4}, /* U+110000 */
        {"\xf5\x80\x80\x80", 4},
        {"\xff", 1},
        {"\xc3z", 2},            /* a lead byte, then no continuation */
    };
    uint32_t c;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(utf8_decode((const unsigned char *)bad[i].s, bad[i].len, &c), 0);
    assert_int_equal(utf8_decode((const unsigned char *)"\xc3\xa9x", 3, &c), 2);
    assert_int_equal(c, 0xE9);
}

/* Unicode's White_Space property, as PCRE2 knows it, for every scalar value. */
static void test_white_space_is_unicodes(void **state)
{
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR) "^\\p{White_Space}$", PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF, &err, &off, NULL);
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    unsigned count = 0;

    (void)state;
    assert_non_null(re);
    assert_non_null(md);
    for (uint32_t c = 0; c <= 0x10FFFF; c++) {
        unsigned char buf[UTF8_MAX];
        size_t n;
        bool pcre;

        if (c >= 0xD800 && c <= 0xDFFF)
            continue;
        n = utf8_encode(c, buf);
        pcre = pcre2_match(re, buf, n, 0, 0, md, NULL) >= 0;
        if (pcre != utf8_is_white_space(c))
            fail_msg("U+%04X: PCRE2 says %d", (unsigned)c, pcre);
        count += pcre;
    }
    assert_int_equal(count, 25); /* the property's size in Unicode 15 */
    pcre2_match_data_free(md);
    pcre2_code_free(re);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_code_point_round_trips),
        cmocka_unit_test(test_ill_formed_sequences_are_refused),
        cmocka_unit_test(test_white_space_is_unicodes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
