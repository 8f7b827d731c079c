/*
 * Unit tests for src/net/netconn*.c against real peers on a real libuv loop: a Python
 * TLS server (tests/unit/peers/tls_peer.py), Debian's tinyproxy for the CONNECT tunnel,
 * certificates made by the openssl CLI at start (tests/unit/peers/net_certs.sh), and
 * plain sockets of our own (a port nobody listens on, a listener that never answers).
 *
 * Nothing sleeps and no timing is asserted: each test runs the loop until what it waits
 * for has happened (or a generous deadline says it never will). Each test has its own
 * loop, and ends by running it dry and closing it: a handle or a request left behind
 * fails uv_loop_close, and ASan's leak check sees the memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <uv.h>

#include "err.h"
#include "netconn.h"

#define WAIT_MS 20000
#define BIG (8u << 20)

extern char **environ;
static const char *peers_dir; /* tests/unit/peers */
static char tmp[64];          /* certificates, tinyproxy's files */

/* ---- processes ---- */

struct proc {
    pid_t pid;
    int port;
    int stdin_fd; /* the Python peer exits when it reads EOF here: when we do */
};

static void proc_stop(struct proc *p)
{
    if (p->pid <= 0)
        return;
    kill(p->pid, SIGTERM);
    waitpid(p->pid, NULL, 0);
    if (p->stdin_fd > 0)
        close(p->stdin_fd);
    memset(p, 0, sizeof(*p));
}

/* Runs argv with stderr into logfile, and stdout into a pipe whose first line is the
 * port (read_port) or into logfile too. */
static void proc_spawn(struct proc *p, char *const argv[], bool read_port, const char *logfile)
{
    posix_spawn_file_actions_t fa;
    int fds[2] = {-1, -1}, in[2];
    char line[32] = "";
    size_t n = 0;

    posix_spawn_file_actions_init(&fa);
    if (read_port) {
        assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
        assert_int_equal(pipe2(in, O_CLOEXEC), 0);
        posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        p->stdin_fd = in[1];
    } else {
        posix_spawn_file_actions_addopen(&fa, 1, logfile, O_WRONLY | O_CREAT | O_APPEND, 0600);
    }
    posix_spawn_file_actions_addopen(&fa, 2, logfile, O_WRONLY | O_CREAT | O_APPEND, 0600);
    assert_int_equal(posix_spawn(&p->pid, argv[0], &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    if (!read_port)
        return;
    close(in[0]);
    close(fds[1]);
    while (n + 1 < sizeof(line) && read(fds[0], line + n, 1) == 1 && line[n] != '\n')
        n++;
    close(fds[0]);
    line[n] = '\0';
    p->port = (int)strtol(line, NULL, 10);
    assert_true(p->port > 0);
}

static void run_wait(char *const argv[])
{
    struct proc p = {0};
    int status;
    char errfile[128];

    snprintf(errfile, sizeof(errfile), "%s/spawn.log", tmp);
    proc_spawn(&p, argv, false, errfile);
    assert_int_equal(waitpid(p.pid, &status, 0), p.pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

#define MAX_PROCS 4

/* ---- the fixture: a loop, a TLS context, its processes, what the callbacks saw ---- */

struct got {
    uv_loop_t *loop;
    struct net_tls_ctx *tls;
    /* the connect */
    struct net_connect *k; /* under way, or NULL */
    bool done;
    struct net_conn *c;    /* the connection, until the test frees it */
    char error[512];
    /* the stream */
    uint8_t *data;
    size_t len, cap;
    unsigned reads;
    bool closed;
    bool clean;
    char reason[512];
    unsigned drains;
    /* what the callbacks do */
    bool free_on_read;
    size_t stop_every, next_stop;
    bool stopped, read_while_stopped;
    struct proc procs[MAX_PROCS]; /* stopped by teardown if the test could not */
};

static struct proc *proc_slot(struct got *g)
{
    for (size_t i = 0; i < MAX_PROCS; i++)
        if (g->procs[i].pid == 0)
            return &g->procs[i];
    fail_msg("more than %d processes", MAX_PROCS);
    return NULL;
}

/* The Python peer in mode, TLS with certificate name (NULL: plain TCP), more args after;
 * stopped by the test or by teardown. */
static struct proc *peer_start(struct got *g, const char *mode, const char *name, ...)
{
    struct proc *p = proc_slot(g);
    char script[512], cert[128], key[128], errfile[128];
    char *argv[20] = {"/usr/bin/python3", script, (char *)mode};
    size_t n = 3;
    va_list ap;
    const char *a;

    snprintf(script, sizeof(script), "%s/tls_peer.py", peers_dir);
    snprintf(errfile, sizeof(errfile), "%s/peer.log", tmp);
    if (name == NULL) {
        argv[n++] = "--plain";
    } else {
        snprintf(cert, sizeof(cert), "%s/%s.pem", tmp, name);
        snprintf(key, sizeof(key), "%s/%s.key", tmp, name);
        argv[n++] = "--cert";
        argv[n++] = cert;
        argv[n++] = "--key";
        argv[n++] = key;
    }
    va_start(ap, name);
    while ((a = va_arg(ap, const char *)) != NULL && n + 1 < 20)
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    proc_spawn(p, argv, true, errfile);
    return p;
}

/* A port nothing listens on now (the kernel's choice, then released). */
static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static bool port_open(void *arg)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)((struct proc *)arg)->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

    if (fd >= 0)
        close(fd);
    return ok;
}

/* ---- the loop ---- */

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

/* Runs loop until cond(arg) or ms pass; a 10 ms tick keeps UV_RUN_ONCE returning. */
static bool run_until(uv_loop_t *loop, bool (*cond)(void *), void *arg, uint64_t ms)
{
    uv_timer_t tick;
    uint64_t end;

    uv_update_time(loop);
    end = uv_now(loop) + ms;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, on_tick, 10, 10);
    while (!cond(arg) && uv_now(loop) < end)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT); /* the tick's close */
    return cond(arg);
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

/* tinyproxy on a free port with extra config lines; waits until it listens. */
static struct proc *tinyproxy_start(struct got *g, const char *extra)
{
    struct proc *p = proc_slot(g);
    char conf[128], errfile[128];
    char *argv[] = {"/usr/bin/tinyproxy", "-d", "-c", conf, NULL};
    FILE *f;

    if (access("/usr/bin/tinyproxy", X_OK) != 0) {
        fprintf(stderr, "skipped: /usr/bin/tinyproxy missing\n");
        skip();
    }
    snprintf(conf, sizeof(conf), "%s/tinyproxy.conf", tmp);
    snprintf(errfile, sizeof(errfile), "%s/tinyproxy.log", tmp);
    /* tinyproxy has no "Port 0": a port the kernel just gave out, then released. */
    p->port = free_port();
    assert_true(p->port > 0);
    assert_non_null(f = fopen(conf, "w"));
    fprintf(f, "Port %d\nListen 127.0.0.1\nTimeout 30\nMaxClients 20\nAllow 127.0.0.1\n"
               "LogLevel Warning\n%s\n", p->port, extra);
    fclose(f);
    proc_spawn(p, argv, false, errfile);
    assert_true(run_until(g->loop, port_open, p, WAIT_MS));
    return p;
}

/* Runs loop until nothing keeps it alive, or 5 s (a handle left open: then
 * uv_loop_close fails). */
static void run_dry(uv_loop_t *loop)
{
    uv_timer_t guard;
    uint64_t end;

    uv_update_time(loop);
    end = uv_now(loop) + 5000;
    uv_timer_init(loop, &guard);
    uv_timer_start(&guard, on_tick, 5000, 0);
    uv_unref((uv_handle_t *)&guard); /* wakes the loop, does not keep it alive */
    while (uv_run(loop, UV_RUN_ONCE) != 0 && uv_now(loop) < end)
        ;
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static int setup(void **state)
{
    struct got *g = calloc(1, sizeof(*g));
    char ca[128];

    snprintf(ca, sizeof(ca), "%s/ca.pem", tmp);
    if (g == NULL || (g->loop = calloc(1, sizeof(uv_loop_t))) == NULL ||
        uv_loop_init(g->loop) != 0 || net_tls_ctx_new(ca, &g->tls) != 0)
        return -1;
    *state = g;
    return 0;
}

static int teardown(void **state)
{
    struct got *g = *state;

    /* What a failed test left behind. */
    net_connect_cancel(g->k);
    net_conn_free(g->c);
    for (size_t i = 0; i < MAX_PROCS; i++)
        proc_stop(&g->procs[i]);
    net_tls_ctx_free(g->tls);
    /* Every handle closes by itself once its connection is freed. */
    run_dry(g->loop);
    assert_int_equal(uv_loop_close(g->loop), 0);
    assert_int_equal(ERR_peek_error(), 0); /* nothing left on OpenSSL's error queue */
    free(g->loop);
    free(g->data);
    free(g);
    return 0;
}

static bool is_done(void *arg)
{
    return ((struct got *)arg)->done;
}

static bool is_closed(void *arg)
{
    return ((struct got *)arg)->closed;
}

static bool is_stopped_or_closed(void *arg)
{
    return ((struct got *)arg)->stopped || ((struct got *)arg)->closed;
}

static void on_connected(struct net_conn *c, const char *error, void *ud)
{
    struct got *g = ud;

    assert_false(g->done);
    g->done = true;
    g->k = NULL;
    g->c = c;
    assert_true((c == NULL) == (error != NULL));
    snprintf(g->error, sizeof(g->error), "%s", error != NULL ? error : "");
}

static void on_read(struct net_conn *c, const uint8_t *data, size_t len, void *ud)
{
    struct got *g = ud;

    assert_ptr_equal(c, g->c);
    assert_true(len > 0);
    if (g->stopped)
        g->read_while_stopped = true;
    if (g->len + len > g->cap) {
        g->cap = (g->len + len) * 2;
        assert_non_null(g->data = realloc(g->data, g->cap));
    }
    memcpy(g->data + g->len, data, len);
    g->len += len;
    g->reads++;
    if (g->free_on_read) {
        net_conn_free(c); /* from inside: nothing of c may run after this */
        g->c = NULL;
        return;
    }
    if (g->stop_every > 0 && g->len >= g->next_stop) {
        g->next_stop = g->len + g->stop_every;
        g->stopped = true;
        net_conn_read_stop(c);
    }
}

static void on_drain(struct net_conn *c, void *ud)
{
    struct got *g = ud;

    g->drains++;
    assert_int_equal(net_conn_pending(c), 0);
}

static void on_close(struct net_conn *c, const char *reason, void *ud)
{
    struct got *g = ud;

    assert_false(g->closed);
    g->closed = true;
    g->clean = reason == NULL;
    snprintf(g->reason, sizeof(g->reason), "%s", reason != NULL ? reason : "");
}

static const struct net_conn_events events = {on_read, on_drain, on_close};

/* Connects to t and waits for the outcome; returns the connection or NULL (g->error). */
static struct net_conn *connect_to(struct got *g, const struct net_target *t, uint64_t ms)
{
    struct net_connect *k;

    g->done = false;
    g->c = NULL;
    assert_int_equal(net_connect_start(g->loop, g->tls, t, ms, on_connected, g, &k), 0);
    assert_non_null(k);
    g->k = k;
    assert_true(run_until(g->loop, is_done, g, WAIT_MS));
    if (g->c != NULL)
        net_conn_set_events(g->c, &events, g);
    return g->c;
}

static void conn_free(struct got *g)
{
    net_conn_free(g->c);
    g->c = NULL;
}

static void reset_stream(struct got *g)
{
    g->len = 0;
    g->reads = 0;
    g->closed = false;
    g->reason[0] = '\0';
}

struct want {
    struct got *g;
    size_t len;
};

static bool has_bytes(void *arg)
{
    struct want *w = arg;

    return w->g->len >= w->len || w->g->closed;
}

/* Runs until n bytes came (or the end); asserts they did. */
static void wait_bytes(struct got *g, size_t n)
{
    struct want w = {g, n};

    assert_true(run_until(g->loop, has_bytes, &w, WAIT_MS));
    assert_true(g->len >= n);
}

static bool has_line(void *arg)
{
    struct got *g = arg;

    return (g->len > 0 && memchr(g->data, '\n', g->len) != NULL) || g->closed;
}

/* Runs until a whole line came; its newline becomes a NUL: g->data is the line. */
static void wait_line(struct got *g)
{
    uint8_t *nl;

    assert_true(run_until(g->loop, has_line, g, WAIT_MS));
    assert_non_null(nl = memchr(g->data, '\n', g->len));
    *nl = '\0';
}

static void write_all(struct net_conn *c, const void *data, size_t len)
{
    assert_int_equal(net_conn_write(c, data, len), 0);
}

static bool contains(const char *hay, const char *needle)
{
    if (strstr(hay, needle) != NULL)
        return true;
    fprintf(stderr, "\"%s\" not in \"%s\"\n", needle, hay);
    return false;
}

/* ---- TLS and TCP ---- */

static void test_netconn_echoes_over_tls(void **state)
{
    struct got *g = *state;
    struct proc *peer;
    struct net_target t = {.host = "127.0.0.1", .tls = true};
    struct net_conn *c;

    peer = peer_start(g, "echo", "leaf", NULL);
    t.port = (uint16_t)peer->port;
    assert_non_null(c = connect_to(g, &t, WAIT_MS));
    assert_string_equal(net_conn_alpn(c), ""); /* none offered */
    assert_false(net_conn_session_reused(c));
    write_all(c, "hello, ", 7);
    write_all(c, "world", 5); /* coalesced with the first, or not: the bytes are the same */
    wait_bytes(g, 12);
    assert_memory_equal(g->data, "hello, world", 12);
    assert_true(g->drains >= 1);
    assert_int_equal(net_conn_pending(c), 0);
    assert_false(g->closed);
    conn_free(g);
    proc_stop(peer);
}

static void test_netconn_echoes_over_plain_tcp(void **state)
{
    struct got *g = *state;
    struct proc *peer;
    struct net_target t = {.host = "localhost", .tls = false};
    struct net_conn *c;
    char peer_name[64];

    peer = peer_start(g, "echo", NULL, NULL);
    t.port = (uint16_t)peer->port;
    assert_non_null(c = connect_to(g, &t, WAIT_MS));
    assert_string_equal(net_conn_alpn(c), "");
    snprintf(peer_name, sizeof(peer_name), "localhost:%d", peer->port);
    assert_string_equal(net_conn_peer(c), peer_name);
    write_all(c, "plain", 5);
    wait_bytes(g, 5);
    assert_memory_equal(g->data, "plain", 5);
    conn_free(g);
    proc_stop(peer);
}

/* The server's "alpn=..." line, read through a connection offering offer. */
static void alpn_case(struct got *g, const char *server_alpn, const char *offer, const char *want)
{
    struct proc *peer;
    struct net_target t = {.host = "localhost", .tls = true, .alpn = offer};
    struct net_conn *c;
    char line[64];

    peer = peer_start(g, "info", "leaf", "--alpn", server_alpn, NULL);
    t.port = (uint16_t)peer->port;
    assert_non_null(c = connect_to(g, &t, WAIT_MS));
    assert_string_equal(net_conn_alpn(c), want);
    wait_line(g);
    snprintf(line, sizeof(line), "alpn=%s ", want);
    assert_memory_equal(g->data, line, strlen(line));
    conn_free(g);
    reset_stream(g);
    proc_stop(peer);
}

static void test_netconn_alpn_picks_h2_when_the_server_offers_it(void **state)
{
    alpn_case(*state, "h2,http/1.1", "h2,http/1.1", "h2");
}

static void test_netconn_alpn_falls_back_to_http11(void **state)
{
    alpn_case(*state, "http/1.1", "h2,http/1.1", "http/1.1");
}

/* RFC 6066 3: a host name goes in SNI; an address does not. */
static void test_netconn_sends_sni_for_names_only(void **state)
{
    struct got *g = *state;
    struct proc *peer = peer_start(g, "info", "leaf", NULL);
    struct net_target t = {.tls = true, .port = (uint16_t)peer->port};
    static const char *const hosts[] = {"localhost", "127.0.0.1"};
    static const char *const want[] = {"sni=localhost", "sni=none"};

    for (size_t i = 0; i < 2; i++) {
        t.host = hosts[i];
        assert_non_null(connect_to(g, &t, WAIT_MS));
        wait_line(g);
        assert_true(contains((const char *)g->data, want[i]));
        conn_free(g);
        reset_stream(g);
    }
    proc_stop(peer);
}

static void test_netconn_refuses_a_bad_alpn_list(void **state)
{
    struct got *g = *state;
    struct net_target t = {.host = "127.0.0.1", .port = 1, .tls = true, .alpn = "h2,,x"};
    struct net_connect *k;

    assert_int_equal(net_connect_start(g->loop, g->tls, &t, 0, on_connected, g, &k), ERR_INVALID);
    assert_null(k);
    t.alpn = "h2,";
    assert_int_equal(net_connect_start(g->loop, g->tls, &t, 0, on_connected, g, &k), ERR_INVALID);
    t.alpn = "h2";
    t.tls = true;
    assert_int_equal(net_connect_start(g->loop, NULL, &t, 0, on_connected, g, &k), ERR_INVALID);
}

/* Two connections in a row: the second resumes the first's session, and both ends say so. */
static void resume_case(struct got *g, bool tls12)
{
    struct proc *peer;
    struct net_target t = {.host = "localhost", .tls = true};
    struct net_conn *c;

    peer = peer_start(g, "info", "leaf", tls12 ? "--tls12" : NULL, NULL);
    t.port = (uint16_t)peer->port;
    for (int i = 0; i < 2; i++) {
        assert_non_null(c = connect_to(g, &t, WAIT_MS));
        wait_line(g);
        assert_int_equal(net_conn_session_reused(c), i == 1);
        assert_true(contains((const char *)g->data, i == 1 ? "reused=1" : "reused=0"));
        assert_true(contains((const char *)g->data, tls12 ? "TLSv1.2" : "TLSv1.3"));
        conn_free(g);
        reset_stream(g);
    }
    proc_stop(peer);
}

static void test_netconn_resumes_the_session_with_tls13(void **state)
{
    resume_case(*state, false);
}

static void test_netconn_resumes_the_session_with_tls12(void **state)
{
    resume_case(*state, true);
}

/* A connect to a peer with certificate name, as host, fails with want in its error. */
static void verify_case(struct got *g, const char *name, const char *host, const char *want)
{
    struct proc *peer;
    struct net_target t = {.host = host, .tls = true};
    char prefix[128];

    peer = peer_start(g, "echo", name, "--listen", strcmp(host, "localhost") == 0 ? "127.0.0.1" : host,
               NULL);
    t.port = (uint16_t)peer->port;
    assert_null(connect_to(g, &t, WAIT_MS));
    snprintf(prefix, sizeof(prefix), "TLS handshake with %s:%d failed: ", host, peer->port);
    assert_true(contains(g->error, prefix));
    assert_true(contains(g->error, want));
    assert_int_equal(ERR_peek_error(), 0);
    proc_stop(peer);
}

static void test_netconn_rejects_a_wrong_host_name(void **state)
{
    verify_case(*state, "wrong", "localhost", "certificate verify failed: hostname mismatch");
    verify_case(*state, "leaf", "127.0.0.2", "certificate verify failed: IP address mismatch");
}

static void test_netconn_rejects_an_untrusted_ca(void **state)
{
    verify_case(*state, "untrusted", "localhost",
                "certificate verify failed: unable to get local issuer certificate");
}

static void test_netconn_rejects_an_expired_certificate(void **state)
{
    verify_case(*state, "expired", "127.0.0.1", "certificate verify failed: certificate has expired");
}

/* A server that speaks TLS 1.1 at most is refused (TLS 1.2 is the minimum). */
static void test_netconn_refuses_tls11(void **state)
{
    struct got *g = *state;
    struct proc *peer = peer_start(g, "echo", "leaf", "--tls11", NULL);
    struct net_target t = {.host = "127.0.0.1", .port = (uint16_t)peer->port, .tls = true};
    char prefix[128];

    assert_null(connect_to(g, &t, WAIT_MS));
    snprintf(prefix, sizeof(prefix), "TLS handshake with 127.0.0.1:%d failed: ", peer->port);
    assert_true(contains(g->error, prefix));
    assert_true(contains(g->error, "alert protocol version"));
    proc_stop(peer);
}

static void test_netconn_reports_a_refused_connection(void **state)
{
    struct got *g = *state;
    struct net_target t = {.host = "127.0.0.1", .tls = true};
    char want[128];

    t.port = (uint16_t)free_port();
    assert_null(connect_to(g, &t, WAIT_MS));
    snprintf(want, sizeof(want), "connect to 127.0.0.1:%u: connection refused", t.port);
    assert_string_equal(g->error, want);
}

static void test_netconn_reports_an_unresolvable_name(void **state)
{
    struct got *g = *state;
    struct net_target t = {.host = "nothing-here.invalid", .port = 443, .tls = true};

    assert_null(connect_to(g, &t, WAIT_MS));
    assert_true(contains(g->error, "cannot resolve nothing-here.invalid: "));
}

/* A listener whose backlog holds our connection but never reads: the ClientHello is
 * never answered. */
static void test_netconn_times_out_when_the_server_is_silent(void **state)
{
    struct got *g = *state;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct net_target t = {.host = "127.0.0.1", .tls = true};
    char want[128];

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    t.port = ntohs(a.sin_port);
    assert_null(connect_to(g, &t, 300));
    snprintf(want, sizeof(want), "connect to 127.0.0.1:%u timed out after 300 ms (TLS handshake)",
             t.port);
    assert_string_equal(g->error, want);
    close(fd);
}

static void test_netconn_cancel_means_no_callback(void **state)
{
    struct got *g = *state;
    struct proc *peer;
    struct net_target t = {.host = "localhost", .tls = true};
    struct net_connect *k;

    peer = peer_start(g, "echo", "leaf", NULL);
    t.port = (uint16_t)peer->port;
    /* At once (resolving), and after some turns of the loop (connecting, handshaking). */
    for (int turns = 0; turns < 6; turns++) {
        assert_int_equal(net_connect_start(g->loop, g->tls, &t, WAIT_MS, on_connected, g, &k), 0);
        for (int i = 0; i < turns; i++)
            uv_run(g->loop, UV_RUN_NOWAIT);
        if (!g->done)
            net_connect_cancel(k);
        else
            conn_free(g);
        g->done = false;
    }
    run_until(g->loop, is_done, g, 100);
    assert_false(g->done);
    proc_stop(peer);
}

/* ---- the stream ---- */

/* The hex SHA-256 of data[0..n) equals the 64 characters after it. */
static void assert_sha256_trailer(const uint8_t *data, size_t n)
{
    unsigned char md[32];
    char hex[65];

    assert_int_equal(EVP_Digest(data, n, md, NULL, EVP_sha256(), NULL), 1);
    for (size_t i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    assert_memory_equal(hex, data + n, 64);
}

/* 8 MiB from the peer, stopping every MiB: nothing comes while stopped, all comes in
 * order (its SHA-256 follows it), then the clean end. */
static void backpressure_case(struct got *g, bool tls)
{
    struct proc *peer;
    struct net_target t = {.host = "127.0.0.1", .tls = tls};
    char n[16];
    unsigned stops = 0;

    snprintf(n, sizeof(n), "%u", BIG);
    peer = peer_start(g, "send", tls ? "leaf" : NULL, "--bytes", n, NULL);
    t.port = (uint16_t)peer->port;
    g->stop_every = g->next_stop = 1 << 20;
    assert_non_null(connect_to(g, &t, WAIT_MS));
    while (!g->closed) {
        assert_true(run_until(g->loop, is_stopped_or_closed, g, WAIT_MS));
        if (!g->stopped)
            break;
        stops++;
        /* A few turns of the loop while stopped: nothing may be delivered. */
        run_until(g->loop, never, NULL, 30);
        assert_false(g->read_while_stopped);
        g->stopped = false;
        net_conn_read_start(g->c);
        net_conn_read_start(g->c); /* repeated: harmless */
    }
    assert_true(stops >= 7);
    assert_true(g->clean); /* TLS: the peer's close_notify */
    assert_int_equal(g->len, BIG + 64);
    assert_sha256_trailer(g->data, BIG);
    conn_free(g);
    proc_stop(peer);
}

static void test_netconn_read_stop_holds_tls_data_until_read_start(void **state)
{
    backpressure_case(*state, true);
}

static void test_netconn_read_stop_holds_plain_data_until_read_start(void **state)
{
    backpressure_case(*state, false);
}

/* A server that accepts and closes at once. */
static void on_accept_and_close(uv_stream_t *server, int status)
{
    uv_tcp_t *client = malloc(sizeof(*client));

    assert_int_equal(status, 0);
    assert_non_null(client);
    uv_tcp_init(server->loop, client);
    assert_int_equal(uv_accept(server, (uv_stream_t *)client), 0);
    uv_close((uv_handle_t *)client, (uv_close_cb)free);
}

static void test_netconn_reports_a_close_during_the_handshake(void **state)
{
    struct got *g = *state;
    struct sockaddr_in a;
    int alen = sizeof(a);
    uv_tcp_t server;
    struct net_target t = {.host = "127.0.0.1", .tls = true};
    char want[128];

    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(g->loop, &server);
    assert_int_equal(uv_tcp_bind(&server, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&server, 8, on_accept_and_close), 0);
    assert_int_equal(uv_tcp_getsockname(&server, (struct sockaddr *)&a, &alen), 0);
    t.port = ntohs(a.sin_port);
    assert_null(connect_to(g, &t, WAIT_MS));
    snprintf(want, sizeof(want),
             "TLS handshake with 127.0.0.1:%u failed: connection closed during the handshake",
             t.port);
    /* A reset instead of an EOF is as good an answer. */
    if (strcmp(g->error, want) != 0) {
        snprintf(want, sizeof(want), "TLS handshake with 127.0.0.1:%u failed: connection reset by peer",
                 t.port);
        assert_string_equal(g->error, want);
    }
    uv_close((uv_handle_t *)&server, NULL);
    uv_run(g->loop, UV_RUN_NOWAIT); /* server lives on this stack: closed before we return */
}

static bool drained(void *arg)
{
    return ((struct got *)arg)->drains > 0;
}

static void test_netconn_write_to_a_slow_reader_queues_then_drains(void **state)
{
    struct got *g = *state;
    struct proc *peer;
    struct net_target t = {.host = "127.0.0.1", .tls = true};
    uint8_t *big = malloc(BIG + 64);
    char n[16];

    assert_non_null(big);
    assert_int_equal(RAND_bytes(big, BIG), 1);
    snprintf(n, sizeof(n), "%u", BIG);
    peer = peer_start(g, "sink", "leaf", "--bytes", n, NULL);
    t.port = (uint16_t)peer->port;
    assert_non_null(connect_to(g, &t, WAIT_MS));
    assert_int_equal(net_conn_pending(g->c), 0);
    write_all(g->c, big, BIG);
    /* The kernel cannot take 8 MiB at once from a reader this slow. */
    assert_true(net_conn_pending(g->c) > (1u << 20));
    assert_true(run_until(g->loop, drained, g, WAIT_MS));
    assert_int_equal(net_conn_pending(g->c), 0);
    wait_bytes(g, 64); /* the sink's hash of what it read */
    memcpy(big + BIG, g->data, 64);
    assert_sha256_trailer(big, BIG);
    conn_free(g);
    free(big);
    proc_stop(peer);
}

static void test_netconn_free_from_inside_on_read(void **state)
{
    struct got *g = *state;
    struct proc *peer;
    struct net_target t = {.host = "127.0.0.1", .tls = true};

    /* 1 MiB: many records in each socket read, so more wait behind the first on_read. */
    peer = peer_start(g, "send", "leaf", "--bytes", "1048576", NULL);
    t.port = (uint16_t)peer->port;
    g->free_on_read = true;
    assert_non_null(connect_to(g, &t, WAIT_MS));
    run_until(g->loop, is_closed, g, 200);
    assert_int_equal(g->reads, 1);
    assert_false(g->closed);
    proc_stop(peer);
}

static void end_case(struct got *g, const char *mode, const char *first, bool clean,
                     const char *reason)
{
    struct proc *peer;
    struct net_target t = {.host = "127.0.0.1", .tls = true};

    peer = peer_start(g, mode, "leaf", NULL);
    t.port = (uint16_t)peer->port;
    assert_non_null(connect_to(g, &t, WAIT_MS));
    assert_true(run_until(g->loop, is_closed, g, WAIT_MS));
    assert_true(g->len >= strlen(first));
    assert_memory_equal(g->data, first, strlen(first));
    assert_int_equal(g->clean, clean);
    assert_true(contains(g->reason, reason));
    assert_int_equal(net_conn_write(g->c, (const uint8_t *)"x", 1), ERR_CLOSED);
    conn_free(g);
    proc_stop(peer);
}

static void test_netconn_eof_without_close_notify_is_a_clean_end(void **state)
{
    end_case(*state, "raw-close", "bye\n", true, "");
}

static void test_netconn_a_record_that_cannot_decrypt_is_an_error(void **state)
{
    struct got *g = *state;

    end_case(g, "garbage", "hi\n", false, "TLS connection to 127.0.0.1:");
    assert_true(contains(g->reason, " failed: "));
}

/* ---- through a proxy ---- */

static void test_netconn_tunnels_through_tinyproxy(void **state)
{
    struct got *g = *state;
    struct proc *peer, *proxy;
    struct net_proxy px = {.host = "127.0.0.1"};
    struct net_target t = {.host = "localhost", .tls = true, .alpn = "h2,http/1.1", .proxy = &px};
    struct net_conn *c;

    peer = peer_start(g, "info", "leaf", "--alpn", "h2", NULL);
    proxy = tinyproxy_start(g, "");
    t.port = (uint16_t)peer->port;
    px.port = (uint16_t)proxy->port;
    assert_non_null(c = connect_to(g, &t, WAIT_MS));
    assert_string_equal(net_conn_alpn(c), "h2");
    wait_bytes(g, 8);
    assert_memory_equal(g->data, "alpn=h2 ", 8);
    conn_free(g);
    proc_stop(proxy);
    proc_stop(peer);
}

static void test_netconn_proxy_credentials_and_407(void **state)
{
    struct got *g = *state;
    struct proc *peer, *proxy;
    struct net_proxy *px;
    struct net_target t = {.host = "127.0.0.1", .tls = true};
    char url[128], want[128];

    peer = peer_start(g, "echo", "leaf", NULL);
    proxy = tinyproxy_start(g, "BasicAuth tester s3cr.t-pw");
    t.port = (uint16_t)peer->port;
    /* Percent-decoded before it is encoded as Basic: "%2E" is the '.'. */
    snprintf(url, sizeof(url), "http://tester:s3cr%%2Et-pw@127.0.0.1:%d/", proxy->port);
    assert_int_equal(net_proxy_from_url(url, &px), 0);
    t.proxy = px;
    assert_non_null(connect_to(g, &t, WAIT_MS));
    write_all(g->c, "through", 7);
    wait_bytes(g, 7);
    conn_free(g);
    net_proxy_free(px);

    /* No credentials: 407. Wrong ones: tinyproxy says 401; the password is never told. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", proxy->port);
    assert_int_equal(net_proxy_from_url(url, &px), 0);
    t.proxy = px;
    assert_null(connect_to(g, &t, WAIT_MS));
    snprintf(want, sizeof(want),
             "proxy CONNECT to 127.0.0.1:%d refused: 407 Proxy Authentication Required",
             peer->port);
    assert_string_equal(g->error, want);
    net_proxy_free(px);
    snprintf(url, sizeof(url), "http://tester:wrong@127.0.0.1:%d", proxy->port);
    assert_int_equal(net_proxy_from_url(url, &px), 0);
    t.proxy = px;
    assert_null(connect_to(g, &t, WAIT_MS));
    snprintf(want, sizeof(want), "proxy CONNECT to 127.0.0.1:%d refused: 40", peer->port);
    assert_true(contains(g->error, want));
    assert_null(strstr(g->error, "wrong"));
    assert_null(strstr(g->error, "dGVzdGVyOndyb25n")); /* nor its Basic form */
    net_proxy_free(px);
    proc_stop(proxy);
    proc_stop(peer);
}

static void test_netconn_proxy_403(void **state)
{
    struct got *g = *state;
    struct proc *proxy;
    struct net_proxy px = {.host = "127.0.0.1"};
    struct net_target t = {.host = "127.0.0.1", .port = 8443, .tls = true, .proxy = &px};

    proxy = tinyproxy_start(g, "ConnectPort 443");
    px.port = (uint16_t)proxy->port;
    assert_null(connect_to(g, &t, WAIT_MS));
    assert_true(contains(g->error, "proxy CONNECT to 127.0.0.1:8443 refused: 403 "));
    proc_stop(proxy);
}

static void test_netconn_reports_a_dead_proxy(void **state)
{
    struct got *g = *state;
    struct net_proxy px = {.host = "127.0.0.1"};
    struct net_target t = {.host = "example.com", .port = 443, .tls = true, .proxy = &px};
    char want[128];

    px.port = (uint16_t)free_port();
    assert_null(connect_to(g, &t, WAIT_MS));
    snprintf(want, sizeof(want), "connect to proxy 127.0.0.1:%u: connection refused", px.port);
    assert_string_equal(g->error, want);
}

/* A fake proxy (the peer's proxy mode) answering answer, for a plain target. */
static void fake_proxy_case(struct got *g, const char *answer, const char *want_error,
                            const char *want_first)
{
    struct proc *proxy;
    struct net_proxy px = {.host = "127.0.0.1"};
    struct net_target t = {.host = "10.0.0.1", .port = 80, .tls = false, .proxy = &px};
    struct net_conn *c;

    proxy = peer_start(g, "proxy", NULL, "--answer", answer, NULL);
    px.port = (uint16_t)proxy->port;
    c = connect_to(g, &t, WAIT_MS);
    if (want_error != NULL) {
        assert_null(c);
        assert_true(contains(g->error, want_error));
    } else {
        assert_non_null(c);
        wait_bytes(g, strlen(want_first));
        assert_memory_equal(g->data, want_first, strlen(want_first));
        write_all(c, "echo", 4);
        wait_bytes(g, strlen(want_first) + 4);
        conn_free(g);
    }
    reset_stream(g);
    proc_stop(proxy);
}

static void test_netconn_proxy_answers_read_strictly(void **state)
{
    struct got *g = *state;
    char big[20000];

    /* Bytes behind the head belong to the tunnel: delivered first. */
    fake_proxy_case(g, "HTTP/1.1 200 Connection established\\r\\nVia: x\\r\\n\\r\\nearly", NULL,
                    "early");
    fake_proxy_case(g, "HTTP/1.0 200 OK\\r\\n\\r\\n", NULL, "");
    fake_proxy_case(g, "SSH-2.0-OpenSSH\\r\\n", "failed: the proxy's answer is not HTTP", NULL);
    fake_proxy_case(g, "HTTP/1.1 200 OK\\nVia: x\\r\\n\\r\\n", "is not HTTP", NULL);
    fake_proxy_case(g, "HTTP/1.1 502 Bad \\x01Gateway\\r\\n\\r\\n", "is not HTTP", NULL);
    fake_proxy_case(g, "HTTP/1.1 502 Bad Gateway\\r\\n\\r\\n",
                    "proxy CONNECT to 10.0.0.1:80 refused: 502 Bad Gateway", NULL);
    fake_proxy_case(g, "", "failed: the proxy closed the connection before answering", NULL);
    snprintf(big, sizeof(big), "HTTP/1.1 200 OK\\r\\nX: %0*d\\r\\n\\r\\n", 17000, 0);
    fake_proxy_case(g, big, "answer is over 16384 bytes", NULL);
}

/* ---- main ---- */

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        T(test_netconn_echoes_over_tls),
        T(test_netconn_echoes_over_plain_tcp),
        T(test_netconn_alpn_picks_h2_when_the_server_offers_it),
        T(test_netconn_alpn_falls_back_to_http11),
        T(test_netconn_sends_sni_for_names_only),
        T(test_netconn_refuses_a_bad_alpn_list),
        T(test_netconn_resumes_the_session_with_tls13),
        T(test_netconn_resumes_the_session_with_tls12),
        T(test_netconn_rejects_a_wrong_host_name),
        T(test_netconn_rejects_an_untrusted_ca),
        T(test_netconn_rejects_an_expired_certificate),
        T(test_netconn_refuses_tls11),
        T(test_netconn_reports_a_refused_connection),
        T(test_netconn_reports_an_unresolvable_name),
        T(test_netconn_times_out_when_the_server_is_silent),
        T(test_netconn_cancel_means_no_callback),
        T(test_netconn_reports_a_close_during_the_handshake),
        T(test_netconn_read_stop_holds_tls_data_until_read_start),
        T(test_netconn_read_stop_holds_plain_data_until_read_start),
        T(test_netconn_write_to_a_slow_reader_queues_then_drains),
        T(test_netconn_free_from_inside_on_read),
        T(test_netconn_eof_without_close_notify_is_a_clean_end),
        T(test_netconn_a_record_that_cannot_decrypt_is_an_error),
        T(test_netconn_tunnels_through_tinyproxy),
        T(test_netconn_proxy_credentials_and_407),
        T(test_netconn_proxy_403),
        T(test_netconn_reports_a_dead_proxy),
        T(test_netconn_proxy_answers_read_strictly),
    };
    char script[512];
    char *certs_argv[] = {"/bin/bash", script, tmp, NULL};
    int r;

    if (argc != 2) {
        fprintf(stderr, "usage: %s PEERS_DIR\n", argv[0]);
        return 2;
    }
    if (access("/usr/bin/python3", X_OK) != 0) {
        fprintf(stderr, "skipped: /usr/bin/python3 missing\n");
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    peers_dir = argv[1];
    snprintf(tmp, sizeof(tmp), "/tmp/test_netconn.XXXXXX");
    if (mkdtemp(tmp) == NULL)
        return 1;
    snprintf(script, sizeof(script), "%s/net_certs.sh", peers_dir);
    {
        struct proc p = {0};
        int status;
        char errfile[128];

        snprintf(errfile, sizeof(errfile), "%s/certs.log", tmp);
        proc_spawn(&p, certs_argv, false, errfile);
        if (waitpid(p.pid, &status, 0) != p.pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "net_certs.sh failed: see %s\n", errfile);
            return 1;
        }
    }
    r = cmocka_run_group_tests(tests, NULL, NULL);
    {
        char *rm[] = {"/bin/rm", "-rf", tmp, NULL};

        run_wait(rm);
    }
    return r;
}
