#include "base/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xmalloc.h"

void buf_init(struct buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void buf_free(struct buf *b)
{
    free(b->data);
    buf_init(b);
}

void buf_wipe(struct buf *b)
{
    if (b->data != NULL)
        memset(b->data, 0, b->cap);
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

char *buf_reserve(struct buf *b, size_t extra)
{
    if (extra > ((size_t)-1) / 2 - b->len)
        fatal("buf_reserve: size overflow");
    size_t need = b->len + extra + 1;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < need)
            cap *= 2;
        b->data = xrealloc(b->data, cap);
        b->cap = cap;
    }
    return b->data + b->len;
}

void buf_commit(struct buf *b, size_t n)
{
    if (n > b->cap - b->len - 1)
        fatal("buf_commit: %zu bytes beyond reservation", n);
    b->len += n;
    b->data[b->len] = '\0';
}

void buf_append(struct buf *b, const void *p, size_t n)
{
    char *dst = buf_reserve(b, n);
    if (n)
        memcpy(dst, p, n);
    buf_commit(b, n);
}

void buf_puts(struct buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void buf_putc(struct buf *b, char c)
{
    buf_append(b, &c, 1);
}

void buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    char *dst = buf_reserve(b, 128);
    int n = vsnprintf(dst, b->cap - b->len, fmt, cp);
    va_end(cp);
    if (n < 0)
        fatal("buf_vprintf: bad format");
    if ((size_t)n >= b->cap - b->len) {
        dst = buf_reserve(b, (size_t)n);
        vsnprintf(dst, b->cap - b->len, fmt, ap);
    }
    b->len += (size_t)n;
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

char *buf_steal(struct buf *b)
{
    if (b->data == NULL)
        buf_reserve(b, 0);
    char *p = b->data;
    p[b->len] = '\0';
    buf_init(b);
    return p;
}
