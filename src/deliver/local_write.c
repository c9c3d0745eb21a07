/* local_write.c: see local_write.h. */
#include "deliver/local_write.h"

#include <errno.h>
#include <string.h>

static void local_write_addr(struct buf *b, const char *s)
{
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        buf_putc(b, (c < 0x20 || c == 0x7f) ? '?' : (char)c);
    }
}

void local_write_head(struct buf *b, const char *return_path, const char *delivered_to)
{
    buf_puts(b, "Return-Path: <");
    local_write_addr(b, return_path);
    buf_puts(b, ">\nDelivered-To: ");
    local_write_addr(b, delivered_to);
    buf_putc(b, '\n');
}

void local_write_fail(struct result *res, const char *what, int err)
{
    char ebuf[128];
    const char *es = strerror_r(err, ebuf, sizeof ebuf);
    if (err == ENOSPC)
        result_set(res, RESULT_TEMPFAIL, 452, "4.3.1", "mail system full: %s: %s", what, es);
    else if (err == EDQUOT)
        result_set(res, RESULT_TEMPFAIL, 452, "4.2.2", "mailbox full: %s: %s", what, es);
    else if (err == EACCES || err == EPERM)
        result_set(res, RESULT_TEMPFAIL, 451, "4.3.0", "permission denied: %s: %s", what, es);
    else
        result_set(res, RESULT_TEMPFAIL, 451, "4.3.0", "mailbox I/O error: %s: %s", what, es);
}

size_t local_write_lf(const char *in, size_t n, char *out, int *cr)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (*cr) {
            *cr = 0;
            if (c != '\n')
                out[o++] = '\r';
        }
        if (c == '\r') {
            *cr = 1;
            continue;
        }
        out[o++] = c;
    }
    return o;
}
