/*
 * route_yaml.h - routes written in YAML: exec's --routes file and the runner's
 * broker.routes. One reader for both, on a libyaml event parser its caller owns.
 *
 * A route is a mapping with the fields of --route (name, url, key-file | key-fd | key-env,
 * inject, allow, env; '_' may stand for '-'); allow is a string of ';'-separated rules or a
 * list of rules. There is no field for a key: a routes file names key sources only. Aliases
 * are refused, and every scalar is wiped before libyaml frees it (a user may paste a key
 * where a path belongs).
 */
#ifndef CREDBROKER_ROUTE_YAML_H
#define CREDBROKER_ROUTE_YAML_H

#include <stdbool.h>
#include <stddef.h>

#include <yaml.h>

#include "route.h"

/* The caller's place in its parser: the current event, if any. */
struct route_yaml {
    yaml_parser_t *parser;
    yaml_event_t *ev;
    bool *have_ev;
    /* Where the routes go: out[*n..max). */
    struct route_spec *out;
    size_t max, *n;
    char *why; /* "line N: ..." on failure */
    size_t why_len;
};

/*
 * Reads a list of routes. The current event is the list's start (else: an error); on
 * success it is the list's end. Returns 0, ERR_INVALID or ERR_NOMEM with why set; the specs
 * read before a failure stay in out (the caller frees them).
 */
int route_yaml_list(struct route_yaml *y);

/*
 * Reads a whole routes document from a fresh parser: a list of routes, or a mapping whose
 * only key, routes, holds that list. Returns as route_yaml_list; the events are released.
 */
int route_yaml_document(struct route_yaml *y);

#endif
