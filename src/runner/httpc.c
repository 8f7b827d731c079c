/*
 * httpc.c - libcurl's multi interface on the runner's loop. See httpc.h.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include "ascii.h"
#include "curl_api.h"
#include "err.h"
#include "httpc.h"

struct httpc_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct httpc *h;
    LIST_ENTRY(httpc_sock) link;
    bool opened_here; /* by opensocket_cb: closesocket_cb ends it */
};

struct httpc {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    LIST_HEAD(, httpc_sock) socks;
    LIST_HEAD(, httpc_xfer) xfers;
    unsigned open_handles; /* the timer and the socket polls not yet closed */
    bool closing;
};

struct httpc_xfer {
    struct httpc *h;       /* NULL once the client is closed */
    LIST_ENTRY(httpc_xfer) link;
    CURL *easy;
    const struct httpc_xfer_ops *ops;
    void *ud;
    bool in_multi;
    char errbuf[CURL_ERROR_SIZE];
};

/* Set with the first client; every call below happens after that. */
static const struct curl_api *libcurl;

const struct curl_api *httpc_curl(void)
{
    if (libcurl == NULL)
        libcurl = curl_api_get();
    return libcurl;
}

/* ---- handles and their memory ---- */

static void httpc__maybe_free(struct httpc *h)
{
    if (h->closing && h->open_handles == 0)
        free(h);
}

static void on_timer_closed(uv_handle_t *handle)
{
    struct httpc *h = handle->data;

    h->open_handles--;
    httpc__maybe_free(h);
}

static void on_sock_closed(uv_handle_t *handle)
{
    struct httpc_sock *c = handle->data;
    struct httpc *h = c->h;

    free(c);
    h->open_handles--;
    httpc__maybe_free(h);
}

static void sock__close(struct httpc_sock *c)
{
    LIST_REMOVE(c, link);
    uv_close((uv_handle_t *)&c->poll, on_sock_closed);
}

static struct httpc_sock *sock__new(struct httpc *h, curl_socket_t fd)
{
    struct httpc_sock *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    if (uv_poll_init_socket(h->loop, &c->poll, fd) != 0) {
        free(c);
        return NULL;
    }
    c->fd = fd;
    c->h = h;
    c->poll.data = c;
    h->open_handles++;
    LIST_INSERT_HEAD(&h->socks, c, link);
    return c;
}

static struct httpc_sock *sock__find(struct httpc *h, curl_socket_t fd)
{
    struct httpc_sock *c;

    LIST_FOREACH(c, &h->socks, link) {
        if (c->fd == fd)
            return c;
    }
    return NULL;
}

/* ---- driving libcurl ---- */

/* The finished transfers' outcomes, each from here: after libcurl has returned. */
static void httpc__check_info(struct httpc *h)
{
    CURLMsg *m;
    int left;

    while (!h->closing && (m = libcurl->multi_info_read(h->multi, &left)) != NULL) {
        struct httpc_xfer *x = NULL;

        if (m->msg != CURLMSG_DONE)
            continue;
        libcurl->easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (x == NULL || !x->in_multi)
            continue;
        CURLcode rc = m->data.result; /* m is gone once the handle is removed */

        libcurl->multi_remove_handle(h->multi, x->easy);
        x->in_multi = false;
        x->ops->on_done(x, rc, rc == CURLE_OK ? ""
                               : x->errbuf[0] != '\0' ? x->errbuf : libcurl->easy_strerror(rc),
                        x->ud);
    }
}

static void httpc__action(struct httpc *h, curl_socket_t fd, int flags)
{
    int running;

    if (h->closing)
        return;
    libcurl->multi_socket_action(h->multi, fd, flags, &running);
    httpc__check_info(h);
}

static void on_poll(uv_poll_t *poll, int status, int events)
{
    struct httpc_sock *c = poll->data;
    int flags = 0;

    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    httpc__action(c->h, c->fd, flags);
}

static void on_timer(uv_timer_t *t)
{
    httpc__action(t->data, CURL_SOCKET_TIMEOUT, 0);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct httpc *h = userp;

    (void)multi;
    if (timeout_ms < 0) {
        uv_timer_stop(&h->timer);
        return 0;
    }
    /* 0 means the next loop turn: libuv never runs a timer from inside uv_timer_start. */
    return uv_timer_start(&h->timer, on_timer, (uint64_t)timeout_ms, 0) == 0 ? 0 : -1;
}

static int socket_cb(CURL *easy, curl_socket_t fd, int action, void *userp, void *socketp)
{
    struct httpc *h = userp;
    struct httpc_sock *c = socketp != NULL ? socketp : sock__find(h, fd);
    int events = 0;

    (void)easy;
    if (action == CURL_POLL_REMOVE) {
        if (c != NULL) {
            libcurl->multi_assign(h->multi, fd, NULL);
            uv_poll_stop(&c->poll);
            if (!c->opened_here) /* the resolver's wake-up socket: libcurl closes it */
                sock__close(c);
        }
        return 0;
    }
    if (c == NULL && (c = sock__new(h, fd)) == NULL)
        return -1;
    if (socketp == NULL)
        libcurl->multi_assign(h->multi, fd, c);
    if (action != CURL_POLL_OUT)
        events |= UV_READABLE;
    if (action != CURL_POLL_IN)
        events |= UV_WRITABLE;
    return uv_poll_start(&c->poll, events, on_poll) == 0 ? 0 : -1;
}

/* Every connection comes here first, with the address it is about to be made to. */
static curl_socket_t opensocket_cb(void *userp, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct httpc_xfer *x = userp;
    struct httpc_sock *c;
    int fd;

    (void)purpose;
    if (x->h == NULL || (x->ops->may_connect != NULL && !x->ops->may_connect(x->ud, &a->addr)))
        return CURL_SOCKET_BAD;
    if ((fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol)) < 0)
        return CURL_SOCKET_BAD;
    if ((c = sock__new(x->h, fd)) == NULL) {
        close(fd);
        return CURL_SOCKET_BAD;
    }
    c->opened_here = true;
    return fd;
}

/* A connection may outlive the transfer that opened it (libcurl's pool): its client
 * closes it, so the client is what this is given. */
static int closesocket_cb(void *userp, curl_socket_t fd)
{
    struct httpc_sock *c = sock__find(userp, fd);

    /* libuv lets go of the fd before it is closed: a new socket may get its number. */
    if (c != NULL)
        sock__close(c);
    return close(fd);
}

static size_t header_cb(char *line, size_t size, size_t nitems, void *userp)
{
    struct httpc_xfer *x = userp;
    size_t n = size * nitems;

    if (x->ops->on_header == NULL || x->ops->on_header(x->ud, line, n))
        return n;
    return 0;
}

static size_t write_cb(char *data, size_t size, size_t nitems, void *userp)
{
    struct httpc_xfer *x = userp;
    size_t n = size * nitems;

    return x->ops->on_body(x->ud, data, n) ? n : 0;
}

/* ---- the client ---- */

int httpc_new(uv_loop_t *loop, struct httpc **out)
{
    struct httpc *h;

    *out = NULL;
    if (httpc_curl() == NULL)
        return ERR_UPSTREAM;
    if ((h = calloc(1, sizeof(*h))) == NULL)
        return ERR_NOMEM;
    h->loop = loop;
    LIST_INIT(&h->socks);
    LIST_INIT(&h->xfers);
    if ((h->multi = libcurl->multi_init()) == NULL) {
        free(h);
        return ERR_NOMEM;
    }
    if (libcurl->multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb) != CURLM_OK ||
        libcurl->multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h) != CURLM_OK ||
        libcurl->multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb) != CURLM_OK ||
        libcurl->multi_setopt(h->multi, CURLMOPT_TIMERDATA, h) != CURLM_OK) {
        libcurl->multi_cleanup(h->multi);
        free(h);
        return ERR_UPSTREAM;
    }
    uv_timer_init(loop, &h->timer); /* cannot fail on a live loop */
    h->timer.data = h;
    h->open_handles = 1;
    *out = h;
    return 0;
}

void httpc_close(struct httpc *h)
{
    struct httpc_xfer *x;

    if (h == NULL || h->closing)
        return;
    while ((x = LIST_FIRST(&h->xfers)) != NULL) {
        if (x->in_multi)
            libcurl->multi_remove_handle(h->multi, x->easy);
        x->in_multi = false;
        x->h = NULL;
        LIST_REMOVE(x, link);
    }
    libcurl->multi_cleanup(h->multi); /* closes the pooled connections, by closesocket_cb */
    h->multi = NULL;
    while (!LIST_EMPTY(&h->socks))
        sock__close(LIST_FIRST(&h->socks));
    uv_timer_stop(&h->timer);
    h->closing = true;
    uv_close((uv_handle_t *)&h->timer, on_timer_closed);
}

/* ---- transfers ---- */

#define SET(opt, val) (libcurl->easy_setopt(x->easy, opt, val) == CURLE_OK)

int httpc_xfer_new(struct httpc *h, const struct httpc_xfer_ops *ops, void *ud,
                   struct httpc_xfer **out, CURL **easy)
{
    struct httpc_xfer *x;

    *out = NULL;
    *easy = NULL;
    if ((x = calloc(1, sizeof(*x))) == NULL)
        return ERR_NOMEM;
    x->h = h;
    x->ops = ops;
    x->ud = ud;
    if ((x->easy = libcurl->easy_init()) == NULL) {
        free(x);
        return ERR_NOMEM;
    }
    if (!SET(CURLOPT_PRIVATE, x) || !SET(CURLOPT_NOSIGNAL, 1L) ||
        !SET(CURLOPT_ERRORBUFFER, x->errbuf) ||
        !SET(CURLOPT_OPENSOCKETFUNCTION, opensocket_cb) || !SET(CURLOPT_OPENSOCKETDATA, x) ||
        !SET(CURLOPT_CLOSESOCKETFUNCTION, closesocket_cb) || !SET(CURLOPT_CLOSESOCKETDATA, h) ||
        !SET(CURLOPT_HEADERFUNCTION, header_cb) || !SET(CURLOPT_HEADERDATA, x) ||
        !SET(CURLOPT_WRITEFUNCTION, write_cb) || !SET(CURLOPT_WRITEDATA, x)) {
        libcurl->easy_cleanup(x->easy);
        free(x);
        return ERR_NOMEM;
    }
    LIST_INSERT_HEAD(&h->xfers, x, link);
    *out = x;
    *easy = x->easy;
    return 0;
}
#undef SET

int httpc_xfer_start(struct httpc_xfer *x)
{
    if (x->h == NULL || x->h->closing ||
        libcurl->multi_add_handle(x->h->multi, x->easy) != CURLM_OK)
        return ERR_UPSTREAM;
    x->errbuf[0] = '\0';
    x->in_multi = true;
    return 0;
}

void httpc_xfer_cancel(struct httpc_xfer *x)
{
    if (x->h != NULL && x->in_multi)
        libcurl->multi_remove_handle(x->h->multi, x->easy);
    x->in_multi = false;
}

void httpc_xfer_free(struct httpc_xfer *x)
{
    if (x == NULL)
        return;
    httpc_xfer_cancel(x);
    if (x->h != NULL)
        LIST_REMOVE(x, link);
    libcurl->easy_cleanup(x->easy);
    free(x);
}

CURL *httpc_xfer_easy(const struct httpc_xfer *x)
{
    return x->easy;
}

/* ---- header lines ---- */

bool httpc_header_value(const char *h, size_t n, const char *name, const char **v,
                        size_t *vlen)
{
    size_t k = strlen(name);

    if (n <= k || h[k] != ':' || !ascii_ieq_lower(h, k, name))
        return false;
    h += k + 1;
    n -= k + 1;
    while (n > 0 && (h[0] == ' ' || h[0] == '\t'))
        h++, n--;
    while (n > 0 && (h[n - 1] == '\r' || h[n - 1] == '\n' || h[n - 1] == ' ' || h[n - 1] == '\t'))
        n--;
    *v = h;
    *vlen = n;
    return true;
}
