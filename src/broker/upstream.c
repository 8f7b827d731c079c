/*
 * upstream.c - libcurl multi on the libuv loop. See upstream.h.
 *
 * The glue follows curl's docs/examples/multi-uv.c: one uv_poll_t per socket,
 * CURLMOPT_TIMERFUNCTION drives one uv_timer_t, and every curl_multi_socket_action()
 * is followed by draining curl_multi_info_read(). Unlike the example, every result is
 * checked, and a socket's uv_poll_t lives as long as the socket (libcurl opens and
 * closes its connections through our callbacks), not as long as libcurl's interest in
 * it: see "Sockets" below for why.
 *
 * Re-entrancy: callbacks into the broker (on_head, on_body, read_body) run inside
 * libcurl. The broker may cancel a request from there; libcurl forbids removing
 * a handle from inside its own callbacks, so such a cancel only marks the
 * request and the callback returns an abort code; the handle is removed once
 * libcurl has returned (upstream__reap_cancelled).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "curl_api.h"
#include "err.h"
#include "log.h"
#include "upstream.h"
#include "upstream_tls.h"

#define UPSTREAM_MAX_HEAD_BYTES (256 * 1024) /* all response header lines together */
#define UPSTREAM_MAX_HEADERS 500
#define UPSTREAM_BUFFER_SIZE (256 * 1024)    /* libcurl's receive buffer per transfer */

struct upstream {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    struct upstream_options opts;
    char *cacert;
    LIST_HEAD(, upstream_req) reqs;  /* live requests */
    size_t active;
    int in_curl;                     /* > 0 while libcurl is running our callbacks */
    /* The views handed to on_head: here, not on the stack, where zero-initialising 500 of
     * them per response cost 16k instructions (bench: callgrind). */
    struct http1_header head_views[UPSTREAM_MAX_HEADERS];
    bool closing;
    bool read_ahead;                 /* OpenSSL read-ahead on upstream TLS (upstream_tls.h) */
    uint64_t tls_records_in;         /* TLS records OpenSSL has parsed, all connections */
    unsigned drain_pass;             /* numbers upstream__drain_tls() runs */
    uv_idle_t drain_more;            /* runs it again next loop turn when it ran out of budget */
    uv_prepare_t apply_polls;        /* hands socket_cb's changes to libuv before it waits */
    uv_check_t polls_reopen;         /* after the wait: changes are deferred again */
    bool polls_applied;              /* apply_polls ran this turn: apply changes at once */
    LIST_HEAD(, sock_ctx) socks;     /* libcurl's open sockets ("Sockets") */
    int handles_closed;              /* of the four handles above, by upstream_close() */
};

struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    struct upstream *u;
    LIST_ENTRY(sock_ctx) link;       /* on u->socks */
    CURL *easy;                      /* a transfer on it (socket_cb's last), NULL once gone */
    void *ssl;                       /* the connection's OpenSSL SSL, once libcurl made it */
    int want_events;                 /* UV_READABLE/UV_WRITABLE libcurl last asked for */
    int polled_events;               /* what the poll handle watches now */
    bool opened_here;                /* by opensocket_cb: closesocket_cb tells its end */
    unsigned drained_in_pass;        /* drain_pass in which a redrive parsed no record */
};

struct upstream_req {
    struct upstream *u;
    LIST_ENTRY(upstream_req) link;   /* on u->reqs */
    CURL *easy;
    struct curl_slist *headers;
    const struct upstream_req_ops *ops;
    void *ud;
    uv_timer_t timer;                /* response-head timeout, then stall timeout */
    uint64_t head_timeout_ms, stall_timeout_ms;
    uint64_t start_ms, head_ms;
    struct buf *head;                /* header lines of the response being received */
    size_t nheaders;
    int status;
    bool head_done;
    bool send_paused, recv_paused;
    bool cancelled;                  /* cancel requested from inside a libcurl callback */
    bool removed;                    /* easy handle no longer in the multi */
    char errbuf[CURL_ERROR_SIZE];
};

/* Set with the first multi handle; every call below happens after that. */
static const struct curl_api *libcurl;

static void upstream__check_info(struct upstream *u);
static void req__destroy(struct upstream_req *r);
static void upstream__drain_tls(struct upstream *u);

/* ---- socket and timer glue ---- */

/* One call into libcurl for socket fd (or CURL_SOCKET_TIMEOUT) with the CURL_CSELECT_*
 * flags; a request cancelled from its callbacks meanwhile is reaped afterwards. */
static void upstream__socket_action(struct upstream *u, curl_socket_t fd, int flags)
{
    int running;

    u->in_curl++;
    libcurl->multi_socket_action(u->multi, fd, flags, &running);
    u->in_curl--;
}

static void on_poll(uv_poll_t *poll, int status, int events)
{
    struct sock_ctx *ctx = poll->data;
    struct upstream *u = ctx->u;
    int flags = 0;

    if (ctx->want_events == 0) {
        /* libcurl let go of the socket (a pooled connection, a paused transfer) and it
         * spoke: stop watching until libcurl asks again (see "Sockets"). */
        uv_poll_stop(&ctx->poll);
        ctx->polled_events = 0;
        return;
    }
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    upstream__socket_action(u, ctx->fd, flags);
    upstream__drain_tls(u);
    upstream__check_info(u);
}

static void on_timer(uv_timer_t *t)
{
    struct upstream *u = t->data;

    upstream__socket_action(u, CURL_SOCKET_TIMEOUT, 0);
    upstream__drain_tls(u);
    upstream__check_info(u);
}

/*
 * Read-ahead (upstream_tls.h): records OpenSSL has read ahead sit in its buffer, not in
 * the socket, and libcurl 7.88 would wait for the socket. So after every call into
 * libcurl, each socket libcurl wants to read whose TLS holds unread bytes is reported
 * readable again, for as long as that makes OpenSSL parse records. A redrive that parses
 * none (the transfer is paused: the child is not reading) leaves the socket alone until
 * libcurl is next entered for it: from the poll, or from the timer that curl_easy_pause()
 * sets when upstream_req_resume() unpauses (it marks the socket readable itself).
 */
#define UPSTREAM_DRAIN_BUDGET 64 /* redrives per run (64 records = 1 MiB); then next turn */

/* Asks libcurl for the socket's SSL. During the connection's first handshake libcurl 7.88
 * cannot tell it yet, so this is tried again until it can. */
static void sock__find_ssl(struct sock_ctx *c)
{
    struct curl_tlssessioninfo *tls = NULL;

    if (!c->u->read_ahead || c->ssl != NULL || c->easy == NULL)
        return;
    if (libcurl->easy_getinfo(c->easy, CURLINFO_TLS_SSL_PTR, &tls) == CURLE_OK && tls != NULL &&
        tls->backend == CURLSSLBACKEND_OPENSSL)
        c->ssl = tls->internals;
}

static void on_drain_more(uv_idle_t *h)
{
    struct upstream *u = h->data;

    uv_idle_stop(h);
    upstream__drain_tls(u);
    upstream__check_info(u);
}

static void upstream__drain_tls(struct upstream *u)
{
    unsigned budget = UPSTREAM_DRAIN_BUDGET, pass;
    struct sock_ctx *c = LIST_FIRST(&u->socks);

    if (!u->read_ahead || u->multi == NULL)
        return;
    pass = ++u->drain_pass;
    while (c != NULL) {
        uint64_t before = u->tls_records_in;

        sock__find_ssl(c);
        if (c->drained_in_pass == pass || !(c->want_events & UV_READABLE) || c->ssl == NULL ||
            !upstream_tls_has_unread(c->ssl)) {
            c = LIST_NEXT(c, link);
            continue;
        }
        if (budget-- == 0) {
            uv_idle_start(&u->drain_more, on_drain_more);
            return;
        }
        upstream__socket_action(u, c->fd, CURL_CSELECT_IN);
        if (u->tls_records_in == before)
            c->drained_in_pass = pass; /* c may be unlinked now; it is freed next turn */
        c = LIST_FIRST(&u->socks);     /* libcurl may have added or removed sockets */
    }
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct upstream *u = userp;

    if (timeout_ms < 0) {
        uv_timer_stop(&u->timer);
        return 0;
    }
    /* libuv never runs a timer from inside uv_timer_start, so 0 already means "on the next
     * loop turn" and libcurl is not re-entered from its own callback. (multi-uv.c turns 0
     * into 1 ms; that costs every request a millisecond: measured by bench W1.) */
    if (uv_timer_start(&u->timer, on_timer, (uint64_t)timeout_ms, 0) != 0)
        return -1;
    return 0;
}

/*
 * Sockets. Every uv_poll_start() costs two system calls, whatever it changes: libuv takes
 * the fd out of epoll and puts it back when the loop next waits; a new uv_poll_t costs two
 * more (libuv checks the fd can be polled) and closing one another. libcurl's interest in
 * a socket comes and goes far more often than the socket: it lets go of a pooled HTTP/1.1
 * connection after every response and takes it back for the next request, of a download's
 * connection whenever the child falls behind (the transfer pauses), and it asks for write
 * interest while it sends requests on an HTTP/2 connection and drops it at once. Tying the
 * uv_poll_t to libcurl's interest cost 2 system calls per request over HTTP/2 and 7 over
 * HTTP/1.1 (bench W2). So:
 *  - the connections libcurl opens go through opensocket_cb and closesocket_cb, and their
 *    sock_ctx lives from one to the other, whatever libcurl's interest;
 *  - when libcurl lets go of such a socket, it stays watched as it was: an idle socket is
 *    silent, and one that speaks meanwhile is stopped then (on_poll); taken back with the
 *    same interest, nothing changes in epoll;
 *  - socket_cb notes the interest, and the net change of a loop turn goes to libuv in the
 *    prepare phase, just before the loop waits, when libuv would apply it anyway. A change
 *    made later in that phase (another prepare callback calling into libcurl) is applied
 *    at once, as it would miss this turn's wait.
 * A socket libcurl did not open through us (the threaded resolver's wake-up pair) is
 * watched exactly while libcurl asks, as before: we would not know when it is closed.
 */
static void sock_ctx_close_cb(uv_handle_t *h)
{
    free(h->data);
}

static struct sock_ctx *sock__new(struct upstream *u, curl_socket_t fd)
{
    struct sock_ctx *c;

    if ((c = calloc(1, sizeof(*c))) == NULL)
        return NULL;
    c->fd = fd;
    c->u = u;
    if (uv_poll_init_socket(u->loop, &c->poll, fd) != 0) {
        free(c);
        return NULL;
    }
    c->poll.data = c;
    LIST_INSERT_HEAD(&u->socks, c, link);
    return c;
}

/* Unlinks c and lets go of its fd (uv_close stops the poll); c is freed next turn. */
static void sock__close(struct sock_ctx *c)
{
    LIST_REMOVE(c, link);
    uv_close((uv_handle_t *)&c->poll, sock_ctx_close_cb);
}

static struct sock_ctx *sock__find(struct upstream *u, curl_socket_t fd)
{
    struct sock_ctx *c;

    LIST_FOREACH(c, &u->socks, link) {
        if (c->fd == fd)
            return c;
    }
    return NULL;
}

static void sock__apply_poll(struct sock_ctx *c)
{
    if (c->want_events == 0 || c->want_events == c->polled_events)
        return; /* no interest: stopped lazily, by on_poll */
    if (uv_poll_start(&c->poll, c->want_events, on_poll) != 0) {
        /* Only a bug gets here (the fd watched twice); libcurl's timeouts end the transfers
         * on the socket. */
        log_warn("upstream: cannot watch socket %d", (int)c->fd);
        return;
    }
    c->polled_events = c->want_events;
}

static void on_polls_reopen(uv_check_t *h)
{
    struct upstream *u = h->data;

    uv_check_stop(h);
    u->polls_applied = false;
}

static void on_apply_polls(uv_prepare_t *h)
{
    struct upstream *u = h->data;
    struct sock_ctx *c;

    uv_prepare_stop(h);
    LIST_FOREACH(c, &u->socks, link)
        sock__apply_poll(c);
    u->polls_applied = true;
    uv_check_start(&u->polls_reopen, on_polls_reopen);
}

static curl_socket_t opensocket_cb(void *userp, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct upstream *u = userp;
    struct sock_ctx *c;
    int fd;

    (void)purpose; /* only connections: the protocols are http and https */
    if ((fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol)) < 0)
        return CURL_SOCKET_BAD;
    if ((c = sock__new(u, fd)) == NULL) {
        close(fd);
        return CURL_SOCKET_BAD;
    }
    c->opened_here = true;
    return fd;
}

static int closesocket_cb(void *userp, curl_socket_t fd)
{
    struct sock_ctx *c = sock__find(userp, fd);

    /* libuv must let go of the fd before it is closed: a new socket may get its number. */
    if (c != NULL)
        sock__close(c);
    return close(fd);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int action, void *userp, void *socketp)
{
    struct upstream *u = userp;
    struct sock_ctx *ctx = socketp;
    int events = 0;

    if (ctx == NULL && (ctx = sock__find(u, fd)) == NULL) {
        if (action == CURL_POLL_REMOVE)
            return 0;
        if ((ctx = sock__new(u, fd)) == NULL)
            return -1;
    }
    if (action == CURL_POLL_REMOVE) {
        libcurl->multi_assign(u->multi, fd, NULL);
        ctx->want_events = 0;
        if (!ctx->opened_here)
            sock__close(ctx);
        return 0;
    }
    if (socketp == NULL)
        libcurl->multi_assign(u->multi, fd, ctx);
    ctx->easy = easy;
    sock__find_ssl(ctx);
    if (action != CURL_POLL_OUT)
        events |= UV_READABLE;
    if (action != CURL_POLL_IN)
        events |= UV_WRITABLE;
    ctx->want_events = events;
    if (u->polls_applied)
        sock__apply_poll(ctx);
    else if (events != ctx->polled_events)
        uv_prepare_start(&u->apply_polls, on_apply_polls);
    return 0;
}

/* ---- the multi handle ---- */

int upstream_new(uv_loop_t *loop, const struct upstream_options *opts, struct upstream **out)
{
    struct upstream *u;
    int r;

    *out = NULL;
    if ((u = calloc(1, sizeof(*u))) == NULL)
        return ERR_NOMEM;
    u->loop = loop;
    u->opts = *opts;
    if (opts->cacert != NULL && (u->cacert = strdup(opts->cacert)) == NULL) {
        free(u);
        return ERR_NOMEM;
    }
    u->opts.cacert = u->cacert;
    /* Last: once the handles exist, u can only be freed from their close callbacks. No init
     * can fail on a live loop (libuv only fills the struct in). */
    if ((r = uv_timer_init(loop, &u->timer)) != 0 ||
        (r = uv_idle_init(loop, &u->drain_more)) != 0 ||
        (r = uv_prepare_init(loop, &u->apply_polls)) != 0 ||
        (r = uv_check_init(loop, &u->polls_reopen)) != 0) {
        free(u->cacert);
        free(u);
        return r;
    }
    u->timer.data = u;
    u->drain_more.data = u;
    u->apply_polls.data = u;
    u->polls_reopen.data = u;
    *out = u;
    return 0;
}

/* The multi handle, made when the first request needs it (see curl_api.h for why). */
static int upstream__ensure_multi(struct upstream *u)
{
    CURLM *multi;

    if (u->multi != NULL)
        return 0;
    if (libcurl == NULL && (libcurl = curl_api_get()) == NULL)
        return ERR_UPSTREAM;
    if ((multi = libcurl->multi_init()) == NULL)
        return ERR_NOMEM;
    if (libcurl->multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, socket_cb) != CURLM_OK ||
        libcurl->multi_setopt(multi, CURLMOPT_SOCKETDATA, u) != CURLM_OK ||
        libcurl->multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb) != CURLM_OK ||
        libcurl->multi_setopt(multi, CURLMOPT_TIMERDATA, u) != CURLM_OK ||
        libcurl->multi_setopt(multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX) != CURLM_OK ||
        libcurl->multi_setopt(multi, CURLMOPT_MAXCONNECTS, 256L) != CURLM_OK) {
        libcurl->multi_cleanup(multi);
        return ERR_UPSTREAM;
    }
    u->multi = multi;
    u->read_ahead =
        upstream_tls_read_ahead_usable(libcurl->version_info(CURLVERSION_NOW)->ssl_version);
    return 0;
}

/* The close callback of u's four loop handles: u goes with the last. */
static void upstream_handle_close_cb(uv_handle_t *h)
{
    struct upstream *u = h->data;

    if (++u->handles_closed < 4)
        return;
    free(u->cacert);
    free(u);
}

void upstream_close(struct upstream *u)
{
    if (u == NULL)
        return;
    u->closing = true;
    while (!LIST_EMPTY(&u->reqs))
        upstream_req_cancel(LIST_FIRST(&u->reqs));
    /* Closes the pooled connections, through closesocket_cb. */
    if (u->multi != NULL)
        libcurl->multi_cleanup(u->multi);
    u->multi = NULL;
    while (!LIST_EMPTY(&u->socks))
        sock__close(LIST_FIRST(&u->socks)); /* none should be left; the loop must not wait on one */
    uv_timer_stop(&u->timer);
    uv_close((uv_handle_t *)&u->timer, upstream_handle_close_cb);
    uv_close((uv_handle_t *)&u->drain_more, upstream_handle_close_cb);
    uv_close((uv_handle_t *)&u->apply_polls, upstream_handle_close_cb);
    uv_close((uv_handle_t *)&u->polls_reopen, upstream_handle_close_cb);
}

size_t upstream_active(const struct upstream *u)
{
    return u->active;
}

/* ---- one request ---- */

static void req_timer_close_cb(uv_handle_t *h)
{
    struct upstream_req *r = h->data;

    buf_free(r->head);
    free(r);
}

/* Removes the easy handle and frees everything. No callbacks. */
static void req__destroy(struct upstream_req *r)
{
    struct upstream *u = r->u;
    struct sock_ctx *c;

    if (!r->removed && u->multi != NULL)
        libcurl->multi_remove_handle(u->multi, r->easy);
    r->removed = true;
    LIST_FOREACH(c, &u->socks, link) {
        if (c->easy == r->easy)
            c->easy = NULL;
    }
    libcurl->easy_cleanup(r->easy);
    r->easy = NULL;
    if (r->headers != NULL) {
        /* Header lines may carry the key (header or bearer injection). */
        for (struct curl_slist *l = r->headers; l != NULL; l = l->next)
            explicit_bzero(l->data, strlen(l->data));
        libcurl->slist_free_all(r->headers);
        r->headers = NULL;
    }
    LIST_REMOVE(r, link);
    u->active--;
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, req_timer_close_cb);
}

/* Removes requests that were cancelled while libcurl was running. */
static void upstream__reap_cancelled(struct upstream *u)
{
    struct upstream_req *r = LIST_FIRST(&u->reqs), *next;

    for (; r != NULL; r = next) {
        next = LIST_NEXT(r, link);
        if (r->cancelled)
            req__destroy(r);
    }
}

static void req__finish(struct upstream_req *r, int result, const char *detail)
{
    const struct upstream_req_ops *ops = r->ops;
    void *ud = r->ud;
    char text[CURL_ERROR_SIZE];

    /* Copy the detail first: it may point into r, which is gone after destroy. */
    snprintf(text, sizeof(text), "%s", detail != NULL ? detail : "");
    req__destroy(r);
    if (ops != NULL)
        ops->on_done(ud, result, text);
}

static void upstream__check_info(struct upstream *u)
{
    CURLMsg *msg;
    int left;

    if (u->in_curl > 0 || u->multi == NULL)
        return;
    upstream__reap_cancelled(u);
    while ((msg = libcurl->multi_info_read(u->multi, &left)) != NULL) {
        struct upstream_req *r = NULL;
        CURLcode res;
        int result = 0;
        const char *detail;

        if (msg->msg != CURLMSG_DONE)
            continue;
        res = msg->data.result;
        libcurl->easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        libcurl->multi_remove_handle(u->multi, msg->easy_handle);
        if (r == NULL)
            continue;
        r->removed = true;
        if (r->cancelled) {
            req__destroy(r);
            continue;
        }
        detail = r->errbuf[0] != '\0' ? r->errbuf : libcurl->easy_strerror(res);
        if (res != CURLE_OK)
            result = r->head_done ? UPSTREAM_ERR_TRANSFER : UPSTREAM_ERR_CONNECT;
        else if (!r->head_done)
            result = UPSTREAM_ERR_CONNECT;
        req__finish(r, result, detail);
    }
}

static void on_req_timer(uv_timer_t *t)
{
    struct upstream_req *r = t->data;

    if (r->cancelled)
        return;
    if (!r->head_done)
        req__finish(r, UPSTREAM_ERR_HEAD_TIMEOUT, "no response head in time");
    else
        req__finish(r, UPSTREAM_ERR_STALLED, "transfer stalled");
}

/* Restarts the current deadline: progress was made. */
static void req__touch(struct upstream_req *r)
{
    uint64_t ms = r->head_done ? r->stall_timeout_ms : r->head_timeout_ms;

    if (ms > 0)
        uv_timer_start(&r->timer, on_req_timer, ms, 0);
}

/* Parses the 3-digit status of "HTTP/x[.y] NNN ..."; -1 if it is not a status line. */
static int parse_status_line(const char *line, size_t len)
{
    size_t i = 5;

    if (len < 12 || memcmp(line, "HTTP/", 5) != 0)
        return -1;
    while (i < len && line[i] != ' ')
        i++;
    if (len - i < 4 || line[i] != ' ')
        return -1;
    i++;
    for (size_t k = 0; k < 3; k++) {
        if (line[i + k] < '0' || line[i + k] > '9')
            return -1;
    }
    return (line[i] - '0') * 100 + (line[i + 1] - '0') * 10 + (line[i + 2] - '0');
}

static void req__deliver_head(struct upstream_req *r)
{
    struct http1_header *hdrs = r->u->head_views;
    const char *p = (const char *)buf_ptr(r->head), *end = p + buf_len(r->head);
    size_t n = 0;

    /* The buffer holds "name: value\r\n" lines (status line dropped). */
    while (p < end && n < UPSTREAM_MAX_HEADERS) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *colon, *v, *ve;

        if (eol == NULL)
            break;
        ve = eol;
        if (ve > p && ve[-1] == '\r')
            ve--;
        colon = memchr(p, ':', (size_t)(ve - p));
        if (colon != NULL && colon > p) {
            v = colon + 1;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            hdrs[n].name.base = p;
            hdrs[n].name.len = (size_t)(colon - p);
            hdrs[n].value.base = v;
            hdrs[n].value.len = (size_t)(ve - v);
            n++;
        }
        p = eol + 1;
    }
    r->head_done = true;
    r->head_ms = uv_now(r->u->loop) - r->start_ms;
    req__touch(r);
    r->ops->on_head(r->ud, r->status, hdrs, n);
}

static size_t header_cb(char *data, size_t size, size_t nitems, void *userp)
{
    struct upstream_req *r = userp;
    size_t len = size * nitems;
    int status;

    if (r->cancelled)
        return 0;
    if (r->head_done)
        return len; /* trailers: not forwarded */
    if ((status = parse_status_line(data, len)) >= 0) {
        /* A new head: a 1xx before it is dropped. */
        r->status = status;
        buf_reset(r->head);
        r->nheaders = 0;
        return len;
    }
    if (len <= 2 && (len == 0 || data[0] == '\r' || data[0] == '\n')) {
        /* A 1xx head is not the response: it must not restart the deadline, or an
         * upstream sending 100 Continue forever would hold the request open. */
        if (r->status >= 200)
            req__deliver_head(r);
        return r->cancelled ? 0 : len;
    }
    if (++r->nheaders > UPSTREAM_MAX_HEADERS || buf_put(r->head, data, len) != 0) {
        snprintf(r->errbuf, sizeof(r->errbuf), "response head over the limit");
        return 0;
    }
    return len;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
    struct upstream_req *r = userp;
    size_t len = size * nmemb;

    if (r->cancelled || !r->head_done)
        return 0;
    if (r->ops->on_body(r->ud, (const uint8_t *)data, len) == UPSTREAM_PAUSE) {
        r->recv_paused = true;
        return CURL_WRITEFUNC_PAUSE;
    }
    if (r->cancelled)
        return 0;
    req__touch(r);
    return len;
}

static size_t read_cb(char *dst, size_t size, size_t nitems, void *userp)
{
    struct upstream_req *r = userp;
    ssize_t n;

    if (r->cancelled)
        return CURL_READFUNC_ABORT;
    n = r->ops->read_body(r->ud, (uint8_t *)dst, size * nitems);
    if (r->cancelled)
        return CURL_READFUNC_ABORT;
    if (n == UPSTREAM_PAUSE) {
        r->send_paused = true;
        return CURL_READFUNC_PAUSE;
    }
    if (n > 0)
        req__touch(r);
    return n < 0 ? CURL_READFUNC_ABORT : (size_t)n;
}

/*
 * A request body that may outlast the upstream's patience goes over HTTP/1.1. An API
 * answers a large or unwanted upload early (401, 413) and, over HTTP/2, resets the stream;
 * libcurl 7.88 is then still sending and fails the transfer as "Stream error in the HTTP/2
 * framing layer" before it hands over the answer it has received, so the child would get
 * a 502 for a 401 (e2e test_60). Over HTTP/1.1 libcurl stops sending and delivers the
 * answer. A body that fits HTTP/2's initial flow-control window (65,535 bytes) goes out
 * whole at once and stays on the multiplexed connection, which is nearly every API call.
 */
#define UPSTREAM_H2_BODY_MAX 65535

static bool upstream__body_wants_http1(const struct upstream_req_spec *spec)
{
    return spec->has_body && (spec->body_len < 0 || spec->body_len > UPSTREAM_H2_BODY_MAX);
}

/*
 * Which HTTP version a request may use. HTTP/2 only over TLS (ALPN): a plain http:// URL
 * is HTTP/1.1, as it would be with CURL_HTTP_VERSION_2TLS anyway, but said so, and so is a
 * request whose body wants HTTP/1.1 (above).
 *
 * Only a request that may be multiplexed waits for a connection that is still finding out
 * whether it can be (CURLOPT_PIPEWAIT): libcurl 7.88 learns that from ALPN at the end of
 * the TLS handshake and wakes the waiting requests then, so they share one HTTP/2
 * connection instead of each opening its own. Over HTTP/1.1 nobody must wait: libcurl
 * learns "no multiplexing" for a plain http:// origin only from the first response head,
 * and wakes the requests queued behind that connection only when its transfer ends; if
 * that transfer pauses (its child does not read), they would never be sent, whoever they
 * belong to. An HTTP/1.1 request with a busy connection takes a new one.
 */
static bool upstream__may_multiplex(const struct upstream_req_spec *spec)
{
    return strncasecmp(spec->url, "https://", 8) == 0 && !upstream__body_wants_http1(spec);
}

#define SETOPT(opt, val)                                                                   \
    do {                                                                                   \
        if (libcurl->easy_setopt(r->easy, (opt), (val)) != CURLE_OK)                           \
            goto fail;                                                                     \
    } while (0)

int upstream_req_start(struct upstream *u, const struct upstream_req_spec *spec,
                       const struct upstream_req_ops *ops, void *ud, struct upstream_req **out)
{
    struct upstream_req *r;
    int rc;

    *out = NULL;
    if (u->closing)
        return ERR_CLOSED;
    if ((rc = upstream__ensure_multi(u)) != 0)
        return rc;
    if ((r = calloc(1, sizeof(*r))) == NULL)
        return ERR_NOMEM;
    r->u = u;
    r->ops = ops;
    r->ud = ud;
    r->head_timeout_ms = spec->response_head_timeout_ms;
    r->stall_timeout_ms = spec->stall_timeout_ms;
    if ((r->head = buf_new(UPSTREAM_MAX_HEAD_BYTES, 0)) == NULL) {
        free(r);
        return ERR_NOMEM;
    }
    if ((rc = uv_timer_init(u->loop, &r->timer)) != 0) {
        buf_free(r->head);
        free(r);
        return rc;
    }
    r->timer.data = r;
    /* From here on r is on the list and req__destroy() undoes everything. */
    LIST_INSERT_HEAD(&u->reqs, r, link);
    u->active++;
    r->removed = true;
    if ((r->easy = libcurl->easy_init()) == NULL)
        goto fail;
    for (size_t i = 0; i < spec->nheaders; i++) {
        struct curl_slist *l = libcurl->slist_append(r->headers, spec->headers[i]);

        if (l == NULL)
            goto fail;
        r->headers = l;
    }
    SETOPT(CURLOPT_PRIVATE, r);
    SETOPT(CURLOPT_URL, spec->url);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(CURLOPT_PATH_AS_IS, 1L);
    SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
    if (upstream__may_multiplex(spec)) {
        SETOPT(CURLOPT_PIPEWAIT, 1L);
        SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    } else {
        SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    }
    /* No CURLOPT_ACCEPT_ENCODING: the request says "Accept-Encoding: identity"
     * (reqheaders.c) and libcurl decodes nothing. Decoding in libcurl 7.88 escapes the
     * backpressure: a paused transfer keeps all it inflated from one read in libcurl's
     * pause buffer (up to 64 MiB per transfer, then "Out of memory"), so a small gzip
     * body could hold the broker's memory hostage. A body the upstream encodes anyway is
     * passed to the child as it came, with its Content-Encoding (response.c).
     * XXX an incremental decoder of our own, paused with the child, comes with the
     * upstream client that replaces libcurl (issue 18). */
    SETOPT(CURLOPT_HTTP_CONTENT_DECODING, 0L);
    SETOPT(CURLOPT_BUFFERSIZE, (long)UPSTREAM_BUFFER_SIZE);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long)u->opts.connect_timeout_ms);
    SETOPT(CURLOPT_ERRORBUFFER, r->errbuf);
    SETOPT(CURLOPT_OPENSOCKETFUNCTION, opensocket_cb);
    SETOPT(CURLOPT_OPENSOCKETDATA, u);
    SETOPT(CURLOPT_CLOSESOCKETFUNCTION, closesocket_cb);
    SETOPT(CURLOPT_CLOSESOCKETDATA, u);
    SETOPT(CURLOPT_HEADERFUNCTION, header_cb);
    SETOPT(CURLOPT_HEADERDATA, r);
    SETOPT(CURLOPT_WRITEFUNCTION, write_cb);
    SETOPT(CURLOPT_WRITEDATA, r);
    SETOPT(CURLOPT_HTTPHEADER, r->headers);
    if (u->opts.cacert != NULL)
        SETOPT(CURLOPT_CAINFO, u->opts.cacert);
    if (u->read_ahead) {
        SETOPT(CURLOPT_SSL_CTX_FUNCTION, upstream_tls_ctx_cb);
        SETOPT(CURLOPT_SSL_CTX_DATA, &u->tls_records_in);
    }
    if (u->opts.verbose)
        SETOPT(CURLOPT_VERBOSE, 1L);
    if (spec->has_body) {
        SETOPT(CURLOPT_POST, 1L);
        SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)spec->body_len);
        SETOPT(CURLOPT_READFUNCTION, read_cb);
        SETOPT(CURLOPT_READDATA, r);
        SETOPT(CURLOPT_UPLOAD_BUFFERSIZE, (long)(64 * 1024));
        if (strcmp(spec->method, "POST") != 0)
            SETOPT(CURLOPT_CUSTOMREQUEST, spec->method);
    } else if (strcmp(spec->method, "GET") == 0) {
        SETOPT(CURLOPT_HTTPGET, 1L);
    } else if (strcmp(spec->method, "HEAD") == 0) {
        SETOPT(CURLOPT_NOBODY, 1L);
    } else {
        SETOPT(CURLOPT_CUSTOMREQUEST, spec->method);
    }
    r->start_ms = uv_now(u->loop);
    req__touch(r);
    if (libcurl->multi_add_handle(u->multi, r->easy) != CURLM_OK)
        goto fail;
    r->removed = false;
    *out = r;
    return 0;
fail:
    r->ops = NULL;
    req__destroy(r);
    return ERR_UPSTREAM;
}

void upstream_req_cancel(struct upstream_req *r)
{
    if (r == NULL || r->cancelled)
        return;
    r->ops = NULL;
    r->cancelled = true;
    if (r->u->in_curl == 0)
        req__destroy(r);
    /* else: reaped in upstream__check_info() once libcurl has returned */
}

void upstream_req_resume(struct upstream_req *r)
{
    struct upstream *u = r->u;

    if (r->cancelled || (!r->send_paused && !r->recv_paused))
        return;
    r->send_paused = false;
    r->recv_paused = false;
    /* Unpausing may deliver buffered data to write_cb at once. */
    u->in_curl++;
    libcurl->easy_pause(r->easy, CURLPAUSE_CONT);
    u->in_curl--;
    upstream__check_info(u);
}

uint64_t upstream_req_head_ms(const struct upstream_req *r)
{
    return r->head_ms;
}
