/* Unit tests for src/core/dlapi.c: filling a function table from a shared library. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "dlapi.h"

struct libc_api {
    size_t (*length)(const char *s); /* strlen */
    int (*compare)(const char *a, const char *b); /* strcmp */
};

static void test_fills_every_pointer_from_the_library(void **state)
{
    static const struct dlapi_symbol syms[] = {
        DLAPI_SYMBOL(struct libc_api, length, "strlen"),
        DLAPI_SYMBOL(struct libc_api, compare, "strcmp"),
    };
    struct libc_api t = {0};

    assert_int_equal(dlapi_load("libc.so.6", syms, 2, &t), 0);
    assert_non_null(t.length);
    assert_non_null(t.compare);
    assert_int_equal(t.length("broker"), 6);
    assert_true(t.compare("a", "b") < 0);
}

static void test_a_missing_symbol_or_library_is_an_error(void **state)
{
    static const struct dlapi_symbol missing_sym[] = {
        DLAPI_SYMBOL(struct libc_api, length, "strlen"),
        DLAPI_SYMBOL(struct libc_api, compare, "no_such_function_in_libc"),
    };
    static const struct dlapi_symbol syms[] = {
        DLAPI_SYMBOL(struct libc_api, length, "strlen"),
    };
    struct libc_api t = {0};

    assert_int_equal(dlapi_load("libc.so.6", missing_sym, 2, &t), -1);
    assert_int_equal(dlapi_load("libcredbroker-no-such-library.so.0", syms, 1, &t), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fills_every_pointer_from_the_library),
        cmocka_unit_test(test_a_missing_symbol_or_library_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
