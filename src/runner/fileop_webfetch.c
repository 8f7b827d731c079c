/*
 * fileop_webfetch.c - the webfetch operation (RUNNER-OPS.md 8): the request runs on the
 * loop (webfetch.h), then the page is converted and spilled on libuv's pool (a 5 MiB
 * page takes the HTML parser a while), and the result is built there too.
 */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fileop_internal.h"
#include "html2md.h"
#include "proto.h"
#include "webfetch.h"

#define WEBFETCH_MAX_BODY (5 * 1024 * 1024) /* Go's maxResponseSize */
#define WEBFETCH_DEFAULT_TIMEOUT 30         /* seconds, when timeout <= 0 */
#define WEBFETCH_MAX_TIMEOUT 120

/* The Accept header the Go runner sends for each format. */
static const char *accept_for(const char *format)
{
    if (strcmp(format, "markdown") == 0)
        return "text/markdown, text/html;q=0.9, */*;q=0.8";
    if (strcmp(format, "text") == 0)
        return "text/plain, text/html;q=0.9, */*;q=0.8";
    return "text/html, */*;q=0.8";
}

static const char *format_of(const struct fileop *op)
{
    return op->args.webfetch.format != NULL ? op->args.webfetch.format : "markdown";
}

/* The request is over: its outcome goes to the pool, or a failure straight to done. */
static void on_fetched(struct webfetch *f, const struct webfetch_response *resp,
                       const char *error, void *data)
{
    struct fileop *op = data;
    struct fileop_webfetch *w = &op->web;
    struct webfetch_response *r = (struct webfetch_response *)resp;

    (void)f;
    if (error != NULL) {
        op->done(op, false, NULL, error, op->data); /* op may be gone now */
        return;
    }
    w->status = r->status;
    w->final_url = r->final_url;
    w->content_type = r->content_type;
    w->body = r->body;
    w->body_len = r->body_len;
    r->final_url = r->content_type = NULL;
    r->body = NULL;
    fileop__queue(op);
}

int fileop__webfetch_start(uv_loop_t *loop, struct fileop *op)
{
    const struct webfetch_args *a = &op->args.webfetch;
    const char *url = a->url != NULL ? a->url : "";
    int64_t timeout = a->timeout;
    struct webfetch_options o = {
        .url = url,
        .accept = accept_for(format_of(op)),
        .max_body = WEBFETCH_MAX_BODY,
        .guard = op->limits.webfetch_guard,
        .proxy = op->limits.webfetch_proxy,
        .cacert = op->limits.webfetch_cacert,
    };

    /* Go's check: a case-sensitive prefix, nothing more. */
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        fileop__fail(op, "valid http/https url is required");
        op->web.refused = true;
        return 0;
    }
    if (timeout <= 0)
        timeout = WEBFETCH_DEFAULT_TIMEOUT;
    if (timeout > WEBFETCH_MAX_TIMEOUT)
        timeout = WEBFETCH_MAX_TIMEOUT;
    o.timeout_ms = (uint64_t)timeout * 1000;
    if (webfetch_start(loop, &o, on_fetched, op, &op->web.fetch) != 0) {
        fileop__fail(op, "out of memory");
        op->web.refused = true;
        return 0;
    }
    return 1;
}

void fileop__webfetch_cancel(struct fileop *op)
{
    if (op->web.fetch != NULL)
        webfetch_cancel(op->web.fetch);
}

void fileop__webfetch_free(struct fileop *op)
{
    struct fileop_webfetch *w = &op->web;

    webfetch_free(w->fetch);
    free(w->final_url);
    free(w->content_type);
    free(w->body);
    json_decref(w->result);
    memset(w, 0, sizeof(*w));
}

/* ---- on the pool ---- */

/* The page as the format asks: HTML converted (markdown falls back to text, and text to
 * the raw page, as Go's does when its converter fails), anything else raw. *out is NULL
 * for the raw body. */
static int webfetch_convert(const struct fileop *op, char **out, size_t *out_len)
{
    const struct fileop_webfetch *w = &op->web;
    const char *format = format_of(op);
    bool markdown = strcmp(format, "markdown") == 0;
    int r = ERR_INVALID;

    *out = NULL;
    *out_len = 0;
    /* Go's test: the Content-Type contains "text/html", case-sensitively. */
    if (w->content_type == NULL || strstr(w->content_type, "text/html") == NULL ||
        (!markdown && strcmp(format, "text") != 0))
        return 0;
    if (markdown)
        r = html2md_convert(w->body, w->body_len, w->content_type, w->final_url,
                            HTML2MD_MARKDOWN, out, out_len);
    if (r != 0 && r != ERR_NOMEM)
        r = html2md_convert(w->body, w->body_len, w->content_type, w->final_url, HTML2MD_TEXT,
                            out, out_len);
    return r == ERR_NOMEM ? r : 0;
}

static int webfetch_build(struct fileop *op, const uint8_t *content, size_t len)
{
    struct fileop_webfetch *w = &op->web;
    json_t *res = json_object();
    int r = ERR_NOMEM;

    if (res == NULL || (r = fileop__put_content(op, res, "webfetch", content, len, false)) != 0)
        goto out;
    r = ERR_NOMEM;
    if (json_object_set_new(res, "url", proto_json_bytes((const uint8_t *)w->final_url,
                                                         strlen(w->final_url))) != 0 ||
        json_object_set_new(res, "status_code", json_integer(w->status)) != 0)
        goto out;
    w->result = res;
    res = NULL;
    r = 0;
out:
    json_decref(res);
    return r;
}

void fileop__webfetch_work(struct fileop *op)
{
    struct fileop_webfetch *w = &op->web;
    char *converted = NULL;
    size_t len = 0;
    int r;

    if (w->refused)
        return; /* start failed it */
    if ((r = webfetch_convert(op, &converted, &len)) == 0)
        r = converted != NULL ? webfetch_build(op, (const uint8_t *)converted, len)
                              : webfetch_build(op, w->body != NULL ? w->body : (const uint8_t *)"",
                                               w->body_len);
    free(converted);
    if (r != 0) {
        fileop__fail(op, "out of memory");
        return;
    }
    op->success = true;
}

json_t *fileop__webfetch_result(const struct fileop *op)
{
    return json_incref(op->web.result);
}
