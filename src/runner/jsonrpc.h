/*
 * jsonrpc.h - the JSON-RPC 2.0 side of one MCP connection, without the transport:
 * numbering and encoding our requests, keeping the pending ones, and dispatching what
 * the server sends (https://www.jsonrpc.org/specification, with MCP's rules).
 *
 * The transport hands us one message at a time (a line of a stdio server, a POST
 * response body, one SSE event's data) and gives us a send function; we never do I/O.
 *
 * What comes in:
 *   - a response (result or error) goes to its pending request's callback, once; a
 *     response whose id is not pending (unknown, answered already, forgotten, a string
 *     id, or an error with id null, which a server sends when it could not read our
 *     request) is ignored and counted (jsonrpc_peer_ignored);
 *   - a server request "ping" is answered with result {}; every other server request
 *     with error -32601 "Method not found" (MCP: sampling, elicitation, roots are not
 *     ours), echoing its id;
 *   - a notification goes to the notification callback, if one is set;
 *   - a batch (a non-empty array, MCP 2025-03-26) is checked whole first, then its
 *     elements are handled in order as above. Requests in a batch are answered one
 *     message each, not as a batch array: simpler, and every MCP peer reads single
 *     messages.
 *
 * Malformed (the message is refused whole, no callback called, nothing sent; the
 * caller should then fail the connection): over max_message_bytes, not JSON (jansson
 * without JSON_ALLOW_NUL: a \u0000 in any string refuses the message), not an object
 * or a non-empty array of objects, "jsonrpc" not exactly "2.0", a method not a string,
 * method together with result or error, params neither object nor array (null is
 * taken as absent: some servers write it out), a request id (or a response id) neither
 * string nor number (a response's may be null only with an error), a response with
 * both or neither of result and error, an error object without an integer code or a
 * string message.
 *
 * Ids, decided here:
 *   - ours are int64 from 1, always sent as JSON integers;
 *   - a response's id matches ours when it is that integer; also when it is written as
 *     a real with the same integral value (1.0: the same JSON number); never as a
 *     string ("1" is another id);
 *   - a server request's id (string or any number, negative or fractional too) is
 *     echoed as the same JSON value (a real comes back as the same double);
 *   - an integer id outside int64 cannot be read by jansson: the whole message is
 *     refused as not JSON.
 * Duplicate keys in an object are accepted, the last one wins, as Go's encoding/json
 * (the Go runner's reader) does: the bytes are read by nobody else.
 *
 * Re-entrancy: callbacks (results, notifications) and the send function may call
 * jsonrpc_peer_call, _notify, _forget, _fail_all and _pending, and may free the peer:
 * the free is then deferred until the outermost call into the peer returns
 * (jsonrpc_peer_receive and _call then return ERR_CLOSED), and the rest of a batch is
 * dropped. The send function must not feed the peer (jsonrpc_peer_receive) from
 * inside: a transport delivers later.
 */
#ifndef CREDBROKER_JSONRPC_H
#define CREDBROKER_JSONRPC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* The size bound MCP gives one message (issue 17: 16 MiB). */
#define JSONRPC_MAX_MESSAGE_BYTES (16u * 1024u * 1024u)

/* JSON-RPC 2.0 section 5.1: the code we answer server requests we do not serve with. */
#define JSONRPC_METHOD_NOT_FOUND (-32601)

struct jsonrpc_error {
    int64_t code;
    const char *message; /* never holds a NUL */
    const json_t *data;  /* borrowed, may be NULL */
};

/*
 * Called once per request: with result (borrowed, valid during the call), or err, or
 * transport_error (text) when the peer fails the call (jsonrpc_peer_fail_all). Exactly
 * one of the three is non-NULL.
 */
typedef void (*jsonrpc_result_cb)(void *ud, const json_t *result, const struct jsonrpc_error *err,
                                  const char *transport_error);
/* Sends one encoded message (compact JSON, no trailing newline; msg is NUL-terminated
 * at msg[len] but the transport must copy what it keeps). Returns 0 or a negative code. */
typedef int (*jsonrpc_send_fn)(void *send_ud, const char *msg, size_t len);
/* A notification from the server; params borrowed, NULL when absent. */
typedef void (*jsonrpc_notify_fn)(void *ud, const char *method, const json_t *params);

struct jsonrpc_peer;

/* Returns a new peer, or NULL (no memory). send is required; max_message_bytes bounds
 * what jsonrpc_peer_receive takes and what we send. */
struct jsonrpc_peer *jsonrpc_peer_new(jsonrpc_send_fn send, void *send_ud,
                                      size_t max_message_bytes);

/* Sets (or, with fn NULL, clears) the notification callback. */
void jsonrpc_peer_on_notification(struct jsonrpc_peer *p, jsonrpc_notify_fn fn, void *ud);

/*
 * Sends a request {"jsonrpc":"2.0","id":N,"method":method,"params":params} (params may
 * be NULL: omitted; else an object or an array, borrowed). The callback comes later,
 * from jsonrpc_peer_receive or jsonrpc_peer_fail_all. Returns 0 and *id_out (may be
 * NULL), or a negative code and nothing is pending: ERR_INVALID (params of another
 * type), ERR_TOO_LARGE (encoded over max_message_bytes), ERR_NOMEM, ERR_CLOSED (after
 * jsonrpc_peer_fail_all, or the peer was freed from inside send), or send's code.
 */
int jsonrpc_peer_call(struct jsonrpc_peer *p, const char *method, const json_t *params,
                      jsonrpc_result_cb cb, void *ud, int64_t *id_out)
    __attribute__((warn_unused_result));

/* Sends a notification (no id; params as for jsonrpc_peer_call). Returns 0 or as above. */
int jsonrpc_peer_notify(struct jsonrpc_peer *p, const char *method, const json_t *params)
    __attribute__((warn_unused_result));

/*
 * Takes one incoming transport message buf[0..len). Returns 0 (handled; callbacks
 * called, answers sent), or a negative code with a short reason in reason (NUL-
 * terminated, cut to reason_len; reason may be NULL): ERR_TOO_LARGE or ERR_INVALID
 * (the message was refused whole, nothing called; the connection is broken: the
 * caller fails it), ERR_NOMEM, ERR_CLOSED (the peer was failed, before this message or
 * by one of its callbacks, which drops the rest of it; or a callback freed the peer: it
 * is gone then, do not touch it), or send's code when an answer to a server request
 * could not be sent (the rest of the message was handled).
 */
int jsonrpc_peer_receive(struct jsonrpc_peer *p, const char *buf, size_t len, char *reason,
                         size_t reason_len) __attribute__((warn_unused_result));

/* Forgets a pending call without calling its callback (the caller gave up on it, e.g.
 * sent notifications/cancelled); a late response to it is then ignored. Unknown id:
 * nothing happens. */
void jsonrpc_peer_forget(struct jsonrpc_peer *p, int64_t id);

/*
 * Every pending call's callback gets transport_error = reason (in the order they were
 * made), then none is pending. The peer is closed for good: later calls, notifies and
 * receives return ERR_CLOSED (a callback that issues a new call gets ERR_CLOSED too).
 */
void jsonrpc_peer_fail_all(struct jsonrpc_peer *p, const char *reason);

/* Calls made and not yet answered, failed or forgotten. */
size_t jsonrpc_peer_pending(const struct jsonrpc_peer *p);

/* Responses ignored so far (id not pending); for tests and logs. */
uint64_t jsonrpc_peer_ignored(const struct jsonrpc_peer *p);

/* Frees p; pending callbacks are NOT called. Accepts NULL. From inside a callback or
 * send: deferred until the outermost call into the peer returns. */
void jsonrpc_peer_free(struct jsonrpc_peer *p);

#endif
