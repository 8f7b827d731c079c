/*
 * policy.h - which requests a child may send: allowed "METHOD PATH-GLOB" rules.
 *
 * An optional allow-list (DESIGN.md section 2). With no rules everything is
 * allowed; with rules, a request that matches none gets 403 and never leaves
 * the machine. Globs are matched against the raw path that rewrite.h has
 * already checked for dot segments and encoded slashes, also double-encoded or
 * overlong ones, so a glob cannot be walked out of. This module only answers yes or no; the 403 is the
 * connection's business.
 */
#ifndef CREDBROKER_POLICY_H
#define CREDBROKER_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#define POLICY_RULE_MAX 4096 /* bytes of one rule */
#define POLICY_MAX_RULES 1024

struct policy;
struct http1_header;

/* Returns 0 and a new empty policy in *out, or ERR_NOMEM. Caller frees with policy_free(). */
int policy_new(struct policy **out) __attribute__((warn_unused_result));
/* Frees p and its rules. Accepts NULL. */
void policy_free(struct policy *p);

/*
 * Adds "METHOD GLOB": METHOD an RFC 9110 token or "*" (any method), exactly one
 * space, GLOB starting with '/' and made of printable ASCII (fnmatch syntax).
 * The rule is copied. Returns 0, ERR_INVALID for a malformed rule (p
 * unchanged), ERR_TOO_LARGE past POLICY_RULE_MAX bytes or POLICY_MAX_RULES
 * rules, or ERR_NOMEM.
 */
int policy_add_rule(struct policy *p, const char *rule) __attribute__((warn_unused_result));

size_t policy_rule_count(const struct policy *p);

/*
 * No rules: true. Otherwise true iff some rule's method equals method
 * (case-sensitive, as HTTP methods are) or is "*", and fnmatch(glob, path, 0)
 * matches ('*' spans '/'). method and path are (ptr, len) views, not
 * NUL-terminated. A path with a NUL byte, or that cannot be copied for
 * fnmatch, is refused (fail closed).
 */
bool policy_allows(const struct policy *p, const char *method, size_t method_len, const char *path,
                   size_t path_len);

/*
 * True if the request asks for another method than its request line's, in a
 * way that some servers honour (ASP.NET, Symfony, Laravel, Rack, Google's
 * APIs): a header X-HTTP-Method-Override, X-HTTP-Method or X-Method-Override
 * (ASCII case-insensitive, '_' read as '-': CGI-style servers map both to the
 * same variable), or a query parameter named _method. The parameter name is
 * read as a server may decode it: '+' and %XX decoded, a %25 that starts a
 * second escape decoded again ("%255Fmethod"), case ignored, leading spaces
 * dropped and a first '.' or '[' read as '_' (PHP's mangling), and
 * "_method[...]" counts; parameters are split at '&' and at ';'. A form body
 * is not looked at. query is the raw query (after '?'), NULL when there is
 * none. Any value counts, even the request's own method.
 *
 * policy_allows() judges the request line's method, so the connection refuses
 * such a request (403) when a policy has rules.
 */
bool policy_overrides_method(const struct http1_header *headers, size_t nheaders, const char *query,
                             size_t query_len);

#endif
