/*
 * webfetch.c - one webfetch request on the loop. See webfetch.h.
 *
 * libcurl runs on the loop through httpc.h, one client per request: nothing is shared
 * between two fetches, no connection and no DNS answer. Two timers: the deadline, and
 * "kick", which starts each hop and delivers the outcome from a loop turn of its own, so
 * that done never runs from inside webfetch_start, webfetch_cancel or libcurl.
 *
 * The request's memory goes when its last libuv handle is closed, after webfetch_free.
 */
#include <errno.h>
#include <stdarg.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "ascii.h"
#include "curl_api.h"
#include "err.h"
#include "httpc.h"
#include "log.h"
#include "netaddr.h"
#include "netguard.h"
#include "webfetch.h"
#include "webproxy.h"

/* The Go runner's headers (RUNNER-OPS.md 8). */
#define WEBFETCH_USER_AGENT                                                                   \
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "       \
    "Chrome/120.0.0.0 Safari/537.36"
#define WEBFETCH_ACCEPT_LANGUAGE "en-US,en;q=0.9,zh-CN;q=0.8,zh;q=0.7"
#define WEBFETCH_ACCEPT_ENCODING "gzip, br"
#define WEBFETCH_TOO_LARGE "response too large (exceeds 5MB limit)"
#define WEBFETCH_TIMED_OUT "request timed out"
#define WEBFETCH_ERROR_MAX 1024

struct webfetch {
    uv_loop_t *loop;
    webfetch_done_cb done;
    void *data;
    char *url;                   /* the current hop's */
    char *accept, *cacert;
    uint64_t deadline;           /* in uv_now's time */
    size_t max_body;
    const struct netguard *guard;
    const struct webproxy *proxy;
    struct httpc *client;
    struct httpc_xfer *xfer;     /* the current hop's */
    CURL *easy;                  /* its handle */
    struct curl_slist *headers;
    uv_timer_t deadline_timer, kick;
    uv_getaddrinfo_t resolve;
    bool resolving;              /* resolve is in flight (it holds f) */
    unsigned requests;           /* made in this chain */
    /* the current hop */
    char host[256];              /* as in the URL */
    const char *proxy_url;       /* through this proxy (its own address is exempt), or NULL */
    bool host_open;              /* allow_hosts names the host: any address */
    char refused[NETADDR_TEXT_MAX]; /* an address the guard refused, or "" */
    long status;                 /* of the response whose head is being read */
    bool has_location, coded, redirect, in_body;
    curl_off_t content_length;   /* -1: not given */
    uint8_t *body;
    size_t body_len, body_cap;
    /* the outcome */
    bool failed;                 /* error holds the text, decided where it happened */
    char error[WEBFETCH_ERROR_MAX];
    bool finished;               /* the outcome is decided; done is due or has run */
    bool delivered;
    struct webfetch_response resp;
    bool released;               /* webfetch_free ran */
    unsigned open_handles;
};

/* Set with the first request; every call below happens after that. */
static const struct curl_api *libcurl;

static void webfetch__hop_begin(struct webfetch *f);
static void on_kick(uv_timer_t *t);

/* ---- the outcome ---- */

static void webfetch__maybe_free(struct webfetch *f)
{
    if (!f->released || f->open_handles > 0)
        return;
    free(f->url);
    free(f->accept);
    free(f->cacert);
    free(f->body);
    free(f->resp.final_url);
    free(f->resp.content_type);
    free(f->resp.body);
    free(f);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct webfetch *f = h->data;

    f->open_handles--;
    webfetch__maybe_free(f);
}

/* Lets go of the current hop's transfer. Outside libcurl's callbacks only. */
static void webfetch__drop_xfer(struct webfetch *f)
{
    httpc_xfer_free(f->xfer);
    f->xfer = NULL;
    f->easy = NULL;
    if (libcurl != NULL)
        libcurl->slist_free_all(f->headers);
    f->headers = NULL;
}

/* The outcome is decided (f->failed with f->error, or f->resp): stop everything and
 * deliver it from the kick timer. */
static void webfetch__finish(struct webfetch *f)
{
    if (f->finished)
        return;
    f->finished = true;
    uv_timer_stop(&f->deadline_timer);
    webfetch__drop_xfer(f);
    httpc_close(f->client); /* its connections and handles */
    f->client = NULL;
    if (f->resolving)
        (void)uv_cancel((uv_req_t *)&f->resolve); /* else it ends on its own: f waits */
    uv_timer_start(&f->kick, on_kick, 0, 0);
}

static void webfetch__fail(struct webfetch *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void webfetch__fail(struct webfetch *f, const char *fmt, ...)
{
    va_list ap;

    if (f->failed || f->finished)
        return;
    va_start(ap, fmt);
    vsnprintf(f->error, sizeof(f->error), fmt, ap);
    va_end(ap);
    f->failed = true;
}

/* The URL as Go prints it in an error: a password in it shows as "***" (Go's
 * stripPassword). */
static void webfetch__error_url(const char *url, char *out, size_t len)
{
    CURLU *u = libcurl != NULL ? libcurl->url() : NULL;
    char *pw = NULL, *s = NULL;

    snprintf(out, len, "%s", url);
    if (u == NULL)
        return;
    if (libcurl->url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        libcurl->url_get(u, CURLUPART_PASSWORD, &pw, 0) == CURLUE_OK &&
        libcurl->url_set(u, CURLUPART_PASSWORD, "***", 0) == CURLUE_OK &&
        libcurl->url_get(u, CURLUPART_URL, &s, 0) == CURLUE_OK)
        snprintf(out, len, "%s", s);
    libcurl->free(pw);
    libcurl->free(s);
    libcurl->url_cleanup(u);
}

/* Go's `request failed: Get "<url>": <reason>` for url. */
static void webfetch__fail_get(struct webfetch *f, const char *url, const char *reason)
{
    char shown[512];

    webfetch__error_url(url, shown, sizeof(shown));
    webfetch__fail(f, "request failed: Get \"%s\": %s", shown, reason);
}

/*
 * Every connection libcurl makes comes here first, with the address it is about to
 * connect to: the one place the guard is sure to see what is really reached, whatever
 * DNS answered before or the redirect chain said.
 */
static bool may_connect(void *ud, const struct sockaddr *sa)
{
    struct webfetch *f = ud;
    struct netaddr addr;

    if (f->proxy_url != NULL || f->host_open)
        return true; /* the proxy's address is exempt; allow_hosts names this host */
    if (!netaddr_from_sockaddr(sa, &addr)) {
        snprintf(f->refused, sizeof(f->refused), "(address family %d)", sa->sa_family);
        return false;
    }
    if (!netguard_addr_allowed(f->guard, &addr)) {
        netaddr_format(&addr, f->refused, sizeof(f->refused));
        return false;
    }
    return true;
}

/* ---- one hop's response ---- */

static bool is_followed_redirect(long status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* The end of a head: a redirect to follow (its body is dropped), or the final response,
 * whose declared size is checked before any of it is read. */
static bool webfetch__head_done(struct webfetch *f)
{
    if (f->status >= 100 && f->status < 200)
        return true; /* an interim response: the real one follows */
    if (is_followed_redirect(f->status) && f->has_location) {
        f->redirect = true;
        return true;
    }
    f->in_body = true;
    /* Go fails on a Content-Length over the cap only when nothing decodes the body. */
    if (!f->coded && f->content_length > (curl_off_t)f->max_body) {
        webfetch__fail(f, WEBFETCH_TOO_LARGE);
        return false;
    }
    return true;
}

static bool on_header(void *ud, const char *h, size_t n)
{
    struct webfetch *f = ud;
    size_t vlen;
    const char *v;
    char num[32];

    if (n >= 5 && memcmp(h, "HTTP/", 5) == 0) {
        const char *sp = memchr(h, ' ', n);

        f->status = sp != NULL ? strtol(sp + 1, NULL, 10) : 0;
        f->has_location = f->coded = f->redirect = false;
        f->content_length = -1;
    } else if (n <= 2 && (h[0] == '\r' || h[0] == '\n')) {
        return webfetch__head_done(f);
    } else if (httpc_header_value(h, n, "content-length", &v, &vlen)) {
        if (vlen > 0 && vlen < sizeof(num)) {
            memcpy(num, v, vlen);
            num[vlen] = '\0';
            f->content_length = (curl_off_t)strtoll(num, NULL, 10);
        }
    } else if (httpc_header_value(h, n, "content-encoding", &v, &vlen)) {
        f->coded = vlen > 0 && !ascii_ieq_lower(v, vlen, "identity");
    } else if (httpc_header_value(h, n, "location", &v, &vlen)) {
        f->has_location = vlen > 0;
    }
    return true;
}

static bool on_body(void *ud, const char *data, size_t n)
{
    struct webfetch *f = ud;

    if (f->redirect)
        return true; /* a redirect's body: read and dropped, as Go does */
    if (n > f->max_body - f->body_len) {
        webfetch__fail(f, WEBFETCH_TOO_LARGE);
        return false;
    }
    if (f->body_len + n > f->body_cap) {
        size_t cap = f->body_cap < 65536 ? 65536 : f->body_cap * 2;
        uint8_t *p;

        while (cap < f->body_len + n)
            cap *= 2;
        if (cap > f->max_body)
            cap = f->max_body;
        if ((p = realloc(f->body, cap)) == NULL) {
            webfetch__fail(f, "failed to read response: out of memory");
            return false;
        }
        f->body = p;
        f->body_cap = cap;
    }
    memcpy(f->body + f->body_len, data, n);
    f->body_len += n;
    return true;
}

/* ---- hops ---- */

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

/* The final response: what done gets. */
static void webfetch__take_response(struct webfetch *f)
{
    char *effective = NULL, *ctype = NULL;

    libcurl->easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &f->resp.status);
    libcurl->easy_getinfo(f->easy, CURLINFO_EFFECTIVE_URL, &effective);
    libcurl->easy_getinfo(f->easy, CURLINFO_CONTENT_TYPE, &ctype);
    f->resp.final_url = strdup(effective != NULL ? effective : f->url);
    f->resp.content_type = dup_or_null(ctype);
    if (f->resp.final_url == NULL || (ctype != NULL && f->resp.content_type == NULL)) {
        webfetch__fail(f, "failed to read response: out of memory");
        return;
    }
    f->resp.body = f->body;
    f->resp.body_len = f->body_len;
    f->body = NULL;
    f->body_len = f->body_cap = 0;
}

/* The next hop of a redirect, or Go's error for it. */
static void webfetch__follow(struct webfetch *f)
{
    char *target = NULL, *copy;

    libcurl->easy_getinfo(f->easy, CURLINFO_REDIRECT_URL, &target);
    if (target == NULL) { /* a Location libcurl cannot make a URL of: the response stands */
        webfetch__take_response(f);
        return;
    }
    if (f->requests >= WEBFETCH_MAX_REDIRECTS) {
        webfetch__fail_get(f, target, "stopped after 10 redirects");
        return;
    }
    if ((copy = strdup(target)) == NULL) {
        webfetch__fail(f, "out of memory");
        return;
    }
    free(f->url);
    f->url = copy;
    webfetch__drop_xfer(f);
    f->body_len = 0;
    uv_timer_start(&f->kick, on_kick, 0, 0); /* the next hop, from a loop turn of its own */
}

static void on_done(struct httpc_xfer *x, CURLcode rc, const char *reason, void *ud)
{
    struct webfetch *f = ud;
    long status = 0;

    (void)x;
    if (f->failed) {
        /* decided in a callback */
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        webfetch__fail(f, WEBFETCH_TIMED_OUT);
    } else if (rc != CURLE_OK && f->refused[0] != '\0' && rc == CURLE_COULDNT_CONNECT) {
        char why[128];

        snprintf(why, sizeof(why), "destination address not allowed: %s", f->refused);
        webfetch__fail_get(f, f->url, why);
    } else if (rc != CURLE_OK && f->in_body) {
        webfetch__fail(f, "failed to read response: %s", reason);
    } else if (rc != CURLE_OK) {
        webfetch__fail_get(f, f->url, reason);
    } else if (libcurl->easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
               is_followed_redirect(status) && f->redirect) {
        webfetch__follow(f);
        if (!f->failed)
            return;
    } else {
        webfetch__take_response(f);
    }
    webfetch__finish(f);
}

static const struct httpc_xfer_ops xfer_ops = {
    .may_connect = may_connect,
    .on_header = on_header,
    .on_body = on_body,
    .on_done = on_done,
};

#define SETOPT(opt, val)                                                                    \
    do {                                                                                    \
        if (libcurl->easy_setopt(f->easy, opt, val) != CURLE_OK)                            \
            goto fail;                                                                      \
    } while (0)

/* Sends the current hop: the guard and the proxy are decided. */
static void webfetch__hop_send(struct webfetch *f)
{
    uint64_t now = uv_now(f->loop);
    char accept[256];

    if (now >= f->deadline) {
        webfetch__fail(f, WEBFETCH_TIMED_OUT);
        webfetch__finish(f);
        return;
    }
    snprintf(accept, sizeof(accept), "Accept: %s", f->accept);
    f->refused[0] = '\0';
    f->status = 0;
    f->has_location = f->coded = f->redirect = f->in_body = false;
    f->content_length = -1;
    f->requests++;
    if (httpc_xfer_new(f->client, &xfer_ops, f, &f->xfer, &f->easy) != 0 ||
        (f->headers = libcurl->slist_append(NULL, accept)) == NULL ||
        (f->headers = libcurl->slist_append(f->headers, "Accept-Language: "
                                            WEBFETCH_ACCEPT_LANGUAGE)) == NULL)
        goto fail;
    SETOPT(CURLOPT_URL, f->url);
    SETOPT(CURLOPT_HTTPGET, 1L);
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L); /* each hop is ours: webfetch.h */
    SETOPT(CURLOPT_PROXY, f->proxy_url != NULL ? f->proxy_url : ""); /* "": none */
    SETOPT(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    SETOPT(CURLOPT_USERAGENT, WEBFETCH_USER_AGENT);
    SETOPT(CURLOPT_HTTPHEADER, f->headers);
    SETOPT(CURLOPT_ACCEPT_ENCODING, WEBFETCH_ACCEPT_ENCODING);
    SETOPT(CURLOPT_TIMEOUT_MS, (long)(f->deadline - now));
    if (f->cacert != NULL)
        SETOPT(CURLOPT_CAINFO, f->cacert);
    if (httpc_xfer_start(f->xfer) != 0)
        goto fail;
    return;
fail:
    webfetch__fail_get(f, f->url, "cannot set up the request");
    webfetch__finish(f);
}
#undef SETOPT

/* Through a proxy the guard cannot see the target's address, so the host is resolved
 * here and every address it has must be allowed (RUNNER-OPS.md 8, interim). */
static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct webfetch *f = req->data;
    struct netaddr addr;
    char why[256];

    f->resolving = false;
    if (f->finished) {
        uv_freeaddrinfo(res);
        f->open_handles--;
        webfetch__maybe_free(f);
        return;
    }
    f->open_handles--;
    if (status != 0) {
        snprintf(why, sizeof(why), "cannot resolve %s to check its address: %s", f->host,
                 uv_strerror(status));
        webfetch__fail_get(f, f->url, why);
    }
    for (struct addrinfo *ai = res; ai != NULL && !f->failed; ai = ai->ai_next) {
        if (netaddr_from_sockaddr(ai->ai_addr, &addr) && !netguard_addr_allowed(f->guard, &addr)) {
            netaddr_format(&addr, f->refused, sizeof(f->refused));
            snprintf(why, sizeof(why), "destination address not allowed: %s", f->refused);
            webfetch__fail_get(f, f->url, why);
        }
    }
    uv_freeaddrinfo(res);
    if (f->failed) {
        webfetch__finish(f);
        return;
    }
    webfetch__hop_send(f);
}

/* Starts the current hop (f->url): Go's checks on the URL, the proxy, the guard. */
static void webfetch__hop_begin(struct webfetch *f)
{
    CURLU *u = libcurl->url();
    char *scheme = NULL, *host = NULL, *port = NULL, why[160];
    CURLUcode uc = CURLUE_OUT_OF_MEMORY;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    int r;

    if (u == NULL || (uc = libcurl->url_set(u, CURLUPART_URL, f->url, 0)) != CURLUE_OK ||
        (uc = libcurl->url_get(u, CURLUPART_SCHEME, &scheme, 0)) != CURLUE_OK ||
        (uc = libcurl->url_get(u, CURLUPART_HOST, &host, 0)) != CURLUE_OK ||
        (uc = libcurl->url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT)) != CURLUE_OK) {
        if (f->requests == 0)
            webfetch__fail(f, "failed to create request: %s", libcurl->url_strerror(uc));
        else
            webfetch__fail_get(f, f->url, libcurl->url_strerror(uc));
        goto out;
    }
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        snprintf(why, sizeof(why), "unsupported protocol scheme \"%.32s\"", scheme);
        webfetch__fail_get(f, f->url, why);
        goto out;
    }
    if (strlen(host) >= sizeof(f->host)) {
        webfetch__fail_get(f, f->url, "host name too long");
        goto out;
    }
    snprintf(f->host, sizeof(f->host), "%s", host);
    f->proxy_url = webproxy_for(f->proxy, scheme, host, (unsigned)strtoul(port, NULL, 10));
    f->host_open = netguard_host_open(f->guard, host);
    if (f->proxy_url == NULL || f->host_open) {
        webfetch__hop_send(f);
        goto out;
    }
    /* An IPv6 literal is resolved without its brackets. */
    if (host[0] == '[' && strlen(host) > 2) {
        memmove(host, host + 1, strlen(host) - 2);
        host[strlen(host) - 2] = '\0';
    }
    f->resolve.data = f;
    if ((r = uv_getaddrinfo(f->loop, &f->resolve, on_resolved, host, NULL, &hints)) != 0) {
        snprintf(why, sizeof(why), "cannot resolve %s to check its address: %s", f->host,
                 uv_strerror(r));
        webfetch__fail_get(f, f->url, why);
        goto out;
    }
    f->resolving = true;
    f->open_handles++;
out:
    if (libcurl != NULL) {
        libcurl->free(scheme);
        libcurl->free(host);
        libcurl->free(port);
        if (u != NULL)
            libcurl->url_cleanup(u);
    }
    if (f->failed)
        webfetch__finish(f);
}

/* Starts each hop, and delivers the outcome once it is decided. */
static void on_kick(uv_timer_t *t)
{
    struct webfetch *f = t->data;

    if (!f->finished) {
        webfetch__hop_begin(f);
        return;
    }
    if (f->delivered)
        return;
    f->delivered = true;
    f->done(f, f->failed ? NULL : &f->resp, f->failed ? f->error : NULL, f->data);
}

static void on_deadline(uv_timer_t *t)
{
    struct webfetch *f = t->data;

    webfetch__fail(f, WEBFETCH_TIMED_OUT);
    webfetch__finish(f);
}

int webfetch_start(uv_loop_t *loop, const struct webfetch_options *opts, webfetch_done_cb done,
                   void *data, struct webfetch **out)
{
    struct webfetch *f;
    uv_timer_t *timers[2];

    *out = NULL;
    if ((f = calloc(1, sizeof(*f))) == NULL)
        return ERR_NOMEM;
    f->loop = loop;
    f->done = done;
    f->data = data;
    f->max_body = opts->max_body;
    f->guard = opts->guard;
    f->proxy = opts->proxy;
    if ((f->url = strdup(opts->url)) == NULL || (f->accept = strdup(opts->accept)) == NULL ||
        (opts->cacert != NULL && (f->cacert = strdup(opts->cacert)) == NULL)) {
        free(f->url);
        free(f->accept);
        free(f);
        return ERR_NOMEM;
    }
    /* From here f goes with its handles' close callbacks (webfetch_free). */
    timers[0] = &f->deadline_timer;
    timers[1] = &f->kick;
    for (int i = 0; i < 2; i++) {
        uv_timer_init(loop, timers[i]); /* cannot fail on a live loop */
        timers[i]->data = f;
        f->open_handles++;
    }
    uv_timer_start(&f->kick, on_kick, 0, 0);
    f->deadline = uv_now(loop) + opts->timeout_ms;
    uv_timer_start(&f->deadline_timer, on_deadline, opts->timeout_ms, 0);
    if ((libcurl = httpc_curl()) == NULL) {
        webfetch__fail_get(f, f->url, "libcurl cannot be loaded");
        webfetch__finish(f);
    } else if (httpc_new(loop, &f->client) != 0) {
        webfetch__fail_get(f, f->url, "cannot set up the request");
        webfetch__finish(f);
    }
    *out = f;
    return 0;
}

void webfetch_cancel(struct webfetch *f)
{
    if (f->finished)
        return;
    webfetch__fail_get(f, f->url, "context canceled");
    webfetch__finish(f);
}

void webfetch_free(struct webfetch *f)
{
    if (f == NULL)
        return;
    f->released = true;
    if (!f->finished) { /* freed without a done: stop it first */
        f->failed = true;
        webfetch__finish(f);
    }
    f->delivered = true;
    uv_close((uv_handle_t *)&f->deadline_timer, on_handle_closed);
    uv_close((uv_handle_t *)&f->kick, on_handle_closed);
}
