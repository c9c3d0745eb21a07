/* libFuzzer target: the outbound invariant. Whatever a message holds and
 * whatever its envelope's BODY= says, what smtp_client puts on the wire
 * (planned by client_plan, converted by mail/downgrade, encoded by
 * mail/dotstuff_enc) can be read by a next hop only as the message meant.
 *
 * Input: octet 0 = the BODY= the message came with (0 7BIT, 1 8BITMIME,
 * 2-3 BINARYMIME); octet 1 = what the server offers (0x01 8BITMIME, 0x02
 * CHUNKING, 0x04 BINARYMIME, 0x08 PIPELINING, 0x10 LIMITS RCPTMAX=1
 * MAILMAX=2); the rest is the spooled content. A small server model
 * answers everything with success and reads the content back the strict
 * way (DATA ends at the first CRLF.CRLF, BDAT takes its count of octets).
 * Aborts when:
 *   - a command line, or anything sent with DATA, holds a NUL, a bare CR
 *     or a bare LF; tern's own DATA reader (mail/dotstuff) ends the data
 *     elsewhere than the strict reading, or reads other content;
 *   - BODY=BINARYMIME goes without BDAT, to a server without CHUNKING and
 *     BINARYMIME, or for a message that did not come as BINARYMIME; BODY=
 *     8BITMIME to a server without it; 8-bit octets without BODY=8BITMIME
 *     or BINARYMIME; a NUL or bare CR/LF without BODY=BINARYMIME;
 *   - the content that arrives is not the message (BINARYMIME, and
 *     whatever needs no conversion) or its conversion (everything else,
 *     with DATA's final CRLF), or a refusal (5.6.3) is not a conversion
 *     that fails, or anything was sent after one;
 *   - a server's RCPTMAX or MAILMAX is exceeded, a recipient is answered
 *     twice or not at all, or the plan and the encoder disagree (the
 *     transfer is abandoned, 4.3.0);
 *   - the encoder's output depends on where its input was cut. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/buf.h"
#include "mail/dotstuff.h"
#include "mail/dotstuff_enc.h"
#include "mail/downgrade.h"
#include "mail/envelope.h"
#include "smtp/smtp_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NRCPTS 3
#define CAP_8BITMIME 0x01
#define CAP_CHUNKING 0x02
#define CAP_BINARYMIME 0x04
#define CAP_PIPELINING 0x08
#define CAP_LIMITS 0x10 /* RCPTMAX=1 MAILMAX=2 */

struct fz {
    struct buf wire; /* everything the client wrote */
    size_t pos;      /* what the server model has read */
    int done;
    struct result res[NRCPTS];
    size_t n;
    /* The server model. */
    unsigned caps;
    int in_txn, rcpts_in_txn, mails;
    enum envelope_body label; /* BODY= of the transaction */
    uint64_t bdat_left;       /* octets of the BDAT chunk still to read */
    int bdat_last;
    int in_data;
    struct buf got;           /* the content of the transaction */
    int delivered;            /* transactions whose content arrived */
    struct buf first;         /* the content of the first one */
};

static void fz_write(void *io, const void *p, size_t n)
{
    buf_append(&((struct fz *)io)->wire, p, n);
}

static size_t fz_pending(void *io)
{
    return 0;
}

static void fz_timeout(void *io, uint64_t ms)
{
}

static const struct smtp_client_io fz_io = {fz_write, fz_pending, NULL, fz_timeout};

static void fz_done(void *arg, const struct result *res, size_t n, int closed)
{
    struct fz *f = arg;
    if (f->done++ || n != NRCPTS)
        abort();
    memcpy(f->res, res, n * sizeof *res);
    f->n = n;
}

static int fz_clean(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\0' || (s[i] == '\r' && (i + 1 == n || s[i + 1] != '\n')) ||
            (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')))
            return 0;
    return 1;
}

static int fz_has_8bit(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return 1;
    return 0;
}

/* One transaction's content arrived: the label must fit it. */
static void fz_content_done(struct fz *f)
{
    const char *s = f->got.data ? f->got.data : "";
    if (f->label != ENV_BODY_BINARYMIME && !fz_clean(s, f->got.len))
        abort();
    if (f->label == ENV_BODY_7BIT && fz_has_8bit(s, f->got.len))
        abort();
    if (f->delivered++ == 0)
        buf_append(&f->first, s, f->got.len);
    else if (f->first.len != f->got.len || memcmp(f->first.data, s, f->got.len))
        abort(); /* every transaction carries the same content */
    buf_reset(&f->got);
}

static void fz_reply(struct buf *r, const char *text)
{
    buf_puts(r, text);
}

/* Reads what the client wrote since the last call and answers it into r;
 * 0 when there was nothing complete to read. */
static int fz_server(struct fz *f, struct buf *r)
{
    int progress = 0;
    for (;;) {
        const char *w = f->wire.data;
        size_t left = f->wire.len - f->pos;
        if (f->bdat_left) {
            size_t k = left < f->bdat_left ? left : (size_t)f->bdat_left;
            if (k == 0)
                return progress;
            buf_append(&f->got, w + f->pos, k);
            f->pos += k;
            f->bdat_left -= k;
            progress = 1;
            if (f->bdat_left == 0) {
                if (f->bdat_last)
                    fz_content_done(f);
                fz_reply(r, "250 2.0.0 ok\r\n");
            }
            continue;
        }
        if (f->in_data) {
            /* RFC 5321 §4.1.1.4: the first CRLF.CRLF, the DATA line's CRLF counted. */
            const char *end = memmem(w + f->pos - 2, left + 2, "\r\n.\r\n", 5);
            if (end == NULL)
                return progress;
            size_t stop = (size_t)(end - w) + 2; /* the content with its last CRLF */
            size_t from = f->pos;
            if (stop < from)
                stop = from; /* empty content: ".\r\n" right after DATA */
            if (!fz_clean(w + from, stop - from))
                abort();
            /* Unstuffed, and tern's own reader must agree to the octet. */
            struct buf unstuffed = BUF_INIT;
            for (size_t i = from; i < stop;) {
                const char *nl = memmem(w + i, stop - i, "\r\n", 2);
                size_t e = (size_t)(nl - w) + 2;
                buf_append(&unstuffed, w + i + (w[i] == '.'), e - i - (w[i] == '.'));
                i = e;
            }
            struct dotstuff d;
            struct buf dec = BUF_INIT;
            size_t used = 0;
            dotstuff_init(&d, DOTSTUFF_DATA, DOTSTUFF_REJECT, 0, 0);
            if (dotstuff_feed(&d, w + from, f->wire.len - from, &dec, &used) != DOTSTUFF_END ||
                from + used != (size_t)(end - w) + 5 || (d.flags & DOTSTUFF_F_BARE) ||
                dec.len != unstuffed.len || (dec.len && memcmp(dec.data, unstuffed.data, dec.len)))
                abort();
            buf_append(&f->got, unstuffed.data ? unstuffed.data : "", unstuffed.len);
            buf_free(&unstuffed);
            buf_free(&dec);
            f->pos = (size_t)(end - w) + 5;
            f->in_data = 0;
            fz_content_done(f);
            fz_reply(r, "250 2.0.0 ok\r\n");
            progress = 1;
            continue;
        }
        const char *nl = left ? memmem(w + f->pos, left, "\r\n", 2) : NULL;
        if (nl == NULL)
            return progress;
        size_t len = (size_t)(nl - (w + f->pos));
        char line[1100];
        if (len >= sizeof line || !fz_clean(w + f->pos, len + 2))
            abort();
        memcpy(line, w + f->pos, len);
        line[len] = '\0';
        f->pos += len + 2;
        progress = 1;
        if (!strncmp(line, "EHLO ", 5)) {
            fz_reply(r, "250-p\r\n");
            if (f->caps & CAP_8BITMIME)
                fz_reply(r, "250-8BITMIME\r\n");
            if (f->caps & CAP_CHUNKING)
                fz_reply(r, "250-CHUNKING\r\n");
            if (f->caps & CAP_BINARYMIME)
                fz_reply(r, "250-BINARYMIME\r\n");
            if (f->caps & CAP_PIPELINING)
                fz_reply(r, "250-PIPELINING\r\n");
            if (f->caps & CAP_LIMITS)
                fz_reply(r, "250-LIMITS RCPTMAX=1 MAILMAX=2\r\n");
            fz_reply(r, "250 SIZE 100000000\r\n");
        } else if (!strncmp(line, "MAIL FROM:", 10)) {
            if (f->in_txn || ((f->caps & CAP_LIMITS) && f->mails >= 2))
                abort();
            f->in_txn = 1;
            f->mails++;
            f->rcpts_in_txn = 0;
            f->label = strstr(line, " BODY=BINARYMIME") ? ENV_BODY_BINARYMIME
                       : strstr(line, " BODY=8BITMIME") ? ENV_BODY_8BITMIME
                                                        : ENV_BODY_7BIT;
            if (f->label == ENV_BODY_BINARYMIME &&
                (f->caps & (CAP_CHUNKING | CAP_BINARYMIME)) != (CAP_CHUNKING | CAP_BINARYMIME))
                abort();
            if (f->label == ENV_BODY_8BITMIME && !(f->caps & CAP_8BITMIME))
                abort();
            fz_reply(r, "250 2.1.0 ok\r\n");
        } else if (!strncmp(line, "RCPT TO:", 8)) {
            if (!f->in_txn || ((f->caps & CAP_LIMITS) && f->rcpts_in_txn >= 1))
                abort();
            f->rcpts_in_txn++;
            fz_reply(r, "250 2.1.5 ok\r\n");
        } else if (!strcmp(line, "DATA")) {
            if (!f->in_txn || f->label == ENV_BODY_BINARYMIME)
                abort(); /* RFC 3030 §3: BINARYMIME only with BDAT */
            f->in_data = 1;
            f->in_txn = 0;
            fz_reply(r, "354 go\r\n");
        } else if (!strncmp(line, "BDAT ", 5)) {
            char *e;
            unsigned long long n = strtoull(line + 5, &e, 10);
            if (!f->in_txn || !(f->caps & CAP_CHUNKING) || strcmp(e, " LAST") || n > 1u << 30)
                abort();
            f->in_txn = 0;
            f->bdat_last = 1;
            f->bdat_left = n;
            if (n == 0) {
                fz_content_done(f);
                fz_reply(r, "250 2.0.0 ok\r\n");
            }
        } else if (!strcmp(line, "RSET")) {
            f->in_txn = 0;
            fz_reply(r, "250 ok\r\n");
        } else if (!strcmp(line, "QUIT")) {
            fz_reply(r, "221 bye\r\n");
        } else {
            abort(); /* nothing else is ever sent here */
        }
    }
}

/* The encoder's output must not depend on where its input is cut. */
static void fz_encoder_splits(const char *in, size_t n)
{
    for (int mode = DOTSTUFF_ENC_DATA; mode <= DOTSTUFF_ENC_BINARY; mode++) {
        struct buf a = BUF_INIT, b = BUF_INIT;
        struct dotstuff_enc e;
        dotstuff_enc_init(&e, mode);
        int ra = dotstuff_enc_feed(&e, in, n, &a);
        if (ra == 0)
            ra = dotstuff_enc_end(&e, &a);
        dotstuff_enc_init(&e, mode);
        size_t c1 = n / 3, c2 = n - n / 4;
        int rb = dotstuff_enc_feed(&e, in, c1, &b);
        if (rb == 0)
            rb = dotstuff_enc_feed(&e, in + c1, c2 - c1, &b);
        if (rb == 0)
            rb = dotstuff_enc_feed(&e, in + c2, n - c2, &b);
        if (rb == 0)
            rb = dotstuff_enc_end(&e, &b);
        if (ra != rb || (ra == 0 && (a.len != b.len || (a.len && memcmp(a.data, b.data, a.len)))))
            abort();
        if (mode == DOTSTUFF_ENC_BINARY && (ra != 0 || a.len != n))
            abort();
        buf_free(&a);
        buf_free(&b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 65536)
        return 0;
    enum envelope_body body = data[0] & 2 ? ENV_BODY_BINARYMIME
                              : data[0] & 1 ? ENV_BODY_8BITMIME
                                            : ENV_BODY_7BIT;
    unsigned caps = data[1];
    const char *msg = (const char *)data + 2;
    size_t len = size - 2;
    fz_encoder_splits(msg, len);

    static int fd = -1;
    if (fd < 0 && (fd = memfd_create("fuzz", MFD_CLOEXEC)) < 0)
        abort();
    if (ftruncate(fd, 0) < 0 || pwrite(fd, msg, len, 0) != (ssize_t)len)
        abort();
    const char *rcpts[NRCPTS] = {"a@x.test", "b@x.test", "c@x.test"};
    struct smtp_client_msg m = {
        .from = "s@y.test", .rcpts = rcpts, .nrcpts = NRCPTS, .fd = fd, .off = 0,
        .len = len, .body = body,
    };
    struct fz f = {0};
    f.caps = caps;
    struct smtp_client *c = smtp_client_new("me.test", "p[127.0.0.1]", SMTP_TLS_MAY, &fz_io, &f);
    smtp_client_send(c, &m, fz_done, &f);
    struct buf r = BUF_INIT;
    buf_puts(&r, "220 hi\r\n");
    for (int i = 0; i < 1000 && !f.done; i++) {
        smtp_client_input(c, &r);
        buf_reset(&r);
        smtp_client_drained(c);
        if (!fz_server(&f, &r) && r.len == 0)
            break;
    }
    if (!f.done)
        abort(); /* the transaction must end without the connection being lost */

    /* What the content is expected to arrive as. */
    struct dotstuff_enc e;
    dotstuff_enc_init(&e, DOTSTUFF_ENC_TEXT);
    int text = dotstuff_enc_feed(&e, msg, len, NULL) == 0 && dotstuff_enc_end(&e, NULL) == 0;
    int eight = fz_has_8bit(msg, len);
    int binary_ok = (caps & (CAP_CHUNKING | CAP_BINARYMIME)) == (CAP_CHUNKING | CAP_BINARYMIME);
    struct buf want = BUF_INIT;
    int refused = 0;
    if (body == ENV_BODY_BINARYMIME && binary_ok) {
        buf_append(&want, msg, len);
    } else if (body != ENV_BODY_BINARYMIME && text && (!eight || (caps & CAP_8BITMIME))) {
        buf_append(&want, msg, len);
    } else {
        unsigned flags = (caps & CAP_8BITMIME ? DOWNGRADE_KEEP_8BIT : 0) |
                         (body == ENV_BODY_BINARYMIME ? DOWNGRADE_BINARY : 0);
        refused = downgrade_convert(msg, len, flags, &want, NULL) < 0;
    }
    if (!(caps & CAP_CHUNKING) && want.len &&
        !(want.len >= 2 && want.data[want.len - 2] == '\r' && want.data[want.len - 1] == '\n'))
        buf_puts(&want, "\r\n"); /* DATA content ends with a line end */

    /* LIMITS RCPTMAX=1 MAILMAX=2: a and b in a transaction each, c untried. */
    size_t expect_ok = caps & CAP_LIMITS ? 2 : NRCPTS;
    int expect_txns = caps & CAP_LIMITS ? 2 : 1;
    for (size_t i = 0; i < NRCPTS; i++) {
        const struct result *x = &f.res[i];
        if (!strcmp(x->enh, "4.3.0"))
            abort(); /* the plan and the encoder disagreed */
        if (refused) {
            if (x->kind != RESULT_PERMFAIL || strcmp(x->enh, "5.6.3"))
                abort();
        } else if (i < expect_ok) {
            if (x->kind != RESULT_OK)
                abort();
        } else if (x->kind != RESULT_TEMPFAIL || strcmp(x->enh, "4.5.3") ||
                   smtp_client_tried(c) != expect_ok) {
            abort(); /* MAILMAX left it untried */
        }
    }
    if (refused) {
        if (f.mails != 0 || f.delivered != 0)
            abort(); /* nothing after a refusal */
    } else {
        if (f.delivered != expect_txns ||
            f.first.len != want.len || (want.len && memcmp(f.first.data, want.data, want.len)))
            abort();
    }
    smtp_client_free(c);
    buf_free(&r);
    buf_free(&want);
    buf_free(&f.wire);
    buf_free(&f.got);
    buf_free(&f.first);
    return 0;
}
