/*
 * html2md.h - a fetched HTML document as markdown or plain text, for the runner's webfetch
 * operation (RUNNER-OPS.md 8, "Conversion"). Pure: bytes in, UTF-8 out, no I/O, no network
 * (libxml2's HTML parser runs with HTML_PARSE_NONET).
 *
 * The body comes from any web server, so it is untrusted input (fuzz/fuzz_html2md.c): the
 * conversion is linear in the input, uses no recursion that the document controls, and
 * caps what it builds. Not for: fetching, deciding whether a body is HTML, or truncating
 * the result for a message (the caller does those).
 */
#ifndef CREDBROKER_HTML2MD_H
#define CREDBROKER_HTML2MD_H

#include <stddef.h>
#include <stdint.h>

enum html2md_format { HTML2MD_MARKDOWN, HTML2MD_TEXT };

/*
 * Converts an HTML document (raw body bytes as received, content-coding already removed)
 * to UTF-8 markdown or text. content_type: the response's Content-Type value or NULL (its
 * charset parameter wins; else the document's <meta charset>/<meta http-equiv>; else UTF-8).
 * base_url: the final URL after redirects, for making links/images absolute (a <base href>
 * in the document is honoured). Returns 0 with *out (malloc'd, NUL-terminated, valid UTF-8)
 * and *out_len, or ERR_NOMEM, or ERR_INVALID when the document cannot be parsed at all
 * (the caller then falls back to HTML2MD_TEXT, then to raw).
 * Thread-safe: runs on libuv's thread pool, several at once.
 *
 * Also ERR_INVALID: a body over HTML2MD_MAX_INPUT, or a result that would pass
 * HTML2MD_MAX_OUTPUT (markdown of a pathological document; its text is smaller).
 * Caller frees *out with free(); on failure *out is NULL and *out_len 0.
 *
 * Choices where RUNNER-OPS.md 8 leaves room (tests/unit/test_html2md.c shows each):
 *  - charset: a byte order mark wins over everything (HTML5); labels as the WHATWG
 *    Encoding Standard reads them (iso-8859-1 and us-ascii mean windows-1252); an unknown
 *    label is passed over; undecodable bytes become U+FFFD, the rest of the page is kept.
 *  - links: javascript:, vbscript: and data: hrefs, and href="#", keep their text only; an
 *    image without a usable src (data: included; a lazy page's data-src stands in) gives
 *    its alt text. A link around blocks is one line of text.
 *  - NO-BREAK SPACE is output as a plain space, collapsed like any other.
 *  - dropped in both formats: script, style, noscript, template, svg, comments; markdown
 *    also drops <head> (title included), text keeps the <title> (as Go's text output).
 *  - tables: a table with a table, heading, list, pre, blockquote or rule inside, or with
 *    no row of two cells, lays out a page: its cells are written as blocks.
 *  - <br> is "  " + newline, two in a row a paragraph break; a checkbox is "[x]"/"[ ]".
 *
 * Known limit: libxml2 stops building the tree at element depth 256 (its default
 * xmlParserMaxDepth). A deeper document is parsed again without the limit
 * (XML_PARSE_HUGE) only when that stays cheap: tags are then matched against the whole
 * open stack, so only a document of about 7,000 tags or fewer (a legacy page that never
 * closes its <font>s); a bigger one, like 100,000 nested <div>s, converts only up to the
 * point where the limit was hit.
 */
int html2md_convert(const uint8_t *html, size_t len, const char *content_type, const char *base_url,
                    enum html2md_format format, char **out, size_t *out_len);

/* The largest body converted (webfetch reads at most 5 MiB). */
#define HTML2MD_MAX_INPUT (16u * 1024 * 1024)
/* The largest result built. */
#define HTML2MD_MAX_OUTPUT (64u * 1024 * 1024)

#endif
