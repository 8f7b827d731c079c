/*
 * test_html2md.c - src/runner/html2md*.c: each markdown construct on its own, the text
 * output, charsets, malformed and hostile documents, the URL resolver against RFC 3986's
 * own examples, and the corpus of whole pages in tests/data/html2md (each NAME.html with
 * the reviewed NAME.md, and NAME.txt for some; MANIFEST gives each page's Content-Type
 * and URL), compared byte for byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "html2md.h"
#include "html2md_internal.h"
#include "utf8.h"

#define BASE "https://example.com/docs/guide/page.html"

static const char *corpus_dir;

static bool valid_utf8(const char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = utf8_decode((const unsigned char *)s + i, len - i, &cp);

        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

/* Converts html (of length len) and returns the result, checked NUL-terminated, of the
 * length stated and valid UTF-8. Caller frees. */
static char *convert_n(const char *html, size_t len, const char *ct, const char *base,
                       enum html2md_format f)
{
    char *out = NULL;
    size_t out_len = 0;

    assert_int_equal(html2md_convert((const uint8_t *)html, len, ct, base, f, &out, &out_len), 0);
    assert_non_null(out);
    assert_int_equal(strlen(out), out_len);
    assert_true(valid_utf8(out, out_len));
    return out;
}

static void expect_as(const char *html, const char *ct, const char *base, enum html2md_format f,
                      const char *want)
{
    char *got = convert_n(html, strlen(html), ct, base, f);

    if (strcmp(got, want) != 0)
        fprintf(stderr, "html: %s\ngot:\n%s\nwant:\n%s\n", html, got, want);
    assert_string_equal(got, want);
    free(got);
}

static void expect_md(const char *html, const char *want)
{
    expect_as(html, NULL, BASE, HTML2MD_MARKDOWN, want);
}

static void expect_text(const char *html, const char *want)
{
    expect_as(html, NULL, BASE, HTML2MD_TEXT, want);
}

static void test_headings_are_atx_and_one_line(void **state)
{
    expect_md("<h1>One</h1><h2>Two</h2><h3>Three</h3><h4>Four</h4><h5>Five</h5><h6>Six</h6>",
              "# One\n\n## Two\n\n### Three\n\n#### Four\n\n##### Five\n\n###### Six");
    expect_md("<h2>Split<br>over <div>lines</div></h2><p>after</p>",
              "## Split over lines\n\nafter");
    /* Empty headings leave nothing behind. */
    expect_md("<p>a</p><h2> </h2><h3></h3><p>b</p>", "a\n\nb");
    expect_md("<h2><a href=\"#x\">Anchor</a> title</h2>", "## [Anchor](" BASE "#x) title");
}

static void test_paragraphs_and_whitespace_collapse_as_a_browser(void **state)
{
    expect_md("<p>one\n   two\t\tthree</p>\n\n\n<p>  four  </p>", "one two three\n\nfour");
    expect_md("<p>a <b> b </b> c</p>", "a **b** c");
    expect_md("<div>x</div><div>y</div>", "x\n\ny");
    expect_md("<p>a&nbsp;&nbsp;b</p>", "a b");
    expect_md("<span>in</span><span>line</span>", "inline");
}

static void test_links_are_made_absolute(void **state)
{
    expect_md("<a href=\"other.html\">rel</a>", "[rel](https://example.com/docs/guide/other.html)");
    expect_md("<a href=\"/root\">abs path</a>", "[abs path](https://example.com/root)");
    expect_md("<a href=\"../up/x?q=1#f\">up</a>", "[up](https://example.com/docs/up/x?q=1#f)");
    expect_md("<a href=\"https://other.org/a\">abs</a>", "[abs](https://other.org/a)");
    expect_md("<a href=\"//cdn.example.net/x\">proto</a>", "[proto](https://cdn.example.net/x)");
    expect_md("<a href=\"#sec\">frag</a>", "[frag](" BASE "#sec)");
    expect_md("<a href=\"mailto:a@b.c\">mail</a>", "[mail](mailto:a@b.c)");
    expect_md("<a href=\" a b(1).html \">space</a>",
              "[space](https://example.com/docs/guide/a%20b\\(1\\).html)");
    /* javascript:, vbscript: and data: links keep their text only. */
    expect_md("<a href=\"javascript:alert(1)\">js</a> <a href=\" JavaScript:x\">js2</a> "
              "<a href=\"data:text/html,x\">d</a>",
              "js js2 d");
    expect_md("<a>no href</a> <a href=\"#\">script target</a>", "no href script target");
    /* An empty link (an icon anchor) is dropped. */
    expect_md("<h2><a href=\"#t\" class=\"anchor\"></a>Title</h2>", "## Title");
    expect_md("<p>see <a href=\"x\"> spaced </a>here</p>",
              "see [spaced](https://example.com/docs/guide/x) here");
    /* A link around blocks is one line. */
    expect_md("<a href=\"/card\"><div><h3>Card</h3><p>Text</p></div></a>",
              "[Card Text](https://example.com/card)");
    expect_md("<p>before</p>see<a href=\"/card\"><div>Card</div></a>after",
              "before\n\nsee\n\n[Card](https://example.com/card)\n\nafter");
}

static void test_base_href_is_honoured(void **state)
{
    expect_md("<html><head><base href=\"/v2/\"></head><body><a href=\"x\">x</a>"
              "<img src=\"i.png\" alt=\"i\"></body></html>",
              "[x](https://example.com/v2/x)![i](https://example.com/v2/i.png)");
    /* The first <base> with an href wins (a second one once leaked: fuzz_html2md). */
    expect_md("<base target=_top><base href=\"https://mirror.org/a/\"><base href=\"/no/\">"
              "<a href=\"b\">b</a>",
              "[b](https://mirror.org/a/b)");
    /* No base URL at all: relative links stay relative. */
    expect_as("<a href=\"x y\">x</a>", NULL, NULL, HTML2MD_MARKDOWN, "[x](x%20y)");
}

static void test_images(void **state)
{
    expect_md("<img src=\"a.png\" alt=\"An [odd]  alt\">",
              "![An \\[odd\\] alt](https://example.com/docs/guide/a.png)");
    expect_md("<img src=\"a.png\">", "![](https://example.com/docs/guide/a.png)");
    expect_md("<img src=\"data:image/gif;base64,R0lG\" data-src=\"/real.png\" alt=\"lazy\">",
              "![lazy](https://example.com/real.png)");
    expect_md("<p>x <img src=\"data:image/png;base64,AAAA\" alt=\"inline\"> y</p>", "x inline y");
    expect_md("<a href=\"/big.png\"><img src=\"/small.png\" alt=\"thumb\"></a>",
              "[![thumb](https://example.com/small.png)](https://example.com/big.png)");
}

static void test_lists_nest_with_indentation(void **state)
{
    expect_md("<ul><li>a</li><li>b</li></ul>", "- a\n- b");
    expect_md("<ol><li>a</li><li>b</li></ol>", "1. a\n2. b");
    expect_md("<ol start=\"9\"><li>nine</li><li>ten</li><li>eleven</li></ol>",
              "9. nine\n10. ten\n11. eleven");
    expect_md("<ol start=\"0\"><li>zero</li><li>one</li></ol>", "0. zero\n1. one");
    expect_md("<ul><li>a<ul><li>a1</li><li>a2<ol><li>deep</li></ol></li></ul></li><li>b</li></ul>",
              "- a\n  - a1\n  - a2\n    1. deep\n- b");
    expect_md("<ol><li><p>first para</p><p>second para</p></li><li>next</li></ol>",
              "1. first para\n\n   second para\n\n2. next");
    expect_md("<p>before</p><ul><li>x</li></ul><p>after</p>", "before\n\n- x\n\nafter");
    /* Unclosed items, as real pages write them. */
    expect_md("<ul><li>one<li>two</ul>", "- one\n- two");
    expect_md("<ul><li>code:<pre>x = 1\ny = 2</pre></li></ul>",
              "- code:\n\n  ```\n  x = 1\n  y = 2\n  ```");
    expect_md("<ul><li></li><li>only</li></ul>", "- only");
}

static void test_blockquotes_nest(void **state)
{
    expect_md("<blockquote><p>a</p><p>b</p></blockquote>", "> a\n>\n> b");
    expect_md("<blockquote>outer<blockquote>inner</blockquote>back</blockquote>",
              "> outer\n>\n> > inner\n>\n> back");
    expect_md("<blockquote><ul><li>x</li><li>y</li></ul></blockquote>", "> - x\n> - y");
    expect_md("<p>a</p><blockquote>q</blockquote><p>b</p>", "a\n\n> q\n\nb");
}

static void test_code_spans_use_a_longer_fence(void **state)
{
    expect_md("<p>run <code>make test</code> now</p>", "run `make test` now");
    expect_md("<code>a `b` c</code>", "``a `b` c``");
    expect_md("<code>``x</code>", "``` ``x ```");
    expect_md("<code>  a\n  b </code>", "`a b`");
    expect_md("<code>*not* _emph_ [x]</code>", "`*not* _emph_ [x]`");
    expect_md("<p><kbd>Ctrl</kbd>+<kbd>C</kbd></p>", "`Ctrl`+`C`");
    expect_md("<code></code>x", "x");
}

static void test_pre_blocks_are_fenced(void **state)
{
    expect_md("<pre>\nline 1\n  indented\n\nafter blank\n</pre>",
              "```\nline 1\n  indented\n\nafter blank\n```");
    expect_md("<pre><code class=\"language-python\">print('x')</code></pre>",
              "```python\nprint('x')\n```");
    expect_md("<pre class=\"lang-sh\">ls</pre>", "```sh\nls\n```");
    expect_md("<div class=\"highlight highlight-source-rust\"><pre>fn x()</pre></div>",
              "```rust\nfn x()\n```");
    expect_md("<pre>a ``` b\n````</pre>", "`````\na ``` b\n````\n`````");
    expect_md("<pre><b>bold</b> &lt;tag&gt; *x*<script>bad()</script></pre>",
              "```\nbold <tag> *x*\n```");
    expect_md("<pre><code class=\"language-a`b x\">y</code></pre>", "```a\ny\n```");
    expect_md("<pre>   </pre><p>x</p>", "```\n   \n```\n\nx");
}

static void test_tables_are_gfm_pipe_tables(void **state)
{
    expect_md("<table><thead><tr><th>Name</th><th>Value</th></tr></thead>"
              "<tbody><tr><td>a</td><td>1</td></tr><tr><td>b</td><td>2</td></tr></tbody></table>",
              "| Name | Value |\n| --- | --- |\n| a | 1 |\n| b | 2 |");
    /* No th: the first row is the header. */
    expect_md("<table><tr><td>x</td><td>y</td></tr><tr><td>1</td><td>2</td></tr></table>",
              "| x | y |\n| --- | --- |\n| 1 | 2 |");
    expect_md("<table><tr><th>cmd</th><th>what</th></tr>"
              "<tr><td><code>a|b</code></td><td>x | y</td></tr></table>",
              "| cmd | what |\n| --- | --- |\n| `a\\|b` | x \\| y |");
    expect_md("<table><tr><th colspan=2>wide</th><th>c</th></tr>"
              "<tr><td rowspan=2>tall</td><td>1</td><td>2</td></tr><tr><td>3</td><td>4</td></tr>"
              "</table>",
              "| wide |  | c |\n| --- | --- | --- |\n| tall | 1 | 2 |\n|  | 3 | 4 |");
    expect_md("<table><caption>Results</caption><tr><th>a</th><th>b</th></tr>"
              "<tr><td>1</td></tr></table>",
              "Results\n\n| a | b |\n| --- | --- |\n| 1 |  |");
    expect_md("<table><tr><td><p>multi</p><p>para</p></td><td>b<br>c</td></tr></table>",
              "| multi para | b c |\n| --- | --- |");
    expect_md("<table><tr><th align=right>n</th><th style=\"color:red; text-align: center\">c</th>"
              "<th align=LEFT>l</th><th>d</th></tr><tr><td>1</td><td>2</td><td>3</td><td>4</td>"
              "</tr></table>",
              "| n | c | l | d |\n| ---: | :---: | :--- | --- |\n| 1 | 2 | 3 | 4 |");
    /* Leading header rows merge into GFM's one; a colspan's text heads each column. */
    expect_md("<table><thead><tr><th rowspan=2>Service</th><th colspan=2>Region</th></tr>"
              "<tr><th>us</th><th>eu</th></tr></thead><tr><td>DB</td><td>ok</td><td>down</td></tr>"
              "</table>",
              "| Service | Region us | Region eu |\n| --- | --- | --- |\n| DB | ok | down |");
    /* A one-column table, or one with a table (or a list, heading...) inside, lays out a
     * page: its cells are blocks. */
    expect_md("<table><tr><td>nav</td><td><p>text</p><ul><li>x</li></ul></td></tr></table>",
              "nav\n\ntext\n\n- x");
    expect_md("<table><tr><td><h1>Site</h1></td></tr><tr><td><p>body</p></td></tr></table>",
              "# Site\n\nbody");
    expect_md("<table><tr><td>nav</td><td><table><tr><td>k</td><td>v</td></tr></table></td></tr>"
              "</table>",
              "nav\n\n| k | v |\n| --- | --- |");
    expect_md("<ul><li>in a list<table><tr><th>a</th><th>b</th></tr></table></li></ul>",
              "- in a list\n\n  | a | b |\n  | --- | --- |");
}

static void test_wide_table_joins_cells_past_the_last_column(void **state)
{
    char html[8192], want[8192];
    size_t n = 0, w = 0;

    n += (size_t)snprintf(html + n, sizeof(html) - n, "<table><tr>");
    for (int i = 0; i < H2M_TABLE_MAX_COLS + 2; i++)
        n += (size_t)snprintf(html + n, sizeof(html) - n, "<td>c%d</td>", i);
    n += (size_t)snprintf(html + n, sizeof(html) - n, "</tr></table>");
    w += (size_t)snprintf(want + w, sizeof(want) - w, "|");
    for (int i = 0; i < H2M_TABLE_MAX_COLS - 1; i++)
        w += (size_t)snprintf(want + w, sizeof(want) - w, " c%d |", i);
    w += (size_t)snprintf(want + w, sizeof(want) - w, " c63 c64 c65 |\n|");
    for (int i = 0; i < H2M_TABLE_MAX_COLS; i++)
        w += (size_t)snprintf(want + w, sizeof(want) - w, " --- |");
    expect_md(html, want);
}

static void test_emphasis_and_rules(void **state)
{
    expect_md("<p><b>bold</b> <strong>strong</strong> <i>it</i> <em>em</em> <del>gone</del></p>",
              "**bold** **strong** *it* *em* ~~gone~~");
    expect_md("<b>outer <b>inner</b> outer</b>", "**outer inner outer**");
    expect_md("<p>x<b></b>y<i> </i>z</p>", "xy z");
    expect_md("<p>a<b>b </b>c</p>", "a**b** c");
    expect_md("<p>one<br>two<br/>three</p>", "one  \ntwo  \nthree");
    expect_md("<p>end<br></p><p>next</p>", "end\n\nnext");
    /* Two in a row: a paragraph break; where a newline is owed anyway, nothing. */
    expect_md("<p>x<br><br>y<br><br><br>z</p>", "x\n\ny\n\nz");
    expect_md("<ul><li>a</li><li><br>b</li></ul><p><br>c</p>", "- a\n- b\n\nc");
    expect_md("<p>a</p><hr><p>b</p>", "a\n\n---\n\nb");
}

static void test_form_controls_show_their_text(void **state)
{
    expect_md("<ul><li><input type=checkbox checked> done</li><li><input type=\"checkbox\"> todo"
              "</li></ul>",
              "- [x] done\n- [ ] todo");
    expect_md("<form><label>Size <select><option>S</option><option>M</option></select></label>"
              "<input type=text value=\"typed\"><input type=submit value=\"Go\"></form>",
              "Size\n\n- S\n- M\n\nGo");
}

/* Every name in the element table is found (the table is searched by bisection). */
static void test_element_table_finds_every_tag(void **state)
{
    static const struct {
        const char *name;
        enum h2m_tag tag;
    } tags[] = {
        {"a", H2M_A},
        {"B", H2M_STRONG},
        {"blockquote", H2M_BLOCKQUOTE},
        {"br", H2M_BR},
        {"caption", H2M_CAPTION},
        {"code", H2M_CODE},
        {"del", H2M_DEL},
        {"div", H2M_BLOCK},
        {"em", H2M_EM},
        {"h1", H2M_H},
        {"H6", H2M_H},
        {"head", H2M_HEAD},
        {"hr", H2M_HR},
        {"img", H2M_IMG},
        {"input", H2M_INPUT},
        {"kbd", H2M_CODE},
        {"li", H2M_LI},
        {"noscript", H2M_DROP},
        {"ol", H2M_OL},
        {"option", H2M_LI},
        {"p", H2M_BLOCK},
        {"pre", H2M_PRE},
        {"s", H2M_DEL},
        {"script", H2M_DROP},
        {"section", H2M_BLOCK},
        {"select", H2M_UL},
        {"strike", H2M_DEL},
        {"strong", H2M_STRONG},
        {"style", H2M_DROP},
        {"svg", H2M_DROP},
        {"table", H2M_TABLE},
        {"tbody", H2M_TABLE_PART},
        {"td", H2M_CELL},
        {"template", H2M_DROP},
        {"th", H2M_CELL},
        {"title", H2M_HEAD},
        {"tr", H2M_TR},
        {"tt", H2M_CODE},
        {"ul", H2M_UL},
        {"xmp", H2M_PRE},
        {"span", H2M_OTHER},
        {"zzz", H2M_OTHER},
    };

    for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
        xmlNode *n = xmlNewNode(NULL, (const xmlChar *)tags[i].name);

        assert_non_null(n);
        if (h2m_tag_of(n) != tags[i].tag)
            fail_msg("%s: tag %d, want %d", tags[i].name, h2m_tag_of(n), tags[i].tag);
        xmlFreeNode(n);
    }
}

static void test_script_style_and_comments_are_never_output(void **state)
{
    static const char html[] =
        "<html><head><title>T</title><style>body{color:red}</style>"
        "<script>var s = '<p>SCRIPT</p>';</script></head><body>"
        "<p>visible<!-- COMMENT --></p><script type=\"module\">SCRIPT2</script>"
        "<noscript><p>NOSCRIPT</p></noscript><template><p>TEMPLATE</p></template>"
        "<style>.x{}</style><svg><title>ICON</title></svg></body></html>";

    expect_md(html, "visible");
    expect_text(html, "T visible");
}

static void test_markdown_characters_in_text_are_escaped(void **state)
{
    expect_md("<p>*a* _b_ snake_case [c](d) `e` \\f</p>",
              "\\*a\\* \\_b\\_ snake_case \\[c\\](d) \\`e\\` \\\\f");
    expect_md("<p># not a heading</p><p>- not a list</p><p>+ nor</p><p>> nor quote</p>",
              "\\# not a heading\n\n\\- not a list\n\n\\+ nor\n\n\\> nor quote");
    expect_md("<p>1. not ordered</p><p>2) either</p><p>3.5 fine</p><p>a - b # c</p>",
              "1\\. not ordered\n\n2\\) either\n\n3.5 fine\n\na - b # c");
    expect_md("<p>&lt;div&gt; a &lt; b &amp;copy; R&amp;D</p>", "\\<div> a < b \\&copy; R&D");
    expect_md("<p>x<br>=== y</p>", "x  \n\\=== y");
}

static void test_entities_are_decoded(void **state)
{
    expect_md("<p>&eacute;&nbsp;&#x1F600; &amp; &lt;&gt; &quot;&#39; &copy; &mdash; &hellip;</p>",
              "\xc3\xa9 \xf0\x9f\x98\x80 & <> \"' \xc2\xa9 \xe2\x80\x94 \xe2\x80\xa6");
    expect_text("<p>&eacute;&nbsp;&#x1F600; &amp;amp; &#233;</p>",
                "\xc3\xa9 \xf0\x9f\x98\x80 &amp; \xc3\xa9");
    /* Not characters: no output, and still valid UTF-8. */
    expect_text("<p>a&#xD800;b&#0;c&#x110000;d</p>", "abcd");
}

static void test_charsets(void **state)
{
    static const char utf16[] = "\xff\xfe<\0p\0>\0\xe9\0<\0/\0p\0>\0";
    char *out;

    /* ISO-8859-1 from Content-Type (read as windows-1252, as browsers do: 0x80 is the euro). */
    expect_as("<p>caf\xe9 \x80</p>", "text/html; charset=ISO-8859-1", BASE, HTML2MD_TEXT,
              "caf\xc3\xa9 \xe2\x82\xac");
    expect_as("<p>\x93quoted\x94</p>", "text/html;charset=\"windows-1252\"", BASE, HTML2MD_TEXT,
              "\xe2\x80\x9cquoted\xe2\x80\x9d");
    /* Shift_JIS from a <meta charset>, and from <meta http-equiv>. */
    expect_as("<meta charset=\"Shift_JIS\"><p>\x93\xfa\x96\x7b\x8c\xea</p>", NULL, BASE,
              HTML2MD_TEXT, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e");
    expect_as("<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; "
              "charset=shift_jis\"></head><body>\x93\xfa\x96\x7b</body></html>",
              NULL, BASE, HTML2MD_TEXT, "\xe6\x97\xa5\xe6\x9c\xac");
    /* The Content-Type charset wins over the meta. */
    expect_as("<meta charset=\"shift_jis\"><p>caf\xc3\xa9</p>", "text/html; charset=utf-8", BASE,
              HTML2MD_TEXT, "caf\xc3\xa9");
    /* A meta inside a comment does not count; an unknown label is passed over. */
    expect_as("<!-- <meta charset=\"shift_jis\"> --><p>caf\xc3\xa9</p>", "text/html; charset=nope",
              BASE, HTML2MD_TEXT, "caf\xc3\xa9");
    /* No charset anywhere: UTF-8, each invalid byte U+FFFD (not a switch to Latin-1). */
    expect_as("<p>caf\xc3\xa9 \xff\xfe ok \xe9</p>", NULL, BASE, HTML2MD_TEXT,
              "caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd ok \xef\xbf\xbd");
    /* A byte order mark wins over everything. */
    out = convert_n(utf16, sizeof(utf16) - 1, "text/html; charset=iso-8859-1", BASE, HTML2MD_TEXT);
    assert_string_equal(out, "\xc3\xa9");
    free(out);
    /* Bytes the encoding does not define become U+FFFD, and the rest is kept. */
    expect_as("<p>\xa0 ok \x85\x40 \x81</p>", "text/html; charset=shift_jis", BASE, HTML2MD_TEXT,
              "\xef\xbf\xbd ok \xef\xbf\xbd@ \xef\xbf\xbd");
}

static void test_charset_detection_order(void **state)
{
    char name[H2M_CHARSET_MAX];
    size_t bom;
    static const char meta[] = "<meta charset=latin1>";

    h2m_detect_charset((const uint8_t *)meta, sizeof(meta) - 1, NULL, name, &bom);
    assert_string_equal(name, "WINDOWS-1252");
    h2m_detect_charset((const uint8_t *)meta, sizeof(meta) - 1, "text/html; Charset = 'EUC-JP'",
                       name, &bom);
    assert_string_equal(name, "EUC-JP");
    h2m_detect_charset((const uint8_t *)"<meta charset=utf-16>", 21, NULL, name, &bom);
    assert_string_equal(name, "UTF-8");
    h2m_detect_charset((const uint8_t *)"\xef\xbb\xbfx", 4, "text/html; charset=gbk", name, &bom);
    assert_string_equal(name, "UTF-8");
    assert_int_equal(bom, 3);
    h2m_detect_charset((const uint8_t *)"<p>", 3, "text/html", name, &bom);
    assert_string_equal(name, "UTF-8");
}

static void test_malformed_html_still_converts(void **state)
{
    expect_md("<p>unclosed <b>bold <i>both</p><p>next", "unclosed **bold *both***\n\nnext");
    expect_md("</p>stray</p> end</div>", "stray\n\nend");
    expect_md("<b><i>x</b>y</i>", "***x***y");
    expect_md("<table><td>cell</td><td>two<tr><td>3</table>",
              "| cell | two |\n| --- | --- |\n| 3 |  |");
    expect_md("<a href=x>one<a href=y>two</a>", "[one](https://example.com/docs/guide/x)"
                                                "[two](https://example.com/docs/guide/y)");
    /* libxml2 drops the "<<"; a ">" starting a line is escaped (it would quote). */
    expect_md("<<>><p <p>>x</p>&", "\\>>\n\n\\>x\n\n&");
    expect_md("<ul><p>stray p in a list</p><li>item</ul>", "stray p in a list\n\n- item");
}

static void test_empty_and_text_only_input(void **state)
{
    char *out = (char *)1;
    size_t len = 99;

    assert_int_equal(
        html2md_convert((const uint8_t *)"", 0, NULL, NULL, HTML2MD_MARKDOWN, &out, &len), 0);
    assert_string_equal(out, "");
    assert_int_equal(len, 0);
    free(out);
    expect_md("   \n\t ", "");
    expect_text("", "");
    expect_md("just some text * here", "just some text \\* here");
    expect_text("just  some\ntext", "just some text");
    expect_md("<html><body></body></html>", "");
    expect_md("<!-- only a comment -->", "");
}

static void test_text_mode_separates_blocks_and_collapses(void **state)
{
    expect_text("<h1>Title</h1><p>one <b>bo</b>ld</p><ul><li>a</li><li>b</li></ul>"
                "<table><tr><td>c1</td><td>c2</td></tr></table>line<br>break",
                "Title one bold a b c1 c2 line break");
    expect_text("<pre>  keep\n  no  spaces </pre>", "keep no spaces");
    expect_text("<p>a<!-- x -->b</p>", "ab");
}

/* Builds "<p>before</p>" + depth x open + "deep" + depth x close + "<p>after</p>". */
static char *nested(const char *open, const char *close, size_t depth, size_t *len)
{
    size_t ol = strlen(open), cl = strlen(close), cap = 64 + depth * (ol + cl), n = 0;
    char *s = malloc(cap);

    assert_non_null(s);
    memcpy(s + n, "<p>before</p>", 13);
    n += 13;
    for (size_t i = 0; i < depth; i++, n += ol)
        memcpy(s + n, open, ol);
    memcpy(s + n, "deep", 4);
    n += 4;
    for (size_t i = 0; i < depth; i++, n += cl)
        memcpy(s + n, close, cl);
    memcpy(s + n, "<p>after</p>", 12);
    n += 12;
    *len = n;
    return s;
}

/* Converts the nested document (see nested) in format f; caller frees. */
static char *convert_nested(const char *open, const char *close, size_t depth,
                            enum html2md_format f)
{
    size_t len;
    char *html = nested(open, close, depth, &len), *out;

    out = convert_n(html, len, NULL, BASE, f);
    free(html);
    return out;
}

static void test_deep_nesting_completes(void **state)
{
    char *out;

    /* libxml2 stops building at depth 256, and 100,000 x 100,000 steps are too many to
     * parse again without the limit: what came before is kept. */
    out = convert_nested("<div>", "</div>", 100000, HTML2MD_MARKDOWN);
    assert_string_equal(out, "before");
    free(out);
    out = convert_nested("<div>", "</div>", 100000, HTML2MD_TEXT);
    assert_string_equal(out, "before");
    free(out);
    /* A legacy page that never closes its <font>s is as deep as it is long: parsed again
     * without libxml2's depth limit, since that stays cheap at this size. */
    out = convert_nested("<font color=red>line<br>", "", 2000, HTML2MD_TEXT);
    assert_non_null(strstr(out, "line line"));
    assert_non_null(strstr(out, "deep after"));
    free(out);
    /* Within the limit, everything; indentation stops growing at H2M_MAX_INDENT. */
    out = convert_nested("<blockquote>", "</blockquote>", 200, HTML2MD_MARKDOWN);
    assert_non_null(strstr(out, "after"));
    assert_true(strlen(out) < 2000);
    free(out);
    out = convert_nested("<ul><li>", "</li></ul>", 120, HTML2MD_MARKDOWN);
    assert_non_null(strstr(out, "- - - deep"));
    assert_non_null(strstr(out, "after"));
    free(out);
}

/* Repeats unit to about size bytes, wrapped in head and tail. */
static char *repeat(const char *head, const char *unit, const char *tail, size_t size, size_t *len)
{
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
    size_t count = size / ul, n = 0;
    char *s = malloc(hl + count * ul + tl + 1);

    assert_non_null(s);
    memcpy(s, head, hl);
    n = hl;
    for (size_t i = 0; i < count; i++, n += ul)
        memcpy(s + n, unit, ul);
    memcpy(s + n, tail, tl);
    n += tl;
    *len = n;
    return s;
}

/* The largest body webfetch passes: a table of 5 MiB (one row of 64 columns and more, then
 * many rows of one cell: the padding is bounded by H2M_TABLE_MAX_COLS). */
static void test_five_mib_table_completes(void **state)
{
    size_t len;
    char *html =
        repeat("<table><tr>", "<td>x</td>", "</tr><tr><td>y</td></tr></table>", 5u << 20, &len);
    char *out = convert_n(html, len, NULL, BASE, HTML2MD_MARKDOWN);

    assert_non_null(strstr(out, "| y |"));
    free(out);
    free(html);
}

static void test_input_over_the_limit_is_refused(void **state)
{
    char *out = (char *)1;
    size_t len = 1;
    static const uint8_t byte = 'x';

    /* The length is checked before the bytes are read. */
    assert_int_equal(
        html2md_convert(&byte, HTML2MD_MAX_INPUT + 1u, NULL, NULL, HTML2MD_TEXT, &out, &len),
        ERR_INVALID);
    assert_null(out);
    assert_int_equal(len, 0);
}

struct thread_job {
    const char *html;
    const char *want;
    int ok;
};

static void *convert_many(void *arg)
{
    struct thread_job *j = arg;

    j->ok = 1;
    for (int i = 0; i < 200; i++) {
        char *out;
        size_t len;

        if (html2md_convert((const uint8_t *)j->html, strlen(j->html), "text/html; charset=latin1",
                            BASE, HTML2MD_MARKDOWN, &out, &len) != 0)
            j->ok = 0;
        else if (strcmp(out, j->want) != 0)
            j->ok = 0;
        free(out);
    }
    return NULL;
}

static void test_concurrent_conversions_agree(void **state)
{
    static const char html[] = "<h1>T\xe9</h1><ul><li><a href=\"a\">a</a></li></ul>"
                               "<table><tr><th>x</th><th>y</th></tr></table>";
    static const char want[] = "# T\xc3\xa9\n\n- [a](https://example.com/docs/guide/a)\n\n"
                               "| x | y |\n| --- | --- |";
    pthread_t t[4];
    struct thread_job jobs[4];

    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct thread_job){html, want, 0};
        assert_int_equal(pthread_create(&t[i], NULL, convert_many, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(jobs[i].ok, 1);
    }
}

static void expect_resolved(const char *base, const char *ref, const char *want)
{
    char *got = NULL;

    assert_int_equal(h2m_url_resolve(base, ref, &got), 0);
    if (strcmp(got, want) != 0)
        fprintf(stderr, "%s + %s: got %s, want %s\n", base, ref, got, want);
    assert_string_equal(got, want);
    free(got);
}

/* RFC 3986 5.4.1 and 5.4.2, every example. */
static void test_url_resolution_follows_rfc3986_examples(void **state)
{
    static const char *const ex[][2] = {
        {"g:h", "g:h"},
        {"g", "http://a/b/c/g"},
        {"./g", "http://a/b/c/g"},
        {"g/", "http://a/b/c/g/"},
        {"/g", "http://a/g"},
        {"//g", "http://g"},
        {"?y", "http://a/b/c/d;p?y"},
        {"g?y", "http://a/b/c/g?y"},
        {"#s", "http://a/b/c/d;p?q#s"},
        {"g#s", "http://a/b/c/g#s"},
        {"g?y#s", "http://a/b/c/g?y#s"},
        {";x", "http://a/b/c/;x"},
        {"g;x", "http://a/b/c/g;x"},
        {"g;x?y#s", "http://a/b/c/g;x?y#s"},
        {"", "http://a/b/c/d;p?q"},
        {".", "http://a/b/c/"},
        {"./", "http://a/b/c/"},
        {"..", "http://a/b/"},
        {"../", "http://a/b/"},
        {"../g", "http://a/b/g"},
        {"../..", "http://a/"},
        {"../../", "http://a/"},
        {"../../g", "http://a/g"},
        {"../../../g", "http://a/g"},
        {"../../../../g", "http://a/g"},
        {"/./g", "http://a/g"},
        {"/../g", "http://a/g"},
        {"g.", "http://a/b/c/g."},
        {".g", "http://a/b/c/.g"},
        {"g..", "http://a/b/c/g.."},
        {"..g", "http://a/b/c/..g"},
        {"./../g", "http://a/b/g"},
        {"./g/.", "http://a/b/c/g/"},
        {"g/./h", "http://a/b/c/g/h"},
        {"g/../h", "http://a/b/c/h"},
        {"g;x=1/./y", "http://a/b/c/g;x=1/y"},
        {"g;x=1/../y", "http://a/b/c/y"},
        {"g?y/./x", "http://a/b/c/g?y/./x"},
        {"g?y/../x", "http://a/b/c/g?y/../x"},
        {"g#s/./x", "http://a/b/c/g#s/./x"},
        {"g#s/../x", "http://a/b/c/g#s/../x"},
        {"http:g", "http:g"},
    };

    for (size_t i = 0; i < sizeof(ex) / sizeof(ex[0]); i++)
        expect_resolved("http://a/b/c/d;p?q", ex[i][0], ex[i][1]);
    expect_resolved("https://h.org", "x", "https://h.org/x");
    expect_resolved("https://h.org/a/", " \t/p q\n/\xc3\xa9\"<>`{|}^\\ ",
                    "https://h.org/p%20q/%C3%A9%22%3C%3E%60%7B%7C%7D%5E%5C");
    expect_resolved(NULL, "rel/x", "rel/x");
    expect_resolved("not a url", "rel", "rel");
    assert_true(h2m_url_is_unsafe("JavaScript:void(0)"));
    assert_true(h2m_url_is_unsafe("data:x"));
    assert_false(h2m_url_is_unsafe("https://x/javascript:"));
}

/* ---- the corpus ---- */

static char *read_file(const char *dir, const char *name, size_t *len)
{
    char path[4096];
    FILE *f;
    char *buf;
    long n;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if ((f = fopen(path, "rb")) == NULL)
        return NULL;
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Compares the conversion of name.html with name.<ext>, whose last newline (an editor's)
 * is not part of the expected output. Returns false (after printing both) on a mismatch. */
static bool corpus_check(const char *name, const char *ct, const char *url, enum html2md_format f)
{
    char file[512], *html, *want, *got;
    size_t hlen, wlen;
    bool same;

    snprintf(file, sizeof(file), "%s.%s", name, f == HTML2MD_TEXT ? "txt" : "md");
    if ((want = read_file(corpus_dir, file, &wlen)) == NULL)
        return f == HTML2MD_TEXT; /* every page has a .md; a .txt only some */
    if (wlen > 0 && want[wlen - 1] == '\n')
        want[--wlen] = '\0';
    snprintf(file, sizeof(file), "%s.html", name);
    html = read_file(corpus_dir, file, &hlen);
    assert_non_null(html);
    got = convert_n(html, hlen, ct, url, f);
    same = strcmp(got, want) == 0;
    if (!same) {
        size_t i = 0;

        while (got[i] != '\0' && got[i] == want[i])
            i++;
        fprintf(stderr, "corpus %s.%s differs at byte %zu:\n--- got:\n%s\n--- want:\n%s\n", name,
                f == HTML2MD_TEXT ? "txt" : "md", i, got, want);
    }
    free(got);
    free(want);
    free(html);
    return same;
}

/* MANIFEST: one page a line, "NAME<TAB>CONTENT-TYPE<TAB>URL" ("-" for none); "#" comments. */
static void test_corpus_pages_convert_as_reviewed(void **state)
{
    char *manifest, *line, *save = NULL;
    size_t len;
    int pages = 0, failed = 0;

    if (corpus_dir == NULL)
        skip();
    manifest = read_file(corpus_dir, "MANIFEST", &len);
    assert_non_null(manifest);
    for (line = strtok_r(manifest, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        char *name, *ct, *url, *fs = NULL;

        if (line[0] == '#' || line[0] == '\0')
            continue;
        name = strtok_r(line, "\t", &fs);
        ct = strtok_r(NULL, "\t", &fs);
        url = strtok_r(NULL, "\t", &fs);
        assert_non_null(url);
        ct = strcmp(ct, "-") == 0 ? NULL : ct;
        url = strcmp(url, "-") == 0 ? NULL : url;
        failed += !corpus_check(name, ct, url, HTML2MD_MARKDOWN);
        failed += !corpus_check(name, ct, url, HTML2MD_TEXT);
        pages++;
    }
    free(manifest);
    fprintf(stderr, "corpus: %d pages, %d mismatches\n", pages, failed);
    assert_true(pages >= 18);
    assert_int_equal(failed, 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headings_are_atx_and_one_line),
        cmocka_unit_test(test_paragraphs_and_whitespace_collapse_as_a_browser),
        cmocka_unit_test(test_links_are_made_absolute),
        cmocka_unit_test(test_base_href_is_honoured),
        cmocka_unit_test(test_images),
        cmocka_unit_test(test_lists_nest_with_indentation),
        cmocka_unit_test(test_blockquotes_nest),
        cmocka_unit_test(test_code_spans_use_a_longer_fence),
        cmocka_unit_test(test_pre_blocks_are_fenced),
        cmocka_unit_test(test_tables_are_gfm_pipe_tables),
        cmocka_unit_test(test_wide_table_joins_cells_past_the_last_column),
        cmocka_unit_test(test_emphasis_and_rules),
        cmocka_unit_test(test_form_controls_show_their_text),
        cmocka_unit_test(test_element_table_finds_every_tag),
        cmocka_unit_test(test_script_style_and_comments_are_never_output),
        cmocka_unit_test(test_markdown_characters_in_text_are_escaped),
        cmocka_unit_test(test_entities_are_decoded),
        cmocka_unit_test(test_charsets),
        cmocka_unit_test(test_charset_detection_order),
        cmocka_unit_test(test_malformed_html_still_converts),
        cmocka_unit_test(test_empty_and_text_only_input),
        cmocka_unit_test(test_text_mode_separates_blocks_and_collapses),
        cmocka_unit_test(test_deep_nesting_completes),
        cmocka_unit_test(test_five_mib_table_completes),
        cmocka_unit_test(test_input_over_the_limit_is_refused),
        cmocka_unit_test(test_concurrent_conversions_agree),
        cmocka_unit_test(test_url_resolution_follows_rfc3986_examples),
        cmocka_unit_test(test_corpus_pages_convert_as_reviewed),
    };

    if (argc == 2)
        corpus_dir = argv[1];
    return cmocka_run_group_tests(tests, NULL, NULL);
}
