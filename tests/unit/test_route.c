/*
 * Unit tests for src/broker/route.c: a route as --route writes it, and the route a Host
 * names (issue 21).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "policy.h"
#include "route.h"

static void test_route_names_are_lower_case_dns_labels(void **state)
{
    static const char *const good[] = {"github", "a", "grafana-2", "x1", "xn--80ak6aa92e"};
    static const char *const bad[] = {"", "GitHub", "-a", "a-", "a_b", "a.b", "a b", "é",
                                      "0123456789012345678901234567890123456789012345678901234567890123"};

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(route_name_valid(good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(route_name_valid(bad[i], strlen(bad[i])));
    /* 63 bytes is the most a DNS label holds. */
    assert_true(route_name_valid("012345678901234567890123456789012345678901234567890123456789012",
                                 63));
}

static void test_route_env_names_exclude_the_brokers_and_the_loaders(void **state)
{
    assert_true(route_env_valid("GITHUB_BASE_URL"));
    assert_true(route_env_valid("_X1"));
    assert_false(route_env_valid("1X"));
    assert_false(route_env_valid("github_url"));
    assert_false(route_env_valid("FLASHDUTY_CRED_FD"));
    assert_false(route_env_valid("FLASHDUTY_APP_KEY"));
    assert_false(route_env_valid("LD_PRELOAD"));
    assert_false(route_env_valid(""));
}

static void test_route_spec_with_every_option(void **state)
{
    struct route_spec s;
    char why[256] = "";

    assert_int_equal(route_spec_parse("github=https://api.github.com,key-file=/etc/gh.key,"
                                      "inject=bearer,allow=GET /repos/*;POST /graphql,"
                                      "env=GH_API",
                                      &s, why, sizeof(why)),
                     0);
    assert_string_equal(s.name, "github");
    assert_string_equal(s.url, "https://api.github.com");
    assert_int_equal(s.key_kind, ROUTE_KEY_FILE);
    assert_string_equal(s.key_ref, "/etc/gh.key");
    assert_string_equal(s.inject, "bearer");
    assert_string_equal(s.allow, "GET /repos/*;POST /graphql");
    assert_string_equal(s.env, "GH_API");
    route_spec_free(&s);
}

static void test_route_spec_defaults_and_commas_in_values(void **state)
{
    struct route_spec s;
    char why[256] = "";

    /* A comma that starts no known option stays in the URL, and in a glob. */
    assert_int_equal(route_spec_parse("my-api=https://h/a,b,key-env=MY_TOKEN,allow=GET /x,y",
                                      &s, why, sizeof(why)),
                     0);
    assert_string_equal(s.url, "https://h/a,b");
    assert_int_equal(s.key_kind, ROUTE_KEY_ENV);
    assert_string_equal(s.key_ref, "MY_TOKEN");
    assert_string_equal(s.allow, "GET /x,y");
    assert_null(s.inject);
    assert_string_equal(s.env, "MY_API_BASE_URL");
    route_spec_free(&s);

    assert_int_equal(route_spec_parse("grafana=https://g.internal", &s, why, sizeof(why)), 0);
    assert_int_equal(s.key_kind, ROUTE_KEY_NONE);
    assert_string_equal(s.env, "GRAFANA_BASE_URL");
    route_spec_free(&s);
}

/* Each malformed spec is refused with its reason; the reason never repeats the URL (it
 * could carry credentials a user put there by mistake). */
static void test_route_spec_refusals_say_why(void **state)
{
    static const struct {
        const char *spec, *why;
    } cases[] = {
        {"github", "NAME=URL"},
        {"GitHub=https://h", "route name"},
        {"=https://h", "route name"},
        {"github=", "no upstream URL"},
        {"github=,key-fd=4", "no upstream URL"},
        {"github=https://h,key-fd=4,key-file=/k", "one key source"},
        {"github=https://h,key-fd=four", "not a number"},
        {"github=https://h,inject=bearer,inject=header:X", "given twice"},
        {"github=https://h,env=LD_PRELOAD", "env must name"},
        {"github=https://h,env=lower", "env must name"},
        {"github=https://h,allow=", "is empty"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct route_spec s;
        char why[256] = "";

        assert_int_equal(route_spec_parse(cases[i].spec, &s, why, sizeof(why)), ERR_INVALID);
        if (strstr(why, cases[i].why) == NULL)
            fail_msg("%s: '%s' does not say '%s'", cases[i].spec, why, cases[i].why);
        assert_null(strstr(why, "https://h"));
        assert_null(s.name);
    }
}

/* A YAML mapping builds the same spec field by field; '_' may stand for '-'. */
static void test_route_spec_field_by_field(void **state)
{
    struct route_spec s;
    char why[256] = "";

    assert_int_equal(route_spec_begin(&s, "grafana", why, sizeof(why)), 0);
    assert_int_equal(route_spec_set(&s, "url", "https://g.internal/api", why, sizeof(why)), 0);
    assert_int_equal(route_spec_set(&s, "key_file", "/etc/g.key", why, sizeof(why)), 0);
    assert_int_equal(route_spec_set(&s, "allow", "GET /api/*", why, sizeof(why)), 0);
    assert_int_equal(route_spec_end(&s, why, sizeof(why)), 0);
    assert_int_equal(s.key_kind, ROUTE_KEY_FILE);
    assert_string_equal(s.key_ref, "/etc/g.key");
    assert_string_equal(s.env, "GRAFANA_BASE_URL");
    /* What the walker may hand over wrongly. */
    assert_int_equal(route_spec_set(&s, "url", "https://other", why, sizeof(why)), ERR_INVALID);
    assert_non_null(strstr(why, "given twice"));
    assert_int_equal(route_spec_set(&s, "key-env", "G", why, sizeof(why)), ERR_INVALID);
    assert_non_null(strstr(why, "one key source"));
    assert_int_equal(route_spec_set(&s, "tok\x1b[2Jen", "x", why, sizeof(why)), ERR_INVALID);
    assert_string_equal(why, "route grafana: unknown field 'tok?[2Jen'");
    route_spec_free(&s);

    assert_int_equal(route_spec_begin(&s, "bad\nname", why, sizeof(why)), ERR_INVALID);
    assert_non_null(strstr(why, "'bad?name'"));
    assert_int_equal(route_spec_begin(&s, "nourl", why, sizeof(why)), 0);
    assert_int_equal(route_spec_end(&s, why, sizeof(why)), ERR_INVALID);
    assert_non_null(strstr(why, "no upstream URL"));
    route_spec_free(&s);
}

static void test_route_policy_from_allow_rules(void **state)
{
    struct policy *p;
    char why[256] = "";

    assert_int_equal(route_policy_new(NULL, &p, why, sizeof(why)), 0);
    assert_null(p);
    assert_int_equal(route_policy_new("GET /api/*; POST /graphql", &p, why, sizeof(why)), 0);
    assert_int_equal(policy_rule_count(p), 2);
    assert_true(policy_allows(p, "GET", 3, "/api/x", 6));
    assert_true(policy_allows(p, "POST", 4, "/graphql", 8));
    assert_false(policy_allows(p, "POST", 4, "/api/x", 6));
    policy_free(p);
    assert_int_equal(route_policy_new("GET /a;;GET /b", &p, why, sizeof(why)), ERR_INVALID);
    assert_non_null(strstr(why, "empty"));
    assert_null(p);
    assert_int_equal(route_policy_new("GET /a;GET", &p, why, sizeof(why)), ERR_INVALID);
    assert_string_equal(why, "allow: 'GET' is not a 'METHOD /path-glob' rule");
    assert_int_equal(route_policy_new("GET /a;", &p, why, sizeof(why)), ERR_INVALID);
}

static void test_route_request_host_prefers_an_absolute_forms_authority(void **state)
{
    static const struct {
        const char *target, *host_hdr, *want;
    } cases[] = {
        {"/echo?q=1", "github.broker.local", "github.broker.local"},
        {"HTTP://grafana.broker.local:8080/x", "github.broker.local", "grafana.broker.local:8080"},
        {"https://a.broker.local?q", NULL, "a.broker.local"},
        {"http://b.broker.local#f", "x", "b.broker.local"},
        {"http://", "x", ""},
        {"/", NULL, ""},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *h = cases[i].host_hdr, *got;
        size_t len;

        route_request_host(cases[i].target, strlen(cases[i].target), h, h ? strlen(h) : 0, &got,
                           &len);
        assert_int_equal(len, strlen(cases[i].want));
        assert_memory_equal(got, cases[i].want, len);
    }
}

static int host(const char *h, char *name)
{
    return route_host_name(h, strlen(h), name);
}

static void test_route_host_names_a_route(void **state)
{
    char name[ROUTE_NAME_MAX + 1];

    assert_int_equal(host("github.broker.local", name), 1);
    assert_string_equal(name, "github");
    assert_int_equal(host("GitHub.Broker.LOCAL.", name), 1);
    assert_string_equal(name, "github");
    assert_int_equal(host("my-api.broker.local:8080", name), 1);
    assert_string_equal(name, "my-api");
    assert_int_equal(host("flashduty.broker.local:80", name), 1);
    assert_string_equal(name, "flashduty");
    assert_int_equal(host("xn--80ak6aa92e.broker.local", name), 1);
    assert_string_equal(name, "xn--80ak6aa92e");
}

static void test_route_host_outside_broker_local_is_the_default_routes(void **state)
{
    static const char *const others[] = {"", "api.github.com", "127.0.0.1", "127.0.0.1:9",
                                         "[::1]:80", "broker.local.example.com", "xbroker.local",
                                         "github.broker.localhost"};
    char name[ROUTE_NAME_MAX + 1];

    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        assert_int_equal(host(others[i], name), 0);
        assert_string_equal(name, "");
    }
}

static void test_route_host_under_broker_local_naming_no_route_is_refused(void **state)
{
    static const char *const bad[] = {"broker.local",
                                      ".broker.local",
                                      "a.b.broker.local",
                                      "-a.broker.local",
                                      "a_b.broker.local",
                                      "github.broker.local:",
                                      "github.broker.local:0",
                                      "github.broker.local:65536",
                                      "github.broker.local:80x",
                                      "github.broker.local..",
                                      "gith\xc3\xbc"
                                      "b.broker.local",
                                      "0123456789012345678901234567890123456789012345678901234567890123"
                                      ".broker.local"};
    char name[ROUTE_NAME_MAX + 1];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (host(bad[i], name) != -1)
            fail_msg("'%s' is not refused", bad[i]);
        assert_string_equal(name, "");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_names_are_lower_case_dns_labels),
        cmocka_unit_test(test_route_env_names_exclude_the_brokers_and_the_loaders),
        cmocka_unit_test(test_route_spec_with_every_option),
        cmocka_unit_test(test_route_spec_defaults_and_commas_in_values),
        cmocka_unit_test(test_route_spec_refusals_say_why),
        cmocka_unit_test(test_route_spec_field_by_field),
        cmocka_unit_test(test_route_policy_from_allow_rules),
        cmocka_unit_test(test_route_request_host_prefers_an_absolute_forms_authority),
        cmocka_unit_test(test_route_host_names_a_route),
        cmocka_unit_test(test_route_host_outside_broker_local_is_the_default_routes),
        cmocka_unit_test(test_route_host_under_broker_local_naming_no_route_is_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
