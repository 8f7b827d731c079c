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
    bool layout;
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
    switch (h2m_tag_of(n)) {
    case H2M_TABLE:
        if (n == s->table)
            break;
        __attribute__((fallthrough));
    case H2M_H:
    case H2M_UL:
    case H2M_OL:
    case H2M_PRE:
    case H2M_BLOCKQUOTE:
    case H2M_HR:
        /* Page structure a one-line cell would destroy: a layout table. */
        s->layout = true;
        return -1;
    default:
        break;
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
    return s.layout || s.widest < 2;
}

struct cell {
    size_t off, len; /* in the arena */
    bool ghost;      /* covered by a colspan or rowspan: written empty, but its text counts
                      * when header rows are merged */
};

struct row {
    size_t end; /* cells [previous row's end, end) */
    bool head;  /* in <thead>, or all <th> */
};

struct grid {
    struct buf *arena;   /* every cell's markdown, one after another */
    struct buf *scratch; /* one cell's markdown before its "|" are escaped */
    struct cell *cells;  /* row after row */
    size_t ncells, cells_alloc;
    struct row *rows;
    size_t nrows, rows_alloc;
    size_t ncols;
    uint32_t spans[H2M_TABLE_MAX_COLS];        /* rows still covered by a rowspan above */
    struct cell span_cell[H2M_TABLE_MAX_COLS]; /* ... and the cell that covers them */
    struct cell row[H2M_TABLE_MAX_COLS];
    size_t row_n;
    char align[H2M_TABLE_MAX_COLS]; /* 'l', 'c', 'r' or 0: from the first row's cells */
    xmlNode *caption;
    const char *base;
};

static int grid_push_cell(struct grid *g, struct cell c)
{
    struct cell *cells = h2m_grow(g->cells, &g->cells_alloc, g->ncells, sizeof(c));

    if (cells == NULL)
        return ERR_NOMEM;
    g->cells = cells;
    g->cells[g->ncells++] = c;
    return 0;
}

/* The cell a rowspan from above puts at column c, or an empty one. */
static struct cell covered(struct grid *g, size_t c)
{
    struct cell e = {0, 0, true};

    if (g->spans[c] == 0)
        return e;
    g->spans[c]--;
    return g->span_cell[c];
}

static int grid_end_row(struct grid *g, bool head)
{
    struct row *rows;
    int r;

    /* Cells still covered by a rowspan from above, right of the last real one. */
    for (size_t c = g->row_n; c < H2M_TABLE_MAX_COLS; c++) {
        if (g->spans[c] == 0)
            continue;
        while (g->row_n <= c) {
            g->row[g->row_n] = covered(g, g->row_n);
            g->row_n++;
        }
    }
    if (g->row_n == 0)
        return 0;
    for (size_t c = 0; c < g->row_n; c++) {
        if ((r = grid_push_cell(g, g->row[c])) != 0)
            return r;
    }
    if ((rows = h2m_grow(g->rows, &g->rows_alloc, g->nrows, sizeof(*rows))) == NULL)
        return ERR_NOMEM;
    g->rows = rows;
    g->rows[g->nrows++] = (struct row){g->ncells, head};
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
    out->ghost = false;
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

/* A cell's alignment: its align attribute, or text-align in its style ('l', 'c', 'r'), or 0. */
static char cell_align(xmlNode *cell)
{
    xmlChar *v = xmlGetProp(cell, (const xmlChar *)"align");
    const char *p = (const char *)v;
    char a = 0;

    if (v == NULL && (v = xmlGetProp(cell, (const xmlChar *)"style")) != NULL &&
        (p = strcasestr((const char *)v, "text-align")) != NULL) {
        p += 10;
        p += strspn(p, " \t:");
    }
    if (p != NULL) {
        if (strncasecmp(p, "left", 4) == 0)
            a = 'l';
        else if (strncasecmp(p, "center", 6) == 0)
            a = 'c';
        else if (strncasecmp(p, "right", 5) == 0)
            a = 'r';
    }
    xmlFree(v);
    return a;
}

/* Places one cell in the current row: after the cells a rowspan covers, with its colspan's
 * empty cells after it; past the last column, joined to the last cell. */
static int grid_place(struct grid *g, xmlNode *cell)
{
    uint32_t colspan = span_attr(cell, "colspan", H2M_TABLE_MAX_COLS);
    uint32_t rowspan = span_attr(cell, "rowspan", H2M_MAX_ROWSPAN);
    struct cell c = {0, 0, false};
    size_t at;
    int r;

    while (g->row_n < H2M_TABLE_MAX_COLS && g->spans[g->row_n] > 0) {
        g->row[g->row_n] = covered(g, g->row_n);
        g->row_n++;
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
    if (g->nrows == 0)
        g->align[at] = cell_align(cell);
    g->row[g->row_n++] = c;
    c.ghost = true;
    for (uint32_t k = 1; k < colspan && g->row_n < H2M_TABLE_MAX_COLS; k++)
        g->row[g->row_n++] = c;
    for (size_t k = at; k < g->row_n; k++) {
        g->spans[k] = rowspan - 1;
        g->span_cell[k] = c;
    }
    return 0;
}

struct rows_walk {
    struct grid *g;
    xmlNode *table;
    bool head; /* the row being read is a header row */
};

static bool is_th(const xmlNode *n)
{
    return strcasecmp((const char *)n->name, "th") == 0;
}

/* The table's own rows (under thead/tbody/tfoot or not), in order. */
static int rows_enter(void *arg, xmlNode *n)
{
    struct rows_walk *w = arg;
    enum h2m_tag t = h2m_tag_of(n);
    bool all_th;
    int r;

    if (n->type != XML_ELEMENT_NODE)
        return 0;
    if (t == H2M_CAPTION) {
        if (w->g->caption == NULL)
            w->g->caption = n;
        return 0;
    }
    if (t == H2M_CELL && h2m_tag_of(n->parent) != H2M_TR) {
        if (starts_implied_row(n))
            w->head = true;
        w->head = w->head && is_th(n);
        if ((r = grid_place(w->g, n)) != 0)
            return r;
        return h2m_tag_of(next_element(n)) == H2M_CELL ? 0 : grid_end_row(w->g, w->head);
    }
    if (t != H2M_TR)
        return n == w->table || t == H2M_TABLE_PART || t == H2M_OTHER ? 1 : 0;
    /* A header row: in <thead>, or made of <th> only. */
    w->head = h2m_tag_of(n->parent) == H2M_TABLE_PART && n->parent->name != NULL &&
              strcasecmp((const char *)n->parent->name, "thead") == 0;
    all_th = true;
    for (xmlNode *c = n->children; c != NULL; c = c->next) {
        if (h2m_tag_of(c) != H2M_CELL)
            continue;
        all_th = all_th && is_th(c);
        if ((r = grid_place(w->g, c)) != 0)
            return r;
    }
    w->head = w->head || all_th;
    return (r = grid_end_row(w->g, w->head)) != 0 ? r : 0;
}

/* The cell at column c of row i, or NULL past the row's end. */
static const struct cell *cell_at(const struct grid *g, size_t i, size_t c)
{
    size_t first = i == 0 ? 0 : g->rows[i - 1].end;

    return c < g->rows[i].end - first ? &g->cells[first + c] : NULL;
}

/* Appends column c of rows [from, to) to line: one row's cell (a covered one empty), or,
 * for several header rows, their texts joined by spaces, each repeat said once ("Region"
 * over three columns, then "us-east-1": "Region us-east-1"). */
static int put_column(const struct grid *g, struct buf *line, size_t from, size_t to, size_t c)
{
    const struct cell *prev = NULL;
    int r = 0;

    for (size_t i = from; i < to && r == 0; i++) {
        const struct cell *cl = cell_at(g, i, c);

        if (cl == NULL || cl->len == 0 || (to - from == 1 && cl->ghost) ||
            (prev != NULL && prev->off == cl->off && prev->len == cl->len))
            continue;
        if (prev != NULL)
            r = buf_put(line, " ", 1);
        if (r == 0)
            r = buf_put(line, buf_ptr(g->arena) + cl->off, cl->len);
        prev = cl;
    }
    return r;
}

/* Writes rows [from, to) as one line "| a | b |", padded to the table's width. */
static int put_row(struct h2m_md *m, struct grid *g, struct buf *line, size_t from, size_t to)
{
    int r = 0;

    buf_reset(line);
    for (size_t c = 0; c < g->ncols && r == 0; c++) {
        if ((r = buf_put(line, c == 0 ? "| " : " ", c == 0 ? 2 : 1)) == 0)
            r = put_column(g, line, from, to, c);
        if (r == 0)
            r = buf_put(line, " |", 2);
    }
    if (r != 0)
        return r;
    h2m_md_newline(m, 1);
    return h2m_md_raw(m, (const char *)buf_ptr(line), buf_len(line));
}

/* The delimiter row, with each column's alignment (GFM: ":---", ":---:", "---:"). */
static int put_separator(struct h2m_md *m, struct grid *g, struct buf *line)
{
    int r = 0;

    buf_reset(line);
    for (size_t c = 0; c < g->ncols && r == 0; c++) {
        const char *rule = g->align[c] == 'l'   ? ":--- |"
                           : g->align[c] == 'c' ? ":---: |"
                           : g->align[c] == 'r' ? "---: |"
                                                : "--- |";

        if ((r = buf_put(line, c == 0 ? "| " : " ", c == 0 ? 2 : 1)) == 0)
            r = buf_put(line, rule, strlen(rule));
    }
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
    size_t nhead = 0;
    int r = ERR_NOMEM;

    if ((g.arena = buf_new(HTML2MD_MAX_OUTPUT, 0)) == NULL ||
        (g.scratch = buf_new(HTML2MD_MAX_OUTPUT, 0)) == NULL ||
        (line = buf_new(HTML2MD_MAX_OUTPUT, 0)) == NULL)
        goto out;
    if ((r = h2m_walk(table, rows_enter, NULL, &w)) != 0)
        goto out;
    if (g.caption != NULL && (r = put_caption(m, g.caption)) != 0)
        goto out;
    /* GFM has one header row: the first row, or all the leading header rows merged. */
    while (nhead < g.nrows && g.rows[nhead].head)
        nhead++;
    nhead = nhead == 0 ? 1 : nhead;
    h2m_md_block(m);
    if (g.nrows > 0 && (r = put_row(m, &g, line, 0, nhead)) == 0)
        r = put_separator(m, &g, line);
    for (size_t i = nhead; i < g.nrows && r == 0; i++)
        r = put_row(m, &g, line, i, i + 1);
    h2m_md_block(m);
out:
    buf_free(g.arena);
    buf_free(g.scratch);
    buf_free(line);
    free(g.cells);
    free(g.rows);
    return r;
}
