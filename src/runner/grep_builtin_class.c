/*
 * grep_builtin_class.c - one character's worth of rg 13's pattern syntax, written out for
 * PCRE2 (grep_builtin_rx.h; the translator as a whole is grep_builtin_regex.c): sets of
 * characters, Unicode classes (\p, \P) as explicit sets, escapes, and bracketed classes
 * with their set operations (&&, --, ~~) as lookarounds over one character.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "grep_builtin_internal.h"
#include "grep_builtin_rx.h"
#include "utf8.h"

/* ---- character sets ---- */

#define WORD_BODY "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}"
#define SPACE_BODY                                                                             \
    "\\x{9}-\\x{D}\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"          \
    "\\x{202F}\\x{205F}\\x{3000}"

static void cset_body(struct cset *s, const char *body)
{
    grep__sb_puts(&s->text, body);
    s->body = true;
}

/* Writes s as an expression for one character. */
void grep__cset_put_expr(struct sb *out, const struct cset *s)
{
    if (!s->body) {
        grep__sb_put_sb(out, &s->text);
    } else if (s->text.len == 0) {
        grep__sb_puts(out, "(?!)");
    } else {
        grep__sb_puts(out, "[");
        grep__sb_put_sb(out, &s->text);
        grep__sb_puts(out, "]");
    }
}

static void cset_negate(struct cset *s)
{
    struct sb t = {0};

    if (s->body && s->text.len == 0) {
        grep__sb_puts(&t, "(?s:.)");
    } else if (s->body) {
        grep__sb_puts(&t, "[^");
        grep__sb_put_sb(&t, &s->text);
        grep__sb_puts(&t, "]");
    } else {
        grep__sb_puts(&t, "(?:(?!");
        grep__sb_put_sb(&t, &s->text);
        grep__sb_puts(&t, ")(?s:.))");
    }
    grep__sb_free(&s->text);
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
        !grep__rx_probe(tmp))
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
            grep__sb_puts(&s->text, folded[i].closed);
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
    bool negated = grep__rx_cur(p) == 'P', ok;
    size_t start, end;
    char norm[128], value[128];

    if (!grep__rx_bump_and_bump_space(p))
        return grep__rx_fail(p, ERR_INVALID);
    if (grep__rx_cur(p) == '{') {
        start = p->pos + 1;
        while (grep__rx_bump_and_bump_space(p) && grep__rx_cur(p) != '}')
            ;
        if (grep__rx_eof(p))
            return grep__rx_fail(p, ERR_INVALID);
        end = p->pos;
        grep__rx_bump(p);
    } else {
        if (grep__rx_cur(p) == '\\')
            return grep__rx_fail(p, ERR_INVALID);
        start = p->pos;
        end = p->pos + 1;
        grep__rx_bump_and_bump_space(p);
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
        return grep__rx_fail(p, ERR_INVALID);
    if (negated)
        cset_negate(s);
    return true;
}

/* ---- escapes ---- */

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
    unsigned digits = grep__rx_cur(p) == 'x' ? 2 : grep__rx_cur(p) == 'u' ? 4 : 8;
    uint64_t v = 0;
    size_t count = 0;

    if (!grep__rx_bump_and_bump_space(p))
        return grep__rx_fail(p, ERR_INVALID);
    if (grep__rx_cur(p) == '{') {
        while (grep__rx_bump_and_bump_space(p) && grep__rx_cur(p) != '}') {
            if (hexval(grep__rx_cur(p)) < 0)
                return grep__rx_fail(p, ERR_INVALID);
            v = v * 16 + (unsigned)hexval(grep__rx_cur(p));
            if (v > UINT32_MAX)
                return grep__rx_fail(p, ERR_INVALID);
            count++;
        }
        if (grep__rx_eof(p))
            return grep__rx_fail(p, ERR_INVALID);
        grep__rx_bump_and_bump_space(p);
        if (count == 0)
            return grep__rx_fail(p, ERR_INVALID);
    } else {
        for (unsigned i = 0; i < digits; i++) {
            if (i > 0 && !grep__rx_bump_and_bump_space(p))
                return grep__rx_fail(p, ERR_INVALID);
            if (hexval(grep__rx_cur(p)) < 0)
                return grep__rx_fail(p, ERR_INVALID);
            v = v * 16 + (unsigned)hexval(grep__rx_cur(p));
        }
        grep__rx_bump_and_bump_space(p);
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return grep__rx_fail(p, ERR_INVALID);
    *out = (uint32_t)v;
    return true;
}

/* At a '\\'. */
bool grep__rx_parse_escape(struct rxp *p, struct prim *pr)
{
    uint32_t c;

    memset(pr, 0, sizeof(*pr));
    if (!grep__rx_bump(p))
        return grep__rx_fail(p, ERR_INVALID);
    c = grep__rx_cur(p);
    if (c >= '0' && c <= '9')
        return grep__rx_fail(p, ERR_INVALID); /* backreferences (octal is off) */
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
            grep__sb_free(&pr->set.text);
            cset_body(&pr->set, "\\P{Nd}");
        }
        grep__rx_bump(p);
        return true;
    }
    grep__rx_bump(p);
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
    return grep__rx_fail(p, ERR_INVALID);
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
    grep__sb_put_char(&u->body, lo);
    if (hi != lo) {
        grep__sb_puts(&u->body, "-");
        grep__sb_put_char(&u->body, hi);
    }
    u->only_nl = (u->only_nl || !u->nonempty) && lo == '\n' && hi == '\n';
    u->nonempty = true;
}

static void union_add_set(struct cunion *u, const struct cset *s)
{
    if (s->body) {
        grep__sb_put_sb(&u->body, &s->text);
    } else {
        grep__sb_puts(&u->alts, "|");
        grep__sb_put_sb(&u->alts, &s->text);
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
        grep__sb_puts(&s->text, "(?:");
        if (u->body.len > 0) {
            grep__sb_puts(&s->text, "[");
            grep__sb_put_sb(&s->text, &u->body);
            grep__sb_puts(&s->text, "]");
            grep__sb_put_sb(&s->text, &u->alts);
        } else {
            grep__sb_putn(&s->text, u->alts.p + 1, u->alts.len - 1); /* without its first '|' */
        }
        grep__sb_puts(&s->text, ")");
    }
    grep__sb_free(&u->body);
    grep__sb_free(&u->alts);
}

/* acc = acc op rhs (both consumed into acc). */
static void cset_apply(struct cset *acc, enum setop op, struct cset *rhs)
{
    struct sb t = {0};

    switch (op) {
    case OP_AND:
        grep__sb_puts(&t, "(?:(?=");
        grep__cset_put_expr(&t, acc);
        grep__sb_puts(&t, ")");
        grep__cset_put_expr(&t, rhs);
        grep__sb_puts(&t, ")");
        break;
    case OP_MINUS:
        grep__sb_puts(&t, "(?:(?!");
        grep__cset_put_expr(&t, rhs);
        grep__sb_puts(&t, ")");
        grep__cset_put_expr(&t, acc);
        grep__sb_puts(&t, ")");
        break;
    case OP_XOR:
        grep__sb_puts(&t, "(?:(?!");
        grep__cset_put_expr(&t, rhs);
        grep__sb_puts(&t, ")");
        grep__cset_put_expr(&t, acc);
        grep__sb_puts(&t, "|(?!");
        grep__cset_put_expr(&t, acc);
        grep__sb_puts(&t, ")");
        grep__cset_put_expr(&t, rhs);
        grep__sb_puts(&t, ")");
        break;
    case OP_NONE:
        break;
    }
    grep__sb_free(&acc->text);
    grep__sb_free(&rhs->text);
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

    if (!grep__rx_bump(p) || grep__rx_cur(p) != ':' || !grep__rx_bump(p))
        goto no;
    if (grep__rx_cur(p) == '^') {
        negated = true;
        if (!grep__rx_bump(p))
            goto no;
    }
    name_start = p->pos;
    while (grep__rx_cur(p) != ':' && grep__rx_bump(p))
        ;
    if (grep__rx_eof(p))
        goto no;
    for (size_t i = name_start; i < p->pos; i++) {
        if (k + 1 >= sizeof(name) || p->c[i] > 0x7F)
            goto no;
        name[k++] = (char)p->c[i];
    }
    name[k] = '\0';
    if (!grep__rx_bump_if(p, ":]"))
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
    if (grep__rx_cur(p) == '\\')
        return grep__rx_parse_escape(p, pr);
    memset(pr, 0, sizeof(*pr));
    pr->kind = PRIM_LIT;
    pr->c = grep__rx_cur(p);
    grep__rx_bump(p);
    return true;
}

static bool parse_class_range(struct rxp *p, struct cunion *u)
{
    struct prim a, b;

    if (!parse_class_item(p, &a))
        return false;
    grep__rx_bump_space(p);
    if (grep__rx_eof(p)) {
        grep__sb_free(&a.set.text);
        return grep__rx_fail(p, ERR_INVALID);
    }
    if (grep__rx_cur(p) != '-' || grep__rx_peek_space(p) == ']' || grep__rx_peek_space(p) == '-') {
        if (a.kind == PRIM_ASSERT)
            return grep__rx_fail(p, ERR_INVALID); /* \b and friends are no class items */
        if (a.kind == PRIM_LIT) {
            grep__rx_note_literal(p, a.c);
            union_add_char(u, a.c, a.c);
        } else {
            union_add_set(u, &a.set);
            grep__sb_free(&a.set.text);
        }
        return true;
    }
    if (!grep__rx_bump_and_bump_space(p) || a.kind != PRIM_LIT) {
        grep__sb_free(&a.set.text);
        return grep__rx_fail(p, ERR_INVALID);
    }
    if (!parse_class_item(p, &b))
        return false;
    if (b.kind != PRIM_LIT || b.c < a.c) {
        grep__sb_free(&b.set.text);
        return grep__rx_fail(p, ERR_INVALID);
    }
    grep__rx_note_literal(p, a.c);
    grep__rx_note_literal(p, b.c);
    union_add_char(u, a.c, b.c);
    return true;
}

/* At a '['; the class as one set. only_nl: it is a plain union of '\n' alone; maybe_empty:
 * set operations or a negation could have left nothing in it. */
bool grep__rx_parse_class(struct rxp *p, struct cset *out, bool *only_nl, bool *maybe_empty)
{
    struct cunion u = {0};
    struct cset acc = {0}, rhs;
    enum setop op = OP_NONE;
    bool negated = false, ok = false;

    *only_nl = false;
    *maybe_empty = false;
    memset(out, 0, sizeof(*out));
    if (++p->depth > GREP_RX_MAX_NEST)
        return grep__rx_fail(p, ERR_INVALID);
    if (!grep__rx_bump_and_bump_space(p))
        goto out_fail;
    if (grep__rx_cur(p) == '^') {
        negated = true;
        if (!grep__rx_bump_and_bump_space(p))
            goto out_fail;
    }
    while (grep__rx_cur(p) == '-') {
        union_add_char(&u, '-', '-');
        grep__rx_note_literal(p, '-');
        if (!grep__rx_bump_and_bump_space(p))
            goto out_fail;
    }
    if (!u.nonempty && grep__rx_cur(p) == ']') {
        union_add_char(&u, ']', ']');
        grep__rx_note_literal(p, ']');
        if (!grep__rx_bump_and_bump_space(p))
            goto out_fail;
    }
    for (;;) {
        uint32_t c;

        grep__rx_bump_space(p);
        if (grep__rx_eof(p))
            goto out_fail;
        c = grep__rx_cur(p);
        if (c == '[') {
            struct cset inner;
            bool nl, empty;

            if (!maybe_ascii_class(p, &inner) && !grep__rx_parse_class(p, &inner, &nl, &empty))
                goto out;
            union_add_set(&u, &inner);
            grep__sb_free(&inner.text);
        } else if (c == ']') {
            grep__rx_bump(p);
            break;
        } else if ((c == '&' || c == '-' || c == '~') && grep__rx_peek(p) == c) {
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
    grep__rx_fail(p, ERR_INVALID);
out:
    p->depth--;
    grep__sb_free(&u.body);
    grep__sb_free(&u.alts);
    grep__sb_free(&acc.text);
    if (!ok)
        grep__sb_free(&out->text);
    return ok;
}

/* Whether s matches some character other than '\n' (with the case-insensitivity in force):
 * rg refuses a class that does not, and PCRE2 would just never match it. ASCII first,
 * then every scalar value. */
bool grep__rx_set_nonempty(struct rxp *p, const struct cset *s)
{
    struct sb pat = {0};
    pcre2_code *re = NULL;
    pcre2_match_data *md = NULL;
    unsigned char ascii[127];
    size_t n = 0;
    int e, rc;
    PCRE2_SIZE off;
    bool found = true;

    grep__sb_puts(&pat, "(?:");
    grep__cset_put_expr(&pat, s);
    grep__sb_puts(&pat, ")");
    if (pat.oom) {
        grep__rx_fail(p, grep__sb_error(&pat));
        goto out;
    }
    re = pcre2_compile((PCRE2_SPTR)pat.p, pat.len, PCRE2_UTF | PCRE2_UCP |
                       (p->icase ? PCRE2_CASELESS : 0), &e, &off, NULL);
    if (re == NULL)
        goto out; /* the real compile reports it */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    if ((md = pcre2_match_data_create(1, NULL)) == NULL) {
        grep__rx_fail(p, ERR_NOMEM);
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
            grep__rx_fail(p, ERR_NOMEM);
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
    grep__sb_free(&pat);
    return found;
}
