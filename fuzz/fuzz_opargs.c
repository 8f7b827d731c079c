/*
 * fuzz_opargs.c - the args of the file and MCP operations and the mcp.call payload
 * (opargs.h: opargs_parse), read as Go's encoding/json reads them into the Go runner's
 * structs.
 *
 * Input: [op selector][JSON text of args, or nothing for missing args]. Selectors 0-6
 * are the file operations (the first seeds), 7 mcp_call, 8 mcp_list_tools, 9 the
 * mcp.call payload.
 *
 * Properties: a failure is one line that starts with the spec's prefix ("invalid <op>
 * args: ", "invalid mcp.call payload: ") and is one of Go's shapes: "unexpected end of
 * JSON input" only for missing args, "json: cannot unmarshal <kind> into Go value of
 * type protocol.<Struct>", "json: cannot unmarshal <kind> into Go struct field
 * <Struct>.<path> of type <type>" where the path is the JSON names of fields from the
 * root, <Struct> the struct holding the last one and <type> that field's Go type (or
 * "string" for an element of a []string or map[string]string), or "<path> contains a
 * NUL byte" for a field that holds strings. A success holds, for each field, what a
 * reference written here with its own case folding computes from the JSON: a scalar or
 * list the last key in document order that equals the field's name ignoring ASCII case
 * and is not null, or the default; a nested struct the merge of every such object in
 * order; a map Go's: null resets it to nil, each object adds its entries, the later
 * value of a key winning, a null value is ""; raw JSON the last such value, null
 * included, the very json_t. A success implies no such key has a value of the wrong
 * JSON type. opargs_free leaves the struct zeroed.
 *
 * And for a parsed MCP server config, its connection key (mcp_key.h): the canonical form
 * reads back as JSON with exactly the nine members in sorted order, map keys sorted,
 * holding exactly the config's values (so the form, and with it the key, tells any two
 * configs apart); the key is SHA-256 of the form; the maps' entries in reverse order give
 * the same key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "fuzz.h"
#include "mcp_key.h"
#include "mcp_key_internal.h"
#include "opargs.h"

static const struct opargs_spec *const specs[] = {
    &opargs_read, &opargs_write, &opargs_list, &opargs_glob, &opargs_grep, &opargs_webfetch,
    &opargs_sync_skill, &opargs_mcp_call, &opargs_mcp_list_tools, &opargs_mcp_call_payload};

static bool same_name(const char *key, const char *name)
{
    for (; *key != '\0' && *name != '\0'; key++, name++) {
        char k = *key >= 'A' && *key <= 'Z' ? (char)(*key + 32) : *key;

        if (k != *name)
            return false;
    }
    return *key == '\0' && *name == '\0';
}

static bool nul_free(const json_t *v)
{
    return memchr(json_string_value(v), '\0', json_string_length(v)) == NULL;
}

/* Whether v may fill a field of type t (null aside), as Go would take it; a nested
 * struct's members are judged field by field by check_struct. */
static bool fits(const json_t *v, enum opargs_type t)
{
    switch (t) {
    case OPARGS_STRING: return json_is_string(v) && nul_free(v);
    case OPARGS_INT64:
    case OPARGS_INT: return json_is_integer(v);
    case OPARGS_BOOL: return json_is_boolean(v);
    case OPARGS_STRINGS: {
        size_t i;
        const json_t *e;

        if (!json_is_array(v))
            return false;
        json_array_foreach(v, i, e) {
            if (!json_is_null(e) && !fits(e, OPARGS_STRING))
                return false;
        }
        return true;
    }
    case OPARGS_MAP: {
        const char *k;
        size_t klen;
        json_t *e;

        if (!json_is_object(v))
            return false;
        json_object_keylen_foreach((json_t *)v, k, klen, e) {
            if (memchr(k, '\0', klen) != NULL || (!json_is_null(e) && !fits(e, OPARGS_STRING)))
                return false;
        }
        return true;
    }
    case OPARGS_OBJECT: return json_is_object(v);
    case OPARGS_RAW: return true;
    }
    return false;
}

static void check_value(const struct opargs_field *f, const json_t *want, const char *at)
{
    switch (f->type) {
    case OPARGS_STRING: {
        const char *got = *(char *const *)at;

        if (want == NULL)
            FUZZ_CHECK(got == NULL, "%s: %s, expected none", f->name, got);
        else
            FUZZ_CHECK(got != NULL && strcmp(got, json_string_value(want)) == 0, "%s differs",
                       f->name);
        break;
    }
    case OPARGS_INT64:
    case OPARGS_INT:
        FUZZ_CHECK(*(const int64_t *)at == (want ? (int64_t)json_integer_value(want) : 0),
                   "%s differs", f->name);
        break;
    case OPARGS_BOOL:
        FUZZ_CHECK(*(const bool *)at == (want ? json_is_true(want) : false), "%s differs", f->name);
        break;
    case OPARGS_STRINGS: {
        const struct opargs_strings *l = (const struct opargs_strings *)(const void *)at;

        if (want == NULL) {
            FUZZ_CHECK(l->v == NULL && l->n == 0, "%s: a list, expected none", f->name);
            break;
        }
        FUZZ_CHECK(l->v != NULL && l->n == json_array_size(want), "%s: %zu items", f->name, l->n);
        for (size_t i = 0; i < l->n; i++) {
            const json_t *e = json_array_get(want, i);

            FUZZ_CHECK(strcmp(l->v[i], json_is_null(e) ? "" : json_string_value(e)) == 0,
                       "%s[%zu] differs", f->name, i);
        }
        break;
    }
    case OPARGS_MAP: {
        const struct opargs_map *m = (const struct opargs_map *)(const void *)at;

        /* want: the reference map as a JSON object of strings, NULL for Go's nil. */
        if (want == NULL) {
            FUZZ_CHECK(m->keys == NULL && m->values == NULL && m->n == 0,
                       "%s: a map, expected nil", f->name);
            break;
        }
        FUZZ_CHECK(m->keys != NULL && m->n == json_object_size(want), "%s: %zu entries", f->name,
                   m->n);
        for (size_t i = 0; i < m->n; i++) {
            const json_t *e = json_object_get(want, m->keys[i]);

            FUZZ_CHECK(e != NULL && strcmp(m->values[i], json_string_value(e)) == 0,
                       "%s entry %zu differs", f->name, i);
            for (size_t j = 0; j < i; j++)
                FUZZ_CHECK(strcmp(m->keys[i], m->keys[j]) != 0, "%s: key twice", f->name);
        }
        break;
    }
    case OPARGS_RAW:
        FUZZ_CHECK(*(json_t *const *)at == want, "%s: not the last value given", f->name);
        break;
    case OPARGS_OBJECT: break; /* check_struct recurses */
    }
}

/*
 * Checks the struct at out (described by spec) against the reference: the members of
 * the objects src[0..nsrc), in order, decoded into one struct as Go does for a struct
 * given by several keys folding to the same field.
 */
static void check_struct(const struct opargs_spec *spec, const json_t *const *src, size_t nsrc,
                         const char *out)
{
    for (size_t i = 0; i < spec->nfields; i++) {
        const struct opargs_field *f = &spec->fields[i];
        const json_t **sub;
        json_t *want = NULL, *map = NULL;
        size_t nsub = 0, nkeys = 1;

        for (size_t s = 0; s < nsrc; s++)
            nkeys += json_object_size(src[s]);
        /* room for every key of every source: each may be an object for this field */
        sub = fuzz_malloc(nkeys * sizeof(*sub));
        for (size_t s = 0; s < nsrc; s++) {
            const char *key;
            json_t *v;

            json_object_foreach((json_t *)src[s], key, v) {
                if (!same_name(key, f->name))
                    continue;
                if (f->type == OPARGS_RAW) {
                    want = v;
                    continue;
                }
                if (f->type == OPARGS_MAP && json_is_null(v)) {
                    json_decref(map);
                    map = NULL;
                    continue;
                }
                if (json_is_null(v))
                    continue;
                FUZZ_CHECK(fits(v, f->type), "%s: a value of the wrong type accepted", f->name);
                if (f->type == OPARGS_OBJECT) {
                    sub[nsub++] = v;
                } else if (f->type == OPARGS_MAP) {
                    const char *k;
                    json_t *e;

                    if (map == NULL && (map = json_object()) == NULL)
                        abort();
                    json_object_foreach(v, k, e) {
                        const char *val = json_is_null(e) ? "" : json_string_value(e);

                        if (json_object_set_new(map, k, json_string(val)) != 0)
                            abort();
                    }
                } else {
                    want = v;
                }
            }
        }
        if (f->type == OPARGS_OBJECT)
            check_struct(f->sub, sub, nsub, out + f->offset);
        else
            check_value(f, f->type == OPARGS_MAP ? map : want, out + f->offset);
        json_decref(map);
        free(sub);
    }
}

/* The field that a dotted path of JSON names reaches from spec, and the struct holding it
 * in *holder; NULL if none. */
static const struct opargs_field *resolve(const struct opargs_spec *spec, const char *path,
                                          size_t len, const struct opargs_spec **holder)
{
    while (spec != NULL) {
        const char *dot = memchr(path, '.', len);
        size_t n = dot != NULL ? (size_t)(dot - path) : len;
        const struct opargs_field *f = NULL;

        for (size_t i = 0; i < spec->nfields && f == NULL; i++)
            if (strlen(spec->fields[i].name) == n && memcmp(spec->fields[i].name, path, n) == 0)
                f = &spec->fields[i];
        if (f == NULL || dot == NULL) {
            *holder = spec;
            return f;
        }
        if (f->type != OPARGS_OBJECT)
            return NULL;
        spec = f->sub;
        path = dot + 1;
        len -= n + 1;
    }
    return NULL;
}

static bool holds_strings(enum opargs_type t)
{
    return t == OPARGS_STRING || t == OPARGS_STRINGS || t == OPARGS_MAP;
}

/* The error after its prefix is one of Go's shapes (the header's list). */
static void check_error(const struct opargs_spec *spec, const char *e, bool missing)
{
    static const char *const kinds[] = {"string", "bool", "array", "object", "number"};
    static const char unmarshal[] = "json: cannot unmarshal ";
    const struct opargs_field *f;
    const struct opargs_spec *holder = NULL;
    const char *into, *end;
    char want[160];
    bool kind_ok = false, literal;

    if (strcmp(e, "unexpected end of JSON input") == 0) {
        FUZZ_CHECK(missing, "end of input with args");
        return;
    }
    if (strcmp(e, "out of memory") == 0)
        return;
    if ((end = strstr(e, " contains a NUL byte")) != NULL && end[20] == '\0') {
        f = resolve(spec, e, (size_t)(end - e), &holder);
        FUZZ_CHECK(f != NULL && holds_strings(f->type), "NUL byte in %s", e);
        return;
    }
    FUZZ_CHECK(strncmp(e, unmarshal, sizeof(unmarshal) - 1) == 0, "not Go's text: %s", e);
    e += sizeof(unmarshal) - 1;
    FUZZ_CHECK((into = strstr(e, " into Go ")) != NULL, "no target: %s", e);
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        kind_ok |= strlen(kinds[i]) == (size_t)(into - e) &&
                   strncmp(e, kinds[i], strlen(kinds[i])) == 0;
    /* "number <literal>": a non-integer for an integer field, checked below */
    literal = into - e > 7 && strncmp(e, "number ", 7) == 0;
    FUZZ_CHECK(kind_ok || literal, "kind: %s", e);
    into += 9;
    snprintf(want, sizeof(want), "value of type protocol.%s", spec->go_struct);
    if (strcmp(into, want) == 0)
        return;
    FUZZ_CHECK(strncmp(into, "struct field ", 13) == 0, "neither value nor field: %s", into);
    into += 13;
    FUZZ_CHECK((end = strstr(into, " of type ")) != NULL, "no type: %s", into);
    {
        const char *dot = memchr(into, '.', (size_t)(end - into));
        const char *type = end + 9;
        char sub[80];

        FUZZ_CHECK(dot != NULL, "no struct: %s", into);
        f = resolve(spec, dot + 1, (size_t)(end - dot - 1), &holder);
        FUZZ_CHECK(f != NULL && strlen(holder->go_struct) == (size_t)(dot - into) &&
                       strncmp(into, holder->go_struct, (size_t)(dot - into)) == 0,
                   "no such field or wrong struct: %s", into);
        if (literal)
            FUZZ_CHECK(f->type == OPARGS_INT64 || f->type == OPARGS_INT, "a literal for %s",
                       f->name);
        switch (f->type) {
        case OPARGS_STRING: FUZZ_CHECK(strcmp(type, "string") == 0, "type %s", type); break;
        case OPARGS_INT64: FUZZ_CHECK(strcmp(type, "int64") == 0, "type %s", type); break;
        case OPARGS_INT: FUZZ_CHECK(strcmp(type, "int") == 0, "type %s", type); break;
        case OPARGS_BOOL: FUZZ_CHECK(strcmp(type, "bool") == 0, "type %s", type); break;
        case OPARGS_STRINGS:
            FUZZ_CHECK(strcmp(type, "[]string") == 0 || strcmp(type, "string") == 0, "type %s",
                       type);
            break;
        case OPARGS_MAP:
            FUZZ_CHECK(strcmp(type, "map[string]string") == 0 || strcmp(type, "string") == 0,
                       "type %s", type);
            break;
        case OPARGS_OBJECT:
            snprintf(sub, sizeof(sub), "protocol.%s", f->sub->go_struct);
            FUZZ_CHECK(strcmp(type, sub) == 0, "type %s", type);
            break;
        case OPARGS_RAW: FUZZ_CHECK(false, "raw JSON refused"); break;
        }
    }
}

/* A map of the canonical form against the parsed map: the same entries, keys ascending. */
static void check_form_map(const json_t *o, const struct opargs_map *m, const char *name)
{
    const char *key, *prev = NULL;
    json_t *v;

    FUZZ_CHECK(json_is_object(o) && json_object_size(o) == m->n, "form: %s has other entries",
               name);
    json_object_foreach((json_t *)o, key, v) {
        FUZZ_CHECK(prev == NULL || strcmp(prev, key) < 0, "form: %s keys not sorted", name);
        prev = key;
    }
    for (size_t i = 0; i < m->n; i++) {
        const json_t *e = json_object_get(o, m->keys[i]);

        FUZZ_CHECK(json_is_string(e) && strcmp(json_string_value(e), m->values[i]) == 0,
                   "form: %s entry %zu differs", name, i);
    }
}

static void check_form_string(const json_t *form, const char *member, const char *want)
{
    const json_t *v = json_object_get(form, member);

    FUZZ_CHECK(json_is_string(v) && strcmp(json_string_value(v), want != NULL ? want : "") == 0,
               "form: %s differs", member);
}

/* A copy of m with its entries in reverse order (the arrays only: the strings are m's). */
static struct opargs_map reversed(const struct opargs_map *m)
{
    struct opargs_map r = {NULL, NULL, m->n};

    r.keys = fuzz_malloc((m->n + 1) * sizeof(char *));
    r.values = fuzz_malloc((m->n + 1) * sizeof(char *));
    for (size_t i = 0; i < m->n; i++) {
        r.keys[i] = m->keys[m->n - 1 - i];
        r.values[i] = m->values[m->n - 1 - i];
    }
    return r;
}

static void check_key(const struct mcp_server_args *s)
{
    static const char *const members[] = {"args", "command", "dynamic_headers", "env", "headers",
                                          "name", "tls_skip_verify", "transport", "url"};
    struct mcp_server_args rev = *s;
    uint8_t key[MCP_KEY_LEN], digest[MCP_KEY_LEN], key_rev[MCP_KEY_LEN];
    unsigned int dlen = 0;
    const char *member;
    json_error_t je;
    json_t *form, *v;
    size_t len, i = 0;
    char *text;

    FUZZ_CHECK(mcp_key__form(s, &text, &len) == 0, "no canonical form");
    form = json_loadb(text, len, 0, &je);
    FUZZ_CHECK(json_is_object(form) && json_object_size(form) == 9, "form not the 9 members: %s",
               form == NULL ? je.text : "");
    json_object_foreach(form, member, v) {
        FUZZ_CHECK(strcmp(member, members[i++]) == 0, "form: %s out of order", member);
    }
    check_form_string(form, "name", s->name);
    check_form_string(form, "transport", s->transport);
    check_form_string(form, "command", s->command);
    check_form_string(form, "url", s->url);
    v = json_object_get(form, "args");
    FUZZ_CHECK(json_is_array(v) && json_array_size(v) == s->args.n, "form: args differ");
    for (i = 0; i < s->args.n; i++)
        FUZZ_CHECK(strcmp(json_string_value(json_array_get(v, i)), s->args.v[i]) == 0,
                   "form: args[%zu] differs", i);
    check_form_map(json_object_get(form, "env"), &s->env, "env");
    check_form_map(json_object_get(form, "headers"), &s->headers, "headers");
    check_form_map(json_object_get(form, "dynamic_headers"), &s->dynamic_headers,
                   "dynamic_headers");
    FUZZ_CHECK(json_is_boolean(json_object_get(form, "tls_skip_verify")) &&
                   json_is_true(json_object_get(form, "tls_skip_verify")) == s->tls_skip_verify,
               "form: tls_skip_verify differs");
    json_decref(form);
    FUZZ_CHECK(mcp_key_compute(s, key) == 0, "no key");
    FUZZ_CHECK(EVP_Digest(text, len, digest, &dlen, EVP_sha256(), NULL) == 1, "no digest");
    FUZZ_CHECK(memcmp(key, digest, MCP_KEY_LEN) == 0, "key is not SHA-256 of the form");
    rev.env = reversed(&s->env);
    rev.headers = reversed(&s->headers);
    rev.dynamic_headers = reversed(&s->dynamic_headers);
    FUZZ_CHECK(mcp_key_compute(&rev, key_rev) == 0, "no key");
    FUZZ_CHECK(memcmp(key, key_rev, MCP_KEY_LEN) == 0, "map order changed the key");
    free(rev.env.keys);
    free(rev.env.values);
    free(rev.headers.keys);
    free(rev.headers.values);
    free(rev.dynamic_headers.keys);
    free(rev.dynamic_headers.values);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct opargs_spec *spec;
    json_t *args = NULL;
    json_error_t je;
    char err[512], prefix[64];
    _Alignas(max_align_t) char out[512];
    int r;

    if (size < 1)
        return 0;
    spec = specs[data[0] % (sizeof(specs) / sizeof(specs[0]))];
    FUZZ_CHECK(spec->size <= sizeof(out), "args struct of %zu bytes", spec->size);
    if (size > 1 &&
        (args = json_loadb((const char *)data + 1, size - 1,
                           JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DISABLE_EOF_CHECK, &je)) == NULL)
        return 0; /* not JSON: the message decoder refuses it before us */
    r = opargs_parse(spec, args, out, err, sizeof(err));
    if (spec->prefix != NULL)
        snprintf(prefix, sizeof(prefix), "%s", spec->prefix);
    else
        snprintf(prefix, sizeof(prefix), "invalid %s args: ", spec->op);
    if (r != 0) {
        FUZZ_CHECK(strncmp(err, prefix, strlen(prefix)) == 0, "error without its prefix: %s", err);
        FUZZ_CHECK(strchr(err, '\n') == NULL, "error of more than one line");
        check_error(spec, err + strlen(prefix), args == NULL);
    } else {
        FUZZ_CHECK(args != NULL, "missing args accepted");
        check_struct(spec, (const json_t *const *)&args, json_is_object(args) ? 1 : 0, out);
        for (size_t i = 0; i < spec->nfields; i++)
            if (spec->fields[i].type == OPARGS_OBJECT &&
                strcmp(spec->fields[i].sub->go_struct, "MCPServerConfig") == 0)
                check_key((const struct mcp_server_args *)(const void *)(out +
                                                                         spec->fields[i].offset));
    }
    opargs_free(spec, out);
    for (size_t i = 0; i < spec->size; i++)
        FUZZ_CHECK(out[i] == 0, "opargs_free left byte %zu set", i);
    json_decref(args);
    return 0;
}
