/*
 * route.h - several APIs per invocation (issue 21): what a route is, as the user writes
 * it, and which route a brokered request names by its Host.
 *
 * A route is a name, an upstream base URL, a key source, an injection mode, an optional
 * allow-list and the environment variable that receives its placeholder base URL,
 * http://NAME.broker.local. The command reaches a route by that host name: the request's
 * Host (or absolute-form target) says NAME.broker.local, any case, a trailing dot and a
 * port allowed. This module parses and judges; reading keys and answering 421 are its
 * callers' business.
 *
 * No I/O; the only allocations are a spec's copy of its text and a route's policy.
 */
#ifndef CREDBROKER_ROUTE_H
#define CREDBROKER_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#define ROUTE_NAME_MAX 63 /* one DNS label */
#define ROUTE_HOST_SUFFIX ".broker.local"
#define ROUTE_ENV_MAX 128
#define ROUTE_DEFAULT_NAME "flashduty" /* the single-upstream options' route */
#define ROUTE_MAX 32                   /* routes per invocation, the default one included */

struct policy;

enum route_key_kind { ROUTE_KEY_NONE, ROUTE_KEY_FILE, ROUTE_KEY_FD, ROUTE_KEY_ENV };

/*
 * One route as written: --route NAME=URL[,key-file=PATH|key-fd=N|key-env=VAR]
 * [,inject=MODE][,allow=METHOD GLOB;...][,env=VAR], or the same fields one by one (a YAML
 * mapping: route_spec_begin, route_spec_set, route_spec_end). Every string is the spec's
 * own copy (route_spec_free).
 */
struct route_spec {
    char *name;
    char *url;
    enum route_key_kind key_kind;
    char *key_ref;  /* the path, fd number or variable name as written */
    char *inject;   /* an --inject spec; NULL: the default */
    char *allow;    /* "METHOD GLOB;METHOD GLOB"; NULL: no allow-list */
    char env[ROUTE_ENV_MAX + 1]; /* env=VAR, or NAME upper-cased, '-' as '_', + "_BASE_URL" */
};

/* True if name[0..len) is a route name: 1-63 bytes of a-z, 0-9 and '-', not starting or
 * ending with '-' (a DNS label, lower case only). */
bool route_name_valid(const char *name, size_t len);

/* True if name is an environment variable name a route may set: [A-Z_][A-Z0-9_]*, at most
 * ROUTE_ENV_MAX bytes, and none the broker or the loader owns (FLASHDUTY_CRED_FD, LD_*). */
bool route_env_valid(const char *name);

/*
 * Parses one --route value into *out. Options are split at a ',' that starts a known
 * option name and its '=' ("...,inject="), so a URL or a glob may hold other commas.
 * Checks what route_spec_set and route_spec_end check; not the URL's, the inject mode's
 * or the rules' own syntax (their parsers do). Returns 0, or ERR_INVALID with a one-line
 * reason in why (never a key: a spec names sources, not keys), or ERR_NOMEM. On failure
 * *out holds nothing.
 */
int route_spec_parse(const char *text, struct route_spec *out, char *why, size_t why_len);

/* Starts *out for the route name: ERR_INVALID (why) for a bad name, or ERR_NOMEM. */
int route_spec_begin(struct route_spec *out, const char *name, char *why, size_t why_len);
/*
 * Sets one field: "url", or an option of --route ("key-file", "key-fd", "key-env",
 * "inject", "allow", "env"; '_' may stand for '-'). ERR_INVALID (why) for an unknown
 * field, one given twice, an empty value, a second key source, a key-fd that is no number
 * or a bad env name; or ERR_NOMEM. The spec is freed by the caller either way.
 */
int route_spec_set(struct route_spec *s, const char *field, const char *value, char *why,
                   size_t why_len);
/* Checks the route is whole (it has a URL) and picks the default env name. */
int route_spec_end(struct route_spec *s, char *why, size_t why_len);
void route_spec_free(struct route_spec *s);

/*
 * The policy of an allow= option: "METHOD GLOB" rules (policy_add_rule) separated by ';',
 * spaces after a ';' ignored. NULL or "" gives *out NULL: everything allowed. Returns 0,
 * ERR_INVALID with a one-line reason in why (an empty or malformed rule), or ERR_NOMEM.
 */
int route_policy_new(const char *allow, struct policy **out, char *why, size_t why_len);

/*
 * The host a request names its route by: an absolute-form target's authority (RFC 9112
 * 3.2.2: it, not Host, is the request's), else the Host value host_hdr[0..hlen) (NULL: none,
 * as HTTP/1.0 may send). Sets *host and *len to a view into one of them.
 */
void route_request_host(const char *target, size_t tlen, const char *host_hdr, size_t hlen,
                        const char **host, size_t *len);

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
