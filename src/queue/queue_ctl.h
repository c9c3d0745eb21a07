/* queue_ctl: what the operator's `tern queue ...` commands do to the
 * queue. Loop thread only. Each function appends its human-readable
 * output to *out and returns 0, or -ENOENT (no such queue id), -EINVAL
 * (a bad argument) or another -errno with the reason in *out. */
#ifndef TERN_QUEUE_QUEUE_CTL_H
#define TERN_QUEUE_QUEUE_CTL_H

#include "base/buf.h"
#include "queue/queue.h"

/* The queue like mailq: one entry per message with its pending
 * recipients and their last errors; '*' marks a message being delivered,
 * '!' one on hold. */
int queue_ctl_list(struct queue *q, struct buf *out);
/* Envelope and per-recipient state of one message. */
int queue_ctl_show(struct queue *q, const char *qid, struct buf *out);
/* Pending recipients by destination domain and age, like qshape. */
int queue_ctl_shape(struct queue *q, struct buf *out);
/* Every waiting message (not held, not paused) is tried now. */
int queue_ctl_flush(struct queue *q, struct buf *out);

/* Operations on one message; qid "ALL" means every message. */
enum queue_ctl_op { QCTL_RETRY, QCTL_HOLD, QCTL_RELEASE, QCTL_DELETE };
int queue_ctl_message(struct queue *q, enum queue_ctl_op op, const char *qid, struct buf *out);

/* Stops (pause = 1) or restarts delivery to one destination domain. */
int queue_ctl_pause(struct queue *q, const char *domain, int pause, struct buf *out);

#endif
