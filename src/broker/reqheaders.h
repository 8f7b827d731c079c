/*
 * reqheaders.h - the header lines of the upstream request, built from a
 * child's request head (DESIGN.md section 2).
 *
 * The child's end-to-end headers pass; hop-by-hop ones (and those its
 * Connection header names), Host, the framing headers, Expect and
 * Accept-Encoding do not, nor the child's own copy of the injection header.
 * The broker asks for the codings its upstream client decodes
 * (REQHEADERS_ACCEPT_ENCODING), so that the scrubber sees plaintext and the child
 * gets it decoded. In header and bearer modes the credential is added.
 */
#ifndef CREDBROKER_REQHEADERS_H
#define CREDBROKER_REQHEADERS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "http1.h"
#include "rewrite.h"

#define REQHEADERS_MAX_LINES (HTTP1_MAX_HEADERS + 8)
/* The codings src/http/decode.h decodes. */
#define REQHEADERS_ACCEPT_ENCODING "Accept-Encoding: gzip, deflate, br, zstd"

/*
 * Appends the lines to `lines`, each "Name: value" NUL-terminated. lines
 * should be a BUF_WIPE buf (it may hold the key). key may be NULL in query
 * mode. Returns 0 or a code from the buffer.
 */
int reqheaders_build(struct buf *lines, const struct http1_request *hr, const struct inject *inj,
                     const uint8_t *key, size_t key_len) __attribute__((warn_unused_result));

/* Points starts[] at the lines of a buffer filled by reqheaders_build; returns how many
 * (at most max). The pointers are valid until lines changes. */
size_t reqheaders_split(const struct buf *lines, const char **starts, size_t max);

#endif
