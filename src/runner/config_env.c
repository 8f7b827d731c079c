/*
 * config_env.c - the runner's configuration from the environment (FLASHDUTY_RUNNER_*,
 * and the newer Go runner's three names) and from flags (config_set). See config.h.
 * Both end in config.c's one setter, as the YAML file does.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "config_internal.h"
#include "err.h"
#include "secret.h"

/*
 * The newer Go runner's variables (RUNNER-OPS.md 11): other names for three
 * config-era keys. They are applied after every other variable, so that they
 * win over the config-era name of the same key whatever the order of envp.
 */
static const struct {
    const char *name;  /* after CONFIG_ENV_PREFIX */
    const char *older; /* the config-era variable of the same key, after the prefix */
    const char *key;
    const char *note; /* when both are set and differ */
} newer_env[] = {
    {"TOKEN", "API_KEY", "api_key",
     CONFIG_ENV_PREFIX "TOKEN and " CONFIG_ENV_PREFIX "API_KEY are both set and differ: "
                       "using " CONFIG_ENV_PREFIX "TOKEN"},
    {"URL", "API_URL", "api_url",
     CONFIG_ENV_PREFIX "URL and " CONFIG_ENV_PREFIX "API_URL are both set and differ: "
                       "using " CONFIG_ENV_PREFIX "URL"},
    {"WORKSPACE", "WORKSPACE_ROOT", "workspace_root",
     CONFIG_ENV_PREFIX "WORKSPACE and " CONFIG_ENV_PREFIX "WORKSPACE_ROOT are both set and "
                       "differ: using " CONFIG_ENV_PREFIX "WORKSPACE"},
};

#define NNEWER_ENV (sizeof(newer_env) / sizeof(newer_env[0]))

void config_note(struct runner_config *c, const char *text)
{
    for (size_t i = 0; i < c->nnotes; i++) {
        if (c->notes[i] == text || strcmp(c->notes[i], text) == 0)
            return;
    }
    if (c->nnotes < CONFIG_NOTES_MAX)
        c->notes[c->nnotes++] = text;
}

/* The newer_env[] entry whose variable is name[0..len) (after the prefix), or -1. */
static int find_newer_env(const char *name, size_t len, bool older)
{
    for (size_t i = 0; i < NNEWER_ENV; i++) {
        const char *n = older ? newer_env[i].older : newer_env[i].name;

        if (strlen(n) == len && memcmp(n, name, len) == 0)
            return (int)i;
    }
    return -1;
}

/* Whether key d holds value[0..len) now (constant time for the token). */
static bool holds_value(const struct runner_config *c, const struct key_def *d, const char *value,
                        size_t len)
{
    const char *cur;

    if (d->kind == KIND_SECRET)
        return c->api_key != NULL && secret_equals(c->api_key, value, len);
    cur = *(char *const *)config__field_const(c, d);
    return cur != NULL && strlen(cur) == len && memcmp(cur, value, len) == 0;
}

int config_apply_env(struct runner_config *c, char *const *envp, char *err, size_t errlen)
{
    const size_t plen = sizeof(CONFIG_ENV_PREFIX) - 1;
    char origin[128];
    struct where w = {err, errlen, origin};
    bool older_set[NNEWER_ENV] = {false};
    int r;

    if (errlen > 0)
        err[0] = '\0';
    /* Pass 0: every variable but the newer names; pass 1: the newer names, so that they win. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; envp != NULL && envp[i] != NULL; i++) {
            const char *e = envp[i], *eq, *value, *name;
            const struct key_def *d;
            size_t nlen;
            int newer, older;

            if (strncmp(e, CONFIG_ENV_PREFIX, plen) != 0 || (eq = strchr(e, '=')) == NULL)
                continue;
            value = eq + 1;
            if (*value == '\0')
                continue; /* unset, as viper (and the newer runner's os.Getenv) treat it */
            name = e + plen;
            nlen = (size_t)(eq - name);
            newer = find_newer_env(name, nlen, false);
            if ((pass == 0) != (newer < 0))
                continue;
            /* A name may hold any byte but '=': shown like a value, so that err stays one line. */
            config__shown(origin, sizeof(origin), e, (size_t)(eq - e));
            if (newer >= 0) {
                d = config__find_key(newer_env[newer].key, strlen(newer_env[newer].key));
                /* The config-era name set this layer's value in pass 0. */
                if (older_set[newer] && !holds_value(c, d, value, strlen(value)))
                    config_note(c, newer_env[newer].note);
            } else {
                d = config__find_env_key(name, nlen);
                if ((older = find_newer_env(name, nlen, true)) >= 0)
                    older_set[older] = true;
            }
            if (d == NULL)
                return config__fail(&w, NULL, ERR_INVALID,
                                    "unknown variable: no configuration key has this name");
            if ((r = config__set_text(c, d, value, strlen(value), &w)) != 0)
                return r;
        }
    }
    return 0;
}

int config_set(struct runner_config *c, const char *dotted_key, const char *value,
               const char *origin, char *err, size_t errlen)
{
    struct where w = {err, errlen, origin != NULL ? origin : "config_set"};
    char q[CONFIG_SHOWN_MAX + 4];
    const struct key_def *d;
    size_t len = strlen(dotted_key);

    if (errlen > 0)
        err[0] = '\0';
    if (len > CONFIG_KEY_MAX || (d = config__find_key(dotted_key, len)) == NULL)
        return config__fail(&w, config__shown(q, sizeof(q), dotted_key, len), ERR_INVALID,
                            "unknown key");
    if (d->kind == KIND_SECRET)
        return config__fail(
            &w, d->key, ERR_INVALID,
            "cannot be given on the command line, where every user can read it in ps: "
            "use " CONFIG_ENV_PREFIX "TOKEN, the config file or " CONFIG_ENV_PREFIX "API_KEY");
    if (value == NULL)
        return config__fail(&w, d->key, ERR_INVALID, "needs a value");
    return config__set_text(c, d, value, strlen(value), &w);
}
