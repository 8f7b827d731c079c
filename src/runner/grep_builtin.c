/*
 * grep_builtin.c - see grep_builtin.h. The walk (ripgrep's `ignore` crate 0.4.18, as rg
 * 13 configures it) and the search of one file (its grep-searcher 0.1.8 line buffer, read
 * through encoding_rs_io's BOM sniffing), over descriptors only: every directory and
 * file is opened with openat relative to its parent's descriptor and O_NOFOLLOW, so
 * nothing outside the root is reached and no path is ever built to be opened.
 *
 * What decides whether an entry is searched (or a directory entered), in this order:
 *   1. the include globs (rg's overrides): a match of a plain glob whitelists, of a '!'
 *      glob ignores, the last matching glob deciding; with at least one plain glob, a
 *      file that matches none is ignored (a directory falls through);
 *   2. the ignore files of the directories from the root down to the entry's: a
 *      .rgignore match beats a .ignore match beats a .gitignore match, whatever their
 *      depths; within a kind the deepest directory that has a match decides; .gitignore
 *      counts only inside a git work tree (a .git in the root, above it, or on the way
 *      down) and not above the nearest directory holding a .git (a nested repository);
 *      a whitelist here also lets a hidden entry through;
 *   3. hidden: a name starting with '.' is skipped.
 * Then only directories are entered and only regular files read: symlinks, FIFOs,
 * sockets and devices are never opened (or opened without blocking and refused).
 *
 * Memory: the names of each directory on the way down (sorted, as rg --sort=path), their
 * ignore files, and the line buffer, which grows for the current line only.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "grep_builtin.h"
#include "grep_builtin_internal.h"
#include "ignore.h"
#include "utf8.h"

/* The line buffer grows (by tripling) no further than this: a longer line could never fit
 * a result, and a workspace file of one endless line must not take the runner's memory.
 * The file is left there, its earlier matches standing, and the answer says truncated. */
#define GB_LINE_MAX (256u * 1024 * 1024)
/* The largest .gitignore, .ignore or .rgignore read (see read_small_file). */
#define GB_IGNORE_FILE_MAX (64 * 1024 * 1024)
/* grep-searcher's DEFAULT_BUFFER_CAPACITY; it grows by tripling, as rg's does. */
#define GB_BUFFER 65536
/* Ancestors of the root looked at for a .git. */
#define GB_MAX_ANCESTORS 4096

enum { IG_RG, IG_IGNORE, IG_GIT, IG_KINDS };

static const char *const ignore_names[IG_KINDS] = {".rgignore", ".ignore", ".gitignore"};

/* One directory on the way down. */
struct level {
    int fd;
    char **names;
    size_t n, next;
    size_t path_len;  /* of its path in g->path, "./" included ("." for the root) */
    struct ignore_set *sets[IG_KINDS];
    bool has_git;
};

struct grep {
    const struct wspath_root *ws;
    pcre2_code *re;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit_stack;
    int *dfa_ws;
    struct ignore_set *overrides;
    bool git_above;
    struct level *levels;
    size_t depth, levels_cap, git_levels;
    char *path; /* "./" + the entry's path relative to the root */
    size_t path_len, path_cap;
    unsigned char *buf; /* the line buffer: kept across files, as rg's searcher keeps it */
    size_t cap;
    bool line_too_long; /* a file was left at a line past GB_LINE_MAX */
    const atomic_bool *cancel;
    grep_match_cb cb;
    void *data;
};

/* ---- paths and names ---- */

static int path_set(struct grep *g, size_t keep, const char *name)
{
    size_t n = strlen(name), need = keep + 1 + n + 1;

    if (need > g->path_cap) {
        size_t cap = g->path_cap ? g->path_cap : 256;
        char *p;

        while (cap < need)
            cap *= 2;
        if ((p = realloc(g->path, cap)) == NULL)
            return ERR_NOMEM;
        g->path = p;
        g->path_cap = cap;
    }
    g->path[keep] = '/';
    memcpy(g->path + keep + 1, name, n + 1);
    g->path_len = keep + 1 + n;
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in dfd but . and .., sorted bytewise. Returns 0 or a negative code. */
static int read_names(int dfd, char ***out, size_t *n)
{
    int copy = fcntl(dfd, F_DUPFD_CLOEXEC, 0), r = 0;
    DIR *d = copy >= 0 ? fdopendir(copy) : NULL;
    char **names = NULL;
    size_t cap = 0;
    struct dirent *de;

    *out = NULL;
    *n = 0;
    if (d == NULL) {
        r = -errno;
        if (copy >= 0)
            close(copy);
        return r;
    }
    while ((errno = 0, de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (*n == cap) {
            char **grown = reallocarray(names, cap ? cap * 2 : 32, sizeof(*names));

            if (grown == NULL) {
                r = ERR_NOMEM;
                goto fail;
            }
            names = grown;
            cap = cap ? cap * 2 : 32;
        }
        if ((names[*n] = strdup(de->d_name)) == NULL) {
            r = ERR_NOMEM;
            goto fail;
        }
        (*n)++;
    }
    if (errno != 0) {
        r = -errno;
        goto fail;
    }
    closedir(d);
    if (*n > 1)
        qsort(names, *n, sizeof(*names), name_cmp);
    *out = names;
    return 0;
fail:
    while (*n > 0)
        free(names[--(*n)]);
    free(names);
    closedir(d);
    return r;
}

/* ---- ignore files ---- */

/* Reads regular file name in dfd whole, never blocking on a FIFO nor following a link.
 * Returns 0 and *buf (caller frees; NULL when there is no such file), or ERR_NOMEM. */
static int read_small_file(int dfd, const char *name, char **buf, size_t *len)
{
    struct stat st;
    size_t cap, n = 0;
    char *p = NULL;
    int fd, r = 0;

    *buf = NULL;
    *len = 0;
    if ((fd = openat(dfd, name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return 0;
    /* An ignore file bigger than any real one is passed over rather than read into the
     * runner's memory (rg would read it): the workspace is anyone's to fill. */
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > GB_IGNORE_FILE_MAX)
        goto out;
    cap = (size_t)st.st_size + 1;
    for (;;) {
        ssize_t got;

        if (n >= GB_IGNORE_FILE_MAX)
            goto out; /* it grew past the cap while being read */
        if (p == NULL || n == cap) {
            char *grown;

            cap = p == NULL ? cap : cap * 2;
            if ((grown = realloc(p, cap)) == NULL) {
                r = ERR_NOMEM;
                goto out;
            }
            p = grown;
        }
        if ((got = read(fd, p + n, cap - n)) < 0) {
            if (errno == EINTR)
                continue;
            goto out; /* unreadable: as if absent */
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    *buf = p;
    *len = n;
    p = NULL;
out:
    free(p);
    close(fd);
    return r;
}

static int level_load(struct level *l)
{
    struct stat st;

    /* rg: dir.join(".git").exists(), which follows a symlink. */
    l->has_git = fstatat(l->fd, ".git", &st, 0) == 0;
    for (int k = 0; k < IG_KINDS; k++) {
        char *buf;
        size_t len;
        int r;

        if ((r = read_small_file(l->fd, ignore_names[k], &buf, &len)) != 0)
            return r;
        if (buf == NULL)
            continue;
        if ((l->sets[k] = ignore_set_new()) == NULL) {
            free(buf);
            return ERR_NOMEM;
        }
        r = ignore_set_add_file(l->sets[k], buf, len);
        free(buf);
        if (r != 0)
            return r;
        if (ignore_set_count(l->sets[k]) == 0) {
            ignore_set_free(l->sets[k]);
            l->sets[k] = NULL;
        }
    }
    return 0;
}

static void level_free(struct level *l)
{
    if (l->fd >= 0)
        close(l->fd);
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    for (int k = 0; k < IG_KINDS; k++)
        ignore_set_free(l->sets[k]);
    memset(l, 0, sizeof(*l));
    l->fd = -1;
}

/* Pushes the directory fd (transferred), whose path is g->path[0..path_len). */
static int push_level(struct grep *g, int fd)
{
    struct level *l;
    int r;

    if (g->depth == g->levels_cap) {
        size_t cap = g->levels_cap ? g->levels_cap * 2 : 16;
        struct level *v = reallocarray(g->levels, cap, sizeof(*v));

        if (v == NULL) {
            close(fd);
            return ERR_NOMEM;
        }
        g->levels = v;
        g->levels_cap = cap;
    }
    l = &g->levels[g->depth];
    memset(l, 0, sizeof(*l));
    l->fd = fd;
    l->path_len = g->path_len;
    if ((r = read_names(fd, &l->names, &l->n)) != 0 || (r = level_load(l)) != 0) {
        level_free(l);
        /* An unreadable directory is passed over, as rg passes over it. */
        return r == ERR_NOMEM ? r : 0;
    }
    g->git_levels += l->has_git;
    g->depth++;
    return 0;
}

static void pop_level(struct grep *g)
{
    struct level *l = &g->levels[--g->depth];

    g->git_levels -= l->has_git;
    level_free(l);
}

/* Whether the root or a directory above it holds a .git (rg finds it even with
 * --no-ignore-parent: the parents still say whether .gitignore files count). */
static bool git_above_root(int rootfd)
{
    struct stat st, cur, up;
    int fd = -1, next;
    bool found = false;

    if (fstat(rootfd, &cur) != 0)
        return false;
    for (int i = 0; i < GB_MAX_ANCESTORS && !found; i++) {
        next = openat(fd >= 0 ? fd : rootfd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (next < 0 || fstat(next, &up) != 0) {
            if (next >= 0)
                close(next);
            break;
        }
        if (fd >= 0)
            close(fd);
        fd = next;
        if (up.st_dev == cur.st_dev && up.st_ino == cur.st_ino)
            break; /* "/" */
        found = fstatat(fd, ".git", &st, 0) == 0;
        cur = up;
    }
    if (fd >= 0)
        close(fd);
    return found;
}

/* Whether the entry now in g->path (name its last component) is left out. */
static bool skipped(struct grep *g, const char *name, bool is_dir)
{
    const char *rel = g->path + 2; /* without "./" */
    size_t rel_len = g->path_len - 2;
    enum ignore_match m[IG_KINDS] = {IGNORE_NONE, IGNORE_NONE, IGNORE_NONE};
    bool any_git = g->git_above || g->git_levels > 0, saw_git = false;

    if (g->overrides != NULL) {
        enum ignore_match o = ignore_set_match(g->overrides, rel, rel_len, is_dir);

        /* Overrides are inverted: a plain glob is a whitelist. */
        if (o == IGNORE_IGNORE)
            return false;
        if (o == IGNORE_WHITELIST)
            return true;
        /* With a plain glob (a gitignore "ignore" line, inverted) a file must match one. */
        if (ignore_set_count(g->overrides) > ignore_set_whitelists(g->overrides) && !is_dir)
            return true;
    }
    for (size_t i = g->depth; i-- > 0;) {
        const struct level *l = &g->levels[i];
        /* The path relative to the ignore file's directory. */
        size_t skip = l->path_len == 1 ? 2 : l->path_len + 1;
        const char *sub = g->path + skip;
        size_t sub_len = g->path_len - skip;

        if (m[IG_RG] == IGNORE_NONE && l->sets[IG_RG] != NULL)
            m[IG_RG] = ignore_set_match(l->sets[IG_RG], sub, sub_len, is_dir);
        if (m[IG_IGNORE] == IGNORE_NONE && l->sets[IG_IGNORE] != NULL)
            m[IG_IGNORE] = ignore_set_match(l->sets[IG_IGNORE], sub, sub_len, is_dir);
        if (any_git && !saw_git && m[IG_GIT] == IGNORE_NONE && l->sets[IG_GIT] != NULL)
            m[IG_GIT] = ignore_set_match(l->sets[IG_GIT], sub, sub_len, is_dir);
        saw_git = saw_git || l->has_git;
    }
    for (int k = 0; k < IG_KINDS; k++) {
        if (m[k] != IGNORE_NONE)
            return m[k] == IGNORE_IGNORE; /* a whitelist lets a hidden name through too */
    }
    return name[0] == '.';
}

/* ---- reading a file ---- */

/* Whether line[0..len) matches: JIT, then the interpreter if the JIT stack ran out, then
 * the DFA matcher if a backtracking limit was hit. XXX: a line that defeats all three
 * (PCRE2's limits; Rust's engine has none) counts as not matching. */
static bool line_matches(struct grep *g, const unsigned char *line, size_t len)
{
    int rc = pcre2_match(g->re, line, len, 0, 0, g->md, g->mctx);

    if (rc >= 0)
        return true;
    if (rc == PCRE2_ERROR_NOMATCH)
        return false;
    rc = pcre2_match(g->re, line, len, 0, PCRE2_NO_JIT, g->md, g->mctx);
    if (rc >= 0)
        return true;
    if (rc == PCRE2_ERROR_NOMATCH || g->dfa_ws == NULL)
        return false;
    rc = pcre2_dfa_match(g->re, line, len, 0, 0, g->md, g->mctx, g->dfa_ws, 4096);
    return rc >= 0;
}

/*
 * Searches the open regular file fd, as grep-searcher's ReadByLine does: a buffer of
 * GB_BUFFER bytes (grown by tripling when one line does not fit), filled by reads until
 * one brings a '\n' (or the end), searched up to the last '\n', the partial line kept for
 * the next fill. A read that brings a NUL stops the file (binary): the lines of earlier
 * fills have been reported, that fill's are not, so a NUL in the first fill means no
 * match at all. The fills follow rg's reads (the 3-byte BOM peek first, then the free
 * space of the buffer), so the cut falls where rg's does for plain files; for UTF-16
 * files (transcoded in different pieces) and files whose reads come back short it can
 * fall a line or a buffer away from rg's.
 */
static int search_fd(struct grep *g, int fd)
{
    struct grep_source *src = calloc(1, sizeof(*src));
    size_t pos = 0, end = 0;
    uint64_t lineno = 0;
    int r = GREP_DONE;

    if (src == NULL)
        return ERR_NOMEM;
    src->fd = fd;
    for (;;) {
        size_t lterm = 0;
        bool have = false;

        if (atomic_load(g->cancel)) {
            r = GREP_CANCELLED;
            goto out;
        }
        memmove(g->buf, g->buf + pos, end - pos);
        end -= pos;
        pos = 0;
        for (;;) {
            ssize_t n;
            unsigned char *nl;

            if (end == g->cap) {
                size_t cap = g->cap * 3;
                unsigned char *grown;

                if (cap > GB_LINE_MAX) {
                    g->line_too_long = true;
                    goto out;
                }
                if (cap / 3 != g->cap || (grown = realloc(g->buf, cap)) == NULL) {
                    r = ERR_NOMEM;
                    goto out;
                }
                g->buf = grown;
                g->cap = cap;
            }
            if ((n = grep__source_read(src, g->buf + end, g->cap - end)) < 0)
                goto out; /* a read error ends the file; its matches stand */
            if (n == 0) {
                lterm = end;
                have = end > 0;
                break;
            }
            if (memchr(g->buf + end, '\0', (size_t)n) != NULL)
                goto out; /* binary */
            nl = memrchr(g->buf + end, '\n', (size_t)n);
            end += (size_t)n;
            if (nl != NULL) {
                lterm = (size_t)(nl - g->buf) + 1;
                have = true;
                break;
            }
            if (atomic_load(g->cancel)) {
                r = GREP_CANCELLED;
                goto out;
            }
        }
        if (!have)
            goto out;
        while (pos < lterm) {
            unsigned char *nl = memchr(g->buf + pos, '\n', lterm - pos);
            size_t stop = nl != NULL ? (size_t)(nl - g->buf) : lterm;

            lineno++;
            if (line_matches(g, g->buf + pos, stop - pos)) {
                struct grep_match m = {
                    .path = g->path,
                    .path_len = g->path_len,
                    .line_number = lineno,
                    .line = (const char *)g->buf + pos,
                    .line_len = stop - pos,
                };

                if (!g->cb(&m, g->data)) {
                    r = GREP_STOPPED;
                    goto out;
                }
            }
            pos = nl != NULL ? stop + 1 : stop;
        }
    }
out:
    free(src);
    return r;
}

static int search_file(struct grep *g, int dfd, const char *name)
{
    struct stat st;
    int fd, r;

    /* O_NONBLOCK: a FIFO swapped in since fstatat must not hang the open. */
    if ((fd = openat(dfd, name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return GREP_DONE;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return GREP_DONE;
    }
    r = search_fd(g, fd);
    close(fd);
    return r;
}

/* ---- the walk ---- */

static int walk(struct grep *g)
{
    int fd, r;

    if ((fd = openat(g->ws->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return -errno;
    g->path[0] = '.';
    g->path[1] = '\0';
    g->path_len = 1;
    if ((r = push_level(g, fd)) != 0)
        return r;
    while (g->depth > 0) {
        struct level *l = &g->levels[g->depth - 1];
        const char *name;
        struct stat st;

        if (l->next == l->n) {
            pop_level(g);
            continue;
        }
        if (atomic_load(g->cancel))
            return GREP_CANCELLED;
        name = l->names[l->next++];
        if ((r = path_set(g, l->path_len, name)) != 0)
            return r;
        if (fstatat(l->fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (skipped(g, name, true))
                continue;
            fd = openat(l->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd >= 0 && (r = push_level(g, fd)) != 0)
                return r;
        } else if (S_ISREG(st.st_mode)) {
            if (skipped(g, name, false))
                continue;
            if ((r = search_file(g, l->fd, name)) != GREP_DONE)
                return r;
        }
    }
    return GREP_DONE;
}

static int compile(struct grep *g, const char *pattern)
{
    struct grep_rx rx;
    pcre2_compile_context *cctx = NULL;
    /* NO_DOTSTAR_ANCHOR: PCRE2 would anchor a leading ".*", and with invalid UTF-8 early
     * in a line (where ".*" cannot pass) never try the later start Rust's engine finds. */
    uint32_t opts = PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | PCRE2_NO_DOTSTAR_ANCHOR;
    PCRE2_SIZE off;
    int r, e;

    if ((r = grep__rx_translate(pattern, &rx)) != 0)
        return r == ERR_INVALID ? GREP_INVALID_PATTERN : r;
    /* rg's smart case: case-insensitive when there is a literal and none is uppercase. */
    if (rx.any_literal && !rx.any_upper)
        opts |= PCRE2_CASELESS;
    if ((cctx = pcre2_compile_context_create(NULL)) == NULL) {
        r = ERR_NOMEM;
        goto out;
    }
    /* '.' and '$' as Rust's: only '\n' ends a line, whatever PCRE2 was built with. */
    pcre2_set_newline(cctx, PCRE2_NEWLINE_LF);
    if ((g->re = pcre2_compile((PCRE2_SPTR)rx.pcre, PCRE2_ZERO_TERMINATED, opts, &e, &off,
                               cctx)) == NULL) {
        r = e == PCRE2_ERROR_HEAP_FAILED ? ERR_NOMEM : GREP_INVALID_PATTERN;
        goto out;
    }
    (void)pcre2_jit_compile(g->re, PCRE2_JIT_COMPLETE); /* else the interpreter */
    if ((g->md = pcre2_match_data_create_from_pattern(g->re, NULL)) == NULL ||
        (g->mctx = pcre2_match_context_create(NULL)) == NULL) {
        r = ERR_NOMEM;
        goto out;
    }
    if ((g->jit_stack = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, NULL)) != NULL)
        pcre2_jit_stack_assign(g->mctx, NULL, g->jit_stack);
    g->dfa_ws = malloc(4096 * sizeof(int));
    r = 0;
out:
    pcre2_compile_context_free(cctx);
    free(rx.pcre);
    return r;
}

bool grep_pattern_has_uppercase(const char *pattern)
{
    struct grep_rx rx;
    bool upper;

    grep__rx_translate(pattern, &rx);
    upper = rx.any_upper;
    free(rx.pcre);
    return upper;
}

int grep_builtin_run(const struct wspath_root *ws, const char *pattern,
                     char *const *include, size_t ninclude,
                     const atomic_bool *cancel, grep_match_cb cb, void *data)
{
    struct grep g = {.ws = ws, .cancel = cancel, .cb = cb, .data = data};
    int r;

    if ((r = compile(&g, pattern)) != 0)
        goto out;
    if (ninclude > 0) {
        if ((g.overrides = ignore_set_new()) == NULL) {
            r = ERR_NOMEM;
            goto out;
        }
        for (size_t i = 0; i < ninclude; i++) {
            r = ignore_set_add_line(g.overrides, include[i], strlen(include[i]));
            if (r != 0) {
                /* rg refuses to start over a glob it cannot parse. */
                r = r == ERR_INVALID ? GREP_INVALID_PATTERN : r;
                goto out;
            }
        }
        if (ignore_set_count(g.overrides) == 0) {
            ignore_set_free(g.overrides);
            g.overrides = NULL;
        }
    }
    if ((g.buf = malloc(GB_BUFFER)) == NULL || path_set(&g, 0, "") != 0) {
        r = ERR_NOMEM;
        goto out;
    }
    g.cap = GB_BUFFER;
    g.git_above = git_above_root(ws->fd);
    r = walk(&g);
    if (r == GREP_DONE && g.line_too_long)
        r = GREP_TRUNCATED;
out:
    while (g.depth > 0)
        pop_level(&g);
    free(g.levels);
    free(g.path);
    free(g.buf);
    free(g.dfa_ws);
    ignore_set_free(g.overrides);
    pcre2_jit_stack_free(g.jit_stack);
    pcre2_match_context_free(g.mctx);
    pcre2_match_data_free(g.md);
    pcre2_code_free(g.re);
    return r;
}
