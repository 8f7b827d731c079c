/*
 * response.c - HTTP/1.x response framing towards the child. See response.h.
 *
 * Everything the broker writes to the child's socket as a response head goes
 * through these helpers, so this is where a header value that could split the
 * response (CR, LF) is stopped, whatever the upstream sent.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ascii.h"
#include "err.h"
#include "response.h"

const char *http1_reason(int status)
{
    /* RFC 9110 15, plus 103 (RFC 8297), 428/429/431/511 (RFC 6585) and 451 (RFC 7725). */
    /* clang-format off */
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 305: return "Use Proxy";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 511: return "Network Authentication Required";
    default: return "Unknown";
    }
    /* clang-format on */
}

int http1_put_status_line(struct buf *out, int minor_version, int status)
{
    const char *reason = http1_reason(status);
    size_t rlen = strlen(reason);
    char line[64];

    /* RFC 9112 4: status-code = 3DIGIT. Written whole or not at all; without printf, on
     * a path every response takes. */
    if (status < 100 || status > 999 || rlen > sizeof(line) - 15)
        return ERR_INVALID;
    memcpy(line, minor_version == 0 ? "HTTP/1.0 " : "HTTP/1.1 ", 9);
    line[9] = (char)('0' + status / 100);
    line[10] = (char)('0' + status / 10 % 10);
    line[11] = (char)('0' + status % 10);
    line[12] = ' ';
    memcpy(line + 13, reason, rlen);
    memcpy(line + 13 + rlen, "\r\n", 2);
    return buf_put(out, line, 15 + rlen);
}

int http1_put_header(struct buf *out, const char *name, size_t name_len, const char *value,
                     size_t value_len)
{
    uint8_t *dst;
    size_t total;
    int r;

    if (name_len == 0)
        return ERR_INVALID;
    for (size_t i = 0; i < name_len; i++) {
        if (!ascii_is_tchar((unsigned char)name[i]))
            return ERR_INVALID;
    }
    for (size_t i = 0; i < value_len; i++) {
        if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
            return ERR_INVALID;
    }
    if (name_len > SIZE_MAX - 4 || value_len > SIZE_MAX - 4 - name_len)
        return ERR_TOO_LARGE;
    total = name_len + 2 + value_len + 2;
    /* One reservation, so a full buffer never ends up holding half a header line. */
    if ((r = buf_reserve(out, total, &dst)) != 0)
        return r;
    memcpy(dst, name, name_len);
    memcpy(dst + name_len, ": ", 2);
    if (value_len > 0)
        memcpy(dst + name_len + 2, value, value_len);
    memcpy(dst + name_len + 2 + value_len, "\r\n", 2);
    buf_commit(out, total);
    return 0;
}

size_t http1_chunk_line(char *out, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char digits[2 * sizeof(size_t)];
    size_t n = 0, i;

    do {
        digits[n++] = hex[len & 0xf];
        len >>= 4;
    } while (len != 0);
    for (i = 0; i < n; i++)
        out[i] = digits[n - 1 - i];
    out[i++] = '\r';
    out[i++] = '\n';
    out[i] = '\0';
    return i;
}

/* RFC 9110 7.6.1, plus Keep-Alive and Proxy-Connection, which old peers still send. */
static bool field_is_hop_by_hop(enum http1_field field)
{
    switch (field) {
    case HTTP1_FIELD_CONNECTION:
    case HTTP1_FIELD_KEEP_ALIVE:
    case HTTP1_FIELD_PROXY_ANY:
    case HTTP1_FIELD_TE:
    case HTTP1_FIELD_TRAILER:
    case HTTP1_FIELD_TRANSFER_ENCODING:
    case HTTP1_FIELD_UPGRADE:
        return true;
    default:
        return false;
    }
}

bool http1_is_hop_by_hop(const char *name, size_t len)
{
    return field_is_hop_by_hop(http1_field_of(name, len));
}

bool http1_status_has_no_body(int status)
{
    /* RFC 9110 6.4.1. */
    return (status >= 100 && status <= 199) || status == 204 || status == 304;
}

int http1_put_forwarded_head(struct buf *out, struct http1_forward *fw,
                             const struct http1_header *h, size_t n)
{
    bool have_length = false, bad_length = false, chunked_upstream = false;
    size_t first_connection = n; /* none */
    bool no_body;
    uint64_t length = 0;
    int r;

    for (size_t i = 0; i < n; i++) {
        enum http1_field field = http1_field_of(h[i].name.base, h[i].name.len);

        /* RFC 9112 6.3: with Transfer-Encoding, a Content-Length means nothing (the body
         * was de-chunked): never pass it on, or the child's next response desyncs. */
        if (field == HTTP1_FIELD_TRANSFER_ENCODING)
            chunked_upstream = true;
        if (field == HTTP1_FIELD_CONNECTION && first_connection == n)
            first_connection = i; /* each header is then looked up in its list */
        /* A malformed or repeated-and-differing length is no length at all: chunk it. */
        if (field == HTTP1_FIELD_CONTENT_LENGTH) {
            uint64_t v = 0;

            /* (no early exit: a Transfer-Encoding may still follow) */
            if (!http1_parse_content_length(&h[i].value, &v) || (have_length && v != length))
                bad_length = true;
            else
                length = v;
            have_length = true;
        }
    }
    /* A Content-Encoding stays as it came, and so does the length of the encoded body: the
     * body is passed on undecoded (the broker asks for identity; see upstream.c). */
    have_length = have_length && !bad_length && !chunked_upstream;
    if (!have_length)
        length = 0;
    no_body = fw->is_head || http1_status_has_no_body(fw->status);
    if (no_body)
        fw->framing = HTTP1_FRAME_NONE;
    else if (have_length)
        fw->framing = HTTP1_FRAME_LENGTH;
    else if (fw->minor_version >= 1)
        fw->framing = HTTP1_FRAME_CHUNKED;
    else
        fw->framing = HTTP1_FRAME_CLOSE;
    if (fw->framing == HTTP1_FRAME_CLOSE)
        fw->keep_alive = false;
    fw->content_length = length;

    if ((r = http1_put_status_line(out, fw->minor_version, fw->status)) != 0)
        return r;
    for (size_t i = 0; i < n; i++) {
        const struct http1_iov *name = &h[i].name;
        enum http1_field field = http1_field_of(name->base, name->len);

        if (field_is_hop_by_hop(field) || field == HTTP1_FIELD_CONTENT_LENGTH ||
            http1_connection_lists(h, first_connection, n, name->base, name->len))
            continue;
        r = http1_put_header(out, name->base, name->len, h[i].value.base, h[i].value.len);
        if (r == ERR_INVALID)
            r = 0; /* not forwardable safely: dropped */
        else if (r != 0)
            goto fail;
    }
    /* HEAD keeps the length the GET would have had (RFC 9110 9.3.2). */
    if (have_length && (fw->framing == HTTP1_FRAME_LENGTH || fw->framing == HTTP1_FRAME_NONE) &&
        ((r = buf_put_str(out, "Content-Length: ")) != 0 || (r = buf_put_u64(out, length)) != 0 ||
         (r = buf_put_str(out, "\r\n")) != 0))
        goto fail;
    if (fw->framing == HTTP1_FRAME_CHUNKED &&
        (r = buf_put_str(out, "Transfer-Encoding: chunked\r\n")) != 0)
        goto fail;
    if (!fw->keep_alive)
        r = buf_put_str(out, "Connection: close\r\n");
    else if (fw->minor_version == 0)
        r = buf_put_str(out, "Connection: keep-alive\r\n");
    if (r == 0)
        r = buf_put(out, "\r\n", 2);
fail:
    return r;
}
