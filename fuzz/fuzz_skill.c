/*
 * fuzz_skill.c - skill_install (src/runner/skill.c, skill_extract.c) over archive bytes, on
 * the real file system: a fresh parent directory P holding a root R, and R holding an old
 * skill R/skill (one file). Properties:
 *
 *   - never a crash, and nothing written outside R: afterwards P holds only R, and R only
 *     "skill" (no temporary sibling left, whatever happened);
 *   - a failure leaves the old skill exactly as it was;
 *   - a success leaves exactly the archive's regular files under R/skill, with their bytes,
 *     and nothing else that is not a directory: the expectation comes from reading the
 *     archive a second time here, with the harness's own name cleaning (Go's filepath.Clean;
 *     the later of two entries of one name wins; `.checksum` is the checksum), and none of
 *     them past the limits.
 *
 * Input: the archive itself (a zip, or a tar when it starts with gzip's magic), or 'G' and a
 * description of one that the harness builds with libarchive's writer (generate(): names
 * over "ab./", every entry type, duplicates, large zero files). The limits are small so
 * that an input cannot make the harness slow.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "err.h"
#include "fuzz.h"
#include "skill.h"

#define MAX_FILE 65536
#define MAX_TOTAL (256 * 1024)
#define MAX_ENTRIES 64
#define MAX_RATIO 50
#define CHECKSUM "fuzz-checksum"
#define OLD_BODY "the old skill"

struct expected {
    char *path;
    uint8_t *data;
    size_t len;
};

struct model {
    struct expected *v;
    size_t n;
    bool usable; /* the second reading went through every entry */
};

/* ---- the harness's own reading of the archive ---- */

/* Go's filepath.Clean for a name, then Go's check: NULL when refused (absolute, or a
 * leading ".." component), "" for the directory itself. Caller frees. */
static char *model_clean(const char *name)
{
    return name[0] == '/' ? NULL : fuzz_clean_path(name);
}

static void model_put(struct model *m, char *path, uint8_t *data, size_t len)
{
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->v[i].path, path) == 0) {
            free(m->v[i].data);
            free(path);
            m->v[i].data = data;
            m->v[i].len = len;
            return;
        }
    }
    m->v = realloc(m->v, (m->n + 1) * sizeof(*m->v));
    FUZZ_CHECK(m->v != NULL, "out of memory");
    m->v[m->n++] = (struct expected){path, data, len};
}

/* The regular files the archive holds, by clean name. usable is false when the reading
 * stopped short (the extractor must then have failed too, or read the same). */
static void model_read(const uint8_t *data, size_t size, struct model *m)
{
    struct archive *a = archive_read_new();
    struct archive_entry *e;
    int r;

    memset(m, 0, sizeof(*m));
    FUZZ_CHECK(a != NULL, "out of memory");
    if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
        archive_read_support_filter_gzip(a);
        archive_read_support_format_tar(a);
    } else {
        archive_read_support_format_zip_seekable(a);
    }
    if (archive_read_open_memory(a, data, size) != ARCHIVE_OK) {
        /* libarchive does not know a zip of no entries (only the end record, which Go
         * reads as empty): then nothing but .checksum may be installed */
        m->usable = size >= 4 && memcmp(data, "PK\x05\x06", 4) == 0;
        archive_read_free(a);
        return;
    }
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
        const char *name = archive_entry_pathname(e);
        char *clean;
        uint8_t *body;
        size_t len = 0;
        la_ssize_t n;

        if (name == NULL)
            name = archive_entry_pathname_utf8(e);
        if (name == NULL || archive_entry_filetype(e) != AE_IFREG ||
            archive_entry_hardlink(e) != NULL)
            continue;
        if ((clean = model_clean(name)) == NULL || clean[0] == '\0') {
            free(clean);
            continue;
        }
        body = fuzz_malloc(MAX_FILE + 1);
        while (len <= MAX_FILE &&
               (n = archive_read_data(a, body + len, MAX_FILE + 1 - len)) > 0)
            len += (size_t)n;
        if (len > MAX_FILE || n < 0) {
            free(body);
            free(clean);
            archive_read_free(a);
            return; /* too large or unreadable: only a failure is possible */
        }
        model_put(m, clean, body, len);
    }
    m->usable = r == ARCHIVE_EOF;
    archive_read_free(a);
}

static void model_free(struct model *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].path);
        free(m->v[i].data);
    }
    free(m->v);
}

/* ---- the file system ---- */

static char base[PATH_MAX];

/* Each run removes its own parent; the process's base directory goes at exit. */
static void remove_base(void)
{
    (void)rmdir(base);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    if (flag == FTW_DP || flag == FTW_D)
        return rmdir(path) != 0 && errno != ENOENT;
    return unlink(path) != 0 && errno != ENOENT;
}

/* Called before a directory is read (pre-order): the extracted modes may be 0. */
static int own_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    if (S_ISDIR(st->st_mode))
        (void)chmod(path, 0700);
    return 0;
}

static void rm_tree(const char *path)
{
    FUZZ_CHECK(nftw(path, own_one, 16, FTW_PHYS) == 0, "cannot walk %s", path);
    FUZZ_CHECK(nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0, "cannot remove %s", path);
}

/* The names in dir, which must be exactly one: want. */
static void only(const char *dir, const char *want)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    FUZZ_CHECK(d != NULL, "cannot open %s", dir);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        FUZZ_CHECK(strcmp(e->d_name, want) == 0, "%s holds %s", dir, e->d_name);
        n++;
    }
    closedir(d);
    FUZZ_CHECK(n == 1, "%s holds %d names", dir, n);
}

static void check_file(const char *path, const uint8_t *want, size_t len)
{
    uint8_t *got = fuzz_malloc(len + 1);
    int fd = open(path, O_RDONLY | O_NOFOLLOW);
    ssize_t n;
    size_t have = 0;

    FUZZ_CHECK(fd >= 0, "%s missing", path);
    while ((n = read(fd, got + have, len + 1 - have)) > 0)
        have += (size_t)n;
    close(fd);
    FUZZ_CHECK(have == len && memcmp(got, want, len) == 0, "%s: %zu bytes, want %zu", path,
               have, len);
    free(got);
}

static struct model *walk_model;
static size_t walk_root, walk_files;

static int walk_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    const char *rel = path + walk_root;

    if (S_ISDIR(st->st_mode))
        return 0;
    FUZZ_CHECK(S_ISREG(st->st_mode), "%s is neither a file nor a directory", path);
    FUZZ_CHECK(*rel == '/', "%s outside the skill", path);
    rel++;
    walk_files++;
    if (strcmp(rel, ".checksum") == 0) {
        check_file(path, (const uint8_t *)CHECKSUM, strlen(CHECKSUM));
        return 0;
    }
    for (size_t i = 0; i < walk_model->n; i++) {
        if (strcmp(walk_model->v[i].path, rel) == 0) {
            check_file(path, walk_model->v[i].data, walk_model->v[i].len);
            return 0;
        }
    }
    fuzz_fail(__FILE__, __LINE__, "extra file", "%s is no regular file of the archive", rel);
}

static void check_success(const char *skill, struct model *m)
{
    size_t want = 1; /* .checksum */

    FUZZ_CHECK(m->usable, "installed an archive the second reading cannot read");
    for (size_t i = 0; i < m->n; i++)
        want += strcmp(m->v[i].path, ".checksum") != 0;
    walk_model = m;
    walk_root = strlen(skill);
    walk_files = 0;
    FUZZ_CHECK(nftw(skill, walk_one, 16, FTW_PHYS) == 0, "cannot walk %s", skill);
    FUZZ_CHECK(walk_files == want, "%zu files, want %zu", walk_files, want);
}

/* ---- generated archives ---- */

static const char name_alphabet[] = "ab./";

/*
 * Builds an archive from a description, so that most inputs are archives that read (raw
 * byte mutations rarely keep a zip's central directory whole): records of
 * [kind][name length][name bytes, mapped onto "ab./", a leading '/' kept when the byte is
 * odd][data length][data]. kind & 7: 0-2 a file, 3 a directory, 4 a symlink, 5 a hard link,
 * 6 a FIFO, 7 a character device; kind >> 4: permission bits; the first record's bit 3
 * picks tar.gz over zip. A data length with its top bit set is that many KiB of zeros.
 * Returns the length written to out (cap bytes).
 */
static size_t generate(const uint8_t *p, size_t n, uint8_t *out, size_t cap)
{
    static const mode_t types[8] = {AE_IFREG, AE_IFREG, AE_IFREG, AE_IFDIR,
                                    AE_IFLNK, AE_IFREG, AE_IFIFO, AE_IFCHR};
    static const uint8_t zeros[1024];
    struct archive *a = archive_write_new();
    size_t used = 0, i = 0;

    FUZZ_CHECK(a != NULL, "out of memory");
    if (n > 0 && (p[0] & 8) != 0) {
        archive_write_set_format_pax_restricted(a);
        archive_write_add_filter_gzip(a);
    } else {
        archive_write_set_format_zip(a);
    }
    FUZZ_CHECK(archive_write_open_memory(a, out, cap, &used) == ARCHIVE_OK, "open memory");
    while (i + 3 <= n) {
        uint8_t kind = p[i], nlen = p[i + 1] % 16, dlen;
        struct archive_entry *e = archive_entry_new();
        char name[20];
        size_t size;

        i += 2;
        for (size_t k = 0; k < nlen && i < n; k++, i++)
            name[k] = k == 0 && (p[i] & 0x80) != 0 ? '/' : name_alphabet[p[i] % 4];
        name[nlen] = '\0';
        dlen = i < n ? p[i++] : 0;
        size = (dlen & 0x80) != 0 ? (size_t)(dlen & 0x7f) * 1024 : dlen;
        if ((dlen & 0x80) == 0 && size > n - i)
            size = n - i;
        if (types[kind & 7] != AE_IFREG || (kind & 7) == 5)
            size = 0;
        archive_entry_set_pathname(e, name);
        archive_entry_set_mode(e, types[kind & 7] | (mode_t)(kind >> 4) * 0111);
        archive_entry_set_size(e, (la_int64_t)size);
        if ((kind & 7) == 4)
            archive_entry_set_symlink(e, "../../outside");
        if ((kind & 7) == 5)
            archive_entry_set_hardlink(e, "a");
        if (archive_write_header(a, e) >= ARCHIVE_WARN && size > 0) {
            if ((dlen & 0x80) != 0) {
                for (size_t done = 0; done < size; done += sizeof(zeros))
                    (void)archive_write_data(a, zeros, sizeof(zeros));
            } else {
                (void)archive_write_data(a, p + i, size);
            }
        }
        if ((dlen & 0x80) == 0)
            i += size;
        archive_entry_free(e);
    }
    (void)archive_write_close(a);
    archive_write_free(a);
    return used;
}

/* ---- one run ---- */

static void run(const uint8_t *data, size_t size)
{
    struct skill_job job = {.limits = {MAX_FILE, MAX_TOTAL, MAX_ENTRIES, MAX_RATIO},
                            .umask = 022, .cancel = NULL, .shown = "/ws/skill"};
    char parent[PATH_MAX], root[PATH_MAX + 8], skill[PATH_MAX + 16], old[PATH_MAX + 32];
    struct skill_archive *ar = NULL;
    struct model m;
    int rootfd, fd, r;

    if (base[0] == '\0') {
        const char *tmp = getenv("TMPDIR");

        snprintf(base, sizeof(base), "%s/fuzz-skill-XXXXXX", tmp != NULL ? tmp : "/tmp");
        FUZZ_CHECK(mkdtemp(base) != NULL, "mkdtemp");
        FUZZ_CHECK(atexit(remove_base) == 0, "atexit");
    }
    snprintf(parent, sizeof(parent), "%s/p-XXXXXX", base);
    FUZZ_CHECK(mkdtemp(parent) != NULL, "mkdtemp");
    snprintf(root, sizeof(root), "%s/root", parent);
    snprintf(skill, sizeof(skill), "%s/skill", root);
    snprintf(old, sizeof(old), "%s/old.txt", skill);
    FUZZ_CHECK(mkdir(root, 0755) == 0 && mkdir(skill, 0755) == 0, "mkdir");
    fd = open(old, O_WRONLY | O_CREAT | O_EXCL, 0644);
    FUZZ_CHECK(fd >= 0 && write(fd, OLD_BODY, strlen(OLD_BODY)) == (ssize_t)strlen(OLD_BODY),
               "old skill");
    close(fd);
    rootfd = open(root, O_RDONLY | O_DIRECTORY);
    FUZZ_CHECK(rootfd >= 0, "open root");

    model_read(data, size, &m);
    r = skill_archive_open(data, size, MAX_ENTRIES, &ar);
    FUZZ_CHECK(r == 0 || r == ERR_INVALID || r == ERR_TOO_LARGE, "skill_archive_open = %d", r);
    if (r == 0)
        r = skill_install(ar, rootfd, "skill", CHECKSUM, &job);
    skill_archive_free(ar);

    only(parent, "root");
    only(root, "skill");
    if (r == 0) {
        check_success(skill, &m);
    } else {
        FUZZ_CHECK(r != -ECANCELED, "cancelled with no cancel");
        only(skill, "old.txt");
        check_file(old, (const uint8_t *)OLD_BODY, strlen(OLD_BODY));
    }
    close(rootfd);
    model_free(&m);
    rm_tree(parent);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* 'G' starts neither a zip nor a gzip stream: a description to build one from */
    if (size > 0 && data[0] == 'G') {
        size_t cap = 4u << 20, len;
        uint8_t *archive = fuzz_malloc(cap);

        len = generate(data + 1, size - 1, archive, cap);
        run(archive, len);
        free(archive);
        return 0;
    }
    run(data, size);
    return 0;
}
