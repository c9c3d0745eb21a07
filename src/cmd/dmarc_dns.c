/* dmarc_dns.c: the external-destination confirmations of `tern dmarc
 * report` (RFC 7489 §7.1), asked on a loop of our own through the same
 * resolver code the daemon uses (dns/resolver, proc/net_dnsq). */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/xmalloc.h"
#include "cmd/dmarc_priv.h"
#include "dns/resolver.h"
#include "ev/loop.h"
#include "proc/net_dnsq.h"

/* A batch gets this long beyond the resolver's own per-query timeout;
 * what is unanswered then is not confirmed. */
#define DMARC_DNS_BATCH_MS (DNS_TIMEOUT_MS + 5000)

struct dmarc_dns {
    struct ev_loop *loop;
    struct net_dnsq *dq;
    struct dmarc_confirm *c;
    size_t *todo;        /* indexes into c of the questions DNS can hold */
    size_t n;            /* in todo */
    size_t start, count; /* the batch in flight: todo[start..start+count) */
    ev_timer_id timer;
};

static void dmarc_dns_next(struct dmarc_dns *d);

static void dmarc_dns_on_answer(void *arg, size_t i, const struct dnsq_answer *a)
{
    struct dmarc_dns *d = arg;
    struct dmarc_confirm *c = &d->c[d->todo[d->start + i]];
    c->confirmed = dmarc_rua_confirmed(c->dest_domain, a);
    if (net_dnsq_pending(d->dq) == 0) {
        ev_timer_cancel(d->loop, d->timer);
        d->timer = 0;
        d->start += d->count;
        dmarc_dns_next(d);
    }
}

static void dmarc_dns_on_timeout(struct ev_loop *loop, void *arg)
{
    struct dmarc_dns *d = arg;
    d->timer = 0;
    net_dnsq_cancel(d->dq); /* the rest of the batch stays unconfirmed */
    log_warn("dmarc: no DNS answer in time for %zu confirmation(s)", d->count);
    d->start += d->count;
    dmarc_dns_next(d);
}

/* Asks the next batch, or stops the loop when all are answered. */
static void dmarc_dns_next(struct dmarc_dns *d)
{
    if (d->start >= d->n) {
        ev_loop_stop(d->loop);
        return;
    }
    struct dnsq_question q[DNSQ_BATCH_MAX];
    d->count = 0;
    while (d->count < DNSQ_BATCH_MAX && d->start + d->count < d->n) {
        struct dmarc_confirm *c = &d->c[d->todo[d->start + d->count]];
        (void)dmarc_rua_question(c->policy_domain, c->dest_domain, &q[d->count]); /* todo's */
        d->count++;
    }
    d->timer = ev_timer_add(d->loop, DMARC_DNS_BATCH_MS, dmarc_dns_on_timeout, d);
    net_dnsq_ask(d->dq, q, d->count, dmarc_dns_on_answer, d);
}

void dmarc_dns_confirm(const struct config *cfg, struct dmarc_confirm *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        c[i].confirmed = false;
    if (n == 0)
        return;
    struct dmarc_dns d = {.c = c};
    d.todo = xcalloc(n, sizeof *d.todo);
    for (size_t i = 0; i < n; i++) {
        struct dnsq_question q;
        /* A name too long for DNS cannot be confirmed. */
        if (dmarc_rua_question(c[i].policy_domain, c[i].dest_domain, &q) == 0)
            d.todo[d.n++] = i;
    }
    if (d.n == 0) {
        free(d.todo);
        return;
    }
    d.loop = ev_loop_new();
    struct buf err = BUF_INIT;
    struct dns *dns = dns_new(d.loop, cfg->resolver, &err);
    if (dns == NULL) {
        log_err("dmarc: no DNS resolver (%s): external report destinations are not confirmed",
                err.data ? err.data : "");
    } else {
        d.dq = net_dnsq_new(d.loop, dns);
        dmarc_dns_next(&d);
        (void)ev_loop_run(d.loop);
        net_dnsq_free(d.dq);
        dns_free(dns);
    }
    buf_free(&err);
    ev_loop_free(d.loop);
    free(d.todo);
}
