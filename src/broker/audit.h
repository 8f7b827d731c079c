/*
 * audit.h - one JSON line per brokered request, appended to a file.
 *
 * The path is logged with the credential shown as "[broker]", never the key.
 */
#ifndef CREDBROKER_AUDIT_H
#define CREDBROKER_AUDIT_H

#include <stdint.h>

struct audit;

struct audit_record {
    const char *invocation;
    const char *route;    /* the route the request went to; NULL: none (421, a refused dial) */
    uint64_t connection;
    const char *method;
    const char *path;     /* path and query, credential as [broker] */
    int status;           /* 0 when no response was sent */
    uint64_t bytes_in;    /* request body bytes from the child */
    uint64_t bytes_out;   /* response body bytes to the child */
    uint64_t upstream_ms; /* to the upstream's response head */
    uint64_t total_ms;
    const char
        *outcome; /* "ok", "refused", "policy", "upstream_error", "timeout", "client_gone", ... */
};

/* Opens (creates, mode 0600, append) path. Returns 0 or -errno. Free with audit_close(). */
int audit_open(const char *path, struct audit **out);
void audit_close(struct audit *a);
/* Appends one line; errors are logged, never fatal. Accepts a NULL audit. */
void audit_write(struct audit *a, const struct audit_record *rec);

#endif
