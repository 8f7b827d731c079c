/*
 * fuzz_ctl.c - the control channel's verdict on a datagram (ctl.h:
 * ctl_classify) and the closing of every fd a child attaches
 * (ctl_close_attached_fds).
 *
 * The harness plays the kernel: from the input it builds what recvmsg() would
 * hand ctl.c for one datagram, with ctl.c's own buffers (2 data bytes, room for
 * CTL_MAX_ATTACHED_FDS fds) or a smaller control buffer, following the
 * kernel's rules (net/core/scm.c put_cmsg and scm_detach_fds): ancillary
 * messages are well formed, a message that does not fit is cut and flagged
 * MSG_CTRUNC, SCM_RIGHTS fds that do not fit are closed by the kernel and never
 * reach the receiver, a datagram longer than the buffer is cut and flagged
 * MSG_TRUNC. Every attached fd is a real one (pipe2()), so closing can be
 * checked.
 *
 * Input: [len][byte0][byte1][flag noise][control room][entries: (kind, count)...]
 * with len % 8 the datagram's length, kind % 4 one of SCM_RIGHTS (count % 254
 * fds), SCM_CREDENTIALS, another SOL_SOCKET type, another level.
 *
 * Properties: only a datagram of exactly one byte 0x01, with no ancillary data
 * and neither MSG_TRUNC nor MSG_CTRUNC, is a dial (also for ctl_classify on raw
 * values: any n, flags and ancillary bit); ctl_close_attached_fds closes every
 * fd that reached the receiver, says how many, and closes nothing else (two
 * bystander fds stay open): no fd leaks, none is closed twice.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctl.h"
#include "fuzz.h"

#define MAX_ENTRIES 8
#define MAX_FDS 300 /* in a message, over all its SCM_RIGHTS entries */

static bool fd_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

/* Two fresh fds; aborts if the process is out of them (a leak from an earlier run). */
static void new_fd_pair(int fds[2])
{
    FUZZ_CHECK(pipe2(fds, O_CLOEXEC) == 0, "pipe2: %s (fds leaking?)", strerror(errno));
}

static void check_classify_raw(const uint8_t *data, size_t size)
{
    uint8_t byte[1] = {size > 0 ? data[0] : 0};
    ssize_t n = size > 1 ? (ssize_t)(int8_t)data[1] : 1;
    int flags = 0;
    bool anc = size > 6 && (data[6] & 1);
    enum ctl_verdict v;

    for (size_t i = 2; i < 6 && i < size; i++)
        flags = (int)((unsigned)flags << 8 | data[i]);
    v = ctl_classify(n, byte, flags, anc);
    FUZZ_CHECK((v == CTL_VERDICT_DIAL) == (n == 1 && byte[0] == CTL_DIAL_REQUEST && !anc &&
                                           (flags & (MSG_TRUNC | MSG_CTRUNC)) == 0),
               "ctl_classify(%zd, 0x%02x, 0x%x, %d) = %d", n, byte[0], flags, anc, v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * CTL_MAX_ATTACHED_FDS)];
    } cmsg;
    static const int noise[] = {MSG_OOB,      MSG_EOR,  MSG_ERRQUEUE, MSG_CMSG_CLOEXEC,
                                MSG_DONTWAIT, MSG_PEEK, MSG_WAITALL,  MSG_NOSIGNAL};
    int installed[MAX_FDS], bystander[2], flags = 0, closed;
    size_t ninstalled = 0, at = 5, len, room, used = 0, total_fds = 0;
    uint8_t dgram[2];
    ssize_t n;
    struct iovec iov = {dgram, sizeof(dgram)};
    struct msghdr msg;
    bool had_ancillary, want_dial;
    enum ctl_verdict v;

    check_classify_raw(data, size);
    if (size < 5)
        return 0;
    len = data[0] % 8;
    dgram[0] = data[1];
    dgram[1] = data[2];
    for (size_t i = 0; i < 8; i++) {
        if (data[3] & (1u << i))
            flags |= noise[i];
    }
    /* ctl.c's room, or (one time in four) a smaller buffer that truncates. */
    room = data[4] % 4 == 0 ? (size_t)data[4] * 4 % sizeof(cmsg.buf) : sizeof(cmsg.buf);
    memset(&cmsg, 0, sizeof(cmsg));
    new_fd_pair(bystander);

    for (size_t e = 0; e < MAX_ENTRIES && at + 1 < size; e++, at += 2) {
        unsigned kind = data[at] % 4, count = data[at + 1];
        size_t left = room - used, plen, cmlen, space;
        struct cmsghdr *h = (struct cmsghdr *)(void *)(cmsg.buf + used);

        if (kind == 0) {
            /* scm_detach_fds: as many fds as fit; the kernel closes the others. */
            size_t want = count % 254, fit, i;
            int fds[MAX_FDS];

            if (total_fds + want > MAX_FDS)
                want = MAX_FDS - total_fds;
            for (i = 0; i < want; i += 2) {
                new_fd_pair(fds + i);
                if (i + 1 == want)
                    close(fds[i + 1]); /* an odd count: one end is not sent */
            }
            fit =
                left >= sizeof(struct cmsghdr) ? (left - sizeof(struct cmsghdr)) / sizeof(int) : 0;
            if (fit > want)
                fit = want;
            if (fit < want)
                flags |= MSG_CTRUNC;
            for (i = fit; i < want; i++)
                close(fds[i]);
            if (fit == 0)
                continue;
            h->cmsg_level = SOL_SOCKET;
            h->cmsg_type = SCM_RIGHTS;
            h->cmsg_len = CMSG_LEN(fit * sizeof(int));
            memcpy(CMSG_DATA(h), fds, fit * sizeof(int));
            memcpy(installed + ninstalled, fds, fit * sizeof(int));
            ninstalled += fit;
            total_fds += want;
            space = CMSG_SPACE(fit * sizeof(int));
            used += space < left ? space : left;
            continue;
        }
        /* put_cmsg: a header and payload, cut (MSG_CTRUNC) to what is left. */
        plen = kind == 1 ? sizeof(struct ucred) : count % 64;
        if (left < sizeof(struct cmsghdr)) {
            flags |= MSG_CTRUNC;
            continue;
        }
        cmlen = CMSG_LEN(plen);
        if (left < cmlen) {
            flags |= MSG_CTRUNC;
            cmlen = left;
        }
        h->cmsg_level = kind == 3 ? 0 /* SOL_IP */ : SOL_SOCKET;
        h->cmsg_type = kind == 1 ? SCM_CREDENTIALS : kind == 2 ? 99 : (int)count;
        h->cmsg_len = cmlen;
        for (size_t i = sizeof(struct cmsghdr); i < cmlen; i++)
            cmsg.buf[used + i] = (char)(count + i);
        space = CMSG_SPACE(plen);
        used += space < left ? space : left;
    }

    n = len < sizeof(dgram) ? (ssize_t)len : (ssize_t)sizeof(dgram);
    if (len > sizeof(dgram))
        flags |= MSG_TRUNC;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.buf;
    msg.msg_controllen = used;
    msg.msg_flags = flags;

    /* What ctl__read_datagrams does with it. */
    had_ancillary = msg.msg_controllen > 0;
    closed = ctl_close_attached_fds(&msg);
    v = ctl_classify(n, dgram, msg.msg_flags, had_ancillary);

    FUZZ_CHECK(closed >= 0 && (size_t)closed == ninstalled, "closed %d of %zu attached fds", closed,
               ninstalled);
    for (size_t i = 0; i < ninstalled; i++)
        FUZZ_CHECK(!fd_open(installed[i]), "attached fd %d left open", installed[i]);
    FUZZ_CHECK(fd_open(bystander[0]) && fd_open(bystander[1]), "an fd not attached was closed");
    want_dial = len == 1 && dgram[0] == CTL_DIAL_REQUEST && used == 0 &&
                (flags & (MSG_TRUNC | MSG_CTRUNC)) == 0;
    FUZZ_CHECK((v == CTL_VERDICT_DIAL) == want_dial,
               "verdict %d for a %zu-byte datagram 0x%02x, %zu control bytes, flags 0x%x", v, len,
               dgram[0], used, flags);
    close(bystander[0]);
    close(bystander[1]);
    return 0;
}
