/*
 * conn.c - a brokered connection. See conn.h. This half reads the child, parses
 * its requests, starts them upstream and feeds them their bodies, and runs the
 * connection's life cycle; what goes back to the child is conn_response.c.
 *
 * States of a connection:
 *   HEAD   waiting for (the rest of) a request head; idle or head timeout runs
 *   BODY   the request is upstream and its body is still arriving from the child
 *   WAIT   the request is complete; its response is awaited or streaming back
 * Requests are served one after the other (sequential pipelining): bytes of the
 * next request wait in `in` until the current response is done.
 *
 * Backpressure both ways: reading from the child stops while the upload buffer
 * is full (the upstream request takes from it), and the upstream transfer pauses while too
 * many response bytes wait to be written to the child.
 *
 * Ownership: the conn owns its pipe and timer handles, its buffers, the upstream
 * request in flight and the scrub stream. It is freed only once both handles'
 * close callbacks have run; then the invocation is told (broker__conn_released).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "audit.h"
#include "broker_internal.h"
#include "buf.h"
#include "chunked.h"
#include "conn.h"
#include "conn_internal.h"
#include "err.h"
#include "http1.h"
#include "log.h"
#include "policy.h"
#include "reqheaders.h"
#include "rewrite.h"
#include "route.h"
#include "scrub.h"
#include "secret.h"

/* ---- audit ---- */

const char *conn__audit_path(struct conn *c)
{
    struct conn_request *q = &c->req;
    const char *path;

    if (!q->has_target)
        return "";
    if (q->audit_path == NULL) {
        /* Without a route (421) nothing was injected: the target as the child sent it. */
        static const struct inject as_sent = {.mode = INJECT_HEADER};
        static const struct upstream_base nowhere;
        const struct upstream_base *base = q->route != NULL ? &q->route->upstream : &nowhere;

        if ((q->audit_path = buf_new(CONN_URL_MAX, 0)) == NULL)
            return "";
        if (rewrite_url(q->audit_path, base, (const char *)buf_ptr(c->target),
                        buf_len(c->target), q->route != NULL ? &q->route->inject : &as_sent,
                        (const uint8_t *)"[broker]", 8, REWRITE_KEY_VERBATIM) != 0)
            return "";
        (void)buf_consume(q->audit_path, base->origin_len + base->path_len);
    }
    path = buf_cstr(q->audit_path);
    return path != NULL ? path : "";
}

static void conn__audit(struct conn *c, const char *outcome)
{
    struct conn_request *q = &c->req;
    bool shown = c->inv->broker->audit != NULL || log_enabled(LOG_LEVEL_DEBUG);
    struct audit_record rec = {
        .invocation = c->inv->label,
        .route = q->route != NULL ? q->route->name : NULL,
        .connection = c->id,
        .method = q->method,
        .path = shown ? conn__audit_path(c) : "",
        .status = q->status,
        .bytes_in = q->bytes_in,
        .bytes_out = q->bytes_out,
        .upstream_ms = q->upstream_ms,
        .total_ms = uv_now(c->inv->broker->loop) - q->start_ms,
        .outcome = outcome,
    };

    audit_write(c->inv->broker->audit, &rec);
    log_debug("%s conn %llu: %s %.200s -> %d %s", c->inv->label, (unsigned long long)c->id,
              rec.method, rec.path, rec.status, outcome);
}

/* Forgets the current request (the next one starts from a clean slate). */
void conn__request_reset(struct conn *c)
{
    struct conn_request *q = &c->req;

    upstream_req_cancel(q->ureq);
    free(c->spare); /* an idle connection keeps no stream-sized buffer */
    c->spare = NULL;
    buf_free(q->audit_path);
    if (c->body != NULL)
        buf_reset_keep(c->body, CONN_KEEP);
    if (q->scrub != NULL && c->scrub_spare == NULL && !c->closing) {
        scrub_stream_reset(q->scrub);
        c->scrub_spare = q->scrub;
    } else {
        scrub_stream_free(q->scrub);
    }
    memset(q, 0, sizeof(*q));
}

/* Ends the request's life in the audit exactly once. */
void conn__request_done(struct conn *c, const char *outcome)
{
    if (c->req.active) {
        conn__audit(c, outcome);
        c->inv->stats.requests++;
        c->req.active = false;
    }
}

static int status_for_parse_error(int r)
{
    switch (r) {
    case ERR_HTTP_HEAD_TOO_LARGE:
        return 431;
    case ERR_HTTP_BODY_TOO_LARGE:
        return 413;
    case ERR_HTTP_METHOD:
        return 405;
    case ERR_HTTP_NOT_IMPLEMENTED:
        return 501;
    default:
        return 400;
    }
}

/* ---- the request ---- */

static bool method_has_body_semantics(const char *m)
{
    return strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0;
}

/*
 * The route the request names by its host (route_request_host); NULL when none answers. A
 * connection's requests nearly always name the same host: the last one's answer is kept
 * (callgrind: the lookup was 950 instructions of a request's 58,000).
 */
static const struct inv_route *conn__route(struct conn *c, const struct http1_request *hr)
{
    const char *host;
    size_t len;

    route_request_host(hr->target.base, hr->target.len, hr->host.base, hr->host.len, &host,
                       &len);
    if (host == NULL)
        host = ""; /* HTTP/1.0 without Host: memcmp and memcpy want a pointer even for 0 bytes */
    if (c->route_cached && len == c->route_host_len && memcmp(host, c->route_host, len) == 0)
        return c->route;
    c->route = broker__route_for_host(c->inv, host, len);
    c->route_cached = len <= sizeof(c->route_host);
    if (c->route_cached) {
        memcpy(c->route_host, host, len);
        c->route_host_len = len;
    }
    return c->route;
}

#define CONN_OVERRIDE_REFUSED                                                                      \
    "a method override (X-HTTP-Method-Override, X-HTTP-Method, X-Method-Override or a _method "    \
    "query parameter) is not allowed under an --allow policy"

/*
 * Starts the upstream request for a parsed head. Returns 0, or an HTTP status to
 * answer; *why is then NULL or the reason to give for it (a static string).
 */
static int conn__start_request(struct conn *c, const struct http1_request *hr, const char **why)
{
    struct broker_invocation *inv = c->inv;
    struct conn_request *q = &c->req;
    const struct inv_route *rt;
    const char *path, *query, *starts[REQHEADERS_MAX_LINES];
    size_t path_len, query_len, nstarts = 0;
    struct upstream_req_spec spec;
    int status = 502, r;

    *why = NULL;
    if (hr->method.len > CONN_METHOD_MAX)
        return 400;
    memcpy(q->method, hr->method.base, hr->method.len);
    q->method[hr->method.len] = '\0';
    q->minor = hr->minor_version;
    q->keep_alive = hr->keep_alive;
    q->is_head = strcmp(q->method, "HEAD") == 0;
    q->body_kind = hr->body;
    if (strcmp(q->method, "CONNECT") == 0)
        return 405;
    if (hr->upgrade)
        return 501;
    if (hr->body == HTTP1_BODY_LENGTH && hr->content_length > inv->limits.max_body)
        return 413;
    if (rewrite_target_parts(hr->target.base, hr->target.len, &path, &path_len, &query,
                             &query_len) != 0)
        return 400;
    if ((c->target == NULL && (c->target = buf_new(CONN_URL_MAX, 0)) == NULL) ||
        (c->body == NULL && (c->body = buf_new(CONN_BODY_HIGH + CONN_IN_MAX, 0)) == NULL) ||
        (c->url == NULL && (c->url = buf_new(CONN_URL_MAX, BUF_WIPE)) == NULL) ||
        (c->lines == NULL && (c->lines = buf_new(HTTP1_MAX_HEAD * 2, BUF_WIPE)) == NULL))
        return 500;
    q->body = c->body;
    /* The audit's path is made from the target when shown (conn__audit_path). */
    buf_reset_keep(c->target, CONN_KEEP);
    if (buf_put(c->target, hr->target.base, hr->target.len) != 0)
        return 400;
    q->has_target = true;
    if ((rt = q->route = conn__route(c, hr)) == NULL) {
        *why = inv->misdirected; /* the request never leaves the machine */
        return 421;
    }
    if (rt->policy != NULL &&
        !policy_allows(rt->policy, q->method, strlen(q->method), path, path_len))
        return 403;
    /* The rules judge the request line's method: one that an upstream would swap for
     * another must not reach it. */
    if (rt->policy != NULL && policy_rule_count(rt->policy) > 0 &&
        policy_overrides_method(hr->headers, hr->num_headers, query, query_len)) {
        *why = CONN_OVERRIDE_REFUSED;
        return 403;
    }

    if ((r = rewrite_url(c->url, &rt->upstream, hr->target.base, hr->target.len, &rt->inject,
                         secret_data(rt->key), secret_len(rt->key),
                         rt->key_unreserved ? REWRITE_KEY_VERBATIM : 0)) != 0) {
        status = r == ERR_HTTP_BAD_REQUEST ? 400 : 500;
        goto out;
    }
    if (reqheaders_build(c->lines, hr, &rt->inject, secret_data(rt->key),
                         secret_len(rt->key)) != 0 ||
        buf_cstr(c->url) == NULL) {
        status = 500;
        goto out;
    }
    nstarts = reqheaders_split(c->lines, starts, sizeof(starts) / sizeof(starts[0]));
    q->has_body = hr->body == HTTP1_BODY_CHUNKED ||
                  (hr->body == HTTP1_BODY_LENGTH &&
                   (hr->content_length > 0 || method_has_body_semantics(q->method)));
    q->body_left = hr->body == HTTP1_BODY_LENGTH ? hr->content_length : 0;
    q->body_done = !q->has_body || (hr->body == HTTP1_BODY_LENGTH && hr->content_length == 0);
    if (hr->body == HTTP1_BODY_CHUNKED)
        chunked_init(&q->chunked);
    memset(&spec, 0, sizeof(spec));
    spec.method = q->method;
    spec.url = buf_cstr(c->url);
    spec.headers = starts;
    spec.nheaders = nstarts;
    spec.has_body = q->has_body;
    spec.body_len = hr->body == HTTP1_BODY_LENGTH ? (int64_t)hr->content_length : -1;
    spec.response_head_timeout_ms = inv->limits.response_head_timeout_ms;
    spec.stall_timeout_ms = inv->limits.stall_timeout_ms;
    if ((r = upstream_req_start(inv->broker->upstream, &spec, &conn_upstream_ops, c, &q->ureq)) !=
        0) {
        log_warn_r(r, "%s conn %llu: cannot start the upstream request", inv->label,
                   (unsigned long long)c->id);
        status = 502;
        goto out;
    }
    if (q->has_body && q->body_done)
        upstream_req_resume(q->ureq); /* an empty body: nothing more to wait for */
    status = 0;
out:
    /* Wiped: they held the key (the upstream request has its own copy by now). */
    buf_reset_keep(c->url, CONN_KEEP);
    buf_reset_keep(c->lines, CONN_KEEP);
    return status;
}

/* Moves request body bytes from `in` to the upload buffer. Returns 0 or a status to answer. */
static int conn__pump_body(struct conn *c)
{
    struct conn_request *q = &c->req;
    const char *p = (const char *)buf_ptr(c->in);
    size_t avail = buf_len(c->in), used = 0;
    int r = 0;

    while (!q->body_done && used < avail && buf_len(q->body) < CONN_BODY_HIGH) {
        size_t room = CONN_BODY_HIGH - buf_len(q->body);

        if (q->body_kind == HTTP1_BODY_LENGTH) {
            size_t n = avail - used;

            if (n > q->body_left)
                n = (size_t)q->body_left;
            if (n > room)
                n = room;
            if (!c->draining && (r = buf_put(q->body, p + used, n)) != 0)
                break;
            used += n;
            q->bytes_in += n;
            q->body_left -= n;
            q->body_done = q->body_left == 0;
        } else {
            size_t consumed = 0, dlen = 0;
            const char *data = NULL;
            int d = chunked_decode(&q->chunked, p + used, avail - used, &consumed, &data, &dlen);

            if (d < 0) {
                r = ERR_HTTP_BAD_REQUEST;
                break;
            }
            if (dlen > 0) {
                if (q->bytes_in + dlen > c->inv->limits.max_body) {
                    r = ERR_HTTP_BODY_TOO_LARGE;
                    break;
                }
                if (!c->draining && (r = buf_put(q->body, data, dlen)) != 0)
                    break;
                q->bytes_in += dlen;
            }
            used += consumed;
            /* A chunk announcing more than the limit allows is refused now, not once its
             * bytes have arrived. */
            if (q->bytes_in + chunked_pending(&q->chunked) > c->inv->limits.max_body) {
                r = ERR_HTTP_BODY_TOO_LARGE;
                break;
            }
            if (d == 1)
                q->body_done = true;
            else if (consumed == 0)
                break;
        }
    }
    (void)buf_consume(c->in, used);
    if (r != 0)
        return r == ERR_HTTP_BODY_TOO_LARGE ? 413 : 400;
    if (q->ureq != NULL && (buf_len(q->body) > 0 || q->body_done))
        upstream_req_resume(q->ureq);
    if (q->body_done && c->state == CONN_BODY)
        c->state = CONN_WAIT;
    return 0;
}

static void on_conn_timer(struct deadline *d)
{
    struct conn *c = deadline_data(d);

    if (c->closing)
        return;
    if (c->state == CONN_HEAD && buf_len(c->in) > 0 && c->write_pending == 0 &&
        !c->close_when_written) {
        c->req.active = true;
        c->req.start_ms = uv_now(c->inv->broker->loop);
        conn__send_error(c, 408, "request head not received in time", "head_timeout");
        return;
    }
    log_debug("%s conn %llu: idle, closing", c->inv->label, (unsigned long long)c->id);
    conn_abort(c);
}

/* Runs the right timer for the state: idle / head while waiting for a head, drain when
 * closing; none while a request is upstream (its own deadlines apply). */
static void conn__update_timer(struct conn *c)
{
    struct broker_limits *l = &c->inv->limits;

    if (c->close_when_written) {
        deadline_set(&c->timer, l->stall_timeout_ms);
        c->head_timer_running = false;
    } else if (c->draining) {
        /* Counted once from the start of the drain, like a head: a trickle cannot extend it. */
        if (!c->head_timer_running)
            deadline_set(&c->timer, l->head_timeout_ms);
        c->head_timer_running = true;
    } else if (c->state != CONN_HEAD) {
        deadline_clear(&c->timer);
        c->head_timer_running = false;
    } else if (buf_len(c->in) == 0) {
        deadline_set(&c->timer, l->idle_timeout_ms);
        c->head_timer_running = false;
    } else if (!c->head_timer_running) {
        /* Counted from the first byte, not renewed per read: a slowloris gets 10 s in all. */
        deadline_set(&c->timer, l->head_timeout_ms);
        c->head_timer_running = true;
    }
}

/*
 * A well-formed request refused before it went upstream (policy 403, 421) whose body is still
 * to come: answered at once, then its body is read and dropped, as after an upstream's early
 * answer (conn_response.c), and the connection closed. Closing at once would fail the
 * child's send of the body with EPIPE before it reads the answer (Python's http.client
 * sends the head and the body apart). Only a body of a known length up to
 * CONN_REFUSED_DRAIN_MAX: a refused request may not make the broker read megabytes for it
 * (test_95: a 16 MiB upload after a 403 is cut at once). Not with Expect: 100-continue: that
 * client waits. Returns true when the drain has started.
 */
static bool conn__refuse_and_drain(struct conn *c, const struct http1_request *hr, int status,
                                   const char *message, const char *outcome)
{
    struct conn_request *q = &c->req;

    if ((status != 403 && status != 421) || hr->expect_continue || q->body == NULL ||
        hr->body != HTTP1_BODY_LENGTH || hr->content_length == 0 ||
        hr->content_length > CONN_REFUSED_DRAIN_MAX)
        return false;
    q->has_body = true;
    q->body_done = false;
    q->body_left = hr->content_length;
    if (conn__stage_error(c, status, message, outcome) != 0)
        return true; /* aborted */
    c->draining = true;
    c->state = CONN_BODY;
    return true;
}

/* Parses heads and moves bodies while there is input and the state allows. */
void conn__process(struct conn *c)
{
    /* Not zeroed on entry (-ftrivial-auto-var-init): 3 KiB of stores per request.
     * http1_parse_request zeroes all but the header slots, read only below num_headers. */
    struct http1_request hr __attribute__((uninitialized));
    const char *why;
    int r, status;

    while (!c->closing && !c->close_when_written) {
        if (c->state == CONN_HEAD) {
            if (buf_len(c->in) == 0)
                break;
            r = http1_parse_request((const char *)buf_ptr(c->in), buf_len(c->in), &hr);
            if (r == ERR_INCOMPLETE) {
                if (c->read_eof) {
                    conn_abort(c);
                    return;
                }
                break;
            }
            c->req.active = true;
            c->req.start_ms = uv_now(c->inv->broker->loop);
            if (r != 0) {
                c->req.minor = 1;
                conn__send_error(c, status_for_parse_error(r), "malformed or ambiguous request",
                                 "bad_request");
                return;
            }
            status = conn__start_request(c, &hr, &why);
            (void)buf_consume(c->in, hr.head_len);
            if (status != 0) {
                const char *message = why != NULL     ? why
                                      : status == 403 ? "request not allowed by the broker's policy"
                                      : status == 413 ? "request body too large"
                                      : status == 405 ? "CONNECT is not supported"
                                      : status == 501 ? "protocol upgrades are not supported"
                                      : status == 400 ? "malformed or ambiguous request"
                                                      : "broker error";
                const char *outcome = status == 403   ? "policy"
                                      : status == 421 ? "misdirected"
                                                      : "refused";

                if (conn__refuse_and_drain(c, &hr, status, message, outcome)) {
                    if (c->closing)
                        return;
                    continue; /* the body's bytes already here go first */
                }
                conn__send_error(c, status, message, outcome);
                return;
            }
            if (hr.expect_continue && c->req.has_body && !c->req.body_done && c->req.minor >= 1 &&
                conn__write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25) != 0) {
                conn_abort(c);
                return;
            }
            c->state = c->req.body_done ? CONN_WAIT : CONN_BODY;
        } else if (c->state == CONN_BODY && c->draining) {
            /* The answer is already staged: any end of the body (done, malformed, over the
             * limit, the child gone) closes after writing it, never with a second answer. */
            if (conn__pump_body(c) != 0 || c->req.body_done || c->read_eof) {
                conn__close_after_writes(c);
                return;
            }
            break;
        } else if (c->state == CONN_BODY) {
            if ((status = conn__pump_body(c)) != 0) {
                upstream_req_cancel(c->req.ureq);
                c->req.ureq = NULL;
                conn__send_error(
                    c, status, status == 413 ? "request body too large" : "malformed request body",
                    "bad_request");
                return;
            }
            if (c->state == CONN_BODY) {
                if (c->read_eof) {
                    conn__request_done(c, "client_gone");
                    conn_abort(c);
                    return;
                }
                break;
            }
        } else {
            break; /* CONN_WAIT: pipelined bytes wait for the response to finish */
        }
    }
    if (!c->closing) {
        conn__update_reading(c);
        conn__update_timer(c);
    }
}

/* ---- reading from the child ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    /* One read buffer for every connection: reads are consumed before the next one. */
    static char readbuf[64 * 1024];

    out->base = readbuf;
    out->len = sizeof(readbuf);
}

/* True if the child closed its end completely (not just shut down its sending side). */
static bool peer_gone(struct conn *c)
{
    uv_os_fd_t fd;

    if (uv_fileno((uv_handle_t *)&c->pipe, &fd) != 0)
        return true;
    return send(fd, "", 0, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno == EPIPE;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct conn *c = s->data;

    if (c->closing)
        return;
    if (nread < 0) {
        log_debug("%s conn %llu: from the child: %s", c->inv->label, (unsigned long long)c->id,
                  nread == UV_EOF ? "end of stream" : uv_strerror((int)nread));
        c->read_eof = true;
        uv_read_stop(s);
        c->reading = false;
        if (c->draining && nread == UV_EOF) {
            conn__close_after_writes(c); /* the child stopped sending; it may still read */
            return;
        }
        if (nread == UV_EOF && c->state == CONN_HEAD && !c->req.active && buf_len(c->in) == 0 &&
            c->write_pending == 0) {
            conn__close(c); /* between requests, all written: nothing to wait for (W1) */
            return;
        }
        if (nread != UV_EOF || c->state == CONN_BODY || peer_gone(c)) {
            if (c->req.active)
                conn__request_done(c, "client_gone");
            conn_abort(c);
            return;
        }
        if (c->state == CONN_HEAD) {
            if (buf_len(c->in) > 0 && c->req.active == false && c->write_pending == 0) {
                conn_abort(c); /* a partial head and nothing more will come */
                return;
            }
            conn__close_after_writes(c);
            return;
        }
        return; /* CONN_WAIT: finish the response, then close */
    }
    if (nread == 0)
        return;
    if (buf_put(c->in, b->base, (size_t)nread) != 0) {
        /* Cannot happen while reading is limited by conn__update_reading. */
        conn_abort(c);
        return;
    }
    conn__process(c);
}

void conn__update_reading(struct conn *c)
{
    bool want;

    if (c->closing || c->read_eof)
        return;
    switch (c->state) {
    case CONN_HEAD:
        want = !c->close_when_written && buf_len(c->in) <= HTTP1_MAX_HEAD;
        break;
    case CONN_BODY:
        want = !c->close_when_written && buf_len(c->req.body) < CONN_BODY_HIGH &&
               buf_len(c->in) < HTTP1_MAX_HEAD;
        break;
    default:
        /* Pipelined bytes: take a head's worth, then wait for the response to finish. */
        want = !c->close_when_written && buf_len(c->in) <= HTTP1_MAX_HEAD;
        break;
    }
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) == 0)
            c->reading = true;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->pipe);
        c->reading = false;
    }
}

/* ---- life cycle ---- */

static void conn__free_memory(struct conn *c)
{
    buf_free(c->in);
    buf_free(c->scratch);
    buf_free(c->target);
    buf_free(c->url);
    buf_free(c->lines);
    buf_free(c->body);
    scrub_stream_free(c->scrub_spare);
    free(c);
}

/*
 * A closed connection of an invocation that goes on is kept, buffers and all, for the
 * invocation's next dial: a fresh-dial call (bench W1) made and freed a dozen blocks. At
 * most CONN_SPARES; emptied as between two requests (the buffers that held the key are
 * wiped, none keeps more than CONN_KEEP bytes of memory).
 */
static bool conn__keep_spare(struct conn *c)
{
    struct broker_invocation *inv = c->inv;
    struct buf *const bufs[] = {c->in, c->scratch, c->target, c->url, c->lines, c->body};

    if (inv->ended || inv->nspare >= CONN_SPARES)
        return false;
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++) {
        if (bufs[i] != NULL)
            buf_reset_keep(bufs[i], CONN_KEEP);
    }
    c->next_spare = inv->spare_conns;
    inv->spare_conns = c;
    inv->nspare++;
    return true;
}

void conn_free_spares(struct broker_invocation *inv)
{
    struct conn *c;

    while ((c = inv->spare_conns) != NULL) {
        inv->spare_conns = c->next_spare;
        conn__free_memory(c);
    }
    inv->nspare = 0;
}

/* A spare connection of inv emptied for a new life, or a new one; NULL when out of memory. */
static struct conn *conn__alloc(struct broker_invocation *inv)
{
    struct conn *c = inv->spare_conns;

    if (c != NULL) {
        struct conn kept = *c;

        inv->spare_conns = c->next_spare;
        inv->nspare--;
        memset(c, 0, sizeof(*c));
        c->in = kept.in;
        c->scratch = kept.scratch;
        c->target = kept.target;
        c->url = kept.url;
        c->lines = kept.lines;
        c->body = kept.body;
        c->scrub_spare = kept.scrub_spare;
        return c;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return NULL;
    if ((c->in = buf_new(CONN_IN_MAX, 0)) == NULL ||
        (c->scratch = buf_new(SIZE_MAX, 0)) == NULL) {
        conn__free_memory(c);
        return NULL;
    }
    return c;
}

static void conn_handle_close_cb(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct broker_invocation *inv = c->inv;

    if (--c->open_handles > 0)
        return;
    if (!conn__keep_spare(c))
        conn__free_memory(c);
    broker__conn_released(inv); /* may free inv, and with it the spares */
}

/* Frees *w, not written, and no longer counts it as pending. */
static void conn__drop_write(struct conn *c, struct conn_write **w)
{
    if (*w == NULL)
        return;
    c->write_pending -= (*w)->len;
    free(*w);
    *w = NULL;
}

void conn__close(struct conn *c)
{
    if (c->closing)
        return;
    log_debug("%s conn %llu: closing (state %d, %zu byte(s) unwritten, %zu unread)",
              c->inv->label, (unsigned long long)c->id, (int)c->state, c->write_pending,
              buf_len(c->in));
    c->closing = true;
    if (c->linked) {
        LIST_REMOVE(c, link);
        c->linked = false;
    }
    if (c->req.active)
        conn__request_done(c, "client_gone");
    conn__request_reset(c);
    netbatch_cancel(&c->batch);
    conn__drop_write(c, &c->staged);
    conn__drop_write(c, &c->batched); /* cancelled in the middle of the batch's write */
    deadline_close(&c->timer, conn_handle_close_cb);
    uv_close((uv_handle_t *)&c->flush, conn_handle_close_cb);
    uv_close((uv_handle_t *)&c->pipe, conn_handle_close_cb); /* cancels pending writes */
}

void conn_abort(struct conn *c)
{
    conn__close(c);
}

int conn_new(struct broker_invocation *inv, int fd, struct conn **out)
{
    struct conn *c;
    int r;

    *out = NULL;
    if ((c = conn__alloc(inv)) == NULL) {
        close(fd);
        return ERR_NOMEM;
    }
    c->inv = inv;
    c->id = ++inv->next_conn_id;
    deadline_init(inv->broker->loop, &c->timer, on_conn_timer, c); /* cannot fail */
    (void)uv_prepare_init(inv->broker->loop, &c->flush); /* cannot fail */
    c->flush.data = c;
    c->open_handles = 2;
    inv->nconns++; /* until conn_handle_close_cb releases it */
    if ((r = uv_tcp_init(inv->broker->loop, &c->pipe)) != 0) {
        close(fd);
        c->closing = true;
        deadline_close(&c->timer, conn_handle_close_cb);
        uv_close((uv_handle_t *)&c->flush, conn_handle_close_cb);
        return r;
    }
    c->pipe.data = c;
    c->open_handles = 3;
    conn__batch_init(c);
    /* From here on, conn__close() undoes everything (and closes fd with the pipe). */
    if ((r = uv_tcp_open(&c->pipe, fd)) != 0) {
        close(fd);
        conn__close(c);
        return r;
    }
    c->state = CONN_HEAD;
    conn__update_reading(c);
    if (!c->reading) {
        conn__close(c);
        return ERR_INVALID;
    }
    conn__update_timer(c);
    LIST_INSERT_HEAD(&inv->conns, c, link);
    c->linked = true;
    *out = c;
    return 0;
}
