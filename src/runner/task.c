/*
 * task.c - one bash task. See task.h.
 *
 * Life of a task: set up (workdir, broker invocation, environment, pipes),
 * spawn `/bin/bash -c COMMAND` in its own process group, collect stdout and
 * stderr until the command exits, end the broker invocation (authority ends
 * with the command), give the pipes a moment to drain (a background process may
 * hold them), then report once through on_done.
 *
 * Ownership: the task owns its child, its invocation, its pipe and timer
 * handles and its capture buffers. It is freed when the owner called
 * task_free() and every handle's close callback has run.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker.h"
#include "buf.h"
#include "child.h"
#include "env.h"
#include "err.h"
#include "isolate.h"
#include "log.h"
#include "secret.h"
#include "task.h"
#include "wspath.h"

#define TASK_DRAIN_MS 1000  /* after the command exits, how long its pipes may stay open */
#define TASK_KILL_GRACE_MS 5000
#define TASK_TIMEOUT_TEXT "command timed out\n"
#define TASK_ERROR_MAX 256

struct capture {
    uv_pipe_t pipe;
    struct task *task;
    const char *name;   /* "stdout" / "stderr" */
    struct buf *data;
    size_t cap;         /* bytes kept; data has room for a little more (the timeout note) */
    bool truncated;
    bool open;
};

struct task {
    uv_loop_t *loop;
    char *id, *trace_id;
    const struct task_events *ev;
    void *data;
    struct child *child;
    struct broker_invocation *inv;
    struct capture out, err;
    uv_timer_t timer;         /* failure reporting, then the drain deadline */
    int handles_open;
    bool stream;
    bool exited, timed_out, cancelled, done, released;
    int exit_code;
    char error[TASK_ERROR_MAX];
};

static void task__finish(struct task *t);

const char *task_id(const struct task *t)
{
    return t->id;
}

int task_resolve_workdir(const struct wspath_root *ws, const char *workdir, char *out,
                         size_t outlen, char *err, size_t errlen)
{
    const char *p = workdir != NULL ? workdir : "";
    char *rel = NULL, name[PATH_MAX];
    struct stat st;
    int fd = -1, r;

    /* RUNNER-OPS.md 3: Go's Join (absolute paths re-rooted), then resolved beneath the
     * root's descriptor, never by comparing strings. */
    if ((r = wspath_clean(p, &rel)) == 0 && (fd = r = wspath_open(ws, rel, false)) >= 0 &&
        (r = fstat(fd, &st) == 0 ? 0 : -errno) == 0 && !S_ISDIR(st.st_mode))
        r = -ENOTDIR;
    if (r == 0 && (r = wspath_relative(ws, fd, name, sizeof(name))) == 0 &&
        (size_t)snprintf(out, outlen, "%s%s%s", ws->real, name[0] != '\0' ? "/" : "", name) >=
            outlen)
        r = -ENAMETOOLONG;
    if (fd >= 0)
        close(fd);
    if (r == ERR_WS_OUTSIDE)
        snprintf(err, errlen, "path is outside workspace root: %s", p);
    else if (r == ERR_WS_ESCAPE)
        snprintf(err, errlen, "path escapes workspace root via symlink: %s", p);
    else if (r == ERR_WS_LOOP)
        snprintf(err, errlen, "failed to resolve symlinks: EvalSymlinks: too many links");
    else if (r != 0)
        /* What Go's exec reports when the directory is not there (its <abs>). */
        snprintf(err, errlen, "chdir %s%s%s: %s", ws->abs, rel != NULL && rel[0] ? "/" : "",
                 rel != NULL ? rel : p, r == -ENOTDIR ? "not a directory"
                 : r == -ENOENT ? "no such file or directory" : "cannot be resolved");
    free(rel);
    return r == 0 ? 0 : -1;
}

/* ---- handles and freeing ---- */

static void task__maybe_free(struct task *t)
{
    if (!t->released || t->handles_open > 0)
        return;
    buf_free(t->out.data);
    buf_free(t->err.data);
    free(t->id);
    free(t->trace_id);
    free(t);
}

static void task_handle_close_cb(uv_handle_t *h)
{
    struct task *t = h->data;

    t->handles_open--;
    task__maybe_free(t);
}

static void task__close_handle(struct task *t, uv_handle_t *h)
{
    if (!uv_is_closing(h)) {
        h->data = t;
        uv_close(h, task_handle_close_cb);
    }
}

void task_free(struct task *t)
{
    if (t == NULL)
        return;
    t->released = true;
    task__maybe_free(t);
}

/* ---- output ---- */

static void capture_close(struct capture *c)
{
    if (!c->open)
        return;
    c->open = false;
    uv_read_stop((uv_stream_t *)&c->pipe);
    task__close_handle(c->task, (uv_handle_t *)&c->pipe);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    static char readbuf[64 * 1024];

    b->base = readbuf;
    b->len = sizeof(readbuf);
}

static void on_output(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct capture *c = s->data;
    struct task *t = c->task;

    if (n < 0) {
        capture_close(c);
        if (t->exited && !t->out.open && !t->err.open)
            task__finish(t);
        return;
    }
    if (n == 0)
        return;
    if (!c->truncated) {
        size_t room = c->cap - buf_len(c->data);
        size_t take = (size_t)n < room ? (size_t)n : room;

        if (buf_put(c->data, b->base, take) != 0 || take < (size_t)n)
            c->truncated = true; /* the cap: keep draining, keep nothing more */
    }
    if (t->stream && t->ev->on_output != NULL && !t->done)
        t->ev->on_output(t, c->name, (const uint8_t *)b->base, (size_t)n, t->data);
}

/* ---- the end ---- */

static void task__finish(struct task *t)
{
    struct task_outcome o;

    if (t->done)
        return;
    t->done = true;
    capture_close(&t->out);
    capture_close(&t->err);
    uv_timer_stop(&t->timer);
    task__close_handle(t, (uv_handle_t *)&t->timer);
    broker_invocation_end(t->inv);
    t->inv = NULL;
    if (t->timed_out) {
        t->exit_code = 124;
        snprintf(t->error, sizeof(t->error), "command timed out");
        if (!t->err.truncated && buf_put_str(t->err.data, TASK_TIMEOUT_TEXT) != 0)
            t->err.truncated = true;
    } else if (t->cancelled && t->error[0] == '\0') {
        snprintf(t->error, sizeof(t->error), "cancelled");
    }
    memset(&o, 0, sizeof(o));
    o.exit_code = t->exit_code;
    o.timed_out = t->timed_out;
    /* A command that ran to its end succeeded as a task, whatever its exit code, which the
     * result carries (RUNNER-OPS.md 2.5, as Go). */
    o.success = t->exited && !t->timed_out && !t->cancelled && t->error[0] == '\0';
    o.error = t->error;
    o.out = buf_ptr(t->out.data);
    o.out_len = buf_len(t->out.data);
    o.out_truncated = t->out.truncated;
    o.err = buf_ptr(t->err.data);
    o.err_len = buf_len(t->err.data);
    o.err_truncated = t->err.truncated;
    /* The callee may free t: nothing touches it after this. */
    t->ev->on_done(t, &o, t->data);
}

static void on_drain_deadline(uv_timer_t *timer)
{
    /* A background process still holds the pipes: stop waiting for it. */
    task__finish(timer->data);
}

static void on_child_exit(struct child *c, int status, int exec_err, bool timed_out, void *data)
{
    struct task *t = data;

    if (exec_err != 0) {
        /* As a failure before the fork is reported (task__fail_later). */
        snprintf(t->error, sizeof(t->error), "cannot %s the command: %s",
                 child_failed_at(c) == CHILD_STAGE_ISOLATION ? "isolate" : "start",
                 err_str(exec_err));
        status = -1;
    }
    t->exited = true;
    t->exit_code = status;
    t->timed_out = timed_out;
    child_free(c);
    t->child = NULL;
    /* Authority ends with the command: a leftover holder of fd 3 gets nothing. */
    broker_invocation_end(t->inv);
    t->inv = NULL;
    if (!t->out.open && !t->err.open) {
        task__finish(t);
        return;
    }
    t->timer.data = t;
    uv_timer_start(&t->timer, on_drain_deadline, TASK_DRAIN_MS, 0);
}

static void on_start_failed(uv_timer_t *timer)
{
    task__finish(timer->data);
}

/* Reports a failure to start from the next loop turn (see task_start). */
static void __attribute__((format(printf, 2, 3)))
task__fail_later(struct task *t, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(t->error, sizeof(t->error), fmt, ap);
    va_end(ap);
    t->exit_code = -1;
    t->timer.data = t;
    uv_timer_start(&t->timer, on_start_failed, 0, 0);
}

void task_cancel(struct task *t)
{
    if (t->done || t->cancelled)
        return;
    t->cancelled = true;
    broker_invocation_end(t->inv);
    t->inv = NULL;
    if (t->child != NULL)
        child_terminate(t->child);
}

/* ---- the start ---- */

static int capture_open(struct task *t, struct capture *c, const char *name, size_t cap, int fd)
{
    int r;

    c->task = t;
    c->name = name;
    c->cap = cap;
    if ((r = uv_pipe_init(t->loop, &c->pipe, 0)) != 0)
        return r;
    c->pipe.data = c;
    t->handles_open++;
    c->open = true;
    if ((r = uv_pipe_open(&c->pipe, fd)) != 0) {
        close(fd);
        capture_close(c);
        return r;
    }
    if ((r = uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_output)) != 0) {
        capture_close(c);
        return r;
    }
    return 0;
}

int task_plan_isolation(const struct isolate_secrets *secrets, const char *workdir,
                        const char *const *kv, struct isolate_plan *plan, char *err,
                        size_t errlen)
{
    const char *where = NULL;
    int r;

    if ((r = isolate_plan_init(plan, secrets, &where)) == 0 &&
        (r = isolate_plan_check_workdir(plan, workdir, &where)) == 0)
        return 0;
    if (r == ERR_SECRET_MOVED) {
        log_kv(LOG_LEVEL_ERROR, kv,
               "secret path changed: %.200s (moved, deleted or replaced since the runner "
               "started): tasks are refused until it is back or the runner restarts", where);
        snprintf(err, errlen, "secret path changed: %.200s", where);
    } else if (r == ERR_UNDER_SECRET) {
        snprintf(err, errlen, "workdir is under a secret path: %.200s", where);
    } else {
        snprintf(err, errlen, "cannot prepare isolation: %s", err_str(r));
    }
    return r;
}

/* A task's isolation plan (task_plan_isolation). Returns 0, or fails the task and returns
 * its code. */
static int task__plan_isolation(struct task *t, const struct isolate_secrets *secrets,
                                const char *workdir, struct isolate_plan *plan)
{
    char err[TASK_ERROR_MAX];
    int r;

    if ((r = task_plan_isolation(secrets, workdir, (const char *const[]){"task_id", t->id, NULL},
                                 plan, err, sizeof(err))) != 0)
        task__fail_later(t, "%s", err);
    return r;
}

int task_start(uv_loop_t *loop, const struct task_spec *spec, const struct task_events *ev,
               void *data, struct task **out)
{
    struct task *t;
    struct env *env = NULL;
    struct secret *key = spec->key;
    char workdir[PATH_MAX], why[PATH_MAX + 128], fdtext[8] = "3";
    int outp[2] = {-1, -1}, errp[2] = {-1, -1}, devnull = -1, child_fd = -1, r;
    /* "--": a command starting with - or + is the command, never bash options (the rules
     * check exactly the bytes bash runs). */
    char *argv[] = {"/bin/bash", "-c", "--", (char *)spec->command, NULL};
    struct child_options co;
    struct isolate_plan plan = {.sync_to_parent = {-1, -1}, .sync_to_child = {-1, -1}};

    *out = NULL;
    if ((t = calloc(1, sizeof(*t))) == NULL) {
        secret_free(key);
        return ERR_NOMEM;
    }
    t->loop = loop;
    t->ev = ev;
    t->data = data;
    t->stream = spec->stream;
    t->exit_code = -1;
    t->id = strdup(spec->task_id);
    t->trace_id = spec->trace_id != NULL ? strdup(spec->trace_id) : NULL;
    t->out.data = buf_new(spec->output_cap, 0);
    t->err.data = buf_new(spec->output_cap + sizeof(TASK_TIMEOUT_TEXT), 0);
    if (t->id == NULL || t->out.data == NULL || t->err.data == NULL ||
        uv_timer_init(loop, &t->timer) != 0) {
        buf_free(t->out.data);
        buf_free(t->err.data);
        free(t->id);
        free(t->trace_id);
        free(t);
        secret_free(key);
        return ERR_NOMEM;
    }
    t->timer.data = t;
    t->handles_open = 1;
    *out = t;

    if (task_resolve_workdir(spec->workspace, spec->workdir, workdir, sizeof(workdir), why,
                             sizeof(why)) != 0) {
        task__fail_later(t, "%s", why);
        goto out;
    }
    if ((env = env_new(spec->env)) == NULL) {
        task__fail_later(t, "%s", "out of memory");
        goto out;
    }
    /* The task's key, or a route's, under any other name the runner inherited: never the
     * command's. */
    if (key != NULL)
        env_deny_secret(env, key, "the task's key");
    for (size_t i = 0; spec->broker_template != NULL && i < spec->broker_template->nroutes; i++)
        env_deny_secret(env, spec->broker_template->routes[i].key, "a route's key");
    /* The broker serves the task's own credential, if any, and the host's routes. */
    if ((key != NULL || (spec->broker_template != NULL && spec->broker_template->nroutes > 0)) &&
        spec->egress == TASK_EGRESS_BROKER) {
        struct broker_invocation_options io = *spec->broker_template;
        bool key_given = key != NULL;

        if (key != NULL &&
            upstream_base_parse(spec->base_url != NULL ? spec->base_url : "", &io.upstream) != 0) {
            task__fail_later(t, "%s", "credential.base_url is not an http(s) URL");
            goto out;
        }
        io.label = t->id;
        io.policy = NULL;
        r = broker_invocation_new(spec->broker, &io, key, &child_fd, &t->inv);
        key = NULL; /* transferred, also on failure */
        if (r != 0) {
            /* Fail closed: never the key in the environment instead. */
            task__fail_later(t, "cannot set up the broker: %s", err_str(r));
            goto out;
        }
        r = env_set(env, "FLASHDUTY_CRED_FD", fdtext);
        if (r == 0 && key_given)
            r = env_set(env, "FLASHDUTY_BASE_URL", "http://flashduty.broker.local");
        for (size_t i = 0; r == 0 && i < io.nroutes; i++)
            r = env_set(env, spec->route_envs[i], spec->route_urls[i]);
        if (r != 0) {
            task__fail_later(t, "%s", "out of memory");
            goto out;
        }
    } else if (key != NULL) {
        /* The legacy path, chosen by capability only (no broker on this platform). */
        if (env_set_secret(env, "FLASHDUTY_APP_KEY", key) != 0 ||
            env_set(env, "FLASHDUTY_BASE_URL", spec->base_url != NULL ? spec->base_url : "") != 0) {
            task__fail_later(t, "%s", "out of memory");
            goto out;
        }
    }
    /* The task's own variables, last, so they win (on the legacy path over the key's too;
     * under the broker the caller has refused the broker's and the loader's names). */
    for (size_t i = 0; i < spec->nextra_env; i++) {
        if (env_set(env, spec->extra_env_names[i], spec->extra_env_values[i]) != 0) {
            task__fail_later(t, "%s", "out of memory");
            goto out;
        }
    }
    if (pipe2(outp, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0 ||
        (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        task__fail_later(t, "cannot create pipes: %s", strerror(errno));
        goto out;
    }
    if (spec->isolate != NULL && (r = task__plan_isolation(t, spec->isolate, workdir, &plan)) != 0)
        goto out;
    memset(&co, 0, sizeof(co));
    co.isolate = spec->isolate != NULL ? &plan : NULL;
    co.argv = argv;
    co.envp = env_array(env);
    co.cwd = workdir;
    co.ctl_fd = child_fd;
    co.stdio[0] = devnull;
    co.stdio[1] = outp[1];
    co.stdio[2] = errp[1];
    co.timeout_ms = spec->timeout_ms;
    co.kill_grace_ms = TASK_KILL_GRACE_MS;
    co.on_exit = on_child_exit;
    co.data = t;
    if ((r = child_spawn(loop, &co, &t->child)) != 0) {
        task__fail_later(t, "cannot start the command: %s", err_str(r));
        goto out;
    }
    close(outp[1]);
    close(errp[1]);
    outp[1] = errp[1] = -1;
    r = capture_open(t, &t->out, "stdout", spec->output_cap, outp[0]);
    outp[0] = -1; /* transferred (closed on failure) */
    if (r == 0) {
        r = capture_open(t, &t->err, "stderr", spec->output_cap, errp[0]);
        errp[0] = -1;
    }
    if (r != 0) {
        /* The command runs but its output cannot be read: stop it. */
        snprintf(t->error, sizeof(t->error), "cannot read the command's output");
        task_cancel(t);
    }
    log_kv(LOG_LEVEL_INFO, (const char *const[]){"task_id", t->id, "trace_id", t->trace_id, NULL},
           "task started (%s)", t->inv != NULL    ? "brokered"
                                : spec->key != NULL ? "legacy path"
                                                    : "no credential");
out:
    for (int i = 0; i < 2; i++) {
        if (outp[i] >= 0)
            close(outp[i]);
        if (errp[i] >= 0)
            close(errp[i]);
    }
    if (devnull >= 0)
        close(devnull);
    if (child_fd >= 0)
        close(child_fd); /* the command has it at fd 3; the broker keeps its own end */
    env_free(env);
    secret_free(key);
    isolate_plan_free(&plan);
    return 0;
}
