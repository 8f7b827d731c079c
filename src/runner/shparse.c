/*
 * shparse.c - the grammar (bash 5.2's parse.y, by recursive descent) and the
 * checked strings it yields. See shparse.h; the lexer is shparse_lex.c.
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

int sp_str_put(struct sp_str *s, const char *b, size_t n)
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

int sp_str_putc(struct sp_str *s, char c)
{
    return sp_str_put(s, &c, 1);
}

void sp_str_free(struct sp_str *s)
{
    free(s->p);
    memset(s, 0, sizeof(*s));
}

int sp_fail(struct sp *p, size_t pos, const char *fmt, ...)
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

int sp_nomem(struct sp *p)
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
static int sp_check(struct sp *p, int r)
{
    if (r == 0)
        return 0;
    if (p->ctx->err != 0)
        return p->ctx->err;
    if (r == ERR_TOO_LARGE)
        return sp_fail(p, p->pos, "command too long");
    return sp_nomem(p);
}

/* Inserts a checked string at index at (what follows moves up one). Takes text. */
static int add_item(struct sp *p, size_t at, struct sp_str *text, enum shparse_kind kind,
                    bool literal_name)
{
    struct sp_ctx *c = p->ctx;
    struct shparse_item *it;

    if (c->nitems >= SHPARSE_ITEMS_MAX)
        return sp_fail(p, p->pos, "too many commands to check");
    if (c->nitems == c->capitems) {
        size_t cap = c->capitems > 0 ? c->capitems * 2 : 16;

        if ((it = realloc(c->items, cap * sizeof(*it))) == NULL)
            return sp_nomem(p);
        c->items = it;
        c->capitems = cap;
    }
    if (text->p == NULL && sp_check(p, sp_str_put(text, "", 0)) != 0)
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
static int put_word(struct sp *p, struct sp_str *s, const struct sp_word *w)
{
    struct sp_str raw = {0};
    int r;

    if (s->len > 0 && (r = sp_str_putc(s, ' ')) != 0)
        return sp_check(p, r);
    if (w->literal)
        return sp_check(p, sp_str_put(s, w->val.p, w->val.len));
    r = sp_word_raw(p, w, &raw);
    if (r == 0)
        r = sp_str_put(s, raw.p, raw.len);
    sp_str_free(&raw);
    return sp_check(p, r);
}

/* ---- tokens ------------------------------------------------------------- */

static int peek(struct sp *p, struct sp_tok_s **t)
{
    int r;

    if (!p->have_la) {
        struct sp_tok_s tmp;

        if ((r = sp_lex(p, &tmp)) != 0)
            return r;
        p->la = tmp;
        p->have_la = true;
    }
    *t = &p->la;
    return 0;
}

static int peek_type(struct sp *p, int *type)
{
    struct sp_tok_s *t;
    int r;

    if ((r = peek(p, &t)) != 0)
        return r;
    *type = t->type;
    return 0;
}

/* Moves the next token into *t (the caller clears it). */
static int next(struct sp *p, struct sp_tok_s *t)
{
    int r;

    if (p->have_la) {
        *t = p->la;
        memset(&p->la, 0, sizeof(p->la));
        p->have_la = false;
        return 0;
    }
    if ((r = sp_lex(p, t)) != 0)
        return r;
    return 0;
}

static int skip(struct sp *p)
{
    struct sp_tok_s t;
    int r = next(p, &t);

    sp_tok_clear(&t);
    return r;
}

static const char *tok_text(const struct sp *p, const struct sp_tok_s *t, char *buf, size_t n)
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

static int unexpected(struct sp *p, const struct sp_tok_s *t)
{
    char buf[64];

    if (t->type == T_EOF && p->lx.in_comsub)
        return sp_fail(p, p->lx.comsub_at, "unexpected EOF while looking for matching `)'");
    if (t->type == T_EOF)
        return sp_fail(p, t->pos, "syntax error: unexpected end of file");
    return sp_fail(p, t->pos, "syntax error near unexpected token `%s'",
                   tok_text(p, t, buf, sizeof(buf)));
}

/* Consumes a token of the given type, or fails on what is there. */
static int expect(struct sp *p, int type)
{
    struct sp_tok_s *t;
    int r;

    if ((r = peek(p, &t)) != 0)
        return r;
    if (t->type != type)
        return unexpected(p, t);
    return skip(p);
}

static int skip_newlines(struct sp *p)
{
    int type, r;

    for (;;) {
        if ((r = peek_type(p, &type)) != 0)
            return r;
        if (type != T_NL)
            return 0;
        if ((r = skip(p)) != 0)
            return r;
    }
}

static bool is_redir_op(int t)
{
    return t == T_LESS || t == T_GREAT || t == T_DGREAT || t == T_LESS_AND ||
           t == T_GREAT_AND || t == T_LESS_GREAT || t == T_CLOBBER || t == T_DLESS ||
           t == T_DLESS_DASH || t == T_TLESS || t == T_AND_GREAT || t == T_AND_DGREAT;
}

static bool starts_shell_command(int t)
{
    return t == T_FOR || t == T_CASE || t == T_WHILE || t == T_UNTIL || t == T_SELECT ||
           t == T_IF || t == T_LPAREN || t == T_LBRACE || t == T_ARITH_CMD ||
           t == T_COND_START;
}

static bool starts_command(int t)
{
    return t == T_WORD || t == T_ASSIGN || t == T_NUMBER || t == T_REDIR_WORD ||
           is_redir_op(t) || starts_shell_command(t) || t == T_FUNCTION || t == T_TIME ||
           t == T_BANG || t == T_COPROC;
}

static bool is_list_terminator(int t)
{
    return t == T_SEMI || t == T_NL || t == T_EOF;
}

/* ---- redirections --------------------------------------------------------- */

static bool is_fd_word(const struct sp_word *w)
{
    size_t n = w->val.len, i = 0;

    if (!w->literal || n == 0)
        return false;
    if (n == 1 && w->val.p[0] == '-')
        return true;
    while (i < n && w->val.p[i] >= '0' && w->val.p[i] <= '9')
        i++;
    return i > 0 && (i == n || (i + 1 == n && w->val.p[i] == '-'));
}

static int add_heredoc(struct sp *p, const struct sp_word *w, bool strip_tabs)
{
    struct sp_heredoc *h;
    int r;

    if (p->nhd == p->caphd) {
        size_t cap = p->caphd > 0 ? p->caphd * 2 : 4;

        if ((h = realloc(p->hd, cap * sizeof(*h))) == NULL)
            return sp_nomem(p);
        p->hd = h;
        p->caphd = cap;
    }
    h = &p->hd[p->nhd];
    memset(h, 0, sizeof(*h));
    h->quoted = w->quoted;
    h->strip_tabs = strip_tabs;
    /* bash: quote removal only when the delimiter is quoted; else the word as written */
    if (w->quoted)
        r = sp_str_put(&h->delim, w->val.p, w->val.len);
    else
        r = sp_word_raw(p, w, &h->delim);
    if (r != 0) {
        sp_str_free(&h->delim);
        return sp_check(p, r);
    }
    {
        struct sp_str raw = {0};
        bool comsub = false;

        if ((r = sp_word_raw(p, w, &raw)) != 0)
            return sp_check(p, r);
        for (size_t i = 0; i + 1 < raw.len; i++) {
            if ((raw.p[i] == '$' || raw.p[i] == '<' || raw.p[i] == '>') && raw.p[i + 1] == '(' &&
                !(raw.p[i] == '$' && i + 2 < raw.len && raw.p[i + 2] == '('))
                comsub = true;
        }
        sp_str_free(&raw);
        if (comsub) {
            /* bash matches the lines against its own re-printing of a $( ... ), not
             * the bytes as written: where the document ends cannot be known here */
            sp_str_free(&h->delim);
            return sp_fail(p, w->start, "here-document delimiter with a command substitution");
        }
    }
    p->nhd++;
    return 0;
}

/* One redirection: [NUMBER | {name}] operator target. */
static int redirection(struct sp *p)
{
    struct sp_tok_s op = {0}, target = {0};
    struct sp_str s = {0};
    size_t mark;
    bool write = false;
    int r;

    if ((r = next(p, &op)) != 0)
        return r;
    mark = op.mark;
    if (op.type == T_NUMBER || op.type == T_REDIR_WORD) {
        sp_tok_clear(&op);
        if ((r = next(p, &op)) != 0)
            return r;
        if (!is_redir_op(op.type) || op.type == T_AND_GREAT || op.type == T_AND_DGREAT) {
            r = unexpected(p, &op);
            goto out;
        }
    }
    if ((r = next(p, &target)) != 0)
        goto out;
    if (op.type == T_LESS_AND || op.type == T_GREAT_AND) {
        if (target.type == T_NUMBER || target.type == T_DASH)
            goto out; /* fd duplication or close: not gated */
        if (target.type != T_WORD) {
            r = unexpected(p, &target);
            goto out;
        }
        /* >&WORD is &>WORD unless WORD is a number or '-' (or a move, N-) */
        write = op.type == T_GREAT_AND && !is_fd_word(&target.w);
    } else {
        if (target.type != T_WORD) {
            r = unexpected(p, &target);
            goto out;
        }
        write = op.type == T_GREAT || op.type == T_DGREAT || op.type == T_CLOBBER ||
                op.type == T_AND_GREAT || op.type == T_AND_DGREAT || op.type == T_LESS_GREAT;
        if (op.type == T_DLESS || op.type == T_DLESS_DASH) {
            r = add_heredoc(p, &target.w, op.type == T_DLESS_DASH);
            goto out;
        }
    }
    if (write) {
        /* put_word puts the space after '>' */
        if ((r = sp_check(p, sp_str_putc(&s, '>'))) != 0 || (r = put_word(p, &s, &target.w)) != 0)
            goto out;
        r = add_item(p, mark, &s, SHPARSE_REDIRECT, true);
    }
out:
    sp_str_free(&s);
    sp_tok_clear(&op);
    sp_tok_clear(&target);
    return r;
}

static int redirection_list(struct sp *p)
{
    struct sp_tok_s *t;
    int r;

    for (;;) {
        if ((r = peek(p, &t)) != 0)
            return r;
        if (!is_redir_op(t->type) && t->type != T_NUMBER && t->type != T_REDIR_WORD)
            return 0;
        if ((r = redirection(p)) != 0)
            return r;
    }
}

/* ---- commands ----------------------------------------------------------- */

static int compound_list(struct sp *p);
static int pipeline_command(struct sp *p);
static int shell_command(struct sp *p);

/*
 * simple_command: words and redirections. first, if not NULL, is its first word,
 * already read (a coproc's, or one that might have named a function).
 */
static int simple_command(struct sp *p, struct sp_tok_s *first)
{
    struct sp_str text = {0};
    struct sp_tok_s t = {0}, *la;
    size_t slot = SIZE_MAX, nwords = 0, nredirs = 0;
    bool literal_name = true, have_name = false;
    int r = 0;

    for (;;) {
        if (first != NULL) {
            t = *first;
            memset(first, 0, sizeof(*first));
            first = NULL;
        } else {
            if ((r = peek(p, &la)) != 0)
                goto out;
            if (slot == SIZE_MAX)
                slot = la->mark;
            if (la->type == T_NUMBER || la->type == T_REDIR_WORD || is_redir_op(la->type)) {
                if ((r = redirection(p)) != 0)
                    goto out;
                nredirs++;
                if (nwords == 0)
                    p->lx.flags |= PST_REDIRLIST; /* make_simple_command */
                continue;
            }
            if (la->type != T_WORD && la->type != T_ASSIGN) {
                if (slot == la->mark && nwords == 0 && nredirs == 0)
                    r = unexpected(p, la); /* an empty simple command (coproc alone) */
                break;
            }
            if ((r = next(p, &t)) != 0)
                goto out;
        }
        if (slot == SIZE_MAX)
            slot = t.mark;
        p->lx.flags &= ~PST_REDIRLIST;
        if (!have_name) {
            literal_name = literal_name && t.w.literal;
            have_name = t.type != T_ASSIGN;
        }
        if ((r = put_word(p, &text, &t.w)) != 0)
            goto out;
        nwords++;
        sp_tok_clear(&t);
    }
    p->lx.flags &= ~PST_REDIRLIST; /* clean_simple_command */
    if (r == 0 && nwords > 0)
        r = add_item(p, slot, &text, SHPARSE_COMMAND, literal_name);
out:
    sp_tok_clear(&t);
    sp_str_free(&text);
    return r;
}

/* The body of for and select: DO compound_list DONE, or { compound_list }. */
static int loop_body(struct sp *p)
{
    struct sp_tok_s *t;
    int r, close;

    if ((r = peek(p, &t)) != 0)
        return r;
    if (t->type == T_DO)
        close = T_DONE;
    else if (t->type == T_LBRACE)
        close = T_RBRACE;
    else
        return unexpected(p, t);
    if ((r = skip(p)) != 0 || (r = compound_list(p)) != 0)
        return r;
    return expect(p, close);
}

/* for_command, arith_for_command, select_command (the FOR or SELECT is read). */
static int for_command(struct sp *p, bool is_select)
{
    struct sp_tok_s *t, name = {0};
    int r, type;

    if ((r = peek(p, &t)) != 0)
        return r;
    if (!is_select && t->type == T_ARITH_FOR) {
        struct sp_str s = {0};
        size_t mark = t->mark;

        r = sp_check(p, sp_str_put(&s, "for ((", 6));
        if (r == 0)
            r = sp_check(p, sp_str_put(&s, t->arith, strlen(t->arith)));
        if (r == 0)
            r = sp_check(p, sp_str_put(&s, "))", 2));
        if (r == 0)
            r = add_item(p, mark, &s, SHPARSE_ARITH, true);
        sp_str_free(&s);
        if (r != 0 || (r = skip(p)) != 0 || (r = peek_type(p, &type)) != 0)
            return r;
        if (type == T_SEMI || type == T_NL) {
            if ((r = skip(p)) != 0 || (r = skip_newlines(p)) != 0)
                return r;
        }
        return loop_body(p);
    }
    if (t->type != T_WORD)
        return unexpected(p, t);
    if ((r = next(p, &name)) != 0)
        return r;
    sp_tok_clear(&name);
    if ((r = peek_type(p, &type)) != 0)
        return r;
    if (type == T_SEMI) {
        if ((r = skip(p)) != 0 || (r = skip_newlines(p)) != 0)
            return r;
        return loop_body(p);
    }
    if ((r = skip_newlines(p)) != 0 || (r = peek_type(p, &type)) != 0)
        return r;
    if (type == T_IN) {
        if ((r = skip(p)) != 0)
            return r;
        for (;;) {
            if ((r = peek(p, &t)) != 0)
                return r;
            if (t->type != T_WORD)
                break;
            if ((r = skip(p)) != 0)
                return r;
        }
        if (t->type != T_SEMI && t->type != T_NL)
            return unexpected(p, t);
        if ((r = skip(p)) != 0 || (r = skip_newlines(p)) != 0)
            return r;
    }
    return loop_body(p);
}

/* case_command (CASE is read). */
static int case_command(struct sp *p)
{
    struct sp_tok_s *t;
    int r;

    if ((r = peek(p, &t)) != 0)
        return r;
    if (t->type != T_WORD)
        return unexpected(p, t);
    if ((r = skip(p)) != 0 || (r = skip_newlines(p)) != 0 || (r = expect(p, T_IN)) != 0)
        return r;
    for (;;) {
        if ((r = skip_newlines(p)) != 0 || (r = peek(p, &t)) != 0)
            return r;
        if (t->type == T_ESAC)
            return skip(p);
        /* pattern_list: [(] WORD (| WORD)* ) body */
        if (t->type == T_LPAREN) {
            if ((r = skip(p)) != 0 || (r = peek(p, &t)) != 0)
                return r;
        }
        for (;;) {
            if (t->type != T_WORD)
                return unexpected(p, t);
            if ((r = skip(p)) != 0 || (r = peek(p, &t)) != 0)
                return r;
            if (t->type != T_PIPE)
                break;
            if ((r = skip(p)) != 0 || (r = peek(p, &t)) != 0)
                return r;
        }
        if ((r = expect(p, T_RPAREN)) != 0 || (r = skip_newlines(p)) != 0 ||
            (r = peek(p, &t)) != 0)
            return r;
        if (starts_command(t->type)) {
            if ((r = compound_list(p)) != 0 || (r = peek(p, &t)) != 0)
                return r;
        }
        if (t->type == T_ESAC)
            return skip(p);
        if (t->type != T_DSEMI && t->type != T_SEMI_AND && t->type != T_DSEMI_AND)
            return unexpected(p, t);
        if ((r = skip(p)) != 0)
            return r;
    }
}

static int if_command(struct sp *p)
{
    int r, type;

    if ((r = compound_list(p)) != 0 || (r = expect(p, T_THEN)) != 0 ||
        (r = compound_list(p)) != 0)
        return r;
    for (;;) {
        if ((r = peek_type(p, &type)) != 0)
            return r;
        if (type == T_ELIF) {
            if ((r = skip(p)) != 0 || (r = compound_list(p)) != 0 ||
                (r = expect(p, T_THEN)) != 0 || (r = compound_list(p)) != 0)
                return r;
            continue;
        }
        if (type == T_ELSE) {
            if ((r = skip(p)) != 0 || (r = compound_list(p)) != 0)
                return r;
        }
        return expect(p, T_FI);
    }
}

/* ---- [[ ... ]] (cond_expr, cond_or, cond_and, cond_term) -------------------- */

struct cond {
    struct sp_tok_s cur; /* bash's cond_token */
    struct sp_str text;
};

static int cond_read(struct sp *p, struct cond *c, bool skip_nl)
{
    int r;

    for (;;) {
        sp_tok_clear(&c->cur);
        if ((r = next(p, &c->cur)) != 0)
            return r;
        if (!skip_nl || c->cur.type != T_NL)
            return 0;
    }
}

static int cond_put(struct sp *p, struct cond *c, const char *s)
{
    if (c->text.len > 0 && sp_str_putc(&c->text, ' ') != 0)
        return sp_nomem(p);
    return sp_check(p, sp_str_put(&c->text, s, strlen(s)));
}

static bool word_is(const struct sp *p, const struct sp_tok_s *t, const char *lit)
{
    size_t n = strlen(lit);

    return t->type == T_WORD && t->w.end - t->w.start == n &&
           memcmp(p->src->s + t->w.start, lit, n) == 0;
}

static bool test_unop(const struct sp *p, const struct sp_tok_s *t)
{
    const char *s = p->src->s + t->w.start;

    return t->type == T_WORD && t->w.end - t->w.start == 2 && s[0] == '-' &&
           strchr("abcdefghknoprstuvwxzGLNORS", s[1]) != NULL && s[1] != '\0';
}

static bool test_binop(const struct sp *p, const struct sp_tok_s *t)
{
    static const char *const ops[] = {"=",   "==",  "!=",  "<",   ">",   "-nt", "-ot",
                                      "-ef", "-eq", "-ne", "-lt", "-le", "-gt", "-ge"};

    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (word_is(p, t, ops[i]))
            return true;
    }
    return false;
}

static int cond_or(struct sp *p, struct cond *c);

static int cond_term(struct sp *p, struct cond *c)
{
    char buf[64];
    int r;

    if (++p->ctx->depth > SHPARSE_DEPTH_MAX)
        return sp_fail(p, p->pos, "nested too deeply");
    if ((r = cond_read(p, c, true)) != 0)
        goto out;
    if (c->cur.type == T_LPAREN) {
        if ((r = cond_put(p, c, "(")) != 0 || (r = cond_or(p, c)) != 0)
            goto out;
        if (c->cur.type != T_RPAREN) {
            r = c->cur.type == T_EOF
                    ? sp_fail(p, c->cur.pos, "unexpected EOF while looking for `]]'")
                    : sp_fail(p, c->cur.pos, "unexpected token `%s', expected `)'",
                              tok_text(p, &c->cur, buf, sizeof(buf)));
            goto out;
        }
        if ((r = cond_put(p, c, ")")) != 0 || (r = cond_read(p, c, true)) != 0)
            goto out;
    } else if (word_is(p, &c->cur, "!")) {
        if ((r = cond_put(p, c, "!")) != 0)
            goto out;
        r = cond_term(p, c);
    } else if (test_unop(p, &c->cur)) {
        if ((r = put_word(p, &c->text, &c->cur.w)) != 0 || (r = cond_read(p, c, false)) != 0)
            goto out;
        if (c->cur.type != T_WORD) {
            r = c->cur.type == T_EOF
                    ? sp_fail(p, c->cur.pos, "unexpected EOF while looking for `]]'")
                    : sp_fail(p, c->cur.pos, "unexpected argument `%s' to conditional unary "
                                             "operator",
                              tok_text(p, &c->cur, buf, sizeof(buf)));
            goto out;
        }
        if ((r = put_word(p, &c->text, &c->cur.w)) != 0 || (r = cond_read(p, c, true)) != 0)
            goto out;
    } else if (c->cur.type == T_WORD) {
        if ((r = put_word(p, &c->text, &c->cur.w)) != 0 || (r = cond_read(p, c, false)) != 0)
            goto out;
        if (c->cur.type == T_WORD && test_binop(p, &c->cur)) {
            if (word_is(p, &c->cur, "=") || word_is(p, &c->cur, "==") ||
                word_is(p, &c->cur, "!="))
                p->lx.flags |= PST_EXTPAT;
            r = put_word(p, &c->text, &c->cur.w);
        } else if (word_is(p, &c->cur, "=~")) {
            p->lx.flags |= PST_REGEXP;
            r = put_word(p, &c->text, &c->cur.w);
        } else if (c->cur.type == T_LESS || c->cur.type == T_GREAT) {
            r = cond_put(p, c, c->cur.type == T_LESS ? "<" : ">");
        } else if (c->cur.type == T_COND_END || c->cur.type == T_AND_AND ||
                   c->cur.type == T_OR_OR || c->cur.type == T_RPAREN) {
            goto out; /* [[ x ]] is [[ -n x ]] */
        } else {
            r = c->cur.type == T_EOF
                    ? sp_fail(p, c->cur.pos, "unexpected EOF while looking for `]]'")
                    : sp_fail(p, c->cur.pos,
                              "unexpected token `%s', conditional binary operator expected",
                              tok_text(p, &c->cur, buf, sizeof(buf)));
            goto out;
        }
        if (r != 0)
            goto out;
        r = cond_read(p, c, false);
        p->lx.flags &= ~(PST_REGEXP | PST_EXTPAT);
        if (r != 0)
            goto out;
        if (c->cur.type != T_WORD) {
            r = c->cur.type == T_EOF
                    ? sp_fail(p, c->cur.pos, "unexpected EOF while looking for `]]'")
                    : sp_fail(p, c->cur.pos,
                              "unexpected argument `%s' to conditional binary operator",
                              tok_text(p, &c->cur, buf, sizeof(buf)));
            goto out;
        }
        if ((r = put_word(p, &c->text, &c->cur.w)) != 0 || (r = cond_read(p, c, true)) != 0)
            goto out;
    } else if (c->cur.type == T_EOF) {
        r = sp_fail(p, c->cur.pos, "unexpected EOF while looking for `]]'");
    } else {
        /* bash takes a bare `]]' here (as in `[[ ]]') for the end of its input, and
         * runs nothing: refused */
        r = sp_fail(p, c->cur.pos, "unexpected token `%s' in conditional command",
                    tok_text(p, &c->cur, buf, sizeof(buf)));
    }
out:
    p->ctx->depth--;
    return r;
}

static int cond_or(struct sp *p, struct cond *c)
{
    int r;

    for (;;) {
        /* cond_and */
        for (;;) {
            if ((r = cond_term(p, c)) != 0)
                return r;
            if (c->cur.type != T_AND_AND)
                break;
            if ((r = cond_put(p, c, "&&")) != 0)
                return r;
        }
        if (c->cur.type != T_OR_OR)
            return 0;
        if ((r = cond_put(p, c, "||")) != 0)
            return r;
    }
}

/* cond_command: [[ (read) ... ]] */
static int cond_command(struct sp *p, size_t mark)
{
    struct cond c = {0};
    char buf[64];
    int r;

    /* bash reads these tokens itself, without moving last_read_token */
    p->lx.frozen = true;
    p->lx.flags |= PST_CONDEXPR;
    if ((r = cond_put(p, &c, "[[")) != 0 || (r = cond_or(p, &c)) != 0)
        goto out;
    if (c.cur.type != T_COND_END) {
        r = c.cur.type == T_EOF
                ? sp_fail(p, c.cur.pos, "unexpected EOF while looking for `]]'")
                : sp_fail(p, c.cur.pos,
                          "syntax error in conditional expression: unexpected token `%s'",
                          tok_text(p, &c.cur, buf, sizeof(buf)));
        goto out;
    }
    if ((r = cond_put(p, &c, "]]")) != 0)
        goto out;
    r = add_item(p, mark, &c.text, SHPARSE_TEST, true);
out:
    p->lx.frozen = false;
    p->lx.flags &= ~(PST_CONDEXPR | PST_REGEXP | PST_EXTPAT);
    p->lx.before = T_COND_START;
    p->lx.last = T_COND_END;
    sp_tok_clear(&c.cur);
    sp_str_free(&c.text);
    return r;
}

/* shell_command, with its redirections (function_body, coproc's, command's). */
static int shell_command(struct sp *p)
{
    struct sp_tok_s t = {0};
    int r;

    if (++p->ctx->depth > SHPARSE_DEPTH_MAX) {
        p->ctx->depth--;
        return sp_fail(p, p->pos, "nested too deeply");
    }
    if ((r = next(p, &t)) != 0)
        goto out;
    switch (t.type) {
    case T_FOR:
    case T_SELECT:
        r = for_command(p, t.type == T_SELECT);
        break;
    case T_CASE:
        r = case_command(p);
        break;
    case T_WHILE:
    case T_UNTIL:
        if ((r = compound_list(p)) == 0 && (r = expect(p, T_DO)) == 0 &&
            (r = compound_list(p)) == 0)
            r = expect(p, T_DONE);
        break;
    case T_IF:
        r = if_command(p);
        break;
    case T_LPAREN:
        if ((r = compound_list(p)) == 0)
            r = expect(p, T_RPAREN);
        break;
    case T_LBRACE:
        if ((r = compound_list(p)) == 0)
            r = expect(p, T_RBRACE);
        break;
    case T_ARITH_CMD: {
        struct sp_str s = {0};

        r = sp_check(p, sp_str_put(&s, "((", 2));
        if (r == 0)
            r = sp_check(p, sp_str_put(&s, t.arith, strlen(t.arith)));
        if (r == 0)
            r = sp_check(p, sp_str_put(&s, "))", 2));
        if (r == 0)
            r = add_item(p, t.mark, &s, SHPARSE_ARITH, true);
        sp_str_free(&s);
        break;
    }
    case T_COND_START:
        r = cond_command(p, t.mark);
        break;
    default:
        r = unexpected(p, &t);
        break;
    }
    if (r == 0)
        r = redirection_list(p);
out:
    sp_tok_clear(&t);
    p->ctx->depth--;
    return r;
}

/* function_body after the name (and its "()" and newlines). */
static int function_body(struct sp *p)
{
    struct sp_tok_s *t;
    int r;

    if ((r = peek(p, &t)) != 0)
        return r;
    if (!starts_shell_command(t->type))
        return unexpected(p, t);
    return shell_command(p);
}

/* function_def with the keyword: FUNCTION (read) WORD ... */
static int function_keyword(struct sp *p)
{
    struct sp_tok_s *t;
    int r;

    if ((r = peek(p, &t)) != 0)
        return r;
    if (t->type != T_WORD)
        return unexpected(p, t);
    if ((r = skip(p)) != 0 || (r = peek(p, &t)) != 0)
        return r;
    if (t->type == T_LPAREN) {
        if ((r = skip(p)) != 0 || (r = peek(p, &t)) != 0)
            return r;
        if (t->type != T_RPAREN) {
            /* FUNCTION WORD function_body, the body a subshell */
            if ((r = compound_list(p)) != 0 || (r = expect(p, T_RPAREN)) != 0)
                return r;
            return redirection_list(p);
        }
        if ((r = skip(p)) != 0)
            return r;
    }
    if ((r = skip_newlines(p)) != 0)
        return r;
    return function_body(p);
}

/* coproc (COPROC read). */
static int coproc(struct sp *p)
{
    struct sp_tok_s *t, name = {0};
    int r;

    if ((r = peek(p, &t)) != 0)
        return r;
    if (starts_shell_command(t->type))
        return shell_command(p);
    if (t->type != T_WORD)
        return simple_command(p, NULL);
    if ((r = next(p, &name)) != 0 || (r = peek(p, &t)) != 0) {
        sp_tok_clear(&name);
        return r;
    }
    if (starts_shell_command(t->type)) {
        sp_tok_clear(&name);
        return shell_command(p);
    }
    r = simple_command(p, &name);
    sp_tok_clear(&name);
    return r;
}

/* command */
static int command(struct sp *p)
{
    struct sp_tok_s *t, first = {0};
    int r;

    if ((r = peek(p, &t)) != 0)
        return r;
    if (starts_shell_command(t->type))
        return shell_command(p);
    switch (t->type) {
    case T_FUNCTION:
        if ((r = skip(p)) != 0)
            return r;
        return function_keyword(p);
    case T_COPROC:
        if ((r = skip(p)) != 0)
            return r;
        return coproc(p);
    case T_WORD:
        if ((r = next(p, &first)) != 0 || (r = peek(p, &t)) != 0) {
            sp_tok_clear(&first);
            return r;
        }
        if (t->type == T_LPAREN) {
            /* function_def: WORD ( ) newline_list function_body */
            sp_tok_clear(&first);
            if ((r = skip(p)) != 0 || (r = expect(p, T_RPAREN)) != 0 ||
                (r = skip_newlines(p)) != 0)
                return r;
            return function_body(p);
        }
        r = simple_command(p, &first);
        sp_tok_clear(&first);
        return r;
    case T_ASSIGN:
    case T_NUMBER:
    case T_REDIR_WORD:
        return simple_command(p, NULL);
    default:
        if (is_redir_op(t->type))
            return simple_command(p, NULL);
        return unexpected(p, t);
    }
}

/* pipeline: command (| or |& newline_list command)* */
static int pipeline(struct sp *p)
{
    int r, type;

    for (;;) {
        if ((r = command(p)) != 0 || (r = peek_type(p, &type)) != 0)
            return r;
        if (type != T_PIPE && type != T_PIPE_AMP)
            return 0;
        if ((r = skip(p)) != 0 || (r = skip_newlines(p)) != 0)
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
        if ((r = peek_type(p, &type)) != 0)
            break;
        if (type == T_BANG || type == T_TIME) {
            if ((r = skip(p)) != 0)
                break;
            if (type == T_TIME) {
                if ((r = peek_type(p, &type)) != 0)
                    break;
                if (type == T_TIMEOPT && ((r = skip(p)) != 0 || (r = peek_type(p, &type)) != 0))
                    break;
                if (type == T_TIMEIGN && (r = skip(p)) != 0)
                    break;
            }
            if ((r = peek_type(p, &type)) != 0)
                break;
            if (is_list_terminator(type))
                break;
            if (++depth > SHPARSE_DEPTH_MAX) {
                r = sp_fail(p, p->pos, "nested too deeply");
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

    if ((r = skip(p)) != 0)
        return r;
    if ((type == T_AND_AND || type == T_OR_OR) && (r = skip_newlines(p)) != 0)
        return r;
    return pipeline_command(p);
}

/* compound_list: newline_list list1 [terminator newline_list] */
static int compound_list(struct sp *p)
{
    int r, type;

    if ((r = skip_newlines(p)) != 0 || (r = pipeline_command(p)) != 0)
        return r;
    for (;;) {
        if ((r = peek_type(p, &type)) != 0)
            return r;
        if (type == T_AND_AND || type == T_OR_OR) {
            if ((r = and_or_rest(p, type)) != 0)
                return r;
            continue;
        }
        if (type != T_SEMI && type != T_AMP && type != T_NL)
            return 0;
        if ((r = skip(p)) != 0 || (r = skip_newlines(p)) != 0 || (r = peek_type(p, &type)) != 0)
            return r;
        if (!starts_command(type))
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
        if ((r = peek_type(p, &type)) != 0)
            return r;
        if (type == T_AND_AND || type == T_OR_OR) {
            if ((r = and_or_rest(p, type)) != 0)
                return r;
            continue;
        }
        if (type != T_SEMI && type != T_AMP)
            return 0;
        if ((r = skip(p)) != 0 || (r = peek_type(p, &type)) != 0)
            return r;
        if (type == T_NL || type == T_EOF)
            return 0;
        if ((r = pipeline_command(p)) != 0)
            return r;
    }
}

/* A whole script: inputunit after inputunit, each a line's list. */
int sp_parse_script(struct sp *p)
{
    struct sp_tok_s *t;
    int r;

    for (;;) {
        if ((r = peek(p, &t)) != 0)
            return r;
        if (t->type == T_EOF)
            return 0;
        if (t->type == T_NL) {
            if ((r = skip(p)) != 0)
                return r;
            continue;
        }
        if ((r = simple_list(p)) != 0 || (r = peek(p, &t)) != 0)
            return r;
        if (t->type == T_EOF)
            return 0;
        if (t->type != T_NL)
            return unexpected(p, t);
        if ((r = skip(p)) != 0)
            return r;
    }
}

/* comsub: after "$(": compound_list ')' or newline_list ')' (parse_comsub). */
int sp_parse_comsub(struct sp *p)
{
    struct sp_lex saved = p->lx;
    struct sp_heredoc *hd = p->hd;
    size_t nhd = p->nhd, caphd = p->caphd, at = p->ungot;
    struct sp_tok_s *t;
    int r, type;

    if (++p->ctx->depth > SHPARSE_DEPTH_MAX) {
        p->ctx->depth--;
        return sp_fail(p, p->pos, "nested too deeply");
    }
    p->hd = NULL;
    p->nhd = p->caphd = 0;
    memset(&p->lx, 0, sizeof(p->lx));
    p->lx.last = T_DOLPAREN;
    p->lx.in_comsub = true;
    p->lx.comsub_at = at > 0 ? at - 1 : at; /* the '$' (or '<', '>') */
    if ((r = skip_newlines(p)) != 0 || (r = peek_type(p, &type)) != 0)
        goto out;
    if (type != T_RPAREN && (r = compound_list(p)) != 0)
        goto out;
    if ((r = peek(p, &t)) != 0)
        goto out;
    if (t->type != T_RPAREN) {
        r = t->type == T_EOF ? sp_fail(p, at, "unexpected EOF while looking for matching `)'")
                             : unexpected(p, t);
        goto out;
    }
    r = skip(p);
out:
    if (r == 0 && p->nhd > 0) {
        /* here-documents still to read: bash reads them from the next line, before
         * the ones pending outside */
        struct sp_heredoc *all;

        if ((all = realloc(p->hd, (p->nhd + nhd) * sizeof(*all))) == NULL) {
            r = sp_nomem(p);
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
        sp_str_free(&p->hd[i].delim);
    free(p->hd);
    if (p->have_la) {
        sp_tok_clear(&p->la);
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
        r = sp_fail(&p, (size_t)((const char *)memchr(src, '\0', len) - src),
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
    r = sp_parse_script(&p);
    if (r == 0 && ctx.err != 0)
        r = ctx.err;
    if (p.have_la)
        sp_tok_clear(&p.la);
    for (size_t i = 0; i < p.nhd; i++)
        sp_str_free(&p.hd[i].delim);
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
