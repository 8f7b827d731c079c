/* Unit tests for src/core/deadline.c, on a real libuv loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <uv.h>

#include "deadline.h"

struct seen {
    uv_loop_t loop;
    struct deadline d;
    int fired;
    int rearm;        /* set again from its own callback this many times */
    uint64_t at[4];   /* loop time of each expiry */
};

static void on_expiry(struct deadline *d)
{
    struct seen *s = deadline_data(d);

    assert_false(deadline_pending(d));
    if (s->fired < 4)
        s->at[s->fired] = uv_now(&s->loop);
    s->fired++;
    if (s->rearm > 0) {
        s->rearm--;
        deadline_set(d, 10);
    }
}

static void seen_init(struct seen *s)
{
    memset(s, 0, sizeof(*s));
    assert_int_equal(uv_loop_init(&s->loop), 0);
    deadline_init(&s->loop, &s->d, on_expiry, s);
}

static void seen_close(struct seen *s)
{
    deadline_close(&s->d, NULL);
    assert_int_equal(uv_run(&s->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&s->loop), 0);
}

static void test_deadline_expires_once_when_due(void **state)
{
    struct seen s;
    uint64_t t0;

    seen_init(&s);
    t0 = uv_now(&s.loop);
    deadline_set(&s.d, 30);
    assert_true(deadline_pending(&s.d));
    /* The loop runs until nothing is left: the one-shot timer is the only handle. */
    assert_int_equal(uv_run(&s.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(s.fired, 1);
    assert_true(s.at[0] >= t0 + 30);
    seen_close(&s);
}

/* Pushed later, the running timer stays where it was (no timer-heap work) and, when it
 * fires early, re-arms for the rest: one expiry, at the later time. */
static void test_deadline_pushed_later_keeps_its_timer_and_expires_late(void **state)
{
    struct seen s;
    uint64_t t0;

    seen_init(&s);
    t0 = uv_now(&s.loop);
    deadline_set(&s.d, 20);
    deadline_set(&s.d, 80);
    assert_true(uv_timer_get_due_in(&s.d.timer) <= 20);
    assert_int_equal(uv_run(&s.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(s.fired, 1);
    assert_true(s.at[0] >= t0 + 80);
    seen_close(&s);
}

static void on_watchdog(uv_timer_t *t)
{
    struct seen *s = t->data;

    uv_stop(&s->loop); /* the deadline did not expire in time: s->fired says so */
}

/* Moved earlier, the timer is moved too: the deadline expires long before the time
 * first set (a watchdog at a quarter of that stops the loop otherwise). */
static void test_deadline_moved_earlier_expires_early(void **state)
{
    struct seen s;
    uv_timer_t watchdog;
    uint64_t t0;

    seen_init(&s);
    uv_timer_init(&s.loop, &watchdog);
    watchdog.data = &s;
    t0 = uv_now(&s.loop);
    deadline_set(&s.d, 60000);
    deadline_set(&s.d, 20);
    assert_true(uv_timer_get_due_in(&s.d.timer) <= 20);
    uv_timer_start(&watchdog, on_watchdog, 15000, 0);
    uv_unref((uv_handle_t *)&watchdog);
    assert_int_equal(uv_run(&s.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(s.fired, 1);
    assert_true(s.at[0] >= t0 + 20 && s.at[0] < t0 + 15000);
    uv_close((uv_handle_t *)&watchdog, NULL);
    seen_close(&s);
}

/* Cleared, nothing expires: the timer runs out and stops, and the loop ends. */
static void test_deadline_cleared_never_expires(void **state)
{
    struct seen s;

    seen_init(&s);
    deadline_set(&s.d, 20);
    deadline_clear(&s.d);
    assert_false(deadline_pending(&s.d));
    assert_int_equal(uv_run(&s.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(s.fired, 0);
    assert_false(uv_is_active((uv_handle_t *)&s.d.timer));
    seen_close(&s);
}

/* Cleared and set again before the old timer fired: one expiry, at the new time. */
static void test_deadline_cleared_then_set_expires_at_the_new_time(void **state)
{
    struct seen s;
    uint64_t t0;

    seen_init(&s);
    t0 = uv_now(&s.loop);
    deadline_set(&s.d, 20);
    deadline_clear(&s.d);
    deadline_set(&s.d, 50);
    assert_int_equal(uv_run(&s.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(s.fired, 1);
    assert_true(s.at[0] >= t0 + 50);
    seen_close(&s);
}

static void test_deadline_set_from_its_callback_expires_again(void **state)
{
    struct seen s;

    seen_init(&s);
    s.rearm = 2;
    deadline_set(&s.d, 10);
    assert_int_equal(uv_run(&s.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(s.fired, 3);
    assert_true(s.at[1] >= s.at[0] + 10 && s.at[2] >= s.at[1] + 10);
    seen_close(&s);
}

static int closed;

static void on_closed(uv_handle_t *h)
{
    closed++;
}

static void test_deadline_closed_never_expires(void **state)
{
    struct seen s;

    seen_init(&s);
    closed = 0;
    deadline_set(&s.d, 10);
    deadline_close(&s.d, on_closed);
    assert_int_equal(uv_run(&s.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(s.fired, 0);
    assert_int_equal(closed, 1);
    assert_int_equal(uv_loop_close(&s.loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deadline_expires_once_when_due),
        cmocka_unit_test(test_deadline_pushed_later_keeps_its_timer_and_expires_late),
        cmocka_unit_test(test_deadline_moved_earlier_expires_early),
        cmocka_unit_test(test_deadline_cleared_never_expires),
        cmocka_unit_test(test_deadline_cleared_then_set_expires_at_the_new_time),
        cmocka_unit_test(test_deadline_set_from_its_callback_expires_again),
        cmocka_unit_test(test_deadline_closed_never_expires),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
