/*
 * grep_rgjson.c - see grep_rgjson.h.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base64.h"
#include "err.h"
#include "grep_rgjson.h"

/* rg's {"text": ...} or {"bytes": <base64>} as a malloc'd copy of the bytes. Returns 1, 0
 * when obj is neither, or ERR_NOMEM. */
static int rg_data(const json_t *obj, uint8_t **out, size_t *len)
{
    const json_t *text = json_object_get(obj, "text"), *bytes = json_object_get(obj, "bytes");
    size_t n, bad;

    *out = NULL;
    if (json_is_string(text)) {
        n = json_string_length(text);
        if ((*out = malloc(n + 1)) == NULL)
            return ERR_NOMEM;
        memcpy(*out, json_string_value(text), n);
        (*out)[n] = '\0';
        *len = n;
        return 1;
    }
    if (!json_is_string(bytes))
        return 0;
    n = json_string_length(bytes);
    if ((*out = malloc(BASE64_DECODED_MAX(n) + 1)) == NULL)
        return ERR_NOMEM;
    if (base64_decode_go(json_string_value(bytes), n, *out, len, &bad) != 0) {
        free(*out);
        *out = NULL;
        return 0;
    }
    (*out)[*len] = '\0';
    return 1;
}

int grep_rgjson_match(const char *line, size_t len, struct grep_rgjson_match *m)
{
    json_error_t jerr;
    json_t *ev = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
    const json_t *type = json_object_get(ev, "type"), *data = json_object_get(ev, "data");
    const json_t *number = json_object_get(data, "line_number");
    int r = 0;

    memset(m, 0, sizeof(*m));
    if (!json_is_string(type) || strcmp(json_string_value(type), "match") != 0 ||
        !json_is_integer(number) || json_integer_value(number) < 1)
        goto out;
    if ((r = rg_data(json_object_get(data, "path"), &m->path, &m->path_len)) != 1 ||
        (r = rg_data(json_object_get(data, "lines"), &m->line, &m->line_len)) != 1)
        goto out;
    m->line_number = (uint64_t)json_integer_value(number);
    if (m->line_len > 0 && m->line[m->line_len - 1] == '\n')
        m->line[--m->line_len] = '\0';
out:
    if (r != 1)
        grep_rgjson_match_free(m);
    json_decref(ev);
    return r;
}

void grep_rgjson_match_free(struct grep_rgjson_match *m)
{
    free(m->path);
    free(m->line);
    memset(m, 0, sizeof(*m));
}
