/*
 * ctl.h - the control channel of one invocation (DESIGN.md section 1).
 *
 * The broker's end of a SOCK_SEQPACKET pair, on the event loop. A child asks
 * for a connection with the 1-byte datagram 0x01; it gets 0x01 with exactly one
 * stream fd (SCM_RIGHTS), or 0xFF. Everything else is refused, and any fd a child
 * attaches is closed at once.
 *
 * The channel only speaks the handshake: what a "connection" is, and whether a
 * dial is within the limits, is the owner's business (the mint callback).
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
/* Room for the fds a hostile child may attach; more are dropped by the kernel (MSG_CTRUNC). */
#define CTL_MAX_ATTACHED_FDS 253

struct ctl;

/*
 * Mints a connection for a dial: on success returns 0 and *peer_fd, the stream
 * end to hand to the child (the owner has already registered and checked its
 * own end). Returns a negative code to refuse.
 */
typedef int (*ctl_mint_cb)(void *data, int *peer_fd);

/* Takes ownership of fd (the broker's end; set non-blocking here). Returns 0 or a negative code
 * (fd is closed on failure). */
int ctl_open(uv_loop_t *loop, int fd, ctl_mint_cb mint, void *data, struct ctl **out);
/* Shuts the channel down (a leftover holder of the child's end gets EOF) and closes it;
 * no mint callback runs after this. Memory is released asynchronously. Accepts NULL. */
void ctl_close(struct ctl *c);

enum ctl_verdict { CTL_VERDICT_DIAL, CTL_VERDICT_REFUSE };

/*
 * The pure decision on one received datagram: n bytes (recvmsg's result) of
 * which data holds the first min(n, 1), the recvmsg flags, and whether any
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
