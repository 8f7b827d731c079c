/*
 * ignore_internal.h - what the two halves of the gitignore matcher share (ignore.h):
 * ignore_glob.c, a glob parsed into globset's tokens, and ignore.c, the tokens turned into
 * a program over bytes, and the set of globs a search applies. Nothing else includes it.
 */
#ifndef CREDBROKER_IGNORE_INTERNAL_H
#define CREDBROKER_IGNORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum tok_kind {
    T_LIT,     /* one character, as its UTF-8 bytes */
    T_ANY,     /* '?': [^/] */
    T_STAR,    /* '*': any bytes but '/' */
    T_RPREFIX, /* leading "**" then '/': "", or anything ending in '/' */
    T_RSUFFIX, /* '/' then a trailing "**": '/' then anything */
    T_RZOM,    /* '/', "**", '/': '/', then "" or anything ending in '/' */
    T_CLASS,   /* [...] */
    T_ALTS,    /* {a,b} */
};

struct range {
    uint32_t lo, hi;
};

struct toks;

struct tok {
    enum tok_kind kind;
    uint32_t c;            /* T_LIT */
    bool negated;          /* T_CLASS */
    struct range *ranges;  /* T_CLASS */
    size_t nranges;
    struct toks *alts;     /* T_ALTS */
    size_t nalts;
};

struct toks {
    struct tok *v;
    size_t n, cap;
};

/* Parses chars[0..n) into *out (caller clears). ERR_INVALID when globset refuses it. */
int ignore__glob_parse(const uint32_t *chars, size_t n, struct toks *out);
/* Frees what t holds (its tokens, their classes and alternatives) and empties it. */
void ignore__toks_clear(struct toks *t);

#endif
