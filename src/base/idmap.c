#include "base/idmap.h"

#include <stdlib.h>

#include "base/log.h"
#include "base/xmalloc.h"

static size_t idmap_slot(uint64_t id, size_t cap)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdULL;
    id ^= id >> 33;
    return (size_t)id & (cap - 1);
}

void idmap_init(struct idmap *m)
{
    m->keys = NULL;
    m->vals = NULL;
    m->cap = 0;
    m->n = 0;
}

void idmap_free(struct idmap *m)
{
    free(m->keys);
    free(m->vals);
    idmap_init(m);
}

static void idmap_grow(struct idmap *m)
{
    struct idmap big;
    big.cap = m->cap ? m->cap * 2 : 64;
    big.n = 0;
    big.keys = xcalloc(big.cap, sizeof *big.keys);
    big.vals = xcalloc(big.cap, sizeof *big.vals);
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i])
            idmap_put(&big, m->keys[i], m->vals[i]);
    free(m->keys);
    free(m->vals);
    *m = big;
}

void idmap_put(struct idmap *m, uint64_t id, void *val)
{
    if (id == 0)
        fatal("idmap_put: id 0");
    if ((m->n + 1) * 4 > m->cap * 3)
        idmap_grow(m);
    size_t i = idmap_slot(id, m->cap);
    while (m->keys[i] && m->keys[i] != id)
        i = (i + 1) & (m->cap - 1);
    if (m->keys[i] == 0)
        m->n++;
    m->keys[i] = id;
    m->vals[i] = val;
}

void *idmap_get(const struct idmap *m, uint64_t id)
{
    if (m->cap == 0 || id == 0)
        return NULL;
    size_t i = idmap_slot(id, m->cap);
    while (m->keys[i]) {
        if (m->keys[i] == id)
            return m->vals[i];
        i = (i + 1) & (m->cap - 1);
    }
    return NULL;
}

void *idmap_del(struct idmap *m, uint64_t id)
{
    if (m->cap == 0 || id == 0)
        return NULL;
    size_t i = idmap_slot(id, m->cap);
    while (m->keys[i] && m->keys[i] != id)
        i = (i + 1) & (m->cap - 1);
    if (m->keys[i] == 0)
        return NULL;
    void *val = m->vals[i];
    m->keys[i] = 0;
    m->vals[i] = NULL;
    m->n--;
    /* Re-insert the rest of the cluster so lookups never stop early. */
    size_t j = (i + 1) & (m->cap - 1);
    while (m->keys[j]) {
        uint64_t k = m->keys[j];
        void *v = m->vals[j];
        m->keys[j] = 0;
        m->vals[j] = NULL;
        m->n--;
        idmap_put(m, k, v);
        j = (j + 1) & (m->cap - 1);
    }
    return val;
}
