/*
 * Unit tests for src/runner/skill.c and skill_extract.c: skill archives built here with
 * libarchive's writer (zip, and pax tar through gzip), good and hostile, installed into a
 * temporary parent directory. Each hostile kind is refused with its text; a refusal, a
 * limit or a cancel at any point leaves the old skill as it was and no temporary sibling.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

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
#include "skill.h"

#define ARC_CAP (8u << 20) /* the largest archive here: a 4 MiB bomb, compressed */

struct arc {
    struct archive *a;
    uint8_t *buf;
    size_t used;
    bool zip;
};

struct fixture {
    char dir[PATH_MAX]; /* the parent of the skill */
    int fd;
    struct skill_job job;
};

static const struct skill_limits defaults = {100u << 20, 512u << 20, 20000, 1000};

/* ---- archives ---- */

static void arc_begin(struct arc *w, bool zip)
{
    memset(w, 0, sizeof(*w));
    w->zip = zip;
    assert_non_null(w->buf = malloc(ARC_CAP));
    assert_non_null(w->a = archive_write_new());
    if (zip) {
        assert_int_equal(archive_write_set_format_zip(w->a), ARCHIVE_OK);
    } else {
        assert_int_equal(archive_write_set_format_pax_restricted(w->a), ARCHIVE_OK);
        assert_int_equal(archive_write_add_filter_gzip(w->a), ARCHIVE_OK);
    }
    assert_int_equal(archive_write_open_memory(w->a, w->buf, ARC_CAP, &w->used), ARCHIVE_OK);
}

/* An entry: type | permission bits, its data (a file's), a link's target. */
static void arc_add(struct arc *w, const char *name, mode_t mode, const char *data,
                    const char *link)
{
    struct archive_entry *e = archive_entry_new();
    size_t len = data != NULL ? strlen(data) : 0;

    archive_entry_set_pathname(e, name);
    archive_entry_set_mode(e, mode);
    archive_entry_set_size(e, (la_int64_t)len);
    if (S_ISLNK(mode))
        archive_entry_set_symlink(e, link);
    else if (link != NULL)
        archive_entry_set_hardlink(e, link);
    if (S_ISCHR(mode) || S_ISBLK(mode))
        archive_entry_set_rdev(e, 0x0103);
    assert_true(archive_write_header(w->a, e) >= ARCHIVE_WARN);
    if (len > 0)
        assert_int_equal(archive_write_data(w->a, data, len), (la_ssize_t)len);
    archive_entry_free(e);
}

/* A regular file of n zero bytes (compresses about 1000 to 1 with deflate). */
static void arc_add_zeros(struct arc *w, const char *name, size_t n)
{
    struct archive_entry *e = archive_entry_new();
    static const char zeros[65536];

    archive_entry_set_pathname(e, name);
    archive_entry_set_mode(e, AE_IFREG | 0644);
    archive_entry_set_size(e, (la_int64_t)n);
    assert_int_equal(archive_write_header(w->a, e), ARCHIVE_OK);
    for (size_t done = 0; done < n; done += sizeof(zeros))
        assert_true(archive_write_data(w->a, zeros, n - done < sizeof(zeros) ? n - done
                                                                             : sizeof(zeros)) > 0);
    archive_entry_free(e);
}

static void arc_end(struct arc *w)
{
    assert_int_equal(archive_write_close(w->a), ARCHIVE_OK);
    archive_write_free(w->a);
    w->a = NULL;
}

/* ---- the fixture ---- */

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char tmpl[] = "/tmp/credbroker-skill-XXXXXX";

    umask(022);
    if (f == NULL || mkdtemp(tmpl) == NULL || realpath(tmpl, f->dir) == NULL ||
        (f->fd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return -1;
    f->job.limits = defaults;
    f->job.umask = 022;
    f->job.shown = "/ws/skill";
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[PATH_MAX + 16];

    close(f->fd);
    snprintf(cmd, sizeof(cmd), "chmod -R u+rwx '%s'; rm -rf '%s'", f->dir, f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* Installs the archive as "skill" in the fixture's directory. */
static int install(struct fixture *f, struct arc *w, const char *checksum)
{
    struct skill_archive *ar;
    int r;

    if ((r = skill_archive_open(w->buf, w->used, f->job.limits.max_entries, &ar)) != 0)
        return r;
    r = skill_install(ar, f->fd, "skill", checksum, &f->job);
    skill_archive_free(ar);
    return r;
}

/* ---- what is on disk ---- */

static char *snap_text;
static size_t snap_len, snap_root;

static int snap_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    char line[PATH_MAX + 600], data[256] = "";
    size_t n;

    if (S_ISREG(st->st_mode)) {
        FILE *fp = fopen(path, "r");

        assert_non_null(fp);
        n = fread(data, 1, sizeof(data) - 1, fp);
        data[n] = '\0';
        fclose(fp);
    }
    n = (size_t)snprintf(line, sizeof(line), "%s %o %lld [%s]\n", path + snap_root,
                         (unsigned)st->st_mode, (long long)st->st_size, data);
    assert_non_null(snap_text = realloc(snap_text, snap_len + n + 1));
    memcpy(snap_text + snap_len, line, n + 1);
    snap_len += n;
    return 0;
}

/* Every object under the fixture's directory: name, mode, size and (start of) content, in
 * the order nftw meets them. Caller frees. */
static char *snapshot(const struct fixture *f)
{
    snap_text = strdup("");
    snap_len = 0;
    snap_root = strlen(f->dir);
    assert_int_equal(nftw(f->dir, snap_one, 16, FTW_PHYS), 0);
    return snap_text;
}

/* Only "skill" is left beside it: no temporary sibling. */
static void assert_no_sibling(const struct fixture *f)
{
    DIR *d = opendir(f->dir);
    struct dirent *e;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            assert_string_equal(e->d_name, "skill");
    }
    closedir(d);
}

static void assert_file(const struct fixture *f, const char *rel, const char *content,
                        mode_t mode)
{
    char path[PATH_MAX + 64], buf[256];
    struct stat st;
    FILE *fp;
    size_t n;

    snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, mode);
    assert_non_null(fp = fopen(path, "r"));
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    assert_string_equal(buf, content);
}

static bool exists(const struct fixture *f, const char *rel)
{
    char path[PATH_MAX + 64];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
    return lstat(path, &st) == 0;
}

/* A skill of both kinds: nested directories and an executable script. */
static void build_skill(struct arc *w, bool zip, const char *version)
{
    arc_begin(w, zip);
    arc_add(w, "SKILL.md", AE_IFREG | 0644, version, NULL);
    arc_add(w, "scripts/", AE_IFDIR | 0755, NULL, NULL);
    arc_add(w, "scripts/run.sh", AE_IFREG | 0755, "#!/bin/bash\necho ran\n", NULL);
    arc_add(w, "docs/deep/er/notes.txt", AE_IFREG | 0600, "notes", NULL);
    arc_end(w);
}

/* ---- tests ---- */

static void check_a_good_skill(struct fixture *f, bool zip)
{
    struct arc w;

    build_skill(&w, zip, "v1");
    assert_int_equal(install(f, &w, "sum-1"), 0);
    free(w.buf);
    assert_file(f, "skill/SKILL.md", "v1", 0644);
    assert_file(f, "skill/scripts/run.sh", "#!/bin/bash\necho ran\n", 0755);
    assert_file(f, "skill/docs/deep/er/notes.txt", "notes", 0600);
    assert_file(f, "skill/.checksum", "sum-1", 0644);
    assert_no_sibling(f);
}

static void test_a_zip_skill_is_installed_with_its_modes_and_checksum(void **state)
{
    check_a_good_skill(*state, true);
}

static void test_a_tar_gz_skill_is_installed_with_its_modes_and_checksum(void **state)
{
    check_a_good_skill(*state, false);
}

static void test_a_new_skill_replaces_the_old_one_whole(void **state)
{
    struct fixture *f = *state;
    struct arc w;

    build_skill(&w, true, "v1");
    assert_int_equal(install(f, &w, "sum-1"), 0);
    free(w.buf);
    arc_begin(&w, false);
    arc_add(&w, "SKILL.md", AE_IFREG | 0644, "v2", NULL);
    arc_end(&w);
    assert_int_equal(install(f, &w, "sum-2"), 0);
    free(w.buf);
    assert_file(f, "skill/SKILL.md", "v2", 0644);
    assert_file(f, "skill/.checksum", "sum-2", 0644);
    assert_false(exists(f, "skill/scripts"));
    assert_no_sibling(f);
}

/* Installs a good skill, then the hostile archive w, which must fail with error and leave
 * the good one byte for byte. */
static void check_refused(struct fixture *f, struct arc *w, int code, const char *error)
{
    struct skill_job hostile = f->job;
    struct arc good;
    char *before, *after;

    /* the good one under the default limits, the hostile one under the test's */
    f->job.limits = defaults;
    f->job.cancel = NULL;
    build_skill(&good, true, "v1");
    assert_int_equal(install(f, &good, "sum-1"), 0);
    free(good.buf);
    f->job = hostile;
    before = snapshot(f);
    assert_int_equal(install(f, w, "sum-2"), code);
    free(w->buf);
    if (error != NULL)
        assert_string_equal(f->job.error, error);
    after = snapshot(f);
    assert_string_equal(after, before);
    free(before);
    free(after);
    assert_no_sibling(f);
}

/* One hostile entry after good ones. */
static void check_entry_refused(struct fixture *f, bool zip, const char *name, mode_t mode,
                                const char *link, const char *error)
{
    struct arc w;

    arc_begin(&w, zip);
    arc_add(&w, "SKILL.md", AE_IFREG | 0644, "v2", NULL);
    arc_add(&w, "dir/good.txt", AE_IFREG | 0644, "good", NULL);
    arc_add(&w, name, mode, S_ISREG(mode) && link == NULL ? "x" : NULL, link);
    arc_add(&w, "after.txt", AE_IFREG | 0644, "after", NULL);
    arc_end(&w);
    check_refused(f, &w, ERR_INVALID, error);
}

static void test_links_devices_and_fifos_are_refused_naming_the_entry(void **state)
{
    struct fixture *f = *state;

    check_entry_refused(f, false, "dir/ln", AE_IFLNK | 0777, "/etc/passwd",
                        "failed to unzip skill: unsupported entry type: dir/ln (symlink)");
    check_entry_refused(f, true, "dir/ln", AE_IFLNK | 0777, "../../x",
                        "failed to unzip skill: unsupported entry type: dir/ln (symlink)");
    check_entry_refused(f, false, "hard", AE_IFREG | 0644, "dir/good.txt",
                        "failed to unzip skill: unsupported entry type: hard (hard link)");
    check_entry_refused(f, false, "chr", AE_IFCHR | 0644, NULL,
                        "failed to unzip skill: unsupported entry type: chr (character device)");
    check_entry_refused(f, false, "blk", AE_IFBLK | 0644, NULL,
                        "failed to unzip skill: unsupported entry type: blk (block device)");
    check_entry_refused(f, false, "fifo", AE_IFIFO | 0644, NULL,
                        "failed to unzip skill: unsupported entry type: fifo (fifo)");
}

static void test_names_that_leave_the_skill_are_refused(void **state)
{
    struct fixture *f = *state;

    check_entry_refused(f, true, "../x", AE_IFREG | 0644, NULL,
                        "failed to unzip skill: invalid file path in zip: ../x");
    check_entry_refused(f, false, "/abs", AE_IFREG | 0644, NULL,
                        "failed to unzip skill: invalid file path in zip: /abs");
    check_entry_refused(f, true, "a/../../x", AE_IFREG | 0644, NULL,
                        "failed to unzip skill: invalid file path in zip: a/../../x");
    check_entry_refused(f, false, "..", AE_IFDIR | 0755, NULL,
                        "failed to unzip skill: invalid file path in zip: ../");
}

static void test_names_are_cleaned_and_dot_dot_foo_is_a_name(void **state)
{
    struct fixture *f = *state;
    struct arc w;

    arc_begin(&w, true);
    arc_add(&w, "./", AE_IFDIR | 0700, NULL, NULL);
    arc_add(&w, "a/../b.txt", AE_IFREG | 0644, "b", NULL);
    arc_add(&w, "..foo", AE_IFREG | 0644, "foo", NULL);
    arc_add(&w, "x//y/./z", AE_IFREG | 0644, "z", NULL);
    arc_add(&w, "dup", AE_IFREG | 0644, "first", NULL);
    arc_add(&w, "dup", AE_IFREG | 0644, "second", NULL);
    arc_end(&w);
    assert_int_equal(install(f, &w, ""), 0);
    free(w.buf);
    assert_file(f, "skill/b.txt", "b", 0644);
    assert_file(f, "skill/..foo", "foo", 0644);
    assert_file(f, "skill/x/y/z", "z", 0644);
    assert_file(f, "skill/dup", "second", 0644);
    assert_file(f, "skill/.checksum", "", 0644);
    assert_false(exists(f, "skill/a"));
}

/* A read-only directory entry before its own contents does not block them: directory
 * modes come last. */
static void test_directory_modes_are_applied_after_their_contents(void **state)
{
    struct fixture *f = *state;
    struct arc w;
    struct stat st;
    char path[PATH_MAX + 16];

    arc_begin(&w, false);
    arc_add(&w, "ro/", AE_IFDIR | 0555, NULL, NULL);
    arc_add(&w, "ro/inner/", AE_IFDIR | 0500, NULL, NULL);
    arc_add(&w, "ro/inner/f", AE_IFREG | 06755, "f", NULL);
    arc_end(&w);
    assert_int_equal(install(f, &w, "c"), 0);
    free(w.buf);
    assert_file(f, "skill/ro/inner/f", "f", 0755); /* setuid and setgid dropped */
    snprintf(path, sizeof(path), "%s/skill/ro", f->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0555);
    snprintf(path, sizeof(path), "%s/skill/ro/inner", f->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0500);
    /* and such a tree is replaced (removed) like any other */
    build_skill(&w, false, "v2");
    assert_int_equal(install(f, &w, "c2"), 0);
    free(w.buf);
    assert_false(exists(f, "skill/ro"));
    assert_no_sibling(f);
}

/* Counted as they come (a tar.gz has no directory up front; the default 20,000 against
 * 20,001 entries: test_96_ops_skill.py). */
static void test_more_entries_than_the_limit_are_refused(void **state)
{
    struct fixture *f = *state;
    struct arc w;
    char name[32];

    f->job.limits.max_entries = 300;
    arc_begin(&w, false);
    for (int i = 0; i < 301; i++) {
        snprintf(name, sizeof(name), i % 2 == 0 ? "d%d/f%d" : "d%d/", i % 10, i);
        arc_add(&w, name, i % 2 == 0 ? AE_IFREG | 0644 : AE_IFDIR | 0755, NULL, NULL);
    }
    arc_end(&w);
    check_refused(f, &w, ERR_TOO_LARGE, "failed to unzip skill: too many entries (limit 300)");
}

static void test_exactly_the_entry_limit_is_accepted(void **state)
{
    struct fixture *f = *state;
    struct arc w;

    f->job.limits.max_entries = 3;
    arc_begin(&w, false);
    arc_add(&w, "a", AE_IFREG | 0644, "a", NULL);
    arc_add(&w, "d/", AE_IFDIR | 0755, NULL, NULL);
    arc_add(&w, "d/b", AE_IFREG | 0644, "b", NULL);
    arc_end(&w);
    assert_int_equal(install(f, &w, "c"), 0);
    free(w.buf);
}

static void check_bomb(struct fixture *f, bool zip)
{
    struct arc w;

    arc_begin(&w, zip);
    arc_add(&w, "SKILL.md", AE_IFREG | 0644, "bomb", NULL);
    arc_add_zeros(&w, "zeros.bin", 4u << 20);
    arc_end(&w);
    /* deflate reaches about 1030:1 on zeros: a bound of 100 is well below it */
    f->job.limits.max_ratio = 100;
    check_refused(f, &w, ERR_TOO_LARGE,
                  "failed to unzip skill: compression ratio too high: zeros.bin (limit 100)");
}

static void test_a_zip_bomb_is_refused_by_its_ratio(void **state)
{
    check_bomb(*state, true);
}

static void test_a_tar_gz_bomb_is_refused_by_its_ratio(void **state)
{
    check_bomb(*state, false);
}

static void test_well_compressed_small_files_are_no_bomb(void **state)
{
    struct fixture *f = *state;
    struct arc w;

    f->job.limits.max_ratio = 2;
    arc_begin(&w, true);
    arc_add_zeros(&w, "small.bin", SKILL_RATIO_FLOOR);
    arc_end(&w);
    assert_int_equal(install(f, &w, "c"), 0);
    free(w.buf);
}

static void test_a_file_over_the_size_limit_is_an_error_not_a_cut(void **state)
{
    struct fixture *f = *state;
    struct arc w;

    f->job.limits.max_file_bytes = 4;
    arc_begin(&w, true);
    arc_add(&w, "ok.txt", AE_IFREG | 0644, "1234", NULL);
    arc_add(&w, "big.txt", AE_IFREG | 0644, "12345", NULL);
    arc_end(&w);
    check_refused(f, &w, ERR_TOO_LARGE,
                  "failed to unzip skill: file too large: big.txt (limit 4 bytes)");
}

static void test_an_archive_over_the_total_limit_is_refused(void **state)
{
    struct fixture *f = *state;
    struct arc w;

    f->job.limits.max_total_bytes = 8;
    arc_begin(&w, false);
    arc_add(&w, "a.txt", AE_IFREG | 0644, "12345", NULL);
    arc_add(&w, "b.txt", AE_IFREG | 0644, "6789", NULL);
    arc_end(&w);
    check_refused(f, &w, ERR_TOO_LARGE, "failed to unzip skill: archive too large (limit 8 bytes)");
}

static void test_a_file_where_a_directory_is_needed_fails_cleanly(void **state)
{
    struct fixture *f = *state;
    struct arc w;

    arc_begin(&w, true);
    arc_add(&w, "a", AE_IFREG | 0644, "file", NULL);
    arc_add(&w, "a/b", AE_IFREG | 0644, "under a file", NULL);
    arc_end(&w);
    check_refused(f, &w, -ENOTDIR, "failed to unzip skill: failed to create parent directory: "
                                   "mkdir /ws/skill/a: not a directory");
}

/* The reader loads a zip's whole central directory before the first entry, however many
 * records its end record claims: more records than the limit are refused before that. */
static void test_a_zip_with_too_many_records_is_refused_before_they_are_read(void **state)
{
    struct skill_archive *ar;
    struct arc w;
    uint8_t *eocd;

    (void)state;
    arc_begin(&w, true);
    arc_add(&w, "a", AE_IFREG | 0644, "a", NULL);
    arc_add(&w, "b", AE_IFREG | 0644, "b", NULL);
    arc_add(&w, "c", AE_IFREG | 0644, "c", NULL);
    arc_end(&w);
    assert_int_equal(skill_archive_open(w.buf, w.used, 3, &ar), 0);
    skill_archive_free(ar);
    assert_int_equal(skill_archive_open(w.buf, w.used, 2, &ar), ERR_TOO_LARGE);
    /* an end record that claims one entry changes nothing: the records are counted */
    eocd = w.buf + w.used - 22;
    assert_memory_equal(eocd, "PK\x05\x06", 4);
    eocd[8] = eocd[10] = 1;
    eocd[9] = eocd[11] = 0;
    assert_int_equal(skill_archive_open(w.buf, w.used, 2, &ar), ERR_TOO_LARGE);
    free(w.buf);
}

static void test_what_is_neither_zip_nor_tar_gz_is_not_a_valid_zip(void **state)
{
    struct skill_archive *ar;
    static const uint8_t junk[] = "this is no archive at all";
    struct arc w;

    (void)state;
    assert_int_equal(skill_archive_open(junk, sizeof(junk), 20000, &ar), ERR_INVALID);
    assert_int_equal(skill_archive_open(junk, 0, 20000, &ar), ERR_INVALID);
    /* a plain tar (not gzip'd) is not one of the platform's formats */
    arc_begin(&w, false);
    assert_int_equal(archive_write_free(w.a), ARCHIVE_OK);
    assert_non_null(w.a = archive_write_new());
    assert_int_equal(archive_write_set_format_pax_restricted(w.a), ARCHIVE_OK);
    assert_int_equal(archive_write_open_memory(w.a, w.buf, ARC_CAP, &w.used), ARCHIVE_OK);
    arc_add(&w, "a", AE_IFREG | 0644, "a", NULL);
    arc_end(&w);
    assert_int_equal(skill_archive_open(w.buf, w.used, 20000, &ar), ERR_INVALID);
    free(w.buf);
}

static void test_an_empty_zip_installs_an_empty_skill(void **state)
{
    struct fixture *f = *state;
    struct arc w;

    arc_begin(&w, true);
    arc_end(&w);
    assert_int_equal(install(f, &w, "c"), 0);
    free(w.buf);
    assert_file(f, "skill/.checksum", "c", 0644);
}

static void test_a_cancelled_install_leaves_the_old_skill(void **state)
{
    struct fixture *f = *state;
    atomic_bool cancel;
    struct arc w;

    atomic_init(&cancel, true);
    f->job.cancel = &cancel;
    build_skill(&w, false, "v2");
    check_refused(f, &w, -ECANCELED, NULL);
}

static void test_a_deep_tree_is_removed_with_one_directory_open(void **state)
{
    struct fixture *f = *state;
    char path[PATH_MAX + 16];
    int fd, next;

    assert_int_equal(mkdirat(f->fd, "skill", 0755), 0);
    fd = openat(f->fd, "skill", O_RDONLY | O_DIRECTORY);
    /* deeper than PATH_MAX allows a path to name */
    for (int i = 0; i < 1500; i++) {
        assert_int_equal(mkdirat(fd, "dddd", 0755), 0);
        assert_int_equal(close(openat(fd, "file", O_WRONLY | O_CREAT, 0644)), 0);
        assert_int_equal(symlinkat("/etc", fd, "link"), 0);
        next = openat(fd, "dddd", O_RDONLY | O_DIRECTORY);
        assert_true(next >= 0);
        close(fd);
        fd = next;
    }
    assert_int_equal(fchmod(fd, 0500), 0);
    close(fd);
    assert_int_equal(skill_remove_tree(f->fd, "skill"), 0);
    assert_false(exists(f, "skill"));
    snprintf(path, sizeof(path), "/etc/passwd");
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(skill_remove_tree(f->fd, "skill"), 0); /* gone already: fine */
}

/* What another task could do meanwhile: a symlink planted in the directory being extracted
 * into, as a parent and as a file, pointing out of it. Neither is followed. */
static void test_a_symlink_planted_in_the_extraction_root_is_never_followed(void **state)
{
    struct fixture *f = *state;
    struct skill_archive *ar;
    struct arc w;
    int rootfd;

    assert_int_equal(mkdirat(f->fd, "out", 0755), 0);
    assert_int_equal(mkdirat(f->fd, "root", 0755), 0);
    assert_true((rootfd = openat(f->fd, "root", O_RDONLY | O_DIRECTORY)) >= 0);
    assert_int_equal(symlinkat("../out", rootfd, "d"), 0);
    assert_int_equal(symlinkat("../out/g", rootfd, "g"), 0);
    arc_begin(&w, true);
    arc_add(&w, "d/f", AE_IFREG | 0644, "through a link", NULL);
    arc_end(&w);
    assert_int_equal(skill_archive_open(w.buf, w.used, 20000, &ar), 0);
    assert_int_equal(skill_extract(ar, rootfd, &f->job), -ENOTDIR);
    assert_string_equal(f->job.error, "failed to unzip skill: failed to create parent directory: "
                                      "mkdir /ws/skill/d: not a directory");
    skill_archive_free(ar);
    free(w.buf);
    arc_begin(&w, false);
    arc_add(&w, "g", AE_IFREG | 0644, "through a link", NULL);
    arc_end(&w);
    assert_int_equal(skill_archive_open(w.buf, w.used, 20000, &ar), 0);
    assert_int_equal(skill_extract(ar, rootfd, &f->job), -ELOOP);
    assert_string_equal(f->job.error, "failed to unzip skill: failed to extract g: "
                                      "open /ws/skill/g: too many levels of symbolic links");
    skill_archive_free(ar);
    free(w.buf);
    assert_false(exists(f, "out/f"));
    assert_false(exists(f, "out/g"));
    close(rootfd);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_a_zip_skill_is_installed_with_its_modes_and_checksum),
        T(test_a_tar_gz_skill_is_installed_with_its_modes_and_checksum),
        T(test_a_new_skill_replaces_the_old_one_whole),
        T(test_links_devices_and_fifos_are_refused_naming_the_entry),
        T(test_names_that_leave_the_skill_are_refused),
        T(test_names_are_cleaned_and_dot_dot_foo_is_a_name),
        T(test_directory_modes_are_applied_after_their_contents),
        T(test_more_entries_than_the_limit_are_refused),
        T(test_exactly_the_entry_limit_is_accepted),
        T(test_a_zip_bomb_is_refused_by_its_ratio),
        T(test_a_tar_gz_bomb_is_refused_by_its_ratio),
        T(test_well_compressed_small_files_are_no_bomb),
        T(test_a_file_over_the_size_limit_is_an_error_not_a_cut),
        T(test_an_archive_over_the_total_limit_is_refused),
        T(test_a_file_where_a_directory_is_needed_fails_cleanly),
        T(test_a_zip_with_too_many_records_is_refused_before_they_are_read),
        T(test_what_is_neither_zip_nor_tar_gz_is_not_a_valid_zip),
        T(test_an_empty_zip_installs_an_empty_skill),
        T(test_a_cancelled_install_leaves_the_old_skill),
        T(test_a_deep_tree_is_removed_with_one_directory_open),
        T(test_a_symlink_planted_in_the_extraction_root_is_never_followed),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
