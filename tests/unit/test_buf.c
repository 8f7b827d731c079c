/* Unit tests for src/core/buf.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
#include "err.h"

static void test_buf_put_and_consume_round_trip(void **state)
{
    struct buf *b = buf_new(64, 0);

    assert_non_null(b);
    assert_int_equal(buf_put(b, "hello ", 6), 0);
    assert_int_equal(buf_putf(b, "%s %d", "world", 42), 0);
    assert_int_equal(buf_len(b), 14);
    assert_string_equal(buf_cstr(b), "hello world 42");
    assert_int_equal(buf_consume(b, 6), 0);
    assert_string_equal(buf_cstr(b), "world 42");
    buf_free(b);
}

static void test_buf_put_past_max_fails_and_keeps_contents(void **state)
{
    struct buf *b = buf_new(8, BUF_WIPE);

    assert_int_equal(buf_put(b, "12345678", 8), 0);
    assert_int_equal(buf_put(b, "9", 1), ERR_TOO_LARGE);
    assert_int_equal(buf_len(b), 8);
    assert_memory_equal(buf_ptr(b), "12345678", 8);
    buf_free(b);
}

static void test_buf_consume_past_end_fails(void **state)
{
    struct buf *b = buf_new(8, 0);

    assert_int_equal(buf_put(b, "ab", 2), 0);
    assert_int_equal(buf_consume(b, 3), ERR_INVALID);
    assert_int_equal(buf_len(b), 2);
    buf_free(b);
}

static void test_buf_grows_across_many_appends(void **state)
{
    struct buf *b = buf_new(1 << 20, BUF_WIPE);
    char chunk[1000];

    memset(chunk, 'x', sizeof(chunk));
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(buf_put(b, chunk, sizeof(chunk)), 0);
        if (i % 3 == 0)
            assert_int_equal(buf_consume(b, 500), 0);
    }
    assert_int_equal(buf_len(b), 1000 * 1000 - 334 * 500);
    buf_free(b);
}

static void test_buf_free_accepts_null(void **state)
{
    buf_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_put_and_consume_round_trip),
        cmocka_unit_test(test_buf_put_past_max_fails_and_keeps_contents),
        cmocka_unit_test(test_buf_consume_past_end_fails),
        cmocka_unit_test(test_buf_grows_across_many_appends),
        cmocka_unit_test(test_buf_free_accepts_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
