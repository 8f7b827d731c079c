/*
 * mcp_http.h - the MCP client's HTTP transport (RUNNER-OPS.md 9.2): Streamable HTTP
 * (MCP specification 2025-06-18, "Transports"), with the specification's
 * backwards-compatibility fallback to the legacy HTTP+SSE transport (2024-11-05).
 *
 * A message transport: it carries JSON-RPC messages as bytes, each way, and knows
 * nothing of their contents (ids, initialize, pings are the JSON-RPC peer's business).
 * It runs on the runner's loop through httpc.h and never blocks it.
 *
 * Streamable HTTP: a POST per message to the URL. The answer is 202 (nothing), or 200
 * with an application/json body (one message or a batch) or a text/event-stream (each
 * event's data is a message, until the stream ends). Mcp-Session-Id is kept from the
 * first answer that carries one and sent on every later request; MCP-Protocol-Version
 * once the caller sets it. The optional GET stream is not opened. An answer stream that
 * breaks (a transfer error, or cut inside an event) after events with ids is resumed:
 * GET with Last-Event-ID, after 1 s, then 1.5 times longer each time up to 30 s, at most
 * 5 times (RUNNER-OPS.md 9.2 and 12, go-sdk's values); without an id it closes the
 * transport. A stream that ends cleanly is done, whatever it held.
 *
 * Legacy fallback: when the first POST gets a 4xx, the URL is opened with GET as an event
 * stream; its first "endpoint" event names the URL to POST to (resolved against the
 * URL, and refused unless it has the URL's scheme, host and port: the configured
 * headers carry credentials). Every message, the first one included, is POSTed there;
 * every "message" event of the stream is a message. The stream ending closes the
 * transport. Messages sent before the endpoint is known wait for it.
 *
 * Proxies: HTTP(S)_PROXY and NO_PROXY as webfetch reads them (webproxy.h), for each
 * request's URL. The webfetch address guard does not apply (RUNNER-OPS.md 9.3: reaching
 * servers inside the customer's network is the point).
 *
 * Not done: following redirects (a 3xx closes the transport); timeouts beyond the
 * connect timeout (the caller's call and connect deadlines bound the exchange); the
 * stream's retry field (the delays above are used instead).
 */
#ifndef CREDBROKER_MCP_HTTP_H
#define CREDBROKER_MCP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct mcp_http;
struct webproxy;

/* The default of max_message_bytes: RUNNER-OPS.md 11, tasks.max_message_bytes. */
#define MCP_HTTP_MAX_MESSAGE_BYTES (16u * 1024 * 1024)
#define MCP_HTTP_CONNECT_TIMEOUT_MS 30000u
/* How long the DELETE that ends a session may take after mcp_http_close. */
#define MCP_HTTP_DELETE_TIMEOUT_MS 2000u

struct mcp_http_options {
    const char *url; /* http:// or https:// */
    /* Set on every request, in this order (the caller has merged headers and
     * dynamic_headers). A header the transport owns (Content-Type, Accept,
     * Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID, Content-Length,
     * Transfer-Encoding, Expect) is not sent from here. */
    char *const *header_names, *const *header_values;
    size_t nheaders;
    bool tls_skip_verify;         /* CURLOPT_SSL_VERIFYPEER and VERIFYHOST 0 */
    const char *cacert;           /* NULL: the system's CAs */
    const struct webproxy *proxy; /* NULL: direct; else must outlive the transport */
    size_t max_message_bytes;     /* one message, one SSE event; 0: the default */
    uint64_t connect_timeout_ms;  /* 0: the default */
};

struct mcp_http_events {
    /* One JSON-RPC message (an object or a batch array), as bytes; valid until the
     * callback returns. From a loop callback of the transport's own: the callback may
     * send, and may close the transport. */
    void (*on_message)(struct mcp_http *t, const char *msg, size_t len, void *data);
    /* The transport is broken: once, and no on_message after it. reason is one line
     * (no URL in it, so no credential of a URL's). The caller still calls
     * mcp_http_close to free it. Also from a loop callback of its own. */
    void (*on_closed)(struct mcp_http *t, const char *reason, void *data);
};

/*
 * A transport to o->url; nothing is sent until the first mcp_http_send. o's strings are
 * copied. Returns 0 and *out, or ERR_INVALID (a bad URL or header: err says which),
 * ERR_UPSTREAM (libcurl cannot be loaded) or ERR_NOMEM, with err filled.
 */
int mcp_http_start(uv_loop_t *loop, const struct mcp_http_options *o,
                   const struct mcp_http_events *ev, void *data, struct mcp_http **out, char *err,
                   size_t errlen) __attribute__((warn_unused_result));

/*
 * Sends one message (msg[0..len), copied). Its answer, if any, comes to on_message.
 * Returns 0, ERR_TOO_LARGE (len over max_message_bytes), ERR_CLOSED (the transport is
 * broken or closing) or ERR_NOMEM. A failure after the return comes to on_closed.
 */
int mcp_http_send(struct mcp_http *t, const char *msg, size_t len)
    __attribute__((warn_unused_result));

/* The negotiated protocol version, sent as MCP-Protocol-Version on every later request
 * (after initialize). A version holding a byte outside visible ASCII is ignored. */
void mcp_http_set_protocol_version(struct mcp_http *t, const char *version);

/*
 * Closes: cancels every transfer; when the server issued a session id, sends DELETE
 * with it (fire and forget, at most MCP_HTTP_DELETE_TIMEOUT_MS, errors ignored); the
 * memory goes once that and the libuv handles are done. No callback comes after this.
 * Accepts NULL.
 */
void mcp_http_close(struct mcp_http *t);

/* True once the transport fell back to legacy HTTP+SSE (for tests and logs). */
bool mcp_http_is_legacy(const struct mcp_http *t);

/* The session id the server issued, or NULL (for tests and logs; borrowed). */
const char *mcp_http_session_id(const struct mcp_http *t);

#endif
