/*
 * jsonrpc.c - JSON-RPC 2.0 peer state for one MCP connection. See jsonrpc.h.
 *
 * Pending calls sit in an array in the order they were made and are found by a
 * linear search: one MCP connection has a handful in flight, and only we add to it
 * (a server cannot make it grow).
 */
#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "jsonrpc.h"

struct jsonrpc_pending {
    int64_t id;
    jsonrpc_result_cb cb;
    void *ud;
};

struct jsonrpc_peer {
    jsonrpc_send_fn send;
    void *send_ud;
    size_t max;
    jsonrpc_notify_fn notify;
    void *notify_ud;
    int64_t next_id;
    struct jsonrpc_pending *pending;
    size_t npending, cap;
    uint64_t ignored;
    unsigned depth; /* calls into the peer under way: callbacks may be running */
    bool doomed;    /* freed from inside a callback: free when depth drops to 0 */
    bool closed;    /* failed: no more traffic */
};

enum jsonrpc_kind { JSONRPC_RESPONSE, JSONRPC_REQUEST, JSONRPC_NOTIFICATION };

struct jsonrpc_peer *jsonrpc_peer_new(jsonrpc_send_fn send, void *send_ud, size_t max_message_bytes)
{
    struct jsonrpc_peer *p;

    assert(send != NULL);
    if ((p = calloc(1, sizeof(*p))) == NULL)
        return NULL;
    p->send = send;
    p->send_ud = send_ud;
    p->max = max_message_bytes;
    p->next_id = 1;
    return p;
}

static void jsonrpc__destroy(struct jsonrpc_peer *p)
{
    free(p->pending);
    memset(p, 0, sizeof(*p));
    free(p);
}

void jsonrpc_peer_free(struct jsonrpc_peer *p)
{
    if (p == NULL)
        return;
    if (p->depth > 0) {
        /* A callback of ours is running and will come back to p: free it after. */
        p->doomed = true;
        return;
    }
    jsonrpc__destroy(p);
}

/* Before anything that may call out (a callback, send). */
static void jsonrpc__enter(struct jsonrpc_peer *p)
{
    p->depth++;
}

/* After it: true when p is gone (freed from inside), and must not be touched. */
static bool jsonrpc__leave(struct jsonrpc_peer *p)
{
    if (--p->depth == 0 && p->doomed) {
        jsonrpc__destroy(p);
        return true;
    }
    return false;
}

void jsonrpc_peer_on_notification(struct jsonrpc_peer *p, jsonrpc_notify_fn fn, void *ud)
{
    p->notify = fn;
    p->notify_ud = ud;
}

size_t jsonrpc_peer_pending(const struct jsonrpc_peer *p)
{
    return p->npending;
}

uint64_t jsonrpc_peer_ignored(const struct jsonrpc_peer *p)
{
    return p->ignored;
}

/* Index of the pending call id, or npending. */
static size_t jsonrpc__find(const struct jsonrpc_peer *p, int64_t id)
{
    size_t i;

    for (i = 0; i < p->npending; i++) {
        if (p->pending[i].id == id)
            break;
    }
    return i;
}

/* Takes entry i out, keeping the others in order (fail_all fails them in that order). */
static struct jsonrpc_pending jsonrpc__take(struct jsonrpc_peer *p, size_t i)
{
    struct jsonrpc_pending e = p->pending[i];

    memmove(&p->pending[i], &p->pending[i + 1], (p->npending - i - 1) * sizeof(p->pending[0]));
    p->npending--;
    return e;
}

void jsonrpc_peer_forget(struct jsonrpc_peer *p, int64_t id)
{
    size_t i = jsonrpc__find(p, id);

    if (i < p->npending)
        (void)jsonrpc__take(p, i);
}

void jsonrpc_peer_fail_all(struct jsonrpc_peer *p, const char *reason)
{
    if (p->doomed)
        return; /* freed: its callbacks are not called */
    p->closed = true;
    if (reason == NULL)
        reason = "connection failed";
    jsonrpc__enter(p);
    /* One at a time from the live array, so a callback that forgets another call
     * keeps it from being called; new calls are refused (closed), so this ends. */
    while (p->npending > 0 && !p->doomed) {
        struct jsonrpc_pending e = jsonrpc__take(p, 0);

        e.cb(e.ud, NULL, NULL, reason);
    }
    (void)jsonrpc__leave(p);
}

/* Encodes msg compactly and hands it to send. Returns 0, ERR_NOMEM, ERR_TOO_LARGE,
 * ERR_CLOSED (p freed from inside send: gone), or send's code. */
static int jsonrpc__send(struct jsonrpc_peer *p, const json_t *msg)
{
    char *s = json_dumps(msg, JSON_COMPACT);
    size_t n;
    int r;

    if (s == NULL)
        return ERR_NOMEM;
    n = strlen(s); /* jansson writes a NUL in a string as \u0000: no NUL inside */
    if (n > p->max) {
        free(s);
        return ERR_TOO_LARGE;
    }
    jsonrpc__enter(p);
    r = p->send(p->send_ud, s, n);
    free(s);
    if (jsonrpc__leave(p))
        return ERR_CLOSED;
    return r;
}

/* {"jsonrpc":"2.0", [id,] "method":..., ["params":...]} for a request or notification. */
static int jsonrpc__build(const char *method, const json_t *params, const int64_t *id, json_t **out)
{
    json_t *m = json_object();
    json_t *idv = NULL, *mv = NULL;
    int r = ERR_NOMEM;

    *out = NULL;
    if (m == NULL)
        goto out;
    if (json_object_set_new(m, "jsonrpc", json_string("2.0")) != 0)
        goto out;
    if (id != NULL && ((idv = json_integer(*id)) == NULL || json_object_set_new(m, "id", idv) != 0))
        goto out;
    /* json_string refuses a method that is not UTF-8 (our own code's mistake). */
    if ((mv = json_string(method)) == NULL) {
        r = ERR_INVALID;
        goto out;
    }
    if (json_object_set_new(m, "method", mv) != 0)
        goto out;
    /* params is the caller's: jansson counts references in the value itself, and the
     * set here and the decref of m later leave that count as it was. */
    if (params != NULL && json_object_set(m, "params", (json_t *)params) != 0)
        goto out;
    *out = m;
    m = NULL; /* transferred */
    r = 0;
out:
    json_decref(m);
    return r;
}

static bool jsonrpc__params_ok(const json_t *params)
{
    return params == NULL || json_is_object(params) || json_is_array(params);
}

int jsonrpc_peer_call(struct jsonrpc_peer *p, const char *method, const json_t *params,
                      jsonrpc_result_cb cb, void *ud, int64_t *id_out)
{
    struct jsonrpc_pending *np;
    json_t *msg = NULL;
    int64_t id;
    int r;

    assert(method != NULL && cb != NULL);
    if (id_out != NULL)
        *id_out = 0;
    if (p->closed || p->doomed)
        return ERR_CLOSED;
    if (!jsonrpc__params_ok(params))
        return ERR_INVALID;
    if (p->next_id == INT64_MAX)
        return ERR_LIMIT;
    if (p->npending == p->cap) {
        size_t cap = p->cap == 0 ? 8 : p->cap * 2;

        if ((np = realloc(p->pending, cap * sizeof(*np))) == NULL)
            return ERR_NOMEM;
        p->pending = np;
        p->cap = cap;
    }
    id = p->next_id;
    if ((r = jsonrpc__build(method, params, &id, &msg)) != 0)
        return r;
    p->next_id++;
    /* Pending before it is sent: from here on a response may come at any time. */
    p->pending[p->npending++] = (struct jsonrpc_pending){.id = id, .cb = cb, .ud = ud};
    r = jsonrpc__send(p, msg);
    json_decref(msg);
    if (r == ERR_CLOSED)
        return r; /* p is gone */
    if (r != 0) {
        jsonrpc_peer_forget(p, id);
        return r;
    }
    if (id_out != NULL)
        *id_out = id;
    return 0;
}

int jsonrpc_peer_notify(struct jsonrpc_peer *p, const char *method, const json_t *params)
{
    json_t *msg;
    int r;

    assert(method != NULL);
    if (p->closed || p->doomed)
        return ERR_CLOSED;
    if (!jsonrpc__params_ok(params))
        return ERR_INVALID;
    if ((r = jsonrpc__build(method, params, NULL, &msg)) != 0)
        return r;
    r = jsonrpc__send(p, msg);
    json_decref(msg);
    return r;
}

/* Writes prefix and text into reason; cut short is fine: a reason is for people. */
static void jsonrpc__reason(char *reason, size_t reason_len, const char *prefix, const char *text)
{
    if (reason != NULL && reason_len > 0)
        snprintf(reason, reason_len, "%s%s", prefix, text);
}

static bool jsonrpc__is_id(const json_t *id)
{
    return json_is_string(id) || json_is_integer(id) || json_is_real(id);
}

/* Checks one message object; *kind says what it is. NULL, or what is wrong. */
static const char *jsonrpc__check(const json_t *m, enum jsonrpc_kind *kind)
{
    const json_t *v = json_object_get(m, "jsonrpc"), *method = json_object_get(m, "method");
    const json_t *id = json_object_get(m, "id"), *result = json_object_get(m, "result");
    const json_t *error = json_object_get(m, "error"), *params = json_object_get(m, "params");

    if (!json_is_object(m))
        return "a message that is not an object";
    if (!json_is_string(v) || json_string_length(v) != 3 || memcmp(json_string_value(v), "2.0", 3))
        return "jsonrpc is not \"2.0\"";
    if (method != NULL) {
        if (!json_is_string(method))
            return "method is not a string";
        if (result != NULL || error != NULL)
            return "a request with result or error";
        /* params null is taken as absent: some servers write it out. */
        if (!json_is_null(params) && !jsonrpc__params_ok(params))
            return "params is neither object nor array";
        if (id == NULL) {
            *kind = JSONRPC_NOTIFICATION;
            return NULL;
        }
        if (!jsonrpc__is_id(id))
            return "request id is neither string nor number";
        *kind = JSONRPC_REQUEST;
        return NULL;
    }
    if (id == NULL)
        return "neither method nor id";
    if (result != NULL && error != NULL)
        return "a response with both result and error";
    if (result == NULL && error == NULL)
        return "a response with neither result nor error";
    /* 5: id null only in an error about a request the server could not read. */
    if (!jsonrpc__is_id(id) && !(json_is_null(id) && error != NULL))
        return "response id is neither string nor number";
    if (error != NULL &&
        (!json_is_object(error) || !json_is_integer(json_object_get(error, "code")) ||
         !json_is_string(json_object_get(error, "message"))))
        return "error without an integer code and a string message";
    *kind = JSONRPC_RESPONSE;
    return NULL;
}

/* A response's id as one of ours: an integer, or a real of integral value. */
static bool jsonrpc__our_id(const json_t *id, int64_t *out)
{
    double d;

    if (json_is_integer(id)) {
        *out = (int64_t)json_integer_value(id);
        return true;
    }
    if (!json_is_real(id))
        return false;
    d = json_real_value(id);
    /* The range check first: converting a double out of range is undefined. */
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || (double)(int64_t)d != d)
        return false;
    *out = (int64_t)d;
    return true;
}

static void jsonrpc__on_response(struct jsonrpc_peer *p, const json_t *m)
{
    const json_t *result = json_object_get(m, "result"), *error = json_object_get(m, "error");
    struct jsonrpc_pending e;
    struct jsonrpc_error err;
    int64_t id;
    size_t i;

    if (!jsonrpc__our_id(json_object_get(m, "id"), &id) ||
        (i = jsonrpc__find(p, id)) == p->npending) {
        p->ignored++;
        return;
    }
    /* Out of the array before the callback: it may call, forget or fail all. */
    e = jsonrpc__take(p, i);
    if (result != NULL) {
        e.cb(e.ud, result, NULL, NULL);
        return;
    }
    err.code = (int64_t)json_integer_value(json_object_get(error, "code"));
    err.message = json_string_value(json_object_get(error, "message"));
    err.data = json_object_get(error, "data");
    e.cb(e.ud, NULL, &err, NULL);
}

/* A server request: ping gets {}, anything else -32601. 0 or jsonrpc__send's code. */
static int jsonrpc__on_request(struct jsonrpc_peer *p, const json_t *m)
{
    const json_t *method = json_object_get(m, "method");
    bool ping =
        json_string_length(method) == 4 && memcmp(json_string_value(method), "ping", 4) == 0;
    json_t *answer;
    int r;

    /* "O" takes a reference to the request's own id: echoed as the same value. */
    if (ping)
        answer = json_pack("{s:s, s:O, s:{}}", "jsonrpc", "2.0", "id", json_object_get(m, "id"),
                           "result");
    else
        answer =
            json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", json_object_get(m, "id"),
                      "error", "code", JSONRPC_METHOD_NOT_FOUND, "message", "Method not found");
    if (answer == NULL)
        return ERR_NOMEM;
    r = jsonrpc__send(p, answer);
    json_decref(answer);
    return r;
}

static void jsonrpc__on_notification(struct jsonrpc_peer *p, const json_t *m)
{
    const json_t *params = json_object_get(m, "params");

    if (p->notify != NULL)
        p->notify(p->notify_ud, json_string_value(json_object_get(m, "method")),
                  json_is_null(params) ? NULL : params);
}

int jsonrpc_peer_receive(struct jsonrpc_peer *p, const char *buf, size_t len, char *reason,
                         size_t reason_len)
{
    json_error_t jerr;
    json_t *msg;
    enum jsonrpc_kind kind = JSONRPC_RESPONSE;
    const char *bad = NULL;
    size_t n, i;
    int r = 0;
    char where[48] = ""; /* which batch element a reason is about */

    if (reason != NULL && reason_len > 0)
        reason[0] = '\0';
    if (p->closed || p->doomed) {
        jsonrpc__reason(reason, reason_len, "", "the connection was failed");
        return ERR_CLOSED;
    }
    if (len > p->max) {
        if (reason != NULL && reason_len > 0)
            snprintf(reason, reason_len, "a message of %zu bytes, over %zu", len, p->max);
        return ERR_TOO_LARGE;
    }
    /* No JSON_ALLOW_NUL: every string we hand on is a C string. JSON_DECODE_ANY only
     * so that a scalar gets our own reason below. */
    if ((msg = json_loadb(buf, len, JSON_DECODE_ANY, &jerr)) == NULL) {
        if (json_error_code(&jerr) == json_error_out_of_memory)
            return ERR_NOMEM;
        jsonrpc__reason(reason, reason_len, "not JSON: ", jerr.text);
        return ERR_INVALID;
    }
    /* Every element is checked before any is handled: a bad batch calls nothing. */
    if (json_is_object(msg)) {
        n = 1;
        bad = jsonrpc__check(msg, &kind);
    } else if (json_is_array(msg)) {
        n = json_array_size(msg);
        if (n == 0)
            bad = "an empty batch";
        for (i = 0; i < n && bad == NULL; i++) {
            bad = jsonrpc__check(json_array_get(msg, i), &kind);
            snprintf(where, sizeof(where), "batch element %zu: ", i);
        }
    } else {
        n = 0;
        bad = "not a JSON object or array";
    }
    if (bad != NULL) {
        jsonrpc__reason(reason, reason_len, where, bad);
        json_decref(msg);
        return ERR_INVALID;
    }
    jsonrpc__enter(p);
    for (i = 0; i < n && !p->doomed && !p->closed; i++) {
        const json_t *m = json_is_array(msg) ? json_array_get(msg, i) : msg;
        int rr = 0;

        /* Checked above; asked again only for its kind (a batch's kinds are not kept:
         * that would be an allocation the size of the batch). */
        (void)jsonrpc__check(m, &kind);
        if (kind == JSONRPC_RESPONSE)
            jsonrpc__on_response(p, m);
        else if (kind == JSONRPC_REQUEST)
            rr = jsonrpc__on_request(p, m);
        else
            jsonrpc__on_notification(p, m);
        if (rr != 0 && r == 0)
            r = rr;
    }
    json_decref(msg);
    if (jsonrpc__leave(p))
        return ERR_CLOSED;
    if (p->closed || p->doomed) {
        jsonrpc__reason(reason, reason_len, "", "the connection was failed");
        return ERR_CLOSED;
    }
    if (r != 0)
        jsonrpc__reason(reason, reason_len, "", "an answer to a server request was not sent");
    return r;
}
