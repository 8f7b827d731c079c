/*
 * skill.c - see skill.h: the temporary sibling, the checksum, the swap and the removal of
 * the old tree. The extraction itself is skill_extract.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "err.h"
#include "skill.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

/* Tries at a fresh temporary name, and at the swap when the target comes and goes
 * between our two kinds of rename (another sync of the same skill). */
#define SKILL_TRIES 8

/* glibc has renameat2 only from 2.28; the system call is older (Linux 3.15). */
static int rename2(int fd, const char *from, const char *to, unsigned flags)
{
    return syscall(SYS_renameat2, fd, from, fd, to, flags) == 0 ? 0 : -errno;
}

/* `.<name>.tmp-<16 hex>`, or a fixed stem when name is too long for it to fit NAME_MAX. */
static void temp_name(const char *name, char *out, size_t len)
{
    uint64_t rnd = 0;

    if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
        rnd = (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)out;
    if (strlen(name) + 22 <= NAME_MAX)
        snprintf(out, len, ".%s.tmp-%016llx", name, (unsigned long long)rnd);
    else
        snprintf(out, len, ".skill.tmp-%016llx", (unsigned long long)rnd);
}

/* ---- removal ---- */

/* The directories from the tree's top down to the one being emptied. */
struct tree {
    struct level {
        char *name; /* in the level above (the top's: in the caller's parentfd) */
        dev_t dev;
        ino_t ino;
    } *lv;
    size_t n, cap;
};

static int tree_push(struct tree *t, int fd, const char *name)
{
    struct stat st;

    if (t->n == t->cap) {
        size_t cap = t->cap != 0 ? t->cap * 2 : 16;
        struct level *lv = reallocarray(t->lv, cap, sizeof(*lv));

        if (lv == NULL)
            return ERR_NOMEM;
        t->lv = lv;
        t->cap = cap;
    }
    if (fstat(fd, &st) != 0)
        return -errno;
    if ((t->lv[t->n].name = strdup(name)) == NULL)
        return ERR_NOMEM;
    t->lv[t->n].dev = st.st_dev;
    t->lv[t->n].ino = st.st_ino;
    t->n++;
    return 0;
}

/* Opens name in dirfd as a directory without following it; one we may not read is made
 * ours to empty first. Returns the fd or -errno (-ENOTDIR: not a directory). */
static int open_for_removal(int dirfd, const char *name)
{
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0 && errno == EACCES && fchmodat(dirfd, name, 0700, AT_SYMLINK_NOFOLLOW) == 0)
        fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ELOOP ? -ENOTDIR : -errno;
    return fd;
}

/* Removes one entry of the directory fd: 1 when it is a directory (to descend into), 0
 * when removed, or -errno. */
static int remove_entry(int fd, const char *name)
{
    if (unlinkat(fd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno == EISDIR || errno == EPERM)
        return 1; /* Linux says EISDIR for a directory (some file systems EPERM) */
    if (errno == EACCES && fchmod(fd, 0700) == 0 && unlinkat(fd, name, 0) == 0)
        return 0;
    return -errno;
}

/* Removes what the directory fd holds that is not a directory. Returns 0 when it is empty,
 * 1 with *child (an fd) and *child_name (caller frees) at its first subdirectory, or a
 * negative code. */
static int empty_dir(int fd, int *child, char **child_name)
{
    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0), r = 0;
    struct dirent *e;
    DIR *d;

    if (dup_fd < 0)
        return -errno;
    if ((d = fdopendir(dup_fd)) == NULL) {
        r = -errno;
        close(dup_fd);
        return r;
    }
    while (r == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if ((r = remove_entry(fd, e->d_name)) != 1)
            continue;
        if ((*child = open_for_removal(fd, e->d_name)) < 0)
            r = *child;
        else if ((*child_name = strdup(e->d_name)) == NULL) {
            close(*child);
            r = ERR_NOMEM;
        }
    }
    closedir(d);
    return r;
}

/* From the emptied top directory fd back to its parent, checked to be the directory we
 * came down from (a directory moved meanwhile must not lead the removal elsewhere), and
 * the top removed. Returns the parent's fd or a negative code. */
static int tree_up(struct tree *t, int fd)
{
    const struct level *above = &t->lv[t->n - 2];
    int up = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), r;
    struct stat st;

    if (up < 0)
        return -errno;
    if (fstat(up, &st) != 0 || st.st_dev != above->dev || st.st_ino != above->ino) {
        close(up);
        return -ESTALE;
    }
    if (unlinkat(up, t->lv[t->n - 1].name, AT_REMOVEDIR) != 0 && errno != ENOENT) {
        r = -errno;
        close(up);
        return r;
    }
    free(t->lv[--t->n].name);
    return up;
}

/*
 * Depth first with one directory open at a time, so any depth costs no descriptors:
 * going down the parent is closed, coming back up `..` is opened and checked. Entries
 * removed do not come back, so reading a directory again from its start goes on where it
 * left off.
 */
int skill_remove_tree(int parentfd, const char *name)
{
    struct tree t = {NULL, 0, 0};
    int fd, r;

    if ((fd = open_for_removal(parentfd, name)) == -ENOTDIR || fd == -ENOENT)
        return unlinkat(parentfd, name, 0) == 0 || errno == ENOENT ? 0 : -errno;
    if (fd < 0)
        return fd;
    if ((r = tree_push(&t, fd, name)) != 0)
        goto out;
    for (;;) {
        int child = -1;
        char *child_name = NULL;

        if ((r = empty_dir(fd, &child, &child_name)) < 0)
            break;
        if (r == 1) {
            close(fd);
            fd = child;
            r = tree_push(&t, fd, child_name);
            free(child_name);
            if (r != 0)
                break;
            continue;
        }
        if (t.n == 1) {
            r = unlinkat(parentfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT ? 0 : -errno;
            break;
        }
        if ((r = tree_up(&t, fd)) < 0)
            break;
        close(fd);
        fd = r;
        r = 0;
    }
out:
    close(fd);
    for (size_t i = 0; i < t.n; i++)
        free(t.lv[i].name);
    free(t.lv);
    return r;
}

/* ---- installation ---- */

static int install_fail(struct skill_job *job, int code, const char *what, int err)
{
    char why[128];

    err_go_errno(-err, why, sizeof(why));
    snprintf(job->error, sizeof(job->error), "%s: %s", what, why);
    return code;
}

/* Makes the temporary sibling (0755) under a fresh name in tmp. Returns its fd or a
 * negative code with job->error set. */
static int make_sibling(int parentfd, const char *name, char *tmp, size_t len,
                        struct skill_job *job)
{
    char what[SKILL_ERROR_MAX];
    int fd, err = -EEXIST;

    for (int i = 0; i < SKILL_TRIES && err == -EEXIST; i++) {
        temp_name(name, tmp, len);
        err = mkdirat(parentfd, tmp, 0755) == 0 ? 0 : -errno;
    }
    snprintf(what, sizeof(what), "failed to unzip skill: failed to create destination "
             "directory: mkdir %s", job->shown);
    if (err != 0) {
        tmp[0] = '\0';
        return install_fail(job, err, what, err);
    }
    /* Ours since a moment ago: a symlink swapped in meanwhile is not followed. */
    if ((fd = openat(parentfd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        err = -errno;
        (void)unlinkat(parentfd, tmp, AT_REMOVEDIR); /* empty, or not ours */
        return install_fail(job, err, what, err);
    }
    return fd;
}

/* `.checksum` as Go writes it: the checksum verbatim, 0644 before umask, over any entry
 * of that name. */
static int write_checksum(int dirfd, const char *checksum, struct skill_job *job)
{
    char what[SKILL_ERROR_MAX];
    size_t len = strlen(checksum);
    int fd = openat(dirfd, ".checksum", O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                    0644);
    int err = 0;

    if (fd < 0) {
        err = -errno;
        snprintf(what, sizeof(what), "failed to write checksum: open %s/.checksum", job->shown);
        return install_fail(job, err, what, err);
    }
    while (len > 0 && err == 0) {
        ssize_t n = write(fd, checksum, len);

        if (n < 0 && errno != EINTR)
            err = -errno;
        else if (n > 0) {
            checksum += n;
            len -= (size_t)n;
        }
    }
    if (close(fd) != 0 && err == 0)
        err = -errno;
    if (err != 0) {
        snprintf(what, sizeof(what), "failed to write checksum: write %s/.checksum", job->shown);
        return install_fail(job, err, what, err);
    }
    return 0;
}

/*
 * tmp takes name's place. Returns 1 when there was nothing there (tmp is gone), 0 when an
 * old tree was exchanged (it is at tmp now), or a negative code. A concurrent sync of the
 * same skill can make name appear or vanish between the two kinds of rename: retried.
 */
static int swap_in(int parentfd, const char *tmp, const char *name, struct skill_job *job)
{
    int err = 0;

    for (int i = 0; i < SKILL_TRIES; i++) {
        if ((err = rename2(parentfd, tmp, name, RENAME_NOREPLACE)) == 0)
            return 1;
        if (err != -EEXIST)
            break;
        if ((err = rename2(parentfd, tmp, name, RENAME_EXCHANGE)) == 0)
            return 0;
        if (err != -ENOENT)
            break;
    }
    return install_fail(job, err, "failed to unzip skill: failed to replace existing directory",
                        err);
}

int skill_install(struct skill_archive *ar, int parentfd, const char *name, const char *checksum,
                  struct skill_job *job)
{
    char tmp[NAME_MAX + 1];
    int fd, r;

    job->error[0] = '\0';
    if ((fd = make_sibling(parentfd, name, tmp, sizeof(tmp), job)) < 0)
        return fd;
    r = skill_extract(ar, fd, job);
    if (r == 0)
        r = write_checksum(fd, checksum, job);
    close(fd);
    /* The last moment a cancel stops it: after the swap the new skill is in place. */
    if (r == 0 && job->cancel != NULL && atomic_load(job->cancel))
        r = -ECANCELED;
    if (r == 0 && (r = swap_in(parentfd, tmp, name, job)) == 1)
        return 0; /* nothing was there: nothing to remove */
    /* The old tree (after the swap) or the failed new one (before it). What cannot be
     * removed of an old tree does not undo the installation. */
    (void)skill_remove_tree(parentfd, tmp);
    return r;
}
