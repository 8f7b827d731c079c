/*
 * Unit tests for src/runner/grep_builtin.c (and grep_builtin_regex.c): the built-in grep
 * engine on real temporary workspaces. The reference is ripgrep 13 itself: where
 * /usr/bin/rg exists, the last tests run it with the argv the rg engine uses on the same
 * trees and compare every (path, line number, line) with ours, in order; without rg
 * those comparisons are skipped and the fixed expectations (also taken from rg 13) stand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "base64.h"
#include "err.h"
#include "grep_builtin.h"
#include "grep_builtin_internal.h"
#include "wspath.h"

#define RG "/usr/bin/rg"

struct hit {
    char *path, *line;
    size_t path_len, line_len;
    uint64_t line_number;
};

struct hits {
    struct hit *v;
    size_t n, cap;
    size_t stop_after;  /* the callback returns false after this many (0: never) */
    atomic_bool *cancel_after_first;
};

struct fixture {
    char dir[PATH_MAX];
    struct wspath_root root;
    atomic_bool cancel;
};

static void hits_clear(struct hits *h)
{
    for (size_t i = 0; i < h->n; i++) {
        free(h->v[i].path);
        free(h->v[i].line);
    }
    free(h->v);
    memset(h, 0, sizeof(*h));
}

static char *dup_bytes(const char *p, size_t n)
{
    char *d = malloc(n + 1);

    assert_non_null(d);
    memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

static void hits_add(struct hits *h, const char *path, size_t path_len, uint64_t line_number,
                     const char *line, size_t line_len)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 16;
        h->v = realloc(h->v, h->cap * sizeof(*h->v));
        assert_non_null(h->v);
    }
    h->v[h->n++] = (struct hit){dup_bytes(path, path_len), dup_bytes(line, line_len), path_len,
                                line_len, line_number};
}

static bool collect(const struct grep_match *m, void *data)
{
    struct hits *h = data;

    assert_int_equal(strlen(m->path), m->path_len); /* NUL-terminated */
    hits_add(h, m->path, m->path_len, m->line_number, m->line, m->line_len);
    if (h->cancel_after_first != NULL)
        atomic_store(h->cancel_after_first, true);
    return h->stop_after == 0 || h->n < h->stop_after;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char tmpl[] = "/tmp/credbroker-grep-XXXXXX";

    if (f == NULL || mkdtemp(tmpl) == NULL || realpath(tmpl, f->dir) == NULL)
        return -1;
    /* A workspace of its own inside the temporary directory: tests put a .git beside it. */
    strncat(f->dir, "/ws", sizeof(f->dir) - strlen(f->dir) - 1);
    if (mkdir(f->dir, 0755) != 0 || wspath_root_open(&f->root, f->dir) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[PATH_MAX + 32];

    wspath_root_close(&f->root);
    *strrchr(f->dir, '/') = '\0';
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* Writes rel (directories made on the way) with len bytes of content. */
static void put(struct fixture *f, const char *rel, const void *content, size_t len)
{
    char path[PATH_MAX * 2];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
    for (char *s = strchr(path + strlen(f->dir) + 1, '/'); s != NULL; s = strchr(s + 1, '/')) {
        *s = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            fail_msg("mkdir %s: %s", path, strerror(errno));
        *s = '/';
    }
    assert_non_null(fp = fopen(path, "wb"));
    assert_int_equal(fwrite(content, 1, len, fp), len);
    fclose(fp);
}

static void puts_file(struct fixture *f, const char *rel, const char *content)
{
    put(f, rel, content, strlen(content));
}

static int run(struct fixture *f, const char *pattern, char *const *include, size_t ninclude,
               struct hits *h)
{
    memset(h, 0, sizeof(*h));
    return grep_builtin_run(&f->root, pattern, include, ninclude, &f->cancel, collect, h);
}

/* The hits as "path:line:content" lines, for readable assertions. */
static char *render(const struct hits *h)
{
    size_t cap = 1;
    char *s;

    for (size_t i = 0; i < h->n; i++)
        cap += h->v[i].path_len + h->v[i].line_len + 32;
    assert_non_null(s = calloc(1, cap));
    for (size_t i = 0; i < h->n; i++) {
        size_t k = strlen(s);

        snprintf(s + k, cap - k, "%s:%llu:", h->v[i].path,
                 (unsigned long long)h->v[i].line_number);
        k = strlen(s);
        memcpy(s + k, h->v[i].line, h->v[i].line_len);
        s[k + h->v[i].line_len] = '\n';
        s[k + h->v[i].line_len + 1] = '\0';
    }
    return s;
}

static void expect(struct fixture *f, const char *pattern, char *const *include,
                   size_t ninclude, const char *want)
{
    struct hits h;
    char *got;

    assert_int_equal(run(f, pattern, include, ninclude, &h), GREP_DONE);
    got = render(&h);
    if (strcmp(got, want) != 0)
        fail_msg("pattern \"%s\":\n--- got\n%s--- want\n%s", pattern, got, want);
    free(got);
    hits_clear(&h);
}

static void test_the_runner_ops_example_finds_two_lines(void **state)
{
    struct fixture *f = *state;

    puts_file(f, "a.txt", "hello world\nfoo bar\nhello again");
    puts_file(f, "b.txt", "no match here");
    expect(f, "hello", NULL, 0, "./a.txt:1:hello world\n./a.txt:3:hello again\n");
}

static void test_smart_case_is_rgs(void **state)
{
    struct fixture *f = *state;

    puts_file(f, "a.txt", "Hello\nhello\nHELLO\n");
    expect(f, "hello", NULL, 0, "./a.txt:1:Hello\n./a.txt:2:hello\n./a.txt:3:HELLO\n");
    expect(f, "Hello", NULL, 0, "./a.txt:1:Hello\n");
    /* No literal at all: case-sensitive, so \p{Lu} keeps to uppercase. */
    expect(f, "^\\p{Lu}+$", NULL, 0, "./a.txt:3:HELLO\n");
    assert_false(grep_pattern_has_uppercase("hello"));
    assert_true(grep_pattern_has_uppercase("Hello"));
    assert_false(grep_pattern_has_uppercase("\\S+\\W\\D\\p{Lu}\\PL\\B"));
    assert_true(grep_pattern_has_uppercase("\\x41"));     /* an escaped literal 'A' */
    assert_true(grep_pattern_has_uppercase("[A-z]"));     /* a range's ends are literals */
    assert_false(grep_pattern_has_uppercase("[[:upper:]]"));
    assert_false(grep_pattern_has_uppercase("(?i)abc(?P<Name>x)"));
    assert_true(grep_pattern_has_uppercase("\xc3\x89t\xc3\xa9")); /* É */
    assert_false(grep_pattern_has_uppercase("(?x)a # Comment"));
}

static void test_hidden_files_are_skipped_unless_an_include_names_them(void **state)
{
    struct fixture *f = *state;
    char *all[] = {"*"};

    puts_file(f, ".dot.txt", "hello\n");
    puts_file(f, ".hid/x.txt", "hello\n");
    puts_file(f, "sub/.h", "hello\n");
    puts_file(f, "v.txt", "hello\n");
    expect(f, "hello", NULL, 0, "./v.txt:1:hello\n");
    expect(f, "hello", all, 1,
           "./.dot.txt:1:hello\n./.hid/x.txt:1:hello\n./sub/.h:1:hello\n./v.txt:1:hello\n");
}

static void test_binary_files_stop_at_the_fill_that_holds_a_nul(void **state)
{
    struct fixture *f = *state;
    static const char early[] = "hello\nhe\0llo\n";
    size_t len = 300000;
    char *big = malloc(len);

    assert_non_null(big);
    put(f, "a.bin", early, sizeof(early) - 1);
    /* 100 lines of "hello" + padding, a NUL far beyond the first 64 KiB. */
    for (size_t i = 0; i < len; i++)
        big[i] = i % 100 == 99 ? '\n' : i % 100 < 5 ? "hello"[i % 100] : 'x';
    big[200000] = '\0';
    put(f, "b.txt", big, len);
    put(f, "c.txt", "ab\nhello\0", 9); /* rg's first read is the 3-byte BOM peek */
    free(big);
    {
        struct hits h;

        assert_int_equal(run(f, "hello", NULL, 0, &h), GREP_DONE);
        /* b.txt: its lines up to the last '\n' before the fill that brought the NUL. */
        assert_true(h.n > 1000 && h.n < 2000);
        for (size_t i = 0; i < h.n; i++)
            assert_string_equal(h.v[i].path, "./b.txt");
        assert_int_equal(h.v[h.n - 1].line_number, h.n);
        hits_clear(&h);
    }
    expect(f, "ab", NULL, 0, "./c.txt:1:ab\n");
}

static void test_ignore_files_and_their_precedence(void **state)
{
    struct fixture *f = *state;
    char git[PATH_MAX + 8];

    puts_file(f, "a.log", "hello\n");
    puts_file(f, "keep.log", "hello\n");
    puts_file(f, "g.txt", "hello\n");
    puts_file(f, "sub/deep.log", "hello\n");
    puts_file(f, "sub/x.txt", "hello\n");
    puts_file(f, ".gitignore", "g.txt\n");
    /* No .git anywhere: .gitignore does not count. */
    expect(f, "hello", NULL, 0,
           "./a.log:1:hello\n./g.txt:1:hello\n./keep.log:1:hello\n./sub/deep.log:1:hello\n"
           "./sub/x.txt:1:hello\n");
    snprintf(git, sizeof(git), "%s/.git", f->dir);
    assert_int_equal(mkdir(git, 0755), 0);
    puts_file(f, ".ignore", "*.log\n");
    puts_file(f, ".rgignore", "!keep.log\n");  /* .rgignore beats .ignore */
    puts_file(f, "sub/.ignore", "!deep.log\n"); /* the deeper .ignore beats the root's */
    puts_file(f, "sub/.gitignore", "x.txt\n");
    expect(f, "hello", NULL, 0, "./keep.log:1:hello\n./sub/deep.log:1:hello\n");
    /* A .git above the root counts too (rg looks even with --no-ignore-parent). */
    assert_int_equal(rmdir(git), 0);
    snprintf(git, sizeof(git), "%s/../.git", f->dir);
    assert_int_equal(mkdir(git, 0755), 0);
    expect(f, "hello", NULL, 0, "./keep.log:1:hello\n./sub/deep.log:1:hello\n");
    /* A whitelist in an ignore file lets a hidden file through. */
    puts_file(f, ".env", "hello\n");
    puts_file(f, ".ignore", "*.log\n!.env\n");
    expect(f, "hello", NULL, 0, "./.env:1:hello\n./keep.log:1:hello\n./sub/deep.log:1:hello\n");
}

/* An ignore file past 64 MiB is passed over, never read into the runner's memory: here a
 * sparse one whose first line would ignore a.txt. */
static void test_a_huge_ignore_file_is_passed_over(void **state)
{
    struct fixture *f = *state;
    char path[PATH_MAX + 16];
    int fd;

    puts_file(f, "a.txt", "needle\n");
    puts_file(f, ".ignore", "a.txt\n");
    expect(f, "needle", NULL, 0, "");
    snprintf(path, sizeof(path), "%s/.ignore", f->dir);
    assert_true((fd = open(path, O_WRONLY)) >= 0);
    assert_int_equal(ftruncate(fd, 64 * 1024 * 1024 + 1), 0);
    close(fd);
    expect(f, "needle", NULL, 0, "./a.txt:1:needle\n");
}

/* A line past the engine's 256 MiB is where its file is left: the matches before it
 * stand, the other files are searched, and the answer says it is incomplete. */
static void test_an_endless_line_ends_its_file_and_says_truncated(void **state)
{
    struct fixture *f = *state;
    static char chunk[1 << 20];
    char path[PATH_MAX + 16], *got;
    struct hits h;
    int fd;

    puts_file(f, "b.txt", "needle\n");
    snprintf(path, sizeof(path), "%s/long.txt", f->dir);
    assert_true((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) >= 0);
    assert_int_equal(write(fd, "needle first\n", 13), 13);
    memset(chunk, 'a', sizeof(chunk));
    for (int i = 0; i < 300; i++)
        assert_int_equal(write(fd, chunk, sizeof(chunk)), (ssize_t)sizeof(chunk));
    close(fd);
    assert_int_equal(run(f, "needle", NULL, 0, &h), GREP_TRUNCATED);
    got = render(&h);
    assert_string_equal(got, "./b.txt:1:needle\n./long.txt:1:needle first\n");
    free(got);
    hits_clear(&h);
}

static void test_include_globs_and_their_negations(void **state)
{
    struct fixture *f = *state;
    char *go[] = {"*.go"}, *not_txt[] = {"!*.txt"}, *both[] = {"*.go", "!sub/**"},
         *bad[] = {"{a,b"};

    puts_file(f, "a.txt", "hello\n");
    puts_file(f, "m.go", "hello\n");
    puts_file(f, "sub/x.go", "hello\n");
    puts_file(f, "sub/y.txt", "hello\n");
    expect(f, "hello", go, 1, "./m.go:1:hello\n./sub/x.go:1:hello\n");
    expect(f, "hello", not_txt, 1, "./m.go:1:hello\n./sub/x.go:1:hello\n");
    expect(f, "hello", both, 2, "./m.go:1:hello\n");
    {
        struct hits h;

        assert_int_equal(run(f, "hello", bad, 1, &h), GREP_INVALID_PATTERN);
        assert_int_equal(h.n, 0);
    }
}

static void test_a_pattern_starting_with_a_dash_is_a_pattern(void **state)
{
    struct fixture *f = *state;

    puts_file(f, "a.txt", "x -foo y\n--pre=/bin/sh\nplain\n");
    expect(f, "-foo", NULL, 0, "./a.txt:1:x -foo y\n");
    expect(f, "--pre=/bin/sh", NULL, 0, "./a.txt:2:--pre=/bin/sh\n");
}

static void test_crlf_lines_keep_their_cr(void **state)
{
    struct fixture *f = *state;
    struct hits h;

    puts_file(f, "a.txt", "hello\r\nworld\r\n");
    assert_int_equal(run(f, "hello", NULL, 0, &h), GREP_DONE);
    assert_int_equal(h.n, 1);
    assert_int_equal(h.v[0].line_len, 6);
    assert_memory_equal(h.v[0].line, "hello\r", 6);
    hits_clear(&h);
    expect(f, "o$", NULL, 0, ""); /* '$' is before '\n' only, as in rg */
}

static void test_invalid_utf8_in_names_and_content(void **state)
{
    struct fixture *f = *state;

    put(f, "b\xff.txt", "hello \xfe\xff there\n", 15);
    expect(f, "hello", NULL, 0, "./b\xff.txt:1:hello \xfe\xff there\n");
    expect(f, "there$", NULL, 0, "./b\xff.txt:1:hello \xfe\xff there\n");
    /* A leading ".*" must still find a later start past the invalid bytes. */
    expect(f, ".*there", NULL, 0, "./b\xff.txt:1:hello \xfe\xff there\n");
}

static void test_utf16_and_boms_are_read_as_rg_reads_them(void **state)
{
    struct fixture *f = *state;

    put(f, "a.txt", "\xef\xbb\xbfhello\n", 9);
    put(f, "b.txt", "\xff\xfeh\0i\0\n\0", 8);
    put(f, "c.txt", "\xfe\xff\0h\0i\0\n", 8);
    expect(f, "^h", NULL, 0, "./a.txt:1:hello\n./b.txt:1:hi\n./c.txt:1:hi\n");
}

static void test_patterns_rg_refuses_are_invalid(void **state)
{
    struct fixture *f = *state;
    static const char *const bad[] = {
        "(?=a)", "(?!a)", "(?<=a)b", "(?<!a)b", "(a)\\1", "\\k<n>", "\\g1", "(?>a)", "\\Ka",
        "(?R)", "(?1)", "(?(1)a|b)", "(?C1)", "\\/", "\\Q.\\E", "x{", "{", "x{,3}", "(?<n>x)",
        "\\n", "[\\n]", "a|\\x0A", "[a&&b]", "\\P{Any}", "\\p{Xan}", "(?n)a", "\\e", "\\Z",
        "(*UTF)a", "(?#c)", "[[:alpha:]", "a)", "(a", "\\", "\\xZZ", "\\x{D800}"};
    static const char *const good[] = {
        "[a-c]", "\\d", "\\bword\\b", "(?i)a", "(?P<n>x)", "x{2,3}", "a++", "a**", "a{2}{3}",
        "[a-z&&[^aeiou]]", "[[:alpha:]]", "\\p{Greek}", "\\u{41}", "(?x) a # c", "x{2, 3}",
        "^*", "[^\\n]", "(?i)[a&&A]", ""};

    puts_file(f, "a.txt", "a\n");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct hits h;
        int r = run(f, bad[i], NULL, 0, &h);

        if (r != GREP_INVALID_PATTERN)
            fail_msg("\"%s\": %d, want GREP_INVALID_PATTERN", bad[i], r);
        hits_clear(&h);
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct hits h;
        int r = run(f, good[i], NULL, 0, &h);

        if (r != GREP_DONE)
            fail_msg("\"%s\": %d, want GREP_DONE", good[i], r);
        hits_clear(&h);
    }
}

/* Each "~~" writes both of its sides twice: chained, they double the translation every
 * time. A few are translated; 20 would write 2^20 copies of the first side, over
 * GREP_RX_OUT_MAX, and are refused as too large (without the cap, a 120-byte pattern that
 * fuzz_greprx found ran the runner out of memory). */
static void test_chained_set_operations_are_refused_as_too_large(void **state)
{
    char pattern[256] = "[a";
    struct grep_rx rx;

    (void)state;
    for (int i = 0; i < 3; i++)
        strcat(pattern, "~~b");
    strcat(pattern, "]");
    assert_int_equal(grep__rx_translate(pattern, &rx), 0);
    free(rx.pcre);
    strcpy(pattern, "[a");
    for (int i = 0; i < 20; i++)
        strcat(pattern, "~~b");
    strcat(pattern, "]");
    assert_int_equal(grep__rx_translate(pattern, &rx), ERR_INVALID);
    assert_null(rx.pcre);
}

static void on_alarm(int sig)
{
    (void)sig;
    _exit(99); /* the search blocked */
}

static void test_a_fifo_and_symlinks_are_never_followed_or_opened(void **state)
{
    struct fixture *f = *state;
    char path[PATH_MAX + 32], target[PATH_MAX + 32];

    puts_file(f, "a.txt", "hello\n");
    puts_file(f, "real/in.txt", "hello\n");
    snprintf(path, sizeof(path), "%s/fifo", f->dir);
    assert_int_equal(mkfifo(path, 0644), 0);
    snprintf(path, sizeof(path), "%s/link.txt", f->dir);
    assert_int_equal(symlink("a.txt", path), 0);
    snprintf(path, sizeof(path), "%s/linkdir", f->dir);
    assert_int_equal(symlink("real", path), 0);
    snprintf(target, sizeof(target), "%s/../outside.txt", f->dir);
    puts_file(f, "../outside.txt", "hello\n");
    snprintf(path, sizeof(path), "%s/out.txt", f->dir);
    assert_int_equal(symlink(target, path), 0);
    signal(SIGALRM, on_alarm);
    alarm(10);
    expect(f, "hello", NULL, 0, "./a.txt:1:hello\n./real/in.txt:1:hello\n");
    alarm(0);
}

static void test_cancel_and_the_callbacks_stop(void **state)
{
    struct fixture *f = *state;
    struct hits h;

    puts_file(f, "a.txt", "hello\nhello\nhello\n");
    puts_file(f, "b.txt", "hello\n");
    /* The callback says stop: nothing more is reported. */
    memset(&h, 0, sizeof(h));
    h.stop_after = 2;
    assert_int_equal(grep_builtin_run(&f->root, "hello", NULL, 0, &f->cancel, collect, &h),
                     GREP_STOPPED);
    assert_int_equal(h.n, 2);
    hits_clear(&h);
    /* Cancelled before it starts. */
    atomic_store(&f->cancel, true);
    assert_int_equal(run(f, "hello", NULL, 0, &h), GREP_CANCELLED);
    assert_int_equal(h.n, 0);
    hits_clear(&h);
    /* Cancelled while it runs: the next file is not searched. */
    atomic_store(&f->cancel, false);
    memset(&h, 0, sizeof(h));
    h.cancel_after_first = &f->cancel;
    assert_int_equal(grep_builtin_run(&f->root, "hello", NULL, 0, &f->cancel, collect, &h),
                     GREP_CANCELLED);
    assert_int_equal(h.n, 3); /* a.txt's lines: the first chunk was already being searched */
    hits_clear(&h);
}

static void test_the_translation_keeps_rgs_meaning(void **state)
{
    static const struct {
        const char *rg, *pcre;
    } cases[] = {
        {"a++", "(?:a+)+"},
        {"a{2}{3}", "(?:a{2}){3}"},
        {"[a-c]x", "[a-c]x"},
        {"[[:digit:]]", "[0-9]"},
        {"(?x) a b # c", "ab"},
        {"(?i-x:a)", "(?i:a)"},
        {"(?P<n>a)", "(a)"},
        {"\\x41", "A"},
        {"^*", "(?:^)*"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct grep_rx rx;

        assert_int_equal(grep__rx_translate(cases[i].rg, &rx), 0);
        if (strcmp(rx.pcre, cases[i].pcre) != 0)
            fail_msg("\"%s\" -> \"%s\", want \"%s\"", cases[i].rg, rx.pcre, cases[i].pcre);
        free(rx.pcre);
    }
}

/* ---- the differential check against rg 13 ---- */

/* Runs rg as the rg engine does, in f's root; its match events into h. false when rg is
 * absent. */
static bool rg_run(struct fixture *f, const char *pattern, char *const *include,
                   size_t ninclude, struct hits *h)
{
    char *argv[32], globs[8][256], *out = NULL;
    size_t n = 0, len = 0, cap = 0;
    int fds[2], status;
    pid_t pid;

    memset(h, 0, sizeof(*h));
    if (access(RG, X_OK) != 0)
        return false;
    argv[n++] = RG;
    argv[n++] = "--json";
    argv[n++] = "--no-config";
    argv[n++] = "--sort=path";
    argv[n++] = "--smart-case";
    argv[n++] = "--no-ignore-parent";
    argv[n++] = "--no-ignore-global";
    argv[n++] = "--no-ignore-exclude";
    for (size_t i = 0; i < ninclude && i < 8; i++) {
        snprintf(globs[i], sizeof(globs[i]), "--glob=%s", include[i]);
        argv[n++] = globs[i];
    }
    argv[n++] = "-e";
    argv[n++] = (char *)pattern;
    argv[n++] = ".";
    argv[n] = NULL;
    assert_int_equal(pipe(fds), 0);
    assert_true((pid = fork()) >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);

        dup2(fds[1], 1);
        dup2(devnull, 2);
        close(fds[0]);
        if (chdir(f->dir) != 0)
            _exit(127);
        execv(RG, argv);
        _exit(127);
    }
    close(fds[1]);
    for (;;) {
        ssize_t got;

        if (cap - len < 65536) {
            cap = cap ? cap * 2 : 1 << 20;
            assert_non_null(out = realloc(out, cap));
        }
        if ((got = read(fds[0], out + len, cap - len - 1)) <= 0)
            break;
        len += (size_t)got;
    }
    close(fds[0]);
    waitpid(pid, &status, 0);
    out[len] = '\0';
    for (char *line = out, *nl; *line != '\0'; line = nl + 1) {
        json_t *ev, *data;
        const char *type;

        assert_non_null(nl = strchr(line, '\n'));
        *nl = '\0';
        assert_non_null(ev = json_loads(line, 0, NULL));
        type = json_string_value(json_object_get(ev, "type"));
        if (type != NULL && strcmp(type, "match") == 0) {
            json_t *path, *lines;
            char *p[2];
            size_t plen[2];

            data = json_object_get(ev, "data");
            path = json_object_get(data, "path");
            lines = json_object_get(data, "lines");
            for (int k = 0; k < 2; k++) {
                json_t *o = k == 0 ? path : lines, *t = json_object_get(o, "text");

                if (t != NULL) {
                    plen[k] = json_string_length(t);
                    p[k] = dup_bytes(json_string_value(t), plen[k]);
                } else {
                    const char *b64 = json_string_value(json_object_get(o, "bytes"));
                    size_t blen = strlen(b64), bad;

                    assert_non_null(p[k] = malloc(blen + 1));
                    assert_int_equal(base64_decode_go(b64, blen, (uint8_t *)p[k], &plen[k], &bad),
                                     0);
                }
            }
            if (plen[1] > 0 && p[1][plen[1] - 1] == '\n')
                plen[1]--;
            hits_add(h, p[0], plen[0],
                     (uint64_t)json_integer_value(json_object_get(data, "line_number")), p[1],
                     plen[1]);
            free(p[0]);
            free(p[1]);
        }
        json_decref(ev);
    }
    free(out);
    return true;
}

static void differ(struct fixture *f, const char *pattern, char *const *include, size_t ninclude)
{
    struct hits ours, theirs;
    int r = run(f, pattern, include, ninclude, &ours);

    assert_true(r == GREP_DONE || r == GREP_INVALID_PATTERN);
    if (!rg_run(f, pattern, include, ninclude, &theirs)) {
        hits_clear(&ours);
        skip();
    }
    if (ours.n != theirs.n)
        fail_msg("pattern \"%s\" (%zu includes): %zu matches, rg %zu", pattern, ninclude, ours.n,
                 theirs.n);
    for (size_t i = 0; i < ours.n; i++) {
        const struct hit *a = &ours.v[i], *b = &theirs.v[i];

        if (a->path_len != b->path_len || memcmp(a->path, b->path, a->path_len) != 0 ||
            a->line_number != b->line_number || a->line_len != b->line_len ||
            memcmp(a->line, b->line, a->line_len) != 0)
            fail_msg("pattern \"%s\": match %zu is %s:%llu, rg's %s:%llu", pattern, i, a->path,
                     (unsigned long long)a->line_number, b->path,
                     (unsigned long long)b->line_number);
    }
    hits_clear(&ours);
    hits_clear(&theirs);
}

static void build_mixed_tree(struct fixture *f)
{
    char git[PATH_MAX + 8];
    size_t len = 200100;
    char *big = malloc(len);

    assert_non_null(big);
    puts_file(f, "a.txt", "hello world\nfoo bar\nhello again");
    puts_file(f, "b.txt", "no match here");
    puts_file(f, "Caps.md", "Hello World\nHELLO\nhello\n");
    puts_file(f, "crlf.txt", "hello\r\nfoo\r\n\r\n");
    puts_file(f, "we:ird.txt", "x:1:y hello\n");
    puts_file(f, ".hidden.txt", "hello hidden\n");
    puts_file(f, ".hdir/in.txt", "hello in hidden dir\n");
    puts_file(f, "sub/x.go", "package main // hello\nfunc Hello() {}\n");
    puts_file(f, "sub/deep/y.log", "hello log\n");
    puts_file(f, "sub/deep/keep.log", "hello kept\n");
    puts_file(f, "sub/.ignore", "*.log\n!keep.log\n");
    puts_file(f, "node_modules/m.js", "hello module\n");
    puts_file(f, ".gitignore", "node_modules/\n/b.txt\nn.md\n"); /* not in nested/: a repo */
    puts_file(f, "nested/.git/HEAD", "x\n");
    puts_file(f, "nested/.gitignore", "*.txt\n");
    puts_file(f, "nested/n.txt", "hello nested\n");
    puts_file(f, "nested/n.md", "hello nested md\n");
    put(f, "bin.dat", "hello\0world\n", 12);
    put(f, "utf16.txt", "\xff\xfeh\0e\0l\0l\0o\0\n\0", 14);
    put(f, "bom.txt", "\xef\xbb\xbfhello bom\n", 13);
    put(f, "\xc3\xa9t\xc3\xa9.txt", "h\xc3\xa9llo \xce\xa9 K \xe2\x84\xaa k\n", 18);
    put(f, "bad\xff.txt", "hello \xff\xfe bytes\n", 15);
    for (size_t i = 0; i < len; i++)
        big[i] = i % 61 == 60 ? '\n' : "hello world 0123456789 abc"[i % 61 % 26];
    big[200000] = '\0';
    put(f, "late-nul.txt", big, len);
    free(big);
    snprintf(git, sizeof(git), "%s/.git", f->dir);
    assert_int_equal(mkdir(git, 0755), 0);
}

static void test_answers_are_rgs_on_a_mixed_tree(void **state)
{
    struct fixture *f = *state;
    static const char *const patterns[] = {
        "hello", "Hello", "HELLO", "", "^$", "o$", "\\bhello\\b", "h\\w+o", "[[:upper:]]",
        "\\p{Greek}", "k", "K", "(?i)k", "-foo", "x:1", "\\d{3,}", "[^a-z ]+", "world$",
        "\\Ahello", "hel+o\\z", "a++", "l{2}{1}", "[a-z&&[^aeiou]]{4}", "(?=a)", "\\/",
        "\\x{e9}", "\\u{3A9}", ".*bytes", "(?x) hel lo # comment", "h.llo"};
    char *go[] = {"*.go"}, *all[] = {"*"}, *not_log[] = {"!*.log", "!sub/x.go"},
         *txt_md[] = {"*.{txt,md}", "!a.txt"}, *sub[] = {"sub/**"}, *hidden[] = {".h*"};
    struct {
        char **v;
        size_t n;
    } includes[] = {{NULL, 0}, {go, 1}, {all, 1}, {not_log, 2}, {txt_md, 2}, {sub, 1},
                    {hidden, 1}};

    build_mixed_tree(f);
    for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++)
        differ(f, patterns[i], NULL, 0);
    for (size_t i = 0; i < sizeof(includes) / sizeof(includes[0]); i++) {
        differ(f, "hello", includes[i].v, includes[i].n);
        differ(f, "", includes[i].v, includes[i].n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_the_runner_ops_example_finds_two_lines, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_smart_case_is_rgs, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_hidden_files_are_skipped_unless_an_include_names_them, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_files_stop_at_the_fill_that_holds_a_nul,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_ignore_files_and_their_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_huge_ignore_file_is_passed_over, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_endless_line_ends_its_file_and_says_truncated, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_include_globs_and_their_negations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_pattern_starting_with_a_dash_is_a_pattern, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_crlf_lines_keep_their_cr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_utf8_in_names_and_content, setup, teardown),
        cmocka_unit_test_setup_teardown(test_utf16_and_boms_are_read_as_rg_reads_them, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_patterns_rg_refuses_are_invalid, setup, teardown),
        cmocka_unit_test(test_chained_set_operations_are_refused_as_too_large),
        cmocka_unit_test_setup_teardown(test_a_fifo_and_symlinks_are_never_followed_or_opened,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_and_the_callbacks_stop, setup, teardown),
        cmocka_unit_test(test_the_translation_keeps_rgs_meaning),
        cmocka_unit_test_setup_teardown(test_answers_are_rgs_on_a_mixed_tree, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
