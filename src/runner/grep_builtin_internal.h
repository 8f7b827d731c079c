/*
 * grep_builtin_internal.h - what grep_builtin.c and grep_builtin_regex.c share, and what
 * the unit tests reach: the translation of a pattern in ripgrep 13's syntax (Rust's
 * regex-syntax 0.6) into one PCRE2 compiles with the same meaning, line by line.
 */
#ifndef CREDBROKER_GREP_BUILTIN_INTERNAL_H
#define CREDBROKER_GREP_BUILTIN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

/* Groups and classes nested deeper than this are refused (regex-syntax's nest limit is
 * 250 levels of any kind; this bounds the translator's recursion). */
#define GREP_RX_MAX_NEST 250

struct grep_rx {
    char *pcre;        /* the PCRE2 pattern, NUL-terminated (caller frees) */
    bool any_literal;  /* the pattern has a literal character (rg's smart case needs one) */
    bool any_upper;    /* ... and one of them is uppercase (Rust's char::is_uppercase) */
};

/*
 * Translates pattern (rg's syntax, UTF-8) for PCRE2 with PCRE2_UTF | PCRE2_UCP, matched
 * against one line at a time without its '\n'. Returns 0 and fills *rx, ERR_INVALID when
 * rg 13 would refuse the pattern (exit 2: its parser's errors, and a literal '\n' or a
 * class of '\n' alone, which grep-regex refuses) or its translation would pass 1 MiB
 * (rg's own size limit is another; see grep_builtin_rx.h), or ERR_NOMEM. On failure rx->pcre is
 * NULL and the two flags say what was read before the error.
 */
int grep__rx_translate(const char *pattern, struct grep_rx *rx);

#endif
