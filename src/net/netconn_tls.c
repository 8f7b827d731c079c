/*
 * netconn_tls.c - TLS for a connection: OpenSSL over one BIO of our own, the process's
 * client context and its session cache. See netconn.h.
 *
 * The BIO (tls__bio_*) reads the ciphertext where the socket's read left it and writes
 * what OpenSSL sends straight onto the socket's queue: memory BIOs took a copy of every
 * byte each way (a sixth of the broker's copies of a download, bench W3). What OpenSSL
 * has not read when the read's callback returns (the start of the next record, or all of
 * it while the owner is not reading) is kept in the connection's `rkeep`: the read
 * buffer is the loop's, and the next read overwrites it.
 *
 * Not for: sockets. This file never touches the network; netconn.c moves the bytes.
 *
 * Every OpenSSL call that can fail starts from an empty error queue and leaves it
 * empty (ERR_clear_error), so one connection's errors never show in another's. On the
 * paths every request takes, tls__errors_clear looks first: clearing an empty queue
 * costs more than the rest of an SSL_read of a small record.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "err.h"
#include "netconn_internal.h"

/* Sessions remembered, one per "host:port": the least recently stored goes first. */
#define NET_TLS_SESSIONS_MAX 64
/* Plaintext per SSL_write: the queue grows by about this much per step. */
#define NET_TLS_WRITE_STEP (64 * 1024)

struct net_tls_session {
    char *key; /* "host:port"; NULL: a free slot */
    SSL_SESSION *sess;
    uint64_t stamp;
};

struct net_tls_ctx {
    SSL_CTX *ctx;
    BIO_METHOD *bio; /* tls__bio_*: outlives every SSL of ctx (each holds a reference) */
    struct net_tls_session sessions[NET_TLS_SESSIONS_MAX];
    uint64_t clock;
    unsigned refs; /* the owner's, and one per connection that may use ctx */
};

/* ---- the session cache ---- */

static struct net_tls_session *tls__cache_find(struct net_tls_ctx *tls, const char *key)
{
    for (size_t i = 0; i < NET_TLS_SESSIONS_MAX; i++)
        if (tls->sessions[i].key != NULL && strcmp(tls->sessions[i].key, key) == 0)
            return &tls->sessions[i];
    return NULL;
}

static void tls__cache_clear(struct net_tls_session *e)
{
    free(e->key);
    SSL_SESSION_free(e->sess);
    memset(e, 0, sizeof(*e));
}

static void tls__cache_drop(struct net_tls_ctx *tls, const char *key)
{
    struct net_tls_session *e = tls__cache_find(tls, key);

    if (e != NULL)
        tls__cache_clear(e);
}

/* Takes the caller's reference to sess on success (0); ERR_NOMEM leaves it. */
static int tls__cache_put(struct net_tls_ctx *tls, const char *key, SSL_SESSION *sess)
{
    struct net_tls_session *e = tls__cache_find(tls, key);
    char *k = NULL;

    if (e == NULL) {
        e = &tls->sessions[0];
        for (size_t i = 0; i < NET_TLS_SESSIONS_MAX && e->key != NULL; i++)
            if (tls->sessions[i].key == NULL || tls->sessions[i].stamp < e->stamp)
                e = &tls->sessions[i];
        if ((k = strdup(key)) == NULL)
            return ERR_NOMEM;
        tls__cache_clear(e);
        e->key = k;
    } else {
        SSL_SESSION_free(e->sess);
    }
    e->sess = sess;
    e->stamp = ++tls->clock;
    return 0;
}

/* OpenSSL's new-session callback: the handshake's session (TLS 1.2), or each TLS 1.3
 * ticket as it arrives after the handshake. The latest one is kept. Returning 1 keeps
 * OpenSSL's reference. */
static int tls__on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    struct net_conn *c = SSL_get_app_data(ssl);

    if (c == NULL || c->tls == NULL || !SSL_SESSION_is_resumable(sess))
        return 0;
    return tls__cache_put(c->tls, c->hostport, sess) == 0 ? 1 : 0;
}

/* ---- the BIO between OpenSSL and the socket ---- */

static int tls__bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

/* Ciphertext for OpenSSL: what was kept from earlier reads, then the socket's current
 * read. None: "retry" (SSL_ERROR_WANT_READ). */
static int tls__bio_read(BIO *b, char *dst, int want)
{
    struct net_conn *c = BIO_get_data(b);
    size_t n = 0, kept;

    BIO_clear_retry_flags(b);
    if (c == NULL || want <= 0)
        return 0;
    if (c->rkeep != NULL && (kept = buf_len(c->rkeep)) > 0) {
        n = kept < (size_t)want ? kept : (size_t)want;
        memcpy(dst, buf_ptr(c->rkeep), n);
        (void)buf_consume(c->rkeep, n);
        if (n == kept) {
            /* An idle pooled connection holds no buffer (bench W4). */
            buf_free(c->rkeep);
            c->rkeep = NULL;
        }
    } else if (c->rview_len > 0) {
        n = c->rview_len < (size_t)want ? c->rview_len : (size_t)want;
        memcpy(dst, c->rview, n);
        c->rview += n;
        c->rview_len -= n;
    }
    if (n == 0) {
        BIO_set_retry_read(b);
        return -1;
    }
    return (int)n;
}

/* What OpenSSL sends goes onto the socket's queue; flushed by the caller. */
static int tls__bio_write(BIO *b, const char *data, int len)
{
    struct net_conn *c = BIO_get_data(b);

    BIO_clear_retry_flags(b);
    if (c == NULL || len < 0)
        return -1;
    if (conn__queue(c, (const uint8_t *)data, (size_t)len) != 0) {
        c->queue_failed = true; /* told as "out of memory", not as OpenSSL's error */
        return -1;
    }
    return len;
}

/* Ciphertext OpenSSL has not read yet: what was kept, then the current read's rest. */
static size_t tls__ciphertext_left(const struct net_conn *c)
{
    return (c->rkeep != NULL ? buf_len(c->rkeep) : 0) + c->rview_len;
}

static long tls__bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    const struct net_conn *c = BIO_get_data(b);

    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_PENDING:
        return c == NULL ? 0 : (long)tls__ciphertext_left(c);
    case BIO_CTRL_FLUSH:
        return 1;
    default:
        return 0;
    }
}

static BIO_METHOD *tls__bio_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "credbroker socket");

    if (m != NULL &&
        (BIO_meth_set_create(m, tls__bio_create) != 1 || BIO_meth_set_read(m, tls__bio_read) != 1 ||
         BIO_meth_set_write(m, tls__bio_write) != 1 || BIO_meth_set_ctrl(m, tls__bio_ctrl) != 1)) {
        BIO_meth_free(m);
        m = NULL;
    }
    return m;
}

/* ---- the context ---- */

int net_tls_ctx_new(const char *cacert, struct net_tls_ctx **out)
{
    struct net_tls_ctx *tls = NULL;
    int r = ERR_NOMEM;

    *out = NULL;
    ERR_clear_error();
    if ((tls = calloc(1, sizeof(*tls))) == NULL || (tls->bio = tls__bio_method()) == NULL ||
        (tls->ctx = SSL_CTX_new(TLS_client_method())) == NULL)
        goto out;
    tls->refs = 1;
    if (SSL_CTX_set_min_proto_version(tls->ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_ciphersuites(tls->ctx, NET_TLS13_SUITES) != 1)
        goto out;
    SSL_CTX_set_verify(tls->ctx, SSL_VERIFY_PEER, NULL);
    /* Keys and tokens pass through these buffers: OpenSSL wipes the plaintext it held
     * once it is handed over. No renegotiation (a TLS 1.2 server asking would make a
     * write need a read), no compression (CRIME). Not SSL_MODE_RELEASE_BUFFERS: it
     * frees, so cleanses, the 17 KiB record buffers every time they empty, twice per
     * request (a fifth of a brokered request's instructions, bench CG); a pooled
     * connection keeps its two instead. */
    SSL_CTX_set_options(tls->ctx,
                        SSL_OP_CLEANSE_PLAINTEXT | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    r = ERR_INVALID;
    if (cacert != NULL ? SSL_CTX_load_verify_file(tls->ctx, cacert) != 1
                       : SSL_CTX_set_default_verify_paths(tls->ctx) != 1)
        goto out;
    /* Our own cache, keyed by host:port: OpenSSL's internal one is a server's idea. */
    SSL_CTX_set_session_cache_mode(tls->ctx,
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(tls->ctx, tls__on_new_session);
    *out = tls; /* transferred */
    tls = NULL;
    r = 0;
out:
    ERR_clear_error();
    if (tls != NULL) {
        SSL_CTX_free(tls->ctx);
        BIO_meth_free(tls->bio);
        free(tls);
    }
    return r;
}

int net_tls_cacert_check(const char *cacert)
{
    static const char *const markers[] = {"-----BEGIN CERTIFICATE-----",
                                          "-----BEGIN TRUSTED CERTIFICATE-----"};
    struct stat st;
    char *text = NULL;
    size_t got = 0;
    int fd, r = 0;

    if ((fd = open(cacert, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
        return -errno;
    if (fstat(fd, &st) != 0)
        r = -errno;
    else if (!S_ISREG(st.st_mode))
        r = ERR_INVALID;
    else if ((size_t)st.st_size > NET_CACERT_MAX)
        r = ERR_TOO_LARGE;
    else if ((text = malloc((size_t)st.st_size + 1)) == NULL)
        r = ERR_NOMEM;
    while (r == 0 && got < (size_t)st.st_size) {
        ssize_t n = read(fd, text + got, (size_t)st.st_size - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r = n < 0 ? -errno : ERR_INVALID; /* shrank under us */
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    if (r == 0) {
        r = ERR_INVALID;
        for (size_t i = 0; i < sizeof(markers) / sizeof(markers[0]); i++) {
            if (memmem(text, got, markers[i], strlen(markers[i])) != NULL)
                r = 0;
        }
    }
    free(text);
    return r;
}

void tls__ctx_ref(struct net_tls_ctx *tls)
{
    tls->refs++;
}

void net_tls_ctx_free(struct net_tls_ctx *tls)
{
    if (tls == NULL || --tls->refs > 0)
        return;
    for (size_t i = 0; i < NET_TLS_SESSIONS_MAX; i++)
        tls__cache_clear(&tls->sessions[i]);
    SSL_CTX_free(tls->ctx);
    BIO_meth_free(tls->bio);
    explicit_bzero(tls, sizeof(*tls));
    free(tls);
}

/* ---- one connection ---- */

/* Why the last OpenSSL call failed, for an error line; empties the error queue. */
static void tls__why(const struct net_conn *c, char *dst, size_t len)
{
    long v = c->ssl != NULL ? SSL_get_verify_result(c->ssl) : X509_V_OK;
    unsigned long e = ERR_get_error();
    const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;

    if (v != X509_V_OK)
        snprintf(dst, len, "certificate verify failed: %s", X509_verify_cert_error_string(v));
    else if (reason != NULL)
        snprintf(dst, len, "%s", reason);
    else if (e != 0)
        snprintf(dst, len, "OpenSSL error %lx", e);
    else
        snprintf(dst, len, "unexpected TLS failure");
    ERR_clear_error();
}

static bool is_ip_literal(const char *host)
{
    unsigned char a[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

int tls__start(struct net_conn *c)
{
    struct net_tls_session *e;
    int r = ERR_NOMEM;

    assert(c->ssl == NULL && c->tls != NULL);
    ERR_clear_error();
    if ((c->ssl = SSL_new(c->tls->ctx)) == NULL || (c->bio = BIO_new(c->tls->bio)) == NULL)
        goto out;
    BIO_set_data(c->bio, c);
    SSL_set_bio(c->ssl, c->bio, c->bio); /* transferred: the SSL frees it */
    SSL_set_connect_state(c->ssl);
    SSL_set_app_data(c->ssl, c);
    r = ERR_INVALID;
    if (is_ip_literal(c->host)) {
        /* RFC 6066 3: no SNI for an address; the certificate must name the IP. */
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), c->host) != 1)
            goto out;
    } else {
        SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (SSL_set_tlsext_host_name(c->ssl, c->host) != 1 || SSL_set1_host(c->ssl, c->host) != 1)
            goto out;
    }
    if (c->alpn_wire_len > 0 &&
        SSL_set_alpn_protos(c->ssl, c->alpn_wire, (unsigned)c->alpn_wire_len) != 0)
        goto out;
    if ((e = tls__cache_find(c->tls, c->hostport)) != NULL && SSL_SESSION_is_resumable(e->sess))
        SSL_set_session(c->ssl, e->sess); /* a failure only costs the resumption */
    r = 0;
out:
    ERR_clear_error();
    return r;
}

void tls__handshake(struct net_conn *c)
{
    const unsigned char *proto;
    unsigned proto_len;
    char why[NET_ERROR_MAX];
    int r, e;

    ERR_clear_error();
    r = SSL_do_handshake(c->ssl);
    e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_NONE || e == SSL_ERROR_WANT_READ) {
        if (c->queue_failed) {
            connect__fail(c, "TLS handshake with %s failed: out of memory", c->hostport);
            return;
        }
        conn__flush(c);
        if (c->released)
            return;
    }
    if (e == SSL_ERROR_WANT_READ) {
        if (conn__read_uv(c) != 0)
            connect__fail(c, "TLS handshake with %s failed: cannot read", c->hostport);
        return;
    }
    if (e != SSL_ERROR_NONE) {
        tls__why(c, why, sizeof(why));
        tls__cache_drop(c->tls, c->hostport);
        /* The alert OpenSSL wrote goes out if the socket takes it now. */
        conn__flush(c);
        if (!c->released)
            connect__fail(c, "TLS handshake with %s failed: %s", c->hostport, why);
        return;
    }
    SSL_get0_alpn_selected(c->ssl, &proto, &proto_len); /* NULL, 0 when none */
    if (proto == NULL || proto_len >= sizeof(c->alpn))
        proto_len = 0;
    if (proto_len > 0)
        memcpy(c->alpn, proto, proto_len);
    c->alpn[proto_len] = '\0';
    c->reused = SSL_session_reused(c->ssl) == 1;
    ERR_clear_error();
    connect__done(c);
}

/* The socket's bytes are read by OpenSSL where they lie (the BIO's view) while the handshake
 * or the owner takes them; what it left of them is kept for later (rkeep). */
void tls__on_data(struct net_conn *c, const uint8_t *data, size_t len)
{
    c->rview = data;
    c->rview_len = len;
    if (c->state == NET_HANDSHAKE)
        tls__handshake(c);
    else if (c->reading && c->have_events)
        tls__pump(c);
    data = c->rview;
    len = c->rview_len;
    c->rview = NULL;
    c->rview_len = 0;
    if (len == 0 || c->released)
        return;
    if ((c->rkeep == NULL && (c->rkeep = buf_new(SIZE_MAX, 0)) == NULL) ||
        buf_put(c->rkeep, data, len) != 0) {
        if (c->state == NET_OPEN)
            conn__end(c, "out of memory");
        else
            connect__fail(c, "TLS handshake with %s failed: out of memory", c->hostport);
    }
}

/* ERR_clear_error, when there is something to clear. */
static void tls__errors_clear(void)
{
    if (ERR_peek_error() != 0)
        ERR_clear_error();
}

/* The end of the stream an SSL_read reported (e: SSL_get_error of it). */
static void tls__read_ended(struct net_conn *c, int e)
{
    char why[NET_ERROR_MAX], reason[NET_ERROR_MAX];

    if (e == SSL_ERROR_ZERO_RETURN) {
        conn__end(c, NULL); /* close_notify */
    } else {
        tls__why(c, why, sizeof(why));
        snprintf(reason, sizeof(reason), "TLS connection to %s failed: %s", c->hostport, why);
        conn__end(c, reason);
    }
}

/* Nothing is left for an SSL_read to find: no ciphertext from the socket, no end of
 * stream to report, nothing OpenSSL holds (it reads no further than the record it
 * decrypts, into a chunk that holds a whole one: a safeguard). Asking anyway, after a read
 * that found a record, would cost a failing SSL_read and its error check, 3 % of a small
 * request's instructions (bench CG). */
static bool tls__drained(const struct net_conn *c)
{
    return !c->eof && tls__ciphertext_left(c) == 0 && !SSL_has_pending(c->ssl);
}

void tls__pump(struct net_conn *c)
{
    /* Not zeroed on every call (-ftrivial-auto-var-init): 16 KiB of stores per read,
     * a sixth of a brokered request's instructions (bench CG). What SSL_read put in it
     * is wiped before the pump returns: each record overwrites the one before, so once
     * per pump, not once per record (a pass over every byte of a download, bench W3). */
    uint8_t chunk[NET_TLS_CHUNK] __attribute__((uninitialized));
    size_t used = 0; /* the most of chunk any SSL_read filled: wiped once, at the end */
    int n, e;

    while (c->reading && c->have_events && !c->closed && !c->released) {
        if (used > 0 && tls__drained(c))
            break;
        tls__errors_clear();
        if ((n = SSL_read(c->ssl, chunk, sizeof(chunk))) > 0) {
            used = (size_t)n > used ? (size_t)n : used;
            c->ev.on_read(c, chunk, (size_t)n, c->ud);
            continue;
        }
        e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_READ) {
            if (!c->eof)
                break;
            /* An EOF without close_notify ends the stream as cleanly as one with it
             * (the protocol above has its own framing), unless it cut a record. */
            conn__end(c, BIO_ctrl_pending(c->bio) == 0
                             ? NULL
                             : "TLS: connection closed in the middle of a record");
        } else {
            tls__read_ended(c, e);
        }
        break;
    }
    explicit_bzero(chunk, used);
    tls__errors_clear();
    /* Reading may have made OpenSSL answer (a TLS 1.3 KeyUpdate). */
    if (!c->released && !c->write_failed) {
        if (!c->queue_failed)
            conn__flush(c);
        else
            conn__end(c, "out of memory");
    }
}

int tls__write(struct net_conn *c, const uint8_t *data, size_t len)
{
    int n;

    for (size_t off = 0; off < len; off += (size_t)n) {
        size_t step = len - off < NET_TLS_WRITE_STEP ? len - off : NET_TLS_WRITE_STEP;

        tls__errors_clear();
        /* Onto the queue a write never waits: all of step, or a fatal error. */
        if ((n = SSL_write(c->ssl, data + off, (int)step)) <= 0) {
            if (c->queue_failed)
                return ERR_NOMEM;
            /* Here, not at the top: -ftrivial-auto-var-init zeroed 1 KiB every write. */
            char why[NET_ERROR_MAX], reason[NET_ERROR_MAX];

            tls__why(c, why, sizeof(why));
            snprintf(reason, sizeof(reason), "TLS write to %s failed: %s", c->hostport, why);
            c->write_failed = true;
            conn__end(c, reason);
            return ERR_CLOSED;
        }
    }
    return 0;
}

void tls__shutdown(struct net_conn *c)
{
    if (c->ssl == NULL || !SSL_is_init_finished(c->ssl))
        return;
    ERR_clear_error();
    SSL_shutdown(c->ssl); /* 0: our close_notify queued, the peer's not awaited */
    ERR_clear_error();
    conn__offer_out(c); /* never waited for */
}

void tls__free(struct net_conn *c)
{
    if (c->ssl != NULL) {
        SSL_set_app_data(c->ssl, NULL);
        SSL_free(c->ssl);
    }
    c->ssl = NULL;
    c->bio = NULL;
    buf_free(c->rkeep);
    c->rkeep = NULL;
    if (c->tls != NULL)
        net_tls_ctx_free(c->tls);
    c->tls = NULL;
}
