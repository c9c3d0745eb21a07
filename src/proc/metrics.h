/* metrics: renders tern's counters in the Prometheus text exposition
 * format, version 0.0.4: the net process's (proc/metrics_shm), the
 * queue's (queue/queue_metrics) and the queue's size, read from its index
 * at the moment of the scrape. Every family has # HELP and # TYPE lines;
 * names carry the tern_ prefix and their unit; counters end in _total. */
#ifndef TERN_PROC_METRICS_H
#define TERN_PROC_METRICS_H

#include <stdint.h>

#include "base/buf.h"
#include "queue/queue.h"
#include "queue/queue_metrics.h"

/* Appends the whole exposition to out. qm may be NULL (no queue
 * counters); now_us is the wall clock, for the oldest message's age. */
void metrics_render(struct buf *out, const struct queue *q, const struct qmetrics *qm,
                    uint64_t now_us);

/* Appends s as a label value: \, " and newline escaped as the format
 * requires. */
void metrics_put_label(struct buf *out, const char *s);

#endif
