/*
 * fuzz.h - what the harnesses in fuzz/ share: the libFuzzer entry point, a way
 * to fail a property loudly, a small generator for split points, and byte
 * classes written out again from the RFCs.
 *
 * Each harness asserts properties, not just "no crash": a broken property ends
 * the process with abort() and a message, which libFuzzer reports as a crash
 * and replay.c as a failed test. The byte classes here are deliberately not
 * src/core/ascii.h: a harness that judged the parser with the parser's own
 * tables would agree with every mistake in them.
 *
 * Not for: anything the product links. This is test code only.
 */
#ifndef CREDBROKER_FUZZ_H
#define CREDBROKER_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* libFuzzer's entry point, defined by each harness; replay.c calls it too. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Prints "file:line: property failed: cond: <message>" and aborts. */
void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 4, 5)));

/* Fails the run unless cond holds; the rest is a printf format and its arguments. */
#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                                     \
    } while (0)

/* Writes label and p[0..len) to stderr, escaped and cut at 400 bytes: context for a failure. */
void fuzz_dump(const char *label, const void *p, size_t len);

/*
 * A deterministic generator (splitmix64) seeded from the input itself, for
 * harnesses whose input must stay plain protocol bytes (fuzz_http1): every
 * mutation of the input also changes where it is split, and a reproducer file
 * replays exactly.
 */
struct fuzz_rng {
    uint64_t s;
};

void fuzz_rng_seed(struct fuzz_rng *r, const uint8_t *data, size_t len);
uint64_t fuzz_rng_next(struct fuzz_rng *r);
/* A value in [0, n); 0 when n is 0. */
size_t fuzz_rng_below(struct fuzz_rng *r, size_t n);

/*
 * Picks up to max_cuts cut points in (0, len), sorted and distinct, into cuts
 * (which has room for max_cuts); returns how many. Pieces are then
 * [0, cuts[0]), [cuts[0], cuts[1]), ..., [cuts[n-1], len).
 */
size_t fuzz_pick_cuts(struct fuzz_rng *r, size_t len, size_t *cuts, size_t max_cuts);

/* malloc(len), or abort(): a harness has no use for an allocation failure. */
void *fuzz_malloc(size_t len);

/* Returns a malloc'd copy of p[0..len) of exactly len bytes (ASan then catches any read past
 * it); aborts on allocation failure. Caller frees with free(). */
uint8_t *fuzz_dup(const void *p, size_t len);

/* p[0..len) as a C string: a malloc'd copy cut at its first NUL. Caller frees. */
char *fuzz_cstr(const uint8_t *p, size_t len);

/*
 * A path cleaned as Go's filepath.Clean(filepath.Join(root, p)) leaves it relative to the
 * root, written out again here as a stack: "" and "." segments dropped (a leading '/'
 * re-roots), ".." pops and may not pop the root. A malloc'd result ("" for the root
 * itself), or NULL when p climbs above the root. Caller frees.
 */
char *fuzz_clean_path(const char *p);

/*
 * Decodes the escapes the text corpora use (\r \n \0 \\ \xHH; any other
 * backslash pair stands for its second byte) from s[0..len) into dst, which has
 * room for len bytes. Returns the decoded length.
 */
size_t fuzz_unescape(const uint8_t *s, size_t len, uint8_t *dst);

/* RFC 9110 5.6.2 tchar. */
bool fuzz_is_tchar(unsigned char c);
/* RFC 3986 2.3 unreserved. */
bool fuzz_is_unreserved(unsigned char c);
/* The value of a hex digit, or -1. */
int fuzz_hex(unsigned char c);
/* ASCII case-insensitive equality of a[0..alen) and b[0..blen), or of a[0..alen) and
 * the NUL-terminated lit. */
bool fuzz_eq_ci_n(const void *a, size_t alen, const void *b, size_t blen);
bool fuzz_eq_ci(const void *a, size_t alen, const char *lit);
/* True if hay[0..hlen) contains needle[0..nlen) (nlen > 0). */
bool fuzz_contains(const void *hay, size_t hlen, const void *needle, size_t nlen);
/* A Content-Length value as the harnesses' own model reads it (RFC 9110 8.6: 1*DIGIT, no
 * sign, no space, no overflow): true and *out, or false. */
bool fuzz_parse_digits(const char *v, size_t len, uint64_t *out);
/* True if the comma-separated list v[0..len) has token (ASCII case-insensitively, OWS
 * trimmed): the harnesses' own model of a Connection value. */
bool fuzz_list_has(const char *v, size_t len, const char *token);
/* The same with token[0..tlen), not NUL-terminated (a field name from the input). */
bool fuzz_list_has_n(const char *v, size_t len, const char *token, size_t tlen);

#endif
