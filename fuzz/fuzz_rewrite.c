/*
 * fuzz_rewrite.c - the upstream URL built from a child's request-target
 * (rewrite.h: rewrite_url, rewrite_target_parts), where the key is injected.
 *
 * Input, as lines:
 *   1: the injection spec as for --inject ("query:app_key", "header:X-Key",
 *      "bearer"), optionally followed by " v" for REWRITE_KEY_VERBATIM;
 *      an unparsable spec means the default
 *   2: the key, with escapes \r \n \0 \\ \xHH (any bytes)
 *   3: the upstream base URL; an unparsable one means https://api.example.com/base
 *   4: the request-target: the rest of the input, as is
 *
 * The target is judged again here, from rewrite.h's contract: accepted iff
 * origin-form or http(s) absolute-form with a host, all VCHAR, and a path with
 * well-formed %-escapes, no raw '\', no %2f/%5c, no %25 followed by a hex
 * digit, '%', 'u' or 'U', no escape of C0, C1 or F5-FF, E0 only before an escape of
 * A0-BF and F0 only before one of 90-BF, and no dot segment ("." or "..", raw
 * or %2e, before any ';' or %3b). For an accepted target the URL must be
 * exactly origin + base path + path + query, where in query mode the query is
 * the child's parameters minus empty ones and every one whose decoded name is
 * the sentinel, in order and byte for byte, then NAME=<key, upper-case %XX
 * outside unreserved>: so exactly one parameter decodes to the sentinel name,
 * it is the last and decodes to the key. The output path never has a dot
 * segment, and decoded twice (as a lenient upstream might) it still has none
 * (before any ';'), no '\' and no '/' it did not have, nor does it once decoded
 * hold a byte that only overlong UTF-8 uses. policy_overrides_method sees every
 * query parameter named _method (decoded, any case). rewrite_target_parts
 * agrees with rewrite_url, and rewrite_param_name_equals with the decoding
 * here. A failure (bad target or a buffer too small) leaves the output buffer
 * as it was.
 *
 * Route selection (route.h, issue 21): route_request_host picks an absolute-form target's
 * authority, else the third line taken as a Host value; route_host_name is run on both, and judged against its
 * contract written again here: an IPv6 literal or a host not ending in .broker.local (any
 * case, after the port and trailing dots) names none (0); broker.local itself, more than
 * one trailing dot, a bad port (not 1-65535 in at most 5 digits), or a label that is not
 * one lower-cased 1-63 byte [a-z0-9-] label without a '-' at either end is refused (-1);
 * else the label is the route (1).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "err.h"
#include "fuzz.h"
#include "policy.h"
#include "rewrite.h"
#include "route.h"

#define PREFILL "prefill:"

/* Percent-decodes s[0..len) into dst: %XX with valid hex, '+' as space when plus; else literal. */
static size_t decode(const char *s, size_t len, bool plus, char *dst)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len && fuzz_hex((unsigned char)s[i + 1]) >= 0 &&
            fuzz_hex((unsigned char)s[i + 2]) >= 0) {
            dst[n++] =
                (char)(fuzz_hex((unsigned char)s[i + 1]) << 4 | fuzz_hex((unsigned char)s[i + 2]));
            i += 2;
        } else if (plus && s[i] == '+') {
            dst[n++] = ' ';
        } else {
            dst[n++] = s[i];
        }
    }
    return n;
}

/* True if the query parameter p[0..len) has a name that decodes to name. */
static bool param_is(const char *p, size_t len, const char *name, size_t name_len)
{
    const char *eq = memchr(p, '=', len);
    size_t nlen = eq != NULL ? (size_t)(eq - p) : len, dlen;
    char *d = fuzz_malloc(nlen);
    bool same;

    dlen = decode(p, nlen, true, d);
    same = dlen == name_len && (dlen == 0 || memcmp(d, name, dlen) == 0);
    free(d);
    return same;
}

/* A path segment (up to any ';' or %3b) that decodes to "." or "..". */
static bool is_dot_segment(const char *seg, size_t len)
{
    char d[8];
    size_t n;

    for (size_t k = 0; k < len; k++) {
        if (seg[k] == ';' || (seg[k] == '%' && k + 2 < len && fuzz_eq_ci(seg + k, 3, "%3b"))) {
            len = k;
            break;
        }
    }
    if (len > 3 * 2)
        return false;
    n = decode(seg, len, false, d);
    return (n == 1 && d[0] == '.') || (n == 2 && d[0] == '.' && d[1] == '.');
}

static bool path_has_dot_segment(const char *p, size_t len)
{
    size_t s = 0;

    for (size_t i = 0; i <= len; i++) {
        if (i == len || p[i] == '/') {
            if (is_dot_segment(p + s, i - s))
                return true;
            s = i + 1;
        }
    }
    return false;
}

/* The byte of the well-formed escape at p[k], or -1. */
static int escape_value(const char *p, size_t len, size_t k)
{
    if (k + 2 >= len || p[k] != '%' || fuzz_hex((unsigned char)p[k + 1]) < 0 ||
        fuzz_hex((unsigned char)p[k + 2]) < 0)
        return -1;
    return fuzz_hex((unsigned char)p[k + 1]) << 4 | fuzz_hex((unsigned char)p[k + 2]);
}

/* rewrite.h: no %25 that a second decoding reads as an escape, no overlong UTF-8 lead. */
static bool escape_ok(const char *p, size_t len, size_t k, int v)
{
    char next = k + 3 < len ? p[k + 3] : '\0';
    int w = escape_value(p, len, k + 3);

    if (v == '%')
        return fuzz_hex((unsigned char)next) < 0 && next != '%' && next != 'u' && next != 'U';
    if (v == 0xe0)
        return w >= 0xa0 && w <= 0xbf;
    if (v == 0xf0)
        return w >= 0x90 && w <= 0xbf;
    return v != 0xc0 && v != 0xc1 && v < 0xf5;
}

/* The output path p[0..len) as an upstream that decodes it twice reads it: no dot
 * segment before any ';', no '\', as many '/' as p; and once decoded, no C0, C1 or
 * F5-FF, E0 and F0 only before a byte that makes them the start of a shortest form. */
static void check_decoded_twice(const char *p, size_t len)
{
    char *once = fuzz_malloc(len + 1), *twice = fuzz_malloc(len + 1);
    size_t n1 = decode(p, len, false, once), n2 = decode(once, n1, false, twice), s = 0;
    size_t slashes = 0, slashes2 = 0;

    for (size_t k = 0; k < n1; k++) {
        unsigned char c = (unsigned char)once[k], d = k + 1 < n1 ? (unsigned char)once[k + 1] : 0;

        FUZZ_CHECK(c != 0xc0 && c != 0xc1 && c < 0xf5, "a byte of overlong UTF-8 in the path");
        FUZZ_CHECK(c != 0xe0 || (d >= 0xa0 && d <= 0xbf), "an overlong 3-byte form in the path");
        FUZZ_CHECK(c != 0xf0 || (d >= 0x90 && d <= 0xbf), "an overlong 4-byte form in the path");
    }
    for (size_t k = 0; k < len; k++)
        slashes += p[k] == '/';
    for (size_t k = 0; k <= n2; k++) {
        if (k < n2 && twice[k] != '/') {
            FUZZ_CHECK(twice[k] != '\\', "a backslash in the path decoded twice");
            continue;
        }
        if (k < n2)
            slashes2++;
        {
            const char *semi = memchr(twice + s, ';', k - s);
            size_t sl = semi != NULL ? (size_t)(semi - (twice + s)) : k - s;

            FUZZ_CHECK(!((sl == 1 && twice[s] == '.') ||
                         (sl == 2 && twice[s] == '.' && twice[s + 1] == '.')),
                       "a dot segment in the path decoded twice");
        }
        s = k + 1;
    }
    FUZZ_CHECK(slashes2 == slashes, "the path decoded twice has %zu '/', not %zu", slashes2,
               slashes);
    free(once);
    free(twice);
}

struct split {
    const char *path, *query;
    size_t path_len, query_len;
    bool has_query;
};

/* rewrite.h's rules for a request-target, written again. */
static bool target_ok(const char *t, size_t len, struct split *sp)
{
    size_t i = 0, e;

    memset(sp, 0, sizeof(*sp));
    if (len == 0)
        return false;
    for (size_t k = 0; k < len; k++) {
        if ((unsigned char)t[k] <= 0x20 || (unsigned char)t[k] >= 0x7f)
            return false;
    }
    if (t[0] != '/') {
        if (len >= 7 && fuzz_eq_ci(t, 7, "http://"))
            i = 7;
        else if (len >= 8 && fuzz_eq_ci(t, 8, "https://"))
            i = 8;
        else
            return false;
        e = i;
        while (e < len && t[e] != '/' && t[e] != '?' && t[e] != '#')
            e++;
        if (e == i)
            return false;
        i = e;
    }
    e = i;
    while (e < len && t[e] != '?' && t[e] != '#')
        e++;
    sp->path = e > i ? t + i : "/";
    sp->path_len = e > i ? e - i : 1;
    for (size_t k = 0; k < sp->path_len; k++) {
        char c = sp->path[k];

        if (c == '\\')
            return false;
        if (c == '%') {
            int v;

            if (k + 2 >= sp->path_len || fuzz_hex((unsigned char)sp->path[k + 1]) < 0 ||
                fuzz_hex((unsigned char)sp->path[k + 2]) < 0)
                return false;
            v = fuzz_hex((unsigned char)sp->path[k + 1]) << 4 |
                fuzz_hex((unsigned char)sp->path[k + 2]);
            if (v == '/' || v == '\\' || !escape_ok(sp->path, sp->path_len, k, v))
                return false;
        }
    }
    if (path_has_dot_segment(sp->path, sp->path_len))
        return false;
    if (e < len && t[e] == '?') {
        size_t q = e + 1;

        e = q;
        while (e < len && t[e] != '#')
            e++;
        sp->has_query = true;
        sp->query = t + q;
        sp->query_len = e - q;
    }
    return true;
}

/* rewrite_param_name_equals (shared with clients) agrees with the decoding here, for every
 * parameter name of the query against the sentinel name and against the key as a name. */
static void check_param_names(const struct split *sp, const struct inject *inj, const uint8_t *key,
                              size_t key_len)
{
    size_t i = 0;

    while (sp->has_query && i <= sp->query_len) {
        const char *p = sp->query + i, *eq;
        size_t plen, nlen;

        while (i < sp->query_len && sp->query[i] != '&')
            i++;
        plen = (size_t)(sp->query + i - p);
        eq = memchr(p, '=', plen);
        nlen = eq != NULL ? (size_t)(eq - p) : plen;
        FUZZ_CHECK(rewrite_param_name_equals(p, nlen, inj->name, inj->name_len) ==
                       param_is(p, nlen, inj->name, inj->name_len),
                   "rewrite_param_name_equals disagrees on the sentinel");
        FUZZ_CHECK(rewrite_param_name_equals(p, nlen, (const char *)key, key_len) ==
                       param_is(p, nlen, (const char *)key, key_len),
                   "rewrite_param_name_equals disagrees on a name with any bytes");
        i++;
    }
}

/* policy_overrides_method (policy.h) sees at least every parameter, split at '&' and ';',
 * whose name decodes once, case aside, to "_method"; on any query it reads only the view. */
static void check_method_override(const struct split *sp)
{
    bool named = false;
    size_t i = 0;

    while (sp->has_query && i <= sp->query_len && !named) {
        const char *p = sp->query + i, *eq;
        size_t plen, nlen, dlen;
        char *d;

        while (i < sp->query_len && sp->query[i] != '&' && sp->query[i] != ';')
            i++;
        plen = (size_t)(sp->query + i - p);
        eq = memchr(p, '=', plen);
        nlen = eq != NULL ? (size_t)(eq - p) : plen;
        d = fuzz_malloc(nlen);
        dlen = decode(p, nlen, true, d);
        named = fuzz_eq_ci(d, dlen, "_method");
        free(d);
        i++;
    }
    FUZZ_CHECK(policy_overrides_method(NULL, 0, sp->query, sp->query_len) || !named,
               "a _method parameter is not seen as a method override");
}

static void put(char *dst, size_t *at, const void *p, size_t n)
{
    if (n > 0)
        memcpy(dst + *at, p, n);
    *at += n;
}

/* The URL rewrite.h promises, into a malloc'd block; *len its length. */
static char *expected_url(const struct upstream_base *b, const struct split *sp,
                          const struct inject *inj, const uint8_t *key, size_t key_len,
                          bool verbatim, size_t *len)
{
    static const char hex[] = "0123456789ABCDEF";
    char *u = fuzz_malloc(b->origin_len + b->path_len + sp->path_len + 2 + sp->query_len +
                          inj->name_len + 1 + 3 * key_len + 1);
    size_t at = 0, i = 0;
    bool first = true;

    put(u, &at, b->origin, b->origin_len);
    put(u, &at, b->path, b->path_len);
    put(u, &at, sp->path, sp->path_len);
    if (inj->mode != INJECT_QUERY) {
        if (sp->has_query) {
            put(u, &at, "?", 1);
            put(u, &at, sp->query, sp->query_len);
        }
        *len = at;
        return u;
    }
    put(u, &at, "?", 1);
    while (i <= sp->query_len) {
        size_t s = i;

        while (i < sp->query_len && sp->query[i] != '&')
            i++;
        if (i > s && !param_is(sp->query + s, i - s, inj->name, inj->name_len)) {
            if (!first)
                put(u, &at, "&", 1);
            put(u, &at, sp->query + s, i - s);
            first = false;
        }
        i++;
    }
    if (!first)
        put(u, &at, "&", 1);
    put(u, &at, inj->name, inj->name_len);
    put(u, &at, "=", 1);
    for (size_t k = 0; k < key_len; k++) {
        if (verbatim || fuzz_is_unreserved(key[k])) {
            u[at++] = (char)key[k];
        } else {
            u[at++] = '%';
            u[at++] = hex[key[k] >> 4];
            u[at++] = hex[key[k] & 0xf];
        }
    }
    *len = at;
    return u;
}

/* The query-mode promises, checked on the URL itself rather than against expected_url. */
static void check_query(const char *q, size_t qlen, const struct inject *inj, const uint8_t *key,
                        size_t key_len)
{
    size_t i = 0, sentinels = 0, last_start = 0;
    char *d;
    const char *eq;

    while (i <= qlen) {
        size_t s = i;

        while (i < qlen && q[i] != '&')
            i++;
        FUZZ_CHECK(i > s, "empty query parameter at %zu", s);
        if (param_is(q + s, i - s, inj->name, inj->name_len)) {
            sentinels++;
            FUZZ_CHECK(i == qlen, "a parameter named like the sentinel is not the last one");
        }
        last_start = s;
        i++;
    }
    FUZZ_CHECK(sentinels == 1, "%zu parameters decode to the sentinel name", sentinels);
    eq = memchr(q + last_start, '=', qlen - last_start);
    FUZZ_CHECK(eq != NULL && (size_t)(eq - (q + last_start)) == inj->name_len &&
                   memcmp(q + last_start, inj->name, inj->name_len) == 0,
               "the sentinel parameter is not NAME=...");
    d = fuzz_malloc(qlen);
    FUZZ_CHECK(decode(eq + 1, (size_t)(q + qlen - eq - 1), true, d) == key_len &&
                   (key_len == 0 || memcmp(d, key, key_len) == 0),
               "the sentinel value does not decode to the key");
    free(d);
}

/* route_host_name's contract, written again: the expected result and name. */
static int route_model(const char *h, size_t len, char *name)
{
    static const char suffix[] = ".broker.local";
    const size_t slen = sizeof(suffix) - 1;
    const char *colon = len > 0 && h[0] != '[' ? memchr(h, ':', len) : NULL;
    char low[512];
    size_t n, dots = 0, label;
    bool bad_port = false;

    name[0] = '\0';
    if (len == 0 || h[0] == '[')
        return 0;
    if (colon != NULL) {
        size_t plen = len - (size_t)(colon - h) - 1;
        long port = 0;

        bad_port = plen == 0 || plen > 5;
        for (size_t i = 0; i < plen && !bad_port; i++) {
            bad_port = colon[1 + i] < '0' || colon[1 + i] > '9';
            port = port * 10 + (colon[1 + i] - '0');
        }
        bad_port = bad_port || port < 1 || port > 65535;
        len = (size_t)(colon - h);
    }
    for (; len > 0 && h[len - 1] == '.'; len--)
        dots++;
    if (len >= sizeof(low))
        return len >= slen && strncasecmp(h + len - slen, suffix, slen) == 0 ? -1 : 0;
    for (n = 0; n < len; n++)
        low[n] = h[n] >= 'A' && h[n] <= 'Z' ? (char)(h[n] - 'A' + 'a') : h[n];
    if (len == slen - 1 && memcmp(low, suffix + 1, len) == 0)
        return -1;
    if (len < slen || memcmp(low + len - slen, suffix, slen) != 0)
        return 0;
    label = len - slen;
    if (bad_port || dots > 1 || label == 0 || label > 63 || low[0] == '-' ||
        low[label - 1] == '-')
        return -1;
    for (size_t i = 0; i < label; i++) {
        if (!((low[i] >= 'a' && low[i] <= 'z') || (low[i] >= '0' && low[i] <= '9') ||
              low[i] == '-'))
            return -1;
    }
    memcpy(name, low, label);
    name[label] = '\0';
    return 1;
}

static void check_route_host(const char *h, size_t len)
{
    char got[ROUTE_NAME_MAX + 1], want[ROUTE_NAME_MAX + 1];
    int r = route_host_name(h, len, got), m = route_model(h, len, want);

    FUZZ_CHECK(r == m, "route_host_name says %d for a host the contract says %d", r, m);
    FUZZ_CHECK(strcmp(got, want) == 0, "route_host_name names '%s', the contract '%s'", got,
               want);
    FUZZ_CHECK(r != 1 || route_name_valid(got, strlen(got)), "an invalid route name selected");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *line[3], *end = data + size, *p = data;
    size_t line_len[3], key_len, cap, before, ulen, elen = 0, tlen, plen, qlen;
    struct upstream_base base;
    struct inject inj;
    struct split sp;
    struct fuzz_rng rng;
    struct buf *out;
    char spec[INJECT_NAME_MAX + 16], url[512], *want = NULL;
    const char *target, *path, *query;
    uint8_t *key;
    bool verbatim = false, ok;
    int r, r2;

    for (int k = 0; k < 3; k++) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));

        if (nl == NULL)
            nl = end;
        line[k] = p;
        line_len[k] = (size_t)(nl - p);
        p = nl < end ? nl + 1 : end;
    }
    target = (const char *)p;
    tlen = (size_t)(end - p);
    fuzz_rng_seed(&rng, data, size);
    check_route_host((const char *)line[2], line_len[2]);
    {
        const char *host_want = (const char *)line[2], *host_got;
        size_t want_len = line_len[2], got_len;

        for (size_t skip = 0; skip < 2; skip++) {
            static const char *const schemes[] = {"http://", "https://"};
            size_t sl = strlen(schemes[skip]), a;

            if (tlen >= sl && strncasecmp(target, schemes[skip], sl) == 0) {
                for (a = sl; a < tlen && target[a] != '/' && target[a] != '?' && target[a] != '#';)
                    a++;
                check_route_host(target + sl, a - sl);
                host_want = target + sl;
                want_len = a - sl;
            }
        }
        /* The conn's view: the authority of an absolute-form target, else the Host line. */
        route_request_host(target, tlen, (const char *)line[2], line_len[2], &host_got,
                           &got_len);
        FUZZ_CHECK(host_got == host_want && got_len == want_len,
                   "route_request_host picks another host than the target's authority or Host");
    }

    if (line_len[0] >= 2 && memcmp(line[0] + line_len[0] - 2, " v", 2) == 0) {
        verbatim = true;
        line_len[0] -= 2;
    }
    snprintf(spec, sizeof(spec), "%.*s", (int)(line_len[0] < sizeof(spec) - 1 ? line_len[0] : 0),
             (const char *)line[0]);
    if (memchr(line[0], '\0', line_len[0]) != NULL || inject_parse(spec, &inj) != 0)
        FUZZ_CHECK(inject_parse(NULL, &inj) == 0, "the default injection spec is refused");
    key = fuzz_malloc(line_len[1]);
    key_len = fuzz_unescape(line[1], line_len[1], key);
    snprintf(url, sizeof(url), "%.*s", (int)(line_len[2] < sizeof(url) - 1 ? line_len[2] : 0),
             (const char *)line[2]);
    if (memchr(line[2], '\0', line_len[2]) != NULL || upstream_base_parse(url, &base) != 0)
        FUZZ_CHECK(upstream_base_parse("https://api.example.com/base", &base) == 0, "base");
    FUZZ_CHECK(!path_has_dot_segment(base.path, base.path_len), "base path with a dot segment");

    /* One run in four gets a buffer too small for some URLs. */
    cap = fuzz_rng_below(&rng, 4) == 0 ? strlen(PREFILL) + fuzz_rng_below(&rng, 600) : 1u << 20;
    if ((out = buf_new(cap, BUF_WIPE)) == NULL || buf_put_str(out, PREFILL) != 0)
        abort();
    before = buf_len(out);

    ok = target_ok(target, tlen, &sp);
    check_param_names(&sp, &inj, key, key_len);
    if (ok)
        check_method_override(&sp);
    r = rewrite_url(out, &base, target, tlen, &inj, key, key_len,
                    verbatim ? REWRITE_KEY_VERBATIM : 0);
    r2 = rewrite_target_parts(target, tlen, &path, &plen, &query, &qlen);
    FUZZ_CHECK(r2 == 0 || r2 == ERR_HTTP_BAD_REQUEST, "rewrite_target_parts: %d", r2);
    FUZZ_CHECK(ok == (r2 == 0), "rewrite_target_parts %s a target the contract %s",
               r2 == 0 ? "accepts" : "refuses", ok ? "accepts" : "refuses");
    if (ok)
        FUZZ_CHECK(plen == sp.path_len && memcmp(path, sp.path, plen) == 0, "target path differs");
    else
        FUZZ_CHECK(path == NULL && plen == 0 && query == NULL && qlen == 0,
                   "a refused target still has a path or a query");
    if (ok)
        want = expected_url(&base, &sp, &inj, key, key_len, verbatim, &elen);
    if (r != 0) {
        FUZZ_CHECK(r == ERR_HTTP_BAD_REQUEST || r == ERR_TOO_LARGE, "rewrite_url: %s", err_str(r));
        FUZZ_CHECK(buf_len(out) == before && memcmp(buf_ptr(out), PREFILL, before) == 0,
                   "a failed rewrite changed the buffer");
        FUZZ_CHECK(r == ERR_TOO_LARGE ? ok && elen > cap - before : !ok,
                   "rewrite_url says %s for a target the contract %s", err_str(r),
                   ok ? "accepts" : "refuses");
        goto done;
    }
    FUZZ_CHECK(ok, "rewrite_url accepts a target the contract refuses");
    ulen = buf_len(out) - before;
    {
        const char *u = (const char *)buf_ptr(out) + before;
        size_t pre = base.origin_len + base.path_len, qpos;

        if (ulen != elen || memcmp(u, want, elen) != 0) {
            fuzz_dump("rewrite_url", u, ulen);
            fuzz_dump("expected", want, elen);
        }
        FUZZ_CHECK(ulen == elen && memcmp(u, want, elen) == 0, "URL differs from the contract");
        FUZZ_CHECK(ulen >= pre && memcmp(u, base.origin, base.origin_len) == 0 &&
                       memcmp(u + base.origin_len, base.path, base.path_len) == 0,
                   "URL does not start with the base");
        for (qpos = pre; qpos < ulen && u[qpos] != '?'; qpos++)
            ;
        FUZZ_CHECK(!path_has_dot_segment(u + base.origin_len, qpos - base.origin_len),
                   "dot segment in the output path");
        check_decoded_twice(u + base.origin_len, qpos - base.origin_len);
        /* A verbatim key is written as given ('#' included): look only before it. */
        FUZZ_CHECK(memchr(u, '#', verbatim && inj.mode == INJECT_QUERY ? ulen - key_len : ulen) ==
                       NULL,
                   "a fragment reached the URL");
        if (inj.mode == INJECT_QUERY && !verbatim) {
            FUZZ_CHECK(qpos < ulen, "no query in query mode");
            check_query(u + qpos + 1, ulen - qpos - 1, &inj, key, key_len);
        }
    }
done:
    free(want);
    free(key);
    buf_free(out);
    return 0;
}
