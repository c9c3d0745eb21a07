/* dotstuff_enc: the sending side of the message content (RFC 5321
 * §4.5.2, RFC 3030): the one place where content octets are turned into
 * what goes on the wire, so that the rules hold whatever the spooled
 * content holds and whatever its envelope says.
 *
 *   DOTSTUFF_ENC_DATA   after DATA: dot-stuffed, and only CRLF line ends.
 *                       A NUL, a bare CR or a bare LF is refused, never
 *                       sent and never rewritten: the caller must not end
 *                       the data (it drops the connection instead), so a
 *                       receiver gets either the exact content or nothing,
 *                       and no octet sequence can end the data early
 *                       (SMTP smuggling, CVE-2023-51764 and kin).
 *   DOTSTUFF_ENC_TEXT   BDAT without BODY=BINARYMIME: the octets as they
 *                       are (chunks need no stuffing), the same refusals.
 *   DOTSTUFF_ENC_BINARY BDAT with BODY=BINARYMIME: every octet as it is.
 *
 * 8-bit octets are passed and noted (DOTSTUFF_ENC_F_8BIT) in every mode;
 * whether they may go is the caller's BODY= decision. With out == NULL
 * nothing is written: a dry run that tells whether a content can go in
 * a mode at all. Pure, no I/O; fuzzed by tests/fuzz/fuzz_outbound.c. */
#ifndef TERN_MAIL_DOTSTUFF_ENC_H
#define TERN_MAIL_DOTSTUFF_ENC_H

#include <stddef.h>

#include "base/buf.h"

enum dotstuff_enc_mode {
    DOTSTUFF_ENC_DATA = 0,
    DOTSTUFF_ENC_TEXT = 1,
    DOTSTUFF_ENC_BINARY = 2,
};

/* What the content held so far (sticky). */
#define DOTSTUFF_ENC_F_8BIT 0x01 /* an octet >= 0x80 */
#define DOTSTUFF_ENC_F_NUL 0x02  /* a NUL (refused unless BINARY) */
#define DOTSTUFF_ENC_F_BARE 0x04 /* a CR not before LF, or an LF not after CR (idem) */

struct dotstuff_enc {
    enum dotstuff_enc_mode mode;
    unsigned flags; /* DOTSTUFF_ENC_F_* */
    /* Private state. */
    int bol;    /* at the start of a line: the first octet, or after a CRLF */
    int cr;     /* a CR held back: CRLF, or a bare CR? */
    int failed; /* a refusal happened: everything after it is refused too */
};

void dotstuff_enc_init(struct dotstuff_enc *e, enum dotstuff_enc_mode mode);

/* Appends in[0..n) encoded to out (NULL: a dry run). A CR at the end of
 * in is held back until the next call shows an LF. Returns 0, or -EINVAL at
 * the first NUL or bare CR/LF in DATA and TEXT modes: what came before
 * it may have been appended, nothing of it or after it is, and every
 * later call fails too. */
int dotstuff_enc_feed(struct dotstuff_enc *e, const char *in, size_t n, struct buf *out);

/* Ends the content. DATA mode appends the end of data: a CRLF when the
 * content did not end with one, then ".\r\n". Returns 0, or -EINVAL (nothing
 * appended) after a refusal or with a CR held back that no LF followed
 * (a bare CR at the very end) in DATA and TEXT modes. */
int dotstuff_enc_end(struct dotstuff_enc *e, struct buf *out);

#endif
