/*
 * base64.h - base64 with the standard alphabet and padding, decoded exactly as Go's
 * encoding/base64 StdEncoding.DecodeString decodes, error index included (the runner's
 * write operation answers with Go's text: RUNNER-OPS.md 5.2).
 */
#ifndef CREDBROKER_BASE64_H
#define CREDBROKER_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Encoded length of n bytes (padded), without a NUL. */
#define BASE64_ENCODED_LEN(n) (4 * (((n) + 2) / 3))
/* Most bytes decoding n characters can give. */
#define BASE64_DECODED_MAX(n) ((n) / 4 * 3 + 3)

/* Writes the encoding of data[0..len) and a NUL to out (BASE64_ENCODED_LEN(len) + 1
 * bytes). Returns the encoded length. */
size_t base64_encode(const uint8_t *data, size_t len, char *out);

/*
 * Decodes in[0..len) into out (BASE64_DECODED_MAX(len) bytes) as Go's StdEncoding does:
 * '\r' and '\n' are skipped anywhere, padding is required, anything else outside the
 * alphabet, a short or misplaced padding, a partial last quantum or trailing data after
 * the padding fails. Returns 0 and *out_len, or -1 and *bad: the index Go's
 * CorruptInputError reports ("illegal base64 data at input byte N").
 */
int base64_decode_go(const char *in, size_t len, uint8_t *out, size_t *out_len, size_t *bad);

#endif
