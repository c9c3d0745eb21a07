/* dmarc_rua: where the aggregate reports of a policy domain may go (RFC
 * 7489 §6.2, §7.1). Pure, like the rest of mailauth/: the §7.1 DNS
 * question is made here and its answer judged here; whoever sends the
 * reports asks it (cmd/dmarc.c over dns/resolver).
 *
 * - A rua URI is used only when it is a mailto: URI (RFC 6068) naming
 *   one mailbox: the part before any '?' (the hfields, which a report
 *   must not take from a DNS record: a Subject or Bcc of the sender's
 *   choosing), %-decoded, read by mail/mailaddr without UTF-8 (the
 *   report is sent from an ASCII address). Any other scheme is not
 *   supported (-EPROTONOSUPPORT).
 * - External destinations (§7.1): when the mailbox's domain and the
 *   policy domain have different Organizational Domains (psl.h), the
 *   mailbox's domain must say it takes the policy domain's reports: TXT
 *   at <policy-domain>._report._dmarc.<mailbox domain> holding a record
 *   that starts with v=DMARC1. No such record, or any DNS failure:
 *   the URI is not used. A rua in the confirming record that points at
 *   yet another Organizational Domain makes it no confirmation (§7.1: no
 *   report to either); one that stays inside it is not followed (the
 *   report goes to the URI the policy domain published). */
#ifndef TERN_MAILAUTH_DMARC_RUA_H
#define TERN_MAILAUTH_DMARC_RUA_H

#include <stdbool.h>
#include <stdint.h>

#include "base/sizes.h"
#include "mail/mailaddr.h"
#include "mailauth/dmarc_record.h"
#include "mailauth/dnsq.h"

/* A report destination, read from a rua URI. */
struct dmarc_rua_dest {
    char addr[MAILADDR_PATH_MAX + 1]; /* the mailbox as mailaddr writes it */
    char domain[DNS_NAME_MAX];        /* its domain, lower case */
    uint64_t max_bytes;               /* the URI's size limit, 0 = none */
};

/* Reads u into *out. 0, -EPROTONOSUPPORT for a URI that is not mailto:,
 * -EINVAL for a mailto: without exactly one valid mailbox (a %00 or
 * other control octet, a list, an address literal, the null path). */
int dmarc_rua_mailto(const struct dmarc_uri *u, struct dmarc_rua_dest *out);

/* Whether reports for policy_domain sent to dest_domain need the §7.1
 * confirmation: their Organizational Domains differ (or cannot be
 * told, which needs it too). */
bool dmarc_rua_external(const char *policy_domain, const char *dest_domain);

/* The confirmation's question into *q: TXT
 * <policy_domain>._report._dmarc.<dest_domain>. 0, or -ENAMETOOLONG when
 * the name does not fit DNS. */
int dmarc_rua_question(const char *policy_domain, const char *dest_domain,
                       struct dnsq_question *q);

/* Whether answer a to that question confirms dest_domain as a
 * destination (see above). A DNS failure (status other than OK) never
 * does. */
bool dmarc_rua_confirmed(const char *dest_domain, const struct dnsq_answer *a);

#endif
