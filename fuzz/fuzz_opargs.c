/*
 * fuzz_opargs.c - the args of the file operations (opargs.h: opargs_parse), read as
 * Go's encoding/json reads them into the Go runner's structs.
 *
 * Input: [op selector][JSON text of args, or nothing for missing args].
 *
 * Properties: a failure is one line that starts "invalid <op> args: "; a success
 * holds, for each field, the value of the last key in document order that equals the
 * field's name ignoring ASCII case and is not null (a reference written here with its
 * own case folding), or the default when there is none, and implies that no such key
 * has a value of the wrong JSON type; opargs_free leaves the struct zeroed.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "opargs.h"

static const struct opargs_spec *const specs[] = {&opargs_read, &opargs_write, &opargs_list,
                                                  &opargs_glob, &opargs_grep, &opargs_webfetch,
                                                  &opargs_sync_skill};

static bool same_name(const char *key, const char *name)
{
    for (; *key != '\0' && *name != '\0'; key++, name++) {
        char k = *key >= 'A' && *key <= 'Z' ? (char)(*key + 32) : *key;

        if (k != *name)
            return false;
    }
    return *key == '\0' && *name == '\0';
}

/* Whether v may fill a field of type t (null aside), as Go would take it. */
static bool fits(const json_t *v, enum opargs_type t)
{
    switch (t) {
    case OPARGS_STRING:
        return json_is_string(v) && memchr(json_string_value(v), '\0', json_string_length(v)) == NULL;
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
    }
    return false;
}

static void check_field(const struct opargs_field *f, const json_t *want, const char *at)
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
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct opargs_spec *spec;
    json_t *args = NULL;
    json_error_t je;
    char err[512], prefix[64], out[128];
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
    snprintf(prefix, sizeof(prefix), "invalid %s args: ", spec->op);
    if (r != 0) {
        FUZZ_CHECK(strncmp(err, prefix, strlen(prefix)) == 0, "error without its prefix: %s", err);
        FUZZ_CHECK(strchr(err, '\n') == NULL, "error of more than one line");
    } else {
        FUZZ_CHECK(args != NULL, "missing args accepted");
        for (size_t i = 0; i < spec->nfields; i++) {
            const struct opargs_field *f = &spec->fields[i];
            const json_t *want = NULL, *v;
            const char *key;

            if (json_is_object(args)) {
                json_object_foreach(args, key, v) {
                    if (!same_name(key, f->name) || json_is_null(v))
                        continue;
                    FUZZ_CHECK(fits(v, f->type), "%s: a value of the wrong type accepted",
                               f->name);
                    want = v;
                }
            }
            check_field(f, want, out + f->offset);
        }
    }
    opargs_free(spec, out);
    for (size_t i = 0; i < spec->size; i++)
        FUZZ_CHECK(out[i] == 0, "opargs_free left byte %zu set", i);
    json_decref(args);
    return 0;
}
