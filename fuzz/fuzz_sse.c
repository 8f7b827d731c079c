/*
 * fuzz_sse.c - the Server-Sent Events parser (sse.h), against this file's own
 * whole-stream reading of the WHATWG event stream interpretation.
 *
 * Input: the stream bytes, as they are. The limit (max_event_bytes: 3 to 66, or 4096)
 * and the split points come from a generator seeded by the input (fuzz.h).
 *
 * Properties: never crashes; the events (type, data, last id, in order), the outcome
 * (0 or ERR_TOO_LARGE), the retry and the last event id are those of a reference that
 * reads the whole stream as a list of lines, and the same whether the stream is fed
 * whole, byte by byte, or split at the chosen points; every event's data and type
 * are at most max bytes, NUL-terminated, and its last id has no NUL; the parser never
 * holds more than 5 * (max + 1) bytes; a callback's non-zero return comes back from
 * sse_parser_feed after exactly that many events and again on every later feed.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fuzz.h"
#include "sse.h"

/* A growable byte string: events serialized as (len, bytes) triples. */
struct rec {
    uint8_t *p;
    size_t len, cap;
};

static void rec_put(struct rec *r, const void *s, size_t n)
{
    if (r->len + n > r->cap) {
        size_t cap = r->cap < 256 ? 256 : r->cap;
        uint8_t *np;

        while (cap < r->len + n)
            cap *= 2;
        np = realloc(r->p, cap);
        FUZZ_CHECK(np != NULL, "out of memory");
        r->p = np;
        r->cap = cap;
    }
    if (n > 0)
        memcpy(r->p + r->len, s, n);
    r->len += n;
}

static void rec_field(struct rec *r, const void *s, size_t n)
{
    rec_put(r, &n, sizeof(n));
    rec_put(r, s, n);
}

static void rec_event(struct rec *r, const void *type, size_t tlen, const void *data, size_t dlen,
                      const void *id, size_t idlen)
{
    rec_field(r, type, tlen);
    rec_field(r, data, dlen);
    rec_field(r, id, idlen);
}

/* The reference: the standard's steps over the whole input, one line at a time. */
struct ref {
    struct rec events;
    size_t nevents;
    int outcome;
    long retry;
    uint8_t *data, *type, *id_buf, *id;
    size_t data_len, type_len, id_buf_len, id_len;
};

static bool eq(const uint8_t *a, size_t alen, const char *lit)
{
    return alen == strlen(lit) && memcmp(a, lit, alen) == 0;
}

static void ref_retry(struct ref *f, const uint8_t *v, size_t n)
{
    unsigned long long x = 0;

    if (n == 0)
        return;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(v[i] - '0');

        if (v[i] < '0' || v[i] > '9' || x > ((unsigned long long)LONG_MAX - d) / 10)
            return;
        x = x * 10 + d;
    }
    f->retry = (long)x;
}

/* One line: 0 or ERR_TOO_LARGE. */
static int ref_line(struct ref *f, const uint8_t *l, size_t n, size_t max)
{
    const uint8_t *colon, *v;
    size_t name, vn;

    if (n == 0) {
        memcpy(f->id, f->id_buf, f->id_buf_len);
        f->id_len = f->id_buf_len;
        if (f->data_len > 0) {
            if (f->type_len == 0)
                rec_event(&f->events, "message", 7, f->data, f->data_len - 1, f->id, f->id_len);
            else
                rec_event(&f->events, f->type, f->type_len, f->data, f->data_len - 1, f->id,
                          f->id_len);
            f->nevents++;
        }
        f->data_len = 0;
        f->type_len = 0;
        return 0;
    }
    if (l[0] == ':')
        return 0;
    colon = memchr(l, ':', n);
    name = colon != NULL ? (size_t)(colon - l) : n;
    v = colon != NULL ? colon + 1 : l + n;
    vn = colon != NULL ? n - name - 1 : 0;
    if (vn > 0 && v[0] == ' ') {
        v++;
        vn--;
    }
    if (eq(l, name, "data")) {
        if (f->data_len + vn + 1 > max + 1)
            return ERR_TOO_LARGE;
        memcpy(f->data + f->data_len, v, vn);
        f->data_len += vn;
        f->data[f->data_len++] = '\n';
    } else if (eq(l, name, "event")) {
        memcpy(f->type, v, vn);
        f->type_len = vn;
    } else if (eq(l, name, "id")) {
        if (memchr(v, '\0', vn) == NULL) {
            memcpy(f->id_buf, v, vn);
            f->id_buf_len = vn;
        }
    } else if (eq(l, name, "retry")) {
        ref_retry(f, v, vn);
    }
    return 0;
}

static void ref_run(struct ref *f, const uint8_t *s, size_t n, size_t max)
{
    size_t i = 0, start;

    memset(f, 0, sizeof(*f));
    f->retry = -1;
    f->data = fuzz_malloc(max + 1);
    f->type = fuzz_malloc(max);
    f->id_buf = fuzz_malloc(max);
    f->id = fuzz_malloc(max);
    if (n >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF)
        i = 3;
    for (start = i; i < n; i++) {
        if (s[i] != '\r' && s[i] != '\n')
            continue;
        if (i - start > max || (f->outcome = ref_line(f, s + start, i - start, max)) != 0) {
            f->outcome = ERR_TOO_LARGE;
            return;
        }
        if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
            i++;
        start = i + 1;
    }
    /* An unfinished last line is held, not read: only its length counts. */
    if (n - start > max)
        f->outcome = ERR_TOO_LARGE;
}

static void ref_free(struct ref *f)
{
    free(f->events.p);
    free(f->data);
    free(f->type);
    free(f->id_buf);
    free(f->id);
}

struct run {
    struct rec events;
    size_t nevents;
    size_t max;
    size_t stop_after; /* 0: never stop */
};

static int record_cb(const struct sse_event *ev, void *data)
{
    struct run *r = data;

    FUZZ_CHECK(ev->data_len <= r->max, "data of %zu bytes over %zu", ev->data_len, r->max);
    /* the default "message" is the one type that did not come from a line */
    FUZZ_CHECK(ev->type_len <= r->max || (ev->type_len == 7 && memcmp(ev->type, "message", 7) == 0),
               "type of %zu bytes", ev->type_len);
    FUZZ_CHECK(ev->data[ev->data_len] == '\0' && ev->type[ev->type_len] == '\0',
               "not NUL-terminated");
    FUZZ_CHECK(strlen(ev->last_id) <= r->max, "id too long");
    rec_event(&r->events, ev->type, ev->type_len, ev->data, ev->data_len, ev->last_id,
              strlen(ev->last_id));
    r->nevents++;
    return r->stop_after != 0 && r->nevents == r->stop_after ? 99 : 0;
}

/* Feeds s in the pieces cuts gives (ncuts 0: whole; SIZE_MAX: byte by byte); checks the
 * outcome against f and the bound on held bytes; returns the events in r. */
static void run_split(const struct ref *f, const uint8_t *s, size_t n, size_t max,
                      const size_t *cuts, size_t ncuts, struct run *r)
{
    struct sse_parser *p;
    size_t at = 0, k = 0;
    int rc = 0;

    memset(r, 0, sizeof(*r));
    r->max = max;
    p = sse_parser_new(max, record_cb, r);
    FUZZ_CHECK(p != NULL, "sse_parser_new");
    while (at < n && rc == 0) {
        size_t end = ncuts == SIZE_MAX ? at + 1 : k < ncuts ? cuts[k++] : n;
        uint8_t *piece = fuzz_dup(s + at, end - at);

        rc = sse_parser_feed(p, (const char *)piece, end - at);
        free(piece);
        FUZZ_CHECK(sse_parser_buffered(p) <= 5 * (max + 1), "holds %zu bytes, max %zu",
                   sse_parser_buffered(p), max);
        at = end;
    }
    FUZZ_CHECK(rc == f->outcome, "outcome %d, the reference %d", rc, f->outcome);
    if (rc == 0) {
        FUZZ_CHECK(sse_parser_retry_ms(p) == f->retry, "retry %ld, the reference %ld",
                   sse_parser_retry_ms(p), f->retry);
        FUZZ_CHECK(strlen(sse_parser_last_event_id(p)) == f->id_len &&
                       memcmp(sse_parser_last_event_id(p), f->id, f->id_len) == 0,
                   "last event id differs");
    } else {
        FUZZ_CHECK(sse_parser_feed(p, "\n\n", 2) == rc, "an error that did not stick");
    }
    sse_parser_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_rng rng;
    struct ref f;
    struct run r;
    size_t cuts[16], ncuts, max;
    struct sse_parser *p;
    int rc;

    fuzz_rng_seed(&rng, data, size);
    max = fuzz_rng_below(&rng, 4) == 0 ? 4096 : 3 + fuzz_rng_below(&rng, 64);
    ref_run(&f, data, size, max);

    run_split(&f, data, size, max, NULL, 0, &r);
    FUZZ_CHECK(r.nevents == f.nevents && r.events.len == f.events.len &&
                   (r.events.len == 0 || memcmp(r.events.p, f.events.p, r.events.len) == 0),
               "whole: %zu events, the reference %zu", r.nevents, f.nevents);
    free(r.events.p);

    run_split(&f, data, size, max, NULL, SIZE_MAX, &r);
    FUZZ_CHECK(r.nevents == f.nevents && r.events.len == f.events.len &&
                   (r.events.len == 0 || memcmp(r.events.p, f.events.p, r.events.len) == 0),
               "byte by byte: %zu events, the reference %zu", r.nevents, f.nevents);
    free(r.events.p);

    ncuts = fuzz_pick_cuts(&rng, size, cuts, sizeof(cuts) / sizeof(cuts[0]));
    run_split(&f, data, size, max, cuts, ncuts, &r);
    FUZZ_CHECK(r.nevents == f.nevents && r.events.len == f.events.len &&
                   (r.events.len == 0 || memcmp(r.events.p, f.events.p, r.events.len) == 0),
               "in %zu pieces: %zu events, the reference %zu", ncuts + 1, r.nevents, f.nevents);
    free(r.events.p);

    /* A callback that stops at event k: feed returns its value at once, and after. */
    if (f.nevents > 0) {
        memset(&r, 0, sizeof(r));
        r.max = max;
        r.stop_after = 1 + fuzz_rng_below(&rng, f.nevents);
        p = sse_parser_new(max, record_cb, &r);
        FUZZ_CHECK(p != NULL, "sse_parser_new");
        rc = sse_parser_feed(p, (const char *)data, size);
        FUZZ_CHECK(rc == 99 && r.nevents == r.stop_after, "stop: %d after %zu events", rc,
                   r.nevents);
        FUZZ_CHECK(sse_parser_feed(p, "data\n\n", 6) == 99 && r.nevents == r.stop_after,
                   "fed after a stop");
        sse_parser_free(p);
        free(r.events.p);
    }
    ref_free(&f);
    return 0;
}
