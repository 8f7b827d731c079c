/*
 * policy.c - the METHOD PATH-GLOB allow-list. See policy.h.
 *
 * Rules are few and requests are matched one at a time on the event loop, so
 * a linear scan with fnmatch(3) is enough. fnmatch wants NUL-terminated
 * strings: the path view is copied to the stack, or to the heap when long.
 */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "ascii.h"
#include "err.h"
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
