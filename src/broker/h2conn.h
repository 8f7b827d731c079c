/*
 * h2conn.h - one HTTP/2 client connection (RFC 9113) over nghttp2, on the libuv loop,
 * without a transport of its own (DESIGN.md section 3).
 *
 * The connection writes through a send function and is fed the bytes its transport
 * received; it never touches a socket. The upstream pool runs it over the TLS stream of
 * src/net/ (ALPN "h2"); the tests run it over plain TCP (h2c with prior knowledge) and
 * the fuzz harness over nothing at all. Not for: connecting, TLS, choosing a connection,
 * timeouts (response head, stall) or retries: the pool does those with the facts given
 * here (h2conn_available, on_capacity, retryable).
 *
 * A request streams both ways, as through upstream.h: the body is pulled with read_body()
 * and the response pushed through on_body(); either side can pause. Flow control follows
 * the reader: a stream's window (H2CONN_STREAM_WINDOW) is handed back only as on_body
 * takes bytes, so a paused stream holds at most one window of DATA, while the connection
 * window (H2CONN_CONN_WINDOW) is handed back as soon as bytes are buffered, so slow
 * readers never stall the other streams, however many of them hold a full window.
 *
 * Limits on what the server sends (each a failure of that stream only, with RST_STREAM):
 * a response head (any one header block) over H2CONN_MAX_HEAD_BYTES, counted as RFC 9113
 * 6.5.2 counts SETTINGS_MAX_HEADER_LIST_SIZE (name + value + 32 per field), or with more
 * than H2CONN_MAX_HEAD_FIELDS fields. A header block of more than H2CONN_MAX_CONTINUATIONS
 * CONTINUATION frames is a connection error (nghttp2's CONTINUATION flood guard).
 *
 * Re-entrancy: every callback (stream ops and connection events) is called from
 * h2conn_feed, h2conn_on_drain, h2conn_transport_closed, h2conn_ping or the connection's
 * zero timer on the loop, never from inside nghttp2 and never from h2conn_submit,
 * h2_stream_resume or h2_stream_cancel. Callbacks may call anything here, including
 * h2conn_free (deferred until the outermost call into the connection returns; nothing is
 * called after it) and h2_stream_cancel of any stream. The transport's send is called
 * from those calls and from h2conn_new, h2conn_submit and h2conn_close; send and pending
 * must not call into the connection.
 */
#ifndef CREDBROKER_H2CONN_H
#define CREDBROKER_H2CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "http1.h"

/* What we advertise and enforce (h2conn_new sends them). The stream window bounds what
 * the broker holds for a child that reads slowly; at 256 KiB a fast 1 GiB download
 * stopped for WINDOW_UPDATE every 128 KiB and cost twice the CPU (bench W3: 1 MiB, about
 * 1.3 against 2.6 CPU s per GiB with 64 KiB socket reads). Go's client uses 4 MiB. */
#define H2CONN_STREAM_WINDOW (1024u * 1024u)     /* SETTINGS_INITIAL_WINDOW_SIZE */
#define H2CONN_CONN_WINDOW (16u * 1024u * 1024u) /* WINDOW_UPDATE on stream 0 */
#define H2CONN_MAX_HEAD_BYTES (256u * 1024u)     /* SETTINGS_MAX_HEADER_LIST_SIZE */
#define H2CONN_MAX_HEAD_FIELDS 500
#define H2CONN_MAX_CONTINUATIONS 32 /* 16 KiB frames: room for a 256 KiB block */
/* No frames are produced while the transport holds more than this (h2conn_on_drain). */
#define H2CONN_SEND_HIGH_WATER (64u * 1024u)
/* Request body bytes read ahead per stream (one DATA frame's worth). */
#define H2CONN_BODY_CHUNK (16u * 1024u)
/* Frames gathered for one write: a TLS record's worth (RFC 8446 5.1). nghttp2 hands out one
 * frame per nghttp2_session_mem_send; sixteen requests' HEADERS were sixteen records and
 * sixteen write(2)s (bench W1). */
#define H2CONN_GATHER (16u * 1024u)

struct h2conn;
struct h2_stream;

/* How bytes leave; t is the transport's own pointer, given to h2conn_new. */
struct h2conn_transport {
    /* Copies or queues data[0..len) for writing. Returns 0, or a negative code: the
     * connection then fails ("sending failed"). Must not call into the connection. */
    int (*send)(void *t, const uint8_t *data, size_t len);
    /* Bytes queued and not yet written. */
    size_t (*pending)(void *t);
    /* H2CONN_GATHER bytes the connection gathers frames in while it flushes, wiped after
     * each send (HEADERS carry the key). Connections of one loop may share it: a flush never
     * runs inside another, and send calls nothing back. */
    uint8_t *gather;
    /* Optional: stop (pause true) or restart feeding the connection. Asked for while its one
     * open stream's reader is paused: the upstream's bytes then wait in the socket, where
     * the stream window bounds them, instead of in the stream's hold buffer, and are
     * decrypted and scrubbed in one go when the reader wants them (bench W3). Never with
     * two streams open: a slow reader must not hold back another stream. Must not call
     * into the connection. */
    void (*read_pause)(void *t, bool pause);
};

struct h2conn_events {
    /* A stream slot freed, or the server's SETTINGS raised the limit: h2conn_available()
     * is true now and the pool may submit queued requests (from inside, too). */
    void (*on_capacity)(struct h2conn *c, void *ud);
    /* The connection is unusable (a GOAWAY and no stream left, a protocol error, the
     * transport closed, a ping timeout) and every stream has had its on_done: the caller
     * closes its transport and may free c from inside. Called once; never after
     * h2conn_close. reason is valid during the call. */
    void (*on_closed)(struct h2conn *c, const char *reason, void *ud);
};

/*
 * Makes a connection and sends the client preface through tr at once: the magic,
 * SETTINGS (ENABLE_PUSH 0, INITIAL_WINDOW_SIZE H2CONN_STREAM_WINDOW, MAX_HEADER_LIST_SIZE
 * H2CONN_MAX_HEAD_BYTES) and WINDOW_UPDATE on stream 0 up to H2CONN_CONN_WINDOW. tr and
 * ev are copied (tr->gather is used where it is); t and ud are the caller's, passed back;
 * loop and tr->gather must outlive c. Until the
 * server's first SETTINGS one stream may be open (a server with a lower limit than RFC
 * 9113's recommended 100 would refuse a burst); on_capacity tells when it raised that.
 * Returns 0 and *out, or ERR_NOMEM / -errno (nothing to free then).
 */
int h2conn_new(uv_loop_t *loop, const struct h2conn_transport *tr, void *t,
               const struct h2conn_events *ev, void *ud, struct h2conn **out)
    __attribute__((warn_unused_result));

/*
 * Bytes the transport received (any split; read during the call, not kept). Callbacks run
 * before this returns. Returns 0;
 * ERR_CLOSED when the connection is no longer usable (failed before or by these bytes,
 * closed) or was freed from a callback (do not touch it then).
 */
int h2conn_feed(struct h2conn *c, const uint8_t *data, size_t len)
    __attribute__((warn_unused_result));

/* The transport's queue emptied: frames are produced again. Callbacks may run. */
void h2conn_on_drain(struct h2conn *c);

/*
 * The transport closed or failed (reason: a short text, copied). Nothing is sent after.
 * Streams whose whole response has arrived still deliver it; every other stream gets
 * on_done with a failure, retryable when nothing of its request was handed to the
 * transport or its id is above a GOAWAY's last stream id; then on_closed.
 */
void h2conn_transport_closed(struct h2conn *c, const char *reason);

/* True while open, without a GOAWAY, and with fewer streams than the server's
 * SETTINGS_MAX_CONCURRENT_STREAMS: h2conn_submit would not refuse with ERR_LIMIT. */
bool h2conn_available(const struct h2conn *c);
/* True while open and without a GOAWAY, whatever its streams: new streams may come once
 * some end (on_capacity says when). */
bool h2conn_open(const struct h2conn *c);

/* Response body bytes the server owes and may send without hearing from us again: with
 * exactly one stream open whose response gave a content-length, its remainder within the
 * stream's and the connection's flow-control windows; else 0. What the transport may
 * wait for in batches (net_conn_expect). */
uint64_t h2conn_due(const struct h2conn *c);

/* Streams submitted and not yet done or cancelled. */
size_t h2conn_active(const struct h2conn *c);

/*
 * Sends a PING (the pool's idle health check, every few seconds). If the previous PING
 * has had no ACK by now, the connection fails instead with "ping timeout" (streams'
 * on_done, on_closed, before this returns).
 */
void h2conn_ping(struct h2conn *c);

/*
 * Sends GOAWAY(NO_ERROR) through the transport at once and stops: open streams are
 * dropped as by h2_stream_cancel and nothing is called after this (no on_done, no
 * on_closed). The caller closes its transport, then frees c. Idempotent.
 */
void h2conn_close(struct h2conn *c);

/*
 * Frees c and its streams without calling anything (no on_done). Accepts NULL. From inside
 * a callback it takes effect when the outermost call into c returns. The connection's
 * uv_timer_t is closed here and its memory released by the loop's close callback (run
 * the loop before uv_loop_close).
 */
void h2conn_free(struct h2conn *c);

/* From on_body / read_body: nothing now, call again after h2_stream_resume(). */
#define H2_PAUSE (-1)

/*
 * What to send. Everything is copied by h2conn_submit (into nghttp2's frame, freed once
 * sent; the caller wipes its own copies if they hold a key). The values of :path,
 * authorization, proxy-authorization and cookie are sent as never-indexed literals (RFC
 * 7541 6.2.3), so a key in them stays out of both HPACK tables.
 */
struct h2_request {
    const char *method, *scheme, *authority, *path; /* authority may be NULL */
    /* "Name: value" lines, as upstream_req_spec has them. Names are lower-cased;
     * Connection, the names it lists, Keep-Alive, Proxy-Connection, Transfer-Encoding,
     * Upgrade, Host and Content-Length are never sent (RFC 9113 8.2.2: the pseudo-headers
     * and our own content-length stand for them); TE only as "te: trailers". */
    const char *const *headers;
    size_t nheaders;
    bool has_body;
    int64_t body_len; /* -1 unknown; else sent as content-length and checked */
};

/* Stream callbacks, as upstream_req_ops: on_head, on_body and on_done are required,
 * read_body with has_body. */
struct h2_stream_ops {
    /* The final response head (1xx heads are skipped). headers[] in received order,
     * names lower-case (HTTP/2 requires it), pseudo-headers left out; the views are valid
     * only during the call. */
    void (*on_head)(void *ud, int status, const struct http1_header *headers, size_t n);
    /* Response body bytes: return 0 when taken (all of them), H2_PAUSE to be called again
     * with the same bytes after h2_stream_resume(). Any other value fails the stream. */
    int (*on_body)(void *ud, const uint8_t *data, size_t len);
    /* Request body (only with has_body): copy up to max bytes into dst and return the
     * count, 0 at the end, or H2_PAUSE when none is available yet (then
     * h2_stream_resume() when there is). Any other value fails the stream. */
    ssize_t (*read_body)(void *ud, uint8_t *dst, size_t max);
    /*
     * The stream ended, once; never after h2_stream_cancel or h2conn_free/close. result:
     * 0 complete (every body byte delivered); UPSTREAM_ERR_CONNECT (upstream.h) failed
     * before on_head; UPSTREAM_ERR_TRANSFER failed after it. detail: a short text, valid
     * during the call ("stream reset by the upstream: REFUSED_STREAM"). retryable: the
     * server did not process the request (REFUSED_STREAM, above a GOAWAY's last stream id,
     * or never handed to the transport) and no head was delivered. A failure is reported
     * at once, dropping body bytes still held; a complete response only after its last
     * byte was taken. The stream is freed after this returns.
     */
    void (*on_done)(void *ud, int result, const char *detail, bool retryable);
};

/*
 * Starts a request: its HEADERS go to the transport before this returns (unless it is
 * above its high-water mark); the body is read and the response delivered from the loop.
 * ops and ud must stay valid until on_done or h2_stream_cancel. Returns 0 and *out
 * (the caller's handle, valid
 * until then), or a negative code and nothing started: ERR_LIMIT (not available: at the
 * server's stream limit), ERR_CLOSED (GOAWAY received, failed, closed, or stream ids used
 * up), ERR_INVALID (a missing pseudo-header, a line without ':', a name that is not a
 * token, CR or LF anywhere, a method that is not a token, has_body with a body_len below
 * -1 or without read_body), ERR_NOMEM.
 */
int h2conn_submit(struct h2conn *c, const struct h2_request *rq, const struct h2_stream_ops *ops,
                  void *ud, struct h2_stream **out) __attribute__((warn_unused_result));

/*
 * Wakes what a H2_PAUSE paused (the body reader, the delivery, or both). Safe when
 * nothing is paused. Nothing is called from inside: delivery resumes from the loop.
 */
void h2_stream_resume(struct h2_stream *s);

/*
 * Abandons the stream: RST_STREAM(CANCEL) if it is open on the wire, and no callback of
 * it after this. s is invalid afterwards. Accepts NULL. Not from inside its own on_done.
 */
void h2_stream_cancel(struct h2_stream *s);

#endif
