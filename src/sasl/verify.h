/* verify: who a login is. auth_verify() checks a password against the
 * users table (through the cache of recent successes), and
 * auth_login_owns() says whether an authenticated user may use a given
 * MAIL FROM (the spec's sender_check). No I/O beyond libcrypt's CPU. */
#ifndef TERN_SASL_VERIFY_H
#define TERN_SASL_VERIFY_H

#include "sasl/authcache.h"
#include "conf/config.h"
#include "conf/table.h"
#include "mail/mailaddr.h"

enum auth_result {
    AUTH_OK = 0,       /* 235 2.7.0 */
    AUTH_FAIL = 1,     /* 535 5.7.8: unknown user, wrong password, no hash */
    AUTH_TEMPFAIL = 2, /* 454 4.7.0: could not check now */
};

/* Which envelope senders an authenticated user may use (sender_check). */
enum auth_sender_check {
    AUTH_SENDER_OWN = 0,    /* own addresses, and aliases that expand to them */
    AUTH_SENDER_DOMAIN = 1, /* any address of a domain the user has one in */
    AUTH_SENDER_ANY = 2,    /* anything */
};

/* Checks login ("name" or "name@domain", any case: the key of the users
 * file exactly, looked up lowercased) and password. A login that is not
 * in users (users may be NULL), has no hash or an unusable one costs a
 * dummy verification (passwd_verify_dummy()) and fails the same way as a
 * wrong password, so neither the answer nor its time tells which names
 * exist. Successes are remembered in cache (may be NULL) for its TTL,
 * keyed by the hash too: a new hash in the users file misses. Safe on
 * several threads at once. Returns an auth_result. */
enum auth_result auth_verify(const struct conf_table *users, const char *login,
                             const char *password, struct authcache *cache);

/* May the user who logged in as login (already verified) use sender as
 * MAIL FROM under mode? The null path "<>" always. With AUTH_SENDER_OWN:
 * the login's own address (name@domain; a login without a domain owns
 * name@ every local domain), or an alias whose expansion (config_expand)
 * reaches one of those mailboxes. With AUTH_SENDER_DOMAIN: also any
 * address in a local domain the login has an address in. Returns 1 or 0. */
int auth_login_owns(const struct config *cfg, const char *login, const struct mailaddr *sender,
                    enum auth_sender_check mode);

#endif
