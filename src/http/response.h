/*
 * response.h - framing an HTTP/1.x response towards the child.
 *
 * Small pure helpers the broker uses to write a response head and chunked body
 * framing, and to decide which upstream headers must not be passed on. They
 * append to a struct buf (which enforces its own cap) or to a caller's array;
 * nothing here does I/O, and nothing here parses: request parsing is http1.h
 * and request bodies are chunked.h.
 */
#ifndef CREDBROKER_RESPONSE_H
#define CREDBROKER_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "http1.h"

#define HTTP1_CHUNK_LINE_MAX 20 /* room http1_chunk_line() needs: 16 hex digits, CRLF, NUL */

/* Standard reason phrase for status ("OK", "Not Found", ...); "Unknown" if none. Static. */
const char *http1_reason(int status);

/*
 * Appends "HTTP/1.1 <status> <reason>\r\n", or "HTTP/1.0 ..." when
 * minor_version == 0. Returns 0; ERR_INVALID if status is not three digits
 * (100-999); or ERR_TOO_LARGE/ERR_NOMEM from the buffer, leaving out unchanged.
 */
int http1_put_status_line(struct buf *out, int minor_version, int status)
    __attribute__((warn_unused_result));

/*
 * Appends "Name: value\r\n" as given (no trimming). Returns 0; ERR_INVALID if
 * name is not a non-empty token or value holds CR, LF or NUL (any of which
 * could smuggle a header or split the response); or ERR_TOO_LARGE/ERR_NOMEM
 * from the buffer. out is left unchanged on failure.
 */
int http1_put_header(struct buf *out, const char *name, size_t name_len, const char *value,
                     size_t value_len) __attribute__((warn_unused_result));

/*
 * Writes the chunk-size line for a chunk of len bytes ("%zx\r\n", lower-case
 * hex) into out, which must have room for HTTP1_CHUNK_LINE_MAX bytes, and
 * NUL-terminates it. Returns its length without the NUL. len == 0 gives the
 * last-chunk "0\r\n"; the caller then writes the final CRLF.
 */
size_t http1_chunk_line(char *out, size_t len);

/*
 * True for hop-by-hop header names, ASCII case-insensitively: Connection,
 * Keep-Alive, Proxy-Connection and any other Proxy-* name, TE, Trailer,
 * Transfer-Encoding, Upgrade. Names listed in a Connection header are
 * hop-by-hop too; finding those is the caller's business.
 */
bool http1_is_hop_by_hop(const char *name, size_t len);

/* True if a response with this status never has a body (1xx, 204, 304). HEAD is the caller's. */
bool http1_status_has_no_body(int status);

/* How a forwarded response body is delimited towards the child. */
enum http1_framing {
    HTTP1_FRAME_NONE,    /* no body (HEAD, 1xx, 204, 304) */
    HTTP1_FRAME_LENGTH,  /* Content-Length: the upstream's, still true after scrubbing */
    HTTP1_FRAME_CHUNKED, /* HTTP/1.1 child, length unknown */
    HTTP1_FRAME_CLOSE,   /* HTTP/1.0 child, length unknown: the close ends the body */
};

struct http1_forward {
    int status;
    int minor_version;     /* the child's request version */
    bool is_head;          /* the request was HEAD */
    bool keep_alive;       /* in: the connection may be reused; out: it will be */
    enum http1_framing framing;      /* out */
    uint64_t content_length;         /* out, for HTTP1_FRAME_LENGTH */
};

/*
 * Appends the head of a proxied response for the child: the status line, the
 * upstream's end-to-end headers (hop-by-hop ones, those named in its
 * Connection header, and its framing headers dropped; a Content-Encoding is
 * kept, as the body is passed on as it came) and the broker's own framing and
 * Connection headers. Decides fw->framing and fw->keep_alive: the upstream's
 * Content-Length (of the body as sent, encoded or not) when it is valid and
 * there is no Transfer-Encoding, else chunked or close-delimited. A header that cannot be written
 * safely (bad name, CR/LF/NUL in the value) is dropped. Returns 0 or a code
 * from the buffer; on failure out may hold part of a head: discard it.
 */
int http1_put_forwarded_head(struct buf *out, struct http1_forward *fw,
                             const struct http1_header *headers, size_t n)
    __attribute__((warn_unused_result));

#endif
