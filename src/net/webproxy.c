/*
 * webproxy.c - Go's proxy choice from the environment. See webproxy.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ascii.h"
#include "err.h"
#include "netaddr.h"
#include "webproxy.h"

/* One NO_PROXY entry (Go's ipMatch, cidrMatch and domainMatch). */
struct webproxy_rule {
    enum { RULE_PREFIX, RULE_IP, RULE_DOMAIN } kind;
    struct netaddr_prefix prefix; /* RULE_PREFIX; RULE_IP uses prefix.addr */
    char *domain;                 /* RULE_DOMAIN: ".example.com", lower case */
    bool match_bare;              /* RULE_DOMAIN: "example.com" itself matches too */
    unsigned port;                /* 0: any port */
};

static const char *first_set(const char *(*getenv_fn)(const char *), const char *upper,
                             const char *lower)
{
    const char *v = getenv_fn(upper);

    if (v == NULL || v[0] == '\0')
        v = getenv_fn(lower);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* The proxy as libcurl takes it: Go assumes http:// when no scheme is given. */
static int proxy_url(const char *v, char **out)
{
    size_t n;

    *out = NULL;
    if (v == NULL)
        return 0;
    if (strstr(v, "://") != NULL)
        *out = strdup(v);
    else if ((*out = malloc((n = strlen(v) + sizeof("http://")))) != NULL)
        snprintf(*out, n, "http://%s", v);
    return *out == NULL ? ERR_NOMEM : 0;
}

/* Splits "host:port" or "[v6]:port" (Go's net.SplitHostPort, for one entry): true with
 * the host (brackets gone) in host and the port; false when there is no port. */
static bool split_host_port(char *e, char **host, unsigned *port)
{
    char *colon = strrchr(e, ':'), *end;
    unsigned long v;

    if (colon == NULL || colon[1] < '0' || colon[1] > '9')
        return false;
    if (e[0] == '[') {
        if (colon[-1] != ']')
            return false;
        colon[-1] = '\0';
        *host = e + 1;
    } else {
        if (strchr(e, ':') != colon) /* a bare IPv6 address: no port */
            return false;
        *host = e;
    }
    v = strtoul(colon + 1, &end, 10);
    if (*end != '\0' || v == 0 || v > 65535)
        return false;
    *colon = '\0';
    *port = (unsigned)v;
    return true;
}

/* Adds one NO_PROXY entry, already trimmed and lower-cased (Go's parse, in its order). */
static int webproxy__add(struct webproxy *p, char *e)
{
    struct webproxy_rule *r = &p->rules[p->nrules];
    char *host = e;
    unsigned port = 0;
    size_t n;

    memset(r, 0, sizeof(*r));
    if (strcmp(e, "*") == 0) {
        p->none_proxied = true;
        return 0;
    }
    if (strchr(e, '/') != NULL) {
        if (netaddr_parse_prefix(e, false, &r->prefix)) {
            r->kind = RULE_PREFIX;
            p->nrules++;
        }
        return 0; /* Go ignores an entry it cannot read */
    }
    if (!split_host_port(e, &host, &port) && e[0] == '[' && (n = strlen(e)) > 2 &&
        e[n - 1] == ']') {
        e[n - 1] = '\0';
        host = e + 1;
    }
    if (host[0] == '\0')
        return 0;
    r->port = port;
    if (netaddr_parse(host, &r->prefix.addr)) {
        r->kind = RULE_IP;
        p->nrules++;
        return 0;
    }
    if (strncmp(host, "*.", 2) == 0)
        host++;
    r->kind = RULE_DOMAIN;
    r->match_bare = host[0] != '.';
    n = strlen(host) + 2;
    if ((r->domain = malloc(n)) == NULL)
        return ERR_NOMEM;
    snprintf(r->domain, n, "%s%s", r->match_bare ? "." : "", host);
    p->nrules++;
    return 0;
}

static int webproxy__parse_no_proxy(struct webproxy *p, const char *v)
{
    size_t n = 1;
    char *copy, *e, *save = NULL;
    int r = 0;

    for (const char *s = v; *s != '\0'; s++)
        n += *s == ',';
    if ((p->rules = calloc(n, sizeof(*p->rules))) == NULL || (copy = strdup(v)) == NULL)
        return ERR_NOMEM;
    for (e = strtok_r(copy, ",", &save); e != NULL && r == 0; e = strtok_r(NULL, ",", &save)) {
        size_t len;

        while (*e == ' ' || *e == '\t' || *e == '\n' || *e == '\r')
            e++;
        len = strlen(e);
        while (len > 0 && (e[len - 1] == ' ' || e[len - 1] == '\t' || e[len - 1] == '\n' ||
                           e[len - 1] == '\r'))
            e[--len] = '\0';
        for (size_t i = 0; i < len; i++)
            e[i] = (char)ascii_tolower((unsigned char)e[i]);
        if (len > 0)
            r = webproxy__add(p, e);
    }
    free(copy);
    return r;
}

int webproxy_init(struct webproxy *p, const char *(*getenv_fn)(const char *name))
{
    const char *no_proxy;
    int r;

    memset(p, 0, sizeof(*p));
    if (getenv_fn("REQUEST_METHOD") == NULL &&
        (r = proxy_url(first_set(getenv_fn, "HTTP_PROXY", "http_proxy"), &p->http_proxy)) != 0)
        return r;
    if ((r = proxy_url(first_set(getenv_fn, "HTTPS_PROXY", "https_proxy"), &p->https_proxy)) != 0)
        return r;
    if ((no_proxy = first_set(getenv_fn, "NO_PROXY", "no_proxy")) != NULL)
        return webproxy__parse_no_proxy(p, no_proxy);
    return 0;
}

void webproxy_free(struct webproxy *p)
{
    if (p == NULL)
        return;
    free(p->http_proxy);
    free(p->https_proxy);
    for (size_t i = 0; i < p->nrules; i++)
        free(p->rules[i].domain);
    free(p->rules);
    memset(p, 0, sizeof(*p));
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* Go's useProxy: false when the host goes direct. */
static bool webproxy__use(const struct webproxy *p, const char *host_in, unsigned port)
{
    char host[256];
    struct netaddr ip;
    struct netaddr_prefix loopback;
    bool is_ip;
    size_t n = strlen(host_in);

    if (n >= 2 && host_in[0] == '[' && host_in[n - 1] == ']') {
        host_in++;
        n -= 2;
    }
    if (n >= sizeof(host))
        return true;
    for (size_t i = 0; i < n; i++)
        host[i] = (char)ascii_tolower((unsigned char)host_in[i]);
    host[n] = '\0';
    is_ip = netaddr_parse(host, &ip);
    if (strcmp(host, "localhost") == 0 && !p->proxy_loopback)
        return false;
    if (is_ip && !p->proxy_loopback && ((netaddr_parse_prefix("127.0.0.0/8", false, &loopback) &&
                   netaddr_in_prefix(&ip, &loopback)) ||
                  (netaddr_parse_prefix("::1/128", false, &loopback) &&
                   netaddr_in_prefix(&ip, &loopback))))
        return false;
    if (p->none_proxied)
        return false;
    for (size_t i = 0; i < p->nrules; i++) {
        const struct webproxy_rule *r = &p->rules[i];
        bool port_ok = r->port == 0 || r->port == port;

        if (r->kind == RULE_PREFIX && is_ip && netaddr_in_prefix(&ip, &r->prefix))
            return false;
        if (r->kind == RULE_IP && is_ip && netaddr_equal(&ip, &r->prefix.addr) && port_ok)
            return false;
        if (r->kind == RULE_DOMAIN && port_ok &&
            (ends_with(host, r->domain) || (r->match_bare && strcmp(host, r->domain + 1) == 0)))
            return false;
    }
    return true;
}

const char *webproxy_for(const struct webproxy *p, const char *scheme, const char *host,
                         unsigned port)
{
    const char *proxy = strcmp(scheme, "https") == 0 ? p->https_proxy
                        : strcmp(scheme, "http") == 0 ? p->http_proxy : NULL;

    if (proxy == NULL || !webproxy__use(p, host, port))
        return NULL;
    return proxy;
}
