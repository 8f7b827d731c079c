/*
 * mcp_pool.h - the runner's MCP connections (RUNNER-OPS.md 9.4): one per server
 * configuration, keyed on a hash of the whole configuration (never on its name alone,
 * so one user's credentials in dynamic_headers never serve another's call), made on the
 * first call and kept for the next ones.
 *
 *  - Concurrent first calls for one key share its one connect; other keys go on.
 *  - A connect has 30 s (its transport start, the initialize handshake).
 *  - A connection whose call failed at the transport or protocol level is closed, not
 *    just forgotten (a stdio server: stdin closed, SIGTERM, SIGKILL, reaped).
 *  - Idle connections close after 10 minutes; at most 32 live, the least recently used
 *    idle one closed to make room, and "too many MCP connections (32 in use)" when none
 *    is idle.
 *  - Transports: stdio, or Streamable HTTP with the legacy HTTP+SSE fallback
 *    (mcp_http.h) for the names sse, http, streamable_http and streamable-http.
 *  - A stdio server runs like a bash task: in the workspace, the scrubbed environment
 *    plus the config's env, the same isolation; its command line must pass the permission
 *    rules when there are any.
 */
#ifndef CREDBROKER_MCP_POOL_H
#define CREDBROKER_MCP_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct env;
struct isolate_secrets;
struct mcp_conn;
struct permission_rules;
struct webproxy;

#define MCP_POOL_MAX_SESSIONS 32
#define MCP_POOL_IDLE_MS (10 * 60 * 1000)
#define MCP_POOL_CONNECT_MS (30 * 1000)

struct mcp_pool_options {
    const struct env *base_env;            /* bash tasks' scrubbed environment */
    const char *workspace;                 /* the root's real path: a stdio server's cwd */
    const struct isolate_secrets *secrets; /* NULL: no isolation */
    const struct permission_rules *rules;  /* NULL: no permission rules */
    const struct webproxy *proxy;          /* HTTP servers: the proxies (webproxy.h) */
    size_t max_sessions;                   /* 0: MCP_POOL_MAX_SESSIONS */
    uint64_t idle_ms, connect_ms;          /* 0: the defaults above */
};

/* A server configuration as the pool needs it (RUNNER-OPS.md 9.1), with its key. */
struct mcp_server_config {
    const char *name, *transport, *command, *url;
    char *const *args;
    size_t nargs;
    char *const *env_names, *const *env_values;
    size_t nenv;
    /* headers, then dynamic_headers overriding them (names case-insensitively) */
    char *const *header_names, *const *header_values;
    size_t nheaders;
    bool tls_skip_verify;
    uint8_t key[32];                       /* the hash of the whole configuration */
};

struct mcp_pool;
struct mcp_session;
struct mcp_wait;

/* Called once with a ready session (error NULL; give it back with mcp_session_release)
 * or an error (the reason, without Go's "failed to connect" prefix). Never from inside
 * mcp_pool_acquire. */
typedef void (*mcp_acquire_cb)(struct mcp_session *s, const char *error, void *ud);

int mcp_pool_new(uv_loop_t *loop, const struct mcp_pool_options *o, struct mcp_pool **out)
    __attribute__((warn_unused_result));
/* Closes every connection; no callback comes after this. Accepts NULL. */
void mcp_pool_close(struct mcp_pool *p);

/* A ready connection for cfg (copied as needed): an idle one of the same key, the one
 * being made for it, or a new one. Returns 0 and *w (for mcp_wait_cancel, valid until cb),
 * or ERR_NOMEM. */
int mcp_pool_acquire(struct mcp_pool *p, const struct mcp_server_config *cfg, mcp_acquire_cb cb,
                     void *ud, struct mcp_wait **w) __attribute__((warn_unused_result));
/* Gives up waiting: cb never comes. The last waiter of a connect in progress abandons it:
 * that connection is closed (a stdio server stopped). */
void mcp_wait_cancel(struct mcp_wait *w);

struct mcp_conn *mcp_session_conn(struct mcp_session *s);
/* Gives the session back: broken (a transport or protocol failure, a timeout, a cancel)
 * closes it; otherwise it stays for the next call of its key. */
void mcp_session_release(struct mcp_session *s, bool broken);

/* Live sessions, for tests and logs. */
size_t mcp_pool_size(const struct mcp_pool *p);

#endif
