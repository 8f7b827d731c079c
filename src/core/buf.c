/*
 * buf.c - owned, capped byte buffers. See buf.h.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"

struct buf {
    uint8_t *d;
    size_t off;   /* first unread byte */
    size_t len;   /* bytes from off */
    size_t alloc; /* size of d */
    size_t max;   /* never hold more than this */
    unsigned flags;
};

struct buf *buf_new(size_t max, unsigned flags)
{
    struct buf *b = calloc(1, sizeof(*b));

    if (b == NULL)
        return NULL;
    b->max = max;
    b->flags = flags;
    return b;
}

void buf_free(struct buf *b)
{
    if (b == NULL)
        return;
    if (b->d != NULL && (b->flags & BUF_WIPE))
        explicit_bzero(b->d, b->alloc);
    free(b->d);
    explicit_bzero(b, sizeof(*b));
    free(b);
}

void buf_reset(struct buf *b)
{
    if (b->d != NULL && (b->flags & BUF_WIPE))
        explicit_bzero(b->d, b->alloc);
    b->off = 0;
    b->len = 0;
}

void buf_reset_keep(struct buf *b, size_t keep)
{
    buf_reset(b);
    if (b->alloc > keep) {
        free(b->d);
        b->d = NULL;
        b->alloc = 0;
    }
}

size_t buf_len(const struct buf *b)
{
    return b->len;
}
size_t buf_max(const struct buf *b)
{
    return b->max;
}
const uint8_t *buf_ptr(const struct buf *b)
{
    return b->d == NULL ? (const uint8_t *)"" : b->d + b->off;
}
uint8_t *buf_mutable_ptr(struct buf *b)
{
    return b->d + b->off;
}

/* Makes room for len more bytes (+1 for a terminating NUL that buf_cstr may place). */
static int buf__make_room(struct buf *b, size_t len)
{
    size_t need, nalloc;
    uint8_t *nd;

    if (len > b->max || b->max - len < b->len)
        return ERR_TOO_LARGE;
    need = b->len + len + 1;
    if (b->off + need <= b->alloc)
        return 0;
    if (need <= b->alloc) {
        /* Enough space if we slide the unread bytes to the front. */
        memmove(b->d, b->d + b->off, b->len);
        if (b->flags & BUF_WIPE)
            explicit_bzero(b->d + b->len, b->alloc - b->len);
        b->off = 0;
        return 0;
    }
    nalloc = b->alloc < 256 ? 256 : b->alloc;
    while (nalloc < need)
        nalloc = nalloc > SIZE_MAX / 2 ? need : nalloc * 2;
    if (b->flags & BUF_WIPE) {
        /* realloc could leave a copy of a secret behind in freed memory. */
        nd = malloc(nalloc);
        if (nd == NULL)
            return ERR_NOMEM;
        if (b->len > 0)
            memcpy(nd, b->d + b->off, b->len);
        if (b->d != NULL) {
            explicit_bzero(b->d, b->alloc);
            free(b->d);
        }
    } else {
        if (b->off > 0) {
            memmove(b->d, b->d + b->off, b->len);
        }
        nd = realloc(b->d, nalloc);
        if (nd == NULL)
            return ERR_NOMEM;
    }
    b->d = nd;
    b->off = 0;
    b->alloc = nalloc;
    return 0;
}

/* Room for len more bytes and the NUL past them, at the end as it is, within max: the
 * common case, checked without a call (a small request's heads make about 50 appends). */
static inline bool buf__fits(const struct buf *b, size_t len)
{
    return len < b->alloc - b->off - b->len && len <= b->max - b->len;
}

int buf_reserve(struct buf *b, size_t len, uint8_t **dst)
{
    int r;

    *dst = NULL;
    if (!buf__fits(b, len) && (r = buf__make_room(b, len)) != 0)
        return r;
    *dst = b->d + b->off + b->len;
    return 0;
}

void buf_commit(struct buf *b, size_t len)
{
    b->len += len;
}

int buf_put(struct buf *b, const void *data, size_t len)
{
    uint8_t *dst;
    int r;

    if (len == 0)
        return 0;
    if (buf__fits(b, len))
        dst = b->d + b->off + b->len;
    else if ((r = buf_reserve(b, len, &dst)) != 0)
        return r;
    memcpy(dst, data, len);
    b->len += len;
    return 0;
}

int buf_put_str(struct buf *b, const char *s)
{
    return buf_put(b, s, strlen(s));
}

int buf_put_u64(struct buf *b, uint64_t v)
{
    char digits[20];
    size_t n = sizeof(digits);

    do {
        digits[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    return buf_put(b, digits + n, sizeof(digits) - n);
}

int buf_putf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int n, r;
    uint8_t *dst;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return ERR_INVALID;
    if ((r = buf_reserve(b, (size_t)n, &dst)) != 0)
        return r;
    va_start(ap, fmt);
    vsnprintf((char *)dst, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int buf_consume(struct buf *b, size_t len)
{
    if (len > b->len)
        return ERR_INVALID;
    if (len == 0)
        return 0;
    if (b->flags & BUF_WIPE)
        explicit_bzero(b->d + b->off, len);
    b->off += len;
    b->len -= len;
    if (b->len == 0)
        b->off = 0;
    return 0;
}

const char *buf_cstr(struct buf *b)
{
    if (b->d == NULL && buf__make_room(b, 0) != 0)
        return NULL;
    /* buf__make_room always leaves one spare byte past the data. */
    b->d[b->off + b->len] = '\0';
    return (const char *)b->d + b->off;
}
