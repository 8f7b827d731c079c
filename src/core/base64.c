/*
 * base64.c - see base64.h. The decoder follows the structure of Go's decodeQuantum
 * (encoding/base64, not strict), since its error indices are part of the contract.
 */
#include <stdbool.h>

#include "base64.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encode(const uint8_t *data, size_t len, char *out)
{
    size_t i, j = 0;

    for (i = 0; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];

        out[j++] = alphabet[v >> 18 & 63];
        out[j++] = alphabet[v >> 12 & 63];
        out[j++] = alphabet[v >> 6 & 63];
        out[j++] = alphabet[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)data[i] << 16 | (i + 1 < len ? (uint32_t)data[i + 1] << 8 : 0);

        out[j++] = alphabet[v >> 18 & 63];
        out[j++] = alphabet[v >> 12 & 63];
        out[j++] = i + 1 < len ? alphabet[v >> 6 & 63] : '=';
        out[j++] = '=';
    }
    out[j] = '\0';
    return j;
}

/* The 6-bit value of c, or -1. */
static int value_of(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

static bool is_newline(char c)
{
    return c == '\n' || c == '\r';
}

/*
 * One quantum from in[*si..]: up to 4 characters, newlines skipped. Returns the bytes it
 * gives (0-3) with *si past it, or -1 with *bad set. *end: the input is used up.
 */
static int decode_quantum(const char *in, size_t len, size_t *si, uint8_t dst[3], size_t *bad,
                          bool *end)
{
    int dbuf[4] = {0, 0, 0, 0}, dlen = 4;

    *end = false;
    for (int j = 0; j < 4; j++) {
        unsigned char c;
        int v;

        if (*si == len) {
            if (j == 0) {
                *end = true;
                return 0;
            }
            *bad = *si - (size_t)j; /* a partial quantum: padding is required */
            return -1;
        }
        c = (unsigned char)in[(*si)++];
        if ((v = value_of(c)) >= 0) {
            dbuf[j] = v;
            continue;
        }
        if (is_newline((char)c)) {
            j--;
            continue;
        }
        if (c != '=' || j < 2) {
            *bad = *si - 1; /* not in the alphabet, or padding too early */
            return -1;
        }
        if (j == 2) { /* "==" expected: the first '=' is consumed */
            while (*si < len && is_newline(in[*si]))
                (*si)++;
            if (*si == len) {
                *bad = len; /* not enough padding */
                return -1;
            }
            if (in[*si] != '=') {
                *bad = *si - 1;
                return -1;
            }
            (*si)++;
        }
        while (*si < len && is_newline(in[*si]))
            (*si)++;
        if (*si < len) {
            *bad = *si; /* data after the padding */
            return -1;
        }
        dlen = j;
        *end = true;
        break;
    }
    {
        uint32_t val = (uint32_t)dbuf[0] << 18 | (uint32_t)dbuf[1] << 12 | (uint32_t)dbuf[2] << 6 |
                       (uint32_t)dbuf[3];

        dst[0] = (uint8_t)(val >> 16);
        dst[1] = (uint8_t)(val >> 8);
        dst[2] = (uint8_t)val;
    }
    return dlen - 1;
}

int base64_decode_go(const char *in, size_t len, uint8_t *out, size_t *out_len, size_t *bad)
{
    size_t si = 0, n = 0;

    *out_len = 0;
    *bad = 0;
    while (si < len) {
        bool end;
        int got = decode_quantum(in, len, &si, out + n, bad, &end);

        if (got < 0)
            return -1;
        n += (size_t)got;
        if (end)
            break;
    }
    *out_len = n;
    return 0;
}
