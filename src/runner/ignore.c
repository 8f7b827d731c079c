/*
 * ignore.c - see ignore.h. A port of what ripgrep 13 does with one gitignore line: the
 * `ignore` crate's GitignoreBuilder::add_line turns it into a glob, globset's parser
 * turns the glob into tokens and the tokens into a byte regex ((?-u): every token works
 * on bytes). Here the tokens become a small NFA program instead, run as a Thompson
 * simulation, with globset's literal shortcuts for the common shapes ("**" then "/name",
 * "**" then a '/', a '*' and ".ext"; a plain path).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "ignore.h"
#include "ignore_internal.h"
#include "utf8.h"

/* ---- the program: globset's regex as an NFA over bytes ---- */

enum op {
    OP_BYTE,    /* arg: the byte */
    OP_CLASS,   /* arg: index of a 256-bit set */
    OP_NOTSLASH,
    OP_NOTNL,   /* the regex's '.': any byte but '\n' */
    OP_SPLIT,   /* to x and y */
    OP_JMP,     /* to x */
    OP_MATCH,
};

struct inst {
    uint8_t op;
    uint32_t arg, x, y;
};

struct prog {
    struct inst *v;
    size_t n, cap;
    uint8_t (*sets)[32];
    size_t nsets;
};

static int emit(struct prog *g, uint8_t op, uint32_t arg, uint32_t x, uint32_t y)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 16;
        struct inst *v = reallocarray(g->v, cap, sizeof(*v));

        if (v == NULL)
            return ERR_NOMEM;
        g->v = v;
        g->cap = cap;
    }
    g->v[g->n++] = (struct inst){op, arg, x, y};
    return 0;
}

static void set_add(uint8_t *set, unsigned lo, unsigned hi)
{
    for (unsigned b = lo; b <= hi; b++)
        set[b / 8] |= (uint8_t)(1u << (b % 8));
}

/*
 * A class as globset writes it into a (?-u) regex: each character as its escaped UTF-8
 * bytes, so a range "a-b" of multibyte characters is the bytes of a but the last, the
 * range from a's last byte to b's first, then the rest of b's bytes; a negated class is
 * every byte outside (the '/' too).
 */
static int emit_class(struct prog *g, const struct tok *t)
{
    uint8_t(*sets)[32] = reallocarray(g->sets, g->nsets + 1, sizeof(*g->sets));
    uint8_t *set;

    if (sets == NULL)
        return ERR_NOMEM;
    g->sets = sets;
    set = sets[g->nsets];
    memset(set, 0, 32);
    for (size_t i = 0; i < t->nranges; i++) {
        unsigned char lo[4], hi[4];
        size_t nlo = utf8_encode(t->ranges[i].lo, lo), nhi = utf8_encode(t->ranges[i].hi, hi);

        if (t->ranges[i].lo == t->ranges[i].hi) {
            for (size_t k = 0; k < nlo; k++)
                set_add(set, lo[k], lo[k]);
            continue;
        }
        for (size_t k = 0; k + 1 < nlo; k++)
            set_add(set, lo[k], lo[k]);
        if (lo[nlo - 1] <= hi[0]) /* (always, for lo <= hi as characters) */
            set_add(set, lo[nlo - 1], hi[0]);
        for (size_t k = 1; k < nhi; k++)
            set_add(set, hi[k], hi[k]);
    }
    if (t->negated) {
        for (size_t k = 0; k < 32; k++)
            set[k] = (uint8_t)~set[k];
    }
    return emit(g, OP_CLASS, (uint32_t)g->nsets++, 0, 0);
}

/* ".*" then '/': L: split(L+1, L+3); L+1: any; jmp L; L+3: '/'. */
static int emit_anything_then_slash(struct prog *g)
{
    uint32_t l = (uint32_t)g->n;
    int r;

    if ((r = emit(g, OP_SPLIT, 0, l + 1, l + 3)) != 0 || (r = emit(g, OP_NOTNL, 0, 0, 0)) != 0 ||
        (r = emit(g, OP_JMP, 0, l, 0)) != 0)
        return r;
    return emit(g, OP_BYTE, '/', 0, 0);
}

static int emit_toks(struct prog *g, const struct toks *t);

static int emit_tok(struct prog *g, const struct tok *t)
{
    unsigned char b[4];
    uint32_t l;
    size_t n;
    int r = 0;

    switch (t->kind) {
    case T_LIT:
        n = utf8_encode(t->c, b);
        for (size_t k = 0; k < n && r == 0; k++)
            r = emit(g, OP_BYTE, b[k], 0, 0);
        return r;
    case T_ANY:
        return emit(g, OP_NOTSLASH, 0, 0, 0);
    case T_STAR:
        l = (uint32_t)g->n;
        if ((r = emit(g, OP_SPLIT, 0, l + 1, l + 3)) != 0 ||
            (r = emit(g, OP_NOTSLASH, 0, 0, 0)) != 0)
            return r;
        return emit(g, OP_JMP, 0, l, 0);
    case T_RPREFIX: /* "" or anything ending in '/' (which covers "/") */
        l = (uint32_t)g->n;
        if ((r = emit(g, OP_SPLIT, 0, l + 1, l + 5)) != 0)
            return r;
        return emit_anything_then_slash(g);
    case T_RSUFFIX:
        if ((r = emit(g, OP_BYTE, '/', 0, 0)) != 0)
            return r;
        l = (uint32_t)g->n;
        if ((r = emit(g, OP_SPLIT, 0, l + 1, l + 3)) != 0 || (r = emit(g, OP_NOTNL, 0, 0, 0)) != 0)
            return r;
        return emit(g, OP_JMP, 0, l, 0);
    case T_RZOM: /* '/', then "" or anything ending in '/' */
        if ((r = emit(g, OP_BYTE, '/', 0, 0)) != 0)
            return r;
        l = (uint32_t)g->n;
        if ((r = emit(g, OP_SPLIT, 0, l + 1, l + 5)) != 0)
            return r;
        return emit_anything_then_slash(g);
    case T_CLASS:
        return emit_class(g, t);
    case T_ALTS: {
        /* globset drops the alternatives that compile to nothing; an empty set of them is
         * no token at all. Each: split(this, next); this...; jmp end. */
        size_t nonempty = 0, done = 0, *jumps;

        for (size_t i = 0; i < t->nalts; i++)
            nonempty += t->alts[i].n > 0;
        if (nonempty == 0)
            return 0;
        if ((jumps = calloc(nonempty, sizeof(*jumps))) == NULL)
            return ERR_NOMEM;
        for (size_t i = 0; i < t->nalts && r == 0; i++) {
            size_t split = g->n;

            if (t->alts[i].n == 0)
                continue;
            if (done + 1 < nonempty && (r = emit(g, OP_SPLIT, 0, 0, 0)) != 0)
                break;
            if ((r = emit_toks(g, &t->alts[i])) != 0)
                break;
            jumps[done] = g->n;
            if (done + 1 < nonempty) {
                if ((r = emit(g, OP_JMP, 0, 0, 0)) != 0)
                    break;
                g->v[split].x = (uint32_t)split + 1;
                g->v[split].y = (uint32_t)g->n;
            }
            done++;
        }
        for (size_t k = 0; r == 0 && k + 1 < nonempty; k++)
            g->v[jumps[k]].x = (uint32_t)g->n;
        free(jumps);
        return r;
    }
    }
    return ERR_INVALID;
}

static int emit_toks(struct prog *g, const struct toks *t)
{
    int r = 0;

    for (size_t i = 0; i < t->n && r == 0; i++)
        r = emit_tok(g, &t->v[i]);
    return r;
}

/* Whether the program accepts s[0..len) entirely. */
static bool prog_run(const struct prog *g, const unsigned char *s, size_t len, uint32_t *cur,
                     uint32_t *next, uint32_t *mark, uint32_t *stack)
{
    size_t ncur = 0, nnext, gen = 1;

    memset(mark, 0, g->n * sizeof(*mark));
    /* The closure of pc 0 at position 0, then one step per byte. Threads are the pcs of
     * consuming instructions (or MATCH) reached through SPLIT and JMP. */
    for (size_t pos = 0;; pos++) {
        size_t top = 0;

        nnext = 0;
        if (pos == 0) {
            stack[top++] = 0;
            mark[0] = (uint32_t)gen;
        } else {
            unsigned char c = s[pos - 1];

            for (size_t i = 0; i < ncur; i++) {
                const struct inst *in = &g->v[cur[i]];
                bool ok = false;

                switch (in->op) {
                case OP_BYTE:
                    ok = c == in->arg;
                    break;
                case OP_CLASS:
                    ok = (g->sets[in->arg][c / 8] >> (c % 8)) & 1;
                    break;
                case OP_NOTSLASH:
                    ok = c != '/';
                    break;
                case OP_NOTNL:
                    ok = c != '\n';
                    break;
                default:
                    break;
                }
                if (ok && mark[cur[i] + 1] != gen) {
                    mark[cur[i] + 1] = (uint32_t)gen;
                    stack[top++] = cur[i] + 1;
                }
            }
        }
        while (top > 0) {
            uint32_t pc = stack[--top];
            const struct inst *in = &g->v[pc];

            if (in->op == OP_SPLIT || in->op == OP_JMP) {
                uint32_t to[2] = {in->x, in->y};

                for (int k = in->op == OP_SPLIT ? 1 : 0; k >= 0; k--) {
                    if (mark[to[k]] != gen) {
                        mark[to[k]] = (uint32_t)gen;
                        stack[top++] = to[k];
                    }
                }
            } else {
                next[nnext++] = pc;
            }
        }
        {
            uint32_t *tmp = cur;

            cur = next;
            next = tmp;
            ncur = nnext;
        }
        gen++;
        if (ncur == 0)
            return false;
        if (pos == len)
            break;
    }
    for (size_t i = 0; i < ncur; i++) {
        if (g->v[cur[i]].op == OP_MATCH)
            return true;
    }
    return false;
}

/* ---- the set ---- */

enum shortcut {
    SC_NONE,     /* run the program */
    SC_LITERAL,  /* the whole path is lit */
    SC_BASENAME, /* the path is lit or ends in "/" + lit */
    SC_EXT,      /* the path ends in lit (".ext", no '/') */
    SC_ALL,      /* "**" alone: everything */
};

struct glob {
    bool whitelist, only_dir;
    enum shortcut sc;
    unsigned char *lit;
    size_t lit_len;
    struct prog prog;
};

struct ignore_set {
    struct glob *v;
    size_t n, cap, whitelists;
    size_t max_insts;
    uint32_t *scratch; /* 4 * max_insts: the simulation's lists, marks and stack */
};

struct ignore_set *ignore_set_new(void)
{
    return calloc(1, sizeof(struct ignore_set));
}

static void glob_clear(struct glob *g)
{
    free(g->lit);
    free(g->prog.v);
    free(g->prog.sets);
    memset(g, 0, sizeof(*g));
}

void ignore_set_free(struct ignore_set *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++)
        glob_clear(&s->v[i]);
    free(s->v);
    free(s->scratch);
    free(s);
}

size_t ignore_set_count(const struct ignore_set *s)
{
    return s->n;
}

size_t ignore_set_whitelists(const struct ignore_set *s)
{
    return s->whitelists;
}

/* The literal bytes of toks[from..n) when each is a T_LIT (and none is '/' when
 * no_slash); NULL when another token is there. Caller frees. */
static unsigned char *toks_literal(const struct toks *t, size_t from, bool no_slash,
                                   bool no_dot, size_t *len)
{
    unsigned char *lit = malloc(4 * (t->n - from) + 1);

    *len = 0;
    if (lit == NULL)
        return NULL;
    for (size_t i = from; i < t->n; i++) {
        if (t->v[i].kind != T_LIT || (no_slash && t->v[i].c == '/') ||
            (no_dot && t->v[i].c == '.')) {
            free(lit);
            return NULL;
        }
        *len += utf8_encode(t->v[i].c, lit + *len);
    }
    return lit;
}

/* globset's strategies that need no regex, where they are exact. */
static void glob_shortcut(struct glob *g, const struct toks *t)
{
    if (t->n == 1 && t->v[0].kind == T_RPREFIX) {
        g->sc = SC_ALL;
    } else if (t->n > 0 && (g->lit = toks_literal(t, 0, false, false, &g->lit_len)) != NULL) {
        g->sc = SC_LITERAL;
    } else if (t->n > 1 && t->v[0].kind == T_RPREFIX &&
               (g->lit = toks_literal(t, 1, true, false, &g->lit_len)) != NULL) {
        g->sc = SC_BASENAME;
    } else if (t->n > 3 && t->v[0].kind == T_RPREFIX && t->v[1].kind == T_STAR &&
               t->v[2].kind == T_LIT && t->v[2].c == '.' &&
               (g->lit = toks_literal(t, 3, true, true, &g->lit_len)) != NULL) {
        /* ".ext": the '.' put back in front. */
        memmove(g->lit + 1, g->lit, g->lit_len);
        g->lit[0] = '.';
        g->lit_len++;
        g->sc = SC_EXT;
    }
}

static int set_grow_scratch(struct ignore_set *s, size_t ninsts)
{
    uint32_t *scratch;

    if (ninsts <= s->max_insts)
        return 0;
    if ((scratch = reallocarray(s->scratch, ninsts, 4 * sizeof(uint32_t))) == NULL)
        return ERR_NOMEM;
    s->scratch = scratch;
    s->max_insts = ninsts;
    return 0;
}

/* Adds the glob text (chars[0..n), already through add_line's rewriting). */
static int set_add_glob(struct ignore_set *s, const uint32_t *chars, size_t n, bool whitelist,
                        bool only_dir)
{
    struct toks t = {0};
    struct glob g = {.whitelist = whitelist, .only_dir = only_dir};
    int r;

    if ((r = ignore__glob_parse(chars, n, &t)) != 0)
        goto out;
    glob_shortcut(&g, &t);
    if (g.sc == SC_NONE) {
        if ((r = emit_toks(&g.prog, &t)) != 0 || (r = emit(&g.prog, OP_MATCH, 0, 0, 0)) != 0 ||
            (r = set_grow_scratch(s, g.prog.n)) != 0)
            goto out;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        struct glob *v = reallocarray(s->v, cap, sizeof(*v));

        if (v == NULL) {
            r = ERR_NOMEM;
            goto out;
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = g;
    memset(&g, 0, sizeof(g)); /* transferred */
    s->whitelists += whitelist;
out:
    glob_clear(&g);
    ignore__toks_clear(&t);
    return r;
}

static bool chars_start_with(const uint32_t *c, size_t n, const char *lit)
{
    size_t k = strlen(lit);

    if (n < k)
        return false;
    for (size_t i = 0; i < k; i++) {
        if (c[i] != (unsigned char)lit[i])
            return false;
    }
    return true;
}

int ignore_set_add_line(struct ignore_set *s, const char *line, size_t len)
{
    uint32_t *c, *glob = NULL;
    size_t n = 0, start = 0, gn = 0;
    bool whitelist = false, only_dir = false, absolute = false;
    int r;

    if (len > 0 && line[0] == '#')
        return 0;
    if ((c = calloc(len + 1, sizeof(*c))) == NULL)
        return ERR_NOMEM;
    for (size_t i = 0; i < len;) {
        size_t k = utf8_decode((const unsigned char *)line + i, len - i, &c[n]);

        if (k == 0) {
            r = ERR_INVALID;
            goto out;
        }
        i += k;
        n++;
    }
    /* trim_end, unless the line ends in an escaped space. */
    if (!(n >= 2 && c[n - 1] == ' ' && c[n - 2] == '\\')) {
        while (n > 0 && utf8_is_white_space(c[n - 1]))
            n--;
    }
    r = 0;
    if (n == 0)
        goto out;
    if (chars_start_with(c, n, "\\!") || chars_start_with(c, n, "\\#")) {
        start = 1;
    } else {
        if (c[0] == '!') {
            whitelist = true;
            start = 1;
        }
        if (start < n && c[start] == '/') {
            start++;
            absolute = true;
        }
    }
    if (n > start && c[n - 1] == '/') {
        only_dir = true;
        n--;
    }
    /* "**" + "/" in front when no '/' is left, unless it starts so already; "/" + "*"
     * after a trailing "/" + "**". */
    if ((glob = calloc(n - start + 5, sizeof(*glob))) == NULL) {
        r = ERR_NOMEM;
        goto out;
    }
    {
        bool slash = false;

        for (size_t i = start; i < n; i++)
            slash = slash || c[i] == '/';
        if (!absolute && !slash &&
            !(chars_start_with(c + start, n - start, "**/") ||
              (n - start == 2 && c[start] == '*' && c[start + 1] == '*'))) {
            glob[gn++] = '*';
            glob[gn++] = '*';
            glob[gn++] = '/';
        }
    }
    memcpy(glob + gn, c + start, (n - start) * sizeof(*glob));
    gn += n - start;
    if (gn >= 3 && glob[gn - 3] == '/' && glob[gn - 2] == '*' && glob[gn - 1] == '*') {
        glob[gn++] = '/';
        glob[gn++] = '*';
    }
    r = set_add_glob(s, glob, gn, whitelist, only_dir);
out:
    free(glob);
    free(c);
    return r;
}

int ignore_set_add_file(struct ignore_set *s, const char *buf, size_t len)
{
    size_t pos = 0;

    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl != NULL ? (size_t)(nl - buf) : len, llen = end - pos;

        if (llen > 0 && buf[end - 1] == '\r')
            llen--;
        /* Not UTF-8: the crate's lines() fails here and it keeps what it had. */
        for (size_t i = pos; i < pos + llen;) {
            uint32_t cp;
            size_t k = utf8_decode((const unsigned char *)buf + i, pos + llen - i, &cp);

            if (k == 0)
                return 0;
            i += k;
        }
        if (ignore_set_add_line(s, buf + pos, llen) == ERR_NOMEM)
            return ERR_NOMEM;
        pos = end + 1;
    }
    return 0;
}

static bool glob_matches(const struct ignore_set *s, const struct glob *g, const char *path,
                         size_t len)
{
    const unsigned char *p = (const unsigned char *)path;

    switch (g->sc) {
    case SC_ALL:
        return memchr(path, '\n', len) == NULL; /* the regex's ".*" */
    case SC_LITERAL:
        return len == g->lit_len && memcmp(p, g->lit, len) == 0;
    case SC_BASENAME:
        return (len == g->lit_len && memcmp(p, g->lit, len) == 0) ||
               (len > g->lit_len && memcmp(p + len - g->lit_len, g->lit, g->lit_len) == 0 &&
                p[len - g->lit_len - 1] == '/');
    case SC_EXT:
        return len >= g->lit_len && memcmp(p + len - g->lit_len, g->lit, g->lit_len) == 0;
    case SC_NONE:
        break;
    }
    {
        uint32_t *sc = s->scratch;
        size_t m = s->max_insts;

        return prog_run(&g->prog, p, len, sc, sc + m, sc + 2 * m, sc + 3 * m);
    }
}

enum ignore_match ignore_set_match(const struct ignore_set *s, const char *path, size_t len,
                                   bool is_dir)
{
    for (size_t i = s->n; i-- > 0;) {
        const struct glob *g = &s->v[i];

        if (g->only_dir && !is_dir)
            continue;
        if (glob_matches(s, g, path, len))
            return g->whitelist ? IGNORE_WHITELIST : IGNORE_IGNORE;
    }
    return IGNORE_NONE;
}
