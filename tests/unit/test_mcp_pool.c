/*
 * Unit tests for src/runner/mcp_pool.c with real stdio MCP servers
 * (tests/unit/peers/mcp_stdio_peer.py, started by the pool as the runner starts them) on
 * a real libuv loop: one connection per key (an identical config reuses it, a config that
 * differs only in one env value gets its own server), concurrent first calls sharing one
 * connect, a failed call closing its server (the pid gone), a failed connect with its
 * stderr, the cap with the least recently used idle session closed, the idle close, the
 * permission rules on the command line.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <uv.h>

#include "env.h"
#include "mcp_client.h"
#include "mcp_pool.h"
#include "permission.h"

extern char **environ;
static const char *peer_path;

struct got {
    bool done;
    struct mcp_session *s;
    char error[1024];
};

static void on_acquired(struct mcp_session *s, const char *error, void *ud)
{
    struct got *g = ud;

    g->done = true;
    uv_stop(uv_default_loop()); /* run_until's uv_run returns: no wait for more events */
    g->s = s;
    snprintf(g->error, sizeof(g->error), "%s", error != NULL ? error : "");
}

struct call {
    bool done;
    char text[1024];
    char error[1024];
};

static void on_called(void *ud, const json_t *result, const char *error)
{
    struct call *c = ud;
    const json_t *item = json_array_get(json_object_get(result, "content"), 0);

    c->done = true;
    uv_stop(uv_default_loop());
    snprintf(c->error, sizeof(c->error), "%s", error != NULL ? error : "");
    snprintf(c->text, sizeof(c->text), "%s",
             item != NULL ? json_string_value(json_object_get(item, "text")) : "");
}

static void on_late(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

/* Runs the loop until *flag or 10 s; returns *flag. */
static bool run_until(const bool *flag)
{
    uv_timer_t t;
    bool late = false;

    uv_timer_init(uv_default_loop(), &t);
    t.data = &late;
    uv_timer_start(&t, on_late, 10000, 0);
    while (!*flag && !late)
        uv_run(uv_default_loop(), UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(uv_default_loop(), UV_RUN_NOWAIT);
    return *flag;
}

static uint64_t connect_ms; /* 0: the pool's default */

static struct mcp_pool *pool_with(struct env *base, const struct permission_rules *rules,
                                  size_t max, uint64_t idle_ms)
{
    struct mcp_pool_options o = {
        .base_env = base, .workspace = "/tmp", .rules = rules, .max_sessions = max,
        .idle_ms = idle_ms, .connect_ms = connect_ms,
    };
    struct mcp_pool *p;

    assert_int_equal(mcp_pool_new(uv_default_loop(), &o, &p), 0);
    return p;
}

/* A config running the peer in mode with MCP_PEER_TAG=tag; the key is made of both (the
 * real key is mcp_key's hash of the whole config). */
struct cfg {
    char *args[2];
    char *env_names[1], *env_values[1];
    struct mcp_server_config c;
};

static void cfg_init(struct cfg *k, const char *mode, const char *tag)
{
    memset(k, 0, sizeof(*k));
    k->args[0] = (char *)peer_path;
    k->args[1] = (char *)mode;
    k->env_names[0] = "MCP_PEER_TAG";
    k->env_values[0] = (char *)tag;
    k->c.name = "peer";
    k->c.transport = "stdio";
    k->c.command = "/usr/bin/python3";
    k->c.args = k->args;
    k->c.nargs = 2;
    k->c.env_names = k->env_names;
    k->c.env_values = k->env_values;
    k->c.nenv = 1;
    snprintf((char *)k->c.key, sizeof(k->c.key), "%s/%s", mode, tag);
}

static struct mcp_session *acquire(struct mcp_pool *p, struct cfg *k, struct got *g)
{
    struct mcp_wait *w;

    memset(g, 0, sizeof(*g));
    assert_int_equal(mcp_pool_acquire(p, &k->c, on_acquired, g, &w), 0);
    assert_false(g->done); /* never from inside acquire */
    assert_true(run_until(&g->done));
    return g->s;
}

/* Calls echo; returns the server's pid from its answer ("... pid=N tag=T"). */
static long echo(struct mcp_session *s, const char *message, struct call *c)
{
    json_t *args = json_pack("{s:s}", "message", message);
    struct mcp_op *op;
    const char *pid;

    memset(c, 0, sizeof(*c));
    assert_int_equal(mcp_conn_call_tool(mcp_session_conn(s), "echo", args, on_called, c, &op), 0);
    json_decref(args);
    assert_true(run_until(&c->done));
    pid = strstr(c->text, "pid=");
    return pid != NULL ? strtol(pid + 4, NULL, 10) : -1;
}

/* Polls the loop until pid is gone (reaped by the pool's transport), at most 10 s. */
static bool gone(long pid)
{
    uint64_t until = uv_now(uv_default_loop()) + 10000;

    while (kill((pid_t)pid, 0) == 0 || errno != ESRCH) {
        if (uv_now(uv_default_loop()) > until)
            return false;
        uv_run(uv_default_loop(), UV_RUN_NOWAIT);
        uv_update_time(uv_default_loop());
    }
    return true;
}

static void drain(struct mcp_pool *p)
{
    mcp_pool_close(p);
    uv_run(uv_default_loop(), UV_RUN_DEFAULT);
}

static void test_one_connection_per_key(void **state)
{
    struct env *base = env_new(environ);
    struct mcp_pool *p = pool_with(base, NULL, 0, 0);
    struct cfg a, a2, b;
    struct got g;
    struct call c;
    struct mcp_session *s;
    long pa, pa2, pb;

    (void)state;
    cfg_init(&a, "ok", "alice");
    cfg_init(&a2, "ok", "alice");
    cfg_init(&b, "ok", "bob");
    s = acquire(p, &a, &g);
    assert_non_null(s);
    pa = echo(s, "one", &c);
    assert_non_null(strstr(c.text, "one pid="));
    assert_non_null(strstr(c.text, "tag=alice"));
    mcp_session_release(s, false);
    s = acquire(p, &a2, &g); /* the same config: the same server */
    pa2 = echo(s, "two", &c);
    mcp_session_release(s, false);
    assert_int_equal(pa, pa2);
    s = acquire(p, &b, &g);  /* one env value differs: a server of its own */
    pb = echo(s, "three", &c);
    assert_non_null(strstr(c.text, "tag=bob"));
    mcp_session_release(s, false);
    assert_int_not_equal(pa, pb);
    assert_int_equal(mcp_pool_size(p), 2);
    drain(p);
    assert_true(gone(pa));
    assert_true(gone(pb));
    env_free(base);
}

static void test_concurrent_first_calls_share_one_connect(void **state)
{
    struct env *base = env_new(environ);
    struct mcp_pool *p = pool_with(base, NULL, 0, 0);
    struct cfg a;
    struct got g1 = {0}, g2 = {0};
    struct mcp_wait *w1, *w2;
    struct call c;
    long p1, p2;

    (void)state;
    cfg_init(&a, "ok", "x");
    assert_int_equal(mcp_pool_acquire(p, &a.c, on_acquired, &g1, &w1), 0);
    assert_int_equal(mcp_pool_acquire(p, &a.c, on_acquired, &g2, &w2), 0);
    assert_int_equal(mcp_pool_size(p), 1);
    assert_true(run_until(&g1.done) && run_until(&g2.done));
    assert_ptr_equal(g1.s, g2.s);
    p1 = echo(g1.s, "a", &c);
    p2 = echo(g2.s, "b", &c);
    assert_int_equal(p1, p2);
    mcp_session_release(g1.s, false);
    mcp_session_release(g2.s, false);
    drain(p);
    env_free(base);
}

static void test_a_failed_call_closes_the_server(void **state)
{
    struct env *base = env_new(environ);
    struct mcp_pool *p = pool_with(base, NULL, 0, 0);
    struct cfg a;
    struct got g;
    struct call c;
    struct mcp_session *s;

    (void)state;
    cfg_init(&a, "exit-on-call", "x");
    s = acquire(p, &a, &g);
    assert_non_null(s);
    echo(s, "x", &c);
    assert_non_null(strstr(c.error, "server exited with status 3"));
    mcp_session_release(s, true);
    assert_int_equal(mcp_pool_size(p), 0);
    /* The next call starts a new server. */
    s = acquire(p, &a, &g);
    assert_non_null(s);
    mcp_session_release(s, true);
    drain(p);
    env_free(base);
}

static void test_failed_connects_say_why(void **state)
{
    struct env *base = env_new(environ);
    struct mcp_pool *p = pool_with(base, NULL, 0, 0);
    struct cfg a, b, c;
    struct got g;

    (void)state;
    cfg_init(&a, "stderr-exit", "x");
    assert_null(acquire(p, &a, &g));
    assert_non_null(strstr(g.error, "server exited with status 1"));
    assert_non_null(strstr(g.error, "fatal: no config"));
    cfg_init(&b, "bad-version", "x");
    assert_null(acquire(p, &b, &g));
    assert_non_null(strstr(g.error, "protocol version"));
    {
        struct cfg m;
        struct mcp_pool *quick;

        connect_ms = 200; /* a server that never answers initialize: the connect deadline */
        quick = pool_with(base, NULL, 0, 0);
        connect_ms = 0;
        cfg_init(&m, "no-init", "x");
        assert_null(acquire(quick, &m, &g));
        assert_string_equal(g.error, "context deadline exceeded");
        assert_int_equal(mcp_pool_size(quick), 0);
        drain(quick);
    }
    cfg_init(&c, "ok", "x");
    c.c.command = "no-such-mcp-server-command";
    assert_null(acquire(p, &c, &g));
    assert_string_equal(g.error,
                        "exec: \"no-such-mcp-server-command\": executable file not found in $PATH");
    assert_int_equal(mcp_pool_size(p), 0);
    drain(p);
    env_free(base);
}

static void test_the_cap_closes_the_least_recently_used_idle_one(void **state)
{
    struct env *base = env_new(environ);
    struct mcp_pool *p = pool_with(base, NULL, 2, 0);
    struct cfg a, b, c;
    struct got ga, gb, gc;
    struct call call;
    struct mcp_session *sa, *sb;
    long pa;

    (void)state;
    cfg_init(&a, "ok", "a");
    cfg_init(&b, "ok", "b");
    cfg_init(&c, "ok", "c");
    sa = acquire(p, &a, &ga);
    pa = echo(sa, "a", &call);
    mcp_session_release(sa, false);
    sb = acquire(p, &b, &gb);          /* b stays busy */
    assert_non_null(acquire(p, &c, &gc)); /* a, idle and oldest, makes room */
    assert_true(gone(pa));
    assert_int_equal(mcp_pool_size(p), 2);
    mcp_session_release(gc.s, false);
    (void)sb;
    /* All busy: refused with the Go-shaped reason. */
    sa = acquire(p, &a, &ga);          /* closes c (idle) */
    assert_non_null(sa);
    assert_null(acquire(p, &c, &gc));
    assert_string_equal(gc.error, "too many MCP connections (2 in use)");
    mcp_session_release(sa, false);
    mcp_session_release(gb.s, false);
    drain(p);
    env_free(base);
}

static void test_idle_sessions_close(void **state)
{
    struct env *base = env_new(environ);
    struct mcp_pool *p = pool_with(base, NULL, 0, 50);
    struct cfg a;
    struct got g;
    struct call c;
    struct mcp_session *s;
    long pid;

    (void)state;
    cfg_init(&a, "ok", "x");
    s = acquire(p, &a, &g);
    pid = echo(s, "x", &c);
    mcp_session_release(s, false);
    assert_true(gone(pid)); /* closed 50 ms after its last release */
    assert_int_equal(mcp_pool_size(p), 0);
    drain(p);
    env_free(base);
}

static void test_permission_rules_gate_the_command_line(void **state)
{
    struct env *base = env_new(environ);
    struct permission_rules *rules = NULL;
    char err[256];
    struct mcp_pool *p;
    struct cfg a;
    struct got g;
    char allowed[4096];
    const char *patterns[] = {"*", allowed};
    const char *actions[] = {"deny", "allow"};

    (void)state;
    /* The command line as the rules see it: the words, quotes removed. */
    snprintf(allowed, sizeof(allowed), "/usr/bin/python3 %s ok", peer_path);
    assert_int_equal(permission_rules_new(patterns, actions, 2, &rules, err, sizeof(err)), 0);
    p = pool_with(base, rules, 0, 0);
    cfg_init(&a, "ok", "x");
    if (acquire(p, &a, &g) == NULL)
        fail_msg("refused: %s", g.error);
    mcp_session_release(g.s, false);
    cfg_init(&a, "no-init", "x");
    assert_null(acquire(p, &a, &g));
    assert_non_null(strstr(g.error, "command denied by rule '*'"));
    drain(p);
    permission_rules_free(rules);
    env_free(base);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_connection_per_key),
        cmocka_unit_test(test_concurrent_first_calls_share_one_connect),
        cmocka_unit_test(test_a_failed_call_closes_the_server),
        cmocka_unit_test(test_failed_connects_say_why),
        cmocka_unit_test(test_the_cap_closes_the_least_recently_used_idle_one),
        cmocka_unit_test(test_idle_sessions_close),
        cmocka_unit_test(test_permission_rules_gate_the_command_line),
    };

    if (argc != 2) {
        fprintf(stderr, "usage: %s PEER\n", argv[0]);
        return 2;
    }
    peer_path = argv[1];
    return cmocka_run_group_tests(tests, NULL, NULL);
}
