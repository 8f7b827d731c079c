/*
 * fuzz_decode.c - the Content-Encoding decoder (decode.h), against the libraries'
 * own decoders given the whole body at once, and against itself cut differently.
 *
 * Input: [selector][seed][body]. The selector picks the Content-Encoding (low three
 * bits: gzip, deflate, br, zstd, "gzip, br", "br, zstd", "deflate, gzip, zstd",
 * "zstd, gzip") and, in its high bits, how the round trip compresses. The seed and
 * the input itself seed the generator (fuzz.h) that cuts the input into pieces and
 * picks how much output each call asks for.
 *
 * Properties, for the body as given:
 *   - every call writes at most out_cap bytes (a canary after the room given) and
 *     consumes at most what it was given (in a block of exactly that size, for ASan);
 *     input is left unconsumed only when the output is full or the decoder has ended;
 *     a call with no room consumes nothing, whatever the state; the decoder never
 *     holds more than CONTENT_DECODER_MAX_MEMORY;
 *   - decoded whole (one piece, room for everything) and decoded in random pieces with
 *     random output room, the outcome is the same: the same output, END at the same
 *     input offset or a clean finish(), or the same error and message (the outputs
 *     before an error then agree as far as both go); for br and stacked codings, an
 *     error and an error (see check_same());
 *   - the outcome is the one the libraries' own decoders give on the whole body
 *     (inflate with Z_FINISH, BrotliDecoderDecompressStream with everything and
 *     BrotliDecoderDecompress, ZSTD_decompress), chained down a stack (an inner
 *     stream must use all its outer one made), read by this file's own rules for
 *     what the decoder adds: gzip members and zstd frames one after another, a first
 *     byte that cannot start another ends the body, a partial magic is an error,
 *     legacy zstd frames are refused; zlib header or raw deflate told apart by RFC
 *     1950's check; a zstd window over 8 MiB refused; an empty body is empty. Where
 *     a library runs out of OUT_LIMIT room, nothing more; and with zstd, only where
 *     both accept (see the comment in LLVMFuzzerTestOneInput);
 * and for the body compressed with the selected codings (round trip): decoding it
 * in random pieces gives the body back, complete, all of it consumed.
 *
 * A decode stops at OUT_LIMIT bytes of output (bombs are cheap to write); a run
 * that hits it is compared only as far as it went.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <brotli/decode.h>
#include <brotli/encode.h>
#include <zlib.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_getFrameHeader(): the window a frame asks for */
#include <zstd.h>
#include <zstd_errors.h>

#include "decode.h"
#include "err.h"
#include "fuzz.h"

#define OUT_LIMIT (1u << 20) /* output a decode stops at */
#define CANARY 8

static const char *const encodings[8] = {
    "gzip", "deflate", "br", "zstd", "gzip, br", "br, zstd", "deflate, gzip, zstd", "zstd, gzip",
};

/* ---- growable output ---- */

struct out {
    uint8_t *p;
    size_t len;
};

static void out_put(struct out *o, const uint8_t *p, size_t n)
{
    uint8_t *np;

    if (n == 0)
        return;
    np = realloc(o->p, o->len + n);
    FUZZ_CHECK(np != NULL, "out of memory");
    o->p = np;
    memcpy(o->p + o->len, p, n);
    o->len += n;
}

/* ---- our decoder, driven as the broker drives it ---- */

struct run {
    int rc;          /* CONTENT_DECODER_END, 0 (finish() said complete) or an error */
    bool capped;     /* stopped at OUT_LIMIT */
    size_t consumed; /* input used in all */
    struct out out;
    char error[160];
};

/* Whole: one piece and ample room. Otherwise pieces and room from rng. */
static void run_decoder(const char *encoding, const uint8_t *in, size_t len, struct fuzz_rng *rng,
                        struct run *res)
{
    struct content_decoder *d;
    size_t pos = 0, arrived;

    memset(res, 0, sizeof(*res));
    FUZZ_CHECK(content_decoder_new(encoding, strlen(encoding), &d) == 0 && d != NULL, "new %s",
               encoding);
    arrived = rng == NULL ? len : fuzz_rng_below(rng, len + 1);
    for (;;) {
        size_t window = arrived - pos, cap, c = 99, p = 99;
        uint8_t *copy = fuzz_dup(in + pos, window), *out;
        int r;

        if (rng == NULL)
            cap = 65536;
        else if (fuzz_rng_below(rng, 3) == 0)
            cap = 1 + fuzz_rng_below(rng, 4);
        else
            cap = 1 + fuzz_rng_below(rng, 3 * CONTENT_DECODER_BUFFER);
        /* No room, no input taken: whatever the state, even finished or failed. */
        if (rng != NULL && fuzz_rng_below(rng, 4) == 0) {
            r = content_decoder_run(d, copy, window, &c, NULL, 0, &p);
            FUZZ_CHECK(c == 0 && p == 0 && r <= CONTENT_DECODER_END, "out_cap 0: %d, %zu, %zu", r,
                       c, p);
        }
        /* A canary after the room given: ASan does not see writes into it, we do. */
        out = fuzz_malloc(cap + CANARY);
        memset(out + cap, 0xa5, CANARY);
        r = content_decoder_run(d, copy, window, &c, out, cap, &p);
        FUZZ_CHECK(p <= cap, "produced %zu with room for %zu", p, cap);
        for (size_t i = 0; i < CANARY; i++)
            FUZZ_CHECK(out[cap + i] == 0xa5, "canary");
        FUZZ_CHECK(c <= window, "consumed %zu of %zu", c, window);
        FUZZ_CHECK(content_decoder_memory(d) <= CONTENT_DECODER_MAX_MEMORY, "memory %zu",
                   content_decoder_memory(d));
        out_put(&res->out, out, p);
        free(out);
        free(copy);
        pos += c;
        res->rc = r;
        if (r != 0)
            break;
        if (res->out.len >= OUT_LIMIT) {
            res->capped = true;
            break;
        }
        if (p == cap)
            continue;
        FUZZ_CHECK(c == window, "0 with room left but %zu of %zu consumed", c, window);
        if (arrived == len) {
            res->rc = content_decoder_finish(d);
            break;
        }
        arrived = rng == NULL ? len : arrived + 1 + fuzz_rng_below(rng, len - arrived);
    }
    res->consumed = pos;
    snprintf(res->error, sizeof(res->error), "%s", content_decoder_error(d));
    FUZZ_CHECK((res->rc < 0) == (res->error[0] != '\0'), "error text \"%s\" with %d", res->error,
               res->rc);
    if (res->rc == CONTENT_DECODER_END && !res->capped) {
        size_t c, p;
        uint8_t b;

        FUZZ_CHECK(content_decoder_run(d, in, len, &c, &b, 1, &p) == CONTENT_DECODER_END &&
                       c == 0 && p == 0,
                   "END again, taking nothing");
        FUZZ_CHECK(content_decoder_finish(d) == 0, "finish after END");
    }
    content_decoder_free(d);
}

static bool complete(const struct run *r)
{
    return r->rc == 0 || r->rc == CONTENT_DECODER_END;
}

static void run_free(struct run *r)
{
    free(r->out.p);
}

static void dump_runs(const struct run *a, const struct run *b)
{
    fprintf(stderr, "a: rc %d consumed %zu out %zu capped %d \"%s\"\n", a->rc, a->consumed,
            a->out.len, a->capped, a->error);
    fprintf(stderr, "b: rc %d consumed %zu out %zu capped %d \"%s\"\n", b->rc, b->consumed,
            b->out.len, b->capped, b->error);
}

/* The same outcome, as far as both went. With stacked codings, which layer meets its
 * corruption first depends on how far each ran ahead into its buffer, and brotli's
 * decoder names one fault differently on its fast and its careful path (which it takes
 * depends on how much input it has): then any error matches any error. */
static void check_same(const struct run *a, const struct run *b, bool loose)
{
    size_t n = a->out.len < b->out.len ? a->out.len : b->out.len;

    if (n > 0 && memcmp(a->out.p, b->out.p, n) != 0) {
        dump_runs(a, b);
        FUZZ_CHECK(false, "outputs differ within %zu bytes", n);
    }
    if (a->capped || b->capped)
        return;
    if (loose && a->rc < 0 && b->rc < 0)
        return;
    if (a->rc != b->rc || (a->rc < 0 && strcmp(a->error, b->error) != 0)) {
        dump_runs(a, b);
        FUZZ_CHECK(false, "outcomes differ");
    }
    if (complete(a)) {
        FUZZ_CHECK(a->out.len == b->out.len, "lengths differ: %zu, %zu", a->out.len, b->out.len);
        FUZZ_CHECK(a->consumed == b->consumed, "consumed %zu, %zu", a->consumed, b->consumed);
    }
}

/* ---- references: the libraries given everything at once ---- */

/* REF_LIB_BAD: zstd's library refused (see the comment in LLVMFuzzerTestOneInput). */
enum ref_status { REF_OK, REF_BAD, REF_LIB_BAD, REF_SKIP };

struct ref {
    enum ref_status st;
    size_t consumed; /* where the body ended */
    struct out out;
};

/* One zlib stream (window_bits as inflateInit2's) from in: Z_STREAM_END or bad. */
static enum ref_status ref_inflate_one(int window_bits, const uint8_t *in, size_t len,
                                       size_t *used, struct out *o)
{
    z_stream z;
    uint8_t *buf = fuzz_malloc(OUT_LIMIT);
    int zr;

    memset(&z, 0, sizeof(z));
    FUZZ_CHECK(inflateInit2(&z, window_bits) == Z_OK, "inflateInit2");
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = buf;
    z.avail_out = OUT_LIMIT;
    zr = inflate(&z, Z_FINISH);
    *used = len - z.avail_in;
    out_put(o, buf, OUT_LIMIT - z.avail_out);
    inflateEnd(&z);
    free(buf);
    if (zr == Z_STREAM_END)
        return REF_OK;
    /* Out of room with input left: too big to judge. */
    if (zr == Z_BUF_ERROR && z.avail_out == 0)
        return REF_SKIP;
    return REF_BAD;
}

static void ref_gzip(const uint8_t *in, size_t len, struct ref *ref)
{
    size_t pos = 0, used;
    bool first = true;

    for (;;) {
        /* RFC 1952: members one after another; ours: a first byte other than 0x1f
         * after a member ends the body, 0x1f then not 0x8b (or nothing) is an error. */
        if (pos == len) {
            ref->st = REF_OK;
            break;
        }
        if (!first && in[pos] != 0x1f) {
            ref->st = REF_OK;
            break;
        }
        if (len - pos < 2 || in[pos + 1] != 0x8b || in[pos] != 0x1f) {
            ref->st = REF_BAD;
            break;
        }
        ref->st = ref_inflate_one(16 + MAX_WBITS, in + pos, len - pos, &used, &ref->out);
        if (ref->st != REF_OK || ref->out.len >= OUT_LIMIT) {
            ref->st = ref->st == REF_OK ? REF_SKIP : ref->st;
            break;
        }
        pos += used;
        first = false;
    }
    ref->consumed = pos;
}

static void ref_deflate(const uint8_t *in, size_t len, struct ref *ref)
{
    bool zlib;

    if (len == 0) {
        ref->st = REF_OK;
        return;
    }
    if (len < 2) {
        ref->st = REF_BAD;
        return;
    }
    /* RFC 1950 2.2: CM 8, CINFO <= 7, FCHECK. */
    zlib = (in[0] & 0x0f) == 8 && (in[0] >> 4) <= 7 && ((unsigned)in[0] << 8 | in[1]) % 31 == 0;
    ref->st = ref_inflate_one(zlib ? MAX_WBITS : -MAX_WBITS, in, len, &ref->consumed, &ref->out);
}

static void ref_br(const uint8_t *in, size_t len, struct ref *ref)
{
    BrotliDecoderState *s = BrotliDecoderCreateInstance(NULL, NULL, NULL);
    size_t avail_in = len, avail_out = OUT_LIMIT;
    const uint8_t *next_in = in;
    uint8_t *buf = fuzz_malloc(OUT_LIMIT), *next_out = buf;
    BrotliDecoderResult r;

    FUZZ_CHECK(s != NULL, "brotli instance");
    r = BrotliDecoderDecompressStream(s, &avail_in, &next_in, &avail_out, &next_out, NULL);
    out_put(&ref->out, buf, OUT_LIMIT - avail_out);
    ref->consumed = len - avail_in;
    if (len == 0 || r == BROTLI_DECODER_RESULT_SUCCESS)
        ref->st = REF_OK;
    else if (r == BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT)
        ref->st = REF_SKIP;
    else
        ref->st = REF_BAD; /* corrupt, cut short, or a large window (refused by default) */
    /* The one-shot API agrees on the output. */
    if (ref->st == REF_OK && len > 0) {
        size_t n = OUT_LIMIT;

        FUZZ_CHECK(BrotliDecoderDecompress(ref->consumed, in, &n, buf) ==
                           BROTLI_DECODER_RESULT_SUCCESS &&
                       n == ref->out.len && (n == 0 || memcmp(buf, ref->out.p, n) == 0),
                   "BrotliDecoderDecompress disagrees with the stream API");
    }
    free(buf);
    BrotliDecoderDestroyInstance(s);
}

static void ref_zstd(const uint8_t *in, size_t len, struct ref *ref, bool *window_too_large)
{
    static const uint8_t frame[4] = {0x28, 0xb5, 0x2f, 0xfd};
    size_t pos = 0, n;
    uint8_t *buf;
    bool first = true;

    *window_too_large = false;
    /* RFC 8878 3.1: frames one after another, each a zstd frame or a skippable one.
     * Ours: legacy frames refused; after a frame, a byte that cannot start one ends the
     * body, a partial magic is an error. */
    for (;;) {
        bool is_frame, is_skip;
        size_t fsize;
        ZSTD_frameHeader h;

        if (pos == len)
            break;
        is_frame = in[pos] == frame[0];
        is_skip = (in[pos] & 0xf0) == 0x50;
        if (!is_frame && !is_skip) {
            if (first) {
                ref->st = REF_BAD;
                return;
            }
            break;
        }
        if (len - pos < 4 || memcmp(in + pos + 1, is_frame ? frame + 1 : (const uint8_t *)"\x2a\x4d\x18", 3) != 0) {
            ref->st = REF_BAD;
            return;
        }
        if (is_frame && ZSTD_getFrameHeader(&h, in + pos, len - pos) == 0 &&
            h.windowSize > ((uint64_t)1 << CONTENT_DECODER_ZSTD_WINDOW_LOG_MAX))
            *window_too_large = true;
        fsize = ZSTD_findFrameCompressedSize(in + pos, len - pos);
        if (ZSTD_isError(fsize)) {
            ref->st = REF_LIB_BAD; /* cut short or corrupt */
            return;
        }
        pos += fsize;
        first = false;
    }
    ref->consumed = pos;
    buf = fuzz_malloc(OUT_LIMIT);
    n = ZSTD_decompress(buf, OUT_LIMIT, in, pos);
    if (!ZSTD_isError(n)) {
        ref->st = REF_OK;
        out_put(&ref->out, buf, n);
    } else if (ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall) {
        ref->st = REF_SKIP;
    } else {
        ref->st = REF_LIB_BAD;
    }
    free(buf);
}

/* The reference for one coding (named by name[0..n)). */
static void ref_one(const char *name, size_t n, const uint8_t *in, size_t len, struct ref *ref,
                    bool *too_large)
{
    if (n == 4 && memcmp(name, "gzip", 4) == 0)
        ref_gzip(in, len, ref);
    else if (n == 7 && memcmp(name, "deflate", 7) == 0)
        ref_deflate(in, len, ref);
    else if (n == 2 && memcmp(name, "br", 2) == 0)
        ref_br(in, len, ref);
    else
        ref_zstd(in, len, ref, too_large);
}

/* The references chained down a stack: the outermost decodes the body and says where
 * it ends; each inner one must use all that the one before made. */
static void ref_stack(const char *encoding, const uint8_t *in, size_t len, struct ref *ref,
                      bool *too_large)
{
    const char *names[CONTENT_DECODER_MAX_LAYERS];
    size_t lens[CONTENT_DECODER_MAX_LAYERS], n = 0;
    struct out cur = {fuzz_dup(in, len), len};

    for (const char *s = encoding; *s != '\0' && n < CONTENT_DECODER_MAX_LAYERS;) {
        names[n] = s;
        lens[n] = strcspn(s, ",");
        s += lens[n++];
        s += strspn(s, ", ");
    }
    for (size_t i = n; i-- > 0;) {
        struct ref one;
        size_t had = cur.len;

        memset(&one, 0, sizeof(one));
        ref_one(names[i], lens[i], cur.p, cur.len, &one, too_large);
        free(cur.p);
        cur = one.out;
        if (one.st == REF_OK && i + 1 < n && one.consumed != had)
            one.st = REF_BAD; /* bytes after the end of an inner stream */
        if (one.st != REF_OK) {
            ref->st = one.st;
            free(cur.p);
            return;
        }
        if (i + 1 == n)
            ref->consumed = one.consumed;
    }
    ref->st = REF_OK;
    ref->out = cur;
}

static void check_against(const struct run *ours, const struct ref *ref, const char *what)
{
    if (ref->st == REF_SKIP || ours->capped)
        return;
    if (ref->st == REF_BAD) {
        if (complete(ours)) {
            dump_runs(ours, ours);
            FUZZ_CHECK(false, "%s: the library refuses what we accept", what);
        }
        return;
    }
    if (!complete(ours)) {
        dump_runs(ours, ours);
        FUZZ_CHECK(false, "%s: we refuse what the library accepts", what);
    }
    FUZZ_CHECK(ours->out.len == ref->out.len, "%s: %zu bytes out, the library %zu", what,
               ours->out.len, ref->out.len);
    FUZZ_CHECK(ref->out.len == 0 || memcmp(ours->out.p, ref->out.p, ref->out.len) == 0,
               "%s: output differs from the library's", what);
    FUZZ_CHECK(ours->consumed == ref->consumed, "%s: body ends at %zu, the library says %zu",
               what, ours->consumed, ref->consumed);
}

/* ---- compressors for the round trip ---- */

static void enc_zlib(struct out *o, const uint8_t *in, size_t len, int window_bits, int level)
{
    z_stream z;
    size_t cap;
    uint8_t *buf;

    memset(&z, 0, sizeof(z));
    FUZZ_CHECK(deflateInit2(&z, level, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) == Z_OK,
               "deflateInit2");
    cap = deflateBound(&z, len) + 32;
    buf = fuzz_malloc(cap);
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = buf;
    z.avail_out = (uInt)cap;
    FUZZ_CHECK(deflate(&z, Z_FINISH) == Z_STREAM_END, "deflate");
    out_put(o, buf, z.total_out);
    deflateEnd(&z);
    free(buf);
}

static void enc_br(struct out *o, const uint8_t *in, size_t len, int quality, int lgwin)
{
    size_t n = BrotliEncoderMaxCompressedSize(len);
    uint8_t *buf;

    n = n == 0 ? len + 64 : n;
    buf = fuzz_malloc(n);
    FUZZ_CHECK(BrotliEncoderCompress(quality, lgwin, BROTLI_MODE_GENERIC, len, in, &n, buf),
               "BrotliEncoderCompress");
    out_put(o, buf, n);
    free(buf);
}

static void enc_zstd(struct out *o, const uint8_t *in, size_t len, int level)
{
    size_t cap = ZSTD_compressBound(len), n;
    uint8_t *buf = fuzz_malloc(cap);

    n = ZSTD_compress(buf, cap, in, len, level);
    FUZZ_CHECK(!ZSTD_isError(n), "ZSTD_compress");
    out_put(o, buf, n);
    free(buf);
}

/* Compresses in with encoding's codings, in the order listed; choice varies levels. */
static struct out compress_as(const char *encoding, const uint8_t *in, size_t len, unsigned choice)
{
    struct out cur = {fuzz_dup(in, len), len};
    const char *s = encoding;

    while (*s != '\0') {
        size_t n = strcspn(s, ",");
        struct out next = {NULL, 0};

        if (n == 4 && memcmp(s, "gzip", 4) == 0)
            enc_zlib(&next, cur.p, cur.len, 16 + MAX_WBITS, 1 + (int)(choice % 9));
        else if (n == 7 && memcmp(s, "deflate", 7) == 0)
            enc_zlib(&next, cur.p, cur.len, choice & 1 ? -MAX_WBITS : MAX_WBITS, (int)(choice % 10));
        else if (n == 2 && memcmp(s, "br", 2) == 0)
            enc_br(&next, cur.p, cur.len, (int)(choice % 12), 10 + (int)(choice % 15));
        else
            enc_zstd(&next, cur.p, cur.len, 1 + (int)(choice % 19));
        free(cur.p);
        cur = next;
        s += n;
        while (*s == ',' || *s == ' ')
            s++;
    }
    return cur;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *encoding;
    const uint8_t *body;
    size_t len;
    unsigned sel;
    struct fuzz_rng rng;
    struct run whole, pieces;
    struct out enc;

    if (size < 2)
        return 0;
    sel = data[0];
    encoding = encodings[sel & 7];
    body = data + 2;
    len = size - 2;
    fuzz_rng_seed(&rng, data, size);

    run_decoder(encoding, body, len, NULL, &whole);
    run_decoder(encoding, body, len, &rng, &pieces);
    check_same(&whole, &pieces, (sel & 7) >= 4 || (sel & 7) == 2);

    {
        struct ref ref;
        bool too_large = false;

        memset(&ref, 0, sizeof(ref));
        ref_stack(encoding, body, len, &ref, &too_large);
        /* zstd 1.5.4's streaming decoder (which ours always is: it never sees a frame
         * whole in one call, so never takes the library's one-pass shortcut) and
         * ZSTD_decompress disagree on malformed frames, both ways: streaming ends a
         * frame on an empty last block without checking the declared content size
         * (one-shot: "corruption"), and refuses an RLE block over the 128 KiB block
         * maximum (RFC 8878 3.1.1.2.3) that one-shot writes out. Neither matters here
         * (such a frame decodes to what its blocks say, or not at all), so with zstd
         * the outputs are compared only where both accept. */
        if (ref.st == REF_LIB_BAD ||
            (ref.st == REF_OK && strstr(encoding, "zstd") != NULL && !complete(&whole)))
            ref.st = REF_SKIP;
        if (too_large) {
            /* A refusal of the window must come before any trouble in a later frame;
             * when the frame is also bad, either refusal will do. */
            FUZZ_CHECK(whole.rc < 0 || whole.capped, "a window over 8 MiB accepted");
        } else {
            check_against(&whole, &ref, encoding);
        }
        free(ref.out.p);
    }
    run_free(&whole);
    run_free(&pieces);

    /* Round trip: the body compressed with the same codings comes back whole. */
    enc = compress_as(encoding, body, len, sel >> 3 ^ data[1]);
    run_decoder(encoding, enc.p, enc.len, &rng, &pieces);
    if (!pieces.capped && (!complete(&pieces) || pieces.consumed != enc.len || pieces.out.len != len ||
                           (len > 0 && memcmp(pieces.out.p, body, len) != 0))) {
        dump_runs(&pieces, &pieces);
        FUZZ_CHECK(false, "round trip through %s fails", encoding);
    }
    run_free(&pieces);
    free(enc.p);
    return 0;
}
