/*
 * chunked.c - incremental chunked-body decoder. See chunked.h.
 *
 * Framing is walked one byte at a time through a small state machine, so input
 * may be split anywhere (even inside "\r\n") and the result is the same. Body
 * data is never walked: it is handed back as one view per call. The grammar is
 * RFC 9112 7.1:
 *
 *   chunk      = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   chunk-size = 1*HEXDIG
 *   chunk-ext  = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
 *   last-chunk = 1*("0") [ chunk-ext ] CRLF
 *   trailer-section = *( field-line CRLF ), then the final CRLF
 */
#include <stdbool.h>
#include <string.h>

#include "ascii.h"
#include "chunked.h"
#include "err.h"

enum {
    CH_SIZE_START,     /* expecting the first hex digit of a chunk-size */
    CH_SIZE,           /* inside a chunk-size */
    CH_EXT_BWS_SEMI,   /* BWS after the size or a value; only more BWS or ';' may follow */
    CH_EXT_NAME_START, /* after ';': BWS, then an extension name */
    CH_EXT_NAME,       /* inside an extension name */
    CH_EXT_AFTER_NAME, /* BWS after a name: '=' or ';' next */
    CH_EXT_VAL_START,  /* after '=': BWS, then a token or a quoted-string */
    CH_EXT_VAL_TOKEN,  /* inside a token value */
    CH_EXT_QSTR,       /* inside a quoted-string value */
    CH_EXT_QESC,       /* after a backslash inside a quoted-string */
    CH_EXT_AFTER_QSTR, /* after the closing quote */
    CH_SIZE_LF,        /* CR of the chunk-size line seen */
    CH_DATA,           /* _remaining bytes of chunk data to come */
    CH_DATA_CR,        /* expecting the CR after chunk data */
    CH_DATA_LF,        /* expecting the LF after chunk data */
    CH_TRAILER_START,  /* at the start of a trailer line (or the final CRLF) */
    CH_TRAILER_NAME,   /* inside a trailer field name */
    CH_TRAILER_VALUE,  /* inside a trailer field value */
    CH_TRAILER_LF,     /* CR of a trailer line seen */
    CH_FINAL_LF,       /* CR of the final CRLF seen */
    CH_DONE,
};

static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* RFC 9110 5.6.4: qdtext. */
static bool is_qdtext(unsigned char c)
{
    return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) ||
           (c >= 0x5d && c <= 0x7e) || c >= 0x80;
}

/* Bytes allowed in a field value (and after a backslash in a quoted-pair). */
static bool is_value_byte(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* Ends a chunk-size line: the caller has seen its CR. */
static int chunked__end_size_line(struct chunked_decoder *d)
{
    d->_state = CH_SIZE_LF;
    return 0;
}

/* One byte of a chunk-extension (any state from CH_EXT_BWS_SEMI to CH_EXT_AFTER_QSTR). */
static int chunked__ext_byte(struct chunked_decoder *d, unsigned char c)
{
    if (++d->_ext_len > CHUNKED_MAX_EXT)
        return ERR_HTTP_BAD_REQUEST;
    switch (d->_state) {
    case CH_EXT_BWS_SEMI:
        if (is_ws(c))
            return 0;
        if (c == ';') {
            d->_state = CH_EXT_NAME_START;
            return 0;
        }
        break;
    case CH_EXT_NAME_START:
        if (is_ws(c))
            return 0;
        if (ascii_is_tchar(c)) {
            d->_state = CH_EXT_NAME;
            return 0;
        }
        break;
    case CH_EXT_NAME:
        if (ascii_is_tchar(c))
            return 0;
        if (is_ws(c)) {
            d->_state = CH_EXT_AFTER_NAME;
            return 0;
        }
        if (c == '=') {
            d->_state = CH_EXT_VAL_START;
            return 0;
        }
        if (c == ';') {
            d->_state = CH_EXT_NAME_START;
            return 0;
        }
        if (c == '\r')
            return chunked__end_size_line(d);
        break;
    case CH_EXT_AFTER_NAME:
        if (is_ws(c))
            return 0;
        if (c == '=') {
            d->_state = CH_EXT_VAL_START;
            return 0;
        }
        if (c == ';') {
            d->_state = CH_EXT_NAME_START;
            return 0;
        }
        break;
    case CH_EXT_VAL_START:
        if (is_ws(c))
            return 0;
        if (c == '"') {
            d->_state = CH_EXT_QSTR;
            return 0;
        }
        if (ascii_is_tchar(c)) {
            d->_state = CH_EXT_VAL_TOKEN;
            return 0;
        }
        break;
    case CH_EXT_VAL_TOKEN:
        if (ascii_is_tchar(c))
            return 0;
        if (is_ws(c)) {
            d->_state = CH_EXT_BWS_SEMI;
            return 0;
        }
        if (c == ';') {
            d->_state = CH_EXT_NAME_START;
            return 0;
        }
        if (c == '\r')
            return chunked__end_size_line(d);
        break;
    case CH_EXT_QSTR:
        if (c == '"')
            d->_state = CH_EXT_AFTER_QSTR;
        else if (c == '\\')
            d->_state = CH_EXT_QESC;
        else if (!is_qdtext(c))
            break;
        return 0;
    case CH_EXT_QESC:
        if (!is_value_byte(c))
            break;
        d->_state = CH_EXT_QSTR;
        return 0;
    case CH_EXT_AFTER_QSTR:
        if (is_ws(c)) {
            d->_state = CH_EXT_BWS_SEMI;
            return 0;
        }
        if (c == ';') {
            d->_state = CH_EXT_NAME_START;
            return 0;
        }
        if (c == '\r')
            return chunked__end_size_line(d);
        break;
    default:
        break;
    }
    /*
     * Anything else, including CR right after BWS ("1 \r\n" or "1;a \r\n"),
     * is outside the grammar. BWS is only allowed where ';' or '=' follows.
     */
    return ERR_HTTP_BAD_REQUEST;
}

/* One byte of the trailer section; counts it against CHUNKED_MAX_TRAILER. */
static int chunked__trailer_byte(struct chunked_decoder *d, unsigned char c)
{
    if (++d->_trailer_len > CHUNKED_MAX_TRAILER)
        return ERR_HTTP_BAD_REQUEST;
    switch (d->_state) {
    case CH_TRAILER_START:
        /* A leading SP or HTAB would be obs-fold (RFC 9112 5.2): rejected. */
        if (c == '\r')
            d->_state = CH_FINAL_LF;
        else if (ascii_is_tchar(c))
            d->_state = CH_TRAILER_NAME;
        else
            return ERR_HTTP_BAD_REQUEST;
        return 0;
    case CH_TRAILER_NAME:
        if (c == ':')
            d->_state = CH_TRAILER_VALUE;
        else if (!ascii_is_tchar(c))
            return ERR_HTTP_BAD_REQUEST;
        return 0;
    case CH_TRAILER_VALUE:
        if (c == '\r')
            d->_state = CH_TRAILER_LF;
        else if (!is_value_byte(c))
            return ERR_HTTP_BAD_REQUEST;
        return 0;
    case CH_TRAILER_LF:
        if (c != '\n')
            return ERR_HTTP_BAD_REQUEST;
        d->_state = CH_TRAILER_START;
        return 0;
    case CH_FINAL_LF:
        if (c != '\n')
            return ERR_HTTP_BAD_REQUEST;
        d->_state = CH_DONE;
        return 0;
    default:
        return ERR_HTTP_BAD_REQUEST;
    }
}

/* Advances the framing state machine by one byte (never called in CH_DATA). */
static int chunked__step(struct chunked_decoder *d, unsigned char c)
{
    int v;

    switch (d->_state) {
    case CH_SIZE_START:
        /* No sign, no "0x", no leading whitespace: 1*HEXDIG and nothing else. */
        if ((v = ascii_hex_value(c)) < 0)
            return ERR_HTTP_BAD_REQUEST;
        d->_remaining = (uint64_t)v;
        d->_digits = 1;
        d->_state = CH_SIZE;
        return 0;
    case CH_SIZE:
        if ((v = ascii_hex_value(c)) >= 0) {
            /* 16 digits fill a uint64_t exactly, so this cap is also the overflow check. */
            if (++d->_digits > CHUNKED_MAX_SIZE_DIGITS)
                return ERR_HTTP_BAD_REQUEST;
            d->_remaining = (d->_remaining << 4) | (uint64_t)v;
            return 0;
        }
        if (c == '\r')
            return chunked__end_size_line(d);
        if (c == ';' || is_ws(c)) {
            d->_state = is_ws(c) ? CH_EXT_BWS_SEMI : CH_EXT_NAME_START;
            d->_ext_len = 1;
            return 0;
        }
        return ERR_HTTP_BAD_REQUEST;
    case CH_EXT_BWS_SEMI:
    case CH_EXT_NAME_START:
    case CH_EXT_NAME:
    case CH_EXT_AFTER_NAME:
    case CH_EXT_VAL_START:
    case CH_EXT_VAL_TOKEN:
    case CH_EXT_QSTR:
    case CH_EXT_QESC:
    case CH_EXT_AFTER_QSTR:
        return chunked__ext_byte(d, c);
    case CH_SIZE_LF:
        /* Bare CR or a CR followed by anything but LF: RFC 9112 2.2. */
        if (c != '\n')
            return ERR_HTTP_BAD_REQUEST;
        d->_state = d->_remaining == 0 ? CH_TRAILER_START : CH_DATA;
        return 0;
    case CH_DATA_CR:
        if (c != '\r')
            return ERR_HTTP_BAD_REQUEST;
        d->_state = CH_DATA_LF;
        return 0;
    case CH_DATA_LF:
        if (c != '\n')
            return ERR_HTTP_BAD_REQUEST;
        d->_state = CH_SIZE_START;
        d->_remaining = 0;
        d->_digits = 0;
        d->_ext_len = 0;
        return 0;
    case CH_TRAILER_START:
    case CH_TRAILER_NAME:
    case CH_TRAILER_VALUE:
    case CH_TRAILER_LF:
    case CH_FINAL_LF:
        return chunked__trailer_byte(d, c);
    default:
        return ERR_HTTP_BAD_REQUEST;
    }
}

void chunked_init(struct chunked_decoder *d)
{
    memset(d, 0, sizeof(*d));
    d->_state = CH_SIZE_START;
}

uint64_t chunked_pending(const struct chunked_decoder *d)
{
    return d->_state == CH_DATA ? d->_remaining : 0;
}

int chunked_decode(struct chunked_decoder *d, const char *in, size_t len, size_t *consumed,
                   const char **data, size_t *data_len)
{
    size_t i = 0;
    int r;

    *consumed = 0;
    *data = NULL;
    *data_len = 0;
    if (d->_error != 0)
        return d->_error;
    if (d->_state == CH_DONE)
        return 1;
    while (i < len) {
        if (d->_state == CH_DATA) {
            size_t n = len - i;

            if ((uint64_t)n > d->_remaining)
                n = (size_t)d->_remaining;
            *data = in + i;
            *data_len = n;
            d->_remaining -= n;
            i += n;
            if (d->_remaining == 0)
                d->_state = CH_DATA_CR;
            break; /* at most one span per call */
        }
        r = chunked__step(d, (unsigned char)in[i]);
        i++;
        if (r != 0) {
            d->_error = r;
            *consumed = i;
            return r;
        }
        if (d->_state == CH_DONE) {
            *consumed = i;
            return 1;
        }
    }
    *consumed = i;
    return 0;
}
