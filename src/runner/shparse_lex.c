/*
 * shparse_lex.c - bytes to tokens, as bash 5.2's shell_getc and read_token do it
 * (parse.y), with the same lexer states (shparse_internal.h): line continuations,
 * operators, (( )), comments, here-documents (an unquoted one's substitutions are
 * parsed as a text of its own, as bash parses them only when the document is
 * used), and the parse of such texts. Words are shparse_word.c's.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "shparse_internal.h"


/* Bytes read before a command is "too complex": bounds the re-reading that a
 * (( ... )) that is not arithmetic causes, as bash re-reads it too. */
#define SP_WORK_PER_BYTE 64u
#define SP_WORK_MIN (1024u * 1024u)


void shparse__record_continuation(struct sp *p, size_t at)
{
    struct sp_src *s = p->src;
    size_t i = s->nconts;

    /* Ascending and unique: a rewind ((( ... )) read again) may meet one twice. */
    while (i > 0 && s->conts[i - 1] >= at) {
        if (s->conts[i - 1] == at)
            return;
        i--;
    }
    if (s->nconts == s->capconts)
        return; /* cannot happen: capconts counts every "\\\n" in the text */
    memmove(s->conts + i + 1, s->conts + i, (s->nconts - i) * sizeof(s->conts[0]));
    s->conts[i] = at;
    s->nconts++;
}

static void push_back(struct sp *p)
{
    if (p->nback == sizeof(p->back) / sizeof(p->back[0])) {
        memmove(p->back, p->back + 1, (p->nback - 1) * sizeof(p->back[0]));
        p->nback--;
    }
    p->back[p->nback++] = p->ungot;
}

int shparse__getc(struct sp *p, bool remove_continuation)
{
    const struct sp_src *s = p->src;
    struct sp_ctx *c = p->ctx;

    for (;;) {
        if (++c->work > (c->toplen * SP_WORK_PER_BYTE) + SP_WORK_MIN) {
            shparse__fail(p, p->pos, "command too complex to check");
            p->ungot = p->pos;
            return SP_EOF;
        }
        if (p->pos >= s->len) {
            push_back(p);
            p->ungot = p->pos;
            return SP_EOF;
        }
        if (remove_continuation && s->s[p->pos] == '\\' && p->pos + 1 < s->len &&
            s->s[p->pos + 1] == '\n') {
            shparse__record_continuation(p, p->pos);
            p->pos += 2;
            continue;
        }
        push_back(p);
        p->ungot = p->pos;
        return (unsigned char)s->s[p->pos++];
    }
}

void shparse__ungetc(struct sp *p)
{
    /* bash's shell_ungetc may push back two characters (a peek, then the one before) */
    p->pos = p->ungot;
    if (p->nback > 0)
        p->ungot = p->back[--p->nback];
}

void shparse__word_clear(struct sp_word *w)
{
    shparse__str_free(&w->val);
    memset(w, 0, sizeof(*w));
}

void shparse__tok_clear(struct sp_tok_s *t)
{
    shparse__word_clear(&t->w);
    free(t->arith);
    memset(t, 0, sizeof(*t));
}

/* The bytes [start, end) of p's source without the line continuations removed there. */
int shparse__raw_span(const struct sp *p, size_t start, size_t end, struct sp_str *out)
{
    const struct sp_src *s = p->src;
    size_t at = start;
    int r;

    out->len = 0;
    if ((r = shparse__str_put(out, "", 0)) != 0)
        return r;
    for (size_t i = 0; i < s->nconts && at < end; i++) {
        if (s->conts[i] < at)
            continue;
        if (s->conts[i] >= end)
            break;
        if ((r = shparse__str_put(out, s->s + at, s->conts[i] - at)) != 0)
            return r;
        at = s->conts[i] + 2;
    }
    if (at < end)
        return shparse__str_put(out, s->s + at, end - at);
    return 0;
}

int shparse__word_raw(const struct sp *p, const struct sp_word *w, struct sp_str *out)
{
    return shparse__raw_span(p, w->start, w->end, out);
}

/* ---- here-documents ------------------------------------------------------ */

/* An unquoted here-document's body: expanded as in double quotes when it is used. */
static int heredoc_scan(struct sp *p, const char *text, size_t len, size_t at)
{
    struct sp_src src = {0};
    struct sp sub = {0};
    struct sp_word w = {0};
    int r;

    for (size_t i = 0; i + 1 < len; i++)
        src.capconts += text[i] == '\\' && text[i + 1] == '\n';
    if (src.capconts > 0 &&
        (src.conts = calloc(src.capconts, sizeof(src.conts[0]))) == NULL)
        return shparse__nomem(p);
    src.s = text;
    src.len = len;
    src.derived = true;
    src.origin = p->src->derived ? p->src->origin : at;
    sub.ctx = p->ctx;
    sub.src = &src;
    w.literal = true;
    r = shparse__matched_pair(&sub, &w, 0, SP_EOF, SP_EOF, P_HEREDOC, NULL);
    shparse__word_clear(&w);
    /* here-documents opened in a substitution of the body, with no line left to read */
    for (size_t i = 0; i < sub.nhd; i++)
        shparse__str_free(&sub.hd[i].delim);
    free(sub.hd);
    if (sub.have_la)
        shparse__tok_clear(&sub.la);
    free(src.conts);
    return r;
}

static int read_heredoc(struct sp *p, struct sp_heredoc *h)
{
    const struct sp_src *s = p->src;
    struct sp_str body = {0}, line = {0};
    size_t body_at = p->pos;
    int r = 0;

    if ((r = shparse__str_put(&body, "", 0)) != 0)
        return r;
    for (;;) {
        size_t line_at = p->pos, skip = 0;
        const char *l;
        size_t n;

        if (p->pos >= s->len)
            break; /* delimited by end of file: bash warns and takes it */
        line.len = 0;
        if ((r = shparse__str_put(&line, "", 0)) != 0)
            goto out;
        while (p->pos < s->len) {
            char c = s->s[p->pos];

            if (!h->quoted && c == '\\' && p->pos + 1 < s->len) {
                if (s->s[p->pos + 1] == '\n') {
                    p->pos += 2;
                    continue;
                }
                if ((r = shparse__str_put(&line, s->s + p->pos, 2)) != 0)
                    goto out;
                p->pos += 2;
                continue;
            }
            p->pos++;
            if ((r = shparse__str_putc(&line, c)) != 0)
                goto out;
            if (c == '\n')
                break;
        }
        if (line.len == 0)
            break; /* nothing but line continuations up to the end */
        if (line.p[line.len - 1] != '\n' && (r = shparse__str_putc(&line, '\n')) != 0)
            goto out;
        l = line.p;
        n = line.len;
        if (h->strip_tabs) {
            if (n == h->delim.len + 1 && memcmp(l, h->delim.p, h->delim.len) == 0)
                break;
            while (skip < n && l[skip] == '\t')
                skip++;
            l += skip;
            n -= skip;
        }
        if (n == h->delim.len + 1 && memcmp(l, h->delim.p, h->delim.len) == 0)
            break;
        if (p->lx.in_comsub && n > h->delim.len && memcmp(l, h->delim.p, h->delim.len) == 0 &&
            memchr(l + h->delim.len, ')', n - h->delim.len) != NULL) {
            /* bash's "backwards compatibility" case: `EOF)` ends the document inside
             * $( ... ) and the rest of the line is read again. */
            size_t k = line_at, want = skip + h->delim.len;

            while (want > 0) {
                if (!h->quoted && s->s[k] == '\\' && k + 1 < s->len && s->s[k + 1] == '\n') {
                    k += 2;
                    continue;
                }
                k++;
                want--;
            }
            p->pos = k;
            break;
        }
        if ((r = shparse__str_put(&body, l, n)) != 0)
            goto out;
    }
    if (!h->quoted)
        r = heredoc_scan(p, body.p, body.len, body_at);
out:
    shparse__str_free(&body);
    shparse__str_free(&line);
    return r;
}

int shparse__read_heredocs(struct sp *p)
{
    int r = 0;
    size_t i;

    for (i = 0; i < p->nhd && r == 0; i++)
        r = read_heredoc(p, &p->hd[i]);
    for (i = 0; i < p->nhd; i++)
        shparse__str_free(&p->hd[i].delim);
    p->nhd = 0;
    return r;
}

/* ---- tokens (read_token) ------------------------------------------------- */

/* How many ';'-separated parts make_arith_for_command finds in for's (( ... )): the
 * ';' inside quotes and substitutions do not count (skip_to_delim). */
static int arith_for_parts(const char *s, size_t n)
{
    int parts = 1, depth = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\') {
            i++;
        } else if (s[i] == '\'' || s[i] == '"' || s[i] == '`') {
            char q = s[i];

            while (++i < n && s[i] != q) {
                if (s[i] == '\\' && q != '\'')
                    i++;
            }
        } else if (s[i] == '$' && i + 1 < n && (s[i + 1] == '(' || s[i + 1] == '{' || s[i + 1] == '[')) {
            depth++;
            i++;
        } else if (depth > 0 && (s[i] == ')' || s[i] == '}' || s[i] == ']')) {
            depth--;
        } else if (depth > 0 && (s[i] == '(' || s[i] == '{' || s[i] == '[')) {
            depth++;
        } else if (depth == 0 && s[i] == ';') {
            parts++;
        }
    }
    return parts;
}

/* parse_dparen after "((": the arithmetic command (or for's expressions), or, when the
 * text does not close with "))", a '(' with the input rewound after it. */
static int dparen(struct sp *p, struct sp_tok_s *t)
{
    struct sp_str text = {0};
    size_t body = p->pos, mark = p->ctx->nitems, nhd = p->nhd;
    bool for_exprs = p->lx.last == T_FOR;
    int c, r;

    if ((r = shparse__matched_pair(p, NULL, 0, '(', ')', P_ARITH, NULL)) != 0)
        return r;
    c = shparse__getc(p, false);
    if (c == ')') {
        if ((r = shparse__raw_span(p, body, p->ungot - 1, &text)) != 0)
            return r;
        if (for_exprs && arith_for_parts(text.p, text.len) != 3) {
            shparse__str_free(&text);
            return shparse__fail(p, t->pos, "syntax error: arithmetic for needs three expressions");
        }
        t->type = for_exprs ? T_ARITH_FOR : T_ARITH_CMD;
        t->arith = text.p;
        return 0;
    }
    if (for_exprs)
        return shparse__fail(p, t->pos, "syntax error: `((' without `))' after for");
    /* A nested subshell: read it again as "(" "(" ... */
    shparse__rollback_items(p->ctx, mark);
    while (p->nhd > nhd)
        shparse__str_free(&p->hd[--p->nhd].delim);
    p->pos = t->pos + 1;
    t->type = T_LPAREN;
    return 0;
}

static int read_token(struct sp *p, struct sp_tok_s *t)
{
    int c, peek;

    do
        c = shparse__getc(p, true);
    while (shparse__is_blank(c));
    t->pos = p->ungot;
    if (c == SP_EOF) {
        t->type = T_EOF;
        return p->ctx->err;
    }
    if (c == '#') {
        do
            c = shparse__getc(p, false);
        while (c != SP_EOF && c != '\n');
        c = '\n';
    }
    if (c == '\n') {
        p->lx.flags &= ~PST_ASSIGNOK;
        t->type = T_NL;
        if (p->nhd > 0)
            return shparse__read_heredocs(p);
        return 0;
    }
    if (p->lx.flags & PST_REGEXP)
        return shparse__read_word(p, c, t);
    if (c == '|' || c == '&' || c == ';' || c == '(' || c == ')' || c == '<' || c == '>') {
        p->lx.flags &= ~PST_ASSIGNOK;
        peek = shparse__getc(p, !(p->lx.in_comsub && c == ')'));
        if (c == peek) {
            switch (c) {
            case '<':
                peek = shparse__getc(p, true);
                if (peek == '-') {
                    t->type = T_DLESS_DASH;
                } else if (peek == '<') {
                    t->type = T_TLESS;
                } else {
                    shparse__ungetc(p);
                    t->type = T_DLESS;
                }
                return 0;
            case '>':
                t->type = T_DGREAT;
                return 0;
            case ';':
                p->lx.flags |= PST_CASEPAT;
                peek = shparse__getc(p, true);
                if (peek == '&') {
                    t->type = T_DSEMI_AND;
                } else {
                    shparse__ungetc(p);
                    t->type = T_DSEMI;
                }
                return 0;
            case '&':
                t->type = T_AND_AND;
                return 0;
            case '|':
                t->type = T_OR_OR;
                return 0;
            case '(':
                if (p->lx.last == T_FOR || shparse__reserved_ok(p->lx.last, p->lx.before)) {
                    return dparen(p, t);
                }
                break;
            default:
                break;
            }
        } else if (c == '<' && peek == '&') {
            t->type = T_LESS_AND;
            return 0;
        } else if (c == '>' && peek == '&') {
            t->type = T_GREAT_AND;
            return 0;
        } else if (c == '<' && peek == '>') {
            t->type = T_LESS_GREAT;
            return 0;
        } else if (c == '>' && peek == '|') {
            t->type = T_CLOBBER;
            return 0;
        } else if (c == '&' && peek == '>') {
            peek = shparse__getc(p, true);
            if (peek == '>') {
                t->type = T_AND_DGREAT;
            } else {
                shparse__ungetc(p);
                t->type = T_AND_GREAT;
            }
            return 0;
        } else if (c == '|' && peek == '&') {
            t->type = T_PIPE_AMP;
            return 0;
        } else if (c == ';' && peek == '&') {
            p->lx.flags |= PST_CASEPAT;
            t->type = T_SEMI_AND;
            return 0;
        }
        shparse__ungetc(p);
        if ((p->lx.flags & PST_CASEPAT) && c == ')')
            p->lx.flags &= ~PST_CASEPAT;
        if ((c == '<' || c == '>') && peek == '(') {
            /* process substitution: a word */
            p->pos = t->pos + 1;
            p->ungot = t->pos;
            return shparse__read_word(p, c, t);
        }
        switch (c) {
        case '|': t->type = T_PIPE; break;
        case '&': t->type = T_AMP; break;
        case ';': t->type = T_SEMI; break;
        case '(': t->type = T_LPAREN; break;
        case ')': t->type = T_RPAREN; break;
        case '<': t->type = T_LESS; break;
        default: t->type = T_GREAT; break;
        }
        return 0;
    }
    if (c == '-' && (p->lx.last == T_LESS_AND || p->lx.last == T_GREAT_AND)) {
        t->type = T_DASH;
        return 0;
    }
    return shparse__read_word(p, c, t);
}

int shparse__lex(struct sp *p, struct sp_tok_s *t)
{
    int r;

    memset(t, 0, sizeof(*t));
    t->mark = p->ctx->nitems;
    r = read_token(p, t);
    if (r == 0 && p->ctx->err != 0)
        r = p->ctx->err;
    if (r != 0) {
        shparse__tok_clear(t);
        return r;
    }
    if (!p->lx.frozen) {
        p->lx.before = p->lx.last;
        p->lx.last = t->type;
    }
    return 0;
}

/* ---- texts of their own ------------------------------------------------- */

int shparse__parse_derived(struct sp *p, const char *text, size_t len, size_t at)
{
    struct sp_src src = {0};
    struct sp sub = {0};
    int r;

    if (++p->ctx->depth > SHPARSE_DEPTH_MAX) {
        p->ctx->depth--;
        return shparse__fail(p, at, "nested too deeply");
    }
    for (size_t i = 0; i + 1 < len; i++)
        src.capconts += text[i] == '\\' && text[i + 1] == '\n';
    if (src.capconts > 0 &&
        (src.conts = calloc(src.capconts, sizeof(src.conts[0]))) == NULL) {
        p->ctx->depth--;
        return shparse__nomem(p);
    }
    src.s = text;
    src.len = len;
    src.derived = true;
    src.origin = p->src->derived ? p->src->origin : at;
    sub.ctx = p->ctx;
    sub.src = &src;
    sub.lx.last = T_NL;
    r = shparse__parse_script(&sub);
    if (sub.have_la)
        shparse__tok_clear(&sub.la);
    for (size_t i = 0; i < sub.nhd; i++)
        shparse__str_free(&sub.hd[i].delim);
    free(sub.hd);
    free(src.conts);
    p->ctx->depth--;
    return r;
}
