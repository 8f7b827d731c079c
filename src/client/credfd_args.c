/*
 * credfd_args.c - credfd's command line: options, PATH (or a route's URL), and where the
 * request body comes from. See credfd_cli.c for the rest of the program.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ascii.h"
#include "credfd_cli.h"

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

/* Writes "credfd: <message>" to stderr and returns status, for `return credfd_report(...)`. */
int credfd_report(int status, const char *fmt, ...)
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

bool credfd_is_token(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!ascii_is_tchar((unsigned char)s[i]))
            return false;
    return true;
}

bool credfd_is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Bytes allowed in a header value (RFC 9110 5.5): VCHAR, SP, HTAB, obs-text. */
bool credfd_is_field_value_byte(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

bool credfd_name_equals(const char *name, size_t len, const char *lit)
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
        if (credfd_name_equals(name, len, reserved[i]))
            return true;
    return false;
}

/* Splits a -H argument "Name: value" into h; returns 0 or a usage error. */
static int opts_parse_header(const char *arg, struct req_header *h)
{
    const char *colon = strchr(arg, ':');
    const char *v, *end;

    if (colon == NULL || !credfd_is_token(arg, (size_t)(colon - arg)))
        return credfd_report(CREDFD_EXIT_USAGE, "-H wants 'Name: value', got '%.100s'", arg);
    h->name = arg;
    h->name_len = (size_t)(colon - arg);
    if (header_is_reserved(h->name, h->name_len))
        return credfd_report(CREDFD_EXIT_USAGE, "-H %.*s: credfd sets this header itself",
                             (int)h->name_len, h->name);
    v = colon + 1;
    while (credfd_is_ows(*v))
        v++;
    end = v + strlen(v);
    while (end > v && credfd_is_ows(end[-1]))
        end--;
    for (const char *p = v; p < end; p++)
        if (!credfd_is_field_value_byte((unsigned char)*p))
            return credfd_report(CREDFD_EXIT_USAGE, "-H %.*s: the value holds a control byte",
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
        return credfd_report(CREDFD_EXIT_USAGE, "the route is given twice");
    if (len == 0 || len > 63 || name[0] == '-' || name[len - 1] == '-' ||
        strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-") != len)
        return credfd_report(CREDFD_EXIT_USAGE,
                             "--route wants a route name (lower-case letters, digits, '-'), got "
                             "'%.63s'",
                             name);
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
        return credfd_report(CREDFD_EXIT_USAGE,
                             "PATH: credfd reaches the broker's routes only: /path or "
                             "http://NAME.broker.local/path");
    if (o->route_host != NULL)
        return credfd_report(CREDFD_EXIT_USAGE,
                             "the route is given both by --route and in the URL");
    o->route_host = a;
    o->route_host_len = (size_t)(end - a);
    o->path = *end == '/' ? end : "/";
    if (*end == '?' || *end == '#')
        return credfd_report(CREDFD_EXIT_USAGE, "PATH: put a '/' between the host and the query");
    for (const char *p = a; p < end; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return credfd_report(CREDFD_EXIT_USAGE, "PATH: the host holds a space or control byte");
    return 0;
}

/* A request target credfd can put on the wire as is: printable ASCII, no space. */
static int opts_check_path(const char *path)
{
    if (path[0] != '/')
        return credfd_report(CREDFD_EXIT_USAGE, "PATH must start with '/', got '%.100s'", path);
    for (const char *p = path; *p != '\0'; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return credfd_report(
                CREDFD_EXIT_USAGE,
                "PATH holds a space, control or non-ASCII byte: percent-encode it");
    return 0;
}

/* Takes a positional argument: PATH, or METHOD then PATH. */
static int opts_add_positional(struct opts *o, const char **pos, size_t *npos, const char *arg)
{
    if (*npos == 2)
        return credfd_report(CREDFD_EXIT_USAGE,
                             "too many arguments at '%.100s' (see credfd --help)", arg);
    pos[(*npos)++] = arg;
    return 0;
}

/* Parses argv into o. Returns 0, -1 after --help was written, or a usage error. */
int credfd_opts_parse(int argc, char **argv, struct opts *o)
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
                return credfd_report(CREDFD_EXIT_USAGE, "-X given twice");
            o->method = optarg;
            break;
        case 'H':
            if (o->nheaders == CREDFD_MAX_HEADERS)
                return credfd_report(CREDFD_EXIT_USAGE, "more than %d -H options",
                                     CREDFD_MAX_HEADERS);
            if ((r = opts_parse_header(optarg, &o->headers[o->nheaders])) != 0)
                return r;
            o->nheaders++;
            break;
        case 'd':
            if (o->data != NULL)
                return credfd_report(CREDFD_EXIT_USAGE, "-d given twice");
            o->data = optarg;
            break;
        case 'R':
            if ((r = opts_set_route(o, optarg)) != 0)
                return r;
            break;
        case 'i':
            o->include = true;
            break;
        case 'f':
            o->fail = true;
            break;
        case 'v':
            o->verbose = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return -1;
        case ':':
            return credfd_report(CREDFD_EXIT_USAGE,
                                 "option -%c needs an argument (see credfd --help)", optopt);
        default:
            if (optopt != 0)
                return credfd_report(CREDFD_EXIT_USAGE, "unknown option -%c (see credfd --help)",
                                     optopt);
            return credfd_report(CREDFD_EXIT_USAGE, "unknown option %.100s (see credfd --help)",
                                 argv[optind - 1]);
        }
    }
    for (; optind < argc; optind++) /* after "--" */
        if ((r = opts_add_positional(o, pos, &npos, argv[optind])) != 0)
            return r;
    if (npos == 0)
        return credfd_report(CREDFD_EXIT_USAGE, "no PATH given (see credfd --help)");
    if (npos == 2) {
        if (o->method != NULL)
            return credfd_report(CREDFD_EXIT_USAGE,
                                 "the method is given both by -X and as an argument");
        o->method = pos[0];
    }
    o->path = pos[npos - 1];
    if (o->method != NULL && !credfd_is_token(o->method, strlen(o->method)))
        return credfd_report(CREDFD_EXIT_USAGE, "'%.100s' is not a valid method", o->method);
    if (o->method == NULL)
        o->method = o->data != NULL ? "POST" : "GET";
    if ((r = opts_take_url(o)) != 0)
        return r;
    return opts_check_path(o->path);
}

/* Opens the -d source. Returns 0 or an exit status. */
int credfd_body_open(const struct opts *o, struct body *b)
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
        return credfd_report(CREDFD_EXIT_USAGE, "-d @%.200s: %s", b->name, strerror(errno));
    if (fstat(b->fd, &st) != 0)
        return credfd_report(CREDFD_EXIT_IO, "-d @%.200s: %s", b->name, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return credfd_report(CREDFD_EXIT_USAGE, "-d @%.200s: is a directory", b->name);
    if (S_ISREG(st.st_mode)) {
        b->kind = BODY_LENGTH;
        b->length = (uint64_t)st.st_size;
    } else {
        b->kind = BODY_CHUNKED; /* a pipe, a device: the length is unknown */
    }
    return 0;
}

void credfd_body_close(struct body *b)
{
    if (b->fd > 0)
        close(b->fd);
    b->fd = -1;
}
