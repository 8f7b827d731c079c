/*
 * route_set.c - the extra routes of a command line or a configuration. See route_set.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "env.h"
#include "err.h"
#include "isolate.h"
#include "key_source.h"
#include "policy.h"
#include "route_set.h"
#include "route_yaml.h"
#include "secret.h"

static int fail(char *why, size_t why_len, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *why, size_t why_len, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
    return code;
}

/* The table of routes, allocated with the first. Returns 0 or ERR_NOMEM (why set). */
static int routes_table(struct route_set *rs, char *why, size_t why_len)
{
    if (rs->v == NULL && (rs->v = calloc(ROUTE_MAX, sizeof(*rs->v))) == NULL)
        return fail(why, why_len, ERR_NOMEM, "%s", err_str(ERR_NOMEM));
    return 0;
}

/* The next free route, allocating the table with the first. */
static struct route_set_entry *routes_next(struct route_set *rs, char *why, size_t why_len)
{
    if (routes_table(rs, why, why_len) != 0)
        return NULL;
    if (rs->n == ROUTE_MAX - 1) {
        fail(why, why_len, ERR_INVALID, "more than %d routes (the default one included)",
             ROUTE_MAX);
        return NULL;
    }
    return &rs->v[rs->n];
}

int route_set_add_spec(struct route_set *rs, const char *text, char *why, size_t why_len)
{
    struct route_set_entry *rt = routes_next(rs, why, why_len);
    int r;

    if (rt == NULL)
        return rs->v == NULL ? ERR_NOMEM : ERR_INVALID;
    if ((r = route_spec_parse(text, &rt->spec, why, why_len)) != 0)
        return r;
    rs->n++;
    return 0;
}

int route_set_adopt(struct route_set *rs, struct route_spec *spec, char *why, size_t why_len)
{
    struct route_set_entry *rt = routes_next(rs, why, why_len);

    if (rt == NULL)
        return rs->v == NULL ? ERR_NOMEM : ERR_INVALID;
    rt->spec = *spec;
    memset(spec, 0, sizeof(*spec));
    rs->n++;
    return 0;
}

/* ---- the routes file ---- */

int route_set_add_file(struct route_set *rs, const char *path, char *why, size_t why_len)
{
    struct route_spec specs[ROUTE_MAX - 1];
    yaml_parser_t parser;
    yaml_event_t ev;
    bool have_ev = false;
    size_t n = 0;
    char detail[400] = "";
    struct route_yaml y = {
        .parser = &parser,
        .ev = &ev,
        .have_ev = &have_ev,
        .out = specs,
        .max = ROUTE_MAX - 1 - rs->n, /* the default route is the last of ROUTE_MAX */
        .n = &n,
        .why = detail,
        .why_len = sizeof(detail),
    };
    FILE *f;
    int r;

    if ((r = routes_table(rs, why, why_len)) != 0)
        return r;
    if ((f = fopen(path, "rb")) == NULL)
        return fail(why, why_len, ERR_INVALID, "--routes %.200s: %s", path, strerror(errno));
    if (!yaml_parser_initialize(&parser)) {
        fclose(f);
        return fail(why, why_len, ERR_NOMEM, "%s", err_str(ERR_NOMEM));
    }
    yaml_parser_set_input_file(&parser, f);
    r = route_yaml_document(&y);
    yaml_parser_delete(&parser);
    fclose(f);
    for (size_t i = 0; i < n; i++) {
        if (r == 0)
            rs->v[rs->n++].spec = specs[i]; /* taken over */
        else
            route_spec_free(&specs[i]);
    }
    return r == 0 ? 0 : fail(why, why_len, r, "--routes %.200s: %s", path, detail);
}

/* ---- checking, keys, environment ---- */

static int read_route_key(struct route_set_entry *rt, char *why, size_t why_len)
{
    char err[400];
    int r;

    switch (rt->spec.key_kind) {
    case ROUTE_KEY_FILE:
        r = key_from_file(rt->spec.key_ref, &rt->key, err, sizeof(err));
        break;
    case ROUTE_KEY_FD:
        r = key_from_fd(rt->spec.key_ref, &rt->key, err, sizeof(err));
        break;
    case ROUTE_KEY_ENV:
        r = key_from_env(rt->spec.key_ref, &rt->key, err, sizeof(err));
        break;
    default:
        return fail(why, why_len, ERR_INVALID,
                    "route %s has no key (key-file=, key-fd= or key-env=)", rt->spec.name);
    }
    return r == 0 ? 0 : fail(why, why_len, r, "route %s: %s", rt->spec.name, err);
}

int route_set_prepare(struct route_set *rs, bool with_default, char *why, size_t why_len)
{
    int r;

    for (size_t i = 0; i < rs->n; i++) {
        struct route_set_entry *rt = &rs->v[i];
        struct policy *policy = NULL;
        char detail[200];

        if (with_default && strcmp(rt->spec.name, ROUTE_DEFAULT_NAME) == 0)
            return fail(why, why_len, ERR_INVALID,
                        "route %s: the name is the default route's (--upstream and --key-*)",
                        rt->spec.name);
        if (with_default && strcmp(rt->spec.env, "FLASHDUTY_BASE_URL") == 0)
            return fail(why, why_len, ERR_INVALID,
                        "route %s: FLASHDUTY_BASE_URL is the default route's", rt->spec.name);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(rs->v[j].spec.name, rt->spec.name) == 0)
                return fail(why, why_len, ERR_INVALID, "route %s is given twice",
                            rt->spec.name);
            if (strcmp(rs->v[j].spec.env, rt->spec.env) == 0)
                return fail(why, why_len, ERR_INVALID, "routes %s and %s both set %s",
                            rs->v[j].spec.name, rt->spec.name, rt->spec.env);
        }
        /* The URL is not shown: a user may have put a credential in it. */
        if (upstream_base_parse(rt->spec.url, &rt->upstream) != 0)
            return fail(why, why_len, ERR_INVALID,
                        "route %s: the URL is not http(s)://host[:port][/path]", rt->spec.name);
        if (inject_parse(rt->spec.inject, &rt->inject) != 0)
            return fail(why, why_len, ERR_INVALID,
                        "route %s: inject wants query:NAME, header:NAME or bearer",
                        rt->spec.name);
        if ((r = route_policy_new(rt->spec.allow, &policy, detail, sizeof(detail))) != 0)
            return fail(why, why_len, r, "route %s: %s", rt->spec.name,
                        r == ERR_NOMEM ? err_str(r) : detail);
        policy_free(policy); /* the broker makes its own */
        snprintf(rt->placeholder, sizeof(rt->placeholder), "http://%s" ROUTE_HOST_SUFFIX,
                 rt->spec.name);
    }
    /* Keys last: nothing is read (an fd consumed, a variable taken) for a bad command line. */
    for (size_t i = 0; i < rs->n; i++) {
        struct route_set_entry *rt = &rs->v[i];

        if ((r = read_route_key(rt, why, why_len)) != 0)
            return r;
        rs->broker[i] = (struct broker_route){
            .name = rt->spec.name,
            .upstream = &rt->upstream,
            .inject = &rt->inject,
            .allow = rt->spec.allow,
            .key = rt->key,
        };
        rs->envs[i] = rt->spec.env;
        rs->urls[i] = rt->placeholder;
    }
    return 0;
}

int route_set_env(const struct route_set *rs, struct env *e)
{
    for (size_t i = 0; i < rs->n; i++) {
        const struct route_set_entry *rt = &rs->v[i];

        if (rt->spec.key_kind == ROUTE_KEY_ENV)
            env_deny(e, rt->spec.key_ref);
        if (rt->key != NULL)
            env_deny_secret(e, rt->key, "a route's key");
    }
    for (size_t i = 0; i < rs->n; i++) {
        if (env_set(e, rs->v[i].spec.env, rs->v[i].placeholder) != 0)
            return ERR_NOMEM;
    }
    return 0;
}

int route_set_cover(const struct route_set *rs, struct isolate_secrets *secrets, char *why,
                    size_t why_len)
{
    int r;

    for (size_t i = 0; i < rs->n; i++) {
        const struct route_set_entry *rt = &rs->v[i];

        if (rt->spec.key_kind == ROUTE_KEY_FILE &&
            (r = isolate_secrets_add(secrets, rt->spec.key_ref, false)) != 0)
            return fail(why, why_len, r, "route %s: key-file %.200s: %s", rt->spec.name,
                        rt->spec.key_ref, err_str(r));
    }
    return 0;
}

void route_set_free(struct route_set *rs)
{
    for (size_t i = 0; rs->v != NULL && i < rs->n; i++) {
        secret_free(rs->v[i].key);
        route_spec_free(&rs->v[i].spec);
    }
    free(rs->v);
    memset(rs, 0, sizeof(*rs));
}
