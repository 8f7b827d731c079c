/*
 * curl_api.c - libcurl, loaded on first use. See curl_api.h.
 */
#include <dlfcn.h>
#include <stdbool.h>
#include <stddef.h>

#include "credbroker_config.h"
#include "curl_api.h"
#include "log.h"

static struct curl_api api;
static bool loaded;

/* Symbol names and where each goes, in struct order. */
static const struct {
    const char *name;
    size_t offset;
} symbols[] = {
#define SYM(field) {"curl_" #field, offsetof(struct curl_api, field)}
    SYM(global_init),      SYM(multi_init),          SYM(multi_setopt),
    SYM(multi_add_handle), SYM(multi_remove_handle), SYM(multi_assign),
    SYM(multi_socket_action), SYM(multi_info_read),  SYM(multi_cleanup),
    SYM(easy_init),        SYM(easy_setopt),         SYM(easy_getinfo),
    SYM(easy_pause),       SYM(easy_cleanup),        SYM(easy_strerror),
    SYM(slist_append),     SYM(slist_free_all),      SYM(version_info),
#undef SYM
};

const struct curl_api *curl_api_get(void)
{
    struct curl_api table;
    void *lib;

    if (loaded)
        return &api;
    /* RTLD_NOW: a missing symbol anywhere in libcurl's tree fails here, not mid-request.
     * The handle is never closed: libcurl keeps global state until exit. */
    if ((lib = dlopen(CREDBROKER_LIBCURL_SONAME, RTLD_NOW | RTLD_LOCAL)) == NULL) {
        log_error("cannot load %s: %s", CREDBROKER_LIBCURL_SONAME, dlerror());
        return NULL;
    }
    for (size_t i = 0; i < sizeof(symbols) / sizeof(symbols[0]); i++) {
        void *fn = dlsym(lib, symbols[i].name);

        if (fn == NULL) {
            log_error("%s has no %s", CREDBROKER_LIBCURL_SONAME, symbols[i].name);
            return NULL;
        }
        /* POSIX guarantees a data pointer from dlsym converts to a function pointer. */
        *(void **)((char *)&table + symbols[i].offset) = fn;
    }
    if (table.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error("curl_global_init failed");
        return NULL;
    }
    api = table;
    loaded = true;
    return &api;
}
