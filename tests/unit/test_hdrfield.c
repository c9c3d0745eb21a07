/* Unit tests for mail/hdrfield: header fields judged one by one as the
 * content streams in, and the check of a block of fields tern adds. */
#include <string.h>
#include <strings.h>

#include "check.h"
#include "mail/hdrfield.h"

struct seen {
    int n;
    int incomplete;
    char names[16][64];
};

/* Drops every field named "X-Drop" (any case). */
static bool drop_x(void *arg, const char *name, size_t name_len, const char *f, size_t n,
                   bool complete)
{
    struct seen *s = arg;
    if (s->n < 16 && name_len < 64) {
        memcpy(s->names[s->n], name, name_len);
        s->names[s->n][name_len] = '\0';
    }
    s->n++;
    if (!complete)
        s->incomplete++;
    (void)f;
    (void)n;
    return name_len == 6 && strncasecmp(name, "X-Drop", 6) == 0;
}

/* Runs in through the filter in pieces of `step` octets (0: whole). */
static void run(const char *in, size_t n, size_t step, struct buf *out, struct seen *s)
{
    struct hdrfield h;
    memset(s, 0, sizeof *s);
    hdrfield_init(&h, drop_x, s);
    buf_reset(out);
    if (step == 0)
        step = n ? n : 1;
    for (size_t i = 0; i < n; i += step)
        hdrfield_feed(&h, in + i, i + step > n ? n - i : step, out);
    hdrfield_end(&h, out);
    hdrfield_free(&h);
}

static void expect(const char *in, const char *want)
{
    struct buf out = BUF_INIT;
    struct seen s;
    size_t n = strlen(in);
    /* Every way of splitting it gives the same result. */
    for (size_t step = 0; step <= n; step++) {
        run(in, n, step, &out, &s);
        CHECK_EQ_MEM(out.data, out.len, want, strlen(want));
    }
    buf_free(&out);
}

static void test_fields(void)
{
    expect("A: 1\r\nX-Drop: 2\r\nB: 3\r\n\r\nbody\r\nX-Drop: in the body\r\n",
           "A: 1\r\nB: 3\r\n\r\nbody\r\nX-Drop: in the body\r\n");
    /* Folded values go with their field. */
    expect("X-Drop: a\r\n b\r\n\tc\r\nA: 1\r\n\r\n", "A: 1\r\n\r\n");
    expect("A: 1\r\n x\r\nX-DROP : obsolete space\r\n y\r\n\r\nz", "A: 1\r\n x\r\n\r\nz");
    /* LF line ends (BINARYMIME content is kept as it came). */
    expect("X-Drop: a\nB: 2\n\nX-Drop: body\n", "B: 2\n\nX-Drop: body\n");
    /* The last field, with no body and no final line end. */
    expect("A: 1\r\nX-Drop: last", "A: 1\r\n");
    expect("X-Drop: last\r\n", "");
    /* A line that is no field ends the header (as hdrscan decides). */
    expect("A: 1\r\nnot a field\r\nX-Drop: body now\r\n",
           "A: 1\r\nnot a field\r\nX-Drop: body now\r\n");
    expect(" leading space\r\nX-Drop: 1\r\n", " leading space\r\nX-Drop: 1\r\n");
    expect(":no name\r\nX-Drop: 1\r\n", ":no name\r\nX-Drop: 1\r\n");
    /* No header at all. */
    expect("\r\nX-Drop: body\r\n", "\r\nX-Drop: body\r\n");
    expect("", "");
}

static void test_names(void)
{
    struct buf out = BUF_INIT;
    struct seen s;
    const char *in = "Received: x\r\nFrom: a\r\n b\r\nSubject : y\r\n\r\nTo: body\r\n";
    run(in, strlen(in), 3, &out, &s);
    CHECK_EQ_INT(s.n, 3);
    CHECK_EQ_STR(s.names[0], "Received");
    CHECK_EQ_STR(s.names[1], "From");
    CHECK_EQ_STR(s.names[2], "Subject");
    CHECK_EQ_INT(s.incomplete, 0);
    buf_free(&out);
}

static void test_long_field(void)
{
    /* Over the hold: judged on its start, the rest follows, split or not. */
    size_t big = HDRFIELD_HOLD_MAX * 2 + 7;
    struct buf in = BUF_INIT, out = BUF_INIT;
    buf_puts(&in, "A: 1\r\nX-Drop: ");
    for (size_t i = 0; i < big; i++) {
        if (i % 100 == 99)
            buf_puts(&in, "\r\n"); /* folded: the next line starts with a space */
        buf_putc(&in, i % 100 == 99 ? ' ' : 'x');
    }
    buf_puts(&in, "\r\n folded\r\nB: 2\r\n\r\nbody");
    struct seen s;
    for (size_t step = 1000; step <= in.len; step *= 7) {
        run(in.data, in.len, step, &out, &s);
        CHECK_EQ_INT(out.len, 18);
        CHECK(out.len == 18 && memcmp(out.data, "A: 1\r\nB: 2\r\n\r\nbody", 18) == 0);
        CHECK_EQ_INT(s.incomplete, 1);
    }
    /* A kept long field passes whole. */
    buf_reset(&in);
    buf_puts(&in, "Keep: ");
    for (size_t i = 0; i < big; i++)
        buf_putc(&in, 'k');
    buf_puts(&in, "\r\n\r\nbody");
    run(in.data, in.len, 4096, &out, &s);
    CHECK(out.len == in.len && memcmp(out.data, in.data, in.len) == 0);
    buf_free(&in);
    buf_free(&out);
}

static void test_block_ok(void)
{
    CHECK(hdrfield_block_ok("A: 1\r\n", 6));
    const char *ar = "Authentication-Results: mx.test;\r\n spf=pass\r\nB: 2\r\n";
    CHECK(hdrfield_block_ok(ar, strlen(ar)));
    CHECK(!hdrfield_block_ok("", 0));
    CHECK(!hdrfield_block_ok("A: 1", 4));              /* no line end */
    CHECK(!hdrfield_block_ok("A: 1\n", 5));            /* bare LF */
    CHECK(!hdrfield_block_ok("A: 1\r\n\r\n", 8));      /* an empty line ends the header */
    CHECK(!hdrfield_block_ok(" A: 1\r\n", 7));         /* a continuation first */
    CHECK(!hdrfield_block_ok("A 1\r\n", 5));           /* no field */
    CHECK(!hdrfield_block_ok(": 1\r\n", 5));           /* no name */
    CHECK(!hdrfield_block_ok("A: 1\r2\r\n", 8));       /* bare CR */
    CHECK(!hdrfield_block_ok("A: \0\r\n", 6));         /* NUL */
    CHECK(!hdrfield_block_ok("A: 1\r\n.\r\n", 9));     /* a line that is no field */
}

int main(void)
{
    test_fields();
    test_names();
    test_long_field();
    test_block_ok();
    return check_result("test_hdrfield");
}
