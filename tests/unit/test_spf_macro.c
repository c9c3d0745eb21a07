/* Unit tests for mailauth/spf_macro: the examples of RFC 7208 §7.4, the
 * transformers and delimiters, URL escaping, the escapes, the letters
 * each kind of string admits, the domain-end rule, the size cap, and the
 * names spf_macro_domain() makes (final dot, 253-octet cut, bad labels). */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "check.h"
#include "mailauth/spf_macro.h"

/* §7.4: sender strong-bad@email.example.com, IPv4 192.0.2.3. */
static const struct spf_macro_vars v4 = {
    .s = "strong-bad@email.example.com",
    .l = "strong-bad",
    .o = "email.example.com",
    .d = "email.example.com",
    .i = "192.0.2.3",
    .p = "mx.example.org",
    .v = "in-addr",
    .h = "mx.example.org",
    .c = "192.0.2.3",
    .r = "receiver.example.net",
    .t = "1700000000",
};

static void expect(const struct spf_macro_vars *v, enum spf_macro_kind kind, const char *in,
                   const char *want)
{
    struct buf b = BUF_INIT;
    int rc = spf_macro_expand(in, strlen(in), kind, v, &b);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_STR(b.data ? b.data : "", want);
    buf_free(&b);
}

static void expect_bad(const char *in, enum spf_macro_kind kind)
{
    CHECK_EQ_INT(spf_macro_check(in, strlen(in), kind, NULL), -EINVAL);
    struct buf b = BUF_INIT;
    buf_puts(&b, "keep");
    CHECK_EQ_INT(spf_macro_expand(in, strlen(in), kind, &v4, &b), -EINVAL);
    CHECK_EQ_STR(b.data, "keep");
    buf_free(&b);
}

static void expect_good(const char *in, enum spf_macro_kind kind)
{
    int rc = spf_macro_check(in, strlen(in), kind, NULL);
    CHECK_EQ_INT(rc, 0);
    if (rc)
        fprintf(stderr, "  refused: %s\n", in);
}

static void test_rfc_examples(void)
{
    const enum spf_macro_kind d = SPF_MACRO_DOMAIN;
    expect(&v4, d, "%{s}", "strong-bad@email.example.com");
    expect(&v4, d, "%{o}", "email.example.com");
    expect(&v4, d, "%{d}", "email.example.com");
    expect(&v4, d, "%{d4}", "email.example.com");
    expect(&v4, d, "%{d3}", "email.example.com");
    expect(&v4, d, "%{d2}", "example.com");
    expect(&v4, d, "%{d1}", "com");
    expect(&v4, d, "%{dr}", "com.example.email");
    expect(&v4, d, "%{d2r}", "example.email");
    expect(&v4, d, "%{l}", "strong-bad");
    expect(&v4, d, "%{l-}", "strong.bad");
    expect(&v4, d, "%{lr}", "strong-bad");
    expect(&v4, d, "%{lr-}", "bad.strong");
    expect(&v4, d, "%{l1r-}", "strong");
    expect(&v4, d, "%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com");
    expect(&v4, d, "%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com");
    expect(&v4, d, "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
           "bad.strong.lp.3.2.0.192.in-addr._spf.example.com");
    expect(&v4, d, "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}",
           "3.2.0.192.in-addr.strong.lp._spf.example.com");
    expect(&v4, d, "%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net");

    /* The IPv6 example, 2001:db8::cb01 (our nibbles are upper case). */
    struct spf_macro_vars v6 = v4;
    v6.i = "2.0.0.1.0.D.B.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.C.B.0.1";
    v6.v = "ip6";
    struct buf b = BUF_INIT;
    const char *in = "%{ir}.%{v}._spf.%{d2}";
    CHECK_EQ_INT(spf_macro_expand(in, strlen(in), d, &v6, &b), 0);
    CHECK(strcasecmp(b.data, "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"
                             ".ip6._spf.example.com") == 0);
    buf_free(&b);
}

static void test_transformers(void)
{
    struct spf_macro_vars v = v4;
    const enum spf_macro_kind d = SPF_MACRO_DOMAIN;
    v.l = "philip-gladstone-test";
    expect(&v, d, "%{l2r-}", "gladstone.philip");
    v.l = "foo-bar+zip+quux";
    expect(&v, d, "%{l2r+-}", "bar.foo");
    expect(&v, d, "%{l+-}", "foo.bar.zip.quux");
    expect(&v, d, "%{l1}", "foo-bar+zip+quux"); /* split on '.' only */
    expect(&v, d, "%{l2+}", "zip.quux");
    expect(&v, d, "%{lR-}", "bar+zip+quux.foo"); /* "R" is "r" (ABNF) */
    expect(&v, d, "%{d999}", "email.example.com");
    expect(&v, d, "%{d99999999999999999999r}", "com.example.email");
    expect(&v, d, "%{d01}", "com");
    /* Every delimiter, and empty parts kept. */
    v.l = "a.b-c+d,e/f_g=h";
    expect(&v, d, "%{l.-+,/_=}", "a.b.c.d.e.f.g.h");
    expect(&v, d, "%{lr.-+,/_=}", "h.g.f.e.d.c.b.a");
    v.l = "a..b";
    expect(&v, d, "%{l2}", ".b");
    expect(&v, d, "%{lr}", "b..a");
    v.l = "";
    expect(&v, d, "%{l}x.com", "x.com");
    expect(&v, d, "%{l3r}x.com", "x.com");
    v.l = "x.";
    expect(&v, d, "%{lr}", ".x");
    expect(&v, d, "%{l1}", "");
}

static void test_escapes(void)
{
    struct spf_macro_vars v = v4;
    v.l = "~jack&jill=up-a_b3.c";
    expect(&v, SPF_MACRO_EXP, "http://example.com/why.html?l=%{L}",
           "http://example.com/why.html?l=~jack%26jill%3Dup-a_b3.c");
    expect(&v4, SPF_MACRO_DOMAIN, "%{S}.x.com", "strong-bad%40email.example.com.x.com");
    v.h = "JUMPIN' JUPITER";
    expect(&v, SPF_MACRO_DOMAIN, "%{H}", "JUMPIN%27%20JUPITER");
    v.h = "\xc3\xa9t\xc3\xa9";
    expect(&v, SPF_MACRO_DOMAIN, "%{H}", "%C3%A9t%C3%A9");
    expect(&v4, SPF_MACRO_DOMAIN, "macro%%percent%_%_space%-url-space.example.com",
           "macro%percent  space%20url-space.example.com");
    /* exp text: spaces, c, r, t; p without a name is "unknown". */
    v = v4;
    v.p = NULL;
    v.r = NULL;
    expect(&v, SPF_MACRO_EXP, "%{c} via %{r} at %{t} from %{p}",
           "192.0.2.3 via unknown at 1700000000 from unknown");
    expect(&v4, SPF_MACRO_EXP, "%{r}", "receiver.example.net");
    expect(&v4, SPF_MACRO_EXP, "", "");
    expect(&v4, SPF_MACRO_UNKNOWN, "%{c}", "192.0.2.3");
}

static void test_syntax(void)
{
    const enum spf_macro_kind d = SPF_MACRO_DOMAIN, e = SPF_MACRO_EXP, u = SPF_MACRO_UNKNOWN;
    expect_bad("%", e);
    expect_bad("100%", e);
    expect_bad("%x", e);
    expect_bad("%(ir).sbl.example.com", d);
    expect_bad("foo%.sbl.example.com", d);
    expect_bad("%{", e);
    expect_bad("%{s", e);
    expect_bad("%{s2", e);
    expect_bad("%{s2r", e);
    expect_bad("%{s2r.", e);
    expect_bad("%{}", e);
    expect_bad("%{x}", e);
    expect_bad("%{a}.example.com", d);
    expect_bad("%{s0}", e);
    expect_bad("%{s00}", e);
    expect_bad("%{sr2}", e);  /* digits before r */
    expect_bad("%{s:}", e);   /* ':' is no delimiter */
    expect_bad("%{s }", e);
    expect_bad("The %{x}-files.", e);
    expect_bad("\xef\xbb\xbf" "Explanation", e);
    expect_bad("tab\there", e);
    expect_bad("a b.example.com", d); /* spaces only in exp */
    expect_bad("a b", u);
    /* c, r and t are exp-only (§7.3). */
    expect_bad("%{c}.example.com", d);
    expect_bad("%{r}.example.com", d);
    expect_bad("%{t}.example.com", d);
    expect_good("%{c}%{r}%{t}", e);
    expect_good("%{C}%{R}%{T}", u);
    /* domain-end = ( "." toplabel [ "." ] ) / macro-expand */
    expect_bad("", d);
    expect_bad("foo", d);
    expect_bad("foo.", d);
    expect_bad("foo..", d);
    expect_bad("foo.123", d);
    expect_bad("foo.-com", d);
    expect_bad("foo.com-", d);
    expect_bad("foo.c_m", d);
    expect_bad("%{d}com", d);
    expect_bad("%{d}.", d);
    expect_bad("%{d.}com", d); /* a macro's delimiter is not a dot */
    expect_good(".com", d);
    expect_good("x.com.", d);
    expect_good("x.1-2", d);
    expect_good("x.a", d);
    expect_good("%{d}", d);
    expect_good("foo.%{d}", d);
    expect_good("%{d}.com", d);
    expect_good("x.%%", d);
    expect_good("x%_", d);
    expect_good("%{ir}.%{v}._spf.%{d2}", d);
    expect_good("", e);
    expect_good("", u);
    uint32_t letters = 0;
    CHECK_EQ_INT(spf_macro_check("%{P}.%{i}.%{Dr}.com", 19, d, &letters), 0);
    CHECK_EQ_INT(letters, SPF_MACRO_BIT('p') | SPF_MACRO_BIT('i') | SPF_MACRO_BIT('d'));
}

static void test_limits(void)
{
    /* A record can ask for far more than any use: refused past the cap,
     * the output left as it was. */
    struct spf_macro_vars v = v4;
    char longs[1001];
    memset(longs, 'x', 1000);
    longs[1000] = '\0';
    v.s = longs;
    struct buf in = BUF_INIT, out = BUF_INIT;
    for (int i = 0; i < 30; i++)
        buf_puts(&in, "%{S}");
    buf_puts(&out, "keep");
    CHECK_EQ_INT(spf_macro_expand(in.data, in.len, SPF_MACRO_EXP, &v, &out), -E2BIG);
    CHECK_EQ_STR(out.data, "keep");
    buf_reset(&in);
    for (int i = 0; i < 8; i++)
        buf_puts(&in, "%{S}");
    buf_reset(&out);
    CHECK_EQ_INT(spf_macro_expand(in.data, in.len, SPF_MACRO_EXP, &v, &out), 0);
    CHECK_EQ_INT(out.len, 8000);
    buf_free(&in);
    buf_free(&out);
}

static void expect_domain(const struct spf_macro_vars *v, const char *in, int rc,
                          const char *want)
{
    struct buf scratch = BUF_INIT;
    char out[DNS_NAME_MAX] = "unset";
    CHECK_EQ_INT(spf_macro_domain(in, strlen(in), v, &scratch, out), rc);
    if (want)
        CHECK_EQ_STR(out, want);
    buf_free(&scratch);
}

static void test_domain(void)
{
    struct spf_macro_vars v = v4;
    expect_domain(&v, "%{d}.d.spf.example.com.", 0, "email.example.com.d.spf.example.com");
    expect_domain(&v, "o.spf.example.com.", 0, "o.spf.example.com");
    expect_domain(&v, "%{d2}", 0, "example.com");
    /* §7.3: over 253 octets, labels go from the left. The suite's case:
     * 7 + 8 * 30 + 11 = 258 octets lose "foobar.". */
    v.o = "somewhat.long.exp.example.com";
    expect_domain(&v, "foobar.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.example.com", 0,
                  "somewhat.long.exp.example.com.somewhat.long.exp.example.com."
                  "somewhat.long.exp.example.com.somewhat.long.exp.example.com."
                  "somewhat.long.exp.example.com.somewhat.long.exp.example.com."
                  "somewhat.long.exp.example.com.somewhat.long.exp.example.com.example.com");
    /* Exactly 253 stays; a label over 63, an empty label, or a single
     * label too long to cut are no names. */
    char l63[64], l57[58], name[300];
    memset(l63, 'a', 63);
    l63[63] = '\0';
    memset(l57, 'b', 57);
    l57[57] = '\0';
    snprintf(name, sizeof name, "%s.%s.%s.%s.com", l63, l63, l63, l57);
    CHECK_EQ_INT(strlen(name), 253);
    expect_domain(&v, name, 0, name);
    char over[320];
    snprintf(over, sizeof over, "x.%s", name);
    expect_domain(&v, over, 0, name);
    expect_domain(&v, "mail.example...com", -EDOM, NULL);
    expect_domain(&v, ".com", -EDOM, NULL);
    snprintf(name, sizeof name, "%sa.example.com", l63);
    expect_domain(&v, name, -EDOM, NULL);
    char huge[300];
    memset(huge, 'x', 260);
    huge[260] = '\0';
    v.l = huge;
    expect_domain(&v, "%{l}", -EDOM, NULL);
    expect_domain(&v, "%{l}.com", 0, "com"); /* the rule, taken literally */
    expect_domain(&v, "a:b", -EINVAL, NULL);
}

int main(void)
{
    test_rfc_examples();
    test_transformers();
    test_escapes();
    test_syntax();
    test_limits();
    test_domain();
    return check_result("test_spf_macro");
}
