/*
 * Unit tests for src/http/decode.c: the Content-Encoding decoder.
 *
 * Bodies are compressed here with the libraries' own one-shot encoders (zlib's
 * deflate, BrotliEncoderCompress, ZSTD_compress) or written out byte by byte where
 * an encoder would not produce them (a zstd frame asking for a 128 MiB window, a
 * brotli header announcing a 16 MiB block). Each is decoded the way the broker
 * will: input arriving in pieces, output pulled in pieces, unconsumed input passed
 * again, finish() at the end; and every way of cutting gives the same result.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <brotli/encode.h>
#include <zlib.h>
#include <zstd.h>

#include "decode.h"
#include "err.h"

#define MIB ((size_t)1 << 20)
#define CANARY 16 /* guard bytes after every output buffer */

/* ---- data and compressors ---- */

struct bytes {
    uint8_t *p;
    size_t len, cap;
};

static void bytes_free(struct bytes *b)
{
    free(b->p);
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
}

static void bytes_append(struct bytes *b, const void *p, size_t len)
{
    if (b->p == NULL || b->len + len + 1 > b->cap) {
        b->cap = b->len + len + 1 > 2 * b->cap ? b->len + len + 1 : 2 * b->cap;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    if (len > 0)
        memcpy(b->p + b->len, p, len);
    b->len += len;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static struct bytes random_data(size_t len, uint64_t seed)
{
    struct bytes b = {malloc(len + 1), len, len + 1};

    assert_non_null(b.p);
    for (size_t i = 0; i < len; i++)
        b.p[i] = (uint8_t)rng_next(&seed);
    return b;
}

/* Words picked at random: compresses the way JSON and text do. */
static struct bytes text_data(size_t len, uint64_t seed)
{
    static const char *const words[] = {"the ", "incident ", "\"status\": ", "alert ", "{\"id\": ",
                                        "resolved", ", ", "channel ", "key ", "}\n", "on-call "};
    struct bytes b = {malloc(len + 1), 0, len + 1};

    assert_non_null(b.p);
    while (b.len < len) {
        const char *w = words[rng_next(&seed) % (sizeof(words) / sizeof(words[0]))];
        size_t n = strlen(w) < len - b.len ? strlen(w) : len - b.len;

        memcpy(b.p + b.len, w, n);
        b.len += n;
    }
    return b;
}

enum codec { C_GZIP, C_ZLIB, C_RAW, C_BR, C_ZSTD };

/* windowBits for deflateInit2: gzip wrapper, zlib wrapper, raw. */
static struct bytes zlib_compress(const struct bytes *in, int window_bits)
{
    z_stream z;
    struct bytes out = {malloc(deflateBound(NULL, in->len) + 64), 0, 0};

    assert_non_null(out.p);
    memset(&z, 0, sizeof(z));
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = in->p;
    z.avail_in = (uInt)in->len;
    z.next_out = out.p;
    z.avail_out = (uInt)(deflateBound(&z, in->len) + 64);
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    out.len = z.total_out;
    deflateEnd(&z);
    return out;
}

static struct bytes br_compress(const struct bytes *in, int quality, int lgwin)
{
    size_t cap = BrotliEncoderMaxCompressedSize(in->len);
    struct bytes out;

    cap = cap == 0 ? in->len + 1024 : cap;
    out.p = malloc(cap);
    out.len = cap;
    out.cap = 0;
    assert_non_null(out.p);
    assert_true(BrotliEncoderCompress(quality, lgwin, BROTLI_MODE_GENERIC, in->len, in->p, &out.len,
                                      out.p));
    return out;
}

static struct bytes zstd_compress(const struct bytes *in, bool checksum)
{
    size_t cap = ZSTD_compressBound(in->len);
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    struct bytes out = {malloc(cap), 0, 0};

    assert_non_null(cctx);
    assert_non_null(out.p);
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 3)));
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, checksum)));
    out.len = ZSTD_compress2(cctx, out.p, cap, in->p, in->len);
    assert_false(ZSTD_isError(out.len));
    ZSTD_freeCCtx(cctx);
    return out;
}

static struct bytes compress_with(enum codec c, const struct bytes *in)
{
    switch (c) {
    case C_GZIP:
        return zlib_compress(in, 16 + MAX_WBITS);
    case C_ZLIB:
        return zlib_compress(in, MAX_WBITS);
    case C_RAW:
        return zlib_compress(in, -MAX_WBITS);
    case C_BR:
        return br_compress(in, 5, 22);
    default:
        return zstd_compress(in, true);
    }
}

static const char *const codec_header[] = {"gzip", "deflate", "deflate", "br", "zstd"};

/* ---- the driver ---- */

/* How input arrives and how much output is asked for each call. */
struct pattern {
    size_t in_step;  /* bytes arriving at a time; 0: all at once */
    size_t out_cap;  /* output asked per call; 0: random from 1 to 3 * CONTENT_DECODER_BUFFER */
    uint64_t random; /* non-zero: in_step ignored, random pieces from this seed */
};

struct result {
    int rc;          /* CONTENT_DECODER_END, 0 from finish(), or an error */
    size_t consumed; /* input used in all */
    struct bytes out;
    char error[160];
    size_t calls;
    size_t memory;
};

static size_t pick(uint64_t *s, size_t max)
{
    /* Small pieces most of the time, sometimes large ones. */
    switch (rng_next(s) % 4) {
    case 0:
        return 1 + rng_next(s) % 3;
    case 1:
        return 1 + rng_next(s) % 64;
    default:
        return 1 + rng_next(s) % max;
    }
}

/*
 * Decodes in[0..len) under encoding as the broker does: the decoder is always
 * handed every byte that has arrived and not been consumed (a small window in a heap
 * block of exactly its size, so that ASan sees any read past it), and writes into
 * room followed by a canary. New input arrives only when the decoder has taken all
 * it had and left room in the output; finish() once all input has arrived and been
 * taken.
 */
static void decode(const char *encoding, const uint8_t *in, size_t len, const struct pattern *pat,
                   struct result *res)
{
    struct content_decoder *d;
    uint64_t seed = pat->random;
    size_t pos = 0, arrived, max_cap = pat->out_cap != 0 ? pat->out_cap : 3 * CONTENT_DECODER_BUFFER;
    uint8_t *out = malloc(max_cap + CANARY);

    memset(res, 0, sizeof(*res));
    assert_non_null(out);
    assert_int_equal(content_decoder_new(encoding, strlen(encoding), &d), 0);
    assert_non_null(d);
    arrived = pat->random != 0 ? pick(&seed, 4096) : pat->in_step == 0 ? len : pat->in_step;
    if (arrived > len)
        arrived = len;
    for (;;) {
        size_t window = arrived - pos, cap, c = 0, p = 0;
        /* Large windows are passed in place: copying them for every call, byte by byte
         * of output, is what would take the time under ASan. */
        bool copied = window <= 4096;
        uint8_t *copy = copied ? malloc(window + 1) : (uint8_t *)in + pos;

        cap = pat->out_cap != 0 ? pat->out_cap : pick(&seed, max_cap);
        assert_non_null(copy);
        if (copied && window > 0)
            memcpy(copy, in + pos, window);
        memset(out + cap, 0xa5, CANARY);
        res->rc = content_decoder_run(d, copy, window, &c, out, cap, &p);
        res->calls++;
        assert_true(c <= window);
        assert_true(p <= cap);
        for (size_t i = 0; i < CANARY; i++)
            assert_int_equal(out[cap + i], 0xa5);
        bytes_append(&res->out, out, p);
        if (copied)
            free(copy);
        pos += c;
        if (res->rc != 0)
            break;
        if (p == cap)
            continue; /* output full: more may come without input */
        /* The decoder wants input: it must have taken all it had. */
        assert_int_equal(c, window);
        if (arrived == len) {
            res->rc = content_decoder_finish(d);
            break;
        }
        arrived += pat->random != 0 ? pick(&seed, 4096) : pat->in_step == 0 ? len : pat->in_step;
        if (arrived > len)
            arrived = len;
    }
    free(out);
    res->consumed = pos;
    snprintf(res->error, sizeof(res->error), "%s", content_decoder_error(d));
    if (res->rc == CONTENT_DECODER_END) {
        size_t c = 99, p = 99;
        uint8_t b;

        /* Finished for good: nothing more taken or made, and finish() agrees. */
        assert_int_equal(content_decoder_run(d, in, len, &c, &b, 1, &p), CONTENT_DECODER_END);
        assert_int_equal(c, 0);
        assert_int_equal(p, 0);
        assert_int_equal(content_decoder_finish(d), 0);
    } else if (res->rc < 0) {
        size_t c, p;
        uint8_t b;

        /* An error sticks. */
        assert_int_equal(content_decoder_run(d, in, len, &c, &b, 1, &p), res->rc);
        assert_int_equal(content_decoder_finish(d), res->rc);
    }
    res->memory = content_decoder_memory(d);
    content_decoder_free(d);
}

static const struct pattern patterns[] = {
    {0, 1 << 20, 0},  /* everything at once, room for everything */
    {1, 1 << 20, 0},  /* input a byte at a time */
    {0, 1, 0},        /* output a byte at a time */
    {7, 13, 0},       /* small odd pieces both ways */
    {0, 0, 11},       /* random pieces both ways */
    {0, 0, 12345},
};

/* Large bodies a byte at a time would take minutes under ASan: random pieces for them. */
static const struct pattern large_patterns[] = {
    {0, CONTENT_DECODER_BUFFER, 0},
    {0, 0, 99},
    {3, 4093, 0},
};

/* Decodes in every pattern, expecting want and a complete body that used all of in. */
static void expect_decodes(const char *encoding, const struct bytes *in, const struct bytes *want)
{
    const struct pattern *pats = want->len > 256 * 1024 ? large_patterns : patterns;
    size_t n = want->len > 256 * 1024 ? sizeof(large_patterns) / sizeof(large_patterns[0])
                                      : sizeof(patterns) / sizeof(patterns[0]);

    for (size_t k = 0; k < n; k++) {
        struct result res;

        decode(encoding, in->p, in->len, &pats[k], &res);
        if (res.rc < 0)
            fail_msg("%s, pattern %zu: %d %s", encoding, k, res.rc, res.error);
        assert_true(res.rc == 0 || res.rc == CONTENT_DECODER_END);
        assert_int_equal(res.consumed, in->len);
        assert_int_equal(res.out.len, want->len);
        if (want->len > 0)
            assert_memory_equal(res.out.p, want->p, want->len);
        bytes_free(&res.out);
    }
}

/* Decodes in every pattern, expecting the error code and a message starting with text. */
static void expect_error(const char *encoding, const struct bytes *in, int rc, const char *text)
{
    for (size_t k = 0; k < sizeof(patterns) / sizeof(patterns[0]); k++) {
        struct result res;

        decode(encoding, in->p, in->len, &patterns[k], &res);
        if (res.rc != rc || strncmp(res.error, text, strlen(text)) != 0)
            fail_msg("%s, pattern %zu: got %d \"%s\", want %d \"%s\"", encoding, k, res.rc,
                     res.error, rc, text);
        bytes_free(&res.out);
    }
}

static struct bytes from_string(const char *s, size_t len)
{
    struct bytes b = {NULL, 0, 0};

    bytes_append(&b, s, len);
    return b;
}

/* ---- round trips ---- */

static void round_trip_sizes(enum codec c)
{
    static const size_t sizes[] = {0, 1, 64 * 1024, 3 * MIB};

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        for (int text = 0; text < 2; text++) {
            struct bytes data = text ? text_data(sizes[i], i + 1) : random_data(sizes[i], i + 7);
            struct bytes enc = compress_with(c, &data);

            expect_decodes(codec_header[c], &enc, &data);
            bytes_free(&enc);
            bytes_free(&data);
        }
    }
}

static void test_decode_round_trips_gzip_in_every_split(void **state)
{
    round_trip_sizes(C_GZIP);
}

static void test_decode_round_trips_zlib_deflate_in_every_split(void **state)
{
    round_trip_sizes(C_ZLIB);
}

static void test_decode_round_trips_raw_deflate_in_every_split(void **state)
{
    round_trip_sizes(C_RAW);
}

static void test_decode_round_trips_br_in_every_split(void **state)
{
    round_trip_sizes(C_BR);
}

static void test_decode_round_trips_zstd_in_every_split(void **state)
{
    round_trip_sizes(C_ZSTD);
}

static void test_decode_accepts_coding_names_in_any_case_and_x_gzip(void **state)
{
    struct bytes data = text_data(5000, 3), gz = compress_with(C_GZIP, &data);

    expect_decodes("GZip", &gz, &data);
    expect_decodes("X-GZIP", &gz, &data);
    expect_decodes(" identity , x-gzip ,, ", &gz, &data);
    bytes_free(&gz);
    bytes_free(&data);
}

static void test_decode_reads_an_empty_body_as_empty_in_every_coding(void **state)
{
    static const char *const codings[] = {"gzip", "deflate", "br", "zstd", "gzip, br"};
    struct bytes none = {NULL, 0, 0};

    for (size_t i = 0; i < sizeof(codings) / sizeof(codings[0]); i++)
        expect_decodes(codings[i], &none, &none);
}

/* ---- several layers, members and frames ---- */

static void test_decode_undoes_stacked_gzip_then_br(void **state)
{
    struct bytes data = text_data(200 * 1024, 5), gz = compress_with(C_GZIP, &data),
                 both = br_compress(&gz, 5, 22);
    struct bytes rdata = random_data(100 * 1024, 5), rgz = compress_with(C_GZIP, &rdata),
                 rboth = br_compress(&rgz, 5, 22);

    /* Applied gzip first, then br: br is undone first. */
    expect_decodes("gzip, br", &both, &data);
    expect_decodes("gzip,br", &rboth, &rdata);
    /* The same list over two field lines, joined by the caller. */
    expect_decodes("gzip, identity, br", &both, &data);
    bytes_free(&data);
    bytes_free(&gz);
    bytes_free(&both);
    bytes_free(&rdata);
    bytes_free(&rgz);
    bytes_free(&rboth);
}

static void test_decode_undoes_three_layers(void **state)
{
    struct bytes data = text_data(300 * 1024, 9), a = compress_with(C_ZLIB, &data),
                 b = compress_with(C_ZSTD, &a), c = compress_with(C_GZIP, &b);

    expect_decodes("deflate, zstd, gzip", &c, &data);
    bytes_free(&data);
    bytes_free(&a);
    bytes_free(&b);
    bytes_free(&c);
}

static void test_decode_refuses_a_fourth_layer_and_unknown_codings(void **state)
{
    static const char *const refused[] = {
        "gzip, gzip, gzip, gzip", "compress", "x-compress", "gzip, foo", "gzip;q=1", "\"gzip\"",
        "gzip br",                "gzip/1",   "pack200-gzip", "exi",     "gzip\r\n"};
    struct content_decoder *d = (struct content_decoder *)&d;

    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        assert_int_equal(content_decoder_new(refused[i], strlen(refused[i]), &d), ERR_UNSUPPORTED);
        assert_null(d);
    }
    /* A NUL inside the value is not a token byte. */
    assert_int_equal(content_decoder_new("gzip\0", 5, &d), ERR_UNSUPPORTED);
    assert_null(d);
    assert_int_equal(content_decoder_new("gzip, gzip, identity, gzip", 26, &d), 0);
    assert_non_null(d);
    content_decoder_free(d);
}

static void test_decode_gives_no_decoder_for_identity_or_nothing(void **state)
{
    static const char *const none[] = {"", "identity", "IDENTITY", " , identity ,, ", "\t"};
    struct content_decoder *d = (struct content_decoder *)&d;

    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        assert_int_equal(content_decoder_new(none[i], strlen(none[i]), &d), 0);
        assert_null(d);
    }
    content_decoder_free(NULL);
}

static void test_decode_reads_concatenated_gzip_members(void **state)
{
    struct bytes a = text_data(70000, 1), b = random_data(3000, 2), empty = {NULL, 0, 0};
    struct bytes ga = compress_with(C_GZIP, &a), gb = compress_with(C_GZIP, &b),
                 ge = compress_with(C_GZIP, &empty), all = {NULL, 0, 0}, want = {NULL, 0, 0};

    bytes_append(&all, ga.p, ga.len);
    bytes_append(&all, ge.p, ge.len);
    bytes_append(&all, gb.p, gb.len);
    bytes_append(&all, ga.p, ga.len);
    bytes_append(&want, a.p, a.len);
    bytes_append(&want, b.p, b.len);
    bytes_append(&want, a.p, a.len);
    expect_decodes("gzip", &all, &want);
    bytes_free(&a);
    bytes_free(&b);
    bytes_free(&ga);
    bytes_free(&gb);
    bytes_free(&ge);
    bytes_free(&all);
    bytes_free(&want);
}

static void test_decode_reads_concatenated_and_skippable_zstd_frames(void **state)
{
    static const uint8_t skippable[] = {0x5e, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 'x', 'y', 'z'};
    struct bytes a = text_data(40000, 4), b = random_data(999, 4);
    struct bytes za = compress_with(C_ZSTD, &a), zb = zstd_compress(&b, false), all = {NULL, 0, 0},
                 want = {NULL, 0, 0};

    bytes_append(&all, skippable, sizeof(skippable));
    bytes_append(&all, za.p, za.len);
    bytes_append(&all, skippable, sizeof(skippable));
    bytes_append(&all, zb.p, zb.len);
    bytes_append(&want, a.p, a.len);
    bytes_append(&want, b.p, b.len);
    expect_decodes("zstd", &all, &want);
    bytes_free(&a);
    bytes_free(&b);
    bytes_free(&za);
    bytes_free(&zb);
    bytes_free(&all);
    bytes_free(&want);
}

/* ---- what follows the end ---- */

/* Expects END in every pattern, at the same place: the end of the compressed body. */
static void expect_end_before_trailing(const char *encoding, const struct bytes *body,
                                       const struct bytes *want, const char *trailing)
{
    struct bytes all = {NULL, 0, 0};

    bytes_append(&all, body->p, body->len);
    bytes_append(&all, trailing, strlen(trailing));
    for (size_t k = 0; k < sizeof(patterns) / sizeof(patterns[0]); k++) {
        struct result res;

        decode(encoding, all.p, all.len, &patterns[k], &res);
        if (res.rc != CONTENT_DECODER_END)
            fail_msg("%s, pattern %zu: %d %s", encoding, k, res.rc, res.error);
        assert_int_equal(res.consumed, body->len);
        assert_int_equal(res.out.len, want->len);
        assert_memory_equal(res.out.p, want->p, want->len);
        bytes_free(&res.out);
    }
    bytes_free(&all);
}

static void test_decode_ends_where_the_stream_ends_and_leaves_trailing_bytes(void **state)
{
    struct bytes data = text_data(20000, 6);

    for (enum codec c = C_GZIP; c <= C_ZSTD; c++) {
        struct bytes enc = compress_with(c, &data);

        expect_end_before_trailing(codec_header[c], &enc, &data, "GARBAGE");
        expect_end_before_trailing(codec_header[c], &enc, &data, "\x8b");
        bytes_free(&enc);
    }
    bytes_free(&data);
}

static void test_decode_refuses_a_partial_gzip_magic_after_a_member(void **state)
{
    struct bytes data = text_data(1000, 8), gz = compress_with(C_GZIP, &data), all = {NULL, 0, 0};

    bytes_append(&all, gz.p, gz.len);
    bytes_append(&all, "\x1f\x00junk", 6);
    expect_error("gzip", &all, ERR_INVALID, "gzip: data after the end of the stream");
    /* The magic alone at the very end: a member cut short. */
    all.len = gz.len + 1;
    expect_error("gzip", &all, ERR_INVALID, "gzip: truncated stream");
    bytes_free(&data);
    bytes_free(&gz);
    bytes_free(&all);
}

static void test_decode_refuses_data_after_an_inner_stream(void **state)
{
    struct bytes data = text_data(5000, 10), gz = compress_with(C_GZIP, &data), inner = {NULL, 0, 0},
                 outer;

    /* br's output is a gzip member and then bytes that are not: inside the stack, that is
     * the decoder's error (the caller only sees the outer body's end). */
    bytes_append(&inner, gz.p, gz.len);
    bytes_append(&inner, "tail", 4);
    outer = br_compress(&inner, 5, 22);
    expect_error("gzip, br", &outer, ERR_INVALID, "gzip: data after the end of the stream");
    bytes_free(&outer);

    /* Inner zstd ends, and gzip still has bytes of output after it. */
    bytes_free(&inner);
    {
        struct bytes z = compress_with(C_ZSTD, &data);

        bytes_append(&inner, z.p, z.len);
        bytes_append(&inner, "x", 1);
        outer = compress_with(C_GZIP, &inner);
        expect_error("zstd, gzip", &outer, ERR_INVALID, "zstd: data after the end of the stream");
        bytes_free(&z);
        bytes_free(&outer);
    }
    bytes_free(&data);
    bytes_free(&gz);
    bytes_free(&inner);
}

/* ---- truncated and corrupt ---- */

static void test_decode_reports_a_truncated_stream_at_finish(void **state)
{
    struct bytes data = text_data(50000, 12);

    for (enum codec c = C_GZIP; c <= C_ZSTD; c++) {
        struct bytes enc = compress_with(c, &data);
        size_t full = enc.len;
        char want[64];

        snprintf(want, sizeof(want), "%s: truncated stream", codec_header[c]);
        enc.len = full - 1;
        expect_error(codec_header[c], &enc, ERR_INVALID, want);
        enc.len = full / 2;
        expect_error(codec_header[c], &enc, ERR_INVALID, want);
        enc.len = 1;
        expect_error(codec_header[c], &enc, ERR_INVALID, want);
        enc.len = full;
        bytes_free(&enc);
    }
    {
        struct bytes gz = compress_with(C_GZIP, &data), both;

        /* The outer br complete, the gzip inside it cut: the inner layer is cut short. */
        gz.len -= 3;
        both = br_compress(&gz, 5, 22);
        expect_error("gzip, br", &both, ERR_INVALID, "gzip: truncated stream");
        bytes_free(&both);
        bytes_free(&gz);
    }
    bytes_free(&data);
}

static void test_decode_names_the_coding_and_the_fault_in_corrupt_data(void **state)
{
    static const uint8_t gzip_head[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    struct bytes data = text_data(30000, 14), b = {NULL, 0, 0}, gz = compress_with(C_GZIP, &data),
                 zl = compress_with(C_ZLIB, &data), zs = compress_with(C_ZSTD, &data);

    bytes_append(&b, gzip_head, sizeof(gzip_head));
    bytes_append(&b, "\x07", 1); /* BFINAL 1, BTYPE 11: reserved */
    expect_error("gzip", &b, ERR_INVALID, "gzip: invalid block type");
    bytes_free(&b);
    bytes_append(&b, "\x1f\x8b\x07\x00\x00\x00\x00\x00\x00\x03", 10);
    expect_error("gzip", &b, ERR_INVALID, "gzip: unknown compression method");
    bytes_free(&b);
    bytes_append(&b, "<html>", 6);
    expect_error("gzip", &b, ERR_INVALID, "gzip: not a gzip stream");
    expect_error("zstd", &b, ERR_INVALID, "zstd: not a zstd stream");
    bytes_free(&b);

    gz.p[gz.len - 8] ^= 1; /* CRC-32 */
    expect_error("gzip", &gz, ERR_INVALID, "gzip: incorrect data check");
    gz.p[gz.len - 8] ^= 1;
    gz.p[gz.len - 1] ^= 1; /* ISIZE */
    expect_error("gzip", &gz, ERR_INVALID, "gzip: incorrect length check");
    zl.p[zl.len - 1] ^= 1; /* Adler-32 */
    expect_error("deflate", &zl, ERR_INVALID, "deflate: incorrect data check");
    /* A zlib header asking for a preset dictionary (FDICT). */
    bytes_append(&b, "\x78\x20\x00\x00\x00\x01\x03\x00", 8);
    expect_error("deflate", &b, ERR_INVALID, "deflate: needs a preset dictionary");
    bytes_free(&b);
    bytes_append(&b, "\x07\x00", 2); /* raw: reserved block type */
    expect_error("deflate", &b, ERR_INVALID, "deflate: invalid block type");
    bytes_free(&b);

    zs.p[zs.len - 1] ^= 1; /* the frame's content checksum */
    expect_error("zstd", &zs, ERR_INVALID, "zstd: checksum mismatch");
    /* A legacy (v0.7) frame: refused, not handed to the legacy decoders. */
    bytes_append(&b, "\x27\xb5\x2f\xfd\x00\x00", 6);
    expect_error("zstd", &b, ERR_INVALID, "zstd: not a zstd stream");
    bytes_free(&b);
    bytes_append(&b, "\x28\xb5\x2f\xfd\xff\x00\x00\x00", 8); /* reserved bits set */
    expect_error("zstd", &b, ERR_INVALID, "zstd: ");
    bytes_free(&b);

    /* WBITS 24, ISLAST, ISLASTEMPTY, then padding bits that must be zero (RFC 7932 9.2). */
    bytes_append(&b, "\xff\xff\xff\xff\xff", 5);
    expect_error("br", &b, ERR_INVALID, "br: corrupt stream (");
    bytes_free(&b);

    bytes_free(&data);
    bytes_free(&gz);
    bytes_free(&zl);
    bytes_free(&zs);
}

/* ---- windows and memory ---- */

/* A zstd frame (RFC 8878 3.1.1) with no content size, the given Window_Descriptor and
 * one last raw block of "hello": the decoder must set up the whole window for it. */
static struct bytes zstd_frame_with_window(uint8_t window_descriptor)
{
    uint8_t f[] = {0x28, 0xb5, 0x2f, 0xfd, 0x00, window_descriptor, (5 << 3) | 1, 0, 0,
                   'h',  'e',  'l',  'l',  'o'};

    return from_string((const char *)f, sizeof(f));
}

static void test_decode_refuses_a_zstd_frame_with_a_128_mib_window(void **state)
{
    struct bytes f = zstd_frame_with_window(17 << 3); /* 2^(10 + 17) */

    expect_error("zstd", &f, ERR_TOO_LARGE, "zstd: frame requires too much memory");
    bytes_free(&f);
    f = zstd_frame_with_window(13 << 3 | 1); /* 8 MiB + 1 MiB */
    expect_error("zstd", &f, ERR_TOO_LARGE, "zstd: frame requires too much memory");
    bytes_free(&f);
}

static void test_decode_accepts_a_zstd_frame_with_an_8_mib_window_within_its_bound(void **state)
{
    struct bytes f = zstd_frame_with_window(13 << 3), want = from_string("hello", 5);
    struct result res;

    expect_decodes("zstd", &f, &want);
    decode("zstd", f.p, f.len, &patterns[0], &res);
    assert_int_equal(res.rc, 0); /* another frame might have followed: finish() said no */
    /* The window (8 MiB) is all set up, and the whole stays under the bound decode.h gives. */
    assert_true(res.memory > 8 * MIB);
    assert_true(res.memory < 8 * MIB + MIB / 2);
    bytes_free(&res.out);
    bytes_free(&f);
    bytes_free(&want);
}

/*
 * A brotli stream (RFC 7932) with a 16 MiB window whose first meta-block says it is
 * 16 MiB of stored bytes: the decoder sizes its ring buffer to 16 MiB as soon as it has
 * read these four bytes. Bits, least significant first: WBITS 1111 (24), ISLAST 0,
 * MNIBBLES 10 (six), MLEN-1 = 0xffffff, ISUNCOMPRESSED 1.
 */
static const uint8_t br_16mib_block[] = {0xcf, 0xff, 0xff, 0xff};

static void test_decode_holds_a_16_mib_brotli_window_within_its_bound(void **state)
{
    struct bytes in = from_string((const char *)br_16mib_block, 4);
    struct result res;

    bytes_append(&in, "some stored bytes", 17);
    decode("br", in.p, in.len, &patterns[0], &res);
    assert_int_equal(res.rc, ERR_INVALID); /* cut short, of course */
    assert_string_equal(res.error, "br: truncated stream");
    assert_int_equal(res.out.len, 17);
    assert_true(res.memory > 16 * MIB);
    assert_true(res.memory < 17 * MIB);
    bytes_free(&res.out);
    bytes_free(&in);
}

/*
 * A brotli stream whose window grows from 8 to 16 MiB: a stored meta-block of 8 MiB
 * (WBITS 24, ISLAST 0, MNIBBLES six, MLEN-1 = 0x7fffff, ISUNCOMPRESSED 1), then one of
 * 16 MiB. For a moment the library holds both windows: the bound decode.h gives.
 */
static void test_decode_holds_a_growing_brotli_window_within_its_bound(void **state)
{
    static const uint8_t first[] = {0xcf, 0xff, 0xff, 0xbf};
    static const uint8_t second[] = {0xfc, 0xff, 0xff, 0x0f}; /* MLEN-1 = 0xffffff */
    struct bytes in = from_string((const char *)first, sizeof(first));
    uint8_t *stored = calloc(1, 8 * MIB);
    struct content_decoder *d;
    uint8_t *out = malloc(MIB);
    size_t pos = 0, total = 0, c, p;

    assert_non_null(stored);
    assert_non_null(out);
    bytes_append(&in, stored, 8 * MIB);
    bytes_append(&in, second, sizeof(second));
    bytes_append(&in, "more", 4);
    assert_int_equal(content_decoder_new("br", 2, &d), 0);
    do {
        assert_int_equal(content_decoder_run(d, in.p + pos, in.len - pos, &c, out, MIB, &p), 0);
        pos += c;
        total += p;
    } while (p > 0);
    assert_int_equal(pos, in.len);
    assert_int_equal(total, 8 * MIB + 4);
    assert_true(content_decoder_memory(d) > 24 * MIB);
    assert_true(content_decoder_memory(d) < 25 * MIB);
    assert_int_equal(content_decoder_finish(d), ERR_INVALID);
    content_decoder_free(d);
    free(stored);
    free(out);
    bytes_free(&in);
}

static void test_decode_refuses_two_16_mib_brotli_windows_on_its_memory_cap(void **state)
{
    struct bytes in = from_string((const char *)br_16mib_block, 4);

    /* The outer stream's stored bytes are the inner stream: each wants 16 MiB. */
    bytes_append(&in, br_16mib_block, 4);
    bytes_append(&in, "some stored bytes", 17);
    expect_error("br, br", &in, ERR_TOO_LARGE, "br: decoder memory limit (32 MiB) reached");
    bytes_free(&in);
}

static void test_decode_refuses_large_window_brotli(void **state)
{
    BrotliEncoderState *enc = BrotliEncoderCreateInstance(NULL, NULL, NULL);
    struct bytes data = random_data(1000, 15);
    uint8_t out[2048];
    size_t avail_in = data.len, avail_out = sizeof(out);
    const uint8_t *next_in = data.p;
    uint8_t *next_out = out;
    struct bytes in;

    assert_non_null(enc);
    assert_true(BrotliEncoderSetParameter(enc, BROTLI_PARAM_LARGE_WINDOW, 1));
    assert_true(BrotliEncoderSetParameter(enc, BROTLI_PARAM_LGWIN, 30));
    assert_true(BrotliEncoderCompressStream(enc, BROTLI_OPERATION_FINISH, &avail_in, &next_in,
                                            &avail_out, &next_out, NULL));
    assert_true(BrotliEncoderIsFinished(enc));
    in = from_string((const char *)out, sizeof(out) - avail_out);
    expect_error("br", &in, ERR_TOO_LARGE, "br: large-window stream refused");
    BrotliEncoderDestroyInstance(enc);
    bytes_free(&in);
    bytes_free(&data);
}

/* 10 MiB of zeros, compressed to a few KiB: pulled 16 KiB at a time, the decoder never
 * hands out more than asked, takes input only as output is taken, and holds no more
 * memory than a small body costs. */
static void decode_bomb(const char *encoding, const struct bytes *enc, size_t total,
                        size_t max_memory)
{
    struct content_decoder *d;
    size_t pos = 0, out_total = 0, calls = 0, c, p;
    uint8_t *out = malloc(16 * 1024);
    int r;

    assert_non_null(out);
    assert_int_equal(content_decoder_new(encoding, strlen(encoding), &d), 0);
    do {
        r = content_decoder_run(d, enc->p + pos, enc->len - pos, &c, out, 16 * 1024, &p);
        assert_true(r == 0 || r == CONTENT_DECODER_END);
        assert_true(p <= 16 * 1024);
        /* The first 16 KiB come from the first bytes of input, not from all of it. */
        if (calls++ == 0 && enc->len > 1024)
            assert_true(c < enc->len);
        for (size_t i = 0; i < p; i++)
            assert_int_equal(out[i], 0);
        pos += c;
        out_total += p;
    } while (r == 0 && p > 0);
    if (r == 0)
        assert_int_equal(content_decoder_finish(d), 0);
    assert_int_equal(pos, enc->len);
    assert_int_equal(out_total, total);
    assert_true(calls >= total / (16 * 1024));
    if (content_decoder_memory(d) > max_memory)
        fail_msg("%s: %zu bytes held, bound %zu", encoding, content_decoder_memory(d), max_memory);
    content_decoder_free(d);
    free(out);
}

static void test_decode_pulls_a_10_mib_bomb_in_16_kib_steps_with_bounded_memory(void **state)
{
    struct bytes zeros = {calloc(1, 10 * MIB), 10 * MIB, 10 * MIB};
    struct bytes gz = compress_with(C_GZIP, &zeros), zl = compress_with(C_ZLIB, &zeros),
                 br = br_compress(&zeros, 9, 22), zs = compress_with(C_ZSTD, &zeros), both;

    assert_non_null(zeros.p);
    both = br_compress(&gz, 9, 22);
    assert_true(gz.len < 64 * 1024 && br.len < 64 * 1024 && zs.len < 64 * 1024);
    decode_bomb("gzip", &gz, zeros.len, 64 * 1024);
    decode_bomb("deflate", &zl, zeros.len, 64 * 1024);
    /* br with a 4 MiB window (lgwin 22) and zstd with ZSTD_compress's: far under their bounds. */
    decode_bomb("br", &br, zeros.len, 5 * MIB);
    decode_bomb("zstd", &zs, zeros.len, 9 * MIB);
    decode_bomb("gzip, br", &both, zeros.len, 5 * MIB);
    bytes_free(&zeros);
    bytes_free(&gz);
    bytes_free(&zl);
    bytes_free(&br);
    bytes_free(&zs);
    bytes_free(&both);
}

/* ---- the calling contract ---- */

static void test_decode_consumes_nothing_with_no_output_room(void **state)
{
    struct bytes data = text_data(1000, 16), gz = compress_with(C_GZIP, &data);
    struct content_decoder *d;
    size_t c = 99, p = 99;
    uint8_t out[1];

    assert_int_equal(content_decoder_new("gzip", 4, &d), 0);
    assert_int_equal(content_decoder_run(d, gz.p, gz.len, &c, out, 0, &p), 0);
    assert_int_equal(c, 0);
    assert_int_equal(p, 0);
    /* And with one byte of room, only as much input as one byte of output needs. */
    assert_int_equal(content_decoder_run(d, gz.p, gz.len, &c, out, 1, &p), 0);
    assert_int_equal(p, 1);
    assert_true(c < gz.len);
    assert_int_equal(out[0], data.p[0]);
    content_decoder_free(d);
    bytes_free(&data);
    bytes_free(&gz);
}

static void test_decode_finish_refuses_while_output_is_held_back(void **state)
{
    struct bytes data = text_data(1000, 17), gz = compress_with(C_ZSTD, &data);
    struct content_decoder *d;
    size_t c, p;
    uint8_t out[10];

    assert_int_equal(content_decoder_new("zstd", 4, &d), 0);
    assert_int_equal(content_decoder_run(d, gz.p, gz.len, &c, out, sizeof(out), &p), 0);
    assert_int_equal(p, sizeof(out));
    assert_int_equal(content_decoder_finish(d), ERR_INVALID);
    assert_string_equal(content_decoder_error(d), "finish() called with output not yet taken");
    content_decoder_free(d);
    bytes_free(&data);
    bytes_free(&gz);
}

static void test_decode_has_no_error_text_before_an_error(void **state)
{
    struct content_decoder *d;

    assert_int_equal(content_decoder_new("br", 2, &d), 0);
    assert_string_equal(content_decoder_error(d), "");
    assert_true(content_decoder_memory(d) > 0);
    content_decoder_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_round_trips_gzip_in_every_split),
        cmocka_unit_test(test_decode_round_trips_zlib_deflate_in_every_split),
        cmocka_unit_test(test_decode_round_trips_raw_deflate_in_every_split),
        cmocka_unit_test(test_decode_round_trips_br_in_every_split),
        cmocka_unit_test(test_decode_round_trips_zstd_in_every_split),
        cmocka_unit_test(test_decode_accepts_coding_names_in_any_case_and_x_gzip),
        cmocka_unit_test(test_decode_reads_an_empty_body_as_empty_in_every_coding),
        cmocka_unit_test(test_decode_undoes_stacked_gzip_then_br),
        cmocka_unit_test(test_decode_undoes_three_layers),
        cmocka_unit_test(test_decode_refuses_a_fourth_layer_and_unknown_codings),
        cmocka_unit_test(test_decode_gives_no_decoder_for_identity_or_nothing),
        cmocka_unit_test(test_decode_reads_concatenated_gzip_members),
        cmocka_unit_test(test_decode_reads_concatenated_and_skippable_zstd_frames),
        cmocka_unit_test(test_decode_ends_where_the_stream_ends_and_leaves_trailing_bytes),
        cmocka_unit_test(test_decode_refuses_a_partial_gzip_magic_after_a_member),
        cmocka_unit_test(test_decode_refuses_data_after_an_inner_stream),
        cmocka_unit_test(test_decode_reports_a_truncated_stream_at_finish),
        cmocka_unit_test(test_decode_names_the_coding_and_the_fault_in_corrupt_data),
        cmocka_unit_test(test_decode_refuses_a_zstd_frame_with_a_128_mib_window),
        cmocka_unit_test(test_decode_accepts_a_zstd_frame_with_an_8_mib_window_within_its_bound),
        cmocka_unit_test(test_decode_holds_a_16_mib_brotli_window_within_its_bound),
        cmocka_unit_test(test_decode_holds_a_growing_brotli_window_within_its_bound),
        cmocka_unit_test(test_decode_refuses_two_16_mib_brotli_windows_on_its_memory_cap),
        cmocka_unit_test(test_decode_refuses_large_window_brotli),
        cmocka_unit_test(test_decode_pulls_a_10_mib_bomb_in_16_kib_steps_with_bounded_memory),
        cmocka_unit_test(test_decode_consumes_nothing_with_no_output_room),
        cmocka_unit_test(test_decode_finish_refuses_while_output_is_held_back),
        cmocka_unit_test(test_decode_has_no_error_text_before_an_error),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
