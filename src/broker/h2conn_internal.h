/*
 * h2conn_internal.h - what the two halves of an HTTP/2 connection share: h2conn.c (the
 * nghttp2 session, its callbacks, the pump, the connection's life cycle) and
 * h2conn_stream.c (a request: its HEADERS, its body, the delivery of its response). Also
 * a few read-only accessors for tests (test_h2conn.c, fuzz_h2.c). h2conn.h is the
 * module's interface; nothing else includes this.
 */
#ifndef CREDBROKER_H2CONN_INTERNAL_H
#define CREDBROKER_H2CONN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>
#include <uv.h>

#include "h2conn.h"

#define H2CONN_DETAIL_MAX 160

/* One response header field, as offsets into h2_stream.hbuf (which may move). */
struct h2_field {
    size_t name_off, name_len, value_off, value_len;
};

struct h2_stream {
    struct h2conn *c;
    struct h2_stream *prev, *next; /* c's list, in submit order */
    int32_t id;
    const struct h2_stream_ops *ops;
    void *ud;

    /* The response head, collected until on_head. */
    int status;
    char *hbuf;
    size_t hlen, hcap;
    struct h2_field *fields;
    size_t nfields, fields_cap;
    size_t blk_bytes, blk_fields; /* the header block being received (limits) */

    /* What the response body promises: its content-length (-1: none given), the DATA
     * received so far; a HEAD request's response has none (h2conn_due). */
    int64_t resp_len;
    uint64_t resp_got;
    bool is_head;

    /* Response body bytes held for the reader: rb[roff, roff + rlen). */
    uint8_t *rb;
    size_t roff, rlen, rcap;
    size_t held; /* the length on_body paused on: offered again first */
    size_t peak; /* the most ever held (tests) */

    /* Request body read ahead: sb[soff, soff + slen). */
    uint8_t *sb;
    size_t soff, slen;
    int64_t body_len, body_read;

    /* A failure, once known: reported by the pump. */
    bool failed, retryable;
    char detail[H2CONN_DETAIL_MAX];
    int invalid;  /* nghttp2 lib error of an invalid frame on this stream, or 0 */
    int not_sent; /* nghttp2 lib error that kept our HEADERS from leaving, or 0 */
    bool rst_received;
    bool reset_queued; /* nghttp2 resets it already (a head over our limits) */

    bool has_body, body_eof, body_wait, data_deferred;
    bool head_ready, head_delivered, remote_ended, paused;
    bool headers_sent; /* our HEADERS were handed to the transport */
    bool ng_closed;    /* nghttp2 closed the stream */
    bool dead;         /* on_done called or cancelled: no callback any more; swept later */
};

struct h2conn {
    uv_loop_t *loop;
    uv_timer_t *timer; /* the zero timer; freed in its close callback */
    nghttp2_session *ng;
    struct h2conn_transport tr;
    void *t;
    struct h2conn_events ev;
    void *ud;

    struct h2_stream *head, *tail;
    size_t live; /* streams not dead */

    int busy;          /* public calls on the stack that may run callbacks */
    bool running;      /* the pump is on the stack */
    bool again;        /* something changed while it ran: go round once more */
    bool free_pending; /* h2conn_free from inside: free when busy drops to 0 */
    bool closed;       /* h2conn_close or h2conn_free: no callbacks, nothing sent */
    bool transport_gone;
    bool failing;  /* unusable; streams fail, then on_closed */
    bool draining; /* GOAWAY received (or ids used up): no new streams */
    bool closed_notified;
    bool cap_changed;
    bool ping_outstanding;
    bool read_paused; /* tr.read_pause(true) was the last call */
    uint64_t pings_acked;
    int32_t goaway_last_id;
    bool goaway_received;
    int conn_invalid; /* nghttp2 lib error of the last invalid connection-level frame */
    bool goaway_sent;
    uint32_t goaway_sent_code;
    char reason[H2CONN_DETAIL_MAX];
};

/* h2conn.c */
/* Runs the pump now, or from the loop's next turn; from inside it, once more. */
void h2conn__schedule(struct h2conn *c);
/* Produces frames while the transport is below its high-water mark. No callbacks. */
void h2conn__flush(struct h2conn *c);
/* Marks the connection unusable with reason (printf); the first reason stays. */
void h2conn__fail(struct h2conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* nghttp2's data source read callback for request bodies (copies from sb). */
ssize_t h2conn__read_body_cb(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                             uint32_t *data_flags, nghttp2_data_source *src, void *ud);

/* h2conn_stream.c */
/* Records a failure of s (printf detail); the first one stays. */
void h2conn__stream_fail(struct h2_stream *s, bool retryable, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Appends response body bytes; ERR_TOO_LARGE past one stream window, ERR_NOMEM. */
int h2conn__stream_hold(struct h2_stream *s, const uint8_t *data, size_t len);
/* Stores one response header field of the head being collected. */
int h2conn__stream_add_field(struct h2_stream *s, const uint8_t *name, size_t namelen,
                             const uint8_t *value, size_t valuelen);
/* Delivers what s has (head, body, done) and reads its request body ahead. May call its
 * callbacks; the caller checks c->closed afterwards. */
void h2conn__stream_step(struct h2conn *c, struct h2_stream *s);
/* Frees s's memory (it must be unlinked and dead, or the connection going away). */
void h2conn__stream_free(struct h2_stream *s);

/* For tests: read-only views of the state. */
size_t h2_stream_buffered(const struct h2_stream *s); /* response bytes held now */
size_t h2_stream_buffered_peak(const struct h2_stream *s);
int32_t h2_stream_id(const struct h2_stream *s);
uint64_t h2conn_pings_acked(const struct h2conn *c);

#endif
