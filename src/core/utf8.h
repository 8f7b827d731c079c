/*
 * utf8.h - one UTF-8 character at a time, strictly (the Unicode Standard's Table 3-7: no
 * overlong forms, no surrogates, nothing over U+10FFFF), for the modules that walk text
 * by characters: the built-in grep's pattern translator, its ignore globs and its UTF-16
 * transcoding. Invalid UTF-8 in JSON output is proto_utf8_sanitize's business (proto.h).
 */
#ifndef CREDBROKER_UTF8_H
#define CREDBROKER_UTF8_H

#include <stddef.h>
#include <stdint.h>

#define UTF8_MAX 4 /* bytes of the longest character */

/* The character at s[0..len) (len > 0): its length in bytes and *cp, or 0 when the bytes
 * there are not a well-formed character. */
size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp);

/* Writes code point c (at most U+10FFFF) to out (room for UTF8_MAX bytes); returns its
 * length. */
size_t utf8_encode(uint32_t c, unsigned char *out);

#endif
