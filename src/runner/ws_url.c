/*
 * ws_url.c - a ws:// or wss:// URL taken apart. See ws_url.h.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ascii.h"
#include "err.h"
#include "ws.h"
#include "ws_url.h"

/*
 * Splits url into host, port, Host header and request target. Only printable ASCII
 * is accepted, so nothing in the URL can split the request line or a header.
 */
static int ws_url__parse(struct ws_url *u, const char *url)
{
    size_t len = strnlen(url, WS_URL_MAX + 1), i, hlen;
    const char *p, *end, *auth_end, *host, *host_end, *after;
    unsigned long port = 0, defport;
    bool bracketed = false;
    struct in6_addr a6;
    struct in_addr a4;
    char *hh = NULL;
    int n;

    if (len > WS_URL_MAX)
        return ERR_TOO_LARGE;
    for (i = 0; i < len; i++) {
        /* RFC 6455 3: no fragment in a WebSocket URI. */
        if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f || url[i] == '#')
            return ERR_BAD_URL;
    }
    if (len >= 6 && ascii_ieq_lower(url, 6, "wss://")) {
        u->tls = true;
        p = url + 6;
        defport = 443;
    } else if (len >= 5 && ascii_ieq_lower(url, 5, "ws://")) {
        p = url + 5;
        defport = 80;
    } else {
        return ERR_BAD_URL;
    }
    end = url + len;
    for (auth_end = p; auth_end < end && *auth_end != '/' && *auth_end != '?'; auth_end++)
        ;
    /* Userinfo would never be sent; refuse it rather than guess what was meant. */
    if (memchr(p, '@', (size_t)(auth_end - p)) != NULL)
        return ERR_BAD_URL;
    if (p < auth_end && *p == '[') {
        bracketed = true;
        host = p + 1;
        host_end = memchr(host, ']', (size_t)(auth_end - host));
        if (host_end == NULL)
            return ERR_BAD_URL;
        after = host_end + 1;
    } else {
        host = p;
        host_end = memchr(p, ':', (size_t)(auth_end - p));
        if (host_end == NULL)
            host_end = auth_end;
        after = host_end;
    }
    hlen = (size_t)(host_end - host);
    if (hlen == 0 || hlen > 255)
        return ERR_BAD_URL;
    if (after < auth_end) {
        if (*after != ':' || after + 1 == auth_end)
            return ERR_BAD_URL;
        for (p = after + 1; p < auth_end; p++) {
            if (!ascii_is_digit((unsigned char)*p))
                return ERR_BAD_URL;
            port = port * 10 + (unsigned long)(*p - '0');
            if (port > 65535)
                return ERR_BAD_URL;
        }
        if (port == 0)
            return ERR_BAD_URL;
    } else {
        port = defport;
    }
    if ((u->host = strndup(host, hlen)) == NULL)
        return ERR_NOMEM;
    if (bracketed) {
        if (inet_pton(AF_INET6, u->host, &a6) != 1)
            return ERR_BAD_URL;
        u->host_is_ip = true;
    } else if (inet_pton(AF_INET, u->host, &a4) == 1) {
        u->host_is_ip = true;
    } else {
        for (i = 0; i < hlen; i++) {
            unsigned char c = (unsigned char)host[i];

            if (!ascii_is_alpha(c) && !ascii_is_digit(c) && c != '-' && c != '.' && c != '_')
                return ERR_BAD_URL;
        }
    }
    (void)snprintf(u->port, sizeof(u->port), "%lu", port);

    /* RFC 6455 4.1: Host carries the port only when it is not the scheme's default. */
    if ((hh = malloc(hlen + 16)) == NULL)
        return ERR_NOMEM;
    if (port == defport)
        n = snprintf(hh, hlen + 16, bracketed ? "[%s]" : "%s", u->host);
    else
        n = snprintf(hh, hlen + 16, bracketed ? "[%s]:%lu" : "%s:%lu", u->host, port);
    if (n < 0 || (size_t)n >= hlen + 16) {
        free(hh);
        return ERR_BAD_URL;
    }
    u->host_header = hh;

    if ((u->target = buf_new(WS_URL_MAX + 1, BUF_WIPE)) == NULL)
        return ERR_NOMEM;
    if ((auth_end == end || *auth_end == '?') && buf_put(u->target, "/", 1) != 0)
        return ERR_NOMEM;
    if (buf_put(u->target, auth_end, (size_t)(end - auth_end)) != 0)
        return ERR_NOMEM;
    return 0;
}

int ws_url_parse(const char *url, struct ws_url *out)
{
    int r;

    memset(out, 0, sizeof(*out));
    if ((r = ws_url__parse(out, url)) != 0)
        ws_url_free(out);
    return r;
}

void ws_url_free(struct ws_url *u)
{
    free(u->host);
    free(u->host_header);
    buf_free(u->target);
    memset(u, 0, sizeof(*u));
}
