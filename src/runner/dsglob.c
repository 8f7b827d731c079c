/*
 * dsglob.c - see dsglob.h.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dsglob.h"

/* Length of the UTF-8 character at s (1 for a byte that does not start a valid one). */
static size_t char_len(const char *s, uint32_t *cp)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n;
    uint32_t c;

    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    n = p[0] >= 0xF0 && p[0] <= 0xF4 ? 4 : p[0] >= 0xE0 ? 3 : p[0] >= 0xC2 ? 2 : 0;
    if (n == 0 || p[0] > 0xF4)
        goto bad;
    c = p[0] & (0x7F >> n);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            goto bad;
        c = c << 6 | (p[i] & 0x3F);
    }
    *cp = c;
    return n;
bad:
    *cp = p[0];
    return 1;
}

/* The end of the class that starts at p ('['): the index just past its ']', or 0. */
static size_t class_end(const char *p)
{
    size_t i = 1;

    if (p[i] == '^' || p[i] == '!')
        i++;
    if (p[i] == ']')
        return 0; /* an empty class is malformed, as in doublestar */
    for (; p[i] != '\0'; i++) {
        if (p[i] == '\\' && p[i + 1] != '\0')
            i++;
        else if (p[i] == ']')
            return i + 1;
    }
    return 0;
}

/* The end of the alternatives that start at p ('{'): the index of the matching '}', or 0. */
static size_t alts_end(const char *p)
{
    int depth = 0;

    for (size_t i = 0; p[i] != '\0'; i++) {
        if (p[i] == '\\' && p[i + 1] != '\0')
            i++;
        else if (p[i] == '[' && class_end(p + i) != 0)
            i += class_end(p + i) - 1;
        else if (p[i] == '{')
            depth++;
        else if (p[i] == '}' && --depth == 0)
            return i;
    }
    return 0;
}

bool dsglob_valid(const char *p)
{
    for (size_t i = 0; p[i] != '\0'; i++) {
        if (p[i] == '\\') {
            if (p[i + 1] == '\0')
                return false;
            i++;
        } else if (p[i] == '[') {
            size_t e = class_end(p + i);

            if (e == 0)
                return false;
            i += e - 1;
        } else if (p[i] == '{' && alts_end(p + i) == 0) {
            return false;
        }
    }
    return true;
}

/* One class [..] at p (well formed) against the character at s. */
static bool class_match(const char *p, const char *s, size_t *consumed)
{
    size_t i = 1, n;
    uint32_t c, lo, hi;
    bool negated = false, hit = false;

    n = char_len(s, &c);
    *consumed = n;
    if (p[i] == '^' || p[i] == '!') {
        negated = true;
        i++;
    }
    while (p[i] != ']') {
        if (p[i] == '\\')
            i++;
        i += char_len(p + i, &lo);
        hi = lo;
        if (p[i] == '-' && p[i + 1] != ']' && p[i + 1] != '\0') {
            i++;
            if (p[i] == '\\')
                i++;
            i += char_len(p + i, &hi);
        }
        if (lo <= c && c <= hi)
            hit = true;
    }
    return hit != negated;
}

static int match(const char *p, const char *s, bool seg_start, unsigned long *budget);

/* p is at a '{': each alternative, with the rest of the pattern after the '}', against s. */
static int match_alts(const char *p, const char *s, unsigned long *budget)
{
    size_t end = alts_end(p), start = 1, rest_len = strlen(p + end + 1);
    int depth = 0;

    for (size_t i = 1; i <= end; i++) {
        int r;

        if (p[i] == '\\' && i + 1 < end) {
            i++;
            continue;
        }
        if (p[i] == '[' && class_end(p + i) != 0) {
            i += class_end(p + i) - 1;
            continue;
        }
        if (p[i] == '{')
            depth++;
        else if (p[i] == '}' && depth > 0 && i != end)
            depth--;
        if (!((p[i] == ',' && depth == 0) || i == end))
            continue;
        {
            size_t alen = i - start;
            char *alt = malloc(alen + rest_len + 1);

            if (alt == NULL)
                return -1;
            memcpy(alt, p + start, alen);
            memcpy(alt + alen, p + end + 1, rest_len + 1);
            /* Each alternative starts afresh, as doublestar matches it: a '**' at its start
             * is a whole segment whatever came before the '{'. */
            r = match(alt, s, true, budget);
            free(alt);
        }
        if (r != 0)
            return r;
        start = i + 1;
    }
    return 0;
}

static int match(const char *p, const char *s, bool seg_start, unsigned long *budget)
{
    for (;;) {
        size_t n;
        uint32_t c;

        if (*budget == 0)
            return -1;
        (*budget)--;
        if (*p == '\0')
            return *s == '\0';
        if (seg_start && p[0] == '*' && p[1] == '*' && (p[2] == '/' || p[2] == '\0')) {
            const char *rest = p[2] == '/' ? p + 3 : p + 2;
            int r;

            if (p[2] == '\0')
                return 1; /* any depth, the directory itself included */
            if ((r = match(rest, s, true, budget)) != 0)
                return r;
            for (const char *q = s; *q != '\0'; q++) {
                if (*q == '/' && (r = match(rest, q + 1, true, budget)) != 0)
                    return r;
            }
            return 0;
        }
        /* A trailing slash and doublestar match the directory itself: zero levels. */
        if (p[0] == '/' && p[1] == '*' && p[2] == '*' && p[3] == '\0' && *s == '\0')
            return 1;
        switch (*p) {
        case '*': {
            const char *q = s;

            while (*p == '*')
                p++;
            for (;;) {
                int r = match(p, q, seg_start && q == s, budget);

                if (r != 0)
                    return r;
                if (*q == '\0' || *q == '/')
                    return 0;
                q += char_len(q, &c);
            }
        }
        case '?':
            if (*s == '\0' || *s == '/')
                return 0;
            s += char_len(s, &c);
            p++;
            seg_start = false;
            continue;
        case '[': {
            size_t e = class_end(p);

            if (e == 0)
                goto literal; /* (dsglob_valid refused it) */
            if (*s == '\0' || *s == '/' || !class_match(p, s, &n))
                return 0;
            s += n;
            p += e;
            seg_start = false;
            continue;
        }
        case '{':
            if (alts_end(p) == 0)
                goto literal;
            return match_alts(p, s, budget);
        case '\\':
            if (p[1] != '\0')
                p++;
            /* the escaped character, as a literal */
            __attribute__((fallthrough));
        default:
        literal:
            if (*p != *s)
                return 0;
            seg_start = *p == '/';
            p++;
            s++;
            continue;
        }
    }
}

int dsglob_match(const char *pattern, const char *path)
{
    unsigned long budget = DSGLOB_BUDGET;

    return match(pattern, path, true, &budget);
}
