/*
 * outspill.h - large output (RUNNER-OPS.md section 4): bash stdout, grep, webfetch and
 * mcp_call content over 30000 bytes is saved whole to `.outputs/<prefix>_<id8>_<secs>.txt`
 * under the workspace root, and the result carries Go's <output_truncated> text (a
 * preview of the first lines and where the rest is) instead.
 *
 * Unlike Go, which never deletes a spill file, the runner prunes them (a deliberate
 * deviation, RUNNER-OPS.md 13 row 6): at start, hourly, and whenever a save pushes the
 * running total over ops.output.spill_max_total_bytes, files older than
 * ops.output.spill_max_age_seconds go, then the oldest while the total is over the cap.
 *
 * Not for read, list, glob or mcp_list_tools results, and not for the JSON layer: the
 * content here is raw bytes (a preview may end inside a UTF-8 character).
 */
#ifndef CREDBROKER_OUTSPILL_H
#define CREDBROKER_OUTSPILL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <uv.h>

struct wspath_root;

#define OUTSPILL_MAX_INLINE 30000   /* Go's DefaultMaxOutputSize (bytes, "chars" in the text) */
#define OUTSPILL_PREVIEW_BYTES 8000 /* Go's DefaultPreviewSize */
#define OUTSPILL_PREVIEW_LINES 20   /* Go's DefaultPreviewLines */
#define OUTSPILL_DIR ".outputs"
#define OUTSPILL_HOUR_MS (3600 * 1000)
/* Spill files one prune round holds in memory (64 bytes each): a bigger directory takes
 * more rounds, never more memory. */
#define OUTSPILL_PRUNE_BATCH 65536

struct outspill { /* one per runner */
    const struct wspath_root *ws;
    uint64_t max_age_ms;      /* ops.output.spill_max_age_seconds, in ms */
    uint64_t max_total_bytes; /* ops.output.spill_max_total_bytes */
    /* private (outspill.c) */
    atomic_uint_least64_t _total; /* bytes of spill files, as last counted plus saves since */
    atomic_bool _pruning;         /* a prune is at work (another one is skipped) */
    uv_timer_t _timer;            /* hourly, unref'd */
    uv_work_t _prune_work;        /* the start-up and hourly prunes, on the pool */
    int _prune_result;            /* written by that work, read in its after_work */
    bool _prune_queued;           /* loop only: _prune_work is in flight */
    bool _timer_live;             /* loop only: init ran and close has not */
    size_t _prune_batch;          /* tests: files per prune round; 0 = OUTSPILL_PRUNE_BATCH */
};

struct outspill_result {
    char *content;      /* malloc'd, NUL-terminated (may hold NULs): the content itself, or
                         * the <output_truncated> text */
    size_t content_len; /* bytes in content, not counting the terminating NUL */
    bool truncated;
    char *file_path;    /* malloc'd ".outputs/bash_1a2b3c4d_1764921600.txt", or NULL */
    int64_t total_size; /* byte length of the original content */
};

/*
 * Starts s: one prune at once (on libuv's pool) and one every hour (a uv_timer, unref'd so
 * it never keeps the loop alive). ws must outlive s; every other call needs s started.
 * Returns 0 or a negative UV_* code (then nothing runs, but the timer is closing: s stays
 * valid until the loop has run once more, as after outspill_close).
 */
int outspill_init(struct outspill *s, uv_loop_t *loop, const struct wspath_root *ws,
                  uint64_t max_age_ms, uint64_t max_total_bytes);
/*
 * Stops the hourly prune. As with any libuv handle, s stays valid until the loop has run
 * the timer's close and any prune already started (uv_run returns): free it after that.
 * No outspill_process or outspill_queue may be in flight. Accepts an s never started.
 */
void outspill_close(struct outspill *s);

/*
 * Synchronous, for a libuv pool thread (grep's built-in engine calls it there): takes the
 * content (any bytes), writes the spill file when it is over OUTSPILL_MAX_INLINE bytes,
 * and fills *out (cleared first; the caller frees it with outspill_result_free). prefix is
 * "bash", "grep", "webfetch" or "mcp". Returns 0 or ERR_NOMEM. A failed save is not an
 * error: out has Go's "Could not save full content." text, truncated true, file_path
 * NULL. A save that pushes the running total over max_total_bytes prunes right there
 * (sparing the file it wrote).
 */
int outspill_process(struct outspill *s, const char *prefix, const uint8_t *content, size_t len,
                     struct outspill_result *out) __attribute__((warn_unused_result));
/* Frees what r holds and clears it. Accepts NULL. */
void outspill_result_free(struct outspill_result *r);

/* Go's ShouldSkipForWorkDir: whether a bash command reads a spill file back (cat, head,
 * tail, less, more or bat, and .outputs/ or .work/ with either slash), so its stdout
 * stays whole. */
bool outspill_bash_skip(const char *command);

/*
 * Called once, on the loop: status 0 with *r filled, or ERR_NOMEM (r empty). r is
 * borrowed for the call: take r->content or r->file_path by setting them to NULL, the
 * rest is freed when cb returns.
 */
typedef void (*outspill_cb)(struct outspill_result *r, int status, void *data);
/*
 * outspill_process off the loop: the work on libuv's pool, cb back on the loop. content
 * (and prefix) are borrowed until cb. Returns 0 (cb will follow), or ERR_NOMEM or a UV_*
 * code (no cb).
 */
int outspill_queue(uv_loop_t *loop, struct outspill *s, const char *prefix, const uint8_t *content,
                   size_t len, outspill_cb cb, void *data);

/*
 * Synchronous prune: deletes regular files directly in .outputs/ whose names match the
 * spill pattern (<prefix>_<8 letters or digits>_<1 to 20 digits>.txt for the four
 * prefixes), older than max_age_ms at now, then the oldest by mtime while their total
 * exceeds max_total_bytes. Anything else there (other names, symlinks, directories) is
 * never touched, and a name is unlinked itself, never what it points at. Returns the
 * number deleted (0 when there is no .outputs/), -EAGAIN when another prune is at work
 * (that one does it), or another negative code (ERR_WS_ESCAPE: .outputs leads out of the
 * root).
 */
int outspill_prune(struct outspill *s, time_t now);

#endif
