/*
 * mcp_client.h - the MCP protocol over one connection (RUNNER-OPS.md 9.2): the
 * initialize handshake, tools/list with its pages, tools/call and their cancellation,
 * over the JSON-RPC peer (jsonrpc.h) and whichever transport carries it (mcp_stdio.h,
 * mcp_http.h). Transport-independent: the owner wires the transport's messages and end
 * into mcp_conn_receive and mcp_conn_transport_closed.
 *
 * A connection breaks for good on a transport end or a protocol error: every pending
 * operation gets the reason, later ones fail at once, and the owner closes it (§9.4: a
 * connection whose call failed is closed, not reused).
 */
#ifndef CREDBROKER_MCP_CLIENT_H
#define CREDBROKER_MCP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define MCP_PROTOCOL_VERSION "2025-06-18"   /* what initialize asks for */
#define MCP_LIST_MAX_PAGES 1000             /* tools/list pages followed, then an error */

/* What the client uses of a transport. */
struct mcp_transport {
    void *t;
    /* One JSON-RPC message (no newline): 0, or a negative code (the connection breaks). */
    int (*send)(void *t, const char *msg, size_t len);
    /* After initialize: the negotiated version, for transports that send it (HTTP's
     * MCP-Protocol-Version). NULL when the transport has no use for it. */
    void (*set_protocol_version)(void *t, const char *version);
};

struct mcp_conn;
struct mcp_op;

/* The handshake's end: error NULL when the connection is ready. */
typedef void (*mcp_ready_cb)(struct mcp_conn *c, const char *error, void *ud);
/* An operation's end: result (borrowed) or error (the server's JSON-RPC message, or the
 * transport's or protocol's reason). The op is freed after this returns. */
typedef void (*mcp_result_cb)(void *ud, const json_t *result, const char *error);

/* A connection over tr (copied). NULL when out of memory. */
struct mcp_conn *mcp_conn_new(const struct mcp_transport *tr);
/* Sends initialize; cb comes once (from mcp_conn_receive or _transport_closed, never
 * from here). Returns 0 or a negative code (no cb then). */
int mcp_conn_initialize(struct mcp_conn *c, mcp_ready_cb cb, void *ud)
    __attribute__((warn_unused_result));
/* One message from the transport. A malformed one breaks the connection. */
void mcp_conn_receive(struct mcp_conn *c, const char *msg, size_t len);
/* The transport ended: the connection breaks with reason. */
void mcp_conn_transport_closed(struct mcp_conn *c, const char *reason);
bool mcp_conn_ready(const struct mcp_conn *c);
/* Why it broke ("" while it has not). */
const char *mcp_conn_broken_reason(const struct mcp_conn *c);
/* The version the server answered ("" before the handshake ended). */
const char *mcp_conn_protocol_version(const struct mcp_conn *c);

/* tools/call name with arguments (an object, borrowed). On a ready connection only.
 * Returns 0 and *op (for mcp_op_cancel, valid until cb), or a negative code. */
int mcp_conn_call_tool(struct mcp_conn *c, const char *name, const json_t *arguments,
                       mcp_result_cb cb, void *ud, struct mcp_op **op)
    __attribute__((warn_unused_result));
/* tools/list, every page (nextCursor followed): cb gets {"tools": [...]} with all of them. */
int mcp_conn_list_tools(struct mcp_conn *c, mcp_result_cb cb, void *ud, struct mcp_op **op)
    __attribute__((warn_unused_result));
/* Gives up on op: the server is told (notifications/cancelled with reason), op's cb is
 * never called, op is freed. */
void mcp_op_cancel(struct mcp_op *op, const char *reason);

/* Frees c; pending operations' callbacks are not called (cancel them first). Accepts NULL. */
void mcp_conn_free(struct mcp_conn *c);

#endif
