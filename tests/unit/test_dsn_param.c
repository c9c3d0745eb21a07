/* Unit tests for mail/xtext and mail/dsn_param: the xtext encodings of
 * RFC 3461 and RFC 6533, the DSN ESMTP parameters of MAIL and RCPT, and
 * the NOTIFY rules that decide whether a notification is sent. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "check.h"
#include "mail/dsn.h"
#include "mail/dsn_param.h"
#include "mail/envelope.h"
#include "mail/xtext.h"

/* ---- xtext ---- */

static void expect_xtext_enc(const char *in, size_t n, const char *want)
{
    struct buf b = BUF_INIT;
    xtext_encode(&b, in, n);
    CHECK_EQ_MEM(b.data ? b.data : "", b.len, want, strlen(want));
    buf_free(&b);
}

static void expect_xtext_fail(const char *in, size_t max, int rc)
{
    struct buf b = BUF_INIT;
    buf_puts(&b, "keep");
    CHECK_EQ_INT(xtext_decode(in, strlen(in), max, &b), rc);
    CHECK_EQ_STR(b.data, "keep"); /* untouched on failure */
    buf_free(&b);
}

static void expect_xtext_bad(const char *in, size_t max)
{
    expect_xtext_fail(in, max, -EINVAL);
}

static void expect_xtext_dec(const char *in, const char *want, size_t wantlen)
{
    struct buf b = BUF_INIT;
    CHECK_EQ_INT(xtext_decode(in, strlen(in), 1000, &b), 0);
    CHECK_EQ_MEM(b.data ? b.data : "", b.len, want, wantlen);
    buf_free(&b);
}

static void test_xtext(void)
{
    expect_xtext_enc("bob@example.com", 15, "bob@example.com");
    expect_xtext_enc("a+b=c d", 7, "a+2Bb+3Dc+20d");
    expect_xtext_enc("\x00\x01\x7f\x80\xff", 5, "+00+01+7F+80+FF");
    expect_xtext_enc("", 0, "");
    expect_xtext_dec("a+2Bb+3Dc+20d", "a+b=c d", 7);
    expect_xtext_dec("+41+42C", "ABC", 3); /* an xchar may be hex-encoded too */
    expect_xtext_dec("+00", "\0", 1);       /* decodes; the caller judges */
    expect_xtext_dec("", "", 0);
    expect_xtext_dec("!~", "!~", 2);

    /* Every octet value survives a round trip. */
    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    struct buf e = BUF_INIT, d = BUF_INIT;
    xtext_encode(&e, all, sizeof all);
    for (size_t i = 0; i < e.len; i++)
        CHECK(e.data[i] > 32 && e.data[i] < 127 && e.data[i] != '=');
    CHECK_EQ_INT(xtext_decode(e.data, e.len, 256, &d), 0);
    CHECK_EQ_MEM(d.data, d.len, all, sizeof all);
    buf_reset(&d);
    CHECK_EQ_INT(xtext_decode(e.data, e.len, 255, &d), -EMSGSIZE); /* one over the bound */
    CHECK_EQ_INT(d.len, 0);
    buf_free(&e);
    buf_free(&d);

    expect_xtext_bad("+2b", 100); /* lowercase hex */
    expect_xtext_bad("+2", 100);
    expect_xtext_bad("a+", 100);
    expect_xtext_bad("+G0", 100);
    expect_xtext_bad("+ 20", 100);
    expect_xtext_bad("a b", 100);
    expect_xtext_bad("a=b", 100);
    expect_xtext_bad("a\x7f", 100);
    expect_xtext_bad("a\tb", 100);
    expect_xtext_bad("j\xc3\xbcrgen", 100); /* raw UTF-8 is not xtext */
    expect_xtext_fail("abc", 2, -EMSGSIZE);
    expect_xtext_fail("+41+41+41", 2, -EMSGSIZE);
    struct buf b = BUF_INIT;
    CHECK_EQ_INT(xtext_decode("abc", 3, 3, &b), 0);
    buf_free(&b);
}

static void expect_u8_enc(const char *in, int unitext, const char *want)
{
    struct buf b = BUF_INIT;
    xtext_utf8_encode(&b, in, strlen(in), unitext);
    CHECK_EQ_STR(b.data ? b.data : "", want);
    buf_free(&b);
}

static void expect_u8_dec(const char *in, int unitext, const char *want)
{
    struct buf b = BUF_INIT;
    CHECK_EQ_INT(xtext_utf8_decode(in, strlen(in), unitext, 1000, &b), 0);
    CHECK_EQ_STR(b.data ? b.data : "", want);
    buf_free(&b);
}

static void expect_u8_bad(const char *in, int unitext)
{
    struct buf b = BUF_INIT;
    buf_puts(&b, "keep");
    CHECK_EQ_INT(xtext_utf8_decode(in, strlen(in), unitext, 1000, &b), -EINVAL);
    CHECK_EQ_STR(b.data, "keep");
    buf_free(&b);
}

static void test_xtext_utf8(void)
{
    expect_u8_enc("j\xc3\xbcrgen@example.de", 0, "j\\x{FC}rgen@example.de");
    expect_u8_enc("j\xc3\xbcrgen@example.de", 1, "j\xc3\xbcrgen@example.de");
    expect_u8_enc("\xe7\x94\xa8\xe6\x88\xb7@x", 0, "\\x{7528}\\x{6237}@x");
    expect_u8_enc("\xf0\x9f\x98\x80", 0, "\\x{1F600}");
    expect_u8_enc("\xf4\x8f\xbf\xbf", 0, "\\x{10FFFF}");
    expect_u8_enc("a\\b+c=d e\x01\x7f", 1, "a\\x{5C}b\\x{2B}c\\x{3D}d\\x{20}e\\x{01}\\x{7F}");
    /* What the grammar cannot hold becomes U+FFFD: a lone 8-bit octet,
     * LF (RFC 6533 has no form for 0A-0F or 1A-1F), NUL. */
    expect_u8_enc("a\xff" "b", 0, "a\\x{FFFD}b");
    expect_u8_enc("a\nb", 1, "a\\x{FFFD}b");
    expect_u8_enc(" ", 0, "\\x{20}");

    expect_u8_dec("j\\x{FC}rgen@example.de", 0, "j\xc3\xbcrgen@example.de");
    /* ABNF hex digits are caseless. */
    expect_u8_dec("j\\x{fc}rgen@example.de", 0, "j\xc3\xbcrgen@example.de");
    expect_u8_dec("j\xc3\xbcrgen@example.de", 1, "j\xc3\xbcrgen@example.de");
    expect_u8_dec("\\x{7528}\\x{6237}@x", 0, "\xe7\x94\xa8\xe6\x88\xb7@x");
    expect_u8_dec("\\x{1F600}", 0, "\xf0\x9f\x98\x80");
    expect_u8_dec("\\x{10FFFF}", 0, "\xf4\x8f\xbf\xbf");
    expect_u8_dec("a\\x{5C}b\\x{2B}\\x{3D}\\x{20}\\x{01}\\x{19}\\x{7F}", 0,
                  "a\\b+= \x01\x19\x7f");
    expect_u8_dec("\\x{D7FF}\\x{E000}", 0, "\xed\x9f\xbf\xee\x80\x80");

    expect_u8_bad("j\xc3\xbcrgen", 0); /* raw UTF-8 only in unitext */
    expect_u8_bad("\xc3", 1);           /* not well-formed */
    expect_u8_bad("\xc0\xaf", 1);       /* overlong */
    expect_u8_bad("\\x{41}", 0);        /* 'A' stands as itself */
    expect_u8_bad("\\x{0A}", 0);        /* not in HEXPOINT */
    expect_u8_bad("\\x{00}", 0);
    expect_u8_bad("\\x{1F}", 0);
    expect_u8_bad("\\x{0FC}", 0);       /* leading zero */
    expect_u8_bad("\\x{00FC}", 0);
    expect_u8_bad("\\x{F}", 0);         /* one digit */
    expect_u8_bad("\\x{}", 0);
    expect_u8_bad("\\x{D800}", 0);      /* surrogate */
    expect_u8_bad("\\x{DFFF}", 0);
    expect_u8_bad("\\x{110000}", 0);
    expect_u8_bad("\\x{1000000}", 0);
    expect_u8_bad("\\x{FC", 0);
    expect_u8_bad("\\x{FG}", 0);
    expect_u8_bad("\\X{FC}", 0);
    expect_u8_bad("\\y", 0);
    expect_u8_bad("\\", 0);
    expect_u8_bad("a+b", 0);
    expect_u8_bad("a=b", 0);
    expect_u8_bad("a b", 1);

    /* Round trip through both forms. */
    const char *s = "\"a b\"+c=d\\e\xc3\xa9\xe7\x94\xa8\xf0\x9f\x98\x80@x";
    for (int u = 0; u < 2; u++) {
        struct buf e = BUF_INIT, d = BUF_INIT;
        xtext_utf8_encode(&e, s, strlen(s), u);
        CHECK_EQ_INT(xtext_utf8_decode(e.data, e.len, u, 1000, &d), 0);
        CHECK_EQ_STR(d.data, s);
        buf_reset(&d);
        CHECK_EQ_INT(xtext_utf8_decode(e.data, e.len, u, strlen(s) - 1, &d), -EMSGSIZE);
        buf_free(&e);
        buf_free(&d);
    }
}

/* ---- parameters ---- */

static int mail_p(struct dsn_param_mail *m, const char *key, const char *value,
                  struct dsn_param_error *err)
{
    return dsn_param_mail(m, key, value, value ? strlen(value) : 0, err);
}

static int rcpt_p(struct dsn_param_rcpt *r, const char *key, const char *value, int utf8,
                  struct dsn_param_error *err)
{
    return dsn_param_rcpt(r, key, value, value ? strlen(value) : 0, utf8, err);
}

static void expect_mail_err(const char *key, const char *value, int code)
{
    struct dsn_param_mail m;
    struct dsn_param_error err = {0, NULL, NULL};
    dsn_param_mail_init(&m);
    CHECK_EQ_INT(mail_p(&m, key, value, &err), -EINVAL);
    CHECK_EQ_INT(err.code, code);
    CHECK_EQ_STR(err.enh, "5.5.4");
    CHECK(err.text != NULL && err.text[0]);
}

static void expect_rcpt_err(const char *key, const char *value, int utf8)
{
    struct dsn_param_rcpt r;
    struct dsn_param_error err = {0, NULL, NULL};
    dsn_param_rcpt_init(&r);
    CHECK_EQ_INT(rcpt_p(&r, key, value, utf8, &err), -EINVAL);
    CHECK_EQ_INT(err.code, 501);
    CHECK_EQ_STR(err.enh, "5.5.4");
}

static void test_mail_params(void)
{
    struct dsn_param_mail m;
    struct dsn_param_error err;
    struct envelope e;
    envelope_init(&e);

    dsn_param_mail_init(&m);
    CHECK_EQ_INT(m.ret, DSN_RET_NONE);
    CHECK_EQ_INT(mail_p(&m, "RET", "FULL", &err), 1);
    CHECK_EQ_INT(m.ret, DSN_RET_FULL);
    CHECK_EQ_INT(mail_p(&m, "ENVID", "QQ314159", &err), 1);
    CHECK_EQ_STR(m.envid, "QQ314159");
    CHECK_EQ_INT(mail_p(&m, "SIZE", "100", &err), 0); /* not ours */
    CHECK_EQ_INT(mail_p(&m, "BODY", "8BITMIME", &err), 0);
    dsn_param_mail_apply(&m, &e);
    CHECK_EQ_INT(e.ret_full, 1);
    CHECK_EQ_INT(e.ret_hdrs, 0);
    CHECK_EQ_STR(e.envid, "QQ314159");
    /* Repeats: 555. */
    CHECK_EQ_INT(mail_p(&m, "RET", "FULL", &err), -EINVAL);
    CHECK_EQ_INT(err.code, 555);
    CHECK_EQ_STR(err.enh, "5.5.4");
    CHECK_EQ_INT(mail_p(&m, "envid", "x", &err), -EINVAL);
    CHECK_EQ_INT(err.code, 555);

    dsn_param_mail_init(&m);
    CHECK_EQ_INT(mail_p(&m, "ret", "hdrs", &err), 1); /* any case */
    CHECK_EQ_INT(m.ret, DSN_RET_HDRS);
    CHECK_EQ_INT(mail_p(&m, "Envid", "a+2Bb+20c+3D", &err), 1);
    CHECK_EQ_STR(m.envid, "a+b c=");
    dsn_param_mail_apply(&m, &e);
    CHECK_EQ_INT(e.ret_full, 0);
    CHECK_EQ_INT(e.ret_hdrs, 1);
    CHECK_EQ_STR(e.envid, "a+b c=");

    /* Nothing given: no RET flag, no ENVID. */
    dsn_param_mail_init(&m);
    dsn_param_mail_apply(&m, &e);
    CHECK_EQ_INT(e.ret_full, 0);
    CHECK_EQ_INT(e.ret_hdrs, 0);
    CHECK(e.envid == NULL);
    envelope_clear(&e);

    expect_mail_err("RET", "BOTH", 501);
    expect_mail_err("RET", "FULLX", 501);
    expect_mail_err("RET", "FUL", 501);
    expect_mail_err("RET", NULL, 501);
    expect_mail_err("ENVID", NULL, 501);
    expect_mail_err("ENVID", "", 501);
    expect_mail_err("ENVID", "a+zz", 501);
    expect_mail_err("ENVID", "a+0Db", 501); /* a CR would reach the report */
    expect_mail_err("ENVID", "a+0A", 501);
    expect_mail_err("ENVID", "+00", 501);
    expect_mail_err("ENVID", "+C3+A9", 501); /* printable US-ASCII only */
    /* 100 decoded characters pass, 101 do not, however encoded. */
    char v[400];
    memset(v, 'x', 100);
    v[100] = '\0';
    dsn_param_mail_init(&m);
    CHECK_EQ_INT(mail_p(&m, "ENVID", v, &err), 1);
    CHECK_EQ_INT(strlen(m.envid), 100);
    v[100] = 'x';
    v[101] = '\0';
    expect_mail_err("ENVID", v, 501);
    for (int i = 0; i < 100; i++)
        memcpy(v + 3 * i, "+41", 3);
    v[300] = '\0';
    dsn_param_mail_init(&m);
    CHECK_EQ_INT(mail_p(&m, "ENVID", v, &err), 1);
    memcpy(v + 300, "+41", 4);
    expect_mail_err("ENVID", v, 501);
}

static void test_rcpt_params(void)
{
    struct dsn_param_rcpt r;
    struct dsn_param_error err;
    static const struct {
        const char *v;
        unsigned flags;
    } ok[] = {
        {"NEVER", ENV_NOTIFY_NEVER},
        {"never", ENV_NOTIFY_NEVER},
        {"SUCCESS", ENV_NOTIFY_SUCCESS},
        {"FAILURE", ENV_NOTIFY_FAILURE},
        {"DELAY", ENV_NOTIFY_DELAY},
        {"SUCCESS,FAILURE", ENV_NOTIFY_SUCCESS | ENV_NOTIFY_FAILURE},
        {"failure,Delay", ENV_NOTIFY_FAILURE | ENV_NOTIFY_DELAY},
        {"DELAY,SUCCESS,FAILURE", ENV_NOTIFY_SUCCESS | ENV_NOTIFY_FAILURE | ENV_NOTIFY_DELAY},
        {"SUCCESS,SUCCESS", ENV_NOTIFY_SUCCESS},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        dsn_param_rcpt_init(&r);
        CHECK_EQ_INT(rcpt_p(&r, "NOTIFY", ok[i].v, 0, &err), 1);
        CHECK_EQ_INT(r.notify, ok[i].flags);
    }
    static const char *const bad[] = {"NEVER,SUCCESS", "FAILURE,NEVER", "", "SUCCESS,",
                                      ",SUCCESS",      "SUCCESS,,DELAY", "BOGUS", "SUCCES",
                                      "SUCCESS DELAY", "SUCCESS;DELAY", "NEVERX"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_rcpt_err("NOTIFY", bad[i], 0);
    expect_rcpt_err("NOTIFY", NULL, 0);

    dsn_param_rcpt_init(&r);
    CHECK_EQ_INT(rcpt_p(&r, "NOTIFY", "SUCCESS", 0, &err), 1);
    CHECK_EQ_INT(rcpt_p(&r, "NOTIFY", "SUCCESS", 0, &err), -EINVAL);
    CHECK_EQ_INT(err.code, 555);
    CHECK_EQ_INT(rcpt_p(&r, "ORCPT", "rfc822;bob+2Bx@example.com", 0, &err), 1);
    CHECK_EQ_STR(r.orcpt, "rfc822;bob+2Bx@example.com"); /* kept as given */
    CHECK_EQ_INT(rcpt_p(&r, "ORCPT", "rfc822;a@b", 0, &err), -EINVAL);
    CHECK_EQ_INT(err.code, 555);
    CHECK_EQ_INT(rcpt_p(&r, "RET", "FULL", 0, &err), 0); /* not a RCPT parameter */
    CHECK_EQ_INT(rcpt_p(&r, "XFOO", NULL, 0, &err), 0);

    struct envelope e;
    envelope_init(&e);
    dsn_param_rcpt_add(&r, &e, "bob@example.com");
    struct dsn_param_rcpt none;
    dsn_param_rcpt_init(&none);
    dsn_param_rcpt_add(&none, &e, "carol@example.com");
    CHECK_EQ_INT(e.nrcpts, 2);
    CHECK_EQ_INT(e.rcpts[0].notify, ENV_NOTIFY_SUCCESS);
    CHECK_EQ_STR(e.rcpts[0].orcpt, "rfc822;bob+2Bx@example.com");
    CHECK_EQ_INT(e.rcpts[1].notify, 0);
    CHECK(e.rcpts[1].orcpt == NULL);
    envelope_clear(&e);

    /* ORCPT forms. */
    static const struct {
        const char *v;
        int utf8;
        const char *type, *addr;
    } orcpts[] = {
        {"rfc822;bob@example.com", 0, "rfc822", "bob@example.com"},
        {"RFC822;Bob@Example.COM", 0, "rfc822", "Bob@Example.COM"},
        {"rfc822;+22a+20b+22@example.com", 0, "rfc822", "\"a b\"@example.com"},
        {"rfc822;+41", 0, "rfc822", "A"}, /* rfc822 content is not checked further */
        {"x400;c+3Dus+3Ba+3D+3Bp+3Dexample", 0, "x400", "c=us;a=;p=example"},
        {"utf-8;j\\x{FC}rgen@example.de", 0, "utf-8", "j\xc3\xbcrgen@example.de"},
        {"utf-8;j\xc3\xbcrgen@example.de", 1, "utf-8", "j\xc3\xbcrgen@example.de"},
        {"UTF-8;bob@example.com", 0, "utf-8", "bob@example.com"},
    };
    for (size_t i = 0; i < sizeof orcpts / sizeof orcpts[0]; i++) {
        char type[DSN_ADDRTYPE_MAX + 1];
        struct buf a = BUF_INIT;
        const char *v = orcpts[i].v;
        CHECK_EQ_INT(dsn_param_orcpt_parse(v, strlen(v), orcpts[i].utf8, type, &a), 0);
        CHECK_EQ_STR(type, orcpts[i].type);
        CHECK_EQ_STR(a.data, orcpts[i].addr);
        buf_free(&a);
        dsn_param_rcpt_init(&r);
        CHECK_EQ_INT(rcpt_p(&r, "ORCPT", v, orcpts[i].utf8, &err), 1);
        CHECK_EQ_STR(r.orcpt, v);
    }
    static const struct {
        const char *v;
        int utf8;
    } bad_orcpts[] = {
        {"rfc822", 0},         {"rfc822;", 0},        {";bob@example.com", 0},
        {"rfc 822;a@b", 0},    {"rfc822;a b@c", 0},   {"rfc822;a+0Ab@c", 0},
        {"rfc822;a+0db@c", 0}, {"rfc822;a+C3+A9@c", 0}, {"rfc822;+7F", 0},
        {"rfc822;a+2", 0},     {"rfc_822;a@b", 0},
        {"utf-8;j\xc3\xbcrgen@example.de", 0}, /* raw UTF-8 needs SMTPUTF8 */
        {"utf-8;not-an-address", 1},
        {"utf-8;a\\x{41}@b", 1},
        {"utf-8;a+2Bb@example.com", 1}, /* '+' is not a QCHAR */
        {"utf-8;", 1},
        {"abcdefghijklmnopqrstuvwxyzabcdefg;a@b", 0}, /* 33-octet addr-type */
    };
    for (size_t i = 0; i < sizeof bad_orcpts / sizeof bad_orcpts[0]; i++)
        expect_rcpt_err("ORCPT", bad_orcpts[i].v, bad_orcpts[i].utf8);
    expect_rcpt_err("ORCPT", NULL, 0);
    /* The value is bounded as written: 500 octets pass, 501 do not. */
    char v[600];
    strcpy(v, "rfc822;");
    memset(v + 7, 'a', 493 - 2);
    strcpy(v + 7 + 491, "@b");
    CHECK_EQ_INT(strlen(v), 500);
    dsn_param_rcpt_init(&r);
    CHECK_EQ_INT(rcpt_p(&r, "ORCPT", v, 0, &err), 1);
    CHECK_EQ_INT(strlen(r.orcpt), 500);
    memmove(v + 8, v + 7, strlen(v + 7) + 1);
    CHECK_EQ_INT(strlen(v), 501);
    expect_rcpt_err("ORCPT", v, 0);
}

static void expect_orcpt_out(const char *stored, int peer_utf8, const char *want)
{
    struct buf b = BUF_INIT;
    CHECK_EQ_INT(dsn_param_orcpt_out(&b, stored, peer_utf8), 0);
    CHECK_EQ_STR(b.data ? b.data : "", want);
    buf_free(&b);
}

static void test_orcpt_stored(void)
{
    /* A client's ORCPT goes on as given... */
    expect_orcpt_out("rfc822;bob+2Bx@example.com", 0, "rfc822;bob+2Bx@example.com");
    expect_orcpt_out("RFC822;Bob@example.com", 0, "RFC822;Bob@example.com");
    expect_orcpt_out("x400;c+3Dus", 0, "x400;c+3Dus");
    expect_orcpt_out("utf-8;j\\x{FC}rgen@example.de", 0, "utf-8;j\\x{FC}rgen@example.de");
    expect_orcpt_out("utf-8;j\xc3\xbcrgen@example.de", 1, "utf-8;j\xc3\xbcrgen@example.de");
    /* ...but raw UTF-8 is re-encoded for a peer without SMTPUTF8. */
    expect_orcpt_out("utf-8;j\xc3\xbcrgen@example.de", 0, "utf-8;j\\x{FC}rgen@example.de");
    /* A bare mailbox from alias expansion gets its type and encoding. */
    expect_orcpt_out("alias+tag@example.com", 0, "rfc822;alias+2Btag@example.com");
    expect_orcpt_out("\"a b\"@example.com", 0, "rfc822;\"a+20b\"@example.com");
    expect_orcpt_out("postmaster", 0, "rfc822;postmaster");
    expect_orcpt_out("j\xc3\xbcrgen@example.de", 0, "utf-8;j\\x{FC}rgen@example.de");
    expect_orcpt_out("j\xc3\xbcrgen@example.de", 1, "utf-8;j\xc3\xbcrgen@example.de");
    struct buf b = BUF_INIT;
    CHECK_EQ_INT(dsn_param_orcpt_out(&b, "", 0), -EINVAL);
    CHECK_EQ_INT(dsn_param_orcpt_out(&b, "not an address", 0), -EINVAL);
    CHECK_EQ_INT(dsn_param_orcpt_out(&b, "rfc822;", 0), -EINVAL);
    CHECK_EQ_INT(b.len, 0);
    buf_free(&b);

    char type[DSN_ADDRTYPE_MAX + 1];
    struct buf a = BUF_INIT;
    CHECK_EQ_INT(dsn_param_orcpt_read("rfc822;x+2By@z", type, &a), 1);
    CHECK_EQ_STR(type, "rfc822");
    CHECK_EQ_STR(a.data, "x+y@z");
    buf_reset(&a);
    CHECK_EQ_INT(dsn_param_orcpt_read("x@z", type, &a), 0);
    CHECK_EQ_STR(type, "rfc822");
    CHECK_EQ_STR(a.data, "x@z");
    buf_free(&a);
}

static void test_should_send(void)
{
    struct envelope e;
    envelope_init(&e);
    envelope_set(&e.from, "alice@example.org");
    static const struct {
        unsigned notify;
        int failed, delayed, delivered, relayed, expanded;
    } t[] = {
        {0, 1, 1, 0, 0, 0}, /* NOTIFY absent: FAILURE,DELAY */
        {ENV_NOTIFY_NEVER, 0, 0, 0, 0, 0},
        {ENV_NOTIFY_SUCCESS, 0, 0, 1, 1, 1},
        {ENV_NOTIFY_FAILURE, 1, 0, 0, 0, 0},
        {ENV_NOTIFY_DELAY, 0, 1, 0, 0, 0},
        {ENV_NOTIFY_SUCCESS | ENV_NOTIFY_FAILURE | ENV_NOTIFY_DELAY, 1, 1, 1, 1, 1},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct envelope_rcpt r = {"bob@example.net", NULL, t[i].notify};
        CHECK_EQ_INT(dsn_should_send(&e, &r, DSN_ACTION_FAILED), t[i].failed);
        CHECK_EQ_INT(dsn_should_send(&e, &r, DSN_ACTION_DELAYED), t[i].delayed);
        CHECK_EQ_INT(dsn_should_send(&e, &r, DSN_ACTION_DELIVERED), t[i].delivered);
        CHECK_EQ_INT(dsn_should_send(&e, &r, DSN_ACTION_RELAYED), t[i].relayed);
        CHECK_EQ_INT(dsn_should_send(&e, &r, DSN_ACTION_EXPANDED), t[i].expanded);
    }
    /* Never to the null sender, whatever NOTIFY says. */
    struct envelope_rcpt all = {"bob@example.net", NULL,
                                ENV_NOTIFY_SUCCESS | ENV_NOTIFY_FAILURE | ENV_NOTIFY_DELAY};
    envelope_set(&e.from, "");
    CHECK_EQ_INT(dsn_should_send(&e, &all, DSN_ACTION_FAILED), 0);
    CHECK_EQ_INT(dsn_should_send(&e, &all, DSN_ACTION_DELIVERED), 0);
    envelope_set(&e.from, NULL);
    CHECK_EQ_INT(dsn_should_send(&e, &all, DSN_ACTION_FAILED), 0);
    envelope_clear(&e);
    CHECK_EQ_STR(dsn_action_name(DSN_ACTION_EXPANDED), "expanded");
    CHECK_EQ_STR(dsn_action_name(DSN_ACTION_RELAYED), "relayed");
}

int main(void)
{
    test_xtext();
    test_xtext_utf8();
    test_mail_params();
    test_rcpt_params();
    test_orcpt_stored();
    test_should_send();
    return check_result("test_dsn_param");
}
