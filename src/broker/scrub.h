/*
 * scrub.h - masking the keys in upstream responses before the child sees them.
 *
 * An upstream that echoes its query string in an error body, or redirects with
 * it in Location, must not hand the key to the child (DESIGN.md section 2); nor
 * may it hand over another route's key (an invocation with several routes has
 * one scrubber for all their keys). Every occurrence of any of the keys is
 * replaced by '*' of the occurrence's length. An occurrence is any byte run that
 * decodes to a key, or to a prefix of it at least scrubber_min_occurrence() bytes
 * long (an echo cut short: "invalid
 * key abcd1234ef..."), when each key byte is taken as the byte itself, as %XX
 * with either case of hex (whether or not the byte needed encoding), or, for a
 * space, as '+'. That covers the raw key, the upper- and lower-case fully
 * percent-encoded forms, the '+' form, and the mixed forms real encoders
 * produce (one that leaves '/' alone, one that writes %7E for '~'). Overlapping
 * occurrences, of one key or of several, are masked as their union: every key is
 * matched against the original bytes, never against another key's mask. A piece from inside the key, its end,
 * or another encoding (base64, JSON escapes) is not an occurrence
 * (SECURITY.md section 6).
 *
 * A scrubber holds the keys in the secret arena and nothing derived from them
 * anywhere else; streams keep their held-back tail in a BUF_WIPE buf. This
 * module does not decompress or frame bodies; it sees identity bytes.
 */
#ifndef CREDBROKER_SCRUB_H
#define CREDBROKER_SCRUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Keys one scrubber masks: an invocation's routes (each scanned key costs about as much
 * as the first). */
#define SCRUB_KEYS_MAX 32

struct scrubber;

struct scrub_key {
    const uint8_t *data;
    size_t len;
};

/*
 * Returns 0 and in *out an immutable scrubber for keys[0..nkeys) (each copied
 * into the secret arena); ERR_INVALID for no keys or more than SCRUB_KEYS_MAX,
 * ERR_KEY_EMPTY, ERR_KEY_TOO_LONG (over SECRET_KEY_MAX), or an error from
 * secret_new(). Caller frees with scrubber_free(), after every stream made from
 * it.
 */
int scrubber_new_keys(const struct scrub_key *keys, size_t nkeys, struct scrubber **out)
    __attribute__((warn_unused_result));
/* scrubber_new_keys with the one key key[0..key_len). */
int scrubber_new(const uint8_t *key, size_t key_len, struct scrubber **out)
    __attribute__((warn_unused_result));
/* Wipes and frees. Accepts NULL. */
void scrubber_free(struct scrubber *s);

/* Longest possible occurrence: 3 * the longest key's length (every byte as %XX). */
size_t scrubber_max_pattern(const struct scrubber *s);

/*
 * The shortest prefix of a key of key_len bytes that is an occurrence: 9 bytes
 * or a quarter of the key, whichever is more, and the whole key when it is
 * shorter than that. So a truncated echo shows at most 8 of a 32-byte key's bytes, and a
 * run that merely starts like the key (a vendor's fixed "sk_live_" prefix) is
 * left alone; the quarter keeps a long fixed prefix of a long key from being
 * masked wherever the upstream names it.
 */
size_t scrubber_min_occurrence(size_t key_len);

/* Tests only: the widest candidate filter the scan may use, 16, 32 (where the CPU has
 * AVX2) or 64 (AVX-512BW), so that each is checked on one machine; 0 undoes it. */
void scrub_scan_width(size_t max);

/* Masks every occurrence in data[0..len) in place (a header value, a whole
 * body). Returns the number of occurrences (overlapping ones each count). */
size_t scrubber_mask_all(const struct scrubber *s, uint8_t *data, size_t len);

struct scrub_stream;

/*
 * Returns 0 and in *out a stream state for one response body, or ERR_NOMEM.
 * The stream refers to s, which must outlive it. Caller frees with
 * scrub_stream_free().
 */
int scrub_stream_new(const struct scrubber *s, struct scrub_stream **out)
    __attribute__((warn_unused_result));
/* Wipes and frees. Accepts NULL. */
void scrub_stream_free(struct scrub_stream *st);
/* Wipes what st holds and makes it new, for the next response (no allocation). */
void scrub_stream_reset(struct scrub_stream *st);

/*
 * Feeds in[0..len) and appends to out the bytes now known to be safe, already
 * masked. Holds back at most scrubber_max_pattern() - 1 bytes that could be
 * the start of an occurrence. The output is the same however the body is split
 * into feeds. Returns 0, or ERR_TOO_LARGE/ERR_NOMEM from out or the hold-back
 * buf; after an error out may hold part of the output and the stream is only
 * fit to be freed.
 */
int scrub_stream_feed(struct scrub_stream *st, const uint8_t *in, size_t len, struct buf *out)
    __attribute__((warn_unused_result));

/*
 * scrub_stream_feed writing to dst instead, which has room for
 * scrub_stream_feed_room(st, len) bytes (what is held back plus len): the output goes
 * straight where the caller sends it from. *dst_len is how many bytes were written.
 * Errors as scrub_stream_feed.
 */
size_t scrub_stream_feed_room(const struct scrub_stream *st, size_t len);
int scrub_stream_feed_to(struct scrub_stream *st, const uint8_t *in, size_t len, uint8_t *dst,
                         size_t *dst_len) __attribute__((warn_unused_result));

/*
 * End of body: appends the held-back tail (masked) to out. The stream is then
 * empty and may take a new body. Returns 0 or an error from out (as above).
 */
int scrub_stream_finish(struct scrub_stream *st, struct buf *out)
    __attribute__((warn_unused_result));

#endif
