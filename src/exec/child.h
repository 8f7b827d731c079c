/*
 * child.h - starting a command: fd 3, a clean environment, its own process
 * group, optionally the terminal's foreground; reaping it; timeout and kill.
 *
 * We fork and exec ourselves instead of using uv_spawn because an interactive
 * command needs its own process group *and* the controlling terminal (job
 * control), which uv_spawn cannot give: its only option is a new session.
 * Reaping is done here too (a uv_signal_t for SIGCHLD, waitpid per child).
 */
#ifndef CREDBROKER_CHILD_H
#define CREDBROKER_CHILD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

struct child;
struct isolate_plan;

struct child_options {
    char *const *argv;        /* argv[0] is looked up in PATH of envp, unless file is set */
    const char *file;         /* NULL, or the program to run (child_resolve_command) */
    char *const *envp;        /* the complete environment */
    const char *cwd;          /* NULL: inherit */
    int ctl_fd;               /* placed at fd 3; -1 for none */
    int stdio[3];             /* fds for 0-2; -1 = inherit the parent's */
    bool foreground;          /* give the child's group the terminal (interactive use) */
    struct isolate_plan *isolate; /* NULL: no isolation; else namespaces and covers (isolate.h) */
    uint64_t timeout_ms;      /* 0 = none; then SIGTERM to the group, SIGKILL after grace */
    uint64_t kill_grace_ms;   /* default 5000 */
    /* Called once with the exit status (0-255, or 128+signal), exec_err (0, or the -errno
     * with which the command could not be started, child_failed_at says where: then status
     * is 127) and whether it timed out. */
    void (*on_exit)(struct child *c, int status, int exec_err, bool timed_out, void *data);
    void *data;
};

/* Where a command that never ran failed (child_failed_at). */
enum child_stage {
    CHILD_STAGE_ISOLATION, /* entering its namespaces and covers (isolate.h) */
    CHILD_STAGE_SETUP,     /* placing its fds 0-3, changing to its working directory */
    CHILD_STAGE_EXEC,      /* execve itself */
};

/* Starts the command without waiting for its exec. Returns 0 or a negative code: -ENOENT
 * for a command not found on PATH; an exec that fails later comes to on_exit as exec_err. */
int child_spawn(uv_loop_t *loop, const struct child_options *opts, struct child **out);
/* Where argv[0] name is found on PATH of envp (execvpe's search, a default PATH when envp
 * has none; a name with a '/' is taken as it is). Returns the path (caller frees), or NULL
 * when not found or out of memory. */
char *child_resolve_command(const char *name, char *const *envp);
/* Sends sig to the child's process group. */
int child_signal(struct child *c, int sig);
/* SIGTERM to the group now, SIGKILL after the grace period (cancel, shutdown). */
void child_terminate(struct child *c);
pid_t child_pid(const struct child *c);
/* In on_exit, when exec_err is set: the stage at which the command failed to start. */
enum child_stage child_failed_at(const struct child *c);
/* Frees a child after on_exit ran. Accepts NULL. */
void child_free(struct child *c);

#endif
