/*
 * route.h - several APIs per invocation (issue 21): what a route is, as the user writes
 * it, and which route a brokered request names by its Host.
 *
 * A route is a name, an upstream base URL, a key source, an injection mode, an optional
 * allow-list and the environment variable that receives its placeholder base URL,
 * http://NAME.broker.local. The command reaches a route by that host name: the request's
 * Host (or absolute-form target) says NAME.broker.local, any case, a trailing dot and a
 * port allowed. This module parses and judges; reading keys, building policies and
 * answering 421 are its callers' business.
 *
 * Pure: no I/O, no allocation beyond the spec's own copy of its text.
 */
#ifndef CREDBROKER_ROUTE_H
#define CREDBROKER_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#define ROUTE_NAME_MAX 63 /* one DNS label */
#define ROUTE_HOST_SUFFIX ".broker.local"
#define ROUTE_ENV_MAX 128
#define ROUTE_DEFAULT_NAME "flashduty" /* the single-upstream options' route */

enum route_key_kind { ROUTE_KEY_NONE, ROUTE_KEY_FILE, ROUTE_KEY_FD, ROUTE_KEY_ENV };

/*
 * One --route NAME=URL[,key-file=PATH|key-fd=N|key-env=VAR][,inject=MODE]
 * [,allow=METHOD GLOB;...][,env=VAR]. The strings point into text, which the spec owns
 * (route_spec_free). Options are split at a ',' that starts a known option name and its
 * '=' ("...,inject="), so a URL or a glob may hold other commas.
 */
struct route_spec {
    char *text;
    const char *name;
    const char *url;
    enum route_key_kind key_kind;
    const char *key_ref;  /* the path, fd number or variable name as written */
    const char *inject;   /* an --inject spec; NULL: the default */
    const char *allow;    /* "METHOD GLOB;METHOD GLOB"; NULL: no allow-list */
    char env[ROUTE_ENV_MAX + 1]; /* env=VAR, or NAME upper-cased, '-' as '_', + "_BASE_URL" */
};

/* True if name[0..len) is a route name: 1-63 bytes of a-z, 0-9 and '-', not starting or
 * ending with '-' (a DNS label, lower case only). */
bool route_name_valid(const char *name, size_t len);

/* True if name is an environment variable name a route may set: [A-Z_][A-Z0-9_]*, at most
 * ROUTE_ENV_MAX bytes, and none the broker or the loader owns (FLASHDUTY_CRED_FD, LD_*). */
bool route_env_valid(const char *name);

/*
 * Parses one --route value into *out. Checks the name, that the URL is present, each
 * option's form, a single key source, and the env name; not the URL's, the inject mode's
 * or the rules' own syntax (their parsers do). Returns 0, or ERR_INVALID with a one-line
 * reason in why (never the key: the spec names sources, not keys), or ERR_NOMEM.
 */
int route_spec_parse(const char *text, struct route_spec *out, char *why, size_t why_len);
void route_spec_free(struct route_spec *s);

/*
 * Which route a Host value (or an absolute-form target's authority) names. host[0..len)
 * as sent: "github.broker.local", "GitHub.Broker.Local.", "github.broker.local:8080".
 * Returns 1 and the name (lower case, copied to name, NUL-terminated) when the host is
 * NAME.broker.local with a valid NAME; 0 when it is not under .broker.local at all (the
 * caller's default route, as before routes); -1 when it is under .broker.local but names
 * no valid route (a bad label, several labels, an empty one, a bad port): 421 material.
 */
int route_host_name(const char *host, size_t len, char name[ROUTE_NAME_MAX + 1]);

#endif
