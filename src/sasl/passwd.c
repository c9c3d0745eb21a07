/* passwd.c: crypt(3) hashes through libxcrypt's reentrant calls. */
#include "sasl/passwd.h"

#include <crypt.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/xmalloc.h"

static const char *const passwd_prefixes[] = {"$y$", "$gy$", "$7$", "$6$", "$5$", "$2b$"};

int passwd_hash_accepted(const char *hash)
{
    for (size_t i = 0; i < sizeof passwd_prefixes / sizeof passwd_prefixes[0]; i++)
        if (!strncmp(hash, passwd_prefixes[i], strlen(passwd_prefixes[i])))
            return 1;
    return 0;
}

/* crypt_rn's scratch space (32 KiB: too much for a worker thread's stack
 * to take lightly), zeroed as libxcrypt asks before the first use. */
static struct crypt_data *passwd_scratch_new(void)
{
    return xcalloc(1, sizeof(struct crypt_data));
}

static void passwd_scratch_free(struct crypt_data *cd)
{
    explicit_bzero(cd, sizeof *cd);
    free(cd);
}

char *passwd_hash_new(const char *pw)
{
    char *setting = crypt_gensalt_ra("$y$", 0, NULL, 0);
    if (setting == NULL)
        return NULL;
    struct crypt_data *cd = passwd_scratch_new();
    const char *h = crypt_rn(pw, setting, cd, (int)sizeof *cd);
    char *out = h ? xstrdup(h) : NULL;
    passwd_scratch_free(cd);
    free(setting);
    return out;
}

/* Equal strings of equal length, in a time that depends on the length
 * only (a hash's length is public: its family fixes it). */
static int passwd_equal(const char *a, const char *b)
{
    size_t n = strlen(a);
    if (n != strlen(b))
        return 0;
    volatile unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

int passwd_verify(const char *hash, const char *pw)
{
    if (!passwd_hash_accepted(hash) || strlen(hash) >= CRYPT_OUTPUT_SIZE)
        return PASSWD_EUNUSABLE;
    if (strlen(pw) >= CRYPT_MAX_PASSPHRASE_SIZE) {
        /* Never a match; spend the time a real check would take. */
        passwd_verify_dummy();
        return 0;
    }
    struct crypt_data *cd = passwd_scratch_new();
    errno = 0;
    const char *h = crypt_rn(pw, hash, cd, (int)sizeof *cd);
    int rc;
    if (h == NULL)
        rc = errno == ENOMEM ? PASSWD_ETEMP : PASSWD_EUNUSABLE;
    else
        rc = passwd_equal(h, hash);
    passwd_scratch_free(cd);
    return rc;
}

void passwd_verify_dummy(void)
{
    /* A setting of libxcrypt's default yescrypt cost: the same work as
     * verifying against a hash made by passwd_hash_new(). The salt is
     * fixed (nothing is protected by it), so no randomness is used. */
    static const char salt[16] = "tern-dummy-salt";
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    if (crypt_gensalt_rn("$y$", 0, salt, (int)sizeof salt, setting, (int)sizeof setting) == NULL)
        return;
    struct crypt_data *cd = passwd_scratch_new();
    const char *h = crypt_rn("tern dummy password", setting, cd, (int)sizeof *cd);
    /* Compare as passwd_verify() does, so nothing is left out. */
    if (h)
        (void)passwd_equal(h, setting);
    passwd_scratch_free(cd);
}
