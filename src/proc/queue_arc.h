/* queue_arc: which mail the queue seals with ARC (RFC 8617) and from what.
 * tern seals mail it forwards: a message it judged on arrival (its own
 * Authentication-Results field is in the receiving side's prefix) with a
 * recipient that an alias of a local domain turned into a remote address.
 * The seal is made with a dkim_sign key of that alias's domain (RSA
 * preferred: every ARC validator reads rsa-sha256, not all read Ed25519);
 * its cv= is the arc= result of tern's field, its AAR that field's text
 * (RFC 8617 §4.1.1: the ADMD's results as it saw them). Making the seal is
 * proc/queue_dkim's, in the one pass over the content it makes for DKIM. */
#ifndef TERN_PROC_QUEUE_ARC_H
#define TERN_PROC_QUEUE_ARC_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/sizes.h"
#include "conf/config.h"
#include "mail/envelope.h"
#include "mailauth/arc_result.h"
#include "proc/dkim_keys.h"

struct queue_arc_in {
    struct dkim_sign_key key; /* borrowed from the ring */
    enum arc_result cv;       /* arc= of tern's Authentication-Results */
    struct buf aar;           /* owned: that field's text after the colon */
};

/* Whether env, stored with the receiving side's fields prefix[0..n), is
 * forwarded mail to seal: true with *in filled (in->aar is reset first;
 * the caller frees it), false for mail that is not forwarded, that tern
 * did not judge, or whose alias domains have no key. */
bool queue_arc_wanted(const struct config *cfg, const struct dkim_keyring *ring,
                      const struct envelope *env, const char *prefix, size_t n,
                      struct queue_arc_in *in);

#endif
