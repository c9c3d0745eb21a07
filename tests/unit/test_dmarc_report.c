/* Unit tests for mailauth/dmarc_report: rows filled from an evaluation,
 * their line format read back exactly, malformed lines refused, and the
 * Appendix C XML (structure, escaping, counting identical rows, IPv6 in
 * the schema's form). tests/dmarc/report_xsd.py validates the XML
 * against the RFC's schema. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "check.h"
#include "mailauth/dmarc_report.h"

static struct dmarc_domain dom(void)
{
    struct dmarc_domain d;
    memset(&d, 0, sizeof d);
    strcpy(d.from, "news.example.com");
    strcpy(d.org, "example.com");
    strcpy(d.policy_domain, "example.com");
    d.have_record = true;
    const char *rec = "v=DMARC1; p=reject; sp=quarantine; pct=50; fo=1:d; "
                      "rua=mailto:agg@example.com!10m,mailto:x@y.example";
    CHECK_EQ_INT(dmarc_record_parse(&d.rec, rec, strlen(rec), NULL), 0);
    d.result = DMARC_FAIL;
    d.policy = DMARC_POLICY_QUARANTINE;
    d.disposition = DMARC_POLICY_NONE;
    d.sampled_out = true;
    d.dkim_aligned_index = -1;
    return d;
}

static const struct dmarc_dkim dkims[] = {
    {DKIM_PASS, "Other.Example", "sel1"},
    {DKIM_FAIL, "example.com", NULL},
};

static struct dmarc_report_msg msg(void)
{
    struct dmarc_report_msg m = {1700000000, "::ffff:192.0.2.7", "Bounce.Example.com", NULL,
                                 SPF_SOFTFAIL, "bounce.example.com", false, dkims, 2,
                                 DMARC_POLICY_NONE, 0};
    return m;
}

/* The row of dom() and msg(). */
static void row_default(struct dmarc_report_row *row)
{
    struct dmarc_domain d = dom();
    struct dmarc_report_msg m = msg();
    CHECK_EQ_INT(dmarc_report_row_fill(row, &d, &m), 0);
}

static void test_fill_and_line(void)
{
    struct dmarc_domain d = dom();
    struct dmarc_report_msg m = msg();
    struct dmarc_report_row row, back;
    CHECK_EQ_INT(dmarc_report_row_fill(&row, &d, &m), 0);
    CHECK_EQ_STR(row.source_ip, "192.0.2.7");
    CHECK_EQ_STR(row.envelope_from, "bounce.example.com");
    CHECK_EQ_STR(row.header_from, "news.example.com");
    CHECK_EQ_INT(row.reasons, DMARC_REASON_SAMPLED_OUT);
    CHECK_EQ_INT(row.ndkim, 2);
    CHECK_EQ_STR(row.dkim[1].selector, "");
    struct buf b = BUF_INIT;
    dmarc_report_row_format(&row, &b);
    const char *want = "dmarc1\t1700000000\t192.0.2.7\texample.com\tnews.example.com\t"
                       "bounce.example.com\t-\tnone\tfail\tfail\tsampled_out\treject\t"
                       "quarantine\t50\tr\tr\t1:d\t"
                       "mailto:agg@example.com!10485760,mailto:x@y.example\tmfrom\tsoftfail\t"
                       "bounce.example.com\tpass\tOther.Example\tsel1\tfail\texample.com\t-\n";
    CHECK_EQ_STR(b.data, want);
    CHECK_EQ_INT(dmarc_report_row_parse(&back, b.data, b.len), 0);
    struct buf b2 = BUF_INIT;
    dmarc_report_row_format(&back, &b2);
    CHECK_EQ_STR(b2.data, b.data);

    /* A disposition other than the evaluated one is local policy. */
    m.applied = DMARC_POLICY_REJECT;
    CHECK_EQ_INT(dmarc_report_row_fill(&row, &d, &m), 0);
    CHECK_EQ_INT(row.reasons, DMARC_REASON_SAMPLED_OUT | DMARC_REASON_LOCAL_POLICY);
    m.reasons = DMARC_REASON_MAILING_LIST;
    CHECK_EQ_INT(dmarc_report_row_fill(&row, &d, &m), 0);
    CHECK_EQ_INT(row.reasons, DMARC_REASON_SAMPLED_OUT | DMARC_REASON_MAILING_LIST);

    /* Odd octets in fields survive the line; "-" and "" stay apart. */
    strcpy(row.dkim[0].selector, "-");
    strcpy(row.dkim[1].selector, "a%b\x01\xc3\xa9");
    row.ndkim = 2;
    buf_reset(&b);
    dmarc_report_row_format(&row, &b);
    CHECK(strstr(b.data, "\t%2D\t") != NULL);
    CHECK(strstr(b.data, "a%25b%01\xc3\xa9\n") != NULL);
    CHECK_EQ_INT(dmarc_report_row_parse(&back, b.data, b.len), 0);
    CHECK_EQ_STR(back.dkim[0].selector, "-");
    CHECK_EQ_STR(back.dkim[1].selector, "a%b\x01\xc3\xa9");

    /* No record, no address: no row. */
    d.have_record = false;
    CHECK_EQ_INT(dmarc_report_row_fill(&row, &d, &m), -EINVAL);
    d.have_record = true;
    m.source_ip = "not an ip";
    CHECK_EQ_INT(dmarc_report_row_fill(&row, &d, &m), -EINVAL);
    buf_free(&b);
    buf_free(&b2);
}

static void test_bad_lines(void)
{
    struct dmarc_report_row row;
    row_default(&row);
    struct buf b = BUF_INIT;
    dmarc_report_row_format(&row, &b);
    /* Each field in turn replaced with something invalid. */
    static const char *const repl[] = {
        "dmarc2", "12x",     "300.1.1.1", "a..b",  "",       "a\tb", "x%zz", "rejected",
        "passed", "fail2",   "sampled",   "nne",   "quar",   "101",  "x",    "y",
        "1:q",    "bogus",   "mfro",      "pasS",  "a..b",   "ok",   "-",    "%00",
    };
    size_t nf = 0;
    for (size_t i = 0; i < b.len; i++)
        nf += b.data[i] == '\t';
    nf++;
    for (size_t f = 0; f < nf && f < sizeof repl / sizeof repl[0]; f++) {
        struct buf t = BUF_INIT;
        size_t field = 0, start = 0;
        for (size_t i = 0; i <= b.len - 1; i++) {
            if (i < b.len - 1 && b.data[i] != '\t')
                continue;
            if (field)
                buf_putc(&t, '\t');
            if (field == f)
                buf_puts(&t, repl[f]);
            else
                buf_append(&t, b.data + start, i - start);
            field++;
            start = i + 1;
        }
        int rc = dmarc_report_row_parse(&row, t.data, t.len);
        if (rc != -EINVAL)
            fprintf(stderr, "  accepted field %zu as %s\n", f, repl[f]);
        CHECK_EQ_INT(rc, -EINVAL);
        buf_free(&t);
    }
    CHECK_EQ_INT(dmarc_report_row_parse(&row, "", 0), -EINVAL);
    CHECK_EQ_INT(dmarc_report_row_parse(&row, "dmarc1\n", 7), -EINVAL);
    /* A truncated line (a DKIM triple cut). */
    CHECK_EQ_INT(dmarc_report_row_parse(&row, b.data, b.len - 4), -EINVAL);
    /* Two lines are not one. */
    struct buf two = BUF_INIT;
    buf_append(&two, b.data, b.len);
    buf_append(&two, b.data, b.len);
    CHECK_EQ_INT(dmarc_report_row_parse(&row, two.data, two.len), -EINVAL);
    buf_free(&two);
    buf_free(&b);
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void test_xml(void)
{
    struct dmarc_domain d = dom();
    struct dmarc_report_msg m = msg();
    struct dmarc_report_row rows[4];
    dmarc_report_row_fill(&rows[0], &d, &m);
    m.time += 60;
    dmarc_report_row_fill(&rows[1], &d, &m); /* the same but for the time */
    m.source_ip = "2001:db8::7";
    m.envelope_to = "rcpt.example";
    dmarc_report_row_fill(&rows[2], &d, &m);
    m.source_ip = "192.0.2.7";
    strcpy(d.from, "example.com");
    d.dkim_aligned = true;
    d.sampled_out = false;
    m.ndkim = 0;
    dmarc_report_row_fill(&rows[3], &d, &m);
    strcpy(rows[3].header_from, "ex<am>&\"'ple.com");
    struct dmarc_report_meta meta = {"tern & co <mx>", "postmaster@mx.example", NULL,
                                     "1700000000.example.com", 1699920000, 1700006400};
    struct buf x = BUF_INIT;
    CHECK_EQ_INT(dmarc_report_xml(&meta, rows, 4, &x), 0);
    CHECK(strncmp(x.data, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n", 50) == 0);
    CHECK(strstr(x.data, "<org_name>tern &amp; co &lt;mx&gt;</org_name>") != NULL);
    CHECK(strstr(x.data, "<extra_contact_info>") == NULL);
    CHECK(strstr(x.data, "<domain>example.com</domain>\n    <adkim>r</adkim>") != NULL);
    CHECK(strstr(x.data, "<p>reject</p>\n    <sp>quarantine</sp>\n    <pct>50</pct>\n"
                         "    <fo>1:d</fo>") != NULL);
    CHECK_EQ_INT(count(x.data, "<record>"), 3);
    CHECK(strstr(x.data, "<count>2</count>") != NULL);
    CHECK_EQ_INT(count(x.data, "<count>1</count>"), 2);
    CHECK(strstr(x.data, "<source_ip>2001:db8:0:0:0:0:0:7</source_ip>") != NULL);
    CHECK(strstr(x.data, "<envelope_to>rcpt.example</envelope_to>") != NULL);
    CHECK(strstr(x.data, "<header_from>ex&lt;am&gt;&amp;&quot;&apos;ple.com</header_from>") !=
          NULL);
    CHECK(strstr(x.data, "<reason>\n          <type>sampled_out</type>") != NULL);
    CHECK(strstr(x.data, "<selector>sel1</selector>") != NULL);
    CHECK(strstr(x.data, "<scope>mfrom</scope>") != NULL);
    CHECK(strstr(x.data, "</feedback>\n") != NULL);

    /* Mixed policy domains, no rows, missing metadata: refused. */
    strcpy(rows[1].policy_domain, "other.example");
    size_t len = x.len;
    CHECK_EQ_INT(dmarc_report_xml(&meta, rows, 4, &x), -EINVAL);
    CHECK_EQ_INT(dmarc_report_xml(&meta, rows, 0, &x), -EINVAL);
    meta.email = NULL;
    CHECK_EQ_INT(dmarc_report_xml(&meta, rows, 1, &x), -EINVAL);
    CHECK_EQ_INT(x.len, len);
    buf_free(&x);
}

/* What a message cannot make into a row field is left out, so every
 * row filled reads back. */
static void test_fill_sanitizes(void)
{
    struct dmarc_domain d = dom();
    struct dmarc_report_msg m = msg();
    static const struct dmarc_dkim odd[] = {
        {DKIM_PASS, "", "s"},
        {DKIM_FAIL, "a..b", "s"},
        {DKIM_PASS, "ok.example", "s2"},
    };
    m.envelope_from = "x..example";
    m.spf_domain = "not..a.name";
    m.dkim = odd;
    m.ndkim = 3;
    struct dmarc_report_row row, back;
    CHECK_EQ_INT(dmarc_report_row_fill(&row, &d, &m), 0);
    CHECK_EQ_STR(row.envelope_from, "");
    CHECK_EQ_STR(row.spf_domain, "");
    CHECK_EQ_INT(row.ndkim, 1);
    CHECK_EQ_STR(row.dkim[0].domain, "ok.example");
    struct buf b = BUF_INIT;
    dmarc_report_row_format(&row, &b);
    CHECK_EQ_INT(dmarc_report_row_parse(&back, b.data, b.len), 0);
    buf_free(&b);
}

static struct dmarc_report_meta meta1 = {"org", "r@mx.example", NULL, "id1", 1699920000,
                                         1700006399};

/* Rows of several domains: one report each, identical rows counted
 * once with their count, the newest record's policy published, and the
 * same report whatever the order of the rows. */
static void test_agg(void)
{
    struct dmarc_domain d = dom();
    struct dmarc_report_msg m = msg();
    struct dmarc_report_row rows[5];
    dmarc_report_row_fill(&rows[0], &d, &m);
    m.time += 10;
    dmarc_report_row_fill(&rows[1], &d, &m);
    m.source_ip = "192.0.2.99";
    dmarc_report_row_fill(&rows[2], &d, &m);
    strcpy(d.policy_domain, "other.example");
    strcpy(d.from, "other.example");
    m.time += 10;
    dmarc_report_row_fill(&rows[3], &d, &m);
    /* A later record of example.com with another policy. */
    strcpy(d.policy_domain, "example.com");
    strcpy(d.from, "example.com");
    const char *rec = "v=DMARC1; p=quarantine; rua=mailto:new@example.com";
    CHECK_EQ_INT(dmarc_record_parse(&d.rec, rec, strlen(rec), NULL), 0);
    m.time += 10;
    m.source_ip = "192.0.2.7";
    dmarc_report_row_fill(&rows[4], &d, &m);

    struct dmarc_report_agg *a = dmarc_report_agg_new();
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(dmarc_report_agg_add(a, &rows[i]), 0);
    CHECK_EQ_INT(dmarc_report_agg_count(a), 2);
    CHECK_EQ_STR(dmarc_report_agg_policy(a, 0)->policy_domain, "example.com");
    CHECK_EQ_STR(dmarc_report_agg_policy(a, 1)->policy_domain, "other.example");
    CHECK(dmarc_report_agg_policy(a, 2) == NULL);
    CHECK_EQ_INT(dmarc_report_agg_messages(a, 0), 4);
    CHECK_EQ_INT(dmarc_report_agg_records(a, 0), 3); /* rows 0 and 1 are one record */
    CHECK_EQ_INT(dmarc_report_agg_messages(a, 1), 1);
    const struct dmarc_report_row *pol = dmarc_report_agg_policy(a, 0);
    CHECK_EQ_INT(pol->p, DMARC_POLICY_QUARANTINE);
    CHECK_EQ_INT(pol->nrua, 1);
    CHECK_EQ_STR(pol->rua[0].uri, "mailto:new@example.com");
    struct buf x = BUF_INIT, y = BUF_INIT;
    CHECK_EQ_INT(dmarc_report_agg_xml(a, 0, &meta1, &x), 0);
    CHECK_EQ_INT(count(x.data, "<record>"), 3);
    CHECK_EQ_INT(count(x.data, "<count>2</count>"), 1);
    CHECK(strstr(x.data, "<p>quarantine</p>") != NULL);
    CHECK(strstr(x.data, "other.example") == NULL);
    CHECK_EQ_INT(dmarc_report_agg_xml(a, 2, &meta1, &y), -EINVAL);
    CHECK_EQ_INT(y.len, 0);
    dmarc_report_agg_free(a);

    /* The other order: the same report. */
    a = dmarc_report_agg_new();
    for (int i = 4; i >= 0; i--)
        CHECK_EQ_INT(dmarc_report_agg_add(a, &rows[i]), 0);
    CHECK_EQ_INT(dmarc_report_agg_xml(a, 0, &meta1, &y), 0);
    CHECK_EQ_STR(y.data, x.data);
    dmarc_report_agg_free(a);
    buf_free(&x);
    buf_free(&y);
}

/* Past DMARC_REPORT_DOMAINS_MAX reports a new domain is refused; rows
 * of the domains already there still count. */
static void test_agg_limits(void)
{
    struct dmarc_report_row row;
    row_default(&row);
    struct dmarc_report_agg *a = dmarc_report_agg_new();
    int rc = 0;
    for (int i = 0; i < DMARC_REPORT_DOMAINS_MAX && rc == 0; i++) {
        snprintf(row.policy_domain, sizeof row.policy_domain, "d%d.example", i);
        rc = dmarc_report_agg_add(a, &row);
    }
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(dmarc_report_agg_count(a), DMARC_REPORT_DOMAINS_MAX);
    strcpy(row.policy_domain, "one.more.example");
    CHECK_EQ_INT(dmarc_report_agg_add(a, &row), -ENOSPC);
    strcpy(row.policy_domain, "d7.example");
    CHECK_EQ_INT(dmarc_report_agg_add(a, &row), 0);
    /* Found again through the table after it grew. */
    for (size_t i = 0; i < dmarc_report_agg_count(a); i++)
        if (strcmp(dmarc_report_agg_policy(a, i)->policy_domain, "d7.example") == 0)
            CHECK_EQ_INT(dmarc_report_agg_messages(a, i), 2);
    dmarc_report_agg_free(a);
}

/* A file's text in pieces of every size: the same counts; torn, long,
 * malformed and out-of-period lines counted apart. */
static void test_reader(void)
{
    struct dmarc_report_row row;
    row_default(&row);
    struct buf file = BUF_INIT;
    dmarc_report_row_format(&row, &file);
    dmarc_report_row_format(&row, &file);
    buf_puts(&file, "garbage\n\n");
    for (int i = 0; i < DMARC_REPORT_LINE_MAX + 10; i++)
        buf_putc(&file, 'x');
    buf_putc(&file, '\n');
    row.time = 1600000000; /* another day */
    dmarc_report_row_format(&row, &file);
    row.time = 1700000001;
    dmarc_report_row_format(&row, &file);
    size_t whole = file.len;
    buf_puts(&file, "dmarc1\t1700000002\t192.0"); /* torn */
    static const size_t pieces[] = {1, 2, 7, 100, 4096, 1 << 20};
    for (size_t p = 0; p < sizeof pieces / sizeof pieces[0]; p++) {
        struct dmarc_report_agg *a = dmarc_report_agg_new();
        struct dmarc_report_reader r;
        dmarc_report_reader_init(&r, a, 1699920000, 1700006400);
        for (size_t i = 0; i < file.len; i += pieces[p])
            dmarc_report_reader_feed(&r, file.data + i,
                                     file.len - i < pieces[p] ? file.len - i : pieces[p]);
        dmarc_report_reader_end(&r);
        CHECK_EQ_INT(r.rows, 3);
        CHECK_EQ_INT(r.malformed, 4); /* garbage, empty, too long, torn */
        CHECK_EQ_INT(r.outside, 1);
        CHECK_EQ_INT(r.full, 0);
        CHECK_EQ_INT(dmarc_report_agg_messages(a, 0), 3);
        CHECK_EQ_INT(dmarc_report_agg_records(a, 0), 1);
        dmarc_report_reader_free(&r);
        dmarc_report_agg_free(a);
    }
    /* The file without its torn end: nothing malformed at the end. */
    struct dmarc_report_agg *a = dmarc_report_agg_new();
    struct dmarc_report_reader r;
    dmarc_report_reader_init(&r, a, 1699920000, 1700006400);
    dmarc_report_reader_feed(&r, file.data, whole);
    dmarc_report_reader_end(&r);
    CHECK_EQ_INT(r.malformed, 3);
    dmarc_report_reader_free(&r);
    dmarc_report_agg_free(a);
    /* add_line's own outcomes. */
    a = dmarc_report_agg_new();
    buf_reset(&file);
    dmarc_report_row_format(&row, &file);
    CHECK_EQ_INT(dmarc_report_agg_add_line(a, file.data, file.len, 0, 1700000001), -ERANGE);
    CHECK_EQ_INT(dmarc_report_agg_add_line(a, file.data, file.len, 1700000001, 1700000002), 0);
    CHECK_EQ_INT(dmarc_report_agg_add_line(a, "dmarc1", 6, 0, 1), -EINVAL);
    dmarc_report_agg_free(a);
    buf_free(&file);
}

int main(void)
{
    test_fill_and_line();
    test_bad_lines();
    test_xml();
    test_fill_sanitizes();
    test_agg();
    test_agg_limits();
    test_reader();
    return check_result("test_dmarc_report");
}
