/*
 * env.c - see env.h.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "err.h"
#include "log.h"
#include "secret.h"

/* Shorter secrets are matched as a whole value only (env_deny_secret). */
#define ENV_SECRET_MIN_INSIDE 8

/* The broker's own secrets and variables it sets itself. */
const char *const env_default_deny[] = {
    "FLASHDUTY_APP_KEY",
    "FLASHDUTY_RUNNER_API_KEY",
    "FLASHDUTY_CRED_FD",
    "FLASHDUTY_BASE_URL",
    NULL,
};

struct env {
    char **vars;
    size_t n, alloc;
};

static int env__grow(struct env *e)
{
    size_t na;
    char **nv;

    if (e->n + 1 < e->alloc)
        return 0;
    na = e->alloc ? e->alloc * 2 : 64;
    if ((nv = reallocarray(e->vars, na, sizeof(*nv))) == NULL)
        return ERR_NOMEM;
    e->vars = nv;
    e->alloc = na;
    return 0;
}

struct env *env_new(char *const *src)
{
    struct env *e = calloc(1, sizeof(*e));

    if (e == NULL || env__grow(e) != 0)
        goto fail;
    for (; src != NULL && *src != NULL; src++) {
        if (strchr(*src, '=') == NULL)
            continue;
        if (env__grow(e) != 0 || (e->vars[e->n] = strdup(*src)) == NULL)
            goto fail;
        e->n++;
    }
    e->vars[e->n] = NULL;
    return e;
fail:
    env_free(e);
    return NULL;
}

struct env *env_new_for_command(char *const *src, const char *const *deny, size_t ndeny)
{
    struct env *e = env_new(src);

    if (e == NULL)
        return NULL;
    for (const char *const *d = env_default_deny; *d != NULL; d++)
        env_deny(e, *d);
    for (size_t i = 0; i < ndeny; i++)
        env_deny(e, deny[i]);
    return e;
}

static void var_free(char *var)
{
    explicit_bzero(var, strlen(var));
    free(var);
}

void env_free(struct env *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < e->n; i++)
        var_free(e->vars[i]);
    free(e->vars);
    free(e);
}

static size_t name_len(const char *var)
{
    return (size_t)(strchr(var, '=') - var);
}

/*
 * True if var's name matches pattern. fnmatch wants a C string: the '=' that
 * ends the name is set to NUL for the call and put back, so a name of any
 * length is matched with no copy and nothing that could fail to allocate.
 * fnmatch itself may fail (in a multibyte locale it converts to wide
 * characters, with malloc past 1 KiB, and gives up on bytes that are not
 * characters): only FNM_NOMATCH counts as no match, so a failure denies.
 */
static bool name_matches(char *var, const char *pattern)
{
    char *eq = strchr(var, '=');
    int r;

    *eq = '\0';
    r = fnmatch(pattern, var, 0);
    *eq = '=';
    return r != FNM_NOMATCH;
}

static void env__remove(struct env *e, size_t i)
{
    var_free(e->vars[i]);
    memmove(&e->vars[i], &e->vars[i + 1], (e->n - i) * sizeof(char *));
    e->n--;
}

void env_deny(struct env *e, const char *pattern)
{
    size_t i = 0;

    while (i < e->n) {
        if (name_matches(e->vars[i], pattern))
            env__remove(e, i);
        else
            i++;
    }
}

size_t env_deny_secret(struct env *e, const struct secret *s, const char *what)
{
    const uint8_t *bytes = secret_data(s);
    size_t len = secret_len(s), i = 0, removed = 0;

    if (len == 0)
        return 0;
    while (i < e->n) {
        const char *var = e->vars[i];
        size_t nlen = name_len(var), vlen = strlen(var + nlen + 1);
        /* A secret too short to be told from ordinary text (a test token "x") is looked
         * for as a whole value only: inside others it would take TERM and PATH away. */
        const char *at = len >= ENV_SECRET_MIN_INSIDE
                             ? memmem(var, nlen + 1 + vlen, bytes, len)
                             : (vlen == len && memcmp(var + nlen + 1, bytes, len) == 0
                                    ? var + nlen + 1
                                    : NULL);

        if (at == NULL) {
            i++;
            continue;
        }
        if (at < var + nlen)
            log_warn("a variable whose name holds %s was removed from the command's "
                     "environment", what);
        else
            log_warn("variable %.*s holds %s: removed from the command's environment",
                     (int)(nlen < 200 ? nlen : 200), var, what);
        env__remove(e, i);
        removed++;
    }
    return removed;
}

/* Sets NAME=value[0..vlen), replacing an existing NAME. */
static int env__put(struct env *e, const char *name, const void *value, size_t vlen)
{
    size_t nlen = strlen(name);
    char *var;

    if ((var = malloc(nlen + vlen + 2)) == NULL)
        return ERR_NOMEM;
    memcpy(var, name, nlen);
    var[nlen] = '=';
    memcpy(var + nlen + 1, value, vlen);
    var[nlen + 1 + vlen] = '\0';
    for (size_t i = 0; i < e->n; i++) {
        if (name_len(e->vars[i]) == nlen && memcmp(e->vars[i], name, nlen) == 0) {
            var_free(e->vars[i]);
            e->vars[i] = var;
            return 0;
        }
    }
    if (env__grow(e) != 0) {
        free(var);
        return ERR_NOMEM;
    }
    e->vars[e->n++] = var;
    e->vars[e->n] = NULL;
    return 0;
}

int env_set(struct env *e, const char *name, const char *value)
{
    return env__put(e, name, value, strlen(value));
}

int env_set_secret(struct env *e, const char *name, const struct secret *s)
{
    return env__put(e, name, secret_data(s), secret_len(s));
}

char *const *env_array(const struct env *e)
{
    return e->vars;
}

int env_take(const char *name, char **value, size_t *len)
{
    char *v = getenv(name);
    size_t n;

    *value = NULL;
    *len = 0;
    if (v == NULL)
        return -ENOENT;
    n = strlen(v);
    if ((*value = malloc(n + 1)) == NULL)
        return ERR_NOMEM;
    memcpy(*value, v, n + 1);
    *len = n;
    /* The original bytes live in the environment block that /proc/<pid>/environ shows. */
    explicit_bzero(v, n);
    unsetenv(name);
    return 0;
}
