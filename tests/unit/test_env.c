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
#include "secret.h"

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

/* NAME=v with a name of len bytes: 'A's with "SECRET" (or "PUBLIC") in the middle. */
static char *long_var(size_t len, const char *word)
{
    char *var = malloc(len + 3);
    size_t wlen = strlen(word);

    assert_non_null(var);
    memset(var, 'A', len);
    memcpy(var + len / 2 - wlen / 2, word, wlen);
    memcpy(var + len, "=v", 3);
    return var;
}

/* Names that do not fit a 256-byte buffer are matched like short ones (a 310-byte
 * *SECRET* name used to be skipped, so it reached the command): 255, 256, 4 KiB, and
 * 128 KiB, the most a single environment string may hold on Linux. */
static void test_env_deny_matches_names_of_any_length(void **state)
{
    const size_t lens[] = {255, 256, 310, 4096, 128 * 1024 - 3};
    enum { N = sizeof(lens) / sizeof(lens[0]) };
    char *src[2 * N + 2], *one[2] = {NULL, NULL};
    struct env *e;
    size_t k = 0;

    for (size_t i = 0; i < N; i++) {
        src[k++] = long_var(lens[i], "SECRET");
        src[k++] = long_var(lens[i], "PUBLIC");
    }
    src[k++] = "PATH=/bin";
    src[k] = NULL;
    assert_non_null(e = env_new(src));
    env_deny(e, "*SECRET*");
    for (size_t i = 0; i < N; i++) {
        assert_false(has(e, src[2 * i]));
        assert_true(has(e, src[2 * i + 1]));
    }
    assert_true(has(e, "PATH=/bin"));
    /* The name is matched whole: a pattern anchored at its end sees its last byte. */
    env_free(e);
    one[0] = long_var(4096, "PUBLIC");
    one[0][4095] = 'Z';
    assert_non_null(e = env_new(one));
    env_deny(e, "A*C*Z");
    assert_null(env_array(e)[0]);
    env_free(e);
    free(one[0]);
    for (size_t i = 0; i < 2 * N; i++)
        free(src[i]);
}

/* A key inherited under any name, as the whole value or inside a longer one, is removed;
 * a near miss (the key but its last byte) and the rest stay. */
static void test_env_deny_secret_removes_every_variable_holding_the_key(void **state)
{
    char *src[] = {"PATH=/bin", "LEAKY=k3y-0123456789", "URL=https://x/?app_key=k3y-0123456789&a=1",
                   "NEAR=k3y-012345678", "Xk3y-0123456789=1", "HOME=/root", NULL};
    struct env *e = env_new(src);
    struct secret *key;

    assert_non_null(e);
    assert_int_equal(secret_from("k3y-0123456789", 14, &key), 0);
    assert_int_equal(env_deny_secret(e, key, "the key"), 3);
    assert_false(has_name(e, "LEAKY"));
    assert_false(has_name(e, "URL"));
    assert_false(has_name(e, "Xk3y-0123456789"));
    assert_true(has(e, "NEAR=k3y-012345678"));
    assert_true(has(e, "PATH=/bin") && has(e, "HOME=/root"));
    assert_int_equal(env_deny_secret(e, key, "the key"), 0);
    secret_free(key);
    env_free(e);
    /* A secret too short to tell from text goes only as a whole value. */
    {
        char *src2[] = {"TERM=xterm", "SHORT=xy", NULL};

        assert_non_null(e = env_new(src2));
        assert_int_equal(secret_from("xy", 2, &key), 0);
        assert_int_equal(env_deny_secret(e, key, "the key"), 1);
        assert_true(has(e, "TERM=xterm") && !has_name(e, "SHORT"));
        secret_free(key);
        env_free(e);
    }
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
        cmocka_unit_test(test_env_deny_matches_names_of_any_length),
        cmocka_unit_test(test_env_deny_secret_removes_every_variable_holding_the_key),
        cmocka_unit_test(test_env_set_replaces_an_existing_variable),
        cmocka_unit_test(test_env_take_wipes_and_unsets_the_variable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
