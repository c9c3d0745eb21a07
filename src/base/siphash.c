/* siphash.c: SipHash-2-4 as its paper specifies it (little-endian words,
 * the length in the last byte of the final block). */
#include "base/siphash.h"

#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define SIPHASH_ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))

static void siphash_round(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = SIPHASH_ROTL(v[1], 13) ^ v[0];
    v[0] = SIPHASH_ROTL(v[0], 32);
    v[2] += v[3];
    v[3] = SIPHASH_ROTL(v[3], 16) ^ v[2];
    v[0] += v[3];
    v[3] = SIPHASH_ROTL(v[3], 21) ^ v[0];
    v[2] += v[1];
    v[1] = SIPHASH_ROTL(v[1], 17) ^ v[2];
    v[2] = SIPHASH_ROTL(v[2], 32);
}

static void siphash_block(uint64_t v[4], uint64_t m)
{
    v[3] ^= m;
    siphash_round(v);
    siphash_round(v);
    v[0] ^= m;
}

uint64_t siphash24(const struct siphash_key *k, const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t v[4] = {k->k[0] ^ 0x736f6d6570736575ULL, k->k[1] ^ 0x646f72616e646f6dULL,
                     k->k[0] ^ 0x6c7967656e657261ULL, k->k[1] ^ 0x7465646279746573ULL};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t m = 0;
        for (int j = 7; j >= 0; j--)
            m = (m << 8) | s[i + (size_t)j];
        siphash_block(v, m);
    }
    uint64_t last = (uint64_t)n << 56;
    for (size_t j = 0; i + j < n; j++)
        last |= (uint64_t)s[i + j] << (8 * j);
    siphash_block(v, last);
    v[2] ^= 0xff;
    for (int r = 0; r < 4; r++)
        siphash_round(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

void siphash_key_random(struct siphash_key *k)
{
    if (getrandom(k->k, sizeof k->k, 0) == (ssize_t)sizeof k->k)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    k->k[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid();
    k->k[1] = (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)k;
}
