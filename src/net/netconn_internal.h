/*
 * netconn_internal.h - what the three files of the netconn module share: the struct
 * itself and the calls between the stream (netconn.c), the TLS layer (netconn_tls.c)
 * and the connect (netconn_connect.c). Not for anyone else.
 *
 * Lifetime: every libuv handle and request lives inside struct net_conn. refs counts
 * the handles open and the getaddrinfo under way; once the owner has let go
 * (released: net_conn_free, a cancel, a failed connect) the memory is freed when refs
 * reaches 0, in a libuv callback, never inside a callback of ours. So a callback may
 * free its own connection: the code after it only checks c->released.
 */
#ifndef CREDBROKER_NETCONN_INTERNAL_H
#define CREDBROKER_NETCONN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "buf.h"
#include "netbatch.h"
#include "netconn.h"

#define NET_READ_SIZE (256 * 1024) /* one socket read: the one buffer of the loop (64 KiB
                                    * took twice the reads of a download, bench W3) */
#define NET_TLS_CHUNK (16 * 1024) /* one SSL_read: a record's plaintext at most */
/* Read batching (net_conn_expect): the socket's low-water mark while batching, how long a
 * batch may keep the loop waiting, and a TLS record's worth of bytes that may sit
 * half-read in OpenSSL beyond what rkeep shows. */
#define NET_BATCH (256 * 1024)
#define NET_BATCH_WAIT_MS 2
#define NET_TLS_RECORD_MAX (16 * 1024 + 256)
#define NET_OUT_KEEP 4096         /* output buffer kept between writes (a request's head) */
#define NET_ERROR_MAX 512         /* an error line */
/* TLS 1.3 suites in our order of preference: AES-128-GCM first, as Go's crypto/tls and the
 * browsers order them where the CPU has AES instructions (OpenSSL's own default puts
 * AES-256 first): 10 AES rounds a block instead of 14, for the broker decrypting every
 * response and the upstream encrypting it (bench W3). All three are TLS 1.3's AEADs. */
#define NET_TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define NET_ALPN_MAX 255          /* the wire form of an ALPN list */

enum net_state {
    NET_RESOLVING,
    NET_CONNECTING,
    NET_PROXY,     /* CONNECT sent, reading the answer */
    NET_HANDSHAKE, /* TLS */
    NET_OPEN,      /* handed to the owner */
};

/* The connect in progress: the part of a connection only the connect uses. */
struct net_connect {
    net_connect_cb cb;
    void *ud;
    uint64_t timeout_ms;
    struct addrinfo *ai, *ai_next;  /* the resolved addresses, the next to try */
    char dial[300];                 /* "host:port" the socket goes to (target or proxy) */
    char addr[64];                  /* the address being tried, for errors */
    char last_error[NET_ERROR_MAX]; /* why the last address failed */
    struct buf *head;               /* the proxy's answer so far */
    size_t scanned;                 /* bytes of head already searched for its end */
    bool finished;                  /* cb called or cancelled */
};

struct net_conn {
    uv_loop_t *loop;
    uv_tcp_t tcp;
    uv_timer_t timer; /* the connect timeout, then read_start's delivery */
    uv_getaddrinfo_t gai;
    uv_connect_t creq;
    uv_write_t wreq;
    unsigned refs; /* handles open + getaddrinfo under way */
    bool tcp_open, gai_active, released;
    enum net_state state;

    char *host; /* the target */
    uint16_t port;
    char *hostport;          /* "host:port", "[v6]:port": errors and the session cache */
    struct net_proxy *proxy; /* owned copy, or NULL */
    unsigned char alpn_wire[NET_ALPN_MAX + 1];
    size_t alpn_wire_len;

    bool use_tls;
    struct net_tls_ctx *tls; /* a reference, when use_tls */
    SSL *ssl;                /* owns bio */
    BIO *bio;                /* netconn_tls.c's: the socket's bytes in, OpenSSL's onto out */
    const uint8_t *rview;    /* the socket's read OpenSSL is reading, while it is */
    size_t rview_len;
    struct buf *rkeep;       /* ciphertext OpenSSL has not read yet */
    bool queue_failed;       /* the BIO could not queue OpenSSL's bytes: out of memory */
    char alpn[32];           /* picked */
    bool reused;

    struct net_conn_events ev;
    void *ud;
    bool have_events;
    bool reading; /* the owner wants on_read */
    bool uv_reading;
    bool eof;       /* the peer's EOF came; reported after what it held */
    bool closed;    /* on_close delivered or due */
    bool close_due; /* ... due, not yet delivered (before set_events) */
    bool write_failed;
    char reason[NET_ERROR_MAX]; /* the due close's reason ("" = clean) */

    uv_timer_t batch_timer; /* read batching's bound on a batch's wait; opened when first used */
    bool batch_timer_open;
    bool batching;          /* SO_RCVLOWAT is NET_BATCH */
    bool batch_gave_up;     /* a batch timed out: none until nothing is due, or a big read */
    bool in_read;           /* a socket read is being delivered: batching is decided after */
    uint64_t due;           /* the owner's last net_conn_expect */

    struct buf *held;     /* plain TCP: bytes that came behind the proxy's answer */
    struct buf *out;      /* queued, not yet given to uv_write */
    struct buf *inflight; /* given to uv_write */
    bool writing;         /* a uv_write, or the batch's write, in flight */
    bool batched;         /* out is in this turn's batch of writes (netbatch.h) */
    size_t batch_len;     /* what the batch's write was given */
    struct netbatch_item batch;
    uv_prepare_t flush; /* runs the batch before the loop next waits */

    struct net_connect connect;
};

/* netconn.c: the stream */
int conn__new(uv_loop_t *loop, struct net_conn **out);
/* The owner lets go: SSL freed, handles closing; memory freed once refs is 0. */
void conn__release(struct net_conn *c);
/* refs - 1; true when that freed c. */
bool conn__unref(struct net_conn *c);
void conn__start_timer(struct net_conn *c, uint64_t ms);
/* The queue for the socket, created when needed; NULL when out of memory. */
struct buf *conn__outbuf(struct net_conn *c);
int conn__queue(struct net_conn *c, const uint8_t *data, size_t len);
void conn__flush(struct net_conn *c);
/* Offers what out holds to the socket once, without waiting (best effort, as a last write
 * before letting go: a close_notify, a last frame). */
void conn__offer_out(struct net_conn *c);
int conn__read_uv(struct net_conn *c);
void conn__read_stop_uv(struct net_conn *c);
/* The open connection ended (reason NULL: cleanly); on_close comes from the loop. */
void conn__end(struct net_conn *c, const char *reason);

/* netconn_connect.c: the connect's steps, called by the stream's read callback */
void connect__on_data(struct net_conn *c, const uint8_t *data, size_t len);
void connect__on_eof(struct net_conn *c, int status);
void connect__on_timeout(struct net_conn *c);
/* Called with a tunnel up (and after the proxy's answer, what came behind it). */
void connect__tunnel_up(struct net_conn *c, const uint8_t *rest, size_t len);
void connect__done(struct net_conn *c);
void connect__fail(struct net_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* netconn_tls.c: the TLS layer */
void tls__ctx_ref(struct net_tls_ctx *tls);
/* A new SSL for c, set up for its target; 0 or a negative code. */
int tls__start(struct net_conn *c);
/* Ciphertext from the socket: during the handshake, steps it; open, delivers. */
void tls__on_data(struct net_conn *c, const uint8_t *data, size_t len);
void tls__handshake(struct net_conn *c);
int tls__write(struct net_conn *c, const uint8_t *data, size_t len);
/* Delivers the plaintext OpenSSL holds while the owner reads; ends at the peer's end. */
void tls__pump(struct net_conn *c);
void tls__shutdown(struct net_conn *c);
/* Frees the SSL and drops the context reference. Safe to repeat. */
void tls__free(struct net_conn *c);

#endif
