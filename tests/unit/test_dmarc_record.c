/* Unit tests for mailauth/dmarc_record: the version test, every tag of
 * RFC 7489 §6.3 with valid and invalid values, the §6.6.3 step 6 rule for
 * a missing or invalid p or sp, URIs with size limits, unknown and
 * repeated tags, case and white space. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "mailauth/dmarc_record.h"

static struct dmarc_record rec;

static int parse(const char *text)
{
    return dmarc_record_parse(&rec, text, strlen(text), NULL);
}

static void test_is_dmarc(void)
{
    static const char *const yes[] = {"v=DMARC1", "v=DMARC1;", "v=DMARC1; p=none",
                                      "V=DMARC1;p=none", "v =\tDMARC1 ;p=none", "v=DMARC1 "};
    static const char *const no[] = {"", "v=dmarc1; p=none", "v=DMARC10; p=none",
                                     " v=DMARC1; p=none", "p=none; v=DMARC1", "v=DMARC",
                                     "v=DMARC1x", "v=spf1 -all", "x=DMARC1"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        CHECK(dmarc_record_is_dmarc(yes[i], strlen(yes[i])));
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        if (dmarc_record_is_dmarc(no[i], strlen(no[i])))
            fprintf(stderr, "  taken as DMARC: \"%s\"\n", no[i]);
        CHECK(!dmarc_record_is_dmarc(no[i], strlen(no[i])));
    }
}

/* What "v=DMARC1; p=reject" reads as. */
static void check_defaults(void)
{
    CHECK_EQ_INT(rec.p, DMARC_POLICY_REJECT);
    CHECK_EQ_INT(rec.sp, DMARC_POLICY_REJECT); /* sp defaults to p */
    CHECK(!rec.sp_given);
    CHECK(rec.p_valid);
    CHECK_EQ_INT(rec.adkim, DMARC_ALIGN_RELAXED);
    CHECK_EQ_INT(rec.aspf, DMARC_ALIGN_RELAXED);
    CHECK_EQ_INT(rec.pct, 100);
    CHECK_EQ_INT(rec.fo, DMARC_FO_0);
    CHECK_EQ_INT(rec.rf, DMARC_RF_AFRF);
    CHECK_EQ_INT(rec.ri, 86400);
    CHECK_EQ_INT(rec.nrua, 0);
    CHECK_EQ_INT(rec.nruf, 0);
}

static void test_defaults(void)
{
    CHECK_EQ_INT(parse("v=DMARC1; p=reject"), 0);
    check_defaults();
}

static void test_all_tags(void)
{
    const char *t = "v=DMARC1; p=quarantine; sp=none; adkim=s; aspf=s; pct=25; "
                    "fo=1:d:s; rf=afrf; ri=3600; rua=mailto:a@example.com!10m, "
                    "mailto:b@example.net; ruf=mailto:f@example.com!100";
    CHECK_EQ_INT(parse(t), 0);
    CHECK_EQ_INT(rec.p, DMARC_POLICY_QUARANTINE);
    CHECK_EQ_INT(rec.sp, DMARC_POLICY_NONE);
    CHECK(rec.sp_given);
    CHECK_EQ_INT(rec.adkim, DMARC_ALIGN_STRICT);
    CHECK_EQ_INT(rec.aspf, DMARC_ALIGN_STRICT);
    CHECK_EQ_INT(rec.pct, 25);
    CHECK_EQ_INT(rec.fo, DMARC_FO_1 | DMARC_FO_D | DMARC_FO_S);
    CHECK_EQ_INT(rec.ri, 3600);
    CHECK_EQ_INT(rec.nrua, 2);
    CHECK_EQ_STR(rec.rua[0].uri, "mailto:a@example.com");
    CHECK(rec.rua[0].max_bytes == 10ull << 20);
    CHECK_EQ_STR(rec.rua[1].uri, "mailto:b@example.net");
    CHECK(rec.rua[1].max_bytes == 0);
    CHECK_EQ_INT(rec.nruf, 1);
    CHECK(rec.ruf[0].max_bytes == 100);
    char fo[8];
    dmarc_record_fo_text(rec.fo, fo);
    CHECK_EQ_STR(fo, "1:d:s");
    dmarc_record_fo_text(DMARC_FO_0, fo);
    CHECK_EQ_STR(fo, "0");
}

static void test_case_and_space(void)
{
    /* ABNF strings are case-insensitive; WSP around '=' and ';'. */
    CHECK_EQ_INT(parse("v = DMARC1 ;\tP = Reject ; SP=QUARANTINE ;ADKIM=S;  pct = 050 ;"), 0);
    CHECK_EQ_INT(rec.p, DMARC_POLICY_REJECT);
    CHECK_EQ_INT(rec.sp, DMARC_POLICY_QUARANTINE);
    CHECK_EQ_INT(rec.adkim, DMARC_ALIGN_STRICT);
    CHECK_EQ_INT(rec.pct, 50);
    /* p need not come second; empty parts are nothing. */
    CHECK_EQ_INT(parse("v=DMARC1;;pct=10; p=none;;"), 0);
    CHECK_EQ_INT(rec.p, DMARC_POLICY_NONE);
    CHECK_EQ_INT(rec.pct, 10);
}

static void test_p_rules(void)
{
    const char *why = NULL;
    /* §6.6.3 step 6: no valid p and no rua: unusable. */
    CHECK_EQ_INT(dmarc_record_parse(&rec, "v=DMARC1", 8, &why), -EINVAL);
    CHECK_EQ_STR(why, "no valid p tag");
    CHECK_EQ_INT(parse("v=DMARC1; p=bogus"), -EINVAL);
    CHECK_EQ_INT(parse("v=DMARC1; p="), -EINVAL);
    CHECK_EQ_INT(parse("v=DMARC1; p=reject; sp=bogus"), -EINVAL);
    CHECK_EQ_INT(parse("v=DMARC1; p=reject; rua=bogus"), 0);
    CHECK(rec.p == DMARC_POLICY_REJECT);
    /* ... with a valid rua: read as p=none. */
    CHECK_EQ_INT(parse("v=DMARC1; rua=mailto:r@example.com"), 0);
    CHECK_EQ_INT(rec.p, DMARC_POLICY_NONE);
    CHECK(!rec.p_valid);
    CHECK_EQ_INT(parse("v=DMARC1; p=rejectx; sp=reject; rua=mailto:r@example.com"), 0);
    CHECK_EQ_INT(rec.p, DMARC_POLICY_NONE);
    CHECK_EQ_INT(rec.sp, DMARC_POLICY_NONE);
    CHECK(!rec.p_valid);
    CHECK_EQ_INT(parse("v=DMARC1; p=reject; sp=x; rua=mailto:r@example.com"), 0);
    CHECK_EQ_INT(rec.p, DMARC_POLICY_NONE);
    CHECK_EQ_INT(parse("v=DMARC1; p=reject; rua=nonsense"), 0); /* rua bad, p fine */
    CHECK_EQ_INT(rec.nrua, 0);
    CHECK_EQ_INT(parse("v=DMARC1; p=none; rua=nonsense"), 0);
    CHECK_EQ_INT(parse("v=DMARC1; rua=nonsense"), -EINVAL);
    /* Not DMARC at all. */
    CHECK_EQ_INT(dmarc_record_parse(&rec, "v=spf1", 6, &why), -EINVAL);
    CHECK_EQ_STR(why, "not a DMARC1 record");
}

static void test_bad_values_default(void)
{
    /* §6.3: other invalid values take the defaults. */
    CHECK_EQ_INT(parse("v=DMARC1; p=reject; adkim=x; aspf=relaxed; pct=101; fo=2; rf=xml; "
                       "ri=-1; rua=x; ruf=!"), 0);
    check_defaults();
    static const char *const pcts[] = {"pct=1000", "pct=", "pct=5%", "pct=0x10", "pct= 1 0"};
    for (size_t i = 0; i < sizeof pcts / sizeof pcts[0]; i++) {
        char t[64];
        snprintf(t, sizeof t, "v=DMARC1; p=none; %s", pcts[i]);
        CHECK_EQ_INT(parse(t), 0);
        CHECK_EQ_INT(rec.pct, 100);
    }
    CHECK_EQ_INT(parse("v=DMARC1; p=none; pct=0"), 0);
    CHECK_EQ_INT(rec.pct, 0);
    CHECK_EQ_INT(parse("v=DMARC1; p=none; fo=0:x"), 0);
    CHECK_EQ_INT(rec.fo, DMARC_FO_0);
    CHECK_EQ_INT(parse("v=DMARC1; p=none; fo= d : s"), 0);
    CHECK_EQ_INT(rec.fo, DMARC_FO_D | DMARC_FO_S);
    CHECK_EQ_INT(parse("v=DMARC1; p=none; fo=1::d"), 0);
    CHECK_EQ_INT(rec.fo, DMARC_FO_0);
    CHECK_EQ_INT(parse("v=DMARC1; p=none; ri=4294967296"), 0); /* over 32 bits */
    CHECK_EQ_INT(rec.ri, 86400);
    CHECK_EQ_INT(parse("v=DMARC1; p=none; ri=4294967295"), 0);
    CHECK(rec.ri == 4294967295u);
}

static void test_repeats_and_unknown(void)
{
    /* The first of a repeated tag counts; unknown tags are ignored. */
    CHECK_EQ_INT(parse("v=DMARC1; p=none; p=reject; np=reject; psd=y; t=y; x"), 0);
    CHECK_EQ_INT(rec.p, DMARC_POLICY_NONE);
    CHECK_EQ_INT(parse("v=DMARC1; p=bad; p=reject"), -EINVAL);
}

static void test_uris(void)
{
    CHECK_EQ_INT(parse("v=DMARC1; p=none; rua=mailto:a@x.example!1k,mailto:b@x.example!2G,"
                       "mailto:c@x.example!3t ,  https://r.example/x?y=1&z=%2C"),
                 0);
    CHECK_EQ_INT(rec.nrua, 4);
    CHECK(rec.rua[0].max_bytes == 1024);
    CHECK(rec.rua[1].max_bytes == 2ull << 30);
    CHECK(rec.rua[2].max_bytes == 3ull << 40);
    CHECK_EQ_STR(rec.rua[3].uri, "https://r.example/x?y=1&z=%2C");
    /* Invalid ones are skipped one by one; at most DMARC_URIS_MAX kept. */
    CHECK_EQ_INT(parse("v=DMARC1; p=none; rua=mailto:a@x.example!, :nothing, 1a:b, mailto:,"
                       " mailto:b c@x, mailto:%zz@x, mailto:d@x!0, mailto:e@x!5q, "
                       "mailto:ok@x.example"),
                 0);
    CHECK_EQ_INT(rec.nrua, 1);
    CHECK_EQ_STR(rec.rua[0].uri, "mailto:ok@x.example");
    CHECK_EQ_INT(parse("v=DMARC1; p=none; rua=a:1,a:2,a:3,a:4,a:5,a:6"), 0);
    CHECK_EQ_INT(rec.nrua, DMARC_URIS_MAX);
    CHECK_EQ_STR(rec.rua[3].uri, "a:4");
    /* The numeric part must fit 64 bits; a unit saturates. */
    CHECK_EQ_INT(parse("v=DMARC1; p=none; rua=mailto:a@x!18446744073709551615"), 0);
    CHECK(rec.rua[0].max_bytes == UINT64_MAX);
    CHECK_EQ_INT(parse("v=DMARC1; p=none; rua=mailto:a@x!18446744073709551616,mailto:b@x"), 0);
    CHECK_EQ_INT(rec.nrua, 1);
    CHECK_EQ_STR(rec.rua[0].uri, "mailto:b@x");
    CHECK_EQ_INT(parse("v=DMARC1; p=none; rua=mailto:a@x!99999999999t"), 0);
    CHECK(rec.rua[0].max_bytes == UINT64_MAX);
    /* A URI too long to keep is invalid. */
    char t[1200];
    int n = snprintf(t, sizeof t, "v=DMARC1; p=none; rua=mailto:");
    memset(t + n, 'a', 600);
    memcpy(t + n + 600, "@x", 3);
    CHECK_EQ_INT(parse(t), 0);
    CHECK_EQ_INT(rec.nrua, 0);
    /* 8-bit and controls are not URI characters. */
    CHECK_EQ_INT(parse("v=DMARC1; p=none; rua=mailto:\xc3\xa9@x"), 0);
    CHECK_EQ_INT(rec.nrua, 0);
}

static void test_embedded_nul(void)
{
    static const char t[] = "v=DMARC1; p=reject\0; sp=none";
    CHECK_EQ_INT(dmarc_record_parse(&rec, t, sizeof t - 1, NULL), -EINVAL);
    static const char u[] = "v=DMARC1; p=reject; sp=none\0";
    CHECK_EQ_INT(dmarc_record_parse(&rec, u, sizeof u - 1, NULL), -EINVAL); /* sp invalid */
    static const char w[] = "v=DMARC1; p=reject; x=\0";
    CHECK_EQ_INT(dmarc_record_parse(&rec, w, sizeof w - 1, NULL), 0);
    CHECK_EQ_INT(rec.p, DMARC_POLICY_REJECT);
}

int main(void)
{
    test_is_dmarc();
    test_defaults();
    test_all_tags();
    test_case_and_space();
    test_p_rules();
    test_bad_values_default();
    test_repeats_and_unknown();
    test_uris();
    test_embedded_nul();
    return check_result("test_dmarc_record");
}
