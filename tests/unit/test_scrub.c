/* Unit tests for src/broker/scrub.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
#include "err.h"
#include "scrub.h"
#include "secret.h"

#define OUT_MAX (64u << 20)

static struct scrubber *scrubber_for(const char *key)
{
    struct scrubber *s;

    assert_int_equal(scrubber_new((const uint8_t *)key, strlen(key), &s), 0);
    return s;
}

/* mask_all on a copy of text; returns a malloc'd NUL-terminated result. */
static char *mask_copy(const struct scrubber *s, const char *text, size_t *count)
{
    size_t len = strlen(text);
    char *copy = malloc(len + 1);
    size_t n;

    assert_non_null(copy);
    memcpy(copy, text, len + 1);
    n = scrubber_mask_all(s, (uint8_t *)copy, len);
    if (count != NULL)
        *count = n;
    return copy;
}

/* mask_all on a copy of text in a static buffer (short texts only). */
static const char *mask_copy_static(const struct scrubber *s, const char *text)
{
    static char copy[256];
    size_t len = strlen(text);

    assert_true(len < sizeof(copy));
    memcpy(copy, text, len + 1);
    (void)scrubber_mask_all(s, (uint8_t *)copy, len);
    return copy;
}

static void assert_masks_to(const char *key, const char *text, const char *want)
{
    struct scrubber *s = scrubber_for(key);
    char *got = mask_copy(s, text, NULL);

    assert_string_equal(got, want);
    free(got);
    scrubber_free(s);
}

/* scrub_stream_feed_to into a buffer of exactly the room it asks for, with a canary after
 * it; the output is appended to out. */
static void feed_to(struct scrub_stream *st, const uint8_t *in, size_t len, struct buf *out)
{
    size_t room = scrub_stream_feed_room(st, len), n = SIZE_MAX;
    uint8_t *dst = malloc(room + 16);

    assert_non_null(dst);
    memset(dst, 0xA5, room + 16);
    assert_int_equal(scrub_stream_feed_to(st, in, len, dst, &n), 0);
    assert_true(n <= room);
    for (size_t i = room; i < room + 16; i++)
        assert_int_equal(dst[i], 0xA5);
    assert_int_equal(buf_put(out, dst, n), 0);
    free(dst);
}

/* Streams data through a new stream, cut at the given offsets (ascending); the pieces go
 * through scrub_stream_feed and scrub_stream_feed_to in turn. */
static struct buf *stream_with_cuts(const struct scrubber *s, const uint8_t *data, size_t len,
                                    const size_t *cuts, size_t ncuts)
{
    struct scrub_stream *st;
    struct buf *out = buf_new(OUT_MAX, 0);
    size_t prev = 0;

    assert_non_null(out);
    assert_int_equal(scrub_stream_new(s, &st), 0);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t next = i < ncuts ? cuts[i] : len;

        if (i % 2 == 0)
            assert_int_equal(scrub_stream_feed(st, data + prev, next - prev, out), 0);
        else
            feed_to(st, data + prev, next - prev, out);
        /* Never more than max_pattern - 1 bytes held back. */
        assert_true(next - buf_len(out) < scrubber_max_pattern(s));
        prev = next;
    }
    assert_int_equal(scrub_stream_finish(st, out), 0);
    assert_int_equal(buf_len(out), len);
    scrub_stream_free(st);
    return out;
}

/* Streams data fed chunk bytes at a time. */
static struct buf *stream_by_chunks(const struct scrubber *s, const uint8_t *data, size_t len,
                                    size_t chunk)
{
    struct scrub_stream *st;
    struct buf *out = buf_new(OUT_MAX, 0);

    assert_non_null(out);
    assert_int_equal(scrub_stream_new(s, &st), 0);
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;

        assert_int_equal(scrub_stream_feed(st, data + off, n, out), 0);
    }
    assert_int_equal(scrub_stream_finish(st, out), 0);
    scrub_stream_free(st);
    return out;
}

/* Checks that every way of cutting text once or twice, and byte by byte, streams to want. */
static void assert_streams_to_at_every_split(const char *key, const char *text, const char *want)
{
    struct scrubber *s = scrubber_for(key);
    size_t len = strlen(text);
    struct buf *out;

    for (size_t a = 0; a <= len; a++) {
        for (size_t b = a; b <= len; b++) {
            size_t cuts[2] = {a, b};

            out = stream_with_cuts(s, (const uint8_t *)text, len, cuts, 2);
            assert_memory_equal(buf_ptr(out), want, len);
            buf_free(out);
        }
    }
    out = stream_by_chunks(s, (const uint8_t *)text, len, 1);
    assert_int_equal(buf_len(out), len);
    assert_memory_equal(buf_ptr(out), want, len);
    buf_free(out);
    scrubber_free(s);
}

static void test_scrub_masks_the_raw_key_with_the_same_length(void **state)
{
    assert_masks_to("sk-123", "{\"url\":\"/p?app_key=sk-123&x=1\"}",
                    "{\"url\":\"/p?app_key=******&x=1\"}");
}

static void test_scrub_masks_upper_and_lower_case_percent_encodings(void **state)
{
    assert_masks_to("a/b+c d", "U a%2Fb%2Bc%20d L a%2fb%2bc%20d P a%2Fb%2Bc+d",
                    "U ************* L ************* P ***********");
}

/* A key whose first byte is not ASCII (UTF-8 here): its escape's first hex digit is a
 * letter, and a lower-case one must be seen too (the vector scan tests both cases). */
static void test_scrub_masks_a_non_ascii_first_byte_escaped_in_either_case(void **state)
{
    assert_masks_to("\xc3\xa9t\xc3\xa9-key", "u %C3%A9t%C3%A9-key l %c3%a9t%c3%a9-key",
                    "u ***************** l *****************");
}

static void test_scrub_masks_mixed_encodings(void **state)
{
    /* '/' left raw (Python's quote), '~' and letters escaped needlessly. */
    assert_masks_to("a/b~c", "x a/b%7Ec y %61%2f%62~%63 z", "x ******* y ************* z");
}

static void test_scrub_leaves_text_without_the_key_byte_identical(void **state)
{
    const char *text = "sk-12 sk-12_4? no: s k-123 sK-123 sk%2D12 %zz %% %2 % +++ sk-12";

    assert_masks_to("sk-123", text, text);
    assert_streams_to_at_every_split("sk-123", text, text);
}

static void test_scrub_masks_a_key_at_the_very_start_and_end(void **state)
{
    assert_masks_to("key", "key", "***");
    assert_masks_to("key", "key middle key", "*** middle ***");
    assert_streams_to_at_every_split("key", "key middle key", "*** middle ***");
    assert_streams_to_at_every_split("key", "%6B%65%79", "*********");
}

static void test_scrub_masks_adjacent_and_overlapping_occurrences(void **state)
{
    size_t count;
    struct scrubber *s = scrubber_for("aba");
    char *got = mask_copy(s, "xababay abaaba abxaba", &count);

    assert_string_equal(got, "x*****y ****** abx***");
    assert_int_equal(count, 5);
    free(got);
    scrubber_free(s);
    assert_streams_to_at_every_split("aba", "xababay abaaba abxaba", "x*****y ****** abx***");
    assert_masks_to("aa", "aaaaa", "*****");
}

static void test_scrub_masks_the_key_split_across_every_chunk_boundary(void **state)
{
    assert_streams_to_at_every_split("s3cr/t k", "a s3cr/t k b s3cr%2Ft%20k c s3cr%2ft+k d s3cr",
                                     "a ******** b ************ c ********** d s3cr");
}

static void test_scrub_handles_a_key_with_a_percent_both_ways(void **state)
{
    /* "%25" in the data is a raw '%' followed by "25", or an escaped '%'. */
    assert_masks_to("a%25b", "[a%25b] [a%2525b] [a%2b] [a%25%32%35b] [a%25]",
                    "[*****] [*******] [a%2b] [***********] [a%25]");
    assert_streams_to_at_every_split("a%25b", "[a%25b] [a%2525b] [a%2b] [a%25]",
                                     "[*****] [*******] [a%2b] [a%25]");
    assert_masks_to("%", "100% %25 %2 %", "100* *** *2 *");
}

static void test_scrub_masks_header_values_in_place(void **state)
{
    size_t count;
    struct scrubber *s = scrubber_for("k=1&2");
    char *got = mask_copy(s, "https://h/cb?app_key=k%3D1%262&state=k=1&2", &count);

    assert_string_equal(got, "https://h/cb?app_key=*********&state=*****");
    assert_int_equal(count, 2);
    free(got);
    got = mask_copy(s, "", &count);
    assert_int_equal(count, 0);
    free(got);
    scrubber_free(s);
}

/* The reference: the longest reading of key at d[i], or 0. Exponential, for short keys only. */
static size_t reference_end(const uint8_t *d, size_t n, size_t i, const char *key, size_t j)
{
    static const char hex[] = "0123456789abcdef";
    size_t best = 0, e;
    uint8_t k = (uint8_t)key[j];

    if (key[j] == '\0')
        return i;
    if (i < n && (d[i] == k || (d[i] == '+' && k == ' ')) &&
        (e = reference_end(d, n, i + 1, key, j + 1)) > best)
        best = e;
    if (i + 2 < n && d[i] == '%' && (d[i + 1] | 0x20) == hex[k >> 4] &&
        (d[i + 2] == hex[k & 0xf] || (d[i + 2] | 0x20) == hex[k & 0xf]) &&
        (e = reference_end(d, n, i + 3, key, j + 1)) > best)
        best = e;
    return best;
}

static void test_scrub_agrees_with_a_brute_force_reference(void **state)
{
    const char *keys[] = {"ab", "a b", "%a",  "a%25", "%25%", "%%",
                          "+a", " a",  "a/b", "%",    "b",    " "};
    const char alphabet[] = "ab %25+/A2fF";
    uint8_t d[64], want[64];

    srand(7);
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        struct scrubber *s = scrubber_for(keys[k]);

        for (int round = 0; round < 2000; round++) {
            size_t n = (size_t)(rand() % (int)sizeof(d)), cuts[2];
            struct buf *out;

            for (size_t i = 0; i < n; i++)
                d[i] = (uint8_t)alphabet[rand() % (int)(sizeof(alphabet) - 1)];
            memcpy(want, d, n);
            for (size_t i = 0, end; i < n; i++) {
                if ((end = reference_end(d, n, i, keys[k], 0)) > i)
                    memset(want + i, '*', end - i);
            }
            cuts[0] = n == 0 ? 0 : (size_t)rand() % n;
            cuts[1] = cuts[0] + (n == 0 ? 0 : (size_t)rand() % (n - cuts[0] + 1));
            out = stream_with_cuts(s, d, n, cuts, 2);
            assert_memory_equal(buf_ptr(out), want, n);
            buf_free(out);
            (void)scrubber_mask_all(s, d, n);
            assert_memory_equal(d, want, n);
        }
        scrubber_free(s);
    }
}

static void test_scrub_streams_a_long_random_body_like_mask_all(void **state)
{
    const char *key = "Zq%9 x/Y";
    const char *forms[] = {"Zq%9 x/Y", "Zq%259%20x%2FY", "Zq%259+x%2fY", "Zq%259+x/Y",
                           "%5Aq%25%39 x/Y"};
    const char alphabet[] = "abcZq%9 x/Y+25\n\"{}";
    size_t len = 1 << 20, chunks[] = {1, 7, 8, 64, 4096, 100000};
    struct scrubber *s = scrubber_for(key);
    uint8_t *body = malloc(len), *whole = malloc(len);
    size_t count;

    assert_non_null(body);
    assert_non_null(whole);
    srand(11);
    for (size_t i = 0; i < len; i++)
        body[i] = (uint8_t)alphabet[rand() % (int)(sizeof(alphabet) - 1)];
    for (int i = 0; i < 300; i++) {
        const char *f = forms[rand() % 5];
        size_t at = (size_t)rand() % (len - 32);

        memcpy(body + at, f, strlen(f));
    }
    memcpy(whole, body, len);
    count = scrubber_mask_all(s, whole, len);
    assert_true(count >= 100);
    assert_null(memmem(whole, len, key, strlen(key)));
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        struct buf *out = stream_by_chunks(s, body, len, chunks[c]);

        assert_int_equal(buf_len(out), len);
        assert_memory_equal(buf_ptr(out), whole, len);
        buf_free(out);
    }
    for (int round = 0; round < 20; round++) {
        size_t cuts[64], off = 0, n = 0;
        struct buf *out;

        while (n < 64 && (off += (size_t)rand() % 40000) < len)
            cuts[n++] = off;
        out = stream_with_cuts(s, body, len, cuts, n);
        assert_memory_equal(buf_ptr(out), whole, len);
        buf_free(out);
    }
    free(body);
    free(whole);
    scrubber_free(s);
}

/* A long key: a feed that ends inside an occurrence, or inside a false start, holds back
 * its tail, judged with the next feed's bytes. Sparse occurrences among bytes that are no
 * candidate, fed in pieces of every size around a filter block and a tail, with both
 * filters, stream to what mask_all makes of the whole. */
static void test_scrub_streams_a_long_key_sparse_body_in_every_piece_size(void **state)
{
    char key[65];
    size_t len = 64 * 1024;
    struct scrubber *s;
    uint8_t *body = malloc(len), *whole = malloc(len);

    (void)state;
    assert_non_null(body);
    assert_non_null(whole);
    /* Its first byte only once: the one candidate in an occurrence is its start. */
    for (size_t i = 0; i < 64; i++)
        key[i] = (char)(i == 0 ? 'A' : 'B' + i % 25);
    key[64] = '\0';
    s = scrubber_for(key);
    srand(5);
    for (size_t i = 0; i < len; i++)
        body[i] = (uint8_t)('a' + rand() % 26); /* never 'A', never '%': no candidate */
    /* The whole key, a prefix long enough to count, and a false start (held back at the
     * end of a feed, then judged no occurrence: what follows it is emitted as it is tested). */
    for (size_t at = 1000, i = 0; at + 200 < len; at += 1499, i++)
        memcpy(body + at, key, i % 3 == 0 ? 64 : i % 3 == 1 ? 20 : 10);
    memcpy(whole, body, len);
    assert_true(scrubber_mask_all(s, whole, len) >= 8);
    for (size_t width = 16; width <= 64; width *= 2) {
        scrub_scan_width(width);
        for (size_t chunk = 1; chunk <= 400; chunk += chunk < 40 ? 1 : 29) {
            size_t cuts[1024], n = 0;
            struct buf *out;

            for (size_t off = chunk; off < len && n < 1024; off += chunk + n % 3)
                cuts[n++] = off;
            out = stream_with_cuts(s, body, len, cuts, n);
            assert_int_equal(buf_len(out), len);
            assert_memory_equal(buf_ptr(out), whole, len);
            buf_free(out);
        }
    }
    scrub_scan_width(0);
    free(body);
    free(whole);
    scrubber_free(s);
}

static void test_scrub_stream_is_ready_for_a_new_body_after_finish(void **state)
{
    struct scrubber *s = scrubber_for("key");
    struct scrub_stream *st;
    struct buf *out = buf_new(1024, 0);

    assert_int_equal(scrub_stream_new(s, &st), 0);
    assert_int_equal(scrub_stream_feed(st, (const uint8_t *)"a ke", 4, out), 0);
    assert_int_equal(buf_len(out), 2);
    assert_int_equal(scrub_stream_finish(st, out), 0);
    assert_int_equal(scrub_stream_feed(st, (const uint8_t *)"y key", 5, out), 0);
    assert_int_equal(scrub_stream_finish(st, out), 0);
    assert_int_equal(scrub_stream_finish(st, out), 0);
    assert_int_equal(buf_len(out), 9);
    assert_memory_equal(buf_ptr(out), "a key ***", 9);
    buf_free(out);
    scrub_stream_free(st);
    scrubber_free(s);
}

static void test_scrub_stream_reports_a_full_output_buffer(void **state)
{
    struct scrubber *s = scrubber_for("key");
    struct scrub_stream *st;
    struct buf *out = buf_new(4, 0);

    assert_int_equal(scrub_stream_new(s, &st), 0);
    assert_int_equal(scrub_stream_feed(st, (const uint8_t *)"0123456789", 10, out), ERR_TOO_LARGE);
    buf_free(out);
    scrub_stream_free(st);
    scrubber_free(s);
}

static void test_scrubber_new_rejects_empty_and_oversized_keys(void **state)
{
    struct scrubber *s = (struct scrubber *)1;
    uint8_t *big = calloc(1, SECRET_KEY_MAX + 1);

    assert_non_null(big);
    assert_int_equal(scrubber_new((const uint8_t *)"", 0, &s), ERR_KEY_EMPTY);
    assert_null(s);
    assert_int_equal(scrubber_new(big, SECRET_KEY_MAX + 1, &s), ERR_KEY_TOO_LONG);
    assert_null(s);
    memset(big, 'k', SECRET_KEY_MAX);
    assert_int_equal(scrubber_new(big, SECRET_KEY_MAX, &s), 0);
    assert_int_equal(scrubber_max_pattern(s), 3 * SECRET_KEY_MAX);
    scrubber_free(s);
    free(big);
}

static void test_scrub_masks_a_key_of_the_maximum_length_in_every_form(void **state)
{
    size_t klen = SECRET_KEY_MAX, len = 3 * klen + 2 * klen + 10;
    uint8_t *key = malloc(klen), *body = malloc(len);
    struct scrubber *s;
    struct buf *out;
    size_t off = 0;

    assert_non_null(key);
    assert_non_null(body);
    for (size_t i = 0; i < klen; i++)
        key[i] = (uint8_t)(i % 2 ? '%' : 'k');
    assert_int_equal(scrubber_new(key, klen, &s), 0);
    body[off++] = '<';
    for (size_t i = 0; i < klen; i++, off += 3)
        memcpy(body + off, key[i] == '%' ? "%25" : "%6B", 3);
    body[off++] = '>';
    memcpy(body + off, key, klen);
    off += klen;
    memset(body + off, '.', len - off);
    out = stream_by_chunks(s, body, len, 1000);
    /* The key repeats itself: in both forms every 'k' followed by at least
     * min_occurrence key bytes starts an occurrence (a prefix of the key). */
    assert_int_equal(scrubber_mask_all(s, body, len),
                     2 * ((klen - scrubber_min_occurrence(klen)) / 2 + 1));
    assert_memory_equal(buf_ptr(out), body, len);
    assert_int_equal(body[0], '<');
    assert_int_equal(body[1], '*');
    assert_int_equal(body[3 * klen], '*');
    assert_int_equal(body[3 * klen + 1], '>');
    assert_int_equal(body[3 * klen + 2 + klen - 1], '*');
    assert_int_equal(body[3 * klen + 2 + klen], '.');
    buf_free(out);
    scrubber_free(s);
    free(key);
    free(body);
}

/* An echo cut short: a prefix of the key of at least min_occurrence bytes is masked. */
static void test_scrub_masks_a_truncated_echo_of_the_key(void **state)
{
    const char *key = "0123456789abcdefghijklmnopqrstuv"; /* 32 bytes: min_occurrence 9 */
    struct scrubber *s = scrubber_for(key);
    size_t count;
    char *got;

    (void)state;
    assert_int_equal(scrubber_min_occurrence(strlen(key)), 9);
    got = mask_copy(s, "{\"message\":\"invalid app_key 0123456789abcdefghijklmnopqrstu\"}", &count);
    assert_string_equal(got, "{\"message\":\"invalid app_key *******************************\"}");
    assert_int_equal(count, 1);
    free(got);
    /* Exactly 9 bytes: masked; 8: left alone (what a key "hint" shows). */
    assert_masks_to(key, "k=012345678&", "k=*********&");
    assert_masks_to(key, "k=01234567&", "k=01234567&");
    /* Percent-encoded and at the very end of the data. */
    assert_masks_to(key, "x%30%31%32%33%3456789-", "x********************-");
    assert_masks_to(key, "tail 0123456789", "tail **********");
    scrubber_free(s);
}

/* A long key needs a quarter of itself: a vendor's fixed prefix is not masked alone. */
static void test_scrub_needs_a_quarter_of_a_long_key(void **state)
{
    char key[65], text[80], want[80];
    struct scrubber *s;

    (void)state;
    memcpy(key, "vendor_live_", 12);
    for (size_t i = 12; i < 64; i++)
        key[i] = (char)('a' + i % 26);
    key[64] = '\0';
    s = scrubber_for(key);
    assert_int_equal(scrubber_min_occurrence(64), 16);
    /* 15 bytes of it (the fixed prefix and 3 more): left alone. */
    snprintf(text, sizeof(text), "[%.15s]", key);
    assert_string_equal(mask_copy_static(s, text), text);
    /* 16 bytes: masked. */
    snprintf(text, sizeof(text), "[%.16s]", key);
    snprintf(want, sizeof(want), "[%s]", "****************");
    assert_string_equal(mask_copy_static(s, text), want);
    scrubber_free(s);
}

/* However the body is cut, a truncated echo is masked the same, held back until known. */
static void test_scrub_masks_a_truncated_echo_split_across_feeds(void **state)
{
    const char *key = "0123456789abcdefghijklmnopqrstuv";
    const char *body = "error: 0123456789abcdefghij; error again: 0123456789";
    const char *want = "error: ********************; error again: **********";
    struct scrubber *s = scrubber_for(key);
    size_t len = strlen(body);

    (void)state;
    for (size_t chunk = 1; chunk <= len; chunk++) {
        struct buf *out = stream_by_chunks(s, (const uint8_t *)body, len, chunk);

        assert_memory_equal(buf_ptr(out), want, len);
        buf_free(out);
    }
    scrubber_free(s);
}

/* Several keys: one scrubber made of them. */
static struct scrubber *scrubber_for_keys(const char *const *keys, size_t n)
{
    struct scrub_key k[SCRUB_KEYS_MAX];
    struct scrubber *s;

    for (size_t i = 0; i < n; i++) {
        k[i].data = (const uint8_t *)keys[i];
        k[i].len = strlen(keys[i]);
    }
    assert_int_equal(scrubber_new_keys(k, n, &s), 0);
    return s;
}

/* An invocation's routes: a response from one API must not echo another's key either. */
static void test_scrub_masks_every_key_of_a_set(void **state)
{
    const char *keys[] = {"flashduty-key-0123456789", "ghp_abcdefghijklmnopqrstuvwxyz",
                          "grafana token with spaces"};
    struct scrubber *s = scrubber_for_keys(keys, 3);
    const char *text = "a=flashduty-key-0123456789&b=ghp_abcdefghijklmnopqrstuvwxyz"
                       "&c=grafana+token+with+spaces&d=%67hp_abcdefghijklmnopqrstuvwxyz!";
    size_t count;
    char *got = mask_copy(s, text, &count);

    (void)state;
    assert_string_equal(got, "a=************************&b=******************************"
                             "&c=*************************&d=********************************!");
    assert_int_equal(count, 4);
    assert_int_equal(scrubber_max_pattern(s), 3 * strlen(keys[1]));
    free(got);
    scrubber_free(s);
}

/*
 * Keys that overlap in the data: every key is matched on the original bytes. Masking A
 * first and then looking for B would find only B's last 7 bytes, below its shortest
 * occurrence, and let them through; the union masks both whole, in either order.
 */
static void test_scrub_masks_overlapping_keys_as_their_union(void **state)
{
    const char *ab[] = {"abcdefghij", "hijklmnopq"}, *ba[] = {"hijklmnopq", "abcdefghij"};
    const char *text = "<abcdefghijklmnopq>", *want = "<*****************>";

    (void)state;
    for (int order = 0; order < 2; order++) {
        struct scrubber *s = scrubber_for_keys(order == 0 ? ab : ba, 2);
        size_t len = strlen(text), count;
        char *got = mask_copy(s, text, &count);

        assert_string_equal(got, want);
        assert_int_equal(count, 2);
        for (size_t a = 0; a <= len; a++) {
            size_t cuts[1] = {a};
            struct buf *out = stream_with_cuts(s, (const uint8_t *)text, len, cuts, 1);

            assert_memory_equal(buf_ptr(out), want, len);
            buf_free(out);
        }
        free(got);
        scrubber_free(s);
    }
    /* Two keys from one start: the longer one decides how far the mask goes. */
    {
        const char *keys[] = {"abcdefghij", "abcdefghijKLMNOP"};
        struct scrubber *s = scrubber_for_keys(keys, 2);
        size_t count;
        char *got = mask_copy(s, "<abcdefghijKLMNOP>", &count);

        assert_string_equal(got, "<****************>");
        assert_int_equal(count, 2);
        free(got);
        scrubber_free(s);
    }
}

/* A short key's verdict must not wait for, or be lost to, a long key's lookahead. */
static void test_scrub_streams_keys_of_different_lengths_at_every_split(void **state)
{
    char long_key[200];
    const char *keys[2] = {"shortkey9", long_key};
    char text[600], want[600];
    struct scrubber *s;
    size_t len;

    (void)state;
    for (size_t i = 0; i < sizeof(long_key) - 1; i++)
        long_key[i] = (char)('A' + i % 26);
    long_key[sizeof(long_key) - 1] = '\0';
    s = scrubber_for_keys(keys, 2);
    len = (size_t)snprintf(text, sizeof(text), "x shortkey9 y %%41%s z shortkey9", long_key + 1);
    memset(want, 0, sizeof(want));
    memcpy(want, text, len);
    memset(want + 2, '*', 9);
    memset(want + 14, '*', 3 + strlen(long_key) - 1);
    memset(want + len - 9, '*', 9);
    for (size_t a = 0; a <= len; a += 7) {
        for (size_t b = a; b <= len; b += 13) {
            size_t cuts[2] = {a, b};
            struct buf *out = stream_with_cuts(s, (const uint8_t *)text, len, cuts, 2);

            assert_memory_equal(buf_ptr(out), want, len);
            buf_free(out);
        }
    }
    scrubber_free(s);
}

static void test_scrubber_new_keys_rejects_no_keys_too_many_and_an_empty_one(void **state)
{
    struct scrub_key k[SCRUB_KEYS_MAX + 1];
    struct scrubber *s = (struct scrubber *)&s;

    (void)state;
    for (size_t i = 0; i <= SCRUB_KEYS_MAX; i++) {
        k[i].data = (const uint8_t *)"some-key-value";
        k[i].len = 14;
    }
    assert_int_equal(scrubber_new_keys(k, 0, &s), ERR_INVALID);
    assert_null(s);
    assert_int_equal(scrubber_new_keys(k, SCRUB_KEYS_MAX + 1, &s), ERR_INVALID);
    k[1].len = 0;
    assert_int_equal(scrubber_new_keys(k, 2, &s), ERR_KEY_EMPTY);
    k[1].len = 14;
    assert_int_equal(scrubber_new_keys(k, SCRUB_KEYS_MAX, &s), 0);
    assert_int_equal(secret_live_count() >= SCRUB_KEYS_MAX, 1);
    scrubber_free(s);
}

/* The key, raw and escaped, at every position of a 120-byte block, with each candidate
 * filter: 64 wide, one 64-wide block, then one of each smaller loop (32, 16, bytes); 32
 * wide, three 32-wide blocks; 16 wide, seven 16-wide blocks. The key is alone, or the
 * second of two (the wide filters' loop over the keys past the first). */
static void test_scrub_masks_a_key_at_every_position_with_each_filter(void **state)
{
    static const char *const forms[] = {"tok-0123456789", "tok%2D0123456789"};
    const struct scrub_key two[] = {{(const uint8_t *)"other-key-5555", 14},
                                    {(const uint8_t *)"tok-0123456789", 14}};
    char body[120], want[120];

    (void)state;
    for (size_t nkeys = 1; nkeys <= 2; nkeys++) {
        struct scrubber *s;

        assert_int_equal(scrubber_new_keys(two + 2 - nkeys, nkeys, &s), 0);
        for (size_t width = 16; width <= 64; width *= 2) {
            scrub_scan_width(width);
            for (size_t f = 0; f < 2; f++) {
                size_t klen = strlen(forms[f]);

                for (size_t at = 0; at + klen <= sizeof(body); at++) {
                    memset(body, '.', sizeof(body));
                    memset(want, '.', sizeof(want));
                    memcpy(body + at, forms[f], klen);
                    memset(want + at, '*', klen);
                    assert_int_equal(scrubber_mask_all(s, (uint8_t *)body, sizeof(body)), 1);
                    assert_memory_equal(body, want, sizeof(body));
                }
            }
        }
        scrub_scan_width(0);
        scrubber_free(s);
    }
}

static void test_scrub_free_functions_accept_null(void **state)
{
    scrubber_free(NULL);
    scrub_stream_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scrub_masks_the_raw_key_with_the_same_length),
        cmocka_unit_test(test_scrub_masks_upper_and_lower_case_percent_encodings),
        cmocka_unit_test(test_scrub_masks_a_non_ascii_first_byte_escaped_in_either_case),
        cmocka_unit_test(test_scrub_masks_mixed_encodings),
        cmocka_unit_test(test_scrub_leaves_text_without_the_key_byte_identical),
        cmocka_unit_test(test_scrub_masks_a_key_at_the_very_start_and_end),
        cmocka_unit_test(test_scrub_masks_adjacent_and_overlapping_occurrences),
        cmocka_unit_test(test_scrub_masks_the_key_split_across_every_chunk_boundary),
        cmocka_unit_test(test_scrub_handles_a_key_with_a_percent_both_ways),
        cmocka_unit_test(test_scrub_masks_header_values_in_place),
        cmocka_unit_test(test_scrub_agrees_with_a_brute_force_reference),
        cmocka_unit_test(test_scrub_streams_a_long_random_body_like_mask_all),
        cmocka_unit_test(test_scrub_stream_is_ready_for_a_new_body_after_finish),
        cmocka_unit_test(test_scrub_stream_reports_a_full_output_buffer),
        cmocka_unit_test(test_scrubber_new_rejects_empty_and_oversized_keys),
        cmocka_unit_test(test_scrub_masks_a_key_of_the_maximum_length_in_every_form),
        cmocka_unit_test(test_scrub_masks_a_truncated_echo_of_the_key),
        cmocka_unit_test(test_scrub_needs_a_quarter_of_a_long_key),
        cmocka_unit_test(test_scrub_masks_a_truncated_echo_split_across_feeds),
        cmocka_unit_test(test_scrub_masks_every_key_of_a_set),
        cmocka_unit_test(test_scrub_masks_overlapping_keys_as_their_union),
        cmocka_unit_test(test_scrub_streams_keys_of_different_lengths_at_every_split),
        cmocka_unit_test(test_scrubber_new_keys_rejects_no_keys_too_many_and_an_empty_one),
        cmocka_unit_test(test_scrub_masks_a_key_at_every_position_with_each_filter),
        cmocka_unit_test(test_scrub_streams_a_long_key_sparse_body_in_every_piece_size),
        cmocka_unit_test(test_scrub_free_functions_accept_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
