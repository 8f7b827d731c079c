/*
 * grep_builtin_regex.c - rg 13's pattern syntax (Rust's regex-syntax 0.6.25, its parser
 * step for step) read and written out again as a PCRE2 pattern with the same meaning on
 * one line (see grep_builtin_internal.h). Why not hand the pattern to PCRE2 as it is:
 * the two syntaxes disagree. PCRE2 takes what rg refuses (lookaround, backreferences,
 * atomic groups, \Q..\E, \K, \h, "\/" and other escapes of characters that are not
 * metacharacters, '{' as a literal...) and reads some of rg's syntax differently ("a++"
 * is possessive in PCRE2 and a repeated repetition in rg; "[a-z&&[^aeiou]]" is a class
 * intersection in rg; "[[:alpha:]]", "\w", "\s", "\b" are ASCII-only or narrower in one
 * or the other; "\p{Greek}" means the script in rg and the script extensions in PCRE2).
 *
 * So: refused exactly where rg's parser refuses (and where grep-regex refuses a literal
 * '\n'); classes, Perl classes and word boundaries written out as explicit Unicode sets;
 * set operations of classes as lookarounds over one character; stacked repetitions
 * wrapped in a group; flags x and u dropped (whitespace and comments are consumed here).
 * Not reproduced (XXX): (?-u) (bytes rather than characters), case-insensitive
 * \p{...} classes (rg folds them, PCRE2 does not), repetition counts over 65535
 * (PCRE2's limit; refused here), and rg's refusal of a class that set operations make
 * empty, or of a pattern over its compiled-size limit (a translation over 1 MiB is
 * refused instead: grep_builtin_rx.h).
 *
 * The file is the string builder, the parser's state and the grammar of groups,
 * repetitions and alternations; one character's worth of pattern (sets, Unicode classes,
 * escapes, bracketed classes) is grep_builtin_class.c's.
 *
 * Also the smart case analysis (rg's AstAnalysis): whether the pattern has a literal
 * character, and an uppercase one.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "grep_builtin_internal.h"
#include "grep_builtin_rx.h"
#include "utf8.h"

/* ---- a string builder whose first failure sticks ---- */

void grep__sb_putn(struct sb *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (n > GREP_RX_OUT_MAX - b->len) { /* len never passes the cap */
        b->oom = b->too_big = true;
        return;
    }
    if (b->cap - b->len <= n) {
        size_t cap = b->cap ? b->cap : 64;
        char *p;

        while (cap - b->len <= n)
            cap *= 2;
        if ((p = realloc(b->p, cap)) == NULL) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void grep__sb_puts(struct sb *b, const char *s)
{
    grep__sb_putn(b, s, strlen(s));
}

void grep__sb_put_sb(struct sb *b, const struct sb *s)
{
    if (s->oom) {
        b->oom = true;
        b->too_big = b->too_big || s->too_big;
    } else if (s->len > 0) {
        grep__sb_putn(b, s->p, s->len);
    }
}

/* Inserts s at offset at. */
static void sb_insert(struct sb *b, size_t at, const char *s)
{
    size_t n = strlen(s), tail = b->len - at;

    grep__sb_putn(b, s, n); /* grows; the bytes are then moved into place */
    if (b->oom)
        return;
    memmove(b->p + at + n, b->p + at, tail);
    memcpy(b->p + at, s, n);
}

void grep__sb_free(struct sb *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* A character written so that PCRE2 reads it as itself, inside a class or out. */
void grep__sb_put_char(struct sb *b, uint32_t c)
{
    char tmp[16];

    if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_') {
        tmp[0] = (char)c;
        tmp[1] = '\0';
    } else {
        snprintf(tmp, sizeof(tmp), "\\x{%X}", (unsigned)c);
    }
    grep__sb_puts(b, tmp);
}

/* ---- the parser's state ---- */

bool grep__rx_fail(struct rxp *p, int err)
{
    if (p->err == 0)
        p->err = err;
    return false;
}

bool grep__rx_eof(const struct rxp *p)
{
    return p->pos >= p->n;
}

uint32_t grep__rx_cur(const struct rxp *p)
{
    return p->pos < p->n ? p->c[p->pos] : NONE;
}

uint32_t grep__rx_peek(const struct rxp *p)
{
    return p->pos + 1 < p->n ? p->c[p->pos + 1] : NONE;
}

/* Advances one character; false when that reaches the end. */
bool grep__rx_bump(struct rxp *p)
{
    if (grep__rx_eof(p))
        return false;
    p->pos++;
    return !grep__rx_eof(p);
}

void grep__rx_bump_space(struct rxp *p)
{
    if (!p->xmode)
        return;
    while (!grep__rx_eof(p)) {
        if (utf8_is_white_space(grep__rx_cur(p))) {
            grep__rx_bump(p);
        } else if (grep__rx_cur(p) == '#') {
            while (!grep__rx_eof(p)) {
                uint32_t c = grep__rx_cur(p);

                grep__rx_bump(p);
                if (c == '\n')
                    break;
            }
        } else {
            break;
        }
    }
}

bool grep__rx_bump_and_bump_space(struct rxp *p)
{
    if (!grep__rx_bump(p))
        return false;
    grep__rx_bump_space(p);
    return !grep__rx_eof(p);
}

/* The character after the current one, whitespace and comments skipped in x mode. */
uint32_t grep__rx_peek_space(const struct rxp *p)
{
    bool in_comment = false;

    if (!p->xmode)
        return grep__rx_peek(p);
    for (size_t i = p->pos + 1; i < p->n; i++) {
        uint32_t c = p->c[i];

        if (utf8_is_white_space(c))
            continue;
        if (!in_comment && c == '#')
            in_comment = true;
        else if (in_comment && c == '\n')
            in_comment = false;
        else if (!in_comment)
            return c;
    }
    return NONE;
}

bool grep__rx_bump_if(struct rxp *p, const char *s)
{
    size_t k = strlen(s);

    if (p->n - p->pos < k)
        return false;
    for (size_t i = 0; i < k; i++) {
        if (p->c[p->pos + i] != (unsigned char)s[i])
            return false;
    }
    p->pos += k;
    return true;
}

bool grep__rx_probe(const char *pattern)
{
    int e;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP, &e, &off, NULL);

    pcre2_code_free(re);
    return re != NULL;
}

void grep__rx_note_literal(struct rxp *p, uint32_t c)
{
    p->any_literal = true;
    if (p->any_upper || c < 'A')
        return;
    if (c < 0x80) {
        p->any_upper = c <= 'Z';
        return;
    }
    /* Rust's char::is_uppercase is the Uppercase property. */
    if (p->upper == NULL) {
        int e;
        PCRE2_SIZE off;

        p->upper = pcre2_compile((PCRE2_SPTR) "^\\p{Uppercase}$", PCRE2_ZERO_TERMINATED,
                                 PCRE2_UTF | PCRE2_UCP, &e, &off, NULL);
        if (p->upper == NULL)
            p->upper = pcre2_compile((PCRE2_SPTR) "^\\p{Lu}$", PCRE2_ZERO_TERMINATED,
                                     PCRE2_UTF | PCRE2_UCP, &e, &off, NULL);
        if (p->upper == NULL) {
            grep__rx_fail(p, ERR_NOMEM);
            return;
        }
    }
    {
        char s[8];
        pcre2_match_data *md = pcre2_match_data_create(1, NULL);
        int n = 0;

        if (md == NULL) {
            grep__rx_fail(p, ERR_NOMEM);
            return;
        }
        /* (c is a scalar value: the pattern was UTF-8, and escapes are checked) */
        if (c < 0x800)
            n = snprintf(s, sizeof(s), "%c%c", 0xC0 | c >> 6, 0x80 | (c & 0x3F));
        else if (c < 0x10000)
            n = snprintf(s, sizeof(s), "%c%c%c", 0xE0 | c >> 12, 0x80 | (c >> 6 & 0x3F),
                         0x80 | (c & 0x3F));
        else
            n = snprintf(s, sizeof(s), "%c%c%c%c", 0xF0 | c >> 18, 0x80 | (c >> 12 & 0x3F),
                         0x80 | (c >> 6 & 0x3F), 0x80 | (c & 0x3F));
        p->any_upper = pcre2_match(p->upper, (PCRE2_SPTR)s, (size_t)n, 0, 0, md, NULL) >= 0;
        pcre2_match_data_free(md);
    }
}

/* ---- groups, repetitions, alternation ---- */

static bool parse_alternation(struct rxp *p, struct sb *out, bool in_group);

static bool is_capture_char(uint32_t c, bool first)
{
    return c == '_' || (!first && ((c >= '0' && c <= '9') || c == '.' || c == '[' || c == ']')) ||
           (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool add_capture_name(struct rxp *p, size_t start, size_t end)
{
    char *name = malloc(end - start + 1), **names;

    if (name == NULL)
        return grep__rx_fail(p, ERR_NOMEM);
    for (size_t i = start; i < end; i++)
        name[i - start] = (char)p->c[i]; /* (ASCII: is_capture_char) */
    name[end - start] = '\0';
    for (size_t i = 0; i < p->nnames; i++) {
        if (strcmp(p->names[i], name) == 0) {
            free(name);
            return grep__rx_fail(p, ERR_INVALID);
        }
    }
    if ((names = reallocarray(p->names, p->nnames + 1, sizeof(*names))) == NULL) {
        free(name);
        return grep__rx_fail(p, ERR_NOMEM);
    }
    p->names = names;
    p->names[p->nnames++] = name;
    return true;
}

/* The flags up to ':' or ')' written for PCRE2 into out (i, m, s, U kept; x applied to
 * the parser through *x: -1 unset, 0 off, 1 on). */
static bool parse_flags(struct rxp *p, struct sb *out, int *x, int *icase, size_t *nitems)
{
    char on[8] = "", off[8] = "";
    bool seen[128] = {false}, negation = false, last_neg = false;

    *x = -1;
    *icase = -1;
    *nitems = 0;
    while (grep__rx_cur(p) != ':' && grep__rx_cur(p) != ')') {
        uint32_t c = grep__rx_cur(p);

        if (c == '-') {
            if (negation)
                return grep__rx_fail(p, ERR_INVALID);
            negation = last_neg = true;
        } else {
            if (c >= 128 || strchr("imsUux", (int)c) == NULL || c == 0 || seen[c])
                return grep__rx_fail(p, ERR_INVALID);
            seen[c] = true;
            last_neg = false;
            if (c == 'i')
                *icase = negation ? 0 : 1;
            if (c == 'x') {
                *x = negation ? 0 : 1;
            } else if (c != 'u') {
                char *dst = negation ? off : on;
                size_t k = strlen(dst);

                dst[k] = (char)c;
                dst[k + 1] = '\0';
            }
        }
        (*nitems)++;
        if (!grep__rx_bump(p))
            return grep__rx_fail(p, ERR_INVALID);
    }
    if (last_neg)
        return grep__rx_fail(p, ERR_INVALID);
    if (on[0] != '\0' || off[0] != '\0') {
        grep__sb_puts(out, "(?");
        grep__sb_puts(out, on);
        if (off[0] != '\0') {
            grep__sb_puts(out, "-");
            grep__sb_puts(out, off);
        }
    }
    return true;
}

/* At a '('. *set_flags: it was "(?flags)" alone. */
static bool parse_group(struct rxp *p, struct sb *out, bool *set_flags)
{
    bool old_x = p->xmode, old_i = p->icase, ok;

    *set_flags = false;
    if (++p->depth > GREP_RX_MAX_NEST)
        return grep__rx_fail(p, ERR_INVALID);
    grep__rx_bump(p);
    grep__rx_bump_space(p);
    if (grep__rx_bump_if(p, "?=") || grep__rx_bump_if(p, "?!") || grep__rx_bump_if(p, "?<=") ||
        grep__rx_bump_if(p, "?<!"))
        return grep__rx_fail(p, ERR_INVALID); /* look-around */
    if (grep__rx_bump_if(p, "?P<")) {
        size_t start = p->pos;

        if (grep__rx_eof(p))
            return grep__rx_fail(p, ERR_INVALID);
        while (grep__rx_cur(p) != '>') {
            if (!is_capture_char(grep__rx_cur(p), p->pos == start))
                return grep__rx_fail(p, ERR_INVALID);
            if (!grep__rx_bump(p))
                break;
        }
        if (grep__rx_eof(p) || p->pos == start || !add_capture_name(p, start, p->pos))
            return grep__rx_fail(p, ERR_INVALID);
        grep__rx_bump(p);
        grep__sb_puts(out, "("); /* names do not change what matches */
    } else if (grep__rx_bump_if(p, "?")) {
        size_t at = out->len, nitems;
        int x, icase;

        if (grep__rx_eof(p) || !parse_flags(p, out, &x, &icase, &nitems))
            return grep__rx_fail(p, ERR_INVALID);
        if (grep__rx_cur(p) == ')') {
            grep__rx_bump(p);
            if (nitems == 0)
                return grep__rx_fail(p, ERR_INVALID); /* "(?)" */
            if (out->len > at)
                grep__sb_puts(out, ")");
            if (x >= 0)
                p->xmode = x == 1;
            if (icase >= 0)
                p->icase = icase == 1;
            *set_flags = true;
            p->depth--;
            return true;
        }
        grep__rx_bump(p); /* ':' */
        grep__sb_puts(out, out->len > at ? ":" : "(?:");
        if (x >= 0)
            p->xmode = x == 1;
        if (icase >= 0)
            p->icase = icase == 1;
    } else {
        grep__sb_puts(out, "(");
    }
    ok = parse_alternation(p, out, true);
    p->xmode = old_x;
    p->icase = old_i;
    p->depth--;
    if (!ok)
        return false;
    grep__rx_bump(p); /* ')' */
    grep__sb_puts(out, ")");
    return true;
}

/* At a '{' after something repeatable: "{n}", "{n,}", "{n,m}" written to rep. */
static bool parse_decimal(struct rxp *p, uint32_t *out)
{
    uint64_t v = 0;
    size_t digits = 0;

    while (!grep__rx_eof(p) && utf8_is_white_space(grep__rx_cur(p)))
        grep__rx_bump(p);
    while (!grep__rx_eof(p) && grep__rx_cur(p) >= '0' && grep__rx_cur(p) <= '9') {
        v = v * 10 + (grep__rx_cur(p) - '0');
        if (v > UINT32_MAX)
            return grep__rx_fail(p, ERR_INVALID);
        digits++;
        grep__rx_bump_and_bump_space(p);
    }
    while (!grep__rx_eof(p) && utf8_is_white_space(grep__rx_cur(p)))
        grep__rx_bump_and_bump_space(p);
    if (digits == 0)
        return grep__rx_fail(p, ERR_INVALID);
    *out = (uint32_t)v;
    return true;
}

struct counted {
    uint32_t lo, hi; /* hi: for bounded */
    bool bounded, at_least, lazy;
};

static bool parse_counted(struct rxp *p, struct counted *rc)
{
    memset(rc, 0, sizeof(*rc));
    if (!grep__rx_bump_and_bump_space(p) || !parse_decimal(p, &rc->lo) || grep__rx_eof(p))
        return grep__rx_fail(p, ERR_INVALID);
    if (grep__rx_cur(p) == ',') {
        if (!grep__rx_bump_and_bump_space(p))
            return grep__rx_fail(p, ERR_INVALID);
        if (grep__rx_cur(p) != '}') {
            if (!parse_decimal(p, &rc->hi))
                return false;
            rc->bounded = true;
        } else {
            rc->at_least = true;
        }
    }
    if (grep__rx_eof(p) || grep__rx_cur(p) != '}')
        return grep__rx_fail(p, ERR_INVALID);
    if (grep__rx_bump_and_bump_space(p) && grep__rx_cur(p) == '?') {
        rc->lazy = true;
        grep__rx_bump(p);
    }
    if (rc->bounded && rc->hi < rc->lo)
        return grep__rx_fail(p, ERR_INVALID);
    return true;
}

/* Writes the repetition rc. XXX: rg takes counts over 65535 (within its size limit);
 * PCRE2 stops there (and its compiled size, far sooner), so those are refused. */
static bool put_counted(struct rxp *p, struct sb *out, const struct counted *rc)
{
    char rep[48];

    if (rc->lo > 65535 || rc->hi > 65535)
        return grep__rx_fail(p, ERR_INVALID);
    if (rc->bounded)
        snprintf(rep, sizeof(rep), "{%u,%u}", (unsigned)rc->lo, (unsigned)rc->hi);
    else
        snprintf(rep, sizeof(rep), rc->at_least ? "{%u,}" : "{%u}", (unsigned)rc->lo);
    grep__sb_puts(out, rep);
    if (rc->lazy)
        grep__sb_puts(out, "?");
    return true;
}

enum last { L_NONE, L_FLAGS, L_ATOM, L_ASSERT, L_REP };

static bool parse_concat(struct rxp *p, struct sb *out)
{
    enum last last = L_NONE;
    size_t atom = out->len;

    for (;;) {
        uint32_t c;

        grep__rx_bump_space(p);
        if (grep__rx_eof(p) || grep__rx_cur(p) == ')' || grep__rx_cur(p) == '|')
            return true;
        c = grep__rx_cur(p);
        if (c == '?' || c == '*' || c == '+' || c == '{') {
            struct counted rc;
            char rep[4];

            if (last == L_NONE || last == L_FLAGS)
                return grep__rx_fail(p, ERR_INVALID); /* repetition operator missing expression */
            if (c == '{') {
                if (!parse_counted(p, &rc))
                    return false;
                /* An assertion matches nothing: once is as good as many. */
                if (last == L_ASSERT) {
                    rc.lo = rc.lo > 0;
                    rc.hi = rc.hi > 0;
                }
            } else {
                rep[0] = (char)c;
                rep[1] = '\0';
                if (grep__rx_bump(p) && grep__rx_cur(p) == '?') {
                    rep[1] = '?';
                    rep[2] = '\0';
                    grep__rx_bump(p);
                }
            }
            /* rg repeats a repetition ("a**", "a{2}{3}", "a++"): PCRE2 needs it grouped,
             * and it cannot repeat an assertion alone. */
            if (last == L_REP || last == L_ASSERT) {
                sb_insert(out, atom, "(?:");
                grep__sb_puts(out, ")");
            }
            if (c == '{') {
                if (!put_counted(p, out, &rc))
                    return false;
            } else {
                grep__sb_puts(out, rep);
            }
            last = L_REP;
            continue;
        }
        atom = out->len;
        if (c == '(') {
            bool set_flags;

            if (!parse_group(p, out, &set_flags))
                return false;
            last = set_flags ? L_FLAGS : L_ATOM;
        } else if (c == '[') {
            struct cset s;
            bool only_nl, maybe_empty;

            if (!grep__rx_parse_class(p, &s, &only_nl, &maybe_empty))
                return false;
            /* grep-regex refuses a class of '\n' alone; regex-syntax an empty class. */
            if (only_nl || (maybe_empty && p->final && !grep__rx_set_nonempty(p, &s))) {
                grep__sb_free(&s.text);
                return grep__rx_fail(p, p->err != 0 ? p->err : ERR_INVALID);
            }
            grep__cset_put_expr(out, &s);
            grep__sb_free(&s.text);
            last = L_ATOM;
        } else if (c == '\\') {
            struct prim pr;
            bool negated = grep__rx_peek(p) == 'P';

            if (!grep__rx_parse_escape(p, &pr))
                return false;
            if (pr.kind == PRIM_SET && negated && p->final && !grep__rx_set_nonempty(p, &pr.set)) {
                grep__sb_free(&pr.set.text);
                return grep__rx_fail(p, p->err != 0 ? p->err : ERR_INVALID); /* \P{Any} */
            }
            if (pr.kind == PRIM_ASSERT) {
                grep__sb_puts(out, pr.assert);
                last = L_ASSERT;
            } else if (pr.kind == PRIM_SET) {
                grep__cset_put_expr(out, &pr.set);
                grep__sb_free(&pr.set.text);
                last = L_ATOM;
            } else {
                if (pr.c == '\n')
                    return grep__rx_fail(p, ERR_INVALID);
                grep__rx_note_literal(p, pr.c);
                grep__sb_put_char(out, pr.c);
                last = L_ATOM;
            }
        } else if (c == '.') {
            grep__sb_puts(out, ".");
            grep__rx_bump(p);
            last = L_ATOM;
        } else if (c == '^' || c == '$') {
            grep__sb_puts(out, c == '^' ? "^" : "$");
            grep__rx_bump(p);
            last = L_ASSERT;
        } else {
            if (c == '\n')
                return grep__rx_fail(p, ERR_INVALID);
            grep__rx_note_literal(p, c);
            grep__sb_put_char(out, c);
            grep__rx_bump(p);
            last = L_ATOM;
        }
    }
}

static bool parse_alternation(struct rxp *p, struct sb *out, bool in_group)
{
    for (;;) {
        if (!parse_concat(p, out))
            return false;
        if (grep__rx_eof(p))
            return in_group ? grep__rx_fail(p, ERR_INVALID) : true; /* unclosed group */
        if (grep__rx_cur(p) == ')')
            return in_group ? true : grep__rx_fail(p, ERR_INVALID); /* unopened group */
        grep__sb_puts(out, "|");
        grep__rx_bump(p);
    }
}

/* One pass over the pattern; *out holds the PCRE2 text. */
static int rx_pass(struct rxp *p, struct sb *out)
{
    p->pos = 0;
    p->xmode = false;
    p->depth = 0;
    p->err = 0;
    p->any_literal = p->any_upper = false;
    for (size_t i = 0; i < p->nnames; i++)
        free(p->names[i]);
    p->nnames = 0;
    grep__sb_puts(out, ""); /* an empty pattern is "" too, not NULL */
    parse_alternation(p, out, false);
    return p->err != 0 ? p->err : grep__sb_error(out);
}

int grep__rx_translate(const char *pattern, struct grep_rx *rx)
{
    struct rxp p = {0};
    struct sb out = {0};
    size_t len = strlen(pattern);
    int r;

    memset(rx, 0, sizeof(*rx));
    if ((p.c = calloc(len + 1, sizeof(*p.c))) == NULL)
        return ERR_NOMEM;
    for (size_t i = 0; i < len;) {
        size_t k = utf8_decode((const unsigned char *)pattern + i, len - i, &p.c[p.n]);

        if (k == 0) {
            r = ERR_INVALID;
            goto out;
        }
        i += k;
        p.n++;
    }
    /* The first pass finds rg's smart case; the second translates knowing it, since the
     * case-insensitive \p{...} classes are written differently and an empty class is
     * judged with the case folding in force. */
    r = rx_pass(&p, &out);
    rx->any_literal = p.any_literal;
    rx->any_upper = p.any_upper;
    if (r == 0) {
        grep__sb_free(&out);
        p.icase = p.any_literal && !p.any_upper;
        p.final = true;
        r = rx_pass(&p, &out);
    }
    if (r == 0) {
        rx->pcre = out.p;
        out.p = NULL;
    }
out:
    grep__sb_free(&out);
    for (size_t i = 0; i < p.nnames; i++)
        free(p.names[i]);
    free(p.names);
    pcre2_code_free(p.upper);
    free(p.every);
    free(p.c);
    return r;
}
