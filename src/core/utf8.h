/*
 * utf8.h - one UTF-8 character at a time, strictly (the Unicode Standard's Table 3-7: no
 * overlong forms, no surrogates, nothing over U+10FFFF), for the modules that walk text
 * by characters: the built-in grep's pattern translator, its ignore globs and its UTF-16
 * transcoding; and which characters are white space. Invalid UTF-8 in JSON output is proto_utf8_sanitize's business (proto.h).
 */
#ifndef CREDBROKER_UTF8_H
#define CREDBROKER_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UTF8_MAX 4 /* bytes of the longest character */

/* The character at s[0..len) (len > 0): its length in bytes and *cp, or 0 when the bytes
 * there are not a well-formed character. */
size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp);

/* Writes code point c (at most U+10FFFF) to out (room for UTF8_MAX bytes); returns its
 * length. */
size_t utf8_encode(uint32_t c, unsigned char *out);

/* Whether c is White_Space (Unicode's property, Rust's char::is_whitespace): what rg's
 * patterns skip in x mode and what a gitignore line's trailing blanks are. */
static inline bool utf8_is_white_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

#endif
