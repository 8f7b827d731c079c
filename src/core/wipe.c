/*
 * wipe.c - allocator halves that wipe what they free. See wipe.h.
 */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "wipe.h"

void wipe_free(void *p)
{
    if (p == NULL)
        return;
    explicit_bzero(p, malloc_usable_size(p));
    free(p);
}

void *wipe_realloc(void *p, size_t size)
{
    size_t old;
    void *n;

    if (p == NULL)
        return malloc(size);
    if (size == 0) {
        wipe_free(p);
        return NULL;
    }
    if ((n = malloc(size)) == NULL)
        return NULL;
    old = malloc_usable_size(p);
    memcpy(n, p, old < size ? old : size);
    wipe_free(p);
    return n;
}
