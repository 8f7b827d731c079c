/*
 * ignore_glob.c - one gitignore glob parsed as globset 0.4.7's Parser does, step for step,
 * into its tokens (ignore_internal.h): literals, '?', '*', the three "**" forms, classes
 * and {alternatives}. ignore.c turns the tokens into a program.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "ignore_internal.h"

static void tok_clear(struct tok *t)
{
    free(t->ranges);
    for (size_t i = 0; i < t->nalts; i++)
        ignore__toks_clear(&t->alts[i]);
    free(t->alts);
    memset(t, 0, sizeof(*t));
}

void ignore__toks_clear(struct toks *t)
{
    for (size_t i = 0; i < t->n; i++)
        tok_clear(&t->v[i]);
    free(t->v);
    memset(t, 0, sizeof(*t));
}

/* Appends *tok (its allocations transferred). */
static int toks_push(struct toks *t, struct tok *tok)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        struct tok *v = reallocarray(t->v, cap, sizeof(*v));

        if (v == NULL)
            return ERR_NOMEM;
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n++] = *tok;
    memset(tok, 0, sizeof(*tok));
    return 0;
}

static int toks_push_kind(struct toks *t, enum tok_kind kind)
{
    struct tok tok = {.kind = kind};

    return toks_push(t, &tok);
}

/* Rust's char::is_whitespace (the White_Space property), what str::trim_end removes. */
/* ---- the glob parser (globset 0.4.7's Parser, step for step) ---- */

#define NONE UINT32_MAX

struct parser {
    const uint32_t *chars;
    size_t n, i;
    uint32_t prev, cur;
    struct toks *stack; /* [0] the glob, then one per alternative of an open '{' */
    size_t depth;
};

static uint32_t p_bump(struct parser *p)
{
    p->prev = p->cur;
    p->cur = p->i < p->n ? p->chars[p->i++] : NONE;
    return p->cur;
}

static uint32_t p_peek(const struct parser *p)
{
    return p->i < p->n ? p->chars[p->i] : NONE;
}

static struct toks *p_top(struct parser *p)
{
    return &p->stack[p->depth - 1];
}

static int p_push_kind(struct parser *p, enum tok_kind kind)
{
    return toks_push_kind(p_top(p), kind);
}

static int p_push_lit(struct parser *p, uint32_t c)
{
    struct tok t = {.kind = T_LIT, .c = c};

    return toks_push(p_top(p), &t);
}

static int parse_star(struct parser *p)
{
    uint32_t prev = p->prev;
    struct toks *top = p_top(p);
    bool is_suffix;
    enum tok_kind last;
    int r;

    if (p_peek(p) != '*')
        return p_push_kind(p, T_STAR);
    p_bump(p);
    if (top->n == 0) {
        if (p_peek(p) != NONE && p_peek(p) != '/') {
            if ((r = p_push_kind(p, T_STAR)) != 0)
                return r;
            return p_push_kind(p, T_STAR);
        }
        if ((r = p_push_kind(p, T_RPREFIX)) != 0)
            return r;
        p_bump(p);
        return 0;
    }
    if (prev != '/' && (p->depth <= 1 || (prev != ',' && prev != '{'))) {
        if ((r = p_push_kind(p, T_STAR)) != 0)
            return r;
        return p_push_kind(p, T_STAR);
    }
    if (p_peek(p) == NONE) {
        p_bump(p);
        is_suffix = true;
    } else if ((p_peek(p) == ',' || p_peek(p) == '}') && p->depth >= 2) {
        is_suffix = true;
    } else if (p_peek(p) == '/') {
        p_bump(p);
        is_suffix = false;
    } else {
        if ((r = p_push_kind(p, T_STAR)) != 0)
            return r;
        return p_push_kind(p, T_STAR);
    }
    /* The token before (the '/' in front of the stars) is replaced. */
    last = top->v[top->n - 1].kind;
    tok_clear(&top->v[--top->n]);
    if (last == T_RPREFIX || last == T_RSUFFIX)
        return p_push_kind(p, last);
    return p_push_kind(p, is_suffix ? T_RSUFFIX : T_RZOM);
}

static int class_add(struct tok *t, uint32_t lo, uint32_t hi)
{
    struct range *v = reallocarray(t->ranges, t->nranges + 1, sizeof(*v));

    if (v == NULL)
        return ERR_NOMEM;
    t->ranges = v;
    v[t->nranges++] = (struct range){lo, hi};
    return 0;
}

static int parse_class(struct parser *p)
{
    struct tok t = {.kind = T_CLASS};
    bool first = true, in_range = false;
    int r = 0;

    if (p_peek(p) == '!' || p_peek(p) == '^') {
        p_bump(p);
        t.negated = true;
    }
    for (;;) {
        uint32_t c = p_bump(p);

        if (c == NONE) {
            r = ERR_INVALID; /* unclosed class */
            goto out;
        }
        if (c == ']' && !first)
            break;
        if (c == '-' && !first && !in_range) {
            in_range = true;
        } else if (in_range) {
            struct range *last = &t.ranges[t.nranges - 1];

            last->hi = c;
            if (last->hi < last->lo) {
                r = ERR_INVALID; /* reversed range */
                goto out;
            }
            in_range = false;
        } else if ((r = class_add(&t, c, c)) != 0) {
            goto out;
        }
        first = false;
    }
    if (in_range && (r = class_add(&t, '-', '-')) != 0)
        goto out;
    r = toks_push(p_top(p), &t);
out:
    tok_clear(&t);
    return r;
}

static int p_open_alt(struct parser *p, size_t max)
{
    if (p->depth == max)
        return ERR_INVALID;
    p->stack[p->depth++] = (struct toks){0};
    return 0;
}

/* '}': the open alternatives become one token of the glob (none open: an empty one). */
static int parse_close_alts(struct parser *p)
{
    struct tok t = {.kind = T_ALTS};

    if (p->depth > 1) {
        t.nalts = p->depth - 1;
        if ((t.alts = calloc(t.nalts, sizeof(*t.alts))) == NULL)
            return ERR_NOMEM;
        for (size_t i = 0; i < t.nalts; i++) {
            t.alts[i] = p->stack[1 + i];
            p->stack[1 + i] = (struct toks){0};
        }
        p->depth = 1;
    }
    return toks_push(p_top(p), &t);
}

/* Parses chars[0..n) into *out (caller clears). ERR_INVALID when globset refuses it. */
int ignore__glob_parse(const uint32_t *chars, size_t n, struct toks *out)
{
    /* At most the glob plus one list per ',' and the first alternative. */
    size_t max = 2 + n;
    struct parser p = {.chars = chars, .n = n, .prev = NONE, .cur = NONE, .depth = 1};
    uint32_t c;
    int r = 0;

    if ((p.stack = calloc(max, sizeof(*p.stack))) == NULL)
        return ERR_NOMEM;
    while (r == 0 && (c = p_bump(&p)) != NONE) {
        switch (c) {
        case '?':
            r = p_push_kind(&p, T_ANY);
            break;
        case '*':
            r = parse_star(&p);
            break;
        case '[':
            r = parse_class(&p);
            break;
        case '{':
            r = p.depth > 1 ? ERR_INVALID /* nested */ : p_open_alt(&p, max);
            break;
        case '}':
            r = parse_close_alts(&p);
            break;
        case ',':
            r = p.depth <= 1 ? p_push_lit(&p, ',') : p_open_alt(&p, max);
            break;
        case '\\':
            r = (c = p_bump(&p)) == NONE ? ERR_INVALID : p_push_lit(&p, c);
            break;
        default:
            r = p_push_lit(&p, c);
            break;
        }
    }
    if (r == 0 && p.depth > 1)
        r = ERR_INVALID; /* unclosed '{' */
    if (r == 0) {
        *out = p.stack[0];
        p.stack[0] = (struct toks){0};
    }
    for (size_t i = 0; i < max; i++)
        ignore__toks_clear(&p.stack[i]);
    free(p.stack);
    return r;
}
