/*
 * netbatch.h - the socket writes of one loop turn, made with one system call.
 *
 * Over HTTP/1.1 a brokered request is four socket calls (read the child, write the
 * upstream, read the upstream, write the child), each with its entry and exit, and on
 * this kind of host (a VM with page-table isolation) the entry and exit cost about as
 * much as the work (bench W2: a million empty calls took a microsecond each). A loop turn
 * wakes for several sockets at once, and every write it makes can wait to the end of the
 * turn: the writes are gathered and made with one io_submit(2) (Linux AIO), which runs
 * each write on a non-blocking socket at once, in order, as write(2) would, and leaves
 * its result in a ring the process reads without another call. Not io_uring, whose
 * attack surface a process that holds keys does without.
 *
 * An owner embeds a netbatch_item and queues it (netbatch_add) when it has bytes for its
 * stream, and starts a prepare handle of its own; the first such handle to run in the
 * prepare phase, before the loop next waits, writes the whole batch (netbatch_flush):
 * it asks each queued item what to write (fill), writes them all, and tells each what
 * the socket took (done). The owners whose handles run later find their items written.
 * (No handle belongs to the batch: every loop owner, the tests' among them, closes
 * exactly the handles it made.) A write the socket does not take whole is the owner's
 * to finish with uv_write, as after uv_try_write. Where io_submit is refused (a seccomp
 * filter, a kernel without AIO, the system's aio-max-nr spent), each write is made on
 * its own, at the same moment.
 */
#ifndef CREDBROKER_NETBATCH_H
#define CREDBROKER_NETBATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <uv.h>

struct netbatch_item;

/* What to write now: sets *data and returns its length; 0 when there is nothing (the
 * owner may have written another way), and then done is not called. The bytes stay put
 * until done. The owner may do anything here, close another owner among it: an item
 * cancelled after its fill is neither written nor told. */
typedef size_t (*netbatch_fill_cb)(struct netbatch_item *it, const uint8_t **data);
/* n bytes (0 < n <= what fill gave) were written, or n is a libuv error: UV_EAGAIN when
 * the socket took nothing (or the stream has writes of its own queued). An item queued
 * from here leaves in the same flush; one cancelled is not told, though written. */
typedef void (*netbatch_done_cb)(struct netbatch_item *it, ssize_t n);

struct netbatch_item {
    TAILQ_ENTRY(netbatch_item) link;
    uv_stream_t *stream;
    netbatch_fill_cb fill;
    netbatch_done_cb done;
    int state;   /* netbatch.c's: idle, queued, or being written */
    size_t slot; /* while being written: its place in the round */
};

void netbatch_item_init(struct netbatch_item *it, uv_stream_t *stream, netbatch_fill_cb fill,
                        netbatch_done_cb done);
/* Queues it for this turn's batch, once (queuing a queued item does nothing). */
void netbatch_add(struct netbatch_item *it);
/* Takes it off the queue, or out of the round being written: its owner is going away. */
void netbatch_cancel(struct netbatch_item *it);
/* Writes every item of loop queued, those queued by done callbacks meanwhile included. */
void netbatch_flush(uv_loop_t *loop);

/* For tests: false makes every write on its own (as where io_submit is refused); and the
 * system calls the batch has made for writes (io_submit, or a write each). */
void netbatch__use_aio(bool use);
unsigned long netbatch__calls(void);

#endif
