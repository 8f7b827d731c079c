/*
 * html2md_charset.c - the fetched document turned into UTF-8 before libxml2 sees it.
 *
 * The encoding is chosen as HTML5's "determining the character encoding" does, in short:
 * a byte order mark, then the Content-Type charset, then a <meta charset> or
 * <meta http-equiv="Content-Type" content="...; charset=..."> found by a prescan, else
 * UTF-8. Labels are read as the WHATWG Encoding Standard maps them (iso-8859-1 and
 * us-ascii mean windows-1252, shift_jis means windows-31j...), and converted with iconv.
 *
 * Why not libxml2's own detection: with no encoding given, libxml2 2.9 switches a whole
 * document to ISO-8859-1 at its first invalid UTF-8 byte, and stops at an iconv error.
 * Here every undecodable sequence becomes one U+FFFD and the rest of the document stays
 * as it is; libxml2 then parses valid UTF-8, told so ("UTF-8"), and ignores the <meta>.
 */
#include <ctype.h>
#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "err.h"
#include "html2md_internal.h"
#include "utf8.h"

static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */

int h2m_put_utf8_sanitized(struct buf *out, const uint8_t *s, size_t len)
{
    size_t i = 0, run = 0;
    int r;

    while (i < len) {
        uint32_t cp;
        size_t n = s[i] != 0 && s[i] < 0x80 ? 1 : utf8_decode(s + i, len - i, &cp);

        if (n > 0 && s[i] != 0) {
            i += n;
            continue;
        }
        if ((r = buf_put(out, s + run, i - run)) != 0 || (r = buf_put(out, replacement, 3)) != 0)
            return r;
        i++;
        run = i;
    }
    return buf_put(out, s + run, len - run);
}

/* A label as the Encoding Standard's table names it, mapped to what glibc's iconv calls
 * the same encoding. Labels not here go to iconv as they are. */
static const struct {
    const char *label, *iconv;
} label_map[] = {
    {"utf-8", "UTF-8"},
    {"utf8", "UTF-8"},
    {"unicode-1-1-utf-8", "UTF-8"},
    {"iso-8859-1", "WINDOWS-1252"},
    {"iso8859-1", "WINDOWS-1252"},
    {"iso_8859-1", "WINDOWS-1252"},
    {"latin1", "WINDOWS-1252"},
    {"l1", "WINDOWS-1252"},
    {"us-ascii", "WINDOWS-1252"},
    {"ascii", "WINDOWS-1252"},
    {"cp1252", "WINDOWS-1252"},
    {"windows-1252", "WINDOWS-1252"},
    {"x-cp1252", "WINDOWS-1252"},
    {"cp819", "WINDOWS-1252"},
    {"ibm819", "WINDOWS-1252"},
    {"csisolatin1", "WINDOWS-1252"},
    {"shift_jis", "CP932"},
    {"shift-jis", "CP932"},
    {"sjis", "CP932"},
    {"x-sjis", "CP932"},
    {"ms_kanji", "CP932"},
    {"ms932", "CP932"},
    {"windows-31j", "CP932"},
    {"csshiftjis", "CP932"},
    {"gb2312", "GBK"},
    {"gbk", "GBK"},
    {"x-gbk", "GBK"},
    {"csgb2312", "GBK"},
    {"chinese", "GBK"},
    {"gb18030", "GB18030"},
    {"euc-kr", "CP949"},
    {"ks_c_5601-1987", "CP949"},
    {"windows-949", "CP949"},
    {"big5", "BIG5-HKSCS"},
    {"euc-jp", "EUC-JP"},
    {"iso-2022-jp", "ISO-2022-JP"},
    {"utf-16", "UTF-16LE"},
    {"utf-16le", "UTF-16LE"},
    {"utf-16be", "UTF-16BE"},
};

/* Copies a label (trimmed, unquoted, lower-cased) from s[0..n) into name; false if empty
 * or too long to be one. */
static bool label_copy(const char *s, size_t n, char name[H2M_CHARSET_MAX])
{
    while (n > 0 && (isspace((unsigned char)*s) || *s == '"' || *s == '\'')) {
        s++;
        n--;
    }
    while (n > 0 && (isspace((unsigned char)s[n - 1]) || s[n - 1] == '"' || s[n - 1] == '\''))
        n--;
    if (n == 0 || n >= H2M_CHARSET_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        name[i] = (char)tolower((unsigned char)s[i]);
    name[n] = '\0';
    return true;
}

/* Turns the label in name into the iconv name in place; false if iconv knows neither. */
static bool label_resolve(char name[H2M_CHARSET_MAX], bool from_meta)
{
    iconv_t cd;

    for (size_t i = 0; i < sizeof(label_map) / sizeof(label_map[0]); i++) {
        if (strcmp(name, label_map[i].label) == 0) {
            /* HTML5: a <meta> cannot declare UTF-16 (it was read as ASCII). */
            if (from_meta && strncmp(label_map[i].iconv, "UTF-16", 6) == 0)
                snprintf(name, H2M_CHARSET_MAX, "UTF-8");
            else
                snprintf(name, H2M_CHARSET_MAX, "%s", label_map[i].iconv);
            return true;
        }
    }
    if ((cd = iconv_open("UTF-8", name)) == (iconv_t)-1)
        return false;
    iconv_close(cd);
    return true;
}

/* The value of a charset= inside s[0..n) ("text/html; charset=UTF-8", a meta content). */
static bool charset_param(const char *s, size_t n, char name[H2M_CHARSET_MAX])
{
    for (size_t i = 0; i + 7 <= n; i++) {
        size_t j = i + 7, end;

        if (strncasecmp(s + i, "charset", 7) != 0)
            continue;
        while (j < n && isspace((unsigned char)s[j]))
            j++;
        if (j >= n || s[j] != '=')
            continue;
        j++;
        while (j < n && isspace((unsigned char)s[j]))
            j++;
        end = j;
        if (end < n && (s[end] == '"' || s[end] == '\''))
            end++;
        while (end < n && s[end] != ';' && s[end] != ',' && !isspace((unsigned char)s[end]) &&
               (end == j || (s[end] != '"' && s[end] != '\'')))
            end++;
        return label_copy(s + j, end - j, name);
    }
    return false;
}

struct meta_attrs {
    const char *charset, *content, *equiv;
    size_t charset_len, content_len, equiv_len;
};

/* Reads one attribute at s[*i] (HTML5 "get an attribute", simplified); false at '>'/end. */
static bool meta_attr(const char *s, size_t n, size_t *i, struct meta_attrs *a)
{
    size_t name, name_len, val = 0, val_len = 0;

    while (*i < n && (isspace((unsigned char)s[*i]) || s[*i] == '/'))
        (*i)++;
    if (*i >= n || s[*i] == '>')
        return false;
    name = *i;
    while (*i < n && !isspace((unsigned char)s[*i]) && s[*i] != '=' && s[*i] != '>' && s[*i] != '/')
        (*i)++;
    name_len = *i - name;
    while (*i < n && isspace((unsigned char)s[*i]))
        (*i)++;
    if (*i < n && s[*i] == '=') {
        (*i)++;
        while (*i < n && isspace((unsigned char)s[*i]))
            (*i)++;
        if (*i < n && (s[*i] == '"' || s[*i] == '\'')) {
            char q = s[(*i)++];

            val = *i;
            while (*i < n && s[*i] != q)
                (*i)++;
            val_len = *i - val;
            if (*i < n)
                (*i)++;
        } else {
            val = *i;
            while (*i < n && !isspace((unsigned char)s[*i]) && s[*i] != '>')
                (*i)++;
            val_len = *i - val;
        }
    }
    if (name_len == 7 && strncasecmp(s + name, "charset", 7) == 0 && a->charset == NULL) {
        a->charset = s + val;
        a->charset_len = val_len;
    } else if (name_len == 7 && strncasecmp(s + name, "content", 7) == 0 && a->content == NULL) {
        a->content = s + val;
        a->content_len = val_len;
    } else if (name_len == 10 && strncasecmp(s + name, "http-equiv", 10) == 0) {
        a->equiv = s + val;
        a->equiv_len = val_len;
    }
    return true;
}

/* HTML5's prescan, simplified: the first <meta> (outside comments) that names a charset. */
static bool meta_prescan(const char *s, size_t n, char name[H2M_CHARSET_MAX])
{
    size_t i = 0;

    if (n > H2M_PRESCAN_MAX)
        n = H2M_PRESCAN_MAX;
    while (i < n) {
        struct meta_attrs a = {0};
        const char *end;

        if (n - i >= 4 && memcmp(s + i, "<!--", 4) == 0) {
            end = memmem(s + i + 4, n - i - 4, "-->", 3);
            i = end == NULL ? n : (size_t)(end - s) + 3;
            continue;
        }
        if (n - i < 6 || strncasecmp(s + i, "<meta", 5) != 0 ||
            !(isspace((unsigned char)s[i + 5]) || s[i + 5] == '/')) {
            i++;
            continue;
        }
        i += 5;
        while (meta_attr(s, n, &i, &a))
            ;
        if (a.charset != NULL && label_copy(a.charset, a.charset_len, name) &&
            label_resolve(name, true))
            return true;
        if (a.equiv != NULL && a.equiv_len == 12 && strncasecmp(a.equiv, "content-type", 12) == 0 &&
            a.content != NULL && charset_param(a.content, a.content_len, name) &&
            label_resolve(name, true))
            return true;
    }
    return false;
}

void h2m_detect_charset(const uint8_t *in, size_t len, const char *content_type,
                        char name[H2M_CHARSET_MAX], size_t *bom_len)
{
    *bom_len = 0;
    if (len >= 3 && memcmp(in, "\xef\xbb\xbf", 3) == 0) {
        *bom_len = 3;
        snprintf(name, H2M_CHARSET_MAX, "UTF-8");
    } else if (len >= 2 && (memcmp(in, "\xff\xfe", 2) == 0 || memcmp(in, "\xfe\xff", 2) == 0)) {
        *bom_len = 2;
        snprintf(name, H2M_CHARSET_MAX, in[0] == 0xff ? "UTF-16LE" : "UTF-16BE");
    } else if (!(content_type != NULL && charset_param(content_type, strlen(content_type), name) &&
                 label_resolve(name, false)) &&
               !meta_prescan((const char *)in, len, name)) {
        snprintf(name, H2M_CHARSET_MAX, "UTF-8");
    }
}

/* Converts in[0..len) with cd into out; a sequence iconv refuses becomes U+FFFD and the
 * conversion goes on at the next byte. */
static int iconv_all(iconv_t cd, const uint8_t *in, size_t len, struct buf *out)
{
    char *ip = (char *)(uintptr_t)in;
    size_t left = len;
    int r;

    for (;;) {
        size_t room = buf_max(out) - buf_len(out), got;
        uint8_t *dst;
        char *op;

        if (room > 64 * 1024)
            room = 64 * 1024;
        if (room < 16)
            return ERR_INVALID;
        if ((r = buf_reserve(out, room, &dst)) != 0)
            return r == ERR_TOO_LARGE ? ERR_INVALID : r;
        op = (char *)dst;
        got = room;
        if (left == 0) {
            /* The end: a stateful encoding (ISO-2022-JP) may owe a reset sequence. */
            iconv(cd, NULL, NULL, &op, &got);
            buf_commit(out, room - got);
            return 0;
        }
        if (iconv(cd, &ip, &left, &op, &got) == (size_t)-1 && errno != E2BIG) {
            buf_commit(out, room - got);
            if (errno != EILSEQ && errno != EINVAL)
                return ERR_INVALID;
            if ((r = buf_put(out, replacement, 3)) != 0)
                return r == ERR_TOO_LARGE ? ERR_INVALID : r;
            ip++;
            left--;
            continue;
        }
        buf_commit(out, room - got);
    }
}

/* Copies out's bytes into a malloc'd, NUL-terminated string. */
static int take(struct buf *b, char **out, size_t *out_len)
{
    size_t n = buf_len(b);

    if ((*out = malloc(n + 1)) == NULL)
        return ERR_NOMEM;
    memcpy(*out, buf_ptr(b), n);
    (*out)[n] = '\0';
    *out_len = n;
    return 0;
}

int h2m_to_utf8(const uint8_t *in, size_t len, const char *content_type, size_t max, char **out,
                size_t *out_len)
{
    char name[H2M_CHARSET_MAX];
    size_t bom;
    struct buf *conv = NULL, *clean = NULL;
    iconv_t cd = (iconv_t)-1;
    int r = ERR_NOMEM;

    *out = NULL;
    *out_len = 0;
    h2m_detect_charset(in, len, content_type, name, &bom);
    in += bom;
    len -= bom;
    if ((clean = buf_new(max, 0)) == NULL)
        goto out;
    if (strcmp(name, "UTF-8") != 0) {
        /* iconv can write NUL (from a NUL byte) and nothing else ill-formed: one more
         * pass turns those into U+FFFD too. */
        if ((cd = iconv_open("UTF-8", name)) == (iconv_t)-1 || (conv = buf_new(max, 0)) == NULL)
            goto out;
        if ((r = iconv_all(cd, in, len, conv)) != 0)
            goto out;
        in = buf_ptr(conv);
        len = buf_len(conv);
    }
    if ((r = h2m_put_utf8_sanitized(clean, in, len)) != 0) {
        r = r == ERR_TOO_LARGE ? ERR_INVALID : r;
        goto out;
    }
    r = take(clean, out, out_len);
out:
    if (cd != (iconv_t)-1)
        iconv_close(cd);
    buf_free(conv);
    buf_free(clean);
    return r;
}
