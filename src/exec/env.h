/*
 * env.h - the command's environment: the parent's, minus every variable that
 * carries a secret of the broker (by name, and by value: env_deny_secret), plus the
 * broker's own variables.
 */
#ifndef CREDBROKER_ENV_H
#define CREDBROKER_ENV_H

#include <stddef.h>

/* Variables never passed to a command (fnmatch patterns). */
extern const char *const env_default_deny[];

struct env;

struct secret;

/* Starts from a copy of src (e.g. environ). Returns NULL on allocation failure. */
struct env *env_new(char *const *src);
/* A command's base environment: a copy of src minus env_default_deny and every
 * pattern of deny[0..ndeny). Returns NULL on allocation failure. */
struct env *env_new_for_command(char *const *src, const char *const *deny, size_t ndeny);
/* Frees e, wiping every variable (one may carry a key on the legacy path). Accepts NULL. */
void env_free(struct env *e);
/* Removes every variable whose name, of any length, matches the fnmatch pattern;
 * one that fnmatch fails on is removed too (fail closed). Cannot fail. */
void env_deny(struct env *e, const char *pattern);
/*
 * Removes every variable that holds the bytes of s anywhere (a user who exported the key
 * under another name, a CI system that sets it twice), logging a warning for each with
 * its name, never its value (nor its name, if the name holds them). what says whose
 * secret it is ("the key"). A secret under 8 bytes is looked for as a whole value only.
 * Returns how many were removed. Cannot fail.
 */
size_t env_deny_secret(struct env *e, const struct secret *s, const char *what);
/* Sets NAME=value, replacing an existing NAME. Returns 0 or ERR_NOMEM. */
int env_set(struct env *e, const char *name, const char *value);
/* Sets NAME to the bytes of a secret (the legacy path), with no other copy made. */
int env_set_secret(struct env *e, const char *name, const struct secret *s);
/* The NULL-terminated array for execve; owned by e. */
char *const *env_array(const struct env *e);

/*
 * Takes the value of NAME out of the process environment: copies it to *value
 * (caller frees, wiping it), wipes the bytes in the environment block itself (so
 * /proc/self/environ no longer shows them) and unsets NAME. Returns 0, -ENOENT,
 * or ERR_NOMEM.
 */
int env_take(const char *name, char **value, size_t *len);

#endif
