/*
 * fuzz_netaddr.c - IP literals and prefixes (netaddr.h) and the ranges webfetch's address
 * guard refuses (netguard_addr_refused_range, RUNNER-OPS.md 8): what stands between a page
 * an agent asks for and the host's metadata service or internal network.
 *
 * Input: [16 address bytes][prefix length byte][text]: the bytes are an address (IPv6, or
 * an IPv4-mapped one), the text a literal to parse (cut at a NUL).
 *
 * Properties:
 *   - netaddr_parse accepts the text exactly when glibc's inet_pton does for AF_INET or
 *     AF_INET6 (dotted quads without leading zeros, RFC 4291 text, no zone), and gives the
 *     same address (IPv4 as ::ffff:a.b.c.d);
 *   - an address formatted by netaddr_format parses back to itself;
 *   - "ADDR/N" from any address and length in range is a prefix that holds the address,
 *     its bits past N cleared, an IPv4 one 96 + N long; a length out of range is refused;
 *   - the refused ranges are the ones RUNNER-OPS.md 8 names, written out again here from
 *     the text (loopback, private, link-local, CGNAT, multicast, unspecified, site-local),
 *     and an IPv4-mapped address and one behind the NAT64 prefix 64:ff9b::/96 are judged
 *     as the IPv4 address they carry.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "netaddr.h"
#include "netguard.h"

static const uint8_t mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static bool is_mapped(const uint8_t b[16])
{
    return memcmp(b, mapped_prefix, 12) == 0;
}

/* The IPv4 ranges of RUNNER-OPS.md 8, a.b.c.d as a 32-bit number. */
static bool v4_refused(uint32_t v)
{
    return (v >> 24) == 127 ||                 /* loopback 127/8 */
           (v >> 24) == 10 ||                  /* 10/8 */
           (v >> 20) == ((172u << 4) | 1) ||   /* 172.16/12 */
           (v >> 16) == ((192u << 8) | 168) || /* 192.168/16 */
           (v >> 16) == ((169u << 8) | 254) || /* link-local 169.254/16 */
           (v >> 22) == ((100u << 2) | 1) ||   /* CGNAT 100.64/10 */
           (v >> 28) == 0xE ||                 /* multicast 224/4 */
           (v >> 24) == 0;                     /* unspecified 0/8 */
}

/* The IPv6 ones, and what carries an IPv4 address. */
static bool reference_refused(const uint8_t b[16])
{
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t zero[16] = {0};

    if (is_mapped(b) || memcmp(b, nat64, 12) == 0)
        return v4_refused((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | b[14] << 8 | b[15]);
    return (memcmp(b, zero, 15) == 0 && (b[15] == 1 || b[15] == 0)) || /* ::1 and :: */
           (b[0] & 0xfe) == 0xfc ||                                  /* fc00::/7 */
           (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) ||                /* site-local fec0::/10 */
           (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) ||                /* link-local fe80::/10 */
           b[0] == 0xff;                                             /* multicast ff00::/8 */
}

static void check_parse(const char *text)
{
    struct netaddr a;
    struct in_addr v4;
    struct in6_addr v6;
    bool ok = netaddr_parse(text, &a);
    bool is4 = inet_pton(AF_INET, text, &v4) == 1, is6 = !is4 && inet_pton(AF_INET6, text, &v6) == 1;

    FUZZ_CHECK(ok == (is4 || is6), "netaddr_parse says %d, inet_pton %d/%d", ok, is4, is6);
    if (is4) {
        FUZZ_CHECK(is_mapped(a.b) && memcmp(a.b + 12, &v4, 4) == 0, "a different IPv4 address");
    } else if (is6) {
        FUZZ_CHECK(memcmp(a.b, &v6, 16) == 0, "a different IPv6 address");
    }
}

static void check_address(const uint8_t b[16], unsigned len)
{
    struct netaddr a, back;
    struct netaddr_prefix p;
    char text[NETADDR_TEXT_MAX], cidr[NETADDR_TEXT_MAX + 8];
    unsigned max = is_mapped(b) ? 32 : 128;

    memcpy(a.b, b, 16);
    netaddr_format(&a, text, sizeof(text));
    FUZZ_CHECK(netaddr_parse(text, &back) && netaddr_equal(&a, &back),
               "\"%s\" does not parse back to its address", text);
    FUZZ_CHECK(netaddr_is_v4(&a) == is_mapped(b), "netaddr_is_v4 of \"%s\"", text);

    snprintf(cidr, sizeof(cidr), "%s/%u", text, len);
    if (len > max) {
        FUZZ_CHECK(!netaddr_parse_prefix(cidr, false, &p), "\"%s\" is accepted", cidr);
    } else {
        unsigned bits = (max == 32 ? 96 : 0) + len;

        FUZZ_CHECK(netaddr_parse_prefix(cidr, false, &p), "\"%s\" is refused", cidr);
        FUZZ_CHECK(p.bits == bits, "\"%s\": %u bits", cidr, p.bits);
        FUZZ_CHECK(netaddr_in_prefix(&a, &p), "\"%s\" does not hold its address", cidr);
        for (unsigned i = bits; i < 128; i++)
            FUZZ_CHECK((p.addr.b[i / 8] >> (7 - i % 8) & 1) == 0, "\"%s\": bit %u kept", cidr, i);
    }
    FUZZ_CHECK(netguard_addr_refused_range(&a) == reference_refused(b),
               "\"%s\": the guard says %d", text, netguard_addr_refused_range(&a));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t b[16] = {0};
    char *text;

    memcpy(b, data, size < 16 ? size : 16);
    check_address(b, size > 16 ? data[16] % 160 : 0);
    if (size > 17) {
        text = fuzz_cstr(data + 17, size - 17);
        check_parse(text);
        free(text);
    }
    return 0;
}
