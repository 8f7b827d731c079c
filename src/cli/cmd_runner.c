/*
 * cmd_runner.c - `credbroker runner`: configuration in, daemon out.
 *
 * Precedence, lowest first: defaults, the YAML file (--config), FLASHDUTY_RUNNER_*
 * environment variables, flags. Any configuration error is one line and exit 2.
 * Both generations of the Go runner are read (RUNNER-OPS.md 11): the config era's
 * file and variables, and the newer runner's --token, --url, --workspace,
 * --log-level and their FLASHDUTY_RUNNER_ variables. In one layer a newer name wins
 * over the config-era one (--api-url, --workspace-root, --set KEY=), with a warning
 * when the values differ.
 *
 * The runner's own token comes from the file, from FLASHDUTY_RUNNER_TOKEN or
 * FLASHDUTY_RUNNER_API_KEY (both then wiped from this process's environment), from
 * --api-key-file, or from --token: accepted for the newer runner's command lines,
 * copied into the secret arena and wiped from argv at once, with a warning.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "cli.h"
#include "config.h"
#include "env.h"
#include "err.h"
#include "harden.h"
#include "key_source.h"
#include "log.h"
#include "permission.h"
#include "route_set.h"
#include "runner.h"
#include "secret.h"

#define API_KEY_ENV CONFIG_ENV_PREFIX "API_KEY"
#define TOKEN_ENV CONFIG_ENV_PREFIX "TOKEN"

#define NOTE_TOKEN_IN_ARGV                                                                         \
    "the token was given with --token, where other users can read it (ps, /proc/PID/cmdline) "     \
    "until the runner wipes it from its arguments: prefer " TOKEN_ENV ", --api-key-file or "       \
    "the config file"

static void runner_usage(FILE *f)
{
    fprintf(f,
        "usage: credbroker runner [--config FILE] [options]\n"
        "\n"
        "Connects to the agent platform (api_url) over a WebSocket and runs the bash tasks it\n"
        "sends, each credential kept in this process and used through a broker.\n"
        "\n"
        "  -c, --config FILE     YAML configuration (keys of the Go runner plus broker:, tasks:)\n"
        "  --token TOKEN         the runner's token (env FLASHDUTY_RUNNER_TOKEN; file: api_key).\n"
        "                        Visible in ps until wiped: prefer the variable or --api-key-file\n"
        "  --api-key-file PATH   read the runner's token from PATH (mode 600)\n"
        "  --url URL             ws:// or wss:// endpoint of the platform (env\n"
        "                        FLASHDUTY_RUNNER_URL; file: api_url; default\n"
        "                        " CONFIG_DEFAULT_API_URL ")\n"
        "  --api-url URL         the same, config-era name (--url wins)\n"
        "  --workspace DIR       where tasks run (env FLASHDUTY_RUNNER_WORKSPACE; file:\n"
        "                        workspace_root; default ~/.flashduty-runner/workspace)\n"
        "  --workspace-root DIR  the same, config-era name (--workspace wins)\n"
        "  --log-level LEVEL     error | warn | info | debug (env FLASHDUTY_RUNNER_LOG_LEVEL)\n"
        "  --name NAME           runner name (default: hostname)\n"
        "  --label KEY=VALUE     add a label (repeatable)\n"
        "  --log-format FORMAT   logfmt | json\n"
        "  --log-file PATH       append logs to PATH (SIGHUP reopens it)\n"
        "  --set KEY=VALUE       any configuration key, dotted (e.g. broker.cacert=/etc/ca.pem)\n"
        "  --permission-config FILE  the bash permission rules, a YAML `permission:` map of\n"
        "                        pattern -> allow|deny (env FLASHDUTY_RUNNER_PERMISSION_CONFIG);\n"
        "                        without it and permission.bash every command is allowed\n"
        "  --check-command CMD   say whether the rules allow CMD, the rule that decided each\n"
        "                        command it holds, and exit (0 allowed, 1 denied)\n"
        "  --print-config        print the effective settings (never the token) and exit\n"
        "Every key is also read from FLASHDUTY_RUNNER_<KEY> (dots become underscores).\n"
        "Precedence: flag > environment > config file > default; within one of them a newer\n"
        "name (--url, FLASHDUTY_RUNNER_URL, ...) wins over the config-era one, with a warning\n"
        "if they differ.\n");
}

enum {
    OPT_CONFIG = 2000, OPT_API_URL, OPT_API_KEY_FILE, OPT_NAME, OPT_LABEL, OPT_WORKSPACE_ROOT,
    OPT_LOG_LEVEL, OPT_LOG_FORMAT, OPT_LOG_FILE, OPT_SET, OPT_HELP, OPT_TOKEN, OPT_URL,
    OPT_WORKSPACE, OPT_PRINT_CONFIG, OPT_PERMISSION_CONFIG, OPT_CHECK_COMMAND,
};

static const struct option runner_options[] = {
    {"config", required_argument, NULL, OPT_CONFIG},
    {"token", required_argument, NULL, OPT_TOKEN},
    {"url", required_argument, NULL, OPT_URL},
    {"workspace", required_argument, NULL, OPT_WORKSPACE},
    {"api-url", required_argument, NULL, OPT_API_URL},
    {"api-key-file", required_argument, NULL, OPT_API_KEY_FILE},
    {"name", required_argument, NULL, OPT_NAME},
    {"label", required_argument, NULL, OPT_LABEL},
    {"workspace-root", required_argument, NULL, OPT_WORKSPACE_ROOT},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"log-file", required_argument, NULL, OPT_LOG_FILE},
    {"set", required_argument, NULL, OPT_SET},
    {"print-config", no_argument, NULL, OPT_PRINT_CONFIG},
    {"permission-config", required_argument, NULL, OPT_PERMISSION_CONFIG},
    {"check-command", required_argument, NULL, OPT_CHECK_COMMAND},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/*
 * The flags that name one key. The newer runner's (newer = true) are applied after
 * every other flag, so that each wins over the config-era flag or --set of its key;
 * note is the warning when both are given with different values.
 */
static const struct flag_key {
    int opt;
    const char *flag, *key;
    bool newer;
    const char *note;
} flag_keys[] = {
    {OPT_URL, "--url", "api_url", true,
     "--url and --api-url (or --set api_url=) are both given and differ: using --url"},
    {OPT_WORKSPACE, "--workspace", "workspace_root", true,
     "--workspace and --workspace-root (or --set workspace_root=) are both given and differ: "
     "using --workspace"},
    {OPT_LOG_LEVEL, "--log-level", "log.level", true,
     "--log-level and --set log.level= are both given and differ: using --log-level"},
    {OPT_API_URL, "--api-url", "api_url", false, NULL},
    {OPT_WORKSPACE_ROOT, "--workspace-root", "workspace_root", false, NULL},
    {OPT_NAME, "--name", "name", false, NULL},
    {OPT_LOG_FORMAT, "--log-format", "log.format", false, NULL},
    {OPT_LOG_FILE, "--log-file", "log.file", false, NULL},
    {OPT_PERMISSION_CONFIG, "--permission-config", "permission_config", false, NULL},
};

#define NFLAG_KEYS (sizeof(flag_keys) / sizeof(flag_keys[0]))

static const struct flag_key *flag_key_of(int opt)
{
    for (size_t i = 0; i < NFLAG_KEYS; i++) {
        if (flag_keys[i].opt == opt)
            return &flag_keys[i];
    }
    return NULL;
}

/*
 * The key and value one flag sets: key is filled (from the table, or from --set's
 * KEY=), *value points into arg. Returns 0 or -1 with err filled.
 */
static int flag_split(int opt, const char *arg, char *key, size_t keylen, const char **value,
                      char *err, size_t errlen)
{
    const struct flag_key *fk = flag_key_of(opt);
    const char *eq;

    *value = arg;
    if (fk != NULL) {
        snprintf(key, keylen, "%s", fk->key);
        return 0;
    }
    if (opt != OPT_SET)
        return -1;
    if ((eq = strchr(arg, '=')) == NULL || eq == arg || (size_t)(eq - arg) >= 100) {
        snprintf(err, errlen, "--set wants KEY=VALUE, got '%.100s'", arg);
        return -1;
    }
    snprintf(key, keylen, "%.*s", (int)(eq - arg), arg);
    *value = eq + 1;
    if (strcmp(key, "api_key") == 0) {
        /* Not even --token's wiping: --set is meant for settings, and scripts log it. */
        snprintf(err, errlen,
                 "the token is never taken from --set: use " TOKEN_ENV ", "
                 "--api-key-file or the config file");
        return -1;
    }
    return 0;
}

struct flag {
    int opt;
    const char *arg;
};

/*
 * Applies the flags that set keys: first every config-era one in the order given,
 * then the newer ones (an empty newer value is no value, as in the Go runner, which
 * then falls back to the variable). Returns 0 or -1 with err filled.
 */
static int apply_flags(struct runner_config *cfg, const struct flag *flags, size_t nflags,
                       char *err, size_t errlen)
{
    const char *older[NFLAG_KEYS] = {NULL};
    char key[128], origin[64];
    const char *value;

    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < nflags; i++) {
            const struct flag_key *fk = flag_key_of(flags[i].opt);
            bool newer = fk != NULL && fk->newer;

            if (newer != (pass == 1))
                continue;
            if (flag_split(flags[i].opt, flags[i].arg, key, sizeof(key), &value, err, errlen) != 0)
                return -1;
            /* Remember the config-era value of a key a newer flag also names. */
            for (size_t j = 0; pass == 0 && j < NFLAG_KEYS; j++) {
                if (flag_keys[j].newer && strcmp(flag_keys[j].key, key) == 0)
                    older[j] = value;
            }
            if (newer) {
                size_t j = (size_t)(fk - flag_keys);

                if (value[0] == '\0')
                    continue;
                if (older[j] != NULL && strcmp(older[j], value) != 0)
                    config_note(cfg, fk->note);
            }
            snprintf(origin, sizeof(origin), "%s", fk != NULL ? fk->flag : "--set");
            if (config_set(cfg, key, value, origin, err, errlen) != 0)
                return -1;
        }
    }
    return 0;
}

/* Takes --token's value into the secret arena and wipes it from argv. Returns 0 or ERR_KEY_*. */
static int token_from_argv(char *arg, struct secret **out)
{
    size_t n = arg != NULL ? strlen(arg) : 0; /* getopt always gives one; the compiler cannot know */
    int r = 0;

    *out = NULL;
    if (n > 0 && (r = secret_validate_key((const uint8_t *)arg, n)) == 0)
        r = secret_from(arg, n, out);
    /* The bytes /proc/PID/cmdline shows: from now on it shows NULs in their place. */
    if (n > 0)
        explicit_bzero(arg, n);
    return r;
}

/* Wipes and unsets the token variable: a command must never find it in our environment. */
static void token_env_wipe(const char *name)
{
    char *value = NULL;
    size_t vlen = 0;

    if (env_take(name, &value, &vlen) == 0) {
        explicit_bzero(value, vlen);
        free(value);
    }
}

static const char *level_name(enum log_level l)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};

    return (unsigned)l < sizeof(names) / sizeof(names[0]) ? names[l] : "?";
}

/* --print-config: the effective settings RUNNER-OPS.md 11 gives more than one name. */
static void print_config(const struct runner_config *cfg)
{
    printf("config: %s\n", cfg->config_path != NULL ? cfg->config_path : "");
    printf("api_key: %s\n", cfg->api_key != NULL ? "<set>" : "");
    printf("api_url: %s\n", cfg->api_url);
    printf("workspace_root: %s\n", cfg->workspace_root);
    printf("name: %s\n", cfg->name);
    printf("log.level: %s\n", level_name(cfg->log_level));
    printf("log.format: %s\n", cfg->log_json ? "json" : "logfmt");
    fflush(stdout);
}

static int append_secret_path(struct runner_config *cfg, const char *path)
{
    char **paths = reallocarray(cfg->broker.secret_paths, cfg->broker.nsecret_paths + 1,
                                sizeof(char *));

    if (paths == NULL)
        return ERR_NOMEM;
    cfg->broker.secret_paths = paths;
    if ((paths[cfg->broker.nsecret_paths] = strdup(path)) == NULL)
        return ERR_NOMEM;
    cfg->broker.nsecret_paths++;
    return 0;
}

/*
 * broker.routes: the keys read from their sources (each file one more path commands must not
 * see), checked as exec checks --route (the task's own credential is the default route),
 * and kept out of the log. Returns 0 or a code with err set.
 */
static int load_routes(struct runner_config *cfg, struct route_set *rs, struct runner_routes *out,
                       char *err, size_t errlen)
{
    int r;

    memset(out, 0, sizeof(*out));
    if (cfg->broker.nroutes == 0)
        return 0;
    if (!broker_supported() || !cfg->broker.enabled) {
        snprintf(err, errlen, "broker.routes needs the broker (broker.enabled, on Linux)");
        return ERR_INVALID;
    }
    for (size_t i = 0; i < cfg->broker.nroutes; i++) {
        if ((r = route_set_adopt(rs, &cfg->broker.routes[i], err, errlen)) != 0)
            return r;
    }
    cfg->broker.nroutes = 0; /* taken over */
    if ((r = route_set_prepare(rs, true, err, errlen)) != 0)
        return r;
    for (size_t i = 0; i < rs->n; i++) {
        if ((r = log_redact_add(rs->v[i].key)) != 0 ||
            (rs->v[i].spec.key_kind == ROUTE_KEY_FILE &&
             (r = append_secret_path(cfg, rs->v[i].spec.key_ref)) != 0)) {
            snprintf(err, errlen, "%s", err_str(r));
            return r;
        }
    }
    out->routes = rs->broker;
    out->envs = rs->envs;
    out->urls = rs->urls;
    out->n = rs->n;
    return 0;
}

/* The log forgets the routes' keys, and they are wiped. */
static void free_routes(struct route_set *rs)
{
    for (size_t i = 0; i < rs->n; i++)
        log_redact_remove(rs->v[i].key);
    route_set_free(rs);
}

/* --check-command: one line per command string the rules saw, then the verdict. */
static void print_seen(const char *text, bool allowed, const char *rule, void *data)
{
    (void)data;
    if (rule != NULL)
        printf("%-5s '%s': %s\n", allowed ? "allow" : "deny", rule, text);
    else
        printf("deny  (no rule): %s\n", text);
}

static int check_command_print(const struct runner_config *cfg, const char *command)
{
    char why[1024];

    if (cfg->permission == NULL) {
        printf("allow: no permission rules configured: every command is allowed\n");
        return 0;
    }
    if (permission_explain(cfg->permission, command, print_seen, NULL, why, sizeof(why)) == 0) {
        printf("allow\n");
        return 0;
    }
    printf("deny: %s\n", why);
    return 1;
}
/* The option as written, without a value given with '=' (a mistyped --token=... must not be
 * echoed). */
static void usage_unknown(const char *arg)
{
    const char *eq = strchr(arg, '=');
    int n = eq != NULL ? (int)(eq - arg) : (int)strlen(arg);

    fprintf(stderr, "credbroker runner: unknown option or missing value: '%.*s' (see --help)\n",
            n < 100 ? n : 100, arg);
}

int cmd_runner(int argc, char **argv)
{
    extern char **environ;
    struct runner_config cfg;
    struct route_set route_set;
    struct runner_routes routes;
    struct secret *flag_token = NULL;
    char err[512] = "";
    const char *config_path = NULL, *key_file = NULL;
    struct flag flags[256];
    size_t nflags = 0;
    char labels[4096] = "";
    size_t llen = 0;
    int opt, status = CLI_EXIT_USAGE, r, fds_at_start = -1;
    bool advertise, want_print = false, token_in_argv = false;
    const char *check_command = NULL;

    memset(&cfg, 0, sizeof(cfg)); /* config_free() is safe on it before config_init() */
    memset(&route_set, 0, sizeof(route_set));
    memset(&routes, 0, sizeof(routes));
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "+c:", runner_options, NULL)) != -1) {
        if (opt == OPT_HELP) {
            runner_usage(stdout);
            status = 0;
            goto out;
        } else if (opt == OPT_CONFIG || opt == 'c') {
            config_path = optarg;
        } else if (opt == OPT_API_KEY_FILE) {
            key_file = optarg;
        } else if (opt == OPT_PRINT_CONFIG) {
            want_print = true;
        } else if (opt == OPT_CHECK_COMMAND) {
            check_command = optarg;
        } else if (opt == OPT_TOKEN) {
            struct secret *t = NULL;

            /* Wiped before anything else can fail: the token must not stay in argv. */
            if ((r = token_from_argv(optarg, &t)) != 0) {
                fprintf(stderr, "credbroker runner: --token: %s\n", err_str(r));
                goto out;
            }
            if (t != NULL) {
                secret_free(flag_token);
                flag_token = t;
                token_in_argv = true;
            }
        } else if (opt == OPT_LABEL) {
            /* --label k=v, repeatable: one "k=v,k2=v2" list, as FLASHDUTY_RUNNER_LABELS has it. */
            int n = snprintf(labels + llen, sizeof(labels) - llen, "%s%s", llen ? "," : "", optarg);

            if (n < 0 || (size_t)n >= sizeof(labels) - llen || strchr(optarg, ',') != NULL) {
                fprintf(stderr, "credbroker runner: --label: bad or too many labels\n");
                goto out;
            }
            llen += (size_t)n;
        } else if (opt == '?' || opt == ':' || nflags == sizeof(flags) / sizeof(flags[0])) {
            usage_unknown(argv[optind - 1]);
            goto out;
        } else {
            flags[nflags].opt = opt;
            flags[nflags].arg = optarg;
            nflags++;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "credbroker runner: unexpected argument '%.100s'\n", argv[optind]);
        goto out;
    }
    if (flag_token != NULL && key_file != NULL) {
        fprintf(stderr, "credbroker runner: --token and --api-key-file both give the token: "
                        "use one\n");
        goto out;
    }
    if (config_init(&cfg) != 0) {
        fprintf(stderr, "credbroker runner: out of memory\n");
        status = CLI_EXIT_FAILURE;
        goto out;
    }
    if (token_in_argv)
        config_note(&cfg, NOTE_TOKEN_IN_ARGV);
    if (config_path != NULL && config_load_file(&cfg, config_path, err, sizeof(err)) != 0)
        goto fail;
    /* FLASHDUTY_RUNNER_TOKEN and _API_KEY go from the environment block straight into the
     * secret arena; then their bytes are wiped there and the names unset, so that no
     * command (nor /proc/PID/environ) can find them. */
    r = config_apply_env(&cfg, environ, err, sizeof(err));
    token_env_wipe(TOKEN_ENV);
    token_env_wipe(API_KEY_ENV);
    if (r != 0)
        goto fail;
    if (apply_flags(&cfg, flags, nflags, err, sizeof(err)) != 0)
        goto fail;
    if (llen > 0 && config_set(&cfg, "labels", labels, "--label", err, sizeof(err)) != 0)
        goto fail;
    if (flag_token != NULL) {
        secret_free(cfg.api_key);
        cfg.api_key = flag_token;
        flag_token = NULL; /* transferred */
    }
    if (key_file != NULL) {
        struct secret *key = NULL;

        if (key_from_file(key_file, &key, err, sizeof(err)) != 0)
            goto fail;
        secret_free(cfg.api_key);
        cfg.api_key = key;
        /* The token file is one more path commands must not see (isolation). */
        if (append_secret_path(&cfg, key_file) != 0) {
            snprintf(err, sizeof(err), "out of memory");
            goto fail;
        }
    }
    /* --check-command needs the rules only: no token, no platform. */
    if (check_command != NULL) {
        if (config_load_permission(&cfg, err, sizeof(err)) != 0)
            goto fail;
        status = check_command_print(&cfg, check_command);
        goto out;
    }
    if (config_validate(&cfg, err, sizeof(err)) != 0 ||
        config_load_permission(&cfg, err, sizeof(err)) != 0)
        goto fail;
    if (!want_print && (r = load_routes(&cfg, &route_set, &routes, err, sizeof(err))) != 0) {
        if (r == ERR_NOMEM)
            snprintf(err, sizeof(err), "%s", err_str(r));
        goto fail;
    }

    log_set_ident("credbroker-runner");
    log_set_level(cfg.log_level);
    log_set_format(cfg.log_json ? LOG_FORMAT_JSON : LOG_FORMAT_LOGFMT);
    /* --print-config writes nothing but its answer (and the warnings, to stderr). */
    if (!want_print && cfg.log_file != NULL && cfg.log_file[0] != '\0') {
        if ((r = log_open_file(cfg.log_file)) != 0) {
            snprintf(err, sizeof(err), "log.file %.200s: %s", cfg.log_file, err_str(r));
            goto fail;
        }
    }
    if ((r = log_redact_add(cfg.api_key)) != 0) {
        snprintf(err, sizeof(err), "%s", err_str(r));
        goto fail;
    }
    for (size_t i = 0; i < cfg.nnotes; i++)
        log_warn("%s", cfg.notes[i]);
    if (want_print) {
        print_config(&cfg);
        log_redact_remove(cfg.api_key);
        status = 0;
        goto out;
    }
    advertise = runner_probe_broker(&cfg);
    status = runner_run(&cfg, &routes, advertise, &fds_at_start);
    log_redact_remove(cfg.api_key);
    free_routes(&route_set);
    config_free(&cfg);
    /* Every task's fds and secrets must be gone by now (tests turn this on). */
    if (fds_at_start >= 0 && !harden_leak_check(fds_at_start, "runner"))
        return CLI_EXIT_FAILURE;
    return status;
fail:
    fprintf(stderr, "credbroker runner: %s\n", err);
    status = CLI_EXIT_USAGE;
out:
    secret_free(flag_token);
    free_routes(&route_set);
    config_free(&cfg);
    return status;
}
