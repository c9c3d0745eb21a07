/* libFuzzer target: smtp/smtp_client, the outbound state machine, fed
 * server replies a hostile or broken next hop (or the server `tern send`
 * tests) may send. The first octet picks the set-up (TLS policy, AUTH,
 * 8-bit and SMTPUTF8 content, DSN parameters); the rest is the server's
 * bytes, cut into reads at each 0xff octet; after each read a pending
 * STARTTLS handshake succeeds or fails by the parity of the read, and the
 * write queue is reported drained. Checked: the transaction ends exactly
 * once (at the latest when the connection is lost), with one result per
 * recipient whose kind matches its code (only a 2xx is a success); the
 * password never appears in the client's side of the trace, in clear or
 * in base64. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/buf.h"
#include "mail/envelope.h"
#include "smtp/smtp_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NRCPTS 3

struct fz {
    int tls_asked;
    int done;
    struct buf trace;
};

static void fz_write(void *io, const void *p, size_t n)
{
}

static size_t fz_pending(void *io)
{
    return 0;
}

static void fz_starttls(void *io)
{
    ((struct fz *)io)->tls_asked = 1;
}

static void fz_timeout(void *io, uint64_t ms)
{
}

static const struct smtp_client_io fz_io = {fz_write, fz_pending, fz_starttls, fz_timeout};

static void fz_done(void *arg, const struct result *res, size_t n, int closed)
{
    struct fz *f = arg;
    f->done++;
    if (n != NRCPTS)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (res[i].code < 200 || res[i].code > 599)
            abort();
        int ok = res[i].kind == RESULT_OK;
        if (ok != (res[i].code < 300)) /* only a 2xx is a success */
            abort();
        size_t tl = strnlen(res[i].text, sizeof res[i].text);
        if (tl == sizeof res[i].text || memchr(res[i].text, '\n', tl) || memchr(res[i].text, '\r', tl))
            abort(); /* unterminated, or a line break that would split a log line */
    }
}

static void fz_trace(void *arg, char dir, const char *line, size_t len)
{
    struct fz *f = arg;
    if (dir != 'C')
        return; /* the server may say anything, also the password */
    buf_putc(&f->trace, dir);
    buf_append(&f->trace, line, len);
    buf_putc(&f->trace, '\n');
}

static int fz_contains(const struct buf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len < n)
        return 0;
    for (size_t i = 0; i + n <= b->len; i++)
        if (!memcmp(b->data + i, s, n))
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static int fd = -1;
    static const char content[] = "Subject: caf\xc3\xa9\r\n\r\n.dot\r\nna\xc3\xafve\r\nend";
    if (fd < 0) {
        fd = memfd_create("fuzz", MFD_CLOEXEC);
        if (fd < 0 || write(fd, content, sizeof content - 1) != (ssize_t)(sizeof content - 1))
            abort();
    }
    unsigned flags = data[0];
    data++;
    size--;
    const char *rcpts[NRCPTS] = {"a@x.test", "b@x.test", "c@x.test"};
    const unsigned notify[NRCPTS] = {ENV_NOTIFY_SUCCESS | ENV_NOTIFY_DELAY, ENV_NOTIFY_NEVER, 0};
    const char *orcpt[NRCPTS] = {"rfc822;a@x.test", "b@x.test", NULL};
    struct smtp_client_msg m = {
        .from = flags & 0x10 ? "" : "s@y.test",
        .rcpts = rcpts,
        .nrcpts = NRCPTS,
        .fd = fd,
        .off = 0,
        .len = (flags & 0x20) ? sizeof content - 1 : 12, /* 12: only 7-bit octets */
        .body = (flags & 0x20) ? ENV_BODY_8BITMIME : ENV_BODY_7BIT,
        .smtputf8 = (flags & 0x40) != 0,
        .envid = flags & 0x80 ? "id+1" : NULL,
        .ret = flags & 0x80 ? 1 : 0,
        .notify = flags & 0x80 ? notify : NULL,
        .orcpt = flags & 0x80 ? orcpt : NULL,
    };
    struct fz f = {0};
    enum smtp_client_tls pol = (flags & 3) == 3 ? SMTP_TLS_MAY : (enum smtp_client_tls)(flags & 3);
    struct smtp_client *c = smtp_client_new("me.test", "peer[127.0.0.1]", pol, &fz_io, &f);
    smtp_client_set_trace(c, fz_trace, &f);
    if (flags & 4)
        smtp_client_set_auth(c, "user", "Secret-Pw");
    smtp_client_send(c, &m, fz_done, &f);
    struct buf in = BUF_INIT;
    size_t start = 0, reads = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i < size && data[i] != 0xff)
            continue;
        buf_append(&in, data + start, i - start);
        smtp_client_input(c, &in);
        if (f.tls_asked) {
            f.tls_asked = 0;
            buf_reset(&in); /* as conn does: bytes before the handshake are dropped */
            smtp_client_tls_done(c, (reads & 1) == 0);
        }
        smtp_client_drained(c);
        reads++;
        start = i + 1;
    }
    smtp_client_lost(c, "end of input");
    if (f.done != 1)
        abort();
    if (smtp_client_idle(c))
        smtp_client_quit(c);
    const char *text;
    int code = smtp_client_last_reply(c, &text);
    if (code != 0 && (code < 200 || code > 599))
        abort();
    /* base64("\0user\0Secret-Pw") */
    if (fz_contains(&f.trace, "Secret-Pw") || fz_contains(&f.trace, "AHVzZXIAU2VjcmV0LVB3"))
        abort();
    smtp_client_free(c);
    buf_free(&in);
    buf_free(&f.trace);
    return 0;
}
