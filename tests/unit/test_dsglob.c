/*
 * Unit tests for src/runner/dsglob.c: doublestar v4's pattern semantics (its README's
 * examples and the rules RUNNER-OPS.md 5.4 quotes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "dsglob.h"

static const struct {
    const char *pattern, *path;
    int want;
} cases[] = {
    {"*.txt", "file1.txt", 1},
    {"*.txt", "file3.log", 0},
    {"*.txt", "sub/file.txt", 0},
    {"*", ".env", 1},                    /* dotfiles are not special */
    {"**", "a/b/c", 1},
    {"**", ".git/config", 1},
    {"**/child*", "grandparent/parent/child1", 1},
    {"grandparent/**/child?", "grandparent/parent/child1", 1},
    {"**/parent/*", "grandparent/parent/child2", 1},
    {"a/**", "a", 1},                    /* the directory it starts from */
    {"a/**", "a/b/c", 1},
    {"a/**", "ab", 0},
    {"a/**/b", "a/b", 1},                /* zero directories */
    {"a/**/b", "a/x/y/b", 1},
    {"a/**/b", "a/x/y/c", 0},
    {"**/*.go", "main.go", 1},
    {"**/*.go", "cmd/x/main.go", 1},
    {"a**", "abc", 1},                   /* not a whole segment: like '*' */
    {"a**", "ab/c", 0},
    {"a/**b", "a/xb", 1},
    {"a/**b", "a/x/b", 0},
    {"?", "/", 0},
    {"?", "\xe2\x98\xba", 1},            /* one UTF-8 character */
    {"??", "\xe2\x98\xba", 0},
    {"[abc]", "b", 1},
    {"[a-c]x", "bx", 1},
    {"[^abc]", "d", 1},
    {"[!abc]", "a", 0},
    {"[!abc]", "z", 1},
    {"[\\]]", "]", 1},
    {"[/]", "/", 0},
    {"{a,b}.go", "a.go", 1},
    {"{a,b}.go", "c.go", 0},
    {"{a,b/c}.go", "b/c.go", 1},         /* alternatives may hold '/' */
    {"x/{a,**}/y", "x/p/q/y", 1},
    {"{a,{b,c}}", "c", 1},               /* nested */
    {"x{**/y,z}", "xa/b/y", 1},          /* an alternative starts afresh */
    {"*{a,b}", "xa", 1},
    {"*{b,*}", "xx/b", 0},               /* no '**' across the brace */
    {"*.{go,md}", "README.md", 1},
    {"\\*", "*", 1},
    {"\\*", "a", 0},
    {"a}", "a}", 1},                     /* an unmatched '}' is ordinary */
    {"", "", 1},
};

static void test_doublestar_semantics(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = dsglob_match(cases[i].pattern, cases[i].path);

        if (got != cases[i].want)
            fail_msg("dsglob_match(%s, %s) = %d, want %d", cases[i].pattern, cases[i].path, got,
                     cases[i].want);
    }
}

static void test_malformed_patterns(void **state)
{
    assert_false(dsglob_valid("[a"));
    assert_false(dsglob_valid("{a,b"));
    assert_false(dsglob_valid("a\\"));
    assert_false(dsglob_valid("x/[^"));
    assert_true(dsglob_valid("a}"));
    assert_true(dsglob_valid("**/*.{c,h}"));
    assert_false(dsglob_valid("[]]"));   /* an empty class */
    assert_false(dsglob_valid("[^]a]"));
}

static void test_a_pathological_pattern_runs_out_of_budget(void **state)
{
    char pattern[64], path[128];

    /* Twenty stars before a letter the path lacks: exponential backtracking. */
    strcpy(pattern, "");
    for (int i = 0; i < 20; i++)
        strcat(pattern, "*a");
    strcat(pattern, "b");
    memset(path, 'a', 100);
    path[100] = '\0';
    assert_int_equal(dsglob_match(pattern, path), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doublestar_semantics),
        cmocka_unit_test(test_malformed_patterns),
        cmocka_unit_test(test_a_pathological_pattern_runs_out_of_budget),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
