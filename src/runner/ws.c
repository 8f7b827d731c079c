/*
 * ws.c - the WebSocket client of ws.h: resolve, connect, TLS over memory BIOs, the
 * HTTP/1.1 upgrade, wslay framing, pings, timeouts and an orderly close. The URL is
 * taken apart by ws_url.c and the server's upgrade answer checked by ws_upgrade.c.
 *
 * Reading. libuv reads into rbuf. For wss the bytes go into the read BIO and come
 * out of SSL_read in pbuf. Plaintext is first the upgrade response head (up to its
 * CRLFCRLF, capped at WS_HEAD_MAX), then WebSocket bytes that wslay pulls through
 * ws__wslay_recv. wslay runs with its message buffering off: we reassemble data
 * frames into msg, a wiping buffer capped at max_message, so a credential carried in
 * a message does not linger in freed heap. wslay still validates every frame first.
 *
 * Writing. wslay pushes frame bytes through ws__wslay_send into stage (64 KiB). A
 * full stage becomes one uv_write, through SSL_write and the write BIO for wss. Once
 * WS_WRITE_HIGH bytes are in flight the send callback answers WOULDBLOCK, and
 * ws__on_write resumes wslay as writes complete: encrypted output never piles up
 * beyond that, whatever the size of the message being sent.
 *
 * Lifetime. Every handle and request lives inside struct ws. on_close is delivered
 * from the TCP handle's close callback, so it never runs inside a ws_* call, and every
 * write request has completed by then. The memory is released in the last close
 * callback after ws_free(), and not before the getaddrinfo request has returned.
 *
 * Not here: reconnecting, logging (nothing is logged, so the URL's token cannot be),
 * extensions, subprotocols, proxies, redirects.
 */
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wslay/wslay.h>

#include "buf.h"
#include "err.h"
#include "openssl_api.h"
#include "ws.h"
#include "ws_upgrade.h"
#include "ws_url.h"

#define WS_HEAD_MAX (16 * 1024)     /* the upgrade response head, CRLFCRLF included */
#define WS_READ_CHUNK (64 * 1024)   /* one uv read */
#define WS_PLAIN_CHUNK (16 * 1024)  /* one SSL_read: a TLS record at most */
#define WS_STAGE_MAX (64 * 1024)    /* plaintext gathered into one write */
#define WS_WRITE_HIGH (1024 * 1024) /* in-flight bytes above which wslay must wait */
#define WS_MSG_KEEP (64 * 1024)     /* a message buffer above this is freed after use */
#define WS_LINGER_MS 2000           /* after the close exchange: flush, FIN, peer's FIN */
#define WS_KEEPALIVE_S 30
#define WS_REASON_MAX 200
#define WS_PEER_REASON_MAX 100  /* bytes of the peer's close reason we report */
#define WS_CLOSE_REASON_MAX 123 /* RFC 6455 5.5: 125 bytes of payload, 2 for the code */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

enum ws_state {
    WS_RESOLVING,
    WS_CONNECTING,
    WS_TLS_HANDSHAKE,
    WS_UPGRADING, /* request sent, reading the response head */
    WS_OPEN,
    WS_CLOSING,  /* our close frame is queued; waiting for the peer's */
    WS_DRAINING, /* the outcome is known: flush the close frame, close_notify, FIN */
    WS_DONE,     /* the TCP handle is closing or closed */
};

static const char *const ws__state_name[] = {
    "resolving", "connecting", "TLS handshake", "upgrade", "open", "closing", "draining", "done",
};

/* One uv_write of a copy of the bytes; freed (wiped) in ws__on_write. */
struct ws__wreq {
    uv_write_t req;
    struct ws *ws;
    size_t len;
    uint8_t data[];
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

    struct ws_url url; /* only url.target carries the token; freed once the request is queued */
    char key[32];       /* Sec-WebSocket-Key: 24 base64 characters */
    char accept[32];    /* the Sec-WebSocket-Accept we expect: 28 characters */

    uv_tcp_t tcp;
    uv_timer_t deadline; /* connect timeout, then read timeout, close and linger bounds */
    uv_timer_t ping;
    uv_getaddrinfo_t gai;
    uv_connect_t connect_req;
    uv_shutdown_t shutdown_req;
    unsigned handles; /* initialized handles whose close callback has not run yet */
    bool gai_pending;
    bool tcp_closing;
    bool reconnecting;   /* tcp is closing so that the next address can be tried */
    struct addrinfo *ai; /* resolved addresses, until connected */
    struct addrinfo *ai_next;
    int connect_err;

    SSL_CTX *ssl_ctx;
    SSL *ssl;
    BIO *rbio; /* both owned by ssl */
    BIO *wbio;
    bool tls_shutdown;

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
    size_t out_inflight; /* bytes handed to uv_write and not yet completed */
    bool shutdown_started;
    bool shutdown_done;
    bool eof;

    /* The outcome: the first cause recorded wins. */
    bool finished;
    bool proto_error; /* reason completed at delivery, with the close code we sent */
    int http_status;
    int close_code;
    char reason[WS_REASON_MAX];
    bool close_reported;
    bool freed;

    uint8_t stage[WS_STAGE_MAX];
    uint8_t rbuf[WS_READ_CHUNK];
    uint8_t pbuf[WS_PLAIN_CHUNK];
};

/* OpenSSL (src/core/openssl_api.h), loaded by the first ws_connect(). */
static const struct openssl_api *ossl;

static void ws__close_tcp(struct ws *ws);
static void ws__pump(struct ws *ws);
static void ws__on_tcp_close(uv_handle_t *h);
static void ws__on_deadline(uv_timer_t *t);
static void ws__on_shutdown(uv_shutdown_t *req, int status);
static void ws__on_ping(uv_timer_t *t);

/* ---- small helpers --------------------------------------------------------------------------- */

static void ws__finish(struct ws *ws, int http_status, int close_code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records why the connection ends, unless a cause is recorded already. */
static void ws__finish(struct ws *ws, int http_status, int close_code, const char *fmt, ...)
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

/* Records the TLS failure at hand (verification result first, else OpenSSL's error). */
static void ws__finish_tls(struct ws *ws, const char *what)
{
    char err[160];
    long vr = ws->ssl != NULL ? ossl->SSL_get_verify_result(ws->ssl) : X509_V_OK;
    unsigned long e = ossl->ERR_peek_last_error();

    if (vr != X509_V_OK) {
        ws__finish(ws, 0, 0, "%s: certificate verification failed: %s", what,
                   ossl->X509_verify_cert_error_string(vr));
    } else if (e != 0) {
        ossl->ERR_error_string_n(e, err, sizeof(err));
        ws__finish(ws, 0, 0, "%s: %s", what, err);
    } else {
        ws__finish(ws, 0, 0, "%s", what);
    }
    ossl->ERR_clear_error();
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

/* ---- key ------------------------------------------------------------------------------------- */

/* RFC 6455 4.1: a random 16-byte nonce, and the answer the server must give for it. */
static int ws__make_key(struct ws *ws)
{
    unsigned char nonce[16], digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    char cat[64];
    int n;

    if (ossl->RAND_bytes(nonce, sizeof(nonce)) != 1)
        return -EIO;
    (void)ossl->EVP_EncodeBlock((unsigned char *)ws->key, nonce, sizeof(nonce));
    n = snprintf(cat, sizeof(cat), "%s%s", ws->key, WS_GUID);
    if (n < 0 || (size_t)n >= sizeof(cat))
        return ERR_INVALID;
    if (ossl->EVP_Digest(cat, (size_t)n, digest, &dlen, ossl->EVP_sha1(), NULL) != 1 || dlen != 20)
        return -EIO;
    (void)ossl->EVP_EncodeBlock((unsigned char *)ws->accept, digest, 20);
    return 0;
}

/* ---- TLS setup ------------------------------------------------------------------------------- */

static int ws__tls_init(struct ws *ws, const char *cacert)
{
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    BIO *rb = NULL, *wb = NULL;
    X509_VERIFY_PARAM *param;
    int r = ERR_NOMEM;

    if ((ctx = ossl->SSL_CTX_new(ossl->TLS_client_method())) == NULL)
        goto out;
    r = ERR_INVALID;
    if (ossl->SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, NULL) != 1)
        goto out;
    /* CLEANSE_PLAINTEXT: OpenSSL wipes a record's plaintext once SSL_read has handed it over,
     * so a task message, credential included, does not stay in its buffer (SECURITY.md 6). */
    ossl->SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                       SSL_OP_CLEANSE_PLAINTEXT);
    ossl->SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (cacert != NULL) {
        if (ossl->SSL_CTX_load_verify_locations(ctx, cacert, NULL) != 1)
            goto out;
    } else if (ossl->SSL_CTX_set_default_verify_paths(ctx) != 1) {
        goto out;
    }
    r = ERR_NOMEM;
    if ((ssl = ossl->SSL_new(ctx)) == NULL || (rb = ossl->BIO_new(ossl->BIO_s_mem())) == NULL ||
        (wb = ossl->BIO_new(ossl->BIO_s_mem())) == NULL)
        goto out;
    ossl->SSL_set_bio(ssl, rb, wb);
    rb = wb = NULL; /* transferred */
    ossl->SSL_set_connect_state(ssl);
    param = ossl->SSL_get0_param(ssl);
    ossl->X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    r = ERR_BAD_URL;
    if (ws->url.host_is_ip) {
        /* RFC 6066 3: an address is never sent as SNI; the certificate must name it in
         * an iPAddress SAN, which set1_ip checks (a dNSName "127.0.0.1" does not count). */
        if (ossl->X509_VERIFY_PARAM_set1_ip_asc(param, ws->url.host) != 1)
            goto out;
    } else if (ossl->SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                              ws->url.host) != 1 ||
               ossl->SSL_set1_host(ssl, ws->url.host) != 1) {
        goto out;
    }
    ws->rbio = ossl->SSL_get_rbio(ssl);
    ws->wbio = ossl->SSL_get_wbio(ssl);
    ws->ssl_ctx = ctx;
    ws->ssl = ssl;
    ctx = NULL; /* transferred */
    ssl = NULL;
    r = 0;
out:
    ossl->BIO_free(rb);
    ossl->BIO_free(wb);
    ossl->SSL_free(ssl);
    ossl->SSL_CTX_free(ctx);
    ossl->ERR_clear_error();
    return r;
}

/* ---- output ---------------------------------------------------------------------------------- */

static void ws__on_write(uv_write_t *req, int status)
{
    struct ws__wreq *w = req->data;
    struct ws *ws = w->ws;

    ws->out_inflight -= w->len;
    explicit_bzero(w->data, w->len);
    free(w);
    if (ws->state == WS_DONE)
        return;
    if (status < 0) {
        ws__finish(ws, 0, 0, "write error: %s", uv_strerror(status));
        ws__close_tcp(ws);
        return;
    }
    ws__pump(ws);
}

static struct ws__wreq *ws__wreq_new(struct ws *ws, size_t len)
{
    struct ws__wreq *w = malloc(sizeof(*w) + len);

    if (w == NULL)
        return NULL;
    w->ws = ws;
    w->len = len;
    w->req.data = w;
    return w;
}

/* Hands w to libuv (which then owns it), or frees it and returns the error. */
static int ws__wreq_submit(struct ws *ws, struct ws__wreq *w)
{
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned int)w->len);
    int r;

    if ((r = uv_write(&w->req, (uv_stream_t *)&ws->tcp, &b, 1, ws__on_write)) != 0) {
        explicit_bzero(w->data, w->len);
        free(w);
        return r;
    }
    ws->out_inflight += w->len;
    return 0;
}

/*
 * Writes out the staged plaintext (through TLS for wss) and whatever TLS produced
 * (handshake, alerts, close_notify). Returns 0 or a negative code, with a reason
 * recorded when it knows one better than the code.
 */
static int ws__out_flush(struct ws *ws)
{
    struct ws__wreq *w;
    size_t pending;
    int n, r;

    if (ws->stage_len > 0 && ws->ssl == NULL) {
        if ((w = ws__wreq_new(ws, ws->stage_len)) == NULL)
            return ERR_NOMEM;
        memcpy(w->data, ws->stage, ws->stage_len);
        explicit_bzero(ws->stage, ws->stage_len);
        ws->stage_len = 0;
        return ws__wreq_submit(ws, w);
    }
    if (ws->ssl == NULL)
        return 0;
    if (ws->stage_len > 0) {
        /* A memory BIO never pushes back, so SSL_write takes it all or fails. */
        ossl->ERR_clear_error();
        n = ossl->SSL_write(ws->ssl, ws->stage, (int)ws->stage_len);
        explicit_bzero(ws->stage, ws->stage_len);
        if (n <= 0 || (size_t)n != ws->stage_len) {
            ws__finish_tls(ws, "TLS write failed");
            ws->stage_len = 0;
            return -EPROTO;
        }
        ws->stage_len = 0;
    }
    while ((pending = ossl->BIO_ctrl_pending(ws->wbio)) > 0) {
        if ((w = ws__wreq_new(ws, pending)) == NULL)
            return ERR_NOMEM;
        n = ossl->BIO_read(ws->wbio, w->data, (int)pending);
        if (n <= 0) {
            free(w);
            return -EIO;
        }
        w->len = (size_t)n;
        if ((r = ws__wreq_submit(ws, w)) != 0)
            return r;
    }
    return 0;
}

/* Queues bytes ignoring the high-water mark: for the upgrade request only. */
static int ws__out_put_all(struct ws *ws, const uint8_t *p, size_t len)
{
    size_t n;
    int r;

    while (len > 0) {
        if (ws->stage_len == sizeof(ws->stage) && (r = ws__out_flush(ws)) != 0)
            return r;
        n = sizeof(ws->stage) - ws->stage_len;
        if (n > len)
            n = len;
        memcpy(ws->stage + ws->stage_len, p, n);
        ws->stage_len += n;
        p += n;
        len -= n;
    }
    return ws__out_flush(ws);
}

/* Lets wslay write what it has queued, then flushes. Safe in any state. */
static void ws__pump(struct ws *ws)
{
    int r;

    /* ws__feed pumps once wslay_event_recv has returned: wslay is not re-entered. */
    if (ws->in_recv)
        return;
    if (ws->state != WS_OPEN && ws->state != WS_CLOSING && ws->state != WS_DRAINING)
        return;
    if (wslay_event_want_write(ws->wslay) && (r = wslay_event_send(ws->wslay)) != 0) {
        ws__finish(ws, 0, 0, "send failed%s", r == WSLAY_ERR_NOMEM ? ": out of memory" : "");
        ws__close_tcp(ws);
        return;
    }
    if ((r = ws__out_flush(ws)) != 0) {
        ws__finish(ws, 0, 0, "write error: %s", err_str(r));
        ws__close_tcp(ws);
        return;
    }
    if (ws->state != WS_DRAINING || ws->shutdown_started || wslay_event_want_write(ws->wslay))
        return;
    /* Draining and wslay is done (its close frame went out): close_notify, then FIN. */
    if (ws->ssl != NULL && !ws->tls_shutdown && ossl->SSL_is_init_finished(ws->ssl)) {
        ws->tls_shutdown = true;
        ossl->ERR_clear_error();
        /* We do not wait for the peer's close_notify: the TCP close follows. */
        (void)ossl->SSL_shutdown(ws->ssl);
        ossl->ERR_clear_error();
        if ((r = ws__out_flush(ws)) != 0) {
            ws__close_tcp(ws);
            return;
        }
    }
    if (ws->out_inflight > 0)
        return; /* ws__on_write pumps again */
    ws->shutdown_started = true;
    if (uv_shutdown(&ws->shutdown_req, (uv_stream_t *)&ws->tcp, ws__on_shutdown) != 0)
        ws__close_tcp(ws);
}

/* ---- ending ---------------------------------------------------------------------------------- */

static void ws__on_shutdown(uv_shutdown_t *req, int status)
{
    struct ws *ws = req->data;

    ws->shutdown_done = true;
    if (ws->state != WS_DRAINING)
        return;
    /* RFC 6455 7.1.1: the server should close the TCP connection first; wait for its
     * FIN (bounded by the deadline) unless it came already. */
    if (status < 0 || ws->eof)
        ws__close_tcp(ws);
}

/* The outcome is known and a close frame is queued (or exchanged): send it, then end. */
static void ws__drain(struct ws *ws)
{
    if (ws->state == WS_DONE || ws->state == WS_DRAINING)
        return;
    ws->state = WS_DRAINING;
    uv_timer_stop(&ws->ping);
    ws__arm(&ws->deadline, ws__on_deadline, WS_LINGER_MS, 0);
    ws__pump(ws);
}

/* Drops the connection now; on_close follows from the TCP close callback. */
static void ws__close_tcp(struct ws *ws)
{
    if (!ws->finished)
        ws__finish(ws, 0, 0, "closed");
    ws->state = WS_DONE;
    ws->reconnecting = false;
    uv_timer_stop(&ws->deadline);
    uv_timer_stop(&ws->ping);
    if (ws->gai_pending)
        (void)uv_cancel((uv_req_t *)&ws->gai); /* too late is fine: ws__on_resolved copes */
    if (ws->in_recv)
        wslay_event_shutdown_read(ws->wslay);
    if (!ws->tcp_closing) {
        ws->tcp_closing = true;
        uv_close((uv_handle_t *)&ws->tcp, ws__on_tcp_close);
    }
}

static void ws__destroy(struct ws *ws)
{
    if (ws->wslay != NULL)
        wslay_event_context_free(ws->wslay);
    ossl->SSL_free(ws->ssl);
    ossl->SSL_CTX_free(ws->ssl_ctx);
    if (ws->ai != NULL)
        uv_freeaddrinfo(ws->ai);
    buf_free(ws->head);
    buf_free(ws->msg);
    ws_url_free(&ws->url);
    explicit_bzero(ws, sizeof(*ws));
    free(ws);
}

static void ws__maybe_destroy(struct ws *ws)
{
    if (ws->freed && ws->handles == 0 && !ws->gai_pending)
        ws__destroy(ws);
}

static void ws__on_timer_close(uv_handle_t *h)
{
    struct ws *ws = h->data;

    ws->handles--;
    ws__maybe_destroy(ws);
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

static void ws__connect_next(struct ws *ws);

static void ws__on_tcp_close(uv_handle_t *h)
{
    struct ws *ws = h->data;
    int r;

    ws->handles--;
    if (ws->reconnecting && ws->state == WS_CONNECTING) {
        ws->reconnecting = false;
        if ((r = uv_tcp_init(ws->loop, &ws->tcp)) == 0) {
            ws->tcp.data = ws;
            ws->handles++;
            ws->tcp_closing = false;
            ws__connect_next(ws);
            return;
        }
        ws__finish(ws, 0, 0, "socket: %s", uv_strerror(r));
    }
    /* tcp_closing stays true: the handle is closed for good, nothing closes it again. */
    ws->state = WS_DONE;
    uv_timer_stop(&ws->deadline);
    uv_timer_stop(&ws->ping);
    if (!ws->close_reported && !ws->freed) {
        ws->close_reported = true;
        if (ws->proto_error)
            ws__complete_proto_reason(ws);
        ws->cb.on_close(ws, ws->http_status, ws->close_code, ws->reason, ws->data);
    }
    ws__maybe_destroy(ws);
}

/* ---- connecting ------------------------------------------------------------------------------ */

static void ws__connect_failed(struct ws *ws, int err)
{
    ws->connect_err = err;
    if (ws->ai_next == NULL) {
        ws__finish(ws, 0, 0, "cannot connect to %s port %s: %s", ws->url.host, ws->url.port,
                   uv_strerror(err));
        ws__close_tcp(ws);
        return;
    }
    /* A socket whose connect failed cannot be reused: close it, and try the next address
     * from its close callback. */
    ws->reconnecting = true;
    ws->tcp_closing = true;
    uv_close((uv_handle_t *)&ws->tcp, ws__on_tcp_close);
}

static void ws__on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);
static void ws__on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);
static void ws__tls_handshake(struct ws *ws);
static void ws__send_request(struct ws *ws);

static void ws__on_connect(uv_connect_t *req, int status)
{
    struct ws *ws = req->data;
    int r;

    if (status == UV_ECANCELED || ws->state != WS_CONNECTING || ws->reconnecting)
        return;
    if (status < 0) {
        ws__connect_failed(ws, status);
        return;
    }
    uv_freeaddrinfo(ws->ai);
    ws->ai = ws->ai_next = NULL;
    /* Pongs and close frames are small: they must not wait for Nagle. */
    if ((r = uv_tcp_nodelay(&ws->tcp, 1)) != 0 ||
        (r = uv_tcp_keepalive(&ws->tcp, 1, WS_KEEPALIVE_S)) != 0 ||
        (r = uv_read_start((uv_stream_t *)&ws->tcp, ws__on_alloc, ws__on_read)) != 0) {
        ws__finish(ws, 0, 0, "socket: %s", uv_strerror(r));
        ws__close_tcp(ws);
        return;
    }
    if (ws->url.tls) {
        ws->state = WS_TLS_HANDSHAKE;
        ws__tls_handshake(ws);
    } else {
        ws__send_request(ws);
    }
}

static void ws__connect_next(struct ws *ws)
{
    struct addrinfo *ai = ws->ai_next;
    int r;

    if (ai == NULL) {
        ws__connect_failed(ws, ws->connect_err != 0 ? ws->connect_err : UV_EADDRNOTAVAIL);
        return;
    }
    ws->ai_next = ai->ai_next;
    ws->connect_req.data = ws;
    if ((r = uv_tcp_connect(&ws->connect_req, &ws->tcp, ai->ai_addr, ws__on_connect)) != 0)
        ws__connect_failed(ws, r);
}

static void ws__on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct ws *ws = req->data;

    ws->gai_pending = false;
    if (ws->state != WS_RESOLVING) {
        /* Aborted (or freed) meanwhile. */
        if (res != NULL)
            uv_freeaddrinfo(res);
        ws__maybe_destroy(ws);
        return;
    }
    if (status < 0) {
        ws__finish(ws, 0, 0, "cannot resolve %s: %s", ws->url.host, uv_strerror(status));
        ws__close_tcp(ws);
        return;
    }
    ws->ai = ws->ai_next = res;
    ws->state = WS_CONNECTING;
    ws__connect_next(ws);
}

static void ws__tls_handshake(struct ws *ws)
{
    int r, e;

    ossl->ERR_clear_error();
    r = ossl->SSL_do_handshake(ws->ssl);
    if (r == 1) {
        ws__send_request(ws); /* flushes the handshake's last flight first */
        return;
    }
    e = ossl->SSL_get_error(ws->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        if ((r = ws__out_flush(ws)) != 0) {
            ws__finish(ws, 0, 0, "write error: %s", err_str(r));
            ws__close_tcp(ws);
        }
        return;
    }
    ws__finish_tls(ws, "TLS handshake failed");
    ws__close_tcp(ws);
}

/* RFC 6455 4.1: the opening handshake. The request line carries the token; every copy
 * of it is wiped (target, req, the stage, the write request). */
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
    if (r == 0) {
        ws->state = WS_UPGRADING;
        r = ws__out_put_all(ws, buf_ptr(req), buf_len(req));
    }
    buf_free(req);
    buf_free(ws->url.target);
    ws->url.target = NULL;
    if (r != 0) {
        ws__finish(ws, 0, 0, "sending the upgrade request: %s", err_str(r));
        ws__close_tcp(ws);
    }
}

/* ---- the upgrade response -------------------------------------------------------------------- */

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
            ws__close_tcp(ws);
            return;
        }
    }
    ws__finish(ws, 0, 0, "%s", why);
    ws__close_tcp(ws);
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

static void ws__feed(struct ws *ws, const uint8_t *p, size_t n);

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
        ws__close_tcp(ws);
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
        ws__close_tcp(ws);
        return;
    }
    used = len - old; /* > 0: the old bytes held no CRLFCRLF */
    ws__open(ws, p + used, n - used);
}

/* ---- WebSocket frames (wslay) ---------------------------------------------------------------- */

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
        if (ws->out_inflight >= WS_WRITE_HIGH) {
            /* ws__on_write pumps again once writes drain. */
            wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
            return -1;
        }
        if ((r = ws__out_flush(ws)) != 0) {
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
    return ossl->RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
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

static int ws__wslay_init(struct ws *ws)
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
static void ws__feed(struct ws *ws, const uint8_t *p, size_t n)
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
        ws__close_tcp(ws);
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

/* ---- reading --------------------------------------------------------------------------------- */

static void ws__on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct ws *ws = h->data;

    (void)suggested;
    b->base = (char *)ws->rbuf;
    b->len = sizeof(ws->rbuf);
}

static void ws__on_eof(struct ws *ws, int err)
{
    switch (ws->state) {
    case WS_DRAINING:
        ws->eof = true;
        if (err != UV_EOF || ws->shutdown_done)
            ws__close_tcp(ws);
        return;
    case WS_DONE:
        return;
    case WS_UPGRADING:
        if (err == UV_EOF) {
            ws__fail_head(ws, "connection closed by peer during the upgrade");
            return;
        }
        break;
    case WS_OPEN:
    case WS_CLOSING:
        if (err == UV_EOF)
            ws__finish(ws, 0, 0, "connection closed by peer without a close frame");
        break;
    default:
        if (err == UV_EOF)
            ws__finish(ws, 0, 0, "connection closed by peer during the %s",
                       ws__state_name[ws->state]);
        break;
    }
    ws__finish(ws, 0, 0, "read error: %s", uv_strerror(err));
    ws__close_tcp(ws);
}

static void ws__on_plain(struct ws *ws, const uint8_t *p, size_t n)
{
    if (ws->state == WS_UPGRADING)
        ws__on_head(ws, p, n);
    else if (ws->state == WS_OPEN || ws->state == WS_CLOSING)
        ws__feed(ws, p, n);
}

static void ws__tls_read(struct ws *ws, const uint8_t *p, size_t n)
{
    int r, e;

    if (ossl->BIO_write(ws->rbio, p, (int)n) != (int)n) {
        ws__finish(ws, 0, 0, "out of memory");
        ws__close_tcp(ws);
        return;
    }
    if (ws->state == WS_TLS_HANDSHAKE)
        ws__tls_handshake(ws);
    while (ws->state == WS_UPGRADING || ws->state == WS_OPEN || ws->state == WS_CLOSING) {
        ossl->ERR_clear_error();
        r = ossl->SSL_read(ws->ssl, ws->pbuf, sizeof(ws->pbuf));
        if (r > 0) {
            ws__on_plain(ws, ws->pbuf, (size_t)r);
            explicit_bzero(ws->pbuf, (size_t)r);
            continue;
        }
        e = ossl->SSL_get_error(ws->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            break;
        if (e == SSL_ERROR_ZERO_RETURN) {
            /* close_notify: the peer is done sending, like a FIN. */
            ws__on_eof(ws, UV_EOF);
            return;
        }
        ws__finish_tls(ws, "TLS error");
        ws__close_tcp(ws);
        return;
    }
    /* SSL_read may have produced records of its own (a KeyUpdate answer). */
    if (ws->state != WS_DONE && (r = ws__out_flush(ws)) != 0) {
        ws__finish(ws, 0, 0, "write error: %s", err_str(r));
        ws__close_tcp(ws);
    }
}

static void ws__on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct ws *ws = s->data;

    (void)b;
    if (nread == 0)
        return;
    if (nread < 0) {
        ws__on_eof(ws, (int)nread);
        return;
    }
    /* Draining: the outcome is known; only the peer's FIN matters now. */
    if (ws->state != WS_DRAINING && ws->state != WS_DONE) {
        if (ws->ssl != NULL)
            ws__tls_read(ws, ws->rbuf, (size_t)nread);
        else
            ws__on_plain(ws, ws->rbuf, (size_t)nread);
    }
    /* ws is still allocated here, even if freed from a callback: see ws_free(). */
    explicit_bzero(ws->rbuf, (size_t)nread);
}

/* ---- timers ---------------------------------------------------------------------------------- */

static void ws__on_deadline(uv_timer_t *t)
{
    struct ws *ws = t->data;
    char span[32];
    uint64_t idle;

    switch (ws->state) {
    case WS_RESOLVING:
    case WS_CONNECTING:
    case WS_TLS_HANDSHAKE:
    case WS_UPGRADING:
        ws__fmt_ms(span, sizeof(span), ws->connect_timeout_ms);
        ws__finish(ws, 0, 0, "timed out after %s (%s)", span, ws__state_name[ws->state]);
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
        return;
    }
    ws__close_tcp(ws);
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
        ws__close_tcp(ws);
        return;
    }
    ws__pump(ws);
}

/* ---- public ---------------------------------------------------------------------------------- */

int ws_connect(uv_loop_t *loop, const struct ws_options *opts, const struct ws_callbacks *cb,
               void *data, struct ws **out)
{
    struct ws *ws = NULL;
    struct addrinfo hints;
    int r;

    *out = NULL;
    if (loop == NULL || opts == NULL || opts->url == NULL || cb == NULL || cb->on_close == NULL)
        return ERR_INVALID;
    /* The handshake key needs libcrypto even without TLS. */
    if (ossl == NULL && (ossl = openssl_api_get()) == NULL)
        return ERR_UNSUPPORTED;
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
    if ((r = ws_url_parse(opts->url, &ws->url)) != 0 || (r = ws__make_key(ws)) != 0)
        goto out;
    if (ws->url.tls && (r = ws__tls_init(ws, opts->cacert)) != 0)
        goto out;
    if ((r = ws__wslay_init(ws)) != 0)
        goto out;
    if ((ws->head = buf_new(WS_HEAD_MAX, 0)) == NULL) {
        r = ERR_NOMEM;
        goto out;
    }

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_NUMERICSERV | (ws->url.host_is_ip ? AI_NUMERICHOST : 0);
    ws->gai.data = ws;
    if ((r = uv_getaddrinfo(loop, &ws->gai, ws__on_resolved, ws->url.host, ws->url.port,
                            &hints)) != 0)
        goto out;
    ws->gai_pending = true;
    ws->state = WS_RESOLVING;

    /*
     * From here the loop holds part of ws. XXX: libuv 1.44 cannot fail these inits (no
     * socket is created for AF_UNSPEC); should it ever, the handles already made are
     * closed and the memory goes in their close callbacks.
     */
    if ((r = uv_timer_init(loop, &ws->deadline)) != 0)
        goto out_async;
    ws->deadline.data = ws;
    ws->handles++;
    if ((r = uv_timer_init(loop, &ws->ping)) != 0)
        goto out_async;
    ws->ping.data = ws;
    ws->handles++;
    if ((r = uv_tcp_init(loop, &ws->tcp)) != 0)
        goto out_async;
    ws->tcp.data = ws;
    ws->handles++;
    ws->shutdown_req.data = ws;
    ws__arm(&ws->deadline, ws__on_deadline, ws->connect_timeout_ms, 0);
    *out = ws;
    return 0;

out_async:
    ws->freed = true;
    ws->state = WS_DONE;
    (void)uv_cancel((uv_req_t *)&ws->gai);
    if (ws->handles >= 1)
        uv_close((uv_handle_t *)&ws->deadline, ws__on_timer_close);
    if (ws->handles >= 2)
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
    return wslay_event_get_queued_msg_length(ws->wslay) + ws->stage_len + ws->out_inflight;
}

void ws_close(struct ws *ws, uint16_t code, const char *reason)
{
    size_t rlen = 0;
    int r;

    if (ws == NULL || ws->freed)
        return;
    switch (ws->state) {
    case WS_RESOLVING:
    case WS_CONNECTING:
    case WS_TLS_HANDSHAKE:
    case WS_UPGRADING:
        ws__finish(ws, 0, 0, "closed by caller before the connection was open");
        ws__close_tcp(ws);
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
        ws__close_tcp(ws);
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
    if (ws->state != WS_DONE) {
        ws__finish(ws, 0, 0, "freed by caller");
        ws__close_tcp(ws);
    }
    /* Set after the close: ws__close_tcp must still see in_recv and stop wslay. */
    ws->freed = true;
    uv_close((uv_handle_t *)&ws->deadline, ws__on_timer_close);
    uv_close((uv_handle_t *)&ws->ping, ws__on_timer_close);
}
