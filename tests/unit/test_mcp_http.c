/*
 * Unit tests for src/runner/mcp_http.c, on a real libuv loop against real servers the
 * test starts itself:
 *
 *   - the MCP reference server @modelcontextprotocol/server-everything (tools/mcp, npm
 *     ci by scripts/deps), in its Streamable HTTP mode and its legacy SSE mode; these
 *     tests skip when node or the package is missing;
 *   - mcp_http_peer.py, a Python stdlib peer that records what it got and misbehaves
 *     on purpose (see its docstring for the paths).
 *
 * The JSON-RPC is written by hand: the transport carries bytes. Nothing sleeps: the
 * loop runs until a condition holds or a deadline passes.
 *
 * argv[1]: mcp_http_peer.py; argv[2]: server-everything's dist/index.js.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include "err.h"
#include "mcp_http.h"
#include "peer.h"
#include "webproxy.h"

extern char **environ;

#define MAX_MSGS 16
#define WAIT_MS 20000

static const char *peer_script, *everything_js;

#define INITIALIZE                                                                                 \
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"                         \
    "\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},"                                      \
    "\"clientInfo\":{\"name\":\"flashduty-runner\",\"version\":\"1.0.0\"}}}"
#define INITIALIZED "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}"
#define TOOLS_LIST "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}"

/* ---- servers ---- */

/* The Python peer, over HTTPS with cert and key (else NULL): it prints its port first. */
static int peer_start(struct peer *s, const char *cert, const char *key)
{
    char *argv[] = {"/usr/bin/python3", (char *)peer_script, (char *)cert, (char *)key, NULL};

    return peer_spawn(s, argv, true, NULL);
}

static bool server_listening(void *arg)
{
    return peer_port_open(((struct peer *)arg)->port);
}

/* server-everything in mode ("streamableHttp" or "sse"), its stdout into log (NULL:
 * /dev/null); skips without node or it. */
static void everything_start(uv_loop_t *loop, struct peer *s, const char *mode, const char *log)
{
    char port_env[32];
    char *argv[] = {"node", (char *)everything_js, (char *)mode, NULL};
    char **envp;
    size_t n = 0, i;
    posix_spawn_file_actions_t fa;

    if (access(everything_js, R_OK) != 0) {
        fprintf(stderr, "skipped: %s missing (scripts/deps installs it)\n", everything_js);
        skip();
    }
    while (environ[n] != NULL)
        n++;
    envp = calloc(n + 2, sizeof(char *));
    assert_non_null(envp);
    for (i = 0; i < n; i++)
        envp[i] = environ[i];
    s->port = peer_free_port();
    assert_true(s->port > 0);
    snprintf(port_env, sizeof(port_env), "PORT=%d", s->port);
    envp[n] = port_env;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log != NULL ? log : "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    if (posix_spawnp(&s->pid, "node", &fa, NULL, argv, envp) != 0) {
        s->pid = 0;
        posix_spawn_file_actions_destroy(&fa);
        free(envp);
        fprintf(stderr, "skipped: node cannot be run\n");
        skip();
    }
    posix_spawn_file_actions_destroy(&fa);
    free(envp);
    assert_true(peer_run_until(loop, server_listening, s, WAIT_MS));
}

/* ---- the transport's events, recorded ---- */

struct rec {
    uv_loop_t *loop;
    struct mcp_http *t;
    char *msgs[MAX_MSGS];
    size_t nmsgs;
    bool closed;
    char reason[512];
    bool close_on_message; /* mcp_http_close from inside on_message */
};

static void on_message(struct mcp_http *t, const char *msg, size_t len, void *data)
{
    struct rec *r = data;

    assert_ptr_equal(t, r->t);
    assert_false(r->closed); /* never after on_closed */
    assert_true(r->nmsgs < MAX_MSGS);
    r->msgs[r->nmsgs] = strndup(msg, len);
    assert_non_null(r->msgs[r->nmsgs]);
    assert_int_equal(strlen(r->msgs[r->nmsgs]), len);
    r->nmsgs++;
    if (r->close_on_message) {
        mcp_http_close(t);
        r->t = NULL;
    }
}

static void on_closed(struct mcp_http *t, const char *reason, void *data)
{
    struct rec *r = data;

    assert_ptr_equal(t, r->t);
    assert_false(r->closed); /* once */
    assert_null(strchr(reason, '\n'));
    r->closed = true;
    snprintf(r->reason, sizeof(r->reason), "%s", reason);
}

static const struct mcp_http_events events = {on_message, on_closed};

struct fixture {
    uv_loop_t loop;
    struct peer peer;   /* the Python peer, for every test */
    struct peer server; /* server-everything, when a test starts it */
    struct rec rec;
    char url[256];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL || uv_loop_init(&f->loop) != 0 || peer_start(&f->peer, NULL, NULL) != 0)
        return -1;
    f->rec.loop = &f->loop;
    *state = f;
    return 0;
}

static void rec_clear(struct rec *r)
{
    for (size_t i = 0; i < r->nmsgs; i++)
        free(r->msgs[i]);
    r->nmsgs = 0;
    r->closed = false;
    r->reason[0] = '\0';
}

/* Closes the transport and runs the loop dry: the DELETE, if any, and every handle. */
static void finish(struct fixture *f)
{
    if (f->rec.t != NULL)
        mcp_http_close(f->rec.t);
    f->rec.t = NULL;
    uv_run(&f->loop, UV_RUN_DEFAULT);
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    finish(f);
    rec_clear(&f->rec);
    peer_stop(&f->peer);
    peer_stop(&f->server);
    assert_int_equal(uv_loop_close(&f->loop), 0); /* no handle left behind */
    free(f);
    return 0;
}

/* Starts a transport to path on the Python peer (or to url when path is NULL). */
static void open_transport(struct fixture *f, const char *path, const struct mcp_http_options *base)
{
    struct mcp_http_options o = base != NULL ? *base : (struct mcp_http_options){0};
    char err[256];

    if (path != NULL)
        snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d%s", f->peer.port, path);
    o.url = f->url;
    assert_int_equal(mcp_http_start(&f->loop, &o, &events, &f->rec, &f->rec.t, err, sizeof(err)),
                     0);
}

static void send_text(struct fixture *f, const char *text)
{
    assert_int_equal(mcp_http_send(f->rec.t, text, strlen(text)), 0);
}

static size_t cond_n;

static bool has_n_messages(void *arg)
{
    struct rec *r = arg;

    return r->nmsgs >= cond_n || r->closed;
}

static bool is_closed(void *arg)
{
    return ((struct rec *)arg)->closed;
}

/* Runs until n messages came in all (or the transport closed); asserts the count. */
static void wait_messages(struct fixture *f, size_t n)
{
    cond_n = n;
    peer_run_until(&f->loop, has_n_messages, &f->rec, WAIT_MS);
    if (f->rec.closed)
        fprintf(stderr, "closed: %s\n", f->rec.reason);
    assert_false(f->rec.closed);
    assert_int_equal(f->rec.nmsgs, n);
}

static void wait_closed(struct fixture *f, const char *reason_part)
{
    assert_true(peer_run_until(&f->loop, is_closed, &f->rec, WAIT_MS));
    if (strstr(f->rec.reason, reason_part) == NULL)
        fprintf(stderr, "reason: %s\n", f->rec.reason);
    assert_non_null(strstr(f->rec.reason, reason_part));
}

/* The message among those received that holds needle, or NULL. */
static const char *find_message(const struct rec *r, const char *needle)
{
    for (size_t i = 0; i < r->nmsgs; i++) {
        if (strstr(r->msgs[i], needle) != NULL)
            return r->msgs[i];
    }
    return NULL;
}

/* ---- against server-everything ---- */

static const char *cond_needle;

static bool has_message_with(void *arg)
{
    struct rec *r = arg;

    return find_message(r, cond_needle) != NULL || r->closed;
}

/* Runs until a message holding needle came (servers may send notifications of their own
 * in between); returns it. */
static const char *wait_message_with(struct fixture *f, const char *needle)
{
    cond_needle = needle;
    peer_run_until(&f->loop, has_message_with, &f->rec, WAIT_MS);
    if (f->rec.closed)
        fprintf(stderr, "closed: %s\n", f->rec.reason);
    assert_false(f->rec.closed);
    assert_non_null(find_message(&f->rec, needle));
    return find_message(&f->rec, needle);
}

/* initialize, notifications/initialized (202, nothing back), tools/list. */
static void handshake_and_list_tools(struct fixture *f)
{
    const char *m;

    send_text(f, INITIALIZE);
    m = wait_message_with(f, "\"id\":1");
    assert_non_null(strstr(m, "\"protocolVersion\""));
    mcp_http_set_protocol_version(f->rec.t, "2025-06-18");
    send_text(f, INITIALIZED);
    send_text(f, TOOLS_LIST);
    m = wait_message_with(f, "\"id\":2");
    assert_non_null(strstr(m, "\"tools\""));
    assert_non_null(strstr(m, "\"name\":\"echo\""));
}

static char log_path[64], log_needle[1200];

/* The server's log holds log_needle. */
static bool log_has_needle(void *arg)
{
    char text[65536];
    FILE *fp = fopen(log_path, "r");
    size_t n = fp != NULL ? fread(text, 1, sizeof(text) - 1, fp) : 0;

    (void)arg;
    if (fp != NULL)
        fclose(fp);
    text[n] = '\0';
    return strstr(text, log_needle) != NULL;
}

static void test_mcp_http_streamable_round_trip_with_server_everything(void **state)
{
    struct fixture *f = *state;
    int fd;

    snprintf(log_path, sizeof(log_path), "/tmp/test_mcp_http.log.XXXXXX");
    assert_true((fd = mkstemp(log_path)) >= 0);
    close(fd);
    everything_start(&f->loop, &f->server, "streamableHttp", log_path);
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d/mcp", f->server.port);
    open_transport(f, NULL, NULL);
    handshake_and_list_tools(f);
    assert_false(mcp_http_is_legacy(f->rec.t));
    /* The server issued a session id, and tools/list only works when it is sent back
     * (server-everything answers 400 otherwise). */
    assert_non_null(mcp_http_session_id(f->rec.t));
    snprintf(log_needle, sizeof(log_needle), "Received session termination request for session %s",
             mcp_http_session_id(f->rec.t));
    /* The close's DELETE ends the session on the server. */
    finish(f);
    assert_true(peer_run_until(&f->loop, log_has_needle, NULL, WAIT_MS));
    unlink(log_path);
}

static void test_mcp_http_falls_back_to_legacy_sse_with_server_everything(void **state)
{
    struct fixture *f = *state;

    everything_start(&f->loop, &f->server, "sse", NULL);
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d/sse", f->server.port);
    open_transport(f, NULL, NULL);
    handshake_and_list_tools(f);
    assert_true(mcp_http_is_legacy(f->rec.t));
    assert_null(mcp_http_session_id(f->rec.t));
}

/* ---- against the Python peer ---- */

/* An initialize to path on the Python peer ends in on_closed with reason_part, and no
 * message comes before it. */
static void closes_after_initialize(struct fixture *f, const char *path, const char *reason_part)
{
    open_transport(f, path, NULL);
    send_text(f, INITIALIZE);
    wait_closed(f, reason_part);
    assert_int_equal(f->rec.nmsgs, 0);
}

static void test_mcp_http_sends_headers_session_id_and_protocol_version(void **state)
{
    struct fixture *f = *state;
    char *names[] = {"X-Api-Key", "X-Empty", "Accept"};
    char *values[] = {"k-123", "", "text/html"};
    struct mcp_http_options o = {.header_names = names, .header_values = values, .nheaders = 3};
    const char *m;

    open_transport(f, "/echo", &o);
    send_text(f, INITIALIZE);
    wait_messages(f, 1);
    assert_null(strstr(f->rec.msgs[0], "mcp-session-id")); /* not issued yet */
    assert_string_equal(mcp_http_session_id(f->rec.t), "sess-1");
    mcp_http_set_protocol_version(f->rec.t, "2025-06-18");
    mcp_http_set_protocol_version(f->rec.t, "bad\r\nX-Injected: 1"); /* ignored */
    send_text(f, TOOLS_LIST);
    wait_messages(f, 2);
    m = f->rec.msgs[1];
    assert_non_null(strstr(m, "\"mcp-session-id\": \"sess-1\""));
    assert_non_null(strstr(m, "\"mcp-protocol-version\": \"2025-06-18\""));
    assert_non_null(strstr(m, "\"x-api-key\": \"k-123\""));
    assert_non_null(strstr(m, "\"x-empty\": \"\""));
    assert_non_null(strstr(m, "\"accept\": \"application/json, text/event-stream\""));
    assert_non_null(strstr(m, "\"content-type\": \"application/json\""));
    assert_null(strstr(m, "x-injected"));
    assert_non_null(strstr(m, "tools/list"));
}

static void test_mcp_http_close_sends_delete_with_the_session_id(void **state)
{
    struct fixture *f = *state;

    open_transport(f, "/echo", NULL);
    send_text(f, INITIALIZE);
    wait_messages(f, 1);
    finish(f); /* runs until the DELETE is answered */
    rec_clear(&f->rec);
    open_transport(f, "/deletes", NULL);
    send_text(f, "{}");
    wait_messages(f, 1);
    assert_string_equal(f->rec.msgs[0], "[{\"path\": \"/echo\", \"session\": \"sess-1\"}]");
}

static void test_mcp_http_reads_every_event_of_an_sse_answer(void **state)
{
    struct fixture *f = *state;

    open_transport(f, "/sse-echo", NULL);
    send_text(f, INITIALIZE);
    wait_messages(f, 2); /* the priming event and the comment give nothing */
    assert_string_equal(f->rec.msgs[0], "{\"jsonrpc\":\"2.0\",\"method\":\"n\"}");
    assert_string_equal(f->rec.msgs[1], "{\"jsonrpc\":\"2.0\",\n\"id\":1,\"result\":{}}");
    /* The stream ended after the last event: no failure. */
    assert_false(peer_run_until(&f->loop, is_closed, &f->rec, 200));
}

static void test_mcp_http_carries_concurrent_posts(void **state)
{
    struct fixture *f = *state;
    char msg[64];

    open_transport(f, "/echo", NULL);
    for (int i = 0; i < 6; i++) {
        snprintf(msg, sizeof(msg), "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"m%d\"}", i, i);
        send_text(f, msg);
    }
    wait_messages(f, 6);
    for (int i = 0; i < 6; i++) {
        snprintf(msg, sizeof(msg), "\\\"method\\\":\\\"m%d\\\"", i);
        assert_non_null(find_message(&f->rec, msg));
    }
}

/* A session id must be visible ASCII (the MCP specification); an empty one is none. */
static void test_mcp_http_checks_the_session_id_it_is_issued(void **state)
{
    struct fixture *f = *state;

    open_transport(f, "/session/", NULL);
    send_text(f, INITIALIZE);
    wait_messages(f, 1);
    assert_null(mcp_http_session_id(f->rec.t));
    finish(f);
    rec_clear(&f->rec);
    closes_after_initialize(f, "/session/a%20b", "the server issued an invalid Mcp-Session-Id");
}

static void test_mcp_http_closes_on_a_500(void **state)
{
    struct fixture *f = *state;

    open_transport(f, "/fail500", NULL);
    send_text(f, INITIALIZE);
    wait_closed(f, "HTTP 500 on a POST: internal failure");
    assert_int_equal(f->rec.nmsgs, 0);
    assert_int_equal(mcp_http_send(f->rec.t, "{}", 2), ERR_CLOSED);
}

static void test_mcp_http_legacy_stream_without_endpoint_closes_when_it_ends(void **state)
{
    struct fixture *f = *state;

    open_transport(f, "/noendpoint", NULL);
    send_text(f, INITIALIZE);
    send_text(f, TOOLS_LIST); /* waits for the endpoint that never comes */
    wait_closed(f, "the legacy SSE stream ended");
    assert_true(mcp_http_is_legacy(f->rec.t));
    assert_int_equal(f->rec.nmsgs, 0);
}

static void test_mcp_http_says_both_statuses_when_post_and_get_are_refused(void **state)
{
    struct fixture *f = *state;

    closes_after_initialize(
        f, "/nowhere",
        "the server refused the Streamable HTTP POST (HTTP 404) and the legacy SSE "
        "GET (HTTP 404): unknown path");
}

static void test_mcp_http_refuses_an_endpoint_on_another_origin(void **state)
{
    struct fixture *f = *state;

    closes_after_initialize(f, "/evil", "endpoint is on another origin");
}

static void test_mcp_http_closes_on_a_stream_cut_inside_an_event(void **state)
{
    struct fixture *f = *state;

    closes_after_initialize(f, "/cut", "cut inside an event");
}

/* A POST's answer stream cut after an event with an id is picked up with GET and
 * Last-Event-ID (RUNNER-OPS.md 9.2; the first try comes after 1 s). */
static void test_mcp_http_resumes_a_broken_answer_stream(void **state)
{
    struct fixture *f = *state;

    open_transport(f, "/resume", NULL);
    send_text(f, INITIALIZE);
    wait_messages(f, 2);
    assert_string_equal(f->rec.msgs[0], "{\"jsonrpc\":\"2.0\",\"method\":\"progress\"}");
    assert_string_equal(f->rec.msgs[1], "{\"jsonrpc\": \"2.0\", \"id\": 1, \"result\": "
                                        "{\"last_event_id\": \"e1\", \"session\": \"sess-r\"}}");
}

/* Each resumption that breaks again is resumed, 5 times at most (after 1, 1.5, 2.25, 3.4
 * and 5.1 s), each with the id of the last event that came; then the transport closes. */
static void test_mcp_http_resumes_at_most_five_times(void **state)
{
    struct fixture *f = *state;

    open_transport(f, "/resumecut", NULL);
    send_text(f, INITIALIZE);
    wait_closed(f, "resuming an answer stream's event stream was cut inside an event");
    assert_int_equal(f->rec.nmsgs, 6);
    assert_string_equal(f->rec.msgs[1], "\"e1\"");
    assert_string_equal(f->rec.msgs[5], "\"e1++++\"");
}

static void test_mcp_http_closes_when_a_resumption_is_refused(void **state)
{
    struct fixture *f = *state;

    open_transport(f, "/resume405", NULL);
    send_text(f, INITIALIZE);
    wait_closed(f, "HTTP 405 on resuming an answer stream: no GET here");
    assert_int_equal(f->rec.nmsgs, 1); /* the event before the cut still came */
}

static void test_mcp_http_closes_on_a_json_answer_over_the_limit(void **state)
{
    struct fixture *f = *state;

    closes_after_initialize(
        f, "/huge", "a JSON answer over the 16777216-byte message limit"); /* 20 MiB against the
                                                                              default 16 MiB */
}

static void test_mcp_http_closes_on_a_garbage_content_type(void **state)
{
    struct fixture *f = *state;

    closes_after_initialize(f, "/garbage", "came as 'text/html', not JSON or an event stream");
}

static void test_mcp_http_does_not_follow_redirects(void **state)
{
    struct fixture *f = *state;

    closes_after_initialize(f, "/redirect", "HTTP 307 on a POST");
}

static void test_mcp_http_closes_when_nothing_listens(void **state)
{
    struct fixture *f = *state;

    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d/mcp", peer_free_port());
    open_transport(f, NULL, NULL);
    send_text(f, INITIALIZE);
    wait_closed(f, "a POST failed: ");
}

static void test_mcp_http_may_be_closed_from_on_message(void **state)
{
    struct fixture *f = *state;

    f->rec.close_on_message = true;
    open_transport(f, "/sse-echo", NULL);
    send_text(f, INITIALIZE);
    cond_n = 1;
    peer_run_until(&f->loop, has_n_messages, &f->rec, WAIT_MS);
    uv_run(&f->loop, UV_RUN_DEFAULT); /* nothing more comes, and everything ends */
    assert_int_equal(f->rec.nmsgs, 1);
    assert_false(f->rec.closed);
}

static char proxy_env[64];

static const char *proxy_getenv(const char *name)
{
    return strcmp(name, "HTTP_PROXY") == 0 ? proxy_env : NULL;
}

/* HTTP_PROXY as webfetch reads it: the request goes to the proxy, in absolute form. */
static void test_mcp_http_goes_through_the_configured_proxy(void **state)
{
    struct fixture *f = *state;
    struct webproxy proxy;
    struct mcp_http_options o = {.proxy = &proxy};

    snprintf(proxy_env, sizeof(proxy_env), "http://127.0.0.1:%d", f->peer.port);
    assert_int_equal(webproxy_init(&proxy, proxy_getenv), 0);
    snprintf(f->url, sizeof(f->url), "http://mcp.example.invalid:8080/echo?x=1");
    open_transport(f, NULL, &o);
    send_text(f, INITIALIZE);
    wait_messages(f, 1);
    assert_non_null(
        strstr(f->rec.msgs[0], "\"target\": \"http://mcp.example.invalid:8080/echo?x=1\""));
    finish(f);
    webproxy_free(&proxy);
}

/* Runs argv to its end; true when it exited 0. Its output goes to /dev/null. */
static bool run_program(char *const argv[])
{
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int status = -1;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) == 0)
        waitpid(pid, &status, 0);
    posix_spawn_file_actions_destroy(&fa);
    return status == 0;
}

/* HTTPS: the server's certificate is checked against cacert (a self-signed one for
 * 127.0.0.1 here), refused without it, and accepted unchecked with tls_skip_verify. */
static void test_mcp_http_verifies_tls_unless_told_not_to(void **state)
{
    struct fixture *f = *state;
    char dir[] = "/tmp/test_mcp_http.XXXXXX", cert[64], key[64];
    struct mcp_http_options o = {0};

    assert_non_null(mkdtemp(dir));
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    char *req[] = {"openssl",
                   "req",
                   "-x509",
                   "-newkey",
                   "ec",
                   "-pkeyopt",
                   "ec_paramgen_curve:P-256",
                   "-nodes",
                   "-keyout",
                   key,
                   "-out",
                   cert,
                   "-days",
                   "1",
                   "-subj",
                   "/CN=127.0.0.1",
                   "-addext",
                   "subjectAltName=IP:127.0.0.1",
                   NULL};
    assert_true(run_program(req));
    assert_int_equal(peer_start(&f->server, cert, key), 0);
    snprintf(f->url, sizeof(f->url), "https://127.0.0.1:%d/echo", f->server.port);

    o.cacert = cert;
    open_transport(f, NULL, &o);
    send_text(f, INITIALIZE);
    wait_messages(f, 1);
    finish(f);
    rec_clear(&f->rec);

    o.cacert = NULL; /* the system's CAs do not know it */
    open_transport(f, NULL, &o);
    send_text(f, INITIALIZE);
    wait_closed(f, "a POST failed: SSL certificate problem");
    finish(f);
    rec_clear(&f->rec);

    o.tls_skip_verify = true;
    open_transport(f, NULL, &o);
    send_text(f, INITIALIZE);
    wait_messages(f, 1);

    unlink(cert);
    unlink(key);
    rmdir(dir);
}

static void test_mcp_http_refuses_bad_options_and_sizes(void **state)
{
    struct fixture *f = *state;
    char *names[] = {"Bad Name"}, *values[] = {"v"};
    char *names2[] = {"X-Ok"}, *values2[] = {"a\r\nX-Evil: 1"};
    struct mcp_http_options o = {.url = "ftp://127.0.0.1/x"};
    struct mcp_http *t = NULL;
    char err[256];

    assert_int_equal(mcp_http_start(&f->loop, &o, &events, &f->rec, &t, err, sizeof(err)),
                     ERR_INVALID);
    assert_null(t);
    assert_non_null(strstr(err, "http:// or https://"));
    o.url = "http://127.0.0.1/x";
    o.header_names = names;
    o.header_values = values;
    o.nheaders = 1;
    assert_int_equal(mcp_http_start(&f->loop, &o, &events, &f->rec, &t, err, sizeof(err)),
                     ERR_INVALID);
    assert_non_null(strstr(err, "invalid header name 'Bad Name'"));
    o.header_names = names2;
    o.header_values = values2;
    assert_int_equal(mcp_http_start(&f->loop, &o, &events, &f->rec, &t, err, sizeof(err)),
                     ERR_INVALID);
    assert_non_null(strstr(err, "control character"));
    o.nheaders = 0;
    o.max_message_bytes = 8;
    assert_int_equal(mcp_http_start(&f->loop, &o, &events, &f->rec, &f->rec.t, err, sizeof(err)),
                     0);
    assert_int_equal(mcp_http_send(f->rec.t, "123456789", 9), ERR_TOO_LARGE);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_mcp_http_streamable_round_trip_with_server_everything),
        T(test_mcp_http_falls_back_to_legacy_sse_with_server_everything),
        T(test_mcp_http_sends_headers_session_id_and_protocol_version),
        T(test_mcp_http_close_sends_delete_with_the_session_id),
        T(test_mcp_http_reads_every_event_of_an_sse_answer),
        T(test_mcp_http_carries_concurrent_posts),
        T(test_mcp_http_checks_the_session_id_it_is_issued),
        T(test_mcp_http_closes_on_a_500),
        T(test_mcp_http_legacy_stream_without_endpoint_closes_when_it_ends),
        T(test_mcp_http_says_both_statuses_when_post_and_get_are_refused),
        T(test_mcp_http_refuses_an_endpoint_on_another_origin),
        T(test_mcp_http_closes_on_a_stream_cut_inside_an_event),
        T(test_mcp_http_resumes_a_broken_answer_stream),
        T(test_mcp_http_resumes_at_most_five_times),
        T(test_mcp_http_closes_when_a_resumption_is_refused),
        T(test_mcp_http_closes_on_a_json_answer_over_the_limit),
        T(test_mcp_http_closes_on_a_garbage_content_type),
        T(test_mcp_http_does_not_follow_redirects),
        T(test_mcp_http_closes_when_nothing_listens),
        T(test_mcp_http_may_be_closed_from_on_message),
        T(test_mcp_http_goes_through_the_configured_proxy),
        T(test_mcp_http_verifies_tls_unless_told_not_to),
        T(test_mcp_http_refuses_bad_options_and_sizes),
#undef T
    };

    if (argc < 3) {
        fprintf(stderr, "usage: %s mcp_http_peer.py server-everything/dist/index.js\n", argv[0]);
        return 1;
    }
    peer_script = argv[1];
    everything_js = argv[2];
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
