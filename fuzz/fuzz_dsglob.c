/*
 * fuzz_dsglob.c - the glob matcher (dsglob.h) against a reference written here from the
 * doublestar rules: the pattern's alternatives expanded first, each expansion translated
 * to a POSIX extended regular expression ('**' as a whole segment: any number of
 * directories, zero included; '*' and '?' never '/'; a class of its members), and the
 * path matched with regexec, anchored.
 *
 * Input: [pattern length][pattern, mapped onto a small alphabet][path, mapped likewise].
 * The class members are letters, so neither side has to decide about '/' or escapes in a
 * class; paths are ASCII, so '?' is one byte on both sides.
 *
 * Properties: a well-formed pattern (dsglob_valid) matches exactly the paths the
 * reference does, unless the step budget ran out (-1), it escapes a '/' or has a star
 * after a '**' (cases the reference does not model); an ill-formed one never crashes.
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsglob.h"
#include "fuzz.h"

#define MAX_PATTERN 24
#define MAX_EXPANSIONS 64

static const char pattern_alphabet[] = "ab/*?[]{},^!\\.-c";
static const char path_alphabet[] = "ab/.c*}";

struct strs {
    char v[MAX_EXPANSIONS][256];
    int n;
};

/* The index of the '}' closing the '{' at p[0], or -1 (then the '{' is literal). */
static int closing(const char *p)
{
    int depth = 0;

    for (int i = 0; p[i] != '\0'; i++) {
        if (p[i] == '\\' && p[i + 1] != '\0')
            i++;
        else if (p[i] == '[') {
            while (p[i] != '\0' && p[i] != ']')
                i++;
            if (p[i] == '\0')
                return -1;
        } else if (p[i] == '{')
            depth++;
        else if (p[i] == '}' && --depth == 0)
            return i;
    }
    return -1;
}

/* Expands the first top-level alternatives of p into out (recursively). False when there
 * would be too many. */
static bool expand(const char *p, struct strs *out)
{
    for (int i = 0; p[i] != '\0'; i++) {
        int end, start, depth = 0;

        if (p[i] == '\\' && p[i + 1] != '\0') {
            i++;
            continue;
        }
        if (p[i] == '[') {
            while (p[i] != '\0' && p[i] != ']')
                i++;
            continue;
        }
        if (p[i] != '{' || (end = closing(p + i)) < 0)
            continue;
        end += i;
        start = i + 1;
        for (int k = i + 1; k <= end; k++) {
            char alt[256];

            if (p[k] == '\\' && k + 1 < end) {
                k++;
                continue;
            }
            if (p[k] == '[') {
                while (k < end && p[k] != ']')
                    k++;
                continue;
            }
            if (p[k] == '{')
                depth++;
            else if (p[k] == '}' && k != end)
                depth--;
            if (!((p[k] == ',' && depth == 0) || k == end))
                continue;
            /* Marks around the alternative: \1 where it starts (doublestar matches it
             * afresh: a segment starts there), \2 where it ends (its text and the rest
             * run together there). Two stars brought together across a \1 are no '**'. */
            snprintf(alt, sizeof(alt), "%.*s\1%.*s\2%s", i, p, k - start, p + start,
                     p + end + 1);
            if (!expand(alt, out))
                return false;
            start = k + 1;
        }
        return true;
    }
    if (out->n == MAX_EXPANSIONS)
        return false;
    snprintf(out->v[out->n++], sizeof(out->v[0]), "%s", p);
    return true;
}

static bool too_long; /* the reference's regex outgrew its buffer: the input is skipped */

static void put(char *re, size_t *n, const char *s)
{
    size_t len = strlen(s);

    if (too_long || *n + len >= 2048) {
        too_long = true;
        return;
    }
    memcpy(re + *n, s, len + 1);
    *n += len;
}

/* The character before i, end marks skipped; '/' where a segment starts (the pattern's
 * start, an alternative's). */
static char before(const char *p, int i)
{
    while (i > 0 && p[i - 1] == '\2')
        i--;
    return i == 0 || p[i - 1] == '\1' ? '/' : p[i - 1];
}

/* Whether a real '/' (not an alternative's start) comes before i, end marks skipped. */
static bool after_slash(const char *p, int i)
{
    while (i > 0 && p[i - 1] == '\2')
        i--;
    return i > 0 && p[i - 1] == '/';
}

/* The index of the first character at or after i that is not an end mark. */
static int skip_marks(const char *p, int i)
{
    while (p[i] == '\2')
        i++;
    return i;
}

/* One expansion (no alternatives left) as an ERE fragment. */
static void translate(const char *p, char *re, size_t *n)
{
    for (int i = 0; p[i] != '\0'; i++) {
        bool seg = before(p, i) == '/', at_start = true;
        char lit[4] = {'\\', 0, 0, 0};
        int after;

        for (int k = 0; k < i; k++)
            at_start = at_start && (p[k] == '\1' || p[k] == '\2');
        if (p[i] == '\1' || p[i] == '\2')
            continue;
        /* Two stars with only end marks between run together into a '**' (doublestar
         * matches an alternative with the rest of the pattern joined to it). */
        after = skip_marks(p, i + 1);
        after = p[i] == '*' && p[after] == '*' ? skip_marks(p, after + 1) : 0;
        if (seg && after != 0 && (p[after] == '/' || p[after] == '\0')) {
            if (p[after] == '/') {
                put(re, n, "(.*/)?");
                i = after;
            } else if (at_start || !after_slash(p, i)) {
                /* At the pattern's or an alternative's start: anything at all. */
                put(re, n, ".*");
                i = after - 1;
            } else {
                /* A trailing doublestar after a '/': x itself, or anything under it. The
                 * '/' was put already: take it back into the optional part. */
                (*n)--;
                re[*n] = '\0';
                put(re, n, "(/.*)?");
                i = after - 1;
            }
            continue;
        }
        switch (p[i]) {
        case '*':
            put(re, n, "[^/]*");
            break;
        case '?':
            put(re, n, "[^/]");
            break;
        case '[': {
            int k = i + 1;

            put(re, n, "[");
            if (p[k] == '^' || p[k] == '!') {
                put(re, n, "^/");
                k++;
            }
            for (; p[k] != ']'; k++) {
                char m[2] = {p[k], 0};

                put(re, n, m);
            }
            put(re, n, "]");
            i = k;
            break;
        }
        case '\\':
            if (p[i + 1] != '\0')
                i++;
            /* the escaped character, as a literal */
            __attribute__((fallthrough));
        default:
            lit[1] = p[i];
            put(re, n, strchr(".[]{}()|^$+*?\\", p[i]) != NULL ? lit : lit + 1);
            break;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char pattern[MAX_PATTERN + 1], path[64], re[2048];
    size_t plen, n = 0;
    struct strs *exp;
    regex_t rx;
    int got, want;

    if (size < 1)
        return 0;
    plen = data[0] % (MAX_PATTERN + 1);
    if (plen > size - 1)
        plen = size - 1;
    for (size_t i = 0; i < plen; i++)
        pattern[i] = pattern_alphabet[data[1 + i] % (sizeof(pattern_alphabet) - 1)];
    pattern[plen] = '\0';
    {
        size_t k = 0;

        for (size_t i = 1 + plen; i < size && k < sizeof(path) - 1; i++)
            path[k++] = path_alphabet[data[i] % (sizeof(path_alphabet) - 1)];
        path[k] = '\0';
    }
    got = dsglob_match(pattern, path);
    /* An escaped '/' is a separator to one rule of doublestar's and not to another: the
     * reference does not model it. */
    if (!dsglob_valid(pattern) || got < 0 || strstr(pattern, "\\/") != NULL)
        return 0;
    /* One '**' at most: the reference's translation of a trailing slash and doublestar after
     * another whole-segment doublestar is not exact. */
    {
        const char *first = strstr(pattern, "**");

        if (first != NULL && strstr(first + 2, "*") != NULL)
            return 0;
    }
    /* Only the paths a walk gives: not empty, no empty segment. */
    if (path[0] == '\0' || path[0] == '/' || path[strlen(path) - 1] == '/' ||
        strstr(path, "//") != NULL)
        return 0;
    /* Classes of the reference: letters only, a class nowhere else. */
    for (const char *c = strchr(pattern, '['); c != NULL; c = strchr(c + 1, '[')) {
        const char *e = c + 1;

        if (c > pattern && c[-1] == '\\')
            continue;
        if (*e == '^' || *e == '!')
            e++;
        if (*e == ']')
            return 0;
        for (; *e != ']'; e++) {
            if (*e < 'a' || *e > 'c')
                return 0;
        }
    }
    too_long = false;
    if ((exp = calloc(1, sizeof(*exp))) == NULL || !expand(pattern, exp)) {
        free(exp);
        return 0;
    }
    put(re, &n, "^(");
    for (int i = 0; i < exp->n; i++) {
        if (i > 0)
            put(re, &n, "|");
        put(re, &n, "(");
        translate(exp->v[i], re, &n);
        put(re, &n, ")");
    }
    put(re, &n, ")$");
    free(exp);
    if (too_long)
        return 0;
    if (regcomp(&rx, re, REG_EXTENDED | REG_NOSUB) != 0)
        return 0; /* a fragment the reference cannot say (an empty alternative, say) */
    want = regexec(&rx, path, 0, NULL, 0) == 0;
    regfree(&rx);
    if (got != want) {
        fuzz_dump("pattern", pattern, strlen(pattern));
        fuzz_dump("path", path, strlen(path));
        fuzz_dump("regex", re, strlen(re));
    }
    FUZZ_CHECK(got == want, "dsglob says %d, the reference %d", got, want);
    return 0;
}
