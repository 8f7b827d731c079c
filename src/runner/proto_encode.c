/*
 * proto_encode.c - the messages the runner sends the platform. See proto.h.
 *
 * Encoding builds a jansson tree and writes it out with a two-pass compact writer;
 * command output is made valid UTF-8 first, since JSON strings must be UTF-8, and a
 * result too large for one message is cut where a marker says so.
 * Decoding, the messages the runner receives, is proto.c's.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <jansson.h>

#include "err.h"
#include "proto.h"

/* U+FFFD REPLACEMENT CHARACTER in UTF-8. */
static const uint8_t replacement[3] = {0xEF, 0xBF, 0xBD};

/*
 * Length of the sequence at p (n > 0 bytes left). A well-formed sequence sets *ok;
 * otherwise the length is that of the maximal ill-formed subpart (>= 1), each byte of
 * which the callers replace by one U+FFFD, as Go's encoder does (RUNNER-OPS.md 2.6). The
 * byte ranges are Table 3-7 of the Unicode Standard, which rules out
 * overlong forms (C0, C1, E0 80..9F, F0 80..8F), surrogates (ED A0..BF) and code points
 * over U+10FFFF (F4 90.., F5..FF).
 */
static size_t utf8_seq(const uint8_t *p, size_t n, bool *ok)
{
    uint8_t b = p[0], lo = 0x80, hi = 0xBF;
    size_t need, i;

    *ok = false;
    if (b < 0x80) {
        *ok = true;
        return 1;
    }
    if (b >= 0xC2 && b <= 0xDF) {
        need = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
        need = 2;
        if (b == 0xE0)
            lo = 0xA0;
        else if (b == 0xED)
            hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 3;
        if (b == 0xF0)
            lo = 0x90;
        else if (b == 0xF4)
            hi = 0x8F;
    } else {
        return 1;
    }
    for (i = 1; i <= need; i++) {
        if (i >= n || p[i] < lo || p[i] > hi)
            return i;
        lo = 0x80;
        hi = 0xBF;
    }
    *ok = true;
    return need + 1;
}

/* Returns the sanitized length of p[0..len) and counts ill-formed subparts in *bad.
 * The caller has checked that 3 * len cannot overflow. */
static size_t utf8_scan(const uint8_t *p, size_t len, size_t *bad)
{
    size_t i = 0, out = 0, n;
    bool ok;

    *bad = 0;
    while (i < len) {
        if (p[i] < 0x80) { /* the common case, kept cheap */
            i++;
            out++;
            continue;
        }
        n = utf8_seq(p + i, len - i, &ok);
        if (ok) {
            out += n;
            i += n;
        } else {
            out += sizeof(replacement);
            (*bad)++;
            i++;
        }
    }
    return out;
}

/* Writes the sanitized form of p[0..len) to dst (room for utf8_scan()'s length). */
static void utf8_fill(const uint8_t *p, size_t len, uint8_t *dst)
{
    size_t i = 0, n;
    bool ok;

    while (i < len) {
        n = utf8_seq(p + i, len - i, &ok);
        if (ok) {
            memcpy(dst, p + i, n);
            dst += n;
            i += n;
        } else {
            memcpy(dst, replacement, sizeof(replacement));
            dst += sizeof(replacement);
            i++;
        }
    }
}

char *proto_utf8_sanitize(const uint8_t *data, size_t len, size_t *out_len)
{
    size_t n, bad;
    char *s;

    if (out_len != NULL)
        *out_len = 0;
    if (len > (SIZE_MAX - 1) / sizeof(replacement))
        return NULL;
    n = len > 0 ? utf8_scan(data, len, &bad) : 0;
    if ((s = malloc(n + 1)) == NULL)
        return NULL;
    if (len > 0 && bad == 0)
        memcpy(s, data, len);
    else if (len > 0)
        utf8_fill(data, len, (uint8_t *)s);
    s[n] = '\0';
    if (out_len != NULL)
        *out_len = n;
    return s;
}

/*
 * The compact writer. jansson's json_dumps() goes through a callback per run of
 * characters and a doubling buffer; on 10 MiB of command output that is most of the
 * encoding time. This writer makes two passes over the tree instead: one to count (p ==
 * NULL), one to fill a single exact allocation. Its output matches json_dumps(v,
 * JSON_COMPACT) byte for byte, except that it cannot fail on invalid UTF-8 in a string
 * (json_stringn_nocheck lets that in): each byte of an ill-formed subpart becomes U+FFFD.
 */
struct wr {
    char *p; /* NULL while counting */
    size_t len;
};

static void wr_put(struct wr *w, const void *data, size_t n)
{
    if (w->p != NULL && n > 0)
        memcpy(w->p + w->len, data, n);
    w->len += n;
}

/* RFC 8259 section 7: '"', '\\' and the controls below 0x20 must be escaped. */
static void wr_string(struct wr *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF"; /* as jansson writes it */
    const uint8_t *u = (const uint8_t *)s;
    size_t i = 0, start = 0, k;
    char esc[6] = {'\\', 'u', '0', '0', 0, 0};
    bool ok;

    wr_put(w, "\"", 1);
    while (i < n) {
        if (u[i] >= 0x20 && u[i] != '"' && u[i] != '\\' && u[i] < 0x80) {
            i++;
            continue;
        }
        if (u[i] >= 0x80) {
            k = utf8_seq(u + i, n - i, &ok);
            if (ok) {
                i += k;
                continue;
            }
            wr_put(w, u + start, i - start);
            wr_put(w, replacement, sizeof(replacement));
            i += k;
            start = i;
            continue;
        }
        wr_put(w, u + start, i - start);
        switch (u[i]) {
        case '"':
            wr_put(w, "\\\"", 2);
            break;
        case '\\':
            wr_put(w, "\\\\", 2);
            break;
        case '\b':
            wr_put(w, "\\b", 2);
            break;
        case '\f':
            wr_put(w, "\\f", 2);
            break;
        case '\n':
            wr_put(w, "\\n", 2);
            break;
        case '\r':
            wr_put(w, "\\r", 2);
            break;
        case '\t':
            wr_put(w, "\\t", 2);
            break;
        default:
            esc[4] = hex[u[i] >> 4];
            esc[5] = hex[u[i] & 0xf];
            wr_put(w, esc, sizeof(esc));
            break;
        }
        i++;
        start = i;
    }
    wr_put(w, u + start, n - start);
    wr_put(w, "\"", 1);
}

/* Writes v compactly. Returns 0, or -1 if a number could not be formatted. */
static int wr_value(struct wr *w, const json_t *v)
{
    /* jansson's read-only accessors take non-const pointers; nothing is modified. */
    json_t *m = (json_t *)v;
    char num[64];
    bool first = true;
    void *it;
    size_t i;
    int n;

    switch (json_typeof(v)) {
    case JSON_OBJECT:
        wr_put(w, "{", 1);
        for (it = json_object_iter(m); it != NULL; it = json_object_iter_next(m, it)) {
            if (!first)
                wr_put(w, ",", 1);
            first = false;
            wr_string(w, json_object_iter_key(it), json_object_iter_key_len(it));
            wr_put(w, ":", 1);
            if (wr_value(w, json_object_iter_value(it)) != 0)
                return -1;
        }
        wr_put(w, "}", 1);
        return 0;
    case JSON_ARRAY:
        wr_put(w, "[", 1);
        for (i = 0; i < json_array_size(v); i++) {
            if (i > 0)
                wr_put(w, ",", 1);
            if (wr_value(w, json_array_get(v, i)) != 0)
                return -1;
        }
        wr_put(w, "]", 1);
        return 0;
    case JSON_STRING:
        wr_string(w, json_string_value(v), json_string_length(v));
        return 0;
    case JSON_INTEGER:
        n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        if (n < 0 || (size_t)n >= sizeof(num))
            return -1;
        wr_put(w, num, (size_t)n);
        return 0;
    case JSON_REAL: {
        /* Rare here; jansson knows how to print a double that reads back the same. */
        char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);

        if (t == NULL)
            return -1;
        wr_put(w, t, strlen(t));
        free(t);
        return 0;
    }
    case JSON_TRUE:
        wr_put(w, "true", 4);
        return 0;
    case JSON_FALSE:
        wr_put(w, "false", 5);
        return 0;
    default:
        wr_put(w, "null", 4);
        return 0;
    }
}

/* Returns v as malloc'd, NUL-terminated compact JSON text, or NULL. */
static char *dump_compact(const json_t *v)
{
    struct wr w = {NULL, 0};
    char *text;

    if (wr_value(&w, v) != 0 || w.len == SIZE_MAX || (text = malloc(w.len + 1)) == NULL)
        return NULL;
    w.p = text;
    w.len = 0;
    if (wr_value(&w, v) != 0) {
        free(text);
        return NULL;
    }
    text[w.len] = '\0';
    return text;
}

/* A new JSON string holding the sanitized bytes, or NULL. Valid input (the usual case)
 * goes to jansson without an intermediate copy. */
json_t *proto_json_bytes(const uint8_t *p, size_t len)
{
    size_t n, bad;
    uint8_t *s;
    json_t *v;

    if (len == 0)
        return json_string("");
    if (len > (SIZE_MAX - 1) / sizeof(replacement))
        return NULL;
    n = utf8_scan(p, len, &bad);
    if (bad == 0)
        return json_stringn_nocheck((const char *)p, len);
    if ((s = malloc(n)) == NULL)
        return NULL;
    utf8_fill(p, len, s);
    v = json_stringn_nocheck((const char *)s, n);
    free(s);
    return v;
}

size_t proto_json_string_bound(const uint8_t *p, size_t len)
{
    size_t n = 2;

    for (size_t i = 0; i < len; i++) {
        if (p[i] < 0x20)
            n += 6; /* \u00XX at worst */
        else if (p[i] == '"' || p[i] == '\\')
            n += 2;
        else if (p[i] >= 0x80)
            n += 3; /* an invalid byte becomes U+FFFD's three */
        else
            n += 1;
    }
    return n;
}

/* A new JSON string for a C string: "" for NULL, sanitized if not UTF-8. */
static json_t *string_value(const char *s)
{
    return proto_json_bytes((const uint8_t *)(s != NULL ? s : ""), s != NULL ? strlen(s) : 0);
}

/* A new reference to a borrowed object, or a new empty object for NULL. */
static json_t *borrowed_object(const json_t *v)
{
    /* The reference count is bookkeeping, not content: the caller's value is unchanged. */
    return v != NULL ? json_incref((json_t *)v) : json_object();
}

/* Sets obj[key] = v, stealing v (also on failure, and v may be NULL). Returns 0 or -1. */
static int put(json_t *obj, const char *key, json_t *v)
{
    if (obj == NULL || v == NULL) {
        json_decref(v);
        return -1;
    }
    return json_object_set_new(obj, key, v) == 0 ? 0 : -1;
}

int proto_random_id(char id[PROTO_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t raw[PROTO_ID_LEN / 2];
    size_t got = 0, i;
    ssize_t n;

    while (got < sizeof(raw)) {
        n = getrandom(raw + got, sizeof(raw) - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        got += (size_t)n;
    }
    for (i = 0; i < sizeof(raw); i++) {
        id[2 * i] = hex[raw[i] >> 4];
        id[2 * i + 1] = hex[raw[i] & 0xf];
    }
    id[2 * sizeof(raw)] = '\0';
    return 0;
}

static json_int_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wraps payload (stolen; may be NULL) in the envelope and dumps it. */
static char *encode_message(const char *type, json_t *payload)
{
    char id[PROTO_ID_LEN + 1];
    json_t *msg = NULL;
    char *text = NULL;

    if (payload == NULL || proto_random_id(id) != 0)
        goto out;
    if ((msg = json_object()) == NULL || put(msg, "id", json_string(id)) != 0 ||
        put(msg, "type", json_string(type)) != 0)
        goto out;
    if (put(msg, "payload", payload) != 0) {
        payload = NULL; /* consumed by put() */
        goto out;
    }
    payload = NULL; /* transferred */
    if (put(msg, "timestamp", json_integer(now_ms())) != 0)
        goto out;
    text = dump_compact(msg);
out:
    json_decref(payload);
    json_decref(msg);
    return text;
}

char *proto_encode_heartbeat(const struct proto_heartbeat *hb)
{
    json_t *p;

    assert(hb != NULL);
    p = json_object();
    if (put(p, "worknode_id", string_value(hb->worknode_id)) != 0 ||
        put(p, "name", string_value(hb->name)) != 0 ||
        put(p, "labels", borrowed_object(hb->labels)) != 0 ||
        put(p, "version", string_value(hb->version)) != 0 ||
        put(p, "environment", borrowed_object(hb->environment)) != 0) {
        json_decref(p);
        return NULL;
    }
    return encode_message("heartbeat", p);
}

char *proto_encode_task_output(const char *task_id, const char *stream, const uint8_t *data,
                               size_t len)
{
    json_t *p = json_object();

    if (put(p, "task_id", string_value(task_id)) != 0 ||
        put(p, "stream", string_value(stream)) != 0 ||
        put(p, "data", proto_json_bytes(data, len)) != 0) {
        json_decref(p);
        return NULL;
    }
    return encode_message("task.output", p);
}

char *proto_encode_task_result(const struct proto_task_result *r)
{
    json_t *p;

    assert(r != NULL);
    p = json_object();
    if (put(p, "task_id", string_value(r->task_id)) != 0 ||
        put(p, "source_instance_id", string_value(r->source_instance_id)) != 0 ||
        put(p, "success", json_boolean(r->success)) != 0 ||
        put(p, "result", r->result != NULL ? json_incref((json_t *)r->result) : json_null()) != 0 ||
        put(p, "error", string_value(r->error)) != 0 ||
        put(p, "exit_code", json_integer(r->exit_code)) != 0) {
        json_decref(p);
        return NULL;
    }
    return encode_message("task.result", p);
}

char *proto_encode_mcp_result(const char *call_id, bool success, const json_t *result,
                              const char *error)
{
    json_t *p = json_object();

    if (put(p, "call_id", string_value(call_id)) != 0 ||
        put(p, "success", json_boolean(success)) != 0 ||
        (result != NULL && put(p, "result", json_incref((json_t *)result)) != 0) ||
        (error != NULL && error[0] != '\0' && put(p, "error", string_value(error)) != 0)) {
        json_decref(p);
        return NULL;
    }
    return encode_message("mcp.result", p);
}

/* How many of p[0..len) fit in budget bytes of JSON string (proto_json_string_bound). */
static size_t fit_in_json(const uint8_t *p, size_t len, size_t budget)
{
    size_t used = 2, i;

    for (i = 0; i < len; i++) {
        size_t one = proto_json_string_bound(p + i, 1) - 2;

        if (used + one > budget)
            break;
        used += one;
    }
    return i;
}

/* data cut to what fits in budget, with marker after the cut; NULL on allocation failure. */
static json_t *cut_value(const uint8_t *data, size_t len, size_t budget, const char *marker,
                         bool *cut)
{
    size_t mlen = strlen(marker), keep;
    uint8_t *tmp;
    json_t *v;

    if (proto_json_string_bound(data, len) <= budget)
        return proto_json_bytes(data, len);
    *cut = true;
    keep = budget > mlen + 2 ? fit_in_json(data, len, budget - mlen) : 0;
    if ((tmp = malloc(keep + mlen)) == NULL)
        return NULL;
    memcpy(tmp, data, keep);
    memcpy(tmp + keep, marker, mlen);
    v = proto_json_bytes(tmp, keep + mlen);
    free(tmp);
    return v;
}

json_t *proto_bash_result(const struct proto_bash_output *b)
{
    /* The members' names, the exit code and the flags, beside the strings. */
    size_t budget = b->max_bytes > 256 ? b->max_bytes - 256 : 0, out_bound;
    bool cut = false;
    json_t *o = json_object(), *out, *err;

    if (b->file_path != NULL)
        budget -= budget > strlen(b->file_path) * 6 ? strlen(b->file_path) * 6 : budget;
    /* Section 4 keeps stdout small, except where the skip rule let it through whole. */
    out = cut_value(b->out, b->out_len, budget, "\n... [stdout truncated]", &cut);
    out_bound = out != NULL ? proto_json_string_bound((const uint8_t *)json_string_value(out),
                                                      json_string_length(out)) : 0;
    /* The message ceiling (RUNNER-OPS.md 2.7): stderr is cut at the end. */
    err = cut_value(b->err, b->err_len, budget > out_bound ? budget - out_bound : 0,
                    "\n... [stderr truncated]", &cut);
    if (put(o, "stdout", out) != 0 || put(o, "stderr", err) != 0 ||
        put(o, "exit_code", json_integer(b->exit_code)) != 0 ||
        put(o, "stdout_truncated", json_boolean(b->out_capped)) != 0 ||
        put(o, "stderr_truncated", json_boolean(b->err_capped)) != 0 ||
        ((b->truncated || cut) && put(o, "truncated", json_true()) != 0) ||
        (b->file_path != NULL && put(o, "file_path", string_value(b->file_path)) != 0) ||
        (b->total_size > 0 && put(o, "total_size", json_integer(b->total_size)) != 0)) {
        json_decref(o);
        return NULL;
    }
    return o;
}
