/* bounce: delivery status notifications (RFC 3464) for the recipients a
 * message could not reach, put into the queue as new messages from the
 * null sender to the original sender, so they are retried and logged
 * like any mail. A bounce is never sent for a bounce (the null sender). */
#ifndef TERN_QUEUE_BOUNCE_H
#define TERN_QUEUE_BOUNCE_H

#include <stddef.h>

#include "mail/dsn.h"
#include "mail/envelope.h"
#include "queue/queue.h"

/* The original content of at most this many octets is returned whole for
 * RET=FULL; longer messages return their header only. */
#define BOUNCE_FULL_MAX (10u * 1024 * 1024)

/* Notifications are marked in their envelope's client name, so a failed
 * one is told to postmaster once and a failed one of those to nobody:
 * nothing ever loops. */
#define BOUNCE_MARK "tern-notification"
#define BOUNCE_MARK_DOUBLE "tern-double-bounce"

/* Queues a DSN about rcpts[0..n) to orig->from, or, when orig is itself a
 * notification that failed, to postmaster. content is the original
 * message as stored (len octets; cut: only its first len octets). Returns
 * 0 (queued, or nobody to tell) or -errno. */
int queue_bounce(struct queue *q, const struct envelope *orig, const char *content,
                 size_t len, int cut, const struct dsn_rcpt *rcpts, size_t n);

#endif
