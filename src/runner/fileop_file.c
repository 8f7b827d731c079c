/*
 * fileop_file.c - the read and write operations (RUNNER-OPS.md 5.1, 5.2): one file, opened
 * beneath the workspace root through wspath.h, on the pool (fileop.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base64.h"
#include "err.h"
#include "fileop_internal.h"
#include "wspath.h"

/* ---- read (RUNNER-OPS.md 5.1) ---- */

void fileop__read_work(struct fileop *op)
{
    const struct read_args *a = &op->args.read;
    const char *p = a->path != NULL ? a->path : "";
    char *rel = NULL, *name = NULL, abs[PATH_MAX + 256], why[128];
    struct stat st, again;
    int r, dirfd = -1, pfd = -1, fd = -1;
    int64_t offset = a->offset > 0 ? a->offset : 0, want;
    size_t got = 0;

    if ((r = wspath_clean(p, &rel)) != 0) {
        fileop__path_error(op, r, p);
        goto out;
    }
    if (rel[0] == '\0') {
        fileop__fail(op, "cannot read a directory: %s", p);
        goto out;
    }
    /* The directory and the name, the last symlink followed beneath the root; then the
     * object itself opened with O_NOFOLLOW, so nothing can be swapped in between. */
    if ((r = wspath_open_parent(op->ws, rel, false, &dirfd, &name)) != 0) {
        if (!fileop__path_error(op, r, p)) {
            fileop__lexical_abs(op, rel, abs, sizeof(abs));
            fileop__go_errno(r == -EISDIR ? EISDIR : -r, why, sizeof(why));
            fileop__fail(op, "failed to stat file: stat %s: %s", abs, why);
        }
        goto out;
    }
    if ((pfd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC)) < 0 || fstat(pfd, &st) != 0) {
        fileop__lexical_abs(op, rel, abs, sizeof(abs));
        fileop__go_errno(errno, why, sizeof(why));
        fileop__fail(op, "failed to stat file: stat %s: %s", abs, why);
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        fileop__fail(op, "cannot read a directory: %s", p);
        goto out;
    }
    op->success = true;
    if (!S_ISREG(st.st_mode)) {
        /* A FIFO or device: size 0, nothing read (and never opened: opening some has
         * effects, and a FIFO would wait for a writer). */
        op->total_size = 0;
        goto out;
    }
    fileop__real_abs(op, dirfd, name, rel, abs, sizeof(abs));
    if ((fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)) < 0 ||
        fstat(fd, &again) != 0 || again.st_dev != st.st_dev || again.st_ino != st.st_ino) {
        fileop__go_errno(fd < 0 ? errno : ESTALE, why, sizeof(why));
        fileop__fail(op, "failed to open file: open %s: %s", abs, why);
        goto out;
    }
    op->total_size = (int64_t)again.st_size;
    if (offset >= op->total_size)
        goto out; /* {"content": "", "total_size": size} */
    want = a->limit <= 0 || a->limit > op->total_size - offset ? op->total_size - offset
                                                                 : a->limit;
    if ((uint64_t)want > op->limits.read_max_bytes) {
        want = (int64_t)op->limits.read_max_bytes;
        op->truncated = true;
    }
    if ((op->content = malloc((size_t)want + 1)) == NULL) {
        fileop__fail(op, "out of memory");
        goto out;
    }
    while (got < (size_t)want) {
        size_t chunk = (size_t)want - got < FILEOP_CHUNK ? (size_t)want - got : FILEOP_CHUNK;
        ssize_t n;

        if (fileop__stopping(op))
            goto out; /* after_work says "context canceled" */
        do {
            n = pread(fd, op->content + got, chunk, offset + (off_t)got);
        } while (n < 0 && errno == EINTR);
        if (n < 0 && got == 0) {
            fileop__go_errno(errno, why, sizeof(why));
            fileop__fail(op, "failed to read file: read %s: %s", abs, why);
            goto out;
        }
        if (n <= 0)
            break; /* a short read returns what it got */
        got += (size_t)n;
    }
    op->content_len = got;
out:
    if (fd >= 0)
        close(fd);
    if (pfd >= 0)
        close(pfd);
    if (dirfd >= 0)
        close(dirfd);
    free(name);
    free(rel);
}

json_t *fileop__read_result(const struct fileop *op)
{
    char *b64 = malloc(BASE64_ENCODED_LEN(op->content_len) + 1);
    json_t *o;
    size_t len;

    if (b64 == NULL)
        return NULL;
    len = base64_encode(op->content, op->content_len, b64);
    o = json_pack("{s:s#, s:I}", "content", b64, len, "total_size", (json_int_t)op->total_size);
    free(b64);
    if (o != NULL && op->truncated && json_object_set_new(o, "truncated", json_true()) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- write (RUNNER-OPS.md 5.2) ---- */

/* A name for the temporary file beside name: hidden, ours, random. */
static void temp_name(const char *name, char *out, size_t len)
{
    uint32_t rnd = 0;

    if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
        rnd = (uint32_t)getpid() ^ (uint32_t)(uintptr_t)out;
    if (strlen(name) + 24 < len && strlen(name) + 24 <= NAME_MAX)
        snprintf(out, len, ".%s.credbroker-%08x", name, rnd);
    else
        snprintf(out, len, ".credbroker-write-%08x", rnd);
}

/* Writes all of data to fd, looking at the cancel flag between chunks. Returns 0,
 * -ECANCELED or -errno. */
static int write_all(struct fileop *op, int fd, const uint8_t *data, size_t len)
{
    size_t done = 0;

    while (done < len) {
        size_t chunk = len - done < FILEOP_CHUNK ? len - done : FILEOP_CHUNK;
        ssize_t n;

        if (fileop__stopping(op))
            return -ECANCELED;
        do {
            n = write(fd, data + done, chunk);
        } while (n < 0 && errno == EINTR);
        if (n < 0)
            return -errno;
        done += (size_t)n;
    }
    return 0;
}

/* The process's umask, for the mode of a new file, read without changing it: umask(2)
 * can only be read by setting it, and a file another thread made meanwhile would get the
 * temporary value. /proc/self/status has it (Linux >= 4.7); else Go's usual 022. */
mode_t fileop__umask(void)
{
    char line[128], *end;
    unsigned long v;
    mode_t m = 022;
    FILE *f = fopen("/proc/self/status", "re");

    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "Umask:", 6) != 0)
            continue;
        errno = 0;
        v = strtoul(line + 6, &end, 8);
        if (errno == 0 && end != line + 6)
            m = (mode_t)(v & 0777);
        break;
    }
    if (f != NULL)
        fclose(f);
    return m;
}

/*
 * Atomic, unlike Go's truncate-in-place: a temporary file beside the target (O_EXCL,
 * 0600), every byte written and synced, the mode (and owner, where allowed) of the file
 * it replaces, then renamed over it. On a failure or a cancel the target is untouched.
 */
void fileop__write_work(struct fileop *op)
{
    const struct write_args *a = &op->args.write;
    const char *p = a->path != NULL ? a->path : "", *b64 = a->content != NULL ? a->content : "";
    char *rel = NULL, *name = NULL, tmp[NAME_MAX + 1], abs[PATH_MAX + 256], why[128];
    uint8_t *data = NULL;
    size_t len = 0, bad = 0;
    struct stat st;
    bool exists;
    mode_t mode;
    int r, dirfd = -1, fd = -1;

    tmp[0] = '\0';
    if ((r = wspath_clean(p, &rel)) != 0) {
        fileop__path_error(op, r, p);
        goto out;
    }
    if ((data = malloc(BASE64_DECODED_MAX(strlen(b64)) + 1)) == NULL) {
        fileop__fail(op, "out of memory");
        goto out;
    }
    if (base64_decode_go(b64, strlen(b64), data, &len, &bad) != 0) {
        fileop__fail(op, "failed to decode content: illegal base64 data at input byte %zu", bad);
        goto out;
    }
    if ((r = wspath_open_parent(op->ws, rel, true, &dirfd, &name)) != 0) {
        if (r == -EISDIR) { /* the root itself */
            fileop__go_errno(EISDIR, why, sizeof(why));
            fileop__fail(op, "open %s: %s", op->ws->abs, why);
        } else if (!fileop__path_error(op, r, p)) {
            char *slash = strrchr(rel, '/');

            if (slash != NULL)
                *slash = '\0';
            fileop__lexical_abs(op, slash != NULL ? rel : "", abs, sizeof(abs));
            fileop__go_errno(-r, why, sizeof(why));
            fileop__fail(op, "failed to create directory: mkdir %s: %s", abs, why);
        }
        goto out;
    }
    fileop__real_abs(op, dirfd, name, rel, abs, sizeof(abs));
    exists = fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (exists && S_ISDIR(st.st_mode)) {
        fileop__go_errno(EISDIR, why, sizeof(why));
        fileop__fail(op, "open %s: %s", abs, why);
        goto out;
    }
    mode = exists && S_ISREG(st.st_mode) ? st.st_mode & 07777 : 0644 & ~fileop__umask();
    temp_name(name, tmp, sizeof(tmp));
    if ((fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
        tmp[0] = '\0';
        fileop__go_errno(errno, why, sizeof(why));
        fileop__fail(op, "open %s: %s", abs, why);
        goto out;
    }
    if ((r = write_all(op, fd, data, len)) == 0 && fsync(fd) != 0)
        r = -errno;
    if (r == 0 && fileop__stopping(op)) /* the last moment before the target changes */
        r = -ECANCELED;
    if (r == -ECANCELED)
        goto out; /* after_work says "context canceled"; the temporary file goes */
    if (r != 0) {
        fileop__go_errno(-r, why, sizeof(why));
        fileop__fail(op, "write %s: %s", abs, why);
        goto out;
    }
    if (exists && S_ISREG(st.st_mode))
        (void)!fchown(fd, st.st_uid, st.st_gid); /* where the runner may */
    if (fchmod(fd, mode) != 0 || renameat(dirfd, tmp, dirfd, name) != 0) {
        fileop__go_errno(errno, why, sizeof(why));
        fileop__fail(op, "write %s: %s", abs, why);
        goto out;
    }
    tmp[0] = '\0'; /* renamed: it is the target now */
    op->success = true;
out:
    if (fd >= 0)
        close(fd);
    if (tmp[0] != '\0')
        unlinkat(dirfd, tmp, 0);
    if (dirfd >= 0)
        close(dirfd);
    if (data != NULL) {
        explicit_bzero(data, len);
        free(data);
    }
    free(name);
    free(rel);
}

json_t *fileop__write_result(const struct fileop *op)
{
    return json_pack("{s:b}", "success", 1);
}
