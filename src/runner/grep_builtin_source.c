/*
 * grep_builtin_source.c - a file's bytes as rg 13's searcher reads them (encoding_rs_io's
 * BOM sniffing): a UTF-8 BOM stripped, UTF-16 (by its BOM) transcoded to UTF-8 with an
 * unpaired surrogate as U+FFFD, anything else as it is. See grep_builtin_internal.h.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "grep_builtin_internal.h"
#include "utf8.h"

static ssize_t read_retry(int fd, void *buf, size_t len)
{
    ssize_t n;

    while ((n = read(fd, buf, len)) < 0 && errno == EINTR)
        ;
    return n;
}

/* Fills raw with more of a UTF-16 file. Returns the bytes now available, 0 at EOF, -1. */
static ssize_t utf16_more(struct grep_source *s)
{
    ssize_t n;

    if (s->raw_off < s->raw_len)
        return (ssize_t)(s->raw_len - s->raw_off);
    if (s->eof)
        return 0;
    /* (an odd byte kept from the previous read goes first) */
    s->raw_len = 0;
    s->raw_off = 0;
    if ((n = read_retry(s->fd, s->raw, sizeof(s->raw))) < 0)
        return -1;
    if (n == 0)
        s->eof = true;
    s->raw_len = (size_t)n;
    return n;
}

/* The next character of a UTF-16 file, as encoding_rs decodes it (an unpaired surrogate
 * or a last odd byte is U+FFFD). Returns 1 and *c, 0 at the end, -1 on a read error. */
static int utf16_next(struct grep_source *s, uint32_t *c)
{
    for (;;) {
        unsigned char b[2];
        uint32_t unit;
        ssize_t avail;

        if (s->pushback != UINT32_MAX) {
            unit = s->pushback;
            s->pushback = UINT32_MAX;
            goto have_unit;
        }
        if ((avail = utf16_more(s)) < 0)
            return -1;
        if (avail == 0) {
            if (s->high != 0) {
                s->high = 0;
                *c = 0xFFFD;
                return 1;
            }
            return 0;
        }
        b[0] = s->raw[s->raw_off++];
        if ((avail = utf16_more(s)) < 0)
            return -1;
        if (avail == 0) {
            s->high = 0;
            *c = 0xFFFD; /* an odd byte at the end (a waiting surrogate goes with it) */
            return 1;
        }
        b[1] = s->raw[s->raw_off++];
        unit = s->big_endian ? (uint32_t)b[0] << 8 | b[1] : (uint32_t)b[1] << 8 | b[0];
    have_unit:
        if (s->high != 0) {
            uint32_t high = s->high;

            s->high = 0;
            if (unit >= 0xDC00 && unit <= 0xDFFF) {
                *c = 0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00);
                return 1;
            }
            /* The unpaired high surrogate; this unit is read again next time. */
            s->pushback = unit;
            *c = 0xFFFD;
            return 1;
        }
        if (unit >= 0xD800 && unit <= 0xDBFF) {
            s->high = unit;
            continue;
        }
        *c = unit >= 0xDC00 && unit <= 0xDFFF ? 0xFFFD : unit;
        return 1;
    }
}

/* Decodes into out[0..len). */
static ssize_t utf16_read(struct grep_source *s, unsigned char *out, size_t len)
{
    size_t n = 0;

    while (n < len) {
        uint32_t c;
        int r;

        if (s->pending_off < s->npending) {
            out[n++] = s->pending[s->pending_off++];
            continue;
        }
        if (n > 0 && s->raw_off >= s->raw_len && !s->eof)
            break; /* what is decoded so far, rather than another read */
        if ((r = utf16_next(s, &c)) < 0)
            return n > 0 ? (ssize_t)n : -1;
        if (r == 0)
            break;
        s->npending = utf8_encode(c, s->pending);
        s->pending_off = 0;
    }
    return (ssize_t)n;
}

/* read(2) as rg sees the file: the first call peeks at up to three bytes for a BOM and
 * hands back just those (encoding_rs_io's BomPeeker), or strips a UTF-8 BOM, or switches
 * to decoding UTF-16 (its BOM stripped). */
ssize_t grep__source_read(struct grep_source *s, unsigned char *buf, size_t len)
{
    if (!s->started) {
        ssize_t n;

        s->started = true;
        while (s->npeek < GB_BOM_PEEK) {
            if ((n = read_retry(s->fd, s->peek + s->npeek, GB_BOM_PEEK - s->npeek)) < 0)
                return -1;
            if (n == 0)
                break;
            s->npeek += (size_t)n;
        }
        if (s->npeek == 3 && memcmp(s->peek, "\xEF\xBB\xBF", 3) == 0) {
            s->npeek = 0;
        } else if (s->npeek >= 2 && (memcmp(s->peek, "\xFF\xFE", 2) == 0 ||
                                     memcmp(s->peek, "\xFE\xFF", 2) == 0)) {
            s->utf16 = true;
            s->pushback = UINT32_MAX;
            s->big_endian = s->peek[0] == 0xFE;
            memcpy(s->raw, s->peek + 2, s->npeek - 2);
            s->raw_len = s->npeek - 2;
            s->npeek = 0;
        }
    }
    if (s->utf16)
        return utf16_read(s, buf, len);
    if (s->peek_off < s->npeek) {
        size_t k = s->npeek - s->peek_off < len ? s->npeek - s->peek_off : len;

        memcpy(buf, s->peek + s->peek_off, k);
        s->peek_off += k;
        return (ssize_t)k;
    }
    return read_retry(s->fd, buf, len);
}
