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
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ascii.h"
#include "chunked.h"
#include "rewrite.h"
#include "credbroker_config.h"
#include "credfd.h"

#define CREDFD_IO_CHUNK (64 * 1024)     /* bytes per read or write of a body */
#define CREDFD_HEAD_MAX (64 * 1024)     /* one response head, final CRLF included */
#define CREDFD_REQ_HEAD_MAX (64 * 1024) /* the request head we build */
#define CREDFD_MAX_HEADERS 100          /* -H options */
#define CREDFD_MAX_INTERIM 16           /* 1xx heads before the final one */
#define CREDFD_CHUNK_ROOM 24            /* room before a body chunk for its size line */
#define CREDFD_SENTINEL_NAME "app_key"
#define CREDFD_SENTINEL "app_key=broker-sentinel"

/* Exit statuses (see the usage text). */
enum {
    CREDFD_EXIT_OK = 0,
    CREDFD_EXIT_USAGE = 2,
    CREDFD_EXIT_NOT_BROKERED = 3,
    CREDFD_EXIT_REFUSED = 4,
    CREDFD_EXIT_IO = 5,
    CREDFD_EXIT_HTTP = 22,
};

static const char usage_text[] =
    "usage: credfd [options] PATH\n"
    "       credfd METHOD PATH [options]\n"
    "One HTTP request to the API through credbroker's control channel (FLASHDUTY_CRED_FD);\n"
    "the broker adds the credential. PATH starts with '/' and may carry a query;\n"
    "app_key=broker-sentinel is appended unless it has an app_key parameter.\n"
    "\n"
    "  -X METHOD         request method (default GET, or POST with -d)\n"
    "  -H 'Name: value'  add a request header (repeatable); 'Name:' drops a default one\n"
    "  -d DATA           request body DATA (Content-Type: application/json unless -H sets one)\n"
    "  -d @FILE          request body streamed from FILE\n"
    "  -d @-             request body streamed from standard input (chunked)\n"
    "  -i                write the response status line and headers before the body\n"
    "  -f                fail on HTTP status >= 400: exit 22 and write no body\n"
    "  -v                write the request line and the response status to stderr\n"
    "  --route NAME      call the broker's route NAME (Host NAME.broker.local) instead of\n"
    "                    the default one; PATH may also be http://NAME.broker.local/path.\n"
    "                    A route's request goes without the app_key sentinel\n"
    "  -h, --help        write this text and exit\n"
    "\n"
    "Exit status: 0 complete response; 2 usage; 3 not running under credbroker;\n"
    "4 the broker refused the connection; 5 I/O or protocol error; 22 HTTP error with -f.\n";

/* One -H option, split; views into argv. */
struct req_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

struct opts {
    const char *method; /* NULL: GET, or POST with -d */
    const char *path;
    /* A route's host (--route, or a http://NAME.broker.local/... PATH); NULL: the default
     * route's, from FLASHDUTY_BASE_URL. */
    const char *route_host;
    size_t route_host_len;
    char route_buf[64 + sizeof(CREDFD_ROUTE_SUFFIX)];
    const char *data; /* the -d argument as given; NULL without -d */
    struct req_header headers[CREDFD_MAX_HEADERS];
    size_t nheaders;
    bool include, fail, verbose;
};

/* Where the request body comes from. */
enum body_kind {
    BODY_NONE,
    BODY_LITERAL, /* -d DATA */
    BODY_LENGTH,  /* -d @FILE, a regular file: Content-Length from fstat */
    BODY_CHUNKED, /* -d @- or a file of unknown length: chunked */
};

struct body {
    enum body_kind kind;
    const char *literal;
    size_t literal_len;
    int fd; /* BODY_LENGTH, BODY_CHUNKED; owned unless it is 0 */
    uint64_t length;
    const char *name; /* for messages */
};

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

static int report(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes "credfd: <message>" to stderr and returns status, for `return report(...)`. */
static int report(int status, const char *fmt, ...)
{
    va_list ap;

    fputs("credfd: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return status;
}

/* -- arguments --------------------------------------------------------------------------------- */

static bool is_token(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!ascii_is_tchar((unsigned char)s[i]))
            return false;
    return true;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Bytes allowed in a header value (RFC 9110 5.5): VCHAR, SP, HTAB, obs-text. */
static bool is_field_value_byte(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool name_equals(const char *name, size_t len, const char *lit)
{
    return strlen(lit) == len && strncasecmp(name, lit, len) == 0;
}

/* Framing and connection headers are credfd's own: a user's would make the
 * request say two different things about where its body ends. */
static bool header_is_reserved(const char *name, size_t len)
{
    static const char *const reserved[] = {
        "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "TE",
        "Trailer",        "Upgrade",           "Expect",
    };

    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (name_equals(name, len, reserved[i]))
            return true;
    return false;
}

/* Splits a -H argument "Name: value" into h; returns 0 or a usage error. */
static int opts_parse_header(const char *arg, struct req_header *h)
{
    const char *colon = strchr(arg, ':');
    const char *v, *end;

    if (colon == NULL || !is_token(arg, (size_t)(colon - arg)))
        return report(CREDFD_EXIT_USAGE, "-H wants 'Name: value', got '%.100s'", arg);
    h->name = arg;
    h->name_len = (size_t)(colon - arg);
    if (header_is_reserved(h->name, h->name_len))
        return report(CREDFD_EXIT_USAGE, "-H %.*s: credfd sets this header itself",
                      (int)h->name_len, h->name);
    v = colon + 1;
    while (is_ows(*v))
        v++;
    end = v + strlen(v);
    while (end > v && is_ows(end[-1]))
        end--;
    for (const char *p = v; p < end; p++)
        if (!is_field_value_byte((unsigned char)*p))
            return report(CREDFD_EXIT_USAGE, "-H %.*s: the value holds a control byte",
                          (int)h->name_len, h->name);
    h->value = v;
    h->value_len = (size_t)(end - v);
    return 0;
}

/* --route NAME: a DNS label in lower case, as the broker's route names are. */
static int opts_set_route(struct opts *o, const char *name)
{
    size_t len = strlen(name);

    if (o->route_host != NULL)
        return report(CREDFD_EXIT_USAGE, "the route is given twice");
    if (len == 0 || len > 63 || name[0] == '-' || name[len - 1] == '-' ||
        strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-") != len)
        return report(CREDFD_EXIT_USAGE,
                      "--route wants a route name (lower-case letters, digits, '-'), got "
                      "'%.63s'", name);
    snprintf(o->route_buf, sizeof(o->route_buf), "%s" CREDFD_ROUTE_SUFFIX, name);
    o->route_host = o->route_buf;
    o->route_host_len = strlen(o->route_buf);
    return 0;
}

/* A PATH written as http://NAME.broker.local[:port]/path: the host is the route's, the rest
 * is the target. Anything else absolute is not the broker's to reach. */
static int opts_take_url(struct opts *o)
{
    const char *a = o->path + 7, *end;
    size_t len, slen = strlen(CREDFD_ROUTE_SUFFIX);

    if (strncasecmp(o->path, "http://", 7) != 0)
        return 0;
    end = a + strcspn(a, "/?#");
    len = (size_t)(end - a);
    for (size_t i = len; i > 0; i--) {
        if (a[i - 1] == ':') {
            len = i - 1; /* the port says nothing of the route */
            break;
        }
    }
    if (len > 0 && a[len - 1] == '.')
        len--;
    if (len <= slen || strncasecmp(a + len - slen, CREDFD_ROUTE_SUFFIX, slen) != 0)
        return report(CREDFD_EXIT_USAGE,
                      "PATH: credfd reaches the broker's routes only: /path or "
                      "http://NAME.broker.local/path");
    if (o->route_host != NULL)
        return report(CREDFD_EXIT_USAGE, "the route is given both by --route and in the URL");
    o->route_host = a;
    o->route_host_len = (size_t)(end - a);
    o->path = *end == '/' ? end : "/";
    if (*end == '?' || *end == '#')
        return report(CREDFD_EXIT_USAGE, "PATH: put a '/' between the host and the query");
    for (const char *p = a; p < end; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return report(CREDFD_EXIT_USAGE, "PATH: the host holds a space or control byte");
    return 0;
}

/* A request target credfd can put on the wire as is: printable ASCII, no space. */
static int opts_check_path(const char *path)
{
    if (path[0] != '/')
        return report(CREDFD_EXIT_USAGE, "PATH must start with '/', got '%.100s'", path);
    for (const char *p = path; *p != '\0'; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return report(CREDFD_EXIT_USAGE,
                          "PATH holds a space, control or non-ASCII byte: percent-encode it");
    return 0;
}

/* Takes a positional argument: PATH, or METHOD then PATH. */
static int opts_add_positional(struct opts *o, const char **pos, size_t *npos, const char *arg)
{
    if (*npos == 2)
        return report(CREDFD_EXIT_USAGE, "too many arguments at '%.100s' (see credfd --help)",
                      arg);
    pos[(*npos)++] = arg;
    return 0;
}

/* Parses argv into o. Returns 0, -1 after --help was written, or a usage error. */
static int opts_parse(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"route", required_argument, NULL, 'R'},
        {NULL, 0, NULL, 0},
    };
    const char *pos[2];
    size_t npos = 0;
    int c, r;

    memset(o, 0, sizeof(*o));
    opterr = 0;
    /* The leading '-' hands positionals over in order wherever they stand, so
     * `credfd POST /x -d 1` works even under POSIXLY_CORRECT; the ':' after it
     * tells a missing argument (':') from an unknown option ('?'). */
    while ((c = getopt_long(argc, argv, "-:X:H:d:ifvh", longopts, NULL)) != -1) {
        switch (c) {
        case 1:
            if ((r = opts_add_positional(o, pos, &npos, optarg)) != 0)
                return r;
            break;
        case 'X':
            if (o->method != NULL)
                return report(CREDFD_EXIT_USAGE, "-X given twice");
            o->method = optarg;
            break;
        case 'H':
            if (o->nheaders == CREDFD_MAX_HEADERS)
                return report(CREDFD_EXIT_USAGE, "more than %d -H options",
                              CREDFD_MAX_HEADERS);
            if ((r = opts_parse_header(optarg, &o->headers[o->nheaders])) != 0)
                return r;
            o->nheaders++;
            break;
        case 'd':
            if (o->data != NULL)
                return report(CREDFD_EXIT_USAGE, "-d given twice");
            o->data = optarg;
            break;
        case 'R':
            if ((r = opts_set_route(o, optarg)) != 0)
                return r;
            break;
        case 'i': o->include = true; break;
        case 'f': o->fail = true; break;
        case 'v': o->verbose = true; break;
        case 'h':
            fputs(usage_text, stdout);
            return -1;
        case ':':
            return report(CREDFD_EXIT_USAGE, "option -%c needs an argument (see credfd --help)",
                          optopt);
        default:
            if (optopt != 0)
                return report(CREDFD_EXIT_USAGE, "unknown option -%c (see credfd --help)",
                              optopt);
            return report(CREDFD_EXIT_USAGE, "unknown option %.100s (see credfd --help)",
                          argv[optind - 1]);
        }
    }
    for (; optind < argc; optind++) /* after "--" */
        if ((r = opts_add_positional(o, pos, &npos, argv[optind])) != 0)
            return r;
    if (npos == 0)
        return report(CREDFD_EXIT_USAGE, "no PATH given (see credfd --help)");
    if (npos == 2) {
        if (o->method != NULL)
            return report(CREDFD_EXIT_USAGE, "the method is given both by -X and as an argument");
        o->method = pos[0];
    }
    o->path = pos[npos - 1];
    if (o->method != NULL && !is_token(o->method, strlen(o->method)))
        return report(CREDFD_EXIT_USAGE, "'%.100s' is not a valid method", o->method);
    if (o->method == NULL)
        o->method = o->data != NULL ? "POST" : "GET";
    if ((r = opts_take_url(o)) != 0)
        return r;
    return opts_check_path(o->path);
}

/* Opens the -d source. Returns 0 or an exit status. */
static int body_open(const struct opts *o, struct body *b)
{
    struct stat st;

    memset(b, 0, sizeof(*b));
    b->fd = -1;
    if (o->data == NULL)
        return 0;
    if (o->data[0] != '@') {
        b->kind = BODY_LITERAL;
        b->literal = o->data;
        b->literal_len = strlen(o->data);
        return 0;
    }
    b->name = o->data + 1;
    if (strcmp(b->name, "-") == 0) {
        b->name = "standard input";
        b->fd = 0;
        b->kind = BODY_CHUNKED;
        return 0;
    }
    b->fd = open(b->name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (b->fd < 0)
        return report(CREDFD_EXIT_USAGE, "-d @%.200s: %s", b->name, strerror(errno));
    if (fstat(b->fd, &st) != 0)
        return report(CREDFD_EXIT_IO, "-d @%.200s: %s", b->name, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return report(CREDFD_EXIT_USAGE, "-d @%.200s: is a directory", b->name);
    if (S_ISREG(st.st_mode)) {
        b->kind = BODY_LENGTH;
        b->length = (uint64_t)st.st_size;
    } else {
        b->kind = BODY_CHUNKED; /* a pipe, a device: the length is unknown */
    }
    return 0;
}

static void body_close(struct body *b)
{
    if (b->fd > 0)
        close(b->fd);
    b->fd = -1;
}

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
        if (name_equals(o->headers[i].name, o->headers[i].name_len, name))
            return &o->headers[i];
    return NULL;
}

/* Builds the request head in buf. Returns its length, or 0 if it does not fit. */
static size_t request_build_head(const struct opts *o, const struct body *b, char *buf,
                                 size_t cap, size_t *line_len)
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
        return report(CREDFD_EXIT_IO, "writing to stdout: %s", strerror(-r));
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
                return report(CREDFD_EXIT_IO, "reading %.200s: %s", b->name, strerror((int)-n));
            if (n == 0)
                return report(CREDFD_EXIT_IO, "%.200s shrank while it was being sent", b->name);
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
                return report(CREDFD_EXIT_IO, "reading %.200s: %s", b->name, strerror((int)-n));
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
        return report(CREDFD_EXIT_IO, "sending the request: %s", strerror(-r));
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
        if (!is_field_value_byte((unsigned char)line[i]))
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

    if (is_ows(line[0]))
        return "obsolete line folding in the response head";
    if (colon == NULL || !is_token(line, (size_t)(colon - line)))
        return "a malformed header field in the response";
    name_len = (size_t)(colon - line);
    for (v = colon + 1; v < end; v++)
        if (!is_field_value_byte((unsigned char)*v))
            return "a control byte in a response header";
    v = colon + 1;
    while (v < end && is_ows(*v))
        v++;
    while (end > v && is_ows(end[-1]))
        end--;
    if (name_equals(line, name_len, "Content-Length")) {
        if (!parse_length(v, (size_t)(end - v), &n))
            return "an invalid Content-Length in the response";
        if (r->has_length && r->length != n)
            return "conflicting Content-Length headers in the response";
        r->has_length = true;
        r->length = n;
    } else if (name_equals(line, name_len, "Transfer-Encoding")) {
        if (r->chunked || !name_equals(v, (size_t)(end - v), "chunked"))
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
            return report(CREDFD_EXIT_IO, "the response head is over %d KiB",
                          CREDFD_HEAD_MAX / 1024);
        n = fd_read_some(io->sock, io->buf + *filled, CREDFD_HEAD_MAX - *filled);
        if (n < 0)
            return report(CREDFD_EXIT_IO, "reading the response: %s", strerror((int)-n));
        if (n == 0 && *filled == 0)
            return report(CREDFD_EXIT_IO, "the broker closed the connection without an answer");
        if (n == 0)
            return report(CREDFD_EXIT_IO, "the response head was cut short");
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
        n = fd_read_some(io->sock, io->buf, length - done < CREDFD_IO_CHUNK
                                                 ? (size_t)(length - done) : CREDFD_IO_CHUNK);
        if (n < 0)
            return report(CREDFD_EXIT_IO, "reading the response body: %s", strerror((int)-n));
        if (n == 0)
            return report(CREDFD_EXIT_IO,
                          "the response body was cut short (%" PRIu64 " of %" PRIu64 " bytes)",
                          done, length);
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
                return report(CREDFD_EXIT_IO, "malformed chunked framing in the response body");
            if (data_len > 0 && (r = out_write(data, data_len)) != 0)
                return r;
            off += used;
            if (rc == 1)
                return 0;
        }
        n = fd_read_some(io->sock, io->buf, CREDFD_IO_CHUNK);
        if (n < 0)
            return report(CREDFD_EXIT_IO, "reading the response body: %s", strerror((int)-n));
        if (n == 0)
            return report(CREDFD_EXIT_IO, "the chunked response body was cut short");
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
            return report(CREDFD_EXIT_IO, "reading the response body: %s", strerror((int)-n));
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
            return report(CREDFD_EXIT_IO, "%s", why);
        if (o->verbose)
            fprintf(stderr, "< %.*s\n", (int)h.status_line_len, io->buf);
        if (h.status >= 200)
            break;
        if (h.status == 101)
            return report(CREDFD_EXIT_IO, "the broker switched protocols (101), unasked");
        if (interim == CREDFD_MAX_INTERIM)
            return report(CREDFD_EXIT_IO, "more than %d interim (1xx) responses",
                          CREDFD_MAX_INTERIM);
        if (o->include && (r = out_write(io->buf, head_len)) != 0)
            return r;
        filled -= head_len;
        memmove(io->buf, io->buf + head_len, filled);
    }
    if (o->fail && h.status >= 400) {
        /* Like curl --fail: nothing of the response reaches stdout. */
        return report(CREDFD_EXIT_HTTP, "the server answered HTTP %d", h.status);
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
        *status = report(CREDFD_EXIT_NOT_BROKERED,
                         "not running under credbroker: " CREDFD_ENV_FD " is not set");
        return -1;
    }
    if (ctl < 0) {
        *status = report(CREDFD_EXIT_NOT_BROKERED,
                         "not running under credbroker: " CREDFD_ENV_FD "='%.20s' is not a "
                         "control fd (a number >= 3)", v);
        return -1;
    }
    fd = credfd_dial(ctl);
    if (fd >= 0)
        return fd;
    switch (errno) {
    case EPROTO:
        *status = report(CREDFD_EXIT_REFUSED, "the broker refused the connection "
                         "(connection limit, dial rate, or the invocation has ended)");
        break;
    case EPIPE:
    case ECONNRESET:
        *status = report(CREDFD_EXIT_REFUSED,
                         "the broker's control channel is closed (the invocation has ended)");
        break;
    case EBADF:
    case ENOTSOCK:
        *status = report(CREDFD_EXIT_NOT_BROKERED,
                         "not running under credbroker: fd %d is not a control channel (%s)",
                         ctl, strerror(errno));
        break;
    default:
        *status = report(CREDFD_EXIT_REFUSED, "dialing the broker: %s", strerror(errno));
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

    if ((status = opts_parse(argc, argv, &o)) != 0)
        return status < 0 ? CREDFD_EXIT_OK : status;
    if ((io = calloc(1, sizeof(*io))) == NULL)
        return report(CREDFD_EXIT_IO, "out of memory");
    io->sock = -1;
    if ((status = body_open(&o, &b)) != 0)
        goto out;
    head_len = request_build_head(&o, &b, io->req, sizeof(io->req), &line_len);
    if (head_len == 0) {
        status = report(CREDFD_EXIT_USAGE, "the request head is over %d KiB",
                        CREDFD_REQ_HEAD_MAX / 1024);
        goto out;
    }
    if ((io->sock = broker_dial(&status)) < 0)
        goto out;
    /* Non-blocking, so a broker that answers while we still send (an early
     * 4xx) is noticed instead of deadlocking both sides on full buffers. */
    if (fcntl(io->sock, F_SETFL, fcntl(io->sock, F_GETFL) | O_NONBLOCK) < 0) {
        status = report(CREDFD_EXIT_IO, "fcntl: %s", strerror(errno));
        goto out;
    }
    if (o.verbose)
        fprintf(stderr, "> %.*s HTTP/1.1\n", (int)line_len, io->req);
    r = sock_send_all(io->sock, io->req, head_len);
    if (r == 0)
        r = request_send_body(io, &b);
    if (r < 0) {
        status = report(CREDFD_EXIT_IO, "sending the request: %s", strerror(-r));
        goto out;
    }
    if (r > SEND_ANSWERED) {
        status = r;
        goto out;
    }
    status = resp_run(io, &o);
out:
    body_close(&b);
    if (io != NULL && io->sock >= 0)
        close(io->sock);
    free(io);
    return status;
}
