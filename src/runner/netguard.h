/*
 * netguard.h - webfetch's address guard against server-side request forgery
 * (RUNNER-OPS.md 8, a deliberate deviation from the Go runner, which reaches every
 * address): a page an agent asks for must not be the host's metadata service or a
 * service on the customer's internal network, unless the operator opened it.
 *
 * Refused by default: loopback (127/8, ::1), private (10/8, 172.16/12, 192.168/16,
 * fc00::/7, and the deprecated site-local fec0::/10), link-local (169.254/16, which holds
 * the cloud metadata address 169.254.169.254, and fe80::/10), CGNAT (100.64/10),
 * multicast (224/4, ff00::/8) and unspecified (0/8, ::). An IPv4-mapped address
 * (::ffff:a.b.c.d) and one behind the NAT64 well-known prefix (64:ff9b::/96) are judged
 * by the IPv4 address they carry, since that is where they lead.
 *
 * The guard judges the address a socket is about to connect to (libcurl's
 * opensocket callback), so a DNS answer that changes between two lookups and a
 * redirect to an internal host are judged like any other connection.
 *
 * Opened by webfetch.allow_private (everything allowed) or webfetch.allow_hosts: host
 * names (exact, case-insensitive: a URL naming that host may connect anywhere), IP
 * literals and CIDR prefixes (a connection to those addresses is allowed whatever the
 * URL named).
 */
#ifndef CREDBROKER_NETGUARD_H
#define CREDBROKER_NETGUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "netaddr.h"

struct netguard {
    bool allow_private;
    char **hosts;                     /* lower case, no trailing dot */
    size_t nhosts;
    struct netaddr_prefix *prefixes;
    size_t nprefixes;
};

/*
 * Builds g from the two settings. allow_hosts entries are host names, IP literals (IPv6
 * with or without brackets) or CIDR prefixes. Returns 0, or ERR_INVALID with one line
 * naming the bad entry in err, or ERR_NOMEM. g is safe to free either way.
 */
int netguard_init(struct netguard *g, bool allow_private, char *const *allow_hosts,
                  size_t n, char *err, size_t errlen) __attribute__((warn_unused_result));
void netguard_free(struct netguard *g);

/* Whether a URL naming host (as in the URL; an IPv6 literal may keep its brackets) may
 * connect to any address: allow_private, or host listed by name in allow_hosts. */
bool netguard_host_open(const struct netguard *g, const char *host);
/* Whether a connection to a is allowed (the host's name aside). */
bool netguard_addr_allowed(const struct netguard *g, const struct netaddr *a);
/* Whether a is in one of the refused ranges (whatever the settings). */
bool netguard_addr_refused_range(const struct netaddr *a);

#endif
