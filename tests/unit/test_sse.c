/*
 * Unit tests for src/runner/sse.c: the WHATWG HTML standard's event stream
 * interpretation (9.2.6), its own examples first, then line ends, splits, the BOM,
 * ids, retry and the size limit.
 *
 * Events are recorded as one text, "type|data|last_id" per event with \n \r \0 in
 * data written as escapes, so a test states the whole event sequence in one string.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "sse.h"

struct log {
    char text[4096];
    size_t len;
    int events;
    int stop_after; /* the callback returns 7 at this event (1-based); 0: never */
};

static void log_putc(struct log *l, char c)
{
    assert_true(l->len + 1 < sizeof(l->text));
    l->text[l->len++] = c;
    l->text[l->len] = '\0';
}

static void log_puts(struct log *l, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n') {
            log_putc(l, '\\');
            log_putc(l, 'n');
        } else if (s[i] == '\r') {
            log_putc(l, '\\');
            log_putc(l, 'r');
        } else if (s[i] == '\0') {
            log_putc(l, '\\');
            log_putc(l, '0');
        } else {
            log_putc(l, s[i]);
        }
    }
}

static int record_cb(const struct sse_event *ev, void *data)
{
    struct log *l = data;

    assert_int_equal(ev->data[ev->data_len], '\0');
    assert_int_equal(ev->type[ev->type_len], '\0');
    log_puts(l, ev->type, ev->type_len);
    log_putc(l, '|');
    log_puts(l, ev->data, ev->data_len);
    log_putc(l, '|');
    log_puts(l, ev->last_id, strlen(ev->last_id));
    log_putc(l, ';');
    l->events++;
    return l->stop_after != 0 && l->events == l->stop_after ? 7 : 0;
}

/* Feeds s[0..n) in pieces of step bytes (0: whole) to a new parser with the given max;
 * returns the last feed's code and leaves the events in l. */
static int run(const char *s, size_t n, size_t step, size_t max, struct log *l, long *retry)
{
    struct sse_parser *p = sse_parser_new(max, record_cb, l);
    int r = 0;

    assert_non_null(p);
    l->len = 0;
    l->text[0] = '\0';
    l->events = 0;
    if (step == 0)
        step = n > 0 ? n : 1;
    for (size_t off = 0; off < n && r == 0; off += step)
        r = sse_parser_feed(p, s + off, n - off < step ? n - off : step);
    if (retry != NULL)
        *retry = sse_parser_retry_ms(p);
    sse_parser_free(p);
    return r;
}

/* The stream whole, byte by byte, and in 2, 3 and 7 byte pieces: always want. */
static void assert_events(const char *s, size_t n, const char *want)
{
    static const size_t steps[] = {0, 1, 2, 3, 7};
    struct log l = {0};

    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        assert_int_equal(run(s, n, steps[i], 1 << 20, &l, NULL), 0);
        assert_string_equal(l.text, want);
    }
}

#define EVENTS(lit, want) assert_events(lit, sizeof(lit) - 1, want)
#define RUN(lit, step, max, l, retry) run(lit, sizeof(lit) - 1, step, max, l, retry)

static void test_sse_standard_stock_example_joins_data_lines(void **state)
{
    /* "data: YHOO / data: +2 / data: 10": one message event, lines joined by LF. */
    EVENTS("data: YHOO\ndata: +2\ndata: 10\n\n", "message|YHOO\\n+2\\n10|;");
}

static void test_sse_standard_test_stream_with_comment_and_ids(void **state)
{
    /* The comment fires nothing; "first event" sets the id to 1; a bare "id" resets it
     * to ""; "data:  third event" keeps one of its two spaces; the stream's end does
     * not dispatch an unfinished event (none here after the third). */
    EVENTS(": test stream\n"
           "\n"
           "data: first event\n"
           "id: 1\n"
           "\n"
           "data:second event\n"
           "id\n"
           "\n"
           "data:  third event\n"
           "\n",
           "message|first event|1;message|second event|;message| third event|;");
}

static void test_sse_standard_empty_data_lines_example(void **state)
{
    /* "The first block fires events with the data set to the empty string [...] The
     * middle block fires an event with the data set to a single newline character. The
     * last block is discarded because it is not followed by a blank line." */
    EVENTS("data\n\ndata\ndata\n\ndata:", "message||;message|\\n|;");
}

static void test_sse_standard_space_after_colon_is_optional(void **state)
{
    /* "two identical events" */
    EVENTS("data:test\n\ndata: test\n\n", "message|test|;message|test|;");
}

static void test_sse_unfinished_event_at_end_is_not_dispatched(void **state)
{
    EVENTS("data: a\n", "");
    EVENTS("data: a", "");
    EVENTS("data: a\n\ndata: b\n", "message|a|;");
}

static void test_sse_line_ends_cr_lf_and_crlf_mix(void **state)
{
    EVENTS("data: a\r\n\r\ndata: b\r\rdata: c\n\ndata: d\r\n\n",
           "message|a|;message|b|;message|c|;message|d|;");
    /* CR LF is one end of line, LF CR is two (a blank line: dispatch). */
    EVENTS("data: a\n\rdata: b\r\n\r\n", "message|a|;message|b|;");
    /* CR CR LF: a line end, then a blank line (CR LF). */
    EVENTS("data: x\r\r\n", "message|x|;");
}

static void test_sse_crlf_split_between_chunks_is_one_line_end(void **state)
{
    struct log l = {0};
    struct sse_parser *p = sse_parser_new(1024, record_cb, &l);

    assert_non_null(p);
    assert_int_equal(sse_parser_feed(p, "data: a\r", 8), 0);
    assert_int_equal(sse_parser_feed(p, "\n", 1), 0);
    assert_int_equal(l.events, 0);
    /* the CR ended the blank line at once: dispatched without waiting for its LF */
    assert_int_equal(sse_parser_feed(p, "\r", 1), 0);
    assert_string_equal(l.text, "message|a|;");
    assert_int_equal(sse_parser_feed(p, "\ndata: b\n\n", 10), 0);
    assert_string_equal(l.text, "message|a|;message|b|;");
    sse_parser_free(p);
}

/* The UTF-8 BOM, and its first two bytes. */
#define BOM "\xEF\xBB\xBF"
#define BOM_START "\xEF\xBB"

static void test_sse_leading_bom_is_dropped_once(void **state)
{
    EVENTS(BOM "data: a\n\n", "message|a|;");
    /* a second BOM is part of the first field name: an unknown field */
    EVENTS(BOM BOM "data: a\n\ndata: b\n\n", "message|b|;");
    /* a BOM later in the stream is data */
    EVENTS("data: " BOM "\n\n", "message|" BOM "|;");
    /* a BOM prefix that goes wrong is stream bytes */
    EVENTS(BOM_START "data: a\n\ndata: b\n\n", "message|b|;");
    EVENTS(BOM_START ":x\n\xEF\n\n", "");
    EVENTS("\xEF: \ndata\n\n", "message||;");
}

static void test_sse_event_field_sets_type_for_one_event(void **state)
{
    EVENTS("event: endpoint\ndata: /messages?s=1\n\ndata: x\n\n",
           "endpoint|/messages?s=1|;message|x|;");
    /* the last event field wins; an empty one means the default */
    EVENTS("event: a\nevent: b\ndata: x\n\nevent\ndata: y\n\n", "b|x|;message|y|;");
    /* an event without data: nothing, and its type does not leak into the next */
    EVENTS("event: a\n\ndata: x\n\n", "message|x|;");
    /* a NUL in the type is kept, and type_len says so */
    EVENTS("event: end\0x\ndata: y\n\n", "end\\0x|y|;");
}

static void test_sse_fields_without_colon_unknown_and_comments(void **state)
{
    EVENTS("foo: bar\ndata: x\n:comment\n: data: no\nDATA: no\ndata : no\n\n", "message|x|;");
    /* only one space is dropped, and only a space (not a tab) */
    EVENTS("data:\tx\n\ndata:   y\n\n", "message|\tx|;message|  y|;");
    /* a colon in the value is kept */
    EVENTS("data: a:b: c\n\n", "message|a:b: c|;");
    /* a NUL in data is text */
    EVENTS("data: a\0b\n\n", "message|a\\0b|;");
}

static void test_sse_id_persists_and_nul_in_id_is_ignored(void **state)
{
    struct log l = {0};
    struct sse_parser *p;
    static const char s[] = "id: 7\ndata: a\n\ndata: b\n\nid: 8\0x\ndata: c\n\n"
                            "id: 9\n\ndata: d\n\nid\ndata: e\n\n";

    EVENTS(s, "message|a|7;message|b|7;message|c|7;message|d|9;message|e|;");

    /* the reconnect id moves at each blank line, also one that dispatches nothing */
    p = sse_parser_new(1024, record_cb, &l);
    assert_non_null(p);
    assert_string_equal(sse_parser_last_event_id(p), "");
    assert_int_equal(sse_parser_feed(p, "id: 1\ndata: a\n\n", 15), 0);
    assert_string_equal(sse_parser_last_event_id(p), "1");
    assert_int_equal(sse_parser_feed(p, "id: 2\n", 6), 0);
    assert_string_equal(sse_parser_last_event_id(p), "1"); /* not before the blank line */
    assert_int_equal(sse_parser_feed(p, "\n", 1), 0);
    assert_string_equal(sse_parser_last_event_id(p), "2");
    assert_int_equal(l.events, 1);
    assert_int_equal(sse_parser_feed(p, "data: b\nid: 3\n\n", 15), 0);
    assert_string_equal(l.text, "message|a|1;message|b|3;");
    sse_parser_free(p);
}

static void test_sse_retry_takes_ascii_digits_only(void **state)
{
    struct log l = {0};
    long retry;

    assert_int_equal(RUN("retry: 1500\n", 0, 1024, &l, &retry), 0);
    assert_int_equal(retry, 1500);
    assert_int_equal(RUN("data: a\n\n", 0, 1024, &l, &retry), 0);
    assert_int_equal(retry, -1);
    assert_int_equal(
        RUN("retry: 10\nretry: 1x\nretry: -5\nretry: \nretry\nretry:  7\n", 1, 1024, &l, &retry),
        0);
    assert_int_equal(retry, 10);
    assert_int_equal(RUN("retry: 99999999999999999999999\n", 0, 1024, &l, &retry), 0);
    assert_int_equal(retry, -1);
    assert_int_equal(RUN("retry: 0\n", 0, 1024, &l, &retry), 0);
    assert_int_equal(retry, 0);
    assert_int_equal(l.events, 0); /* retry alone is no event */
}

static void test_sse_size_limit_on_data_and_lines(void **state)
{
    struct log l = {0};
    char s[64];

    /* data of exactly the limit (9) passes, one byte more fails */
    assert_int_equal(RUN("data:1234\ndata:5678\n\n", 1, 9, &l, NULL), 0);
    assert_string_equal(l.text, "message|1234\\n5678|;");
    assert_int_equal(RUN("data:123\ndata:456\ndata:789\n\n", 1, 9, &l, NULL), ERR_TOO_LARGE);
    /* data lines of nothing grow data by one byte each: 10 make 9 bytes, 11 fail */
    assert_int_equal(
        RUN("data\ndata\ndata\ndata\ndata\ndata\ndata\ndata\ndata\ndata\n\n", 0, 9, &l, NULL), 0);
    assert_int_equal(l.events, 1);
    assert_int_equal(
        RUN("data\ndata\ndata\ndata\ndata\ndata\ndata\ndata\ndata\ndata\ndata\n\n", 0, 9, &l, NULL),
        ERR_TOO_LARGE);
    assert_int_equal(l.events, 0);
    /* a line over the limit fails before its end arrives, whatever the field */
    memset(s, 'x', sizeof(s));
    assert_int_equal(run(s, 9, 0, 8, &l, NULL), ERR_TOO_LARGE);
    assert_int_equal(run(s, 8, 0, 8, &l, NULL), 0);
    memcpy(s, ": ", 2);
    assert_int_equal(run(s, 20, 3, 8, &l, NULL), ERR_TOO_LARGE);
    /* events before the failure were delivered */
    assert_int_equal(RUN("data: a\n\ndata: 0123456789\n\n", 0, 8, &l, NULL), ERR_TOO_LARGE);
    assert_string_equal(l.text, "message|a|;");
}

static int count_cb(const struct sse_event *ev, void *data)
{
    size_t *total = data;

    *total += ev->data_len;
    return 0;
}

static void test_sse_memory_stays_bounded_by_the_current_event(void **state)
{
    size_t total = 0;
    struct sse_parser *p = sse_parser_new(1 << 20, count_cb, &total);
    char *big = malloc(200000);

    assert_non_null(p);
    assert_non_null(big);
    memcpy(big, "data: ", 6);
    memset(big + 6, 'z', 200000 - 6);
    assert_int_equal(sse_parser_feed(p, big, 200000), 0);
    assert_true(sse_parser_buffered(p) >= 200000);
    assert_int_equal(sse_parser_feed(p, "\n\n", 2), 0);
    assert_int_equal(total, 200000 - 6);
    assert_int_equal(sse_parser_buffered(p), 0);
    assert_int_equal(sse_parser_feed(p, "id: 5\n\n", 7), 0);
    assert_int_equal(sse_parser_buffered(p), 1);
    sse_parser_free(p);
    free(big);
}

static void test_sse_callback_stop_is_returned_and_final(void **state)
{
    struct log l = {.stop_after = 2};
    struct sse_parser *p = sse_parser_new(1024, record_cb, &l);

    assert_non_null(p);
    assert_int_equal(sse_parser_feed(p, "data: a\n\ndata: b\n\ndata: c\n\n", 27), 7);
    assert_string_equal(l.text, "message|a|;message|b|;");
    assert_int_equal(sse_parser_feed(p, "data: d\n\n", 9), 7);
    assert_int_equal(l.events, 2);
    sse_parser_free(p);
}

static void test_sse_error_is_final(void **state)
{
    struct log l = {0};
    struct sse_parser *p = sse_parser_new(4, record_cb, &l);

    assert_non_null(p);
    assert_int_equal(sse_parser_feed(p, "data: abcdef", 12), ERR_TOO_LARGE);
    assert_int_equal(sse_parser_feed(p, "\n\n", 2), ERR_TOO_LARGE);
    assert_int_equal(sse_parser_feed(p, "", 0), ERR_TOO_LARGE);
    assert_int_equal(l.events, 0);
    sse_parser_free(p);
    sse_parser_free(NULL);
}

/* A stream cut inside an event is told apart from one that stopped between events. */
static void test_sse_mid_event_tells_a_cut_stream(void **state)
{
    struct log l = {0};
    struct sse_parser *p = sse_parser_new(64, record_cb, &l);

    (void)state;
    assert_non_null(p);
    assert_false(sse_parser_mid_event(p));
    assert_int_equal(sse_parser_feed(p, "data: a\n\n", strlen("data: a\n\n")), 0);
    assert_false(sse_parser_mid_event(p)); /* between events */
    assert_int_equal(sse_parser_feed(p, "data: b", strlen("data: b")), 0);
    assert_true(sse_parser_mid_event(p)); /* inside a line */
    assert_int_equal(sse_parser_feed(p, "\r\n", strlen("\r\n")), 0);
    assert_true(sse_parser_mid_event(p)); /* data without its blank line */
    assert_int_equal(sse_parser_feed(p, "\r\n: comment\n", strlen("\r\n: comment\n")), 0);
    assert_false(sse_parser_mid_event(p));
    assert_int_equal(l.events, 2);
    sse_parser_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sse_standard_stock_example_joins_data_lines),
        cmocka_unit_test(test_sse_standard_test_stream_with_comment_and_ids),
        cmocka_unit_test(test_sse_standard_empty_data_lines_example),
        cmocka_unit_test(test_sse_standard_space_after_colon_is_optional),
        cmocka_unit_test(test_sse_unfinished_event_at_end_is_not_dispatched),
        cmocka_unit_test(test_sse_line_ends_cr_lf_and_crlf_mix),
        cmocka_unit_test(test_sse_crlf_split_between_chunks_is_one_line_end),
        cmocka_unit_test(test_sse_leading_bom_is_dropped_once),
        cmocka_unit_test(test_sse_event_field_sets_type_for_one_event),
        cmocka_unit_test(test_sse_fields_without_colon_unknown_and_comments),
        cmocka_unit_test(test_sse_id_persists_and_nul_in_id_is_ignored),
        cmocka_unit_test(test_sse_retry_takes_ascii_digits_only),
        cmocka_unit_test(test_sse_size_limit_on_data_and_lines),
        cmocka_unit_test(test_sse_memory_stays_bounded_by_the_current_event),
        cmocka_unit_test(test_sse_callback_stop_is_returned_and_final),
        cmocka_unit_test(test_sse_error_is_final),
        cmocka_unit_test(test_sse_mid_event_tells_a_cut_stream),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
