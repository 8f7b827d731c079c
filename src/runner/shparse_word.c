/*
 * shparse_word.c - words, as bash 5.2's read_token_word reads them (parse.y): quoting
 * and its removal, assignments, compound assignments, reserved words. What a word
 * holds between matched pairs ($'...', quotes, substitutions) is shparse_pair.c's; the
 * tokens around words, here-documents and line continuations are shparse_lex.c's. See
 * shparse.h.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "shparse_internal.h"

/* ---- words (read_token_word) --------------------------------------------- */

static bool parsing_redirection(int t)
{
    return t == T_LESS || t == T_GREAT || t == T_DGREAT || t == T_CLOBBER ||
           t == T_LESS_GREAT || t == T_DLESS_DASH || t == T_DLESS || t == T_TLESS ||
           t == T_LESS_AND || t == T_GREAT_AND || t == T_AND_GREAT;
}

bool shparse__reserved_ok(int last, int before)
{
    switch (last) {
    case T_NL: case T_SEMI: case T_LPAREN: case T_RPAREN: case T_PIPE: case T_AMP:
    case T_LBRACE: case T_RBRACE: case T_AND_AND: case T_ARITH_CMD: case T_BANG:
    case T_PIPE_AMP: case T_COND_END: case T_DO: case T_DONE: case T_ELIF: case T_ELSE:
    case T_ESAC: case T_FI: case T_IF: case T_OR_OR: case T_DSEMI: case T_SEMI_AND:
    case T_DSEMI_AND: case T_THEN: case T_TIME: case T_TIMEOPT: case T_TIMEIGN:
    case T_COPROC: case T_UNTIL: case T_WHILE: case 0: case T_DOLPAREN:
        return true;
    default:
        return last == T_WORD && (before == T_COPROC || before == T_FUNCTION);
    }
}

static bool command_position(const struct sp *p)
{
    int last = p->lx.last;

    return last == T_ASSIGN ||
           ((p->lx.flags & PST_REDIRLIST) && !parsing_redirection(last)) ||
           (last != T_DSEMI && last != T_SEMI_AND && last != T_DSEMI_AND &&
            shparse__reserved_ok(last, p->lx.before));
}

static bool assignment_ok(const struct sp *p)
{
    return command_position(p) && !(p->lx.flags & PST_CASEPAT);
}

static bool time_ok(const struct sp *p)
{
    switch (p->lx.last) {
    case 0:
    case T_SEMI:
    case T_NL:
        if (p->lx.before == T_PIPE)
            return false;
        return true;
    case T_AND_AND: case T_OR_OR: case T_AMP: case T_WHILE: case T_DO: case T_UNTIL:
    case T_IF: case T_THEN: case T_ELIF: case T_ELSE: case T_LBRACE: case T_LPAREN:
    case T_RPAREN: case T_BANG: case T_TIME: case T_TIMEOPT: case T_TIMEIGN:
    case T_DOLPAREN:
        return true;
    default:
        return false;
    }
}

/* The end of a subscript that starts at s[i] == '[' (bash's skipsubscript, simplified:
 * brackets nest, quotes are skipped), or n. */
static size_t skip_subscript(const char *s, size_t n, size_t i)
{
    int depth = 0;

    for (; i < n; i++) {
        if (s[i] == '\\') {
            i++;
        } else if (s[i] == '\'') {
            while (++i < n && s[i] != '\'')
                ;
        } else if (s[i] == '"') {
            while (++i < n && s[i] != '"')
                if (s[i] == '\\')
                    i++;
        } else if (s[i] == '[') {
            depth++;
        } else if (s[i] == ']' && --depth == 0) {
            return i;
        }
    }
    return n;
}

/* bash's assignment(): the index of the '=' that makes s an assignment, or 0. */
static size_t assignment(const char *s, size_t n, bool compassign)
{
    size_t i = 0;

    if (n == 0)
        return 0;
    if (compassign ? s[0] != '[' : !shparse__is_name_start((unsigned char)s[0]))
        return 0;
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '=')
            return i;
        if (c == '[') {
            i = skip_subscript(s, n, i);
            if (i >= n || s[i] != ']')
                return 0;
            i++;
            if (i + 1 < n && s[i] == '+' && s[i + 1] == '=')
                return i + 1;
            return i < n && s[i] == '=' ? i : 0;
        }
        if (c == '+' && i + 1 < n && s[i + 1] == '=')
            return i + 1;
        if (!shparse__is_name_char(c))
            return 0;
    }
    return 0;
}

static bool is_ident(const char *s, size_t n)
{
    if (n == 0 || !shparse__is_name_start((unsigned char)s[0]))
        return false;
    for (size_t i = 1; i < n; i++) {
        if (!shparse__is_name_char((unsigned char)s[i]))
            return false;
    }
    return true;
}

static bool streq(const struct sp_str *s, const char *lit)
{
    return s->len == strlen(lit) && memcmp(s->p, lit, s->len) == 0;
}

/* parse_compound_assignment: after "name=(", the words up to ')'. */
static int compound_assignment(struct sp *p, size_t at)
{
    struct sp_lex saved = p->lx;
    struct sp_tok_s t = {0};
    int r = 0;

    p->lx.last = T_WORD;
    p->lx.frozen = true;
    p->lx.flags &= ~(PST_CONDEXPR | PST_REGEXP | PST_EXTPAT);
    p->lx.flags |= PST_COMPASSIGN;
    p->lx.esacs_needed = p->lx.expecting_in = 0;
    for (;;) {
        if ((r = shparse__lex(p, &t)) != 0)
            break;
        if (t.type == T_RPAREN)
            break;
        if (t.type == T_NL) {
            shparse__tok_clear(&t);
            continue;
        }
        if (t.type != T_WORD && t.type != T_ASSIGN) {
            r = t.type == T_EOF
                    ? shparse__fail(p, at, "unexpected EOF while looking for matching `)'")
                    : shparse__fail(p, t.pos, "syntax error near unexpected token in array assignment");
            break;
        }
        shparse__tok_clear(&t);
    }
    shparse__tok_clear(&t);
    p->lx = saved; /* bash's restore_parser_state */
    return r;
}

/* Reads the raw text of the word so far (for bash's checks on its token buffer). */
static int token_so_far(struct sp *p, const struct sp_word *w, size_t end, struct sp_str *out)
{
    return shparse__raw_span(p, w->start, end, out);
}

static const struct {
    const char *word;
    int tok;
} reserved_words[] = {
    {"if", T_IF}, {"then", T_THEN}, {"else", T_ELSE}, {"elif", T_ELIF}, {"fi", T_FI},
    {"case", T_CASE}, {"esac", T_ESAC}, {"for", T_FOR}, {"select", T_SELECT},
    {"while", T_WHILE}, {"until", T_UNTIL}, {"do", T_DO}, {"done", T_DONE}, {"in", T_IN},
    {"function", T_FUNCTION}, {"time", T_TIME}, {"{", T_LBRACE}, {"}", T_RBRACE},
    {"!", T_BANG}, {"[[", T_COND_START}, {"]]", T_COND_END}, {"coproc", T_COPROC},
};

/* special_case_tokens: -1 when tok is none of them. */
static int special_case(struct sp *p, const struct sp_str *tok)
{
    struct sp_lex *x = &p->lx;

    if (x->last == T_WORD && (x->before == T_FOR || x->before == T_CASE || x->before == T_SELECT) &&
        streq(tok, "in")) {
        if (x->before == T_CASE) {
            x->flags |= PST_CASEPAT;
            x->esacs_needed++;
        }
        if (x->expecting_in)
            x->expecting_in--;
        return T_IN;
    }
    if (x->expecting_in && (x->last == T_WORD || x->last == T_NL) && streq(tok, "in")) {
        if (x->flags & PST_CASESTMT) {
            x->flags |= PST_CASEPAT;
            x->esacs_needed++;
        }
        x->expecting_in--;
        return T_IN;
    } else if (x->expecting_in && (x->last == T_NL || x->last == T_SEMI) && streq(tok, "do")) {
        x->expecting_in--;
        return T_DO;
    }
    if (x->last == T_WORD && (x->before == T_FOR || x->before == T_SELECT) && streq(tok, "do")) {
        if (x->expecting_in)
            x->expecting_in--;
        return T_DO;
    }
    if (x->esacs_needed && x->last == T_IN && streq(tok, "esac")) {
        x->esacs_needed--;
        x->flags &= ~PST_CASEPAT;
        return T_ESAC;
    }
    if (x->last == T_ARITH_FOR && streq(tok, "do"))
        return T_DO;
    if (x->last == T_ARITH_FOR && streq(tok, "{"))
        return T_LBRACE;
    if (x->last == T_TIME && streq(tok, "-p"))
        return T_TIMEOPT;
    if ((x->last == T_TIME || x->last == T_TIMEOPT) && streq(tok, "--"))
        return T_TIMEIGN;
    if ((x->flags & PST_CONDEXPR) && streq(tok, "]]"))
        return T_COND_END;
    return -1;
}

/* CHECK_FOR_RESERVED_WORD: -1 when tok is not one here. */
static int reserved(struct sp *p, const struct sp_str *tok)
{
    struct sp_lex *x = &p->lx;

    if (!shparse__reserved_ok(x->last, x->before))
        return -1;
    for (size_t i = 0; i < sizeof(reserved_words) / sizeof(reserved_words[0]); i++) {
        int t = reserved_words[i].tok;

        if (!streq(tok, reserved_words[i].word))
            continue;
        if ((x->flags & PST_CASEPAT) && t != T_ESAC)
            return -1;
        if (t == T_TIME && !time_ok(p))
            return -1;
        if ((x->flags & PST_CASEPAT) && (x->last == T_PIPE || x->last == T_LPAREN))
            return -1;
        if (t == T_ESAC) {
            x->flags &= ~(PST_CASEPAT | PST_CASESTMT);
            x->esacs_needed--;
        } else if (t == T_CASE) {
            x->flags |= PST_CASESTMT;
        } else if (t == T_COND_END) {
            x->flags &= ~PST_CONDEXPR;
        }
        return t;
    }
    return -1;
}

int shparse__read_word(struct sp *p, int c, struct sp_tok_s *t)
{
    struct sp_word *w = &t->w;
    struct sp_str tok = {0};
    bool pass_next = false, bracket = false, brace = false;
    int peek, r = 0, res;

    w->start = p->ungot;
    w->literal = true;
    w->all_digits = shparse__is_digit(c);
    if ((r = shparse__str_put(&w->val, "", 0)) != 0)
        return r;
    for (;;) {
        if (c == SP_EOF)
            break;
        if (pass_next) {
            pass_next = false;
            goto got_char;
        }
        if (c == '\\') {
            peek = shparse__getc(p, false);
            if (peek == '\n') {
                shparse__record_continuation(p, p->ungot - 1);
                goto next;
            }
            shparse__ungetc(p);
            pass_next = true;
            w->quoted = true;
            w->all_digits = false;
            goto next;
        }
        if (c == '\'' || c == '"' || c == '`') {
            if ((r = shparse__matched_pair(p, w, c, c, c, 0, &w->val)) != 0)
                goto out;
            w->all_digits = false;
            if (c != '`')
                w->quoted = true;
            goto next;
        }
        if ((p->lx.flags & PST_REGEXP) && (c == '(' || c == '|')) {
            if (c == '|')
                goto got_char;
            if ((r = shparse__put_val(&w->val, c)) != 0 ||
                (r = shparse__matched_pair(p, w, 0, '(', ')', 0, &w->val)) != 0)
                goto out;
            w->all_digits = false;
            goto next;
        }
        if ((p->lx.flags & PST_EXTPAT) && c != 0 && strchr("@*+?!", c) != NULL) {
            peek = shparse__getc(p, true);
            if (peek == '(') {
                if ((r = shparse__put_val(&w->val, c)) != 0 || (r = shparse__put_val(&w->val, '(')) != 0 ||
                    (r = shparse__matched_pair(p, w, 0, '(', ')', 0, &w->val)) != 0)
                    goto out;
                w->all_digits = false;
                goto next;
            }
            shparse__ungetc(p);
        }
        if (c == '$' || c == '<' || c == '>') {
            peek = shparse__getc(p, true);
            if (peek == '(' || ((peek == '{' || peek == '[') && c == '$')) {
                w->literal = false;
                w->all_digits = false;
                if (peek == '{')
                    r = shparse__matched_pair(p, w, 0, '{', '}', P_FIRSTCLOSE | P_DOLBRACE, NULL);
                else if (peek == '(')
                    r = shparse__comsub_or_arith(p, w, c);
                else
                    r = shparse__matched_pair(p, w, 0, '[', ']', P_ARITH, NULL);
                if (r != 0)
                    goto out;
                goto next;
            } else if (c == '$' && (peek == '\'' || peek == '"')) {
                if (peek == '\'') {
                    struct sp_str body = {0};
                    bool ok;

                    r = shparse__matched_pair(p, w, peek, peek, peek, P_ALLOWESC, &body);
                    ok = r == 0 && shparse__ansi_decode(body.p, body.len, &w->val, &r);
                    shparse__str_free(&body);
                    if (r != 0)
                        goto out;
                    if (!ok)
                        w->literal = false;
                } else if ((r = shparse__matched_pair(p, w, peek, peek, peek, 0, &w->val)) != 0) {
                    goto out;
                }
                w->quoted = true;
                w->all_digits = false;
                goto next;
            } else if (c == '$' && peek == '$') {
                w->literal = false;
                w->all_digits = false;
                goto next;
            }
            shparse__ungetc(p);
            if (c == '$' && shparse__starts_param(peek))
                w->literal = false;
        } else if (c == '[' && ((p->ungot > w->start && assignment_ok(p)) ||
                                (p->ungot == w->start && (p->lx.flags & PST_COMPASSIGN)))) {
            size_t at = p->ungot;

            if ((r = token_so_far(p, w, at, &tok)) != 0)
                goto out;
            if (at == w->start || is_ident(tok.p, tok.len)) {
                if ((r = shparse__put_val(&w->val, c)) != 0 ||
                    (r = shparse__matched_pair(p, w, 0, '[', ']', P_ARRAYSUB, &w->val)) != 0)
                    goto out;
                w->all_digits = false;
                goto next;
            }
        } else if (c == '=' && p->ungot > w->start &&
                   (assignment_ok(p) || (p->lx.flags & PST_ASSIGNOK))) {
            size_t at = p->ungot;

            if ((r = token_so_far(p, w, at, &tok)) != 0 || (r = shparse__str_putc(&tok, '=')) != 0)
                goto out;
            if (assignment(tok.p, tok.len, (p->lx.flags & PST_COMPASSIGN) != 0) == tok.len - 1) {
                peek = shparse__getc(p, true);
                if (peek == '(') {
                    if ((r = compound_assignment(p, at)) != 0)
                        goto out;
                    w->literal = false;
                    w->all_digits = false;
                    goto next;
                }
                shparse__ungetc(p);
            }
        }
        if (shparse__is_meta(c)) {
            shparse__ungetc(p);
            break;
        }
        /* Pathname, brace and tilde expansion are expansions too (RUNNER-OPS.md 7.5): bash
         * runs `{rm,-rf,/}` and `r? x` as rm, so such a word is not literal. A lone `[`
         * (the test command) or `{` is not one. */
        if (c == '*' || c == '?' || (c == '~' && p->ungot == w->start) ||
            (c == ']' && bracket) || (c == '}' && brace))
            w->literal = false;
        else if (c == '[')
            bracket = true;
        else if (c == '{')
            brace = true;
    got_char:
        if ((r = shparse__put_val(&w->val, c)) != 0)
            goto out;
        w->all_digits = w->all_digits && shparse__is_digit(c);
    next:
        c = shparse__getc(p, !pass_next);
    }
    w->end = p->pos;
    if (c == SP_EOF)
        w->end = p->src->len;
    if ((r = shparse__raw_span(p, w->start, w->end, &tok)) != 0)
        goto out;
    /* c is the character that ended the word (pushed back), or EOF. */
    if (w->all_digits && (c == '<' || c == '>' || p->lx.last == T_LESS_AND ||
                          p->lx.last == T_GREAT_AND)) {
        unsigned long v = 0;
        bool fits = tok.len > 0;

        for (size_t i = 0; i < tok.len && fits; i++) {
            v = v * 10 + (unsigned long)(tok.p[i] - '0');
            fits = v <= INT_MAX;
        }
        if (fits) {
            t->type = T_NUMBER;
            goto out;
        }
    }
    if ((res = special_case(p, &tok)) >= 0 || (res = reserved(p, &tok)) >= 0) {
        t->type = res;
        goto out;
    }
    if (command_position(p)) {
        static const char *const decl[] = {"alias", "declare", "export", "local",
                                           "readonly", "typeset", "eval", "let"};

        for (size_t i = 0; i < sizeof(decl) / sizeof(decl[0]); i++) {
            if (streq(&tok, decl[i]))
                p->lx.flags |= PST_ASSIGNOK;
        }
    }
    if (tok.len >= 2 && tok.p[0] == '{' && tok.p[tok.len - 1] == '}' && (c == '<' || c == '>') &&
        is_ident(tok.p + 1, tok.len - 2)) {
        t->type = T_REDIR_WORD;
        goto out;
    }
    t->type = T_WORD;
    if (assignment(tok.p, tok.len, (p->lx.flags & PST_COMPASSIGN) != 0) > 0 &&
        (assignment_ok(p) || (p->lx.flags & PST_COMPASSIGN)))
        t->type = T_ASSIGN;
    if (p->lx.last == T_CASE || p->lx.last == T_SELECT || p->lx.last == T_FOR)
        p->lx.expecting_in++;
out:
    shparse__str_free(&tok);
    return r;
}
