/*
 * config.h - the runner's configuration: built-in defaults, then a YAML file
 * (--config FILE), then FLASHDUTY_RUNNER_* environment variables, then
 * command-line flags. Each source overrides what the ones before it set, so
 * the caller applies them in that order: config_init, config_load_file,
 * config_apply_env, config_set (once per flag), config_validate.
 *
 * Keys are those of the Go flashduty-runner (api_key, api_url, name, labels,
 * workspace_root, permission.bash, log.*) plus the broker: and tasks:
 * sections. The same dotted key names every setting everywhere: in the file as
 * nested mappings, in the environment as FLASHDUTY_RUNNER_ + the key upper-cased
 * with '.' -> '_' (broker.env_deny is FLASHDUTY_RUNNER_BROKER_ENV_DENY), and in
 * config_set() as written ("broker.cacert").
 *
 * Two generations of the Go runner (RUNNER-OPS.md 11): the config era read the
 * file and the variables above; the newer runner reads only --token, --url,
 * --workspace and --log-level, each with FLASHDUTY_RUNNER_TOKEN, _URL,
 * _WORKSPACE, _LOG_LEVEL. Those newer variables name api_key, api_url and
 * workspace_root (log.level's variable is the same in both); when a newer and
 * a config-era name are both set in one layer the newer one wins, and a
 * warning is noted (config_note) if their values differ.
 *
 * Not for: reading the api key from key files or fds (src/cli/key_source), or
 * wiping FLASHDUTY_RUNNER_API_KEY and FLASHDUTY_RUNNER_TOKEN from the process
 * environment (the caller does that with env_take() from src/exec/env.h after
 * config_apply_env).
 */
#ifndef CREDBROKER_CONFIG_H
#define CREDBROKER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

struct secret;

#define CONFIG_ENV_PREFIX "FLASHDUTY_RUNNER_"
/* The newer Go runner's default; the config era's was wss://api.flashcat.cloud/runner/ws. */
#define CONFIG_DEFAULT_API_URL "wss://api.flashcat.cloud/safari/worknode/ws"
#define CONFIG_FILE_MAX (1024 * 1024) /* bytes in a config file */
#define CONFIG_VALUE_MAX 4096         /* bytes in one string value (PATH_MAX) */
#define CONFIG_LIST_MAX 1024          /* items in labels, env_deny, secret_paths */
#define CONFIG_NOTES_MAX 8            /* warnings kept for the caller (config_note) */

/* broker.isolation (DESIGN.md section 4b). */
enum isolation_mode { ISOLATION_AUTO, ISOLATION_REQUIRED, ISOLATION_OFF };

/*
 * The whole configuration. Every pointer is owned by the struct and freed by
 * config_free(); read the fields directly, but change them only through the
 * functions below (or free the old value yourself first).
 *
 * Optional strings are NULL when unset or set to "": probe NULL = no probe,
 * cacert NULL = the system CAs, audit NULL = no audit log, log_file NULL =
 * stderr, inject NULL = INJECT_DEFAULT (as inject_parse(NULL) reads it).
 * Setting any string key to "" makes it NULL.
 *
 * Labels are pairs; a label given without a value (the Go runner's list form
 * "k8s") has value "". On the wire (a list of strings) a pair is rendered as
 * "key:value", or "key" when the value is empty.
 */
struct permission_rules;
struct route_spec;

struct runner_config {
    struct secret *api_key; /* NULL until set; in the secret arena (secret.h) */
    char *api_url;          /* ws:// or wss:// (checked by config_validate) */
    char *name;             /* default: the hostname */
    char *workspace_root;   /* default: $HOME/.flashduty-runner/workspace */
    char *log_file;         /* NULL: stderr */
    char **label_keys, **label_values;
    size_t nlabels;
    /* The permission rules (RUNNER-OPS.md 7): the rules file, or the config era's
     * permission.bash map (a scalar allow/deny is one "*" rule), read into permission by
     * config_load_permission. NULL permission: every command is allowed. */
    char *permission_config;  /* --permission-config, FLASHDUTY_RUNNER_PERMISSION_CONFIG */
    char **permission_patterns, **permission_actions;
    size_t npermission;
    bool permission_bash_set;
    struct permission_rules *permission;
    enum log_level log_level; /* default info */
    bool log_json;            /* log.format: logfmt (default) | json */
    struct {
        bool enabled;                          /* default true */
        char *probe, *cacert, *inject, *audit; /* inject: default "query:app_key" */
        unsigned max_conns, dial_rate;         /* 64, 100 per second */
        uint64_t dial_wait_ms;                 /* 10 s: a dial over them waits (0: refused) */
        uint64_t max_body;                     /* 64 MiB */
        uint64_t head_timeout_ms, idle_timeout_ms, connect_timeout_ms; /* 10 s, 60 s, 10 s */
        uint64_t response_timeout_ms, stall_timeout_ms;                /* 60 s, 120 s */
        char **env_deny; /* extra fnmatch patterns, beyond env_default_deny */
        size_t nenv_deny;
        char **secret_paths; /* extra absolute paths to hide from commands */
        size_t nsecret_paths;
        /* broker.routes: APIs the host's owner offers every task (issue 21), as written;
         * their keys are read by the caller (cmd_runner). YAML only. */
        struct route_spec *routes; /* ROUTE_MAX - 1 of them, allocated with the first */
        size_t nroutes;
        enum isolation_mode isolation; /* default ISOLATION_AUTO */
    } broker;
    struct {
        unsigned max_concurrent;     /* 64 */
        uint64_t default_timeout_ms; /* 120 s */
        size_t output_cap;           /* bytes per stream, 10 MiB */
        size_t result_queue;         /* results kept while disconnected, 256 */
        uint64_t shutdown_grace_ms;  /* SIGTERM: running tasks' time to end, then cancel (30 s) */
        size_t max_message_bytes;    /* a task.result's ceiling (16 MiB; RUNNER-OPS.md 2.7) */
    } tasks;
    struct {
        size_t read_max_bytes;       /* bytes one read returns (8 MiB; RUNNER-OPS.md 12) */
        size_t list_max_entries;     /* entries one list returns (50,000) */
        size_t glob_max_matches;     /* matches one glob returns (50,000) */
        size_t grep_max_matches;     /* matches one grep returns (10,000) */
        uint64_t skill_max_file_bytes;  /* sync_skill: one file's bytes (100 MiB) */
        uint64_t skill_max_total_bytes; /* sync_skill: all files' bytes (512 MiB) */
        uint64_t skill_max_entries;     /* sync_skill: entries in one archive (20,000) */
        uint64_t skill_max_ratio;       /* sync_skill: extracted per compressed byte (1000) */
        uint64_t spill_max_age_ms;   /* .outputs/ files older are pruned (7 days; RUNNER-OPS.md 4) */
        uint64_t spill_max_total_bytes; /* and the oldest while .outputs/ holds more (1 GiB) */
    } ops;
    struct {
        bool allow_private;   /* the address guard off (RUNNER-OPS.md 8) */
        char **allow_hosts;   /* host names, IPs, CIDR prefixes the guard lets through */
        size_t nallow_hosts;
        char *cacert;         /* a CA bundle for webfetch's https, or NULL: the system's */
    } webfetch;
    char *config_path; /* absolute path of the file read, or NULL (none, or a pipe) */
    /* Warnings met while reading the sources, for the caller to log once logging is set
     * up: static texts that name settings, never a value (config_note). */
    const char *notes[CONFIG_NOTES_MAX];
    size_t nnotes;
};

/*
 * Fills c with the defaults. The hostname comes from gethostname() and the home
 * directory from $HOME (else the passwd entry). Returns 0 or ERR_NOMEM; on
 * failure c is still safe to pass to config_free().
 */
int config_init(struct runner_config *c) __attribute__((warn_unused_result));

/* Frees every member, wiping and freeing api_key, and zeroes c. Accepts NULL. */
void config_free(struct runner_config *c);

/*
 * Every function below returns 0, or a negative code and ONE line in err (always
 * NUL-terminated when errlen > 0) that says where and which key:
 *     "config.yaml:7: log.level: 'loud' is not one of error, warn, info, debug"
 *     "FLASHDUTY_RUNNER_TASKS_MAX_CONCURRENT: tasks.max_concurrent: ..."
 *     "--set: broker.cacert: ..."
 * The api key's value never appears in err. Codes: ERR_INVALID (unknown key,
 * wrong type, bad value, YAML syntax), ERR_KEY_EMPTY/TOO_LONG/CONTROL (a bad
 * api_key), ERR_KEY_PERMS (see config_load_file), ERR_TOO_LARGE, ERR_NOMEM,
 * or -errno (the file cannot be opened or read).
 *
 * On failure c may be partly updated but is always safe for config_free(); the
 * caller is expected to stop. A list or label set from a source replaces the
 * whole list, it is not appended to.
 */

/*
 * Reads the YAML file at path (a regular file or a pipe, at most
 * CONFIG_FILE_MAX bytes, one document whose top level is a mapping; an empty
 * file sets nothing). Unknown keys are an error; auto_update and worknode_id,
 * which the Go runner reads, are accepted and ignored. Anchors are accepted,
 * aliases are not. The Go runner's forms are also read: labels as a list
 * ("k8s", "os:linux" -> key os, value linux), permission.bash as a mapping
 * that has only the "*" rule, log.format "text" (= logfmt).
 *
 * Permissions, like ssh with a private key: a file that is writable by others
 * is refused (whoever can edit it can point api_url elsewhere and collect the
 * token); a file that holds api_key is refused if group or others have any
 * access to it (mode & 077), with ERR_KEY_PERMS.
 *
 * Sets c->config_path. The file's bytes, and libyaml's buffers and scalars,
 * are wiped before they are freed.
 */
int config_load_file(struct runner_config *c, const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Applies every FLASHDUTY_RUNNER_* variable in envp (a NULL-terminated
 * "NAME=value" array such as environ, which is only read), in array order, and
 * then the newer runner's FLASHDUTY_RUNNER_TOKEN, _URL and _WORKSPACE (for
 * api_key, api_url, workspace_root), so that they win over _API_KEY, _API_URL
 * and _WORKSPACE_ROOT; if both names of one setting are set with different
 * values, a warning is noted (config_note; it never holds a value).
 * An empty value is ignored (as both Go runners do). A variable that
 * names no key is an error, except FLASHDUTY_RUNNER_AUTO_UPDATE and
 * FLASHDUTY_RUNNER_WORKNODE_ID. Lists: LABELS "k=v,k2=v2" (a bare "k" has value
 * ""), BROKER_ENV_DENY and BROKER_SECRET_PATHS "A,B_*"; items are trimmed of
 * spaces and empty items skipped. The caller wipes FLASHDUTY_RUNNER_API_KEY and
 * FLASHDUTY_RUNNER_TOKEN from the process environment afterwards (env_take()).
 */
int config_apply_env(struct runner_config *c, char *const *envp, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Sets one key from a string, in the environment's syntax (lists comma-
 * separated, durations "10", "10s", "500ms", "2m", "1h"); "" resets a string
 * key to NULL or empties a list. origin names the flag in err ("--set",
 * "--api-url"; NULL: "config_set"). api_key is refused: a key on the command
 * line is visible to every user in ps. To set it from a key file or fd
 * (key_source.h), secret_free(c->api_key) and assign the new secret (c then
 * owns it).
 */
int config_set(struct runner_config *c, const char *dotted_key, const char *value,
               const char *origin, char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Loads the permission rules (after config_validate): the file named by
 * permission_config, else the permission.bash pairs, else none (a warning note: every
 * command is allowed). Both set: the file, and a note that permission.bash is ignored.
 * Returns 0, or ERR_* with one line in err ("permission config <file>: <reason>", or
 * "permission.bash: <reason>"): the runner refuses to start.
 */
int config_load_permission(struct runner_config *c, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Keeps a warning for the caller to log (c->notes): text must be a static string
 * and must not hold a value. A text already kept is not kept twice; past
 * CONFIG_NOTES_MAX, further texts are dropped. Cannot fail.
 */
void config_note(struct runner_config *c, const char *text);

/*
 * Checks the result as a whole: api_key set; api_url is ws:// or wss://, with a
 * host, an optional port 1-65535 and path, and no userinfo, query or fragment
 * (the runner appends ?token=); name and workspace_root set; every number and
 * duration within its range (the same ranges the setters enforce); secret_paths
 * absolute. Returns 0, or ERR_INVALID / ERR_BAD_URL with err
 * "config: <key>: <problem>".
 */
int config_validate(const struct runner_config *c, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
