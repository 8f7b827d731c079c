/*
 * skill.h - a skill archive installed as one directory, all or nothing (RUNNER-OPS.md
 * section 10): the extractor (skill_extract.c) and the swap (skill.c). The task op around
 * it (args, base64, the path of skill_dir) is fileop_skill.c.
 *
 * The archive is a zip (libarchive's seekable reader: the central directory, as Go's
 * archive/zip reads it) or a gzip'd tar. It is extracted into a new hidden sibling of the
 * skill directory through that directory's descriptor only: every name cleaned and every
 * component opened with O_NOFOLLOW, links, devices, FIFOs and sockets refused, sizes, the
 * entry count and each entry's compression ratio bounded while the bytes arrive. Then the
 * sibling is swapped in with renameat2(RENAME_EXCHANGE) and the old tree removed. A failure
 * or a cancel at any point removes the sibling and leaves the old skill as it was.
 *
 * Not for: finding skill_dir (wspath.h) or Go's texts around it (fileop_skill.c).
 */
#ifndef CREDBROKER_SKILL_H
#define CREDBROKER_SKILL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SKILL_ERROR_MAX 1024
/* An entry's ratio is only judged past this many extracted bytes: small files that
 * compress well are no bomb. */
#define SKILL_RATIO_FLOOR (1024 * 1024)

struct skill_archive;

struct skill_limits {
    uint64_t max_file_bytes;  /* one entry's extracted bytes (100 MiB) */
    uint64_t max_total_bytes; /* all entries' extracted bytes (512 MiB) */
    uint64_t max_entries;     /* entries of every kind (20,000) */
    uint64_t max_ratio;       /* extracted bytes per compressed byte, per entry (1000) */
};

/* One installation's settings and outcome. */
struct skill_job {
    struct skill_limits limits;
    mode_t umask;               /* the process's, for the directories' modes (files get it
                                 * from the kernel) */
    const atomic_bool *cancel;  /* polled between entries and chunks; NULL: never */
    const char *shown;          /* the skill directory's absolute path, for messages */
    char error[SKILL_ERROR_MAX];  /* on failure: Go's text ("failed to unzip skill: ...") */
};

/*
 * Opens an archive held in data[0..len) (borrowed until skill_archive_free) and reads its
 * first header: a zip, or a tar when data starts with gzip's magic. Returns 0 and *out
 * (free with skill_archive_free), ERR_INVALID when it is neither (Go's "zip: not a valid
 * zip file"), ERR_TOO_LARGE when a zip could hold more than max_entries central-directory
 * records (refused before the reader loads them all), or ERR_NOMEM.
 */
int skill_archive_open(const uint8_t *data, size_t len, uint64_t max_entries,
                       struct skill_archive **out);
/* Accepts NULL. */
void skill_archive_free(struct skill_archive *ar);

/*
 * Extracts every entry of ar (opened, not read further yet) into the empty directory
 * rootfd, then applies the directory entries' modes. Returns 0, -ECANCELED (job->cancel
 * set; nothing in job->error), or another negative code with job->error set. What was
 * written stays: the caller removes rootfd's tree.
 */
int skill_extract(struct skill_archive *ar, int rootfd, struct skill_job *job);

/*
 * The whole installation of ar as parentfd/name: a sibling `.<name>.tmp-<random>`
 * (0755) extracted into, `.checksum` (checksum, 0644) written in it, then swapped for
 * name (RENAME_EXCHANGE) or renamed to it (RENAME_NOREPLACE), and the old tree removed.
 * Returns 0, -ECANCELED, or another negative code with job->error set; on any failure the
 * sibling is gone and name is as it was.
 */
int skill_install(struct skill_archive *ar, int parentfd, const char *name, const char *checksum,
                  struct skill_job *job);

/*
 * Removes parentfd/name and everything under it without following a symlink, holding one
 * directory open at a time (so any depth). A name that is not there is success. Returns
 * 0 or -errno (what could be removed is gone).
 */
int skill_remove_tree(int parentfd, const char *name);

#endif
