/*
 * html2md_emit.c - the markdown emitter under html2md_md.c's rules: lines, blank lines,
 * container prefixes and the escaping of text.
 *
 * The emitter is lazy: a block end only owes newlines (pending_nl), whitespace only owes
 * one space, and openers ("## ", "**", "[") wait in lead; all of them are written at the
 * next real content, in that order. So empty elements vanish, whitespace collapses across
 * element edges as a browser collapses it, a closing "**" lands before the space that
 * followed the bold text, and no line ends in blanks. Containers (list items, quotes) are
 * frames whose prefixes start every line; the first line of an item gets its marker.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "html2md_internal.h"

void h2m_md_init(struct h2m_md *m, struct buf *out, const char *base)
{
    memset(m, 0, sizeof(*m));
    m->out = out;
    m->base = base;
}

void h2m_md_free(struct h2m_md *m)
{
    for (size_t i = 0; i < m->nopen; i++)
        free(m->open[i].url);
    free(m->open);
    free(m->frames);
    memset(m, 0, sizeof(*m));
}

/* ---- the emitter ---- */

void h2m_md_put(struct h2m_md *m, const char *s, size_t n)
{
    int r;

    if (m->err != 0 || n == 0)
        return;
    if ((r = buf_put(m->out, s, n)) != 0)
        m->err = r;
    m->last = (unsigned char)s[n - 1];
}

void h2m_md_put_str(struct h2m_md *m, const char *s)
{
    h2m_md_put(m, s, strlen(s));
}

/* Writes the prefix of frames [0, upto): a line's, or (blank) a blank line's, trimmed. */
static void put_prefix(struct h2m_md *m, size_t upto, bool blank)
{
    char p[H2M_MAX_INDENT * 16 + 1] = {0};
    size_t n = 0, indent = upto < H2M_MAX_INDENT ? upto : H2M_MAX_INDENT;

    for (size_t i = 0; i < indent && i < m->started; i++) {
        const struct h2m_frame *f = &m->frames[i];

        if (f->quote) {
            memcpy(p + n, "> ", 2);
            n += 2;
        } else {
            memset(p + n, ' ', f->width);
            n += f->width;
        }
    }
    if (blank) {
        while (n > 0 && p[n - 1] == ' ')
            n--;
        h2m_md_put(m, p, n);
        return;
    }
    h2m_md_put(m, p, n);
    /* Frames not yet started write their markers; deeper than H2M_MAX_INDENT, only those. */
    for (size_t i = m->started; i < upto; i++)
        h2m_md_put(m, m->frames[i].marker, m->frames[i].width);
    if (m->started < upto)
        m->started = upto;
}

/* Pays what is owed before content: newlines, the line's prefix, a space, the lead.
 * Returns true when the content starts its line (for the escapes that matter there). */
bool h2m_md_flush(struct h2m_md *m)
{
    bool at_start;

    if (m->wrote_any && m->pending_nl > 0) {
        if (m->pending_nl == 1 && m->pending_break)
            h2m_md_put(m, "  ", 2);
        h2m_md_put(m, "\n", 1);
        if (m->pending_nl >= 2) {
            put_prefix(m, m->common, true);
            h2m_md_put(m, "\n", 1);
        }
        m->line_has_content = false;
    }
    m->pending_nl = 0;
    m->pending_break = false;
    if (!m->line_has_content) {
        put_prefix(m, m->nframes, false);
        m->pending_space = false;
    }
    m->common = m->nframes;
    if (m->pending_space)
        h2m_md_put(m, " ", 1);
    m->pending_space = false;
    at_start = !m->line_has_content && m->lead_len == 0;
    h2m_md_put(m, m->lead, m->lead_len);
    m->lead_len = 0;
    m->wrote_any = true;
    m->line_has_content = true;
    m->seq++;
    return at_start;
}

int h2m_md_raw(struct h2m_md *m, const char *s, size_t len)
{
    h2m_md_flush(m);
    h2m_md_put(m, s, len);
    return m->err;
}

void h2m_md_newline(struct h2m_md *m, int n)
{
    if (m->inline_only > 0) {
        m->pending_space = true;
        return;
    }
    m->pending_space = false;
    if (m->pending_nl < n)
        m->pending_nl = n;
}

void h2m_md_block(struct h2m_md *m)
{
    const struct h2m_frame *top = m->nframes > 0 ? &m->frames[m->nframes - 1] : NULL;

    /* The first block of a list item shares the marker's line: the list stays tight. */
    if (m->inline_only == 0 && top != NULL && !top->quote && m->started < m->nframes) {
        m->pending_space = false;
        return;
    }
    h2m_md_newline(m, 2);
}

void h2m_md_lead_add(struct h2m_md *m, const char *s)
{
    size_t n = strlen(s);

    /* Bounded: one heading, one of each marker and one link are open at most. */
    if (m->lead_len + n <= sizeof(m->lead)) {
        memcpy(m->lead + m->lead_len, s, n);
        m->lead_len = (uint8_t)(m->lead_len + n);
    }
}

int h2m_md_push_frame(struct h2m_md *m, const char *marker, bool quote)
{
    struct h2m_frame *f = h2m_grow(m->frames, &m->frames_alloc, m->nframes, sizeof(*f));

    if (f == NULL)
        return m->err = ERR_NOMEM;
    m->frames = f;
    f = &m->frames[m->nframes++];
    memset(f, 0, sizeof(*f));
    snprintf(f->marker, sizeof(f->marker), "%s", marker);
    f->width = (uint8_t)strlen(f->marker);
    f->quote = quote;
    return 0;
}

void h2m_md_pop_frame(struct h2m_md *m)
{
    m->nframes--;
    if (m->common > m->nframes)
        m->common = m->nframes;
    if (m->started > m->nframes)
        m->started = m->nframes;
}

/* ---- text ---- */

static bool is_alnum(unsigned char c)
{
    return isalnum(c) || c >= 0x80;
}

/* "&name;" or "&#123;": text that markdown would read as an entity. */
static bool looks_like_entity(const unsigned char *s, size_t n)
{
    for (size_t i = 1; i < n && i < 40; i++) {
        if (s[i] == ';')
            return i > 1;
        if (!isalnum(s[i]) && s[i] != '#')
            return false;
    }
    return false;
}

/* At a line's start: "12." or "3)" then the end of the word reads as a list item. */
static size_t ordered_marker_at(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n && i < 10 && isdigit(s[i]))
        i++;
    if (i == 0 || i >= n || (s[i] != '.' && s[i] != ')') || i + 1 != n)
        return SIZE_MAX;
    return i;
}

/* Is s[i] (of the word s[0..n)) a character markdown would read as markup here? Escaped
 * enough that the output renders as the text, not more: "snake_case" keeps its "_". */
static bool needs_escape(struct h2m_md *m, const unsigned char *s, size_t n, size_t i,
                         bool at_start, size_t ordered)
{
    unsigned char c = s[i], prev = i > 0 ? s[i - 1] : m->last, next = i + 1 < n ? s[i + 1] : 0;
    bool first = at_start && i == 0;

    switch (c) {
    case '\\':
    case '*':
    case '`':
    case '[':
    case ']':
        return true;
    case '_':
        return !(is_alnum(prev) && is_alnum(next));
    case '<':
        return isalpha(next) || next == '/' || next == '!' || next == '?';
    case '&':
        return looks_like_entity(s + i, n - i);
    case '~':
        return first || next == '~';
    case '#':
    case '>':
    case '=':
        return first;
    case '-':
        return first && (next == 0 || next == '-');
    case '+':
        return first && next == 0;
    default:
        return i == ordered;
    }
}

/* Writes one word (no whitespace in it), escaped. */
static void put_word(struct h2m_md *m, const unsigned char *s, size_t n, bool at_start)
{
    size_t run = 0, ordered = at_start ? ordered_marker_at(s, n) : SIZE_MAX;

    for (size_t i = 0; i < n; i++) {
        if (!needs_escape(m, s, n, i, at_start, ordered))
            continue;
        h2m_md_put(m, (const char *)s + run, i - run);
        h2m_md_put(m, "\\", 1);
        run = i;
    }
    h2m_md_put(m, (const char *)s + run, n - run);
}

int h2m_md_text(struct h2m_md *m, const unsigned char *s)
{
    size_t len = strlen((const char *)s), i = 0, start;

    while (m->err == 0 && h2m_next_word(s, len, &i, &start, &m->pending_space))
        put_word(m, s + start, i - start, h2m_md_flush(m));
    return m->err;
}
