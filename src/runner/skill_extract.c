/*
 * skill_extract.c - see skill.h: reading a skill archive with libarchive and writing its
 * directories and regular files beneath one directory descriptor. Every limit applies
 * while the bytes arrive, so an archive bomb stops at its first megabytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "err.h"
#include "skill.h"

#define SKILL_COPY_CHUNK (64 * 1024) /* copied between two looks at the cancel flag */

struct skill_archive {
    struct archive *a;
    struct archive_entry *next; /* the header read and not extracted yet; NULL at the end */
};

/* A directory entry whose mode is applied once everything else is written. */
struct dir_mode {
    char *path;
    mode_t mode;
    size_t depth, index;
};

struct extract {
    struct skill_archive *ar;
    struct skill_job *job;
    int rootfd;
    uint8_t *buf;
    uint64_t total;            /* extracted bytes so far */
    struct dir_mode *dirs;
    size_t ndirs, dirs_cap;
};

static bool is_gzip(const uint8_t *data, size_t len)
{
    return len >= 2 && data[0] == 0x1f && data[1] == 0x8b;
}

/* A zip of no entries: nothing but its end-of-central-directory record (APPNOTE 4.3.16),
 * which Go reads as an empty archive and libarchive's reader does not recognise. */
static bool is_empty_zip(const uint8_t *data, size_t len)
{
    return len >= 22 && memcmp(data, "PK\x05\x06", 4) == 0 && data[8] == 0 && data[9] == 0 &&
           data[10] == 0 && data[11] == 0 && (size_t)(data[20] | data[21] << 8) == len - 22;
}

/*
 * Whether the zip could hold more than max central-directory records. libarchive's
 * seekable reader loads every record it meets into memory at the first header (it walks
 * the directory until an end record, whatever count the end record claims), before the
 * entry limit counts a single one: a 64 MiB message of minimal records would cost the
 * runner hundreds of MiB. Each record it loads starts with its own "PK\1\2" signature, so
 * counting those in the whole archive bounds what it can load, and is exact for an
 * ordinary zip (a stored zip inside the skill counts its own records too: a refusal
 * errs towards safety).
 */
static bool zip_records_over(const uint8_t *data, size_t len, uint64_t max)
{
    static const uint8_t sig[4] = {'P', 'K', 1, 2};
    const uint8_t *p = data, *end = data + len;
    uint64_t n = 0;

    while (p < end && (p = memmem(p, (size_t)(end - p), sig, sizeof(sig))) != NULL) {
        if (++n > max)
            return true;
        p += sizeof(sig);
    }
    return false;
}

int skill_archive_open(const uint8_t *data, size_t len, uint64_t max_entries,
                       struct skill_archive **out)
{
    struct skill_archive *ar;
    int r;

    *out = NULL;
    if ((ar = calloc(1, sizeof(*ar))) == NULL || (ar->a = archive_read_new()) == NULL) {
        free(ar);
        return ERR_NOMEM;
    }
    if (is_empty_zip(data, len)) {
        *out = ar; /* ar->next NULL: no entries */
        return 0;
    }
    if (!is_gzip(data, len) && zip_records_over(data, len, max_entries)) {
        skill_archive_free(ar);
        return ERR_TOO_LARGE;
    }
    /* The platform sends zip (and accepts tar.gz uploads): only these two are read, so
     * no other of libarchive's many formats is ever parsed from a peer's bytes. */
    if (is_gzip(data, len))
        r = archive_read_support_filter_gzip(ar->a) != ARCHIVE_OK ||
            archive_read_support_format_tar(ar->a) != ARCHIVE_OK;
    else
        r = archive_read_support_format_zip_seekable(ar->a) != ARCHIVE_OK;
    /* The memory reader can seek: the zip reader starts from the central directory. */
    if (r != 0 || archive_read_open_memory(ar->a, data, len) != ARCHIVE_OK) {
        skill_archive_free(ar);
        return ERR_INVALID;
    }
    r = archive_read_next_header(ar->a, &ar->next);
    if (r == ARCHIVE_EOF)
        ar->next = NULL;
    else if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
        skill_archive_free(ar);
        return ERR_INVALID;
    }
    *out = ar;
    return 0;
}

void skill_archive_free(struct skill_archive *ar)
{
    if (ar == NULL)
        return;
    archive_read_free(ar->a);
    free(ar);
}

/* ---- outcome ---- */

static int fail(struct extract *x, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct extract *x, int code, const char *fmt, ...)
{
    char msg[SKILL_ERROR_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(x->job->error, sizeof(x->job->error), "failed to unzip skill: %s", msg);
    return code;
}

static bool cancelled(const struct extract *x)
{
    return x->job->cancel != NULL && atomic_load(x->job->cancel);
}

/* ---- names ---- */

/*
 * An entry's name cleaned as Go's filepath.Clean does, into out (as long as name): ""
 * for the skill directory itself. Returns -1 for a name Go refuses: absolute, or one that
 * still climbs out (a leading `..` component; `..foo` is an ordinary name).
 */
static int clean_name(const char *name, char *out, size_t *depth)
{
    size_t n = 0;

    *depth = 0;
    if (name[0] == '/')
        return -1;
    while (*name != '\0') {
        const char *end = strchr(name, '/');
        size_t len = end != NULL ? (size_t)(end - name) : strlen(name);

        if (len == 2 && name[0] == '.' && name[1] == '.') {
            if (n == 0)
                return -1; /* nothing left to climb out of: it leaves the skill */
            while (n > 0 && out[n - 1] != '/')
                n--;
            if (n > 0)
                n--;
            (*depth)--;
        } else if (len > 0 && !(len == 1 && name[0] == '.')) {
            if (n > 0)
                out[n++] = '/';
            memcpy(out + n, name, len);
            n += len;
            (*depth)++;
        }
        name += len;
        if (*name == '/')
            name++;
    }
    out[n] = '\0';
    return 0;
}

/* What an entry is, when it is something a skill may not hold; NULL for a file or a
 * directory. */
static const char *refused_type(struct archive_entry *e)
{
    if (archive_entry_hardlink(e) != NULL)
        return "hard link";
    switch (archive_entry_filetype(e)) {
    case AE_IFREG:
    case AE_IFDIR: return NULL;
    case AE_IFLNK: return "symlink";
    case AE_IFCHR: return "character device";
    case AE_IFBLK: return "block device";
    case AE_IFIFO: return "fifo";
    case AE_IFSOCK: return "socket";
    default: return "unknown type";
    }
}

/* ---- directories beneath the root ---- */

/*
 * Opens the directory rel (clean; "" is the root) beneath rootfd one component at a time,
 * never following a symlink, making the missing ones (0755 before umask) when mkdirs.
 * Returns the fd (caller closes) or -errno, with *failed the length of the prefix of rel
 * that could not be made or opened.
 */
static int open_dir(int rootfd, const char *rel, bool mkdirs, size_t *failed)
{
    /* Never through a symlink: one planted in our directory must not lead out of it. */
    const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    const char *p = rel;
    int fd = fcntl(rootfd, F_DUPFD_CLOEXEC, 0), next, err;
    char name[256];

    *failed = 0;
    if (fd < 0)
        return -errno;
    while (*p != '\0') {
        const char *end = strchr(p, '/');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

        *failed = (size_t)(p - rel) + len;
        if (len >= sizeof(name)) {
            close(fd);
            return -ENAMETOOLONG;
        }
        memcpy(name, p, len);
        name[len] = '\0';
        next = openat(fd, name, flags);
        if (next < 0 && errno == ENOENT && mkdirs) {
            if (mkdirat(fd, name, 0755) != 0 && errno != EEXIST) {
                err = -errno;
                close(fd);
                return err;
            }
            next = openat(fd, name, flags);
        }
        err = -errno;
        close(fd);
        if (next < 0)
            return err == -ELOOP ? -ENOTDIR : err; /* a symlink there is not a directory */
        fd = next;
        p += len;
        if (*p == '/')
            p++;
    }
    return fd;
}

/* The message for a directory that could not be made: "mkdir <abs>: <errno text>". */
static void mkdir_text(const struct extract *x, const char *rel, size_t failed, int err,
                       char *buf, size_t len)
{
    char why[128];

    err_go_errno(-err, why, sizeof(why));
    snprintf(buf, len, "mkdir %s/%.*s: %s", x->job->shown, (int)failed, rel, why);
}

static int remember_dir(struct extract *x, const char *clean, size_t depth, mode_t mode)
{
    struct dir_mode *d;

    if (x->ndirs == x->dirs_cap) {
        size_t cap = x->dirs_cap != 0 ? x->dirs_cap * 2 : 64;

        if ((d = reallocarray(x->dirs, cap, sizeof(*d))) == NULL)
            return fail(x, ERR_NOMEM, "out of memory");
        x->dirs = d;
        x->dirs_cap = cap;
    }
    d = &x->dirs[x->ndirs];
    if ((d->path = strdup(clean)) == NULL)
        return fail(x, ERR_NOMEM, "out of memory");
    d->mode = mode;
    d->depth = depth;
    d->index = x->ndirs++;
    return 0;
}

static int extract_dir(struct extract *x, const char *clean, size_t depth, mode_t mode)
{
    char text[SKILL_ERROR_MAX];
    size_t failed;
    int fd = open_dir(x->rootfd, clean, true, &failed);

    if (fd < 0) {
        mkdir_text(x, clean, failed, fd, text, sizeof(text));
        return fail(x, fd, "failed to create directory %s: %s", clean, text);
    }
    close(fd);
    return remember_dir(x, clean, depth, mode);
}

/* Deepest first (a read-only parent never blocks its children), and among entries for the
 * same directory the later one last, so it wins. */
static int dir_order(const void *pa, const void *pb)
{
    const struct dir_mode *a = pa, *b = pb;
    int c;

    if (a->depth != b->depth)
        return a->depth > b->depth ? -1 : 1;
    if ((c = strcmp(a->path, b->path)) != 0)
        return c;
    return a->index < b->index ? -1 : a->index > b->index;
}

static int apply_dir_modes(struct extract *x)
{
    char text[SKILL_ERROR_MAX];
    size_t failed;

    if (x->ndirs > 1)
        qsort(x->dirs, x->ndirs, sizeof(*x->dirs), dir_order);
    for (size_t i = 0; i < x->ndirs; i++) {
        const struct dir_mode *d = &x->dirs[i];
        int fd, err = 0;

        if (i + 1 < x->ndirs && strcmp(d->path, x->dirs[i + 1].path) == 0)
            continue; /* a later entry for the same directory decides */
        if ((fd = open_dir(x->rootfd, d->path, false, &failed)) < 0)
            err = fd;
        else if (fchmod(fd, d->mode & 0777 & ~x->job->umask) != 0)
            err = -errno;
        if (fd >= 0)
            close(fd);
        if (err != 0) {
            mkdir_text(x, d->path, strlen(d->path), err, text, sizeof(text));
            return fail(x, err, "failed to create directory %s: %s", d->path, text);
        }
    }
    return 0;
}

/* ---- regular files ---- */

/* The limits an entry's bytes are held to, checked after each chunk and against the
 * header's size before any. */
static int check_size(struct extract *x, const char *name, uint64_t size)
{
    const struct skill_limits *l = &x->job->limits;

    if (size > l->max_file_bytes)
        return fail(x, ERR_TOO_LARGE, "file too large: %s (limit %llu bytes)", name,
                    (unsigned long long)l->max_file_bytes);
    if (size > l->max_total_bytes || x->total > l->max_total_bytes - size)
        return fail(x, ERR_TOO_LARGE, "archive too large (limit %llu bytes)",
                    (unsigned long long)l->max_total_bytes);
    return 0;
}

/* An archive bomb: far more bytes out than went in (compressed counts the archive's raw
 * bytes consumed since the entry's data began). */
static int check_ratio(struct extract *x, const char *name, uint64_t out, uint64_t compressed)
{
    uint64_t ratio = x->job->limits.max_ratio;

    if (out > SKILL_RATIO_FLOOR && compressed <= UINT64_MAX / ratio && out > ratio * compressed)
        return fail(x, ERR_TOO_LARGE, "compression ratio too high: %s (limit %llu)", name,
                    (unsigned long long)ratio);
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Copies the entry's data into fd, every limit checked chunk by chunk. */
static int copy_data(struct extract *x, int fd, const char *name, const char *clean)
{
    struct archive *a = x->ar->a;
    int64_t base = archive_filter_bytes(a, -1), used;
    uint64_t out = 0;
    char why[128];
    int r;

    for (;;) {
        la_ssize_t n;

        if (cancelled(x))
            return -ECANCELED;
        if ((n = archive_read_data(a, x->buf, SKILL_COPY_CHUNK)) < 0)
            return fail(x, ERR_INVALID, "failed to extract %s: %s", clean,
                        archive_error_string(a) != NULL ? archive_error_string(a) : "read error");
        if (n == 0)
            return 0;
        out += (uint64_t)n;
        /* A reader that went back in the archive counts as having used nothing of it: the
         * bound then errs towards a refusal, never towards a bomb. */
        used = archive_filter_bytes(a, -1) - base;
        if ((r = check_size(x, name, out)) != 0 ||
            (r = check_ratio(x, name, out, used > 0 ? (uint64_t)used : 0)) != 0)
            return r;
        if ((r = write_all(fd, x->buf, (size_t)n)) != 0) {
            err_go_errno(-r, why, sizeof(why));
            return fail(x, r, "failed to extract %s: write %s/%s: %s", clean, x->job->shown,
                        clean, why);
        }
        x->total += (uint64_t)n;
    }
}

static int extract_file(struct extract *x, struct archive_entry *e, const char *name,
                        const char *clean)
{
    char text[SKILL_ERROR_MAX], why[128];
    const char *slash = strrchr(clean, '/'), *base = slash != NULL ? slash + 1 : clean;
    char *parent = strndup(clean, slash != NULL ? (size_t)(slash - clean) : 0);
    size_t failed;
    int dirfd = -1, fd = -1, r;

    if (parent == NULL)
        return fail(x, ERR_NOMEM, "out of memory");
    if (archive_entry_size_is_set(e) && archive_entry_size(e) >= 0 &&
        (r = check_size(x, name, (uint64_t)archive_entry_size(e))) != 0)
        goto out;
    if ((dirfd = open_dir(x->rootfd, parent, true, &failed)) < 0) {
        r = dirfd;
        mkdir_text(x, parent, failed, r, text, sizeof(text));
        fail(x, r, "failed to create parent directory: %s", text);
        goto out;
    }
    /* A later entry of the same name overwrites (as Go); never through a symlink. */
    fd = openat(dirfd, base, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC,
                archive_entry_perm(e) & 0777);
    if (fd < 0) {
        r = -errno;
        err_go_errno(errno, why, sizeof(why));
        fail(x, r, "failed to extract %s: open %s/%s: %s", clean, x->job->shown, clean, why);
        goto out;
    }
    r = copy_data(x, fd, name, clean);
out:
    if (fd >= 0 && close(fd) != 0 && r == 0) {
        r = -errno;
        err_go_errno(errno, why, sizeof(why));
        fail(x, r, "failed to extract %s: close %s/%s: %s", clean, x->job->shown, clean, why);
    }
    if (dirfd >= 0)
        close(dirfd);
    free(parent);
    return r;
}

/* ---- the archive ---- */

static int extract_entry(struct extract *x, struct archive_entry *e)
{
    const char *name = archive_entry_pathname(e), *kind;
    char *clean;
    size_t depth;
    int r;

    if (name == NULL && (name = archive_entry_pathname_utf8(e)) == NULL)
        return fail(x, ERR_INVALID, "invalid file path in zip: %s", "");
    if ((clean = malloc(strlen(name) + 1)) == NULL)
        return fail(x, ERR_NOMEM, "out of memory");
    if (clean_name(name, clean, &depth) != 0)
        r = fail(x, ERR_INVALID, "invalid file path in zip: %s", name);
    else if ((kind = refused_type(e)) != NULL)
        r = fail(x, ERR_INVALID, "unsupported entry type: %s (%s)", name, kind);
    else if (clean[0] == '\0')
        r = 0; /* "." (or "a/..") is the skill directory itself */
    else if (archive_entry_filetype(e) == AE_IFDIR)
        r = extract_dir(x, clean, depth, archive_entry_perm(e));
    else
        r = extract_file(x, e, name, clean);
    free(clean);
    return r;
}

int skill_extract(struct skill_archive *ar, int rootfd, struct skill_job *job)
{
    struct extract x = {.ar = ar, .job = job, .rootfd = rootfd};
    uint64_t nentries = 0;
    int r = 0;

    job->error[0] = '\0';
    if ((x.buf = malloc(SKILL_COPY_CHUNK)) == NULL)
        return fail(&x, ERR_NOMEM, "out of memory");
    while (ar->next != NULL) {
        if (cancelled(&x)) {
            r = -ECANCELED;
            break;
        }
        if (++nentries > job->limits.max_entries) {
            r = fail(&x, ERR_TOO_LARGE, "too many entries (limit %llu)",
                     (unsigned long long)job->limits.max_entries);
            break;
        }
        if ((r = extract_entry(&x, ar->next)) != 0)
            break;
        r = archive_read_next_header(ar->a, &ar->next);
        if (r == ARCHIVE_EOF) {
            ar->next = NULL;
            r = 0;
        } else if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            ar->next = NULL;
            r = fail(&x, ERR_INVALID, "failed to read zip archive: %s",
                     archive_error_string(ar->a) != NULL ? archive_error_string(ar->a)
                                                         : "read error");
            break;
        } else {
            r = 0;
        }
    }
    if (r == 0)
        r = apply_dir_modes(&x);
    for (size_t i = 0; i < x.ndirs; i++)
        free(x.dirs[i].path);
    free(x.dirs);
    free(x.buf);
    return r;
}
