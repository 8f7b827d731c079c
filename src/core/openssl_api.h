/*
 * openssl_api.h - OpenSSL, loaded on first use.
 *
 * Only the runner's WebSocket, its MCP session key (SHA-256) and the broker's upstream
 * read-ahead call OpenSSL themselves. Linked, libssl and libcrypto are mapped and relocated in every
 * credbroker process, and an exec broker whose command never calls the API
 * carried 1.7 MiB of their pages (bench W4; about 450 KiB of it private:
 * relocated data). So, as with libcurl (src/broker/curl_api.h), the library is opened with
 * dlopen() when first needed: by the runner as it connects, by the broker once
 * libcurl (which brings the same libssl.so.3) is loaded. Every symbol is resolved
 * at once (RTLD_NOW) and the library is never closed. The headers are still
 * OpenSSL's, so the types are checked at compile time.
 *
 * Macros of OpenSSL's API that expand to SSL_ctrl()/SSL_CTX_ctrl() are written
 * out where used, with the same constants.
 */
#ifndef CREDBROKER_OPENSSL_API_H
#define CREDBROKER_OPENSSL_API_H

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* One pointer per OpenSSL function of the same name. */
struct openssl_api {
    /* libssl */
    const SSL_METHOD *(*TLS_client_method)(void);
    SSL_CTX *(*SSL_CTX_new)(const SSL_METHOD *method);
    void (*SSL_CTX_free)(SSL_CTX *ctx);
    long (*SSL_CTX_ctrl)(SSL_CTX *ctx, int cmd, long larg, void *parg);
    uint64_t (*SSL_CTX_set_options)(SSL_CTX *ctx, uint64_t op);
    void (*SSL_CTX_set_verify)(SSL_CTX *ctx, int mode, SSL_verify_cb cb);
    int (*SSL_CTX_load_verify_locations)(SSL_CTX *ctx, const char *file, const char *dir);
    int (*SSL_CTX_set_default_verify_paths)(SSL_CTX *ctx);
    void (*SSL_CTX_set_default_read_buffer_len)(SSL_CTX *ctx, size_t len);
    void (*SSL_CTX_set_msg_callback)(SSL_CTX *ctx,
                                     void (*cb)(int write_p, int version, int content_type,
                                                const void *buf, size_t len, SSL *ssl,
                                                void *arg));
    SSL *(*SSL_new)(SSL_CTX *ctx);
    void (*SSL_free)(SSL *ssl);
    long (*SSL_ctrl)(SSL *ssl, int cmd, long larg, void *parg);
    void (*SSL_set_bio)(SSL *ssl, BIO *rbio, BIO *wbio);
    BIO *(*SSL_get_rbio)(const SSL *ssl);
    BIO *(*SSL_get_wbio)(const SSL *ssl);
    void (*SSL_set_connect_state)(SSL *ssl);
    X509_VERIFY_PARAM *(*SSL_get0_param)(SSL *ssl);
    int (*SSL_set1_host)(SSL *ssl, const char *hostname);
    int (*SSL_do_handshake)(SSL *ssl);
    int (*SSL_is_init_finished)(const SSL *ssl);
    long (*SSL_get_verify_result)(const SSL *ssl);
    int (*SSL_read)(SSL *ssl, void *buf, int num);
    int (*SSL_write)(SSL *ssl, const void *buf, int num);
    int (*SSL_get_error)(const SSL *ssl, int ret);
    int (*SSL_shutdown)(SSL *ssl);
    int (*SSL_has_pending)(const SSL *ssl);
    /* libcrypto */
    BIO *(*BIO_new)(const BIO_METHOD *type);
    const BIO_METHOD *(*BIO_s_mem)(void);
    int (*BIO_free)(BIO *bio);
    int (*BIO_read)(BIO *bio, void *data, int dlen);
    int (*BIO_write)(BIO *bio, const void *data, int dlen);
    size_t (*BIO_ctrl_pending)(BIO *bio);
    unsigned long (*ERR_peek_last_error)(void);
    void (*ERR_error_string_n)(unsigned long e, char *buf, size_t len);
    void (*ERR_clear_error)(void);
    const char *(*X509_verify_cert_error_string)(long n);
    void (*X509_VERIFY_PARAM_set_hostflags)(X509_VERIFY_PARAM *param, unsigned int flags);
    int (*X509_VERIFY_PARAM_set1_ip_asc)(X509_VERIFY_PARAM *param, const char *ipasc);
    int (*RAND_bytes)(unsigned char *buf, int num);
    int (*EVP_EncodeBlock)(unsigned char *t, const unsigned char *f, int n);
    int (*EVP_Digest)(const void *data, size_t count, unsigned char *md, unsigned int *size,
                      const EVP_MD *type, ENGINE *impl);
    const EVP_MD *(*EVP_sha1)(void);
    const EVP_MD *(*EVP_sha256)(void);
};

/* Loads libssl.so.3 (and with it libcrypto.so.3) the first time; later calls return the
 * same table. Returns NULL, and logs why, when the library or a symbol is missing. Not
 * thread-safe: the loop thread only. */
const struct openssl_api *openssl_api_get(void);

#endif
