/*
 * key_source.c - see key_source.h.
 *
 * Bytes are read into a stack buffer that is wiped before returning; the key
 * itself only ever lives in the secret arena.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/kcmp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "env.h"
#include "err.h"
#include "key_source.h"
#include "secret.h"

#define KEY_READ_MAX (SECRET_KEY_MAX + 2) /* the key and a trailing CRLF */

/* Reads fd to the end into buf; returns the length, or -1 with errno (EFBIG if too long). */
static ssize_t read_all(int fd, char *buf, size_t max)
{
    size_t len = 0;

    for (;;) {
        ssize_t n = read(fd, buf + len, max - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return (ssize_t)len;
        len += (size_t)n;
        if (len == max) {
            char extra;

            do {
                n = read(fd, &extra, 1);
            } while (n < 0 && errno == EINTR);
            if (n == 0)
                return (ssize_t)len;
            errno = EFBIG;
            return -1;
        }
    }
}

static int key_finish(char *buf, size_t len, struct secret **out, const char *what, char *err,
                      size_t errlen)
{
    int r;

    if (len > 0 && buf[len - 1] == '\n') {
        len--;
        if (len > 0 && buf[len - 1] == '\r')
            len--;
    }
    if ((r = secret_validate_key((const uint8_t *)buf, len)) != 0) {
        snprintf(err, errlen, "%s: %s", what, err_str(r));
        return r;
    }
    if ((r = secret_from(buf, len, out)) != 0)
        snprintf(err, errlen, "cannot allocate locked memory for the key: %s", err_str(r));
    return r;
}

int key_from_file(const char *path, struct secret **out, char *err, size_t errlen)
{
    char buf[KEY_READ_MAX];
    struct stat st;
    ssize_t n;
    int fd, r;

    *out = NULL;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
        r = -errno;
        snprintf(err, errlen, "key file %.200s: %s", path, strerror(errno));
        return r;
    }
    if (fstat(fd, &st) != 0) {
        r = -errno;
        snprintf(err, errlen, "key file %.200s: %s", path, strerror(errno));
        close(fd);
        return r;
    }
    if (S_ISREG(st.st_mode) && (st.st_mode & 077) != 0) {
        /* Like ssh with a private key: a key others can read is already leaked. */
        snprintf(err, errlen, "key file %.200s: mode %04o: %s", path,
                 (unsigned)(st.st_mode & 07777), err_str(ERR_KEY_PERMS));
        close(fd);
        return ERR_KEY_PERMS;
    }
    if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode)) {
        snprintf(err, errlen, "key file %.200s: not a regular file or pipe", path);
        close(fd);
        return ERR_INVALID;
    }
    n = read_all(fd, buf, sizeof(buf));
    r = errno;
    close(fd);
    if (n < 0) {
        snprintf(err, errlen, "key file %.200s: %s", path,
                 r == EFBIG ? err_str(ERR_KEY_TOO_LONG) : strerror(r));
        explicit_bzero(buf, sizeof(buf));
        return r == EFBIG ? ERR_KEY_TOO_LONG : -r;
    }
    r = key_finish(buf, (size_t)n, out, "key file", err, errlen);
    explicit_bzero(buf, sizeof(buf));
    return r;
}

int key_from_fd(const char *fd_text, struct secret **out, char *err, size_t errlen)
{
    struct stat st;
    char buf[KEY_READ_MAX], *end;
    long fd;
    ssize_t n;
    int r;

    *out = NULL;
    errno = 0;
    fd = strtol(fd_text, &end, 10);
    if (errno != 0 || end == fd_text || *end != '\0' || fd < 0 || fd > 65535) {
        snprintf(err, errlen, "--key-fd: not a file descriptor number: %.20s", fd_text);
        return ERR_INVALID;
    }
    if (fd < 3) {
        /* 0-2 are shared with the command, which could rewind or re-read them. */
        snprintf(err, errlen, "--key-fd must be 3 or above (fds 0-2 are shared with the command)");
        return ERR_INVALID;
    }
    if (fcntl((int)fd, F_GETFD) < 0) {
        snprintf(err, errlen, "--key-fd %ld: %s", fd, strerror(errno));
        return -EBADF;
    }
    /* `--key-fd 3 3<&0` with a file as stdin would share that open file with the command,
     * which could seek back and read the key again: refuse a seekable fd that is one of 0-2
     * under another number. (A pipe is read to its end: nothing is left to read again.) */
    for (int i = 0; i <= 2 && fstat((int)fd, &st) == 0 && !S_ISFIFO(st.st_mode) &&
                    !S_ISSOCK(st.st_mode) && !S_ISCHR(st.st_mode); i++) {
        if (syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, (unsigned long)fd,
                    (unsigned long)i) == 0) {
            snprintf(err, errlen, "--key-fd %ld is the same open file as fd %d, which the "
                                  "command shares: give the key on its own fd", fd, i);
            return ERR_INVALID;
        }
    }
    n = read_all((int)fd, buf, sizeof(buf));
    r = errno;
    close((int)fd); /* read to the end and closed before the command starts */
    if (n < 0) {
        snprintf(err, errlen, "--key-fd %ld: %s", fd,
                 r == EFBIG ? err_str(ERR_KEY_TOO_LONG) : strerror(r));
        explicit_bzero(buf, sizeof(buf));
        return r == EFBIG ? ERR_KEY_TOO_LONG : -r;
    }
    r = key_finish(buf, (size_t)n, out, "--key-fd", err, errlen);
    explicit_bzero(buf, sizeof(buf));
    return r;
}

int key_from_env(const char *name, struct secret **out, char *err, size_t errlen)
{
    char *value;
    size_t len;
    int r;

    *out = NULL;
    if ((r = env_take(name, &value, &len)) != 0) {
        snprintf(err, errlen, "--key-env %.100s: %s", name,
                 r == -ENOENT ? "variable is not set" : err_str(r));
        return r;
    }
    r = key_finish(value, len, out, "--key-env", err, errlen);
    explicit_bzero(value, len);
    free(value);
    return r;
}
