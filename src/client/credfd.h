/*
 * credfd.h - the client side of credbroker's control channel.
 *
 * A command started by a broker inherits a control socket (FLASHDUTY_CRED_FD,
 * normally 3). credfd_dial() asks the broker for a connection on it and returns
 * a connected stream on which the command speaks plain HTTP/1.1; the broker adds
 * the credential on the way to the real API.
 *
 *     int ctl = credfd_from_env();
 *     int fd = ctl < 0 ? -1 : credfd_dial(ctl);
 *     if (fd < 0) perror("credfd");
 *     write(fd, "GET /x?app_key=broker-sentinel HTTP/1.1\r\nHost: ...", ...);
 *
 * Link with -lcredfd (pkg-config credfd). Linux only.
 */
#ifndef CREDFD_H
#define CREDFD_H

#ifdef __cplusplus
extern "C" {
#endif

/* The environment variable that names the control fd, and the base URL's one. */
#define CREDFD_ENV_FD "FLASHDUTY_CRED_FD"
#define CREDFD_ENV_BASE_URL "FLASHDUTY_BASE_URL"
#define CREDFD_PLACEHOLDER_HOST "flashduty.broker.local"
#define CREDFD_ROUTE_SUFFIX ".broker.local" /* every route's host: NAME.broker.local */

/*
 * Does one handshake on the control fd: returns a connected SOCK_STREAM fd
 * (close-on-exec; the caller closes it), or -1 with errno:
 *   EPROTO       the broker refused (limit reached, invocation over) or answered
 *                something that is not a well-formed reply
 *   EPIPE        the control channel is shut down (the invocation has ended)
 *   EBADF        ctl_fd is not an open fd
 *   ENOTSOCK     ctl_fd is not a SOCK_SEQPACKET socket
 * Safe to call from several threads at once: handshakes on one control fd are
 * serialised, so replies never cross between callers.
 */
int credfd_dial(int ctl_fd);

/*
 * Returns the control fd named by FLASHDUTY_CRED_FD, or -1 with errno ENOENT
 * (not set: not running under a broker) or EINVAL (not a decimal integer, or
 * below 3: stdio is never a control channel). Does not check the fd itself.
 */
int credfd_from_env(void);

#ifdef __cplusplus
}
#endif

#endif
