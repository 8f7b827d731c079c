/*
 * upstream_req.c - one request to the upstream: the callbacks the connection (h1conn.h or
 * h2conn.h) calls, turned into upstream.h's; its deadlines; the decoding of a compressed
 * response; the one retry. The pool (connections, queues) is upstream.c.
 *
 * Decoding (DESIGN.md section 2: the scrubber must see plaintext). A response with a
 * Content-Encoding we can decode is handed to the child decoded, without that header and
 * without its Content-Length (the child's framing becomes chunked). The decoder is pulled
 * at the child's pace: an encoded chunk is decoded UPSTREAM_DECODE_CHUNK bytes at a time,
 * and when the child pauses the connection is told to pause too and offers the same chunk
 * again later; `skip` says how much of it the decoder has already read, `dec_out` holds
 * what it produced and the child has not taken. So one chunk and 16 KiB are all a paused
 * request keeps, whatever the compression ratio.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "decode.h"
#include "err.h"
#include "upstream_internal.h"

/* ---- the end ---- */

static void req_timer_closed(uv_handle_t *h)
{
    struct upstream_req *r = h->data;

    if (r->block != NULL) {
        explicit_bzero(r->block, r->block_len);
        free(r->block);
    }
    content_decoder_free(r->dec);
    if (r->dec_out != NULL) {
        explicit_bzero(r->dec_out, UPSTREAM_DECODE_CHUNK);
        free(r->dec_out);
    }
    free(r);
}

/* Takes r off every list and its connection; frees it from a later loop turn. */
static void req__destroy(struct upstream_req *r)
{
    struct upstream *u = r->u;

    r->finished = true;
    if (r->hx != NULL)
        h1_exchange_cancel(r->hx);
    if (r->hs != NULL)
        h2_stream_cancel(r->hs);
    r->hx = NULL;
    r->hs = NULL;
    if (r->pc != NULL)
        upstream__release(r);
    if (r->queued) {
        TAILQ_REMOVE(&r->o->waiting, r, qlink);
        r->queued = false;
    }
    LIST_REMOVE(r, link);
    u->active--;
    deadline_close(&r->timer, req_timer_closed);
}

void upstream__req_fail(struct upstream_req *r, int result, const char *detail)
{
    const struct upstream_req_ops *ops = r->ops;
    void *ud = r->ud;
    char text[256] __attribute__((uninitialized));

    if (r->finished)
        return;
    /* Copied first: detail may live in r or in the connection, gone after destroy. Every
     * request ends here, most with no detail: no printf, no zeroing for those (CG). */
    if (detail == NULL || detail[0] == '\0')
        text[0] = '\0';
    else
        snprintf(text, sizeof(text), "%s", detail);
    req__destroy(r);
    ops->on_done(ud, result, text);
}

/* ---- deadlines ---- */

static void on_req_timer(struct deadline *d)
{
    struct upstream_req *r = deadline_data(d);

    if (!r->head_done)
        upstream__req_fail(r, UPSTREAM_ERR_HEAD_TIMEOUT, "no response head in time");
    else
        upstream__req_fail(r, UPSTREAM_ERR_STALLED, "transfer stalled");
}

/* Restarts the current deadline: progress was made. */
static void req__touch(struct upstream_req *r)
{
    uint64_t ms = r->head_done ? r->stall_timeout_ms : r->head_timeout_ms;

    if (ms > 0 && !r->finished)
        deadline_set(&r->timer, ms);
}

/* ---- the connection's callbacks ---- */

static bool is_encoding(const struct http1_header *h)
{
    return h->name.len == 16 && strncasecmp(h->name.base, "content-encoding", 16) == 0;
}

static void on_head(void *ud, int status, const struct http1_header *headers, size_t n)
{
    struct upstream_req *r = ud;
    struct upstream *u = r->u;
    char coding[256] __attribute__((uninitialized)); /* only [0, used) is read */
    size_t used = 0, kept = 0;
    int rc;

    r->head_done = true;
    r->head_ms = uv_now(u->loop) - r->start_ms;
    req__touch(r);
    /* Every Content-Encoding line, in order, as one list. */
    for (size_t i = 0; i < n; i++) {
        if (!is_encoding(&headers[i]))
            continue;
        if (used + headers[i].value.len + 2 >= sizeof(coding)) {
            used = sizeof(coding); /* too long to be anything we decode */
            break;
        }
        if (used > 0)
            coding[used++] = ',';
        memcpy(coding + used, headers[i].value.base, headers[i].value.len);
        used += headers[i].value.len;
    }
    rc = used > 0 && used < sizeof(coding) ? content_decoder_new(coding, used, &r->dec)
                                           : ERR_UNSUPPORTED;
    if (rc == ERR_NOMEM || (r->dec != NULL &&
                            (r->dec_out = malloc(UPSTREAM_DECODE_CHUNK)) == NULL)) {
        upstream__req_fail(r, UPSTREAM_ERR_TRANSFER, "out of memory");
        return;
    }
    if (r->dec == NULL) {
        /* Not encoded, or in a coding we do not know: passed on as it came, with its
         * header, so the child knows what it has. */
        r->ops->on_head(r->ud, status, headers, n);
        return;
    }
    for (size_t i = 0; i < n && kept < UPSTREAM_MAX_HEADERS; i++) {
        if (is_encoding(&headers[i]) ||
            (headers[i].name.len == 14 && strncasecmp(headers[i].name.base, "content-length", 14) == 0))
            continue;
        u->head_views[kept++] = headers[i];
    }
    r->ops->on_head(r->ud, status, u->head_views, kept);
}

/* Offers decoded bytes; false when the child paused (they stay in dec_out) or r ended. */
static bool req__offer_decoded(struct upstream_req *r)
{
    int rc;

    if (r->dec_off == r->dec_len)
        return true;
    rc = r->ops->on_body(r->ud, r->dec_out + r->dec_off, r->dec_len - r->dec_off);
    if (r->finished || rc == UPSTREAM_PAUSE)
        return false;
    r->dec_off = r->dec_len;
    req__touch(r);
    return true;
}

static int on_body_decoded(struct upstream_req *r, const uint8_t *data, size_t len)
{
    bool more = true; /* the decoder may hold output without new input */

    for (;;) {
        size_t consumed = 0, produced = 0;
        int rc;

        if (!req__offer_decoded(r))
            return r->finished ? 0 : UPSTREAM_PAUSE;
        if (r->skip == len && !more) {
            r->skip = 0;
            return 0;
        }
        if (r->dec_end) {
            upstream__req_fail(r, UPSTREAM_ERR_TRANSFER,
                               "bytes after the end of the compressed response");
            return 0;
        }
        rc = content_decoder_run(r->dec, data + r->skip, len - r->skip, &consumed, r->dec_out,
                                 UPSTREAM_DECODE_CHUNK, &produced);
        if (rc < 0) {
            char why[200];

            snprintf(why, sizeof(why), "cannot decode the response: %s",
                     content_decoder_error(r->dec));
            upstream__req_fail(r, UPSTREAM_ERR_TRANSFER, why);
            return 0;
        }
        r->skip += consumed;
        r->dec_off = 0;
        r->dec_len = produced;
        r->dec_end = rc == CONTENT_DECODER_END;
        more = produced == UPSTREAM_DECODE_CHUNK;
        if (consumed == 0 && produced == 0 && r->skip < len && !r->dec_end) {
            upstream__req_fail(r, UPSTREAM_ERR_TRANSFER, "the response's decoder is stuck");
            return 0;
        }
    }
}

static int on_body(void *ud, const uint8_t *data, size_t len)
{
    struct upstream_req *r = ud;
    int rc;

    if (r->finished)
        return 0;
    if (r->dec != NULL)
        return on_body_decoded(r, data, len);
    rc = r->ops->on_body(r->ud, data, len);
    if (r->finished)
        return 0;
    if (rc != UPSTREAM_PAUSE)
        req__touch(r);
    return rc == UPSTREAM_PAUSE ? UPSTREAM_PAUSE : 0;
}

static ssize_t read_body(void *ud, uint8_t *dst, size_t max)
{
    struct upstream_req *r = ud;
    ssize_t n;

    if (r->finished)
        return UPSTREAM_PAUSE;
    n = r->ops->read_body(r->ud, dst, max);
    if (n > 0) {
        r->body_read = true;
        req__touch(r);
    }
    return n;
}

static bool idempotent(const char *method)
{
    static const char *const m[] = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"};

    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
        if (strcmp(method, m[i]) == 0)
            return true;
    }
    return false;
}

static void on_done(void *ud, int result, const char *detail, bool retryable)
{
    struct upstream_req *r = ud;
    bool over_h2 = r->hs != NULL;

    if (r->finished)
        return;
    r->hx = NULL; /* the connection's exchange is over */
    r->hs = NULL;
    upstream__release(r);
    if (result == 0 && r->dec != NULL && !r->dec_end && content_decoder_finish(r->dec) != 0) {
        upstream__req_fail(r, UPSTREAM_ERR_TRANSFER, "the compressed response is cut short");
        return;
    }
    /* Once, on a new connection, and only what may be sent twice: nothing of the body
     * taken, nothing of the answer seen; over HTTP/1.1 an idempotent method too (the
     * upstream may have acted on it), over HTTP/2 the upstream said it did not (GOAWAY
     * above the stream, REFUSED_STREAM). */
    if (result != 0 && retryable && r->attempts < 2 && !r->head_done &&
        (!r->has_body || !r->body_read) && (over_h2 || idempotent(r->method))) {
        r->fresh_only = true;
        TAILQ_INSERT_HEAD(&r->o->waiting, r, qlink);
        r->queued = true;
        upstream__dispatch(r->o);
        return;
    }
    upstream__req_fail(r, result, detail);
}

const struct h1_exchange_ops upstream__h1_ops = {on_head, on_body, read_body, on_done};
const struct h2_stream_ops upstream__h2_ops = {on_head, on_body, read_body, on_done};

/* ---- the public side ---- */

void upstream_req_cancel(struct upstream_req *r)
{
    if (r == NULL || r->finished)
        return;
    req__destroy(r);
}

void upstream_req_resume(struct upstream_req *r)
{
    if (r->finished)
        return;
    if (r->held) {
        r->held = false;
        TAILQ_INSERT_TAIL(&r->o->waiting, r, qlink);
        r->queued = true;
        upstream__dispatch(r->o);
        return;
    }
    if (r->hx != NULL)
        h1_exchange_resume(r->hx);
    else if (r->hs != NULL)
        h2_stream_resume(r->hs);
}

uint64_t upstream_req_head_ms(const struct upstream_req *r)
{
    return r->head_ms;
}

/* A new request for o, queued; copies what the spec says to send. */
int upstream__req_new(struct upstream *u, struct origin *o, const struct upstream_req_spec *spec,
                      const char *path, const struct upstream_req_ops *ops, void *ud,
                      struct upstream_req **out)
{
    struct upstream_req *r;
    size_t len = spec->nheaders * sizeof(char *) + strlen(path) + 1;
    size_t method_len = strlen(spec->method);
    char *p;

    *out = NULL;
    if (method_len >= UPSTREAM_METHOD_MAX)
        return ERR_INVALID;
    for (size_t i = 0; i < spec->nheaders; i++)
        len += strlen(spec->headers[i]) + 1;
    if ((r = calloc(1, sizeof(*r))) == NULL)
        return ERR_NOMEM;
    /* One block: the pointers first (aligned as malloc's), then the strings. */
    if ((r->block = malloc(len)) == NULL) {
        free(r);
        return ERR_NOMEM;
    }
    r->block_len = len;
    r->headers = r->block;
    p = (char *)r->block + spec->nheaders * sizeof(char *);
    for (; r->nheaders < spec->nheaders; r->nheaders++) {
        size_t n = strlen(spec->headers[r->nheaders]) + 1;

        r->headers[r->nheaders] = memcpy(p, spec->headers[r->nheaders], n);
        p += n;
    }
    r->path = memcpy(p, path, strlen(path) + 1);
    r->u = u;
    r->o = o;
    memcpy(r->method, spec->method, method_len + 1);
    r->has_body = spec->has_body;
    r->body_len = spec->body_len;
    r->ops = ops;
    r->ud = ud;
    r->head_timeout_ms = spec->response_head_timeout_ms;
    r->stall_timeout_ms = spec->stall_timeout_ms;
    r->start_ms = uv_now(u->loop);
    deadline_init(u->loop, &r->timer, on_req_timer, r);
    LIST_INSERT_HEAD(&u->reqs, r, link);
    u->active++;
    /* A request with a body waits for its first bytes (upstream_req_resume): the upstream
     * never sees the head of a request whose body then turns out malformed. */
    r->held = spec->has_body;
    if (!r->held) {
        TAILQ_INSERT_TAIL(&o->waiting, r, qlink);
        r->queued = true;
    }
    req__touch(r);
    *out = r;
    return 0;
}
