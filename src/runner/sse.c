/*
 * sse.c - the Server-Sent Events parser. See sse.h.
 *
 * Section numbers below are the WHATWG HTML standard's, 9.2.6 "Interpreting an event
 * stream". The parser keeps the current line in a buffer until its end of line has
 * arrived, then interprets it as a whole: simpler than a byte-level state machine, and
 * the line buffer is capped like the rest.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "sse.h"

/* A buffer that held more than this after an event (or a line) is given back to the
 * allocator instead of kept: one 16 MiB event must not pin 16 MiB for the life of an
 * idle stream. */
#define SSE_KEEP_BYTES (64u * 1024u)

static const unsigned char sse_bom[3] = {0xEF, 0xBB, 0xBF};

struct sse_parser {
    size_t max;
    sse_event_cb cb;
    void *cb_data;
    int err;                 /* the first non-zero return, repeated from then on */
    unsigned bom_seen;       /* leading bytes that matched the BOM so far */
    bool past_start;         /* the BOM question is settled */
    bool skip_lf;            /* the last line ended in CR: an LF right after is part of it */
    bool id_set;             /* an id field came in this block: id_next is the new last id */
    struct buf *line;        /* the current line, without its end of line; cap max */
    struct buf *data;        /* the data buffer: each data line and a "\n"; cap max + 1 */
    struct buf *type;        /* the event type buffer; cap max */
    struct buf *id_next;     /* the last event id buffer, while id_set; cap max */
    struct buf *last_id;     /* the last event id string; cap max */
    const char *last_id_str; /* NUL-terminated view of last_id */
    long retry_ms;
};

struct sse_parser *sse_parser_new(size_t max_event_bytes, sse_event_cb cb, void *data)
{
    struct sse_parser *p;

    if (max_event_bytes == 0 || max_event_bytes == SIZE_MAX || cb == NULL)
        return NULL;
    if ((p = calloc(1, sizeof(*p))) == NULL)
        return NULL;
    p->max = max_event_bytes;
    p->cb = cb;
    p->cb_data = data;
    p->retry_ms = -1;
    p->last_id_str = "";
    if ((p->line = buf_new(p->max, 0)) == NULL || (p->data = buf_new(p->max + 1, 0)) == NULL ||
        (p->type = buf_new(p->max, 0)) == NULL || (p->id_next = buf_new(p->max, 0)) == NULL ||
        (p->last_id = buf_new(p->max, 0)) == NULL) {
        sse_parser_free(p);
        return NULL;
    }
    return p;
}

void sse_parser_free(struct sse_parser *p)
{
    if (p == NULL)
        return;
    buf_free(p->line);
    buf_free(p->data);
    buf_free(p->type);
    buf_free(p->id_next);
    buf_free(p->last_id);
    free(p);
}

long sse_parser_retry_ms(const struct sse_parser *p)
{
    return p->retry_ms;
}

const char *sse_parser_last_event_id(const struct sse_parser *p)
{
    return p->last_id_str;
}

size_t sse_parser_buffered(const struct sse_parser *p)
{
    return buf_len(p->line) + buf_len(p->data) + buf_len(p->type) + buf_len(p->id_next) +
           buf_len(p->last_id);
}

bool sse_parser_mid_event(const struct sse_parser *p)
{
    return buf_len(p->line) > 0 || buf_len(p->data) > 0;
}

/* Empties *b, replacing it by a fresh one when it grew large. 0 or ERR_NOMEM. */
static int sse__empty(struct buf **b)
{
    struct buf *fresh;

    if (buf_len(*b) <= SSE_KEEP_BYTES) {
        buf_reset(*b);
        return 0;
    }
    if ((fresh = buf_new(buf_max(*b), 0)) == NULL)
        return ERR_NOMEM;
    buf_free(*b);
    *b = fresh;
    return 0;
}

/* A blank line: "dispatch the event". */
static int sse__dispatch(struct sse_parser *p)
{
    struct sse_event ev;
    int r;

    /* Step 1: the last event id string takes the buffer's value, dispatched or not. */
    if (p->id_set) {
        struct buf *t = p->last_id;

        p->last_id = p->id_next;
        p->id_next = t;
        p->id_set = false;
        if ((p->last_id_str = buf_cstr(p->last_id)) == NULL) {
            p->last_id_str = ""; /* sse_parser_last_event_id stays a string after the error */
            return ERR_NOMEM;
        }
        if ((r = sse__empty(&p->id_next)) != 0)
            return r;
    }
    /* Step 2: no data line, no event (the type is forgotten too). */
    if (buf_len(p->data) == 0)
        return sse__empty(&p->type);
    /* Step 3: drop the "\n" the last data line added; its byte becomes the NUL. */
    ev.data_len = buf_len(p->data) - 1;
    buf_mutable_ptr(p->data)[ev.data_len] = '\0';
    ev.data = (const char *)buf_ptr(p->data);
    if (buf_len(p->type) == 0) {
        ev.type = "message";
        ev.type_len = strlen("message");
    } else {
        if ((ev.type = buf_cstr(p->type)) == NULL)
            return ERR_NOMEM;
        ev.type_len = buf_len(p->type);
    }
    ev.last_id = p->last_id_str;
    r = p->cb(&ev, p->cb_data);
    if (r != 0)
        return r;
    if ((r = sse__empty(&p->data)) != 0 || (r = sse__empty(&p->type)) != 0)
        return r;
    return 0;
}

static bool sse__name_is(const char *name, size_t len, const char *lit)
{
    return len == strlen(lit) && memcmp(name, lit, len) == 0;
}

/* "retry": ASCII digits only, else ignored; also ignored when empty or past LONG_MAX. */
static void sse__set_retry(struct sse_parser *p, const char *v, size_t len)
{
    long n = 0;

    if (len == 0)
        return;
    for (size_t i = 0; i < len; i++) {
        int d = (unsigned char)v[i] - '0';

        if (d < 0 || d > 9 || n > (LONG_MAX - d) / 10)
            return;
        n = n * 10 + d;
    }
    p->retry_ms = n;
}

/* One complete line, without its end of line: "process the field". */
static int sse__line(struct sse_parser *p, const char *line, size_t len)
{
    const char *colon, *value;
    size_t name_len, value_len;
    int r;

    if (len == 0)
        return sse__dispatch(p);
    if (line[0] == ':')
        return 0;
    if ((colon = memchr(line, ':', len)) != NULL) {
        name_len = (size_t)(colon - line);
        value = colon + 1;
        value_len = len - name_len - 1;
        if (value_len > 0 && value[0] == ' ') {
            value++;
            value_len--;
        }
    } else {
        name_len = len;
        value = line + len;
        value_len = 0;
    }
    if (sse__name_is(line, name_len, "event")) {
        buf_reset(p->type);
        return buf_put(p->type, value, value_len);
    }
    if (sse__name_is(line, name_len, "data")) {
        if ((r = buf_put(p->data, value, value_len)) != 0 || (r = buf_put(p->data, "\n", 1)) != 0)
            return r;
        return 0;
    }
    if (sse__name_is(line, name_len, "id")) {
        if (memchr(value, '\0', value_len) != NULL)
            return 0;
        buf_reset(p->id_next);
        p->id_set = true;
        return buf_put(p->id_next, value, value_len);
    }
    if (sse__name_is(line, name_len, "retry"))
        sse__set_retry(p, value, value_len);
    return 0;
}

/* Ends the buffered line: interprets it and empties the line buffer. */
static int sse__end_line(struct sse_parser *p)
{
    int r;

    /* The buffer is read in place; nothing in sse__line touches p->line. */
    if ((r = sse__line(p, (const char *)buf_ptr(p->line), buf_len(p->line))) != 0)
        return r;
    return sse__empty(&p->line);
}

/* Stream bytes past the BOM question. */
static int sse__consume(struct sse_parser *p, const char *s, size_t n)
{
    int r;

    while (n > 0) {
        size_t k = 0;

        if (p->skip_lf) {
            p->skip_lf = false;
            if (s[0] == '\n') {
                s++;
                n--;
                continue;
            }
        }
        while (k < n && s[k] != '\n' && s[k] != '\r')
            k++;
        if ((r = buf_put(p->line, s, k)) != 0)
            return r;
        if (k == n)
            return 0;
        /* The line ends now, even on a CR whose LF may come in the next chunk: the
         * event is dispatched without waiting for bytes that may never come. */
        p->skip_lf = s[k] == '\r';
        if ((r = sse__end_line(p)) != 0)
            return r;
        s += k + 1;
        n -= k + 1;
    }
    return 0;
}

int sse_parser_feed(struct sse_parser *p, const char *buf, size_t len)
{
    const unsigned char *u = (const unsigned char *)buf;
    size_t i = 0;
    int r;

    if (p->err != 0)
        return p->err;
    if (!p->past_start) {
        /* The BOM may itself arrive split: hold matching bytes until it is whole or not. */
        while (i < len && p->bom_seen < sizeof(sse_bom) && u[i] == sse_bom[p->bom_seen]) {
            p->bom_seen++;
            i++;
        }
        if (p->bom_seen < sizeof(sse_bom) && i == len)
            return 0;
        p->past_start = true;
        /* A BOM prefix that went wrong was stream bytes after all. */
        if (p->bom_seen < sizeof(sse_bom) && p->bom_seen > 0 &&
            (r = sse__consume(p, (const char *)sse_bom, p->bom_seen)) != 0)
            return p->err = r;
    }
    if ((r = sse__consume(p, buf + i, len - i)) != 0)
        p->err = r;
    return r;
}
