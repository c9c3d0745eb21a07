/* arc_verify: validation of a message's Authenticated Received Chain (RFC
 * 8617 §5.2) as a resumable evaluator that does no I/O, in the shape of
 * dkim_verify.h: the caller feeds the message as it arrives and answers
 * the DNS questions the validator hands out (mailauth/dnsq.h), in any
 * order and whenever they come.
 *
 * The message is fed as it streams in (CRLF line ends, chunks split
 * anywhere). The validator keeps the header section (up to
 * DKIM_HEADER_MAX) and, when it is complete, collects the ARC sets
 * (arc_set.h) and checks the chain's form: no ARC field at all is
 * "none"; a field without a valid instance, two fields of a kind in one
 * instance, an incomplete set, a gap in 1..N, a newest ARC-Seal saying
 * cv=fail, a cv= other than none at i=1 or other than pass after it, an
 * ARC-Seal with h=, or a malformed ARC-Seal or newest
 * ARC-Message-Signature are "fail" at once (§5.2 steps 1 to 3), with no
 * DNS asked. Otherwise it computes every ARC-Message-Signature's header
 * hash and every ARC-Seal's (§5.1.1: all sets 1..k in order, relaxed),
 * starts one body hash per distinct body canonicalisation and l= the
 * AMSs ask for (dkim_canon.h: the body is hashed as it streams, never
 * kept), and asks for the keys: one TXT question per distinct
 * <s>._domainkey.<d>, in batches of at most DNSQ_BATCH_MAX, the newest
 * AMS's and the seals' first, so the normal chain (each hop one key, a
 * few hops) is one batch asked while the body arrives. A next batch is
 * handed out only once the current one is answered, and none after the
 * chain has failed.
 *
 *     struct arc_verify *v = arc_verify_new();           once, reusable
 *     arc_verify_start(v, &params);                       per message
 *     arc_verify_feed(v, p, n); ...                       as content comes
 *         arc_verify_step(v) == ARC_STEP_DNS: ask arc_verify_questions()
 *         (answers via arc_verify_answer(); then step again: there may
 *         be a next batch)
 *     arc_verify_end(v);                                  the content ended
 *     arc_verify_step(v) == ARC_STEP_DONE, or wait for the answers
 *         (or arc_verify_timeout())
 *     arc_verify_result(v)
 *
 * The verdict (§5.2): "pass" when the newest AMS verifies (body hash and
 * signature, §5.2 step 4) and every AS verifies (step 6); "fail" when
 * one does not, or the chain's form is broken; "none" without ARC
 * fields. Each signature is judged as a DKIM signature is (dkim_verify.h):
 * rsa-sha256 and ed25519-sha256; rsa-sha1, RSA keys under 1024 bits,
 * revoked keys, an AMS past its x= fail; an AMS that signs From (or
 * Subject) fewer times than the message has them fails ("unsigned From
 * above signed", RFC 6376 §8.15), as does one that signs an ARC field or
 * Authentication-Results (RFC 8617 §4.1.2). A failed or timed-out key
 * lookup fails the signature: RFC 8617 has no temperror, and a chain it
 * cannot verify "MUST be treated the same as" none (§5.2); the result's
 * `temporary` says so, for a log or a caller that wants to defer.
 *
 * oldest-pass (§5.2 step 5, optional in the RFC, done here): every older
 * AMS is verified too (its key is usually the seal's of the same hop, so
 * no more DNS), and on a pass the result gives the lowest instance k such
 * that the AMSs of k..N all verify, or 0 when all of them do (IANA's
 * "header.oldest-pass"): how far back the message is as those hops
 * signed it. An older AMS that cannot be verified (its key lookup failed,
 * no body-hash slot left) counts as not verifying: oldest-pass is then
 * higher, never lower, than the truth.
 *
 * Unit-tested in tests/unit/test_arc_verify.c (chains made by arc_seal
 * and forged ones, every result and reason), cross-checked against
 * dkimpy in tests/dkim/test_arc_interop.py, fuzzed by
 * tests/fuzz/fuzz_arc_verify.c. */
#ifndef TERN_MAILAUTH_ARC_VERIFY_H
#define TERN_MAILAUTH_ARC_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/sizes.h"
#include "mailauth/arc_result.h"
#include "mailauth/arc_set.h"
#include "mailauth/authres.h"
#include "mailauth/dnsq.h"

/* Key names one chain may need: an AMS and an AS key per set. */
#define ARC_QUESTIONS_MAX (2 * ARC_INSTANCE_MAX)

/* What the validation found. Text from the message: as_d is a checked
 * domain (printable); aar_id is as found (escape it before a log line);
 * aar_text is the payload as it is in the message, folds included. */
struct arc_verify_result {
    enum arc_result result;
    const char *reason;  /* "" for pass and none; else why, e.g. "i=2
                          * ARC-Seal: signature mismatch"; owned by v */
    bool temporary;      /* fail because a key lookup failed or timed out */
    unsigned sets;       /* N, the highest instance; 0 for none */
    int oldest_pass;     /* pass only: §5.2 step 5 (0: every AMS verified);
                          * else -1 */
    char as_d[DNS_NAME_MAX]; /* the newest ARC-Seal's d=, "" if unread */
    char aar_id[AUTHRES_ID_MAX]; /* the newest AAR's authserv-id, "" if unread */
    const char *aar_text;    /* the newest AAR's authres-payload after its
                              * "i=N;" and leading white space, into v's
                              * copy of the header; NULL when there is none */
    size_t aar_len;
};

struct arc_verify_params {
    long long now;       /* seconds since the epoch, for an AMS's t= and
                          * x=; 0 leaves them unchecked */
    unsigned clock_skew; /* 0: DKIM_CLOCK_SKEW */
    size_t header_max;   /* 0: DKIM_HEADER_MAX */
};

enum arc_step {
    ARC_STEP_DONE,    /* the result is final */
    ARC_STEP_DNS,     /* questions wait for answers */
    ARC_STEP_CONTENT, /* nothing to ask; the rest of the content is awaited */
};

struct arc_verify;

/* A validator, owned by the caller (arc_verify_free); kept across messages. */
struct arc_verify *arc_verify_new(void);
void arc_verify_free(struct arc_verify *v);

/* Begins a message, dropping any in progress (answers still owed to it
 * must not be fed). */
void arc_verify_start(struct arc_verify *v, const struct arc_verify_params *p);

/* Feeds n octets of the content, from its first header field on. */
void arc_verify_feed(struct arc_verify *v, const char *p, size_t n);

/* The content ended. */
void arc_verify_end(struct arc_verify *v);

/* ARC_STEP_DNS as long as a question of the current batch has no answer
 * (it may hand out the next batch, so call it after the answers);
 * ARC_STEP_CONTENT while nothing is asked and the content has not ended;
 * ARC_STEP_DONE after that. */
enum arc_step arc_verify_step(struct arc_verify *v);

/* The current batch: *q points at n TXT questions (0 until the header is
 * complete, and for a chain that needs none). Valid until the next step
 * or start. */
size_t arc_verify_questions(const struct arc_verify *v, const struct dnsq_question **q);

/* Feeds the answer to question i of the current batch; nothing of a is
 * kept. 0, or -EINVAL for an index out of the batch or answered before. */
int arc_verify_answer(struct arc_verify *v, size_t i, const struct dnsq_answer *a);

/* The answers are not coming: every signature still waiting for a key,
 * asked or not yet, fails with temporary set; no more batches. */
void arc_verify_timeout(struct arc_verify *v);

/* The result; final once step says DONE. Owned by v, valid until the
 * next start. */
const struct arc_verify_result *arc_verify_result(const struct arc_verify *v);

#endif
