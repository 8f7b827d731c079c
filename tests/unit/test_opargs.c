/*
 * Unit tests for src/runner/opargs.c: the file and MCP operations' args and the mcp.call
 * payload read as Go's encoding/json reads them (RUNNER-OPS.md sections 2.3 and 9), error
 * texts byte for byte.
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
#include "opargs.h"

/* Parses text as the args of spec into out; returns opargs_parse's code, err filled. */
static int parse(const struct opargs_spec *spec, const char *text, void *out, char *err,
                 size_t errlen)
{
    json_error_t je;
    json_t *args = text != NULL ? json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je) : NULL;
    int r;

    if (text != NULL)
        assert_non_null(args);
    r = opargs_parse(spec, args, out, err, errlen);
    json_decref(args);
    return r;
}

static void assert_error(const struct opargs_spec *spec, const char *text, const char *want)
{
    char err[256];
    _Alignas(max_align_t) char out[512];

    assert_true(spec->size <= sizeof(out));
    assert_int_equal(parse(spec, text, out, err, sizeof(err)), ERR_INVALID);
    assert_string_equal(err, want);
    opargs_free(spec, out);
}

static void test_defaults_for_null_and_empty_args(void **state)
{
    struct read_args a;
    char err[256];

    assert_int_equal(parse(&opargs_read, "null", &a, err, sizeof(err)), 0);
    assert_null(a.path);
    assert_true(a.offset == 0 && a.limit == 0);
    assert_int_equal(parse(&opargs_read, "{}", &a, err, sizeof(err)), 0);
    assert_null(a.path);
    opargs_free(&opargs_read, &a);
    assert_error(&opargs_read, NULL, "invalid read args: unexpected end of JSON input");
}

static void test_keys_fold_case_and_the_later_wins(void **state)
{
    struct read_args a;
    char err[256];

    assert_int_equal(parse(&opargs_read, "{\"PATH\": \"a\", \"Offset\": 7, \"lImIt\": 5, "
                                         "\"unknown\": [1, {}]}", &a, err, sizeof(err)), 0);
    assert_string_equal(a.path, "a");
    assert_true(a.offset == 7 && a.limit == 5);
    opargs_free(&opargs_read, &a);
    assert_int_equal(parse(&opargs_read, "{\"path\": \"a\", \"Path\": \"b\"}", &a, err,
                           sizeof(err)), 0);
    assert_string_equal(a.path, "b");
    opargs_free(&opargs_read, &a);
    /* null leaves the field as it was, also after an earlier key set it */
    assert_int_equal(parse(&opargs_read, "{\"path\": \"a\", \"PATH\": null, \"offset\": null}",
                           &a, err, sizeof(err)), 0);
    assert_string_equal(a.path, "a");
    assert_true(a.offset == 0);
    opargs_free(&opargs_read, &a);
}

static void test_wrong_types_fail_with_gos_text(void **state)
{
    assert_error(&opargs_read, "{\"offset\": \"7\"}",
                 "invalid read args: json: cannot unmarshal string into Go struct field "
                 "ReadArgs.offset of type int64");
    assert_error(&opargs_read, "{\"limit\": 1.5}",
                 "invalid read args: json: cannot unmarshal number 1.5 into Go struct field "
                 "ReadArgs.limit of type int64");
    assert_error(&opargs_webfetch, "{\"timeout\": 1.5}",
                 "invalid webfetch args: json: cannot unmarshal number 1.5 into Go struct field "
                 "WebFetchArgs.timeout of type int");
    assert_error(&opargs_webfetch, "{\"timeout\": \"30\"}",
                 "invalid webfetch args: json: cannot unmarshal string into Go struct field "
                 "WebFetchArgs.timeout of type int");
    assert_error(&opargs_read, "{\"path\": 3}",
                 "invalid read args: json: cannot unmarshal number into Go struct field "
                 "ReadArgs.path of type string");
    assert_error(&opargs_read, "{\"path\": true}",
                 "invalid read args: json: cannot unmarshal bool into Go struct field "
                 "ReadArgs.path of type string");
    assert_error(&opargs_write, "{\"content\": {}}",
                 "invalid write args: json: cannot unmarshal object into Go struct field "
                 "WriteArgs.content of type string");
    assert_error(&opargs_list, "{\"recursive\": \"yes\"}",
                 "invalid list args: json: cannot unmarshal string into Go struct field "
                 "ListArgs.recursive of type bool");
    assert_error(&opargs_list, "{\"ignore\": \"*.o\"}",
                 "invalid list args: json: cannot unmarshal string into Go struct field "
                 "ListArgs.ignore of type []string");
    assert_error(&opargs_list, "{\"ignore\": [\"a\", 1]}",
                 "invalid list args: json: cannot unmarshal number into Go struct field "
                 "ListArgs.ignore of type string");
    assert_error(&opargs_grep, "{\"include\": [[]]}",
                 "invalid grep args: json: cannot unmarshal array into Go struct field "
                 "GrepArgs.include of type string");
    /* The first error in document order. */
    assert_error(&opargs_read, "{\"limit\": \"x\", \"offset\": \"y\"}",
                 "invalid read args: json: cannot unmarshal string into Go struct field "
                 "ReadArgs.limit of type int64");
}

static void test_args_that_are_not_an_object(void **state)
{
    assert_error(&opargs_read, "\"x\"",
                 "invalid read args: json: cannot unmarshal string into Go value of type "
                 "protocol.ReadArgs");
    assert_error(&opargs_glob, "[]",
                 "invalid glob args: json: cannot unmarshal array into Go value of type "
                 "protocol.GlobArgs");
    assert_error(&opargs_grep, "5",
                 "invalid grep args: json: cannot unmarshal number into Go value of type "
                 "protocol.GrepArgs");
    assert_error(&opargs_list, "false",
                 "invalid list args: json: cannot unmarshal bool into Go value of type "
                 "protocol.ListArgs");
}

static void test_string_lists_and_a_nul_byte(void **state)
{
    struct list_args l;
    struct grep_args g;
    char err[256];

    assert_int_equal(parse(&opargs_list, "{\"ignore\": [\"*.o\", null], \"recursive\": true}",
                           &l, err, sizeof(err)), 0);
    assert_int_equal(l.ignore.n, 2);
    assert_string_equal(l.ignore.v[0], "*.o");
    assert_string_equal(l.ignore.v[1], ""); /* Go: null into a string leaves "" */
    assert_true(l.recursive);
    opargs_free(&opargs_list, &l);
    /* [] is an empty list, not none; a later key replaces the whole list */
    assert_int_equal(parse(&opargs_grep, "{\"include\": [\"a\"], \"INCLUDE\": []}", &g, err,
                           sizeof(err)), 0);
    assert_non_null(g.include.v);
    assert_int_equal(g.include.n, 0);
    opargs_free(&opargs_grep, &g);
    assert_int_equal(parse(&opargs_grep, "{}", &g, err, sizeof(err)), 0);
    assert_null(g.include.v);
    opargs_free(&opargs_grep, &g);
    assert_error(&opargs_read, "{\"path\": \"a\\u0000b\"}",
                 "invalid read args: path contains a NUL byte");
    assert_error(&opargs_list, "{\"ignore\": [\"a\\u0000\"]}",
                 "invalid list args: ignore contains a NUL byte");
}

static void test_sync_skill_args_are_gos_sync_skill_args(void **state)
{
    struct sync_skill_args a;
    char err[256];

    assert_int_equal(parse(&opargs_sync_skill, "{\"Skill_Name\": \"n\", \"skill_dir\": \"s\", "
                                               "\"ZIP_DATA\": \"UEs=\", \"checksum\": \"c\"}",
                           &a, err, sizeof(err)), 0);
    assert_string_equal(a.skill_name, "n");
    assert_string_equal(a.skill_dir, "s");
    assert_string_equal(a.zip_data, "UEs=");
    assert_string_equal(a.checksum, "c");
    opargs_free(&opargs_sync_skill, &a);
    assert_error(&opargs_sync_skill, "{\"zip_data\": []}",
                 "invalid sync_skill args: json: cannot unmarshal array into Go struct field "
                 "SyncSkillArgs.zip_data of type string");
    assert_error(&opargs_sync_skill, "7",
                 "invalid sync_skill args: json: cannot unmarshal number into Go value of type "
                 "protocol.SyncSkillArgs");
}

/* The MCPServerConfig every MCP test below starts from: each member given. */
#define FULL_SERVER                                                                            \
    "{\"name\": \"gh\", \"transport\": \"stdio\", \"command\": \"npx\", "                          \
    "\"args\": [\"-y\", null], \"env\": {\"A\": \"1\", \"a\": \"2\", \"EMPTY\": null}, "          \
    "\"url\": \"http://h/mcp\", \"headers\": {\"X-Team\": \"t\"}, "                               \
    "\"dynamic_headers\": {\"Authorization\": \"Bearer u\"}, \"tls_skip_verify\": true}"

/* The value of key in m, or NULL. */
static const char *map_get(const struct opargs_map *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->keys[i], key) == 0)
            return m->values[i];
    return NULL;
}

static void test_mcp_call_args_fill_the_nested_server_config(void **state)
{
    struct mcp_call_args a;
    char err[256];

    assert_int_equal(parse(&opargs_mcp_call, "{\"SERVER\": " FULL_SERVER ", \"Tool_Name\": "
                                             "\"echo\", \"args\": {\"m\": 1}, \"timeout\": 90}",
                           &a, err, sizeof(err)), 0);
    assert_string_equal(a.server.name, "gh");
    assert_string_equal(a.server.transport, "stdio");
    assert_string_equal(a.server.command, "npx");
    assert_string_equal(a.server.url, "http://h/mcp");
    assert_int_equal(a.server.args.n, 2);
    assert_string_equal(a.server.args.v[0], "-y");
    assert_string_equal(a.server.args.v[1], "");
    /* map keys keep their case: "A" and "a" are two entries; a null value is "" */
    assert_int_equal(a.server.env.n, 3);
    assert_string_equal(map_get(&a.server.env, "A"), "1");
    assert_string_equal(map_get(&a.server.env, "a"), "2");
    assert_string_equal(map_get(&a.server.env, "EMPTY"), "");
    assert_string_equal(map_get(&a.server.headers, "X-Team"), "t");
    assert_int_equal(a.server.dynamic_headers.n, 1);
    assert_string_equal(map_get(&a.server.dynamic_headers, "Authorization"), "Bearer u");
    assert_true(a.server.tls_skip_verify);
    assert_string_equal(a.tool_name, "echo");
    assert_true(json_is_object(a.args));
    assert_int_equal(json_integer_value(json_object_get(a.args, "m")), 1);
    assert_true(a.timeout == 90);
    opargs_free(&opargs_mcp_call, &a);
    assert_null(a.server.name);
    assert_null(a.args);

    /* nothing given: every member at its default, no map, no list, no raw value */
    assert_int_equal(parse(&opargs_mcp_call, "{}", &a, err, sizeof(err)), 0);
    assert_null(a.server.name);
    assert_null(a.server.env.keys);
    assert_int_equal(a.server.env.n, 0);
    assert_null(a.server.args.v);
    assert_false(a.server.tls_skip_verify);
    assert_null(a.args);
    assert_true(a.timeout == 0);
    opargs_free(&opargs_mcp_call, &a);
}

static void test_nested_members_of_the_wrong_type_name_the_inner_struct_and_the_path(void **state)
{
    assert_error(&opargs_mcp_call, "{\"server\": {\"name\": 3}}",
                 "invalid mcp_call args: json: cannot unmarshal number into Go struct field "
                 "MCPServerConfig.server.name of type string");
    assert_error(&opargs_mcp_call, "{\"server\": {\"Transport\": true}}",
                 "invalid mcp_call args: json: cannot unmarshal bool into Go struct field "
                 "MCPServerConfig.server.transport of type string");
    assert_error(&opargs_mcp_call, "{\"server\": {\"command\": [\"npx\"]}}",
                 "invalid mcp_call args: json: cannot unmarshal array into Go struct field "
                 "MCPServerConfig.server.command of type string");
    assert_error(&opargs_mcp_call, "{\"server\": {\"url\": {}}}",
                 "invalid mcp_call args: json: cannot unmarshal object into Go struct field "
                 "MCPServerConfig.server.url of type string");
    assert_error(&opargs_mcp_call, "{\"server\": {\"url\": 1.5}}",
                 "invalid mcp_call args: json: cannot unmarshal number into Go struct field "
                 "MCPServerConfig.server.url of type string");
    assert_error(&opargs_mcp_call, "{\"server\": {\"args\": \"-y\"}}",
                 "invalid mcp_call args: json: cannot unmarshal string into Go struct field "
                 "MCPServerConfig.server.args of type []string");
    assert_error(&opargs_mcp_call, "{\"server\": {\"args\": [\"-y\", 2]}}",
                 "invalid mcp_call args: json: cannot unmarshal number into Go struct field "
                 "MCPServerConfig.server.args of type string");
    assert_error(&opargs_mcp_call, "{\"server\": {\"tls_skip_verify\": \"true\"}}",
                 "invalid mcp_call args: json: cannot unmarshal string into Go struct field "
                 "MCPServerConfig.server.tls_skip_verify of type bool");
    /* the outer struct's own members keep the outer struct's name */
    assert_error(&opargs_mcp_call, "{\"server\": {}, \"tool_name\": 1}",
                 "invalid mcp_call args: json: cannot unmarshal number into Go struct field "
                 "MCPCallArgs.tool_name of type string");
    assert_error(&opargs_mcp_call, "{\"timeout\": \"60\"}",
                 "invalid mcp_call args: json: cannot unmarshal string into Go struct field "
                 "MCPCallArgs.timeout of type int");
    assert_error(&opargs_mcp_call, "{\"timeout\": 1.5}",
                 "invalid mcp_call args: json: cannot unmarshal number 1.5 into Go struct field "
                 "MCPCallArgs.timeout of type int");
    /* the first error in document order, across the nesting */
    assert_error(&opargs_mcp_call,
                 "{\"server\": {\"env\": {\"a\": 1}, \"name\": 2}, \"tool_name\": 3}",
                 "invalid mcp_call args: json: cannot unmarshal number into Go struct field "
                 "MCPServerConfig.server.env of type string");
    assert_error(&opargs_mcp_call, "{\"tool_name\": 3, \"server\": {\"name\": 2}}",
                 "invalid mcp_call args: json: cannot unmarshal number into Go struct field "
                 "MCPCallArgs.tool_name of type string");
}

static void test_a_server_that_is_not_an_object_is_a_protocol_struct_mismatch(void **state)
{
    static const char *const kinds[][2] = {
        {"\"x\"", "string"}, {"1", "number"}, {"1.5", "number"}, {"[]", "array"}, {"true", "bool"}};
    char text[64], want[256];

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        snprintf(text, sizeof(text), "{\"server\": %s}", kinds[i][0]);
        snprintf(want, sizeof(want), "invalid mcp_call args: json: cannot unmarshal %s into Go "
                 "struct field MCPCallArgs.server of type protocol.MCPServerConfig", kinds[i][1]);
        assert_error(&opargs_mcp_call, text, want);
    }
    assert_error(&opargs_mcp_list_tools, "{\"server\": \"x\"}",
                 "invalid mcp_list_tools args: json: cannot unmarshal string into Go struct field "
                 "MCPListToolsArgs.server of type protocol.MCPServerConfig");
    assert_error(&opargs_mcp_call, "[]",
                 "invalid mcp_call args: json: cannot unmarshal array into Go value of type "
                 "protocol.MCPCallArgs");
    assert_error(&opargs_mcp_list_tools, NULL,
                 "invalid mcp_list_tools args: unexpected end of JSON input");
}

static void test_map_values_and_maps_of_the_wrong_type(void **state)
{
    static const char *const values[][2] = {
        {"1", "number"}, {"true", "bool"}, {"[\"v\"]", "array"}, {"{}", "object"}};
    static const char *const maps[] = {"env", "headers", "dynamic_headers"};
    char text[128], want[256];

    for (size_t m = 0; m < sizeof(maps) / sizeof(maps[0]); m++) {
        for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
            snprintf(text, sizeof(text), "{\"server\": {\"%s\": {\"k\": \"v\", \"K\": %s}}}",
                     maps[m], values[i][0]);
            snprintf(want, sizeof(want), "invalid mcp_call args: json: cannot unmarshal %s into "
                     "Go struct field MCPServerConfig.server.%s of type string", values[i][1],
                     maps[m]);
            assert_error(&opargs_mcp_call, text, want);
        }
        snprintf(text, sizeof(text), "{\"server\": {\"%s\": [\"k=v\"]}}", maps[m]);
        snprintf(want, sizeof(want), "invalid mcp_call args: json: cannot unmarshal array into "
                 "Go struct field MCPServerConfig.server.%s of type map[string]string", maps[m]);
        assert_error(&opargs_mcp_call, text, want);
    }
    assert_error(&opargs_mcp_list_tools, "{\"server\": {\"headers\": \"a: b\"}}",
                 "invalid mcp_list_tools args: json: cannot unmarshal string into Go struct field "
                 "MCPServerConfig.server.headers of type map[string]string");
    assert_error(&opargs_mcp_list_tools, "{\"server\": {\"env\": 7}}",
                 "invalid mcp_list_tools args: json: cannot unmarshal number into Go struct field "
                 "MCPServerConfig.server.env of type map[string]string");
}

static void test_repeated_keys_fold_for_fields_but_not_for_map_keys(void **state)
{
    struct mcp_list_tools_args a;
    char err[256];

    /* Two keys folding to server decode into the same struct (Go): members merge, the
     * later wins; two env maps merge, a map key given again takes the later value, and
     * map keys differing in case stay apart. */
    assert_int_equal(parse(&opargs_mcp_list_tools,
                           "{\"server\": {\"name\": \"a\", \"url\": \"u\", \"env\": {\"K\": \"1\", "
                           "\"L\": \"2\"}}, \"SERVER\": {\"NAME\": \"b\", \"Env\": {\"K\": \"3\", "
                           "\"k\": \"4\"}}, \"Server\": null}",
                           &a, err, sizeof(err)), 0);
    assert_string_equal(a.server.name, "b");
    assert_string_equal(a.server.url, "u");
    assert_int_equal(a.server.env.n, 3);
    assert_string_equal(a.server.env.keys[0], "K");
    assert_string_equal(a.server.env.values[0], "3");
    assert_string_equal(a.server.env.keys[1], "L");
    assert_string_equal(a.server.env.keys[2], "k");
    assert_string_equal(a.server.env.values[2], "4");
    opargs_free(&opargs_mcp_list_tools, &a);
    /* a repeated key inside one JSON object: the later value (jansson keeps the last) */
    assert_int_equal(parse(&opargs_mcp_list_tools, "{\"server\": {\"headers\": {\"h\": \"1\", "
                           "\"h\": \"2\"}}}", &a, err, sizeof(err)), 0);
    assert_int_equal(a.server.headers.n, 1);
    assert_string_equal(map_get(&a.server.headers, "h"), "2");
    opargs_free(&opargs_mcp_list_tools, &a);
    /* args (a []string) is replaced by a later key, not merged */
    assert_int_equal(parse(&opargs_mcp_list_tools, "{\"server\": {\"args\": [\"a\", \"b\"], "
                           "\"ARGS\": [\"c\"]}}", &a, err, sizeof(err)), 0);
    assert_int_equal(a.server.args.n, 1);
    assert_string_equal(a.server.args.v[0], "c");
    opargs_free(&opargs_mcp_list_tools, &a);
}

static void test_null_leaves_structs_but_resets_maps(void **state)
{
    struct mcp_list_tools_args a;
    char err[256];

    assert_int_equal(parse(&opargs_mcp_list_tools, "{\"server\": null}", &a, err, sizeof(err)), 0);
    assert_null(a.server.name);
    opargs_free(&opargs_mcp_list_tools, &a);
    /* null for a map sets it to nil (Go's SetZero), also after an earlier key gave one */
    assert_int_equal(parse(&opargs_mcp_list_tools, "{\"server\": {\"env\": {\"A\": \"1\"}, "
                           "\"ENV\": null, \"name\": \"n\", \"Name\": null, \"tls_skip_verify\": "
                           "true, \"TLS_SKIP_VERIFY\": null}}", &a, err, sizeof(err)), 0);
    assert_null(a.server.env.keys);
    assert_null(a.server.env.values);
    assert_int_equal(a.server.env.n, 0);
    assert_string_equal(a.server.name, "n");
    assert_true(a.server.tls_skip_verify);
    opargs_free(&opargs_mcp_list_tools, &a);
    /* {} is an empty map, not none; a later map after a null starts afresh */
    assert_int_equal(parse(&opargs_mcp_list_tools, "{\"server\": {\"headers\": {}, "
                           "\"env\": {\"A\": \"1\"}, \"env\": null}, \"Server\": {\"env\": "
                           "{\"B\": \"2\"}}}", &a, err, sizeof(err)), 0);
    assert_non_null(a.server.headers.keys);
    assert_int_equal(a.server.headers.n, 0);
    assert_null(a.server.dynamic_headers.keys);
    opargs_free(&opargs_mcp_list_tools, &a);
    assert_int_equal(parse(&opargs_mcp_list_tools, "{\"server\": {\"env\": {\"A\": \"1\"}, "
                           "\"Env\": null, \"ENV\": {\"B\": \"2\"}}}", &a, err, sizeof(err)), 0);
    assert_int_equal(a.server.env.n, 1);
    assert_string_equal(map_get(&a.server.env, "B"), "2");
    opargs_free(&opargs_mcp_list_tools, &a);
}

static void test_raw_args_keep_any_json_value(void **state)
{
    static const char *const values[] = {"{\"a\": [1, {}]}", "[1, 2]", "\"s\"", "7", "1.5",
                                         "true", "false", "null", "{}"};
    struct mcp_call_args a;
    char err[256], text[96];

    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        json_error_t je;
        json_t *want = json_loads(values[i], JSON_DECODE_ANY, &je);

        assert_non_null(want);
        snprintf(text, sizeof(text), "{\"args\": %s}", values[i]);
        assert_int_equal(parse(&opargs_mcp_call, text, &a, err, sizeof(err)), 0);
        /* null too: Go's RawMessage gets the bytes "null", not nothing */
        assert_non_null(a.args);
        assert_true(json_equal(a.args, want));
        opargs_free(&opargs_mcp_call, &a);
        json_decref(want);
    }
    /* the value outlives the args it came from (a reference), and the later key wins */
    {
        json_error_t je;
        json_t *args = json_loads("{\"args\": {\"a\": 1}, \"ARGS\": [\"x\"]}", 0, &je);

        assert_non_null(args);
        assert_int_equal(opargs_parse(&opargs_mcp_call, args, &a, err, sizeof(err)), 0);
        json_decref(args);
        assert_true(json_is_array(a.args));
        assert_string_equal(json_string_value(json_array_get(a.args, 0)), "x");
        opargs_free(&opargs_mcp_call, &a);
    }
}

static void test_nul_bytes_in_nested_strings_and_maps_are_refused(void **state)
{
    assert_error(&opargs_mcp_call, "{\"server\": {\"name\": \"a\\u0000\"}}",
                 "invalid mcp_call args: server.name contains a NUL byte");
    assert_error(&opargs_mcp_call, "{\"server\": {\"args\": [\"\\u0000\"]}}",
                 "invalid mcp_call args: server.args contains a NUL byte");
    assert_error(&opargs_mcp_call, "{\"server\": {\"env\": {\"A\": \"1\\u00002\"}}}",
                 "invalid mcp_call args: server.env contains a NUL byte");
    /* jansson's decoder refuses a NUL in a key (the message never gets here), but a tree
     * built with json_object_setn can hold one */
    {
        json_t *headers = json_object(), *server = json_object(), *args = json_object();
        struct mcp_call_args a;
        char err[256];

        assert_true(headers != NULL && server != NULL && args != NULL);
        assert_int_equal(json_object_setn_new(headers, "X\0Y", 3, json_string("v")), 0);
        assert_int_equal(json_object_set_new(server, "headers", headers), 0);
        assert_int_equal(json_object_set_new(args, "server", server), 0);
        assert_int_equal(opargs_parse(&opargs_mcp_call, args, &a, err, sizeof(err)), ERR_INVALID);
        assert_string_equal(err, "invalid mcp_call args: server.headers contains a NUL byte");
        opargs_free(&opargs_mcp_call, &a);
        json_decref(args);
    }
    assert_error(&opargs_mcp_call_payload, "{\"call_id\": \"\\u0000\"}",
                 "invalid mcp.call payload: call_id contains a NUL byte");
}

static void test_mcp_call_payload_is_gos_mcp_call_payload(void **state)
{
    struct mcp_call_payload p;
    char err[256];

    assert_int_equal(parse(&opargs_mcp_call_payload, "{\"call_id\": \"c1\", \"server\": "
                           FULL_SERVER ", \"tool_name\": \"t\", \"Arguments\": {\"q\": \"x\"}, "
                           "\"args\": 5, \"timeout\": \"ignored\"}", &p, err, sizeof(err)), 0);
    assert_string_equal(p.call_id, "c1");
    assert_string_equal(p.call.server.name, "gh");
    assert_string_equal(map_get(&p.call.server.dynamic_headers, "Authorization"), "Bearer u");
    assert_string_equal(p.call.tool_name, "t");
    assert_string_equal(json_string_value(json_object_get(p.call.args, "q")), "x");
    assert_int_equal(p.call.timeout, 0); /* no timeout field: "timeout" is ignored */
    opargs_free(&opargs_mcp_call_payload, &p);
    assert_error(&opargs_mcp_call_payload, "{\"call_id\": 7}",
                 "invalid mcp.call payload: json: cannot unmarshal number into Go struct field "
                 "MCPCallPayload.call_id of type string");
    assert_error(&opargs_mcp_call_payload, "{\"call_id\": \"c\", \"server\": []}",
                 "invalid mcp.call payload: json: cannot unmarshal array into Go struct field "
                 "MCPCallPayload.server of type protocol.MCPServerConfig");
    assert_error(&opargs_mcp_call_payload, "{\"server\": {\"dynamic_headers\": {\"a\": false}}}",
                 "invalid mcp.call payload: json: cannot unmarshal bool into Go struct field "
                 "MCPServerConfig.server.dynamic_headers of type string");
    assert_error(&opargs_mcp_call_payload, "\"x\"",
                 "invalid mcp.call payload: json: cannot unmarshal string into Go value of type "
                 "protocol.MCPCallPayload");
    assert_error(&opargs_mcp_call_payload, NULL,
                 "invalid mcp.call payload: unexpected end of JSON input");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_for_null_and_empty_args),
        cmocka_unit_test(test_keys_fold_case_and_the_later_wins),
        cmocka_unit_test(test_wrong_types_fail_with_gos_text),
        cmocka_unit_test(test_args_that_are_not_an_object),
        cmocka_unit_test(test_string_lists_and_a_nul_byte),
        cmocka_unit_test(test_sync_skill_args_are_gos_sync_skill_args),
        cmocka_unit_test(test_mcp_call_args_fill_the_nested_server_config),
        cmocka_unit_test(test_nested_members_of_the_wrong_type_name_the_inner_struct_and_the_path),
        cmocka_unit_test(test_a_server_that_is_not_an_object_is_a_protocol_struct_mismatch),
        cmocka_unit_test(test_map_values_and_maps_of_the_wrong_type),
        cmocka_unit_test(test_repeated_keys_fold_for_fields_but_not_for_map_keys),
        cmocka_unit_test(test_null_leaves_structs_but_resets_maps),
        cmocka_unit_test(test_raw_args_keep_any_json_value),
        cmocka_unit_test(test_nul_bytes_in_nested_strings_and_maps_are_refused),
        cmocka_unit_test(test_mcp_call_payload_is_gos_mcp_call_payload),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
