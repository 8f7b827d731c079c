/*
 * upstream_tls.c - OpenSSL read-ahead on libcurl's upstream TLS connections.
 * See upstream_tls.h.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "openssl_api.h"
#include "upstream_tls.h"

/* Set by upstream_tls_read_ahead_usable() before anything below runs. */
static const struct openssl_api *ossl;

/* The proxy variables libcurl reads for an https:// URL, in its order. */
static const char *const proxy_vars[] = {"https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"};

bool upstream_tls_read_ahead_usable(const char *ssl_version)
{
    if (ssl_version == NULL || strncmp(ssl_version, "OpenSSL/3", 9) != 0)
        return false;
    /* libcurl has loaded libssl.so.3 already: this opens the same library. */
    if (ossl == NULL && (ossl = openssl_api_get()) == NULL)
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
    ossl->SSL_CTX_ctrl(ctx, SSL_CTRL_SET_READ_AHEAD, 1, NULL);
    ossl->SSL_CTX_set_default_read_buffer_len(ctx, UPSTREAM_TLS_READ_BUFFER);
    ossl->SSL_CTX_set_msg_callback(ctx, on_tls_msg);
    ossl->SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MSG_CALLBACK_ARG, 0, records_in);
    return CURLE_OK;
}

bool upstream_tls_has_unread(void *ssl)
{
    return ossl->SSL_has_pending(ssl) == 1;
}
