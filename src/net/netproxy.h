/*
 * netproxy.h - the HTTP proxy a connection tunnels through with CONNECT (RFC 9110
 * 9.3.6): which proxy (from a URL, or from the environment with webproxy.h's Go
 * rules), and the proxy's answer read strictly.
 *
 * The tunnel itself (sending CONNECT, reading the answer off the socket, then TLS
 * through it) is netconn.h's; what is here is pure and allocates only the struct
 * net_proxy, so the answer's parser is also what fuzz/fuzz_connect_head.c drives.
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

/* The most bytes a proxy's answer head may take, status line to the final CRLF CRLF. */
#define NET_PROXY_HEAD_MAX (16 * 1024)

struct net_proxy {
    char *host;          /* name or IP literal (IPv6 without brackets) */
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
int net_proxy_from_url(const char *url, struct net_proxy **out)
    __attribute__((warn_unused_result));

/*
 * The proxy for a connection to scheme://host:port as webproxy_for decides it ("https"
 * reads HTTPS_PROXY, "http" HTTP_PROXY; NO_PROXY, loopback never proxied). Returns 0
 * with *out NULL to go direct, 0 with *out set (free with net_proxy_free), or a code
 * of net_proxy_from_url for a proxy URL that cannot be used.
 */
int net_proxy_for(const struct webproxy *wp, const char *scheme, const char *host,
                  uint16_t port, struct net_proxy **out) __attribute__((warn_unused_result));

/* Returns a copy of p (NULL when p is NULL) in *out: 0 or ERR_NOMEM. */
int net_proxy_dup(const struct net_proxy *p, struct net_proxy **out)
    __attribute__((warn_unused_result));

/* Wipes the authorization and frees p. Accepts NULL. */
void net_proxy_free(struct net_proxy *p);

/* The proxy's answer to CONNECT, as net_proxy_parse_head read it. */
struct net_proxy_answer {
    int status;       /* 100-999 */
    size_t line_len;  /* the status line, without its CRLF, starts the head */
    size_t head_len;  /* bytes of the head, final CRLF CRLF included: the tunnel starts
                       * right after */
};

/*
 * Parses the answer head at the start of buf[0..len) (RFC 9112 4: a status line
 * "HTTP/1.x NNN[ reason]", field lines "name: value", an empty line; every line ends
 * in CRLF). Stateless: call again with the same bytes plus what has come since.
 *
 * Returns 0 and *a once the head is complete and well formed; ERR_INCOMPLETE when more
 * bytes are needed (and fewer than NET_PROXY_HEAD_MAX have come); ERR_TOO_LARGE when
 * the first NET_PROXY_HEAD_MAX bytes hold no end of head; ERR_INVALID as soon as the
 * bytes cannot begin an answer ("HTTP/" missing), or, once the head is complete, for a
 * malformed status line, a bare CR or LF, a NUL or other control byte, an obsolete
 * line folding, or a field line without a token name and a colon. Headers are not
 * interpreted: a 2xx answer to CONNECT has no body (RFC 9110 9.3.6), and any other
 * status ends the attempt. *a is left unchanged unless 0 is returned.
 */
int net_proxy_parse_head(const uint8_t *buf, size_t len, struct net_proxy_answer *a);

#endif
