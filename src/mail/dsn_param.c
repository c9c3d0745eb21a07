/* dsn_param.c: RET, ENVID, NOTIFY and ORCPT (RFC 3461 §4, RFC 6533 §3). */
#include "mail/dsn_param.h"

#include <errno.h>
#include <string.h>

#include "base/strutil.h"
#include "mail/mailaddr.h"
#include "mail/xtext.h"

/* Bits of `seen`, one per parameter. */
#define DSN_SEEN_RET 0x01
#define DSN_SEEN_ENVID 0x02
#define DSN_SEEN_NOTIFY 0x04
#define DSN_SEEN_ORCPT 0x08

void dsn_param_mail_init(struct dsn_param_mail *m)
{
    memset(m, 0, sizeof *m);
    m->ret = DSN_RET_NONE;
}

void dsn_param_rcpt_init(struct dsn_param_rcpt *r)
{
    memset(r, 0, sizeof *r);
}

static int dsn_param_fail(struct dsn_param_error *err, int code, const char *text)
{
    err->code = code;
    err->enh = "5.5.4";
    err->text = text;
    return -EINVAL;
}

/* Case-insensitive equality of v[0..n) and the NUL-terminated word w. */
static int dsn_param_word_is(const char *v, size_t n, const char *w)
{
    return strlen(w) == n && !strutil_ncasecmp(v, w, n);
}

/* Printable US-ASCII and SP: what RFC 3461 allows an ENVID and an
 * rfc822 ORCPT to decode to; nothing that could end or fold a line of
 * the report that repeats them. */
static int dsn_param_printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7E)
            return 0;
    return 1;
}

/* Marks a parameter seen; returns -EINVAL (555) when it already was. */
static int dsn_param_once(unsigned *seen, unsigned bit, struct dsn_param_error *err,
                          const char *text)
{
    if (*seen & bit)
        return dsn_param_fail(err, 555, text);
    *seen |= bit;
    return 0;
}

int dsn_param_mail(struct dsn_param_mail *m, const char *key, const char *value, size_t vlen,
                   struct dsn_param_error *err)
{
    if (!strutil_casecmp(key, "RET")) {
        if (dsn_param_once(&m->seen, DSN_SEEN_RET, err, "RET given twice") < 0)
            return -EINVAL;
        /* RFC 3461 §4.3: RET=FULL or RET=HDRS, in any case. */
        if (value && dsn_param_word_is(value, vlen, "FULL"))
            m->ret = DSN_RET_FULL;
        else if (value && dsn_param_word_is(value, vlen, "HDRS"))
            m->ret = DSN_RET_HDRS;
        else
            return dsn_param_fail(err, 501, "RET must be FULL or HDRS");
        return 1;
    }
    if (!strutil_casecmp(key, "ENVID")) {
        if (dsn_param_once(&m->seen, DSN_SEEN_ENVID, err, "ENVID given twice") < 0)
            return -EINVAL;
        struct buf d = BUF_INIT;
        int ok = value && vlen > 0 && xtext_decode(value, vlen, DSN_ENVID_MAX, &d) == 0 &&
                 d.len > 0 && dsn_param_printable(d.data, d.len);
        if (ok) {
            memcpy(m->envid, d.data, d.len);
            m->envid[d.len] = '\0';
            m->has_envid = 1;
        }
        buf_free(&d);
        if (!ok)
            return dsn_param_fail(err, 501,
                                  "ENVID must be xtext of 1 to 100 printable characters");
        return 1;
    }
    return 0;
}

/* NOTIFY=NEVER, or NOTIFY= a comma list of SUCCESS, FAILURE and DELAY
 * (RFC 3461 §4.1). An item given twice changes nothing and is allowed
 * (the list is a set); an empty item is not. */
static int dsn_param_notify(const char *v, size_t n, unsigned *out)
{
    static const struct {
        const char *word;
        unsigned flag;
    } words[] = {{"NEVER", ENV_NOTIFY_NEVER},
                 {"SUCCESS", ENV_NOTIFY_SUCCESS},
                 {"FAILURE", ENV_NOTIFY_FAILURE},
                 {"DELAY", ENV_NOTIFY_DELAY}};
    unsigned flags = 0;
    size_t i = 0;
    if (v == NULL || n == 0)
        return -EINVAL;
    for (;;) {
        size_t j = i;
        while (j < n && v[j] != ',')
            j++;
        unsigned f = 0;
        for (size_t w = 0; w < sizeof words / sizeof words[0] && f == 0; w++)
            if (dsn_param_word_is(v + i, j - i, words[w].word))
                f = words[w].flag;
        if (f == 0)
            return -EINVAL;
        flags |= f;
        if (j == n)
            break;
        i = j + 1;
    }
    /* NEVER stands alone. */
    if ((flags & ENV_NOTIFY_NEVER) && flags != ENV_NOTIFY_NEVER)
        return -EINVAL;
    *out = flags;
    return 0;
}

int dsn_param_rcpt(struct dsn_param_rcpt *r, const char *key, const char *value, size_t vlen,
                   int smtputf8, struct dsn_param_error *err)
{
    if (!strutil_casecmp(key, "NOTIFY")) {
        if (dsn_param_once(&r->seen, DSN_SEEN_NOTIFY, err, "NOTIFY given twice") < 0)
            return -EINVAL;
        if (dsn_param_notify(value, vlen, &r->notify) < 0)
            return dsn_param_fail(err, 501,
                                  "NOTIFY must be NEVER or a list of SUCCESS,FAILURE,DELAY");
        return 1;
    }
    if (!strutil_casecmp(key, "ORCPT")) {
        char type[DSN_ADDRTYPE_MAX + 1];
        if (dsn_param_once(&r->seen, DSN_SEEN_ORCPT, err, "ORCPT given twice") < 0)
            return -EINVAL;
        if (value == NULL || vlen > DSN_ORCPT_MAX ||
            dsn_param_orcpt_parse(value, vlen, smtputf8, type, NULL) < 0)
            return dsn_param_fail(err, 501, "ORCPT must be addr-type;xtext (RFC 3461)");
        memcpy(r->orcpt, value, vlen);
        r->orcpt[vlen] = '\0';
        return 1;
    }
    return 0;
}

void dsn_param_mail_apply(const struct dsn_param_mail *m, struct envelope *e)
{
    e->ret_hdrs = m->ret == DSN_RET_HDRS;
    e->ret_full = m->ret == DSN_RET_FULL;
    envelope_set(&e->envid, m->has_envid ? m->envid : NULL);
}

void dsn_param_rcpt_add(const struct dsn_param_rcpt *r, struct envelope *e, const char *addr)
{
    envelope_add_rcpt(e, addr, r->orcpt[0] ? r->orcpt : NULL, r->notify);
}

int dsn_param_orcpt_parse(const char *in, size_t n, int utf8, char *type, struct buf *addr)
{
    size_t t = 0;
    while (t < n && in[t] != ';') {
        char c = in[t];
        if (t == DSN_ADDRTYPE_MAX ||
            !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return -EINVAL;
        type[t] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
        t++;
    }
    if (t == 0 || t == n)
        return -EINVAL;
    type[t] = '\0';
    const char *a = in + t + 1;
    size_t an = n - t - 1;
    struct buf d = BUF_INIT;
    int rc = -EINVAL;
    if (!strcmp(type, "utf-8")) {
        struct mailaddr ma;
        if (xtext_utf8_decode(a, an, utf8, DSN_ORCPT_MAX, &d) == 0 && d.len > 0 &&
            mailaddr_parse_mailbox(d.data, d.len, MAILADDR_ALLOW_UTF8, &ma) == MAILADDR_OK)
            rc = 0;
    } else if (xtext_decode(a, an, DSN_ORCPT_MAX, &d) == 0 && d.len > 0 &&
               dsn_param_printable(d.data, d.len)) {
        rc = 0;
    }
    if (rc == 0 && addr)
        buf_append(addr, d.data, d.len);
    buf_free(&d);
    return rc;
}

/* Whether s holds an octet beyond ASCII. */
static int dsn_param_has_8bit(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return 1;
    return 0;
}

int dsn_param_orcpt_read(const char *orcpt, char *type, struct buf *addr)
{
    size_t n = strlen(orcpt);
    if (dsn_param_orcpt_parse(orcpt, n, 1, type, addr) == 0)
        return 1;
    /* RCPT TO:<postmaster> has no domain (RFC 5321 §4.1.1.3). */
    struct mailaddr ma;
    if (strutil_casecmp(orcpt, "postmaster") &&
        mailaddr_parse_mailbox(orcpt, n, MAILADDR_ALLOW_UTF8, &ma) != MAILADDR_OK)
        return -EINVAL;
    strutil_lcpy(type, dsn_param_has_8bit(orcpt) ? "utf-8" : "rfc822", DSN_ADDRTYPE_MAX + 1);
    buf_append(addr, orcpt, n);
    return 0;
}

int dsn_param_orcpt_out(struct buf *out, const char *orcpt, int peer_utf8)
{
    char type[DSN_ADDRTYPE_MAX + 1];
    struct buf a = BUF_INIT;
    int form = dsn_param_orcpt_read(orcpt, type, &a);
    if (form < 0)
        return form;
    int utf8type = !strcmp(type, "utf-8");
    if (form == 1 && (!utf8type || peer_utf8 || !dsn_param_has_8bit(orcpt))) {
        buf_puts(out, orcpt); /* as the client gave it */
    } else {
        buf_puts(out, type);
        buf_putc(out, ';');
        if (utf8type)
            xtext_utf8_encode(out, a.data, a.len, peer_utf8);
        else
            xtext_encode(out, a.data, a.len);
    }
    buf_free(&a);
    return 0;
}
