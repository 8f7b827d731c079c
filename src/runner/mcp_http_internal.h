/*
 * mcp_http_internal.h - what the two halves of the MCP client's HTTP transport share:
 * mcp_http.c (requests, the legacy endpoint, the loop side, the interface) and
 * mcp_http_answer.c (reading an answer: its head, its JSON or SSE body, the resumption of
 * a broken answer stream, the end of a transfer). Nothing else includes it.
 */
#ifndef CREDBROKER_MCP_HTTP_INTERNAL_H
#define CREDBROKER_MCP_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <uv.h>

#include "curl_api.h"
#include "httpc.h"
#include "mcp_http.h"

struct buf;
struct sse_parser;
struct webproxy;

#define MCP_HTTP_REASON_MAX 256
#define MCP_HTTP_SNIPPET_MAX 160 /* of an error answer's body, for the reason */
#define MCP_HTTP_SESSION_ID_MAX 1024
#define MCP_HTTP_CTYPE_MAX 128
#define MCP_HTTP_VERSION_MAX 64   /* an MCP-Protocol-Version value */
#define MCP_HTTP_EVENT_ID_MAX 256 /* a Last-Event-ID we resume with */
/* RUNNER-OPS.md 9.2 and 12 (go-sdk's values): a broken answer stream is resumed at most
 * 5 times, after 1 s, then 1.5 times longer each time, at most 30 s. */
#define MCP_HTTP_RESUME_TRIES 5
#define MCP_HTTP_RESUME_FIRST_MS 1000
#define MCP_HTTP_RESUME_MAX_MS 30000

enum mcp_mode {
    MODE_PROBE, /* the first POST is out: Streamable HTTP or legacy is not known */
    MODE_STREAMABLE,
    MODE_LEGACY_WAIT, /* the GET stream is open; its endpoint event has not come */
    MODE_LEGACY,
};

/* REQ_GET is the legacy stream; REQ_RESUME a GET with Last-Event-ID that resumes a POST's
 * broken answer stream (MCP 2025-06-18, "Resumability and Redelivery"). */
enum mcp_req_kind { REQ_POST, REQ_GET, REQ_RESUME, REQ_DELETE };

/* What the body of the answer being read is. */
enum mcp_body {
    BODY_UNEXPECTED, /* a 2xx in a content type we cannot read: any body byte fails */
    BODY_JSON,
    BODY_SSE,
    BODY_IGNORE, /* 202, a legacy POST's "Accepted", a DELETE's answer */
    BODY_ERROR,  /* a non-2xx: its start goes into the reason */
};

struct mcp_msg {
    STAILQ_ENTRY(mcp_msg) link;
    size_t len;
    char data[]; /* len bytes, then a NUL (CURLOPT_POSTFIELDS does not need it) */
};
STAILQ_HEAD(mcp_msgq, mcp_msg);

struct mcp_req {
    struct mcp_http *t;
    LIST_ENTRY(mcp_req) link;
    enum mcp_req_kind kind;
    bool probe;    /* the first POST: a 4xx means legacy */
    bool fallback; /* it got that 4xx */
    bool failed;   /* the transport failed in one of its callbacks */
    struct httpc_xfer *xfer;
    CURL *easy;
    struct curl_slist *headers;
    struct mcp_msg *msg;            /* a POST's body */
    long status;                    /* of the answer whose head is being read */
    char ctype[MCP_HTTP_CTYPE_MAX]; /* its media type, lower case, "" if none */
    enum mcp_body body;
    struct buf *json;       /* BODY_JSON */
    struct sse_parser *sse; /* BODY_SSE */
    char snippet[MCP_HTTP_SNIPPET_MAX];
    size_t snippet_len;
    /* REQ_RESUME */
    char *last_event_id;
    unsigned tries; /* resumptions of this answer so far, this one included */
    long retry_ms;  /* the latest SSE retry of this answer's streams, -1 if none */
    bool waiting;   /* not started: due is when */
    uint64_t due;
};

struct mcp_http {
    uv_loop_t *loop;
    struct mcp_http_events ev;
    void *data;
    char *url;
    char *post_url;      /* legacy: the endpoint; else NULL (url) */
    char **header_lines; /* "Name: value", or "Name;" for an empty value */
    size_t nheaders;
    bool skip_verify;
    char *cacert;
    const struct webproxy *proxy;
    size_t max;
    uint64_t connect_timeout_ms;
    struct httpc *client;
    LIST_HEAD(, mcp_req) reqs;
    struct mcp_msgq pending; /* to POST once the mode allows */
    struct mcp_msgq inbox;   /* received, for on_message */
    enum mcp_mode mode;
    bool probe_sent;
    long probe_status; /* the 4xx that made it fall back to legacy */
    char *session_id;
    char *protocol_version;
    uv_timer_t kick;
    uv_timer_t resume_timer; /* starts the waiting REQ_RESUMEs */
    unsigned open_handles;   /* the two timers, until closed */
    bool broken;             /* reason holds why; on_closed is due or done */
    bool closed_told;
    bool closing; /* mcp_http_close ran: no more callbacks */
    char reason[MCP_HTTP_REASON_MAX];
};

/* mcp_http.c */

/* Visible ASCII only: what may go into a header value we build. */
bool mcp__is_visible_ascii(const char *s, size_t n);
/* Schedules the kick: deliveries and failures reach the caller from a loop turn. */
void mcp__kick(struct mcp_http *t);
/* The transport is broken: the first reason stands. Safe inside libcurl's callbacks. */
void mcp__fail(struct mcp_http *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A received message, for on_message from the kick. Safe inside libcurl's callbacks. */
bool mcp__receive(struct mcp_http *t, const char *data, size_t len);
void mcp__req_free(struct mcp_req *r);
/* A request of kind on t's list, not started (a POST takes msg); NULL: t failed. */
struct mcp_req *mcp__req_new(struct mcp_http *t, enum mcp_req_kind kind, struct mcp_msg *msg);
/* Starts r to url. False: r is freed and the transport failed. */
bool mcp__req_launch(struct mcp_req *r, const char *url);
/* Both: a request of kind to url, started. */
struct mcp_req *mcp__req_start(struct mcp_http *t, enum mcp_req_kind kind, const char *url,
                               struct mcp_msg *msg);
/* The legacy stream's endpoint event: where the POSTs go. False: t failed. */
bool mcp__set_endpoint(struct mcp_http *t, const char *data, size_t len);
/* After mcp_http_close and its DELETE: the timers close, then the memory goes. */
void mcp__release(struct mcp_http *t);

/* mcp_http_answer.c */

/* Every request's callbacks from httpc. */
extern const struct httpc_xfer_ops mcp__req_ops;

#endif
