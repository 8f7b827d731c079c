/*
 * buf.h - an owned byte buffer with an explicit length and a hard cap
 * (after OpenSSH's struct sshbuf and curl's dynbuf).
 *
 * Data lives in [off, off+len) of a heap block. Every append checks the cap
 * given at buf_new() and fails closed with ERR_TOO_LARGE. A buffer created with
 * BUF_WIPE zeroes every byte it ever held when it grows, resets or is freed: use
 * it for anything that may carry a key (an upstream URL, a header line).
 */
#ifndef CREDBROKER_BUF_H
#define CREDBROKER_BUF_H

#include <stddef.h>
#include <stdint.h>

#define BUF_WIPE 0x1u

struct buf;

/* Returns a new empty buffer that will never hold more than max bytes, or NULL. */
struct buf *buf_new(size_t max, unsigned flags);
/* Frees b (wiping it if BUF_WIPE). Accepts NULL. */
void buf_free(struct buf *b);
/* Empties b (wiping if BUF_WIPE); keeps its memory. */
void buf_reset(struct buf *b);
/* Empties b as buf_reset does, and gives its memory back if that is more than keep bytes:
 * a buffer reused for request after request keeps no one large request's memory. */
void buf_reset_keep(struct buf *b, size_t keep);

size_t buf_len(const struct buf *b);
size_t buf_max(const struct buf *b);
/* Pointer to the first unread byte; valid until the next call that modifies b. */
const uint8_t *buf_ptr(const struct buf *b);
uint8_t *buf_mutable_ptr(struct buf *b);

/* Appends; 0 or ERR_TOO_LARGE/ERR_NOMEM (b is left unchanged on failure). */
int buf_put(struct buf *b, const void *data, size_t len) __attribute__((warn_unused_result));
int buf_put_str(struct buf *b, const char *s) __attribute__((warn_unused_result));
/* Appends v in decimal: what buf_putf("%llu") does, without printf's cost on a path
 * every request takes. */
int buf_put_u64(struct buf *b, uint64_t v) __attribute__((warn_unused_result));
int buf_putf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), warn_unused_result));
/* Reserves len writable bytes at the end; *dst points at them. Commit with buf_commit(). */
int buf_reserve(struct buf *b, size_t len, uint8_t **dst) __attribute__((warn_unused_result));
void buf_commit(struct buf *b, size_t len);
/* Drops len bytes from the front; ERR_INVALID if len > buf_len(b). */
int buf_consume(struct buf *b, size_t len);
/* Returns a NUL-terminated view of the contents (the NUL is not counted), or NULL. */
const char *buf_cstr(struct buf *b);

#endif
