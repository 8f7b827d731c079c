/*
 * Unit tests for src/exec/child.c: a started command's exit status reaches
 * on_exit; a command that cannot start is reported there too, with the errno
 * and the stage it failed at, since child_spawn does not wait for the exec;
 * a command not on PATH fails before the fork. Real processes (sh, true) on
 * libuv's default loop; no isolation (that needs namespaces: tests/e2e).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "child.h"
#include "err.h"

struct outcome {
    bool done;
    int status;
    int exec_err;
    enum child_stage at;
    bool timed_out;
};

static char *env_path[] = {"PATH=/usr/bin:/bin", NULL};

static void on_exit_cb(struct child *c, int status, int exec_err, bool timed_out, void *data)
{
    struct outcome *o = data;

    o->done = true;
    o->status = status;
    o->exec_err = exec_err;
    o->timed_out = timed_out;
    if (exec_err != 0)
        o->at = child_failed_at(c);
    child_free(c);
}

/* Options for argv with PATH only, no fds placed, stdio inherited, no on_exit. */
static void options_init(struct child_options *co, char *const *argv)
{
    memset(co, 0, sizeof(*co));
    co->argv = argv;
    co->envp = env_path;
    co->ctl_fd = -1;
    co->stdio[0] = co->stdio[1] = co->stdio[2] = -1;
}

/* Spawns argv (in cwd, if set) and runs the loop until on_exit; *spawn_rc is child_spawn's. */
static struct outcome run(char *const *argv, const char *cwd, int *spawn_rc)
{
    struct outcome o;
    struct child_options co;
    struct child *c = NULL;

    memset(&o, 0, sizeof(o));
    options_init(&co, argv);
    co.cwd = cwd;
    co.on_exit = on_exit_cb;
    co.data = &o;
    *spawn_rc = child_spawn(uv_default_loop(), &co, &c);
    if (*spawn_rc == 0) {
        assert_non_null(c);
        while (!o.done)
            uv_run(uv_default_loop(), UV_RUN_ONCE);
    } else {
        assert_null(c);
    }
    uv_run(uv_default_loop(), UV_RUN_NOWAIT); /* the handles child_free closed */
    return o;
}

static void test_child_exit_status_reaches_on_exit(void **state)
{
    char *argv[] = {"sh", "-c", "exit 3", NULL};
    int rc;
    struct outcome o = run(argv, NULL, &rc);

    assert_int_equal(rc, 0);
    assert_true(o.done);
    assert_int_equal(o.exec_err, 0);
    assert_int_equal(o.status, 3);
    assert_false(o.timed_out);
}

static void test_child_a_failing_exec_is_reported_by_on_exit_not_by_spawn(void **state)
{
    /* A directory: found (it has a '/'), but execve refuses it. */
    char *argv[] = {"/", NULL};
    int rc;
    struct outcome o = run(argv, NULL, &rc);

    assert_int_equal(rc, 0);
    assert_true(o.done);
    assert_int_equal(o.exec_err, -EACCES);
    assert_int_equal(o.at, CHILD_STAGE_EXEC);
    assert_int_equal(o.status, 127);
}

static void test_child_a_failing_setup_says_its_stage(void **state)
{
    char *argv[] = {"true", NULL};
    int rc;
    struct outcome o = run(argv, "/nonexistent-credbroker-test-dir", &rc);

    assert_int_equal(rc, 0);
    assert_true(o.done);
    assert_int_equal(o.exec_err, -ENOENT);
    assert_int_equal(o.at, CHILD_STAGE_SETUP);
}

static void test_child_a_command_not_on_path_fails_before_the_fork(void **state)
{
    char *argv[] = {"no-such-command-credbroker-test", NULL};
    int rc;
    struct outcome o = run(argv, NULL, &rc);

    assert_int_equal(rc, -ENOENT);
    assert_false(o.done);
}

static void test_child_spawn_needs_on_exit(void **state)
{
    char *argv[] = {"true", NULL};
    struct child_options co;
    struct child *c = NULL;

    options_init(&co, argv);
    assert_int_equal(child_spawn(uv_default_loop(), &co, &c), ERR_INVALID);
    assert_null(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_child_exit_status_reaches_on_exit),
        cmocka_unit_test(test_child_a_failing_exec_is_reported_by_on_exit_not_by_spawn),
        cmocka_unit_test(test_child_a_failing_setup_says_its_stage),
        cmocka_unit_test(test_child_a_command_not_on_path_fails_before_the_fork),
        cmocka_unit_test(test_child_spawn_needs_on_exit),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);

    uv_loop_close(uv_default_loop());
    return failed;
}
