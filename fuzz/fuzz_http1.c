/*
 * fuzz_http1.c - the request head parser (http1.h) and the chunked decoder
 * (chunked.h), the two parsers a child's bytes meet first.
 *
 * The input is plain protocol bytes (a request head, maybe a body), so the
 * corpus stays readable and can be fed to other HTTP tools. Split points are
 * drawn from a generator seeded by the input (fuzz.h): every mutation moves
 * them, and a reproducer replays exactly.
 *
 * Properties, each checked on every input:
 *   - a parsed head lies within the input (head_len <= len, views inside it),
 *     ends with CRLF CRLF, and holds nothing the parser promises to refuse:
 *     NUL, bare CR or LF, obs-fold, a bad token, CL with TE, two Hosts, ...;
 *     the framing fields (body, content_length, keep_alive, expect_continue,
 *     upgrade) agree with a recount of the headers done here;
 *   - re-serialising the parsed request (method SP target SP HTTP/1.x CRLF,
 *     "name: value" CRLF per header, CRLF) and parsing that gives the same
 *     request;
 *   - parsing growing prefixes, as the broker does while bytes arrive, gives
 *     ERR_INCOMPLETE and then exactly the result of parsing the whole input;
 *   - the chunked decoder (on the body of a chunked request, or on the whole
 *     input when it is not a request) gives the same body bytes, outcome, end
 *     position and chunked_pending() fed whole, in random pieces and one byte
 *     at a time, and the same as a reference decoder written here from RFC
 *     9112 7.1; while data is pending, a call yields exactly that data first.
 * Each piece is copied into its own exactly sized heap block, so ASan reports
 * any read past what was handed over.
 */
#include <stdlib.h>
#include <string.h>

#include "chunked.h"
#include "err.h"
#include "fuzz.h"
#include "http1.h"

#define MAX_CUTS 12

/* ---- the head -------------------------------------------------------------------------------- */

static bool is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* RFC 9110 5.5 field-value bytes: HTAB, SP, VCHAR, obs-text. */
static bool is_field_byte(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool iov_inside(const struct http1_iov *v, const char *buf, size_t len)
{
    uintptr_t b = (uintptr_t)buf, p = (uintptr_t)v->base;

    return v->base != NULL && p >= b && v->len <= len && p - b <= len - v->len;
}

static bool is_host_byte(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != '\0' && strchr("-._~%!$&'()*+,;=:[]", c) != NULL;
}

/* Everything a successfully parsed head must satisfy; see the file comment. */
static void check_head(const char *buf, size_t len, const struct http1_request *req)
{
    size_t hl = req->head_len, pos = 0, cl_n = 0, te_n = 0, host_n = 0, expect_n = 0;
    bool close = false, keep = false, upgrade = false;
    uint64_t cl = 0;

    FUZZ_CHECK(hl >= 4 && hl <= len, "head_len %zu, input %zu", hl, len);
    FUZZ_CHECK(hl <= HTTP1_MAX_HEAD, "head_len %zu", hl);
    FUZZ_CHECK(memcmp(buf + hl - 4, "\r\n\r\n", 4) == 0, "head does not end with CRLF CRLF");
    for (size_t i = 0; i < hl; i++) {
        unsigned char c = (unsigned char)buf[i];

        FUZZ_CHECK(c != '\0', "NUL at %zu accepted", i);
        FUZZ_CHECK(c != '\n' || (i > 0 && buf[i - 1] == '\r'), "bare LF at %zu accepted", i);
        FUZZ_CHECK(c != '\r' || (i + 1 < hl && buf[i + 1] == '\n'), "bare CR at %zu accepted", i);
        FUZZ_CHECK(c != '\n' || i + 1 == hl || !is_ows((unsigned char)buf[i + 1]),
                   "a line starting with whitespace (obs-fold) at %zu accepted", i + 1);
    }

    /* The request line: after any empty lines, exactly method SP target SP HTTP/1.x CRLF. */
    while (pos + 1 < hl && buf[pos] == '\r' && buf[pos + 1] == '\n')
        pos += 2;
    FUZZ_CHECK(req->method.base == buf + pos && req->method.len > 0, "method view misplaced");
    for (size_t i = 0; i < req->method.len; i++)
        FUZZ_CHECK(fuzz_is_tchar((unsigned char)req->method.base[i]), "method byte %zu", i);
    pos += req->method.len;
    FUZZ_CHECK(buf[pos] == ' ' && req->target.base == buf + pos + 1 && req->target.len > 0,
               "target view misplaced");
    for (size_t i = 0; i < req->target.len; i++) {
        unsigned char c = (unsigned char)req->target.base[i];

        FUZZ_CHECK(c > 0x20 && c < 0x7f, "target byte 0x%02x accepted", c);
    }
    pos += 1 + req->target.len;
    FUZZ_CHECK(req->minor_version == 0 || req->minor_version == 1, "minor %d", req->minor_version);
    FUZZ_CHECK(hl - pos >= 10 && memcmp(buf + pos, " HTTP/1.", 8) == 0 &&
                   buf[pos + 8] == '0' + req->minor_version && buf[pos + 9] == '\r',
               "request line does not end in the version parsed");

    FUZZ_CHECK(req->num_headers <= HTTP1_MAX_HEADERS, "%zu headers", req->num_headers);
    for (size_t k = 0; k < req->num_headers; k++) {
        const struct http1_header *h = &req->headers[k];

        FUZZ_CHECK(iov_inside(&h->name, buf, hl) && iov_inside(&h->value, buf, hl),
                   "header %zu view outside the head", k);
        FUZZ_CHECK(k == 0 || h->name.base > req->headers[k - 1].value.base,
                   "header %zu out of order", k);
        FUZZ_CHECK(h->name.len > 0 && h->name.base[h->name.len] == ':', "header %zu name", k);
        FUZZ_CHECK(h->name.base[-1] == '\n', "header %zu does not start a line", k);
        for (size_t i = 0; i < h->name.len; i++)
            FUZZ_CHECK(fuzz_is_tchar((unsigned char)h->name.base[i]), "header %zu name byte", k);
        for (size_t i = 0; i < h->value.len; i++)
            FUZZ_CHECK(is_field_byte((unsigned char)h->value.base[i]), "header %zu value byte", k);
        FUZZ_CHECK(h->value.len == 0 || (!is_ows((unsigned char)h->value.base[0]) &&
                                         !is_ows((unsigned char)h->value.base[h->value.len - 1])),
                   "header %zu value not trimmed", k);

        if (fuzz_eq_ci(h->name.base, h->name.len, "content-length")) {
            uint64_t v;

            FUZZ_CHECK(fuzz_parse_digits(h->value.base, h->value.len, &v),
                       "malformed Content-Length accepted");
            FUZZ_CHECK(cl_n == 0 || v == cl, "differing Content-Lengths accepted");
            cl = v;
            cl_n++;
        } else if (fuzz_eq_ci(h->name.base, h->name.len, "transfer-encoding")) {
            FUZZ_CHECK(fuzz_eq_ci(h->value.base, h->value.len, "chunked"),
                       "a transfer coding other than chunked accepted");
            te_n++;
        } else if (fuzz_eq_ci(h->name.base, h->name.len, "host")) {
            for (size_t i = 0; i < h->value.len; i++)
                FUZZ_CHECK(is_host_byte((unsigned char)h->value.base[i]), "Host byte accepted");
            FUZZ_CHECK(req->host.base == h->value.base && req->host.len == h->value.len,
                       "req->host is not the Host field's value");
            host_n++;
        } else if (fuzz_eq_ci(h->name.base, h->name.len, "connection")) {
            close = close || fuzz_list_has(h->value.base, h->value.len, "close");
            keep = keep || fuzz_list_has(h->value.base, h->value.len, "keep-alive");
            FUZZ_CHECK(http1_list_has_token(h->value.base, h->value.len, "close", 5) ==
                           fuzz_list_has(h->value.base, h->value.len, "close"),
                       "http1_list_has_token disagrees on close");
        } else if (fuzz_eq_ci(h->name.base, h->name.len, "expect")) {
            FUZZ_CHECK(fuzz_eq_ci(h->value.base, h->value.len, "100-continue"),
                       "an expectation other than 100-continue accepted");
            expect_n++;
        } else if (fuzz_eq_ci(h->name.base, h->name.len, "upgrade")) {
            upgrade = true;
        }
    }
    FUZZ_CHECK(te_n <= 1 && host_n <= 1, "%zu TE, %zu Host accepted", te_n, host_n);
    FUZZ_CHECK(te_n == 0 || cl_n == 0, "Content-Length with Transfer-Encoding accepted");
    FUZZ_CHECK(req->minor_version == 0 || host_n == 1, "HTTP/1.1 without Host accepted");
    FUZZ_CHECK(host_n == 1 || (req->host.base == NULL && req->host.len == 0),
               "req->host set without a Host field");
    FUZZ_CHECK(te_n == 0 || req->minor_version == 1, "HTTP/1.0 with Transfer-Encoding accepted");
    if (te_n > 0)
        FUZZ_CHECK(req->body == HTTP1_BODY_CHUNKED, "body %d, want chunked", req->body);
    else if (cl_n > 0)
        FUZZ_CHECK(req->body == HTTP1_BODY_LENGTH && req->content_length == cl,
                   "body %d length %llu, want length %llu", req->body,
                   (unsigned long long)req->content_length, (unsigned long long)cl);
    else
        FUZZ_CHECK(req->body == HTTP1_BODY_NONE, "body %d, want none", req->body);
    FUZZ_CHECK(req->keep_alive == (req->minor_version == 1 ? !close : keep && !close),
               "keep_alive %d", req->keep_alive);
    FUZZ_CHECK(req->expect_continue == (expect_n > 0 && req->minor_version == 1),
               "expect_continue %d", req->expect_continue);
    FUZZ_CHECK(req->upgrade == upgrade, "upgrade %d", req->upgrade);
}

/* http1_field_of names a field iff its name is that field's, compared byte by byte here. */
static void check_field_of(const struct http1_request *req)
{
    static const struct {
        const char *lower;
        enum http1_field field;
    } names[] = {
        {"accept-encoding", HTTP1_FIELD_ACCEPT_ENCODING},
        {"authorization", HTTP1_FIELD_AUTHORIZATION},
        {"connection", HTTP1_FIELD_CONNECTION},
        {"content-length", HTTP1_FIELD_CONTENT_LENGTH},
        {"expect", HTTP1_FIELD_EXPECT},
        {"host", HTTP1_FIELD_HOST},
        {"keep-alive", HTTP1_FIELD_KEEP_ALIVE},
        {"te", HTTP1_FIELD_TE},
        {"trailer", HTTP1_FIELD_TRAILER},
        {"transfer-encoding", HTTP1_FIELD_TRANSFER_ENCODING},
        {"upgrade", HTTP1_FIELD_UPGRADE},
    };

    for (size_t k = 0; k < req->num_headers; k++) {
        const struct http1_iov *name = &req->headers[k].name;
        enum http1_field want = HTTP1_FIELD_OTHER, got = http1_field_of(name->base, name->len);

        if (name->len >= 6 && fuzz_eq_ci(name->base, 6, "proxy-"))
            want = HTTP1_FIELD_PROXY_ANY;
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            if (fuzz_eq_ci(name->base, name->len, names[i].lower))
                want = names[i].field;
        }
        FUZZ_CHECK(got == want, "header %zu: http1_field_of %d, want %d", k, (int)got, (int)want);
    }
}

static bool iov_eq(const struct http1_iov *a, const struct http1_iov *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->base, b->base, a->len) == 0);
}

/* Same request, byte for byte in every view and field (views may point into different buffers). */
static void check_same(const struct http1_request *a, const struct http1_request *b,
                       const char *what)
{
    FUZZ_CHECK(iov_eq(&a->method, &b->method) && iov_eq(&a->target, &b->target) &&
                   a->minor_version == b->minor_version,
               "%s: request line differs", what);
    FUZZ_CHECK(a->num_headers == b->num_headers, "%s: %zu headers, then %zu", what, a->num_headers,
               b->num_headers);
    for (size_t k = 0; k < a->num_headers; k++)
        FUZZ_CHECK(iov_eq(&a->headers[k].name, &b->headers[k].name) &&
                       iov_eq(&a->headers[k].value, &b->headers[k].value),
                   "%s: header %zu differs", what, k);
    FUZZ_CHECK(a->body == b->body &&
                   (a->body != HTTP1_BODY_LENGTH || a->content_length == b->content_length) &&
                   a->keep_alive == b->keep_alive && a->expect_continue == b->expect_continue &&
                   a->upgrade == b->upgrade,
               "%s: framing differs", what);
}

static void put(char *dst, size_t *at, const void *p, size_t n)
{
    if (n > 0)
        memcpy(dst + *at, p, n);
    *at += n;
}

/* The canonical form of req, parsed again: the same request must come back. */
static void check_reserialised(const struct http1_request *req)
{
    static struct http1_request again;
    size_t n = req->method.len + 1 + req->target.len + 1 + 8 + 2 + 2, at = 0;
    char *s;
    int r;

    for (size_t k = 0; k < req->num_headers; k++)
        n += req->headers[k].name.len + 2 + req->headers[k].value.len + 2;
    s = fuzz_malloc(n);
    put(s, &at, req->method.base, req->method.len);
    put(s, &at, " ", 1);
    put(s, &at, req->target.base, req->target.len);
    put(s, &at, req->minor_version == 1 ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n", 11);
    for (size_t k = 0; k < req->num_headers; k++) {
        put(s, &at, req->headers[k].name.base, req->headers[k].name.len);
        put(s, &at, ": ", 2);
        put(s, &at, req->headers[k].value.base, req->headers[k].value.len);
        put(s, &at, "\r\n", 2);
    }
    put(s, &at, "\r\n", 2);
    r = http1_parse_request(s, n, &again);
    if (r != 0)
        fuzz_dump("re-serialised", s, n);
    FUZZ_CHECK(r == 0, "re-serialised request refused: %s", err_str(r));
    FUZZ_CHECK(again.head_len == n, "re-serialised head_len %zu of %zu", again.head_len, n);
    check_same(req, &again, "re-serialised");
    free(s);
}

/* Feeds growing prefixes, as the broker does while bytes arrive. */
static void check_prefixes(struct fuzz_rng *rng, const char *buf, size_t len, int whole,
                           const struct http1_request *req)
{
    static struct http1_request part;
    size_t cuts[MAX_CUTS], n = fuzz_pick_cuts(rng, len, cuts, MAX_CUTS);

    for (size_t k = 0; k < n; k++) {
        char *copy = (char *)fuzz_dup(buf, cuts[k]);
        int r = http1_parse_request(copy, cuts[k], &part);

        if (r == ERR_INCOMPLETE) {
            free(copy);
            continue;
        }
        FUZZ_CHECK(r == whole, "prefix of %zu gives %s, whole input %s", cuts[k], err_str(r),
                   err_str(whole));
        if (r == 0) {
            FUZZ_CHECK(part.head_len == req->head_len, "prefix head_len %zu, whole %zu",
                       part.head_len, req->head_len);
            check_same(req, &part, "prefix");
        }
        free(copy);
        break;
    }
}

/* ---- chunked bodies -------------------------------------------------------------------------- */

struct chunk_result {
    int status;    /* 0 more needed, 1 done, ERR_HTTP_BAD_REQUEST */
    size_t end;    /* done: where pipelined bytes start; error: past the bad byte; more: len */
    uint8_t *body; /* decoded body bytes (capacity: the input length) */
    size_t body_len;
    uint64_t pending; /* chunk data announced and not yet yielded, at the end */
};

/*
 * Runs chunked_decode over in[0..len) cut at cuts[0..ncuts) (every byte when
 * bytewise), checking the decoder's contract on every call.
 */
static void chunked_run(const uint8_t *in, size_t len, const size_t *cuts, size_t ncuts,
                        bool bytewise, struct chunk_result *res)
{
    struct chunked_decoder d;
    size_t start = 0, k = 0;

    chunked_init(&d);
    res->body = fuzz_malloc(len + 1);
    res->body_len = 0;
    while (start < len) {
        size_t pend = bytewise ? start + 1 : (k < ncuts ? cuts[k++] : len), off = 0, plen;
        uint8_t *piece = fuzz_dup(in + start, pend - start);

        plen = pend - start;
        while (off < plen) {
            const char *dp = NULL;
            size_t c = 0, dl = 0;
            uint64_t before = chunked_pending(&d);
            int r = chunked_decode(&d, (const char *)piece + off, plen - off, &c, &dp, &dl);

            FUZZ_CHECK(c <= plen - off, "consumed %zu of %zu", c, plen - off);
            /* Owed data comes first, and is all that comes: one span per call. */
            if (before > 0)
                FUZZ_CHECK(r == 0 && dl == c && dl == (before < plen - off ? before : plen - off) &&
                               chunked_pending(&d) == before - dl,
                           "pending %llu, then %zu data bytes of %zu consumed, pending %llu",
                           (unsigned long long)before, dl, c,
                           (unsigned long long)chunked_pending(&d));
            if (dl > 0) {
                FUZZ_CHECK((const uint8_t *)dp >= piece + off &&
                               (const uint8_t *)dp + dl <= piece + off + c,
                           "data view outside the consumed bytes");
                memcpy(res->body + res->body_len, dp, dl);
                res->body_len += dl;
            }
            off += c;
            if (r != 0) {
                FUZZ_CHECK(r == 1 || r == ERR_HTTP_BAD_REQUEST, "chunked_decode returned %d", r);
                res->status = r;
                res->end = start + off;
                res->pending = chunked_pending(&d);
                /* Sticky: done stays done consuming nothing, an error stays an error. */
                r = chunked_decode(&d, (const char *)piece + off, plen - off, &c, &dp, &dl);
                FUZZ_CHECK(r == res->status && c == 0 && dl == 0, "not sticky: %d, %zu", r, c);
                free(piece);
                return;
            }
            FUZZ_CHECK(c > 0, "no progress on %zu bytes", plen - off);
        }
        free(piece);
        start = pend;
    }
    res->status = 0;
    res->end = len;
    res->pending = chunked_pending(&d);
}

/* The reference decoder: RFC 9112 7.1 with chunked.h's limits, written as a plain descent. */
struct ref {
    const uint8_t *in;
    size_t len, p;
    size_t count, limit; /* bytes taken in the limited region (ext or trailer); 0: no limit */
};

enum { REF_END = -1, REF_LIMIT = -2 };

/* The next byte, REF_END when the input ends, REF_LIMIT when taking it would pass the limit. */
static int ref_peek(const struct ref *r)
{
    if (r->p >= r->len)
        return REF_END;
    if (r->limit > 0 && r->count + 1 > r->limit)
        return REF_LIMIT;
    return r->in[r->p];
}

static void ref_adv(struct ref *r)
{
    r->p++;
    r->count++;
}

static bool is_qdtext(unsigned char c)
{
    return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) ||
           (c >= 0x5d && c <= 0x7e) || c >= 0x80;
}

/* 0 when the byte ends the thing being parsed, 1 when more input is needed, -1 on error. */
#define REF_FAIL(c) ((c) == REF_END ? 1 : -1)

/* chunk-ext up to and including the CR of the chunk-size line; at a byte that is not CR. */
static int ref_ext(struct ref *r)
{
    int c;

    for (;;) {
        bool ws = false;

        /* After the size or a value: CR, ";", or BWS then ";". */
        while ((c = ref_peek(r)) == ' ' || c == '\t') {
            ref_adv(r);
            ws = true;
        }
        if (c == '\r' && !ws) {
            ref_adv(r);
            return 0;
        }
        if (c != ';')
            return REF_FAIL(c);
        ref_adv(r);
        while ((c = ref_peek(r)) == ' ' || c == '\t')
            ref_adv(r);
        if (c < 0 || !fuzz_is_tchar((unsigned char)c))
            return REF_FAIL(c);
        while ((c = ref_peek(r)) >= 0 && fuzz_is_tchar((unsigned char)c))
            ref_adv(r);
        if (c == '\r') {
            ref_adv(r);
            return 0;
        }
        if (c == ';')
            continue;
        while ((c = ref_peek(r)) == ' ' || c == '\t')
            ref_adv(r);
        if (c == ';')
            continue;
        if (c != '=')
            return REF_FAIL(c);
        ref_adv(r);
        while ((c = ref_peek(r)) == ' ' || c == '\t')
            ref_adv(r);
        if (c == '"') {
            ref_adv(r);
            while ((c = ref_peek(r)) != '"') {
                if (c == '\\') {
                    ref_adv(r);
                    c = ref_peek(r);
                    if (c < 0 || !is_field_byte((unsigned char)c))
                        return REF_FAIL(c);
                } else if (c < 0 || !is_qdtext((unsigned char)c)) {
                    return REF_FAIL(c);
                }
                ref_adv(r);
            }
            ref_adv(r);
        } else if (c >= 0 && fuzz_is_tchar((unsigned char)c)) {
            while ((c = ref_peek(r)) >= 0 && fuzz_is_tchar((unsigned char)c))
                ref_adv(r);
        } else {
            return REF_FAIL(c);
        }
    }
}

/* Takes byte want, or fails. */
static int ref_expect(struct ref *r, int want)
{
    int c = ref_peek(r);

    if (c != want)
        return REF_FAIL(c);
    ref_adv(r);
    return 0;
}

static int ref_trailer(struct ref *r)
{
    int c, x;

    r->count = 0;
    r->limit = CHUNKED_MAX_TRAILER;
    for (;;) {
        if ((c = ref_peek(r)) == '\r') {
            ref_adv(r);
            return ref_expect(r, '\n');
        }
        if (c < 0 || !fuzz_is_tchar((unsigned char)c))
            return REF_FAIL(c);
        while ((c = ref_peek(r)) >= 0 && fuzz_is_tchar((unsigned char)c))
            ref_adv(r);
        if ((x = ref_expect(r, ':')) != 0)
            return x;
        while ((c = ref_peek(r)) >= 0 && c != '\r' && is_field_byte((unsigned char)c))
            ref_adv(r);
        if ((x = ref_expect(r, '\r')) != 0 || (x = ref_expect(r, '\n')) != 0)
            return x;
    }
}

static void ref_decode(const uint8_t *in, size_t len, struct chunk_result *res)
{
    struct ref r = {in, len, 0, 0, 0};
    int x = 0, c;

    res->body = fuzz_malloc(len + 1);
    res->body_len = 0;
    res->pending = 0;
    for (;;) {
        uint64_t size = 0;
        unsigned digits = 0;
        size_t n;

        while ((c = ref_peek(&r)) >= 0 && fuzz_hex((unsigned char)c) >= 0) {
            if (++digits > CHUNKED_MAX_SIZE_DIGITS) {
                x = -1;
                goto out;
            }
            size = size << 4 | (uint64_t)fuzz_hex((unsigned char)c);
            ref_adv(&r);
        }
        if (digits == 0 || c < 0) {
            x = REF_FAIL(c);
            goto out;
        }
        if (c == '\r') {
            ref_adv(&r);
        } else {
            r.count = 0;
            r.limit = CHUNKED_MAX_EXT;
            x = ref_ext(&r);
            r.limit = 0;
            if (x != 0)
                goto out;
        }
        if ((x = ref_expect(&r, '\n')) != 0)
            goto out;
        if (size == 0) {
            x = ref_trailer(&r);
            goto out;
        }
        n = len - r.p < size ? len - r.p : (size_t)size;
        memcpy(res->body + res->body_len, in + r.p, n);
        res->body_len += n;
        r.p += n;
        if (n < size) {
            res->pending = size - n;
            x = 1;
            goto out;
        }
        if ((x = ref_expect(&r, '\r')) != 0 || (x = ref_expect(&r, '\n')) != 0)
            goto out;
    }
out:
    if (x == 0) {
        res->status = 1;
        res->end = r.p;
    } else if (x == 1) {
        res->status = 0;
        res->end = len;
    } else {
        res->status = ERR_HTTP_BAD_REQUEST;
        res->end = r.p + 1;
    }
}

static void check_same_result(const struct chunk_result *a, const struct chunk_result *b,
                              const char *what)
{
    FUZZ_CHECK(a->status == b->status && a->end == b->end,
               "%s: status %d end %zu, whole input: status %d end %zu", what, b->status, b->end,
               a->status, a->end);
    FUZZ_CHECK(a->pending == b->pending, "%s: %llu bytes pending, whole input %llu", what,
               (unsigned long long)b->pending, (unsigned long long)a->pending);
    FUZZ_CHECK(a->body_len == b->body_len &&
                   (a->body_len == 0 || memcmp(a->body, b->body, a->body_len) == 0),
               "%s: %zu body bytes, whole input %zu (or different bytes)", what, b->body_len,
               a->body_len);
}

static void check_chunked(struct fuzz_rng *rng, const uint8_t *in, size_t len)
{
    struct chunk_result whole, pieces, bytes, ref;
    size_t cuts[MAX_CUTS], n = fuzz_pick_cuts(rng, len, cuts, MAX_CUTS);

    chunked_run(in, len, NULL, 0, false, &whole);
    chunked_run(in, len, cuts, n, false, &pieces);
    chunked_run(in, len, NULL, 0, true, &bytes);
    ref_decode(in, len, &ref);
    if (ref.status != whole.status || ref.end != whole.end)
        fuzz_dump("chunked body", in, len);
    check_same_result(&whole, &pieces, "in pieces");
    check_same_result(&whole, &bytes, "byte by byte");
    check_same_result(&whole, &ref, "reference decoder");
    free(whole.body);
    free(pieces.body);
    free(bytes.body);
    free(ref.body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct http1_request req;
    const char *buf = (const char *)data;
    struct fuzz_rng rng;
    int r;

    fuzz_rng_seed(&rng, data, size);
    r = http1_parse_request(buf, size, &req);
    FUZZ_CHECK(r == 0 || r == ERR_INCOMPLETE || r == ERR_HTTP_BAD_REQUEST ||
                   r == ERR_HTTP_HEAD_TOO_LARGE,
               "http1_parse_request returned %d", r);
    FUZZ_CHECK(r != ERR_INCOMPLETE || size < HTTP1_MAX_HEAD, "waits past HTTP1_MAX_HEAD");
    if (r == 0) {
        check_head(buf, size, &req);
        check_field_of(&req);
        check_reserialised(&req);
    }
    check_prefixes(&rng, buf, size, r, &req);
    if (r == 0 && req.body == HTTP1_BODY_CHUNKED)
        check_chunked(&rng, data + req.head_len, size - req.head_len);
    else if (r != 0)
        check_chunked(&rng, data, size);
    return 0;
}
