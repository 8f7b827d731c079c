/*
 * config.c - the runner's configuration. See config.h.
 *
 * One table (keys[]) describes every key: its dotted name, its kind, where its
 * field is and its range. The YAML file (config_yaml.c), the environment and
 * config_set() (config_env.c) all end in the same setter (config__set_text), so a
 * key accepts the same values and fails with the same words from every source;
 * config_validate() re-checks the ranges from the same table.
 *
 * Not for: deciding what a setting does; the runner's other modules read the
 * struct.
 */
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "route.h"
#include "ascii.h"
#include "config.h"
#include "config_internal.h"
#include "err.h"
#include "log.h"
#include "netguard.h"
#include "permission.h"
#include "rewrite.h"
#include "secret.h"

#define MS_MAX (365ull * 24 * 3600 * 1000)

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
    {"permission_config", KIND_STRING, F(permission_config), 0, 0, 0},
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
    {"broker.dial_wait", KIND_DURATION, F(broker.dial_wait_ms), 0, 0, MS_MAX},
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
    {"broker.routes", KIND_ROUTES, 0, 0, 0, 0},
    {"tasks", KIND_SECTION, 0, 0, 0, 0},
    {"tasks.max_concurrent", KIND_UINT, F(tasks.max_concurrent), 0, 1, 100000},
    {"tasks.default_timeout", KIND_DURATION, F(tasks.default_timeout_ms), 0, 1, MS_MAX},
    {"tasks.output_cap", KIND_SIZE, F(tasks.output_cap), 0, 1, 1ull << 30},
    {"tasks.result_queue", KIND_SIZE, F(tasks.result_queue), 0, 0, 1000000},
    {"tasks.shutdown_grace", KIND_DURATION, F(tasks.shutdown_grace_ms), 0, 0, MS_MAX},
    {"tasks.max_message_bytes", KIND_SIZE, F(tasks.max_message_bytes), 0, 65536, 1ull << 31},
    {"ops", KIND_SECTION, 0, 0, 0, 0},
    {"ops.read", KIND_SECTION, 0, 0, 0, 0},
    {"ops.read.max_bytes", KIND_SIZE, F(ops.read_max_bytes), 0, 1, 1ull << 30},
    {"ops.list", KIND_SECTION, 0, 0, 0, 0},
    {"ops.list.max_entries", KIND_SIZE, F(ops.list_max_entries), 0, 1, 10000000},
    {"ops.glob", KIND_SECTION, 0, 0, 0, 0},
    {"ops.glob.max_matches", KIND_SIZE, F(ops.glob_max_matches), 0, 1, 10000000},
    {"ops.grep", KIND_SECTION, 0, 0, 0, 0},
    {"ops.grep.max_matches", KIND_SIZE, F(ops.grep_max_matches), 0, 1, 10000000},
    {"ops.sync_skill", KIND_SECTION, 0, 0, 0, 0},
    {"ops.sync_skill.max_file_bytes", KIND_U64, F(ops.skill_max_file_bytes), 0, 1, 1ull << 40},
    {"ops.sync_skill.max_total_bytes", KIND_U64, F(ops.skill_max_total_bytes), 0, 1, 1ull << 44},
    {"ops.sync_skill.max_entries", KIND_U64, F(ops.skill_max_entries), 0, 1, 10000000},
    {"ops.sync_skill.max_ratio", KIND_U64, F(ops.skill_max_ratio), 0, 1, 1000000},
    {"ops.output", KIND_SECTION, 0, 0, 0, 0},
    {"ops.output.spill_max_age_seconds", KIND_DURATION, F(ops.spill_max_age_ms), 0, 1, MS_MAX},
    {"ops.output.spill_max_total_bytes", KIND_U64, F(ops.spill_max_total_bytes), 0, 1,
     1ull << 50},
    {"webfetch", KIND_SECTION, 0, 0, 0, 0},
    {"webfetch.allow_private", KIND_BOOL, F(webfetch.allow_private), 0, 0, 0},
    {"webfetch.allow_hosts", KIND_LIST, F(webfetch.allow_hosts), F(webfetch.nallow_hosts), 0, 0},
    {"webfetch.cacert", KIND_STRING, F(webfetch.cacert), 0, 0, 0},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))
_Static_assert(NKEYS <= CONFIG_KEYS_MAX, "config_internal.h: raise CONFIG_KEYS_MAX");

/* ---- small helpers ---- */

/* Writes "<origin>: <key>: <message>" (or without the key) to err; returns code. */
int config__fail(const struct where *w, const char *key, int code, const char *fmt, ...)
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
const char *config__shown(char *out, size_t outlen, const char *v, size_t len)
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

bool config__has_control(const char *v, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)v[i];

        if (ch < 0x20 || ch == 0x7f)
            return true;
    }
    return false;
}

const struct key_def *config__find_key(const char *key, size_t len)
{
    for (size_t i = 0; i < NKEYS; i++) {
        if (strlen(keys[i].key) == len && memcmp(keys[i].key, key, len) == 0)
            return &keys[i];
    }
    return NULL;
}

size_t config__key_index(const struct key_def *d)
{
    return (size_t)(d - keys);
}

const struct key_def *config__find_env_key(const char *name, size_t len)
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

void config__strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void config__permission_clear(struct runner_config *c)
{
    config__strv_free(c->permission_patterns, c->npermission);
    config__strv_free(c->permission_actions, c->npermission);
    c->permission_patterns = c->permission_actions = NULL;
    c->npermission = 0;
    c->permission_bash_set = true;
}

int config__permission_add(struct runner_config *c, const char *pattern, size_t plen,
                           const char *action, size_t alen)
{
    char **p, **a;

    if ((p = reallocarray(c->permission_patterns, c->npermission + 1, sizeof(*p))) == NULL)
        return ERR_NOMEM;
    c->permission_patterns = p;
    if ((a = reallocarray(c->permission_actions, c->npermission + 1, sizeof(*a))) == NULL)
        return ERR_NOMEM;
    c->permission_actions = a;
    if ((p[c->npermission] = strndup(pattern, plen)) == NULL)
        return ERR_NOMEM;
    if ((a[c->npermission] = strndup(action, alen)) == NULL) {
        free(p[c->npermission]);
        return ERR_NOMEM;
    }
    c->npermission++;
    c->permission_bash_set = true;
    return 0;
}

int config_load_permission(struct runner_config *c, char *err, size_t errlen)
{
    char why[512];
    int r;

    permission_rules_free(c->permission);
    c->permission = NULL;
    if (c->permission_config != NULL && c->permission_config[0] != '\0') {
        if (c->permission_bash_set)
            config_note(c, "permission.bash is ignored: the rules file "
                           "(--permission-config, FLASHDUTY_RUNNER_PERMISSION_CONFIG) decides");
        return permission_load_file(c->permission_config, &c->permission, err, errlen);
    }
    if (!c->permission_bash_set) {
        config_note(c, "permission rules not configured: every bash command is allowed");
        return 0;
    }
    if ((r = permission_rules_new((const char *const *)c->permission_patterns,
                                  (const char *const *)c->permission_actions, c->npermission,
                                  &c->permission, why, sizeof(why))) != 0)
        snprintf(err, errlen, "permission.bash: %s", why);
    return r;
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
        return config__fail(w, "api_key", r, "%s", err_str(r));
    if ((r = secret_from(v, len, &s)) != 0)
        return config__fail(w, "api_key", r, "cannot allocate locked memory for the key: %s",
                            err_str(r));
    secret_free(c->api_key);
    c->api_key = s;
    return 0;
}

static int set_string(char **slot, const char *v, size_t len, const struct key_def *d,
                      const struct where *w)
{
    char *copy = NULL;

    if (len > 0 && (copy = strndup(v, len)) == NULL)
        return config__fail(w, d->key, ERR_NOMEM, "%s", err_str(ERR_NOMEM));
    free(*slot);
    *slot = copy;
    return 0;
}

/*
 * Sets key d from text v[0..len) (NUL-terminated at len): a scalar from the
 * file, or any value from the environment or config_set().
 */
int config__set_text(struct runner_config *c, const struct key_def *d, const char *v, size_t len,
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
        return config__set_list_text(c, d, v, len, w);
    if (d->kind == KIND_SECTION)
        return config__fail(w, d->key, ERR_INVALID,
                            "is a section, not a value: set one of its keys");
    if (d->kind == KIND_ROUTES)
        return config__fail(w, d->key, ERR_INVALID,
                            "is a list of mappings: set it in the config file");
    if (len > CONFIG_VALUE_MAX)
        return config__fail(w, d->key, ERR_INVALID, "longer than %d bytes", CONFIG_VALUE_MAX);
    if (memchr(v, '\0', len) != NULL || config__has_control(v, len))
        return config__fail(w, d->key, ERR_INVALID, "'%s' contains a control byte",
                            config__shown(q, sizeof(q), v, len));

    switch (d->kind) {
    case KIND_STRING:
        return set_string(config__field(c, d), v, len, d, w);
    case KIND_INJECT: {
        struct inject inj;

        if (len > 0 && inject_parse(v, &inj) != 0)
            return config__fail(w, d->key, ERR_INVALID,
                                "'%s' is not query:NAME, header:NAME or bearer",
                                config__shown(q, sizeof(q), v, len));
        return set_string(config__field(c, d), v, len, d, w);
    }
    case KIND_BOOL:
        if (parse_bool(v, &b) != 0)
            return config__fail(w, d->key, ERR_INVALID, "'%s' is not true or false",
                                config__shown(q, sizeof(q), v, len));
        *(bool *)config__field(c, d) = b;
        return 0;
    case KIND_UINT:
    case KIND_U64:
    case KIND_SIZE:
        if (parse_u64(v, len, &n) != 0 || n < d->min || n > d->max)
            return config__fail(w, d->key, ERR_INVALID,
                                "'%s' is not a whole number from %llu to %llu",
                                config__shown(q, sizeof(q), v, len), (unsigned long long)d->min,
                                (unsigned long long)d->max);
        if (d->kind == KIND_UINT)
            *(unsigned *)config__field(c, d) = (unsigned)n;
        else if (d->kind == KIND_U64)
            *(uint64_t *)config__field(c, d) = n;
        else
            *(size_t *)config__field(c, d) = (size_t)n;
        return 0;
    case KIND_DURATION:
        if (parse_duration_ms(v, len, &n) != 0 || n < d->min || n > d->max)
            return config__fail(
                w, d->key, ERR_INVALID,
                "'%s' is not a duration from 1ms to 365 days (10, 10s, 500ms, 2m, 1h)",
                config__shown(q, sizeof(q), v, len));
        *(uint64_t *)config__field(c, d) = n;
        return 0;
    case KIND_LEVEL:
        if (log_parse_level(v, &c->log_level) != 0)
            return config__fail(w, d->key, ERR_INVALID,
                                "'%s' is not one of error, warn, info, debug",
                                config__shown(q, sizeof(q), v, len));
        return 0;
    case KIND_FORMAT:
        /* "text" is the Go runner's name for the plain format. */
        if (strcmp(v, "logfmt") == 0 || strcmp(v, "text") == 0)
            c->log_json = false;
        else if (strcmp(v, "json") == 0)
            c->log_json = true;
        else
            return config__fail(w, d->key, ERR_INVALID, "'%s' is not one of logfmt, json",
                                config__shown(q, sizeof(q), v, len));
        return 0;
    case KIND_PERMISSION:
        /* A scalar (--set permission.bash=deny, its variable): one rule for everything. */
        config__permission_clear(c);
        if (config__permission_add(c, "*", 1, v, len) != 0)
            return config__fail(w, d->key, ERR_NOMEM, "out of memory");
        return 0;
    case KIND_ISOLATION:
        if (strcmp(v, "auto") == 0)
            c->broker.isolation = ISOLATION_AUTO;
        else if (strcmp(v, "required") == 0)
            c->broker.isolation = ISOLATION_REQUIRED;
        else if (strcmp(v, "off") == 0)
            c->broker.isolation = ISOLATION_OFF;
        else
            return config__fail(w, d->key, ERR_INVALID, "'%s' is not one of auto, required, off",
                                config__shown(q, sizeof(q), v, len));
        return 0;
    case KIND_SECTION:
    case KIND_IGNORED:
    case KIND_SECRET:
    case KIND_LABELS:
    case KIND_LIST:
    case KIND_ROUTES:
        break; /* handled above */
    }
    return config__fail(w, d->key, ERR_INVALID, "cannot be set");
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
    c->log_level = LOG_LEVEL_INFO;
    c->log_json = false;
    /* The broker's own defaults (DESIGN.md sections 2 and 4, broker_limits_default). */
    c->broker.enabled = true;
    c->broker.max_conns = 64;
    c->broker.dial_rate = 100;
    c->broker.dial_wait_ms = 10 * 1000;
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
    c->tasks.shutdown_grace_ms = 30 * 1000;
    c->ops.read_max_bytes = 8 * 1024 * 1024;
    c->ops.list_max_entries = 50000;
    c->ops.glob_max_matches = 50000;
    c->ops.grep_max_matches = 10000;
    c->ops.skill_max_file_bytes = 100ull << 20;
    c->ops.skill_max_total_bytes = 512ull << 20;
    c->ops.skill_max_entries = 20000;
    c->ops.skill_max_ratio = 1000;
    c->ops.spill_max_age_ms = 7ull * 24 * 3600 * 1000;
    c->ops.spill_max_total_bytes = 1ull << 30;
    c->tasks.max_message_bytes = 16 * 1024 * 1024;

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
    config__strv_free(c->label_keys, c->nlabels);
    config__strv_free(c->label_values, c->nlabels);
    free(c->broker.probe);
    free(c->broker.cacert);
    free(c->broker.inject);
    free(c->broker.audit);
    config__strv_free(c->broker.env_deny, c->broker.nenv_deny);
    config__strv_free(c->broker.secret_paths, c->broker.nsecret_paths);
    for (size_t i = 0; i < c->broker.nroutes; i++)
        route_spec_free(&c->broker.routes[i]);
    free(c->broker.routes);
    config__strv_free(c->webfetch.allow_hosts, c->webfetch.nallow_hosts);
    free(c->webfetch.cacert);
    free(c->config_path);
    free(c->permission_config);
    config__strv_free(c->permission_patterns, c->npermission);
    config__strv_free(c->permission_actions, c->npermission);
    permission_rules_free(c->permission);
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
    if (config__has_control(url, strlen(url)) || strchr(url, ' ') != NULL)
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

/* webfetch.allow_hosts: each entry a host name, an IP address or a CIDR prefix. */
static int config__check_allow_hosts(const struct runner_config *c, char *err, size_t errlen)
{
    struct netguard g;
    int r = netguard_init(&g, false, c->webfetch.allow_hosts, c->webfetch.nallow_hosts, err,
                          errlen);

    netguard_free(&g);
    return r;
}

int config_validate(const struct runner_config *c, char *err, size_t errlen)
{
    const struct key_def *key_env_deny =
        config__find_key("broker.env_deny", strlen("broker.env_deny"));
    const struct key_def *key_secret_paths =
        config__find_key("broker.secret_paths", strlen("broker.secret_paths"));
    struct where w = {err, errlen, "config"};
    char q[CONFIG_SHOWN_MAX + 4];
    const char *problem;
    struct inject inj;
    int r;

    if (errlen > 0)
        err[0] = '\0';
    if (c->api_key == NULL)
        return config__fail(&w, "api_key", ERR_INVALID,
                            "not set: put it in " CONFIG_ENV_PREFIX
                            "TOKEN, the config file or " CONFIG_ENV_PREFIX "API_KEY");
    if (c->api_url == NULL)
        return config__fail(&w, "api_url", ERR_BAD_URL, "is empty");
    if ((problem = url_problem(c->api_url)) != NULL)
        return config__fail(&w, "api_url", ERR_BAD_URL, "'%s' %s",
                            config__shown(q, sizeof(q), c->api_url, strlen(c->api_url)), problem);
    if (c->name == NULL)
        return config__fail(&w, "name", ERR_INVALID, "is empty");
    if (c->workspace_root == NULL)
        return config__fail(&w, "workspace_root", ERR_INVALID, "is empty (and there is no $HOME)");
    if (c->broker.inject != NULL && inject_parse(c->broker.inject, &inj) != 0)
        return config__fail(&w, "broker.inject", ERR_INVALID,
                            "is not query:NAME, header:NAME or bearer");
    if ((unsigned)c->log_level > LOG_LEVEL_DEBUG)
        return config__fail(&w, "log.level", ERR_INVALID, "is out of range");
    if ((unsigned)c->broker.isolation > ISOLATION_OFF)
        return config__fail(&w, "broker.isolation", ERR_INVALID, "is out of range");
    for (size_t i = 0; i < NKEYS; i++) {
        const struct key_def *d = &keys[i];
        uint64_t n;

        switch (d->kind) {
        case KIND_UINT:
            n = *(const unsigned *)config__field_const(c, d);
            break;
        case KIND_U64:
        case KIND_DURATION:
            n = *(const uint64_t *)config__field_const(c, d);
            break;
        case KIND_SIZE:
            n = *(const size_t *)config__field_const(c, d);
            break;
        default:
            continue;
        }
        if (n < d->min || n > d->max)
            return config__fail(&w, d->key, ERR_INVALID, "%llu is not from %llu to %llu",
                                (unsigned long long)n, (unsigned long long)d->min,
                                (unsigned long long)d->max);
    }
    for (size_t i = 0; i < c->broker.nsecret_paths; i++) {
        const char *p = c->broker.secret_paths[i];

        if ((r = config__check_item(key_secret_paths, p, strlen(p), &w)) != 0)
            return r;
    }
    for (size_t i = 0; i < c->broker.nenv_deny; i++) {
        const char *p = c->broker.env_deny[i];

        if ((r = config__check_item(key_env_deny, p, strlen(p), &w)) != 0)
            return r;
    }
    for (size_t i = 0; i < c->nlabels; i++) {
        if (c->label_keys[i][0] == '\0')
            return config__fail(&w, "labels", ERR_INVALID, "a label has an empty name");
    }
    return config__check_allow_hosts(c, err, errlen);
}
