/*
 * config.c - the runner's configuration. See config.h.
 *
 * One table (keys[]) describes every key: its dotted name, its kind, where its
 * field is and its range. The YAML walker, the environment and config_set() all
 * end in the same setter (set_text), so a key accepts the same values and
 * fails with the same words from every source; config_validate() re-checks the
 * ranges from the same table.
 *
 * The file is read with libyaml's event parser rather than its document
 * loader: every scalar can then be wiped before libyaml frees it, and aliases
 * (which the loader would silently resolve) can be refused.
 *
 * Not for: deciding what a setting does; the runner's other modules read the
 * struct.
 *
 * XXX: libyaml grows a scalar with realloc() while scanning it, and frees the
 * smaller buffers it outgrows without wiping them; there is no allocator hook
 * to fix that. An api_key in the environment avoids it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "ascii.h"
#include "config.h"
#include "err.h"
#include "log.h"
#include "rewrite.h"
#include "secret.h"

#define CONFIG_KEY_MAX 100  /* bytes in a dotted key we look up */
#define CONFIG_SHOWN_MAX 64 /* bytes of a bad value quoted in an error */
#define MS_MAX (365ull * 24 * 3600 * 1000)

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
};

struct key_def {
    const char *key;
    enum kind kind;
    size_t off, count_off;
    uint64_t min, max;
};

#define F(member) offsetof(struct runner_config, member)

static const struct key_def keys[] = {
    {"api_key", KIND_SECRET, 0, 0, 0, 0},
    {"api_url", KIND_STRING, F(api_url), 0, 0, 0},
    {"name", KIND_STRING, F(name), 0, 0, 0},
    {"labels", KIND_LABELS, 0, 0, 0, 0},
    {"workspace_root", KIND_STRING, F(workspace_root), 0, 0, 0},
    {"auto_update", KIND_IGNORED, 0, 0, 0, 0},
    {"worknode_id", KIND_IGNORED, 0, 0, 0, 0},
    {"permission", KIND_SECTION, 0, 0, 0, 0},
    {"permission.bash", KIND_PERMISSION, 0, 0, 0, 0},
    {"log", KIND_SECTION, 0, 0, 0, 0},
    {"log.level", KIND_LEVEL, 0, 0, 0, 0},
    {"log.format", KIND_FORMAT, 0, 0, 0, 0},
    {"log.file", KIND_STRING, F(log_file), 0, 0, 0},
    {"broker", KIND_SECTION, 0, 0, 0, 0},
    {"broker.enabled", KIND_BOOL, F(broker.enabled), 0, 0, 0},
    {"broker.probe", KIND_STRING, F(broker.probe), 0, 0, 0},
    {"broker.cacert", KIND_STRING, F(broker.cacert), 0, 0, 0},
    {"broker.inject", KIND_INJECT, F(broker.inject), 0, 0, 0},
    {"broker.max_conns", KIND_UINT, F(broker.max_conns), 0, 1, 100000},
    {"broker.dial_rate", KIND_UINT, F(broker.dial_rate), 0, 1, 1000000},
    {"broker.max_body", KIND_U64, F(broker.max_body), 0, 1, 1ull << 40},
    {"broker.head_timeout", KIND_DURATION, F(broker.head_timeout_ms), 0, 1, MS_MAX},
    {"broker.idle_timeout", KIND_DURATION, F(broker.idle_timeout_ms), 0, 1, MS_MAX},
    {"broker.connect_timeout", KIND_DURATION, F(broker.connect_timeout_ms), 0, 1, MS_MAX},
    {"broker.response_timeout", KIND_DURATION, F(broker.response_timeout_ms), 0, 1, MS_MAX},
    {"broker.stall_timeout", KIND_DURATION, F(broker.stall_timeout_ms), 0, 1, MS_MAX},
    {"broker.audit", KIND_STRING, F(broker.audit), 0, 0, 0},
    {"broker.env_deny", KIND_LIST, F(broker.env_deny), F(broker.nenv_deny), 0, 0},
    {"broker.secret_paths", KIND_LIST, F(broker.secret_paths), F(broker.nsecret_paths), 0, 0},
    {"broker.isolation", KIND_ISOLATION, 0, 0, 0, 0},
    {"tasks", KIND_SECTION, 0, 0, 0, 0},
    {"tasks.max_concurrent", KIND_UINT, F(tasks.max_concurrent), 0, 1, 100000},
    {"tasks.default_timeout", KIND_DURATION, F(tasks.default_timeout_ms), 0, 1, MS_MAX},
    {"tasks.output_cap", KIND_SIZE, F(tasks.output_cap), 0, 1, 1ull << 30},
    {"tasks.result_queue", KIND_SIZE, F(tasks.result_queue), 0, 0, 1000000},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

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

/* ---- small helpers ---- */

static int fail(const struct where *w, const char *key, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes "<origin>: <key>: <message>" (or without the key) to err; returns code. */
static int fail(const struct where *w, const char *key, int code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (w->errlen == 0)
        return code;
    if (key != NULL)
        snprintf(w->err, w->errlen, "%s: %s: %s", w->origin, key, msg);
    else
        snprintf(w->err, w->errlen, "%s: %s", w->origin, msg);
    return code;
}

/*
 * A bad value, cut to CONFIG_SHOWN_MAX bytes with control bytes as '?', so
 * that err stays one line whatever the value holds. Never used for api_key.
 */
static const char *shown(char *out, size_t outlen, const char *v, size_t len)
{
    size_t i, n = len < CONFIG_SHOWN_MAX ? len : CONFIG_SHOWN_MAX;

    if (outlen < CONFIG_SHOWN_MAX + 4)
        return "";
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v[i];

        out[i] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    if (n < len) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
    return out;
}

static bool has_control(const char *v, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)v[i];

        if (ch < 0x20 || ch == 0x7f)
            return true;
    }
    return false;
}

static void *field(struct runner_config *c, const struct key_def *d)
{
    return (char *)c + d->off;
}

static const void *field_const(const struct runner_config *c, const struct key_def *d)
{
    return (const char *)c + d->off;
}

static const struct key_def *find_key(const char *key, size_t len)
{
    for (size_t i = 0; i < NKEYS; i++) {
        if (strlen(keys[i].key) == len && memcmp(keys[i].key, key, len) == 0)
            return &keys[i];
    }
    return NULL;
}

/* The key whose environment name (upper case, '.' -> '_') is name[0..len). */
static const struct key_def *find_env_key(const char *name, size_t len)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const char *k = keys[i].key;
        size_t j;

        if (keys[i].kind == KIND_SECTION || strlen(k) != len)
            continue;
        for (j = 0; j < len; j++) {
            unsigned char want = k[j] == '.' ? '_' : (unsigned char)k[j];

            if (want >= 'a' && want <= 'z')
                want = (unsigned char)(want - 'a' + 'A');
            if ((unsigned char)name[j] != want)
                break;
        }
        if (j == len)
            return &keys[i];
    }
    return NULL;
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static int strv_push(struct strv *s, const char *p, size_t len)
{
    char **nv, *copy;

    if ((copy = strndup(p, len)) == NULL)
        return ERR_NOMEM;
    if ((nv = reallocarray(s->v, s->n + 1, sizeof(*nv))) == NULL) {
        free(copy);
        return ERR_NOMEM;
    }
    s->v = nv;
    s->v[s->n++] = copy;
    return 0;
}

/* Digits only: no sign, no space, no base prefix (strtoull accepts all three). */
static int parse_u64(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;

    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned d;

        if (!ascii_is_digit((unsigned char)s[i]))
            return -1;
        d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* "10" (seconds), "10s", "500ms", "2m", "1h"; at most MS_MAX milliseconds. */
static int parse_duration_ms(const char *s, size_t len, uint64_t *out)
{
    size_t digits = 0;
    uint64_t v, mult;
    const char *unit;

    while (digits < len && ascii_is_digit((unsigned char)s[digits]))
        digits++;
    if (parse_u64(s, digits, &v) != 0)
        return -1;
    unit = s + digits;
    if (digits == len || strcmp(unit, "s") == 0)
        mult = 1000;
    else if (strcmp(unit, "ms") == 0)
        mult = 1;
    else if (strcmp(unit, "m") == 0)
        mult = 60 * 1000;
    else if (strcmp(unit, "h") == 0)
        mult = 3600 * 1000;
    else
        return -1;
    if (v > MS_MAX / mult)
        return -1;
    *out = v * mult;
    return 0;
}

/* YAML 1.1 booleans (what the Go runner's yaml reader takes), and 1/0 for the environment. */
static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* ---- lists ---- */

/*
 * Checks one item of a list (or a label's name, with value NULL) before it is
 * kept. Returns 0 or ERR_INVALID with err.
 */
static int check_item(const struct key_def *d, const char *v, size_t len, const struct where *w)
{
    char q[CONFIG_SHOWN_MAX + 4];

    if (len == 0)
        return fail(w, d->key, ERR_INVALID,
                    d->kind == KIND_LABELS ? "a label has an empty name" : "an item is empty");
    if (len > CONFIG_VALUE_MAX)
        return fail(w, d->key, ERR_INVALID, "an item is longer than %d bytes", CONFIG_VALUE_MAX);
    if (memchr(v, '\0', len) != NULL || has_control(v, len))
        return fail(w, d->key, ERR_INVALID, "'%s' contains a control byte",
                    shown(q, sizeof(q), v, len));
    if (d->off == F(broker.env_deny) && memchr(v, '=', len) != NULL)
        return fail(w, d->key, ERR_INVALID, "'%s' contains '=' and so matches no variable name",
                    shown(q, sizeof(q), v, len));
    if (d->off == F(broker.secret_paths) && v[0] != '/')
        return fail(w, d->key, ERR_INVALID, "'%s' is not an absolute path",
                    shown(q, sizeof(q), v, len));
    return 0;
}

static int check_label_value(const char *v, size_t len, const struct where *w)
{
    if (len > CONFIG_VALUE_MAX)
        return fail(w, "labels", ERR_INVALID, "a value is longer than %d bytes", CONFIG_VALUE_MAX);
    if (memchr(v, '\0', len) != NULL || has_control(v, len))
        return fail(w, "labels", ERR_INVALID, "a value contains a control byte");
    return 0;
}

/* Appends one item (for labels: a name and a value) after checking it. */
static int list_add(const struct key_def *d, struct strv *items, struct strv *values, const char *v,
                    size_t len, const char *val, size_t val_len, const struct where *w)
{
    char q[CONFIG_SHOWN_MAX + 4];
    int r;

    if (items->n >= CONFIG_LIST_MAX)
        return fail(w, d->key, ERR_INVALID, "more than %d items", CONFIG_LIST_MAX);
    if ((r = check_item(d, v, len, w)) != 0)
        return r;
    if (d->kind == KIND_LABELS) {
        if ((r = check_label_value(val, val_len, w)) != 0)
            return r;
        for (size_t i = 0; i < items->n; i++) {
            if (strlen(items->v[i]) == len && memcmp(items->v[i], v, len) == 0)
                return fail(w, d->key, ERR_INVALID, "label '%s' is given twice",
                            shown(q, sizeof(q), v, len));
        }
        if ((r = strv_push(values, val, val_len)) != 0)
            return fail(w, d->key, r, "%s", err_str(r));
    }
    if ((r = strv_push(items, v, len)) != 0) {
        if (d->kind == KIND_LABELS)
            free(values->v[--values->n]);
        return fail(w, d->key, r, "%s", err_str(r));
    }
    return 0;
}

/* Replaces the list (or the labels) with items (and values); takes them over. */
static void list_replace(struct runner_config *c, const struct key_def *d, struct strv *items,
                         struct strv *values)
{
    if (d->kind == KIND_LABELS) {
        strv_free(c->label_keys, c->nlabels);
        strv_free(c->label_values, c->nlabels);
        c->label_keys = items->v;
        c->label_values = values->v;
        c->nlabels = items->n;
        values->v = NULL; /* transferred */
        values->n = 0;
    } else {
        char ***list = field(c, d);
        size_t *count = (size_t *)((char *)c + d->count_off);

        strv_free(*list, *count);
        *list = items->v;
        *count = items->n;
    }
    items->v = NULL; /* transferred */
    items->n = 0;
}

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

/*
 * The text form of a list: "A,B_*", or for labels "k=v,k2=v2" (a bare "k"
 * has value ""). Items are trimmed of spaces; empty items are skipped.
 */
static int set_list_text(struct runner_config *c, const struct key_def *d, const char *v,
                         size_t len, const struct where *w)
{
    struct strv items = {NULL, 0}, values = {NULL, 0};
    const char *p = v, *end = v + len;
    int r = 0;

    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *item_end = comma != NULL ? comma : end;
        const char *ib = p, *ie = item_end, *vb = item_end, *ve = item_end;

        p = comma != NULL ? comma + 1 : end;
        if (d->kind == KIND_LABELS) {
            const char *eq = memchr(ib, '=', (size_t)(ie - ib));

            if (eq != NULL) {
                vb = eq + 1;
                ie = eq;
            }
            while (vb < ve && is_blank(*vb))
                vb++;
            while (ve > vb && is_blank(ve[-1]))
                ve--;
        }
        while (ib < ie && is_blank(*ib))
            ib++;
        while (ie > ib && is_blank(ie[-1]))
            ie--;
        if (ie == ib && vb == ve)
            continue;
        r = list_add(d, &items, &values, ib, (size_t)(ie - ib), vb, (size_t)(ve - vb), w);
        if (r != 0)
            goto out;
    }
    list_replace(c, d, &items, &values);
out:
    strv_free(items.v, items.n);
    strv_free(values.v, values.n);
    return r;
}

/* ---- the one setter ---- */

static int set_secret(struct runner_config *c, const char *v, size_t len, const struct where *w)
{
    struct secret *s;
    int r;

    if (len == 0) {
        secret_free(c->api_key);
        c->api_key = NULL;
        return 0;
    }
    /* Only the code's text: the value must never reach err. */
    if ((r = secret_validate_key((const uint8_t *)v, len)) != 0)
        return fail(w, "api_key", r, "%s", err_str(r));
    if ((r = secret_from(v, len, &s)) != 0)
        return fail(w, "api_key", r, "cannot allocate locked memory for the key: %s", err_str(r));
    secret_free(c->api_key);
    c->api_key = s;
    return 0;
}

static int set_string(char **slot, const char *v, size_t len, const struct key_def *d,
                      const struct where *w)
{
    char *copy = NULL;

    if (len > 0 && (copy = strndup(v, len)) == NULL)
        return fail(w, d->key, ERR_NOMEM, "%s", err_str(ERR_NOMEM));
    free(*slot);
    *slot = copy;
    return 0;
}

/*
 * Sets key d from text v[0..len) (NUL-terminated at len): a scalar from the
 * file, or any value from the environment or config_set().
 */
static int set_text(struct runner_config *c, const struct key_def *d, const char *v, size_t len,
                    const struct where *w)
{
    char q[CONFIG_SHOWN_MAX + 4];
    uint64_t n;
    bool b;

    if (d->kind == KIND_SECRET)
        return set_secret(c, v, len, w);
    if (d->kind == KIND_IGNORED)
        return 0;
    if (d->kind == KIND_LABELS || d->kind == KIND_LIST)
        return set_list_text(c, d, v, len, w);
    if (d->kind == KIND_SECTION)
        return fail(w, d->key, ERR_INVALID, "is a section, not a value: set one of its keys");
    if (len > CONFIG_VALUE_MAX)
        return fail(w, d->key, ERR_INVALID, "longer than %d bytes", CONFIG_VALUE_MAX);
    if (memchr(v, '\0', len) != NULL || has_control(v, len))
        return fail(w, d->key, ERR_INVALID, "'%s' contains a control byte",
                    shown(q, sizeof(q), v, len));

    switch (d->kind) {
    case KIND_STRING:
        return set_string(field(c, d), v, len, d, w);
    case KIND_INJECT: {
        struct inject inj;

        if (len > 0 && inject_parse(v, &inj) != 0)
            return fail(w, d->key, ERR_INVALID, "'%s' is not query:NAME, header:NAME or bearer",
                        shown(q, sizeof(q), v, len));
        return set_string(field(c, d), v, len, d, w);
    }
    case KIND_BOOL:
        if (parse_bool(v, &b) != 0)
            return fail(w, d->key, ERR_INVALID, "'%s' is not true or false",
                        shown(q, sizeof(q), v, len));
        *(bool *)field(c, d) = b;
        return 0;
    case KIND_UINT:
    case KIND_U64:
    case KIND_SIZE:
        if (parse_u64(v, len, &n) != 0 || n < d->min || n > d->max)
            return fail(w, d->key, ERR_INVALID, "'%s' is not a whole number from %llu to %llu",
                        shown(q, sizeof(q), v, len), (unsigned long long)d->min,
                        (unsigned long long)d->max);
        if (d->kind == KIND_UINT)
            *(unsigned *)field(c, d) = (unsigned)n;
        else if (d->kind == KIND_U64)
            *(uint64_t *)field(c, d) = n;
        else
            *(size_t *)field(c, d) = (size_t)n;
        return 0;
    case KIND_DURATION:
        if (parse_duration_ms(v, len, &n) != 0 || n < d->min || n > d->max)
            return fail(w, d->key, ERR_INVALID,
                        "'%s' is not a duration from 1ms to 365 days (10, 10s, 500ms, 2m, 1h)",
                        shown(q, sizeof(q), v, len));
        *(uint64_t *)field(c, d) = n;
        return 0;
    case KIND_LEVEL:
        if (log_parse_level(v, &c->log_level) != 0)
            return fail(w, d->key, ERR_INVALID, "'%s' is not one of error, warn, info, debug",
                        shown(q, sizeof(q), v, len));
        return 0;
    case KIND_FORMAT:
        /* "text" is the Go runner's name for the plain format. */
        if (strcmp(v, "logfmt") == 0 || strcmp(v, "text") == 0)
            c->log_json = false;
        else if (strcmp(v, "json") == 0)
            c->log_json = true;
        else
            return fail(w, d->key, ERR_INVALID, "'%s' is not one of logfmt, json",
                        shown(q, sizeof(q), v, len));
        return 0;
    case KIND_PERMISSION:
        if (strcmp(v, "allow") == 0)
            c->bash_allowed = true;
        else if (strcmp(v, "deny") == 0)
            c->bash_allowed = false;
        else
            return fail(w, d->key, ERR_INVALID, "'%s' is not one of allow, deny",
                        shown(q, sizeof(q), v, len));
        return 0;
    case KIND_ISOLATION:
        if (strcmp(v, "auto") == 0)
            c->broker.isolation = ISOLATION_AUTO;
        else if (strcmp(v, "required") == 0)
            c->broker.isolation = ISOLATION_REQUIRED;
        else if (strcmp(v, "off") == 0)
            c->broker.isolation = ISOLATION_OFF;
        else
            return fail(w, d->key, ERR_INVALID, "'%s' is not one of auto, required, off",
                        shown(q, sizeof(q), v, len));
        return 0;
    case KIND_SECTION:
    case KIND_IGNORED:
    case KIND_SECRET:
    case KIND_LABELS:
    case KIND_LIST:
        break; /* handled above */
    }
    return fail(w, d->key, ERR_INVALID, "cannot be set");
}

/* ---- the YAML file ---- */

struct walk {
    yaml_parser_t parser;
    yaml_event_t ev;
    bool have_ev;
    struct runner_config *c;
    const char *path;
    const char *text; /* the file's bytes, for the line of a reader error */
    size_t text_len;
    mode_t mode;
    unsigned long seen_line[NKEYS]; /* 0: not seen yet */
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
        return fail(&y->w, NULL, ERR_NOMEM, "%s", err_str(ERR_NOMEM));
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
    return fail(&y->w, NULL, ERR_INVALID, "YAML syntax error: %s%s%s%s",
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
        return fail(&y->w, NULL, ERR_INVALID, "YAML aliases (*name) are not supported here");
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
            r = fail(&y->w, d->key, ERR_INVALID, "items must be single values, found %s",
                     walk_found(y));
            goto out;
        }
        v = walk_scalar(y, &len);
        if (d->kind == KIND_LABELS) {
            /* "os:linux" is the pair (os, linux); "k8s" is (k8s, ""). */
            colon = memchr(v, ':', len);
            if (colon != NULL)
                r = list_add(d, &items, &values, v, (size_t)(colon - v), colon + 1,
                             len - (size_t)(colon - v) - 1, &y->w);
            else
                r = list_add(d, &items, &values, v, len, "", 0, &y->w);
        } else {
            r = list_add(d, &items, &values, v, len, NULL, 0, &y->w);
        }
        if (r != 0)
            goto out;
    }
    list_replace(y->c, d, &items, &values);
out:
    strv_free(items.v, items.n);
    strv_free(values.v, values.n);
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
            r = fail(&y->w, d->key, ERR_INVALID, "label names must be single values, found %s",
                     walk_found(y));
            goto out;
        }
        v = walk_scalar(y, &name_len);
        if ((name = malloc(name_len + 1)) == NULL) {
            r = fail(&y->w, d->key, ERR_NOMEM, "%s", err_str(ERR_NOMEM));
            goto out;
        }
        memcpy(name, v, name_len + 1);
        if ((r = walk_next(y)) != 0)
            goto out;
        if (y->ev.type != YAML_SCALAR_EVENT) {
            r = fail(&y->w, d->key, ERR_INVALID, "label values must be single values, found %s",
                     walk_found(y));
            goto out;
        }
        v = walk_scalar(y, &len);
        if ((r = list_add(d, &items, &values, name, name_len, v, len, &y->w)) != 0)
            goto out;
        free(name);
        name = NULL;
    }
    list_replace(y->c, d, &items, &values);
out:
    free(name);
    strv_free(items.v, items.n);
    strv_free(values.v, values.n);
    return r;
}

/*
 * permission.bash in the Go runner's form, a mapping of command globs to allow
 * or deny. Only "*" can be expressed here; anything finer is refused rather
 * than widened or dropped. An empty mapping denies, as it does in the Go runner.
 */
static int walk_permission(struct walk *y, const struct key_def *d)
{
    char q[CONFIG_SHOWN_MAX + 4];
    size_t len;
    const char *v;
    bool allowed = false;
    int r;

    for (;;) {
        if ((r = walk_next(y)) != 0)
            return r;
        if (y->ev.type == YAML_MAPPING_END_EVENT)
            break;
        walk_at(y, walk_line(y));
        if (y->ev.type != YAML_SCALAR_EVENT)
            return fail(&y->w, d->key, ERR_INVALID, "rules must be single values, found %s",
                        walk_found(y));
        v = walk_scalar(y, &len);
        if (strcmp(v, "*") != 0)
            return fail(&y->w, d->key, ERR_INVALID,
                        "per-command rules ('%s') are not supported: use allow or deny",
                        shown(q, sizeof(q), v, len));
        if ((r = walk_next(y)) != 0)
            return r;
        if (y->ev.type != YAML_SCALAR_EVENT)
            return fail(&y->w, d->key, ERR_INVALID, "expected allow or deny, found %s",
                        walk_found(y));
        v = walk_scalar(y, &len);
        if (strcmp(v, "allow") == 0)
            allowed = true;
        else if (strcmp(v, "deny") == 0)
            allowed = false;
        else
            return fail(&y->w, d->key, ERR_INVALID, "'%s' is not one of allow, deny",
                        shown(q, sizeof(q), v, len));
    }
    y->c->bash_allowed = allowed;
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
        return fail(&y->w, d->key, ERR_INVALID, "expected a mapping of keys, found %s",
                    walk_found(y));
    case KIND_LABELS:
        if (t == YAML_MAPPING_START_EVENT)
            return walk_labels(y, d);
        if (t == YAML_SEQUENCE_START_EVENT)
            return walk_list(y, d);
        if (walk_is_null(y))
            return set_list_text(y->c, d, "", 0, &y->w);
        return fail(&y->w, d->key, ERR_INVALID, "expected a mapping (or a list), found %s",
                    walk_found(y));
    case KIND_LIST:
        if (t == YAML_SEQUENCE_START_EVENT)
            return walk_list(y, d);
        if (walk_is_null(y))
            return set_list_text(y->c, d, "", 0, &y->w);
        return fail(&y->w, d->key, ERR_INVALID, "expected a list, found %s", walk_found(y));
    case KIND_PERMISSION:
        if (t == YAML_MAPPING_START_EVENT)
            return walk_permission(y, d);
        break;
    case KIND_SECRET:
        if (t == YAML_SCALAR_EVENT && y->ev.data.scalar.length > 0 && !walk_is_null(y) &&
            (y->mode & 077) != 0)
            /* Like ssh with a private key: a key others can read is already leaked. */
            return fail(&y->w, d->key, ERR_KEY_PERMS,
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
        return fail(&y->w, d->key, ERR_INVALID, "expected a single value, found %s", walk_found(y));
    v = walk_scalar(y, &len);
    return set_text(y->c, d, v, len, &y->w);
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
            return fail(&y->w, prefix, ERR_INVALID, "keys must be single values, found %s",
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
            d = find_key(name, plen + klen);
        }
        if (d == NULL || (prefix == NULL && strchr(d->key, '.') != NULL)) {
            char shown_key[CONFIG_KEY_MAX + CONFIG_SHOWN_MAX + 8];

            /* "broker.cacert" written as a top-level key is a typo for a nested one. */
            snprintf(shown_key, sizeof(shown_key), "%s%s%s", prefix != NULL ? prefix : "",
                     prefix != NULL ? "." : "",
                     shown(q, sizeof(q), (const char *)y->ev.data.scalar.value, klen));
            return fail(&y->w, shown_key, ERR_INVALID, "unknown key");
        }
        idx = (size_t)(d - keys);
        if (y->seen_line[idx] != 0)
            return fail(&y->w, d->key, ERR_INVALID, "given twice (first on line %lu)",
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
        return fail(&y->w, NULL, ERR_INVALID, "the top level must be a mapping of keys, found %s",
                    walk_found(y));
    }
    /* The document end, then the stream end. */
    if ((r = walk_next(y)) != 0 || (r = walk_next(y)) != 0)
        return r;
    if (y->ev.type != YAML_STREAM_END_EVENT) {
        walk_at(y, walk_line(y));
        return fail(&y->w, NULL, ERR_INVALID, "only one YAML document is allowed");
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
        return fail(&w, NULL, r, "cannot open the config file: %s", strerror(-r));
    }
    if (fstat(fd, &st) != 0) {
        r = -errno;
        fail(&w, NULL, r, "cannot stat the config file: %s", strerror(-r));
        goto out;
    }
    if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode)) {
        r = fail(&w, NULL, ERR_INVALID, "the config file is not a regular file or a pipe");
        goto out;
    }
    if ((st.st_mode & S_IWOTH) != 0) {
        /* Whoever can edit it can point api_url at their own server and collect the token. */
        r = fail(&w, NULL, ERR_KEY_PERMS,
                 "the config file is writable by others (mode %04o): chmod o-w it",
                 (unsigned)(st.st_mode & 07777));
        goto out;
    }
    if ((r = read_file(fd, &st, &text, &text_len, &text_cap)) != 0) {
        if (r == ERR_TOO_LARGE)
            fail(&w, NULL, r, "the config file is larger than %d bytes", CONFIG_FILE_MAX);
        else
            fail(&w, NULL, r, "cannot read the config file: %s", err_str(r));
        goto out;
    }
    close(fd);
    fd = -1;
    if (S_ISREG(st.st_mode) && (real = realpath(path, NULL)) == NULL) {
        r = -errno;
        fail(&w, NULL, r, "cannot resolve the config file's path: %s", strerror(-r));
        goto out;
    }

    if ((y = calloc(1, sizeof(*y))) == NULL) {
        r = fail(&w, NULL, ERR_NOMEM, "%s", err_str(ERR_NOMEM));
        goto out;
    }
    if (!yaml_parser_initialize(&y->parser)) {
        free(y);
        y = NULL;
        r = fail(&w, NULL, ERR_NOMEM, "%s", err_str(ERR_NOMEM));
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

/* ---- environment and flags ---- */

int config_apply_env(struct runner_config *c, char *const *envp, char *err, size_t errlen)
{
    const size_t plen = sizeof(CONFIG_ENV_PREFIX) - 1;
    char origin[128];
    struct where w = {err, errlen, origin};
    int r;

    if (errlen > 0)
        err[0] = '\0';
    for (size_t i = 0; envp != NULL && envp[i] != NULL; i++) {
        const char *e = envp[i], *eq, *value;
        const struct key_def *d;

        if (strncmp(e, CONFIG_ENV_PREFIX, plen) != 0 || (eq = strchr(e, '=')) == NULL)
            continue;
        value = eq + 1;
        if (*value == '\0')
            continue; /* unset, as viper treats an empty variable */
        snprintf(origin, sizeof(origin), "%.*s", (int)((eq - e) < 100 ? (eq - e) : 100), e);
        d = find_env_key(e + plen, (size_t)(eq - e) - plen);
        if (d == NULL)
            return fail(&w, NULL, ERR_INVALID,
                        "unknown variable: no configuration key has this name");
        if ((r = set_text(c, d, value, strlen(value), &w)) != 0)
            return r;
    }
    return 0;
}

int config_set(struct runner_config *c, const char *dotted_key, const char *value,
               const char *origin, char *err, size_t errlen)
{
    struct where w = {err, errlen, origin != NULL ? origin : "config_set"};
    char q[CONFIG_SHOWN_MAX + 4];
    const struct key_def *d;
    size_t len = strlen(dotted_key);

    if (errlen > 0)
        err[0] = '\0';
    if (len > CONFIG_KEY_MAX || (d = find_key(dotted_key, len)) == NULL)
        return fail(&w, shown(q, sizeof(q), dotted_key, len), ERR_INVALID, "unknown key");
    if (d->kind == KIND_SECRET)
        return fail(&w, d->key, ERR_INVALID,
                    "cannot be given on the command line, where every user can read it in ps: "
                    "use the config file or " CONFIG_ENV_PREFIX "API_KEY");
    if (value == NULL)
        return fail(&w, d->key, ERR_INVALID, "needs a value");
    return set_text(c, d, value, strlen(value), &w);
}

/* ---- defaults, validation, free ---- */

/* $HOME/.flashduty-runner/workspace, $HOME from the environment or else the passwd entry. */
static char *default_workspace(void)
{
    const char *home = getenv("HOME");
    struct passwd pw, *found = NULL;
    char pwbuf[4096], *out = NULL;
    size_t len;

    if (home == NULL || home[0] != '/') {
        home = NULL;
        if (getpwuid_r(geteuid(), &pw, pwbuf, sizeof(pwbuf), &found) == 0 && found != NULL &&
            found->pw_dir != NULL && found->pw_dir[0] == '/')
            home = found->pw_dir;
    }
    if (home == NULL)
        return NULL;
    len = strlen(home) + sizeof("/.flashduty-runner/workspace");
    if ((out = malloc(len)) != NULL)
        snprintf(out, len, "%s/.flashduty-runner/workspace", home);
    return out;
}

int config_init(struct runner_config *c)
{
    char host[HOST_NAME_MAX + 1];

    memset(c, 0, sizeof(*c));
    c->bash_allowed = true;
    c->log_level = LOG_LEVEL_INFO;
    c->log_json = false;
    /* The broker's own defaults (DESIGN.md sections 2 and 4, broker_limits_default). */
    c->broker.enabled = true;
    c->broker.max_conns = 64;
    c->broker.dial_rate = 100;
    c->broker.max_body = 64ull * 1024 * 1024;
    c->broker.head_timeout_ms = 10 * 1000;
    c->broker.idle_timeout_ms = 60 * 1000;
    c->broker.connect_timeout_ms = 10 * 1000;
    c->broker.response_timeout_ms = 60 * 1000;
    c->broker.stall_timeout_ms = 120 * 1000;
    c->broker.isolation = ISOLATION_AUTO;
    /* DESIGN.md section 6. */
    c->tasks.max_concurrent = 64;
    c->tasks.default_timeout_ms = 120 * 1000;
    c->tasks.output_cap = 10 * 1024 * 1024;
    c->tasks.result_queue = 256;

    if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
        snprintf(host, sizeof(host), "flashduty-runner");
    host[sizeof(host) - 1] = '\0';
    if ((c->api_url = strdup(CONFIG_DEFAULT_API_URL)) == NULL || (c->name = strdup(host)) == NULL ||
        (c->broker.inject = strdup(INJECT_DEFAULT)) == NULL)
        return ERR_NOMEM;
    /* NULL when there is no home at all: config_validate() then asks for workspace_root. */
    c->workspace_root = default_workspace();
    return 0;
}

void config_free(struct runner_config *c)
{
    if (c == NULL)
        return;
    secret_free(c->api_key);
    free(c->api_url);
    free(c->name);
    free(c->workspace_root);
    free(c->log_file);
    strv_free(c->label_keys, c->nlabels);
    strv_free(c->label_values, c->nlabels);
    free(c->broker.probe);
    free(c->broker.cacert);
    free(c->broker.inject);
    free(c->broker.audit);
    strv_free(c->broker.env_deny, c->broker.nenv_deny);
    strv_free(c->broker.secret_paths, c->broker.nsecret_paths);
    free(c->config_path);
    memset(c, 0, sizeof(*c));
}

static bool is_host_byte(unsigned char ch)
{
    return ascii_is_alpha(ch) || ascii_is_digit(ch) || ch == '-' || ch == '.' || ch == '_';
}

/* What is wrong with a WebSocket URL, or NULL. */
static const char *url_problem(const char *url)
{
    const char *p, *auth_end, *host, *host_end, *port = NULL;
    uint64_t port_num;

    if (strncmp(url, "wss://", 6) == 0)
        p = url + 6;
    else if (strncmp(url, "ws://", 5) == 0)
        p = url + 5;
    else
        return "must start with ws:// or wss://";
    if (has_control(url, strlen(url)) || strchr(url, ' ') != NULL)
        return "contains a space or a control byte";
    if (strchr(p, '?') != NULL)
        return "must not have a query (the runner adds ?token=)";
    if (strchr(p, '#') != NULL)
        return "must not have a fragment";
    auth_end = p + strcspn(p, "/");
    if (memchr(p, '@', (size_t)(auth_end - p)) != NULL)
        return "must not hold user@ (the runner authenticates with api_key)";
    host = p;
    if (*p == '[') {
        /* RFC 3986 3.2.2: an IPv6 literal. */
        host = p + 1;
        if ((host_end = memchr(host, ']', (size_t)(auth_end - host))) == NULL)
            return "has an unclosed '[' in its host";
        for (const char *h = host; h < host_end; h++) {
            if (ascii_hex_value((unsigned char)*h) < 0 && *h != ':' && *h != '.')
                return "has a bad IPv6 host";
        }
        if (host_end + 1 < auth_end && host_end[1] != ':')
            return "has bytes after its IPv6 host";
        if (host_end + 1 < auth_end)
            port = host_end + 2;
    } else {
        host_end = memchr(p, ':', (size_t)(auth_end - p));
        if (host_end != NULL)
            port = host_end + 1;
        else
            host_end = auth_end;
        for (const char *h = host; h < host_end; h++) {
            if (!is_host_byte((unsigned char)*h))
                return "has a bad byte in its host";
        }
    }
    if (host_end == host)
        return "has no host";
    if (port != NULL && (parse_u64(port, (size_t)(auth_end - port), &port_num) != 0 ||
                         port_num < 1 || port_num > 65535))
        return "has a bad port (1-65535)";
    return NULL;
}

int config_validate(const struct runner_config *c, char *err, size_t errlen)
{
    const struct key_def *key_env_deny = find_key("broker.env_deny", strlen("broker.env_deny"));
    const struct key_def *key_secret_paths =
        find_key("broker.secret_paths", strlen("broker.secret_paths"));
    struct where w = {err, errlen, "config"};
    char q[CONFIG_SHOWN_MAX + 4];
    const char *problem;
    struct inject inj;
    int r;

    if (errlen > 0)
        err[0] = '\0';
    if (c->api_key == NULL)
        return fail(&w, "api_key", ERR_INVALID,
                    "not set: put it in the config file or in " CONFIG_ENV_PREFIX "API_KEY");
    if (c->api_url == NULL)
        return fail(&w, "api_url", ERR_BAD_URL, "is empty");
    if ((problem = url_problem(c->api_url)) != NULL)
        return fail(&w, "api_url", ERR_BAD_URL, "'%s' %s",
                    shown(q, sizeof(q), c->api_url, strlen(c->api_url)), problem);
    if (c->name == NULL)
        return fail(&w, "name", ERR_INVALID, "is empty");
    if (c->workspace_root == NULL)
        return fail(&w, "workspace_root", ERR_INVALID, "is empty (and there is no $HOME)");
    if (c->broker.inject != NULL && inject_parse(c->broker.inject, &inj) != 0)
        return fail(&w, "broker.inject", ERR_INVALID, "is not query:NAME, header:NAME or bearer");
    if ((unsigned)c->log_level > LOG_LEVEL_DEBUG)
        return fail(&w, "log.level", ERR_INVALID, "is out of range");
    if ((unsigned)c->broker.isolation > ISOLATION_OFF)
        return fail(&w, "broker.isolation", ERR_INVALID, "is out of range");
    for (size_t i = 0; i < NKEYS; i++) {
        const struct key_def *d = &keys[i];
        uint64_t n;

        switch (d->kind) {
        case KIND_UINT:
            n = *(const unsigned *)field_const(c, d);
            break;
        case KIND_U64:
        case KIND_DURATION:
            n = *(const uint64_t *)field_const(c, d);
            break;
        case KIND_SIZE:
            n = *(const size_t *)field_const(c, d);
            break;
        default:
            continue;
        }
        if (n < d->min || n > d->max)
            return fail(&w, d->key, ERR_INVALID, "%llu is not from %llu to %llu",
                        (unsigned long long)n, (unsigned long long)d->min,
                        (unsigned long long)d->max);
    }
    for (size_t i = 0; i < c->broker.nsecret_paths; i++) {
        const char *p = c->broker.secret_paths[i];

        if ((r = check_item(key_secret_paths, p, strlen(p), &w)) != 0)
            return r;
    }
    for (size_t i = 0; i < c->broker.nenv_deny; i++) {
        const char *p = c->broker.env_deny[i];

        if ((r = check_item(key_env_deny, p, strlen(p), &w)) != 0)
            return r;
    }
    for (size_t i = 0; i < c->nlabels; i++) {
        if (c->label_keys[i][0] == '\0')
            return fail(&w, "labels", ERR_INVALID, "a label has an empty name");
    }
    return 0;
}
