/* Unit tests for src/broker/policy.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "err.h"
#include "http1.h"
#include "policy.h"

static bool allows(const struct policy *p, const char *method, const char *path)
{
    return policy_allows(p, method, strlen(method), path, strlen(path));
}

static void test_policy_without_rules_allows_everything(void **state)
{
    struct policy *p;

    assert_int_equal(policy_new(&p), 0);
    assert_int_equal(policy_rule_count(p), 0);
    assert_true(allows(p, "DELETE", "/anything/at/all"));
    assert_true(policy_allows(p, "GET", 3, NULL, 0));
    policy_free(p);
}

static void test_policy_matches_method_and_glob(void **state)
{
    struct policy *p;

    assert_int_equal(policy_new(&p), 0);
    assert_int_equal(policy_add_rule(p, "GET /v1/items/*"), 0);
    assert_int_equal(policy_add_rule(p, "POST /v1/orders"), 0);
    assert_int_equal(policy_rule_count(p), 2);
    assert_true(allows(p, "GET", "/v1/items/42"));
    assert_true(allows(p, "POST", "/v1/orders"));
    assert_false(allows(p, "POST", "/v1/items/42"));
    assert_false(allows(p, "GET", "/v1/orders"));
    assert_false(allows(p, "POST", "/v1/orders/1"));
    assert_false(allows(p, "GET", "/v1/items"));
    policy_free(p);
}

static void test_policy_star_in_a_glob_spans_slashes(void **state)
{
    struct policy *p;

    assert_int_equal(policy_new(&p), 0);
    assert_int_equal(policy_add_rule(p, "GET /v1/*/detail"), 0);
    assert_true(allows(p, "GET", "/v1/a/b/c/detail"));
    assert_true(allows(p, "GET", "/v1/.hidden/detail"));
    assert_false(allows(p, "GET", "/v2/a/detail"));
    policy_free(p);
}

static void test_policy_supports_fnmatch_classes_and_question_marks(void **state)
{
    struct policy *p;

    assert_int_equal(policy_new(&p), 0);
    assert_int_equal(policy_add_rule(p, "GET /v[12]/item?"), 0);
    assert_true(allows(p, "GET", "/v1/items"));
    assert_true(allows(p, "GET", "/v2/item7"));
    assert_false(allows(p, "GET", "/v3/items"));
    assert_false(allows(p, "GET", "/v1/item"));
    policy_free(p);
}

static void test_policy_star_method_matches_any_method(void **state)
{
    struct policy *p;

    assert_int_equal(policy_new(&p), 0);
    assert_int_equal(policy_add_rule(p, "* /public/*"), 0);
    assert_true(allows(p, "GET", "/public/x"));
    assert_true(allows(p, "PATCH", "/public/x"));
    assert_true(allows(p, "X-CUSTOM", "/public/x"));
    assert_false(allows(p, "GET", "/private/x"));
    policy_free(p);
}

static void test_policy_methods_are_case_sensitive(void **state)
{
    struct policy *p;

    assert_int_equal(policy_new(&p), 0);
    assert_int_equal(policy_add_rule(p, "GET /x"), 0);
    assert_false(allows(p, "get", "/x"));
    assert_false(allows(p, "GETX", "/x"));
    assert_false(allows(p, "GE", "/x"));
    assert_true(allows(p, "GET", "/x"));
    policy_free(p);
}

static void test_policy_reads_views_that_are_not_nul_terminated(void **state)
{
    struct policy *p;
    const char req[] = "GETTER /v1/itemsXYZ";

    assert_int_equal(policy_new(&p), 0);
    assert_int_equal(policy_add_rule(p, "GET /v1/items"), 0);
    assert_true(policy_allows(p, req, 3, req + 7, 9));
    assert_false(policy_allows(p, req, 6, req + 7, 9));
    assert_false(policy_allows(p, req, 3, req + 7, 10));
    policy_free(p);
}

static void test_policy_refuses_a_path_with_a_nul(void **state)
{
    struct policy *p;

    assert_int_equal(policy_new(&p), 0);
    assert_int_equal(policy_add_rule(p, "GET /a*"), 0);
    assert_false(policy_allows(p, "GET", 3, "/a\0b", 4));
    policy_free(p);
}

static void test_policy_matches_paths_longer_than_the_stack_copy(void **state)
{
    struct policy *p;
    size_t len = 5000;
    char *path = malloc(len);

    assert_non_null(path);
    memset(path, 'a', len);
    path[0] = '/';
    assert_int_equal(policy_new(&p), 0);
    assert_int_equal(policy_add_rule(p, "GET /a*"), 0);
    assert_true(policy_allows(p, "GET", 3, path, len));
    path[len - 1] = 'b';
    assert_int_equal(policy_add_rule(p, "GET /b*"), 0);
    assert_true(policy_allows(p, "GET", 3, path, len));
    path[1] = 'c';
    assert_false(policy_allows(p, "GET", 3, path, len));
    policy_free(p);
    free(path);
}

static void test_policy_rejects_malformed_rules(void **state)
{
    struct policy *p;
    const char *bad[] = {
        "",         "GET",     "GET ",     " /x",       "GET  /x",       "GET\t/x", "GET x",
        "GET /a b", "GE(T /x", "GET /x\n", "GET /\x7f", "GET /\xc3\xa9", "G@T /x",  "GET */x",
    };

    assert_int_equal(policy_new(&p), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(policy_add_rule(p, bad[i]), ERR_INVALID);
    assert_int_equal(policy_add_rule(p, NULL), ERR_INVALID);
    assert_int_equal(policy_rule_count(p), 0);
    assert_true(allows(p, "GET", "/x"));
    policy_free(p);
}

static void test_policy_refuses_rules_past_its_limits(void **state)
{
    struct policy *p;
    char *rule = malloc(POLICY_RULE_MAX + 2);

    assert_non_null(rule);
    memcpy(rule, "GET /", 5);
    memset(rule + 5, 'a', POLICY_RULE_MAX - 5);
    rule[POLICY_RULE_MAX] = '\0';
    assert_int_equal(policy_new(&p), 0);
    assert_int_equal(policy_add_rule(p, rule), 0);
    rule[POLICY_RULE_MAX] = 'a';
    rule[POLICY_RULE_MAX + 1] = '\0';
    assert_int_equal(policy_add_rule(p, rule), ERR_TOO_LARGE);
    for (size_t i = 1; i < POLICY_MAX_RULES; i++)
        assert_int_equal(policy_add_rule(p, "GET /x"), 0);
    assert_int_equal(policy_add_rule(p, "GET /y"), ERR_TOO_LARGE);
    assert_int_equal(policy_rule_count(p), POLICY_MAX_RULES);
    policy_free(p);
    free(rule);
}

/* True if a request with the one header name (NULL: none) and the query (NULL: none)
 * overrides its method. */
static bool overrides(const char *header, const char *query)
{
    struct http1_header h[2] = {
        {{"Accept", 6}, {"*/*", 3}},
        {{header, header != NULL ? strlen(header) : 0}, {"DELETE", 6}},
    };

    return policy_overrides_method(h, header != NULL ? 2 : 1, query,
                                   query != NULL ? strlen(query) : 0);
}

static void test_policy_sees_method_override_headers_in_any_case(void **state)
{
    const char *yes[] = {
        "X-HTTP-Method-Override", "x-http-method-override", "X-HTTP-METHOD-OVERRIDE",
        "X-Http-Method",          "x-http-method",          "X-Method-Override",
        "x-method-override",      "X_HTTP_Method_Override", "x_method_override",
        "X-HTTP_Method",
    };
    const char *no[] = {
        "X-HTTP-Method-Overrides", "X-HTTP-Methods", "X-Method", "HTTP-Method-Override",
        "X-HTTP-Method-Override ", "Method",         "X-Override", "",
    };

    assert_false(overrides(NULL, NULL));
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        assert_true(overrides(yes[i], NULL));
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        assert_false(overrides(no[i], NULL));
}

static void test_policy_sees_a_method_query_parameter_however_it_is_written(void **state)
{
    const char *yes[] = {
        "_method=DELETE", "a=1&_method=DELETE", "_method", "_method=", "a=1;_method=PUT",
        "_METHOD=DELETE", "_Method=x", "%5Fmethod=DELETE", "%5fmethod=x", "_%6Dethod=x",
        "%5F%6D%65%74%68%6F%64=x", "%255Fmethod=x", "%25%35%46method=x", "%25%35fmethod=x",
        "_method[]=DELETE", "_method[a]=x", ".method=x", "%2Emethod=x",
        "[method=x", "+_method=x", "%20%20_method=x", "x&&_method=GET&y", "a=_method&_method",
    };
    const char *no[] = {
        "", "method=DELETE", "__method=x", "_methods=x", "x_method=x", "a=_method",
        "_method%3DDELETE", "_meth=x", "_metho", "%5F", "%", "%5", "%255", "%25%35",
        "_method_=x", "_+method=x", "_method]=x", "+method=x", "%20method=x",
    };

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (!overrides(NULL, yes[i]))
            fail_msg("not seen as an override: ?%s", yes[i]);
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        if (overrides(NULL, no[i]))
            fail_msg("seen as an override: ?%s", no[i]);
    }
}

static void test_policy_reads_a_query_view_that_is_not_nul_terminated(void **state)
{
    const char q[] = "a=1&_methodX";

    assert_true(policy_overrides_method(NULL, 0, q, 11));
    assert_false(policy_overrides_method(NULL, 0, q, 12));
    assert_false(policy_overrides_method(NULL, 0, q, 10));
    /* A second escape cut by the view's end is read as literal bytes. */
    assert_false(policy_overrides_method(NULL, 0, "%255Fmethod", 4));
    assert_false(policy_overrides_method(NULL, 0, NULL, 0));
}

static void test_policy_free_accepts_null(void **state)
{
    policy_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_without_rules_allows_everything),
        cmocka_unit_test(test_policy_matches_method_and_glob),
        cmocka_unit_test(test_policy_star_in_a_glob_spans_slashes),
        cmocka_unit_test(test_policy_supports_fnmatch_classes_and_question_marks),
        cmocka_unit_test(test_policy_star_method_matches_any_method),
        cmocka_unit_test(test_policy_methods_are_case_sensitive),
        cmocka_unit_test(test_policy_reads_views_that_are_not_nul_terminated),
        cmocka_unit_test(test_policy_refuses_a_path_with_a_nul),
        cmocka_unit_test(test_policy_matches_paths_longer_than_the_stack_copy),
        cmocka_unit_test(test_policy_rejects_malformed_rules),
        cmocka_unit_test(test_policy_refuses_rules_past_its_limits),
        cmocka_unit_test(test_policy_sees_method_override_headers_in_any_case),
        cmocka_unit_test(test_policy_sees_a_method_query_parameter_however_it_is_written),
        cmocka_unit_test(test_policy_reads_a_query_view_that_is_not_nul_terminated),
        cmocka_unit_test(test_policy_free_accepts_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
