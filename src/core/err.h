/*
 * err.h - credbroker's own error codes and one function to describe any code.
 *
 * Fallible functions return 0 on success and a negative code on failure: either
 * -errno straight after a failing system call, or one of the ERR_* codes below.
 * Ours sit far outside the errno range (as libuv puts its own from -4095), so a
 * single int carries both kinds without ambiguity.
 */
#ifndef CREDBROKER_ERR_H
#define CREDBROKER_ERR_H

#include <stddef.h>

enum {
    ERR_INCOMPLETE = -9000,    /* need more bytes: not a failure */
    ERR_NOMEM = -9001,         /* allocation failed */
    ERR_TOO_LARGE = -9002,     /* a size over its limit */
    ERR_INVALID = -9003,       /* malformed input */
    ERR_HTTP_BAD_REQUEST = -9010,    /* 400: malformed or ambiguous request */
    ERR_HTTP_HEAD_TOO_LARGE = -9011, /* 431: head or header count over the limit */
    ERR_HTTP_BODY_TOO_LARGE = -9012, /* 413 */
    ERR_HTTP_METHOD = -9013,         /* 405: CONNECT */
    ERR_HTTP_NOT_IMPLEMENTED = -9014, /* 501: Upgrade */
    ERR_KEY_EMPTY = -9020,
    ERR_KEY_TOO_LONG = -9021,
    ERR_KEY_CONTROL = -9022,   /* a control byte in a key: could inject a header */
    ERR_KEY_PERMS = -9023,     /* key file readable by group or others */
    ERR_BAD_URL = -9030,
    ERR_LIMIT = -9031,         /* a per-invocation limit reached */
    ERR_CLOSED = -9032,        /* the object was torn down */
    ERR_UNSUPPORTED = -9033,   /* not available in this build or on this host */
    ERR_UPSTREAM = -9034,      /* upstream transfer failed */
    ERR_SECRET_MOVED = -9035,  /* a secret path no longer names the object opened at start */
    ERR_UNDER_SECRET = -9036,  /* a working directory at or under a covered directory */
    ERR_WS_OUTSIDE = -9040,    /* a workspace path that climbs above the root */
    ERR_WS_ESCAPE = -9041,     /* a workspace path a symlink leads out of the root */
    ERR_WS_LOOP = -9042,       /* too many symlinks in one workspace path */
};

/* Returns a static, human-readable description of any code (ours or -errno). */
const char *err_str(int code);

/* Writes Go's syscall.Errno text for the errno value err (positive) to buf: glibc's
 * message with its first letter lowercased ("no such file or directory"), which is what
 * the Go runner's error texts carry. Thread-safe (strerror_r). */
void err_go_errno(int err, char *buf, size_t len);

#endif
