/*
 * route_set.h - the extra routes of exec's command line (--route, --routes FILE) or of the
 * runner's broker.routes (issue 21): read, their keys fetched from the sources they name,
 * everything checked before anything starts, and handed to the broker (which copies what
 * it keeps per invocation).
 *
 * A routes file is YAML: a list of mappings, or a mapping whose `routes` is that list, each
 * with the fields of --route (name, url, key-file | key-fd | key-env, inject, allow, env;
 * '_' may stand for '-'). `allow` is a string of ';'-separated rules or a list of rules.
 * The file names key sources; it never holds a key (there is no field for one).
 */
#ifndef CREDBROKER_ROUTE_SET_H
#define CREDBROKER_ROUTE_SET_H

#include <stdbool.h>
#include <stddef.h>

#include "broker.h"
#include "route.h"

struct env;
struct isolate_secrets;

struct route_set_entry {
    struct route_spec spec;
    struct secret *key;
    struct upstream_base upstream;
    struct inject inject;
    char placeholder[sizeof("http://") + ROUTE_NAME_MAX + sizeof(ROUTE_HOST_SUFFIX)];
};

struct route_set {
    struct route_set_entry *v; /* ROUTE_MAX of them, allocated with the first */
    size_t n;
    /* Filled by route_set_prepare: what broker_invocation_new reads, and each route's
     * placeholder variable and URL. */
    struct broker_route broker[ROUTE_MAX];
    const char *envs[ROUTE_MAX], *urls[ROUTE_MAX];
};

/* One --route value. Returns 0, or ERR_INVALID / ERR_NOMEM with a one-line reason in why. */
int route_set_add_spec(struct route_set *rs, const char *text, char *why, size_t why_len);
/* Takes over a route parsed elsewhere (the runner's broker.routes); *spec is left empty.
 * Returns 0, or ERR_INVALID (too many routes) / ERR_NOMEM with why. */
int route_set_adopt(struct route_set *rs, struct route_spec *spec, char *why, size_t why_len);
/* Every route of a routes file (see above); the reason says the file and line. */
int route_set_add_file(struct route_set *rs, const char *path, char *why, size_t why_len);

/*
 * Checks the routes as a whole and reads their keys: names unique and not the default
 * route's when there is one (with_default), environment variables unique and not
 * FLASHDUTY_BASE_URL then, URL, inject mode and rules well-formed, one key source each,
 * each key read and valid. Fills rs->broker. Returns 0 or ERR_* with why.
 */
int route_set_prepare(struct route_set *rs, bool with_default, char *why, size_t why_len);

/* The command's environment: each route's placeholder URL in its variable; no key-env
 * variable and no route's key under any name. Returns 0 or ERR_NOMEM. */
int route_set_env(const struct route_set *rs, struct env *e);

/* Adds each route's key file to what isolation hides. Returns 0 or the first error, with
 * the route's name and file in why. */
int route_set_cover(const struct route_set *rs, struct isolate_secrets *secrets, char *why,
                    size_t why_len);

/* Wipes and frees the keys (once the broker has its copies) and everything else. */
void route_set_free(struct route_set *rs);

#endif
