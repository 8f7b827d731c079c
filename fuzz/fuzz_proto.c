/*
 * fuzz_proto.c - the runner's message decoder (proto.h: proto_decode), where a
 * platform message carrying a person's API key is turned into a task.
 *
 * The input is the message text as it would come off the WebSocket. The
 * harness parses it once more with jansson (same flags as proto.c) to know
 * what the message says, then decodes a mutable copy with proto_decode.
 *
 * Properties: proto_decode never crashes and wipes the whole input copy (all
 * zero) on every path; its error text is a bounded line that does not depend
 * on the key (the same with any other key of the same kind); what
 * jansson cannot parse is refused; on success, a task.request whose
 * args.credential.key is a non-empty valid key has credential_key set to
 * exactly that key, one with an invalid key is refused, args equals the
 * message's args minus credential.key (nothing else lost or added), and the
 * key's bytes (raw or JSON-escaped) appear nowhere in json_dumps(args) unless
 * the message had them elsewhere in args; after a failure nothing but type and
 * task_id is kept (no key in the arena); proto_in_free leaves the struct zeroed
 * (and LeakSanitizer, in the libFuzzer build, sees nothing left).
 * proto_bash_args on the decoded args, when it succeeds, gives a non-empty
 * command and a timeout in range. proto_utf8_sanitize of the input equals a
 * reference written here (Unicode Table 3-7 for what is well formed; one U+FFFD
 * per byte of anything else, as Go's encoding/json).
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "err.h"
#include "fuzz.h"
#include "proto.h"
#include "secret.h"

static const uint8_t fffd[3] = {0xEF, 0xBF, 0xBD};

/* Length of the valid UTF-8 sequence at s[0..n), or 0 with *subpart the maximal ill-formed
 * subpart's length (Unicode 3.9, table 3-7). */
static size_t utf8_seq(const uint8_t *s, size_t n, size_t *subpart)
{
    unsigned char c = s[0];
    size_t need, i;
    uint8_t lo = 0x80, hi = 0xBF;

    *subpart = 1;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        need = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        need = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        need = 4;
    else
        return 0;
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    for (i = 1; i < need; i++) {
        if (i >= n || s[i] < (i == 1 ? lo : 0x80) || s[i] > (i == 1 ? hi : 0xBF)) {
            *subpart = i;
            return 0;
        }
    }
    return need;
}

static void check_sanitize(const uint8_t *data, size_t size)
{
    size_t olen = 0, wlen = 0, i = 0;
    char *out = proto_utf8_sanitize(data, size, &olen);
    uint8_t *want = fuzz_malloc(3 * size + 1);

    FUZZ_CHECK(out != NULL, "proto_utf8_sanitize returned NULL");
    while (i < size) {
        size_t sub, n = utf8_seq(data + i, size - i, &sub);

        if (n > 0) {
            memcpy(want + wlen, data + i, n);
            wlen += n;
            i += n;
        } else {
            memcpy(want + wlen, fffd, 3);
            wlen += 3;
            i += 1; /* each byte of the ill-formed subpart (sub) has its own U+FFFD */
            (void)sub;
        }
    }
    FUZZ_CHECK(olen == wlen && memcmp(out, want, wlen) == 0 && out[olen] == '\0',
               "proto_utf8_sanitize: %zu bytes, reference %zu (or different bytes)", olen, wlen);
    free(want);
    free(out);
}

/* The key as json_dumps writes it inside a string (escaped), without the quotes. */
static char *json_escaped(const char *key, size_t len, size_t *elen)
{
    json_t *s = json_stringn(key, len);
    char *d = s != NULL ? json_dumps(s, JSON_ENCODE_ANY) : NULL;

    json_decref(s);
    FUZZ_CHECK(d != NULL && strlen(d) >= 2, "json_dumps of a string");
    *elen = strlen(d) - 2;
    memmove(d, d + 1, *elen);
    return d;
}

/*
 * The error text must not depend on the key: decoding the same message with a
 * key of the same length and kind (valid, too long, with a control byte) but
 * different bytes at every position gives the same result and the same text.
 * Rewrites the key in root (the harness's own tree).
 */
static void check_error_keyless(json_t *root, json_t *cred, const char *key, size_t klen, int r,
                                const char *err)
{
    char *other = fuzz_malloc(klen + 1), *text, err2[256];
    bool control = secret_validate_key((const uint8_t *)key, klen) == ERR_KEY_CONTROL;
    struct proto_in m;
    int r2;

    for (size_t i = 0; i < klen; i++) {
        if (control)
            other[i] = key[i] == '\x01' ? '\x02' : '\x01';
        else
            other[i] = key[i] == 'Q' ? 'R' : 'Q';
    }
    FUZZ_CHECK(json_object_set_new(cred, "key", json_stringn(other, klen)) == 0, "json_object_set");
    text = json_dumps(root, JSON_COMPACT);
    FUZZ_CHECK(text != NULL, "json_dumps");
    r2 = proto_decode(text, strlen(text), &m, err2, sizeof(err2));
    if (r2 != r || strcmp(err, err2) != 0) {
        fuzz_dump("error", err, strlen(err));
        fuzz_dump("error with another key", err2, strlen(err2));
    }
    FUZZ_CHECK(r2 == r && strcmp(err, err2) == 0, "the outcome or error text depends on the key");
    proto_in_free(&m);
    free(text);
    free(other);
}

static void check_bash_args(const json_t *args)
{
    struct bash_args a, zero;
    char err[256];
    int r = proto_bash_args(args, 0, &a, err, sizeof(err));

    FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL, "bash args error text not terminated");
    if (r == 0) {
        FUZZ_CHECK(a.command != NULL && a.command[0] != '\0', "empty command accepted");
        FUZZ_CHECK(a.timeout_ms > 0 && a.timeout_ms <= (uint64_t)PROTO_BASH_TIMEOUT_MAX_S * 1000,
                   "timeout %llu ms", (unsigned long long)a.timeout_ms);
        FUZZ_CHECK(a.workdir == NULL || a.workdir[0] != '\0', "empty workdir kept");
    } else {
        FUZZ_CHECK(r == ERR_INVALID || r == ERR_NOMEM, "proto_bash_args: %d", r);
    }
    bash_args_free(&a);
    memset(&zero, 0, sizeof(zero));
    FUZZ_CHECK(memcmp(&a, &zero, sizeof(a)) == 0, "bash_args_free left something");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool inited;
    struct proto_in m, zero;
    json_error_t je;
    json_t *root, *payload = NULL, *args = NULL, *cred = NULL, *key = NULL, *want_args = NULL;
    const char *tname = NULL, *kstr = NULL;
    size_t klen = 0;
    char *copy, err[256];
    bool is_request, key_valid;
    int r;

    if (!inited) {
        proto_init();
        inited = true;
    }
    check_sanitize(data, size);

    /* What the message says, read independently. */
    root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (json_is_object(root) && json_is_string(json_object_get(root, "type")))
        tname = json_string_value(json_object_get(root, "type"));
    is_request = tname != NULL &&
                 strlen(tname) == json_string_length(json_object_get(root, "type")) &&
                 strcmp(tname, "task.request") == 0;
    if (is_request && json_is_object(payload = json_object_get(root, "payload")) &&
        json_is_object(args = json_object_get(payload, "args")) &&
        json_is_object(cred = json_object_get(args, "credential")) &&
        json_is_string(key = json_object_get(cred, "key"))) {
        kstr = json_string_value(key);
        klen = json_string_length(key);
    }
    key_valid = kstr != NULL && klen > 0 && secret_validate_key((const uint8_t *)kstr, klen) == 0;
    if (args != NULL) { /* args as sent, minus credential.key */
        want_args = json_deep_copy(args);
        FUZZ_CHECK(want_args != NULL, "json_deep_copy");
        if (json_is_object(json_object_get(want_args, "credential")))
            json_object_del(json_object_get(want_args, "credential"), "key");
    }

    copy = (char *)fuzz_dup(data, size);
    memset(err, 'x', sizeof(err));
    r = proto_decode(copy, size, &m, err, sizeof(err));
    for (size_t i = 0; i < size; i++)
        FUZZ_CHECK(copy[i] == '\0', "input byte %zu of %zu not wiped", i, size);
    FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL, "error text not terminated");
    FUZZ_CHECK(r != 0 || err[0] == '\0', "success with an error text");
    FUZZ_CHECK(root != NULL || r != 0, "text jansson refuses was decoded");

    if (r == 0 && m.type == PROTO_TASK_REQUEST) {
        json_t *c;
        char *dump, *want_dump, *esc;
        size_t elen;

        FUZZ_CHECK(is_request, "decoded as a task.request");
        FUZZ_CHECK(m.task_id != NULL && m.task_id[0] != '\0' && m.operation != NULL &&
                       m.operation[0] != '\0',
                   "task.request without task_id or operation");
        FUZZ_CHECK(kstr == NULL || klen == 0 || key_valid, "an invalid key was accepted");
        if (key_valid) {
            FUZZ_CHECK(m.credential_key != NULL, "credential key not taken");
            FUZZ_CHECK(secret_len(m.credential_key) == klen &&
                           memcmp(secret_data(m.credential_key), kstr, klen) == 0,
                       "credential key differs from the message's");
        } else {
            FUZZ_CHECK(m.credential_key == NULL, "a credential key out of nothing");
        }
        FUZZ_CHECK(args == NULL ? m.args == NULL : json_equal(m.args, want_args),
                   "args differ from the message's args minus credential.key");
        c = json_object_get(m.args, "credential");
        FUZZ_CHECK(!json_is_object(c) || json_object_get(c, "key") == NULL, "key left in args");
        dump = json_dumps(m.args, JSON_COMPACT | JSON_ENCODE_ANY);
        want_dump = json_dumps(want_args, JSON_COMPACT | JSON_ENCODE_ANY);
        FUZZ_CHECK(args == NULL || (dump != NULL && want_dump != NULL), "json_dumps");
        if (klen > 0 && args != NULL) {
            esc = json_escaped(kstr, klen, &elen);
            FUZZ_CHECK(!fuzz_contains(dump, strlen(dump), kstr, klen) ||
                           fuzz_contains(want_dump, strlen(want_dump), kstr, klen),
                       "the key's bytes are in json_dumps(args)");
            FUZZ_CHECK(elen == 0 || !fuzz_contains(dump, strlen(dump), esc, elen) ||
                           fuzz_contains(want_dump, strlen(want_dump), esc, elen),
                       "the key, JSON-escaped, is in json_dumps(args)");
            free(esc);
        }
        free(dump);
        free(want_dump);
        if (m.operation != NULL && strcmp(m.operation, "bash") == 0)
            check_bash_args(m.args);
    } else if (r == 0 && m.type == PROTO_MCP_CALL) {
        /* The payload as sent, for the operation to read; a call_id to answer under. */
        FUZZ_CHECK(strcmp(tname, "mcp.call") == 0, "decoded as an mcp.call");
        FUZZ_CHECK(json_equal(m.args, json_object_get(root, "payload")), "payload not kept");
        FUZZ_CHECK(m.call_id != NULL && m.credential_key == NULL, "mcp.call fields");
    } else if (r == 0) {
        FUZZ_CHECK(!is_request, "a task.request decoded as type %d", m.type);
        FUZZ_CHECK(m.credential_key == NULL && m.args == NULL, "request fields on another type");
    } else {
        FUZZ_CHECK(m.credential_key == NULL && m.args == NULL && m.id == NULL,
                   "a failed decode kept more than type and task_id");
    }
    proto_in_free(&m);
    memset(&zero, 0, sizeof(zero));
    FUZZ_CHECK(memcmp(&m, &zero, sizeof(m)) == 0, "proto_in_free left something");
    free(copy);
    if (kstr != NULL)
        check_error_keyless(root, cred, kstr, klen, r, err);
    json_decref(want_args);
    json_decref(root);
    return 0;
}
