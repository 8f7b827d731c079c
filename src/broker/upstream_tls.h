/*
 * upstream_tls.h - OpenSSL read-ahead on libcurl's upstream TLS connections.
 *
 * Without read-ahead OpenSSL reads every TLS record with two recv(2) calls (its
 * 5-byte header, then the rest): a 1 GiB download through the broker was 141,000
 * recvfrom calls in 2 s (bench W3, perf stat). With read-ahead one recv(2) takes
 * whatever the socket holds, up to UPSTREAM_TLS_READ_BUFFER.
 *
 * libcurl 7.88 is not written for it: before it waits for the socket again it asks
 * SSL_pending(), which counts decrypted bytes only, not whole records read ahead
 * and not yet parsed. The last records of a body could sit in OpenSSL's buffer
 * while libcurl waits for a socket that stays quiet. upstream.c makes up for it:
 * after every call into libcurl it tells libcurl "readable" for each socket whose
 * connection has such records (upstream_tls_has_unread), for as long as that makes
 * OpenSSL parse records (the callback below installs a counter of them).
 */
#ifndef CREDBROKER_UPSTREAM_TLS_H
#define CREDBROKER_UPSTREAM_TLS_H

#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>

#define UPSTREAM_TLS_READ_BUFFER (128 * 1024)

/* True when read-ahead can be used: libcurl's TLS is OpenSSL 3 (the callback below gets
 * an SSL_CTX) and no HTTPS proxy is configured in the environment (a TLS tunnel inside
 * TLS has a second SSL whose buffer upstream.c cannot see). ssl_version is
 * curl_version_info()->ssl_version. */
bool upstream_tls_read_ahead_usable(const char *ssl_version);

/* CURLOPT_SSL_CTX_FUNCTION: read-ahead with a large read buffer, and a record counter.
 * CURLOPT_SSL_CTX_DATA must point to the uint64_t that counts parsed records. */
CURLcode upstream_tls_ctx_cb(CURL *easy, void *ssl_ctx, void *records_in);

/* Whether the SSL (CURLINFO_TLS_SSL_PTR's internals) holds received bytes it has not
 * handed out yet, decrypted or not. */
bool upstream_tls_has_unread(void *ssl);

#endif
