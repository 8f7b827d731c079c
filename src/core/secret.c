/*
 * secret.c - the secret arena. See secret.h.
 *
 * The arena is a list of chunks of locked, undumpable pages. A secret takes a run
 * of 64-byte units in one chunk, tracked by a bitmap; a secret larger than a
 * chunk gets a chunk of its own. The bookkeeping (struct secret, struct chunk)
 * is ordinary heap memory: it holds no secret bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "err.h"
#include "secret.h"

#define SECRET_UNIT 64
#define SECRET_CHUNK_SIZE (64 * 1024)

struct chunk {
    struct chunk *next;
    uint8_t *base;
    size_t size;        /* bytes mapped */
    size_t units;       /* size / SECRET_UNIT */
    size_t used;        /* units in use */
    uint64_t *bitmap;   /* one bit per unit */
};

struct secret {
    struct chunk *chunk;
    uint8_t *data;
    size_t len;
    size_t first_unit, nunits;
};

static struct chunk *chunks;
static size_t live_secrets;
static enum secret_backing backing = SECRET_BACKING_NONE;
static bool memfd_secret_unavailable;

enum secret_backing secret_arena_backing(void)
{
    return backing;
}

const char *secret_arena_backing_name(void)
{
    switch (backing) {
    case SECRET_BACKING_MEMFD_SECRET: return "memfd_secret";
    case SECRET_BACKING_MLOCK: return "mlock";
    default: return "none";
    }
}

#ifndef SYS_memfd_secret
#define SYS_memfd_secret 447
#endif

/* Maps size bytes from memfd_secret; NULL if the kernel does not offer it. */
static void *map_memfd_secret(size_t size)
{
    void *p;
    long fd;

    if (memfd_secret_unavailable)
        return NULL;
    fd = syscall(SYS_memfd_secret, (unsigned long)O_CLOEXEC);
    if (fd < 0) {
        memfd_secret_unavailable = true;
        return NULL;
    }
    if (ftruncate((int)fd, (off_t)size) != 0) {
        close((int)fd);
        return NULL;
    }
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, (int)fd, 0);
    /* The mapping keeps the pages; the fd is not needed (and must not leak to a child). */
    close((int)fd);
    if (p == MAP_FAILED)
        return NULL;
    /* secretmem pages cannot be wiped on fork; a forked child gets no mapping at all. */
    if (madvise(p, size, MADV_DONTFORK) != 0) {
        munmap(p, size);
        return NULL;
    }
    (void)madvise(p, size, MADV_DONTDUMP); /* secretmem is never dumped anyway */
    return p;
}

static void *map_locked_anon(size_t size, int *err)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED) {
        *err = -errno;
        return NULL;
    }
    if (mlock(p, size) != 0 || madvise(p, size, MADV_DONTDUMP) != 0 ||
        madvise(p, size, MADV_WIPEONFORK) != 0) {
        *err = -errno;
        munmap(p, size);
        return NULL;
    }
    return p;
}

static struct chunk *chunk_new(size_t min_size, int *err)
{
    struct chunk *c;
    size_t size = SECRET_CHUNK_SIZE;
    long page = sysconf(_SC_PAGESIZE);

    if (min_size > size)
        size = (min_size + (size_t)page - 1) / (size_t)page * (size_t)page;
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        *err = ERR_NOMEM;
        return NULL;
    }
    c->size = size;
    c->units = size / SECRET_UNIT;
    if ((c->bitmap = calloc((c->units + 63) / 64, sizeof(uint64_t))) == NULL) {
        free(c);
        *err = ERR_NOMEM;
        return NULL;
    }
    if ((c->base = map_memfd_secret(size)) != NULL) {
        backing = SECRET_BACKING_MEMFD_SECRET;
    } else if ((c->base = map_locked_anon(size, err)) != NULL) {
        backing = SECRET_BACKING_MLOCK;
    } else {
        free(c->bitmap);
        free(c);
        return NULL;
    }
    c->next = chunks;
    chunks = c;
    return c;
}

static bool unit_used(const struct chunk *c, size_t i)
{
    return (c->bitmap[i / 64] >> (i % 64)) & 1u;
}

static void units_mark(struct chunk *c, size_t first, size_t n, bool used)
{
    for (size_t i = first; i < first + n; i++) {
        if (used)
            c->bitmap[i / 64] |= (uint64_t)1 << (i % 64);
        else
            c->bitmap[i / 64] &= ~((uint64_t)1 << (i % 64));
    }
    if (used)
        c->used += n;
    else
        c->used -= n;
}

/* First fit: returns the first unit of a free run of n units, or SIZE_MAX. */
static size_t chunk_find_run(const struct chunk *c, size_t n)
{
    size_t run = 0;

    if (c->units - c->used < n)
        return SIZE_MAX;
    for (size_t i = 0; i < c->units; i++) {
        run = unit_used(c, i) ? 0 : run + 1;
        if (run == n)
            return i + 1 - n;
    }
    return SIZE_MAX;
}

static void chunk_release(struct chunk *c)
{
    struct chunk **pp;

    for (pp = &chunks; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    explicit_bzero(c->base, c->size);
    munmap(c->base, c->size);
    free(c->bitmap);
    free(c);
}

int secret_new(size_t len, struct secret **out)
{
    struct secret *s;
    struct chunk *c;
    size_t n, first = SIZE_MAX;
    int err = ERR_NOMEM;

    *out = NULL;
    if (len == 0 || len > SIZE_MAX - SECRET_UNIT)
        return ERR_INVALID;
    n = (len + SECRET_UNIT - 1) / SECRET_UNIT;
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return ERR_NOMEM;
    for (c = chunks; c != NULL; c = c->next) {
        if ((first = chunk_find_run(c, n)) != SIZE_MAX)
            break;
    }
    if (c == NULL) {
        if ((c = chunk_new(n * SECRET_UNIT, &err)) == NULL) {
            free(s);
            return err;
        }
        first = 0;
    }
    units_mark(c, first, n, true);
    s->chunk = c;
    s->first_unit = first;
    s->nunits = n;
    s->data = c->base + first * SECRET_UNIT;
    s->len = len;
    live_secrets++;
    /* Units are zeroed when freed, and fresh pages are zero, so data is zero here. */
    *out = s;
    return 0;
}

int secret_from(const void *data, size_t len, struct secret **out)
{
    int r = secret_new(len, out);

    if (r == 0)
        memcpy(secret_data(*out), data, len);
    return r;
}

void secret_free(struct secret *s)
{
    struct chunk *c;

    if (s == NULL)
        return;
    c = s->chunk;
    live_secrets--;
    explicit_bzero(s->data, s->nunits * SECRET_UNIT);
    units_mark(c, s->first_unit, s->nunits, false);
    /* Keep one chunk around so a busy runner does not map and unmap per task. */
    if (c->used == 0 && (c != chunks || c->next != NULL))
        chunk_release(c);
    explicit_bzero(s, sizeof(*s));
    free(s);
}

size_t secret_live_count(void)
{
    return live_secrets;
}

uint8_t *secret_data(const struct secret *s)
{
    return s->data;
}

size_t secret_len(const struct secret *s)
{
    return s->len;
}

int secret_validate_key(const uint8_t *key, size_t len)
{
    if (len == 0)
        return ERR_KEY_EMPTY;
    if (len > SECRET_KEY_MAX)
        return ERR_KEY_TOO_LONG;
    for (size_t i = 0; i < len; i++) {
        if (key[i] < 0x20 || key[i] == 0x7f)
            return ERR_KEY_CONTROL;
    }
    return 0;
}

/* Constant time in the contents (as CRYPTO_memcmp): every byte is compared, and the
 * compiler cannot stop at the first difference through the volatile accumulator. */
bool secret_equals(const struct secret *s, const void *data, size_t len)
{
    const uint8_t *a = s->data, *b = data;
    volatile uint8_t diff = 0;

    if (len != s->len)
        return false;
    for (size_t i = 0; i < len; i++)
        diff |= a[i] ^ b[i];
    return diff == 0;
}
