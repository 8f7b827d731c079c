/*
 * Unit tests for src/runner/jsonrpc.c: the JSON-RPC 2.0 peer of one MCP connection.
 * The send function records what the peer sends; callbacks record what they got.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "jsonrpc.h"

/* What the peer sent, and how the next sends should fail. */
struct wire {
    char *msgs[16];
    size_t n;
    int fail_with; /* send returns this when non-zero */
};

static int record_send(void *ud, const char *msg, size_t len)
{
    struct wire *w = ud;

    assert_int_equal(msg[len], '\0');
    assert_int_equal(strlen(msg), len);
    if (w->fail_with != 0)
        return w->fail_with;
    assert_true(w->n < sizeof(w->msgs) / sizeof(w->msgs[0]));
    w->msgs[w->n] = strdup(msg);
    assert_non_null(w->msgs[w->n]);
    w->n++;
    return 0;
}

static void wire_clear(struct wire *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->msgs[i]);
    w->n = 0;
}

/* One call's outcome; actions a callback takes back into the peer. */
struct outcome {
    int calls;
    char result[256]; /* the result, compact JSON */
    int64_t code;
    char message[64];
    char data[64];
    char transport[64];
    struct jsonrpc_peer *peer;
    int issue_call; /* call "next" from the callback */
    int64_t next_id;
    int next_rc;
    int64_t forget_id; /* forget this id from the callback */
    int fail_all;
    int free_peer;
    struct outcome *next; /* the outcome of the call issued from here */
};

static void dump_to(const json_t *v, char *dst, size_t n)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

    assert_non_null(s);
    snprintf(dst, n, "%s", s);
    free(s);
}

static void result_cb(void *ud, const json_t *result, const struct jsonrpc_error *err,
                      const char *transport_error)
{
    struct outcome *o = ud;

    assert_int_equal((result != NULL) + (err != NULL) + (transport_error != NULL), 1);
    o->calls++;
    if (result != NULL)
        dump_to(result, o->result, sizeof(o->result));
    if (err != NULL) {
        o->code = err->code;
        snprintf(o->message, sizeof(o->message), "%s", err->message);
        if (err->data != NULL)
            dump_to(err->data, o->data, sizeof(o->data));
    }
    if (transport_error != NULL)
        snprintf(o->transport, sizeof(o->transport), "%s", transport_error);
    if (o->issue_call)
        o->next_rc = jsonrpc_peer_call(o->peer, "next", NULL, result_cb, o->next, &o->next_id);
    if (o->forget_id != 0)
        jsonrpc_peer_forget(o->peer, o->forget_id);
    if (o->fail_all)
        jsonrpc_peer_fail_all(o->peer, "gone from a callback");
    if (o->free_peer)
        jsonrpc_peer_free(o->peer);
}

struct notes {
    int n;
    char last[128]; /* "method params" */
};

static void notify_cb(void *ud, const char *method, const json_t *params)
{
    struct notes *s = ud;
    char p[64] = "-";

    if (params != NULL)
        dump_to(params, p, sizeof(p));
    snprintf(s->last, sizeof(s->last), "%s %s", method, p);
    s->n++;
}

static struct jsonrpc_peer *new_peer(struct wire *w, size_t max)
{
    struct jsonrpc_peer *p = jsonrpc_peer_new(record_send, w, max);

    assert_non_null(p);
    return p;
}

/* The reason of the last feed(). */
static char reason[128];

/* Gives text to the peer as one message; returns jsonrpc_peer_receive's code. */
static int feed(struct jsonrpc_peer *p, const char *text)
{
    memset(reason, 'x', sizeof(reason)); /* the peer must write it, also when it is "" */
    return jsonrpc_peer_receive(p, text, strlen(text), reason, sizeof(reason));
}

static void call_ok(struct jsonrpc_peer *p, const char *method, struct outcome *o, int64_t want)
{
    int64_t id = -1;

    o->peer = p;
    assert_int_equal(jsonrpc_peer_call(p, method, NULL, result_cb, o, &id), 0);
    assert_int_equal(id, want);
}

static void test_jsonrpc_call_encodes_compact_requests_numbered_from_1(void **state)
{
    struct wire w = {0};
    struct jsonrpc_peer *p = new_peer(&w, JSONRPC_MAX_MESSAGE_BYTES);
    struct outcome a = {0}, b = {0};
    json_t *params = json_pack("{s:s, s:{}}", "protocolVersion", "2025-06-18", "capabilities");
    int64_t id = 0;

    assert_non_null(params);
    assert_int_equal(jsonrpc_peer_call(p, "initialize", params, result_cb, &a, &id), 0);
    assert_int_equal(id, 1);
    assert_int_equal(params->refcount, 1); /* borrowed, left as it was */
    call_ok(p, "tools/list", &b, 2);
    assert_int_equal(jsonrpc_peer_notify(p, "notifications/initialized", NULL), 0);
    assert_int_equal(w.n, 3);
    assert_string_equal(w.msgs[0], "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\","
                                   "\"params\":{\"protocolVersion\":\"2025-06-18\","
                                   "\"capabilities\":{}}}");
    assert_string_equal(w.msgs[1], "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}");
    assert_string_equal(w.msgs[2],
                        "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
    assert_int_equal(jsonrpc_peer_pending(p), 2);
    assert_int_equal(a.calls + b.calls, 0);
    json_decref(params);
    wire_clear(&w);
    jsonrpc_peer_free(p);
}

static void test_jsonrpc_call_refuses_bad_params_and_oversized_messages(void **state)
{
    struct wire w = {0};
    struct jsonrpc_peer *p = new_peer(&w, 60);
    struct outcome a = {0};
    json_t *s = json_string("x"), *big = json_pack("{s:s}", "k", "0123456789012345678901234");
    int64_t id = 7;

    assert_int_equal(jsonrpc_peer_call(p, "m", s, result_cb, &a, &id), ERR_INVALID);
    assert_int_equal(id, 0);
    assert_int_equal(jsonrpc_peer_notify(p, "m", s), ERR_INVALID);
    /* {"jsonrpc":"2.0","id":1,"method":"m","params":{"k":"...25..."}} is 66 bytes */
    assert_int_equal(jsonrpc_peer_call(p, "m", big, result_cb, &a, &id), ERR_TOO_LARGE);
    assert_int_equal(jsonrpc_peer_pending(p), 0);
    assert_int_equal(w.n, 0);
    /* a send failure leaves nothing pending either */
    w.fail_with = -32;
    assert_int_equal(jsonrpc_peer_call(p, "m", NULL, result_cb, &a, &id), -32);
    assert_int_equal(jsonrpc_peer_pending(p), 0);
    assert_int_equal(jsonrpc_peer_notify(p, "m", NULL), -32);
    w.fail_with = 0;
    call_ok(p, "m", &a, 3); /* ids are never reused */
    json_decref(s);
    json_decref(big);
    wire_clear(&w);
    jsonrpc_peer_free(p);
}

static void test_jsonrpc_results_and_errors_reach_their_own_callback_once(void **state)
{
    struct wire w = {0};
    struct jsonrpc_peer *p = new_peer(&w, JSONRPC_MAX_MESSAGE_BYTES);
    struct outcome a = {0}, b = {0};

    call_ok(p, "a", &a, 1);
    call_ok(p, "b", &b, 2);
    assert_int_equal(feed(p, "{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"code\":-32602,"
                             "\"message\":\"bad\",\"data\":[1]}}"),
                     0);
    assert_int_equal(a.calls, 0);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.code, -32602);
    assert_string_equal(b.message, "bad");
    assert_string_equal(b.data, "[1]");
    assert_int_equal(jsonrpc_peer_pending(p), 1);
    assert_int_equal(feed(p, " {\"result\":{\"tools\":[]},\"id\":1,\"jsonrpc\":\"2.0\"}\n"), 0);
    assert_int_equal(a.calls, 1);
    assert_string_equal(a.result, "{\"tools\":[]}");
    /* a second answer to either is ignored and counted */
    assert_int_equal(feed(p, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":null}"), 0);
    assert_int_equal(a.calls, 1);
    assert_int_equal(jsonrpc_peer_ignored(p), 1);
    assert_int_equal(jsonrpc_peer_pending(p), 0);
    assert_int_equal(w.n, 2); /* nothing answered back */
    wire_clear(&w);
    jsonrpc_peer_free(p);
}

static void test_jsonrpc_response_ids_match_by_number_never_by_string(void **state)
{
    struct wire w = {0};
    struct jsonrpc_peer *p = new_peer(&w, JSONRPC_MAX_MESSAGE_BYTES);
    struct outcome a = {0}, b = {0};

    call_ok(p, "a", &a, 1);
    call_ok(p, "b", &b, 2);
    assert_int_equal(feed(p, "{\"jsonrpc\":\"2.0\",\"id\":\"1\",\"result\":1}"), 0);
    assert_int_equal(feed(p, "{\"jsonrpc\":\"2.0\",\"id\":1.5,\"result\":1}"), 0);
    assert_int_equal(feed(p, "{\"jsonrpc\":\"2.0\",\"id\":-1,\"result\":1}"), 0);
    assert_int_equal(feed(p, "{\"jsonrpc\":\"2.0\",\"id\":1e300,\"result\":1}"), 0);
    assert_int_equal(feed(p, "{\"jsonrpc\":\"2.0\",\"id\":9223372036854775807,\"result\":1}"), 0);
    /* an error about a request the server could not read: id null, matched to nothing */
    assert_int_equal(feed(p, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,"
                             "\"message\":\"Parse error\"}}"),
                     0);
    assert_int_equal(jsonrpc_peer_ignored(p), 6);
    assert_int_equal(a.calls + b.calls, 0);
    /* 1.0 is the number 1 */
    assert_int_equal(feed(p, "{\"jsonrpc\":\"2.0\",\"id\":1.0,\"result\":\"one\"}"), 0);
    assert_int_equal(a.calls, 1);
    assert_string_equal(a.result, "\"one\"");
    assert_int_equal(feed(p, "{\"jsonrpc\":\"2.0\",\"id\":2e0,\"result\":2}"), 0);
    assert_int_equal(b.calls, 1);
    wire_clear(&w);
    jsonrpc_peer_free(p);
}

static void test_jsonrpc_duplicate_keys_the_last_one_wins(void **state)
{
    struct wire w = {0};
    struct jsonrpc_peer *p = new_peer(&w, JSONRPC_MAX_MESSAGE_BYTES);
    struct outcome a = {0}, b = {0};

    call_ok(p, "a", &a, 1);
    call_ok(p, "b", &b, 2);
    /* as Go's encoding/json reads it: id 2, result "second" */
    assert_int_equal(
        feed(p,
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"result\":\"first\",\"result\":\"second\"}"),
        0);
    assert_int_equal(a.calls, 0);
    assert_int_equal(b.calls, 1);
    assert_string_equal(b.result, "\"second\"");
    wire_clear(&w);
    jsonrpc_peer_free(p);
}

static void test_jsonrpc_server_ping_is_answered_with_an_empty_result(void **state)
{
    struct wire w = {0};
    struct jsonrpc_peer *p = new_peer(&w, JSONRPC_MAX_MESSAGE_BYTES);

    assert_int_equal(feed(p, "{\"jsonrpc\":\"2.0\",\"id\":42,\"method\":\"ping\"}"), 0);
    assert_int_equal(feed(p, "{\"jsonrpc\":\"2.0\",\"id\":\"p-1\",\"method\":\"ping\","
                             "\"params\":{}}"),
                     0);
    assert_int_equal(w.n, 2);
    assert_string_equal(w.msgs[0], "{\"jsonrpc\":\"2.0\",\"id\":42,\"result\":{}}");
    assert_string_equal(w.msgs[1], "{\"jsonrpc\":\"2.0\",\"id\":\"p-1\",\"result\":{}}");
    assert_int_equal(jsonrpc_peer_pending(p), 0);
    wire_clear(&w);
    jsonrpc_peer_free(p);
}

static void test_jsonrpc_other_server_requests_get_method_not_found_with_their_id(void **state)
{
    struct wire w = {0};
    struct jsonrpc_peer *p = new_peer(&w, JSONRPC_MAX_MESSAGE_BYTES);

    assert_int_equal(feed(p, "{\"jsonrpc\":\"2.0\",\"id\":\"s\\u00e9\",\"method\":"
                             "\"sampling/createMessage\",\"params\":{}}"),
                     0);
    assert_int_equal(feed(p, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"roots/list\"}"), 0);
    assert_int_equal(feed(p, "{\"jsonrpc\":\"2.0\",\"id\":-3,\"method\":\"Ping\"}"), 0);
    assert_int_equal(feed(p, "{\"jsonrpc\":\"2.0\",\"id\":2.5,\"method\":\"x\"}"), 0);
    assert_int_equal(w.n, 4);
    assert_string_equal(w.msgs[0], "{\"jsonrpc\":\"2.0\",\"id\":\"s\xc3\xa9\",\"error\":"
                                   "{\"code\":-32601,\"message\":\"Method not found\"}}");
    assert_string_equal(w.msgs[1], "{\"jsonrpc\":\"2.0\",\"id\":7,\"error\":"
                                   "{\"code\":-32601,\"message\":\"Method not found\"}}");
    assert_string_equal(w.msgs[2], "{\"jsonrpc\":\"2.0\",\"id\":-3,\"error\":"
                                   "{\"code\":-32601,\"message\":\"Method not found\"}}");
    assert_string_equal(w.msgs[3], "{\"jsonrpc\":\"2.0\",\"id\":2.5,\"error\":"
                                   "{\"code\":-32601,\"message\":\"Method not found\"}}");
    /* an answer that cannot be sent is reported, after the rest was handled */
    w.fail_with = -5;
    assert_int_equal(feed(p, "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"ping\"}"), -5);
    assert_string_equal(reason, "an answer to a server request was not sent");
    wire_clear(&w);
    jsonrpc_peer_free(p);
}

static void test_jsonrpc_notifications_go_to_the_callback_and_are_not_answered(void **state)
{
    struct wire w = {0};
    struct jsonrpc_peer *p = new_peer(&w, JSONRPC_MAX_MESSAGE_BYTES);
    struct notes s = {0};

    assert_int_equal(feed(p, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\"}"),
                     0); /* no callback yet: dropped */
    jsonrpc_peer_on_notification(p, notify_cb, &s);
    assert_int_equal(feed(p, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\","
                             "\"params\":{\"progress\":1}}"),
                     0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.last, "notifications/progress {\"progress\":1}");
    assert_int_equal(feed(p, "{\"jsonrpc\":\"2.0\",\"method\":\"n\",\"params\":null}"), 0);
    assert_string_equal(s.last, "n -");
    assert_int_equal(w.n, 0);
    jsonrpc_peer_free(p);
}

static void test_jsonrpc_batch_is_handled_element_by_element(void **state)
{
    struct wire w = {0};
    struct jsonrpc_peer *p = new_peer(&w, JSONRPC_MAX_MESSAGE_BYTES);
    struct outcome a = {0}, b = {0};
    struct notes s = {0};

    jsonrpc_peer_on_notification(p, notify_cb, &s);
    call_ok(p, "a", &a, 1);
    call_ok(p, "b", &b, 2);
    wire_clear(&w);
    assert_int_equal(feed(p, "[{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":\"B\"},"
                             "{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"method\":\"ping\"},"
                             "{\"jsonrpc\":\"2.0\",\"method\":\"n\"},"
                             "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"elicitation/create\"},"
                             "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"A\"},"
                             "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"again\"}]"),
                     0);
    assert_string_equal(a.result, "\"A\"");
    assert_string_equal(b.result, "\"B\"");
    assert_int_equal(a.calls + b.calls, 2);
    assert_int_equal(s.n, 1);
    assert_int_equal(jsonrpc_peer_ignored(p), 1);
    /* answered one by one, in order */
    assert_int_equal(w.n, 2);
    assert_string_equal(w.msgs[0], "{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"result\":{}}");
    assert_string_equal(w.msgs[1], "{\"jsonrpc\":\"2.0\",\"id\":9,\"error\":"
                                   "{\"code\":-32601,\"message\":\"Method not found\"}}");
    wire_clear(&w);
    jsonrpc_peer_free(p);
}

static void test_jsonrpc_malformed_messages_are_refused_whole(void **state)
{
    static const struct {
        const char *text;
        const char *reason;
    } bad[] = {
        {"", "not JSON: "},
        {"garbage", "not JSON: "},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1} x", "not JSON: "},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"a\\u0000b\"}", "not JSON: "},
        {"{\"jsonrpc\":\"2.0\",\"id\":99999999999999999999,\"result\":1}", "not JSON: "},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"\xff\"}", "not JSON: "},
        {"42", "not a JSON object or array"},
        {"\"ping\"", "not a JSON object or array"},
        {"[]", "an empty batch"},
        {"[1]", "batch element 0: a message that is not an object"},
        {"[[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1}]]",
         "batch element 0: a message that is not an object"},
        {"{\"id\":1,\"result\":1}", "jsonrpc is not \"2.0\""},
        {"{\"jsonrpc\":\"1.0\",\"id\":1,\"result\":1}", "jsonrpc is not \"2.0\""},
        {"{\"jsonrpc\":2.0,\"id\":1,\"result\":1}", "jsonrpc is not \"2.0\""},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1,\"error\":{\"code\":1,\"message\":\"m\"}}",
         "a response with both result and error"},
        {"{\"jsonrpc\":\"2.0\",\"id\":1}", "a response with neither result nor error"},
        {"{\"jsonrpc\":\"2.0\"}", "neither method nor id"},
        {"{\"jsonrpc\":\"2.0\",\"id\":{},\"result\":1}",
         "response id is neither string nor number"},
        {"{\"jsonrpc\":\"2.0\",\"id\":true,\"result\":1}",
         "response id is neither string nor number"},
        {"{\"jsonrpc\":\"2.0\",\"id\":null,\"result\":1}",
         "response id is neither string nor number"},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":\"1\",\"message\":\"m\"}}",
         "error without an integer code and a string message"},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32601.0,\"message\":\"m\"}}",
         "error without an integer code and a string message"},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1}}",
         "error without an integer code and a string message"},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":\"bad\"}",
         "error without an integer code and a string message"},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":7}", "method is not a string"},
        {"{\"jsonrpc\":\"2.0\",\"method\":null}", "method is not a string"},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"result\":{}}",
         "a request with result or error"},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":\"p\"}",
         "params is neither object nor array"},
        {"{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}",
         "request id is neither string nor number"},
        {"{\"jsonrpc\":\"2.0\",\"id\":[1],\"method\":\"ping\"}",
         "request id is neither string nor number"},
        /* one bad element refuses the batch: the good ones before it are not handled */
        {"[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1},{\"jsonrpc\":\"2.0\",\"id\":\"p\","
         "\"method\":\"ping\"},{\"jsonrpc\":\"2.0\",\"method\":\"n\"},{\"id\":2,\"result\":1}]",
         "batch element 3: jsonrpc is not \"2.0\""},
    };
    struct wire w = {0};
    struct jsonrpc_peer *p = new_peer(&w, JSONRPC_MAX_MESSAGE_BYTES);
    struct outcome a = {0};
    struct notes s = {0};

    jsonrpc_peer_on_notification(p, notify_cb, &s);
    call_ok(p, "a", &a, 1);
    wire_clear(&w);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(feed(p, bad[i].text), ERR_INVALID);
        if (strncmp(reason, bad[i].reason, strlen(bad[i].reason)) != 0)
            fail_msg("%s: reason \"%s\", expected \"%s\"", bad[i].text, reason, bad[i].reason);
        if (strcmp(bad[i].reason, "not JSON: ") != 0)
            assert_string_equal(reason, bad[i].reason);
    }
    assert_int_equal(a.calls + s.n, 0);
    assert_int_equal(w.n, 0);
    assert_int_equal(jsonrpc_peer_pending(p), 1);
    assert_int_equal(jsonrpc_peer_ignored(p), 0);
    /* a reason buffer of one byte, or none, is fine */
    memset(reason, 'x', sizeof(reason));
    assert_int_equal(jsonrpc_peer_receive(p, "[]", 2, reason, 1), ERR_INVALID);
    assert_int_equal(reason[0], '\0');
    assert_int_equal(reason[1], 'x');
    assert_int_equal(jsonrpc_peer_receive(p, "[]", 2, NULL, 0), ERR_INVALID);
    jsonrpc_peer_free(p);
}

static void test_jsonrpc_message_over_the_limit_is_refused_before_parsing(void **state)
{
    struct wire w = {0};
    struct jsonrpc_peer *p = new_peer(&w, 40);
    struct outcome a = {0};
    /* 40 bytes, and 41 */
    static const char at[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"abcd\"}";
    static const char over[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"abcde\"}";

    assert_int_equal(strlen(at), 40);
    call_ok(p, "a", &a, 1);
    assert_int_equal(feed(p, over), ERR_TOO_LARGE);
    assert_string_equal(reason, "a message of 41 bytes, over 40");
    assert_int_equal(a.calls, 0);
    assert_int_equal(feed(p, at), 0);
    assert_int_equal(a.calls, 1);
    wire_clear(&w);
    jsonrpc_peer_free(p);
}

static void test_jsonrpc_result_callback_may_issue_the_next_call(void **state)
{
    struct wire w = {0};
    struct jsonrpc_peer *p = new_peer(&w, JSONRPC_MAX_MESSAGE_BYTES);
    struct outcome second = {0}, first = {.issue_call = 1, .next = &second};

    call_ok(p, "tools/list", &first, 1);
    second.peer = p;
    assert_int_equal(feed(p, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"nextCursor\":\"c\"}}"),
                     0);
    assert_int_equal(first.next_rc, 0);
    assert_int_equal(first.next_id, 2);
    assert_int_equal(w.n, 2);
    assert_string_equal(w.msgs[1], "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"next\"}");
    assert_int_equal(jsonrpc_peer_pending(p), 1);
    assert_int_equal(feed(p, "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}}"), 0);
    assert_int_equal(second.calls, 1);
    assert_int_equal(first.calls, 1);
    wire_clear(&w);
    jsonrpc_peer_free(p);
}

static void test_jsonrpc_forget_drops_a_call_without_its_callback(void **state)
{
    struct wire w = {0};
    struct jsonrpc_peer *p = new_peer(&w, JSONRPC_MAX_MESSAGE_BYTES);
    struct outcome a = {.forget_id = 3}, b = {0}, c = {0};

    call_ok(p, "a", &a, 1);
    call_ok(p, "b", &b, 2);
    call_ok(p, "c", &c, 3);
    jsonrpc_peer_forget(p, 2);
    jsonrpc_peer_forget(p, 2);  /* twice: nothing */
    jsonrpc_peer_forget(p, 99); /* unknown: nothing */
    assert_int_equal(jsonrpc_peer_pending(p), 2);
    /* a's callback forgets c, whose answer in the same batch is then ignored */
    assert_int_equal(feed(p, "[{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":1},"
                             "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1},"
                             "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":1}]"),
                     0);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls + c.calls, 0);
    assert_int_equal(jsonrpc_peer_ignored(p), 2);
    assert_int_equal(jsonrpc_peer_pending(p), 0);
    wire_clear(&w);
    jsonrpc_peer_free(p);
}

static void test_jsonrpc_fail_all_calls_every_pending_callback_once_and_closes(void **state)
{
    struct wire w = {0};
    struct jsonrpc_peer *p = new_peer(&w, JSONRPC_MAX_MESSAGE_BYTES);
    struct outcome second = {0}, a = {.issue_call = 1, .next = &second}, b = {.forget_id = 3};
    struct outcome c = {0}, d = {0};

    call_ok(p, "a", &a, 1);
    call_ok(p, "b", &b, 2);
    call_ok(p, "c", &c, 3);
    jsonrpc_peer_fail_all(p, "server exited");
    assert_int_equal(a.calls, 1);
    assert_string_equal(a.transport, "server exited");
    assert_int_equal(a.next_rc, ERR_CLOSED); /* no new call on a failed peer */
    assert_int_equal(b.calls, 1);
    assert_int_equal(c.calls, 0); /* b's callback forgot it */
    assert_int_equal(second.calls, 0);
    assert_int_equal(jsonrpc_peer_pending(p), 0);
    d.peer = p;
    assert_int_equal(jsonrpc_peer_call(p, "d", NULL, result_cb, &d, NULL), ERR_CLOSED);
    assert_int_equal(jsonrpc_peer_notify(p, "n", NULL), ERR_CLOSED);
    assert_int_equal(feed(p, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1}"), ERR_CLOSED);
    jsonrpc_peer_fail_all(p, "again"); /* nothing pending: nothing called */
    assert_int_equal(a.calls + b.calls + c.calls + d.calls, 2);
    wire_clear(&w);
    jsonrpc_peer_free(p);
}

static void test_jsonrpc_fail_all_from_a_callback_stops_the_batch(void **state)
{
    struct wire w = {0};
    struct jsonrpc_peer *p = new_peer(&w, JSONRPC_MAX_MESSAGE_BYTES);
    struct outcome a = {.fail_all = 1}, b = {0};

    call_ok(p, "a", &a, 1);
    call_ok(p, "b", &b, 2);
    wire_clear(&w);
    assert_int_equal(feed(p, "[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1},"
                             "{\"jsonrpc\":\"2.0\",\"id\":\"p\",\"method\":\"ping\"},"
                             "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":1}]"),
                     ERR_CLOSED);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 1);
    assert_string_equal(b.transport, "gone from a callback");
    assert_int_equal(w.n, 0); /* the ping after it is not answered */
    jsonrpc_peer_free(p);
}

static void test_jsonrpc_free_from_a_callback_is_deferred(void **state)
{
    struct wire w = {0};
    struct jsonrpc_peer *p = new_peer(&w, JSONRPC_MAX_MESSAGE_BYTES);
    struct outcome a = {.free_peer = 1}, b = {0};

    call_ok(p, "a", &a, 1);
    call_ok(p, "b", &b, 2);
    /* p is freed when receive returns: the rest of the batch is dropped (the leak check
     * of a sanitizer build says nothing is left) */
    assert_int_equal(feed(p, "[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1},"
                             "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":1}]"),
                     ERR_CLOSED);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 0);
    wire_clear(&w);
    jsonrpc_peer_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jsonrpc_call_encodes_compact_requests_numbered_from_1),
        cmocka_unit_test(test_jsonrpc_call_refuses_bad_params_and_oversized_messages),
        cmocka_unit_test(test_jsonrpc_results_and_errors_reach_their_own_callback_once),
        cmocka_unit_test(test_jsonrpc_response_ids_match_by_number_never_by_string),
        cmocka_unit_test(test_jsonrpc_duplicate_keys_the_last_one_wins),
        cmocka_unit_test(test_jsonrpc_server_ping_is_answered_with_an_empty_result),
        cmocka_unit_test(test_jsonrpc_other_server_requests_get_method_not_found_with_their_id),
        cmocka_unit_test(test_jsonrpc_notifications_go_to_the_callback_and_are_not_answered),
        cmocka_unit_test(test_jsonrpc_batch_is_handled_element_by_element),
        cmocka_unit_test(test_jsonrpc_malformed_messages_are_refused_whole),
        cmocka_unit_test(test_jsonrpc_message_over_the_limit_is_refused_before_parsing),
        cmocka_unit_test(test_jsonrpc_result_callback_may_issue_the_next_call),
        cmocka_unit_test(test_jsonrpc_forget_drops_a_call_without_its_callback),
        cmocka_unit_test(test_jsonrpc_fail_all_calls_every_pending_callback_once_and_closes),
        cmocka_unit_test(test_jsonrpc_fail_all_from_a_callback_stops_the_batch),
        cmocka_unit_test(test_jsonrpc_free_from_a_callback_is_deferred),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
