/* Unit tests for mailauth/arc_verify (and arc_set) against fixed DNS data:
 * chains of 1 to 12 sets made by mailauth/arc_seal with RSA and Ed25519
 * keys (every split of the message, answers in any order), oldest-pass,
 * every way a chain fails (tampered body, AAR, AMS, AS; a set or a field
 * removed or doubled; cv= rules; h= in a seal; an AMS signing ARC fields
 * or leaving a From unsigned; malformed fields and instances; keys
 * missing, revoked, too small, of the wrong type, failing or timing out;
 * rsa-sha1; x=), the batches of questions, and the resumable interface. */
#include <errno.h>
#include <string.h>

#include "arc_fixture.h"
#include "check.h"

static struct zone z;
static struct arc_verify *v;
static EVP_PKEY *rsa, *ed, *hop[12], *small;

#define MSG FX_RFC6376_MSG
#define AR1 "mx.football.example.com; spf=pass smtp.mailfrom=football.example.com"
#define RSA_D "football.example.com"

static void zone_setup(void)
{
    zone_clear(&z);
    fx_zone_rfc(&z);
    char name[64];
    for (int i = 0; i < 12; i++) {
        snprintf(name, sizeof name, "s._domainkey.hop%d.example", i);
        fx_zone_key(&z, name, hop[i]);
    }
    fx_zone_key(&z, "small._domainkey.hop0.example", small);
    zone_txt(&z, "revoked._domainkey.hop0.example", "v=DKIM1; p=");
    zone_timeout(&z, "slow._domainkey.hop0.example", 0);
    zone_txt(&z, "rsa._domainkey.hop0.example", fx_rsa_record_strs[0]);
}

/* A chain of n sets: hop i seals with hop[i] (Ed25519) at hopi.example. */
static char *chain(int n)
{
    char *m = xstrdup(MSG), d[32], ar[64];
    for (int i = 0; i < n; i++) {
        snprintf(d, sizeof d, "hop%d.example", i);
        snprintf(ar, sizeof ar, "%s; arc=%s", d, i ? "pass" : "none");
        m = fx_arc_reseal(m, hop[i], d, "s", i ? ARC_PASS : ARC_NONE, ar);
    }
    return m;
}

static void check_fail(const char *msg, const char *reason)
{
    CHECK(fx_arc_run(v, &z, msg) >= 0);
    const struct arc_verify_result *r = arc_verify_result(v);
    CHECK_EQ_STR(fx_arc_result(v), "fail");
    CHECK_EQ_STR(r->reason, reason);
    CHECK_EQ_INT(r->oldest_pass, -1);
}

static void test_none(void)
{
    zone_setup();
    z.asked = 0;
    CHECK_EQ_INT(fx_arc_run(v, &z, MSG), 0);
    const struct arc_verify_result *r = arc_verify_result(v);
    CHECK_EQ_STR(fx_arc_result(v), "none");
    CHECK_EQ_STR(r->reason, "");
    CHECK_EQ_INT(r->sets, 0);
    CHECK_EQ_INT(r->oldest_pass, -1);
    CHECK(r->aar_text == NULL);
    CHECK_EQ_INT(z.asked, 0);
    /* A field that merely starts like one is no ARC field. */
    CHECK_EQ_INT(fx_arc_run(v, &z, "ARC-Sealed: x\r\nArc: y\r\n" MSG), 0);
    CHECK_EQ_STR(fx_arc_result(v), "none");
    /* No body, no header end. */
    CHECK_EQ_INT(fx_arc_run(v, &z, "From: a@b.example"), 0);
    CHECK_EQ_STR(fx_arc_result(v), "none");
}

static void test_one_set(void)
{
    zone_setup();
    char *m = fx_arc_seal(MSG, rsa, RSA_D, "test", ARC_NONE, AR1);
    z.asked = 0;
    CHECK_EQ_INT(fx_arc_run(v, &z, m), 1);
    const struct arc_verify_result *r = arc_verify_result(v);
    CHECK_EQ_STR(fx_arc_result(v), "pass");
    CHECK_EQ_STR(r->reason, "");
    CHECK_EQ_INT(r->sets, 1);
    CHECK_EQ_INT(r->oldest_pass, 0);
    CHECK(!r->temporary);
    CHECK_EQ_STR(r->as_d, RSA_D);
    CHECK_EQ_STR(r->aar_id, "mx.football.example.com");
    CHECK_EQ_MEM(r->aar_text, r->aar_len, AR1, strlen(AR1));
    CHECK_EQ_INT(z.asked, 1); /* AMS and AS share their key: one question */
    CHECK(strstr(z.log, "TXT test._domainkey.football.example.com\n") != NULL);
    free(m);

    m = fx_arc_seal(MSG, ed, RSA_D, "brisbane", ARC_NONE, AR1);
    CHECK_EQ_INT(fx_arc_run(v, &z, m), 1);
    CHECK_EQ_STR(fx_arc_result(v), "pass");
    free(m);
}

/* Every split point gives the same verdict; reusing the validator too. */
static void test_splits(void)
{
    zone_setup();
    char *m = chain(2);
    size_t n = strlen(m);
    int bad = 0;
    for (size_t chunk = 1; chunk <= n; chunk++) {
        if (fx_arc_run_n(v, &z, m, n, chunk, FX_ARC_T) != 1 ||
            arc_verify_result(v)->result != ARC_PASS)
            bad++;
        if (chunk > 64)
            chunk += 17;
    }
    CHECK_EQ_INT(bad, 0);
    struct arc_verify_params p = {.now = FX_ARC_T};
    for (size_t cut = 0; cut <= n; cut += 3) {
        arc_verify_start(v, &p);
        arc_verify_feed(v, m, cut);
        arc_verify_feed(v, m + cut, n - cut);
        arc_verify_end(v);
        while (arc_verify_step(v) == ARC_STEP_DNS) {
            const struct dnsq_question *q;
            size_t nq = arc_verify_questions(v, &q);
            for (size_t k = 0; k < nq; k++) { /* first question first this time */
                struct dnsq_answer a;
                zone_answer(&z, &q[k], &a);
                arc_verify_answer(v, k, &a);
                free((void *)a.rrs);
            }
        }
        if (arc_verify_result(v)->result != ARC_PASS)
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
    free(m);
}

static void test_chains(void)
{
    zone_setup();
    for (int n = 1; n <= 3; n++) {
        char *m = chain(n);
        z.asked = 0;
        CHECK_EQ_INT(fx_arc_run(v, &z, m), 1);
        const struct arc_verify_result *r = arc_verify_result(v);
        CHECK_EQ_STR(fx_arc_result(v), "pass");
        CHECK_EQ_INT(r->sets, n);
        CHECK_EQ_INT(r->oldest_pass, 0);
        CHECK_EQ_INT(z.asked, n);
        char d[32], id[32];
        snprintf(d, sizeof d, "hop%d.example", n - 1);
        snprintf(id, sizeof id, "hop%d.example; arc=%s", n - 1, n > 1 ? "pass" : "none");
        CHECK_EQ_STR(r->as_d, d);
        CHECK_EQ_STR(r->aar_id, d);
        CHECK_EQ_MEM(r->aar_text, r->aar_len, id, strlen(id));
        free(m);
    }
    /* A hop that adds a header field and a footer after sealing breaks
     * only the AMSs before it... as long as the next hop seals: below. A
     * Received field added above the chain changes nothing. */
    char *m = chain(2);
    char *r = malloc(strlen(m) + 64);
    sprintf(r, "Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000\r\n%s", m);
    CHECK(fx_arc_run(v, &z, r) == 1);
    CHECK_EQ_STR(fx_arc_result(v), "pass");
    free(r);
    free(m);
}

/* §5.2 step 5: a message changed after hop 0 sealed it, then sealed by
 * hops 1 and 2 (hop 1 saying cv=pass, as a hop whose own validation was
 * fooled or that changed the body itself would): the chain passes, and
 * only the AMSs from hop 1 on verify. */
static void test_oldest_pass(void)
{
    zone_setup();
    char *m = chain(1);
    char *body = strstr(m, "We lost");
    body[3] = 'L'; /* "We Lost" */
    m = fx_arc_reseal(m, hop[1], "hop1.example", "s", ARC_PASS, "hop1.example; arc=pass");
    m = fx_arc_reseal(m, hop[2], "hop2.example", "s", ARC_PASS, "hop2.example; arc=pass");
    CHECK_EQ_INT(fx_arc_run(v, &z, m), 1);
    CHECK_EQ_STR(fx_arc_result(v), "pass");
    CHECK_EQ_INT(arc_verify_result(v)->oldest_pass, 2);
    CHECK_EQ_INT(arc_verify_result(v)->sets, 3);
    free(m);
    /* Changed after hop 1: oldest-pass 3. */
    m = chain(2);
    body = strstr(m, "We lost");
    body[3] = 'L';
    m = fx_arc_reseal(m, hop[2], "hop2.example", "s", ARC_PASS, "hop2.example; arc=pass");
    CHECK_EQ_INT(fx_arc_run(v, &z, m), 1);
    CHECK_EQ_INT(arc_verify_result(v)->oldest_pass, 3);
    free(m);
    /* An older AMS whose key is missing counts as not verifying. */
    m = fx_arc_forge(MSG, hop[0], "i=1; a.example; arc=none",
                     "i=1; a=ed25519-sha256; c=relaxed/relaxed; d=hop0.example; s=gone; "
                     "h=from:to:subject;",
                     "i=1; a=ed25519-sha256; cv=none; d=hop0.example; s=s;", true);
    m = fx_arc_reseal(m, hop[1], "hop1.example", "s", ARC_PASS, "hop1.example; arc=pass");
    CHECK_EQ_INT(fx_arc_run(v, &z, m), 1);
    CHECK_EQ_STR(fx_arc_result(v), "pass");
    CHECK_EQ_INT(arc_verify_result(v)->oldest_pass, 2);
    free(m);
}

static char *dup_replace(const char *m, const char *from, const char *to)
{
    const char *at = strstr(m, from);
    if (at == NULL)
        abort();
    size_t n = strlen(m), fl = strlen(from), tl = strlen(to);
    char *out = malloc(n - fl + tl + 1);
    memcpy(out, m, (size_t)(at - m));
    memcpy(out + (at - m), to, tl);
    strcpy(out + (at - m) + tl, at + fl);
    return out;
}

/* The text of the line of m that starts with prefix, with its folds, and
 * its CRLF. */
static char *field_of(const char *m, const char *prefix)
{
    const char *at = strstr(m, prefix);
    if (at == NULL)
        abort();
    const char *end = at;
    while ((end = strstr(end, "\r\n")) != NULL && (end[2] == ' ' || end[2] == '\t'))
        end += 2;
    size_t len = (size_t)(end + 2 - at);
    char *f = malloc(len + 1);
    memcpy(f, at, len);
    f[len] = '\0';
    return f;
}

static char *remove_field(const char *m, const char *prefix)
{
    char *f = field_of(m, prefix);
    char *out = dup_replace(m, f, "");
    free(f);
    return out;
}

static void test_tampered(void)
{
    zone_setup();
    char *m = chain(3), *t;
    t = dup_replace(m, "We lost", "We won!");
    check_fail(t, "i=3 ARC-Message-Signature: body hash mismatch");
    free(t);
    t = dup_replace(m, "Subject: Is dinner ready?", "Subject: Is lunch ready?");
    check_fail(t, "i=3 ARC-Message-Signature: signature mismatch");
    free(t);
    /* The first hop's AAR: every seal signs it; the newest is judged first. */
    t = dup_replace(m, "hop0.example; arc=none", "hop0.example; arc=pass");
    check_fail(t, "i=3 ARC-Seal: signature mismatch");
    free(t);
    /* An older AMS changed: its own AMS fails (oldest-pass), the seals
     * that sign it fail the chain. */
    char *ams = field_of(m, "ARC-Message-Signature: i=1;");
    char *ams2 = dup_replace(ams, "; c=relaxed/relaxed", ";  c=relaxed/relaxed");
    t = dup_replace(m, ams, ams2);
    CHECK(fx_arc_run(v, &z, t) == 1);
    CHECK_EQ_STR(fx_arc_result(v), "pass"); /* relaxed: two spaces are one */
    free(t);
    free(ams2);
    ams2 = dup_replace(ams, "c=relaxed/relaxed", "c=relaxed/simple");
    t = dup_replace(m, ams, ams2);
    check_fail(t, "i=3 ARC-Seal: signature mismatch");
    free(t);
    free(ams2);
    free(ams);
    /* A seal's signature changed. */
    char *as = field_of(m, "ARC-Seal: i=2;");
    char *b = strstr(as, " b=") + 3;
    char *as2 = xstrdup(as);
    as2[b - as] = b[0] == 'A' ? 'B' : 'A';
    t = dup_replace(m, as, as2);
    check_fail(t, "i=3 ARC-Seal: signature mismatch"); /* seal 3 signs seal 2 */
    free(t);
    free(as2);
    free(as);
    free(m);
}

static void test_form(void)
{
    zone_setup();
    char *m = chain(3), *t, *u;
    z.asked = 0;
    t = remove_field(m, "ARC-Seal: i=2;");
    check_fail(t, "incomplete ARC set");
    free(t);
    t = remove_field(m, "ARC-Authentication-Results: i=2;");
    u = remove_field(t, "ARC-Message-Signature: i=2;");
    free(t);
    t = remove_field(u, "ARC-Seal: i=2;");
    free(u);
    check_fail(t, "ARC instances with a gap");
    free(t);
    CHECK_EQ_INT(z.asked, 0); /* decided on the form alone */
    /* The newest set removed: a shorter chain that still verifies (the
     * RFC cannot tell; the last hop's results are gone with it). */
    t = remove_field(m, "ARC-Seal: i=3;");
    u = remove_field(t, "ARC-Message-Signature: i=3;");
    free(t);
    t = remove_field(u, "ARC-Authentication-Results: i=3;");
    free(u);
    CHECK(fx_arc_run(v, &z, t) == 1);
    CHECK_EQ_STR(fx_arc_result(v), "pass");
    CHECK_EQ_INT(arc_verify_result(v)->sets, 2);
    free(t);
    /* A field doubled. */
    char *aar = field_of(m, "ARC-Authentication-Results: i=2;");
    size_t n = strlen(m) + strlen(aar) + 1;
    t = malloc(n);
    snprintf(t, n, "%s%s", aar, m);
    check_fail(t, "two ARC fields of a kind in one instance");
    free(t);
    free(aar);
    /* Instances out of range or unreadable. */
    static const char *const bad[] = {
        "ARC-Seal: i=51; cv=pass; a=rsa-sha256; d=x.example; s=s; b=AAAA\r\n",
        "ARC-Seal: i=0; cv=pass; a=rsa-sha256; d=x.example; s=s; b=AAAA\r\n",
        "ARC-Seal: cv=pass; a=rsa-sha256; d=x.example; s=s; b=AAAA\r\n",
        "ARC-Seal: i=4; i=4; b=AAAA\r\n",
        "ARC-Message-Signature: i=x4;\r\n",
        "ARC-Authentication-Results: x.example; dkim=pass\r\n",
        "ARC-Authentication-Results: i=100; x.example\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = strlen(m) + strlen(bad[i]) + 1;
        t = malloc(n);
        snprintf(t, n, "%s%s", bad[i], m);
        check_fail(t, "ARC field without a valid instance");
        free(t);
    }
    /* An AAR whose payload is unreadable still counts; its id is "". */
    t = dup_replace(m, "i=3; hop2.example; arc=pass", "i=3; ;;");
    check_fail(t, "i=3 ARC-Seal: signature mismatch");
    CHECK_EQ_STR(arc_verify_result(v)->aar_id, "");
    CHECK_EQ_MEM(arc_verify_result(v)->aar_text, arc_verify_result(v)->aar_len, ";;", 2);
    free(t);
    free(m);
}

static void test_cv(void)
{
    zone_setup();
    char *m = chain(2), *t;
    t = fx_arc_seal(m, hop[2], "hop2.example", "s", ARC_FAIL, "hop2.example; arc=fail");
    check_fail(t, "the newest ARC-Seal says cv=fail");
    CHECK_EQ_INT(arc_verify_result(v)->sets, 3);
    free(t);
    /* Forged: cv=fail inside, cv=pass at i=1, cv=none after it, an
     * unknown cv=. */
    t = dup_replace(m, "i=1; a=ed25519-sha256; t=1700000000; cv=none",
                    "i=1; a=ed25519-sha256; t=1700000000; cv=pass");
    check_fail(t, "i=1 ARC-Seal: cv= is not none at i=1");
    free(t);
    t = dup_replace(m, "i=2; a=ed25519-sha256; t=1700000000; cv=pass",
                    "i=2; a=ed25519-sha256; t=1700000000; cv=none");
    check_fail(t, "i=2 ARC-Seal: cv=none after i=1");
    free(t);
    t = dup_replace(m, "i=2; a=ed25519-sha256; t=1700000000; cv=pass",
                    "i=2; a=ed25519-sha256; t=1700000000; cv=maybe");
    check_fail(t, "i=2 ARC-Seal: unknown cv= in ARC-Seal");
    free(t);
    char *three = fx_arc_seal(m, hop[2], "hop2.example", "s", ARC_PASS, "hop2.example; arc=pass");
    t = dup_replace(three, "i=2; a=ed25519-sha256; t=1700000000; cv=pass",
                    "i=2; a=ed25519-sha256; t=1700000000; cv=fail");
    check_fail(t, "i=2 ARC-Seal: cv=fail inside the chain");
    free(t);
    free(three);
    /* RFC 8617 §4.1.3: h= in a seal fails it. */
    t = fx_arc_forge(MSG, hop[0], "i=1; a.example; arc=none",
                     "i=1; a=ed25519-sha256; c=relaxed/relaxed; d=hop0.example; s=s; h=from;",
                     "i=1; a=ed25519-sha256; cv=none; d=hop0.example; s=s; h=from;", true);
    check_fail(t, "i=1 ARC-Seal: h= in ARC-Seal");
    free(t);
    free(m);
}

/* A one-set chain forged with the given AMS and AS tags. */
static char *forge1(EVP_PKEY *k, const char *ams, const char *as)
{
    return fx_arc_forge(MSG, k, "i=1; a.example; arc=none", ams, as, true);
}

#define AMS_ED "i=1; a=ed25519-sha256; c=relaxed/relaxed; d=hop0.example; s=s; "
#define AS_ED "i=1; a=ed25519-sha256; cv=none; d=hop0.example; s=s;"

static void test_signatures(void)
{
    zone_setup();
    char *t = forge1(hop[0], AMS_ED "h=from:to:subject;", AS_ED);
    CHECK(fx_arc_run(v, &z, t) == 1);
    CHECK_EQ_STR(fx_arc_result(v), "pass"); /* the forger itself works */
    free(t);
    /* RFC 8617 §4.1.2: an AMS signing ARC fields or A-R. */
    t = forge1(hop[0], AMS_ED "h=from:arc-seal;", AS_ED);
    check_fail(t, "i=1 ARC-Message-Signature: signs an ARC or Authentication-Results field");
    free(t);
    t = forge1(hop[0], AMS_ED "h=from:Authentication-Results;", AS_ED);
    check_fail(t, "i=1 ARC-Message-Signature: signs an ARC or Authentication-Results field");
    free(t);
    /* No From in h=, no AMS tags, a v= (ignored), a DKIM-style i= absent. */
    t = forge1(hop[0], AMS_ED "h=to:subject;", AS_ED);
    check_fail(t, "i=1 ARC-Message-Signature: h= does not sign From");
    free(t);
    t = forge1(hop[0], "i=1; a=ed25519-sha256; d=hop0.example; s=s; h=from;", AS_ED);
    check_fail(t, "i=1 ARC-Message-Signature: body hash mismatch"); /* c= simple by default */
    free(t);
    t = forge1(hop[0], "v=1; " AMS_ED "h=from;", AS_ED);
    CHECK(fx_arc_run(v, &z, t) == 1);
    CHECK_EQ_STR(fx_arc_result(v), "pass");
    free(t);
    /* RFC 6376 §8.15: a From added above the signed one. */
    t = forge1(hop[0], AMS_ED "h=from:to;", AS_ED);
    char *u = malloc(strlen(t) + 64);
    sprintf(u, "From: <ceo@bank.example>\r\n%s", t);
    check_fail(u, "i=1 ARC-Message-Signature: unsigned From above signed");
    free(u);
    free(t);
    t = forge1(hop[0], AMS_ED "h=from:subject;", AS_ED);
    u = malloc(strlen(t) + 64);
    sprintf(u, "Subject: Pay now\r\n%s", t);
    check_fail(u, "i=1 ARC-Message-Signature: unsigned Subject above signed");
    free(u);
    free(t);
    /* Malformed seals. */
    t = forge1(hop[0], AMS_ED "h=from;", "i=1; a=ed25519-sha256; d=hop0.example; s=s;");
    check_fail(t, "i=1 ARC-Seal: ARC-Seal lacks a required tag");
    free(t);
    t = forge1(hop[0], AMS_ED "h=from;", "i=1; a=ed448; cv=none; d=hop0.example; s=s;");
    check_fail(t, "i=1 ARC-Seal: unknown algorithm in ARC-Seal");
    free(t);
    t = forge1(hop[0], AMS_ED "h=from;", "i=1; a=ed25519-sha256; cv=none; d=hop0..example; s=s;");
    check_fail(t, "i=1 ARC-Seal: ARC-Seal d= or s= is no domain");
    free(t);
    t = forge1(hop[0], AMS_ED "h=from;", NULL);
    check_fail(t, "incomplete ARC set");
    free(t);
    /* The newest AMS malformed: decided at once. */
    t = forge1(hop[0], "i=1; a=ed25519-sha256; d=hop0.example; s=s; h=from; l=x;", AS_ED);
    check_fail(t, "i=1 ARC-Message-Signature: malformed l=");
    free(t);
    /* RFC 8301: rsa-sha1, small keys; x= in the past. */
    t = forge1(hop[0], AMS_ED "h=from;", "i=1; a=rsa-sha1; cv=none; d=hop0.example; s=s;");
    check_fail(t, "i=1 ARC-Seal: rsa-sha1 is not accepted (RFC 8301)");
    free(t);
    t = forge1(small, "i=1; a=rsa-sha256; c=relaxed/relaxed; d=hop0.example; s=small; h=from;",
               "i=1; a=rsa-sha256; cv=none; d=hop0.example; s=small;");
    check_fail(t, "i=1 ARC-Message-Signature: key too small (RFC 8301)");
    free(t);
    t = forge1(hop[0], AMS_ED "h=from; t=100; x=200;", AS_ED);
    check_fail(t, "i=1 ARC-Message-Signature: signature expired");
    free(t);
    /* A key of the other type. */
    t = forge1(hop[0], AMS_ED "h=from;",
               "i=1; a=rsa-sha256; cv=none; d=hop0.example; s=s;");
    check_fail(t, "i=1 ARC-Seal: key type does not match a=");
    free(t);
}

static void test_keys(void)
{
    zone_setup();
    static const struct {
        const char *sel, *reason;
        bool temp;
    } cases[] = {
        {"gone", "no key for signature", false},
        {"revoked", "key revoked", false},
        {"rsa", "malformed key record", false},
        {"slow", "key lookup failed", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char ams[160], as[160], want[160];
        snprintf(ams, sizeof ams,
                 "i=1; a=ed25519-sha256; c=relaxed/relaxed; d=hop0.example; s=%s; h=from;",
                 cases[i].sel);
        snprintf(as, sizeof as, "i=1; a=ed25519-sha256; cv=none; d=hop0.example; s=%s;",
                 cases[i].sel);
        char *t = forge1(hop[0], ams, as);
        CHECK(fx_arc_run(v, &z, t) == 1);
        const struct arc_verify_result *r = arc_verify_result(v);
        CHECK_EQ_STR(fx_arc_result(v), "fail");
        snprintf(want, sizeof want, "i=1 ARC-Message-Signature: %s", cases[i].reason);
        if (strcmp(cases[i].sel, "rsa") != 0)
            CHECK_EQ_STR(r->reason, want);
        else
            CHECK(strncmp(r->reason, "i=1 ARC-Message-Signature: ", 27) == 0);
        CHECK_EQ_INT(r->temporary, cases[i].temp);
        free(t);
    }
}

/* The resumable interface: questions once the header is in, while the
 * body streams; answers in any order, each once; a timeout. */
static void test_resumable(void)
{
    zone_setup();
    char *m = chain(3);
    const char *body = strstr(m, "\r\n\r\n") + 4;
    struct arc_verify_params p = {.now = FX_ARC_T};
    arc_verify_start(v, &p);
    const struct dnsq_question *q;
    CHECK_EQ_INT(arc_verify_step(v), ARC_STEP_CONTENT);
    arc_verify_feed(v, m, (size_t)(body - m) - 1);
    CHECK_EQ_INT(arc_verify_questions(v, &q), 0);
    arc_verify_feed(v, body - 1, 1); /* the header ends */
    CHECK_EQ_INT(arc_verify_step(v), ARC_STEP_DNS);
    size_t nq = arc_verify_questions(v, &q);
    CHECK_EQ_INT(nq, 3);
    CHECK_EQ_STR(q[0].name, "s._domainkey.hop2.example"); /* the newest first */
    CHECK_EQ_STR(q[2].name, "s._domainkey.hop0.example");
    struct dnsq_answer a;
    zone_answer(&z, &q[1], &a);
    CHECK_EQ_INT(arc_verify_answer(v, 1, &a), 0);
    CHECK_EQ_INT(arc_verify_answer(v, 1, &a), -EINVAL);
    CHECK_EQ_INT(arc_verify_answer(v, 3, &a), -EINVAL);
    free((void *)a.rrs);
    CHECK_EQ_INT(arc_verify_step(v), ARC_STEP_DNS);
    for (size_t k = 0; k < 3; k += 2) {
        zone_answer(&z, &q[k], &a);
        CHECK_EQ_INT(arc_verify_answer(v, k, &a), 0);
        free((void *)a.rrs);
    }
    CHECK_EQ_INT(arc_verify_step(v), ARC_STEP_CONTENT);
    arc_verify_feed(v, body, strlen(body));
    CHECK_EQ_INT(arc_verify_step(v), ARC_STEP_CONTENT);
    arc_verify_end(v);
    CHECK_EQ_INT(arc_verify_step(v), ARC_STEP_DONE);
    CHECK_EQ_STR(fx_arc_result(v), "pass");

    /* A timeout: the seal of hop 1 and the AMS of... all that wait fail,
     * temporary. */
    arc_verify_start(v, &p);
    arc_verify_feed(v, m, strlen(m));
    arc_verify_end(v);
    CHECK_EQ_INT(arc_verify_step(v), ARC_STEP_DNS);
    nq = arc_verify_questions(v, &q);
    zone_answer(&z, &q[0], &a);
    arc_verify_answer(v, 0, &a);
    free((void *)a.rrs);
    arc_verify_timeout(v);
    CHECK_EQ_INT(arc_verify_step(v), ARC_STEP_DONE);
    CHECK_EQ_STR(fx_arc_result(v), "fail");
    CHECK_EQ_STR(arc_verify_result(v)->reason, "i=2 ARC-Seal: key lookup timed out");
    CHECK(arc_verify_result(v)->temporary);
    free(m);
}

/* Twelve hops with twelve keys: two batches; a chain that fails in the
 * first asks no second. */
static void test_batches(void)
{
    zone_setup();
    char *m = chain(12);
    z.asked = 0;
    CHECK_EQ_INT(fx_arc_run(v, &z, m), 2);
    CHECK_EQ_STR(fx_arc_result(v), "pass");
    CHECK_EQ_INT(arc_verify_result(v)->sets, 12);
    CHECK_EQ_INT(arc_verify_result(v)->oldest_pass, 0);
    CHECK_EQ_INT(z.asked, 12);
    char *t = dup_replace(m, "i=12; hop11.example", "i=12; hop11.exampLe");
    z.asked = 0;
    CHECK_EQ_INT(fx_arc_run(v, &z, t), 1);
    CHECK_EQ_STR(fx_arc_result(v), "fail");
    CHECK_EQ_STR(arc_verify_result(v)->reason, "i=12 ARC-Seal: signature mismatch");
    CHECK_EQ_INT(z.asked, 10);
    free(t);
    /* A timeout before the second batch: its keys are never asked. */
    struct arc_verify_params p = {.now = FX_ARC_T};
    arc_verify_start(v, &p);
    arc_verify_feed(v, m, strlen(m));
    arc_verify_end(v);
    CHECK_EQ_INT(arc_verify_step(v), ARC_STEP_DNS);
    arc_verify_timeout(v);
    CHECK_EQ_INT(arc_verify_step(v), ARC_STEP_DONE);
    CHECK_EQ_STR(arc_verify_result(v)->reason, "i=12 ARC-Message-Signature: key lookup timed out");
    free(m);
}

static void test_limits(void)
{
    zone_setup();
    /* A header over the limit: not judged, fail. */
    char *m = chain(1);
    struct arc_verify_params p = {.now = FX_ARC_T, .header_max = 256};
    arc_verify_start(v, &p);
    arc_verify_feed(v, m, strlen(m));
    arc_verify_end(v);
    CHECK_EQ_INT(arc_verify_step(v), ARC_STEP_DONE);
    CHECK_EQ_STR(fx_arc_result(v), "fail");
    CHECK_EQ_STR(arc_verify_result(v)->reason, "header section too large to validate");
    free(m);
    /* 50 sets is the most; sealing a 51st is refused. */
    m = xstrdup(MSG);
    char ar[64];
    for (int i = 0; i < 50; i++) {
        snprintf(ar, sizeof ar, "hop0.example; arc=%s", i ? "pass" : "none");
        m = fx_arc_reseal(m, hop[0], "hop0.example", "s", i ? ARC_PASS : ARC_NONE, ar);
    }
    CHECK_EQ_INT(fx_arc_run(v, &z, m), 1);
    CHECK_EQ_STR(fx_arc_result(v), "pass");
    CHECK_EQ_INT(arc_verify_result(v)->sets, 50);
    int rc;
    CHECK(fx_arc_seal_rc(m, hop[0], "hop0.example", "s", ARC_PASS, "x.example", &rc) == NULL);
    CHECK_EQ_INT(rc, -E2BIG);
    free(m);
}

int main(void)
{
    v = arc_verify_new();
    rsa = fx_rfc_rsa_key();
    ed = fx_rfc_ed_key();
    for (int i = 0; i < 12; i++)
        hop[i] = fx_ed();
    small = fx_rsa(512);
    test_none();
    test_one_set();
    test_splits();
    test_chains();
    test_oldest_pass();
    test_tampered();
    test_form();
    test_cv();
    test_signatures();
    test_keys();
    test_resumable();
    test_batches();
    test_limits();
    arc_verify_free(v);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ed);
    for (int i = 0; i < 12; i++)
        EVP_PKEY_free(hop[i]);
    EVP_PKEY_free(small);
    zone_clear(&z);
    return check_result("test_arc_verify");
}
