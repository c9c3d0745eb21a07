/* throttle: failed AUTH attempts, counted per key (a client IP, or a
 * lowercased user name), for the brute-force brake of the spec: every
 * failure is answered after a growing delay, and a key with too many
 * recent failures is refused outright (421 4.7.0 and close).
 *
 * Failures are counted in a sliding window made of THROTTLE_SLOTS slots
 * of window/THROTTLE_SLOTS each: a failure is remembered for at least
 * the window and at most one slot longer, never less. Memory is bounded:
 * each key costs a fixed few dozen octets plus its name, and beyond `keys_max`
 * keys the stalest one (longest without a failure) is forgotten.
 *
 * Not thread-safe: one throttle belongs to one event loop. The clock is
 * the caller's (clock_mono_ms() in the server, anything in tests). */
#ifndef TERN_SASL_THROTTLE_H
#define TERN_SASL_THROTTLE_H

#include <stddef.h>
#include <stdint.h>

#define THROTTLE_SLOTS 8
#define THROTTLE_KEYS_DEFAULT 65536
/* The delay after the first failure, doubled for each further one up to
 * the caller's cap (auth_failure_delay_max): 1 s, 2 s, 4 s, 8 s, 8 s ... */
#define THROTTLE_DELAY_FIRST_MS 1000
/* Longest key kept (an IPv6 address is 45; a user name 255 + '@' + a
 * domain would not be a valid login anyway): longer keys are cut. */
#define THROTTLE_KEY_MAX 320

struct throttle; /* opaque */

/* Returns a new throttle (owned; throttle_free() releases it) that
 * blocks a key with `max` failures (at least 1) within window_s seconds
 * (at least 1), remembering at most keys_max keys (at least 1). */
struct throttle *throttle_new(unsigned max, unsigned window_s, size_t keys_max);
void throttle_free(struct throttle *t);

/* Records one failure for key at now_ms. */
void throttle_fail(struct throttle *t, const char *key, uint64_t now_ms);

/* How long to wait before answering the failure just recorded, in
 * milliseconds: 0 without a failure in the window, else 1000 << (n - 1)
 * for n failures in the window, never more than max_ms (0: no delay). */
unsigned throttle_delay_ms(struct throttle *t, const char *key, uint64_t now_ms, unsigned max_ms);

/* Has key had `max` failures or more within the window? 1 or 0. */
int throttle_blocked(struct throttle *t, const char *key, uint64_t now_ms);

/* Forgets key's failures (after a successful AUTH). */
void throttle_success(struct throttle *t, const char *key);

/* Failures of key within the window at now_ms (tests, logs). */
unsigned throttle_failures(struct throttle *t, const char *key, uint64_t now_ms);

/* Keys held (tests, metrics). */
size_t throttle_count(const struct throttle *t);

#endif
