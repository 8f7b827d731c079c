/*
 * rewrite.h - building the upstream URL from a child's request-target.
 *
 * The broker never forwards the child's target as it came: it takes only the
 * path and query, checks the path has no dot segment or encoded slash that
 * could slip past a policy glob, and puts them under the configured upstream
 * base (DESIGN.md section 2). In the default injection mode it also removes
 * every query parameter that names the credential and appends exactly one
 * carrying the real key. The child's authority (absolute-form, Host) is
 * never forwarded: it only picks the route (route.h), whose base this is.
 *
 * Everything here is pure: no I/O, no allocation except through the caller's
 * buf. Headers (Host, the injected header, hop-by-hop) are built elsewhere.
 */
#ifndef CREDBROKER_REWRITE_H
#define CREDBROKER_REWRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* How the key reaches the upstream. */
enum inject_mode {
    INJECT_QUERY,  /* ?NAME=<key percent-encoded> */
    INJECT_HEADER, /* NAME: key */
    INJECT_BEARER, /* Authorization: Bearer key */
};

#define INJECT_NAME_MAX 128
#define INJECT_DEFAULT "query:app_key"

struct inject {
    enum inject_mode mode;
    char name[INJECT_NAME_MAX + 1]; /* NUL-terminated; "" for INJECT_BEARER */
    size_t name_len;
};

/*
 * Parses "query:NAME", "header:NAME" or "bearer" (the prefixes are lower-case);
 * NULL means INJECT_DEFAULT. For header, NAME must be a non-empty RFC 9110
 * token. For query, NAME must be non-empty printable ASCII without '&', '=',
 * '#', '%' or '+' (so it is its own raw and decoded form). NAME is at most
 * INJECT_NAME_MAX bytes. Returns 0 or ERR_INVALID (*out is zeroed first).
 */
int inject_parse(const char *spec, struct inject *out);

#define UPSTREAM_HOST_MAX 255  /* host as written: a DNS name, IPv4, or [IPv6] */
#define UPSTREAM_PATH_MAX 2048 /* base path */
/* "https://" + host + ":65535" */
#define UPSTREAM_ORIGIN_MAX (8 + UPSTREAM_HOST_MAX + 6)

/*
 * A parsed upstream base URL. Caller-allocated, holds no pointers, needs no
 * free. Read-only after upstream_base_parse().
 */
struct upstream_base {
    bool tls;                             /* scheme is https */
    uint16_t port;                        /* explicit, or 80/443 by scheme */
    char origin[UPSTREAM_ORIGIN_MAX + 1]; /* "scheme://host[:port]", NUL-terminated */
    size_t origin_len;
    size_t host_off;                  /* origin + host_off is the Host header value */
    char path[UPSTREAM_PATH_MAX + 1]; /* "" or "/base/path" without trailing '/' */
    size_t path_len;
};

/*
 * Parses "http[s]://host[:port][/base/path]". The scheme (any case) must be
 * http or https; host must be a DNS name or IPv4 literal (ALPHA DIGIT - . _ ~)
 * or a bracketed IPv6 literal without zone; port 1-65535 (a scheme's default
 * port is dropped from the origin); the path follows the same rules as a
 * child's path (see rewrite_url) and loses its trailing '/'s. Scheme and host
 * are lower-cased. No userinfo, query or fragment, not even an empty one.
 * Returns 0 or ERR_BAD_URL (*out is zeroed first).
 */
int upstream_base_parse(const char *url, struct upstream_base *out);

/* Host header value for b: "host", or "host:port" for a non-default port. Caller does not free. */
const char *upstream_base_host(const struct upstream_base *b);

/* Append the key as given, not percent-encoded (for an audit display, or a key that
 * rewrite_key_is_unreserved says encoding leaves as it is). */
#define REWRITE_KEY_VERBATIM 0x1u

/* True if every byte of key is ALPHA DIGIT - . _ ~: percent-encoding leaves it as it is. */
bool rewrite_key_is_unreserved(const uint8_t *key, size_t len);

/*
 * Appends to out the upstream URL for a child's request-target:
 *   origin + base path + child path [+ "?" + query]
 * The target is origin-form ("/p?q") or absolute-form ("http[s]://any/p?q",
 * whose authority is ignored; an empty path there means "/"). Asterisk-form,
 * authority-form, other schemes, bytes outside VCHAR, a raw '\', a malformed
 * %-escape in the path, a dot segment ("." or "..", raw or %2e-encoded, also
 * before a ';' or %3b parameter), %2f/%5c inside a segment, a %25 that a second
 * decoding would read as the start of an escape (%25 then a hex digit, '%',
 * 'u' or 'U': %252e, %252f, %25%32%65) and an escape of a byte that only overlong
 * UTF-8 uses (%c0, %c1, %f5-%ff; %e0 not followed by %a0-%bf, %f0 not
 * followed by %90-%bf: %c0%ae, %e0%80%ae) are all refused with
 * ERR_HTTP_BAD_REQUEST, for upstreams that decode twice or leniently. A
 * fragment is dropped.
 *
 * INJECT_QUERY: every parameter whose decoded name (%XX and '+' as space)
 * equals inj->name is removed, empty pieces ("&&") are dropped, the others keep
 * their order and raw bytes, and "NAME=<key>" is appended last, the key with
 * every byte outside ALPHA DIGIT - . _ ~ written as upper-case %XX (as given
 * with REWRITE_KEY_VERBATIM). Other modes copy the query untouched, a bare '?'
 * included; key may then be NULL.
 *
 * out should be a BUF_WIPE buf: it will hold the key. Returns 0,
 * ERR_HTTP_BAD_REQUEST, or ERR_TOO_LARGE/ERR_NOMEM from out; on error out is
 * left as it was.
 */
int rewrite_url(struct buf *out, const struct upstream_base *base, const char *target,
                size_t target_len, const struct inject *inj, const uint8_t *key, size_t key_len,
                unsigned flags) __attribute__((warn_unused_result));

/*
 * True if the raw query parameter name raw[0..len) decodes (%XX, '+' as space; a
 * malformed escape stays literal) to exactly name[0..name_len): the match the
 * rewrite uses for the sentinel, shared with clients that must agree with it.
 */
bool rewrite_param_name_equals(const char *raw, size_t len, const char *name, size_t name_len);

/*
 * The path and the query of a request-target, for policy matching, from one validation
 * (as rewrite_url validates). The path has no query and no fragment: a view into target,
 * or a static "/" for an absolute-form target with an empty path. The query is what
 * follows '?' up to any '#': a view into target, or NULL and 0 when there is no '?'.
 * Caller frees neither. Returns 0 or ERR_HTTP_BAD_REQUEST (both NULL and 0).
 */
int rewrite_target_parts(const char *target, size_t len, const char **path, size_t *path_len,
                         const char **query, size_t *query_len);

#endif
