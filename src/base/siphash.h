/* siphash: SipHash-2-4 (Aumasson and Bernstein, 2012), the keyed hash of
 * tables whose keys come from the network (client addresses, user names):
 * without the random key nobody can choose keys that all land in one
 * chain and turn every lookup into a walk. */
#ifndef TERN_BASE_SIPHASH_H
#define TERN_BASE_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

struct siphash_key {
    uint64_t k[2];
};

/* Fills k from getrandom(); without entropy yet (very early boot) from the
 * clock and the process id: weaker, but never a fixed key. */
void siphash_key_random(struct siphash_key *k);

/* SipHash-2-4 of n octets at p. */
uint64_t siphash24(const struct siphash_key *k, const void *p, size_t n);

#endif
