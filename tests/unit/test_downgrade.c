/* Unit tests for mail/downgrade: 8-bit messages made 7-bit for a next
 * hop without 8BITMIME (RFC 6152 §3). Exact octets where the form
 * matters; elsewhere the output is taken apart again, its encoded parts
 * decoded and compared with the original content. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base64.h"
#include "base/buf.h"
#include "check.h"
#include "mail/downgrade.h"

/* ---- helpers ---- */

/* Decodes quoted-printable strictly as our encoder writes it: "=XX" with
 * uppercase hex, "=" CRLF a soft break, CRLF a hard one, nothing else
 * but '!'..'~', space and tab; -1 otherwise. */
static int qp_decode(const char *s, size_t n, struct buf *out)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '=') {
            if (i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n') {
                i += 2;
                continue;
            }
            const char *hex = "0123456789ABCDEF";
            if (i + 2 >= n || s[i + 1] == '\0' || s[i + 2] == '\0')
                return -1;
            const char *a = memchr(hex, s[i + 1], 16), *b = memchr(hex, s[i + 2], 16);
            if (a == NULL || b == NULL)
                return -1;
            buf_putc(out, (char)((a - hex) * 16 + (b - hex)));
            i += 2;
        } else if (c == '\r' && i + 1 < n && s[i + 1] == '\n') {
            buf_puts(out, "\r\n");
            i++;
        } else if ((c >= 33 && c <= 126) || c == ' ' || c == '\t') {
            buf_putc(out, (char)c);
        } else {
            return -1;
        }
    }
    return 0;
}

/* Decodes base64 in lines (CRLF between them). */
static int b64_decode_lines(const char *s, size_t n, struct buf *out)
{
    struct buf t = BUF_INIT;
    for (size_t i = 0; i < n; i++)
        if (s[i] != '\r' && s[i] != '\n')
            buf_putc(&t, s[i]);
    char *d = buf_reserve(out, t.len + 1);
    ssize_t k = base64_decode(t.data ? t.data : "", t.len, d, t.len + 1);
    buf_free(&t);
    if (k < 0)
        return -1;
    buf_commit(out, (size_t)k);
    return 0;
}

/* Every octet 7-bit and not NUL; every line of the body (what follows
 * the first empty line) at most `width` octets before its line end. */
static int fit_7bit(const char *s, size_t n, size_t width)
{
    size_t body = n;
    for (size_t i = 0, start = 0; i < n; i++) {
        if (s[i] != '\n')
            continue;
        if (i == start || (i == start + 1 && s[start] == '\r')) {
            body = i + 1;
            break;
        }
        start = i + 1;
    }
    size_t col = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0 || c >= 0x80)
            return 0;
        if (c == '\n') {
            col = 0;
        } else if (i >= body && ++col > width &&
                   !(col == width + 1 && c == '\r' && i + 1 < n && s[i + 1] == '\n')) {
            return 0;
        }
    }
    return 1;
}

/* Every CR followed by LF, every LF preceded by CR. */
static int crlf_only(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\r' && (i + 1 == n || s[i + 1] != '\n'))
            return 0;
        if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
            return 0;
    }
    return 1;
}

/* Whether s[0..n) holds the string t. */
static int has(const char *s, size_t n, const char *t)
{
    return memmem(s, n, t, strlen(t)) != NULL;
}

/* Converts msg with flags (DOWNGRADE_*); expects 0 and a result fit for
 * the target, and returns it (caller frees). */
static char *conv_ok_f(const char *msg, size_t n, unsigned flags, size_t *outlen)
{
    struct buf b = BUF_INIT;
    const char *why = "unset";
    int rc = downgrade_convert(msg, n, flags, &b, &why);
    CHECK_EQ_INT(rc, 0);
    CHECK(why == NULL);
    if (rc != 0)
        fprintf(stderr, "  why: %s\n", why ? why : "(null)");
    const char *o = b.data ? b.data : "";
    if (flags & DOWNGRADE_KEEP_8BIT)
        CHECK(memchr(o, '\0', b.len) == NULL);
    else
        CHECK(fit_7bit(o, b.len, 998));
    CHECK(crlf_only(o, b.len)); /* whatever the input's line ends were */
    *outlen = b.len;
    return b.data ? buf_steal(&b) : calloc(1, 1);
}

static char *conv_ok(const char *msg, size_t n, size_t *outlen)
{
    return conv_ok_f(msg, n, 0, outlen);
}

static void expect_conv(const char *msg, const char *want)
{
    size_t n;
    char *o = conv_ok(msg, strlen(msg), &n);
    CHECK_EQ_MEM(o, n, want, strlen(want));
    free(o);
}

/* Expects -EINVAL with `out` untouched and a reason given. */
static void expect_refused_n(const char *msg, size_t n, const char *why_part)
{
    struct buf b = BUF_INIT;
    buf_puts(&b, "keep");
    const char *why = NULL;
    CHECK_EQ_INT(downgrade_convert(msg, n, 0, &b, &why), -EINVAL);
    CHECK_EQ_MEM(b.data, b.len, "keep", 4);
    CHECK(b.data[b.len] == '\0');
    CHECK(why != NULL && strstr(why, why_part) != NULL);
    if (why == NULL || strstr(why, why_part) == NULL)
        fprintf(stderr, "  why: %s (wanted \"%s\")\n", why ? why : "(null)", why_part);
    buf_free(&b);
}

static void expect_refused(const char *msg, const char *why_part)
{
    expect_refused_n(msg, strlen(msg), why_part);
}

/* Converting a message that needs nothing gives it back octet for octet. */
static void expect_same_f(const char *msg, size_t n, unsigned flags)
{
    size_t on;
    char *o = conv_ok_f(msg, n, flags, &on);
    CHECK_EQ_MEM(o, on, msg, n);
    free(o);
}

static void expect_same(const char *msg, size_t n)
{
    expect_same_f(msg, n, 0);
}

/* The octets between the first "\r\n\r\n" after `from` and the next
 * `end` (or the end). */
static void body_after(const char *s, size_t n, const char *from, const char *end,
                       const char **bp, size_t *bn)
{
    const char *f = memmem(s, n, from, strlen(from));
    CHECK(f != NULL);
    if (f == NULL) {
        *bp = s;
        *bn = 0;
        return;
    }
    const char *b = memmem(f, n - (size_t)(f - s), "\r\n\r\n", 4);
    CHECK(b != NULL);
    b = b ? b + 4 : s + n;
    const char *e = end ? memmem(b, n - (size_t)(b - s), end, strlen(end)) : NULL;
    *bp = b;
    *bn = e ? (size_t)(e - b) : n - (size_t)(b - s);
}

/* QP-encodes `content` as a whole message body and checks the decoding
 * gives it back, every encoded line fits 76 and none starts with "--". */
static void expect_qp_roundtrip(const char *content, size_t cn)
{
    struct buf m = BUF_INIT;
    buf_puts(&m, "Subject: t\r\nContent-Type: text/plain; charset=x\r\n\r\n");
    buf_append(&m, content, cn);
    /* Make sure something needs converting. */
    buf_puts(&m, "\xC3\xA9");
    size_t on;
    char *o = conv_ok(m.data, m.len, &on);
    CHECK(fit_7bit(o, on, 76));
    CHECK(crlf_only(o, on));
    const char *b;
    size_t bn;
    body_after(o, on, "Subject", NULL, &b, &bn);
    for (size_t i = 0; i + 1 < bn; i++)
        if (i == 0 || b[i - 1] == '\n')
            CHECK(!(b[i] == '-' && b[i + 1] == '-'));
    struct buf d = BUF_INIT;
    CHECK_EQ_INT(qp_decode(b, bn, &d), 0);
    buf_reset(&m);
    buf_append(&m, content, cn);
    buf_puts(&m, "\xC3\xA9");
    CHECK_EQ_MEM(d.data, d.len, m.data, m.len);
    buf_free(&d);
    buf_free(&m);
    free(o);
}

/* ---- tests ---- */

static void test_needed(void)
{
    const char *m = "Subject: \xC3\xA9\r\n\r\nplain\r\n";
    CHECK_EQ_INT(downgrade_needed(m, strlen(m), 0), 0); /* 8-bit header only */
    m = "Subject: x\r\n\r\nGr\xC3\xBC\xC3\x9F"
        "e\r\n";
    CHECK_EQ_INT(downgrade_needed(m, strlen(m), 0), 1);
    CHECK_EQ_INT(downgrade_needed("S: x\r\n\r\na\0b\r\n", 13, 0), 1); /* NUL */
    m = "Subject: x\r\nX: \xFF\r\n"; /* no body at all */
    CHECK_EQ_INT(downgrade_needed(m, strlen(m), 0), 0);
    CHECK_EQ_INT(downgrade_needed("", 0, 0), 0);
    CHECK_EQ_INT(downgrade_needed(NULL, 0, 0), 0);
    m = "\r\n\xE9"; /* no header, 8-bit body */
    CHECK_EQ_INT(downgrade_needed(m, strlen(m), 0), 1);
    m = "Subject: x\n\n\xE9\n"; /* bare LF line ends */
    CHECK_EQ_INT(downgrade_needed(m, strlen(m), 0), 1);
    /* A long 7-bit line does not count: that is no 8BITMIME matter. */
    struct buf b = BUF_INIT;
    buf_puts(&b, "Subject: x\r\n\r\n");
    for (int i = 0; i < 1500; i++)
        buf_putc(&b, 'a');
    buf_puts(&b, "\r\n");
    CHECK_EQ_INT(downgrade_needed(b.data, b.len, 0), 0);
    buf_free(&b);
}

static void test_plain(void)
{
    /* No MIME at all: MIME-Version, Content-Type and C-T-E added. */
    expect_conv("From: a@example.org\r\nSubject: hi\r\n\r\n"
                "Gr\xC3\xBC\xC3\x9F"
                "e, J\xC3\xBCrgen\r\nzweite Zeile\r\n",
                "From: a@example.org\r\nSubject: hi\r\n"
                "MIME-Version: 1.0\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                "Gr=C3=BC=C3=9Fe, J=C3=BCrgen\r\nzweite Zeile\r\n");
    /* Not UTF-8 (Latin-1): RFC 1428's unknown-8bit. */
    expect_conv("Subject: hi\r\n\r\ncaf\xE9\r\n",
                "Subject: hi\r\nMIME-Version: 1.0\r\n"
                "Content-Type: text/plain; charset=unknown-8bit\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9\r\n");
    /* MIME already: the C-T-E (folded, any case) is replaced where it
     * was, Content-Type and MIME-Version stay as they are. */
    expect_conv("MIME-Version: 1.0\r\n"
                "content-transfer-encoding:\r\n 8BIT (sent as is)\r\n"
                "Content-Type: text/plain;\r\n\tcharset=iso-8859-1\r\n"
                "Subject: x\r\n\r\ncaf\xE9\r\n",
                "MIME-Version: 1.0\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n"
                "Content-Type: text/plain;\r\n\tcharset=iso-8859-1\r\n"
                "Subject: x\r\n\r\ncaf=E9\r\n");
    /* MIME-Version but no Content-Type: one is added, no second MIME-Version. */
    expect_conv("Mime-Version: 1.0\r\n\r\n\xC3\xA9\r\n",
                "Mime-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n=C3=A9\r\n");
    /* Header section only: empty line with nothing before it. */
    expect_conv("\r\n\xE9",
                "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=unknown-8bit\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n=E9");
    /* A non-text leaf goes to base64 and decodes to its exact octets. */
    const char *m = "Content-Type: application/octet-stream\r\n"
                    "Content-Transfer-Encoding: 8bit\r\n\r\n\x01\xFF\xFE"
                    "abc\r\n";
    expect_conv(m, "Content-Type: application/octet-stream\r\n"
                   "Content-Transfer-Encoding: base64\r\nMIME-Version: 1.0\r\n\r\n"
                   "Af/+YWJjDQo=\r\n");
}

static void test_qp_rules(void)
{
    /* '=' always encoded; a space or tab before a line break encoded, one
     * before other text not; the last octet of the body is before a line
     * break too (what follows ends the line). */
    expect_conv("Content-Type: text/plain\r\n\r\na=b \r\nc\t\r\nx y\xE9 \r\nend ",
                "Content-Type: text/plain\r\nMIME-Version: 1.0\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                "a=3Db=20\r\nc=09\r\nx y=E9=20\r\nend=20");
    /* '-' starting an encoded line, so "-- " signatures and boundary
     * look-alikes cannot pass for delimiters; bare CR and LF encoded;
     * NUL too. */
    expect_conv("Content-Type: text/plain\r\n\r\n-- \r\nsig \xE9\r\na\rb\nc-d-e\r\n",
                "Content-Type: text/plain\r\nMIME-Version: 1.0\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                "=2D-=20\r\nsig =E9\r\na=0Db=0Ac-d-e\r\n");
    size_t on;
    char *o = conv_ok("S: x\r\n\r\na\0b\r\n", 13, &on);
    CHECK(has(o, on, "\r\n\r\na=00b\r\n"));
    CHECK(has(o, on, "charset=us-ascii"));
    free(o);
    /* Charset of an added Content-Type: us-ascii for 7-bit text (converted
     * for a long line only). */
    struct buf m = BUF_INIT;
    buf_puts(&m, "S: x\r\n\r\n");
    for (int i = 0; i < 999; i++)
        buf_putc(&m, 'x');
    o = conv_ok(m.data, m.len, &on);
    CHECK(has(o, on, "charset=us-ascii"));
    free(o);
    buf_free(&m);
}

static void test_qp_long_lines(void)
{
    /* 200 'a' then 8-bit: soft breaks at 76 (75 + '='). */
    struct buf c = BUF_INIT;
    for (int i = 0; i < 200; i++)
        buf_putc(&c, 'a');
    buf_puts(&c, "\xE9\r\n");
    struct buf m = BUF_INIT;
    buf_puts(&m, "Subject: x\r\nContent-Type: text/plain\r\n\r\n");
    buf_append(&m, c.data, c.len);
    size_t on;
    char *o = conv_ok(m.data, m.len, &on);
    CHECK(fit_7bit(o, on, 76));
    const char *b;
    size_t bn;
    body_after(o, on, "Subject", NULL, &b, &bn);
    struct buf want = BUF_INIT;
    for (int i = 0; i < 75; i++)
        buf_putc(&want, 'a');
    buf_puts(&want, "=\r\n");
    for (int i = 0; i < 75; i++)
        buf_putc(&want, 'a');
    buf_puts(&want, "=\r\n");
    for (int i = 0; i < 50; i++)
        buf_putc(&want, 'a');
    buf_puts(&want, "=E9\r\n");
    CHECK_EQ_MEM(b, bn, want.data, want.len);
    free(o);
    buf_free(&want);

    /* Exactly 76 on a last line: no soft break needed; 77: one. An
     * encoded octet is never split over a soft break. */
    buf_reset(&c);
    for (int i = 0; i < 73; i++)
        buf_putc(&c, 'b');
    buf_puts(&c, "\xE9\r\n"); /* 73 + 3 = 76 */
    for (int i = 0; i < 74; i++)
        buf_putc(&c, 'b');
    buf_puts(&c, "\xE9\r\n"); /* 74 + 3 = 77 */
    buf_reset(&m);
    buf_puts(&m, "Subject: x\r\n\r\n");
    buf_append(&m, c.data, c.len);
    o = conv_ok(m.data, m.len, &on);
    body_after(o, on, "Subject", NULL, &b, &bn);
    buf_reset(&want);
    for (int i = 0; i < 73; i++)
        buf_putc(&want, 'b');
    buf_puts(&want, "=E9\r\n");
    for (int i = 0; i < 74; i++)
        buf_putc(&want, 'b');
    buf_puts(&want, "=\r\n=E9\r\n");
    CHECK_EQ_MEM(b, bn, want.data, want.len);
    free(o);

    /* Round trips: long lines, runs of 8-bit, spaces at every place a
     * soft break can fall, a 7-bit line over 998 octets, all octets. */
    buf_reset(&c);
    for (int i = 0; i < 3000; i++)
        buf_putc(&c, "a \xE9=-\t"[i % 6]);
    buf_puts(&c, "\r\n");
    for (int i = 0; i < 1200; i++)
        buf_putc(&c, 'z');
    buf_puts(&c, "\r\n-\r\n--\r\n.\r\n \r\n\t\r\n\r\n\r\n");
    expect_qp_roundtrip(c.data, c.len);
    char all[512];
    for (int i = 0; i < 512; i++)
        all[i] = (char)(i & 255);
    expect_qp_roundtrip(all, sizeof all);
    /* Pseudo-random mixes biased to the interesting octets. */
    uint32_t x = 2463534242u;
    for (int round = 0; round < 200; round++) {
        buf_reset(&c);
        int len = (int)(x % 400);
        for (int i = 0; i < len; i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            buf_putc(&c, "ab \t=-\r\n\xC3\xA9\x00."[x % 13]);
        }
        expect_qp_roundtrip(c.data ? c.data : "", c.len);
    }
    buf_free(&c);
    buf_free(&m);
    buf_free(&want);
}

static void test_multipart_alternative(void)
{
    const char *m =
        "From: a@example.org\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/alternative; boundary=\"=_b 1\"\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        "This is a MIME message.\r\n"
        "--=_b 1\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        "Stra\xC3\x9F"
        "e\r\n"
        "--=_b 1\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        "PHA+U3RyYcOfZTwvcD4=\r\n"
        "--=_b 1--\r\n"
        "epilogue\r\n";
    expect_conv(m, "From: a@example.org\r\n"
                   "MIME-Version: 1.0\r\n"
                   "Content-Type: multipart/alternative; boundary=\"=_b 1\"\r\n"
                   "Content-Transfer-Encoding: 7bit\r\n"
                   "\r\n"
                   "This is a MIME message.\r\n"
                   "--=_b 1\r\n"
                   "Content-Type: text/plain; charset=utf-8\r\n"
                   "Content-Transfer-Encoding: quoted-printable\r\n"
                   "\r\n"
                   "Stra=C3=9Fe\r\n"
                   "--=_b 1\r\n"
                   "Content-Type: text/html; charset=utf-8\r\n"
                   "Content-Transfer-Encoding: base64\r\n"
                   "\r\n"
                   "PHA+U3RyYcOfZTwvcD4=\r\n"
                   "--=_b 1--\r\n"
                   "epilogue\r\n");
    /* Unquoted boundary, comments, other parameters around it, padding
     * after a delimiter, no close delimiter (the last part runs to the
     * end), a part without header (starts with the empty line). */
    m = "Content-Type: (c) Multipart/Mixed (x) ; charset=\"a;b\" ;"
        " BOUNDARY = xyz (comment) ; other=1;\r\n"
        "\r\n"
        "--xyz  \r\n"
        "\r\n"
        "\xE9t\xE9\r\n"
        "--xyz\t\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        "fin \xE9\r\n";
    expect_conv(m, "Content-Type: (c) Multipart/Mixed (x) ; charset=\"a;b\" ;"
                   " BOUNDARY = xyz (comment) ; other=1;\r\n"
                   "MIME-Version: 1.0\r\n"
                   "\r\n"
                   "--xyz  \r\n"
                   "Content-Type: text/plain; charset=unknown-8bit\r\n"
                   "Content-Transfer-Encoding: quoted-printable\r\n"
                   "\r\n"
                   "=E9t=E9\r\n"
                   "--xyz\t\r\n"
                   "Content-Type: text/plain\r\n"
                   "Content-Transfer-Encoding: quoted-printable\r\n"
                   "\r\n"
                   "fin =E9\r\n");
    /* Empty parts, two delimiters in a row. */
    m = "Content-Type: multipart/mixed; boundary=q\r\n\r\n"
        "--q\r\n--q\r\n\r\n\xE9\r\n--q\r\n\r\n--q--";
    expect_conv(m, "Content-Type: multipart/mixed; boundary=q\r\nMIME-Version: 1.0\r\n\r\n"
                   "--q\r\n--q\r\n"
                   "Content-Type: text/plain; charset=unknown-8bit\r\n"
                   "Content-Transfer-Encoding: quoted-printable\r\n\r\n=E9\r\n"
                   "--q\r\n\r\n--q--");
}

static void test_nested(void)
{
    /* mixed ⊃ (alternative ⊃ text 8bit, html 7bit), binary-ish
     * attachment labelled 8bit, a 7-bit attachment; the outer boundary
     * is a prefix of the inner one, as RFC 2046 §5.1.1 warns against but
     * which still parses the same way for us and readers. */
    struct buf m = BUF_INIT;
    buf_puts(&m, "Subject: nested\r\nMIME-Version: 1.0\r\n"
                 "Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n"
                 "--outer\r\n"
                 "Content-Type: multipart/alternative; boundary=inner\r\n\r\n"
                 "--inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                 "\xE2\x82\xAC 10\r\n"
                 "--inner\r\nContent-Type: text/html\r\n\r\n<p>EUR 10</p>\r\n"
                 "--inner--\r\n"
                 "--outer\r\n"
                 "Content-Type: application/x-thing\r\n"
                 "Content-Transfer-Encoding: 8bit\r\n\r\n");
    const char bin[] = "\x00\x01\x80\xFF\r\nline two \xC3\xA9\r\n";
    buf_append(&m, bin, sizeof bin - 1);
    buf_puts(&m, "\r\n--outer\r\nContent-Type: text/plain\r\n\r\nascii only\r\n"
                 "--outer--\r\n");
    size_t on;
    char *o = conv_ok(m.data, m.len, &on);
    const char *b;
    size_t bn;
    /* The text part. */
    body_after(o, on, "text/plain; charset=utf-8", "\r\n--inner", &b, &bn);
    CHECK_EQ_MEM(b, bn, "=E2=82=AC 10", 12);
    /* The html part, untouched. */
    CHECK(has(o, on, "Content-Type: text/html\r\n\r\n<p>EUR 10</p>\r\n--inner--\r\n"));
    /* The attachment: base64 of exactly its octets (the CRLF before the
     * delimiter is not part of it). */
    body_after(o, on, "application/x-thing", "\r\n--outer", &b, &bn);
    struct buf d = BUF_INIT;
    CHECK_EQ_INT(b64_decode_lines(b, bn, &d), 0);
    CHECK_EQ_MEM(d.data, d.len, bin, sizeof bin - 1);
    CHECK(has(o, on, "application/x-thing\r\nContent-Transfer-Encoding: base64\r\n"));
    CHECK(has(o, on, "\r\n--outer\r\nContent-Type: text/plain\r\n\r\nascii only\r\n"
                     "--outer--\r\n"));
    /* The result needs nothing more. */
    expect_same(o, on);
    free(o);
    buf_free(&d);

    /* Depth: 20 nested multiparts pass, 21 do not. */
    for (int depth = 19; depth <= 21; depth++) {
        buf_reset(&m);
        buf_puts(&m, "MIME-Version: 1.0\r\n");
        for (int i = 0; i < depth; i++)
            buf_printf(&m, "Content-Type: multipart/mixed; boundary=b%02d\r\n\r\n--b%02d\r\n",
                       i, i);
        buf_puts(&m, "\r\n\xE9\r\n");
        for (int i = depth - 1; i >= 0; i--)
            buf_printf(&m, "--b%02d--\r\n", i);
        if (depth <= 20) {
            o = conv_ok(m.data, m.len, &on);
            char want[32];
            snprintf(want, sizeof want, "\r\n\r\n=E9\r\n--b%02d--", depth - 1);
            CHECK(has(o, on, want));
            free(o);
        } else {
            expect_refused_n(m.data, m.len, "too deep");
        }
    }
    buf_free(&m);
}

static void test_rfc822(void)
{
    /* An enclosed message with an 8-bit body: converted inside, the
     * enclosing part relabelled 7bit. */
    const char *m = "MIME-Version: 1.0\r\n"
                    "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
                    "--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
                    "--b\r\nContent-Type: message/rfc822\r\n"
                    "Content-Transfer-Encoding: 8bit\r\n\r\n"
                    "From: x@example.org\r\nSubject: inner\r\n\r\n\xC3\xA9t\xC3\xA9\r\n"
                    "--b--\r\n";
    expect_conv(m, "MIME-Version: 1.0\r\n"
                   "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
                   "--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
                   "--b\r\nContent-Type: message/rfc822\r\n"
                   "Content-Transfer-Encoding: 7bit\r\n\r\n"
                   "From: x@example.org\r\nSubject: inner\r\n"
                   "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                   "Content-Transfer-Encoding: quoted-printable\r\n\r\n=C3=A9t=C3=A9\r\n"
                   "--b--\r\n");
    /* The same at the top: a message whose body is a message. */
    expect_conv("Content-Type: message/rfc822\r\n\r\nSubject: i\r\n\r\n\xE9",
                "Content-Type: message/rfc822\r\nMIME-Version: 1.0\r\n\r\n"
                "Subject: i\r\nMIME-Version: 1.0\r\n"
                "Content-Type: text/plain; charset=unknown-8bit\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n=E9");
    /* multipart/digest: a part without Content-Type is a message. */
    expect_conv("Content-Type: multipart/digest; boundary=d\r\nMIME-Version: 1.0\r\n\r\n"
                "--d\r\n\r\nSubject: one\r\n\r\n\xE9\r\n--d--\r\n",
                "Content-Type: multipart/digest; boundary=d\r\nMIME-Version: 1.0\r\n\r\n"
                "--d\r\n\r\nSubject: one\r\nMIME-Version: 1.0\r\n"
                "Content-Type: text/plain; charset=unknown-8bit\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n=E9\r\n--d--\r\n");
    /* message/global may be encoded (RFC 6532 §3.5): quoted-printable. */
    expect_conv("Content-Type: message/global\r\nMIME-Version: 1.0\r\n\r\n"
                "Subject: \xC3\xA9\r\n\r\nx\r\n",
                "Content-Type: message/global\r\nMIME-Version: 1.0\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                "Subject: =C3=A9\r\n\r\nx\r\n");
    /* An 8-bit header in the enclosed message: refused. */
    expect_refused("Content-Type: message/rfc822\r\n\r\nSubject: \xE9\r\n\r\n\xE9\r\n",
                   "message header");
    expect_refused("Content-Type: message/partial; id=x; number=1\r\n\r\n\xE9\r\n",
                   "allows no encoding");
    expect_refused("Content-Type: message/external-body; access-type=x\r\n\r\n\xE9\r\n",
                   "allows no encoding");
}

static void test_refused(void)
{
    expect_refused("Subject: Gr\xC3\xBC\xC3\x9F"
                   "e\r\n\r\nbody \xE9\r\n",
                   "message header");
    /* Even when the body is 7-bit: the result must be. */
    expect_refused("Subject: \xE9\r\n\r\nbody\r\n", "message header");
    expect_refused_n("Subject: a\0b\r\n\r\nbody\r\n", 22, "NUL");
    expect_refused("Subject: a\rb\r\n\r\nbody\r\n", "bare CR");
    expect_refused("Content-Type: multipart/mixed; boundary=a\r\n\r\n"
                   "--a\r\nX: \r.\r\n\r\n\xE9\r\n--a--\r\n",
                   "part header");
    expect_refused("Content-Transfer-Encoding: base64\r\n\r\n\xE9\r\n", "encoded content");
    expect_refused("Content-Transfer-Encoding: quoted-printable\r\n\r\n\xE9\r\n",
                   "encoded content");
    expect_refused("Content-Transfer-Encoding: x-uuencode\r\n\r\n\xE9\r\n", "unknown");
    expect_refused("Content-Type: text/plain\r\nContent-type: text/html\r\n\r\n\xE9\r\n",
                   "more than one");
    expect_refused("Content-Transfer-Encoding: 8bit\r\nContent-Transfer-Encoding: 7bit\r\n"
                   "\r\n\xE9\r\n",
                   "more than one");
    expect_refused("Content-Type: text\r\n\r\n\xE9\r\n", "does not parse");
    expect_refused("Content-Type: (unclosed\r\n\r\n\xE9\r\n", "does not parse");
    expect_refused("Content-Type: multipart/mixed\r\n\r\n--b\r\n\r\n\xE9\r\n", "boundary");
    expect_refused("Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n\xE9\r\n",
                   "boundary");
    expect_refused("Content-Type: multipart/mixed; boundary=a; boundary=b\r\n\r\n"
                   "--a\r\n\r\n\xE9\r\n--a--\r\n",
                   "boundary");
    expect_refused("Content-Type: multipart/mixed; boundary=\"a\r\n\r\n--a\r\n\r\n\xE9\r\n",
                   "boundary");
    expect_refused("Content-Type: multipart/mixed; boundary*0=a\r\n\r\n"
                   "--a\r\n\r\n\xE9\r\n--a--\r\n",
                   "boundary");
    expect_refused("Content-Type: multipart/mixed; boundary=a\r\n\r\n\xE9 no parts\r\n",
                   "without a boundary delimiter");
    /* Preamble, epilogue and delimiter lines: copied, so they must be 7-bit. */
    expect_refused("Content-Type: multipart/mixed; boundary=a\r\n\r\n"
                   "pr\xE9"
                   "ambule\r\n--a\r\n\r\nx\r\n--a--\r\n",
                   "preamble");
    expect_refused("Content-Type: multipart/mixed; boundary=a\r\n\r\n"
                   "--a\r\n\r\nx\r\n--a--\r\n\xE9pilogue\r\n",
                   "epilogue");
    expect_refused("Content-Type: multipart/mixed; boundary=a\r\n\r\n"
                   "--a\r\n\r\nx\r\n--a-- \xE9\r\n",
                   "delimiter");
    expect_refused("Content-Type: multipart/mixed; boundary=a\r\n\r\n"
                   "--a\r\nContent-Description: \xE9\r\n\r\nx\r\n--a--\r\n",
                   "part header");
    /* A part header with 8-bit is refused even when its content is 7-bit. */
    expect_refused("Content-Type: multipart/mixed; boundary=a\r\n\r\n"
                   "--a\r\nContent-Disposition: attachment; filename=\"\xC3\xA9.txt\"\r\n\r\n"
                   "x\r\n--a\r\n\r\n\xE9\r\n--a--\r\n",
                   "part header");
    struct buf m = BUF_INIT;
    buf_puts(&m, "Subject: ");
    for (int i = 0; i < 1000; i++)
        buf_putc(&m, 'x');
    buf_puts(&m, "\r\n\r\n\xE9\r\n");
    expect_refused_n(m.data, m.len, "over 998");
    buf_free(&m);
}

static void test_unchanged(void)
{
    /* 7-bit messages, MIME or not, come back octet for octet — also with
     * headers that would need care, parts already encoded, LF line ends. */
    const char *msgs[] = {
        "",
        "Subject: x\r\n",
        "Subject: x\r\n\r\n",
        "Subject: x\r\n\r\nhello\r\n",
        "Subject: x\r\nContent-Transfer-Encoding: binary\r\n\r\nhello\r\n",
        "Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nw6k=\r\n--a--\r\n",
        "Content-Type: garbage\r\n\r\ntext\r\n",
        "\r\n",
    };
    for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++)
        expect_same(msgs[i], strlen(msgs[i]));
    size_t on;
    char *o = conv_ok(NULL, 0, &on);
    CHECK_EQ_INT(on, 0);
    free(o);
    /* What we produce needs nothing more. */
    const char *m8 = "Subject: x\r\n\r\n\xC3\xA9t\xC3\xA9 -- \r\n";
    o = conv_ok(m8, strlen(m8), &on);
    expect_same(o, on);
    free(o);
}

static void test_long_lines(void)
{
    /* A 7-bit part with a line over 998 octets in a message being
     * converted is encoded too (a 7-bit transport cannot carry it). */
    struct buf m = BUF_INIT;
    buf_puts(&m, "Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n\r\n");
    for (int i = 0; i < 1200; i++)
        buf_putc(&m, 'x');
    buf_puts(&m, "\r\n--a\r\n\r\n\xE9\r\n--a--\r\n");
    size_t on;
    char *o = conv_ok(m.data, m.len, &on);
    CHECK(fit_7bit(o, on, 76));
    CHECK(has(o, on, "charset=us-ascii\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nxxx"));
    free(o);
    /* Line ends that are bare LF still delimit parts (robustness), and
     * become CRLF where no content is. */
    expect_conv("Content-Type: multipart/mixed; boundary=a\n\n--a\n\n\xE9\n--a--\n",
                "Content-Type: multipart/mixed; boundary=a\r\nMIME-Version: 1.0\r\n\r\n"
                "--a\r\nContent-Type: text/plain; charset=unknown-8bit\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n=E9\r\n--a--\r\n");
    buf_free(&m);
}

static void expect_conv_f(const char *msg, size_t n, unsigned flags, const char *want)
{
    size_t on;
    char *o = conv_ok_f(msg, n, flags, &on);
    CHECK_EQ_MEM(o, on, want, strlen(want));
    free(o);
}

/* What no text transfer may carry (RFC 5321 §2.3.8: CR and LF only as
 * CRLF; no NUL): a bare CR or LF or a NUL in a body is encoded whatever
 * the target; in a header it is refused. */
static void test_bare_octets(void)
{
    const char *m = "Subject: x\r\n\r\nhello\r.\r\nMAIL FROM:<a@b>\r\nbye\n";
    const char *qp = "Subject: x\r\nMIME-Version: 1.0\r\n"
                     "Content-Type: text/plain; charset=us-ascii\r\n"
                     "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                     "hello=0D.\r\nMAIL FROM:<a@b>\r\nbye=0A";
    expect_conv_f(m, strlen(m), 0, qp);
    expect_conv_f(m, strlen(m), DOWNGRADE_KEEP_8BIT, qp);
    expect_conv_f(m, strlen(m), DOWNGRADE_KEEP_8BIT | DOWNGRADE_BINARY, qp);
    expect_conv_f("S: x\r\n\r\na\0b\r\n", 13, DOWNGRADE_KEEP_8BIT,
                  "S: x\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n"
                  "Content-Transfer-Encoding: quoted-printable\r\n\r\na=00b\r\n");
    /* 8-bit text may stay for an 8BITMIME next hop: only the bare CR is
     * what needs the encoding, and the 8-bit header stays as it is. */
    m = "Subject: caf\xC3\xA9\r\n\r\ncaf\xC3\xA9\rX\r\n";
    expect_conv_f(m, strlen(m), DOWNGRADE_KEEP_8BIT,
                  "Subject: caf\xC3\xA9\r\nMIME-Version: 1.0\r\n"
                  "Content-Type: text/plain; charset=utf-8\r\n"
                  "Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9=0DX\r\n");
    m = "Subject: x\r\n\r\ncaf\xC3\xA9\r\n";
    expect_same_f(m, strlen(m), DOWNGRADE_KEEP_8BIT);
    /* Headers carry no content to encode. */
    struct buf b = BUF_INIT;
    const char *why = NULL;
    m = "Subject: a\rMAIL FROM:<x@y>\r\n\r\nbody\r\n";
    CHECK_EQ_INT(downgrade_convert(m, strlen(m), DOWNGRADE_KEEP_8BIT, &b, &why), -EINVAL);
    CHECK(why && strstr(why, "bare CR"));
    CHECK_EQ_INT(downgrade_convert("S: a\0\r\n\r\nx\r\n", 11, DOWNGRADE_KEEP_8BIT, &b, &why),
                 -EINVAL);
    CHECK_EQ_INT(b.len, 0);
    /* Between parts: a NUL or bare CR cannot be encoded either. */
    m = "Content-Type: multipart/mixed; boundary=a\r\n\r\npre\ramble\r\n--a\r\n\r\n"
        "x\ry\r\n--a--\r\n";
    CHECK_EQ_INT(downgrade_convert(m, strlen(m), DOWNGRADE_KEEP_8BIT, &b, &why), -EINVAL);
    CHECK(why && strstr(why, "preamble"));
    buf_free(&b);
    CHECK_EQ_INT(downgrade_needed("S: x\r\n\r\n\xE9\r\n", 11, 0), 1);
    CHECK_EQ_INT(downgrade_needed("S: x\r\n\r\n\xE9\r\n", 11, DOWNGRADE_KEEP_8BIT), 0);
    CHECK_EQ_INT(downgrade_needed("S: x\r\n\r\na\rb", 11, DOWNGRADE_KEEP_8BIT), 1);
    CHECK_EQ_INT(downgrade_needed("S: x\r\n\r\na\nb", 11, DOWNGRADE_KEEP_8BIT), 1);
    CHECK_EQ_INT(downgrade_needed("S: x\r\n\r\na\r\nb", 12, DOWNGRADE_KEEP_8BIT), 0);
}

/* BINARYMIME content (RFC 3030 §3) for a next hop without BINARYMIME:
 * parts labelled binary go base64 (text quoted-printable) and decode to
 * their exact octets; no "binary" label is left. */
static void test_binary(void)
{
    const char *leaf = "Content-Type: application/octet-stream\r\n"
                       "Content-Transfer-Encoding: binary\r\n\r\nabc\r\n";
    expect_same_f(leaf, strlen(leaf), DOWNGRADE_KEEP_8BIT); /* fits: the label alone */
    expect_conv_f(leaf, strlen(leaf), DOWNGRADE_KEEP_8BIT | DOWNGRADE_BINARY,
                  "Content-Type: application/octet-stream\r\n"
                  "Content-Transfer-Encoding: base64\r\nMIME-Version: 1.0\r\n\r\n"
                  "YWJjDQo=\r\n");
    /* mixed (labelled binary) ⊃ 8-bit text, binary blob with NUL, bare CR
     * and LF and a would-be end of data. */
    static const char blob[] = "\0\x01\xFF\r.\r\nMAIL\n.\n--b\r\r\n\x80";
    struct buf m = BUF_INIT;
    buf_puts(&m, "Subject: t\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
                 "boundary=b\r\nContent-Transfer-Encoding: binary\r\n\r\n"
                 "--b\r\nContent-Type: text/plain; charset=utf-8\r\n"
                 "Content-Transfer-Encoding: 8bit\r\n\r\ncaf\xC3\xA9\r\n"
                 "--b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: binary\r\n\r\n");
    buf_append(&m, blob, sizeof blob - 1);
    buf_puts(&m, "\r\n--b--\r\n");
    for (unsigned flags = DOWNGRADE_BINARY; flags <= (DOWNGRADE_BINARY | DOWNGRADE_KEEP_8BIT);
         flags++) {
        size_t on;
        char *o = conv_ok_f(m.data, m.len, flags, &on);
        int keep = (flags & DOWNGRADE_KEEP_8BIT) != 0;
        CHECK(has(o, on, keep ? "boundary=b\r\nContent-Transfer-Encoding: 8bit\r\n"
                              : "boundary=b\r\nContent-Transfer-Encoding: 7bit\r\n"));
        CHECK(!has(o, on, "binary"));
        CHECK(has(o, on, keep ? "Content-Transfer-Encoding: 8bit\r\n\r\ncaf\xC3\xA9\r\n--b"
                              : "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                                "caf=C3=A9\r\n--b"));
        const char *b;
        size_t bn;
        body_after(o, on, "image/png", "\r\n--b--", &b, &bn);
        struct buf d = BUF_INIT;
        CHECK_EQ_INT(b64_decode_lines(b, bn, &d), 0);
        CHECK_EQ_MEM(d.data, d.len, blob, sizeof blob - 1);
        buf_free(&d);
        free(o);
    }
    /* A binary label where the structure cannot be walked: it fits, so it
     * is copied as it is rather than refused. */
    const char *broken = "Content-Type: multipart/mixed\r\n\r\n--x\r\n"
                         "Content-Transfer-Encoding: binary\r\n\r\nabc\r\n--x--\r\n";
    expect_same_f(broken, strlen(broken), DOWNGRADE_BINARY);
    /* Not fit and not walkable: refused. */
    struct buf out = BUF_INIT;
    const char *why = NULL;
    static const char bad[] = "Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\na\0\r\n--x--\r\n";
    CHECK_EQ_INT(downgrade_convert(bad, sizeof bad - 1, DOWNGRADE_BINARY, &out, &why), -EINVAL);
    CHECK(why && strstr(why, "boundary"));
    buf_free(&out);
    buf_free(&m);
}

int main(void)
{
    test_bare_octets();
    test_binary();
    test_needed();
    test_plain();
    test_qp_rules();
    test_qp_long_lines();
    test_multipart_alternative();
    test_nested();
    test_rfc822();
    test_refused();
    test_unchanged();
    test_long_lines();
    return check_result("test_downgrade");
}
