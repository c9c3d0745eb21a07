/* dkim_verify: DKIM verification of one message (RFC 6376 §6, RFC 8301,
 * RFC 8463) as a resumable evaluator that does no I/O, in the shape of
 * mailauth/spf.h: the caller feeds the message as it arrives and answers
 * the DNS questions the verifier hands out (mailauth/dnsq.h), in any
 * order and whenever they come.
 *
 * The message is fed as it streams in, header and body alike, in chunks
 * split anywhere, CRLF line ends (what tern stores). The verifier keeps the
 * header section (up to DKIM_HEADER_MAX; see dkim_hdr.h), and when it is
 * complete it parses the DKIM-Signature fields (the first DKIM_SIGS_MAX,
 * top down), computes each one's header hash, asks for the keys (one TXT
 * question per distinct <s>._domainkey.<d>, in one batch, at once: DNS
 * runs while the body arrives) and starts the body hashes: one SHA-256
 * per distinct body canonicalisation, whatever the l= (dkim_canon.h). The
 * body is not kept and not read twice. A key is checked against its
 * signatures as soon as it arrives; the body hashes are compared at the
 * end. So the verdict is ready as soon as the last octet and the last
 * answer are in, before the session answers the end of DATA.
 *
 *     struct dkim_verify *v = dkim_verify_new();        once, reusable
 *     dkim_verify_start(v, &params);                     per message
 *     dkim_verify_feed(v, p, n); ...                     as content comes
 *         dkim_verify_step(v) == DKIM_STEP_DNS: ask dkim_verify_questions()
 *         (once per message; answers via dkim_verify_answer())
 *     dkim_verify_end(v);                                the content ended
 *     dkim_verify_step(v) == DKIM_STEP_DONE, or wait for the answers
 *         (or dkim_verify_timeout())
 *     dkim_verify_count(v), dkim_verify_result(v, i), ...
 *
 * Results per signature, in RFC 8601 §2.7.1's terms:
 *   pass       signature and body hash verified;
 *   fail       they did not (body hash mismatch, signature mismatch), or
 *              the signature may not be accepted: an rsa-sha1 (RFC 8301
 *              §3.1), an RSA key under 1024 bits (§3.2), a revoked key
 *              (empty p=), x= in the past or t= in the future beyond the
 *              clock skew allowed (§3.5), an l= longer than the body;
 *   policy     it verified, but the message has more From (or Subject)
 *              fields than the signature signs (below);
 *   neutral    the DKIM-Signature field is malformed ("contained syntax
 *              errors");
 *   permerror  no usable key: NXDOMAIN or no key record, a malformed one,
 *              a key for another algorithm, service or hash, t=s with i=
 *              in a subdomain;
 *   temperror  the key's DNS lookup failed or timed out.
 * A message without DKIM-Signature fields has no results: "none".
 *
 * RFC 6376 §8.15 (From fields added above the signed one). A verifier
 * selects h='s fields bottom up (§5.4.2), so a From added above a signed
 * one is not seen by the signature, which then still verifies, while a
 * mail reader shows the added From. When a signature signs From (h=
 * names it) fewer times than the message has From fields, some From is
 * unsigned: the signature's result is "policy", flag DKIM_SF_UNSIGNED_FROM,
 * reason "unsigned From above signed", never "pass". Subject likewise,
 * when h= names it at all. Why policy: the cryptography did verify, and
 * RFC 8601 defines policy for a signature that verified but that the
 * verifier does not accept; what a DMARC evaluation takes from DKIM is
 * "pass", which this is not. The others (tests/dkim): OpenDKIM 2.11 says
 * pass (the attack works there); dkimpy 1.1 silently adds one more "from"
 * to h= when it verifies, so the signature fails, for From only. tern
 * refuses it as dkimpy does, for Subject too, and says why instead of
 * reporting a broken signature. A signer that over-signs (names From once
 * more than it occurs, as tern's does) makes an added From break the
 * signature outright.
 * Whatever the signatures, dkim_verify_from_count() gives the From count:
 * more than one makes a message malformed for DMARC (RFC 7489 §6.6.1).
 *
 * Unit-tested in tests/unit/test_dkim_verify.c (RFC 8463 Appendix A, RFC
 * 6376 examples, every result), cross-checked against dkimpy and OpenDKIM
 * in tests/dkim/, fuzzed by tests/fuzz/fuzz_dkim_verify.c. */
#ifndef TERN_MAILAUTH_DKIM_VERIFY_H
#define TERN_MAILAUTH_DKIM_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include "base/buf.h"
#include "base/sizes.h"
#include "mailauth/dkim_result.h"
#include "mailauth/dkim_sig.h"
#include "mailauth/dnsq.h"

/* Signatures verified per message; more are ignored (DKIM_VF_SIGS_IGNORED).
 * Each costs a DNS question and a public-key operation, so a message full
 * of signatures must not make the verifier do unbounded work. One batch of
 * questions holds them all. */
#define DKIM_SIGS_MAX 10
_Static_assert(DKIM_SIGS_MAX <= DNSQ_BATCH_MAX, "one batch asks for every key");

/* Seconds a t= may lie in the future, or an x= in the past, before the
 * signature fails: clocks drift (OpenDKIM's ClockDrift default is 300). */
#define DKIM_CLOCK_SKEW 300

/* The base64 characters of b= reported for header.b (RFC 6008 §4 wants at
 * least 8, enough to tell two signatures apart). */
#define DKIM_B_PREFIX 12

/* Signature flags (dkim_sig_result.flags). */
#define DKIM_SF_TESTING 0x1          /* the key says t=y: the domain tests DKIM */
#define DKIM_SF_LENGTH 0x2           /* l= leaves body content unsigned */
#define DKIM_SF_UNSIGNED_FROM 0x4    /* §8.15: a From the signature does not sign */
#define DKIM_SF_UNSIGNED_SUBJECT 0x8 /* the same for Subject */

/* Message flags (dkim_verify_flags()). */
#define DKIM_VF_HEADER_TOO_LARGE 0x1 /* over the limit: no signature was read */
#define DKIM_VF_SIGS_IGNORED 0x2     /* more than DKIM_SIGS_MAX signatures */

/* One signature's outcome. Text from the message is copied as it was:
 * printable ASCII only when the signature parsed (d= and s= are checked),
 * otherwise empty; escape i= before a log line. */
struct dkim_sig_result {
    enum dkim_result result;
    const char *reason;       /* static: "body hash mismatch", ...; "" for pass */
    bool parsed;              /* the field parsed: the fields below are set */
    enum dkim_alg alg;        /* a= */
    char d[DNS_NAME_MAX];     /* d=, as written (compare ignoring case) */
    char s[DNS_NAME_MAX];     /* s= */
    char i[DKIM_AUID_MAX + 1]; /* i=, or "@" d= when absent */
    char b[DKIM_B_PREFIX + 1]; /* b='s first characters, for header.b */
    unsigned key_bits;        /* the key's size, once it was read */
    uint64_t l;               /* l=, DKIM_NO_LIMIT when absent */
    uint64_t body_len;        /* the canonical body's length (as l= counts) */
    bool has_t, has_x;
    uint64_t t, x;
    unsigned flags;           /* DKIM_SF_* */
};

struct dkim_verify_params {
    long long now;       /* seconds since the epoch, for t= and x=; 0 leaves
                          * them unchecked (the fuzzer, fixed test data) */
    unsigned clock_skew; /* 0: DKIM_CLOCK_SKEW */
    size_t header_max;   /* 0: DKIM_HEADER_MAX */
};

enum dkim_step {
    DKIM_STEP_DONE,    /* every result is final */
    DKIM_STEP_DNS,     /* questions wait for answers */
    DKIM_STEP_CONTENT, /* nothing to ask; the rest of the content is awaited */
};

struct dkim_verify;

/* A verifier, owned by the caller (dkim_verify_free). Its buffers are kept
 * across messages. */
struct dkim_verify *dkim_verify_new(void);
void dkim_verify_free(struct dkim_verify *v);

/* Begins a message, dropping any in progress (answers still owed to it
 * must not be fed). */
void dkim_verify_start(struct dkim_verify *v, const struct dkim_verify_params *p);

/* Feeds n octets of the message's content, from its first header field on
 * (as stored: no dot-stuffing, CRLF line ends). */
void dkim_verify_feed(struct dkim_verify *v, const char *p, size_t n);

/* The content ended. */
void dkim_verify_end(struct dkim_verify *v);

/* Where the verification is. DKIM_STEP_DNS as long as a question of
 * dkim_verify_questions() has no answer; DKIM_STEP_CONTENT while nothing
 * is asked and the content has not ended; DKIM_STEP_DONE after that. */
enum dkim_step dkim_verify_step(struct dkim_verify *v);

/* The questions: *q points at n TXT questions (n is 0 until the header
 * section is complete, and 0 for a message without signatures). There is
 * one batch per message: it does not change until the next start. */
size_t dkim_verify_questions(const struct dkim_verify *v, const struct dnsq_question **q);

/* Feeds the answer to question i; the verifier copies nothing of it, so a
 * and all it points to may go on return. Returns 0, or -EINVAL for an
 * index out of the batch or answered before (the answer is ignored). */
int dkim_verify_answer(struct dkim_verify *v, size_t i, const struct dnsq_answer *a);

/* The answers are not coming: every signature still waiting for its key
 * is temperror. */
void dkim_verify_timeout(struct dkim_verify *v);

/* The signatures verified (at most DKIM_SIGS_MAX) and their results, in
 * the order of their fields, top down. Final once step says DONE. Owned
 * by v, valid until the next start. */
size_t dkim_verify_count(const struct dkim_verify *v);
const struct dkim_sig_result *dkim_verify_result(const struct dkim_verify *v, size_t i);

/* From and Subject fields in the message's header (RFC 7489 §6.6.1: a
 * message with more than one From is malformed), DKIM-Signature fields
 * (read or not), and DKIM_VF_* flags. Known once the header is complete. */
unsigned dkim_verify_from_count(const struct dkim_verify *v);
unsigned dkim_verify_subject_count(const struct dkim_verify *v);
unsigned dkim_verify_sig_fields(const struct dkim_verify *v);
unsigned dkim_verify_flags(const struct dkim_verify *v);

/* ---- pieces shared with ARC (arc_verify.h), whose signatures are DKIM's ---- */

struct dkim_key;

/* The reason a signature fails before its key is read (rsa-sha1, RFC
 * 8301 §3.1; x= past or t= ahead of now by more than clock_skew seconds,
 * §3.5; now 0 leaves the times unchecked), or NULL. */
const char *dkim_verify_early(const struct dkim_sig *s, long long now, unsigned clock_skew);

/* The key an answer holds (RFC 6376 §3.6.2.2: the first TXT record that
 * is a DKIM key record) into k (zeroed or cleared; the caller clears it).
 * 0; or, with *r and *why set: -EAGAIN (temperror: the lookup failed),
 * -ENOENT (permerror: no key record), -EINVAL (permerror: a malformed or
 * unusable one). scratch and tmp are the caller's scratch. */
int dkim_verify_key_answer(struct dkim_key *k, const struct dnsq_answer *a, struct buf *scratch,
                           struct buf *tmp, enum dkim_result *r, const char **why);

/* Why key k may not verify a signature of algorithm alg (revoked, of the
 * other type, RSA under 1024 bits), with its result in *r; or NULL. */
const char *dkim_verify_key_refuses(const struct dkim_key *k, enum dkim_alg alg,
                                    enum dkim_result *r);

/* Whether sig[0..sig_len) is key pk's signature of the header hash
 * digest: RSASSA-PKCS1-v1_5 with SHA-256, or PureEdDSA over the digest
 * for Ed25519 (RFC 8463 §3). */
bool dkim_verify_digest(EVP_PKEY *pk, enum dkim_alg alg, const unsigned char *sig,
                        size_t sig_len, const unsigned char digest[DKIM_HASH_LEN]);

#endif
