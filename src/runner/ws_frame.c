/*
 * ws_frame.c - the WebSocket client's frames (ws_internal.h): wslay pulls the bytes the
 * connection delivered and pushes the frames we send; data frames are reassembled into
 * one wiping buffer capped at max_message; the peer's close is answered. See ws.c for
 * reading and writing as a whole.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>
#include <wslay/wslay.h>

#include "buf.h"
#include "err.h"
#include "ws_internal.h"

static ssize_t ws__wslay_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                              void *user)
{
    struct ws *ws = user;
    size_t n = ws->in_len < len ? ws->in_len : len;

    (void)flags;
    if (n == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    memcpy(buf, ws->in_ptr, n);
    ws->in_ptr += n;
    ws->in_len -= n;
    return (ssize_t)n;
}

static ssize_t ws__wslay_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
                              int flags, void *user)
{
    struct ws *ws = user;
    size_t n;
    int r;

    (void)flags;
    if (ws->stage_len == sizeof(ws->stage)) {
        if (net_conn_pending(ws->conn) >= WS_WRITE_HIGH) {
            /* on_drain pumps again once the connection has written it all. */
            wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
            return -1;
        }
        if ((r = ws__flush(ws)) == ERR_CLOSED) {
            /* The connection's on_close is on the way; nothing more goes out. */
            wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
            return -1;
        }
        if (r != 0) {
            ws__finish(ws, 0, 0, "write error: %s", err_str(r));
            wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
            return -1;
        }
    }
    n = sizeof(ws->stage) - ws->stage_len;
    if (n > len)
        n = len;
    memcpy(ws->stage + ws->stage_len, data, n);
    ws->stage_len += n;
    return (ssize_t)n;
}

/* RFC 6455 5.3: every client frame is masked with a fresh, unpredictable key. */
static int ws__wslay_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
    (void)ctx;
    (void)user;
    return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

/* Stops reading and queues a close frame: the message cannot be taken. */
static void ws__refuse_message(struct ws *ws, uint16_t code, const char *why)
{
    ws->frame_is_data = false;
    (void)wslay_event_queue_close(ws->wslay, code, (const uint8_t *)why, strlen(why));
    wslay_event_shutdown_read(ws->wslay);
}

/* wslay has validated the frame header (mask, RSV, opcode, control frame rules). */
static void ws__wslay_frame_start(wslay_event_context_ptr ctx,
                                  const struct wslay_event_on_frame_recv_start_arg *arg, void *user)
{
    struct ws *ws = user;
    uint8_t *dst;

    (void)ctx;
    ws->frame_is_data = false;
    if (arg->opcode != WSLAY_TEXT_FRAME && arg->opcode != WSLAY_BINARY_FRAME &&
        arg->opcode != WSLAY_CONTINUATION_FRAME)
        return;
    if (ws->msg_too_big || ws->msg_failed)
        return;
    if (arg->opcode != WSLAY_CONTINUATION_FRAME)
        ws->msg_binary = arg->opcode == WSLAY_BINARY_FRAME;
    if (ws->msg == NULL && (ws->msg = buf_new(ws->max_message, BUF_WIPE)) == NULL) {
        ws->msg_failed = true;
        ws__refuse_message(ws, WSLAY_CODE_INTERNAL_SERVER_ERROR, "out of memory");
        return;
    }
    /* The limit applies to the whole message, checked before its bytes arrive. */
    if (arg->payload_length > (uint64_t)(ws->max_message - buf_len(ws->msg))) {
        ws->msg_too_big = true;
        ws__refuse_message(ws, WSLAY_CODE_MESSAGE_TOO_BIG, "message too big");
        return;
    }
    /* One allocation for a large frame instead of a chain of doublings. */
    if (arg->payload_length > 0 && buf_reserve(ws->msg, (size_t)arg->payload_length, &dst) != 0) {
        ws->msg_failed = true;
        ws__refuse_message(ws, WSLAY_CODE_INTERNAL_SERVER_ERROR, "out of memory");
        return;
    }
    ws->frame_is_data = true;
}

static void ws__wslay_frame_chunk(wslay_event_context_ptr ctx,
                                  const struct wslay_event_on_frame_recv_chunk_arg *arg, void *user)
{
    struct ws *ws = user;

    (void)ctx;
    if (!ws->frame_is_data || arg->data_length == 0)
        return;
    if (buf_put(ws->msg, arg->data, arg->data_length) != 0) {
        ws->msg_failed = true;
        ws__refuse_message(ws, WSLAY_CODE_INTERNAL_SERVER_ERROR, "out of memory");
    }
}

static void ws__deliver(struct ws *ws)
{
    uint8_t empty[1] = {0};
    size_t len;

    if (ws->msg_too_big || ws->msg_failed || ws->msg == NULL)
        return;
    len = buf_len(ws->msg);
    /* After ws_close() (CLOSING) the caller no longer wants messages. */
    if (ws->state == WS_OPEN && !ws->freed && ws->cb.on_message != NULL)
        ws->cb.on_message(ws, len > 0 ? buf_mutable_ptr(ws->msg) : empty, len, ws->msg_binary,
                          ws->data);
    /* Both wipe; a large block is not kept around for the next small message. */
    if (len > WS_MSG_KEEP) {
        buf_free(ws->msg);
        ws->msg = NULL;
    } else {
        buf_reset(ws->msg);
    }
}

static void ws__on_peer_close(struct ws *ws, const struct wslay_event_on_msg_recv_arg *arg)
{
    char why[WS_PEER_REASON_MAX + 1];
    size_t i, n = 0;

    /* The peer's reason goes to a log line: printable ASCII only, bounded. */
    for (i = 2; i < arg->msg_length && n < WS_PEER_REASON_MAX; i++) {
        unsigned char c = arg->msg[i];

        why[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    why[n] = '\0';
    if (arg->status_code == 0)
        ws__finish(ws, 0, 0, "closed by peer without a code");
    else
        ws__finish(ws, 0, arg->status_code, "%s %u%s%s",
                   ws->state == WS_CLOSING ? "closed, peer answered" : "closed by peer with",
                   arg->status_code, n > 0 ? ": " : "", why);
}

static void ws__wslay_msg(wslay_event_context_ptr ctx,
                          const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
    struct ws *ws = user;

    (void)ctx;
    if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME)
        ws__deliver(ws);
    else if (arg->opcode == WSLAY_CONNECTION_CLOSE)
        ws__on_peer_close(ws, arg);
    /* wslay answers pings itself; a pong needs nothing beyond counting as traffic. */
}

int ws__wslay_init(struct ws *ws)
{
    const struct wslay_event_callbacks cbs = {
        .recv_callback = ws__wslay_recv,
        .send_callback = ws__wslay_send,
        .genmask_callback = ws__wslay_genmask,
        .on_frame_recv_start_callback = ws__wslay_frame_start,
        .on_frame_recv_chunk_callback = ws__wslay_frame_chunk,
        .on_frame_recv_end_callback = NULL,
        .on_msg_recv_callback = ws__wslay_msg,
    };

    if (wslay_event_context_client_init(&ws->wslay, &cbs, ws) != 0)
        return ERR_NOMEM;
    /* We reassemble data messages ourselves, into a wiping buffer. */
    wslay_event_config_set_no_buffering(ws->wslay, 1);
    /* Without buffering wslay applies this per frame; ws__wslay_frame_start checks the
     * whole message. */
    wslay_event_config_set_max_recv_msg_length(ws->wslay, ws->max_message);
    /* RFC 6455 5.2: no extension was negotiated, so any RSV bit is a protocol error. */
    wslay_event_config_set_allowed_rsv_bits(ws->wslay, WSLAY_RSV_NONE);
    return 0;
}

/* Offers plaintext WebSocket bytes to wslay, then acts on what it found. */
void ws__feed(struct ws *ws, const uint8_t *p, size_t n)
{
    int r;

    ws->last_rx = uv_now(ws->loop);
    ws->in_ptr = p;
    ws->in_len = n;
    ws->in_recv = true;
    r = wslay_event_recv(ws->wslay);
    ws->in_recv = false;
    ws->in_ptr = NULL;
    ws->in_len = 0;
    if (ws->state != WS_OPEN && ws->state != WS_CLOSING)
        return; /* ended (or freed) from a callback */
    if (r == WSLAY_ERR_NOMEM) {
        ws__finish(ws, 0, 0, "out of memory");
        ws__end(ws);
        return;
    }
    if (r != 0) {
        /* wslay's frame layer refused the frame (control frame over 125 bytes or
         * fragmented, bad length) and queued a close frame. */
        ws->proto_error = !ws->finished;
        ws__finish(ws, 0, 0, "protocol error from peer");
        ws__drain(ws);
        return;
    }
    if (wslay_event_get_close_received(ws->wslay)) {
        ws__drain(ws); /* wslay queued the answer unless ours went first */
        return;
    }
    if (!wslay_event_get_read_enabled(ws->wslay)) {
        /* Refused by us (size, memory) or by wslay (masked frame, RSV bits, unknown
         * opcode, bad continuation, invalid UTF-8): a close frame is queued. */
        if (ws->msg_too_big) {
            ws__finish(ws, 0, 0, "message over %zu bytes refused; close 1009 sent",
                       ws->max_message);
        } else if (ws->msg_failed) {
            ws__finish(ws, 0, 0, "out of memory reassembling a message");
        } else {
            ws->proto_error = !ws->finished;
            ws__finish(ws, 0, 0, "protocol error from peer");
        }
        ws__drain(ws);
        return;
    }
    ws__pump(ws); /* pongs, and whatever on_message queued */
}
