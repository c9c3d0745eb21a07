/* authcache: credentials verified a short while ago, so that a busy
 * submission server does not spend a yescrypt (tens of milliseconds of
 * CPU) on every login of a client that logs in again and again.
 *
 * An entry is HMAC-SHA256(k, user NUL password NUL hash) under a random
 * key k made for this process, and the time it was added; nothing else.
 * Neither the password nor anything that could be checked offline
 * against a guess leaves the process's memory with the key. Since the
 * stored hash is part of the digest, a changed users file (a new
 * password, a removed hash) misses by itself: no invalidation needed.
 * Bounded: at most `max` entries, the oldest one goes first.
 *
 * This is the one place outside ev/ that includes OpenSSL, for its
 * crypto only (HMAC, random bytes, a constant-time comparison): docs/design.md
 * keeps TLS in ev/.
 *
 * Thread-safe: lookups and adds take a mutex (verification runs on the
 * queue process's worker threads). */
#ifndef TERN_SASL_AUTHCACHE_H
#define TERN_SASL_AUTHCACHE_H

#include <stddef.h>
#include <stdint.h>

/* Defaults: the auth_cache_ttl setting, and a size that holds every user
 * of a large site's busy hour. */
#define AUTHCACHE_TTL_DEFAULT 3600
#define AUTHCACHE_MAX_DEFAULT 4096

struct authcache; /* opaque */

/* Returns a new cache (owned: authcache_free() releases it) keeping at
 * most max entries (at least 1) for ttl_s seconds each; ttl_s 0 makes a
 * cache that never hits. Returns NULL when OpenSSL cannot provide HMAC or
 * random bytes (a start-up failure). */
struct authcache *authcache_new(size_t max, unsigned ttl_s);
/* Wipes the key and the entries and frees the cache; NULL is ignored. */
void authcache_free(struct authcache *c);

/* Was (user, password, hash) verified and added less than ttl seconds
 * before now_ms (milliseconds of clock_mono_ms())? 1 or 0. c may be NULL
 * (no cache: 0). */
int authcache_lookup(struct authcache *c, const char *user, const char *password,
                     const char *hash, uint64_t now_ms);

/* Records that password is right for user with this hash, at now_ms.
 * Adding what is present renews it. c may be NULL (nothing happens). */
void authcache_add(struct authcache *c, const char *user, const char *password,
                   const char *hash, uint64_t now_ms);

/* Entries held (for tests and metrics). */
size_t authcache_count(struct authcache *c);

#endif
