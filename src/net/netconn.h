/*
 * netconn.h - a connected byte stream on the libuv loop: asynchronous resolve and TCP
 * connect, optionally through an HTTP CONNECT tunnel (netproxy.h), optionally TLS
 * (OpenSSL over a BIO of ours that never touches the socket). The transport under the broker's upstream client
 * (DESIGN.md section 3) and the runner's WebSocket.
 *
 * Not for: HTTP. This module moves bytes; framing, pooling and retries are the
 * caller's.
 *
 * TLS: the chain and the host name are verified (the system CAs or a PEM bundle;
 * an IP literal is checked against the certificate's IP addresses), TLS 1.2 at
 * least, ALPN when asked, SNI for names. A process keeps one struct net_tls_ctx:
 * it remembers the latest session per "host:port", so a reconnect resumes (TLS 1.3
 * tickets arrive after the handshake: a connection that has read something from
 * the server has them).
 *
 * Errors are one line of text for a person ("connect to 127.0.0.1:1: connection
 * refused", "TLS handshake with example.com:443 failed: certificate verify failed:
 * certificate has expired"). They name hosts and ports, never a proxy's credentials.
 *
 * Callbacks run on the loop, never from inside a call into this module (reading
 * started by net_conn_set_events or net_conn_read_start is delivered later). A
 * callback may call any function here on its own connection, net_conn_free
 * included: the memory stays valid until the loop has closed the handles, and no
 * callback of that connection comes after net_conn_free. Single-threaded: one loop.
 */
#ifndef CREDBROKER_NETCONN_H
#define CREDBROKER_NETCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "netproxy.h"

/* The connect timeout a caller without an opinion passes. */
#define NET_CONNECT_TIMEOUT_MS 10000

struct net_tls_ctx;
struct net_conn;
struct net_connect;

/*
 * The process's TLS client context: an SSL_CTX (verification on, TLS 1.2 minimum)
 * with the CAs of cacert (a PEM bundle; NULL = the system's), and the session cache.
 * Returns 0 and *out; ERR_INVALID when the bundle cannot be read or holds no
 * certificate; ERR_NOMEM.
 */
int net_tls_ctx_new(const char *cacert, struct net_tls_ctx **out)
    __attribute__((warn_unused_result));
/* Drops the caller's reference: the context is freed once the last connection made
 * with it is freed too. Accepts NULL. */
void net_tls_ctx_free(struct net_tls_ctx *tls);

/*
 * Whether cacert can serve net_tls_ctx_new later: a readable regular file of at most
 * NET_CACERT_MAX bytes with a PEM certificate in it. A text check, without OpenSSL: a
 * process checks its bundle at start and creates the context (OpenSSL's own start and
 * the parsed certificates: about 1 MiB) only when its first TLS connection needs it.
 * Returns 0, -errno, ERR_TOO_LARGE, or ERR_INVALID (not a regular file, no PEM
 * certificate); net_tls_ctx_new may still refuse a certificate that is not valid.
 */
#define NET_CACERT_MAX ((size_t)16 * 1024 * 1024)
int net_tls_cacert_check(const char *cacert) __attribute__((warn_unused_result));

struct net_target {
    const char *host; /* name or IP literal (IPv6 without brackets) */
    uint16_t port;
    bool tls;                      /* false: plain TCP (http:// upstreams) */
    const char *alpn;              /* comma list, e.g. "h2,http/1.1"; NULL = no ALPN */
    const struct net_proxy *proxy; /* NULL = direct; else CONNECT host:port through it
                                    * (for a plain target too: some proxies allow
                                    * CONNECT to port 443 only) */
};

/*
 * The outcome of a connect, called once (never after net_connect_cancel): c the
 * connection, or NULL and error, one line valid during the call. The caller owns c
 * (net_conn_free). The struct net_connect is gone once this is called.
 */
typedef void (*net_connect_cb)(struct net_conn *c, const char *error, void *ud);

/*
 * Starts a connect to t: resolve (every address is tried in turn until one connects),
 * TCP (TCP_NODELAY on), the proxy's CONNECT, the TLS handshake. One timeout covers all
 * of it (0: none). tls is needed when t->tls (the connection holds a reference to it).
 * t and its strings are copied. Returns 0 and *out (valid until cb runs or
 * net_connect_cancel), or a negative code (ERR_INVALID for a host with a control byte,
 * a space or a non-ASCII byte, a proxy authorization with a control byte, a bad ALPN
 * list or a missing tls; ERR_NOMEM; a uv error) and then cb never runs.
 */
int net_connect_start(uv_loop_t *loop, struct net_tls_ctx *tls, const struct net_target *t,
                      uint64_t timeout_ms, net_connect_cb cb, void *ud, struct net_connect **out)
    __attribute__((warn_unused_result));
/* Abandons a connect; its cb never comes. Not after cb has run. Accepts NULL. */
void net_connect_cancel(struct net_connect *k);

struct net_conn_events {
    /* Plaintext as it arrives, in order; data is valid during the call only (and wiped
     * after it). Not while reading is stopped. */
    void (*on_read)(struct net_conn *c, const uint8_t *data, size_t len, void *ud);
    /* Optional: what was queued has all been handed to the kernel (pending is 0). Writes
     * leave at the end of the loop turn, with the turn's other writes (netbatch.h): once
     * after each such batch, from the loop, and after a write the socket made wait. */
    void (*on_drain)(struct net_conn *c, void *ud);
    /* The connection ended, once: reason NULL for the peer's clean end (EOF, with or
     * without a TLS close_notify), else one line (a reset, a TLS alert, a bad record).
     * An end the peer signals is reported after every byte before it was delivered, so
     * not while reading is stopped; a failed write is reported at once. c stays valid
     * until net_conn_free; writes fail from here on. */
    void (*on_close)(struct net_conn *c, const char *reason, void *ud);
};

/*
 * Sets the callbacks (ev is copied; on_read and on_close are required) and starts
 * reading; what came before (the TLS server's first records, bytes behind the
 * proxy's answer, an end) is delivered from the loop, not inside this call.
 */
void net_conn_set_events(struct net_conn *c, const struct net_conn_events *ev, void *ud);

/*
 * Queues data[0..len) (copied; encrypted first when TLS) to leave at the end of this loop
 * turn, with what else was written meanwhile, before the loop waits again. Returns 0,
 * or ERR_CLOSED once the connection has ended (nothing queued), or ERR_NOMEM. A
 * failure to write is reported later through on_close.
 */
int net_conn_write(struct net_conn *c, const uint8_t *data, size_t len)
    __attribute__((warn_unused_result));

/* Bytes queued and not yet handed to the kernel (with TLS: record bytes, a little more
 * than was written). Callers bound their own buffering by it and wait for on_drain. */
size_t net_conn_pending(const struct net_conn *c);

/*
 * Backpressure. read_stop: no on_read (and no on_close for the peer's end) until
 * read_start; the socket is not read either. read_start: delivery resumes from the
 * loop, with whatever was held back first. Both may be called from any callback and
 * repeated.
 */
void net_conn_read_stop(struct net_conn *c);
void net_conn_read_start(struct net_conn *c);

/*
 * Read batching. due: payload bytes (after TLS) the peer is bound to send next without
 * hearing anything more from us, as the owner's protocol knows it: a body's declared
 * remainder, within the flow-control window the peer holds; 0 when nothing is promised.
 * Called after each delivery and whenever that changes; cheap when nothing changes.
 *
 * While NET_BATCH bytes or more are due beyond what the connection already holds, the
 * socket wakes the loop only once NET_BATCH bytes wait (SO_RCVLOWAT): a download is read
 * in a quarter of the wake-ups and reads (bench W3; a system call is dear on this kind of
 * VM). Never a wait for bytes that are not coming: what is due is a lower bound, and a
 * peer slower than its promise (or one that waits for us after all) costs at most
 * NET_BATCH_WAIT_MS once: with no read for that long, batching stops until nothing is
 * due again (the next response), or until a read finds half a batch waiting.
 */
void net_conn_expect(struct net_conn *c, uint64_t due);
/* Whether reads are being batched now (tests). */
bool net_conn_batching(const struct net_conn *c);

/* The protocol ALPN picked ("h2", "http/1.1"), or "" (none, or not TLS). Borrowed. */
const char *net_conn_alpn(const struct net_conn *c);
/* True when the TLS handshake resumed a cached session. */
bool net_conn_session_reused(const struct net_conn *c);
/* "host:port" of the target ("[::1]:443" for IPv6). Borrowed. */
const char *net_conn_peer(const struct net_conn *c);

/*
 * Ends the connection: when TLS and nothing is left queued, a close_notify is sent
 * (best effort, never waited for); queued bytes are dropped; the socket is closed. No
 * callback comes after this; memory is freed once the loop has closed the handles.
 * Accepts NULL.
 */
void net_conn_free(struct net_conn *c);

#endif
