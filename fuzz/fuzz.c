/*
 * fuzz.c - helpers shared by the harnesses. See fuzz.h.
 *
 * Linked into every harness, both the libFuzzer binaries and the replay ones,
 * so a property fails the same way in both.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s:%d: property failed: %s: ", file, line, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    abort();
}

void fuzz_dump(const char *label, const void *p, size_t len)
{
    const unsigned char *s = p;
    size_t n = len < 400 ? len : 400;

    fprintf(stderr, "%s (%zu bytes): \"", label, len);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' || s[i] == '"')
            fprintf(stderr, "\\%c", s[i]);
        else if (s[i] >= 0x20 && s[i] < 0x7f)
            fputc(s[i], stderr);
        else
            fprintf(stderr, "\\x%02x", s[i]);
    }
    fprintf(stderr, "\"%s\n", n < len ? "..." : "");
}

void fuzz_rng_seed(struct fuzz_rng *r, const uint8_t *data, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */

    for (size_t i = 0; i < len; i++) {
        h ^= data[i];
        h *= 0x100000001b3ull;
    }
    r->s = h ^ (uint64_t)len;
}

uint64_t fuzz_rng_next(struct fuzz_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

size_t fuzz_rng_below(struct fuzz_rng *r, size_t n)
{
    return n == 0 ? 0 : (size_t)(fuzz_rng_next(r) % n);
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;

    return x < y ? -1 : x > y;
}

size_t fuzz_pick_cuts(struct fuzz_rng *r, size_t len, size_t *cuts, size_t max_cuts)
{
    size_t want, n = 0, k;

    if (len < 2 || max_cuts == 0)
        return 0;
    want = 1 + fuzz_rng_below(r, max_cuts);
    for (k = 0; k < want; k++) {
        /* Half of the cuts land near an earlier one: small pieces find more edge cases. */
        if (n > 0 && fuzz_rng_below(r, 2) == 0) {
            size_t near = cuts[fuzz_rng_below(r, n)] + 1 + fuzz_rng_below(r, 3);

            cuts[n++] = near < len ? near : 1 + fuzz_rng_below(r, len - 1);
        } else {
            cuts[n++] = 1 + fuzz_rng_below(r, len - 1);
        }
    }
    qsort(cuts, n, sizeof(cuts[0]), cmp_size);
    k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k == 0 || cuts[i] != cuts[k - 1])
            cuts[k++] = cuts[i];
    }
    return k;
}

void *fuzz_malloc(size_t len)
{
    void *p = malloc(len > 0 ? len : 1);

    if (p == NULL) {
        fprintf(stderr, "fuzz: out of memory\n");
        abort();
    }
    return p;
}

uint8_t *fuzz_dup(const void *p, size_t len)
{
    uint8_t *c = fuzz_malloc(len);

    if (len > 0)
        memcpy(c, p, len);
    return c;
}

char *fuzz_cstr(const uint8_t *p, size_t len)
{
    size_t n = p != NULL ? strnlen((const char *)p, len) : 0;
    char *s = fuzz_malloc(n + 1);

    if (n > 0)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

char *fuzz_clean_path(const char *p)
{
    char *out = fuzz_malloc(strlen(p) + 1);
    size_t n = 0;

    while (*p != '\0') {
        size_t c = strcspn(p, "/");

        if (c == 2 && p[0] == '.' && p[1] == '.') {
            char *slash;

            if (n == 0) {
                free(out);
                return NULL;
            }
            out[n] = '\0';
            slash = strrchr(out, '/');
            n = slash != NULL ? (size_t)(slash - out) : 0;
        } else if (c > 0 && !(c == 1 && p[0] == '.')) {
            if (n > 0)
                out[n++] = '/';
            memcpy(out + n, p, c);
            n += c;
        }
        p += c;
        while (*p == '/')
            p++;
    }
    out[n] = '\0';
    return out;
}

size_t fuzz_unescape(const uint8_t *s, size_t len, uint8_t *dst)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        if (s[i] != '\\' || i + 1 == len) {
            dst[n++] = s[i];
            continue;
        }
        i++;
        if (s[i] == 'r') {
            dst[n++] = '\r';
        } else if (s[i] == 'n') {
            dst[n++] = '\n';
        } else if (s[i] == '0') {
            dst[n++] = '\0';
        } else if (s[i] == 'x' && i + 2 < len && fuzz_hex(s[i + 1]) >= 0 &&
                   fuzz_hex(s[i + 2]) >= 0) {
            dst[n++] = (uint8_t)(fuzz_hex(s[i + 1]) << 4 | fuzz_hex(s[i + 2]));
            i += 2;
        } else {
            dst[n++] = s[i];
        }
    }
    return n;
}

bool fuzz_is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

bool fuzz_is_unreserved(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c == '-' || c == '.' || c == '_' || c == '~';
}

int fuzz_hex(unsigned char c)
{
    static const char digits[] = "0123456789abcdef";
    const char *p;

    if (c >= 'A' && c <= 'F')
        c = (unsigned char)(c - 'A' + 'a');
    if (c == '\0' || (p = strchr(digits, c)) == NULL)
        return -1;
    return (int)(p - digits);
}

bool fuzz_eq_ci_n(const void *a, size_t alen, const void *b, size_t blen)
{
    const unsigned char *s = a, *t = b;

    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++) {
        unsigned char x = s[i], y = t[i];

        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y - 'A' + 'a');
        if (x != y)
            return false;
    }
    return true;
}

bool fuzz_eq_ci(const void *a, size_t alen, const char *lit)
{
    return fuzz_eq_ci_n(a, alen, lit, strlen(lit));
}

bool fuzz_contains(const void *hay, size_t hlen, const void *needle, size_t nlen)
{
    return nlen > 0 && hlen >= nlen && memmem(hay, hlen, needle, nlen) != NULL;
}

bool fuzz_parse_digits(const char *v, size_t len, uint64_t *out)
{
    uint64_t n = 0;

    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned char)v[i] - (unsigned)'0';

        if (d > 9 || n > (UINT64_MAX - d) / 10)
            return false;
        n = n * 10 + d;
    }
    *out = n;
    return true;
}

bool fuzz_list_has(const char *v, size_t len, const char *token)
{
    return fuzz_list_has_n(v, len, token, strlen(token));
}

bool fuzz_list_has_n(const char *v, size_t len, const char *token, size_t tlen)
{
    size_t i = 0;

    while (i <= len) {
        size_t s = i, e;

        while (i < len && v[i] != ',')
            i++;
        e = i;
        while (s < e && (v[s] == ' ' || v[s] == '\t'))
            s++;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e > s && fuzz_eq_ci_n(v + s, e - s, token, tlen))
            return true;
        i++;
    }
    return false;
}
