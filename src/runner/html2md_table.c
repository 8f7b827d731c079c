/*
 * html2md_table.c - HTML tables as GFM pipe tables (RUNNER-OPS.md 8), for html2md_md.c.
 *
 * A pipe table holds one line per row, so every cell is rendered on its own (a second
 * emitter, inline only: blocks inside become spaces, a table inside is flattened) and the
 * grid is laid out before anything is written: the header row and the column count are
 * known only at the end. Rendering never nests deeper than that one cell level.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "html2md_internal.h"

#define H2M_MAX_ROWSPAN 65534 /* HTML's own cap */

struct layout_scan {
    xmlNode *table;
    size_t widest;
    bool nested;
};

/* The element before n among its siblings, or NULL. */
static xmlNode *prev_element(xmlNode *n)
{
    for (n = n->prev; n != NULL; n = n->prev) {
        if (n->type == XML_ELEMENT_NODE)
            return n;
    }
    return NULL;
}

static xmlNode *next_element(xmlNode *n)
{
    for (n = n->next; n != NULL; n = n->next) {
        if (n->type == XML_ELEMENT_NODE)
            return n;
    }
    return NULL;
}

/* A <td> with no <tr> around it (libxml2 implies none): it and the cells right after it
 * are a row of their own. */
static bool starts_implied_row(xmlNode *n)
{
    return h2m_tag_of(n) == H2M_CELL && h2m_tag_of(n->parent) != H2M_TR &&
           h2m_tag_of(prev_element(n)) != H2M_CELL;
}

static int layout_enter(void *arg, xmlNode *n)
{
    struct layout_scan *s = arg;
    size_t cells = 0;

    if (n->type != XML_ELEMENT_NODE)
        return 0;
    if (n != s->table && h2m_tag_of(n) == H2M_TABLE) {
        s->nested = true;
        return -1;
    }
    if (h2m_tag_of(n) == H2M_TR) {
        for (xmlNode *c = n->children; c != NULL; c = c->next)
            cells += h2m_tag_of(c) == H2M_CELL;
    } else if (starts_implied_row(n)) {
        for (xmlNode *c = n; h2m_tag_of(c) == H2M_CELL; c = next_element(c))
            cells++;
    }
    if (cells > s->widest)
        s->widest = cells;
    return 1;
}

bool h2m_table_is_layout(xmlNode *table)
{
    struct layout_scan s = {.table = table};

    (void)h2m_walk(table, layout_enter, NULL, &s);
    return s.nested || s.widest < 2;
}

struct cell {
    size_t off, len; /* in the arena */
};

struct grid {
    struct buf *arena;    /* every cell's markdown, one after another */
    struct buf *scratch;  /* one cell's markdown before its "|" are escaped */
    struct cell *cells;   /* row after row */
    size_t ncells, cells_alloc;
    size_t *row_end;      /* rows[i] = cells [row_end[i-1], row_end[i]) */
    size_t nrows, rows_alloc;
    size_t ncols;
    uint32_t spans[H2M_TABLE_MAX_COLS]; /* rows still covered by a rowspan above */
    struct cell row[H2M_TABLE_MAX_COLS];
    size_t row_n;
    xmlNode *caption;
    const char *base;
};

static int grid_push_cell(struct grid *g, struct cell c)
{
    if (g->ncells == g->cells_alloc) {
        size_t n = g->cells_alloc == 0 ? 64 : g->cells_alloc * 2;
        struct cell *p = realloc(g->cells, n * sizeof(*p));

        if (p == NULL)
            return ERR_NOMEM;
        g->cells = p;
        g->cells_alloc = n;
    }
    g->cells[g->ncells++] = c;
    return 0;
}

static int grid_end_row(struct grid *g)
{
    int r;

    /* Cells still covered by a rowspan from above, right of the last real one. */
    for (size_t c = g->row_n; c < H2M_TABLE_MAX_COLS; c++) {
        if (g->spans[c] == 0)
            continue;
        while (g->row_n <= c)
            g->row[g->row_n++] = (struct cell){0, 0};
        g->spans[c]--;
    }
    if (g->row_n == 0)
        return 0;
    for (size_t c = 0; c < g->row_n; c++) {
        if ((r = grid_push_cell(g, g->row[c])) != 0)
            return r;
    }
    if (g->nrows == g->rows_alloc) {
        size_t n = g->rows_alloc == 0 ? 16 : g->rows_alloc * 2;
        size_t *p = realloc(g->row_end, n * sizeof(*p));

        if (p == NULL)
            return ERR_NOMEM;
        g->row_end = p;
        g->rows_alloc = n;
    }
    g->row_end[g->nrows++] = g->ncells;
    if (g->row_n > g->ncols)
        g->ncols = g->row_n;
    g->row_n = 0;
    return 0;
}

/* Renders cell into the scratch buffer (inline only), then into the arena with every "|"
 * escaped; returns its place there. */
static int render_cell(struct grid *g, xmlNode *cell, struct cell *out)
{
    struct h2m_md sub;
    const uint8_t *s;
    size_t len;
    int r;

    buf_reset(g->scratch);
    h2m_md_init(&sub, g->scratch, g->base);
    sub.in_cell = true;
    sub.inline_only = 1;
    r = h2m_md_walk(&sub, cell);
    h2m_md_free(&sub);
    if (r != 0)
        return r;
    s = buf_ptr(g->scratch);
    len = buf_len(g->scratch);
    out->off = buf_len(g->arena);
    for (size_t i = 0, run = 0; i <= len; i++) {
        if (i < len && s[i] != '|')
            continue;
        if ((r = buf_put(g->arena, s + run, i - run)) != 0 ||
            (i < len && (r = buf_put(g->arena, "\\|", 2)) != 0))
            return r;
        run = i + 1;
    }
    out->len = buf_len(g->arena) - out->off;
    return 0;
}

static uint32_t span_attr(xmlNode *n, const char *name, uint32_t max)
{
    xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
    unsigned long x = 1;

    if (v != NULL) {
        char *end;

        x = strtoul((const char *)v, &end, 10);
        if (end == (char *)v || x == 0)
            x = 1;
        xmlFree(v);
    }
    return x > max ? max : (uint32_t)x;
}

/* Places one cell in the current row: after the cells a rowspan covers, with its colspan's
 * empty cells after it; past the last column, joined to the last cell. */
static int grid_place(struct grid *g, xmlNode *cell)
{
    uint32_t colspan = span_attr(cell, "colspan", H2M_TABLE_MAX_COLS);
    uint32_t rowspan = span_attr(cell, "rowspan", H2M_MAX_ROWSPAN);
    struct cell c;
    size_t at;
    int r;

    while (g->row_n < H2M_TABLE_MAX_COLS && g->spans[g->row_n] > 0) {
        g->spans[g->row_n]--;
        g->row[g->row_n++] = (struct cell){0, 0};
    }
    if (g->row_n == H2M_TABLE_MAX_COLS) {
        struct cell *last = &g->row[H2M_TABLE_MAX_COLS - 1];

        /* The arena ends with the last cell's text (or the last cell is empty): the
         * joined text stays one run. */
        if (last->len == 0)
            last->off = buf_len(g->arena);
        if ((r = buf_put(g->arena, " ", last->len > 0 ? 1 : 0)) != 0 ||
            (r = render_cell(g, cell, &c)) != 0)
            return r;
        last->len = buf_len(g->arena) - last->off;
        return 0;
    }
    if ((r = render_cell(g, cell, &c)) != 0)
        return r;
    at = g->row_n;
    g->row[g->row_n++] = c;
    for (uint32_t k = 1; k < colspan && g->row_n < H2M_TABLE_MAX_COLS; k++)
        g->row[g->row_n++] = (struct cell){0, 0};
    for (size_t k = at; k < g->row_n; k++)
        g->spans[k] = rowspan - 1;
    return 0;
}

struct rows_walk {
    struct grid *g;
    xmlNode *table;
};

/* The table's own rows (under thead/tbody/tfoot or not), in order. */
static int rows_enter(void *arg, xmlNode *n)
{
    struct rows_walk *w = arg;
    enum h2m_tag t = h2m_tag_of(n);
    int r;

    if (n->type != XML_ELEMENT_NODE)
        return 0;
    if (t == H2M_CAPTION) {
        if (w->g->caption == NULL)
            w->g->caption = n;
        return 0;
    }
    if (t == H2M_CELL && h2m_tag_of(n->parent) != H2M_TR) {
        if ((r = grid_place(w->g, n)) != 0)
            return r;
        return h2m_tag_of(next_element(n)) == H2M_CELL ? 0 : grid_end_row(w->g);
    }
    if (t != H2M_TR)
        return n == w->table || t == H2M_TABLE_PART || t == H2M_OTHER ? 1 : 0;
    for (xmlNode *c = n->children; c != NULL; c = c->next) {
        if (h2m_tag_of(c) == H2M_CELL && (r = grid_place(w->g, c)) != 0)
            return r;
    }
    return (r = grid_end_row(w->g)) != 0 ? r : 0;
}

/* Writes row i as "| a | b |", padded to the table's width. */
static int put_row(struct h2m_md *m, struct grid *g, struct buf *line, size_t i)
{
    size_t first = i == 0 ? 0 : g->row_end[i - 1], n = g->row_end[i] - first;
    int r = 0;

    buf_reset(line);
    for (size_t c = 0; c < g->ncols && r == 0; c++) {
        const struct cell *cl = c < n ? &g->cells[first + c] : NULL;

        if ((r = buf_put(line, c == 0 ? "| " : " ", c == 0 ? 2 : 1)) == 0 && cl != NULL)
            r = buf_put(line, buf_ptr(g->arena) + cl->off, cl->len);
        if (r == 0)
            r = buf_put(line, " |", 2);
    }
    if (r != 0)
        return r;
    h2m_md_newline(m, 1);
    return h2m_md_raw(m, (const char *)buf_ptr(line), buf_len(line));
}

static int put_separator(struct h2m_md *m, struct grid *g, struct buf *line)
{
    int r = 0;

    buf_reset(line);
    for (size_t c = 0; c < g->ncols && r == 0; c++)
        r = buf_put(line, c == 0 ? "| --- |" : " --- |", c == 0 ? 7 : 6);
    if (r != 0)
        return r;
    h2m_md_newline(m, 1);
    return h2m_md_raw(m, (const char *)buf_ptr(line), buf_len(line));
}

/* The caption as a paragraph of its own, one line, above the table. */
static int put_caption(struct h2m_md *m, xmlNode *caption)
{
    bool in_cell = m->in_cell;
    int r;

    h2m_md_block(m);
    m->in_cell = true; /* a table in the caption is flattened: no deeper rendering */
    m->inline_only++;
    r = h2m_md_walk(m, caption);
    m->inline_only--;
    m->in_cell = in_cell;
    h2m_md_block(m);
    return r;
}

int h2m_table(struct h2m_md *m, xmlNode *table)
{
    struct grid g = {.base = m->base};
    struct rows_walk w = {.g = &g, .table = table};
    struct buf *line = NULL;
    int r = ERR_NOMEM;

    if ((g.arena = buf_new(HTML2MD_MAX_OUTPUT, 0)) == NULL ||
        (g.scratch = buf_new(HTML2MD_MAX_OUTPUT, 0)) == NULL ||
        (line = buf_new(HTML2MD_MAX_OUTPUT, 0)) == NULL)
        goto out;
    if ((r = h2m_walk(table, rows_enter, NULL, &w)) != 0)
        goto out;
    if (g.caption != NULL && (r = put_caption(m, g.caption)) != 0)
        goto out;
    h2m_md_block(m);
    for (size_t i = 0; i < g.nrows && r == 0; i++) {
        if ((r = put_row(m, &g, line, i)) == 0 && i == 0)
            r = put_separator(m, &g, line);
    }
    h2m_md_block(m);
out:
    buf_free(g.arena);
    buf_free(g.scratch);
    buf_free(line);
    free(g.cells);
    free(g.row_end);
    return r;
}
