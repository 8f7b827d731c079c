/*
 * secret.h - the secret arena: where keys (and anything derived from them) live.
 *
 * Pages come from memfd_secret(2) where the kernel offers it (removed from the
 * kernel's direct map), otherwise from anonymous memory that is mlock()ed. Either
 * way they are excluded from core dumps (MADV_DONTDUMP) and never readable by a
 * forked child before its exec (MADV_WIPEONFORK, or MADV_DONTFORK for secretmem
 * pages, which cannot be wiped on fork). Every secret is zeroed with
 * explicit_bzero when freed.
 *
 * Not thread-safe: secrets are created and freed on the event loop thread.
 */
#ifndef CREDBROKER_SECRET_H
#define CREDBROKER_SECRET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SECRET_KEY_MAX 4096

struct secret;

/* Which backing the arena uses; valid after the first allocation. */
enum secret_backing { SECRET_BACKING_NONE, SECRET_BACKING_MEMFD_SECRET, SECRET_BACKING_MLOCK };
enum secret_backing secret_arena_backing(void);
const char *secret_arena_backing_name(void);

/* Allocates a zeroed secret of len bytes (len > 0). Returns 0 or -errno/ERR_NOMEM.
 * Caller frees with secret_free(). Fails closed: if no locked, undumpable page can
 * be had, no secret is created. */
int secret_new(size_t len, struct secret **out) __attribute__((warn_unused_result));
/* Copies len bytes into a new secret. */
int secret_from(const void *data, size_t len, struct secret **out)
    __attribute__((warn_unused_result));
/* Wipes and frees. Accepts NULL. */
void secret_free(struct secret *s);

/* Secrets allocated and not yet freed (the leak check at exit wants 0). */
size_t secret_live_count(void);

uint8_t *secret_data(const struct secret *s);
size_t secret_len(const struct secret *s);

/*
 * Checks that a key is acceptable: non-empty, at most SECRET_KEY_MAX bytes and no
 * control bytes (0x00-0x1F, 0x7F: CR, LF, NUL, ...), so it can never inject a
 * header line. Returns 0 or ERR_KEY_*.
 */
int secret_validate_key(const uint8_t *key, size_t len);

/* Constant-time comparison of a secret with a buffer. */
bool secret_equals(const struct secret *s, const void *data, size_t len);

#endif
