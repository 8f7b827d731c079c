/* Unit tests for src/runner/proto.c: decoding platform messages, bash args, encoding the
 * runner's messages, and UTF-8 sanitizing of command output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <jansson.h>

#include "err.h"
#include "proto.h"
#include "secret.h"

/* Every cmocka test takes void **state; most do not use it. */
#pragma GCC diagnostic ignored "-Wunused-parameter"

#define MIB (1024u * 1024u)
#define FFFD "\xef\xbf\xbd"
/* A string literal as (bytes, length), for literals with embedded NULs or odd bytes. */
#define S(lit) lit, sizeof(lit) - 1

static bool all_zero(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != 0)
            return false;
    return true;
}

/* Decodes a copy of json and checks that the copy was wiped. */
static int decode(const char *json, struct proto_in *m, char *err, size_t errlen)
{
    size_t len = strlen(json);
    char *text = malloc(len + 1);
    int r;

    assert_non_null(text);
    memcpy(text, json, len + 1);
    r = proto_decode(text, len, m, err, errlen);
    assert_true(all_zero(text, len));
    free(text);
    return r;
}

/* Decodes json expecting failure; checks the error line is set and does not contain
 * needle (a value from the message) when needle is not NULL. */
static void expect_reject(const char *json, int code, const char *needle)
{
    struct proto_in m;
    char err[256];

    assert_int_equal(decode(json, &m, err, sizeof(err)), code);
    assert_true(err[0] != '\0');
    assert_null(strchr(err, '\n'));
    if (needle != NULL)
        assert_null(strstr(err, needle));
    assert_null(m.credential_key);
    proto_in_free(&m);
}

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_ALLOW_NUL, &e);

    assert_non_null(v);
    return v;
}

/* Checks the envelope of an outgoing message and returns a new reference to its payload. */
static json_t *check_envelope(const char *text, const char *type)
{
    json_t *msg = parse(text), *payload;
    const char *id;
    char *redump;
    struct timespec ts;
    json_int_t now, stamp;

    assert_true(json_is_object(msg));
    assert_int_equal(json_object_size(msg), 4);
    assert_string_equal(json_string_value(json_object_get(msg, "type")), type);
    id = json_string_value(json_object_get(msg, "id"));
    assert_non_null(id);
    assert_int_equal(strlen(id), 32);
    assert_int_equal(strspn(id, "0123456789abcdef"), 32);
    assert_true(json_is_integer(json_object_get(msg, "timestamp")));
    stamp = json_integer_value(json_object_get(msg, "timestamp"));
    clock_gettime(CLOCK_REALTIME, &ts);
    now = (json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    assert_true(stamp <= now && stamp > now - 60000);
    /* Compact: jansson's compact dump of what we parsed is exactly the text. */
    redump = json_dumps(msg, JSON_COMPACT);
    assert_non_null(redump);
    assert_string_equal(redump, text);
    free(redump);
    payload = json_incref(json_object_get(msg, "payload"));
    assert_true(json_is_object(payload));
    json_decref(msg);
    return payload;
}

static void test_proto_init_installs_a_free_that_is_not_plain_free(void **state)
{
    json_malloc_t m;
    json_free_t f;

    proto_init();
    proto_init();
    json_get_alloc_funcs(&m, &f);
    assert_ptr_equal(m, malloc);
    assert_ptr_not_equal(f, free);
}

static void test_proto_decodes_welcome(void **state)
{
    struct proto_in m;
    char err[128];

    assert_int_equal(decode("{\"id\":\"m1\",\"type\":\"welcome\",\"timestamp\":1700000000000,"
                            "\"payload\":{\"worknode_id\":\"wn-1\",\"name\":\"box\","
                            "\"labels\":{\"env\":\"prod\"}}}",
                            &m, err, sizeof(err)),
                     0);
    assert_int_equal(m.type, PROTO_WELCOME);
    assert_string_equal(m.type_name, "welcome");
    assert_string_equal(m.id, "m1");
    assert_string_equal(m.worknode_id, "wn-1");
    assert_string_equal(m.name, "box");
    assert_string_equal(json_string_value(json_object_get(m.labels, "env")), "prod");
    assert_null(m.task_id);
    assert_null(m.args);
    proto_in_free(&m);
    assert_null(m.labels);
    assert_null(m.id);
}

static void test_proto_welcome_without_labels_gets_an_empty_object(void **state)
{
    struct proto_in m;

    assert_int_equal(decode("{\"type\":\"welcome\",\"payload\":{\"labels\":null}}", &m, NULL, 0),
                     0);
    assert_null(m.id);
    assert_null(m.worknode_id);
    assert_true(json_is_object(m.labels));
    assert_int_equal(json_object_size(m.labels), 0);
    proto_in_free(&m);
}

static void test_proto_welcome_keeps_labels_given_as_a_list(void **state)
{
    struct proto_in m;

    assert_int_equal(decode("{\"type\":\"welcome\",\"payload\":{\"worknode_id\":\"wn-1\","
                            "\"labels\":[\"os:linux\",\"e2e\"]}}", &m, NULL, 0), 0);
    assert_string_equal(m.worknode_id, "wn-1");
    assert_true(json_is_array(m.labels));
    assert_int_equal(json_array_size(m.labels), 2);
    proto_in_free(&m);
}

static void test_proto_decodes_task_request_with_every_field(void **state)
{
    struct proto_in m;
    char err[128];

    assert_int_equal(decode("{\"id\":\"m2\",\"type\":\"task.request\",\"timestamp\":1,"
                            "\"payload\":{\"task_id\":\"t1\",\"trace_id\":\"tr\","
                            "\"source_instance_id\":\"si\",\"operation\":\"bash\","
                            "\"args\":{\"command\":\"echo hi\",\"timeout\":5}}}",
                            &m, err, sizeof(err)),
                     0);
    assert_int_equal(m.type, PROTO_TASK_REQUEST);
    assert_string_equal(m.task_id, "t1");
    assert_string_equal(m.trace_id, "tr");
    assert_string_equal(m.source_instance_id, "si");
    assert_string_equal(m.operation, "bash");
    assert_string_equal(json_string_value(json_object_get(m.args, "command")), "echo hi");
    assert_null(m.credential_key);
    assert_null(m.credential_base_url);
    proto_in_free(&m);
}

/* args goes to the operation as sent, so it can answer as Go does: a missing args is
 * "unexpected end of JSON input", a string "cannot unmarshal string into Go value". */
static void test_proto_task_request_keeps_args_as_sent(void **state)
{
    struct proto_in m;
    struct bash_args a;
    char err[160];

    assert_int_equal(decode("{\"type\":\"task.request\",\"payload\":{\"task_id\":\"t\","
                            "\"operation\":\"noop\"}}",
                            &m, NULL, 0),
                     0);
    assert_null(m.trace_id);
    assert_null(m.source_instance_id);
    assert_null(m.args);
    assert_int_equal(proto_bash_args(m.args, 0, &a, err, sizeof(err)), ERR_INVALID);
    assert_string_equal(err, "invalid bash args: unexpected end of JSON input");
    bash_args_free(&a);
    proto_in_free(&m);

    assert_int_equal(decode("{\"type\":\"task.request\",\"payload\":{\"task_id\":\"t\","
                            "\"operation\":\"bash\",\"args\":\"echo\"}}",
                            &m, NULL, 0),
                     0);
    assert_true(json_is_string(m.args));
    assert_int_equal(proto_bash_args(m.args, 0, &a, err, sizeof(err)), ERR_INVALID);
    assert_string_equal(err, "invalid bash args: json: cannot unmarshal string into Go value "
                             "of type protocol.BashArgs");
    bash_args_free(&a);
    proto_in_free(&m);
}

static void test_proto_decodes_task_cancel(void **state)
{
    struct proto_in m;

    assert_int_equal(
        decode("{\"id\":\"c\",\"type\":\"task.cancel\",\"payload\":{\"task_id\":\"t9\"}}", &m, NULL,
               0),
        0);
    assert_int_equal(m.type, PROTO_TASK_CANCEL);
    assert_string_equal(m.task_id, "t9");
    proto_in_free(&m);
}

/* mcp.call: the call_id is read (Go's case-blind member match, the last one winning) and
 * the whole payload kept for the operation; one whose call_id is not a string cannot be
 * answered and is an error. */
static void test_proto_decodes_mcp_call(void **state)
{
    struct proto_in m;
    char err[160];

    assert_int_equal(decode("{\"id\":\"m\",\"type\":\"mcp.call\",\"payload\":{\"call_id\":\"c1\","
                            "\"server\":{\"name\":\"s\"},\"tool_name\":\"t\",\"arguments\":[1]}}",
                            &m, NULL, 0), 0);
    assert_int_equal(m.type, PROTO_MCP_CALL);
    assert_string_equal(m.call_id, "c1");
    assert_null(m.task_id);
    assert_string_equal(json_string_value(json_object_get(m.args, "tool_name")), "t");
    assert_true(json_is_array(json_object_get(m.args, "arguments")));
    proto_in_free(&m);

    assert_int_equal(decode("{\"type\":\"mcp.call\",\"payload\":{\"call_id\":\"a\","
                            "\"Call_ID\":\"b\"}}", &m, NULL, 0), 0);
    assert_string_equal(m.call_id, "b");
    proto_in_free(&m);
    /* No call_id: Go's zero value, answered as "". */
    assert_int_equal(decode("{\"type\":\"mcp.call\",\"payload\":{}}", &m, NULL, 0), 0);
    assert_string_equal(m.call_id, "");
    proto_in_free(&m);

    assert_int_equal(decode("{\"type\":\"mcp.call\",\"payload\":{\"call_id\":7}}", &m, err,
                            sizeof(err)), ERR_INVALID);
    assert_string_equal(err, "payload.call_id: expected a string");
    assert_int_equal(m.type, PROTO_MCP_CALL);
    assert_null(m.call_id);
    proto_in_free(&m);
    assert_int_equal(decode("{\"type\":\"mcp.call\",\"payload\":{\"CALL_ID\":\"x\\u0000\"}}", &m,
                            err, sizeof(err)), ERR_INVALID);
    assert_string_equal(err, "payload.call_id: contains a NUL byte");
    proto_in_free(&m);
    assert_int_equal(decode("{\"type\":\"mcp.call\",\"payload\":\"x\"}", &m, err, sizeof(err)),
                     ERR_INVALID);
    assert_null(m.call_id);
    proto_in_free(&m);
    /* A later bad field of the envelope keeps the call_id, so the call is answered. */
    assert_int_equal(decode("{\"type\":\"mcp.call\",\"id\":5,\"payload\":{\"call_id\":\"c\"}}",
                            &m, err, sizeof(err)), ERR_INVALID);
    assert_string_equal(m.call_id, "c");
    proto_in_free(&m);
}

static void test_proto_unknown_type_decodes_as_unknown_with_its_name(void **state)
{
    struct proto_in m;

    assert_int_equal(
        decode("{\"id\":\"x\",\"type\":\"runner.upgrade\",\"payload\":[1,2]}", &m, NULL, 0), 0);
    assert_int_equal(m.type, PROTO_UNKNOWN);
    assert_string_equal(m.type_name, "runner.upgrade");
    assert_string_equal(m.id, "x");
    assert_null(m.task_id);
    proto_in_free(&m);
}

static void test_proto_type_name_is_truncated_and_printable(void **state)
{
    struct proto_in m;
    char json[256];
    char want[64];

    memset(want, 'a', 63);
    want[63] = '\0';
    snprintf(json, sizeof(json), "{\"type\":\"%s%s\"}", want, "bbbbbbbb");
    assert_int_equal(decode(json, &m, NULL, 0), 0);
    assert_string_equal(m.type_name, want);
    proto_in_free(&m);

    assert_int_equal(decode("{\"type\":\"a\\nb\\u007fc\\u00e9\"}", &m, NULL, 0), 0);
    assert_int_equal(m.type, PROTO_UNKNOWN);
    assert_string_equal(m.type_name, "a?b?c??");
    proto_in_free(&m);
}

static void test_proto_rejects_malformed_json_without_quoting_it(void **state)
{
    expect_reject("", ERR_INVALID, NULL);
    expect_reject("{", ERR_INVALID, NULL);
    expect_reject("{\"type\":\"welcome\",}", ERR_INVALID, NULL);
    expect_reject("{\"type\":\"task.request\",\"payload\":{\"args\":{\"credential\":{\"key\":"
                  "\"sk-SECRETKEY\" oops}}}}",
                  ERR_INVALID, "SECRETKEY");
    expect_reject("{\"type\":\"welcome\"} trailing-SECRETKEY", ERR_INVALID, "SECRETKEY");
    expect_reject("{\"a\":\"\xff\xfeSECRETKEY\"}", ERR_INVALID, "SECRETKEY");
    expect_reject("{\"type\":\"welcome\",\"type\":\"task.cancel\"}", ERR_INVALID, NULL);
}

static void test_proto_rejects_a_message_that_is_not_an_object(void **state)
{
    expect_reject("[\"welcome\"]", ERR_INVALID, NULL);
    expect_reject("\"welcome\"", ERR_INVALID, NULL);
    expect_reject("42", ERR_INVALID, NULL);
    expect_reject("null", ERR_INVALID, NULL);
}

static void test_proto_rejects_a_message_over_the_limit_and_still_wipes_it(void **state)
{
    size_t len = (size_t)PROTO_MSG_MAX + 1;
    char *text = malloc(len);
    struct proto_in m;
    char err[128];

    assert_non_null(text);
    memset(text, ' ', len);
    text[0] = '{';
    text[len - 1] = '}';
    assert_int_equal(proto_decode(text, len, &m, err, sizeof(err)), ERR_TOO_LARGE);
    assert_true(all_zero(text, len));
    proto_in_free(&m);
    free(text);
}

static void test_proto_rejects_task_request_without_task_id(void **state)
{
    expect_reject("{\"type\":\"task.request\",\"payload\":{\"operation\":\"bash\"}}", ERR_INVALID,
                  NULL);
    expect_reject("{\"type\":\"task.request\",\"payload\":{\"task_id\":\"\",\"operation\":\"b\"}}",
                  ERR_INVALID, NULL);
    expect_reject("{\"type\":\"task.cancel\",\"payload\":{}}", ERR_INVALID, NULL);
    expect_reject("{\"type\":\"task.cancel\",\"payload\":{\"task_id\":null}}", ERR_INVALID, NULL);
}

static void test_proto_rejects_missing_or_ill_typed_fields(void **state)
{
    static const char *const bad[] = {
        "{\"payload\":{}}",
        "{\"type\":7}",
        "{\"type\":\"welcome\\u0000x\",\"payload\":{}}",
        "{\"type\":\"welcome\"}",
        "{\"type\":\"welcome\",\"payload\":\"x\"}",
        "{\"type\":\"welcome\",\"payload\":{\"worknode_id\":5}}",
        "{\"type\":\"welcome\",\"payload\":{\"labels\":\"a\"}}",
        "{\"type\":\"welcome\",\"payload\":{},\"id\":12}",
        "{\"type\":\"task.request\",\"payload\":{\"task_id\":3,\"operation\":\"bash\"}}",
        "{\"type\":\"task.request\",\"payload\":{\"task_id\":\"t\"}}",
        "{\"type\":\"task.request\",\"payload\":{\"task_id\":\"t\",\"operation\":true}}",
        "{\"type\":\"task.request\",\"payload\":{\"task_id\":\"t\",\"operation\":\"b\","
        "\"trace_id\":{}}}",
        "{\"type\":\"task.request\",\"payload\":{\"task_id\":\"t\",\"operation\":\"b\","
        "\"source_instance_id\":1.5}}",
        "{\"type\":\"task.request\",\"payload\":{\"task_id\":\"t\\u0000u\",\"operation\":\"b\"}}",
        "{\"type\":\"task.request\",\"payload\":{\"task_id\":\"t\",\"operation\":\"b\","
        "\"args\":{\"credential\":\"k\"}}}",
        "{\"type\":\"task.request\",\"payload\":{\"task_id\":\"t\",\"operation\":\"b\","
        "\"args\":{\"credential\":{\"key\":123}}}}",
        "{\"type\":\"task.request\",\"payload\":{\"task_id\":\"t\",\"operation\":\"b\","
        "\"args\":{\"credential\":{\"key\":\"k\",\"base_url\":[]}}}}",
        "{\"type\":\"task.cancel\",\"payload\":{\"task_id\":[]}}",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_reject(bad[i], ERR_INVALID, NULL);
}

static void test_proto_keeps_type_and_task_id_when_a_later_field_is_bad(void **state)
{
    struct proto_in m;
    char err[128];

    assert_int_equal(
        decode("{\"type\":\"task.request\",\"payload\":{\"task_id\":\"t7\","
               "\"operation\":\"bash\",\"args\":{\"credential\":{\"key\":\"a\\r\\nb\"}}}}",
               &m, err, sizeof(err)),
        ERR_KEY_CONTROL);
    assert_int_equal(m.type, PROTO_TASK_REQUEST);
    assert_string_equal(m.task_id, "t7");
    assert_null(m.args);
    assert_null(m.credential_key);
    assert_non_null(strstr(err, "args.credential.key"));
    proto_in_free(&m);
}

static void test_proto_moves_the_credential_key_to_the_secret_arena(void **state)
{
    static const char json[] =
        "{\"id\":\"m\",\"type\":\"task.request\",\"payload\":{\"task_id\":\"t\","
        "\"operation\":\"bash\",\"args\":{\"command\":\"curl $API\",\"credential\":"
        "{\"key\":\"sk-live-0123456789abcdef\",\"base_url\":\"https://api.example.com\"}}}}";
    char *text = malloc(sizeof(json));
    struct proto_in m;
    json_t *cred;
    char *dump;

    assert_non_null(text);
    memcpy(text, json, sizeof(json));
    assert_int_equal(proto_decode(text, sizeof(json) - 1, &m, NULL, 0), 0);
    /* The received text is wiped: no key, no anything. */
    assert_true(all_zero(text, sizeof(json) - 1));
    free(text);

    assert_non_null(m.credential_key);
    assert_int_equal(secret_len(m.credential_key), strlen("sk-live-0123456789abcdef"));
    assert_true(secret_equals(m.credential_key, "sk-live-0123456789abcdef", 24));
    assert_string_equal(m.credential_base_url, "https://api.example.com");

    cred = json_object_get(m.args, "credential");
    assert_true(json_is_object(cred));
    assert_null(json_object_get(cred, "key"));
    assert_string_equal(json_string_value(json_object_get(cred, "base_url")),
                        "https://api.example.com");
    dump = json_dumps(m.args, JSON_COMPACT);
    assert_non_null(dump);
    assert_null(strstr(dump, "sk-live"));
    free(dump);
    proto_in_free(&m);
    assert_null(m.credential_key);
}

static void test_proto_wipes_the_text_of_a_rejected_message_too(void **state)
{
    /* decode() asserts the wipe; these fail after and before jansson parsed the key. */
    expect_reject("{\"type\":\"task.request\",\"payload\":{\"args\":{\"credential\":"
                  "{\"key\":\"sk-abcdef\"}}}}",
                  ERR_INVALID, "sk-abcdef");
    expect_reject("{\"type\":\"task.request\",\"payload\":{\"task_id\":\"t\",\"args\":{"
                  "\"credential\":{\"key\":\"sk-abcdef\"}}}}",
                  ERR_INVALID, "sk-abcdef");
    expect_reject("{\"key\":\"sk-abcdef\"", ERR_INVALID, "sk-abcdef");
}

static void test_proto_rejects_a_credential_key_with_control_bytes_without_echoing_it(void **state)
{
    expect_reject("{\"type\":\"task.request\",\"payload\":{\"task_id\":\"t\",\"operation\":\"b\","
                  "\"args\":{\"credential\":{\"key\":\"sk-abc\\u0000def\"}}}}",
                  ERR_KEY_CONTROL, "sk-abc");
    expect_reject("{\"type\":\"task.request\",\"payload\":{\"task_id\":\"t\",\"operation\":\"b\","
                  "\"args\":{\"credential\":{\"key\":\"sk-abc\\tdef\"}}}}",
                  ERR_KEY_CONTROL, "sk-abc");
}

static void test_proto_treats_a_null_or_empty_credential_as_none(void **state)
{
    static const char *const none[] = {
        "{\"type\":\"task.request\",\"payload\":{\"task_id\":\"t\",\"operation\":\"b\","
        "\"args\":{\"credential\":null}}}",
        "{\"type\":\"task.request\",\"payload\":{\"task_id\":\"t\",\"operation\":\"b\","
        "\"args\":{\"credential\":{}}}}",
        "{\"type\":\"task.request\",\"payload\":{\"task_id\":\"t\",\"operation\":\"b\","
        "\"args\":{\"credential\":{\"key\":\"\"}}}}",
        "{\"type\":\"task.request\",\"payload\":{\"task_id\":\"t\",\"operation\":\"b\","
        "\"args\":{\"credential\":{\"key\":null,\"base_url\":null}}}}",
    };
    struct proto_in m;

    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        assert_int_equal(decode(none[i], &m, NULL, 0), 0);
        assert_null(m.credential_key);
        assert_null(m.credential_base_url);
        assert_null(json_object_get(json_object_get(m.args, "credential"), "key"));
        proto_in_free(&m);
    }
}

static void test_proto_decodes_a_16_mib_message(void **state)
{
    static const char head[] = "{\"type\":\"task.request\",\"payload\":{\"task_id\":\"big\","
                               "\"operation\":\"bash\",\"args\":{\"command\":\"";
    static const char tail[] = "\"}}}";
    size_t cmd_len = 16 * MIB, len = sizeof(head) - 1 + cmd_len + sizeof(tail) - 1;
    char *text = malloc(len);
    struct proto_in m;
    struct bash_args a;
    char err[128];

    assert_non_null(text);
    memcpy(text, head, sizeof(head) - 1);
    memset(text + sizeof(head) - 1, 'x', cmd_len);
    memcpy(text + sizeof(head) - 1 + cmd_len, tail, sizeof(tail) - 1);
    assert_int_equal(proto_decode(text, len, &m, err, sizeof(err)), 0);
    assert_true(all_zero(text, len));
    free(text);
    assert_int_equal(proto_bash_args(m.args, 0, &a, err, sizeof(err)), 0);
    assert_int_equal(strlen(a.command), cmd_len);
    bash_args_free(&a);
    proto_in_free(&m);
}

/* Runs proto_bash_args on args given as JSON text. */
static int bash_args(const char *json, uint64_t default_ms, struct bash_args *a, char *err,
                     size_t errlen)
{
    json_t *args = parse(json);
    int r = proto_bash_args(args, default_ms, a, err, errlen);

    json_decref(args);
    return r;
}

static void test_proto_bash_args_apply_defaults(void **state)
{
    struct bash_args a;

    assert_int_equal(bash_args("{\"command\":\"ls\"}", 0, &a, NULL, 0), 0);
    assert_string_equal(a.command, "ls");
    assert_null(a.workdir);
    assert_int_equal(a.timeout_ms, 120000);
    assert_false(a.stream);
    bash_args_free(&a);

    assert_int_equal(bash_args("{\"command\":\"ls\",\"timeout\":null,\"workdir\":\"\","
                               "\"stream\":null}",
                               30000, &a, NULL, 0),
                     0);
    assert_null(a.workdir);
    assert_int_equal(a.timeout_ms, 30000);
    bash_args_free(&a);
    bash_args_free(NULL);
    proto_in_free(NULL);
}

static void test_proto_bash_args_read_every_field(void **state)
{
    struct bash_args a;

    assert_int_equal(bash_args("{\"command\":\"make\",\"workdir\":\"/srv/w\",\"timeout\":300,"
                               "\"stream\":true,\"credential\":{\"base_url\":\"u\"}}",
                               0, &a, NULL, 0),
                     0);
    assert_string_equal(a.command, "make");
    assert_string_equal(a.workdir, "/srv/w");
    assert_int_equal(a.timeout_ms, 300000);
    assert_true(a.stream);
    bash_args_free(&a);

    assert_int_equal(bash_args("{\"command\":\"x\",\"timeout\":1.5}", 0, &a, NULL, 0), 0);
    assert_int_equal(a.timeout_ms, 1500);
    bash_args_free(&a);
    assert_int_equal(bash_args("{\"command\":\"x\",\"timeout\":0.0001}", 0, &a, NULL, 0), 0);
    assert_int_equal(a.timeout_ms, 1);
    bash_args_free(&a);
    assert_int_equal(bash_args("{\"command\":\"x\",\"timeout\":86400}", 0, &a, NULL, 0), 0);
    assert_int_equal(a.timeout_ms, 86400000);
    bash_args_free(&a);
    assert_int_equal(bash_args("{\"command\":\"x\",\"timeout\":86400.0}", 0, &a, NULL, 0), 0);
    assert_int_equal(a.timeout_ms, 86400000);
    bash_args_free(&a);
}

static void test_proto_bash_args_reject_bad_timeouts(void **state)
{
    static const char *const bad[] = {
        "{\"command\":\"x\",\"timeout\":0}",
        "{\"command\":\"x\",\"timeout\":0.0}",
        "{\"command\":\"x\",\"timeout\":-1}",
        "{\"command\":\"x\",\"timeout\":-0.5}",
        "{\"command\":\"x\",\"timeout\":86401}",
        "{\"command\":\"x\",\"timeout\":86400.001}",
        "{\"command\":\"x\",\"timeout\":1e300}",
        "{\"command\":\"x\",\"timeout\":9223372036854775807}",
        "{\"command\":\"x\",\"timeout\":\"60\"}",
        "{\"command\":\"x\",\"timeout\":true}",
        "{\"command\":\"x\",\"timeout\":[60]}",
    };
    struct bash_args a;
    char err[128];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(bash_args(bad[i], 0, &a, err, sizeof(err)), ERR_INVALID);
        assert_non_null(strstr(err, "args.timeout"));
        bash_args_free(&a);
    }
}

static void test_proto_bash_args_reject_a_missing_or_bad_command(void **state)
{
    static const char *const bad[] = {
        "{}",
        "{\"command\":null}",
        "{\"command\":\"\"}",
        "{\"command\":42}",
        "{\"command\":[\"ls\"]}",
        "{\"command\":\"ls\\u0000rm\"}",
        "{\"command\":\"ls\",\"workdir\":5}",
        "{\"command\":\"ls\",\"stream\":\"yes\"}",
        "{\"command\":\"ls\",\"stream\":1}",
        "[\"ls\"]",
    };
    struct bash_args a;
    char err[128];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(bash_args(bad[i], 0, &a, err, sizeof(err)), ERR_INVALID);
        assert_true(err[0] != '\0');
        assert_null(strstr(err, "rm"));
        bash_args_free(&a);
    }
    assert_int_equal(proto_bash_args(NULL, 0, &a, err, sizeof(err)), ERR_INVALID);
    bash_args_free(&a);
}

static void test_proto_encodes_heartbeat(void **state)
{
    json_t *labels = parse("{\"team\":\"sre\"}");
    json_t *env =
        parse("{\"os\":\"linux\",\"arch\":\"amd64\",\"hostname\":\"h\","
              "\"kernel\":\"6.1\\u001f\\\"/\\\\\",\"broker_supported\":true,"
              "\"isolation\":\"none\",\"load\":0.25,\"big\":1e300,\"n\":-9007199254740993,"
              "\"cpus\":[1,2.5,null,false,{\"x\":[]},[]],\"empty\":{},\"nul\":\"a\\u0000b\","
              "\"\\u00e9\\u20ac\":\"\\ud83d\\ude00\"}");
    struct proto_heartbeat hb = {.worknode_id = "wn",
                                 .name = "box",
                                 .version = "0.1.0",
                                 .labels = labels,
                                 .environment = env};
    char *text = proto_encode_heartbeat(&hb);
    json_t *p;

    assert_non_null(text);
    p = check_envelope(text, "heartbeat");
    assert_int_equal(json_object_size(p), 5);
    assert_string_equal(json_string_value(json_object_get(p, "worknode_id")), "wn");
    assert_string_equal(json_string_value(json_object_get(p, "name")), "box");
    assert_string_equal(json_string_value(json_object_get(p, "version")), "0.1.0");
    assert_true(json_equal(json_object_get(p, "labels"), labels));
    assert_true(json_equal(json_object_get(p, "environment"), env));
    /* Borrowed, not stolen. */
    assert_int_equal(labels->refcount, 1);
    assert_int_equal(env->refcount, 1);
    json_decref(p);
    free(text);
    json_decref(labels);
    json_decref(env);
}

static void test_proto_heartbeat_sends_empty_objects_and_strings_for_null(void **state)
{
    struct proto_heartbeat hb = {0};
    char *text = proto_encode_heartbeat(&hb);
    json_t *p;

    assert_non_null(text);
    p = check_envelope(text, "heartbeat");
    assert_string_equal(json_string_value(json_object_get(p, "worknode_id")), "");
    assert_true(json_is_object(json_object_get(p, "labels")));
    assert_int_equal(json_object_size(json_object_get(p, "environment")), 0);
    json_decref(p);
    free(text);
}

static void test_proto_encodes_task_output_with_sanitized_data(void **state)
{
    static const uint8_t data[] = "line 1\n\xff\xc3\xa9\t\"q\"";
    char *text = proto_encode_task_output("t1", "stderr", data, sizeof(data) - 1);
    json_t *p;

    assert_non_null(text);
    p = check_envelope(text, "task.output");
    assert_int_equal(json_object_size(p), 3);
    assert_string_equal(json_string_value(json_object_get(p, "task_id")), "t1");
    assert_string_equal(json_string_value(json_object_get(p, "stream")), "stderr");
    assert_string_equal(json_string_value(json_object_get(p, "data")),
                        "line 1\n\xef\xbf\xbd\xc3\xa9\t\"q\"");
    json_decref(p);
    free(text);

    text = proto_encode_task_output("t1", "stdout", NULL, 0);
    assert_non_null(text);
    p = check_envelope(text, "task.output");
    assert_string_equal(json_string_value(json_object_get(p, "data")), "");
    json_decref(p);
    free(text);
}

static void test_proto_encodes_task_result_with_a_bash_result(void **state)
{
    struct proto_bash_output b = {.out = (const uint8_t *)"out\n", .out_len = 4,
                                  .err = (const uint8_t *)"err\xc0", .err_len = 4,
                                  .err_capped = true, .exit_code = 3, .total_size = 4,
                                  .max_bytes = 1 << 20};
    json_t *res = proto_bash_result(&b);
    struct proto_task_result r = {.task_id = "t1",
                                  .source_instance_id = "si",
                                  .success = false,
                                  .result = res,
                                  .error = "exit status 3",
                                  .exit_code = 3};
    char *text;
    json_t *p, *got;

    assert_non_null(res);
    text = proto_encode_task_result(&r);
    assert_non_null(text);
    p = check_envelope(text, "task.result");
    assert_int_equal(json_object_size(p), 6);
    assert_string_equal(json_string_value(json_object_get(p, "task_id")), "t1");
    assert_string_equal(json_string_value(json_object_get(p, "source_instance_id")), "si");
    assert_true(json_is_false(json_object_get(p, "success")));
    assert_string_equal(json_string_value(json_object_get(p, "error")), "exit status 3");
    assert_int_equal(json_integer_value(json_object_get(p, "exit_code")), 3);
    got = json_object_get(p, "result");
    assert_int_equal(json_object_size(got), 6);
    assert_int_equal(json_integer_value(json_object_get(got, "total_size")), 4);
    assert_string_equal(json_string_value(json_object_get(got, "stdout")), "out\n");
    assert_string_equal(json_string_value(json_object_get(got, "stderr")), "err\xef\xbf\xbd");
    assert_int_equal(json_integer_value(json_object_get(got, "exit_code")), 3);
    assert_true(json_is_false(json_object_get(got, "stdout_truncated")));
    assert_true(json_is_true(json_object_get(got, "stderr_truncated")));
    assert_int_equal(res->refcount, 1);
    json_decref(p);
    free(text);
    json_decref(res);
}

static void test_proto_task_result_sends_null_result_and_empty_strings(void **state)
{
    struct proto_task_result r = {.task_id = "t2", .success = true, .exit_code = 0};
    char *text = proto_encode_task_result(&r);
    json_t *p;

    assert_non_null(text);
    p = check_envelope(text, "task.result");
    assert_true(json_is_null(json_object_get(p, "result")));
    assert_string_equal(json_string_value(json_object_get(p, "error")), "");
    assert_string_equal(json_string_value(json_object_get(p, "source_instance_id")), "");
    assert_true(json_is_true(json_object_get(p, "success")));
    assert_int_equal(json_integer_value(json_object_get(p, "exit_code")), 0);
    json_decref(p);
    free(text);

    /* An error string that is not UTF-8 is sanitized rather than failing the encode. */
    r.error = "bad \xff byte";
    text = proto_encode_task_result(&r);
    assert_non_null(text);
    p = check_envelope(text, "task.result");
    assert_string_equal(json_string_value(json_object_get(p, "error")), "bad \xef\xbf\xbd byte");
    json_decref(p);
    free(text);
}

/* mcp.result: Go's MCPResultPayload, result and error omitted when empty. */
static void test_proto_encodes_mcp_result(void **state)
{
    json_t *res = json_pack("{s:s}", "content", "3"), *p;
    char *text = proto_encode_mcp_result("c1", true, res, NULL);

    assert_non_null(text);
    p = check_envelope(text, "mcp.result");
    assert_string_equal(json_string_value(json_object_get(p, "call_id")), "c1");
    assert_true(json_is_true(json_object_get(p, "success")));
    assert_true(json_equal(json_object_get(p, "result"), res));
    assert_null(json_object_get(p, "error"));
    assert_int_equal(json_object_size(p), 3);
    json_decref(p);
    free(text);

    text = proto_encode_mcp_result("c2", false, NULL, "failed to call tool 't': boom \xff");
    assert_non_null(text);
    p = check_envelope(text, "mcp.result");
    assert_true(json_is_false(json_object_get(p, "success")));
    assert_null(json_object_get(p, "result"));
    assert_string_equal(json_string_value(json_object_get(p, "error")),
                        "failed to call tool 't': boom " FFFD);
    assert_int_equal(json_object_size(p), 3);
    json_decref(p);
    free(text);
    json_decref(res);
}

static void test_proto_encode_sanitizes_invalid_utf8_in_a_caller_value(void **state)
{
    json_t *res = json_pack("{s:o}", "stdout", json_stringn_nocheck("a\xff\xed\xa0\x80z", 6));
    struct proto_task_result r = {.task_id = "t", .result = res};
    char *text;
    json_t *p;

    assert_non_null(res);
    text = proto_encode_task_result(&r);
    assert_non_null(text);
    p = check_envelope(text, "task.result");
    assert_string_equal(json_string_value(json_object_get(json_object_get(p, "result"), "stdout")),
                        "a" FFFD FFFD FFFD FFFD "z");
    json_decref(p);
    free(text);
    json_decref(res);
}

static void test_proto_message_ids_are_fresh(void **state)
{
    char *a = proto_encode_task_output("t", "stdout", (const uint8_t *)"x", 1);
    char *b = proto_encode_task_output("t", "stdout", (const uint8_t *)"x", 1);
    json_t *ma, *mb;

    assert_non_null(a);
    assert_non_null(b);
    ma = parse(a);
    mb = parse(b);
    assert_string_not_equal(json_string_value(json_object_get(ma, "id")),
                            json_string_value(json_object_get(mb, "id")));
    json_decref(ma);
    json_decref(mb);
    free(a);
    free(b);
}

/* RUNNER-OPS.md 2.7: a result over its ceiling loses the end of stderr, marked, and the
 * message then fits. */
static void test_proto_bash_result_cuts_stderr_to_fit_the_message(void **state)
{
    static uint8_t err[200000];
    struct proto_bash_output b = {.out = (const uint8_t *)"out", .out_len = 3, .err = err,
                                  .err_len = sizeof(err), .max_bytes = 100000};
    json_t *res, *e;
    char *text;
    size_t n;

    memset(err, 'e', sizeof(err));
    err[10] = 0x01; /* escaped as six bytes */
    res = proto_bash_result(&b);
    assert_non_null(res);
    text = json_dumps(res, JSON_COMPACT);
    assert_non_null(text);
    assert_true(strlen(text) <= b.max_bytes);
    e = json_object_get(res, "stderr");
    n = json_string_length(e);
    assert_true(n > 90000);
    assert_string_equal(json_string_value(e) + n - strlen("\n... [stderr truncated]"),
                        "\n... [stderr truncated]");
    assert_true(json_is_true(json_object_get(res, "truncated")));
    assert_string_equal(json_string_value(json_object_get(res, "stdout")), "out");
    free(text);
    json_decref(res);

    /* Under the ceiling: whole, and no truncated member. */
    b.max_bytes = 16 * MIB;
    res = proto_bash_result(&b);
    assert_int_equal(json_string_length(json_object_get(res, "stderr")), sizeof(err));
    assert_null(json_object_get(res, "truncated"));
    json_decref(res);
}

static void test_proto_bash_result_keeps_nul_bytes_as_u0000(void **state)
{
    static const uint8_t out[] = {'a', 0, 'b', 0x01};
    struct proto_bash_output b = {.out = out, .out_len = sizeof(out), .max_bytes = 1 << 20};
    json_t *res = proto_bash_result(&b);
    struct proto_task_result r = {.task_id = "t", .success = true, .result = res};
    char *text = proto_encode_task_result(&r);
    json_t *p, *s;

    assert_non_null(text);
    assert_non_null(strstr(text, "\"a\\u0000b\\u0001\""));
    p = check_envelope(text, "task.result");
    s = json_object_get(json_object_get(p, "result"), "stdout");
    assert_int_equal(json_string_length(s), 4);
    assert_memory_equal(json_string_value(s), out, 4);
    assert_string_equal(json_string_value(json_object_get(json_object_get(p, "result"), "stderr")),
                        "");
    json_decref(p);
    free(text);
    json_decref(res);
}

/* Sanitizes in[0..len) and compares with want (a C string). */
static void expect_sanitized(const char *in, size_t len, const char *want)
{
    size_t n = 99;
    char *s = proto_utf8_sanitize((const uint8_t *)in, len, &n);

    assert_non_null(s);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(s, want, n);
    assert_int_equal(s[n], '\0');
    free(s);
}

static void test_proto_utf8_keeps_valid_text(void **state)
{
    expect_sanitized(S(""), "");
    expect_sanitized(S("plain ascii\n"), "plain ascii\n");
    /* 2, 3 and 4 bytes, and the edges of each range. */
    expect_sanitized(S("\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
                     "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    expect_sanitized(S("\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"),
                     "\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf");
    expect_sanitized(S("\xed\x9f\xbf\xee\x80\x80"), "\xed\x9f\xbf\xee\x80\x80");
    assert_null(proto_utf8_sanitize(NULL, SIZE_MAX, NULL));
}

static void test_proto_utf8_replaces_invalid_bytes(void **state)
{
    expect_sanitized(S("a\xffz"), "a" FFFD "z");
    expect_sanitized(S("\x80\xbf"), FFFD FFFD);
    expect_sanitized(S("\xfe\xf5\xf8\x88\x80\x80\x80"), FFFD FFFD FFFD FFFD FFFD FFFD FFFD);
    /* A lead byte followed by a non-continuation: one U+FFFD per byte of the broken
     * sequence (Go's encoder: RUNNER-OPS.md 2.6), then the byte itself. */
    expect_sanitized(S("\xc3z\xe2\x82y\xf0\x9f\x98x"),
                     FFFD "z" FFFD FFFD "y" FFFD FFFD FFFD "x");
}

static void test_proto_utf8_replaces_a_truncated_sequence_at_the_end(void **state)
{
    expect_sanitized(S("ok\xc3"), "ok" FFFD);
    expect_sanitized(S("ok\xe2\x82"), "ok" FFFD FFFD);
    expect_sanitized(S("ok\xf0\x9f\x98"), "ok" FFFD FFFD FFFD);
    expect_sanitized(S("\xf0"), FFFD);
}

static void test_proto_utf8_replaces_overlong_encodings(void **state)
{
    /* '/' as C0 AF, E0 80 AF, F0 80 80 AF; NUL as C0 80. */
    expect_sanitized(S("\xc0\xaf"), FFFD FFFD);
    expect_sanitized(S("\xc1\xbf"), FFFD FFFD);
    expect_sanitized(S("\xe0\x80\xaf"), FFFD FFFD FFFD);
    expect_sanitized(S("\xe0\x9f\xbf"), FFFD FFFD FFFD);
    expect_sanitized(S("\xf0\x80\x80\xaf"), FFFD FFFD FFFD FFFD);
    expect_sanitized(S("\xf0\x8f\xbf\xbf"), FFFD FFFD FFFD FFFD);
    expect_sanitized(S("\xc0\x80"), FFFD FFFD);
}

static void test_proto_utf8_replaces_surrogates_and_code_points_over_10ffff(void **state)
{
    expect_sanitized(S("\xed\xa0\x80"), FFFD FFFD FFFD);                            /* U+D800 */
    expect_sanitized(S("\xed\xbf\xbf"), FFFD FFFD FFFD);                            /* U+DFFF */
    expect_sanitized(S("\xed\xa0\xbd\xed\xb8\x80"), FFFD FFFD FFFD FFFD FFFD FFFD); /* CESU-8 */
    expect_sanitized(S("\xf4\x90\x80\x80"), FFFD FFFD FFFD FFFD);                   /* U+110000 */
    expect_sanitized(S("\xf7\xbf\xbf\xbf"), FFFD FFFD FFFD FFFD);
}

/* Correctness only: speed is measured by the benchmarks (bench/), never asserted here. */
static void test_proto_round_trips_10_mib_of_output(void **state)
{
    static const char pattern[] =
        "build: ok \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 \"q\" \\ \t\x01\n";
    size_t len = 10 * MIB, want_len, i;
    uint8_t *out = malloc(len);
    char *want, *text;
    json_t *res, *p, *s;
    struct proto_task_result r = {.task_id = "t", .success = true};

    assert_non_null(out);
    for (i = 0; i < len; i++)
        out[i] = (uint8_t)pattern[i % (sizeof(pattern) - 1)];
    /* A few bytes that need replacing, and a NUL. */
    out[1000] = 0xff;
    out[len / 2] = 0;
    out[len - 1] = 0xc3;
    want = proto_utf8_sanitize(out, len, &want_len);
    assert_non_null(want);

    res = proto_bash_result(&(struct proto_bash_output){.out = out, .out_len = len,
                                                        .out_capped = true,
                                                        .max_bytes = 64 * MIB});
    assert_non_null(res);
    r.result = res;
    text = proto_encode_task_result(&r);
    assert_non_null(text);
    json_decref(res);

    p = check_envelope(text, "task.result");
    s = json_object_get(json_object_get(p, "result"), "stdout");
    assert_int_equal(json_string_length(s), want_len);
    assert_memory_equal(json_string_value(s), want, want_len);
    assert_true(json_is_true(json_object_get(json_object_get(p, "result"), "stdout_truncated")));
    json_decref(p);
    free(text);
    free(want);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proto_init_installs_a_free_that_is_not_plain_free),
        cmocka_unit_test(test_proto_decodes_welcome),
        cmocka_unit_test(test_proto_welcome_without_labels_gets_an_empty_object),
        cmocka_unit_test(test_proto_welcome_keeps_labels_given_as_a_list),
        cmocka_unit_test(test_proto_decodes_task_request_with_every_field),
        cmocka_unit_test(test_proto_task_request_keeps_args_as_sent),
        cmocka_unit_test(test_proto_decodes_task_cancel),
        cmocka_unit_test(test_proto_decodes_mcp_call),
        cmocka_unit_test(test_proto_unknown_type_decodes_as_unknown_with_its_name),
        cmocka_unit_test(test_proto_type_name_is_truncated_and_printable),
        cmocka_unit_test(test_proto_rejects_malformed_json_without_quoting_it),
        cmocka_unit_test(test_proto_rejects_a_message_that_is_not_an_object),
        cmocka_unit_test(test_proto_rejects_a_message_over_the_limit_and_still_wipes_it),
        cmocka_unit_test(test_proto_rejects_task_request_without_task_id),
        cmocka_unit_test(test_proto_rejects_missing_or_ill_typed_fields),
        cmocka_unit_test(test_proto_keeps_type_and_task_id_when_a_later_field_is_bad),
        cmocka_unit_test(test_proto_moves_the_credential_key_to_the_secret_arena),
        cmocka_unit_test(test_proto_wipes_the_text_of_a_rejected_message_too),
        cmocka_unit_test(test_proto_rejects_a_credential_key_with_control_bytes_without_echoing_it),
        cmocka_unit_test(test_proto_treats_a_null_or_empty_credential_as_none),
        cmocka_unit_test(test_proto_decodes_a_16_mib_message),
        cmocka_unit_test(test_proto_bash_args_apply_defaults),
        cmocka_unit_test(test_proto_bash_args_read_every_field),
        cmocka_unit_test(test_proto_bash_args_reject_bad_timeouts),
        cmocka_unit_test(test_proto_bash_args_reject_a_missing_or_bad_command),
        cmocka_unit_test(test_proto_encodes_heartbeat),
        cmocka_unit_test(test_proto_heartbeat_sends_empty_objects_and_strings_for_null),
        cmocka_unit_test(test_proto_encodes_task_output_with_sanitized_data),
        cmocka_unit_test(test_proto_encodes_task_result_with_a_bash_result),
        cmocka_unit_test(test_proto_task_result_sends_null_result_and_empty_strings),
        cmocka_unit_test(test_proto_encodes_mcp_result),
        cmocka_unit_test(test_proto_encode_sanitizes_invalid_utf8_in_a_caller_value),
        cmocka_unit_test(test_proto_message_ids_are_fresh),
        cmocka_unit_test(test_proto_bash_result_keeps_nul_bytes_as_u0000),
        cmocka_unit_test(test_proto_bash_result_cuts_stderr_to_fit_the_message),
        cmocka_unit_test(test_proto_utf8_keeps_valid_text),
        cmocka_unit_test(test_proto_utf8_replaces_invalid_bytes),
        cmocka_unit_test(test_proto_utf8_replaces_a_truncated_sequence_at_the_end),
        cmocka_unit_test(test_proto_utf8_replaces_overlong_encodings),
        cmocka_unit_test(test_proto_utf8_replaces_surrogates_and_code_points_over_10ffff),
        cmocka_unit_test(test_proto_round_trips_10_mib_of_output),
    };

    proto_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
