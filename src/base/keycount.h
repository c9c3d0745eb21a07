/* keycount: how many of each key there are, e.g. open sessions per
 * client address, so that a per-client limit costs one lookup per
 * connection instead of a walk over every session (a flood of 10,000
 * connections made that walk the smtp process's main cost).
 *
 * Open addressing with linear probing over a keyed hash (base/siphash):
 * the keys come from the network. A key goes away when its count drops to
 * 0, so memory follows the keys in use; add, remove and get are O(1) on
 * average. Not thread-safe. */
#ifndef TERN_BASE_KEYCOUNT_H
#define TERN_BASE_KEYCOUNT_H

#include <stddef.h>
#include <stdint.h>

#include "base/siphash.h"

struct keycount_slot {
    char *key; /* owned; NULL marks an empty slot */
    uint64_t hash;
    unsigned count;
};

struct keycount {
    struct keycount_slot *slots; /* owned array */
    size_t cap;                  /* 0 or a power of two */
    size_t n;                    /* keys held */
    struct siphash_key seed;
};

void keycount_init(struct keycount *m);
void keycount_free(struct keycount *m);
/* Counts one more of key (copied); returns the new count. */
unsigned keycount_add(struct keycount *m, const char *key);
/* Counts one fewer of key; returns the new count (0: the key is gone;
 * also 0 for a key that was not there). */
unsigned keycount_remove(struct keycount *m, const char *key);
/* How many of key there are (0 if none). */
unsigned keycount_get(const struct keycount *m, const char *key);
/* Distinct keys held. */
size_t keycount_size(const struct keycount *m);

#endif
