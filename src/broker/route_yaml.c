/*
 * route_yaml.c - routes written in YAML. See route_yaml.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "route_yaml.h"

#define ROUTE_YAML_FIELDS 8 /* name, url, a key source, inject, allow, env, and two to spare */

static unsigned long ry_line(const struct route_yaml *y)
{
    return (unsigned long)y->ev->start_mark.line + 1;
}

/* "line N: <what>" in why; returns code. */
static int ry_fail_at(struct route_yaml *y, unsigned long line, int code, const char *what)
{
    snprintf(y->why, y->why_len, "line %lu: %s", line, what);
    return code;
}

/* The same at the current event. */
static int ry_fail(struct route_yaml *y, int code, const char *what)
{
    return ry_fail_at(y, ry_line(y), code, what);
}

/* Wipes the current event's scalar and frees the event. */
static void ry_drop(struct route_yaml *y)
{
    if (!*y->have_ev)
        return;
    if (y->ev->type == YAML_SCALAR_EVENT && y->ev->data.scalar.value != NULL)
        explicit_bzero(y->ev->data.scalar.value, y->ev->data.scalar.length);
    yaml_event_delete(y->ev);
    *y->have_ev = false;
}

static int ry_next(struct route_yaml *y)
{
    ry_drop(y);
    if (!yaml_parser_parse(y->parser, y->ev)) {
        /* libyaml's problem is a fixed string: no bytes of the file. */
        snprintf(y->why, y->why_len, "line %lu: YAML syntax error: %s",
                 (unsigned long)y->parser->problem_mark.line + 1,
                 y->parser->problem != NULL ? y->parser->problem : "unknown problem");
        return y->parser->error == YAML_MEMORY_ERROR ? ERR_NOMEM : ERR_INVALID;
    }
    *y->have_ev = true;
    if (y->ev->type == YAML_ALIAS_EVENT)
        return ry_fail(y, ERR_INVALID, "YAML aliases (*name) are not supported here");
    return 0;
}

static const char *ry_scalar(const struct route_yaml *y)
{
    return (const char *)y->ev->data.scalar.value;
}

/* An allow list: its rules joined with ';' into *out (malloc'd). */
static int ry_allow_list(struct route_yaml *y, char **out)
{
    size_t len = 0;
    int r;

    for (;;) {
        char *grown;
        size_t n;

        if ((r = ry_next(y)) != 0)
            return r;
        if (y->ev->type == YAML_SEQUENCE_END_EVENT)
            return *out == NULL ? ry_fail(y, ERR_INVALID, "allow: an empty list") : 0;
        if (y->ev->type != YAML_SCALAR_EVENT)
            return ry_fail(y, ERR_INVALID, "allow: each rule is a 'METHOD /path-glob' string");
        n = y->ev->data.scalar.length;
        if ((grown = realloc(*out, len + n + 2)) == NULL)
            return ERR_NOMEM;
        *out = grown;
        if (len > 0)
            grown[len++] = ';';
        memcpy(grown + len, ry_scalar(y), n + 1);
        len += n;
    }
}

/* The fields of one route mapping, as read; the name is found before any is judged, so
 * every error can say which route it is about. */
struct ry_fields {
    char *field[ROUTE_YAML_FIELDS], *value[ROUTE_YAML_FIELDS];
    size_t n;
    const char *name;
    char *allow; /* from a list */
};

static void ry_fields_free(struct ry_fields *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->field[i]);
        free(f->value[i]);
    }
    free(f->allow);
}

/* Reads the mapping's fields up to its end into f. */
static int ry_read_fields(struct route_yaml *y, struct ry_fields *f)
{
    char field[32], detail[64];
    int r;

    while ((r = ry_next(y)) == 0 && y->ev->type != YAML_MAPPING_END_EVENT) {
        if (y->ev->type != YAML_SCALAR_EVENT || y->ev->data.scalar.length >= sizeof(field))
            return ry_fail(y, ERR_INVALID, "a route's field names are short words");
        memcpy(field, ry_scalar(y), y->ev->data.scalar.length + 1);
        if (strcmp(field, "name") == 0 && f->name != NULL)
            return ry_fail(y, ERR_INVALID, "name is given twice");
        if ((r = ry_next(y)) != 0)
            return r;
        if (strcmp(field, "allow") == 0 && y->ev->type == YAML_SEQUENCE_START_EVENT &&
            f->allow == NULL) {
            if ((r = ry_allow_list(y, &f->allow)) != 0)
                return r;
            continue;
        }
        if (y->ev->type != YAML_SCALAR_EVENT) {
            snprintf(detail, sizeof(detail), "%s: a single value is wanted", field);
            return ry_fail(y, ERR_INVALID, detail);
        }
        if (f->n == ROUTE_YAML_FIELDS)
            return ry_fail(y, ERR_INVALID, "a route has too many fields");
        if ((f->field[f->n] = strdup(field)) == NULL)
            return ERR_NOMEM;
        if ((f->value[f->n] = strdup(ry_scalar(y))) == NULL) {
            free(f->field[f->n]);
            return ERR_NOMEM;
        }
        if (strcmp(field, "name") == 0)
            f->name = f->value[f->n];
        f->n++;
    }
    return r;
}

/* One route: the current event is its mapping's start. Its errors say the line it starts on. */
static int ry_route(struct route_yaml *y, struct route_spec *s)
{
    unsigned long line = ry_line(y);
    struct ry_fields f;
    char detail[256];
    int r;

    memset(&f, 0, sizeof(f));
    memset(s, 0, sizeof(*s));
    if (y->ev->type != YAML_MAPPING_START_EVENT)
        return ry_fail(y, ERR_INVALID, "each route is a mapping (name: ..., url: ...)");
    if ((r = ry_read_fields(y, &f)) == 0 && f.name == NULL)
        r = ry_fail_at(y, line, ERR_INVALID, "a route without a name");
    if (r == 0 && (r = route_spec_begin(s, f.name, detail, sizeof(detail))) != 0)
        r = ry_fail_at(y, line, r, detail);
    for (size_t i = 0; r == 0 && i < f.n; i++) {
        if (f.value[i] != f.name &&
            (r = route_spec_set(s, f.field[i], f.value[i], detail, sizeof(detail))) != 0)
            r = ry_fail_at(y, line, r, detail);
    }
    if (r == 0 && f.allow != NULL &&
        (r = route_spec_set(s, "allow", f.allow, detail, sizeof(detail))) != 0)
        r = ry_fail_at(y, line, r, detail);
    if (r == 0 && (r = route_spec_end(s, detail, sizeof(detail))) != 0)
        r = ry_fail_at(y, line, r, detail);
    ry_fields_free(&f);
    if (r != 0)
        route_spec_free(s);
    return r;
}

int route_yaml_list(struct route_yaml *y)
{
    int r;

    if (y->ev->type != YAML_SEQUENCE_START_EVENT)
        return ry_fail(y, ERR_INVALID, "the routes are a list of mappings");
    while ((r = ry_next(y)) == 0 && y->ev->type != YAML_SEQUENCE_END_EVENT) {
        if (*y->n == y->max) {
            snprintf(y->why, y->why_len, "line %lu: more than %d routes (the default one "
                     "included)", ry_line(y), ROUTE_MAX);
            return ERR_INVALID;
        }
        if ((r = ry_route(y, &y->out[*y->n])) != 0)
            return r;
        (*y->n)++;
    }
    return r;
}

static int ry_document(struct route_yaml *y)
{
    int r;

    while ((r = ry_next(y)) == 0 && y->ev->type != YAML_SEQUENCE_START_EVENT &&
           y->ev->type != YAML_MAPPING_START_EVENT) {
        if (y->ev->type == YAML_STREAM_END_EVENT || y->ev->type == YAML_SCALAR_EVENT)
            return ry_fail(y, ERR_INVALID, "no routes: the file is a list of routes, or has "
                                           "one under 'routes'");
    }
    if (r != 0)
        return r;
    if (y->ev->type == YAML_SEQUENCE_START_EVENT)
        return route_yaml_list(y);
    if ((r = ry_next(y)) != 0)
        return r;
    if (y->ev->type != YAML_SCALAR_EVENT || strcmp(ry_scalar(y), "routes") != 0)
        return ry_fail(y, ERR_INVALID, "the file's only key is 'routes'");
    if ((r = ry_next(y)) != 0 || (r = route_yaml_list(y)) != 0 || (r = ry_next(y)) != 0)
        return r;
    if (y->ev->type != YAML_MAPPING_END_EVENT)
        return ry_fail(y, ERR_INVALID, "the file's only key is 'routes'");
    return 0;
}

int route_yaml_document(struct route_yaml *y)
{
    int r = ry_document(y);

    ry_drop(y);
    return r;
}
