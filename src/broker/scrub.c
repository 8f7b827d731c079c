/*
 * scrub.c - masking the keys in response headers and bodies. See scrub.h.
 *
 * Scanning: an occurrence can only start where the first bytes fit a key's
 * first unit (key[0], '+' for a space, or its %XX escape) and the start of
 * its second. scan_find() tests 16 positions at a time (32 where the CPU has
 * AVX2, 64 with AVX-512BW) against every key, so ordinary text,
 * even text full of key[0] or of '%', goes by at several GB/s per key and is
 * touched again only by the one memcpy that emits it.
 *
 * Matching: at a candidate the key is walked byte by byte against the data,
 * each key byte consuming one data byte (itself, or '+' for a space) or three
 * (%XX), until the key ends or the data stops fitting it; a walk that got
 * through scrubber_min_occurrence() key bytes is an occurrence (a prefix: an
 * echo cut short). That is deterministic unless the key holds a '%' and the
 * data says "%25" (one raw '%' or an escaped one); only then does match_nfa()
 * follow every reading at once, as a set of data offsets in a bitset. A match
 * reports its longest reading so that overlapping occurrences mask as their
 * union.
 *
 * Deferred masking: an occurrence is masked when the scan has moved past its
 * start, never before, so later candidates, of any key, still see the
 * original bytes and mask_all can work in place. That is why several keys
 * share one scan instead of one scrubber each in a chain: masking key A first
 * could turn the start of an overlapping B into '*' and let the rest of B
 * through. The stream keeps the same state in stream
 * offsets (base, mask_until), which is what makes the output independent of
 * how the body is split.
 *
 * XXX: a key that overlaps itself heavily ("aaaa...") against data made of it
 * costs O(len * key length), as naive search does. Real keys are random
 * enough that a candidate fails within a byte or two.
 */
#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ascii.h"
#include "err.h"
#include "scrub.h"
#include "secret.h"

#define SCRUB_SPAN_MAX (3 * SECRET_KEY_MAX) /* longest occurrence */
#define SCRUB_PREFIX_MIN 9                  /* see scrubber_min_occurrence() */

struct scrubber {
    size_t nkeys;
    size_t max_pattern;
    struct secret *keys[SCRUB_KEYS_MAX]; /* the only key-derived state: no tables, no copies */
};

struct scrub_stream {
    const struct scrubber *s;
    struct buf *hold; /* BUF_WIPE: bytes not yet emitted, from stream offset base */
    uint64_t base;
    uint64_t mask_until; /* stream offset: bytes before it are masked when emitted */
};

int scrubber_new_keys(const struct scrub_key *keys, size_t nkeys, struct scrubber **out)
{
    struct scrubber *s;
    int r;

    *out = NULL;
    if (nkeys == 0 || nkeys > SCRUB_KEYS_MAX)
        return ERR_INVALID;
    for (size_t i = 0; i < nkeys; i++) {
        if (keys[i].len == 0)
            return ERR_KEY_EMPTY;
        if (keys[i].len > SECRET_KEY_MAX)
            return ERR_KEY_TOO_LONG;
    }
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return ERR_NOMEM;
    for (size_t i = 0; i < nkeys; i++) {
        if ((r = secret_from(keys[i].data, keys[i].len, &s->keys[i])) != 0) {
            scrubber_free(s);
            return r;
        }
        s->nkeys++;
        if (3 * keys[i].len > s->max_pattern)
            s->max_pattern = 3 * keys[i].len;
    }
    *out = s;
    return 0;
}

int scrubber_new(const uint8_t *key, size_t key_len, struct scrubber **out)
{
    const struct scrub_key one = {key, key_len};

    return scrubber_new_keys(&one, 1, out);
}

void scrubber_free(struct scrubber *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nkeys; i++)
        secret_free(s->keys[i]);
    explicit_bzero(s, sizeof(*s));
    free(s);
}

size_t scrubber_max_pattern(const struct scrubber *s)
{
    return s->max_pattern;
}

size_t scrubber_min_occurrence(size_t key_len)
{
    size_t need = key_len / 4 > SCRUB_PREFIX_MIN ? key_len / 4 : SCRUB_PREFIX_MIN;

    return need < key_len ? need : key_len;
}

enum match { MATCH_NO, MATCH_YES, MATCH_MORE };

enum esc { ESC_NONE, ESC_OK, ESC_CUT };

/*
 * Reads a %XX at d[o] (d[o] == '%'). ESC_OK if it is an escape of k (either
 * case of hex); ESC_NONE if it is not, or no escape at all; ESC_CUT if the
 * data ends inside what could still be an escape of k and more may come. With
 * final, a cut escape is none.
 */
static enum esc escape_of(const uint8_t *d, size_t n, size_t o, uint8_t k, bool final)
{
    if (o + 1 >= n)
        return final ? ESC_NONE : ESC_CUT;
    if (ascii_hex_value(d[o + 1]) != k >> 4)
        return ESC_NONE;
    if (o + 2 >= n)
        return final ? ESC_NONE : ESC_CUT;
    if (ascii_hex_value(d[o + 2]) != (k & 0xf))
        return ESC_NONE;
    return ESC_OK;
}

static void bit_set(uint64_t *set, size_t i)
{
    set[i / 64] |= (uint64_t)1 << (i % 64);
}

/*
 * The general matcher: every reading of d[0..n) against the key at once. set
 * holds the data offsets reached after key[0..j); processing offsets from the
 * highest down lets one bitset serve as both the old and the new set, since
 * every step moves an offset up.
 */
static enum match match_nfa(const uint8_t *key, size_t klen, size_t need, const uint8_t *d,
                            size_t n, bool final, size_t *end)
{
    uint64_t set[SCRUB_SPAN_MAX / 64 + 1];
    size_t lo = 0, hi = 0, best = 0;
    bool found = false;

    memset(set, 0, sizeof(set));
    bit_set(set, 0);
    for (size_t j = 0; j < klen; j++) {
        uint8_t k = key[j];
        size_t nlo = SIZE_MAX, nhi = 0;

        for (size_t o = hi + 1; o-- > lo;) {
            if (!(set[o / 64] >> (o % 64) & 1))
                continue;
            set[o / 64] &= ~((uint64_t)1 << (o % 64));
            if (o >= n) {
                if (!final)
                    return MATCH_MORE;
                continue;
            }
            if (d[o] == k || (d[o] == '+' && k == ' ')) {
                bit_set(set, o + 1);
                nlo = o + 1 < nlo ? o + 1 : nlo;
                nhi = o + 1 > nhi ? o + 1 : nhi;
            }
            if (d[o] == '%') {
                enum esc e = escape_of(d, n, o, k, final);

                if (e == ESC_CUT)
                    return MATCH_MORE;
                if (e == ESC_OK) {
                    bit_set(set, o + 3);
                    nlo = o + 3 < nlo ? o + 3 : nlo;
                    nhi = o + 3 > nhi ? o + 3 : nhi;
                }
            }
        }
        if (nlo == SIZE_MAX)
            break;
        lo = nlo;
        hi = nhi;
        if (j + 1 >= need) {
            found = true;
            best = hi > best ? hi : best;
        }
    }
    if (!found)
        return MATCH_NO;
    *end = best;
    return MATCH_YES;
}

/*
 * Is there an occurrence at d[0], a run that reads as key[0..m) with need <= m
 * <= klen? MATCH_YES with the end of the longest such run, MATCH_NO, or
 * MATCH_MORE when only more data can tell (never with final). The answer never
 * changes when more data is appended: a walk that reaches the end of the data
 * could still grow, so it waits.
 */
static enum match match_at(const uint8_t *key, size_t klen, size_t need, const uint8_t *d,
                           size_t n, bool final, size_t *end)
{
    size_t o = 0, j;

    for (j = 0; j < klen; j++) {
        uint8_t k = key[j];

        if (o >= n) {
            if (!final)
                return MATCH_MORE;
            break;
        }
        if (d[o] == '%') {
            enum esc e = escape_of(d, n, o, k, final);

            if (k == '%' && e != ESC_NONE) /* "%25": two readings */
                return match_nfa(key, klen, need, d, n, final, end);
            if (e == ESC_CUT)
                return MATCH_MORE;
            if (e == ESC_OK) {
                o += 3;
                continue;
            }
            if (k != '%')
                break;
            o++;
            continue;
        }
        if (d[o] != k && !(d[o] == '+' && k == ' '))
            break;
        o++;
    }
    if (j < need)
        return MATCH_NO;
    *end = o;
    return MATCH_YES;
}

/*
 * Candidate filter, 16 positions at a time. GCC/Clang vector extensions
 * compile to SSE2 on x86-64 and NEON on arm64 with no intrinsics; a byte
 * compare yields 0x00 or 0xff per lane.
 */
typedef uint8_t scrub_v16 __attribute__((vector_size(16)));
typedef int8_t scrub_m16 __attribute__((vector_size(16)));

/*
 * Where the CPU has AVX2 (asked at run time: the binary runs on any x86-64), the same
 * filter 32 positions at a time: half the instructions per byte (bench W3, a 1 GiB
 * download). The 32-byte vectors only live in struct scan_key's memory and inside the
 * AVX2 function: passed by value, they would change the ABI of code built without AVX.
 * With AVX-512BW, 64 at a time (intrinsics, for the compares into mask registers): the
 * scrubber's pass 35-40 % faster than with AVX2 (16 KiB feeds of random bytes).
 */
#if defined(__x86_64__)
#include <immintrin.h>
#define SCRUB_WIDE 1
typedef uint8_t scrub_v32 __attribute__((vector_size(32)));
typedef int8_t scrub_m32 __attribute__((vector_size(32)));
typedef char scrub_c32 __attribute__((vector_size(32))); /* what vpmovmskb's builtin takes */
#define SPLAT32(c) ((scrub_v32){0} + (uint8_t)(c))
#endif

static scrub_v16 splat(uint8_t c)
{
    scrub_v16 v = {0};

    return v + c;
}

/* What the first bytes of an occurrence of one key can be (see scan_is_candidate). */
struct scan_key {
    const uint8_t *key;
    size_t klen;
    size_t need; /* the shortest prefix of the key that is an occurrence */
    uint8_t k0, p0, k1, p1, hu, hl, lu, ll;
    scrub_v16 vk0, vp0, vk1, vp1, vhu, vhl, vlu, vll;
    scrub_m16 vany1; /* all set for a one-byte key: the second byte is free */
#ifdef SCRUB_WIDE
    scrub_v32 wk0, wp0, wk1, wp1, whu, whl, wlu, wll; /* the same, 32 wide */
    scrub_m32 wany1;
#endif
};

/* One pass over a contiguous run of data; see the file comment. */
struct scan {
    uint64_t base;       /* stream offset of d[0] */
    uint64_t mask_until; /* stream offset */
    size_t emitted;      /* d[0..emitted) is flushed */
    size_t count;        /* occurrences found */
    uint8_t *dst;        /* where flushed bytes go: d itself (in place) or a region with room */
    size_t dst_len;      /* bytes written to dst */
    scrub_v16 vpct;
    size_t nkeys;
    struct scan_key k[SCRUB_KEYS_MAX]; /* only k[0..nkeys) is set, and wiped */
};

static void scan_key_init(struct scan_key *f, const struct secret *key)
{
    static const char hex[] = "0123456789ABCDEF";

    f->key = secret_data(key);
    f->klen = secret_len(key);
    f->need = scrubber_min_occurrence(f->klen);
    f->k0 = f->key[0];
    f->p0 = f->k0 == ' ' ? '+' : f->k0;
    f->k1 = f->klen > 1 ? f->key[1] : f->k0;
    f->p1 = f->k1 == ' ' ? '+' : f->k1;
    f->hu = (uint8_t)hex[f->k0 >> 4];
    f->hl = ascii_tolower(f->hu);
    f->lu = (uint8_t)hex[f->k0 & 0xf];
    f->ll = ascii_tolower(f->lu);
    f->vk0 = splat(f->k0);
    f->vp0 = splat(f->p0);
    f->vk1 = splat(f->k1);
    f->vp1 = splat(f->p1);
    f->vhu = splat(f->hu);
    f->vhl = splat(f->hl);
    f->vlu = splat(f->lu);
    f->vll = splat(f->ll);
    f->vany1 = (scrub_m16)splat(f->klen == 1 ? 0xff : 0);
#ifdef SCRUB_WIDE
    f->wk0 = SPLAT32(f->k0);
    f->wp0 = SPLAT32(f->p0);
    f->wk1 = SPLAT32(f->k1);
    f->wp1 = SPLAT32(f->p1);
    f->whu = SPLAT32(f->hu);
    f->whl = SPLAT32(f->hl);
    f->wlu = SPLAT32(f->lu);
    f->wll = SPLAT32(f->ll);
    f->wany1 = (scrub_m32)SPLAT32(f->klen == 1 ? 0xff : 0);
#endif
}

static void scan_init(struct scan *sc, const struct scrubber *s, uint64_t base, uint64_t mask_until)
{
    /* Not the whole struct: a scan is made for every feed, and most of k[] is unused. */
    memset(sc, 0, offsetof(struct scan, k));
    sc->base = base;
    sc->mask_until = mask_until;
    sc->vpct = splat('%');
    sc->nkeys = s->nkeys;
    for (size_t i = 0; i < s->nkeys; i++)
        scan_key_init(&sc->k[i], s->keys[i]);
}

/* The keys' bytes are only ever read from the arena; do not leave what the
 * filter learned from them on the stack. */
static void scan_wipe(struct scan *sc)
{
    explicit_bzero(sc->k, sc->nkeys * sizeof(sc->k[0]));
    explicit_bzero(sc, offsetof(struct scan, k));
}

/*
 * Can an occurrence of f's key start at d[i]? Its first unit is key[0] itself
 * ('+' for a space), followed by the first byte of key[1]'s unit (itself, '+'
 * for a space, or '%'); or it is the escape of key[0], '%' and two hex digits.
 * Bytes past the end of the data are unknown, so they are not checked.
 */
static bool scan_key_is_candidate(const struct scan_key *f, const uint8_t *d, size_t n, size_t i)
{
    uint8_t c = d[i], c1 = i + 1 < n ? d[i + 1] : 0, c2 = i + 2 < n ? d[i + 2] : 0;
    bool raw = c == f->k0 || c == f->p0, esc = c == '%';

    if (raw && i + 1 < n && f->klen > 1)
        raw = c1 == f->k1 || c1 == f->p1 || c1 == '%';
    if (esc && i + 1 < n)
        esc = c1 == f->hu || c1 == f->hl;
    if (esc && i + 2 < n)
        esc = c2 == f->lu || c2 == f->ll;
    return raw || esc;
}

static bool scan_is_candidate(const struct scan *sc, const uint8_t *d, size_t n, size_t i)
{
    for (size_t k = 0; k < sc->nkeys; k++) {
        if (scan_key_is_candidate(&sc->k[k], d, n, i))
            return true;
    }
    return false;
}

/* The candidate lanes of 16 positions for one key: a at the position, b and c after it. */
static scrub_m16 scan_key_block(const struct scan_key *f, scrub_v16 vpct, scrub_v16 a, scrub_v16 b,
                                scrub_v16 c)
{
    return (((a == f->vk0) | (a == f->vp0)) &
            ((b == f->vk1) | (b == f->vp1) | (b == vpct) | f->vany1)) |
           ((a == vpct) & ((b == f->vhu) | (b == f->vhl)) & ((c == f->vlu) | (c == f->vll)));
}

/* Lane index of the first set lane in a 64-bit half of a mask. */
static unsigned lane_first(uint64_t half)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return (unsigned)__builtin_ctzll(half) / 8;
#else
    return (unsigned)__builtin_clzll(half) / 8;
#endif
}

#ifdef SCRUB_WIDE
/* The widest filter the CPU has: 16, 32 (AVX2) or 64 (AVX-512BW); 0 until asked. */
static size_t scan_width;
static size_t scan_width_max = 64; /* scrub_scan_width(): tests check each filter */

void scrub_scan_width(size_t max)
{
    scan_width_max = max != 0 ? max : 64;
    scan_width = 0;
}

static size_t scan_width_of_cpu(void)
{
    size_t w = __builtin_cpu_supports("avx512bw") ? 64 : __builtin_cpu_supports("avx2") ? 32 : 16;

    return w < scan_width_max ? w : scan_width_max;
}

/* scan_find's blocks 32 positions at a time: true with *found the first candidate (or
 * limit), else false with *pos where the 32-wide blocks stopped. */
__attribute__((target("avx2"))) static bool scan_find_wide(const struct scan *sc,
                                                             const uint8_t *d, size_t n,
                                                             size_t *pos, size_t limit,
                                                             size_t *found)
{
    const scrub_v32 vpct = SPLAT32('%');
    size_t p = *pos;

    while (p < limit && n - p >= 34) {
        scrub_v32 a, b, c;
        scrub_m32 m = {0};
        uint32_t lanes;

        memcpy(&a, d + p, sizeof(a));
        memcpy(&b, d + p + 1, sizeof(b));
        memcpy(&c, d + p + 2, sizeof(c));
        for (size_t k = 0; k < sc->nkeys; k++) {
            const struct scan_key *f = &sc->k[k];

            m |= (((a == f->wk0) | (a == f->wp0)) &
                  ((b == f->wk1) | (b == f->wp1) | (b == vpct) | f->wany1)) |
                 ((a == vpct) & ((b == f->whu) | (b == f->whl)) & ((c == f->wlu) | (c == f->wll)));
        }
        /* One bit per lane (vpmovmskb): bit i is position p + i. */
        lanes = (uint32_t)__builtin_ia32_pmovmskb256((scrub_c32)m);
        if (lanes != 0) {
            size_t i = p + (unsigned)__builtin_ctz(lanes);

            *found = i < limit ? i : limit;
            return true;
        }
        p += 32;
    }
    *pos = p;
    return false;
}

/* The candidate lanes of 64 positions for one key (scan_key_block, 64 wide). */
__attribute__((target("avx512bw"), always_inline)) static inline __mmask64
scan_key_block64(const struct scan_key *f, __m512i a, __m512i b, __m512i c, __mmask64 apct,
                 __mmask64 bpct)
{
    __mmask64 first, second, esc;

    first = _mm512_cmpeq_epi8_mask(a, _mm512_set1_epi8((char)f->k0)) |
            _mm512_cmpeq_epi8_mask(a, _mm512_set1_epi8((char)f->p0));
    second = _mm512_cmpeq_epi8_mask(b, _mm512_set1_epi8((char)f->k1)) |
             _mm512_cmpeq_epi8_mask(b, _mm512_set1_epi8((char)f->p1)) | bpct |
             (f->klen == 1 ? ~(__mmask64)0 : 0); /* a one-byte key: the second byte is free */
    esc = apct &
          (_mm512_cmpeq_epi8_mask(b, _mm512_set1_epi8((char)f->hu)) |
           _mm512_cmpeq_epi8_mask(b, _mm512_set1_epi8((char)f->hl))) &
          (_mm512_cmpeq_epi8_mask(c, _mm512_set1_epi8((char)f->lu)) |
           _mm512_cmpeq_epi8_mask(c, _mm512_set1_epi8((char)f->ll)));
    return (first & second) | esc;
}

/* scan_find_wide 64 positions at a time with AVX-512BW, whose byte compares give a bit
 * mask directly (no vpmovmskb). The keys' bytes are broadcast where they are compared, not
 * kept 64 wide in struct scan_key (32 keys of those would put 16 KiB more on the stack of
 * every scan); the first key's are loop-invariant, and the compiler keeps them in
 * registers. */
__attribute__((target("avx512bw"))) static bool scan_find_wider(const struct scan *sc,
                                                                  const uint8_t *d, size_t n,
                                                                  size_t *pos, size_t limit,
                                                                  size_t *found)
{
    const __m512i vpct = _mm512_set1_epi8('%');
    size_t p = *pos;

    while (p < limit && n - p >= 66) {
        const __m512i a = _mm512_loadu_si512(d + p), b = _mm512_loadu_si512(d + p + 1),
                      c = _mm512_loadu_si512(d + p + 2);
        const __mmask64 apct = _mm512_cmpeq_epi8_mask(a, vpct),
                        bpct = _mm512_cmpeq_epi8_mask(b, vpct);
        __mmask64 m = scan_key_block64(&sc->k[0], a, b, c, apct, bpct);

        for (size_t k = 1; k < sc->nkeys; k++)
            m |= scan_key_block64(&sc->k[k], a, b, c, apct, bpct);
        /* Bit i is position p + i. */
        if (m != 0) {
            size_t i = p + (unsigned)__builtin_ctzll(m);

            *found = i < limit ? i : limit;
            return true;
        }
        p += 64;
    }
    *pos = p;
    return false;
}
#else
void scrub_scan_width(size_t max)
{
    (void)max; /* the 16-wide filter is the only one */
}
#endif

/* Index of the first candidate in d[pos..limit), reading no further than d[n - 1]; or limit. */
static size_t scan_find(const struct scan *sc, const uint8_t *d, size_t n, size_t pos, size_t limit)
{
#ifdef SCRUB_WIDE
    size_t found;

    if (scan_width == 0)
        scan_width = scan_width_of_cpu();
    if (scan_width >= 64 && scan_find_wider(sc, d, n, &pos, limit, &found))
        return found;
    if (scan_width >= 32 && scan_find_wide(sc, d, n, &pos, limit, &found))
        return found;
#endif
    /* Whole blocks: positions pos..pos+15 and their next two bytes, all below n. */
    while (pos < limit && n - pos >= 18) {
        scrub_v16 a, b, c;
        scrub_m16 m;
        uint64_t half;

        memcpy(&a, d + pos, sizeof(a));
        memcpy(&b, d + pos + 1, sizeof(b));
        memcpy(&c, d + pos + 2, sizeof(c));
        m = scan_key_block(&sc->k[0], sc->vpct, a, b, c);
        for (size_t k = 1; k < sc->nkeys; k++)
            m |= scan_key_block(&sc->k[k], sc->vpct, a, b, c);
        memcpy(&half, &m, sizeof(half));
        if (half != 0)
            return pos + lane_first(half) < limit ? pos + lane_first(half) : limit;
        memcpy(&half, (const uint8_t *)&m + 8, sizeof(half));
        if (half != 0)
            return pos + 8 + lane_first(half) < limit ? pos + 8 + lane_first(half) : limit;
        pos += 16;
    }
    for (; pos < limit; pos++) {
        if (scan_is_candidate(sc, d, n, pos))
            return pos;
    }
    return limit;
}

/* Emits d[emitted..upto): the part below mask_until as '*', the rest as is. In place
 * (dst is d) the rest is already where it belongs. */
static void scan_flush(struct scan *sc, const uint8_t *d, size_t upto)
{
    size_t masked_end = upto;
    uint8_t *to;

    if (upto <= sc->emitted)
        return;
    if (sc->mask_until < sc->base + upto)
        masked_end = sc->mask_until > sc->base + sc->emitted ? (size_t)(sc->mask_until - sc->base)
                                                             : sc->emitted;
    to = sc->dst + sc->dst_len;
    memset(to, '*', masked_end - sc->emitted);
    to += masked_end - sc->emitted;
    if (to != d + masked_end)
        memcpy(to, d + masked_end, upto - masked_end);
    sc->dst_len += upto - sc->emitted;
    sc->emitted = upto;
}

/*
 * Evaluates every start in d[0..limit) (d has n >= limit bytes of lookahead)
 * and flushes up to the first start that needs more data, or to limit.
 * Returns where flushing stopped.
 */
static size_t scan_run(struct scan *sc, const uint8_t *d, size_t n, size_t limit, bool final)
{
    size_t pos = 0, i, end;
    enum match m;

    while ((i = scan_find(sc, d, n, pos, limit)) < limit) {
        size_t found = 0, longest = 0;
        bool more = false;

        /* Every key judges this start before any verdict counts: one that needs more data
         * stops the scan here, and the start is judged again, whole, once it has come. */
        for (size_t k = 0; k < sc->nkeys && !more; k++) {
            const struct scan_key *f = &sc->k[k];

            m = match_at(f->key, f->klen, f->need, d + i, n - i, final, &end);
            more = m == MATCH_MORE;
            if (m == MATCH_YES) {
                found++;
                longest = end > longest ? end : longest;
            }
        }
        if (more) {
            limit = i;
            break;
        }
        if (found > 0) {
            scan_flush(sc, d, i);
            if (sc->base + i + longest > sc->mask_until)
                sc->mask_until = sc->base + i + longest;
            sc->count += found;
        }
        pos = i + 1;
    }
    scan_flush(sc, d, limit);
    return limit;
}

size_t scrubber_mask_all(const struct scrubber *s, uint8_t *data, size_t len)
{
    struct scan sc __attribute__((uninitialized)); /* scan_init sets what is read */
    size_t count;

    if (len == 0)
        return 0;
    scan_init(&sc, s, 0, 0);
    sc.dst = data;
    (void)scan_run(&sc, data, len, len, true);
    count = sc.count;
    scan_wipe(&sc);
    return count;
}

int scrub_stream_new(const struct scrubber *s, struct scrub_stream **out)
{
    struct scrub_stream *st;

    *out = NULL;
    if ((st = calloc(1, sizeof(*st))) == NULL)
        return ERR_NOMEM;
    st->s = s;
    /* At most max_pattern - 1 held back plus max_pattern appended (feed). */
    if ((st->hold = buf_new(2 * scrubber_max_pattern(s), BUF_WIPE)) == NULL) {
        free(st);
        return ERR_NOMEM;
    }
    *out = st;
    return 0;
}

void scrub_stream_reset(struct scrub_stream *st)
{
    buf_reset(st->hold); /* wiped; small: at most twice the longest occurrence */
    st->base = 0;
    st->mask_until = 0;
}

void scrub_stream_free(struct scrub_stream *st)
{
    if (st == NULL)
        return;
    buf_free(st->hold);
    explicit_bzero(st, sizeof(*st));
    free(st);
}

/* Scans d[0..n), the stream's bytes from st->base on, appending to dst at *dst_len.
 * Returns where it stopped. */
static size_t stream_scan(struct scrub_stream *st, const uint8_t *d, size_t n, size_t limit,
                          bool final, uint8_t *dst, size_t *dst_len)
{
    struct scan sc __attribute__((uninitialized)); /* scan_init sets what is read */
    size_t stop;

    scan_init(&sc, st->s, st->base, st->mask_until);
    sc.dst = dst;
    sc.dst_len = *dst_len;
    stop = scan_run(&sc, d, n, limit, final);
    st->base += stop;
    st->mask_until = sc.mask_until;
    *dst_len = sc.dst_len;
    scan_wipe(&sc);
    return stop;
}

/* Scans the hold buf up to limit and drops what was emitted. */
static size_t stream_scan_hold(struct scrub_stream *st, size_t limit, bool final, uint8_t *dst,
                               size_t *dst_len)
{
    size_t stop = stream_scan(st, buf_ptr(st->hold), buf_len(st->hold), limit, final, dst, dst_len);

    (void)buf_consume(st->hold, stop); /* stop <= the hold's length */
    return stop;
}

size_t scrub_stream_feed_room(const struct scrub_stream *st, size_t len)
{
    return buf_len(st->hold) + len;
}

int scrub_stream_feed_to(struct scrub_stream *st, const uint8_t *in, size_t len, uint8_t *dst,
                         size_t *dst_len)
{
    size_t maxp = scrubber_max_pattern(st->s), held = buf_len(st->hold), stop;
    int r;

    *dst_len = 0;
    if (len == 0)
        return 0;
    if (held > 0 && len <= maxp) {
        /* Small feed: join it to the held tail and scan that. */
        if ((r = buf_put(st->hold, in, len)) != 0)
            return r;
        (void)stream_scan_hold(st, buf_len(st->hold), false, dst, dst_len);
        return 0;
    }
    if (held > 0) {
        /* The held starts see maxp bytes of lookahead, enough to decide each;
         * then the hold is empty and in is scanned where it lies. */
        if ((r = buf_put(st->hold, in, maxp)) != 0)
            return r;
        stop = stream_scan_hold(st, held, false, dst, dst_len);
        assert(stop == held);
        buf_reset(st->hold);
    }
    stop = stream_scan(st, in, len, len, false, dst, dst_len);
    return buf_put(st->hold, in + stop, len - stop);
}

int scrub_stream_feed(struct scrub_stream *st, const uint8_t *in, size_t len, struct buf *out)
{
    uint8_t *dst;
    size_t n;
    int r;

    if (len == 0)
        return 0;
    if ((r = buf_reserve(out, scrub_stream_feed_room(st, len), &dst)) != 0)
        return r;
    r = scrub_stream_feed_to(st, in, len, dst, &n);
    buf_commit(out, n);
    return r;
}

int scrub_stream_finish(struct scrub_stream *st, struct buf *out)
{
    uint8_t *dst;
    size_t n = 0;
    int r;

    if ((r = buf_reserve(out, buf_len(st->hold), &dst)) != 0)
        return r;
    (void)stream_scan_hold(st, buf_len(st->hold), true, dst, &n);
    buf_commit(out, n);
    buf_reset(st->hold);
    st->base = 0;
    st->mask_until = 0;
    return 0;
}
