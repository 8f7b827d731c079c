/*
 * webfetch.h - one webfetch request (RUNNER-OPS.md 8) on the runner's event loop:
 * libcurl's multi interface driven by libuv, so that a slow page never holds the loop
 * that is also every running task's broker.
 *
 * A GET with the Go runner's headers, redirects followed here (not by libcurl) so that
 * each hop gets its own proxy choice (webproxy.h) and address check (netguard.h): the
 * check runs on every socket libcurl is about to connect, and through a proxy, whose own
 * address is exempt, on the target host resolved locally before the hop. One deadline
 * covers the whole exchange, body included (the Go runner's covers only the headers). The
 * body is decoded (gzip, br) and kept up to max_body bytes.
 */
#ifndef CREDBROKER_WEBFETCH_H
#define CREDBROKER_WEBFETCH_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct netguard;
struct webproxy;
struct webfetch;

#define WEBFETCH_MAX_REDIRECTS 10 /* Go's http.Client: requests in a chain, then refused */

struct webfetch_options {
    const char *url;             /* starts with http:// or https:// (the caller checks) */
    const char *accept;          /* the Accept header's value */
    uint64_t timeout_ms;         /* the whole exchange */
    size_t max_body;             /* decoded bytes kept; more is an error */
    const struct netguard *guard;
    const struct webproxy *proxy;
    const char *cacert;          /* a CA bundle, or NULL for the system's */
};

/* The outcome of a request that got its final response. Owned by the request; the done
 * callback may take body or final_url (and set them to NULL). */
struct webfetch_response {
    long status;
    char *final_url;
    char *content_type; /* NULL when the response had none */
    uint8_t *body;
    size_t body_len;
};

/*
 * Called once, on the loop, never from webfetch_start: resp with the final response, or
 * error with the text RUNNER-OPS.md 8 gives ("request timed out", "request failed: Get
 * \"<url>\": <reason>", "response too large (exceeds 5MB limit)", "failed to read
 * response: <reason>", "failed to create request: <reason>"). Free the request with
 * webfetch_free afterwards (also from here).
 */
typedef void (*webfetch_done_cb)(struct webfetch *f, const struct webfetch_response *resp,
                                 const char *error, void *data);

/* Starts a request; opts' strings are copied, guard and proxy must outlive it. Returns 0
 * and *out, or ERR_NOMEM (nothing started). */
int webfetch_start(uv_loop_t *loop, const struct webfetch_options *opts, webfetch_done_cb done,
                   void *data, struct webfetch **out) __attribute__((warn_unused_result));
/* Aborts the request: done follows with Go's "request failed: Get \"<url>\": context
 * canceled", unless it has run. Idempotent. */
void webfetch_cancel(struct webfetch *f);
/* Frees a request whose done has run (its memory goes once libuv has closed its
 * handles). Accepts NULL. */
void webfetch_free(struct webfetch *f);

#endif
