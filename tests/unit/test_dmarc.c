/* Unit tests for mailauth/dmarc (the evaluator over an in-memory zone,
 * tests/unit/dnsq_zone.h) and mailauth/psl (Organizational Domains):
 * discovery at the From domain and the Organizational Domain (RFC 7489
 * §6.6.3: none, several, unusable records, DNS failures, non-DMARC TXT),
 * p and sp, relaxed and strict alignment of SPF and DKIM, pct sampling,
 * several From domains (§6.6.1), a From with no domain, timeouts and the
 * evaluator's use of its batches. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "dnsq_zone.h"
#include "mailauth/dmarc.h"
#include "mailauth/psl.h"

static struct zone z;
static struct dmarc_eval *ev;

/* Runs ev against z as zone_run does for SPF: answers last question
 * first, each answer freed right after. Batches, or -1. */
static int run(void)
{
    int rounds = 0;
    while (dmarc_eval_step(ev) == DMARC_STEP_DNS) {
        const struct dnsq_question *q;
        size_t n = dmarc_eval_questions(ev, &q);
        if (n == 0 || n > DNSQ_BATCH_MAX || ++rounds > 10)
            return -1;
        for (size_t k = n; k-- > 0;) {
            struct dnsq_answer a;
            zone_answer(&z, &q[k], &a);
            int rc = dmarc_eval_answer(ev, k, &a);
            free((void *)a.rrs);
            if (rc != 0)
                return -1;
        }
    }
    return rounds;
}

struct msg {
    const char *from;       /* the From field body */
    enum spf_result spf;
    const char *spf_domain;
    struct dmarc_dkim dkim[4];
    size_t ndkim;
    unsigned sample;
};

static struct dmarc_from from;

static const struct dmarc_domain *eval(const struct msg *m)
{
    dmarc_from_init(&from);
    if (m->from)
        dmarc_from_add_field(&from, m->from, strlen(m->from));
    struct dmarc_params p = {&from, m->spf, m->spf_domain, m->dkim, m->ndkim, m->sample};
    CHECK_EQ_INT(dmarc_eval_start(ev, &p), 0);
    CHECK(run() >= 0);
    return dmarc_eval_verdict(ev);
}

static void reset(void)
{
    zone_clear(&z);
}

static void test_psl(void)
{
    CHECK_EQ_INT(psl_org_init(), 0);
    CHECK(psl_org_source()[0] != '\0');
    char o[DNS_NAME_MAX];
    static const char *const cases[][2] = {
        {"example.com", "example.com"},
        {"a.b.example.com", "example.com"},
        {"A.B.Example.COM.", "example.com"},
        {"mail.example.co.uk", "example.co.uk"},
        {"co.uk", "co.uk"},          /* a public suffix is its own */
        {"com", "com"},
        {"localhost", "localhost"},
        {"x.y.blogspot.com", "y.blogspot.com"}, /* the private section counts */
        {"a.b.c.kawasaki.jp", "b.c.kawasaki.jp"}, /* *.kawasaki.jp */
        {"a.city.kawasaki.jp", "city.kawasaki.jp"}, /* !city.kawasaki.jp */
        {"a.b.xn--p1ai", "b.xn--p1ai"},  /* an A-label TLD */
        {"foo.bar.unknowntld", "bar.unknowntld"}, /* the implicit "*" rule */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_EQ_INT(psl_org_domain(cases[i][0], o), 0);
        CHECK_EQ_STR(o, cases[i][1]);
    }
    CHECK_EQ_INT(psl_org_domain("", o), -EINVAL);
    CHECK_EQ_INT(psl_org_domain(".", o), -EINVAL);
    CHECK_EQ_INT(psl_org_domain("a..example.com", o), -EINVAL);
    CHECK_EQ_INT(psl_org_domain("a\nb.example.com", o), -EINVAL);
    CHECK(psl_org_same("a.example.com", "B.EXAMPLE.COM."));
    CHECK(!psl_org_same("a.example.com", "example.net"));
    CHECK(!psl_org_same("example.co.uk", "other.co.uk"));
    CHECK(!psl_org_same("", ""));
}

static void test_aligned(void)
{
    CHECK(dmarc_aligned("example.com", "EXAMPLE.com.", DMARC_ALIGN_STRICT));
    CHECK(!dmarc_aligned("mail.example.com", "example.com", DMARC_ALIGN_STRICT));
    CHECK(dmarc_aligned("mail.example.com", "news.example.com", DMARC_ALIGN_RELAXED));
    CHECK(!dmarc_aligned("example.co.uk", "co.uk", DMARC_ALIGN_RELAXED));
    CHECK(!dmarc_aligned("", "example.com", DMARC_ALIGN_RELAXED));
    CHECK(!dmarc_aligned(NULL, "example.com", DMARC_ALIGN_STRICT));
}

static void test_discovery(void)
{
    const struct dmarc_domain *v;
    struct msg m = {"a@example.com", SPF_FAIL, "example.com", {{0}}, 0, 0};

    /* No record anywhere: none, one question (the org domain is the same). */
    reset();
    v = eval(&m);
    CHECK_EQ_INT(v->result, DMARC_NONE);
    CHECK(!v->have_record);
    CHECK_EQ_STR(z.log, "TXT _dmarc.example.com\n");
    CHECK_EQ_INT(v->disposition, DMARC_POLICY_NONE);

    /* A record at the From domain. */
    reset();
    zone_txt(&z, "_dmarc.example.com", "v=DMARC1; p=reject; rua=mailto:d@example.com");
    zone_txt(&z, "_dmarc.example.com", "some other TXT");
    v = eval(&m);
    CHECK_EQ_INT(v->result, DMARC_FAIL);
    CHECK_EQ_INT(v->policy, DMARC_POLICY_REJECT);
    CHECK_EQ_INT(v->disposition, DMARC_POLICY_REJECT);
    CHECK_EQ_STR(v->policy_domain, "example.com");
    CHECK_EQ_STR(v->from, "example.com");
    CHECK_EQ_INT(v->rec.nrua, 1);

    /* Fallback to the Organizational Domain: sp applies. */
    m.from = "a@Mail.Sub.Example.COM";
    reset();
    zone_txt(&z, "_dmarc.example.com", "v=DMARC1; p=reject; sp=quarantine");
    v = eval(&m);
    CHECK_EQ_STR(z.log, "TXT _dmarc.mail.sub.example.com\nTXT _dmarc.example.com\n");
    CHECK_EQ_INT(v->result, DMARC_FAIL);
    CHECK_EQ_INT(v->policy, DMARC_POLICY_QUARANTINE);
    CHECK_EQ_STR(v->policy_domain, "example.com");
    CHECK_EQ_STR(v->org, "example.com");

    /* sp not given: p applies to subdomains. */
    reset();
    zone_txt(&z, "_dmarc.example.com", "v=DMARC1; p=reject");
    CHECK_EQ_INT(eval(&m)->policy, DMARC_POLICY_REJECT);

    /* A record at the subdomain itself: its p, never its sp. */
    reset();
    zone_txt(&z, "_dmarc.mail.sub.example.com", "v=DMARC1; p=none; sp=reject");
    zone_txt(&z, "_dmarc.example.com", "v=DMARC1; p=reject");
    v = eval(&m);
    CHECK_EQ_INT(v->policy, DMARC_POLICY_NONE);
    CHECK_EQ_STR(v->policy_domain, "mail.sub.example.com");
    CHECK_EQ_STR(z.log, "TXT _dmarc.mail.sub.example.com\n");

    /* Several DMARC records: none, and no fallback (step 5). */
    reset();
    zone_txt(&z, "_dmarc.mail.sub.example.com", "v=DMARC1; p=reject");
    zone_txt(&z, "_dmarc.mail.sub.example.com", "v=DMARC1; p=none");
    zone_txt(&z, "_dmarc.example.com", "v=DMARC1; p=reject");
    v = eval(&m);
    CHECK_EQ_INT(v->result, DMARC_NONE);
    CHECK_EQ_STR(v->reason, "multiple DMARC records");
    CHECK_EQ_STR(z.log, "TXT _dmarc.mail.sub.example.com\n");

    /* An unusable record: none, no fallback (step 6). */
    reset();
    zone_txt(&z, "_dmarc.mail.sub.example.com", "v=DMARC1; p=bogus");
    zone_txt(&z, "_dmarc.example.com", "v=DMARC1; p=reject");
    v = eval(&m);
    CHECK_EQ_INT(v->result, DMARC_NONE);
    CHECK_EQ_STR(v->reason, "no valid p tag");

    /* Non-DMARC TXT only: the fallback is asked. */
    reset();
    zone_txt(&z, "_dmarc.mail.sub.example.com", "v=spf1 -all");
    zone_txt(&z, "_dmarc.mail.sub.example.com", "v=DMARC10; p=none");
    zone_txt(&z, "_dmarc.example.com", "v=DMARC1; p=quarantine");
    CHECK_EQ_INT(eval(&m)->policy, DMARC_POLICY_QUARANTINE);

    /* A record split over strings is joined (no separator). */
    reset();
    {
        const char *strs[] = {"v=DMARC1; p=rej", "ect"};
        size_t lens[] = {15, 3};
        zone_txt_n(&z, "_dmarc.example.com", 2, strs, lens);
    }
    CHECK_EQ_INT(eval(&m)->policy, DMARC_POLICY_REJECT);

    /* DNS failure at the From domain: temperror, no fallback. */
    reset();
    zone_timeout(&z, "_dmarc.mail.sub.example.com", 0);
    zone_txt(&z, "_dmarc.example.com", "v=DMARC1; p=reject");
    v = eval(&m);
    CHECK_EQ_INT(v->result, DMARC_TEMPERROR);
    CHECK_EQ_INT(v->disposition, DMARC_POLICY_NONE);
    CHECK_EQ_STR(z.log, "TXT _dmarc.mail.sub.example.com\n");

    /* ... or at the Organizational Domain. */
    reset();
    zone_timeout(&z, "_dmarc.example.com", DNSQ_TXT);
    CHECK_EQ_INT(eval(&m)->result, DMARC_TEMPERROR);

    /* A CNAME is followed (by the resolver). */
    reset();
    zone_cname(&z, "_dmarc.example.com", "_dmarc.provider.example");
    zone_txt(&z, "_dmarc.provider.example", "v=DMARC1; p=reject");
    CHECK_EQ_INT(eval(&m)->policy, DMARC_POLICY_REJECT);
}

static void test_alignment(void)
{
    const struct dmarc_domain *v;
    reset();
    zone_txt(&z, "_dmarc.example.com", "v=DMARC1; p=reject");
    zone_txt(&z, "_dmarc.strict.example", "v=DMARC1; p=reject; adkim=s; aspf=s");

    struct msg m = {"a@news.example.com", SPF_PASS, "bounce.example.com", {{0}}, 0, 0};
    v = eval(&m);
    CHECK_EQ_INT(v->result, DMARC_PASS); /* relaxed SPF */
    CHECK(v->spf_aligned);
    CHECK(!v->dkim_aligned);
    CHECK_EQ_INT(v->disposition, DMARC_POLICY_NONE);

    m.spf = SPF_SOFTFAIL;
    CHECK_EQ_INT(eval(&m)->result, DMARC_FAIL); /* only pass counts */
    m.spf = SPF_PASS;
    m.spf_domain = "example.net";
    CHECK_EQ_INT(eval(&m)->result, DMARC_FAIL);

    /* DKIM: any passing aligned signature. */
    m.dkim[0] = (struct dmarc_dkim){DKIM_PASS, "example.net", "s1"};
    m.dkim[1] = (struct dmarc_dkim){DKIM_FAIL, "example.com", "s2"};
    m.dkim[2] = (struct dmarc_dkim){DKIM_PASS, "Mail.EXAMPLE.com.", "s3"};
    m.ndkim = 3;
    v = eval(&m);
    CHECK_EQ_INT(v->result, DMARC_PASS);
    CHECK(v->dkim_aligned);
    CHECK_EQ_INT(v->dkim_aligned_index, 2);
    m.ndkim = 2;
    CHECK_EQ_INT(eval(&m)->result, DMARC_FAIL);

    /* Strict: the exact name. */
    m.from = "a@strict.example";
    m.spf_domain = "mail.strict.example";
    m.dkim[0] = (struct dmarc_dkim){DKIM_PASS, "sub.strict.example", NULL};
    m.ndkim = 1;
    CHECK_EQ_INT(eval(&m)->result, DMARC_FAIL);
    m.spf_domain = "STRICT.example";
    CHECK_EQ_INT(eval(&m)->result, DMARC_PASS);
    m.spf = SPF_NONE;
    m.dkim[0].domain = "strict.example";
    CHECK_EQ_INT(eval(&m)->result, DMARC_PASS);
    m.dkim[0].domain = "";
    CHECK_EQ_INT(eval(&m)->result, DMARC_FAIL);
    m.dkim[0].domain = NULL;
    CHECK_EQ_INT(eval(&m)->result, DMARC_FAIL);

    /* Relaxed never crosses a public suffix. */
    reset();
    zone_txt(&z, "_dmarc.example.co.uk", "v=DMARC1; p=reject");
    struct msg u = {"a@example.co.uk", SPF_PASS, "other.co.uk", {{DKIM_PASS, "co.uk", NULL}},
                    1, 0};
    CHECK_EQ_INT(eval(&u)->result, DMARC_FAIL);
}

static void test_pct(void)
{
    reset();
    zone_txt(&z, "_dmarc.r.example", "v=DMARC1; p=reject; pct=30");
    zone_txt(&z, "_dmarc.q.example", "v=DMARC1; p=quarantine; pct=30");
    zone_txt(&z, "_dmarc.z.example", "v=DMARC1; p=reject; pct=0");
    struct msg m = {"a@r.example", SPF_FAIL, "r.example", {{0}}, 0, 29};
    const struct dmarc_domain *v = eval(&m);
    CHECK_EQ_INT(v->disposition, DMARC_POLICY_REJECT);
    CHECK(!v->sampled_out);
    m.sample = 30;
    v = eval(&m);
    CHECK_EQ_INT(v->policy, DMARC_POLICY_REJECT);
    CHECK_EQ_INT(v->disposition, DMARC_POLICY_QUARANTINE); /* §6.6.4: one step down */
    CHECK(v->sampled_out);
    m.from = "a@q.example";
    v = eval(&m);
    CHECK_EQ_INT(v->disposition, DMARC_POLICY_NONE);
    CHECK(v->sampled_out);
    m.from = "a@z.example";
    m.sample = 0;
    CHECK_EQ_INT(eval(&m)->disposition, DMARC_POLICY_QUARANTINE);
    m.sample = 100;
    struct dmarc_params bad = {&from, SPF_NONE, "", NULL, 0, 100};
    CHECK_EQ_INT(dmarc_eval_start(ev, &bad), -EINVAL);
    CHECK_EQ_INT(dmarc_eval_step(ev), DMARC_STEP_DONE);
    CHECK_EQ_INT(dmarc_eval_verdict(ev)->result, DMARC_PERMERROR);
}

static void test_several_from(void)
{
    reset();
    zone_txt(&z, "_dmarc.none.example", "v=DMARC1; p=none");
    zone_txt(&z, "_dmarc.quar.example", "v=DMARC1; p=quarantine");
    zone_txt(&z, "_dmarc.rej.example", "v=DMARC1; p=reject");
    zone_txt(&z, "_dmarc.example.com", "v=DMARC1; p=reject");
    /* The strictest failing domain decides. */
    struct msg m = {"a@none.example, b@rej.example, c@quar.example", SPF_PASS, "none.example",
                    {{0}}, 0, 0};
    const struct dmarc_domain *v = eval(&m);
    CHECK_EQ_INT(dmarc_eval_ndomains(ev), 3);
    CHECK_EQ_INT(v->result, DMARC_FAIL);
    CHECK_EQ_STR(v->from, "rej.example");
    CHECK_EQ_INT(v->disposition, DMARC_POLICY_REJECT);
    CHECK_EQ_INT(dmarc_eval_domain(ev, 0)->result, DMARC_PASS);
    CHECK(dmarc_eval_domain(ev, 3) == NULL);
    /* All pass: pass. One without record: none wins over pass. */
    m.from = "a@none.example, b@x.none.example";
    v = eval(&m);
    CHECK_EQ_INT(v->result, DMARC_PASS);
    m.from = "a@none.example, b@norecord.example";
    v = eval(&m);
    CHECK_EQ_INT(v->result, DMARC_NONE);
    CHECK_EQ_STR(v->from, "norecord.example");
    /* One batch for the From domains, one for the fallbacks, a shared
     * fallback asked once. */
    zone_clear(&z);
    zone_txt(&z, "_dmarc.example.com", "v=DMARC1; p=reject");
    m.from = "a@one.example.com, b@two.example.com, c@example.com";
    m.spf_domain = "example.com";
    v = eval(&m);
    CHECK_EQ_INT(v->result, DMARC_PASS);
    CHECK_EQ_INT(z.asked, 4);
    CHECK(strstr(z.log, "TXT _dmarc.one.example.com\n") != NULL);
    CHECK(strstr(z.log, "TXT _dmarc.two.example.com\n") != NULL);
    const char *first = strstr(z.log, "TXT _dmarc.example.com\n");
    CHECK(first != NULL && strstr(first + 1, "TXT _dmarc.example.com\n") != NULL);
    /* Several From fields count the same way. */
    dmarc_from_init(&from);
    dmarc_from_add_field(&from, "a@example.com", 13);
    dmarc_from_add_field(&from, "a@evil.example", 14);
    zone_txt(&z, "_dmarc.evil.example", "v=DMARC1; p=quarantine");
    struct dmarc_params p = {&from, SPF_PASS, "example.com", NULL, 0, 0};
    dmarc_eval_start(ev, &p);
    CHECK(run() >= 0);
    CHECK_EQ_STR(dmarc_eval_verdict(ev)->from, "evil.example");
    CHECK_EQ_INT(dmarc_eval_verdict(ev)->disposition, DMARC_POLICY_QUARANTINE);
}

static void test_bad_from(void)
{
    reset();
    static const char *const bodies[] = {NULL, "undisclosed:;", "Bogus", "a@[192.0.2.1]"};
    static const char *const reasons[] = {"no From field", "no address in From",
                                          "malformed From",
                                          "From address without a DNS domain"};
    for (size_t i = 0; i < 4; i++) {
        struct msg m = {bodies[i], SPF_PASS, "example.com", {{0}}, 0, 0};
        const struct dmarc_domain *v = eval(&m);
        CHECK_EQ_INT(v->result, DMARC_PERMERROR);
        CHECK_EQ_INT(v->disposition, DMARC_POLICY_REJECT);
        CHECK_EQ_STR(v->reason, reasons[i]);
        CHECK_EQ_STR(v->from, "");
        CHECK_EQ_INT(dmarc_eval_ndomains(ev), 0);
    }
    CHECK_EQ_INT(z.asked, 0);
}

static void test_protocol(void)
{
    reset();
    zone_txt(&z, "_dmarc.example.com", "v=DMARC1; p=reject");
    dmarc_from_init(&from);
    dmarc_from_add_field(&from, "a@x.example.com, b@example.com", 30);
    struct dmarc_params p = {&from, SPF_NONE, NULL, NULL, 0, 0};
    CHECK_EQ_INT(dmarc_eval_start(ev, &p), 0);
    CHECK_EQ_INT(dmarc_eval_step(ev), DMARC_STEP_DNS);
    const struct dnsq_question *q;
    CHECK_EQ_INT(dmarc_eval_questions(ev, &q), 2);
    CHECK_EQ_INT(q[0].type, DNSQ_TXT);
    struct dnsq_answer nx = {DNSQ_NXDOMAIN, 0, NULL};
    CHECK_EQ_INT(dmarc_eval_answer(ev, 2, &nx), -EINVAL);
    CHECK_EQ_INT(dmarc_eval_answer(ev, 0, &nx), 0);
    CHECK_EQ_INT(dmarc_eval_answer(ev, 0, &nx), -EINVAL); /* twice */
    CHECK_EQ_INT(dmarc_eval_step(ev), DMARC_STEP_DNS);     /* one still owed */
    /* The time runs out: what waits is temperror. */
    dmarc_eval_timeout(ev);
    CHECK_EQ_INT(dmarc_eval_step(ev), DMARC_STEP_DONE);
    CHECK_EQ_INT(dmarc_eval_questions(ev, &q), 0);
    CHECK_EQ_INT(dmarc_eval_verdict(ev)->result, DMARC_TEMPERROR);
    CHECK_EQ_STR(dmarc_eval_verdict(ev)->reason, "time limit reached");
    CHECK_EQ_INT(dmarc_eval_answer(ev, 1, &nx), -EINVAL);
    /* A name too long for "_dmarc." goes to the fallback. */
    char longname[300] = "a@";
    size_t n = 2;
    for (int i = 0; i < 4; i++) { /* 248 octets: 255 with "_dmarc." */
        memset(longname + n, 'l', i < 3 ? 61 : 50);
        n += i < 3 ? 61 : 50;
        longname[n++] = '.';
    }
    memcpy(longname + n, "example.com", 12);
    zone_clear(&z);
    zone_txt(&z, "_dmarc.example.com", "v=DMARC1; p=quarantine");
    struct msg m = {longname, SPF_NONE, NULL, {{0}}, 0, 0};
    const struct dmarc_domain *v = eval(&m);
    CHECK_EQ_INT(v->policy, DMARC_POLICY_QUARANTINE);
    CHECK_EQ_STR(z.log, "TXT _dmarc.example.com\n");
    /* Reuse after a finished evaluation. */
    m.from = "a@example.com";
    CHECK_EQ_INT(eval(&m)->policy, DMARC_POLICY_QUARANTINE);
}

int main(void)
{
    ev = dmarc_eval_new();
    test_psl();
    test_aligned();
    test_discovery();
    test_alignment();
    test_pct();
    test_several_from();
    test_bad_from();
    test_protocol();
    dmarc_eval_free(ev);
    zone_clear(&z);
    return check_result("test_dmarc");
}
