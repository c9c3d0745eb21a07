/* dkim_key.c: key records (RFC 6376 §3.6.1, RFC 8463 §4.2) and keys. */
#include "mailauth/dkim_key.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <string.h>

#include "base/base64.h"
#include "mailauth/dkim_tags.h"

/* A SubjectPublicKeyInfo of an RSA key of DKIM_RSA_BITS_MAX bits is a
 * little over 1 KB; twice that is more than any key tern accepts. */
#define DKIM_KEY_DER_MAX 2048
#define DKIM_ED25519_LEN 32

#define DKIM_KEY_FAIL(rc, text) \
    do {                        \
        *why = (text);          \
        dkim_key_clear(k);      \
        return (rc);            \
    } while (0)

void dkim_key_clear(struct dkim_key *k)
{
    EVP_PKEY_free(k->pkey);
    memset(k, 0, sizeof *k);
}

/* One DER element of tag `tag` at *p (before end): its contents' length
 * into *len, *p moved to them. Definite lengths of at most 3 octets (a key
 * record is under 64 KB). 0 or -EBADMSG. */
static int dkim_der(const unsigned char **p, const unsigned char *end, unsigned char tag,
                    size_t *len)
{
    const unsigned char *q = *p;
    if (end - q < 2 || q[0] != tag)
        return -EBADMSG;
    size_t n = q[1];
    q += 2;
    if (n & 0x80) {
        size_t k = n & 0x7f;
        if (k == 0 || k > 3 || (size_t)(end - q) < k)
            return -EBADMSG;
        n = 0;
        for (size_t i = 0; i < k; i++)
            n = n << 8 | *q++;
    }
    if (n > (size_t)(end - q))
        return -EBADMSG;
    *p = q;
    *len = n;
    return 0;
}

/* The RSAPublicKey inside an RSA SubjectPublicKeyInfo (RFC 5280 §4.1.2.7,
 * RFC 3279 §2.3.1): SEQUENCE { SEQUENCE { rsaEncryption, NULL }, BIT
 * STRING }. Unwrapped here because OpenSSL 3's d2i_PUBKEY goes through its
 * decoder framework: 250 us a key on the bench machine, against 0.7 us for
 * d2i_PublicKey on what is inside. NULL unless it is exactly that. */
static const unsigned char *dkim_spki_rsa(const unsigned char *der, size_t n, size_t *inner)
{
    static const unsigned char rsa_oid[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01};
    const unsigned char *p = der, *end = der + n;
    size_t len;
    if (dkim_der(&p, end, 0x30, &len) < 0 || p + len != end)
        return NULL;
    if (dkim_der(&p, end, 0x30, &len) < 0)
        return NULL;
    const unsigned char *alg_end = p + len;
    size_t olen;
    if (dkim_der(&p, alg_end, 0x06, &olen) < 0 || olen != sizeof rsa_oid ||
        memcmp(p, rsa_oid, olen) != 0)
        return NULL;
    p += olen;
    if (p != alg_end && (alg_end - p != 2 || p[0] != 0x05 || p[1] != 0x00))
        return NULL; /* the parameters are NULL (or, by some encoders, absent) */
    p = alg_end;
    if (dkim_der(&p, end, 0x03, &len) < 0 || p + len != end || len < 2 || p[0] != 0)
        return NULL; /* a BIT STRING without unused bits */
    *inner = len - 1;
    return p + 1;
}

/* The RSA public key in p: a SubjectPublicKeyInfo, as RFC 6376's own
 * example (Appendix C) and every signer publish, or the bare RSAPublicKey
 * §3.6.1's text names. */
static EVP_PKEY *dkim_key_rsa(const unsigned char *der, size_t n)
{
    size_t len = n;
    const unsigned char *pk = dkim_spki_rsa(der, n, &len);
    if (pk == NULL)
        pk = der;
    const unsigned char *q = pk;
    EVP_PKEY *key = d2i_PublicKey(EVP_PKEY_RSA, NULL, &q, (long)len);
    if (key && q != pk + len) {
        EVP_PKEY_free(key);
        return NULL;
    }
    return key;
}

int dkim_key_parse(struct dkim_key *k, const char *txt, size_t n, struct buf *tmp,
                   const char **why)
{
    struct dkim_tags tags;
    dkim_key_clear(k);
    if (dkim_tags_parse(&tags, txt, n) < 0)
        DKIM_KEY_FAIL(-EINVAL, "malformed key record");
    const struct dkim_tag *v = dkim_tags_find(&tags, "v");
    if (v) {
        if (!(v->value_len == 5 && memcmp(v->value, "DKIM1", 5) == 0))
            DKIM_KEY_FAIL(-ENOENT, "not a DKIM1 key record");
        if (v != &tags.tag[0])
            DKIM_KEY_FAIL(-EINVAL, "v= not first in the key record");
    }
    const struct dkim_tag *kt = dkim_tags_find(&tags, "k");
    k->type = DKIM_KEY_RSA;
    if (kt && dkim_text_eq(kt->value, kt->value_len, "ed25519"))
        k->type = DKIM_KEY_ED25519;
    else if (kt && !dkim_text_eq(kt->value, kt->value_len, "rsa"))
        DKIM_KEY_FAIL(-ENOTSUP, "unknown key type");

    const struct dkim_tag *h = dkim_tags_find(&tags, "h");
    if (h) {
        int has = dkim_list_has(h->value, h->value_len, "sha256");
        if (has < 0)
            DKIM_KEY_FAIL(-EINVAL, "malformed h= in the key record");
        if (has == 0)
            DKIM_KEY_FAIL(-ENOTSUP, "key not for sha256");
    }
    const struct dkim_tag *s = dkim_tags_find(&tags, "s");
    if (s) {
        int email = dkim_list_has(s->value, s->value_len, "email");
        int any = dkim_list_has(s->value, s->value_len, "*");
        if (email < 0 || any < 0)
            DKIM_KEY_FAIL(-EINVAL, "malformed s= in the key record");
        if (!email && !any)
            DKIM_KEY_FAIL(-ENOTSUP, "key not for email");
    }
    const struct dkim_tag *t = dkim_tags_find(&tags, "t");
    if (t) {
        size_t pos = 0, len;
        const char *flag;
        int rc;
        while ((rc = dkim_list_next(t->value, t->value_len, &pos, &flag, &len)) == 1) {
            if (dkim_text_eq(flag, len, "y"))
                k->testing = true;
            else if (dkim_text_eq(flag, len, "s"))
                k->strict = true; /* unknown flags are ignored (§3.6.1) */
        }
        if (rc < 0)
            DKIM_KEY_FAIL(-EINVAL, "malformed t= in the key record");
    }

    const struct dkim_tag *p = dkim_tags_find(&tags, "p");
    if (p == NULL)
        DKIM_KEY_FAIL(-EINVAL, "key record without p=");
    if (p->value_len == 0) {
        k->revoked = true;
        return 0;
    }
    int rc = dkim_b64_decode(p->value, p->value_len, DKIM_KEY_DER_MAX, tmp);
    if (rc == -EMSGSIZE)
        DKIM_KEY_FAIL(-ENOTSUP, "key too large");
    if (rc < 0)
        DKIM_KEY_FAIL(-EINVAL, "p= is not base64");
    const unsigned char *der = (const unsigned char *)tmp->data;
    if (k->type == DKIM_KEY_ED25519) {
        /* RFC 8463 §4.2: the bare 32 octets, not a SubjectPublicKeyInfo. */
        if (tmp->len != DKIM_ED25519_LEN)
            DKIM_KEY_FAIL(-EINVAL, "p= is no Ed25519 key");
        k->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, der, tmp->len);
        if (k->pkey == NULL)
            DKIM_KEY_FAIL(-EINVAL, "p= is no Ed25519 key");
        k->bits = 256;
        return 0;
    }
    k->pkey = dkim_key_rsa(der, tmp->len);
    if (k->pkey == NULL)
        DKIM_KEY_FAIL(-EINVAL, "p= is no RSA key");
    int bits = EVP_PKEY_get_bits(k->pkey);
    if (bits <= 0)
        DKIM_KEY_FAIL(-EINVAL, "p= is no RSA key");
    if (bits > DKIM_RSA_BITS_MAX)
        DKIM_KEY_FAIL(-ENOTSUP, "key too large");
    k->bits = (unsigned)bits;
    return 0;
}

/* The p= octets of a key: SubjectPublicKeyInfo for RSA, raw for Ed25519. */
static int dkim_key_public(EVP_PKEY *key, struct buf *der, const char **k)
{
    buf_reset(der);
    int id = EVP_PKEY_get_base_id(key);
    if (id == EVP_PKEY_ED25519) {
        size_t len = DKIM_ED25519_LEN;
        char *w = buf_reserve(der, len);
        if (EVP_PKEY_get_raw_public_key(key, (unsigned char *)w, &len) != 1 ||
            len != DKIM_ED25519_LEN)
            return -EINVAL;
        buf_commit(der, len);
        *k = "ed25519";
        return 0;
    }
    if (id != EVP_PKEY_RSA)
        return -EINVAL;
    int len = i2d_PUBKEY(key, NULL);
    if (len <= 0)
        return -EINVAL;
    unsigned char *w = (unsigned char *)buf_reserve(der, (size_t)len);
    if (i2d_PUBKEY(key, &w) != len)
        return -EINVAL;
    buf_commit(der, (size_t)len);
    *k = "rsa";
    return 0;
}

int dkim_key_record(EVP_PKEY *key, struct buf *out)
{
    struct buf der = BUF_INIT;
    const char *kname;
    int rc = dkim_key_public(key, &der, &kname);
    if (rc == 0) {
        buf_printf(out, "v=DKIM1; k=%s; p=", kname);
        char *w = buf_reserve(out, BASE64_ENCODED_SIZE(der.len));
        ssize_t n = base64_encode(der.data, der.len, w, BASE64_ENCODED_SIZE(der.len));
        buf_commit(out, (size_t)n);
    }
    buf_free(&der);
    return rc;
}

int dkim_key_record_zone(EVP_PKEY *key, struct buf *out)
{
    struct buf rec = BUF_INIT;
    int rc = dkim_key_record(key, &rec);
    for (size_t i = 0; rc == 0 && i < rec.len; i += 255) {
        size_t take = rec.len - i < 255 ? rec.len - i : 255;
        buf_printf(out, "%s\"%.*s\"", i ? " " : "", (int)take, rec.data + i);
    }
    buf_free(&rec);
    return rc;
}

int dkim_key_matches(const struct dkim_key *k, EVP_PKEY *priv)
{
    return k->pkey != NULL && EVP_PKEY_eq(k->pkey, priv) == 1;
}

EVP_PKEY *dkim_key_generate(unsigned bits, struct buf *pem)
{
    if (bits != 0 && (bits < DKIM_RSA_BITS_MIN || bits > DKIM_RSA_BITS_MAX)) {
        errno = EINVAL;
        return NULL;
    }
    EVP_PKEY *key = bits ? EVP_RSA_gen(bits) : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    BIO *bio = key ? BIO_new(BIO_s_mem()) : NULL;
    if (bio == NULL || PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1) {
        BIO_free(bio);
        EVP_PKEY_free(key);
        errno = EIO;
        return NULL;
    }
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    buf_append(pem, data, (size_t)n);
    BIO_free(bio); /* a memory BIO clears its storage when freed */
    return key;
}

static int dkim_no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1; /* an encrypted key cannot be read unattended */
}

EVP_PKEY *dkim_key_from_pem(const char *pem, size_t n)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)(n > 1 << 20 ? 1 << 20 : n));
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, dkim_no_passphrase, NULL) : NULL;
    BIO_free(bio);
    if (key == NULL)
        goto bad;
    int id = EVP_PKEY_get_base_id(key);
    if (id == EVP_PKEY_ED25519)
        return key;
    if (id == EVP_PKEY_RSA && EVP_PKEY_get_bits(key) >= DKIM_RSA_BITS_MIN &&
        EVP_PKEY_get_bits(key) <= DKIM_RSA_BITS_MAX)
        return key;
bad:
    EVP_PKEY_free(key);
    errno = EINVAL;
    return NULL;
}
