/* Unit tests for src/broker/rewrite.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
#include "err.h"
#include "rewrite.h"

#define KEY "sk-123"

/* Rewrites target against base with inject spec and key; returns the URL (static) or NULL on
 * error, with the code in *rc. */
static const char *rewrite_with(const char *base_url, const char *spec, const char *target,
                                const char *key, unsigned flags, int *rc)
{
    static char result[4096];
    struct upstream_base base;
    struct inject inj;
    struct buf *out = buf_new(4096, BUF_WIPE);
    int r;

    assert_non_null(out);
    assert_int_equal(upstream_base_parse(base_url, &base), 0);
    assert_int_equal(inject_parse(spec, &inj), 0);
    r = rewrite_url(out, &base, target, strlen(target), &inj, (const uint8_t *)key, strlen(key),
                    flags);
    if (rc != NULL)
        *rc = r;
    if (r != 0) {
        assert_int_equal(buf_len(out), 0);
        buf_free(out);
        return NULL;
    }
    assert_true(buf_len(out) < sizeof(result));
    memcpy(result, buf_ptr(out), buf_len(out));
    result[buf_len(out)] = '\0';
    buf_free(out);
    return result;
}

/* rewrite_target_parts' path; the query goes to q. */
static int target_path(const char *t, size_t n, const char **path, size_t *len)
{
    const char *q;
    size_t qlen;

    return rewrite_target_parts(t, n, path, len, &q, &qlen);
}

/* rewrite_target_parts' query; the path goes to p. */
static int target_query(const char *t, size_t n, const char **query, size_t *len)
{
    const char *p;
    size_t plen;

    return rewrite_target_parts(t, n, &p, &plen, query, len);
}

static const char *rewrite_default(const char *target)
{
    return rewrite_with("https://api.example.com", NULL, target, KEY, 0, NULL);
}

static int rewrite_error(const char *target)
{
    int rc = 0;

    assert_null(rewrite_with("https://api.example.com", NULL, target, KEY, 0, &rc));
    return rc;
}

static void test_rewrite_appends_key_to_target_without_query(void **state)
{
    assert_string_equal(rewrite_default("/v1/items"),
                        "https://api.example.com/v1/items?app_key=sk-123");
}

static void test_rewrite_removes_every_copy_of_the_sentinel_and_appends_one(void **state)
{
    assert_string_equal(rewrite_default("/p?app_key=X&a=1&app_key=Y&b=2&app_key"),
                        "https://api.example.com/p?a=1&b=2&app_key=sk-123");
}

static void test_rewrite_removes_percent_encoded_sentinel_names(void **state)
{
    assert_string_equal(rewrite_default("/p?app%5Fkey=X&app%5fkey=Y&%61pp_key=Z&c=3"),
                        "https://api.example.com/p?c=3&app_key=sk-123");
}

static void test_rewrite_keeps_names_that_only_look_like_the_sentinel(void **state)
{
    /* '+' decodes to a space, so "app+key" is "app key"; a malformed escape stays literal. */
    assert_string_equal(rewrite_default("/p?app+key=1&app_keys=2&xapp_key=3&app_ke%=4"),
                        "https://api.example.com/p?app+key=1&app_keys=2&xapp_key=3&app_ke%=4"
                        "&app_key=sk-123");
}

static void test_rewrite_decodes_plus_and_escapes_in_names_before_comparing(void **state)
{
    assert_string_equal(
        rewrite_with("https://h", "query:a_b", "/p?a%5Fb=1&a+b=2&a%5F%62=3", KEY, 0, NULL),
        "https://h/p?a+b=2&a_b=sk-123");
}

static void test_rewrite_removes_sentinel_with_no_or_empty_value(void **state)
{
    assert_string_equal(rewrite_default("/p?app_key&x=1&app_key="),
                        "https://api.example.com/p?x=1&app_key=sk-123");
}

static void test_rewrite_handles_a_bare_question_mark(void **state)
{
    assert_string_equal(rewrite_default("/p?"), "https://api.example.com/p?app_key=sk-123");
}

static void test_rewrite_drops_the_fragment(void **state)
{
    assert_string_equal(rewrite_default("/p?a=1#frag?app_key=evil"),
                        "https://api.example.com/p?a=1&app_key=sk-123");
    assert_string_equal(rewrite_default("/p#x"), "https://api.example.com/p?app_key=sk-123");
}

static void test_rewrite_keeps_other_parameters_raw_and_in_order(void **state)
{
    assert_string_equal(rewrite_default("/s?q=a%20b&x=%2F&a=&flag&z=1+2&%7e=~"),
                        "https://api.example.com/s?q=a%20b&x=%2F&a=&flag&z=1+2&%7e=~"
                        "&app_key=sk-123");
}

static void test_rewrite_drops_empty_query_pieces(void **state)
{
    assert_string_equal(rewrite_default("/p?&&a=1&&&b=2&"),
                        "https://api.example.com/p?a=1&b=2&app_key=sk-123");
}

static void test_rewrite_ignores_the_authority_of_an_absolute_form_target(void **state)
{
    assert_string_equal(rewrite_default("http://evil.example:8080/v1/x?a=1"),
                        "https://api.example.com/v1/x?a=1&app_key=sk-123");
    assert_string_equal(rewrite_default("HTTPS://user@other/y"),
                        "https://api.example.com/y?app_key=sk-123");
    assert_string_equal(rewrite_default("http://other?a=1"),
                        "https://api.example.com/?a=1&app_key=sk-123");
}

static void test_rewrite_joins_the_base_path(void **state)
{
    assert_string_equal(rewrite_with("https://h/v1", NULL, "/a", KEY, 0, NULL),
                        "https://h/v1/a?app_key=sk-123");
    assert_string_equal(rewrite_with("https://h/v1/", NULL, "/a/", KEY, 0, NULL),
                        "https://h/v1/a/?app_key=sk-123");
    assert_string_equal(rewrite_with("http://h:8080/", NULL, "/", KEY, 0, NULL),
                        "http://h:8080/?app_key=sk-123");
}

static void test_rewrite_percent_encodes_the_key(void **state)
{
    assert_string_equal(rewrite_with("https://h", NULL, "/p", "a&b=c+d%e f/g~h.i_j-k", 0, NULL),
                        "https://h/p?app_key=a%26b%3Dc%2Bd%25e%20f%2Fg~h.i_j-k");
    assert_string_equal(rewrite_with("https://h", NULL, "/p", "\xc3\xa9", 0, NULL),
                        "https://h/p?app_key=%C3%A9");
}

/* The broker copies a key this says yes to instead of encoding it: yes must mean that
 * encoding would change nothing. */
static void test_rewrite_key_is_unreserved_only_when_encoding_keeps_it(void **state)
{
    static const char *const keys[] = {"sk-123", "a.b_c~d-E9", "", "a b", "a+b", "a%41",
                                       "a/b", "a=b", "\xc3\xa9", "a\x7f"};

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *k = keys[i];
        char encoded[256];

        snprintf(encoded, sizeof(encoded), "%s", rewrite_with("https://h", NULL, "/p", k, 0, NULL));
        assert_int_equal(
            rewrite_key_is_unreserved((const uint8_t *)k, strlen(k)),
            strcmp(encoded, rewrite_with("https://h", NULL, "/p", k, REWRITE_KEY_VERBATIM, NULL)) ==
                0);
    }
    assert_true(rewrite_key_is_unreserved((const uint8_t *)"sk-123", 6));
    assert_false(rewrite_key_is_unreserved((const uint8_t *)"sk 123", 6));
    /* Every byte on its own, in a key of a plain byte either side. */
    for (int b = 1; b < 256; b++) {
        char k[4] = {'k', (char)b, 'k', '\0'}, encoded[64];

        snprintf(encoded, sizeof(encoded), "%s", rewrite_with("https://h", NULL, "/p", k, 0, NULL));
        if (rewrite_key_is_unreserved((const uint8_t *)k, 3) !=
            (strcmp(encoded, rewrite_with("https://h", NULL, "/p", k, REWRITE_KEY_VERBATIM,
                                          NULL)) == 0))
            fail_msg("byte 0x%02x: unreserved and encoding disagree", b);
    }
}

static void test_rewrite_appends_the_key_verbatim_when_asked(void **state)
{
    assert_string_equal(
        rewrite_with("https://h", NULL, "/p?x=1", "a&b c", REWRITE_KEY_VERBATIM, NULL),
        "https://h/p?x=1&app_key=a&b c");
}

static void test_rewrite_uses_a_custom_query_name(void **state)
{
    assert_string_equal(
        rewrite_with("https://h", "query:token", "/p?token=1&app_key=2", KEY, 0, NULL),
        "https://h/p?app_key=2&token=sk-123");
}

static void test_rewrite_rejects_dot_segments(void **state)
{
    const char *bad[] = {
        "/..",      "/../x",     "/a/../b",   "/a/./b",        "/a/.",      "/a/%2e%2E/b",
        "/a/%2E/b", "/a/.%2e/b", "/a/..;x/b", "/a/%2e%2e;/b",  "/a%2fb",    "/a%2F..",
        "/a/%5cb",  "/a%5C",     "/a\\b",     "http://h/../x", "/p/..?a=1",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(rewrite_error(bad[i]), ERR_HTTP_BAD_REQUEST);
}

/* What an upstream that decodes twice, or decodes UTF-8 without checking for overlong
 * forms, would read as ".", "/" or "\\": refused as the single-encoded forms are. */
static void test_rewrite_rejects_double_encoded_and_overlong_dots_and_slashes(void **state)
{
    const char *bad[] = {
        /* %25 then what a second decoding reads as an escape */
        "/a/%252e%252e/b", "/a/%252E%252E", "/a/%252e/b", "/a%252fb", "/a%252F..", "/a%255cb",
        "/a/%25252e%25252e/b", "/a/%25%32%65%25%32%65/b", "/a/%25u002e%25u002e/b", "/a/%2541",
        "/a/%25%25",
        /* overlong UTF-8 of '.', '/' and '\\', and the lead bytes only such forms use */
        "/a/%c0%ae%c0%ae/b", "/a/%C0%AE/b", "/a%c0%afb", "/a%c1%9cb", "/a%c0%2e", "/a%c1",
        "/a/%e0%80%ae%e0%80%ae/b", "/a%e0%80%afb", "/a%e0%9f%bf", "/a%e0.", "/a%e0",
        "/a/%f0%80%80%ae/b", "/a%f0%80%80%af", "/a%f0%8f%bf%bf", "/a%f0", "/a%f0x",
        "/a/%f8%80%80%80%ae", "/a/%fc%80%80%80%80%ae", "/a%f5%80%80%80", "/a%ff",
        "/a/%25c0%25ae/b", "/p/%252e%252e?a=1", "http://h/%252e%252e/x",
        /* a dot segment before an encoded ';' */
        "/a/..%3bx/b", "/a/.%3B/b", "/a/%2e%2e%3b", "/a/..%253b/b",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *path;
        size_t len;

        assert_int_equal(rewrite_error(bad[i]), ERR_HTTP_BAD_REQUEST);
        assert_int_equal(target_path(bad[i], strlen(bad[i]), &path, &len),
                         ERR_HTTP_BAD_REQUEST);
    }
}

/* What stays accepted: a '%' as text, and UTF-8 that is not overlong, E0 and F0 included. */
static void test_rewrite_accepts_percent_text_and_valid_utf8(void **state)
{
    const char *good[] = {
        "/a/100%25", "/a/50%25off", "/a/%25-x", "/a/%25z", "/a/%2e%25", "/caf%c3%a9",
        "/%e0%a0%80", "/%e0%bf%bf", "/%e2%82%ac", "/%ed%9f%bf", "/%f0%90%80%80",
        "/%f0%9f%98%80", "/%f4%8f%bf%bf", "/%c2%ae", "/%80", "/%ae%ae", "/a/...%3b/b",
        "/a/x..%3b", "/a/%3b..",
    };
    char want[256];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(want, sizeof(want), "https://api.example.com%s?app_key=sk-123", good[i]);
        assert_string_equal(rewrite_default(good[i]), want);
    }
}

static void test_rewrite_accepts_dots_inside_segments(void **state)
{
    assert_string_equal(rewrite_default("/a/.../b..c/.d/e./%2e%2e%2e"),
                        "https://api.example.com/a/.../b..c/.d/e./%2e%2e%2e?app_key=sk-123");
    assert_string_equal(rewrite_default("//a//b"), "https://api.example.com//a//b?app_key=sk-123");
}

static void test_rewrite_rejects_malformed_targets(void **state)
{
    const char *bad[] = {
        "*",         "api.example.com:443",
        "ftp://h/x", "http://",
        "http:///x", "a/b",
        "/p q",      "/p\x01",
        "/p%zz",     "/p%2",
        "/p\x80",    "http:/x",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(rewrite_error(bad[i]), ERR_HTTP_BAD_REQUEST);
    assert_int_equal(rewrite_error(""), ERR_HTTP_BAD_REQUEST);
}

static void test_rewrite_keeps_the_query_in_header_and_bearer_modes(void **state)
{
    assert_string_equal(
        rewrite_with("https://h", "header:X-Api-Key", "/p?app_key=1&&a#f", KEY, 0, NULL),
        "https://h/p?app_key=1&&a");
    assert_string_equal(rewrite_with("https://h", "bearer", "/p?", KEY, 0, NULL), "https://h/p?");
    assert_string_equal(rewrite_with("https://h", "bearer", "/p", KEY, 0, NULL), "https://h/p");
}

static void test_rewrite_fails_cleanly_when_the_buffer_is_too_small(void **state)
{
    struct upstream_base base;
    struct inject inj;
    struct buf *out = buf_new(20, BUF_WIPE);

    assert_int_equal(upstream_base_parse("https://api.example.com", &base), 0);
    assert_int_equal(inject_parse(NULL, &inj), 0);
    assert_int_equal(rewrite_url(out, &base, "/p", 2, &inj, (const uint8_t *)KEY, 6, 0),
                     ERR_TOO_LARGE);
    assert_int_equal(buf_len(out), 0);
    buf_free(out);
}

static void test_rewrite_target_path_returns_the_path_only(void **state)
{
    const char *path;
    size_t len;

    assert_int_equal(target_path("/a/b?x=1#f", 10, &path, &len), 0);
    assert_int_equal(len, 4);
    assert_memory_equal(path, "/a/b", 4);
    assert_int_equal(target_path("http://h/c#f", 12, &path, &len), 0);
    assert_int_equal(len, 2);
    assert_memory_equal(path, "/c", 2);
    assert_int_equal(target_path("http://h", 8, &path, &len), 0);
    assert_int_equal(len, 1);
    assert_memory_equal(path, "/", 1);
    assert_int_equal(target_path("/a/%2e%2e/b", 11, &path, &len), ERR_HTTP_BAD_REQUEST);
    assert_null(path);
    assert_int_equal(len, 0);
    assert_int_equal(target_path("*", 1, &path, &len), ERR_HTTP_BAD_REQUEST);
}

static void test_rewrite_target_query_returns_the_query_only(void **state)
{
    const struct {
        const char *target, *query; /* NULL: no '?' */
    } cases[] = {
        {"/a/b?x=1&_method=2#f", "x=1&_method=2"},
        {"http://h?y#f", "y"},
        {"/a?", ""},
        {"/a#?x", NULL},
    };
    const char *query;
    size_t len;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(target_query(cases[i].target, strlen(cases[i].target), &query,
                                              &len),
                         0);
        if (cases[i].query == NULL) {
            assert_null(query);
            assert_int_equal(len, 0);
        } else {
            assert_non_null(query);
            assert_int_equal(len, strlen(cases[i].query));
            assert_memory_equal(query, cases[i].query, len);
        }
    }
    assert_int_equal(target_query("/%252e?x", 8, &query, &len), ERR_HTTP_BAD_REQUEST);
    assert_null(query);
    assert_int_equal(len, 0);
}

static void test_inject_parse_accepts_the_three_modes(void **state)
{
    struct inject inj;

    assert_int_equal(inject_parse(NULL, &inj), 0);
    assert_int_equal(inj.mode, INJECT_QUERY);
    assert_string_equal(inj.name, "app_key");
    assert_int_equal(inj.name_len, 7);
    assert_int_equal(inject_parse("query:k!$'()*,;:@/?~", &inj), 0);
    assert_string_equal(inj.name, "k!$'()*,;:@/?~");
    assert_int_equal(inject_parse("header:X-Api-Key", &inj), 0);
    assert_int_equal(inj.mode, INJECT_HEADER);
    assert_string_equal(inj.name, "X-Api-Key");
    assert_int_equal(inject_parse("bearer", &inj), 0);
    assert_int_equal(inj.mode, INJECT_BEARER);
    assert_int_equal(inj.name_len, 0);
}

static void test_inject_parse_rejects_bad_specs(void **state)
{
    char longname[7 + INJECT_NAME_MAX + 2];
    struct inject inj;
    const char *bad[] = {
        "",           "query:",     "header:",     "query",
        "Bearer",     "bearer:x",   "cookie:a",    "query:a&b",
        "query:a=b",  "query:a#b",  "query:a%5f",  "query:a+b",
        "query:a b",  "query:a\t",  "query:\xc3",  "header:X Key",
        "header:X:K", "header:a/b", "header:\x7f", "Query:a",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(inject_parse(bad[i], &inj), ERR_INVALID);
        assert_int_equal(inj.name_len, 0);
    }
    memcpy(longname, "header:", 7);
    memset(longname + 7, 'a', INJECT_NAME_MAX);
    longname[7 + INJECT_NAME_MAX] = '\0';
    assert_int_equal(inject_parse(longname, &inj), 0);
    longname[7 + INJECT_NAME_MAX] = 'a';
    longname[7 + INJECT_NAME_MAX + 1] = '\0';
    assert_int_equal(inject_parse(longname, &inj), ERR_INVALID);
}

static void test_upstream_base_parse_accepts_valid_urls(void **state)
{
    struct upstream_base b;

    assert_int_equal(upstream_base_parse("HTTPS://API.Example.COM", &b), 0);
    assert_true(b.tls);
    assert_int_equal(b.port, 443);
    assert_string_equal(b.origin, "https://api.example.com");
    assert_string_equal(upstream_base_host(&b), "api.example.com");
    assert_string_equal(b.path, "");

    assert_int_equal(upstream_base_parse("https://h:443/v1/", &b), 0);
    assert_string_equal(b.origin, "https://h");
    assert_string_equal(b.path, "/v1");

    assert_int_equal(upstream_base_parse("http://127.0.0.1:8080/api/v2//", &b), 0);
    assert_false(b.tls);
    assert_int_equal(b.port, 8080);
    assert_string_equal(b.origin, "http://127.0.0.1:8080");
    assert_string_equal(upstream_base_host(&b), "127.0.0.1:8080");
    assert_string_equal(b.path, "/api/v2");

    assert_int_equal(upstream_base_parse("http://h:0080", &b), 0);
    assert_string_equal(upstream_base_host(&b), "h");

    assert_int_equal(upstream_base_parse("https://[::1]:8443/", &b), 0);
    assert_string_equal(upstream_base_host(&b), "[::1]:8443");
    assert_int_equal(upstream_base_parse("https://[2001:DB8::1]", &b), 0);
    assert_string_equal(upstream_base_host(&b), "[2001:db8::1]");
    assert_int_equal(upstream_base_parse("https://h:65535", &b), 0);
    assert_int_equal(b.port, 65535);
}

static void test_upstream_base_parse_rejects_invalid_urls(void **state)
{
    struct upstream_base b;
    const char *bad[] = {
        "",
        "h",
        "ftp://h",
        "https:/h",
        "https://",
        "https:///p",
        "https://u@h",
        "https://u:p@h/",
        "https://h?x",
        "https://h/?",
        "https://h/p?x=1",
        "https://h#f",
        "https://h/p#",
        "https://h:",
        "https://h:0",
        "https://h:65536",
        "https://h:123456",
        "https://h:8a",
        "https://h:-1",
        "https://h h",
        "https://h/a b",
        "https://h/../x",
        "https://h/a/%2e",
        "https://h/a/%252e%252e",
        "https://h/a/%c0%ae",
        "https://h/a%2fb",
        "https://[::1",
        "https://[]",
        "https://[1.2.3.4]",
        "https://[::1]x",
        "https://[fe80::1%25eth0]",
        "https://h/\x01",
        "https://h\\x",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(upstream_base_parse(bad[i], &b), ERR_BAD_URL);
        assert_int_equal(b.origin_len, 0);
    }
    assert_int_equal(upstream_base_parse(NULL, &b), ERR_BAD_URL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rewrite_appends_key_to_target_without_query),
        cmocka_unit_test(test_rewrite_key_is_unreserved_only_when_encoding_keeps_it),
        cmocka_unit_test(test_rewrite_removes_every_copy_of_the_sentinel_and_appends_one),
        cmocka_unit_test(test_rewrite_removes_percent_encoded_sentinel_names),
        cmocka_unit_test(test_rewrite_keeps_names_that_only_look_like_the_sentinel),
        cmocka_unit_test(test_rewrite_decodes_plus_and_escapes_in_names_before_comparing),
        cmocka_unit_test(test_rewrite_removes_sentinel_with_no_or_empty_value),
        cmocka_unit_test(test_rewrite_handles_a_bare_question_mark),
        cmocka_unit_test(test_rewrite_drops_the_fragment),
        cmocka_unit_test(test_rewrite_keeps_other_parameters_raw_and_in_order),
        cmocka_unit_test(test_rewrite_drops_empty_query_pieces),
        cmocka_unit_test(test_rewrite_ignores_the_authority_of_an_absolute_form_target),
        cmocka_unit_test(test_rewrite_joins_the_base_path),
        cmocka_unit_test(test_rewrite_percent_encodes_the_key),
        cmocka_unit_test(test_rewrite_appends_the_key_verbatim_when_asked),
        cmocka_unit_test(test_rewrite_uses_a_custom_query_name),
        cmocka_unit_test(test_rewrite_rejects_dot_segments),
        cmocka_unit_test(test_rewrite_rejects_double_encoded_and_overlong_dots_and_slashes),
        cmocka_unit_test(test_rewrite_accepts_percent_text_and_valid_utf8),
        cmocka_unit_test(test_rewrite_accepts_dots_inside_segments),
        cmocka_unit_test(test_rewrite_rejects_malformed_targets),
        cmocka_unit_test(test_rewrite_keeps_the_query_in_header_and_bearer_modes),
        cmocka_unit_test(test_rewrite_fails_cleanly_when_the_buffer_is_too_small),
        cmocka_unit_test(test_rewrite_target_path_returns_the_path_only),
        cmocka_unit_test(test_rewrite_target_query_returns_the_query_only),
        cmocka_unit_test(test_inject_parse_accepts_the_three_modes),
        cmocka_unit_test(test_inject_parse_rejects_bad_specs),
        cmocka_unit_test(test_upstream_base_parse_accepts_valid_urls),
        cmocka_unit_test(test_upstream_base_parse_rejects_invalid_urls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
