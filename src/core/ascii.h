/*
 * ascii.h - byte classes of the HTTP grammar, locale-free (ctype.h depends on
 * the locale and takes int). Small enough to inline; one copy for every parser.
 */
#ifndef CREDBROKER_ASCII_H
#define CREDBROKER_ASCII_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

static inline bool ascii_is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline bool ascii_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* RFC 9110 5.6.2: tchar, the bytes of a token. */
static inline bool ascii_is_tchar(unsigned char c)
{
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
        return true;
    default:
        return ascii_is_alpha(c) || ascii_is_digit(c);
    }
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

/* s[0..len) equals the lower-case literal lower, ASCII case-insensitively. */
static inline bool ascii_ieq_lower(const char *s, size_t len, const char *lower)
{
    if (strlen(lower) != len)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (ascii_tolower((unsigned char)s[i]) != (unsigned char)lower[i])
            return false;
    }
    return true;
}

#endif
