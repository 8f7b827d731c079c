/*
 * http1.c - strict HTTP/1.x request-head parser. See http1.h.
 *
 * The head is read line by line in one forward pass (each byte is looked at a
 * bounded number of times), then the framing headers are checked in a second
 * pass over the parsed fields. Nothing here allocates or remembers anything
 * between calls, so re-parsing from the start as bytes arrive is safe.
 *
 * This is not a general HTTP library: it parses requests, and the upstream's
 * responses for the broker's own client, and only what the broker needs to decide
 * how to frame a body and whether to answer.
 */
#include <stddef.h>
#include <string.h>

#include "ascii.h"
#include "err.h"
#include "http1.h"
#include "response.h"

/* Framing facts gathered from the fields, judged once the whole head is in. */
struct http1__framing {
    unsigned host_count;
    struct http1_iov host;
    unsigned te_count;
    bool have_length;
    uint64_t length;
    bool conn_close;
    bool conn_keep_alive;
    bool expect_continue;
    bool upgrade;
};

_Static_assert(offsetof(struct http1_request, num_headers) ==
                   offsetof(struct http1_request, headers) +
                       sizeof(((struct http1_request *)0)->headers),
               "http1_parse_request zeroes all but headers[]: num_headers must follow it");

static bool is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* RFC 3986 3.2.2 and 3.2.3: the bytes a uri-host [":" port] can be made of. */
static bool is_host_byte(unsigned char c)
{
    static const char extra[] = "-._~%!$&'()*+,;=:[]";

    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != '\0' && memchr(extra, c, sizeof(extra) - 1) != NULL;
}

static bool equal_ci(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++) {
        if (ascii_tolower((unsigned char)a[i]) != ascii_tolower((unsigned char)b[i]))
            return false;
    }
    return true;
}

/* v equals the lower-case literal lit, in any case. */
static bool iov_is(const struct http1_iov *v, const char *lit)
{
    return ascii_ieq_lower(v->base, v->len, lit);
}

/* field if name[0..n) is lower[0..n) in any case, else HTTP1_FIELD_OTHER. */
static enum http1_field field_if(const char *name, size_t n, const char *lower,
                                 enum http1_field field)
{
    return ascii_ieq_lower_n(name, lower, n) ? field : HTTP1_FIELD_OTHER;
}

enum http1_field http1_field_of(const char *name, size_t len)
{
    if (len >= 6 && ascii_ieq_lower_n(name, "proxy-", 6))
        return HTTP1_FIELD_PROXY_ANY;
    /* The length, then for two lengths the first byte, leave at most one name to compare. */
    switch (len) {
    case 2:
        return field_if(name, len, "te", HTTP1_FIELD_TE);
    case 4:
        return field_if(name, len, "host", HTTP1_FIELD_HOST);
    case 6:
        return field_if(name, len, "expect", HTTP1_FIELD_EXPECT);
    case 7:
        return ascii_tolower((unsigned char)name[0]) == 't'
                   ? field_if(name, len, "trailer", HTTP1_FIELD_TRAILER)
                   : field_if(name, len, "upgrade", HTTP1_FIELD_UPGRADE);
    case 10:
        return ascii_tolower((unsigned char)name[0]) == 'c'
                   ? field_if(name, len, "connection", HTTP1_FIELD_CONNECTION)
                   : field_if(name, len, "keep-alive", HTTP1_FIELD_KEEP_ALIVE);
    case 13:
        return field_if(name, len, "authorization", HTTP1_FIELD_AUTHORIZATION);
    case 14:
        return field_if(name, len, "content-length", HTTP1_FIELD_CONTENT_LENGTH);
    case 15:
        return field_if(name, len, "accept-encoding", HTTP1_FIELD_ACCEPT_ENCODING);
    case 17:
        return field_if(name, len, "transfer-encoding", HTTP1_FIELD_TRANSFER_ENCODING);
    default:
        return HTTP1_FIELD_OTHER;
    }
}

/*
 * Finds the line starting at pos within buf[0..limit). On 0, the line's content
 * is buf[pos..*eol) and the next line starts at *next. RFC 9112 2.2 lets a
 * server accept a bare LF as a line end; we do not, because a peer that reads
 * it differently would see different lines.
 */
static int http1__next_line(const char *buf, size_t pos, size_t limit, size_t *eol, size_t *next)
{
    const char *lf;
    size_t at;

    if (pos >= limit)
        return ERR_INCOMPLETE;
    lf = memchr(buf + pos, '\n', limit - pos);
    if (lf == NULL)
        return ERR_INCOMPLETE;
    at = (size_t)(lf - buf);
    if (at == pos || buf[at - 1] != '\r')
        return ERR_HTTP_BAD_REQUEST;
    *eol = at - 1;
    *next = at + 1;
    return 0;
}

/* RFC 9112 3: method SP request-target SP HTTP-version, with single spaces only. */
static int http1__parse_request_line(const char *p, size_t n, struct http1_request *req)
{
    size_t i = 0, start;

    while (i < n && ascii_is_tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i == n || p[i] != ' ')
        return ERR_HTTP_BAD_REQUEST;
    req->method.base = p;
    req->method.len = i;

    start = ++i;
    while (i < n && (unsigned char)p[i] > 0x20 && (unsigned char)p[i] < 0x7f)
        i++;
    if (i == start || i == n || p[i] != ' ')
        return ERR_HTTP_BAD_REQUEST;
    req->target.base = p + start;
    req->target.len = i - start;

    /* RFC 9112 2.3: HTTP-name is case-sensitive; we speak only 1.0 and 1.1. */
    i++;
    if (n - i != 8 || memcmp(p + i, "HTTP/1.", 7) != 0)
        return ERR_HTTP_BAD_REQUEST;
    if (p[i + 7] == '1')
        req->minor_version = 1;
    else if (p[i + 7] == '0')
        req->minor_version = 0;
    else
        return ERR_HTTP_BAD_REQUEST;
    return 0;
}

/*
 * RFC 9112 5: field-name ":" OWS field-value OWS. A line that starts with SP or
 * HTAB is obs-fold (5.2) and whitespace before the colon is forbidden (5.1);
 * both fail the "token then colon" test below and get a 400.
 */
static int http1__parse_field_line(const char *p, size_t n, struct http1_header *h)
{
    size_t i = 0, vstart, vend;

    while (i < n && ascii_is_tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i == n || p[i] != ':')
        return ERR_HTTP_BAD_REQUEST;
    h->name.base = p;
    h->name.len = i;

    i++;
    while (i < n && is_ows((unsigned char)p[i]))
        i++;
    vstart = i;
    if (!ascii_all_value_bytes(p + i, n - i))
        return ERR_HTTP_BAD_REQUEST;
    vend = n;
    while (vend > vstart && is_ows((unsigned char)p[vend - 1]))
        vend--;
    h->value.base = p + vstart;
    h->value.len = vend - vstart;
    return 0;
}

bool http1_parse_content_length(const struct http1_iov *v, uint64_t *out)
{
    uint64_t n = 0;

    if (v->len == 0)
        return false;
    for (size_t i = 0; i < v->len; i++) {
        unsigned d = (unsigned char)v->base[i] - '0';

        if (d > 9 || n > (UINT64_MAX - d) / 10)
            return false;
        n = n * 10 + d;
    }
    *out = n;
    return true;
}

static int http1__check_host(const struct http1_iov *v)
{
    for (size_t i = 0; i < v->len; i++) {
        if (!is_host_byte((unsigned char)v->base[i]))
            return ERR_HTTP_BAD_REQUEST;
    }
    return 0;
}

/* A Connection value's close and keep-alive options (RFC 9112 9.3 and 9.6). */
static void http1__note_connection(const struct http1_iov *v, struct http1__framing *f)
{
    if (http1_list_has_token(v->base, v->len, "close", 5))
        f->conn_close = true;
    if (http1_list_has_token(v->base, v->len, "keep-alive", 10))
        f->conn_keep_alive = true;
}

/* Folds one field into *f, rejecting at once what is wrong on its own. */
static int http1__note_field(const struct http1_header *h, struct http1__framing *f)
{
    uint64_t n;

    switch (http1_field_of(h->name.base, h->name.len)) {
    case HTTP1_FIELD_CONTENT_LENGTH:
        if (!http1_parse_content_length(&h->value, &n))
            return ERR_HTTP_BAD_REQUEST;
        /* RFC 9112 6.3 item 5: differing lengths are unrecoverable. */
        if (f->have_length && f->length != n)
            return ERR_HTTP_BAD_REQUEST;
        f->have_length = true;
        f->length = n;
        break;
    case HTTP1_FIELD_TRANSFER_ENCODING:
        /*
         * RFC 9112 6.3 item 4 lets chunked be the final of several codings; we
         * accept only exactly one "chunked", since any other coding of a
         * request body is something we would have to undo before forwarding.
         */
        if (++f->te_count > 1 || !iov_is(&h->value, "chunked"))
            return ERR_HTTP_BAD_REQUEST;
        break;
    case HTTP1_FIELD_HOST:
        /* RFC 9112 3.2: more than one Host, or an invalid one, is a 400. */
        if (++f->host_count > 1 || http1__check_host(&h->value) != 0)
            return ERR_HTTP_BAD_REQUEST;
        f->host = h->value;
        break;
    case HTTP1_FIELD_CONNECTION:
        http1__note_connection(&h->value, f);
        break;
    case HTTP1_FIELD_EXPECT:
        /*
         * RFC 9110 10.1.1 answers an expectation we cannot meet with 417; we
         * send 400 instead, as for every other request we will not serve, so
         * the caller has a single "refuse and close" path.
         */
        if (!iov_is(&h->value, "100-continue"))
            return ERR_HTTP_BAD_REQUEST;
        f->expect_continue = true;
        break;
    case HTTP1_FIELD_UPGRADE:
        f->upgrade = true;
        break;
    default:
        break;
    }
    return 0;
}

/* Judges the framing once every field is known (RFC 9112 6.1 and 6.3). */
static int http1__apply_framing(const struct http1__framing *f, struct http1_request *req)
{
    if (f->te_count > 0 && f->have_length)
        return ERR_HTTP_BAD_REQUEST; /* 6.1: the classic smuggling vector */
    if (f->te_count > 0 && req->minor_version == 0)
        return ERR_HTTP_BAD_REQUEST; /* 6.1: 1.0 has no chunked, so the framing is faulty */
    if (req->minor_version == 1 && f->host_count == 0)
        return ERR_HTTP_BAD_REQUEST; /* 3.2 */

    if (f->te_count > 0) {
        req->body = HTTP1_BODY_CHUNKED;
    } else if (f->have_length) {
        req->body = HTTP1_BODY_LENGTH;
        req->content_length = f->length;
    } else {
        req->body = HTTP1_BODY_NONE; /* 6.3 item 7: a request without either has no body */
    }
    if (req->minor_version == 1)
        req->keep_alive = !f->conn_close;
    else
        req->keep_alive = f->conn_keep_alive && !f->conn_close;
    /* RFC 9110 10.1.1: a 100-continue expectation in an HTTP/1.0 request is ignored. */
    req->expect_continue = f->expect_continue && req->minor_version == 1;
    req->upgrade = f->upgrade;
    req->host = f->host;
    return 0;
}

int http1_parse_request(const char *buf, size_t len, struct http1_request *req)
{
    struct http1__framing f;
    size_t limit = len < HTTP1_MAX_HEAD ? len : HTTP1_MAX_HEAD;
    size_t pos = 0, eol = 0, next = 0;
    bool have_request_line = false;
    int r;

    /* All but the 3 KiB of headers, which are read only up to num_headers. */
    memset(req, 0, offsetof(struct http1_request, headers));
    memset(&req->num_headers, 0, sizeof(*req) - offsetof(struct http1_request, num_headers));
    memset(&f, 0, sizeof(f));
    for (;;) {
        if ((r = http1__next_line(buf, pos, limit, &eol, &next)) != 0) {
            /* The limit applies while data arrives: never wait past HTTP1_MAX_HEAD. */
            if (r == ERR_INCOMPLETE && len >= HTTP1_MAX_HEAD)
                return ERR_HTTP_HEAD_TOO_LARGE;
            return r;
        }
        if (!have_request_line) {
            /* RFC 9112 2.2: empty lines before the request-line are ignored. */
            if (eol != pos) {
                if ((r = http1__parse_request_line(buf + pos, eol - pos, req)) != 0)
                    return r;
                have_request_line = true;
            }
        } else if (eol == pos) {
            break;
        } else {
            struct http1_header *h;

            if (req->num_headers == HTTP1_MAX_HEADERS)
                return ERR_HTTP_HEAD_TOO_LARGE;
            h = &req->headers[req->num_headers];
            if ((r = http1__parse_field_line(buf + pos, eol - pos, h)) != 0 ||
                (r = http1__note_field(h, &f)) != 0)
                return r;
            req->num_headers++;
        }
        pos = next;
    }
    req->head_len = next;
    return http1__apply_framing(&f, req);
}

bool http1_connection_lists(const struct http1_header *h, size_t first, size_t n,
                            const char *name, size_t name_len)
{
    for (size_t i = first; i < n; i++) {
        if (h[i].name.len == sizeof("connection") - 1 &&
            http1_field_of(h[i].name.base, h[i].name.len) == HTTP1_FIELD_CONNECTION &&
            http1_list_has_token(h[i].value.base, h[i].value.len, name, name_len))
            return true;
    }
    return false;
}

bool http1_list_has_token(const char *list, size_t len, const char *token, size_t token_len)
{
    size_t i = 0;

    while (i < len) {
        size_t start, end;

        while (i < len && is_ows((unsigned char)list[i]))
            i++;
        start = i;
        while (i < len && list[i] != ',')
            i++;
        end = i;
        while (end > start && is_ows((unsigned char)list[end - 1]))
            end--;
        if (end > start && equal_ci(list + start, end - start, token, token_len))
            return true;
        i++; /* past the comma (or past len, which ends the loop) */
    }
    return false;
}

/* ---- responses (the upstream's, for the broker's HTTP/1.1 client) ---- */

/* RFC 9112 4: HTTP-version SP 3DIGIT SP [reason-phrase]. Servers that drop the space
 * before an empty reason exist: "HTTP/1.1 200" is accepted too. */
static int http1__parse_status_line(const char *p, size_t n, struct http1_response *resp)
{
    if (n < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ')
        return ERR_INVALID;
    resp->minor_version = p[7] - '0';
    for (size_t i = 9; i < 12; i++) {
        if (p[i] < '0' || p[i] > '9')
            return ERR_INVALID;
    }
    resp->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    if (resp->status < 100 || (n > 12 && p[12] != ' '))
        return ERR_INVALID;
    return n <= 13 || ascii_all_value_bytes(p + 13, n - 13) ? 0 : ERR_INVALID;
}

/* Folds one response field into *f: the framing ones, checked on their own. */
static int http1__note_response_field(const struct http1_header *h, struct http1__framing *f,
                                      bool *chunked_last)
{
    uint64_t n;
    size_t end, start;

    switch (http1_field_of(h->name.base, h->name.len)) {
    case HTTP1_FIELD_CONTENT_LENGTH:
        if (!http1_parse_content_length(&h->value, &n) || (f->have_length && f->length != n))
            return ERR_INVALID;
        f->have_length = true;
        f->length = n;
        break;
    case HTTP1_FIELD_TRANSFER_ENCODING:
        /* The codings of every Transfer-Encoding line in order: only the last one's last
         * coding decides (RFC 9112 6.3 item 4). */
        f->te_count++;
        end = h->value.len;
        while (end > 0 && (h->value.base[end - 1] == ',' ||
                           is_ows((unsigned char)h->value.base[end - 1])))
            end--;
        start = end;
        while (start > 0 && h->value.base[start - 1] != ',')
            start--;
        while (start < end && is_ows((unsigned char)h->value.base[start]))
            start++;
        *chunked_last = ascii_ieq_lower(h->value.base + start, end - start, "chunked");
        break;
    case HTTP1_FIELD_CONNECTION:
        http1__note_connection(&h->value, f);
        break;
    default:
        break;
    }
    return 0;
}

int http1_parse_response(const char *buf, size_t len, bool is_head, struct http1_response *resp)
{
    struct http1__framing f;
    size_t limit = len < HTTP1_MAX_RESPONSE_HEAD ? len : HTTP1_MAX_RESPONSE_HEAD;
    size_t pos = 0, eol = 0, next = 0;
    bool chunked_last = false;
    int r;

    memset(&f, 0, sizeof(f));
    resp->num_headers = 0;
    resp->status = 0;
    if ((r = http1__next_line(buf, pos, limit, &eol, &next)) == 0)
        r = http1__parse_status_line(buf, eol, resp);
    for (pos = next; r == 0; pos = next) {
        struct http1_header *h;

        if ((r = http1__next_line(buf, pos, limit, &eol, &next)) != 0 || eol == pos)
            break;
        if (resp->num_headers == HTTP1_MAX_RESPONSE_HEADERS)
            return ERR_HTTP_HEAD_TOO_LARGE;
        h = &resp->headers[resp->num_headers++];
        if ((r = http1__parse_field_line(buf + pos, eol - pos, h)) == 0)
            r = http1__note_response_field(h, &f, &chunked_last);
    }
    if (r == ERR_INCOMPLETE)
        return len >= HTTP1_MAX_RESPONSE_HEAD ? ERR_HTTP_HEAD_TOO_LARGE : ERR_INCOMPLETE;
    if (r != 0)
        return ERR_INVALID;
    resp->head_len = next;
    resp->keep_alive = resp->minor_version == 1 ? !f.conn_close
                                                : f.conn_keep_alive && !f.conn_close;
    if (is_head || http1_status_has_no_body(resp->status)) {
        resp->body = HTTP1_RESPONSE_NONE;
    } else if (f.te_count > 0 && chunked_last) {
        resp->body = HTTP1_RESPONSE_CHUNKED;
    } else if (f.te_count == 0 && f.have_length) {
        resp->body = HTTP1_RESPONSE_LENGTH;
        resp->content_length = f.length;
    } else {
        resp->body = HTTP1_RESPONSE_CLOSE; /* 6.3 items 4 and 8 */
        resp->keep_alive = false;
    }
    /* Both lengths: Transfer-Encoding wins (6.3 item 3), and a connection whose peer
     * frames that way is not trusted with another request. */
    if (f.te_count > 0 && f.have_length)
        resp->keep_alive = false;
    return 0;
}
