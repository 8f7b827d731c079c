/*
 * netconn_connect.c - building a connection: resolve, TCP connect to each address in
 * turn, the proxy's CONNECT, then the TLS handshake (netconn_tls.c), all under one
 * timeout. See netconn.h.
 *
 * The connect's handles are the connection's own (netconn_internal.h): a failed
 * address's socket is closed and the same uv_tcp_t opened again for the next one once
 * libuv has closed it; the timer counts down the connect and later serves the stream.
 * Every failure ends in connect__fail: the connection released, then the owner's
 * callback with one line.
 */
#include <assert.h>
#include <netdb.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "http1.h"
#include "netconn_internal.h"
#include "netproxy.h"

static struct net_conn *conn_of(struct net_connect *k)
{
    return (struct net_conn *)(void *)((char *)k - offsetof(struct net_conn, connect));
}

/* "h2,http/1.1" -> "\x02h2\x08http/1.1" (RFC 7301 3.1). */
static int alpn_wire(const char *list, unsigned char *dst, size_t *len)
{
    size_t n = 0;

    *len = 0;
    for (const char *p = list; *p != '\0';) {
        size_t item = strcspn(p, ",");

        if (item == 0 || item > 255 || n + 1 + item > NET_ALPN_MAX)
            return ERR_INVALID;
        for (size_t i = 0; i < item; i++)
            if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f)
                return ERR_INVALID;
        dst[n++] = (unsigned char)item;
        memcpy(dst + n, p, item);
        n += item;
        p += item;
        if (*p == ',' && *++p == '\0')
            return ERR_INVALID;
    }
    *len = n;
    return 0;
}

/* A host goes into the CONNECT line and Host header: no byte that could end or split
 * either (a control byte, a space), none that is not ASCII. */
static bool host_ok(const char *host)
{
    if (host[0] == '\0')
        return false;
    for (const unsigned char *p = (const unsigned char *)host; *p != '\0'; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return false;
    return true;
}

/* A header value (RFC 9110 5.5), without obs-text: no CR, LF or other control byte. */
static bool value_ok(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++)
        if ((*p < 0x20 && *p != '\t') || *p >= 0x7f)
            return false;
    return true;
}

/* getaddrinfo's own words for the usual failures ("Name or service not known"). */
static const char *gai_text(int status)
{
    switch (status) {
    case UV_EAI_NONAME:
        return gai_strerror(EAI_NONAME);
    case UV_EAI_AGAIN:
        return gai_strerror(EAI_AGAIN);
    case UV_EAI_FAIL:
        return gai_strerror(EAI_FAIL);
    case UV_EAI_NODATA:
        return gai_strerror(EAI_NODATA);
    case UV_EAI_ADDRFAMILY:
        return gai_strerror(EAI_ADDRFAMILY);
    default:
        return uv_strerror(status);
    }
}

void connect__fail(struct net_conn *c, const char *fmt, ...)
{
    char msg[NET_ERROR_MAX];
    net_connect_cb cb = c->connect.cb;
    void *ud = c->connect.ud;
    va_list ap;

    if (c->connect.finished)
        return;
    c->connect.finished = true;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    conn__release(c);
    cb(NULL, msg, ud);
}

void connect__done(struct net_conn *c)
{
    c->connect.finished = true;
    c->state = NET_OPEN;
    uv_timer_stop(&c->timer);
    conn__read_stop_uv(c); /* reading starts with net_conn_set_events */
    buf_free(c->connect.head);
    c->connect.head = NULL;
    c->connect.cb(c, NULL, c->connect.ud);
}

void connect__on_timeout(struct net_conn *c)
{
    static const char *const phase[] = {
        [NET_RESOLVING] = "resolving",
        [NET_CONNECTING] = "TCP connect",
        [NET_PROXY] = "proxy CONNECT",
        [NET_HANDSHAKE] = "TLS handshake",
        [NET_OPEN] = "",
    };

    connect__fail(c, "connect to %s timed out after %llu ms (%s)", c->hostport,
                  (unsigned long long)c->connect.timeout_ms, phase[c->state]);
}

/* The host and port the socket goes to: the proxy's, or the target's. */
static const char *dial_host(const struct net_conn *c)
{
    return c->proxy != NULL ? c->proxy->host : c->host;
}

static uint16_t dial_port(const struct net_conn *c)
{
    return c->proxy != NULL ? c->proxy->port : c->port;
}

static void connect__note_error(struct net_conn *c, int status)
{
    /* The address tried is named when the host is a name (it may have several). */
    bool literal = strcmp(c->connect.addr, dial_host(c)) == 0;

    snprintf(c->connect.last_error, sizeof(c->connect.last_error), "connect to %s%s%s%s%s: %s",
             c->proxy != NULL ? "proxy " : "", c->connect.dial, literal ? "" : " (",
             literal ? "" : c->connect.addr, literal ? "" : ")", uv_strerror(status));
}

static void connect__try_next(struct net_conn *c);

static void connect__on_attempt_closed(uv_handle_t *h)
{
    struct net_conn *c = h->data;

    if (conn__unref(c) || c->released)
        return;
    connect__try_next(c);
}

static void connect__close_attempt(struct net_conn *c)
{
    c->tcp_open = false;
    c->uv_reading = false;
    uv_close((uv_handle_t *)&c->tcp, connect__on_attempt_closed);
}

/* The CONNECT request (RFC 9110 9.3.6): authority-form target and the same Host. */
static int connect__send_connect(struct net_conn *c)
{
    struct buf *b = conn__outbuf(c);
    int r;

    if (b == NULL)
        return ERR_NOMEM;
    if ((r = buf_putf(b, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n", c->hostport, c->hostport)) != 0 ||
        (c->proxy->authorization != NULL &&
         (r = buf_putf(b, "Proxy-Authorization: %s\r\n", c->proxy->authorization)) != 0) ||
        (r = buf_put_str(b, "\r\n")) != 0)
        return r;
    conn__flush(c);
    return 0;
}

static void connect__on_connected(uv_connect_t *req, int status)
{
    struct net_conn *c = req->data;

    if (c->released || status == UV_ECANCELED)
        return;
    if (status < 0) {
        connect__note_error(c, status);
        connect__close_attempt(c);
        return;
    }
    uv_freeaddrinfo(c->connect.ai);
    c->connect.ai = c->connect.ai_next = NULL;
    if (c->proxy == NULL) {
        connect__tunnel_up(c, NULL, 0);
        return;
    }
    c->state = NET_PROXY;
    if (connect__send_connect(c) != 0) {
        connect__fail(c, "proxy CONNECT to %s failed: out of memory", c->hostport);
        return;
    }
    if (!c->released && conn__read_uv(c) != 0)
        connect__fail(c, "proxy CONNECT to %s failed: cannot read", c->hostport);
}

static void connect__try_next(struct net_conn *c)
{
    struct addrinfo *ai;
    int r;

    while ((ai = c->connect.ai_next) != NULL) {
        c->connect.ai_next = ai->ai_next;
        if (ai->ai_family == AF_INET6)
            r = uv_ip6_name((const struct sockaddr_in6 *)ai->ai_addr, c->connect.addr,
                            sizeof(c->connect.addr));
        else
            r = uv_ip4_name((const struct sockaddr_in *)ai->ai_addr, c->connect.addr,
                            sizeof(c->connect.addr));
        if (r != 0)
            snprintf(c->connect.addr, sizeof(c->connect.addr), "?");
        if ((r = uv_tcp_init(c->loop, &c->tcp)) != 0) {
            connect__note_error(c, r);
            continue;
        }
        c->tcp.data = c;
        c->tcp_open = true;
        c->refs++;
        (void)uv_tcp_nodelay(&c->tcp, 1); /* applied when the socket is made */
        c->creq.data = c;
        if ((r = uv_tcp_connect(&c->creq, &c->tcp, ai->ai_addr, connect__on_connected)) == 0)
            return;
        connect__note_error(c, r);
        connect__close_attempt(c); /* the next address once it is closed */
        return;
    }
    if (c->connect.last_error[0] == '\0')
        connect__fail(c, "cannot resolve %s: no address", dial_host(c));
    else
        connect__fail(c, "%s", c->connect.last_error);
}

static void connect__on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct net_conn *c = req->data;

    c->gai_active = false;
    if (c->released) {
        if (res != NULL)
            uv_freeaddrinfo(res);
        conn__unref(c);
        return;
    }
    conn__unref(c); /* not the last: the timer is open */
    if (status < 0) {
        connect__fail(c, "cannot resolve %s: %s", dial_host(c), gai_text(status));
        return;
    }
    c->connect.ai = c->connect.ai_next = res;
    c->state = NET_CONNECTING;
    connect__try_next(c);
}

void connect__tunnel_up(struct net_conn *c, const uint8_t *rest, size_t len)
{
    int r;

    if (!c->use_tls) {
        if (len > 0 &&
            ((c->held = buf_new(SIZE_MAX, BUF_WIPE)) == NULL || buf_put(c->held, rest, len) != 0)) {
            connect__fail(c, "connect to %s: out of memory", c->hostport);
            return;
        }
        connect__done(c);
        return;
    }
    c->state = NET_HANDSHAKE;
    if ((r = tls__start(c)) != 0) {
        connect__fail(c, "TLS setup for %s failed: %s", c->hostport, err_str(r));
        return;
    }
    if (len > 0)
        tls__on_data(c, rest, len); /* steps the handshake */
    else
        tls__handshake(c);
}

/* Printable ASCII only, at most 100 bytes: the proxy's words go into our error line. */
static void clean_copy(char *dst, size_t size, const uint8_t *s, size_t len)
{
    size_t n = len < 100 ? len : 100;

    if (n >= size)
        n = size - 1;
    for (size_t i = 0; i < n; i++)
        dst[i] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
    dst[n] = '\0';
}

/* Fails the connect for the proxy's answer p[0..n), by what the parser said (r). */
static void connect__proxy_refused(struct net_conn *c, const uint8_t *p, size_t n, int r)
{
    const uint8_t *eol;
    char line[128];

    if (r == ERR_INCOMPLETE || r == ERR_HTTP_HEAD_TOO_LARGE) {
        connect__fail(c, "proxy CONNECT to %s failed: the proxy's answer head is too large",
                      c->hostport);
    } else if (r != 0) {
        connect__fail(c, "proxy CONNECT to %s failed: the proxy's answer is malformed",
                      c->hostport);
    } else {
        /* The parser checked "HTTP/1.x NNN": the status and reason start at 9. */
        eol = memmem(p, n, "\r\n", 2);
        clean_copy(line, sizeof(line), p + 9, (size_t)(eol - p) - 9);
        connect__fail(c, "proxy CONNECT to %s refused: %s", c->hostport, line);
    }
}

/* The proxy's answer, as it comes. */
static void connect__on_proxy_data(struct net_conn *c, const uint8_t *data, size_t len)
{
    struct net_connect *k = &c->connect;
    struct http1_response *resp;
    struct buf *head;
    const uint8_t *p;
    size_t n, from, head_len = 0;
    int r, status = 0;

    if ((k->head == NULL && (k->head = buf_new(NET_PROXY_HEAD_MAX + NET_READ_SIZE, 0)) == NULL) ||
        buf_put(k->head, data, len) != 0) {
        connect__fail(c, "proxy CONNECT to %s failed: out of memory", c->hostport);
        return;
    }
    p = buf_ptr(k->head);
    n = buf_len(k->head);
    /* Anything but an HTTP answer (a TLS server, an SSH banner) is refused at once. */
    if (memcmp(p, "HTTP/", n < 5 ? n : 5) != 0) {
        connect__fail(c, "proxy CONNECT to %s failed: the proxy's answer is not HTTP", c->hostport);
        return;
    }
    /* The head is parsed once its end is in, and only the new bytes (and 3 before them)
     * are searched for it: a proxy dribbling its answer costs linear time. */
    from = k->scanned > 3 ? k->scanned - 3 : 0;
    k->scanned = n;
    if (memmem(p + from, n - from, "\r\n\r\n", 4) == NULL) {
        if (n >= NET_PROXY_HEAD_MAX)
            connect__proxy_refused(c, p, n, ERR_HTTP_HEAD_TOO_LARGE);
        return;
    }
    if ((resp = malloc(sizeof(*resp))) == NULL) { /* 16 KiB of header views */
        connect__fail(c, "proxy CONNECT to %s failed: out of memory", c->hostport);
        return;
    }
    /* At most NET_PROXY_HEAD_MAX bytes: a head that ends later comes back incomplete.
     * The answer's framing is not looked at: a 2xx to CONNECT has no body (RFC 9110
     * 9.3.6), and anything else ends the attempt. */
    r = http1_parse_response((const char *)p, n < NET_PROXY_HEAD_MAX ? n : NET_PROXY_HEAD_MAX,
                             false, resp);
    if (r == 0) {
        status = resp->status;
        head_len = resp->head_len;
    }
    free(resp);
    if (r != 0 || status < 200 || status > 299) {
        connect__proxy_refused(c, p, n, r);
        return;
    }
    /* After a 2xx the connection is the tunnel: what came behind the head is the
     * server's. */
    head = k->head;
    k->head = NULL;
    connect__tunnel_up(c, p + head_len, n - head_len); /* copies what it keeps */
    buf_free(head);
}

void connect__on_data(struct net_conn *c, const uint8_t *data, size_t len)
{
    if (c->state == NET_PROXY)
        connect__on_proxy_data(c, data, len);
    else
        tls__on_data(c, data, len);
}

void connect__on_eof(struct net_conn *c, int status)
{
    const char *why = status == UV_EOF ? NULL : uv_strerror(status);

    if (c->state == NET_PROXY)
        connect__fail(c, "proxy CONNECT to %s failed: %s", c->hostport,
                      why != NULL ? why : "the proxy closed the connection before answering");
    else
        connect__fail(c, "TLS handshake with %s failed: %s", c->hostport,
                      why != NULL ? why : "connection closed during the handshake");
}

int net_connect_start(uv_loop_t *loop, struct net_tls_ctx *tls, const struct net_target *t,
                      uint64_t timeout_ms, net_connect_cb cb, void *ud, struct net_connect **out)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_protocol = IPPROTO_TCP,
    };
    struct net_conn *c = NULL;
    char port[8];
    size_t n;
    int r;

    *out = NULL;
    assert(loop != NULL && t != NULL && t->host != NULL && cb != NULL);
    if ((t->tls && tls == NULL) || !host_ok(t->host) ||
        (t->proxy != NULL && (!host_ok(t->proxy->host) || (t->proxy->authorization != NULL &&
                                                           !value_ok(t->proxy->authorization)))))
        return ERR_INVALID;
    if ((r = conn__new(loop, &c)) != 0)
        return r;
    c->use_tls = t->tls;
    c->port = t->port;
    c->connect.cb = cb;
    c->connect.ud = ud;
    c->connect.timeout_ms = timeout_ms;
    n = strlen(t->host) + sizeof("[]:65535");
    r = ERR_NOMEM;
    if ((c->host = strdup(t->host)) == NULL || (c->hostport = malloc(n)) == NULL)
        goto out;
    snprintf(c->hostport, n, strchr(t->host, ':') != NULL ? "[%s]:%u" : "%s:%u", t->host, t->port);
    if ((r = net_proxy_dup(t->proxy, &c->proxy)) != 0 ||
        (t->alpn != NULL && (r = alpn_wire(t->alpn, c->alpn_wire, &c->alpn_wire_len)) != 0))
        goto out;
    if (t->tls) {
        c->tls = tls;
        tls__ctx_ref(tls);
    }
    snprintf(port, sizeof(port), "%u", dial_port(c));
    snprintf(c->connect.dial, sizeof(c->connect.dial),
             strchr(dial_host(c), ':') != NULL ? "[%s]:%u" : "%s:%u", dial_host(c), dial_port(c));
    c->gai.data = c;
    if ((r = uv_getaddrinfo(loop, &c->gai, connect__on_resolved, dial_host(c), port, &hints)) != 0)
        goto out;
    c->gai_active = true;
    c->refs++;
    if (timeout_ms > 0)
        conn__start_timer(c, timeout_ms);
    *out = &c->connect;
    return 0;
out:
    c->connect.finished = true;
    conn__release(c); /* freed from the loop, with the timer's close */
    return r;
}

void net_connect_cancel(struct net_connect *k)
{
    struct net_conn *c;

    if (k == NULL)
        return;
    c = conn_of(k);
    if (c->connect.finished)
        return;
    c->connect.finished = true;
    conn__release(c);
}
