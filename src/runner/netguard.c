/*
 * netguard.c - webfetch's address guard. See netguard.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ascii.h"
#include "err.h"
#include "netguard.h"

/* The refused ranges (netguard.h), IPv4 ones as their mapped form. */
static const char *const refused_ranges[] = {
    "0.0.0.0/8",      "10.0.0.0/8",  "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12",  "192.168.0.0/16", "224.0.0.0/4",
    "::/128",         "::1/128",     "fc00::/7",      "fec0::/10",   "fe80::/10",
    "ff00::/8",
};

/* IPv6 prefixes whose last 32 bits are an IPv4 address the packet ends up at. */
static const char *const v4_carrying[] = {"64:ff9b::/96"};

static bool in_listed(const struct netaddr *a, const char *const *list, size_t n)
{
    struct netaddr_prefix p;

    for (size_t i = 0; i < n; i++) {
        /* Constant, valid texts: parsing them here keeps the table readable. */
        if (netaddr_parse_prefix(list[i], false, &p) && netaddr_in_prefix(a, &p))
            return true;
    }
    return false;
}

bool netguard_addr_refused_range(const struct netaddr *a)
{
    struct netaddr v4;

    if (in_listed(a, v4_carrying, sizeof(v4_carrying) / sizeof(v4_carrying[0]))) {
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

        memcpy(v4.b, mapped, sizeof(mapped));
        memcpy(v4.b + 12, a->b + 12, 4);
        a = &v4;
    }
    return in_listed(a, refused_ranges, sizeof(refused_ranges) / sizeof(refused_ranges[0]));
}

/* A host name as URLs carry it: letters, digits, '-', '_' and dots, not empty. */
static bool is_host_name(const char *s)
{
    if (*s == '\0' || *s == '.')
        return false;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (!ascii_is_alpha(c) && !ascii_is_digit(c) && c != '-' && c != '_' && c != '.')
            return false;
    }
    return true;
}

/* Lower case, brackets and one trailing dot gone: the form hosts are compared in. */
static char *host_key(const char *host)
{
    size_t n = strlen(host);
    char *k;

    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    }
    if (n > 0 && host[n - 1] == '.')
        n--;
    if ((k = malloc(n + 1)) == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        k[i] = (char)ascii_tolower((unsigned char)host[i]);
    k[n] = '\0';
    return k;
}

static int netguard__add(struct netguard *g, const char *entry, char *err, size_t errlen)
{
    struct netaddr_prefix p;
    char *k;

    if ((k = host_key(entry)) == NULL)
        return ERR_NOMEM;
    if (netaddr_parse_prefix(k, true, &p)) {
        free(k);
        g->prefixes[g->nprefixes++] = p;
        return 0;
    }
    if (strchr(k, '/') != NULL || strchr(k, ':') != NULL || !is_host_name(k)) {
        free(k);
        snprintf(err, errlen,
                 "webfetch.allow_hosts: \"%.100s\" is not a host name, IP address or CIDR "
                 "prefix", entry);
        return ERR_INVALID;
    }
    g->hosts[g->nhosts++] = k;
    return 0;
}

int netguard_init(struct netguard *g, bool allow_private, char *const *allow_hosts,
                  size_t n, char *err, size_t errlen)
{
    int r;

    memset(g, 0, sizeof(*g));
    g->allow_private = allow_private;
    if (n == 0)
        return 0;
    if ((g->hosts = calloc(n, sizeof(*g->hosts))) == NULL ||
        (g->prefixes = calloc(n, sizeof(*g->prefixes))) == NULL)
        return ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        if ((r = netguard__add(g, allow_hosts[i], err, errlen)) != 0)
            return r;
    }
    return 0;
}

void netguard_free(struct netguard *g)
{
    if (g == NULL)
        return;
    for (size_t i = 0; i < g->nhosts; i++)
        free(g->hosts[i]);
    free(g->hosts);
    free(g->prefixes);
    memset(g, 0, sizeof(*g));
}

bool netguard_host_open(const struct netguard *g, const char *host)
{
    bool open = false;
    char *k;

    if (g->allow_private)
        return true;
    if (g->nhosts == 0 || (k = host_key(host)) == NULL)
        return false;
    for (size_t i = 0; i < g->nhosts && !open; i++)
        open = strcmp(g->hosts[i], k) == 0;
    free(k);
    return open;
}

bool netguard_addr_allowed(const struct netguard *g, const struct netaddr *a)
{
    if (g->allow_private || !netguard_addr_refused_range(a))
        return true;
    for (size_t i = 0; i < g->nprefixes; i++) {
        if (netaddr_in_prefix(a, &g->prefixes[i]))
            return true;
    }
    return false;
}
