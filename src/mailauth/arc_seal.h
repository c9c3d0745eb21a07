/* arc_seal: the next ARC set of a message (RFC 8617 §5.1), as pure code
 * over a key the caller loaded (dkim_key_from_pem, as for DKIM signing:
 * the parent reads key files; the network process never sees them). It
 * produces the three fields of instance N+1, to put on top of the message
 * as it leaves:
 *
 *   ARC-Seal: i=N+1; a=..; t=..; cv=..; d=..; s=..; b=..
 *   ARC-Message-Signature: i=N+1; a=..; c=relaxed/relaxed; d=..; s=..;
 *       t=..; h=..; bh=..; b=..
 *   ARC-Authentication-Results: i=N+1; <the caller's A-R payload>
 *
 * Inputs. The message as it will leave (minus the new set): fed as it
 * streams (arc_seal_start/feed/finish, one relaxed body hash on the way),
 * or as its header section and the relaxed SHA-256 of its body when the
 * caller has them already (arc_seal_header; dkim_sign_body_hash() gives a
 * DKIM signer's). Header fields that go on top of the message after the
 * content was read, above all the DKIM-Signature fields tern adds ("All
 * message modifications (including adding a DKIM-Signature header
 * field(s)) MUST be performed before sealing", §5.1), are handed in as
 * `prepend`. The chain's validation when the message arrived (cv: what
 * arc_verify said then, and tern's Authentication-Results reported as
 * arc=), and the payload of that Authentication-Results field (the text
 * after "Authentication-Results:": authserv-id, results), which becomes
 * the AAR (§4.1.1: one AAR holds all of the ADMD's results).
 *
 * Rules:
 * - N is the highest instance of the ARC fields in the header. N = 0
 *   wants cv=none and makes i=1; N >= 1 wants cv=pass or cv=fail.
 * - cv=pass: the seal signs every set 1..N and the new one (§5.1.1);
 *   the sets must form a chain (arc_set_collect), else -EINVAL: a chain
 *   that does not validate cannot have passed.
 * - cv=fail: the seal signs the new set only (§5.1.2: "as if this newest
 *   ARC Set was the only set present"). That seal is made once: when the
 *   newest ARC-Seal in the header already says cv=fail, §5.1 step 1 says
 *   there is "no need to proceed" and arc_seal refuses with -EPERM (the
 *   message leaves unsealed; a later validator fails the chain anyway).
 * - N = 50 leaves no instance (§4.2.1): -E2BIG, no seal.
 * - The AMS signs, relaxed/relaxed, the fields of `headers`
 *   (arc_seal_headers_default: dkim_sign's set) each over-signed once
 *   as dkim_sign does, plus every DKIM-Signature field present, not
 *   over-signed (§4.1.2 "SHOULD include any DKIM-Signature header fields
 *   already present"; a later hop's DKIM signature must not break it).
 *   It never signs ARC fields or Authentication-Results (§4.1.2 "MUST
 *   NOT"): a header set naming one is -EINVAL.
 * - a= follows the key: rsa-sha256 for RSA, ed25519-sha256 for Ed25519.
 *   RFC 8617 takes DKIM's algorithms; dkimpy 1.1 validates rsa-sha256
 *   only, so a sealer that wants every validator to read its seals uses
 *   an RSA key.
 * - Fields are folded into lines of at most 78 characters (dkim_sign's
 *   writer); the payload is taken as it is (it may be folded already, as
 *   authres_build folds it), after checks that it is one field's worth of
 *   text: printable ASCII or UTF-8, white space, CRLF only before white
 *   space, a readable authserv-id first, at most ARC_SEAL_AAR_MAX octets.
 *
 * How the queue calls it when it forwards a message to a remote address
 * (no I/O here; the key is the one dkim_sign uses, loaded by the parent):
 *
 *     struct arc_sealer *s = arc_seal_new();            once
 *     struct arc_seal_params p = {
 *         .key = key, .domain = "example.org", .selector = "sel",
 *         .t = now, .cv = <arc= of tern's A-R on the message>,
 *         .authres = <that A-R's text after "Authentication-Results:">,
 *     };
 *     arc_seal_start(s, &p);
 *     arc_seal_feed(s, content, n); ...                 the stored message
 *     rc = arc_seal_finish(s, dkim_fields, dkim_len, &out);
 *     0: send out, then dkim_fields, then the content; -EPERM/-E2BIG: send
 *     it unsealed; other errors: a bug or a bad key, log it.
 *
 * Unit-tested in tests/unit/test_arc_seal.c (against arc_verify, every
 * rule above), cross-checked with dkimpy's arc_verify in
 * tests/dkim/test_arc_interop.py. */
#ifndef TERN_MAILAUTH_ARC_SEAL_H
#define TERN_MAILAUTH_ARC_SEAL_H

#include <openssl/types.h>
#include <stddef.h>

#include "base/buf.h"
#include "mailauth/arc_result.h"
#include "mailauth/dkim_canon.h"

/* The AAR payload at most: an Authentication-Results tern builds is a few
 * hundred octets (ten DKIM results make it 2 KB). */
#define ARC_SEAL_AAR_MAX 16384

/* The AMS's signed fields by default: dkim_sign_headers_default. */
extern const char *const *const arc_seal_headers_default;

struct arc_seal_params {
    EVP_PKEY *key;        /* borrowed: RSA of 1024 bits or more, or Ed25519 */
    const char *domain;   /* d= */
    const char *selector; /* s= */
    long long t;          /* t=, seconds since the epoch; 0: none */
    enum arc_result cv;   /* the arriving chain's validation */
    const char *authres;  /* the AAR payload (see above) */
    const char *const *headers; /* the AMS's fields, lowercase, NULL-terminated,
                                 * with "from"; NULL: the default */
    size_t header_max;    /* 0: DKIM_HEADER_MAX */
};

struct arc_sealer;

/* A sealer, owned by the caller; kept across messages. */
struct arc_sealer *arc_seal_new(void);
void arc_seal_free(struct arc_sealer *s);

/* Begins a message. The params and what they point to must stay valid
 * until arc_seal_finish(). 0, or -EINVAL for a key that is neither RSA
 * (DKIM_RSA_BITS_MIN to DKIM_RSA_BITS_MAX bits) nor Ed25519, a domain or
 * selector DNS cannot ask for, a header set without "from" or with a name
 * the AMS may not sign, a payload that is no AAR payload, t < 0. */
int arc_seal_start(struct arc_sealer *s, const struct arc_seal_params *p);

/* Feeds n octets of the content from its first header field on. */
void arc_seal_feed(struct arc_sealer *s, const char *p, size_t n);

/* The content ended: appends the new set's three fields (AS, AMS, AAR,
 * each ending in CRLF) to out. prepend[0..pn) are header fields (each
 * ending in CRLF) that will sit above the content, below the set; NULL
 * for none. Returns 0; -EPERM (the chain already says cv=fail), -E2BIG
 * (50 sets), -EINVAL (cv does not fit the chain, see above; prepend not
 * fields), -EMSGSIZE (a header over the limit), -EIO (OpenSSL failed);
 * out is unchanged on an error. */
int arc_seal_finish(struct arc_sealer *s, const char *prepend, size_t pn, struct buf *out);

/* The same without streaming: the header section header[0..hn) (its
 * fields, each ending in CRLF, without the empty line), prepend as above,
 * and bh, the SHA-256 of the body in relaxed canonicalisation (RFC 6376
 * §3.4.4). Checks p as arc_seal_start() does. Returns as
 * arc_seal_finish(). */
int arc_seal_header(struct arc_sealer *s, const struct arc_seal_params *p, const char *prepend,
                    size_t pn, const char *header, size_t hn,
                    const unsigned char bh[DKIM_HASH_LEN], struct buf *out);

#endif
