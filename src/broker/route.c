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
#include "policy.h"
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

/* text as the user wrote it, cut to fit out, but never a control byte on their terminal. */
static const char *shown(char *out, size_t out_len, const char *text)
{
    size_t n = 0;

    for (const char *c = text; *c != '\0' && n < out_len - 1; c++)
        out[n++] = (unsigned char)*c < 0x20 || *c == 0x7f ? '?' : *c;
    out[n] = '\0';
    return out;
}

/* field is name, with '_' standing for '-'. */
static bool field_is(const char *field, const char *name)
{
    for (; *name != '\0'; field++, name++) {
        if (*field != *name && !(*field == '_' && *name == '-'))
            return false;
    }
    return *field == '\0';
}

int route_spec_begin(struct route_spec *out, const char *name, char *why, size_t why_len)
{
    char text[64];

    memset(out, 0, sizeof(*out));
    if (!route_name_valid(name, strlen(name)))
        return route_fail(why, why_len,
                          "route name '%s' must be 1-63 lower-case letters, digits or '-' "
                          "(not first or last)",
                          shown(text, sizeof(text), name));
    return (out->name = strdup(name)) == NULL ? ERR_NOMEM : 0;
}

int route_spec_set(struct route_spec *s, const char *field, const char *value, char *why,
                   size_t why_len)
{
    char **slot = NULL, text[41];
    int opt = -1;

    if (field_is(field, "url"))
        slot = &s->url;
    for (size_t i = 0; slot == NULL && i < ROUTE_NOPTIONS; i++) {
        if (field_is(field, route_options[i]))
            opt = (int)i;
    }
    if (slot == NULL && opt < 0)
        return route_fail(why, why_len, "route %s: unknown field '%s'", s->name,
                          shown(text, sizeof(text), field));
    if (*value == '\0' && opt < 0)
        return route_fail(why, why_len, "route %s has no upstream URL", s->name);
    if (*value == '\0')
        return route_fail(why, why_len, "route %s: %s is empty", s->name, route_options[opt]);
    switch (opt) {
    case -1:
        break;
    case 0:
    case 1:
    case 2:
        if (s->key_kind != ROUTE_KEY_NONE)
            return route_fail(why, why_len,
                              "route %s takes one key source (key-file, key-fd or key-env)",
                              s->name);
        if (opt == 1 && !all_digits(value))
            return route_fail(why, why_len, "route %s: key-fd is not a number", s->name);
        s->key_kind = opt == 0 ? ROUTE_KEY_FILE : opt == 1 ? ROUTE_KEY_FD : ROUTE_KEY_ENV;
        slot = &s->key_ref;
        break;
    case 3:
        slot = &s->inject;
        break;
    case 4:
        slot = &s->allow;
        break;
    default:
        if (s->env[0] != '\0')
            return route_fail(why, why_len, "route %s: env is given twice", s->name);
        if (!route_env_valid(value))
            return route_fail(why, why_len,
                              "route %s: env must name a variable ([A-Z_][A-Z0-9_]*, not "
                              "FLASHDUTY_CRED_FD, FLASHDUTY_APP_KEY or LD_*)",
                              s->name);
        snprintf(s->env, sizeof(s->env), "%s", value);
        return 0;
    }
    if (*slot != NULL)
        return route_fail(why, why_len, "route %s: %s is given twice", s->name,
                          opt < 0 ? "the URL" : route_options[opt]);
    return (*slot = strdup(value)) == NULL ? ERR_NOMEM : 0;
}

int route_spec_end(struct route_spec *s, char *why, size_t why_len)
{
    if (s->url == NULL)
        return route_fail(why, why_len, "route %s has no upstream URL", s->name);
    if (s->env[0] == '\0') {
        size_t n = 0;

        for (const char *c = s->name; *c != '\0'; c++)
            s->env[n++] = *c == '-' ? '_' : *c >= 'a' && *c <= 'z' ? (char)(*c - 'a' + 'A') : *c;
        snprintf(s->env + n, sizeof(s->env) - n, "_BASE_URL");
    }
    return 0;
}

int route_spec_parse(const char *text, struct route_spec *out, char *why, size_t why_len)
{
    char *copy, *eq, *p, *next;
    const char *field = "url";
    int r;

    memset(out, 0, sizeof(*out));
    if ((copy = strdup(text)) == NULL)
        return ERR_NOMEM;
    if ((eq = strchr(copy, '=')) == NULL) {
        r = route_fail(why, why_len, "%s", "a route is NAME=URL[,option=value...]");
        goto out;
    }
    *eq = '\0';
    if ((r = route_spec_begin(out, copy, why, why_len)) != 0)
        goto out;
    /* The URL runs to the first ",option="; each option to the next one. */
    for (p = eq + 1;; p = next) {
        int found = -1;

        next = p;
        while (*next != '\0' && (found = option_at(next)) < 0)
            next++;
        if (*next != '\0')
            *next++ = '\0'; /* next: "name=value..." */
        if ((r = route_spec_set(out, field, p, why, why_len)) != 0)
            goto out;
        if (found < 0)
            break;
        field = route_options[found];
        next += strlen(field) + 1; /* past "name=" */
    }
    r = route_spec_end(out, why, why_len);
out:
    free(copy);
    if (r != 0)
        route_spec_free(out);
    return r;
}

int route_policy_new(const char *allow, struct policy **out, char *why, size_t why_len)
{
    struct policy *p;
    char rule[POLICY_RULE_MAX + 1], text[101];
    int r;

    *out = NULL;
    if (allow == NULL || *allow == '\0')
        return 0;
    if ((r = policy_new(&p)) != 0)
        return r;
    for (const char *s = allow, *end;; s = end + 1) {
        size_t len;

        while (*s == ' ')
            s++;
        end = strchrnul(s, ';');
        len = (size_t)(end - s);
        if (len == 0 || len > POLICY_RULE_MAX) {
            policy_free(p);
            return route_fail(why, why_len, "%s", "allow: a rule between ';' is empty or too long");
        }
        memcpy(rule, s, len);
        rule[len] = '\0';
        if ((r = policy_add_rule(p, rule)) != 0) {
            policy_free(p);
            if (r == ERR_NOMEM)
                return r;
            if (r == ERR_TOO_LARGE)
                return route_fail(why, why_len, "allow: more than %d rules", POLICY_MAX_RULES);
            return route_fail(why, why_len, "allow: '%s' is not a 'METHOD /path-glob' rule",
                              shown(text, sizeof(text), rule));
        }
        if (*end == '\0')
            break;
    }
    *out = p;
    return 0;
}

void route_spec_free(struct route_spec *s)
{
    if (s == NULL)
        return;
    free(s->name);
    free(s->url);
    free(s->key_ref);
    free(s->inject);
    free(s->allow);
    memset(s, 0, sizeof(*s));
}

void route_request_host(const char *target, size_t tlen, const char *host_hdr, size_t hlen,
                        const char **host, size_t *len)
{
    size_t skip = 0, n = 0;

    if (tlen >= 7 && ascii_ieq_lower(target, 7, "http://"))
        skip = 7;
    else if (tlen >= 8 && ascii_ieq_lower(target, 8, "https://"))
        skip = 8;
    if (skip == 0) {
        *host = host_hdr;
        *len = host_hdr != NULL ? hlen : 0;
        return;
    }
    while (skip + n < tlen && target[skip + n] != '/' && target[skip + n] != '?' &&
           target[skip + n] != '#')
        n++;
    *host = target + skip;
    *len = n;
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
