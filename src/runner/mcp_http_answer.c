/*
 * mcp_http_answer.c - the answers of the MCP client's HTTP transport (mcp_http_internal.h):
 * an answer's head (status, content type, session id), its body as JSON or as an SSE
 * stream, the resumption of a broken answer stream, and the end of each transfer. Like
 * the rest of the transport, libcurl's callbacks here only record; the kick delivers.
 */
#include <stdlib.h>
#include <string.h>

#include "ascii.h"
#include "buf.h"
#include "err.h"
#include "mcp_http_internal.h"
#include "sse.h"

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
    if (n > MCP_HTTP_SESSION_ID_MAX || !mcp__is_visible_ascii(v, n)) {
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
                again = mcp__req_launch(r, t->url); /* the list changed: look again */
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
        strlen(id) > MCP_HTTP_EVENT_ID_MAX || !mcp__is_visible_ascii(id, strlen(id)))
        return false;
    for (unsigned i = 0; i < r->tries; i++)
        delay = delay * 3 / 2 < MCP_HTTP_RESUME_MAX_MS ? delay * 3 / 2 : MCP_HTTP_RESUME_MAX_MS;
    if ((next = mcp__req_new(t, REQ_RESUME, NULL)) == NULL)
        return true; /* the transport failed: nothing more to do */
    if ((next->last_event_id = strdup(id)) == NULL) {
        mcp__req_free(next);
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
        mcp__req_free(r);
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
    mcp__req_free(r);
}

const struct httpc_xfer_ops mcp__req_ops = {
    .on_header = on_header,
    .on_body = on_body,
    .on_done = on_done,
};
