/*
 * mcp_key.c - see mcp_key.h: the canonical form of an MCP server config and its SHA-256.
 *
 * The form is written in two passes over the same code, first counting and then
 * filling an allocation of exactly that size, so it never grows by realloc (which would
 * leave copies of the credentials in it behind, unwiped).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "err.h"
#include "mcp_key.h"
#include "mcp_key_internal.h"

/* The form being written: p NULL while counting. */
struct form {
    char *p;
    size_t len;
};

/* A map's entries in the order they are written. */
struct entry {
    const char *key, *value;
    size_t index; /* in the map: breaks ties so the later of two equal keys sorts last */
};

static void put(struct form *f, const char *s, size_t n)
{
    if (f->p != NULL)
        memcpy(f->p + f->len, s, n);
    f->len += n;
}

static void put_str(struct form *f, const char *s)
{
    put(f, s, strlen(s));
}

/* A JSON string as Python's json.dumps(ensure_ascii=False) writes it; NULL as "". */
static void put_json_string(struct form *f, const char *s)
{
    static const char hex[] = "0123456789abcdef";

    put(f, "\"", 1);
    for (; s != NULL && *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};

        switch (c) {
        case '"': put(f, "\\\"", 2); break;
        case '\\': put(f, "\\\\", 2); break;
        case '\b': put(f, "\\b", 2); break;
        case '\f': put(f, "\\f", 2); break;
        case '\n': put(f, "\\n", 2); break;
        case '\r': put(f, "\\r", 2); break;
        case '\t': put(f, "\\t", 2); break;
        default:
            if (c < 0x20)
                put(f, esc, sizeof(esc));
            else
                put(f, s, 1);
        }
    }
    put(f, "\"", 1);
}

static int entry_cmp(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    int c = strcmp(x->key, y->key);

    if (c != 0)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* The entries of m sorted by key (*out NULL when m is empty). */
static int sort_map(const struct opargs_map *m, struct entry **out)
{
    struct entry *e;

    *out = NULL;
    if (m->n == 0)
        return 0;
    if ((e = calloc(m->n, sizeof(*e))) == NULL)
        return ERR_NOMEM;
    for (size_t i = 0; i < m->n; i++)
        e[i] = (struct entry){m->keys[i], m->values[i], i};
    qsort(e, m->n, sizeof(*e), entry_cmp);
    *out = e;
    return 0;
}

static void put_map(struct form *f, const struct entry *e, size_t n)
{
    bool first = true;

    put(f, "{", 1);
    for (size_t i = 0; i < n; i++) {
        /* of two equal keys only the later entry (sorted last) is written */
        if (i + 1 < n && strcmp(e[i].key, e[i + 1].key) == 0)
            continue;
        if (!first)
            put(f, ",", 1);
        first = false;
        put_json_string(f, e[i].key);
        put(f, ":", 1);
        put_json_string(f, e[i].value);
    }
    put(f, "}", 1);
}

/* The members in sorted order (mcp_key.h). */
static void put_config(struct form *f, const struct mcp_server_args *s, struct entry *const maps[3])
{
    put_str(f, "{\"args\":[");
    for (size_t i = 0; i < s->args.n; i++) {
        if (i > 0)
            put(f, ",", 1);
        put_json_string(f, s->args.v[i]);
    }
    put_str(f, "],\"command\":");
    put_json_string(f, s->command);
    put_str(f, ",\"dynamic_headers\":");
    put_map(f, maps[0], s->dynamic_headers.n);
    put_str(f, ",\"env\":");
    put_map(f, maps[1], s->env.n);
    put_str(f, ",\"headers\":");
    put_map(f, maps[2], s->headers.n);
    put_str(f, ",\"name\":");
    put_json_string(f, s->name);
    put_str(f, s->tls_skip_verify ? ",\"tls_skip_verify\":true" : ",\"tls_skip_verify\":false");
    put_str(f, ",\"transport\":");
    put_json_string(f, s->transport);
    put_str(f, ",\"url\":");
    put_json_string(f, s->url);
    put(f, "}", 1);
}

int mcp_key__form(const struct mcp_server_args *s, char **out, size_t *len)
{
    struct entry *maps[3] = {NULL, NULL, NULL};
    struct form f = {NULL, 0};
    int r;

    *out = NULL;
    *len = 0;
    if ((r = sort_map(&s->dynamic_headers, &maps[0])) != 0 ||
        (r = sort_map(&s->env, &maps[1])) != 0 || (r = sort_map(&s->headers, &maps[2])) != 0)
        goto out;
    put_config(&f, s, maps);
    if ((f.p = malloc(f.len)) == NULL) {
        r = ERR_NOMEM;
        goto out;
    }
    f.len = 0;
    put_config(&f, s, maps);
    *out = f.p;
    *len = f.len;
out:
    for (size_t i = 0; i < 3; i++)
        free(maps[i]);
    return r;
}

int mcp_key_compute(const struct mcp_server_args *s, uint8_t out[MCP_KEY_LEN])
{
    unsigned int dlen = 0;
    char *form = NULL;
    size_t len = 0;
    int r;

    memset(out, 0, MCP_KEY_LEN);
    if ((r = mcp_key__form(s, &form, &len)) != 0)
        return r;
    if (EVP_Digest(form, len, out, &dlen, EVP_sha256(), NULL) != 1 ||
        dlen != MCP_KEY_LEN) {
        memset(out, 0, MCP_KEY_LEN);
        r = -EIO;
    }
    explicit_bzero(form, len); /* header and env values: credentials */
    free(form);
    return r;
}

void mcp_key_hex(const uint8_t key[MCP_KEY_LEN], char out[2 * MCP_KEY_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; i < MCP_KEY_LEN; i++) {
        out[2 * i] = hex[key[i] >> 4];
        out[2 * i + 1] = hex[key[i] & 15];
    }
    out[2 * MCP_KEY_LEN] = '\0';
}
