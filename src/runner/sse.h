/*
 * sse.h - an incremental Server-Sent Events parser: the WHATWG HTML standard's
 * "event stream interpretation" (section 9.2.6), for the MCP client's HTTP transports
 * (a Streamable HTTP response in text/event-stream, the legacy HTTP+SSE stream).
 *
 * Bytes are fed in chunks split anywhere (inside a field, inside a CRLF, inside the
 * BOM); events come out of sse_parser_feed through a callback as soon as the blank
 * line that ends them has arrived. As the standard says:
 *
 *   - lines end in CRLF, LF or CR; one UTF-8 BOM at the very start is dropped;
 *   - a line starting with ':' is a comment; "name: value" drops one space after the
 *     colon; a line without a colon is a field with an empty value; unknown fields are
 *     ignored;
 *   - data lines are joined with "\n"; event sets the type ("message" by default); id
 *     sets the last event id (ignored when it contains NUL), which persists across
 *     events; retry is kept when it is ASCII digits only;
 *   - a blank line dispatches, unless no data line came (then only the id is kept);
 *     an unfinished event at the end of the stream is never dispatched.
 *
 * Not done, on purpose: the standard decodes the stream as UTF-8 with U+FFFD for bad
 * sequences; here bytes pass through as they are (the MCP client's JSON parser refuses
 * invalid UTF-8 itself, and no length changes under it). A retry too large for a long
 * is ignored, as is an empty one.
 *
 * Bounded: a line longer than max_event_bytes (its end of line not counted), or an
 * event whose data would exceed max_event_bytes, stops the parser with ERR_TOO_LARGE
 * as soon as the bytes arrive. What it holds is the current line, the current event's
 * data and type, and the last id: linear in the current event, never in the stream.
 *
 * Not for: the HTTP around the stream, reconnection (the caller reads the retry and
 * last event id and reconnects), or any I/O.
 */
#ifndef CREDBROKER_SSE_H
#define CREDBROKER_SSE_H

#include <stdbool.h>
#include <stddef.h>

struct sse_event {
    const char *type; /* "message" unless an event field said otherwise; NUL-terminated */
    size_t type_len;  /* type may hold a NUL (the standard allows it): compare with this */
    const char *data; /* data_len bytes, then a NUL; may hold NUL bytes (U+0000 is text) */
    size_t data_len;
    const char *last_id; /* the last event id so far ("" if none); never holds a NUL */
};

/*
 * Called once per dispatched event, from inside sse_parser_feed. Every pointer in ev is
 * valid only until the callback returns. Returns 0 to go on; anything else stops
 * sse_parser_feed, which returns it. The callback must not feed or free the parser.
 */
typedef int (*sse_event_cb)(const struct sse_event *ev, void *data);

struct sse_parser;

/* Returns a new parser for one stream, or NULL: no memory, or max_event_bytes 0 or
 * SIZE_MAX, or cb NULL. */
struct sse_parser *sse_parser_new(size_t max_event_bytes, sse_event_cb cb, void *data);

/*
 * Feeds buf[0..len); events are delivered from inside. Returns 0 (all consumed; an
 * unfinished line or event is kept for the next call), ERR_TOO_LARGE, ERR_NOMEM, or the
 * callback's non-zero value (the rest of buf is then not read). Any non-zero return is
 * final: the parser refuses further input with the same value.
 */
int sse_parser_feed(struct sse_parser *p, const char *buf, size_t len)
    __attribute__((warn_unused_result));

/* The reconnection time the stream asked for, in ms, or -1 when it asked none. */
long sse_parser_retry_ms(const struct sse_parser *p);

/*
 * The last event id as of the last blank line ("" if none): what a reconnect sends as
 * Last-Event-ID. Valid until the next feed. The standard moves the id into this string
 * at each blank line, even one that dispatches nothing.
 */
const char *sse_parser_last_event_id(const struct sse_parser *p);

/* The bytes the parser holds now (line, data, type, both ids), for the fuzz harness's
 * memory bound: at most 5 * (max_event_bytes + 1). */
size_t sse_parser_buffered(const struct sse_parser *p);

/* True when the stream stopped inside an event: a line without its end, or data lines
 * not yet ended by a blank line. A stream that ends then was cut (the event is lost). */
bool sse_parser_mid_event(const struct sse_parser *p);

/* Frees p. Accepts NULL. */
void sse_parser_free(struct sse_parser *p);

#endif
