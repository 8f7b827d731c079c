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
 *
 * The same input is then read as an environment (config_apply_env over what
 * the file left): every line that starts with FLASHDUTY_RUNNER_ is one
 * "NAME=value" entry, in order, so the newer runner's names (TOKEN, URL,
 * WORKSPACE) meet the config-era ones. Properties: it returns 0 or a negative
 * code; an error is one line that starts with the variable's name and holds the
 * key only if the input does; the warnings it notes (c.notes) are at most
 * CONFIG_NOTES_MAX, each one of the three fixed texts (so never a value).
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"
#include "secret.h"

#define KEY "0123456789abcdefFEDCBA9876543210"
#define KEY_LINE "api_key: " KEY "\n"
#define ENV_PREFIX "FLASHDUTY_RUNNER_"
#define ENV_MAX 64 /* entries taken from one input */

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

/*
 * The input's lines that start with ENV_PREFIX, NUL-terminated in text (a copy of
 * the input with every '\n' made '\0'), as a NULL-terminated envp.
 */
static void env_from_lines(char *text, size_t size, char **envp)
{
    size_t n = 0;
    char *p = text, *end = text + size;

    while (p < end && n < ENV_MAX) {
        size_t len = strlen(p); /* stops at a '\n' made '\0', or at a NUL of the input */

        if (strncmp(p, ENV_PREFIX, sizeof(ENV_PREFIX) - 1) == 0)
            envp[n++] = p;
        p += len + 1;
    }
    envp[n] = NULL;
}

static void check_env(struct runner_config *c, const uint8_t *data, size_t size)
{
    static const char *const notes[] = {
        ENV_PREFIX "TOKEN and " ENV_PREFIX "API_KEY are both set and differ: using " ENV_PREFIX
                   "TOKEN",
        ENV_PREFIX "URL and " ENV_PREFIX "API_URL are both set and differ: using " ENV_PREFIX "URL",
        ENV_PREFIX "WORKSPACE and " ENV_PREFIX
                   "WORKSPACE_ROOT are both set and differ: using " ENV_PREFIX "WORKSPACE",
    };
    char *envp[ENV_MAX + 1], *text, err[512];
    bool key_in_input = memmem(data, size, KEY, sizeof(KEY) - 1) != NULL;
    int r;

    text = malloc(size + 1);
    FUZZ_CHECK(text != NULL, "malloc");
    memcpy(text, data, size);
    text[size] = '\0';
    for (size_t i = 0; i < size; i++) {
        if (text[i] == '\n')
            text[i] = '\0';
    }
    env_from_lines(text, size, envp);
    memset(err, 'x', sizeof(err));
    r = config_apply_env(c, envp, err, sizeof(err));
    FUZZ_CHECK(r <= 0, "config_apply_env returned %d", r);
    if (r != 0) {
        size_t elen = strnlen(err, sizeof(err));

        FUZZ_CHECK(elen > 0 && elen < sizeof(err), "env error text not terminated or empty");
        FUZZ_CHECK(strpbrk(err, "\r\n") == NULL, "env error text is not one line: %s", err);
        FUZZ_CHECK(strncmp(err, ENV_PREFIX, sizeof(ENV_PREFIX) - 1) == 0,
                   "env error does not name the variable: %s", err);
        if (!key_in_input)
            FUZZ_CHECK(strstr(err, KEY) == NULL, "the key is in the env error: %s", err);
    }
    FUZZ_CHECK(c->nnotes <= CONFIG_NOTES_MAX, "%zu notes", c->nnotes);
    for (size_t i = 0; i < c->nnotes; i++) {
        const char *note = c->notes[i];

        bool known = false;

        /* Only fixed texts, so no value can be in one. */
        for (size_t j = 0; j < sizeof(notes) / sizeof(notes[0]); j++)
            known = known || strcmp(note, notes[j]) == 0;
        FUZZ_CHECK(known, "an unexpected note: %.200s", note);
    }
    explicit_bzero(text, size);
    free(text);
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
    check_env(&c, data, size);
    config_free(&c);
    FUZZ_CHECK(secret_live_count() == live, "config_free left %zu secret(s) alive",
               secret_live_count() - live);
    return 0;
}
