/*
 * proto.c - the runner <-> platform messages. See proto.h.
 *
 * Decoding parses with jansson, then copies out the few fields the runner needs and
 * drops the tree. The credential key is the one value that must not linger: it goes
 * into the secret arena, its jansson string is wiped in place before it is deleted,
 * and the received text is wiped as soon as jansson has read it. Encoding, the messages
 * the runner sends, is proto_encode.c's.
 * Not for: framing (the WebSocket layer), deciding what a task does (the runner).
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "err.h"
#include "proto.h"
#include "secret.h"
#include "wipe.h"

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
