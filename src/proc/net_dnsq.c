/* net_dnsq.c: see net_dnsq.h. */
#include "proc/net_dnsq.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xmalloc.h"
#include "dns/mx_parse.h"
#include "dns/resolver.h"

struct net_dnsq_slot {
    struct net_dnsq *d;
    size_t i;
    struct dns_query *q; /* in flight, or NULL */
    int pending;         /* no answer handed out yet */
    int failed;          /* could not be asked: answered TEMPFAIL by the timer */
};

struct net_dnsq {
    struct ev_loop *loop;
    struct dns *dns; /* not owned, may be NULL */
    struct dnsq_question q[DNSQ_BATCH_MAX];
    struct net_dnsq_slot slots[DNSQ_BATCH_MAX];
    size_t n, pending;
    net_dnsq_cb cb;
    void *arg;
    ev_timer_id fail_timer; /* answers the questions that could not be asked */
};

struct net_dnsq *net_dnsq_new(struct ev_loop *loop, struct dns *dns)
{
    struct net_dnsq *d = xcalloc(1, sizeof *d);
    d->loop = loop;
    d->dns = dns;
    return d;
}

void net_dnsq_cancel(struct net_dnsq *d)
{
    for (size_t i = 0; i < d->n; i++) {
        dns_cancel(d->slots[i].q);
        d->slots[i].q = NULL;
        d->slots[i].pending = 0;
    }
    ev_timer_cancel(d->loop, d->fail_timer);
    d->fail_timer = 0;
    d->n = d->pending = 0;
}

void net_dnsq_free(struct net_dnsq *d)
{
    if (d == NULL)
        return;
    net_dnsq_cancel(d);
    free(d);
}

size_t net_dnsq_pending(const struct net_dnsq *d)
{
    return d->pending;
}

/* Hands answer a to slot s's question. The callback may start the next
 * batch, which reuses the slots: nothing of s is touched after it. */
static void net_dnsq_deliver(struct net_dnsq_slot *s, const struct dnsq_answer *a)
{
    struct net_dnsq *d = s->d;
    s->pending = 0;
    s->q = NULL;
    d->pending--;
    d->cb(d->arg, s->i, a);
}

static void net_dnsq_on_fail(struct ev_loop *loop, void *arg)
{
    struct net_dnsq *d = arg;
    d->fail_timer = 0;
    struct dnsq_answer a = {.status = DNSQ_TEMPFAIL};
    /* Look again after each: an answer may end the batch and start the
     * next one in the same slots. */
    for (size_t i = 0; i < d->n; i++) {
        struct net_dnsq_slot *s = &d->slots[i];
        if (s->pending && s->failed) {
            s->failed = 0;
            net_dnsq_deliver(s, &a);
            i = (size_t)-1;
        }
    }
}

/* The records of a dns/resolver answer as dnsq records. Strings, names
 * and the arrays live in *mem (owned by the caller, freed after use). */
static void net_dnsq_decode(enum dnsq_type type, const struct dns_answer *da,
                            struct dnsq_answer *a, void **mem)
{
    size_t n = da->count, total = 0;
    for (size_t i = 0; i < n; i++)
        total += (size_t)da->rdlen[i];
    /* One block: the records, then room for every TXT string (each takes
     * at least its length octet) or name. */
    size_t strs = type == DNSQ_TXT ? total : 0;
    size_t names = type == DNSQ_MX || type == DNSQ_PTR ? n : 0;
    char *blk = xcalloc(1, n * sizeof(struct dnsq_rr) + strs * sizeof(struct dnsq_str) +
                               names * (MX_NAME_MAX + 1) + 1);
    *mem = blk;
    struct dnsq_rr *rr = (struct dnsq_rr *)blk;
    struct dnsq_str *sp = (struct dnsq_str *)(blk + n * sizeof *rr);
    char *np = (char *)(sp + strs);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = (const unsigned char *)da->rdata[i];
        size_t len = (size_t)da->rdlen[i];
        struct dnsq_rr *r = &rr[k];
        switch (type) {
        case DNSQ_TXT: {
            int c = dnsq_txt_parse(p, len, sp, len);
            if (c < 0)
                continue; /* malformed: as if absent */
            r->u.txt.strs = sp;
            r->u.txt.n = (size_t)c;
            sp += c;
            break;
        }
        case DNSQ_A:
        case DNSQ_AAAA:
            if (len != (type == DNSQ_A ? 4u : 16u))
                continue;
            memcpy(r->u.addr, p, len);
            break;
        case DNSQ_MX: {
            struct mx_rr m;
            if (mx_parse_mx_rdata(p, len, &m) < 0)
                continue;
            memcpy(np, m.name, strlen(m.name) + 1);
            r->u.mx.pref = m.pref;
            r->u.mx.name = np;
            np += MX_NAME_MAX + 1;
            break;
        }
        case DNSQ_PTR: {
            size_t used;
            if (mx_parse_name(p, len, &used, np, MX_NAME_MAX + 1) < 0 || used != len)
                continue;
            r->u.ptr = np;
            np += MX_NAME_MAX + 1;
            break;
        }
        default:
            continue;
        }
        k++;
    }
    a->rrs = rr;
    a->count = k;
    /* Records of the type that all failed to decode: the name exists. */
    a->status = k > 0 ? DNSQ_OK : DNSQ_NODATA;
}

static void net_dnsq_on_answer(void *arg, const struct dns_answer *da)
{
    struct net_dnsq_slot *s = arg;
    struct net_dnsq *d = s->d;
    struct dnsq_answer a = {0};
    void *mem = NULL;
    switch (da->status) {
    case DNS_OK:
        net_dnsq_decode(d->q[s->i].type, da, &a, &mem);
        break;
    case DNS_NODATA:
        a.status = DNSQ_NODATA;
        break;
    case DNS_NXDOMAIN:
        a.status = DNSQ_NXDOMAIN;
        break;
    default:
        a.status = DNSQ_TEMPFAIL;
        break;
    }
    net_dnsq_deliver(s, &a);
    free(mem);
}

/* A question's name in the presentation format libunbound parses: dnsq
 * names have no escapes, so every octet but a letter, digit, '-', '_' or
 * the label dots is written \DDD (an SPF macro can put a space, '\' or
 * ';' into a label). Returns 0, or -ENAMETOOLONG. */
static int net_dnsq_name(const char *in, char *out, size_t outsize)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.';
        if (o + 5 >= outsize)
            return -ENAMETOOLONG;
        if (plain)
            out[o++] = (char)*p;
        else
            o += (size_t)snprintf(out + o, outsize - o, "\\%03u", *p);
    }
    out[o] = '\0';
    return 0;
}

void net_dnsq_ask(struct net_dnsq *d, const struct dnsq_question *q, size_t n, net_dnsq_cb cb,
                  void *arg)
{
    net_dnsq_cancel(d);
    if (n > DNSQ_BATCH_MAX)
        n = DNSQ_BATCH_MAX;
    memcpy(d->q, q, n * sizeof *q);
    d->n = d->pending = n;
    d->cb = cb;
    d->arg = arg;
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        struct net_dnsq_slot *s = &d->slots[i];
        *s = (struct net_dnsq_slot){.d = d, .i = i, .pending = 1};
        char name[4 * DNS_NAME_MAX + 8];
        if (d->dns && net_dnsq_name(q[i].name, name, sizeof name) == 0)
            s->q = dns_query(d->dns, name, (int)q[i].type, net_dnsq_on_answer, s);
        if (s->q == NULL) {
            s->failed = 1;
            failed = 1;
        }
    }
    /* Never an answer from inside the ask: the caller is mid-step. */
    if (failed)
        d->fail_timer = ev_timer_add(d->loop, 0, net_dnsq_on_fail, d);
}
