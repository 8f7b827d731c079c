/*
 * http1.h - a strict RFC 9112 parser for HTTP/1.x request heads.
 *
 * The broker reads a child's request head into a buffer and calls
 * http1_parse_request() each time more bytes arrive. The parser is pure: it
 * allocates nothing, does no I/O and keeps no state between calls, so it is
 * also what the fuzz target drives. It only understands the head; bodies are
 * framed by the caller (Content-Length) or by chunked.h, and response framing
 * lives in response.h.
 *
 * Anything ambiguous is rejected rather than guessed at (DESIGN.md section 2):
 * the broker sits between a child and an upstream, and two parsers that
 * disagree on where a request ends are how requests get smuggled.
 */
#ifndef CREDBROKER_HTTP1_H
#define CREDBROKER_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of a head, from its first byte (leading CRLFs too) to the final CRLF CRLF. */
#define HTTP1_MAX_HEAD (64 * 1024)
/* Field lines in a head. */
#define HTTP1_MAX_HEADERS 100

/* A view into the caller's buffer; not NUL-terminated. */
struct http1_iov {
    const char *base;
    size_t len;
};

struct http1_header {
    struct http1_iov name;
    struct http1_iov value; /* leading and trailing OWS trimmed */
};

enum http1_body {
    HTTP1_BODY_NONE,    /* no body */
    HTTP1_BODY_LENGTH,  /* content_length bytes follow (possibly 0) */
    HTTP1_BODY_CHUNKED, /* Transfer-Encoding: chunked; decode with chunked.h */
};

struct http1_request {
    struct http1_iov method;
    struct http1_iov target;
    int minor_version; /* HTTP/1.0 -> 0, HTTP/1.1 -> 1 */
    struct http1_header headers[HTTP1_MAX_HEADERS];
    size_t num_headers;
    size_t head_len; /* bytes of the head, including the final CRLF CRLF */
    enum http1_body body;
    uint64_t content_length; /* valid when body == HTTP1_BODY_LENGTH */
    bool keep_alive;         /* 1.1: unless "Connection: close"; 1.0: only with keep-alive */
    bool expect_continue;    /* HTTP/1.1 request carried "Expect: 100-continue" */
    bool upgrade;            /* an Upgrade header is present (the caller refuses it) */
    struct http1_iov host;   /* the Host value (checked: uri-host [":" port]); len 0: none */
};

/*
 * Parses the request head at the start of buf[0..len). Never reads past len and
 * runs in time linear in len; a caller that gets ERR_INCOMPLETE calls again
 * with the same bytes plus whatever has arrived since.
 *
 * Returns 0 when a whole head was parsed: *req is filled in, its views point
 * into buf, and req->head_len says where the body (or the next pipelined
 * request) starts. Returns ERR_INCOMPLETE when more bytes are needed and fewer
 * than HTTP1_MAX_HEAD have been seen; ERR_HTTP_HEAD_TOO_LARGE (431) when the
 * head does not end within HTTP1_MAX_HEAD bytes or has more than
 * HTTP1_MAX_HEADERS field lines; ERR_HTTP_BAD_REQUEST (400) for anything
 * malformed or ambiguous. On any non-zero return *req holds nothing useful.
 *
 * Method, target and Upgrade are only recognised, not judged: refusing CONNECT
 * (405) or an upgrade (501) is the caller's business.
 */
int http1_parse_request(const char *buf, size_t len, struct http1_request *req);

/* A response head from the upstream (the broker's own HTTP/1.1 client): bigger than a
 * child's request may be, since APIs send long Set-Cookie and CSP lines. */
#define HTTP1_MAX_RESPONSE_HEAD (256 * 1024)
#define HTTP1_MAX_RESPONSE_HEADERS 500

enum http1_response_body {
    HTTP1_RESPONSE_NONE,    /* no body: HEAD, 1xx, 204, 304 */
    HTTP1_RESPONSE_LENGTH,  /* content_length bytes */
    HTTP1_RESPONSE_CHUNKED, /* decode with chunked.h */
    HTTP1_RESPONSE_CLOSE,   /* until the connection closes */
};

struct http1_response {
    int status;        /* 100-999 */
    int minor_version; /* HTTP/1.0 -> 0, HTTP/1.1 -> 1 */
    struct http1_header headers[HTTP1_MAX_RESPONSE_HEADERS];
    size_t num_headers;
    size_t head_len;   /* bytes of the head, including the final CRLF CRLF */
    enum http1_response_body body;
    uint64_t content_length; /* valid when body == HTTP1_RESPONSE_LENGTH */
    bool keep_alive;         /* the connection may carry another request afterwards */
};

/*
 * Parses a response head at the start of buf[0..len) for a request whose method was
 * HEAD when is_head, in one forward pass as http1_parse_request. The framing is RFC 9112
 * 6.3's: a Transfer-Encoding whose final coding is chunked; Transfer-Encoding over a
 * Content-Length when both are there (6.3 item 3: then the connection is not reused);
 * one Content-Length (repeats must agree); else the body runs to the close; 1xx, 204,
 * 304 and any answer to HEAD have none. keep_alive is false for a close-delimited body, a
 * "Connection: close", both lengths, and an HTTP/1.0 answer without "keep-alive".
 *
 * Returns 0 (views into buf), ERR_INCOMPLETE, ERR_HTTP_HEAD_TOO_LARGE (past
 * HTTP1_MAX_RESPONSE_HEAD bytes or HTTP1_MAX_RESPONSE_HEADERS lines), or ERR_INVALID for
 * anything malformed (bare LF, obs-fold, a bad status line, a bad field). A 1xx head is
 * returned like any other: the caller skips it and parses the next.
 */
int http1_parse_response(const char *buf, size_t len, bool is_head, struct http1_response *resp);

/* The fields framing and forwarding decide on, recognised by name (any case). */
enum http1_field {
    HTTP1_FIELD_OTHER,
    HTTP1_FIELD_ACCEPT_ENCODING,
    HTTP1_FIELD_AUTHORIZATION,
    HTTP1_FIELD_CONNECTION,
    HTTP1_FIELD_CONTENT_LENGTH,
    HTTP1_FIELD_EXPECT,
    HTTP1_FIELD_HOST,
    HTTP1_FIELD_KEEP_ALIVE,
    HTTP1_FIELD_PROXY_ANY, /* Proxy-*: Proxy-Connection, Proxy-Authorization, ... */
    HTTP1_FIELD_TE,
    HTTP1_FIELD_TRAILER,
    HTTP1_FIELD_TRANSFER_ENCODING,
    HTTP1_FIELD_UPGRADE,
};

/* Which of those name[0..len) is: one switch on the length, then one comparison. */
enum http1_field http1_field_of(const char *name, size_t len);

/*
 * True if a Connection field among h[first..n) lists name[0..name_len) (RFC 9110 7.6.1:
 * the fields it names are hop-by-hop). first: the first Connection field's index, or any
 * earlier one.
 */
bool http1_connection_lists(const struct http1_header *h, size_t first, size_t n,
                            const char *name, size_t name_len);

/*
 * True if the comma-separated list list[0..len) (a header value) has an element
 * equal to token[0..token_len), ASCII case-insensitively, after trimming OWS
 * around each element. Empty elements are skipped.
 */
bool http1_list_has_token(const char *list, size_t len, const char *token, size_t token_len);

/*
 * RFC 9110 8.6: Content-Length = 1*DIGIT. True and *out set if v is that and
 * fits in 64 bits; false for anything else: empty, a sign, whitespace, the
 * comma list "42, 42" that 8.6 lets a recipient collapse (never needed by a
 * well-behaved peer), an overflow. Requests and responses use the same rule.
 */
bool http1_parse_content_length(const struct http1_iov *v, uint64_t *out);

#endif
