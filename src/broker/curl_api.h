/*
 * curl_api.h - libcurl, loaded on first use.
 *
 * libcurl as Debian builds it pulls in 30-odd libraries (GnuTLS, Kerberos, LDAP,
 * SSH, ...), and loading them and initialising OpenSSL costs an idle broker about
 * 7 MiB of resident memory (bench W4). Most commands never call the API, so the
 * broker maps libcurl only when its first request goes upstream: dlopen() of the
 * ABI-stable soname, every symbol resolved at once (RTLD_NOW), and never unloaded.
 * The headers are still curl's own, so the types are checked at compile time.
 */
#ifndef CREDBROKER_CURL_API_H
#define CREDBROKER_CURL_API_H

#include <curl/curl.h>

/* The calls upstream.c and webfetch.c make, one pointer per libcurl function of the same
 * name. */
struct curl_api {
    CURLcode (*global_init)(long flags);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_setopt)(CURLM *multi, CURLMoption option, ...);
    CURLMcode (*multi_add_handle)(CURLM *multi, CURL *easy);
    CURLMcode (*multi_remove_handle)(CURLM *multi, CURL *easy);
    CURLMcode (*multi_assign)(CURLM *multi, curl_socket_t fd, void *p);
    CURLMcode (*multi_socket_action)(CURLM *multi, curl_socket_t fd, int ev_bitmask,
                                     int *running);
    CURLMsg *(*multi_info_read)(CURLM *multi, int *msgs_in_queue);
    CURLMcode (*multi_cleanup)(CURLM *multi);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *easy, CURLoption option, ...);
    CURLcode (*easy_getinfo)(CURL *easy, CURLINFO info, ...);
    void (*easy_cleanup)(CURL *easy);
    const char *(*easy_strerror)(CURLcode code);
    struct curl_slist *(*slist_append)(struct curl_slist *list, const char *s);
    void (*slist_free_all)(struct curl_slist *list);
    /* The URL API: webfetch reads each hop's scheme, host and port (runner/webfetch.c). */
    CURLU *(*url)(void);
    void (*url_cleanup)(CURLU *handle);
    CURLUcode (*url_set)(CURLU *handle, CURLUPart what, const char *part, unsigned int flags);
    CURLUcode (*url_get)(const CURLU *handle, CURLUPart what, char **part, unsigned int flags);
    const char *(*url_strerror)(CURLUcode code);
    void (*free)(void *p);
};

/* Loads libcurl and runs curl_global_init() the first time; later calls return the same
 * table. Returns NULL (and logs why, once per call) when the library cannot be loaded or
 * initialised. Not thread-safe: the broker's loop thread only. */
const struct curl_api *curl_api_get(void);

#endif
