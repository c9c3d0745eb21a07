/* arc_set: the ARC header fields of a message (RFC 8617 §4) as the
 * validator (arc_verify.h) and the sealer (arc_seal.h) both read them:
 * which field is which, its instance (§4.2.1), the ARC sets a header
 * holds and whether they form a chain (§5.2 steps 1 to 3), the ARC-Seal
 * field itself (§4.1.3), and the fields an ARC-Seal signs (§5.1.1).
 * The ARC-Message-Signature is a DKIM-Signature in all but its name, v=
 * and i= (dkim_sig_parse_form with DKIM_SIG_FORM_AMS); the
 * ARC-Authentication-Results' instance and authserv-id are read by
 * authres.h. Pure; unit-tested in tests/unit/test_arc_verify.c, fuzzed by
 * tests/fuzz/fuzz_arc_verify.c. */
#ifndef TERN_MAILAUTH_ARC_SET_H
#define TERN_MAILAUTH_ARC_SET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "mailauth/arc_result.h"
#include "mailauth/dkim_hdr.h"
#include "mailauth/dkim_sig.h"

/* RFC 8617 §4.2.1: i= is 1 to 50; a chain of more sets fails (§5.2 step 1). */
#define ARC_INSTANCE_MAX 50

/* The three fields of a set, in the order an ARC-Seal signs them
 * (§5.1.1). */
enum arc_field {
    ARC_FIELD_AAR, /* ARC-Authentication-Results */
    ARC_FIELD_AMS, /* ARC-Message-Signature */
    ARC_FIELD_AS,  /* ARC-Seal */
};
#define ARC_FIELDS 3

/* Which ARC field header field i of h is (its name, case ignored), or
 * -ENOENT for any other field. */
int arc_set_field_kind(const struct dkim_hdr *h, size_t i);

/* The instance of an ARC field whose value (after the colon) is
 * v[0..n): the AAR's leading "i=N;" (§4.1.1), the i= tag of an AMS or an
 * AS tag list. 0, or -EINVAL when there is none or it is not 1 to 50. */
int arc_set_instance(enum arc_field kind, const char *v, size_t n, unsigned *instance);

/* The ARC sets of a header section: for each instance 1..n, the index in
 * the header of its field of each kind. */
struct arc_chain {
    unsigned n;                                    /* the highest instance, 0: no ARC field */
    unsigned fields;                               /* ARC fields in the header */
    uint32_t at[ARC_INSTANCE_MAX + 1][ARC_FIELDS]; /* field index, UINT32_MAX when absent */
    const char *why; /* NULL: the sets form a chain (1..n, one field of
                      * each kind each); else why not, static */
};

/* Collects the ARC fields of h (complete, not overflowing) into c, with
 * RFC 8617 §5.2's structural checks: each field has an instance of 1 to
 * 50, no instance has two fields of a kind (§4.2.1), and instances
 * 1..n each have all three (§5.2 step 3a, 3b). The cv= rules (step 3c)
 * need the seals parsed: arc_set_parse_seal. */
void arc_set_collect(struct arc_chain *c, const struct dkim_hdr *h);

/* A parsed ARC-Seal (§4.1.3). Text pointers point into the value given
 * to arc_set_parse_seal() and are valid as long as it is. */
struct arc_set_seal {
    unsigned instance;
    enum arc_result cv;
    enum dkim_alg alg;
    const char *d, *s, *b;
    size_t d_len, s_len, b_len;
    bool has_t;
    uint64_t t;
    unsigned char sig[DKIM_SIG_BYTES_MAX]; /* b= decoded */
    size_t sig_len;
    char qname[256]; /* <s>._domainkey.<d> */
};

/* Parses an ARC-Seal value v[0..n) (after the colon): tags i, cv, a, b,
 * d, s required, t optional, others ignored (as in DKIM). An h= makes it
 * invalid (§4.1.3: "MUST result in a cv status of fail"). tmp is scratch
 * for base64. 0, or -EINVAL with *why a static reason. */
int arc_set_parse_seal(struct arc_set_seal *as, const char *v, size_t n, struct buf *tmp,
                       const char **why);

/* The fields of sets 1..k in the order an ARC-Seal signs them (§5.1.1):
 * the AAR, AMS and AS of each set, sets in ascending order; into
 * f[0 .. 3k), spans into h's text. c must hold a chain of at least k
 * sets. Instance k's own seal signs the first 3k - 1 of them, then
 * itself with b= empty. Returns 3k. */
size_t arc_set_fields(const struct arc_chain *c, const struct dkim_hdr *h, unsigned k,
                      struct dkim_span *f);

/* Whether an h= name is one an AMS may not sign (§4.1.2: ARC-Seal,
 * ARC-Message-Signature, ARC-Authentication-Results, and
 * Authentication-Results, which the next hop deletes). */
bool arc_set_unsignable(const char *name, size_t n);

#endif
