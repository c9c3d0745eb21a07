/* libFuzzer target: mailauth/dmarc_from. The input is read as a whole
 * header section (dmarc_from_parse_header) and as one From field body
 * (dmarc_from_add_field), then as that body twice (two From fields).
 * Checks: the return value agrees with the status; OK means at least one
 * address and one domain; every domain is a name DNS can ask, lower case,
 * distinct from the others, at most DMARC_FROM_MAX; a second field never
 * makes a bad status good. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailauth/dmarc_from.h"
#include "mailauth/dnsq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct dmarc_from *f, int rc)
{
    if ((rc == 0) != (f->status == DMARC_FROM_OK) || (rc != 0 && rc != -EINVAL))
        abort();
    if (f->status > DMARC_FROM_TOOMANY || f->ndomains > DMARC_FROM_MAX)
        abort();
    if (f->status == DMARC_FROM_OK && (f->naddrs == 0 || f->ndomains == 0 || f->nfields == 0))
        abort();
    if (f->status == DMARC_FROM_ABSENT && f->nfields != 0)
        abort();
    for (size_t i = 0; i < f->ndomains; i++) {
        const char *d = f->domains[i];
        size_t n = strnlen(d, DNS_NAME_MAX);
        if (n == DNS_NAME_MAX || !dnsq_name_ok(d, n))
            abort();
        for (size_t k = 0; k < n; k++)
            if (d[k] >= 'A' && d[k] <= 'Z')
                abort();
        for (size_t j = 0; j < i; j++)
            if (strcmp(f->domains[j], d) == 0)
                abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 100000)
        return 0;
    const char *v = (const char *)data;
    struct dmarc_from f;
    check(&f, dmarc_from_parse_header(&f, v, size));
    dmarc_from_init(&f);
    int rc = dmarc_from_add_field(&f, v, size);
    check(&f, rc);
    enum dmarc_from_status first = f.status;
    rc = dmarc_from_add_field(&f, v, size);
    check(&f, rc);
    if (first != DMARC_FROM_OK && first != DMARC_FROM_EMPTY && f.status == DMARC_FROM_OK)
        abort();
    if (first == DMARC_FROM_OK && f.status == DMARC_FROM_OK && f.ndomains == 0)
        abort();
    return 0;
}
