/* passwd: password hashes of the users file, crypt(3) style, through
 * libxcrypt's libcrypt. New hashes are yescrypt ("$y$", the default of
 * Debian's passwd since 11). Verification accepts the strong families
 * only: yescrypt ("$y$"), gost-yescrypt ("$gy$"), scrypt ("$7$"),
 * SHA-512-crypt ("$6$"), SHA-256-crypt ("$5$") and bcrypt ("$2b$"); DES,
 * MD5-crypt and the like are refused as unusable, never verified.
 *
 * Thread-safe: every function may run on several threads at once (the
 * queue process verifies on worker threads). A yescrypt verify costs
 * tens of milliseconds of CPU on purpose; see sasl/authcache.h. */
#ifndef TERN_SASL_PASSWD_H
#define TERN_SASL_PASSWD_H

/* What passwd_verify() returns besides 1 (match) and 0 (no match). */
#define PASSWD_EUNUSABLE (-1) /* not a hash of an accepted family, malformed */
#define PASSWD_ETEMP (-2)     /* out of memory inside libcrypt: try again */

/* Returns a new yescrypt hash of pw with a fresh random salt and
 * libxcrypt's default cost (owned: the caller frees it), or NULL when
 * no randomness or memory could be had. */
char *passwd_hash_new(const char *pw);

/* Checks pw against hash. Returns 1 when they match, 0 when they do not
 * (also for a password longer than libcrypt takes), PASSWD_EUNUSABLE for
 * a hash that is not of an accepted family or that libcrypt refuses,
 * PASSWD_ETEMP when libcrypt ran out of memory. The final comparison
 * takes the same time wherever the first difference is. */
int passwd_verify(const char *hash, const char *pw);

/* Spends about the time of passwd_verify() against a default yescrypt
 * hash, and returns nothing: called for an unknown user or one without
 * a hash, so the time of an answer does not tell which names exist. */
void passwd_verify_dummy(void);

/* Does hash start with one of the accepted prefixes? (The users file
 * holds it; tern check-config and tern user may want to say so.) */
int passwd_hash_accepted(const char *hash);

#endif
