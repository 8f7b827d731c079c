/*
 * fuzz_scrub.c - the response scrubber (scrub.h): every occurrence of the key,
 * raw or percent-encoded, masked before the child sees it.
 *
 * Input: [k][key: 1 + k % 64 bytes]{[k'][key: 1 + k' % 64 bytes]}[s][s piece
 * lengths, one byte each][body]: 1 + (k >> 6) % 3 keys, the first one's length from k's
 * low bits (an invocation's routes: one scrubber for all their keys). Key bytes are made valid keys the way secret_validate_key wants them (a
 * control byte c becomes c ^ 0x40), and '*' becomes '%': the mask byte in a
 * key would let a masked run spell the key again, and '%' is the interesting
 * byte for the matcher. The body is fed through a scrub_stream in the pieces
 * given (a piece longer than what is left takes the rest; the remainder is
 * one last piece), then the same stream takes the body again one byte at a
 * time (or in random pieces, for long bodies) to check that finish() resets it. The
 * pieces go through scrub_stream_feed and scrub_stream_feed_to (into exactly the room it
 * asks for) in turn.
 *
 * The input's size picks the widest candidate filter the scan may use: 16, 32 (where the
 * CPU has AVX2) or 64 (AVX-512BW), by its remainder modulo 3 (scrub_scan_width).
 *
 * Properties: the streamed output equals scrubber_mask_all over the whole body
 * in one piece, however it was split; it has the body's length; it equals a
 * naive reference written here from scrub.h's definition (an occurrence is any
 * run that decodes to one of the keys, or to a prefix of it of at least max(9, klen / 4)
 * bytes (the whole key if shorter), each key byte as itself, %XX in either
 * case, or '+' for a space; the union of occurrences of all the keys, each found
 * in the original bytes, is masked with '*'), and mask_all's count is the number
 * of (start, key) pairs the reference finds; the output never holds a key raw, or
 * fully %-encoded in upper or lower case hex.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "fuzz.h"
#include "scrub.h"

#define MAX_KEY 64
#define MAX_KEYS 3

struct fuzz_key {
    uint8_t raw[MAX_KEY], enc_upper[3 * MAX_KEY], enc_lower[3 * MAX_KEY];
    size_t len;
};

/* The reference for one key: marks in masked[] what its occurrences in orig cover, and
 * returns the number of starts of one. */
static size_t ref_mask_key(const uint8_t *key, size_t klen, const uint8_t *orig, size_t n,
                           bool *masked)
{
    bool reach[3 * MAX_KEY + 1], next[3 * MAX_KEY + 1];
    size_t count = 0, need = klen / 4 > 9 ? klen / 4 : 9;

    if (need > klen)
        need = klen;
    for (size_t i = 0; i < n; i++) {
        size_t maxo = 0, span = n - i;
        bool any = true, found = false;

        if (orig[i] != key[0] && orig[i] != '%' && !(orig[i] == '+' && key[0] == ' '))
            continue;
        memset(reach, 0, sizeof(reach));
        reach[0] = true;
        for (size_t j = 0; j < klen && any; j++) {
            memset(next, 0, sizeof(next));
            any = false;
            for (size_t o = 0; o <= 3 * j; o++) {
                const uint8_t *c = orig + i + o;

                if (!reach[o] || o >= span)
                    continue;
                if (c[0] == key[j] || (c[0] == '+' && key[j] == ' ')) {
                    next[o + 1] = true;
                    any = true;
                }
                if (c[0] == '%' && o + 2 < span && fuzz_hex(c[1]) >= 0 && fuzz_hex(c[2]) >= 0 &&
                    (fuzz_hex(c[1]) << 4 | fuzz_hex(c[2])) == key[j]) {
                    next[o + 3] = true;
                    any = true;
                }
            }
            memcpy(reach, next, sizeof(reach));
            /* Read key[0..j] (j + 1 bytes): an occurrence once that is need or more. */
            for (size_t o = 0; any && j + 1 >= need && o <= 3 * klen; o++) {
                if (reach[o]) {
                    found = true;
                    maxo = o > maxo ? o : maxo;
                }
            }
        }
        if (!found)
            continue;
        count++;
        for (size_t o = i; o < i + maxo; o++)
            masked[o] = true;
    }
    return count;
}

/* The reference: masks d in place with the union of every key's occurrences in the original
 * bytes, and returns the number of (start, key) pairs. */
static size_t ref_mask(const struct fuzz_key *keys, size_t nkeys, uint8_t *d, size_t n)
{
    bool *masked = calloc(n + 1, sizeof(bool));
    size_t count = 0;

    if (masked == NULL)
        abort();
    for (size_t k = 0; k < nkeys; k++)
        count += ref_mask_key(keys[k].raw, keys[k].len, d, n, masked);
    for (size_t i = 0; i < n; i++) {
        if (masked[i])
            d[i] = '*';
    }
    free(masked);
    return count;
}

/* Feeds body in the given pieces (then the rest), then finishes; output into out. */
static void stream_body(struct scrub_stream *st, const uint8_t *body, size_t n,
                        const uint8_t *pieces, size_t npieces, struct buf *out)
{
    size_t off = 0;

    for (size_t k = 0; k <= npieces && off <= n; k++) {
        size_t len = k < npieces ? pieces[k] : n - off;
        uint8_t *copy;

        if (len > n - off)
            len = n - off;
        copy = fuzz_dup(body + off, len);
        if (k % 2 == 0) {
            FUZZ_CHECK(scrub_stream_feed(st, copy, len, out) == 0, "scrub_stream_feed failed");
        } else {
            /* Exactly the room asked for, on the heap: a byte past it is a sanitizer's
             * report. */
            size_t room = scrub_stream_feed_room(st, len), got = SIZE_MAX;
            uint8_t *dst = malloc(room ? room : 1);

            FUZZ_CHECK(dst != NULL, "out of memory");
            FUZZ_CHECK(scrub_stream_feed_to(st, copy, len, dst, &got) == 0,
                       "scrub_stream_feed_to failed");
            FUZZ_CHECK(got <= room, "scrub_stream_feed_to wrote past the room it asked for");
            FUZZ_CHECK(buf_put(out, dst, got) == 0, "out of memory");
            free(dst);
        }
        free(copy);
        off += len;
        if (off == n && k < npieces)
            break;
    }
    FUZZ_CHECK(scrub_stream_finish(st, out) == 0, "scrub_stream_finish failed");
}

static void check_output(const char *what, const struct buf *out, const uint8_t *want, size_t n)
{
    if (buf_len(out) != n || (n > 0 && memcmp(buf_ptr(out), want, n) != 0)) {
        fuzz_dump(what, buf_ptr(out), buf_len(out));
        fuzz_dump("mask_all", want, n);
    }
    FUZZ_CHECK(buf_len(out) == n, "%s: %zu bytes out of %zu", what, buf_len(out), n);
    FUZZ_CHECK(n == 0 || memcmp(buf_ptr(out), want, n) == 0, "%s differs from mask_all", what);
}

/* Reads one key, [k][1 + k % 64 bytes], at data[*at..size) (at least 2 bytes there), made
 * valid as the header says. */
static void read_key(const uint8_t *data, size_t size, size_t *at, struct fuzz_key *k)
{
    static const char hex_upper[] = "0123456789ABCDEF", hex_lower[] = "0123456789abcdef";

    k->len = 1 + data[(*at)++] % MAX_KEY;
    if (k->len > size - *at)
        k->len = size - *at;
    for (size_t i = 0; i < k->len; i++) {
        uint8_t c = data[(*at)++];

        if (c < 0x20 || c == 0x7f)
            c ^= 0x40;
        k->raw[i] = c == '*' ? '%' : c;
        k->enc_upper[3 * i] = k->enc_lower[3 * i] = '%';
        k->enc_upper[3 * i + 1] = (uint8_t)hex_upper[k->raw[i] >> 4];
        k->enc_upper[3 * i + 2] = (uint8_t)hex_upper[k->raw[i] & 0xf];
        k->enc_lower[3 * i + 1] = (uint8_t)hex_lower[k->raw[i] >> 4];
        k->enc_lower[3 * i + 2] = (uint8_t)hex_lower[k->raw[i] & 0xf];
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_key keys[MAX_KEYS];
    struct scrub_key refs[MAX_KEYS];
    uint8_t *whole, *ref, pieces[256];
    size_t nkeys, npieces = 0, n, count, ref_count, at = 0, longest = 0;
    struct scrubber *s = NULL;
    struct scrub_stream *st = NULL;
    struct buf *out;
    struct fuzz_rng rng;
    const uint8_t *body;

    /* Each candidate filter the CPU has, whatever the input: 16 << (size % 3) wide. */
    scrub_scan_width((size_t)16 << (size % 3));
    if (size < 2)
        return 0;
    nkeys = 1 + (data[0] >> 6) % MAX_KEYS;
    read_key(data, size, &at, &keys[0]);
    for (size_t k = 1; k < nkeys; k++) {
        if (size - at < 2) {
            nkeys = k;
            break;
        }
        read_key(data, size, &at, &keys[k]);
    }
    for (size_t k = 0; k < nkeys; k++) {
        refs[k].data = keys[k].raw;
        refs[k].len = keys[k].len;
        longest = keys[k].len > longest ? keys[k].len : longest;
    }
    if (at < size) {
        npieces = data[at++] % 32;
        if (npieces > size - at)
            npieces = size - at;
        memcpy(pieces, data + at, npieces);
        at += npieces;
    }
    body = data + at;
    n = size - at;
    fuzz_rng_seed(&rng, data, size);

    FUZZ_CHECK(scrubber_new_keys(refs, nkeys, &s) == 0, "scrubber_new_keys");
    FUZZ_CHECK(scrubber_max_pattern(s) == 3 * longest, "max pattern");
    FUZZ_CHECK(scrub_stream_new(s, &st) == 0, "scrub_stream_new");
    if ((out = buf_new(n + 1, 0)) == NULL)
        abort();

    whole = fuzz_dup(body, n);
    count = scrubber_mask_all(s, whole, n);
    ref = fuzz_dup(body, n);
    ref_count = ref_mask(keys, nkeys, ref, n);
    if (n > 0 && memcmp(whole, ref, n) != 0) {
        for (size_t k = 0; k < nkeys; k++)
            fuzz_dump("key", keys[k].raw, keys[k].len);
        fuzz_dump("body", body, n);
        fuzz_dump("reference", ref, n);
        fuzz_dump("mask_all", whole, n);
    }
    FUZZ_CHECK(n == 0 || memcmp(whole, ref, n) == 0, "mask_all differs from the reference");
    FUZZ_CHECK(count == ref_count, "mask_all counts %zu occurrences, the reference %zu", count,
               ref_count);
    for (size_t k = 0; k < nkeys; k++) {
        const struct fuzz_key *fk = &keys[k];

        FUZZ_CHECK(!fuzz_contains(whole, n, fk->raw, fk->len), "a key survives raw");
        FUZZ_CHECK(!fuzz_contains(whole, n, fk->enc_upper, 3 * fk->len),
                   "a key survives %%-encoded");
        FUZZ_CHECK(!fuzz_contains(whole, n, fk->enc_lower, 3 * fk->len),
                   "a key survives %%-encoded");
    }

    stream_body(st, body, n, pieces, npieces, out);
    check_output("stream", out, whole, n);

    /* The same stream, after finish(), takes a new body. */
    buf_reset(out);
    if (n <= 512) {
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(scrub_stream_feed(st, body + i, 1, out) == 0, "feed one byte");
        FUZZ_CHECK(scrub_stream_finish(st, out) == 0, "finish");
    } else {
        size_t k = 0;

        while (k < sizeof(pieces)) {
            pieces[k] = (uint8_t)fuzz_rng_below(&rng, 1 + 3 * longest + fuzz_rng_below(&rng, 64));
            k++;
        }
        stream_body(st, body, n, pieces, sizeof(pieces), out);
    }
    check_output("stream reused", out, whole, n);

    buf_free(out);
    free(whole);
    free(ref);
    scrub_stream_free(st);
    scrubber_free(s);
    return 0;
}
