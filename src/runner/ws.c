/*
 * ws.c - the WebSocket client of ws.h: the HTTP/1.1 upgrade, wslay framing, pings,
 * timeouts and an orderly close, over a connection of src/net/netconn.h (which does
 * the resolve, TCP, TLS, reading and writing). The URL is taken apart by ws_url.c and
 * the server's upgrade answer checked by ws_upgrade.c.
 *
 * Reading. net_conn hands over plaintext: first the upgrade response head (up to its
 * CRLFCRLF, capped at WS_HEAD_MAX), then WebSocket bytes that wslay pulls through
 * ws__wslay_recv. wslay runs with its message buffering off: we reassemble data
 * frames into msg, a wiping buffer capped at max_message, so a credential carried in
 * a message does not linger in freed heap. wslay still validates every frame first.
 *
 * Writing. wslay pushes frame bytes through ws__wslay_send into stage (64 KiB); a full
 * stage becomes one net_conn_write (one TLS record run, not one per frame header).
 * Once WS_WRITE_HIGH bytes wait in the connection the send callback answers
 * WOULDBLOCK, and the connection's on_drain resumes wslay: output never piles up
 * beyond that, whatever the size of the message being sent.
 *
 * Lifetime. on_close is delivered from the deadline timer (armed at 0 when the
 * connection ends), so it never runs inside a ws_* call. The connection is released
 * at once when the ws ends (net_conn_free: no callback of it after that); the memory
 * of the ws goes in the last timer close callback after ws_free().
 *
 * Not here: sockets and TLS (src/net), reconnecting, logging (nothing is logged, so
 * the URL's token cannot be), extensions, subprotocols, proxies, redirects.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <wslay/wslay.h>

#include "buf.h"
#include "err.h"
#include "netconn.h"
#include "ws.h"
#include "ws_internal.h"
#include "ws_upgrade.h"
#include "ws_url.h"

static void ws__on_deadline(uv_timer_t *t);

/* ---- small helpers --------------------------------------------------------------------------- */

/* Records why the connection ends, unless a cause is recorded already. */
void ws__finish(struct ws *ws, int http_status, int close_code, const char *fmt, ...)
{
    va_list ap;

    if (ws->finished)
        return;
    ws->finished = true;
    ws->http_status = http_status;
    ws->close_code = close_code;
    va_start(ap, fmt);
    /* A truncated reason is still a fine log line. */
    (void)vsnprintf(ws->reason, sizeof(ws->reason), fmt, ap);
    va_end(ap);
}

/* "60 s" or "500 ms". */
static void ws__fmt_ms(char *out, size_t size, uint64_t ms)
{
    if (ms % 1000 == 0)
        (void)snprintf(out, size, "%" PRIu64 " s", ms / 1000);
    else
        (void)snprintf(out, size, "%" PRIu64 " ms", ms);
}

/* The timers are closed only by ws_free(), after which nothing starts them: cannot fail. */
static void ws__arm(uv_timer_t *t, uv_timer_cb cb, uint64_t timeout, uint64_t repeat)
{
    (void)uv_timer_start(t, cb, timeout, repeat);
}

/* RFC 6455 7.4.1/7.4.2: the codes an endpoint may put in a close frame. */
static bool ws__code_sendable(unsigned code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
           (code >= 3000 && code <= 4999);
}

/* RFC 6455 4.1: a random 16-byte nonce, and the answer the server must give for it. */
static int ws__make_key(struct ws *ws)
{
    unsigned char nonce[16], digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    char cat[64];
    int n;

    if (RAND_bytes(nonce, sizeof(nonce)) != 1)
        return -EIO;
    (void)EVP_EncodeBlock((unsigned char *)ws->key, nonce, sizeof(nonce));
    n = snprintf(cat, sizeof(cat), "%s%s", ws->key, WS_GUID);
    if (n < 0 || (size_t)n >= sizeof(cat))
        return ERR_INVALID;
    if (EVP_Digest(cat, (size_t)n, digest, &dlen, EVP_sha1(), NULL) != 1 || dlen != 20)
        return -EIO;
    (void)EVP_EncodeBlock((unsigned char *)ws->accept, digest, 20);
    return 0;
}

/* ---- output ---------------------------------------------------------------------------------- */

/* Hands the staged bytes to the connection (which copies them) and wipes the stage.
 * ERR_CLOSED: the connection ended, and its on_close is on the way with the reason. */
int ws__flush(struct ws *ws)
{
    int r = 0;

    if (ws->stage_len > 0 && ws->conn != NULL)
        r = net_conn_write(ws->conn, ws->stage, ws->stage_len);
    explicit_bzero(ws->stage, ws->stage_len);
    ws->stage_len = 0;
    return r;
}

/* Lets wslay write what it has queued, then flushes. Safe in any state. */
void ws__pump(struct ws *ws)
{
    int r;

    /* ws__feed pumps once wslay_event_recv has returned: wslay is not re-entered. */
    if (ws->in_recv)
        return;
    if (ws->state != WS_OPEN && ws->state != WS_CLOSING && ws->state != WS_DRAINING)
        return;
    if (wslay_event_want_write(ws->wslay) && (r = wslay_event_send(ws->wslay)) != 0) {
        ws__finish(ws, 0, 0, "send failed%s", r == WSLAY_ERR_NOMEM ? ": out of memory" : "");
        ws__end(ws);
        return;
    }
    if ((r = ws__flush(ws)) != 0 && r != ERR_CLOSED) {
        ws__finish(ws, 0, 0, "write error: %s", err_str(r));
        ws__end(ws);
        return;
    }
    if (ws->state != WS_DRAINING || wslay_event_want_write(ws->wslay) ||
        net_conn_pending(ws->conn) > 0)
        return; /* on_drain pumps again */
    /* Draining and our close frame is on its way. RFC 6455 7.1.1: after a close
     * exchange the server closes the TCP connection first; wait for that (bounded by
     * the deadline). After a refusal (no close frame from the peer) end now. */
    if (!wslay_event_get_close_received(ws->wslay))
        ws__end(ws);
}

/* ---- ending ---------------------------------------------------------------------------------- */

/* The outcome is known and a close frame is queued (or exchanged): send it, then end. */
void ws__drain(struct ws *ws)
{
    if (ws->state == WS_DONE || ws->state == WS_DRAINING)
        return;
    ws->state = WS_DRAINING;
    uv_timer_stop(&ws->ping);
    ws__arm(&ws->deadline, ws__on_deadline, WS_LINGER_MS, 0);
    ws__pump(ws);
}

/* Drops the connection now; on_close follows from the deadline timer. */
void ws__end(struct ws *ws)
{
    if (!ws->finished)
        ws__finish(ws, 0, 0, "closed");
    ws->state = WS_DONE;
    uv_timer_stop(&ws->ping);
    if (ws->in_recv)
        wslay_event_shutdown_read(ws->wslay);
    net_connect_cancel(ws->connect);
    ws->connect = NULL;
    net_conn_free(ws->conn); /* no callback of it after this, even from inside one */
    ws->conn = NULL;
    if (!ws->freed)
        ws__arm(&ws->deadline, ws__on_deadline, 0, 0);
}

static void ws__destroy(struct ws *ws)
{
    if (ws->wslay != NULL)
        wslay_event_context_free(ws->wslay);
    net_tls_ctx_free(ws->tls);
    buf_free(ws->head);
    buf_free(ws->msg);
    ws_url_free(&ws->url);
    explicit_bzero(ws, sizeof(*ws));
    free(ws);
}

static void ws__on_timer_close(uv_handle_t *h)
{
    struct ws *ws = h->data;

    if (--ws->handles == 0)
        ws__destroy(ws);
}

/* Fills in the reason of a refused frame once we know which close code went out. */
static void ws__complete_proto_reason(struct ws *ws)
{
    unsigned sent = wslay_event_get_status_code_sent(ws->wslay);
    const char *what;

    switch (sent) {
    case WSLAY_CODE_MESSAGE_TOO_BIG:
        /* wslay's own check: a single frame over max_message. */
        (void)snprintf(ws->reason, sizeof(ws->reason),
                       "message over %zu bytes refused; close 1009 sent", ws->max_message);
        return;
    case WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA:
        what = "invalid UTF-8 in a text message";
        break;
    default:
        what = "invalid frame (masked, reserved bits, unknown opcode, bad control frame or "
               "continuation)";
        break;
    }
    if (sent == WSLAY_CODE_ABNORMAL_CLOSURE) /* no close frame went out */
        (void)snprintf(ws->reason, sizeof(ws->reason), "protocol error from peer: %s", what);
    else if (sent == WSLAY_CODE_NO_STATUS_RCVD)
        (void)snprintf(ws->reason, sizeof(ws->reason), "protocol error from peer: %s; close sent",
                       what);
    else
        (void)snprintf(ws->reason, sizeof(ws->reason),
                       "protocol error from peer: %s; close %u sent", what, sent);
}

/* ---- the upgrade ----------------------------------------------------------------------------- */

/* RFC 6455 4.1: the opening handshake. The request line carries the token; every copy
 * of it is wiped (target, req; the connection wipes what it holds of plaintext). */
static void ws__send_request(struct ws *ws)
{
    struct buf *req = buf_new(WS_URL_MAX + 1024, BUF_WIPE);
    const char *target = buf_cstr(ws->url.target);
    int r;

    if (req == NULL || target == NULL) {
        r = ERR_NOMEM;
    } else {
        r = buf_putf(req,
                     "GET %s HTTP/1.1\r\n"
                     "Host: %s\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "User-Agent: credbroker-runner\r\n"
                     "\r\n",
                     target, ws->url.host_header, ws->key);
    }
    if (r == 0)
        r = net_conn_write(ws->conn, buf_ptr(req), buf_len(req));
    buf_free(req);
    buf_free(ws->url.target);
    ws->url.target = NULL;
    if (r != 0 && r != ERR_CLOSED) {
        ws__finish(ws, 0, 0, "sending the upgrade request: %s", err_str(r));
        ws__end(ws);
    }
}

/* The head ended early or grew too large: report its status if it had a refusing one. */
static void ws__fail_head(struct ws *ws, const char *why)
{
    const char *h;
    const char *eol;
    int status;

    if (ws->head != NULL && buf_len(ws->head) > 0) {
        h = (const char *)buf_ptr(ws->head);
        eol = memmem(h, buf_len(ws->head), "\r\n", 2);
        if (eol != NULL && ws_upgrade_status_line(h, (size_t)(eol - h), &status) == 0 &&
            status != 101) {
            ws__finish(ws, status, 0, "upgrade refused: HTTP %d", status);
            ws__end(ws);
            return;
        }
    }
    ws__finish(ws, 0, 0, "%s", why);
    ws__end(ws);
}

/* RFC 6455 4.1: the server's handshake, checked by ws_upgrade_check(); the outcome is
 * recorded here. h[0..len) ends with CRLFCRLF. */
static int ws__check_head(struct ws *ws, const char *h, size_t len)
{
    const char *why = NULL;
    int status = 0;

    if (ws_upgrade_check(h, len, ws->accept, &status, &why) == 0)
        return 0;
    if (status != 0 && status != 101)
        ws__finish(ws, status, 0, "upgrade refused: HTTP %d", status);
    else
        ws__finish(ws, 0, 0, "upgrade response: %s", why);
    return ERR_INVALID;
}

static void ws__on_ping(uv_timer_t *t);

static void ws__open(struct ws *ws, const uint8_t *rest, size_t n)
{
    buf_free(ws->head);
    ws->head = NULL;
    ws->state = WS_OPEN;
    ws->last_rx = uv_now(ws->loop);
    ws__arm(&ws->deadline, ws__on_deadline, ws->read_timeout_ms, 0);
    ws__arm(&ws->ping, ws__on_ping, ws->ping_interval_ms, ws->ping_interval_ms);
    if (ws->cb.on_open != NULL)
        ws->cb.on_open(ws, ws->data);
    if (ws->freed)
        return;
    /* Bytes after the head's CRLFCRLF are already WebSocket frames. */
    if (n > 0 && (ws->state == WS_OPEN || ws->state == WS_CLOSING))
        ws__feed(ws, rest, n);
}

static void ws__on_head(struct ws *ws, const uint8_t *p, size_t n)
{
    size_t old = buf_len(ws->head), room = WS_HEAD_MAX - old, take = n < room ? n : room;
    size_t from, len, used;
    const char *h, *crlf2;

    if (buf_put(ws->head, p, take) != 0) {
        ws__finish(ws, 0, 0, "out of memory");
        ws__end(ws);
        return;
    }
    h = (const char *)buf_ptr(ws->head);
    len = buf_len(ws->head);
    from = old > 3 ? old - 3 : 0;
    crlf2 = memmem(h + from, len - from, "\r\n\r\n", 4);
    if (crlf2 == NULL) {
        if (len >= WS_HEAD_MAX)
            ws__fail_head(ws, "upgrade response head over 16 KiB");
        return;
    }
    len = (size_t)(crlf2 + 4 - h);
    if (ws__check_head(ws, h, len) != 0) {
        ws__end(ws);
        return;
    }
    used = len - old; /* > 0: the old bytes held no CRLFCRLF */
    ws__open(ws, p + used, n - used);
}

/* ---- the connection's events ----------------------------------------------------------------- */

/* Plaintext from the server. Draining: the outcome is known; only its end matters. */
static void ws__on_plain(struct ws *ws, const uint8_t *p, size_t n)
{
    if (ws->state == WS_UPGRADING)
        ws__on_head(ws, p, n);
    else if (ws->state == WS_OPEN || ws->state == WS_CLOSING)
        ws__feed(ws, p, n);
}

static void ws__on_read(struct net_conn *c, const uint8_t *data, size_t len, void *ud)
{
    (void)c;
    ws__on_plain(ud, data, len);
}

static void ws__on_drain(struct net_conn *c, void *ud)
{
    (void)c;
    ws__pump(ud);
}

/* The server's end (reason NULL: cleanly), or a failure of the connection. */
static void ws__on_conn_close(struct net_conn *c, const char *reason, void *ud)
{
    struct ws *ws = ud;

    (void)c;
    if (ws->state == WS_UPGRADING && reason == NULL) {
        ws__fail_head(ws, "connection closed by peer during the upgrade");
        return;
    }
    if ((ws->state == WS_OPEN || ws->state == WS_CLOSING) && reason == NULL)
        ws__finish(ws, 0, 0, "connection closed by peer without a close frame");
    /* net's line names host:port and the cause, never the request target. */
    ws__finish(ws, 0, 0, "%s", reason != NULL ? reason : "connection closed by peer");
    ws__end(ws);
}

static const struct net_conn_events ws__events = {
    .on_read = ws__on_read,
    .on_drain = ws__on_drain,
    .on_close = ws__on_conn_close,
};

static void ws__on_connected(struct net_conn *c, const char *error, void *ud)
{
    struct ws *ws = ud;
    uint64_t spent = uv_now(ws->loop) - ws->started;

    ws->connect = NULL;
    if (c == NULL) {
        ws__finish(ws, 0, 0, "%s", error);
        ws__end(ws);
        return;
    }
    ws->conn = c;
    ws->state = WS_UPGRADING;
    net_conn_set_events(c, &ws__events, ws);
    /* The connect timeout covers the upgrade too: what is left of it. */
    ws__arm(&ws->deadline, ws__on_deadline,
            spent < ws->connect_timeout_ms ? ws->connect_timeout_ms - spent : 1, 0);
    ws__send_request(ws);
}

/* ---- timers ---------------------------------------------------------------------------------- */

static void ws__on_deadline(uv_timer_t *t)
{
    struct ws *ws = t->data;
    char span[32];
    uint64_t idle;

    switch (ws->state) {
    case WS_CONNECTING: /* net's own timeout runs */
        return;
    case WS_UPGRADING:
        ws__finish(ws, 0, 0, "connect to %s timed out after %" PRIu64 " ms (upgrade)",
                   net_conn_peer(ws->conn), ws->connect_timeout_ms);
        break;
    case WS_OPEN:
        idle = uv_now(ws->loop) - ws->last_rx;
        if (idle < ws->read_timeout_ms) {
            ws__arm(&ws->deadline, ws__on_deadline, ws->read_timeout_ms - idle, 0);
            return;
        }
        ws__fmt_ms(span, sizeof(span), ws->read_timeout_ms);
        ws__finish(ws, 0, 0, "no traffic for %s", span);
        break;
    case WS_CLOSING:
        ws__fmt_ms(span, sizeof(span), WS_CLOSE_TIMEOUT_MS);
        ws__finish(ws, 0, 0, "no close frame from peer within %s", span);
        break;
    case WS_DRAINING:
        break; /* the outcome is recorded; the peer did not finish in time */
    case WS_DONE:
        if (!ws->close_reported && !ws->freed) {
            ws->close_reported = true;
            if (ws->proto_error)
                ws__complete_proto_reason(ws);
            ws->cb.on_close(ws, ws->http_status, ws->close_code, ws->reason, ws->data);
        }
        return;
    }
    ws__end(ws);
}

static void ws__on_ping(uv_timer_t *t)
{
    struct ws *ws = t->data;
    uint64_t now = uv_now(ws->loop);
    uint8_t payload[8];
    struct wslay_event_msg m;
    int i;

    if (ws->state != WS_OPEN)
        return;
    /* The payload is opaque to the peer; the loop time makes each ping distinct. */
    for (i = 7; i >= 0; i--) {
        payload[i] = (uint8_t)(now & 0xff);
        now >>= 8;
    }
    m.opcode = WSLAY_PING;
    m.msg = payload;
    m.msg_length = sizeof(payload);
    if (wslay_event_queue_msg(ws->wslay, &m) == WSLAY_ERR_NOMEM) {
        ws__finish(ws, 0, 0, "out of memory");
        ws__end(ws);
        return;
    }
    ws__pump(ws);
}

/* ---- public ---------------------------------------------------------------------------------- */

int ws_connect(uv_loop_t *loop, const struct ws_options *opts, const struct ws_callbacks *cb,
               void *data, struct ws **out)
{
    struct net_target target = {0};
    struct ws *ws = NULL;
    int r;

    *out = NULL;
    if (loop == NULL || opts == NULL || opts->url == NULL || cb == NULL || cb->on_close == NULL)
        return ERR_INVALID;
    if ((ws = calloc(1, sizeof(*ws))) == NULL)
        return ERR_NOMEM;
    ws->loop = loop;
    ws->cb = *cb;
    ws->data = data;
    ws->connect_timeout_ms =
        opts->connect_timeout_ms ? opts->connect_timeout_ms : WS_CONNECT_TIMEOUT_MS_DEFAULT;
    ws->ping_interval_ms =
        opts->ping_interval_ms ? opts->ping_interval_ms : WS_PING_INTERVAL_MS_DEFAULT;
    ws->read_timeout_ms =
        opts->read_timeout_ms ? opts->read_timeout_ms : WS_READ_TIMEOUT_MS_DEFAULT;
    ws->max_message = opts->max_message ? opts->max_message : WS_MAX_MESSAGE_DEFAULT;
    if ((r = ws_url_parse(opts->url, &ws->url)) != 0 || (r = ws__make_key(ws)) != 0 ||
        (ws->url.tls && (r = net_tls_ctx_new(opts->cacert, &ws->tls)) != 0) ||
        (r = ws__wslay_init(ws)) != 0)
        goto out;
    if ((ws->head = buf_new(WS_HEAD_MAX, 0)) == NULL) {
        r = ERR_NOMEM;
        goto out;
    }

    /* From here the loop holds part of ws: a failure closes the timers made so far, and
     * the memory goes in their close callbacks. XXX: libuv 1.44 cannot fail these. */
    if ((r = uv_timer_init(loop, &ws->deadline)) != 0)
        goto out;
    ws->deadline.data = ws;
    ws->handles++;
    if ((r = uv_timer_init(loop, &ws->ping)) != 0)
        goto out_async;
    ws->ping.data = ws;
    ws->handles++;
    /* ws_url_parse checked the port (1..65535) and the host (a name or an IP literal). */
    target.host = ws->url.host;
    target.port = (uint16_t)strtoul(ws->url.port, NULL, 10);
    target.tls = ws->url.tls;
    ws->started = uv_now(loop);
    if ((r = net_connect_start(loop, ws->tls, &target, ws->connect_timeout_ms, ws__on_connected, ws,
                               &ws->connect)) != 0) {
        if (r == ERR_INVALID) /* only a host net cannot use can be invalid here */
            r = ERR_BAD_URL;
        goto out_async;
    }
    ws->state = WS_CONNECTING;
    *out = ws;
    return 0;

out_async:
    ws->freed = true;
    ws->state = WS_DONE;
    uv_close((uv_handle_t *)&ws->deadline, ws__on_timer_close);
    if (ws->handles == 2)
        uv_close((uv_handle_t *)&ws->ping, ws__on_timer_close);
    return r;
out:
    ws__destroy(ws);
    return r;
}

int ws_send_text(struct ws *ws, const char *text, size_t len)
{
    struct wslay_event_msg m;
    int r;

    if (ws == NULL || ws->state != WS_OPEN || ws->freed)
        return ERR_CLOSED;
    if (len > ws->max_message)
        return ERR_TOO_LARGE;
    m.opcode = WSLAY_TEXT_FRAME;
    m.msg = (const uint8_t *)(len > 0 ? text : "");
    m.msg_length = len;
    if ((r = wslay_event_queue_msg(ws->wslay, &m)) != 0)
        return r == WSLAY_ERR_NOMEM ? ERR_NOMEM : ERR_CLOSED;
    ws__pump(ws);
    return 0;
}

size_t ws_pending(const struct ws *ws)
{
    if (ws == NULL || ws->wslay == NULL)
        return 0;
    return wslay_event_get_queued_msg_length(ws->wslay) + ws->stage_len +
           (ws->conn != NULL ? net_conn_pending(ws->conn) : 0);
}

void ws_close(struct ws *ws, uint16_t code, const char *reason)
{
    size_t rlen = 0;
    int r;

    if (ws == NULL || ws->freed)
        return;
    switch (ws->state) {
    case WS_CONNECTING:
    case WS_UPGRADING:
        ws__finish(ws, 0, 0, "closed by caller before the connection was open");
        ws__end(ws);
        return;
    case WS_OPEN:
        break;
    default:
        return;
    }
    if (code != 0 && !ws__code_sendable(code))
        code = WSLAY_CODE_NORMAL_CLOSURE;
    if (code != 0 && reason != NULL) {
        rlen = strnlen(reason, WS_CLOSE_REASON_MAX + 1);
        if (rlen > WS_CLOSE_REASON_MAX) {
            /* Cut before a UTF-8 sequence that would not fit whole. */
            rlen = WS_CLOSE_REASON_MAX;
            while (rlen > 0 && ((unsigned char)reason[rlen] & 0xc0) == 0x80)
                rlen--;
        }
    }
    r = wslay_event_queue_close(ws->wslay, code, (const uint8_t *)reason, rlen);
    if (r == WSLAY_ERR_NOMEM) {
        ws__finish(ws, 0, 0, "out of memory");
        ws__end(ws);
        return;
    }
    ws->state = WS_CLOSING;
    uv_timer_stop(&ws->ping);
    ws__arm(&ws->deadline, ws__on_deadline, WS_CLOSE_TIMEOUT_MS, 0);
    ws__pump(ws);
}

void ws_free(struct ws *ws)
{
    if (ws == NULL || ws->freed)
        return;
    /* Set first: ws__end then arms no on_close; it still sees in_recv and stops wslay. */
    ws->freed = true;
    if (ws->state != WS_DONE) {
        ws__finish(ws, 0, 0, "freed by caller");
        ws__end(ws);
    }
    uv_close((uv_handle_t *)&ws->deadline, ws__on_timer_close);
    uv_close((uv_handle_t *)&ws->ping, ws__on_timer_close);
}
