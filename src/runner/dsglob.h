/*
 * dsglob.h - doublestar patterns (the semantics of Go's github.com/bmatcuk/doublestar
 * v4, which the Go runner's glob uses: RUNNER-OPS.md 5.4), matched against paths
 * relative to the workspace root with '/' separators:
 *
 *   '*' any run of characters but '/'; '?' one character (UTF-8) but '/'; '[...]' a
 *   class, with ranges, '^' or '!' negating, '\' escaping; '{a,b}' alternatives (which
 *   may hold '/' and nest); '\' escapes the next character; '**' as a whole segment
 *   any number of directories, zero included (so "a" followed by "/" and "**"
 *   matches "a" itself), and like '*' anywhere else. An unmatched '}' is an ordinary
 *   character; an empty class ("[]") is malformed. As in doublestar, each alternative is
 *   matched afresh, so a '**' that starts one is a whole segment; unlike doublestar, a '*'
 *   before a '{' may still take more characters ("*{a,b}" matches "xa").
 *
 * Matching backtracks, as doublestar's does; a budget of steps bounds what one pattern
 * may cost, so a pathological pattern fails instead of holding a thread.
 */
#ifndef CREDBROKER_DSGLOB_H
#define CREDBROKER_DSGLOB_H

#include <stdbool.h>

/* Steps one match may take. */
#define DSGLOB_BUDGET 100000UL

/* Whether pattern is well formed: every '[' and '{' closed, no trailing '\'. */
bool dsglob_valid(const char *pattern);

/* 1 when path matches pattern, 0 when not, -1 when the budget ran out. */
int dsglob_match(const char *pattern, const char *path);

#endif
