/*
 * fuzz_shparse.c - shparse_parse (shparse.h), the bash parser behind the permission
 * rules (RUNNER-OPS.md 7.7).
 *
 * Input: the command, as bash -c would get it (the seeds in corpus/shparse/ are
 * plain commands). The same bytes also drive a second, generated command: words of
 * the letters a b c x y z, each written in one of bash's quotings (bare, '...',
 * "...", \ before each letter, $'...', $"...", or split in two differently quoted
 * halves), separated by blanks or line continuations.
 *
 * Properties, on the input: it returns; a success gives strings with no NUL and the
 * length they claim, a failure gives ERR_INVALID with "<line>:<col>: <message>"
 * whose line and column stand inside the input (or just past it) and no strings;
 * parsing again gives the same strings, kinds and flags, or the same error; and every
 * string is made of the input's own bytes (check_bytes_from_input). On the generated
 * command: exactly one string, a command with a literal name, equal to the
 * words joined by single spaces (none when there is no word): quoting never shows
 * through, and nothing else is found.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fuzz.h"
#include "shparse.h"

static void check_error(const uint8_t *data, size_t size, int rc, const char *err)
{
    unsigned long line = 0, col = 0, lines = 1, maxcol = 1, cur = 1;
    int used = 0;

    FUZZ_CHECK(rc == ERR_INVALID || rc == ERR_TOO_LARGE, "unexpected code %d", rc);
    if (rc != ERR_INVALID)
        return;
    FUZZ_CHECK(err[0] >= '1' && err[0] <= '9', "error without a position: %s", err);
    for (const char *c = err; *c >= '0' && *c <= '9'; c++, used++)
        line = line * 10 + (unsigned long)(*c - '0');
    FUZZ_CHECK(err[used] == ':', "error without line:col: %s", err);
    used++;
    for (const char *c = err + used; *c >= '0' && *c <= '9'; c++, used++)
        col = col * 10 + (unsigned long)(*c - '0');
    FUZZ_CHECK(err[used] == ':' && err[used + 1] == ' ' && err[used + 2] != '\0',
               "error not \"<line>:<col>: <message>\": %s", err);
    for (size_t i = 0; i < size; i++) {
        if (data[i] == '\n') {
            lines++;
            cur = 1;
        } else {
            cur++;
        }
        if (cur > maxcol)
            maxcol = cur;
    }
    FUZZ_CHECK(line >= 1 && line <= lines && col >= 1 && col <= maxcol,
               "error position %lu:%lu outside the input (%lu lines): %s", line, col, lines, err);
}

/*
 * Every checked string comes from the input by deletions only: quote removal, line
 * continuations, backslashes in backquotes and here-documents, <<- tabs, and redirect
 * operators reduced to their '>' all delete bytes, and words are joined by spaces. So a
 * string's bytes other than ' ' are a subsequence of the input. (In particular the
 * command name, the first word, occurs in the input after quote removal; a parser that
 * decoded an escape it should not, invented or reordered bytes, or read a name from the
 * wrong place would break this.) The one construct that makes bytes is $'...' (\x72 is
 * r): an input with "$'" in it is not checked. Cannot report a correct parse: every byte
 * of a correct string has its own byte in the input, in order.
 */
static void check_bytes_from_input(const uint8_t *data, size_t size, const struct shparse_item *it,
                                   size_t k)
{
    size_t at = 0;

    if (fuzz_contains(data, size, "$'", 2))
        return;
    for (size_t i = 0; i < it->len; i++) {
        if (it->text[i] == ' ')
            continue;
        while (at < size && data[at] != (uint8_t)it->text[i])
            at++;
        if (at == size) {
            fuzz_dump("string", it->text, it->len);
            FUZZ_CHECK(at < size,
                       "string %zu: byte %zu (0x%02x) is not in the input after the "
                       "bytes before it",
                       k, i, (unsigned)(unsigned char)it->text[i]);
        }
        at++;
    }
}

static void check_input(const uint8_t *data, size_t size)
{
    struct shparse_result a, b;
    char err_a[SHPARSE_ERR_MAX], err_b[SHPARSE_ERR_MAX];
    int ra = shparse_parse((const char *)data, size, &a, err_a, sizeof(err_a));
    int rb = shparse_parse((const char *)data, size, &b, err_b, sizeof(err_b));

    FUZZ_CHECK(ra == rb, "two parses disagree: %d, %d", ra, rb);
    if (ra != 0) {
        FUZZ_CHECK(a.n == 0 && a.items == NULL, "strings after a failure");
        FUZZ_CHECK(strcmp(err_a, err_b) == 0, "two errors: [%s] [%s]", err_a, err_b);
        if (memchr(data, '\0', size) == NULL)
            check_error(data, size, ra, err_a);
        return;
    }
    FUZZ_CHECK(memchr(data, '\0', size) == NULL, "a NUL byte accepted");
    FUZZ_CHECK(a.n == b.n, "two parses: %zu and %zu strings", a.n, b.n);
    for (size_t i = 0; i < a.n; i++) {
        FUZZ_CHECK(strlen(a.items[i].text) == a.items[i].len, "string %zu has a NUL", i);
        FUZZ_CHECK(a.items[i].len == b.items[i].len &&
                       memcmp(a.items[i].text, b.items[i].text, a.items[i].len) == 0 &&
                       a.items[i].kind == b.items[i].kind &&
                       a.items[i].literal_name == b.items[i].literal_name,
                   "string %zu differs between two parses: [%s] [%s]", i, a.items[i].text,
                   b.items[i].text);
        FUZZ_CHECK(a.items[i].kind <= SHPARSE_ARITH, "string %zu: kind %d", i, a.items[i].kind);
        check_bytes_from_input(data, size, &a.items[i], i);
    }
    shparse_result_free(&a);
    shparse_result_free(&b);
}

/* Appends s[0..n) to the growing buffer. */
static void put(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        *buf = realloc(*buf, *cap);
        FUZZ_CHECK(*buf != NULL, "out of memory");
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
}

/* One word w[0..n) in the quoting style chosen by q. */
static void quoted(char **buf, size_t *len, size_t *cap, const char *w, size_t n, unsigned q)
{
    size_t half = n / 2;

    switch (q % 7) {
    case 0:
        put(buf, len, cap, w, n);
        break;
    case 1:
        put(buf, len, cap, "'", 1);
        put(buf, len, cap, w, n);
        put(buf, len, cap, "'", 1);
        break;
    case 2:
        put(buf, len, cap, "\"", 1);
        put(buf, len, cap, w, n);
        put(buf, len, cap, "\"", 1);
        break;
    case 3:
        for (size_t i = 0; i < n; i++) {
            put(buf, len, cap, "\\", 1);
            put(buf, len, cap, w + i, 1);
        }
        break;
    case 4:
        put(buf, len, cap, "$'", 2);
        put(buf, len, cap, w, n);
        put(buf, len, cap, "'", 1);
        break;
    case 5:
        put(buf, len, cap, "$\"", 2);
        put(buf, len, cap, w, n);
        put(buf, len, cap, "\"", 1);
        break;
    default:
        put(buf, len, cap, "'", 1);
        put(buf, len, cap, w, half);
        put(buf, len, cap, "'\"", 2);
        put(buf, len, cap, w + half, n - half);
        put(buf, len, cap, "\"", 1);
        break;
    }
}

static void check_literal_words(const uint8_t *data, size_t size)
{
    static const char letters[] = "abcxyz";
    static const char *const blanks[] = {" ", "\t", "  ", " \\\n", "\\\n "};
    char *cmd = NULL, *want = NULL, word[64];
    size_t clen = 0, ccap = 0, wlen = 0, wcap = 0, n = 0;
    unsigned style = 0;
    struct shparse_result r;
    char err[SHPARSE_ERR_MAX];
    int rc;

    put(&cmd, &clen, &ccap, "", 0);
    put(&want, &wlen, &wcap, "", 0);
    for (size_t i = 0; i <= size; i++) {
        if (i < size && data[i] % 5 != 0 && n < sizeof(word)) {
            word[n++] = letters[(data[i] / 5) % 6];
            style += data[i];
            continue;
        }
        if (n == 0)
            continue;
        if (clen > 0)
            put(&cmd, &clen, &ccap, blanks[style % 5], strlen(blanks[style % 5]));
        quoted(&cmd, &clen, &ccap, word, n, style / 5);
        if (wlen > 0)
            put(&want, &wlen, &wcap, " ", 1);
        put(&want, &wlen, &wcap, word, n);
        n = 0;
        style = 0;
    }
    rc = shparse_parse(cmd, clen, &r, err, sizeof(err));
    if (rc != 0)
        fuzz_dump("command", cmd, clen);
    FUZZ_CHECK(rc == 0, "literal words refused: %s", err);
    if (wlen == 0) {
        FUZZ_CHECK(r.n == 0, "strings from no words");
    } else {
        if (r.n != 1 || strcmp(r.items[0].text, want) != 0) {
            fuzz_dump("command", cmd, clen);
            fuzz_dump("want", want, wlen);
            if (r.n > 0)
                fuzz_dump("got", r.items[0].text, r.items[0].len);
        }
        FUZZ_CHECK(r.n == 1, "%zu strings for one command", r.n);
        FUZZ_CHECK(strcmp(r.items[0].text, want) == 0, "words not joined by single spaces");
        FUZZ_CHECK(r.items[0].kind == SHPARSE_COMMAND && r.items[0].literal_name,
                   "not a command with a literal name");
    }
    shparse_result_free(&r);
    free(cmd);
    free(want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    check_input(data, size);
    check_literal_words(data, size);
    return 0;
}
