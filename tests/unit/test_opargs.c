/*
 * Unit tests for src/runner/opargs.c: the file operations' args read as Go's
 * encoding/json reads them (RUNNER-OPS.md section 2.3), error texts byte for byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

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
    char err[256], out[128];

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_for_null_and_empty_args),
        cmocka_unit_test(test_keys_fold_case_and_the_later_wins),
        cmocka_unit_test(test_wrong_types_fail_with_gos_text),
        cmocka_unit_test(test_args_that_are_not_an_object),
        cmocka_unit_test(test_string_lists_and_a_nul_byte),
        cmocka_unit_test(test_sync_skill_args_are_gos_sync_skill_args),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
