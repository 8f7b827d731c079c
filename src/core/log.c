/*
 * log.c - the logger. See log.h.
 *
 * Lines are formatted into a stack buffer, redacted, then written with one
 * write(2) so lines from one process never interleave.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "secret.h"

#define LOG_LINE_MAX 2048

static enum log_level current_level = LOG_LEVEL_INFO;
static enum log_format current_format = LOG_FORMAT_PLAIN;
static int log_fd = STDERR_FILENO;
static char *log_path;
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

void log_set_format(enum log_format format)
{
    current_format = format;
}

int log_open_file(const char *path)
{
    char *copy = strdup(path);
    int fd;

    if (copy == NULL)
        return ERR_NOMEM;
    if ((fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600)) < 0) {
        int r = -errno;

        free(copy);
        return r;
    }
    if (log_fd != STDERR_FILENO)
        close(log_fd);
    log_fd = fd;
    free(log_path);
    log_path = copy;
    return 0;
}

int log_reopen(void)
{
    char *path = log_path;
    int r;

    if (path == NULL)
        return 0;
    log_path = NULL;
    r = log_open_file(path);
    if (r != 0)
        log_path = path; /* keep writing to the old file */
    else
        free(path);
    return r;
}

/* Appends s to line[*len..cap) quoted for the format; stops silently when full. */
static void put_quoted(char *line, size_t *len, size_t cap, const char *s, bool json)
{
    static const char hex[] = "0123456789abcdef";

    for (; *s != '\0' && *len + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\') {
            line[(*len)++] = '\\';
            line[(*len)++] = (char)c;
        } else if (c == '\n') {
            line[(*len)++] = '\\';
            line[(*len)++] = 'n';
        } else if (c < 0x20 || c == 0x7f) {
            /* JSON wants \u00XX; logfmt readers accept the same escape */
            memcpy(line + *len, "\\u00", 4);
            *len += 4;
            line[(*len)++] = hex[c >> 4];
            line[(*len)++] = hex[c & 15];
        } else {
            line[(*len)++] = (char)c;
        }
    }
    (void)json;
}

static void put_raw(char *line, size_t *len, size_t cap, const char *s)
{
    size_t n = strlen(s);

    if (n > cap - *len - 2)
        n = cap - *len - 2;
    memcpy(line + *len, s, n);
    *len += n;
}

/* A logfmt value needs quotes if it is empty or has a space, '=', '"' or a control byte. */
static bool needs_quotes(const char *s)
{
    if (*s == '\0')
        return true;
    for (; *s != '\0'; s++) {
        if (*s == ' ' || *s == '=' || *s == '"' || (unsigned char)*s < 0x20)
            return true;
    }
    return false;
}

static void put_field(char *line, size_t *len, size_t cap, const char *key, const char *value)
{
    if (current_format == LOG_FORMAT_JSON) {
        put_raw(line, len, cap, ",\"");
        put_quoted(line, len, cap, key, true);
        put_raw(line, len, cap, "\":\"");
        put_quoted(line, len, cap, value, true);
        put_raw(line, len, cap, "\"");
        return;
    }
    put_raw(line, len, cap, " ");
    put_raw(line, len, cap, key);
    put_raw(line, len, cap, "=");
    if (needs_quotes(value)) {
        put_raw(line, len, cap, "\"");
        put_quoted(line, len, cap, value, false);
        put_raw(line, len, cap, "\"");
    } else {
        put_quoted(line, len, cap, value, false);
    }
}

static void __attribute__((format(printf, 4, 0)))
log__vemit(enum log_level level, int r, const char *const *kv, const char *fmt, va_list ap)
{
    /* Written before read; not zeroed on entry (-ftrivial-auto-var-init), which a
     * filtered-out debug line on every request paid for (bench CG). */
    char msg[LOG_LINE_MAX] __attribute__((uninitialized));
    char line[LOG_LINE_MAX * 2] __attribute__((uninitialized));
    char when[40];
    size_t mlen, len = 0;
    int m, saved_errno = errno;

    if (!log_enabled(level))
        return;
    m = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (m < 0)
        return;
    mlen = (size_t)m >= sizeof(msg) ? sizeof(msg) - 1 : (size_t)m;
    if (r != 0) {
        m = snprintf(msg + mlen, sizeof(msg) - mlen, ": %s", err_str(r));
        if (m > 0)
            mlen = (size_t)m >= sizeof(msg) - mlen ? sizeof(msg) - 1 : mlen + (size_t)m;
    }
    if (current_format == LOG_FORMAT_PLAIN) {
        put_raw(line, &len, sizeof(line), ident);
        put_raw(line, &len, sizeof(line), ": ");
        put_raw(line, &len, sizeof(line), level_name(level));
        put_raw(line, &len, sizeof(line), ": ");
        put_raw(line, &len, sizeof(line), msg);
        for (; kv != NULL && kv[0] != NULL; kv += 2) {
            if (kv[1] != NULL)
                put_field(line, &len, sizeof(line), kv[0], kv[1]);
        }
    } else {
        struct timespec ts;
        struct tm tm;

        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 ts.tv_nsec / 1000000);
        if (current_format == LOG_FORMAT_JSON) {
            put_raw(line, &len, sizeof(line), "{\"ts\":\"");
            put_raw(line, &len, sizeof(line), when);
            put_raw(line, &len, sizeof(line), "\"");
            put_field(line, &len, sizeof(line), "level", level_name(level));
            put_field(line, &len, sizeof(line), "msg", msg);
        } else {
            put_raw(line, &len, sizeof(line), "ts=");
            put_raw(line, &len, sizeof(line), when);
            put_field(line, &len, sizeof(line), "level", level_name(level));
            put_field(line, &len, sizeof(line), "msg", msg);
        }
        for (; kv != NULL && kv[0] != NULL; kv += 2) {
            if (kv[1] != NULL)
                put_field(line, &len, sizeof(line), kv[0], kv[1]);
        }
        if (current_format == LOG_FORMAT_JSON)
            put_raw(line, &len, sizeof(line), "}");
    }
    line[len++] = '\n';
    log_redact(line, len);
    /* One write per line; a short write on a log is not worth retrying. */
    (void)!write(log_fd, line, len);
    explicit_bzero(msg, sizeof(msg));
    explicit_bzero(line, sizeof(line));
    errno = saved_errno;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log__vemit(level, 0, NULL, fmt, ap);
    va_end(ap);
}

void log_msg_r(enum log_level level, int r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log__vemit(level, r, NULL, fmt, ap);
    va_end(ap);
}

void log_kv(enum log_level level, const char *const *kv, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log__vemit(level, 0, kv, fmt, ap);
    va_end(ap);
}
