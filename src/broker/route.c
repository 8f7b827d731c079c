/*
 * route.c - a route as the user writes it (--route), and the route a Host names.
 * See route.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ascii.h"
#include "err.h"
#include "route.h"

/* The options after NAME=URL, each written ",name=value". */
static const char *const route_options[] = {"key-file", "key-fd", "key-env", "inject", "allow",
                                            "env"};
#define ROUTE_NOPTIONS (sizeof(route_options) / sizeof(route_options[0]))

bool route_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > ROUTE_NAME_MAX || name[0] == '-' || name[len - 1] == '-')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];

        if (!(ch >= 'a' && ch <= 'z') && !ascii_is_digit(ch) && ch != '-')
            return false;
    }
    return true;
}

bool route_env_valid(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > ROUTE_ENV_MAX || ascii_is_digit((unsigned char)name[0]))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];

        if (!(ch >= 'A' && ch <= 'Z') && !ascii_is_digit(ch) && ch != '_')
            return false;
    }
    /* The command's channel and the legacy key are the broker's; LD_* is the loader's. */
    return strcmp(name, "FLASHDUTY_CRED_FD") != 0 && strcmp(name, "FLASHDUTY_APP_KEY") != 0 &&
           strncmp(name, "LD_", 3) != 0;
}

/* The option ",name=" starting at p (p at the ','), or -1. */
static int option_at(const char *p)
{
    for (size_t i = 0; i < ROUTE_NOPTIONS; i++) {
        size_t n = strlen(route_options[i]);

        if (p[0] == ',' && strncmp(p + 1, route_options[i], n) == 0 && p[1 + n] == '=')
            return (int)i;
    }
    return -1;
}

static int route_fail(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int route_fail(char *why, size_t why_len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
    return ERR_INVALID;
}

static bool all_digits(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        if (!ascii_is_digit((unsigned char)*s))
            return false;
    }
    return true;
}

/* Sets one option of s from value; ERR_INVALID (why set) when it repeats or is malformed. */
static int route_set_option(struct route_spec *s, int opt, const char *value, const char **seen,
                            char *why, size_t why_len)
{
    const char *name = route_options[opt];

    if (seen[opt] != NULL)
        return route_fail(why, why_len, "route option %s is given twice", name);
    seen[opt] = value;
    if (*value == '\0')
        return route_fail(why, why_len, "route option %s is empty", name);
    switch (opt) {
    case 0:
    case 1:
    case 2:
        if (s->key_kind != ROUTE_KEY_NONE)
            return route_fail(why, why_len, "%s", "a route takes one key source "
                                                  "(key-file, key-fd or key-env)");
        if (opt == 1 && !all_digits(value))
            return route_fail(why, why_len, "%s", "route option key-fd is not a number");
        s->key_kind = opt == 0 ? ROUTE_KEY_FILE : opt == 1 ? ROUTE_KEY_FD : ROUTE_KEY_ENV;
        s->key_ref = value;
        return 0;
    case 3:
        s->inject = value;
        return 0;
    case 4:
        s->allow = value;
        return 0;
    default:
        if (!route_env_valid(value))
            return route_fail(why, why_len, "%s",
                              "route option env must name a variable ([A-Z_][A-Z0-9_]*, not "
                              "FLASHDUTY_CRED_FD, FLASHDUTY_APP_KEY or LD_*)");
        snprintf(s->env, sizeof(s->env), "%s", value);
        return 0;
    }
}

int route_spec_parse(const char *text, struct route_spec *out, char *why, size_t why_len)
{
    const char *seen[ROUTE_NOPTIONS] = {NULL};
    char *eq, *p, *next;
    int opt, r;

    memset(out, 0, sizeof(*out));
    if ((out->text = strdup(text)) == NULL)
        return ERR_NOMEM;
    if ((eq = strchr(out->text, '=')) == NULL) {
        r = route_fail(why, why_len, "%s", "a route is NAME=URL[,option=value...]");
        goto fail;
    }
    *eq = '\0';
    out->name = out->text;
    if (!route_name_valid(out->name, strlen(out->name))) {
        r = route_fail(why, why_len,
                       "route name '%.63s' must be 1-63 lower-case letters, digits or '-' "
                       "(not first or last)",
                       out->name);
        goto fail;
    }
    /* The URL runs to the first ",option="; each option to the next one. */
    out->url = eq + 1;
    opt = -1;
    for (p = eq + 1;; p = next) {
        int found = -1;

        next = p;
        while (*next != '\0' && (found = option_at(next)) < 0)
            next++;
        if (*next != '\0')
            *next++ = '\0'; /* next: "name=value..." */
        if (opt >= 0 && (r = route_set_option(out, opt, p, seen, why, why_len)) != 0)
            goto fail;
        if (found < 0)
            break;
        opt = found;
        next += strlen(route_options[found]) + 1; /* past "name=" */
    }
    if (*out->url == '\0') {
        r = route_fail(why, why_len, "route %.63s has no upstream URL", out->name);
        goto fail;
    }
    if (out->env[0] == '\0') {
        size_t n = 0;

        for (const char *c = out->name; *c != '\0'; c++)
            out->env[n++] = *c == '-' ? '_' : *c >= 'a' && *c <= 'z' ? (char)(*c - 'a' + 'A') : *c;
        snprintf(out->env + n, sizeof(out->env) - n, "_BASE_URL");
    }
    return 0;
fail:
    route_spec_free(out);
    return r;
}

void route_spec_free(struct route_spec *s)
{
    if (s == NULL)
        return;
    free(s->text);
    memset(s, 0, sizeof(*s));
}

int route_host_name(const char *host, size_t len, char name[ROUTE_NAME_MAX + 1])
{
    static const char suffix[] = ROUTE_HOST_SUFFIX; /* ".broker.local" */
    const size_t slen = sizeof(suffix) - 1;
    const char *colon;
    bool bad_port = false;
    size_t nlen, dots = 0;

    name[0] = '\0';
    if (len == 0 || host[0] == '[')
        return 0; /* no host, or an IPv6 literal: not a route's */
    if ((colon = memchr(host, ':', len)) != NULL) {
        size_t plen = len - (size_t)(colon - host) - 1;
        unsigned long port = 0;

        bad_port = plen == 0 || plen > 5;
        for (size_t i = 0; !bad_port && i < plen; i++) {
            if (!ascii_is_digit((unsigned char)colon[1 + i]))
                bad_port = true;
            else
                port = port * 10 + (unsigned long)(colon[1 + i] - '0');
        }
        bad_port = bad_port || port == 0 || port > 65535;
        len = (size_t)(colon - host);
    }
    while (len > 0 && host[len - 1] == '.') {
        len--; /* the root's dot; more than one is an empty label */
        dots++;
    }
    if (ascii_ieq_lower(host, len, suffix + 1))
        return -1; /* broker.local itself: no route named */
    if (len < slen || !ascii_ieq_lower(host + len - slen, slen, suffix))
        return 0;
    nlen = len - slen;
    if (bad_port || dots > 1 || nlen == 0 || nlen > ROUTE_NAME_MAX)
        return -1;
    for (size_t i = 0; i < nlen; i++)
        name[i] = (char)ascii_tolower((unsigned char)host[i]);
    name[nlen] = '\0';
    if (!route_name_valid(name, nlen)) {
        name[0] = '\0';
        return -1;
    }
    return 1;
}
