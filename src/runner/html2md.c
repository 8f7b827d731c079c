/*
 * html2md.c - html2md_convert (html2md.h): the document made UTF-8 (html2md_charset.c),
 * parsed by libxml2's HTML parser, then walked by the markdown rules (html2md_md.c,
 * html2md_table.c) or the text rule here; then, as the Go runner does, runs of three or
 * more newlines cut to two and the whole trimmed.
 *
 * Also the pieces both outputs share: the element table, a walk over the tree that uses
 * the nodes' parent links instead of recursion (libxml2 builds trees 256 deep; our own
 * code never recurses on the document at all), and what counts as whitespace.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/HTMLparser.h>
#include <libxml/parser.h>

#include "buf.h"
#include "err.h"
#include "html2md.h"
#include "html2md_internal.h"

/*
 * HTML_PARSE_NONET: never load anything. NOERROR/NOWARNING: libxml2 would print to stderr.
 * NOIMPLIED is not set: the implied html/body keep the tree shape the rules expect.
 * Not XML_PARSE_HUGE at first: it lifts the depth limit of 256, and libxml2 2.9 then
 * matches every end tag against the whole open-element stack (100,000 open <div>s and as
 * many stray </span>s take minutes). See parse_document.
 */
#define H2M_PARSE_OPTIONS (HTML_PARSE_NONET | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING)

/* The most open-stack steps (tags x tags: about 7,000 tags) a parse with XML_PARSE_HUGE
 * may cost: well under a tenth of a second. */
#define H2M_HUGE_WORK_MAX (50u * 1000 * 1000)

static pthread_once_t h2m_once = PTHREAD_ONCE_INIT;

/* libxml2's global tables must be set up once, before two threads race to do it. */
static void h2m_init_libxml(void)
{
    xmlInitParser();
}

/* Sorted by name, for bsearch. */
static const struct h2m_tag_entry {
    const char *name;
    enum h2m_tag tag;
} h2m_tags[] = {
    {"a", H2M_A},
    {"address", H2M_BLOCK},
    {"article", H2M_BLOCK},
    {"aside", H2M_BLOCK},
    {"b", H2M_STRONG},
    {"blockquote", H2M_BLOCKQUOTE},
    {"body", H2M_BLOCK},
    {"br", H2M_BR},
    {"caption", H2M_CAPTION},
    {"center", H2M_BLOCK},
    {"code", H2M_CODE},
    {"dd", H2M_BLOCK},
    {"del", H2M_DEL},
    {"details", H2M_BLOCK},
    {"dialog", H2M_BLOCK},
    {"dir", H2M_UL},
    {"div", H2M_BLOCK},
    {"dl", H2M_BLOCK},
    {"dt", H2M_BLOCK},
    {"em", H2M_EM},
    {"fieldset", H2M_BLOCK},
    {"figcaption", H2M_BLOCK},
    {"figure", H2M_BLOCK},
    {"footer", H2M_BLOCK},
    {"form", H2M_BLOCK},
    {"h1", H2M_H},
    {"h2", H2M_H},
    {"h3", H2M_H},
    {"h4", H2M_H},
    {"h5", H2M_H},
    {"h6", H2M_H},
    {"head", H2M_HEAD},
    {"header", H2M_BLOCK},
    {"hgroup", H2M_BLOCK},
    {"hr", H2M_HR},
    {"html", H2M_BLOCK},
    {"i", H2M_EM},
    {"img", H2M_IMG},
    {"input", H2M_INPUT},
    {"kbd", H2M_CODE},
    {"legend", H2M_BLOCK},
    {"li", H2M_LI},
    {"listing", H2M_PRE},
    {"main", H2M_BLOCK},
    {"menu", H2M_UL},
    {"nav", H2M_BLOCK},
    {"noscript", H2M_DROP},
    {"ol", H2M_OL},
    {"option", H2M_LI},
    {"p", H2M_BLOCK},
    {"plaintext", H2M_PRE},
    {"pre", H2M_PRE},
    {"s", H2M_DEL},
    {"samp", H2M_CODE},
    {"script", H2M_DROP},
    {"section", H2M_BLOCK},
    {"select", H2M_UL},
    {"strike", H2M_DEL},
    {"strong", H2M_STRONG},
    {"style", H2M_DROP},
    {"summary", H2M_BLOCK},
    {"svg", H2M_DROP},
    {"table", H2M_TABLE},
    {"tbody", H2M_TABLE_PART},
    {"td", H2M_CELL},
    {"template", H2M_DROP},
    {"textarea", H2M_BLOCK},
    {"tfoot", H2M_TABLE_PART},
    {"th", H2M_CELL},
    {"thead", H2M_TABLE_PART},
    {"title", H2M_HEAD},
    {"tr", H2M_TR},
    {"tt", H2M_CODE},
    {"ul", H2M_UL},
    {"xmp", H2M_PRE},
};

static int tag_cmp(const void *key, const void *elem)
{
    return strcasecmp(key, ((const struct h2m_tag_entry *)elem)->name);
}

enum h2m_tag h2m_tag_of(const xmlNode *n)
{
    const struct h2m_tag_entry *e;

    if (n == NULL || n->type != XML_ELEMENT_NODE || n->name == NULL)
        return H2M_OTHER;
    e = bsearch(n->name, h2m_tags, sizeof(h2m_tags) / sizeof(h2m_tags[0]), sizeof(h2m_tags[0]),
                tag_cmp);
    return e == NULL ? H2M_OTHER : e->tag;
}

int h2m_heading_level(const xmlNode *n)
{
    const char *name = (const char *)n->name;

    if (h2m_tag_of(n) != H2M_H)
        return 0;
    return name[1] - '0';
}

int h2m_walk(xmlNode *root, h2m_enter_fn enter, h2m_leave_fn leave, void *arg)
{
    xmlNode *n = root;
    int r;

    for (;;) {
        if ((r = enter(arg, n)) < 0)
            return r;
        if (r > 0 && n->children != NULL) {
            n = n->children;
            continue;
        }
        if (r > 0 && leave != NULL && (r = leave(arg, n)) < 0)
            return r;
        /* Up past every last child, leaving each parent (all of them were entered with 1). */
        while (n != root && n->next == NULL) {
            n = n->parent;
            if (leave != NULL && (r = leave(arg, n)) < 0)
                return r;
        }
        if (n == root)
            return 0;
        n = n->next;
    }
}

bool h2m_is_space(const unsigned char *s, size_t len, size_t *n)
{
    if (s[0] == ' ' || s[0] == '\t' || s[0] == '\n' || s[0] == '\r' || s[0] == '\f') {
        *n = 1;
        return true;
    }
    if (len >= 2 && s[0] == 0xc2 && s[1] == 0xa0) {
        *n = 2;
        return true;
    }
    return false;
}

bool h2m_next_word(const unsigned char *s, size_t len, size_t *i, size_t *start, bool *space)
{
    size_t k;

    while (*i < len && h2m_is_space(s + *i, len - *i, &k)) {
        *space = true;
        *i += k;
    }
    *start = *i;
    while (*i < len && !h2m_is_space(s + *i, len - *i, &k))
        (*i)++;
    return *i > *start;
}

void *h2m_grow(void *arr, size_t *alloc, size_t used, size_t size)
{
    size_t n = *alloc == 0 ? 16 : *alloc * 2;
    void *p;

    if (used < *alloc)
        return arr;
    if (n > SIZE_MAX / size || (p = realloc(arr, n * size)) == NULL)
        return NULL;
    *alloc = n;
    return p;
}

static int collect_enter(void *arg, xmlNode *n)
{
    struct buf *out = arg;
    enum h2m_tag t = h2m_tag_of(n);

    if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE)
        return n->content == NULL ? 0 : buf_put_str(out, (const char *)n->content);
    if (n->type != XML_ELEMENT_NODE || t == H2M_DROP)
        return 0;
    if (t == H2M_BR)
        return buf_put(out, "\n", 1);
    return 1;
}

int h2m_collect_text(xmlNode *n, struct buf *out)
{
    return h2m_walk(n, collect_enter, NULL, out);
}

/* ---- text ---- */

struct h2m_text {
    struct buf *out;
    bool pending_space;
};

/* Appends the text node's content, each run of whitespace as one (owed) space. */
static int text_put(struct h2m_text *t, const unsigned char *s)
{
    size_t len = strlen((const char *)s), i = 0, start;
    int r;

    while (h2m_next_word(s, len, &i, &start, &t->pending_space)) {
        if (t->pending_space && buf_len(t->out) > 0 && (r = buf_put(t->out, " ", 1)) != 0)
            return r;
        t->pending_space = false;
        if ((r = buf_put(t->out, s + start, i - start)) != 0)
            return r;
    }
    return 0;
}

/* A block's edges, a <br>, a cell and a list item separate words as a browser shows them. */
static bool text_separates(enum h2m_tag t)
{
    return t != H2M_OTHER && t != H2M_A && t != H2M_CODE && t != H2M_STRONG && t != H2M_EM &&
           t != H2M_DEL && t != H2M_IMG && t != H2M_INPUT;
}

static int text_enter(void *arg, xmlNode *n)
{
    struct h2m_text *t = arg;
    enum h2m_tag tag = h2m_tag_of(n);

    if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE)
        return n->content == NULL ? 0 : text_put(t, n->content);
    if (n->type != XML_ELEMENT_NODE && n->type != XML_DOCUMENT_NODE &&
        n->type != XML_HTML_DOCUMENT_NODE)
        return 0;
    if (tag == H2M_DROP)
        return 0;
    if (text_separates(tag))
        t->pending_space = true;
    return 1;
}

static int text_leave(void *arg, xmlNode *n)
{
    struct h2m_text *t = arg;

    if (text_separates(h2m_tag_of(n)))
        t->pending_space = true;
    return 0;
}

/* ---- the entry point ---- */

/* H2M_FOUND: stops the walk for <base> (not an error: the caller knows the code). */
#define H2M_FOUND (-1)

/* The document's <base href>, if any: the first one, as HTML5 says. */
static int find_base_enter(void *arg, xmlNode *n)
{
    xmlChar **href = arg;

    if (n->type != XML_ELEMENT_NODE && n->type != XML_HTML_DOCUMENT_NODE &&
        n->type != XML_DOCUMENT_NODE)
        return 0;
    if (n->type == XML_ELEMENT_NODE && strcasecmp((const char *)n->name, "base") == 0 &&
        (*href = xmlGetProp(n, (const xmlChar *)"href")) != NULL)
        return H2M_FOUND;
    return 1;
}

static int resolve_base(xmlDoc *doc, const char *base_url, char **base)
{
    xmlChar *href = NULL;
    int r;

    *base = NULL;
    (void)h2m_walk((xmlNode *)doc, find_base_enter, NULL, &href); /* 0 or H2M_FOUND */
    if (href == NULL) {
        if (base_url == NULL)
            return 0;
        return (*base = strdup(base_url)) == NULL ? ERR_NOMEM : 0;
    }
    r = h2m_url_resolve(base_url, (const char *)href, base);
    xmlFree(href);
    return r;
}

/* Copies b into a malloc'd string, every run of 3+ "\n" as 2, ASCII whitespace trimmed. */
static int finish(struct buf *b, char **out, size_t *out_len)
{
    const char *s = (const char *)buf_ptr(b);
    size_t len = buf_len(b), o = 0, nl = 0;
    char *p;

    while (len > 0 && strchr(" \t\n\r\f", s[0]) != NULL) {
        s++;
        len--;
    }
    while (len > 0 && strchr(" \t\n\r\f", s[len - 1]) != NULL)
        len--;
    if ((p = malloc(len + 1)) == NULL)
        return ERR_NOMEM;
    for (size_t i = 0; i < len; i++) {
        nl = s[i] == '\n' ? nl + 1 : 0;
        if (nl <= 2)
            p[o++] = s[i];
    }
    p[o] = '\0';
    *out = p;
    *out_len = o;
    return 0;
}

static int convert_doc(xmlDoc *doc, const char *base_url, enum html2md_format format, struct buf *b)
{
    char *base = NULL;
    int r;

    if (format == HTML2MD_TEXT) {
        struct h2m_text t = {.out = b};

        return h2m_walk((xmlNode *)doc, text_enter, text_leave, &t);
    }
    if ((r = resolve_base(doc, base_url, &base)) == 0) {
        struct h2m_md m;

        h2m_md_init(&m, b, base);
        r = h2m_md_walk(&m, (xmlNode *)doc);
        h2m_md_free(&m);
    }
    free(base);
    return r;
}

/* An upper bound on what a parse with XML_PARSE_HUGE costs for s: tags (an upper bound on
 * the depth) times tags. Not start tags x end tags: a <body> tag, too, is checked against
 * the whole open stack. */
static uint64_t huge_parse_work(const char *s, size_t len)
{
    uint64_t tags = 0;

    for (const char *p = s; (p = memchr(p, '<', len - (size_t)(p - s))) != NULL; p++)
        tags++;
    return tags * tags;
}

/*
 * Parses s as HTML into *doc (NULL when libxml2 gives none). A document nested deeper than
 * libxml2's limit of 256 stops parsing there, losing the rest: legacy pages get that deep
 * with a <font> never closed on each line. Such a document is parsed again with
 * XML_PARSE_HUGE when matching its tags against the open stack stays within
 * H2M_HUGE_WORK_MAX steps; a bigger one keeps the part before the limit. 0 or ERR_NOMEM.
 */
static int parse_document(const char *s, size_t len, xmlDoc **doc)
{
    htmlParserCtxtPtr ctxt = htmlNewParserCtxt();
    bool too_deep;

    *doc = NULL;
    if (ctxt == NULL)
        return ERR_NOMEM;
    *doc = htmlCtxtReadMemory(ctxt, s, (int)len, NULL, "UTF-8", H2M_PARSE_OPTIONS);
    /* libxml2's "Excessive depth in document": an internal error that stopped the parser. */
    too_deep = ctxt->errNo == XML_ERR_INTERNAL_ERROR && ctxt->disableSAX != 0;
    htmlFreeParserCtxt(ctxt);
    if (too_deep && huge_parse_work(s, len) <= H2M_HUGE_WORK_MAX) {
        xmlFreeDoc(*doc);
        *doc = htmlReadMemory(s, (int)len, NULL, "UTF-8", H2M_PARSE_OPTIONS | XML_PARSE_HUGE);
    }
    return 0;
}

int html2md_convert(const uint8_t *html, size_t len, const char *content_type, const char *base_url,
                    enum html2md_format format, char **out, size_t *out_len)
{
    char *utf8 = NULL;
    size_t utf8_len = 0;
    xmlDoc *doc = NULL;
    struct buf *b = NULL, *clean = NULL;
    int r;

    *out = NULL;
    *out_len = 0;
    if (len > HTML2MD_MAX_INPUT)
        return ERR_INVALID;
    pthread_once(&h2m_once, h2m_init_libxml);
    if ((r = h2m_to_utf8(html, len, content_type, HTML2MD_MAX_INPUT * 3, &utf8, &utf8_len)) != 0)
        goto out;
    r = ERR_NOMEM;
    if ((b = buf_new(HTML2MD_MAX_OUTPUT, 0)) == NULL)
        goto out;
    if (utf8_len > 0) {
        /* libxml2 gives no doc for a document with nothing in it but blanks, or on
         * failure; a size over INT_MAX cannot happen (HTML2MD_MAX_INPUT * 3). */
        if ((r = parse_document(utf8, utf8_len, &doc)) != 0)
            goto out;
        if (doc == NULL && utf8_len != strspn(utf8, " \t\r\n\f")) {
            r = ERR_INVALID;
            goto out;
        }
    }
    if (doc != NULL && (r = convert_doc(doc, base_url, format, b)) != 0) {
        r = r == ERR_TOO_LARGE ? ERR_INVALID : r;
        goto out;
    }
    /* Everything written came from valid UTF-8 or is ASCII; checked all the same, since a
     * result that is not UTF-8 would break the caller's JSON. */
    r = ERR_NOMEM;
    if ((clean = buf_new(HTML2MD_MAX_OUTPUT * 2, 0)) == NULL ||
        (r = h2m_put_utf8_sanitized(clean, buf_ptr(b), buf_len(b))) != 0) {
        r = r == ERR_TOO_LARGE ? ERR_INVALID : r;
        goto out;
    }
    r = finish(clean, out, out_len);
out:
    xmlFreeDoc(doc);
    buf_free(b);
    buf_free(clean);
    free(utf8);
    return r;
}
