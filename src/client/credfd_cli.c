/*
 * credfd_cli.c - credfd, a small curl-like command over the brokered channel.
 *
 * A command running under `credbroker exec` calls the API with it:
 *
 *     credfd /channel/list                       GET
 *     credfd POST /channel/list -d '{"a":1}'     the form of DESIGN.md section 7
 *     credfd -X PATCH -H 'X-A: b' -d @body.json -i -f /path
 *
 * It dials one connection through FLASHDUTY_CRED_FD (libcredfd), sends one
 * HTTP/1.1 request with app_key=broker-sentinel in the query (the broker puts
 * the real key in its place) and streams the response body to stdout. Bodies
 * go both ways through one fixed-size buffer, so memory stays flat whatever
 * their size. It is not a general HTTP client: no TLS, no redirects, no
 * retries, one request per run; the broker and the upstream do the rest.
 *
 * The command line and the body's source are credfd_args.c; this file builds the
 * request, moves the bytes and reads the response.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ascii.h"
#include "chunked.h"
#include "credbroker_config.h"
#include "credfd.h"
#include "credfd_cli.h"
#include "rewrite.h"

/* What the response head says about the rest. */
struct resp_head {
    int status;
    int minor_version;
    bool has_length;
    uint64_t length;
    bool chunked;
    size_t status_line_len; /* without its CRLF */
};

/* A bounded in-memory string being built; overflow is sticky. */
struct head_builder {
    char *p;
    size_t len, cap;
    bool overflow;
};

/* The buffers of one run, allocated once. */
struct io {
    int sock;
    char req[CREDFD_REQ_HEAD_MAX];
    char buf[CREDFD_CHUNK_ROOM + CREDFD_IO_CHUNK + 2]; /* request body chunk, then response */
};

/* -- building the request ---------------------------------------------------------------------- */

static void head_put(struct head_builder *h, const char *s, size_t n)
{
    if (h->overflow || n > h->cap - h->len) {
        h->overflow = true;
        return;
    }
    memcpy(h->p + h->len, s, n);
    h->len += n;
}

static void head_put_str(struct head_builder *h, const char *s)
{
    head_put(h, s, strlen(s));
}

static void head_put_header(struct head_builder *h, const char *name, size_t name_len,
                            const char *value, size_t value_len)
{
    head_put(h, name, name_len);
    head_put(h, ": ", 2);
    head_put(h, value, value_len);
    head_put(h, "\r\n", 2);
}

static bool query_has_param(const char *q, size_t len, const char *name)
{
    size_t i = 0;

    while (i <= len) {
        const char *amp = memchr(q + i, '&', len - i);
        size_t end = amp != NULL ? (size_t)(amp - q) : len;
        const char *eq = memchr(q + i, '=', end - i);
        size_t name_end = eq != NULL ? (size_t)(eq - q) : end;

        if (rewrite_param_name_equals(q + i, name_end - i, name, strlen(name)))
            return true;
        i = end + 1;
    }
    return false;
}

/* Appends the request target: PATH without its fragment (never sent), plus
 * the sentinel app_key unless the query already names one (or the request goes to a route,
 * whose injection mode credfd does not know: the broker injects the key anyway). */
static void head_put_target(struct head_builder *h, const char *path, bool sentinel)
{
    size_t len = strcspn(path, "#");
    const char *q = memchr(path, '?', len);

    head_put(h, path, len);
    if (!sentinel)
        return;
    if (q == NULL) {
        head_put_str(h, "?" CREDFD_SENTINEL);
        return;
    }
    q++;
    if (query_has_param(q, (size_t)(path + len - q), CREDFD_SENTINEL_NAME))
        return;
    if (path + len > q && path[len - 1] != '&')
        head_put(h, "&", 1);
    head_put_str(h, CREDFD_SENTINEL);
}

/* The authority of FLASHDUTY_BASE_URL for Host, or the placeholder if it has none. */
static void base_url_authority(const char **host, size_t *len)
{
    const char *url = getenv(CREDFD_ENV_BASE_URL);
    const char *a, *end, *at;

    *host = CREDFD_PLACEHOLDER_HOST;
    *len = strlen(CREDFD_PLACEHOLDER_HOST);
    if (url == NULL || (a = strstr(url, "://")) == NULL)
        return;
    a += 3;
    end = a + strcspn(a, "/?#");
    at = memrchr(a, '@', (size_t)(end - a));
    if (at != NULL)
        a = at + 1; /* userinfo never goes into Host */
    if (end == a)
        return;
    for (const char *p = a; p < end; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return;
    *host = a;
    *len = (size_t)(end - a);
}

/* The user's -H of that name, if any. */
static const struct req_header *opts_find_header(const struct opts *o, const char *name)
{
    for (size_t i = 0; i < o->nheaders; i++)
        if (credfd_name_equals(o->headers[i].name, o->headers[i].name_len, name))
            return &o->headers[i];
    return NULL;
}

/* Builds the request head in buf. Returns its length, or 0 if it does not fit. */
static size_t request_build_head(const struct opts *o, const struct body *b, char *buf, size_t cap,
                                 size_t *line_len)
{
    struct head_builder h = {buf, 0, cap, false};
    const char *host;
    size_t host_len;
    char num[32];
    struct {
        const char *name, *value;
    } defaults[] = {
        {"User-Agent", "credfd/" CREDBROKER_VERSION},
        {"Accept", "*/*"},
        {"Content-Type", b->kind != BODY_NONE ? "application/json" : NULL},
    };

    head_put_str(&h, o->method);
    head_put(&h, " ", 1);
    head_put_target(&h, o->path, o->route_host == NULL);
    *line_len = h.len;
    head_put_str(&h, " HTTP/1.1\r\n");
    if (o->route_host != NULL) {
        host = o->route_host;
        host_len = o->route_host_len;
    } else {
        base_url_authority(&host, &host_len);
    }
    if (opts_find_header(o, "Host") == NULL)
        head_put_header(&h, "Host", 4, host, host_len);
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
        if (defaults[i].value != NULL && opts_find_header(o, defaults[i].name) == NULL)
            head_put_header(&h, defaults[i].name, strlen(defaults[i].name), defaults[i].value,
                            strlen(defaults[i].value));
    /* An empty value drops the default of that name, as curl's -H 'Name:' does. */
    for (size_t i = 0; i < o->nheaders; i++)
        if (o->headers[i].value_len > 0)
            head_put_header(&h, o->headers[i].name, o->headers[i].name_len, o->headers[i].value,
                            o->headers[i].value_len);
    switch (b->kind) {
    case BODY_NONE:
        break;
    case BODY_LITERAL:
    case BODY_LENGTH:
        snprintf(num, sizeof(num), "%" PRIu64,
                 b->kind == BODY_LITERAL ? (uint64_t)b->literal_len : b->length);
        head_put_header(&h, "Content-Length", 14, num, strlen(num));
        break;
    case BODY_CHUNKED:
        head_put_str(&h, "Transfer-Encoding: chunked\r\n");
        break;
    }
    /* One request per run: the broker may close once it has answered. */
    head_put_str(&h, "Connection: close\r\n\r\n");
    return h.overflow ? 0 : h.len;
}

/* -- socket and file I/O ----------------------------------------------------------------------- */

/* Result of sock_send_all() when the broker answered (or hung up) before the
 * request was all sent: stop sending and read what it said. */
#define SEND_ANSWERED 1

/*
 * Sends p[0..n) on the non-blocking socket. Returns 0, SEND_ANSWERED when the
 * broker has started to answer or closed its side while we still send (an
 * early 4xx, say: the response is what matters then), or -errno.
 */
static int sock_send_all(int sock, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(sock, p, n, MSG_NOSIGNAL);
        struct pollfd pfd = {.fd = sock, .events = POLLOUT | POLLIN};

        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EPIPE || errno == ECONNRESET))
            return SEND_ANSWERED;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
            return -errno;
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
            return SEND_ANSWERED;
    }
    return 0;
}

/* Reads what is there (waiting if needed) from a possibly non-blocking fd.
 * Returns the byte count, 0 at end of file, or -errno. */
static ssize_t fd_read_some(int fd, char *p, size_t cap)
{
    for (;;) {
        ssize_t n = read(fd, p, cap);
        struct pollfd pfd = {.fd = fd, .events = POLLIN};

        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
            return -errno;
    }
}

/* Writes all of p[0..n) to fd, waiting if the fd is non-blocking. 0 or -errno. */
static int fd_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};

        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        if (w == 0)
            return -EIO;
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
            return -errno;
    }
    return 0;
}

/* Writes response bytes to stdout. Returns 0 or an exit status; a reader that
 * went away (EPIPE) ends the run quietly, as it does for any filter. */
static int out_write(const char *p, size_t n)
{
    int r = fd_write_all(STDOUT_FILENO, p, n);

    if (r == -EPIPE)
        return CREDFD_EXIT_IO;
    if (r < 0)
        return credfd_report(CREDFD_EXIT_IO, "writing to stdout: %s", strerror(-r));
    return 0;
}

/* Sends the request body. Returns 0, SEND_ANSWERED, or an exit status (> 1)
 * after reporting. */
static int request_send_body(struct io *io, struct body *b)
{
    char *data = io->buf + CREDFD_CHUNK_ROOM;
    uint64_t left = b->length;
    int r = 0;

    switch (b->kind) {
    case BODY_NONE:
        return 0;
    case BODY_LITERAL:
        r = sock_send_all(io->sock, b->literal, b->literal_len);
        break;
    case BODY_LENGTH:
        while (left > 0 && r == 0) {
            size_t want = left < CREDFD_IO_CHUNK ? (size_t)left : CREDFD_IO_CHUNK;
            ssize_t n = fd_read_some(b->fd, data, want);

            if (n < 0)
                return credfd_report(CREDFD_EXIT_IO, "reading %.200s: %s", b->name,
                                     strerror((int)-n));
            if (n == 0)
                return credfd_report(CREDFD_EXIT_IO, "%.200s shrank while it was being sent",
                                     b->name);
            left -= (uint64_t)n;
            r = sock_send_all(io->sock, data, (size_t)n);
        }
        break;
    case BODY_CHUNKED:
        /* Each chunk goes out in one send: its size line is written into the
         * room before the data, its CRLF after it (RFC 9112 7.1). */
        for (;;) {
            ssize_t n = fd_read_some(b->fd, data, CREDFD_IO_CHUNK);
            char line[CREDFD_CHUNK_ROOM];
            int line_len;

            if (n < 0)
                return credfd_report(CREDFD_EXIT_IO, "reading %.200s: %s", b->name,
                                     strerror((int)-n));
            if (n == 0) {
                r = sock_send_all(io->sock, "0\r\n\r\n", 5);
                break;
            }
            line_len = snprintf(line, sizeof(line), "%zx\r\n", (size_t)n);
            memcpy(data - line_len, line, (size_t)line_len);
            memcpy(data + n, "\r\n", 2);
            r = sock_send_all(io->sock, data - line_len, (size_t)line_len + (size_t)n + 2);
            if (r != 0)
                break;
        }
        break;
    }
    if (r < 0)
        return credfd_report(CREDFD_EXIT_IO, "sending the request: %s", strerror(-r));
    return r;
}

/* -- reading the response ---------------------------------------------------------------------- */

/* Parses a content-length value: 1*DIGIT, no sign, no list. */
static bool parse_length(const char *v, size_t len, uint64_t *out)
{
    uint64_t n = 0;

    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!ascii_is_digit((unsigned char)v[i]) || n > (UINT64_MAX - 9) / 10)
            return false;
        n = n * 10 + (uint64_t)(v[i] - '0');
    }
    *out = n;
    return true;
}

/* Parses "HTTP/1.x NNN [reason]" from line[0..len). Returns 0 or -1. */
static int resp_parse_status_line(const char *line, size_t len, struct resp_head *r)
{
    if (len < 12 || memcmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1') ||
        line[8] != ' ')
        return -1;
    for (size_t i = 9; i < 12; i++)
        if (!ascii_is_digit((unsigned char)line[i]))
            return -1;
    if (line[9] == '0')
        return -1;
    /* RFC 9112 4: the SP before an empty reason-phrase is required, but
     * enough servers leave it out that refusing would help nobody. */
    if (len > 12 && line[12] != ' ')
        return -1;
    for (size_t i = 13; i < len; i++)
        if (!credfd_is_field_value_byte((unsigned char)line[i]))
            return -1;
    r->minor_version = line[7] - '0';
    r->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    r->status_line_len = len;
    return 0;
}

/*
 * Parses one header field line into r. Returns NULL or why it is refused.
 * Framing is checked as strictly as the broker checks requests (RFC 9112 6.3):
 * a response that could be read two ways is an error, not a guess.
 */
static const char *resp_parse_field(const char *line, size_t len, struct resp_head *r)
{
    const char *colon = memchr(line, ':', len);
    const char *v, *end = line + len;
    size_t name_len;
    uint64_t n;

    if (credfd_is_ows(line[0]))
        return "obsolete line folding in the response head";
    if (colon == NULL || !credfd_is_token(line, (size_t)(colon - line)))
        return "a malformed header field in the response";
    name_len = (size_t)(colon - line);
    for (v = colon + 1; v < end; v++)
        if (!credfd_is_field_value_byte((unsigned char)*v))
            return "a control byte in a response header";
    v = colon + 1;
    while (v < end && credfd_is_ows(*v))
        v++;
    while (end > v && credfd_is_ows(end[-1]))
        end--;
    if (credfd_name_equals(line, name_len, "Content-Length")) {
        if (!parse_length(v, (size_t)(end - v), &n))
            return "an invalid Content-Length in the response";
        if (r->has_length && r->length != n)
            return "conflicting Content-Length headers in the response";
        r->has_length = true;
        r->length = n;
    } else if (credfd_name_equals(line, name_len, "Transfer-Encoding")) {
        if (r->chunked || !credfd_name_equals(v, (size_t)(end - v), "chunked"))
            return "a transfer coding other than one chunked in the response";
        r->chunked = true;
    }
    return NULL;
}

/* Parses a complete head p[0..len), which ends with CRLF CRLF. Returns NULL or why not. */
static const char *resp_parse_head(const char *p, size_t len, struct resp_head *r)
{
    size_t off = 0;
    bool first = true;

    memset(r, 0, sizeof(*r));
    for (;;) {
        const char *lf = memchr(p + off, '\n', len - off);
        size_t line_len, i;
        const char *why;

        if (lf == NULL || lf == p + off || lf[-1] != '\r')
            return "a bare LF in the response head";
        line_len = (size_t)(lf - (p + off)) - 1;
        for (i = 0; i < line_len; i++)
            if (p[off + i] == '\r' || p[off + i] == '\0')
                return "a bare CR or NUL in the response head";
        if (line_len == 0)
            break;
        if (first) {
            if (resp_parse_status_line(p + off, line_len, r) != 0)
                return "a malformed status line";
            first = false;
        } else if ((why = resp_parse_field(p + off, line_len, r)) != NULL) {
            return why;
        }
        off += line_len + 2;
    }
    if (first)
        return "an empty response head";
    if (r->chunked && r->has_length)
        return "both Content-Length and Transfer-Encoding in the response";
    if (r->chunked && r->minor_version == 0)
        return "Transfer-Encoding in an HTTP/1.0 response";
    return NULL;
}

/*
 * Reads one response head into io->buf, which holds *filled bytes already.
 * Returns 0 with *head_len set (the bytes after it are body), or an exit status.
 */
static int resp_read_head(struct io *io, size_t *filled, size_t *head_len)
{
    size_t scanned = 0;

    for (;;) {
        size_t from = scanned > 3 ? scanned - 3 : 0;
        const char *end = memmem(io->buf + from, *filled - from, "\r\n\r\n", 4);
        ssize_t n;

        if (end != NULL) {
            *head_len = (size_t)(end - io->buf) + 4;
            return 0;
        }
        scanned = *filled;
        if (*filled >= CREDFD_HEAD_MAX)
            return credfd_report(CREDFD_EXIT_IO, "the response head is over %d KiB",
                                 CREDFD_HEAD_MAX / 1024);
        n = fd_read_some(io->sock, io->buf + *filled, CREDFD_HEAD_MAX - *filled);
        if (n < 0)
            return credfd_report(CREDFD_EXIT_IO, "reading the response: %s", strerror((int)-n));
        if (n == 0 && *filled == 0)
            return credfd_report(CREDFD_EXIT_IO,
                                 "the broker closed the connection without an answer");
        if (n == 0)
            return credfd_report(CREDFD_EXIT_IO, "the response head was cut short");
        *filled += (size_t)n;
    }
}

/* Copies a Content-Length body to stdout. pending[0..n) is what came with the head. */
static int resp_copy_length(struct io *io, size_t pending, uint64_t length)
{
    uint64_t done = 0;
    int r;

    for (;;) {
        size_t take = pending;
        ssize_t n;

        if (take > length - done)
            take = (size_t)(length - done); /* bytes past the body: not ours to print */
        if ((r = out_write(io->buf, take)) != 0)
            return r;
        done += take;
        if (done == length)
            return 0;
        n = fd_read_some(io->sock, io->buf,
                         length - done < CREDFD_IO_CHUNK ? (size_t)(length - done)
                                                         : CREDFD_IO_CHUNK);
        if (n < 0)
            return credfd_report(CREDFD_EXIT_IO, "reading the response body: %s",
                                 strerror((int)-n));
        if (n == 0)
            return credfd_report(
                CREDFD_EXIT_IO,
                "the response body was cut short (%" PRIu64 " of %" PRIu64 " bytes)", done, length);
        pending = (size_t)n;
    }
}

/* Decodes a chunked body to stdout. pending[0..n) is what came with the head. */
static int resp_copy_chunked(struct io *io, size_t pending)
{
    struct chunked_decoder d;
    int r;

    chunked_init(&d);
    for (;;) {
        size_t off = 0;
        ssize_t n;

        while (off < pending) {
            size_t used, data_len;
            const char *data;
            int rc = chunked_decode(&d, io->buf + off, pending - off, &used, &data, &data_len);

            if (rc < 0)
                return credfd_report(CREDFD_EXIT_IO,
                                     "malformed chunked framing in the response body");
            if (data_len > 0 && (r = out_write(data, data_len)) != 0)
                return r;
            off += used;
            if (rc == 1)
                return 0;
        }
        n = fd_read_some(io->sock, io->buf, CREDFD_IO_CHUNK);
        if (n < 0)
            return credfd_report(CREDFD_EXIT_IO, "reading the response body: %s",
                                 strerror((int)-n));
        if (n == 0)
            return credfd_report(CREDFD_EXIT_IO, "the chunked response body was cut short");
        pending = (size_t)n;
    }
}

/* Copies a body that ends when the connection does (HTTP/1.0 style). */
static int resp_copy_until_close(struct io *io, size_t pending)
{
    int r;

    for (;;) {
        ssize_t n;

        if ((r = out_write(io->buf, pending)) != 0)
            return r;
        n = fd_read_some(io->sock, io->buf, CREDFD_IO_CHUNK);
        if (n < 0)
            return credfd_report(CREDFD_EXIT_IO, "reading the response body: %s",
                                 strerror((int)-n));
        if (n == 0)
            return 0;
        pending = (size_t)n;
    }
}

/* Reads the response (interim heads, final head, body) and writes it out. */
static int resp_run(struct io *io, const struct opts *o)
{
    struct resp_head h;
    size_t filled = 0, head_len = 0;
    const char *why;
    int r;

    for (int interim = 0;; interim++) {
        if ((r = resp_read_head(io, &filled, &head_len)) != 0)
            return r;
        if ((why = resp_parse_head(io->buf, head_len, &h)) != NULL)
            return credfd_report(CREDFD_EXIT_IO, "%s", why);
        if (o->verbose)
            fprintf(stderr, "< %.*s\n", (int)h.status_line_len, io->buf);
        if (h.status >= 200)
            break;
        if (h.status == 101)
            return credfd_report(CREDFD_EXIT_IO, "the broker switched protocols (101), unasked");
        if (interim == CREDFD_MAX_INTERIM)
            return credfd_report(CREDFD_EXIT_IO, "more than %d interim (1xx) responses",
                                 CREDFD_MAX_INTERIM);
        if (o->include && (r = out_write(io->buf, head_len)) != 0)
            return r;
        filled -= head_len;
        memmove(io->buf, io->buf + head_len, filled);
    }
    if (o->fail && h.status >= 400) {
        /* Like curl --fail: nothing of the response reaches stdout. */
        return credfd_report(CREDFD_EXIT_HTTP, "the server answered HTTP %d", h.status);
    }
    if (o->include && (r = out_write(io->buf, head_len)) != 0)
        return r;
    filled -= head_len;
    memmove(io->buf, io->buf + head_len, filled);
    /* RFC 9112 6.3: which framing applies, in that order. */
    if (strcmp(o->method, "HEAD") == 0 || h.status == 204 || h.status == 304)
        return 0;
    if (h.chunked)
        return resp_copy_chunked(io, filled);
    if (h.has_length)
        return resp_copy_length(io, filled, h.length);
    return resp_copy_until_close(io, filled);
}

/* -- main -------------------------------------------------------------------------------------- */

/* Dials the broker. Returns the stream fd, or -1 with *status set after reporting. */
static int broker_dial(int *status)
{
    const char *v = getenv(CREDFD_ENV_FD);
    int ctl = credfd_from_env();
    int fd;

    if (ctl < 0 && errno == ENOENT) {
        *status = credfd_report(CREDFD_EXIT_NOT_BROKERED,
                                "not running under credbroker: " CREDFD_ENV_FD " is not set");
        return -1;
    }
    if (ctl < 0) {
        *status = credfd_report(CREDFD_EXIT_NOT_BROKERED,
                                "not running under credbroker: " CREDFD_ENV_FD "='%.20s' is not a "
                                "control fd (a number >= 3)",
                                v);
        return -1;
    }
    fd = credfd_dial(ctl);
    if (fd >= 0)
        return fd;
    switch (errno) {
    case EPROTO:
        *status = credfd_report(CREDFD_EXIT_REFUSED,
                                "the broker refused the connection "
                                "(connection limit, dial rate, or the invocation has ended)");
        break;
    case EPIPE:
    case ECONNRESET:
        *status =
            credfd_report(CREDFD_EXIT_REFUSED,
                          "the broker's control channel is closed (the invocation has ended)");
        break;
    case EBADF:
    case ENOTSOCK:
        *status = credfd_report(CREDFD_EXIT_NOT_BROKERED,
                                "not running under credbroker: fd %d is not a control channel (%s)",
                                ctl, strerror(errno));
        break;
    default:
        *status = credfd_report(CREDFD_EXIT_REFUSED, "dialing the broker: %s", strerror(errno));
        break;
    }
    return -1;
}

int main(int argc, char **argv)
{
    struct opts o;
    struct body b = {.fd = -1};
    struct io *io = NULL;
    struct sigaction sa;
    size_t head_len, line_len = 0;
    int status, r;

    /* A reader of stdout that goes away must not kill us mid-write: writes
     * then fail with EPIPE, and we exit with a status instead. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    if ((status = credfd_opts_parse(argc, argv, &o)) != 0)
        return status < 0 ? CREDFD_EXIT_OK : status;
    if ((io = calloc(1, sizeof(*io))) == NULL)
        return credfd_report(CREDFD_EXIT_IO, "out of memory");
    io->sock = -1;
    if ((status = credfd_body_open(&o, &b)) != 0)
        goto out;
    head_len = request_build_head(&o, &b, io->req, sizeof(io->req), &line_len);
    if (head_len == 0) {
        status = credfd_report(CREDFD_EXIT_USAGE, "the request head is over %d KiB",
                               CREDFD_REQ_HEAD_MAX / 1024);
        goto out;
    }
    if ((io->sock = broker_dial(&status)) < 0)
        goto out;
    /* Non-blocking, so a broker that answers while we still send (an early
     * 4xx) is noticed instead of deadlocking both sides on full buffers. */
    if (fcntl(io->sock, F_SETFL, fcntl(io->sock, F_GETFL) | O_NONBLOCK) < 0) {
        status = credfd_report(CREDFD_EXIT_IO, "fcntl: %s", strerror(errno));
        goto out;
    }
    if (o.verbose)
        fprintf(stderr, "> %.*s HTTP/1.1\n", (int)line_len, io->req);
    r = sock_send_all(io->sock, io->req, head_len);
    if (r == 0)
        r = request_send_body(io, &b);
    if (r < 0) {
        status = credfd_report(CREDFD_EXIT_IO, "sending the request: %s", strerror(-r));
        goto out;
    }
    if (r > SEND_ANSWERED) {
        status = r;
        goto out;
    }
    status = resp_run(io, &o);
out:
    credfd_body_close(&b);
    if (io != NULL && io->sock >= 0)
        close(io->sock);
    free(io);
    return status;
}
