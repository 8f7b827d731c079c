/* Unit tests for src/runner/ws_upgrade.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "err.h"
#include "ws_upgrade.h"

#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* A correct 101 with the given header lines in the middle. */
static int check(const char *lines, int *status, const char **why)
{
    char h[1024];
    int n = snprintf(h, sizeof(h), "HTTP/1.1 101 Switching Protocols\r\n%s\r\n", lines);

    assert_true(n > 0 && (size_t)n < sizeof(h));
    return ws_upgrade_check(h, (size_t)n, ACCEPT, status, why);
}

static void assert_refused(const char *lines, const char *why_part)
{
    const char *why = NULL;
    int status = -1;

    if (check(lines, &status, &why) != ERR_INVALID)
        fail_msg("accepted: %s", lines);
    assert_int_equal(status, 101);
    assert_non_null(why);
    if (strstr(why, why_part) == NULL)
        fail_msg("\"%s\" does not say \"%s\" for: %s", why, why_part, lines);
}

static void test_ws_upgrade_accepts_the_servers_handshake(void **state)
{
    const char *why = "unset";
    int status = 0;

    (void)state;
    assert_int_equal(check("Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Accept: " ACCEPT "\r\n",
                           &status, &why),
                     0);
    assert_int_equal(status, 101);
    assert_null(why);
    /* Names and the Upgrade value in any case, OWS around values, Connection as a list. */
    assert_int_equal(check("UPGRADE:   WebSocket \r\nconnection: keep-alive, upgrade\r\n"
                           "sec-websocket-accept:\t" ACCEPT "\r\nServer: x\r\n",
                           &status, &why),
                     0);
}

static void test_ws_upgrade_reports_a_refusal_with_its_status(void **state)
{
    static const char head[] = "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n";
    const char *why = NULL;
    int status = 0;

    (void)state;
    assert_int_equal(ws_upgrade_check(head, sizeof(head) - 1, ACCEPT, &status, &why),
                     ERR_INVALID);
    assert_int_equal(status, 401);
    assert_non_null(why);
}

static void test_ws_upgrade_refuses_a_malformed_status_line(void **state)
{
    static const char *const lines[] = {"HTTP/2 101 x", "HTTP/1.1 01 x", "HTTP/1.1 1010",
                                        "HTTP/1.1  101", "HTTP/1.x 101", "http/1.1 101",
                                        "HTTP/1.1 101x"};
    char h[128];
    const char *why;
    int status, n;

    (void)state;
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        n = snprintf(h, sizeof(h), "%s\r\n\r\n", lines[i]);
        status = -1;
        if (ws_upgrade_check(h, (size_t)n, ACCEPT, &status, &why) != ERR_INVALID)
            fail_msg("accepted status line: %s", lines[i]);
        assert_int_equal(status, 0);
    }
    assert_int_equal(ws_upgrade_status_line("HTTP/1.0 101", 12, &status), 0);
    assert_int_equal(status, 101);
}

static void test_ws_upgrade_refuses_what_rfc_6455_forbids(void **state)
{
    (void)state;
    assert_refused("Connection: Upgrade\r\nSec-WebSocket-Accept: " ACCEPT "\r\n", "Upgrade");
    assert_refused("Upgrade: websocket\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: " ACCEPT "\r\n",
                   "Upgrade");
    assert_refused("Upgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " ACCEPT "\r\n",
                   "websocket");
    assert_refused("Upgrade: websocket\r\nConnection: keep-alive\r\n"
                   "Sec-WebSocket-Accept: " ACCEPT "\r\n",
                   "Connection");
    assert_refused("Upgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo\r\n",
                   "Sec-WebSocket-Accept");
    assert_refused("Upgrade: websocket\r\nConnection: Upgrade\r\n", "Sec-WebSocket-Accept");
    assert_refused("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " ACCEPT
                   "\r\nSec-WebSocket-Accept: " ACCEPT "\r\n",
                   "Sec-WebSocket-Accept");
    assert_refused("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " ACCEPT
                   "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n",
                   "extension");
    assert_refused("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " ACCEPT
                   "\r\nSec-WebSocket-Protocol: chat\r\n",
                   "subprotocol");
}

static void test_ws_upgrade_refuses_malformed_header_lines(void **state)
{
    (void)state;
    assert_refused("Upgrade: websocket\r\n folded\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: " ACCEPT "\r\n",
                   "folded");
    assert_refused("Upgrade: websocket\r\nno colon here\r\n", "malformed header line");
    assert_refused(": empty name\r\n", "malformed header line");
    assert_refused("Bad Name: x\r\n", "header name");
    assert_refused("X-A: a\x01z\r\nUpgrade: websocket\r\n", "control byte");
}

/* The caller passes a head ending in CRLFCRLF; one that does not is refused, not read past. */
static void test_ws_upgrade_refuses_a_head_cut_short(void **state)
{
    static const char head[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: webso";
    const char *why = NULL;
    int status = 0;

    (void)state;
    assert_int_equal(ws_upgrade_check(head, sizeof(head) - 1, ACCEPT, &status, &why),
                     ERR_INVALID);
    assert_non_null(why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ws_upgrade_accepts_the_servers_handshake),
        cmocka_unit_test(test_ws_upgrade_reports_a_refusal_with_its_status),
        cmocka_unit_test(test_ws_upgrade_refuses_a_malformed_status_line),
        cmocka_unit_test(test_ws_upgrade_refuses_what_rfc_6455_forbids),
        cmocka_unit_test(test_ws_upgrade_refuses_malformed_header_lines),
        cmocka_unit_test(test_ws_upgrade_refuses_a_head_cut_short),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
