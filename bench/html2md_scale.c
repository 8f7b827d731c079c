/*
 * bench/html2md_scale - how webfetch's HTML conversion (src/runner/html2md.c) grows with
 * its input, for bench/run's W8: each hostile shape of markup converted (both formats) at
 * 0.5 MiB and at 2 MiB, in CPU seconds. Linear work takes about 4 times as long for the
 * bigger; quadratic work 16 times. A measurement, not a test: it prints one JSON line per
 * shape and exits 0 whatever it measured.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "html2md.h"

static const struct {
    const char *name, *head, *unit, *tail;
} shapes[] = {
    {"wide-row", "<table><tr>", "<td>x</td>", "</tr><tr><td>y</td></tr></table>"},
    {"long-table", "<table>", "<tr><td>a</td><td>b</td></tr>", "</table>"},
    {"quoted-list-breaks", "<blockquote><blockquote><ul><li>", "x<br>", ""},
    {"inline-runs", "<p>", "<b>x</b><i>y</i><a href=\"z\">w</a>", ""},
    {"stray-end-tags", "<div>", "</span>", ""},
    {"fences-in-pre", "<pre>", "``` \n", "</pre>"},
    {"markdown-specials", "<p>", "*_[`#", ""},
    {"unclosed-items", "", "<li>", ""},
    {"unclosed-fonts", "", "<font>x<br>", ""},
    {"deep-divs", "", "<div></span>", ""},
};

static double cpu_seconds(void)
{
    struct timespec t;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* CPU seconds to convert unit repeated to about size bytes, in both formats; -1 when the
 * memory for it cannot be had. */
static double convert_seconds(size_t i, size_t size)
{
    size_t hl = strlen(shapes[i].head), ul = strlen(shapes[i].unit), tl = strlen(shapes[i].tail);
    size_t count = size / ul, n = hl, out_len;
    char *html = malloc(hl + count * ul + tl), *out;
    double t0;

    if (html == NULL)
        return -1;
    memcpy(html, shapes[i].head, hl);
    for (size_t k = 0; k < count; k++, n += ul)
        memcpy(html + n, shapes[i].unit, ul);
    memcpy(html + n, shapes[i].tail, tl);
    n += tl;
    t0 = cpu_seconds();
    for (int f = 0; f < 2; f++) {
        if (html2md_convert((const uint8_t *)html, n, NULL, "https://example.com/",
                            f == 0 ? HTML2MD_MARKDOWN : HTML2MD_TEXT, &out, &out_len) == 0)
            free(out);
    }
    free(html);
    return cpu_seconds() - t0;
}

int main(void)
{
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        double small = convert_seconds(i, 512u << 10), big = convert_seconds(i, 2u << 20);

        printf("{\"shape\": \"%s\", \"small_s\": %.4f, \"big_s\": %.4f}\n", shapes[i].name, small,
               big);
    }
    return 0;
}
