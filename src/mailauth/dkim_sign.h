/* dkim_sign: DKIM-Signature fields for a message (RFC 6376 §5, RFC 8463),
 * as pure code over keys the caller loaded (dkim_key_from_pem: the parent
 * reads key files as it reads TLS keys; the network process never sees
 * them). One pass: the message is fed as it streams, header and body; the
 * body goes through one relaxed canonicaliser and one SHA-256 however many
 * keys sign (a domain dual-signed with RSA and Ed25519 as RFC 8463 §5
 * suggests costs one body hash).
 *
 * Every signature is relaxed/relaxed, names the header fields of a set
 * (dkim_sign_headers_default, or the caller's) each as many times as the
 * message has them plus once more, so that a copy added anywhere later,
 * or one added where none was, breaks the signature (over-signing, RFC
 * 6376 §8.15); and is folded into lines of at most 78 characters (RFC
 * 5322 §2.1.1).
 *
 *     struct dkim_signer *s = dkim_sign_new();
 *     dkim_sign_start(s, &params);       per message
 *     dkim_sign_feed(s, p, n); ...       the content, header and body
 *     dkim_sign_finish(s, &out);         the fields, to put on top
 *
 * Unit-tested in tests/unit/test_dkim_sign.c (against the verifier and
 * the RFC 8463 signatures), cross-checked with dkimpy and OpenDKIM in
 * tests/dkim/. */
#ifndef TERN_MAILAUTH_DKIM_SIGN_H
#define TERN_MAILAUTH_DKIM_SIGN_H

#include <openssl/types.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "mailauth/dkim_canon.h"
#include "mailauth/dkim_hdr.h"
#include "mailauth/dkim_msg.h"
#include "mailauth/dkim_sig.h"

/* Keys one signer signs with at once. */
#define DKIM_SIGN_KEYS_MAX 4

/* The fields signed by default: those a reader sees or a reply uses, and
 * the MIME fields that say how to read the body. Not List-* or Resent-*,
 * which mailing lists and resenders add on their way. */
extern const char *const dkim_sign_headers_default[];

struct dkim_sign_key {
    EVP_PKEY *key;        /* borrowed: RSA of 1024 bits or more, or Ed25519 */
    const char *domain;   /* d= */
    const char *selector; /* s= */
};

struct dkim_sign_params {
    const struct dkim_sign_key *keys; /* borrowed, 1 to DKIM_SIGN_KEYS_MAX */
    size_t nkeys;
    const char *const *headers; /* lowercase field names, NULL-terminated;
                                 * NULL: dkim_sign_headers_default. Must
                                 * hold "from" (RFC 6376 §5.4) */
    long long t;      /* t=, seconds since the epoch; 0: none */
    long long x;      /* x=, after t; 0: none */
    const char *auid; /* i=, within d= of every key; NULL: none */
    size_t header_max; /* 0: DKIM_HEADER_MAX */
};

struct dkim_signer;

/* A signer, owned by the caller; kept across messages. */
struct dkim_signer *dkim_sign_new(void);
void dkim_sign_free(struct dkim_signer *s);

/* Begins a message. The params and what they point to must stay valid
 * until dkim_sign_finish(). Returns 0, or -EINVAL for a key that is not
 * RSA (of DKIM_RSA_BITS_MIN to DKIM_RSA_BITS_MAX bits) or Ed25519, a domain
 * or selector DNS cannot ask for, a header set without "from" or with a
 * name that is no field name, x= not after t=, or an i= outside a d=. */
int dkim_sign_start(struct dkim_signer *s, const struct dkim_sign_params *p);

/* Feeds n octets of the message's content from its first header field
 * on (CRLF line ends). */
void dkim_sign_feed(struct dkim_signer *s, const char *p, size_t n);

/* The content ended: appends one DKIM-Signature field per key, in the
 * order of the keys, each ending in CRLF, to out. Returns 0, -EMSGSIZE
 * for a header section over the limit (nothing is appended), -EIO when
 * OpenSSL fails to sign. */
int dkim_sign_finish(struct dkim_signer *s, struct buf *out);

/* The signature of a header hash (§3.7) with key: RSASSA-PKCS1-v1_5 over
 * SHA-256 for RSA, PureEdDSA over the hash for Ed25519 (RFC 8463 §3).
 * Replaces out's contents with the signature's octets. 0 or -EIO. */
int dkim_sign_digest(EVP_PKEY *key, const unsigned char digest[DKIM_HASH_LEN],
                     struct buf *out);

/* Whether a key can sign: RSA of DKIM_RSA_BITS_MIN to DKIM_RSA_BITS_MAX
 * bits or Ed25519, and a domain and selector DNS can ask for. */
bool dkim_sign_key_ok(const struct dkim_sign_key *key);

/* Whether a header set is one to sign: lowercase field names, "from"
 * among them, at most DKIM_H_MAX / 2 (each may be over-signed). */
bool dkim_sign_headers_ok(const char *const *headers);

/* After dkim_sign_finish() and until the next start: the header section
 * as it was fed (its fields, each ending in CRLF), and the SHA-256 of the
 * body in relaxed canonicalisation, so that an ARC sealer
 * (arc_seal_header) need not read the message again. */
const char *dkim_sign_header(const struct dkim_signer *s, size_t *len);
const unsigned char *dkim_sign_body_hash(const struct dkim_signer *s);

/* Writing a signature field folded into lines of at most 78 characters
 * (RFC 5322 §2.1.1): its name, tags, an h= list breakable after each
 * colon, "b=", then the signature's base64 across lines. What is written
 * before dkim_fold_sig() is the field as its header hash sees it (b=
 * empty, RFC 6376 §3.7). Shared with ARC's fields (arc_seal.h). */
struct dkim_fold {
    struct buf *out;     /* borrowed: the field goes here */
    struct buf *scratch; /* borrowed: words are built here */
    size_t col;          /* characters on the current line */
};

/* Appends "name:" to out. */
void dkim_fold_start(struct dkim_fold *f, struct buf *out, struct buf *scratch, const char *name);
/* " name=value;", on a new line if it would not fit. */
void dkim_fold_tag(struct dkim_fold *f, const char *name, const char *value);
/* " h=a:b:c;" from the colon list h[0..n). */
void dkim_fold_hlist(struct dkim_fold *f, const char *h, size_t n);
/* " b=". */
void dkim_fold_b(struct dkim_fold *f);
/* The signature sig[0..n) in base64, folded, and the field's CRLF. */
void dkim_fold_sig(struct dkim_fold *f, const unsigned char *sig, size_t n);

#endif
