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

#define FIELD(s, name, type) {#name, type, offsetof(struct s, name)}
#define SPEC(op, go, s, fields)                                                                \
    const struct opargs_spec opargs_##op = {#op, go, fields, sizeof(fields) / sizeof(fields[0]),  \
                                            sizeof(struct s)}

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

static int fail(const struct opargs_spec *spec, int r, char *err, size_t errlen,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int fail(const struct opargs_spec *spec, int r, char *err, size_t errlen,
                const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(err, errlen, "invalid %s args: ", spec->op);

    if (n >= 0 && (size_t)n < errlen) {
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
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

static const char *go_type(enum opargs_type t)
{
    switch (t) {
    case OPARGS_STRING: return "string";
    case OPARGS_INT64: return "int64";
    case OPARGS_INT: return "int";
    case OPARGS_BOOL: return "bool";
    case OPARGS_STRINGS: return "[]string";
    }
    return "?";
}

static int type_error(const struct opargs_spec *spec, const struct opargs_field *f,
                      const json_t *v, const char *type, char *err, size_t errlen)
{
    char kind[48];

    return fail(spec, ERR_INVALID, err, errlen,
                "json: cannot unmarshal %s into Go struct field %s.%s of type %s",
                json_kind(v, f->type == OPARGS_INT64 || f->type == OPARGS_INT, kind, sizeof(kind)),
                spec->go_struct,
                f->name, type);
}

/* A JSON string as a C string: NULL with an error when it holds a NUL byte. */
static int copy_string(const struct opargs_spec *spec, const struct opargs_field *f,
                       const json_t *v, char **out, char *err, size_t errlen)
{
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);

    if (memchr(s, '\0', len) != NULL)
        return fail(spec, ERR_INVALID, err, errlen, "%s contains a NUL byte", f->name);
    if ((*out = strdup(s)) == NULL)
        return fail(spec, ERR_NOMEM, err, errlen, "out of memory");
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

static int set_strings(const struct opargs_spec *spec, const struct opargs_field *f,
                       const json_t *v, struct opargs_strings *out, char *err, size_t errlen)
{
    struct opargs_strings l = {NULL, 0};
    size_t n = json_array_size(v);
    int r = 0;

    if (!json_is_array(v))
        return type_error(spec, f, v, "[]string", err, errlen);
    /* Go makes an empty, non-nil slice for []: v is never NULL once an array was given. */
    if ((l.v = calloc(n + 1, sizeof(char *))) == NULL)
        return fail(spec, ERR_NOMEM, err, errlen, "out of memory");
    for (size_t i = 0; i < n && r == 0; i++) {
        const json_t *e = json_array_get(v, i);

        if (json_is_null(e))
            r = (l.v[i] = strdup("")) == NULL ? fail(spec, ERR_NOMEM, err, errlen, "out of memory")
                                              : 0;
        else if (!json_is_string(e))
            r = type_error(spec, f, e, "string", err, errlen);
        else
            r = copy_string(spec, f, e, &l.v[i], err, errlen);
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

static int set_field(const struct opargs_spec *spec, const struct opargs_field *f, const json_t *v,
                     void *out, char *err, size_t errlen)
{
    char *at = (char *)out + f->offset;

    if (json_is_null(v))
        return 0; /* Go: null leaves the field as it is */
    switch (f->type) {
    case OPARGS_STRING: {
        char *s = NULL;
        int r;

        if (!json_is_string(v))
            return type_error(spec, f, v, go_type(f->type), err, errlen);
        if ((r = copy_string(spec, f, v, &s, err, errlen)) != 0)
            return r;
        free(*(char **)at);
        *(char **)at = s;
        return 0;
    }
    case OPARGS_INT64:
    case OPARGS_INT:
        if (!json_is_integer(v))
            return type_error(spec, f, v, go_type(f->type), err, errlen);
        *(int64_t *)at = (int64_t)json_integer_value(v);
        return 0;
    case OPARGS_BOOL:
        if (!json_is_boolean(v))
            return type_error(spec, f, v, go_type(f->type), err, errlen);
        *(bool *)at = json_is_true(v);
        return 0;
    case OPARGS_STRINGS:
        return set_strings(spec, f, v, (struct opargs_strings *)(void *)at, err, errlen);
    }
    return fail(spec, ERR_INVALID, err, errlen, "internal error");
}

int opargs_parse(const struct opargs_spec *spec, const json_t *args, void *out, char *err,
                 size_t errlen)
{
    const char *key;
    const json_t *v;
    char kind[48];

    memset(out, 0, spec->size);
    if (errlen > 0)
        err[0] = '\0';
    if (args == NULL)
        return fail(spec, ERR_INVALID, err, errlen, "unexpected end of JSON input");
    if (json_is_null(args))
        return 0;
    if (!json_is_object(args))
        return fail(spec, ERR_INVALID, err, errlen,
                    "json: cannot unmarshal %s into Go value of type protocol.%s",
                    json_kind(args, false, kind, sizeof(kind)), spec->go_struct);
    /* In document order (jansson keeps it), as Go decodes: its first error is reported. */
    json_object_foreach((json_t *)args, key, v) {
        for (size_t i = 0; i < spec->nfields; i++) {
            int r;

            if (strcasecmp(key, spec->fields[i].name) != 0)
                continue;
            if ((r = set_field(spec, &spec->fields[i], v, out, err, errlen)) != 0)
                return r;
            break;
        }
    }
    return 0;
}

void opargs_free(const struct opargs_spec *spec, void *out)
{
    for (size_t i = 0; i < spec->nfields; i++) {
        char *at = (char *)out + spec->fields[i].offset;

        if (spec->fields[i].type == OPARGS_STRING)
            free(*(char **)at);
        else if (spec->fields[i].type == OPARGS_STRINGS)
            strings_free((struct opargs_strings *)(void *)at);
    }
    memset(out, 0, spec->size);
}
