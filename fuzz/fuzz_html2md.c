/*
 * fuzz_html2md.c - html2md_convert (html2md.h): a web page's body, which anyone who runs a
 * web server writes, turned into markdown and text for webfetch.
 *
 * Input: [flags][o1][o0][body...]. flags bits 0-1 choose the Content-Type (none, utf-8,
 * shift_jis, iso-8859-1), bit 2 the base URL (none or an https one); o1 o0 an offset.
 * Properties, each in both formats:
 *   - the call returns 0, ERR_NOMEM or ERR_INVALID; on 0 the result is NUL-terminated at
 *     its stated length, valid UTF-8 (this file's own decoder: the Unicode Standard's
 *     Table 3-7), has no outer whitespace and no three newlines in a row; text output has
 *     no ASCII whitespace but single spaces.
 *   - script and style content is never output. Checked two ways, each only when the body
 *     alone does not already produce the marker (an entity can spell it in text):
 *       prefix: "<script>SCRIPTMARK</script><style>STYLEMARK</style>" + body. The prefix is
 *       parsed before any body byte, so the body cannot change what it is (its <meta> can
 *       change the charset, but not into one where these ASCII bytes read otherwise and
 *       still spell the markers; bodies past the prescan window are left out).
 *       insert: the same at the offset o1o0 (mod the length) of the body, when the result is
 *       UTF-8; it may land in a comment, an attribute, a <textarea> or <plaintext>, where
 *       it is text or nothing, not script. So the harness parses the document itself
 *       (libxml2, the converter's options, with and without XML_PARSE_HUGE) and asserts only
 *       when every marker in both trees is inside a <script>/<style> element (never in an
 *       attribute, a comment, or other text).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/HTMLparser.h>

#include "err.h"
#include "fuzz.h"
#include "html2md.h"

#define PREFIX "<script>SCRIPTMARK</script><style>STYLEMARK</style>"
#define PRESCAN_WINDOW (64 * 1024) /* the converter's <meta> prescan (html2md_charset.c) */

static const char *const content_types[] = {NULL, "text/html; charset=utf-8",
                                            "text/html; charset=shift_jis",
                                            "text/html; charset=iso-8859-1"};

/* Length of the well-formed UTF-8 character at p (Table 3-7), or 0. */
static size_t utf8_char(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    size_t len;
    uint8_t lo = 0x80, hi = 0xbf;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4;
    else
        return 0;
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    }
    return len;
}

static bool is_utf8(const uint8_t *p, size_t n)
{
    for (size_t i = 0, k; i < n; i += k) {
        if ((k = utf8_char(p + i, n - i)) == 0)
            return false;
    }
    return true;
}

static bool has_marker(const char *s, size_t n)
{
    return fuzz_contains(s, n, "SCRIPTMARK", 10) || fuzz_contains(s, n, "STYLEMARK", 9);
}

/* Converts and checks the result's shape; returns it (caller frees) or NULL on a failure. */
static char *convert(const uint8_t *html, size_t len, const char *ct, const char *base,
                     enum html2md_format f, size_t *out_len)
{
    char *out = (char *)"junk";
    int r = html2md_convert(html, len, ct, base, f, &out, out_len);

    FUZZ_CHECK(r == 0 || r == ERR_NOMEM || r == ERR_INVALID, "returned %d", r);
    if (r != 0) {
        FUZZ_CHECK(out == NULL && *out_len == 0, "a failure left a result");
        return NULL;
    }
    FUZZ_CHECK(out != NULL && strlen(out) == *out_len, "length %zu, strlen %zu", *out_len,
               out == NULL ? 0 : strlen(out));
    if (!is_utf8((const uint8_t *)out, *out_len)) {
        fuzz_dump("output", out, *out_len);
        FUZZ_CHECK(false, "output is not UTF-8");
    }
    FUZZ_CHECK(*out_len == 0 || (strchr(" \t\n\r\f", out[0]) == NULL &&
                                 strchr(" \t\n\r\f", out[*out_len - 1]) == NULL),
               "output not trimmed");
    FUZZ_CHECK(!fuzz_contains(out, *out_len, "\n\n\n", 3), "three newlines in a row");
    if (f == HTML2MD_TEXT) {
        FUZZ_CHECK(strpbrk(out, "\t\n\r\f") == NULL && !fuzz_contains(out, *out_len, "  ", 2),
                   "text output whitespace not collapsed");
    }
    return out;
}

/* True if the marker occurs only as script/style content in the tree under n (walked
 * without recursion: libxml2 builds trees 256 deep). */
static bool markers_only_in_scripts(xmlNode *root)
{
    xmlNode *n = root;

    while (n != NULL) {
        const char *parent = n->parent != NULL && n->parent->type == XML_ELEMENT_NODE
                                 ? (const char *)n->parent->name
                                 : "";
        bool script = strcasecmp(parent, "script") == 0 || strcasecmp(parent, "style") == 0;

        if (n->type == XML_ELEMENT_NODE) {
            for (xmlAttr *a = n->properties; a != NULL; a = a->next) {
                xmlChar *v = xmlNodeGetContent((xmlNode *)a);
                bool bad = v != NULL && has_marker((const char *)v, strlen((const char *)v));

                xmlFree(v);
                if (bad)
                    return false;
            }
        } else if (n->content != NULL && !script &&
                   has_marker((const char *)n->content, strlen((const char *)n->content))) {
            return false;
        }
        if (n->children != NULL && n->type != XML_ENTITY_REF_NODE) {
            n = n->children;
            continue;
        }
        while (n != root && n->next == NULL)
            n = n->parent;
        if (n == root)
            break;
        n = n->next;
    }
    return true;
}

static void check_absent(const uint8_t *doc, size_t len, const char *ct, const char *base)
{
    for (int f = HTML2MD_MARKDOWN; f <= HTML2MD_TEXT; f++) {
        size_t out_len;
        char *out = convert(doc, len, ct, base, (enum html2md_format)f, &out_len);

        if (out != NULL && has_marker(out, out_len)) {
            fuzz_dump("document", doc, len);
            fuzz_dump("output", out, out_len);
            FUZZ_CHECK(false, "script or style content in the %s output",
                       f == HTML2MD_TEXT ? "text" : "markdown");
        }
        free(out);
    }
}

static void check_inserted(const uint8_t *body, size_t len, size_t at, const char *base)
{
    static const char ct[] = "text/html; charset=utf-8";
    size_t plen = sizeof(PREFIX) - 1, n = len + plen;
    uint8_t *doc;
    htmlDocPtr tree;
    bool clean;

    at %= len + 1;
    doc = fuzz_malloc(n);
    memcpy(doc, body, at);
    memcpy(doc + at, PREFIX, plen);
    memcpy(doc + at + plen, body + at, len - at);
    /* Only documents the converter passes to libxml2 unchanged: then this parse is its
     * parse. The document, not the body: the offset can split a character of a UTF-8 body
     * (the converter then parses a U+FFFD where this would parse the lone byte). And no
     * BOM: the converter drops it. */
    if (!is_utf8(doc, n) || memchr(doc, 0, n) != NULL ||
        (n >= 3 && memcmp(doc, "\xef\xbb\xbf", 3) == 0)) {
        free(doc);
        return;
    }
    /* Both ways the converter may parse: a document past libxml2's depth limit of 256 is
     * parsed again with XML_PARSE_HUGE when small enough, and the part past the limit can
     * hold a marker the first parse never reached. */
    clean = true;
    for (int huge = 0; huge <= 1 && clean; huge++) {
        tree = htmlReadMemory((const char *)doc, (int)n, NULL, "UTF-8",
                              HTML_PARSE_NONET | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
                                  (huge ? XML_PARSE_HUGE : 0));
        clean = tree != NULL && markers_only_in_scripts((xmlNode *)tree);
        xmlFreeDoc(tree);
    }
    if (clean)
        check_absent(doc, n, ct, base);
    free(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *ct, *base;
    const uint8_t *body;
    size_t len, at, plen = sizeof(PREFIX) - 1;
    bool marks = false;
    uint8_t *doc;

    if (size < 3)
        return 0;
    ct = content_types[data[0] & 3];
    base = (data[0] & 4) ? "https://fuzz.example/dir/page.html?q=1" : NULL;
    at = (size_t)data[1] << 8 | data[2];
    body = data + 3;
    len = size - 3;
    for (int f = HTML2MD_MARKDOWN; f <= HTML2MD_TEXT; f++) {
        size_t out_len;
        char *out = convert(body, len, ct, base, (enum html2md_format)f, &out_len);

        marks = marks || (out != NULL && has_marker(out, out_len)) ||
                has_marker((const char *)body, len);
        free(out);
    }
    if (marks || len + plen >= PRESCAN_WINDOW)
        return 0;
    doc = fuzz_malloc(len + plen);
    memcpy(doc, PREFIX, plen);
    memcpy(doc + plen, body, len);
    check_absent(doc, len + plen, ct, base);
    free(doc);
    check_inserted(body, len, at, base);
    return 0;
}
