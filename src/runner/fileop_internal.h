/*
 * fileop_internal.h - what the modules of the file operations share (fileop.c: the
 * operation's life on the loop and the pool, and Go's texts; fileop_file.c: read and
 * write; fileop_walk.c: list and glob; fileop_grep.c: grep; fileop_skill.c: sync_skill).
 * Nothing outside them includes this.
 */
#ifndef CREDBROKER_FILEOP_INTERNAL_H
#define CREDBROKER_FILEOP_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>
#include <uv.h>

#include "fileop.h"
#include "opargs.h"

#define FILEOP_CHUNK (1024 * 1024) /* read between two looks at the cancel flag */
#define FILEOP_ERROR_MAX 1024

struct fileop;
struct grep_hit;
struct grep_rg;
struct outspill_result;
struct mcp_wait;
struct mcp_session;
struct mcp_op;

struct list_entry {
    char *path; /* relative to the root's real path */
    bool is_dir;
    int64_t size;
};

/* One operation: its args, its work (on the pool) and its result (on the loop). An
 * operation that may run elsewhere first (grep's rg) has a start, which returns 1 when it
 * queues the work itself later (fileop__queue), or 0 to have it queued now; its cancel
 * and release hooks stop and free what start made. */
struct fileop_kind {
    const char *name;
    const struct opargs_spec *spec;
    void (*work)(struct fileop *op);
    json_t *(*result)(const struct fileop *op);
    int (*start)(uv_loop_t *loop, struct fileop *op);
    void (*cancel)(struct fileop *op);
    void (*release)(struct fileop *op);
};

/* grep's state (fileop_grep.c). */
struct fileop_grep {
    struct grep_hit *hits;
    size_t nhits, cap;
    size_t escaped_matches;  /* bounds of what the hits take in the result's JSON */
    size_t escaped_content;
    size_t content_len;      /* the raw content's bytes */
    bool failed;             /* out of memory: the op has failed */
    bool engine_done;        /* rg ran: the work only builds the result */
    struct grep_rg *rg;      /* the rg child while it runs (loop side) */
    char *rg_events;         /* rg's match events, one JSON line each, parsed on the pool */
    size_t rg_events_len, rg_events_cap;
    json_t *result;          /* built by the work */
};

/* webfetch's state (fileop_webfetch.c). */
struct fileop_webfetch {
    struct webfetch *fetch;  /* the request (loop side) */
    bool refused;            /* start failed the op: the work does nothing */
    long status;             /* the final response, taken from the request */
    char *final_url, *content_type;
    uint8_t *body;
    size_t body_len;
    json_t *result;          /* built by the work */
};

/* mcp_call's and mcp_list_tools' state (fileop_mcp.c). */
struct fileop_mcp {
    bool listing;            /* mcp_list_tools */
    bool refused;            /* start failed the op: the work does nothing */
    bool finished, failed;   /* the outcome is decided; an error (op->error) */
    uint64_t timeout_ms;
    uv_timer_t *timer;       /* the request's deadline, then the outcome's delivery */
    struct mcp_wait *wait;   /* waiting for a connection */
    struct mcp_session *session;
    struct mcp_op *request;  /* the request in flight */
    char **header_names, **header_values; /* headers merged with dynamic_headers */
    size_t nheaders;
    json_t *result;          /* the server's result (a copy of its own) */
    json_t *built;           /* the op's result, built by the work */
};

struct fileop {
    uv_work_t work;
    const struct fileop_kind *kind;
    const struct wspath_root *ws;
    struct fileop_limits limits;
    union {
        struct read_args read;
        struct write_args write;
        struct list_args list;
        struct glob_args glob;
        struct grep_args grep;
        struct sync_skill_args sync_skill;
        struct webfetch_args webfetch;
        struct mcp_call_args mcp_call; /* mcp_call; mcp.call's payload starts with one */
        struct mcp_list_tools_args mcp_list_tools;
        struct mcp_call_payload mcp_call_payload;
    } args;
    bool args_ok;
    atomic_bool cancelled;
    bool stopped;          /* the work saw the cancel and stopped short (the work's own) */
    fileop_done_cb done;
    void *data;
    /* the outcome, written by the work */
    bool success;
    char error[FILEOP_ERROR_MAX];
    uint8_t *content;
    size_t content_len;
    int64_t total_size;
    bool truncated;
    size_t result_bytes;        /* list, glob: what the entries take in the result (2.7) */
    struct list_entry *entries; /* list */
    size_t nentries, entries_cap;
    struct fileop_grep grep;
    struct fileop_webfetch web;
    struct fileop_mcp mcp;
    uv_loop_t *loop;
};

/* ---- Go's texts and the work's outcome (fileop.c) ---- */

/* Go's syscall.Errno text: glibc's message with its first letter lowercased. */
void fileop__go_errno(int err, char *buf, size_t len);
/* <abs> for a path that is not there: the root as configured plus the clean path. */
void fileop__lexical_abs(const struct fileop *op, const char *rel, char *buf, size_t len);
/* <abs> for what is there: its directory's real path plus the name, else the lexical one. */
void fileop__real_abs(const struct fileop *op, int dirfd, const char *name, const char *rel,
                      char *buf, size_t len);
/* In the work: whether the task was cancelled; the work then stops short, and says so. */
bool fileop__stopping(struct fileop *op);
/* The process's umask, read without changing it (fileop_file.c). */
mode_t fileop__umask(void);
/* The operation failed with this text (Go's). */
void fileop__fail(struct fileop *op, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The errors every path can give before it names something: set and true, else false. */
bool fileop__path_error(struct fileop *op, int r, const char *p);
/* Section 4 (outspill.h) for content, into res: content, truncated?, file_path?,
 * total_size?; truncated also when the op cut its result otherwise. prefix names the
 * spill file ("grep", "webfetch", "mcp"). 0 or ERR_NOMEM. On libuv's pool. */
int fileop__put_content(struct fileop *op, json_t *res, const char *prefix,
                        const uint8_t *content, size_t len, bool truncated);
/* Queues the op's work on the pool (for a start hook that ran something first); a failure
 * to queue ends the op with an error. */
void fileop__queue(struct fileop *op);

/* ---- the operations: their work (on the pool) and their result (on the loop) ---- */

void fileop__read_work(struct fileop *op);     /* fileop_file.c */
json_t *fileop__read_result(const struct fileop *op);
void fileop__write_work(struct fileop *op);
json_t *fileop__write_result(const struct fileop *op);
void fileop__list_work(struct fileop *op);     /* fileop_walk.c */
json_t *fileop__list_result(const struct fileop *op);
void fileop__glob_work(struct fileop *op);
json_t *fileop__glob_result(const struct fileop *op);
void fileop__grep_work(struct fileop *op);     /* fileop_grep.c */
json_t *fileop__grep_result(const struct fileop *op);
int fileop__grep_start(uv_loop_t *loop, struct fileop *op);
void fileop__grep_cancel(struct fileop *op);
void fileop__grep_free(struct fileop *op);
void fileop__skill_work(struct fileop *op);    /* fileop_skill.c */
json_t *fileop__skill_result(const struct fileop *op);
void fileop__webfetch_work(struct fileop *op); /* fileop_webfetch.c */
json_t *fileop__webfetch_result(const struct fileop *op);
int fileop__webfetch_start(uv_loop_t *loop, struct fileop *op);
void fileop__webfetch_cancel(struct fileop *op);
void fileop__webfetch_free(struct fileop *op);
void fileop__mcp_work(struct fileop *op); /* fileop_mcp.c */
json_t *fileop__mcp_result(const struct fileop *op);
int fileop__mcp_call_start(uv_loop_t *loop, struct fileop *op);
int fileop__mcp_list_start(uv_loop_t *loop, struct fileop *op);
void fileop__mcp_cancel(struct fileop *op);
void fileop__mcp_free(struct fileop *op);

#endif
