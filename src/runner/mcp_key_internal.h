/*
 * mcp_key_internal.h - mcp_key.c's canonical form, for its tests and fuzz harness only:
 * the runner itself needs nothing but the key.
 */
#ifndef CREDBROKER_MCP_KEY_INTERNAL_H
#define CREDBROKER_MCP_KEY_INTERNAL_H

#include <stddef.h>

#include "opargs.h"

/* The canonical form of s (mcp_key.h) in *out, *len bytes, not NUL-terminated. Returns 0
 * or ERR_NOMEM (then *out NULL). The caller wipes (it holds credentials) and frees *out. */
int mcp_key__form(const struct mcp_server_args *s, char **out, size_t *len)
    __attribute__((warn_unused_result));

#endif
