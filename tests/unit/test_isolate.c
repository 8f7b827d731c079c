/*
 * Unit tests for the parent half of src/exec/isolate.c: secrets are known by the object
 * opened at start, not by their path. A rename of a parent or grandparent, a file
 * deleted and created again, a symlink swapped in for a parent: each is refused at the
 * next plan with the path that changed. A file we write (follows) is covered where it
 * now is instead. A working directory at or under a covered directory is found by
 * identity. The covers themselves need namespaces: tests/e2e/test_46_secret_covers.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "isolate.h"

struct fixture {
    char root[PATH_MAX]; /* realpath of a fresh directory */
    char conf[PATH_MAX + 16], file[PATH_MAX + 32];
};

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char tmpl[] = "/tmp/credbroker-isolate-XXXXXX";

    if (f == NULL || mkdtemp(tmpl) == NULL || realpath(tmpl, f->root) == NULL)
        return -1;
    snprintf(f->conf, sizeof(f->conf), "%s/conf", f->root);
    snprintf(f->file, sizeof(f->file), "%s/conf/config.yaml", f->root);
    if (mkdir(f->conf, 0700) != 0)
        return -1;
    write_text(f->file, "api_key: secret\n");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[PATH_MAX + 32];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s.moved'", f->root, f->root);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* isolate_plan_init's outcome for s, and the path it names when refused. */
static int plan(const struct isolate_secrets *s, const char **moved, struct isolate_plan *p)
{
    return isolate_plan_init(p, s, moved);
}

static void assert_refused(const struct isolate_secrets *s, const char *path)
{
    struct isolate_plan p;
    const char *moved = NULL;

    assert_int_equal(plan(s, &moved, &p), ERR_SECRET_MOVED);
    assert_non_null(moved);
    assert_string_equal(moved, path);
    isolate_plan_free(&p);
}

static void test_unchanged_secret_is_planned_by_its_object(void **state)
{
    struct fixture *f = *state;
    struct isolate_secrets s = {NULL, 0};
    struct isolate_plan p;
    const char *moved = NULL;
    struct stat st;

    assert_int_equal(isolate_secrets_add(&s, f->file, false), 0);
    assert_int_equal(isolate_secrets_add(&s, f->conf, false), 0);
    assert_int_equal(plan(&s, &moved, &p), 0);
    assert_null(moved);
    assert_int_equal(p.ncovers, 2);
    /* Deepest first: the file is covered before the directory above it is hidden. */
    assert_string_equal(p.covers[0].path, f->file);
    assert_false(p.covers[0].is_dir);
    assert_string_equal(p.covers[1].path, f->conf);
    assert_true(p.covers[1].is_dir);
    assert_int_equal(stat(f->file, &st), 0);
    assert_true(p.covers[0].dev == st.st_dev && p.covers[0].ino == st.st_ino);
    isolate_plan_free(&p);
    isolate_secrets_free(&s);
}

static void test_renamed_parent_is_refused(void **state)
{
    struct fixture *f = *state;
    struct isolate_secrets s = {NULL, 0};
    char moved_dir[PATH_MAX + 32];

    assert_int_equal(isolate_secrets_add(&s, f->file, false), 0);
    snprintf(moved_dir, sizeof(moved_dir), "%s.moved", f->conf);
    assert_int_equal(rename(f->conf, moved_dir), 0);
    assert_refused(&s, f->file);
    /* Back where it was: planned again. */
    assert_int_equal(rename(moved_dir, f->conf), 0);
    {
        struct isolate_plan p;
        const char *moved = NULL;

        assert_int_equal(plan(&s, &moved, &p), 0);
        assert_int_equal(p.ncovers, 1);
        isolate_plan_free(&p);
    }
    isolate_secrets_free(&s);
}

static void test_renamed_grandparent_is_refused(void **state)
{
    struct fixture *f = *state;
    struct isolate_secrets s = {NULL, 0};
    char moved_root[PATH_MAX + 16];

    assert_int_equal(isolate_secrets_add(&s, f->file, false), 0);
    snprintf(moved_root, sizeof(moved_root), "%s.moved", f->root);
    assert_int_equal(rename(f->root, moved_root), 0);
    assert_refused(&s, f->file);
    assert_int_equal(rename(moved_root, f->root), 0);
    isolate_secrets_free(&s);
}

static void test_deleted_and_recreated_file_is_refused(void **state)
{
    struct fixture *f = *state;
    struct isolate_secrets s = {NULL, 0};

    assert_int_equal(isolate_secrets_add(&s, f->file, false), 0);
    /* The held descriptor keeps the old inode alive, so the new file cannot reuse its
     * number and pass for it. */
    assert_int_equal(unlink(f->file), 0);
    write_text(f->file, "api_key: secret\n");
    assert_refused(&s, f->file);
    isolate_secrets_free(&s);
}

static void test_symlink_swapped_in_for_a_parent_is_refused(void **state)
{
    struct fixture *f = *state;
    struct isolate_secrets s = {NULL, 0};
    char real_dir[PATH_MAX + 32];

    assert_int_equal(isolate_secrets_add(&s, f->file, false), 0);
    snprintf(real_dir, sizeof(real_dir), "%s.real", f->conf);
    assert_int_equal(rename(f->conf, real_dir), 0);
    assert_int_equal(symlink(real_dir, f->conf), 0);
    /* The path still reaches the same object, through a symlink that was not there at
     * start: refused all the same. */
    assert_refused(&s, f->file);
    isolate_secrets_free(&s);
}

static void test_missing_secret_is_refused_at_start(void **state)
{
    struct fixture *f = *state;
    struct isolate_secrets s = {NULL, 0};
    char missing[PATH_MAX + 32];

    snprintf(missing, sizeof(missing), "%s/nothing-here", f->root);
    assert_int_equal(isolate_secrets_add(&s, missing, false), -ENOENT);
    assert_int_equal(s.n, 0);
    isolate_secrets_free(&s);
}

static void test_followed_file_is_covered_where_it_went(void **state)
{
    struct fixture *f = *state;
    struct isolate_secrets s = {NULL, 0};
    struct isolate_plan p;
    const char *moved = NULL;
    char log[PATH_MAX + 32], rotated[PATH_MAX + 32];
    struct stat old, now;

    snprintf(log, sizeof(log), "%s/runner.log", f->root);
    snprintf(rotated, sizeof(rotated), "%s/runner.log.1", f->root);
    write_text(log, "line\n");
    assert_int_equal(stat(log, &old), 0);
    assert_int_equal(isolate_secrets_add(&s, log, true), 0);
    /* Rotated: renamed, and a new file where it was. Both are covered, nothing refused. */
    assert_int_equal(rename(log, rotated), 0);
    write_text(log, "");
    assert_int_equal(stat(log, &now), 0);
    assert_int_equal(plan(&s, &moved, &p), 0);
    assert_null(moved);
    assert_int_equal(p.ncovers, 2);
    assert_string_equal(p.covers[0].path, rotated);
    assert_true(p.covers[0].ino == old.st_ino);
    assert_string_equal(p.covers[1].path, log);
    assert_true(p.covers[1].ino == now.st_ino);
    isolate_plan_free(&p);
    /* Reopened by its writer: the new file is the one followed from now on. */
    assert_int_equal(isolate_secrets_refresh(&s, log), 0);
    assert_int_equal(plan(&s, &moved, &p), 0);
    assert_int_equal(p.ncovers, 1);
    assert_string_equal(p.covers[0].path, log);
    assert_true(p.covers[0].ino == now.st_ino);
    isolate_plan_free(&p);
    isolate_secrets_free(&s);
}

static void test_workdir_at_or_under_a_covered_directory_is_found(void **state)
{
    struct fixture *f = *state;
    struct isolate_secrets s = {NULL, 0};
    struct isolate_plan p;
    const char *where = NULL;
    char below[PATH_MAX + 32];

    snprintf(below, sizeof(below), "%s/conf/sub", f->root);
    assert_int_equal(mkdir(below, 0700), 0);
    assert_int_equal(isolate_secrets_add(&s, f->conf, false), 0);
    assert_int_equal(plan(&s, &where, &p), 0);
    assert_int_equal(isolate_plan_check_workdir(&p, f->conf, &where), ERR_UNDER_SECRET);
    assert_string_equal(where, f->conf);
    where = NULL;
    assert_int_equal(isolate_plan_check_workdir(&p, below, &where), ERR_UNDER_SECRET);
    assert_string_equal(where, f->conf);
    where = NULL;
    assert_int_equal(isolate_plan_check_workdir(&p, f->root, &where), 0);
    assert_null(where);
    assert_int_equal(isolate_plan_check_workdir(&p, "/", &where), 0);
    isolate_plan_free(&p);
    isolate_secrets_free(&s);
}

static void test_trampoline_argv_carries_each_cover(void **state)
{
    struct fixture *f = *state;
    struct isolate_secrets s = {NULL, 0};
    struct isolate_plan p;
    const char *moved = NULL;
    char *cmd[] = {"true", "x", NULL}, expect[PATH_MAX + 64], **argv;
    struct stat st;

    assert_int_equal(isolate_secrets_add(&s, f->file, false), 0);
    assert_int_equal(plan(&s, &moved, &p), 0);
    assert_non_null(argv = isolate_trampoline_argv(&p, "/bin/true", cmd));
    assert_int_equal(stat(f->file, &st), 0);
    snprintf(expect, sizeof(expect), "f:%llu:%llu:%s", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino, f->file);
    assert_string_equal(argv[1], ISOLATE_TRAMPOLINE_ARG);
    assert_string_equal(argv[2], "/bin/true");
    assert_string_equal(argv[3], "1");
    assert_string_equal(argv[4], expect);
    assert_string_equal(argv[5], "--");
    assert_string_equal(argv[6], "true");
    assert_string_equal(argv[7], "x");
    assert_null(argv[8]);
    free(argv);
    isolate_plan_free(&p);
    isolate_secrets_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unchanged_secret_is_planned_by_its_object, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_renamed_parent_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_renamed_grandparent_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_and_recreated_file_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_symlink_swapped_in_for_a_parent_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_missing_secret_is_refused_at_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_followed_file_is_covered_where_it_went, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_workdir_at_or_under_a_covered_directory_is_found,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_trampoline_argv_carries_each_cover, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
