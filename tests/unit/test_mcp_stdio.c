/*
 * Unit tests for src/runner/mcp_stdio.c: an MCP stdio server's lines both ways, the
 * limits (line length, send queue, stderr kept), the end of the transport in each of its
 * forms, the close sequence down to SIGKILL of the whole group, the environment, working
 * directory and isolation. Real child processes (/bin/sh scripts, /usr/bin/python3
 * programs) on libuv's default loop. The test process is a child subreaper, so a
 * server's grandchild comes back to it when orphaned and can be checked for how it died.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include "env.h"
#include "err.h"
#include "isolate.h"
#include "log.h"
#include "mcp_stdio.h"

#define PY "/usr/bin/python3"
#define MAX_MSGS 2000

struct srv {
    struct mcp_stdio *s;
    pid_t pid;
    char *msgs[MAX_MSGS];
    size_t nmsgs;
    size_t bytes;               /* of every message */
    bool closed;
    int nclosed;
    char reason[256];
    size_t msgs_at_close;
    char tail[70 * 1024];       /* the stderr tail, as on_closed saw it */
    bool close_on_message;      /* mcp_stdio_close from inside on_message */
};

static void on_message(struct mcp_stdio *s, const char *line, size_t len, void *data)
{
    struct srv *v = data;

    assert_false(v->closed);
    v->bytes += len;
    if (v->nmsgs < MAX_MSGS)
        assert_non_null(v->msgs[v->nmsgs++] = strndup(line, len));
    if (v->close_on_message) {
        mcp_stdio_close(s);
        v->s = NULL;
    }
}

static void on_closed(struct mcp_stdio *s, const char *reason, void *data)
{
    struct srv *v = data;

    v->nclosed++;
    v->closed = true;
    v->msgs_at_close = v->nmsgs;
    snprintf(v->reason, sizeof(v->reason), "%s", reason);
    snprintf(v->tail, sizeof(v->tail), "%s", mcp_stdio_stderr_tail(s, sizeof(v->tail)));
}

static const struct mcp_stdio_events events = {on_message, on_closed};

static struct env *base_env;

static int fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void options_init(struct mcp_stdio_options *o, char *const *argv)
{
    memset(o, 0, sizeof(*o));
    o->argv = argv;
    o->base_env = base_env;
    o->label = "test";
    o->kill_grace_ms = 100;
}

static void start(struct srv *v, const struct mcp_stdio_options *o)
{
    char err[256];

    memset(v, 0, sizeof(*v));
    assert_int_equal(mcp_stdio_start(uv_default_loop(), o, &events, v, &v->s, err, sizeof(err)),
                     0);
    assert_non_null(v->s);
    assert_true((v->pid = mcp_stdio_pid(v->s)) > 0);
}

static void on_deadline(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

/* Runs the loop until *flag or ms pass; returns *flag. */
static bool run_until(const bool *flag, uint64_t ms)
{
    uv_timer_t t;
    bool late = false;

    assert_int_equal(uv_timer_init(uv_default_loop(), &t), 0);
    t.data = &late;
    uv_timer_start(&t, on_deadline, ms, 0);
    while (!*flag && !late)
        uv_run(uv_default_loop(), UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(uv_default_loop(), UV_RUN_NOWAIT);
    return *flag;
}

static bool nmsgs_reached_flag;
static size_t nmsgs_goal;

static void on_poll_msgs(uv_timer_t *t)
{
    struct srv *v = t->data;

    nmsgs_reached_flag = v->nmsgs >= nmsgs_goal || v->closed;
}

/* Runs the loop until n messages came (or the transport closed), at most 10 s. */
static void wait_messages(struct srv *v, size_t n)
{
    uv_timer_t t;

    nmsgs_goal = n;
    nmsgs_reached_flag = v->nmsgs >= n;
    assert_int_equal(uv_timer_init(uv_default_loop(), &t), 0);
    t.data = v;
    uv_timer_start(&t, on_poll_msgs, 1, 1);
    run_until(&nmsgs_reached_flag, 10000);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(uv_default_loop(), UV_RUN_NOWAIT);
    assert_true(v->nmsgs >= n);
}

/* Closes (if not yet) and runs the loop until nothing of the server is left: every handle
 * closed, the child reaped (no handle is left on the loop); then its pid is gone. */
static void close_and_finish(struct srv *v)
{
    pid_t pid = v->pid;

    if (v->s != NULL)
        mcp_stdio_close(v->s);
    v->s = NULL;
    assert_int_equal(v->nclosed, 1);
    uv_run(uv_default_loop(), UV_RUN_DEFAULT);
    assert_int_equal(kill(pid, 0), -1);
    assert_int_equal(errno, ESRCH);
    for (size_t i = 0; i < v->nmsgs; i++)
        free(v->msgs[i]);
    v->nmsgs = 0;
}

/* Waits (polling the loop, no sleep) until pid, orphaned to us, ended; returns its status. */
static int reap_orphan(pid_t pid)
{
    for (int i = 0; i < 10000; i++) {
        int st;
        pid_t p = waitpid(pid, &st, WNOHANG);

        if (p == pid)
            return st;
        assert_int_equal(p, 0);
        uv_run(uv_default_loop(), UV_RUN_NOWAIT);
        usleep(1000);
    }
    kill(pid, SIGKILL); /* ours (a test's server's), not to outlive the failure */
    fail_msg("process %d did not end", (int)pid);
    return -1;
}

/* Starts argv with the default options, and runs the loop until the transport ends by
 * itself. */
static void run_to_end(struct srv *v, char *const *argv)
{
    struct mcp_stdio_options o;

    options_init(&o, argv);
    start(v, &o);
    assert_true(run_until(&v->closed, 10000));
}

/* libuv opens its loop's own fds (epoll, the signal pipe) at first use: one server run to
 * its end first, so the tests' fd counts see only ours. */
static int warm_up(void **state)
{
    char *argv[] = {"true", NULL};
    struct srv v;

    run_to_end(&v, argv);
    close_and_finish(&v);
    return 0;
}

/* ---- messages ---- */

static void test_mcp_stdio_an_echo_server_round_trips_messages(void **state)
{
    char *argv[] = {"cat", NULL};
    struct mcp_stdio_options o;
    struct srv v;
    int fds = fd_count();

    options_init(&o, argv);
    start(&v, &o);
    assert_int_equal(mcp_stdio_send(v.s, "{\"jsonrpc\":\"2.0\",\"id\":1}", 24), 0);
    assert_int_equal(mcp_stdio_send(v.s, "second", 6), 0);
    wait_messages(&v, 2);
    assert_string_equal(v.msgs[0], "{\"jsonrpc\":\"2.0\",\"id\":1}");
    assert_string_equal(v.msgs[1], "second");
    assert_false(v.closed);
    close_and_finish(&v);
    assert_string_equal(v.reason, "closed");
    assert_int_equal(fd_count(), fds);
}

static void test_mcp_stdio_a_message_with_a_newline_is_refused(void **state)
{
    char *argv[] = {"cat", NULL};
    struct mcp_stdio_options o;
    struct srv v;

    options_init(&o, argv);
    start(&v, &o);
    /* It would be two messages to the server. */
    assert_int_equal(mcp_stdio_send(v.s, "a\nb", 3), ERR_INVALID);
    assert_int_equal(mcp_stdio_send(v.s, "x", 1), 0);
    wait_messages(&v, 1);
    assert_int_equal(v.nmsgs, 1);
    assert_string_equal(v.msgs[0], "x");
    close_and_finish(&v);
}

static void test_mcp_stdio_many_messages_in_one_write_arrive_in_order(void **state)
{
    /* 1000 lines in one write, with an empty line and CRLF lines among them. */
    char *argv[] = {PY, "-c",
                    "import sys\n"
                    "out = ''.join('{\"n\":%d}%s' % (i, '\\r\\n' if i % 2 else '\\n\\n') "
                    "for i in range(1000))\n"
                    "sys.stdout.write(out); sys.stdout.flush(); sys.stdin.read()\n",
                    NULL};
    struct mcp_stdio_options o;
    struct srv v;
    char want[32];

    options_init(&o, argv);
    start(&v, &o);
    wait_messages(&v, 1000);
    assert_int_equal(v.nmsgs, 1000);
    for (int i = 0; i < 1000; i++) {
        snprintf(want, sizeof(want), "{\"n\":%d}", i);
        assert_string_equal(v.msgs[i], want);
    }
    close_and_finish(&v);
}

static void test_mcp_stdio_a_message_split_over_many_writes_arrives_whole(void **state)
{
    /* 300 KiB in 1000-byte writes (more than one read of ours), then a CRLF split
     * between its "\r" and its "\n". */
    char *argv[] = {PY, "-c",
                    "import sys, time\n"
                    "msg = '{\"big\":\"' + 'x' * (300 * 1024) + '\"}\\n'\n"
                    "for i in range(0, len(msg), 1000):\n"
                    "    sys.stdout.write(msg[i:i + 1000]); sys.stdout.flush()\n"
                    "sys.stdout.write('{\"b\":2}\\r'); sys.stdout.flush(); time.sleep(0.05)\n"
                    "sys.stdout.write('\\n'); sys.stdout.flush(); sys.stdin.read()\n",
                    NULL};
    struct mcp_stdio_options o;
    struct srv v;

    options_init(&o, argv);
    start(&v, &o);
    wait_messages(&v, 2);
    assert_int_equal(strlen(v.msgs[0]), 300 * 1024 + 10);
    assert_memory_equal(v.msgs[0], "{\"big\":\"xxx", 11);
    assert_string_equal(v.msgs[1], "{\"b\":2}");
    close_and_finish(&v);
}

static void test_mcp_stdio_closing_from_on_message_delivers_nothing_more(void **state)
{
    char *argv[] = {"sh", "-c", "printf 'a\\nb\\nc\\n'; cat >/dev/null", NULL};
    struct mcp_stdio_options o;
    struct srv v;

    options_init(&o, argv);
    start(&v, &o);
    v.close_on_message = true;
    run_until(&v.closed, 10000);
    assert_int_equal(v.nmsgs, 1);
    assert_string_equal(v.reason, "closed");
    close_and_finish(&v);
}

/* ---- limits ---- */

static void test_mcp_stdio_a_line_over_the_limit_ends_the_transport(void **state)
{
    /* A line of exactly the limit passes; one byte more does not. */
    char *argv[] = {PY, "-c",
                    "import sys\n"
                    "sys.stdout.write('a' * 1000 + '\\n' + 'b' * 1001 + '\\n'); sys.stdout.flush()\n"
                    "sys.stdin.read()\n",
                    NULL};
    struct mcp_stdio_options o;
    struct srv v;
    int fds = fd_count();

    options_init(&o, argv);
    o.max_message_bytes = 1000;
    start(&v, &o);
    run_until(&v.closed, 10000);
    assert_string_equal(v.reason, "message too large (over 1000 bytes)");
    assert_int_equal(v.nmsgs, 1);
    assert_int_equal(strlen(v.msgs[0]), 1000);
    close_and_finish(&v); /* the server's pid is gone (checked there) */
    assert_int_equal(fd_count(), fds);
}

static void test_mcp_stdio_an_endless_line_is_cut_at_the_limit_without_its_newline(void **state)
{
    /* No newline ever: the held bytes pass the limit, and that is the end. */
    char *argv[] = {PY, "-c",
                    "import sys\n"
                    "sys.stdout.write('c' * 100000); sys.stdout.flush(); sys.stdin.read()\n",
                    NULL};
    struct mcp_stdio_options o;
    struct srv v;

    options_init(&o, argv);
    o.max_message_bytes = 4096;
    start(&v, &o);
    run_until(&v.closed, 10000);
    assert_string_equal(v.reason, "message too large (over 4096 bytes)");
    assert_int_equal(v.nmsgs, 0);
    close_and_finish(&v);
}

static void test_mcp_stdio_a_server_that_never_reads_fails_the_send_queue(void **state)
{
    char *argv[] = {"sleep", "1000", NULL};
    struct mcp_stdio_options o;
    struct srv v;
    size_t chunk = 1 << 20, sent = 0;
    char *msg = malloc(chunk);
    uint64_t t0;
    int r = 0;

    assert_non_null(msg);
    memset(msg, 'q', chunk);
    options_init(&o, argv);
    start(&v, &o);
    /* 100 MiB offered; the loop never runs in between, and no send waits for the server. */
    t0 = uv_hrtime();
    for (int i = 0; i < 100 && r == 0; i++) {
        if ((r = mcp_stdio_send(v.s, msg, chunk)) == 0)
            sent += chunk + 1;
    }
    assert_true(uv_hrtime() - t0 < 5000000000ull);
    assert_int_equal(r, ERR_LIMIT);
    assert_true(sent <= MCP_STDIO_SEND_QUEUE_MAX + (64 << 10)); /* the pipe's own buffer */
    assert_true(sent >= MCP_STDIO_SEND_QUEUE_MAX - chunk);
    assert_true(v.closed);
    assert_string_equal(v.reason, "send queue full (over 67108864 bytes): the server is not "
                                  "reading its stdin");
    assert_int_equal(mcp_stdio_send(v.s, "x", 1), ERR_CLOSED);
    free(msg);
    close_and_finish(&v); /* sleep ignores stdin: SIGTERM after the grace */
}

static void test_mcp_stdio_stderr_keeps_its_last_lines_bounded(void **state)
{
    /* 1 MiB of numbered lines on stderr, then exit 0. */
    char *argv[] = {PY, "-c",
                    "import sys\n"
                    "for i in range(1024 * 1024 // 12): sys.stderr.write('line %06d\\n' % i)\n"
                    "sys.stderr.write('last words\\n')\n",
                    NULL};
    struct mcp_stdio_options o;
    struct srv v;
    const char *t;

    options_init(&o, argv);
    o.stderr_keep_bytes = 64 * 1024;
    start(&v, &o);
    run_until(&v.closed, 10000);
    assert_string_equal(v.reason, "server exited with status 0");
    /* Whole lines only, the newest last, within the bytes kept. */
    assert_true(strlen(v.tail) <= 64 * 1024);
    assert_true(strlen(v.tail) > 60 * 1024);
    assert_memory_equal(v.tail, "line ", 5);
    assert_string_equal(v.tail + strlen(v.tail) - 10, "last words");
    t = mcp_stdio_stderr_tail(v.s, 40);
    /* The last 40 bytes start inside "line 087378\n": that part is dropped. */
    assert_string_equal(t, "line 087379\nline 087380\nlast words");
    t = mcp_stdio_stderr_tail(v.s, 5);
    assert_string_equal(t, "ords"); /* no whole line fits: the bytes there are */
    close_and_finish(&v);
}

static void test_mcp_stdio_stderr_tail_is_empty_without_stderr(void **state)
{
    char *argv[] = {"true", NULL};
    struct srv v;

    run_to_end(&v, argv);
    assert_string_equal(v.reason, "server exited with status 0");
    assert_string_equal(v.tail, "");
    close_and_finish(&v);
}

/* ---- the end ---- */

static void test_mcp_stdio_a_server_exiting_midway_gives_its_status_after_its_output(void **state)
{
    char *argv[] = {"sh", "-c", "echo '{\"a\":1}'; echo oops >&2; exit 3", NULL};
    struct srv v;

    run_to_end(&v, argv);
    assert_string_equal(v.reason, "server exited with status 3");
    assert_int_equal(v.msgs_at_close, 1);
    assert_string_equal(v.msgs[0], "{\"a\":1}");
    assert_string_equal(v.tail, "oops");
    close_and_finish(&v);
}

static void test_mcp_stdio_a_server_that_closes_stdout_but_runs_is_ended(void **state)
{
    char *argv[] = {"sh", "-c", "exec >&-; sleep 1000", NULL};
    struct srv v;

    run_to_end(&v, argv);
    assert_string_equal(v.reason, "server closed its stdout");
    close_and_finish(&v);
}

/* script closes its stdin and says "ready": a message sent then ends the transport with
 * reason. */
static void assert_send_to_closed_stdin_ends(char *script, const char *reason)
{
    char *argv[] = {"sh", "-c", script, NULL};
    struct mcp_stdio_options o;
    struct srv v;

    options_init(&o, argv);
    start(&v, &o);
    wait_messages(&v, 1);
    assert_int_equal(mcp_stdio_send(v.s, "{\"id\":1}", 8), 0);
    assert_true(run_until(&v.closed, 10000));
    assert_string_equal(v.reason, reason);
    close_and_finish(&v);
}

static void test_mcp_stdio_a_write_to_a_closed_stdin_waits_for_the_exit(void **state)
{
    /* Then it exits: the status, not the broken pipe, is the reason. */
    assert_send_to_closed_stdin_ends("exec 0<&-; echo ready; sleep 0.05; exit 4",
                                     "server exited with status 4");
}

static void test_mcp_stdio_a_write_to_a_closed_stdin_of_a_running_server_fails(void **state)
{
    assert_send_to_closed_stdin_ends("exec 0<&-; echo ready; sleep 1000",
                                     "write to server failed: broken pipe");
}

/* Runs script (whose first line is the pid of a background process it started) with
 * kill_grace_ms grace, closes it, and returns how long the close took (ms); the
 * background process was SIGKILLed. The script starts it from a subshell that exits at
 * once, so it is orphaned to us while it runs: a shell in wait() for it would reap it
 * itself in the instant both are killed, and hide how it died. */
static uint64_t close_with_grandchild(char *script, uint64_t grace)
{
    char *argv[] = {"sh", "-c", script, NULL};
    struct mcp_stdio_options o;
    struct srv v;
    pid_t grandchild;
    uint64_t t0, took;
    int st;

    options_init(&o, argv);
    o.kill_grace_ms = grace;
    start(&v, &o);
    wait_messages(&v, 1);
    grandchild = (pid_t)strtol(v.msgs[0], NULL, 10);
    assert_true(grandchild > 0);
    t0 = uv_hrtime();
    close_and_finish(&v);
    took = (uv_hrtime() - t0) / 1000000;
    st = reap_orphan(grandchild);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGKILL);
    return took;
}

static void test_mcp_stdio_a_stubborn_server_and_its_grandchild_are_killed(void **state)
{
    /* Ignores stdin's end and SIGTERM; its background sleep (in its group) does too: stdin
     * closed, SIGTERM after the grace (ignored), SIGKILL after another. */
    assert_true(close_with_grandchild("trap '' TERM; (sleep 1000 & echo $!); "
                                      "while :; do sleep 1; done", 150) >= 2 * 150);
}

static void test_mcp_stdio_what_an_exited_server_left_in_its_group_is_killed(void **state)
{
    /* Exits at stdin's end, leaving a background sleep that holds its stdout: killed with
     * no grace. */
    assert_true(close_with_grandchild("(sleep 1000 & echo $!); cat >/dev/null; exit 0", 5000) <
                4000);
}

/* ---- start: command, environment, working directory, isolation ---- */

static void test_mcp_stdio_a_command_not_found_has_gos_text(void **state)
{
    char *argv[] = {"no-such-mcp-server-credbroker", NULL}, *none[] = {NULL};
    struct mcp_stdio_options o;
    struct mcp_stdio *s = (struct mcp_stdio *)1;
    char err[256];
    int fds = fd_count();

    options_init(&o, argv);
    assert_int_equal(mcp_stdio_start(uv_default_loop(), &o, &events, NULL, &s, err, sizeof(err)),
                     -ENOENT);
    assert_null(s);
    assert_string_equal(err, "exec: \"no-such-mcp-server-credbroker\": executable file not "
                             "found in $PATH");
    options_init(&o, none);
    assert_int_equal(mcp_stdio_start(uv_default_loop(), &o, &events, NULL, &s, err, sizeof(err)),
                     ERR_INVALID);
    assert_string_equal(err, "exec: no command");
    uv_run(uv_default_loop(), UV_RUN_DEFAULT);
    assert_int_equal(fd_count(), fds);
}

static void test_mcp_stdio_a_start_failing_after_the_fork_comes_to_on_closed(void **state)
{
    char *missing[] = {"/nonexistent-credbroker/server", NULL}, *sh[] = {"true", NULL};
    struct mcp_stdio_options o;
    struct srv v;

    options_init(&o, missing);
    start(&v, &o);
    run_until(&v.closed, 10000);
    assert_string_equal(v.reason,
                        "fork/exec /nonexistent-credbroker/server: no such file or directory");
    close_and_finish(&v);
    options_init(&o, sh);
    o.cwd = "/nonexistent-credbroker-dir";
    start(&v, &o);
    run_until(&v.closed, 10000);
    assert_string_equal(v.reason,
                        "chdir /nonexistent-credbroker-dir: no such file or directory");
    close_and_finish(&v);
}

static void test_mcp_stdio_the_environment_is_the_base_plus_the_configs(void **state)
{
    /* python3 is looked up on the base's PATH, not on the config's (as Go). */
    char *argv[] = {"python3", "-c",
                    "import os, sys\n"
                    "e = os.environ\n"
                    "bad = [k for k in e if k.startswith('BAD') or k == '']\n"
                    "print('|'.join([e['KEEP'], e['OVER'], e['NEW'], str(len(bad)), e['PATH']]))\n"
                    "sys.stdout.flush(); sys.stdin.read()\n",
                    NULL};
    char *names[] = {"OVER", "NEW", "BAD=NAME", "", "PATH", "NEW"};
    char *values[] = {"cfg", "x", "y", "z", "/cfg/path", "last"};
    struct mcp_stdio_options o;
    struct srv v;

    options_init(&o, argv);
    o.env_names = names;
    o.env_values = values;
    o.nenv = 6;
    start(&v, &o);
    wait_messages(&v, 1);
    /* The config's PATH is the child's, though. */
    assert_string_equal(v.msgs[0], "base|cfg|last|0|/cfg/path");
    close_and_finish(&v);
}

static void test_mcp_stdio_the_working_directory_is_cwd(void **state)
{
    char dir[] = "/tmp/credbroker-mcp-stdio-XXXXXX";
    char *argv[] = {"sh", "-c", "pwd -P; cat >/dev/null", NULL};
    char real[PATH_MAX];
    struct mcp_stdio_options o;
    struct srv v;

    assert_non_null(mkdtemp(dir));
    assert_non_null(realpath(dir, real));
    options_init(&o, argv);
    o.cwd = dir;
    start(&v, &o);
    wait_messages(&v, 1);
    assert_string_equal(v.msgs[0], real);
    close_and_finish(&v);
    assert_int_equal(rmdir(dir), 0);
}

static void test_mcp_stdio_an_isolated_server_cannot_read_a_secret(void **state)
{
    char dir[] = "/tmp/credbroker-mcp-stdio-XXXXXX", secret[PATH_MAX], script[PATH_MAX + 128];
    char *argv[] = {"sh", "-c", script, NULL};
    struct isolate_secrets secrets = {NULL, 0};
    struct mcp_stdio_options o;
    struct srv v;
    FILE *f;

    if (!isolate_available()) {
        skip();
        return;
    }
    assert_non_null(mkdtemp(dir));
    snprintf(secret, sizeof(secret), "%s/key", dir);
    assert_non_null(f = fopen(secret, "w"));
    fputs("SECRET\n", f);
    assert_int_equal(fclose(f), 0);
    snprintf(script, sizeof(script), "cat %s 2>/dev/null || echo covered; cat >/dev/null",
             secret);
    assert_int_equal(isolate_secrets_add(&secrets, secret, false), 0);
    /* Without isolation the server reads it; with, the cover is there. */
    options_init(&o, argv);
    o.cwd = dir;
    start(&v, &o);
    wait_messages(&v, 1);
    assert_string_equal(v.msgs[0], "SECRET");
    close_and_finish(&v);
    o.secrets = &secrets;
    start(&v, &o);
    wait_messages(&v, 1);
    assert_string_equal(v.msgs[0], "covered");
    close_and_finish(&v);
    isolate_secrets_free(&secrets);
    assert_int_equal(unlink(secret), 0);
    assert_int_equal(rmdir(dir), 0);
}

/* Last: the log goes to a file from here on. */
static void test_mcp_stdio_stderr_is_logged_by_line_at_debug_level(void **state)
{
    char path[] = "/tmp/credbroker-mcp-stdio-log-XXXXXX", text[8192];
    char *argv[] = {"sh", "-c",
                    "echo first >&2; head -c 3000 /dev/zero | tr '\\0' x >&2; echo >&2; "
                    "printf partial >&2",
                    NULL};
    struct mcp_stdio_options o;
    struct srv v;
    int fd = mkstemp(path);
    ssize_t n;
    char *x;

    assert_true(fd >= 0);
    assert_int_equal(log_open_file(path), 0);
    log_set_level(LOG_LEVEL_DEBUG);
    options_init(&o, argv);
    start(&v, &o);
    run_until(&v.closed, 10000);
    close_and_finish(&v);
    log_set_level(LOG_LEVEL_INFO);
    assert_true((n = read(fd, text, sizeof(text) - 1)) > 0);
    text[n] = '\0';
    assert_non_null(strstr(text, "mcp server stderr: first"));
    assert_non_null(strstr(text, "mcp server stderr: partial"));
    /* A long line is cut at 1024 bytes, and says so. */
    assert_non_null(x = strstr(text, "mcp server stderr: xxx"));
    x += strlen("mcp server stderr: ");
    assert_int_equal(strspn(x, "x"), 1024);
    assert_memory_equal(x + 1024, " [...]", 6);
    close(fd);
    assert_int_equal(unlink(path), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mcp_stdio_an_echo_server_round_trips_messages),
        cmocka_unit_test(test_mcp_stdio_a_message_with_a_newline_is_refused),
        cmocka_unit_test(test_mcp_stdio_many_messages_in_one_write_arrive_in_order),
        cmocka_unit_test(test_mcp_stdio_a_message_split_over_many_writes_arrives_whole),
        cmocka_unit_test(test_mcp_stdio_closing_from_on_message_delivers_nothing_more),
        cmocka_unit_test(test_mcp_stdio_a_line_over_the_limit_ends_the_transport),
        cmocka_unit_test(test_mcp_stdio_an_endless_line_is_cut_at_the_limit_without_its_newline),
        cmocka_unit_test(test_mcp_stdio_a_server_that_never_reads_fails_the_send_queue),
        cmocka_unit_test(test_mcp_stdio_stderr_keeps_its_last_lines_bounded),
        cmocka_unit_test(test_mcp_stdio_stderr_tail_is_empty_without_stderr),
        cmocka_unit_test(test_mcp_stdio_a_server_exiting_midway_gives_its_status_after_its_output),
        cmocka_unit_test(test_mcp_stdio_a_server_that_closes_stdout_but_runs_is_ended),
        cmocka_unit_test(test_mcp_stdio_a_write_to_a_closed_stdin_waits_for_the_exit),
        cmocka_unit_test(test_mcp_stdio_a_write_to_a_closed_stdin_of_a_running_server_fails),
        cmocka_unit_test(test_mcp_stdio_a_stubborn_server_and_its_grandchild_are_killed),
        cmocka_unit_test(test_mcp_stdio_what_an_exited_server_left_in_its_group_is_killed),
        cmocka_unit_test(test_mcp_stdio_a_command_not_found_has_gos_text),
        cmocka_unit_test(test_mcp_stdio_a_start_failing_after_the_fork_comes_to_on_closed),
        cmocka_unit_test(test_mcp_stdio_the_environment_is_the_base_plus_the_configs),
        cmocka_unit_test(test_mcp_stdio_the_working_directory_is_cwd),
        cmocka_unit_test(test_mcp_stdio_an_isolated_server_cannot_read_a_secret),
        cmocka_unit_test(test_mcp_stdio_stderr_is_logged_by_line_at_debug_level),
    };
    char *base[] = {"PATH=/usr/bin:/bin", "KEEP=base", "OVER=base", NULL};
    int failed;

    /* As the runner does (harden.c): a write to a server gone is an error, not a death. */
    signal(SIGPIPE, SIG_IGN);
    /* Orphaned grandchildren come to us, to be checked (reap_orphan). */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    assert_non_null(base_env = env_new(base));
    failed = cmocka_run_group_tests(tests, warm_up, NULL);
    env_free(base_env);
    uv_loop_close(uv_default_loop());
    return failed;
}
