/*
 * html2md_md.c - the markdown rules (RUNNER-OPS.md 8): how each element of libxml2's tree
 * is written.
 *
 * Each element is written through the emitter (html2md_emit.c), which owns lines and
 * prefixes. Tables are html2md_table.c's. Not here: parsing, charsets, the final newline
 * cut.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/tree.h>

#include "buf.h"
#include "err.h"
#include "html2md_internal.h"

enum {
    OPEN_LIST = 1,   /* ul/ol: items count in it */
    OPEN_FRAME = 2,  /* pushed a frame: pop it */
    OPEN_INLINE = 4, /* raised inline_only */
    OPEN_MARKER = 8, /* put an emphasis marker in lead */
    OPEN_LINK = 16,
    OPEN_HEADING = 32,
    OPEN_ORDERED = 64, /* ol: numbered items */
};

/* How far has_block_inside looks before it assumes there is a block. */
#define H2M_BLOCK_SCAN_MAX 256

/* ---- atoms: code, pre, images ---- */

/* The longest run of backticks in s[0..n). */
static size_t longest_backticks(const char *s, size_t n)
{
    size_t best = 0, run = 0;

    for (size_t i = 0; i < n; i++) {
        run = s[i] == '`' ? run + 1 : 0;
        if (run > best)
            best = run;
    }
    return best;
}

/* The text under n, whitespace collapsed to single spaces and trimmed, into out. */
static int collapsed_text(xmlNode *n, struct buf *tmp, struct buf *out)
{
    size_t i = 0, start;
    bool space = false;
    int r;

    if ((r = h2m_collect_text(n, tmp)) != 0)
        return r;
    while (h2m_next_word(buf_ptr(tmp), buf_len(tmp), &i, &start, &space)) {
        if (space && buf_len(out) > 0 && (r = buf_put(out, " ", 1)) != 0)
            return r;
        space = false;
        if ((r = buf_put(out, buf_ptr(tmp) + start, i - start)) != 0)
            return r;
    }
    return 0;
}

static void put_fence(struct h2m_md *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h2m_md_put(m, "`", 1);
}

/* <code> (and kbd, samp, tt) as a code span: a fence longer than any backtick run inside,
 * and a space inside each fence when the code starts or ends with a backtick. */
static int code_span(struct h2m_md *m, xmlNode *n)
{
    struct buf *tmp = buf_new(HTML2MD_MAX_OUTPUT, 0), *code = buf_new(HTML2MD_MAX_OUTPUT, 0);
    const char *s;
    size_t len, fence;
    bool pad;
    int r = ERR_NOMEM;

    if (tmp == NULL || code == NULL || (r = collapsed_text(n, tmp, code)) != 0)
        goto out;
    s = (const char *)buf_ptr(code);
    len = buf_len(code);
    if (len == 0)
        goto out;
    fence = longest_backticks(s, len) + 1;
    pad = s[0] == '`' || s[len - 1] == '`';
    h2m_md_flush(m);
    put_fence(m, fence);
    h2m_md_put(m, " ", pad ? 1 : 0);
    h2m_md_put(m, s, len);
    h2m_md_put(m, " ", pad ? 1 : 0);
    put_fence(m, fence);
    r = m->err;
out:
    buf_free(tmp);
    buf_free(code);
    return r;
}

/* The length of a class prefix that names a language at p: "language-", "lang-", or
 * GitHub's "highlight-source-" (on the div around the pre). */
static size_t language_prefix(const char *p)
{
    static const char *const prefixes[] = {"language-", "lang-", "highlight-source-"};

    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        if (strncmp(p, prefixes[i], strlen(prefixes[i])) == 0)
            return strlen(prefixes[i]);
    }
    return 0;
}

/* A language class on pre, on its first element or on its parent, for the fence's info
 * string: only characters that cannot end or break the fence line. */
static void code_language(xmlNode *pre, char *lang, size_t size)
{
    xmlNode *c = pre->children;

    lang[0] = '\0';
    while (c != NULL && c->type != XML_ELEMENT_NODE)
        c = c->next;
    for (int pass = 0; pass < 3 && lang[0] == '\0'; pass++) {
        xmlNode *e = pass == 0 ? pre : pass == 1 ? c : pre->parent;
        xmlChar *cls = e == NULL || e->type != XML_ELEMENT_NODE
                           ? NULL
                           : xmlGetProp(e, (const xmlChar *)"class");
        const char *p = (const char *)cls;

        while (p != NULL && *p != '\0') {
            size_t skip = language_prefix(p);
            size_t o = 0;

            if (skip > 0 && (p == (const char *)cls || isspace((unsigned char)p[-1]))) {
                for (p += skip; (isalnum((unsigned char)*p) || strchr("_+#.-", *p)) && *p != '\0' &&
                                o + 1 < size;
                     p++)
                    lang[o++] = *p;
                lang[o] = '\0';
                break;
            }
            p++;
        }
        xmlFree(cls);
    }
}

/* <pre> as a fenced block: lines kept as they are, a fence longer than any run inside. */
static int pre_block(struct h2m_md *m, xmlNode *n)
{
    struct buf *tmp = buf_new(HTML2MD_MAX_OUTPUT, 0);
    const char *s, *end;
    size_t len, fence;
    char lang[32];
    int r = ERR_NOMEM;

    if (tmp == NULL || (r = h2m_collect_text(n, tmp)) != 0)
        goto out;
    s = (const char *)buf_ptr(tmp);
    len = buf_len(tmp);
    /* HTML drops a newline right after <pre>; blank lines at the end show nothing. */
    if (len > 0 && s[0] == '\n') {
        s++;
        len--;
    }
    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
        len--;
    if (len == 0)
        goto out;
    fence = longest_backticks(s, len) + 1;
    fence = fence < 3 ? 3 : fence;
    code_language(n, lang, sizeof(lang));
    h2m_md_block(m);
    h2m_md_flush(m);
    put_fence(m, fence);
    h2m_md_put_str(m, lang);
    for (end = s + len; s < end && m->err == 0;) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t line = nl == NULL ? (size_t)(end - s) : (size_t)(nl - s);

        h2m_md_newline(m, 1);
        h2m_md_raw(m, s, line > 0 && s[line - 1] == '\r' ? line - 1 : line);
        s += line + (nl != NULL);
    }
    h2m_md_newline(m, 1);
    h2m_md_flush(m);
    put_fence(m, fence);
    h2m_md_block(m);
    r = m->err;
out:
    buf_free(tmp);
    return r;
}

/* Writes url as a link destination: "(" and ")" escaped (the cleaning encoded the rest). */
static void put_url(struct h2m_md *m, const char *url)
{
    for (const char *p = url; *p != '\0'; p++) {
        if (*p == '(' || *p == ')' || *p == '\\')
            h2m_md_put(m, "\\", 1);
        h2m_md_put(m, p, 1);
    }
}

/* url resolved against the base, or NULL for a link we do not keep (javascript: ...). */
static char *link_url(struct h2m_md *m, xmlNode *n, const char *attr)
{
    xmlChar *v = xmlGetProp(n, (const xmlChar *)attr);
    char *url = NULL;

    if (v == NULL)
        return NULL;
    if (v[0] != '\0' && h2m_url_resolve(m->base, (const char *)v, &url) != 0)
        m->err = ERR_NOMEM;
    /* href="#" is a script's click target, not a place. */
    if (url != NULL &&
        (url[0] == '\0' || h2m_url_is_unsafe(url) || strcmp((const char *)v, "#") == 0)) {
        free(url);
        url = NULL;
    }
    xmlFree(v);
    return url;
}

/* s with whitespace collapsed and trimmed, [ ] and \ escaped: alt text inside "![...]". */
static void put_alt(struct h2m_md *m, const unsigned char *s)
{
    size_t len = strlen((const char *)s), i = 0, k;
    bool space = false, any = false;

    while (i < len) {
        if (h2m_is_space(s + i, len - i, &k)) {
            space = true;
            i += k;
            continue;
        }
        h2m_md_put(m, " ", space && any ? 1 : 0);
        space = false;
        any = true;
        if (s[i] == '[' || s[i] == ']' || s[i] == '\\')
            h2m_md_put(m, "\\", 1);
        h2m_md_put(m, (const char *)s + i, 1);
        i++;
    }
}

/* <img>: ![alt](src). A lazy-loading page's data-src stands in for a src it left empty or
 * data:. No usable source: the alt text alone, as text. */
static int image(struct h2m_md *m, xmlNode *n)
{
    char *url = link_url(m, n, "src");
    xmlChar *alt = xmlGetProp(n, (const xmlChar *)"alt");

    if (url == NULL && m->err == 0)
        url = link_url(m, n, "data-src");
    if (url == NULL) {
        if (alt != NULL)
            h2m_md_text(m, alt);
    } else {
        h2m_md_flush(m);
        h2m_md_put(m, "![", 2);
        if (alt != NULL)
            put_alt(m, alt);
        h2m_md_put(m, "](", 2);
        put_url(m, url);
        h2m_md_put(m, ")", 1);
    }
    free(url);
    xmlFree(alt);
    return m->err;
}

/* ---- elements ---- */

static struct h2m_open *push_open(struct h2m_md *m, xmlNode *n, uint8_t flags)
{
    struct h2m_open *o = h2m_grow(m->open, &m->open_alloc, m->nopen, sizeof(*o));

    if (o == NULL) {
        m->err = ERR_NOMEM;
        return NULL;
    }
    m->open = o;
    o = &m->open[m->nopen++];
    memset(o, 0, sizeof(*o));
    o->node = n;
    o->seq = m->seq;
    o->lead_len = m->lead_len;
    o->flags = flags;
    return o;
}

static int block_scan_enter(void *arg, xmlNode *n)
{
    int *budget = arg;

    if (--*budget < 0)
        return -1;
    switch (h2m_tag_of(n)) {
    case H2M_BLOCK:
    case H2M_H:
    case H2M_UL:
    case H2M_OL:
    case H2M_LI:
    case H2M_BLOCKQUOTE:
    case H2M_PRE:
    case H2M_TABLE:
    case H2M_TR:
    case H2M_CELL:
    case H2M_HR:
    case H2M_CAPTION:
    case H2M_TABLE_PART:
        return -1;
    default:
        return n->type == XML_ELEMENT_NODE ? 1 : 0;
    }
}

/* True if a block element is inside n, or n is too big to tell (a bounded look, so that
 * nested inline elements do not make the walk quadratic). */
static bool has_block_inside(xmlNode *n)
{
    int budget = H2M_BLOCK_SCAN_MAX;

    for (xmlNode *c = n->children; c != NULL; c = c->next) {
        if (h2m_walk(c, block_scan_enter, NULL, &budget) < 0)
            return true;
    }
    return false;
}

/* b/strong, i/em, del/s: the marker only on the outermost, and none around blocks (a
 * "**" cannot span paragraphs); an element with nothing in it writes nothing. */
static int emphasis_enter(struct h2m_md *m, xmlNode *n, int *depth, const char *marker)
{
    bool emit = *depth == 0 && !has_block_inside(n);

    (*depth)++;
    if (push_open(m, n, emit ? OPEN_MARKER : 0) == NULL)
        return m->err;
    if (emit)
        h2m_md_lead_add(m, marker);
    return 1;
}

static void emphasis_leave(struct h2m_md *m, const struct h2m_open *o, int *depth,
                           const char *marker)
{
    (*depth)--;
    if (!(o->flags & OPEN_MARKER))
        return;
    if (m->seq == o->seq)
        m->lead_len = o->lead_len; /* nothing written inside: the opener goes too */
    else
        h2m_md_put_str(m, marker); /* before any space owed after it */
}

/* <a href>: [text](url). javascript:, vbscript: and data: links keep their text only
 * (a reader cannot follow them, and they can be long); so do links inside a link. A link
 * around blocks (a card: heading, paragraph) is written as one line of text. */
static int link_enter(struct h2m_md *m, xmlNode *n)
{
    char *url = m->link == 0 ? link_url(m, n, "href") : NULL;
    bool blocks = url != NULL && has_block_inside(n);
    struct h2m_open *o = push_open(m, n, url == NULL ? 0 : OPEN_LINK | (blocks ? OPEN_INLINE : 0));

    if (o == NULL) {
        free(url);
        return m->err;
    }
    if (url != NULL) {
        o->url = url; /* transferred */
        m->link++;
        if (blocks)
            h2m_md_block(m); /* a paragraph of its own, before blocks become spaces */
        m->inline_only += blocks;
        h2m_md_lead_add(m, "[");
    }
    return m->err != 0 ? m->err : 1;
}

static void link_leave(struct h2m_md *m, struct h2m_open *o)
{
    if (!(o->flags & OPEN_LINK))
        return;
    m->link--;
    if (o->flags & OPEN_INLINE) {
        m->inline_only--;
        m->pending_space = false;
    }
    if (m->seq == o->seq) {
        m->lead_len = o->lead_len;
    } else {
        h2m_md_put(m, "](", 2);
        put_url(m, o->url);
        h2m_md_put(m, ")", 1);
    }
    if (o->flags & OPEN_INLINE)
        h2m_md_block(m);
}

static int heading_enter(struct h2m_md *m, xmlNode *n)
{
    static const char hashes[] = "###### ";
    int level = h2m_heading_level(n);
    bool atx = m->inline_only == 0;

    h2m_md_block(m);
    if (push_open(m, n, atx ? OPEN_HEADING | OPEN_INLINE : 0) == NULL)
        return m->err;
    if (atx) {
        h2m_md_lead_add(m, hashes + 6 - level);
        m->inline_only++;
    }
    return 1;
}

static void heading_leave(struct h2m_md *m, const struct h2m_open *o)
{
    if (o->flags & OPEN_HEADING) {
        m->inline_only--;
        if (m->seq == o->seq)
            m->lead_len = o->lead_len;
    }
    h2m_md_block(m);
}

/* True if the innermost open container is a list item (a list nested in it stays tight). */
static bool in_list_item(const struct h2m_md *m)
{
    return m->nframes > 0 && !m->frames[m->nframes - 1].quote;
}

static int list_enter(struct h2m_md *m, xmlNode *n, bool ordered)
{
    struct h2m_open *o;
    xmlChar *start;

    if (m->inline_only == 0 && in_list_item(m))
        h2m_md_newline(m, 1);
    else
        h2m_md_block(m);
    if ((o = push_open(m, n, OPEN_LIST | (ordered ? OPEN_ORDERED : 0))) == NULL)
        return m->err;
    o->counter = 1;
    if (ordered && (start = xmlGetProp(n, (const xmlChar *)"start")) != NULL) {
        char *end;
        unsigned long v = strtoul((const char *)start, &end, 10);

        if (end != (char *)start && *end == '\0' && v <= 999999999)
            o->counter = (uint32_t)v;
        xmlFree(start);
    }
    return 1;
}

static void list_leave(struct h2m_md *m)
{
    if (m->inline_only == 0 && in_list_item(m))
        h2m_md_newline(m, 1);
    else
        h2m_md_block(m);
}

static int item_enter(struct h2m_md *m, xmlNode *n)
{
    struct h2m_open *list = NULL;
    char marker[16] = "- ";

    if (m->inline_only > 0) {
        m->pending_space = true;
        return push_open(m, n, 0) == NULL ? m->err : 1;
    }
    for (size_t i = m->nopen; i > 0; i--) {
        if (m->open[i - 1].flags & OPEN_LIST) {
            list = &m->open[i - 1];
            break;
        }
    }
    if (list != NULL && (list->flags & OPEN_ORDERED))
        snprintf(marker, sizeof(marker), "%u. ", (unsigned)list->counter++);
    h2m_md_newline(m, 1);
    if (h2m_md_push_frame(m, marker, false) != 0 || push_open(m, n, OPEN_FRAME) == NULL)
        return m->err;
    return 1;
}

static int quote_enter(struct h2m_md *m, xmlNode *n)
{
    bool frame = m->inline_only == 0;

    h2m_md_block(m);
    if (frame && h2m_md_push_frame(m, "> ", true) != 0)
        return m->err;
    return push_open(m, n, frame ? OPEN_FRAME : 0) == NULL ? m->err : 1;
}

/* <br>: a hard break after content on this line; a second one in a row, a paragraph
 * break. Where a newline is owed anyway (a block's start, an item's marker), nothing:
 * a hard break there would only leave blanks at a line's end. */
static void line_break(struct h2m_md *m)
{
    if (m->inline_only > 0) {
        m->pending_space = true;
    } else if (m->pending_break) {
        m->pending_break = false;
        h2m_md_newline(m, 2);
    } else if (m->pending_nl == 0 && m->line_has_content) {
        h2m_md_newline(m, 1);
        m->pending_break = true;
    }
}

/* A form control's visible text: a checkbox as GFM's "[x]"/"[ ]" (a task list item when
 * it starts one), a button's value. Other inputs show nothing a reader needs. */
static int input(struct h2m_md *m, xmlNode *n)
{
    xmlChar *type = xmlGetProp(n, (const xmlChar *)"type");
    xmlChar *value = NULL;

    if (type != NULL && strcasecmp((const char *)type, "checkbox") == 0) {
        bool checked = xmlHasProp(n, (const xmlChar *)"checked") != NULL;

        h2m_md_flush(m);
        h2m_md_put(m, checked ? "[x]" : "[ ]", 3);
        m->pending_space = true;
    } else if (type != NULL &&
               (strcasecmp((const char *)type, "submit") == 0 ||
                strcasecmp((const char *)type, "button") == 0 ||
                strcasecmp((const char *)type, "reset") == 0) &&
               (value = xmlGetProp(n, (const xmlChar *)"value")) != NULL) {
        m->pending_space = true;
        h2m_md_text(m, value);
        m->pending_space = true;
    }
    xmlFree(type);
    xmlFree(value);
    return m->err;
}

static int element_enter(struct h2m_md *m, xmlNode *n)
{
    enum h2m_tag t = h2m_tag_of(n);

    switch (t) {
    case H2M_DROP:
    case H2M_HEAD:
        return 0;
    case H2M_A:
        return link_enter(m, n);
    case H2M_IMG:
        return image(m, n) != 0 ? m->err : 0;
    case H2M_INPUT:
        return input(m, n);
    case H2M_BR:
        line_break(m);
        return 0;
    case H2M_HR:
        h2m_md_block(m);
        if (m->inline_only == 0)
            h2m_md_raw(m, "---", 3);
        h2m_md_block(m);
        return m->err;
    case H2M_H:
        return heading_enter(m, n);
    case H2M_UL:
    case H2M_OL:
        return list_enter(m, n, t == H2M_OL);
    case H2M_LI:
        return item_enter(m, n);
    case H2M_BLOCKQUOTE:
        return quote_enter(m, n);
    case H2M_PRE:
        return m->inline_only > 0 ? code_span(m, n) : pre_block(m, n);
    case H2M_CODE:
        return code_span(m, n);
    case H2M_STRONG:
        return emphasis_enter(m, n, &m->strong, "**");
    case H2M_EM:
        return emphasis_enter(m, n, &m->em, "*");
    case H2M_DEL:
        return emphasis_enter(m, n, &m->del, "~~");
    case H2M_TABLE:
        if (!m->in_cell && m->inline_only == 0 && !h2m_table_is_layout(n))
            return h2m_table(m, n);
        /* A layout table (or one inside a cell) is its cells' blocks. */
        __attribute__((fallthrough));
    case H2M_BLOCK:
    case H2M_TR:
    case H2M_CELL:
    case H2M_CAPTION:
    case H2M_TABLE_PART:
        h2m_md_block(m);
        return push_open(m, n, 0) == NULL ? m->err : 1;
    case H2M_OTHER:
        break;
    }
    return push_open(m, n, 0) == NULL ? m->err : 1;
}

static int md_enter(void *arg, xmlNode *n)
{
    struct h2m_md *m = arg;

    switch (n->type) {
    case XML_TEXT_NODE:
    case XML_CDATA_SECTION_NODE:
        return n->content == NULL ? 0 : h2m_md_text(m, n->content);
    case XML_ELEMENT_NODE:
        return element_enter(m, n);
    case XML_DOCUMENT_NODE:
    case XML_HTML_DOCUMENT_NODE:
        return push_open(m, n, 0) == NULL ? m->err : 1;
    default:
        return 0; /* comments, processing instructions, the doctype */
    }
}

static int md_leave(void *arg, xmlNode *n)
{
    struct h2m_md *m = arg;
    struct h2m_open *o = &m->open[m->nopen - 1];

    switch (h2m_tag_of(n)) {
    case H2M_A:
        link_leave(m, o);
        break;
    case H2M_H:
        heading_leave(m, o);
        break;
    case H2M_UL:
    case H2M_OL:
        list_leave(m);
        break;
    case H2M_STRONG:
        emphasis_leave(m, o, &m->strong, "**");
        break;
    case H2M_EM:
        emphasis_leave(m, o, &m->em, "*");
        break;
    case H2M_DEL:
        emphasis_leave(m, o, &m->del, "~~");
        break;
    case H2M_LI:
        if (o->flags & OPEN_FRAME) {
            h2m_md_pop_frame(m);
            h2m_md_newline(m, 1);
        }
        break;
    case H2M_BLOCKQUOTE:
        if (o->flags & OPEN_FRAME)
            h2m_md_pop_frame(m);
        h2m_md_block(m);
        break;
    case H2M_BLOCK:
    case H2M_TABLE:
    case H2M_TR:
    case H2M_CELL:
    case H2M_CAPTION:
    case H2M_TABLE_PART:
        h2m_md_block(m);
        break;
    default:
        break;
    }
    free(o->url);
    m->nopen--;
    return m->err;
}

int h2m_md_walk(struct h2m_md *m, xmlNode *root)
{
    int r = h2m_walk(root, md_enter, md_leave, m);

    return r != 0 ? r : m->err;
}
