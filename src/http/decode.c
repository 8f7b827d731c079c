/*
 * decode.c - incremental Content-Encoding decoder. See decode.h.
 *
 * A decoder is a stack of layers: layers[0] decodes the caller's input (the coding
 * applied last), each later one decodes the output of the one before through a
 * fixed buffer (mid[]), and the last one writes into the caller's output. Output
 * is pulled: run() asks the last layer to fill the caller's space, and a layer
 * that runs out of input refills its buffer from the layer before, down to the
 * caller's input. Nothing is decoded that nobody asked for beyond one buffer per
 * layer, so the memory a decoder holds is fixed when its streams start, whatever
 * the output grows to.
 *
 * Each layer first takes the opening bytes of a stream itself (LAYER_HEAD): the
 * magic of a gzip member or zstd frame, the two bytes that tell a zlib header
 * from raw deflate. That is where a layer decides that its body has ended (a byte
 * that cannot start another member) without handing the library bytes that are
 * not its own. The bytes taken are then fed to the library before the rest.
 *
 * Not for: Transfer-Encoding (chunked.h), limits on the decoded size (the caller
 * pulls at its reader's pace), or any I/O.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ZLIB_CONST
#include <zlib.h>
#include <brotli/decode.h>
/* For ZSTD_createDCtx_advanced(): our allocator counts and wipes the library's memory.
 * ZSTD_customMem has kept its shape since zstd 1.0. */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#include <zstd_errors.h>

#include "ascii.h"
#include "decode.h"
#include "err.h"

#define LAYER_END 2 /* decoder__pull(), layer__step(): the layer finished (LAYER_DONE) */
#define HEAD_MAX 4  /* opening bytes a layer takes itself: the zstd magic is the longest */

enum coding { CODING_GZIP, CODING_DEFLATE, CODING_BR, CODING_ZSTD };

static const char *const coding_names[] = {"gzip", "deflate", "br", "zstd"};

enum layer_state {
    LAYER_HEAD, /* before a stream, member or frame: taking its opening bytes */
    LAYER_BODY, /* inside one: the library decodes */
    LAYER_DONE,
};

struct layer {
    enum coding coding;
    enum layer_state state;
    bool started;            /* a first stream, member or frame began */
    bool fed;                /* any byte came in at all: an empty body is one where none did */
    uint8_t head[HEAD_MAX];  /* opening bytes taken, fed to the library once it starts */
    size_t head_len, head_fed;
    union {
        z_stream z; /* gzip, deflate */
        BrotliDecoderState *br;
        ZSTD_DCtx *zstd;
    } u;
    bool z_live; /* u.z set up (inflateEnd needed) */
};

/* The buffer between layers[i] and layers[i + 1]: bytes [off, off + len) pending. */
struct mid {
    uint8_t *p;
    size_t off, len;
};

/* The caller's input during one run() call. */
struct input {
    const uint8_t *p;
    size_t len, used;
};

struct content_decoder {
    struct layer layers[CONTENT_DECODER_MAX_LAYERS];
    struct mid mid[CONTENT_DECODER_MAX_LAYERS - 1];
    size_t nlayers;
    bool input_ended; /* finish() was called */
    bool done;        /* every layer finished: run() returns CONTENT_DECODER_END */
    int error;        /* sticky once set */
    size_t mem, mem_peak;
    bool mem_refused; /* an allocation failed on CONTENT_DECODER_MAX_MEMORY, not malloc */
    char errtext[128];
};

/* ---- memory: counted, capped, wiped on free ---- */

/* Keeps the block after it aligned for anything, as malloc's is. */
union mem_hdr {
    size_t size;
    max_align_t align;
};

static void *decoder__alloc(struct content_decoder *d, size_t size)
{
    union mem_hdr *h;

    /* d->mem never exceeds the cap, so the sum below cannot overflow. */
    if (size > CONTENT_DECODER_MAX_MEMORY ||
        d->mem + sizeof(*h) + size > CONTENT_DECODER_MAX_MEMORY) {
        d->mem_refused = true;
        return NULL;
    }
    if ((h = malloc(sizeof(*h) + size)) == NULL)
        return NULL;
    h->size = size;
    d->mem += sizeof(*h) + size;
    if (d->mem > d->mem_peak)
        d->mem_peak = d->mem;
    return h + 1;
}

static void decoder__release(struct content_decoder *d, void *p)
{
    union mem_hdr *h;
    size_t total;

    if (p == NULL)
        return;
    h = (union mem_hdr *)p - 1;
    total = sizeof(*h) + h->size;
    explicit_bzero(h, total);
    free(h);
    d->mem -= total;
}

static voidpf zlib_alloc_cb(voidpf opaque, uInt items, uInt size)
{
    if (size != 0 && items > SIZE_MAX / size)
        return Z_NULL;
    return decoder__alloc(opaque, (size_t)items * size);
}

static void zlib_free_cb(voidpf opaque, voidpf p)
{
    decoder__release(opaque, p);
}

static void *lib_alloc_cb(void *opaque, size_t size)
{
    return decoder__alloc(opaque, size);
}

static void lib_free_cb(void *opaque, void *p)
{
    decoder__release(opaque, p);
}

/* ---- errors ---- */

static int decoder__fail(struct content_decoder *d, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int decoder__fail(struct content_decoder *d, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(d->errtext, sizeof(d->errtext), fmt, ap);
    va_end(ap);
    d->error = code;
    return code;
}

/* A library could not allocate: our cap, or malloc itself. */
static int decoder__fail_mem(struct content_decoder *d, const struct layer *l)
{
    const char *name = coding_names[l->coding];

    if (d->mem_refused)
        return decoder__fail(d, ERR_TOO_LARGE, "%s: decoder memory limit (%zu MiB) reached", name,
                             CONTENT_DECODER_MAX_MEMORY >> 20);
    return decoder__fail(d, ERR_NOMEM, "%s: out of memory", name);
}

/* Library error names, made to read as the rest: lower case, no prefix. */
static void decoder__lower(char *s, const char *from, size_t max)
{
    size_t i;

    for (i = 0; i + 1 < max && from[i] != '\0'; i++)
        s[i] = (char)ascii_tolower((unsigned char)from[i]);
    s[i] = '\0';
}

static int decoder__fail_br(struct content_decoder *d, const struct layer *l)
{
    BrotliDecoderErrorCode e = BrotliDecoderGetErrorCode(l->u.br);
    const char *name = BrotliDecoderErrorString(e);
    static const char prefix[] = "_ERROR_FORMAT_";
    char text[48];

    /* The only window the format cannot express without large-window mode (RFC 7932
     * 9.1 reserves the pattern that extension uses). */
    if (e == BROTLI_DECODER_ERROR_FORMAT_WINDOW_BITS)
        return decoder__fail(d, ERR_TOO_LARGE, "br: large-window stream refused");
    if (e <= BROTLI_DECODER_ERROR_ALLOC_CONTEXT_MODES &&
        e >= BROTLI_DECODER_ERROR_ALLOC_BLOCK_TYPE_TREES)
        return decoder__fail_mem(d, l);
    if (strncmp(name, prefix, sizeof(prefix) - 1) == 0)
        name += sizeof(prefix) - 1;
    decoder__lower(text, name, sizeof(text));
    return decoder__fail(d, ERR_INVALID, "br: corrupt stream (%s)", text);
}

static int decoder__fail_zstd(struct content_decoder *d, const struct layer *l, size_t zr)
{
    char text[64];

    switch (ZSTD_getErrorCode(zr)) {
    case ZSTD_error_frameParameter_windowTooLarge:
        return decoder__fail(d, ERR_TOO_LARGE,
                             "zstd: frame requires too much memory (a window over %u MiB)",
                             1u << (CONTENT_DECODER_ZSTD_WINDOW_LOG_MAX - 20));
    case ZSTD_error_memory_allocation:
        return decoder__fail_mem(d, l);
    case ZSTD_error_checksum_wrong:
        return decoder__fail(d, ERR_INVALID, "zstd: checksum mismatch");
    default:
        decoder__lower(text, ZSTD_getErrorName(zr), sizeof(text));
        return decoder__fail(d, ERR_INVALID, "zstd: %s", text);
    }
}

/* ---- one layer ---- */

/*
 * Hands in[0..len) to l's library: *c bytes taken, *p bytes written to
 * out[0..cap), *end when the stream, member or frame ended with all its output
 * written. Returns 0 or an error.
 */
static int layer__lib(struct content_decoder *d, struct layer *l, const uint8_t *in, size_t len,
                      size_t *c, uint8_t *out, size_t cap, size_t *p, bool *end)
{
    *end = false;
    if (l->coding == CODING_GZIP || l->coding == CODING_DEFLATE) {
        z_stream *z = &l->u.z;
        uInt in_avail = len > UINT_MAX ? UINT_MAX : (uInt)len;
        uInt out_avail = cap > UINT_MAX ? UINT_MAX : (uInt)cap;
        int zr;

        z->next_in = in;
        z->avail_in = in_avail;
        z->next_out = out;
        z->avail_out = out_avail;
        zr = inflate(z, Z_NO_FLUSH);
        *c = in_avail - z->avail_in;
        *p = out_avail - z->avail_out;
        z->next_in = NULL;
        z->next_out = NULL;
        switch (zr) {
        case Z_OK:
        case Z_BUF_ERROR: /* no progress possible: wants input */
            return 0;
        case Z_STREAM_END:
            *end = true;
            return 0;
        case Z_MEM_ERROR:
            return decoder__fail_mem(d, l);
        case Z_NEED_DICT:
            return decoder__fail(d, ERR_INVALID, "%s: needs a preset dictionary",
                                 coding_names[l->coding]);
        default:
            return decoder__fail(d, ERR_INVALID, "%s: %s", coding_names[l->coding],
                                 z->msg != NULL ? z->msg : "corrupt data");
        }
    }
    if (l->coding == CODING_BR) {
        size_t in_left = len, out_left = cap;
        const uint8_t *next_in = in;
        uint8_t *next_out = out;
        BrotliDecoderResult br;

        br = BrotliDecoderDecompressStream(l->u.br, &in_left, &next_in, &out_left, &next_out, NULL);
        *c = len - in_left;
        *p = cap - out_left;
        if (br == BROTLI_DECODER_RESULT_ERROR)
            return decoder__fail_br(d, l);
        *end = br == BROTLI_DECODER_RESULT_SUCCESS;
        return 0;
    } else {
        ZSTD_inBuffer ib = {in, len, 0};
        ZSTD_outBuffer ob = {out, cap, 0};
        size_t zr = ZSTD_decompressStream(l->u.zstd, &ob, &ib);

        *c = ib.pos;
        *p = ob.pos;
        if (ZSTD_isError(zr))
            return decoder__fail_zstd(d, l, zr);
        /* 0: a frame is complete and flushed; the next call would start another. */
        *end = zr == 0;
        return 0;
    }
}

/* The opening bytes a layer takes itself before its library sees a stream. */
static size_t layer__head_need(const struct layer *l)
{
    switch (l->coding) {
    case CODING_GZIP:
    case CODING_DEFLATE:
        return 2;
    case CODING_ZSTD:
        return 4;
    default:
        return 0;
    }
}

/* Whether b can be the next opening byte of a stream of l's coding. */
static bool layer__head_fits(const struct layer *l, uint8_t b)
{
    static const uint8_t zstd_frame[4] = {0x28, 0xb5, 0x2f, 0xfd}; /* RFC 8878 3.1.1 */
    static const uint8_t zstd_skip[4] = {0x50, 0x2a, 0x4d, 0x18};  /* 0x184D2A5?, 3.1.2 */
    size_t pos = l->head_len;

    switch (l->coding) {
    case CODING_GZIP: /* RFC 1952 2.3.1 */
        return b == (pos == 0 ? 0x1f : 0x8b);
    case CODING_ZSTD:
        /* Frames of zstd's legacy formats (before 1.0) are refused: old code, no need. */
        if (pos == 0)
            return b == zstd_frame[0] || (b & 0xf0) == zstd_skip[0];
        return b == (l->head[0] == zstd_frame[0] ? zstd_frame : zstd_skip)[pos];
    default:
        return true;
    }
}

/* The head is complete: point the library at a new stream, member or frame. */
static int layer__start(struct content_decoder *d, struct layer *l)
{
    int zr = Z_OK;

    if (l->coding == CODING_GZIP && l->started) {
        zr = inflateReset(&l->u.z);
    } else if (l->coding == CODING_DEFLATE) {
        /* RFC 9110 8.4.1.2 says zlib (RFC 1950); servers send raw deflate too, and
         * clients accept both. A zlib header is CM 8, CINFO <= 7 and a check that
         * makes the first two bytes a multiple of 31 (RFC 1950 2.2); a raw stream
         * matches that only with a stored block's padding bits set, which encoders
         * leave zero. */
        unsigned cmf = l->head[0], flg = l->head[1];
        bool zlib = (cmf & 0x0f) == 8 && (cmf >> 4) <= 7 && (cmf << 8 | flg) % 31 == 0;

        if (!zlib)
            zr = inflateReset2(&l->u.z, -MAX_WBITS);
    }
    if (zr != Z_OK)
        return decoder__fail_mem(d, l);
    l->state = LAYER_BODY;
    l->started = true;
    l->head_fed = 0;
    return 0;
}

/*
 * Takes one opening byte b. Returns 1 if taken, 0 if b cannot start another
 * member and so the layer ended before it (b not taken), or an error.
 */
static int layer__head_byte(struct content_decoder *d, struct layer *l, uint8_t b)
{
    const char *name = coding_names[l->coding];

    if (!layer__head_fits(l, b)) {
        if (!l->started)
            return decoder__fail(d, ERR_INVALID, "%s: not a %s stream", name, name);
        if (l->head_len == 0)
            return 0;
        /* Part of a magic, then something else: refused rather than ending the body
         * before the part, which may have come in an earlier call. */
        return decoder__fail(d, ERR_INVALID, "%s: data after the end of the stream", name);
    }
    l->head[l->head_len++] = b;
    if (l->head_len == layer__head_need(l))
        return layer__start(d, l) == 0 ? 1 : d->error;
    return 1;
}

/*
 * Runs layer l on src[0..len) into dst[0..cap); src_ended says that no input
 * follows src. *c bytes of src taken, *p bytes written. Returns 0 when dst is full
 * or src is used up (and more may come), LAYER_END when the layer finished (bytes
 * of src after its end not taken), or an error (a stream cut short by src_ended
 * included).
 */
static int layer__step(struct content_decoder *d, struct layer *l, const uint8_t *src, size_t len,
                       bool src_ended, size_t *c, uint8_t *dst, size_t cap, size_t *p)
{
    const char *name = coding_names[l->coding];
    int r;

    *c = 0;
    *p = 0;
    while (l->state != LAYER_DONE) {
        const uint8_t *in;
        size_t in_len, ic, op;
        bool from_head, end;

        if (l->state == LAYER_HEAD) {
            if (*c == len) {
                if (!src_ended)
                    return 0;
                if (l->head_len > 0)
                    return decoder__fail(d, ERR_INVALID, "%s: truncated stream", name);
                l->state = LAYER_DONE; /* after a member, or an empty body */
                break;
            }
            if ((r = layer__head_byte(d, l, src[*c])) < 0)
                return r;
            if (r == 0) {
                l->state = LAYER_DONE;
                break;
            }
            (*c)++;
            l->fed = true;
            continue;
        }
        if (*p == cap)
            return 0;
        from_head = l->head_fed < l->head_len;
        if (from_head) {
            in = l->head + l->head_fed;
            in_len = l->head_len - l->head_fed;
        } else {
            in = src + *c;
            in_len = len - *c;
        }
        r = layer__lib(d, l, in, in_len, &ic, dst + *p, cap - *p, &op, &end);
        if (from_head) {
            l->head_fed += ic;
        } else {
            *c += ic;
            l->fed = l->fed || ic > 0;
        }
        *p += op;
        if (r != 0)
            return r;
        if (end) {
            /* Cannot happen with the heads we take (every stream is longer), but an
             * opening byte left over would be one after the end. */
            if (l->head_fed < l->head_len)
                return decoder__fail(d, ERR_INVALID, "%s: data after the end of the stream",
                                     name);
            l->head_len = 0;
            l->head_fed = 0;
            /* gzip members and zstd frames may follow one another (RFC 1952 2.2, RFC
             * 8878 3.1); a deflate or br stream is one. */
            if (l->coding == CODING_GZIP || l->coding == CODING_ZSTD)
                l->state = LAYER_HEAD;
            else
                l->state = LAYER_DONE;
            continue;
        }
        if (ic > 0 || op > 0)
            continue;
        /* No progress with room in dst: the library has said all it can without input. */
        if (from_head || *c < len)
            return decoder__fail(d, ERR_INVALID, "%s: decoder made no progress", name);
        if (!src_ended)
            return 0;
        if (!l->fed) { /* br: an empty body */
            l->state = LAYER_DONE;
            break;
        }
        return decoder__fail(d, ERR_INVALID, "%s: truncated stream", name);
    }
    return LAYER_END;
}

/*
 * Fills dst[0..cap) from layer i, refilling its input from layer i - 1 whenever it
 * runs dry (layer 0 reads the caller's input). *prod bytes written. Returns 0 when
 * dst is full or the caller's input is used up, LAYER_END when layer i finished,
 * or an error.
 */
static int decoder__pull(struct content_decoder *d, size_t i, struct input *in, uint8_t *dst,
                         size_t cap, size_t *prod)
{
    struct mid *m = i > 0 ? &d->mid[i - 1] : NULL;

    *prod = 0;
    for (;;) {
        size_t c, p, q;
        int r;

        if (m == NULL) {
            r = layer__step(d, &d->layers[i], in->p + in->used, in->len - in->used,
                            d->input_ended, &c, dst + *prod, cap - *prod, &p);
            in->used += c;
        } else {
            r = layer__step(d, &d->layers[i], m->p + m->off, m->len, d->layers[i - 1].state == LAYER_DONE,
                            &c, dst + *prod, cap - *prod, &p);
            m->off += c;
            m->len -= c;
        }
        *prod += p;
        if (r != 0 || *prod == cap || m == NULL)
            return r;
        /* Layer i took all of its buffer and wants more: the buffer is empty. */
        m->off = 0;
        r = decoder__pull(d, i - 1, in, m->p, CONTENT_DECODER_BUFFER, &q);
        m->len = q;
        if (r < 0)
            return r;
        if (r == 0 && q == 0)
            return 0; /* waiting for the caller's input */
    }
}

/* ---- the API ---- */

/* Reads a Content-Encoding list into codings[], in the order they were applied. */
static int decoder__parse(const char *s, size_t len, enum coding *codings, size_t *n)
{
    size_t i = 0;

    *n = 0;
    for (;;) {
        size_t start;
        enum coding c;
        const char *tok;

        /* RFC 9110 5.6.1: OWS around commas, empty elements allowed. */
        while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == ','))
            i++;
        if (i == len)
            return 0;
        start = i;
        while (i < len && ascii_is_tchar((unsigned char)s[i]))
            i++;
        tok = s + start;
        if (i == start)
            return ERR_UNSUPPORTED; /* not a token: parameters, quotes, control bytes */
        if (ascii_ieq_lower(tok, i - start, "gzip") || ascii_ieq_lower(tok, i - start, "x-gzip"))
            c = CODING_GZIP;
        else if (ascii_ieq_lower(tok, i - start, "deflate"))
            c = CODING_DEFLATE;
        else if (ascii_ieq_lower(tok, i - start, "br"))
            c = CODING_BR;
        else if (ascii_ieq_lower(tok, i - start, "zstd"))
            c = CODING_ZSTD;
        else if (ascii_ieq_lower(tok, i - start, "identity"))
            continue;
        else
            return ERR_UNSUPPORTED;
        if (*n == CONTENT_DECODER_MAX_LAYERS)
            return ERR_UNSUPPORTED;
        codings[(*n)++] = c;
        while (i < len && (s[i] == ' ' || s[i] == '\t'))
            i++;
        if (i < len && s[i] != ',')
            return ERR_UNSUPPORTED;
    }
}

/* Sets up layer l's library. */
static int layer__init(struct content_decoder *d, struct layer *l, enum coding coding)
{
    l->coding = coding;
    /* A brotli stream opens with no fixed bytes: its library sees the first one. */
    l->state = coding == CODING_BR ? LAYER_BODY : LAYER_HEAD;
    switch (coding) {
    case CODING_GZIP:
    case CODING_DEFLATE:
        l->u.z.zalloc = zlib_alloc_cb;
        l->u.z.zfree = zlib_free_cb;
        l->u.z.opaque = d;
        /* 32 KiB window, the most deflate uses; 16 + for gzip only. A deflate layer
         * starts as zlib and is switched to raw by layer__start(). */
        if (inflateInit2(&l->u.z, coding == CODING_GZIP ? 16 + MAX_WBITS : MAX_WBITS) != Z_OK)
            return ERR_NOMEM;
        l->z_live = true;
        return 0;
    case CODING_BR:
        if ((l->u.br = BrotliDecoderCreateInstance(lib_alloc_cb, lib_free_cb, d)) == NULL)
            return ERR_NOMEM;
        /* Off by default; said here because the memory bound rests on it. */
        if (!BrotliDecoderSetParameter(l->u.br, BROTLI_DECODER_PARAM_LARGE_WINDOW, 0))
            return ERR_INVALID;
        return 0;
    case CODING_ZSTD: {
        ZSTD_customMem mem = {lib_alloc_cb, lib_free_cb, d};

        if ((l->u.zstd = ZSTD_createDCtx_advanced(mem)) == NULL)
            return ERR_NOMEM;
        if (ZSTD_isError(ZSTD_DCtx_setParameter(l->u.zstd, ZSTD_d_windowLogMax,
                                                CONTENT_DECODER_ZSTD_WINDOW_LOG_MAX)))
            return ERR_INVALID;
        return 0;
    }
    }
    return ERR_INVALID;
}

static void layer__free(struct content_decoder *d, struct layer *l)
{
    if ((l->coding == CODING_GZIP || l->coding == CODING_DEFLATE) && l->z_live)
        inflateEnd(&l->u.z);
    else if (l->coding == CODING_BR && l->u.br != NULL)
        BrotliDecoderDestroyInstance(l->u.br);
    else if (l->coding == CODING_ZSTD && l->u.zstd != NULL)
        ZSTD_freeDCtx(l->u.zstd);
}

int content_decoder_new(const char *encoding, size_t len, struct content_decoder **out)
{
    enum coding codings[CONTENT_DECODER_MAX_LAYERS];
    struct content_decoder *d = NULL;
    size_t n;
    int r;

    *out = NULL;
    if ((r = decoder__parse(encoding, len, codings, &n)) != 0)
        return r;
    if (n == 0)
        return 0;
    if ((d = calloc(1, sizeof(*d))) == NULL)
        return ERR_NOMEM;
    d->mem = d->mem_peak = sizeof(*d);
    for (size_t i = 0; i < n; i++) {
        /* Decoding runs from the coding applied last. */
        if ((r = layer__init(d, &d->layers[i], codings[n - 1 - i])) != 0)
            goto out;
        d->nlayers = i + 1;
    }
    for (size_t i = 0; i + 1 < n; i++) {
        if ((d->mid[i].p = decoder__alloc(d, CONTENT_DECODER_BUFFER)) == NULL) {
            r = ERR_NOMEM;
            goto out;
        }
    }
    *out = d;
    d = NULL; /* transferred */
    r = 0;
out:
    if (d != NULL && d->nlayers < n)
        layer__free(d, &d->layers[d->nlayers]); /* the one that failed, set up in part */
    content_decoder_free(d);
    return r;
}

int content_decoder_run(struct content_decoder *d, const uint8_t *in, size_t in_len,
                        size_t *consumed, uint8_t *out, size_t out_cap, size_t *produced)
{
    static const uint8_t none[1];
    struct input input = {in != NULL ? in : none, in != NULL ? in_len : 0, 0};
    int r = 0;

    *consumed = 0;
    *produced = 0;
    if (d->error != 0)
        return d->error;
    if (d->done)
        return CONTENT_DECODER_END;
    if (out_cap == 0)
        return 0;
    for (;;) {
        size_t k = d->nlayers, p;

        /* The innermost layer still running; the ones after it have finished, and
         * what their input buffers still hold came after their end. */
        while (k > 0 && d->layers[k - 1].state == LAYER_DONE) {
            k--;
            if (k > 0 && d->mid[k - 1].len > 0) {
                r = decoder__fail(d, ERR_INVALID, "%s: data after the end of the stream",
                                  coding_names[d->layers[k].coding]);
                goto out;
            }
        }
        if (k == 0) {
            d->done = true;
            r = CONTENT_DECODER_END;
            break;
        }
        k--;
        if (k + 1 == d->nlayers) {
            r = decoder__pull(d, k, &input, out + *produced, out_cap - *produced, &p);
            *produced += p;
        } else {
            /* Layer k + 1 ended: whatever layer k still makes comes after that end, and
             * the loop above says so. */
            r = decoder__pull(d, k, &input, d->mid[k].p, CONTENT_DECODER_BUFFER, &p);
            d->mid[k].off = 0;
            d->mid[k].len = p;
            if (r == 0 && p > 0)
                continue;
        }
        if (r != LAYER_END)
            break;
    }
out:
    *consumed = input.used;
    return r;
}

int content_decoder_finish(struct content_decoder *d)
{
    uint8_t probe;
    size_t c, p;
    int r;

    if (d->error != 0)
        return d->error;
    if (d->done)
        return 0;
    /* With the input ended, one more pull settles every layer: each either ends or
     * finds its stream cut short. A byte coming out means the caller had not taken
     * all the output, and finish() was called too early. */
    d->input_ended = true;
    r = content_decoder_run(d, NULL, 0, &c, &probe, 1, &p);
    explicit_bzero(&probe, sizeof(probe));
    if (r < 0)
        return r;
    if (p > 0)
        return decoder__fail(d, ERR_INVALID, "finish() called with output not yet taken");
    if (r != CONTENT_DECODER_END)
        return decoder__fail(d, ERR_INVALID, "decoder did not settle at the end of input");
    return 0;
}

const char *content_decoder_error(const struct content_decoder *d)
{
    return d->error != 0 ? d->errtext : "";
}

size_t content_decoder_memory(const struct content_decoder *d)
{
    return d->mem_peak;
}

void content_decoder_free(struct content_decoder *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->nlayers; i++)
        layer__free(d, &d->layers[i]);
    for (size_t i = 0; i + 1 < d->nlayers; i++)
        decoder__release(d, d->mid[i].p);
    explicit_bzero(d, sizeof(*d));
    free(d);
}
