/* throttle.c: per-key failure counts in a sliding window of slots, a
 * chained hash index over the keys and a list in order of the last
 * failure (its head is the stalest key, the one to forget first). */
#include "sasl/throttle.h"

#include <stdlib.h>
#include <string.h>

#include "base/siphash.h"
#include "base/xmalloc.h"

/* THROTTLE_SLOTS slots of the window plus the current, partly elapsed
 * one: a failure counts for at least a whole window. */
#define THROTTLE_RING (THROTTLE_SLOTS + 1)

struct throttle_entry {
    char *key;                        /* owned */
    struct throttle_entry *hnext;     /* bucket chain */
    struct throttle_entry *prev, *next; /* by last failure, oldest first */
    uint64_t slot;                    /* slot of the last failure */
    uint16_t counts[THROTTLE_RING];   /* failures per slot, by slot % RING */
};

struct throttle {
    unsigned max;
    uint64_t slot_ms;
    size_t keys_max;
    struct siphash_key seed;
    struct throttle_entry **buckets; /* owned array of chains (entries owned) */
    size_t nbuckets;                 /* a power of two */
    size_t n;
    struct throttle_entry *oldest, *newest;
};

/* Keyed: user names come from the network, and a known hash would let a
 * client pile them all into one chain. */
static uint64_t throttle_hash(const struct throttle *t, const char *s)
{
    return siphash24(&t->seed, s, strlen(s));
}

struct throttle *throttle_new(unsigned max, unsigned window_s, size_t keys_max)
{
    struct throttle *t = xcalloc(1, sizeof *t);
    t->max = max ? max : 1;
    uint64_t window_ms = (uint64_t)(window_s ? window_s : 1) * 1000;
    t->slot_ms = (window_ms + THROTTLE_SLOTS - 1) / THROTTLE_SLOTS;
    t->keys_max = keys_max ? keys_max : 1;
    siphash_key_random(&t->seed);
    t->nbuckets = 64;
    t->buckets = xcalloc(t->nbuckets, sizeof *t->buckets);
    return t;
}

void throttle_free(struct throttle *t)
{
    if (t == NULL)
        return;
    for (struct throttle_entry *e = t->oldest, *next; e; e = next) {
        next = e->next;
        free(e->key);
        free(e);
    }
    free(t->buckets);
    free(t);
}

size_t throttle_count(const struct throttle *t)
{
    return t->n;
}

static struct throttle_entry **throttle_slot_of(struct throttle *t, const char *key)
{
    struct throttle_entry **p = &t->buckets[throttle_hash(t, key) & (t->nbuckets - 1)];
    while (*p && strcmp((*p)->key, key) != 0)
        p = &(*p)->hnext;
    return p;
}

/* Keys are cut to THROTTLE_KEY_MAX octets; `tmp` holds the cut copy. */
static const char *throttle_key(const char *key, char tmp[THROTTLE_KEY_MAX + 1])
{
    if (strlen(key) <= THROTTLE_KEY_MAX)
        return key;
    memcpy(tmp, key, THROTTLE_KEY_MAX);
    tmp[THROTTLE_KEY_MAX] = '\0';
    return tmp;
}

static struct throttle_entry *throttle_get(struct throttle *t, const char *key)
{
    char tmp[THROTTLE_KEY_MAX + 1];
    return *throttle_slot_of(t, throttle_key(key, tmp));
}

static void throttle_unlink(struct throttle *t, struct throttle_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        t->oldest = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        t->newest = e->prev;
    e->prev = e->next = NULL;
}

static void throttle_append(struct throttle *t, struct throttle_entry *e)
{
    e->prev = t->newest;
    e->next = NULL;
    if (t->newest)
        t->newest->next = e;
    else
        t->oldest = e;
    t->newest = e;
}

static void throttle_delete(struct throttle *t, struct throttle_entry *e)
{
    struct throttle_entry **p = throttle_slot_of(t, e->key);
    *p = e->hnext;
    throttle_unlink(t, e);
    free(e->key);
    free(e);
    t->n--;
}

/* Failures of e in the slots that still count at `cur`. */
static unsigned throttle_sum(const struct throttle_entry *e, uint64_t cur)
{
    if (cur < e->slot)
        cur = e->slot; /* the clock went back: count what is there */
    if (cur - e->slot > THROTTLE_SLOTS)
        return 0;
    unsigned sum = 0;
    uint64_t first = cur >= THROTTLE_SLOTS ? cur - THROTTLE_SLOTS : 0;
    for (uint64_t s = first; s <= e->slot; s++)
        sum += e->counts[s % THROTTLE_RING];
    return sum;
}

/* Doubles the index when it holds more keys than chains. */
static void throttle_grow(struct throttle *t)
{
    size_t nb = t->nbuckets * 2;
    struct throttle_entry **b = xcalloc(nb, sizeof *b);
    for (size_t i = 0; i < t->nbuckets; i++) {
        for (struct throttle_entry *e = t->buckets[i], *next; e; e = next) {
            next = e->hnext;
            size_t j = throttle_hash(t, e->key) & (nb - 1);
            e->hnext = b[j];
            b[j] = e;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = nb;
}

void throttle_fail(struct throttle *t, const char *key, uint64_t now_ms)
{
    uint64_t cur = now_ms / t->slot_ms;
    /* Keys whose failures have all aged out go first: they are at the
     * head, in order of their last failure. */
    while (t->oldest && throttle_sum(t->oldest, cur) == 0)
        throttle_delete(t, t->oldest);
    char tmp[THROTTLE_KEY_MAX + 1];
    key = throttle_key(key, tmp);
    struct throttle_entry **p = throttle_slot_of(t, key);
    struct throttle_entry *e = *p;
    if (e == NULL) {
        if (t->n >= t->keys_max) {
            throttle_delete(t, t->oldest); /* the stalest key is forgotten */
            p = throttle_slot_of(t, key);
        }
        e = xcalloc(1, sizeof *e);
        e->key = xstrdup(key);
        e->slot = cur;
        *p = e;
        t->n++;
        if (t->n > t->nbuckets)
            throttle_grow(t);
    } else {
        throttle_unlink(t, e);
        if (cur > e->slot) {
            /* Empty the slots passed since the last failure. */
            uint64_t gap = cur - e->slot;
            for (uint64_t s = 1; s <= gap && s <= THROTTLE_RING; s++)
                e->counts[(e->slot + s) % THROTTLE_RING] = 0;
            e->slot = cur;
        }
    }
    throttle_append(t, e);
    uint16_t *c = &e->counts[e->slot % THROTTLE_RING];
    if (*c < UINT16_MAX)
        (*c)++;
}

unsigned throttle_failures(struct throttle *t, const char *key, uint64_t now_ms)
{
    struct throttle_entry *e = throttle_get(t, key);
    return e ? throttle_sum(e, now_ms / t->slot_ms) : 0;
}

unsigned throttle_delay_ms(struct throttle *t, const char *key, uint64_t now_ms, unsigned max_ms)
{
    unsigned n = throttle_failures(t, key, now_ms);
    if (n == 0 || max_ms == 0)
        return 0;
    /* Stops doubling at the cap, so it cannot overflow. */
    unsigned delay = THROTTLE_DELAY_FIRST_MS;
    for (unsigned i = 1; i < n && delay < max_ms; i++)
        delay *= 2;
    return delay < max_ms ? delay : max_ms;
}

int throttle_blocked(struct throttle *t, const char *key, uint64_t now_ms)
{
    return throttle_failures(t, key, now_ms) >= t->max;
}

void throttle_success(struct throttle *t, const char *key)
{
    struct throttle_entry *e = throttle_get(t, key);
    if (e)
        throttle_delete(t, e);
}
