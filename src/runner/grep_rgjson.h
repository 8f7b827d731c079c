/*
 * grep_rgjson.h - one line of `rg --json` output read as the grep operation needs it
 * (RUNNER-OPS.md 5.5): a match event's path, line number and line. rg writes a string as
 * "text", or as base64 "bytes" when it is not UTF-8 (a file name or a line with invalid
 * bytes), so both come back as the raw bytes on disk.
 *
 * The line comes from a child process reading files anyone may have written; it is parsed
 * as untrusted input (fuzz/fuzz_rgjson.c).
 */
#ifndef CREDBROKER_GREP_RGJSON_H
#define CREDBROKER_GREP_RGJSON_H

#include <stddef.h>
#include <stdint.h>

struct grep_rgjson_match {
    uint8_t *path;        /* malloc'd, NUL-terminated, path_len bytes (may hold NUL) */
    size_t path_len;
    uint64_t line_number; /* from 1 */
    uint8_t *line;        /* malloc'd, NUL-terminated: the line without its final "\n" */
    size_t line_len;
};

/*
 * Reads line[0..len) (one JSON document, no newline). Returns 1 and fills m (free with
 * grep_rgjson_match_free) for a well-formed match event, 0 for anything else (another
 * event, or not rg's shape: nothing to report), or ERR_NOMEM.
 */
int grep_rgjson_match(const char *line, size_t len, struct grep_rgjson_match *m);
void grep_rgjson_match_free(struct grep_rgjson_match *m);

#endif
