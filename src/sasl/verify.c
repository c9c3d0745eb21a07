/* verify.c: password checks against the users table, and which senders
 * a login owns. */
#include "sasl/verify.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sasl/passwd.h"
#include "sasl/sasl.h"
#include "base/clock.h"
#include "base/strutil.h"

/* Lowercases login into out (SASL_FIELD_MAX + 1 octets). Returns 0, or
 * -ENAMETOOLONG when it is longer than any name of the users file can be. */
static int auth_login_lower(const char *login, char out[SASL_FIELD_MAX + 1])
{
    if (strutil_lcpy(out, login, SASL_FIELD_MAX + 1) > SASL_FIELD_MAX)
        return -ENAMETOOLONG;
    strutil_lower(out);
    return 0;
}

enum auth_result auth_verify(const struct conf_table *users, const char *login,
                             const char *password, struct authcache *cache)
{
    char name[SASL_FIELD_MAX + 1];
    const struct conf_entry *e = NULL;
    if (auth_login_lower(login, name) == 0 && users)
        e = conf_table_get(users, name);
    const char *hash = e && e->nvals ? e->vals[0] : NULL;
    if (hash == NULL || !passwd_hash_accepted(hash)) {
        passwd_verify_dummy();
        return AUTH_FAIL;
    }
    uint64_t now = clock_mono_ms();
    if (authcache_lookup(cache, name, password, hash, now))
        return AUTH_OK;
    switch (passwd_verify(hash, password)) {
    case 1:
        authcache_add(cache, name, password, hash, now);
        return AUTH_OK;
    case 0:
        return AUTH_FAIL;
    case PASSWD_ETEMP:
        return AUTH_TEMPFAIL;
    default:
        /* A hash libcrypt refuses: as slow as any other failure. */
        passwd_verify_dummy();
        return AUTH_FAIL;
    }
}

/* The login split into its local part and its domain (NULL: every local
 * domain), lowercased. */
struct auth_login {
    char buf[SASL_FIELD_MAX + 1];
    const char *local;
    const char *domain;
};

/* Returns 0, -ENAMETOOLONG (auth_login_lower) or -EINVAL for an empty
 * local part. */
static int auth_login_split(const char *login, struct auth_login *l)
{
    int rc = auth_login_lower(login, l->buf);
    if (rc < 0)
        return rc;
    char *at = strchr(l->buf, '@');
    if (at)
        *at = '\0';
    l->local = l->buf;
    l->domain = at ? at + 1 : NULL;
    return l->local[0] ? 0 : -EINVAL;
}

/* Does the login have an address in domain (a local domain)? */
static int auth_login_in_domain(const struct auth_login *l, const char *domain)
{
    return l->domain == NULL || mailaddr_domain_eq(l->domain, domain);
}

/* Does the alias (or user) local@domain expand to one of l's mailboxes? */
static int auth_alias_reaches(const struct config *cfg, const struct auth_login *l,
                              const char *local, const char *domain)
{
    char addr[MAILADDR_LOCAL_MAX + 1 + MAILADDR_DOMAIN_MAX + 1];
    size_t ll = strutil_lcpy(addr, local, sizeof addr);
    if (ll > MAILADDR_LOCAL_MAX)
        return 0;
    addr[ll] = '@';
    strutil_lcpy(addr + ll + 1, domain, sizeof addr - ll - 1);
    struct conf_mailbox *mb = NULL;
    size_t n = 0;
    int found = 0;
    if (config_expand(cfg, addr, &mb, &n) == 0)
        for (size_t i = 0; i < n && !found; i++)
            found = !strcmp(mb[i].user, l->local) && auth_login_in_domain(l, mb[i].domain);
    free(mb);
    return found;
}

int auth_login_owns(const struct config *cfg, const char *login, const struct mailaddr *sender,
                    enum auth_sender_check mode)
{
    /* RFC 5321 §4.5.5: bounces and other notifications use "<>". */
    if (sender->flags & MAILADDR_F_NULL)
        return 1;
    if (mode == AUTH_SENDER_ANY)
        return 1;
    struct auth_login l;
    if (auth_login_split(login, &l) < 0)
        return 0;
    /* Only addresses in local domains can be anyone's own. */
    if (sender->domain[0] == '\0' || !config_is_local_domain(cfg, sender->domain))
        return 0;
    if (mode == AUTH_SENDER_DOMAIN && auth_login_in_domain(&l, sender->domain))
        return 1;
    if (strutil_casecmp(sender->local, l.local) == 0 &&
        auth_login_in_domain(&l, sender->domain))
        return 1;
    return auth_alias_reaches(cfg, &l, sender->local, sender->domain);
}
