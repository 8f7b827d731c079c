/*
 * Unit tests for src/runner/netguard.c (and the addresses of src/runner/netaddr.c it
 * stands on): every refused range at its edges, IPv4-mapped and NAT64 addresses judged
 * by the IPv4 address they carry, allow_private, and allow_hosts' names, addresses and
 * prefixes, with the bad entries refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "err.h"
#include "netaddr.h"
#include "netguard.h"

static struct netaddr addr(const char *s)
{
    struct netaddr a;

    assert_true(netaddr_parse(s, &a));
    return a;
}

static void test_refused_ranges_at_their_edges(void **state)
{
    static const struct {
        const char *ip;
        bool refused;
    } cases[] = {
        {"0.0.0.0", true},         {"0.255.255.255", true},  {"1.0.0.0", false},
        {"9.255.255.255", false},  {"10.0.0.0", true},       {"10.255.255.255", true},
        {"11.0.0.0", false},       {"100.63.255.255", false}, {"100.64.0.0", true},
        {"100.127.255.255", true}, {"100.128.0.0", false},   {"126.255.255.255", false},
        {"127.0.0.1", true},       {"127.255.255.254", true}, {"128.0.0.0", false},
        {"169.253.255.255", false}, {"169.254.169.254", true}, {"169.255.0.0", false},
        {"172.15.255.255", false}, {"172.16.0.0", true},     {"172.31.255.255", true},
        {"172.32.0.0", false},     {"192.167.255.255", false}, {"192.168.0.1", true},
        {"192.169.0.0", false},    {"223.255.255.255", false}, {"224.0.0.1", true},
        {"239.255.255.255", true}, {"8.8.8.8", false},       {"192.0.2.2", false},
        {"::", true},              {"::1", true},            {"::2", false},
        {"fc00::1", true},         {"fdff:ffff::1", true},   {"fe00::", false},
        {"fe80::1", true},         {"febf:ffff::1", true},   {"fec0::1", true},
        {"ff02::1", true},         {"2001:db8::1", false},   {"2606:4700::1111", false},
        {"::ffff:127.0.0.1", true}, {"::ffff:169.254.169.254", true},
        {"::ffff:8.8.8.8", false}, {"64:ff9b::a9fe:a9fe", true}, /* NAT64 of 169.254.169.254 */
        {"64:ff9b::808:808", false},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct netaddr a = addr(cases[i].ip);

        if (netguard_addr_refused_range(&a) != cases[i].refused)
            fail_msg("%s: expected %s", cases[i].ip, cases[i].refused ? "refused" : "allowed");
    }
}

static void test_addresses_parse_strictly_and_print_back(void **state)
{
    static const char *const bad[] = {"", "127.1", "0177.0.0.1", "1.2.3.4.5", "256.1.1.1",
                                      "1.2.3.4 ", "::g", "[::1]", "fe80::1%eth0", "localhost"};
    char text[NETADDR_TEXT_MAX];
    struct netaddr a;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(netaddr_parse(bad[i], &a));
    a = addr("::ffff:10.0.0.1");
    netaddr_format(&a, text, sizeof(text));
    assert_string_equal(text, "10.0.0.1");
    a = addr("2001:DB8:0:0::1");
    netaddr_format(&a, text, sizeof(text));
    assert_string_equal(text, "2001:db8::1");
}

static void test_allow_private_opens_everything(void **state)
{
    struct netguard g;
    struct netaddr a = addr("169.254.169.254");
    char err[128];

    (void)state;
    assert_int_equal(netguard_init(&g, true, NULL, 0, err, sizeof(err)), 0);
    assert_true(netguard_addr_allowed(&g, &a));
    assert_true(netguard_host_open(&g, "anything"));
    netguard_free(&g);
    assert_int_equal(netguard_init(&g, false, NULL, 0, err, sizeof(err)), 0);
    assert_false(netguard_addr_allowed(&g, &a));
    assert_false(netguard_host_open(&g, "anything"));
    a = addr("93.184.216.34");
    assert_true(netguard_addr_allowed(&g, &a));
    netguard_free(&g);
}

static void test_allow_hosts_names_addresses_and_prefixes(void **state)
{
    char *hosts[] = {"Docs.Internal.", "10.0.0.0/8", "fd00::/8", "[::1]", "127.0.0.2"};
    struct netguard g;
    struct netaddr a;
    char err[128];

    (void)state;
    assert_int_equal(netguard_init(&g, false, hosts, 5, err, sizeof(err)), 0);
    assert_true(netguard_host_open(&g, "docs.internal"));
    assert_true(netguard_host_open(&g, "DOCS.INTERNAL."));
    assert_false(netguard_host_open(&g, "x.docs.internal")); /* exact names only */
    assert_false(netguard_host_open(&g, "internal"));
    a = addr("10.200.3.4");
    assert_true(netguard_addr_allowed(&g, &a));
    a = addr("::ffff:10.0.0.9");
    assert_true(netguard_addr_allowed(&g, &a));
    a = addr("fd12::1");
    assert_true(netguard_addr_allowed(&g, &a));
    a = addr("fc00::1");
    assert_false(netguard_addr_allowed(&g, &a));
    a = addr("::1");
    assert_true(netguard_addr_allowed(&g, &a));
    a = addr("127.0.0.2");
    assert_true(netguard_addr_allowed(&g, &a));
    a = addr("127.0.0.1");
    assert_false(netguard_addr_allowed(&g, &a));
    a = addr("169.254.169.254");
    assert_false(netguard_addr_allowed(&g, &a));
    /* An IP entry is an address, not a name: the URL host "127.0.0.2" is not opened to
     * every address by it. */
    assert_false(netguard_host_open(&g, "127.0.0.2"));
    netguard_free(&g);
}

static void test_bad_allow_hosts_entries_are_refused(void **state)
{
    static const char *const bad[] = {"10.0.0.0/33", "::/129", "10.0.0.0/", "/8", "a b",
                                      "host:80", "*.example.com", "", ".example.com",
                                      "10.0.0.0/8/8", "10.0.0.0/x"};
    struct netguard g;
    char err[160];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *one[] = {(char *)bad[i]};

        if (netguard_init(&g, false, one, 1, err, sizeof(err)) != ERR_INVALID)
            fail_msg("\"%s\" accepted", bad[i]);
        assert_non_null(strstr(err, "webfetch.allow_hosts"));
        netguard_free(&g);
    }
}

static void test_prefix_bits_past_the_length_are_cleared(void **state)
{
    struct netaddr_prefix p;
    struct netaddr a = addr("10.9.9.9");

    (void)state;
    assert_true(netaddr_parse_prefix("10.1.2.3/8", false, &p));
    assert_int_equal(p.bits, 96 + 8);
    assert_true(netaddr_in_prefix(&a, &p));
    assert_true(netaddr_parse_prefix("0.0.0.0/0", false, &p));
    assert_true(netaddr_in_prefix(&a, &p));
    a = addr("2001:db8::1");
    assert_false(netaddr_in_prefix(&a, &p)); /* an IPv4 prefix holds no IPv6 address */
    assert_true(netaddr_parse_prefix("172.16.0.0/12", false, &p));
    a = addr("172.31.255.255");
    assert_true(netaddr_in_prefix(&a, &p));
    a = addr("172.32.0.0");
    assert_false(netaddr_in_prefix(&a, &p));
    assert_false(netaddr_parse_prefix("10.0.0.1", false, &p));
    assert_true(netaddr_parse_prefix("10.0.0.1", true, &p));
    assert_int_equal(p.bits, 128);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_ranges_at_their_edges),
        cmocka_unit_test(test_addresses_parse_strictly_and_print_back),
        cmocka_unit_test(test_allow_private_opens_everything),
        cmocka_unit_test(test_allow_hosts_names_addresses_and_prefixes),
        cmocka_unit_test(test_bad_allow_hosts_entries_are_refused),
        cmocka_unit_test(test_prefix_bits_past_the_length_are_cleared),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
