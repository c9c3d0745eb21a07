/* psl.c: Organizational Domains through libpsl (psl.h). */
#include "mailauth/psl.h"

#include <errno.h>
#include <libpsl.h>
#include <pthread.h>
#include <string.h>

#include "base/strutil.h"
#include "mailauth/dnsq.h"

static pthread_once_t psl_org_once = PTHREAD_ONCE_INIT;
static psl_ctx_t *psl_org_ctx;

static void psl_org_load(void)
{
    psl_org_ctx = psl_latest(NULL);
}

int psl_org_init(void)
{
    pthread_once(&psl_org_once, psl_org_load);
    return psl_org_ctx ? 0 : -ENOMEM;
}

const char *psl_org_source(void)
{
    if (psl_org_init() < 0)
        return "none";
    /* psl_latest() counts no rules of a DAFSA file; the built-in list
     * (the libpsl package's copy of the list) does. */
    return psl_suffix_count(psl_org_ctx) < 0 ? psl_dist_filename() : "built-in";
}

int psl_org_domain(const char *domain, char out[DNS_NAME_MAX])
{
    size_t n = strlen(domain);
    if (n > 0 && domain[n - 1] == '.')
        n--;
    if (!dnsq_name_ok(domain, n))
        return -EINVAL;
    int rc = psl_org_init();
    if (rc < 0)
        return rc;
    char low[DNS_NAME_MAX];
    memcpy(low, domain, n);
    low[n] = '\0';
    strutil_lower(low);
    /* libpsl wants lower case; its answer is a suffix of what it was
     * given, or NULL when the name is a public suffix itself. */
    const char *reg = psl_registrable_domain(psl_org_ctx, low);
    const char *from = low;
    if (reg != NULL && reg >= low && reg < low + n)
        from = reg;
    memcpy(out, from, strlen(from) + 1);
    return 0;
}

bool psl_org_same(const char *a, const char *b)
{
    char oa[DNS_NAME_MAX], ob[DNS_NAME_MAX];
    return psl_org_domain(a, oa) == 0 && psl_org_domain(b, ob) == 0 && strcmp(oa, ob) == 0;
}
