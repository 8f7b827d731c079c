/* Unit tests for src/net/netbatch.c: a turn's writes in one system call, on real sockets. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "netbatch.h"

#define ENDS 8

/* One socketpair: our end a libuv stream with an item, the peer a plain fd. */
struct end {
    uv_pipe_t pipe;
    int peer;
    struct netbatch_item it;
    const uint8_t *data;
    size_t len;
    size_t fills;
    int dones;
    ssize_t got;
    struct end *cancel_on_done; /* its item is cancelled from this one's done */
    struct end *queue_on_done;  /* its item is queued from this one's done */
};

struct fixture {
    uv_loop_t loop;
    struct end ends[ENDS];
    uint8_t text[ENDS][64];
};

static size_t fill(struct netbatch_item *it, const uint8_t **data)
{
    struct end *e = (struct end *)((char *)it - offsetof(struct end, it));

    e->fills++;
    *data = e->data;
    return e->len;
}

static void done(struct netbatch_item *it, ssize_t n)
{
    struct end *e = (struct end *)((char *)it - offsetof(struct end, it));

    e->dones++;
    e->got = n;
    if (e->cancel_on_done != NULL)
        netbatch_cancel(&e->cancel_on_done->it);
    if (e->queue_on_done != NULL)
        netbatch_add(&e->queue_on_done->it);
}

static void end_open(uv_loop_t *loop, struct end *e, int sndbuf)
{
    int sv[2];

    memset(e, 0, sizeof(*e));
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    if (sndbuf > 0)
        assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
    assert_int_equal(uv_pipe_init(loop, &e->pipe, 0), 0);
    assert_int_equal(uv_pipe_open(&e->pipe, sv[0]), 0);
    e->peer = sv[1];
    netbatch_item_init(&e->it, (uv_stream_t *)&e->pipe, fill, done);
}

static void end_close(struct end *e)
{
    netbatch_cancel(&e->it);
    uv_close((uv_handle_t *)&e->pipe, NULL);
    if (e->peer >= 0)
        close(e->peer);
}

/* Reads exactly len bytes from the peer (they are there: the writes were synchronous). */
static void peer_expect(struct end *e, const void *want, size_t len)
{
    uint8_t got[256];
    size_t have = 0;
    ssize_t n;

    assert_true(len <= sizeof(got));
    while (have < len) {
        n = recv(e->peer, got + have, len - have, MSG_DONTWAIT);
        assert_true(n > 0);
        have += (size_t)n;
    }
    assert_memory_equal(got, want, len);
    assert_int_equal(recv(e->peer, got, 1, MSG_DONTWAIT), -1); /* and nothing more */
    assert_int_equal(errno, EAGAIN);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL || uv_loop_init(&f->loop) != 0)
        return -1;
    for (int i = 0; i < ENDS; i++) {
        end_open(&f->loop, &f->ends[i], 0);
        memset(f->text[i], 'a' + i, sizeof(f->text[i]));
        f->ends[i].data = f->text[i];
        f->ends[i].len = 10 + (size_t)i;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    netbatch__use_aio(true);
    for (int i = 0; i < ENDS; i++)
        end_close(&f->ends[i]);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&f->loop) != 0)
        return -1;
    free(f);
    return 0;
}

static void all_written_once(struct fixture *f, int count)
{
    for (int i = 0; i < count; i++) {
        struct end *e = &f->ends[i];

        assert_int_equal(e->fills, 1);
        assert_int_equal(e->dones, 1);
        assert_int_equal(e->got, (ssize_t)e->len);
        peer_expect(e, e->data, e->len);
    }
}

static void test_netbatch_writes_a_turn_in_one_call(void **state)
{
    struct fixture *f = *state;
    unsigned long before = netbatch__calls();

    for (int i = 0; i < ENDS; i++)
        netbatch_add(&f->ends[i].it);
    netbatch_add(&f->ends[0].it); /* twice is once */
    netbatch_flush(&f->loop);
    assert_int_equal(netbatch__calls() - before, 1);
    all_written_once(f, ENDS);
}

static void test_netbatch_without_aio_writes_one_by_one(void **state)
{
    struct fixture *f = *state;
    unsigned long before = netbatch__calls();

    netbatch__use_aio(false);
    for (int i = 0; i < ENDS; i++)
        netbatch_add(&f->ends[i].it);
    netbatch_flush(&f->loop);
    assert_int_equal(netbatch__calls() - before, ENDS);
    all_written_once(f, ENDS);
}

/* A socket that takes part of a write, then none of the next: the owner is told each. */
static void short_write_case(struct fixture *f, bool aio)
{
    struct end e;
    size_t big = 4u << 20;
    uint8_t *data = malloc(big);

    assert_non_null(data);
    memset(data, 'x', big);
    netbatch__use_aio(aio);
    end_open(&f->loop, &e, 4096);
    e.data = data;
    e.len = big;
    netbatch_add(&e.it);
    netbatch_flush(&f->loop);
    assert_int_equal(e.dones, 1);
    assert_true(e.got > 0 && e.got < (ssize_t)big);
    netbatch_add(&e.it);
    netbatch_flush(&f->loop);
    assert_int_equal(e.dones, 2);
    assert_int_equal(e.got, UV_EAGAIN);
    end_close(&e);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    free(data);
}

static void test_netbatch_reports_a_short_write(void **state)
{
    short_write_case(*state, true);
}

static void test_netbatch_reports_a_short_write_without_aio(void **state)
{
    short_write_case(*state, false);
}

static void on_uv_written(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

/* Bytes a stream queued itself (a uv_write waiting for room) go first: the batch leaves
 * that stream alone, and its owner writes behind them. */
static void test_netbatch_leaves_a_stream_with_its_own_queue(void **state)
{
    struct fixture *f = *state;
    struct end e;
    size_t big = 1u << 20;
    uint8_t *data = calloc(1, big);
    uv_write_t *req = malloc(sizeof(*req));
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)big);
    unsigned long before;

    assert_non_null(data);
    assert_non_null(req);
    end_open(&f->loop, &e, 4096);
    assert_int_equal(uv_write(req, (uv_stream_t *)&e.pipe, &b, 1, on_uv_written), 0);
    assert_true(uv_stream_get_write_queue_size((uv_stream_t *)&e.pipe) > 0);
    e.data = f->text[0];
    e.len = 10;
    before = netbatch__calls();
    netbatch_add(&e.it);
    netbatch_add(&f->ends[1].it);
    netbatch_flush(&f->loop);
    assert_int_equal(e.dones, 1);
    assert_int_equal(e.got, UV_EAGAIN);
    assert_int_equal(netbatch__calls() - before, 1); /* the other write only */
    assert_int_equal(f->ends[1].got, (ssize_t)f->ends[1].len);
    end_close(&e); /* cancels the uv_write */
    uv_run(&f->loop, UV_RUN_DEFAULT);
    free(data);
}

static void test_netbatch_a_cancelled_item_is_neither_filled_nor_told(void **state)
{
    struct fixture *f = *state;

    netbatch_add(&f->ends[0].it);
    netbatch_add(&f->ends[1].it);
    netbatch_cancel(&f->ends[0].it);
    netbatch_flush(&f->loop);
    assert_int_equal(f->ends[0].fills, 0);
    assert_int_equal(f->ends[0].dones, 0);
    assert_int_equal(f->ends[1].dones, 1);
    /* Cancelled from an earlier item's done, in the same round: written, not told. */
    f->ends[2].cancel_on_done = &f->ends[3];
    netbatch_add(&f->ends[2].it);
    netbatch_add(&f->ends[3].it);
    netbatch_flush(&f->loop);
    assert_int_equal(f->ends[2].dones, 1);
    assert_int_equal(f->ends[3].fills, 1);
    assert_int_equal(f->ends[3].dones, 0);
    peer_expect(&f->ends[3], f->ends[3].data, f->ends[3].len);
}

static void test_netbatch_what_a_done_queues_leaves_in_the_same_flush(void **state)
{
    struct fixture *f = *state;
    unsigned long before = netbatch__calls();

    f->ends[0].queue_on_done = &f->ends[1];
    netbatch_add(&f->ends[0].it);
    netbatch_flush(&f->loop);
    assert_int_equal(netbatch__calls() - before, 2);
    all_written_once(f, 2);
}

static size_t fill_nothing(struct netbatch_item *it, const uint8_t **data)
{
    (void)data;
    ((struct end *)((char *)it - offsetof(struct end, it)))->fills++;
    return 0;
}

static void test_netbatch_nothing_to_write_is_no_write(void **state)
{
    struct fixture *f = *state;
    unsigned long before = netbatch__calls();

    f->ends[0].it.fill = fill_nothing;
    netbatch_add(&f->ends[0].it);
    netbatch_flush(&f->loop);
    assert_int_equal(f->ends[0].fills, 1);
    assert_int_equal(f->ends[0].dones, 0);
    assert_int_equal(netbatch__calls(), before);
}

/* An owner may write and fail and close during its fill: an item filled before it that
 * went with it is not written (its bytes may be freed) nor told. */
static struct end *cancel_in_fill;

static size_t fill_cancelling(struct netbatch_item *it, const uint8_t **data)
{
    netbatch_cancel(&cancel_in_fill->it);
    return fill(it, data);
}

static void test_netbatch_an_item_cancelled_during_a_fill_is_not_written(void **state)
{
    struct fixture *f = *state;
    uint8_t c;

    cancel_in_fill = &f->ends[1];
    f->ends[0].it.fill = fill_cancelling;
    netbatch_add(&f->ends[1].it);
    netbatch_add(&f->ends[0].it);
    netbatch_flush(&f->loop);
    assert_int_equal(f->ends[1].fills, 1);
    assert_int_equal(f->ends[1].dones, 0);
    assert_int_equal(recv(f->ends[1].peer, &c, 1, MSG_DONTWAIT), -1);
    assert_int_equal(errno, EAGAIN);
    assert_int_equal(f->ends[0].got, (ssize_t)f->ends[0].len);
    peer_expect(&f->ends[0], f->ends[0].data, f->ends[0].len);
}

static void test_netbatch_another_loops_items_wait_for_it(void **state)
{
    struct fixture *f = *state;
    uv_loop_t other;
    struct end e;

    assert_int_equal(uv_loop_init(&other), 0);
    end_open(&other, &e, 0);
    e.data = f->text[5];
    e.len = 7;
    netbatch_add(&e.it);
    netbatch_add(&f->ends[0].it);
    netbatch_flush(&f->loop);
    assert_int_equal(f->ends[0].dones, 1);
    assert_int_equal(e.dones, 0);
    netbatch_flush(&other);
    assert_int_equal(e.dones, 1);
    peer_expect(&e, f->text[5], 7);
    end_close(&e);
    uv_run(&other, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&other), 0);
}

static void closed_peer_case(struct fixture *f, bool aio)
{
    netbatch__use_aio(aio);
    close(f->ends[0].peer);
    f->ends[0].peer = -1;
    netbatch_add(&f->ends[0].it);
    netbatch_add(&f->ends[1].it);
    netbatch_flush(&f->loop);
    assert_int_equal(f->ends[0].dones, 1);
    assert_int_equal(f->ends[0].got, UV_EPIPE);
    assert_int_equal(f->ends[1].got, (ssize_t)f->ends[1].len); /* the others go on */
}

static void test_netbatch_a_closed_peer_is_an_error(void **state)
{
    closed_peer_case(*state, true);
}

static void test_netbatch_a_closed_peer_is_an_error_without_aio(void **state)
{
    closed_peer_case(*state, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_netbatch_writes_a_turn_in_one_call),
        T(test_netbatch_without_aio_writes_one_by_one),
        T(test_netbatch_reports_a_short_write),
        T(test_netbatch_reports_a_short_write_without_aio),
        T(test_netbatch_leaves_a_stream_with_its_own_queue),
        T(test_netbatch_a_cancelled_item_is_neither_filled_nor_told),
        T(test_netbatch_what_a_done_queues_leaves_in_the_same_flush),
        T(test_netbatch_nothing_to_write_is_no_write),
        T(test_netbatch_an_item_cancelled_during_a_fill_is_not_written),
        T(test_netbatch_another_loops_items_wait_for_it),
        T(test_netbatch_a_closed_peer_is_an_error),
        T(test_netbatch_a_closed_peer_is_an_error_without_aio),
#undef T
    };

    signal(SIGPIPE, SIG_IGN); /* as the broker and the runner have it */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
