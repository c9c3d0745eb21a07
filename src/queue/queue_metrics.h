/* queue_metrics: the queue's counters for Prometheus (proc/metrics renders
 * them). A fixed layout without pointers, so that the queue process can
 * keep it in the memory region the parent maps once (proc/metrics_shm):
 * the counters then survive a restart of the queue process. Only the
 * queue process's loop thread writes or reads it.
 *
 * Errors per destination are counted per recipient domain in a bounded
 * table: the first QMETRICS_DOMAINS_MAX domains get their own series,
 * every later one is counted under "other" (a peer chooses domain names:
 * an unbounded label set would be a memory and cardinality attack). */
#ifndef TERN_QUEUE_QUEUE_METRICS_H
#define TERN_QUEUE_QUEUE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "mail/result.h"

/* Histogram bounds (seconds) of the delivery latency, arrival to final
 * delivery of one recipient: from a local delivery (milliseconds) to
 * retries spread over hours. +Inf is the last, implicit bucket. */
#define QMETRICS_BUCKETS 15
extern const double qmetrics_bounds[QMETRICS_BUCKETS];

#define QMETRICS_DOMAINS_MAX 1000
#define QMETRICS_DOMAIN_LEN 255 /* RFC 5321 §4.5.3.1.2 */
#define QMETRICS_SLOTS 2048      /* hash slots, a power of two > 2 x MAX */

struct qmetrics_domain {
    char name[QMETRICS_DOMAIN_LEN + 1]; /* lowercased; "" = free slot */
    uint64_t deferred, bounced;
};

struct qmetrics {
    uint64_t received;       /* messages committed */
    uint64_t received_rcpts; /* their recipients (after alias expansion) */
    uint64_t delivered, deferred, bounced; /* recipient attempts' outcomes */
    /* Latency: count per bucket (not cumulative; the last is +Inf). */
    uint64_t latency_bucket[QMETRICS_BUCKETS + 1];
    uint64_t latency_sum_us, latency_count;
    size_t ndomains;
    uint64_t other_deferred, other_bounced;
    /* DMARC aggregate-report rows from the smtp process (proc/queue_dmarc):
     * appended to the day's file, refused as malformed, not written (an
     * I/O error, or the day's file at its size limit). */
    uint64_t dmarc_rows_recorded, dmarc_rows_refused, dmarc_rows_failed;
    struct qmetrics_domain domains[QMETRICS_SLOTS];
};

/* A message with nrcpt recipients was committed. */
void qmetrics_received(struct qmetrics *m, uint32_t nrcpt);
/* The outcome of one recipient's attempt: kind OK feeds the latency
 * histogram with latency_us (arrival to now); TEMPFAIL counts deferred
 * and PERMFAIL bounced (also an expiry), both per domain of addr. */
void qmetrics_outcome(struct qmetrics *m, enum result_kind kind, const char *addr,
                      uint64_t latency_us);

/* The queue's size now, from its in-memory index (queue_metrics.c). */
struct queue;
struct queue_depth {
    uint64_t messages, recipients; /* recipients pending delivery */
    uint64_t oldest_arrival_us;    /* 0 when the queue is empty */
};
void queue_get_depth(const struct queue *q, struct queue_depth *d);
/* Points the queue at the counters to keep (NULL: count nothing). The
 * memory must outlive the queue. */
void queue_set_metrics(struct queue *q, struct qmetrics *m);

#endif
