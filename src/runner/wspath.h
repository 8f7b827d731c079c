/*
 * wspath.h - paths inside the runner's workspace (RUNNER-OPS.md section 3.2).
 *
 * Every path an operation names is resolved against a descriptor of the root that
 * the runner opened at start, component by component, and never by comparing
 * strings: Go's runner checked a string prefix, so `../ws-evil/x` passed for
 * `/ws`, a new file under a symlinked directory pointing outside was written
 * outside, and a dangling symlink was written through. Here:
 *
 *   - the lexical step (Go's Join and Clean, re-rooting absolute paths) refuses a
 *     path that climbs above the root;
 *   - openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) resolves what it can, and a
 *     walk of O_NOFOLLOW openat calls does the rest (an absolute symlink whose
 *     target lies beneath the root's real path, which the kernel refuses, and
 *     kernels without openat2): each symlink read and spliced in, `..` on a stack
 *     of directory descriptors and refused at the root;
 *   - an operation that creates gets the descriptor of the directory that will
 *     hold the name, the missing directories made one at a time with mkdirat.
 *
 * Every later system call on workspace contents is relative to a descriptor from
 * here; path strings are only for messages.
 */
#ifndef CREDBROKER_WSPATH_H
#define CREDBROKER_WSPATH_H

#include <stdbool.h>
#include <stddef.h>

/* Symlinks followed in one resolution before it fails as a loop (the kernel's own is 40). */
#define WSPATH_MAX_HOPS 40

struct wspath_root {
    int fd;          /* O_PATH | O_DIRECTORY of the root, for the runner's lifetime */
    char *abs;       /* absolute, not symlink-resolved: Go's <abs> in messages */
    char *real;      /* its real path: absolute symlinks are compared with it */
    bool openat2;    /* the kernel resolves beneath the root (probed at open) */
};

/* Makes the root absolute, creates it (0755) where missing and opens it. Returns 0 or
 * -errno. */
int wspath_root_open(struct wspath_root *r, const char *path);
void wspath_root_close(struct wspath_root *r);

/*
 * The lexical step: p cleaned as Go's filepath.Join(root, p) does, relative to the root
 * ("" for the root itself, no leading or trailing '/', no '.' or '..' segment, no '//').
 * Returns 0 and *rel (caller frees), ERR_WS_OUTSIDE when it climbs above the root, or
 * ERR_NOMEM.
 */
int wspath_clean(const char *p, char **rel);

/*
 * Resolves a clean rel to an O_PATH | O_CLOEXEC descriptor of what it names, following
 * symlinks while they stay beneath the root (the last one too unless nofollow). Returns
 * the fd (caller closes), -ENOENT or -ENOTDIR when it is not there, ERR_WS_ESCAPE when a
 * symlink leads out of the root, ERR_WS_LOOP past WSPATH_MAX_HOPS, or another -errno.
 */
int wspath_open(const struct wspath_root *r, const char *rel, bool nofollow);

/*
 * The path of fd (an object beneath the root) relative to the root's real path, '/'
 * separated, "" for the root: what results name things by. Returns 0, ERR_WS_ESCAPE when
 * the object is no longer beneath the root (renamed meanwhile), or -errno.
 */
int wspath_relative(const struct wspath_root *r, int fd, char *out, size_t len);

/*
 * For an operation that creates rel: the directory that holds (or will hold) its last
 * component, as a descriptor that openat/mkdirat/renameat accept, and that component's
 * name. A symlink as the last component is followed while its target resolves beneath
 * the root, dangling or not (the target is what gets written). Missing directories on
 * the way are created (0755 before umask) when mkdirs, else -ENOENT. rel "" (the root
 * itself) has no parent: -EISDIR. Returns 0, *dirfd (caller closes) and *name (caller
 * frees), or a negative code as wspath_open.
 */
int wspath_open_parent(const struct wspath_root *r, const char *rel, bool mkdirs, int *dirfd,
                       char **name);

#endif
