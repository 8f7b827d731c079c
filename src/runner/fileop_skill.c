/*
 * fileop_skill.c - the sync_skill operation (RUNNER-OPS.md section 10) on the pool
 * (fileop.c): skill_dir found through wspath.h, the archive decoded, then skill.h installs
 * it. Go's order of checks and its texts; what differs from Go is in skill.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base64.h"
#include "err.h"
#include "fileop_internal.h"
#include "skill.h"
#include "wspath.h"

/* Whether the directory dirfd is the workspace root itself. */
static bool is_root(const struct fileop *op, int dirfd)
{
    struct stat a, b;

    return fstat(dirfd, &a) == 0 && fstat(op->ws->fd, &b) == 0 && a.st_dev == b.st_dev &&
           a.st_ino == b.st_ino;
}

/*
 * skill_dir's parent directory and the name in it, the last symlink followed beneath the
 * root (as Go's safePath does). The root itself, and what the root resolves to, is
 * refused: Go's RemoveAll would have emptied the whole workspace. mkdirs: make the missing
 * parents (after the archive was found good, as Go makes them). Returns true with *dirfd
 * and *name, or false with the op failed.
 */
static bool skill_parent(struct fileop *op, const char *p, const char *rel, bool mkdirs,
                         int *dirfd, char **name)
{
    char abs[PATH_MAX + 256], why[128];
    int r = wspath_open_parent(op->ws, rel, mkdirs, dirfd, name);

    if (r == -ENOENT && !mkdirs)
        return true; /* made later, once the archive is known good */
    if (r == -EISDIR) {
        int fd = wspath_open(op->ws, rel, false);

        if (fd >= 0 && !is_root(op, fd))
            fileop__fail(op, "invalid skill_dir: names no directory entry: %s", p);
        else
            fileop__fail(op, "invalid skill_dir: resolves to the workspace root: %s", p);
        if (fd >= 0)
            close(fd);
        return false;
    }
    if (r != 0 && !fileop__path_error(op, r, p)) {
        fileop__lexical_abs(op, rel, abs, sizeof(abs));
        fileop__go_errno(-r, why, sizeof(why));
        fileop__fail(op, "failed to unzip skill: failed to create destination directory: "
                     "mkdir %s: %s", abs, why);
    }
    return r == 0;
}

/* The archive, decoded as Go's StdEncoding decodes. Returns it (caller frees) and *len,
 * or NULL with the op failed. */
static uint8_t *skill_decode(struct fileop *op, const char *b64, size_t *len)
{
    size_t n = strlen(b64), bad = 0;
    uint8_t *data = malloc(BASE64_DECODED_MAX(n) + 1);

    if (data == NULL) {
        fileop__fail(op, "out of memory");
        return NULL;
    }
    if (base64_decode_go(b64, n, data, len, &bad) != 0) {
        fileop__fail(op, "failed to decode zip data: illegal base64 data at input byte %zu", bad);
        free(data);
        return NULL;
    }
    return data;
}

void fileop__skill_work(struct fileop *op)
{
    const struct sync_skill_args *a = &op->args.sync_skill;
    const char *p = a->skill_dir != NULL ? a->skill_dir : "";
    char *rel = NULL, *name = NULL, abs[PATH_MAX + 256];
    struct skill_archive *ar = NULL;
    struct skill_job job;
    uint8_t *data = NULL;
    size_t len = 0;
    int r, dirfd = -1;

    if ((r = wspath_clean(p, &rel)) != 0) {
        fileop__path_error(op, r, p);
        goto out;
    }
    /* Go's order: the path, the base64, the archive, then the directories. */
    if (!skill_parent(op, p, rel, false, &dirfd, &name) ||
        (data = skill_decode(op, a->zip_data != NULL ? a->zip_data : "", &len)) == NULL)
        goto out;
    if ((r = skill_archive_open(data, len, op->limits.skill.max_entries, &ar)) != 0) {
        if (r == ERR_TOO_LARGE)
            fileop__fail(op, "failed to unzip skill: too many entries (limit %llu)",
                         (unsigned long long)op->limits.skill.max_entries);
        else
            fileop__fail(op, r == ERR_NOMEM ? "out of memory"
                                            : "failed to unzip skill: failed to read zip "
                                              "archive: zip: not a valid zip file");
        goto out;
    }
    if (dirfd < 0 && !skill_parent(op, p, rel, true, &dirfd, &name))
        goto out;
    memset(&job, 0, sizeof(job));
    job.limits = op->limits.skill;
    job.umask = fileop__umask();
    job.cancel = &op->cancelled;
    fileop__real_abs(op, dirfd, name, rel, abs, sizeof(abs));
    job.shown = abs;
    if ((r = skill_install(ar, dirfd, name, a->checksum != NULL ? a->checksum : "", &job)) == 0)
        op->success = true;
    else if (r == -ECANCELED)
        op->stopped = true; /* after_work says "context canceled" */
    else
        fileop__fail(op, "%s", job.error);
out:
    skill_archive_free(ar);
    if (dirfd >= 0)
        close(dirfd);
    free(data);
    free(name);
    free(rel);
}

json_t *fileop__skill_result(const struct fileop *op)
{
    const char *p = op->args.sync_skill.skill_dir;

    return json_pack("{s:b, s:s}", "success", 1, "path", p != NULL ? p : "");
}
