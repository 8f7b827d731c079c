/*
 * shparse_pair.c - what a word holds between matched pairs, as bash 5.2's
 * parse_matched_pair reads it (parse.y): quotes, $'...' decoded, and the substitutions
 * nested in a word ($( ) and <( ) parsed right here by the grammar; a backquote's body
 * and a $(( )) that is not arithmetic parsed as texts of their own). shparse_word.c
 * reads the words around them. See shparse.h.
 */
#include <stdlib.h>
#include <string.h>

#include "ascii.h"
#include "err.h"
#include "shparse_internal.h"

/* ---- $'...' ---------------------------------------------------------------- */

/*
 * Decodes the body of $'...' (bash's ansicstr) onto out. Returns false when the
 * result would depend on the locale or hold a NUL (a \u beyond ASCII, \0): the word
 * is then not taken as literal.
 */
bool shparse__ansi_decode(const char *s, size_t n, struct sp_str *out, int *r)
{
    bool ok = true;

    *r = 0;
    for (size_t i = 0; i < n && *r == 0; i++) {
        unsigned long v = 0;
        char c = s[i];

        if (c != '\\' || i + 1 == n) {
            *r = shparse__str_putc(out, c);
            continue;
        }
        c = s[++i];
        switch (c) {
        case 'a': *r = shparse__str_putc(out, '\a'); break;
        case 'b': *r = shparse__str_putc(out, '\b'); break;
        case 'e':
        case 'E': *r = shparse__str_putc(out, '\033'); break;
        case 'f': *r = shparse__str_putc(out, '\f'); break;
        case 'n': *r = shparse__str_putc(out, '\n'); break;
        case 'r': *r = shparse__str_putc(out, '\r'); break;
        case 't': *r = shparse__str_putc(out, '\t'); break;
        case 'v': *r = shparse__str_putc(out, '\v'); break;
        case '\\':
        case '\'':
        case '"':
        case '?': *r = shparse__str_putc(out, c); break;
        case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': {
            size_t k = 0;

            for (; k < 3 && i < n && s[i] >= '0' && s[i] <= '7'; k++, i++)
                v = v * 8 + (unsigned long)(s[i] - '0');
            i--;
            if ((v & 0xff) == 0)
                ok = false;
            *r = shparse__str_putc(out, (char)(v & 0xff));
            break;
        }
        case 'x':
        case 'u':
        case 'U': {
            size_t max = c == 'x' ? 2 : c == 'u' ? 4 : 8, k = 0;

            for (; k < max && i + 1 < n && ascii_hex_value((unsigned char)s[i + 1]) >= 0; k++, i++)
                v = v * 16 + (unsigned long)ascii_hex_value((unsigned char)s[i + 1]);
            if (k == 0) {
                /* no digits: bash keeps the backslash and the letter */
                *r = shparse__str_put(out, s + i - 1, 2);
                break;
            }
            if (v == 0 || (c != 'x' && v > 0x7f))
                ok = false;
            *r = shparse__str_putc(out, (char)(v & 0xff));
            break;
        }
        case 'c':
            if (i + 1 < n) {
                unsigned char x = (unsigned char)s[++i];

                if (x >= 'a' && x <= 'z')
                    x = (unsigned char)(x - 'a' + 'A');
                if ((x & 0x1f) == 0 || x == '\\')
                    ok = false;
                *r = shparse__str_putc(out, (char)(x & 0x1f));
            } else {
                *r = shparse__str_put(out, "\\c", 2);
            }
            break;
        default:
            *r = shparse__str_put(out, s + i - 1, 2);
            break;
        }
    }
    return ok;
}

/* ---- matched pairs (parse_matched_pair) ---------------------------------- */

/* bash's de_backslash, plus '\"' inside double quotes: a backquote's body as bash
 * runs it. */
static int backquote_body(struct sp *p, size_t start, size_t end, bool in_dquote, size_t at)
{
    struct sp_str raw = {0}, body = {0};
    int r;

    if ((r = shparse__raw_span(p, start, end, &raw)) != 0)
        goto out;
    if ((r = shparse__str_put(&body, "", 0)) != 0)
        goto out;
    for (size_t i = 0; i < raw.len && r == 0; i++) {
        if (raw.p[i] == '\\' && i + 1 < raw.len &&
            (raw.p[i + 1] == '`' || raw.p[i + 1] == '\\' || raw.p[i + 1] == '$' ||
             (in_dquote && raw.p[i + 1] == '"')))
            i++;
        r = shparse__str_putc(&body, raw.p[i]);
    }
    if (r == 0)
        r = shparse__parse_derived(p, body.p, body.len, at);
out:
    shparse__str_free(&raw);
    shparse__str_free(&body);
    return r;
}

/*
 * parse_matched_pair: reads up to and with the close that matches (the open was
 * read by the caller). val (may be NULL) gets the text after quote removal; the
 * close is put too for a grouping (open != close), not for a quote.
 */
int shparse__matched_pair(struct sp *p, struct sp_word *w, int qc, int open, int close,
                        unsigned flags, struct sp_str *val)
{
    int count = 1, ch = SP_EOF, r = 0;
    bool passnext = false, wasdol = false, gtlt = false;
    unsigned rflags = qc == '"' ? P_DQUOTE : (flags & P_DQUOTE);
    size_t start = p->pos, open_at = p->ungot;
    bool dq_text = qc == '"' || (flags & P_HEREDOC);

    if (++p->ctx->depth > SHPARSE_DEPTH_MAX)
        return shparse__fail(p, p->pos, "nested too deeply");
    for (;;) {
        ch = shparse__getc(p, qc != '\'' && !passnext);
        if (ch == SP_EOF) {
            if (flags & P_HEREDOC)
                break;
            r = shparse__fail(p, open_at, "unexpected EOF while looking for matching `%c'", close);
            goto out;
        }
        if (passnext) {
            passnext = false;
            if (qc != '\'' && ch == '\n') {
                /* a quoted \<newline> inside double quotes disappears */
                if (val != NULL && val->len > 0 && !(open == '\'' || qc == '\''))
                    val->p[--val->len] = '\0';
                continue;
            }
            if (dq_text && val != NULL && val->len > 0 &&
                (ch == '$' || ch == '`' || ch == '"' || ch == '\\'))
                val->p[--val->len] = '\0'; /* the backslash goes in double quotes */
            if ((r = shparse__put_val(val, ch)) != 0)
                goto out;
            wasdol = gtlt = false;
            continue;
        }
        if (ch == close && !(flags & P_HEREDOC))
            count--;
        else if (open != close && wasdol && open == '{' && ch == open)
            count++;
        else if (!(flags & P_FIRSTCLOSE) && ch == open && !(flags & P_HEREDOC))
            count++;
        if (count == 0) {
            if (open != close && (r = shparse__put_val(val, ch)) != 0)
                goto out;
            break;
        }
        if (open == '\'') {
            if ((flags & P_ALLOWESC) && ch == '\\')
                passnext = true;
            if ((r = shparse__put_val(val, ch)) != 0)
                goto out;
            continue;
        }
        if (ch == '\\')
            passnext = true;
        if ((r = shparse__put_val(val, ch)) != 0)
            goto out;
        if (open == '`')
            goto next;
        if (open != close) {
            if (ch == '\'' || ch == '"' || ch == '`') {
                /* a quote inside a grouping: its text is quote-removed */
                if (val != NULL)
                    val->p[--val->len] = '\0';
                if (wasdol && ch == '\'') {
                    struct sp_str body = {0}, scratch = {0};
                    bool ok;

                    if (val != NULL)
                        val->p[--val->len] = '\0'; /* the '$' */
                    r = shparse__matched_pair(p, w, ch, ch, ch, P_ALLOWESC | rflags, &body);
                    ok = r == 0 &&
                         shparse__ansi_decode(body.p, body.len, val != NULL ? val : &scratch, &r);
                    if (!ok && w != NULL)
                        w->literal = false;
                    shparse__str_free(&body);
                    shparse__str_free(&scratch);
                } else {
                    r = shparse__matched_pair(p, w, ch, ch, ch, rflags, val);
                }
                if (r != 0)
                    goto out;
            } else if ((flags & (P_ARRAYSUB | P_DOLBRACE)) && wasdol &&
                       (ch == '(' || ch == '{' || ch == '[')) {
                goto dollar_word;
            } else if ((flags & P_ARITH) && wasdol && ch == '(') {
                goto dollar_word;
            } else if ((flags & (P_ARRAYSUB | P_DOLBRACE)) && gtlt && ch == '(') {
                goto dollar_word;
            }
        } else if ((open == '"' || (flags & P_HEREDOC)) && ch == '`') {
            if (w != NULL)
                w->literal = false;
            if ((r = shparse__matched_pair(p, w, 0, '`', '`', rflags, NULL)) != 0)
                goto out;
        } else if (wasdol && (ch == '(' || ch == '{' || ch == '[')) {
            goto dollar_word;
        }
        if (wasdol && shparse__starts_param(ch) && w != NULL)
            w->literal = false; /* "$x", [$i], ($x): an expansion */
        goto next;
    dollar_word:
        if (open == ch)
            count--; /* undo the increment above */
        if (w != NULL)
            w->literal = false;
        if (ch == '(')
            r = shparse__comsub_or_arith(p, w, gtlt ? '<' : '$');
        else if (ch == '{')
            r = shparse__matched_pair(p, w, 0, '{', '}', P_FIRSTCLOSE | P_DOLBRACE | rflags, val);
        else
            r = shparse__matched_pair(p, w, 0, '[', ']', rflags | P_ARITH, val);
        if (r != 0)
            goto out;
    next:
        if ((ch == '<' || ch == '>') && !gtlt)
            gtlt = true;
        else
            gtlt = false;
        if (ch == '$' && !wasdol)
            wasdol = true;
        else
            wasdol = false;
    }
    if (open == '`') {
        /* the body of a backquote: parsed as bash will parse it when it runs it */
        if (w != NULL)
            w->literal = false;
        r = backquote_body(p, start, p->ungot, (flags & P_DQUOTE) != 0 || qc == '"', open_at);
    } else if (open != close && w != NULL && (flags & P_ARITH)) {
        w->literal = false;
    }
out:
    p->ctx->depth--;
    return r;
}

/* bash's chk_arithsub: whether s[0..n) is an arithmetic expression's text. */
static bool chk_arithsub(const char *s, size_t n)
{
    long count = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] == '(') {
            count++;
        } else if (s[i] == ')') {
            if (--count < 0)
                return false;
        } else if (s[i] == '\\') {
            i++;
        } else if (s[i] == '\'') {
            while (++i < n && s[i] != '\'')
                ;
        } else if (s[i] == '"') {
            while (++i < n && s[i] != '"') {
                if (s[i] == '\\')
                    i++;
            }
        }
    }
    return count == 0;
}

void shparse__rollback_items(struct sp_ctx *c, size_t mark)
{
    while (c->nitems > mark)
        free(c->items[--c->nitems].text);
}

/*
 * After "$(", "<(" or ">(" (c says which): a command substitution parsed by the
 * grammar, or, when "((" follows, what bash reads as arithmetic at parse time and
 * decides on when it runs: arithmetic if it is one, else a command substitution.
 */
int shparse__comsub_or_arith(struct sp *p, struct sp_word *w, int c)
{
    struct sp_str text = {0};
    size_t start = p->pos, at = p->ungot > 0 ? p->ungot - 1 : 0, mark = p->ctx->nitems;
    int peek, r;

    if (w != NULL)
        w->literal = false;
    peek = shparse__getc(p, true);
    shparse__ungetc(p);
    if (peek != '(')
        return shparse__parse_comsub(p);
    if ((r = shparse__matched_pair(p, w, 0, '(', ')', P_ARITH, NULL)) != 0)
        return r;
    if ((r = shparse__raw_span(p, start, p->ungot, &text)) != 0)
        goto out;
    if (c == '$' && text.len >= 2 && text.p[0] == '(' && text.p[text.len - 1] == ')' &&
        chk_arithsub(text.p + 1, text.len - 2))
        goto out;
    /* Not arithmetic: bash runs it as a command substitution. What matched_pair
     * parsed inside it is parsed again as part of the whole. */
    shparse__rollback_items(p->ctx, mark);
    r = shparse__parse_derived(p, text.p, text.len, at);
out:
    shparse__str_free(&text);
    return r;
}
