/* dkim_canon: the canonicalisations of RFC 6376 §3.4, "simple" and
 * "relaxed", of header fields and of the body; the body as a streaming
 * hasher.
 *
 * The body hasher is fed the message body (what follows the empty line
 * that ends the header section) in chunks split anywhere, with CRLF line
 * ends as tern stores content; a bare CR or LF is an ordinary octet. For
 * each canonicalisation asked for it runs one canonicaliser and one
 * SHA-256 over the canonical body, however many signatures ask and with
 * whatever l= (§3.5): a length limit is a snapshot of that one hash state
 * taken as the canonical body passes the limit. Memory is O(1) in the body
 * size: what a canonicaliser holds back is counts (empty lines that may
 * turn out to end the body, §3.4.3 and §3.4.4; a pending run of white
 * space; a CR that may start a CRLF), never the octets, and its output
 * goes to the hash through a fixed buffer. Nothing is allocated per feed.
 *
 * Use:
 *     struct dkim_body *b = dkim_body_new();           once, reusable
 *     dkim_body_reset(b);                               per message
 *     int slot = dkim_body_want(b, DKIM_CANON_RELAXED, DKIM_NO_LIMIT);
 *     dkim_body_feed(b, p, n); ...                      the body
 *     dkim_body_finish(b);
 *     dkim_body_digest(b, slot), dkim_body_length(b, DKIM_CANON_RELAXED)
 *
 * Unit-tested in tests/unit/test_dkim_canon.c (the RFC 6376 §3.4.5
 * example, every split point), fuzzed by tests/fuzz/fuzz_dkim_canon.c
 * (split-independence against a one-shot reference). */
#ifndef TERN_MAILAUTH_DKIM_CANON_H
#define TERN_MAILAUTH_DKIM_CANON_H

#include <stdbool.h>
#include <stddef.h>
#include <openssl/types.h>
#include <stdint.h>

#include "base/buf.h"

enum dkim_canon {
    DKIM_CANON_SIMPLE,
    DKIM_CANON_RELAXED,
};

/* "simple" or "relaxed". */
const char *dkim_canon_name(enum dkim_canon c);

/* Appends the canonical form of one header field to out (§3.4.1,
 * §3.4.2), followed by CRLF. field[0..n) is the field as it is in the
 * message: its name, the colon, the value with any folds, without the
 * final CRLF. Relaxed lowercases the name, unfolds, reduces each run of
 * white space to one SP, and drops white space at the end of the value
 * and around the colon. */
void dkim_canon_header(enum dkim_canon c, const char *field, size_t n, struct buf *out);

/* SHA-256, the only hash tern verifies or signs with (RFC 8301 §3.1). */
#define DKIM_HASH_LEN 32

/* OpenSSL's SHA-256, fetched once for the process (an implicit fetch on
 * every digest costs a lock and a lookup). Ends the process if there is
 * none. */
const EVP_MD *dkim_sha256(void);

/* An l= that covers the whole body. */
#define DKIM_NO_LIMIT UINT64_MAX

/* Digests one hasher can compute at once: a verifier's 10 signatures and
 * a signer's, with room. */
#define DKIM_BODY_SLOTS_MAX 16

struct dkim_body;

/* A hasher, owned by the caller (dkim_body_free). Ends the process if
 * OpenSSL cannot give it its SHA-256 states (out of memory). */
struct dkim_body *dkim_body_new(void);
void dkim_body_free(struct dkim_body *b);

/* Forgets the message: no slots, nothing fed. */
void dkim_body_reset(struct dkim_body *b);

/* Asks for the SHA-256 of the body in canonicalisation c, cut to its
 * first `limit` canonical octets (DKIM_NO_LIMIT: all of it). Asking again
 * for the same pair returns the same slot. Returns the slot (>= 0), or
 * -ENOSPC when DKIM_BODY_SLOTS_MAX are taken, -EBUSY once feeding began. */
int dkim_body_want(struct dkim_body *b, enum dkim_canon c, uint64_t limit);

/* Feeds n octets of body. Does nothing after dkim_body_finish(). */
void dkim_body_feed(struct dkim_body *b, const char *p, size_t n);

/* The body ended: trailing empty lines are dropped, a last line without
 * CRLF gets one, an empty body is CRLF in simple and nothing in relaxed
 * (§3.4.3, §3.4.4). Idempotent. */
void dkim_body_finish(struct dkim_body *b);

/* After finish: the DKIM_HASH_LEN octets of a slot's digest. A limit
 * past the end of the canonical body gives the digest of all of it. */
const unsigned char *dkim_body_digest(const struct dkim_body *b, int slot);

/* After finish: the canonical body's length in c (0 if c was not asked
 * for), which l= is compared with: a larger body has unsigned content, a
 * smaller one cannot match. */
uint64_t dkim_body_length(const struct dkim_body *b, enum dkim_canon c);

#endif
