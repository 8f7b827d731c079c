/*
 * fileop_walk.c - the list and glob operations (RUNNER-OPS.md 5.3, 5.4): walks of the
 * workspace beneath its root (wspath.h), names sorted per directory, on the pool
 * (fileop.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dsglob.h"
#include "err.h"
#include "fileop_internal.h"
#include "gomatch.h"
#include "proto.h"
#include "wspath.h"

/* ---- list (RUNNER-OPS.md 5.3) ---- */

/* Adds an entry. Returns false when the walk must stop (the cap: truncated; no memory). */
static bool list_add(struct fileop *op, const char *rel, const struct stat *st)
{
    struct list_entry *e;

    bool glob = op->kind->spec == &opargs_glob;
    /* What the entry takes in the result: {"path":,"is_dir":false,"size":N}, or a string. */
    size_t bytes = proto_json_string_bound((const uint8_t *)rel, strlen(rel)) +
                   (glob ? 1 : 48);

    if (op->nentries == (glob ? op->limits.glob_max_matches : op->limits.list_max_entries) ||
        op->result_bytes + bytes > op->limits.max_result_bytes) { /* 2.7: trailing dropped */
        op->truncated = true;
        return false;
    }
    op->result_bytes += bytes;
    if (op->nentries == op->entries_cap) {
        size_t cap = op->entries_cap ? op->entries_cap * 2 : 64;

        if ((e = reallocarray(op->entries, cap, sizeof(*e))) == NULL) {
            fileop__fail(op, "out of memory");
            return false;
        }
        op->entries = e;
        op->entries_cap = cap;
    }
    e = &op->entries[op->nentries];
    if ((e->path = strdup(rel)) == NULL) {
        fileop__fail(op, "out of memory");
        return false;
    }
    e->is_dir = S_ISDIR(st->st_mode);
    e->size = (int64_t)st->st_size;
    op->nentries++;
    return true;
}

static bool list_ignored(const struct fileop *op, const char *name)
{
    const struct opargs_strings *ig = &op->args.list.ignore;

    for (size_t i = 0; i < ig->n; i++) {
        if (gomatch(ig->v[i], name))
            return true;
    }
    return false;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in directory dfd but . and .., sorted bytewise (Go's readDirNames). Returns
 * the array (caller frees each and it) and *n, or NULL with errno set. */
static char **list_names(int dfd, size_t *n)
{
    int copy = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
    DIR *d = copy >= 0 ? fdopendir(copy) : NULL;
    char **names = NULL;
    size_t cap = 0;
    struct dirent *de;
    int saved;

    *n = 0;
    if (d == NULL) {
        saved = errno;
        if (copy >= 0)
            close(copy);
        errno = saved;
        return NULL;
    }
    while ((errno = 0, de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (*n == cap) {
            char **grown = reallocarray(names, cap ? cap * 2 : 32, sizeof(char *));

            if (grown == NULL)
                goto fail;
            names = grown;
            cap = cap ? cap * 2 : 32;
        }
        if ((names[*n] = strdup(de->d_name)) == NULL)
            goto fail;
        (*n)++;
    }
    if (errno != 0)
        goto fail;
    closedir(d);
    if (*n > 0)
        qsort(names, *n, sizeof(char *), name_cmp);
    return names != NULL ? names : calloc(1, sizeof(char *));
fail:
    saved = errno != 0 ? errno : ENOMEM;
    while (*n > 0)
        free(names[--(*n)]);
    free(names);
    closedir(d);
    errno = saved;
    return NULL;
}

/*
 * The entries of directory dfd (opened O_RDONLY), whose path relative to the root is rel,
 * depth-first, pre-order, in bytewise order; its directories entered when recursive.
 * Symlinks are entries, never followed. Returns false when the walk stops (an error, the
 * cap, a cancel).
 */
static bool list_dir(struct fileop *op, int dfd, const char *rel)
{
    char **names, path[PATH_MAX], abs[PATH_MAX + 256], why[128];
    size_t n;
    bool go_on = true;

    if ((names = list_names(dfd, &n)) == NULL) {
        snprintf(abs, sizeof(abs), "%s%s%s", op->ws->real, rel[0] ? "/" : "", rel);
        fileop__go_errno(errno, why, sizeof(why));
        fileop__fail(op, "failed to list directory: open %s: %s", abs, why);
        return false;
    }
    for (size_t i = 0; i < n && go_on; i++) {
        struct stat st;
        int cfd;

        if (fileop__stopping(op)) { /* between two entries of a list */
            go_on = false;
            break;
        }
        if (snprintf(path, sizeof(path), "%s%s%s", rel, rel[0] ? "/" : "", names[i]) >=
            (int)sizeof(path)) {
            fileop__fail(op, "failed to list directory: %s: file name too long", rel);
            go_on = false;
            break;
        }
        if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT)
                continue; /* gone since the directory was read */
            snprintf(abs, sizeof(abs), "%s/%s", op->ws->real, path);
            fileop__go_errno(errno, why, sizeof(why));
            fileop__fail(op, "failed to list directory: lstat %s: %s", abs, why);
            go_on = false;
            break;
        }
        if (list_ignored(op, names[i]))
            continue; /* a directory pruned, a file skipped */
        if (!list_add(op, path, &st)) {
            go_on = false;
            break;
        }
        if (!S_ISDIR(st.st_mode) || !op->args.list.recursive)
            continue;
        if ((cfd = openat(dfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
            snprintf(abs, sizeof(abs), "%s/%s", op->ws->real, path);
            fileop__go_errno(errno, why, sizeof(why));
            fileop__fail(op, "failed to list directory: open %s: %s", abs, why);
            go_on = false;
            break;
        }
        go_on = list_dir(op, cfd, path);
        close(cfd);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return go_on;
}

void fileop__list_work(struct fileop *op)
{
    const struct list_args *a = &op->args.list;
    const char *p = a->path != NULL ? a->path : "", *base;
    char *rel = NULL, start[PATH_MAX], abs[PATH_MAX + 256], why[128];
    struct stat st;
    int r, fd = -1, dfd = -1;

    if ((r = wspath_clean(p, &rel)) != 0) {
        fileop__path_error(op, r, p);
        goto out;
    }
    if ((fd = wspath_open(op->ws, rel, false)) < 0) {
        if (!fileop__path_error(op, fd, p)) {
            fileop__lexical_abs(op, rel, abs, sizeof(abs));
            fileop__go_errno(-fd, why, sizeof(why));
            fileop__fail(op, "failed to list directory: lstat %s: %s", abs, why);
        }
        goto out;
    }
    /* Entries are named from the root's real path: listing a symlink to a directory
     * inside the root lists the target under its own name. */
    if ((r = wspath_relative(op->ws, fd, start, sizeof(start))) != 0 || fstat(fd, &st) != 0) {
        if (!fileop__path_error(op, r, p))
            fileop__fail(op, "failed to list directory: %s", p);
        goto out;
    }
    op->success = true;
    base = strrchr(start, '/') != NULL ? strrchr(start, '/') + 1 : start;
    /* As Go's walk function: the ignore patterns first (the starting directory too,
     * the root included), then the root itself is no entry. */
    if (list_ignored(op, start[0] != '\0' ? base : strrchr(op->ws->real, '/') + 1))
        goto out;
    if (start[0] != '\0' && !list_add(op, start, &st))
        goto out;
    if (!S_ISDIR(st.st_mode))
        goto out;
    if ((dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        snprintf(abs, sizeof(abs), "%s%s%s", op->ws->real, start[0] ? "/" : "", start);
        fileop__go_errno(errno, why, sizeof(why));
        fileop__fail(op, "failed to list directory: open %s: %s", abs, why);
        goto out;
    }
    list_dir(op, dfd, start);
out:
    if (dfd >= 0)
        close(dfd);
    if (fd >= 0)
        close(fd);
    free(rel);
}

/* ---- glob (RUNNER-OPS.md 5.4) ---- */

struct glob_walk {
    const char *pattern;
    bool dirs_only;        /* the pattern ended in '/' */
    int max_depth;         /* levels below the root worth entering; -1 with a '**' */
    struct stat *path;     /* the directories on the way down: a link back is a loop */
    size_t depth;
};

/* Whether dfd's directory is already on the way down (a symlink back up: a loop). */
static bool glob_on_path(const struct glob_walk *g, const struct stat *st)
{
    for (size_t i = 0; i < g->depth; i++) {
        if (g->path[i].st_dev == st->st_dev && g->path[i].st_ino == st->st_ino)
            return true;
    }
    return false;
}

/* The entries of dfd (relative path rel, at depth levels below the root), tested and
 * entered. Returns false when the walk stops. File system errors are passed over, as
 * doublestar does. */
static bool glob_dir(struct fileop *op, struct glob_walk *g, int dfd, const char *rel)
{
    char **names, path[PATH_MAX];
    size_t n;
    bool go_on = true;

    if ((names = list_names(dfd, &n)) == NULL)
        return true;
    for (size_t i = 0; i < n && go_on; i++) {
        struct stat st, target;
        bool is_dir;
        int linkfd = -1, cfd = -1, m;

        if (fileop__stopping(op)) {
            go_on = false;
            break;
        }
        if (snprintf(path, sizeof(path), "%s%s%s", rel, rel[0] ? "/" : "", names[i]) >=
                (int)sizeof(path) ||
            fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        is_dir = S_ISDIR(st.st_mode);
        /* A symlinked directory counts (and is entered) only when it resolves beneath the
         * root; its own name can match either way. */
        if (S_ISLNK(st.st_mode) && (linkfd = wspath_open(op->ws, path, false)) >= 0 &&
            fstat(linkfd, &target) == 0 && S_ISDIR(target.st_mode)) {
            is_dir = true;
            st = target;
        }
        if (!g->dirs_only || is_dir) {
            if ((m = dsglob_match(g->pattern, path)) < 0) {
                fileop__fail(op, "failed to glob: pattern too complex");
                go_on = false;
            } else if (m == 1) {
                struct stat any = {0};

                go_on = list_add(op, path, &any);
            }
        }
        if (go_on && is_dir && (g->max_depth < 0 || (int)g->depth <= g->max_depth) &&
            !glob_on_path(g, &st)) {
            cfd = linkfd >= 0 ? openat(linkfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                              : openat(dfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                                       O_CLOEXEC);
            if (cfd >= 0) {
                g->path[g->depth++] = st;
                go_on = glob_dir(op, g, cfd, path);
                g->depth--;
                close(cfd);
            }
        }
        if (linkfd >= 0)
            close(linkfd);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return go_on;
}

/* A pattern that starts with '/' or has a '.' or '..' segment names no valid fs.FS path:
 * no results, no error (Go's io/fs rules). */
static bool glob_pattern_reachable(const char *p)
{
    if (p[0] == '/')
        return false;
    for (const char *seg = p; seg != NULL; seg = strchr(seg, '/') ? strchr(seg, '/') + 1 : NULL) {
        size_t len = strchr(seg, '/') ? (size_t)(strchr(seg, '/') - seg) : strlen(seg);

        if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return false;
    }
    return true;
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct list_entry *)a)->path, ((const struct list_entry *)b)->path);
}

void fileop__glob_work(struct fileop *op)
{
    const char *pattern = op->args.glob.pattern != NULL ? op->args.glob.pattern : "";
    struct glob_walk g = {0};
    char *pat = NULL;
    size_t len = strlen(pattern);
    struct stat root;
    int dfd = -1;

    if (!dsglob_valid(pattern)) {
        fileop__fail(op, "failed to glob: syntax error in pattern");
        return;
    }
    op->success = true;
    if (len == 0 || !glob_pattern_reachable(pattern))
        return;
    if ((pat = strdup(pattern)) == NULL) {
        fileop__fail(op, "out of memory");
        return;
    }
    /* A trailing '/' matches directories only. */
    if (len > 1 && pat[len - 1] == '/' && pat[len - 2] != '\\') {
        pat[len - 1] = '\0';
        g.dirs_only = true;
    }
    g.pattern = pat;
    g.max_depth = strstr(pat, "**") != NULL ? -1 : 0;
    for (const char *c = pat; g.max_depth >= 0 && *c != '\0'; c++)
        g.max_depth += *c == '/';
    if ((g.path = calloc(PATH_MAX / 2, sizeof(*g.path))) == NULL) {
        fileop__fail(op, "out of memory");
        goto out;
    }
    /* "**" matches the directory it starts from: the root itself, ".". */
    if (strcmp(pat, "**") == 0) {
        struct stat any = {0};

        if (!list_add(op, ".", &any))
            goto out;
    }
    if ((dfd = openat(op->ws->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
        fstat(dfd, &root) != 0)
        goto out;
    g.path[g.depth++] = root;
    glob_dir(op, &g, dfd, "");
out:
    if (dfd >= 0)
        close(dfd);
    /* The first ones in walk order (names sorted per directory), then sorted. */
    if (op->success && op->nentries > 1)
        qsort(op->entries, op->nentries, sizeof(*op->entries), entry_cmp);
    free(g.path);
    free(pat);
}

/*
 * The result of list or glob: {"<name>": [...] or null when empty, "truncated": true?},
 * each entry as list's object or, for glob, its path alone. Names that are not UTF-8 are
 * sanitized (RUNNER-OPS.md 2.6).
 */
static json_t *entries_result(const struct fileop *op, const char *name, bool objects)
{
    json_t *o = json_object(), *items = op->nentries > 0 ? json_array() : json_null();

    if (o == NULL || items == NULL || json_object_set_new(o, name, items) != 0)
        goto fail;
    for (size_t i = 0; i < op->nentries; i++) {
        const struct list_entry *e = &op->entries[i];
        size_t len;
        char *path = proto_utf8_sanitize((const uint8_t *)e->path, strlen(e->path), &len);
        json_t *item = path == NULL ? NULL
                       : objects    ? json_pack("{s:s#, s:b, s:I}", "path", path, len, "is_dir",
                                                e->is_dir, "size", (json_int_t)e->size)
                                    : json_stringn(path, len);

        free(path);
        if (item == NULL || json_array_append_new(items, item) != 0)
            goto fail;
    }
    if (op->truncated && json_object_set_new(o, "truncated", json_true()) != 0)
        goto fail;
    return o;
fail:
    json_decref(o);
    return NULL;
}

json_t *fileop__list_result(const struct fileop *op)
{
    return entries_result(op, "entries", true);
}

json_t *fileop__glob_result(const struct fileop *op)
{
    return entries_result(op, "matches", false);
}
