/* Unit tests for mailauth/dkim_sig: the DKIM-Signature field of RFC 6376
 * §3.5: the RFC 6376 Appendix A.2 and RFC 8463 fields, defaults, every
 * required tag, every tag's syntax, i= within d=, h= with From, x= after
 * t=, unknown tags, folds, the DNS name of the key, the limits. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "mailauth/dkim_sig.h"

static struct dkim_sig sig;
static struct buf tmp;
static const char *why;

static int parse(const char *v)
{
    why = NULL;
    return dkim_sig_parse(&sig, v, strlen(v), &tmp, &why);
}

#define GOOD_BH "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8="
#define GOOD_B "dzdVyOfAKCdLXdJOc9G2q8LoXSlEniSbav+yuU4zGeeruD00lszZVoG4ZHRNiYzR"
#define BASE "v=1; a=rsa-sha256; d=example.net; s=brisbane; h=from:to; bh=" GOOD_BH "; "

static void test_rfc_fields(void)
{
    /* A field in the shape of RFC 6376 Appendix A.2: folded and indented,
     * with q=, c=, an i= in a subdomain of d=, names in capitals with
     * white space around the colons, and a final ';'. */
    const char *a2 =
        " v=1; a=rsa-sha256; s=brisbane; d=example.com;\r\n"
        "      c=simple/simple; q=dns/txt; i=joe@football.example.com;\r\n"
        "      h=Received : From : To : Subject : Date : Message-ID;\r\n"
        "      bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
        "      b=AuUoFEfDxTDkHlLXSZEpZj79LICEps6eda7W3deTVFOk4yAUoqOB\r\n"
        "        4nujc7YopdG5dWLSdNg6xNAZpOPr+kHxt1IrE+NahM6L/LbvaHut\r\n"
        "        KVdkLLkpVaVVQPzeRDI009SO2Il5Lu7rDNH6mZckBdrIx0orEtZV\r\n"
        "        4bmp/YzhwvcubU4=;";
    CHECK_EQ_INT(parse(a2), 0);
    CHECK_EQ_INT(sig.sig_len, 128);
    CHECK_EQ_INT(sig.nh, 6);
    CHECK_EQ_INT(sig.h_from, 1);
    CHECK_EQ_INT(sig.h_subject, 1);
    CHECK_EQ_STR(sig.qname, "brisbane._domainkey.example.com");
    CHECK_EQ_INT(sig.b_len, strlen(strstr(a2, "b=AuU")) - 3); /* without "b=" and ";" */
    const char *within = "v=1; a=rsa-sha256; s=brisbane; d=example.net; c=simple/simple;"
                         " q=dns/txt; i=joe@football.example.com; h=Received : From : To;"
                         " bh=" GOOD_BH "; b=" GOOD_B;
    CHECK_EQ_INT(parse(within), -EINVAL);
    within = "v=1; a=rsa-sha256; s=brisbane; d=football.example.com; c=simple/simple;"
             " q=dns/txt; i=joe@football.example.com; h=Received : From : To;"
             " bh=" GOOD_BH "; b=" GOOD_B;
    CHECK_EQ_INT(parse(within), 0);
    CHECK(why == NULL);
    CHECK_EQ_INT(sig.alg, DKIM_ALG_RSA_SHA256);
    CHECK_EQ_INT(sig.hcanon, DKIM_CANON_SIMPLE);
    CHECK_EQ_INT(sig.bcanon, DKIM_CANON_SIMPLE);
    CHECK_EQ_MEM(sig.d, sig.d_len, "football.example.com", 20);
    CHECK_EQ_MEM(sig.s, sig.s_len, "brisbane", 8);
    CHECK_EQ_MEM(sig.i, sig.i_len, "joe@football.example.com", 24);
    CHECK_EQ_INT(sig.nh, 3);
    CHECK_EQ_INT(sig.h_from, 1);
    CHECK_EQ_INT(sig.h_subject, 0);
    CHECK_EQ_STR(sig.qname, "brisbane._domainkey.football.example.com");
    CHECK_EQ_INT(sig.bh_len, 32);
    CHECK_EQ_INT(sig.sig_len, 48);
    CHECK(sig.l == DKIM_NO_LIMIT && !sig.has_t && !sig.has_x);
    CHECK_EQ_MEM(sig.b, sig.b_len, GOOD_B, strlen(GOOD_B));
    CHECK_EQ_INT(sig.b_off, strstr(within, "b=" GOOD_B) + 2 - within);

    /* RFC 8463's Ed25519 field. */
    const char *ed = " v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
                     " d=football.example.com; i=@football.example.com;\r\n"
                     " q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
                     " subject : date : message-id : from : subject : date;\r\n"
                     " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
                     " b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n"
                     " Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==";
    CHECK_EQ_INT(parse(ed), 0);
    CHECK_EQ_INT(sig.alg, DKIM_ALG_ED25519_SHA256);
    CHECK_EQ_INT(sig.hcanon, DKIM_CANON_RELAXED);
    CHECK_EQ_INT(sig.bcanon, DKIM_CANON_RELAXED);
    CHECK_EQ_INT(sig.sig_len, 64);
    CHECK(sig.has_t && sig.t == 1528637909);
    CHECK_EQ_INT(sig.nh, 8);
    CHECK_EQ_INT(sig.h_from, 2);
    CHECK_EQ_INT(sig.h_subject, 2);
    size_t pos = 0, len;
    const char *name;
    CHECK_EQ_INT(dkim_sig_h_next(&sig, &pos, &name, &len), 1);
    CHECK_EQ_MEM(name, len, "from", 4);
    CHECK_EQ_INT(dkim_sig_h_next(&sig, &pos, &name, &len), 1);
    CHECK_EQ_MEM(name, len, "to", 2);
}

static void test_tags(void)
{
    /* c=: one word is the header's, the body stays simple. */
    CHECK_EQ_INT(parse(BASE "c=relaxed; b=" GOOD_B), 0);
    CHECK(sig.hcanon == DKIM_CANON_RELAXED && sig.bcanon == DKIM_CANON_SIMPLE);
    CHECK_EQ_INT(parse(BASE "c=Simple/Relaxed; b=" GOOD_B), 0);
    CHECK(sig.hcanon == DKIM_CANON_SIMPLE && sig.bcanon == DKIM_CANON_RELAXED);
    /* l=, t=, x=. */
    CHECK_EQ_INT(parse(BASE "l=0; t=5; x=6; b=" GOOD_B), 0);
    CHECK(sig.l == 0 && sig.t == 5 && sig.x == 6);
    CHECK_EQ_INT(parse(BASE "l=99999999999999999999999999; b=" GOOD_B), 0);
    CHECK(sig.l == DKIM_NO_LIMIT - 1); /* past any body, still a limit */
    /* q= lists methods; an unknown one beside dns/txt is fine. */
    CHECK_EQ_INT(parse(BASE "q=foo/bar:dns/txt; b=" GOOD_B), 0);
    /* Unknown tags are ignored (§3.2), z= too. */
    CHECK_EQ_INT(parse(BASE "zz=whatever; z=From:a|To:b; b=" GOOD_B), 0);
    /* i= with a local-part, i= equal to d=, i= in a subdomain. */
    CHECK_EQ_INT(parse(BASE "i=a.b@example.net; b=" GOOD_B), 0);
    CHECK_EQ_INT(parse(BASE "i=@mail.EXAMPLE.net; b=" GOOD_B), 0);
    CHECK_EQ_INT(parse(BASE "i=@badexample.net; b=" GOOD_B), -EINVAL);
    CHECK_EQ_INT(parse(BASE "i=example.net; b=" GOOD_B), -EINVAL);
    /* d= is case-insensitive, a selector may have dots. */
    CHECK_EQ_INT(parse("v=1; a=rsa-sha256; d=Example.NET; s=2024.sel; h=From;"
                       " bh=" GOOD_BH "; b=" GOOD_B),
                 0);
    CHECK_EQ_STR(sig.qname, "2024.sel._domainkey.Example.NET");
    CHECK_EQ_INT(sig.h_from, 1);
    /* rsa-sha1 parses (with a 20-octet bh=) for the verifier to refuse. */
    CHECK_EQ_INT(parse("v=1; a=rsa-sha1; d=example.net; s=s; h=from;"
                       " bh=AAAAAAAAAAAAAAAAAAAAAAAAAAA=; b=" GOOD_B),
                 0);
    CHECK_EQ_INT(sig.alg, DKIM_ALG_RSA_SHA1);
    CHECK_EQ_INT(sig.bh_len, 20);
    CHECK_EQ_STR(dkim_alg_name(DKIM_ALG_RSA_SHA1), "rsa-sha1");
    CHECK_EQ_STR(dkim_alg_name(DKIM_ALG_ED25519_SHA256), "ed25519-sha256");
}

static void test_bad(void)
{
    struct {
        const char *v, *why;
    } cases[] = {
        {"a=rsa-sha256; d=example.net; s=s; h=from; bh=" GOOD_BH "; b=" GOOD_B, "missing v="},
        {"v=1; d=example.net; s=s; h=from; bh=" GOOD_BH "; b=" GOOD_B, "missing a="},
        {"v=1; a=rsa-sha256; d=example.net; s=s; h=from; bh=" GOOD_BH, "missing b="},
        {"v=1; a=rsa-sha256; d=example.net; s=s; h=from; b=" GOOD_B, "missing bh="},
        {"v=1; a=rsa-sha256; s=s; h=from; bh=" GOOD_BH "; b=" GOOD_B, "missing d="},
        {"v=1; a=rsa-sha256; d=example.net; s=s; bh=" GOOD_BH "; b=" GOOD_B, "missing h="},
        {"v=1; a=rsa-sha256; d=example.net; h=from; bh=" GOOD_BH "; b=" GOOD_B, "missing s="},
        {"v=01; a=rsa-sha256; d=example.net; s=s; h=from; bh=" GOOD_BH "; b=" GOOD_B,
         "v= is not 1"},
        {"v=1; a=RSA-SHA512; d=example.net; s=s; h=from; bh=" GOOD_BH "; b=" GOOD_B,
         "unknown algorithm"},
        {BASE "c=relaxed/relaxed/simple; b=" GOOD_B, "unknown canonicalization"},
        {BASE "c=; b=" GOOD_B, "unknown canonicalization"},
        {"v=1; a=rsa-sha256; d=exa mple.net; s=s; h=from; bh=" GOOD_BH "; b=" GOOD_B,
         "d= is no domain"},
        {"v=1; a=rsa-sha256; d=example..net; s=s; h=from; bh=" GOOD_BH "; b=" GOOD_B,
         "d= is no domain"},
        {"v=1; a=rsa-sha256; d=example.net; s=a/b; h=from; bh=" GOOD_BH "; b=" GOOD_B,
         "s= is no selector"},
        {"v=1; a=rsa-sha256; d=example.net; s=; h=from; bh=" GOOD_BH "; b=" GOOD_B,
         "s= is no selector"},
        {"v=1; a=rsa-sha256; d=example.net; s=s; h=to:subject; bh=" GOOD_BH "; b=" GOOD_B,
         "h= does not sign From"},
        {"v=1; a=rsa-sha256; d=example.net; s=s; h=; bh=" GOOD_BH "; b=" GOOD_B, "malformed h="},
        {"v=1; a=rsa-sha256; d=example.net; s=s; h=from:; bh=" GOOD_BH "; b=" GOOD_B,
         "malformed h="},
        {"v=1; a=rsa-sha256; d=example.net; s=s; h=fr\xc3\xb6m:from; bh=" GOOD_BH "; b=" GOOD_B,
         "h= holds something that is no field name"},
        {BASE "q=http; b=" GOOD_B, "q= has no dns/txt"},
        {BASE "l=-1; b=" GOOD_B, "malformed l="},
        {BASE "l=; b=" GOOD_B, "malformed l="},
        {BASE "t=12345678901234567; b=" GOOD_B, "malformed t="},
        {BASE "x=now; b=" GOOD_B, "malformed x="},
        {BASE "t=10; x=10; b=" GOOD_B, "x= not after t="},
        {"v=1; a=rsa-sha256; d=example.net; s=s; h=from; bh=AAAA; b=" GOOD_B, "malformed bh="},
        {"v=1; a=rsa-sha256; d=example.net; s=s; h=from; bh=" GOOD_BH "x; b=" GOOD_B,
         "malformed bh="},
        {BASE "b=", "empty b="},
        {BASE "b=abc", "malformed b="},
        {BASE "b=" GOOD_B "; b=" GOOD_B, "malformed tag list"},
        {BASE "b=" GOOD_B ";;", "malformed tag list"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        CHECK_EQ_INT(parse(cases[k].v), -EINVAL);
        CHECK_EQ_STR(why, cases[k].why);
    }
    /* i= and s=+d= at their limits. */
    struct buf b = BUF_INIT;
    buf_puts(&b, BASE "i=");
    for (int k = 0; k < DKIM_AUID_MAX; k++)
        buf_putc(&b, 'a');
    buf_puts(&b, "@example.net; b=" GOOD_B);
    CHECK_EQ_INT(parse(b.data), -EINVAL);
    CHECK_EQ_STR(why, "i= too long");
    buf_reset(&b);
    buf_puts(&b, "v=1; a=rsa-sha256; s=");
    for (int k = 0; k < 3; k++)
        buf_puts(&b, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.");
    buf_puts(&b, "a; d=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.net; h=from;"
                 " bh=" GOOD_BH "; b=" GOOD_B);
    CHECK_EQ_INT(parse(b.data), -EINVAL);
    CHECK_EQ_STR(why, "s= and d= too long for DNS");
    /* h= of DKIM_H_MAX names, and one more. */
    buf_reset(&b);
    buf_puts(&b, "v=1; a=rsa-sha256; d=example.net; s=s; bh=" GOOD_BH "; b=" GOOD_B "; h=from");
    for (int k = 1; k < DKIM_H_MAX; k++)
        buf_puts(&b, ":x");
    CHECK_EQ_INT(parse(b.data), 0);
    CHECK_EQ_INT(sig.nh, DKIM_H_MAX);
    buf_puts(&b, ":x");
    CHECK_EQ_INT(parse(b.data), -EINVAL);
    CHECK_EQ_STR(why, "h= names too many fields");
    buf_free(&b);
    CHECK(dkim_name_ok("a-b_c.example", 13));
    CHECK(!dkim_name_ok("a.", 2));
    CHECK(!dkim_name_ok(".a", 2));
    CHECK(!dkim_name_ok("", 0));
}

int main(void)
{
    test_rfc_fields();
    test_tags();
    test_bad();
    buf_free(&tmp);
    return check_result("test_dkim_sig");
}
