/* Unit tests for mailauth/spf, check_host() against fixed DNS data (an
 * in-memory zone, dnsq_zone.h): the identities, every mechanism, include
 * and redirect, the exp explanation, the limits of RFC 7208 §4.6.4 and
 * the flags that tell them, temporary failures, the batches and the
 * resumable interface (answers in any order, refused twice, timeouts,
 * reuse). The OpenSPF suite (tests/spf/) covers the RFC case by case. */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "base/buf.h"
#include "check.h"
#include "dnsq_zone.h"
#include "mailauth/spf.h"

static struct zone z;
static struct spf_check *c;
static int rounds;

static void reset(void)
{
    zone_clear(&z);
}

static void start(enum spf_identity id, const char *ip, const char *mailfrom, const char *helo)
{
    struct spf_params p = {.identity = id,
                           .mail_from = mailfrom,
                           .helo = helo,
                           .receiver = "mx.tern.test",
                           .now = 1234567890};
    CHECK_EQ_INT(spf_ip_parse(&p.ip, ip), 0);
    spf_check_start(c, &p);
}

static enum spf_result run(const char *ip, const char *mailfrom, const char *helo)
{
    z.log[0] = '\0';
    z.asked = 0;
    start(SPF_ID_MAILFROM, ip, mailfrom, helo);
    rounds = zone_run(&z, c);
    CHECK(rounds >= 0);
    return spf_check_result(c);
}

/* How many times line occurs in the zone's question log. */
static int asked(const char *line)
{
    int n = 0;
    size_t len = strlen(line);
    for (const char *p = z.log; (p = strstr(p, line)) != NULL; p += len)
        if ((p == z.log || p[-1] == '\n') && p[len] == '\n')
            n++;
    return n;
}

static void test_basic(void)
{
    reset();
    zone_txt(&z, "example.com", "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ~all");
    zone_txt(&z, "example.com", "some other text");
    CHECK_EQ_INT(run("192.0.2.7", "alice@example.com", "mail.example.com"), SPF_PASS);
    CHECK_EQ_STR(spf_check_reason(c), "example.com: matched ip4:192.0.2.0/24");
    CHECK_EQ_STR(spf_check_domain(c), "example.com");
    CHECK_EQ_INT(spf_check_lookups(c), 1);
    CHECK_EQ_INT(spf_check_limits(c), 0);
    CHECK(spf_check_explanation(c) == NULL);
    CHECK_EQ_INT(run("2001:db8:1::25", "alice@example.com", "x"), SPF_PASS);
    CHECK_EQ_INT(run("198.51.100.1", "alice@example.com", "x"), SPF_SOFTFAIL);
    CHECK_EQ_STR(spf_check_reason(c), "example.com: matched ~all");
    /* An IPv4-mapped client is IPv4 (§5): ip4 matches, ip6 does not. */
    CHECK_EQ_INT(run("::ffff:192.0.2.7", "alice@example.com", "x"), SPF_PASS);
    CHECK_EQ_STR(spf_check_reason(c), "example.com: matched ip4:192.0.2.0/24");
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::ffff:192.0.2.9", &sin6.sin6_addr);
    struct spf_ip ip;
    CHECK_EQ_INT(spf_ip_from_sockaddr(&ip, (struct sockaddr *)&sin6), 0);
    CHECK_EQ_INT(ip.family, AF_INET);
    CHECK_EQ_MEM(ip.addr, 4, "\xc0\x00\x02\x09", 4);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    CHECK_EQ_INT(spf_ip_from_sockaddr(&ip, (struct sockaddr *)&sin), 0);
    CHECK_EQ_MEM(ip.addr, 4, "\x7f\x00\x00\x01", 4);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    CHECK_EQ_INT(spf_ip_from_sockaddr(&ip, (struct sockaddr *)&sun), -EAFNOSUPPORT);
    CHECK_EQ_INT(spf_ip_parse(&ip, "192.0.2"), -EINVAL);

    /* No record, NXDOMAIN, several records, a record in two strings. */
    CHECK_EQ_INT(run("192.0.2.7", "a@nothing.example.com", "x"), SPF_NONE);
    CHECK_EQ_STR(spf_check_reason(c), "nothing.example.com: no SPF record");
    zone_txt(&z, "text.example.com", "v=spf10 +all");
    CHECK_EQ_INT(run("192.0.2.7", "a@text.example.com", "x"), SPF_NONE);
    zone_txt(&z, "two.example.com", "v=spf1 +all");
    zone_txt(&z, "two.example.com", "V=SPF1 +all");
    CHECK_EQ_INT(run("192.0.2.7", "a@two.example.com", "x"), SPF_PERMERROR);
    CHECK_EQ_STR(spf_check_reason(c), "two.example.com: multiple SPF records");
    const char *parts[] = {"v=spf1 ip4:192.0.2.", "7 -all"};
    const size_t lens[] = {19, 6};
    zone_txt_n(&z, "split.example.com", 2, parts, lens);
    CHECK_EQ_INT(run("192.0.2.7", "a@split.example.com", "x"), SPF_PASS);
    zone_txt(&z, "bad.example.com", "v=spf1 a:x.example.com moo -all");
    CHECK_EQ_INT(run("192.0.2.7", "a@bad.example.com", "x"), SPF_PERMERROR);
    CHECK_EQ_STR(spf_check_reason(c), "bad.example.com: unknown mechanism moo");
    zone_txt(&z, "empty.example.com", "v=spf1");
    CHECK_EQ_INT(run("192.0.2.7", "a@empty.example.com", "x"), SPF_NEUTRAL);
    CHECK_EQ_STR(spf_check_reason(c), "empty.example.com: no mechanism matched");
}

static void test_identities(void)
{
    reset();
    zone_txt(&z, "example.com", "v=spf1 -all exp=why.example.com");
    zone_txt(&z, "why.example.com", "%{s} %{l} %{o} %{d} %{h}");
    zone_txt(&z, "helo.example.com", "v=spf1 -all exp=why.example.com");
    CHECK_EQ_INT(run("192.0.2.1", "bob@example.com", "helo.example.com"), SPF_FAIL);
    CHECK_EQ_STR(spf_check_explanation(c),
                 "bob@example.com bob example.com example.com helo.example.com");
    /* No local-part: postmaster (§4.3). */
    CHECK_EQ_INT(run("192.0.2.1", "@example.com", "helo.example.com"), SPF_FAIL);
    CHECK_EQ_STR(spf_check_explanation(c),
                 "postmaster@example.com postmaster example.com example.com helo.example.com");
    /* The null path, and the HELO identity: postmaster@<HELO> (§2.3). */
    CHECK_EQ_INT(run("192.0.2.1", "", "helo.example.com"), SPF_FAIL);
    CHECK_EQ_STR(spf_check_domain(c), "helo.example.com");
    CHECK_EQ_STR(spf_check_explanation(c), "postmaster@helo.example.com postmaster "
                                           "helo.example.com helo.example.com helo.example.com");
    CHECK_EQ_INT(run("192.0.2.1", NULL, "helo.example.com"), SPF_FAIL);
    z.log[0] = '\0';
    start(SPF_ID_HELO, "192.0.2.1", "bob@example.com", "helo.example.com");
    CHECK(zone_run(&z, c) >= 0);
    CHECK_EQ_INT(spf_check_result(c), SPF_FAIL);
    CHECK_EQ_STR(spf_check_domain(c), "helo.example.com");
    CHECK_EQ_INT(asked("TXT helo.example.com"), 1);
    CHECK_EQ_INT(asked("TXT example.com"), 0);
    /* A final dot is no different. */
    CHECK_EQ_INT(run("192.0.2.1", "bob@example.com.", "x"), SPF_FAIL);
    CHECK_EQ_STR(spf_check_domain(c), "example.com");

    /* §4.3: a malformed or single-label domain is none, asking nothing. */
    const char *bad[] = {"bob@[192.0.2.1]", "bob@localhost", "bob@", "bob", "bob@a..example.com",
                         "bob@.example.com", "bob@x\ty.example.com", "bob@example.com.."};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ_INT(run("192.0.2.1", bad[i], "x"), SPF_NONE);
        CHECK_EQ_INT(spf_check_lookups(c), 0);
        CHECK_EQ_INT(rounds, 0);
    }
    char longd[300] = "bob@";
    for (int i = 0; i < 4; i++)
        strcat(longd, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.");
    strcat(longd, "com");
    CHECK_EQ_INT(run("192.0.2.1", longd, "x"), SPF_NONE);
    CHECK_EQ_INT(spf_check_lookups(c), 0);
    CHECK_EQ_INT(run("192.0.2.1", "", "[192.0.2.1]"), SPF_NONE);
    CHECK_EQ_STR(spf_check_reason(c), "not a valid domain: [192.0.2.1]");
}

static void test_a_mx(void)
{
    reset();
    zone_txt(&z, "a.example.com", "v=spf1 a a:other.example.com/24//64 -all");
    zone_addr(&z, "a.example.com", "192.0.2.10");
    zone_addr(&z, "other.example.com", "198.51.100.200");
    zone_addr(&z, "other.example.com", "2001:db8:5::1");
    CHECK_EQ_INT(run("192.0.2.10", "x@a.example.com", "h"), SPF_PASS);
    CHECK_EQ_STR(spf_check_reason(c), "a.example.com: matched a");
    CHECK_EQ_INT(run("198.51.100.9", "x@a.example.com", "h"), SPF_PASS);
    CHECK_EQ_STR(spf_check_reason(c), "a.example.com: matched a:other.example.com/24//64");
    CHECK_EQ_INT(asked("AAAA a.example.com"), 0);
    CHECK_EQ_INT(run("2001:db8:5::ffff", "x@a.example.com", "h"), SPF_PASS);
    CHECK_EQ_INT(asked("AAAA a.example.com"), 1);
    CHECK_EQ_INT(asked("A a.example.com"), 0);
    CHECK_EQ_INT(run("2001:db8:6::1", "x@a.example.com", "h"), SPF_FAIL);

    /* mx: the MX names' addresses in one batch; a null MX matches nothing. */
    zone_txt(&z, "m.example.com", "v=spf1 mx mx:null.example.com -all");
    zone_mx(&z, "m.example.com", 10, "mx1.example.com");
    zone_mx(&z, "m.example.com", 20, "mx2.example.com.");
    zone_addr(&z, "mx1.example.com", "192.0.2.1");
    zone_addr(&z, "mx2.example.com", "192.0.2.2");
    zone_mx(&z, "null.example.com", 0, ".");
    CHECK_EQ_INT(run("192.0.2.2", "x@m.example.com", "h"), SPF_PASS);
    CHECK_EQ_INT(rounds, 3); /* TXT, MX, both addresses */
    CHECK_EQ_INT(run("192.0.2.3", "x@m.example.com", "h"), SPF_FAIL);
    CHECK_EQ_INT(asked("MX null.example.com"), 1);
    CHECK_EQ_INT(spf_check_lookups(c), 5);
    /* A temporary failure of one host: a match on another wins. */
    zone_timeout(&z, "mx1.example.com", DNSQ_A);
    CHECK_EQ_INT(run("192.0.2.2", "x@m.example.com", "h"), SPF_PASS);
    CHECK_EQ_INT(run("192.0.2.3", "x@m.example.com", "h"), SPF_TEMPERROR);
    CHECK_EQ_STR(spf_check_reason(c), "m.example.com: DNS failure at mx");

    /* §4.6.4: more than 10 MX names is permerror, even with a match. */
    zone_txt(&z, "ten.example.com", "v=spf1 mx -all");
    zone_txt(&z, "eleven.example.com", "v=spf1 mx -all");
    for (int i = 0; i < 11; i++) {
        char host[64];
        snprintf(host, sizeof host, "h%d.example.com", i);
        zone_addr(&z, host, "192.0.2.50");
        if (i < 10)
            zone_mx(&z, "ten.example.com", (unsigned)i, host);
        zone_mx(&z, "eleven.example.com", (unsigned)i, host);
    }
    CHECK_EQ_INT(run("192.0.2.50", "x@ten.example.com", "h"), SPF_PASS);
    CHECK_EQ_INT(spf_check_limits(c), 0);
    CHECK_EQ_INT(run("192.0.2.50", "x@eleven.example.com", "h"), SPF_PERMERROR);
    CHECK_EQ_INT(spf_check_limits(c), SPF_LIMIT_MX);
    CHECK_EQ_STR(spf_check_reason(c), "eleven.example.com: more than 10 MX names at mx");
    CHECK_EQ_INT(spf_check_lookups(c), 2);

    /* exists asks A whatever the client; any record matches. */
    zone_txt(&z, "e.example.com", "v=spf1 exists:%{ir}.%{v}.list.example.com -all");
    zone_addr(&z, "1.2.0.192.in-addr.list.example.com", "127.0.0.2");
    CHECK_EQ_INT(run("192.0.2.1", "x@e.example.com", "h"), SPF_PASS);
    CHECK_EQ_INT(run("192.0.2.9", "x@e.example.com", "h"), SPF_FAIL);
    zone_txt(&z, "e6.example.com", "v=spf1 exists:%{i}.list.example.com -all");
    zone_addr(&z, "2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.list.example.com",
              "127.0.0.2");
    CHECK_EQ_INT(run("2001:db8::1", "x@e6.example.com", "h"), SPF_PASS);
    CHECK_EQ_INT(asked("A 2.0.0.1.0.D.B.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1"
                       ".list.example.com"),
                 1);
}

static void test_ptr(void)
{
    reset();
    zone_txt(&z, "p.example.com", "v=spf1 ptr -all");
    zone_txt(&z, "q.example.com", "v=spf1 ptr:example.org ptr:Example.COM -all");
    zone_ptr(&z, "10.2.0.192.in-addr.arpa", "mail.other.example");
    zone_ptr(&z, "10.2.0.192.in-addr.arpa", "fake.p.example.com");
    zone_ptr(&z, "10.2.0.192.in-addr.arpa", "mail.p.example.com");
    zone_addr(&z, "mail.p.example.com", "192.0.2.10");
    zone_addr(&z, "fake.p.example.com", "192.0.2.99");
    zone_addr(&z, "mail.other.example", "192.0.2.10");
    CHECK_EQ_INT(run("192.0.2.10", "x@p.example.com", "h"), SPF_PASS);
    /* Only names under the target are validated, in one batch. */
    CHECK_EQ_INT(asked("A mail.other.example"), 0);
    CHECK_EQ_INT(asked("A fake.p.example.com"), 1);
    CHECK_EQ_INT(rounds, 3);
    CHECK_EQ_INT(run("192.0.2.10", "x@q.example.com", "h"), SPF_PASS);
    CHECK_EQ_STR(spf_check_reason(c), "q.example.com: matched ptr:Example.COM");
    CHECK_EQ_INT(asked("PTR 10.2.0.192.in-addr.arpa"), 1);
    /* A name that does not resolve back is not validated. */
    zone_ptr(&z, "11.2.0.192.in-addr.arpa", "fake.p.example.com");
    CHECK_EQ_INT(run("192.0.2.11", "x@p.example.com", "h"), SPF_FAIL);
    /* A failed PTR lookup is no match, not temperror (§5.5). */
    zone_timeout(&z, "12.2.0.192.in-addr.arpa", 0);
    CHECK_EQ_INT(run("192.0.2.12", "x@p.example.com", "h"), SPF_FAIL);
    /* IPv6 reverse names are nibbles. */
    zone_ptr(&z, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
             "v6.p.example.com");
    zone_addr(&z, "v6.p.example.com", "2001:db8::1");
    CHECK_EQ_INT(run("2001:db8::1", "x@p.example.com", "h"), SPF_PASS);

    /* %{p}: <domain> itself, then a subdomain, then any validated name;
     * "unknown" without one. The PTR lookup is shared with ptr. */
    zone_txt(&z, "pm.example.com", "v=spf1 ptr:nowhere.example -all exp=pm-why.example.com");
    zone_txt(&z, "pm-why.example.com", "from %{p}");
    zone_ptr(&z, "20.2.0.192.in-addr.arpa", "a.elsewhere.example");
    zone_ptr(&z, "20.2.0.192.in-addr.arpa", "b.pm.example.com");
    zone_ptr(&z, "20.2.0.192.in-addr.arpa", "bad.pm.example.com");
    zone_addr(&z, "a.elsewhere.example", "192.0.2.20");
    zone_addr(&z, "b.pm.example.com", "192.0.2.20");
    CHECK_EQ_INT(run("192.0.2.20", "x@pm.example.com", "h"), SPF_FAIL);
    CHECK_EQ_STR(spf_check_explanation(c), "from b.pm.example.com");
    CHECK_EQ_INT(asked("PTR 20.2.0.192.in-addr.arpa"), 1);
    zone_ptr(&z, "21.2.0.192.in-addr.arpa", "a.elsewhere.example");
    zone_addr(&z, "a.elsewhere.example", "192.0.2.21");
    CHECK_EQ_INT(run("192.0.2.21", "x@pm.example.com", "h"), SPF_FAIL);
    CHECK_EQ_STR(spf_check_explanation(c), "from a.elsewhere.example");
    CHECK_EQ_INT(run("192.0.2.22", "x@pm.example.com", "h"), SPF_FAIL);
    CHECK_EQ_STR(spf_check_explanation(c), "from unknown");

    /* §4.6.4: only the first 10 PTR names count. */
    zone_txt(&z, "many.example.com", "v=spf1 ptr -all");
    for (int i = 0; i < 12; i++) {
        char host[64];
        snprintf(host, sizeof host, "n%d.many.example.com", i);
        zone_ptr(&z, "30.2.0.192.in-addr.arpa", host);
        if (i >= 10)
            zone_addr(&z, host, "192.0.2.30");
    }
    CHECK_EQ_INT(run("192.0.2.30", "x@many.example.com", "h"), SPF_FAIL);
    CHECK_EQ_INT(spf_check_limits(c), SPF_LIMIT_PTR);
    CHECK_EQ_INT(asked("A n10.many.example.com"), 0);
    CHECK_EQ_INT(spf_check_lookups(c), 12); /* TXT, PTR, 10 addresses */
}

static void test_include_redirect(void)
{
    reset();
    zone_txt(&z, "pass.example.com", "v=spf1 ip4:192.0.2.1 -all");
    zone_txt(&z, "soft.example.com", "v=spf1 ~all");
    zone_txt(&z, "perm.example.com", "v=spf1 include");
    zone_timeout(&z, "temp.example.com", DNSQ_TXT);
    zone_txt(&z, "i1.example.com", "v=spf1 include:pass.example.com -all");
    zone_txt(&z, "i2.example.com", "v=spf1 include:soft.example.com ?all");
    zone_txt(&z, "i3.example.com", "v=spf1 include:none.example.com ?all");
    zone_txt(&z, "i4.example.com", "v=spf1 include:temp.example.com ?all");
    zone_txt(&z, "i5.example.com", "v=spf1 include:perm.example.com ?all");
    zone_txt(&z, "i6.example.com", "v=spf1 -include:%{d}.pass.example.com ?all");
    CHECK_EQ_INT(run("192.0.2.1", "x@i1.example.com", "h"), SPF_PASS);
    CHECK_EQ_STR(spf_check_reason(c), "i1.example.com: matched include:pass.example.com");
    CHECK_EQ_INT(run("192.0.2.2", "x@i1.example.com", "h"), SPF_FAIL);
    CHECK_EQ_INT(run("192.0.2.1", "x@i2.example.com", "h"), SPF_NEUTRAL);
    CHECK_EQ_INT(run("192.0.2.1", "x@i3.example.com", "h"), SPF_PERMERROR);
    CHECK_EQ_STR(spf_check_reason(c), "i3.example.com: no SPF record at include:none.example.com");
    CHECK_EQ_INT(run("192.0.2.1", "x@i4.example.com", "h"), SPF_TEMPERROR);
    CHECK_EQ_STR(spf_check_reason(c), "temp.example.com: DNS failure on TXT");
    CHECK_EQ_INT(run("192.0.2.1", "x@i5.example.com", "h"), SPF_PERMERROR);
    CHECK_EQ_STR(spf_check_reason(c), "perm.example.com: bad domain-spec include");
    /* The included check's %{d} is its own domain. */
    zone_txt(&z, "i6.example.com.pass.example.com", "v=spf1 a:%{d} -all");
    zone_addr(&z, "i6.example.com.pass.example.com", "192.0.2.6");
    CHECK_EQ_INT(run("192.0.2.6", "x@i6.example.com", "h"), SPF_FAIL);

    /* redirect: a new <domain>, none is permerror, ignored after "all". */
    zone_txt(&z, "r1.example.com", "v=spf1 ip4:192.0.2.9 redirect=_spf.example.com");
    zone_txt(&z, "_spf.example.com", "v=spf1 a -all exp=why.%{d}");
    zone_addr(&z, "_spf.example.com", "192.0.2.5");
    zone_txt(&z, "why._spf.example.com", "%{d} says no");
    zone_txt(&z, "r2.example.com", "v=spf1 redirect=none.example.com");
    zone_txt(&z, "r3.example.com", "v=spf1 ?all redirect=_spf.example.com");
    zone_txt(&z, "r4.example.com", "v=spf1 redirect=%{l}.example.com");
    CHECK_EQ_INT(run("192.0.2.5", "x@r1.example.com", "h"), SPF_PASS);
    CHECK_EQ_STR(spf_check_reason(c), "_spf.example.com: matched a");
    CHECK_EQ_STR(spf_check_domain(c), "r1.example.com");
    CHECK_EQ_INT(run("192.0.2.6", "x@r1.example.com", "h"), SPF_FAIL);
    CHECK_EQ_STR(spf_check_explanation(c), "_spf.example.com says no");
    CHECK_EQ_INT(run("192.0.2.5", "x@r2.example.com", "h"), SPF_PERMERROR);
    CHECK_EQ_STR(spf_check_reason(c), "none.example.com: no SPF record after redirect");
    CHECK_EQ_INT(run("192.0.2.5", "x@r3.example.com", "h"), SPF_NEUTRAL);
    CHECK_EQ_INT(asked("TXT _spf.example.com"), 0);
    CHECK_EQ_INT(run("192.0.2.5", "a..b@r4.example.com", "h"), SPF_PERMERROR);
    CHECK_EQ_STR(spf_check_reason(c), "r4.example.com: redirect to an invalid domain");
    /* An include does not take the target's explanation; the including
     * record's own exp is used. */
    zone_txt(&z, "i7.example.com", "v=spf1 include:_spf.example.com -all exp=i7why.example.com");
    zone_txt(&z, "i7why.example.com", "not from %{d}");
    CHECK_EQ_INT(run("192.0.2.7", "x@i7.example.com", "h"), SPF_FAIL);
    CHECK_EQ_STR(spf_check_explanation(c), "not from i7.example.com");
}

static void test_limits(void)
{
    reset();
    /* §4.6.4: 10 DNS-querying terms in all, includes and redirect too. */
    zone_txt(&z, "t10.example.com", "v=spf1 a a a a a a a a a include:t1.example.com -all");
    zone_txt(&z, "t11.example.com", "v=spf1 a a a a a a a a a a redirect=t1.example.com");
    zone_txt(&z, "t1.example.com", "v=spf1 ip4:192.0.2.1 -all");
    for (int i = 0; i < 3; i++)
        zone_addr(&z, i == 0 ? "t10.example.com" : i == 1 ? "t11.example.com" : "t1.example.com",
                  "198.51.100.1");
    CHECK_EQ_INT(run("192.0.2.1", "x@t10.example.com", "h"), SPF_PASS);
    CHECK_EQ_INT(spf_check_limits(c), 0);
    CHECK_EQ_INT(run("192.0.2.1", "x@t11.example.com", "h"), SPF_PERMERROR);
    CHECK_EQ_INT(spf_check_limits(c), SPF_LIMIT_TERMS);
    CHECK_EQ_STR(spf_check_reason(c),
                 "t11.example.com: more than 10 DNS-querying terms at redirect");
    /* ip4, ip6, all and exp cost nothing. */
    zone_txt(&z, "free.example.com", "v=spf1 a a a a a a a a a a ip4:192.0.2.2 ip6:::1 "
                                     "-all exp=e.example.com");
    zone_addr(&z, "free.example.com", "198.51.100.1");
    zone_txt(&z, "e.example.com", "no");
    CHECK_EQ_INT(run("192.0.2.3", "x@free.example.com", "h"), SPF_FAIL);
    CHECK_EQ_STR(spf_check_explanation(c), "no");
    /* A loop ends at the limit. */
    zone_txt(&z, "loop1.example.com", "v=spf1 include:loop2.example.com");
    zone_txt(&z, "loop2.example.com", "v=spf1 include:loop1.example.com");
    CHECK_EQ_INT(run("192.0.2.1", "x@loop1.example.com", "h"), SPF_PERMERROR);
    CHECK_EQ_INT(spf_check_limits(c), SPF_LIMIT_TERMS);
    CHECK_EQ_INT(spf_check_lookups(c), 11);
    zone_txt(&z, "self.example.com", "v=spf1 redirect=self.example.com");
    CHECK_EQ_INT(run("192.0.2.1", "x@self.example.com", "h"), SPF_PERMERROR);

    /* Two void lookups are allowed, the third is permerror; NODATA and
     * NXDOMAIN count alike, an exp lookup does not. */
    zone_present(&z, "nodata.example.com");
    zone_txt(&z, "v2.example.com", "v=spf1 a:nx.example.com mx:nodata.example.com ?all "
                                   "exp=nx.example.com");
    zone_txt(&z, "v3.example.com", "v=spf1 a:nx.example.com exists:nodata.example.com "
                                   "a:nx2.example.com ?all");
    CHECK_EQ_INT(run("192.0.2.1", "x@v2.example.com", "h"), SPF_NEUTRAL);
    CHECK_EQ_INT(spf_check_limits(c), 0);
    CHECK_EQ_INT(run("192.0.2.1", "x@v3.example.com", "h"), SPF_PERMERROR);
    CHECK_EQ_INT(spf_check_limits(c), SPF_LIMIT_VOID);
    CHECK_EQ_STR(spf_check_reason(c), "v3.example.com: more than 2 void lookups at "
                                      "a:nx2.example.com");
    zone_txt(&z, "fx.example.com", "v=spf1 a:nx.example.com a:nx2.example.com -all "
                                   "exp=nx3.example.com");
    CHECK_EQ_INT(run("192.0.2.1", "x@fx.example.com", "h"), SPF_FAIL);

    /* The most one check asks: 10 mx of 10 hosts each. */
    struct buf rec = BUF_INIT;
    buf_puts(&rec, "v=spf1");
    for (int m = 0; m < 10; m++) {
        char dom[64];
        snprintf(dom, sizeof dom, "m%d.big.example.com", m);
        buf_printf(&rec, " mx:%s", dom);
        for (int h = 0; h < 10; h++) {
            char host[128];
            snprintf(host, sizeof host, "h%d.%s", h, dom);
            zone_mx(&z, dom, (unsigned)h, host);
        }
    }
    zone_txt(&z, "big.example.com", rec.data);
    buf_free(&rec);
    CHECK_EQ_INT(run("192.0.2.1", "x@big.example.com", "h"), SPF_NEUTRAL);
    CHECK_EQ_INT(spf_check_lookups(c), 111);
    CHECK_EQ_INT(rounds, 21);
}

static void test_exp(void)
{
    reset();
    zone_txt(&z, "x.example.com", "v=spf1 -all exp=%{d2}.exp.example.com");
    zone_txt(&z, "example.com.exp.example.com", "%{c} is not one of %{d}'s senders; "
                                                "%{i} %{v} %{r} %{t} %%%_%- %{L}");
    CHECK_EQ_INT(run("2001:db8::cb01", "a+b@x.example.com", "h"), SPF_FAIL);
    CHECK_EQ_STR(spf_check_explanation(c),
                 "2001:db8::cb01 is not one of x.example.com's senders; "
                 "2.0.0.1.0.D.B.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.C.B.0.1 ip6 "
                 "mx.tern.test 1234567890 % %20 a%2Bb");
    /* Anything wrong leaves no explanation, and the result alone. */
    zone_txt(&z, "two.example.com", "v=spf1 -all exp=two-exp.example.com");
    zone_txt(&z, "two-exp.example.com", "one");
    zone_txt(&z, "two-exp.example.com", "two");
    zone_txt(&z, "temp.example.com", "v=spf1 -all exp=temp-exp.example.com");
    zone_timeout(&z, "temp-exp.example.com", 0);
    zone_txt(&z, "syn.example.com", "v=spf1 -all exp=syn-exp.example.com");
    zone_txt(&z, "syn-exp.example.com", "The %{x}-files.");
    zone_txt(&z, "long.example.com", "v=spf1 -all exp=%{l}.example.com");
    const char *no[] = {"a@two.example.com", "a@temp.example.com", "a@syn.example.com",
                        "a..b@long.example.com"};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        CHECK_EQ_INT(run("192.0.2.1", no[i], "h"), SPF_FAIL);
        CHECK(spf_check_explanation(c) == NULL);
        CHECK(strstr(spf_check_reason(c), ": matched -all") != NULL);
    }
    /* Only a fail fetches it. */
    zone_txt(&z, "soft.example.com", "v=spf1 ~all exp=soft-exp.example.com");
    zone_txt(&z, "soft-exp.example.com", "x");
    CHECK_EQ_INT(run("192.0.2.1", "a@soft.example.com", "h"), SPF_SOFTFAIL);
    CHECK_EQ_INT(asked("TXT soft-exp.example.com"), 0);
    CHECK(spf_check_explanation(c) == NULL);
}

static void test_temperror(void)
{
    reset();
    zone_timeout(&z, "t.example.com", 0);
    zone_txt(&z, "a.example.com", "v=spf1 a:t.example.com -all");
    zone_txt(&z, "e.example.com", "v=spf1 exists:t.example.com -all");
    zone_txt(&z, "m.example.com", "v=spf1 mx:t.example.com -all");
    CHECK_EQ_INT(run("192.0.2.1", "x@t.example.com", "h"), SPF_TEMPERROR);
    CHECK_EQ_INT(run("192.0.2.1", "x@a.example.com", "h"), SPF_TEMPERROR);
    CHECK_EQ_STR(spf_check_reason(c), "a.example.com: DNS failure at a:t.example.com");
    CHECK_EQ_INT(run("192.0.2.1", "x@e.example.com", "h"), SPF_TEMPERROR);
    CHECK_EQ_INT(run("192.0.2.1", "x@m.example.com", "h"), SPF_TEMPERROR);
    /* A CNAME loop is a resolver's SERVFAIL. */
    zone_cname(&z, "c1.example.com", "c2.example.com");
    zone_cname(&z, "c2.example.com", "c1.example.com");
    CHECK_EQ_INT(run("192.0.2.1", "x@c1.example.com", "h"), SPF_TEMPERROR);
    zone_cname(&z, "alias.example.com", "a.example.com");
    CHECK_EQ_INT(run("192.0.2.1", "x@alias.example.com", "h"), SPF_TEMPERROR);
    CHECK_EQ_INT(asked("TXT alias.example.com"), 1);
}

static void test_interface(void)
{
    reset();
    zone_txt(&z, "m.example.com", "v=spf1 mx -all");
    zone_mx(&z, "m.example.com", 10, "mx1.example.com");
    zone_mx(&z, "m.example.com", 20, "mx2.example.com");
    zone_addr(&z, "mx1.example.com", "192.0.2.1");
    zone_addr(&z, "mx2.example.com", "192.0.2.2");

    /* Before a start, and after the end, there is nothing to answer. */
    struct spf_check *fresh = spf_check_new();
    const struct dnsq_question *q;
    CHECK_EQ_INT(spf_check_step(fresh), SPF_STEP_DONE);
    CHECK_EQ_INT(spf_check_questions(fresh, &q), 0);
    struct dnsq_answer nx = {.status = DNSQ_NXDOMAIN};
    CHECK_EQ_INT(spf_check_answer(fresh, 0, &nx), -EINVAL);
    spf_check_free(fresh);
    spf_check_free(NULL);

    start(SPF_ID_MAILFROM, "192.0.2.2", "x@m.example.com", "h");
    CHECK_EQ_INT(spf_check_step(c), SPF_STEP_DNS);
    CHECK_EQ_INT(spf_check_questions(c, &q), 1);
    CHECK_EQ_INT(q[0].type, DNSQ_TXT);
    CHECK_EQ_STR(q[0].name, "m.example.com");
    /* Stepping without the answer changes nothing. */
    CHECK_EQ_INT(spf_check_step(c), SPF_STEP_DNS);
    CHECK_EQ_INT(spf_check_questions(c, &q), 1);
    struct dnsq_answer a;
    zone_answer(&z, &q[0], &a);
    CHECK_EQ_INT(spf_check_answer(c, 1, &a), -EINVAL);
    CHECK_EQ_INT(spf_check_answer(c, 0, &a), 0);
    CHECK_EQ_INT(spf_check_answer(c, 0, &a), -EINVAL); /* twice */
    free((void *)a.rrs);
    CHECK_EQ_INT(spf_check_step(c), SPF_STEP_DNS);
    CHECK_EQ_INT(spf_check_questions(c, &q), 1);
    CHECK_EQ_INT(q[0].type, DNSQ_MX);
    zone_answer(&z, &q[0], &a);
    CHECK_EQ_INT(spf_check_answer(c, 0, &a), 0);
    free((void *)a.rrs);
    CHECK_EQ_INT(spf_check_step(c), SPF_STEP_DNS);
    CHECK_EQ_INT(spf_check_questions(c, &q), 2);
    CHECK_EQ_INT(q[0].type, DNSQ_A);
    CHECK_EQ_STR(q[0].name, "mx1.example.com");
    CHECK_EQ_STR(q[1].name, "mx2.example.com");
    /* Half a batch: still waiting. */
    zone_answer(&z, &q[1], &a);
    CHECK_EQ_INT(spf_check_answer(c, 1, &a), 0);
    free((void *)a.rrs);
    CHECK_EQ_INT(spf_check_step(c), SPF_STEP_DNS);
    /* The deadline passes: temperror, and late answers are refused. */
    spf_check_timeout(c);
    CHECK_EQ_INT(spf_check_step(c), SPF_STEP_DONE);
    CHECK_EQ_INT(spf_check_result(c), SPF_TEMPERROR);
    CHECK_EQ_STR(spf_check_reason(c), "m.example.com: time limit reached");
    CHECK_EQ_INT(spf_check_questions(c, &q), 0);
    CHECK_EQ_INT(spf_check_answer(c, 0, &nx), -EINVAL);
    spf_check_timeout(c); /* once done, nothing changes */
    CHECK_EQ_INT(spf_check_result(c), SPF_TEMPERROR);

    /* The same evaluator starts over, mid-check or not. */
    start(SPF_ID_MAILFROM, "192.0.2.2", "x@m.example.com", "h");
    CHECK_EQ_INT(spf_check_step(c), SPF_STEP_DNS);
    CHECK_EQ_INT(run("192.0.2.2", "x@m.example.com", "h"), SPF_PASS);
    CHECK_EQ_INT(run("192.0.2.3", "x@m.example.com", "h"), SPF_FAIL);
    CHECK_EQ_STR(spf_check_reason(c), "m.example.com: matched -all");
}

int main(void)
{
    c = spf_check_new();
    test_basic();
    test_identities();
    test_a_mx();
    test_ptr();
    test_include_redirect();
    test_limits();
    test_exp();
    test_temperror();
    test_interface();
    spf_check_free(c);
    zone_clear(&z);
    return check_result("test_spf");
}
