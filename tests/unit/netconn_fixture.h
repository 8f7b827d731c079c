/*
 * netconn_fixture.h - what tests/unit/test_netconn*.c share: the peers they start (the
 * Python TLS server tests/unit/peers/tls_peer.py, tinyproxy), the certificates made at
 * start (tests/unit/peers/net_certs.sh), a loop per test, and callbacks that record
 * what a connection did. Test code only.
 *
 * Nothing sleeps and no timing is asserted: a test runs the loop until what it waits
 * for has happened (or a generous deadline says it never will). Teardown stops the
 * peers a failed test left, cancels its connect, frees its connection, runs the loop
 * dry and closes it: a handle or a request left behind fails uv_loop_close, and ASan's
 * leak check sees the memory.
 */
#ifndef CREDBROKER_NETCONN_FIXTURE_H
#define CREDBROKER_NETCONN_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>
#include <uv.h>

#include "netconn.h"
#include "peer.h"

#define WAIT_MS 20000
#define BIG (8u << 20)
#define MAX_PROCS 4

struct got {
    uv_loop_t *loop;
    struct net_tls_ctx *tls;
    /* the connect */
    struct net_connect *k; /* under way, or NULL */
    bool done;
    struct net_conn *c; /* the connection, until the test frees it */
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
    size_t promise; /* > 0: on_read tells net_conn_expect what of it is still to come */
    bool stopped, read_while_stopped;
    struct peer procs[MAX_PROCS]; /* stopped by teardown if the test could not */
};

/* Runs the tests with setup/teardown per test, after making the certificates; argv[1]
 * is tests/unit/peers. Returns main's exit code (77: skipped). */
int netconn_fixture_main(int argc, char **argv, const struct CMUnitTest *tests, size_t n);
int setup(void **state);
int teardown(void **state);

/* The Python peer in mode, TLS with certificate name (NULL: plain TCP), more arguments
 * after, NULL-terminated. Stopped by the test (peer_stop) or by teardown. */
struct peer *peer_start(struct got *g, const char *mode, const char *name, ...);
/* tinyproxy on a free port with extra config lines; returns once it listens. */
struct peer *tinyproxy_start(struct got *g, const char *extra);
bool never(void *arg);
bool is_done(void *arg);
bool is_closed(void *arg);
bool is_stopped_or_closed(void *arg);

void on_connected(struct net_conn *c, const char *error, void *ud);
/* Connects to t and waits for the outcome; returns the connection (with the recording
 * events set) or NULL (g->error). */
struct net_conn *connect_to(struct got *g, const struct net_target *t, uint64_t ms);
void conn_free(struct got *g);
void reset_stream(struct got *g);
/* Runs until n bytes came (or the end); asserts they did. */
void wait_bytes(struct got *g, size_t n);
/* Runs until a whole line came; its newline becomes a NUL: g->data is the line. */
void wait_line(struct got *g);
void write_all(struct net_conn *c, const void *data, size_t len);
/* strstr, saying what it missed. */
bool contains(const char *hay, const char *needle);

#endif
