/*
 * proto.h - the messages between the runner and the platform (DESIGN.md section 6).
 *
 * Every message is a JSON object {"id", "type", "payload", "timestamp"}. This module
 * turns received text into a struct proto_in, and builds the text of the messages the
 * runner sends. It is pure: no I/O, no sockets, no event loop. Framing, reconnecting
 * and running tasks belong to the caller.
 *
 * A task.request may carry a credential key (args.credential.key). Decoding moves it
 * into the secret arena at once and wipes every other copy: the received text, and
 * (after proto_init) every block jansson frees. Error texts never contain a key.
 */
#ifndef CREDBROKER_PROTO_H
#define CREDBROKER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct secret;

/* Largest message proto_decode accepts; the transport normally caps it lower. */
#define PROTO_MSG_MAX (64u * 1024 * 1024)
/* bash timeout: default and upper bound, in seconds (the lower bound is "> 0"). */
#define PROTO_BASH_TIMEOUT_DEFAULT_S 120
#define PROTO_BASH_TIMEOUT_MAX_S 86400

/*
 * Installs jansson allocation functions that zero every block before freeing it, so
 * no JSON text or value (a credential) lingers in freed heap. Blocks still come from
 * malloc(), so text from json_dumps() is released with free(), and blocks allocated
 * before the call are freed safely too. Call once at start, before threads; idempotent.
 */
void proto_init(void);

enum proto_type {
    PROTO_UNKNOWN,
    PROTO_WELCOME,
    PROTO_TASK_REQUEST,
    PROTO_TASK_CANCEL,
    PROTO_MCP_CALL, /* RUNNER-OPS.md 9.7 */
};

/* A decoded incoming message. Every pointer is owned by the struct: release it all with
 * proto_in_free(). Strings are NUL-terminated and hold no embedded NUL. */
struct proto_in {
    enum proto_type type;
    char type_name[64]; /* as received (truncated, non-printables as '?'), for logs */
    char *id;           /* may be NULL */
    /* welcome: worknode_id and name may be NULL; labels is always an object */
    char *worknode_id, *name;
    json_t *labels;
    /* task.request: task_id and operation are set; trace_id and source_instance_id may be
     * NULL; args is as sent (NULL when missing, any JSON value), an object without
     * args.credential.key.
     * task.cancel: task_id is set.
     * mcp.call: call_id is set ("" when the payload has none, as Go reads it) and args is
     * the whole payload, for the operation to read (opargs_mcp_call_payload). */
    char *task_id, *trace_id, *source_instance_id, *operation;
    json_t *args;
    char *call_id;
    struct secret *credential_key; /* args.credential.key, moved to the secret arena; or NULL */
    char *credential_base_url;     /* args.credential.base_url, or NULL */
};

/*
 * Decodes one message of len bytes (need not be NUL-terminated). text is modified:
 * every byte is wiped (explicit_bzero) before return, on every path, since it may
 * carry a credential. out is overwritten (not freed) first.
 *
 * A task.request's args.credential.key (a non-empty string without control bytes) is
 * removed from args, its jansson copy wiped, and placed in out->credential_key. A
 * credential that is null, or an object without a key or with key "", means none.
 *
 * Returns 0, or a negative code with one line in err (never containing a key or any
 * value from the message): ERR_INVALID for malformed JSON, a non-object, a missing or
 * ill-typed field, or a string with an embedded NUL; ERR_KEY_* for an unusable key;
 * ERR_TOO_LARGE over PROTO_MSG_MAX; ERR_NOMEM; or -errno from the secret arena.
 * An mcp.call whose call_id (matched without case, as Go's decoder does) is not a string
 * is an error: its result could not be addressed.
 * Optional fields may be absent or null; any other type is an error; unknown members
 * and the timestamp are ignored. Unknown types decode fine as PROTO_UNKNOWN (only
 * type_name and id are kept; the payload is not looked at).
 * On error, out keeps what was decoded before the failure (type and, when valid,
 * task_id or call_id), so the caller can still answer the task. Caller frees with proto_in_free
 * (also on error).
 */
int proto_decode(char *text, size_t len, struct proto_in *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Frees every member (wiping the strings) and leaves m zeroed. Accepts NULL. */
void proto_in_free(struct proto_in *m);

struct bash_args {
    char *command;       /* non-empty, no embedded NUL */
    char *workdir;       /* NULL when absent, null or "" */
    uint64_t timeout_ms; /* > 0 and <= PROTO_BASH_TIMEOUT_MAX_S * 1000 */
    bool stream;         /* send task.output chunks while running */
    /* env (RUNNER-OPS.md 6): names ([A-Za-z_][A-Za-z0-9_]*) and values, n of each, in the
     * message's order; never logged */
    char **env_names, **env_values;
    size_t nenv;
};

/*
 * Reads the args of operation "bash": command (string, required), workdir (string), env
 * (an object of strings: each name must be a shell variable name, no value may hold a
 * NUL; errors as "invalid bash args: env: ..."; the broker's own names are the caller's
 * to refuse: proto_bash_env_name_reserved),
 * timeout (number of seconds, fractions allowed: > 0 and <= PROTO_BASH_TIMEOUT_MAX_S;
 * absent or null = default_timeout_ms, or PROTO_BASH_TIMEOUT_DEFAULT_S if that is 0),
 * stream (bool, default false). Unknown members (such as credential) are ignored.
 * out is overwritten first. Returns 0, or ERR_INVALID / ERR_NOMEM with one line in err
 * (never a value from args). Caller frees with bash_args_free (also on error).
 */
int proto_bash_args(const json_t *args, uint64_t default_timeout_ms, struct bash_args *out,
                    char *err, size_t errlen) __attribute__((warn_unused_result));
/* Frees (wiping the command and the env values, which may embed a token) and zeroes a.
 * Accepts NULL. */
void bash_args_free(struct bash_args *a);
/* Whether a task under the credential broker may not set name through env: the broker's
 * variables and every dynamic-loader one (LD_*), which could redirect or bypass it. */
bool proto_bash_env_name_reserved(const char *name);

/*
 * Outgoing messages. Each returns malloc'd compact JSON text, NUL-terminated (caller
 * frees with free()), or NULL on allocation failure or if no random id could be had.
 * id is a fresh random id (32 hex digits), timestamp is now in unix ms. NULL strings
 * are sent as "", and strings that are not valid UTF-8 are sanitized as by
 * proto_utf8_sanitize. The json_t arguments are borrowed: not modified, not freed.
 */
struct proto_heartbeat {
    const char *worknode_id, *name, *version;
    const json_t *labels;      /* NULL = {} */
    const json_t *environment; /* NULL = {}; e.g. os, arch, hostname, kernel, broker_supported */
};
char *proto_encode_heartbeat(const struct proto_heartbeat *hb) __attribute__((warn_unused_result));
/* stream is "stdout" or "stderr"; data is arbitrary bytes (sanitized to UTF-8). */
char *proto_encode_task_output(const char *task_id, const char *stream, const uint8_t *data,
                               size_t len) __attribute__((warn_unused_result));
struct proto_task_result {
    const char *task_id, *source_instance_id;
    bool success;
    const json_t *result; /* NULL = JSON null */
    const char *error;    /* NULL = "" */
    int exit_code;
};
char *proto_encode_task_result(const struct proto_task_result *r)
    __attribute__((warn_unused_result));
/* mcp.result (RUNNER-OPS.md 9.7): {call_id, success, result?, error?}, result and error
 * left out when NULL / "" (Go's omitempty). */
char *proto_encode_mcp_result(const char *call_id, bool success, const json_t *result,
                              const char *error) __attribute__((warn_unused_result));

/* A bash task's result (RUNNER-OPS.md 6), its stdout already through section 4. */
struct proto_bash_output {
    const uint8_t *out, *err;     /* any bytes: invalid UTF-8 becomes U+FFFD, NUL \u0000 */
    size_t out_len, err_len;
    bool out_capped, err_capped;  /* tasks.output_cap cut the capture: *_truncated */
    int exit_code;
    bool truncated;               /* section 4 spilled stdout */
    const char *file_path;        /* where it went, or NULL */
    int64_t total_size;           /* stdout's whole length; omitted when 0 */
    size_t max_bytes;             /* what the result may take in its message (2.7) */
};
/*
 * Returns a new reference to the bash result object {"stdout", "stderr", "exit_code",
 * "stdout_truncated", "stderr_truncated", "truncated"?, "file_path"?, "total_size"?}, or
 * NULL on allocation failure. When stdout and stderr would not fit in max_bytes, stderr
 * (then stdout, which section 4 normally keeps small) is cut at the end with
 * "\n... [stderr truncated]" and truncated set. Caller releases with json_decref().
 */
json_t *proto_bash_result(const struct proto_bash_output *b) __attribute__((warn_unused_result));

/*
 * Returns the valid-UTF-8 form of data[0..len) in a malloc'd, NUL-terminated buffer
 * (caller frees with free()), its length (without the NUL) in *out_len; or NULL on
 * allocation failure. Each byte that is not part of a well-formed sequence (a stray byte,
 * a truncated sequence, an overlong form, a surrogate, a code point over U+10FFFF: the
 * Unicode Standard's Table 3-7) becomes one U+FFFD, as Go's encoding/json does
 * (RUNNER-OPS.md 2.6); valid bytes, NUL included, are kept. out_len may be NULL.
 */
char *proto_utf8_sanitize(const uint8_t *data, size_t len, size_t *out_len)
    __attribute__((warn_unused_result));
/* A message id: PROTO_ID_LEN random lowercase hex digits and a NUL in id. Returns 0 or
 * -errno. The spill files of section 4 take their <id8> from it, as the Go runner takes
 * its from the message-id generator. */
#define PROTO_ID_LEN 32
int proto_random_id(char id[PROTO_ID_LEN + 1]) __attribute__((warn_unused_result));

/* A new JSON string of data[0..len), sanitized as by proto_utf8_sanitize; NULL on
 * allocation failure. */
json_t *proto_json_bytes(const uint8_t *data, size_t len) __attribute__((warn_unused_result));
/* An upper bound of the bytes data[0..len) takes in compact JSON as a string, quotes
 * included, whatever it holds (escapes, U+FFFD for invalid bytes): for the message
 * ceiling (RUNNER-OPS.md 2.7) without encoding first. */
size_t proto_json_string_bound(const uint8_t *data, size_t len);

#endif
