/* net_dnsq: the DNS questions of the mail-authentication evaluators
 * (mailauth/dnsq.h) asked of dns/resolver on the smtp process's loop. One
 * net_dnsq runs one batch at a time: every question of it is in flight at
 * once, and each answer comes back, decoded, by the question's index. */
#ifndef TERN_PROC_NET_DNSQ_H
#define TERN_PROC_NET_DNSQ_H

#include <stddef.h>

#include "ev/loop.h"
#include "mailauth/dnsq.h"

struct dns;
struct net_dnsq;

/* Answer i of the batch; a is the caller's for the call only. Called from
 * the loop, never from inside net_dnsq_ask(). */
typedef void (*net_dnsq_cb)(void *arg, size_t i, const struct dnsq_answer *a);

/* dns may be NULL (no resolver): every question is then answered
 * DNSQ_TEMPFAIL. Owned by the caller: net_dnsq_free(). */
struct net_dnsq *net_dnsq_new(struct ev_loop *loop, struct dns *dns);
/* Cancels what is in flight (no more callbacks) and frees. NULL is fine. */
void net_dnsq_free(struct net_dnsq *d);

/* Asks q[0..n) (n <= DNSQ_BATCH_MAX; the questions are copied) after
 * cancelling a batch still in flight. Every question gets exactly one
 * answer through cb unless the batch is cancelled first. */
void net_dnsq_ask(struct net_dnsq *d, const struct dnsq_question *q, size_t n, net_dnsq_cb cb,
                  void *arg);
/* Cancels the batch in flight: no more callbacks for it. */
void net_dnsq_cancel(struct net_dnsq *d);
/* Questions of the batch not answered yet. */
size_t net_dnsq_pending(const struct net_dnsq *d);

#endif
