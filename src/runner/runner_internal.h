/*
 * runner_internal.h - what the runner's two halves share: runner.c (the daemon: its
 * link to the platform, the results it sends, shutdown and start) and runner_task.c (the
 * tasks it runs for the platform: bash, the file operations, mcp.call). Nothing outside
 * them includes this.
 */
#ifndef CREDBROKER_RUNNER_INTERNAL_H
#define CREDBROKER_RUNNER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>

#include <jansson.h>
#include <uv.h>

#include "broker.h"
#include "env.h"
#include "fileop.h"
#include "isolate.h"
#include "mcp_pool.h"
#include "netguard.h"
#include "outspill.h"
#include "proto.h"
#include "runner.h"
#include "task.h"
#include "webproxy.h"
#include "ws.h"
#include "wspath.h"

struct queued_result; /* runner.c */

struct running_task {
    LIST_ENTRY(running_task) link; /* on runner->tasks */
    struct runner *runner;
    struct task *task;     /* bash; or */
    struct fileop *op;     /* a file operation */
    char *task_id, *trace_id, *source_instance_id;
    char *call_id;         /* an mcp.call (RUNNER-OPS.md 9.7): task_id is NULL, no cancel */
    bool spill_skip;       /* bash: the command reads a spill file back (section 4) */
    struct task_outcome outcome; /* bash: kept while its stdout is spilled */
};

struct runner {
    uv_loop_t *loop;
    const struct runner_config *cfg;
    bool advertise_broker;
    struct broker *broker;
    struct broker_invocation_options broker_template;
    const struct runner_routes *routes; /* broker.routes, keys loaded; NULL: none */
    struct env *child_env;
    bool isolate; /* commands run in namespaces (DESIGN.md 4b) */
    struct isolate_secrets secrets; /* what they cover, opened at start (isolate.h) */
    struct wspath_root workspace;   /* its root, opened at start (wspath.h) */
    struct fileop_limits fileop_limits;
    struct outspill spill;          /* large output goes to .outputs/ (outspill.h) */
    struct netguard webfetch_guard; /* webfetch's address guard (netguard.h) */
    struct webproxy webfetch_proxy; /* and its proxies, from the environment at start */
    struct mcp_pool *mcp;           /* the MCP connections (mcp_pool.h) */
    json_t *labels, *environment;
    struct ws *ws;
    bool connected;
    unsigned attempt;
    uv_timer_t heartbeat, reconnect, shutdown, idle_trim;
    uv_signal_t sigterm, sigint, sighup;
    char *worknode_id;
    LIST_HEAD(, running_task) tasks;
    unsigned ntasks;
    STAILQ_HEAD(, queued_result) queue; /* results kept for after the reconnect, oldest first */
    size_t nqueued;
    bool shutting_down, stopped;
};

/* runner.c */

/* Sends a result now, or keeps it for after the reconnect. Takes text. */
void runner__send_result(struct runner *r, char *text);
/* Everything is done: close what keeps the loop alive. */
void runner__stop(struct runner *r);

/* runner_task.c */

/* The fields that name a task (or an mcp.call) in the log. */
const char *const *runner__task_fields(const struct running_task *rt);
/* A result for a task that never ran (bad request, refused operation, ...). */
void runner__reply_failure(struct runner *r, const struct proto_in *m, const char *error);
/* The same for an mcp.call, answered with mcp.result. */
void runner__reply_mcp_failure(struct runner *r, const char *call_id, const char *error);
/* task.request: checked, then started or refused (RUNNER-OPS.md 1, 2). */
void runner__on_task_request(struct runner *r, struct proto_in *m);
/* mcp.call (RUNNER-OPS.md 9.7). */
void runner__on_mcp_call(struct runner *r, struct proto_in *m);
struct running_task *runner__find_task(struct runner *r, const char *task_id);
void runner__cancel_task(struct running_task *rt);

#endif
