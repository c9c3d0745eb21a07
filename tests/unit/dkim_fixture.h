/* dkim_fixture.h: what the DKIM unit tests share. The RFC 8463 Appendix
 * A test vectors (keys, records, the signed message); fx_forge(), which
 * signs a message with any tag list a test wants (sha1, l=, t=s, a key
 * of 512 bits: things tern's signer refuses to make) using the same
 * pieces as the signer; and fx_run(), which verifies a message against an
 * in-memory zone (dnsq_zone.h), fed in chunks of a given size and each
 * batch answered last question first. */
#ifndef TERN_TEST_DKIM_FIXTURE_H
#define TERN_TEST_DKIM_FIXTURE_H

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base64.h"
#include "base/buf.h"
#include "dnsq_zone.h"
#include "mailauth/dkim_hdr.h"
#include "mailauth/dkim_key.h"
#include "mailauth/dkim_sign.h"
#include "mailauth/dkim_tags.h"
#include "mailauth/dkim_verify.h"

/* RFC 8463 Appendix A.1: the Ed25519 secret key (RFC 8032 §7.1 test 1)
 * and the RSA secret key; A.2: their key records. */
static const char fx_ed_seed_b64[] = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
static const char fx_rsa_pem[] =
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIICXQIBAAKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQi\n"
    "Y/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqM\n"
    "KrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB\n"
    "AoGAH0cxOhFZDgzXWhDhnAJDw5s4roOXN4OhjiXa8W7Y3rhX3FJqmJSPuC8N9vQm\n"
    "6SVbaLAE4SG5mLMueHlh4KXffEpuLEiNp9Ss3O4YfLiQpbRqE7Tm5SxKjvvQoZZe\n"
    "zHorimOaChRL2it47iuWxzxSiRMv4c+j70GiWdxXnxe4UoECQQDzJB/0U58W7RZy\n"
    "6enGVj2kWF732CoWFZWzi1FicudrBFoy63QwcowpoCazKtvZGMNlPWnC7x/6o8Gc\n"
    "uSe0ga2xAkEA8C7PipPm1/1fTRQvj1o/dDmZp243044ZNyxjg+/OPN0oWCbXIGxy\n"
    "WvmZbXriOWoSALJTjExEgraHEgnXssuk7QJBALl5ICsYMu6hMxO73gnfNayNgPxd\n"
    "WFV6Z7ULnKyV7HSVYF0hgYOHjeYe9gaMtiJYoo0zGN+L3AAtNP9huqkWlzECQE1a\n"
    "licIeVlo1e+qJ6Mgqr0Q7Aa7falZ448ccbSFYEPD6oFxiOl9Y9se9iYHZKKfIcst\n"
    "o7DUw1/hz2Ck4N5JrgUCQQCyKveNvjzkkd8HjYs0SwM0fPjK16//5qDZ2UiDGnOe\n"
    "uEzxBDAr518Z8VFbR41in3W4Y3yCDgQlLlcETrS+zYcL\n"
    "-----END RSA PRIVATE KEY-----\n";
static const char fx_ed_record[] =
    "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
/* As the RFC publishes it: four strings of one TXT RR. */
static const char *const fx_rsa_record_strs[] = {
    "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR",
    "iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC",
    "DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3",
    "Ip3G+2kryOTIKT+l/K4w3QIDAQAB",
};

/* RFC 8463 Appendix A.3: the signed message (RFC 6376 Appendix A's). */
#define FX_RFC8463_ED_SIG                                                     \
    "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"           \
    " d=football.example.com; i=@football.example.com;\r\n"                   \
    " q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"                 \
    " subject : date : message-id : from : subject : date;\r\n"               \
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"                   \
    " b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n"         \
    " Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\r\n"
#define FX_RFC8463_RSA_SIG                                                    \
    "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"               \
    " d=football.example.com; i=@football.example.com;\r\n"                   \
    " q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r\n"           \
    " date : message-id : from : subject : date;\r\n"                         \
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"                   \
    " b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3\r\n"         \
    " DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz\r\n"          \
    " dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=\r\n"
#define FX_RFC6376_HEADER                                                     \
    "From: Joe SixPack <joe@football.example.com>\r\n"                        \
    "To: Suzie Q <suzie@shopping.example.net>\r\n"                            \
    "Subject: Is dinner ready?\r\n"                                           \
    "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"                         \
    "Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
#define FX_RFC6376_BODY                                                       \
    "Hi.\r\n"                                                                 \
    "\r\n"                                                                    \
    "We lost the game.  Are you hungry yet?\r\n"                              \
    "\r\n"                                                                    \
    "Joe.\r\n"
#define FX_RFC6376_MSG FX_RFC6376_HEADER "\r\n" FX_RFC6376_BODY
#define FX_RFC8463_MSG FX_RFC8463_ED_SIG FX_RFC8463_RSA_SIG FX_RFC6376_MSG

static inline EVP_PKEY *fx_rfc_ed_key(void)
{
    unsigned char seed[32];
    if (base64_decode(fx_ed_seed_b64, strlen(fx_ed_seed_b64), seed, sizeof seed) != 32)
        abort();
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof seed);
    if (k == NULL)
        abort();
    return k;
}

static inline EVP_PKEY *fx_rfc_rsa_key(void)
{
    EVP_PKEY *k = dkim_key_from_pem(fx_rsa_pem, strlen(fx_rsa_pem));
    if (k == NULL)
        abort();
    return k;
}

/* The RFC's two key records in z. */
static inline void fx_zone_rfc(struct zone *z)
{
    zone_txt(z, "brisbane._domainkey.football.example.com", fx_ed_record);
    size_t lens[4];
    for (int i = 0; i < 4; i++)
        lens[i] = strlen(fx_rsa_record_strs[i]);
    zone_txt_n(z, "test._domainkey.football.example.com", 4, fx_rsa_record_strs, lens);
}

/* A key's record into z at name. */
static inline void fx_zone_key(struct zone *z, const char *name, EVP_PKEY *key)
{
    struct buf rec = BUF_INIT;
    if (dkim_key_record(key, &rec) != 0)
        abort();
    zone_txt(z, name, rec.data);
    buf_free(&rec);
}

/* An RSA key of any size, bypassing the signer's rules (a 512-bit key
 * for the tests of RFC 8301). */
static inline EVP_PKEY *fx_rsa(unsigned bits)
{
    EVP_PKEY *k = EVP_RSA_gen(bits);
    if (k == NULL)
        abort();
    return k;
}

static inline EVP_PKEY *fx_ed(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (k == NULL)
        abort();
    return k;
}

/* Reads msg's header into h (initialised here; dkim_hdr_free it) and puts
 * the base64 of its body's SHA-256 in canonicalisation bc, cut to l, into
 * bh. */
static inline void fx_body_hash(const char *msg, struct dkim_hdr *h, enum dkim_canon bc,
                                uint64_t l, char bh[64])
{
    dkim_hdr_init(h);
    dkim_hdr_reset(h, 0);
    size_t n = strlen(msg), used = dkim_hdr_feed(h, msg, n);
    dkim_hdr_end(h);
    struct dkim_body *b = dkim_body_new();
    int slot = dkim_body_want(b, bc, l);
    dkim_body_feed(b, msg + used, n - used);
    dkim_body_finish(b);
    base64_encode(dkim_body_digest(b, slot), DKIM_HASH_LEN, bh, 64);
    dkim_body_free(b);
}

/* Appends key's signature of the header hash hh to f, in base64. */
static inline void fx_append_sig(EVP_PKEY *key, const unsigned char hh[DKIM_HASH_LEN],
                                 struct buf *f)
{
    struct buf sig = BUF_INIT;
    if (dkim_sign_digest(key, hh, &sig) != 0)
        abort();
    char *enc = malloc(BASE64_ENCODED_SIZE(sig.len));
    base64_encode(sig.data, sig.len, enc, BASE64_ENCODED_SIZE(sig.len));
    buf_puts(f, enc);
    free(enc);
    buf_free(&sig);
}

/* Signs the field f holds (its text up to and with "b="): the header hash
 * over the fields of h that the h= tag of the tag list `tags` names, in
 * canonicalisation hc, then f itself; appends b='s value to f. */
static inline void fx_sign_field(const struct dkim_hdr *h, EVP_PKEY *key, const char *tags,
                                 enum dkim_canon hc, struct buf *f)
{
    struct dkim_tags t;
    if (dkim_tags_parse(&t, tags, strlen(tags)) != 0 || dkim_tags_find(&t, "h") == NULL)
        abort();
    const struct dkim_tag *ht = dkim_tags_find(&t, "h");
    struct dkim_hdr_index x = {0};
    size_t pos = 0, len;
    const char *name;
    while (dkim_list_next(ht->value, ht->value_len, &pos, &name, &len) == 1)
        dkim_hdr_index_add(&x, name, len);
    dkim_hdr_index_build(&x, h);
    uint32_t *cursor = calloc(x.nnames + 1, sizeof *cursor);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    struct buf scratch = BUF_INIT;
    unsigned char hh[DKIM_HASH_LEN];
    dkim_hdr_hash(h, &x, cursor, hc, ht->value, ht->value_len, f->data, f->len, md, &scratch,
                  hh);
    fx_append_sig(key, hh, f);
    free(cursor);
    EVP_MD_CTX_free(md);
    dkim_hdr_index_free(&x);
    buf_free(&scratch);
}

/* Signs msg: returns (malloc'd) "DKIM-Signature: <tags> bh=<bh>; b=<b>"
 * CRLF msg. tags is a tag list ending in ';' that holds h= (and a=, d=,
 * s= ... as the test wants: nothing is checked); the body hash is in
 * canonicalisation bc cut to l, the header hash in hc. */
static inline char *fx_forge(const char *msg, EVP_PKEY *key, const char *tags,
                             enum dkim_canon hc, enum dkim_canon bc, uint64_t l)
{
    struct dkim_hdr h;
    char bh[64];
    fx_body_hash(msg, &h, bc, l, bh);
    struct buf f = BUF_INIT;
    buf_printf(&f, "DKIM-Signature: %s bh=%s; b=", tags, bh);
    fx_sign_field(&h, key, tags, hc, &f);
    buf_printf(&f, "\r\n%s", msg);
    dkim_hdr_free(&h);
    return buf_steal(&f);
}

/* Verifies msg[0..n) with v against z, fed `chunk` octets at a time
 * (0: all at once), at time now. Returns the batches answered, or -1 if
 * the verifier misbehaved (questions that are not TXT or not valid names,
 * questions before the header was complete, an answer refused, no DONE). */
static inline int fx_run_n(struct dkim_verify *v, struct zone *z, const char *msg, size_t n,
                           size_t chunk, long long now)
{
    struct dkim_verify_params p = {.now = now};
    dkim_verify_start(v, &p);
    if (chunk == 0)
        chunk = n ? n : 1;
    int batches = 0;
    size_t asked = 0;
    for (size_t i = 0; i < n; i += chunk) {
        dkim_verify_feed(v, msg + i, n - i < chunk ? n - i : chunk);
        const struct dnsq_question *q;
        size_t nq = dkim_verify_questions(v, &q);
        if (nq < asked)
            return -1; /* the batch must never shrink */
        asked = nq;
    }
    dkim_verify_end(v);
    for (int guard = 0; dkim_verify_step(v) == DKIM_STEP_DNS; guard++) {
        const struct dnsq_question *q;
        size_t nq = dkim_verify_questions(v, &q);
        if (nq == 0 || nq > DNSQ_BATCH_MAX || guard > 0)
            return -1; /* one batch per message */
        for (size_t k = nq; k-- > 0;) {
            if (q[k].type != DNSQ_TXT || !dnsq_name_ok(q[k].name, strlen(q[k].name)))
                return -1;
            struct dnsq_answer a;
            zone_answer(z, &q[k], &a);
            int rc = dkim_verify_answer(v, k, &a);
            free((void *)a.rrs);
            if (rc != 0)
                return -1;
        }
        batches++;
    }
    return dkim_verify_step(v) == DKIM_STEP_DONE ? batches : -1;
}

static inline int fx_run(struct dkim_verify *v, struct zone *z, const char *msg, long long now)
{
    return fx_run_n(v, z, msg, strlen(msg), 0, now);
}

/* Result i's name, or "-" when there is none. */
static inline const char *fx_result(const struct dkim_verify *v, size_t i)
{
    const struct dkim_sig_result *r = dkim_verify_result(v, i);
    return r ? dkim_result_name(r->result) : "-";
}

static inline const char *fx_reason(const struct dkim_verify *v, size_t i)
{
    const struct dkim_sig_result *r = dkim_verify_result(v, i);
    return r ? r->reason : "-";
}

#endif
