/* libFuzzer target: mail/downgrade on hostile messages. The first octet
 * holds flags: bit 0 wraps the rest as the body of a message without
 * MIME ("Subject: x" CRLF CRLF before it), whose quoted-printable must
 * decode back to exactly that body; otherwise the rest is the message;
 * bit 1 is DOWNGRADE_KEEP_8BIT, bit 2 DOWNGRADE_BINARY. Checks that a
 * conversion has no NUL and no bare CR or LF, is 7-bit unless 8-bit may
 * stay, has body lines of at most 998 octets, is a fixed point
 * (converting it again changes nothing), leaves a message with nothing
 * to convert as it was, and that a refusal appends nothing and says why. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "mail/downgrade.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define WRAP "Subject: x\r\n\r\n"

/* Offset of the body: after the first empty line (LF or CRLF), or n. */
static size_t body_start(const char *s, size_t n)
{
    for (size_t i = 0, start = 0; i < n; i++) {
        if (s[i] != '\n')
            continue;
        if (i == start || (i == start + 1 && s[start] == '\r'))
            return i + 1;
        start = i + 1;
    }
    return n;
}

/* Whether a body line of s[0..n) is over max octets (a CR before its LF
 * not counted). */
static int long_line(const char *s, size_t n, size_t max)
{
    size_t col = 0;
    for (size_t i = body_start(s, n); i < n; i++) {
        if (s[i] == '\n') {
            col = 0;
        } else if (++col > max && !(col == max + 1 && s[i] == '\r' && i + 1 < n &&
                                    s[i + 1] == '\n')) {
            return 1;
        }
    }
    return 0;
}

/* Every CR before an LF, every LF after a CR. */
static int crlf_only(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((s[i] == '\r' && (i + 1 == n || s[i + 1] != '\n')) ||
            (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')))
            return 0;
    return 1;
}

/* Decodes the quoted-printable s[0..n) as our encoder writes it; -1 on
 * anything else. */
static int qp_decode(const char *s, size_t n, struct buf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '=') {
            if (i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n') {
                i += 2;
                continue;
            }
            if (i + 2 >= n || s[i + 1] == '\0' || s[i + 2] == '\0')
                return -1;
            const char *a = strchr(hex, s[i + 1]), *b = strchr(hex, s[i + 2]);
            if (a == NULL || b == NULL)
                return -1;
            buf_putc(out, (char)((a - hex) * 16 + (b - hex)));
            i += 2;
        } else if (c == '\r' && i + 1 < n && s[i + 1] == '\n') {
            buf_puts(out, "\r\n");
            i++;
        } else if ((c >= 33 && c <= 126) || c == ' ' || c == '\t') {
            buf_putc(out, c);
        } else {
            return -1;
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 16384)
        return 0;
    int wrap = data[0] & 1;
    size_t pre = wrap ? strlen(WRAP) : 0;
    size_t n = pre + size - 1;
    /* An exact-size copy: any read past n is an ASan report. */
    char *in = malloc(n ? n : 1);
    memcpy(in, WRAP, pre);
    memcpy(in + pre, data + 1, size - 1);

    unsigned flags = (data[0] & 2 ? DOWNGRADE_KEEP_8BIT : 0) | (data[0] & 4 ? DOWNGRADE_BINARY : 0);
    int needed = downgrade_needed(in, n, flags);
    struct buf out = BUF_INIT;
    buf_puts(&out, "x");
    const char *why = NULL;
    int rc = downgrade_convert(in, n, flags, &out, &why);
    if (rc == -EINVAL) {
        if (why == NULL || out.len != 1 || out.data[0] != 'x' || out.data[1] != '\0')
            abort();
        /* Without MIME there is nothing in the body to refuse. */
        if (wrap)
            abort();
    } else if (rc == 0) {
        const char *o = out.data + 1;
        size_t on = out.len - 1;
        if (why != NULL)
            abort();
        for (size_t i = 0; i < on; i++)
            if (((unsigned char)o[i] >= 0x80 && !(flags & DOWNGRADE_KEEP_8BIT)) || o[i] == '\0')
                abort();
        if (!crlf_only(o, on) || long_line(o, on, 998))
            abort();
        /* Nothing to convert: nothing changed (DOWNGRADE_BINARY may still
         * replace "binary" labels). */
        if (!needed && !long_line(in, n, 998) && crlf_only(in, n) && !(flags & DOWNGRADE_BINARY) &&
            (on != n || memcmp(o, in, n)))
            abort();
        /* A fixed point. */
        struct buf again = BUF_INIT;
        if (downgrade_convert(o, on, flags, &again, NULL) != 0 || again.len != on ||
            (on && memcmp(again.data, o, on)))
            abort();
        buf_free(&again);
        if (downgrade_needed(o, on, flags))
            abort();
        /* Without MIME, the quoted-printable body decodes to the body. */
        if (wrap && (needed || long_line(in, n, 998))) {
            size_t ob = body_start(o, on), ib = body_start(in, n);
            struct buf d = BUF_INIT;
            if (qp_decode(o + ob, on - ob, &d) < 0 || d.len != n - ib ||
                (d.len && memcmp(d.data, in + ib, d.len)))
                abort();
            buf_free(&d);
        }
    } else {
        abort();
    }
    buf_free(&out);
    free(in);
    return 0;
}
