/* Unit tests for mailauth/spf_record: the version test, every mechanism
 * and modifier with their arguments and CIDR lengths, the syntax errors
 * of RFC 7208 §4.6, §5, §6 and §12 with the term they name, and the
 * reuse of a record's storage. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "base/buf.h"
#include "check.h"
#include "mailauth/spf_macro.h"
#include "mailauth/spf_record.h"

static struct spf_record rec;

/* The span s of rec as a string (static buffer). */
static const char *span(struct spf_span s)
{
    static char out[512];
    memcpy(out, spf_record_at(&rec, s), s.len);
    out[s.len] = '\0';
    return out;
}

static void expect_bad(const char *text, const char *what, const char *term)
{
    struct spf_record_error err = {0};
    int rc = spf_record_parse(&rec, text, strlen(text), &err);
    CHECK_EQ_INT(rc, -EINVAL);
    if (rc == 0)
        fprintf(stderr, "  accepted: %s\n", text);
    CHECK_EQ_STR(err.what, what);
    char got[256];
    memcpy(got, text + err.term.off, err.term.len);
    got[err.term.len] = '\0';
    CHECK_EQ_STR(got, term);
    CHECK_EQ_INT(rec.nterms, 0);
}

static void expect_ok(const char *text)
{
    struct spf_record_error err = {0};
    int rc = spf_record_parse(&rec, text, strlen(text), &err);
    CHECK_EQ_INT(rc, 0);
    if (rc != 0)
        fprintf(stderr, "  refused: %s (%s)\n", text, err.what);
}

static void test_version(void)
{
    CHECK(spf_record_is_spf("v=spf1", 6));
    CHECK(spf_record_is_spf("v=spf1 -all", 11));
    CHECK(spf_record_is_spf("V=SpF1 a", 8)); /* ABNF strings ignore case */
    CHECK(!spf_record_is_spf("v=spf10", 7));
    CHECK(!spf_record_is_spf("v=spf1mx", 8)); /* TXT strings joined without space */
    CHECK(!spf_record_is_spf("v=spf", 5));
    CHECK(!spf_record_is_spf("", 0));
    CHECK(!spf_record_is_spf(" v=spf1", 7));
    CHECK(!spf_record_is_spf("v=spf1\t-all", 11)); /* SP only (§4.6.1) */
    expect_bad("v=spf2 -all", "not an SPF record", "v=spf2");
    expect_ok("v=spf1");
    CHECK_EQ_INT(rec.nterms, 0);
    expect_ok("v=spf1   ");
    CHECK_EQ_INT(rec.nterms, 0);
}

static void test_mechanisms(void)
{
    expect_ok("v=spf1 +all -include:_spf.example.com ~a ?a:mail.example.com/24 "
              "mx//64 mx:example.net/28//96 ptr ptr:example.org ip4:192.0.2.0/24 "
              "ip6:2001:db8::/32 exists:%{ir}.%{l1r+-}._spf.%{d}  ");
    CHECK_EQ_INT(rec.nterms, 11);
    const struct spf_term *t = rec.terms;
    CHECK_EQ_INT(t[0].mech, SPF_MECH_ALL);
    CHECK_EQ_INT(t[0].result, SPF_PASS);
    CHECK(rec.has_all);
    CHECK_EQ_INT(t[1].mech, SPF_MECH_INCLUDE);
    CHECK_EQ_INT(t[1].result, SPF_FAIL);
    CHECK_EQ_STR(span(t[1].spec), "_spf.example.com");
    CHECK_EQ_STR(span(t[1].text), "-include:_spf.example.com");
    CHECK_EQ_INT(t[2].mech, SPF_MECH_A);
    CHECK_EQ_INT(t[2].result, SPF_SOFTFAIL);
    CHECK_EQ_INT(t[2].spec.len, 0);
    CHECK_EQ_INT(t[2].cidr4, 32);
    CHECK_EQ_INT(t[2].cidr6, 128);
    CHECK_EQ_INT(t[3].result, SPF_NEUTRAL);
    CHECK_EQ_STR(span(t[3].spec), "mail.example.com");
    CHECK_EQ_INT(t[3].cidr4, 24);
    CHECK_EQ_INT(t[3].cidr6, 128);
    CHECK_EQ_INT(t[4].mech, SPF_MECH_MX);
    CHECK_EQ_INT(t[4].cidr4, 32);
    CHECK_EQ_INT(t[4].cidr6, 64);
    CHECK_EQ_STR(span(t[5].spec), "example.net");
    CHECK_EQ_INT(t[5].cidr4, 28);
    CHECK_EQ_INT(t[5].cidr6, 96);
    CHECK_EQ_INT(t[6].mech, SPF_MECH_PTR);
    CHECK_EQ_INT(t[6].spec.len, 0);
    CHECK_EQ_STR(span(t[7].spec), "example.org");
    CHECK_EQ_INT(t[8].mech, SPF_MECH_IP4);
    CHECK_EQ_MEM(t[8].addr, 4, "\xc0\x00\x02\x00", 4);
    CHECK_EQ_INT(t[8].cidr4, 24);
    CHECK_EQ_INT(t[9].mech, SPF_MECH_IP6);
    CHECK_EQ_MEM(t[9].addr, 4, "\x20\x01\x0d\xb8", 4);
    CHECK_EQ_INT(t[9].cidr6, 32);
    CHECK_EQ_INT(t[10].mech, SPF_MECH_EXISTS);
    CHECK_EQ_STR(span(t[10].spec), "%{ir}.%{l1r+-}._spf.%{d}");
    CHECK_EQ_INT(t[10].letters, SPF_MACRO_BIT('i') | SPF_MACRO_BIT('l') | SPF_MACRO_BIT('d'));
    CHECK_EQ_INT(rec.redirect.len, 0);
    CHECK_EQ_INT(rec.exp.len, 0);

    /* Mechanism names ignore case; a domain-spec may hold ':' and '/'
     * (only a trailing CIDR is one); 0 and the maxima are lengths. */
    expect_ok("v=spf1 A:foo:bar/baz.example.com MX:%{d}/0//0 IP4:10.0.0.1/32 "
              "Ip6:::ffff:1.2.3.4/128 a:%{d1/}/24 ptr:%{p}");
    CHECK_EQ_INT(rec.nterms, 6);
    CHECK_EQ_STR(span(rec.terms[0].spec), "foo:bar/baz.example.com");
    CHECK_EQ_INT(rec.terms[0].cidr4, 32);
    CHECK_EQ_STR(span(rec.terms[1].spec), "%{d}");
    CHECK_EQ_INT(rec.terms[1].cidr4, 0);
    CHECK_EQ_INT(rec.terms[1].cidr6, 0);
    CHECK_EQ_MEM(rec.terms[3].addr, 16, "\0\0\0\0\0\0\0\0\0\0\xff\xff\x01\x02\x03\x04", 16);
    CHECK_EQ_STR(span(rec.terms[4].spec), "%{d1/}");
    CHECK_EQ_INT(rec.terms[4].cidr4, 24);
    CHECK(rec.terms[5].letters & SPF_MACRO_BIT('p'));
    CHECK(!rec.has_all);

    /* Toplabels: letters, digits, '-' inside, not all digits. */
    expect_ok("v=spf1 a:foo.example.xn--zckzah a:x.1-2 a:x.a1 a:.com a:x.com.");
    expect_ok("v=spf1 a:macro%%percent%_%_space%-url-space.example.com");
}

static void test_modifiers(void)
{
    expect_ok("v=spf1 exp=explain.%{d} mx redirect=_spf.example.com");
    CHECK_EQ_INT(rec.nterms, 1);
    CHECK_EQ_STR(span(rec.redirect), "_spf.example.com");
    CHECK_EQ_STR(span(rec.exp), "explain.%{d}");
    CHECK_EQ_INT(rec.exp_letters, SPF_MACRO_BIT('d'));
    /* Unknown modifiers are checked and ignored (§6): their macro-string
     * may use every letter; names are ALPHA *(ALPHA / DIGIT / - _ .). */
    expect_ok("v=spf1 moo.cow-far_out=man:dog/cat default=pass x=%{c}%{r}%{t} y= "
              "REDIRECT=a.example.com EXP=b.example.com");
    CHECK_EQ_INT(rec.nterms, 0);
    CHECK_EQ_STR(span(rec.redirect), "a.example.com");
    CHECK_EQ_STR(span(rec.exp), "b.example.com");
    /* "mx=foo" is an unknown modifier, not a mechanism. */
    expect_ok("v=spf1 mx=foo");
    CHECK_EQ_INT(rec.nterms, 0);
}

static void test_errors(void)
{
    expect_bad("v=spf1 ip4:1.2.3.4 -all moo", "unknown mechanism", "moo");
    expect_bad("v=spf1 moo.cow/far_out=man:dog/cat", "unknown mechanism",
               "moo.cow/far_out=man:dog/cat");
    expect_bad("v=spf1 redirect:t2.example.com", "unknown mechanism",
               "redirect:t2.example.com");
    expect_bad("v=spf1 =all", "unknown mechanism", "=all");
    expect_bad("v=spf1 1up=foo", "unknown mechanism", "1up=foo");
    expect_bad("v=spf1 -exp=x.example.com", "unknown mechanism", "-exp=x.example.com");
    expect_bad("v=spf1 \x96" "all", "unknown mechanism", "\x96" "all");
    expect_bad("v=spf1 -all.", "junk after all", "-all.");
    expect_bad("v=spf1 all/8", "junk after all", "all/8");
    expect_bad("v=spf1 include", "bad domain-spec", "include");
    expect_bad("v=spf1 include:", "bad domain-spec", "include:");
    expect_bad("v=spf1 include:ip5.example.com/24", "bad domain-spec",
               "include:ip5.example.com/24");
    expect_bad("v=spf1 exists:mail.example.com/24", "bad domain-spec",
               "exists:mail.example.com/24");
    expect_bad("v=spf1 ptr/0", "bad domain-spec", "ptr/0");
    expect_bad("v=spf1 ptr:", "bad domain-spec", "ptr:");
    expect_bad("v=spf1 a:", "bad domain-spec", "a:");
    expect_bad("v=spf1 a:/24", "bad domain-spec", "a:/24");
    expect_bad("v=spf1 a:foo-bar", "bad domain-spec", "a:foo-bar");
    expect_bad("v=spf1 a:museum", "bad domain-spec", "a:museum");
    expect_bad("v=spf1 a:museum.", "bad domain-spec", "a:museum.");
    expect_bad("v=spf1 a:111.222.33.44", "bad domain-spec", "a:111.222.33.44");
    expect_bad("v=spf1 a:example.-com", "bad domain-spec", "a:example.-com");
    expect_bad("v=spf1 a:example.com-", "bad domain-spec", "a:example.com-");
    expect_bad("v=spf1 a:example.com:8080", "bad domain-spec", "a:example.com:8080");
    expect_bad("v=spf1 a:%{d}x", "bad domain-spec", "a:%{d}x");
    expect_bad("v=spf1 a:%{c}.example.com", "bad domain-spec", "a:%{c}.example.com");
    expect_bad("v=spf1 a:ctrl.example.com\rptr", "bad domain-spec", "a:ctrl.example.com\rptr");
    expect_bad("v=spf1 a:\xef\xbb\xbfgarbage.example.net", "bad domain-spec",
               "a:\xef\xbb\xbfgarbage.example.net");
    expect_bad("v=spf1 a/33", "bad CIDR length", "a/33");
    expect_bad("v=spf1 a//129", "bad CIDR length", "a//129");
    expect_bad("v=spf1 a/24/64", "bad CIDR length", "a/24/64");
    expect_bad("v=spf1 a/024", "bad CIDR length", "a/024");
    expect_bad("v=spf1 a/", "bad CIDR length", "a/");
    expect_bad("v=spf1 a.b", "bad CIDR length", "a.b");
    expect_bad("v=spf1 mx:foo.com/24/64", "bad domain-spec", "mx:foo.com/24/64");
    expect_bad("v=spf1 ip4", "no address", "ip4");
    expect_bad("v=spf1 ip4:1.2.3", "bad address", "ip4:1.2.3");
    expect_bad("v=spf1 ip4:1.2.3.4:8080", "bad address", "ip4:1.2.3.4:8080");
    expect_bad("v=spf1 ip4:01.2.3.4", "bad address", "ip4:01.2.3.4");
    expect_bad("v=spf1 ip4:256.2.3.4", "bad address", "ip4:256.2.3.4");
    expect_bad("v=spf1 ip4:1.2.3.4\n", "bad address", "ip4:1.2.3.4\n");
    expect_bad("v=spf1 ip4:1.2.3.4/33", "bad CIDR length", "ip4:1.2.3.4/33");
    expect_bad("v=spf1 ip4:1.2.3.4/032", "bad CIDR length", "ip4:1.2.3.4/032");
    expect_bad("v=spf1 ip4:1.2.3.4//32", "bad CIDR length", "ip4:1.2.3.4//32");
    expect_bad("v=spf1 ip6::CAFE::BABE", "bad address", "ip6::CAFE::BABE");
    expect_bad("v=spf1 ip6:::1.1.1.1/129", "bad CIDR length", "ip6:::1.1.1.1/129");
    expect_bad("v=spf1 ip6:::1.1.1.1//33", "bad CIDR length", "ip6:::1.1.1.1//33");
    expect_bad("v=spf1 ip6:1.2.3.4", "bad address", "ip6:1.2.3.4");
    expect_bad("v=spf1 ip6:fe80::1%eth0", "bad address", "ip6:fe80::1%eth0");
    expect_bad("v=spf1 exp= -all", "bad domain-spec", "exp=");
    expect_bad("v=spf1 exp=-all", "bad domain-spec", "exp=-all");
    expect_bad("v=spf1 ?all redirect=", "bad domain-spec", "redirect=");
    expect_bad("v=spf1 exp=%{r}.example.com", "bad domain-spec", "exp=%{r}.example.com");
    expect_bad("v=spf1 exp=a.example.com -all exp=b.example.com", "modifier given twice",
               "exp=b.example.com");
    expect_bad("v=spf1 redirect=a.example.com redirect=a.example.com", "modifier given twice",
               "redirect=a.example.com");
    expect_bad("v=spf1 -all foo=%abc", "bad macro in modifier", "foo=%abc");
    expect_bad("v=spf1 -exists:%(ir).sbl.example.com", "bad domain-spec",
               "-exists:%(ir).sbl.example.com");
    expect_bad("v=spf1 a:%{d0}.example.com", "bad domain-spec", "a:%{d0}.example.com");
    {
        const char nul[] = "v=spf1 a:foo.example.com\0";
        struct spf_record_error err = {0};
        CHECK_EQ_INT(spf_record_parse(&rec, nul, sizeof nul - 1, &err), -EINVAL);
        CHECK_EQ_STR(err.what, "bad domain-spec");
    }
}

static void test_storage(void)
{
    /* A long record, then a short one into the same storage. */
    struct buf big = BUF_INIT;
    buf_puts(&big, "v=spf1");
    for (int i = 0; i < 300; i++)
        buf_printf(&big, " ip4:10.0.%d.%d", i / 250, i % 250);
    CHECK_EQ_INT(spf_record_parse(&rec, big.data, big.len, NULL), 0);
    CHECK_EQ_INT(rec.nterms, 300);
    CHECK_EQ_MEM(rec.terms[299].addr, 4, "\x0a\x00\x01\x31", 4);
    expect_ok("v=spf1 a -all");
    CHECK_EQ_INT(rec.nterms, 2);
    CHECK_EQ_STR(rec.text, "v=spf1 a -all");
    buf_free(&big);

    /* The input is copied: changing it afterwards changes nothing. */
    char text[] = "v=spf1 include:a.example.com";
    CHECK_EQ_INT(spf_record_parse(&rec, text, strlen(text), NULL), 0);
    memset(text, 'x', strlen(text));
    CHECK_EQ_STR(span(rec.terms[0].spec), "a.example.com");

    /* Beyond what a TXT RR can hold. */
    struct buf huge = BUF_INIT;
    buf_puts(&huge, "v=spf1");
    while (huge.len <= 65535)
        buf_puts(&huge, " a");
    struct spf_record_error err = {0};
    CHECK_EQ_INT(spf_record_parse(&rec, huge.data, huge.len, &err), -EINVAL);
    CHECK_EQ_STR(err.what, "record too long");
    buf_free(&huge);

    CHECK_EQ_STR(spf_result_name(SPF_NONE), "none");
    CHECK_EQ_STR(spf_result_name(SPF_SOFTFAIL), "softfail");
    CHECK_EQ_STR(spf_result_name(SPF_PERMERROR), "permerror");
    CHECK_EQ_STR(spf_result_name((enum spf_result)99), "?");
}

int main(void)
{
    test_version();
    test_mechanisms();
    test_modifiers();
    test_errors();
    test_storage();
    spf_record_free(&rec);
    return check_result("test_spf_record");
}
