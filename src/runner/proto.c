/*
 * proto.c - the runner <-> platform messages. See proto.h.
 *
 * Decoding parses with jansson, then copies out the few fields the runner needs and
 * drops the tree. The credential key is the one value that must not linger: it goes
 * into the secret arena, its jansson string is wiped in place before it is deleted,
 * and the received text is wiped as soon as jansson has read it.
 * Encoding builds a jansson tree and writes it out with a two-pass compact writer;
 * command output is made valid UTF-8 first, since JSON strings must be UTF-8.
 * Not for: framing (the WebSocket layer), deciding what a task does (the runner).
 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include <jansson.h>

#include "err.h"
#include "proto.h"
#include "secret.h"
#include "wipe.h"


/* U+FFFD REPLACEMENT CHARACTER in UTF-8. */
static const uint8_t replacement[3] = {0xEF, 0xBF, 0xBD};

void proto_init(void)
{
    json_set_alloc_funcs(malloc, wipe_free);
}

static int fail(int r, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes one line into err (if any) and returns r. */
static int fail(int r, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return r;
}

/* Frees a string we copied out of a message, wiping it first. */
static void free_str(char *s)
{
    if (s == NULL)
        return;
    explicit_bzero(s, strlen(s));
    free(s);
}

/* Member flags for get_string(). */
#define STR_REQUIRED 0x1u /* present, not null, not "" */

/*
 * Copies the string member name of obj into *out (a malloc'd copy, NULL when the member
 * is absent or null and not required). where names obj in the error ("payload").
 * Returns 0, ERR_INVALID or ERR_NOMEM. Error texts name the field, never its value.
 */
static int get_string(const json_t *obj, const char *where, const char *name, unsigned flags,
                      char **out, char *err, size_t errlen)
{
    const json_t *v = json_object_get(obj, name);
    const char *s;
    size_t len;

    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        if (flags & STR_REQUIRED)
            return fail(ERR_INVALID, err, errlen, "%s.%s: missing", where, name);
        return 0;
    }
    if (!json_is_string(v))
        return fail(ERR_INVALID, err, errlen, "%s.%s: expected a string", where, name);
    s = json_string_value(v);
    len = json_string_length(v);
    /* A C string comes out: an embedded NUL would silently cut it short. */
    if (memchr(s, '\0', len) != NULL)
        return fail(ERR_INVALID, err, errlen, "%s.%s: contains a NUL byte", where, name);
    if (len == 0 && (flags & STR_REQUIRED))
        return fail(ERR_INVALID, err, errlen, "%s.%s: empty", where, name);
    if ((*out = strdup(s)) == NULL)
        return fail(ERR_NOMEM, err, errlen, "%s.%s: out of memory", where, name);
    return 0;
}

/*
 * Returns a new reference to the object member name of obj, or a new empty object when
 * it is absent or null; NULL with *r set (and err) when it is not an object.
 */
static json_t *get_object(json_t *obj, const char *where, const char *name, int *r, char *err,
                          size_t errlen)
{
    json_t *v = json_object_get(obj, name);

    *r = 0;
    if (v == NULL || json_is_null(v)) {
        if ((v = json_object()) == NULL)
            *r = fail(ERR_NOMEM, err, errlen, "%s.%s: out of memory", where, name);
        return v;
    }
    if (!json_is_object(v)) {
        *r = fail(ERR_INVALID, err, errlen, "%s.%s: expected an object", where, name);
        return NULL;
    }
    return json_incref(v);
}

/* Copies a peer's type name for logs: bounded, printable ASCII only. */
static void copy_type_name(char *dst, size_t size, const char *src, size_t len)
{
    size_t i;

    if (len > size - 1)
        len = size - 1;
    for (i = 0; i < len; i++)
        dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
    dst[len] = '\0';
}

/* A fixed description of a jansson parse error: its own text may quote the input. */
static const char *parse_error_text(const json_error_t *e)
{
    switch (json_error_code(e)) {
    case json_error_out_of_memory:
        return "out of memory";
    case json_error_stack_overflow:
        return "nested too deeply";
    case json_error_invalid_utf8:
        return "invalid UTF-8";
    case json_error_premature_end_of_input:
        return "premature end of input";
    case json_error_end_of_input_expected:
        return "trailing data after the value";
    case json_error_invalid_syntax:
        return "invalid syntax";
    case json_error_null_character:
        return "NUL character";
    case json_error_null_byte_in_key:
        return "NUL byte in an object key";
    case json_error_duplicate_key:
        return "duplicate object key";
    case json_error_numeric_overflow:
        return "number out of range";
    default:
        return "invalid JSON";
    }
}

/*
 * Moves args.credential.key into the secret arena and deletes it from args, wiping
 * jansson's copy in place first (so it is gone even without proto_init). Runs before
 * anything else looks at args, and removes the key on every path, error ones included.
 */
static int take_credential(json_t *args, struct proto_in *out, char *err, size_t errlen)
{
    json_t *cred = json_object_get(args, "credential");
    json_t *key;
    size_t len;
    int r = 0;

    if (cred == NULL || json_is_null(cred))
        return 0;
    if (!json_is_object(cred))
        return fail(ERR_INVALID, err, errlen, "args.credential: expected an object");
    key = json_object_get(cred, "key");
    if (key != NULL && json_is_string(key)) {
        /* jansson hands out const, but the tree is ours and about to lose this string. */
        char *data = (char *)json_string_value(key);

        len = data != NULL ? json_string_length(key) : 0;
        if (len > 0 && (r = secret_validate_key((const uint8_t *)data, len)) == 0)
            r = secret_from(data, len, &out->credential_key);
        if (len > 0)
            explicit_bzero(data, len);
        if (r != 0)
            fail(r, err, errlen, "args.credential.key: %s", err_str(r));
    } else if (key != NULL && !json_is_null(key)) {
        r = fail(ERR_INVALID, err, errlen, "args.credential.key: expected a string");
    }
    if (key != NULL)
        json_object_del(cred, "key");
    if (r != 0)
        return r;
    return get_string(cred, "args.credential", "base_url", 0, &out->credential_base_url, err,
                      errlen);
}

static int decode_welcome(json_t *payload, struct proto_in *out, char *err, size_t errlen)
{
    int r;

    r = get_string(payload, "payload", "worknode_id", 0, &out->worknode_id, err, errlen);
    if (r == 0)
        r = get_string(payload, "payload", "name", 0, &out->name, err, errlen);
    if (r != 0)
        return r;
    /* The Go platform sends labels as a list of "key:value" strings; others as an object.
     * The runner only logs them: keep either form. */
    if (json_is_array(json_object_get(payload, "labels"))) {
        out->labels = json_incref(json_object_get(payload, "labels"));
        return 0;
    }
    out->labels = get_object(payload, "payload", "labels", &r, err, errlen);
    return r;
}

static int decode_task_request(json_t *payload, struct proto_in *out, char *err, size_t errlen)
{
    json_t *args = NULL;
    int r;

    /* task_id first: with it, even a request we reject can be answered. */
    r = get_string(payload, "payload", "task_id", STR_REQUIRED, &out->task_id, err, errlen);
    if (r != 0)
        return r;
    /* args as sent: each operation reads it as Go would, a missing one included
     * ("unexpected end of JSON input"); only an object can carry a credential. */
    if ((args = json_object_get(payload, "args")) != NULL)
        json_incref(args);
    if ((json_is_object(args) && (r = take_credential(args, out, err, errlen)) != 0) ||
        (r = get_string(payload, "payload", "operation", STR_REQUIRED, &out->operation, err,
                        errlen)) != 0 ||
        (r = get_string(payload, "payload", "trace_id", 0, &out->trace_id, err, errlen)) != 0 ||
        (r = get_string(payload, "payload", "source_instance_id", 0, &out->source_instance_id, err,
                        errlen)) != 0)
        goto out;
    out->args = args;
    args = NULL; /* transferred */
out:
    json_decref(args);
    return r;
}

/* mcp.call: the call_id its result is addressed with, and the payload for the operation
 * to read as Go would (its errors answered under that call_id). Go's decoder matches
 * member names without case, the last one winning. */
static int decode_mcp_call(json_t *payload, struct proto_in *out, char *err, size_t errlen)
{
    const char *key, *id = "";
    json_t *v;

    json_object_foreach(payload, key, v) {
        if (strcasecmp(key, "call_id") != 0)
            continue;
        if (!json_is_string(v))
            return fail(ERR_INVALID, err, errlen, "payload.call_id: expected a string");
        if (memchr(json_string_value(v), '\0', json_string_length(v)) != NULL)
            return fail(ERR_INVALID, err, errlen, "payload.call_id: contains a NUL byte");
        id = json_string_value(v);
    }
    if ((out->call_id = strdup(id)) == NULL)
        return fail(ERR_NOMEM, err, errlen, "out of memory");
    out->args = json_incref(payload);
    return 0;
}

/* After a failure, drops everything but what the caller needs to answer (type, type_name,
 * task_id, call_id): in particular a credential key already moved to the arena. */
static void keep_for_answer(struct proto_in *m)
{
    struct proto_in keep = {.type = m->type, .task_id = m->task_id, .call_id = m->call_id};

    memcpy(keep.type_name, m->type_name, sizeof(keep.type_name));
    m->task_id = NULL;
    m->call_id = NULL;
    proto_in_free(m);
    *m = keep;
}

int proto_decode(char *text, size_t len, struct proto_in *out, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = NULL, *payload, *type;
    const char *tname;
    int r;

    assert(out != NULL && (text != NULL || len == 0));
    memset(out, 0, sizeof(*out));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (len > PROTO_MSG_MAX) {
        explicit_bzero(text, len);
        return fail(ERR_TOO_LARGE, err, errlen, "message of %zu bytes over the limit", len);
    }
    /* Duplicate members are refused: two "key"s or two "command"s would be ambiguous. NULs
     * are allowed by the parser and refused per field, where a C string comes out. */
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    explicit_bzero(text, len);
    if (root == NULL) {
        r = json_error_code(&jerr) == json_error_out_of_memory ? ERR_NOMEM : ERR_INVALID;
        fail(r, err, errlen, "malformed JSON at line %d column %d: %s", jerr.line, jerr.column,
             parse_error_text(&jerr));
        /* Its text quotes the input near the error, which may be the key. */
        explicit_bzero(&jerr, sizeof(jerr));
        return r;
    }
    explicit_bzero(&jerr, sizeof(jerr));

    if (!json_is_object(root)) {
        r = fail(ERR_INVALID, err, errlen, "message: expected an object");
        goto out;
    }
    type = json_object_get(root, "type");
    if (type == NULL || !json_is_string(type)) {
        r = fail(ERR_INVALID, err, errlen, "type: %s",
                 type == NULL ? "missing" : "expected a string");
        goto out;
    }
    tname = json_string_value(type);
    if (memchr(tname, '\0', json_string_length(type)) != NULL) {
        /* "welcome\u0000x" must not pass for "welcome". */
        r = fail(ERR_INVALID, err, errlen, "type: contains a NUL byte");
        goto out;
    }
    copy_type_name(out->type_name, sizeof(out->type_name), tname, json_string_length(type));
    if (strcmp(tname, "welcome") == 0)
        out->type = PROTO_WELCOME;
    else if (strcmp(tname, "task.request") == 0)
        out->type = PROTO_TASK_REQUEST;
    else if (strcmp(tname, "task.cancel") == 0)
        out->type = PROTO_TASK_CANCEL;
    else if (strcmp(tname, "mcp.call") == 0)
        out->type = PROTO_MCP_CALL;
    else
        out->type = PROTO_UNKNOWN;

    if (out->type != PROTO_UNKNOWN) {
        payload = json_object_get(root, "payload");
        if (payload == NULL || !json_is_object(payload)) {
            r = fail(ERR_INVALID, err, errlen, "payload: %s",
                     payload == NULL ? "missing" : "expected an object");
            goto out;
        }
        switch (out->type) {
        case PROTO_WELCOME:
            r = decode_welcome(payload, out, err, errlen);
            break;
        case PROTO_TASK_REQUEST:
            r = decode_task_request(payload, out, err, errlen);
            break;
        case PROTO_MCP_CALL:
            r = decode_mcp_call(payload, out, err, errlen);
            break;
        default:
            r = get_string(payload, "payload", "task_id", STR_REQUIRED, &out->task_id, err, errlen);
            break;
        }
        if (r != 0)
            goto out;
    }
    r = get_string(root, "message", "id", 0, &out->id, err, errlen);
out:
    /* Frees (and, after proto_init, wipes) the whole tree: the key is long gone from it. */
    json_decref(root);
    if (r != 0)
        keep_for_answer(out);
    return r;
}

void proto_in_free(struct proto_in *m)
{
    if (m == NULL)
        return;
    free_str(m->id);
    free_str(m->worknode_id);
    free_str(m->name);
    json_decref(m->labels);
    free_str(m->task_id);
    free_str(m->trace_id);
    free_str(m->source_instance_id);
    free_str(m->operation);
    json_decref(m->args);
    secret_free(m->credential_key);
    free_str(m->credential_base_url);
    free_str(m->call_id);
    memset(m, 0, sizeof(*m));
}

/* Reads args.timeout into *ms; absent or null leaves *ms alone. */
static int get_timeout(const json_t *args, uint64_t *ms, char *err, size_t errlen)
{
    const json_t *v = json_object_get(args, "timeout");
    json_int_t n;
    double d;

    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_integer(v)) {
        n = json_integer_value(v);
        if (n <= 0 || n > PROTO_BASH_TIMEOUT_MAX_S)
            goto range;
        *ms = (uint64_t)n * 1000;
        return 0;
    }
    if (json_is_real(v)) {
        d = json_real_value(v);
        if (!(d > 0.0 && d <= PROTO_BASH_TIMEOUT_MAX_S))
            goto range;
        /* Round up, so that a tiny positive timeout is not 0 ms (which means "none"). */
        *ms = (uint64_t)(d * 1000.0);
        if ((double)*ms < d * 1000.0)
            (*ms)++;
        return 0;
    }
    return fail(ERR_INVALID, err, errlen, "args.timeout: expected a number of seconds");
range:
    return fail(ERR_INVALID, err, errlen, "args.timeout: must be > 0 and <= %d seconds",
                PROTO_BASH_TIMEOUT_MAX_S);
}

static bool env_name_valid(const char *s)
{
    if (!(*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')))
        return false;
    for (s++; *s != '\0'; s++) {
        if (!(*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
              (*s >= '0' && *s <= '9')))
            return false;
    }
    return true;
}

/* bash's env: an object of strings (Go: map[string]string, omitempty). */
static int get_bash_env(const json_t *env, struct bash_args *out, char *err, size_t errlen)
{
    const char *name;
    const json_t *v;
    size_t n = json_object_size(env), i = 0;
    char shown[80];

    if (env == NULL || json_is_null(env))
        return 0;
    if (!json_is_object(env))
        return fail(ERR_INVALID, err, errlen, "invalid bash args: json: cannot unmarshal %s into "
                    "Go struct field BashArgs.env of type map[string]string",
                    json_is_string(env) ? "string" : json_is_array(env) ? "array"
                    : json_is_boolean(env) ? "bool" : "number");
    if (n == 0)
        return 0;
    if ((out->env_names = calloc(n, sizeof(char *))) == NULL ||
        (out->env_values = calloc(n, sizeof(char *))) == NULL)
        return fail(ERR_NOMEM, err, errlen, "out of memory");
    json_object_foreach((json_t *)env, name, v) {
        /* The name in messages: bounded, printable (it comes from the platform). */
        copy_type_name(shown, sizeof(shown), name, strlen(name));
        if (!env_name_valid(name))
            return fail(ERR_INVALID, err, errlen, "invalid bash args: env: invalid variable "
                        "name: %s", shown);
        if (!json_is_string(v))
            return fail(ERR_INVALID, err, errlen, "invalid bash args: json: cannot unmarshal "
                        "%s into Go struct field BashArgs.env of type string",
                        json_is_array(v) ? "array" : json_is_object(v) ? "object"
                        : json_is_boolean(v) ? "bool" : "number");
        if (memchr(json_string_value(v), '\0', json_string_length(v)) != NULL)
            return fail(ERR_INVALID, err, errlen, "invalid bash args: env: value of %s "
                        "contains a NUL byte", shown);
        if ((out->env_names[i] = strdup(name)) == NULL ||
            (out->env_values[i] = strdup(json_string_value(v))) == NULL) {
            out->nenv = i + 1;
            return fail(ERR_NOMEM, err, errlen, "out of memory");
        }
        out->nenv = ++i;
    }
    return 0;
}

int proto_bash_args(const json_t *args, uint64_t default_timeout_ms, struct bash_args *out,
                    char *err, size_t errlen)
{
    const json_t *v;
    int r;

    assert(out != NULL);
    memset(out, 0, sizeof(*out));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (args == NULL)
        return fail(ERR_INVALID, err, errlen, "invalid bash args: unexpected end of JSON input");
    if (!json_is_object(args) && !json_is_null(args))
        return fail(ERR_INVALID, err, errlen, "invalid bash args: json: cannot unmarshal %s into "
                    "Go value of type protocol.BashArgs", json_is_string(args) ? "string"
                    : json_is_array(args) ? "array" : json_is_boolean(args) ? "bool" : "number");
    if ((r = get_string(args, "args", "command", STR_REQUIRED, &out->command, err, errlen)) != 0 ||
        (r = get_string(args, "args", "workdir", 0, &out->workdir, err, errlen)) != 0)
        return r;
    if (out->workdir != NULL && out->workdir[0] == '\0') {
        free(out->workdir);
        out->workdir = NULL;
    }
    out->timeout_ms = default_timeout_ms != 0 ? default_timeout_ms
                                              : (uint64_t)PROTO_BASH_TIMEOUT_DEFAULT_S * 1000;
    if ((r = get_timeout(args, &out->timeout_ms, err, errlen)) != 0)
        return r;
    v = json_object_get(args, "stream");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_boolean(v))
            return fail(ERR_INVALID, err, errlen, "args.stream: expected a boolean");
        out->stream = json_is_true(v);
    }
    return get_bash_env(json_object_get(args, "env"), out, err, errlen);
}

bool proto_bash_env_name_reserved(const char *name)
{
    return strcmp(name, "FLASHDUTY_CRED_FD") == 0 || strcmp(name, "FLASHDUTY_BASE_URL") == 0 ||
           strcmp(name, "FLASHDUTY_APP_KEY") == 0 || strncmp(name, "LD_", 3) == 0;
}

void bash_args_free(struct bash_args *a)
{
    if (a == NULL)
        return;
    free_str(a->command);
    free_str(a->workdir);
    for (size_t i = 0; i < a->nenv; i++) {
        free_str(a->env_names[i]);
        free_str(a->env_values[i]);
    }
    free(a->env_names);
    free(a->env_values);
    memset(a, 0, sizeof(*a));
}

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
