/* Unit tests for mail/dotstuff: the DATA/BDAT decoder (RFC 5321 §4.1.1.4,
 * §4.5.2, RFC 3030) and the SMTP smuggling variants of December 2023.
 *
 * Every DATA case is checked fed in one piece, split in two at every
 * position, and byte by byte: the result must not depend on how the bytes
 * arrived. An independent whole-input model of the rules is compared with
 * the decoder on every input of up to 8 octets over {CR, LF, '.', 'a'}. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "check.h"
#include "mail/dotstuff.h"

struct run {
    struct buf out;
    int status;
    size_t consumed;
    unsigned flags;
    uint64_t size;
};

struct cfg {
    enum dotstuff_mode mode;
    enum dotstuff_bare_policy bare;
    size_t max_line;
    uint64_t max_size;
};

static const struct cfg DATA_N = {DOTSTUFF_DATA, DOTSTUFF_NORMALIZE, 0, 0};
static const struct cfg DATA_R = {DOTSTUFF_DATA, DOTSTUFF_REJECT, 0, 0};
static const struct cfg BDAT_N = {DOTSTUFF_BDAT, DOTSTUFF_NORMALIZE, 0, 0};

/* Feeds `in` cut at the given points (ascending, within [0, len]); stops
 * feeding at END as a caller would. BDAT modes end with dotstuff_finish. */
static void feed_parts(const struct cfg *c, const char *in, size_t len, const size_t *cuts,
                       size_t ncuts, struct run *r)
{
    struct dotstuff d;
    dotstuff_init(&d, c->mode, c->bare, c->max_line, c->max_size);
    buf_init(&r->out);
    r->status = DOTSTUFF_MORE;
    r->consumed = 0;
    size_t from = 0;
    for (size_t k = 0; k <= ncuts && r->status != DOTSTUFF_END; k++) {
        size_t to = k < ncuts ? cuts[k] : len;
        size_t used = 12345;
        r->status = dotstuff_feed(&d, in + from, to - from, &r->out, &used);
        r->consumed += used;
        if (r->status != DOTSTUFF_END && used != to - from)
            r->consumed = (size_t)-1; /* MORE must consume everything */
        from = to;
    }
    if (c->mode != DOTSTUFF_DATA)
        dotstuff_finish(&d, &r->out);
    r->flags = d.flags;
    r->size = d.size;
}

static void feed_one(const struct cfg *c, const char *in, size_t len, struct run *r)
{
    feed_parts(c, in, len, NULL, 0, r);
}

static int run_same(const struct run *a, const struct run *b)
{
    return a->status == b->status && a->consumed == b->consumed && a->flags == b->flags &&
           a->size == b->size && a->out.len == b->out.len &&
           (a->out.len == 0 || !memcmp(a->out.data, b->out.data, a->out.len));
}

/* 1 when every CR in p is followed by LF and every LF preceded by CR. */
static int no_bare(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\r' && (i + 1 == n || p[i + 1] != '\n'))
            return 0;
        if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
            return 0;
    }
    return 1;
}

/* Checks that every split in two and the byte-by-byte feed give the same
 * result as one feed. Returns the number of differing splits. */
static int split_mismatches(const struct cfg *c, const char *in, size_t len, const struct run *one)
{
    int bad = 0;
    struct run r;
    for (size_t k = 0; k <= len; k++) {
        feed_parts(c, in, len, &k, 1, &r);
        if (!run_same(one, &r))
            bad++;
        buf_free(&r.out);
    }
    size_t *cuts = malloc((len + 1) * sizeof *cuts);
    for (size_t k = 0; k < len; k++)
        cuts[k] = k + 1;
    feed_parts(c, in, len, cuts, len ? len - 1 : 0, &r);
    if (!run_same(one, &r))
        bad++;
    buf_free(&r.out);
    free(cuts);
    return bad;
}

/* One DATA/BDAT case: exact output, status, consumed octets and flags,
 * fed whole, split at every position, and byte by byte. */
static void expect(const struct cfg *c, const char *in, size_t len, const char *want,
                   size_t wantlen, int status, size_t consumed, unsigned flags)
{
    struct run r;
    int before = check_failures;
    feed_one(c, in, len, &r);
    CHECK_EQ_MEM(r.out.data ? r.out.data : "", r.out.len, want, wantlen);
    CHECK_EQ_INT(r.status, status);
    CHECK_EQ_INT(r.consumed, consumed);
    CHECK_EQ_INT(r.flags, flags);
    CHECK_EQ_INT(r.size, wantlen);
    if (c->mode != DOTSTUFF_BINARY)
        CHECK(no_bare(r.out.data ? r.out.data : "", r.out.len));
    CHECK_EQ_INT(split_mismatches(c, in, len, &r), 0);
    if (check_failures != before) {
        fprintf(stderr, "  input: ");
        check_dump(in, len);
        fprintf(stderr, "\n");
    }
    buf_free(&r.out);
}

#define S(lit) lit, sizeof(lit) - 1

static void test_basic_end(void)
{
    expect(&DATA_N, S("hello\r\n.\r\n"), S("hello\r\n"), DOTSTUFF_END, 10, 0);
    expect(&DATA_N, S("Subject: x\r\n\r\nbody\r\n.\r\n"), S("Subject: x\r\n\r\nbody\r\n"),
           DOTSTUFF_END, 23, 0);
    /* The start of the data is the start of a line: ".\r\n" first is an
     * empty message. */
    expect(&DATA_N, S(".\r\n"), S(""), DOTSTUFF_END, 3, 0);
    expect(&DATA_N, S("\r\n.\r\n"), S("\r\n"), DOTSTUFF_END, 5, 0);
    /* Without the end, everything is consumed and MORE returned; held-back
     * octets (a CR, a line-leading dot) are not yet output. */
    expect(&DATA_N, S("abc"), S("abc"), DOTSTUFF_MORE, 3, 0);
    expect(&DATA_N, S("abc\r"), S("abc"), DOTSTUFF_MORE, 4, 0);
    expect(&DATA_N, S("abc\r\n."), S("abc\r\n"), DOTSTUFF_MORE, 6, 0);
    expect(&DATA_N, S("abc\r\n.\r"), S("abc\r\n"), DOTSTUFF_MORE, 7, 0);
    expect(&DATA_N, S(""), S(""), DOTSTUFF_MORE, 0, 0);
    /* A dot inside a line is content. */
    expect(&DATA_N, S("a.\r\n.b\r\n.\r\n"), S("a.\r\nb\r\n"), DOTSTUFF_END, 11, 0);
}

static void test_pipelined(void)
{
    /* The octets after the end (pipelined commands) are not consumed. */
    expect(&DATA_N, S("hi\r\n.\r\nQUIT\r\n"), S("hi\r\n"), DOTSTUFF_END, 7, 0);
    expect(&DATA_N, S(".\r\nMAIL FROM:<a@b>\r\n"), S(""), DOTSTUFF_END, 3, 0);
    expect(&DATA_N, S("x\r\n.\r\n.\r\n"), S("x\r\n"), DOTSTUFF_END, 6, 0);

    /* Once ended, further input is refused without being consumed. */
    struct dotstuff d;
    struct buf out = BUF_INIT;
    size_t used = 99;
    dotstuff_init(&d, DOTSTUFF_DATA, DOTSTUFF_NORMALIZE, 0, 0);
    CHECK_EQ_INT(dotstuff_feed(&d, S(".\r\nX"), &out, &used), DOTSTUFF_END);
    CHECK_EQ_INT(used, 3);
    used = 99;
    CHECK_EQ_INT(dotstuff_feed(&d, S("X\r\n.\r\n"), &out, &used), DOTSTUFF_END);
    CHECK_EQ_INT(used, 0);
    CHECK_EQ_INT(out.len, 0);
    buf_free(&out);
}

/* SMTP smuggling (2023): none of these ends DATA; each is content,
 * written out with CRLF line endings, and marks the message BARE. */
static void test_smuggling(const struct cfg *c)
{
    const unsigned B = DOTSTUFF_F_BARE;
    /* Alone: nothing ends, everything is consumed. */
    expect(c, S("A\n.\n"), S("A\r\n.\r\n"), DOTSTUFF_MORE, 4, B);
    expect(c, S("A\n.\r\n"), S("A\r\n.\r\n"), DOTSTUFF_MORE, 5, B);
    expect(c, S("A\r.\r\n"), S("A\r\n.\r\n"), DOTSTUFF_MORE, 5, B);
    expect(c, S("A\r\n.\rB"), S("A\r\n\r\nB"), DOTSTUFF_MORE, 6, B);
    expect(c, S("A\r\n.\nB"), S("A\r\n\r\nB"), DOTSTUFF_MORE, 6, B);
    /* At the very start of the data too. */
    expect(c, S("\n.\n"), S("\r\n.\r\n"), DOTSTUFF_MORE, 3, B);
    expect(c, S("\n.\r\n"), S("\r\n.\r\n"), DOTSTUFF_MORE, 4, B);
    expect(c, S("\r.\r\n"), S("\r\n.\r\n"), DOTSTUFF_MORE, 4, B);
    expect(c, S(".\n"), S("\r\n"), DOTSTUFF_MORE, 2, B);
    expect(c, S(".\rX"), S("\r\nX"), DOTSTUFF_MORE, 3, B);
    expect(c, S("\r\n.\r\r\n"), S("\r\n\r\n\r\n"), DOTSTUFF_MORE, 6, B);
    /* Each followed by a would-be second transaction and the real end:
     * only the real end counts; the "commands" are content. */
    expect(c, S("A\n.\nMAIL FROM:<x@y>\r\n.\r\nQUIT\r\n"),
           S("A\r\n.\r\nMAIL FROM:<x@y>\r\n"), DOTSTUFF_END, 24, B);
    expect(c, S("A\n.\r\nRCPT TO:<x@y>\r\n.\r\n"), S("A\r\n.\r\nRCPT TO:<x@y>\r\n"),
           DOTSTUFF_END, 23, B);
    expect(c, S("A\r.\r\nDATA\r\n.\r\n"), S("A\r\n.\r\nDATA\r\n"), DOTSTUFF_END, 14, B);
    expect(c, S("A\r\n.\rDATA\r\n.\r\n"), S("A\r\n\r\nDATA\r\n"), DOTSTUFF_END, 14, B);
    expect(c, S("A\r\n.\nDATA\r\n.\r\n"), S("A\r\n\r\nDATA\r\n"), DOTSTUFF_END, 14, B);
    /* The whole family of the published attack in one message. */
    expect(c, S("A\n.\nMAIL FROM:<x@example.org>\r\nB\n.\r\nC\r.\r\nD\r\n.\rE\r\n.\nF\r\n.\r\n"),
           S("A\r\n.\r\nMAIL FROM:<x@example.org>\r\nB\r\n.\r\nC\r\n.\r\nD\r\n\r\nE\r\n\r\nF\r\n"),
           DOTSTUFF_END, 57, B);
    /* Bare CR and LF elsewhere. */
    expect(c, S("a\nb\rc\r\r\n.\r\n"), S("a\r\nb\r\nc\r\n\r\n"), DOTSTUFF_END, 11, B);
    /* A bare ending right before the real end does not hide it. */
    expect(c, S("a\n\r\n.\r\n"), S("a\r\n\r\n"), DOTSTUFF_END, 7, B);
    expect(c, S("a\r\r\n.\r\n"), S("a\r\n\r\n"), DOTSTUFF_END, 7, B);
}

static void test_unstuff(void)
{
    /* RFC 5321 §4.5.2: one leading dot is removed. */
    expect(&DATA_N, S("..x\r\n.\r\n"), S(".x\r\n"), DOTSTUFF_END, 8, 0);
    expect(&DATA_N, S("..\r\n.\r\n"), S(".\r\n"), DOTSTUFF_END, 7, 0);
    expect(&DATA_N, S("...\r\n.\r\n"), S("..\r\n"), DOTSTUFF_END, 8, 0);
    expect(&DATA_N, S(".x\r\n.\r\n"), S("x\r\n"), DOTSTUFF_END, 7, 0);
    expect(&DATA_N, S("a\r\n..\r\n..b\r\n.\r\n"), S("a\r\n.\r\n.b\r\n"), DOTSTUFF_END, 15, 0);
    /* "..\r\n" at the very start, then the end. */
    expect(&DATA_N, S("..\r\n.\r\nX"), S(".\r\n"), DOTSTUFF_END, 7, 0);
    /* A dot after a bare LF is not line-leading: kept. */
    expect(&DATA_N, S("a\n..\r\n.\r\n"), S("a\r\n..\r\n"), DOTSTUFF_END, 9, DOTSTUFF_F_BARE);
}

static void test_size(void)
{
    struct cfg c = DATA_N;
    struct run r;
    /* RFC 1870: the size is of the decoded content. */
    feed_one(&c, S("..x\r\na\nb\r\n.\r\n"), &r);
    CHECK_EQ_INT(r.size, 10); /* ".x\r\n" "a\r\n" "b\r\n" */
    CHECK_EQ_MEM(r.out.data, r.out.len, ".x\r\na\r\nb\r\n", 10);
    buf_free(&r.out);

    /* Exactly max_size: fits. */
    c.max_size = 12;
    expect(&c, S("0123456789\r\n.\r\n"), S("0123456789\r\n"), DOTSTUFF_END, 15, 0);
    /* One over: TOOBIG, the output stops at max_size, the count and the
     * search for the end go on, and the pipelined octets stay. */
    c.max_size = 11;
    feed_one(&c, S("0123456789\r\n.\r\nQUIT\r\n"), &r);
    CHECK_EQ_INT(r.status, DOTSTUFF_END);
    CHECK_EQ_INT(r.consumed, 15);
    CHECK_EQ_INT(r.flags, DOTSTUFF_F_TOOBIG);
    CHECK_EQ_INT(r.size, 12);
    CHECK_EQ_MEM(r.out.data, r.out.len, "0123456789\r", 11);
    CHECK_EQ_INT(split_mismatches(&c, S("0123456789\r\n.\r\nQUIT\r\n"), &r), 0);
    buf_free(&r.out);
    /* Far over: the size keeps counting, the buffer does not grow. */
    c.max_size = 5;
    size_t n = 100000;
    char *big = malloc(n + 5);
    memset(big, 'x', n);
    memcpy(big + n, "\r\n.\r\n", 5);
    feed_one(&c, big, n + 5, &r);
    CHECK_EQ_INT(r.status, DOTSTUFF_END);
    CHECK_EQ_INT(r.size, n + 2);
    CHECK_EQ_INT(r.out.len, 5);
    CHECK_EQ_INT(r.flags, DOTSTUFF_F_TOOBIG);
    buf_free(&r.out);
    free(big);
    /* The caller may empty `out` between feeds: the limit is on the
     * message, not on the buffer. */
    struct dotstuff d;
    struct buf out = BUF_INIT;
    size_t used, total = 0;
    dotstuff_init(&d, DOTSTUFF_DATA, DOTSTUFF_NORMALIZE, 0, 8);
    dotstuff_feed(&d, S("abcdef"), &out, &used);
    total += out.len;
    buf_reset(&out);
    dotstuff_feed(&d, S("ghijkl\r\n.\r\n"), &out, &used);
    total += out.len;
    CHECK_EQ_INT(total, 8);
    CHECK_EQ_MEM(out.data, out.len, "gh", 2);
    CHECK(d.flags & DOTSTUFF_F_TOOBIG);
    CHECK_EQ_INT(d.size, 14);
    buf_free(&out);
}

static void test_longline(void)
{
    struct cfg c = DATA_N;
    c.max_line = 10;
    /* 8 octets + CRLF = 10: exactly the limit. */
    expect(&c, S("12345678\r\n.\r\n"), S("12345678\r\n"), DOTSTUFF_END, 13, 0);
    /* 9 + CRLF = 11: one over. The content is kept. */
    expect(&c, S("123456789\r\n.\r\n"), S("123456789\r\n"), DOTSTUFF_END, 14,
           DOTSTUFF_F_LONGLINE);
    /* The stuffed dot is not counted (§4.5.3.1.6). */
    expect(&c, S(".12345678\r\n.\r\n"), S("12345678\r\n"), DOTSTUFF_END, 14, 0);
    expect(&c, S("..2345678\r\n.\r\n"), S(".2345678\r\n"), DOTSTUFF_END, 14, 0);
    /* Counted per line: many lines at the limit are fine. */
    expect(&c, S("12345678\r\n12345678\r\n.\r\n"), S("12345678\r\n12345678\r\n"), DOTSTUFF_END,
           23, 0);
    /* A bare LF counts as the CRLF it becomes. */
    expect(&c, S("12345678\n.\r\n"), S("12345678\r\n.\r\n"), DOTSTUFF_MORE, 12, DOTSTUFF_F_BARE);
    expect(&c, S("123456789\nx\r\n.\r\n"), S("123456789\r\nx\r\n"), DOTSTUFF_END, 16,
           DOTSTUFF_F_BARE | DOTSTUFF_F_LONGLINE);
    /* A line over the limit that never ends is flagged all the same. */
    expect(&c, S("12345678901"), S("12345678901"), DOTSTUFF_MORE, 11, DOTSTUFF_F_LONGLINE);
    expect(&c, S("1234567890"), S("1234567890"), DOTSTUFF_MORE, 10, 0);
    /* BDAT lines are limited the same way. */
    c.mode = DOTSTUFF_BDAT;
    expect(&c, S("12345678\r\n"), S("12345678\r\n"), DOTSTUFF_MORE, 10, 0);
    expect(&c, S("123456789\r\n"), S("123456789\r\n"), DOTSTUFF_MORE, 11, DOTSTUFF_F_LONGLINE);
}

static void test_8bit_nul(void)
{
    expect(&DATA_N, S("caf\xc3\xa9\r\n.\r\n"), S("caf\xc3\xa9\r\n"), DOTSTUFF_END, 10,
           DOTSTUFF_F_8BIT);
    expect(&DATA_N, S("a\0b\r\n.\r\n"), S("a\0b\r\n"), DOTSTUFF_END, 8, DOTSTUFF_F_NUL);
    expect(&DATA_N, S(".\0\r\n.\r\n"), S("\0\r\n"), DOTSTUFF_END, 7, DOTSTUFF_F_NUL);
    expect(&BDAT_N, S("\xff\0"), S("\xff\0"), DOTSTUFF_MORE, 2, DOTSTUFF_F_NUL | DOTSTUFF_F_8BIT);
}

static void test_bdat(void)
{
    const unsigned B = DOTSTUFF_F_BARE;
    /* No dot handling, no end. */
    expect(&BDAT_N, S("a\r\n.\r\nb"), S("a\r\n.\r\nb"), DOTSTUFF_MORE, 7, 0);
    expect(&BDAT_N, S("..x\r\n"), S("..x\r\n"), DOTSTUFF_MORE, 5, 0);
    expect(&BDAT_N, S(".\r\n"), S(".\r\n"), DOTSTUFF_MORE, 3, 0);
    /* Bare CR/LF as in DATA. */
    expect(&BDAT_N, S("a\nb\rc"), S("a\r\nb\r\nc"), DOTSTUFF_MORE, 5, B);
    expect(&BDAT_N, S("a\n.\n"), S("a\r\n.\r\n"), DOTSTUFF_MORE, 4, B);
    /* dotstuff_finish flushes a CR held at the end. */
    expect(&BDAT_N, S("a\r"), S("a\r\n"), DOTSTUFF_MORE, 2, B);
    struct cfg rj = BDAT_N;
    rj.bare = DOTSTUFF_REJECT;
    expect(&rj, S("a\r"), S("a\r\n"), DOTSTUFF_MORE, 2, B);
    /* A CRLF split across chunks is a CRLF. */
    struct dotstuff d;
    struct buf out = BUF_INIT;
    size_t used;
    dotstuff_init(&d, DOTSTUFF_BDAT, DOTSTUFF_NORMALIZE, 0, 0);
    CHECK_EQ_INT(dotstuff_feed(&d, S("line1\r"), &out, &used), DOTSTUFF_MORE);
    CHECK_EQ_INT(used, 6);
    CHECK_EQ_MEM(out.data, out.len, "line1", 5);
    CHECK_EQ_INT(dotstuff_feed(&d, S("\nline2"), &out, &used), DOTSTUFF_MORE);
    dotstuff_finish(&d, &out);
    CHECK_EQ_MEM(out.data, out.len, "line1\r\nline2", 12);
    CHECK_EQ_INT(d.flags, 0);
    CHECK_EQ_INT(d.size, 12);
    buf_free(&out);
    /* finish with nothing held adds nothing. */
    dotstuff_init(&d, DOTSTUFF_BDAT, DOTSTUFF_NORMALIZE, 0, 0);
    dotstuff_feed(&d, S("x\r\n"), &out, &used);
    dotstuff_finish(&d, &out);
    CHECK_EQ_MEM(out.data, out.len, "x\r\n", 3);
    buf_free(&out);
}

static void test_binary(void)
{
    struct cfg c = {DOTSTUFF_BINARY, DOTSTUFF_NORMALIZE, 10, 0};
    /* Octets pass unchanged; no line limit, no dots, no end. */
    expect(&c, S("a\r\n.\r\n\n\r.\nxxxxxxxxxxxxxxxxxxxx\r"),
           S("a\r\n.\r\n\n\r.\nxxxxxxxxxxxxxxxxxxxx\r"), DOTSTUFF_MORE, 31, 0);
    expect(&c, S("\0\xff"), S("\0\xff"), DOTSTUFF_MORE, 2, DOTSTUFF_F_NUL | DOTSTUFF_F_8BIT);
    c.max_size = 4;
    struct run r;
    feed_one(&c, S("abcdefgh"), &r);
    CHECK_EQ_MEM(r.out.data, r.out.len, "abcd", 4);
    CHECK_EQ_INT(r.size, 8);
    CHECK_EQ_INT(r.flags, DOTSTUFF_F_TOOBIG);
    CHECK_EQ_INT(r.consumed, 8);
    CHECK_EQ_INT(split_mismatches(&c, S("abcdefgh"), &r), 0);
    buf_free(&r.out);
}

/* ---- an independent model of the rules, on the whole input at once ---- */

static size_t find_end(const char *in, size_t n, size_t *content)
{
    if (n >= 3 && !memcmp(in, ".\r\n", 3)) {
        *content = 0;
        return 3;
    }
    for (size_t i = 0; i + 5 <= n; i++) {
        if (!memcmp(in + i, "\r\n.\r\n", 5)) {
            *content = i + 2;
            return i + 5;
        }
    }
    *content = n;
    return 0;
}

/* DATA: content up to the end; a CR with nothing after it is held back;
 * lines are what real CRLFs separate; each line loses one leading dot;
 * inside a line every CR and LF is bare and becomes CRLF. */
static void model_data(const char *in, size_t n, struct buf *out, int *end, size_t *consumed,
                       int *bare)
{
    size_t clen;
    size_t e = find_end(in, n, &clen);
    *end = e != 0;
    *consumed = e ? e : n;
    *bare = 0;
    if (!*end && clen > 0 && in[clen - 1] == '\r')
        clen--;
    size_t i = 0;
    while (i < clen) {
        size_t j = i;
        while (j < clen && !(in[j] == '\r' && j + 1 < clen && in[j + 1] == '\n'))
            j++;
        /* in[i..j) is a line; at j a CRLF or the end of the content. */
        size_t k = i;
        if (k < j && in[k] == '.')
            k++;
        for (; k < j; k++) {
            if (in[k] == '\r' || in[k] == '\n') {
                buf_append(out, "\r\n", 2);
                *bare = 1;
            } else {
                buf_putc(out, in[k]);
            }
        }
        if (j < clen) {
            buf_append(out, "\r\n", 2);
            j += 2;
        }
        i = j;
    }
}

static void test_model_exhaustive(void)
{
    static const char alpha[] = {'\r', '\n', '.', 'a'};
    char in[8];
    long mismatches = 0, split_bad = 0, bare_out = 0, end_bad = 0, total = 0;
    for (size_t len = 0; len <= 8; len++) {
        size_t count = 1;
        for (size_t i = 0; i < len; i++)
            count *= 4;
        for (size_t x = 0; x < count; x++) {
            size_t v = x;
            for (size_t i = 0; i < len; i++, v /= 4)
                in[i] = alpha[v % 4];
            total++;
            struct run r;
            feed_one(&DATA_N, in, len, &r);
            struct buf m = BUF_INIT;
            int end, bare;
            size_t consumed;
            model_data(in, len, &m, &end, &consumed, &bare);
            if (r.out.len != m.len || (m.len && memcmp(r.out.data, m.data, m.len)) ||
                (r.status == DOTSTUFF_END) != end || r.consumed != consumed ||
                !!(r.flags & DOTSTUFF_F_BARE) != bare) {
                if (mismatches++ < 5) {
                    fprintf(stderr, "model mismatch on ");
                    check_dump(in, len);
                    fprintf(stderr, "\n  got:  ");
                    check_dump(r.out.data ? r.out.data : "", r.out.len);
                    fprintf(stderr, "\n  want: ");
                    check_dump(m.data ? m.data : "", m.len);
                    fprintf(stderr, "\n");
                }
            }
            if (!no_bare(r.out.data ? r.out.data : "", r.out.len))
                bare_out++;
            /* END only when what was consumed ends in CRLF.CRLF or is ".\r\n". */
            if (r.status == DOTSTUFF_END &&
                !((r.consumed == 3 && !memcmp(in, ".\r\n", 3)) ||
                  (r.consumed >= 5 && !memcmp(in + r.consumed - 5, "\r\n.\r\n", 5))))
                end_bad++;
            if (len <= 6)
                split_bad += split_mismatches(&DATA_N, in, len, &r);
            else {
                /* Byte by byte only, for the longer inputs. */
                size_t cuts[8];
                for (size_t k = 0; k + 1 < len; k++)
                    cuts[k] = k + 1;
                struct run b;
                feed_parts(&DATA_N, in, len, cuts, len - 1, &b);
                if (!run_same(&r, &b))
                    split_bad++;
                buf_free(&b.out);
            }
            buf_free(&m);
            buf_free(&r.out);
        }
    }
    CHECK_EQ_INT(total, 87381);
    CHECK_EQ_INT(mismatches, 0);
    CHECK_EQ_INT(split_bad, 0);
    CHECK_EQ_INT(bare_out, 0);
    CHECK_EQ_INT(end_bad, 0);
}

int main(void)
{
    test_basic_end();
    test_pipelined();
    test_smuggling(&DATA_N);
    test_smuggling(&DATA_R);
    test_unstuff();
    test_size();
    test_longline();
    test_8bit_nul();
    test_bdat();
    test_binary();
    test_model_exhaustive();
    return check_result("test_dotstuff");
}
