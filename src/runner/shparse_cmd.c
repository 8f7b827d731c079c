/*
 * shparse_cmd.c - the grammar's commands (bash 5.2's parse.y, by recursive
 * descent): simple commands and their redirections, the compound commands
 * (for, select, case, if, while, until, subshells, groups, (( )), [[ ]]), function
 * definitions and coproc. The lists and pipelines around them are shparse.c's.
 * See shparse.h.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "shparse_internal.h"

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
            return shparse__nomem(p);
        p->hd = h;
        p->caphd = cap;
    }
    h = &p->hd[p->nhd];
    memset(h, 0, sizeof(*h));
    h->quoted = w->quoted;
    h->strip_tabs = strip_tabs;
    /* bash: quote removal only when the delimiter is quoted; else the word as written */
    if (w->quoted)
        r = shparse__str_put(&h->delim, w->val.p, w->val.len);
    else
        r = shparse__word_raw(p, w, &h->delim);
    if (r != 0) {
        shparse__str_free(&h->delim);
        return shparse__check(p, r);
    }
    {
        struct sp_str raw = {0};
        bool comsub = false;

        if ((r = shparse__word_raw(p, w, &raw)) != 0)
            return shparse__check(p, r);
        for (size_t i = 0; i + 1 < raw.len; i++) {
            if ((raw.p[i] == '$' || raw.p[i] == '<' || raw.p[i] == '>') && raw.p[i + 1] == '(' &&
                !(raw.p[i] == '$' && i + 2 < raw.len && raw.p[i + 2] == '('))
                comsub = true;
        }
        shparse__str_free(&raw);
        if (comsub) {
            /* bash matches the lines against its own re-printing of a $( ... ), not
             * the bytes as written: where the document ends cannot be known here */
            shparse__str_free(&h->delim);
            return shparse__fail(p, w->start, "here-document delimiter with a command substitution");
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

    if ((r = shparse__next(p, &op)) != 0)
        return r;
    mark = op.mark;
    if (op.type == T_NUMBER || op.type == T_REDIR_WORD) {
        shparse__tok_clear(&op);
        if ((r = shparse__next(p, &op)) != 0)
            return r;
        if (!shparse__is_redir_op(op.type) || op.type == T_AND_GREAT || op.type == T_AND_DGREAT) {
            r = shparse__unexpected(p, &op);
            goto out;
        }
    }
    if ((r = shparse__next(p, &target)) != 0)
        goto out;
    if (op.type == T_LESS_AND || op.type == T_GREAT_AND) {
        if (target.type == T_NUMBER || target.type == T_DASH)
            goto out; /* fd duplication or close: not gated */
        if (target.type != T_WORD) {
            r = shparse__unexpected(p, &target);
            goto out;
        }
        /* >&WORD is &>WORD unless WORD is a number or '-' (or a move, N-) */
        write = op.type == T_GREAT_AND && !is_fd_word(&target.w);
    } else {
        if (target.type != T_WORD) {
            r = shparse__unexpected(p, &target);
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
        if ((r = shparse__check(p, shparse__str_putc(&s, '>'))) != 0 || (r = shparse__put_word(p, &s, &target.w)) != 0)
            goto out;
        r = shparse__add_item(p, mark, &s, SHPARSE_REDIRECT, true);
    }
out:
    shparse__str_free(&s);
    shparse__tok_clear(&op);
    shparse__tok_clear(&target);
    return r;
}

int shparse__redirection_list(struct sp *p)
{
    struct sp_tok_s *t;
    int r;

    for (;;) {
        if ((r = shparse__peek(p, &t)) != 0)
            return r;
        if (!shparse__is_redir_op(t->type) && t->type != T_NUMBER && t->type != T_REDIR_WORD)
            return 0;
        if ((r = redirection(p)) != 0)
            return r;
    }
}

/* ---- commands ----------------------------------------------------------- */

/*
 * simple_command: words and redirections. first, if not NULL, is its first word,
 * already read (a coproc's, or one that might have named a function).
 */
int shparse__simple_command(struct sp *p, struct sp_tok_s *first)
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
            if ((r = shparse__peek(p, &la)) != 0)
                goto out;
            if (slot == SIZE_MAX)
                slot = la->mark;
            if (la->type == T_NUMBER || la->type == T_REDIR_WORD || shparse__is_redir_op(la->type)) {
                if ((r = redirection(p)) != 0)
                    goto out;
                nredirs++;
                if (nwords == 0)
                    p->lx.flags |= PST_REDIRLIST; /* make_simple_command */
                continue;
            }
            if (la->type != T_WORD && la->type != T_ASSIGN) {
                if (slot == la->mark && nwords == 0 && nredirs == 0)
                    r = shparse__unexpected(p, la); /* an empty simple command (coproc alone) */
                break;
            }
            if ((r = shparse__next(p, &t)) != 0)
                goto out;
        }
        if (slot == SIZE_MAX)
            slot = t.mark;
        p->lx.flags &= ~PST_REDIRLIST;
        if (!have_name) {
            literal_name = literal_name && t.w.literal;
            have_name = t.type != T_ASSIGN;
        }
        if ((r = shparse__put_word(p, &text, &t.w)) != 0)
            goto out;
        nwords++;
        shparse__tok_clear(&t);
    }
    p->lx.flags &= ~PST_REDIRLIST; /* clean_simple_command */
    if (r == 0 && nwords > 0)
        r = shparse__add_item(p, slot, &text, SHPARSE_COMMAND, literal_name);
out:
    shparse__tok_clear(&t);
    shparse__str_free(&text);
    return r;
}

/* The body of for and select: DO compound_list DONE, or { compound_list }. */
static int loop_body(struct sp *p)
{
    struct sp_tok_s *t;
    int r, close;

    if ((r = shparse__peek(p, &t)) != 0)
        return r;
    if (t->type == T_DO)
        close = T_DONE;
    else if (t->type == T_LBRACE)
        close = T_RBRACE;
    else
        return shparse__unexpected(p, t);
    if ((r = shparse__skip(p)) != 0 || (r = shparse__compound_list(p)) != 0)
        return r;
    return shparse__expect(p, close);
}

/* for_command, arith_for_command, select_command (the FOR or SELECT is read). */
static int for_command(struct sp *p, bool is_select)
{
    struct sp_tok_s *t, name = {0};
    int r, type;

    if ((r = shparse__peek(p, &t)) != 0)
        return r;
    if (!is_select && t->type == T_ARITH_FOR) {
        struct sp_str s = {0};
        size_t mark = t->mark;

        r = shparse__check(p, shparse__str_put(&s, "for ((", 6));
        if (r == 0)
            r = shparse__check(p, shparse__str_put(&s, t->arith, strlen(t->arith)));
        if (r == 0)
            r = shparse__check(p, shparse__str_put(&s, "))", 2));
        if (r == 0)
            r = shparse__add_item(p, mark, &s, SHPARSE_ARITH, true);
        shparse__str_free(&s);
        if (r != 0 || (r = shparse__skip(p)) != 0 || (r = shparse__peek_type(p, &type)) != 0)
            return r;
        if (type == T_SEMI || type == T_NL) {
            if ((r = shparse__skip(p)) != 0 || (r = shparse__skip_newlines(p)) != 0)
                return r;
        }
        return loop_body(p);
    }
    if (t->type != T_WORD)
        return shparse__unexpected(p, t);
    if ((r = shparse__next(p, &name)) != 0)
        return r;
    shparse__tok_clear(&name);
    if ((r = shparse__peek_type(p, &type)) != 0)
        return r;
    if (type == T_SEMI) {
        if ((r = shparse__skip(p)) != 0 || (r = shparse__skip_newlines(p)) != 0)
            return r;
        return loop_body(p);
    }
    if ((r = shparse__skip_newlines(p)) != 0 || (r = shparse__peek_type(p, &type)) != 0)
        return r;
    if (type == T_IN) {
        if ((r = shparse__skip(p)) != 0)
            return r;
        for (;;) {
            if ((r = shparse__peek(p, &t)) != 0)
                return r;
            if (t->type != T_WORD)
                break;
            if ((r = shparse__skip(p)) != 0)
                return r;
        }
        if (t->type != T_SEMI && t->type != T_NL)
            return shparse__unexpected(p, t);
        if ((r = shparse__skip(p)) != 0 || (r = shparse__skip_newlines(p)) != 0)
            return r;
    }
    return loop_body(p);
}

/* case_command (CASE is read). */
static int case_command(struct sp *p)
{
    struct sp_tok_s *t;
    int r;

    if ((r = shparse__peek(p, &t)) != 0)
        return r;
    if (t->type != T_WORD)
        return shparse__unexpected(p, t);
    if ((r = shparse__skip(p)) != 0 || (r = shparse__skip_newlines(p)) != 0 || (r = shparse__expect(p, T_IN)) != 0)
        return r;
    for (;;) {
        if ((r = shparse__skip_newlines(p)) != 0 || (r = shparse__peek(p, &t)) != 0)
            return r;
        if (t->type == T_ESAC)
            return shparse__skip(p);
        /* pattern_list: [(] WORD (| WORD)* ) body */
        if (t->type == T_LPAREN) {
            if ((r = shparse__skip(p)) != 0 || (r = shparse__peek(p, &t)) != 0)
                return r;
        }
        for (;;) {
            if (t->type != T_WORD)
                return shparse__unexpected(p, t);
            if ((r = shparse__skip(p)) != 0 || (r = shparse__peek(p, &t)) != 0)
                return r;
            if (t->type != T_PIPE)
                break;
            if ((r = shparse__skip(p)) != 0 || (r = shparse__peek(p, &t)) != 0)
                return r;
        }
        if ((r = shparse__expect(p, T_RPAREN)) != 0 || (r = shparse__skip_newlines(p)) != 0 ||
            (r = shparse__peek(p, &t)) != 0)
            return r;
        if (shparse__starts_command(t->type)) {
            if ((r = shparse__compound_list(p)) != 0 || (r = shparse__peek(p, &t)) != 0)
                return r;
        }
        if (t->type == T_ESAC)
            return shparse__skip(p);
        if (t->type != T_DSEMI && t->type != T_SEMI_AND && t->type != T_DSEMI_AND)
            return shparse__unexpected(p, t);
        if ((r = shparse__skip(p)) != 0)
            return r;
    }
}

static int if_command(struct sp *p)
{
    int r, type;

    if ((r = shparse__compound_list(p)) != 0 || (r = shparse__expect(p, T_THEN)) != 0 ||
        (r = shparse__compound_list(p)) != 0)
        return r;
    for (;;) {
        if ((r = shparse__peek_type(p, &type)) != 0)
            return r;
        if (type == T_ELIF) {
            if ((r = shparse__skip(p)) != 0 || (r = shparse__compound_list(p)) != 0 ||
                (r = shparse__expect(p, T_THEN)) != 0 || (r = shparse__compound_list(p)) != 0)
                return r;
            continue;
        }
        if (type == T_ELSE) {
            if ((r = shparse__skip(p)) != 0 || (r = shparse__compound_list(p)) != 0)
                return r;
        }
        return shparse__expect(p, T_FI);
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
        shparse__tok_clear(&c->cur);
        if ((r = shparse__next(p, &c->cur)) != 0)
            return r;
        if (!skip_nl || c->cur.type != T_NL)
            return 0;
    }
}

static int cond_put(struct sp *p, struct cond *c, const char *s)
{
    if (c->text.len > 0 && shparse__str_putc(&c->text, ' ') != 0)
        return shparse__nomem(p);
    return shparse__check(p, shparse__str_put(&c->text, s, strlen(s)));
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
        return shparse__fail(p, p->pos, "nested too deeply");
    if ((r = cond_read(p, c, true)) != 0)
        goto out;
    if (c->cur.type == T_LPAREN) {
        if ((r = cond_put(p, c, "(")) != 0 || (r = cond_or(p, c)) != 0)
            goto out;
        if (c->cur.type != T_RPAREN) {
            r = c->cur.type == T_EOF
                    ? shparse__fail(p, c->cur.pos, "unexpected EOF while looking for `]]'")
                    : shparse__fail(p, c->cur.pos, "unexpected token `%s', expected `)'",
                              shparse__tok_text(p, &c->cur, buf, sizeof(buf)));
            goto out;
        }
        if ((r = cond_put(p, c, ")")) != 0 || (r = cond_read(p, c, true)) != 0)
            goto out;
    } else if (word_is(p, &c->cur, "!")) {
        if ((r = cond_put(p, c, "!")) != 0)
            goto out;
        r = cond_term(p, c);
    } else if (test_unop(p, &c->cur)) {
        if ((r = shparse__put_word(p, &c->text, &c->cur.w)) != 0 || (r = cond_read(p, c, false)) != 0)
            goto out;
        if (c->cur.type != T_WORD) {
            r = c->cur.type == T_EOF
                    ? shparse__fail(p, c->cur.pos, "unexpected EOF while looking for `]]'")
                    : shparse__fail(p, c->cur.pos, "unexpected argument `%s' to conditional unary "
                                             "operator",
                              shparse__tok_text(p, &c->cur, buf, sizeof(buf)));
            goto out;
        }
        if ((r = shparse__put_word(p, &c->text, &c->cur.w)) != 0 || (r = cond_read(p, c, true)) != 0)
            goto out;
    } else if (c->cur.type == T_WORD) {
        if ((r = shparse__put_word(p, &c->text, &c->cur.w)) != 0 || (r = cond_read(p, c, false)) != 0)
            goto out;
        if (c->cur.type == T_WORD && test_binop(p, &c->cur)) {
            if (word_is(p, &c->cur, "=") || word_is(p, &c->cur, "==") ||
                word_is(p, &c->cur, "!="))
                p->lx.flags |= PST_EXTPAT;
            r = shparse__put_word(p, &c->text, &c->cur.w);
        } else if (word_is(p, &c->cur, "=~")) {
            p->lx.flags |= PST_REGEXP;
            r = shparse__put_word(p, &c->text, &c->cur.w);
        } else if (c->cur.type == T_LESS || c->cur.type == T_GREAT) {
            r = cond_put(p, c, c->cur.type == T_LESS ? "<" : ">");
        } else if (c->cur.type == T_COND_END || c->cur.type == T_AND_AND ||
                   c->cur.type == T_OR_OR || c->cur.type == T_RPAREN) {
            goto out; /* [[ x ]] is [[ -n x ]] */
        } else {
            r = c->cur.type == T_EOF
                    ? shparse__fail(p, c->cur.pos, "unexpected EOF while looking for `]]'")
                    : shparse__fail(p, c->cur.pos,
                              "unexpected token `%s', conditional binary operator expected",
                              shparse__tok_text(p, &c->cur, buf, sizeof(buf)));
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
                    ? shparse__fail(p, c->cur.pos, "unexpected EOF while looking for `]]'")
                    : shparse__fail(p, c->cur.pos,
                              "unexpected argument `%s' to conditional binary operator",
                              shparse__tok_text(p, &c->cur, buf, sizeof(buf)));
            goto out;
        }
        if ((r = shparse__put_word(p, &c->text, &c->cur.w)) != 0 || (r = cond_read(p, c, true)) != 0)
            goto out;
    } else if (c->cur.type == T_EOF) {
        r = shparse__fail(p, c->cur.pos, "unexpected EOF while looking for `]]'");
    } else {
        /* bash takes a bare `]]' here (as in `[[ ]]') for the end of its input, and
         * runs nothing: refused */
        r = shparse__fail(p, c->cur.pos, "unexpected token `%s' in conditional command",
                    shparse__tok_text(p, &c->cur, buf, sizeof(buf)));
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
                ? shparse__fail(p, c.cur.pos, "unexpected EOF while looking for `]]'")
                : shparse__fail(p, c.cur.pos,
                          "syntax error in conditional expression: unexpected token `%s'",
                          shparse__tok_text(p, &c.cur, buf, sizeof(buf)));
        goto out;
    }
    if ((r = cond_put(p, &c, "]]")) != 0)
        goto out;
    r = shparse__add_item(p, mark, &c.text, SHPARSE_TEST, true);
out:
    p->lx.frozen = false;
    p->lx.flags &= ~(PST_CONDEXPR | PST_REGEXP | PST_EXTPAT);
    p->lx.before = T_COND_START;
    p->lx.last = T_COND_END;
    shparse__tok_clear(&c.cur);
    shparse__str_free(&c.text);
    return r;
}

/* shell_command, with its redirections (function_body, coproc's, command's). */
int shparse__shell_command(struct sp *p)
{
    struct sp_tok_s t = {0};
    int r;

    if (++p->ctx->depth > SHPARSE_DEPTH_MAX) {
        p->ctx->depth--;
        return shparse__fail(p, p->pos, "nested too deeply");
    }
    if ((r = shparse__next(p, &t)) != 0)
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
        if ((r = shparse__compound_list(p)) == 0 && (r = shparse__expect(p, T_DO)) == 0 &&
            (r = shparse__compound_list(p)) == 0)
            r = shparse__expect(p, T_DONE);
        break;
    case T_IF:
        r = if_command(p);
        break;
    case T_LPAREN:
        if ((r = shparse__compound_list(p)) == 0)
            r = shparse__expect(p, T_RPAREN);
        break;
    case T_LBRACE:
        if ((r = shparse__compound_list(p)) == 0)
            r = shparse__expect(p, T_RBRACE);
        break;
    case T_ARITH_CMD: {
        struct sp_str s = {0};

        r = shparse__check(p, shparse__str_put(&s, "((", 2));
        if (r == 0)
            r = shparse__check(p, shparse__str_put(&s, t.arith, strlen(t.arith)));
        if (r == 0)
            r = shparse__check(p, shparse__str_put(&s, "))", 2));
        if (r == 0)
            r = shparse__add_item(p, t.mark, &s, SHPARSE_ARITH, true);
        shparse__str_free(&s);
        break;
    }
    case T_COND_START:
        r = cond_command(p, t.mark);
        break;
    default:
        r = shparse__unexpected(p, &t);
        break;
    }
    if (r == 0)
        r = shparse__redirection_list(p);
out:
    shparse__tok_clear(&t);
    p->ctx->depth--;
    return r;
}

/* function_body after the name (and its "()" and newlines). */
int shparse__function_body(struct sp *p)
{
    struct sp_tok_s *t;
    int r;

    if ((r = shparse__peek(p, &t)) != 0)
        return r;
    if (!shparse__starts_shell_command(t->type))
        return shparse__unexpected(p, t);
    return shparse__shell_command(p);
}

/* function_def with the keyword: FUNCTION (read) WORD ... */
int shparse__function_keyword(struct sp *p)
{
    struct sp_tok_s *t;
    int r;

    if ((r = shparse__peek(p, &t)) != 0)
        return r;
    if (t->type != T_WORD)
        return shparse__unexpected(p, t);
    if ((r = shparse__skip(p)) != 0 || (r = shparse__peek(p, &t)) != 0)
        return r;
    if (t->type == T_LPAREN) {
        if ((r = shparse__skip(p)) != 0 || (r = shparse__peek(p, &t)) != 0)
            return r;
        if (t->type != T_RPAREN) {
            /* FUNCTION WORD function_body, the body a subshell */
            if ((r = shparse__compound_list(p)) != 0 || (r = shparse__expect(p, T_RPAREN)) != 0)
                return r;
            return shparse__redirection_list(p);
        }
        if ((r = shparse__skip(p)) != 0)
            return r;
    }
    if ((r = shparse__skip_newlines(p)) != 0)
        return r;
    return shparse__function_body(p);
}

/* coproc (COPROC read). */
int shparse__coproc(struct sp *p)
{
    struct sp_tok_s *t, name = {0};
    int r;

    if ((r = shparse__peek(p, &t)) != 0)
        return r;
    if (shparse__starts_shell_command(t->type))
        return shparse__shell_command(p);
    if (t->type != T_WORD)
        return shparse__simple_command(p, NULL);
    if ((r = shparse__next(p, &name)) != 0 || (r = shparse__peek(p, &t)) != 0) {
        shparse__tok_clear(&name);
        return r;
    }
    if (shparse__starts_shell_command(t->type)) {
        shparse__tok_clear(&name);
        return shparse__shell_command(p);
    }
    r = shparse__simple_command(p, &name);
    shparse__tok_clear(&name);
    return r;
}

/* command */
