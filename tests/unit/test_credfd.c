/*
 * Unit tests for src/client/credfd.c: the client side of the handshake, against
 * a broker-side peer thread that answers each dial with a fresh stream whose
 * other end writes one identifying byte, so every caller can check it got its
 * own working connection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "credfd.h"

enum peer_mode { PEER_OK, PEER_REFUSE, PEER_TWO_FDS, PEER_DATAGRAM_FD, PEER_CLOSE };

struct peer {
    int fd;
    enum peer_mode mode;
    int answered;
    pthread_t thread;
};

static void send_reply(int fd, uint8_t byte, const int *fds, int nfds)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * 2)];
    } cmsg;
    struct iovec iov = {&byte, 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

    memset(&cmsg, 0, sizeof(cmsg));
    if (nfds > 0) {
        struct cmsghdr *h;

        msg.msg_control = cmsg.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        h = CMSG_FIRSTHDR(&msg);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(h), fds, sizeof(int) * (size_t)nfds);
    }
    assert_int_equal(sendmsg(fd, &msg, MSG_NOSIGNAL), 1);
}

static void *peer_main(void *arg)
{
    struct peer *p = arg;
    uint8_t req;

    while (recv(p->fd, &req, 1, 0) == 1) {
        int sv[2];
        uint32_t id = (uint32_t)p->answered + 1;

        if (p->mode == PEER_CLOSE) {
            shutdown(p->fd, SHUT_RDWR);
            break;
        }
        if (p->mode == PEER_REFUSE) {
            send_reply(p->fd, 0xFF, NULL, 0);
        } else if (p->mode == PEER_DATAGRAM_FD) {
            assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
            send_reply(p->fd, 0x01, sv, 1);
            close(sv[0]);
            close(sv[1]);
        } else {
            assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
            assert_int_equal(write(sv[1], &id, sizeof(id)), sizeof(id));
            send_reply(p->fd, 0x01, sv, p->mode == PEER_TWO_FDS ? 2 : 1);
            close(sv[0]);
            close(sv[1]);
        }
        p->answered++;
    }
    return NULL;
}

/* Starts a peer; returns the client's end of the control channel. */
static int peer_start(struct peer *p, enum peer_mode mode)
{
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    p->fd = sv[1];
    p->mode = mode;
    p->answered = 0;
    assert_int_equal(pthread_create(&p->thread, NULL, peer_main, p), 0);
    return sv[0];
}

static void peer_stop(struct peer *p, int client_fd)
{
    close(client_fd); /* the peer's recv returns 0 and the thread ends */
    pthread_join(p->thread, NULL);
    close(p->fd);
}

static void test_credfd_dial_returns_a_working_stream(void **state)
{
    struct peer p;
    int ctl = peer_start(&p, PEER_OK), fd, type = 0, flags;
    socklen_t len = sizeof(type);
    uint32_t id = 0;

    fd = credfd_dial(ctl);
    assert_true(fd >= 0);
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len), 0);
    assert_int_equal(type, SOCK_STREAM);
    flags = fcntl(fd, F_GETFD);
    assert_true(flags & FD_CLOEXEC);
    assert_int_equal(read(fd, &id, sizeof(id)), sizeof(id));
    assert_int_equal(id, 1);
    close(fd);
    peer_stop(&p, ctl);
}

static void test_credfd_dial_reports_a_refusal_as_eproto(void **state)
{
    struct peer p;
    int ctl = peer_start(&p, PEER_REFUSE);

    errno = 0;
    assert_int_equal(credfd_dial(ctl), -1);
    assert_int_equal(errno, EPROTO);
    peer_stop(&p, ctl);
}

static void test_credfd_dial_refuses_a_reply_with_two_fds(void **state)
{
    struct peer p;
    int ctl = peer_start(&p, PEER_TWO_FDS);

    assert_int_equal(credfd_dial(ctl), -1);
    assert_int_equal(errno, EPROTO);
    peer_stop(&p, ctl);
}

static void test_credfd_dial_refuses_a_non_stream_fd(void **state)
{
    struct peer p;
    int ctl = peer_start(&p, PEER_DATAGRAM_FD);

    assert_int_equal(credfd_dial(ctl), -1);
    assert_int_equal(errno, EPROTO);
    peer_stop(&p, ctl);
}

static void test_credfd_dial_on_a_shut_down_channel_is_epipe(void **state)
{
    struct peer p;
    int ctl = peer_start(&p, PEER_CLOSE);

    assert_int_equal(credfd_dial(ctl), -1);
    assert_int_equal(errno, EPIPE);
    peer_stop(&p, ctl);
}

static void test_credfd_dial_on_a_bad_fd_is_ebadf_or_enotsock(void **state)
{
    int pipefd[2], stream[2];

    assert_int_equal(credfd_dial(-1), -1);
    assert_int_equal(errno, EBADF);
    assert_int_equal(credfd_dial(1000), -1);
    assert_int_equal(errno, EBADF);
    assert_int_equal(pipe(pipefd), 0);
    assert_int_equal(credfd_dial(pipefd[0]), -1);
    assert_int_equal(errno, ENOTSOCK);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, stream), 0);
    assert_int_equal(credfd_dial(stream[0]), -1);
    assert_int_equal(errno, ENOTSOCK);
    close(pipefd[0]);
    close(pipefd[1]);
    close(stream[0]);
    close(stream[1]);
}

#define THREADS 16
#define DIALS_PER_THREAD 50

struct dialer {
    int ctl;
    uint32_t ids[DIALS_PER_THREAD];
    int failures;
};

static void *dialer_main(void *arg)
{
    struct dialer *d = arg;

    for (int i = 0; i < DIALS_PER_THREAD; i++) {
        int fd = credfd_dial(d->ctl);
        uint32_t id = 0;

        if (fd < 0 || read(fd, &id, sizeof(id)) != sizeof(id))
            d->failures++;
        d->ids[i] = id;
        if (fd >= 0)
            close(fd);
    }
    return NULL;
}

static void test_credfd_concurrent_dials_each_get_a_distinct_working_fd(void **state)
{
    struct peer p;
    struct dialer d[THREADS];
    pthread_t t[THREADS];
    int ctl = peer_start(&p, PEER_OK);
    static int seen[THREADS * DIALS_PER_THREAD + 1];

    memset(d, 0, sizeof(d));
    memset(seen, 0, sizeof(seen));
    for (int i = 0; i < THREADS; i++) {
        d[i].ctl = ctl;
        assert_int_equal(pthread_create(&t[i], NULL, dialer_main, &d[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(d[i].failures, 0);
        for (int k = 0; k < DIALS_PER_THREAD; k++) {
            assert_in_range(d[i].ids[k], 1, THREADS * DIALS_PER_THREAD);
            seen[d[i].ids[k]]++;
        }
    }
    /* Every connection the peer minted reached exactly one caller: none lost, none shared.
     * (The peer counts after replying: join it before reading its count.) */
    peer_stop(&p, ctl);
    assert_int_equal(p.answered, THREADS * DIALS_PER_THREAD);
    for (int id = 1; id <= THREADS * DIALS_PER_THREAD; id++)
        assert_int_equal(seen[id], 1);
}

static void test_credfd_from_env_reads_and_checks_the_variable(void **state)
{
    unsetenv(CREDFD_ENV_FD);
    assert_int_equal(credfd_from_env(), -1);
    assert_int_equal(errno, ENOENT);
    setenv(CREDFD_ENV_FD, "3", 1);
    assert_int_equal(credfd_from_env(), 3);
    setenv(CREDFD_ENV_FD, "17", 1);
    assert_int_equal(credfd_from_env(), 17);
    const char *bad[] = {"", "2", "0", "-3", "3x", " 3", "abc", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv(CREDFD_ENV_FD, bad[i], 1);
        errno = 0;
        assert_int_equal(credfd_from_env(), -1);
        assert_int_equal(errno, EINVAL);
    }
    unsetenv(CREDFD_ENV_FD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_credfd_dial_returns_a_working_stream),
        cmocka_unit_test(test_credfd_dial_reports_a_refusal_as_eproto),
        cmocka_unit_test(test_credfd_dial_refuses_a_reply_with_two_fds),
        cmocka_unit_test(test_credfd_dial_refuses_a_non_stream_fd),
        cmocka_unit_test(test_credfd_dial_on_a_shut_down_channel_is_epipe),
        cmocka_unit_test(test_credfd_dial_on_a_bad_fd_is_ebadf_or_enotsock),
        cmocka_unit_test(test_credfd_concurrent_dials_each_get_a_distinct_working_fd),
        cmocka_unit_test(test_credfd_from_env_reads_and_checks_the_variable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
