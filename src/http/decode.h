/*
 * decode.h - an incremental Content-Encoding decoder (RFC 9110 8.4) whose output
 * the caller pulls.
 *
 * The broker must scrub the real key out of every response body before the child
 * sees it, so a compressed body is decoded first. The caller hands in compressed
 * bytes as they arrive and asks for at most as much decoded output as it can pass
 * on now; the decoder takes only the input it needs to fill that space, so a slow
 * child pauses the decoding and, through the caller, the upstream transfer. The
 * decoder does no I/O and knows nothing of HTTP framing: it sees the body after
 * the transfer coding (chunked.h) is removed.
 *
 * Codings: gzip (and x-gzip), deflate, br, zstd; identity is ignored. Up to
 * CONTENT_DECODER_MAX_LAYERS of them stacked. Decoding is strict about what
 * follows the end of a stream (see content_decoder_run()), and lenient in the
 * ways clients are: deflate may be raw (no zlib wrapper), gzip may be several
 * members, zstd several frames, and an empty body is an empty body whatever the
 * coding (a 200 with Content-Length: 0 and a Content-Encoding is common).
 *
 * Memory, per decoder, counted over every allocation it and the three libraries
 * make (content_decoder_memory()) and refused past CONTENT_DECODER_MAX_MEMORY:
 *   - the decoder itself and one CONTENT_DECODER_BUFFER between two layers;
 *   - gzip, deflate: zlib's inflate state (7 KiB) and its 32 KiB window;
 *   - zstd: a context of about 100 KiB, and for a frame its window, at most
 *     2^CONTENT_DECODER_ZSTD_WINDOW_LOG_MAX (8 MiB; a frame asking more is
 *     refused) and never more than the frame's content size, plus one block
 *     (128 KiB): about 8.3 MiB at most;
 *   - br: the window is inherent to the format, up to 16 MiB (large-window brotli,
 *     up to 1 GiB, is refused). The library starts with a window no larger than
 *     the output the stream has announced and grows it as more is announced,
 *     holding the old and the new one while it moves (24 MiB at that moment), plus
 *     Huffman tables that a hostile stream can grow to about 2.7 MiB: 27 MiB at
 *     most. Encoders use 4 MiB windows by default.
 * A stack whose windows add up to more than CONTENT_DECODER_MAX_MEMORY fails with
 * ERR_TOO_LARGE. None of it grows with the output: a small body that inflates to
 * gigabytes costs what a small body costs.
 *
 * Every block the decoder or a library frees is wiped first (explicit_bzero):
 * windows and buffers hold the response in clear, key included.
 */
#ifndef CREDBROKER_DECODE_H
#define CREDBROKER_DECODE_H

#include <stddef.h>
#include <stdint.h>

#define CONTENT_DECODER_END 1                 /* content_decoder_run(): every layer finished */
#define CONTENT_DECODER_MAX_LAYERS 3          /* codings in one Content-Encoding, identity aside */
#define CONTENT_DECODER_BUFFER (16 * 1024)    /* each buffer between two layers */
#define CONTENT_DECODER_ZSTD_WINDOW_LOG_MAX 23 /* 8 MiB */
#define CONTENT_DECODER_MAX_MEMORY ((size_t)32 << 20) /* all a decoder may hold at once */

struct content_decoder;

/*
 * Sets up a decoder for a response's Content-Encoding: encoding[0..len) is the
 * field value, or the values of several field lines joined with commas (RFC 9110
 * 5.3). Codings are listed in the order they were applied, so decoding runs from
 * the last one back. Names are case-insensitive; "x-gzip" is "gzip"; "identity"
 * and empty list elements are skipped.
 *
 * Returns 0 and sets *out, which the caller frees with content_decoder_free();
 * *out is NULL when there is nothing to decode (empty, or only identity).
 * Returns ERR_UNSUPPORTED for a coding this decoder does not know, a value that
 * is not a list of tokens, or more than CONTENT_DECODER_MAX_LAYERS codings: the
 * body can then only be passed on as it came, with its Content-Encoding.
 * Returns ERR_NOMEM. *out is NULL on failure.
 */
int content_decoder_new(const char *encoding, size_t len, struct content_decoder **out)
    __attribute__((warn_unused_result));

/*
 * Decodes from in[0..in_len) into out[0..out_cap): *consumed bytes of in were
 * used and *produced bytes of out written (never more than out_cap).
 *
 * Returns 0 to be called again: either the output is full (*produced == out_cap;
 * more may come without new input) or all of in was consumed and more input is
 * wanted. Input not consumed (only ever when the output is full, or once the
 * outermost coding has ended) must be passed again at the start of the next call.
 * With out_cap 0 (out may then be NULL) nothing is consumed: the decoder takes input
 * only to make output, and holds at most its fixed buffers of it. in may be NULL
 * when in_len is 0.
 *
 * Returns CONTENT_DECODER_END when every layer has finished and all output was
 * handed out; *consumed then stops where the compressed body ended, and any byte
 * after it (in this call or later) is for the caller to report as an error. Later
 * calls return CONTENT_DECODER_END again and consume nothing. A gzip member or
 * zstd frame that ends exactly with the input is not yet an end (another may
 * follow): content_decoder_finish() settles it. After the last member or frame, a
 * byte that cannot start another ends the body (CONTENT_DECODER_END, or an error
 * inside a stacked coding); a partial gzip or zstd magic followed by anything else
 * is an error, so the outcome never depends on how the input was split.
 *
 * Returns a negative code on corrupt data (ERR_INVALID: bad header, checksum or
 * length mismatch, bytes after the end of a stacked coding), ERR_TOO_LARGE for a
 * zstd frame whose window exceeds 2^CONTENT_DECODER_ZSTD_WINDOW_LOG_MAX, a
 * large-window brotli stream or a decoder reaching CONTENT_DECODER_MAX_MEMORY,
 * or ERR_NOMEM. content_decoder_error() says which; the error sticks.
 */
int content_decoder_run(struct content_decoder *d, const uint8_t *in, size_t in_len,
                        size_t *consumed, uint8_t *out, size_t out_cap, size_t *produced)
    __attribute__((warn_unused_result));

/*
 * Tells the decoder that the body ended. Call it once run() has returned
 * CONTENT_DECODER_END, or 0 with *produced < out_cap (all input consumed and no
 * output held back). Returns 0 if every layer ended cleanly (or no byte ever came);
 * ERR_INVALID if a stream was cut short (content_decoder_error() names the coding),
 * or if output was still held back (run() had filled the output, and there was
 * more: a caller's mistake); or the error run() already returned. Later run()
 * calls return the same result.
 */
int content_decoder_finish(struct content_decoder *d) __attribute__((warn_unused_result));

/* One line describing the error run() or finish() returned, naming the coding
 * ("gzip: invalid block type", "br: corrupt stream", "zstd: frame requires too much
 * memory ..."); "" when there was none. Owned by d, valid until the next call on d. */
const char *content_decoder_error(const struct content_decoder *d);

/* The most memory d has held at once, in bytes, everything counted: its own
 * struct, buffers, and every allocation of the libraries. */
size_t content_decoder_memory(const struct content_decoder *d);

/* Frees d and everything it holds, wiping it first. Accepts NULL. */
void content_decoder_free(struct content_decoder *d);

#endif
