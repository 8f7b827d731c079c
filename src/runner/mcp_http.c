/*
 * mcp_http.c - the MCP client's HTTP transport. See mcp_http.h.
 *
 * Every request is a struct mcp_req on the transport's list, one httpc transfer each.
 * libcurl's callbacks (on_header, on_body and the SSE events fed from on_body) only
 * record: a received message goes to the inbox, a failure to t->reason, a decided mode
 * to t->mode. The "kick" timer then does the rest from a loop turn of its own: it starts
 * the POSTs that waited, hands the inbox to on_message and a failure to on_closed. So
 * the caller's callbacks never run inside libcurl, and may send or close.
 *
 * The memory goes in the kick timer's close callback, after mcp_http_close and the
 * DELETE that may follow it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include "ascii.h"
#include "buf.h"
#include "curl_api.h"
#include "err.h"
#include "httpc.h"
#include "mcp_http.h"
#include "sse.h"
#include "webproxy.h"

#define MCP_HTTP_REASON_MAX 256
#define MCP_HTTP_SNIPPET_MAX 160 /* of an error answer's body, for the reason */
#define MCP_HTTP_SESSION_ID_MAX 1024
#define MCP_HTTP_CTYPE_MAX 128
#define MCP_HTTP_VERSION_MAX 64   /* an MCP-Protocol-Version value */
#define MCP_HTTP_EVENT_ID_MAX 256 /* a Last-Event-ID we resume with */
/* RUNNER-OPS.md 9.2 and 12 (go-sdk's values): a broken answer stream is resumed at most
 * 5 times, after 1 s, then 1.5 times longer each time, at most 30 s. */
#define MCP_HTTP_RESUME_TRIES 5
#define MCP_HTTP_RESUME_FIRST_MS 1000
#define MCP_HTTP_RESUME_MAX_MS 30000

enum mcp_mode {
    MODE_PROBE, /* the first POST is out: Streamable HTTP or legacy is not known */
    MODE_STREAMABLE,
    MODE_LEGACY_WAIT, /* the GET stream is open; its endpoint event has not come */
    MODE_LEGACY,
};

/* REQ_GET is the legacy stream; REQ_RESUME a GET with Last-Event-ID that resumes a POST's
 * broken answer stream (MCP 2025-06-18, "Resumability and Redelivery"). */
enum mcp_req_kind { REQ_POST, REQ_GET, REQ_RESUME, REQ_DELETE };

/* What the body of the answer being read is. */
enum mcp_body {
    BODY_UNEXPECTED, /* a 2xx in a content type we cannot read: any body byte fails */
    BODY_JSON,
    BODY_SSE,
    BODY_IGNORE, /* 202, a legacy POST's "Accepted", a DELETE's answer */
    BODY_ERROR,  /* a non-2xx: its start goes into the reason */
};

struct mcp_msg {
    STAILQ_ENTRY(mcp_msg) link;
    size_t len;
    char data[]; /* len bytes, then a NUL (CURLOPT_POSTFIELDS does not need it) */
};
STAILQ_HEAD(mcp_msgq, mcp_msg);

struct mcp_req {
    struct mcp_http *t;
    LIST_ENTRY(mcp_req) link;
    enum mcp_req_kind kind;
    bool probe;    /* the first POST: a 4xx means legacy */
    bool fallback; /* it got that 4xx */
    bool failed;   /* the transport failed in one of its callbacks */
    struct httpc_xfer *xfer;
    CURL *easy;
    struct curl_slist *headers;
    struct mcp_msg *msg;            /* a POST's body */
    long status;                    /* of the answer whose head is being read */
    char ctype[MCP_HTTP_CTYPE_MAX]; /* its media type, lower case, "" if none */
    enum mcp_body body;
    struct buf *json;       /* BODY_JSON */
    struct sse_parser *sse; /* BODY_SSE */
    char snippet[MCP_HTTP_SNIPPET_MAX];
    size_t snippet_len;
    /* REQ_RESUME */
    char *last_event_id;
    unsigned tries; /* resumptions of this answer so far, this one included */
    long retry_ms;  /* the latest SSE retry of this answer's streams, -1 if none */
    bool waiting;   /* not started: due is when */
    uint64_t due;
};

struct mcp_http {
    uv_loop_t *loop;
    struct mcp_http_events ev;
    void *data;
    char *url;
    char *post_url;      /* legacy: the endpoint; else NULL (url) */
    char **header_lines; /* "Name: value", or "Name;" for an empty value */
    size_t nheaders;
    bool skip_verify;
    char *cacert;
    const struct webproxy *proxy;
    size_t max;
    uint64_t connect_timeout_ms;
    struct httpc *client;
    LIST_HEAD(, mcp_req) reqs;
    struct mcp_msgq pending; /* to POST once the mode allows */
    struct mcp_msgq inbox;   /* received, for on_message */
    enum mcp_mode mode;
    bool probe_sent;
    long probe_status; /* the 4xx that made it fall back to legacy */
    char *session_id;
    char *protocol_version;
    uv_timer_t kick;
    uv_timer_t resume_timer; /* starts the waiting REQ_RESUMEs */
    unsigned open_handles;   /* the two timers, until closed */
    bool broken;             /* reason holds why; on_closed is due or done */
    bool closed_told;
    bool closing; /* mcp_http_close ran: no more callbacks */
    char reason[MCP_HTTP_REASON_MAX];
};

/* Set with the first transport; every call below happens after that. */
static const struct curl_api *libcurl;

static void on_kick(uv_timer_t *timer);

/* ---- small helpers ---- */

static struct mcp_msg *msg_new(const char *data, size_t len)
{
    struct mcp_msg *m = malloc(sizeof(*m) + len + 1);

    if (m == NULL)
        return NULL;
    m->len = len;
    memcpy(m->data, data, len);
    m->data[len] = '\0';
    return m;
}

static void msgq_free(struct mcp_msgq *q)
{
    struct mcp_msg *m;

    while ((m = STAILQ_FIRST(q)) != NULL) {
        STAILQ_REMOVE_HEAD(q, link);
        free(m);
    }
}

/* Visible ASCII only: what may go into a header value we build (RFC 9110 5.5, without
 * spaces, as the MCP specification asks of session ids). */
static bool is_visible_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    }
    return n > 0;
}

/* ---- failure and delivery ---- */

static void mcp__kick(struct mcp_http *t)
{
    if (!t->closing)
        uv_timer_start(&t->kick, on_kick, 0, 0);
}

/* The transport is broken: the first reason stands; on_closed comes from the kick. Safe
 * inside libcurl's callbacks. */
static void mcp__fail(struct mcp_http *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void mcp__fail(struct mcp_http *t, const char *fmt, ...)
{
    va_list ap;

    if (t->broken)
        return;
    va_start(ap, fmt);
    vsnprintf(t->reason, sizeof(t->reason), fmt, ap);
    va_end(ap);
    t->broken = true;
    mcp__kick(t);
}

/* A received message, for on_message from the kick. Safe inside libcurl's callbacks. */
static bool mcp__receive(struct mcp_http *t, const char *data, size_t len)
{
    struct mcp_msg *m;

    if (t->broken)
        return false;
    if ((m = msg_new(data, len)) == NULL) {
        mcp__fail(t, "out of memory for a received message");
        return false;
    }
    STAILQ_INSERT_TAIL(&t->inbox, m, link);
    mcp__kick(t);
    return true;
}

/* ---- requests ---- */

static void req_free(struct mcp_req *r)
{
    if (r == NULL)
        return;
    LIST_REMOVE(r, link);
    httpc_xfer_free(r->xfer); /* cancels it if it runs */
    libcurl->slist_free_all(r->headers);
    free(r->msg);
    free(r->last_event_id);
    buf_free(r->json);
    sse_parser_free(r->sse);
    free(r);
}

static void mcp__free_reqs(struct mcp_http *t)
{
    while (!LIST_EMPTY(&t->reqs))
        req_free(LIST_FIRST(&t->reqs));
}

static bool req_add_header(struct mcp_req *r, const char *line)
{
    struct curl_slist *l = libcurl->slist_append(r->headers, line);

    if (l == NULL)
        return false;
    r->headers = l;
    return true;
}

/* The request's headers: the transport's own, then the configured ones. "Expect:" keeps
 * libcurl from waiting for a 100 Continue before a large body. */
static bool req_build_headers(struct mcp_req *r)
{
    struct mcp_http *t = r->t;
    /* Fits any line: the session id, the version and the event id were bounded when taken. */
    char line[MCP_HTTP_SESSION_ID_MAX + MCP_HTTP_VERSION_MAX + MCP_HTTP_EVENT_ID_MAX + 32];

    if (r->kind == REQ_POST && (!req_add_header(r, "Content-Type: application/json") ||
                                !req_add_header(r, "Accept: application/json, text/event-stream") ||
                                !req_add_header(r, "Expect:")))
        return false;
    if ((r->kind == REQ_GET || r->kind == REQ_RESUME) &&
        !req_add_header(r, "Accept: text/event-stream"))
        return false;
    if (r->kind == REQ_RESUME) {
        snprintf(line, sizeof(line), "Last-Event-ID: %s", r->last_event_id);
        if (!req_add_header(r, line))
            return false;
    }
    if (t->session_id != NULL) {
        snprintf(line, sizeof(line), "Mcp-Session-Id: %s", t->session_id);
        if (!req_add_header(r, line))
            return false;
    }
    if (t->protocol_version != NULL) {
        snprintf(line, sizeof(line), "MCP-Protocol-Version: %s", t->protocol_version);
        if (!req_add_header(r, line))
            return false;
    }
    for (size_t i = 0; i < t->nheaders; i++) {
        if (!req_add_header(r, t->header_lines[i]))
            return false;
    }
    return true;
}

/* The proxy for url (webproxy.h), "" for none: what CURLOPT_PROXY takes. */
static const char *mcp__proxy_for(const struct mcp_http *t, const char *url)
{
    CURLU *u;
    char *scheme = NULL, *host = NULL, *port = NULL;
    const char *p = NULL;

    if (t->proxy == NULL || (u = libcurl->url()) == NULL)
        return "";
    if (libcurl->url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        libcurl->url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        libcurl->url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        libcurl->url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK)
        p = webproxy_for(t->proxy, scheme, host, (unsigned)strtoul(port, NULL, 10));
    libcurl->free(scheme);
    libcurl->free(host);
    libcurl->free(port);
    libcurl->url_cleanup(u);
    return p != NULL ? p : "";
}

static const struct httpc_xfer_ops req_ops;

#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        if (libcurl->easy_setopt(r->easy, opt, val) != CURLE_OK)                                   \
            return ERR_UPSTREAM;                                                                   \
    } while (0)

/* The options of r's transfer to url. */
static int req_setup(struct mcp_req *r, const char *url)
{
    struct mcp_http *t = r->t;

    SETOPT(CURLOPT_URL, url);
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_PROXY, mcp__proxy_for(t, url));
    SETOPT(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long)t->connect_timeout_ms);
    SETOPT(CURLOPT_TCP_KEEPALIVE, 1L); /* a legacy stream may be quiet for long */
    SETOPT(CURLOPT_HTTPHEADER, r->headers);
    if (t->skip_verify) {
        SETOPT(CURLOPT_SSL_VERIFYPEER, 0L);
        SETOPT(CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (t->cacert != NULL)
        SETOPT(CURLOPT_CAINFO, t->cacert);
    switch (r->kind) {
    case REQ_POST:
        SETOPT(CURLOPT_POST, 1L);
        SETOPT(CURLOPT_POSTFIELDS, r->msg->data);
        SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->msg->len);
        break;
    case REQ_GET:
    case REQ_RESUME:
        SETOPT(CURLOPT_HTTPGET, 1L);
        break;
    case REQ_DELETE:
        SETOPT(CURLOPT_CUSTOMREQUEST, "DELETE");
        SETOPT(CURLOPT_TIMEOUT_MS, (long)MCP_HTTP_DELETE_TIMEOUT_MS);
        break;
    }
    return 0;
}
#undef SETOPT

/* A request of kind on t's list, not started; a POST takes msg (freed with the request,
 * even on failure). NULL with the transport failed. */
static struct mcp_req *mcp__req_new(struct mcp_http *t, enum mcp_req_kind kind, struct mcp_msg *msg)
{
    struct mcp_req *r = calloc(1, sizeof(*r));

    if (r == NULL) {
        free(msg);
        mcp__fail(t, "out of memory for a request");
        return NULL;
    }
    r->t = t;
    r->kind = kind;
    r->msg = msg;
    r->retry_ms = -1;
    LIST_INSERT_HEAD(&t->reqs, r, link);
    return r;
}

/* Starts r to url. False: r is freed and the transport failed. */
static bool req_launch(struct mcp_req *r, const char *url)
{
    struct mcp_http *t = r->t;

    if (httpc_xfer_new(t->client, &req_ops, r, &r->xfer, &r->easy) != 0 || !req_build_headers(r) ||
        req_setup(r, url) != 0 || httpc_xfer_start(r->xfer) != 0) {
        req_free(r);
        mcp__fail(t, "cannot set up an HTTP request");
        return false;
    }
    return true;
}

/* Starts a request of kind to url, as mcp__req_new and req_launch. */
static struct mcp_req *mcp__req_start(struct mcp_http *t, enum mcp_req_kind kind, const char *url,
                                      struct mcp_msg *msg)
{
    struct mcp_req *r = mcp__req_new(t, kind, msg);

    return r != NULL && req_launch(r, url) ? r : NULL;
}

/* Starts the POSTs the mode allows: in the probe, only the first message; with the
 * legacy endpoint not known yet, none. */
static void mcp__flush(struct mcp_http *t)
{
    struct mcp_msg *m;
    struct mcp_req *r;

    while (!t->broken && !t->closing && (m = STAILQ_FIRST(&t->pending)) != NULL) {
        if (t->mode == MODE_LEGACY_WAIT || (t->mode == MODE_PROBE && t->probe_sent))
            return;
        STAILQ_REMOVE_HEAD(&t->pending, link);
        r = mcp__req_start(t, REQ_POST, t->post_url != NULL ? t->post_url : t->url, m);
        if (r != NULL && t->mode == MODE_PROBE) {
            r->probe = true;
            t->probe_sent = true;
        }
    }
}

/* ---- the legacy endpoint ---- */

/* scheme://host:port of url, lower case, into out. */
static bool url_origin(const char *url, char *out, size_t len)
{
    CURLU *u = libcurl->url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    bool ok = false;

    if (u != NULL && libcurl->url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        libcurl->url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        libcurl->url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        libcurl->url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        int n = snprintf(out, len, "%s://%s:%s", scheme, host, port);

        ok = n > 0 && (size_t)n < len;
        for (char *p = out; ok && *p != '\0'; p++)
            *p = (char)ascii_tolower((unsigned char)*p);
    }
    libcurl->free(scheme);
    libcurl->free(host);
    libcurl->free(port);
    libcurl->url_cleanup(u);
    return ok;
}

/* The endpoint event's data, resolved against the URL: the POST URL from now on. */
static bool mcp__set_endpoint(struct mcp_http *t, const char *data, size_t len)
{
    CURLU *u = libcurl->url();
    char *resolved = NULL, a[512], b[512];
    bool ok = false;

    if (memchr(data, '\0', len) != NULL || len == 0) {
        mcp__fail(t, "the legacy SSE stream's endpoint event is empty or holds a NUL");
        goto out;
    }
    /* Setting a relative URL on a handle that holds one resolves it (RFC 3986 5). */
    if (u == NULL || libcurl->url_set(u, CURLUPART_URL, t->url, 0) != CURLUE_OK ||
        libcurl->url_set(u, CURLUPART_URL, data, 0) != CURLUE_OK ||
        libcurl->url_get(u, CURLUPART_URL, &resolved, 0) != CURLUE_OK) {
        mcp__fail(t, "the legacy SSE stream's endpoint is not a URL");
        goto out;
    }
    /* The configured headers carry credentials: they go to the URL's origin only. */
    if (!url_origin(t->url, a, sizeof(a)) || !url_origin(resolved, b, sizeof(b)) ||
        strcmp(a, b) != 0) {
        mcp__fail(t, "the legacy SSE stream's endpoint is on another origin");
        goto out;
    }
    if ((t->post_url = strdup(resolved)) == NULL) {
        mcp__fail(t, "out of memory");
        goto out;
    }
    t->mode = MODE_LEGACY;
    mcp__kick(t); /* the waiting messages go out from there */
    ok = true;
out:
    libcurl->free(resolved);
    libcurl->url_cleanup(u);
    return ok;
}

/* ---- answers ---- */

/* One SSE event of a POST's answer or of the legacy stream. Non-zero stops the feed. */
static int on_event(const struct sse_event *e, void *ud)
{
    struct mcp_req *r = ud;
    struct mcp_http *t = r->t;
    bool is_message = e->type_len == 7 && memcmp(e->type, "message", 7) == 0;

    if (r->kind == REQ_GET && e->type_len == 8 && memcmp(e->type, "endpoint", 8) == 0) {
        if (t->mode == MODE_LEGACY_WAIT && !mcp__set_endpoint(t, e->data, e->data_len))
            return 1;
        return 0; /* a later endpoint event changes nothing */
    }
    /* Empty data is a priming event (2025-11-25 servers send one with an id). */
    if (!is_message || e->data_len == 0)
        return 0;
    if (r->kind == REQ_GET && t->mode != MODE_LEGACY) {
        mcp__fail(t, "the legacy SSE stream sent a message before its endpoint");
        return 1;
    }
    return mcp__receive(t, e->data, e->data_len) ? 0 : 1;
}

/* The media type of a Content-Type value, lower case, without parameters. */
static void media_type(const char *v, size_t n, char *out, size_t len)
{
    size_t i = 0;

    while (i < n && v[i] != ';' && v[i] != ' ' && v[i] != '\t' && i + 1 < len) {
        out[i] = (char)ascii_tolower((unsigned char)v[i]);
        i++;
    }
    out[i] = '\0';
}

/* The head of a final answer is complete: what its body is. False aborts the transfer. */
static bool req_head_done(struct mcp_req *r)
{
    struct mcp_http *t = r->t;
    bool ok2xx = r->status >= 200 && r->status < 300;

    if (r->kind == REQ_DELETE) {
        r->body = BODY_IGNORE;
        return true;
    }
    if (r->probe && t->mode == MODE_PROBE) {
        if (r->status >= 400 && r->status < 500) {
            r->fallback = true; /* on_done opens the legacy stream */
            t->probe_status = r->status;
            return false;
        }
        if (ok2xx) {
            t->mode = MODE_STREAMABLE;
            mcp__kick(t); /* messages that waited for the probe go out */
        }
    }
    if (!ok2xx) {
        r->body = BODY_ERROR;
    } else if (r->kind == REQ_POST && (t->mode == MODE_LEGACY || r->status == 202)) {
        r->body = BODY_IGNORE;
    } else if (r->kind == REQ_POST && strcmp(r->ctype, "application/json") == 0) {
        r->body = BODY_JSON;
        r->json = buf_new(t->max, 0);
    } else if (strcmp(r->ctype, "text/event-stream") == 0) {
        r->body = BODY_SSE;
        r->sse = sse_parser_new(t->max, on_event, r);
    } else {
        r->body = BODY_UNEXPECTED;
    }
    if ((r->body == BODY_JSON && r->json == NULL) || (r->body == BODY_SSE && r->sse == NULL)) {
        mcp__fail(t, "out of memory for an answer");
        r->failed = true;
        return false;
    }
    if (r->kind == REQ_GET && r->body == BODY_UNEXPECTED) {
        mcp__fail(t, "the legacy SSE stream came as '%.64s', not text/event-stream", r->ctype);
        r->failed = true;
        return false;
    }
    return true;
}

/* A session id the server issued: kept from the first answer carrying one. */
static bool req_take_session_id(struct mcp_req *r, const char *v, size_t n)
{
    struct mcp_http *t = r->t;

    /* An empty value issues nothing (as the Go SDK reads it). */
    if (t->session_id != NULL || r->kind == REQ_DELETE || n == 0)
        return true;
    if (n > MCP_HTTP_SESSION_ID_MAX || !is_visible_ascii(v, n)) {
        mcp__fail(t, "the server issued an invalid Mcp-Session-Id");
        r->failed = true;
        return false;
    }
    if ((t->session_id = strndup(v, n)) == NULL) {
        mcp__fail(t, "out of memory");
        r->failed = true;
        return false;
    }
    return true;
}

static bool on_header(void *ud, const char *h, size_t n)
{
    struct mcp_req *r = ud;
    const char *v;
    size_t vlen;

    if (n >= 5 && memcmp(h, "HTTP/", 5) == 0) {
        const char *sp = memchr(h, ' ', n);
        size_t i = sp != NULL ? (size_t)(sp - h) + 1 : n;

        /* A new answer (1xx ones come first): a status code is three digits. */
        r->status = 0;
        for (size_t k = 0; k < 3 && i + k < n && ascii_is_digit((unsigned char)h[i + k]); k++)
            r->status = r->status * 10 + (h[i + k] - '0');
        r->ctype[0] = '\0';
    } else if (n <= 2 && (h[0] == '\r' || h[0] == '\n')) {
        if (r->status >= 100 && r->status < 200)
            return true; /* an interim answer: the real one follows */
        return req_head_done(r);
    } else if (httpc_header_value(h, n, "content-type", &v, &vlen)) {
        media_type(v, vlen, r->ctype, sizeof(r->ctype));
    } else if (httpc_header_value(h, n, "mcp-session-id", &v, &vlen)) {
        return req_take_session_id(r, v, vlen);
    }
    return true;
}

static bool on_body(void *ud, const char *data, size_t n)
{
    struct mcp_req *r = ud;
    struct mcp_http *t = r->t;
    int rc;

    switch (r->body) {
    case BODY_IGNORE:
        return true;
    case BODY_ERROR: /* the start of the text is enough for the reason */
        n = n < sizeof(r->snippet) - 1 - r->snippet_len ? n
                                                        : sizeof(r->snippet) - 1 - r->snippet_len;
        memcpy(r->snippet + r->snippet_len, data, n);
        r->snippet_len += n;
        return r->snippet_len < sizeof(r->snippet) - 1;
    case BODY_JSON:
        if ((rc = buf_put(r->json, data, n)) == 0)
            return true;
        mcp__fail(t,
                  rc == ERR_TOO_LARGE ? "a JSON answer over the %zu-byte message limit"
                                      : "out of memory for a JSON answer (limit %zu bytes)",
                  t->max);
        break;
    case BODY_SSE:
        if ((rc = sse_parser_feed(r->sse, data, n)) == 0)
            return true;
        if (rc == ERR_TOO_LARGE)
            mcp__fail(t, "an SSE event over the %zu-byte message limit", t->max);
        else if (rc == ERR_NOMEM)
            mcp__fail(t, "out of memory for an SSE event");
        break; /* else on_event failed the transport */
    case BODY_UNEXPECTED:
        mcp__fail(t, "an answer to a POST came as '%.64s', not JSON or an event stream",
                  r->ctype[0] != '\0' ? r->ctype : "(no Content-Type)");
        break;
    }
    r->failed = true;
    return false;
}

/* The reason for an answer that was not 2xx: its status and the start of its body. */
static void req_fail_status(struct mcp_req *r)
{
    struct mcp_http *t = r->t;
    char text[MCP_HTTP_SNIPPET_MAX];
    size_t i;

    for (i = 0; i < r->snippet_len && r->snippet[i] != '\n' && r->snippet[i] != '\r'; i++)
        text[i] =
            (unsigned char)r->snippet[i] < 0x20 || r->snippet[i] == 0x7f ? '?' : r->snippet[i];
    text[i] = '\0';
    if (r->kind == REQ_GET)
        mcp__fail(t,
                  "the server refused the Streamable HTTP POST (HTTP %ld) and the legacy "
                  "SSE GET (HTTP %ld)%s%s",
                  t->probe_status, r->status, i > 0 ? ": " : "", text);
    else
        mcp__fail(t, "HTTP %ld on %s%s%s", r->status,
                  r->kind == REQ_RESUME ? "resuming an answer stream" : "a POST", i > 0 ? ": " : "",
                  text);
}

/* The first POST got a 4xx: open the legacy stream; the message waits for its endpoint. */
static void mcp__fall_back(struct mcp_http *t, struct mcp_req *r)
{
    STAILQ_INSERT_HEAD(&t->pending, r->msg, link);
    r->msg = NULL;
    t->mode = MODE_LEGACY_WAIT;
    (void)mcp__req_start(t, REQ_GET, t->url, NULL); /* a failure fails the transport */
}

static void on_resume_timer(uv_timer_t *timer);

/* Arms the resume timer for the earliest waiting resumption. */
static void mcp__arm_resume(struct mcp_http *t)
{
    struct mcp_req *r;
    uint64_t now = uv_now(t->loop), first = UINT64_MAX;

    LIST_FOREACH(r, &t->reqs, link)
    {
        if (r->waiting && r->due < first)
            first = r->due;
    }
    if (first != UINT64_MAX)
        uv_timer_start(&t->resume_timer, on_resume_timer, first > now ? first - now : 0, 0);
}

/* Starts the resumptions that are due. */
static void on_resume_timer(uv_timer_t *timer)
{
    struct mcp_http *t = timer->data;
    struct mcp_req *r;
    bool again = true;

    while (again && !t->broken) {
        again = false;
        LIST_FOREACH(r, &t->reqs, link)
        {
            if (r->waiting && r->due <= uv_now(t->loop)) {
                r->waiting = false;
                again = req_launch(r, t->url); /* the list changed: look again */
                break;
            }
        }
    }
    mcp__arm_resume(t);
}

/*
 * r, a Streamable HTTP answer stream (or a resumption of one), broke. When the server gave
 * its events ids, a GET with Last-Event-ID picks the stream up after a delay, at most
 * MCP_HTTP_RESUME_TRIES times. False: it cannot be resumed.
 */
static bool mcp__resume(struct mcp_http *t, const struct mcp_req *r)
{
    const char *id = r->body == BODY_SSE ? sse_parser_last_event_id(r->sse) : "";
    long retry = r->body == BODY_SSE ? sse_parser_retry_ms(r->sse) : -1;
    uint64_t delay = MCP_HTTP_RESUME_FIRST_MS;
    struct mcp_req *next;

    /* The server's SSE retry (this stream's, else the one an earlier stream of this answer
     * gave), when there is one, is the first wait, no longer than MCP_HTTP_RESUME_MAX_MS;
     * each try after it waits half as long again. */
    if (retry < 0)
        retry = r->retry_ms;
    if (retry >= 0)
        delay = (uint64_t)retry < MCP_HTTP_RESUME_MAX_MS ? (uint64_t)retry : MCP_HTTP_RESUME_MAX_MS;
    if (t->mode != MODE_STREAMABLE || r->tries >= MCP_HTTP_RESUME_TRIES ||
        strlen(id) > MCP_HTTP_EVENT_ID_MAX || !is_visible_ascii(id, strlen(id)))
        return false;
    for (unsigned i = 0; i < r->tries; i++)
        delay = delay * 3 / 2 < MCP_HTTP_RESUME_MAX_MS ? delay * 3 / 2 : MCP_HTTP_RESUME_MAX_MS;
    if ((next = mcp__req_new(t, REQ_RESUME, NULL)) == NULL)
        return true; /* the transport failed: nothing more to do */
    if ((next->last_event_id = strdup(id)) == NULL) {
        req_free(next);
        mcp__fail(t, "out of memory");
        return true;
    }
    next->tries = r->tries + 1;
    next->retry_ms = retry;
    next->waiting = true;
    next->due = uv_now(t->loop) + delay;
    mcp__arm_resume(t);
    return true;
}

static void mcp__release(struct mcp_http *t);

static void on_done(struct httpc_xfer *x, CURLcode rc, const char *error, void *ud)
{
    struct mcp_req *r = ud;
    struct mcp_http *t = r->t;
    const char *what = r->kind == REQ_GET      ? "the legacy SSE stream"
                       : r->kind == REQ_RESUME ? "resuming an answer stream"
                                               : "a POST";
    bool broke = rc != CURLE_OK || (r->body == BODY_SSE && sse_parser_mid_event(r->sse));

    (void)x;
    if (r->kind == REQ_DELETE) { /* the last request, after mcp_http_close */
        req_free(r);
        mcp__release(t);
        return;
    }
    if (r->fallback && !t->broken) {
        mcp__fall_back(t, r);
    } else if (r->failed) {
        /* decided in a callback */
    } else if (r->body == BODY_ERROR && r->status != 0) {
        req_fail_status(r);
    } else if (broke && r->kind != REQ_GET && mcp__resume(t, r)) {
        /* picked up again later */
    } else if (rc != CURLE_OK) {
        mcp__fail(t, "%s failed: %s", what, error);
    } else if (r->body == BODY_SSE && sse_parser_mid_event(r->sse)) {
        mcp__fail(t, "%s's event stream was cut inside an event", what);
    } else if (r->kind == REQ_GET) {
        mcp__fail(t, "the legacy SSE stream ended");
    } else if (r->body == BODY_JSON && buf_len(r->json) > 0) {
        (void)mcp__receive(t, (const char *)buf_ptr(r->json), buf_len(r->json));
    }
    req_free(r);
}

static const struct httpc_xfer_ops req_ops = {
    .on_header = on_header,
    .on_body = on_body,
    .on_done = on_done,
};

/* ---- the loop side ---- */

static void on_kick(uv_timer_t *timer)
{
    struct mcp_http *t = timer->data;
    struct mcp_msg *m;

    if (t->broken)
        mcp__free_reqs(t); /* nothing more comes from the server */
    else
        mcp__flush(t);
    while (!t->closing && (m = STAILQ_FIRST(&t->inbox)) != NULL) {
        STAILQ_REMOVE_HEAD(&t->inbox, link);
        t->ev.on_message(t, m->data, m->len, t->data);
        free(m);
    }
    if (t->broken && !t->closed_told && !t->closing) {
        t->closed_told = true;
        msgq_free(&t->pending);
        t->ev.on_closed(t, t->reason, t->data);
    }
}

static void mcp__free(struct mcp_http *t)
{
    for (size_t i = 0; i < t->nheaders; i++)
        free(t->header_lines[i]);
    free(t->header_lines);
    free(t->url);
    free(t->post_url);
    free(t->cacert);
    free(t->session_id);
    free(t->protocol_version);
    free(t);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct mcp_http *t = h->data;

    if (--t->open_handles == 0)
        mcp__free(t);
}

/* The last step: the client and the timers close; the memory goes after them. */
static void mcp__release(struct mcp_http *t)
{
    httpc_close(t->client);
    t->client = NULL;
    uv_close((uv_handle_t *)&t->kick, on_timer_closed);
    uv_close((uv_handle_t *)&t->resume_timer, on_timer_closed);
}

/* ---- the interface ---- */

/* "Name: value" for a configured header, "" for one the transport owns (skipped), or
 * NULL (err says why). */
static char *header_line(const char *name, const char *value, char *err, size_t errlen)
{
    static const char *const owned[] = {
        "content-type",      "accept", "mcp-session-id", "mcp-protocol-version", "content-length",
        "transfer-encoding", "expect", "last-event-id"};
    size_t n = strlen(name), vn = strlen(value);
    char *line;

    for (size_t i = 0; i < n; i++) {
        if (!ascii_is_tchar((unsigned char)name[i]))
            n = 0;
    }
    if (n == 0) {
        snprintf(err, errlen, "invalid header name '%.64s'", name);
        return NULL;
    }
    for (size_t i = 0; i < vn; i++) {
        if (((unsigned char)value[i] < 0x20 && value[i] != '\t') || value[i] == 0x7f) {
            snprintf(err, errlen, "header '%.64s' has a control character in its value", name);
            return NULL;
        }
    }
    for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++) {
        if (strcasecmp(name, owned[i]) == 0)
            return strdup(""); /* the transport's own: skipped */
    }
    if ((line = malloc(n + vn + 3)) == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    /* libcurl drops "Name:" with nothing after it; "Name;" sends it empty. The size
     * above fits either form, so neither is cut. */
    if (vn == 0)
        snprintf(line, n + vn + 3, "%s;", name);
    else
        snprintf(line, n + vn + 3, "%s: %s", name, value);
    return line;
}

static int mcp__take_options(struct mcp_http *t, const struct mcp_http_options *o, char *err,
                             size_t errlen)
{
    char origin[512];

    if (o->url == NULL) {
        snprintf(err, errlen, "no MCP server URL");
        return ERR_INVALID;
    }
    if ((t->url = strdup(o->url)) == NULL ||
        (o->cacert != NULL && (t->cacert = strdup(o->cacert)) == NULL) ||
        (o->nheaders > 0 && (t->header_lines = calloc(o->nheaders, sizeof(char *))) == NULL)) {
        snprintf(err, errlen, "out of memory");
        return ERR_NOMEM;
    }
    if ((strncasecmp(o->url, "http://", 7) != 0 && strncasecmp(o->url, "https://", 8) != 0) ||
        !url_origin(o->url, origin, sizeof(origin))) {
        snprintf(err, errlen, "invalid MCP server URL (http:// or https:// expected)");
        return ERR_INVALID;
    }
    for (size_t i = 0; i < o->nheaders; i++) {
        char *line = header_line(o->header_names[i], o->header_values[i], err, errlen);

        if (line == NULL)
            return ERR_INVALID;
        if (line[0] == '\0') {
            free(line);
            continue;
        }
        t->header_lines[t->nheaders++] = line;
    }
    t->skip_verify = o->tls_skip_verify;
    t->proxy = o->proxy;
    t->max = o->max_message_bytes != 0 ? o->max_message_bytes : MCP_HTTP_MAX_MESSAGE_BYTES;
    t->connect_timeout_ms =
        o->connect_timeout_ms != 0 ? o->connect_timeout_ms : MCP_HTTP_CONNECT_TIMEOUT_MS;
    return 0;
}

int mcp_http_start(uv_loop_t *loop, const struct mcp_http_options *o,
                   const struct mcp_http_events *ev, void *data, struct mcp_http **out, char *err,
                   size_t errlen)
{
    struct mcp_http *t;
    int r;

    *out = NULL;
    if ((libcurl = httpc_curl()) == NULL) {
        snprintf(err, errlen, "libcurl cannot be loaded");
        return ERR_UPSTREAM;
    }
    if ((t = calloc(1, sizeof(*t))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return ERR_NOMEM;
    }
    t->loop = loop;
    t->ev = *ev;
    t->data = data;
    LIST_INIT(&t->reqs);
    STAILQ_INIT(&t->pending);
    STAILQ_INIT(&t->inbox);
    if ((r = mcp__take_options(t, o, err, errlen)) == 0 && (r = httpc_new(loop, &t->client)) != 0)
        snprintf(err, errlen, "cannot set up the HTTP client");
    if (r != 0) {
        mcp__free(t); /* what was taken; the kick timer is not started yet */
        return r;
    }
    uv_timer_init(loop, &t->kick); /* cannot fail on a live loop */
    uv_timer_init(loop, &t->resume_timer);
    t->kick.data = t->resume_timer.data = t;
    t->open_handles = 2;
    *out = t;
    return 0;
}

int mcp_http_send(struct mcp_http *t, const char *msg, size_t len)
{
    struct mcp_msg *m;

    if (t->closing || t->broken)
        return ERR_CLOSED;
    if (len > t->max)
        return ERR_TOO_LARGE;
    if ((m = msg_new(msg, len)) == NULL)
        return ERR_NOMEM;
    STAILQ_INSERT_TAIL(&t->pending, m, link);
    mcp__flush(t);
    return 0;
}

void mcp_http_set_protocol_version(struct mcp_http *t, const char *version)
{
    char *copy;

    if (strlen(version) > MCP_HTTP_VERSION_MAX || !is_visible_ascii(version, strlen(version)) ||
        (copy = strdup(version)) == NULL)
        return;
    free(t->protocol_version);
    t->protocol_version = copy;
}

void mcp_http_close(struct mcp_http *t)
{
    struct mcp_req *del;

    if (t == NULL || t->closing)
        return;
    /* Not closing yet while the DELETE is set up: a failure there must not kick. */
    mcp__free_reqs(t);
    msgq_free(&t->pending);
    msgq_free(&t->inbox);
    uv_timer_stop(&t->kick);
    uv_timer_stop(&t->resume_timer);
    /* RUNNER-OPS.md 9.4: the session ends with DELETE; its answer does not matter. */
    if (t->session_id != NULL && t->client != NULL && t->mode == MODE_STREAMABLE) {
        t->broken = true; /* mcp__fail records nothing more */
        t->closing = true;
        del = mcp__req_start(t, REQ_DELETE, t->url, NULL);
        if (del != NULL)
            return; /* its on_done releases */
    }
    t->closing = true;
    mcp__release(t);
}

bool mcp_http_is_legacy(const struct mcp_http *t)
{
    return t->mode == MODE_LEGACY || t->mode == MODE_LEGACY_WAIT;
}

const char *mcp_http_session_id(const struct mcp_http *t)
{
    return t->session_id;
}
