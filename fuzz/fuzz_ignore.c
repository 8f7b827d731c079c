/*
 * fuzz_ignore.c - the gitignore pattern sets (ignore.h) against properties that follow
 * from the gitignore and globset rules themselves, without a second matcher:
 *
 *   - any bytes: a line is added or refused (0, ERR_INVALID), never crashes, and a match
 *     is one of the three answers; a file holding the line (with a CRLF end) says what
 *     the line alone says;
 *   - "!" + p whitelists exactly what p ignores, and nothing else;
 *   - p + "/" matches no file, and a directory exactly as p does;
 *   - p without '/' matches at any depth: if it ignores x, it ignores "c/" + x; and
 *     "/" + p is p on a path of one component;
 *   - a letter written as a one-letter class ("a" -> "[a]") changes nothing: this sends
 *     the line from globset's literal shortcuts to the NFA and compares the two.
 *
 * Input: [flags][pattern length][pattern][path]. flags bit 0: the path is a directory;
 * bit 7: pattern and path are the raw bytes (only the first property), else both are
 * mapped onto small alphabets so the other properties meet real syntax often.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fuzz.h"
#include "ignore.h"

#define MAX_PATTERN 40
#define MAX_PATH 80

static const char pattern_alphabet[] = "ab/*?[]{},!^\\-. #c";
static const char path_alphabet[] = "ab/.c!#*- ";

/* The decision of one line (NULL: it did not compile) for path. */
static int one(const char *line, const char *path, bool is_dir)
{
    struct ignore_set *s = ignore_set_new();
    int r, m;

    FUZZ_CHECK(s != NULL, "out of memory");
    r = ignore_set_add_line(s, line, strlen(line));
    FUZZ_CHECK(r == 0 || r == ERR_INVALID, "add_line(%s) = %d", line, r);
    m = r == 0 ? (int)ignore_set_match(s, path, strlen(path), is_dir) : -1;
    ignore_set_free(s);
    return m;
}

/* The decision of two lines in this order (-1 when either does not compile). */
static int two(const char *a, const char *b, const char *path, bool is_dir)
{
    struct ignore_set *s = ignore_set_new();
    int m = -1;

    FUZZ_CHECK(s != NULL, "out of memory");
    if (ignore_set_add_line(s, a, strlen(a)) == 0 && ignore_set_add_line(s, b, strlen(b)) == 0)
        m = (int)ignore_set_match(s, path, strlen(path), is_dir);
    ignore_set_free(s);
    return m;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static void raw_checks(const char *line, size_t len, const char *path, size_t plen, bool is_dir)
{
    struct ignore_set *s = ignore_set_new(), *f = ignore_set_new();
    char *file = fuzz_malloc(len + 3);
    int r, m, mf;

    FUZZ_CHECK(s != NULL && f != NULL, "out of memory");
    r = ignore_set_add_line(s, line, len);
    FUZZ_CHECK(r == 0 || r == ERR_INVALID, "add_line = %d", r);
    m = (int)ignore_set_match(s, path, plen, is_dir);
    FUZZ_CHECK(m == IGNORE_NONE || m == IGNORE_IGNORE || m == IGNORE_WHITELIST, "match %d", m);
    FUZZ_CHECK(r == 0 || m == IGNORE_NONE, "a refused line matched");
    /* The same line in a file, ending in CRLF: a line holding '\n' is two lines there. */
    if (memchr(line, '\n', len) == NULL && (len == 0 || line[len - 1] != '\r')) {
        memcpy(file, line, len);
        memcpy(file + len, "\r\n", 2);
        FUZZ_CHECK(ignore_set_add_file(f, file, len + 2) == 0, "add_file failed");
        mf = (int)ignore_set_match(f, path, plen, is_dir);
        FUZZ_CHECK(mf == m, "file %d, line %d", mf, m);
    }
    free(file);
    ignore_set_free(s);
    ignore_set_free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char p[MAX_PATTERN + 1], path[MAX_PATH + 1], a[2 * MAX_PATTERN + 8], b[4 * MAX_PATTERN + 8];
    size_t plen, n = 0;
    bool is_dir;
    int m, m2;

    if (size < 2)
        return 0;
    is_dir = data[0] & 1;
    plen = data[1] % (MAX_PATTERN + 1);
    if (plen > size - 2)
        plen = size - 2;
    if (data[0] & 0x80) {
        raw_checks((const char *)data + 2, plen, (const char *)data + 2 + plen,
                   size - 2 - plen, is_dir);
        return 0;
    }
    for (size_t i = 0; i < plen; i++)
        p[i] = pattern_alphabet[data[2 + i] % (sizeof(pattern_alphabet) - 1)];
    p[plen] = '\0';
    for (size_t i = 2 + plen; i < size && n < MAX_PATH; i++)
        path[n++] = path_alphabet[data[i] % (sizeof(path_alphabet) - 1)];
    path[n] = '\0';
    /* Only the paths a walk gives: not empty, no empty component. */
    if (n == 0 || path[0] == '/' || path[n - 1] == '/' || strstr(path, "//") != NULL)
        return 0;
    raw_checks(p, plen, path, n, is_dir);
    m = one(p, path, is_dir);
    if (m < 0 || plen == 0 || p[0] == '!' || p[0] == '#' || is_space(p[plen - 1]))
        return 0;

    /* "!" + p: the whitelist of exactly what p ignores. */
    snprintf(a, sizeof(a), "!%s", p);
    m2 = two(p, a, path, is_dir);
    FUZZ_CHECK(m2 == (m == IGNORE_IGNORE ? IGNORE_WHITELIST : IGNORE_NONE),
               "\"%s\" then \"%s\" on %s: %d (alone %d)", p, a, path, m2, m);

    /* p + "/": directories only. */
    if (p[plen - 1] != '/' && p[plen - 1] != '\\') {
        snprintf(a, sizeof(a), "%s/", p);
        m2 = one(a, path, is_dir);
        if (m2 >= 0)
            FUZZ_CHECK(m2 == (is_dir ? m : IGNORE_NONE), "\"%s\" on %s %s: %d, \"%s\": %d", a,
                       is_dir ? "dir" : "file", path, m2, p, m);
    }

    /* No '/' at all (and no escape, which "\\!" and "\\#" read differently when moved). */
    if (strchr(p, '/') == NULL && strchr(p, '\\') == NULL) {
        char deeper[MAX_PATH + 8];

        snprintf(deeper, sizeof(deeper), "c/%s", path);
        if (m == IGNORE_IGNORE)
            FUZZ_CHECK(one(p, deeper, is_dir) == IGNORE_IGNORE, "\"%s\" ignores %s, not %s", p,
                       path, deeper);
        if (strchr(path, '/') == NULL) {
            snprintf(a, sizeof(a), "/%s", p);
            m2 = one(a, path, is_dir);
            FUZZ_CHECK(m2 == m, "\"%s\" on %s: %d, \"%s\": %d", a, path, m2, p, m);
        }
    }

    /* Letters as one-letter classes, outside classes, alternatives and escapes. */
    if (strpbrk(p, "[]{}\\") == NULL && strpbrk(p, "abc") != NULL) {
        size_t k = 0;

        for (size_t i = 0; i < plen; i++) {
            if (p[i] == 'a' || p[i] == 'b' || p[i] == 'c') {
                b[k++] = '[';
                b[k++] = p[i];
                b[k++] = ']';
            } else {
                b[k++] = p[i];
            }
        }
        b[k] = '\0';
        m2 = one(b, path, is_dir);
        FUZZ_CHECK(m2 == m, "\"%s\" on %s: %d, \"%s\": %d", b, path, m2, p, m);
    }
    return 0;
}
