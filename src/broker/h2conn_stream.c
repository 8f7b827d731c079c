/*
 * h2conn_stream.c - one request on an HTTP/2 connection (h2conn.h): turning a
 * struct h2_request into HEADERS (RFC 9113 8.2 and 8.3), reading the request body ahead
 * for nghttp2, and handing the response to the stream's callbacks in order: the head,
 * the body (with pauses, and flow control that follows the reader), then on_done once.
 *
 * The connection half (h2conn.c) records what arrived and calls h2conn__stream_step from
 * its pump; this file never calls into nghttp2's receive or send side.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ascii.h"
#include "err.h"
#include "h2conn_internal.h"
#include "upstream.h"

/* ---- the response as it arrives ---- */

void h2conn__stream_fail(struct h2_stream *s, bool retryable, const char *fmt, ...)
{
    va_list ap;

    if (s->failed)
        return;
    s->failed = true;
    s->retryable = retryable;
    va_start(ap, fmt);
    vsnprintf(s->detail, sizeof(s->detail), fmt, ap);
    va_end(ap);
}

int h2conn__stream_hold(struct h2_stream *s, const uint8_t *data, size_t len)
{
    size_t cap;
    uint8_t *p;

    /* Flow control bounds what the server may send us to one window of bytes not yet
     * taken (we hand the stream window back only as on_body takes them); nghttp2 checks
     * that, and so do we before allocating. */
    if (len > H2CONN_STREAM_WINDOW - s->rlen)
        return ERR_TOO_LARGE;
    if (s->roff + s->rlen + len > s->rcap) {
        if (s->rlen + len <= s->rcap) {
            memmove(s->rb, s->rb + s->roff, s->rlen);
        } else {
            /* A small first piece (most responses are one) gets a small buffer: a 16 KiB
             * one is past malloc's per-thread cache and cost ~1,000 instructions a
             * request (callgrind). A stream that carries more doubles from there. */
            cap = s->rcap ? s->rcap : s->rlen + len <= 1024 ? 1024 : 16384;
            while (cap < s->rlen + len)
                cap *= 2;
            if (cap > H2CONN_STREAM_WINDOW)
                cap = H2CONN_STREAM_WINDOW;
            if ((p = malloc(cap)) == NULL)
                return ERR_NOMEM;
            if (s->rlen)
                memcpy(p, s->rb + s->roff, s->rlen);
            free(s->rb);
            s->rb = p;
            s->rcap = cap;
        }
        s->roff = 0;
    }
    memcpy(s->rb + s->roff + s->rlen, data, len);
    s->rlen += len;
    if (s->rlen > s->peak)
        s->peak = s->rlen;
    return 0;
}

int h2conn__stream_add_field(struct h2_stream *s, const uint8_t *name, size_t namelen,
                             const uint8_t *value, size_t valuelen)
{
    size_t need = namelen + valuelen, cap;
    void *p;

    /* Both sizes are bounded by H2CONN_MAX_HEAD_BYTES and H2CONN_MAX_HEAD_FIELDS, which
     * the caller checked first. */
    if (s->nfields == s->fields_cap) {
        cap = s->fields_cap ? s->fields_cap * 2 : 16;
        if ((p = realloc(s->fields, cap * sizeof(*s->fields))) == NULL)
            return ERR_NOMEM;
        s->fields = p;
        s->fields_cap = cap;
    }
    if (need > s->hcap - s->hlen) {
        cap = s->hcap ? s->hcap : 1024;
        while (cap - s->hlen < need)
            cap *= 2;
        if ((p = realloc(s->hbuf, cap)) == NULL)
            return ERR_NOMEM;
        s->hbuf = p;
        s->hcap = cap;
    }
    s->fields[s->nfields] = (struct h2_field){s->hlen, namelen, s->hlen + namelen, valuelen};
    if (namelen)
        memcpy(s->hbuf + s->hlen, name, namelen);
    if (valuelen)
        memcpy(s->hbuf + s->hlen + namelen, value, valuelen);
    s->hlen += need;
    s->nfields++;
    return 0;
}

void h2conn__stream_free(struct h2_stream *s)
{
    if (!s)
        return;
    free(s->hbuf);
    free(s->fields);
    free(s->rb);
    free(s->sb);
    memset(s, 0, sizeof(*s));
    free(s);
}

/* ---- delivery (from the pump only) ---- */

/* The stream is over: no callback after this one. */
static void stream__finish(struct h2_stream *s, int result, const char *detail, bool retryable)
{
    struct h2conn *c = s->c;

    s->dead = true;
    c->live--;
    c->cap_changed = true;
    if (!s->ng_closed && !c->closed) {
        /* Complete while our request body is still going (the server answered early) or
         * failed by us: the stream ends on the wire too. NO_ERROR for the former, as RFC
         * 9113 8.1 has a server do. */
        nghttp2_session_set_stream_user_data(c->ng, s->id, NULL);
        if (!s->reset_queued)
            nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, s->id,
                                      result == 0 ? NGHTTP2_NO_ERROR : NGHTTP2_CANCEL);
    }
    s->ops->on_done(s->ud, result, detail, retryable);
}

static void stream__deliver_head(struct h2conn *c, struct h2_stream *s)
{
    struct http1_header *h = NULL;
    size_t i;

    if (s->nfields && (h = calloc(s->nfields, sizeof(*h))) == NULL) {
        h2conn__stream_fail(s, false, "out of memory for the response head");
        return;
    }
    for (i = 0; i < s->nfields; i++) {
        h[i].name.base = s->hbuf + s->fields[i].name_off;
        h[i].name.len = s->fields[i].name_len;
        h[i].value.base = s->hbuf + s->fields[i].value_off;
        h[i].value.len = s->fields[i].value_len;
    }
    s->head_delivered = true;
    s->ops->on_head(s->ud, s->status, h, s->nfields);
    free(h);
    if (s->dead || c->closed)
        return;
    free(s->hbuf);
    free(s->fields);
    s->hbuf = NULL;
    s->fields = NULL;
    s->hlen = s->hcap = s->nfields = s->fields_cap = 0;
}

/* Reads the next piece of the request body for nghttp2's data source. */
static void stream__fill(struct h2conn *c, struct h2_stream *s)
{
    ssize_t n = s->ops->read_body(s->ud, s->sb, H2CONN_BODY_CHUNK);

    if (s->dead || c->closed)
        return;
    if (n == H2_PAUSE) {
        s->body_wait = true;
        return;
    }
    if (n < 0 || (size_t)n > H2CONN_BODY_CHUNK) {
        h2conn__stream_fail(s, false, "reading the request body failed");
        return;
    }
    if (n == 0) {
        if (s->body_len >= 0 && s->body_read != s->body_len) {
            h2conn__stream_fail(s, false, "request body shorter than its content-length");
            return;
        }
        s->body_eof = true;
    } else {
        s->body_read += n;
        if (s->body_len >= 0 && s->body_read > s->body_len) {
            h2conn__stream_fail(s, false, "request body longer than its content-length");
            return;
        }
        s->slen = (size_t)n;
        s->soff = 0;
    }
    if (s->data_deferred) {
        s->data_deferred = false;
        if (nghttp2_is_fatal(nghttp2_session_resume_data(c->ng, s->id)))
            h2conn__fail(c, "out of memory");
    }
}

void h2conn__stream_step(struct h2conn *c, struct h2_stream *s)
{
    bool complete = s->head_ready && s->remote_ended;
    size_t n;
    int r;

    /* The head first, so that a failure after it reads as one after the head. */
    if (s->head_ready && !s->head_delivered) {
        stream__deliver_head(c, s);
        if (s->dead || c->closed)
            return;
    }
    if (!s->failed && !complete && c->goaway_received && s->id > c->goaway_last_id)
        h2conn__stream_fail(s, true,
                            "the upstream sent GOAWAY (last stream %d): the request was not "
                            "processed",
                            (int)c->goaway_last_id);
    if (!s->failed && !complete && c->failing)
        h2conn__stream_fail(s,
                            !s->headers_sent || (c->goaway_received && s->id > c->goaway_last_id),
                            "%s", c->reason);
    if (s->failed) {
        /* Body bytes still held are dropped: the response is broken anyway. */
        stream__finish(s, s->head_delivered ? UPSTREAM_ERR_TRANSFER : UPSTREAM_ERR_CONNECT,
                       s->detail, s->retryable && !s->head_delivered);
        return;
    }
    while (s->head_delivered && s->rlen > 0 && !s->paused) {
        n = s->held ? s->held : s->rlen;
        r = s->ops->on_body(s->ud, s->rb + s->roff, n);
        if (s->dead || c->closed)
            return;
        if (r == H2_PAUSE) {
            s->held = n;
            s->paused = true;
            break;
        }
        if (r != 0) {
            h2conn__stream_fail(s, false, "the response body was refused by its reader");
            stream__finish(s, UPSTREAM_ERR_TRANSFER, s->detail, false);
            return;
        }
        s->roff += n;
        s->rlen -= n;
        s->held = 0;
        if (s->rlen == 0)
            s->roff = 0;
        /* Only now does the server get this much stream window back. */
        if (!s->ng_closed && nghttp2_is_fatal(nghttp2_session_consume_stream(c->ng, s->id, n)))
            h2conn__fail(c, "out of memory");
    }
    if (s->head_delivered && s->remote_ended && s->rlen == 0) {
        stream__finish(s, 0, "complete", false);
        return;
    }
    if (s->has_body && !s->body_eof && s->slen == 0 && !s->body_wait && !c->failing &&
        !s->ng_closed) {
        stream__fill(c, s);
        if (s->failed && !s->dead && !c->closed)
            stream__finish(s, s->head_delivered ? UPSTREAM_ERR_TRANSFER : UPSTREAM_ERR_CONNECT,
                           s->detail, false);
    }
}

/* ---- the request ---- */

/* Hop-by-hop and framing fields HTTP/2 has no place for (RFC 9113 8.2.2), and ours. */
static bool req__dropped(const char *name, size_t len)
{
    static const char *const drop[] = {"connection",        "keep-alive", "proxy-connection",
                                       "transfer-encoding", "upgrade",    "host",
                                       "content-length"};
    size_t i;

    for (i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
        if (strlen(drop[i]) == len && memcmp(drop[i], name, len) == 0)
            return true;
    return false;
}

/* Sent as never-indexed literals (RFC 7541 6.2.3): where a key may travel. */
static bool req__sensitive(const char *name, size_t len)
{
    return (len == 13 && memcmp(name, "authorization", 13) == 0) ||
           (len == 19 && memcmp(name, "proxy-authorization", 19) == 0) ||
           (len == 6 && memcmp(name, "cookie", 6) == 0) ||
           (len == 5 && memcmp(name, ":path", 5) == 0);
}

static bool req__clean(const char *v)
{
    return v && *v && strpbrk(v, "\r\n") == NULL;
}

/* Is name (lower case) listed by one of the request's Connection fields? */
static bool req__named_by_connection(const struct h2_request *rq, const char *name, size_t len)
{
    const char *line, *colon;
    size_t i;

    for (i = 0; i < rq->nheaders; i++) {
        line = rq->headers[i];
        if (!line || (colon = strchr(line, ':')) == NULL ||
            !ascii_ieq_lower(line, (size_t)(colon - line), "connection"))
            continue;
        if (http1_list_has_token(colon + 1, strlen(colon + 1), name, len))
            return true;
    }
    return false;
}

static void req__nv(nghttp2_nv *nv, const char *name, size_t namelen, const char *value,
                    size_t valuelen)
{
    nv->name = (uint8_t *)(uintptr_t)name;
    nv->namelen = namelen;
    nv->value = (uint8_t *)(uintptr_t)value;
    nv->valuelen = valuelen;
    nv->flags = req__sensitive(name, namelen) ? NGHTTP2_NV_FLAG_NO_INDEX : NGHTTP2_NV_FLAG_NONE;
}

/* Fills nva (room for 5 + nheaders) with names lower-cased into names (room for every
 * line's length). Returns the count, or ERR_INVALID. */
static int req__build(const struct h2_request *rq, nghttp2_nv *nva, char *names, char *cl,
                      size_t cl_len)
{
    const char *line, *colon, *v, *end;
    size_t i, n = 0, namelen, k;
    char *name;

    if (!req__clean(rq->method) || !req__clean(rq->scheme) || !req__clean(rq->path) ||
        (rq->authority && !req__clean(rq->authority)))
        return ERR_INVALID;
    for (i = 0; rq->method[i]; i++)
        if (!ascii_is_tchar((unsigned char)rq->method[i]))
            return ERR_INVALID;
    req__nv(&nva[n++], ":method", 7, rq->method, strlen(rq->method));
    req__nv(&nva[n++], ":scheme", 7, rq->scheme, strlen(rq->scheme));
    if (rq->authority)
        req__nv(&nva[n++], ":authority", 10, rq->authority, strlen(rq->authority));
    req__nv(&nva[n++], ":path", 5, rq->path, strlen(rq->path));
    for (i = 0; i < rq->nheaders; i++) {
        line = rq->headers[i];
        if (!line || (colon = strchr(line, ':')) == NULL || colon == line)
            return ERR_INVALID;
        namelen = (size_t)(colon - line);
        name = names;
        for (k = 0; k < namelen; k++) {
            if (!ascii_is_tchar((unsigned char)line[k]))
                return ERR_INVALID;
            name[k] = (char)ascii_tolower((unsigned char)line[k]);
        }
        names += namelen;
        v = colon + 1;
        end = v + strlen(v);
        if (strpbrk(v, "\r\n"))
            return ERR_INVALID;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (req__dropped(name, namelen) || req__named_by_connection(rq, name, namelen))
            continue;
        if (namelen == 2 && memcmp(name, "te", 2) == 0) {
            /* RFC 9113 8.2.2: TE may only say "trailers" */
            if (http1_list_has_token(v, (size_t)(end - v), "trailers", 8))
                req__nv(&nva[n++], "te", 2, "trailers", 8);
            continue;
        }
        req__nv(&nva[n++], name, namelen, v, (size_t)(end - v));
    }
    if (rq->has_body && rq->body_len >= 0) {
        snprintf(cl, cl_len, "%lld", (long long)rq->body_len);
        req__nv(&nva[n++], "content-length", 14, cl, strlen(cl));
    }
    return (int)n;
}

int h2conn_submit(struct h2conn *c, const struct h2_request *rq, const struct h2_stream_ops *ops,
                  void *ud, struct h2_stream **out)
{
    nghttp2_data_provider prd;
    nghttp2_nv *nva = NULL;
    struct h2_stream *s = NULL;
    char *names = NULL, cl[24];
    size_t i, total = 1;
    int32_t id;
    int n, r;

    *out = NULL;
    if (c->closed || c->failing || c->draining || c->transport_gone)
        return ERR_CLOSED;
    if (!h2conn_available(c))
        return ERR_LIMIT;
    if (rq->has_body && (!ops->read_body || rq->body_len < -1))
        return ERR_INVALID;
    for (i = 0; i < rq->nheaders; i++)
        total += rq->headers[i] ? strlen(rq->headers[i]) : 0;
    if ((nva = calloc(5 + rq->nheaders, sizeof(*nva))) == NULL || (names = malloc(total)) == NULL ||
        (s = calloc(1, sizeof(*s))) == NULL) {
        r = ERR_NOMEM;
        goto out;
    }
    if ((n = req__build(rq, nva, names, cl, sizeof(cl))) < 0) {
        r = n;
        goto out;
    }
    s->c = c;
    s->ops = ops;
    s->ud = ud;
    s->has_body = rq->has_body && rq->body_len != 0;
    s->body_len = rq->has_body ? rq->body_len : 0;
    s->body_eof = !s->has_body;
    s->resp_len = -1;
    s->is_head = strcmp(rq->method, "HEAD") == 0;
    if (s->has_body && (s->sb = malloc(H2CONN_BODY_CHUNK)) == NULL) {
        r = ERR_NOMEM;
        goto out;
    }
    prd.source.ptr = s;
    prd.read_callback = h2conn__read_body_cb;
    /* nghttp2 copies names and values (no NO_COPY flags) into the frame it frees once the
     * HEADERS are sent: wiped then (its allocator, h2conn.c), and never in the HPACK
     * tables (NO_INDEX). */
    id = nghttp2_submit_request(c->ng, NULL, nva, (size_t)n, s->has_body ? &prd : NULL, s);
    if (id < 0) {
        if (id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE && !c->draining) {
            c->draining = true;
            snprintf(c->reason, sizeof(c->reason), "HTTP/2 stream ids used up");
            h2conn__schedule(c);
        }
        r = id == NGHTTP2_ERR_NOMEM ? ERR_NOMEM : ERR_CLOSED;
        goto out;
    }
    s->id = id;
    s->prev = c->tail;
    if (c->tail)
        c->tail->next = s;
    else
        c->head = s;
    c->tail = s;
    c->live++;
    *out = s;
    s = NULL; /* transferred */
    r = 0;
    /* Sent by the pump, which runs before the loop next waits: the HEADERS of every
     * request submitted in this loop turn leave in one write. */
    h2conn__schedule(c);
out:
    h2conn__stream_free(s);
    free(nva);
    free(names);
    return r;
}

void h2_stream_resume(struct h2_stream *s)
{
    if (!s || s->dead)
        return;
    s->paused = false;
    s->body_wait = false;
    h2conn__schedule(s->c);
}

void h2_stream_cancel(struct h2_stream *s)
{
    struct h2conn *c;

    if (!s || s->dead)
        return;
    c = s->c;
    s->dead = true;
    c->live--;
    c->cap_changed = true;
    if (!s->ng_closed && !c->closed) {
        nghttp2_session_set_stream_user_data(c->ng, s->id, NULL);
        nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
    }
    h2conn__schedule(c); /* sends the RST_STREAM, frees s, maybe on_capacity */
}

size_t h2_stream_buffered(const struct h2_stream *s)
{
    return s->rlen;
}

size_t h2_stream_buffered_peak(const struct h2_stream *s)
{
    return s->peak;
}

int32_t h2_stream_id(const struct h2_stream *s)
{
    return s->id;
}
