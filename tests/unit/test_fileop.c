/*
 * Unit tests for src/runner/fileop.c's cancel contract, made deterministic: libuv's thread
 * pool is one thread (UV_THREADPOOL_SIZE=1, set before the pool starts) and a blocker work
 * item holds it, so an operation queued behind it is cancelled before it can start. Its
 * result is then "context canceled" and a write leaves its target untouched; without a
 * cancel the same operations complete. (The e2e suites, test_91 to test_94, cover what
 * each operation returns.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "fileop.h"
#include "wspath.h"

struct outcome {
    bool done, success;
    char error[128];
    char *result; /* compact JSON */
};

struct fixture {
    uv_loop_t loop;
    struct wspath_root root;
    char dir[PATH_MAX];
    uv_sem_t hold;
    uv_work_t blocker;
};

static void on_done(struct fileop *op, bool success, const json_t *result, const char *error,
                    void *data)
{
    struct outcome *o = data;

    o->done = true;
    o->success = success;
    snprintf(o->error, sizeof(o->error), "%s", error != NULL ? error : "");
    o->result = result != NULL ? json_dumps(result, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    fileop_free(op);
}

static void block(uv_work_t *w)
{
    uv_sem_wait(w->data);
}

static void unblocked(uv_work_t *w, int status)
{
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char tmpl[] = "/tmp/credbroker-fileop-XXXXXX", path[PATH_MAX + 16];
    FILE *fp;

    if (f == NULL || mkdtemp(tmpl) == NULL || realpath(tmpl, f->dir) == NULL ||
        uv_loop_init(&f->loop) != 0 || wspath_root_open(&f->root, f->dir) != 0 ||
        uv_sem_init(&f->hold, 0) != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/target.txt", f->dir);
    if ((fp = fopen(path, "w")) == NULL)
        return -1;
    fputs("before", fp);
    fclose(fp);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[PATH_MAX + 16];

    wspath_root_close(&f->root);
    uv_sem_destroy(&f->hold);
    if (uv_loop_close(&f->loop) != 0)
        return -1;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* Runs operation with args (JSON text) to its end; cancel: cancelled while the pool's one
 * thread is held, so before it starts. */
static void run(struct fixture *f, const char *operation, const char *args, bool cancel,
                struct outcome *o)
{
    struct fileop_limits limits = {.read_max_bytes = 8 << 20, .list_max_entries = 50000,
                                   .glob_max_matches = 50000, .grep_max_matches = 10000,
                                   .max_result_bytes = 16 << 20, .spill = NULL};
    json_t *a = json_loads(args, 0, NULL);
    struct fileop *op;

    memset(o, 0, sizeof(*o));
    f->blocker.data = &f->hold;
    assert_int_equal(uv_queue_work(&f->loop, &f->blocker, block, unblocked), 0);
    assert_int_equal(fileop_start(&f->loop, operation, a, &f->root, &limits, on_done, o, &op), 0);
    json_decref(a);
    if (cancel)
        fileop_cancel(op);
    uv_sem_post(&f->hold);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_true(o->done);
}

static char *target(const struct fixture *f)
{
    static char text[64];
    char path[PATH_MAX + 16];
    FILE *fp;
    size_t n;

    snprintf(path, sizeof(path), "%s/target.txt", f->dir);
    assert_non_null(fp = fopen(path, "r"));
    n = fread(text, 1, sizeof(text) - 1, fp);
    text[n] = '\0';
    fclose(fp);
    return text;
}

static void test_an_operation_cancelled_before_it_starts_says_so_and_changes_nothing(void **state)
{
    struct fixture *f = *state;
    struct outcome o;

    run(f, "write", "{\"path\": \"target.txt\", \"content\": \"YWZ0ZXI=\"}", true, &o);
    assert_false(o.success);
    assert_string_equal(o.error, "context canceled");
    assert_string_equal(target(f), "before");
    run(f, "list", "{\"recursive\": true}", true, &o);
    assert_false(o.success);
    assert_string_equal(o.error, "context canceled");
}

static void test_the_same_operations_complete_without_a_cancel(void **state)
{
    struct fixture *f = *state;
    struct outcome o;

    run(f, "write", "{\"path\": \"target.txt\", \"content\": \"YWZ0ZXI=\"}", false, &o);
    assert_true(o.success);
    assert_string_equal(o.result, "{\"success\":true}");
    free(o.result);
    assert_string_equal(target(f), "after");
    run(f, "read", "{\"path\": \"target.txt\"}", false, &o);
    assert_true(o.success);
    assert_string_equal(o.result, "{\"content\":\"YWZ0ZXI=\",\"total_size\":5}");
    free(o.result);
    run(f, "list", "{}", false, &o);
    assert_true(o.success);
    assert_string_equal(o.result,
                        "{\"entries\":[{\"is_dir\":false,\"path\":\"target.txt\",\"size\":5}]}");
    free(o.result);
}

/* A new file gets 0644 less the process's umask, read without ever changing it (a
 * umask(0) window would let files other threads make be world-writable). */
static void test_a_new_file_follows_the_process_umask(void **state)
{
    struct fixture *f = *state;
    struct outcome o;
    struct stat st;
    char path[PATH_MAX + 16];
    mode_t old = umask(077);

    run(f, "write", "{\"path\": \"new.txt\", \"content\": \"YWZ0ZXI=\"}", false, &o);
    umask(old);
    assert_true(o.success);
    free(o.result);
    snprintf(path, sizeof(path), "%s/new.txt", f->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_an_operation_cancelled_before_it_starts_says_so_and_changes_nothing, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_a_new_file_follows_the_process_umask, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_the_same_operations_complete_without_a_cancel,
                                        setup, teardown),
    };

    /* One thread in libuv's pool: the blocker holds it (set before the pool starts). */
    setenv("UV_THREADPOOL_SIZE", "1", 1);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
