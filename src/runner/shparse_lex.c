/*
 * shparse_lex.c - bytes to tokens, as bash 5.2's read_token, read_token_word and
 * parse_matched_pair do it (parse.y), with the same lexer states; see
 * shparse_internal.h. Words are read with their quote removal and with what is
 * nested in them: a $( ... ) or <( ... ) is parsed right here by the grammar
 * (shparse.c), as bash parses it while reading the word; a backquote's body, an
 * unquoted here-document's substitutions and a $(( ... )) that turns out not to be
 * arithmetic are parsed as texts of their own, since bash parses those only when it
 * runs them.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "shparse_internal.h"

/* parse_matched_pair's flags. */
#define P_FIRSTCLOSE 0x01u
#define P_ALLOWESC 0x02u
#define P_DQUOTE 0x04u
#define P_ARRAYSUB 0x20u
#define P_DOLBRACE 0x40u
#define P_ARITH 0x80u
#define P_HEREDOC 0x100u /* an unquoted here-document's body: to the end, '"' plain */

/* Bytes read before a command is "too complex": bounds the re-reading that a
 * (( ... )) that is not arithmetic causes, as bash re-reads it too. */
#define SP_WORK_PER_BYTE 64u
#define SP_WORK_MIN (1024u * 1024u)

static bool is_blank(int c)
{
    return c == ' ' || c == '\t';
}

static bool is_meta(int c)
{
    return c == '|' || c == '&' || c == ';' || c == '(' || c == ')' || c == '<' || c == '>' ||
           c == ' ' || c == '\t' || c == '\n';
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static bool is_name_start(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_name_char(int c)
{
    return is_name_start(c) || is_digit(c);
}

/* A character after '$' that makes a parameter expansion ($x, $1, $@, $?...). */
static bool starts_param(int c)
{
    return is_name_char(c) || (c > 0 && strchr("@*#?$!-", c) != NULL);
}

static void record_continuation(struct sp *p, size_t at)
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

int sp_getc(struct sp *p, bool remove_continuation)
{
    const struct sp_src *s = p->src;
    struct sp_ctx *c = p->ctx;

    for (;;) {
        if (++c->work > (c->toplen * SP_WORK_PER_BYTE) + SP_WORK_MIN) {
            sp_fail(p, p->pos, "command too complex to check");
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
            record_continuation(p, p->pos);
            p->pos += 2;
            continue;
        }
        push_back(p);
        p->ungot = p->pos;
        return (unsigned char)s->s[p->pos++];
    }
}

void sp_ungetc(struct sp *p)
{
    /* bash's shell_ungetc may push back two characters (a peek, then the one before) */
    p->pos = p->ungot;
    if (p->nback > 0)
        p->ungot = p->back[--p->nback];
}

void sp_word_clear(struct sp_word *w)
{
    sp_str_free(&w->val);
    memset(w, 0, sizeof(*w));
}

void sp_tok_clear(struct sp_tok_s *t)
{
    sp_word_clear(&t->w);
    free(t->arith);
    memset(t, 0, sizeof(*t));
}

/* The bytes [start, end) of p's source without the line continuations removed there. */
static int raw_span(const struct sp *p, size_t start, size_t end, struct sp_str *out)
{
    const struct sp_src *s = p->src;
    size_t at = start;
    int r;

    out->len = 0;
    if ((r = sp_str_put(out, "", 0)) != 0)
        return r;
    for (size_t i = 0; i < s->nconts && at < end; i++) {
        if (s->conts[i] < at)
            continue;
        if (s->conts[i] >= end)
            break;
        if ((r = sp_str_put(out, s->s + at, s->conts[i] - at)) != 0)
            return r;
        at = s->conts[i] + 2;
    }
    if (at < end)
        return sp_str_put(out, s->s + at, end - at);
    return 0;
}

int sp_word_raw(const struct sp *p, const struct sp_word *w, struct sp_str *out)
{
    return raw_span(p, w->start, w->end, out);
}

/* ---- $'...' ---------------------------------------------------------------- */

static int hexval(int c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Decodes the body of $'...' (bash's ansicstr) onto out. Returns false when the
 * result would depend on the locale or hold a NUL (a \u beyond ASCII, \0): the word
 * is then not taken as literal.
 */
static bool ansi_decode(const char *s, size_t n, struct sp_str *out, int *r)
{
    bool ok = true;

    *r = 0;
    for (size_t i = 0; i < n && *r == 0; i++) {
        unsigned long v = 0;
        char c = s[i];

        if (c != '\\' || i + 1 == n) {
            *r = sp_str_putc(out, c);
            continue;
        }
        c = s[++i];
        switch (c) {
        case 'a': *r = sp_str_putc(out, '\a'); break;
        case 'b': *r = sp_str_putc(out, '\b'); break;
        case 'e':
        case 'E': *r = sp_str_putc(out, '\033'); break;
        case 'f': *r = sp_str_putc(out, '\f'); break;
        case 'n': *r = sp_str_putc(out, '\n'); break;
        case 'r': *r = sp_str_putc(out, '\r'); break;
        case 't': *r = sp_str_putc(out, '\t'); break;
        case 'v': *r = sp_str_putc(out, '\v'); break;
        case '\\':
        case '\'':
        case '"':
        case '?': *r = sp_str_putc(out, c); break;
        case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': {
            size_t k = 0;

            for (; k < 3 && i < n && s[i] >= '0' && s[i] <= '7'; k++, i++)
                v = v * 8 + (unsigned long)(s[i] - '0');
            i--;
            if ((v & 0xff) == 0)
                ok = false;
            *r = sp_str_putc(out, (char)(v & 0xff));
            break;
        }
        case 'x':
        case 'u':
        case 'U': {
            size_t max = c == 'x' ? 2 : c == 'u' ? 4 : 8, k = 0;

            for (; k < max && i + 1 < n && hexval(s[i + 1]) >= 0; k++, i++)
                v = v * 16 + (unsigned long)hexval(s[i + 1]);
            if (k == 0) {
                /* no digits: bash keeps the backslash and the letter */
                *r = sp_str_put(out, s + i - 1, 2);
                break;
            }
            if (v == 0 || (c != 'x' && v > 0x7f))
                ok = false;
            *r = sp_str_putc(out, (char)(v & 0xff));
            break;
        }
        case 'c':
            if (i + 1 < n) {
                unsigned char x = (unsigned char)s[++i];

                if (x >= 'a' && x <= 'z')
                    x = (unsigned char)(x - 'a' + 'A');
                if ((x & 0x1f) == 0 || x == '\\')
                    ok = false;
                *r = sp_str_putc(out, (char)(x & 0x1f));
            } else {
                *r = sp_str_put(out, "\\c", 2);
            }
            break;
        default:
            *r = sp_str_put(out, s + i - 1, 2);
            break;
        }
    }
    return ok;
}

/* ---- matched pairs (parse_matched_pair) ---------------------------------- */

static int matched_pair(struct sp *p, struct sp_word *w, int qc, int open, int close,
                        unsigned flags, struct sp_str *val);
static int comsub_or_arith(struct sp *p, struct sp_word *w, int c);

/* bash's de_backslash, plus '\"' inside double quotes: a backquote's body as bash
 * runs it. */
static int backquote_body(struct sp *p, size_t start, size_t end, bool in_dquote, size_t at)
{
    struct sp_str raw = {0}, body = {0};
    int r;

    if ((r = raw_span(p, start, end, &raw)) != 0)
        goto out;
    if ((r = sp_str_put(&body, "", 0)) != 0)
        goto out;
    for (size_t i = 0; i < raw.len && r == 0; i++) {
        if (raw.p[i] == '\\' && i + 1 < raw.len &&
            (raw.p[i + 1] == '`' || raw.p[i + 1] == '\\' || raw.p[i + 1] == '$' ||
             (in_dquote && raw.p[i + 1] == '"')))
            i++;
        r = sp_str_putc(&body, raw.p[i]);
    }
    if (r == 0)
        r = sp_parse_derived(p, body.p, body.len, at);
out:
    sp_str_free(&raw);
    sp_str_free(&body);
    return r;
}

static int put_val(struct sp_str *val, int c)
{
    return val != NULL ? sp_str_putc(val, (char)c) : 0;
}

/*
 * parse_matched_pair: reads up to and with the close that matches (the open was
 * read by the caller). val (may be NULL) gets the text after quote removal; the
 * close is put too for a grouping (open != close), not for a quote.
 */
static int matched_pair(struct sp *p, struct sp_word *w, int qc, int open, int close,
                        unsigned flags, struct sp_str *val)
{
    int count = 1, ch = SP_EOF, r = 0;
    bool passnext = false, wasdol = false, gtlt = false;
    unsigned rflags = qc == '"' ? P_DQUOTE : (flags & P_DQUOTE);
    size_t start = p->pos, open_at = p->ungot;
    bool dq_text = qc == '"' || (flags & P_HEREDOC);

    if (++p->ctx->depth > SHPARSE_DEPTH_MAX)
        return sp_fail(p, p->pos, "nested too deeply");
    for (;;) {
        ch = sp_getc(p, qc != '\'' && !passnext);
        if (ch == SP_EOF) {
            if (flags & P_HEREDOC)
                break;
            r = sp_fail(p, open_at, "unexpected EOF while looking for matching `%c'", close);
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
            if ((r = put_val(val, ch)) != 0)
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
            if (open != close && (r = put_val(val, ch)) != 0)
                goto out;
            break;
        }
        if (open == '\'') {
            if ((flags & P_ALLOWESC) && ch == '\\')
                passnext = true;
            if ((r = put_val(val, ch)) != 0)
                goto out;
            continue;
        }
        if (ch == '\\')
            passnext = true;
        if ((r = put_val(val, ch)) != 0)
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
                    r = matched_pair(p, w, ch, ch, ch, P_ALLOWESC | rflags, &body);
                    ok = r == 0 &&
                         ansi_decode(body.p, body.len, val != NULL ? val : &scratch, &r);
                    if (!ok && w != NULL)
                        w->literal = false;
                    sp_str_free(&body);
                    sp_str_free(&scratch);
                } else {
                    r = matched_pair(p, w, ch, ch, ch, rflags, val);
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
            if ((r = matched_pair(p, w, 0, '`', '`', rflags, NULL)) != 0)
                goto out;
        } else if (wasdol && (ch == '(' || ch == '{' || ch == '[')) {
            goto dollar_word;
        }
        if (wasdol && starts_param(ch) && w != NULL)
            w->literal = false; /* "$x", [$i], ($x): an expansion */
        goto next;
    dollar_word:
        if (open == ch)
            count--; /* undo the increment above */
        if (w != NULL)
            w->literal = false;
        if (ch == '(')
            r = comsub_or_arith(p, w, gtlt ? '<' : '$');
        else if (ch == '{')
            r = matched_pair(p, w, 0, '{', '}', P_FIRSTCLOSE | P_DOLBRACE | rflags, val);
        else
            r = matched_pair(p, w, 0, '[', ']', rflags | P_ARITH, val);
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

static void rollback_items(struct sp_ctx *c, size_t mark)
{
    while (c->nitems > mark)
        free(c->items[--c->nitems].text);
}

/*
 * After "$(", "<(" or ">(" (c says which): a command substitution parsed by the
 * grammar, or, when "((" follows, what bash reads as arithmetic at parse time and
 * decides on when it runs: arithmetic if it is one, else a command substitution.
 */
static int comsub_or_arith(struct sp *p, struct sp_word *w, int c)
{
    struct sp_str text = {0};
    size_t start = p->pos, at = p->ungot > 0 ? p->ungot - 1 : 0, mark = p->ctx->nitems;
    int peek, r;

    if (w != NULL)
        w->literal = false;
    peek = sp_getc(p, true);
    sp_ungetc(p);
    if (peek != '(')
        return sp_parse_comsub(p);
    if ((r = matched_pair(p, w, 0, '(', ')', P_ARITH, NULL)) != 0)
        return r;
    if ((r = raw_span(p, start, p->ungot, &text)) != 0)
        goto out;
    if (c == '$' && text.len >= 2 && text.p[0] == '(' && text.p[text.len - 1] == ')' &&
        chk_arithsub(text.p + 1, text.len - 2))
        goto out;
    /* Not arithmetic: bash runs it as a command substitution. What matched_pair
     * parsed inside it is parsed again as part of the whole. */
    rollback_items(p->ctx, mark);
    r = sp_parse_derived(p, text.p, text.len, at);
out:
    sp_str_free(&text);
    return r;
}

/* ---- words (read_token_word) --------------------------------------------- */

static bool parsing_redirection(int t)
{
    return t == T_LESS || t == T_GREAT || t == T_DGREAT || t == T_CLOBBER ||
           t == T_LESS_GREAT || t == T_DLESS_DASH || t == T_DLESS || t == T_TLESS ||
           t == T_LESS_AND || t == T_GREAT_AND || t == T_AND_GREAT;
}

bool sp_reserved_ok(int last, int before)
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
            sp_reserved_ok(last, p->lx.before));
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
    if (compassign ? s[0] != '[' : !is_name_start((unsigned char)s[0]))
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
        if (!is_name_char(c))
            return 0;
    }
    return 0;
}

static bool is_ident(const char *s, size_t n)
{
    if (n == 0 || !is_name_start((unsigned char)s[0]))
        return false;
    for (size_t i = 1; i < n; i++) {
        if (!is_name_char((unsigned char)s[i]))
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
        if ((r = sp_lex(p, &t)) != 0)
            break;
        if (t.type == T_RPAREN)
            break;
        if (t.type == T_NL) {
            sp_tok_clear(&t);
            continue;
        }
        if (t.type != T_WORD && t.type != T_ASSIGN) {
            r = t.type == T_EOF
                    ? sp_fail(p, at, "unexpected EOF while looking for matching `)'")
                    : sp_fail(p, t.pos, "syntax error near unexpected token in array assignment");
            break;
        }
        sp_tok_clear(&t);
    }
    sp_tok_clear(&t);
    p->lx = saved; /* bash's restore_parser_state */
    return r;
}

/* Reads the raw text of the word so far (for bash's checks on its token buffer). */
static int token_so_far(struct sp *p, const struct sp_word *w, size_t end, struct sp_str *out)
{
    return raw_span(p, w->start, end, out);
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

    if (!sp_reserved_ok(x->last, x->before))
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

static int read_word(struct sp *p, int c, struct sp_tok_s *t)
{
    struct sp_word *w = &t->w;
    struct sp_str tok = {0};
    bool pass_next = false;
    int peek, r = 0, res;

    w->start = p->ungot;
    w->literal = true;
    w->all_digits = is_digit(c);
    if ((r = sp_str_put(&w->val, "", 0)) != 0)
        return r;
    for (;;) {
        if (c == SP_EOF)
            break;
        if (pass_next) {
            pass_next = false;
            goto got_char;
        }
        if (c == '\\') {
            peek = sp_getc(p, false);
            if (peek == '\n') {
                record_continuation(p, p->ungot - 1);
                goto next;
            }
            sp_ungetc(p);
            pass_next = true;
            w->quoted = true;
            w->all_digits = false;
            goto next;
        }
        if (c == '\'' || c == '"' || c == '`') {
            if ((r = matched_pair(p, w, c, c, c, 0, &w->val)) != 0)
                goto out;
            w->all_digits = false;
            if (c != '`')
                w->quoted = true;
            goto next;
        }
        if ((p->lx.flags & PST_REGEXP) && (c == '(' || c == '|')) {
            if (c == '|')
                goto got_char;
            if ((r = put_val(&w->val, c)) != 0 ||
                (r = matched_pair(p, w, 0, '(', ')', 0, &w->val)) != 0)
                goto out;
            w->all_digits = false;
            goto next;
        }
        if ((p->lx.flags & PST_EXTPAT) && c != 0 && strchr("@*+?!", c) != NULL) {
            peek = sp_getc(p, true);
            if (peek == '(') {
                if ((r = put_val(&w->val, c)) != 0 || (r = put_val(&w->val, '(')) != 0 ||
                    (r = matched_pair(p, w, 0, '(', ')', 0, &w->val)) != 0)
                    goto out;
                w->all_digits = false;
                goto next;
            }
            sp_ungetc(p);
        }
        if (c == '$' || c == '<' || c == '>') {
            peek = sp_getc(p, true);
            if (peek == '(' || ((peek == '{' || peek == '[') && c == '$')) {
                w->literal = false;
                w->all_digits = false;
                if (peek == '{')
                    r = matched_pair(p, w, 0, '{', '}', P_FIRSTCLOSE | P_DOLBRACE, NULL);
                else if (peek == '(')
                    r = comsub_or_arith(p, w, c);
                else
                    r = matched_pair(p, w, 0, '[', ']', P_ARITH, NULL);
                if (r != 0)
                    goto out;
                goto next;
            } else if (c == '$' && (peek == '\'' || peek == '"')) {
                if (peek == '\'') {
                    struct sp_str body = {0};
                    bool ok;

                    r = matched_pair(p, w, peek, peek, peek, P_ALLOWESC, &body);
                    ok = r == 0 && ansi_decode(body.p, body.len, &w->val, &r);
                    sp_str_free(&body);
                    if (r != 0)
                        goto out;
                    if (!ok)
                        w->literal = false;
                } else if ((r = matched_pair(p, w, peek, peek, peek, 0, &w->val)) != 0) {
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
            sp_ungetc(p);
            if (c == '$' && starts_param(peek))
                w->literal = false;
        } else if (c == '[' && ((p->ungot > w->start && assignment_ok(p)) ||
                                (p->ungot == w->start && (p->lx.flags & PST_COMPASSIGN)))) {
            size_t at = p->ungot;

            if ((r = token_so_far(p, w, at, &tok)) != 0)
                goto out;
            if (at == w->start || is_ident(tok.p, tok.len)) {
                if ((r = put_val(&w->val, c)) != 0 ||
                    (r = matched_pair(p, w, 0, '[', ']', P_ARRAYSUB, &w->val)) != 0)
                    goto out;
                w->all_digits = false;
                goto next;
            }
        } else if (c == '=' && p->ungot > w->start &&
                   (assignment_ok(p) || (p->lx.flags & PST_ASSIGNOK))) {
            size_t at = p->ungot;

            if ((r = token_so_far(p, w, at, &tok)) != 0 || (r = sp_str_putc(&tok, '=')) != 0)
                goto out;
            if (assignment(tok.p, tok.len, (p->lx.flags & PST_COMPASSIGN) != 0) == tok.len - 1) {
                peek = sp_getc(p, true);
                if (peek == '(') {
                    if ((r = compound_assignment(p, at)) != 0)
                        goto out;
                    w->literal = false;
                    w->all_digits = false;
                    goto next;
                }
                sp_ungetc(p);
            }
        }
        if (is_meta(c)) {
            sp_ungetc(p);
            break;
        }
    got_char:
        if ((r = put_val(&w->val, c)) != 0)
            goto out;
        w->all_digits = w->all_digits && is_digit(c);
    next:
        c = sp_getc(p, !pass_next);
    }
    w->end = p->pos;
    if (c == SP_EOF)
        w->end = p->src->len;
    if ((r = raw_span(p, w->start, w->end, &tok)) != 0)
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
    sp_str_free(&tok);
    return r;
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
        return sp_nomem(p);
    src.s = text;
    src.len = len;
    src.derived = true;
    src.origin = p->src->derived ? p->src->origin : at;
    sub.ctx = p->ctx;
    sub.src = &src;
    w.literal = true;
    r = matched_pair(&sub, &w, 0, SP_EOF, SP_EOF, P_HEREDOC, NULL);
    sp_word_clear(&w);
    /* here-documents opened in a substitution of the body, with no line left to read */
    for (size_t i = 0; i < sub.nhd; i++)
        sp_str_free(&sub.hd[i].delim);
    free(sub.hd);
    if (sub.have_la)
        sp_tok_clear(&sub.la);
    free(src.conts);
    return r;
}

static int read_heredoc(struct sp *p, struct sp_heredoc *h)
{
    const struct sp_src *s = p->src;
    struct sp_str body = {0}, line = {0};
    size_t body_at = p->pos;
    int r = 0;

    if ((r = sp_str_put(&body, "", 0)) != 0)
        return r;
    for (;;) {
        size_t line_at = p->pos, skip = 0;
        const char *l;
        size_t n;

        if (p->pos >= s->len)
            break; /* delimited by end of file: bash warns and takes it */
        line.len = 0;
        if ((r = sp_str_put(&line, "", 0)) != 0)
            goto out;
        while (p->pos < s->len) {
            char c = s->s[p->pos];

            if (!h->quoted && c == '\\' && p->pos + 1 < s->len) {
                if (s->s[p->pos + 1] == '\n') {
                    p->pos += 2;
                    continue;
                }
                if ((r = sp_str_put(&line, s->s + p->pos, 2)) != 0)
                    goto out;
                p->pos += 2;
                continue;
            }
            p->pos++;
            if ((r = sp_str_putc(&line, c)) != 0)
                goto out;
            if (c == '\n')
                break;
        }
        if (line.len == 0)
            break; /* nothing but line continuations up to the end */
        if (line.p[line.len - 1] != '\n' && (r = sp_str_putc(&line, '\n')) != 0)
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
        if ((r = sp_str_put(&body, l, n)) != 0)
            goto out;
    }
    if (!h->quoted)
        r = heredoc_scan(p, body.p, body.len, body_at);
out:
    sp_str_free(&body);
    sp_str_free(&line);
    return r;
}

int sp_read_heredocs(struct sp *p)
{
    int r = 0;
    size_t i;

    for (i = 0; i < p->nhd && r == 0; i++)
        r = read_heredoc(p, &p->hd[i]);
    for (i = 0; i < p->nhd; i++)
        sp_str_free(&p->hd[i].delim);
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

    if ((r = matched_pair(p, NULL, 0, '(', ')', P_ARITH, NULL)) != 0)
        return r;
    c = sp_getc(p, false);
    if (c == ')') {
        if ((r = raw_span(p, body, p->ungot - 1, &text)) != 0)
            return r;
        if (for_exprs && arith_for_parts(text.p, text.len) != 3) {
            sp_str_free(&text);
            return sp_fail(p, t->pos, "syntax error: arithmetic for needs three expressions");
        }
        t->type = for_exprs ? T_ARITH_FOR : T_ARITH_CMD;
        t->arith = text.p;
        return 0;
    }
    if (for_exprs)
        return sp_fail(p, t->pos, "syntax error: `((' without `))' after for");
    /* A nested subshell: read it again as "(" "(" ... */
    rollback_items(p->ctx, mark);
    while (p->nhd > nhd)
        sp_str_free(&p->hd[--p->nhd].delim);
    p->pos = t->pos + 1;
    t->type = T_LPAREN;
    return 0;
}

static int read_token(struct sp *p, struct sp_tok_s *t)
{
    int c, peek, r;

    do
        c = sp_getc(p, true);
    while (is_blank(c));
    t->pos = p->ungot;
    if (c == SP_EOF) {
        t->type = T_EOF;
        return p->ctx->err;
    }
    if (c == '#') {
        do
            c = sp_getc(p, false);
        while (c != SP_EOF && c != '\n');
        c = '\n';
    }
    if (c == '\n') {
        p->lx.flags &= ~PST_ASSIGNOK;
        t->type = T_NL;
        if (p->nhd > 0)
            return sp_read_heredocs(p);
        return 0;
    }
    if (p->lx.flags & PST_REGEXP)
        return read_word(p, c, t);
    if (c == '|' || c == '&' || c == ';' || c == '(' || c == ')' || c == '<' || c == '>') {
        p->lx.flags &= ~PST_ASSIGNOK;
        peek = sp_getc(p, !(p->lx.in_comsub && c == ')'));
        if (c == peek) {
            switch (c) {
            case '<':
                peek = sp_getc(p, true);
                if (peek == '-') {
                    t->type = T_DLESS_DASH;
                } else if (peek == '<') {
                    t->type = T_TLESS;
                } else {
                    sp_ungetc(p);
                    t->type = T_DLESS;
                }
                return 0;
            case '>':
                t->type = T_DGREAT;
                return 0;
            case ';':
                p->lx.flags |= PST_CASEPAT;
                peek = sp_getc(p, true);
                if (peek == '&') {
                    t->type = T_DSEMI_AND;
                } else {
                    sp_ungetc(p);
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
                if (p->lx.last == T_FOR || sp_reserved_ok(p->lx.last, p->lx.before)) {
                    if ((r = dparen(p, t)) != 0)
                        return r;
                    if (t->type == T_LPAREN && (p->lx.flags & PST_CASEPAT))
                        return 0;
                    return 0;
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
            peek = sp_getc(p, true);
            if (peek == '>') {
                t->type = T_AND_DGREAT;
            } else {
                sp_ungetc(p);
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
        sp_ungetc(p);
        if ((p->lx.flags & PST_CASEPAT) && c == ')')
            p->lx.flags &= ~PST_CASEPAT;
        if ((c == '<' || c == '>') && peek == '(') {
            /* process substitution: a word */
            p->pos = t->pos + 1;
            p->ungot = t->pos;
            return read_word(p, c, t);
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
    return read_word(p, c, t);
}

int sp_lex(struct sp *p, struct sp_tok_s *t)
{
    int r;

    memset(t, 0, sizeof(*t));
    t->mark = p->ctx->nitems;
    r = read_token(p, t);
    if (r == 0 && p->ctx->err != 0)
        r = p->ctx->err;
    if (r != 0) {
        sp_tok_clear(t);
        return r;
    }
    if (!p->lx.frozen) {
        p->lx.before = p->lx.last;
        p->lx.last = t->type;
    }
    return 0;
}

/* ---- texts of their own ------------------------------------------------- */

int sp_parse_derived(struct sp *p, const char *text, size_t len, size_t at)
{
    struct sp_src src = {0};
    struct sp sub = {0};
    int r;

    if (++p->ctx->depth > SHPARSE_DEPTH_MAX) {
        p->ctx->depth--;
        return sp_fail(p, at, "nested too deeply");
    }
    for (size_t i = 0; i + 1 < len; i++)
        src.capconts += text[i] == '\\' && text[i + 1] == '\n';
    if (src.capconts > 0 &&
        (src.conts = calloc(src.capconts, sizeof(src.conts[0]))) == NULL) {
        p->ctx->depth--;
        return sp_nomem(p);
    }
    src.s = text;
    src.len = len;
    src.derived = true;
    src.origin = p->src->derived ? p->src->origin : at;
    sub.ctx = p->ctx;
    sub.src = &src;
    sub.lx.last = T_NL;
    r = sp_parse_script(&sub);
    if (sub.have_la)
        sp_tok_clear(&sub.la);
    for (size_t i = 0; i < sub.nhd; i++)
        sp_str_free(&sub.hd[i].delim);
    free(sub.hd);
    free(src.conts);
    p->ctx->depth--;
    return r;
}
