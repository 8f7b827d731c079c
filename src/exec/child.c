/*
 * child.c - see child.h.
 *
 * Between fork and exec the child only makes async-signal-safe calls: the
 * parent may have other threads (libcurl's resolver). Everything it needs
 * (argv, envp, the resolved path) is built before the fork. An exec failure
 * travels back through a close-on-exec pipe, as libuv's uv_spawn does, but the
 * pipe is read when the child is reaped, not by waiting on it in child_spawn:
 * the child's isolation set-up and its exec (which tears down our copied
 * address space first) take milliseconds, and the runner's loop, broker
 * included, would stand still for each command started. For the same reason a
 * root broker maps an isolated child's ids (isolate.h) when the loop sees the
 * child's "namespaces made", not by waiting for it here.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "child.h"
#include "err.h"
#include "isolate.h"
#include "log.h"

struct child {
    uv_loop_t *loop;
    pid_t pid;
    LIST_ENTRY(child) link; /* on children until reaped */
    uv_timer_t timer;   /* timeout, then kill grace */
    int errpipe;        /* read end: a failed start's stage and errno, until reaped; or -1 */
    enum child_stage failed_at; /* read from errpipe when the start failed */
    uv_poll_t idmap;    /* root isolation: the child's "namespaces made", to map its ids */
    int idmap_from, idmap_to; /* that handshake's pipe ends (isolate.h) while idmap is open,
                               * the handshake not run yet; else -1 */
    bool timer_open;
    int open_handles;   /* of timer and idmap: c is freed once child_free ran and both closed */
    bool freed;         /* child_free ran */
    bool timed_out;
    bool killing;
    bool exited;
    bool foreground;
    uint64_t kill_grace_ms;
    void (*on_exit)(struct child *c, int status, int exec_err, bool timed_out, void *data);
    void *data;
};

static LIST_HEAD(, child) children; /* all live children, for the SIGCHLD handler */
static uv_signal_t sigchld;
static bool sigchld_started;

static void on_sigchld(uv_signal_t *h, int signum);
static void give_terminal(pid_t pgrp);

static int sigchld_ensure(uv_loop_t *loop)
{
    int r;

    if (sigchld_started)
        return 0;
    if ((r = uv_signal_init(loop, &sigchld)) != 0)
        return r;
    if ((r = uv_signal_start(&sigchld, on_sigchld, SIGCHLD)) != 0) {
        uv_close((uv_handle_t *)&sigchld, NULL);
        return r;
    }
    sigchld_started = true;
    return 0;
}

static void sigchld_release_if_idle(void)
{
    if (sigchld_started && LIST_EMPTY(&children)) {
        uv_signal_stop(&sigchld);
        uv_close((uv_handle_t *)&sigchld, NULL);
        sigchld_started = false;
    }
}

/* Done before the fork: nothing in the child may allocate. */
char *child_resolve_command(const char *name, char *const *envp)
{
    const char *path = "/usr/local/bin:/usr/bin:/bin";
    char buf[PATH_MAX];

    if (strchr(name, '/') != NULL)
        return strdup(name);
    for (char *const *e = envp; *e != NULL; e++) {
        if (strncmp(*e, "PATH=", 5) == 0) {
            path = *e + 5;
            break;
        }
    }
    while (*path != '\0') {
        const char *end = strchr(path, ':');
        size_t dlen = end ? (size_t)(end - path) : strlen(path);
        int n = snprintf(buf, sizeof(buf), "%.*s%s%s", (int)dlen, path, dlen ? "/" : "", name);

        if (n > 0 && (size_t)n < sizeof(buf) && access(buf, X_OK) == 0)
            return strdup(buf);
        path += dlen;
        if (*path == ':')
            path++;
    }
    return NULL;
}

/* What a child that cannot start writes to the error pipe (one write, under PIPE_BUF). */
struct child_start_failure {
    int stage; /* enum child_stage */
    int err;   /* errno */
};

/* In the forked child: never returns. */
static void __attribute__((noreturn)) child__exec(const struct child_options *o, const char *file,
                                                  char **trampoline, int errpipe, int tty)
{
    struct child_start_failure failure = {CHILD_STAGE_ISOLATION, 0};
    sigset_t all;
    int err;

    /* Own process group; then, for interactive use, take the terminal (done by both
     * parent and child so neither can race the other, as job-control shells do). */
    setpgid(0, 0);
    if (o->foreground && tty >= 0) {
        signal(SIGTTOU, SIG_IGN);
        tcsetpgrp(tty, getpid());
    }
    /* Default dispositions and an empty mask for the command (libuv does the same). */
    for (int s = 1; s < NSIG; s++) {
        if (s != SIGKILL && s != SIGSTOP)
            signal(s, SIG_DFL);
    }
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    /* Namespaces and covers before anything else of the command's is set up (as root; an
     * unprivileged broker goes through the trampoline, see isolate.h). */
    if (o->isolate != NULL && trampoline == NULL && (err = isolate_child_enter(o->isolate)) != 0) {
        errno = -err;
        goto fail;
    }
    failure.stage = CHILD_STAGE_SETUP;
    /* Keep the error pipe clear of the fds we are about to place. */
    if (errpipe <= 3 && (errpipe = fcntl(errpipe, F_DUPFD_CLOEXEC, 4)) < 0)
        _exit(127);
    for (int i = 0; i < 3; i++) {
        if (o->stdio[i] >= 0 && dup2(o->stdio[i], i) < 0)
            goto fail;
    }
    if (o->ctl_fd >= 0) {
        if (o->ctl_fd == 3) {
            /* dup2 onto itself keeps FD_CLOEXEC: clear it explicitly. */
            if (fcntl(3, F_SETFD, 0) < 0)
                goto fail;
        } else if (dup2(o->ctl_fd, 3) < 0) {
            goto fail;
        }
    }
    /* Only 0-3 reach the command, whatever the broker inherited from its own parent. */
    if (syscall(SYS_close_range, o->ctl_fd >= 0 ? 4u : 3u, ~0u, 4u /* CLOSE_RANGE_CLOEXEC */) !=
        0) {
        for (int fd = o->ctl_fd >= 0 ? 4 : 3; fd < 1024; fd++) {
            if (fd != errpipe)
                close(fd);
        }
    }
    /* errpipe is close-on-exec either way: it closes on a successful exec. */
    fcntl(errpipe, F_SETFD, FD_CLOEXEC);
    if (o->cwd != NULL && chdir(o->cwd) != 0)
        goto fail;
    failure.stage = CHILD_STAGE_EXEC;
    if (trampoline != NULL)
        execve("/proc/self/exe", trampoline, o->envp);
    else
        execve(file, o->argv, o->envp);
fail:
    failure.err = errno;
    (void)!write(errpipe, &failure, sizeof(failure));
    _exit(127);
}

static void child_handle_close_cb(uv_handle_t *h)
{
    struct child *c = h->data;

    if (--c->open_handles == 0 && c->freed)
        free(c);
}

/*
 * Ends the id-map handshake: done, or the child is gone (its pid may be reused once it is
 * reaped, so nothing may be written to its /proc files after that).
 *
 * The watch goes before the fds: uv_close takes the pipe out of the epoll set, which only
 * works while its number still names it. Closed first, the pipe stayed registered (the
 * child, not yet exec'd, still holds it), and its hang-up, reported under the old number,
 * reached whatever the broker opened next with that number: a command's connection read
 * a false end of stream and was closed after its response (scripts/soak, 3 in 200,000).
 */
static void child__idmap_end(struct child *c)
{
    if (c->idmap_from < 0)
        return;
    uv_close((uv_handle_t *)&c->idmap, child_handle_close_cb);
    close(c->idmap_from);
    close(c->idmap_to);
    c->idmap_from = c->idmap_to = -1;
}

/* Maps the child's ids. On failure the child reports EPERM through errpipe and exits
 * (-ECHILD: it already failed, and said why). */
static void child__map_ids(pid_t pid, int from, int to)
{
    int r = isolate_parent_map(from, to, pid);

    if (r != 0 && r != -ECHILD)
        log_warn_r(r, "isolation: cannot map the command's ids");
}

static void on_idmap(uv_poll_t *h, int status, int events)
{
    struct child *c = h->data;

    child__map_ids(c->pid, c->idmap_from, c->idmap_to);
    child__idmap_end(c);
}

void child_free(struct child *c)
{
    if (c == NULL)
        return;
    if (c->errpipe >= 0) {
        close(c->errpipe);
        c->errpipe = -1;
    }
    child__idmap_end(c);
    c->freed = true;
    if (c->timer_open) {
        c->timer_open = false;
        uv_timer_stop(&c->timer);
        uv_close((uv_handle_t *)&c->timer, child_handle_close_cb);
    }
    if (c->open_handles == 0)
        free(c);
}

static void on_kill_timer(uv_timer_t *t)
{
    struct child *c = t->data;

    if (c->exited)
        return;
    if (!c->killing) {
        child_terminate(c);
        return;
    }
    kill(-c->pid, SIGKILL);
}

static void on_timeout(uv_timer_t *t)
{
    struct child *c = t->data;

    if (c->exited)
        return;
    c->timed_out = true;
    child_terminate(c);
}

/* Right after the fork: a root broker maps an isolated child's ids when the child says its
 * namespaces exist (on_idmap); only if libuv cannot watch the pipe, by waiting here. */
static void child__idmap_start(struct child *c, struct isolate_plan *plan)
{
    int from, to, r;

    isolate_parent_after_fork(plan, &from, &to);
    if (from < 0)
        return; /* the child maps its own ids */
    if (uv_poll_init(c->loop, &c->idmap, from) != 0) {
        /* uv_poll_init may have made the fd non-blocking before it failed. */
        fcntl(from, F_SETFL, fcntl(from, F_GETFL) & ~O_NONBLOCK);
        child__map_ids(c->pid, from, to);
        close(from);
        close(to);
        return;
    }
    c->idmap.data = c;
    c->open_handles++;
    c->idmap_from = from;
    c->idmap_to = to;
    if ((r = uv_poll_start(&c->idmap, UV_READABLE, on_idmap)) != 0) {
        log_warn_r(r, "isolation: cannot wait for the command's namespaces");
        child__idmap_end(c); /* the child sees the pipe close and fails its exec (EPERM) */
    }
}

int child_spawn(uv_loop_t *loop, const struct child_options *o, struct child **out)
{
    struct child *c = NULL;
    char *file = NULL, **trampoline = NULL;
    int errpipe[2] = {-1, -1}, r, tty = -1;
    pid_t pid;

    *out = NULL;
    if (o->argv == NULL || o->argv[0] == NULL || o->on_exit == NULL)
        return ERR_INVALID;
    if ((file = o->file != NULL ? strdup(o->file) : child_resolve_command(o->argv[0], o->envp)) ==
        NULL)
        return o->file != NULL ? ERR_NOMEM : -ENOENT;
    if ((r = sigchld_ensure(loop)) != 0) {
        free(file);
        return r;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        r = ERR_NOMEM;
        goto out;
    }
    if (o->isolate != NULL && o->isolate->self_map &&
        (trampoline = isolate_trampoline_argv(o->isolate, file, o->argv)) == NULL) {
        r = ERR_NOMEM;
        goto out;
    }
    c->loop = loop;
    c->errpipe = c->idmap_from = c->idmap_to = -1;
    c->on_exit = o->on_exit;
    c->data = o->data;
    c->kill_grace_ms = o->kill_grace_ms ? o->kill_grace_ms : 5000;
    if (o->foreground && isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp()) {
        tty = STDIN_FILENO;
        c->foreground = true;
    }
    /* Non-blocking: read once the child is reaped, when what it wrote is all there is. */
    if (pipe2(errpipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        r = -errno;
        goto out;
    }
    if ((r = uv_timer_init(loop, &c->timer)) != 0)
        goto out;
    c->timer.data = c;
    c->timer_open = true;
    c->open_handles++;
    pid = fork();
    if (pid < 0) {
        r = -errno;
        goto out;
    }
    if (pid == 0)
        child__exec(o, file, trampoline, errpipe[1], tty);
    close(errpipe[1]);
    errpipe[1] = -1;
    c->pid = pid;
    setpgid(pid, pid); /* also here: the group must exist before we signal it */
    if (o->isolate != NULL)
        child__idmap_start(c, o->isolate);
    if (tty >= 0)
        give_terminal(pid);
    c->errpipe = errpipe[0];
    errpipe[0] = -1;
    LIST_INSERT_HEAD(&children, c, link);
    if (o->timeout_ms > 0)
        uv_timer_start(&c->timer, on_timeout, o->timeout_ms, 0);
    *out = c;
    c = NULL;
    r = 0;
out:
    if (errpipe[0] >= 0)
        close(errpipe[0]);
    if (errpipe[1] >= 0)
        close(errpipe[1]);
    free(file);
    free(trampoline);
    child_free(c);
    /* A failure before the fork leaves no child: do not keep the loop alive for SIGCHLD. */
    if (r != 0)
        sigchld_release_if_idle();
    return r;
}

/* After the child is reaped: -errno if it could not start (it wrote where and why, then
 * exited; c->failed_at says where), else 0 (the pipe closed at a successful exec). */
static int child__exec_error(struct child *c)
{
    struct child_start_failure failure;
    ssize_t n;

    do {
        n = read(c->errpipe, &failure, sizeof(failure));
    } while (n < 0 && errno == EINTR);
    close(c->errpipe);
    c->errpipe = -1;
    if (n != (ssize_t)sizeof(failure) || failure.err <= 0)
        return 0;
    c->failed_at = failure.stage >= CHILD_STAGE_ISOLATION && failure.stage <= CHILD_STAGE_EXEC
                       ? (enum child_stage)failure.stage
                       : CHILD_STAGE_EXEC;
    return -failure.err;
}

enum child_stage child_failed_at(const struct child *c)
{
    return c->failed_at;
}

static void child__reaped(struct child *c, int wstatus)
{
    int status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);

    LIST_REMOVE(c, link);
    child__idmap_end(c); /* before its pid can be reused */
    c->exited = true;
    uv_timer_stop(&c->timer);
    if (c->foreground)
        give_terminal(getpgrp()); /* take the terminal back for our own group */
    c->on_exit(c, status, child__exec_error(c), c->timed_out, c->data);
}

/* Gives the terminal to pgrp, with SIGTTOU blocked (we may be in the background). */
static void give_terminal(pid_t pgrp)
{
    sigset_t block, old;

    sigemptyset(&block);
    sigaddset(&block, SIGTTOU);
    sigprocmask(SIG_BLOCK, &block, &old);
    tcsetpgrp(STDIN_FILENO, pgrp);
    sigprocmask(SIG_SETMASK, &old, NULL);
}

/*
 * The foreground command was stopped (Ctrl-Z): stop ourselves too, so the
 * user's shell sees a stopped job, and when the shell resumes us (fg), hand the
 * terminal back and resume the command. This is what sudo and su do.
 */
static void child__stopped(struct child *c, int sig)
{
    give_terminal(getpgrp());
    kill(getpid(), sig == SIGTTIN || sig == SIGTTOU ? SIGSTOP : sig);
    /* ...continued by the shell. */
    give_terminal(c->pid);
    kill(-c->pid, SIGCONT);
}

static void on_sigchld(uv_signal_t *h, int signum)
{
    struct child *c = LIST_FIRST(&children), *next;

    for (; c != NULL; c = next) {
        int wstatus;
        pid_t p;

        next = LIST_NEXT(c, link);
        do {
            p = waitpid(c->pid, &wstatus, WNOHANG | (c->foreground ? WUNTRACED : 0));
        } while (p < 0 && errno == EINTR);
        if (p != c->pid)
            continue;
        if (WIFSTOPPED(wstatus))
            child__stopped(c, WSTOPSIG(wstatus));
        else
            child__reaped(c, wstatus);
    }
    sigchld_release_if_idle();
}

int child_signal(struct child *c, int sig)
{
    if (c->exited)
        return 0;
    if (kill(-c->pid, sig) != 0 && kill(c->pid, sig) != 0)
        return -errno;
    return 0;
}

void child_terminate(struct child *c)
{
    if (c->exited)
        return;
    c->killing = true;
    child_signal(c, SIGTERM);
    child_signal(c, SIGCONT); /* a stopped group cannot act on SIGTERM */
    uv_timer_start(&c->timer, on_kill_timer, c->kill_grace_ms, 0);
}

pid_t child_pid(const struct child *c)
{
    return c->pid;
}
