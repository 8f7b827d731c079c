/*
 * ascii.h - byte classes of the HTTP grammar, locale-free (ctype.h depends on
 * the locale and takes int). Small enough to inline; one copy for every parser.
 */
#ifndef CREDBROKER_ASCII_H
#define CREDBROKER_ASCII_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline bool ascii_is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline bool ascii_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* RFC 9110 5.6.2: tchar, the bytes of a token: "!#$%&'*+-.^_`|~", DIGIT and ALPHA. A
 * bitmap, one bit per byte value: every header name byte is looked up here. */
static inline bool ascii_is_tchar(unsigned char c)
{
    static const uint64_t tchar[4] = {0x03ff6cfa00000000u, 0x57ffffffc7fffffeu, 0, 0};

    return (tchar[c >> 6] >> (c & 63)) & 1;
}

/* RFC 9110 5.5: the bytes of a field value, field-vchar, SP and HTAB, obs-text (>= 0x80)
 * included: everything but the controls other than HTAB, and DEL. */
static inline bool ascii_is_value_byte(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* True if every byte of p[0..n) is a field-value byte. Eight at a time: a word has a
 * byte below 0x20 iff (x - 0x20..) & ~x & 0x80.. is non-zero, one equal to DEL iff the
 * same holds below 0x01 for x ^ 0x7f..; a word that fails is judged byte by byte (HTAB). */
static inline bool ascii_all_value_bytes(const char *p, size_t n)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    size_t i = 0;

    for (; i + 8 <= n; i += 8) {
        uint64_t x, del;

        memcpy(&x, p + i, 8);
        del = x ^ (0x7f * ones);
        if ((((x - 0x20 * ones) & ~x) | ((del - ones) & ~del)) & highs) {
            for (size_t j = i; j < i + 8; j++) {
                if (!ascii_is_value_byte((unsigned char)p[j]))
                    return false;
            }
        }
    }
    for (; i < n; i++) {
        if (!ascii_is_value_byte((unsigned char)p[i]))
            return false;
    }
    return true;
}

/* The value of a hex digit, or -1. */
static inline int ascii_hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static inline unsigned char ascii_tolower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* ascii_tolower of eight bytes at once: a byte of x & 0x7f.. gets its high bit from
 * adding 0x80 - 'A' iff it is >= 'A', from adding 0x80 - 'Z' - 1 iff it is > 'Z' (no
 * carry crosses bytes); the two differ for 'A'..'Z' only, bytes >= 0x80 excluded. */
static inline uint64_t ascii_tolower8(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101u;
    uint64_t low7 = x & (0x7f * ones);
    uint64_t upper = ((low7 + (0x80 - 'A') * ones) ^ (low7 + (0x80 - 'Z' - 1) * ones)) & ~x &
                     (0x80 * ones);

    return x | (upper >> 2);
}

/* s[0..n) equals lower[0..n), lower-case, ASCII case-insensitively. Header names are
 * compared on every request: eight bytes at a time, the last eight overlapping. */
static inline bool ascii_ieq_lower_n(const char *s, const char *lower, size_t n)
{
    uint64_t a, b;
    size_t i = 0;

    if (n < 8) {
        for (; i < n; i++) {
            if (ascii_tolower((unsigned char)s[i]) != (unsigned char)lower[i])
                return false;
        }
        return true;
    }
    for (; i + 8 <= n; i += 8) {
        memcpy(&a, s + i, 8);
        memcpy(&b, lower + i, 8);
        if (ascii_tolower8(a) != b)
            return false;
    }
    if (i == n)
        return true;
    memcpy(&a, s + n - 8, 8);
    memcpy(&b, lower + n - 8, 8);
    return ascii_tolower8(a) == b;
}

/* s[0..len) equals the lower-case literal lower, ASCII case-insensitively. */
static inline bool ascii_ieq_lower(const char *s, size_t len, const char *lower)
{
    return strlen(lower) == len && ascii_ieq_lower_n(s, lower, len);
}

#endif
