/*
 * upstream_tls.c - OpenSSL read-ahead on libcurl's upstream TLS connections.
 * See upstream_tls.h.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/ssl.h>

#include "upstream_tls.h"

/* The proxy variables libcurl reads for an https:// URL, in its order. */
static const char *const proxy_vars[] = {"https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"};

bool upstream_tls_read_ahead_usable(const char *ssl_version)
{
    if (ssl_version == NULL || strncmp(ssl_version, "OpenSSL/3", 9) != 0)
        return false;
    for (size_t i = 0; i < sizeof(proxy_vars) / sizeof(proxy_vars[0]); i++) {
        const char *v = getenv(proxy_vars[i]);

        if (v != NULL && strncasecmp(v, "https://", 8) == 0)
            return false;
    }
    return true;
}

/* Called for every record header OpenSSL parses (and for handshake messages, which are
 * not counted). */
static void on_tls_msg(int write_p, int version, int content_type, const void *buf, size_t len,
                       SSL *ssl, void *arg)
{
    (void)version, (void)buf, (void)len, (void)ssl;
    if (!write_p && content_type == SSL3_RT_HEADER)
        (*(uint64_t *)arg)++;
}

CURLcode upstream_tls_ctx_cb(CURL *easy, void *ssl_ctx, void *records_in)
{
    SSL_CTX *ctx = ssl_ctx;

    (void)easy;
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_default_read_buffer_len(ctx, UPSTREAM_TLS_READ_BUFFER);
    SSL_CTX_set_msg_callback(ctx, on_tls_msg);
    SSL_CTX_set_msg_callback_arg(ctx, records_in);
    return CURLE_OK;
}

bool upstream_tls_has_unread(void *ssl)
{
    return SSL_has_pending(ssl) == 1;
}
