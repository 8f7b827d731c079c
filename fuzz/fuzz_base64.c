/*
 * fuzz_base64.c - base64_decode_go (base64.h): Go's StdEncoding decoding, which the
 * write operation applies to content from the platform.
 *
 * Input: the text to decode (and, as bytes, data to encode).
 *
 * Properties: encoding then decoding any input gives it back; a decoded text is, without
 * its CR and LF, a multiple of 4 characters of the alphabet with at most two '=' at the
 * end, and re-encoding its output decodes to the same bytes; a failure's index is within
 * the text and no later than the first character outside the alphabet, '=', CR and LF.
 */
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "fuzz.h"

static bool in_alphabet(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(BASE64_ENCODED_LEN(size) + 1);
    uint8_t *out = malloc(BASE64_DECODED_MAX(BASE64_ENCODED_LEN(size)) + 1);
    uint8_t *again = malloc(BASE64_DECODED_MAX(BASE64_ENCODED_LEN(size)) + 1);
    size_t tlen, n, bad, n2, stripped = 0, pads = 0, first_foreign = size;

    FUZZ_CHECK(text != NULL && out != NULL && again != NULL, "out of memory");
    tlen = base64_encode(data, size, text);
    FUZZ_CHECK(base64_decode_go(text, tlen, out, &n, &bad) == 0 && n == size &&
               memcmp(out, data, size) == 0, "encode then decode differs");

    for (size_t i = 0; i < size; i++) {
        unsigned char c = data[i];

        if (c == '\r' || c == '\n')
            continue;
        if (!in_alphabet(c) && c != '=' && first_foreign == size)
            first_foreign = i;
        stripped++;
    }
    if (base64_decode_go((const char *)data, size, out, &n, &bad) == 0) {
        size_t seen = 0;

        FUZZ_CHECK(stripped % 4 == 0, "%zu characters decoded", stripped);
        for (size_t i = 0; i < size; i++) {
            unsigned char c = data[i];

            if (c == '\r' || c == '\n')
                continue;
            seen++;
            if (c == '=')
                pads++;
            else
                FUZZ_CHECK(in_alphabet(c) && pads == 0, "0x%02x at %zu decoded", c, i);
        }
        FUZZ_CHECK(pads <= 2 && seen == stripped, "%zu padding characters", pads);
        FUZZ_CHECK(n == stripped / 4 * 3 - pads, "%zu bytes from %zu characters", n, stripped);
        tlen = base64_encode(out, n, text);
        FUZZ_CHECK(base64_decode_go(text, tlen, again, &n2, &bad) == 0 && n2 == n &&
                   memcmp(again, out, n) == 0, "re-encoded output decodes otherwise");
    } else {
        FUZZ_CHECK(bad <= size, "index %zu past %zu", bad, size);
        FUZZ_CHECK(bad <= first_foreign, "index %zu after the foreign byte at %zu", bad,
                   first_foreign);
    }
    free(text);
    free(out);
    free(again);
    return 0;
}
