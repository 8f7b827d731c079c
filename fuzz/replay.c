/*
 * replay.c - a main() that runs a harness over files, the way libFuzzer runs a
 * corpus: `fuzz_http1_replay fuzz/corpus/http1 crash-1234` calls
 * LLVMFuzzerTestOneInput once per regular file in each directory (in name
 * order) and once per file named directly.
 *
 * This is what `meson test --suite fuzz` runs, in every build (gcc included,
 * no libFuzzer needed), so the committed corpus is a fast regression check and
 * a reproducer from scripts/fuzz can be replayed under gdb or valgrind. A
 * property failure aborts inside the harness; the file being run was named on
 * stderr just before. Exits 0 when every input ran, 1 if an argument could not
 * be read or held no input at all.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Larger inputs are not corpus entries; refuse rather than allocate without bound. */
#define REPLAY_MAX_INPUT (16u * 1024 * 1024)

/* Reads path into an exactly sized heap block (ASan sees any read past it). */
static int replay_read(const char *path, uint8_t **out, size_t *len)
{
    FILE *f;
    struct stat st;
    uint8_t *p;
    size_t n;

    *out = NULL;
    *len = 0;
    if ((f = fopen(path, "rb")) == NULL)
        return -errno;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0 || (uint64_t)st.st_size > REPLAY_MAX_INPUT) {
        fclose(f);
        return -EFBIG;
    }
    n = (size_t)st.st_size;
    if ((p = malloc(n > 0 ? n : 1)) == NULL) {
        fclose(f);
        return -ENOMEM;
    }
    if (n > 0 && fread(p, 1, n, f) != n) {
        free(p);
        fclose(f);
        return -EIO;
    }
    fclose(f);
    *out = p;
    *len = n;
    return 0;
}

static int replay_file(const char *path)
{
    uint8_t *data;
    size_t len;
    int r;

    if ((r = replay_read(path, &data, &len)) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(-r));
        return -1;
    }
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
    (void)LLVMFuzzerTestOneInput(data, len);
    free(data);
    return 0;
}

static int skip_dots(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

/* Runs every regular file in dir; returns how many, or -1. */
static int replay_dir(const char *dir)
{
    struct dirent **names;
    int n, ran = 0, failed = 0;

    if ((n = scandir(dir, &names, skip_dots, alphasort)) < 0) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        int w = snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);

        if (w < 0 || (size_t)w >= sizeof(path)) {
            fprintf(stderr, "replay: %s/%s: name too long\n", dir, names[i]->d_name);
            failed = 1;
        } else if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (replay_file(path) != 0)
                failed = 1;
            else
                ran++;
        }
        free(names[i]);
    }
    free(names);
    return failed ? -1 : ran;
}

int main(int argc, char **argv)
{
    int total = 0, status = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        struct stat st;
        int n;

        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            status = 1;
            continue;
        }
        n = S_ISDIR(st.st_mode) ? replay_dir(argv[i]) : (replay_file(argv[i]) == 0 ? 1 : -1);
        if (n <= 0) {
            if (n == 0)
                fprintf(stderr, "replay: %s: no input\n", argv[i]);
            status = 1;
            continue;
        }
        total += n;
    }
    printf("replayed %d input%s\n", total, total == 1 ? "" : "s");
    return status;
}
