/*
 * audit.c - the audit log. See audit.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "audit.h"
#include "err.h"
#include "log.h"

struct audit {
    int fd;
};

int audit_open(const char *path, struct audit **out)
{
    struct audit *a;
    int fd;

    *out = NULL;
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0)
        return -errno;
    if ((a = calloc(1, sizeof(*a))) == NULL) {
        close(fd);
        return ERR_NOMEM;
    }
    a->fd = fd;
    *out = a;
    return 0;
}

void audit_close(struct audit *a)
{
    if (a == NULL)
        return;
    close(a->fd);
    a->fd = -1;
    free(a);
}

void audit_write(struct audit *a, const struct audit_record *rec)
{
    struct timespec ts;
    struct tm tm;
    char when[40];
    json_t *o;
    char *line;
    size_t len;

    if (a == NULL)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    o = json_pack("{s:s, s:s, s:s?, s:I, s:s, s:s, s:i, s:I, s:I, s:I, s:I, s:s}",
                  "time", when, "invocation", rec->invocation, "route", rec->route, "connection",
                  (json_int_t)rec->connection, "method", rec->method ? rec->method : "",
                  "path", rec->path ? rec->path : "", "status", rec->status,
                  "bytes_in", (json_int_t)rec->bytes_in, "bytes_out", (json_int_t)rec->bytes_out,
                  "upstream_ms", (json_int_t)rec->upstream_ms, "total_ms",
                  (json_int_t)rec->total_ms, "outcome", rec->outcome);
    if (o == NULL) {
        log_warn("audit: cannot encode a record");
        return;
    }
    line = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(o);
    if (line == NULL)
        return;
    len = strlen(line);
    line[len] = '\n'; /* the NUL becomes the newline: one write(2) per record */
    if (write(a->fd, line, len + 1) != (ssize_t)(len + 1))
        log_warn("audit: write failed: %s", strerror(errno));
    free(line);
}
