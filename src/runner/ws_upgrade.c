/*
 * ws_upgrade.c - the server's answer to the WebSocket upgrade, checked. See
 * ws_upgrade.h.
 */
#include <stdbool.h>
#include <string.h>

#include "ascii.h"
#include "err.h"
#include "http1.h"
#include "ws_upgrade.h"

int ws_upgrade_status_line(const char *s, size_t len, int *status)
{
    if (len < 12 || memcmp(s, "HTTP/1.", 7) != 0 || !ascii_is_digit((unsigned char)s[7]) ||
        s[8] != ' ' || !ascii_is_digit((unsigned char)s[9]) || s[9] == '0' ||
        !ascii_is_digit((unsigned char)s[10]) || !ascii_is_digit((unsigned char)s[11]) ||
        (len > 12 && s[12] != ' '))
        return ERR_INVALID;
    *status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    return 0;
}

/* Drops spaces and tabs (OWS) at both ends of s[0..len). */
static void trim_ows(const char **s, size_t *len)
{
    while (*len > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
}

int ws_upgrade_check(const char *h, size_t len, const char *accept, int *status,
                     const char **why)
{
    const char *line, *eol, *colon, *value, *end = h + len;
    size_t llen, vlen, i;
    int upgrades = 0, accepts = 0;
    bool conn_upgrade = false, accept_ok = false;
    const char *bad = NULL;

    *status = 0;
    *why = NULL;
    eol = memmem(h, len, "\r\n", 2);
    if (eol == NULL || ws_upgrade_status_line(h, (size_t)(eol - h), status) != 0) {
        *why = "malformed status line";
        return ERR_INVALID;
    }
    if (*status != 101) {
        *why = "not 101 Switching Protocols";
        return ERR_INVALID;
    }
    for (line = eol + 2; line < end && bad == NULL; line = eol + 2) {
        eol = memmem(line, (size_t)(end - line), "\r\n", 2);
        if (eol == NULL) { /* a head not ending in CRLFCRLF, against the contract */
            bad = "malformed header line";
            break;
        }
        llen = (size_t)(eol - line);
        if (llen == 0)
            break;
        /* RFC 9112 5.2: obsolete line folding is refused, not unfolded. */
        if (line[0] == ' ' || line[0] == '\t') {
            bad = "folded header line";
            break;
        }
        colon = memchr(line, ':', llen);
        if (colon == NULL || colon == line) {
            bad = "malformed header line";
            break;
        }
        for (i = 0; line + i < colon; i++) {
            if (!ascii_is_tchar((unsigned char)line[i]))
                bad = "malformed header name";
        }
        value = colon + 1;
        vlen = (size_t)(eol - value);
        for (i = 0; i < vlen; i++) {
            unsigned char c = (unsigned char)value[i];

            if ((c < 0x20 && c != '\t') || c == 0x7f)
                bad = "control byte in a header value";
        }
        if (bad != NULL)
            break;
        trim_ows(&value, &vlen);
        llen = (size_t)(colon - line);
        if (ascii_ieq_lower(line, llen, "upgrade")) {
            upgrades++;
            if (!ascii_ieq_lower(value, vlen, "websocket"))
                bad = "Upgrade is not websocket";
        } else if (ascii_ieq_lower(line, llen, "connection")) {
            conn_upgrade = conn_upgrade || http1_list_has_token(value, vlen, "upgrade", 7);
        } else if (ascii_ieq_lower(line, llen, "sec-websocket-accept")) {
            accepts++;
            accept_ok = vlen == strlen(accept) && memcmp(value, accept, vlen) == 0;
        } else if (ascii_ieq_lower(line, llen, "sec-websocket-extensions")) {
            bad = "server chose an extension we did not offer";
        } else if (ascii_ieq_lower(line, llen, "sec-websocket-protocol")) {
            bad = "server chose a subprotocol we did not offer";
        }
    }
    if (bad == NULL && upgrades != 1)
        bad = "no single Upgrade: websocket";
    if (bad == NULL && !conn_upgrade)
        bad = "Connection does not hold upgrade";
    if (bad == NULL && (accepts != 1 || !accept_ok))
        bad = "wrong Sec-WebSocket-Accept";
    if (bad != NULL) {
        *why = bad;
        return ERR_INVALID;
    }
    return 0;
}
