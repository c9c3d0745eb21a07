/* sched.c: a binary min-heap ordered by (when, seq), and the retry policy. */
#include "queue/sched.h"

#include <errno.h>
#include <stdlib.h>

#include "base/clock.h"
#include "base/xmalloc.h"

void sched_init(struct sched *s)
{
    s->v = NULL;
    s->n = s->cap = 0;
    s->seq = 0;
}

void sched_free(struct sched *s)
{
    free(s->v);
    sched_init(s);
}

static int sched_less(const struct sched_ent *a, const struct sched_ent *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

void sched_push(struct sched *s, int64_t when, uint64_t key)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->v = xrealloc(s->v, s->cap * sizeof *s->v);
    }
    struct sched_ent e = {when, ++s->seq, key};
    size_t i = s->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!sched_less(&e, &s->v[parent]))
            break;
        s->v[i] = s->v[parent];
        i = parent;
    }
    s->v[i] = e;
}

int sched_peek(const struct sched *s, struct sched_ent *out)
{
    if (s->n == 0)
        return -ENOENT;
    *out = s->v[0];
    return 0;
}

int sched_pop(struct sched *s, struct sched_ent *out)
{
    if (s->n == 0)
        return -ENOENT;
    *out = s->v[0];
    struct sched_ent last = s->v[--s->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct sched_ent *best = &last;
        if (l < s->n && sched_less(&s->v[l], best)) {
            m = l;
            best = &s->v[l];
        }
        if (r < s->n && sched_less(&s->v[r], best))
            m = r;
        if (m == i)
            break;
        s->v[i] = s->v[m];
        i = m;
    }
    if (s->n > 0)
        s->v[i] = last;
    /* Give memory back after a large backlog drained. */
    if (s->cap > 1024 && s->n < s->cap / 4) {
        s->cap /= 2;
        s->v = xrealloc(s->v, s->cap * sizeof *s->v);
    }
    return 0;
}

size_t sched_len(const struct sched *s)
{
    return s->n;
}

int64_t sched_backoff(unsigned retry_min, unsigned retry_max, unsigned attempts, uint32_t rnd)
{
    int64_t lo = retry_min ? retry_min : 1;
    int64_t hi = retry_max > lo ? retry_max : lo;
    int64_t d = lo;
    for (unsigned i = 1; i < attempts && d < hi; i++)
        d *= 2;
    if (d > hi)
        d = hi;
    return d + (int64_t)(rnd % (uint32_t)(d / 10 + 1));
}

uint32_t sched_jitter(void)
{
    uint64_t x = clock_wall_us();
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 32;
    return (uint32_t)x;
}

void sched_retry(const struct config *cfg, int64_t now, int64_t age, unsigned attempts,
                 int warned, struct sched_retry *out)
{
    out->expire = age >= (int64_t)cfg->queue_lifetime;
    out->next = out->expire ? 0
                            : now + sched_backoff(cfg->retry_min, cfg->retry_max, attempts,
                                                  sched_jitter());
    out->warn = !out->expire && cfg->delay_warning && age >= (int64_t)cfg->delay_warning &&
                !warned;
}
