/*
 * webproxy.h - which proxy a webfetch request goes through, as Go's net/http decides it
 * from the environment (golang.org/x/net/http/httpproxy, which the Go runner's
 * http.DefaultClient uses): HTTP_PROXY / http_proxy for http URLs, HTTPS_PROXY /
 * https_proxy for https ones (the upper-case name first), NO_PROXY / no_proxy for the
 * hosts that go direct. libcurl alone reads only the lower-case http_proxy, so the
 * runner decides and tells libcurl (RUNNER-OPS.md 8).
 *
 * Go's rules, kept: "localhost" and loopback addresses never go through a proxy; a
 * NO_PROXY entry is "*" (nothing is proxied), an IP address or CIDR prefix, an IP with a
 * port, or a domain with an optional port, where "example.com" matches that host and its
 * subdomains and ".example.com" or "*.example.com" only the subdomains; a proxy without
 * a scheme is http://; when REQUEST_METHOD is set (a CGI environment) HTTP_PROXY is not
 * trusted, since a client's Proxy: header would become it.
 */
#ifndef CREDBROKER_WEBPROXY_H
#define CREDBROKER_WEBPROXY_H

#include <stdbool.h>
#include <stddef.h>

struct webproxy_rule;

struct webproxy {
    char *http_proxy, *https_proxy; /* NULL: none */
    struct webproxy_rule *rules;    /* NO_PROXY */
    size_t nrules;
    bool none_proxied;              /* NO_PROXY holds "*" */
    /* Set by the caller after webproxy_init: localhost and loopback addresses go through
     * the proxy too, unless NO_PROXY names them (libcurl's rule, which the broker's
     * egress kept from its libcurl days); Go's rule sends them direct. */
    bool proxy_loopback;
};

/* Reads the proxy variables through getenv_fn (getenv in the runner; tests pass their
 * own). Returns 0 or ERR_NOMEM; p is safe to free either way. */
int webproxy_init(struct webproxy *p, const char *(*getenv_fn)(const char *name))
    __attribute__((warn_unused_result));
void webproxy_free(struct webproxy *p);

/* The proxy URL for a request to scheme://host:port (host as in the URL, an IPv6
 * literal in brackets or not; port the URL's or the scheme's default), or NULL to go
 * direct. Borrowed from p. */
const char *webproxy_for(const struct webproxy *p, const char *scheme, const char *host,
                         unsigned port);

#endif
