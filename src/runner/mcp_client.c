/*
 * mcp_client.c - the MCP protocol over one connection. See mcp_client.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "jsonrpc.h"
#include "mcp_client.h"

#define MCP_REASON_MAX 512

struct mcp_conn {
    struct mcp_transport tr;
    struct jsonrpc_peer *peer;
    mcp_ready_cb ready_cb;
    void *ready_ud;
    bool ready;
    char version[32];
    char broken[MCP_REASON_MAX];
};

/* One operation: a tools/call, or a tools/list with the pages so far. */
struct mcp_op {
    struct mcp_conn *c;
    int64_t id;               /* of the request in flight */
    mcp_result_cb cb;
    void *ud;
    json_t *tools;            /* tools/list: the tools of the pages so far */
    unsigned pages;
};

/* The versions of the protocol this client speaks (RUNNER-OPS.md 9.2). */
static const char *const versions[] = {"2025-06-18", "2025-03-26", "2024-11-05"};

static int conn_send(void *ud, const char *msg, size_t len)
{
    struct mcp_conn *c = ud;

    return c->tr.send(c->tr.t, msg, len);
}

/* The connection is over: every pending operation (the handshake too) gets reason. */
static void conn_break(struct mcp_conn *c, const char *reason)
{
    if (c->broken[0] != '\0')
        return;
    snprintf(c->broken, sizeof(c->broken), "%s", reason[0] != '\0' ? reason : "broken");
    c->ready = false;
    jsonrpc_peer_fail_all(c->peer, c->broken);
}

struct mcp_conn *mcp_conn_new(const struct mcp_transport *tr)
{
    struct mcp_conn *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->tr = *tr;
    if ((c->peer = jsonrpc_peer_new(conn_send, c, JSONRPC_MAX_MESSAGE_BYTES)) == NULL) {
        free(c);
        return NULL;
    }
    return c;
}

bool mcp_conn_ready(const struct mcp_conn *c)
{
    return c->ready;
}

const char *mcp_conn_broken_reason(const struct mcp_conn *c)
{
    return c->broken;
}

const char *mcp_conn_protocol_version(const struct mcp_conn *c)
{
    return c->version;
}

/* ---- the handshake ---- */

static const char *handshake_check(struct mcp_conn *c, const json_t *result)
{
    const char *v = json_string_value(json_object_get(result, "protocolVersion"));

    if (!json_is_object(result) || v == NULL)
        return "initialize: the server's answer has no protocolVersion";
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        if (strcmp(v, versions[i]) == 0) {
            snprintf(c->version, sizeof(c->version), "%s", v);
            return NULL;
        }
    }
    return "initialize: the server speaks a protocol version this runner does not";
}

static void on_initialized(void *ud, const json_t *result, const struct jsonrpc_error *err,
                           const char *transport_error)
{
    struct mcp_conn *c = ud;
    mcp_ready_cb cb = c->ready_cb;
    const char *problem = transport_error;
    char text[MCP_REASON_MAX];

    c->ready_cb = NULL;
    if (problem == NULL && err != NULL) {
        snprintf(text, sizeof(text), "initialize: %s", err->message);
        problem = text;
    }
    if (problem == NULL)
        problem = handshake_check(c, result);
    if (problem == NULL) {
        if (c->tr.set_protocol_version != NULL)
            c->tr.set_protocol_version(c->tr.t, c->version);
        if (jsonrpc_peer_notify(c->peer, "notifications/initialized", NULL) != 0)
            problem = "initialize: cannot send notifications/initialized";
    }
    if (problem != NULL && transport_error == NULL) {
        snprintf(text, sizeof(text), "%s", problem);
        conn_break(c, text);
        problem = c->broken;
    }
    c->ready = problem == NULL;
    cb(c, problem, c->ready_ud);
}

int mcp_conn_initialize(struct mcp_conn *c, mcp_ready_cb cb, void *ud)
{
    json_t *params = json_pack("{s:s, s:{}, s:{s:s, s:s}}", "protocolVersion",
                               MCP_PROTOCOL_VERSION, "capabilities", "clientInfo", "name",
                               "flashduty-runner", "version", "1.0.0");
    int64_t id;
    int r;

    if (params == NULL)
        return ERR_NOMEM;
    c->ready_cb = cb;
    c->ready_ud = ud;
    r = jsonrpc_peer_call(c->peer, "initialize", params, on_initialized, c, &id);
    json_decref(params);
    if (r != 0)
        c->ready_cb = NULL;
    return r;
}

void mcp_conn_receive(struct mcp_conn *c, const char *msg, size_t len)
{
    char reason[256], text[MCP_REASON_MAX];
    int r;

    if (c->broken[0] != '\0')
        return;
    r = jsonrpc_peer_receive(c->peer, msg, len, reason, sizeof(reason));
    /* ERR_CLOSED: a callback broke or freed the connection; nothing more to do here. */
    if (r == 0 || r == ERR_CLOSED)
        return;
    snprintf(text, sizeof(text), "invalid message from the server: %s",
             r == ERR_NOMEM ? "out of memory" : reason);
    conn_break(c, text);
}

void mcp_conn_transport_closed(struct mcp_conn *c, const char *reason)
{
    conn_break(c, reason);
}

/* ---- operations ---- */

static void op_finish(struct mcp_op *op, const json_t *result, const char *error)
{
    mcp_result_cb cb = op->cb;
    void *ud = op->ud;

    json_decref(op->tools);
    free(op);
    cb(ud, result, error);
}

/* The error text of a failed request: the server's message, or the transport's. */
static const char *op_error(const struct jsonrpc_error *err, const char *transport_error)
{
    if (transport_error != NULL)
        return transport_error;
    return err != NULL ? err->message : NULL;
}

static void on_call_result(void *ud, const json_t *result, const struct jsonrpc_error *err,
                           const char *transport_error)
{
    struct mcp_op *op = ud;
    const char *error = op_error(err, transport_error);

    if (error == NULL && !json_is_object(result))
        error = "the server's tools/call result is not an object";
    op_finish(op, error == NULL ? result : NULL, error);
}

static struct mcp_op *op_new(struct mcp_conn *c, mcp_result_cb cb, void *ud)
{
    struct mcp_op *op = calloc(1, sizeof(*op));

    if (op != NULL) {
        op->c = c;
        op->cb = cb;
        op->ud = ud;
    }
    return op;
}

int mcp_conn_call_tool(struct mcp_conn *c, const char *name, const json_t *arguments,
                       mcp_result_cb cb, void *ud, struct mcp_op **out)
{
    struct mcp_op *op;
    json_t *params;
    int r;

    *out = NULL;
    if (!c->ready)
        return ERR_CLOSED;
    if ((op = op_new(c, cb, ud)) == NULL ||
        (params = json_pack("{s:s, s:O}", "name", name, "arguments", arguments)) == NULL) {
        free(op);
        return ERR_NOMEM;
    }
    r = jsonrpc_peer_call(c->peer, "tools/call", params, on_call_result, op, &op->id);
    json_decref(params);
    if (r != 0) {
        free(op);
        return r;
    }
    *out = op;
    return 0;
}

static int list_page(struct mcp_op *op, const char *cursor);

/* A page of tools/list: its tools kept, the next page asked for while there is one. */
static void on_list_page(void *ud, const json_t *result, const struct jsonrpc_error *err,
                         const char *transport_error)
{
    struct mcp_op *op = ud;
    const char *error = op_error(err, transport_error), *next;
    const json_t *tools = json_object_get(result, "tools");
    json_t *all;

    if (error != NULL) {
        op_finish(op, NULL, error);
        return;
    }
    if (!json_is_object(result) || (tools != NULL && !json_is_array(tools))) {
        op_finish(op, NULL, "the server's tools/list result is malformed");
        return;
    }
    if (tools != NULL && json_array_extend(op->tools, (json_t *)tools) != 0) {
        op_finish(op, NULL, "out of memory");
        return;
    }
    next = json_string_value(json_object_get(result, "nextCursor"));
    if (next != NULL && next[0] != '\0') {
        if (++op->pages >= MCP_LIST_MAX_PAGES)
            op_finish(op, NULL, "the server's tools/list goes on past 1000 pages");
        else if (list_page(op, next) != 0)
            op_finish(op, NULL, op->c->broken[0] != '\0' ? op->c->broken
                                                          : "cannot send tools/list");
        return;
    }
    if ((all = json_pack("{s:O}", "tools", op->tools)) == NULL) {
        op_finish(op, NULL, "out of memory");
        return;
    }
    op_finish(op, all, NULL);
    json_decref(all);
}

static int list_page(struct mcp_op *op, const char *cursor)
{
    json_t *params = cursor != NULL ? json_pack("{s:s}", "cursor", cursor) : NULL;
    int r;

    if (cursor != NULL && params == NULL)
        return ERR_NOMEM;
    r = jsonrpc_peer_call(op->c->peer, "tools/list", params, on_list_page, op, &op->id);
    json_decref(params);
    return r;
}

int mcp_conn_list_tools(struct mcp_conn *c, mcp_result_cb cb, void *ud, struct mcp_op **out)
{
    struct mcp_op *op;
    int r;

    *out = NULL;
    if (!c->ready)
        return ERR_CLOSED;
    if ((op = op_new(c, cb, ud)) == NULL || (op->tools = json_array()) == NULL) {
        free(op);
        return ERR_NOMEM;
    }
    if ((r = list_page(op, NULL)) != 0) {
        json_decref(op->tools);
        free(op);
        return r;
    }
    *out = op;
    return 0;
}

void mcp_op_cancel(struct mcp_op *op, const char *reason)
{
    struct mcp_conn *c = op->c;
    json_t *params = json_pack("{s:I, s:s}", "requestId", (json_int_t)op->id, "reason", reason);

    jsonrpc_peer_forget(c->peer, op->id);
    /* Best effort: the server may be gone, and the caller gives up either way. */
    if (params != NULL && c->broken[0] == '\0' &&
        jsonrpc_peer_notify(c->peer, "notifications/cancelled", params) != 0)
        conn_break(c, "cannot send notifications/cancelled");
    json_decref(params);
    json_decref(op->tools);
    free(op);
}

void mcp_conn_free(struct mcp_conn *c)
{
    if (c == NULL)
        return;
    jsonrpc_peer_free(c->peer);
    free(c);
}
