/*
 * cmd_exec.c - `credbroker exec`: one command under its own broker.
 *
 * Only argument parsing and wiring live here: the key comes from key_source,
 * the broker from src/broker, the command from src/exec. The exit status is
 * the command's (128+N when it died of signal N).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "credbroker_config.h"

#include "audit.h"
#include "broker.h"
#include "child.h"
#include "cli.h"
#include "env.h"
#include "err.h"
#include "route_set.h"
#include "harden.h"
#include "isolate.h"
#include "key_source.h"
#include "log.h"
#include "netconn.h"
#include "policy.h"
#include "rewrite.h"
#include "secret.h"

#define DEFAULT_UPSTREAM "https://api.flashcat.cloud"
#define CRED_FD_VAR "FLASHDUTY_CRED_FD"
#define BASE_URL_VAR "FLASHDUTY_BASE_URL"
#define APP_KEY_VAR "FLASHDUTY_APP_KEY"
#define PLACEHOLDER_URL "http://flashduty.broker.local"
#define MAX_ENV_DENY 64
#define MAX_SECRET_PATHS 64
#define EXEC_FDS_NEEDED 32 /* free fds at start: the loop, the broker, a few connections */

struct exec_args {
    const char *upstream;
    bool upstream_set, inject_set; /* given: they need the default route's key */
    const char *key_file, *key_fd, *key_env;
    const char *cacert;
    const char *inject;
    const char *audit;
    const char *env_deny[MAX_ENV_DENY];
    size_t nenv_deny;
    const char *secret_paths[MAX_SECRET_PATHS];
    int nsecret_paths;
    enum isolate_mode isolation;
    struct policy *policy;
    struct route_set routes;
    struct broker_limits limits;
    unsigned long long connect_timeout_ms;
    bool legacy;
    bool preload;
    bool no_scrub;
    bool verbose;
    char **command;
};

/* The running state, for the callbacks. */
struct exec_state {
    uv_loop_t *loop;
    struct broker *broker;
    struct broker_invocation *inv;
    struct child *child;
    uv_signal_t signals[4];
    int nsignals;
    int status;
    const char *command; /* argv[0], for the message of a failed exec */
};

static const int forwarded_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

static void exec_usage(FILE *f)
{
    fprintf(f,
        "usage: credbroker exec [options] (--key-file PATH | --key-fd N | --key-env NAME)\n"
        "                       -- COMMAND [ARG...]\n"
        "\n"
        "Runs COMMAND with a private control socket at fd 3 (FLASHDUTY_CRED_FD=3); every\n"
        "connection it dials through it is an HTTP proxy to the upstream that adds the key.\n"
        "The key never enters the command's environment, arguments or files.\n"
        "\n"
        "  --upstream URL        the real API (default " DEFAULT_UPSTREAM ")\n"
        "  --key-file PATH       read the key from PATH (must not be group/world-readable)\n"
        "  --key-fd N            read the key from inherited fd N (3 or above), then close it\n"
        "  --key-env NAME        take the key from variable NAME, removed from our environment\n"
        "                        and the command's (the process that started credbroker keeps\n"
        "                        it in its /proc/PID/environ: without isolation, the command\n"
        "                        can read it there; prefer --key-fd)\n"
        "  --cacert PATH         verify the upstream with this CA bundle\n"
        "  --inject MODE         query:NAME (default query:app_key) | header:NAME | bearer\n"
        "  --allow 'METHOD GLOB' allow only matching requests (repeatable; default: all)\n"
        "  --route NAME=URL[,key-file=PATH|key-fd=N|key-env=VAR][,inject=MODE]\n"
        "          [,allow=METHOD GLOB;...][,env=VAR]\n"
        "                        one more API, each with its own key (repeatable): the command\n"
        "                        reaches it at http://NAME.broker.local over the same fd 3, and\n"
        "                        finds that URL in VAR (default NAME_BASE_URL, '-' as '_');\n"
        "                        the options above (--upstream, --key-*, --inject, --allow)\n"
        "                        make the default route, flashduty (FLASHDUTY_BASE_URL)\n"
        "  --routes FILE         routes from a YAML file: a list of mappings with the fields\n"
        "                        of --route (name, url, key-file, ...); it never holds keys\n"
        "  --audit PATH          append one JSON line per request to PATH\n"
        "  --env-deny PATTERN    also keep matching variables from the command (repeatable)\n"
        "  --isolation MODE      auto (default) | required | off: run the command in its own\n"
        "                        user and mount namespaces with the key file covered\n"
        "  --secret-path PATH    also hide PATH from the command (repeatable; needs isolation)\n"
        "  --no-scrub            do not mask the key in responses\n"
        "  --max-conns N         live connections per invocation (default 64)\n"
        "  --dial-rate N         dials per second (default 100)\n"
        "  --dial-wait D         a dial over either limit waits up to D for a slot, then is\n"
        "                        refused (default 10s; 0: refused at once); at most 1024 wait\n"
        "  --max-body BYTES      request body limit (default 64 MiB)\n"
        "  --head-timeout D      read a request head (default 10s)\n"
        "  --idle-timeout D      keep-alive idle (default 60s)\n"
        "  --connect-timeout D   upstream connect (default 10s)\n"
        "  --response-timeout D  upstream response head (default 60s)\n"
        "  --stall-timeout D     a stalled transfer (default 120s)\n"
        "  --preload             LD_PRELOAD the shim, so unmodified programs (curl, python,\n"
        "                        wget) reach http://flashduty.broker.local through the broker\n"
        "  --legacy              no broker: pass the key as " APP_KEY_VAR " (fallback path)\n"
        "  -v, --verbose         debug logging\n"
        "Durations: 10, 10s, 500ms, 2m.\n");
}

enum {
    OPT_UPSTREAM = 1000, OPT_KEY_FILE, OPT_KEY_FD, OPT_KEY_ENV, OPT_CACERT, OPT_INJECT, OPT_ALLOW,
    OPT_AUDIT, OPT_LEGACY, OPT_ENV_DENY, OPT_NO_SCRUB, OPT_MAX_CONNS, OPT_DIAL_RATE, OPT_DIAL_WAIT,
    OPT_MAX_BODY, OPT_HEAD_TIMEOUT, OPT_IDLE_TIMEOUT, OPT_CONNECT_TIMEOUT, OPT_RESPONSE_TIMEOUT,
    OPT_STALL_TIMEOUT, OPT_PRELOAD, OPT_ISOLATION, OPT_SECRET_PATH, OPT_ROUTE, OPT_ROUTES,
    OPT_HELP,
};

static const struct option exec_options[] = {
    {"upstream", required_argument, NULL, OPT_UPSTREAM},
    {"key-file", required_argument, NULL, OPT_KEY_FILE},
    {"key-fd", required_argument, NULL, OPT_KEY_FD},
    {"key-env", required_argument, NULL, OPT_KEY_ENV},
    {"cacert", required_argument, NULL, OPT_CACERT},
    {"inject", required_argument, NULL, OPT_INJECT},
    {"allow", required_argument, NULL, OPT_ALLOW},
    {"route", required_argument, NULL, OPT_ROUTE},
    {"routes", required_argument, NULL, OPT_ROUTES},
    {"audit", required_argument, NULL, OPT_AUDIT},
    {"legacy", no_argument, NULL, OPT_LEGACY},
    {"preload", no_argument, NULL, OPT_PRELOAD},
    {"isolation", required_argument, NULL, OPT_ISOLATION},
    {"secret-path", required_argument, NULL, OPT_SECRET_PATH},
    {"env-deny", required_argument, NULL, OPT_ENV_DENY},
    {"no-scrub", no_argument, NULL, OPT_NO_SCRUB},
    {"max-conns", required_argument, NULL, OPT_MAX_CONNS},
    {"dial-rate", required_argument, NULL, OPT_DIAL_RATE},
    {"dial-wait", required_argument, NULL, OPT_DIAL_WAIT},
    {"max-body", required_argument, NULL, OPT_MAX_BODY},
    {"head-timeout", required_argument, NULL, OPT_HEAD_TIMEOUT},
    {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
    {"response-timeout", required_argument, NULL, OPT_RESPONSE_TIMEOUT},
    {"stall-timeout", required_argument, NULL, OPT_STALL_TIMEOUT},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* What parse_args allocated; safe to call twice. */
static void exec_args_free(struct exec_args *a)
{
    policy_free(a->policy);
    a->policy = NULL;
    route_set_free(&a->routes);
}

static int bad_value(const char *opt, const char *value)
{
    fprintf(stderr, "credbroker exec: invalid value for --%s: '%.100s'\n", opt, value);
    return CLI_EXIT_USAGE;
}

/* Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, struct exec_args *a)
{
    unsigned long long v;
    char why[512];
    int opt, nkeys = 0, r;

    a->upstream = DEFAULT_UPSTREAM;
    broker_limits_default(&a->limits);
    a->connect_timeout_ms = 10000;
    if ((r = policy_new(&a->policy)) != 0) {
        fprintf(stderr, "credbroker exec: %s\n", err_str(r));
        return CLI_EXIT_FAILURE;
    }
    optind = 1;
    opterr = 0; /* we report unknown options ourselves, in one line */
    /* '+': stop at the first non-option, so the command's own options stay its own. */
    while ((opt = getopt_long(argc, argv, "+v", exec_options, NULL)) != -1) {
        switch (opt) {
        case OPT_UPSTREAM: a->upstream = optarg; a->upstream_set = true; break;
        case OPT_KEY_FILE: a->key_file = optarg; nkeys++; break;
        case OPT_KEY_FD: a->key_fd = optarg; nkeys++; break;
        case OPT_KEY_ENV: a->key_env = optarg; nkeys++; break;
        case OPT_CACERT: a->cacert = optarg; break;
        case OPT_INJECT: a->inject = optarg; a->inject_set = true; break;
        case OPT_AUDIT: a->audit = optarg; break;
        case OPT_LEGACY: a->legacy = true; break;
        case OPT_PRELOAD: a->preload = true; break;
        case OPT_ISOLATION:
            if (isolate_parse_mode(optarg, &a->isolation) != 0)
                return bad_value("isolation", optarg);
            break;
        case OPT_SECRET_PATH:
            if (a->nsecret_paths == MAX_SECRET_PATHS || optarg[0] != '/')
                return bad_value("secret-path", optarg);
            a->secret_paths[a->nsecret_paths++] = optarg;
            break;
        case OPT_NO_SCRUB: a->no_scrub = true; break;
        case 'v': a->verbose = true; break;
        case OPT_ALLOW:
            if (policy_add_rule(a->policy, optarg) != 0) {
                fprintf(stderr,
                        "credbroker exec: --allow wants 'METHOD /path-glob', got '%.100s'\n",
                        optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        case OPT_ROUTE:
        case OPT_ROUTES:
            r = opt == OPT_ROUTE ? route_set_add_spec(&a->routes, optarg, why, sizeof(why))
                                 : route_set_add_file(&a->routes, optarg, why, sizeof(why));
            if (r != 0) {
                fprintf(stderr, "credbroker exec: %s\n", r == ERR_NOMEM ? err_str(r) : why);
                return r == ERR_NOMEM ? CLI_EXIT_FAILURE : CLI_EXIT_USAGE;
            }
            break;
        case OPT_ENV_DENY:
            if (a->nenv_deny == MAX_ENV_DENY)
                return bad_value("env-deny", optarg);
            a->env_deny[a->nenv_deny++] = optarg;
            break;
        case OPT_MAX_CONNS:
            if (cli_parse_uint(optarg, 1, 100000, &v) != 0)
                return bad_value("max-conns", optarg);
            a->limits.max_conns = (unsigned)v;
            break;
        case OPT_DIAL_RATE:
            if (cli_parse_uint(optarg, 1, 1000000, &v) != 0)
                return bad_value("dial-rate", optarg);
            a->limits.max_dials_per_sec = (unsigned)v;
            break;
        case OPT_DIAL_WAIT:
            if (cli_parse_duration_ms(optarg, &v) != 0)
                return bad_value("dial-wait", optarg);
            a->limits.dial_wait_ms = v;
            break;
        case OPT_MAX_BODY:
            if (cli_parse_uint(optarg, 0, 1ull << 40, &v) != 0)
                return bad_value("max-body", optarg);
            a->limits.max_body = v;
            break;
        case OPT_HEAD_TIMEOUT:
            if (cli_parse_duration_ms(optarg, &v) != 0 || v == 0)
                return bad_value("head-timeout", optarg);
            a->limits.head_timeout_ms = v;
            break;
        case OPT_IDLE_TIMEOUT:
            if (cli_parse_duration_ms(optarg, &v) != 0 || v == 0)
                return bad_value("idle-timeout", optarg);
            a->limits.idle_timeout_ms = v;
            break;
        case OPT_CONNECT_TIMEOUT:
            if (cli_parse_duration_ms(optarg, &v) != 0 || v == 0)
                return bad_value("connect-timeout", optarg);
            a->connect_timeout_ms = v;
            break;
        case OPT_RESPONSE_TIMEOUT:
            if (cli_parse_duration_ms(optarg, &v) != 0 || v == 0)
                return bad_value("response-timeout", optarg);
            a->limits.response_head_timeout_ms = v;
            break;
        case OPT_STALL_TIMEOUT:
            if (cli_parse_duration_ms(optarg, &v) != 0 || v == 0)
                return bad_value("stall-timeout", optarg);
            a->limits.stall_timeout_ms = v;
            break;
        case OPT_HELP:
            exec_usage(stdout);
            return 0;
        default:
            fprintf(stderr, "credbroker exec: unknown option or missing value: '%.100s' "
                            "(see --help)\n", argv[optind - 1]);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "credbroker exec: no command given (put it after --)\n");
        return CLI_EXIT_USAGE;
    }
    a->command = argv + optind;
    if (nkeys > 1 || (nkeys == 0 && a->routes.n == 0)) {
        fprintf(stderr, "credbroker exec: give exactly one of --key-file, --key-fd, --key-env "
                        "(or only routes: --route, --routes)\n");
        return CLI_EXIT_USAGE;
    }
    if (nkeys == 0 && (a->upstream_set || a->inject_set || policy_rule_count(a->policy) > 0)) {
        fprintf(stderr, "credbroker exec: --upstream, --inject and --allow make the default "
                        "route, which needs its key (--key-file, --key-fd or --key-env); a "
                        "route's own are options of --route\n");
        return CLI_EXIT_USAGE;
    }
    if (a->legacy && a->routes.n > 0) {
        fprintf(stderr, "credbroker exec: --legacy passes one key in the environment; routes "
                        "need the broker\n");
        return CLI_EXIT_USAGE;
    }
    if ((r = route_set_prepare(&a->routes, nkeys == 1, why, sizeof(why))) != 0) {
        fprintf(stderr, "credbroker exec: %s\n", r == ERR_NOMEM ? err_str(r) : why);
        return r == ERR_NOMEM ? CLI_EXIT_FAILURE : CLI_EXIT_USAGE;
    }
    return -1;
}

/* The default route's key, if it has one (*key stays NULL when there are only routes). */
static int read_key(const struct exec_args *a, struct secret **key)
{
    char err[512];
    int r;

    if (a->key_file == NULL && a->key_fd == NULL && a->key_env == NULL)
        return 0;
    if (a->key_file != NULL)
        r = key_from_file(a->key_file, key, err, sizeof(err));
    else if (a->key_fd != NULL)
        r = key_from_fd(a->key_fd, key, err, sizeof(err));
    else
        r = key_from_env(a->key_env, key, err, sizeof(err));
    if (r != 0)
        fprintf(stderr, "credbroker exec: %s\n", err);
    return r;
}

/* The command's environment: ours minus the broker's secrets, plus each route's placeholder
 * URL and the `extra` pairs. */
static struct env *child_env(const struct exec_args *a, const struct secret *key,
                             const char *const *extra)
{
    extern char **environ;
    struct env *e = env_new_for_command(environ, a->env_deny, a->nenv_deny);

    if (e == NULL)
        return NULL;
    if (a->key_env != NULL)
        env_deny(e, a->key_env);
    /* Under any name at all: no key reaches the command through our environment. */
    if (key != NULL)
        env_deny_secret(e, key, "the key");
    if (route_set_env(&a->routes, e) != 0) {
        env_free(e);
        return NULL;
    }
    for (; extra[0] != NULL; extra += 2) {
        if (env_set(e, extra[0], extra[1]) != 0) {
            env_free(e);
            return NULL;
        }
    }
    return e;
}

/*
 * The LD_PRELOAD value for --preload: the shim beside this binary (the build
 * tree) or where `make install` put it, ahead of any LD_PRELOAD already set.
 * Returns a malloc'd string or NULL (with a message).
 */
static char *preload_value(void)
{
    char self[PATH_MAX], path[PATH_MAX + 32], *slash, *out;
    const char *prev = getenv("LD_PRELOAD");
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    size_t len;

    path[0] = '\0';
    if (n > 0) {
        self[n] = '\0';
        if ((slash = strrchr(self, '/')) != NULL) {
            *slash = '\0';
            snprintf(path, sizeof(path), "%s/libcredfd-preload.so", self);
        }
    }
    if (path[0] == '\0' || access(path, R_OK) != 0)
        snprintf(path, sizeof(path), "%s", CREDBROKER_PRELOAD_PATH);
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "credbroker exec: --preload: the shim is not installed (%.200s)\n", path);
        return NULL;
    }
    len = strlen(path) + (prev != NULL ? strlen(prev) + 1 : 0) + 1;
    if ((out = malloc(len)) == NULL)
        return NULL;
    snprintf(out, len, "%s%s%s", path, prev != NULL ? " " : "", prev != NULL ? prev : "");
    return out;
}

/*
 * Decides isolation for the command (DESIGN.md 4b) and opens what it covers, once, before
 * the broker starts: the key file, every --secret-path and the audit file (isolate.h).
 * Returns 0 (*on says whether isolation is on), CLI_EXIT_FAILURE when it is required and
 * not possible, or CLI_EXIT_USAGE when a secret path cannot be opened (printed).
 */
static int exec_open_secrets(const struct exec_args *a, struct isolate_secrets *secrets, bool *on)
{
    char why[512];
    int r = 0;

    *on = false;
    if (a->isolation == ISOLATE_OFF || !isolate_available()) {
        if (a->isolation == ISOLATE_REQUIRED) {
            fprintf(stderr, "credbroker exec: --isolation required, but this host does not "
                            "allow user namespaces\n");
            return CLI_EXIT_FAILURE;
        }
        if (a->isolation == ISOLATE_AUTO)
            log_warn("isolation unavailable (no user namespaces here): the command runs "
                     "without namespaces");
        if (a->key_file != NULL)
            log_warn("the command can read the key file %.200s (same user, no isolation): "
                     "prefer --key-fd or --key-env", a->key_file);
        for (size_t i = 0; i < a->routes.n; i++) {
            if (a->routes.v[i].spec.key_kind == ROUTE_KEY_FILE)
                log_warn("the command can read route %s's key file %.200s (same user, no "
                         "isolation): prefer key-fd or key-env", a->routes.v[i].spec.name,
                         a->routes.v[i].spec.key_ref);
        }
        if (a->key_env != NULL)
            log_warn("--key-env without isolation: the key stays readable in the environment "
                     "of the process that started credbroker (/proc/PID/environ)");
        return 0;
    }
    if (a->key_file != NULL && (r = isolate_secrets_add(secrets, a->key_file, false)) != 0)
        fprintf(stderr, "credbroker exec: --key-file %.200s: %s\n", a->key_file, err_str(r));
    if (r == 0 && (r = route_set_cover(&a->routes, secrets, why, sizeof(why))) != 0)
        fprintf(stderr, "credbroker exec: %s\n", why);
    for (int i = 0; r == 0 && i < a->nsecret_paths; i++) {
        if ((r = isolate_secrets_add(secrets, a->secret_paths[i], false)) != 0)
            fprintf(stderr, "credbroker exec: --secret-path %.200s: %s%s\n", a->secret_paths[i],
                    err_str(r), r == -ENOENT ? " (what is not there cannot be hidden, and may "
                                               "have been moved: restore it or leave it out)"
                                             : "");
    }
    if (r == 0 && a->audit != NULL && (r = isolate_secrets_add(secrets, a->audit, true)) != 0)
        fprintf(stderr, "credbroker exec: --audit %.200s: %s\n", a->audit, err_str(r));
    if (r != 0)
        return CLI_EXIT_USAGE;
    *on = true;
    return 0;
}

/*
 * The plan for this spawn: every secret still the object opened at start, and the
 * working directory not under a covered one. Returns 0 or CLI_EXIT_FAILURE (printed).
 */
static int exec_plan_isolation(const struct isolate_secrets *secrets, struct isolate_plan *plan)
{
    const char *where = NULL;
    int r;

    if ((r = isolate_plan_init(plan, secrets, &where)) == 0 &&
        (r = isolate_plan_check_workdir(plan, NULL, &where)) == 0)
        return 0;
    if (r == ERR_SECRET_MOVED)
        fprintf(stderr, "credbroker exec: secret path changed: %.200s (moved, deleted or "
                        "replaced since start): the command is not run\n", where);
    else if (r == ERR_UNDER_SECRET)
        fprintf(stderr, "credbroker exec: the working directory is at or under the secret path "
                        "%.200s: the command is not run\n", where);
    else
        fprintf(stderr, "credbroker exec: cannot prepare isolation: %s\n", err_str(r));
    return CLI_EXIT_FAILURE;
}

/*
 * Tests only: CREDBROKER_TEST_FAIL_AT=broker|setup makes that step fail, where nothing a
 * test can arrange from outside does (the fd headroom check comes first), to show the
 * exit code and that the command never runs. It can only make exec fail.
 */
static bool exec_test_fails_at(const char *step)
{
    const char *at = getenv("CREDBROKER_TEST_FAIL_AT");

    return at != NULL && strcmp(at, step) == 0;
}

/*
 * A command that could not be started: 127 when it is not there, 126 when it is but its exec
 * failed (as env(1) and the shells answer), 125 when we failed before an exec was tried.
 */
static int exit_for_spawn_error(int r, const char *cmd, bool exec_tried)
{
    fprintf(stderr, "credbroker exec: %.200s: %s\n", cmd, err_str(r));
    if (r == -ENOENT)
        return CLI_EXIT_NOTFOUND;
    return r == -EACCES || exec_tried ? CLI_EXIT_NOEXEC : CLI_EXIT_FAILURE;
}

/* --legacy: the old path, no broker. The key is in the command's environment. */
static int run_legacy(const struct exec_args *a, struct secret *key)
{
    const char *extra[] = {BASE_URL_VAR, a->upstream, NULL};
    struct env *e = child_env(a, key, extra);
    int r;

    if (e == NULL || env_set_secret(e, APP_KEY_VAR, key) != 0) {
        secret_free(key);
        env_free(e);
        fprintf(stderr, "credbroker exec: out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    secret_free(key);
    log_warn("--legacy: the key is in the command's environment (%s)", APP_KEY_VAR);
    execvpe(a->command[0], a->command, (char *const *)env_array(e));
    r = -errno;
    env_free(e);
    return exit_for_spawn_error(r, a->command[0], true);
}

static void close_cb_noop(uv_handle_t *h)
{
}

static void on_child_exit(struct child *c, int status, int exec_err, bool timed_out, void *data)
{
    struct exec_state *st = data;

    st->status = status;
    if (exec_err != 0 && child_failed_at(c) == CHILD_STAGE_EXEC) {
        st->status = exit_for_spawn_error(exec_err, st->command, true);
    } else if (exec_err != 0) {
        /* It never ran, and never without its isolation: our failure, as env(1) reports its
         * own (a failed chdir, say). */
        fprintf(stderr, "credbroker exec: cannot %s the command: %s\n",
                child_failed_at(c) == CHILD_STAGE_ISOLATION ? "isolate" : "set up",
                err_str(exec_err));
        st->status = CLI_EXIT_FAILURE;
    }
    /* Authority ends with the command: leftover holders of fd 3 get nothing. */
    broker_invocation_end(st->inv);
    st->inv = NULL;
    for (int i = 0; i < st->nsignals; i++)
        uv_close((uv_handle_t *)&st->signals[i], close_cb_noop);
    st->nsignals = 0;
    broker_close(st->broker);
    st->broker = NULL;
    child_free(c);
    st->child = NULL;
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct exec_state *st = h->data;

    if (st->child != NULL)
        child_signal(st->child, signum);
}

int cmd_exec(int argc, char **argv)
{
    struct exec_args a;
    struct exec_state st;
    struct broker_options bo;
    struct broker_invocation_options io;
    struct audit *audit = NULL;
    struct secret *key = NULL;
    struct env *env = NULL;
    struct child_options co;
    char fdtext[16], *preload = NULL;
    struct isolate_plan plan = {.sync_to_parent = {-1, -1}, .sync_to_child = {-1, -1}};
    struct isolate_secrets secrets = {NULL, 0};
    bool isolated = false;
    int r, child_fd = -1, status = CLI_EXIT_FAILURE, fds_at_start = -1;

    memset(&a, 0, sizeof(a));
    memset(&st, 0, sizeof(st));
    memset(&io, 0, sizeof(io));
    if ((r = parse_args(argc, argv, &a)) >= 0) {
        exec_args_free(&a);
        return r;
    }
    if (a.verbose)
        log_set_level(LOG_LEVEL_DEBUG);
    if (read_key(&a, &key) != 0) {
        exec_args_free(&a);
        return CLI_EXIT_USAGE;
    }
    if (a.legacy) {
        exec_args_free(&a);
        return run_legacy(&a, key);
    }
    if (!broker_supported()) {
        fprintf(stderr, "credbroker exec: the broker is not supported on this platform or build; "
                        "--legacy passes the key in the environment instead\n");
        secret_free(key);
        exec_args_free(&a);
        return CLI_EXIT_FAILURE;
    }
    if (key != NULL && upstream_base_parse(a.upstream, &io.upstream) != 0) {
        fprintf(stderr, "credbroker exec: --upstream: not an http(s)://host[:port][/path] URL: "
                        "'%.200s'\n", a.upstream);
        secret_free(key);
        exec_args_free(&a);
        return CLI_EXIT_USAGE;
    }
    if (key != NULL && inject_parse(a.inject, &io.inject) != 0) {
        fprintf(stderr, "credbroker exec: --inject wants query:NAME, header:NAME or bearer\n");
        secret_free(key);
        exec_args_free(&a);
        return CLI_EXIT_USAGE;
    }
    if (a.cacert != NULL && (r = net_tls_cacert_check(a.cacert)) != 0) {
        fprintf(stderr, "credbroker exec: --cacert %.200s: %s\n", a.cacert,
                r == ERR_INVALID ? "no PEM certificate in it" : err_str(r));
        secret_free(key);
        exec_args_free(&a);
        return CLI_EXIT_USAGE;
    }
    if (a.audit != NULL && (r = audit_open(a.audit, &audit)) != 0) {
        fprintf(stderr, "credbroker exec: --audit %.200s: %s\n", a.audit, err_str(r));
        secret_free(key);
        exec_args_free(&a);
        return CLI_EXIT_USAGE;
    }
    if ((r = exec_open_secrets(&a, &secrets, &isolated)) != 0) {
        secret_free(key);
        exec_args_free(&a);
        audit_close(audit);
        isolate_secrets_free(&secrets);
        return r;
    }

    /* Room for the loop, the broker and the command's fds: libuv aborts the process when it
     * cannot make its loop's pipes, and uv_default_loop() is NULL when it fails otherwise. */
    if ((r = harden_fd_headroom(EXEC_FDS_NEEDED)) != 0 || (st.loop = uv_default_loop()) == NULL) {
        fprintf(stderr, "credbroker exec: cannot start the event loop: %s\n",
                r != 0 ? "too few file descriptors allowed (ulimit -n): at least 32 more are "
                         "needed"
                       : "out of file descriptors or memory");
        secret_free(key);
        exec_args_free(&a);
        audit_close(audit);
        isolate_secrets_free(&secrets);
        return CLI_EXIT_FAILURE;
    }
    /* A command whose signals we could not pass on would outlive a Ctrl-C of ours: it does
     * not start. */
    for (size_t i = 0; i < sizeof(forwarded_signals) / sizeof(forwarded_signals[0]); i++) {
        if ((r = uv_signal_init(st.loop, &st.signals[st.nsignals])) == 0) {
            st.signals[st.nsignals].data = &st;
            if ((r = uv_signal_start(&st.signals[st.nsignals], on_signal,
                                     forwarded_signals[i])) != 0)
                uv_close((uv_handle_t *)&st.signals[st.nsignals], close_cb_noop);
            else
                st.nsignals++;
        }
        if (r != 0) {
            fprintf(stderr, "credbroker exec: cannot forward %s to the command: %s\n",
                    strsignal(forwarded_signals[i]), err_str(r));
            secret_free(key);
            exec_args_free(&a);
            goto out;
        }
    }
    /* The baseline of the leak check: the loop and libuv's own process-wide fds exist now. */
    fds_at_start = harden_count_fds();
    memset(&bo, 0, sizeof(bo));
    bo.cacert = a.cacert;
    bo.connect_timeout_ms = a.connect_timeout_ms;
    bo.audit = audit;
    if ((r = broker_new(st.loop, &bo, &st.broker)) != 0) {
        fprintf(stderr, "credbroker exec: cannot start the broker: %s\n", err_str(r));
        secret_free(key);
        exec_args_free(&a);
        goto out;
    }
    /* The command's environment, while the key is still ours to look for in it. */
    snprintf(fdtext, sizeof(fdtext), "3");
    if (a.preload && (preload = preload_value()) == NULL) {
        secret_free(key);
        exec_args_free(&a);
        goto out;
    }
    {
        const char *extra[7] = {CRED_FD_VAR, fdtext};
        size_t n = 2;

        /* Without a default route FLASHDUTY_BASE_URL is not ours to set (a route may). */
        if (key != NULL) {
            extra[n++] = BASE_URL_VAR;
            extra[n++] = PLACEHOLDER_URL;
        }
        if (preload != NULL) {
            extra[n++] = "LD_PRELOAD";
            extra[n++] = preload;
        }
        extra[n] = NULL;

        if ((env = child_env(&a, key, extra)) == NULL) {
            fprintf(stderr, "credbroker exec: out of memory\n");
            secret_free(key);
            exec_args_free(&a);
            goto out;
        }
    }
    io.label = "exec";
    io.policy = policy_rule_count(a.policy) > 0 ? a.policy : NULL;
    if (io.policy == NULL)
        policy_free(a.policy);
    a.policy = NULL;
    io.routes = a.routes.broker;
    io.nroutes = a.routes.n;
    io.limits = a.limits;
    io.scrub = !a.no_scrub;
    if (exec_test_fails_at("broker")) {
        secret_free(key);
        r = -EMFILE;
    } else {
        r = broker_invocation_new(st.broker, &io, key, &child_fd, &st.inv);
    }
    key = NULL; /* transferred, also on failure */
    route_set_free(&a.routes); /* the invocation has its own copies of their keys */
    if (r != 0) {
        /* Fail closed: no broker, no command (never the key in the environment instead). */
        fprintf(stderr, "credbroker exec: cannot set up the broker: %s\n", err_str(r));
        goto out;
    }
    if (isolated && exec_plan_isolation(&secrets, &plan) != 0)
        goto out; /* fail closed, the message is printed */
    memset(&co, 0, sizeof(co));
    co.isolate = isolated ? &plan : NULL;
    co.argv = a.command;
    co.envp = env_array(env);
    co.cwd = exec_test_fails_at("setup") ? "/nonexistent/credbroker-test-fail-at" : NULL;
    co.ctl_fd = child_fd;
    co.stdio[0] = co.stdio[1] = co.stdio[2] = -1;
    co.foreground = true;
    co.on_exit = on_child_exit;
    co.data = &st;
    st.command = a.command[0];
    r = child_spawn(st.loop, &co, &st.child);
    close(child_fd); /* the command has its copy at fd 3; ours must not keep the channel open */
    child_fd = -1;
    env_free(env);
    env = NULL;
    if (r != 0) {
        status = exit_for_spawn_error(r, a.command[0], false);
        goto out;
    }
    uv_run(st.loop, UV_RUN_DEFAULT);
    status = st.status;
out:
    if (child_fd >= 0)
        close(child_fd);
    exec_args_free(&a);
    env_free(env);
    if (st.inv != NULL)
        broker_invocation_end(st.inv);
    for (int i = 0; i < st.nsignals; i++)
        uv_close((uv_handle_t *)&st.signals[i], close_cb_noop);
    st.nsignals = 0;
    if (st.broker != NULL)
        broker_close(st.broker);
    if (st.loop != NULL) {
        uv_run(st.loop, UV_RUN_DEFAULT);
        uv_loop_close(st.loop);
    }
    audit_close(audit);
    free(preload);
    isolate_plan_free(&plan);
    /* Every fd and secret of the invocation must be gone by now (tests turn this on); the
     * secrets' descriptors were opened before the count started. */
    if (fds_at_start >= 0 && !harden_leak_check(fds_at_start, "exec"))
        status = CLI_EXIT_FAILURE;
    isolate_secrets_free(&secrets);
    return status;
}
