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
 *
 * Nested structs, maps and raw JSON (the MCP ops, RUNNER-OPS.md 9) follow Go's
 * encoding/json decode.go (checked against Go 1.21-1.24): object() pushes the matched
 * field's JSON name on errorContext.FieldStack and sets errorContext.Struct to the
 * struct being decoded, restores both after the value, and does neither for a map's
 * keys; addErrorContext() then fills UnmarshalTypeError's Struct with
 * errorContext.Struct.Name() (no package) and Field with the stack joined by '.'; and
 * Error() prints "Go struct field <Struct>.<Field> of type <Type.String()>" (a named
 * type with its package). So:
 *
 *   - a member of a nested struct: "invalid mcp_call args: json: cannot unmarshal number
 *     into Go struct field MCPServerConfig.server.name of type string";
 *   - a nested struct that is not an object: "... unmarshal string into Go struct field
 *     MCPCallArgs.server of type protocol.MCPServerConfig";
 *   - a map value that is not a string: "... Go struct field MCPServerConfig.server.env
 *     of type string" (no map key in the path); a map that is not an object: "... of type
 *     map[string]string".
 *
 * Go decodes a repeated key into what is already there, so two keys folding to one
 * nested struct merge (the later key's members win), as do two maps (the later value
 * of one map key wins); a slice is replaced. null leaves a string, number, bool or
 * struct as it is, but sets a map to nil (reflect's SetZero), and a map value null
 * stores "" under its key. XXX Go's null sets a slice to nil too; OPARGS_STRINGS keeps
 * its earlier behaviour and leaves it (it differs only when an earlier key folding to
 * the same field gave a list).
 *
 * A map key or value holding a NUL byte is refused like a string ("server.env contains
 * a NUL byte"): Go would keep it, and drop an env entry with a NUL only when starting the
 * server (RUNNER-OPS.md 9.1), or fail the HTTP request for a header; a C string cannot
 * hold it. (jansson's decoder already refuses a NUL in any object key, so only a tree
 * built by hand gets to the key check.) Keys with '=' are kept: the env user drops them.
 *
 * From a json_t, a value that a duplicate key replaced in the same object (jansson keeps
 * the last) is never seen, so its type error, which Go would report, is not.
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
    OPARGS_MAP,     /* struct opargs_map: a Go map[string]string */
    OPARGS_OBJECT,  /* a nested Go struct, the member described by the field's sub spec */
    OPARGS_RAW,     /* json_t *: a Go json.RawMessage; any JSON value is taken, null too */
};

/* A []string: v NULL and n 0 when not given or null (Go's nil); a null element is "". */
struct opargs_strings {
    char **v;
    size_t n;
};

/*
 * A map[string]string: keys and values NULL and n 0 when not given or null (Go's nil);
 * keys non-NULL once an object was given, even {} (Go's empty map). Keys are unique,
 * compared byte for byte (Go's map keys are case-sensitive); keys[i] maps to values[i];
 * a null value is "". Order: the first appearance of each key.
 */
struct opargs_map {
    char **keys, **values;
    size_t n;
};

struct opargs_spec;

struct opargs_field {
    const char *name;      /* as the JSON tag, lower case */
    enum opargs_type type;
    size_t offset;         /* of the member in the args struct */
    const struct opargs_spec *sub; /* OPARGS_OBJECT: the nested struct; else NULL */
};

struct opargs_spec {
    const char *op;        /* "read", for "invalid read args" */
    const char *go_struct; /* "ReadArgs", for Go's error texts */
    const struct opargs_field *fields;
    size_t nfields;
    size_t size;           /* of the args struct */
    /* What every error starts with, when not "invalid <op> args: " (a message payload,
     * "invalid mcp.call payload: "). NULL for the operations' args. */
    const char *prefix;
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

/* Go's MCPServerConfig (RUNNER-OPS.md 9.1; protocol/messages.go at 311e34c), with the
 * runner's tls_skip_verify added (not in 311e34c's struct: 9.1 "new, optional"). */
struct mcp_server_args {
    char *name, *transport, *command, *url;
    struct opargs_strings args;
    struct opargs_map env, headers, dynamic_headers;
    bool tls_skip_verify;
};
/* MCPCallArgs (9.5): args is the tool arguments as sent, any JSON value (the caller
 * refuses a non-object); NULL when absent, a JSON null when null (Go's RawMessage gets
 * the bytes "null"): mcp_call takes both as {}. timeout 0 when not given (60 applies). */
struct mcp_call_args {
    struct mcp_server_args server;
    char *tool_name;
    json_t *args;
    int64_t timeout; /* seconds, a Go int */
};
/* MCPListToolsArgs (9.6). */
struct mcp_list_tools_args {
    struct mcp_server_args server;
};
/* The mcp.call message's payload, MCPCallPayload (9.7): its errors read "invalid mcp.call
 * payload: ...", and one that is not an object "... Go value of type
 * protocol.MCPCallPayload". Its server, tool_name and arguments are read into call (as
 * server, tool_name and args; call.timeout stays 0, the default), the first member, so
 * the operation runs the payload as an mcp_call's args (fileop_mcp.c). */
struct mcp_call_payload {
    struct mcp_call_args call;
    char *call_id;
};

extern const struct opargs_spec opargs_mcp_call, opargs_mcp_list_tools;
extern const struct opargs_spec opargs_mcp_call_payload;

/*
 * Reads args (NULL: the message had none) into out, a struct of spec->size bytes that
 * is zeroed first. Returns 0, or ERR_INVALID / ERR_NOMEM with one line in err ("invalid
 * <op> args: ..." or spec->prefix; it names fields and JSON kinds, never a value but a
 * non-integer number, never a map key). Free with opargs_free (also on error). An
 * OPARGS_RAW member holds a reference to the value inside args (json_incref): it stays
 * valid after args is released.
 */
int opargs_parse(const struct opargs_spec *spec, const json_t *args, void *out, char *err,
                 size_t errlen) __attribute__((warn_unused_result));
/* Frees what opargs_parse allocated in out (nested structs, maps, raw JSON references
 * too) and zeroes it. */
void opargs_free(const struct opargs_spec *spec, void *out);

#endif
