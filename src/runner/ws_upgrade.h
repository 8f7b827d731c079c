/*
 * ws_upgrade.h - the server's answer to the WebSocket upgrade request, checked as
 * RFC 6455 4.1 asks of a client. Pure: ws.c reads the head and reports the outcome.
 * Part of the ws module (ws.h).
 */
#ifndef CREDBROKER_WS_UPGRADE_H
#define CREDBROKER_WS_UPGRADE_H

#include <stddef.h>

/* "HTTP/1.x NNN[ reason]" in s[0..len): 0 and *status, or ERR_INVALID. */
int ws_upgrade_status_line(const char *s, size_t len, int *status);

/*
 * Checks the response head h[0..len) (it ends with CRLFCRLF): status 101, exactly one
 * "Upgrade: websocket", a Connection list holding "upgrade", exactly one
 * Sec-WebSocket-Accept equal to accept, no extension or subprotocol (we offer none),
 * and header lines that are well formed (no obsolete folding, tchar names, no control
 * bytes in values). Returns 0; or ERR_INVALID with *status the response's status (0
 * when the status line is malformed; a refusal is any status but 101) and *why a
 * static description of what is wrong.
 */
int ws_upgrade_check(const char *h, size_t len, const char *accept, int *status,
                     const char **why);

#endif
