/*
 * config_internal.h - what the parts of the runner's configuration share: config.c
 * (the key table, the one setter, defaults and validation), config_yaml.c (the YAML
 * file) and config_env.c (the environment and flags), which end in the same setter, and
 * config_list.c (the list-valued keys and labels).
 * Nothing else includes it; config.h is the module's interface.
 */
#ifndef CREDBROKER_CONFIG_INTERNAL_H
#define CREDBROKER_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define CONFIG_KEY_MAX 100  /* bytes in a dotted key we look up */
#define CONFIG_SHOWN_MAX 64 /* bytes of a bad value quoted in an error */
#define CONFIG_KEYS_MAX 64  /* keys[] entries (config.c checks it) */

enum kind {
    KIND_SECTION,    /* a mapping of further keys */
    KIND_IGNORED,    /* read by the Go runner, not used by us: any value */
    KIND_SECRET,     /* api_key */
    KIND_STRING,     /* char *; "" is NULL */
    KIND_BOOL,       /* bool */
    KIND_UINT,       /* unsigned */
    KIND_U64,        /* uint64_t */
    KIND_SIZE,       /* size_t */
    KIND_DURATION,   /* uint64_t, milliseconds */
    KIND_LEVEL,      /* log.level */
    KIND_FORMAT,     /* log.format */
    KIND_PERMISSION, /* permission.bash */
    KIND_ISOLATION,  /* broker.isolation */
    KIND_INJECT,     /* broker.inject: a char * that inject_parse() accepts */
    KIND_LABELS,     /* label_keys, label_values, nlabels */
    KIND_LIST,       /* char ** at off, its size_t count at count_off */
    KIND_ROUTES,     /* broker.routes: a YAML list of route mappings (route_yaml.h) */
};

struct key_def {
    const char *key;
    enum kind kind;
    size_t off, count_off;
    uint64_t min, max;
};

/* Where a value came from, for the one line of err. */
struct where {
    char *err;
    size_t errlen;
    const char *origin; /* "config.yaml:7", "FLASHDUTY_RUNNER_NAME", "--set" */
};

/* A growing array of owned strings. */
struct strv {
    char **v;
    size_t n;
};

/* Writes "<origin>: <key>: <message>" (or without the key) to err; returns code. */
int config__fail(const struct where *w, const char *key, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A bad value for an error: at most CONFIG_SHOWN_MAX bytes, control bytes as '?'. out has
 * at least CONFIG_SHOWN_MAX + 4 bytes. Never used for api_key. */
const char *config__shown(char *out, size_t outlen, const char *v, size_t len);

/* The key named key[0..len) ("broker.cacert"), or NULL; its position in the table. */
const struct key_def *config__find_key(const char *key, size_t len);
size_t config__key_index(const struct key_def *d);
/* The key whose environment name (upper case, '.' -> '_', after the prefix) is
 * name[0..len), or NULL. */
const struct key_def *config__find_env_key(const char *name, size_t len);

/* Where key d's value lives in c (d->off). */
static inline void *config__field(struct runner_config *c, const struct key_def *d)
{
    return (char *)c + d->off;
}

static inline const void *config__field_const(const struct runner_config *c,
                                              const struct key_def *d)
{
    return (const char *)c + d->off;
}

/* Whether v[0..len) holds a control byte (what no value may). */
bool config__has_control(const char *v, size_t len);

/* Sets key d from its text, as every source does; err through w on failure. */
int config__set_text(struct runner_config *c, const struct key_def *d, const char *v, size_t len,
                     const struct where *w);
/* A list (or labels) from its text form: "A,B_*", "k=v,k2=v2". */
int config__set_list_text(struct runner_config *c, const struct key_def *d, const char *v,
                          size_t len, const struct where *w);
/* Checks one item of a list (or a label's name) before it is kept: 0 or ERR_INVALID. */
int config__check_item(const struct key_def *d, const char *v, size_t len, const struct where *w);
/* Checks one item (for labels: a name and its value) and appends it. */
int config__list_add(const struct key_def *d, struct strv *items, struct strv *values,
                     const char *v, size_t len, const char *val, size_t val_len,
                     const struct where *w);
/* Replaces the list (or the labels) with items (and values); takes them over. */
void config__list_replace(struct runner_config *c, const struct key_def *d, struct strv *items,
                          struct strv *values);
void config__strv_free(char **v, size_t n);
/* permission.bash: forgets the pairs read so far (a later source replaces them), or adds
 * one; the actions are checked when the rules are built (config_load_permission). */
void config__permission_clear(struct runner_config *c);
int config__permission_add(struct runner_config *c, const char *pattern, size_t plen,
                           const char *action, size_t alen);

#endif
