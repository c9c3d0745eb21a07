/* idmap: a hash map from 64-bit ids to pointers (not owned). Asynchronous
 * answers find their session by id, never by a stored pointer: a late
 * answer for a session that is gone finds nothing. */
#ifndef TERN_BASE_IDMAP_H
#define TERN_BASE_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct idmap {
    uint64_t *keys; /* 0 marks an empty slot: ids are never 0 */
    void **vals;
    size_t cap;     /* power of two */
    size_t n;
};

void idmap_init(struct idmap *m);
void idmap_free(struct idmap *m);
/* Inserts or replaces; id must not be 0. */
void idmap_put(struct idmap *m, uint64_t id, void *val);
void *idmap_get(const struct idmap *m, uint64_t id);
/* Removes id if present; returns its value or NULL. */
void *idmap_del(struct idmap *m, uint64_t id);

#endif
