/*
 * task.h - one `bash` task of the runner: a command in the workspace, under its
 * own broker invocation when it carries a credential, its output captured
 * (capped) and optionally streamed, a timeout, cancellation.
 *
 * Not for: talking to the platform (runner.c) or decoding messages (proto.c).
 */
#ifndef CREDBROKER_TASK_H
#define CREDBROKER_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "broker.h"

struct wspath_root;
struct isolate_secrets;
struct isolate_plan;

struct task;
struct secret;

/* How a task with a credential reaches its API. */
enum task_egress {
    TASK_EGRESS_BROKER, /* its own broker invocation; the key stays in the runner */
    TASK_EGRESS_LEGACY, /* FLASHDUTY_APP_KEY in the environment: only where no broker exists */
};

struct task_spec {
    const char *task_id;
    const char *trace_id;       /* may be NULL */
    const char *command;        /* run with /bin/bash -c */
    const char *workdir;        /* beneath the workspace (RUNNER-OPS.md 3); NULL = the root */
    const struct wspath_root *workspace; /* its root, opened at start (wspath.h) */
    uint64_t timeout_ms;
    size_t output_cap; /* bytes kept per stream */
    bool stream;       /* report output chunks while running */
    char *const *env;  /* base environment: already stripped of the runner's secrets */
    /* bash's env arg, set last (RUNNER-OPS.md 6): names already checked */
    char *const *extra_env_names, *const *extra_env_values;
    size_t nextra_env;
    /* Credential: key ownership passes to the task (also on failure); NULL = none. */
    struct secret *key;
    const char *base_url;
    enum task_egress egress;
    struct broker *broker;                                   /* for TASK_EGRESS_BROKER */
    const struct broker_invocation_options *broker_template; /* inject, limits, scrub, routes */
    /* The template's routes' placeholder variables and URLs (broker_template->nroutes). */
    const char *const *route_envs, *const *route_urls;
    /* Isolation (DESIGN.md 4b): NULL, off; else the command runs in its own namespaces with
     * these secrets covered (opened at the runner's start, isolate.h). */
    const struct isolate_secrets *isolate;
};

struct task_outcome {
    bool success;  /* the command ran to its end (any exit code) */
    int exit_code; /* 124 on timeout, -1 if it never ran */
    bool timed_out;
    const char *error;        /* "" or why it failed */
    const uint8_t *out, *err; /* captured output, valid during on_done */
    size_t out_len, err_len;
    bool out_truncated, err_truncated;
};

struct task_events {
    /* An output chunk while running (only with spec->stream). stream is "stdout" or "stderr". */
    void (*on_output)(struct task *t, const char *stream, const uint8_t *data, size_t len,
                      void *data_ptr);
    /* Called once when the task is over (ran, failed to start, timed out or was cancelled).
     * The caller frees the task with task_free() afterwards (may do so from here). */
    void (*on_done)(struct task *t, const struct task_outcome *o, void *data_ptr);
};

/*
 * Starts a task. Returns 0 and *out; on_done always follows, also when the command
 * could not be started (the failure is then reported through on_done from the next
 * loop turn, so the caller's bookkeeping is the same on every path). Returns a
 * negative code only when not even that is possible (out of memory).
 */
int task_start(uv_loop_t *loop, const struct task_spec *spec, const struct task_events *ev,
               void *data, struct task **out);
/* Kills the command's process group (SIGTERM, then SIGKILL) and ends its broker
 * invocation; on_done follows with error "cancelled". Idempotent. */
void task_cancel(struct task *t);
const char *task_id(const struct task *t);
/* Frees a task whose on_done has run. Accepts NULL. */
void task_free(struct task *t);

/*
 * Resolves workdir as every workspace path is (RUNNER-OPS.md 3: re-rooted when absolute,
 * resolved beneath ws's descriptor): writes the directory's real path into out. Returns 0,
 * or -1 with Go's text in err ("path is outside workspace root: ...", "chdir ...: no such
 * file or directory", ...).
 */
int task_resolve_workdir(const struct wspath_root *ws, const char *workdir, char *out,
                         size_t outlen, char *err, size_t errlen);

/*
 * The isolation plan (DESIGN.md 4b) of a command the runner starts in workdir (a bash
 * task's; an MCP stdio server's): every secret still the object opened at the runner's
 * start (else the command is refused, never run uncovered), and workdir not under a
 * covered directory. Returns 0, or a negative code with the reason in err ("secret path
 * changed: PATH", "workdir is under a secret path: PATH", "cannot prepare isolation: ...");
 * a moved secret is also logged as an error, with the log fields kv (log_kv). Free plan
 * with isolate_plan_free() either way.
 */
int task_plan_isolation(const struct isolate_secrets *secrets, const char *workdir,
                        const char *const *kv, struct isolate_plan *plan, char *err,
                        size_t errlen);

#endif
