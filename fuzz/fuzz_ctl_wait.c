/*
 * fuzz_ctl_wait.c - the control channel with dials waiting (ctl.h: ctl_open,
 * ctl_kick, ctl_close): the real channel on a real loop and socketpair, driven
 * by a sequence of what a child and the owner can do.
 *
 * The owner mints real socketpairs up to its slot limit and answers
 * CTL_MINT_WAIT beyond it, as the broker does at max_conns. Timers are not
 * driven (a fuzz input cannot wait): dials wait either forever (10^6 s) or
 * not at all (wait_ms 0, refused once they would wait).
 *
 * Input: [slots][max_waiting][wait][ops...], each op one byte:
 *   0 child sends a dial     1 child sends another datagram   2 child reads a reply
 *   3 owner frees a slot     4 a loop turn                     5 child closes its end
 *   6 the channel is closed (the invocation ends, dials may be waiting)
 *
 * Properties: a reply is 0x01 with exactly one fd or 0xFF with none; the owner
 * never has more live connections than its slots; no more dials wait than
 * max_waiting; once the owner has slots for all and the channel is open, every
 * datagram the child sent gets exactly one reply; after the channel is closed
 * the child reads the end of the channel, never a reply fd that stays open; and
 * when it is all torn down, no fd is left open that was not open before.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "ctl.h"
#include "fuzz.h"

#define MAX_LIVE 256

struct owner {
    int slots;              /* connections the owner will hold at once */
    int live;
    int ends[MAX_LIVE];     /* its ends of the minted pairs, -1 when freed */
    struct ctl *ctl;
};

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    FUZZ_CHECK(d != NULL, "opendir: %s", strerror(errno));
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own fd */
}

static int owner_mint(void *data, int *peer_fd, uint64_t *retry_ms)
{
    struct owner *o = data;
    int sv[2];

    *peer_fd = -1;
    *retry_ms = 0;
    if (o->live >= o->slots)
        return CTL_MINT_WAIT;
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair: %s",
               strerror(errno));
    for (int i = 0; i < MAX_LIVE; i++) {
        if (o->ends[i] < 0) {
            o->ends[i] = sv[0];
            o->live++;
            *peer_fd = sv[1];
            return 0;
        }
    }
    close(sv[0]);
    close(sv[1]);
    return -EMFILE;
}

static void owner_refused(void *data, enum ctl_refusal why)
{
    FUZZ_CHECK(why == CTL_REFUSED_QUEUE_FULL || why == CTL_REFUSED_WAITED, "refusal %d", why);
}

static void owner_free_one(struct owner *o)
{
    for (int i = 0; i < MAX_LIVE; i++) {
        if (o->ends[i] >= 0) {
            close(o->ends[i]);
            o->ends[i] = -1;
            o->live--;
            ctl_kick(o->ctl);
            return;
        }
    }
}

/* Reads one reply if there is one: 1 (a reply, checked and its fd closed), 0 (none yet),
 * -1 (the end of the channel). */
static int child_read(int fd)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * 4)];
    } cmsg;
    uint8_t byte[2];
    struct iovec iov = {byte, sizeof(byte)};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cmsg.buf,
                         .msg_controllen = sizeof(cmsg.buf)};
    ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    int nfds = 0;

    if (n < 0) {
        FUZZ_CHECK(errno == EAGAIN || errno == ECONNRESET, "recvmsg: %s", strerror(errno));
        return errno == EAGAIN ? 0 : -1;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int got = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));

            for (int i = 0; i < got; i++) {
                int rfd;

                memcpy(&rfd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                close(rfd);
            }
            nfds += got;
        }
    }
    if (n == 0 && nfds == 0)
        return -1;
    FUZZ_CHECK(n == 1 && !(msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)), "reply of %zd bytes", n);
    FUZZ_CHECK((byte[0] == CTL_REPLY_OK && nfds == 1) || (byte[0] == CTL_REPLY_REFUSED && nfds == 0),
               "reply 0x%02x with %d fds", byte[0], nfds);
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct owner o;
    struct ctl_limits limits;
    uv_loop_t loop;
    int sv[2], fds_before, child, replies = 0, sent = 0;
    bool child_closed = false, ctl_closed = false, eof = false;
    static const struct ctl_ops ops = {owner_mint, owner_refused};

    static bool warm;

    if (size < 3)
        return 0;
    if (!warm) {
        /* libuv's first loop opens its process-wide signal pipe, once: not ours to count. */
        FUZZ_CHECK(uv_loop_init(&loop) == 0 && uv_loop_close(&loop) == 0, "uv_loop_init");
        warm = true;
    }
    fds_before = count_fds();
    memset(&o, 0, sizeof(o));
    for (int i = 0; i < MAX_LIVE; i++)
        o.ends[i] = -1;
    o.slots = data[0] % 4;
    limits.max_waiting = data[1] % 9;
    limits.wait_ms = data[2] % 2 ? 1000000000ull : 0;
    FUZZ_CHECK(uv_loop_init(&loop) == 0, "uv_loop_init");
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    child = sv[1];
    FUZZ_CHECK(ctl_open(&loop, sv[0], &ops, &limits, &o, &o.ctl) == 0, "ctl_open");

    for (size_t i = 3; i < size && i < 3 + 512; i++) {
        switch (data[i] % 7) {
        case 0:
        case 1:
            if (!child_closed &&
                send(child, data[i] % 7 == 0 ? "\x01" : "\x02", 1, MSG_DONTWAIT) == 1)
                sent++;
            break;
        case 2:
            if (!child_closed && !eof) {
                int r = child_read(child);

                replies += r > 0;
                eof = r < 0;
            }
            break;
        case 3:
            owner_free_one(&o);
            break;
        case 4:
            uv_run(&loop, UV_RUN_NOWAIT);
            break;
        case 5:
            if (!child_closed) {
                close(child);
                child_closed = true;
            }
            break;
        case 6:
            if (!ctl_closed) {
                ctl_close(o.ctl);
                o.ctl = NULL;
                ctl_closed = true;
            }
            break;
        }
        FUZZ_CHECK(o.live <= o.slots, "%d live connections, %d slots", o.live, o.slots);
        FUZZ_CHECK(ctl_closed || ctl_waiting(o.ctl) <= limits.max_waiting, "%u waiting, at most %u",
                   ctl_waiting(o.ctl), limits.max_waiting);
        FUZZ_CHECK(replies <= sent, "%d replies to %d datagrams", replies, sent);
    }

    /* Slots for everyone: an open channel answers every datagram exactly once. */
    o.slots = MAX_LIVE;
    ctl_kick(o.ctl);
    for (int turn = 0; turn < 10000 && !child_closed && !eof && replies < sent; turn++) {
        int r;

        while (o.live > 0)
            owner_free_one(&o);
        uv_run(&loop, UV_RUN_NOWAIT);
        while (!eof && (r = child_read(child)) != 0) {
            replies += r > 0;
            eof = r < 0;
        }
    }
    if (!child_closed && !ctl_closed && !eof)
        FUZZ_CHECK(replies == sent, "%d replies to %d datagrams", replies, sent);
    FUZZ_CHECK(replies <= sent, "%d replies to %d datagrams", replies, sent);

    /* The invocation ends: the child reads the end of the channel after any last replies. */
    ctl_close(o.ctl);
    o.ctl = NULL; /* freed by the loop: the owner's kicks go nowhere from here */
    uv_run(&loop, UV_RUN_DEFAULT);
    FUZZ_CHECK(uv_loop_close(&loop) == 0, "a handle of the channel is still open");
    if (!child_closed) {
        int r;

        while (!eof && (r = child_read(child)) != 0)
            eof = r < 0;
        FUZZ_CHECK(eof, "no end of channel after ctl_close");
        close(child);
    }
    while (o.live > 0)
        owner_free_one(&o);
    FUZZ_CHECK(count_fds() == fds_before, "%d fds open, %d before", count_fds(), fds_before);
    return 0;
}
