/*
 * mcp_key.h - the key an MCP connection is kept under (RUNNER-OPS.md 9.4): SHA-256 of the
 * whole server config, so that a connection is reused only for exactly the config that
 * opened it (no user's dynamic_headers ever serve another user's call).
 *
 * The config is written in one canonical form, compact JSON with sorted keys, every
 * member always present (a Go-struct view: a string not given is "", a list or map not
 * given is empty, as given-empty):
 *
 *   {"args":[...],"command":"...","dynamic_headers":{...},"env":{...},"headers":{...},
 *    "name":"...","tls_skip_verify":false,"transport":"...","url":"..."}
 *
 * Map keys are sorted byte for byte (UTF-8 byte order is code point order); strings are
 * escaped as Python's json.dumps(ensure_ascii=False) escapes them (\" \\ \b \f \n \r \t,
 * other control bytes \u00xx in lower case, everything else as is), so the form is
 * json.dumps(cfg, sort_keys=True, separators=(',', ':'), ensure_ascii=False) and can be
 * checked with any Python. Hence: configs that differ in any member's value get different
 * keys (the form is injective: JSON strings are escaped, and opargs refuses NUL bytes);
 * configs equal as Go values get equal keys whatever the order or case of the keys they
 * were sent with; an absent map, list or string and an empty one get the same key (they
 * behave the same: Go's own marshalling of the struct, with its omitempty tags, also
 * writes neither). Should a map hold a key twice (opargs_parse never leaves one), the
 * later entry counts, as Go's map assignment would.
 *
 * The key and the serialized form hold credentials (headers, env): the key is never
 * logged, and the form is wiped before it is freed.
 */
#ifndef CREDBROKER_MCP_KEY_H
#define CREDBROKER_MCP_KEY_H

#include <stdint.h>

#include "opargs.h"

#define MCP_KEY_LEN 32

/* Computes the key of s (as opargs_parse fills it: NULL strings are "", map keys never
 * NULL) into out. Returns 0, ERR_NOMEM, or -EIO when the digest fails; out is all zero
 * then. */
int mcp_key_compute(const struct mcp_server_args *s, uint8_t out[MCP_KEY_LEN])
    __attribute__((warn_unused_result));

/* The key as 64 lower-case hex digits and a NUL, for tests: never to be logged. */
void mcp_key_hex(const uint8_t key[MCP_KEY_LEN], char out[2 * MCP_KEY_LEN + 1]);

#endif
