/* dmarc_priv.h: what the parts of `tern dmarc report` share: the
 * command (dmarc.c: the day's rows, the reports, the old files), the
 * §7.1 confirmations (dmarc_dns.c) and the messages (dmarc_send.c). */
#ifndef TERN_CMD_DMARC_PRIV_H
#define TERN_CMD_DMARC_PRIV_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "conf/config.h"
#include "mailauth/dmarc_rua.h"

/* One question for dmarc_dns_confirm: a policy domain and a destination
 * domain outside its Organizational Domain. */
struct dmarc_confirm {
    char policy_domain[DNS_NAME_MAX];
    char dest_domain[DNS_NAME_MAX];
    bool confirmed; /* the answer: set by dmarc_dns_confirm */
};

/* Asks the §7.1 question of each c[0..n) (RFC 7489) with the resolver of
 * cfg (`resolver`, else resolv.conf), at most DNSQ_BATCH_MAX at a time,
 * and sets each one's `confirmed`. A resolver that cannot start, a DNS
 * failure or no answer in time leaves it false: not confirmed, not sent. */
void dmarc_dns_confirm(const struct config *cfg, struct dmarc_confirm *c, size_t n);

/* One report ready to go: its gzip file and what the message says. */
struct dmarc_report_file {
    const char *policy_domain;
    const char *receiver;  /* the submitter's domain: cfg's hostname */
    const char *report_id; /* msg-id text without the brackets */
    char name[512];        /* receiver!policy-domain!begin!end.xml.gz */
    struct buf gz;         /* the gzip file */
    long long begin, end;
    unsigned long long messages;
};

/* Compresses xml[0..n) into f->gz (gzip, RFC 1952) and names it
 * (§7.2.1.1). 0, -EIO when zlib fails, -ENAMETOOLONG. */
int dmarc_send_pack(struct dmarc_report_file *f, const char *xml, size_t n);

/* The message (RFC 5322, MIME) that carries f to `to`, from `from`
 * (§7.2.1.1: the Subject, the application/gzip part), CRLF line ends. */
void dmarc_send_message(const struct dmarc_report_file *f, const char *from, const char *to,
                        struct buf *out);

#endif
