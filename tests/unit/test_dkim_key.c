/* Unit tests for mailauth/dkim_key: key records (RFC 6376 §3.6.1, RFC
 * 8463 §4.2): the RFC 8463 records, defaults, revoked keys, v= rules,
 * k= h= s= t=, both RSA encodings, Ed25519's raw form, sizes (RFC 8301);
 * the records tern publishes for its own keys, key generation, PEM
 * loading, and matching a published key to a private one. */
#include <errno.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <string.h>

#include "check.h"
#include "dkim_fixture.h"

static struct dkim_key k;
static struct buf tmp;
static const char *why;

static int parse(const char *rec)
{
    why = NULL;
    return dkim_key_parse(&k, rec, strlen(rec), &tmp, &why);
}

#define ED_P "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="

static void test_records(void)
{
    CHECK_EQ_INT(parse(fx_ed_record), 0);
    CHECK_EQ_INT(k.type, DKIM_KEY_ED25519);
    CHECK_EQ_INT(k.bits, 256);
    CHECK(k.pkey && !k.revoked && !k.testing && !k.strict);
    char rsa[512] = "";
    for (int i = 0; i < 4; i++)
        strcat(rsa, fx_rsa_record_strs[i]);
    CHECK_EQ_INT(parse(rsa), 0);
    CHECK_EQ_INT(k.type, DKIM_KEY_RSA);
    CHECK_EQ_INT(k.bits, 1024);
    /* k= defaults to rsa; v= may be absent; tags in any order after it. */
    CHECK_EQ_INT(parse(strstr(rsa, "p=")), 0);
    CHECK_EQ_INT(k.type, DKIM_KEY_RSA);
    /* The SubjectPublicKeyInfo without the NULL parameters some encoders
     * leave out, and the bare RSAPublicKey: the same key. */
    CHECK_EQ_INT(parse("p=MIGdMAsGCSqGSIb3DQEBAQOBjQAwgYkCgYEA5B5TkKAU81kYhrOVejaT94nWOlpNPGuaoXUes"
                       "MuW3Tim9oy0ImPydeiWItEL8f28mMwjW91vdctxbrQAg388EPwQv3v/LgbAkfss9S8Y/jy+pR7"
                       "6jCqzN6xuIbLU+UI7xzvT86MWclWC8wXzthHgtyKdxvtpK8jkyCk/pfyuMN0CAwEAAQ=="),
                 0);
    CHECK_EQ_INT(k.bits, 1024);
    EVP_PKEY *rfc_rsa = fx_rfc_rsa_key();
    CHECK_EQ_INT(dkim_key_matches(&k, rfc_rsa), 1);
    CHECK_EQ_INT(parse("p=MIGJAoGBAOQeU5CgFPNZGIazlXo2k/eJ1jpaTTxrmqF1HrDLlt04pvaMtCJj8nXoliLRC/H9vJj"
                       "MI1vdb3XLcW60AIN/PBD8EL97/y4GwJH7LPUvGP48vqUe+owqszesbiGy1PlCO8c70/OjFnJVg"
                       "vMF87YR4Lcincb7aSvI5MgpP6X8rjDdAgMBAAE="),
                 0);
    CHECK_EQ_INT(dkim_key_matches(&k, rfc_rsa), 1);
    EVP_PKEY_free(rfc_rsa);
    CHECK_EQ_INT(parse("p=" ED_P "; k=ed25519"), 0);
    CHECK_EQ_INT(parse("v=DKIM1; k=ED25519; h=sha256; s=email; t=y:s:x; n=a note; g=*; p=" ED_P),
                 0);
    CHECK(k.testing && k.strict);
    CHECK_EQ_INT(parse("v=DKIM1; s=*:other; p=" ED_P "; k=ed25519"), 0);
    /* Folded base64 in p= (a record copied from a zone file). */
    CHECK_EQ_INT(parse("v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQH Og7hcvPapiMlrw IaaPcHURo="), 0);
    /* Revoked: an empty p=, whatever k= says. */
    CHECK_EQ_INT(parse("v=DKIM1; p="), 0);
    CHECK(k.revoked && k.pkey == NULL);
    CHECK_EQ_INT(parse("v=DKIM1; k=ed25519; p= "), 0);
    CHECK(k.revoked);

    struct {
        const char *rec;
        int rc;
        const char *why;
    } bad[] = {
        {"v=DKIM2; p=" ED_P, -ENOENT, "not a DKIM1 key record"},
        {"v=dkim1; p=" ED_P, -ENOENT, "not a DKIM1 key record"}, /* case matters */
        {"k=ed25519; v=DKIM1; p=" ED_P, -EINVAL, "v= not first in the key record"},
        {"v=DKIM1; k=ed25519", -EINVAL, "key record without p="},
        {"v=DKIM1; k=ed25519; p=" ED_P "; p=" ED_P, -EINVAL, "malformed key record"},
        {"v=DKIM1 k=ed25519", -ENOENT, "not a DKIM1 key record"},
        {"v=DKIM1; k=ecdsa; p=" ED_P, -ENOTSUP, "unknown key type"},
        {"v=DKIM1; k=ed25519; h=sha1; p=" ED_P, -ENOTSUP, "key not for sha256"},
        {"v=DKIM1; k=ed25519; h=sha1:; p=" ED_P, -EINVAL, "malformed h= in the key record"},
        {"v=DKIM1; k=ed25519; s=tlsrpt; p=" ED_P, -ENOTSUP, "key not for email"},
        {"v=DKIM1; k=ed25519; t=y::s; p=" ED_P, -EINVAL, "malformed t= in the key record"},
        {"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS", -EINVAL, "p= is not base64"},
        {"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHUQ==", -EINVAL,
         "p= is no Ed25519 key"},
        /* RFC 8463 §4.2: an Ed25519 key in a SubjectPublicKeyInfo is wrong. */
        {"v=DKIM1; k=ed25519; p=MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
         -EINVAL, "p= is no Ed25519 key"},
        {"v=DKIM1; k=rsa; p=" ED_P, -EINVAL, "p= is no RSA key"},
        /* A SubjectPublicKeyInfo with an octet after it. */
        {"v=DKIM1; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5"
         "bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5Q"
         "jvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQABAA==",
         -EINVAL, "p= is no RSA key"},
        /* An Ed25519 SubjectPublicKeyInfo where an RSA key belongs. */
        {"v=DKIM1; p=MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", -EINVAL,
         "p= is no RSA key"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ_INT(parse(bad[i].rec), bad[i].rc);
        CHECK_EQ_STR(why, bad[i].why);
        CHECK(k.pkey == NULL);
    }
    /* A valid RSA key with bytes after it. */
    struct buf r = BUF_INIT;
    buf_puts(&r, rsa);
    r.len -= 4; /* the last base64 block "AQAB", then it and 3 octets more */
    buf_puts(&r, "AQABAAAA");
    CHECK_EQ_INT(parse(r.data), -EINVAL);
    CHECK_EQ_STR(why, "p= is no RSA key");
    buf_free(&r);
    dkim_key_clear(&k);
}

/* A public RSA key of any size, without the cost of generating one: a
 * modulus of `bits` bits that is no product of primes does for a record. */
static EVP_PKEY *public_rsa(unsigned bits)
{
    BIGNUM *n = BN_new(), *e = BN_new();
    BN_set_bit(n, (int)bits - 1);
    BN_set_bit(n, 0);
    BN_set_word(e, 65537);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n);
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e);
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    EVP_PKEY *key = NULL;
    if (EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
        abort();
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return key;
}

/* RFC 8301 §3.2 sizes; tern's own keys and records. */
static void test_sizes_and_records(void)
{
    EVP_PKEY *small = fx_rsa(512), *big = public_rsa(DKIM_RSA_BITS_MAX + 8);
    struct buf rec = BUF_INIT, pem = BUF_INIT;
    CHECK_EQ_INT(dkim_key_record(small, &rec), 0);
    CHECK_EQ_INT(parse(rec.data), 0);
    CHECK_EQ_INT(k.bits, 512); /* parses: the verifier fails it with its reason */
    buf_reset(&rec);
    CHECK_EQ_INT(dkim_key_record(big, &rec), 0);
    CHECK_EQ_INT(parse(rec.data), -ENOTSUP);
    CHECK_EQ_STR(why, "key too large");

    /* Generation: RSA and Ed25519, PEM that loads again, a record that
     * parses into the same public key. */
    CHECK(dkim_key_generate(512, &pem) == NULL && errno == EINVAL);
    CHECK(dkim_key_generate(DKIM_RSA_BITS_MAX + 1, &pem) == NULL && errno == EINVAL);
    unsigned sizes[] = {0, 1024, 2048};
    for (size_t i = 0; i < 3; i++) {
        buf_reset(&pem);
        buf_reset(&rec);
        EVP_PKEY *key = dkim_key_generate(sizes[i], &pem);
        CHECK(key != NULL);
        CHECK(strstr(pem.data, "-----BEGIN PRIVATE KEY-----") != NULL);
        EVP_PKEY *again = dkim_key_from_pem(pem.data, pem.len);
        CHECK(again != NULL && EVP_PKEY_eq(key, again) == 1);
        CHECK_EQ_INT(dkim_key_record(key, &rec), 0);
        CHECK(strncmp(rec.data, sizes[i] ? "v=DKIM1; k=rsa; p=MI" : "v=DKIM1; k=ed25519; p=",
                      sizes[i] ? 20 : 22) == 0);
        CHECK_EQ_INT(parse(rec.data), 0);
        CHECK_EQ_INT(k.bits, sizes[i] ? sizes[i] : 256);
        CHECK_EQ_INT(dkim_key_matches(&k, key), 1);
        CHECK_EQ_INT(dkim_key_matches(&k, small), 0);
        /* The zone file form: strings of at most 255 octets. */
        struct buf zone = BUF_INIT;
        CHECK_EQ_INT(dkim_key_record_zone(key, &zone), 0);
        CHECK(zone.data[0] == '"');
        size_t strings = 0, longest = 0, cur = 0;
        for (size_t j = 1; j < zone.len; j++) {
            if (zone.data[j] == '"') {
                if (cur > longest)
                    longest = cur;
                cur = 0;
                strings++;
                j += 2; /* the '"', ' ', '"' between strings */
                continue;
            }
            cur++;
        }
        CHECK(longest <= 255);
        CHECK_EQ_INT(strings, (rec.len + 254) / 255);
        buf_free(&zone);
        EVP_PKEY_free(key);
        EVP_PKEY_free(again);
    }
    /* PEM loading refuses what a signer must not use. */
    CHECK(dkim_key_from_pem("garbage", 7) == NULL && errno == EINVAL);
    EVP_PKEY *rfc = dkim_key_from_pem(fx_rsa_pem, strlen(fx_rsa_pem));
    CHECK(rfc != NULL);
    EVP_PKEY_free(rfc);
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, small, NULL, NULL, 0, NULL, NULL);
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    CHECK(dkim_key_from_pem(data, (size_t)n) == NULL); /* 512 bits */
    BIO_free(bio);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, ec, NULL, NULL, 0, NULL, NULL);
    n = BIO_get_mem_data(bio, &data);
    CHECK(dkim_key_from_pem(data, (size_t)n) == NULL); /* not RSA, not Ed25519 */
    buf_reset(&rec);
    CHECK_EQ_INT(dkim_key_record(ec, &rec), -EINVAL);
    BIO_free(bio);
    /* An encrypted key is not read (nobody is there to type). */
    bio = BIO_new(BIO_s_mem());
    EVP_PKEY *ed = fx_ed();
    PEM_write_bio_PKCS8PrivateKey(bio, ed, EVP_aes_128_cbc(), NULL, 0, NULL, (void *)"secret");
    n = BIO_get_mem_data(bio, &data);
    CHECK(dkim_key_from_pem(data, (size_t)n) == NULL);
    BIO_free(bio);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(small);
    EVP_PKEY_free(big);
    buf_free(&rec);
    buf_free(&pem);
    dkim_key_clear(&k);
}

int main(void)
{
    test_records();
    test_sizes_and_records();
    buf_free(&tmp);
    return check_result("test_dkim_key");
}
