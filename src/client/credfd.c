/*
 * credfd.c - libcredfd: the dial handshake. See credfd.h.
 *
 * The wire format (DESIGN.md section 1): send the 1-byte datagram 0x01; the
 * reply is 0x01 with exactly one fd in SCM_RIGHTS, or 0xFF. A reply carrying
 * anything else is a protocol error, and every fd it carried is closed.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "credfd.h"

#define CREDFD_MAX_FDS 8 /* room to notice (and close) a reply with too many fds */
#define CREDFD_LOCKS 64  /* handshakes on one fd share a lock; different fds rarely do */

/* Statically initialised, so a dial needs no setup call and works from any thread. */
static pthread_mutex_t locks[CREDFD_LOCKS] = {
#define L PTHREAD_MUTEX_INITIALIZER
    L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L,
    L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L,
#undef L
};

int credfd_from_env(void)
{
    const char *v = getenv(CREDFD_ENV_FD);
    char *end;
    long fd;

    if (v == NULL) {
        errno = ENOENT;
        return -1;
    }
    if (*v < '0' || *v > '9') { /* strtol would accept spaces and a sign */
        errno = EINVAL;
        return -1;
    }
    errno = 0;
    fd = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || fd < 3 || fd > INT_MAX) {
        errno = EINVAL;
        return -1;
    }
    return (int)fd;
}

/* Closes every fd in SCM_RIGHTS of msg; returns how many there were. */
static int take_fds(struct msghdr *msg, int *first)
{
    int n = 0;

    *first = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
        size_t count;

        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; i++) {
            int fd;

            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (n == 0)
                *first = fd;
            else
                close(fd);
            n++;
        }
    }
    return n;
}

static int dial_locked(int ctl_fd)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * CREDFD_MAX_FDS)];
    } cmsg;
    uint8_t req = 0x01, reply[2];
    struct iovec iov = {reply, sizeof(reply)};
    struct msghdr msg;
    ssize_t n;
    int fd, nfds, type = 0;
    socklen_t len = sizeof(type);

    do {
        n = send(ctl_fd, &req, 1, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -1; /* EPIPE: shut down; EBADF, ENOTSOCK as they come */
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.buf;
    msg.msg_controllen = sizeof(cmsg.buf);
    for (;;) {
        struct pollfd p = {.fd = ctl_fd, .events = POLLIN};

        n = recvmsg(ctl_fd, &msg, MSG_CMSG_CLOEXEC);
        if (n >= 0)
            break;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            /* Someone made the control fd non-blocking: wait for the reply. */
            if (poll(&p, 1, -1) < 0 && errno != EINTR)
                return -1;
        } else if (errno != EINTR) {
            return -1;
        }
    }
    nfds = take_fds(&msg, &fd);
    if (n == 0 && nfds == 0) {
        errno = EPIPE; /* end of file: the broker shut the channel down */
        return -1;
    }
    if (n == 1 && reply[0] == 0x01 && nfds == 1 && !(msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) &&
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM)
        return fd;
    if (fd >= 0)
        close(fd);
    errno = EPROTO;
    return -1;
}

int credfd_dial(int ctl_fd)
{
    pthread_mutex_t *lock;
    int type = 0, fd, saved;
    socklen_t len = sizeof(type);

    if (ctl_fd < 0) {
        errno = EBADF;
        return -1;
    }
    if (getsockopt(ctl_fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
        return -1; /* EBADF or ENOTSOCK */
    if (type != SOCK_SEQPACKET) {
        errno = ENOTSOCK;
        return -1;
    }
    lock = &locks[(unsigned)ctl_fd % CREDFD_LOCKS];
    pthread_mutex_lock(lock);
    fd = dial_locked(ctl_fd);
    saved = errno;
    pthread_mutex_unlock(lock);
    errno = saved;
    return fd;
}
