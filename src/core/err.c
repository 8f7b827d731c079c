/*
 * err.c - text for error codes (like OpenSSH's ssh_err() and libuv's uv_strerror()).
 */
#include <stdio.h>
#include <string.h>

#include "err.h"

void err_go_errno(int err, char *buf, size_t len)
{
    const char *s = strerror_r(err, buf, len); /* GNU: may return a static string */

    if (s != buf)
        snprintf(buf, len, "%s", s);
    if (buf[0] >= 'A' && buf[0] <= 'Z')
        buf[0] = (char)(buf[0] + 32);
}

const char *err_str(int code)
{
    switch (code) {
    case 0: return "success";
    case ERR_INCOMPLETE: return "incomplete input";
    case ERR_NOMEM: return "out of memory";
    case ERR_TOO_LARGE: return "too large";
    case ERR_INVALID: return "invalid input";
    case ERR_HTTP_BAD_REQUEST: return "bad request";
    case ERR_HTTP_HEAD_TOO_LARGE: return "request head too large";
    case ERR_HTTP_BODY_TOO_LARGE: return "request body too large";
    case ERR_HTTP_METHOD: return "method not allowed";
    case ERR_HTTP_NOT_IMPLEMENTED: return "not implemented";
    case ERR_KEY_EMPTY: return "key is empty";
    case ERR_KEY_TOO_LONG: return "key is longer than 4096 bytes";
    case ERR_KEY_CONTROL: return "key contains a control byte (CR, LF, NUL, ...)";
    case ERR_KEY_PERMS: return "key file is readable by group or others (chmod 600 it)";
    case ERR_BAD_URL: return "bad URL";
    case ERR_LIMIT: return "limit reached";
    case ERR_CLOSED: return "closed";
    case ERR_UNSUPPORTED: return "not supported on this platform or build";
    case ERR_UPSTREAM: return "upstream transfer failed";
    case ERR_SECRET_MOVED: return "a secret path changed since start";
    case ERR_UNDER_SECRET: return "the working directory is under a secret path";
    case ERR_WS_OUTSIDE: return "path is outside workspace root";
    case ERR_WS_ESCAPE: return "path escapes workspace root via symlink";
    case ERR_WS_LOOP: return "too many links";
    }
    if (code < 0 && code > -4096)
        return strerror(-code);
    return "unknown error";
}
