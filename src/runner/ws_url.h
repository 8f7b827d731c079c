/*
 * ws_url.h - a ws:// or wss:// URL taken apart for the WebSocket client (ws.c):
 * the host to connect to and verify, the port, the Host header and the request
 * target. Pure: no I/O, no DNS. Part of the ws module (ws.h), split out so that
 * the rules that keep a URL from splitting the request line are tested alone.
 */
#ifndef CREDBROKER_WS_URL_H
#define CREDBROKER_WS_URL_H

#include <stdbool.h>

#include "buf.h"

struct ws_url {
    bool tls;           /* wss:// */
    bool host_is_ip;    /* an IPv4 literal or a bracketed IPv6 one */
    char *host;         /* IPv6 without brackets: for DNS, SNI and verification */
    char *host_header;  /* the Host: value, with the port when it is not the default */
    char port[8];       /* decimal */
    struct buf *target; /* path?query ("/" when the URL has no path); BUF_WIPE: the query
                         * may carry a token */
};

/*
 * Parses url (at most WS_URL_MAX bytes, ws.h) into *out. Only printable ASCII is
 * accepted, so nothing in the URL can split the request line or a header; no
 * fragment (RFC 6455 3), no userinfo (it would never be sent), a host name of
 * letters, digits, '-', '.', '_' or an IP literal, a port 1..65535. Returns 0;
 * ERR_BAD_URL, ERR_TOO_LARGE or ERR_NOMEM, with *out left empty.
 */
int ws_url_parse(const char *url, struct ws_url *out) __attribute__((warn_unused_result));

/* Frees what ws_url_parse allocated and empties *u. Accepts an empty one. */
void ws_url_free(struct ws_url *u);

#endif
