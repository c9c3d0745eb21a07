/* xtext.c: RFC 3461 §4 xtext and RFC 6533 §3 utf-8-addr-xtext/unitext. */
#include "mail/xtext.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>

#include "base/strutil.h"

static const char xtext_hex[] = "0123456789ABCDEF";

/* xchar = any ASCII CHAR between "!" and "~" inclusive, except "+" and "=". */
static int xtext_is_xchar(unsigned char c)
{
    return c >= 33 && c <= 126 && c != '+' && c != '=';
}

/* QCHAR = %x21-2a / %x2c-3c / %x3e-5b / %x5d-7e: an xchar that is not '\'. */
static int xtext_is_qchar(unsigned char c)
{
    return xtext_is_xchar(c) && c != '\\';
}

/* Value of a hex digit, or -EINVAL. `lower` admits a-f as well. */
static int xtext_hexval(unsigned char c, int lower)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (lower && c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -EINVAL;
}

/* Takes out back to the length it had before a failed decode. */
static void xtext_undo(struct buf *out, size_t len)
{
    out->len = len;
    if (out->data)
        out->data[len] = '\0';
}

void xtext_encode(struct buf *out, const char *in, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (xtext_is_xchar(c)) {
            buf_putc(out, (char)c);
        } else {
            char h[3] = {'+', xtext_hex[c >> 4], xtext_hex[c & 15]};
            buf_append(out, h, 3);
        }
    }
}

int xtext_decode(const char *in, size_t n, size_t max, struct buf *out)
{
    size_t start = out->len, got = 0;
    for (size_t i = 0; i < n; got++) {
        unsigned char c = (unsigned char)in[i];
        if (got == max) {
            xtext_undo(out, start);
            return -EMSGSIZE;
        }
        if (c == '+') {
            int hi = i + 2 < n ? xtext_hexval((unsigned char)in[i + 1], 0) : -EINVAL;
            int lo = hi >= 0 ? xtext_hexval((unsigned char)in[i + 2], 0) : -EINVAL;
            if (lo < 0)
                goto bad;
            buf_putc(out, (char)(hi << 4 | lo));
            i += 3;
        } else if (xtext_is_xchar(c)) {
            buf_putc(out, (char)c);
            i++;
        } else {
            goto bad;
        }
    }
    return 0;
bad:
    xtext_undo(out, start);
    return -EINVAL;
}

/* Appends code point cp (valid, not a surrogate) as UTF-8. */
static void xtext_put_utf8(struct buf *out, uint32_t cp)
{
    char u[4];
    size_t k;
    if (cp < 0x80) {
        u[0] = (char)cp;
        k = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3F));
        k = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | cp >> 12);
        u[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        k = 3;
    } else {
        u[0] = (char)(0xF0 | cp >> 18);
        u[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        k = 4;
    }
    buf_append(out, u, k);
}

/* The code point of the well-formed UTF-8 sequence p[0..k). */
static uint32_t xtext_utf8_cp(const unsigned char *p, size_t k)
{
    if (k == 1)
        return p[0];
    uint32_t cp = p[0] & (0x7F >> k);
    for (size_t i = 1; i < k; i++)
        cp = cp << 6 | (p[i] & 0x3F);
    return cp;
}

/* An ASCII code point that HEXPOINT's two-digit forms can express: the
 * controls 01-09, 10-19 (RFC 6533's grammar leaves out 0A-0F and 1A-1F),
 * SP, '+', '=', DEL and '\'. */
static int xtext_ascii_hexpoint(uint32_t cp)
{
    return (cp >= 0x01 && cp <= 0x09) || (cp >= 0x10 && cp <= 0x19) || cp == 0x20 ||
           cp == 0x2B || cp == 0x3D || cp == 0x7F || cp == 0x5C;
}

void xtext_utf8_encode(struct buf *out, const char *in, size_t n, int unitext)
{
    const unsigned char *p = (const unsigned char *)in;
    for (size_t i = 0; i < n;) {
        size_t k = p[i] < 0x80 ? 1 : strutil_utf8_len(p + i, n - i);
        uint32_t cp = k ? xtext_utf8_cp(p + i, k) : 0xFFFD;
        if (k == 0)
            k = 1;
        if (cp < 0x80 && xtext_is_qchar((unsigned char)cp)) {
            buf_putc(out, (char)cp);
        } else if (cp >= 0x80 && unitext) {
            xtext_put_utf8(out, cp);
        } else {
            if (cp < 0x80 && !xtext_ascii_hexpoint(cp))
                cp = 0xFFFD;
            buf_printf(out, "\\x{%02" PRIX32 "}", cp);
        }
        i += k;
    }
}

/* Parses "\x{HEXPOINT}" at in[0..n): returns the octets it spans and
 * sets *cp, or returns 0 when it is not one. */
static size_t xtext_hexpoint(const char *in, size_t n, uint32_t *cp)
{
    if (n < 5 || in[0] != '\\' || in[1] != 'x' || in[2] != '{')
        return 0;
    size_t i = 3, digits = 0;
    uint32_t v = 0;
    for (; i < n && in[i] != '}'; i++) {
        int h = xtext_hexval((unsigned char)in[i], 1);
        if (h < 0 || ++digits > 6)
            return 0;
        v = v << 4 | (uint32_t)h;
    }
    if (i == n || digits < 2)
        return 0;
    /* One spelling per character: two digits for what is below 0x100,
     * otherwise no leading zero (which also rules out 0x0000-0x00FF
     * written long). */
    if (digits > 2 && in[3] == '0')
        return 0;
    if (digits == 2 && v < 0x80 && !xtext_ascii_hexpoint(v))
        return 0;
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return i + 1;
}

int xtext_utf8_decode(const char *in, size_t n, int unitext, size_t max, struct buf *out)
{
    size_t start = out->len;
    const unsigned char *p = (const unsigned char *)in;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k;
        if (p[i] == '\\') {
            k = xtext_hexpoint(in + i, n - i, &cp);
            if (k == 0)
                goto bad;
            xtext_put_utf8(out, cp);
        } else if (p[i] < 0x80) {
            if (!xtext_is_qchar(p[i]))
                goto bad;
            buf_putc(out, (char)p[i]);
            k = 1;
        } else {
            k = unitext ? strutil_utf8_len(p + i, n - i) : 0;
            if (k == 0)
                goto bad;
            buf_append(out, in + i, k);
        }
        if (out->len - start > max) {
            xtext_undo(out, start);
            return -EMSGSIZE;
        }
        i += k;
    }
    return 0;
bad:
    xtext_undo(out, start);
    return -EINVAL;
}
