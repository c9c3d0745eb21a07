/* Unit tests for mail/dotstuff_enc: content octets to wire octets. Every
 * case is also fed split at every position and octet by octet; an
 * exhaustive pass over every input of up to 7 octets from {CR, LF, '.',
 * 'a', NUL} checks DATA mode against the receiving side (mail/dotstuff):
 * what is encoded decodes to exactly the content, ends exactly at its
 * end, and whatever cannot be carried is refused. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "check.h"
#include "mail/dotstuff.h"
#include "mail/dotstuff_enc.h"

struct enc_run {
    struct buf out;
    int rc; /* 0, or -EINVAL when a feed or the end refused */
    unsigned flags;
};

/* Encodes in[0..n) cut at `cut` (n: no cut), or octet by octet (cut ==
 * SIZE_MAX - 1). */
static void enc_run(enum dotstuff_enc_mode mode, const char *in, size_t n, size_t cut,
                    struct enc_run *r)
{
    struct dotstuff_enc e;
    dotstuff_enc_init(&e, mode);
    buf_init(&r->out);
    r->rc = 0;
    if (cut == SIZE_MAX - 1) {
        for (size_t i = 0; i < n && r->rc == 0; i++)
            r->rc = dotstuff_enc_feed(&e, in + i, 1, &r->out);
    } else {
        r->rc = dotstuff_enc_feed(&e, in, cut < n ? cut : n, &r->out);
        if (r->rc == 0 && cut < n)
            r->rc = dotstuff_enc_feed(&e, in + cut, n - cut, &r->out);
    }
    if (r->rc == 0)
        r->rc = dotstuff_enc_end(&e, &r->out);
    else
        CHECK_EQ_INT(dotstuff_enc_end(&e, &r->out), -EINVAL); /* a refusal sticks */
    r->flags = e.flags;
}

/* The result must not depend on the cuts. */
static void expect_enc(enum dotstuff_enc_mode mode, const char *in, size_t n, int rc,
                       const char *want, size_t wn)
{
    size_t cuts[n + 2];
    size_t ncuts = 0;
    for (size_t i = 0; i <= n; i++)
        cuts[ncuts++] = i;
    cuts[ncuts++] = SIZE_MAX - 1;
    for (size_t k = 0; k < ncuts; k++) {
        struct enc_run r;
        enc_run(mode, in, n, cuts[k], &r);
        CHECK_EQ_INT(r.rc, rc);
        if (rc == 0)
            CHECK_EQ_MEM(r.out.data ? r.out.data : "", r.out.len, want, wn);
        buf_free(&r.out);
    }
}

#define EXPECT(mode, in, rc, want) \
    expect_enc(mode, in, sizeof in - 1, rc, want, sizeof want - 1)

static void test_data(void)
{
    EXPECT(DOTSTUFF_ENC_DATA, "", 0, ".\r\n");
    EXPECT(DOTSTUFF_ENC_DATA, "a\r\n", 0, "a\r\n.\r\n");
    EXPECT(DOTSTUFF_ENC_DATA, "a", 0, "a\r\n.\r\n");
    EXPECT(DOTSTUFF_ENC_DATA, ".", 0, "..\r\n.\r\n");
    EXPECT(DOTSTUFF_ENC_DATA, ".\r\n", 0, "..\r\n.\r\n");
    EXPECT(DOTSTUFF_ENC_DATA, "a\r\n.b\r\n..\r\n.\r\nend", 0,
           "a\r\n..b\r\n...\r\n..\r\nend\r\n.\r\n");
    EXPECT(DOTSTUFF_ENC_DATA, "a.b\r\n x.\r\n", 0, "a.b\r\n x.\r\n.\r\n");
    EXPECT(DOTSTUFF_ENC_DATA, "caf\xc3\xa9\r\n", 0, "caf\xc3\xa9\r\n.\r\n");
}

/* What no DATA may carry is refused, not rewritten: each of the 2023
 * smuggling variants, a NUL, a CR at the very end. */
static void test_refused(void)
{
#define B(s) {s, sizeof s - 1}
    static const struct {
        const char *p;
        size_t n;
    } bad[] = {
        B("hello\r.\r\nMAIL FROM:<x@y>\r\n"), B("a\n.\r\n"), B("a\n.\n"), B("a\r\n.\r"),
        B("a\r\n.\nb"), B("\n"), B("\r"), B("a\r"), B("a\rb\r\n"), B("x\0y\r\n"), B("\0"),
    };
#undef B
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        expect_enc(DOTSTUFF_ENC_DATA, bad[i].p, bad[i].n, -EINVAL, NULL, 0);
        expect_enc(DOTSTUFF_ENC_TEXT, bad[i].p, bad[i].n, -EINVAL, NULL, 0);
    }
    /* What was appended before the refusal holds no part of it and no end. */
    struct dotstuff_enc e;
    struct buf out = BUF_INIT;
    dotstuff_enc_init(&e, DOTSTUFF_ENC_DATA);
    CHECK_EQ_INT(dotstuff_enc_feed(&e, "ok\r\nhello\r.\r\n", 14, &out), -EINVAL);
    CHECK_EQ_MEM(out.data, out.len, "ok\r\nhello", 9);
    CHECK(e.flags & DOTSTUFF_ENC_F_BARE);
    CHECK_EQ_INT(dotstuff_enc_feed(&e, "more\r\n", 6, &out), -EINVAL);
    CHECK_EQ_INT(dotstuff_enc_end(&e, &out), -EINVAL);
    CHECK_EQ_MEM(out.data, out.len, "ok\r\nhello", 9);
    buf_free(&out);
    dotstuff_enc_init(&e, DOTSTUFF_ENC_TEXT);
    CHECK_EQ_INT(dotstuff_enc_feed(&e, "a\0", 2, NULL), -EINVAL);
    CHECK_EQ_INT(e.flags, DOTSTUFF_ENC_F_NUL);
}

static void test_text_and_binary(void)
{
    EXPECT(DOTSTUFF_ENC_TEXT, ".a\r\n.\r\n", 0, ".a\r\n.\r\n"); /* BDAT: no stuffing */
    EXPECT(DOTSTUFF_ENC_TEXT, "", 0, "");
    EXPECT(DOTSTUFF_ENC_TEXT, "x", 0, "x"); /* nor a line end added */
    static const char bin[] = "a\r.\r\n\0\n.\n\r\xff\r";
    EXPECT(DOTSTUFF_ENC_BINARY, bin, 0, bin);
    struct enc_run r;
    enc_run(DOTSTUFF_ENC_BINARY, bin, sizeof bin - 1, 3, &r);
    CHECK_EQ_INT(r.flags, DOTSTUFF_ENC_F_8BIT | DOTSTUFF_ENC_F_NUL | DOTSTUFF_ENC_F_BARE);
    buf_free(&r.out);
    /* A CRLF split by the caller is no bare CR. */
    enc_run(DOTSTUFF_ENC_BINARY, "a\r\nb", 4, 2, &r);
    CHECK_EQ_INT(r.flags, 0);
    buf_free(&r.out);
    enc_run(DOTSTUFF_ENC_DATA, "\xc3\xa9\r\n", 4, 1, &r);
    CHECK_EQ_INT(r.flags, DOTSTUFF_ENC_F_8BIT);
    buf_free(&r.out);
}

/* Every input over the alphabet: DATA either refuses (exactly when the
 * input holds a NUL, a bare CR or a bare LF) or gives what tern's own
 * DATA reader (DOTSTUFF_REJECT) reads back as the input, ending at the
 * last octet and nowhere before. */
static void test_exhaustive(void)
{
    static const char alpha[] = {'\r', '\n', '.', 'a', '\0'};
    char in[7];
    size_t total = 0;
    for (size_t n = 0; n <= sizeof in; n++) {
        size_t count = 1;
        for (size_t i = 0; i < n; i++)
            count *= sizeof alpha;
        for (size_t v = 0; v < count; v++) {
            size_t x = v;
            for (size_t i = 0; i < n; i++, x /= sizeof alpha)
                in[i] = alpha[x % sizeof alpha];
            int bad = 0;
            for (size_t i = 0; i < n; i++) {
                if (in[i] == '\0' || (in[i] == '\r' && (i + 1 == n || in[i + 1] != '\n')) ||
                    (in[i] == '\n' && (i == 0 || in[i - 1] != '\r')))
                    bad = 1;
            }
            struct enc_run r;
            enc_run(DOTSTUFF_ENC_DATA, in, n, n / 2, &r);
            CHECK_EQ_INT(r.rc, bad ? -EINVAL : 0);
            if (!bad) {
                struct dotstuff d;
                struct buf dec = BUF_INIT;
                size_t used = 0;
                dotstuff_init(&d, DOTSTUFF_DATA, DOTSTUFF_REJECT, 0, 0);
                /* The DATA command's CRLF came before: the decoder starts at a line. */
                int st = dotstuff_feed(&d, r.out.data, r.out.len, &dec, &used);
                CHECK_EQ_INT(st, DOTSTUFF_END);
                CHECK_EQ_INT(used, r.out.len);
                CHECK_EQ_INT(d.flags & DOTSTUFF_F_BARE, 0);
                struct buf want = BUF_INIT;
                buf_append(&want, in, n);
                if (n && !(n >= 2 && in[n - 2] == '\r' && in[n - 1] == '\n'))
                    buf_puts(&want, "\r\n");
                CHECK_EQ_MEM(dec.data ? dec.data : "", dec.len, want.data ? want.data : "",
                             want.len);
                buf_free(&want);
                buf_free(&dec);
            }
            buf_free(&r.out);
            total++;
        }
    }
    CHECK(total > 90000);
}

int main(void)
{
    test_data();
    test_refused();
    test_text_and_binary();
    test_exhaustive();
    return check_result("test_dotstuff_enc");
}
