/*
 * h2conn_fixture.h - what test_h2conn.c runs on: a python3-h2 peer it starts
 * (peers/h2_peer.py), a uv_tcp_t to it as the h2conn transport, a queue standing in for
 * the pool, requests whose callbacks record everything, and a loop runner. Test code
 * only.
 */
#ifndef CREDBROKER_TEST_H2CONN_FIXTURE_H
#define CREDBROKER_TEST_H2CONN_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>
#include <uv.h>

#include "peer.h"

#include "h2conn.h"

#define PY "/usr/bin/python3"
#define WAIT_MS 30000
#define MAX_REQS 80

extern const char *peer_script; /* argv[1] of the test */

struct req;

struct fx {
    uv_loop_t loop;
    struct peer peer; /* the python3-h2 peer */
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_timer_t kick; /* resumes request bodies that paused */
    bool connected, eof;
    int connect_status;
    char rbuf[65536];
    struct h2conn *c;
    bool stall;            /* pending() reports the high-water mark: the conn produces nothing */
    bool read_paused;      /* the conn asked the transport to stop feeding it */
    unsigned read_pauses;  /* ... how many times */
    bool read_pause_bad;   /* ... once with other than one stream open */
    bool no_settings_wait; /* fx_open returns before the server's SETTINGS are in */
    int capacity, closed;
    char closed_reason[256];
    struct req *queue[MAX_REQS]; /* the "pool": submitted while available */
    size_t nqueue, qhead, max_active;
    struct req *all[MAX_REQS];
    size_t nall;
};

struct req {
    struct fx *f;
    struct h2_stream *s;
    const char *method, *path;
    const char *const *headers;
    size_t nheaders;
    /* request body: ASCII 'a' + i % 26, in pieces, pausing every third read */
    bool has_body;
    int64_t body_len;
    size_t body_total, body_sent, reads;
    bool want_resume;
    /* what came back */
    int heads, dones, status, result;
    bool retryable, order_bad, pattern_bad;
    char detail[256];
    size_t body_calls, got;
    uint8_t *body; /* kept when keep_body */
    bool keep_body;
    /* behaviour */
    bool slow, released, cancel_in_body, free_in_done, cancelled;
    size_t pauses, paused_len; /* the length on_body paused on: offered again next */
    bool reoffer_bad;
    /* h2conn_due as each body piece came: the most, and whether it ever said more than
     * the stream window or than the response (total bytes, if set) had left */
    size_t total;
    uint64_t due_max;
    bool due_bad;
};

/* The peer (max_streams: its --max-streams, or NULL), a connected h2conn whose first PING
 * was answered (so the server's SETTINGS are in), unless f->no_settings_wait. */
void fx_open(struct fx *f, const char *max_streams);
/* cmocka: a zeroed fixture, and everything closed, killed and freed. */
int setup(void **state);
int teardown(void **state);
/* Runs the loop until cond(f, arg) or WAIT_MS pass; returns cond's last value. */
bool run_until(struct fx *f, bool (*cond)(struct fx *, void *), void *arg);
bool is_done(struct fx *f, void *req);        /* that request had its on_done */
bool all_done(struct fx *f, void *unused);    /* every request done or cancelled */
bool pings_acked(struct fx *f, void *count);  /* at least *(uint64_t *)count */
bool conn_gone(struct fx *f, void *unused);   /* f->c freed (from a callback) */
bool conn_closed(struct fx *f, void *unused); /* on_closed came */
bool none_active(struct fx *f, void *unused);
/* Submits queued requests while h2conn_available() (on_capacity calls it too). */
void pool_pump(struct fx *f);
/* A request (freed by teardown); submit() sends it, start() = keep the body + submit. */
struct req *req_new(struct fx *f, const char *method, const char *path);
void submit(struct req *r);
struct req *start(struct fx *f, const char *method, const char *path);
/* The JSON /echo answered r with (asserts 200); the caller json_decref()s it. */
json_t *echo_doc(struct req *r);
/* The value of the first header named name in an /echo document, or NULL. */
const char *echo_header(json_t *doc, const char *name);

extern const struct h2_stream_ops rq_ops;

#endif
