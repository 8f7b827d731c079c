/*
 * reqheaders.c - see reqheaders.h.
 */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "reqheaders.h"
#include "response.h"

/* Adds "Name: value" (NUL-terminated) to lines; the array of starts is built later. */
static int put_line(struct buf *lines, const char *name, size_t nlen, const char *value,
                    size_t vlen)
{
    int r;

    if ((r = buf_put(lines, name, nlen)) != 0 || (r = buf_put(lines, ": ", 2)) != 0 ||
        (r = buf_put(lines, value, vlen)) != 0 || (r = buf_put(lines, "", 1)) != 0)
        return r;
    return 0;
}

int reqheaders_build(struct buf *lines, const struct http1_request *hr, const struct inject *inj,
                     const uint8_t *key, size_t key_len)
{
    size_t first_connection = hr->num_headers; /* none */
    int r;

    for (size_t i = 0; i < hr->num_headers && first_connection == hr->num_headers; i++) {
        const struct http1_iov *name = &hr->headers[i].name;

        if (http1_field_of(name->base, name->len) == HTTP1_FIELD_CONNECTION)
            first_connection = i;
    }
    for (size_t i = 0; i < hr->num_headers; i++) {
        const struct http1_header *h = &hr->headers[i];

        /* Hop-by-hop, ours to set (Host, Content-Length, Expect, Accept-Encoding), or the
         * credential's: never the child's. */
        switch (http1_field_of(h->name.base, h->name.len)) {
        case HTTP1_FIELD_OTHER:
            break;
        case HTTP1_FIELD_AUTHORIZATION:
            if (inj->mode == INJECT_BEARER) /* ours replaces the child's */
                continue;
            break;
        default:
            continue;
        }
        if (http1_connection_lists(hr->headers, first_connection, hr->num_headers, h->name.base,
                                   h->name.len) ||
            (inj->mode == INJECT_HEADER && h->name.len == inj->name_len &&
             strncasecmp(h->name.base, inj->name, inj->name_len) == 0))
            continue;
        if ((r = put_line(lines, h->name.base, h->name.len, h->value.base, h->value.len)) != 0)
            return r;
    }
    /* Whatever the child asked for: what the upstream client decodes (upstream_req.c), so
     * the scrubber sees plaintext and the child gets it decoded. */
    if ((r = buf_put(lines, REQHEADERS_ACCEPT_ENCODING, sizeof(REQHEADERS_ACCEPT_ENCODING))) != 0)
        return r;
    if (inj->mode == INJECT_HEADER)
        return put_line(lines, inj->name, inj->name_len, (const char *)key, key_len);
    if (inj->mode == INJECT_BEARER) {
        if ((r = buf_put_str(lines, "Authorization: Bearer ")) != 0 ||
            (r = buf_put(lines, key, key_len)) != 0 ||
            (r = buf_put(lines, "", 1)) != 0)
            return r;
    }
    return 0;
}

size_t reqheaders_split(const struct buf *lines, const char **starts, size_t max)
{
    const char *p = (const char *)buf_ptr(lines), *end = p + buf_len(lines);
    size_t n = 0;

    while (p < end && n < max) {
        starts[n++] = p;
        p += strlen(p) + 1;
    }
    return n;
}
