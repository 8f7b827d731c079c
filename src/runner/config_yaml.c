/*
 * config_yaml.c - the runner's configuration file (config_load_file). See
 * config.h.
 *
 * The file is read with libyaml's event parser rather than its document
 * loader: every scalar can then be wiped before libyaml frees it, and aliases
 * (which the loader would silently resolve) can be refused. Every value ends
 * in config__set_text (config.c), as the environment's and the flags' do.
 *
 * XXX: libyaml grows a scalar with realloc() while scanning it, and frees the
 * smaller buffers it outgrows without wiping them; there is no allocator hook
 * to fix that. An api_key in the environment avoids it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "config.h"
#include "config_internal.h"
#include "err.h"
#include "route_yaml.h"

struct walk {
    yaml_parser_t parser;
    yaml_event_t ev;
    bool have_ev;
    struct runner_config *c;
    const char *path;
    const char *text; /* the file's bytes, for the line of a reader error */
    size_t text_len;
    mode_t mode;
    unsigned long seen_line[CONFIG_KEYS_MAX]; /* 0: not seen yet */
    char origin[256];
    struct where w;
};

static unsigned long walk_line(const struct walk *y)
{
    return (unsigned long)y->ev.start_mark.line + 1;
}

/* Points err's "where" at line of the file. */
static void walk_at(struct walk *y, unsigned long line)
{
    snprintf(y->origin, sizeof(y->origin), "%.200s:%lu", y->path, line);
}

/* Wipes the current event's scalar (it may be the key) and frees the event. */
static void walk_drop(struct walk *y)
{
    if (!y->have_ev)
        return;
    if (y->ev.type == YAML_SCALAR_EVENT && y->ev.data.scalar.value != NULL)
        explicit_bzero(y->ev.data.scalar.value, y->ev.data.scalar.length);
    yaml_event_delete(&y->ev);
    y->have_ev = false;
}

static int walk_syntax_error(struct walk *y)
{
    unsigned long line;

    if (y->parser.error == YAML_MEMORY_ERROR) {
        snprintf(y->origin, sizeof(y->origin), "%.200s", y->path);
        return config__fail(&y->w, NULL, ERR_NOMEM, "%s", err_str(ERR_NOMEM));
    }
    if (y->parser.error == YAML_READER_ERROR) {
        /* Reader errors (bad UTF-8, control bytes) carry a byte offset, not a mark. */
        size_t end =
            y->parser.problem_offset < y->text_len ? y->parser.problem_offset : y->text_len;

        line = 1;
        for (size_t i = 0; i < end; i++)
            line += y->text[i] == '\n';
    } else {
        line = (unsigned long)y->parser.problem_mark.line + 1;
    }
    walk_at(y, line);
    /* libyaml's problem and context are fixed strings: no bytes of the file. */
    return config__fail(&y->w, NULL, ERR_INVALID, "YAML syntax error: %s%s%s%s",
                        y->parser.problem != NULL ? y->parser.problem : "unknown problem",
                        y->parser.context != NULL ? " (" : "",
                        y->parser.context != NULL ? y->parser.context : "",
                        y->parser.context != NULL ? ")" : "");
}

/* Moves to the next event. Aliases are refused here, wherever they are. */
static int walk_next(struct walk *y)
{
    walk_drop(y);
    if (!yaml_parser_parse(&y->parser, &y->ev))
        return walk_syntax_error(y);
    y->have_ev = true;
    if (y->ev.type == YAML_ALIAS_EVENT) {
        walk_at(y, walk_line(y));
        return config__fail(&y->w, NULL, ERR_INVALID,
                            "YAML aliases (*name) are not supported here");
    }
    return 0;
}

static bool walk_is_null(const struct walk *y)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    const char *v = (const char *)y->ev.data.scalar.value;

    if (y->ev.type != YAML_SCALAR_EVENT || y->ev.data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++) {
        if (strcmp(v, nulls[i]) == 0)
            return true;
    }
    return false;
}

static const char *walk_found(const struct walk *y)
{
    switch (y->ev.type) {
    case YAML_MAPPING_START_EVENT:
        return "a mapping";
    case YAML_SEQUENCE_START_EVENT:
        return "a list";
    case YAML_SCALAR_EVENT:
        return "a single value";
    default:
        return "something else";
    }
}

/* The current scalar, with a plain null as "". */
static const char *walk_scalar(const struct walk *y, size_t *len)
{
    if (walk_is_null(y)) {
        *len = 0;
        return "";
    }
    *len = y->ev.data.scalar.length;
    return (const char *)y->ev.data.scalar.value;
}

/* Skips the value that starts at the current event, however deep. */
static int walk_skip(struct walk *y)
{
    unsigned long depth;
    int r;

    if (y->ev.type != YAML_MAPPING_START_EVENT && y->ev.type != YAML_SEQUENCE_START_EVENT)
        return 0;
    for (depth = 1; depth > 0;) {
        if ((r = walk_next(y)) != 0)
            return r;
        if (y->ev.type == YAML_MAPPING_START_EVENT || y->ev.type == YAML_SEQUENCE_START_EVENT)
            depth++;
        else if (y->ev.type == YAML_MAPPING_END_EVENT || y->ev.type == YAML_SEQUENCE_END_EVENT)
            depth--;
    }
    return 0;
}

/* A list of strings: broker.env_deny, broker.secret_paths, or labels in the Go runner's form. */
static int walk_list(struct walk *y, const struct key_def *d)
{
    struct strv items = {NULL, 0}, values = {NULL, 0};
    const char *v, *colon;
    size_t len;
    int r;

    for (;;) {
        if ((r = walk_next(y)) != 0)
            goto out;
        if (y->ev.type == YAML_SEQUENCE_END_EVENT)
            break;
        walk_at(y, walk_line(y));
        if (y->ev.type != YAML_SCALAR_EVENT) {
            r = config__fail(&y->w, d->key, ERR_INVALID, "items must be single values, found %s",
                             walk_found(y));
            goto out;
        }
        v = walk_scalar(y, &len);
        if (d->kind == KIND_LABELS) {
            /* "os:linux" is the pair (os, linux); "k8s" is (k8s, ""). */
            colon = memchr(v, ':', len);
            if (colon != NULL)
                r = config__list_add(d, &items, &values, v, (size_t)(colon - v), colon + 1,
                                     len - (size_t)(colon - v) - 1, &y->w);
            else
                r = config__list_add(d, &items, &values, v, len, "", 0, &y->w);
        } else {
            r = config__list_add(d, &items, &values, v, len, NULL, 0, &y->w);
        }
        if (r != 0)
            goto out;
    }
    config__list_replace(y->c, d, &items, &values);
out:
    config__strv_free(items.v, items.n);
    config__strv_free(values.v, values.n);
    return r;
}

/* labels as a mapping: {env: prod, region: eu}. */
static int walk_labels(struct walk *y, const struct key_def *d)
{
    struct strv items = {NULL, 0}, values = {NULL, 0};
    char *name = NULL;
    size_t name_len = 0, len;
    const char *v;
    int r;

    for (;;) {
        if ((r = walk_next(y)) != 0)
            goto out;
        if (y->ev.type == YAML_MAPPING_END_EVENT)
            break;
        walk_at(y, walk_line(y));
        if (y->ev.type != YAML_SCALAR_EVENT) {
            r = config__fail(&y->w, d->key, ERR_INVALID,
                             "label names must be single values, found %s", walk_found(y));
            goto out;
        }
        v = walk_scalar(y, &name_len);
        if ((name = malloc(name_len + 1)) == NULL) {
            r = config__fail(&y->w, d->key, ERR_NOMEM, "%s", err_str(ERR_NOMEM));
            goto out;
        }
        memcpy(name, v, name_len + 1);
        if ((r = walk_next(y)) != 0)
            goto out;
        if (y->ev.type != YAML_SCALAR_EVENT) {
            r = config__fail(&y->w, d->key, ERR_INVALID,
                             "label values must be single values, found %s", walk_found(y));
            goto out;
        }
        v = walk_scalar(y, &len);
        if ((r = config__list_add(d, &items, &values, name, name_len, v, len, &y->w)) != 0)
            goto out;
        free(name);
        name = NULL;
    }
    config__list_replace(y->c, d, &items, &values);
out:
    free(name);
    config__strv_free(items.v, items.n);
    config__strv_free(values.v, values.n);
    return r;
}

/*
 * permission.bash in the Go runner's form, a mapping of command patterns to allow or
 * deny (RUNNER-OPS.md 7.1), kept as pairs: the rules are built, and their actions
 * checked, by config_load_permission. An empty mapping is kept as no rules, which
 * refuses to start (fail closed, never "allow all").
 */
static int walk_permission(struct walk *y, const struct key_def *d)
{
    const char *v;
    char *pattern;
    size_t len, plen;
    int r;

    config__permission_clear(y->c);
    for (;;) {
        if ((r = walk_next(y)) != 0)
            return r;
        if (y->ev.type == YAML_MAPPING_END_EVENT)
            break;
        walk_at(y, walk_line(y));
        if (y->ev.type != YAML_SCALAR_EVENT)
            return config__fail(&y->w, d->key, ERR_INVALID, "rules must be single values, found %s",
                                walk_found(y));
        v = walk_scalar(y, &plen);
        if ((pattern = strndup(v, plen)) == NULL)
            return config__fail(&y->w, d->key, ERR_NOMEM, "out of memory");
        if ((r = walk_next(y)) != 0) {
            free(pattern);
            return r;
        }
        if (y->ev.type != YAML_SCALAR_EVENT) {
            free(pattern);
            return config__fail(&y->w, d->key, ERR_INVALID, "expected allow or deny, found %s",
                                walk_found(y));
        }
        v = walk_scalar(y, &len);
        r = config__permission_add(y->c, pattern, plen, v, len);
        free(pattern);
        if (r != 0)
            return config__fail(&y->w, d->key, r, "out of memory");
    }
    return 0;
}

/* broker.routes: a list of route mappings, read by route_yaml (as exec's --routes file is).
 * A second broker.routes replaces the first. */
static int walk_routes(struct walk *y, const struct key_def *d)
{
    struct runner_config *c = y->c;
    char why[400] = "";
    struct route_yaml ry = {
        .parser = &y->parser,
        .ev = &y->ev,
        .have_ev = &y->have_ev,
        .max = ROUTE_MAX - 1, /* the task's own credential is the default route */
        .n = &c->broker.nroutes,
        .why = why,
        .why_len = sizeof(why),
    };
    int r;

    for (size_t i = 0; i < c->broker.nroutes; i++)
        route_spec_free(&c->broker.routes[i]);
    c->broker.nroutes = 0;
    if (c->broker.routes == NULL &&
        (c->broker.routes = calloc(ROUTE_MAX - 1, sizeof(*c->broker.routes))) == NULL)
        return config__fail(&y->w, d->key, ERR_NOMEM, "out of memory");
    ry.out = c->broker.routes;
    if ((r = route_yaml_list(&ry)) != 0) {
        /* route_yaml says the line ("line N: ..."): the origin is the file alone. */
        snprintf(y->origin, sizeof(y->origin), "%.200s", y->path);
        return config__fail(&y->w, d->key, r, "%s", r == ERR_NOMEM ? "out of memory" : why);
    }
    return 0;
}

static int walk_mapping(struct walk *y, const char *prefix);

/* The value of key d, whose first event is current; line is the key's line. */
static int walk_value(struct walk *y, const struct key_def *d, unsigned long line)
{
    yaml_event_type_t t = y->ev.type;
    const char *v;
    size_t len;

    walk_at(y, line);
    switch (d->kind) {
    case KIND_IGNORED:
        return walk_skip(y);
    case KIND_SECTION:
        if (t == YAML_MAPPING_START_EVENT)
            return walk_mapping(y, d->key);
        if (walk_is_null(y))
            return 0;
        return config__fail(&y->w, d->key, ERR_INVALID, "expected a mapping of keys, found %s",
                            walk_found(y));
    case KIND_LABELS:
        if (t == YAML_MAPPING_START_EVENT)
            return walk_labels(y, d);
        if (t == YAML_SEQUENCE_START_EVENT)
            return walk_list(y, d);
        if (walk_is_null(y))
            return config__set_list_text(y->c, d, "", 0, &y->w);
        return config__fail(&y->w, d->key, ERR_INVALID, "expected a mapping (or a list), found %s",
                            walk_found(y));
    case KIND_LIST:
        if (t == YAML_SEQUENCE_START_EVENT)
            return walk_list(y, d);
        if (walk_is_null(y))
            return config__set_list_text(y->c, d, "", 0, &y->w);
        return config__fail(&y->w, d->key, ERR_INVALID, "expected a list, found %s", walk_found(y));
    case KIND_PERMISSION:
        if (t == YAML_MAPPING_START_EVENT)
            return walk_permission(y, d);
        break;
    case KIND_ROUTES:
        if (t == YAML_SEQUENCE_START_EVENT)
            return walk_routes(y, d);
        return config__fail(&y->w, d->key, ERR_INVALID, "expected a list of routes, found %s",
                            walk_found(y));
    case KIND_SECRET:
        if (t == YAML_SCALAR_EVENT && y->ev.data.scalar.length > 0 && !walk_is_null(y) &&
            (y->mode & 077) != 0)
            /* Like ssh with a private key: a key others can read is already leaked. */
            return config__fail(
                &y->w, d->key, ERR_KEY_PERMS,
                "%.200s is accessible by group or others (mode %04o): chmod 600 it, "
                "or pass the key in " CONFIG_ENV_PREFIX "API_KEY",
                y->path, (unsigned)(y->mode & 07777));
        break;
    case KIND_STRING:
    case KIND_BOOL:
    case KIND_UINT:
    case KIND_U64:
    case KIND_SIZE:
    case KIND_DURATION:
    case KIND_LEVEL:
    case KIND_FORMAT:
    case KIND_ISOLATION:
    case KIND_INJECT:
        break;
    }
    if (t != YAML_SCALAR_EVENT)
        return config__fail(&y->w, d->key, ERR_INVALID, "expected a single value, found %s",
                            walk_found(y));
    v = walk_scalar(y, &len);
    return config__set_text(y->c, d, v, len, &y->w);
}

/* A mapping of keys (the top level, or a section), whose start event is current. */
static int walk_mapping(struct walk *y, const char *prefix)
{
    char name[CONFIG_KEY_MAX + 1], q[CONFIG_SHOWN_MAX + 4];
    const struct key_def *d;
    unsigned long line;
    size_t plen = prefix != NULL ? strlen(prefix) + 1 : 0, klen, idx;
    int r;

    for (;;) {
        if ((r = walk_next(y)) != 0)
            return r;
        if (y->ev.type == YAML_MAPPING_END_EVENT)
            return 0;
        line = walk_line(y);
        walk_at(y, line);
        if (y->ev.type != YAML_SCALAR_EVENT)
            return config__fail(&y->w, prefix, ERR_INVALID, "keys must be single values, found %s",
                                walk_found(y));
        klen = y->ev.data.scalar.length;
        d = NULL;
        if (plen + klen <= CONFIG_KEY_MAX) {
            if (prefix != NULL) {
                memcpy(name, prefix, plen - 1);
                name[plen - 1] = '.';
            }
            memcpy(name + plen, y->ev.data.scalar.value, klen);
            name[plen + klen] = '\0';
            d = config__find_key(name, plen + klen);
        }
        if (d == NULL || (prefix == NULL && strchr(d->key, '.') != NULL)) {
            char shown_key[CONFIG_KEY_MAX + CONFIG_SHOWN_MAX + 8];

            /* "broker.cacert" written as a top-level key is a typo for a nested one. */
            snprintf(shown_key, sizeof(shown_key), "%s%s%s", prefix != NULL ? prefix : "",
                     prefix != NULL ? "." : "",
                     config__shown(q, sizeof(q), (const char *)y->ev.data.scalar.value, klen));
            return config__fail(&y->w, shown_key, ERR_INVALID, "unknown key");
        }
        idx = config__key_index(d);
        if (y->seen_line[idx] != 0)
            return config__fail(&y->w, d->key, ERR_INVALID, "given twice (first on line %lu)",
                                y->seen_line[idx]);
        y->seen_line[idx] = line;
        if ((r = walk_next(y)) != 0)
            return r;
        if ((r = walk_value(y, d, line)) != 0)
            return r;
    }
}

/* The stream: nothing, or one document whose top level is a mapping. */
static int walk_stream(struct walk *y)
{
    int r;

    snprintf(y->origin, sizeof(y->origin), "%.200s", y->path);
    /* Stream start, then a document start, or the end of an empty (or all-comment) file. */
    if ((r = walk_next(y)) != 0 || (r = walk_next(y)) != 0)
        return r;
    if (y->ev.type == YAML_STREAM_END_EVENT)
        return 0;
    if ((r = walk_next(y)) != 0)
        return r;
    walk_at(y, walk_line(y));
    if (y->ev.type == YAML_MAPPING_START_EVENT) {
        if ((r = walk_mapping(y, NULL)) != 0)
            return r;
    } else if (!walk_is_null(y)) {
        return config__fail(&y->w, NULL, ERR_INVALID,
                            "the top level must be a mapping of keys, found %s", walk_found(y));
    }
    /* The document end, then the stream end. */
    if ((r = walk_next(y)) != 0 || (r = walk_next(y)) != 0)
        return r;
    if (y->ev.type != YAML_STREAM_END_EVENT) {
        walk_at(y, walk_line(y));
        return config__fail(&y->w, NULL, ERR_INVALID, "only one YAML document is allowed");
    }
    return 0;
}

/* Wipes what libyaml still holds of the file: its input buffers and queued tokens. */
static void walk_wipe_parser(yaml_parser_t *p)
{
    if (p->raw_buffer.start != NULL)
        explicit_bzero(p->raw_buffer.start, (size_t)(p->raw_buffer.end - p->raw_buffer.start));
    if (p->buffer.start != NULL)
        explicit_bzero(p->buffer.start, (size_t)(p->buffer.end - p->buffer.start));
    for (yaml_token_t *t = p->tokens.head; t != NULL && t != p->tokens.tail; t++) {
        if (t->type == YAML_SCALAR_TOKEN && t->data.scalar.value != NULL)
            explicit_bzero(t->data.scalar.value, t->data.scalar.length);
    }
}

/* Reads all of fd into a new buffer of at most CONFIG_FILE_MAX bytes; caller wipes and frees. */
static int read_file(int fd, const struct stat *st, char **out, size_t *len, size_t *cap)
{
    size_t size = S_ISREG(st->st_mode) ? (size_t)st->st_size + 1 : (size_t)CONFIG_FILE_MAX + 1;
    char *buf;
    size_t n = 0;

    *out = NULL;
    *len = *cap = 0;
    if (S_ISREG(st->st_mode) && st->st_size > CONFIG_FILE_MAX)
        return ERR_TOO_LARGE;
    /* One allocation of the final size: growing it would leave copies behind. */
    if ((buf = malloc(size)) == NULL)
        return ERR_NOMEM;
    while (n < size) {
        ssize_t got = read(fd, buf + n, size - n);

        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int r = -errno;

            explicit_bzero(buf, size);
            free(buf);
            return r;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    if (n == size) {
        /* A pipe over the limit, or a regular file that grew while we read it. */
        explicit_bzero(buf, size);
        free(buf);
        return ERR_TOO_LARGE;
    }
    *out = buf;
    *len = n;
    *cap = size;
    return 0;
}

int config_load_file(struct runner_config *c, const char *path, char *err, size_t errlen)
{
    struct walk *y = NULL;
    struct where w = {err, errlen, NULL};
    char where_path[256], *text = NULL, *real = NULL;
    size_t text_len = 0, text_cap = 0;
    struct stat st;
    int fd = -1, r;

    if (errlen > 0)
        err[0] = '\0';
    snprintf(where_path, sizeof(where_path), "%.200s", path);
    w.origin = where_path;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
        r = -errno;
        return config__fail(&w, NULL, r, "cannot open the config file: %s", strerror(-r));
    }
    if (fstat(fd, &st) != 0) {
        r = -errno;
        config__fail(&w, NULL, r, "cannot stat the config file: %s", strerror(-r));
        goto out;
    }
    if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode)) {
        r = config__fail(&w, NULL, ERR_INVALID, "the config file is not a regular file or a pipe");
        goto out;
    }
    if ((st.st_mode & S_IWOTH) != 0) {
        /* Whoever can edit it can point api_url at their own server and collect the token. */
        r = config__fail(&w, NULL, ERR_KEY_PERMS,
                         "the config file is writable by others (mode %04o): chmod o-w it",
                         (unsigned)(st.st_mode & 07777));
        goto out;
    }
    if ((r = read_file(fd, &st, &text, &text_len, &text_cap)) != 0) {
        if (r == ERR_TOO_LARGE)
            config__fail(&w, NULL, r, "the config file is larger than %d bytes", CONFIG_FILE_MAX);
        else
            config__fail(&w, NULL, r, "cannot read the config file: %s", err_str(r));
        goto out;
    }
    close(fd);
    fd = -1;
    if (S_ISREG(st.st_mode) && (real = realpath(path, NULL)) == NULL) {
        r = -errno;
        config__fail(&w, NULL, r, "cannot resolve the config file's path: %s", strerror(-r));
        goto out;
    }

    if ((y = calloc(1, sizeof(*y))) == NULL) {
        r = config__fail(&w, NULL, ERR_NOMEM, "%s", err_str(ERR_NOMEM));
        goto out;
    }
    if (!yaml_parser_initialize(&y->parser)) {
        free(y);
        y = NULL;
        r = config__fail(&w, NULL, ERR_NOMEM, "%s", err_str(ERR_NOMEM));
        goto out;
    }
    yaml_parser_set_input_string(&y->parser, (const unsigned char *)text, text_len);
    y->c = c;
    y->path = where_path;
    y->text = text;
    y->text_len = text_len;
    y->mode = st.st_mode;
    y->w.err = err;
    y->w.errlen = errlen;
    y->w.origin = y->origin;
    if ((r = walk_stream(y)) != 0)
        goto out;
    free(c->config_path);
    c->config_path = real;
    real = NULL; /* transferred */
out:
    if (y != NULL) {
        walk_drop(y);
        walk_wipe_parser(&y->parser);
        yaml_parser_delete(&y->parser);
        free(y);
    }
    if (text != NULL) {
        explicit_bzero(text, text_cap);
        free(text);
    }
    free(real);
    if (fd >= 0)
        close(fd);
    return r;
}
