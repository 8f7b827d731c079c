/*
 * gomatch.c - see gomatch.h. The structure is Go's: a pattern is chunks, each a run of
 * stars and then literal text and classes; a chunk is matched at every position where
 * the stars allow, and the last one at the end.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gomatch.h"

/* One character of s (UTF-8, or a single byte when s does not start a valid sequence):
 * its code point in *cp, its length returned (0 at the end). */
static size_t next_char(const char *s, uint32_t *cp)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n, i;
    uint32_t c, min;

    if (p[0] == 0)
        return 0;
    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    if (p[0] >= 0xC2 && p[0] <= 0xDF)
        n = 2, c = p[0] & 0x1F, min = 0x80;
    else if (p[0] >= 0xE0 && p[0] <= 0xEF)
        n = 3, c = p[0] & 0x0F, min = 0x800;
    else if (p[0] >= 0xF0 && p[0] <= 0xF4)
        n = 4, c = p[0] & 0x07, min = 0x10000;
    else
        goto bad;
    for (i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            goto bad;
        c = c << 6 | (p[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        goto bad;
    *cp = c;
    return n;
bad:
    *cp = 0xFFFD; /* Go's RuneError, one byte wide */
    return 1;
}

/* Go's getEsc: one character of a class at *pp (an escape honoured), which must not be
 * the last of the pattern. Returns false for a malformed class. */
static bool class_char(const char **pp, uint32_t *cp)
{
    const char *p = *pp;
    size_t n;

    if (*p == '\0' || *p == '-' || *p == ']')
        return false;
    if (*p == '\\' && *++p == '\0')
        return false;
    n = next_char(p, cp);
    if (*cp == 0xFFFD && n == 1 && (unsigned char)*p != 0xEF)
        return false; /* not UTF-8 */
    *pp = p + n;
    return **pp != '\0';
}

/*
 * Go's matchChunk: chunk (up to end) against the start of s. Returns the rest of s after
 * the match, or NULL; *bad for a malformed chunk (found even once the match has failed,
 * since the whole chunk is always read).
 */
static const char *match_chunk(const char *chunk, const char *end, const char *s, bool *bad)
{
    bool failed = false;

    while (chunk < end) {
        uint32_t c = 0, lo, hi;
        size_t n;

        if (!failed && *s == '\0')
            failed = true;
        switch (*chunk) {
        case '[': {
            bool negated = false, matched = false;
            int nranges = 0;

            if (!failed)
                s += next_char(s, &c);
            chunk++;
            if (*chunk == '^') {
                negated = true;
                chunk++;
            }
            for (;;) {
                if (*chunk == ']' && nranges > 0) {
                    chunk++;
                    break;
                }
                if (!class_char(&chunk, &lo)) {
                    *bad = true;
                    return NULL;
                }
                hi = lo;
                if (*chunk == '-' && !class_char((chunk++, &chunk), &hi)) {
                    *bad = true;
                    return NULL;
                }
                if (lo <= c && c <= hi)
                    matched = true;
                nranges++;
            }
            if (matched == negated)
                failed = true;
            break;
        }
        case '?':
            if (!failed) {
                if (*s == '/')
                    failed = true;
                n = next_char(s, &c);
                s += n;
            }
            chunk++;
            break;
        case '\\':
            if (++chunk >= end) {
                *bad = true;
                return NULL;
            }
            /* the escaped character, as a literal */
            __attribute__((fallthrough));
        default:
            if (!failed) {
                if (*chunk != *s)
                    failed = true;
                s++;
            }
            chunk++;
            break;
        }
    }
    return failed ? NULL : s;
}

/* The end of the chunk that starts at p (after its stars): the next unescaped '*', or the
 * end; '*' inside a class does not count. */
static const char *chunk_end(const char *p)
{
    bool in_class = false;

    for (; *p != '\0'; p++) {
        if (*p == '\\' && p[1] != '\0')
            p++;
        else if (*p == '[')
            in_class = true;
        else if (*p == ']')
            in_class = false;
        else if (*p == '*' && !in_class)
            break;
    }
    return p;
}

bool gomatch(const char *pattern, const char *name)
{
    const char *p = pattern, *s = name;

    while (*p != '\0') {
        bool star = false, bad = false;
        const char *end, *rest;

        while (*p == '*') {
            star = true;
            p++;
        }
        end = chunk_end(p);
        if (star && p == end)
            return strchr(s, '/') == NULL; /* a trailing star takes the rest */
        /* Without a star the chunk must match here; with one, at the first place it does
         * (the last chunk must end the name). */
        rest = match_chunk(p, end, s, &bad);
        if (bad)
            return false;
        if (rest != NULL && (*end != '\0' || *rest == '\0')) {
            s = rest;
            p = end;
            continue;
        }
        if (star) {
            bool found = false;

            for (size_t i = 0; s[i] != '\0' && s[i] != '/'; i++) {
                rest = match_chunk(p, end, s + i + 1, &bad);
                if (bad)
                    return false;
                if (rest != NULL && (*end != '\0' || *rest == '\0')) {
                    s = rest;
                    found = true;
                    break;
                }
            }
            if (found) {
                p = end;
                continue;
            }
        }
        /* No match: Go still reports a malformed pattern; either way, false. */
        return false;
    }
    return *s == '\0';
}
