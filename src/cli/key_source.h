/*
 * key_source.h - reading the key from where the user keeps it: a file that only
 * its owner can read, an inherited fd (3 or above), or an environment variable
 * (which is then wiped and removed). Never from argv.
 */
#ifndef CREDBROKER_KEY_SOURCE_H
#define CREDBROKER_KEY_SOURCE_H

#include <stddef.h>

struct secret;

/*
 * Each returns 0 and a validated key in the secret arena in *out (caller frees),
 * or a negative code with a one-line reason in err (never containing the key).
 * One trailing "\n" or "\r\n" is not part of the key.
 */
int key_from_file(const char *path, struct secret **out, char *err, size_t errlen);
int key_from_fd(const char *fd_text, struct secret **out, char *err, size_t errlen);
int key_from_env(const char *name, struct secret **out, char *err, size_t errlen);

#endif
