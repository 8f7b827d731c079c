/*
 * curl_api.c - libcurl, loaded on first use. See curl_api.h.
 */
#include <stdbool.h>

#include "credbroker_config.h"
#include "curl_api.h"
#include "dlapi.h"
#include "log.h"

static struct curl_api api;
static bool loaded;

/* Symbol names and where each goes, in struct order. */
#define SYM(field) DLAPI_SYMBOL(struct curl_api, field, "curl_" #field)
static const struct dlapi_symbol symbols[] = {
    SYM(global_init),      SYM(multi_init),          SYM(multi_setopt),
    SYM(multi_add_handle), SYM(multi_remove_handle), SYM(multi_assign),
    SYM(multi_socket_action), SYM(multi_info_read),  SYM(multi_cleanup),
    SYM(easy_init),        SYM(easy_setopt),         SYM(easy_getinfo),
    SYM(easy_cleanup),     SYM(easy_strerror),       SYM(slist_append),
    SYM(slist_free_all),   SYM(url),                 SYM(url_cleanup),
    SYM(url_set),          SYM(url_get),             SYM(url_strerror),
    SYM(free),
};
#undef SYM

const struct curl_api *curl_api_get(void)
{
    struct curl_api table;

    if (loaded)
        return &api;
    if (dlapi_load(CREDBROKER_LIBCURL_SONAME, symbols, sizeof(symbols) / sizeof(symbols[0]),
                   &table) != 0)
        return NULL;
    if (table.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error("curl_global_init failed");
        return NULL;
    }
    api = table;
    loaded = true;
    return &api;
}
