/* Unit tests for mailauth/dmarc_report: rows filled from an evaluation,
 * their line format read back exactly, malformed lines refused, and the
 * Appendix C XML (structure, escaping, counting identical rows, IPv6 in
 * the schema's form). tests/dmarc/report_xsd.py validates the XML
 * against the RFC's schema. */
#include <errno.h>
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
    struct dmarc_domain d = dom();
    struct dmarc_report_msg m = msg();
    struct dmarc_report_row row;
    dmarc_report_row_fill(&row, &d, &m);
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

int main(void)
{
    test_fill_and_line();
    test_bad_lines();
    test_xml();
    return check_result("test_dmarc_report");
}
