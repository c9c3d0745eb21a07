/* dotstuff_enc.c: content octets to wire octets (see dotstuff_enc.h).
 *
 * Runs of ordinary octets (neither CR, LF nor NUL) are appended at once;
 * a CR is held back until the next octet shows whether it starts a CRLF,
 * so where the caller cuts its reads makes no difference to the output.
 * Only a CRLF starts a line for the dot rule: a dot after a bare CR or LF
 * cannot arise, since a bare CR or LF is refused before it. */
#include "mail/dotstuff_enc.h"

#include <errno.h>
#include <string.h>

void dotstuff_enc_init(struct dotstuff_enc *e, enum dotstuff_enc_mode mode)
{
    memset(e, 0, sizeof *e);
    e->mode = mode;
    e->bol = 1;
}

static void enc_put(struct buf *out, const char *p, size_t n)
{
    if (out)
        buf_append(out, p, n);
}

static int enc_refuse(struct dotstuff_enc *e, unsigned flag)
{
    e->flags |= flag;
    e->failed = 1;
    return -EINVAL;
}

/* BINARY: nothing is refused or changed; only the flags are noted. */
static void enc_binary(struct dotstuff_enc *e, const char *in, size_t n, struct buf *out)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (e->cr && c != '\n')
            e->flags |= DOTSTUFF_ENC_F_BARE;
        if (c >= 0x80)
            e->flags |= DOTSTUFF_ENC_F_8BIT;
        else if (c == '\0')
            e->flags |= DOTSTUFF_ENC_F_NUL;
        else if (c == '\n' && !e->cr)
            e->flags |= DOTSTUFF_ENC_F_BARE;
        e->cr = c == '\r';
    }
    enc_put(out, in, n);
}

int dotstuff_enc_feed(struct dotstuff_enc *e, const char *in, size_t n, struct buf *out)
{
    if (e->failed)
        return -EINVAL;
    if (e->mode == DOTSTUFF_ENC_BINARY) {
        enc_binary(e, in, n, out);
        return 0;
    }
    int stuff = e->mode == DOTSTUFF_ENC_DATA;
    size_t i = 0;
    while (i < n) {
        char c = in[i];
        if (e->cr) {
            if (c != '\n')
                return enc_refuse(e, DOTSTUFF_ENC_F_BARE); /* bare CR */
            enc_put(out, "\r\n", 2);
            e->cr = 0;
            e->bol = 1;
            i++;
            continue;
        }
        if (c == '\r') {
            e->cr = 1;
            i++;
            continue;
        }
        if (c == '\n')
            return enc_refuse(e, DOTSTUFF_ENC_F_BARE); /* bare LF */
        if (c == '\0')
            return enc_refuse(e, DOTSTUFF_ENC_F_NUL);
        /* RFC 5321 §4.5.2: a line that starts with a dot gets one more. */
        if (stuff && e->bol && c == '.')
            enc_put(out, ".", 1);
        size_t k = i;
        while (k < n && in[k] != '\r' && in[k] != '\n' && in[k] != '\0') {
            if ((unsigned char)in[k] >= 0x80)
                e->flags |= DOTSTUFF_ENC_F_8BIT;
            k++;
        }
        enc_put(out, in + i, k - i);
        e->bol = 0;
        i = k;
    }
    return 0;
}

int dotstuff_enc_end(struct dotstuff_enc *e, struct buf *out)
{
    if (e->mode == DOTSTUFF_ENC_BINARY) {
        if (e->cr)
            e->flags |= DOTSTUFF_ENC_F_BARE;
        e->cr = 0;
        return 0;
    }
    if (e->failed || e->cr) {
        if (e->cr)
            enc_refuse(e, DOTSTUFF_ENC_F_BARE);
        return -EINVAL;
    }
    if (e->mode == DOTSTUFF_ENC_DATA)
        enc_put(out, e->bol ? ".\r\n" : "\r\n.\r\n", e->bol ? 3 : 5);
    return 0;
}
