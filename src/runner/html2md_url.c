/*
 * html2md_url.c - link and image URLs made absolute for the markdown output: RFC 3986
 * section 5.2 reference resolution, after the cleaning a browser does to an href. Our own
 * rather than libxml2's xmlBuildURI, which refuses a reference with a space in it and
 * leaves dot segments in an absolute path ("/x/../y").
 *
 * Not a URL validator or normalizer: what is not well-formed still comes out, resolved as
 * far as its parts allow, because the reader of the markdown wants the link, not an error.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "html2md_internal.h"

struct uri_parts {
    const char *scheme, *auth, *path, *query, *frag;
    size_t scheme_len, auth_len, path_len, query_len, frag_len;
    bool has_scheme, has_auth, has_query, has_frag;
};

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* RFC 3986 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then ":". */
static size_t scheme_len(const char *s)
{
    size_t i = 0;

    if (!is_alpha((unsigned char)s[0]))
        return 0;
    while (is_alpha((unsigned char)s[i]) || (s[i] >= '0' && s[i] <= '9') || s[i] == '+' ||
           s[i] == '-' || s[i] == '.')
        i++;
    return s[i] == ':' ? i : 0;
}

/* RFC 3986 appendix B, the regular expression written out. */
static void uri_split(const char *s, struct uri_parts *u)
{
    size_t n;

    memset(u, 0, sizeof(*u));
    if ((n = scheme_len(s)) > 0) {
        u->has_scheme = true;
        u->scheme = s;
        u->scheme_len = n;
        s += n + 1;
    }
    if (s[0] == '/' && s[1] == '/') {
        u->has_auth = true;
        u->auth = s + 2;
        u->auth_len = strcspn(u->auth, "/?#");
        s = u->auth + u->auth_len;
    }
    u->path = s;
    u->path_len = strcspn(s, "?#");
    s += u->path_len;
    if (*s == '?') {
        u->has_query = true;
        u->query = s + 1;
        u->query_len = strcspn(u->query, "#");
        s = u->query + u->query_len;
    }
    if (*s == '#') {
        u->has_frag = true;
        u->frag = s + 1;
        u->frag_len = strlen(u->frag);
    }
}

static bool starts(const char *p, const char *end, const char *lit)
{
    size_t n = strlen(lit);

    return (size_t)(end - p) >= n && memcmp(p, lit, n) == 0;
}

static bool is(const char *p, const char *end, const char *lit)
{
    return (size_t)(end - p) == strlen(lit) && memcmp(p, lit, (size_t)(end - p)) == 0;
}

/* Drops the last segment of out[0..*o) and its "/" (RFC 3986 5.2.4 step C). */
static void pop_segment(const char *out, size_t *o)
{
    while (*o > 0 && out[*o - 1] != '/')
        (*o)--;
    if (*o > 0)
        (*o)--;
}

/* RFC 3986 5.2.4 remove_dot_segments, from in[0..n) to out (room for n + 1); returns the
 * length written. Linear: each byte is copied and popped at most once. */
static size_t remove_dots(const char *in, size_t n, char *out)
{
    const char *p = in, *end = in + n;
    size_t o = 0;

    while (p < end) {
        if (starts(p, end, "../")) {
            p += 3;
        } else if (starts(p, end, "./")) {
            p += 2;
        } else if (starts(p, end, "/./")) {
            p += 2;
        } else if (is(p, end, "/.")) {
            out[o++] = '/';
            p = end;
        } else if (starts(p, end, "/../")) {
            p += 3;
            pop_segment(out, &o);
        } else if (is(p, end, "/..")) {
            pop_segment(out, &o);
            out[o++] = '/';
            p = end;
        } else if (is(p, end, ".") || is(p, end, "..")) {
            p = end;
        } else {
            do {
                out[o++] = *p++;
            } while (p < end && *p != '/');
        }
    }
    return o;
}

/* True for the bytes an href may hold as they are; the rest are percent-encoded. */
static bool url_byte_ok(unsigned char c)
{
    if (c <= 0x20 || c >= 0x7f)
        return false;
    return strchr("\"<>\\^`{|}", c) == NULL;
}

/* WHATWG URL parsing's first steps: C0 controls and spaces trimmed from both ends, tabs
 * and newlines removed; then everything RFC 3986 does not allow percent-encoded. */
static char *url_clean(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s), o = 0;
    char *out;

    while (n > 0 && (unsigned char)s[0] <= 0x20) {
        s++;
        n--;
    }
    while (n > 0 && (unsigned char)s[n - 1] <= 0x20)
        n--;
    if (n > (SIZE_MAX - 1) / 3 || (out = malloc(3 * n + 1)) == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '\t' || c == '\n' || c == '\r')
            continue;
        if (url_byte_ok(c)) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return out;
}

static char *put(char *o, const char *s, size_t n)
{
    memcpy(o, s, n);
    return o + n;
}

/* RFC 3986 5.2.3 merge, then remove_dot_segments, into o; returns the end. */
static char *merged_path(char *o, const struct uri_parts *b, const struct uri_parts *r,
                         char *scratch)
{
    size_t n = 0;

    if (b->has_auth && b->path_len == 0) {
        scratch[n++] = '/';
    } else {
        size_t keep = b->path_len;

        while (keep > 0 && b->path[keep - 1] != '/')
            keep--;
        memcpy(scratch, b->path, keep);
        n = keep;
    }
    memcpy(scratch + n, r->path, r->path_len);
    n += r->path_len;
    return o + remove_dots(scratch, n, o);
}

/* RFC 3986 5.2.2 and 5.3, into out (room for strlen(base) + strlen(ref) + 8). */
static void resolve(const struct uri_parts *b, const struct uri_parts *r, char *out, char *scratch)
{
    const struct uri_parts *query_from = r;
    char *o = out;

    o = put(o, r->has_scheme ? r->scheme : b->scheme,
            r->has_scheme ? r->scheme_len : b->scheme_len);
    *o++ = ':';
    if (r->has_scheme || r->has_auth) {
        if (r->has_auth) {
            o = put(o, "//", 2);
            o = put(o, r->auth, r->auth_len);
        }
        o += remove_dots(r->path, r->path_len, o);
    } else {
        if (b->has_auth) {
            o = put(o, "//", 2);
            o = put(o, b->auth, b->auth_len);
        }
        if (r->path_len == 0) {
            o = put(o, b->path, b->path_len);
            if (!r->has_query)
                query_from = b;
        } else if (r->path[0] == '/') {
            o += remove_dots(r->path, r->path_len, o);
        } else {
            o = merged_path(o, b, r, scratch);
        }
    }
    if (query_from->has_query) {
        *o++ = '?';
        o = put(o, query_from->query, query_from->query_len);
    }
    if (r->has_frag) {
        *o++ = '#';
        o = put(o, r->frag, r->frag_len);
    }
    *o = '\0';
}

int h2m_url_resolve(const char *base, const char *ref, char **out)
{
    struct uri_parts b, r;
    char *cref = NULL, *cbase = NULL, *res = NULL, *scratch = NULL;
    size_t room;
    int rc = ERR_NOMEM;

    *out = NULL;
    if ((cref = url_clean(ref)) == NULL)
        goto out;
    if (base != NULL && (cbase = url_clean(base)) == NULL)
        goto out;
    if (cbase == NULL || scheme_len(cbase) == 0) {
        *out = cref; /* transferred */
        cref = NULL;
        rc = 0;
        goto out;
    }
    uri_split(cbase, &b);
    uri_split(cref, &r);
    room = strlen(cbase) + strlen(cref) + 8;
    if ((res = malloc(room)) == NULL || (scratch = malloc(room)) == NULL)
        goto out;
    resolve(&b, &r, res, scratch);
    *out = res; /* transferred */
    res = NULL;
    rc = 0;
out:
    free(cref);
    free(cbase);
    free(res);
    free(scratch);
    return rc;
}

bool h2m_url_is_unsafe(const char *url)
{
    static const char *const unsafe[] = {"javascript", "vbscript", "data"};
    size_t n = scheme_len(url);

    for (size_t i = 0; i < sizeof(unsafe) / sizeof(unsafe[0]); i++) {
        if (n == strlen(unsafe[i]) && strncasecmp(url, unsafe[i], n) == 0)
            return true;
    }
    return false;
}
