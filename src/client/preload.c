/*
 * preload.c - libcredfd-preload.so: makes unmodified, dynamically linked
 * programs (curl, python, wget) reach the API through the broker.
 *
 * With LD_PRELOAD set to this library and FLASHDUTY_CRED_FD in the
 * environment:
 *  - name lookups of a placeholder host (flashduty.broker.local, or any route's
 *    NAME.broker.local) answer a reserved loopback address, PRELOAD_ADDR; every
 *    other name passes through. The request's Host then names the route, and the
 *    broker answers 421 for a name that is none of the command's;
 *  - connect() of a TCP socket to PRELOAD_ADDR dials the broker instead and puts
 *    the brokered stream in place of the socket (same fd number, dup3), keeping
 *    the caller's O_NONBLOCK and FD_CLOEXEC; getpeername()/getsockname() on it
 *    answer inet addresses, and TCP socket options are accepted and ignored, so
 *    the program does not notice it talks over a unix socket;
 *  - everything else is untouched. Without FLASHDUTY_CRED_FD the shim does
 *    nothing at all.
 * The address is on loopback on purpose: were the shim ever bypassed (a
 * statically linked program), the connect goes nowhere but 127.0.0.0/8.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "credfd.h"

/* glibc declares the sockaddr arguments as transparent unions under _GNU_SOURCE. */
#if defined(__USE_GNU) && defined(__GNUC__) && !defined(__cplusplus)
#define SOCKADDR_OF(a) ((a).__sockaddr__)
#else
#define SOCKADDR_OF(a) (a)
#endif

#define PRELOAD_ADDR "127.88.0.1"
#define PRELOAD_MAX_FD 65536

/* Port the program connected to, per brokered fd (0: not ours). */
static _Atomic uint16_t brokered_port[PRELOAD_MAX_FD];

#define EXPORT __attribute__((visibility("default")))

/* The next definition of a libc function, looked up once (dlsym is not cheap). */
typedef void (*any_fn)(void);

static any_fn next_fn(_Atomic(any_fn) *slot, const char *name)
{
    any_fn f = atomic_load_explicit(slot, memory_order_acquire);

    if (f == NULL) {
        void *p = dlsym(RTLD_NEXT, name);

        memcpy(&f, &p, sizeof(f)); /* ISO C has no cast from void * to a function pointer */
        atomic_store_explicit(slot, f, memory_order_release);
    }
    return f;
}

typedef int (*getaddrinfo_fn)(const char *, const char *, const struct addrinfo *,
                              struct addrinfo **);
typedef struct hostent *(*gethostbyname_fn)(const char *);
typedef int (*gethostbyname_r_fn)(const char *, struct hostent *, char *, size_t,
                                  struct hostent **, int *);
typedef int (*connect_fn)(int, __CONST_SOCKADDR_ARG, socklen_t);
typedef int (*getpeername_fn)(int, __SOCKADDR_ARG, socklen_t *);
typedef int (*getsockname_fn)(int, __SOCKADDR_ARG, socklen_t *);
typedef int (*setsockopt_fn)(int, int, int, const void *, socklen_t);
typedef int (*getsockopt_fn)(int, int, int, void *, socklen_t *);
typedef int (*close_fn)(int);

#define NEXT(name, type) ((type)next_fn(&next_##name, #name))

static _Atomic(any_fn) next_getaddrinfo, next_gethostbyname, next_gethostbyname_r, next_connect,
    next_getpeername, next_getsockname, next_setsockopt, next_getsockopt, next_close;

static bool active(void)
{
    return getenv(CREDFD_ENV_FD) != NULL;
}

/* True for a placeholder host: NAME.broker.local, any case, with or without a trailing dot. */
static bool is_placeholder(const char *name)
{
    size_t n = name != NULL ? strlen(name) : 0, slen = strlen(CREDFD_ROUTE_SUFFIX);

    if (n > 0 && name[n - 1] == '.')
        n--;
    return n > slen && name[n - slen - 1] != '.' &&
           strncasecmp(name + n - slen, CREDFD_ROUTE_SUFFIX, slen) == 0;
}

static in_addr_t preload_addr(void)
{
    return inet_addr(PRELOAD_ADDR);
}

static bool ours(int fd)
{
    return fd >= 0 && fd < PRELOAD_MAX_FD && atomic_load(&brokered_port[fd]) != 0;
}

EXPORT int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res)
{
    getaddrinfo_fn next = NEXT(getaddrinfo, getaddrinfo_fn);
    struct addrinfo h;

    if (next == NULL)
        return EAI_SYSTEM;
    if (!active() || !is_placeholder(node))
        return next(node, service, hints, res);
    memset(&h, 0, sizeof(h));
    if (hints != NULL) {
        h.ai_socktype = hints->ai_socktype;
        h.ai_protocol = hints->ai_protocol;
        h.ai_flags = hints->ai_flags & (AI_CANONNAME | AI_NUMERICSERV | AI_PASSIVE);
        if (hints->ai_family == AF_INET6)
            return EAI_NONAME; /* the placeholder has an IPv4 address only */
    }
    h.ai_family = AF_INET;
    h.ai_flags |= AI_NUMERICHOST;
    /* The real resolver builds the result (and its ports), so freeaddrinfo stays the real one. */
    return next(PRELOAD_ADDR, service, &h, res);
}

static struct hostent *fill_hostent(struct hostent *h, char *buf, size_t buflen, const char *name)
{
    /* Layout in buf: the address, the address list, the empty alias list, the name. */
    size_t nlen = strlen(name) + 1;
    size_t need = sizeof(struct in_addr) + 2 * sizeof(char *) + sizeof(char *) + nlen;
    struct in_addr *addr;
    char **addrs, **aliases, *copy;

    if (buflen < need)
        return NULL;
    addr = (struct in_addr *)(void *)buf;
    addrs = (char **)(void *)(buf + sizeof(*addr));
    aliases = addrs + 2;
    copy = (char *)(aliases + 1);
    addr->s_addr = preload_addr();
    addrs[0] = (char *)addr;
    addrs[1] = NULL;
    aliases[0] = NULL;
    memcpy(copy, name, nlen);
    h->h_name = copy;
    h->h_aliases = aliases;
    h->h_addrtype = AF_INET;
    h->h_length = sizeof(struct in_addr);
    h->h_addr_list = addrs;
    return h;
}

EXPORT struct hostent *gethostbyname(const char *name)
{
    static _Thread_local struct hostent h;
    static _Thread_local char buf[512] __attribute__((aligned(16)));
    gethostbyname_fn next = NEXT(gethostbyname, gethostbyname_fn);

    if (active() && is_placeholder(name))
        return fill_hostent(&h, buf, sizeof(buf), name);
    return next != NULL ? next(name) : NULL;
}

EXPORT int gethostbyname_r(const char *name, struct hostent *ret, char *buf, size_t buflen,
                           struct hostent **result, int *h_errnop)
{
    gethostbyname_r_fn next = NEXT(gethostbyname_r, gethostbyname_r_fn);
    uintptr_t mis;

    if (!active() || !is_placeholder(name))
        return next != NULL ? next(name, ret, buf, buflen, result, h_errnop) : ENOSYS;
    /* Align the caller's buffer for the pointers we store in it. */
    mis = (uintptr_t)buf % sizeof(void *);
    if (mis != 0) {
        size_t skip = sizeof(void *) - mis;

        if (buflen < skip)
            return ERANGE;
        buf += skip;
        buflen -= skip;
    }
    *result = fill_hostent(ret, buf, buflen, name);
    if (*result == NULL)
        return ERANGE;
    if (h_errnop != NULL)
        *h_errnop = 0;
    return 0;
}

EXPORT int connect(int fd, __CONST_SOCKADDR_ARG sa, socklen_t len)
{
    const struct sockaddr *addr = SOCKADDR_OF(sa);
    connect_fn next = NEXT(connect, connect_fn);
    const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)addr;
    int type = 0, ctl, conn, fl, fdfl, saved;
    socklen_t tlen = sizeof(type);

    if (next == NULL) {
        errno = ENOSYS;
        return -1;
    }
    if (!active() || addr == NULL || len < (socklen_t)sizeof(*in) || addr->sa_family != AF_INET ||
        in->sin_addr.s_addr != preload_addr() || fd < 0 || fd >= PRELOAD_MAX_FD ||
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || type != SOCK_STREAM)
        return next(fd, sa, len);
    if ((fl = fcntl(fd, F_GETFL)) < 0 || (fdfl = fcntl(fd, F_GETFD)) < 0)
        return -1;
    if ((ctl = credfd_from_env()) < 0 || (conn = credfd_dial(ctl)) < 0) {
        /* No broker to reach: to the program this is a refused connection. */
        errno = ECONNREFUSED;
        return -1;
    }
    if (((fl & O_NONBLOCK) && fcntl(conn, F_SETFL, O_NONBLOCK) < 0) ||
        dup3(conn, fd, (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0) {
        saved = errno;
        close(conn);
        errno = saved;
        return -1;
    }
    close(conn);
    atomic_store(&brokered_port[fd], ntohs(in->sin_port) ? ntohs(in->sin_port) : 80);
    /* Connected at once, also for a non-blocking socket: poll says writable, SO_ERROR 0. */
    return 0;
}

/* Writes an AF_INET address into the caller's buffer, truncating as the kernel does. */
static int fake_inet(struct sockaddr *addr, socklen_t *len, in_addr_t ip, uint16_t port)
{
    struct sockaddr_in in;

    if (addr == NULL || len == NULL) {
        errno = EFAULT;
        return -1;
    }
    memset(&in, 0, sizeof(in));
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = ip;
    in.sin_port = htons(port);
    memcpy(addr, &in, *len < sizeof(in) ? *len : sizeof(in));
    *len = sizeof(in);
    return 0;
}

EXPORT int getpeername(int fd, __SOCKADDR_ARG sa, socklen_t *len)
{
    struct sockaddr *addr = SOCKADDR_OF(sa);
    getpeername_fn next = NEXT(getpeername, getpeername_fn);

    if (ours(fd))
        return fake_inet(addr, len, preload_addr(), atomic_load(&brokered_port[fd]));
    return next(fd, sa, len);
}

EXPORT int getsockname(int fd, __SOCKADDR_ARG sa, socklen_t *len)
{
    struct sockaddr *addr = SOCKADDR_OF(sa);
    getsockname_fn next = NEXT(getsockname, getsockname_fn);

    if (ours(fd))
        return fake_inet(addr, len, htonl(INADDR_LOOPBACK), (uint16_t)(40000 + fd % 20000));
    return next(fd, sa, len);
}

EXPORT int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
    setsockopt_fn next = NEXT(setsockopt, setsockopt_fn);

    /* TCP_NODELAY and friends mean nothing on the unix stream: accept them. */
    if (ours(fd) && (level == IPPROTO_TCP || level == IPPROTO_IP))
        return 0;
    return next(fd, level, name, val, len);
}

EXPORT int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
    getsockopt_fn next = NEXT(getsockopt, getsockopt_fn);

    if (ours(fd) && (level == IPPROTO_TCP || level == IPPROTO_IP) && val != NULL &&
        len != NULL && *len >= sizeof(int)) {
        memset(val, 0, *len);
        return 0;
    }
    return next(fd, level, name, val, len);
}

EXPORT int close(int fd)
{
    close_fn next = NEXT(close, close_fn);

    if (fd >= 0 && fd < PRELOAD_MAX_FD)
        atomic_store(&brokered_port[fd], 0);
    return next(fd);
}
