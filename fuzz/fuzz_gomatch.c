/*
 * fuzz_gomatch.c - gomatch (gomatch.h), Go's filepath.Match, which list applies to the
 * ignore patterns a platform sends.
 *
 * Input: [n][pattern: n bytes][name: the rest], both cut at a NUL.
 *
 * Properties: it returns for any pattern; a name without '/' matches "*" and its own
 * escaped form ("\\" before every byte: a literal), which matches no longer name; and
 * when the pattern matches the name, the pattern with "*" added matches the name with
 * anything added that has no '/'.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "gomatch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n = size > 0 ? data[0] : 0, len;
    char *pattern, *name, *escaped, *longer, *starred;
    bool slash;

    if (size < 1 || n > size - 1)
        return 0;
    pattern = fuzz_cstr(data + 1, n);
    name = fuzz_cstr(data + 1 + n, size - 1 - n);
    len = strlen(name);
    slash = strchr(name, '/') != NULL;
    (void)gomatch(pattern, name);

    FUZZ_CHECK(gomatch("*", name) == !slash, "\"*\" against a name %s '/'",
               slash ? "with" : "without");
    escaped = malloc(2 * len + 1);
    longer = malloc(len + 2);
    starred = malloc(strlen(pattern) + 2);
    FUZZ_CHECK(escaped != NULL && longer != NULL && starred != NULL, "out of memory");
    for (size_t i = 0; i < len; i++) {
        escaped[2 * i] = '\\';
        escaped[2 * i + 1] = name[i];
    }
    escaped[2 * len] = '\0';
    snprintf(longer, len + 2, "%sx", name);
    FUZZ_CHECK(gomatch(escaped, name), "the escaped name does not match itself");
    FUZZ_CHECK(!gomatch(escaped, longer), "the escaped name matches a longer one");
    if (gomatch(pattern, name) && !slash) {
        snprintf(starred, strlen(pattern) + 2, "%s*", pattern);
        FUZZ_CHECK(gomatch(starred, longer), "pattern* does not match name + more");
    }
    free(pattern);
    free(name);
    free(escaped);
    free(longer);
    free(starred);
    return 0;
}
