/* Unit tests for mailauth/dkim_hdr: the end of the header section at every
 * split of the content, headers without an empty line, folded and odd
 * fields, the size limit, and the name index (counts, bottom-up order,
 * case, names that are absent, a hostile number of fields). */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "mailauth/dkim_hdr.h"

static struct dkim_hdr h;

static const char msg[] = "From: a\r\n"
                          "Subject: one\r\n"
                          "\ttwo\r\n"
                          "X-Bare: lf\nhere\r\n"
                          "From : b\r\n"
                          "no colon\r\n"
                          "\r\n"
                          "body\r\n\r\n";

static void field_is(size_t i, const char *text, const char *name)
{
    CHECK_EQ_MEM(dkim_hdr_at(&h, i), h.fields[i].len, text, strlen(text));
    CHECK_EQ_INT(h.fields[i].name_len, strlen(name));
    CHECK(strncmp(dkim_hdr_at(&h, i), name, strlen(name)) == 0);
}

static void check_msg(void)
{
    CHECK(h.done && !h.overflow);
    CHECK_EQ_INT(h.nfields, 5);
    field_is(0, "From: a", "From");
    field_is(1, "Subject: one\r\n\ttwo", "Subject");
    field_is(2, "X-Bare: lf\nhere", "X-Bare");
    field_is(3, "From : b", "From");
    field_is(4, "no colon", "");
    CHECK(dkim_hdr_is(&h, 3, "from"));
    CHECK(!dkim_hdr_is(&h, 2, "from"));
}

static void test_split(void)
{
    size_t n = strlen(msg), header = strstr(msg, "\r\n\r\n") + 4 - msg;
    for (size_t cut = 0; cut <= n; cut++) {
        dkim_hdr_reset(&h, 0);
        size_t used = dkim_hdr_feed(&h, msg, cut);
        if (!h.done)
            used += dkim_hdr_feed(&h, msg + cut, n - cut);
        else
            CHECK_EQ_INT(dkim_hdr_feed(&h, msg + cut, n - cut), 0);
        CHECK_EQ_INT(used, header);
        check_msg();
    }
    /* One octet at a time. */
    dkim_hdr_reset(&h, 0);
    size_t used = 0;
    for (size_t i = 0; i < n; i++)
        used += dkim_hdr_feed(&h, msg + i, 1);
    CHECK_EQ_INT(used, header);
    check_msg();
}

static void test_shapes(void)
{
    /* An empty header section. */
    dkim_hdr_reset(&h, 0);
    CHECK_EQ_INT(dkim_hdr_feed(&h, "\r\nbody", 6), 2);
    CHECK(h.done);
    CHECK_EQ_INT(h.nfields, 0);
    /* No empty line: the end of the content ends the header. */
    dkim_hdr_reset(&h, 0);
    CHECK_EQ_INT(dkim_hdr_feed(&h, "A: 1\r\nB: 2", 10), 10);
    CHECK(!h.done);
    dkim_hdr_end(&h);
    CHECK(h.done);
    CHECK_EQ_INT(h.nfields, 2);
    CHECK_EQ_MEM(dkim_hdr_at(&h, 1), h.fields[1].len, "B: 2", 4);
    /* A CR alone at the start of a line is no empty line. */
    dkim_hdr_reset(&h, 0);
    CHECK_EQ_INT(dkim_hdr_feed(&h, "A: 1\r\n\rx\r\n\r\n", 12), 12);
    CHECK(h.done);
    CHECK_EQ_INT(h.nfields, 2);
    CHECK_EQ_MEM(dkim_hdr_at(&h, 1), h.fields[1].len, "\rx", 2);
    /* CR CR LF ends a line with a CR in it. */
    dkim_hdr_reset(&h, 0);
    dkim_hdr_feed(&h, "A: 1\r\r\n\r\n", 9);
    CHECK(h.done);
    CHECK_EQ_MEM(dkim_hdr_at(&h, 0), h.fields[0].len, "A: 1\r", 5);
    /* A leading continuation line is a field without a name. */
    dkim_hdr_reset(&h, 0);
    dkim_hdr_feed(&h, " x\r\nA: 1\r\n\r\n", 12);
    CHECK_EQ_INT(h.nfields, 2);
    CHECK_EQ_INT(h.fields[0].name_len, 0);
    /* Over the limit: nothing usable, the end still found. */
    dkim_hdr_reset(&h, 16);
    CHECK_EQ_INT(dkim_hdr_feed(&h, "A: 12345678901234567890\r\n\r\nbody", 31), 27);
    CHECK(h.done && h.overflow);
    CHECK_EQ_INT(h.nfields, 0);
}

static void test_index(void)
{
    struct dkim_hdr_index x = {0};
    dkim_hdr_reset(&h, 0);
    dkim_hdr_feed(&h, msg, strlen(msg));
    dkim_hdr_index_add(&x, "FROM", 4);
    dkim_hdr_index_add(&x, "subject", 7);
    dkim_hdr_index_add(&x, "from", 4);
    dkim_hdr_index_add(&x, "to", 2);
    dkim_hdr_index_build(&x, &h);
    CHECK_EQ_INT(x.nnames, 3);
    int from = dkim_hdr_index_find(&x, "From", 4), to = dkim_hdr_index_find(&x, "to", 2);
    CHECK(from >= 0 && to >= 0);
    CHECK_EQ_INT(dkim_hdr_index_find(&x, "x-bare", 6), -ENOENT);
    CHECK_EQ_INT(dkim_hdr_index_count(&x, from), 2);
    CHECK_EQ_INT(dkim_hdr_index_count(&x, to), 0);
    CHECK_EQ_INT(dkim_hdr_index_from_bottom(&x, from, 0), 3); /* "From : b" */
    CHECK_EQ_INT(dkim_hdr_index_from_bottom(&x, from, 1), 0);
    CHECK_EQ_INT(dkim_hdr_index_count(&x, dkim_hdr_index_find(&x, "SUBJECT", 7)), 1);

    /* 100,000 fields of one name and a From: built in linear time, and
     * reusable. */
    struct buf b = BUF_INIT;
    for (int i = 0; i < 100000; i++)
        buf_puts(&b, "X: y\r\n");
    buf_puts(&b, "From: z\r\n\r\n");
    dkim_hdr_reset(&h, 0);
    dkim_hdr_feed(&h, b.data, b.len);
    CHECK_EQ_INT(h.nfields, 100001);
    dkim_hdr_index_reset(&x);
    dkim_hdr_index_add(&x, "from", 4);
    dkim_hdr_index_add(&x, "x", 1);
    dkim_hdr_index_build(&x, &h);
    CHECK_EQ_INT(dkim_hdr_index_count(&x, dkim_hdr_index_find(&x, "x", 1)), 100000);
    CHECK_EQ_INT(dkim_hdr_index_from_bottom(&x, dkim_hdr_index_find(&x, "from", 4), 0), 100000);
    buf_free(&b);
    dkim_hdr_index_free(&x);
}

int main(void)
{
    dkim_hdr_init(&h);
    test_split();
    test_shapes();
    test_index();
    dkim_hdr_free(&h);
    return check_result("test_dkim_hdr");
}
