/*
 * fuzz_response.c - the response head the broker writes to the child
 * (response.h: http1_put_forwarded_head, http1_chunk_line).
 *
 * Input, as text so the corpus reads like a response:
 *   line 1:  "<status> <minor> <flags>"   e.g. "200 1 k"; flags: h = HEAD request,
 *            k = the connection may be kept alive
 *   then:    one upstream header per line, "name: value" (or "name:value"), with
 *            escapes \r \n \0 \\ \xHH so a value can carry any byte.
 * Nothing is rejected: whatever upstream sends, the head must come out safe.
 *
 * Properties: a bad status is ERR_INVALID and anything else succeeds; the head
 * is a status line, "name: value" lines and an empty line, every line ending
 * in CRLF with no CR, LF or NUL inside; fw.framing, fw.keep_alive and
 * fw.content_length are what a recount here says (RFC 9112 6.3 with the
 * broker's rules: a bad or disagreeing length means none, and so does one
 * beside Transfer-Encoding; an encoded body keeps its length and its
 * Content-Encoding, as it is passed on undecoded), and exactly the one
 * framing header that goes with them is written; no hop-by-hop header, nor one
 * named in Connection, survives; every other header that can be written
 * safely is passed on, byte for byte and in order. http1_chunk_line gives the
 * lower-case hex of its argument, which the chunked decoder reads back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "chunked.h"
#include "err.h"
#include "fuzz.h"
#include "response.h"

#define MAX_FIELDS 256

struct field {
    char *name, *value;
    size_t name_len, value_len;
};

/* Decodes the escapes of one line piece into dst (which has room for len bytes). */
static bool is_hop_by_hop(const char *name, size_t len)
{
    static const char *const hop[] = {"connection", "keep-alive",        "te",
                                      "trailer",    "transfer-encoding", "upgrade"};

    if (len >= 6 && fuzz_eq_ci(name, 6, "proxy-"))
        return true;
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++) {
        if (fuzz_eq_ci(name, len, hop[i]))
            return true;
    }
    return false;
}

/* Could http1_put_header write this field at all? */
static bool writable(const struct field *f)
{
    if (f->name_len == 0)
        return false;
    for (size_t i = 0; i < f->name_len; i++) {
        if (!fuzz_is_tchar((unsigned char)f->name[i]))
            return false;
    }
    for (size_t i = 0; i < f->value_len; i++) {
        if (f->value[i] == '\r' || f->value[i] == '\n' || f->value[i] == '\0')
            return false;
    }
    return true;
}

/* Must header i reach the child? Safe to write, end-to-end, not framing. */
static bool forwardable(const struct field *fields, size_t nf, size_t i)
{
    const struct field *f = &fields[i];

    if (!writable(f) || is_hop_by_hop(f->name, f->name_len) ||
        fuzz_eq_ci(f->name, f->name_len, "content-length"))
        return false;
    for (size_t k = 0; k < nf; k++) {
        if (fuzz_eq_ci(fields[k].name, fields[k].name_len, "connection") &&
            fuzz_list_has_n(fields[k].value, fields[k].value_len, f->name, f->name_len))
            return false;
    }
    return true;
}

static void check_chunk_line(uint64_t seed, const uint8_t *data, size_t size)
{
    size_t lens[4] = {0, (size_t)seed, SIZE_MAX, size % 300};

    for (size_t k = 0; k < 4; k++) {
        char line[HTTP1_CHUNK_LINE_MAX], *msg;
        size_t n = http1_chunk_line(line, lens[k]), v = 0, mlen, used = 0, got = 0;
        struct chunked_decoder d;
        int r = 0;

        FUZZ_CHECK(n >= 3 && n < HTTP1_CHUNK_LINE_MAX && line[n] == '\0', "chunk line of %zu", n);
        FUZZ_CHECK(line[n - 2] == '\r' && line[n - 1] == '\n', "chunk line without CRLF");
        FUZZ_CHECK(n == 3 || line[0] != '0', "leading zero in a chunk line");
        for (size_t i = 0; i + 2 < n; i++) {
            FUZZ_CHECK(fuzz_hex((unsigned char)line[i]) >= 0 && !(line[i] >= 'A' && line[i] <= 'F'),
                       "chunk line byte '%c'", line[i]);
            v = v << 4 | (size_t)fuzz_hex((unsigned char)line[i]);
        }
        FUZZ_CHECK(v == lens[k], "chunk line says %zx for %zx", v, lens[k]);
        if (k == 1 || k == 2)
            continue;
        /* Read it back: line, data, CRLF, last-chunk, CRLF; or for 0, the last-chunk and CRLF. */
        mlen = lens[k] == 0 ? n + 2 : n + lens[k] + 2 + 5;
        msg = fuzz_malloc(mlen);
        memcpy(msg, line, n);
        memset(msg + n, 'd', lens[k]);
        if (lens[k] > 0 && size > 0)
            memcpy(msg + n, data, lens[k] < size ? lens[k] : size);
        if (lens[k] == 0)
            memcpy(msg + n, "\r\n", 2);
        else
            memcpy(msg + n + lens[k], "\r\n0\r\n\r\n", 7);
        chunked_init(&d);
        while (used < mlen && r == 0) {
            const char *dp;
            size_t c, dl;

            r = chunked_decode(&d, msg + used, mlen - used, &c, &dp, &dl);
            if (dl > 0)
                FUZZ_CHECK(dp == msg + n + got, "data view at the wrong place");
            got += dl;
            used += c;
        }
        FUZZ_CHECK(r == 1 && used == mlen && got == lens[k], "decoder read %d/%zu/%zu back", r,
                   used, got);
        free(msg);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct field fields[MAX_FIELDS];
    static struct http1_header hdrs[MAX_FIELDS], outh[MAX_FIELDS + 3];
    struct http1_forward fw;
    struct fuzz_rng rng;
    struct buf *out;
    const uint8_t *p = data, *end = data + size, *nl, *le1;
    const char *o;
    size_t nf = 0, olen, pos, lines = 0, cl_lines = 0, te_lines = 0, conn_lines = 0, next = 0;
    size_t nout = 0, own;
    bool have_length = false, length_bad = false, te_upstream = false;
    bool no_body, keep;
    uint64_t length = 0;
    enum http1_framing want;
    int status = 0, minor = 1, r;
    char want_line[64];

    fuzz_rng_seed(&rng, data, size);
    check_chunk_line(fuzz_rng_next(&rng), data, size);

    /* Line 1: "<status> <minor> <flags>". */
    memset(&fw, 0, sizeof(fw));
    nl = memchr(p, '\n', size);
    le1 = nl != NULL ? nl : end;
    while (p < le1 && *p >= '0' && *p <= '9') {
        if (status < 100000)
            status = status * 10 + (*p - '0');
        p++;
    }
    while (p < le1 && *p == ' ')
        p++;
    if (p < le1 && *p >= '0' && *p <= '9')
        minor = *p++ - '0';
    for (; p < le1; p++) {
        fw.is_head = fw.is_head || *p == 'h';
        fw.keep_alive = fw.keep_alive || *p == 'k';
    }
    fw.status = status;
    fw.minor_version = minor;
    p = nl != NULL ? nl + 1 : end;

    /* Header lines. */
    while (p < end && nf < MAX_FIELDS) {
        const uint8_t *le = memchr(p, '\n', (size_t)(end - p)), *colon;
        size_t llen;

        if (le == NULL)
            le = end;
        llen = (size_t)(le - p);
        colon = memchr(p, ':', llen);
        fields[nf].name = fuzz_malloc(llen);
        fields[nf].value = fuzz_malloc(llen);
        if (colon == NULL) {
            fields[nf].name_len = fuzz_unescape(p, llen, (uint8_t *)fields[nf].name);
            fields[nf].value_len = 0;
        } else {
            const uint8_t *v = colon + 1;

            if (v < le && *v == ' ')
                v++;
            fields[nf].name_len = fuzz_unescape(p, (size_t)(colon - p), (uint8_t *)fields[nf].name);
            fields[nf].value_len = fuzz_unescape(v, (size_t)(le - v), (uint8_t *)fields[nf].value);
        }
        hdrs[nf].name.base = fields[nf].name;
        hdrs[nf].name.len = fields[nf].name_len;
        hdrs[nf].value.base = fields[nf].value;
        hdrs[nf].value.len = fields[nf].value_len;
        nf++;
        p = le + 1;
    }

    /* What the framing must be. */
    for (size_t i = 0; i < nf; i++) {
        const struct field *f = &fields[i];
        uint64_t v;

        if (fuzz_eq_ci(f->name, f->name_len, "transfer-encoding"))
            te_upstream = true;
        if (fuzz_eq_ci(f->name, f->name_len, "content-length")) {
            if (!fuzz_parse_digits(f->value, f->value_len, &v) || (have_length && v != length))
                length_bad = true;
            else
                length = v;
            have_length = true;
        }
    }
    have_length = have_length && !length_bad && !te_upstream;
    no_body = fw.is_head || (status >= 100 && status <= 199) || status == 204 || status == 304;
    want = no_body       ? HTTP1_FRAME_NONE
           : have_length ? HTTP1_FRAME_LENGTH
           : minor >= 1  ? HTTP1_FRAME_CHUNKED
                         : HTTP1_FRAME_CLOSE;
    keep = fw.keep_alive && want != HTTP1_FRAME_CLOSE;

    if ((out = buf_new(4 * size + 4096, 0)) == NULL)
        abort();
    r = http1_put_forwarded_head(out, &fw, hdrs, nf);
    if (status < 100 || status > 999) {
        FUZZ_CHECK(r == ERR_INVALID, "status %d gave %s", status, err_str(r));
        goto done;
    }
    FUZZ_CHECK(r == 0, "http1_put_forwarded_head: %s", err_str(r));
    FUZZ_CHECK(fw.framing == want, "framing %d, want %d", fw.framing, want);
    FUZZ_CHECK(fw.keep_alive == keep, "keep_alive %d, want %d", fw.keep_alive, keep);
    FUZZ_CHECK(want != HTTP1_FRAME_LENGTH || fw.content_length == length,
               "content_length %llu, want %llu", (unsigned long long)fw.content_length,
               (unsigned long long)length);

    o = (const char *)buf_ptr(out);
    olen = buf_len(out);
    FUZZ_CHECK(olen >= 4 && memcmp(o + olen - 4, "\r\n\r\n", 4) == 0, "head not ended by CRLFCRLF");
    snprintf(want_line, sizeof(want_line), "HTTP/1.%d %d ", minor == 0 ? 0 : 1, status);
    FUZZ_CHECK(olen > strlen(want_line) && memcmp(o, want_line, strlen(want_line)) == 0,
               "status line");

    /* Split the head into lines; header lines into name and value. */
    for (pos = 0; pos < olen;) {
        const char *crlf = memmem(o + pos, olen - pos, "\r\n", 2), *line = o + pos, *colon;
        size_t llen;

        FUZZ_CHECK(crlf != NULL, "last line without CRLF");
        llen = (size_t)(crlf - line);
        for (size_t i = 0; i < llen; i++)
            FUZZ_CHECK(line[i] != '\r' && line[i] != '\n' && line[i] != '\0',
                       "CR, LF or NUL inside line %zu", lines);
        pos += llen + 2;
        if (lines++ == 0)
            continue;
        if (llen == 0) {
            FUZZ_CHECK(pos == olen, "bytes after the empty line");
            break;
        }
        colon = memchr(line, ':', llen);
        FUZZ_CHECK(colon != NULL && colon > line && colon + 1 < line + llen && colon[1] == ' ',
                   "line %zu is not \"name: value\"", lines);
        for (const char *c = line; c < colon; c++)
            FUZZ_CHECK(fuzz_is_tchar((unsigned char)*c), "header name byte");
        FUZZ_CHECK(nout < MAX_FIELDS + 3, "more header lines than went in");
        outh[nout].name.base = line;
        outh[nout].name.len = (size_t)(colon - line);
        outh[nout].value.base = colon + 2;
        outh[nout].value.len = llen - (size_t)(colon + 2 - line);
        nout++;
    }
    own = (have_length && (want == HTTP1_FRAME_LENGTH || want == HTTP1_FRAME_NONE)) +
          (want == HTTP1_FRAME_CHUNKED) + (!keep || minor == 0);
    FUZZ_CHECK(nout >= own, "%zu header lines, fewer than the %zu framing ones", nout, own);

    /* Passed-on headers first: safe ones only, the upstream's, in order. */
    for (size_t k = 0; k < nout - own; k++) {
        const struct http1_iov *nm = &outh[k].name;
        const struct field *f;
        bool listed = false;

        for (size_t i = 0; i < nf && !listed; i++)
            listed = fuzz_eq_ci(fields[i].name, fields[i].name_len, "connection") &&
                     fuzz_list_has_n(fields[i].value, fields[i].value_len, nm->base, nm->len);
        FUZZ_CHECK(!is_hop_by_hop(nm->base, nm->len), "hop-by-hop header %.*s passed on",
                   (int)nm->len, nm->base);
        FUZZ_CHECK(!listed, "header %.*s named in Connection passed on", (int)nm->len, nm->base);
        FUZZ_CHECK(!fuzz_eq_ci(nm->base, nm->len, "content-length"),
                   "the upstream's Content-Length passed on");
        while (next < nf && !forwardable(fields, nf, next))
            next++;
        FUZZ_CHECK(next < nf, "header line %zu passed on from nowhere", k);
        f = &fields[next++];
        FUZZ_CHECK(
            nm->len == f->name_len && memcmp(nm->base, f->name, f->name_len) == 0 &&
                outh[k].value.len == f->value_len &&
                (f->value_len == 0 || memcmp(outh[k].value.base, f->value, f->value_len) == 0),
            "header line %zu is not upstream header %zu as given", k, next - 1);
    }
    while (next < nf) {
        FUZZ_CHECK(!forwardable(fields, nf, next), "upstream header %zu dropped", next);
        next++;
    }

    /* Then the broker's own framing: exactly what fw says. */
    for (size_t k = nout - own; k < nout; k++) {
        const struct http1_iov *nm = &outh[k].name, *v = &outh[k].value;

        if (fuzz_eq_ci(nm->base, nm->len, "content-length")) {
            char d[32];

            snprintf(d, sizeof(d), "%llu", (unsigned long long)length);
            FUZZ_CHECK(v->len == strlen(d) && memcmp(v->base, d, v->len) == 0,
                       "Content-Length value");
            cl_lines++;
        } else if (fuzz_eq_ci(nm->base, nm->len, "transfer-encoding")) {
            FUZZ_CHECK(fuzz_eq_ci(v->base, v->len, "chunked"), "Transfer-Encoding value");
            te_lines++;
        } else if (fuzz_eq_ci(nm->base, nm->len, "connection")) {
            FUZZ_CHECK(fuzz_eq_ci(v->base, v->len, keep ? "keep-alive" : "close"),
                       "Connection value");
            conn_lines++;
        } else {
            fuzz_dump("head", o, olen);
            FUZZ_CHECK(0, "line %zu is not a framing header", k);
        }
    }
    switch (want) {
    case HTTP1_FRAME_LENGTH:
        FUZZ_CHECK(cl_lines == 1 && te_lines == 0, "LENGTH: %zu CL, %zu TE", cl_lines, te_lines);
        break;
    case HTTP1_FRAME_CHUNKED:
        FUZZ_CHECK(cl_lines == 0 && te_lines == 1, "CHUNKED: %zu CL, %zu TE", cl_lines, te_lines);
        break;
    case HTTP1_FRAME_CLOSE:
        FUZZ_CHECK(cl_lines == 0 && te_lines == 0, "CLOSE: %zu CL, %zu TE", cl_lines, te_lines);
        break;
    case HTTP1_FRAME_NONE:
        FUZZ_CHECK(cl_lines == (have_length ? 1u : 0u) && te_lines == 0, "NONE: %zu CL, %zu TE",
                   cl_lines, te_lines);
        break;
    }
    FUZZ_CHECK(conn_lines == (!keep || minor == 0 ? 1u : 0u), "%zu Connection lines", conn_lines);
done:
    buf_free(out);
    for (size_t i = 0; i < nf; i++) {
        free(fields[i].name);
        free(fields[i].value);
    }
    return 0;
}
