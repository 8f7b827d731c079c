/*
 * netaddr.c - IP addresses and CIDR prefixes. See netaddr.h.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "netaddr.h"

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static void netaddr__set_v4(struct netaddr *out, const void *v4)
{
    memcpy(out->b, v4_mapped, sizeof(v4_mapped));
    memcpy(out->b + 12, v4, 4);
}

bool netaddr_is_v4(const struct netaddr *a)
{
    return memcmp(a->b, v4_mapped, sizeof(v4_mapped)) == 0;
}

bool netaddr_parse(const char *s, struct netaddr *out)
{
    struct in_addr v4;
    struct in6_addr v6;

    /* inet_pton takes only the four-part dotted form: no "127.1", no octal, which Go's
     * net.ParseIP refuses too (and which would let "0177.0.0.1" mean two things). */
    if (inet_pton(AF_INET, s, &v4) == 1) {
        netaddr__set_v4(out, &v4);
        return true;
    }
    if (inet_pton(AF_INET6, s, &v6) == 1) {
        memcpy(out->b, &v6, 16);
        return true;
    }
    return false;
}

bool netaddr_parse_prefix(const char *s, bool bare_ok, struct netaddr_prefix *out)
{
    char addr[64], *end;
    const char *slash = strchr(s, '/');
    unsigned long bits;
    size_t n;

    if (slash == NULL) {
        if (!bare_ok || !netaddr_parse(s, &out->addr))
            return false;
        out->bits = 128;
        return true;
    }
    n = (size_t)(slash - s);
    if (n == 0 || n >= sizeof(addr) || slash[1] < '0' || slash[1] > '9')
        return false;
    memcpy(addr, s, n);
    addr[n] = '\0';
    bits = strtoul(slash + 1, &end, 10);
    if (*end != '\0' || (end - (slash + 1)) > 3 || !netaddr_parse(addr, &out->addr))
        return false;
    /* An IPv4 literal counts its bits from the start of the IPv4 address. */
    if (strchr(addr, ':') == NULL) {
        if (bits > 32)
            return false;
        bits += 96;
    } else if (bits > 128) {
        return false;
    }
    out->bits = (unsigned)bits;
    for (unsigned i = out->bits; i < 128; i++)
        out->addr.b[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
    return true;
}

bool netaddr_from_sockaddr(const struct sockaddr *sa, struct netaddr *out)
{
    if (sa->sa_family == AF_INET) {
        netaddr__set_v4(out, &((const struct sockaddr_in *)(const void *)sa)->sin_addr);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(out->b, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        return true;
    }
    return false;
}

bool netaddr_in_prefix(const struct netaddr *a, const struct netaddr_prefix *p)
{
    unsigned whole = p->bits / 8, rest = p->bits % 8;

    if (memcmp(a->b, p->addr.b, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (a->b[whole] & mask) == (p->addr.b[whole] & mask);
}

bool netaddr_equal(const struct netaddr *a, const struct netaddr *b)
{
    return memcmp(a->b, b->b, 16) == 0;
}

void netaddr_format(const struct netaddr *a, char *buf, size_t len)
{
    if (netaddr_is_v4(a)) {
        if (inet_ntop(AF_INET, a->b + 12, buf, (socklen_t)len) == NULL && len > 0)
            buf[0] = '\0';
    } else if (inet_ntop(AF_INET6, a->b, buf, (socklen_t)len) == NULL && len > 0) {
        buf[0] = '\0';
    }
}
