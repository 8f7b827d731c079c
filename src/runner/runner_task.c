/*
 * runner_task.c - the tasks the runner runs for the platform (runner_internal.h): a
 * task.request checked and started as bash (task.h) or a file operation (fileop.h), an
 * mcp.call, their results sent back, task.cancel, and the bookkeeping that bounds how
 * many run at once.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <jansson.h>
#include <uv.h>

#include "config.h"
#include "err.h"
#include "log.h"
#include "permission.h"
#include "runner_internal.h"

#define IDLE_TRIM_MS 1000 /* idle this long after the last task: free heap goes back */
#define OUTPUT_PENDING_MAX (4 * 1024 * 1024) /* streamed output is dropped above this backlog */

const char *const *runner__task_fields(const struct running_task *rt)
{
    static _Thread_local const char *kv[5];

    kv[0] = rt->call_id != NULL ? "call_id" : "task_id";
    kv[1] = rt->call_id != NULL ? rt->call_id : rt->task_id;
    kv[2] = "trace_id";
    kv[3] = rt->trace_id;
    kv[4] = NULL;
    return kv;
}
void runner__reply_failure(struct runner *r, const struct proto_in *m, const char *error)
{
    struct proto_task_result res = {
        .task_id = m->task_id,
        .source_instance_id = m->source_instance_id != NULL ? m->source_instance_id : "",
        .success = false,
        .result = NULL,
        .error = error,
        .exit_code = -1,
    };

    log_kv(LOG_LEVEL_WARN,
           (const char *const[]){"task_id", m->task_id, "trace_id", m->trace_id, NULL},
           "task refused: %s", error);
    runner__send_result(r, proto_encode_task_result(&res));
}
static void running_task_free(struct running_task *rt)
{
    free(rt->call_id);
    free(rt->task_id);
    free(rt->trace_id);
    free(rt->source_instance_id);
    free(rt);
}

/*
 * Idle again: the heap's free pages go back to the system. glibc returns only what is
 * free at the top of the heap by itself; a burst of tasks leaves free memory under the
 * runner's long-lived blocks (pooled connections, the WebSocket's buffers), and the idle
 * runner kept megabytes it no longer used (scripts/soak: +2 to +9 MiB of RSS, varying from
 * run to run with where the last blocks landed). malloc_trim walks the arenas once (8 ms
 * for a test program's 50 MB heap with every other block free; the runner's is a few MiB),
 * and only when no task, and so no brokered call, is running.
 */
static void on_idle_trim(uv_timer_t *t)
{
    struct runner *r = t->data;

    if (r->ntasks == 0)
        (void)malloc_trim(0);
}

/* A task's end, whatever it ran: its bookkeeping goes (the result went out). */
static void runner__task_over(struct runner *r, struct running_task *rt)
{
    LIST_REMOVE(rt, link);
    r->ntasks--;
    running_task_free(rt);
    if (r->shutting_down && r->ntasks == 0)
        runner__stop(r);
    else if (r->ntasks == 0)
        uv_timer_start(&r->idle_trim, on_idle_trim, IDLE_TRIM_MS, 0);
}

static void on_task_output(struct task *t, const char *stream, const uint8_t *data, size_t len,
                           void *ptr)
{
    struct running_task *rt = ptr;
    struct runner *r = rt->runner;
    char *text;

    if (!r->connected || ws_pending(r->ws) > OUTPUT_PENDING_MAX)
        return; /* best effort: the result carries the whole (capped) output anyway */
    if ((text = proto_encode_task_output(rt->task_id, stream, data, len)) == NULL)
        return;
    if (ws_send_text(r->ws, text, strlen(text)) != 0)
        log_kv(LOG_LEVEL_DEBUG, runner__task_fields(rt), "an output chunk was not sent");
    free(text);
}

/* The end of a bash task, its stdout through section 4 (spill NULL: it was not spilled). */
static void runner__bash_over(struct running_task *rt, const struct outspill_result *spill)
{
    struct runner *r = rt->runner;
    const struct task_outcome *o = &rt->outcome;
    json_t *result = NULL;
    struct proto_task_result res;
    struct proto_bash_output b = {
        .out = o->out, .out_len = o->out_len, .out_capped = o->out_truncated,
        .err = o->err, .err_len = o->err_len, .err_capped = o->err_truncated,
        .exit_code = o->exit_code, .total_size = (int64_t)o->out_len,
        .max_bytes = r->fileop_limits.max_result_bytes,
    };

    if (spill != NULL) {
        b.out = (const uint8_t *)spill->content;
        b.out_len = spill->content_len;
        b.truncated = spill->truncated;
        b.file_path = spill->file_path;
        b.total_size = spill->total_size;
    }
    if (o->exit_code >= 0)
        result = proto_bash_result(&b);
    memset(&res, 0, sizeof(res));
    res.task_id = rt->task_id;
    res.source_instance_id = rt->source_instance_id != NULL ? rt->source_instance_id : "";
    res.success = o->success;
    res.result = result;
    res.error = o->error;
    /* The envelope's exit_code is the task's: 0 when it ran (the command's own is in the
     * result), the command's when it timed out (124), else Go's 1. */
    res.exit_code = o->success ? 0 : o->exit_code > 0 ? o->exit_code : 1;
    log_kv(o->success ? LOG_LEVEL_INFO : LOG_LEVEL_WARN, runner__task_fields(rt),
           "task finished: exit %d%s%s", o->exit_code, o->error[0] ? ": " : "", o->error);
    runner__send_result(r, proto_encode_task_result(&res));
    json_decref(result);

    task_free(rt->task);
    runner__task_over(r, rt);
}

static void on_bash_spilled(struct outspill_result *spill, int status, void *data)
{
    struct running_task *rt = data;

    if (status != 0) {
        /* No memory for the section 4 text: the capture goes as it is, cut to fit. */
        log_kv(LOG_LEVEL_WARN, runner__task_fields(rt), "large output not processed: %s",
               err_str(status));
        runner__bash_over(rt, NULL);
        return;
    }
    runner__bash_over(rt, spill);
}

static void on_task_done(struct task *t, const struct task_outcome *o, void *ptr)
{
    struct running_task *rt = ptr;
    struct runner *r = rt->runner;

    rt->outcome = *o; /* its buffers are the task's, kept until task_free */
    /* Large stdout goes to a spill file, written on the pool (the loop never waits on a
     * disk); a command that reads a spill file back gets its output whole (Go's rule). */
    if (o->exit_code >= 0 && !rt->spill_skip && o->out_len > OUTSPILL_MAX_INLINE &&
        outspill_queue(r->loop, &r->spill, "bash", o->out, o->out_len, on_bash_spilled, rt) == 0)
        return;
    runner__bash_over(rt, NULL);
}

static const struct task_events task_events = {
    .on_output = on_task_output,
    .on_done = on_task_done,
};

static void on_fileop_done(struct fileop *op, bool success, const json_t *result,
                           const char *error, void *ptr)
{
    struct running_task *rt = ptr;
    struct runner *r = rt->runner;
    struct proto_task_result res = {
        .task_id = rt->task_id,
        .source_instance_id = rt->source_instance_id != NULL ? rt->source_instance_id : "",
        .success = success,
        .result = success ? result : NULL,
        .error = success ? "" : error,
        .exit_code = success ? 0 : 1, /* RUNNER-OPS.md 2.5: 1 with an error */
    };

    log_kv(success ? LOG_LEVEL_INFO : LOG_LEVEL_WARN, runner__task_fields(rt), "%s finished%s%s",
           rt->call_id != NULL ? "mcp.call" : "task", success ? "" : ": ",
           success ? "" : error);
    if (rt->call_id != NULL)
        runner__send_result(r, proto_encode_mcp_result(rt->call_id, success,
                                                       success ? result : NULL, error));
    else
        runner__send_result(r, proto_encode_task_result(&res));
    fileop_free(op);
    runner__task_over(r, rt);
}

void runner__cancel_task(struct running_task *rt)
{
    if (rt->task != NULL)
        task_cancel(rt->task);
    else
        fileop_cancel(rt->op);
}

struct running_task *runner__find_task(struct runner *r, const char *task_id)
{
    struct running_task *rt;

    LIST_FOREACH(rt, &r->tasks, link) {
        if (rt->task_id != NULL && strcmp(rt->task_id, task_id) == 0)
            return rt;
    }
    return NULL;
}

/* A new running_task for m, not yet on the list; NULL (and m answered) on failure. */
static struct running_task *runner__new_task(struct runner *r, struct proto_in *m)
{
    struct running_task *rt;

    if ((rt = calloc(1, sizeof(*rt))) == NULL || (rt->task_id = strdup(m->task_id)) == NULL ||
        (m->trace_id != NULL && (rt->trace_id = strdup(m->trace_id)) == NULL) ||
        (m->source_instance_id != NULL &&
         (rt->source_instance_id = strdup(m->source_instance_id)) == NULL)) {
        if (rt != NULL)
            running_task_free(rt);
        runner__reply_failure(r, m, "out of memory");
        return NULL;
    }
    rt->runner = r;
    return rt;
}

static void runner__start_bash(struct runner *r, struct proto_in *m)
{
    const struct runner_config *cfg = r->cfg;
    struct bash_args args;
    struct task_spec spec;
    struct running_task *rt;
    char err[256];

    if (proto_bash_args(m->args, cfg->tasks.default_timeout_ms, &args, err, sizeof(err)) != 0) {
        bash_args_free(&args); /* what was read before the error (proto.h) */
        runner__reply_failure(r, m, err);
        return;
    }
    /* The permission rules (RUNNER-OPS.md 7), before anything is started: a refused
     * command is an error result and nothing is forked. */
    if (cfg->permission != NULL &&
        permission_check(cfg->permission, args.command, err, sizeof(err)) != 0) {
        bash_args_free(&args);
        runner__reply_failure(r, m, err);
        return;
    }
    /* Under the broker the task may not redirect or bypass it with its own variables. */
    for (size_t i = 0; r->broker != NULL && m->credential_key != NULL && i < args.nenv; i++) {
        if (proto_bash_env_name_reserved(args.env_names[i])) {
            snprintf(err, sizeof(err), "invalid bash args: env: %.64s may not be set when the "
                     "credential broker is used", args.env_names[i]);
            bash_args_free(&args);
            runner__reply_failure(r, m, err);
            return;
        }
    }
    if ((rt = runner__new_task(r, m)) == NULL) {
        bash_args_free(&args);
        return;
    }
    rt->spill_skip = outspill_bash_skip(args.command);
    memset(&spec, 0, sizeof(spec));
    spec.task_id = m->task_id;
    spec.trace_id = m->trace_id;
    spec.command = args.command;
    spec.workdir = args.workdir;
    spec.workspace = &r->workspace;
    spec.timeout_ms = args.timeout_ms;
    spec.output_cap = cfg->tasks.output_cap;
    spec.stream = args.stream;
    spec.env = env_array(r->child_env);
    spec.extra_env_names = args.env_names;
    spec.extra_env_values = args.env_values;
    spec.nextra_env = args.nenv;
    spec.key = m->credential_key;
    m->credential_key = NULL; /* transferred */
    spec.base_url = m->credential_base_url;
    spec.egress = r->broker != NULL ? TASK_EGRESS_BROKER : TASK_EGRESS_LEGACY;
    spec.broker = r->broker;
    spec.broker_template = &r->broker_template;
    spec.route_envs = r->routes != NULL ? r->routes->envs : NULL;
    spec.route_urls = r->routes != NULL ? r->routes->urls : NULL;
    spec.isolate = r->isolate ? &r->secrets : NULL;
    if (task_start(r->loop, &spec, &task_events, rt, &rt->task) != 0) {
        running_task_free(rt);
        bash_args_free(&args);
        runner__reply_failure(r, m, "out of memory");
        return;
    }
    bash_args_free(&args);
    LIST_INSERT_HEAD(&r->tasks, rt, link);
    r->ntasks++;
}

static void runner__start_fileop(struct runner *r, struct proto_in *m)
{
    struct running_task *rt;

    if ((rt = runner__new_task(r, m)) == NULL)
        return;
    if (fileop_start(r->loop, m->operation, m->args, &r->workspace, &r->fileop_limits,
                     on_fileop_done, rt, &rt->op) != 0) {
        running_task_free(rt);
        runner__reply_failure(r, m, "out of memory");
        return;
    }
    log_kv(LOG_LEVEL_INFO, runner__task_fields(rt), "task started (%s)", m->operation);
    LIST_INSERT_HEAD(&r->tasks, rt, link);
    r->ntasks++;
}

/* The platform's ten operations (RUNNER-OPS.md 1); the ones not built yet are refused as
 * not supported, anything else is unknown (Go's text). */
static bool runner__known_operation(const char *op)
{
    static const char *const ops[] = {"read", "write", "list", "glob", "grep", "bash",
                                      "webfetch", "mcp_call", "mcp_list_tools", "sync_skill"};

    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (strcmp(op, ops[i]) == 0)
            return true;
    }
    return false;
}

void runner__on_task_request(struct runner *r, struct proto_in *m)
{
    char err[160];

    if (r->shutting_down) {
        runner__reply_failure(r, m, "runner is shutting down");
    } else if (m->operation == NULL || !runner__known_operation(m->operation)) {
        snprintf(err, sizeof(err), "unknown operation: %.64s",
                 m->operation != NULL ? m->operation : "");
        runner__reply_failure(r, m, err);
    } else if (strcmp(m->operation, "bash") != 0 && !fileop_supports(m->operation)) {
        snprintf(err, sizeof(err), "operation not supported: %.64s", m->operation);
        runner__reply_failure(r, m, err);
    } else if (strcmp(m->operation, "bash") != 0) {
        if (runner__find_task(r, m->task_id) != NULL)
            runner__reply_failure(r, m, "a task with this task_id is already running");
        else if (r->ntasks >= r->cfg->tasks.max_concurrent)
            runner__reply_failure(r, m, "too many tasks running on this runner");
        else
            runner__start_fileop(r, m);
    } else if (runner__find_task(r, m->task_id) != NULL) {
        runner__reply_failure(r, m, "a task with this task_id is already running");
    } else if (r->ntasks >= r->cfg->tasks.max_concurrent) {
        runner__reply_failure(r, m, "too many tasks running on this runner");
    } else {
        runner__start_bash(r, m);
    }
}

/* mcp.call (RUNNER-OPS.md 9.7): mcp_call's logic without a task; answered with mcp.result,
 * counted with the tasks (it holds a connection and a timer), and not cancellable. */
void runner__reply_mcp_failure(struct runner *r, const char *call_id, const char *error)
{
    log_kv(LOG_LEVEL_WARN, (const char *const[]){"call_id", call_id, NULL},
           "mcp.call refused: %s", error);
    runner__send_result(r, proto_encode_mcp_result(call_id, false, NULL, error));
}

void runner__on_mcp_call(struct runner *r, struct proto_in *m)
{
    struct running_task *rt;

    if (r->shutting_down) {
        runner__reply_mcp_failure(r, m->call_id, "runner is shutting down");
        return;
    }
    if (r->ntasks >= r->cfg->tasks.max_concurrent) {
        runner__reply_mcp_failure(r, m->call_id, "too many tasks running on this runner");
        return;
    }
    if ((rt = calloc(1, sizeof(*rt))) != NULL)
        rt->runner = r;
    if (rt == NULL || (rt->call_id = strdup(m->call_id)) == NULL ||
        fileop_start(r->loop, "mcp.call", m->args, &r->workspace, &r->fileop_limits,
                     on_fileop_done, rt, &rt->op) != 0) {
        if (rt != NULL)
            running_task_free(rt);
        runner__reply_mcp_failure(r, m->call_id, "out of memory");
        return;
    }
    log_kv(LOG_LEVEL_INFO, runner__task_fields(rt), "mcp.call started");
    LIST_INSERT_HEAD(&r->tasks, rt, link);
    r->ntasks++;
}
