/*
 * Unit tests for src/runner/mcp_client.c: the handshake (the version asked for, the
 * versions accepted, notifications/initialized after it), tools/list following
 * nextCursor, tools/call, cancel (notifications/cancelled, no callback), a server's
 * JSON-RPC error, garbage and a transport end breaking every pending operation. The
 * server's side is played by the test: what the client sends is recorded, the answers
 * are written here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "mcp_client.h"

struct wire {
    json_t *sent[64];
    size_t nsent;
    char version[32];
};

static int wire_send(void *t, const char *msg, size_t len)
{
    struct wire *w = t;

    assert_true(w->nsent < 64);
    w->sent[w->nsent] = json_loadb(msg, len, 0, NULL);
    assert_non_null(w->sent[w->nsent]);
    w->nsent++;
    return 0;
}

static void wire_version(void *t, const char *v)
{
    snprintf(((struct wire *)t)->version, sizeof(((struct wire *)t)->version), "%s", v);
}

static void wire_free(struct wire *w)
{
    for (size_t i = 0; i < w->nsent; i++)
        json_decref(w->sent[i]);
}

static const char *method_of(const struct wire *w, size_t i)
{
    return json_string_value(json_object_get(w->sent[i], "method"));
}

static json_int_t id_of(const struct wire *w, size_t i)
{
    return json_integer_value(json_object_get(w->sent[i], "id"));
}

/* The server answers request i with result (a JSON text). */
static void answer(struct mcp_conn *c, const struct wire *w, size_t i, const char *result)
{
    char msg[4096];

    snprintf(msg, sizeof(msg), "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"result\":%s}",
             (long long)id_of(w, i), result);
    mcp_conn_receive(c, msg, strlen(msg));
}

struct outcome {
    int calls;
    char error[512];
    json_t *result;
};

static void on_ready(struct mcp_conn *c, const char *error, void *ud)
{
    struct outcome *o = ud;

    (void)c;
    o->calls++;
    snprintf(o->error, sizeof(o->error), "%s", error != NULL ? error : "");
}

static void on_result(void *ud, const json_t *result, const char *error)
{
    struct outcome *o = ud;

    o->calls++;
    snprintf(o->error, sizeof(o->error), "%s", error != NULL ? error : "");
    o->result = result != NULL ? json_deep_copy(result) : NULL;
}

/* A connection through its handshake, the server answering version. */
static struct mcp_conn *connected(struct wire *w, const char *version, struct outcome *o)
{
    struct mcp_transport tr = {w, wire_send, wire_version};
    struct mcp_conn *c = mcp_conn_new(&tr);
    char result[256];

    assert_non_null(c);
    assert_int_equal(mcp_conn_initialize(c, on_ready, o), 0);
    assert_int_equal(o->calls, 0); /* never from inside initialize */
    assert_string_equal(method_of(w, 0), "initialize");
    snprintf(result, sizeof(result),
             "{\"protocolVersion\":\"%s\",\"capabilities\":{},\"serverInfo\":{\"name\":\"t\"}}",
             version);
    answer(c, w, 0, result);
    return c;
}

static void test_handshake(void **state)
{
    struct wire w = {0};
    struct outcome o = {0};
    struct mcp_conn *c = connected(&w, "2025-03-26", &o);
    const json_t *p = json_object_get(w.sent[0], "params");

    (void)state;
    assert_string_equal(json_string_value(json_object_get(p, "protocolVersion")), "2025-06-18");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(p, "clientInfo"), "name")),
        "flashduty-runner");
    assert_int_equal(o.calls, 1);
    assert_string_equal(o.error, "");
    assert_true(mcp_conn_ready(c));
    assert_string_equal(mcp_conn_protocol_version(c), "2025-03-26");
    assert_string_equal(w.version, "2025-03-26");
    assert_int_equal(w.nsent, 2);
    assert_string_equal(method_of(&w, 1), "notifications/initialized");
    assert_null(json_object_get(w.sent[1], "id"));
    mcp_conn_free(c);
    wire_free(&w);
}

static void test_an_unknown_version_fails_the_connect(void **state)
{
    struct wire w = {0};
    struct outcome o = {0};
    struct mcp_conn *c = connected(&w, "2099-01-01", &o);

    (void)state;
    assert_int_equal(o.calls, 1);
    assert_non_null(strstr(o.error, "protocol version"));
    assert_false(mcp_conn_ready(c));
    assert_int_equal(w.nsent, 1); /* no notifications/initialized */
    mcp_conn_free(c);
    wire_free(&w);
}

static void test_list_follows_every_page(void **state)
{
    struct wire w = {0};
    struct outcome o = {0}, l = {0};
    struct mcp_conn *c = connected(&w, "2025-06-18", &o);
    struct mcp_op *op;

    (void)state;
    assert_int_equal(mcp_conn_list_tools(c, on_result, &l, &op), 0);
    assert_string_equal(method_of(&w, 2), "tools/list");
    assert_null(json_object_get(w.sent[2], "params"));
    answer(c, &w, 2, "{\"tools\":[{\"name\":\"a\"}],\"nextCursor\":\"p2\"}");
    assert_int_equal(l.calls, 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(w.sent[3], "params"), "cursor")), "p2");
    answer(c, &w, 3, "{\"tools\":[{\"name\":\"b\"},{\"name\":\"c\"}],\"nextCursor\":\"\"}");
    assert_int_equal(l.calls, 1);
    assert_string_equal(l.error, "");
    assert_int_equal(json_array_size(json_object_get(l.result, "tools")), 3);
    json_decref(l.result);
    mcp_conn_free(c);
    wire_free(&w);
}

static void test_call_error_and_cancel(void **state)
{
    struct wire w = {0};
    struct outcome o = {0}, r1 = {0}, r2 = {0}, r3 = {0};
    struct mcp_conn *c = connected(&w, "2025-06-18", &o);
    json_t *args = json_pack("{s:s}", "message", "hi");
    struct mcp_op *op1, *op2, *op3;
    char msg[256];

    (void)state;
    assert_int_equal(mcp_conn_call_tool(c, "echo", args, on_result, &r1, &op1), 0);
    assert_int_equal(mcp_conn_call_tool(c, "fail", args, on_result, &r2, &op2), 0);
    assert_int_equal(mcp_conn_call_tool(c, "slow", args, on_result, &r3, &op3), 0);
    assert_string_equal(method_of(&w, 2), "tools/call");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(w.sent[2], "params"), "arguments"),
                            "message")),
                        "hi");
    answer(c, &w, 2, "{\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}");
    assert_int_equal(r1.calls, 1);
    assert_non_null(json_object_get(r1.result, "content"));
    snprintf(msg, sizeof(msg),
             "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"error\":{\"code\":-32602,\"message\":\"Unknown "
             "tool: fail\"}}",
             (long long)id_of(&w, 3));
    mcp_conn_receive(c, msg, strlen(msg));
    assert_int_equal(r2.calls, 1);
    assert_string_equal(r2.error, "Unknown tool: fail");
    assert_true(mcp_conn_ready(c)); /* a JSON-RPC error does not break the connection */
    mcp_op_cancel(op3, "context canceled");
    assert_string_equal(method_of(&w, 5), "notifications/cancelled");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(w.sent[5], "params"), "requestId")),
        id_of(&w, 4));
    answer(c, &w, 4, "{\"content\":[]}"); /* too late: nobody is told */
    assert_int_equal(r3.calls, 0);
    json_decref(r1.result);
    json_decref(args);
    mcp_conn_free(c);
    wire_free(&w);
}

static void test_garbage_and_transport_end_break_everything(void **state)
{
    struct wire w = {0};
    struct outcome o = {0}, r1 = {0}, r2 = {0};
    struct mcp_conn *c = connected(&w, "2025-06-18", &o);
    json_t *args = json_object();
    struct mcp_op *op;

    (void)state;
    assert_int_equal(mcp_conn_call_tool(c, "a", args, on_result, &r1, &op), 0);
    mcp_conn_receive(c, "not json", 8);
    assert_int_equal(r1.calls, 1);
    assert_non_null(strstr(r1.error, "invalid message from the server"));
    assert_false(mcp_conn_ready(c));
    assert_int_not_equal(mcp_conn_call_tool(c, "b", args, on_result, &r2, &op), 0);
    mcp_conn_free(c);
    wire_free(&w);

    memset(&w, 0, sizeof(w));
    memset(&o, 0, sizeof(o));
    memset(&r1, 0, sizeof(r1));
    {
        struct mcp_transport tr = {&w, wire_send, NULL};

        c = mcp_conn_new(&tr);
        assert_int_equal(mcp_conn_initialize(c, on_ready, &o), 0);
        mcp_conn_transport_closed(c, "server exited with status 1");
        assert_int_equal(o.calls, 1);
        assert_string_equal(o.error, "server exited with status 1");
        assert_string_equal(mcp_conn_broken_reason(c), "server exited with status 1");
    }
    json_decref(args);
    mcp_conn_free(c);
    wire_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake),
        cmocka_unit_test(test_an_unknown_version_fails_the_connect),
        cmocka_unit_test(test_list_follows_every_page),
        cmocka_unit_test(test_call_error_and_cancel),
        cmocka_unit_test(test_garbage_and_transport_end_break_everything),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
