/* Unit tests for src/exec/env.c: the command's environment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "env.h"

static bool has(const struct env *e, const char *var)
{
    for (char *const *v = env_array(e); *v != NULL; v++) {
        if (strcmp(*v, var) == 0)
            return true;
    }
    return false;
}

static bool has_name(const struct env *e, const char *name)
{
    size_t n = strlen(name);

    for (char *const *v = env_array(e); *v != NULL; v++) {
        if (strncmp(*v, name, n) == 0 && (*v)[n] == '=')
            return true;
    }
    return false;
}

static void test_env_deny_removes_secrets_and_keeps_the_rest(void **state)
{
    char *src[] = {"PATH=/bin", "FLASHDUTY_APP_KEY=secret", "HOME=/root",
                   "FLASHDUTY_RUNNER_API_KEY=token", "MY_TOKEN_1=x", "MY_TOKEN_2=y", NULL};
    struct env *e = env_new(src);

    assert_non_null(e);
    for (const char *const *d = env_default_deny; *d != NULL; d++)
        env_deny(e, *d);
    env_deny(e, "MY_TOKEN_*");
    assert_true(has(e, "PATH=/bin"));
    assert_true(has(e, "HOME=/root"));
    assert_false(has_name(e, "FLASHDUTY_APP_KEY"));
    assert_false(has_name(e, "FLASHDUTY_RUNNER_API_KEY"));
    assert_false(has_name(e, "MY_TOKEN_1"));
    assert_false(has_name(e, "MY_TOKEN_2"));
    env_free(e);
}

static void test_env_set_replaces_an_existing_variable(void **state)
{
    char *src[] = {"FLASHDUTY_CRED_FD=9", "A=1", NULL};
    struct env *e = env_new(src);

    assert_int_equal(env_set(e, "FLASHDUTY_CRED_FD", "3"), 0);
    assert_int_equal(env_set(e, "B", "2"), 0);
    assert_true(has(e, "FLASHDUTY_CRED_FD=3"));
    assert_false(has(e, "FLASHDUTY_CRED_FD=9"));
    assert_true(has(e, "A=1"));
    assert_true(has(e, "B=2"));
    env_free(e);
}

static void test_env_take_wipes_and_unsets_the_variable(void **state)
{
    char *value = NULL, *orig;
    size_t len = 0;

    assert_int_equal(setenv("CB_TEST_KEY", "take-me-1234", 1), 0);
    orig = getenv("CB_TEST_KEY");
    assert_int_equal(env_take("CB_TEST_KEY", &value, &len), 0);
    assert_int_equal(len, 12);
    assert_string_equal(value, "take-me-1234");
    assert_null(getenv("CB_TEST_KEY"));
    /* The bytes in the environment block itself are gone too. */
    assert_int_equal(orig[0], 0);
    free(value);
    assert_int_not_equal(env_take("CB_TEST_KEY", &value, &len), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_deny_removes_secrets_and_keeps_the_rest),
        cmocka_unit_test(test_env_set_replaces_an_existing_variable),
        cmocka_unit_test(test_env_take_wipes_and_unsets_the_variable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
