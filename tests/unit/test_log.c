/* Unit tests for src/core/log.c: lines are redacted before they are written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "err.h"
#include "log.h"
#include "secret.h"

/* Runs fn with stderr redirected to a pipe; returns what it wrote. */
static size_t capture(void (*fn)(void *), void *arg, char *out, size_t cap)
{
    int p[2], saved = dup(STDERR_FILENO);
    ssize_t n;

    assert_int_equal(pipe(p), 0);
    assert_true(dup2(p[1], STDERR_FILENO) >= 0);
    fn(arg);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    close(p[1]);
    n = read(p[0], out, cap - 1);
    close(p[0]);
    assert_true(n >= 0);
    out[n] = '\0';
    return (size_t)n;
}

static void log_the_key(void *arg)
{
    log_error("upstream said: bad key %s in request", (const char *)arg);
}

static void test_log_masks_a_registered_secret(void **state)
{
    struct secret *s = NULL;
    char out[512];

    assert_int_equal(secret_from("hunter2-key", 11, &s), 0);
    assert_int_equal(log_redact_add(s), 0);
    capture(log_the_key, "hunter2-key", out, sizeof(out));
    assert_null(strstr(out, "hunter2-key"));
    assert_non_null(strstr(out, "bad key *********** in request"));
    log_redact_remove(s);
    secret_free(s);
}

static void test_log_keeps_text_without_secrets(void **state)
{
    char out[512];

    capture(log_the_key, "not-a-secret", out, sizeof(out));
    assert_string_equal(out, "credbroker: error: upstream said: bad key not-a-secret in request\n");
}

static void log_with_code(void *arg)
{
    log_error_r(ERR_KEY_PERMS, "key file %s", "/tmp/k");
}

static void test_log_r_appends_the_error_text(void **state)
{
    char out[512];

    capture(log_with_code, NULL, out, sizeof(out));
    assert_non_null(strstr(out, "key file /tmp/k: key file is readable by group or others"));
}

static void log_debug_line(void *arg)
{
    log_debug("hidden");
}

static void test_log_drops_lines_below_the_level(void **state)
{
    char out[64];

    log_set_level(LOG_LEVEL_INFO);
    assert_int_equal(capture(log_debug_line, NULL, out, sizeof(out)), 0);
}

static void log_task_line(void *arg)
{
    log_kv(LOG_LEVEL_INFO, (const char *const[]){"task_id", "t-1", "trace_id", "a b\"c", NULL},
           "task %s", "started");
}

static void test_log_logfmt_has_fields_and_quotes_values(void **state)
{
    char out[512];

    log_set_format(LOG_FORMAT_LOGFMT);
    capture(log_task_line, NULL, out, sizeof(out));
    log_set_format(LOG_FORMAT_PLAIN);
    assert_true(strncmp(out, "ts=", 3) == 0);
    assert_non_null(strstr(out, " level=info msg=\"task started\" task_id=t-1 "
                                "trace_id=\"a b\\\"c\"\n"));
}

static void test_log_json_is_one_object_per_line(void **state)
{
    char out[512];

    log_set_format(LOG_FORMAT_JSON);
    capture(log_task_line, NULL, out, sizeof(out));
    log_set_format(LOG_FORMAT_PLAIN);
    assert_true(strncmp(out, "{\"ts\":\"", 7) == 0);
    assert_non_null(strstr(out, ",\"level\":\"info\",\"msg\":\"task started\","
                                "\"task_id\":\"t-1\",\"trace_id\":\"a b\\\"c\"}\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_masks_a_registered_secret),
        cmocka_unit_test(test_log_keeps_text_without_secrets),
        cmocka_unit_test(test_log_r_appends_the_error_text),
        cmocka_unit_test(test_log_drops_lines_below_the_level),
        cmocka_unit_test(test_log_logfmt_has_fields_and_quotes_values),
        cmocka_unit_test(test_log_json_is_one_object_per_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
