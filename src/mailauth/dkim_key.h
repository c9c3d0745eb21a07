/* dkim_key: the DKIM key record of a TXT RR at <s>._domainkey.<d> (RFC
 * 6376 §3.6.1, RFC 8463 §4.2): tags v k p h s t (n and unknown tags
 * ignored), a revoked key (empty p=), the public key itself through
 * OpenSSL, and the RSA size rule of RFC 8301 §3.2; and the other way, the
 * record that publishes a key, and key generation, for `tern dkim keygen`
 * and `tern dkim check`. Unit-tested in tests/unit/test_dkim_key.c,
 * fuzzed by tests/fuzz/fuzz_dkim_tags.c. */
#ifndef TERN_MAILAUTH_DKIM_KEY_H
#define TERN_MAILAUTH_DKIM_KEY_H

#include <openssl/types.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

enum dkim_key_type {
    DKIM_KEY_RSA, /* k=rsa, the default */
    DKIM_KEY_ED25519,
};

/* RFC 8301 §3.2: verifiers "MUST NOT consider signatures using RSA keys of
 * less than 1024 bits as valid"; signers use 1024 at least, 2048
 * preferably. */
#define DKIM_RSA_BITS_MIN 1024
/* Larger keys are refused: RFC 8301 lets verifiers stop at 4096, and a
 * hostile DNS must not make one signature cost much (an RSA verification
 * grows with the square of the size). */
#define DKIM_RSA_BITS_MAX 8192

struct dkim_key {
    enum dkim_key_type type;
    EVP_PKEY *pkey;  /* owned; NULL when revoked */
    unsigned bits;   /* of an RSA key (256 for Ed25519) */
    bool revoked;    /* p= empty (§3.6.1) */
    bool testing;    /* t=y: the domain is testing DKIM */
    bool strict;     /* t=s: i= must be in d= itself, not a subdomain */
};

/* Parses a key record (the TXT RR's strings joined, §3.6.2.2) into *k,
 * which must be zeroed or cleared (dkim_key_clear); tmp is scratch.
 * Returns
 *   0           a key, or a revoked one (k->revoked); an RSA key under
 *               DKIM_RSA_BITS_MIN parses (k->bits tells) for the verifier
 *               to fail with its reason;
 *   -ENOENT     no DKIM key record: v= other than DKIM1 (§3.6.1: such
 *               records "MUST be discarded");
 *   -EINVAL     malformed: tags, v= not first, p= not base64 or no key;
 *   -ENOTSUP    a key this verifier cannot use for mail: an unknown k=,
 *               h= without sha256, s= without email or *, an RSA key
 *               over DKIM_RSA_BITS_MAX;
 * with *why set to a static reason on an error. */
int dkim_key_parse(struct dkim_key *k, const char *txt, size_t n, struct buf *tmp,
                   const char **why);

/* Frees the key's OpenSSL key and zeroes it. */
void dkim_key_clear(struct dkim_key *k);

/* Appends the key record that publishes key's public half to out:
 * "v=DKIM1; k=rsa; p=<SubjectPublicKeyInfo, base64>" or "v=DKIM1;
 * k=ed25519; p=<the 32 octets, base64>" (RFC 8463 §4.2). Returns 0, or
 * -EINVAL for a key that is neither RSA nor Ed25519. */
int dkim_key_record(EVP_PKEY *key, struct buf *out);

/* Appends the record as a zone file's TXT data: quoted strings of at most
 * 255 octets (RFC 1035 §3.3.14), which an RSA-2048 record needs. */
int dkim_key_record_zone(EVP_PKEY *key, struct buf *out);

/* Whether a published key is the public half of a private one: 1, 0. */
int dkim_key_matches(const struct dkim_key *k, EVP_PKEY *priv);

/* Makes a key: RSA of `bits` (DKIM_RSA_BITS_MIN to DKIM_RSA_BITS_MAX;
 * e = 65537), or Ed25519 when bits is 0. Appends its PKCS #8 PEM to pem
 * (secret: the caller writes it 0600 and wipes the buffer). Returns the
 * key (owned by the caller, EVP_PKEY_free), or NULL with errno EINVAL for
 * a size out of range, EIO when OpenSSL fails. */
EVP_PKEY *dkim_key_generate(unsigned bits, struct buf *pem);

/* Reads a private key, RSA or Ed25519, from PEM (PKCS #1, PKCS #8, or
 * OpenSSL's traditional form). Returns it (owned by the caller), or NULL
 * with errno EINVAL for anything else, a PEM with a passphrase included,
 * or an RSA key under DKIM_RSA_BITS_MIN (a signer must not use one,
 * RFC 8301 §3.2). */
EVP_PKEY *dkim_key_from_pem(const char *pem, size_t n);

#endif
