/*
 * ws.h - a WebSocket client (RFC 6455) on the libuv loop, over ws:// and wss://.
 *
 * The runner keeps one long-lived connection to the platform through this. The
 * connection itself (resolve, TCP, TLS with the chain and host verified) is
 * src/net/netconn.h's; this module performs the HTTP/1.1 upgrade over it and frames
 * messages with wslay. It pings the peer, notices a dead link, and refuses what curl's
 * lib/ws.c refuses (masked server frames, reserved bits, unknown opcodes, control
 * frames over 125 bytes or fragmented).
 *
 * It is not a general HTTP client: no redirects, no proxies, no extensions or
 * subprotocols, no cookies. It does not reconnect: the caller decides when to try
 * again. Single-threaded: every function must be called on the loop's thread. The
 * process must ignore SIGPIPE (libuv writes with write(2)).
 *
 * The URL's query carries the runner's token. This module never logs anything, and
 * no reason string it produces contains the query or the full URL.
 */
#ifndef CREDBROKER_WS_H
#define CREDBROKER_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define WS_CONNECT_TIMEOUT_MS_DEFAULT 10000
#define WS_PING_INTERVAL_MS_DEFAULT 20000
#define WS_READ_TIMEOUT_MS_DEFAULT 60000
#define WS_MAX_MESSAGE_DEFAULT ((size_t)32 * 1024 * 1024)
/* Longest URL ws_connect accepts. */
#define WS_URL_MAX 8192
/* How long ws_close waits for the peer's close frame before dropping the connection. */
#define WS_CLOSE_TIMEOUT_MS 5000

struct ws;

/* A zero field takes its default. The strings are copied by ws_connect. */
struct ws_options {
    const char *url;             /* ws://host[:port]/path?query or wss://...; the query carries the
                                    runner's token: NEVER log the query or the full URL */
    const char *cacert;          /* wss: PEM bundle to verify with; NULL = system CAs */
    uint64_t connect_timeout_ms; /* DNS + TCP + TLS + upgrade; default 10000 */
    uint64_t ping_interval_ms;   /* we send a ping this often; default 20000 */
    uint64_t read_timeout_ms;    /* no frame at all (data, ping, pong) for this long = dead link;
                                    default 60000 */
    size_t max_message;          /* largest message accepted (and sent); default 32 MiB */
};

/* Every callback runs on the loop, never from inside the ws_* call that caused it. */
struct ws_callbacks {
    /* The upgrade succeeded; ws_send_text may be called from now on. May be NULL. */
    void (*on_open)(struct ws *ws, void *data);
    /* One complete message (reassembled from fragments). msg is valid only during the call and the
     * callee may modify it (the runner wipes it: it can carry credentials); this module wipes it
     * after the call as well. Not called after ws_close(). May be NULL. */
    void (*on_message)(struct ws *ws, uint8_t *msg, size_t len, bool binary, void *data);
    /* The connection is over, or never opened. http_status: the handshake's HTTP status when it was
     * not 101 (e.g. 401, 403), else 0. close_code: the peer's close code (1000, ...) or 0 if none.
     * reason: one short line for the log (no URL query), valid during the call. Called exactly
     * once; afterwards only ws_free() may be called. Required. */
    void (*on_close)(struct ws *ws, int http_status, int close_code, const char *reason,
                     void *data);
};

/*
 * Starts connecting to opts->url. Returns 0 and *out (the caller owns it and must
 * release it with ws_free(), also after on_close); on_open or on_close follows.
 * Returns a negative code and *out = NULL when nothing was started: ERR_BAD_URL
 * (not ws:// or wss://, userinfo, fragment, bytes that are not printable ASCII,
 * bad port, a host that is neither a name nor an IP literal), ERR_TOO_LARGE (URL over
 * WS_URL_MAX), ERR_INVALID (cacert cannot be loaded or holds no certificate, a NULL
 * argument or on_close), ERR_NOMEM, -EIO (no randomness for the key), or a libuv
 * code. No callback follows a failure, and nothing is left to free.
 *
 * A failure to connect comes to on_close as net's one line, e.g. "connect to
 * 127.0.0.1:1: connection refused", "TLS handshake with example.com:443 failed:
 * certificate verify failed: certificate has expired", "connect to example.com:443
 * timed out after 10000 ms (TLS handshake)": host and port, never the path or query.
 */
int ws_connect(uv_loop_t *loop, const struct ws_options *opts, const struct ws_callbacks *cb,
               void *data, struct ws **out) __attribute__((warn_unused_result));

/* Queues a text message (copied); returns 0 or a negative code: ERR_CLOSED (not open, or
 * ws_close was called), ERR_TOO_LARGE (len over max_message), ERR_NOMEM. The caller
 * must pass valid UTF-8 (RFC 6455 5.6); it is not checked here. */
int ws_send_text(struct ws *ws, const char *text, size_t len) __attribute__((warn_unused_result));

/* Bytes queued and not yet written to the socket (for backpressure by the caller). An
 * upper bound: a message partly on the wire counts whole until its last byte is written. */
size_t ws_pending(const struct ws *ws);

/* Starts the close handshake (sends a close frame with code/reason); on_close follows when the peer
 * answers or after WS_CLOSE_TIMEOUT_MS. code 0 sends a close frame without a code; a code
 * that may not be sent (RFC 6455 7.4) becomes 1000. reason may be NULL and is cut to
 * 123 bytes. Before the connection is open this aborts it (on_close follows). Does
 * nothing once closing. */
void ws_close(struct ws *ws, uint16_t code, const char *reason);

/* Frees: aborts the connection if still open (no callbacks after this). Safe to call from inside
 * any callback of this ws (defer the actual free until libuv close callbacks ran). Accepts NULL.
 * The memory is released by the loop: run it until the handles are closed. */
void ws_free(struct ws *ws);

#endif
