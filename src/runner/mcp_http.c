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
 * DELETE that may follow it. Reading the answers is mcp_http_answer.c's.
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
#include "mcp_http_internal.h"
#include "sse.h"
#include "webproxy.h"

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
bool mcp__is_visible_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    }
    return n > 0;
}

/* ---- failure and delivery ---- */

void mcp__kick(struct mcp_http *t)
{
    if (!t->closing)
        uv_timer_start(&t->kick, on_kick, 0, 0);
}

/* The transport is broken: the first reason stands; on_closed comes from the kick. Safe
 * inside libcurl's callbacks. */
void mcp__fail(struct mcp_http *t, const char *fmt, ...)
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
bool mcp__receive(struct mcp_http *t, const char *data, size_t len)
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

void mcp__req_free(struct mcp_req *r)
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
        mcp__req_free(LIST_FIRST(&t->reqs));
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
struct mcp_req *mcp__req_new(struct mcp_http *t, enum mcp_req_kind kind, struct mcp_msg *msg)
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
bool mcp__req_launch(struct mcp_req *r, const char *url)
{
    struct mcp_http *t = r->t;

    if (httpc_xfer_new(t->client, &mcp__req_ops, r, &r->xfer, &r->easy) != 0 ||
        !req_build_headers(r) || req_setup(r, url) != 0 || httpc_xfer_start(r->xfer) != 0) {
        mcp__req_free(r);
        mcp__fail(t, "cannot set up an HTTP request");
        return false;
    }
    return true;
}

/* Starts a request of kind to url, as mcp__req_new and req_launch. */
struct mcp_req *mcp__req_start(struct mcp_http *t, enum mcp_req_kind kind, const char *url,
                                      struct mcp_msg *msg)
{
    struct mcp_req *r = mcp__req_new(t, kind, msg);

    return r != NULL && mcp__req_launch(r, url) ? r : NULL;
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
bool mcp__set_endpoint(struct mcp_http *t, const char *data, size_t len)
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
void mcp__release(struct mcp_http *t)
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

    if (strlen(version) > MCP_HTTP_VERSION_MAX ||
        !mcp__is_visible_ascii(version, strlen(version)) || (copy = strdup(version)) == NULL)
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
