#include "base/strutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

size_t strutil_lcpy(char *dst, const char *src, size_t dstsize)
{
    size_t len = strlen(src);
    if (dstsize) {
        size_t n = len < dstsize - 1 ? len : dstsize - 1;
        memcpy(dst, src, n);
        dst[n] = '\0';
    }
    return len;
}

static int strutil_lc(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

int strutil_casecmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        int ca = strutil_lc((unsigned char)*a), cb = strutil_lc((unsigned char)*b);
        if (ca != cb || ca == 0)
            return ca - cb;
    }
}

int strutil_ncasecmp(const char *a, const char *b, size_t n)
{
    for (; n; n--, a++, b++) {
        int ca = strutil_lc((unsigned char)*a), cb = strutil_lc((unsigned char)*b);
        if (ca != cb || ca == 0)
            return ca - cb;
    }
    return 0;
}

void strutil_lower(char *s)
{
    for (; *s; s++)
        *s = (char)strutil_lc((unsigned char)*s);
}

static void strutil_escape_set(struct buf *out, const char *s, size_t n, const char *also)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\') {
            buf_append(out, "\\\\", 2);
        } else if (c >= 0x20 && c < 0x7f && !(also && strchr(also, c))) {
            buf_putc(out, (char)c);
        } else {
            char e[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            buf_append(out, e, 4);
        }
    }
}

void strutil_escape(struct buf *out, const char *s, size_t n)
{
    strutil_escape_set(out, s, n, NULL);
}

void strutil_escape_word(struct buf *out, const char *s, size_t n)
{
    strutil_escape_set(out, s, n, " <>,;");
}

void strutil_escape_word_again(struct buf *out, const char *escaped)
{
    static const char hex[] = "0123456789abcdef";
    for (const char *p = escaped; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (strchr(" <>,;", c)) {
            char e[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            buf_append(out, e, 4);
        } else {
            buf_putc(out, (char)c);
        }
    }
    if (out->data == NULL)
        *buf_reserve(out, 0) = '\0';
}

const char *strutil_esc(const char *s)
{
    static struct buf b;
    buf_reset(&b);
    size_t n = strlen(s);
    if (n > 300)
        n = 300;
    strutil_escape(&b, s, n);
    if (b.data == NULL) /* "" before any other call: a fresh, empty string */
        *buf_reserve(&b, 0) = '\0';
    return b.data;
}

int strutil_parse_u64(const char *s, unsigned long long *out)
{
    if (*s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno == ERANGE)
        return -ERANGE;
    if (errno || *end)
        return -EINVAL;
    *out = v;
    return 0;
}

size_t strutil_utf8_len(const unsigned char *p, size_t n)
{
    if (n == 0)
        return 0;
    unsigned char c = p[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80; /* overlong */
        hi = c == 0xed ? 0x9f : 0xbf; /* UTF-16 surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        lo = c == 0xf0 ? 0x90 : 0x80; /* overlong */
        hi = c == 0xf4 ? 0x8f : 0xbf; /* beyond U+10FFFF */
    } else {
        return 0;
    }
    if (n < need || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return need;
}
