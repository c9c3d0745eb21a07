/* dmarc_rua.c: report destinations and their confirmation (dmarc_rua.h). */
#include "mailauth/dmarc_rua.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/strutil.h"
#include "mailauth/psl.h"

static int dmarc_rua_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -EINVAL;
}

int dmarc_rua_mailto(const struct dmarc_uri *u, struct dmarc_rua_dest *out)
{
    memset(out, 0, sizeof *out);
    const char *s = u->uri;
    if (strncasecmp(s, "mailto:", 7) != 0)
        return -EPROTONOSUPPORT;
    s += 7;
    /* RFC 6068 §2: to = addr-spec *("," addr-spec), then "?" hfields. */
    size_t n = strcspn(s, "?");
    char addr[DMARC_URI_MAX];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            int hi = i + 2 < n ? dmarc_rua_hex(s[i + 1]) : -EINVAL;
            int lo = i + 2 < n ? dmarc_rua_hex(s[i + 2]) : -EINVAL;
            if (hi < 0 || lo < 0)
                return -EINVAL;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        if (c < 0x21 || c >= 0x7f || c == ',')
            return -EINVAL; /* controls, %00, non-ASCII; a list is not one mailbox */
        addr[k++] = (char)c; /* k < n < DMARC_URI_MAX */
    }
    addr[k] = '\0';
    struct mailaddr a;
    if (mailaddr_parse_mailbox(addr, k, 0, &a) != MAILADDR_OK ||
        (a.flags & (MAILADDR_F_NULL | MAILADDR_F_POSTMASTER)) || a.domain[0] == '[' ||
        !dnsq_name_ok(a.domain, strlen(a.domain)))
        return -EINVAL;
    strutil_lcpy(out->addr, a.text, sizeof out->addr);
    strutil_lcpy(out->domain, a.domain, sizeof out->domain);
    strutil_lower(out->domain);
    out->max_bytes = u->max_bytes;
    return 0;
}

bool dmarc_rua_external(const char *policy_domain, const char *dest_domain)
{
    return !psl_org_same(policy_domain, dest_domain);
}

int dmarc_rua_question(const char *policy_domain, const char *dest_domain,
                       struct dnsq_question *q)
{
    int n = snprintf(q->name, sizeof q->name, "%s._report._dmarc.%s", policy_domain,
                     dest_domain);
    if (n < 0 || (size_t)n >= sizeof q->name || !dnsq_name_ok(q->name, (size_t)n))
        return -ENAMETOOLONG;
    strutil_lower(q->name);
    q->type = DNSQ_TXT;
    return 0;
}

bool dmarc_rua_confirmed(const char *dest_domain, const struct dnsq_answer *a)
{
    if (a->status != DNSQ_OK)
        return false;
    bool found = false;
    for (size_t i = 0; i < a->count; i++) {
        /* RFC 7489 §6.6.3 reads a TXT record as its strings joined. */
        char text[4096];
        size_t n = 0;
        bool fits = true;
        for (size_t j = 0; j < a->rrs[i].u.txt.n; j++) {
            const struct dnsq_str *s = &a->rrs[i].u.txt.strs[j];
            if (n + s->len >= sizeof text) {
                fits = false;
                break;
            }
            memcpy(text + n, s->p, s->len);
            n += s->len;
        }
        if (!fits || !dmarc_record_is_dmarc(text, n))
            continue;
        found = true;
        struct dmarc_record r;
        if (dmarc_record_parse(&r, text, n, NULL) < 0)
            continue; /* "v=DMARC1" alone: a confirmation without a rua */
        for (size_t k = 0; k < r.nrua; k++) {
            struct dmarc_rua_dest d;
            if (dmarc_rua_mailto(&r.rua[k], &d) < 0 || !psl_org_same(d.domain, dest_domain))
                return false;
        }
    }
    return found;
}
