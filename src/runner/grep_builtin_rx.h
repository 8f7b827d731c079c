/*
 * grep_builtin_rx.h - what the two halves of the pattern translator share (see
 * grep_builtin_regex.c): grep_builtin_regex.c, the string builder, the parser's state and
 * the grammar of groups, repetitions and alternations, and grep_builtin_class.c, one
 * character's worth of pattern: sets, Unicode classes, escapes and bracketed classes.
 * Nothing else includes it.
 */
#ifndef CREDBROKER_GREP_BUILTIN_RX_H
#define CREDBROKER_GREP_BUILTIN_RX_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define NONE UINT32_MAX

/*
 * The longest translation: past it the pattern is refused as too large, as rg refuses a
 * pattern past its compiled-size limit. Set operations copy their operands ("a~~b" writes
 * each side twice), so chained ones grow a translation exponentially; the cap stops that
 * after O(cap) work. PCRE2 (link size 2 in Debian) compiles nothing near this size anyway.
 */
#define GREP_RX_OUT_MAX (1024 * 1024)

struct sb {
    char *p;
    size_t len, cap;
    bool oom;     /* the first failure sticks: later puts do nothing */
    bool too_big; /* that failure: GREP_RX_OUT_MAX, not memory */
};

struct rxp {
    uint32_t *c; /* the pattern's characters */
    size_t n, pos;
    bool xmode;  /* ignore whitespace, '#' comments */
    bool icase;  /* case-insensitive here (smart case, then the i flags) */
    bool final;  /* the second pass: smart case known, empty classes checked */
    int err;
    unsigned depth;
    bool any_literal, any_upper;
    char **names; /* capture names, for the duplicate check */
    size_t nnames;
    pcre2_code *upper; /* \p{Uppercase}, compiled on first need */
    unsigned char *every; /* every scalar value but '\n', as UTF-8, built on first need */
    size_t every_len;
};

/* One character's worth of pattern: a positive class body (to go inside "[...]", where
 * it can be merged with others) or a whole expression matching one character. */
struct cset {
    struct sb text;
    bool body;
};

enum prim_kind { PRIM_LIT, PRIM_SET, PRIM_ASSERT };

struct prim {
    enum prim_kind kind;
    uint32_t c;         /* PRIM_LIT */
    struct cset set;    /* PRIM_SET */
    const char *assert; /* PRIM_ASSERT: its PCRE2 text */
};

/* grep_builtin_regex.c: the string builder and the parser's state */

/* Appends s[0..n), or s, or another builder's text; the first failure (no memory, or
 * GREP_RX_OUT_MAX) sticks and the later calls do nothing. */
void grep__sb_putn(struct sb *b, const char *s, size_t n);
void grep__sb_puts(struct sb *b, const char *s);
void grep__sb_put_sb(struct sb *b, const struct sb *s);
void grep__sb_free(struct sb *b);
/* What b's failure means for the pattern: 0 (none), ERR_INVALID (past GREP_RX_OUT_MAX:
 * too large, as rg refuses it) or ERR_NOMEM. */
static inline int grep__sb_error(const struct sb *b)
{
    return !b->oom ? 0 : b->too_big ? ERR_INVALID : ERR_NOMEM;
}
/* A character written so that PCRE2 reads it as itself, inside a class or out. */
void grep__sb_put_char(struct sb *b, uint32_t c);
/* Records the first error (err stays), returns false. */
bool grep__rx_fail(struct rxp *p, int err);
bool grep__rx_eof(const struct rxp *p);
/* The current character and the one after it; NONE past the end. */
uint32_t grep__rx_cur(const struct rxp *p);
uint32_t grep__rx_peek(const struct rxp *p);
/* Advances one character; false when that reaches the end. */
bool grep__rx_bump(struct rxp *p);
/* In x mode: skips whitespace and '#' comments. */
void grep__rx_bump_space(struct rxp *p);
/* Both: false when the bump reached the end. */
bool grep__rx_bump_and_bump_space(struct rxp *p);
/* The character after the current one, whitespace and comments skipped in x mode. */
uint32_t grep__rx_peek_space(const struct rxp *p);
/* Consumes s (ASCII) if the pattern continues with it. */
bool grep__rx_bump_if(struct rxp *p, const char *s);
/* Whether PCRE2 (UTF, UCP) compiles pattern: what this libpcre2 knows of Unicode. */
bool grep__rx_probe(const char *pattern);
/* A literal character for the smart case analysis (any_literal, any_upper). */
void grep__rx_note_literal(struct rxp *p, uint32_t c);

/* grep_builtin_class.c */

/* Writes s as an expression for one character. */
void grep__cset_put_expr(struct sb *out, const struct cset *s);
/* At a '\\'. */
bool grep__rx_parse_escape(struct rxp *p, struct prim *pr);
/* At a '['; the class as one set. only_nl: it is a plain union of '\n' alone; maybe_empty:
 * set operations or a negation could have left nothing in it. */
bool grep__rx_parse_class(struct rxp *p, struct cset *out, bool *only_nl, bool *maybe_empty);
/* Whether s matches some character other than '\n' (with the case-insensitivity in force):
 * rg refuses a class that does not, and PCRE2 would just never match it. ASCII first,
 * then every scalar value. */
bool grep__rx_set_nonempty(struct rxp *p, const struct cset *s);

#endif
