/* mboxrd: a message as one entry of an mbox file in the mboxrd variant
 * (what mutt, Dovecot and Python's mailbox module read): a separator line
 * "From <sender> <asctime date>", the message with LF line ends and every
 * line matching ^>*From  quoted with one more '>' (so the quoting can be
 * undone exactly, unlike mboxo's), and an empty line after it. Pure and
 * streaming: chunks of any size, a CRLF or a "From " across their
 * boundary. Unit tests: tests/unit/test_mboxrd.c. */
#ifndef TERN_MAIL_MBOXRD_H
#define TERN_MAIL_MBOXRD_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* Where the quoter is: nothing of a line start is held back but up to
 * four octets of a "From " not yet complete. */
struct mboxrd {
    int cr;        /* a CR ended the last chunk: dropped if an LF follows */
    int bol;       /* at a line start or inside its run of '>' */
    size_t from;   /* octets of "From " matched and held back */
    int last;      /* the last octet appended (-1: none yet) */
};

/* The date at the end of a separator line: asctime's layout, always this
 * long ("Thu Jan  1 00:00:00 2026"). */
#define MBOXRD_DATE_LEN 24

void mboxrd_init(struct mboxrd *q);

/* Appends the separator line for an envelope sender ("" for the null
 * sender, written MAILER-DAEMON) and a time (wall seconds, UTC) to out.
 * White space and controls in the sender become '_', so the line splits
 * into its three parts. */
void mboxrd_from_line(struct buf *out, const char *sender, int64_t t);

/* The time of a separator line that mboxrd_from_line wrote (line[0..n),
 * LF excluded): 0 with *t set, or -EINVAL when its last 24 octets are no
 * asctime date. */
int mboxrd_from_time(const char *line, size_t n, int64_t *t);

/* Feeds in[0..n) (CRLF line ends) and appends the mboxrd text to out. */
void mboxrd_feed(struct mboxrd *q, const char *in, size_t n, struct buf *out);

/* Ends the entry: what is held back, an LF if the message did not end
 * with one, then the empty line. */
void mboxrd_finish(struct mboxrd *q, struct buf *out);

#endif
