/*
 * Unit tests for src/runner/outspill.c (RUNNER-OPS.md section 4): Go's <output_truncated>
 * text byte for byte, the spill file (name, content, mode), a save that cannot be made
 * (".outputs" a symlink out of the root, or a file), bash's skip rule, and the pruning
 * (by age, by total oldest first, past the batch, never anything but regular spill files)
 * in a real temporary workspace, with the pool work driven by a real uv loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "outspill.h"
#include "wspath.h"

#define WEEK_MS (7ull * 24 * 3600 * 1000)
#define GIB (1ull << 30)

struct fixture {
    uv_loop_t loop;
    struct wspath_root root;
    struct outspill spill;
    char dir[PATH_MAX];     /* the workspace root */
    char outside[PATH_MAX]; /* a directory beside it, outside the root */
};

static void make_dir(char *out, const char *tmpl_in)
{
    char tmpl[64];

    snprintf(tmpl, sizeof(tmpl), "%s", tmpl_in);
    assert_non_null(mkdtemp(tmpl));
    assert_non_null(realpath(tmpl, out));
}

static void start(struct fixture *f, uint64_t max_age_ms, uint64_t max_total)
{
    assert_int_equal(outspill_init(&f->spill, &f->loop, &f->root, max_age_ms, max_total), 0);
    /* The start-up prune is on the pool; the timer is unref'd, so this returns once it is
     * done. */
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    make_dir(f->dir, "/tmp/credbroker-outspill-XXXXXX");
    make_dir(f->outside, "/tmp/credbroker-outspill-out-XXXXXX");
    if (uv_loop_init(&f->loop) != 0 || wspath_root_open(&f->root, f->dir) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[2 * PATH_MAX + 32];

    outspill_close(&f->spill);
    if (uv_run(&f->loop, UV_RUN_DEFAULT) != 0 || uv_loop_close(&f->loop) != 0)
        return -1;
    wspath_root_close(&f->root);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", f->dir, f->outside);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* ---- helpers ---- */

static uint8_t *filled(size_t len, char c)
{
    uint8_t *p = malloc(len + 1);

    assert_non_null(p);
    memset(p, c, len);
    p[len] = '\0';
    return p;
}

/* The expected text, put together piece by piece. */
struct text {
    char *p;
    size_t n;
};

static void put(struct text *t, const void *data, size_t len)
{
    assert_non_null(t->p = realloc(t->p, t->n + len + 1));
    memcpy(t->p + t->n, data, len);
    t->n += len;
}

static void put_str(struct text *t, const char *s)
{
    put(t, s, strlen(s));
}

static void assert_text(const struct outspill_result *r, struct text *want)
{
    if (r->content_len != want->n || memcmp(r->content, want->p, want->n) != 0) {
        fprintf(stderr, "got  %zu: %.300s\nwant %zu: %.300s\n", r->content_len, r->content, want->n,
                want->p);
        fail_msg("the <output_truncated> text differs");
    }
    free(want->p);
    want->p = NULL;
    want->n = 0;
}

static char *read_file(const struct fixture *f, const char *rel, size_t *len, mode_t *mode)
{
    char path[PATH_MAX + 64];
    struct stat st;
    char *data;
    int fd;

    snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
    assert_true((fd = open(path, O_RDONLY | O_NOFOLLOW)) >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    assert_non_null(data = malloc((size_t)st.st_size + 1));
    assert_int_equal(read(fd, data, (size_t)st.st_size), st.st_size);
    close(fd);
    *len = (size_t)st.st_size;
    if (mode != NULL)
        *mode = st.st_mode & 07777;
    return data;
}

/* A file of size bytes at rel (under the root), its mtime age_s seconds ago. */
static void plant(const struct fixture *f, const char *rel, size_t size, long age_s)
{
    char path[PATH_MAX + 64];
    struct timespec ts[2];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
    assert_non_null(fp = fopen(path, "w"));
    for (size_t i = 0; i < size; i++)
        fputc('x', fp);
    fclose(fp);
    ts[0].tv_sec = ts[1].tv_sec = time(NULL) - age_s;
    ts[0].tv_nsec = ts[1].tv_nsec = 0;
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static bool exists(const struct fixture *f, const char *rel)
{
    char path[PATH_MAX + 64];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
    return lstat(path, &st) == 0;
}

static void outputs_dir(const struct fixture *f)
{
    char path[PATH_MAX + 16];

    snprintf(path, sizeof(path), "%s/.outputs", f->dir);
    assert_int_equal(mkdir(path, 0755), 0);
}

static size_t count_outputs(const struct fixture *f)
{
    char cmd[PATH_MAX + 64];
    unsigned n = 0;
    FILE *p;

    snprintf(cmd, sizeof(cmd), "ls -A '%s/.outputs' | wc -l", f->dir);
    assert_non_null(p = popen(cmd, "r"));
    assert_int_equal(fscanf(p, "%u", &n), 1);
    pclose(p);
    return n;
}

/* ---- the text, and the spill file ---- */

static void test_outspill_keeps_content_of_exactly_30000_bytes(void **state)
{
    struct fixture *f = *state;
    uint8_t *in = filled(OUTSPILL_MAX_INLINE, 'a');
    struct outspill_result r;

    start(f, WEEK_MS, GIB);
    in[7] = '\0'; /* any bytes */
    assert_int_equal(outspill_process(&f->spill, "bash", in, OUTSPILL_MAX_INLINE, &r), 0);
    assert_int_equal(r.content_len, OUTSPILL_MAX_INLINE);
    assert_memory_equal(r.content, in, OUTSPILL_MAX_INLINE);
    assert_false(r.truncated);
    assert_null(r.file_path);
    assert_int_equal(r.total_size, OUTSPILL_MAX_INLINE);
    assert_false(exists(f, ".outputs"));
    outspill_result_free(&r);
    assert_int_equal(outspill_process(&f->spill, "grep", in, 0, &r), 0);
    assert_int_equal(r.content_len, 0);
    assert_string_equal(r.content, "");
    assert_int_equal(r.total_size, 0);
    outspill_result_free(&r);
    outspill_result_free(NULL);
    free(in);
}

static void test_outspill_spills_a_30001_byte_line_with_go_text_and_file(void **state)
{
    struct fixture *f = *state;
    uint8_t *in = filled(OUTSPILL_MAX_INLINE + 1, 'a');
    struct outspill_result r;
    struct text want = {0};
    regex_t re;
    time_t before = time(NULL), after, secs;
    char *saved, *us;
    size_t len;
    mode_t mode;

    start(f, WEEK_MS, GIB);
    assert_int_equal(outspill_process(&f->spill, "bash", in, OUTSPILL_MAX_INLINE + 1, &r), 0);
    after = time(NULL);
    assert_true(r.truncated);
    assert_int_equal(r.total_size, 30001);
    assert_non_null(r.file_path);
    assert_int_equal(
        regcomp(&re, "^\\.outputs/bash_[0-9a-f]{8}_[0-9]+\\.txt$", REG_EXTENDED | REG_NOSUB), 0);
    assert_int_equal(regexec(&re, r.file_path, 0, NULL, 0), 0);
    regfree(&re);
    us = strrchr(r.file_path, '_');
    secs = (time_t)strtoll(us + 1, NULL, 10);
    assert_true(secs >= before && secs <= after);

    put_str(&want, "<output_truncated>\nOutput too large (30001 chars, 1 lines). Full content "
                   "saved to: ");
    put_str(&want, r.file_path);
    put_str(&want, "\n\nPreview (first 1 lines):\n```\n");
    put(&want, in, 8000);
    put_str(&want, "\n... [preview truncated]\n```\n\nTo read more: read(\"");
    put_str(&want, r.file_path);
    put_str(&want, "\", offset=1, limit=100)\n</output_truncated>");
    assert_text(&r, &want);
    assert_int_equal(r.content[r.content_len], '\0');

    saved = read_file(f, r.file_path, &len, &mode);
    assert_int_equal(len, 30001);
    assert_memory_equal(saved, in, len);
    assert_int_equal(mode, 0644);          /* umask 022, set in main */
    assert_int_equal(count_outputs(f), 1); /* no temporary file left beside it */
    free(saved);
    outspill_result_free(&r);
    free(in);
}

static void test_outspill_previews_20_of_100_lines(void **state)
{
    struct fixture *f = *state;
    uint8_t *in = filled(100 * 350 - 1, 'x');
    struct outspill_result r;
    struct text want = {0};

    start(f, WEEK_MS, GIB);
    /* 100 lines of 349 bytes, no newline at the end: 34999 bytes. */
    for (int i = 0; i < 100; i++) {
        char tag[8];

        snprintf(tag, sizeof(tag), "L%03d", i + 1);
        memcpy(in + 350 * i, tag, 4);
        if (i < 99)
            in[350 * i + 349] = '\n';
    }
    assert_int_equal(outspill_process(&f->spill, "grep", in, 34999, &r), 0);
    put_str(&want, "<output_truncated>\nOutput too large (34999 chars, 100 lines). Full "
                   "content saved to: ");
    put_str(&want, r.file_path);
    put_str(&want, "\n\nPreview (first 20 lines):\n```\n");
    put(&want, in, 20 * 350 - 1); /* lines 1 to 20, without the 20th's newline */
    put_str(&want, "\n```\n\nTo read more: read(\"");
    put_str(&want, r.file_path);
    put_str(&want, "\", offset=20, limit=100)\n</output_truncated>");
    assert_text(&r, &want);
    assert_non_null(strstr(r.file_path, ".outputs/grep_"));
    outspill_result_free(&r);
    free(in);
}

static void test_outspill_previews_all_5_lines_cut_at_8000_bytes(void **state)
{
    struct fixture *f = *state;
    static const char head[] = "one\ntwo\nthree\nfour\n";
    size_t len = sizeof(head) - 1 + 30000;
    uint8_t *in = filled(len, 'z');
    struct outspill_result r;
    struct text want = {0};

    start(f, WEEK_MS, GIB);
    memcpy(in, head, sizeof(head) - 1);
    assert_int_equal(outspill_process(&f->spill, "webfetch", in, len, &r), 0);
    put_str(&want, "<output_truncated>\nOutput too large (30019 chars, 5 lines). Full content "
                   "saved to: ");
    put_str(&want, r.file_path);
    put_str(&want, "\n\nPreview (first 5 lines):\n```\none\ntwo\nthree\nfour\n");
    put(&want, in + sizeof(head) - 1, 8000 - (sizeof(head) - 1));
    put_str(&want, "\n... [preview truncated]\n```\n\nTo read more: read(\"");
    put_str(&want, r.file_path);
    put_str(&want, "\", offset=5, limit=100)\n</output_truncated>");
    assert_text(&r, &want);
    outspill_result_free(&r);
    free(in);
}

static void test_outspill_cuts_a_long_preview_inside_a_utf8_character(void **state)
{
    struct fixture *f = *state;
    size_t len = 1 + 2 * 20000; /* "a" then 20000 x U+00E9 (C3 A9), then lines */
    uint8_t *in = filled(len + 100, '\n');
    struct outspill_result r;
    struct text want = {0};

    start(f, WEEK_MS, GIB);
    in[0] = 'a';
    for (size_t i = 0; i < 20000; i++) {
        in[1 + 2 * i] = 0xc3;
        in[2 + 2 * i] = 0xa9;
    }
    len += 100; /* 100 newlines: 101 lines, the first 20 are the long one and 19 empty */
    assert_int_equal(outspill_process(&f->spill, "mcp", in, len, &r), 0);
    put_str(&want, "<output_truncated>\nOutput too large (40101 chars, 101 lines). Full "
                   "content saved to: ");
    put_str(&want, r.file_path);
    put_str(&want, "\n\nPreview (first 20 lines):\n```\n");
    put(&want, in, 8000); /* ends in 0xc3, the first byte of a character: left raw */
    put_str(&want, "\n... [preview truncated]\n```\n\nTo read more: read(\"");
    put_str(&want, r.file_path);
    put_str(&want, "\", offset=20, limit=100)\n</output_truncated>");
    assert_int_equal(in[7999], 0xc3);
    assert_text(&r, &want);
    outspill_result_free(&r);
    free(in);
}

static void test_outspill_counts_a_trailing_newline_as_a_last_empty_line(void **state)
{
    struct fixture *f = *state;
    uint8_t *in = filled(30001, 'b');
    struct outspill_result r;

    start(f, WEEK_MS, GIB);
    in[30000] = '\n';
    assert_int_equal(outspill_process(&f->spill, "bash", in, 30001, &r), 0);
    assert_non_null(strstr(r.content, "(30001 chars, 2 lines)"));
    assert_non_null(strstr(r.content, "Preview (first 2 lines):\n```\nbbb"));
    assert_non_null(strstr(r.content, "offset=2, limit=100)"));
    outspill_result_free(&r);
    free(in);
}

/* The save-failure form: no path, no "To read more" line. */
static void assert_could_not_save(struct fixture *f, const char *prefix)
{
    uint8_t *in = filled(30001, 'c');
    struct outspill_result r;
    struct text want = {0};

    assert_int_equal(outspill_process(&f->spill, prefix, in, 30001, &r), 0);
    assert_true(r.truncated);
    assert_null(r.file_path);
    assert_int_equal(r.total_size, 30001);
    put_str(&want, "<output_truncated>\nOutput too large (30001 chars, 1 lines). Could not save "
                   "full content.\n\nPreview (first 1 lines):\n```\n");
    put(&want, in, 8000);
    put_str(&want, "\n... [preview truncated]\n```\n\n</output_truncated>");
    assert_text(&r, &want);
    outspill_result_free(&r);
    free(in);
}

static void test_outspill_cannot_save_through_a_symlink_out_of_the_root(void **state)
{
    struct fixture *f = *state;
    char link[PATH_MAX + 16], cmd[PATH_MAX + 32];
    FILE *p;
    int n = -1;

    start(f, WEEK_MS, GIB);
    snprintf(link, sizeof(link), "%s/.outputs", f->dir);
    assert_int_equal(symlink(f->outside, link), 0);
    assert_could_not_save(f, "bash");
    snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", f->outside);
    assert_non_null(p = popen(cmd, "r"));
    assert_int_equal(fscanf(p, "%d", &n), 1);
    pclose(p);
    assert_int_equal(n, 0); /* nothing written outside */
    /* and the prune does not go there either */
    assert_true(outspill_prune(&f->spill, time(NULL)) < 0);
}

static void test_outspill_cannot_save_when_outputs_is_a_file(void **state)
{
    struct fixture *f = *state;

    start(f, WEEK_MS, GIB);
    plant(f, ".outputs", 3, 0);
    assert_could_not_save(f, "grep");
    assert_int_equal(outspill_prune(&f->spill, time(NULL)), 0);
}

static void test_outspill_creates_the_file_with_0644_under_the_umask(void **state)
{
    struct fixture *f = *state;
    uint8_t *in = filled(40000, 'd');
    struct outspill_result r;
    char *saved;
    size_t len;
    mode_t mode, old = umask(077);

    start(f, WEEK_MS, GIB);
    assert_int_equal(outspill_process(&f->spill, "bash", in, 40000, &r), 0);
    umask(old);
    saved = read_file(f, r.file_path, &len, &mode);
    assert_int_equal(mode, 0600); /* 0644 & ~077: the umask applies, as to Go's WriteFile */
    assert_int_equal(len, 40000);
    free(saved);
    outspill_result_free(&r);
    free(in);
}

/* ---- bash's skip rule ---- */

static void test_outspill_bash_skip_is_a_reader_and_a_spill_directory(void **state)
{
    (void)state;
    assert_true(outspill_bash_skip("cat .outputs/x"));
    assert_true(outspill_bash_skip("tail -n 5 .work/x"));
    assert_true(outspill_bash_skip("head .outputs\\x"));
    assert_true(outspill_bash_skip("less .work\\outputs\\x"));
    assert_true(outspill_bash_skip("echo hi; more foo .outputs/"));
    assert_true(outspill_bash_skip("bat .outputs/bash_1_2.txt"));
    assert_false(outspill_bash_skip("cat foo"));
    assert_false(outspill_bash_skip("grep .outputs/x"));
    assert_false(outspill_bash_skip("cat .outputs"));    /* no slash */
    assert_false(outspill_bash_skip("cat\t.outputs/x")); /* Go: "cat " with a space */
    assert_false(outspill_bash_skip(""));
}

/* ---- pruning ---- */

static void test_outspill_prunes_files_older_than_the_age(void **state)
{
    struct fixture *f = *state;

    start(f, 3600 * 1000, GIB);
    outputs_dir(f);
    plant(f, ".outputs/bash_aaaaaaaa_1.txt", 10, 7200);
    plant(f, ".outputs/grep_AbCd1234_1764921600.txt", 10, 3601);
    plant(f, ".outputs/webfetch_00000000_2.txt", 10, 3500);
    plant(f, ".outputs/mcp_zzzzzzzz_3.txt", 10, 0);
    assert_int_equal(outspill_prune(&f->spill, time(NULL)), 2);
    assert_false(exists(f, ".outputs/bash_aaaaaaaa_1.txt"));
    assert_false(exists(f, ".outputs/grep_AbCd1234_1764921600.txt"));
    assert_true(exists(f, ".outputs/webfetch_00000000_2.txt"));
    assert_true(exists(f, ".outputs/mcp_zzzzzzzz_3.txt"));
    assert_int_equal(outspill_prune(&f->spill, time(NULL)), 0);
    /* An hour later by the caller's clock, the rest are old too. */
    assert_int_equal(outspill_prune(&f->spill, time(NULL) + 3601), 2);
}

static void test_outspill_prunes_the_oldest_while_over_the_total(void **state)
{
    struct fixture *f = *state;

    start(f, WEEK_MS, 250);
    outputs_dir(f);
    plant(f, ".outputs/bash_00000005_1.txt", 100, 50);
    plant(f, ".outputs/bash_00000001_1.txt", 100, 10);
    plant(f, ".outputs/bash_00000004_1.txt", 100, 40);
    plant(f, ".outputs/bash_00000002_1.txt", 100, 20);
    plant(f, ".outputs/bash_00000003_1.txt", 100, 30);
    assert_int_equal(outspill_prune(&f->spill, time(NULL)), 3);
    assert_false(exists(f, ".outputs/bash_00000005_1.txt"));
    assert_false(exists(f, ".outputs/bash_00000004_1.txt"));
    assert_false(exists(f, ".outputs/bash_00000003_1.txt"));
    assert_true(exists(f, ".outputs/bash_00000002_1.txt"));
    assert_true(exists(f, ".outputs/bash_00000001_1.txt"));
    assert_int_equal(outspill_prune(&f->spill, time(NULL)), 0); /* 200 <= 250 */
}

static void test_outspill_prune_touches_only_regular_spill_files(void **state)
{
    struct fixture *f = *state;
    static const char *const others[] = {
        ".outputs/notes.txt",
        ".outputs/bash_1234567_1.txt",
        ".outputs/bash_123456789_1.txt",
        ".outputs/bash_aaaaaaaa_1.txt.bak",
        ".outputs/bash_aaaaaaaa_.txt",
        ".outputs/bash_aaaaaaaa_1x.txt",
        ".outputs/shell_aaaaaaaa_1.txt",
        ".outputs/BASH_aaaaaaaa_1.txt",
        ".outputs/.bash_aaaaaaaa_1.txt.part",
        ".outputs/grep_aaaa-aaa_1.txt",
        ".outputs/bash_aaaaaaaa_123456789012345678901.txt",
        "bash_aaaaaaaa_1.txt",
    };
    char path[PATH_MAX + 64], target[PATH_MAX + 64];
    struct timespec old[2] = {{.tv_sec = 1}, {.tv_sec = 1}};

    start(f, 1000, 0); /* everything matching goes, by age and by total */
    outputs_dir(f);
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        plant(f, others[i], 10, 86400);
    snprintf(path, sizeof(path), "%s/.outputs/grep_bbbbbbbb_1.txt", f->dir);
    assert_int_equal(mkdir(path, 0755), 0);
    /* A symlink named like a spill file, to a file outside the root: skipped (it is not a
     * spill file), so neither it nor its target goes. */
    snprintf(target, sizeof(target), "%s/precious", f->outside);
    assert_int_equal(close(open(target, O_WRONLY | O_CREAT, 0644)), 0);
    assert_int_equal(utimensat(AT_FDCWD, target, old, 0), 0);
    snprintf(path, sizeof(path), "%s/.outputs/mcp_cccccccc_1.txt", f->dir);
    assert_int_equal(symlink(target, path), 0);
    assert_int_equal(utimensat(AT_FDCWD, path, old, AT_SYMLINK_NOFOLLOW), 0);
    plant(f, ".outputs/bash_dddddddd_1.txt", 10, 86400); /* the one spill file */

    assert_int_equal(outspill_prune(&f->spill, time(NULL)), 1);
    assert_false(exists(f, ".outputs/bash_dddddddd_1.txt"));
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        assert_true(exists(f, others[i]));
    assert_true(exists(f, ".outputs/grep_bbbbbbbb_1.txt"));
    assert_true(exists(f, ".outputs/mcp_cccccccc_1.txt"));
    assert_int_equal(access(target, F_OK), 0);
}

static void test_outspill_prunes_past_its_batch_in_rounds(void **state)
{
    struct fixture *f = *state;
    char rel[64];

    start(f, WEEK_MS, 300);
    f->spill._prune_batch = 3; /* after the start-up prune: it is ours alone now */
    outputs_dir(f);
    for (int i = 0; i < 10; i++) {
        snprintf(rel, sizeof(rel), ".outputs/bash_%08d_1.txt", i);
        plant(f, rel, 100, 100 - i); /* 0 is the oldest */
    }
    assert_int_equal(outspill_prune(&f->spill, time(NULL)), 7);
    for (int i = 0; i < 10; i++) {
        snprintf(rel, sizeof(rel), ".outputs/bash_%08d_1.txt", i);
        assert_int_equal(exists(f, rel), i >= 7);
    }
}

static void test_outspill_prunes_a_directory_of_100000_files(void **state)
{
    struct fixture *f = *state;
    char path[PATH_MAX + 64];
    int dfd;

    start(f, WEEK_MS, 50000);
    f->spill._prune_batch = 10000; /* five rounds, 10,000 entries held at a time */
    outputs_dir(f);
    snprintf(path, sizeof(path), "%s/.outputs", f->dir);
    assert_true((dfd = open(path, O_RDONLY | O_DIRECTORY)) >= 0);
    for (int i = 0; i < 100000; i++) {
        time_t t = time(NULL) - 200000 + i; /* all younger than a week */
        struct timespec ts[2] = {{.tv_sec = t}, {.tv_sec = t}};
        char name[64];
        int fd;

        snprintf(name, sizeof(name), "grep_%08x_1.txt", (unsigned)i);
        assert_true((fd = openat(dfd, name, O_WRONLY | O_CREAT, 0644)) >= 0);
        assert_int_equal(write(fd, "x", 1), 1);
        assert_int_equal(futimens(fd, ts), 0);
        close(fd);
    }
    close(dfd);
    /* 100,000 bytes over a cap of 50,000: the 50,000 oldest go. */
    assert_int_equal(outspill_prune(&f->spill, time(NULL)), 50000);
    assert_false(exists(f, ".outputs/grep_0000c34f_1.txt")); /* 49999 */
    assert_true(exists(f, ".outputs/grep_0000c350_1.txt"));  /* 50000 */
    assert_int_equal(count_outputs(f), 50000);
}

static void test_outspill_save_over_the_total_prunes_but_spares_itself(void **state)
{
    struct fixture *f = *state;
    uint8_t *in = filled(30001, 'e');
    struct outspill_result r;

    outputs_dir(f);
    plant(f, ".outputs/bash_00000001_1.txt", 20000, 20);
    plant(f, ".outputs/bash_00000002_1.txt", 20000, 10);
    start(f, WEEK_MS, 45000); /* the start-up prune counts 40,000: under */
    assert_true(exists(f, ".outputs/bash_00000001_1.txt"));
    /* 70,001 > 45,000: the two old ones go; the new one alone is over too, but stays. */
    f->spill.max_total_bytes = 10000;
    assert_int_equal(outspill_process(&f->spill, "bash", in, 30001, &r), 0);
    assert_false(exists(f, ".outputs/bash_00000001_1.txt"));
    assert_false(exists(f, ".outputs/bash_00000002_1.txt"));
    assert_true(exists(f, r.file_path));
    outspill_result_free(&r);
    free(in);
}

static void test_outspill_start_up_prune_runs_on_the_pool(void **state)
{
    struct fixture *f = *state;

    outputs_dir(f);
    plant(f, ".outputs/mcp_aaaaaaaa_1.txt", 10, 7200);
    plant(f, ".outputs/mcp_bbbbbbbb_1.txt", 10, 0);
    start(f, 3600 * 1000, GIB);
    assert_false(exists(f, ".outputs/mcp_aaaaaaaa_1.txt"));
    assert_true(exists(f, ".outputs/mcp_bbbbbbbb_1.txt"));
    /* The timer is live but unref'd: the loop has nothing to keep it running. */
    assert_int_equal(uv_run(&f->loop, UV_RUN_NOWAIT), 0);
    assert_true(uv_is_active((uv_handle_t *)&f->spill._timer));
    assert_false(uv_has_ref((uv_handle_t *)&f->spill._timer));
}

/* ---- off the loop ---- */

struct done {
    int calls, status;
    char *content, *file_path;
    bool truncated;
};

static void on_done(struct outspill_result *r, int status, void *data)
{
    struct done *d = data;

    d->calls++;
    d->status = status;
    d->truncated = r->truncated;
    d->content = r->content; /* taken */
    r->content = NULL;
    d->file_path = r->file_path; /* taken */
    r->file_path = NULL;
}

static void test_outspill_queue_round_trip_on_a_loop(void **state)
{
    struct fixture *f = *state;
    uint8_t *in = filled(50000, 'g');
    struct done d = {0}, small = {0};
    char *saved;
    size_t len;

    start(f, WEEK_MS, GIB);
    assert_int_equal(outspill_queue(&f->loop, &f->spill, "bash", in, 50000, on_done, &d), 0);
    assert_int_equal(outspill_queue(&f->loop, &f->spill, "grep", in, 10, on_done, &small), 0);
    assert_int_equal(d.calls, 0); /* never from inside queue */
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.status, 0);
    assert_true(d.truncated);
    assert_non_null(strstr(d.content, "Output too large (50000 chars, 1 lines)."));
    saved = read_file(f, d.file_path, &len, NULL);
    assert_int_equal(len, 50000);
    assert_memory_equal(saved, in, len);
    assert_int_equal(small.calls, 1);
    assert_false(small.truncated);
    assert_null(small.file_path);
    assert_string_equal(small.content, "gggggggggg");
    free(saved);
    free(d.content);
    free(d.file_path);
    free(small.content);
    free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_outspill_keeps_content_of_exactly_30000_bytes),
        T(test_outspill_spills_a_30001_byte_line_with_go_text_and_file),
        T(test_outspill_previews_20_of_100_lines),
        T(test_outspill_previews_all_5_lines_cut_at_8000_bytes),
        T(test_outspill_cuts_a_long_preview_inside_a_utf8_character),
        T(test_outspill_counts_a_trailing_newline_as_a_last_empty_line),
        T(test_outspill_cannot_save_through_a_symlink_out_of_the_root),
        T(test_outspill_cannot_save_when_outputs_is_a_file),
        T(test_outspill_creates_the_file_with_0644_under_the_umask),
        T(test_outspill_bash_skip_is_a_reader_and_a_spill_directory),
        T(test_outspill_prunes_files_older_than_the_age),
        T(test_outspill_prunes_the_oldest_while_over_the_total),
        T(test_outspill_prune_touches_only_regular_spill_files),
        T(test_outspill_prunes_past_its_batch_in_rounds),
        T(test_outspill_prunes_a_directory_of_100000_files),
        T(test_outspill_save_over_the_total_prunes_but_spares_itself),
        T(test_outspill_start_up_prune_runs_on_the_pool),
        T(test_outspill_queue_round_trip_on_a_loop),
#undef T
    };

    umask(022);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
