/*
 * opargs.c - see opargs.h.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "opargs.h"

#define FIELD(s, name, type) {#name, type, offsetof(struct s, name), NULL}
/* A nested struct: its members described by sub. */
#define OBJECT(s, name, sub) {#name, OPARGS_OBJECT, offsetof(struct s, name), &sub}
#define NFIELDS(fields) (sizeof(fields) / sizeof(fields[0]))
#define SPEC(op, go, s, fields)                                                                \
    const struct opargs_spec opargs_##op = {#op, go, fields, NFIELDS(fields), sizeof(struct s), \
                                            NULL}

static const struct opargs_field read_fields[] = {
    FIELD(read_args, path, OPARGS_STRING),
    FIELD(read_args, offset, OPARGS_INT64),
    FIELD(read_args, limit, OPARGS_INT64),
};
static const struct opargs_field write_fields[] = {
    FIELD(write_args, path, OPARGS_STRING),
    FIELD(write_args, content, OPARGS_STRING),
};
static const struct opargs_field list_fields[] = {
    FIELD(list_args, path, OPARGS_STRING),
    FIELD(list_args, recursive, OPARGS_BOOL),
    FIELD(list_args, ignore, OPARGS_STRINGS),
};
static const struct opargs_field glob_fields[] = {
    FIELD(glob_args, pattern, OPARGS_STRING),
};
static const struct opargs_field grep_fields[] = {
    FIELD(grep_args, pattern, OPARGS_STRING),
    FIELD(grep_args, include, OPARGS_STRINGS),
};

static const struct opargs_field sync_skill_fields[] = {
    FIELD(sync_skill_args, skill_name, OPARGS_STRING),
    FIELD(sync_skill_args, skill_dir, OPARGS_STRING),
    FIELD(sync_skill_args, zip_data, OPARGS_STRING),
    FIELD(sync_skill_args, checksum, OPARGS_STRING),
};

SPEC(read, "ReadArgs", read_args, read_fields);
SPEC(write, "WriteArgs", write_args, write_fields);
SPEC(list, "ListArgs", list_args, list_fields);
SPEC(glob, "GlobArgs", glob_args, glob_fields);
SPEC(grep, "GrepArgs", grep_args, grep_fields);
SPEC(sync_skill, "SyncSkillArgs", sync_skill_args, sync_skill_fields);

static const struct opargs_field webfetch_fields[] = {
    FIELD(webfetch_args, url, OPARGS_STRING),
    FIELD(webfetch_args, format, OPARGS_STRING),
    FIELD(webfetch_args, timeout, OPARGS_INT),
};
SPEC(webfetch, "WebFetchArgs", webfetch_args, webfetch_fields);

/* Go's MCPServerConfig: only ever nested, so its op and prefix are never printed (errors
 * take the outermost spec's). */
static const struct opargs_field mcp_server_fields[] = {
    FIELD(mcp_server_args, name, OPARGS_STRING),
    FIELD(mcp_server_args, transport, OPARGS_STRING),
    FIELD(mcp_server_args, command, OPARGS_STRING),
    FIELD(mcp_server_args, args, OPARGS_STRINGS),
    FIELD(mcp_server_args, env, OPARGS_MAP),
    FIELD(mcp_server_args, url, OPARGS_STRING),
    FIELD(mcp_server_args, headers, OPARGS_MAP),
    FIELD(mcp_server_args, dynamic_headers, OPARGS_MAP),
    FIELD(mcp_server_args, tls_skip_verify, OPARGS_BOOL),
};
static const struct opargs_spec mcp_server_spec = {
    "mcp_server", "MCPServerConfig", mcp_server_fields, NFIELDS(mcp_server_fields),
    sizeof(struct mcp_server_args), NULL};

static const struct opargs_field mcp_call_fields[] = {
    OBJECT(mcp_call_args, server, mcp_server_spec),
    FIELD(mcp_call_args, tool_name, OPARGS_STRING),
    FIELD(mcp_call_args, args, OPARGS_RAW),
    FIELD(mcp_call_args, timeout, OPARGS_INT),
};
SPEC(mcp_call, "MCPCallArgs", mcp_call_args, mcp_call_fields);

static const struct opargs_field mcp_list_tools_fields[] = {
    OBJECT(mcp_list_tools_args, server, mcp_server_spec),
};
SPEC(mcp_list_tools, "MCPListToolsArgs", mcp_list_tools_args, mcp_list_tools_fields);

/* Not a task's args but the mcp.call message's payload: its own prefix (RUNNER-OPS.md 9.7). */
static const struct opargs_field mcp_call_payload_fields[] = {
    FIELD(mcp_call_payload, call_id, OPARGS_STRING),
    {"server", OPARGS_OBJECT, offsetof(struct mcp_call_payload, call.server), &mcp_server_spec},
    {"tool_name", OPARGS_STRING, offsetof(struct mcp_call_payload, call.tool_name), NULL},
    {"arguments", OPARGS_RAW, offsetof(struct mcp_call_payload, call.args), NULL},
};
_Static_assert(offsetof(struct mcp_call_payload, call) == 0,
               "an mcp.call payload is read as an mcp_call's args");
const struct opargs_spec opargs_mcp_call_payload = {
    "mcp.call", "MCPCallPayload", mcp_call_payload_fields, NFIELDS(mcp_call_payload_fields),
    sizeof(struct mcp_call_payload), "invalid mcp.call payload: "};

/* Longest dotted path of JSON names any spec here has ("server.dynamic_headers"), with room. */
#define FIELD_PATH_LEN 128

/*
 * Where the decoder is, as Go's decodeState.errorContext has it: the innermost struct
 * being decoded (errorContext.Struct) and the JSON names of the fields from the root
 * (errorContext.FieldStack, joined with '.'). Errors start with the outermost spec's
 * prefix.
 */
struct walk {
    const struct opargs_spec *top;
    const struct opargs_spec *cur;
    char path[FIELD_PATH_LEN];
    char *err;
    size_t errlen;
};

static int fail(const struct walk *w, int r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(const struct walk *w, int r, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (w->top->prefix != NULL)
        n = snprintf(w->err, w->errlen, "%s", w->top->prefix);
    else
        n = snprintf(w->err, w->errlen, "invalid %s args: ", w->top->op);
    if (n >= 0 && (size_t)n < w->errlen) {
        va_start(ap, fmt);
        vsnprintf(w->err + n, w->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return r;
}

/* The kind Go's UnmarshalTypeError names for a JSON value. A number that is not an
 * integer (or not one that fits) is "number <literal>" when the target is an integer. */
static const char *json_kind(const json_t *v, bool integer_target, char *buf, size_t len)
{
    switch (json_typeof(v)) {
    case JSON_STRING: return "string";
    case JSON_TRUE:
    case JSON_FALSE: return "bool";
    case JSON_ARRAY: return "array";
    case JSON_OBJECT: return "object";
    case JSON_INTEGER:
        return "number";
    case JSON_REAL:
        if (integer_target) {
            double d = json_real_value(v);

            /* The shortest form that reads back as the same double (Go prints the literal
             * as written; jansson keeps only the value). */
            for (int prec = 1; prec <= 17; prec++) {
                snprintf(buf, len, "number %.*g", prec, d);
                if (strtod(buf + 7, NULL) == d)
                    break;
            }
            return buf;
        }
        return "number";
    default: return "null";
    }
}

/* Go's reflect.Type.String() of a field's type; a nested struct's is built in buf. */
static const char *go_type(const struct opargs_field *f, char *buf, size_t len)
{
    switch (f->type) {
    case OPARGS_STRING: return "string";
    case OPARGS_INT64: return "int64";
    case OPARGS_INT: return "int";
    case OPARGS_BOOL: return "bool";
    case OPARGS_STRINGS: return "[]string";
    case OPARGS_MAP: return "map[string]string";
    case OPARGS_OBJECT:
        /* Interim qualifier, as for the args themselves (RUNNER-OPS.md 14). */
        snprintf(buf, len, "protocol.%s", f->sub->go_struct);
        return buf;
    case OPARGS_RAW: return "json.RawMessage";
    }
    return "?";
}

/* Go's UnmarshalTypeError with errorContext: "... Go struct field <Struct>.<path> of type
 * <type>". */
static int type_error(const struct walk *w, const json_t *v, bool integer_target, const char *type)
{
    char kind[48];

    return fail(w, ERR_INVALID, "json: cannot unmarshal %s into Go struct field %s.%s of type %s",
                json_kind(v, integer_target, kind, sizeof(kind)), w->cur->go_struct, w->path,
                type);
}

/* A JSON string as a C string: NULL with an error when it holds a NUL byte. */
static int copy_string(const struct walk *w, const json_t *v, char **out)
{
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);

    if (memchr(s, '\0', len) != NULL)
        return fail(w, ERR_INVALID, "%s contains a NUL byte", w->path);
    if ((*out = strdup(s)) == NULL)
        return fail(w, ERR_NOMEM, "out of memory");
    return 0;
}

static void strings_free(struct opargs_strings *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int set_strings(const struct walk *w, const json_t *v, struct opargs_strings *out)
{
    struct opargs_strings l = {NULL, 0};
    size_t n = json_array_size(v);
    int r = 0;

    if (!json_is_array(v))
        return type_error(w, v, false, "[]string");
    /* Go makes an empty, non-nil slice for []: v is never NULL once an array was given. */
    if ((l.v = calloc(n + 1, sizeof(char *))) == NULL)
        return fail(w, ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && r == 0; i++) {
        const json_t *e = json_array_get(v, i);

        if (json_is_null(e))
            r = (l.v[i] = strdup("")) == NULL ? fail(w, ERR_NOMEM, "out of memory") : 0;
        else if (!json_is_string(e))
            r = type_error(w, e, false, "string");
        else
            r = copy_string(w, e, &l.v[i]);
        if (r == 0)
            l.n++;
    }
    if (r != 0) {
        strings_free(&l);
        return r;
    }
    strings_free(out); /* a later key that folds to the same field wins */
    *out = l;
    return 0;
}

static void map_free(struct opargs_map *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->keys[i]);
        free(m->values[i]);
    }
    free(m->keys);
    free(m->values);
    memset(m, 0, sizeof(*m));
}

/*
 * Decodes an object into m as Go decodes into a map[string]string it already holds: the
 * entries stay, a key given again gets the new value (Go reuses a non-nil map). On an
 * error m may hold part of the object: the caller frees all of it.
 */
static int set_map(const struct walk *w, const json_t *v, struct opargs_map *m)
{
    /* An object's own keys are unique (jansson keeps the last of a repeated key), so they
     * need looking up only among entries from an earlier key folding to this field. */
    size_t had = m->n, cap = m->n + json_object_size(v);
    const char *key;
    size_t keylen;
    json_t *e;
    char **p;

    if (!json_is_object(v))
        return type_error(w, v, false, "map[string]string");
    /* The arrays grow once, before any entry; +1 keeps them non-NULL for {} (Go's empty,
     * non-nil map). realloc failing leaves the old arrays in m. */
    if ((p = realloc(m->keys, (cap + 1) * sizeof(char *))) == NULL)
        return fail(w, ERR_NOMEM, "out of memory");
    m->keys = p;
    if ((p = realloc(m->values, (cap + 1) * sizeof(char *))) == NULL)
        return fail(w, ERR_NOMEM, "out of memory");
    m->values = p;
    json_object_keylen_foreach((json_t *)v, key, keylen, e) {
        char *val = NULL, *k;
        size_t i;
        int r;

        if (memchr(key, '\0', keylen) != NULL)
            return fail(w, ERR_INVALID, "%s contains a NUL byte", w->path);
        if (json_is_null(e))
            r = (val = strdup("")) == NULL ? fail(w, ERR_NOMEM, "out of memory") : 0;
        else if (!json_is_string(e))
            r = type_error(w, e, false, "string");
        else
            r = copy_string(w, e, &val);
        if (r != 0)
            return r;
        for (i = 0; i < had && strcmp(m->keys[i], key) != 0; i++)
            ;
        if (i < had) {
            free(m->values[i]);
            m->values[i] = val;
            continue;
        }
        if ((k = strdup(key)) == NULL) {
            free(val);
            return fail(w, ERR_NOMEM, "out of memory");
        }
        m->keys[m->n] = k;
        m->values[m->n++] = val;
    }
    return 0;
}

static int parse_members(struct walk *w, const struct opargs_spec *spec, const json_t *obj,
                         void *out);

static int set_field(struct walk *w, const struct opargs_field *f, const json_t *v, void *out)
{
    char *at = (char *)out + f->offset;
    char type[80];

    /* Go's RawMessage is an Unmarshaler: it gets every value as written, "null" too. */
    if (f->type == OPARGS_RAW) {
        json_decref(*(json_t **)at);
        *(json_t **)at = json_incref((json_t *)v);
        return 0;
    }
    if (json_is_null(v)) {
        /* Go: null sets a map to nil (SetZero) and leaves the other kinds as they are. */
        if (f->type == OPARGS_MAP)
            map_free((struct opargs_map *)(void *)at);
        return 0;
    }
    switch (f->type) {
    case OPARGS_STRING: {
        char *s = NULL;
        int r;

        if (!json_is_string(v))
            return type_error(w, v, false, go_type(f, type, sizeof(type)));
        if ((r = copy_string(w, v, &s)) != 0)
            return r;
        free(*(char **)at);
        *(char **)at = s;
        return 0;
    }
    case OPARGS_INT64:
    case OPARGS_INT:
        if (!json_is_integer(v))
            return type_error(w, v, true, go_type(f, type, sizeof(type)));
        *(int64_t *)at = (int64_t)json_integer_value(v);
        return 0;
    case OPARGS_BOOL:
        if (!json_is_boolean(v))
            return type_error(w, v, false, go_type(f, type, sizeof(type)));
        *(bool *)at = json_is_true(v);
        return 0;
    case OPARGS_STRINGS:
        return set_strings(w, v, (struct opargs_strings *)(void *)at);
    case OPARGS_MAP:
        return set_map(w, v, (struct opargs_map *)(void *)at);
    case OPARGS_OBJECT:
        if (!json_is_object(v))
            return type_error(w, v, false, go_type(f, type, sizeof(type)));
        /* Into the struct as it is: a second key folding to it merges (Go). */
        return parse_members(w, f->sub, v, at);
    case OPARGS_RAW:
        break;
    }
    return fail(w, ERR_INVALID, "internal error");
}

/* The members of obj into out, a struct described by spec, with the field's name pushed on
 * w->path and spec as the innermost struct while its value is decoded (Go's object()). */
static int parse_members(struct walk *w, const struct opargs_spec *spec, const json_t *obj,
                         void *out)
{
    const struct opargs_spec *outer = w->cur;
    size_t len = strlen(w->path);
    const char *key;
    const json_t *v;

    /* In document order (jansson keeps it), as Go decodes: its first error is reported. */
    json_object_foreach((json_t *)obj, key, v) {
        for (size_t i = 0; i < spec->nfields; i++) {
            const struct opargs_field *f = &spec->fields[i];
            int r;

            if (strcasecmp(key, f->name) != 0)
                continue;
            /* The specs' names are short: a cut path would be a bug in a spec here. */
            snprintf(w->path + len, sizeof(w->path) - len, "%s%s", len > 0 ? "." : "", f->name);
            w->cur = spec;
            r = set_field(w, f, v, out);
            w->path[len] = '\0';
            w->cur = outer;
            if (r != 0)
                return r;
            break;
        }
    }
    return 0;
}

int opargs_parse(const struct opargs_spec *spec, const json_t *args, void *out, char *err,
                 size_t errlen)
{
    struct walk w = {spec, spec, "", err, errlen};
    char kind[48];

    memset(out, 0, spec->size);
    if (errlen > 0)
        err[0] = '\0';
    if (args == NULL)
        return fail(&w, ERR_INVALID, "unexpected end of JSON input");
    if (json_is_null(args))
        return 0;
    if (!json_is_object(args))
        return fail(&w, ERR_INVALID, "json: cannot unmarshal %s into Go value of type protocol.%s",
                    json_kind(args, false, kind, sizeof(kind)), spec->go_struct);
    return parse_members(&w, spec, args, out);
}

void opargs_free(const struct opargs_spec *spec, void *out)
{
    for (size_t i = 0; i < spec->nfields; i++) {
        char *at = (char *)out + spec->fields[i].offset;

        switch (spec->fields[i].type) {
        case OPARGS_STRING: free(*(char **)at); break;
        case OPARGS_STRINGS: strings_free((struct opargs_strings *)(void *)at); break;
        case OPARGS_MAP: map_free((struct opargs_map *)(void *)at); break;
        case OPARGS_OBJECT: opargs_free(spec->fields[i].sub, at); break;
        case OPARGS_RAW: json_decref(*(json_t **)at); break;
        case OPARGS_INT64:
        case OPARGS_INT:
        case OPARGS_BOOL: break;
        }
    }
    memset(out, 0, spec->size);
}
