/*
 * dlapi.h - a table of a shared library's functions, filled with dlopen().
 *
 * For a library credbroker loads only when it first needs it, because linking it
 * would cost every process at start-up (libcurl: src/runner/curl_api.h has the
 * numbers). Each caller keeps its own struct of function pointers, named as the
 * library names them, and lists which symbol goes at which offset.
 */
#ifndef CREDBROKER_DLAPI_H
#define CREDBROKER_DLAPI_H

#include <stddef.h>

struct dlapi_symbol {
    const char *name;
    size_t offset; /* of its pointer in the caller's table */
};

/* One entry of a symbol list: the pointer member `field` of `type`, found as `name`. */
#define DLAPI_SYMBOL(type, field, name) {(name), offsetof(type, field)}

/*
 * Opens soname (RTLD_NOW: every symbol of its tree resolved here, not mid-request;
 * never closed) and stores the address of each of the n symbols at table + offset.
 * Returns 0, or -1 after logging what is missing; the table is then only partly filled
 * and must not be used.
 */
int dlapi_load(const char *soname, const struct dlapi_symbol *symbols, size_t n, void *table);

#endif
