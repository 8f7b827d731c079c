/*
 * wipe.h - allocator halves for libraries whose freed blocks can hold a key or a token:
 * jansson (the runner's messages) and nghttp2 (the broker's request headers). Blocks
 * stay plain malloc() blocks, so what such a library hands out can be released with
 * free(), and a block allocated before the hooks were set is freed correctly.
 */
#ifndef CREDBROKER_WIPE_H
#define CREDBROKER_WIPE_H

#include <stddef.h>

/* free() after wiping the whole block (malloc_usable_size: no size header needed).
 * Accepts NULL. */
void wipe_free(void *p);

/* realloc() that leaves no copy behind: a new block, the bytes copied, the old one wiped
 * and freed. NULL (p untouched) when out of memory; size 0 frees p and returns NULL. */
void *wipe_realloc(void *p, size_t size);

#endif
