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
 * empty, or of a pattern over its compiled-size limit.
 *
 * Also the smart case analysis (rg's AstAnalysis): whether the pattern has a literal
 * character, and an uppercase one.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "grep_builtin_internal.h"
#include "utf8.h"

#define NONE UINT32_MAX

/* ---- a string builder whose first failure sticks ---- */

struct sb {
    char *p;
    size_t len, cap;
    bool oom;
};

static void sb_putn(struct sb *b, const char *s, size_t n)
{
    if (b->oom)
        return;
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

static void sb_puts(struct sb *b, const char *s)
{
    sb_putn(b, s, strlen(s));
}

static void sb_put_sb(struct sb *b, const struct sb *s)
{
    if (s->oom)
        b->oom = true;
    else if (s->len > 0)
        sb_putn(b, s->p, s->len);
}

/* Inserts s at offset at. */
static void sb_insert(struct sb *b, size_t at, const char *s)
{
    size_t n = strlen(s), tail = b->len - at;

    sb_putn(b, s, n); /* grows; the bytes are then moved into place */
    if (b->oom)
        return;
    memmove(b->p + at + n, b->p + at, tail);
    memcpy(b->p + at, s, n);
}

static void sb_free(struct sb *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* A character written so that PCRE2 reads it as itself, inside a class or out. */
static void sb_put_char(struct sb *b, uint32_t c)
{
    char tmp[16];

    if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_') {
        tmp[0] = (char)c;
        tmp[1] = '\0';
    } else {
        snprintf(tmp, sizeof(tmp), "\\x{%X}", (unsigned)c);
    }
    sb_puts(b, tmp);
}

/* ---- the parser's state ---- */

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

static bool fail(struct rxp *p, int err)
{
    if (p->err == 0)
        p->err = err;
    return false;
}

static bool eof(const struct rxp *p)
{
    return p->pos >= p->n;
}

static uint32_t cur(const struct rxp *p)
{
    return p->pos < p->n ? p->c[p->pos] : NONE;
}

static uint32_t peek(const struct rxp *p)
{
    return p->pos + 1 < p->n ? p->c[p->pos + 1] : NONE;
}

/* Advances one character; false when that reaches the end. */
static bool bump(struct rxp *p)
{
    if (eof(p))
        return false;
    p->pos++;
    return !eof(p);
}

static bool is_white_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

static void bump_space(struct rxp *p)
{
    if (!p->xmode)
        return;
    while (!eof(p)) {
        if (is_white_space(cur(p))) {
            bump(p);
        } else if (cur(p) == '#') {
            while (!eof(p)) {
                uint32_t c = cur(p);

                bump(p);
                if (c == '\n')
                    break;
            }
        } else {
            break;
        }
    }
}

static bool bump_and_bump_space(struct rxp *p)
{
    if (!bump(p))
        return false;
    bump_space(p);
    return !eof(p);
}

/* The character after the current one, whitespace and comments skipped in x mode. */
static uint32_t peek_space(const struct rxp *p)
{
    bool in_comment = false;

    if (!p->xmode)
        return peek(p);
    for (size_t i = p->pos + 1; i < p->n; i++) {
        uint32_t c = p->c[i];

        if (is_white_space(c))
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

static bool bump_if(struct rxp *p, const char *s)
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

static bool probe(const char *pattern)
{
    int e;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP, &e, &off, NULL);

    pcre2_code_free(re);
    return re != NULL;
}

static void note_literal(struct rxp *p, uint32_t c)
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
            fail(p, ERR_NOMEM);
            return;
        }
    }
    {
        char s[8];
        pcre2_match_data *md = pcre2_match_data_create(1, NULL);
        int n = 0;

        if (md == NULL) {
            fail(p, ERR_NOMEM);
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

/* ---- character sets ---- */

/* One character's worth of pattern: a positive class body (to go inside "[...]", where
 * it can be merged with others) or a whole expression matching one character. */
struct cset {
    struct sb text;
    bool body;
};

#define WORD_BODY "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}"
#define SPACE_BODY                                                                             \
    "\\x{9}-\\x{D}\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"          \
    "\\x{202F}\\x{205F}\\x{3000}"

static void cset_body(struct cset *s, const char *body)
{
    sb_puts(&s->text, body);
    s->body = true;
}

/* Writes s as an expression for one character. */
static void cset_put_expr(struct sb *out, const struct cset *s)
{
    if (!s->body) {
        sb_put_sb(out, &s->text);
    } else if (s->text.len == 0) {
        sb_puts(out, "(?!)");
    } else {
        sb_puts(out, "[");
        sb_put_sb(out, &s->text);
        sb_puts(out, "]");
    }
}

static void cset_negate(struct cset *s)
{
    struct sb t = {0};

    if (s->body && s->text.len == 0) {
        sb_puts(&t, "(?s:.)");
    } else if (s->body) {
        sb_puts(&t, "[^");
        sb_put_sb(&t, &s->text);
        sb_puts(&t, "]");
    } else {
        sb_puts(&t, "(?:(?!");
        sb_put_sb(&t, &s->text);
        sb_puts(&t, ")(?s:.))");
    }
    sb_free(&s->text);
    s->text = t;
    s->body = false;
}

/* ---- Unicode classes (\p, \P) ---- */

static const struct {
    const char *name, *gc;
} gencats[] = {
    {"c", "C"}, {"other", "C"}, {"cc", "Cc"}, {"control", "Cc"}, {"cntrl", "Cc"},
    {"cf", "Cf"}, {"format", "Cf"}, {"cn", "Cn"}, {"unassigned", "Cn"}, {"co", "Co"},
    {"privateuse", "Co"}, {"cs", "Cs"}, {"surrogate", "Cs"}, {"l", "L"}, {"letter", "L"},
    {"lc", "LC"}, {"casedletter", "LC"}, {"ll", "Ll"}, {"lowercaseletter", "Ll"},
    {"lm", "Lm"}, {"modifierletter", "Lm"}, {"lo", "Lo"}, {"otherletter", "Lo"},
    {"lt", "Lt"}, {"titlecaseletter", "Lt"}, {"lu", "Lu"}, {"uppercaseletter", "Lu"},
    {"m", "M"}, {"mark", "M"}, {"combiningmark", "M"}, {"mc", "Mc"}, {"spacingmark", "Mc"},
    {"me", "Me"}, {"enclosingmark", "Me"}, {"mn", "Mn"}, {"nonspacingmark", "Mn"},
    {"n", "N"}, {"number", "N"}, {"nd", "Nd"}, {"decimalnumber", "Nd"}, {"digit", "Nd"},
    {"nl", "Nl"}, {"letternumber", "Nl"}, {"no", "No"}, {"othernumber", "No"},
    {"p", "P"}, {"punctuation", "P"}, {"punct", "P"}, {"pc", "Pc"},
    {"connectorpunctuation", "Pc"}, {"pd", "Pd"}, {"dashpunctuation", "Pd"}, {"pe", "Pe"},
    {"closepunctuation", "Pe"}, {"pf", "Pf"}, {"finalpunctuation", "Pf"}, {"pi", "Pi"},
    {"initialpunctuation", "Pi"}, {"po", "Po"}, {"otherpunctuation", "Po"}, {"ps", "Ps"},
    {"openpunctuation", "Ps"}, {"s", "S"}, {"symbol", "S"}, {"sc", "Sc"},
    {"currencysymbol", "Sc"}, {"sk", "Sk"}, {"modifiersymbol", "Sk"}, {"sm", "Sm"},
    {"mathsymbol", "Sm"}, {"so", "So"}, {"othersymbol", "So"}, {"z", "Z"},
    {"separator", "Z"}, {"zl", "Zl"}, {"lineseparator", "Zl"}, {"zp", "Zp"},
    {"paragraphseparator", "Zp"}, {"zs", "Zs"}, {"spaceseparator", "Zs"},
};

/* regex-syntax's symbolic_name_normalize: ASCII only, lower case, no ' ', '_' or '-', an
 * "is" prefix dropped ("isc" kept: ISO_Comment's alias). */
static void normalize(const uint32_t *name, size_t n, char *out, size_t outlen)
{
    size_t start = 0, w = 0;
    bool is = false;

    if (n >= 2 && (name[0] == 'i' || name[0] == 'I') && (name[1] == 's' || name[1] == 'S')) {
        is = true;
        start = 2;
    }
    for (size_t i = start; i < n && w + 1 < outlen; i++) {
        uint32_t c = name[i];

        if (c == ' ' || c == '_' || c == '-' || c > 0x7F)
            continue;
        out[w++] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    }
    out[w] = '\0';
    if (is && w == 1 && out[0] == 'c')
        snprintf(out, outlen, "isc");
}

static bool gencat_body(const char *norm, struct cset *s)
{
    for (size_t i = 0; i < sizeof(gencats) / sizeof(gencats[0]); i++) {
        if (strcmp(gencats[i].name, norm) != 0)
            continue;
        if (strcmp(gencats[i].gc, "LC") == 0) {
            cset_body(s, "\\p{Lu}\\p{Ll}\\p{Lt}");
        } else {
            char tmp[16];

            snprintf(tmp, sizeof(tmp), "\\p{%s}", gencats[i].gc);
            cset_body(s, tmp);
        }
        return true;
    }
    return false;
}

/* A property name PCRE2 knows, in PCRE2's form: \p{<prefix><norm>}. */
static bool pcre_prop_body(const char *prefix, const char *norm, struct cset *s)
{
    char tmp[200];

    if (norm[0] == '\0' || strchr(norm, '}') != NULL || strchr(norm, '\\') != NULL ||
        strchr(norm, '^') != NULL || strchr(norm, '&') != NULL || strchr(norm, ':') != NULL ||
        strchr(norm, '=') != NULL)
        return false;
    if ((size_t)snprintf(tmp, sizeof(tmp), "\\p{%s%s}", prefix, norm) >= sizeof(tmp) ||
        !probe(tmp))
        return false;
    cset_body(s, tmp);
    return true;
}

/* rg's class query: a binary property, else a general category, else a script (the
 * specials Any, ASCII and Assigned first). PCRE2's own extras (Xan, Xwd, L&...) are not
 * Rust's and are refused. */
static bool unicode_named(const char *norm, bool icase, struct cset *s)
{
    static const char *const pcre_only[] = {"xan", "xps", "xsp", "xwd", "xuc"};
    /* Under (?i) rg closes a class under simple case folding, and PCRE2 does not fold
     * \p{...}: the cased classes are written out closed (approximately: a letter whose
     * only case mapping is a full one, like U+0149, is let in). */
    static const struct {
        const char *name, *closed;
    } folded[] = {
        {"lu", "(?:\\p{Lu}|(?=\\p{CWU})[\\p{L}\\p{M}])"},
        {"uppercaseletter", "(?:\\p{Lu}|(?=\\p{CWU})[\\p{L}\\p{M}])"},
        {"ll", "(?:\\p{Ll}|(?=\\p{CWL})[\\p{L}\\p{M}])"},
        {"lowercaseletter", "(?:\\p{Ll}|(?=\\p{CWL})[\\p{L}\\p{M}])"},
        {"lt", "[\\x{1C4}-\\x{1CC}\\x{1F1}-\\x{1F3}\\x{1F80}-\\x{1FAF}\\x{1FB3}\\x{1FBC}"
               "\\x{1FC3}\\x{1FCC}\\x{1FF3}\\x{1FFC}]"},
        {"titlecaseletter", "[\\x{1C4}-\\x{1CC}\\x{1F1}-\\x{1F3}\\x{1F80}-\\x{1FAF}"
                            "\\x{1FB3}\\x{1FBC}\\x{1FC3}\\x{1FCC}\\x{1FF3}\\x{1FFC}]"},
        {"lc", "[\\p{Lu}\\p{Ll}\\p{Lt}\\x{345}]"},
        {"casedletter", "[\\p{Lu}\\p{Ll}\\p{Lt}\\x{345}]"},
        {"uppercase", "[\\p{Uppercase}\\p{CWU}]"},
        {"upper", "[\\p{Uppercase}\\p{CWU}]"},
        {"lowercase", "[\\p{Lowercase}\\p{CWL}]"},
        {"lower", "[\\p{Lowercase}\\p{CWL}]"},
    };

    for (size_t i = 0; icase && i < sizeof(folded) / sizeof(folded[0]); i++) {
        if (strcmp(norm, folded[i].name) == 0) {
            sb_puts(&s->text, folded[i].closed);
            s->body = false;
            return true;
        }
    }

    if (strcmp(norm, "any") == 0) {
        cset_body(s, "\\x{0}-\\x{10FFFF}");
        return true;
    }
    if (strcmp(norm, "ascii") == 0) {
        cset_body(s, "\\x{0}-\\x{7F}");
        return true;
    }
    if (strcmp(norm, "assigned") == 0) {
        cset_body(s, "\\P{Cn}");
        return true;
    }
    if (gencat_body(norm, s))
        return true;
    for (size_t i = 0; i < sizeof(pcre_only) / sizeof(pcre_only[0]); i++) {
        if (strcmp(norm, pcre_only[i]) == 0)
            return false;
    }
    /* A script is Script here (PCRE2's bare name is Script_Extensions). */
    return pcre_prop_body("sc:", norm, s) || pcre_prop_body("", norm, s);
}

static bool gencat_body_folded(const char *norm, bool icase, struct cset *s)
{
    size_t n = 0;

    for (size_t i = 0; i < sizeof(gencats) / sizeof(gencats[0]); i++)
        n += strcmp(gencats[i].name, norm) == 0;
    if (n == 0)
        return false;
    return unicode_named(norm, icase, s); /* (a general category is found first there) */
}

/* At the 'p' or 'P' of \p, \P. */
static bool parse_unicode_class(struct rxp *p, struct cset *s)
{
    bool negated = cur(p) == 'P', ok;
    size_t start, end;
    char norm[128], value[128];

    if (!bump_and_bump_space(p))
        return fail(p, ERR_INVALID);
    if (cur(p) == '{') {
        start = p->pos + 1;
        while (bump_and_bump_space(p) && cur(p) != '}')
            ;
        if (eof(p))
            return fail(p, ERR_INVALID);
        end = p->pos;
        bump(p);
    } else {
        if (cur(p) == '\\')
            return fail(p, ERR_INVALID);
        start = p->pos;
        end = p->pos + 1;
        bump_and_bump_space(p);
    }
    /* (In x mode the name's spaces were skipped over, not removed: normalize drops them.) */
    {
        size_t op = end, oplen = 0;

        for (size_t i = start; i < end && oplen == 0; i++) {
            if (p->c[i] == '!' && i + 1 < end && p->c[i + 1] == '=') {
                op = i;
                oplen = 2;
            }
        }
        for (size_t i = start; i < end && oplen == 0; i++) {
            if (p->c[i] == ':') {
                op = i;
                oplen = 1;
            }
        }
        for (size_t i = start; i < end && oplen == 0; i++) {
            if (p->c[i] == '=') {
                op = i;
                oplen = 1;
            }
        }
        if (oplen == 2)
            negated = !negated;
        normalize(p->c + start, op - start, norm, sizeof(norm));
        if (oplen == 0) {
            ok = unicode_named(norm, p->icase, s);
        } else {
            normalize(p->c + op + oplen, end - op - oplen, value, sizeof(value));
            if (strcmp(norm, "gc") == 0 || strcmp(norm, "generalcategory") == 0)
                ok = gencat_body_folded(value, p->icase, s);
            else if (strcmp(norm, "sc") == 0 || strcmp(norm, "script") == 0)
                ok = pcre_prop_body("sc:", value, s);
            else if (strcmp(norm, "scx") == 0 || strcmp(norm, "scriptextensions") == 0)
                ok = pcre_prop_body("scx:", value, s);
            else
                ok = false; /* XXX: Age and the break properties: PCRE2 has none of them */
        }
    }
    if (!ok)
        return fail(p, ERR_INVALID);
    if (negated)
        cset_negate(s);
    return true;
}

/* ---- escapes ---- */

enum prim_kind { PRIM_LIT, PRIM_SET, PRIM_ASSERT };

struct prim {
    enum prim_kind kind;
    uint32_t c;         /* PRIM_LIT */
    struct cset set;    /* PRIM_SET */
    const char *assert; /* PRIM_ASSERT: its PCRE2 text */
};

static bool is_meta(uint32_t c)
{
    return c < 0x80 && strchr("\\.+*?()|[]{}^$#&-~", (int)c) != NULL && c != 0;
}

static int hexval(uint32_t c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F')
        return (int)(c - 'A' + 10);
    return -1;
}

/* At the 'x', 'u' or 'U': \xHH, \uHHHH, \UHHHHHHHH or any of them with {H...}. */
static bool parse_hex(struct rxp *p, uint32_t *out)
{
    unsigned digits = cur(p) == 'x' ? 2 : cur(p) == 'u' ? 4 : 8;
    uint64_t v = 0;
    size_t count = 0;

    if (!bump_and_bump_space(p))
        return fail(p, ERR_INVALID);
    if (cur(p) == '{') {
        while (bump_and_bump_space(p) && cur(p) != '}') {
            if (hexval(cur(p)) < 0)
                return fail(p, ERR_INVALID);
            v = v * 16 + (unsigned)hexval(cur(p));
            if (v > UINT32_MAX)
                return fail(p, ERR_INVALID);
            count++;
        }
        if (eof(p))
            return fail(p, ERR_INVALID);
        bump_and_bump_space(p);
        if (count == 0)
            return fail(p, ERR_INVALID);
    } else {
        for (unsigned i = 0; i < digits; i++) {
            if (i > 0 && !bump_and_bump_space(p))
                return fail(p, ERR_INVALID);
            if (hexval(cur(p)) < 0)
                return fail(p, ERR_INVALID);
            v = v * 16 + (unsigned)hexval(cur(p));
        }
        bump_and_bump_space(p);
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return fail(p, ERR_INVALID);
    *out = (uint32_t)v;
    return true;
}

/* At a '\\'. */
static bool parse_escape(struct rxp *p, struct prim *pr)
{
    uint32_t c;

    memset(pr, 0, sizeof(*pr));
    if (!bump(p))
        return fail(p, ERR_INVALID);
    c = cur(p);
    if (c >= '0' && c <= '9')
        return fail(p, ERR_INVALID); /* backreferences (octal is off) */
    if (c == 'x' || c == 'u' || c == 'U') {
        pr->kind = PRIM_LIT;
        return parse_hex(p, &pr->c);
    }
    if (c == 'p' || c == 'P') {
        pr->kind = PRIM_SET;
        return parse_unicode_class(p, &pr->set);
    }
    if (c == 'd' || c == 'D' || c == 's' || c == 'S' || c == 'w' || c == 'W') {
        pr->kind = PRIM_SET;
        cset_body(&pr->set, c == 'd' || c == 'D' ? "\\p{Nd}" : c == 's' || c == 'S' ? SPACE_BODY
                                                                                    : WORD_BODY);
        if (c == 'S' || c == 'W')
            cset_negate(&pr->set);
        else if (c == 'D') {
            sb_free(&pr->set.text);
            cset_body(&pr->set, "\\P{Nd}");
        }
        bump(p);
        return true;
    }
    bump(p);
    pr->kind = PRIM_LIT;
    if (is_meta(c)) {
        pr->c = c;
        return true;
    }
    switch (c) {
    case 'a':
        pr->c = 0x07;
        return true;
    case 'f':
        pr->c = 0x0C;
        return true;
    case 't':
        pr->c = '\t';
        return true;
    case 'n':
        pr->c = '\n';
        return true;
    case 'r':
        pr->c = '\r';
        return true;
    case 'v':
        pr->c = 0x0B;
        return true;
    case ' ':
        if (!p->xmode)
            break;
        pr->c = ' ';
        return true;
    case 'A':
        pr->kind = PRIM_ASSERT;
        pr->assert = "\\A";
        return true;
    case 'z':
        pr->kind = PRIM_ASSERT;
        pr->assert = "\\z";
        return true;
    case 'b':
        pr->kind = PRIM_ASSERT;
        pr->assert = "(?:(?<=[" WORD_BODY "])(?![" WORD_BODY "])|(?<![" WORD_BODY
                     "])(?=[" WORD_BODY "]))";
        return true;
    case 'B':
        pr->kind = PRIM_ASSERT;
        pr->assert = "(?:(?<=[" WORD_BODY "])(?=[" WORD_BODY "])|(?<![" WORD_BODY
                     "])(?![" WORD_BODY "]))";
        return true;
    default:
        break;
    }
    return fail(p, ERR_INVALID);
}

/* ---- bracketed classes ---- */

enum setop { OP_NONE, OP_AND, OP_MINUS, OP_XOR };

/* A union being collected: the positive bodies merged, other sets as alternatives. */
struct cunion {
    struct sb body, alts;
    bool nonempty, only_nl;
};

static void union_add_char(struct cunion *u, uint32_t lo, uint32_t hi)
{
    sb_put_char(&u->body, lo);
    if (hi != lo) {
        sb_puts(&u->body, "-");
        sb_put_char(&u->body, hi);
    }
    u->only_nl = (u->only_nl || !u->nonempty) && lo == '\n' && hi == '\n';
    u->nonempty = true;
}

static void union_add_set(struct cunion *u, const struct cset *s)
{
    if (s->body) {
        sb_put_sb(&u->body, &s->text);
    } else {
        sb_puts(&u->alts, "|");
        sb_put_sb(&u->alts, &s->text);
    }
    u->only_nl = false;
    u->nonempty = true;
}

/* Turns u (consumed) into a set. */
static void union_finish(struct cunion *u, struct cset *s)
{
    memset(s, 0, sizeof(*s));
    if (u->alts.len == 0 && !u->alts.oom) {
        s->text = u->body;
        s->body = true;
        u->body = (struct sb){0};
    } else {
        sb_puts(&s->text, "(?:");
        if (u->body.len > 0) {
            sb_puts(&s->text, "[");
            sb_put_sb(&s->text, &u->body);
            sb_puts(&s->text, "]");
            sb_put_sb(&s->text, &u->alts);
        } else {
            sb_putn(&s->text, u->alts.p + 1, u->alts.len - 1); /* without its first '|' */
        }
        sb_puts(&s->text, ")");
    }
    sb_free(&u->body);
    sb_free(&u->alts);
}

/* acc = acc op rhs (both consumed into acc). */
static void cset_apply(struct cset *acc, enum setop op, struct cset *rhs)
{
    struct sb t = {0};

    switch (op) {
    case OP_AND:
        sb_puts(&t, "(?:(?=");
        cset_put_expr(&t, acc);
        sb_puts(&t, ")");
        cset_put_expr(&t, rhs);
        sb_puts(&t, ")");
        break;
    case OP_MINUS:
        sb_puts(&t, "(?:(?!");
        cset_put_expr(&t, rhs);
        sb_puts(&t, ")");
        cset_put_expr(&t, acc);
        sb_puts(&t, ")");
        break;
    case OP_XOR:
        sb_puts(&t, "(?:(?!");
        cset_put_expr(&t, rhs);
        sb_puts(&t, ")");
        cset_put_expr(&t, acc);
        sb_puts(&t, "|(?!");
        cset_put_expr(&t, acc);
        sb_puts(&t, ")");
        cset_put_expr(&t, rhs);
        sb_puts(&t, ")");
        break;
    case OP_NONE:
        break;
    }
    sb_free(&acc->text);
    sb_free(&rhs->text);
    acc->text = t;
    acc->body = false;
}

static const struct {
    const char *name, *body;
} ascii_classes[] = {
    {"alnum", "0-9A-Za-z"},
    {"alpha", "A-Za-z"},
    {"ascii", "\\x{0}-\\x{7F}"},
    {"blank", "\\x{9}\\x{20}"},
    {"cntrl", "\\x{0}-\\x{1F}\\x{7F}"},
    {"digit", "0-9"},
    {"graph", "\\x{21}-\\x{7E}"},
    {"lower", "a-z"},
    {"print", "\\x{20}-\\x{7E}"},
    {"punct", "\\x{21}-\\x{2F}\\x{3A}-\\x{40}\\x{5B}-\\x{60}\\x{7B}-\\x{7E}"},
    {"space", "\\x{9}-\\x{D}\\x{20}"},
    {"upper", "A-Z"},
    {"word", "0-9A-Za-z_"},
    {"xdigit", "0-9A-Fa-f"},
};

/* At a '[' inside a class: "[:name:]" or "[:^name:]" with a known name, else nothing
 * consumed (it opens a nested class). */
static bool maybe_ascii_class(struct rxp *p, struct cset *s)
{
    size_t start = p->pos, name_start;
    bool negated = false;
    char name[16];
    size_t k = 0;

    if (!bump(p) || cur(p) != ':' || !bump(p))
        goto no;
    if (cur(p) == '^') {
        negated = true;
        if (!bump(p))
            goto no;
    }
    name_start = p->pos;
    while (cur(p) != ':' && bump(p))
        ;
    if (eof(p))
        goto no;
    for (size_t i = name_start; i < p->pos; i++) {
        if (k + 1 >= sizeof(name) || p->c[i] > 0x7F)
            goto no;
        name[k++] = (char)p->c[i];
    }
    name[k] = '\0';
    if (!bump_if(p, ":]"))
        goto no;
    for (size_t i = 0; i < sizeof(ascii_classes) / sizeof(ascii_classes[0]); i++) {
        if (strcmp(ascii_classes[i].name, name) == 0) {
            memset(s, 0, sizeof(*s));
            cset_body(s, ascii_classes[i].body);
            if (negated)
                cset_negate(s);
            return true;
        }
    }
no:
    p->pos = start;
    return false;
}

/* An item of a class: a literal or an escape. */
static bool parse_class_item(struct rxp *p, struct prim *pr)
{
    if (cur(p) == '\\')
        return parse_escape(p, pr);
    memset(pr, 0, sizeof(*pr));
    pr->kind = PRIM_LIT;
    pr->c = cur(p);
    bump(p);
    return true;
}

static bool parse_class_range(struct rxp *p, struct cunion *u)
{
    struct prim a, b;

    if (!parse_class_item(p, &a))
        return false;
    bump_space(p);
    if (eof(p)) {
        sb_free(&a.set.text);
        return fail(p, ERR_INVALID);
    }
    if (cur(p) != '-' || peek_space(p) == ']' || peek_space(p) == '-') {
        if (a.kind == PRIM_ASSERT)
            return fail(p, ERR_INVALID); /* \b and friends are no class items */
        if (a.kind == PRIM_LIT) {
            note_literal(p, a.c);
            union_add_char(u, a.c, a.c);
        } else {
            union_add_set(u, &a.set);
            sb_free(&a.set.text);
        }
        return true;
    }
    if (!bump_and_bump_space(p) || a.kind != PRIM_LIT) {
        sb_free(&a.set.text);
        return fail(p, ERR_INVALID);
    }
    if (!parse_class_item(p, &b))
        return false;
    if (b.kind != PRIM_LIT || b.c < a.c) {
        sb_free(&b.set.text);
        return fail(p, ERR_INVALID);
    }
    note_literal(p, a.c);
    note_literal(p, b.c);
    union_add_char(u, a.c, b.c);
    return true;
}

/* At a '['; the class as one set. only_nl: it is a plain union of '\n' alone; maybe_empty:
 * set operations or a negation could have left nothing in it. */
static bool parse_class(struct rxp *p, struct cset *out, bool *only_nl, bool *maybe_empty)
{
    struct cunion u = {0};
    struct cset acc = {0}, rhs;
    enum setop op = OP_NONE;
    bool negated = false, ok = false;

    *only_nl = false;
    *maybe_empty = false;
    memset(out, 0, sizeof(*out));
    if (++p->depth > GREP_RX_MAX_NEST)
        return fail(p, ERR_INVALID);
    if (!bump_and_bump_space(p))
        goto out_fail;
    if (cur(p) == '^') {
        negated = true;
        if (!bump_and_bump_space(p))
            goto out_fail;
    }
    while (cur(p) == '-') {
        union_add_char(&u, '-', '-');
        note_literal(p, '-');
        if (!bump_and_bump_space(p))
            goto out_fail;
    }
    if (!u.nonempty && cur(p) == ']') {
        union_add_char(&u, ']', ']');
        note_literal(p, ']');
        if (!bump_and_bump_space(p))
            goto out_fail;
    }
    for (;;) {
        uint32_t c;

        bump_space(p);
        if (eof(p))
            goto out_fail;
        c = cur(p);
        if (c == '[') {
            struct cset inner;
            bool nl, empty;

            if (!maybe_ascii_class(p, &inner) && !parse_class(p, &inner, &nl, &empty))
                goto out;
            union_add_set(&u, &inner);
            sb_free(&inner.text);
        } else if (c == ']') {
            bump(p);
            break;
        } else if ((c == '&' || c == '-' || c == '~') && peek(p) == c) {
            p->pos += 2;
            union_finish(&u, &rhs);
            if (op == OP_NONE) {
                acc = rhs;
            } else {
                cset_apply(&acc, op, &rhs);
            }
            u = (struct cunion){0};
            op = c == '&' ? OP_AND : c == '-' ? OP_MINUS : OP_XOR;
        } else if (!parse_class_range(p, &u)) {
            goto out;
        }
    }
    *only_nl = op == OP_NONE && !negated && u.nonempty && u.only_nl;
    *maybe_empty = op != OP_NONE || negated;
    union_finish(&u, &rhs);
    if (op == OP_NONE) {
        *out = rhs;
    } else {
        cset_apply(&acc, op, &rhs);
        *out = acc;
        acc = (struct cset){0};
    }
    if (negated)
        cset_negate(out);
    ok = true;
    goto out;
out_fail:
    fail(p, ERR_INVALID);
out:
    p->depth--;
    sb_free(&u.body);
    sb_free(&u.alts);
    sb_free(&acc.text);
    if (!ok)
        sb_free(&out->text);
    return ok;
}

/* Whether s matches some character other than '\n' (with the case-insensitivity in force):
 * rg refuses a class that does not, and PCRE2 would just never match it. ASCII first,
 * then every scalar value. */
static bool set_nonempty(struct rxp *p, const struct cset *s)
{
    struct sb pat = {0};
    pcre2_code *re = NULL;
    pcre2_match_data *md = NULL;
    unsigned char ascii[127];
    size_t n = 0;
    int e, rc;
    PCRE2_SIZE off;
    bool found = true;

    sb_puts(&pat, "(?:");
    cset_put_expr(&pat, s);
    sb_puts(&pat, ")");
    if (pat.oom) {
        fail(p, ERR_NOMEM);
        goto out;
    }
    re = pcre2_compile((PCRE2_SPTR)pat.p, pat.len, PCRE2_UTF | PCRE2_UCP |
                       (p->icase ? PCRE2_CASELESS : 0), &e, &off, NULL);
    if (re == NULL)
        goto out; /* the real compile reports it */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    if ((md = pcre2_match_data_create(1, NULL)) == NULL) {
        fail(p, ERR_NOMEM);
        goto out;
    }
    for (unsigned c = 0; c < 0x80; c++) {
        if (c != '\n')
            ascii[n++] = (unsigned char)c;
    }
    if (pcre2_match(re, ascii, n, 0, 0, md, NULL) >= 0)
        goto out;
    if (p->every == NULL) {
        if ((p->every = malloc(4 * 0x110000)) == NULL) {
            fail(p, ERR_NOMEM);
            goto out;
        }
        for (uint32_t c = 0; c <= 0x10FFFF; c++) {
            if (c == '\n' || (c >= 0xD800 && c <= 0xDFFF))
                continue;
            if (c < 0x80) {
                p->every[p->every_len++] = (unsigned char)c;
            } else if (c < 0x800) {
                p->every[p->every_len++] = (unsigned char)(0xC0 | c >> 6);
                p->every[p->every_len++] = (unsigned char)(0x80 | (c & 0x3F));
            } else if (c < 0x10000) {
                p->every[p->every_len++] = (unsigned char)(0xE0 | c >> 12);
                p->every[p->every_len++] = (unsigned char)(0x80 | (c >> 6 & 0x3F));
                p->every[p->every_len++] = (unsigned char)(0x80 | (c & 0x3F));
            } else {
                p->every[p->every_len++] = (unsigned char)(0xF0 | c >> 18);
                p->every[p->every_len++] = (unsigned char)(0x80 | (c >> 12 & 0x3F));
                p->every[p->every_len++] = (unsigned char)(0x80 | (c >> 6 & 0x3F));
                p->every[p->every_len++] = (unsigned char)(0x80 | (c & 0x3F));
            }
        }
    }
    rc = pcre2_match(re, p->every, p->every_len, 0, 0, md, NULL);
    found = rc >= 0 || rc != PCRE2_ERROR_NOMATCH;
out:
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    sb_free(&pat);
    return found;
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
        return fail(p, ERR_NOMEM);
    for (size_t i = start; i < end; i++)
        name[i - start] = (char)p->c[i]; /* (ASCII: is_capture_char) */
    name[end - start] = '\0';
    for (size_t i = 0; i < p->nnames; i++) {
        if (strcmp(p->names[i], name) == 0) {
            free(name);
            return fail(p, ERR_INVALID);
        }
    }
    if ((names = reallocarray(p->names, p->nnames + 1, sizeof(*names))) == NULL) {
        free(name);
        return fail(p, ERR_NOMEM);
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
    while (cur(p) != ':' && cur(p) != ')') {
        uint32_t c = cur(p);

        if (c == '-') {
            if (negation)
                return fail(p, ERR_INVALID);
            negation = last_neg = true;
        } else {
            if (c >= 128 || strchr("imsUux", (int)c) == NULL || c == 0 || seen[c])
                return fail(p, ERR_INVALID);
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
        if (!bump(p))
            return fail(p, ERR_INVALID);
    }
    if (last_neg)
        return fail(p, ERR_INVALID);
    if (on[0] != '\0' || off[0] != '\0') {
        sb_puts(out, "(?");
        sb_puts(out, on);
        if (off[0] != '\0') {
            sb_puts(out, "-");
            sb_puts(out, off);
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
        return fail(p, ERR_INVALID);
    bump(p);
    bump_space(p);
    if (bump_if(p, "?=") || bump_if(p, "?!") || bump_if(p, "?<=") || bump_if(p, "?<!"))
        return fail(p, ERR_INVALID); /* look-around */
    if (bump_if(p, "?P<")) {
        size_t start = p->pos;

        if (eof(p))
            return fail(p, ERR_INVALID);
        while (cur(p) != '>') {
            if (!is_capture_char(cur(p), p->pos == start))
                return fail(p, ERR_INVALID);
            if (!bump(p))
                break;
        }
        if (eof(p) || p->pos == start || !add_capture_name(p, start, p->pos))
            return fail(p, ERR_INVALID);
        bump(p);
        sb_puts(out, "("); /* names do not change what matches */
    } else if (bump_if(p, "?")) {
        size_t at = out->len, nitems;
        int x, icase;

        if (eof(p) || !parse_flags(p, out, &x, &icase, &nitems))
            return fail(p, ERR_INVALID);
        if (cur(p) == ')') {
            bump(p);
            if (nitems == 0)
                return fail(p, ERR_INVALID); /* "(?)" */
            if (out->len > at)
                sb_puts(out, ")");
            if (x >= 0)
                p->xmode = x == 1;
            if (icase >= 0)
                p->icase = icase == 1;
            *set_flags = true;
            p->depth--;
            return true;
        }
        bump(p); /* ':' */
        sb_puts(out, out->len > at ? ":" : "(?:");
        if (x >= 0)
            p->xmode = x == 1;
        if (icase >= 0)
            p->icase = icase == 1;
    } else {
        sb_puts(out, "(");
    }
    ok = parse_alternation(p, out, true);
    p->xmode = old_x;
    p->icase = old_i;
    p->depth--;
    if (!ok)
        return false;
    bump(p); /* ')' */
    sb_puts(out, ")");
    return true;
}

/* At a '{' after something repeatable: "{n}", "{n,}", "{n,m}" written to rep. */
static bool parse_decimal(struct rxp *p, uint32_t *out)
{
    uint64_t v = 0;
    size_t digits = 0;

    while (!eof(p) && is_white_space(cur(p)))
        bump(p);
    while (!eof(p) && cur(p) >= '0' && cur(p) <= '9') {
        v = v * 10 + (cur(p) - '0');
        if (v > UINT32_MAX)
            return fail(p, ERR_INVALID);
        digits++;
        bump_and_bump_space(p);
    }
    while (!eof(p) && is_white_space(cur(p)))
        bump_and_bump_space(p);
    if (digits == 0)
        return fail(p, ERR_INVALID);
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
    if (!bump_and_bump_space(p) || !parse_decimal(p, &rc->lo) || eof(p))
        return fail(p, ERR_INVALID);
    if (cur(p) == ',') {
        if (!bump_and_bump_space(p))
            return fail(p, ERR_INVALID);
        if (cur(p) != '}') {
            if (!parse_decimal(p, &rc->hi))
                return false;
            rc->bounded = true;
        } else {
            rc->at_least = true;
        }
    }
    if (eof(p) || cur(p) != '}')
        return fail(p, ERR_INVALID);
    if (bump_and_bump_space(p) && cur(p) == '?') {
        rc->lazy = true;
        bump(p);
    }
    if (rc->bounded && rc->hi < rc->lo)
        return fail(p, ERR_INVALID);
    return true;
}

/* Writes the repetition rc. XXX: rg takes counts over 65535 (within its size limit);
 * PCRE2 stops there (and its compiled size, far sooner), so those are refused. */
static bool put_counted(struct rxp *p, struct sb *out, const struct counted *rc)
{
    char rep[48];

    if (rc->lo > 65535 || rc->hi > 65535)
        return fail(p, ERR_INVALID);
    if (rc->bounded)
        snprintf(rep, sizeof(rep), "{%u,%u}", (unsigned)rc->lo, (unsigned)rc->hi);
    else
        snprintf(rep, sizeof(rep), rc->at_least ? "{%u,}" : "{%u}", (unsigned)rc->lo);
    sb_puts(out, rep);
    if (rc->lazy)
        sb_puts(out, "?");
    return true;
}

enum last { L_NONE, L_FLAGS, L_ATOM, L_ASSERT, L_REP };

static bool parse_concat(struct rxp *p, struct sb *out)
{
    enum last last = L_NONE;
    size_t atom = out->len;

    for (;;) {
        uint32_t c;

        bump_space(p);
        if (eof(p) || cur(p) == ')' || cur(p) == '|')
            return true;
        c = cur(p);
        if (c == '?' || c == '*' || c == '+' || c == '{') {
            struct counted rc;
            char rep[4];

            if (last == L_NONE || last == L_FLAGS)
                return fail(p, ERR_INVALID); /* repetition operator missing expression */
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
                if (bump(p) && cur(p) == '?') {
                    rep[1] = '?';
                    rep[2] = '\0';
                    bump(p);
                }
            }
            /* rg repeats a repetition ("a**", "a{2}{3}", "a++"): PCRE2 needs it grouped,
             * and it cannot repeat an assertion alone. */
            if (last == L_REP || last == L_ASSERT) {
                sb_insert(out, atom, "(?:");
                sb_puts(out, ")");
            }
            if (c == '{') {
                if (!put_counted(p, out, &rc))
                    return false;
            } else {
                sb_puts(out, rep);
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

            if (!parse_class(p, &s, &only_nl, &maybe_empty))
                return false;
            /* grep-regex refuses a class of '\n' alone; regex-syntax an empty class. */
            if (only_nl || (maybe_empty && p->final && !set_nonempty(p, &s))) {
                sb_free(&s.text);
                return fail(p, p->err != 0 ? p->err : ERR_INVALID);
            }
            cset_put_expr(out, &s);
            sb_free(&s.text);
            last = L_ATOM;
        } else if (c == '\\') {
            struct prim pr;
            bool negated = peek(p) == 'P';

            if (!parse_escape(p, &pr))
                return false;
            if (pr.kind == PRIM_SET && negated && p->final && !set_nonempty(p, &pr.set)) {
                sb_free(&pr.set.text);
                return fail(p, p->err != 0 ? p->err : ERR_INVALID); /* \P{Any} */
            }
            if (pr.kind == PRIM_ASSERT) {
                sb_puts(out, pr.assert);
                last = L_ASSERT;
            } else if (pr.kind == PRIM_SET) {
                cset_put_expr(out, &pr.set);
                sb_free(&pr.set.text);
                last = L_ATOM;
            } else {
                if (pr.c == '\n')
                    return fail(p, ERR_INVALID);
                note_literal(p, pr.c);
                sb_put_char(out, pr.c);
                last = L_ATOM;
            }
        } else if (c == '.') {
            sb_puts(out, ".");
            bump(p);
            last = L_ATOM;
        } else if (c == '^' || c == '$') {
            sb_puts(out, c == '^' ? "^" : "$");
            bump(p);
            last = L_ASSERT;
        } else {
            if (c == '\n')
                return fail(p, ERR_INVALID);
            note_literal(p, c);
            sb_put_char(out, c);
            bump(p);
            last = L_ATOM;
        }
    }
}

static bool parse_alternation(struct rxp *p, struct sb *out, bool in_group)
{
    for (;;) {
        if (!parse_concat(p, out))
            return false;
        if (eof(p))
            return in_group ? fail(p, ERR_INVALID) : true; /* unclosed group */
        if (cur(p) == ')')
            return in_group ? true : fail(p, ERR_INVALID); /* unopened group */
        sb_puts(out, "|");
        bump(p);
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
    sb_puts(out, ""); /* an empty pattern is "" too, not NULL */
    parse_alternation(p, out, false);
    return p->err != 0 ? p->err : out->oom ? ERR_NOMEM : 0;
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
        sb_free(&out);
        p.icase = p.any_literal && !p.any_upper;
        p.final = true;
        r = rx_pass(&p, &out);
    }
    if (r == 0) {
        rx->pcre = out.p;
        out.p = NULL;
    }
out:
    sb_free(&out);
    for (size_t i = 0; i < p.nnames; i++)
        free(p.names[i]);
    free(p.names);
    pcre2_code_free(p.upper);
    free(p.every);
    free(p.c);
    return r;
}
