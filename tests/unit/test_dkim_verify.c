/* Unit tests for mailauth/dkim_verify against fixed DNS data: the RFC 8463
 * Appendix A message (both signatures, every split of the message, the
 * answers in either order), tampering, RFC 6376 §8.15 (From and Subject
 * added above signed ones, over-signing), every result and reason (keys
 * missing, revoked, too small, of the wrong type, t=s, t=y; rsa-sha1; x=
 * and t=; l=; malformed fields; DNS failures and timeouts), the limits
 * (signatures per message, header size) and the resumable interface. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "dkim_fixture.h"

static struct zone z;
static struct dkim_verify *v;

/* RFC 8463's signing time; a "now" an hour later. */
#define RFC_T 1528637909LL
#define NOW (RFC_T + 3600)

static void test_rfc8463(void)
{
    zone_clear(&z);
    fx_zone_rfc(&z);
    CHECK_EQ_INT(fx_run(v, &z, FX_RFC8463_MSG, NOW), 1);
    CHECK_EQ_INT(dkim_verify_count(v), 2);
    CHECK_EQ_STR(fx_result(v, 0), "pass");
    CHECK_EQ_STR(fx_result(v, 1), "pass");
    const struct dkim_sig_result *r = dkim_verify_result(v, 0);
    CHECK_EQ_STR(r->d, "football.example.com");
    CHECK_EQ_STR(r->s, "brisbane");
    CHECK_EQ_STR(r->i, "@football.example.com");
    CHECK_EQ_STR(r->b, "/gCrinpcQOoI");
    CHECK_EQ_INT(r->alg, DKIM_ALG_ED25519_SHA256);
    CHECK_EQ_INT(r->key_bits, 256);
    CHECK_EQ_INT(r->t, RFC_T);
    CHECK(r->has_t && !r->has_x);
    CHECK(r->l == DKIM_NO_LIMIT);
    CHECK_EQ_INT(r->flags, 0);
    r = dkim_verify_result(v, 1);
    CHECK_EQ_STR(r->s, "test");
    CHECK_EQ_INT(r->alg, DKIM_ALG_RSA_SHA256);
    CHECK_EQ_INT(r->key_bits, 1024);
    /* The relaxed body: the RFC's 5 lines, 54 octets. */
    CHECK_EQ_INT(r->body_len, 54);
    CHECK_EQ_INT(dkim_verify_from_count(v), 1);
    CHECK_EQ_INT(dkim_verify_subject_count(v), 1);
    CHECK_EQ_INT(dkim_verify_sig_fields(v), 2);
    CHECK_EQ_INT(dkim_verify_flags(v), 0);
    CHECK_EQ_INT(z.asked, 2);
    CHECK(strstr(z.log, "TXT brisbane._domainkey.football.example.com\n") != NULL);
    CHECK(strstr(z.log, "TXT test._domainkey.football.example.com\n") != NULL);
}

/* Every split point of the message gives the same verdict: the header's
 * end, a CRLF, a fold, the body's trailing lines can fall anywhere. */
static void test_rfc8463_splits(void)
{
    zone_clear(&z);
    fx_zone_rfc(&z);
    const char *m = FX_RFC8463_MSG;
    size_t n = strlen(m);
    int bad = 0;
    for (size_t chunk = 1; chunk <= n; chunk++) {
        if (fx_run_n(v, &z, m, n, chunk, NOW) != 1 || strcmp(fx_result(v, 0), "pass") != 0 ||
            strcmp(fx_result(v, 1), "pass") != 0)
            bad++;
        if (chunk > 64)
            chunk += 13; /* large chunks: a sample is enough */
    }
    CHECK_EQ_INT(bad, 0);
    /* Two pieces split at every octet. */
    struct dkim_verify_params p = {.now = NOW};
    for (size_t cut = 0; cut <= n; cut++) {
        dkim_verify_start(v, &p);
        dkim_verify_feed(v, m, cut);
        dkim_verify_feed(v, m + cut, n - cut);
        dkim_verify_end(v);
        while (dkim_verify_step(v) == DKIM_STEP_DNS) {
            const struct dnsq_question *q;
            size_t nq = dkim_verify_questions(v, &q);
            for (size_t k = 0; k < nq; k++) {
                struct dnsq_answer a;
                zone_answer(&z, &q[k], &a);
                dkim_verify_answer(v, k, &a);
                free((void *)a.rrs);
            }
        }
        if (strcmp(fx_result(v, 0), "pass") != 0 || strcmp(fx_result(v, 1), "pass") != 0)
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
}

/* The questions are out as soon as the header ends, before the body; the
 * answers may come before the end, in any order; the verdict waits for
 * both. */
static void test_resumable(void)
{
    zone_clear(&z);
    fx_zone_rfc(&z);
    const char *m = FX_RFC8463_MSG;
    const char *body = strstr(m, "\r\n\r\n") + 4;
    struct dkim_verify_params p = {.now = NOW};
    dkim_verify_start(v, &p);
    const struct dnsq_question *q;
    CHECK_EQ_INT(dkim_verify_step(v), DKIM_STEP_CONTENT);
    dkim_verify_feed(v, m, (size_t)(body - m) - 1);
    CHECK_EQ_INT(dkim_verify_questions(v, &q), 0); /* the empty line is not complete */
    dkim_verify_feed(v, body - 1, 1);
    CHECK_EQ_INT(dkim_verify_questions(v, &q), 2);
    CHECK_EQ_INT(dkim_verify_step(v), DKIM_STEP_DNS);
    struct dnsq_answer a;
    zone_answer(&z, &q[1], &a);
    CHECK_EQ_INT(dkim_verify_answer(v, 1, &a), 0);
    CHECK_EQ_INT(dkim_verify_answer(v, 1, &a), -EINVAL); /* twice */
    CHECK_EQ_INT(dkim_verify_answer(v, 2, &a), -EINVAL); /* out of the batch */
    free((void *)a.rrs);
    CHECK_EQ_INT(dkim_verify_step(v), DKIM_STEP_DNS);
    zone_answer(&z, &q[0], &a);
    CHECK_EQ_INT(dkim_verify_answer(v, 0, &a), 0);
    free((void *)a.rrs);
    CHECK_EQ_INT(dkim_verify_step(v), DKIM_STEP_CONTENT);
    dkim_verify_feed(v, body, strlen(body));
    CHECK_EQ_INT(dkim_verify_step(v), DKIM_STEP_CONTENT);
    dkim_verify_end(v);
    CHECK_EQ_INT(dkim_verify_step(v), DKIM_STEP_DONE);
    CHECK_EQ_STR(fx_result(v, 0), "pass");
    CHECK_EQ_STR(fx_result(v, 1), "pass");
    /* Reused for the next message: nothing of the last one remains. */
    CHECK_EQ_INT(fx_run(v, &z, FX_RFC6376_MSG, NOW), 0);
    CHECK_EQ_INT(dkim_verify_count(v), 0);
    CHECK_EQ_INT(dkim_verify_from_count(v), 1);
}

static char *replace(const char *m, const char *from, const char *to)
{
    const char *at = strstr(m, from);
    if (at == NULL)
        abort();
    struct buf b = BUF_INIT;
    buf_append(&b, m, (size_t)(at - m));
    buf_puts(&b, to);
    buf_puts(&b, at + strlen(from));
    return buf_steal(&b);
}

static void test_tampered(void)
{
    zone_clear(&z);
    fx_zone_rfc(&z);
    char *m = replace(FX_RFC8463_MSG, "We lost", "We won");
    fx_run(v, &z, m, NOW);
    CHECK_EQ_STR(fx_result(v, 0), "fail");
    CHECK_EQ_STR(fx_reason(v, 0), "body hash mismatch");
    CHECK_EQ_STR(fx_result(v, 1), "fail");
    free(m);
    m = replace(FX_RFC8463_MSG, "Subject: Is dinner", "Subject: Is lunch");
    fx_run(v, &z, m, NOW);
    CHECK_EQ_STR(fx_result(v, 0), "fail");
    CHECK_EQ_STR(fx_reason(v, 0), "signature mismatch");
    CHECK_EQ_STR(fx_result(v, 1), "fail");
    CHECK_EQ_STR(fx_reason(v, 1), "signature mismatch");
    free(m);
    /* Relaxed canonicalisation forgives white space and case. */
    m = replace(FX_RFC8463_MSG, "Subject: Is dinner ready?", "SUBJECT :  Is   dinner ready?  ");
    fx_run(v, &z, m, NOW);
    CHECK_EQ_STR(fx_result(v, 0), "pass");
    free(m);
    m = replace(FX_RFC8463_MSG, "Joe.\r\n", "Joe.  \t\r\n\r\n\r\n");
    fx_run(v, &z, m, NOW);
    CHECK_EQ_STR(fx_result(v, 1), "pass");
    free(m);
    /* A b= value altered; one of a tag signed by the header hash. */
    m = replace(FX_RFC8463_MSG, "Fa3bT3FY5", "Fa3bT3FY6");
    fx_run(v, &z, m, NOW);
    CHECK_EQ_STR(fx_result(v, 0), "fail");
    CHECK_EQ_STR(fx_reason(v, 0), "signature mismatch");
    free(m);
    m = replace(FX_RFC8463_MSG, "t=1528637909; h=from : to :", "t=1528637910; h=from : to :");
    fx_run(v, &z, m, NOW);
    CHECK_EQ_STR(fx_reason(v, 0), "signature mismatch");
    CHECK_EQ_STR(fx_result(v, 1), "pass");
    free(m);
}

/* RFC 6376 §8.15. The RFC's signatures name from and subject twice, so
 * an added copy breaks them (over-signing); a signature that names each
 * once still verifies with a copy added above, and must not pass. */
static void test_unsigned_from(void)
{
    zone_clear(&z);
    fx_zone_rfc(&z);
    char *m = replace(FX_RFC8463_MSG, "From: Joe", "From: Evil <ceo@evil.example>\r\nFrom: Joe");
    fx_run(v, &z, m, NOW);
    CHECK_EQ_STR(fx_result(v, 0), "fail");
    CHECK_EQ_STR(fx_reason(v, 0), "signature mismatch");
    CHECK_EQ_INT(dkim_verify_from_count(v), 2);
    free(m);

    EVP_PKEY *ed = fx_rfc_ed_key();
    const char *tags = "v=1; a=ed25519-sha256; c=relaxed/relaxed; d=football.example.com;"
                       " s=brisbane; h=from:to:subject:date:message-id;";
    char *signed_ = fx_forge(FX_RFC6376_MSG, ed, tags, DKIM_CANON_RELAXED, DKIM_CANON_RELAXED,
                             DKIM_NO_LIMIT);
    fx_run(v, &z, signed_, NOW);
    CHECK_EQ_STR(fx_result(v, 0), "pass");
    /* Above the signature, between it and the From, or spelt "From :". */
    const char *evil[] = {"From: Evil <ceo@evil.example>\r\nDKIM-Signature:",
                          "From: Evil <ceo@evil.example>\r\nFrom: Joe",
                          "FROM : Evil <ceo@evil.example>\r\nFrom: Joe"};
    for (int k = 0; k < 3; k++) {
        m = replace(signed_, k == 0 ? "DKIM-Signature:" : "From: Joe", evil[k]);
        fx_run(v, &z, m, NOW);
        CHECK_EQ_STR(fx_result(v, 0), "policy");
        CHECK_EQ_STR(fx_reason(v, 0), "unsigned From above signed");
        CHECK(dkim_verify_result(v, 0)->flags & DKIM_SF_UNSIGNED_FROM);
        CHECK_EQ_INT(dkim_verify_from_count(v), 2);
        free(m);
    }
    /* A From added below the signed one is the one the signature sees:
     * the signature breaks. */
    m = replace(signed_, "Subject:", "From: Evil <ceo@evil.example>\r\nSubject:");
    fx_run(v, &z, m, NOW);
    CHECK_EQ_STR(fx_result(v, 0), "fail");
    free(m);
    m = replace(signed_, "Subject:", "Subject: Urgent: pay now\r\nSubject:");
    fx_run(v, &z, m, NOW);
    CHECK_EQ_STR(fx_result(v, 0), "policy");
    CHECK_EQ_STR(fx_reason(v, 0), "unsigned Subject above signed");
    CHECK_EQ_INT(dkim_verify_result(v, 0)->flags, DKIM_SF_UNSIGNED_SUBJECT);
    CHECK_EQ_INT(dkim_verify_subject_count(v), 2);
    free(m);
    free(signed_);

    /* A signature that does not sign Subject at all says nothing of it. */
    tags = "v=1; a=ed25519-sha256; c=relaxed/relaxed; d=football.example.com;"
           " s=brisbane; h=from:to;";
    signed_ = fx_forge(FX_RFC6376_MSG, ed, tags, DKIM_CANON_RELAXED, DKIM_CANON_RELAXED,
                       DKIM_NO_LIMIT);
    m = replace(signed_, "Subject:", "Subject: Urgent\r\nSubject:");
    fx_run(v, &z, m, NOW);
    CHECK_EQ_STR(fx_result(v, 0), "pass");
    free(m);
    free(signed_);
    EVP_PKEY_free(ed);
}

/* Signatures of every shape that tern's signer never makes. */
static void test_forged_shapes(void)
{
    zone_clear(&z);
    fx_zone_rfc(&z);
    EVP_PKEY *ed = fx_rfc_ed_key(), *rsa = fx_rfc_rsa_key();
    const char *ed_tags = "v=1; a=ed25519-sha256; d=football.example.com; s=brisbane;"
                          " h=from:to:subject;";
    /* simple/simple (the default c=): case in a header breaks it. */
    char *m = fx_forge(FX_RFC6376_MSG, ed, ed_tags, DKIM_CANON_SIMPLE, DKIM_CANON_SIMPLE,
                       DKIM_NO_LIMIT);
    fx_run(v, &z, m, NOW);
    CHECK_EQ_STR(fx_result(v, 0), "pass");
    char *m2 = replace(m, "Subject: Is", "subject: Is");
    fx_run(v, &z, m2, NOW);
    CHECK_EQ_STR(fx_reason(v, 0), "signature mismatch");
    free(m2);
    m2 = replace(m, "Joe.\r\n", "Joe. \r\n");
    fx_run(v, &z, m2, NOW);
    CHECK_EQ_STR(fx_reason(v, 0), "body hash mismatch");
    free(m2);
    /* Trailing empty lines do not count in simple either. */
    m2 = replace(m, "Joe.\r\n", "Joe.\r\n\r\n\r\n");
    fx_run(v, &z, m2, NOW);
    CHECK_EQ_STR(fx_result(v, 0), "pass");
    free(m2);
    free(m);

    /* l=: the first 10 octets signed; content after them is unsigned
     * (reported), content inside them is not. */
    m = fx_forge(FX_RFC6376_MSG, ed,
                 "v=1; a=ed25519-sha256; c=simple/relaxed; d=football.example.com; s=brisbane;"
                 " l=10; h=from:to:subject;",
                 DKIM_CANON_SIMPLE, DKIM_CANON_RELAXED, 10);
    fx_run(v, &z, m, NOW);
    CHECK_EQ_STR(fx_result(v, 0), "pass");
    const struct dkim_sig_result *r = dkim_verify_result(v, 0);
    CHECK_EQ_INT(r->l, 10);
    CHECK_EQ_INT(r->body_len, 54);
    CHECK_EQ_INT(r->flags, DKIM_SF_LENGTH);
    m2 = replace(m, "Joe.\r\n", "Joe.\r\nClick http://evil.example/\r\n");
    fx_run(v, &z, m2, NOW);
    CHECK_EQ_STR(fx_result(v, 0), "pass");
    CHECK(dkim_verify_result(v, 0)->flags & DKIM_SF_LENGTH);
    free(m2);
    m2 = replace(m, "Hi.", "Ho.");
    fx_run(v, &z, m2, NOW);
    CHECK_EQ_STR(fx_reason(v, 0), "body hash mismatch");
    free(m2);
    free(m);
    /* l= as long as the body: no flag; longer: fail. */
    m = fx_forge(FX_RFC6376_MSG, ed,
                 "v=1; a=ed25519-sha256; c=relaxed/relaxed; d=football.example.com;"
                 " s=brisbane; l=54; h=from;",
                 DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, 54);
    fx_run(v, &z, m, NOW);
    CHECK_EQ_STR(fx_result(v, 0), "pass");
    CHECK_EQ_INT(dkim_verify_result(v, 0)->flags, 0);
    free(m);
    m = fx_forge(FX_RFC6376_MSG, ed,
                 "v=1; a=ed25519-sha256; c=relaxed/relaxed; d=football.example.com;"
                 " s=brisbane; l=55; h=from;",
                 DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, 55);
    fx_run(v, &z, m, NOW);
    CHECK_EQ_STR(fx_result(v, 0), "fail");
    CHECK_EQ_STR(fx_reason(v, 0), "l= longer than the body");
    free(m);

    /* h= naming fields the message lacks, and folded with spaces. */
    m = fx_forge(FX_RFC6376_MSG, rsa,
                 "v=1; a=rsa-sha256; c=relaxed/relaxed; d=football.example.com; s=test;"
                 " h=from :\r\n\treply-to:from: x-absent ;",
                 DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, DKIM_NO_LIMIT);
    fx_run(v, &z, m, NOW);
    CHECK_EQ_STR(fx_result(v, 0), "pass");
    m2 = replace(m, "To:", "Reply-To: evil@evil.example\r\nTo:");
    fx_run(v, &z, m2, NOW);
    CHECK_EQ_STR(fx_reason(v, 0), "signature mismatch");
    free(m2);
    free(m);

    /* i=: within d= passes; a key's t=s wants d= itself. */
    m = fx_forge(FX_RFC6376_MSG, ed,
                 "v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.com; s=strict;"
                 " i=joe@football.example.com; h=from;",
                 DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, DKIM_NO_LIMIT);
    zone_txt(&z, "strict._domainkey.example.com",
             "v=DKIM1; k=ed25519; t=s:y; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
    fx_run(v, &z, m, NOW);
    CHECK_EQ_STR(fx_result(v, 0), "permerror");
    CHECK_EQ_STR(fx_reason(v, 0), "i= in a subdomain, key has t=s");
    CHECK_EQ_STR(dkim_verify_result(v, 0)->i, "joe@football.example.com");
    CHECK(dkim_verify_result(v, 0)->flags & DKIM_SF_TESTING);
    free(m);
    m = fx_forge(FX_RFC6376_MSG, ed,
                 "v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.com; s=strict;"
                 " i=joe@example.com; h=from;",
                 DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, DKIM_NO_LIMIT);
    fx_run(v, &z, m, NOW);
    CHECK_EQ_STR(fx_result(v, 0), "pass");
    CHECK_EQ_INT(dkim_verify_result(v, 0)->flags, DKIM_SF_TESTING);
    free(m);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(rsa);
}

/* x=, t= (with the clock skew) and rsa-sha1 are judged without DNS. */
static void test_times_and_sha1(void)
{
    zone_clear(&z);
    fx_zone_rfc(&z);
    EVP_PKEY *ed = fx_rfc_ed_key();
    struct {
        const char *tags;
        long long now;
        const char *result, *reason;
        unsigned asked;
    } cases[] = {
        {"t=1000; x=2000;", 2000 + 300, "pass", "", 1},
        {"t=1000; x=2000;", 2000 + 301, "fail", "signature expired", 0},
        {"t=1000;", 1000 - 300, "pass", "", 1},
        {"t=1000;", 1000 - 301, "fail", "signature time in the future", 0},
        {"x=5000;", 100, "pass", "", 1},
        {"t=1000; x=2000;", 0, "pass", "", 1}, /* no clock: unchecked */
        {"t=99999999999999999;", 1000, "neutral", "malformed t=", 0},
        {"t=2000; x=2000;", 1500, "neutral", "x= not after t=", 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char tags[256];
        snprintf(tags, sizeof tags,
                 "v=1; a=ed25519-sha256; c=relaxed/relaxed; d=football.example.com;"
                 " s=brisbane; %s h=from;",
                 cases[k].tags);
        char *m = fx_forge(FX_RFC6376_MSG, ed, tags, DKIM_CANON_RELAXED, DKIM_CANON_RELAXED,
                           DKIM_NO_LIMIT);
        z.asked = 0;
        fx_run(v, &z, m, cases[k].now);
        CHECK_EQ_STR(fx_result(v, 0), cases[k].result);
        CHECK_EQ_STR(fx_reason(v, 0), cases[k].reason);
        CHECK_EQ_INT(z.asked, cases[k].asked);
        free(m);
    }
    /* RFC 8301 §3.1: rsa-sha1 fails whatever its key. */
    char *m1 = replace(FX_RFC8463_MSG, "a=rsa-sha256", "a=rsa-sha1");
    char *m = replace(m1, "bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n b=F45",
                      "bh=AAAAAAAAAAAAAAAAAAAAAAAAAAA=;\r\n b=F45");
    free(m1);
    z.asked = 0;
    fx_run(v, &z, m, NOW);
    CHECK_EQ_STR(fx_result(v, 0), "pass");
    CHECK_EQ_STR(fx_result(v, 1), "fail");
    CHECK_EQ_STR(fx_reason(v, 1), "rsa-sha1 is not accepted (RFC 8301)");
    CHECK_EQ_INT(dkim_verify_result(v, 1)->alg, DKIM_ALG_RSA_SHA1);
    CHECK_EQ_INT(z.asked, 1);
    free(m);
    EVP_PKEY_free(ed);
}

/* What the key's DNS name answers. */
static void test_keys(void)
{
    EVP_PKEY *ed = fx_rfc_ed_key(), *small = fx_rsa(512), *rsa = fx_rfc_rsa_key();
    const char *tags = "v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.org; s=k;"
                       " h=from;";
    char *m = fx_forge(FX_RFC6376_MSG, ed, tags, DKIM_CANON_RELAXED, DKIM_CANON_RELAXED,
                       DKIM_NO_LIMIT);
    struct {
        const char *record; /* NULL: no name; "T": time out; "S": SERVFAIL */
        const char *result, *reason;
    } cases[] = {
        {NULL, "permerror", "no key for signature"},
        {"S", "temperror", "key lookup failed"},
        {"v=DKIM1; k=ed25519; p=", "fail", "key revoked"},
        {"v=DKIM1; p=", "fail", "key revoked"},
        {"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR"
         "iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC"
         "DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3"
         "Ip3G+2kryOTIKT+l/K4w3QIDAQAB",
         "permerror", "key type does not match a="},
        {"v=DKIM1; k=ed25519; h=sha1; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
         "permerror", "key not for sha256"},
        {"v=DKIM1; k=ed25519; s=other; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
         "permerror", "key not for email"},
        {"v=DKIM1; k=dsa; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", "permerror",
         "unknown key type"},
        {"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS", "permerror", "p= is not base64"},
        {"k=ed25519; v=DKIM1; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", "permerror",
         "v= not first in the key record"},
        {"v=spf1 -all", "permerror", "no key for signature"},
        {"v=DKIM1; k=ed25519; p", "permerror", "malformed key record"},
        {"v=DKIM2; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", "permerror",
         "no key for signature"},
        {"k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=; n=note; x=unknown", "pass",
         ""},
        {"v=DKIM1; k=ed25519; h=sha1:sha256; s=*; t=y; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaP"
         "cHURo=",
         "pass", ""},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        zone_clear(&z);
        if (cases[k].record && strcmp(cases[k].record, "S") == 0)
            zone_timeout(&z, "k._domainkey.example.org", 0);
        else if (cases[k].record)
            zone_txt(&z, "k._domainkey.example.org", cases[k].record);
        fx_run(v, &z, m, NOW);
        CHECK_EQ_STR(fx_result(v, 0), cases[k].result);
        CHECK_EQ_STR(fx_reason(v, 0), cases[k].reason);
    }
    /* Several records: one that is no DKIM key is skipped; the first
     * DKIM key decides. */
    zone_clear(&z);
    zone_txt(&z, "k._domainkey.example.org", "v=DKIM2; p=bogus");
    zone_txt(&z, "k._domainkey.example.org", fx_ed_record);
    zone_txt(&z, "k._domainkey.example.org", "v=DKIM1; p=");
    fx_run(v, &z, m, NOW);
    CHECK_EQ_STR(fx_result(v, 0), "pass");
    /* A CNAME is the resolver's to follow. */
    zone_clear(&z);
    zone_cname(&z, "k._domainkey.example.org", "k._domainkey.provider.example");
    zone_txt(&z, "k._domainkey.provider.example", fx_ed_record);
    fx_run(v, &z, m, NOW);
    CHECK_EQ_STR(fx_result(v, 0), "pass");
    free(m);

    /* RFC 8301 §3.2: RSA under 1024 bits fails. */
    zone_clear(&z);
    fx_zone_key(&z, "small._domainkey.example.org", small);
    m = fx_forge(FX_RFC6376_MSG, small,
                 "v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=small; h=from;",
                 DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, DKIM_NO_LIMIT);
    fx_run(v, &z, m, NOW);
    CHECK_EQ_STR(fx_result(v, 0), "fail");
    CHECK_EQ_STR(fx_reason(v, 0), "key too small (RFC 8301)");
    CHECK_EQ_INT(dkim_verify_result(v, 0)->key_bits, 512);
    free(m);
    /* The bare RSAPublicKey form of p= (RFC 6376 §3.6.1's wording). */
    zone_clear(&z);
    zone_txt(&z, "pkcs1._domainkey.example.org",
             "v=DKIM1; p=MIGJAoGBAOQeU5CgFPNZGIazlXo2k/eJ1jpaTTxrmqF1HrDLlt04pvaMtCJj8nXoliLRC/"
             "H9vJjMI1vdb3XLcW60AIN/PBD8EL97/y4GwJH7LPUvGP48vqUe+owqszesbiGy1PlCO8c70/OjFnJVgvMF8"
             "7YR4Lcincb7aSvI5MgpP6X8rjDdAgMBAAE=");
    m = fx_forge(FX_RFC6376_MSG, rsa,
                 "v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=pkcs1; h=from;",
                 DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, DKIM_NO_LIMIT);
    fx_run(v, &z, m, NOW);
    CHECK_EQ_STR(fx_result(v, 0), "pass");
    CHECK_EQ_INT(dkim_verify_result(v, 0)->key_bits, 1024);
    free(m);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(small);
    EVP_PKEY_free(rsa);
}

static void test_timeout(void)
{
    zone_clear(&z);
    fx_zone_rfc(&z);
    struct dkim_verify_params p = {.now = NOW};
    dkim_verify_start(v, &p);
    dkim_verify_feed(v, FX_RFC8463_MSG, strlen(FX_RFC8463_MSG));
    dkim_verify_end(v);
    const struct dnsq_question *q;
    CHECK_EQ_INT(dkim_verify_questions(v, &q), 2);
    struct dnsq_answer a;
    zone_answer(&z, &q[0], &a);
    dkim_verify_answer(v, 0, &a);
    free((void *)a.rrs);
    CHECK_EQ_INT(dkim_verify_step(v), DKIM_STEP_DNS);
    dkim_verify_timeout(v);
    CHECK_EQ_INT(dkim_verify_step(v), DKIM_STEP_DONE);
    CHECK_EQ_STR(fx_result(v, 0), "pass");
    CHECK_EQ_STR(fx_result(v, 1), "temperror");
    CHECK_EQ_STR(fx_reason(v, 1), "key lookup timed out");
}

/* Malformed fields are neutral, keep their place, and ask nothing. */
static void test_malformed(void)
{
    zone_clear(&z);
    fx_zone_rfc(&z);
    struct {
        const char *from, *to, *reason;
    } cases[] = {
        {"v=1; a=ed25519", "v=2; a=ed25519", "v= is not 1"},
        {"a=ed25519-sha256", "a=ed448-sha256", "unknown algorithm"},
        {"c=relaxed/relaxed;\r\n d=football", "c=relaxed/fancy;\r\n d=football",
         "unknown canonicalization"},
        {"s=brisbane;", "s=bris bane;", "s= is no selector"},
        {"d=football.example.com; i=@football.example.com;\r\n q=dns/txt; s=brisbane",
         "d=football.example.com; i=@example.com;\r\n q=dns/txt; s=brisbane",
         "i= not within d="},
        {"q=dns/txt; s=brisbane", "q=http/well-known; s=brisbane", "q= has no dns/txt"},
        {"h=from : to :\r\n subject : date : message-id : from : subject : date;",
         "h=to : subject;", "h= does not sign From"},
        {"h=from : to :", "h=from : : to :", "malformed h="},
        {"b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n"
         " Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==",
         "b=", "empty b="},
        {"b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n"
         " Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==",
         "b=/gCr!npc", "malformed b="},
        {"bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;", "bh=2jUSOH9Nht;", "malformed bh="},
        {"t=1528637909; h=from", "t=1528637909; t=1; h=from", "malformed tag list"},
        {"s=brisbane;", "", "missing s="},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char *m = replace(FX_RFC8463_MSG, cases[k].from, cases[k].to);
        z.asked = 0;
        fx_run(v, &z, m, NOW);
        CHECK_EQ_INT(dkim_verify_count(v), 2);
        CHECK_EQ_STR(fx_result(v, 0), "neutral");
        CHECK_EQ_STR(fx_reason(v, 0), cases[k].reason);
        CHECK(!dkim_verify_result(v, 0)->parsed);
        CHECK_EQ_STR(fx_result(v, 1), "pass");
        CHECK_EQ_INT(z.asked, 1);
        free(m);
    }
}

/* No signature is none; more than DKIM_SIGS_MAX are not all read; a
 * header over the limit is read not at all; a message that is all
 * header has an empty body. */
static void test_limits(void)
{
    zone_clear(&z);
    fx_zone_rfc(&z);
    CHECK_EQ_INT(fx_run(v, &z, FX_RFC6376_MSG, NOW), 0);
    CHECK_EQ_INT(dkim_verify_count(v), 0);
    CHECK_EQ_INT(dkim_verify_sig_fields(v), 0);

    struct buf b = BUF_INIT;
    for (int k = 0; k < 12; k++)
        buf_puts(&b, FX_RFC8463_ED_SIG);
    buf_puts(&b, FX_RFC6376_MSG);
    z.asked = 0;
    CHECK_EQ_INT(fx_run(v, &z, b.data, NOW), 1);
    CHECK_EQ_INT(dkim_verify_count(v), DKIM_SIGS_MAX);
    CHECK_EQ_INT(dkim_verify_sig_fields(v), 12);
    CHECK_EQ_INT(dkim_verify_flags(v), DKIM_VF_SIGS_IGNORED);
    CHECK_EQ_INT(z.asked, 1); /* one name, asked once */
    for (size_t k = 0; k < DKIM_SIGS_MAX; k++)
        CHECK_EQ_STR(fx_result(v, k), "pass");

    buf_reset(&b);
    buf_puts(&b, FX_RFC8463_MSG);
    struct dkim_verify_params p = {.now = NOW, .header_max = 600};
    dkim_verify_start(v, &p);
    dkim_verify_feed(v, b.data, b.len);
    dkim_verify_end(v);
    CHECK_EQ_INT(dkim_verify_step(v), DKIM_STEP_DONE);
    CHECK_EQ_INT(dkim_verify_count(v), 0);
    CHECK_EQ_INT(dkim_verify_flags(v), DKIM_VF_HEADER_TOO_LARGE);

    /* All header: the body is empty, and the RFC's signature fails on
     * its body hash. */
    const char *hdr_only = FX_RFC8463_ED_SIG FX_RFC6376_HEADER;
    fx_run(v, &z, hdr_only, NOW);
    CHECK_EQ_STR(fx_result(v, 0), "fail");
    CHECK_EQ_STR(fx_reason(v, 0), "body hash mismatch");
    CHECK_EQ_INT(dkim_verify_result(v, 0)->body_len, 0);
    buf_free(&b);
}

int main(void)
{
    v = dkim_verify_new();
    test_rfc8463();
    test_rfc8463_splits();
    test_resumable();
    test_tampered();
    test_unsigned_from();
    test_forged_shapes();
    test_times_and_sha1();
    test_keys();
    test_timeout();
    test_malformed();
    test_limits();
    dkim_verify_free(v);
    zone_clear(&z);
    return check_result("test_dkim_verify");
}
