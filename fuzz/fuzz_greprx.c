/*
 * fuzz_greprx.c - the built-in grep's pattern translator (grep_builtin_internal.h): a
 * pattern in rg 13's syntax, as the platform sends it, written out for PCRE2.
 *
 * Input: [pattern][NUL][text]: the pattern is the bytes before the first NUL, the text the
 * bytes after it (cut at the next NUL).
 *
 * Properties: the translation returns 0, ERR_INVALID or ERR_NOMEM, with a pattern exactly
 * when it returns 0, and gives the same answer twice; an uppercase literal is a literal;
 * what it accepts PCRE2 compiles with the options grep_builtin.c uses (or refuses only as
 * too large or too deeply nested, limits rg has too); and a text of printable ASCII, with a
 * backslash before each of regex-syntax's metacharacters (written out here again from its
 * documentation), translates, counts as a literal exactly when it is not empty, has an
 * uppercase literal exactly when it has an uppercase letter, and matches the text whole.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fuzz.h"
#include "grep_builtin_internal.h"

/* As grep_builtin.c compiles a translation: smart case, '\n' the only line end. NULL with
 * *err set when PCRE2 refuses it. */
static pcre2_code *compile_as_grep(const struct grep_rx *rx, int *err)
{
    uint32_t opts = PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | PCRE2_NO_DOTSTAR_ANCHOR;
    pcre2_compile_context *cctx = pcre2_compile_context_create(NULL);
    PCRE2_SIZE off;
    pcre2_code *re;

    FUZZ_CHECK(cctx != NULL, "out of memory");
    if (rx->any_literal && !rx->any_upper)
        opts |= PCRE2_CASELESS;
    pcre2_set_newline(cctx, PCRE2_NEWLINE_LF);
    re = pcre2_compile((PCRE2_SPTR)rx->pcre, PCRE2_ZERO_TERMINATED, opts, err, &off, cctx);
    pcre2_compile_context_free(cctx);
    return re;
}

/* Limits of size and depth, which rg also has (its own, not PCRE2's). */
static bool is_size_limit(int err)
{
    return err == PCRE2_ERROR_PATTERN_TOO_LARGE || err == PCRE2_ERROR_PARENTHESES_NEST_TOO_DEEP ||
           err == PCRE2_ERROR_PATTERN_TOO_COMPLICATED || err == PCRE2_ERROR_HEAP_FAILED ||
           err == PCRE2_ERROR_LOOKBEHIND_TOO_COMPLICATED || err == PCRE2_ERROR_TOO_MANY_CAPTURES;
}

static void check_any_pattern(const char *pattern)
{
    struct grep_rx rx, again;
    int r = grep__rx_translate(pattern, &rx), r2 = grep__rx_translate(pattern, &again), err = 0;
    pcre2_code *re;

    FUZZ_CHECK(r == 0 || r == ERR_INVALID || r == ERR_NOMEM, "returned %d", r);
    FUZZ_CHECK((r == 0) == (rx.pcre != NULL), "returned %d with %s pattern", r,
               rx.pcre != NULL ? "a" : "no");
    FUZZ_CHECK(r == r2 && rx.any_literal == again.any_literal && rx.any_upper == again.any_upper,
               "two translations differ: %d and %d", r, r2);
    FUZZ_CHECK(r != 0 || strcmp(rx.pcre, again.pcre) == 0, "two translations differ");
    FUZZ_CHECK(!rx.any_upper || rx.any_literal, "an uppercase literal but no literal");
    free(again.pcre);
    if (r != 0)
        return;
    re = compile_as_grep(&rx, &err);
    if (re == NULL && !is_size_limit(err)) {
        PCRE2_UCHAR msg[160];

        (void)pcre2_get_error_message(err, msg, sizeof(msg));
        fuzz_dump("translation", rx.pcre, strlen(rx.pcre));
        FUZZ_CHECK(false, "PCRE2 refuses the translation: %s", (const char *)msg);
    }
    pcre2_code_free(re);
    free(rx.pcre);
}

/* The text as a literal pattern: each metacharacter escaped (regex-syntax's
 * is_meta_character: \ . + * ? ( ) | [ ] { } ^ $ # & - ~), nothing else. */
static void check_literal(const char *text)
{
    static const char meta[] = "\\.+*?()|[]{}^$#&-~";
    size_t len = strlen(text), n = 0;
    char *pattern = fuzz_malloc(2 * len + 1);
    struct grep_rx rx;
    bool upper = false;
    pcre2_code *re;
    pcre2_match_data *md;
    int r, err = 0, rc;

    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] > 0x7e) {
            free(pattern);
            return; /* printable ASCII only: no line end, no UTF-8 to get wrong here */
        }
        if (strchr(meta, text[i]) != NULL)
            pattern[n++] = '\\';
        pattern[n++] = text[i];
        upper = upper || (text[i] >= 'A' && text[i] <= 'Z');
    }
    pattern[n] = '\0';
    r = grep__rx_translate(pattern, &rx);
    if (r != 0)
        fuzz_dump("pattern", pattern, n);
    FUZZ_CHECK(r == 0, "an escaped literal is refused (%d)", r);
    FUZZ_CHECK(rx.any_literal == (len > 0), "any_literal %d for %zu characters", rx.any_literal,
               len);
    FUZZ_CHECK(rx.any_upper == upper, "any_upper %d, uppercase letters: %d", rx.any_upper, upper);
    re = compile_as_grep(&rx, &err);
    FUZZ_CHECK(re != NULL, "PCRE2 refuses an escaped literal's translation (%d)", err);
    md = pcre2_match_data_create_from_pattern(re, NULL);
    FUZZ_CHECK(md != NULL, "out of memory");
    rc = pcre2_match(re, (PCRE2_SPTR)text, len, 0, PCRE2_ANCHORED | PCRE2_ENDANCHORED, md, NULL);
    if (rc < 0)
        fuzz_dump("translation", rx.pcre, strlen(rx.pcre));
    FUZZ_CHECK(rc >= 0, "an escaped literal does not match its text (%d)", rc);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    free(rx.pcre);
    free(pattern);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *pattern = fuzz_cstr(data, size);
    size_t plen = strlen(pattern);
    char *text = plen < size ? fuzz_cstr(data + plen + 1, size - plen - 1) : fuzz_cstr(NULL, 0);

    check_any_pattern(pattern);
    check_literal(text);
    free(pattern);
    free(text);
    return 0;
}
