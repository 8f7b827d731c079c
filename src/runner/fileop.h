/*
 * fileop.h - a task's file operation (RUNNER-OPS.md section 5), run off the event loop.
 *
 * The runner's one loop is also every running task's broker: work that can take long
 * (a big read, a walk of a tree) runs on libuv's thread pool, and the loop only starts
 * it and turns its outcome into the task's result. The work polls a cancel flag
 * between chunks; a cancelled operation ends with Go's "context canceled".
 *
 * The operations: read, write, list, glob and grep (sections 5.1-5.5), sync_skill
 * (section 10): their paths go through wspath.h; and webfetch (section 8), whose request
 * runs on the loop first.
 */
#ifndef CREDBROKER_FILEOP_H
#define CREDBROKER_FILEOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "skill.h"

struct wspath_root;
struct outspill;
struct netguard;
struct webproxy;
struct mcp_pool;
struct fileop;

struct fileop_limits {
    uint64_t read_max_bytes;   /* ops.read.max_bytes: bytes one read returns (8 MiB) */
    size_t list_max_entries;   /* ops.list.max_entries: entries one list returns (50,000) */
    size_t glob_max_matches;   /* ops.glob.max_matches: matches one glob returns (50,000) */
    size_t grep_max_matches;   /* ops.grep.max_matches: matches one grep returns (10,000) */
    struct skill_limits skill; /* ops.sync_skill.*: what one skill archive may hold */
    size_t max_result_bytes;   /* what a result object may take in its message (2.7) */
    struct outspill *spill;    /* where large content goes (section 4) */
    /* webfetch (section 8): the address guard, the proxies, a CA bundle or NULL */
    const struct netguard *webfetch_guard;
    const struct webproxy *webfetch_proxy;
    const char *webfetch_cacert;
    struct mcp_pool *mcp;      /* mcp_call, mcp_list_tools (section 9): the connections */
};

/* Whether operation is one of the file operations implemented here; "mcp.call" names the
 * mcp.call message's call (args: its payload), which is not a task's operation. */
bool fileop_supports(const char *operation);

/*
 * Called once, on the loop, when the operation is over: success with its result object
 * (borrowed: valid during the call), or failure with Go's error text. The caller frees
 * the operation with fileop_free afterwards (it may do so from here).
 */
typedef void (*fileop_done_cb)(struct fileop *op, bool success, const json_t *result,
                               const char *error, void *data);

/*
 * Starts operation (fileop_supports) with its args (NULL: the message had none). The
 * args are read at once (opargs.h); a bad one, like every other failure, comes to done
 * from the next loop turn, never from here. ws and limits must outlive the operation.
 * Returns 0 and *out, or ERR_NOMEM / ERR_INVALID (not an operation of ours; then nothing
 * was started).
 */
int fileop_start(uv_loop_t *loop, const char *operation, const json_t *args,
                 const struct wspath_root *ws, const struct fileop_limits *limits,
                 fileop_done_cb done, void *data, struct fileop **out);
/* Stops the operation as soon as it can; done follows with "context canceled" unless it
 * had finished already. Idempotent. */
void fileop_cancel(struct fileop *op);
/* Frees an operation whose done has run. Accepts NULL. */
void fileop_free(struct fileop *op);

#endif
