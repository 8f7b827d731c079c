/*
 * fuzz_http1_response.c - the upstream's response head parser (http1_parse_response),
 * which the broker's own HTTP/1.1 client meets with whatever an upstream sends.
 *
 * The input is plain protocol bytes; its first byte's low bit says whether the request
 * was HEAD (then that byte is dropped).
 *
 * Properties, each checked on every input:
 *   - a parsed head lies within the input (head_len <= len, and within the head
 *     limit), ends with CRLF CRLF, holds no NUL, bare CR or LF, or obs-fold; its
 *     status line is "HTTP/1.x DDD" with the status and version parsed; views lie in
 *     the head, in order, names are tokens followed by ':', values are trimmed
 *     field bytes; at most HTTP1_MAX_RESPONSE_HEADERS of them;
 *   - the framing (body kind, content_length, keep_alive) agrees with a recount of
 *     the headers done here from RFC 9112 6.3: Transfer-Encoding over Content-Length
 *     (and then no reuse); two differing lengths are never accepted;
 *   - parsing growing prefixes, as the client does while bytes arrive, gives
 *     ERR_INCOMPLETE until the whole head is there and then the same result;
 *   - an input refused as too large is one that really is: over the byte limit
 *     without its end, or with more field lines than the limit.
 * Each parse reads a copy in an exactly sized heap block, so ASan reports any read
 * past what was handed over.
 */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fuzz.h"
#include "http1.h"
#include "response.h"

static struct http1_response resp, again; /* 500 headers each: not on the stack */

static bool is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static bool iov_inside(const struct http1_iov *v, const char *buf, size_t len)
{
    uintptr_t b = (uintptr_t)buf, p = (uintptr_t)v->base;

    return v->base != NULL && p >= b && v->len <= len && p - b <= len - v->len;
}

/* The last coding of the last Transfer-Encoding line seen, as the parser must read it. */
static bool last_coding_is_chunked(const struct http1_iov *v)
{
    size_t e = v->len, s;

    while (e > 0 && (v->base[e - 1] == ',' || is_ows((unsigned char)v->base[e - 1])))
        e--;
    s = e;
    while (s > 0 && v->base[s - 1] != ',')
        s--;
    while (s < e && is_ows((unsigned char)v->base[s]))
        s++;
    return fuzz_eq_ci(v->base + s, e - s, "chunked");
}

static void check_head(const char *buf, size_t len, bool is_head, const struct http1_response *r)
{
    size_t hl = r->head_len, te_n = 0, cl_n = 0;
    bool chunked = false, close = false, keep = false;
    uint64_t cl = 0;

    FUZZ_CHECK(hl >= 16 && hl <= len && hl <= HTTP1_MAX_RESPONSE_HEAD, "head_len %zu of %zu", hl,
               len);
    FUZZ_CHECK(memcmp(buf + hl - 4, "\r\n\r\n", 4) == 0, "head does not end with CRLF CRLF");
    for (size_t i = 0; i < hl; i++) {
        unsigned char c = (unsigned char)buf[i];

        FUZZ_CHECK(c != '\0', "NUL at %zu accepted", i);
        FUZZ_CHECK(c != '\n' || (i > 0 && buf[i - 1] == '\r'), "bare LF at %zu accepted", i);
        FUZZ_CHECK(c != '\r' || (i + 1 < hl && buf[i + 1] == '\n'), "bare CR at %zu accepted", i);
        FUZZ_CHECK(c != '\n' || i + 1 == hl || !is_ows((unsigned char)buf[i + 1]),
                   "obs-fold at %zu accepted", i + 1);
    }
    FUZZ_CHECK(memcmp(buf, "HTTP/1.", 7) == 0 && buf[7] == '0' + r->minor_version &&
                   (r->minor_version == 0 || r->minor_version == 1) && buf[8] == ' ',
               "version");
    FUZZ_CHECK(r->status >= 100 && r->status <= 999 && buf[9] == '0' + r->status / 100 &&
                   buf[10] == '0' + r->status / 10 % 10 && buf[11] == '0' + r->status % 10,
               "status %d", r->status);
    FUZZ_CHECK(buf[12] == ' ' || buf[12] == '\r', "no space after the status");
    FUZZ_CHECK(r->num_headers <= HTTP1_MAX_RESPONSE_HEADERS, "%zu headers", r->num_headers);
    for (size_t k = 0; k < r->num_headers; k++) {
        const struct http1_header *h = &r->headers[k];

        FUZZ_CHECK(iov_inside(&h->name, buf, hl) && iov_inside(&h->value, buf, hl),
                   "header %zu outside the head", k);
        FUZZ_CHECK(k == 0 || h->name.base > r->headers[k - 1].value.base, "header %zu order", k);
        FUZZ_CHECK(h->name.len > 0 && h->name.base[-1] == '\n' && h->name.base[h->name.len] == ':',
                   "header %zu name", k);
        for (size_t i = 0; i < h->name.len; i++)
            FUZZ_CHECK(fuzz_is_tchar((unsigned char)h->name.base[i]), "header %zu name byte", k);
        FUZZ_CHECK(h->value.len == 0 || (!is_ows((unsigned char)h->value.base[0]) &&
                                         !is_ows((unsigned char)h->value.base[h->value.len - 1])),
                   "header %zu value not trimmed", k);
        if (fuzz_eq_ci(h->name.base, h->name.len, "content-length")) {
            uint64_t v;

            FUZZ_CHECK(fuzz_parse_digits(h->value.base, h->value.len, &v), "bad length accepted");
            FUZZ_CHECK(cl_n == 0 || v == cl, "differing lengths accepted");
            cl = v;
            cl_n++;
        } else if (fuzz_eq_ci(h->name.base, h->name.len, "transfer-encoding")) {
            te_n++;
            chunked = last_coding_is_chunked(&h->value);
        } else if (fuzz_eq_ci(h->name.base, h->name.len, "connection")) {
            close = close || fuzz_list_has(h->value.base, h->value.len, "close");
            keep = keep || fuzz_list_has(h->value.base, h->value.len, "keep-alive");
        }
    }
    if (is_head || r->status < 200 || r->status == 204 || r->status == 304) {
        FUZZ_CHECK(r->body == HTTP1_RESPONSE_NONE, "a body where none may be");
    } else if (te_n > 0) {
        FUZZ_CHECK(r->body == (chunked ? HTTP1_RESPONSE_CHUNKED : HTTP1_RESPONSE_CLOSE), "TE");
    } else if (cl_n > 0) { /* (with a Transfer-Encoding too, that one won above) */
        FUZZ_CHECK(r->body == HTTP1_RESPONSE_LENGTH && r->content_length == cl, "length");
    } else {
        FUZZ_CHECK(r->body == HTTP1_RESPONSE_CLOSE, "no framing but not close-delimited");
    }
    FUZZ_CHECK(r->keep_alive == (r->body != HTTP1_RESPONSE_CLOSE && !close &&
                                 !(te_n > 0 && cl_n > 0) && (r->minor_version == 1 || keep)),
               "keep_alive %d", r->keep_alive);
}

static int parse_copy(const char *data, size_t len, bool is_head, struct http1_response *out)
{
    char *copy = (char *)fuzz_dup(data, len);
    int r = http1_parse_response(copy, len, is_head, out);

    if (r == 0)
        check_head(copy, len, is_head, out);
    free(copy);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf;
    bool is_head;
    size_t len, lines = 0;
    int r;

    if (size == 0)
        return 0;
    is_head = data[0] & 1;
    buf = (const char *)data + 1;
    len = size - 1;
    r = parse_copy(buf, len, is_head, &resp);
    FUZZ_CHECK(r == 0 || r == ERR_INCOMPLETE || r == ERR_INVALID || r == ERR_HTTP_HEAD_TOO_LARGE,
               "unexpected result %d", r);
    if (r == ERR_INCOMPLETE)
        FUZZ_CHECK(len < HTTP1_MAX_RESPONSE_HEAD, "waiting past the head limit");
    if (r == ERR_HTTP_HEAD_TOO_LARGE) {
        for (size_t i = 0; i < len && i < HTTP1_MAX_RESPONSE_HEAD; i++)
            lines += buf[i] == '\n';
        FUZZ_CHECK(len >= HTTP1_MAX_RESPONSE_HEAD || lines > HTTP1_MAX_RESPONSE_HEADERS,
                   "too large at %zu bytes, %zu lines", len, lines);
    }
    if (r != 0)
        return 0;
    /* Growing prefixes: incomplete until the head is whole, then the same head. */
    for (size_t n = 0; n < resp.head_len; n += 1 + n / 8)
        FUZZ_CHECK(parse_copy(buf, n, is_head, &again) == ERR_INCOMPLETE, "prefix %zu", n);
    FUZZ_CHECK(parse_copy(buf, resp.head_len, is_head, &again) == 0 &&
                   again.head_len == resp.head_len && again.status == resp.status &&
                   again.num_headers == resp.num_headers && again.body == resp.body &&
                   again.keep_alive == resp.keep_alive,
               "the head alone parses differently");
    return 0;
}
