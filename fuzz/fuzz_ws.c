/*
 * fuzz_ws.c - WebSocket frames from the platform, through src/runner/ws_frame.c.
 *
 * The WebSocket client has no pure frame parser: ws_frame.c configures wslay
 * (client context, no message buffering, max message, no RSV bits) and
 * reassembles messages in its callbacks. So this harness drives the real code
 * through the module's internal interface (ws_internal.h, as fuzz_h2 uses
 * h2conn_internal.h): ws_connect() to a listening socket of the harness
 * (ws://127.0.0.1, a real net_conn), which answers the upgrade with a good 101;
 * the fuzzer's bytes are then handed to ws__feed() in the pieces it chose, as
 * the connection's on_read does while the WebSocket is open or closing. No
 * change to src/ is needed.
 *
 * Input: [m0][m1][c][s][s piece lengths][stream]. max_message is
 * 1 + ((m0 & 0x7f) << 8 | m1) bytes, small so the size checks are reached;
 * ws_close(1000) is called after piece c (never when c is 0xff); the stream is
 * what the "server" sends, fed in the pieces given, then the rest.
 *
 * A reference decoder written here from RFC 6455 5 says which messages must
 * be delivered: every complete text or binary message before the first frame
 * that is masked, has an RSV bit, a reserved opcode, a control frame over 125
 * bytes or fragmented, a bad 16/64-bit length, a continuation out of place, a
 * message over max_message (a control frame over it too: wslay's rule), invalid
 * UTF-8 in a text message, or a close frame; none after that. Properties: ws.c
 * delivers exactly those messages, in order, byte for byte and with the right
 * type, none after ws_close(); everything the client writes back (pongs, the
 * close frame) is masked, with no RSV bit and a known opcode.
 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "ws.h"
#include "ws_internal.h"

struct expected {
    size_t end; /* stream offset just past the message's last byte */
    size_t off, len;
    bool binary;
};

struct harness {
    const uint8_t *payload; /* expected message bytes, concatenated */
    const struct expected *exp;
    size_t nexp, got;
    bool close_called;
    size_t fed;
};

/* Incremental UTF-8 check (Unicode 3.9 table 3-7): need bytes still to come, and the
 * range of the next one. */
struct utf8 {
    int need;
    uint8_t lo, hi;
};

static bool utf8_byte(struct utf8 *u, uint8_t b)
{
    if (u->need > 0) {
        if (b < u->lo || b > u->hi)
            return false;
        u->need--;
        u->lo = 0x80;
        u->hi = 0xBF;
        return true;
    }
    u->lo = 0x80;
    u->hi = 0xBF;
    if (b < 0x80)
        return true;
    if (b >= 0xC2 && b <= 0xDF)
        u->need = 1;
    else if (b >= 0xE0 && b <= 0xEF)
        u->need = 2;
    else if (b >= 0xF0 && b <= 0xF4)
        u->need = 3;
    else
        return false;
    if (b == 0xE0)
        u->lo = 0xA0;
    else if (b == 0xED)
        u->hi = 0x9F;
    else if (b == 0xF0)
        u->lo = 0x90;
    else if (b == 0xF4)
        u->hi = 0x8F;
    return true;
}

/* The payload length of the frame header at f[0..avail) (avail >= 2): the 7-bit length,
 * or the 16- or 64-bit big-endian one after it (RFC 6455 5.2), with *ext the count of
 * those extra length bytes. False when they are not all within avail. */
static bool frame_len(const uint8_t *f, size_t avail, uint64_t *len, size_t *ext)
{
    unsigned len7 = f[1] & 0x7f;

    *ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    if (avail < 2 + *ext)
        return false;
    *len = *ext == 0 ? len7 : 0;
    for (size_t i = 0; i < *ext; i++)
        *len = *len << 8 | f[2 + i];
    return true;
}

/* Fills exp (room for n / 2 + 1) and payload (room for n); returns the message count. */
static size_t reference(const uint8_t *s, size_t n, size_t max_message, struct expected *exp,
                        uint8_t *payload)
{
    size_t pos = 0, count = 0, used = 0, msg_start = 0, msg_len = 0;
    bool in_msg = false, binary = false;
    struct utf8 u = {0, 0x80, 0xBF};

    while (n - pos >= 2) {
        unsigned fin = s[pos] >> 7, rsv = (s[pos] >> 4) & 7, op = s[pos] & 0xf;
        unsigned masked = s[pos + 1] >> 7, len7 = s[pos + 1] & 0x7f;
        uint64_t len;
        size_t hdr = 2, ext;
        bool control = (op & 8) != 0;

        if (control && (len7 > 125 || !fin))
            break;
        if (!frame_len(s + pos, n - pos, &len, &ext))
            break;
        /* Not in the fewest bytes, or 64 bits with the top one set: refused. */
        if (ext > 0 && (len7 == 126 ? len < 126 : (len < 65536 || (len >> 63) != 0)))
            break;
        hdr += ext;
        if (masked || rsv != 0)
            break;
        if (op != 0 && op != 1 && op != 2 && op != 8 && op != 9 && op != 10)
            break;
        if ((op == 0 && !in_msg) || ((op == 1 || op == 2) && in_msg))
            break;
        if (len > max_message - (op == 0 ? msg_len : 0))
            break;
        if (n - pos - hdr < len)
            break; /* incomplete */
        if (op == 8)
            break; /* close: nothing after it */
        pos += hdr;
        if (control) {
            pos += (size_t)len;
            continue;
        }
        if (op != 0) {
            in_msg = true;
            binary = op == 2;
            msg_start = used;
            msg_len = 0;
            u.need = 0;
        }
        if (!binary) {
            size_t i;

            for (i = 0; i < len && utf8_byte(&u, s[pos + i]); i++)
                ;
            if (i < len || (fin && u.need > 0))
                break;
        }
        memcpy(payload + used, s + pos, (size_t)len);
        used += (size_t)len;
        msg_len += (size_t)len;
        pos += (size_t)len;
        if (fin) {
            exp[count].end = pos;
            exp[count].off = msg_start;
            exp[count].len = msg_len;
            exp[count].binary = binary;
            count++;
            in_msg = false;
        }
    }
    return count;
}

static void h_on_message(struct ws *ws, uint8_t *msg, size_t len, bool binary, void *data)
{
    struct harness *h = data;
    const struct expected *e;

    (void)ws;
    FUZZ_CHECK(!h->close_called, "a message delivered after ws_close()");
    FUZZ_CHECK(h->got < h->nexp, "message %zu delivered; the reference has %zu", h->got, h->nexp);
    e = &h->exp[h->got];
    if (len != e->len || (len > 0 && memcmp(msg, h->payload + e->off, len) != 0))
        fuzz_dump("delivered", msg, len);
    FUZZ_CHECK(len == e->len && (len == 0 || memcmp(msg, h->payload + e->off, len) == 0),
               "message %zu: %zu bytes, want %zu (or different bytes)", h->got, len, e->len);
    FUZZ_CHECK(binary == e->binary, "message %zu: binary %d", h->got, binary);
    FUZZ_CHECK(e->end <= h->fed, "message %zu delivered before its last byte came", h->got);
    h->got++;
    memset(msg, 0, len); /* as the runner does: the callee may modify it */
}

static void h_on_close(struct ws *ws, int http_status, int close_code, const char *reason,
                       void *data)
{
    (void)ws;
    (void)http_status;
    (void)close_code;
    (void)reason;
    (void)data;
}

/* Reads what the client wrote so far into out (growing it); non-blocking. */
static void drain_peer(int fd, uint8_t **out, size_t *len, size_t *cap)
{
    for (;;) {
        ssize_t r;

        if (*cap - *len < 4096) {
            uint8_t *grown = realloc(*out, *cap * 2 + 4096);

            FUZZ_CHECK(grown != NULL, "out of memory");
            *out = grown;
            *cap = *cap * 2 + 4096;
        }
        r = read(fd, *out + *len, *cap - *len);
        if (r <= 0)
            return;
        *len += (size_t)r;
    }
}

/* Every complete frame the client sent: masked, no RSV, a known opcode. */
static void check_client_frames(const uint8_t *s, size_t n)
{
    size_t pos = 0;

    while (n - pos >= 2) {
        unsigned op = s[pos] & 0xf;
        uint64_t len;
        size_t hdr = 2 + 4, ext;

        FUZZ_CHECK(s[pos + 1] & 0x80, "the client sent an unmasked frame");
        FUZZ_CHECK((s[pos] & 0x70) == 0, "the client set an RSV bit");
        FUZZ_CHECK(op == 0 || op == 1 || op == 2 || op == 8 || op == 9 || op == 10,
                   "the client sent opcode %u", op);
        if (!frame_len(s + pos, n - pos, &len, &ext))
            return;
        hdr += ext;
        if (n - pos < hdr || n - pos - hdr < len)
            return;
        pos += hdr + (size_t)len;
    }
}

/* A listening socket on 127.0.0.1 (blocking: accept waits for ws_connect's connect). */
static int listen_local(uint16_t *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    FUZZ_CHECK(fd >= 0, "socket");
    FUZZ_CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 16) == 0 &&
                   getsockname(fd, (struct sockaddr *)&a, &alen) == 0,
               "listen on 127.0.0.1");
    *port = ntohs(a.sin_port);
    return fd;
}

/* The server's side of the upgrade: reads the request head from fd (non-blocking, the
 * loop running so the client's write goes out), answers 101, runs the loop until ws has
 * read it. */
static void upgrade(uv_loop_t *loop, struct ws *ws, int fd)
{
    char head[WS_URL_MAX + 1024], resp[256];
    size_t got = 0;
    int n;

    while (got < 4 || memcmp(head + got - 4, "\r\n\r\n", 4) != 0) {
        ssize_t r;

        FUZZ_CHECK(got < sizeof(head) && ws->state == WS_UPGRADING, "no upgrade request");
        (void)uv_run(loop, UV_RUN_NOWAIT);
        if ((r = read(fd, head + got, 1)) > 0)
            got++;
        else
            FUZZ_CHECK(r < 0 && errno == EAGAIN, "the client ended the connection");
    }
    n = snprintf(resp, sizeof(resp),
                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                 ws->accept);
    FUZZ_CHECK(n > 0 && (size_t)n < sizeof(resp) && write(fd, resp, (size_t)n) == n, "101");
    while (ws->state == WS_UPGRADING)
        (void)uv_run(loop, UV_RUN_ONCE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uv_loop_t loop;
    static bool inited;
    static int lfd;
    static char url[64];
    static const struct ws_callbacks cbs = {.on_message = h_on_message, .on_close = h_on_close};
    struct ws_options opts = {.url = url};
    struct harness h;
    struct expected *exp;
    uint8_t *payload, *client = NULL;
    size_t max_message, close_after, npieces, at = 4, n, off = 0, clen = 0, ccap = 0, nexp;
    const uint8_t *stream;
    struct ws *ws;
    struct linger lin = {1, 0};
    uint16_t port;
    int fd;

    if (!inited) {
        signal(SIGPIPE, SIG_IGN);
        FUZZ_CHECK(uv_loop_init(&loop) == 0, "uv_loop_init");
        lfd = listen_local(&port);
        snprintf(url, sizeof(url), "ws://127.0.0.1:%u/fuzz", port);
        inited = true;
    }
    if (size < 4)
        return 0;
    max_message = 1 + ((size_t)(data[0] & 0x7f) << 8 | data[1]);
    close_after = data[2];
    npieces = data[3] % 16;
    if (npieces > size - at)
        npieces = size - at;
    stream = data + at + npieces;
    n = size - at - npieces;

    exp = fuzz_malloc((n / 2 + 1) * sizeof(*exp));
    payload = fuzz_malloc(n);
    nexp = reference(stream, n, max_message, exp, payload);
    memset(&h, 0, sizeof(h));
    h.payload = payload;
    h.exp = exp;
    h.nexp = nexp;

    /* A ws as ws_connect() leaves it once the upgrade succeeded, over a real connection
     * to our listening socket. */
    opts.max_message = max_message;
    FUZZ_CHECK(ws_connect(&loop, &opts, &cbs, &h, &ws) == 0, "ws_connect");
    while (ws->state == WS_CONNECTING)
        (void)uv_run(&loop, UV_RUN_ONCE);
    FUZZ_CHECK(ws->state == WS_UPGRADING, "not connected: %s", ws->reason);
    fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    FUZZ_CHECK(fd >= 0, "accept");
    upgrade(&loop, ws, fd);
    FUZZ_CHECK(ws->state == WS_OPEN, "not open: %s", ws->reason);

    for (size_t k = 0; k <= npieces && off < n; k++) {
        size_t len = k < npieces ? data[at + k] : n - off;
        uint8_t *piece;

        if (len > n - off)
            len = n - off;
        /* ws.c's on_read feeds only these states: once draining, only the peer's FIN
         * matters. */
        if (ws->state != WS_OPEN && ws->state != WS_CLOSING)
            break;
        piece = fuzz_dup(stream + off, len);
        h.fed = off + len;
        if (len > 0)
            ws__feed(ws, piece, len);
        free(piece);
        off += len;
        (void)uv_run(&loop, UV_RUN_NOWAIT);
        drain_peer(fd, &client, &clen, &ccap);
        if (k == close_after && ws->state == WS_OPEN) {
            size_t want = 0;

            for (size_t i = 0; i < nexp; i++)
                want += exp[i].end <= off;
            FUZZ_CHECK(h.got == want, "%zu messages delivered before ws_close(), want %zu", h.got,
                       want);
            ws_close(ws, 1000, "fuzz");
            h.close_called = true;
        }
    }
    if (!h.close_called && (ws->state == WS_OPEN || ws->state == WS_CLOSING)) {
        size_t want = 0;

        for (size_t i = 0; i < nexp; i++)
            want += exp[i].end <= off;
        FUZZ_CHECK(h.got == want, "%zu messages delivered, the reference has %zu", h.got, want);
    } else if (!h.close_called) {
        FUZZ_CHECK(h.got == nexp, "%zu messages delivered before the end, the reference has %zu",
                   h.got, nexp);
    }

    ws_free(ws);
    (void)uv_run(&loop, UV_RUN_DEFAULT);
    drain_peer(fd, &client, &clen, &ccap);
    check_client_frames(client, clen);
    /* A reset, not a FIN: no TIME_WAIT left behind by thousands of runs. */
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
    close(fd);
    free(client);
    free(exp);
    free(payload);
    return 0;
}
