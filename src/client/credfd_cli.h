/*
 * credfd_cli.h - what the two halves of credfd share: credfd_args.c (the command line
 * and the body's source) and credfd_cli.c (the request, the socket, the response, main).
 * Nothing else includes it.
 */
#ifndef CREDBROKER_CREDFD_CLI_H
#define CREDBROKER_CREDFD_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

int credfd_report(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* RFC 9110 tokens, optional white space, field-value bytes, and a case-insensitive name. */
bool credfd_is_token(const char *s, size_t len);
bool credfd_is_ows(char c);
bool credfd_is_field_value_byte(unsigned char c);
bool credfd_name_equals(const char *name, size_t len, const char *lit);

/* Parses argv into o. Returns 0, -1 after --help was written, or a usage error. */
int credfd_opts_parse(int argc, char **argv, struct opts *o);
/* Opens the -d source. Returns 0 or an exit status. */
int credfd_body_open(const struct opts *o, struct body *b);
void credfd_body_close(struct body *b);

#endif
