/*
 * ws_probe.c - drives src/runner/ws.c from the command line, for the e2e tests.
 *
 *   ws_probe URL [--cacert F] [--send-size N] [--count K] [--read-timeout MS]
 *                [--ping MS] [--connect-timeout MS] [--max-message N]
 *                [--close-after MS] [--free-after MS] [--free-on-message 1]
 *
 * Connects, sends K text messages of N bytes (byte j of message i is
 * 'a' + (i + j) % 26), and prints one line per event on stdout:
 *
 *   open
 *   message <len> <sha256 hex>
 *   close <http_status> <close_code> <reason>
 *
 * At most WINDOW messages are outstanding: each message received lets one more go.
 * Once K messages came back (K > 0) it closes with 1000; with K = 0 it waits for the
 * peer or a timeout. --close-after calls ws_close(1000) that long after open;
 * --free-after calls ws_free() that long after ws_connect (whatever the state), and
 * --free-on-message calls it from inside the first on_message; both print "freed" and
 * expect no callback afterwards. Exits 0 after close (or free), 1 if the loop ended
 * without either, 2 on a usage or ws_connect error. A test helper, not the product.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <uv.h>

#include "err.h"
#include "ws.h"

#define WINDOW 4

struct probe {
    struct ws *ws;
    uv_timer_t timer; /* --close-after / --free-after; closed by probe_done() */
    uint64_t close_after;
    uint64_t free_after;
    bool free_on_message;
    uint64_t size;
    uint64_t count;
    uint64_t sent;
    uint64_t received;
    bool closed;
    bool freed;
    int failed;
};

/* The ws is gone (closed or freed): release our own handle so the loop can end. */
static void probe_done(struct probe *p)
{
    if (!uv_is_closing((uv_handle_t *)&p->timer))
        uv_close((uv_handle_t *)&p->timer, NULL);
}

static void probe_free(struct probe *p)
{
    ws_free(p->ws);
    p->ws = NULL;
    p->freed = true;
    printf("freed\n");
    probe_done(p);
}

static void on_timer(uv_timer_t *t)
{
    struct probe *p = t->data;

    if (p->ws == NULL)
        return;
    if (p->free_after != UINT64_MAX)
        probe_free(p);
    else
        ws_close(p->ws, 1000, "close-after");
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    unsigned long long v;

    if (s == NULL || *s < '0' || *s > '9')
        return ERR_INVALID;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return ERR_INVALID;
    *out = v;
    return 0;
}

static void send_next(struct probe *p)
{
    char *text;
    uint64_t j;
    int r;

    while (p->sent < p->count && p->sent - p->received < WINDOW) {
        if ((text = malloc(p->size > 0 ? p->size : 1)) == NULL) {
            p->failed = ERR_NOMEM;
            return;
        }
        for (j = 0; j < p->size; j++)
            text[j] = (char)('a' + (p->sent + j) % 26);
        r = ws_send_text(p->ws, text, p->size);
        free(text);
        if (r != 0) {
            printf("send-error %d %s\n", r, err_str(r));
            p->failed = r;
            return;
        }
        p->sent++;
    }
}

static void on_open(struct ws *ws, void *data)
{
    struct probe *p = data;

    printf("open\n");
    if (p->close_after != UINT64_MAX)
        (void)uv_timer_start(&p->timer, on_timer, p->close_after, 0);
    send_next(p);
}

static void on_message(struct ws *ws, uint8_t *msg, size_t len, bool binary, void *data)
{
    struct probe *p = data;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0, i;
    char hex[2 * EVP_MAX_MD_SIZE + 1];

    if (EVP_Digest(msg, len, md, &mdlen, EVP_sha256(), NULL) != 1)
        mdlen = 0;
    for (i = 0; i < mdlen; i++)
        (void)snprintf(hex + 2 * i, 3, "%02x", md[i]);
    hex[2 * mdlen] = '\0';
    /* The runner wipes what it received; so do we, to exercise a writable msg. */
    explicit_bzero(msg, len);
    printf("message %zu %s%s\n", len, hex, binary ? " binary" : "");
    p->received++;
    if (p->free_on_message) {
        probe_free(p); /* from inside a callback of this ws: must be safe */
        return;
    }
    if (p->count > 0 && p->received == p->count)
        ws_close(ws, 1000, "done");
    else
        send_next(p);
}

static void on_close(struct ws *ws, int http_status, int close_code, const char *reason, void *data)
{
    struct probe *p = data;

    printf("close %d %d %s\n", http_status, close_code, reason);
    p->closed = true;
    ws_free(ws);
    p->ws = NULL;
    probe_done(p);
}

static int usage(void)
{
    fprintf(stderr, "usage: ws_probe URL [--cacert F] [--send-size N] [--count K] "
                    "[--read-timeout MS] [--ping MS] [--connect-timeout MS] [--max-message N] "
                    "[--close-after MS] [--free-after MS] [--free-on-message 1]\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct probe p;
    struct ws_options opts;
    const struct ws_callbacks cb = {on_open, on_message, on_close};
    uv_loop_t loop;
    uint64_t v;
    int i, r;

    memset(&p, 0, sizeof(p));
    memset(&opts, 0, sizeof(opts));
    p.close_after = p.free_after = UINT64_MAX;
    if (argc < 2)
        return usage();
    opts.url = argv[1];
    for (i = 2; i < argc; i += 2) {
        const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

        if (val == NULL)
            return usage();
        if (strcmp(opt, "--cacert") == 0) {
            opts.cacert = val;
            continue;
        }
        if (parse_u64(val, UINT64_C(1) << 40, &v) != 0)
            return usage();
        if (strcmp(opt, "--send-size") == 0)
            p.size = v;
        else if (strcmp(opt, "--count") == 0)
            p.count = v;
        else if (strcmp(opt, "--read-timeout") == 0)
            opts.read_timeout_ms = v;
        else if (strcmp(opt, "--ping") == 0)
            opts.ping_interval_ms = v;
        else if (strcmp(opt, "--connect-timeout") == 0)
            opts.connect_timeout_ms = v;
        else if (strcmp(opt, "--max-message") == 0)
            opts.max_message = (size_t)v;
        else if (strcmp(opt, "--close-after") == 0)
            p.close_after = v;
        else if (strcmp(opt, "--free-after") == 0)
            p.free_after = v;
        else if (strcmp(opt, "--free-on-message") == 0)
            p.free_on_message = v != 0;
        else
            return usage();
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* libuv writes with write(2): a peer that went away must not kill us. */
    signal(SIGPIPE, SIG_IGN);

    if ((r = uv_loop_init(&loop)) != 0) {
        fprintf(stderr, "ws_probe: uv_loop_init: %s\n", uv_strerror(r));
        return 2;
    }
    if ((r = uv_timer_init(&loop, &p.timer)) != 0) {
        fprintf(stderr, "ws_probe: uv_timer_init: %s\n", uv_strerror(r));
        return 2;
    }
    p.timer.data = &p;
    r = ws_connect(&loop, &opts, &cb, &p, &p.ws);
    if (r != 0) {
        printf("error %d %s\n", r, err_str(r));
        probe_done(&p);
    } else if (p.free_after != UINT64_MAX) {
        (void)uv_timer_start(&p.timer, on_timer, p.free_after, 0);
    }
    (void)uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0)
        fprintf(stderr, "ws_probe: loop still has handles\n");
    if (r != 0)
        return 2;
    return p.closed || p.freed ? 0 : 1;
}
