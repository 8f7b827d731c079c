/*
 * Unit tests for src/runner/gomatch.c: the cases of Go's path/filepath match_test.go
 * (matchTests), as list's ignore patterns see them (a malformed pattern matches nothing).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gomatch.h"

static const struct {
    const char *pattern, *name;
    bool match; /* false also for ErrBadPattern */
} cases[] = {
    {"abc", "abc", true},
    {"*", "abc", true},
    {"*c", "abc", true},
    {"a*", "a", true},
    {"a*", "abc", true},
    {"a*", "ab/c", false},
    {"a*/b", "abc/b", true},
    {"a*/b", "a/c/b", false},
    {"a*b*c*d*e*/f", "axbxcxdxe/f", true},
    {"a*b*c*d*e*/f", "axbxcxdxexxx/f", true},
    {"a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false},
    {"a*b*c*d*e*/f", "axbxcxdxexxx/fff", false},
    {"a*b?c*x", "abxbbxdbxebxczzx", true},
    {"a*b?c*x", "abxbbxdbxebxczzy", false},
    {"ab[c]", "abc", true},
    {"ab[b-d]", "abc", true},
    {"ab[e-g]", "abc", false},
    {"ab[^c]", "abc", false},
    {"ab[^b-d]", "abc", false},
    {"ab[^e-g]", "abc", true},
    {"a\\*b", "a*b", true},
    {"a\\*b", "ab", false},
    {"a?b", "a\xe2\x98\xba" "b", true},  /* '?' is one UTF-8 character */
    {"a[^a]b", "a\xe2\x98\xba" "b", true},
    {"a???b", "a\xe2\x98\xba" "b", false},
    {"a[^a][^a][^a]b", "a\xe2\x98\xba" "b", false},
    {"[a-\xce\xb6]*", "\xce\xb1", true},
    {"*[a-\xce\xb6]", "A", false},
    {"a?b", "a/b", false},
    {"a*b", "a/b", false},
    {"[\\]a]", "]", true},
    {"[\\-]", "-", true},
    {"[x\\-]", "x", true},
    {"[x\\-]", "-", true},
    {"[x\\-]", "z", false},
    {"[\\-x]", "x", true},
    {"[\\-x]", "-", true},
    {"[\\-x]", "a", false},
    {"[]a]", "]", false},     /* bad patterns */
    {"[-]", "-", false},
    {"[x-]", "x", false},
    {"[x-]", "-", false},
    {"[x-]", "z", false},
    {"[-x]", "x", false},
    {"[-x]", "-", false},
    {"[-x]", "a", false},
    {"\\", "a", false},
    {"[a-b-c]", "a", false},
    {"[", "a", false},
    {"[^", "a", false},
    {"[^bc", "a", false},
    {"a[", "a", false},
    {"a[", "ab", false},
    {"a[", "x", false},
    {"a/b[", "x", false},
    {"*x", "xxx", true},
    {"[!x]", "!", true},      /* '!' is not negation in Go */
    {"[!x]", "a", false},
    {"*.o", "main.o", true},
    {"*.o", "main.c", false},
    {"node_modules", "node_modules", true},
};

static void test_gos_match_cases(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (gomatch(cases[i].pattern, cases[i].name) != cases[i].match)
            fail_msg("Match(%s, %s) should be %d", cases[i].pattern, cases[i].name,
                     cases[i].match);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gos_match_cases),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
