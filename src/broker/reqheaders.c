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

static bool iov_is(const struct http1_iov *v, const char *s)
{
    size_t len = strlen(s);

    return v->len == len && strncasecmp(v->base, s, len) == 0;
}

int reqheaders_build(struct buf *lines, const struct http1_request *hr, const struct inject *inj,
                     const uint8_t *key, size_t key_len)
{
    int conn_idx = http1_find_header(hr, "Connection", 0);
    int r;

    for (size_t i = 0; i < hr->num_headers; i++) {
        const struct http1_header *h = &hr->headers[i];
        bool listed = false;

        for (int k = conn_idx; k >= 0 && !listed;
             k = http1_find_header(hr, "Connection", (size_t)k + 1))
            listed = http1_list_has_token(hr->headers[k].value.base, hr->headers[k].value.len,
                                          h->name.base, h->name.len);
        if (listed || http1_is_hop_by_hop(h->name.base, h->name.len) || iov_is(&h->name, "Host") ||
            iov_is(&h->name, "Content-Length") || iov_is(&h->name, "Expect") ||
            iov_is(&h->name, "Accept-Encoding"))
            continue;
        if (inj->mode == INJECT_HEADER && iov_is(&h->name, inj->name))
            continue;
        if (inj->mode == INJECT_BEARER && iov_is(&h->name, "Authorization"))
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
