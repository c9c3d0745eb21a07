/* Unit tests for mailauth/arc_seal: the fields it makes (their tags, the
 * AMS's h= without ARC fields and with the DKIM signatures present, folded
 * lines), seals that arc_verify validates (RSA and Ed25519; streamed and
 * from a DKIM signer's header and body hash, byte for byte the same), a
 * cv=fail seal that signs its own set only (RFC 8617 §5.1.2), the refusals
 * (a chain already failed, 50 sets, a cv that does not fit the chain) and
 * the parameter checks (keys, header sets, an AAR payload that could end
 * its field). */
#include <errno.h>
#include <string.h>

#include "arc_fixture.h"
#include "check.h"

static struct zone z;
static struct arc_verify *v;
static struct arc_sealer *s;
static EVP_PKEY *rsa, *ed, *small;

#define MSG FX_RFC6376_MSG
#define AR "mx.football.example.com; spf=pass smtp.mailfrom=football.example.com"
#define D "football.example.com"

static struct arc_seal_params params(EVP_PKEY *k, const char *sel, enum arc_result cv)
{
    return (struct arc_seal_params){.key = k, .domain = D, .selector = sel, .t = FX_ARC_T,
                                    .cv = cv, .authres = AR};
}

/* Seals msg streamed in pieces of chunk octets; the set into out. */
static int seal_chunks(const struct arc_seal_params *p, const char *msg, size_t chunk,
                       const char *prepend, struct buf *out)
{
    int rc = arc_seal_start(s, p);
    if (rc < 0)
        return rc;
    size_t n = strlen(msg);
    for (size_t i = 0; i < n; i += chunk)
        arc_seal_feed(s, msg + i, n - i < chunk ? n - i : chunk);
    return arc_seal_finish(s, prepend, prepend ? strlen(prepend) : 0, out);
}

/* text with its folds (CRLF before white space) removed, malloc'd. */
static char *unfold(const char *t)
{
    char *u = xstrdup(t), *w = u;
    for (const char *r = t; *r; r++) {
        if (r[0] == '\r' && r[1] == '\n' && (r[2] == ' ' || r[2] == '\t')) {
            r++;
            continue;
        }
        *w++ = *r;
    }
    *w = '\0';
    return u;
}

/* Every line of text is at most max octets. */
static bool lines_within(const char *t, size_t max)
{
    for (const char *l = t; *l;) {
        const char *e = strstr(l, "\r\n");
        if (e == NULL)
            return strlen(l) <= max;
        if ((size_t)(e - l) > max)
            return false;
        l = e + 2;
    }
    return true;
}

static void test_fields(void)
{
    struct arc_seal_params p = params(rsa, "test", ARC_NONE);
    struct buf out = BUF_INIT;
    CHECK_EQ_INT(seal_chunks(&p, MSG, 1000, NULL, &out), 0);
    char *t = unfold(out.data);
    CHECK(strncmp(t, "ARC-Seal: i=1; a=rsa-sha256; t=1700000000; cv=none; d=" D "; s=test;",
                  66) == 0);
    const char *ams = strstr(t, "\r\nARC-Message-Signature: i=1; a=rsa-sha256; "
                                "c=relaxed/relaxed; d=" D ";");
    const char *aar = strstr(t, "\r\nARC-Authentication-Results: i=1; " AR "\r\n");
    CHECK(ams != NULL && aar != NULL && ams < aar);
    CHECK(aar && strlen(aar) == strlen("\r\nARC-Authentication-Results: i=1; " AR "\r\n"));
    /* h=: the default set, From and the rest over-signed; no DKIM field
     * in this message, none signed. */
    char *bare = xstrdup(t), *w = bare;
    for (const char *r = t; *r; r++)
        if (*r != ' ')
            *w++ = *r;
    *w = '\0';
    CHECK(strstr(bare, "h=from:from:reply-to:subject:subject:date:date:to:to:cc:message-id:"
                       "message-id:in-reply-to:references:mime-version:content-type:"
                       "content-transfer-encoding:content-id:content-description:"
                       "content-disposition;bh=") != NULL);
    free(bare);
    CHECK(strstr(t, "dkim-signature") == NULL);
    CHECK(strstr(t, "arc-") == NULL && strstr(t, "authentication-results") == NULL);
    CHECK(strstr(t, " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;") != NULL); /* RFC 8463 */
    /* The seal and the signature fold within 78; the AAR payload is the
     * caller's, as it is. */
    *strstr(out.data, "ARC-Authentication-Results:") = '\0';
    CHECK(lines_within(out.data, 78));
    free(t);
    buf_free(&out);

    /* Ed25519, no t=. */
    p = params(ed, "brisbane", ARC_NONE);
    p.t = 0;
    CHECK_EQ_INT(seal_chunks(&p, MSG, 1000, NULL, &out), 0);
    CHECK(strncmp(out.data, "ARC-Seal: i=1; a=ed25519-sha256; cv=none;", 41) == 0);
    CHECK(strstr(out.data, "t=") == NULL);
    buf_free(&out);
}

static void test_verifies(void)
{
    zone_clear(&z);
    fx_zone_rfc(&z);
    /* Three hops, RSA and Ed25519 by turns, each streamed by the octet
     * for the first. */
    char *m = xstrdup(MSG);
    for (int i = 0; i < 3; i++) {
        struct arc_seal_params p =
            params(i % 2 ? ed : rsa, i % 2 ? "brisbane" : "test", i ? ARC_PASS : ARC_NONE);
        struct buf out = BUF_INIT;
        CHECK_EQ_INT(seal_chunks(&p, m, i == 0 ? 1 : 4096, NULL, &out), 0);
        buf_puts(&out, m);
        free(m);
        m = buf_steal(&out);
        CHECK_EQ_INT(fx_arc_run(v, &z, m), 1);
        CHECK_EQ_STR(fx_arc_result(v), "pass");
        CHECK_EQ_INT(arc_verify_result(v)->sets, i + 1);
        CHECK_EQ_INT(arc_verify_result(v)->oldest_pass, 0);
    }
    free(m);
}

/* A DKIM signer's header and body hash seal the same as the stream, and
 * the DKIM signature below the set is signed by the AMS. */
static void test_with_dkim(void)
{
    zone_clear(&z);
    fx_zone_rfc(&z);
    struct dkim_signer *ds = dkim_sign_new();
    struct dkim_sign_key k = {ed, D, "brisbane"};
    struct dkim_sign_params sp = {.keys = &k, .nkeys = 1, .t = FX_ARC_T};
    struct buf sig = BUF_INIT, a = BUF_INIT, b = BUF_INIT;
    CHECK_EQ_INT(dkim_sign_start(ds, &sp), 0);
    dkim_sign_feed(ds, MSG, strlen(MSG));
    CHECK_EQ_INT(dkim_sign_finish(ds, &sig), 0);
    size_t hn;
    const char *h = dkim_sign_header(ds, &hn);
    CHECK_EQ_MEM(h, hn, FX_RFC6376_HEADER, strlen(FX_RFC6376_HEADER));
    struct arc_seal_params p = params(rsa, "test", ARC_NONE);
    CHECK_EQ_INT(arc_seal_header(s, &p, sig.data, sig.len, h, hn, dkim_sign_body_hash(ds), &a),
                 0);
    CHECK_EQ_INT(seal_chunks(&p, MSG, 7, sig.data, &b), 0);
    CHECK_EQ_MEM(a.data, a.len, b.data, b.len);
    CHECK(strstr(a.data, ":dkim-signature;") != NULL); /* present once: signed once */
    CHECK(strstr(a.data, "dkim-signature:dkim-signature") == NULL);
    buf_append(&a, sig.data, sig.len);
    buf_puts(&a, MSG);
    CHECK_EQ_INT(fx_arc_run(v, &z, a.data), 1);
    CHECK_EQ_STR(fx_arc_result(v), "pass");
    /* The DKIM signature is signed: changing it breaks the AMS. */
    char *bad = xstrdup(a.data);
    char *at = strstr(bad, "DKIM-Signature: v=1;");
    at[18] = '2';
    CHECK(fx_arc_run(v, &z, bad) == 1);
    CHECK_EQ_STR(arc_verify_result(v)->reason, "i=1 ARC-Message-Signature: signature mismatch");
    free(bad);
    /* A DKIM signature added on top later does not. */
    buf_reset(&b);
    buf_append(&b, sig.data, sig.len);
    buf_puts(&b, a.data);
    CHECK(fx_arc_run(v, &z, b.data) == 1);
    CHECK_EQ_STR(fx_arc_result(v), "pass");
    /* Prepended text that is no whole field. */
    buf_reset(&b);
    CHECK_EQ_INT(arc_seal_header(s, &p, "X-A: 1", 6, h, hn, dkim_sign_body_hash(ds), &b),
                 -EINVAL);
    CHECK_EQ_INT(arc_seal_header(s, &p, "X-A: 1\r\n\r\n", 10, h, hn, dkim_sign_body_hash(ds),
                                 &b),
                 -EINVAL);
    CHECK_EQ_INT(arc_seal_header(s, &p, NULL, 0, h, hn - 2, dkim_sign_body_hash(ds), &b),
                 -EINVAL);
    CHECK_EQ_INT(b.len, 0);
    dkim_sign_free(ds);
    buf_free(&sig);
    buf_free(&a);
    buf_free(&b);
}

/* §5.1.2: sealing a failed chain: cv=fail, the seal signs the new set
 * only; a validator then fails the chain at once. */
static void test_cv_fail(void)
{
    zone_clear(&z);
    fx_zone_rfc(&z);
    char *m = fx_arc_seal(MSG, rsa, D, "test", ARC_NONE, AR);
    m[strlen(m) - 3] = '!'; /* the body changes: the chain fails */
    CHECK(fx_arc_run(v, &z, m) == 1);
    CHECK_EQ_STR(fx_arc_result(v), "fail");
    struct arc_seal_params p = params(ed, "brisbane", ARC_FAIL);
    struct buf out = BUF_INIT;
    CHECK_EQ_INT(seal_chunks(&p, m, 100, NULL, &out), 0);
    CHECK(strstr(out.data, "ARC-Seal: i=2; a=ed25519-sha256; t=1700000000; cv=fail;") ==
          out.data);
    /* The seal's signature is over AAR 2 and AMS 2 alone. */
    struct dkim_hdr h;
    dkim_hdr_init(&h);
    dkim_hdr_reset(&h, 0);
    dkim_hdr_feed(&h, out.data, out.len);
    dkim_hdr_end(&h);
    CHECK_EQ_INT(h.nfields, 3);
    struct arc_set_seal seal;
    const char *why;
    struct buf tmp = BUF_INIT, scratch = BUF_INIT;
    const char *f0 = dkim_hdr_at(&h, 0);
    CHECK_EQ_INT(arc_set_parse_seal(&seal, f0 + 9, h.fields[0].len - 9, &tmp, &why), 0);
    dkim_sig_strip_b(f0, h.fields[0].len, seal.b, seal.b_len, &tmp);
    struct dkim_span spans[2] = {{dkim_hdr_at(&h, 2), h.fields[2].len},
                                 {dkim_hdr_at(&h, 1), h.fields[1].len}};
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char hh[DKIM_HASH_LEN];
    dkim_hdr_hash_spans(spans, 2, DKIM_CANON_RELAXED, tmp.data, tmp.len, md, &scratch, hh);
    CHECK(dkim_verify_digest(ed, DKIM_ALG_ED25519_SHA256, seal.sig, seal.sig_len, hh));
    EVP_MD_CTX_free(md);
    dkim_hdr_free(&h);
    buf_free(&tmp);
    buf_free(&scratch);
    buf_puts(&out, m);
    CHECK(fx_arc_run(v, &z, out.data) == 0);
    CHECK_EQ_STR(arc_verify_result(v)->reason, "the newest ARC-Seal says cv=fail");
    /* §5.1 step 1: no seal on top of that. */
    int rc;
    CHECK(fx_arc_seal_rc(out.data, rsa, D, "test", ARC_FAIL, AR, &rc) == NULL);
    CHECK_EQ_INT(rc, -EPERM);
    CHECK(fx_arc_seal_rc(out.data, rsa, D, "test", ARC_PASS, AR, &rc) == NULL);
    CHECK_EQ_INT(rc, -EPERM);
    /* A broken form: cv=fail seals it (i = highest + 1), cv=pass may not. */
    char *junk = malloc(strlen(m) + 64);
    sprintf(junk, "ARC-Seal: i=7; cv=pass\r\n%s", m);
    CHECK(fx_arc_seal_rc(junk, rsa, D, "test", ARC_PASS, AR, &rc) == NULL);
    CHECK_EQ_INT(rc, -EINVAL);
    char *sealed = fx_arc_seal_rc(junk, rsa, D, "test", ARC_FAIL, AR, &rc);
    CHECK(sealed && strncmp(sealed, "ARC-Seal: i=8;", 14) == 0);
    free(sealed);
    /* No readable instance at all: the new set is i=1, cv=fail. */
    sprintf(junk, "ARC-Seal: junk\r\n%s", MSG);
    sealed = fx_arc_seal_rc(junk, rsa, D, "test", ARC_FAIL, AR, &rc);
    CHECK(sealed && strncmp(sealed, "ARC-Seal: i=1; a=rsa-sha256; t=1700000000; cv=fail;", 51) == 0);
    free(sealed);
    free(junk);
    buf_free(&out);
    free(m);
}

static void test_refusals(void)
{
    int rc;
    /* cv must fit the chain. */
    CHECK(fx_arc_seal_rc(MSG, rsa, D, "test", ARC_PASS, AR, &rc) == NULL);
    CHECK_EQ_INT(rc, -EINVAL);
    CHECK(fx_arc_seal_rc(MSG, rsa, D, "test", ARC_FAIL, AR, &rc) == NULL);
    CHECK_EQ_INT(rc, -EINVAL);
    char *m = fx_arc_seal(MSG, rsa, D, "test", ARC_NONE, AR);
    CHECK(fx_arc_seal_rc(m, rsa, D, "test", ARC_NONE, AR, &rc) == NULL);
    CHECK_EQ_INT(rc, -EINVAL);
    free(m);

    struct arc_seal_params p = params(rsa, "test", ARC_NONE);
    CHECK_EQ_INT(arc_seal_start(s, &p), 0);
    p.key = small;
    CHECK_EQ_INT(arc_seal_start(s, &p), -EINVAL);
    p.key = rsa;
    p.domain = "bad domain";
    CHECK_EQ_INT(arc_seal_start(s, &p), -EINVAL);
    p = params(rsa, "test", ARC_NONE);
    p.t = -1;
    CHECK_EQ_INT(arc_seal_start(s, &p), -EINVAL);
    p = params(rsa, "test", ARC_NONE);
    static const char *const no_from[] = {"to", "subject", NULL};
    static const char *const arc_in[] = {"from", "arc-seal", NULL};
    static const char *const ar_in[] = {"from", "Authentication-Results", NULL};
    static const char *const dkim_in[] = {"from", "dkim-signature", NULL};
    static const char *const ok[] = {"from", "to", NULL};
    const char *const *sets[] = {no_from, arc_in, ar_in, dkim_in};
    for (size_t i = 0; i < 4; i++) {
        p.headers = sets[i];
        CHECK_EQ_INT(arc_seal_start(s, &p), -EINVAL);
    }
    p.headers = ok;
    struct buf out = BUF_INIT;
    CHECK_EQ_INT(seal_chunks(&p, MSG, 50, NULL, &out), 0);
    char *u = unfold(out.data);
    CHECK(strstr(u, " h=from:from:to:to; bh=") != NULL);
    free(u);
    buf_free(&out);
    /* Payloads: what could end the field or start another is refused;
     * a folded one, as authres_build makes, is taken as it is. */
    static const char *const bad[] = {
        "",
        "  ",
        "; spf=pass",
        "mx.example; spf=pass\r\nX-Injected: 1",
        "mx.example; spf=pass\nX-Injected: 1",
        "mx.example; spf=pass\r",
        "mx.example; spf=pass\x01",
        "mx.example; spf=pass \xff",
        "mx.example; spf=pass\r\n",
    };
    p = params(rsa, "test", ARC_NONE);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p.authres = bad[i]; /* the last: a final CRLF is no fold */
        CHECK_EQ_INT(arc_seal_start(s, &p), -EINVAL);
    }
    p.authres = " mx.example;\r\n\tspf=pass smtp.mailfrom=a@b.example;\r\n\tarc=none ";
    CHECK_EQ_INT(seal_chunks(&p, MSG, 50, NULL, &out), 0);
    CHECK(strstr(out.data, "ARC-Authentication-Results: i=1; mx.example;\r\n\tspf=pass "
                           "smtp.mailfrom=a@b.example;\r\n\tarc=none\r\n") != NULL);
    buf_free(&out);
    char *big = malloc(ARC_SEAL_AAR_MAX + 16);
    memset(big, 'a', ARC_SEAL_AAR_MAX + 8);
    memcpy(big, "mx.example; ", 12);
    big[ARC_SEAL_AAR_MAX + 8] = '\0';
    p.authres = big;
    CHECK_EQ_INT(arc_seal_start(s, &p), -EINVAL);
    free(big);
    /* A header over the limit; finish without start. */
    p = params(rsa, "test", ARC_NONE);
    p.header_max = 64;
    CHECK_EQ_INT(seal_chunks(&p, MSG, 50, NULL, &out), -EMSGSIZE);
    CHECK_EQ_INT(out.len, 0);
    CHECK_EQ_INT(arc_seal_finish(s, NULL, 0, &out), -EINVAL);
}

int main(void)
{
    v = arc_verify_new();
    s = arc_seal_new();
    rsa = fx_rfc_rsa_key();
    ed = fx_rfc_ed_key();
    small = fx_rsa(512);
    test_fields();
    test_verifies();
    test_with_dkim();
    test_cv_fail();
    test_refusals();
    arc_verify_free(v);
    arc_seal_free(s);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(small);
    zone_clear(&z);
    return check_result("test_arc_seal");
}
