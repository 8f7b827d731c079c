/*
 * fuzz_config.c - the runner's configuration file (config.h: config_load_file,
 * read by config_yaml.c with libyaml's event parser), where the runner's own
 * API key sits beside settings an administrator writes by hand.
 *
 * The input is the rest of a config file whose first line is
 * "api_key: <KEY>" (a fixed 32-byte key); the file is written to a private
 * temporary file (mode 0600) and loaded over the defaults (config_init).
 *
 * Properties: config_load_file never crashes and returns 0 or a negative code;
 * on failure err is one line (no CR, LF or NUL, shorter than its buffer)
 * that starts with the file's path, and the key is not in it unless the input
 * itself carries it (the key's line is always the api_key value, however the
 * rest of the file parses, and errors never quote that value); on success
 * with an input that cannot continue the key's line (it does not start with
 * a blank), the loaded key is exactly KEY; config_free releases every secret
 * it made (the arena's live count is back where it was) and, in the
 * libFuzzer build, LeakSanitizer sees nothing left.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"
#include "secret.h"

#define KEY "0123456789abcdefFEDCBA9876543210"
#define KEY_LINE "api_key: " KEY "\n"

static char path[256];
static int fd = -1;

static void config_file_remove(void)
{
    unlink(path);
}

/* One private file for every run: rewritten in place, mode 0600 (mkstemp's). */
static void config_file_open(void)
{
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");

    if (fd >= 0)
        return;
    snprintf(path, sizeof(path), "%s/fuzz-config-XXXXXX", dir != NULL ? dir : "/tmp");
    fd = mkstemp(path);
    FUZZ_CHECK(fd >= 0, "cannot create %s", path);
    atexit(config_file_remove);
}

static void config_file_write(const uint8_t *data, size_t size)
{
    size_t klen = sizeof(KEY_LINE) - 1;

    FUZZ_CHECK(ftruncate(fd, 0) == 0, "ftruncate");
    FUZZ_CHECK(pwrite(fd, KEY_LINE, klen, 0) == (ssize_t)klen, "pwrite");
    if (size > 0)
        FUZZ_CHECK(pwrite(fd, data, size, (off_t)klen) == (ssize_t)size, "pwrite");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct runner_config c;
    char err[512];
    size_t live = secret_live_count(), elen;
    int r;

    if (size > CONFIG_FILE_MAX / 2)
        return 0;
    config_file_open();
    config_file_write(data, size);
    FUZZ_CHECK(config_init(&c) == 0, "config_init");
    memset(err, 'x', sizeof(err));
    r = config_load_file(&c, path, err, sizeof(err));
    FUZZ_CHECK(r <= 0, "config_load_file returned %d", r);
    elen = strnlen(err, sizeof(err));
    if (r != 0) {
        FUZZ_CHECK(elen > 0 && elen < sizeof(err), "error text not terminated or empty");
        FUZZ_CHECK(strpbrk(err, "\r\n") == NULL, "error text is not one line: %s", err);
        FUZZ_CHECK(strncmp(err, path, strlen(path)) == 0, "error does not name the file: %s",
                   err);
        if (memmem(data, size, KEY, sizeof(KEY) - 1) == NULL)
            FUZZ_CHECK(strstr(err, KEY) == NULL, "the key is in the error: %s", err);
    } else {
        FUZZ_CHECK(elen == 0, "an error text on success: %.100s", err);
        FUZZ_CHECK(c.api_key != NULL, "success without the api_key line's key");
        if (size == 0 || strchr(" \t\r\n", data[0]) == NULL)
            FUZZ_CHECK(secret_equals(c.api_key, KEY, sizeof(KEY) - 1),
                       "the key loaded is not the file's (%zu bytes)", secret_len(c.api_key));
    }
    config_free(&c);
    FUZZ_CHECK(secret_live_count() == live, "config_free left %zu secret(s) alive",
               secret_live_count() - live);
    return 0;
}
