/* mbox: delivery of one message to one mbox file (mboxrd, mail/mboxrd),
 * as mutt, Dovecot and Python's mailbox module read it, under both of
 * the locks they take (deliver/mbox_lock). Blocking: the delivery
 * process's threads (or the queue's in the unit tests). */
#ifndef TERN_DELIVER_MBOX_H
#define TERN_DELIVER_MBOX_H

#include <stdint.h>
#include <sys/types.h>

#include "mail/result.h"

struct mbox_msg {
    const char *return_path;  /* envelope sender ("" = null) */
    const char *delivered_to; /* the recipient, for Delivered-To: */
    int body_fd;              /* the stored message, CRLF line endings */
    off_t body_off;
    uint64_t body_len;
};

/* An earlier attempt may have delivered it (deliver/redeliver.h): the
 * queue id and when that attempt started. */
struct mbox_look {
    const char *qid;
    int64_t since;
};

/* Appends the message to the mbox at `path` (created 0600, with its
 * directories 0700, if missing): "From sender date", Return-Path: and
 * Delivered-To:, the message quoted, an empty line; fsync'd before OK.
 * Waits up to lock_wait seconds for the locks, then defers (451 4.2.0).
 * With `look`, an entry that attempt made is searched first (under the
 * locks) and, if complete, is the answer; one a crash cut short at the
 * end of the file is truncated away before the message is written
 * again. A failed write or sync (a full disk) truncates the file back to
 * its old size: the mailbox never holds half a message. Refuses a file
 * that is not a regular file of one link (O_NOFOLLOW: no symlink). Fills
 * *res (OK or TEMPFAIL) and returns 0 or the -errno of the failed step. */
int mbox_deliver(const char *path, const struct mbox_msg *msg, const struct mbox_look *look,
                 unsigned lock_wait, struct result *res);

#endif
