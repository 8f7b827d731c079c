/*
 * deadline.c - one-shot timeouts that move later without the timer heap. See deadline.h.
 */
#include <stddef.h>

#include "deadline.h"

static void deadline__fire(uv_timer_t *t)
{
    struct deadline *d = (struct deadline *)((char *)t - offsetof(struct deadline, timer));
    uint64_t now = uv_now(t->loop);

    if (d->due == 0)
        return; /* cleared since it was armed: the one-shot timer stops here */
    if (d->due > now) {
        uv_timer_start(t, deadline__fire, d->due - now, 0); /* moved later meanwhile */
        return;
    }
    d->due = 0;
    d->cb(d);
}

void deadline_init(uv_loop_t *loop, struct deadline *d, deadline_cb cb, void *data)
{
    uv_timer_init(loop, &d->timer);
    d->timer.data = data;
    d->due = 0;
    d->cb = cb;
}

void deadline_set(struct deadline *d, uint64_t ms)
{
    d->due = uv_now(d->timer.loop) + ms;
    /* A running timer due no later fires first and re-arms for the rest. */
    if (!uv_is_active((const uv_handle_t *)&d->timer) || uv_timer_get_due_in(&d->timer) > ms)
        uv_timer_start(&d->timer, deadline__fire, ms, 0);
}

void deadline_clear(struct deadline *d)
{
    d->due = 0;
}

bool deadline_pending(const struct deadline *d)
{
    return d->due != 0;
}

void *deadline_data(const struct deadline *d)
{
    return d->timer.data;
}

void deadline_close(struct deadline *d, uv_close_cb cb)
{
    d->due = 0;
    uv_close((uv_handle_t *)&d->timer, cb);
}
