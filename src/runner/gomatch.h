/*
 * gomatch.h - Go's path/filepath.Match, for list's ignore patterns (RUNNER-OPS.md 5.3),
 * against a file's base name: '*' any run of characters, '?' one character (a UTF-8
 * sequence, or one byte that is not one), '[...]' a class with ranges and '^' for
 * negation ('!' is literal), '\' escaping the next character. A malformed pattern (an
 * unclosed class, a trailing '\', an empty or bad range) matches nothing, as the Go
 * runner ignores Match's error.
 */
#ifndef CREDBROKER_GOMATCH_H
#define CREDBROKER_GOMATCH_H

#include <stdbool.h>

/* Whether name matches pattern; false for a malformed pattern. */
bool gomatch(const char *pattern, const char *name);

#endif
