/*
 * netproxy.h - the HTTP proxy a connection tunnels through with CONNECT (RFC 9110
 * 9.3.6): which proxy, from a URL or from the environment with webproxy.h's Go rules.
 *
 * The tunnel itself (sending CONNECT, reading the answer off the socket with
 * http1_parse_response, then TLS through it) is netconn.h's; what is here is pure and
 * allocates only the struct net_proxy.
 *
 * Only http:// proxies are spoken (the proxy connection itself is plain TCP); an
 * https:// or socks proxy is refused with ERR_UNSUPPORTED rather than silently
 * bypassed.
 */
#ifndef CREDBROKER_NETPROXY_H
#define CREDBROKER_NETPROXY_H

#include <stddef.h>
#include <stdint.h>

#include "webproxy.h"

/* The most bytes a proxy's answer head to CONNECT may take, status line to the final
 * CRLF CRLF (http1_parse_response allows an upstream's answer much more). */
#define NET_PROXY_HEAD_MAX (16 * 1024)

struct net_proxy {
    char *host; /* name or IP literal (IPv6 without brackets) */
    uint16_t port;
    char *authorization; /* Proxy-Authorization value ("Basic ..."), or NULL. A secret:
                          * it never appears in an error text, and is wiped on free */
};

/*
 * Reads "http://[user[:password]@]host[:port][/...]" (Go's rules: no port means 80;
 * user and password percent-decoded, then sent as Basic). Anything after the
 * authority is ignored, as Go ignores it for a proxy. Returns 0 and *out (free with
 * net_proxy_free); ERR_BAD_URL for a malformed URL; ERR_UNSUPPORTED for a scheme other
 * than http; ERR_NOMEM. *out is NULL on failure. The URL may hold a password: the
 * caller wipes its own copy.
 */
int net_proxy_from_url(const char *url, struct net_proxy **out) __attribute__((warn_unused_result));

/*
 * The proxy for a connection to scheme://host:port as webproxy_for decides it ("https"
 * reads HTTPS_PROXY, "http" HTTP_PROXY; NO_PROXY, loopback never proxied). Returns 0
 * with *out NULL to go direct, 0 with *out set (free with net_proxy_free), or a code
 * of net_proxy_from_url for a proxy URL that cannot be used.
 */
int net_proxy_for(const struct webproxy *wp, const char *scheme, const char *host, uint16_t port,
                  struct net_proxy **out) __attribute__((warn_unused_result));

/* Returns a copy of p (NULL when p is NULL) in *out: 0 or ERR_NOMEM. */
int net_proxy_dup(const struct net_proxy *p, struct net_proxy **out)
    __attribute__((warn_unused_result));

/* Wipes the authorization and frees p. Accepts NULL. */
void net_proxy_free(struct net_proxy *p);

#endif
