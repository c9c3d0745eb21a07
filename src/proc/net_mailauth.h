/* net_mailauth: mail authentication of the inbound sessions of the smtp
 * process. It runs the pure evaluators of mailauth/ on the loop, with
 * their DNS questions asked of dns/resolver (net_dnsq), and answers the
 * session (smtp_session_spf_done, smtp_session_verdict):
 *
 *   at MAIL      SPF of the HELO name and of the MAIL FROM identity
 *                (RFC 7208 §2.3, §2.4); policy spf_reject_fail (550
 *                5.7.23) and spf_defer_temperror (451 4.7.24), RFC 7372
 *   the content  the From fields (RFC 5322.From, for DMARC) as they pass;
 *                DKIM (RFC 6376): the signatures' keys are asked for as
 *                soon as the header section is in, the body hashed as it
 *                streams; ARC (RFC 8617): the chain's keys likewise, once
 *                DKIM's are in
 *   at the end   DKIM's and ARC's last answers, then DMARC (RFC 7489) with
 *                dmarc_policy: enforce refuses a
 *                p=reject failure (550 5.7.1) and files a p=quarantine
 *                one as junk; then one Authentication-Results field
 *                (RFC 8601) with the authserv-id, above the message: spf,
 *                dkim, dmarc, arc (smtp.remote-ip, header.oldest-pass)
 *
 * Each stage is bounded by mail_auth_time_limit (DKIM's and ARC's from the
 * end of the content, ARC's from its start when it begins after that):
 * what has no answer by then is temperror (ARC: fail). Only transactions
 * the session judges come here (neither authenticated nor relay_networks
 * nor local). */
#ifndef TERN_PROC_NET_MAILAUTH_H
#define TERN_PROC_NET_MAILAUTH_H

#include <stddef.h>
#include <stdint.h>

#include "conf/config.h"
#include "ev/loop.h"
#include "smtp/smtp_session.h"

struct dns;
struct net_mailauth; /* the checks of one session */

/* For session s from client address ip (copied). cfg and dns (which may
 * be NULL: every lookup is then temperror) must outlive it. */
struct net_mailauth *net_mailauth_new(struct ev_loop *loop, const struct config *cfg,
                                      struct dns *dns, struct smtp_session *s, const char *ip);
/* Cancels what is in flight; no answer reaches the session after it. */
void net_mailauth_free(struct net_mailauth *m);

/* The svc callbacks of the session, forwarded (see smtp_session.h). */
void net_mailauth_start(struct net_mailauth *m, uint32_t txn, const char *helo, const char *from);
void net_mailauth_content(struct net_mailauth *m, const char *p, size_t n);
void net_mailauth_verdict(struct net_mailauth *m, uint32_t txn);

#endif
