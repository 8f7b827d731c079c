/*
 * policy.c - the METHOD PATH-GLOB allow-list. See policy.h.
 *
 * Rules are few and requests are matched one at a time on the event loop, so
 * a linear scan with fnmatch(3) is enough. fnmatch wants NUL-terminated
 * strings: the path view is copied to the stack, or to the heap when long.
 *
 * policy_overrides_method() reads headers and query parameter names as the
 * servers that honour a method override do, erring towards "yes": its only use
 * is to refuse.
 */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "ascii.h"
#include "err.h"
#include "http1.h"
#include "policy.h"

#define POLICY_PATH_STACK 1024

struct policy_rule {
    char *method; /* NUL-terminated; "*" matches any method */
    size_t method_len;
    char *glob; /* NUL-terminated */
};

struct policy {
    struct policy_rule *rules;
    size_t count;
    size_t alloc;
};

int policy_new(struct policy **out)
{
    *out = calloc(1, sizeof(**out));
    return *out == NULL ? ERR_NOMEM : 0;
}

void policy_free(struct policy *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->count; i++)
        free(p->rules[i].method); /* glob lives in the same block */
    free(p->rules);
    memset(p, 0, sizeof(*p));
    free(p);
}

int policy_add_rule(struct policy *p, const char *rule)
{
    const char *sp;
    size_t len, mlen;
    char *copy;

    if (rule == NULL)
        return ERR_INVALID;
    len = strnlen(rule, POLICY_RULE_MAX + 1);
    if (len > POLICY_RULE_MAX)
        return ERR_TOO_LARGE;
    if ((sp = memchr(rule, ' ', len)) == NULL)
        return ERR_INVALID;
    mlen = (size_t)(sp - rule);
    if (mlen == 0 || sp[1] != '/')
        return ERR_INVALID;
    for (size_t i = 0; i < mlen; i++) {
        if (!ascii_is_tchar((unsigned char)rule[i]))
            return ERR_INVALID;
    }
    /* The glob: printable ASCII, so no second space and no control byte. */
    for (const char *c = sp + 1; *c != '\0'; c++) {
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
            return ERR_INVALID;
    }
    if (p->count == POLICY_MAX_RULES)
        return ERR_TOO_LARGE;
    if (p->count == p->alloc) {
        size_t nalloc = p->alloc == 0 ? 8 : p->alloc * 2;
        struct policy_rule *nr = reallocarray(p->rules, nalloc, sizeof(*nr));

        if (nr == NULL)
            return ERR_NOMEM;
        p->rules = nr;
        p->alloc = nalloc;
    }
    if ((copy = strdup(rule)) == NULL)
        return ERR_NOMEM;
    copy[mlen] = '\0';
    p->rules[p->count].method = copy;
    p->rules[p->count].method_len = mlen;
    p->rules[p->count].glob = copy + mlen + 1;
    p->count++;
    return 0;
}

size_t policy_rule_count(const struct policy *p)
{
    return p->count;
}

bool policy_allows(const struct policy *p, const char *method, size_t method_len, const char *path,
                   size_t path_len)
{
    char stack[POLICY_PATH_STACK];
    char *cpath = stack;
    bool allowed = false;

    if (p->count == 0)
        return true;
    if (path == NULL)
        path_len = 0;
    if (path_len > 0 && memchr(path, '\0', path_len) != NULL)
        return false;
    if (path_len >= sizeof(stack) && (cpath = malloc(path_len + 1)) == NULL)
        return false;
    if (path_len > 0)
        memcpy(cpath, path, path_len);
    cpath[path_len] = '\0';
    for (size_t i = 0; i < p->count && !allowed; i++) {
        const struct policy_rule *r = &p->rules[i];

        if (!(r->method_len == 1 && r->method[0] == '*') &&
            !(r->method_len == method_len && memcmp(r->method, method, method_len) == 0))
            continue;
        allowed = fnmatch(r->glob, cpath, 0) == 0;
    }
    if (cpath != stack)
        free(cpath);
    return allowed;
}

/* Header names that carry a method override, lower-case. */
static const char *const override_headers[] = {
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
};

/* name[0..len) equals the lower-case literal lower, ignoring case, with '_' read as '-'. */
static bool header_name_is(const char *name, size_t len, const char *lower)
{
    if (strlen(lower) != len)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = ascii_tolower((unsigned char)name[i]);

        if ((c == '_' ? '-' : c) != (unsigned char)lower[i])
            return false;
    }
    return true;
}

/* A hex digit at s[*i], raw or as a %XX that decodes to one: its value, with *i moved
 * past it; or -1. */
static int hex_digit_at(const char *s, size_t len, size_t *i)
{
    int v = -1, hi, lo;

    if (*i < len && (v = ascii_hex_value((unsigned char)s[*i])) >= 0) {
        *i += 1;
    } else if (*i + 2 < len && s[*i] == '%' &&
               (hi = ascii_hex_value((unsigned char)s[*i + 1])) >= 0 &&
               (lo = ascii_hex_value((unsigned char)s[*i + 2])) >= 0 &&
               (v = ascii_hex_value((unsigned char)(hi << 4 | lo))) >= 0) {
        *i += 3;
    }
    return v;
}

/* The next byte of a parameter name s[0..len), from s[*i] (*i < len), decoded: '+' as a
 * space, %XX, and a '%' so decoded that starts a second escape decoded again. Moves *i. */
static unsigned char name_byte(const char *s, size_t len, size_t *i)
{
    unsigned char c = (unsigned char)s[*i];
    size_t j;
    int hi, lo;

    *i += 1;
    if (c == '+')
        return ' ';
    if (c != '%' || *i + 1 >= len || (hi = ascii_hex_value((unsigned char)s[*i])) < 0 ||
        (lo = ascii_hex_value((unsigned char)s[*i + 1])) < 0)
        return c;
    *i += 2;
    c = (unsigned char)(hi << 4 | lo);
    /* "%255F", also with the second escape's digits encoded ("%25%35%46"). */
    j = *i;
    if (c == '%' && (hi = hex_digit_at(s, len, &j)) >= 0 && (lo = hex_digit_at(s, len, &j)) >= 0) {
        *i = j;
        c = (unsigned char)(hi << 4 | lo);
    }
    return c;
}

/* True if the parameter name s[0..len) reads as "_method" (see policy.h). */
static bool param_is_method(const char *s, size_t len)
{
    static const char want[] = "_method";
    size_t i = 0, j = 0;
    bool leading = true;

    while (i < len) {
        unsigned char c = name_byte(s, len, &i);

        if (leading && c == ' ')
            continue;
        leading = false;
        if (j == 0 && (c == '.' || c == '['))
            c = '_';
        if (j == sizeof(want) - 1)
            return c == '[';
        if (ascii_tolower(c) != (unsigned char)want[j])
            return false;
        j++;
    }
    return j == sizeof(want) - 1;
}

bool policy_overrides_method(const struct http1_header *headers, size_t nheaders, const char *query,
                             size_t query_len)
{
    size_t i = 0;

    for (size_t h = 0; h < nheaders; h++) {
        for (size_t k = 0; k < sizeof(override_headers) / sizeof(override_headers[0]); k++) {
            if (header_name_is(headers[h].name.base, headers[h].name.len, override_headers[k]))
                return true;
        }
    }
    while (query != NULL && i < query_len) {
        size_t start = i, end;

        while (i < query_len && query[i] != '&' && query[i] != ';')
            i++;
        end = i++;
        for (size_t k = start; k < end; k++) {
            if (query[k] == '=') {
                end = k;
                break;
            }
        }
        if (param_is_method(query + start, end - start))
            return true;
    }
    return false;
}
