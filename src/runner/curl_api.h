/*
 * curl_api.h - libcurl, loaded on first use.
 *
 * Only the runner calls libcurl (webfetch, MCP over HTTP: runner/httpc.c); the broker's
 * upstream client does without it (broker/upstream.c, src/net). Debian's libcurl pulls
 * in 22 libraries credbroker does not otherwise map (GnuTLS, nettle, Kerberos, LDAP,
 * SASL, SSH2, RTMP, psl, idn2, ...), and every credbroker process would pay for them at
 * start-up, the `credbroker exec` broker included, which never makes an HTTP request of
 * its own. Measured (issue 18) against a build that links libcurl normally, same build
 * type, best and median of 6 interleaved rounds on a shared 2-core machine:
 *   - idle `credbroker exec` broker (command `sleep`): private memory (Private_Clean +
 *     Private_Dirty, bench W4) 1,840 -> 2,472 KiB best, 1,896 -> 4,000 KiB median (the
 *     clean library pages count as private whenever no other process maps them);
 *     Private_Dirty 1,432 -> 2,030 KiB every round (relocated data of the extra
 *     libraries); RSS 10.5 -> 14.2 MiB.
 *   - idle `credbroker runner`, connected: private 2,894 -> 6,426 KiB median,
 *     Private_Dirty 2,368 -> 2,964 KiB, RSS 11.9 -> 15.4 MiB.
 *   - start-up, CPU per run (best of 8 rounds of 200): `credbroker version` 22.6 ->
 *     32.8 ms, `credbroker exec --isolation off -- /bin/true` 34.0 -> 46.9 ms (+4,150
 *     relocations at load).
 * So the library is mapped only when the runner's first webfetch or MCP-over-HTTP
 * request needs it: dlopen() of the ABI-stable soname, every symbol resolved at once
 * (RTLD_NOW), and never unloaded. The headers are still curl's own, so the types are
 * checked at compile time.
 */
#ifndef CREDBROKER_CURL_API_H
#define CREDBROKER_CURL_API_H

#include <curl/curl.h>

/* The calls httpc.c, webfetch.c and mcp_http.c make, one pointer per libcurl function of
 * the same name. */
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
    /* The URL API: webfetch reads each hop's scheme, host and port (runner/webfetch.c),
     * MCP the same of a server URL, to pick its proxy (runner/mcp_http.c). */
    CURLU *(*url)(void);
    void (*url_cleanup)(CURLU *handle);
    CURLUcode (*url_set)(CURLU *handle, CURLUPart what, const char *part, unsigned int flags);
    CURLUcode (*url_get)(const CURLU *handle, CURLUPart what, char **part, unsigned int flags);
    const char *(*url_strerror)(CURLUcode code);
    void (*free)(void *p);
};

/* Loads libcurl and runs curl_global_init() the first time; later calls return the same
 * table. Returns NULL (and logs why, once per call) when the library cannot be loaded or
 * initialised. Not thread-safe (curl_global_init is not): the runner's loop thread only. */
const struct curl_api *curl_api_get(void);

#endif
