/*
 * grep_builtin.h - the runner's own grep engine (RUNNER-OPS.md 5.5), used when `rg` is not
 * on PATH. It gives the answers ripgrep 13 gives when run as
 *
 *   rg --json --no-config --sort=path --smart-case --no-ignore-parent --no-ignore-global
 *      --no-ignore-exclude [--glob=<inc>]... -e <pattern> .
 *
 * in the workspace root: the same files (hidden ones, .rgignore/.ignore/.gitignore matches
 * and binary files skipped, include globs honoured, symlinks never followed), in the same
 * order, the same lines, the same smart case, PCRE2 standing in for Rust's regex engine.
 * Where it cannot match rg, grep_builtin.c and grep_builtin_regex.c say so.
 *
 * Not for: the operation's arguments, its result, the match cap or spilling (the grep op
 * does those), nor running rg.
 */
#ifndef CREDBROKER_GREP_BUILTIN_H
#define CREDBROKER_GREP_BUILTIN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wspath.h"

struct grep_match {
    const char *path;      /* "./dir/name": bytes as on disk, NUL-terminated */
    size_t path_len;
    uint64_t line_number;  /* from 1 */
    const char *line;      /* the line without its final "\n" (a "\r" before it is kept); raw bytes */
    size_t line_len;
};

/* Called for each matching line, in order; returns false to stop the search (the match
 * cap). The pointers in m are valid only during the call. */
typedef bool (*grep_match_cb)(const struct grep_match *m, void *data);

/* GREP_TRUNCATED: done, but a file was left at a line too long to hold (GB_LINE_MAX,
 * 256 MiB): its earlier matches stand, the answer is incomplete. */
enum grep_outcome { GREP_DONE = 0, GREP_STOPPED = 1, GREP_CANCELLED = 2, GREP_INVALID_PATTERN = 3,
                    GREP_TRUNCATED = 4 };

/*
 * Runs synchronously (it is called on a libuv pool thread): searches the whole workspace.
 * Returns a grep_outcome, or a negative ERR_* (ERR_NOMEM...), or -errno when the root
 * cannot be read. GREP_INVALID_PATTERN also stands for an include glob rg refuses (an
 * unclosed '[' or '{'...: rg exits 2 without searching). Files and directories that
 * cannot be read are passed over, as rg passes over them. Looks at *cancel between
 * directory entries and every chunk of a big file, and returns GREP_CANCELLED when set.
 */
int grep_builtin_run(const struct wspath_root *ws, const char *pattern,
                     char *const *include, size_t ninclude,
                     const atomic_bool *cancel, grep_match_cb cb, void *data);

/* Smart case (rg's): true when the pattern has an uppercase literal character (escapes like
 * \S, \W, \p{Lu} are not literals; \x41 is one). Exported so the rg engine's tests can
 * share it. A pattern rg would refuse is read as far as it goes. */
bool grep_pattern_has_uppercase(const char *pattern);

#endif
