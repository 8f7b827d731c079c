/* Unit tests for src/broker/upstream_tls.c: the premise of read-ahead (records OpenSSL
 * holds that SSL_pending() does not count) on a real TLS connection over a socketpair. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "upstream_tls.h"

static void test_read_ahead_needs_openssl_and_no_https_proxy(void **state)
{
    static const char *const vars[] = {"https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"};

    for (size_t i = 0; i < 4; i++)
        unsetenv(vars[i]);
    assert_false(upstream_tls_read_ahead_usable(NULL));
    assert_false(upstream_tls_read_ahead_usable("GnuTLS/3.7.9"));
    assert_false(upstream_tls_read_ahead_usable("OpenSSL/1.1.1w"));
    assert_true(upstream_tls_read_ahead_usable("OpenSSL/3.0.17"));
    /* A plain HTTP proxy tunnels with CONNECT: one TLS session, read-ahead still fine. */
    setenv("HTTPS_PROXY", "http://proxy.example:3128", 1);
    assert_true(upstream_tls_read_ahead_usable("OpenSSL/3.0.17"));
    for (size_t i = 0; i < 4; i++) {
        setenv(vars[i], "HTTPS://proxy.example:443", 1);
        assert_false(upstream_tls_read_ahead_usable("OpenSSL/3.0.17"));
        unsetenv(vars[i]);
    }
    unsetenv("HTTPS_PROXY");
}

/* A server context with a throwaway self-signed P-256 certificate. */
static SSL_CTX *server_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();

    assert_non_null(ctx);
    assert_non_null(key);
    assert_non_null(cert);
    SSL_CTX_set_num_tickets(ctx, 0); /* no session tickets after the handshake: exact counts */
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                               (const unsigned char *)"test", -1, -1, 0);
    X509_set_issuer_name(cert, X509_get_subject_name(cert));
    assert_true(X509_sign(cert, key, EVP_sha256()) > 0);
    assert_int_equal(SSL_CTX_use_certificate(ctx, cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, key), 1);
    X509_free(cert);
    EVP_PKEY_free(key);
    return ctx;
}

/* Both handshakes on non-blocking ends of one socketpair, stepped in turn. */
static void handshake(SSL *client, SSL *server)
{
    bool cdone = false, sdone = false;

    for (int i = 0; i < 1000 && !(cdone && sdone); i++) {
        if (!cdone)
            cdone = SSL_connect(client) == 1;
        if (!sdone)
            sdone = SSL_accept(server) == 1;
    }
    assert_true(cdone && sdone);
}

static void test_read_ahead_holds_records_ssl_pending_does_not_count(void **state)
{
    SSL_CTX *sctx = server_ctx(), *cctx = SSL_CTX_new(TLS_client_method());
    uint64_t records = 0, before;
    unsigned char piece[1000], got[1000];
    SSL *client, *server;
    int sv[2];

    /* Loads the module's OpenSSL table (the broker does this once libcurl is loaded). */
    assert_true(upstream_tls_read_ahead_usable("OpenSSL/3.0.17"));
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    assert_int_equal(upstream_tls_ctx_cb(NULL, cctx, &records), CURLE_OK);
    assert_int_equal(SSL_CTX_get_read_ahead(cctx), 1);
    client = SSL_new(cctx);
    server = SSL_new(sctx);
    SSL_set_fd(client, sv[0]);
    SSL_set_fd(server, sv[1]);
    handshake(client, server);
    assert_true(records > 0); /* the server's handshake records were counted */

    /* Three records in flight; the client reads one piece. */
    for (int i = 0; i < 3; i++) {
        memset(piece, 'a' + i, sizeof(piece));
        assert_int_equal(SSL_write(server, piece, sizeof(piece)), (int)sizeof(piece));
    }
    before = records;
    assert_int_equal(SSL_read(client, got, sizeof(got)), (int)sizeof(got));
    assert_int_equal(got[0], 'a');
    /* One read(2) took all three; one was parsed. What is left is whole records:
     * SSL_pending() says nothing, upstream_tls_has_unread() says there is more. */
    assert_int_equal(SSL_pending(client), 0);
    assert_true(upstream_tls_has_unread(client));
    assert_int_equal(records - before, 1);
    for (int i = 1; i < 3; i++) {
        assert_int_equal(SSL_read(client, got, sizeof(got)), (int)sizeof(got));
        assert_int_equal(got[0], 'a' + i);
    }
    assert_int_equal(records - before, 3);
    assert_false(upstream_tls_has_unread(client));

    SSL_free(client);
    SSL_free(server);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_ahead_needs_openssl_and_no_https_proxy),
        cmocka_unit_test(test_read_ahead_holds_records_ssl_pending_does_not_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
