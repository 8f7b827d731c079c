/*
 * cmd_runner.c - `credbroker runner`: configuration in, daemon out.
 *
 * Precedence, lowest first: defaults, the YAML file (--config), FLASHDUTY_RUNNER_*
 * environment variables, flags. Any configuration error is one line and exit 2.
 * The runner's own token never comes from argv: from the file, from
 * FLASHDUTY_RUNNER_API_KEY (then wiped from this process's environment), or from
 * --api-key-file.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "env.h"
#include "err.h"
#include "harden.h"
#include "key_source.h"
#include "log.h"
#include "runner.h"
#include "secret.h"

#define API_KEY_ENV "FLASHDUTY_RUNNER_API_KEY"

static void runner_usage(FILE *f)
{
    fprintf(f,
        "usage: credbroker runner [--config FILE] [options]\n"
        "\n"
        "Connects to the agent platform (api_url) over a WebSocket and runs the bash tasks it\n"
        "sends, each credential kept in this process and used through a broker.\n"
        "\n"
        "  --config FILE         YAML configuration (keys of the Go runner plus broker:, tasks:)\n"
        "  --api-url URL         ws:// or wss:// endpoint of the platform\n"
        "  --api-key-file PATH   read the runner's token from PATH (mode 600)\n"
        "  --name NAME           runner name (default: hostname)\n"
        "  --label KEY=VALUE     add a label (repeatable)\n"
        "  --workspace-root DIR  where tasks run\n"
        "  --log-level LEVEL     error | warn | info | debug\n"
        "  --log-format FORMAT   logfmt | json\n"
        "  --log-file PATH       append logs to PATH (SIGHUP reopens it)\n"
        "  --set KEY=VALUE       any configuration key, dotted (e.g. broker.cacert=/etc/ca.pem)\n"
        "Every key is also read from FLASHDUTY_RUNNER_<KEY> (dots become underscores).\n");
}

enum {
    OPT_CONFIG = 2000, OPT_API_URL, OPT_API_KEY_FILE, OPT_NAME, OPT_LABEL, OPT_WORKSPACE,
    OPT_LOG_LEVEL, OPT_LOG_FORMAT, OPT_LOG_FILE, OPT_SET, OPT_HELP,
};

static const struct option runner_options[] = {
    {"config", required_argument, NULL, OPT_CONFIG},
    {"api-url", required_argument, NULL, OPT_API_URL},
    {"api-key-file", required_argument, NULL, OPT_API_KEY_FILE},
    {"name", required_argument, NULL, OPT_NAME},
    {"label", required_argument, NULL, OPT_LABEL},
    {"workspace-root", required_argument, NULL, OPT_WORKSPACE},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"log-file", required_argument, NULL, OPT_LOG_FILE},
    {"set", required_argument, NULL, OPT_SET},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* Applies one flag as a dotted key. Returns 0 or -1 with err filled. */
static int apply_flag(struct runner_config *cfg, int opt, const char *arg, char *err, size_t errlen)
{
    char key[128], origin[64];
    const char *value = arg, *eq;

    switch (opt) {
    case OPT_API_URL: snprintf(key, sizeof(key), "api_url"); break;
    case OPT_NAME: snprintf(key, sizeof(key), "name"); break;
    case OPT_WORKSPACE: snprintf(key, sizeof(key), "workspace_root"); break;
    case OPT_LOG_LEVEL: snprintf(key, sizeof(key), "log.level"); break;
    case OPT_LOG_FORMAT: snprintf(key, sizeof(key), "log.format"); break;
    case OPT_LOG_FILE: snprintf(key, sizeof(key), "log.file"); break;
    case OPT_SET:
        if ((eq = strchr(arg, '=')) == NULL || eq == arg || (size_t)(eq - arg) >= 100) {
            snprintf(err, errlen, "--set wants KEY=VALUE, got '%.100s'", arg);
            return -1;
        }
        snprintf(key, sizeof(key), "%.*s", (int)(eq - arg), arg);
        value = eq + 1;
        if (opt == OPT_SET && strcmp(key, "api_key") == 0) {
            snprintf(err, errlen, "the token is never taken from argv: use --api-key-file, "
                                  "the config file or " API_KEY_ENV);
            return -1;
        }
        break;
    default:
        return -1;
    }
    snprintf(origin, sizeof(origin), "--%s", opt == OPT_SET ? "set" : key);
    return config_set(cfg, key, value, origin, err, errlen) == 0 ? 0 : -1;
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

int cmd_runner(int argc, char **argv)
{
    extern char **environ;
    struct runner_config cfg;
    char err[512];
    const char *config_path = NULL, *key_file = NULL;
    struct {
        int opt;
        const char *arg;
    } flags[256];
    size_t nflags = 0;
    char *value = NULL, labels[4096] = "";
    size_t vlen, llen = 0;
    int opt, status = CLI_EXIT_USAGE, r, fds_at_start = -1;
    bool advertise;

    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "+", runner_options, NULL)) != -1) {
        if (opt == OPT_HELP) {
            runner_usage(stdout);
            return 0;
        } else if (opt == OPT_CONFIG) {
            config_path = optarg;
        } else if (opt == OPT_API_KEY_FILE) {
            key_file = optarg;
        } else if (opt == OPT_LABEL) {
            /* --label k=v, repeatable: one "k=v,k2=v2" list, as FLASHDUTY_RUNNER_LABELS has it. */
            int n = snprintf(labels + llen, sizeof(labels) - llen, "%s%s", llen ? "," : "", optarg);

            if (n < 0 || (size_t)n >= sizeof(labels) - llen || strchr(optarg, ',') != NULL) {
                fprintf(stderr, "credbroker runner: --label: bad or too many labels\n");
                return CLI_EXIT_USAGE;
            }
            llen += (size_t)n;
        } else if (opt == '?' || nflags == sizeof(flags) / sizeof(flags[0])) {
            fprintf(stderr, "credbroker runner: unknown option or missing value: '%.100s' "
                            "(see --help)\n", argv[optind - 1]);
            return CLI_EXIT_USAGE;
        } else {
            flags[nflags].opt = opt;
            flags[nflags].arg = optarg;
            nflags++;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "credbroker runner: unexpected argument '%.100s'\n", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    if (config_init(&cfg) != 0) {
        fprintf(stderr, "credbroker runner: out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    if (config_path != NULL && config_load_file(&cfg, config_path, err, sizeof(err)) != 0)
        goto fail;
    /* The token variable is taken out of our environment (and wiped) before anything else. */
    if (env_take(API_KEY_ENV, &value, &vlen) == 0) {
        struct secret *key = NULL;

        if (vlen > 0) {
            r = secret_validate_key((const uint8_t *)value, vlen);
            if (r == 0)
                r = secret_from(value, vlen, &key);
            if (r != 0) {
                snprintf(err, sizeof(err), "%s: %s", API_KEY_ENV, err_str(r));
                explicit_bzero(value, vlen);
                free(value);
                goto fail;
            }
            secret_free(cfg.api_key);
            cfg.api_key = key;
        }
        explicit_bzero(value, vlen);
        free(value);
    }
    if (config_apply_env(&cfg, environ, err, sizeof(err)) != 0)
        goto fail;
    for (size_t i = 0; i < nflags; i++) {
        if (apply_flag(&cfg, flags[i].opt, flags[i].arg, err, sizeof(err)) != 0)
            goto fail;
    }
    if (llen > 0 && config_set(&cfg, "labels", labels, "--label", err, sizeof(err)) != 0)
        goto fail;
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
    if (config_validate(&cfg, err, sizeof(err)) != 0)
        goto fail;

    log_set_ident("credbroker-runner");
    log_set_level(cfg.log_level);
    log_set_format(cfg.log_json ? LOG_FORMAT_JSON : LOG_FORMAT_LOGFMT);
    if (cfg.log_file != NULL && cfg.log_file[0] != '\0') {
        if ((r = log_open_file(cfg.log_file)) != 0) {
            snprintf(err, sizeof(err), "log.file %.200s: %s", cfg.log_file, err_str(r));
            goto fail;
        }
    }
    if ((r = log_redact_add(cfg.api_key)) != 0) {
        snprintf(err, sizeof(err), "%s", err_str(r));
        goto fail;
    }
    advertise = runner_probe_broker(&cfg);
    status = runner_run(&cfg, advertise, &fds_at_start);
    log_redact_remove(cfg.api_key);
    config_free(&cfg);
    /* Every task's fds and secrets must be gone by now (tests turn this on). */
    if (fds_at_start >= 0 && !harden_leak_check(fds_at_start, "runner"))
        return CLI_EXIT_FAILURE;
    return status;
fail:
    fprintf(stderr, "credbroker runner: %s\n", err);
    config_free(&cfg);
    return CLI_EXIT_USAGE;
}
