/* dotstuff: the message-content stream of DATA (RFC 5321 §4.1.1.4, §4.5.2)
 * and BDAT (RFC 3030), decoded as bytes arrive in any split.
 *
 * DATA ends at <CRLF>.<CRLF> and at nothing else. Every bare CR and every
 * bare LF in the content is either rewritten to CRLF (DOTSTUFF_NORMALIZE)
 * or marks the message for refusal (DOTSTUFF_REJECT); either way no
 * variant such as "\n.\n", "\n.\r\n", "\r.\r\n", "\r\n.\r" or "\r\n.\n"
 * can end the data or survive into the stored message as a line ending
 * that another server would read differently (SMTP smuggling, 2023).
 * A dot that follows a bare CR or LF is content, not a line-leading dot,
 * so it is never unstuffed. Pure state machine, no I/O; fuzzed. */
#ifndef TERN_MAIL_DOTSTUFF_H
#define TERN_MAIL_DOTSTUFF_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

enum dotstuff_bare_policy { DOTSTUFF_NORMALIZE = 0, DOTSTUFF_REJECT = 1 };

enum dotstuff_mode {
    DOTSTUFF_DATA = 0,   /* dot-stuffed, ends at CRLF.CRLF */
    DOTSTUFF_BDAT = 1,   /* BDAT chunks: no dot-stuffing; caller counts chunk sizes */
    DOTSTUFF_BINARY = 2, /* BDAT with BODY=BINARYMIME: bytes pass unchanged */
};

/* Result flags, sticky for the whole message. */
#define DOTSTUFF_F_BARE 0x01     /* a bare CR or LF was seen */
#define DOTSTUFF_F_LONGLINE 0x02 /* a line exceeded max_line */
#define DOTSTUFF_F_TOOBIG 0x04   /* decoded size exceeded max_size */
#define DOTSTUFF_F_8BIT 0x08     /* an octet >= 0x80 was seen */
#define DOTSTUFF_F_NUL 0x10      /* a NUL octet was seen */

struct dotstuff {
    /* Settings, fixed for the message. */
    enum dotstuff_mode mode;
    enum dotstuff_bare_policy bare;
    size_t max_line; /* octets including CRLF; 0 = no limit */
    uint64_t max_size; /* octets of decoded content; 0 = no limit */
    /* Results. */
    uint64_t size;  /* decoded content octets (RFC 1870 count), also past max_size */
    unsigned flags; /* DOTSTUFF_F_* */
    /* Private state. */
    int state;
    size_t linelen;
};

enum dotstuff_status { DOTSTUFF_MORE = 0, DOTSTUFF_END = 1 };

void dotstuff_init(struct dotstuff *d, enum dotstuff_mode mode, enum dotstuff_bare_policy bare,
                   size_t max_line, uint64_t max_size);

/* Decodes in[0..len) and appends the content to `out` (which it never
 * grows beyond the octets that fit under max_size: once DOTSTUFF_F_TOOBIG
 * is set, content is counted but no longer appended). Sets *consumed to
 * the octets used. In DATA mode returns DOTSTUFF_END once the final
 * <CRLF>.<CRLF> is consumed; the octets after it (pipelined commands) are
 * not consumed. In BDAT modes it consumes everything and returns
 * DOTSTUFF_MORE; call dotstuff_finish() after the LAST chunk. */
int dotstuff_feed(struct dotstuff *d, const char *in, size_t len, struct buf *out,
                  size_t *consumed);

/* BDAT modes: ends the message, flushing a pending CR (normalized to CRLF
 * or flagged as bare). */
void dotstuff_finish(struct dotstuff *d, struct buf *out);

#endif
