/*
 * ws_internal.h - what the two halves of the WebSocket client share: ws.c (the upgrade,
 * output, timers, the connection's events, the ending and the interface) and ws_frame.c
 * (WebSocket frames with wslay: reading, reassembling messages, the peer's close).
 * Nothing else includes it.
 */
#ifndef CREDBROKER_WS_INTERNAL_H
#define CREDBROKER_WS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>
#include <wslay/wslay.h>

#include "buf.h"
#include "netconn.h"
#include "ws.h"
#include "ws_url.h"

#define WS_HEAD_MAX (16 * 1024)     /* the upgrade response head, CRLFCRLF included */
#define WS_STAGE_MAX (64 * 1024)    /* plaintext gathered into one write */
#define WS_WRITE_HIGH (1024 * 1024) /* bytes queued in the connection above which wslay waits */
#define WS_MSG_KEEP (64 * 1024)     /* a message buffer above this is freed after use */
#define WS_LINGER_MS 2000           /* after the close exchange: flush, then the peer's end */
#define WS_REASON_MAX 512           /* net's error lines are up to 512 bytes too */
#define WS_PEER_REASON_MAX 100      /* bytes of the peer's close reason we report */
#define WS_CLOSE_REASON_MAX 123     /* RFC 6455 5.5: 125 bytes of payload, 2 for the code */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

enum ws_state {
    WS_CONNECTING, /* net_connect: resolve, TCP, TLS */
    WS_UPGRADING,  /* request sent, reading the response head */
    WS_OPEN,
    WS_CLOSING,  /* our close frame is queued; waiting for the peer's */
    WS_DRAINING, /* the outcome is known: flush the close frame, then the peer's end */
    WS_DONE,     /* the connection is released; on_close is due or delivered */
};

struct ws {
    uv_loop_t *loop;
    struct ws_callbacks cb;
    void *data;
    enum ws_state state;

    uint64_t connect_timeout_ms;
    uint64_t ping_interval_ms;
    uint64_t read_timeout_ms;
    size_t max_message;
    uint64_t started; /* loop time of ws_connect: the connect timeout covers the upgrade */

    struct ws_url url; /* only url.target carries the token; freed once the request is queued */
    char key[32];      /* Sec-WebSocket-Key: 24 base64 characters */
    char accept[32];   /* the Sec-WebSocket-Accept we expect: 28 characters */

    struct net_tls_ctx *tls;     /* wss: this ws's own (net_tls_ctx_free drops it) */
    struct net_connect *connect; /* while connecting */
    struct net_conn *conn;       /* once connected, until the end */
    uv_timer_t deadline;         /* upgrade, read, close and linger bounds; on_close */
    uv_timer_t ping;
    unsigned handles; /* timers whose close callback has not run yet */

    struct buf *head; /* the upgrade response head while it arrives */

    wslay_event_context_ptr wslay;
    const uint8_t *in_ptr; /* plaintext offered to wslay during ws__feed */
    size_t in_len;
    bool in_recv;    /* inside wslay_event_recv: do not re-enter wslay */
    struct buf *msg; /* the message being reassembled (BUF_WIPE) */
    bool msg_binary;
    bool frame_is_data; /* the current frame's payload goes to msg */
    bool msg_too_big;
    bool msg_failed;  /* out of memory while reassembling */
    uint64_t last_rx; /* loop time of the last WebSocket bytes received */

    size_t stage_len;

    /* The outcome: the first cause recorded wins. */
    bool finished;
    bool proto_error; /* reason completed at delivery, with the close code we sent */
    int http_status;
    int close_code;
    char reason[WS_REASON_MAX];
    bool close_reported;
    bool freed;

    uint8_t stage[WS_STAGE_MAX];
};

/* ws.c */

/* Records why the connection ends, unless a cause is recorded already. */
void ws__finish(struct ws *ws, int http_status, int close_code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Hands the staged bytes to the connection and wipes the stage; ERR_CLOSED: it ended. */
int ws__flush(struct ws *ws);
/* Lets wslay write what it has queued, then flushes. Safe in any state. */
void ws__pump(struct ws *ws);
/* The outcome is known and a close frame is queued (or exchanged): send it, then end. */
void ws__drain(struct ws *ws);
/* Drops the connection now; on_close follows from the deadline timer. */
void ws__end(struct ws *ws);

/* ws_frame.c */

/* The wslay context of an opened ws: 0 or an error. */
int ws__wslay_init(struct ws *ws);
/* Offers plaintext WebSocket bytes to wslay, then acts on what it found. */
void ws__feed(struct ws *ws, const uint8_t *p, size_t n);

#endif
