/*
 * fuzz_connect_head.c - net_proxy_parse_head (netproxy.h): a proxy's answer to CONNECT,
 * read before the tunnel carries anything else.
 *
 * Input: the bytes the proxy sends (its answer head, maybe the tunnel's first bytes).
 *
 * Properties: the outcome, the status, the status line's length and the head's length
 * are exactly what a reference reading of RFC 9112 4 and 5 here says (written again,
 * with fuzz.h's byte classes): "HTTP/" checked as soon as it can be; the head ends at
 * the first CRLF CRLF, which must lie within NET_PROXY_HEAD_MAX bytes; "HTTP/1.x NNN"
 * with a first digit 1-9 and an optional " reason" of HTAB, SP, VCHAR or obs-text;
 * field lines a token, a colon and such a value; no other byte anywhere in the head.
 * Prefixes cut where the input's own generator says agree with the reference too, and a
 * prefix that is decided (not ERR_INCOMPLETE) is decided the same way as the whole.
 * The answer struct is written only on success.
 */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fuzz.h"
#include "netproxy.h"

struct model {
    int r;
    int status;
    size_t line_len, head_len;
};

static bool text_ok(const uint8_t *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != '\t' && (s[i] < 0x20 || s[i] == 0x7f))
            return false;
    return true;
}

static bool digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

/* The reference: what net_proxy_parse_head must say about d[0..len). */
static struct model reference(const uint8_t *d, size_t len)
{
    static const char http[] = "HTTP/";
    struct model m = {ERR_INCOMPLETE, 0, 0, 0};
    size_t limit = len < NET_PROXY_HEAD_MAX ? len : NET_PROXY_HEAD_MAX, end = 0, pos;
    bool found = false;

    for (size_t i = 0; i < 5 && i < len; i++)
        if (d[i] != (uint8_t)http[i]) {
            m.r = ERR_INVALID;
            return m;
        }
    for (size_t i = 0; i + 4 <= limit && !found; i++)
        if (d[i] == '\r' && d[i + 1] == '\n' && d[i + 2] == '\r' && d[i + 3] == '\n') {
            found = true;
            end = i + 4;
        }
    if (!found) {
        m.r = len >= NET_PROXY_HEAD_MAX ? ERR_TOO_LARGE : ERR_INCOMPLETE;
        return m;
    }
    m.r = ERR_INVALID;
    /* the status line */
    for (pos = 0; !(d[pos] == '\r' && d[pos + 1] == '\n'); pos++)
        ;
    m.line_len = pos;
    if (pos < 12 || memcmp(d, "HTTP/1.", 7) != 0 || !digit(d[7]) || d[8] != ' ' ||
        d[9] < '1' || d[9] > '9' || !digit(d[10]) || !digit(d[11]) || (pos > 12 && d[12] != ' ') ||
        !text_ok(d + 12, pos - 12))
        return m;
    m.status = (d[9] - '0') * 100 + (d[10] - '0') * 10 + (d[11] - '0');
    /* the field lines, up to the empty one */
    for (pos += 2; pos < end - 2;) {
        size_t start = pos, name = 0;

        while (!(d[pos] == '\r' && d[pos + 1] == '\n'))
            pos++;
        while (start + name < pos && fuzz_is_tchar(d[start + name]))
            name++;
        if (name == 0 || start + name == pos || d[start + name] != ':' ||
            !text_ok(d + start + name + 1, pos - start - name - 1))
            return m;
        pos += 2;
    }
    m.r = 0;
    m.head_len = end;
    return m;
}

static struct model run(const uint8_t *data, size_t len)
{
    uint8_t *copy = fuzz_dup(data, len); /* exactly len bytes: ASan sees any over-read */
    struct net_proxy_answer a = {.status = -7, .line_len = 7, .head_len = 7};
    struct model got = {0, 0, 0, 0};

    got.r = net_proxy_parse_head(copy, len, &a);
    if (got.r == 0) {
        got.status = a.status;
        got.line_len = a.line_len;
        got.head_len = a.head_len;
    } else {
        FUZZ_CHECK(a.status == -7 && a.line_len == 7 && a.head_len == 7,
                   "the answer was written on %d", got.r);
    }
    free(copy);
    return got;
}

static void check(const uint8_t *data, size_t len, struct model want, struct model got)
{
    if (got.r != want.r || (want.r == 0 && (got.status != want.status ||
                                              got.line_len != want.line_len ||
                                              got.head_len != want.head_len)) ||
        (want.r == ERR_INVALID && got.r == 0)) {
        fuzz_dump("input", data, len);
        fuzz_fail(__FILE__, __LINE__, "same as the reference",
                  "got %d status %d line %zu head %zu, want %d status %d line %zu head %zu",
                  got.r, got.status, got.line_len, got.head_len, want.r, want.status,
                  want.line_len, want.head_len);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct model whole = run(data, size);
    struct fuzz_rng rng;
    size_t cuts[8], n;

    check(data, size, reference(data, size), whole);
    fuzz_rng_seed(&rng, data, size);
    n = fuzz_pick_cuts(&rng, size, cuts, 8);
    for (size_t i = 0; i < n; i++) {
        struct model part = run(data, cuts[i]);

        check(data, cuts[i], reference(data, cuts[i]), part);
        if (part.r != ERR_INCOMPLETE)
            FUZZ_CHECK(part.r == whole.r && part.status == whole.status &&
                           part.head_len == whole.head_len,
                       "a prefix of %zu bytes decided %d, the whole %d", cuts[i], part.r, whole.r);
    }
    return 0;
}
