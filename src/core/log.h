/*
 * log.h - one line per event to stderr (or a file), with redaction.
 *
 * Every line is checked against the registered secrets before it is written: a
 * key that slipped into a message by mistake is masked, never printed. Strings
 * that come from a peer must be logged with a width bound ("%.100s").
 */
#ifndef CREDBROKER_LOG_H
#define CREDBROKER_LOG_H

#include <stdbool.h>

struct secret;

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

void log_set_level(enum log_level level);
/* Parses "error", "warn", "info", "debug"; returns 0 or -1. */
int log_parse_level(const char *name, enum log_level *out);
bool log_enabled(enum log_level level);
/* Program name used as the line prefix (default "credbroker"). */
void log_set_ident(const char *ident);

enum log_format {
    LOG_FORMAT_PLAIN,  /* "credbroker: warning: message" (the exec command's default) */
    LOG_FORMAT_LOGFMT, /* ts=... level=info msg="..." key=value (the runner's default) */
    LOG_FORMAT_JSON,   /* {"ts":...,"level":"info","msg":"...","key":"value"} */
};
void log_set_format(enum log_format format);

/* Sends lines to path (appended, created 0600) instead of stderr; remembers the path so
 * log_reopen() (SIGHUP, after rotation) can open it again. Returns 0 or -errno. */
int log_open_file(const char *path);
int log_reopen(void);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Like log_msg with context fields: kv is a NULL-terminated list of key, value pairs (values may be
 * NULL: the pair is skipped), e.g. {"task_id", id, "trace_id", trace, NULL}. */
void log_kv(enum log_level level, const char *const *kv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like log_msg, with ": <err_str(r)>" appended (OpenSSH's error_fr). */
void log_msg_r(enum log_level level, int r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_error_r(r, ...) log_msg_r(LOG_LEVEL_ERROR, (r), __VA_ARGS__)
#define log_warn_r(r, ...) log_msg_r(LOG_LEVEL_WARN, (r), __VA_ARGS__)

/* Registers a secret whose bytes must never appear in a log line; the secret
 * must stay alive until log_redact_remove(). Returns 0 or ERR_NOMEM. */
int log_redact_add(const struct secret *s);
void log_redact_remove(const struct secret *s);
/* Masks every registered secret inside line[0..len) in place. */
void log_redact(char *line, size_t len);

#endif
