/*
 * fileop_mcp.c - the mcp_call and mcp_list_tools operations (RUNNER-OPS.md 9.5, 9.6): a
 * connection from the pool (mcp_pool.h) and one request on it, on the loop; the result
 * (content extraction, the section 4 spill, the message ceiling) built on the pool.
 *
 * Any failure of the request (transport, protocol, timeout, cancel) closes the
 * connection (9.4); a tool's own isError does not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "fileop_internal.h"
#include "log.h"
#include "mcp_client.h"
#include "mcp_key.h"
#include "mcp_pool.h"
#include "proto.h"

#define MCP_CALL_DEFAULT_TIMEOUT 60  /* seconds, Go's DefaultCallTimeout */
#define MCP_CALL_MAX_TIMEOUT 600
#define MCP_LIST_TIMEOUT_MS (60 * 1000) /* RUNNER-OPS 9.6, interim */

/* The transport names of RUNNER-OPS.md 9.2. */
static bool known_transport(const char *t)
{
    static const char *const names[] = {"stdio", "sse", "http", "streamable_http",
                                        "streamable-http"};

    for (size_t i = 0; t != NULL && i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(t, names[i]) == 0)
            return true;
    }
    return false;
}

static const struct mcp_server_args *server_of(const struct fileop *op)
{
    return op->mcp.listing ? &op->args.mcp_list_tools.server : &op->args.mcp_call.server;
}

static const char *server_name(const struct fileop *op)
{
    return server_of(op)->name != NULL ? server_of(op)->name : "";
}

/* Go's texts for a request that failed: the listing's, or the call's naming its tool. */
static void fail_request(struct fileop *op, const char *reason)
{
    const char *tool = op->args.mcp_call.tool_name;

    if (op->mcp.listing)
        fileop__fail(op, "failed to list tools: %s", reason);
    else
        fileop__fail(op, "failed to call tool '%s': %s", tool != NULL ? tool : "", reason);
}

/* headers, then dynamic_headers replacing a header of the same name (case-insensitive). */
static int merge_headers(struct fileop_mcp *m, const struct mcp_server_args *s)
{
    size_t n = 0, cap = s->headers.n + s->dynamic_headers.n;

    if (cap == 0)
        return 0;
    if ((m->header_names = calloc(cap, sizeof(char *))) == NULL ||
        (m->header_values = calloc(cap, sizeof(char *))) == NULL)
        return ERR_NOMEM;
    for (size_t i = 0; i < s->headers.n; i++) {
        bool overridden = false;

        for (size_t j = 0; j < s->dynamic_headers.n && !overridden; j++)
            overridden = strcasecmp(s->headers.keys[i], s->dynamic_headers.keys[j]) == 0;
        if (!overridden) {
            m->header_names[n] = s->headers.keys[i];
            m->header_values[n++] = s->headers.values[i];
        }
    }
    for (size_t j = 0; j < s->dynamic_headers.n; j++) {
        m->header_names[n] = s->dynamic_headers.keys[j];
        m->header_values[n++] = s->dynamic_headers.values[j];
    }
    m->nheaders = n;
    return 0;
}

static int config_of(struct fileop *op, struct mcp_server_config *c)
{
    const struct mcp_server_args *s = server_of(op);
    struct fileop_mcp *m = &op->mcp;
    int r;

    memset(c, 0, sizeof(*c));
    if ((r = merge_headers(m, s)) != 0 || (r = mcp_key_compute(s, c->key)) != 0)
        return r;
    c->name = s->name != NULL ? s->name : "";
    c->transport = s->transport;
    c->command = s->command != NULL ? s->command : "";
    c->url = s->url;
    c->args = s->args.v;
    c->nargs = s->args.n;
    c->env_names = s->env.keys;
    c->env_values = s->env.values;
    c->nenv = s->env.n;
    c->header_names = m->header_names;
    c->header_values = m->header_values;
    c->nheaders = m->nheaders;
    c->tls_skip_verify = s->tls_skip_verify;
    return 0;
}

/* ---- the outcome, on the loop ---- */

static void on_timer_closed(uv_handle_t *h)
{
    free(h);
}

/* Ends the op from a loop turn of its own: error (op->error) to done, or the result to
 * the pool's work. */
static void on_finish(uv_timer_t *t)
{
    struct fileop *op = t->data;

    if (op->mcp.failed)
        op->done(op, false, NULL, op->error, op->data); /* op may be gone now */
    else
        fileop__queue(op);
}

static void mcp_finish(struct fileop *op, bool failed)
{
    struct fileop_mcp *m = &op->mcp;

    if (m->finished)
        return;
    m->finished = true;
    m->failed = failed;
    if (m->session != NULL) { /* a failed request closes its connection (9.4) */
        mcp_session_release(m->session, failed);
        m->session = NULL;
    }
    uv_timer_stop(m->timer);
    uv_timer_start(m->timer, on_finish, 0, 0);
}

static void on_result(void *ud, const json_t *result, const char *error)
{
    struct fileop *op = ud;
    struct fileop_mcp *m = &op->mcp;

    m->request = NULL;
    if (error != NULL) {
        fail_request(op, error);
        mcp_finish(op, true);
        return;
    }
    /* A copy of its own: the pool's work reads it on another thread. */
    if ((m->result = json_deep_copy(result)) == NULL) {
        fileop__fail(op, "out of memory");
        mcp_finish(op, true);
        return;
    }
    mcp_finish(op, false);
}

static void on_deadline(uv_timer_t *t)
{
    struct fileop *op = t->data;
    struct fileop_mcp *m = &op->mcp;

    if (m->request != NULL)
        mcp_op_cancel(m->request, "context deadline exceeded");
    m->request = NULL;
    fail_request(op, "context deadline exceeded");
    mcp_finish(op, true);
}

static void on_acquired(struct mcp_session *s, const char *error, void *ud)
{
    struct fileop *op = ud;
    struct fileop_mcp *m = &op->mcp;
    struct mcp_conn *c;
    json_t *empty = NULL;
    int r;

    m->wait = NULL;
    if (error != NULL) {
        fileop__fail(op, "failed to connect to MCP server '%s': %s", server_name(op), error);
        mcp_finish(op, true);
        return;
    }
    m->session = s;
    c = mcp_session_conn(s);
    if (m->listing) {
        r = mcp_conn_list_tools(c, on_result, op, &m->request);
    } else {
        const json_t *args = op->args.mcp_call.args;

        /* Absent or null arguments are {} (RUNNER-OPS 9.5). */
        if (args == NULL || json_is_null(args))
            args = empty = json_object();
        r = args == NULL ? ERR_NOMEM
                         : mcp_conn_call_tool(c, op->args.mcp_call.tool_name != NULL
                                                     ? op->args.mcp_call.tool_name
                                                     : "",
                                              args, on_result, op, &m->request);
        json_decref(empty);
    }
    if (r != 0) {
        fail_request(op, mcp_conn_broken_reason(c)[0] != '\0' ? mcp_conn_broken_reason(c)
                                                              : "cannot send the request");
        mcp_finish(op, true);
        return;
    }
    /* The server has it now (tests wait for this line before they cancel). */
    log_debug("mcp: %s sent to '%s'", m->listing ? "tools/list" : "tools/call", server_name(op));
    uv_timer_start(m->timer, on_deadline, m->timeout_ms, 0);
}

/* ---- start, cancel, release ---- */

/* Go's check of tool arguments: an object (or nothing). */
static bool tool_args_ok(struct fileop *op)
{
    const json_t *a = op->args.mcp_call.args;
    const char *kind;

    if (a == NULL || json_is_null(a) || json_is_object(a))
        return true;
    kind = json_is_array(a) ? "array" : json_is_string(a) ? "string"
           : json_is_boolean(a) ? "bool" : "number";
    fileop__fail(op, "failed to parse tool arguments: json: cannot unmarshal %s into Go value of "
                 "type map[string]interface {}", kind);
    return false;
}

static int mcp_start(uv_loop_t *loop, struct fileop *op, bool listing)
{
    struct fileop_mcp *m = &op->mcp;
    struct mcp_server_config cfg;
    const char *transport;
    int r;

    m->listing = listing;
    if ((m->timer = malloc(sizeof(*m->timer))) == NULL) {
        fileop__fail(op, "out of memory");
        m->refused = true;
        return 0;
    }
    uv_timer_init(loop, m->timer);
    m->timer->data = op;
    if (!listing) {
        int64_t t = op->args.mcp_call.timeout;

        t = t <= 0 ? MCP_CALL_DEFAULT_TIMEOUT : t > MCP_CALL_MAX_TIMEOUT ? MCP_CALL_MAX_TIMEOUT : t;
        m->timeout_ms = (uint64_t)t * 1000;
        if (!tool_args_ok(op)) {
            m->refused = true;
            return 0;
        }
    } else {
        m->timeout_ms = MCP_LIST_TIMEOUT_MS;
    }
    transport = server_of(op)->transport;
    if (!known_transport(transport)) {
        fileop__fail(op, "unsupported transport type '%s'", transport != NULL ? transport : "");
        m->refused = true;
        return 0;
    }
    if (op->limits.mcp == NULL) {
        fileop__fail(op, "failed to connect to MCP server '%s': MCP is not available",
                     server_name(op));
        m->refused = true;
        return 0;
    }
    if ((r = config_of(op, &cfg)) != 0 ||
        (r = mcp_pool_acquire(op->limits.mcp, &cfg, on_acquired, op, &m->wait)) != 0) {
        fileop__fail(op, "out of memory");
        m->refused = true;
        return 0;
    }
    return 1;
}

int fileop__mcp_call_start(uv_loop_t *loop, struct fileop *op)
{
    return mcp_start(loop, op, false);
}

int fileop__mcp_list_start(uv_loop_t *loop, struct fileop *op)
{
    return mcp_start(loop, op, true);
}

void fileop__mcp_cancel(struct fileop *op)
{
    struct fileop_mcp *m = &op->mcp;

    if (m->finished || m->refused)
        return;
    if (m->wait != NULL) {
        mcp_wait_cancel(m->wait);
        m->wait = NULL;
        fileop__fail(op, "failed to connect to MCP server '%s': context canceled",
                     server_name(op));
    } else {
        if (m->request != NULL)
            mcp_op_cancel(m->request, "context canceled");
        m->request = NULL;
        fail_request(op, "context canceled");
    }
    mcp_finish(op, true);
}

void fileop__mcp_free(struct fileop *op)
{
    struct fileop_mcp *m = &op->mcp;

    if (m->wait != NULL)
        mcp_wait_cancel(m->wait);
    if (m->request != NULL)
        mcp_op_cancel(m->request, "context canceled");
    if (m->session != NULL)
        mcp_session_release(m->session, m->request != NULL);
    if (m->timer != NULL)
        uv_close((uv_handle_t *)m->timer, on_timer_closed);
    free(m->header_names);
    free(m->header_values);
    json_decref(m->result);
    json_decref(m->built);
    memset(m, 0, sizeof(*m));
}

/* ---- the result, on the pool ---- */

/* Go's ExtractContent: the text of each text item, "[Image: <mimeType>]" for each image,
 * joined with "\n"; other kinds dropped. */
static char *extract_content(const json_t *content, size_t *len)
{
    size_t i, cap = 1, n = 0;
    const json_t *item;
    char *s;

    json_array_foreach(content, i, item) {
        const char *type = json_string_value(json_object_get(item, "type"));

        if (type != NULL && strcmp(type, "text") == 0)
            cap += json_string_length(json_object_get(item, "text")) + 1;
        else if (type != NULL && strcmp(type, "image") == 0)
            cap += json_string_length(json_object_get(item, "mimeType")) + 12;
    }
    if ((s = malloc(cap)) == NULL)
        return NULL;
    json_array_foreach(content, i, item) {
        const char *type = json_string_value(json_object_get(item, "type"));
        const json_t *v;

        if (type == NULL || (strcmp(type, "text") != 0 && strcmp(type, "image") != 0))
            continue;
        if (n > 0)
            s[n++] = '\n';
        if (strcmp(type, "text") == 0) {
            v = json_object_get(item, "text");
            memcpy(s + n, json_string_value(v) != NULL ? json_string_value(v) : "",
                   json_string_length(v));
            n += json_string_length(v);
        } else {
            v = json_object_get(item, "mimeType");
            n += (size_t)snprintf(s + n, cap - n, "[Image: %s]",
                                  json_string_value(v) != NULL ? json_string_value(v) : "");
        }
    }
    s[n] = '\0';
    *len = n;
    return s;
}

static int build_call(struct fileop *op)
{
    const json_t *r = op->mcp.result, *structured = json_object_get(r, "structuredContent");
    size_t len = 0;
    char *text = extract_content(json_object_get(r, "content"), &len);
    json_t *res = NULL;
    int rc = ERR_NOMEM;

    if (text == NULL || (res = json_object()) == NULL ||
        (rc = fileop__put_content(op, res, "mcp", (const uint8_t *)text, len, false)) != 0)
        goto out;
    rc = ERR_NOMEM;
    if ((json_is_true(json_object_get(r, "isError")) &&
         json_object_set_new(res, "is_error", json_true()) != 0) ||
        (json_is_object(structured) &&
         json_object_set(res, "structured_content", (json_t *)structured) != 0))
        goto out;
    op->mcp.built = res;
    res = NULL;
    rc = 0;
out:
    free(text);
    json_decref(res);
    return rc;
}

/* {"tools": [{"name", "description", "input_schema"?}]}, trailing tools dropped (and
 * truncated) past the message ceiling (2.7). */
static int build_list(struct fileop *op)
{
    const json_t *tools = json_object_get(op->mcp.result, "tools"), *t;
    json_t *res = json_object(), *out = json_array();
    size_t i, used = 64;
    bool cut = false;

    if (res == NULL || out == NULL || json_object_set_new(res, "tools", out) != 0) {
        json_decref(res);
        json_decref(out);
        return ERR_NOMEM;
    }
    json_array_foreach(tools, i, t) {
        const char *name = json_string_value(json_object_get(t, "name"));
        const char *desc = json_string_value(json_object_get(t, "description"));
        const json_t *schema = json_object_get(t, "inputSchema");
        json_t *e = json_pack("{s:s, s:s}", "name", name != NULL ? name : "", "description",
                              desc != NULL ? desc : "");
        char *text;

        if (e == NULL || (json_is_object(schema) &&
                          json_object_set(e, "input_schema", (json_t *)schema) != 0)) {
            json_decref(e);
            json_decref(res);
            return ERR_NOMEM;
        }
        text = json_dumps(e, JSON_COMPACT);
        used += text != NULL ? strlen(text) + 1 : 0;
        free(text);
        if (used > op->limits.max_result_bytes) {
            json_decref(e);
            cut = true;
            break;
        }
        if (json_array_append_new(out, e) != 0) {
            json_decref(res);
            return ERR_NOMEM;
        }
    }
    if (cut && json_object_set_new(res, "truncated", json_true()) != 0) {
        json_decref(res);
        return ERR_NOMEM;
    }
    op->mcp.built = res;
    return 0;
}

void fileop__mcp_work(struct fileop *op)
{
    if (op->mcp.refused)
        return;
    if ((op->mcp.listing ? build_list(op) : build_call(op)) != 0) {
        fileop__fail(op, "out of memory");
        return;
    }
    op->success = true;
}

json_t *fileop__mcp_result(const struct fileop *op)
{
    return json_incref(op->mcp.built);
}
