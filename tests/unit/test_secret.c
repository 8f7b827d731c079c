/* Unit tests for src/core/secret.c: the secret arena. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "err.h"
#include "secret.h"

static void test_secret_from_copies_and_reports_length(void **state)
{
    struct secret *s = NULL;

    assert_int_equal(secret_from("abc123", 6, &s), 0);
    assert_int_equal(secret_len(s), 6);
    assert_memory_equal(secret_data(s), "abc123", 6);
    assert_true(secret_equals(s, "abc123", 6));
    assert_false(secret_equals(s, "abc124", 6));
    assert_false(secret_equals(s, "Abc123", 6)); /* the first byte counts as much as the last */
    assert_false(secret_equals(s, "abc12", 5));
    assert_int_not_equal(secret_arena_backing(), SECRET_BACKING_NONE);
    secret_free(s);
}

static void test_secret_new_is_zeroed_after_a_previous_secret_was_freed(void **state)
{
    struct secret *a = NULL, *b = NULL;
    uint8_t zero[100] = {0};

    assert_int_equal(secret_from("0123456789012345678901234567890123456789", 40, &a), 0);
    secret_free(a);
    /* First fit gives the same units back: they must hold zeros, not the old key. */
    assert_int_equal(secret_new(100, &b), 0);
    assert_memory_equal(secret_data(b), zero, 100);
    secret_free(b);
}

static void test_secret_many_secrets_do_not_overlap(void **state)
{
    enum { N = 300 };
    struct secret *s[N];

    for (int i = 0; i < N; i++) {
        size_t len = 1 + (size_t)(i * 37) % 5000;

        assert_int_equal(secret_new(len, &s[i]), 0);
        memset(secret_data(s[i]), i & 0xff, len);
    }
    for (int i = 0; i < N; i++) {
        size_t len = secret_len(s[i]);

        for (size_t k = 0; k < len; k++)
            assert_int_equal(secret_data(s[i])[k], i & 0xff);
    }
    for (int i = 0; i < N; i++)
        secret_free(s[i]);
}

static void test_secret_is_not_readable_in_a_forked_child(void **state)
{
    struct secret *s = NULL;
    int status;
    pid_t pid;

    assert_int_equal(secret_from("forked-child-must-not-see-this", 30, &s), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* MADV_WIPEONFORK gives zeros; MADV_DONTFORK (memfd_secret) gives no mapping:
         * reading it would fault, so check with mincore-free probing via a pipe write. */
        int p[2];
        if (pipe(p) != 0)
            _exit(3);
        /* write(2) from an unmapped address fails with EFAULT instead of crashing. */
        if (write(p[1], secret_data(s), 30) < 0)
            _exit(0); /* not mapped: nothing to read */
        {
            char buf[30];
            if (read(p[0], buf, 30) != 30)
                _exit(4);
            for (int i = 0; i < 30; i++) {
                if (buf[i] != 0)
                    _exit(1); /* the key leaked into the child */
            }
        }
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    secret_free(s);
}

static void test_secret_validate_key_refuses_control_bytes_and_bad_lengths(void **state)
{
    static uint8_t big[SECRET_KEY_MAX + 1];

    assert_int_equal(secret_validate_key((const uint8_t *)"ok-key_1", 8), 0);
    assert_int_equal(secret_validate_key((const uint8_t *)"with space", 10), 0);
    assert_int_equal(secret_validate_key((const uint8_t *)"", 0), ERR_KEY_EMPTY);
    assert_int_equal(secret_validate_key((const uint8_t *)"a\rb", 3), ERR_KEY_CONTROL);
    assert_int_equal(secret_validate_key((const uint8_t *)"a\nb", 3), ERR_KEY_CONTROL);
    assert_int_equal(secret_validate_key((const uint8_t *)"a\0b", 3), ERR_KEY_CONTROL);
    assert_int_equal(secret_validate_key((const uint8_t *)"a\x7f", 2), ERR_KEY_CONTROL);
    memset(big, 'k', sizeof(big));
    assert_int_equal(secret_validate_key(big, SECRET_KEY_MAX), 0);
    assert_int_equal(secret_validate_key(big, SECRET_KEY_MAX + 1), ERR_KEY_TOO_LONG);
}

static void test_secret_free_accepts_null(void **state)
{
    secret_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_from_copies_and_reports_length),
        cmocka_unit_test(test_secret_new_is_zeroed_after_a_previous_secret_was_freed),
        cmocka_unit_test(test_secret_many_secrets_do_not_overlap),
        cmocka_unit_test(test_secret_is_not_readable_in_a_forked_child),
        cmocka_unit_test(test_secret_validate_key_refuses_control_bytes_and_bad_lengths),
        cmocka_unit_test(test_secret_free_accepts_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
