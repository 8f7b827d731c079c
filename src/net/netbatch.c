/*
 * netbatch.c - the socket writes of one loop turn, made with one system call. See
 * netbatch.h.
 *
 * io_submit on a socket does not queue: the kernel runs the write (sock_write_iter, non-
 * blocking as the socket is) inside the call and posts its result to the context's
 * completion ring before returning. The ring is mapped into the process (the layout
 * libaio reads, a stable kernel ABI), so the results are read from it, without
 * io_getevents; the call is the fallback if the ring is not what is expected. The
 * context is the process's own: a child forked from it keeps the ring's pages until it
 * execs (results of writes already made, nothing more), but not the context (io_submit
 * there fails with EINVAL).
 */
#include <errno.h>
#include <linux/aio_abi.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "netbatch.h"

#define NETBATCH_ROUND 64 /* writes per io_submit (and the AIO context's size: below) */
#define NETBATCH_RING_MAGIC 0xa10a10a1u

/* The head of the completion ring io_setup maps (fs/aio.c, struct aio_ring). */
struct netbatch_ring {
    unsigned id, nr, head, tail, magic, compat_features, incompat_features, header_length;
    struct io_event events[];
};

enum { ITEM_IDLE, ITEM_QUEUED, ITEM_WRITING };

static TAILQ_HEAD(, netbatch_item) queue = TAILQ_HEAD_INITIALIZER(queue);
static aio_context_t aio_ctx;
static bool aio_tried, aio_failed, aio_off;
static unsigned long calls;

/* One round's writes: the item (NULL once cancelled by another's fill or done), its iocb
 * (what it writes), its result. Static, not on the stack: the build zeroes every local
 * array on entry (-ftrivial-auto-var-init), 5 KiB at every round (callgrind). One flush
 * runs at a time (flushing). */
static struct netbatch_item *round_items[NETBATCH_ROUND];
static struct iocb round_cbs[NETBATCH_ROUND], *round_cbp[NETBATCH_ROUND];
static ssize_t round_res[NETBATCH_ROUND];
static bool flushing;

void netbatch_item_init(struct netbatch_item *it, uv_stream_t *stream, netbatch_fill_cb fill,
                        netbatch_done_cb done)
{
    memset(it, 0, sizeof(*it));
    it->stream = stream;
    it->fill = fill;
    it->done = done;
}

void netbatch_add(struct netbatch_item *it)
{
    if (it->state != ITEM_IDLE)
        return;
    it->state = ITEM_QUEUED;
    TAILQ_INSERT_TAIL(&queue, it, link);
}

void netbatch_cancel(struct netbatch_item *it)
{
    if (it->state == ITEM_QUEUED)
        TAILQ_REMOVE(&queue, it, link);
    else if (it->state == ITEM_WRITING)
        round_items[it->slot] = NULL; /* written, but nobody to tell */
    it->state = ITEM_IDLE;
}

void netbatch__use_aio(bool use)
{
    aio_off = !use;
}

unsigned long netbatch__calls(void)
{
    return calls;
}

/* The context is made at the first write. Its size counts against the system's
 * fs.aio-max-nr (65,536 by default, shared with every other user of AIO): 64 lets a
 * thousand brokers run at once, and one past that writes one by one. */
static bool aio_ready(void)
{
    if (aio_off)
        return false;
    if (!aio_tried) {
        aio_tried = true;
        if (syscall(SYS_io_setup, NETBATCH_ROUND, &aio_ctx) != 0) {
            log_debug("io_setup: %s; socket writes are made one by one", strerror(errno));
            aio_failed = true;
        }
    }
    return !aio_failed;
}

/* Reads n results from the ring into round_res (by the slot each iocb carries). */
static void aio_reap(long n)
{
    struct netbatch_ring *ring = (struct netbatch_ring *)(uintptr_t)aio_ctx;
    long got = 0, r;

    if (ring->magic == NETBATCH_RING_MAGIC && ring->incompat_features == 0) {
        unsigned head = ring->head, tail = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);

        while (head != tail && got < n) {
            round_res[ring->events[head].data] = (ssize_t)ring->events[head].res;
            head = (head + 1) % ring->nr;
            got++;
        }
        __atomic_store_n(&ring->head, head, __ATOMIC_RELEASE);
    }
    /* Not expected for sockets (each result is posted before io_submit returns); the
     * call then returns at once. */
    while (got < n) {
        struct io_event ev[NETBATCH_ROUND];

        r = syscall(SYS_io_getevents, aio_ctx, n - got, n - got, ev, NULL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break; /* cannot happen for a live context: the rest keep their UV_EIO */
        for (long i = 0; i < r; i++)
            round_res[ev[i].data] = (ssize_t)ev[i].res;
        got += r;
    }
}

/* Takes up to a round of loop's queued items, fills and writes them; returns how many. */
static size_t flush_round(uv_loop_t *loop)
{
    struct iocb *cbs = round_cbs, **cbp = round_cbp;
    size_t n = 0, m = 0, taken = 0, len;
    struct netbatch_item *it, *next;
    const uint8_t *data;
    long submitted = 0;
    uv_os_fd_t fd = -1;

    for (it = TAILQ_FIRST(&queue); it != NULL && n < NETBATCH_ROUND; it = next) {
        next = TAILQ_NEXT(it, link);
        if (it->stream->loop != loop)
            continue;
        TAILQ_REMOVE(&queue, it, link);
        it->state = ITEM_IDLE;
        taken++;
        if ((len = it->fill(it, &data)) == 0)
            continue;
        it->state = ITEM_WRITING;
        it->slot = n;
        round_items[n] = it;
        /* Bytes the stream queued itself go first: the owner's uv_write takes these too. */
        if (uv_stream_get_write_queue_size(it->stream) > 0 ||
            uv_fileno((uv_handle_t *)it->stream, &fd) != 0)
            round_res[n] = UV_EAGAIN;
        else
            round_res[n] = UV_EIO; /* until the write says otherwise */
        memset(&cbs[n], 0, sizeof(cbs[n]));
        cbs[n].aio_data = n;
        cbs[n].aio_fildes = (uint32_t)fd;
        cbs[n].aio_lio_opcode = IOCB_CMD_PWRITE;
        cbs[n].aio_buf = (uintptr_t)data;
        cbs[n].aio_nbytes = len;
        n++;
    }
    if (n == 0)
        return taken;
    /* In queue order, but for a write that must wait for its stream's own queue, and one
     * whose owner went away during a later item's fill (an owner may write with uv_write
     * there, and fail, and close). */
    for (size_t i = 0; i < n; i++) {
        if (round_items[i] != NULL && round_res[i] != UV_EAGAIN)
            cbp[m++] = &cbs[i];
    }
    if (m > 0 && aio_ready()) {
        calls++;
        submitted = syscall(SYS_io_submit, aio_ctx, (long)m, cbp);
        if (submitted < 0) {
            if (errno == ENOSYS || errno == EPERM || errno == EINVAL)
                aio_failed = true;
            submitted = 0;
        }
        if (submitted > 0)
            aio_reap(submitted);
    }
    /* What io_submit did not take is written on its own. */
    for (long i = submitted; i < (long)m; i++) {
        size_t k = (size_t)cbp[i]->aio_data;
        uv_buf_t b;

        b.base = (char *)(uintptr_t)cbp[i]->aio_buf;
        b.len = (size_t)cbp[i]->aio_nbytes;
        calls++;
        round_res[k] = uv_try_write(round_items[k]->stream, &b, 1);
    }
    for (size_t i = 0; i < n; i++) {
        if ((it = round_items[i]) == NULL)
            continue; /* cancelled by an earlier fill or done */
        round_items[i] = NULL;
        it->state = ITEM_IDLE;
        it->done(it, round_res[i] == 0 ? UV_EAGAIN : round_res[i]);
    }
    return taken;
}

void netbatch_flush(uv_loop_t *loop)
{
    if (flushing)
        return; /* a done callback's: the loop below takes what it queued */
    flushing = true;
    while (flush_round(loop) > 0)
        ;
    flushing = false;
}
