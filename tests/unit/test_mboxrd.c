/* test_mboxrd: the mboxrd entry writer (mail/mboxrd). Each case is fed
 * whole, split in two at every position and byte by byte; an independent
 * whole-input model is compared on every sequence of up to 5 pieces out
 * of "From ", ">", CR, LF, "Fro", "x"; and un-quoting (one '>' off every
 * line matching ^>+From ) gives back the message exactly. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "check.h"
#include "mail/mboxrd.h"

static void feed_cut(const char *in, size_t n, const size_t *cuts, size_t ncuts, struct buf *out)
{
    struct mboxrd q;
    mboxrd_init(&q);
    size_t at = 0;
    for (size_t i = 0; i < ncuts; i++) {
        mboxrd_feed(&q, in + at, cuts[i] - at, out);
        at = cuts[i];
    }
    mboxrd_feed(&q, in + at, n - at, out);
    mboxrd_finish(&q, out);
}

/* The model: CRLF to LF on the whole input, then each line matching
 * ^>*From  gets a '>' in front, then an LF if missing, then the empty line. */
static void model(const char *in, size_t n, struct buf *out)
{
    struct buf lf = BUF_INIT;
    for (size_t i = 0; i < n; i++)
        if (!(in[i] == '\r' && i + 1 < n && in[i + 1] == '\n'))
            buf_putc(&lf, in[i]);
    buf_puts(&lf, "");
    size_t i = 0;
    while (i < lf.len) {
        size_t e = i;
        while (e < lf.len && lf.data[e] != '\n')
            e++;
        size_t k = i;
        while (k < e && lf.data[k] == '>')
            k++;
        if (e - k >= 5 && !memcmp(lf.data + k, "From ", 5))
            buf_putc(out, '>');
        buf_append(out, lf.data + i, e - i + (e < lf.len));
        i = e + 1;
    }
    if (out->len == 0 || out->data[out->len - 1] != '\n')
        buf_putc(out, '\n');
    buf_putc(out, '\n');
    buf_free(&lf);
}

/* Un-quoting as a reader of mboxrd does it, for the round trip. */
static void unquote(const char *in, size_t n, struct buf *out)
{
    size_t i = 0;
    while (i < n) {
        size_t e = i;
        while (e < n && in[e] != '\n')
            e++;
        size_t k = i;
        while (k < e && in[k] == '>')
            k++;
        int drop = k > i && e - k >= 5 && !memcmp(in + k, "From ", 5);
        buf_append(out, in + i + drop, e - i - drop + (e < n));
        i = e + 1;
    }
}

/* Every way of feeding `in` gives `want`. */
static void check_case(const char *in, size_t n, const char *want, size_t wlen)
{
    struct buf out = BUF_INIT;
    feed_cut(in, n, NULL, 0, &out);
    CHECK_EQ_MEM(out.data, out.len, want, wlen);
    for (size_t c = 0; c <= n; c++) {
        buf_reset(&out);
        feed_cut(in, n, &c, 1, &out);
        CHECK_EQ_MEM(out.data, out.len, want, wlen);
    }
    size_t *cuts = malloc((n + 1) * sizeof *cuts);
    for (size_t c = 0; c < n; c++)
        cuts[c] = c + 1;
    buf_reset(&out);
    feed_cut(in, n, cuts, n ? n - 1 : 0, &out);
    CHECK_EQ_MEM(out.data, out.len, want, wlen);
    free(cuts);
    buf_free(&out);
}

#define CASE(in, want) check_case(in, sizeof(in) - 1, want, sizeof(want) - 1)

static void test_cases(void)
{
    CASE("", "\n\n");
    CASE("a\r\n", "a\n\n");
    CASE("a", "a\n\n");
    CASE("From me\r\n", ">From me\n\n");
    CASE("x\r\nFrom me\r\n>From you\r\n>>From x\r\n", "x\n>From me\n>>From you\n>>>From x\n\n");
    /* Not at a line start, not followed by a space, not all of it. */
    CASE("a From b\r\nFrom\r\nFromage\r\n>From\r\nFro", "a From b\nFrom\nFromage\n>From\nFro\n\n");
    CASE("> From x\r\n", "> From x\n\n");
    CASE("from x\r\n", "from x\n\n");
    /* A bare CR is content; a bare LF ends a line like CRLF. */
    CASE("a\rb\r\n", "a\rb\n\n");
    CASE("a\r", "a\r\n\n");
    CASE("a\nFrom b\n", "a\n>From b\n\n");
    CASE("a\r\rFrom\r\n", "a\r\rFrom\n\n");
    CASE("a\r\r\nFrom x\r\n", "a\r\n>From x\n\n");
    /* The message's own empty last line stays. */
    CASE("a\r\n\r\n", "a\n\n\n");
}

static void test_model(void)
{
    static const char *const piece[] = {"From ", ">", "\r", "\n", "Fro", "x"};
    size_t idx[5];
    unsigned long cases = 0, bad = 0;
    struct buf in = BUF_INIT, got = BUF_INIT, want = BUF_INIT, back = BUF_INIT, orig = BUF_INIT;
    for (size_t len = 0; len <= 5; len++) {
        size_t total = 1;
        for (size_t i = 0; i < len; i++)
            total *= 6;
        for (size_t k = 0; k < total; k++) {
            size_t v = k;
            buf_reset(&in);
            for (size_t i = 0; i < len; i++) {
                idx[i] = v % 6;
                v /= 6;
                buf_puts(&in, piece[idx[i]]);
            }
            buf_puts(&in, "");
            buf_reset(&got);
            buf_reset(&want);
            size_t half = in.len / 2;
            feed_cut(in.data, in.len, &half, 1, &got);
            model(in.data, in.len, &want);
            cases++;
            if (got.len != want.len || memcmp(got.data, want.data, got.len)) {
                if (bad++ < 3)
                    CHECK_EQ_MEM(got.data, got.len, want.data, want.len);
                continue;
            }
            /* Round trip: un-quoted, the entry is the message with LF line
             * ends (and the line end and empty line added at the end). */
            buf_reset(&back);
            buf_reset(&orig);
            unquote(got.data, got.len, &back);
            for (size_t i = 0; i < in.len; i++)
                if (!(in.data[i] == '\r' && i + 1 < in.len && in.data[i + 1] == '\n'))
                    buf_putc(&orig, in.data[i]);
            if (orig.len == 0 || orig.data[orig.len - 1] != '\n')
                buf_putc(&orig, '\n');
            buf_putc(&orig, '\n');
            if (back.len != orig.len || memcmp(back.data, orig.data, back.len))
                if (bad++ < 3)
                    CHECK_EQ_MEM(back.data, back.len, orig.data, orig.len);
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(cases == 1 + 6 + 36 + 216 + 1296 + 7776);
    buf_free(&in);
    buf_free(&got);
    buf_free(&want);
    buf_free(&back);
    buf_free(&orig);
}

static void test_from_line(void)
{
    struct buf b = BUF_INIT;
    mboxrd_from_line(&b, "alice@example.org", 1767225600); /* 2026-01-01 00:00:00 UTC */
    CHECK_EQ_STR(b.data, "From alice@example.org Thu Jan  1 00:00:00 2026\n");
    int64_t t = 0;
    CHECK_EQ_INT(mboxrd_from_time(b.data, b.len - 1, &t), 0);
    CHECK_EQ_INT(t, 1767225600);
    buf_reset(&b);
    mboxrd_from_line(&b, "", 1795400000);
    CHECK_EQ_STR(b.data, "From MAILER-DAEMON Mon Nov 23 02:13:20 2026\n");
    CHECK_EQ_INT(mboxrd_from_time(b.data, b.len - 1, &t), 0);
    CHECK_EQ_INT(t, 1795400000);
    /* A quoted local part with white space and a control stays one word. */
    buf_reset(&b);
    mboxrd_from_line(&b, "\"a b\tc\x7f\"@x", 1767225600);
    CHECK_EQ_STR(b.data, "From \"a_b_c_\"@x Thu Jan  1 00:00:00 2026\n");
    buf_reset(&b);
    mboxrd_from_line(&b, "a@x", (int64_t)1 << 40); /* beyond year 9999 */
    CHECK_EQ_STR(b.data, "From a@x Thu Jan  1 00:00:00 1970\n");
    /* Not ours: no date where it should be. */
    static const char *const bad[] = {"From a@x", "From a@x Thu Jan  1 00:00:00 2026 +0000",
                                      "Frum a@x Thu Jan  1 00:00:00 2026",
                                      "From a@x Thu Jab  1 00:00:00 2026",
                                      "From Thu Jan  1 00:00:00 2026"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ_INT(mboxrd_from_time(bad[i], strlen(bad[i]), &t), -EINVAL);
    buf_free(&b);
}

int main(void)
{
    test_cases();
    test_model();
    test_from_line();
    return check_result("test_mboxrd");
}
