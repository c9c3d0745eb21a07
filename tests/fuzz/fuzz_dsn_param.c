/* libFuzzer target: mail/xtext and mail/dsn_param, and mail/dsn's
 * builder on hostile content. The first octet holds flags (bit 0:
 * SMTPUTF8 / unitext, bit 7: also build a report); the rest is the
 * value. Checks that encodings round-trip, that what the parameter
 * parsers accept is within its bounds, that a stored ORCPT always gives
 * a value a next hop accepts, and that a report keeps the line rules. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/strutil.h"
#include "mail/dsn.h"
#include "mail/dsn_param.h"
#include "mail/envelope.h"
#include "mail/xtext.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_utf8(const struct buf *b)
{
    for (size_t i = 0; i < b->len;) {
        unsigned char c = (unsigned char)b->data[i];
        size_t k = c < 0x80 ? 1 : strutil_utf8_len((const unsigned char *)b->data + i, b->len - i);
        if (k == 0)
            abort();
        i += k;
    }
}

/* xtext and utf-8-addr-xtext behind one shape of calls. */
struct codec {
    void (*enc)(struct buf *out, const char *in, size_t n, int u);
    int (*dec)(const char *in, size_t n, int u, size_t max, struct buf *out);
    int u;    /* unitext */
    int utf8; /* decodes to UTF-8 (else to any octets) */
};

static void plain_enc(struct buf *out, const char *in, size_t n, int u)
{
    (void)u;
    xtext_encode(out, in, n);
}

static int plain_dec(const char *in, size_t n, int u, size_t max, struct buf *out)
{
    (void)u;
    return xtext_decode(in, n, max, out);
}

static void fuzz_codec(const struct codec *c, const char *in, size_t n)
{
    struct buf d = BUF_INIT, e = BUF_INIT, d2 = BUF_INIT;
    /* Anything encodes, and what comes out decodes: to the input itself
     * for xtext, to well-formed UTF-8 for the RFC 6533 forms (whose
     * encoder replaces what they cannot hold). */
    c->enc(&e, in, n, c->u);
    if (c->dec(e.data ? e.data : "", e.len, c->u, 3 * n, &d) < 0)
        abort();
    if (c->utf8)
        check_utf8(&d);
    else if (d.len != n || (n && memcmp(d.data, in, n)))
        abort();
    for (size_t i = 0; i < e.len; i++)
        if ((unsigned char)e.data[i] >= 0x80 && !(c->utf8 && c->u))
            abort();
    buf_reset(&d);
    buf_reset(&e);
    /* What decodes re-encodes to something that decodes the same. */
    if (c->dec(in, n, c->u, 1000, &d) == 0) {
        if (d.len > 1000 || (!c->utf8 && d.len > n))
            abort();
        if (c->utf8)
            check_utf8(&d);
        c->enc(&e, d.data ? d.data : "", d.len, c->u);
        if (c->dec(e.data ? e.data : "", e.len, c->u, 1000, &d2) < 0 || d2.len != d.len ||
            (d.len && memcmp(d.data, d2.data, d.len)))
            abort();
    } else if (d.len != 0) {
        abort();
    }
    buf_free(&d);
    buf_free(&e);
    buf_free(&d2);
}

static void check_err(const struct dsn_param_error *err)
{
    if ((err->code != 501 && err->code != 555) || err->enh == NULL || err->text == NULL)
        abort();
}

static void fuzz_params(const char *in, size_t n, int utf8)
{
    struct dsn_param_mail m;
    struct dsn_param_rcpt r;
    struct dsn_param_error err;
    static const char *const mkeys[] = {"RET", "ENVID"};
    for (size_t k = 0; k < 2; k++) {
        dsn_param_mail_init(&m);
        int rc = dsn_param_mail(&m, mkeys[k], in, n, &err);
        if (rc == -EINVAL) {
            check_err(&err);
        } else if (rc == 1) {
            if (m.ret > DSN_RET_HDRS || strlen(m.envid) > DSN_ENVID_MAX)
                abort();
            for (const char *p = m.envid; *p; p++)
                if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7E)
                    abort();
            /* Given again: 555. */
            if (dsn_param_mail(&m, mkeys[k], in, n, &err) != -EINVAL || err.code != 555)
                abort();
        } else {
            abort();
        }
    }
    dsn_param_rcpt_init(&r);
    int rc = dsn_param_rcpt(&r, "NOTIFY", in, n, utf8, &err);
    if (rc == 1) {
        unsigned all = ENV_NOTIFY_NEVER | ENV_NOTIFY_SUCCESS | ENV_NOTIFY_FAILURE |
                       ENV_NOTIFY_DELAY;
        if (r.notify == 0 || (r.notify & ~all) ||
            ((r.notify & ENV_NOTIFY_NEVER) && r.notify != ENV_NOTIFY_NEVER))
            abort();
    } else if (rc == -EINVAL) {
        check_err(&err);
    } else {
        abort();
    }
    rc = dsn_param_rcpt(&r, "ORCPT", in, n, utf8, &err);
    if (rc == 1) {
        if (strlen(r.orcpt) != n || memcmp(r.orcpt, in, n) || n > DSN_ORCPT_MAX)
            abort();
        /* What was accepted can be passed on to any peer. */
        for (int peer = 0; peer < 2; peer++) {
            struct buf o = BUF_INIT;
            char type[DSN_ADDRTYPE_MAX + 1];
            if (dsn_param_orcpt_out(&o, r.orcpt, peer) < 0 ||
                dsn_param_orcpt_parse(o.data, o.len, peer, type, NULL) < 0)
                abort();
            buf_free(&o);
        }
    } else if (rc == -EINVAL) {
        check_err(&err);
    } else {
        abort();
    }
}

/* A stored orcpt (hostile spool content, say): out gives a valid value or nothing. */
static void fuzz_orcpt_stored(const char *s, int peer)
{
    struct buf o = BUF_INIT;
    char type[DSN_ADDRTYPE_MAX + 1];
    if (dsn_param_orcpt_out(&o, s, peer) == 0) {
        if (dsn_param_orcpt_parse(o.data, o.len, peer, type, NULL) < 0)
            abort();
    } else if (o.len != 0) {
        abort();
    }
    buf_free(&o);
}

/* Every line CRLF-terminated and at most 998 octets. */
static void check_lines(const struct buf *b)
{
    size_t col = 0;
    if (b->len < 2 || memcmp(b->data + b->len - 2, "\r\n", 2))
        abort();
    for (size_t i = 0; i < b->len; i++) {
        if (b->data[i] == '\r') {
            if (i + 1 == b->len || b->data[i + 1] != '\n')
                abort();
            i++;
            col = 0;
        } else if (b->data[i] == '\n' || ++col > 998) {
            abort();
        }
    }
}

static void fuzz_report(const char *in, size_t n, const char *s, unsigned flags)
{
    struct envelope e;
    envelope_init(&e);
    envelope_set(&e.from, "alice@example.org");
    e.smtputf8 = flags & 1;
    e.ret_full = (flags >> 1) & 1;
    e.arrival = 1767225600;
    envelope_set(&e.envid, s);
    struct dsn_rcpt rc[2] = {
        {.addr = s[0] ? s : "x@y",
         .orcpt = s,
         .action = (enum dsn_action)((flags >> 2) % 5),
         .status = s,
         .diag = s,
         .diag_type = s,
         .remote_mta = s,
         .last_attempt = 1767225660,
         .retry_until = 1767225700},
        {.addr = "bob@example.net",
         .action = DSN_ACTION_FAILED,
         .status = "5.1.1",
         .diag = s + strlen(s) / 2},
    };
    struct dsn_report r = {.reporting_mta = "mx.tern.test",
                           .env = &e,
                           .rcpts = rc,
                           .nrcpts = 2,
                           .content = in,
                           .content_len = n,
                           .full_max = (flags & 0x10) ? n / 2 : 0,
                           .boundary = "b",
                           .message_id = "m@mx.tern.test",
                           .date = 1767225700};
    struct buf out = BUF_INIT;
    unsigned of = 0;
    if (dsn_build(&r, &out, &of) != 0)
        abort();
    check_lines(&out);
    if (!e.smtputf8 && (of & DSN_OUT_UTF8))
        abort();
    buf_free(&out);
    envelope_clear(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    unsigned flags = data[0];
    size_t n = size - 1;
    /* An exact-size copy: any read past n is an ASan report. */
    char *in = malloc(n ? n : 1);
    memcpy(in, data + 1, n);
    const struct codec plain = {plain_enc, plain_dec, 0, 0};
    const struct codec u8 = {xtext_utf8_encode, xtext_utf8_decode, (int)(flags & 1), 1};
    fuzz_codec(&plain, in, n);
    fuzz_codec(&u8, in, n);
    fuzz_params(in, n, flags & 1);
    /* The same octets as a C string (up to a NUL), as the spool gives them. */
    char *s = malloc(n + 1);
    memcpy(s, in, n);
    s[n] = '\0';
    fuzz_orcpt_stored(s, flags & 1);
    if (flags & 0x80)
        fuzz_report(in, n, s, flags);
    free(s);
    free(in);
    return 0;
}
