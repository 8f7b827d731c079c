/*
 * Unit tests for src/runner/ignore.c: gitignore lines as ripgrep 13 reads them (its
 * `ignore` crate over globset). Every expectation in the table was checked against
 * /usr/bin/rg: the lines written to a .ignore in an otherwise empty root, the path made as
 * a file (or a directory holding one), and whether `rg --files` lists it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "ignore.h"

#define I IGNORE_IGNORE
#define W IGNORE_WHITELIST
#define N IGNORE_NONE

static const struct {
    const char *lines; /* '\n'-separated, as in a file */
    const char *path;
    bool is_dir;
    enum ignore_match want;
} cases[] = {
    {"*.log", "a.log", false, I},
    {"*.log", "sub/deep/a.log", false, I},        /* no '/': any depth */
    {"*.log", "a.logx", false, N},
    {"a.log", "sub/xa.log", false, N},            /* a name, not a suffix of one */
    {"/a.log", "a.log", false, I},                /* a leading '/' anchors */
    {"/a.log", "sub/a.log", false, N},
    {"sub/a.log", "sub/a.log", false, I},         /* a '/' inside anchors too */
    {"sub/a.log", "x/sub/a.log", false, N},
    {"build/", "build", true, I},                 /* directories only */
    {"build/", "build", false, N},
    {"build/", "x/build", true, I},
    {"sub/**", "sub", true, N},                   /* everything inside, not the directory */
    {"sub/**", "sub/x", false, I},
    {"sub/**", "sub/a/b/c", false, I},
    {"a/**/b", "a/b", false, I},                  /* zero components */
    {"a/**/b", "a/x/y/b", false, I},
    {"**/x", "p/q/x", false, I},
    {"*", "sub/x", false, I},
    {"?.txt", "a.txt", false, I},
    {"?.txt", "\xc3\xa9.txt", false, N},          /* '?' is one byte, not a character */
    {"??.txt", "\xc3\xa9.txt", false, I},
    {"[ab].txt", "b.txt", false, I},
    {"[!ab].txt", "c.txt", false, I},
    {"[^ab].txt", "a.txt", false, N},
    {"a[!x]b", "a/b", false, I},                  /* a negated class matches '/' (globset) */
    {"[]]", "]", false, I},
    {"[a-]", "-", false, I},
    {"*.{txt,md}", "x.md", false, I},
    {"*.{txt,md}", "x.go", false, N},
    {"a}", "a", false, I},                        /* a stray '}' is nothing */
    {"\\*", "*", false, I},
    {"\\*", "x", false, N},
    {"*.log\n!keep.log", "keep.log", false, W},   /* the last matching line decides */
    {"!keep.log\n*.log", "keep.log", false, I},
    {"# comment\n\n*.log", "a.log", false, I},
    {"\\#x", "#x", false, I},
    {"\\!x", "!x", false, I},
    {"*.log   ", "a.log", false, I},              /* trailing spaces trimmed */
    {"a\\ ", "a ", false, I},                     /* unless escaped */
    {"*.log\r", "a.log", false, I},               /* a CRLF file */
    {"!", "anything/at/all", false, W},           /* "**" + "/" alone: everything */
    {"**", "a/b", false, I},
    {"x\xff\n*.log", "a.log", false, N},          /* reading stops at a non-UTF-8 line */
    {"*.log\n#\xff\nfoo", "foo", false, N},       /* a comment too */
    {"*.log\n#\xff\nfoo", "a.log", false, I},
    {"\xef\xbb\xbf*.log", "a.log", false, N},     /* a BOM is not stripped */
    {"[z-a]\n*.log", "a.log", false, I},          /* a line that does not compile is skipped */
    {"{a,b\n*.log", "a.log", false, I},
    {"{a,{b}}\n*.log", "b", false, N},            /* nested alternatives do not compile */
};

static void test_lines_match_as_rg_reads_them(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ignore_set *s = ignore_set_new();
        enum ignore_match got;

        assert_non_null(s);
        assert_int_equal(ignore_set_add_file(s, cases[i].lines, strlen(cases[i].lines)), 0);
        got = ignore_set_match(s, cases[i].path, strlen(cases[i].path), cases[i].is_dir);
        if (got != cases[i].want)
            fail_msg("case %zu: lines \"%s\", %s \"%s\": %d, want %d", i, cases[i].lines,
                     cases[i].is_dir ? "dir" : "file", cases[i].path, got, cases[i].want);
        ignore_set_free(s);
    }
}

static void test_lines_that_do_not_compile_are_refused_one_by_one(void **state)
{
    static const char *const bad[] = {"[a", "{a,b", "a\\", "[z-a]", "{a,{b,c}}", "x\xff"};
    struct ignore_set *s = ignore_set_new();

    assert_non_null(s);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(ignore_set_add_line(s, bad[i], strlen(bad[i])), ERR_INVALID);
    assert_int_equal(ignore_set_count(s), 0);
    assert_int_equal(ignore_set_add_line(s, "", 0), 0);
    assert_int_equal(ignore_set_add_line(s, "#x", 2), 0);
    assert_int_equal(ignore_set_count(s), 0);
    assert_int_equal(ignore_set_add_line(s, "!x", 2), 0);
    assert_int_equal(ignore_set_count(s), 1);
    assert_int_equal(ignore_set_whitelists(s), 1);
    ignore_set_free(s);
    ignore_set_free(NULL);
}

static void test_a_long_path_and_many_stars_match_without_backtracking(void **state)
{
    char pattern[256] = "", path[4096];
    struct ignore_set *s = ignore_set_new();

    /* Exponential for a backtracking matcher; one pass for the simulation. */
    for (int i = 0; i < 40; i++)
        strcat(pattern, "*a");
    strcat(pattern, "b");
    memset(path, 'a', sizeof(path) - 1);
    path[sizeof(path) - 1] = '\0';
    assert_non_null(s);
    assert_int_equal(ignore_set_add_line(s, pattern, strlen(pattern)), 0);
    assert_int_equal(ignore_set_match(s, path, strlen(path), false), IGNORE_NONE);
    path[sizeof(path) - 2] = 'b';
    assert_int_equal(ignore_set_match(s, path, strlen(path), false), IGNORE_IGNORE);
    ignore_set_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_match_as_rg_reads_them),
        cmocka_unit_test(test_lines_that_do_not_compile_are_refused_one_by_one),
        cmocka_unit_test(test_a_long_path_and_many_stars_match_without_backtracking),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
