/*
 * credload.c - the load generator of the benchmark (bench/run).
 *
 * One single-threaded epoll loop drives N HTTP/1.1 client connections and
 * measures each request from its start to the last byte of its response. The
 * same code runs two ways, so the two sides of a comparison differ only in the
 * path a request takes:
 *   - brokered (default): connections are dialed over the control channel at
 *     FLASHDUTY_CRED_FD with the handshake done here (a 0x01 datagram, a reply
 *     with SCM_RIGHTS), not through libcredfd, so the wire protocol itself is
 *     measured. Dials are pipelined: replies come back in order, and the next
 *     one goes to the connection that has waited longest.
 *   - direct (--direct URL): plain TCP, or TLS through OpenSSL with the
 *     certificate verified (--cacert); the key is put in the query by us.
 *   - unix (--unix PATH): plain HTTP over a unix stream socket, to a local
 *     proxy that adds the key itself (bench/nginx-proxy.conf.in): what a user
 *     could deploy instead of the broker.
 * With --fresh every request gets a new connection (dial + request + close),
 * as a short-lived CLI makes it; a direct --fresh TLS call pays a full
 * handshake (no session resumption, as a new process has none).
 *
 * It prints one JSON line: requests, errors, seconds, rps, latency percentiles
 * (µs), bytes. With --idle it opens every connection first, keeps them open
 * after the requests, and reports the broker's (its parent's) RSS before and
 * after.
 *
 * Not for: correctness testing. The response parser reads just enough (status,
 * Content-Length, chunked, Connection: close) and trusts the server.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define LOAD_MAX_CONNS 100000
#define LOAD_HEAD_MAX (64 * 1024)       /* a response head longer than this is an error */
#define LOAD_READ_BUF (256 * 1024)      /* one read buffer, shared by every connection */
#define LOAD_READS_PER_EVENT 16         /* so one fast download cannot starve the others */
#define LOAD_DIAL_WINDOW 128            /* dial requests sent and not yet answered */
#define LOAD_EVENTS 512
#define LOAD_BODY_MAX (64u * 1024 * 1024)
#define LOAD_KEY_MAX 4096
#define LOAD_PATH_MAX 2048
#define LOAD_REQ_HEAD_MAX (LOAD_PATH_MAX + 3 * LOAD_KEY_MAX + 1024)
#define LOAD_TICK_MS 100                /* watchdog and deadline granularity */

#define CTL_DIAL 0x01
#define CTL_OK 0x01
#define CTL_MAX_FDS 4

#define NS_PER_SEC 1000000000ull
#define NS_PER_MS 1000000ull

/* Latency histogram: exact below 256 ns, then 128 buckets per power of two (< 0.8 %). */
#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_EXP 44
#define HIST_BUCKETS (2 * HIST_SUB + (HIST_MAX_EXP - HIST_SUB_BITS) * HIST_SUB)

enum target_kind { TARGET_BROKER, TARGET_PLAIN, TARGET_TLS, TARGET_UNIX };

enum conn_state {
    LC_CLOSED,     /* no connection */
    LC_DIALING,    /* a dial is queued or sent on the control channel */
    LC_CONNECTING, /* TCP connect in progress */
    LC_HANDSHAKE,  /* TLS handshake in progress */
    LC_READY,      /* connected, no request on the wire */
    LC_SENDING,    /* the request is being written */
    LC_HEAD,       /* waiting for (the rest of) the response head */
    LC_BODY,       /* reading the response body */
};

enum body_kind { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_CLOSE };

enum chunk_state {
    CK_SIZE, CK_EXT, CK_SIZE_LF, CK_DATA, CK_DATA_CR, CK_DATA_LF, CK_TRAILER, CK_TRAILER_LINE,
    CK_END_LF, CK_DONE,
};

struct load_opts {
    unsigned conns;
    uint64_t requests;  /* measured requests; 0 with a duration */
    bool requests_set;  /* --requests given (0 is a valid answer: warm-up only) */
    uint64_t warmup;    /* requests before the measured ones, not counted */
    double duration_s;  /* 0: --requests decides */
    double timeout_s;   /* no progress for this long ends the run (requests lost) */
    double hold_s;      /* --idle: keep the connections this long after measuring */
    unsigned inflight;  /* requests on the wire at once (default: conns) */
    size_t body;
    bool fresh;
    bool idle;
    const char *path;
    const char *direct_url;
    const char *unix_path;
    const char *cacert;
    const char *key_file;
    const char *label;
};

struct lconn {
    int fd;
    SSL *ssl;
    enum conn_state state;
    uint32_t events;        /* registered with epoll; 0 when not registered */
    bool pending;           /* a request has started on this connection and not ended */
    bool measured;          /* the pending request counts */
    bool queued;            /* on the kick queue */
    bool opening;           /* counted in load.opening */
    uint64_t t0;            /* ns: the pending request started (with --fresh: before the dial) */
    size_t woff;            /* request bytes written */
    char *hbuf;             /* a response head split across reads; NULL otherwise */
    size_t hlen;
    int status;
    bool close_after;
    enum body_kind body;
    uint64_t left;          /* BODY_LENGTH: bytes to come; BODY_CHUNKED: of this chunk */
    enum chunk_state ck;
    unsigned served;
};

/* A ring of connection indexes; every index is on a ring at most once. */
struct ring {
    unsigned *v;
    size_t cap, head, len;
};

struct load {
    struct load_opts o;
    enum target_kind kind;
    int ctl_fd;
    struct sockaddr_in addr;
    struct sockaddr_un uaddr; /* TARGET_UNIX */
    SSL_CTX *ssl_ctx;
    char host[256];
    bool host_is_ip;
    int ep;
    struct lconn *conns;
    char *req;
    size_t req_len;
    uint8_t *rbuf;
    struct ring dial_sent; /* dials sent, in order: the next reply belongs to the front */
    struct ring dial_wait; /* dials not sent yet (window full, or the socket was full) */
    struct ring kickq;     /* connections to (re)consider for a request after this turn */
    struct ring waitq;     /* connections held back by --inflight */
    uint32_t ctl_events;
    /* the phase being run */
    bool measuring;
    bool stopping;
    uint64_t phase_limit;  /* requests to start in this phase; 0: until the deadline */
    uint64_t phase_started;
    uint64_t deadline_ns;  /* 0: none */
    unsigned per_conn_cap; /* --idle: requests per connection; 0: no cap */
    unsigned inflight;
    unsigned opening;
    uint64_t last_progress_ns;
    bool broken;           /* the control channel failed: nothing more can be dialed */
    /* results of the measured phase */
    uint64_t ok, err_status, err_io, err_refused, err_lost, bytes;
    uint64_t max_ns;
    uint64_t hist[HIST_BUCKETS];
    uint64_t t_begin, t_end;
};

static void conn_request_done(struct load *L, struct lconn *c, bool ok, uint64_t *err_counter);
static void conn_send(struct load *L, struct lconn *c);

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* ---- rings ---- */

static int ring_init(struct ring *r, size_t cap)
{
    r->v = calloc(cap > 0 ? cap : 1, sizeof(*r->v));
    r->cap = cap;
    r->head = r->len = 0;
    return r->v == NULL ? -ENOMEM : 0;
}

static void ring_push(struct ring *r, unsigned i)
{
    /* Cannot overflow: cap is the number of connections and each is on a ring once. */
    r->v[(r->head + r->len) % r->cap] = i;
    r->len++;
}

static void ring_push_front(struct ring *r, unsigned i)
{
    r->head = (r->head + r->cap - 1) % r->cap;
    r->v[r->head] = i;
    r->len++;
}

static unsigned ring_pop(struct ring *r)
{
    unsigned i = r->v[r->head];

    r->head = (r->head + 1) % r->cap;
    r->len--;
    return i;
}

/* ---- histogram ---- */

static size_t hist_index(uint64_t v)
{
    unsigned e;

    if (v < 2 * HIST_SUB)
        return (size_t)v;
    e = 63u - (unsigned)__builtin_clzll(v);
    if (e > HIST_MAX_EXP)
        return HIST_BUCKETS - 1;
    return 2 * HIST_SUB + (size_t)(e - HIST_SUB_BITS - 1) * HIST_SUB +
           (size_t)((v >> (e - HIST_SUB_BITS)) - HIST_SUB);
}

/* The middle of bucket i. */
static uint64_t hist_value(size_t i)
{
    unsigned e, shift;
    uint64_t m;

    if (i < 2 * HIST_SUB)
        return i;
    e = (unsigned)((i - 2 * HIST_SUB) / HIST_SUB) + HIST_SUB_BITS + 1;
    m = HIST_SUB + (i - 2 * HIST_SUB) % HIST_SUB;
    shift = e - HIST_SUB_BITS;
    return (m << shift) + ((1ull << shift) >> 1);
}

static uint64_t hist_percentile(const struct load *L, double p, uint64_t count)
{
    uint64_t want, seen = 0;

    if (count == 0)
        return 0;
    want = (uint64_t)(p * (double)count + 0.999999);
    if (want == 0)
        want = 1;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += L->hist[i];
        if (seen >= want) {
            uint64_t v = hist_value(i);

            return v > L->max_ns ? L->max_ns : v;
        }
    }
    return L->max_ns;
}

/* ---- epoll interest ---- */

static int conn_index(const struct load *L, const struct lconn *c)
{
    return (int)(c - L->conns);
}

static void conn_want(struct load *L, struct lconn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.u64 = (uint64_t)conn_index(L, c)};

    if (c->events == events)
        return;
    if (epoll_ctl(L->ep, c->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c->fd, &ev) != 0) {
        /* Only ENOMEM/ENOSPC can get here; the request is failed by the caller's next read. */
        fprintf(stderr, "credload: epoll_ctl: %s\n", strerror(errno));
        return;
    }
    c->events = events;
}

static void ctl_want(struct load *L, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.u64 = UINT64_MAX};

    if (L->ctl_events == events)
        return;
    if (epoll_ctl(L->ep, L->ctl_events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, L->ctl_fd, &ev) == 0)
        L->ctl_events = events;
}

/* ---- connections ---- */

static void conn_kick_later(struct load *L, struct lconn *c)
{
    if (!c->queued) {
        c->queued = true;
        ring_push(&L->kickq, (unsigned)conn_index(L, c));
    }
}

static void conn_opened(struct load *L, struct lconn *c)
{
    if (c->opening) {
        c->opening = false;
        L->opening--;
    }
}

static void conn_close(struct load *L, struct lconn *c)
{
    conn_opened(L, c);
    if (c->ssl != NULL) {
        /* A CLI that is done sends close_notify and does not wait for the answer. */
        if (L->o.fresh && SSL_is_init_finished(c->ssl))
            (void)SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0)
        close(c->fd); /* also removes it from the epoll set */
    c->fd = -1;
    c->events = 0;
    free(c->hbuf);
    c->hbuf = NULL;
    c->hlen = 0;
    c->state = LC_CLOSED;
}

/* The connection failed before or during a request. */
static void conn_fail(struct load *L, struct lconn *c, uint64_t *err_counter)
{
    if (c->pending) {
        conn_request_done(L, c, false, err_counter);
    } else {
        if (c->opening)
            (*err_counter)++;
        conn_close(L, c);
    }
}

static void conn_ready(struct load *L, struct lconn *c)
{
    conn_opened(L, c);
    c->state = LC_READY;
    if (c->pending)
        conn_send(L, c);
    else
        conn_want(L, c, EPOLLIN); /* notice a close by the server while idle */
}

static void conn_handshake(struct load *L, struct lconn *c)
{
    int r = SSL_do_handshake(c->ssl);

    if (r == 1) {
        conn_ready(L, c);
        return;
    }
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        conn_want(L, c, EPOLLIN);
        return;
    case SSL_ERROR_WANT_WRITE:
        conn_want(L, c, EPOLLOUT);
        return;
    default:
        if (L->measuring && L->err_io < 5) {
            unsigned long e = ERR_peek_error();

            fprintf(stderr, "credload: TLS handshake: %s\n",
                    e != 0 ? ERR_reason_error_string(e) : strerror(errno));
        }
        ERR_clear_error();
        conn_fail(L, c, &L->err_io);
    }
}

static void conn_connected(struct load *L, struct lconn *c)
{
    if (L->kind == TARGET_PLAIN || L->kind == TARGET_UNIX) {
        conn_ready(L, c);
        return;
    }
    if ((c->ssl = SSL_new(L->ssl_ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
        conn_fail(L, c, &L->err_io);
        return;
    }
    if (L->host_is_ip) {
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), L->host) != 1) {
            conn_fail(L, c, &L->err_io);
            return;
        }
    } else if (SSL_set1_host(c->ssl, L->host) != 1 ||
               SSL_set_tlsext_host_name(c->ssl, L->host) != 1) {
        conn_fail(L, c, &L->err_io);
        return;
    }
    SSL_set_connect_state(c->ssl);
    c->state = LC_HANDSHAKE;
    conn_handshake(L, c);
}

/* Sends dial requests while the window and the socket allow. */
static void ctl_pump(struct load *L)
{
    static const uint8_t dial = CTL_DIAL;

    while (L->dial_wait.len > 0 && L->dial_sent.len < LOAD_DIAL_WINDOW && !L->broken) {
        unsigned i = ring_pop(&L->dial_wait);
        ssize_t n;

        do {
            n = send(L->ctl_fd, &dial, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
        } while (n < 0 && errno == EINTR);
        if (n == 1) {
            ring_push(&L->dial_sent, i);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            ring_push_front(&L->dial_wait, i);
            ctl_want(L, EPOLLIN | EPOLLOUT);
            return;
        }
        fprintf(stderr, "credload: control channel: send: %s\n", strerror(errno));
        L->broken = true;
        ring_push_front(&L->dial_wait, i);
        break;
    }
    ctl_want(L, EPOLLIN);
    if (L->broken) {
        while (L->dial_wait.len > 0)
            conn_fail(L, &L->conns[ring_pop(&L->dial_wait)], &L->err_refused);
        while (L->dial_sent.len > 0)
            conn_fail(L, &L->conns[ring_pop(&L->dial_sent)], &L->err_refused);
    }
}

/* Takes every reply that has arrived; each goes to the oldest dial. */
static void ctl_on_readable(struct load *L)
{
    for (;;) {
        union {
            struct cmsghdr align;
            char buf[CMSG_SPACE(sizeof(int) * CTL_MAX_FDS)];
        } cmsg;
        uint8_t reply[2];
        struct iovec iov = {reply, sizeof(reply)};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cmsg.buf,
                             .msg_controllen = sizeof(cmsg.buf)};
        struct lconn *c;
        ssize_t n;
        int fd = -1, nfds = 0;

        n = recvmsg(L->ctl_fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        for (struct cmsghdr *h = CMSG_FIRSTHDR(&msg); n >= 0 && h != NULL;
             h = CMSG_NXTHDR(&msg, h)) {
            if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
                continue;
            for (size_t k = 0; k < (h->cmsg_len - CMSG_LEN(0)) / sizeof(int); k++) {
                int got;

                memcpy(&got, CMSG_DATA(h) + k * sizeof(int), sizeof(int));
                if (nfds++ == 0)
                    fd = got;
                else
                    close(got);
            }
        }
        if (n <= 0 || L->dial_sent.len == 0) {
            if (fd >= 0)
                close(fd);
            fprintf(stderr, "credload: control channel: %s\n",
                    n < 0 ? strerror(errno) : n == 0 ? "closed by the broker"
                                                     : "a reply nobody asked for");
            L->broken = true;
            ctl_pump(L);
            return;
        }
        c = &L->conns[ring_pop(&L->dial_sent)];
        if (n == 1 && reply[0] == CTL_OK && nfds == 1 && !(msg.msg_flags & MSG_CTRUNC)) {
            c->fd = fd;
            conn_ready(L, c);
        } else {
            if (fd >= 0)
                close(fd);
            conn_fail(L, c, &L->err_refused);
        }
    }
    ctl_pump(L);
}

/*
 * A unix stream connect completes at once or not at all: there is no
 * EINPROGRESS, and EAGAIN means the listener's backlog is full. That is the
 * server refusing the call, counted as a refused dial (bench/run gives nginx a
 * backlog far above the calls it makes at once).
 */
static void conn_open_unix(struct load *L, struct lconn *c)
{
    int r;

    if ((c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
        fprintf(stderr, "credload: socket: %s\n", strerror(errno));
        conn_fail(L, c, &L->err_io);
        return;
    }
    do {
        r = connect(c->fd, (const struct sockaddr *)&L->uaddr, sizeof(L->uaddr));
    } while (r != 0 && errno == EINTR);
    if (r == 0) {
        conn_connected(L, c);
        return;
    }
    if (L->err_io + L->err_refused < 5)
        fprintf(stderr, "credload: connect %.100s: %s\n", L->o.unix_path, strerror(errno));
    conn_fail(L, c, errno == EAGAIN ? &L->err_refused : &L->err_io);
}

static void conn_open(struct load *L, struct lconn *c)
{
    int one = 1, r;

    if (!c->opening) {
        c->opening = true;
        L->opening++;
    }
    c->events = 0;
    if (L->kind == TARGET_BROKER) {
        c->state = LC_DIALING;
        ring_push(&L->dial_wait, (unsigned)conn_index(L, c));
        ctl_pump(L);
        return;
    }
    if (L->kind == TARGET_UNIX) {
        conn_open_unix(L, c);
        return;
    }
    if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
        fprintf(stderr, "credload: socket: %s\n", strerror(errno));
        conn_fail(L, c, &L->err_io);
        return;
    }
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    do {
        r = connect(c->fd, (const struct sockaddr *)&L->addr, sizeof(L->addr));
    } while (r != 0 && errno == EINTR);
    if (r == 0) {
        conn_connected(L, c);
    } else if (errno == EINPROGRESS) {
        c->state = LC_CONNECTING;
        conn_want(L, c, EPOLLOUT);
    } else {
        if (L->err_io < 5)
            fprintf(stderr, "credload: connect: %s\n", strerror(errno));
        conn_fail(L, c, &L->err_io);
    }
}

/* ---- requests ---- */

static bool load_may_start(const struct load *L, const struct lconn *c)
{
    if (L->stopping || L->broken)
        return false;
    if (L->phase_limit > 0 && L->phase_started >= L->phase_limit)
        return false;
    if (L->per_conn_cap > 0 && c->served >= L->per_conn_cap)
        return false;
    return true;
}

static void conn_start_request(struct load *L, struct lconn *c)
{
    L->phase_started++;
    if (L->phase_limit > 0 && L->phase_started >= L->phase_limit)
        L->stopping = true; /* the last one of the phase is on its way */
    L->inflight++;
    c->pending = true;
    c->measured = L->measuring;
    c->t0 = now_ns();
    if (c->state == LC_CLOSED)
        conn_open(L, c);
    else
        conn_send(L, c);
}

/* Starts the connection's next request if the phase wants one. */
static void conn_kick(struct load *L, struct lconn *c)
{
    if (c->pending || c->state == LC_DIALING || c->state == LC_CONNECTING ||
        c->state == LC_HANDSHAKE)
        return;
    if (!load_may_start(L, c))
        return;
    if (L->inflight >= L->o.inflight) {
        ring_push(&L->waitq, (unsigned)conn_index(L, c));
        return;
    }
    conn_start_request(L, c);
}

static void hist_record(struct load *L, uint64_t ns)
{
    L->hist[hist_index(ns)]++;
    if (ns > L->max_ns)
        L->max_ns = ns;
}

/* Ends the pending request; closes the connection when it cannot be reused. */
static void conn_request_done(struct load *L, struct lconn *c, bool ok, uint64_t *err_counter)
{
    uint64_t t = now_ns();

    if (c->measured) {
        if (ok) {
            L->ok++;
            hist_record(L, t - c->t0);
        } else {
            (*err_counter)++;
        }
    }
    c->pending = false;
    c->served++;
    L->inflight--;
    L->last_progress_ns = t;
    if (!ok || L->o.fresh || c->close_after)
        conn_close(L, c);
    else
        c->state = LC_READY;
    if (c->state == LC_READY)
        conn_want(L, c, EPOLLIN);
    /* Deferred: starting here could recurse through a synchronous failure. */
    conn_kick_later(L, c);
    if (L->waitq.len > 0)
        conn_kick_later(L, &L->conns[ring_pop(&L->waitq)]);
}

/* What SSL_read or SSL_write returned, as conn_io_* report it: bytes; -EAGAIN with *want
 * set to what the TLS session waits for; 0 at the peer's close_notify; -EIO otherwise. (A
 * writer treats 0 as the error it is for it.) */
static ssize_t tls_result(struct lconn *c, int r, uint32_t *want)
{
    if (r > 0)
        return r;
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        *want = EPOLLIN;
        return -EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        *want = EPOLLOUT;
        return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    default:
        ERR_clear_error();
        return -EIO;
    }
}

static ssize_t conn_io_write(struct lconn *c, const void *p, size_t n, uint32_t *want)
{
    ssize_t r;

    if (c->ssl == NULL) {
        do {
            r = send(c->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        } while (r < 0 && errno == EINTR);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            *want = EPOLLOUT;
            return -EAGAIN;
        }
        return r < 0 ? -errno : r;
    }
    return tls_result(c, SSL_write(c->ssl, p, (int)(n > INT_MAX ? INT_MAX : n)), want);
}

static ssize_t conn_io_read(struct lconn *c, void *p, size_t n, uint32_t *want)
{
    ssize_t r;

    if (c->ssl == NULL) {
        do {
            r = recv(c->fd, p, n, MSG_DONTWAIT);
        } while (r < 0 && errno == EINTR);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            *want = EPOLLIN;
            return -EAGAIN;
        }
        return r < 0 ? -errno : r;
    }
    return tls_result(c, SSL_read(c->ssl, p, (int)(n > INT_MAX ? INT_MAX : n)), want);
}

static void conn_send(struct load *L, struct lconn *c)
{
    uint32_t want = 0;

    if (c->state != LC_SENDING) {
        c->state = LC_SENDING;
        c->woff = 0;
    }
    while (c->woff < L->req_len) {
        ssize_t n = conn_io_write(c, L->req + c->woff, L->req_len - c->woff, &want);

        if (n == -EAGAIN) {
            conn_want(L, c, want);
            return;
        }
        if (n <= 0) {
            if (L->measuring && L->err_io < 5)
                fprintf(stderr, "credload: write (request %u on this connection): %s\n",
                        c->served + 1, n < 0 ? strerror((int)-n) : "nothing written");
            conn_request_done(L, c, false, &L->err_io);
            return;
        }
        c->woff += (size_t)n;
    }
    c->state = LC_HEAD;
    c->hlen = 0;
    c->status = 0;
    c->close_after = false;
    conn_want(L, c, EPOLLIN);
}

/* ---- responses ---- */

/* Case-insensitive: does [p, p+n) contain the token? */
static bool has_token(const char *p, size_t n, const char *tok)
{
    size_t t = strlen(tok);

    for (size_t i = 0; i + t <= n; i++) {
        if (strncasecmp(p + i, tok, t) == 0)
            return true;
    }
    return false;
}

static bool header_is(const char *line, size_t len, const char *name, const char **value,
                      size_t *vlen)
{
    size_t n = strlen(name);

    if (len <= n || line[n] != ':' || strncasecmp(line, name, n) != 0)
        return false;
    *value = line + n + 1;
    *vlen = len - n - 1;
    return true;
}

/* Parses a complete head [p, p+n) ending in CRLFCRLF. Returns 0, or -1 if it is not HTTP. */
static int conn_parse_head(struct lconn *c, const char *p, size_t n)
{
    const char *end = p + n, *line, *v;
    bool chunked = false, have_len = false;
    uint64_t len = 0;
    size_t vlen;

    if (n < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ')
        return -1;
    c->status = 0;
    for (int k = 9; k < 12; k++) {
        if (p[k] < '0' || p[k] > '9')
            return -1;
        c->status = c->status * 10 + (p[k] - '0');
    }
    c->close_after = p[7] == '0';
    line = memchr(p, '\n', n);
    while (line != NULL && ++line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        size_t ll;

        if (eol == NULL)
            break;
        ll = (size_t)(eol - line);
        if (ll > 0 && line[ll - 1] == '\r')
            ll--;
        if (header_is(line, ll, "content-length", &v, &vlen)) {
            len = 0;
            have_len = false;
            for (size_t k = 0; k < vlen; k++) {
                if (v[k] >= '0' && v[k] <= '9') {
                    if (len > (UINT64_MAX - 9) / 10)
                        return -1;
                    len = len * 10 + (uint64_t)(v[k] - '0');
                    have_len = true;
                } else if (v[k] != ' ' && v[k] != '\t') {
                    return -1;
                }
            }
        } else if (header_is(line, ll, "transfer-encoding", &v, &vlen)) {
            chunked = has_token(v, vlen, "chunked");
        } else if (header_is(line, ll, "connection", &v, &vlen)) {
            if (has_token(v, vlen, "close"))
                c->close_after = true;
            else if (has_token(v, vlen, "keep-alive"))
                c->close_after = false;
        }
        line = eol;
    }
    c->ck = CK_SIZE;
    c->left = 0;
    if (c->status == 204 || c->status == 304 || (c->status >= 100 && c->status < 200))
        c->body = BODY_NONE;
    else if (chunked)
        c->body = BODY_CHUNKED;
    else if (have_len && len > 0) {
        c->body = BODY_LENGTH;
        c->left = len;
    } else if (have_len)
        c->body = BODY_NONE;
    else
        c->body = BODY_CLOSE;
    return 0;
}

/* Feeds chunked framing; returns bytes consumed, or -1 on a framing error. *done at the end. */
static ssize_t chunk_feed(struct lconn *c, const uint8_t *p, size_t n, uint64_t *data, bool *done)
{
    size_t i = 0;

    while (i < n && c->ck != CK_DONE) {
        uint8_t b = p[i];

        switch (c->ck) {
        case CK_SIZE:
            if ((b >= '0' && b <= '9') || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F')) {
                if (c->left > (UINT64_MAX >> 4))
                    return -1;
                c->left = (c->left << 4) | (uint64_t)(b <= '9' ? b - '0' : (b | 0x20) - 'a' + 10);
            } else if (b == ';' || b == ' ' || b == '\t') {
                c->ck = CK_EXT;
            } else if (b == '\r') {
                c->ck = CK_SIZE_LF;
            } else {
                return -1;
            }
            i++;
            break;
        case CK_EXT:
            if (b == '\r')
                c->ck = CK_SIZE_LF;
            i++;
            break;
        case CK_SIZE_LF:
            if (b != '\n')
                return -1;
            c->ck = c->left == 0 ? CK_TRAILER : CK_DATA;
            i++;
            break;
        case CK_DATA: {
            size_t take = n - i;

            if (take > c->left)
                take = (size_t)c->left;
            c->left -= take;
            *data += take;
            i += take;
            if (c->left == 0)
                c->ck = CK_DATA_CR;
            break;
        }
        case CK_DATA_CR:
            if (b != '\r')
                return -1;
            c->ck = CK_DATA_LF;
            i++;
            break;
        case CK_DATA_LF:
            if (b != '\n')
                return -1;
            c->ck = CK_SIZE;
            i++;
            break;
        case CK_TRAILER:
            c->ck = b == '\r' ? CK_END_LF : CK_TRAILER_LINE;
            i++;
            break;
        case CK_TRAILER_LINE:
            if (b == '\n')
                c->ck = CK_TRAILER;
            i++;
            break;
        case CK_END_LF:
            if (b != '\n')
                return -1;
            c->ck = CK_DONE;
            i++;
            break;
        case CK_DONE:
            break;
        }
    }
    *done = c->ck == CK_DONE;
    return (ssize_t)i;
}

static void conn_response_complete(struct load *L, struct lconn *c)
{
    bool ok = c->status >= 200 && c->status < 300;

    conn_request_done(L, c, ok, ok ? NULL : &L->err_status);
}

/*
 * Consumes response bytes. Returns 1 when the response is complete (the request
 * has been ended), 0 when more is needed, -1 after a protocol error (ended too).
 */
static int conn_on_bytes(struct load *L, struct lconn *c, const uint8_t *p, size_t n)
{
    while (n > 0) {
        if (c->state == LC_HEAD) {
            const char *h = (const char *)p, *e;
            size_t hn = n, from_p;

            if (c->hbuf != NULL) {
                size_t old = c->hlen, scan = old > 3 ? old - 3 : 0;

                if (n > LOAD_HEAD_MAX - c->hlen) {
                    conn_request_done(L, c, false, &L->err_io);
                    return -1;
                }
                memcpy(c->hbuf + c->hlen, p, n);
                c->hlen += n;
                e = memmem(c->hbuf + scan, c->hlen - scan, "\r\n\r\n", 4);
                if (e == NULL)
                    return 0;
                h = c->hbuf;
                hn = (size_t)(e + 4 - c->hbuf);
                from_p = hn - old;
            } else {
                e = memmem(p, n, "\r\n\r\n", 4);
                if (e == NULL) {
                    if (n > LOAD_HEAD_MAX || (c->hbuf = malloc(LOAD_HEAD_MAX)) == NULL) {
                        conn_request_done(L, c, false, &L->err_io);
                        return -1;
                    }
                    memcpy(c->hbuf, p, n);
                    c->hlen = n;
                    return 0;
                }
                hn = (size_t)(e + 4 - h);
                from_p = hn;
            }
            if (conn_parse_head(c, h, hn) != 0) {
                if (L->measuring && L->err_io < 5)
                    fprintf(stderr, "credload: a response head it cannot parse\n");
                conn_request_done(L, c, false, &L->err_io);
                return -1;
            }
            free(c->hbuf);
            c->hbuf = NULL;
            c->hlen = 0;
            p += from_p;
            n -= from_p;
            if (c->status >= 100 && c->status < 200)
                continue; /* an interim response: the real head follows */
            if (c->body == BODY_NONE) {
                conn_response_complete(L, c);
                return 1;
            }
            c->state = LC_BODY;
        } else if (c->body == BODY_LENGTH) {
            size_t take = n > c->left ? (size_t)c->left : n;

            if (c->measured)
                L->bytes += take;
            c->left -= take;
            p += take;
            n -= take;
            if (c->left == 0) {
                conn_response_complete(L, c);
                return 1;
            }
        } else if (c->body == BODY_CHUNKED) {
            uint64_t data = 0;
            bool done = false;
            ssize_t used = chunk_feed(c, p, n, &data, &done);

            if (c->measured)
                L->bytes += data;
            if (used < 0) {
                conn_request_done(L, c, false, &L->err_io);
                return -1;
            }
            p += used;
            n -= (size_t)used;
            if (done) {
                conn_response_complete(L, c);
                return 1;
            }
        } else { /* BODY_CLOSE: everything until the end of the stream */
            if (c->measured)
                L->bytes += n;
            n = 0;
        }
    }
    return 0;
}

static void conn_read(struct load *L, struct lconn *c)
{
    for (int i = 0;; i++) {
        uint32_t want = 0;
        ssize_t n;

        /* Past the per-event budget, only bytes OpenSSL already holds: with read-ahead
         * they raise no new epoll event, and leaving them there stalls the download. */
        if (i >= LOAD_READS_PER_EVENT && (c->ssl == NULL || !SSL_has_pending(c->ssl)))
            return;
        n = conn_io_read(c, L->rbuf, LOAD_READ_BUF, &want);

        if (n == -EAGAIN) {
            conn_want(L, c, want);
            return;
        }
        if (n == 0 && c->state == LC_BODY && c->body == BODY_CLOSE) {
            c->close_after = true;
            conn_response_complete(L, c);
            return;
        }
        if (n <= 0) {
            if (L->measuring && L->err_io < 5)
                fprintf(stderr, "credload: read (request %u on this connection, %s): %s\n",
                        c->served + 1, c->state == LC_HEAD ? "awaiting the head" : "in the body",
                        n < 0 ? strerror((int)-n) : "closed by the peer");
            conn_request_done(L, c, false, &L->err_io);
            return;
        }
        if (conn_on_bytes(L, c, L->rbuf, (size_t)n) != 0)
            return;
    }
}

static void conn_on_event(struct load *L, struct lconn *c, uint32_t events)
{
    int err = 0;
    socklen_t len = sizeof(err);

    switch (c->state) {
    case LC_CONNECTING:
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            if (L->err_io < 5)
                fprintf(stderr, "credload: connect: %s\n", strerror(err != 0 ? err : errno));
            conn_fail(L, c, &L->err_io);
            return;
        }
        conn_connected(L, c);
        return;
    case LC_HANDSHAKE:
        conn_handshake(L, c);
        return;
    case LC_SENDING:
        conn_send(L, c);
        return;
    case LC_HEAD:
    case LC_BODY:
        conn_read(L, c);
        return;
    case LC_READY: {
        /* Idle, no request: the server closed it or sent what nobody asked for. */
        uint32_t want = 0;
        ssize_t n = conn_io_read(c, L->rbuf, LOAD_READ_BUF, &want);

        if (n != -EAGAIN)
            conn_close(L, c);
        return;
    }
    case LC_CLOSED:
    case LC_DIALING:
        return;
    }
}

/* ---- the run ---- */

static void load_drain_kicks(struct load *L)
{
    /* Only what is queued now: a failure re-queues, and must wait for the next turn. */
    for (size_t n = L->kickq.len; n > 0; n--) {
        struct lconn *c = &L->conns[ring_pop(&L->kickq)];

        c->queued = false;
        conn_kick(L, c);
    }
}

/* Requests still on the wire when the run gives up on them are lost (failed). */
static void load_abandon(struct load *L)
{
    for (unsigned i = 0; i < L->o.conns; i++) {
        struct lconn *c = &L->conns[i];

        if (c->pending) {
            if (c->measured)
                L->err_lost++;
            c->pending = false;
            L->inflight--;
        }
        if (c->state != LC_READY || c->opening)
            conn_close(L, c);
    }
}

/*
 * Runs the loop until the phase is over: no more requests to start and none on
 * the wire (and, with open_all, every connection opened). Every wait is
 * bounded: no progress for --timeout ends it.
 */
static void load_run(struct load *L, bool open_all)
{
    struct epoll_event evs[LOAD_EVENTS];
    uint64_t timeout_ns = (uint64_t)(L->o.timeout_s * (double)NS_PER_SEC);

    L->last_progress_ns = now_ns();
    if (open_all) {
        for (unsigned i = 0; i < L->o.conns; i++) {
            if (L->conns[i].state == LC_CLOSED)
                conn_open(L, &L->conns[i]);
        }
    } else {
        for (unsigned i = 0; i < L->o.conns; i++)
            conn_kick_later(L, &L->conns[i]);
    }
    for (;;) {
        uint64_t t;
        int n, wait_ms = LOAD_TICK_MS;

        load_drain_kicks(L);
        t = now_ns();
        if (L->deadline_ns != 0 && !L->stopping) {
            if (t >= L->deadline_ns)
                L->stopping = true;
            else if ((L->deadline_ns - t) / NS_PER_MS < (uint64_t)wait_ms)
                wait_ms = (int)((L->deadline_ns - t) / NS_PER_MS) + 1;
        }
        if (L->inflight == 0 && L->opening == 0 && L->kickq.len == 0 &&
            (L->stopping || L->broken ||
             (L->phase_limit > 0 && L->phase_started >= L->phase_limit) || open_all))
            break;
        if (L->inflight == 0 && L->opening == 0 && L->kickq.len == 0 && L->waitq.len == 0) {
            /* Nothing can start any more (every connection is capped or closed). */
            bool any = false;

            for (unsigned i = 0; i < L->o.conns && !any; i++)
                any = load_may_start(L, &L->conns[i]) && L->conns[i].state != LC_DIALING;
            if (!any)
                break;
        }
        if (t - L->last_progress_ns > timeout_ns) {
            fprintf(stderr, "credload: no progress for %.0f s: giving up on %u request(s)\n",
                    L->o.timeout_s, L->inflight);
            load_abandon(L);
            L->broken = true; /* late dial replies would go to the wrong connection */
            break;
        }
        if (L->kickq.len > 0)
            wait_ms = 0;
        n = epoll_wait(L->ep, evs, LOAD_EVENTS, wait_ms);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "credload: epoll_wait: %s\n", strerror(errno));
            load_abandon(L);
            break;
        }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u64 == UINT64_MAX) {
                if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                    ctl_on_readable(L);
                if (evs[i].events & EPOLLOUT)
                    ctl_pump(L);
                continue;
            }
            conn_on_event(L, &L->conns[evs[i].data.u64], evs[i].events);
        }
        if (open_all && n > 0)
            L->last_progress_ns = now_ns();
    }
}

/* Keeps serving the loop (idle connections, nothing to start) for ms milliseconds. */
static void load_idle(struct load *L, uint64_t ms)
{
    struct epoll_event evs[LOAD_EVENTS];
    uint64_t end = now_ns() + ms * NS_PER_MS;

    for (uint64_t t = now_ns(); t < end; t = now_ns()) {
        int n = epoll_wait(L->ep, evs, LOAD_EVENTS, (int)((end - t) / NS_PER_MS) + 1);

        for (int i = 0; i < n; i++) {
            if (evs[i].data.u64 != UINT64_MAX)
                conn_on_event(L, &L->conns[evs[i].data.u64], evs[i].events);
        }
    }
}

/* ---- set-up ---- */

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (*s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

static int parse_seconds(const char *s, double max, double *out)
{
    char *end;
    double v;

    if (*s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !(v > 0) || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

/* Reads the key: the whole file, surrounding whitespace dropped. Caller frees *out. */
static int read_key(const char *path, char **out)
{
    char buf[LOAD_KEY_MAX + 2];
    size_t n, a = 0;
    FILE *f;

    *out = NULL;
    if ((f = fopen(path, "re")) == NULL)
        return -errno;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    if (n > LOAD_KEY_MAX)
        return -E2BIG;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    while (a < n && (buf[a] == ' ' || buf[a] == '\t'))
        a++;
    if (a == n)
        return -EINVAL;
    if ((*out = strndup(buf + a, n - a)) == NULL)
        return -ENOMEM;
    return 0;
}

/* Appends s percent-encoded (RFC 3986 unreserved kept) at *p, at most room bytes. */
static int put_encoded(char **p, size_t *room, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~';

        if (*room < 4)
            return -E2BIG;
        if (plain) {
            *(*p)++ = (char)ch;
            (*room)--;
        } else {
            *(*p)++ = '%';
            *(*p)++ = hex[ch >> 4];
            *(*p)++ = hex[ch & 15];
            *room -= 3;
        }
    }
    **p = '\0';
    return 0;
}

/* http[s]://IPv4[:port][/base]: 127.0.0.1 and friends only, no name lookups. */
static int load_parse_url(struct load *L, const char *url, char *base, size_t base_len)
{
    const char *p, *host_end, *slash;
    char host[64];
    uint64_t port;

    if (strncmp(url, "http://", 7) == 0) {
        L->kind = TARGET_PLAIN;
        p = url + 7;
        port = 80;
    } else if (strncmp(url, "https://", 8) == 0) {
        L->kind = TARGET_TLS;
        p = url + 8;
        port = 443;
    } else {
        return -EINVAL;
    }
    slash = strchr(p, '/');
    host_end = slash != NULL ? slash : p + strlen(p);
    {
        const char *colon = memchr(p, ':', (size_t)(host_end - p));
        size_t hl = (size_t)((colon != NULL ? colon : host_end) - p);
        char portbuf[8];

        if (hl == 0 || hl >= sizeof(host))
            return -EINVAL;
        memcpy(host, p, hl);
        host[hl] = '\0';
        if (colon != NULL) {
            size_t pl = (size_t)(host_end - colon - 1);

            if (pl == 0 || pl >= sizeof(portbuf))
                return -EINVAL;
            memcpy(portbuf, colon + 1, pl);
            portbuf[pl] = '\0';
            if (parse_u64(portbuf, 1, 65535, &port) != 0)
                return -EINVAL;
        }
    }
    memset(&L->addr, 0, sizeof(L->addr));
    L->addr.sin_family = AF_INET;
    L->addr.sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0) {
        L->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        L->host_is_ip = false;
    } else if (inet_pton(AF_INET, host, &L->addr.sin_addr) == 1) {
        L->host_is_ip = true;
    } else {
        return -EINVAL;
    }
    if ((size_t)snprintf(L->host, sizeof(L->host), "%s", host) >= sizeof(L->host))
        return -EINVAL;
    if ((size_t)snprintf(base, base_len, "%s", slash != NULL ? slash : "") >= base_len)
        return -E2BIG;
    /* The base path is joined with the request path: drop its trailing slash. */
    if (base[0] != '\0' && base[strlen(base) - 1] == '/')
        base[strlen(base) - 1] = '\0';
    return 0;
}

static int load_tls_init(struct load *L)
{
    static const unsigned char alpn[] = "\x08http/1.1";

    if ((L->ssl_ctx = SSL_CTX_new(TLS_client_method())) == NULL)
        return -EIO;
    SSL_CTX_set_verify(L->ssl_ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_session_cache_mode(L->ssl_ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(L->ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                     SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(L->ssl_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* Whole socket reads instead of a header, then a record: the direct side is a fast client. */
    SSL_CTX_set_read_ahead(L->ssl_ctx, 1);
    /* The broker's order (src/net/netconn_internal.h), so that direct and brokered runs
     * decrypt with the same cipher: AES-128-GCM, as Go's clients and the browsers pick. */
    if (SSL_CTX_set_ciphersuites(L->ssl_ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
                                             "TLS_CHACHA20_POLY1305_SHA256") != 1)
        return -EIO;
    if (SSL_CTX_set_alpn_protos(L->ssl_ctx, alpn, sizeof(alpn) - 1) != 0)
        return -EIO;
    if (L->o.cacert != NULL) {
        if (SSL_CTX_load_verify_locations(L->ssl_ctx, L->o.cacert, NULL) != 1)
            return -ENOENT;
    } else if (SSL_CTX_set_default_verify_paths(L->ssl_ctx) != 1) {
        return -EIO;
    }
    return 0;
}

/* Builds the one request every connection sends. */
static int load_build_request(struct load *L, const char *base, const char *key)
{
    char *head, *p;
    size_t room, hlen;
    int n;
    char hostport[300];

    if ((head = malloc(LOAD_REQ_HEAD_MAX)) == NULL)
        return -ENOMEM;
    p = head;
    room = LOAD_REQ_HEAD_MAX;
    n = snprintf(p, room, "%s %s%s", L->o.body > 0 ? "POST" : "GET", base, L->o.path);
    if (n < 0 || (size_t)n >= room)
        goto too_long;
    p += n;
    room -= (size_t)n;
    if (key != NULL) {
        n = snprintf(p, room, "%sapp_key=", strchr(L->o.path, '?') != NULL ? "&" : "?");
        if (n < 0 || (size_t)n >= room)
            goto too_long;
        p += n;
        room -= (size_t)n;
        if (put_encoded(&p, &room, key) != 0)
            goto too_long;
    }
    if (L->kind == TARGET_BROKER) {
        n = snprintf(hostport, sizeof(hostport), "flashduty.broker.local");
    } else if (L->kind == TARGET_UNIX) {
        n = snprintf(hostport, sizeof(hostport), "localhost");
    } else {
        unsigned port = ntohs(L->addr.sin_port);
        bool def = (L->kind == TARGET_PLAIN && port == 80) ||
                   (L->kind == TARGET_TLS && port == 443);

        n = def ? snprintf(hostport, sizeof(hostport), "%s", L->host)
                : snprintf(hostport, sizeof(hostport), "%s:%u", L->host, port);
    }
    if (n < 0 || (size_t)n >= sizeof(hostport))
        goto too_long;
    n = snprintf(p, room, " HTTP/1.1\r\nHost: %s\r\nUser-Agent: credload\r\nAccept: */*\r\n",
                 hostport);
    if (n < 0 || (size_t)n >= room)
        goto too_long;
    p += n;
    room -= (size_t)n;
    if (L->o.body > 0)
        n = snprintf(p, room, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     L->o.body);
    else
        n = snprintf(p, room, "\r\n");
    if (n < 0 || (size_t)n >= room)
        goto too_long;
    p += n;
    hlen = (size_t)(p - head);
    if ((L->req = malloc(hlen + L->o.body)) == NULL) {
        free(head);
        return -ENOMEM;
    }
    memcpy(L->req, head, hlen);
    free(head);
    if (L->o.body > 0) {
        /* A JSON object of exactly --body bytes where there is room for one. */
        char *b = L->req + hlen;

        memset(b, 'x', L->o.body);
        if (L->o.body >= 8) {
            memcpy(b, "{\"p\":\"", 6);
            memcpy(b + L->o.body - 2, "\"}", 2);
        }
    }
    L->req_len = hlen + L->o.body;
    return 0;
too_long:
    free(head);
    return -E2BIG;
}

#define RSS_FIELDS 5 /* VmRSS, RssAnon, RssFile, Pss, USS (Private_Clean + Private_Dirty) */

/* Adds the "Name:  N kB" values of path whose names are in names[] into out[]. */
static void read_kb_fields(const char *path, const char *const *names, const int *slot, int n,
                           long long *out)
{
    char line[256];
    FILE *f;

    if ((f = fopen(path, "re")) == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL) {
        for (int k = 0; k < n; k++) {
            size_t nl = strlen(names[k]);
            char *p, *end;
            long long v;

            if (strncmp(line, names[k], nl) != 0)
                continue;
            p = line + nl;
            while (*p == ' ' || *p == '\t')
                p++;
            errno = 0;
            v = strtoll(p, &end, 10);
            if (errno == 0 && end != p)
                out[slot[k]] = (out[slot[k]] < 0 ? 0 : out[slot[k]]) + v;
        }
    }
    fclose(f);
}

/*
 * The memory of pid in KiB (-1 where unreadable). RSS counts every resident page
 * of the shared libraries too; PSS shares them out; USS is what is the process's own.
 */
static void read_rss(pid_t pid, long long out[RSS_FIELDS])
{
    static const char *const status_names[] = {"VmRSS:", "RssAnon:", "RssFile:"};
    static const int status_slot[] = {0, 1, 2};
    static const char *const rollup_names[] = {"Pss:", "Private_Clean:", "Private_Dirty:"};
    static const int rollup_slot[] = {3, 4, 4};
    char path[64];

    for (int k = 0; k < RSS_FIELDS; k++)
        out[k] = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    read_kb_fields(path, status_names, status_slot, 3, out);
    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
    read_kb_fields(path, rollup_names, rollup_slot, 3, out);
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: credload [options] PATH\n"
        "\n"
        "HTTP/1.1 load through the broker (the control channel at FLASHDUTY_CRED_FD),\n"
        "straight to the upstream with --direct, or to a local proxy with --unix. Prints\n"
        "one JSON line.\n"
        "\n"
        "  --conns N          connections (default 1)\n"
        "  --requests M       measured requests in all (default: 1000 without --duration)\n"
        "  --duration S       measure for S seconds instead\n"
        "  --warmup W         requests before the measured ones (default 0)\n"
        "  --fresh            a new connection per request (dial + request + close)\n"
        "  --body BYTES       POST a JSON body of BYTES bytes (default: GET)\n"
        "  --inflight K       requests on the wire at once (default: conns)\n"
        "  --direct URL       http://127.0.0.1:PORT[/base] or https://...: no broker\n"
        "  --unix PATH        plain HTTP over the unix socket PATH: no broker (a local\n"
        "                     proxy that adds the key itself)\n"
        "  --cacert FILE      CA bundle for https (default: system CAs)\n"
        "  --key-file FILE    with --direct: put this key in the query (app_key=)\n"
        "  --idle             open every connection first, do at most ceil(M/N) requests\n"
        "                     on each, keep them open and report the broker's RSS\n"
        "  --hold S           with --idle: keep them open S more seconds (default 0),\n"
        "                     after a line on stdout saying they have settled\n"
        "  --timeout S        give up after S seconds without progress (default 30)\n"
        "  --label TEXT       copied into the JSON line\n");
}

enum {
    OPT_CONNS = 1000, OPT_REQUESTS, OPT_DURATION, OPT_WARMUP, OPT_FRESH, OPT_BODY, OPT_INFLIGHT,
    OPT_DIRECT, OPT_CACERT, OPT_KEY_FILE, OPT_IDLE, OPT_HOLD, OPT_TIMEOUT, OPT_LABEL, OPT_HELP,
    OPT_UNIX,
};

static const struct option load_options[] = {
    {"conns", required_argument, NULL, OPT_CONNS},
    {"requests", required_argument, NULL, OPT_REQUESTS},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"fresh", no_argument, NULL, OPT_FRESH},
    {"body", required_argument, NULL, OPT_BODY},
    {"inflight", required_argument, NULL, OPT_INFLIGHT},
    {"direct", required_argument, NULL, OPT_DIRECT},
    {"unix", required_argument, NULL, OPT_UNIX},
    {"cacert", required_argument, NULL, OPT_CACERT},
    {"key-file", required_argument, NULL, OPT_KEY_FILE},
    {"idle", no_argument, NULL, OPT_IDLE},
    {"hold", required_argument, NULL, OPT_HOLD},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"label", required_argument, NULL, OPT_LABEL},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static int bad(const char *what, const char *value)
{
    fprintf(stderr, "credload: invalid %s: '%.100s'\n", what, value);
    return 2;
}

static int parse_args(int argc, char **argv, struct load_opts *o)
{
    uint64_t v;
    int opt;

    o->conns = 1;
    o->timeout_s = 30;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", load_options, NULL)) != -1) {
        switch (opt) {
        case OPT_CONNS:
            if (parse_u64(optarg, 1, LOAD_MAX_CONNS, &v) != 0)
                return bad("--conns", optarg);
            o->conns = (unsigned)v;
            break;
        case OPT_REQUESTS:
            if (parse_u64(optarg, 0, UINT64_MAX / 2, &v) != 0)
                return bad("--requests", optarg);
            o->requests = v;
            o->requests_set = true;
            break;
        case OPT_WARMUP:
            if (parse_u64(optarg, 0, UINT64_MAX / 2, &v) != 0)
                return bad("--warmup", optarg);
            o->warmup = v;
            break;
        case OPT_DURATION:
            if (parse_seconds(optarg, 86400, &o->duration_s) != 0)
                return bad("--duration", optarg);
            break;
        case OPT_HOLD:
            if (parse_seconds(optarg, 86400, &o->hold_s) != 0)
                return bad("--hold", optarg);
            break;
        case OPT_TIMEOUT:
            if (parse_seconds(optarg, 86400, &o->timeout_s) != 0)
                return bad("--timeout", optarg);
            break;
        case OPT_BODY:
            if (parse_u64(optarg, 0, LOAD_BODY_MAX, &v) != 0)
                return bad("--body", optarg);
            o->body = (size_t)v;
            break;
        case OPT_INFLIGHT:
            if (parse_u64(optarg, 1, LOAD_MAX_CONNS, &v) != 0)
                return bad("--inflight", optarg);
            o->inflight = (unsigned)v;
            break;
        case OPT_FRESH: o->fresh = true; break;
        case OPT_IDLE: o->idle = true; break;
        case OPT_DIRECT: o->direct_url = optarg; break;
        case OPT_UNIX: o->unix_path = optarg; break;
        case OPT_CACERT: o->cacert = optarg; break;
        case OPT_KEY_FILE: o->key_file = optarg; break;
        case OPT_LABEL: o->label = optarg; break;
        case OPT_HELP: usage(stdout); exit(0);
        default:
            fprintf(stderr, "credload: unknown or incomplete option '%.100s'\n", argv[optind - 1]);
            return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    o->path = argv[optind];
    if (o->path[0] != '/' || strlen(o->path) >= LOAD_PATH_MAX)
        return bad("PATH (must start with '/')", o->path);
    for (const char *s = o->path; *s != '\0'; s++) {
        if ((unsigned char)*s <= ' ' || *s == 0x7f)
            return bad("PATH (no spaces or control bytes)", o->path);
    }
    if (o->inflight == 0 || o->inflight > o->conns)
        o->inflight = o->conns;
    if (o->duration_s == 0 && !o->requests_set && !o->idle)
        o->requests = 1000;
    if (o->duration_s > 0 && o->requests_set)
        return bad("combination", "--requests with --duration");
    if (o->fresh && o->idle)
        return bad("combination", "--fresh with --idle");
    if (o->key_file != NULL && o->direct_url == NULL)
        return bad("combination", "--key-file without --direct (the broker adds the key)");
    if (o->unix_path != NULL && o->direct_url != NULL)
        return bad("combination", "--unix with --direct");
    if (o->unix_path != NULL && o->cacert != NULL)
        return bad("combination", "--cacert with --unix (plain HTTP)");
    return -1;
}

static void print_json_string(const char *s)
{
    putchar('"');
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;

        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

/* This process's user + system CPU time so far: bench/run splits a run's CPU by process. */
static double cpu_seconds(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1.0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static unsigned load_open_conns(const struct load *L)
{
    unsigned open = 0;

    for (unsigned i = 0; i < L->o.conns; i++)
        open += L->conns[i].state == LC_READY;
    return open;
}

static void load_report(const struct load *L, const long long rss0[RSS_FIELDS],
                        const long long rss1[RSS_FIELDS])
{
    uint64_t requests = L->ok + L->err_status + L->err_io + L->err_refused + L->err_lost;
    uint64_t errors = requests - L->ok;
    double secs = (double)(L->t_end - L->t_begin) / (double)NS_PER_SEC;

    printf("{");
    if (L->o.label != NULL) {
        printf("\"label\":");
        print_json_string(L->o.label);
        printf(",");
    }
    printf("\"mode\":\"%s\",\"conns\":%u,\"fresh\":%s,\"requests\":%" PRIu64
           ",\"errors\":%" PRIu64 ",\"seconds\":%.3f,\"rps\":%.1f,\"p50_us\":%.1f,"
           "\"p90_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,\"bytes\":%" PRIu64
           ",\"mb_per_s\":%.1f,\"errors_by\":{\"status\":%" PRIu64 ",\"io\":%" PRIu64
           ",\"refused\":%" PRIu64 ",\"lost\":%" PRIu64 "}",
           L->kind == TARGET_BROKER ? "broker"
           : L->kind == TARGET_TLS  ? "direct-tls"
           : L->kind == TARGET_UNIX ? "unix"
                                    : "direct-plain",
           L->o.conns, L->o.fresh ? "true" : "false", requests, errors, secs,
           secs > 0 ? (double)L->ok / secs : 0.0,
           (double)hist_percentile(L, 0.50, L->ok) / 1000.0,
           (double)hist_percentile(L, 0.90, L->ok) / 1000.0,
           (double)hist_percentile(L, 0.99, L->ok) / 1000.0, (double)L->max_ns / 1000.0, L->bytes,
           secs > 0 ? (double)L->bytes / secs / 1e6 : 0.0, L->err_status, L->err_io,
           L->err_refused, L->err_lost);
    printf(",\"cpu_s\":%.3f", cpu_seconds());
    if (L->o.idle) {
        unsigned open = load_open_conns(L);

        printf(",\"open_conns\":%u,\"broker_rss_kb\":[%lld,%lld],\"broker_rss_anon_kb\":"
               "[%lld,%lld],\"broker_rss_file_kb\":[%lld,%lld],\"broker_pss_kb\":[%lld,%lld],"
               "\"broker_uss_kb\":[%lld,%lld]",
               open, rss0[0], rss1[0], rss0[1], rss1[1], rss0[2], rss1[2], rss0[3], rss1[3],
               rss0[4], rss1[4]);
    }
    printf("}\n");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    static struct load load; /* the histogram is large: not on the stack */
    struct load *L = &load;
    char base[LOAD_PATH_MAX];
    char *key = NULL;
    long long rss0[RSS_FIELDS] = {-1, -1, -1, -1, -1}, rss1[RSS_FIELDS] = {-1, -1, -1, -1, -1};
    int r;

    if ((r = parse_args(argc, argv, &L->o)) >= 0)
        return r;
    signal(SIGPIPE, SIG_IGN);
    base[0] = '\0';
    L->ctl_fd = -1;
    if (L->o.direct_url != NULL) {
        if (load_parse_url(L, L->o.direct_url, base, sizeof(base)) != 0)
            return bad("--direct URL (http[s]://127.0.0.1:PORT[/base])", L->o.direct_url);
        if (L->o.key_file != NULL && (r = read_key(L->o.key_file, &key)) != 0) {
            fprintf(stderr, "credload: cannot read the key from %.200s: %s\n", L->o.key_file,
                    strerror(-r));
            return 2;
        }
        if (L->kind == TARGET_TLS && (r = load_tls_init(L)) != 0) {
            fprintf(stderr, "credload: TLS set-up failed (--cacert %.200s)\n",
                    L->o.cacert != NULL ? L->o.cacert : "default");
            return 2;
        }
    } else if (L->o.unix_path != NULL) {
        if (strlen(L->o.unix_path) >= sizeof(L->uaddr.sun_path))
            return bad("--unix PATH (too long for a unix socket)", L->o.unix_path);
        memset(&L->uaddr, 0, sizeof(L->uaddr));
        L->uaddr.sun_family = AF_UNIX;
        memcpy(L->uaddr.sun_path, L->o.unix_path, strlen(L->o.unix_path));
        L->kind = TARGET_UNIX;
    } else {
        const char *v = getenv("FLASHDUTY_CRED_FD");
        uint64_t fd;
        int type = 0;
        socklen_t len = sizeof(type);

        if (v == NULL || parse_u64(v, 3, INT_MAX, &fd) != 0) {
            fprintf(stderr, "credload: not under credbroker (FLASHDUTY_CRED_FD unset or bad); "
                            "use --direct URL to call the upstream itself\n");
            return 2;
        }
        if (getsockopt((int)fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_SEQPACKET) {
            fprintf(stderr, "credload: FLASHDUTY_CRED_FD=%d is not a SOCK_SEQPACKET socket\n",
                    (int)fd);
            return 2;
        }
        L->kind = TARGET_BROKER;
        L->ctl_fd = (int)fd;
    }
    r = load_build_request(L, base, key);
    if (key != NULL) {
        explicit_bzero(key, strlen(key));
        free(key);
    }
    if (r != 0) {
        fprintf(stderr, "credload: request too long\n");
        return 2;
    }
    if ((L->conns = calloc(L->o.conns, sizeof(*L->conns))) == NULL ||
        (L->rbuf = malloc(LOAD_READ_BUF)) == NULL || ring_init(&L->dial_sent, L->o.conns) != 0 ||
        ring_init(&L->dial_wait, L->o.conns) != 0 || ring_init(&L->kickq, L->o.conns) != 0 ||
        ring_init(&L->waitq, L->o.conns) != 0 || (L->ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        fprintf(stderr, "credload: out of memory\n");
        return 1;
    }
    for (unsigned i = 0; i < L->o.conns; i++)
        L->conns[i].fd = -1;
    if (L->kind == TARGET_BROKER)
        ctl_want(L, EPOLLIN);

    if (L->o.idle) {
        read_rss(getppid(), rss0);
        load_run(L, true);
    }
    if (L->o.warmup > 0) {
        L->measuring = false;
        L->phase_limit = L->o.warmup;
        L->per_conn_cap = 0;
        load_run(L, false);
    }
    L->measuring = true;
    L->stopping = false;
    L->phase_started = 0;
    L->phase_limit = L->o.requests;
    if (L->o.idle && L->o.requests > 0)
        L->per_conn_cap = (unsigned)((L->o.requests + L->o.conns - 1) / L->o.conns);
    for (unsigned i = 0; i < L->o.conns && L->o.idle; i++)
        L->conns[i].served = 0;
    L->t_begin = now_ns();
    L->deadline_ns = L->o.duration_s > 0
                         ? L->t_begin + (uint64_t)(L->o.duration_s * (double)NS_PER_SEC)
                         : 0;
    if (L->o.requests > 0 || L->o.duration_s > 0)
        load_run(L, false);
    L->t_end = now_ns();
    if (L->o.idle) {
        /* Let the broker settle (deferred frees, upstream pool) before reading its RSS. */
        load_idle(L, 1000);
        read_rss(getppid(), rss1);
        if (L->o.hold_s > 0) {
            /* Says when the connections have settled, for a reader outside: the broker is
             * not dumpable, and a command in its own user namespace cannot read its smaps. */
            printf("credload: settled, %u connections open, holding %.1f s\n",
                   load_open_conns(L), L->o.hold_s);
            fflush(stdout);
            load_idle(L, (uint64_t)(L->o.hold_s * 1000));
        }
    }
    load_report(L, rss0, rss1);
    for (unsigned i = 0; i < L->o.conns; i++)
        conn_close(L, &L->conns[i]);
    SSL_CTX_free(L->ssl_ctx);
    /* 1 if anything failed: a benchmark with errors is not a result. */
    return (L->err_status + L->err_io + L->err_refused + L->err_lost) > 0 ? 1 : 0;
}
