/* sched: when each message is tried next. A min-heap of (time, key) for
 * messages with pending recipients, and the retry policy (backoff,
 * expiry, delay warnings). Memory is 24
 * bytes a waiting message; nothing of the message itself is kept. Loop
 * thread only. */
#ifndef TERN_QUEUE_SCHED_H
#define TERN_QUEUE_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "conf/config.h"

struct sched_ent {
    int64_t when; /* wall seconds; 0 = at once */
    uint64_t seq; /* insertion order: equal times run first in, first out */
    uint64_t key; /* the message */
};

struct sched {
    struct sched_ent *v; /* owned heap array */
    size_t n, cap;
    uint64_t seq;
};

void sched_init(struct sched *s);
void sched_free(struct sched *s);
void sched_push(struct sched *s, int64_t when, uint64_t key);
/* The earliest entry, without removing it; 0, or -ENOENT if empty. */
int sched_peek(const struct sched *s, struct sched_ent *out);
/* Removes and returns the earliest entry; 0, or -ENOENT if empty. */
int sched_pop(struct sched *s, struct sched_ent *out);
size_t sched_len(const struct sched *s);

/* Seconds to wait after the `attempts`-th failed attempt (1 = the first):
 * retry_min doubled per attempt, capped at retry_max, plus up to 10%
 * taken from `rnd` so messages deferred together do not retry in
 * lockstep. Never below 1 second. */
int64_t sched_backoff(unsigned retry_min, unsigned retry_max, unsigned attempts, uint32_t rnd);

/* A pseudo-random number for sched_backoff's spread (not for secrets). */
uint32_t sched_jitter(void);

/* What becomes of a recipient after its `attempts`-th temporary failure
 * at `now`, its message `age` seconds old (cfg's retry_min, retry_max,
 * queue_lifetime, delay_warning). */
struct sched_retry {
    int expire;   /* older than queue_lifetime: it fails for good (5.4.7) */
    int64_t next; /* otherwise the next attempt, wall seconds */
    int warn;     /* past delay_warning and not warned before: tell the sender */
};
void sched_retry(const struct config *cfg, int64_t now, int64_t age, unsigned attempts,
                 int warned, struct sched_retry *out);

#endif
