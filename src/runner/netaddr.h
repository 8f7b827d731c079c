/*
 * netaddr.h - IP addresses and CIDR prefixes, for webfetch's address guard (netguard.h)
 * and its NO_PROXY rules (webproxy.h).
 *
 * An address is kept as 16 bytes: IPv6 as is, IPv4 in its IPv4-mapped form
 * (::ffff:a.b.c.d), so that a mapped IPv6 address and the IPv4 address it carries are
 * one and the same here, as RUNNER-OPS.md 8 asks ("IPv4-mapped IPv6 is judged by its
 * IPv4 address").
 */
#ifndef CREDBROKER_NETADDR_H
#define CREDBROKER_NETADDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct netaddr {
    uint8_t b[16];
};

/* A prefix: the addresses whose first bits bits equal addr's. An IPv4 prefix a.b.c.d/n
 * is the mapped ::ffff:a.b.c.d/(96+n). */
struct netaddr_prefix {
    struct netaddr addr;
    unsigned bits;
};

/* Parses an IPv4 or IPv6 literal (no brackets, no zone). Returns true and *out. */
bool netaddr_parse(const char *s, struct netaddr *out);
/* Parses "ADDR/BITS" (BITS at most 32 for IPv4, 128 for IPv6) or, when bare_ok, a bare
 * address as a one-address prefix. The bits past the prefix are cleared, as Go's
 * net.ParseCIDR does ("10.1.2.3/8" is 10.0.0.0/8). Returns true and *out. */
bool netaddr_parse_prefix(const char *s, bool bare_ok, struct netaddr_prefix *out);
/* The address of an AF_INET or AF_INET6 socket address; false for other families. */
bool netaddr_from_sockaddr(const struct sockaddr *sa, struct netaddr *out);
bool netaddr_in_prefix(const struct netaddr *a, const struct netaddr_prefix *p);
bool netaddr_is_v4(const struct netaddr *a);
bool netaddr_equal(const struct netaddr *a, const struct netaddr *b);
/* The address as text: dotted IPv4 for a mapped one, else RFC 5952 IPv6. buf holds at
 * least NETADDR_TEXT_MAX bytes. */
#define NETADDR_TEXT_MAX 46
void netaddr_format(const struct netaddr *a, char *buf, size_t len);

#endif
