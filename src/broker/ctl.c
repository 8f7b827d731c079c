/*
 * ctl.c - the control channel. See ctl.h.
 *
 * Dials are read a batch at a time (recvmmsg) and their replies sent together
 * (sendmmsg), non-blocking. A child that floods dials without reading the replies
 * fills its receive queue; then the replies not sent are kept in order (with their
 * fds) and reading pauses until the socket is writable again, so no dial is
 * answered twice or lost, and the broker never blocks.
 *
 * Dials the owner cannot serve now wait in a ring of their arrival times, in
 * order: a new dial never overtakes a waiting one. One timer serves them when a
 * rate token is due, and refuses the oldest once it has waited wait_ms; ctl_kick
 * (a connection slot freed) serves them on the next loop turn. Nothing is minted
 * for a waiting dial, so a waiting dial holds no fd.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctl.h"
#include "err.h"
#include "log.h"

/* Datagrams handled per readiness callback, so one child cannot starve the loop. */
#define CTL_BATCH 64
/* Datagrams taken per recvmmsg, and their replies sent per sendmmsg: a short count says the
 * queue is empty (one at a time took a last recvmsg for its EAGAIN), and 16 clients
 * dialling at once cost two system calls, not 32 (bench W1). */
#define CTL_RECV_BATCH 16
/* Replies sent with one sendmmsg: those of a batch of dials, like the batch itself. */
#define CTL_OUT_MAX CTL_RECV_BATCH

struct ctl_reply {
    uint8_t byte;
    int fd; /* the peer end passed with it, or -1; the broker's copy is closed once sent */
};

struct ctl {
    uv_poll_t poll;
    uv_timer_t timer;      /* the next waiting dial's token or deadline; a kick */
    int fd;
    struct ctl_ops ops;
    struct ctl_limits limits;
    void *data;
    bool closed;
    bool stopped;          /* reading stopped for good (the child is gone, an error) */
    int open_handles;      /* poll and timer: freed when both are closed */
    bool have_pending;     /* replies in out wait for the socket to become writable */
    struct ctl_reply out[CTL_OUT_MAX]; /* decided, not sent yet, in order */
    unsigned nout;
    uint64_t *waiting;     /* ring of waiting dials' arrival times (uv_now, ms) */
    unsigned wait_head, nwaiting, wait_cap;
};

enum ctl_verdict ctl_classify(ssize_t n, const uint8_t *data, int msg_flags, bool had_ancillary)
{
    if (n != 1 || had_ancillary)
        return CTL_VERDICT_REFUSE;
    if (msg_flags & (MSG_TRUNC | MSG_CTRUNC))
        return CTL_VERDICT_REFUSE;
    return data[0] == CTL_DIAL_REQUEST ? CTL_VERDICT_DIAL : CTL_VERDICT_REFUSE;
}

int ctl_close_attached_fds(struct msghdr *msg)
{
    int closed = 0;

    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
        size_t n;
        int *fds;

        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        fds = (int *)(void *)CMSG_DATA(c);
        for (size_t i = 0; i < n; i++) {
            int fd;

            memcpy(&fd, fds + i, sizeof(fd));
            if (fd >= 0 && close(fd) == 0)
                closed++;
        }
    }
    return closed;
}

static void on_ctl_event(uv_poll_t *poll, int status, int events);

/* Sends the replies in out, oldest first; those sent leave out (and the broker's copies
 * of their fds are closed). Returns 0 (all sent), -EAGAIN (the rest wait for the socket
 * to become writable) or another -errno. */
static int ctl__send_replies(struct ctl *c)
{
    _Alignas(struct cmsghdr) char cmsg[CTL_OUT_MAX][CMSG_SPACE(sizeof(int))];
    struct iovec iov[CTL_OUT_MAX];
    struct mmsghdr mm[CTL_OUT_MAX];
    unsigned sent = 0, i;
    int n, r = 0;

    memset(cmsg, 0, sizeof(cmsg[0]) * c->nout);
    memset(mm, 0, sizeof(mm[0]) * c->nout);
    for (i = 0; i < c->nout; i++) {
        struct msghdr *msg = &mm[i].msg_hdr;
        struct cmsghdr *h;

        iov[i].iov_base = &c->out[i].byte;
        iov[i].iov_len = 1;
        msg->msg_iov = &iov[i];
        msg->msg_iovlen = 1;
        if (c->out[i].fd < 0)
            continue;
        msg->msg_control = cmsg[i];
        msg->msg_controllen = sizeof(cmsg[i]);
        h = CMSG_FIRSTHDR(msg);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(h), &c->out[i].fd, sizeof(int));
    }
    while (sent < c->nout) {
        n = sendmmsg(c->fd, mm + sent, c->nout - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r = n == 0 || errno == EWOULDBLOCK ? -EAGAIN : -errno;
            break;
        }
        for (i = sent; i < sent + (unsigned)n; i++) {
            if (c->out[i].fd >= 0)
                close(c->out[i].fd);
        }
        sent += (unsigned)n;
    }
    memmove(c->out, c->out + sent, (c->nout - sent) * sizeof(c->out[0]));
    c->nout -= sent;
    return r;
}

/* Replies nobody will read: their fds are closed. */
static void ctl__drop_replies(struct ctl *c)
{
    for (unsigned i = 0; i < c->nout; i++) {
        if (c->out[i].fd >= 0)
            close(c->out[i].fd);
    }
    c->nout = 0;
}

/* Reading ends for good: waiting dials have nobody left to answer. */
static void ctl__stop(struct ctl *c)
{
    c->stopped = true;
    c->nwaiting = 0;
    ctl__drop_replies(c);
    uv_poll_stop(&c->poll);
    uv_timer_stop(&c->timer);
}

/* Sends the replies decided so far, or parks them until the socket is writable. Returns
 * false when reading must pause or stop. */
static bool ctl__flush(struct ctl *c)
{
    int r;

    if (c->have_pending || c->stopped || c->closed)
        return false;
    if ((r = ctl__send_replies(c)) == -EAGAIN) {
        c->have_pending = true;
        if (uv_poll_start(&c->poll, UV_WRITABLE, on_ctl_event) != 0)
            ctl__stop(c);
        return false;
    }
    if (r != 0) {
        /* The child is gone: the broker's copies of the peer ends go. */
        log_debug("control channel: reply not delivered: %s", strerror(-r));
        ctl__stop(c);
        return false;
    }
    return true;
}

/* Decides a reply; it leaves with the others of its batch (ctl__flush), or at once when
 * the batch is full. Returns false when reading must pause or stop. */
static bool ctl__reply(struct ctl *c, uint8_t byte, int fd)
{
    assert(c->nout < CTL_OUT_MAX); /* a full out was flushed, or its caller stopped */
    c->out[c->nout].byte = byte;
    c->out[c->nout].fd = fd;
    c->nout++;
    return c->nout < CTL_OUT_MAX || ctl__flush(c);
}

/* True if the child's end has gone away or shut down its sending side. */
static bool ctl__peer_hung_up(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};

    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

static void on_ctl_timer(uv_timer_t *t);

/* Queues a dial that must wait. Returns false when the queue is full (it is refused). */
static bool ctl__wait_push(struct ctl *c, uint64_t now)
{
    if (c->nwaiting == c->limits.max_waiting)
        return false;
    if (c->nwaiting == c->wait_cap) {
        /* Grown on demand (most invocations never wait), unrolled into the new array. */
        unsigned cap = c->wait_cap ? c->wait_cap * 2 : 16;
        uint64_t *ring;

        if (cap > c->limits.max_waiting)
            cap = c->limits.max_waiting;
        if ((ring = calloc(cap, sizeof(*ring))) == NULL)
            return false;
        for (unsigned i = 0; i < c->nwaiting; i++)
            ring[i] = c->waiting[(c->wait_head + i) % c->wait_cap];
        free(c->waiting);
        c->waiting = ring;
        c->wait_head = 0;
        c->wait_cap = cap;
    }
    c->waiting[(c->wait_head + c->nwaiting) % c->wait_cap] = now;
    c->nwaiting++;
    return true;
}

static void ctl__wait_pop(struct ctl *c)
{
    c->wait_head = (c->wait_head + 1) % c->wait_cap;
    c->nwaiting--;
}

/* Answers a dial with what the owner's mint said (0 and peer_fd, or a refusal). Returns
 * ctl__reply's verdict. */
static bool ctl__answer(struct ctl *c, int minted, int peer_fd)
{
    return ctl__reply(c, minted == 0 ? CTL_REPLY_OK : CTL_REPLY_REFUSED,
                      minted == 0 ? peer_fd : -1);
}

/* Refuses a dial for the channel's own reason. Returns ctl__reply's verdict. */
static bool ctl__refuse_waiting(struct ctl *c, enum ctl_refusal why)
{
    if (c->ops.refused != NULL)
        c->ops.refused(c->data, why);
    return ctl__reply(c, CTL_REPLY_REFUSED, -1);
}

/*
 * Answers waiting dials, oldest first, while the owner can serve them and the child takes
 * replies. Returns false when replies must pause (or reading stopped). Then, or when the
 * owner has no slot, the timer is set for the head's token or deadline.
 */
static bool ctl__serve_waiting(struct ctl *c)
{
    while (c->nwaiting > 0 && !c->have_pending && !c->stopped && !c->closed) {
        uint64_t now = uv_now(c->poll.loop), arrived = c->waiting[c->wait_head], retry = 0;
        uint64_t deadline = arrived + c->limits.wait_ms;
        int peer_fd = -1, r;

        if (now >= deadline) {
            ctl__wait_pop(c);
            if (!ctl__refuse_waiting(c, CTL_REFUSED_WAITED))
                return false;
            continue;
        }
        if ((r = c->ops.mint(c->data, &peer_fd, &retry)) == CTL_MINT_WAIT) {
            uint64_t due = retry > 0 && now + retry < deadline ? retry : deadline - now;

            uv_timer_start(&c->timer, on_ctl_timer, due, 0);
            return true;
        }
        ctl__wait_pop(c);
        if (!ctl__answer(c, r, peer_fd))
            return false;
    }
    if (c->nwaiting == 0)
        uv_timer_stop(&c->timer);
    return !c->have_pending && !c->stopped && !c->closed;
}

/* One dial from the child: served now if nothing waits and the owner can, else queued.
 * A pause its reply causes shows in have_pending (the batch's reader looks there). */
static void ctl__dial(struct ctl *c)
{
    uint64_t now = uv_now(c->poll.loop), retry = 0;
    int peer_fd = -1, r;

    if (c->nwaiting == 0) {
        if ((r = c->ops.mint(c->data, &peer_fd, &retry)) != CTL_MINT_WAIT) {
            (void)ctl__answer(c, r, peer_fd);
            return;
        }
    }
    if (!ctl__wait_push(c, now))
        (void)ctl__refuse_waiting(c, CTL_REFUSED_QUEUE_FULL);
    else if (c->nwaiting == 1)
        (void)ctl__serve_waiting(c); /* sets the timer */
}

/* One datagram's part of a recvmmsg: its byte and room for what may come with it. */
struct ctl_datagram {
    uint8_t data[2];
    struct iovec iov;
    _Alignas(struct cmsghdr) char cmsg[CMSG_SPACE(sizeof(int) * CTL_MAX_ATTACHED_FDS)];
};

/* Handles one datagram received: its reply is decided (sent with its batch's). */
static void ctl__datagram(struct ctl *c, const struct ctl_datagram *d, const struct msghdr *msg,
                          unsigned len)
{
    bool had_ancillary = msg->msg_controllen > 0;
    enum ctl_verdict verdict;

    /* On SOCK_SEQPACKET, 0 is both "an empty datagram" and "end of file". */
    if (len == 0 && !had_ancillary && ctl__peer_hung_up(c->fd)) {
        /* A child that shut down only its sending side still reads its replies: they go
         * first. Paused, the end is read again once they have gone. */
        if (ctl__flush(c) || !c->have_pending)
            ctl__stop(c);
        else
            log_debug("control channel: the child's dials ended; its last replies wait for "
                      "room in its socket");
        return;
    }
    verdict = ctl_classify(len, d->data, msg->msg_flags, had_ancillary);
    if (verdict == CTL_VERDICT_DIAL)
        ctl__dial(c);
    else
        (void)ctl__reply(c, CTL_REPLY_REFUSED, -1);
}

/*
 * Reads dials a batch at a time and sends the batch's replies together. Each datagram
 * decides at most one reply (a dial that must wait decides none, and serves the ring only
 * when it is the ring's one entry), and out is empty when a batch starts (every batch and
 * every callback ends with a flush), so a batch's replies fit out: none is ever decided
 * while earlier ones wait for the socket.
 */
static void ctl__read_datagrams(struct ctl *c)
{
    struct ctl_datagram dg[CTL_RECV_BATCH];
    struct mmsghdr mm[CTL_RECV_BATCH];
    unsigned done = 0;

    while (done < CTL_BATCH && !c->closed && !c->stopped && !c->have_pending) {
        unsigned want = CTL_BATCH - done < CTL_RECV_BATCH ? CTL_BATCH - done : CTL_RECV_BATCH;
        unsigned i;
        int n;

        assert(c->nout == 0);
        memset(mm, 0, want * sizeof(mm[0]));
        for (i = 0; i < want; i++) {
            dg[i].iov.iov_base = dg[i].data;
            dg[i].iov.iov_len = sizeof(dg[i].data);
            mm[i].msg_hdr.msg_iov = &dg[i].iov;
            mm[i].msg_hdr.msg_iovlen = 1;
            mm[i].msg_hdr.msg_control = dg[i].cmsg;
            mm[i].msg_hdr.msg_controllen = sizeof(dg[i].cmsg);
        }
        n = recvmmsg(c->fd, mm, want, MSG_DONTWAIT | MSG_CMSG_CLOEXEC, NULL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                log_debug("control channel: recvmmsg: %s", strerror(errno));
                ctl__stop(c);
            }
            return;
        }
        for (i = 0; i < (unsigned)n; i++)
            ctl_close_attached_fds(&mm[i].msg_hdr);
        /* A full out is flushed by the reply that filled it, the batch's last: a pause
         * there stops nothing but the next batch. */
        for (i = 0; i < (unsigned)n && !c->stopped && !c->closed && !c->have_pending; i++)
            ctl__datagram(c, &dg[i], &mm[i].msg_hdr, mm[i].msg_len);
        if (!ctl__flush(c) || (unsigned)n < want)
            return; /* paused, stopped, or the queue is empty */
        done += (unsigned)n;
    }
}

static void on_ctl_timer(uv_timer_t *t)
{
    struct ctl *c = t->data;

    if (!c->closed && ctl__serve_waiting(c))
        (void)ctl__flush(c);
}

static void on_ctl_event(uv_poll_t *poll, int status, int events)
{
    struct ctl *c = poll->data;

    if (c->closed)
        return;
    if (status < 0) {
        ctl__stop(c);
        return;
    }
    if (c->have_pending) {
        c->have_pending = false;
        if (!ctl__flush(c))
            return;
        if (uv_poll_start(&c->poll, UV_READABLE, on_ctl_event) != 0) {
            ctl__stop(c);
            return;
        }
        /* The child takes replies again: those that waited come first. */
        if (!ctl__serve_waiting(c) || !ctl__flush(c))
            return;
    }
    if (events & UV_READABLE)
        ctl__read_datagrams(c);
}

int ctl_open(uv_loop_t *loop, int fd, const struct ctl_ops *ops, const struct ctl_limits *limits,
             void *data, struct ctl **out)
{
    struct ctl *c;
    int flags, r;

    *out = NULL;
    if ((flags = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        r = -errno;
        close(fd);
        return r;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        close(fd);
        return ERR_NOMEM;
    }
    c->fd = fd;
    c->ops = *ops;
    c->limits = *limits;
    c->data = data;
    if ((r = uv_timer_init(loop, &c->timer)) != 0) {
        close(fd);
        free(c);
        return r;
    }
    c->timer.data = c;
    c->open_handles = 1;
    if ((r = uv_poll_init(loop, &c->poll, fd)) != 0) {
        ctl_close(c);
        return r;
    }
    c->poll.data = c;
    c->open_handles++;
    if ((r = uv_poll_start(&c->poll, UV_READABLE, on_ctl_event)) != 0) {
        ctl_close(c);
        return r;
    }
    *out = c;
    return 0;
}

void ctl_kick(struct ctl *c)
{
    if (c != NULL && !c->closed && !c->stopped && c->nwaiting > 0)
        uv_timer_start(&c->timer, on_ctl_timer, 0, 0);
}

unsigned ctl_waiting(const struct ctl *c)
{
    return c->nwaiting;
}

static void ctl_close_cb(uv_handle_t *h)
{
    struct ctl *c = h->data;

    if (--c->open_handles > 0)
        return;
    close(c->fd);
    free(c->waiting);
    free(c);
}

void ctl_close(struct ctl *c)
{
    if (c == NULL || c->closed)
        return;
    c->closed = true;
    /* Authority ends here: whoever still holds the child's end reads EOF (a dial still
     * waiting gets it instead of a reply). */
    shutdown(c->fd, SHUT_RDWR);
    ctl__drop_replies(c);
    c->nwaiting = 0;
    uv_close((uv_handle_t *)&c->timer, ctl_close_cb);
    if (c->open_handles > 1) {
        uv_poll_stop(&c->poll);
        uv_close((uv_handle_t *)&c->poll, ctl_close_cb);
    }
}
