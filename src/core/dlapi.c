/*
 * dlapi.c - a table of a shared library's functions, filled with dlopen(). See dlapi.h.
 */
#include <dlfcn.h>

#include "dlapi.h"
#include "log.h"

int dlapi_load(const char *soname, const struct dlapi_symbol *symbols, size_t n, void *table)
{
    void *lib;

    /* RTLD_LOCAL: nothing else in the process binds to these symbols by accident. dlsym on
     * the handle also searches the library's own dependencies (libssl's libcrypto). */
    if ((lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL)) == NULL) {
        log_error("cannot load %s: %s", soname, dlerror());
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        void *fn = dlsym(lib, symbols[i].name);

        if (fn == NULL) {
            log_error("%s has no %s", soname, symbols[i].name);
            return -1;
        }
        /* POSIX guarantees a data pointer from dlsym converts to a function pointer. */
        *(void **)((char *)table + symbols[i].offset) = fn;
    }
    return 0;
}
