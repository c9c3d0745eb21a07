/* keycount.c: a table of at most 3/4 load; removal shifts the rest of a
 * probe run back (Knuth's algorithm R), so there are no tombstones and a
 * lookup stops at the first empty slot. */
#include "base/keycount.h"

#include <stdlib.h>
#include <string.h>

#include "base/xmalloc.h"

void keycount_init(struct keycount *m)
{
    m->slots = NULL;
    m->cap = 0;
    m->n = 0;
    siphash_key_random(&m->seed);
}

void keycount_free(struct keycount *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].key);
    free(m->slots);
    m->slots = NULL;
    m->cap = 0;
    m->n = 0;
}

static uint64_t keycount_hash(const struct keycount *m, const char *key)
{
    return siphash24(&m->seed, key, strlen(key));
}

/* The slot holding key, or the empty slot where it would go. */
static size_t keycount_find(const struct keycount *m, const char *key, uint64_t h)
{
    size_t mask = m->cap - 1;
    size_t i = (size_t)h & mask;
    while (m->slots[i].key && (m->slots[i].hash != h || strcmp(m->slots[i].key, key)))
        i = (i + 1) & mask;
    return i;
}

static void keycount_grow(struct keycount *m)
{
    size_t old = m->cap;
    struct keycount_slot *slots = m->slots;
    m->cap = old ? old * 2 : 64;
    m->slots = xcalloc(m->cap, sizeof *m->slots);
    for (size_t i = 0; i < old; i++) {
        if (slots[i].key == NULL)
            continue;
        size_t j = keycount_find(m, slots[i].key, slots[i].hash);
        m->slots[j] = slots[i];
    }
    free(slots);
}

unsigned keycount_add(struct keycount *m, const char *key)
{
    if ((m->n + 1) * 4 > m->cap * 3)
        keycount_grow(m);
    uint64_t h = keycount_hash(m, key);
    size_t i = keycount_find(m, key, h);
    struct keycount_slot *s = &m->slots[i];
    if (s->key == NULL) {
        s->key = xstrdup(key);
        s->hash = h;
        s->count = 0;
        m->n++;
    }
    return ++s->count;
}

unsigned keycount_get(const struct keycount *m, const char *key)
{
    if (m->cap == 0)
        return 0;
    size_t i = keycount_find(m, key, keycount_hash(m, key));
    return m->slots[i].key ? m->slots[i].count : 0;
}

unsigned keycount_remove(struct keycount *m, const char *key)
{
    if (m->cap == 0)
        return 0;
    size_t mask = m->cap - 1;
    size_t i = keycount_find(m, key, keycount_hash(m, key));
    struct keycount_slot *s = &m->slots[i];
    if (s->key == NULL)
        return 0;
    if (--s->count > 0)
        return s->count;
    free(s->key);
    s->key = NULL;
    m->n--;
    /* Entries after the hole whose home is at or before it move into it,
     * so that every entry stays reachable from its home without a gap. */
    for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        size_t home = (size_t)m->slots[j].hash & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->slots[i] = m->slots[j];
            m->slots[j].key = NULL;
            i = j;
        }
    }
    return 0;
}

size_t keycount_size(const struct keycount *m)
{
    return m->n;
}
