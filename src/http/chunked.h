/*
 * chunked.h - an incremental decoder for chunked request bodies (RFC 9112 7.1).
 *
 * The broker feeds whatever bytes arrived from the child into chunked_decode()
 * and forwards the body data it hands back; the decoder copies nothing and
 * allocates nothing, so its state fits in the connection struct. It decodes
 * the request side only: encoding chunks towards the child is response.h's
 * http1_chunk_line(). Limits on the decoded body size are the caller's, since
 * only the caller knows how much it has forwarded.
 *
 * Framing is strict: anything outside the RFC grammar is an error, because a
 * proxy that repairs framing is a proxy that can be made to disagree with the
 * next hop about where a body ends.
 */
#ifndef CREDBROKER_CHUNKED_H
#define CREDBROKER_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

#define CHUNKED_MAX_TRAILER (8 * 1024) /* bytes after the last-chunk line, final CRLF included */
#define CHUNKED_MAX_EXT (4 * 1024)     /* bytes after a chunk-size up to its line's CR included */
#define CHUNKED_MAX_SIZE_DIGITS 16     /* hex digits in a chunk-size: fits a uint64_t */

/* Decoder state; the fields are private to chunked.c. Set up with chunked_init(). */
struct chunked_decoder {
    int _state;
    int _error;          /* sticky once set */
    uint64_t _remaining; /* chunk-size while reading it, then data bytes still to come */
    unsigned _digits;    /* hex digits read of the current chunk-size */
    size_t _ext_len;     /* bytes of extensions on the current chunk-size line */
    size_t _trailer_len; /* bytes of the trailer section so far */
};

/* Prepares d to decode a new body. Cannot fail. */
void chunked_init(struct chunked_decoder *d);

/* Bytes of chunk data announced by the last chunk-size line and not yet yielded: a
 * caller enforcing a body limit refuses as soon as bytes seen + this exceeds it. */
uint64_t chunked_pending(const struct chunked_decoder *d);

/*
 * Consumes framing from in[0..len) and yields at most one span of body data per
 * call. *consumed is the number of bytes of in used (framing and data);
 * *data and *data_len give a view into in of body bytes (data_len may be 0; the
 * caller does not free it, and it lives as long as in does).
 *
 * Returns 0 on progress: call again with in + *consumed, or with more input
 * once *consumed == len. Returns 1 once the last-chunk and the trailer section
 * are complete; *consumed then stops right after the final CRLF, so pipelined
 * bytes that follow are untouched, and later calls return 1 consuming nothing.
 * Returns ERR_HTTP_BAD_REQUEST for malformed framing, an over-long chunk-size,
 * extension or trailer section, and keeps returning it on later calls. Trailer
 * fields are checked like header fields and then discarded.
 */
int chunked_decode(struct chunked_decoder *d, const char *in, size_t len, size_t *consumed,
                   const char **data, size_t *data_len);

#endif
