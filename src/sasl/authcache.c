/* authcache.c: a bounded set of HMAC digests of verified credentials.
 *
 * The entries sit in a ring in the order they were added (the next slot
 * to write holds the oldest), and a chained index over the digest finds
 * one in O(1). The digest is keyed and uniformly spread, so its first
 * octets are the index's hash and nobody outside can aim at a bucket. */
#include "sasl/authcache.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/xmalloc.h"

#define AUTHCACHE_DIGEST 32 /* SHA-256 */
#define AUTHCACHE_KEY 32
#define AUTHCACHE_NONE (-1)

struct authcache_entry {
    unsigned char digest[AUTHCACHE_DIGEST];
    uint64_t added_ms;
    int32_t next; /* next in the bucket's chain, or AUTHCACHE_NONE */
    int used;
};

struct authcache {
    pthread_mutex_t mu;
    EVP_MAC *mac; /* owned; an EVP_MAC may be shared between threads */
    unsigned char key[AUTHCACHE_KEY];
    uint64_t ttl_ms;
    struct authcache_entry *ring; /* owned, max entries */
    size_t max;
    size_t pos; /* the next slot to write: the oldest entry */
    size_t n;
    int32_t *buckets; /* owned, nbuckets heads */
    size_t nbuckets;  /* a power of two >= max */
};

struct authcache *authcache_new(size_t max, unsigned ttl_s)
{
    if (max == 0)
        max = 1;
    if (max > INT32_MAX / 2)
        max = INT32_MAX / 2;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
    if (mac == NULL)
        return NULL;
    struct authcache *c = xcalloc(1, sizeof *c);
    c->mac = mac;
    if (RAND_bytes(c->key, sizeof c->key) != 1) {
        authcache_free(c);
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    c->ttl_ms = (uint64_t)ttl_s * 1000;
    c->max = max;
    c->ring = xcalloc(max, sizeof *c->ring);
    c->nbuckets = 1;
    while (c->nbuckets < max)
        c->nbuckets <<= 1;
    c->buckets = xmalloc(c->nbuckets * sizeof *c->buckets);
    for (size_t i = 0; i < c->nbuckets; i++)
        c->buckets[i] = AUTHCACHE_NONE;
    return c;
}

void authcache_free(struct authcache *c)
{
    if (c == NULL)
        return;
    if (c->ring) {
        pthread_mutex_destroy(&c->mu);
        OPENSSL_cleanse(c->ring, c->max * sizeof *c->ring);
    }
    OPENSSL_cleanse(c->key, sizeof c->key);
    EVP_MAC_free(c->mac);
    free(c->ring);
    free(c->buckets);
    free(c);
}

/* HMAC-SHA256(key, user NUL password NUL hash). A context per call (an
 * EVP_MAC_CTX is not for sharing between threads). Returns 0, or -EIO
 * when OpenSSL fails (it sets no errno). */
static int authcache_digest(const struct authcache *c, const char *user, const char *password,
                            const char *hash, unsigned char out[AUTHCACHE_DIGEST])
{
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(c->mac);
    if (ctx == NULL)
        return -EIO;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    static const unsigned char nul = 0;
    size_t outlen = 0;
    int ok = EVP_MAC_init(ctx, c->key, sizeof c->key, params) == 1 &&
             EVP_MAC_update(ctx, (const unsigned char *)user, strlen(user)) == 1 &&
             EVP_MAC_update(ctx, &nul, 1) == 1 &&
             EVP_MAC_update(ctx, (const unsigned char *)password, strlen(password)) == 1 &&
             EVP_MAC_update(ctx, &nul, 1) == 1 &&
             EVP_MAC_update(ctx, (const unsigned char *)hash, strlen(hash)) == 1 &&
             EVP_MAC_final(ctx, out, &outlen, AUTHCACHE_DIGEST) == 1 &&
             outlen == AUTHCACHE_DIGEST;
    EVP_MAC_CTX_free(ctx);
    return ok ? 0 : -EIO;
}

static size_t authcache_bucket(const struct authcache *c, const unsigned char *d)
{
    uint64_t h;
    memcpy(&h, d, sizeof h);
    return (size_t)h & (c->nbuckets - 1);
}

/* The slot holding digest d, or AUTHCACHE_NONE. Under the mutex. */
static int32_t authcache_find(const struct authcache *c, const unsigned char *d)
{
    for (int32_t i = c->buckets[authcache_bucket(c, d)]; i != AUTHCACHE_NONE;
         i = c->ring[i].next)
        if (CRYPTO_memcmp(c->ring[i].digest, d, AUTHCACHE_DIGEST) == 0)
            return i;
    return AUTHCACHE_NONE;
}

/* Takes slot i out of its chain and empties it. Under the mutex. */
static void authcache_remove(struct authcache *c, int32_t i)
{
    struct authcache_entry *e = &c->ring[i];
    int32_t *link = &c->buckets[authcache_bucket(c, e->digest)];
    while (*link != i)
        link = &c->ring[*link].next;
    *link = e->next;
    OPENSSL_cleanse(e, sizeof *e);
    e->next = AUTHCACHE_NONE;
    c->n--;
}

int authcache_lookup(struct authcache *c, const char *user, const char *password,
                     const char *hash, uint64_t now_ms)
{
    unsigned char d[AUTHCACHE_DIGEST];
    if (c == NULL || c->ttl_ms == 0 || authcache_digest(c, user, password, hash, d) < 0)
        return 0;
    int hit = 0;
    pthread_mutex_lock(&c->mu);
    int32_t i = authcache_find(c, d);
    if (i != AUTHCACHE_NONE) {
        /* A clock that went backwards (it should not) counts as expired. */
        uint64_t added = c->ring[i].added_ms;
        hit = now_ms >= added && now_ms - added < c->ttl_ms;
        if (!hit)
            authcache_remove(c, i);
    }
    pthread_mutex_unlock(&c->mu);
    OPENSSL_cleanse(d, sizeof d);
    return hit;
}

void authcache_add(struct authcache *c, const char *user, const char *password,
                   const char *hash, uint64_t now_ms)
{
    unsigned char d[AUTHCACHE_DIGEST];
    if (c == NULL || c->ttl_ms == 0 || authcache_digest(c, user, password, hash, d) < 0)
        return;
    pthread_mutex_lock(&c->mu);
    /* Present already (two threads verified the same login at once):
     * renew it as a new entry, so the ring stays in order of adding. */
    int32_t old = authcache_find(c, d);
    if (old != AUTHCACHE_NONE)
        authcache_remove(c, old);
    int32_t i = (int32_t)c->pos;
    if (c->ring[i].used)
        authcache_remove(c, i); /* the oldest goes */
    struct authcache_entry *e = &c->ring[i];
    memcpy(e->digest, d, sizeof d);
    e->added_ms = now_ms;
    e->used = 1;
    size_t b = authcache_bucket(c, d);
    e->next = c->buckets[b];
    c->buckets[b] = i;
    c->n++;
    c->pos = (c->pos + 1) % c->max;
    pthread_mutex_unlock(&c->mu);
    OPENSSL_cleanse(d, sizeof d);
}

size_t authcache_count(struct authcache *c)
{
    if (c == NULL)
        return 0;
    pthread_mutex_lock(&c->mu);
    size_t n = c->n;
    pthread_mutex_unlock(&c->mu);
    return n;
}
