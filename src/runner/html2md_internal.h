/*
 * html2md_internal.h - what the html2md_*.c files share: the charset stage, the URL
 * resolver, the element table, the tree walk and the markdown emitter's state (used by
 * html2md_table.c). Tests include it to reach the pieces on their own.
 */
#ifndef CREDBROKER_HTML2MD_INTERNAL_H
#define CREDBROKER_HTML2MD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libxml/tree.h>

#include "html2md.h"

struct buf;

/* ---- html2md_charset.c ---- */

/*
 * Decides the document's encoding (a byte order mark, then content_type's charset, then a
 * <meta> in the first H2M_PRESCAN_MAX bytes, else UTF-8; an unknown label is passed over)
 * and returns the document as UTF-8 in *out (malloc'd, out_len bytes, NUL-terminated):
 * every byte sequence the encoding does not define, and NUL, becomes U+FFFD.
 * 0, ERR_NOMEM, or ERR_INVALID when the result would pass max bytes.
 */
int h2m_to_utf8(const uint8_t *in, size_t len, const char *content_type, size_t max, char **out,
                size_t *out_len);

#define H2M_PRESCAN_MAX (64u * 1024)

#define H2M_CHARSET_MAX 40

/* Writes to name the encoding h2m_to_utf8 uses, as iconv names it ("UTF-8" when none is
 * given or known), and to *bom_len the bytes of a byte order mark to skip. */
void h2m_detect_charset(const uint8_t *in, size_t len, const char *content_type,
                        char name[H2M_CHARSET_MAX], size_t *bom_len);

/* Appends s[0..len) to out with every ill-formed sequence and NUL as U+FFFD. */
int h2m_put_utf8_sanitized(struct buf *out, const uint8_t *s, size_t len);

/* ---- html2md_url.c ---- */

/*
 * Resolves ref against base (RFC 3986 5.2) after cleaning ref as a browser does (outer
 * blanks trimmed, tabs and newlines removed, spaces, controls, non-ASCII and the bytes
 * RFC 3986 never allows percent-encoded). A base that is NULL or has no scheme leaves the
 * cleaned ref as it is. Returns 0 and *out (malloc'd) or ERR_NOMEM.
 */
int h2m_url_resolve(const char *base, const char *ref, char **out);

/* True if url's scheme is one a link must not carry into the output (javascript:,
 * vbscript:, data:), ASCII case-insensitively. */
bool h2m_url_is_unsafe(const char *url);

/* ---- html2md.c: the element table and the walk ---- */

enum h2m_tag {
    H2M_OTHER = 0, /* unknown or plain inline: text kept */
    H2M_BLOCK,     /* p, div, section...: a paragraph break before and after */
    H2M_DROP,      /* script, style, noscript, template, svg: nothing inside is output */
    H2M_HEAD,      /* head, title: dropped in markdown; title kept in text */
    H2M_A,
    H2M_IMG,
    H2M_INPUT,
    H2M_BR,
    H2M_HR,
    H2M_H,  /* h1..h6 */
    H2M_UL, /* ul, menu, dir, and select (its options as items) */
    H2M_OL,
    H2M_LI, /* li, option */
    H2M_BLOCKQUOTE,
    H2M_PRE,
    H2M_CODE,   /* code, kbd, samp, tt */
    H2M_STRONG, /* b, strong */
    H2M_EM,     /* i, em */
    H2M_DEL,    /* del, s, strike */
    H2M_TABLE,
    H2M_TR,
    H2M_CELL, /* td, th */
    H2M_CAPTION,
    H2M_TABLE_PART, /* thead, tbody, tfoot */
};

/* The tag of element n (its name, ASCII case-insensitively); H2M_OTHER for a non-element. */
enum h2m_tag h2m_tag_of(const xmlNode *n);
/* 1..6 for h1..h6, else 0. */
int h2m_heading_level(const xmlNode *n);

/*
 * Walks the subtree at root in document order without recursion. enter(n) returns < 0 to
 * stop (that code is returned), 1 to walk n's children and then call leave(n), 0 to skip
 * them (and leave). Text and CDATA nodes go to enter too. leave may be NULL.
 */
typedef int (*h2m_enter_fn)(void *arg, xmlNode *n);
typedef int (*h2m_leave_fn)(void *arg, xmlNode *n);
int h2m_walk(xmlNode *root, h2m_enter_fn enter, h2m_leave_fn leave, void *arg);

/* Appends the text under n (dropped elements left out; <br> as "\n"). */
int h2m_collect_text(xmlNode *n, struct buf *out);

/* HTML's ASCII whitespace, plus NO-BREAK SPACE (which we output as a plain space). */
bool h2m_is_space(const unsigned char *s, size_t len, size_t *n);

/* From s[*i] (of len bytes): passes whitespace (setting *space if there was any), then
 * finds the next word, s[*start..*i). False at the end. */
bool h2m_next_word(const unsigned char *s, size_t len, size_t *i, size_t *start, bool *space);

/* Makes room for one more element in arr (used of *alloc, each size bytes), doubling.
 * Returns the array (arr itself when it had room, else reallocated) or NULL, arr then
 * untouched. */
void *h2m_grow(void *arr, size_t *alloc, size_t used, size_t size);

/* ---- html2md_md.c: the markdown emitter ---- */

#define H2M_MAX_INDENT 16 /* container levels that indent; deeper ones only add markers */
#define H2M_LEAD_MAX 32

struct h2m_frame {
    char marker[16]; /* "- ", "12. ", "> ": written on the frame's first line */
    uint8_t width;   /* bytes of marker */
    bool quote;      /* "> " on every line; else spaces of the marker's width */
};

struct h2m_open { /* an element being walked, for its leave */
    xmlNode *node;
    uint64_t seq;     /* m->seq at enter: did anything get written inside? */
    uint8_t lead_len; /* m->lead_len at enter */
    uint8_t flags;
    uint32_t counter; /* ol: the next item number */
    char *url;        /* a link's destination (malloc'd) */
};

struct h2m_md {
    struct buf *out;
    const char *base; /* after <base href>; may be NULL */
    int err;
    uint64_t seq;       /* bumped at every write of content */
    int pending_nl;     /* newlines owed before the next content: 0, 1, 2 */
    bool pending_break; /* the owed newline is a <br> */
    bool pending_space;
    bool line_has_content;
    bool wrote_any;
    unsigned char last;      /* last byte of content written */
    char lead[H2M_LEAD_MAX]; /* inline openers ("## ", "**", "[") written with the next content */
    uint8_t lead_len;
    int inline_only; /* > 0: in a heading, cell or link: blocks become spaces */
    bool in_cell;    /* rendering one table cell: tables inside are flattened */
    int strong, em, del, link;
    struct h2m_frame *frames;
    size_t nframes, frames_alloc;
    size_t started; /* frames [0, started) have written their markers */
    size_t common;  /* frames open since the last content: a blank line's prefix */
    struct h2m_open *open;
    size_t nopen, open_alloc;
};

/* html2md_emit.c: */
void h2m_md_init(struct h2m_md *m, struct buf *out, const char *base);
void h2m_md_free(struct h2m_md *m);
/* Appends bytes as they are (no flush); an error sticks in m->err. */
void h2m_md_put(struct h2m_md *m, const char *s, size_t n);
void h2m_md_put_str(struct h2m_md *m, const char *s);
/* Pays what is owed before content: newlines, the line's prefix, a space, the lead.
 * Returns true when the content starts its line. */
bool h2m_md_flush(struct h2m_md *m);
/* Queues an inline opener, written with the next content. */
void h2m_md_lead_add(struct h2m_md *m, const char *s);
/* A container: marker on its first line, then its indentation (or "> ", quote). */
int h2m_md_push_frame(struct h2m_md *m, const char *marker, bool quote);
void h2m_md_pop_frame(struct h2m_md *m);
/* Writes a text node's content: whitespace collapsed, markdown characters escaped. */
int h2m_md_text(struct h2m_md *m, const unsigned char *s);
/* html2md_md.c: */
/* Runs the markdown rules over root's subtree into m->out; 0 or a negative code. */
int h2m_md_walk(struct h2m_md *m, xmlNode *root);
/* A paragraph break before what comes next (a space in an inline-only context). */
void h2m_md_block(struct h2m_md *m);
/* Writes s[0..len) as one line of markup (owed newlines, prefixes and leads first). */
int h2m_md_raw(struct h2m_md *m, const char *s, size_t len);
/* Sets the owed newlines to at least n. */
void h2m_md_newline(struct h2m_md *m, int n);

/* ---- html2md_table.c ---- */

#define H2M_TABLE_MAX_COLS 64 /* cells past this column join the last one */

/* True for a table that lays out a page rather than holding data: one with a table,
 * heading, list, pre, blockquote or rule inside (a one-line cell would destroy them), or
 * with no row of two cells. Its cells are then written as blocks. */
bool h2m_table_is_layout(xmlNode *table);
/* Writes a data table as a GFM pipe table: the first row is the header (a table without
 * <th> has no better one; leading header rows, in <thead> or all <th>, are merged into
 * one), "|" escaped in cells, a colspan as empty cells after the cell, a rowspan as empty
 * cells below it, every row padded to the widest, the first row's align (or style
 * text-align) as the column's alignment. Returns 0 (the table's children are
 * done) or a negative code. */
int h2m_table(struct h2m_md *m, xmlNode *table);

#endif
