/*
 * netconn_fixture.c - the peers, loop and recording callbacks of the netconn tests. See
 * netconn_fixture.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>

#include "netconn_fixture.h"

static const char *peers_dir; /* tests/unit/peers */
static char netconn_tmp[64];  /* this run's directory: certificates, logs */

/* ---- processes ---- */

static void run_wait(char *const argv[])
{
    struct peer p = {0};
    int status;
    char errfile[128];

    snprintf(errfile, sizeof(errfile), "%s/spawn.log", netconn_tmp);
    assert_int_equal(peer_spawn(&p, argv, false, errfile), 0);
    assert_int_equal(waitpid(p.pid, &status, 0), p.pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* ---- the fixture: a loop, a TLS context, its processes, what the callbacks saw ---- */

static struct peer *proc_slot(struct got *g)
{
    for (size_t i = 0; i < MAX_PROCS; i++)
        if (g->procs[i].pid == 0)
            return &g->procs[i];
    fail_msg("more than %d processes", MAX_PROCS);
    return NULL;
}

/* The Python peer in mode, TLS with certificate name (NULL: plain TCP), more args after;
 * stopped by the test or by teardown. */
struct peer *peer_start(struct got *g, const char *mode, const char *name, ...)
{
    struct peer *p = proc_slot(g);
    char script[512], cert[128], key[128], errfile[128];
    char *argv[20] = {"/usr/bin/python3", script, (char *)mode};
    size_t n = 3;
    va_list ap;
    const char *a;

    snprintf(script, sizeof(script), "%s/tls_peer.py", peers_dir);
    snprintf(errfile, sizeof(errfile), "%s/peer.log", netconn_tmp);
    if (name == NULL) {
        argv[n++] = "--plain";
    } else {
        snprintf(cert, sizeof(cert), "%s/%s.pem", netconn_tmp, name);
        snprintf(key, sizeof(key), "%s/%s.key", netconn_tmp, name);
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
    assert_int_equal(peer_spawn(p, argv, true, errfile), 0);
    return p;
}

static bool port_open(void *arg)
{
    return peer_port_open(((struct peer *)arg)->port);
}

/* ---- the loop ---- */

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

bool never(void *arg)
{
    (void)arg;
    return false;
}

/* tinyproxy on a free port with extra config lines; waits until it listens. */
struct peer *tinyproxy_start(struct got *g, const char *extra)
{
    struct peer *p = proc_slot(g);
    char conf[128], errfile[128];
    char *argv[] = {"/usr/bin/tinyproxy", "-d", "-c", conf, NULL};
    FILE *f;
    int port;

    if (access("/usr/bin/tinyproxy", X_OK) != 0) {
        fprintf(stderr, "skipped: /usr/bin/tinyproxy missing\n");
        skip();
    }
    snprintf(conf, sizeof(conf), "%s/tinyproxy.conf", netconn_tmp);
    snprintf(errfile, sizeof(errfile), "%s/tinyproxy.log", netconn_tmp);
    /* tinyproxy has no "Port 0": a port the kernel just gave out, then released. */
    port = peer_free_port();
    assert_true(port > 0);
    assert_non_null(f = fopen(conf, "w"));
    fprintf(f,
            "Port %d\nListen 127.0.0.1\nTimeout 30\nMaxClients 20\nAllow 127.0.0.1\n"
            "LogLevel Warning\n%s\n",
            port, extra);
    fclose(f);
    assert_int_equal(peer_spawn(p, argv, false, errfile), 0);
    p->port = port;
    assert_true(peer_run_until(g->loop, port_open, p, WAIT_MS));
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

int setup(void **state)
{
    struct got *g = calloc(1, sizeof(*g));
    char ca[128];

    snprintf(ca, sizeof(ca), "%s/ca.pem", netconn_tmp);
    if (g == NULL || (g->loop = calloc(1, sizeof(uv_loop_t))) == NULL ||
        uv_loop_init(g->loop) != 0 || net_tls_ctx_new(ca, &g->tls) != 0)
        return -1;
    *state = g;
    return 0;
}

int teardown(void **state)
{
    struct got *g = *state;

    /* What a failed test left behind. */
    net_connect_cancel(g->k);
    net_conn_free(g->c);
    for (size_t i = 0; i < MAX_PROCS; i++)
        peer_stop(&g->procs[i]);
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

bool is_done(void *arg)
{
    return ((struct got *)arg)->done;
}

bool is_closed(void *arg)
{
    return ((struct got *)arg)->closed;
}

bool is_stopped_or_closed(void *arg)
{
    return ((struct got *)arg)->stopped || ((struct got *)arg)->closed;
}

void on_connected(struct net_conn *c, const char *error, void *ud)
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
    if (g->promise > 0)
        net_conn_expect(c, g->promise > g->len ? g->promise - g->len : 0);
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

static const struct net_conn_events netconn_events = {on_read, on_drain, on_close};

/* Connects to t and waits for the outcome; returns the connection or NULL (g->error). */
struct net_conn *connect_to(struct got *g, const struct net_target *t, uint64_t ms)
{
    struct net_connect *k;

    g->done = false;
    g->c = NULL;
    assert_int_equal(net_connect_start(g->loop, g->tls, t, ms, on_connected, g, &k), 0);
    assert_non_null(k);
    g->k = k;
    assert_true(peer_run_until(g->loop, is_done, g, WAIT_MS));
    if (g->c != NULL)
        net_conn_set_events(g->c, &netconn_events, g);
    return g->c;
}

void conn_free(struct got *g)
{
    net_conn_free(g->c);
    g->c = NULL;
}

void reset_stream(struct got *g)
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
void wait_bytes(struct got *g, size_t n)
{
    struct want w = {g, n};

    assert_true(peer_run_until(g->loop, has_bytes, &w, WAIT_MS));
    assert_true(g->len >= n);
}

static bool has_line(void *arg)
{
    struct got *g = arg;

    return (g->len > 0 && memchr(g->data, '\n', g->len) != NULL) || g->closed;
}

/* Runs until a whole line came; its newline becomes a NUL: g->data is the line. */
void wait_line(struct got *g)
{
    uint8_t *nl;

    assert_true(peer_run_until(g->loop, has_line, g, WAIT_MS));
    assert_non_null(nl = memchr(g->data, '\n', g->len));
    *nl = '\0';
}

void write_all(struct net_conn *c, const void *data, size_t len)
{
    assert_int_equal(net_conn_write(c, data, len), 0);
}

bool contains(const char *hay, const char *needle)
{
    if (strstr(hay, needle) != NULL)
        return true;
    fprintf(stderr, "\"%s\" not in \"%s\"\n", needle, hay);
    return false;
}

int netconn_fixture_main(int argc, char **argv, const struct CMUnitTest *tests, size_t n)
{
    char script[512], errfile[128];
    char *certs_argv[] = {"/bin/bash", script, netconn_tmp, NULL};
    char *rm[] = {"/bin/rm", "-rf", netconn_tmp, NULL};
    struct peer p = {0};
    int status, r;

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
    snprintf(netconn_tmp, sizeof(netconn_tmp), "/tmp/test_netconn.XXXXXX");
    if (mkdtemp(netconn_tmp) == NULL)
        return 1;
    snprintf(script, sizeof(script), "%s/net_certs.sh", peers_dir);
    snprintf(errfile, sizeof(errfile), "%s/certs.log", netconn_tmp);
    assert_int_equal(peer_spawn(&p, certs_argv, false, errfile), 0);
    if (waitpid(p.pid, &status, 0) != p.pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "net_certs.sh failed: see %s\n", errfile);
        return 1;
    }
    r = _cmocka_run_group_tests(argv[0], tests, n, NULL, NULL);
    run_wait(rm);
    return r;
}
