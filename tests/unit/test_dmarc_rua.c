/* Unit tests for mailauth/dmarc_rua: mailto: URIs of a rua read into one
 * mailbox (or refused), which destinations need the RFC 7489 §7.1
 * confirmation, its question, and the answers that confirm or do not. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "mailauth/dmarc_rua.h"
#include "mailauth/psl.h"

static int mailto(const char *uri, struct dmarc_rua_dest *d)
{
    struct dmarc_uri u = {.max_bytes = 1234};
    strcpy(u.uri, uri);
    return dmarc_rua_mailto(&u, d);
}

static void test_mailto(void)
{
    struct dmarc_rua_dest d;
    CHECK_EQ_INT(mailto("mailto:agg@Example.COM", &d), 0);
    CHECK_EQ_STR(d.addr, "agg@Example.COM");
    CHECK_EQ_STR(d.domain, "example.com");
    CHECK_EQ_INT(d.max_bytes, 1234);
    CHECK_EQ_INT(mailto("MAILTO:agg@example.com", &d), 0);
    /* %-encoded octets; the hfields after '?' are never taken. */
    CHECK_EQ_INT(mailto("mailto:a%2Bb@example.com?subject=x&bcc=victim@example.net", &d), 0);
    CHECK_EQ_STR(d.addr, "a+b@example.com");
    CHECK_EQ_INT(mailto("https://example.com/dmarc", &d), -EPROTONOSUPPORT);
    CHECK_EQ_INT(mailto("mail:agg@example.com", &d), -EPROTONOSUPPORT);
    static const char *const bad[] = {
        "mailto:",
        "mailto:agg",                        /* no domain */
        "mailto:a@x.example%2Cb@y.example",  /* a list is not one mailbox */
        "mailto:a@x.example,b@y.example",
        "mailto:a%00b@example.com",          /* NUL */
        "mailto:a%0D%0ABcc:x@example.com",   /* a line end */
        "mailto:a%2@example.com",            /* half an escape */
        "mailto:a%zz@example.com",
        "mailto:agg@example.com%",
        "mailto:agg@[192.0.2.1]",            /* an address literal: no DNS name */
        "mailto:<>",
        "mailto:\"a b\"@example.com",        /* a space, even quoted */
        "mailto:agg@ex..ample.com",
        "mailto:ag\xc3\xa9@example.com",     /* not ASCII */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = mailto(bad[i], &d);
        if (rc != -EINVAL)
            fprintf(stderr, "  accepted %s\n", bad[i]);
        CHECK_EQ_INT(rc, -EINVAL);
    }
}

static void test_external(void)
{
    CHECK(!dmarc_rua_external("example.com", "example.com"));
    CHECK(!dmarc_rua_external("news.example.com", "EXAMPLE.com"));
    CHECK(!dmarc_rua_external("example.com", "reports.example.com"));
    CHECK(dmarc_rua_external("example.com", "example.net"));
    CHECK(dmarc_rua_external("a.example.co.uk", "b.example2.co.uk"));
    CHECK(!dmarc_rua_external("a.example.co.uk", "b.example.co.uk"));
    struct dnsq_question q;
    CHECK_EQ_INT(dmarc_rua_question("Example.com", "Reports.example.NET", &q), 0);
    CHECK_EQ_STR(q.name, "example.com._report._dmarc.reports.example.net");
    CHECK_EQ_INT(q.type, DNSQ_TXT);
    char longname[250];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    for (size_t i = 60; i < sizeof longname - 1; i += 61)
        longname[i] = '.';
    CHECK_EQ_INT(dmarc_rua_question(longname, "example.net", &q), -ENAMETOOLONG);
}

/* An answer of TXT records, each of the strings given ("" ends one). */
static int confirmed(enum dnsq_status status, const char *const *texts, size_t n)
{
    struct dnsq_str strs[8];
    struct dnsq_rr rrs[8];
    for (size_t i = 0; i < n; i++) {
        strs[i] = (struct dnsq_str){(const unsigned char *)texts[i], strlen(texts[i])};
        rrs[i].u.txt.strs = &strs[i];
        rrs[i].u.txt.n = 1;
    }
    struct dnsq_answer a = {status, status == DNSQ_OK ? n : 0, rrs};
    return dmarc_rua_confirmed("reports.example.net", &a);
}

static void test_confirmed(void)
{
    const char *plain[] = {"v=DMARC1"};
    CHECK(confirmed(DNSQ_OK, plain, 1));
    const char *semi[] = {"v=DMARC1;"};
    CHECK(confirmed(DNSQ_OK, semi, 1));
    const char *other[] = {"v=spf1 -all", "v=DMARC1; p=none"};
    CHECK(confirmed(DNSQ_OK, other, 2));
    const char *none[] = {"v=spf1 -all"};
    CHECK(!confirmed(DNSQ_OK, none, 1));
    const char *lower[] = {"v=dmarc1"}; /* "DMARC1" is case-sensitive (RFC 7489 §6.4) */
    CHECK(!confirmed(DNSQ_OK, lower, 1));
    CHECK(!confirmed(DNSQ_NXDOMAIN, plain, 0));
    CHECK(!confirmed(DNSQ_NODATA, plain, 0));
    CHECK(!confirmed(DNSQ_TEMPFAIL, plain, 0));
    /* A rua inside the destination's Organizational Domain is fine; one
     * pointing elsewhere again makes it no confirmation (§7.1). */
    const char *inside[] = {"v=DMARC1; rua=mailto:x@other.example.net"};
    CHECK(confirmed(DNSQ_OK, inside, 1));
    const char *away[] = {"v=DMARC1; rua=mailto:x@elsewhere.example"};
    CHECK(!confirmed(DNSQ_OK, away, 1));
    const char *https[] = {"v=DMARC1; rua=https://elsewhere.example/r"};
    CHECK(!confirmed(DNSQ_OK, https, 1));
    /* The strings of one record are joined before reading. */
    struct dnsq_str two[2] = {{(const unsigned char *)"v=DM", 4},
                              {(const unsigned char *)"ARC1", 4}};
    struct dnsq_rr rr = {.u.txt = {two, 2}};
    struct dnsq_answer a = {DNSQ_OK, 1, &rr};
    CHECK(dmarc_rua_confirmed("reports.example.net", &a));
}

int main(void)
{
    CHECK_EQ_INT(psl_org_init(), 0);
    test_mailto();
    test_external();
    test_confirmed();
    return check_result("test_dmarc_rua");
}
