/*
 * Unit tests for src/runner/config.c and config_yaml.c: defaults, the YAML file, the environment,
 * config_set(), their precedence, and every kind of error with its message.
 * Files are written to a fresh directory under $TMPDIR, removed at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "permission.h"
#include "err.h"
#include "route.h"
#include "secret.h"

#define KEY "fk_TOPSECRETkey0123456789"
#define KEY_PART "TOPSECRET"

static char tmpdir[PATH_MAX];
static char err[512];

static int group_setup(void **state)
{
    const char *base = getenv("TMPDIR");

    snprintf(tmpdir, sizeof(tmpdir), "%s/test_config.XXXXXX",
             base != NULL && base[0] != '\0' ? base : "/tmp");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int group_teardown(void **state)
{
    char cmd[PATH_MAX + 16];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Writes text to tmpdir/name with mode; returns the path (static buffer). */
static const char *write_file(const char *name, mode_t mode, const char *text)
{
    static char path[PATH_MAX];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    unlink(path);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

static void init(struct runner_config *c)
{
    assert_int_equal(config_init(c), 0);
}

/* Loads text as a 0600 file; returns what config_load_file returns. */
static int load(struct runner_config *c, const char *text)
{
    return config_load_file(c, write_file("config.yaml", 0600, text), err, sizeof(err));
}

static void assert_err_contains(const char *part)
{
    if (strstr(err, part) == NULL)
        fail_msg("err \"%s\" does not contain \"%s\"", err, part);
}

/* err without the directory of the files written here. */
static const char *err_rel(void)
{
    size_t n = strlen(tmpdir);

    if (strncmp(err, tmpdir, n) == 0 && err[n] == '/')
        return err + n + 1;
    return err;
}

static void assert_err_clean(void)
{
    assert_null(strstr(err, KEY_PART));
    assert_null(strchr(err, '\n'));
}

/* ---- defaults ---- */

static void test_config_init_sets_the_documented_defaults(void **state)
{
    struct runner_config c;
    char host[HOST_NAME_MAX + 1] = "";
    char want[PATH_MAX];

    setenv("HOME", "/home/runner-test", 1);
    init(&c);
    assert_null(c.api_key);
    assert_string_equal(c.api_url, "wss://api.flashcat.cloud/safari/worknode/ws");
    assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
    assert_string_equal(c.name, host);
    snprintf(want, sizeof(want), "/home/runner-test/.flashduty-runner/workspace");
    assert_string_equal(c.workspace_root, want);
    assert_null(c.log_file);
    assert_int_equal(c.nlabels, 0);
    assert_false(c.permission_bash_set);
    assert_null(c.permission_config);
    assert_int_equal(c.log_level, LOG_LEVEL_INFO);
    assert_false(c.log_json);
    assert_true(c.broker.enabled);
    assert_null(c.broker.probe);
    assert_null(c.broker.cacert);
    assert_string_equal(c.broker.inject, "query:app_key");
    assert_null(c.broker.audit);
    assert_int_equal(c.broker.max_conns, 64);
    assert_int_equal(c.broker.dial_rate, 100);
    assert_int_equal(c.broker.max_body, 67108864);
    assert_int_equal(c.broker.head_timeout_ms, 10000);
    assert_int_equal(c.broker.idle_timeout_ms, 60000);
    assert_int_equal(c.broker.connect_timeout_ms, 10000);
    assert_int_equal(c.broker.response_timeout_ms, 60000);
    assert_int_equal(c.broker.stall_timeout_ms, 120000);
    assert_int_equal(c.broker.nenv_deny, 0);
    assert_int_equal(c.broker.nsecret_paths, 0);
    assert_int_equal(c.broker.isolation, ISOLATION_AUTO);
    assert_int_equal(c.tasks.max_concurrent, 64);
    assert_int_equal(c.tasks.default_timeout_ms, 120000);
    assert_int_equal(c.tasks.output_cap, 10485760);
    assert_int_equal(c.tasks.result_queue, 256);
    assert_null(c.config_path);
    config_free(&c);
}

static void test_config_defaults_fail_validation_only_for_the_missing_api_key(void **state)
{
    struct runner_config c;

    init(&c);
    assert_int_equal(config_validate(&c, err, sizeof(err)), ERR_INVALID);
    assert_err_contains("api_key: not set");
    config_free(&c);
}

static void test_config_free_accepts_null_and_leaves_the_struct_zeroed(void **state)
{
    struct runner_config c, zero;

    config_free(NULL);
    init(&c);
    config_free(&c);
    memset(&zero, 0, sizeof(zero));
    assert_memory_equal(&c, &zero, sizeof(c));
}

/* ---- the file ---- */

static const char full_file[] = "# every key\n"
                                "api_key: \"" KEY "\"\n"
                                "api_url: ws://127.0.0.1:8080/runner/ws\n"
                                "name: my-runner\n"
                                "labels: {env: prod, region: eu}\n"
                                "workspace_root: /var/lib/flashduty-runner/workspace\n"
                                "permission:\n"
                                "  bash: deny\n"
                                "log:\n"
                                "  level: debug\n"
                                "  format: json\n"
                                "  file: /var/log/runner.log\n"
                                "broker:\n"
                                "  enabled: false\n"
                                "  probe: \"fduty version --json\"\n"
                                "  cacert: /etc/ssl/ca.pem\n"
                                "  inject: header:X-Api-Key\n"
                                "  max_conns: 8\n"
                                "  dial_rate: 20\n"
                                "  max_body: 1048576\n"
                                "  head_timeout: 5s\n"
                                "  idle_timeout: 2m\n"
                                "  connect_timeout: 500ms\n"
                                "  response_timeout: 30\n"
                                "  stall_timeout: 1h\n"
                                "  audit: /var/log/audit.log\n"
                                "  env_deny: [AWS_SECRET_ACCESS_KEY, \"MY_*\"]\n"
                                "  secret_paths:\n"
                                "    - /etc/runner/key\n"
                                "  isolation: required\n"
                                "tasks:\n"
                                "  max_concurrent: 4\n"
                                "  default_timeout: 90s\n"
                                "  output_cap: 4096\n"
                                "  result_queue: 0\n";

static void test_config_loads_every_key_from_a_full_file(void **state)
{
    struct runner_config c;

    init(&c);
    assert_int_equal(load(&c, full_file), 0);
    assert_non_null(c.api_key);
    assert_true(secret_equals(c.api_key, KEY, strlen(KEY)));
    assert_string_equal(c.api_url, "ws://127.0.0.1:8080/runner/ws");
    assert_string_equal(c.name, "my-runner");
    assert_int_equal(c.nlabels, 2);
    assert_string_equal(c.label_keys[0], "env");
    assert_string_equal(c.label_values[0], "prod");
    assert_string_equal(c.label_keys[1], "region");
    assert_string_equal(c.label_values[1], "eu");
    assert_string_equal(c.workspace_root, "/var/lib/flashduty-runner/workspace");
    assert_true(c.permission_bash_set);
    assert_int_equal(c.npermission, 1);
    assert_string_equal(c.permission_patterns[0], "*");
    assert_string_equal(c.permission_actions[0], "deny");
    assert_int_equal(c.log_level, LOG_LEVEL_DEBUG);
    assert_true(c.log_json);
    assert_string_equal(c.log_file, "/var/log/runner.log");
    assert_false(c.broker.enabled);
    assert_string_equal(c.broker.probe, "fduty version --json");
    assert_string_equal(c.broker.cacert, "/etc/ssl/ca.pem");
    assert_string_equal(c.broker.inject, "header:X-Api-Key");
    assert_int_equal(c.broker.max_conns, 8);
    assert_int_equal(c.broker.dial_rate, 20);
    assert_int_equal(c.broker.max_body, 1048576);
    assert_int_equal(c.broker.head_timeout_ms, 5000);
    assert_int_equal(c.broker.idle_timeout_ms, 120000);
    assert_int_equal(c.broker.connect_timeout_ms, 500);
    assert_int_equal(c.broker.response_timeout_ms, 30000);
    assert_int_equal(c.broker.stall_timeout_ms, 3600000);
    assert_string_equal(c.broker.audit, "/var/log/audit.log");
    assert_int_equal(c.broker.nenv_deny, 2);
    assert_string_equal(c.broker.env_deny[0], "AWS_SECRET_ACCESS_KEY");
    assert_string_equal(c.broker.env_deny[1], "MY_*");
    assert_int_equal(c.broker.nsecret_paths, 1);
    assert_string_equal(c.broker.secret_paths[0], "/etc/runner/key");
    assert_int_equal(c.broker.isolation, ISOLATION_REQUIRED);
    assert_int_equal(c.tasks.max_concurrent, 4);
    assert_int_equal(c.tasks.default_timeout_ms, 90000);
    assert_int_equal(c.tasks.output_cap, 4096);
    assert_int_equal(c.tasks.result_queue, 0);
    assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
    config_free(&c);
}

static void test_config_records_the_absolute_path_of_the_file_read(void **state)
{
    struct runner_config c;
    char cwd[PATH_MAX], want[PATH_MAX];

    init(&c);
    write_file("relative.yaml", 0600, "name: x\n");
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(tmpdir), 0);
    assert_int_equal(config_load_file(&c, "relative.yaml", err, sizeof(err)), 0);
    assert_int_equal(chdir(cwd), 0);
    assert_non_null(realpath(tmpdir, want));
    strncat(want, "/relative.yaml", sizeof(want) - strlen(want) - 1);
    assert_string_equal(c.config_path, want);
    config_free(&c);
}

static void test_config_empty_file_or_only_comments_changes_nothing(void **state)
{
    struct runner_config c;

    init(&c);
    assert_int_equal(load(&c, ""), 0);
    assert_int_equal(load(&c, "# nothing here\n\n"), 0);
    assert_int_equal(load(&c, "---\n"), 0);
    assert_string_equal(c.api_url, "wss://api.flashcat.cloud/safari/worknode/ws");
    assert_int_equal(c.broker.max_conns, 64);
    config_free(&c);
}

static void test_config_empty_sections_and_null_strings_are_accepted(void **state)
{
    struct runner_config c;

    init(&c);
    assert_int_equal(load(&c, "broker:\n  cacert: /x\n  probe: p\n"), 0);
    assert_int_equal(load(&c, "broker:\n  cacert: \"\"\n  probe:\nlog:\ntasks: ~\n"), 0);
    assert_null(c.broker.cacert);
    assert_null(c.broker.probe);
    config_free(&c);
}

static void test_config_ignores_keys_only_the_go_runner_uses(void **state)
{
    struct runner_config c;

    init(&c);
    assert_int_equal(load(&c, "auto_update: true\nworknode_id: wn-123\nname: n\n"), 0);
    assert_string_equal(c.name, "n");
    assert_int_equal(load(&c, "auto_update: {nested: [1, 2]}\n"), 0);
    config_free(&c);
}

static void test_config_accepts_the_go_runner_log_format_text(void **state)
{
    struct runner_config c;

    init(&c);
    assert_int_equal(load(&c, "log:\n  format: json\n"), 0);
    assert_true(c.log_json);
    assert_int_equal(load(&c, "log:\n  format: text\n"), 0);
    assert_false(c.log_json);
    config_free(&c);
}

/* ---- labels ---- */

static void test_config_reads_labels_from_a_yaml_mapping(void **state)
{
    struct runner_config c;

    init(&c);
    assert_int_equal(load(&c, "labels:\n  env: prod\n  tier: 1\n  empty:\n"), 0);
    assert_int_equal(c.nlabels, 3);
    assert_string_equal(c.label_keys[0], "env");
    assert_string_equal(c.label_values[0], "prod");
    assert_string_equal(c.label_keys[1], "tier");
    assert_string_equal(c.label_values[1], "1");
    assert_string_equal(c.label_keys[2], "empty");
    assert_string_equal(c.label_values[2], "");
    config_free(&c);
}

/* broker.routes (issue 21): route mappings, as exec's --routes file has them. */
static void test_config_reads_broker_routes(void **state)
{
    struct runner_config c;

    init(&c);
    assert_int_equal(load(&c, "broker:\n  routes:\n    - name: grafana\n"
                              "      url: https://g.internal\n      key_file: /etc/g.key\n"
                              "      allow: [GET /api/*, POST /api/ds/query]\n"
                              "    - name: wiki\n      url: https://w\n      key-env: W\n"
                              "      env: WIKI_URL\n"),
                     0);
    assert_int_equal(c.broker.nroutes, 2);
    assert_string_equal(c.broker.routes[0].name, "grafana");
    assert_string_equal(c.broker.routes[0].key_ref, "/etc/g.key");
    assert_string_equal(c.broker.routes[0].allow, "GET /api/*;POST /api/ds/query");
    assert_string_equal(c.broker.routes[0].env, "GRAFANA_BASE_URL");
    assert_string_equal(c.broker.routes[1].env, "WIKI_URL");
    /* A second broker.routes replaces the first, as any key read twice does. */
    assert_int_equal(load(&c, "broker:\n  routes:\n    - {name: one, url: https://o, "
                              "key-fd: 5}\n"),
                     0);
    assert_int_equal(c.broker.nroutes, 1);
    assert_string_equal(c.broker.routes[0].name, "one");
    /* Refusals say the file, the key and the line. */
    assert_int_equal(load(&c, "broker:\n  routes:\n    - name: Bad\n      url: https://x\n"),
                     ERR_INVALID);
    assert_err_contains("broker.routes");
    assert_err_contains("line 3");
    assert_err_contains("route name 'Bad'");
    assert_err_clean();
    assert_int_equal(load(&c, "broker:\n  routes: x\n"), ERR_INVALID);
    assert_err_contains("expected a list of routes");
    assert_int_equal(config_set(&c, "broker.routes", "g=https://h", "--set", err, sizeof(err)),
                     ERR_INVALID);
    assert_err_contains("config file");
    config_free(&c);
}

static void test_config_reads_labels_in_the_go_runner_list_form(void **state)
{
    struct runner_config c;

    init(&c);
    assert_int_equal(load(&c, "labels:\n  - k8s\n  - os:linux\n"), 0);
    assert_int_equal(c.nlabels, 2);
    assert_string_equal(c.label_keys[0], "k8s");
    assert_string_equal(c.label_values[0], "");
    assert_string_equal(c.label_keys[1], "os");
    assert_string_equal(c.label_values[1], "linux");
    config_free(&c);
}

static void test_config_reads_labels_from_the_environment(void **state)
{
    struct runner_config c;
    char *env[] = {"FLASHDUTY_RUNNER_LABELS=env=prod, region = eu,,k8s", NULL};

    init(&c);
    assert_int_equal(load(&c, "labels: {old: yes}\n"), 0);
    assert_int_equal(config_apply_env(&c, env, err, sizeof(err)), 0);
    assert_int_equal(c.nlabels, 3);
    assert_string_equal(c.label_keys[0], "env");
    assert_string_equal(c.label_values[0], "prod");
    assert_string_equal(c.label_keys[1], "region");
    assert_string_equal(c.label_values[1], "eu");
    assert_string_equal(c.label_keys[2], "k8s");
    assert_string_equal(c.label_values[2], "");
    config_free(&c);
}

static void test_config_rejects_a_label_given_twice(void **state)
{
    struct runner_config c;
    char *env[] = {"FLASHDUTY_RUNNER_LABELS=a=1,a=2", NULL};

    init(&c);
    assert_int_equal(load(&c, "labels:\n  a: 1\n  a: 2\n"), ERR_INVALID);
    assert_err_contains("config.yaml:3: labels: label 'a' is given twice");
    assert_int_equal(config_apply_env(&c, env, err, sizeof(err)), ERR_INVALID);
    assert_string_equal(err, "FLASHDUTY_RUNNER_LABELS: labels: label 'a' is given twice");
    config_free(&c);
}

static void test_config_rejects_labels_given_as_a_single_value(void **state)
{
    struct runner_config c;

    init(&c);
    assert_int_equal(load(&c, "labels: prod\n"), ERR_INVALID);
    assert_err_contains("config.yaml:1: labels: expected a mapping (or a list), found a single");
    assert_int_equal(load(&c, "labels:\n  env: [a, b]\n"), ERR_INVALID);
    assert_err_contains("config.yaml:2: labels: label values must be single values, found a list");
    config_free(&c);
}

/* ---- precedence ---- */

static void test_config_env_overrides_the_file_and_set_overrides_env(void **state)
{
    struct runner_config c;
    char *env[] = {"PATH=/bin", "FLASHDUTY_RUNNER_NAME=from-env",
                   "FLASHDUTY_RUNNER_BROKER_CACERT=/env/ca.pem", "FLASHDUTY_RUNNER_LOG_LEVEL=warn",
                   NULL};

    init(&c);
    assert_int_equal(load(&c, "name: from-file\nlog:\n  level: debug\nbroker:\n  cacert: /file\n"
                              "  max_conns: 7\n"),
                     0);
    assert_string_equal(c.name, "from-file");
    assert_int_equal(config_apply_env(&c, env, err, sizeof(err)), 0);
    assert_string_equal(c.name, "from-env");
    assert_string_equal(c.broker.cacert, "/env/ca.pem");
    assert_int_equal(c.log_level, LOG_LEVEL_WARN);
    assert_int_equal(c.broker.max_conns, 7); /* not in the environment: the file's value */
    assert_int_equal(config_set(&c, "broker.cacert", "/flag/ca.pem", "--set", err, sizeof(err)), 0);
    assert_int_equal(config_set(&c, "name", "from-flag", "--name", err, sizeof(err)), 0);
    assert_string_equal(c.broker.cacert, "/flag/ca.pem");
    assert_string_equal(c.name, "from-flag");
    assert_int_equal(c.log_level, LOG_LEVEL_WARN);
    config_free(&c);
}

static void test_config_env_ignores_empty_variables_and_other_prefixes(void **state)
{
    struct runner_config c;
    char *env[] = {"FLASHDUTY_RUNNER_NAME=",
                   "FLASHDUTY_APP_KEY=x",
                   "FLASHDUTY_RUNNERX=1",
                   "FLASHDUTY_RUNNER_AUTO_UPDATE=false",
                   "FLASHDUTY_RUNNER_WORKNODE_ID=w",
                   NULL};

    init(&c);
    assert_int_equal(load(&c, "name: kept\n"), 0);
    assert_int_equal(config_apply_env(&c, env, err, sizeof(err)), 0);
    assert_string_equal(c.name, "kept");
    config_free(&c);
}

static void test_config_api_key_from_the_environment_goes_into_the_secret_arena(void **state)
{
    struct runner_config c;
    char *env[] = {"FLASHDUTY_RUNNER_API_KEY=" KEY, NULL};

    init(&c);
    assert_int_equal(config_apply_env(&c, env, err, sizeof(err)), 0);
    assert_non_null(c.api_key);
    assert_true(secret_equals(c.api_key, KEY, strlen(KEY)));
    assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
    config_free(&c);
}

static void test_config_every_key_has_its_environment_variable(void **state)
{
    struct runner_config c;
    char *env[] = {"FLASHDUTY_RUNNER_API_URL=wss://h/ws",
                   "FLASHDUTY_RUNNER_WORKSPACE_ROOT=/w",
                   "FLASHDUTY_RUNNER_PERMISSION_BASH=deny",
                   "FLASHDUTY_RUNNER_LOG_FORMAT=json",
                   "FLASHDUTY_RUNNER_LOG_FILE=/l",
                   "FLASHDUTY_RUNNER_BROKER_ENABLED=no",
                   "FLASHDUTY_RUNNER_BROKER_PROBE=fduty version --json",
                   "FLASHDUTY_RUNNER_BROKER_INJECT=bearer",
                   "FLASHDUTY_RUNNER_BROKER_MAX_CONNS=3",
                   "FLASHDUTY_RUNNER_BROKER_DIAL_RATE=4",
                   "FLASHDUTY_RUNNER_BROKER_MAX_BODY=5",
                   "FLASHDUTY_RUNNER_BROKER_HEAD_TIMEOUT=6s",
                   "FLASHDUTY_RUNNER_BROKER_IDLE_TIMEOUT=7s",
                   "FLASHDUTY_RUNNER_BROKER_CONNECT_TIMEOUT=8s",
                   "FLASHDUTY_RUNNER_BROKER_RESPONSE_TIMEOUT=9s",
                   "FLASHDUTY_RUNNER_BROKER_STALL_TIMEOUT=10s",
                   "FLASHDUTY_RUNNER_BROKER_AUDIT=/a",
                   "FLASHDUTY_RUNNER_BROKER_SECRET_PATHS=/s1, /s2",
                   "FLASHDUTY_RUNNER_BROKER_ISOLATION=off",
                   "FLASHDUTY_RUNNER_TASKS_MAX_CONCURRENT=11",
                   "FLASHDUTY_RUNNER_TASKS_DEFAULT_TIMEOUT=12",
                   "FLASHDUTY_RUNNER_TASKS_OUTPUT_CAP=13",
                   "FLASHDUTY_RUNNER_TASKS_RESULT_QUEUE=14",
                   NULL};

    init(&c);
    assert_int_equal(config_apply_env(&c, env, err, sizeof(err)), 0);
    assert_string_equal(c.api_url, "wss://h/ws");
    assert_string_equal(c.workspace_root, "/w");
    assert_int_equal(c.npermission, 1);
    assert_string_equal(c.permission_actions[0], "deny");
    assert_true(c.log_json);
    assert_string_equal(c.log_file, "/l");
    assert_false(c.broker.enabled);
    assert_string_equal(c.broker.probe, "fduty version --json");
    assert_string_equal(c.broker.inject, "bearer");
    assert_int_equal(c.broker.max_conns, 3);
    assert_int_equal(c.broker.dial_rate, 4);
    assert_int_equal(c.broker.max_body, 5);
    assert_int_equal(c.broker.head_timeout_ms, 6000);
    assert_int_equal(c.broker.idle_timeout_ms, 7000);
    assert_int_equal(c.broker.connect_timeout_ms, 8000);
    assert_int_equal(c.broker.response_timeout_ms, 9000);
    assert_int_equal(c.broker.stall_timeout_ms, 10000);
    assert_string_equal(c.broker.audit, "/a");
    assert_int_equal(c.broker.nsecret_paths, 2);
    assert_string_equal(c.broker.secret_paths[1], "/s2");
    assert_int_equal(c.broker.isolation, ISOLATION_OFF);
    assert_int_equal(c.tasks.max_concurrent, 11);
    assert_int_equal(c.tasks.default_timeout_ms, 12000);
    assert_int_equal(c.tasks.output_cap, 13);
    assert_int_equal(c.tasks.result_queue, 14);
    config_free(&c);
}

static void test_config_env_rejects_an_unknown_variable(void **state)
{
    struct runner_config c;
    char *env[] = {"FLASHDUTY_RUNNER_LOG_LEVLE=debug", NULL};
    char *section[] = {"FLASHDUTY_RUNNER_BROKER=1", NULL};
    char *control[] = {"FLASHDUTY_RUNNER_A\rB=1", NULL};

    init(&c);
    assert_int_equal(config_apply_env(&c, env, err, sizeof(err)), ERR_INVALID);
    assert_string_equal(err, "FLASHDUTY_RUNNER_LOG_LEVLE: unknown variable: no configuration key "
                             "has this name");
    assert_int_equal(config_apply_env(&c, section, err, sizeof(err)), ERR_INVALID);
    assert_err_contains("FLASHDUTY_RUNNER_BROKER: unknown variable");
    /* A name with a control byte (env(1) can make one) still gives a one-line error. */
    assert_int_equal(config_apply_env(&c, control, err, sizeof(err)), ERR_INVALID);
    assert_string_equal(err, "FLASHDUTY_RUNNER_A?B: unknown variable: no configuration key has "
                             "this name");
    config_free(&c);
}

static void test_config_env_bad_value_names_the_variable_and_the_key(void **state)
{
    struct runner_config c;
    char *env[] = {"FLASHDUTY_RUNNER_TASKS_MAX_CONCURRENT=-1", NULL};

    init(&c);
    assert_int_equal(config_apply_env(&c, env, err, sizeof(err)), ERR_INVALID);
    assert_string_equal(err, "FLASHDUTY_RUNNER_TASKS_MAX_CONCURRENT: tasks.max_concurrent: '-1' "
                             "is not a whole number from 1 to 100000");
    config_free(&c);
}

/* ---- the newer Go runner's names (RUNNER-OPS.md 11) ---- */

#define KEY2 "fk_OTHERSECRETkey9876543210"

#define NOTE_TOKEN                                                                                 \
    "FLASHDUTY_RUNNER_TOKEN and FLASHDUTY_RUNNER_API_KEY are both set and differ: using "          \
    "FLASHDUTY_RUNNER_TOKEN"
#define NOTE_URL                                                                                   \
    "FLASHDUTY_RUNNER_URL and FLASHDUTY_RUNNER_API_URL are both set and differ: using "            \
    "FLASHDUTY_RUNNER_URL"
#define NOTE_WORKSPACE                                                                             \
    "FLASHDUTY_RUNNER_WORKSPACE and FLASHDUTY_RUNNER_WORKSPACE_ROOT are both set and differ: "     \
    "using FLASHDUTY_RUNNER_WORKSPACE"

static bool has_note(const struct runner_config *c, const char *text)
{
    for (size_t i = 0; i < c->nnotes; i++) {
        if (strcmp(c->notes[i], text) == 0)
            return true;
    }
    return false;
}

static void test_config_env_reads_the_newer_runners_token_url_and_workspace(void **state)
{
    struct runner_config c;
    char *env[] = {"FLASHDUTY_RUNNER_TOKEN=" KEY, "FLASHDUTY_RUNNER_URL=ws://127.0.0.1:1/safari",
                   "FLASHDUTY_RUNNER_WORKSPACE=/newer", "FLASHDUTY_RUNNER_LOG_LEVEL=debug", NULL};

    init(&c);
    assert_int_equal(config_apply_env(&c, env, err, sizeof(err)), 0);
    assert_non_null(c.api_key);
    assert_true(secret_equals(c.api_key, KEY, strlen(KEY)));
    assert_string_equal(c.api_url, "ws://127.0.0.1:1/safari");
    assert_string_equal(c.workspace_root, "/newer");
    assert_int_equal(c.log_level, LOG_LEVEL_DEBUG);
    assert_int_equal(c.nnotes, 0);
    assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
    config_free(&c);
}

static void test_config_env_newer_names_override_the_file(void **state)
{
    struct runner_config c;
    char *env[] = {"FLASHDUTY_RUNNER_TOKEN=" KEY2, "FLASHDUTY_RUNNER_URL=wss://env/ws",
                   "FLASHDUTY_RUNNER_WORKSPACE=/env", NULL};

    init(&c);
    assert_int_equal(load(&c, "api_key: " KEY "\napi_url: wss://file/ws\nworkspace_root: /file\n"),
                     0);
    assert_int_equal(config_apply_env(&c, env, err, sizeof(err)), 0);
    assert_true(secret_equals(c.api_key, KEY2, strlen(KEY2)));
    assert_string_equal(c.api_url, "wss://env/ws");
    assert_string_equal(c.workspace_root, "/env");
    /* Different layers: no warning, the environment simply wins. */
    assert_int_equal(c.nnotes, 0);
    config_free(&c);
}

/* The newer name wins whatever the order of envp, and each conflict is noted once, by name. */
static void test_config_env_newer_name_wins_over_the_config_era_one_with_a_note(void **state)
{
    char *newer_first[] = {"FLASHDUTY_RUNNER_TOKEN=" KEY2,
                           "FLASHDUTY_RUNNER_URL=wss://newer/ws",
                           "FLASHDUTY_RUNNER_WORKSPACE=/newer",
                           "FLASHDUTY_RUNNER_API_KEY=" KEY,
                           "FLASHDUTY_RUNNER_API_URL=wss://older/ws",
                           "FLASHDUTY_RUNNER_WORKSPACE_ROOT=/older",
                           NULL};
    char *older_first[] = {"FLASHDUTY_RUNNER_API_KEY=" KEY,
                           "FLASHDUTY_RUNNER_API_URL=wss://older/ws",
                           "FLASHDUTY_RUNNER_WORKSPACE_ROOT=/older",
                           "FLASHDUTY_RUNNER_TOKEN=" KEY2,
                           "FLASHDUTY_RUNNER_URL=wss://newer/ws",
                           "FLASHDUTY_RUNNER_WORKSPACE=/newer",
                           NULL};
    char **envs[] = {newer_first, older_first};

    for (size_t e = 0; e < 2; e++) {
        struct runner_config c;

        init(&c);
        assert_int_equal(config_apply_env(&c, envs[e], err, sizeof(err)), 0);
        assert_true(secret_equals(c.api_key, KEY2, strlen(KEY2)));
        assert_string_equal(c.api_url, "wss://newer/ws");
        assert_string_equal(c.workspace_root, "/newer");
        assert_int_equal(c.nnotes, 3);
        assert_true(has_note(&c, NOTE_TOKEN));
        assert_true(has_note(&c, NOTE_URL));
        assert_true(has_note(&c, NOTE_WORKSPACE));
        for (size_t i = 0; i < c.nnotes; i++) {
            assert_null(strstr(c.notes[i], KEY_PART));
            assert_null(strstr(c.notes[i], "OTHERSECRET"));
            assert_null(strstr(c.notes[i], "older"));
        }
        config_free(&c);
    }
}

static void test_config_env_same_value_under_both_names_is_not_noted(void **state)
{
    struct runner_config c;
    char *env[] = {"FLASHDUTY_RUNNER_API_KEY=" KEY,
                   "FLASHDUTY_RUNNER_TOKEN=" KEY,
                   "FLASHDUTY_RUNNER_API_URL=wss://same/ws",
                   "FLASHDUTY_RUNNER_URL=wss://same/ws",
                   "FLASHDUTY_RUNNER_WORKSPACE_ROOT=/same",
                   "FLASHDUTY_RUNNER_WORKSPACE=/same",
                   NULL};

    init(&c);
    assert_int_equal(config_apply_env(&c, env, err, sizeof(err)), 0);
    assert_true(secret_equals(c.api_key, KEY, strlen(KEY)));
    assert_string_equal(c.api_url, "wss://same/ws");
    assert_int_equal(c.nnotes, 0);
    config_free(&c);
}

/* Empty is unset (both Go runners): the config-era name's value stands, with no note. */
static void test_config_env_empty_newer_variables_are_ignored(void **state)
{
    struct runner_config c;
    char *env[] = {"FLASHDUTY_RUNNER_TOKEN=",
                   "FLASHDUTY_RUNNER_URL=",
                   "FLASHDUTY_RUNNER_WORKSPACE=",
                   "FLASHDUTY_RUNNER_API_KEY=" KEY,
                   "FLASHDUTY_RUNNER_API_URL=wss://older/ws",
                   NULL};

    init(&c);
    assert_int_equal(config_apply_env(&c, env, err, sizeof(err)), 0);
    assert_true(secret_equals(c.api_key, KEY, strlen(KEY)));
    assert_string_equal(c.api_url, "wss://older/ws");
    assert_int_equal(c.nnotes, 0);
    config_free(&c);
}

static void test_config_env_bad_token_names_the_variable_never_the_value(void **state)
{
    struct runner_config c;
    char *env[] = {"FLASHDUTY_RUNNER_TOKEN=" KEY "\r\nX-Evil: 1", NULL};
    char *url[] = {"FLASHDUTY_RUNNER_TOKEN=" KEY, "FLASHDUTY_RUNNER_URL=https://h/ws", NULL};

    init(&c);
    assert_int_equal(config_apply_env(&c, env, err, sizeof(err)), ERR_KEY_CONTROL);
    assert_string_equal(err, "FLASHDUTY_RUNNER_TOKEN: api_key: key contains a control byte "
                             "(CR, LF, NUL, ...)");
    assert_err_clean();
    assert_null(c.api_key);
    /* The URL's scheme is checked as a whole, whichever name set it: exit 2 in the runner. */
    assert_int_equal(config_apply_env(&c, url, err, sizeof(err)), 0);
    assert_int_equal(config_validate(&c, err, sizeof(err)), ERR_BAD_URL);
    assert_string_equal(err, "config: api_url: 'https://h/ws' must start with ws:// or wss://");
    config_free(&c);
}

static void test_config_note_keeps_each_text_once_and_at_most_the_maximum(void **state)
{
    static const char *const texts[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};
    struct runner_config c;

    init(&c);
    config_note(&c, "a");
    config_note(&c, "a");
    assert_int_equal(c.nnotes, 1);
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        config_note(&c, texts[i]);
    assert_int_equal(c.nnotes, CONFIG_NOTES_MAX);
    assert_string_equal(c.notes[CONFIG_NOTES_MAX - 1], texts[CONFIG_NOTES_MAX - 1]);
    config_free(&c);
    assert_int_equal(c.nnotes, 0);
}

/* ---- durations and numbers ---- */

static void test_config_parses_durations_in_every_unit(void **state)
{
    static const struct {
        const char *text;
        uint64_t ms;
    } cases[] = {{"10", 10000},
                 {"10s", 10000},
                 {"500ms", 500},
                 {"2m", 120000},
                 {"1h", 3600000},
                 {"1ms", 1},
                 {"31536000", 31536000000ull}};
    struct runner_config c;

    init(&c);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(
            config_set(&c, "broker.idle_timeout", cases[i].text, "--set", err, sizeof(err)), 0);
        assert_int_equal(c.broker.idle_timeout_ms, cases[i].ms);
    }
    assert_int_equal(load(&c, "tasks:\n  default_timeout: 45s\n"), 0);
    assert_int_equal(c.tasks.default_timeout_ms, 45000);
    config_free(&c);
}

static void test_config_rejects_bad_durations(void **state)
{
    static const char *const bad[] = {"",
                                      "0",
                                      "0s",
                                      "10x",
                                      "s",
                                      "-5s",
                                      "1.5s",
                                      " 10s",
                                      "10 s",
                                      "31536001",
                                      "99999999999999999999",
                                      "10S",
                                      "1d"};
    struct runner_config c;

    init(&c);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(
            config_set(&c, "broker.stall_timeout", bad[i], "--stall-timeout", err, sizeof(err)),
            ERR_INVALID);
        assert_err_contains("--stall-timeout: broker.stall_timeout: '");
        assert_err_contains("' is not a duration");
    }
    assert_int_equal(c.broker.stall_timeout_ms, 120000);
    assert_int_equal(load(&c, "broker:\n  head_timeout: soon\n"), ERR_INVALID);
    assert_string_equal(err_rel(),
                        "config.yaml:2: broker.head_timeout: 'soon' is not a duration from "
                        "1ms to 365 days (10, 10s, 500ms, 2m, 1h)");
    config_free(&c);
}

static void test_config_rejects_bad_numbers_with_file_line_and_key(void **state)
{
    struct runner_config c;

    init(&c);
    assert_int_equal(load(&c, "broker:\n  enabled: true\n  max_conns: lots\n"), ERR_INVALID);
    assert_string_equal(err_rel(), "config.yaml:3: broker.max_conns: 'lots' is not a whole number "
                                   "from 1 to 100000");
    assert_int_equal(load(&c, "broker:\n  max_conns: 0\n"), ERR_INVALID);
    assert_err_contains("config.yaml:2: broker.max_conns: '0' is not");
    assert_int_equal(load(&c, "tasks:\n  output_cap: 1.5\n"), ERR_INVALID);
    assert_err_contains("config.yaml:2: tasks.output_cap: '1.5' is not");
    assert_int_equal(load(&c, "tasks:\n  output_cap: 0x10\n"), ERR_INVALID);
    assert_int_equal(load(&c, "tasks:\n  max_concurrent: 99999999999999999999999\n"), ERR_INVALID);
    assert_int_equal(load(&c, "broker:\n  enabled: maybe\n"), ERR_INVALID);
    assert_string_equal(err_rel(), "config.yaml:2: broker.enabled: 'maybe' is not true or false");
    config_free(&c);
}

/* ---- lists ---- */

static void test_config_reads_env_deny_from_yaml_and_from_the_environment(void **state)
{
    struct runner_config c;
    char *env[] = {"FLASHDUTY_RUNNER_BROKER_ENV_DENY=A, B_*,", NULL};

    init(&c);
    assert_int_equal(
        load(&c, "broker:\n  env_deny:\n    - AWS_SECRET_ACCESS_KEY\n    - \"MY_*\"\n"), 0);
    assert_int_equal(c.broker.nenv_deny, 2);
    assert_string_equal(c.broker.env_deny[0], "AWS_SECRET_ACCESS_KEY");
    assert_string_equal(c.broker.env_deny[1], "MY_*");
    assert_int_equal(config_apply_env(&c, env, err, sizeof(err)), 0);
    assert_int_equal(c.broker.nenv_deny, 2); /* replaced, not appended */
    assert_string_equal(c.broker.env_deny[0], "A");
    assert_string_equal(c.broker.env_deny[1], "B_*");
    assert_int_equal(config_set(&c, "broker.env_deny", "", "--set", err, sizeof(err)), 0);
    assert_int_equal(c.broker.nenv_deny, 0);
    assert_null(c.broker.env_deny);
    assert_int_equal(load(&c, "broker:\n  env_deny: []\n"), 0);
    assert_int_equal(c.broker.nenv_deny, 0);
    config_free(&c);
}

static void test_config_rejects_bad_list_items(void **state)
{
    struct runner_config c;

    init(&c);
    assert_int_equal(load(&c, "broker:\n  env_deny: AWS_SECRET_ACCESS_KEY\n"), ERR_INVALID);
    assert_string_equal(err_rel(),
                        "config.yaml:2: broker.env_deny: expected a list, found a single "
                        "value");
    assert_int_equal(load(&c, "broker:\n  env_deny:\n    - A\n    - [B]\n"), ERR_INVALID);
    assert_string_equal(err_rel(), "config.yaml:4: broker.env_deny: items must be single values, "
                                   "found a list");
    assert_int_equal(load(&c, "broker:\n  env_deny: [\"A=B\"]\n"), ERR_INVALID);
    assert_err_contains("config.yaml:2: broker.env_deny: 'A=B' contains '='");
    assert_int_equal(load(&c, "broker:\n  env_deny: [\"\"]\n"), ERR_INVALID);
    assert_err_contains("config.yaml:2: broker.env_deny: an item is empty");
    assert_int_equal(load(&c, "broker:\n  secret_paths: [relative/key]\n"), ERR_INVALID);
    assert_string_equal(err_rel(), "config.yaml:2: broker.secret_paths: 'relative/key' is not an "
                                   "absolute path");
    assert_int_equal(c.broker.nenv_deny, 0);
    assert_int_equal(c.broker.nsecret_paths, 0);
    config_free(&c);
}

/* ---- permission.bash ---- */

static void test_config_permission_bash_scalar_is_one_rule_for_everything(void **state)
{
    struct runner_config c;
    char *env[] = {"FLASHDUTY_RUNNER_PERMISSION_BASH=allow", NULL};

    init(&c);
    assert_int_equal(load(&c, "permission:\n  bash: deny\n"), 0);
    assert_int_equal(c.npermission, 1);
    assert_string_equal(c.permission_patterns[0], "*");
    assert_string_equal(c.permission_actions[0], "deny");
    assert_int_equal(config_apply_env(&c, env, err, sizeof(err)), 0);
    assert_int_equal(c.npermission, 1); /* replaced, not added */
    assert_string_equal(c.permission_actions[0], "allow");
    assert_int_equal(config_load_permission(&c, err, sizeof(err)), 0);
    assert_non_null(c.permission);
    /* An action the rules do not know refuses to start (Go would allow: RUNNER-OPS 7.1). */
    assert_int_equal(load(&c, "permission:\n  bash: maybe\n"), 0);
    assert_int_equal(config_load_permission(&c, err, sizeof(err)), ERR_INVALID);
    assert_string_equal(err, "permission.bash: invalid action 'maybe' for pattern '*' "
                             "(want allow or deny)");
    config_free(&c);
}

static void test_config_permission_bash_map_becomes_the_rules(void **state)
{
    struct runner_config c;
    char msg[256];

    init(&c);
    assert_int_equal(
        load(&c, "permission:\n  bash:\n    \"*\": deny\n    \"kubectl get *\": Allow\n"), 0);
    assert_int_equal(c.npermission, 2);
    assert_string_equal(c.permission_patterns[1], "kubectl get *");
    assert_int_equal(config_load_permission(&c, err, sizeof(err)), 0);
    assert_int_equal(permission_check(c.permission, "kubectl get pods", msg, sizeof(msg)), 0);
    assert_int_equal(permission_check(c.permission, "kubectl delete pod x", msg, sizeof(msg)),
                     ERR_PERMISSION_DENIED);
    assert_string_equal(msg, "command denied by rule '*': kubectl delete pod x");
    /* No rules at all fails closed: the runner refuses to start. */
    assert_int_equal(load(&c, "permission:\n  bash: {}\n"), 0);
    assert_int_equal(config_load_permission(&c, err, sizeof(err)), ERR_INVALID);
    assert_string_equal(err, "permission.bash: no rules under 'permission'");
    assert_int_equal(load(&c, "permission:\n  bash:\n    \"*\": [allow]\n"), ERR_INVALID);
    assert_string_equal(err_rel(),
                        "config.yaml:3: permission.bash: expected allow or deny, found a list");
    config_free(&c);
}

static void test_config_permission_file_wins_and_none_allows_all_with_a_note(void **state)
{
    struct runner_config c;
    char msg[256], file[PATH_MAX];

    /* write_file's buffer is reused by load(): keep the path. */
    snprintf(file, sizeof(file), "%s",
             write_file("rules.yaml", 0600, "permission:\n  \"ls *\": allow\n"));
    init(&c);
    assert_int_equal(config_load_permission(&c, err, sizeof(err)), 0);
    assert_null(c.permission);
    assert_int_equal(c.nnotes, 1);
    assert_string_equal(c.notes[0], "permission rules not configured: every bash command is "
                                    "allowed");
    config_free(&c);

    init(&c);
    assert_int_equal(load(&c, "permission:\n  bash: allow\n"), 0);
    assert_int_equal(config_set(&c, "permission_config", file, "--permission-config", err,
                                sizeof(err)), 0);
    assert_int_equal(config_load_permission(&c, err, sizeof(err)), 0);
    assert_int_equal(permission_check(c.permission, "ls -l", msg, sizeof(msg)), 0);
    assert_int_equal(permission_check(c.permission, "cat x", msg, sizeof(msg)),
                     ERR_PERMISSION_DENIED); /* the file's rules, not permission.bash's */
    assert_true(strstr(c.notes[c.nnotes - 1], "permission.bash is ignored") != NULL);
    assert_int_equal(config_set(&c, "permission_config", "/nonexistent/rules.yaml", "x", err,
                                sizeof(err)), 0);
    assert_int_equal(config_load_permission(&c, err, sizeof(err)) != 0, 1);
    assert_string_equal(err, "permission config /nonexistent/rules.yaml: no such file or "
                             "directory");
    config_free(&c);
}

/* ---- errors in the file ---- */

static void test_config_rejects_an_unknown_key_with_its_file_and_line(void **state)
{
    struct runner_config c;

    init(&c);
    assert_int_equal(load(&c, "name: a\nlog:\n  levle: debug\n"), ERR_INVALID);
    assert_string_equal(err_rel(), "config.yaml:3: log.levle: unknown key");
    assert_int_equal(load(&c, "\n\napi_kye: " KEY "\n"), ERR_INVALID);
    assert_string_equal(err_rel(), "config.yaml:3: api_kye: unknown key");
    assert_int_equal(load(&c, "broker.cacert: /x\n"), ERR_INVALID);
    assert_string_equal(err_rel(), "config.yaml:1: broker.cacert: unknown key");
    config_free(&c);
}

static void test_config_error_names_the_file_as_given(void **state)
{
    struct runner_config c;
    const char *path = write_file("named.yaml", 0600, "log:\n  level: loud\n");

    init(&c);
    assert_int_equal(config_load_file(&c, path, err, sizeof(err)), ERR_INVALID);
    assert_true(strncmp(err, path, strlen(path)) == 0);
    assert_string_equal(err + strlen(path),
                        ":2: log.level: 'loud' is not one of error, warn, info, debug");
    config_free(&c);
}

static void test_config_rejects_a_list_where_a_string_is_expected(void **state)
{
    struct runner_config c;

    init(&c);
    assert_int_equal(load(&c, "name: [a, b]\n"), ERR_INVALID);
    assert_string_equal(err_rel(), "config.yaml:1: name: expected a single value, found a list");
    assert_int_equal(load(&c, "log:\n  level: {x: 1}\n"), ERR_INVALID);
    assert_string_equal(err_rel(),
                        "config.yaml:2: log.level: expected a single value, found a mapping");
    assert_int_equal(load(&c, "broker: true\n"), ERR_INVALID);
    assert_string_equal(err_rel(),
                        "config.yaml:1: broker: expected a mapping of keys, found a single "
                        "value");
    assert_int_equal(load(&c, "- a\n- b\n"), ERR_INVALID);
    assert_string_equal(err_rel(),
                        "config.yaml:1: the top level must be a mapping of keys, found a "
                        "list");
    config_free(&c);
}

static void test_config_reports_a_yaml_syntax_error_with_its_line(void **state)
{
    struct runner_config c;

    init(&c);
    assert_int_equal(load(&c, "name: a\nlog:\n  level: info\n  file: \"unterminated\n"),
                     ERR_INVALID);
    assert_err_contains("config.yaml:");
    assert_err_contains("YAML syntax error: ");
    assert_int_equal(load(&c, "name: a\nbroker:\n  cacert: /x\n bad: indentation\n"), ERR_INVALID);
    assert_err_contains("config.yaml:4: YAML syntax error: ");
    assert_int_equal(load(&c, "name: a\nname2: \"\xff\xfe\"\n"), ERR_INVALID);
    assert_err_contains("config.yaml:2: YAML syntax error: ");
    assert_null(strchr(err, '\n'));
    config_free(&c);
}

static void test_config_rejects_keys_given_twice(void **state)
{
    struct runner_config c;

    init(&c);
    assert_int_equal(load(&c, "name: a\nlog:\n  level: info\nname: b\n"), ERR_INVALID);
    assert_string_equal(err_rel(), "config.yaml:4: name: given twice (first on line 1)");
    assert_int_equal(load(&c, "log:\n  level: info\nlog:\n  file: /x\n"), ERR_INVALID);
    assert_string_equal(err_rel(), "config.yaml:3: log: given twice (first on line 1)");
    config_free(&c);
}

static void test_config_refuses_aliases_and_second_documents(void **state)
{
    struct runner_config c;

    init(&c);
    assert_int_equal(load(&c, "name: &n runner\nworkspace_root: *n\n"), ERR_INVALID);
    assert_string_equal(err_rel(), "config.yaml:2: YAML aliases (*name) are not supported here");
    assert_int_equal(load(&c, "name: a\n---\nname: b\n"), ERR_INVALID);
    assert_string_equal(err_rel(), "config.yaml:2: only one YAML document is allowed");
    config_free(&c);
}

static void test_config_reports_a_file_it_cannot_read(void **state)
{
    struct runner_config c;
    char path[PATH_MAX + 32];

    init(&c);
    snprintf(path, sizeof(path), "%s/does-not-exist.yaml", tmpdir);
    assert_int_equal(config_load_file(&c, path, err, sizeof(err)), -ENOENT);
    assert_err_contains("does-not-exist.yaml: cannot open the config file: No such file");
    assert_int_equal(config_load_file(&c, tmpdir, err, sizeof(err)), ERR_INVALID);
    assert_err_contains(": the config file is not a regular file or a pipe");
    assert_null(c.config_path);
    config_free(&c);
}

static void test_config_refuses_a_file_over_the_size_limit(void **state)
{
    struct runner_config c;
    char *big = malloc(CONFIG_FILE_MAX + 2);

    assert_non_null(big);
    memset(big, '#', CONFIG_FILE_MAX + 1);
    big[CONFIG_FILE_MAX + 1] = '\0';
    init(&c);
    assert_int_equal(load(&c, big), ERR_TOO_LARGE);
    assert_err_contains("config.yaml: the config file is larger than 1048576 bytes");
    free(big);
    config_free(&c);
}

static void test_config_rejects_bad_enums_and_inject_specs(void **state)
{
    struct runner_config c;

    init(&c);
    assert_int_equal(load(&c, "log:\n  format: xml\n"), ERR_INVALID);
    assert_string_equal(err_rel(), "config.yaml:2: log.format: 'xml' is not one of logfmt, json");
    assert_int_equal(load(&c, "broker:\n  isolation: maybe\n"), ERR_INVALID);
    assert_string_equal(err_rel(), "config.yaml:2: broker.isolation: 'maybe' is not one of auto, "
                                   "required, off");
    assert_int_equal(load(&c, "broker:\n  inject: cookie:x\n"), ERR_INVALID);
    assert_string_equal(err_rel(), "config.yaml:2: broker.inject: 'cookie:x' is not query:NAME, "
                                   "header:NAME or bearer");
    assert_int_equal(load(&c, "name: \"a\\tb\"\n"), ERR_INVALID);
    assert_string_equal(err_rel(), "config.yaml:1: name: 'a?b' contains a control byte");
    config_free(&c);
}

/* ---- the api key ---- */

static void test_config_refuses_an_api_key_in_a_file_others_can_read(void **state)
{
    struct runner_config c;
    const char *path = write_file("open.yaml", 0644, "name: a\napi_key: " KEY "\n");
    char want[PATH_MAX + 64];

    init(&c);
    assert_int_equal(config_load_file(&c, path, err, sizeof(err)), ERR_KEY_PERMS);
    snprintf(want, sizeof(want), "%s:2: api_key: %s is accessible by group or others (mode 0644)",
             path, path);
    assert_err_contains(want);
    assert_err_contains("chmod 600");
    assert_err_clean();
    assert_null(c.api_key);
    path = write_file("group.yaml", 0640, "api_key: " KEY "\n");
    assert_int_equal(config_load_file(&c, path, err, sizeof(err)), ERR_KEY_PERMS);
    assert_err_clean();
    path = write_file("private.yaml", 0400, "api_key: " KEY "\n");
    assert_int_equal(config_load_file(&c, path, err, sizeof(err)), 0);
    assert_non_null(c.api_key);
    config_free(&c);
}

static void test_config_accepts_a_readable_file_without_an_api_key(void **state)
{
    struct runner_config c;
    const char *path = write_file("shared.yaml", 0644, "name: a\napi_key: \"\"\n");

    init(&c);
    assert_int_equal(config_load_file(&c, path, err, sizeof(err)), 0);
    assert_string_equal(c.name, "a");
    assert_null(c.api_key);
    config_free(&c);
}

static void test_config_refuses_a_file_others_can_write(void **state)
{
    struct runner_config c;
    const char *path = write_file("writable.yaml", 0666, "name: a\n");

    init(&c);
    assert_int_equal(config_load_file(&c, path, err, sizeof(err)), ERR_KEY_PERMS);
    assert_err_contains("writable.yaml: the config file is writable by others (mode 0666)");
    assert_string_not_equal(c.name, "a");
    config_free(&c);
}

static void test_config_bad_api_key_errors_never_show_the_key(void **state)
{
    struct runner_config c;
    char *env[] = {"FLASHDUTY_RUNNER_API_KEY=" KEY "\r\nX-Evil: 1", NULL};
    char long_key[SECRET_KEY_MAX + 64], text[SECRET_KEY_MAX + 128];

    init(&c);
    assert_int_equal(load(&c, "api_key: \"" KEY "\\r\\nX: y\"\n"), ERR_KEY_CONTROL);
    assert_string_equal(err_rel(),
                        "config.yaml:1: api_key: key contains a control byte (CR, LF, NUL, "
                        "...)");
    assert_int_equal(load(&c, "api_key: [\"" KEY "\"]\n"), ERR_INVALID);
    assert_string_equal(err_rel(), "config.yaml:1: api_key: expected a single value, found a list");
    assert_int_equal(config_apply_env(&c, env, err, sizeof(err)), ERR_KEY_CONTROL);
    assert_string_equal(err, "FLASHDUTY_RUNNER_API_KEY: api_key: key contains a control byte "
                             "(CR, LF, NUL, ...)");
    memset(long_key, 'K', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    memcpy(long_key, KEY, strlen(KEY));
    snprintf(text, sizeof(text), "api_key: %s\n", long_key);
    assert_int_equal(load(&c, text), ERR_KEY_TOO_LONG);
    assert_err_contains("config.yaml:1: api_key: ");
    assert_err_clean();
    assert_null(c.api_key);
    config_free(&c);
}

static void test_config_set_refuses_the_api_key_on_the_command_line(void **state)
{
    struct runner_config c;

    init(&c);
    assert_int_equal(config_set(&c, "api_key", KEY, "--set", err, sizeof(err)), ERR_INVALID);
    assert_err_contains("--set: api_key: cannot be given on the command line");
    assert_err_clean();
    assert_null(c.api_key);
    config_free(&c);
}

static void test_config_an_empty_api_key_in_the_file_leaves_it_unset(void **state)
{
    struct runner_config c;
    char *env[] = {"FLASHDUTY_RUNNER_API_KEY=" KEY, NULL};

    init(&c);
    assert_int_equal(load(&c, "api_key:\n"), 0);
    assert_null(c.api_key);
    assert_int_equal(config_apply_env(&c, env, err, sizeof(err)), 0);
    assert_non_null(c.api_key);
    config_free(&c);
}

/* ---- config_set ---- */

static void test_config_set_rejects_unknown_keys_and_sections(void **state)
{
    struct runner_config c;

    init(&c);
    assert_int_equal(config_set(&c, "broker.cacrt", "/x", "--set", err, sizeof(err)), ERR_INVALID);
    assert_string_equal(err, "--set: broker.cacrt: unknown key");
    assert_int_equal(config_set(&c, "broker", "x", NULL, err, sizeof(err)), ERR_INVALID);
    assert_string_equal(err, "config_set: broker: is a section, not a value: set one of its keys");
    assert_int_equal(config_set(&c, "api_url", "ws://a\nb", "--api-url", err, sizeof(err)),
                     ERR_INVALID);
    assert_string_equal(err, "--api-url: api_url: 'ws://a?b' contains a control byte");
    config_free(&c);
}

static void test_config_set_with_an_empty_value_resets_strings_to_null(void **state)
{
    struct runner_config c;

    init(&c);
    assert_int_equal(config_set(&c, "broker.cacert", "/ca", "--set", err, sizeof(err)), 0);
    assert_string_equal(c.broker.cacert, "/ca");
    assert_int_equal(config_set(&c, "broker.cacert", "", "--set", err, sizeof(err)), 0);
    assert_null(c.broker.cacert);
    assert_int_equal(config_set(&c, "labels", "a=1", "--set", err, sizeof(err)), 0);
    assert_int_equal(c.nlabels, 1);
    assert_int_equal(config_set(&c, "labels", "", "--set", err, sizeof(err)), 0);
    assert_int_equal(c.nlabels, 0);
    assert_int_equal(config_set(&c, "tasks.result_queue", "", "--set", err, sizeof(err)),
                     ERR_INVALID);
    config_free(&c);
}

/* ---- validation ---- */

static void test_config_validate_checks_the_api_url(void **state)
{
    static const char *const good[] = {"wss://api.flashcat.cloud/runner/ws", "ws://127.0.0.1:8080",
                                       "ws://[::1]:9000/ws", "wss://host"};
    static const char *const bad[] = {"https://api.flashcat.cloud/runner/ws",
                                      "wss://",
                                      "wss:///path",
                                      "ws://user:pw@host/",
                                      "wss://host/ws?x=1",
                                      "wss://host/#frag",
                                      "ws://host:0/",
                                      "ws://host:99999/",
                                      "ws://host:/",
                                      "ws://[::1/",
                                      "ws://ho st/",
                                      "wss://h%41/"};
    struct runner_config c;
    char *env[] = {"FLASHDUTY_RUNNER_API_KEY=" KEY, NULL};

    init(&c);
    assert_int_equal(config_apply_env(&c, env, err, sizeof(err)), 0);
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(config_set(&c, "api_url", good[i], "--api-url", err, sizeof(err)), 0);
        assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(config_set(&c, "api_url", bad[i], "--api-url", err, sizeof(err)), 0);
        assert_int_equal(config_validate(&c, err, sizeof(err)), ERR_BAD_URL);
        assert_err_contains("config: api_url: '");
    }
    assert_int_equal(config_set(&c, "api_url", "http://x", "--api-url", err, sizeof(err)), 0);
    assert_int_equal(config_validate(&c, err, sizeof(err)), ERR_BAD_URL);
    assert_string_equal(err, "config: api_url: 'http://x' must start with ws:// or wss://");
    assert_int_equal(config_set(&c, "api_url", "", "--api-url", err, sizeof(err)), 0);
    assert_int_equal(config_validate(&c, err, sizeof(err)), ERR_BAD_URL);
    assert_string_equal(err, "config: api_url: is empty");
    config_free(&c);
}

static void test_config_validate_rechecks_limits_set_directly(void **state)
{
    struct runner_config c;
    char *env[] = {"FLASHDUTY_RUNNER_API_KEY=" KEY, NULL};

    init(&c);
    assert_int_equal(config_apply_env(&c, env, err, sizeof(err)), 0);
    assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
    c.broker.max_conns = 0;
    assert_int_equal(config_validate(&c, err, sizeof(err)), ERR_INVALID);
    assert_string_equal(err, "config: broker.max_conns: 0 is not from 1 to 100000");
    c.broker.max_conns = 64;
    c.tasks.default_timeout_ms = 0;
    assert_int_equal(config_validate(&c, err, sizeof(err)), ERR_INVALID);
    assert_err_contains("config: tasks.default_timeout: 0 is not");
    c.tasks.default_timeout_ms = 1000;
    assert_int_equal(config_set(&c, "name", "", "--name", err, sizeof(err)), 0);
    assert_int_equal(config_validate(&c, err, sizeof(err)), ERR_INVALID);
    assert_string_equal(err, "config: name: is empty");
    config_free(&c);
}

/* sync_skill's four limits (RUNNER-OPS.md 11): defaults, and each from the file, the
 * environment and --set, in range only. */
static void test_config_sync_skill_limits_have_defaults_and_every_source(void **state)
{
    struct runner_config c;
    char *env[] = {"FLASHDUTY_RUNNER_OPS_SYNC_SKILL_MAX_TOTAL_BYTES=2048",
                   "FLASHDUTY_RUNNER_OPS_SYNC_SKILL_MAX_RATIO=50", NULL};

    init(&c);
    assert_int_equal(c.ops.skill_max_file_bytes, 104857600);
    assert_int_equal(c.ops.skill_max_total_bytes, 536870912);
    assert_int_equal(c.ops.skill_max_entries, 20000);
    assert_int_equal(c.ops.skill_max_ratio, 1000);
    assert_int_equal(load(&c, "ops:\n  sync_skill:\n    max_file_bytes: 1024\n"
                              "    max_entries: 7\n"), 0);
    assert_int_equal(config_apply_env(&c, env, err, sizeof(err)), 0);
    assert_int_equal(config_set(&c, "ops.sync_skill.max_entries", "9", "--set", err,
                                sizeof(err)), 0);
    assert_int_equal(c.ops.skill_max_file_bytes, 1024);
    assert_int_equal(c.ops.skill_max_total_bytes, 2048);
    assert_int_equal(c.ops.skill_max_entries, 9);
    assert_int_equal(c.ops.skill_max_ratio, 50);
    assert_int_equal(config_set(&c, "ops.sync_skill.max_ratio", "0", "--set", err, sizeof(err)),
                     ERR_INVALID);
    config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_init_sets_the_documented_defaults),
        cmocka_unit_test(test_config_defaults_fail_validation_only_for_the_missing_api_key),
        cmocka_unit_test(test_config_free_accepts_null_and_leaves_the_struct_zeroed),
        cmocka_unit_test(test_config_loads_every_key_from_a_full_file),
        cmocka_unit_test(test_config_records_the_absolute_path_of_the_file_read),
        cmocka_unit_test(test_config_empty_file_or_only_comments_changes_nothing),
        cmocka_unit_test(test_config_empty_sections_and_null_strings_are_accepted),
        cmocka_unit_test(test_config_ignores_keys_only_the_go_runner_uses),
        cmocka_unit_test(test_config_accepts_the_go_runner_log_format_text),
        cmocka_unit_test(test_config_reads_labels_from_a_yaml_mapping),
        cmocka_unit_test(test_config_reads_broker_routes),
        cmocka_unit_test(test_config_reads_labels_in_the_go_runner_list_form),
        cmocka_unit_test(test_config_reads_labels_from_the_environment),
        cmocka_unit_test(test_config_rejects_a_label_given_twice),
        cmocka_unit_test(test_config_rejects_labels_given_as_a_single_value),
        cmocka_unit_test(test_config_env_overrides_the_file_and_set_overrides_env),
        cmocka_unit_test(test_config_env_ignores_empty_variables_and_other_prefixes),
        cmocka_unit_test(test_config_api_key_from_the_environment_goes_into_the_secret_arena),
        cmocka_unit_test(test_config_every_key_has_its_environment_variable),
        cmocka_unit_test(test_config_env_rejects_an_unknown_variable),
        cmocka_unit_test(test_config_env_bad_value_names_the_variable_and_the_key),
        cmocka_unit_test(test_config_env_reads_the_newer_runners_token_url_and_workspace),
        cmocka_unit_test(test_config_env_newer_names_override_the_file),
        cmocka_unit_test(test_config_env_newer_name_wins_over_the_config_era_one_with_a_note),
        cmocka_unit_test(test_config_env_same_value_under_both_names_is_not_noted),
        cmocka_unit_test(test_config_env_empty_newer_variables_are_ignored),
        cmocka_unit_test(test_config_env_bad_token_names_the_variable_never_the_value),
        cmocka_unit_test(test_config_note_keeps_each_text_once_and_at_most_the_maximum),
        cmocka_unit_test(test_config_parses_durations_in_every_unit),
        cmocka_unit_test(test_config_rejects_bad_durations),
        cmocka_unit_test(test_config_rejects_bad_numbers_with_file_line_and_key),
        cmocka_unit_test(test_config_reads_env_deny_from_yaml_and_from_the_environment),
        cmocka_unit_test(test_config_rejects_bad_list_items),
        cmocka_unit_test(test_config_permission_bash_scalar_is_one_rule_for_everything),
        cmocka_unit_test(test_config_permission_bash_map_becomes_the_rules),
        cmocka_unit_test(test_config_permission_file_wins_and_none_allows_all_with_a_note),
        cmocka_unit_test(test_config_rejects_an_unknown_key_with_its_file_and_line),
        cmocka_unit_test(test_config_error_names_the_file_as_given),
        cmocka_unit_test(test_config_rejects_a_list_where_a_string_is_expected),
        cmocka_unit_test(test_config_reports_a_yaml_syntax_error_with_its_line),
        cmocka_unit_test(test_config_rejects_keys_given_twice),
        cmocka_unit_test(test_config_refuses_aliases_and_second_documents),
        cmocka_unit_test(test_config_reports_a_file_it_cannot_read),
        cmocka_unit_test(test_config_refuses_a_file_over_the_size_limit),
        cmocka_unit_test(test_config_rejects_bad_enums_and_inject_specs),
        cmocka_unit_test(test_config_refuses_an_api_key_in_a_file_others_can_read),
        cmocka_unit_test(test_config_accepts_a_readable_file_without_an_api_key),
        cmocka_unit_test(test_config_refuses_a_file_others_can_write),
        cmocka_unit_test(test_config_bad_api_key_errors_never_show_the_key),
        cmocka_unit_test(test_config_set_refuses_the_api_key_on_the_command_line),
        cmocka_unit_test(test_config_an_empty_api_key_in_the_file_leaves_it_unset),
        cmocka_unit_test(test_config_set_rejects_unknown_keys_and_sections),
        cmocka_unit_test(test_config_set_with_an_empty_value_resets_strings_to_null),
        cmocka_unit_test(test_config_validate_checks_the_api_url),
        cmocka_unit_test(test_config_validate_rechecks_limits_set_directly),
        cmocka_unit_test(test_config_sync_skill_limits_have_defaults_and_every_source),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
