/* dkim_canon_ref.h: RFC 6376 §3.4.3 and §3.4.4 body canonicalisation
 * written the plain way, over the whole body at once, as the reference
 * the streaming canonicaliser (mailauth/dkim_canon) is checked against
 * by tests/unit/test_dkim_canon.c and tests/fuzz/fuzz_dkim_canon.c. It
 * shares no code with it. */
#ifndef TERN_TEST_DKIM_CANON_REF_H
#define TERN_TEST_DKIM_CANON_REF_H

#include <stddef.h>
#include <string.h>

#include "base/buf.h"

static inline int ref_ends_crlf(const struct buf *b)
{
    return b->len >= 2 && b->data[b->len - 2] == '\r' && b->data[b->len - 1] == '\n';
}

/* The canonical form of body[0..n) into out (reset first). */
static inline void ref_canon_body(int relaxed, const char *body, size_t n, struct buf *out)
{
    buf_reset(out);
    /* Lines: split at CRLF; a last piece without CRLF is a line too. */
    size_t start = 0;
    while (start < n) {
        size_t end = start;
        while (end < n && !(body[end] == '\r' && end + 1 < n && body[end + 1] == '\n'))
            end++;
        if (!relaxed) {
            buf_append(out, body + start, end - start);
        } else {
            /* §3.4.4 a: WSP runs to one SP, none at the end of the line. */
            size_t mark = out->len;
            for (size_t i = start; i < end; i++) {
                if (body[i] == ' ' || body[i] == '\t') {
                    if (out->len == mark || out->data[out->len - 1] != ' ')
                        buf_putc(out, ' ');
                } else {
                    buf_putc(out, body[i]);
                }
            }
            while (out->len > mark && out->data[out->len - 1] == ' ')
                out->len--;
        }
        buf_append(out, "\r\n", 2);
        start = end < n ? end + 2 : n;
    }
    /* Trailing empty lines go. */
    while (out->len >= 4 && memcmp(out->data + out->len - 4, "\r\n\r\n", 4) == 0)
        out->len -= 2;
    if (out->len == 2 && ref_ends_crlf(out))
        out->len = 0; /* a body of one empty line is an empty body */
    if (out->len == 0 && !relaxed)
        buf_append(out, "\r\n", 2); /* §3.4.3: an empty body is CRLF */
    if (out->data)
        out->data[out->len] = '\0';
}

#endif
