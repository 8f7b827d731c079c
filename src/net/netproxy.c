/*
 * netproxy.c - the CONNECT proxy: which one. See netproxy.h.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ascii.h"
#include "base64.h"
#include "err.h"
#include "netproxy.h"

void net_proxy_free(struct net_proxy *p)
{
    if (p == NULL)
        return;
    free(p->host);
    if (p->authorization != NULL) {
        explicit_bzero(p->authorization, strlen(p->authorization));
        free(p->authorization);
    }
    explicit_bzero(p, sizeof(*p));
    free(p);
}

int net_proxy_dup(const struct net_proxy *p, struct net_proxy **out)
{
    struct net_proxy *d;

    *out = NULL;
    if (p == NULL)
        return 0;
    if ((d = calloc(1, sizeof(*d))) == NULL || (d->host = strdup(p->host)) == NULL ||
        (p->authorization != NULL && (d->authorization = strdup(p->authorization)) == NULL)) {
        net_proxy_free(d);
        return ERR_NOMEM;
    }
    d->port = p->port;
    *out = d;
    return 0;
}

/* Percent-decodes s[0..len) into dst (room for len bytes). Returns the length, or -1 for
 * a bad escape or a decoded NUL (which no header value may carry). */
static long pct_decode(const char *s, size_t len, char *dst)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        int hi, lo;

        if (s[i] != '%') {
            dst[n++] = s[i];
            continue;
        }
        if (i + 2 >= len)
            return -1;
        if ((hi = ascii_hex_value((unsigned char)s[i + 1])) < 0 ||
            (lo = ascii_hex_value((unsigned char)s[i + 2])) < 0 || (hi == 0 && lo == 0))
            return -1;
        dst[n++] = (char)(hi << 4 | lo);
        i += 2;
    }
    return (long)n;
}

/* "Basic " + base64(user ":" password), from the URL's userinfo ui[0..len). */
static int basic_auth(const char *ui, size_t len, char **out)
{
    const char *colon = memchr(ui, ':', len);
    size_t ulen = colon != NULL ? (size_t)(colon - ui) : len;
    char *plain = malloc(len + 2), *value = NULL;
    long u, pw = 0;
    int r = ERR_BAD_URL;

    *out = NULL;
    if (plain == NULL)
        return ERR_NOMEM;
    if ((u = pct_decode(ui, ulen, plain)) < 0)
        goto out;
    plain[u] = ':';
    if (colon != NULL && (pw = pct_decode(colon + 1, len - ulen - 1, plain + u + 1)) < 0)
        goto out;
    if ((value = malloc(sizeof("Basic ") - 1 + BASE64_ENCODED_LEN((size_t)(u + 1 + pw)) + 1)) ==
        NULL) {
        r = ERR_NOMEM;
        goto out;
    }
    memcpy(value, "Basic ", 6);
    base64_encode((const uint8_t *)plain, (size_t)(u + 1 + pw), value + 6);
    *out = value; /* transferred */
    r = 0;
out:
    explicit_bzero(plain, len + 2);
    free(plain);
    return r;
}

static bool host_byte_ok(unsigned char c, bool bracketed)
{
    if (ascii_is_alpha(c) || ascii_is_digit(c) || c == '.' || c == '-')
        return true;
    return bracketed ? c == ':' : c == '_';
}

int net_proxy_from_url(const char *url, struct net_proxy **out)
{
    const char *sep = strstr(url, "://"), *auth, *auth_end, *at, *host, *host_end, *port_s;
    struct net_proxy *p = NULL;
    unsigned long port = 80;
    int r = ERR_BAD_URL;

    *out = NULL;
    if (sep == NULL)
        return ERR_BAD_URL;
    if ((size_t)(sep - url) != 4 || strncasecmp(url, "http", 4) != 0)
        return ERR_UNSUPPORTED;
    auth = sep + 3;
    auth_end = auth + strcspn(auth, "/?#");
    /* The last '@' ends the userinfo: a password may hold a raw '@' (Go accepts it). */
    at = NULL;
    for (const char *s = auth; s < auth_end; s++)
        if (*s == '@')
            at = s;
    host = at != NULL ? at + 1 : auth;
    if ((p = calloc(1, sizeof(*p))) == NULL)
        return ERR_NOMEM;
    if (host < auth_end && *host == '[') {
        if ((host_end = memchr(host, ']', (size_t)(auth_end - host))) == NULL)
            goto out;
        port_s = host_end + 1;
        host++;
        if (port_s < auth_end && *port_s != ':')
            goto out;
    } else {
        host_end = memchr(host, ':', (size_t)(auth_end - host));
        if (host_end == NULL)
            host_end = auth_end;
        port_s = host_end;
    }
    if (host_end == host)
        goto out;
    for (const char *s = host; s < host_end; s++)
        if (!host_byte_ok((unsigned char)*s, host[-1] == '['))
            goto out;
    if (port_s < auth_end && port_s + 1 < auth_end) { /* ":" alone: the default port */
        port = 0;
        for (const char *s = port_s + 1; s < auth_end; s++) {
            if (!ascii_is_digit((unsigned char)*s) || port > 65535)
                goto out;
            port = port * 10 + (unsigned long)(*s - '0');
        }
        if (port == 0 || port > 65535)
            goto out;
    }
    p->port = (uint16_t)port;
    if ((p->host = strndup(host, (size_t)(host_end - host))) == NULL) {
        r = ERR_NOMEM;
        goto out;
    }
    if (at != NULL && (r = basic_auth(auth, (size_t)(at - auth), &p->authorization)) != 0)
        goto out;
    *out = p; /* transferred */
    p = NULL;
    r = 0;
out:
    net_proxy_free(p);
    return r;
}

int net_proxy_for(const struct webproxy *wp, const char *scheme, const char *host, uint16_t port,
                  struct net_proxy **out)
{
    const char *url = webproxy_for(wp, scheme, host, port);

    *out = NULL;
    return url == NULL ? 0 : net_proxy_from_url(url, out);
}
