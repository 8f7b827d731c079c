/*
 * ignore.h - gitignore-style pattern sets, as ripgrep 13 reads them (its `ignore` crate
 * 0.4.18 over `globset` 0.4.7): the lines of a .gitignore, .ignore or .rgignore file, or
 * rg's --glob overrides. The built-in grep engine (grep_builtin.c) uses them to decide
 * what it walks into and what it searches (RUNNER-OPS.md 5.5).
 *
 * A line: blank and '#' lines skipped; trailing whitespace trimmed unless the line ends
 * in "\ "; "\!" and "\#" stand for a literal first character; a leading '!' whitelists;
 * a leading '/' anchors to the set's directory; a trailing '/' matches directories only;
 * a pattern with no '/' left matches at any depth ("**" + "/" in front); one ending in
 * "/" + "**" matches everything inside but not the directory itself. Globs, over the
 * path's bytes: '*' any run of bytes but '/', '?' one byte but '/', '[...]' a class of
 * characters ('!' or '^' negating; no escapes inside; as globset builds it, a negated
 * class matches any byte outside it, '/' included), '**' as a whole component any
 * number of components, '{a,b}' alternatives (not nested), '\' escapes. A line that
 * does not compile (unclosed '[' or '{', nested '{', dangling '\', a reversed range) is
 * skipped, as rg skips it.
 *
 * Matching is a Thompson simulation (no backtracking), so any pattern costs at most
 * O(pattern x path). Not for: reading the files themselves off disk, or deciding the
 * precedence between files (grep_builtin.c does both).
 */
#ifndef CREDBROKER_IGNORE_H
#define CREDBROKER_IGNORE_H

#include <stdbool.h>
#include <stddef.h>

struct ignore_set;

enum ignore_match {
    IGNORE_NONE = 0,      /* no line matched */
    IGNORE_IGNORE = 1,    /* the last matching line is a plain pattern */
    IGNORE_WHITELIST = 2, /* the last matching line starts with '!' */
};

/* Returns an empty set (caller frees with ignore_set_free), or NULL when out of memory. */
struct ignore_set *ignore_set_new(void);
void ignore_set_free(struct ignore_set *s);

/*
 * Adds one line (len bytes, no '\n'; it must be UTF-8, as the crate reads lines into
 * Rust strings). Returns 0 when it was added or is a blank or comment line, ERR_INVALID
 * when it does not compile (nothing added: rg skips such a line too), ERR_NOMEM.
 */
int ignore_set_add_line(struct ignore_set *s, const char *line, size_t len);

/*
 * Adds the lines of an ignore file's content: split on '\n', a '\r' before it dropped, as
 * Rust's BufRead::lines does; reading stops at the first line that is not UTF-8 (the
 * crate's lines() fails there and it keeps what it had). Lines that do not compile are
 * skipped. Returns 0 or ERR_NOMEM.
 */
int ignore_set_add_file(struct ignore_set *s, const char *buf, size_t len);

/*
 * The decision of set s for path (len bytes, relative to the set's directory, no leading
 * "./" or '/'), which is a directory when is_dir: the last line that matches and applies
 * (a directories-only line does not apply to other things). It uses scratch space held by
 * the set: one set is matched by one thread at a time.
 */
enum ignore_match ignore_set_match(const struct ignore_set *s, const char *path, size_t len,
                                   bool is_dir);

/* How many lines the set holds, and how many of them whitelist. */
size_t ignore_set_count(const struct ignore_set *s);
size_t ignore_set_whitelists(const struct ignore_set *s);

#endif
