/*
 * mcp_stdio.h - the stdio transport of the runner's MCP client (RUNNER-OPS.md 9.3): an
 * MCP server as a child of the runner, started as a bash task is (the workspace as its
 * working directory, the scrubbed environment plus the config's env, the same isolation,
 * its own process group), newline-delimited messages on its stdin and stdout, its stderr
 * kept (the last bytes, bounded) and logged at debug level.
 *
 * Not for: JSON-RPC (a message is an opaque line here), sessions and their keys, the
 * permission rules (checked by the caller before the start).
 *
 * Everything runs on the runner's loop and nothing blocks it: writes are queued (bounded),
 * reads are incremental (bounded), and the close waits for the server on timers. The
 * process must ignore SIGPIPE (libuv writes with write(2); harden.c does it).
 */
#ifndef CREDBROKER_MCP_STDIO_H
#define CREDBROKER_MCP_STDIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

struct env;
struct isolate_secrets;

/* Defaults for options left 0 (RUNNER-OPS.md 9.3, 12; Go's 5 s close). */
#define MCP_STDIO_MAX_MESSAGE_DEFAULT ((size_t)16 << 20)
#define MCP_STDIO_STDERR_KEEP_DEFAULT ((size_t)64 << 10)
#define MCP_STDIO_KILL_GRACE_DEFAULT 5000
/* Bytes queued on the server's stdin and not written yet: past this the server is not
 * reading, and the transport fails (a send never grows the runner's memory without end). */
#define MCP_STDIO_SEND_QUEUE_MAX ((size_t)64 << 20)

struct mcp_stdio;

struct mcp_stdio_options {
    char *const *argv;          /* command + args; argv[0] looked up on base_env's PATH (the
                                 * runner's), not on a PATH the config's env sets (as Go) */
    const struct env *base_env; /* the scrubbed environment bash tasks get (the runner's
                                 * child_env): copied, then... NULL: empty */
    /* ...the config's env added (last wins). A name that is empty or holds '=' is dropped
     * silently (as Go); a C string cannot hold a NUL, so the caller, which decodes the
     * JSON, drops names and values with one. */
    char *const *env_names, *const *env_values;
    size_t nenv;
    const char *cwd;            /* the workspace root; NULL: the runner's */
    const struct isolate_secrets *secrets; /* NULL: no isolation; else the same namespaces
                                            * and covers as bash tasks (DESIGN.md 4b) */
    const char *label;          /* the config's name, for the log only; may be NULL */
    size_t max_message_bytes;   /* a stdout line longer than this breaks the transport
                                 * (0: 16 MiB) */
    size_t stderr_keep_bytes;   /* the last bytes of stderr kept (0: 64 KiB) */
    uint64_t kill_grace_ms;     /* after stdin is closed: SIGTERM to the process group after
                                 * this, then SIGKILL after the same again (0: 5 s) */
};

struct mcp_stdio_events {
    /* One complete line from stdout, without its "\n" (and a "\r" before it); empty lines
     * are skipped. line is valid during the call only. */
    void (*on_message)(struct mcp_stdio *s, const char *line, size_t len, void *data);
    /* The transport is over, once: the server exited, its stdout ended, a line was too
     * long, a write failed, the send queue overflowed, or the caller closed it. reason is a
     * short text ("server exited with status 3", "message too large (over 16777216
     * bytes)", "closed"). No on_message follows. The caller still calls mcp_stdio_close
     * (it may do so from here). */
    void (*on_closed)(struct mcp_stdio *s, const char *reason, void *data);
};

/*
 * Starts the server. Returns 0 and *out, or a negative code and NULL with a one-line
 * reason in err, as Go words it where Go has one: a command not on PATH gives -ENOENT and
 * `exec: "foo": executable file not found in $PATH`; an empty argv `exec: no command`;
 * isolation refusals as bash's ("secret path changed: PATH", ...). A start that fails
 * after the fork (an exec error, a missing cwd) comes to on_closed instead ("fork/exec
 * PATH: permission denied", "chdir DIR: no such file or directory"). ev is copied.
 */
int mcp_stdio_start(uv_loop_t *loop, const struct mcp_stdio_options *o,
                    const struct mcp_stdio_events *ev, void *data, struct mcp_stdio **out,
                    char *err, size_t errlen);
/*
 * Queues msg + "\n" on the server's stdin (msg is copied); never blocks. Returns 0;
 * ERR_INVALID if msg holds a "\n" (it would be two messages); ERR_CLOSED after on_closed;
 * ERR_NOMEM; or, when the queue would pass MCP_STDIO_SEND_QUEUE_MAX or the write fails,
 * a negative code after on_closed ran (the transport has failed).
 */
int mcp_stdio_send(struct mcp_stdio *s, const char *msg, size_t len);
/*
 * The end of the stderr kept, for a failed connect's error: its last whole lines within n
 * bytes (a partial first line is dropped when a whole one follows), without the final
 * newline, NUL bytes shown as '?'. "" when there is none. Owned by s; valid until the
 * next call or the next loop turn.
 */
const char *mcp_stdio_stderr_tail(const struct mcp_stdio *s, size_t n);
/*
 * Closes: on_closed is called now with "closed" if it was not yet; stdin is closed;
 * SIGTERM to the process group after kill_grace_ms if the server still runs, SIGKILL after
 * another kill_grace_ms; the server is reaped, and whatever is left of its group killed;
 * the memory is freed once the pipes and the child are gone. The caller never touches s
 * again. Accepts NULL.
 */
void mcp_stdio_close(struct mcp_stdio *s);
/* The server's pid (also its process group), still answered after it exited. */
pid_t mcp_stdio_pid(const struct mcp_stdio *s);

#endif
