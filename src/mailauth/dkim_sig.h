/* dkim_sig: one DKIM-Signature header field parsed and checked (RFC 6376
 * §3.5, RFC 8301, RFC 8463): the tags v a b bh c d h i l q s t x z, the
 * rules between them (i= within d=, h= holding "from", x= after t=),
 * unknown tags ignored, folding white space where the syntax allows it.
 * What a verifier decides from the time or the key (expired, sha1, key
 * size) is not checked here: the field parses, the verifier judges.
 * Pure; unit-tested in tests/unit/test_dkim_sig.c, fuzzed by
 * tests/fuzz/fuzz_dkim_tags.c. */
#ifndef TERN_MAILAUTH_DKIM_SIG_H
#define TERN_MAILAUTH_DKIM_SIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "mailauth/dkim_canon.h"
#include "mailauth/dkim_tags.h"

enum dkim_alg {
    DKIM_ALG_RSA_SHA256,
    DKIM_ALG_ED25519_SHA256, /* RFC 8463 */
    DKIM_ALG_RSA_SHA1,       /* parsed to be refused: RFC 8301 §3.1 */
};

/* "rsa-sha256", "ed25519-sha256", "rsa-sha1". */
const char *dkim_alg_name(enum dkim_alg a);

/* The largest signature: an RSA key of DKIM_RSA_BITS_MAX bits. */
#define DKIM_SIG_BYTES_MAX 1024
/* h= names at most: over-signing a long list doubles it; more is taken
 * for an attack on the verifier's time. */
#define DKIM_H_MAX 256
/* i= at most: a local-part of 64, "@", a domain of 253. */
#define DKIM_AUID_MAX 320

/* A parsed signature. Text pointers point into the field value given to
 * dkim_sig_parse() and are valid as long as it is. */
struct dkim_sig {
    enum dkim_alg alg;
    enum dkim_canon hcanon, bcanon; /* c=, default simple/simple */
    const char *d, *s, *i, *h, *b;  /* values of d= s= i= h= b= */
    size_t d_len, s_len, i_len, h_len, b_len; /* i_len 0: i= absent */
    size_t b_off;             /* where b='s value starts in the field value */
    size_t nh;                /* h= names */
    unsigned h_from;          /* how often h= names "from" */
    unsigned h_subject;       /* ... and "subject" */
    uint64_t l;               /* l=, DKIM_NO_LIMIT when absent */
    bool has_t, has_x;
    uint64_t t, x;
    unsigned char bh[DKIM_HASH_LEN]; /* bh= decoded (20 octets for sha1) */
    size_t bh_len;
    unsigned char sig[DKIM_SIG_BYTES_MAX]; /* b= decoded */
    size_t sig_len;
    char qname[256];          /* <s>._domainkey.<d>, the key's DNS name */
};

/* Parses the value of a DKIM-Signature field (what follows its colon, folds
 * and all) into *sig. tmp is scratch for base64. Returns 0, or -EINVAL
 * with *why set to a static reason ("missing b=", "i= not within d=",
 * ...) for a field that is no valid signature: RFC 8601's neutral. */
int dkim_sig_parse(struct dkim_sig *sig, const char *value, size_t n, struct buf *tmp,
                   const char **why);

/* The same for a field of another form: DKIM_SIG_FORM_AMS reads an
 * ARC-Message-Signature (RFC 8617 §4.1.2: the syntax and semantics of a
 * DKIM-Signature, except that v= is not required and is ignored, and i= is
 * the ARC instance, not an AUID: sig->i stays empty). */
enum dkim_sig_form {
    DKIM_SIG_FORM_DKIM,
    DKIM_SIG_FORM_AMS,
};
int dkim_sig_parse_form(struct dkim_sig *sig, enum dkim_sig_form form, const char *value,
                        size_t n, struct buf *tmp, const char **why);

/* An a= value: 0, or -EINVAL for an algorithm tern does not know. */
int dkim_alg_parse(const char *v, size_t n, enum dkim_alg *a);

/* "<s>._domainkey.<d>" into out: 0, or -ENAMETOOLONG past 253 octets. */
int dkim_sig_qname(char out[256], const char *s, size_t s_len, const char *d, size_t d_len);

/* The field field[0..n) with b='s value b[0..b_len) (inside it) deleted,
 * into out (reset first): what the header hash signs (RFC 6376 §3.7). */
void dkim_sig_strip_b(const char *field, size_t n, const char *b, size_t b_len, struct buf *out);

/* Steps through sig's h= names (see dkim_list_next); h= parsed, so no
 * error can come. */
int dkim_sig_h_next(const struct dkim_sig *sig, size_t *pos, const char **name, size_t *len);

/* Whether a selector or domain is one tern asks DNS for: dot-separated
 * labels of letters, digits, '-' and '_' (RFC 6376 §3.1 selectors are
 * sub-domains; '_' is seen in practice), 1 to 63 octets each. */
bool dkim_name_ok(const char *p, size_t n);

#endif
