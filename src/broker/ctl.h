/*
 * ctl.h - the control channel of one invocation (DESIGN.md section 1).
 *
 * The broker's end of a SOCK_SEQPACKET pair, on the event loop. A child asks
 * for a connection with the 1-byte datagram 0x01; it gets 0x01 with exactly one
 * stream fd (SCM_RIGHTS), or 0xFF. Everything else is refused, and any fd a child
 * attaches is closed at once.
 *
 * The channel only speaks the handshake: what a "connection" is, and whether a
 * dial is within the limits, is the owner's business (the mint callback). A dial
 * over a limit waits for a slot instead of failing (a local broker's child would
 * rather wait than fail): the channel keeps the waiting dials in order, answers each
 * when the owner can serve it, and refuses with 0xFF only past its own bounds.
 */
#ifndef CREDBROKER_CTL_H
#define CREDBROKER_CTL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#define CTL_DIAL_REQUEST 0x01
#define CTL_REPLY_OK 0x01
#define CTL_REPLY_REFUSED 0xFF
/* Room ctl.c keeps per datagram for fds a child attaches (a dial attaches none): the kernel
 * closes those that do not fit (MSG_CTRUNC), and such a datagram is refused either way. */
#define CTL_MAX_ATTACHED_FDS 4

struct ctl;

/* A dial the owner cannot serve now (no connection slot, no rate token): it waits. */
#define CTL_MINT_WAIT 1

/*
 * The owner's side of the channel. mint makes a connection for a dial: 0 and *peer_fd,
 * the stream end to hand to the child (the owner has already registered and checked its
 * own end); CTL_MINT_WAIT when it has no slot or token now, with *retry_ms the time after
 * which one will be there (0: not known, the owner calls ctl_kick when a slot frees); or
 * a negative code to refuse. refused is told of every dial the channel refuses for its
 * own bounds, to log and audit it.
 */
enum ctl_refusal {
    CTL_REFUSED_QUEUE_FULL, /* max_waiting dials were waiting already */
    CTL_REFUSED_WAITED,     /* it waited wait_ms */
};

struct ctl_ops {
    int (*mint)(void *data, int *peer_fd, uint64_t *retry_ms);
    void (*refused)(void *data, enum ctl_refusal why);
};

/* Dials that wait: at most max_waiting at once (more are refused at once), each at most
 * wait_ms (then refused). They are answered in the order they came. */
struct ctl_limits {
    unsigned max_waiting;
    uint64_t wait_ms;
};

/* Takes ownership of fd (the broker's end; set non-blocking here). Returns 0 or a negative code
 * (fd is closed on failure). */
int ctl_open(uv_loop_t *loop, int fd, const struct ctl_ops *ops, const struct ctl_limits *limits,
             void *data, struct ctl **out);
/* The owner has a free slot again: waiting dials are served on the next loop turn (never
 * from inside the caller, which may be tearing a connection down). Accepts NULL. */
void ctl_kick(struct ctl *c);
/* How many dials wait now. */
unsigned ctl_waiting(const struct ctl *c);
/* Shuts the channel down (a leftover holder of the child's end gets EOF) and closes it;
 * waiting dials are dropped unanswered and no callback runs after this. Memory is
 * released asynchronously. Accepts NULL. */
void ctl_close(struct ctl *c);

enum ctl_verdict { CTL_VERDICT_DIAL, CTL_VERDICT_REFUSE };

/*
 * The pure decision on one received datagram: n bytes (its recvmmsg length) of
 * which data holds the first min(n, 1), its msg_flags, and whether any
 * ancillary data came with it. Only a 1-byte 0x01 with no ancillary data and no
 * truncation is a dial.
 */
enum ctl_verdict ctl_classify(ssize_t n, const uint8_t *data, int msg_flags, bool had_ancillary);

/*
 * Closes every fd carried in SCM_RIGHTS messages of msg; returns how many were
 * closed. Used on every datagram, so a child's fds never stay open in the broker.
 */
int ctl_close_attached_fds(struct msghdr *msg);

#endif
