/* reply.c: SMTP replies (RFC 5321 §4.2) with enhanced status codes
 * (RFC 2034, RFC 3463). */
#include "mail/reply.h"

#include <stdarg.h>
#include <string.h>

/* RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets with its CRLF. */
#define REPLY_LINE_MAX 512

/* Appends one reply line. The text is cut to fit the line limit; every
 * octet that textstring (§4.2: %d09 / %d32-126) does not allow becomes
 * '?', so echoed peer input can neither end the line nor smuggle 8-bit
 * or terminal control octets to the client. */
static void reply_line(struct buf *out, int code, char sep, const char *enh, const char *text,
                       size_t n)
{
    size_t enhlen = enh ? strlen(enh) : 0;
    buf_printf(out, "%03d%c", code, sep);
    size_t used = 4;
    if (enh) {
        /* The enhanced code is ours, but the same filter costs nothing. */
        if (enhlen > 32)
            enhlen = 32;
        for (size_t i = 0; i < enhlen; i++) {
            unsigned char c = (unsigned char)enh[i];
            buf_putc(out, c > 32 && c < 127 ? (char)c : '?');
        }
        used += enhlen;
        if (n) {
            buf_putc(out, ' ');
            used++;
        }
    }
    size_t room = REPLY_LINE_MAX - 2 - used;
    if (n > room)
        n = room;
    char *dst = buf_reserve(out, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        dst[i] = (c == '\t' || (c >= 32 && c < 127)) ? (char)c : '?';
    }
    buf_commit(out, n);
    buf_append(out, "\r\n", 2);
}

void reply_append(struct buf *out, int code, const char *enh, const char *text)
{
    /* A code is three digits (§4.2); anything else is a bug of ours, and
     * a local error is the truthful answer. */
    if (code < 200 || code > 599)
        code = 451;
    if (text == NULL)
        text = "";
    for (;;) {
        const char *nl = strchr(text, '\n');
        if (nl == NULL) {
            reply_line(out, code, ' ', enh, text, strlen(text));
            return;
        }
        reply_line(out, code, '-', enh, text, (size_t)(nl - text));
        text = nl + 1;
    }
}

void reply_appendf(struct buf *out, int code, const char *enh, const char *fmt, ...)
{
    struct buf t = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&t, fmt, ap);
    va_end(ap);
    reply_append(out, code, enh, t.data ? t.data : "");
    buf_free(&t);
}
