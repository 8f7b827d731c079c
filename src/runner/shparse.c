/*
 * shparse.c - the parse: its entry, the checked strings, the grammar's tokens and
 * its lists (bash 5.2's parse.y, by recursive descent). See shparse.h; commands are
 * shparse_cmd.c's, tokens shparse_lex.c's, words shparse_word.c's.
 *
 * Each function below is named for the yacc rule it reads (simple_list,
 * compound_list, pipeline_command...), and reads it the way the yacc parser does,
 * asking the lexer for one token of lookahead at the moments bash's parser would:
 * bash's lexer decides reserved words, assignments and (( from the tokens before,
 * so the order of reads matters.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "shparse_internal.h"

/* ---- small helpers ------------------------------------------------------- */

int shparse__str_put(struct sp_str *s, const char *b, size_t n)
{
    if (n > SHPARSE_INPUT_MAX * 4 || s->len + n + 1 > SHPARSE_INPUT_MAX * 4)
        return ERR_TOO_LARGE;
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap > 0 ? s->cap : 32;
        char *np;

        while (cap < s->len + n + 1)
            cap *= 2;
        if ((np = realloc(s->p, cap)) == NULL)
            return ERR_NOMEM;
        s->p = np;
        s->cap = cap;
    }
    if (n > 0)
        memcpy(s->p + s->len, b, n);
    s->len += n;
    s->p[s->len] = '\0';
    return 0;
}

int shparse__str_putc(struct sp_str *s, char c)
{
    return shparse__str_put(s, &c, 1);
}

void shparse__str_free(struct sp_str *s)
{
    free(s->p);
    memset(s, 0, sizeof(*s));
}

int shparse__fail(struct sp *p, size_t pos, const char *fmt, ...)
{
    struct sp_ctx *c = p->ctx;
    unsigned long line = 1, col = 1;
    char msg[SHPARSE_ERR_MAX];
    va_list ap;

    if (c->err != 0)
        return c->err;
    if (p->src->derived)
        pos = p->src->origin;
    for (size_t i = 0; i < pos && i < c->toplen; i++) {
        if (c->top[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->errbuf != NULL && c->errlen > 0)
        snprintf(c->errbuf, c->errlen, "%lu:%lu: %s", line, col, msg);
    c->err = ERR_INVALID;
    return c->err;
}

int shparse__nomem(struct sp *p)
{
    struct sp_ctx *c = p->ctx;

    if (c->err == 0) {
        c->err = ERR_NOMEM;
        if (c->errbuf != NULL && c->errlen > 0)
            snprintf(c->errbuf, c->errlen, "%s", "out of memory");
    }
    return c->err;
}

/* Maps a failed sp_str_* or other code to the parse's error. */
int shparse__check(struct sp *p, int r)
{
    if (r == 0)
        return 0;
    if (p->ctx->err != 0)
        return p->ctx->err;
    if (r == ERR_TOO_LARGE)
        return shparse__fail(p, p->pos, "command too long");
    return shparse__nomem(p);
}

/* Inserts a checked string at index at (what follows moves up one). Takes text. */
int shparse__add_item(struct sp *p, size_t at, struct sp_str *text, enum shparse_kind kind,
                    bool literal_name)
{
    struct sp_ctx *c = p->ctx;
    struct shparse_item *it;

    if (c->nitems >= SHPARSE_ITEMS_MAX)
        return shparse__fail(p, p->pos, "too many commands to check");
    if (c->nitems == c->capitems) {
        size_t cap = c->capitems > 0 ? c->capitems * 2 : 16;

        if ((it = realloc(c->items, cap * sizeof(*it))) == NULL)
            return shparse__nomem(p);
        c->items = it;
        c->capitems = cap;
    }
    if (text->p == NULL && shparse__check(p, shparse__str_put(text, "", 0)) != 0)
        return c->err;
    if (at > c->nitems)
        at = c->nitems;
    memmove(c->items + at + 1, c->items + at, (c->nitems - at) * sizeof(c->items[0]));
    c->items[at] = (struct shparse_item){text->p, text->len, kind, literal_name};
    c->nitems++;
    memset(text, 0, sizeof(*text));
    if (p->have_la && p->la.mark >= at)
        p->la.mark++;
    return 0;
}

/* Appends a word's normalised text (shparse.h) to s, after a space unless s is empty. */
int shparse__put_word(struct sp *p, struct sp_str *s, const struct sp_word *w)
{
    struct sp_str raw = {0};
    int r;

    if (s->len > 0 && (r = shparse__str_putc(s, ' ')) != 0)
        return shparse__check(p, r);
    if (w->literal)
        return shparse__check(p, shparse__str_put(s, w->val.p, w->val.len));
    r = shparse__word_raw(p, w, &raw);
    if (r == 0)
        r = shparse__str_put(s, raw.p, raw.len);
    shparse__str_free(&raw);
    return shparse__check(p, r);
}

/* ---- tokens ------------------------------------------------------------- */

int shparse__peek(struct sp *p, struct sp_tok_s **t)
{
    int r;

    if (!p->have_la) {
        struct sp_tok_s tmp;

        if ((r = shparse__lex(p, &tmp)) != 0)
            return r;
        p->la = tmp;
        p->have_la = true;
    }
    *t = &p->la;
    return 0;
}

int shparse__peek_type(struct sp *p, int *type)
{
    struct sp_tok_s *t;
    int r;

    if ((r = shparse__peek(p, &t)) != 0)
        return r;
    *type = t->type;
    return 0;
}

/* Moves the next token into *t (the caller clears it). */
int shparse__next(struct sp *p, struct sp_tok_s *t)
{
    int r;

    if (p->have_la) {
        *t = p->la;
        memset(&p->la, 0, sizeof(p->la));
        p->have_la = false;
        return 0;
    }
    if ((r = shparse__lex(p, t)) != 0)
        return r;
    return 0;
}

int shparse__skip(struct sp *p)
{
    struct sp_tok_s t;
    int r = shparse__next(p, &t);

    shparse__tok_clear(&t);
    return r;
}

const char *shparse__tok_text(const struct sp *p, const struct sp_tok_s *t, char *buf, size_t n)
{
    static const struct {
        int type;
        const char *text;
    } names[] = {
        {T_EOF, "end of file"}, {T_NL, "newline"}, {T_SEMI, ";"}, {T_AMP, "&"}, {T_PIPE, "|"},
        {T_PIPE_AMP, "|&"}, {T_AND_AND, "&&"}, {T_OR_OR, "||"}, {T_DSEMI, ";;"},
        {T_SEMI_AND, ";&"}, {T_DSEMI_AND, ";;&"}, {T_LPAREN, "("}, {T_RPAREN, ")"},
        {T_LESS, "<"}, {T_GREAT, ">"}, {T_DGREAT, ">>"}, {T_LESS_AND, "<&"},
        {T_GREAT_AND, ">&"}, {T_LESS_GREAT, "<>"}, {T_CLOBBER, ">|"}, {T_DLESS, "<<"},
        {T_DLESS_DASH, "<<-"}, {T_TLESS, "<<<"}, {T_AND_GREAT, "&>"}, {T_AND_DGREAT, "&>>"},
        {T_DASH, "-"}, {T_ARITH_CMD, "(("}, {T_ARITH_FOR, "(("}, {T_IF, "if"},
        {T_THEN, "then"}, {T_ELSE, "else"}, {T_ELIF, "elif"}, {T_FI, "fi"}, {T_CASE, "case"},
        {T_ESAC, "esac"}, {T_FOR, "for"}, {T_SELECT, "select"}, {T_WHILE, "while"},
        {T_UNTIL, "until"}, {T_DO, "do"}, {T_DONE, "done"}, {T_IN, "in"},
        {T_FUNCTION, "function"}, {T_TIME, "time"}, {T_LBRACE, "{"}, {T_RBRACE, "}"},
        {T_BANG, "!"}, {T_COND_START, "[["}, {T_COND_END, "]]"}, {T_COPROC, "coproc"},
        {T_TIMEOPT, "-p"}, {T_TIMEIGN, "--"},
    };

    if (t->type == T_WORD || t->type == T_ASSIGN || t->type == T_NUMBER ||
        t->type == T_REDIR_WORD) {
        size_t len = t->w.end - t->w.start;

        if (len > 40)
            len = 40;
        /* the bytes as written; a word is shown only up to 40 bytes */
        snprintf(buf, n, "%.*s", (int)len, p->src->s + t->w.start);
        for (char *c = buf; *c != '\0'; c++) {
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                *c = '?';
        }
        return buf;
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (names[i].type == t->type)
            return names[i].text;
    }
    return "?";
}

int shparse__unexpected(struct sp *p, const struct sp_tok_s *t)
{
    char buf[64];

    if (t->type == T_EOF && p->lx.in_comsub)
        return shparse__fail(p, p->lx.comsub_at, "unexpected EOF while looking for matching `)'");
    if (t->type == T_EOF)
        return shparse__fail(p, t->pos, "syntax error: unexpected end of file");
    return shparse__fail(p, t->pos, "syntax error near unexpected token `%s'",
                   shparse__tok_text(p, t, buf, sizeof(buf)));
}

/* Consumes a token of the given type, or fails on what is there. */
int shparse__expect(struct sp *p, int type)
{
    struct sp_tok_s *t;
    int r;

    if ((r = shparse__peek(p, &t)) != 0)
        return r;
    if (t->type != type)
        return shparse__unexpected(p, t);
    return shparse__skip(p);
}

int shparse__skip_newlines(struct sp *p)
{
    int type, r;

    for (;;) {
        if ((r = shparse__peek_type(p, &type)) != 0)
            return r;
        if (type != T_NL)
            return 0;
        if ((r = shparse__skip(p)) != 0)
            return r;
    }
}

bool shparse__is_redir_op(int t)
{
    return t == T_LESS || t == T_GREAT || t == T_DGREAT || t == T_LESS_AND ||
           t == T_GREAT_AND || t == T_LESS_GREAT || t == T_CLOBBER || t == T_DLESS ||
           t == T_DLESS_DASH || t == T_TLESS || t == T_AND_GREAT || t == T_AND_DGREAT;
}

bool shparse__starts_shell_command(int t)
{
    return t == T_FOR || t == T_CASE || t == T_WHILE || t == T_UNTIL || t == T_SELECT ||
           t == T_IF || t == T_LPAREN || t == T_LBRACE || t == T_ARITH_CMD ||
           t == T_COND_START;
}

bool shparse__starts_command(int t)
{
    return t == T_WORD || t == T_ASSIGN || t == T_NUMBER || t == T_REDIR_WORD ||
           shparse__is_redir_op(t) || shparse__starts_shell_command(t) || t == T_FUNCTION || t == T_TIME ||
           t == T_BANG || t == T_COPROC;
}

bool shparse__is_list_terminator(int t)
{
    return t == T_SEMI || t == T_NL || t == T_EOF;
}

static int command(struct sp *p)
{
    struct sp_tok_s *t, first = {0};
    int r;

    if ((r = shparse__peek(p, &t)) != 0)
        return r;
    if (shparse__starts_shell_command(t->type))
        return shparse__shell_command(p);
    switch (t->type) {
    case T_FUNCTION:
        if ((r = shparse__skip(p)) != 0)
            return r;
        return shparse__function_keyword(p);
    case T_COPROC:
        if ((r = shparse__skip(p)) != 0)
            return r;
        return shparse__coproc(p);
    case T_WORD:
        if ((r = shparse__next(p, &first)) != 0 || (r = shparse__peek(p, &t)) != 0) {
            shparse__tok_clear(&first);
            return r;
        }
        if (t->type == T_LPAREN) {
            /* function_def: WORD ( ) newline_list function_body */
            shparse__tok_clear(&first);
            if ((r = shparse__skip(p)) != 0 || (r = shparse__expect(p, T_RPAREN)) != 0 ||
                (r = shparse__skip_newlines(p)) != 0)
                return r;
            return shparse__function_body(p);
        }
        r = shparse__simple_command(p, &first);
        shparse__tok_clear(&first);
        return r;
    case T_ASSIGN:
    case T_NUMBER:
    case T_REDIR_WORD:
        return shparse__simple_command(p, NULL);
    default:
        if (shparse__is_redir_op(t->type))
            return shparse__simple_command(p, NULL);
        return shparse__unexpected(p, t);
    }
}

/* pipeline: command (| or |& newline_list command)* */
static int pipeline(struct sp *p)
{
    int r, type;

    for (;;) {
        if ((r = command(p)) != 0 || (r = shparse__peek_type(p, &type)) != 0)
            return r;
        if (type != T_PIPE && type != T_PIPE_AMP)
            return 0;
        if ((r = shparse__skip(p)) != 0 || (r = shparse__skip_newlines(p)) != 0)
            return r;
    }
}

/*
 * pipeline_command: [! | time [-p] [--]]... pipeline. A `!' or `time' followed by
 * a list terminator stands alone; the terminator is left to the list (bash reads it
 * with them and then reads the list on as if it were the list's).
 */
static int pipeline_command(struct sp *p)
{
    int r, type, depth = 0;

    for (;;) {
        if ((r = shparse__peek_type(p, &type)) != 0)
            break;
        if (type == T_BANG || type == T_TIME) {
            if ((r = shparse__skip(p)) != 0)
                break;
            if (type == T_TIME) {
                if ((r = shparse__peek_type(p, &type)) != 0)
                    break;
                if (type == T_TIMEOPT && ((r = shparse__skip(p)) != 0 || (r = shparse__peek_type(p, &type)) != 0))
                    break;
                if (type == T_TIMEIGN && (r = shparse__skip(p)) != 0)
                    break;
            }
            if ((r = shparse__peek_type(p, &type)) != 0)
                break;
            if (shparse__is_list_terminator(type))
                break;
            if (++depth > SHPARSE_DEPTH_MAX) {
                r = shparse__fail(p, p->pos, "nested too deeply");
                break;
            }
            continue;
        }
        r = pipeline(p);
        break;
    }
    return r;
}

static int and_or_rest(struct sp *p, int type)
{
    int r;

    if ((r = shparse__skip(p)) != 0)
        return r;
    if ((type == T_AND_AND || type == T_OR_OR) && (r = shparse__skip_newlines(p)) != 0)
        return r;
    return pipeline_command(p);
}

/* compound_list: newline_list list1 [terminator newline_list] */
int shparse__compound_list(struct sp *p)
{
    int r, type;

    if ((r = shparse__skip_newlines(p)) != 0 || (r = pipeline_command(p)) != 0)
        return r;
    for (;;) {
        if ((r = shparse__peek_type(p, &type)) != 0)
            return r;
        if (type == T_AND_AND || type == T_OR_OR) {
            if ((r = and_or_rest(p, type)) != 0)
                return r;
            continue;
        }
        if (type != T_SEMI && type != T_AMP && type != T_NL)
            return 0;
        if ((r = shparse__skip(p)) != 0 || (r = shparse__skip_newlines(p)) != 0 || (r = shparse__peek_type(p, &type)) != 0)
            return r;
        if (!shparse__starts_command(type))
            return 0;
        if ((r = pipeline_command(p)) != 0)
            return r;
    }
}

/* simple_list: one line's list (simple_list1 [; | &]) */
static int simple_list(struct sp *p)
{
    int r, type;

    if ((r = pipeline_command(p)) != 0)
        return r;
    for (;;) {
        if ((r = shparse__peek_type(p, &type)) != 0)
            return r;
        if (type == T_AND_AND || type == T_OR_OR) {
            if ((r = and_or_rest(p, type)) != 0)
                return r;
            continue;
        }
        if (type != T_SEMI && type != T_AMP)
            return 0;
        if ((r = shparse__skip(p)) != 0 || (r = shparse__peek_type(p, &type)) != 0)
            return r;
        if (type == T_NL || type == T_EOF)
            return 0;
        if ((r = pipeline_command(p)) != 0)
            return r;
    }
}

/* A whole script: inputunit after inputunit, each a line's list. */
int shparse__parse_script(struct sp *p)
{
    struct sp_tok_s *t;
    int r;

    for (;;) {
        if ((r = shparse__peek(p, &t)) != 0)
            return r;
        if (t->type == T_EOF)
            return 0;
        if (t->type == T_NL) {
            if ((r = shparse__skip(p)) != 0)
                return r;
            continue;
        }
        if ((r = simple_list(p)) != 0 || (r = shparse__peek(p, &t)) != 0)
            return r;
        if (t->type == T_EOF)
            return 0;
        if (t->type != T_NL)
            return shparse__unexpected(p, t);
        if ((r = shparse__skip(p)) != 0)
            return r;
    }
}

/* comsub: after "$(": compound_list ')' or newline_list ')' (parse_comsub). */
int shparse__parse_comsub(struct sp *p)
{
    struct sp_lex saved = p->lx;
    struct sp_heredoc *hd = p->hd;
    size_t nhd = p->nhd, caphd = p->caphd, at = p->ungot;
    struct sp_tok_s *t;
    int r, type;

    if (++p->ctx->depth > SHPARSE_DEPTH_MAX) {
        p->ctx->depth--;
        return shparse__fail(p, p->pos, "nested too deeply");
    }
    p->hd = NULL;
    p->nhd = p->caphd = 0;
    memset(&p->lx, 0, sizeof(p->lx));
    p->lx.last = T_DOLPAREN;
    p->lx.in_comsub = true;
    p->lx.comsub_at = at > 0 ? at - 1 : at; /* the '$' (or '<', '>') */
    if ((r = shparse__skip_newlines(p)) != 0 || (r = shparse__peek_type(p, &type)) != 0)
        goto out;
    if (type != T_RPAREN && (r = shparse__compound_list(p)) != 0)
        goto out;
    if ((r = shparse__peek(p, &t)) != 0)
        goto out;
    if (t->type != T_RPAREN) {
        r = t->type == T_EOF ? shparse__fail(p, at, "unexpected EOF while looking for matching `)'")
                             : shparse__unexpected(p, t);
        goto out;
    }
    r = shparse__skip(p);
out:
    if (r == 0 && p->nhd > 0) {
        /* here-documents still to read: bash reads them from the next line, before
         * the ones pending outside */
        struct sp_heredoc *all;

        if ((all = realloc(p->hd, (p->nhd + nhd) * sizeof(*all))) == NULL) {
            r = shparse__nomem(p);
        } else {
            if (nhd > 0)
                memcpy(all + p->nhd, hd, nhd * sizeof(*all));
            free(hd);
            hd = all;
            nhd += p->nhd;
            caphd = nhd;
            p->hd = NULL;
            p->nhd = 0;
        }
    }
    for (size_t i = 0; i < p->nhd; i++)
        shparse__str_free(&p->hd[i].delim);
    free(p->hd);
    if (p->have_la) {
        shparse__tok_clear(&p->la);
        p->have_la = false;
    }
    p->hd = hd;
    p->nhd = nhd;
    p->caphd = caphd;
    p->lx = saved;
    p->ctx->depth--;
    return r;
}

/* ---- entry ----------------------------------------------------------------- */

void shparse_result_free(struct shparse_result *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->items[i].text);
    free(r->items);
    memset(r, 0, sizeof(*r));
}

int shparse_parse(const char *src, size_t len, struct shparse_result *out, char *err,
                  size_t errlen)
{
    struct sp_ctx ctx = {0};
    struct sp_src s = {0};
    struct sp p = {0};
    int r;

    memset(out, 0, sizeof(*out));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    ctx.top = src;
    ctx.toplen = len;
    ctx.errbuf = err;
    ctx.errlen = errlen;
    s.s = src;
    s.len = len;
    p.ctx = &ctx;
    p.src = &s;
    p.lx.last = T_NL;
    if (len > SHPARSE_INPUT_MAX) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "command longer than %u bytes", (unsigned)SHPARSE_INPUT_MAX);
        return ERR_TOO_LARGE;
    }
    if (memchr(src, '\0', len) != NULL) {
        r = shparse__fail(&p, (size_t)((const char *)memchr(src, '\0', len) - src),
                    "NUL byte in command");
        return r;
    }
    for (size_t i = 0; i + 1 < len; i++)
        s.capconts += src[i] == '\\' && src[i + 1] == '\n';
    if (s.capconts > 0 && (s.conts = calloc(s.capconts, sizeof(s.conts[0]))) == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s", "out of memory");
        return ERR_NOMEM;
    }
    r = shparse__parse_script(&p);
    if (r == 0 && ctx.err != 0)
        r = ctx.err;
    if (p.have_la)
        shparse__tok_clear(&p.la);
    for (size_t i = 0; i < p.nhd; i++)
        shparse__str_free(&p.hd[i].delim);
    free(p.hd);
    free(s.conts);
    if (r != 0) {
        for (size_t i = 0; i < ctx.nitems; i++)
            free(ctx.items[i].text);
        free(ctx.items);
        return r;
    }
    out->items = ctx.items;
    out->n = ctx.nitems;
    return 0;
}
