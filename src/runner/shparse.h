/*
 * shparse.h - a bash parser for the permission check (RUNNER-OPS.md 7.5-7.7): it
 * reads a command line as `bash -c` would and lists the strings the rules are
 * matched against, one per simple command, per write redirection, per `[[ ]]`
 * and per arithmetic command, wherever they stand.
 *
 * Why our own recursive-descent parser and not tree-sitter-bash (7.7):
 *   - no generated grammar of megabytes to audit: this is a few thousand lines
 *     that follow bash 5.2's own parse.y (its lexer states, its grammar) closely
 *     enough to be read against it;
 *   - no error-tolerant parse to second-guess: a command either parses as bash
 *     parses it or is refused, with a line, a column and a reason;
 *   - exact bytes: every checked string is built from the bytes bash runs, with
 *     bash's own quote removal;
 *   - fuzzable against bash itself: the differential test (test_shparse) and the
 *     libFuzzer harness (fuzz/fuzz_shparse.c) compare it with `bash -n`.
 *
 * What the parser follows: bash's non-interactive defaults (no alias expansion,
 * extglob off except on the right of `[[ == ]]`, as bash does; no posix mode). A
 * text that bash parses only when it runs it (the body of a backquote, an
 * unquoted here-document's substitutions, a `$((...))` that is not arithmetic) is
 * parsed here too, and refused if it does not parse: bash -n accepts those, but
 * what they run cannot be checked otherwise.
 *
 * Not for: deciding anything. The rules and their matching are permission.c's.
 * Pure: no I/O, no global state; safe on any thread.
 */
#ifndef CREDBROKER_SHPARSE_H
#define CREDBROKER_SHPARSE_H

#include <stdbool.h>
#include <stddef.h>

#define SHPARSE_INPUT_MAX (1024 * 1024) /* bytes in one command */
#define SHPARSE_DEPTH_MAX 200           /* nesting of commands, quotes and substitutions */
#define SHPARSE_ITEMS_MAX 100000        /* checked strings in one command */
#define SHPARSE_ERR_MAX 256             /* room an error text needs */

/* What a checked string stands for. */
enum shparse_kind {
    SHPARSE_COMMAND,  /* a simple command: its words (assignments included), no redirections */
    SHPARSE_REDIRECT, /* a write redirection: "> TARGET" */
    SHPARSE_TEST,     /* [[ ... ]]: its words and operators */
    SHPARSE_ARITH,    /* (( ... )) or for (( ... )): the expression as written */
};

/*
 * One checked string. text is NUL-terminated, with no NUL inside (len bytes).
 *
 * Words are joined by single spaces. A fully literal word (no parameter,
 * command, arithmetic or process substitution in it) reads after quote removal
 * (\rm, 'rm', "rm", r''m and $'rm' all read rm); any other word is kept as
 * written (line continuations removed, as bash removes them before anything
 * else). literal_name is false when a word up to and including the command's
 * name is not literal: such a string may match no rule but "*". It is true for
 * the other kinds.
 */
struct shparse_item {
    char *text;
    size_t len;
    enum shparse_kind kind;
    bool literal_name;
};

/* The strings of one command, in the order bash would meet them (a command
 * before what is nested in its words, then its redirections in order). */
struct shparse_result {
    struct shparse_item *items;
    size_t n;
};

/*
 * Parses src[0..len) as a bash script. On success returns 0 and fills *out
 * (caller frees with shparse_result_free; it may hold no item, e.g. for a
 * comment). On failure *out is empty and the return is ERR_INVALID with
 * "<line>:<col>: <message>" in err (lines and columns from 1, columns in
 * bytes), or ERR_NOMEM / ERR_TOO_LARGE with a message. err may be NULL.
 */
int shparse_parse(const char *src, size_t len, struct shparse_result *out, char *err,
                  size_t errlen) __attribute__((warn_unused_result));

/* Frees what shparse_parse filled and empties r. Accepts an empty r. */
void shparse_result_free(struct shparse_result *r);

#endif
