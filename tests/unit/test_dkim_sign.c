/* Unit tests for mailauth/dkim_sign: the RFC 8463 Appendix A signatures
 * reproduced octet for octet from the RFC's keys (both algorithms are
 * deterministic); signatures that tern's verifier passes for RSA, Ed25519
 * and both at once, on messages of every shape, the same whatever the
 * chunking; over-signing (an added From, Reply-To or Subject breaks the
 * signature); folding to 78 columns; t= x= i=; parameter errors; the
 * header limit. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "dkim_fixture.h"

static struct zone z;
static struct dkim_verify *v;
static struct dkim_signer *s;
static EVP_PKEY *rsa, *ed;

#define NOW 1700000000LL

/* RFC 8463 A.3's fields with b= empty, as the header hash sees them. */
static void rfc_b(EVP_PKEY *key, const char *field, const char *want)
{
    struct dkim_hdr h;
    dkim_hdr_init(&h);
    dkim_hdr_reset(&h, 0);
    dkim_hdr_feed(&h, FX_RFC6376_MSG, strlen(FX_RFC6376_MSG));
    const char *hl = "from : to : subject : date : message-id : from : subject : date";
    struct dkim_hdr_index x = {0};
    size_t pos = 0, len;
    const char *name;
    while (dkim_list_next(hl, strlen(hl), &pos, &name, &len) == 1)
        dkim_hdr_index_add(&x, name, len);
    dkim_hdr_index_build(&x, &h);
    uint32_t cursor[8];
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    struct buf scratch = BUF_INIT, sig = BUF_INIT;
    unsigned char hh[DKIM_HASH_LEN];
    dkim_hdr_hash(&h, &x, cursor, DKIM_CANON_RELAXED, hl, strlen(hl), field, strlen(field), md,
                  &scratch, hh);
    CHECK_EQ_INT(dkim_sign_digest(key, hh, &sig), 0);
    char b64[256];
    base64_encode(sig.data, sig.len, b64, sizeof b64);
    CHECK_EQ_STR(b64, want);
    EVP_MD_CTX_free(md);
    buf_free(&scratch);
    buf_free(&sig);
    dkim_hdr_index_free(&x);
    dkim_hdr_free(&h);
}

static void test_rfc8463_reproduced(void)
{
    EVP_PKEY *rk = fx_rfc_rsa_key(), *ek = fx_rfc_ed_key();
    rfc_b(ek,
          "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
          " d=football.example.com; i=@football.example.com;\r\n"
          " q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
          " subject : date : message-id : from : subject : date;\r\n"
          " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
          " b=",
          "/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11BusFa3bT3FY5OsU7ZbnKELq+eXdp1Q1"
          "Dw==");
    rfc_b(rk,
          "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"
          " d=football.example.com; i=@football.example.com;\r\n"
          " q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r\n"
          " date : message-id : from : subject : date;\r\n"
          " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
          " b=",
          "F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3DhCVlUrSjV4BwcVcOF6+FF3Zo9Rp"
          "o1tFOeS9mPYQTnGdaSGsgeefOsk2JzdA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8"
          "=");
    /* tern's signer on the RFC's message with the RFC's keys: tern and
     * the RFC's records verify it. */
    struct dkim_sign_key keys[2] = {{ek, "football.example.com", "brisbane"},
                                    {rk, "football.example.com", "test"}};
    struct dkim_sign_params p = {.keys = keys, .nkeys = 2, .t = 1528637909};
    CHECK_EQ_INT(dkim_sign_start(s, &p), 0);
    dkim_sign_feed(s, FX_RFC6376_MSG, strlen(FX_RFC6376_MSG));
    struct buf out = BUF_INIT;
    CHECK_EQ_INT(dkim_sign_finish(s, &out), 0);
    /* The same body hash as the RFC's. */
    CHECK(strstr(out.data, "bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;") != NULL);
    buf_puts(&out, FX_RFC6376_MSG);
    zone_clear(&z);
    fx_zone_rfc(&z);
    fx_run(v, &z, out.data, 1528637909 + 10);
    CHECK_EQ_INT(dkim_verify_count(v), 2);
    CHECK_EQ_STR(fx_result(v, 0), "pass");
    CHECK_EQ_STR(fx_result(v, 1), "pass");
    buf_free(&out);
    EVP_PKEY_free(rk);
    EVP_PKEY_free(ek);
}

/* Signs m with the test keys chosen by mask (1 RSA, 2 Ed25519), fed in
 * chunks of `chunk`; returns the signed message (malloc'd). */
static char *sign(const char *m, unsigned mask, size_t chunk, const struct dkim_sign_params *extra)
{
    struct dkim_sign_key keys[2];
    size_t n = 0;
    if (mask & 1)
        keys[n++] = (struct dkim_sign_key){rsa, "example.org", "rsa"};
    if (mask & 2)
        keys[n++] = (struct dkim_sign_key){ed, "example.org", "ed"};
    struct dkim_sign_params p = extra ? *extra : (struct dkim_sign_params){.t = NOW};
    p.keys = keys;
    p.nkeys = n;
    if (dkim_sign_start(s, &p) != 0)
        return NULL;
    size_t len = strlen(m);
    if (chunk == 0)
        chunk = len ? len : 1;
    for (size_t i = 0; i < len; i += chunk)
        dkim_sign_feed(s, m + i, len - i < chunk ? len - i : chunk);
    struct buf out = BUF_INIT;
    if (dkim_sign_finish(s, &out) != 0) {
        buf_free(&out);
        return NULL;
    }
    buf_puts(&out, m);
    return buf_steal(&out);
}

static const char *const messages[] = {
    /* folded and repeated fields, MIME */
    "Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    "Received: from c by d; Mon, 1 Jan 2024 00:00:01 +0000\r\n"
    "From: Alice Example\r\n <alice@example.org>\r\n"
    "To: bob@example.net,\r\n\tcarol@example.net\r\n"
    "To: dave@example.net\r\n"
    "Subject: a subject that is long enough that its writer folded it\r\n"
    " over two lines\r\n"
    "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    "Message-ID: <1@example.org>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "Gr\xc3\xbc\xc3\x9f""e  aus   Z\xc3\xbcrich \t\r\n\r\n",
    /* empty body */
    "From: a@example.org\r\nSubject: empty\r\n\r\n",
    /* no body at all, no empty line */
    "From: a@example.org\r\nSubject: none\r\n",
    /* trailing blank lines, white space lines, a dot line */
    "From: a@example.org\r\n\r\nline\r\n.\r\n \r\n\t\r\n\r\n\r\n",
    /* a body without final CRLF, a bare LF */
    "From: a@example.org\r\n\r\nno end\nhere",
};

static void test_roundtrip(void)
{
    zone_clear(&z);
    fx_zone_key(&z, "rsa._domainkey.example.org", rsa);
    fx_zone_key(&z, "ed._domainkey.example.org", ed);
    /* A long line of 2000 octets. */
    struct buf longm = BUF_INIT;
    buf_puts(&longm, "From: a@example.org\r\nSubject: long\r\n\r\n");
    for (int i = 0; i < 2000; i++)
        buf_putc(&longm, (char)('a' + i % 26));
    buf_puts(&longm, "\r\n");
    for (size_t k = 0; k <= sizeof messages / sizeof messages[0]; k++) {
        const char *m = k < sizeof messages / sizeof messages[0] ? messages[k] : longm.data;
        char *whole = sign(m, 3, 0, NULL);
        CHECK(whole != NULL);
        if (whole == NULL)
            continue;
        fx_run(v, &z, whole, NOW + 5);
        CHECK_EQ_INT(dkim_verify_count(v), 2);
        CHECK_EQ_STR(fx_result(v, 0), "pass");
        CHECK_EQ_STR(fx_result(v, 1), "pass");
        CHECK_EQ_STR(dkim_verify_result(v, 0)->s, "rsa");
        CHECK_EQ_INT(dkim_verify_result(v, 0)->key_bits, 2048);
        CHECK_EQ_STR(dkim_verify_result(v, 1)->s, "ed");
        /* Every chunking signs the same (both algorithms are
         * deterministic). */
        int diff = 0;
        for (size_t chunk = 1; chunk < 64; chunk += 3) {
            char *again = sign(m, 3, chunk, NULL);
            diff += again == NULL || strcmp(again, whole) != 0;
            free(again);
        }
        CHECK_EQ_INT(diff, 0);
        /* Lines of at most 78 characters in the fields tern wrote. */
        size_t sig_end = strlen(whole) - strlen(m), col = 0, longest = 0;
        for (size_t i = 0; i < sig_end; i++) {
            if (whole[i] == '\r')
                continue;
            if (whole[i] == '\n') {
                if (col > longest)
                    longest = col;
                col = 0;
                continue;
            }
            col++;
        }
        CHECK(longest <= 78);
        free(whole);
    }
    buf_free(&longm);
}

static void test_oversigned(void)
{
    zone_clear(&z);
    fx_zone_key(&z, "ed._domainkey.example.org", ed);
    const char *m = messages[0];
    char *whole = sign(m, 2, 0, NULL);
    /* Each name of the default set once per instance and once more. */
    const char *h = strstr(whole, "h=");
    CHECK(h != NULL);
    char hl[1024];
    size_t n = strcspn(h, ";");
    size_t k = 0;
    for (size_t i = 2; i < n && k + 1 < sizeof hl; i++)
        if (h[i] != '\r' && h[i] != '\n' && h[i] != ' ')
            hl[k++] = h[i];
    hl[k] = '\0';
    CHECK_EQ_STR(hl, "from:from:reply-to:subject:subject:date:date:to:to:to:cc:message-id:"
                     "message-id:in-reply-to:references:mime-version:mime-version:"
                     "content-type:content-type:content-transfer-encoding:"
                     "content-transfer-encoding:content-id:content-description:"
                     "content-disposition");
    CHECK(strstr(whole, "received") == NULL); /* not in the set */
    struct {
        const char *where, *add;
    } adds[] = {
        {"Received:", "From: Evil <ceo@evil.example>\r\n"},
        {"Date:", "From: Evil <ceo@evil.example>\r\n"},
        {"\r\n\r\n", "\r\nReply-To: evil@evil.example"},
        {"Received:", "Subject: Pay now\r\n"},
        {"Received:", "Cc: someone@evil.example\r\n"},
        {"Received:", "Content-Type: text/html\r\n"},
    };
    for (size_t i = 0; i < sizeof adds / sizeof adds[0]; i++) {
        struct buf t = BUF_INIT;
        const char *at = strstr(whole, adds[i].where);
        buf_append(&t, whole, (size_t)(at - whole));
        buf_puts(&t, adds[i].add);
        buf_puts(&t, at);
        fx_run(v, &z, t.data, NOW);
        CHECK_EQ_STR(fx_result(v, 0), "fail");
        CHECK_EQ_STR(fx_reason(v, 0), "signature mismatch");
        buf_free(&t);
    }
    /* A field outside the set may be added (a later Received). */
    struct buf t = BUF_INIT;
    buf_puts(&t, "Received: from e by f\r\n");
    buf_puts(&t, whole);
    fx_run(v, &z, t.data, NOW);
    CHECK_EQ_STR(fx_result(v, 0), "pass");
    buf_free(&t);
    free(whole);
}

/* The text without its folds (CRLF and the space after it). */
static char *unfold(const char *t)
{
    struct buf b = BUF_INIT;
    for (; *t; t++) {
        if (t[0] == '\r' && t[1] == '\n' && t[2] == ' ') {
            t += 2;
            continue;
        }
        buf_putc(&b, *t);
    }
    return buf_steal(&b);
}

static void test_params(void)
{
    zone_clear(&z);
    fx_zone_key(&z, "ed._domainkey.example.org", ed);
    const char *m = messages[1];
    const char *hs[] = {"from", "subject", NULL};
    struct dkim_sign_params p = {.t = NOW, .x = NOW + 86400, .auid = "joe@mail.example.org",
                                 .headers = hs};
    char *whole = sign(m, 2, 0, &p);
    CHECK(whole != NULL);
    char *flat = unfold(whole);
    CHECK(strstr(flat, "t=1700000000;") && strstr(flat, "x=1700086400;"));
    CHECK(strstr(flat, "i=joe@mail.example.org;") && strstr(flat, "h=from:from:subject:subject;"));
    free(flat);
    fx_run(v, &z, whole, NOW + 60);
    CHECK_EQ_STR(fx_result(v, 0), "pass");
    CHECK_EQ_STR(dkim_verify_result(v, 0)->i, "joe@mail.example.org");
    fx_run(v, &z, whole, NOW + 86400 + 301);
    CHECK_EQ_STR(fx_reason(v, 0), "signature expired");
    free(whole);
    /* t=0: no t=. */
    p = (struct dkim_sign_params){0};
    whole = sign(m, 2, 0, &p);
    CHECK(whole && strstr(whole, " t=") == NULL);
    free(whole);

    EVP_PKEY *small = fx_rsa(512);
    struct dkim_sign_key good = {ed, "example.org", "ed"};
    struct dkim_sign_key keys5[5] = {good, good, good, good, good};
    const char *nofrom[] = {"subject", NULL}, *badname[] = {"from", "to:cc", NULL};
    struct {
        struct dkim_sign_key key;
        struct dkim_sign_params p;
    } bad[] = {
        {{small, "example.org", "s"}, {.t = 1}},
        {{NULL, "example.org", "s"}, {.t = 1}},
        {{ed, "exa mple.org", "s"}, {.t = 1}},
        {{ed, "example.org", "s;x"}, {.t = 1}},
        {{ed, "example.org", NULL}, {.t = 1}},
        {good, {.t = 10, .x = 10}},
        {good, {.t = -1}},
        {good, {.auid = "joe@example.net"}},
        {good, {.auid = "joe@badexample.org"}},
        {good, {.auid = "jo e@example.org"}},
        {good, {.headers = nofrom}},
        {good, {.headers = badname}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bad[i].p.keys = &bad[i].key;
        bad[i].p.nkeys = 1;
        CHECK_EQ_INT(dkim_sign_start(s, &bad[i].p), -EINVAL);
    }
    p = (struct dkim_sign_params){.keys = keys5, .nkeys = 5};
    CHECK_EQ_INT(dkim_sign_start(s, &p), -EINVAL);
    p.nkeys = 0;
    CHECK_EQ_INT(dkim_sign_start(s, &p), -EINVAL);
    struct buf out = BUF_INIT;
    CHECK_EQ_INT(dkim_sign_finish(s, &out), -EINVAL); /* not started */
    /* The header limit. */
    p = (struct dkim_sign_params){.keys = &good, .nkeys = 1, .header_max = 10};
    CHECK_EQ_INT(dkim_sign_start(s, &p), 0);
    dkim_sign_feed(s, m, strlen(m));
    CHECK_EQ_INT(dkim_sign_finish(s, &out), -EMSGSIZE);
    CHECK_EQ_INT(out.len, 0);
    buf_free(&out);
    EVP_PKEY_free(small);
}

int main(void)
{
    v = dkim_verify_new();
    s = dkim_sign_new();
    rsa = fx_rsa(2048);
    ed = fx_ed();
    test_rfc8463_reproduced();
    test_roundtrip();
    test_oversigned();
    test_params();
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ed);
    dkim_sign_free(s);
    dkim_verify_free(v);
    zone_clear(&z);
    return check_result("test_dkim_sign");
}
