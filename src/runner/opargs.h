/*
 * opargs.h - the args of a task operation, read as Go's encoding/json reads them into
 * the Go runner's structs (RUNNER-OPS.md section 2.3), so that what is accepted and
 * every error text match it:
 *
 *   - keys match the fields case-insensitively (ASCII), the later of two that fold to
 *     the same field wins, unknown keys are ignored, null leaves the default;
 *   - a value of the wrong JSON type fails with Go's text, the first in document
 *     order: "invalid read args: json: cannot unmarshal string into Go struct field
 *     ReadArgs.offset of type int64"; a number that is not an integer for an integer
 *     field is "number <literal>";
 *   - args that are not an object fail as "... into Go value of type protocol.ReadArgs",
 *     and missing args as "invalid read args: unexpected end of JSON input".
 *
 * Deviations, where C strings or jansson differ from Go: a string holding a NUL byte is
 * refused ("invalid read args: path contains a NUL byte"); a non-integer number is
 * printed in its shortest round-trip form, not as written ("1e3" shows as "1000").
 */
#ifndef CREDBROKER_OPARGS_H
#define CREDBROKER_OPARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

enum opargs_type {
    OPARGS_STRING,  /* char *: NULL when not given (Go's "") */
    OPARGS_INT64,   /* int64_t */
    OPARGS_INT,     /* int64_t, for a Go int (64 bits on the Go runner's platforms) */
    OPARGS_BOOL,    /* bool */
    OPARGS_STRINGS, /* struct opargs_strings */
};

/* A []string: v NULL and n 0 when not given or null (Go's nil); a null element is "". */
struct opargs_strings {
    char **v;
    size_t n;
};

struct opargs_field {
    const char *name;      /* as the JSON tag, lower case */
    enum opargs_type type;
    size_t offset;         /* of the member in the args struct */
};

struct opargs_spec {
    const char *op;        /* "read", for "invalid read args" */
    const char *go_struct; /* "ReadArgs", for Go's error texts */
    const struct opargs_field *fields;
    size_t nfields;
    size_t size;           /* of the args struct */
};

/* The file operations' args (RUNNER-OPS.md section 5). */
struct read_args {
    char *path;
    int64_t offset, limit;
};
struct write_args {
    char *path, *content;
};
struct list_args {
    char *path;
    bool recursive;
    struct opargs_strings ignore;
};
struct glob_args {
    char *pattern;
};
struct grep_args {
    char *pattern;
    struct opargs_strings include;
};
/* sync_skill (section 10): Go's SyncSkillArgs. */
struct sync_skill_args {
    char *skill_name, *skill_dir, *zip_data, *checksum;
};

/* webfetch's (RUNNER-OPS.md 8). */
struct webfetch_args {
    char *url, *format;
    int64_t timeout; /* seconds */
};

extern const struct opargs_spec opargs_read, opargs_write, opargs_list, opargs_glob, opargs_grep;
extern const struct opargs_spec opargs_sync_skill;
extern const struct opargs_spec opargs_webfetch;

/*
 * Reads args (NULL: the message had none) into out, a struct of spec->size bytes that
 * is zeroed first. Returns 0, or ERR_INVALID / ERR_NOMEM with one line in err ("invalid
 * <op> args: ..."; it names fields and JSON kinds, never a value but a non-integer
 * number). Free with opargs_free (also on error).
 */
int opargs_parse(const struct opargs_spec *spec, const json_t *args, void *out, char *err,
                 size_t errlen) __attribute__((warn_unused_result));
/* Frees what opargs_parse allocated in out and zeroes it. */
void opargs_free(const struct opargs_spec *spec, void *out);

#endif
