/*
 * httpc.h - libcurl's multi interface on the runner's loop, for the runner's own HTTP
 * clients: webfetch (webfetch.h) and MCP over HTTP. (The broker's upstream path does
 * without libcurl: src/broker/upstream.c, src/net.)
 *
 * The glue is curl's docs/examples/multi-uv.c: one uv_poll_t per socket, from libcurl's
 * opensocket to its closesocket (so libuv lets go of an fd before it is closed), one
 * timer for libcurl's timeouts. A client is one multi handle: its transfers share
 * connections and DNS answers, so each user decides what may share one (webfetch makes a
 * client per request, MCP one per session).
 *
 * Every transfer's outcome comes to its on_done from a loop callback, after libcurl has
 * returned: on_done may start, cancel or free transfers and close the client. The other
 * callbacks run inside libcurl and may only record things and answer.
 */
#ifndef CREDBROKER_HTTPC_H
#define CREDBROKER_HTTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <uv.h>

struct curl_api;
struct httpc;
struct httpc_xfer;

struct httpc_xfer_ops {
    /* The address a connection is about to be made to: false refuses it (libcurl then
     * tries the next address, or fails with CURLE_COULDNT_CONNECT). NULL: all allowed. */
    bool (*may_connect)(void *ud, const struct sockaddr *addr);
    /* One response header line as libcurl gives it (status lines and the blank line
     * included); false aborts the transfer. NULL: ignored. */
    bool (*on_header)(void *ud, const char *line, size_t len);
    /* Body bytes (decoded if the caller asked libcurl to decode); false aborts. */
    bool (*on_body)(void *ud, const char *data, size_t len);
    /* Once, unless the transfer was cancelled: rc and libcurl's error text ("" for
     * CURLE_OK). The transfer is out of the multi handle; free it with httpc_xfer_free. */
    void (*on_done)(struct httpc_xfer *x, CURLcode rc, const char *error, void *ud);
};

/* libcurl, loaded on first use (curl_api.h); NULL (logged) when it cannot be. */
const struct curl_api *httpc_curl(void);

/* A client on loop. Returns 0 and *out, ERR_UPSTREAM (no libcurl) or ERR_NOMEM. */
int httpc_new(uv_loop_t *loop, struct httpc **out) __attribute__((warn_unused_result));
/* Cancels every transfer (no on_done), closes the connections; the memory goes once
 * libuv has closed the handles. Not from inside libcurl's callbacks. Accepts NULL. */
void httpc_close(struct httpc *h);

/*
 * A new transfer on h, not started: *easy is its handle, for the caller's options (URL,
 * headers, timeouts...), except those httpc sets and owns: CURLOPT_PRIVATE, the
 * write, header, opensocket and closesocket functions and their data, and
 * CURLOPT_ERRORBUFFER. Returns 0, or ERR_NOMEM.
 */
int httpc_xfer_new(struct httpc *h, const struct httpc_xfer_ops *ops, void *ud,
                   struct httpc_xfer **out, CURL **easy) __attribute__((warn_unused_result));
/* Starts it: 0, or ERR_UPSTREAM (no on_done will come; free it). */
int httpc_xfer_start(struct httpc_xfer *x) __attribute__((warn_unused_result));
/* Stops a started transfer: no on_done comes. Not from inside libcurl's callbacks (return
 * false from them instead). */
void httpc_xfer_cancel(struct httpc_xfer *x);
/* Frees a transfer that is done, cancelled or never started. Accepts NULL. */
void httpc_xfer_free(struct httpc_xfer *x);
CURL *httpc_xfer_easy(const struct httpc_xfer *x);

/* For on_header: true when header line h (n bytes, as libcurl gives it) is a name:
 * value field whose name is name (given in lower case; compared case-insensitively);
 * then *v and *vlen are the value without surrounding blanks and end of line (a view
 * into h). */
bool httpc_header_value(const char *h, size_t n, const char *name, const char **v, size_t *vlen);

#endif
