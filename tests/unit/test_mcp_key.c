/*
 * Unit tests for src/runner/mcp_key.c: the MCP connection key, SHA-256 of the server
 * config's canonical form (RUNNER-OPS.md 9.4). Configs are read with opargs_parse, as the
 * runner reads them, so key order and case in the JSON are exercised too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp_key.h"
#include "opargs.h"

/* The key of the server config in text (an MCPServerConfig object) as 64 hex digits. */
static void key_of(const char *text, char hex[2 * MCP_KEY_LEN + 1])
{
    struct mcp_list_tools_args a;
    uint8_t key[MCP_KEY_LEN];
    json_error_t je;
    json_t *args, *server = json_loads(text, 0, &je);
    char err[256];
    int r;

    assert_non_null(server);
    args = json_pack("{so}", "server", server);
    assert_non_null(args);
    assert_int_equal(opargs_parse(&opargs_mcp_list_tools, args, &a, err, sizeof(err)), 0);
    json_decref(args);
    r = mcp_key_compute(&a.server, key);
    opargs_free(&opargs_mcp_list_tools, &a);
    assert_int_equal(r, 0);
    mcp_key_hex(key, hex);
}

static void assert_same_key(const char *a, const char *b)
{
    char ka[2 * MCP_KEY_LEN + 1], kb[2 * MCP_KEY_LEN + 1];

    key_of(a, ka);
    key_of(b, kb);
    if (strcmp(ka, kb) != 0)
        fail_msg("different keys for\n  %s\n  %s", a, b);
}

/*
 * Pinned vectors, computed apart from this code with Python 3:
 *
 *   import json, hashlib
 *   s = json.dumps(cfg, sort_keys=True, separators=(',', ':'), ensure_ascii=False)
 *   hashlib.sha256(s.encode()).hexdigest()
 *
 * with cfg the config below written as a dict with every member (tls_skip_verify False,
 * url "", headers {}), and then all members empty ("" / [] / {} / False).
 */
static void test_the_key_is_sha256_of_the_canonical_form(void **state)
{
    char k[2 * MCP_KEY_LEN + 1];

    key_of("{\"name\": \"gh\", \"transport\": \"stdio\", \"command\": \"npx\", \"args\": [\"-y\", "
           "\"@modelcontextprotocol/server-everything\"], \"env\": {\"TOKEN\": \"t\\\"q\\\\\", "
           "\"A\": \"line\\nnext\\u0001\\u00e9\"}, \"dynamic_headers\": {\"Authorization\": "
           "\"Bearer u\"}}", k);
    assert_string_equal(k, "f281ec9c46ba5418037041f482594853ffd73284afa67615528469af746a8b11");
    key_of("{}", k);
    assert_string_equal(k, "7a39e83654cdb9882a45dbc6231296a1849b7260672ea878c290bd458ab0a021");
    /* Every control byte, DEL, a 4-byte and a U+2028 character, '/' and '<' (written as
     * they are), and map keys whose byte order is not their case-folded order; in Python:
     * args [''.join(map(chr, range(1, 32))) + '\x7f', '\U0001F600 \u2028 /</'], headers
     * {'z': '1', '\u00e9': '2', 'Z': '3', 'a': '4', '': '5'}, transport 'http', name 'n',
     * url 'https://h/mcp?a=1&b=2', tls_skip_verify True. */
    key_of("{\"name\": \"n\", \"transport\": \"http\", \"args\": [\"\\u0001\\u0002\\u0003\\u0004"
           "\\u0005\\u0006\\u0007\\u0008\\u0009\\u000a\\u000b\\u000c\\u000d\\u000e\\u000f\\u0010"
           "\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c"
           "\\u001d\\u001e\\u001f\\u007f\", \"\\ud83d\\ude00 \\u2028 /</\"], \"url\": "
           "\"https://h/mcp?a=1&b=2\", \"headers\": {\"z\": \"1\", \"\\u00e9\": \"2\", "
           "\"Z\": \"3\", \"a\": \"4\", \"\": \"5\"}, \"tls_skip_verify\": true}", k);
    assert_string_equal(k, "bff4690f4ac56d2d75618355bf59530c8825348281c56ba92c13349acfbb4713");
}

#define BASE                                                                                   \
    "\"name\": \"gh\", \"transport\": \"sse\", \"command\": \"npx\", \"args\": [\"-y\", \"s\"], "  \
    "\"env\": {\"A\": \"1\", \"B\": \"2\"}, \"url\": \"https://h/mcp\", "                       \
    "\"headers\": {\"X-Team\": \"t\"}, \"dynamic_headers\": {\"Authorization\": \"Bearer u\"}"

static void test_equal_configs_get_equal_keys_whatever_the_order_and_case_of_keys(void **state)
{
    assert_same_key("{" BASE "}",
                    "{\"Dynamic_Headers\": {\"Authorization\": \"Bearer u\"}, \"URL\": "
                    "\"https://h/mcp\", \"ENV\": {\"B\": \"2\", \"A\": \"1\"}, \"headers\": "
                    "{\"X-Team\": \"t\"}, \"Args\": [\"-y\", \"s\"], \"Command\": \"npx\", "
                    "\"TRANSPORT\": \"sse\", \"Name\": \"gh\", \"tls_skip_verify\": false}");
    /* merged from two keys folding to env, and a map key given twice: the same Go value */
    assert_same_key("{" BASE "}", "{" BASE ", \"Env\": {\"B\": \"9\"}, \"ENV\": {\"B\": \"2\"}}");
    /* unknown members change nothing: Go drops them too */
    assert_same_key("{" BASE "}", "{" BASE ", \"timeout\": 5, \"extra\": {\"a\": 1}}");
}

static void test_absent_and_empty_members_get_the_same_key(void **state)
{
    assert_same_key("{}", "{\"name\": \"\", \"transport\": \"\", \"command\": \"\", \"args\": [], "
                          "\"env\": {}, \"url\": \"\", \"headers\": {}, \"dynamic_headers\": {}, "
                          "\"tls_skip_verify\": false}");
    assert_same_key("{\"env\": {}}", "{\"env\": null}");
    assert_same_key("{\"headers\": {\"a\": \"1\"}, \"headers\": null}", "{}");
    /* a null map value is "", a null list element too */
    assert_same_key("{\"env\": {\"A\": null}, \"args\": [null]}",
                    "{\"env\": {\"A\": \"\"}, \"args\": [\"\"]}");
}

static void test_any_single_change_gives_a_different_key(void **state)
{
    static const char *const variants[] = {
        "{" BASE "}",
        "{" BASE ", \"name\": \"gh2\"}",
        "{" BASE ", \"transport\": \"http\"}",
        "{" BASE ", \"command\": \"npx2\"}",
        "{" BASE ", \"args\": [\"-y\", \"t\"]}",
        "{" BASE ", \"args\": [\"-y\", \"s\", \"\"]}",
        "{" BASE ", \"args\": [\"-y s\"]}",
        "{" BASE ", \"args\": [\"s\", \"-y\"]}",
        "{" BASE ", \"env\": {\"A\": \"1\", \"B\": \"2\", \"C\": \"3\"}}",
        "{" BASE ", \"env\": {\"A\": \"1\", \"B\": \"2\", \"C\": \"\"}}",
        "{" BASE ", \"env\": {\"A\": \"1\", \"B\": \"3\"}}",
        "{" BASE ", \"env\": {\"A\": \"1\", \"b\": \"2\"}}",
        "{" BASE ", \"env\": {\"A\": \"1\"}}",
        "{" BASE ", \"url\": \"https://h/mcp/\"}",
        "{" BASE ", \"headers\": {\"X-Team\": \"u\"}}",
        "{" BASE ", \"headers\": {}}",
        "{" BASE ", \"headers\": {\"X-Team\": \"t\", \"Authorization\": \"Bearer u\"}, "
        "\"dynamic_headers\": {}}",
        "{" BASE ", \"dynamic_headers\": {\"Authorization\": \"Bearer v\"}}",
        "{" BASE ", \"dynamic_headers\": {\"authorization\": \"Bearer u\"}}",
        "{" BASE ", \"dynamic_headers\": {\"Authorization\": \"Bearer u\", \"X\": \"\"}}",
        "{" BASE ", \"tls_skip_verify\": true}",
        /* values that a naive concatenation would confuse */
        "{" BASE ", \"env\": {\"A\": \"1\\\",\\\"B\\\":\\\"2\"}}",
        "{" BASE ", \"name\": \"gh\\\"\"}",
    };
    enum { N = sizeof(variants) / sizeof(variants[0]) };
    char keys[N][2 * MCP_KEY_LEN + 1];

    for (size_t i = 0; i < N; i++) {
        key_of(variants[i], keys[i]);
        for (size_t j = 0; j < i; j++)
            if (strcmp(keys[i], keys[j]) == 0)
                fail_msg("same key for\n  %s\n  %s", variants[i], variants[j]);
    }
}

static void test_a_map_holding_a_key_twice_counts_the_later(void **state)
{
    char *keys[] = {"a", "b", "a"}, *values[] = {"1", "2", "3"};
    char *keys1[] = {"b", "a"}, *values1[] = {"2", "3"};
    struct mcp_server_args twice = {0}, once = {0};
    uint8_t k1[MCP_KEY_LEN], k2[MCP_KEY_LEN];

    twice.env = (struct opargs_map){keys, values, 3};
    once.env = (struct opargs_map){keys1, values1, 2};
    assert_int_equal(mcp_key_compute(&twice, k1), 0);
    assert_int_equal(mcp_key_compute(&once, k2), 0);
    assert_memory_equal(k1, k2, MCP_KEY_LEN);
}

static void test_hex_is_lower_case_and_terminated(void **state)
{
    uint8_t key[MCP_KEY_LEN];
    char hex[2 * MCP_KEY_LEN + 1];

    for (size_t i = 0; i < MCP_KEY_LEN; i++)
        key[i] = (uint8_t)(i * 9 + 0xa0);
    memset(hex, 'x', sizeof(hex));
    mcp_key_hex(key, hex);
    assert_int_equal(strlen(hex), 2 * MCP_KEY_LEN);
    assert_memory_equal(hex, "a0a9b2bbc4cdd6dfe8f1fa030c151e27", 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_key_is_sha256_of_the_canonical_form),
        cmocka_unit_test(test_equal_configs_get_equal_keys_whatever_the_order_and_case_of_keys),
        cmocka_unit_test(test_absent_and_empty_members_get_the_same_key),
        cmocka_unit_test(test_any_single_change_gives_a_different_key),
        cmocka_unit_test(test_a_map_holding_a_key_twice_counts_the_later),
        cmocka_unit_test(test_hex_is_lower_case_and_terminated),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
