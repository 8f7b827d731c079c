/*
 * fuzz_rgjson.c - grep_rgjson_match (grep_rgjson.h): a line of `rg --json` output, which
 * carries names and lines of files anyone may have written.
 *
 * Input: byte 0 chooses the mode; the rest is the material.
 *   - even: the material is the line as rg might write it (any bytes). Nothing crashes or
 *     leaks; a match has a line number from 1, NUL-terminated copies of its path and line,
 *     and is a "match" event.
 *   - odd: the material is cut into a path, a line and a line number, and written as rg
 *     writes a match event: each as "text" when it is valid UTF-8, else as base64 "bytes";
 *     the line with its "\n". The parse gives back exactly those bytes and that number;
 *     the same event with type "begin" gives nothing.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base64.h"
#include "err.h"
#include "fuzz.h"
#include "grep_rgjson.h"
#include "utf8.h"

static bool valid_utf8(const uint8_t *p, size_t n)
{
    uint32_t c;

    for (size_t i = 0, k; i < n; i += k) {
        if ((k = utf8_decode(p + i, n - i, &c)) == 0)
            return false;
    }
    return true;
}

/* rg's {"text": s} or {"bytes": base64(s)}. */
static json_t *rg_data(const uint8_t *p, size_t n)
{
    json_t *o = json_object();
    char *b64;

    FUZZ_CHECK(o != NULL, "json_object");
    if (valid_utf8(p, n)) {
        json_object_set_new(o, "text", json_stringn((const char *)p, n));
        return o;
    }
    b64 = fuzz_malloc(BASE64_ENCODED_LEN(n) + 1);
    json_object_set_new(o, "bytes", json_stringn(b64, base64_encode(p, n, b64)));
    free(b64);
    return o;
}

static void check_model(const uint8_t *data, size_t size)
{
    size_t cut = size > 0 ? data[0] % (size + 1) : 0, plen, llen;
    const uint8_t *path = data, *line;
    uint64_t number = 1 + (size > 1 ? data[1] : 0) * 1000003ull;
    uint8_t *line_nl;
    json_t *ev, *d;
    char *text;
    struct grep_rgjson_match m;

    plen = cut;
    line = data + cut;
    llen = size - cut;
    line_nl = fuzz_malloc(llen + 1);
    memcpy(line_nl, line, llen);
    line_nl[llen] = '\n';
    ev = json_object();
    d = json_object();
    FUZZ_CHECK(ev != NULL && d != NULL, "json_object");
    json_object_set_new(ev, "type", json_string("match"));
    json_object_set_new(d, "path", rg_data(path, plen));
    json_object_set_new(d, "lines", rg_data(line_nl, llen + 1));
    json_object_set_new(d, "line_number", json_integer((json_int_t)number));
    json_object_set_new(ev, "data", d);
    text = json_dumps(ev, JSON_COMPACT);
    FUZZ_CHECK(text != NULL, "json_dumps");
    FUZZ_CHECK(grep_rgjson_match(text, strlen(text), &m) == 1, "a match event not read");
    FUZZ_CHECK(m.path_len == plen && memcmp(m.path, path, plen) == 0 && m.path[plen] == '\0',
               "path differs (%zu bytes, want %zu)", m.path_len, plen);
    FUZZ_CHECK(m.line_len == llen && memcmp(m.line, line, llen) == 0 && m.line[llen] == '\0',
               "line differs (%zu bytes, want %zu)", m.line_len, llen);
    FUZZ_CHECK(m.line_number == number, "line number %llu, want %llu",
               (unsigned long long)m.line_number, (unsigned long long)number);
    grep_rgjson_match_free(&m);
    free(text);
    json_object_set_new(ev, "type", json_string("begin"));
    text = json_dumps(ev, JSON_COMPACT);
    FUZZ_CHECK(text != NULL && grep_rgjson_match(text, strlen(text), &m) == 0,
               "a begin event read as a match");
    free(text);
    json_decref(ev);
    free(line_nl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct grep_rgjson_match m;
    int r;

    if (size == 0)
        return 0;
    if (data[0] & 1) {
        check_model(data + 1, size - 1);
        return 0;
    }
    r = grep_rgjson_match((const char *)data + 1, size - 1, &m);
    FUZZ_CHECK(r == 0 || r == 1 || r == ERR_NOMEM, "returned %d", r);
    if (r == 1) {
        FUZZ_CHECK(m.line_number >= 1, "line number 0");
        FUZZ_CHECK(m.path != NULL && m.path[m.path_len] == '\0' && m.line != NULL &&
                   m.line[m.line_len] == '\0', "copies not terminated");
        FUZZ_CHECK(fuzz_contains((const char *)data + 1, size - 1, "match", 5),
                   "a match without \"match\" in it");
    } else {
        FUZZ_CHECK(m.path == NULL && m.line == NULL, "a non-match kept its copies");
    }
    grep_rgjson_match_free(&m);
    return 0;
}
