/*
 * openssl_api.c - OpenSSL, loaded on first use. See openssl_api.h.
 */
#include <stdbool.h>

#include "dlapi.h"
#include "openssl_api.h"

/* OpenSSL 3's ABI soname: every 3.x release keeps it. libcrypto comes as its dependency. */
#define OPENSSL_API_SONAME "libssl.so.3"

static struct openssl_api api;
static bool loaded;

#define SYM(name) DLAPI_SYMBOL(struct openssl_api, name, #name)
static const struct dlapi_symbol symbols[] = {
    SYM(TLS_client_method),
    SYM(SSL_CTX_new),
    SYM(SSL_CTX_free),
    SYM(SSL_CTX_ctrl),
    SYM(SSL_CTX_set_options),
    SYM(SSL_CTX_set_verify),
    SYM(SSL_CTX_load_verify_locations),
    SYM(SSL_CTX_set_default_verify_paths),
    SYM(SSL_CTX_set_default_read_buffer_len),
    SYM(SSL_CTX_set_msg_callback),
    SYM(SSL_new),
    SYM(SSL_free),
    SYM(SSL_ctrl),
    SYM(SSL_set_bio),
    SYM(SSL_get_rbio),
    SYM(SSL_get_wbio),
    SYM(SSL_set_connect_state),
    SYM(SSL_get0_param),
    SYM(SSL_set1_host),
    SYM(SSL_do_handshake),
    SYM(SSL_is_init_finished),
    SYM(SSL_get_verify_result),
    SYM(SSL_read),
    SYM(SSL_write),
    SYM(SSL_get_error),
    SYM(SSL_shutdown),
    SYM(SSL_has_pending),
    SYM(BIO_new),
    SYM(BIO_s_mem),
    SYM(BIO_free),
    SYM(BIO_read),
    SYM(BIO_write),
    SYM(BIO_ctrl_pending),
    SYM(ERR_peek_last_error),
    SYM(ERR_error_string_n),
    SYM(ERR_clear_error),
    SYM(X509_verify_cert_error_string),
    SYM(X509_VERIFY_PARAM_set_hostflags),
    SYM(X509_VERIFY_PARAM_set1_ip_asc),
    SYM(RAND_bytes),
    SYM(EVP_EncodeBlock),
    SYM(EVP_Digest),
    SYM(EVP_sha1),
    SYM(EVP_sha256),
};
#undef SYM

const struct openssl_api *openssl_api_get(void)
{
    struct openssl_api table;

    if (loaded)
        return &api;
    if (dlapi_load(OPENSSL_API_SONAME, symbols, sizeof(symbols) / sizeof(symbols[0]), &table) != 0)
        return NULL;
    api = table;
    loaded = true;
    return &api;
}
