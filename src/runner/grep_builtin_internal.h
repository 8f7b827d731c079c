/*
 * grep_builtin_internal.h - what grep_builtin.c shares with grep_builtin_regex.c and
 * grep_builtin_source.c, and what the unit tests reach: the translation of a pattern in
 * ripgrep 13's syntax (Rust's regex-syntax 0.6) into one PCRE2 compiles with the same
 * meaning, line by line; and a file's bytes as rg reads them.
 */
#ifndef CREDBROKER_GREP_BUILTIN_INTERNAL_H
#define CREDBROKER_GREP_BUILTIN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Groups and classes nested deeper than this are refused (regex-syntax's nest limit is
 * 250 levels of any kind; this bounds the translator's recursion). */
#define GREP_RX_MAX_NEST 250

struct grep_rx {
    char *pcre;        /* the PCRE2 pattern, NUL-terminated (caller frees) */
    bool any_literal;  /* the pattern has a literal character (rg's smart case needs one) */
    bool any_upper;    /* ... and one of them is uppercase (Rust's char::is_uppercase) */
};

/*
 * Translates pattern (rg's syntax, UTF-8) for PCRE2 with PCRE2_UTF | PCRE2_UCP, matched
 * against one line at a time without its '\n'. Returns 0 and fills *rx, ERR_INVALID when
 * rg 13 would refuse the pattern (exit 2: its parser's errors, and a literal '\n' or a
 * class of '\n' alone, which grep-regex refuses) or its translation would pass 1 MiB
 * (rg's own size limit is another; see grep_builtin_rx.h), or ERR_NOMEM. On failure rx->pcre is
 * NULL and the two flags say what was read before the error.
 */
int grep__rx_translate(const char *pattern, struct grep_rx *rx);

/* What encoding_rs_io reads before it decides on a BOM. */
#define GB_BOM_PEEK 3
/* Raw bytes read at a time from a UTF-16 file before transcoding. */
#define GB_UTF16_CHUNK 8192

/* A file being read: encoding_rs_io's BOM peeker, then plain bytes or UTF-16 decoded. */
struct grep_source {
    int fd;
    bool started, utf16, big_endian, eof;
    unsigned char peek[GB_BOM_PEEK];
    size_t npeek, peek_off;
    unsigned char raw[GB_UTF16_CHUNK];
    size_t raw_len, raw_off;
    unsigned char pending[4]; /* an encoded character that did not fit yet */
    size_t npending, pending_off;
    uint32_t high;     /* a high surrogate waiting for its pair, or 0 */
    uint32_t pushback; /* a unit read after an unpaired high surrogate, or UINT32_MAX */
};

/*
 * read(2) as rg sees the file (grep_builtin_source.c): the first call peeks at up to three
 * bytes for a BOM and hands back just those, or strips a UTF-8 BOM, or switches to
 * decoding UTF-16 (its BOM stripped). s starts zeroed but for its fd. Returns the bytes
 * read, 0 at the end, or -1 with errno.
 */
ssize_t grep__source_read(struct grep_source *s, unsigned char *buf, size_t len);

#endif
