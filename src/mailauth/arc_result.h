/* arc_result: the result of an ARC chain's validation (RFC 8617 §5.2, the
 * Chain Validation Status; §6's Authentication-Results method "arc"), as
 * the validator (arc_verify.h) gives it, the sealer (arc_seal.h) takes it
 * for cv=, and Authentication-Results (authres.h) reports it. RFC 8617
 * defines these three only: there is no temperror (arc_verify.h says what
 * a failed key lookup becomes). */
#ifndef TERN_MAILAUTH_ARC_RESULT_H
#define TERN_MAILAUTH_ARC_RESULT_H

enum arc_result {
    ARC_NONE, /* no ARC set */
    ARC_PASS,
    ARC_FAIL,
};

/* "none", "pass", "fail": RFC 8617's names, also those of cv=. */
const char *arc_result_name(enum arc_result r);

#endif
