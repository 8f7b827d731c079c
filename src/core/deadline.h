/*
 * deadline.h - a one-shot timeout that is cheap to push back (after nginx's lazy timers
 * and libuv's own advice for idle timeouts).
 *
 * A connection renews its timeout on every request, a transfer on every read: with a
 * plain uv timer each renewal is a stop and a start, two operations on the loop's timer
 * heap (about 2,300 of the 44,000 instructions of a brokered request over 64 connections,
 * bench CG). A deadline only records the new time when its timer already runs and is due
 * no later; that timer fires early and re-arms itself for the rest. Only a deadline set
 * while none runs, or moved earlier, touches the heap. Clearing never does: the timer
 * runs on, finds nothing due and stops.
 *
 * The struct is public so that owners embed it, as libuv's handles are; its fields are
 * deadline.c's.
 */
#ifndef CREDBROKER_DEADLINE_H
#define CREDBROKER_DEADLINE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct deadline;
typedef void (*deadline_cb)(struct deadline *d);

struct deadline {
    uv_timer_t timer; /* its data is the owner's (deadline_data) */
    uint64_t due;     /* loop time (uv_now) it expires; 0: none */
    deadline_cb cb;
};

/* Sets d up on loop, expiring nowhere; cb runs when a deadline set is reached. */
void deadline_init(uv_loop_t *loop, struct deadline *d, deadline_cb cb, void *data);
/* Expires ms (> 0) from the loop's now, in place of whatever was set. */
void deadline_set(struct deadline *d, uint64_t ms);
/* Nothing expires until the next deadline_set. */
void deadline_clear(struct deadline *d);
bool deadline_pending(const struct deadline *d);
void *deadline_data(const struct deadline *d);
/* Closes the timer as uv_close does: nothing expires any more, and cb (given the timer
 * handle, whose data is the owner's) runs from a later loop turn, when the memory may go. */
void deadline_close(struct deadline *d, uv_close_cb cb);

#endif
