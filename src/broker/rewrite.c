/*
 * rewrite.c - the upstream URL for a child's request-target. See rewrite.h.
 *
 * The target is split into views (path, query), validated, and the URL is
 * then written in two passes over the same code: one that only counts bytes
 * and one that writes them into space reserved once in the caller's buf. So
 * the key is copied exactly once, into memory that will be wiped, and a
 * failure leaves the buf untouched.
 */
#include <stdio.h>
#include <string.h>

#include "ascii.h"
#include "err.h"
#include "rewrite.h"

/* RFC 3986 2.3 unreserved. */
static bool is_unreserved(unsigned char c)
{
    return ascii_is_alpha(c) || ascii_is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static bool is_vchar(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

int inject_parse(const char *spec, struct inject *out)
{
    const char *name;
    size_t len;

    memset(out, 0, sizeof(*out));
    if (spec == NULL)
        spec = INJECT_DEFAULT;
    if (strcmp(spec, "bearer") == 0) {
        out->mode = INJECT_BEARER;
        return 0;
    }
    if (strncmp(spec, "query:", 6) == 0) {
        out->mode = INJECT_QUERY;
        name = spec + 6;
    } else if (strncmp(spec, "header:", 7) == 0) {
        out->mode = INJECT_HEADER;
        name = spec + 7;
    } else {
        return ERR_INVALID;
    }
    len = strlen(name);
    if (len == 0 || len > INJECT_NAME_MAX)
        goto bad;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];

        if (out->mode == INJECT_HEADER && !ascii_is_tchar(c))
            goto bad;
        /* Excluding '%' and '+' makes the name its own decoded form, so a raw
         * compare against a decoded parameter name is exact. */
        if (out->mode == INJECT_QUERY && (!is_vchar(c) || strchr("&=#%+", c) != NULL))
            goto bad;
    }
    memcpy(out->name, name, len);
    out->name[len] = '\0';
    out->name_len = len;
    return 0;
bad:
    memset(out, 0, sizeof(*out));
    return ERR_INVALID;
}

/* True if seg[0..len) is "." or ".." once %2e is decoded, looking only at what
 * precedes a ';' (some servers drop path parameters, so "..;x" means "..") or a
 * %3b (an upstream that decodes first and drops parameters after reads "..%3bx"
 * as "..;x"). */
static bool segment_is_dots(const char *seg, size_t len)
{
    size_t dots = 0, i = 0;

    while (i < len && seg[i] != ';') {
        if (seg[i] == '.') {
            i++;
        } else if (seg[i] == '%' && i + 2 < len && seg[i + 1] == '2' &&
                   (seg[i + 2] == 'e' || seg[i + 2] == 'E')) {
            i += 3;
        } else if (seg[i] == '%' && i + 2 < len && seg[i + 1] == '3' &&
                   (seg[i + 2] == 'b' || seg[i + 2] == 'B')) {
            break;
        } else {
            return false;
        }
        dots++;
    }
    return dots == 1 || dots == 2;
}

/* The byte the escape at p[i] stands for, or -1 if p[i..len) does not start with %XX. */
static int escape_at(const char *p, size_t len, size_t i)
{
    int hi, lo;

    if (i + 2 >= len || p[i] != '%' || (hi = ascii_hex_value((unsigned char)p[i + 1])) < 0 ||
        (lo = ascii_hex_value((unsigned char)p[i + 2])) < 0)
        return -1;
    return hi << 4 | lo;
}

/*
 * True if the escape at p[i], which decodes to v, means the same to an upstream
 * that decodes twice or leniently as to one that decodes once and strictly.
 * Not so:
 * - a '%' that starts another escape: "%252e" is "%2e" once decoded and "."
 *   twice, as are "%25%32%65" and IIS's "%25u002e". Any %25 followed by a hex
 *   digit, '%' or 'u' (either case) is refused, whatever the second decoding would give, so
 *   a literal "%41" in a path ("%2541") is refused too;
 * - a byte that only an overlong UTF-8 form uses: "%c0%ae", "%e0%80%ae" and
 *   "%f0%80%80%ae" are "." to a decoder that does not check. RFC 3629: C0, C1
 *   and F5-FF never appear (section 1), E0 is followed by A0-BF and F0 by
 *   90-BF (section 4). E0 and F0 followed by anything else, a raw byte
 *   included, are refused (a decoder that skips the continuation check reads
 *   "%e0@." as "."). Other invalid UTF-8 cannot decode to ASCII and passes.
 */
static bool escape_is_plain(const char *p, size_t len, size_t i, int v)
{
    unsigned char next = i + 3 < len ? (unsigned char)p[i + 3] : 0;
    int v2;

    switch (v) {
    case '%':
        return ascii_hex_value(next) < 0 && next != '%' && next != 'u' && next != 'U';
    case 0xc0:
    case 0xc1:
        return false;
    case 0xe0:
        v2 = escape_at(p, len, i + 3);
        return v2 >= 0xa0 && v2 <= 0xbf;
    case 0xf0:
        v2 = escape_at(p, len, i + 3);
        return v2 >= 0x90 && v2 <= 0xbf;
    default:
        return v < 0xf5;
    }
}

/*
 * A path that a policy glob can be trusted on: starts with '/', printable
 * ASCII, no raw '\', well-formed %-escapes, no %2f/%5c (a slash or backslash
 * the upstream may decode into a separator), no double-encoded escape or
 * overlong UTF-8 lead (escape_is_plain) and no dot segment.
 */
static bool path_is_safe(const char *p, size_t len)
{
    size_t seg = 0;

    if (len == 0 || p[0] != '/')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];

        if (!is_vchar(c) || c == '\\' || c == '?' || c == '#')
            return false;
        if (c == '%') {
            int v = escape_at(p, len, i);

            if (v < 0 || v == '/' || v == '\\' || !escape_is_plain(p, len, i, v))
                return false;
        }
        if (c == '/') {
            if (i > 0 && segment_is_dots(p + seg, i - seg))
                return false;
            seg = i + 1;
        }
    }
    return !segment_is_dots(p + seg, len - seg);
}

static bool has_prefix_nocase(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);

    if (len < n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (ascii_tolower((unsigned char)s[i]) != (unsigned char)prefix[i])
            return false;
    }
    return true;
}

struct target_parts {
    const char *path;
    size_t path_len;
    const char *query; /* after '?', before '#' */
    size_t query_len;
    bool has_query; /* a '?' was present, even with nothing after it */
};

/* Splits and validates a request-target (RFC 9112 3.2). */
static int target_split(const char *t, size_t len, struct target_parts *tp)
{
    size_t p = 0, end;

    memset(tp, 0, sizeof(*tp));
    if (t == NULL || len == 0)
        return ERR_HTTP_BAD_REQUEST;
    for (size_t i = 0; i < len; i++) {
        if (!is_vchar((unsigned char)t[i]))
            return ERR_HTTP_BAD_REQUEST;
    }
    if (t[0] != '/') {
        /* absolute-form; anything else (asterisk-form, authority-form, another
         * scheme) has no place in a request to an origin. */
        if (has_prefix_nocase(t, len, "http://"))
            p = 7;
        else if (has_prefix_nocase(t, len, "https://"))
            p = 8;
        else
            return ERR_HTTP_BAD_REQUEST;
        end = p;
        while (end < len && t[end] != '/' && t[end] != '?' && t[end] != '#')
            end++;
        if (end == p)
            return ERR_HTTP_BAD_REQUEST; /* an http URI needs a host (RFC 9110 4.2.1) */
        p = end;
    }
    end = p;
    while (end < len && t[end] != '?' && t[end] != '#')
        end++;
    tp->path = t + p;
    tp->path_len = end - p;
    if (tp->path_len == 0) {
        /* RFC 9112 3.2.1: an empty path is sent as "/". Only absolute-form
         * gets here, origin-form starts with '/'. */
        tp->path = "/";
        tp->path_len = 1;
    }
    if (!path_is_safe(tp->path, tp->path_len))
        return ERR_HTTP_BAD_REQUEST;
    if (end < len && t[end] == '?') {
        size_t q = end + 1;

        end = q;
        while (end < len && t[end] != '#')
            end++;
        tp->has_query = true;
        tp->query = t + q;
        tp->query_len = end - q;
    }
    /* Whatever follows '#' is a fragment: never sent. */
    return 0;
}

int rewrite_target_parts(const char *target, size_t len, const char **path, size_t *path_len,
                         const char **query, size_t *query_len)
{
    struct target_parts tp;
    int r;

    *path = *query = NULL;
    *path_len = *query_len = 0;
    if ((r = target_split(target, len, &tp)) != 0)
        return r;
    *path = tp.path;
    *path_len = tp.path_len;
    *query = tp.query;
    *query_len = tp.query_len;
    return 0;
}

int upstream_base_parse(const char *url, struct upstream_base *out)
{
    const char *a, *host, *path;
    size_t host_len, alen, path_len, hlen;
    unsigned long port = 0;
    int n;

    memset(out, 0, sizeof(*out));
    if (url == NULL)
        return ERR_BAD_URL;
    if (has_prefix_nocase(url, strlen(url), "https://")) {
        out->tls = true;
        a = url + 8;
    } else if (has_prefix_nocase(url, strlen(url), "http://")) {
        a = url + 7;
    } else {
        return ERR_BAD_URL;
    }
    alen = strcspn(a, "/");
    path = a + alen;
    path_len = strlen(path);

    /* Host: a bracketed IPv6 literal or a plain name; '@' (userinfo), '?'
     * and '#' fail here or in the path check below. */
    host = a;
    if (alen > 0 && a[0] == '[') {
        const char *rb = memchr(a, ']', alen);
        bool colon = false;

        if (rb == NULL || rb == a + 1)
            goto bad;
        for (const char *c = a + 1; c < rb; c++) {
            if (ascii_hex_value((unsigned char)*c) < 0 && *c != ':' && *c != '.')
                goto bad;
            colon = colon || *c == ':';
        }
        if (!colon)
            goto bad;
        host_len = (size_t)(rb - a) + 1;
    } else {
        host_len = 0;
        while (host_len < alen && a[host_len] != ':') {
            unsigned char c = (unsigned char)a[host_len];

            if (!ascii_is_alpha(c) && !ascii_is_digit(c) && c != '-' && c != '.' && c != '_' &&
                c != '~')
                goto bad;
            host_len++;
        }
    }
    if (host_len == 0 || host_len > UPSTREAM_HOST_MAX)
        goto bad;
    if (host_len < alen) {
        /* ":port": 1-5 digits, 1-65535. */
        size_t digits = alen - host_len - 1;

        if (a[host_len] != ':' || digits == 0 || digits > 5)
            goto bad;
        for (size_t i = host_len + 1; i < alen; i++) {
            if (!ascii_is_digit((unsigned char)a[i]))
                goto bad;
            port = port * 10 + (unsigned long)(a[i] - '0');
        }
        if (port == 0 || port > 65535)
            goto bad;
    }
    if (port == 0)
        port = out->tls ? 443 : 80;
    out->port = (uint16_t)port;

    if (path_len > 0 && !path_is_safe(path, path_len))
        goto bad;
    while (path_len > 0 && path[path_len - 1] == '/')
        path_len--;
    if (path_len > UPSTREAM_PATH_MAX)
        goto bad;
    memcpy(out->path, path, path_len);
    out->path[path_len] = '\0';
    out->path_len = path_len;

    hlen = out->tls ? 8 : 7;
    if ((out->tls && port == 443) || (!out->tls && port == 80))
        n = snprintf(out->origin, sizeof(out->origin), "%s%.*s", out->tls ? "https://" : "http://",
                     (int)host_len, host);
    else
        n = snprintf(out->origin, sizeof(out->origin), "%s%.*s:%lu",
                     out->tls ? "https://" : "http://", (int)host_len, host, port);
    if (n < 0 || (size_t)n >= sizeof(out->origin))
        goto bad;
    out->origin_len = (size_t)n;
    out->host_off = hlen;
    for (size_t i = hlen; i < hlen + host_len; i++)
        out->origin[i] = (char)ascii_tolower((unsigned char)out->origin[i]);
    return 0;
bad:
    memset(out, 0, sizeof(*out));
    return ERR_BAD_URL;
}

const char *upstream_base_host(const struct upstream_base *b)
{
    return b->origin + b->host_off;
}

/* Counts (dst NULL) or writes the URL; see the file comment. */
struct writer {
    uint8_t *dst;
    size_t len;
};

static void writer_put(struct writer *w, const void *p, size_t n)
{
    if (w->dst != NULL && n > 0)
        memcpy(w->dst + w->len, p, n);
    w->len += n;
}

static void writer_put_key(struct writer *w, const uint8_t *key, size_t len, bool verbatim)
{
    static const char hex[] = "0123456789ABCDEF";

    if (verbatim) {
        writer_put(w, key, len);
        return;
    }
    for (size_t i = 0; i < len; i++) {
        if (is_unreserved(key[i])) {
            if (w->dst != NULL)
                w->dst[w->len] = key[i];
            w->len++;
        } else {
            if (w->dst != NULL) {
                w->dst[w->len] = '%';
                w->dst[w->len + 1] = (uint8_t)hex[key[i] >> 4];
                w->dst[w->len + 2] = (uint8_t)hex[key[i] & 0xf];
            }
            w->len += 3;
        }
    }
}

bool rewrite_key_is_unreserved(const uint8_t *key, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!is_unreserved(key[i]))
            return false;
    }
    return true;
}

bool rewrite_param_name_equals(const char *raw, size_t len, const char *name, size_t name_len)
{
    size_t i = 0, j = 0;

    while (i < len) {
        unsigned char c = (unsigned char)raw[i];
        int hi, lo;

        if (c == '+') {
            c = ' ';
            i++;
        } else if (c == '%' && i + 2 < len &&
                   (hi = ascii_hex_value((unsigned char)raw[i + 1])) >= 0 &&
                   (lo = ascii_hex_value((unsigned char)raw[i + 2])) >= 0) {
            c = (unsigned char)(hi << 4 | lo);
            i += 3;
        } else {
            i++;
        }
        if (j == name_len || (unsigned char)name[j] != c)
            return false;
        j++;
    }
    return j == name_len;
}

static void write_url(struct writer *w, const struct upstream_base *base,
                      const struct target_parts *tp, const struct inject *inj, const uint8_t *key,
                      size_t key_len, unsigned flags)
{
    bool first = true;
    size_t i = 0;

    writer_put(w, base->origin, base->origin_len);
    writer_put(w, base->path, base->path_len);
    writer_put(w, tp->path, tp->path_len);
    if (inj->mode != INJECT_QUERY) {
        if (tp->has_query) {
            writer_put(w, "?", 1);
            writer_put(w, tp->query, tp->query_len);
        }
        return;
    }
    writer_put(w, "?", 1);
    while (i < tp->query_len) {
        const char *piece = tp->query + i;
        const char *amp = memchr(piece, '&', tp->query_len - i);
        size_t plen = amp != NULL ? (size_t)(amp - piece) : tp->query_len - i;
        const char *eq = memchr(piece, '=', plen);
        size_t nlen = eq != NULL ? (size_t)(eq - piece) : plen;

        i += plen + 1;
        if (plen == 0 || rewrite_param_name_equals(piece, nlen, inj->name, inj->name_len))
            continue;
        if (!first)
            writer_put(w, "&", 1);
        writer_put(w, piece, plen);
        first = false;
    }
    if (!first)
        writer_put(w, "&", 1);
    writer_put(w, inj->name, inj->name_len);
    writer_put(w, "=", 1);
    writer_put_key(w, key, key_len, (flags & REWRITE_KEY_VERBATIM) != 0);
}

int rewrite_url(struct buf *out, const struct upstream_base *base, const char *target,
                size_t target_len, const struct inject *inj, const uint8_t *key, size_t key_len,
                unsigned flags)
{
    struct target_parts tp;
    struct writer w = {NULL, 0};
    uint8_t *dst;
    int r;

    if ((r = target_split(target, target_len, &tp)) != 0)
        return r;
    if (inj->mode == INJECT_QUERY) {
        if (key == NULL && key_len > 0)
            return ERR_INVALID;
        if (key_len > SIZE_MAX / 4)
            return ERR_TOO_LARGE;
    }
    write_url(&w, base, &tp, inj, key, key_len, flags);
    if ((r = buf_reserve(out, w.len, &dst)) != 0)
        return r;
    w.dst = dst;
    w.len = 0;
    write_url(&w, base, &tp, inj, key, key_len, flags);
    buf_commit(out, w.len);
    return 0;
}
