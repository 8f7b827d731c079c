/*
 * log.c - the logger. See log.h.
 *
 * Lines are formatted into a stack buffer, redacted, then written with one
 * write(2) so lines from one process never interleave.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "secret.h"

#define LOG_LINE_MAX 2048

static enum log_level current_level = LOG_LEVEL_INFO;
static const char *ident = "credbroker";
static const struct secret **redactions;
static size_t nredactions, aredactions;

void log_set_level(enum log_level level)
{
    current_level = level;
}

bool log_enabled(enum log_level level)
{
    return level <= current_level;
}

void log_set_ident(const char *name)
{
    ident = name;
}

int log_parse_level(const char *name, enum log_level *out)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    if (strcmp(name, "warning") == 0) {
        *out = LOG_LEVEL_WARN;
        return 0;
    }
    return -1;
}

int log_redact_add(const struct secret *s)
{
    if (nredactions == aredactions) {
        size_t n = aredactions ? aredactions * 2 : 8;
        const struct secret **p = reallocarray(redactions, n, sizeof(*p));

        if (p == NULL)
            return ERR_NOMEM;
        redactions = p;
        aredactions = n;
    }
    redactions[nredactions++] = s;
    return 0;
}

void log_redact_remove(const struct secret *s)
{
    for (size_t i = 0; i < nredactions; i++) {
        if (redactions[i] == s) {
            redactions[i] = redactions[--nredactions];
            return;
        }
    }
}

void log_redact(char *line, size_t len)
{
    for (size_t i = 0; i < nredactions; i++) {
        const uint8_t *key = secret_data(redactions[i]);
        size_t klen = secret_len(redactions[i]);
        char *p = line, *end = line + len;

        while ((size_t)(end - p) >= klen) {
            char *hit = memmem(p, (size_t)(end - p), key, klen);

            if (hit == NULL)
                break;
            memset(hit, '*', klen);
            p = hit + klen;
        }
    }
}

static const char *level_name(enum log_level level)
{
    switch (level) {
    case LOG_LEVEL_ERROR: return "error";
    case LOG_LEVEL_WARN: return "warning";
    case LOG_LEVEL_INFO: return "info";
    default: return "debug";
    }
}

static void log__vemit(enum log_level level, int r, const char *fmt, va_list ap)
{
    char line[LOG_LINE_MAX];
    int n, m;
    size_t len;
    int saved_errno = errno;

    if (!log_enabled(level))
        return;
    n = snprintf(line, sizeof(line), "%s: %s: ", ident, level_name(level));
    if (n < 0 || (size_t)n >= sizeof(line))
        return;
    len = (size_t)n;
    m = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
    if (m < 0)
        return;
    len = (size_t)m >= sizeof(line) - len ? sizeof(line) - 1 : len + (size_t)m;
    if (r != 0) {
        m = snprintf(line + len, sizeof(line) - len, ": %s", err_str(r));
        if (m > 0)
            len = (size_t)m >= sizeof(line) - len ? sizeof(line) - 1 : len + (size_t)m;
    }
    if (len >= sizeof(line) - 1)
        len = sizeof(line) - 2; /* truncated: keep room for the newline */
    line[len++] = '\n';
    log_redact(line, len);
    /* One write per line; a short write on stderr is not worth retrying. */
    (void)!write(STDERR_FILENO, line, len);
    explicit_bzero(line, sizeof(line));
    errno = saved_errno;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log__vemit(level, 0, fmt, ap);
    va_end(ap);
}

void log_msg_r(enum log_level level, int r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log__vemit(level, r, fmt, ap);
    va_end(ap);
}
