/* queue_metrics.c: the queue's counters (queue_metrics.h) and its size as
 * read from the in-memory index at scrape time. */
#include "queue/queue_metrics.h"

#include <string.h>

#include "base/strutil.h"
#include "queue/queue_priv.h"

const double qmetrics_bounds[QMETRICS_BUCKETS] = {
    0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600,
};

_Static_assert(QMETRICS_SLOTS >= 2 * QMETRICS_DOMAINS_MAX, "the domain table must stay sparse");
_Static_assert((QMETRICS_SLOTS & (QMETRICS_SLOTS - 1)) == 0, "slots: a power of two");

void qmetrics_received(struct qmetrics *m, uint32_t nrcpt)
{
    m->received++;
    m->received_rcpts += nrcpt;
}

/* The domain of addr as a label value: lowercased, cut to the table's
 * size, and only printable ASCII or well-formed UTF-8 (the exposition
 * format is UTF-8; anything else becomes '?'). */
static void qmetrics_domain_of(const char *addr, char *out, size_t outsize)
{
    const char *at = strrchr(addr, '@');
    const char *d = at && at[1] ? at + 1 : "none";
    size_t n = strlen(d), o = 0;
    for (size_t i = 0; i < n && o + 1 < outsize;) {
        unsigned char c = (unsigned char)d[i];
        if (c >= 0x20 && c < 0x7f) {
            out[o++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            i++;
            continue;
        }
        size_t l = strutil_utf8_len((const unsigned char *)d + i, n - i);
        if (c >= 0x80 && l > 1 && o + l < outsize) {
            memcpy(out + o, d + i, l);
            o += l;
            i += l;
        } else {
            out[o++] = '?';
            i += l ? l : 1;
        }
    }
    out[o] = '\0';
}

/* FNV-1a: the table's keys are short and few. */
static uint32_t qmetrics_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* The entry for domain, made if the table has room; NULL: "other". */
static struct qmetrics_domain *qmetrics_domain(struct qmetrics *m, const char *domain)
{
    /* The overflow series is named "other": a domain of that name joins
     * it rather than making a second series with the same labels. */
    if (strcmp(domain, "other") == 0)
        return NULL;
    uint32_t i = qmetrics_hash(domain) & (QMETRICS_SLOTS - 1);
    for (unsigned probes = 0; probes < QMETRICS_SLOTS; probes++) {
        struct qmetrics_domain *e = &m->domains[i];
        if (e->name[0] == '\0') {
            if (m->ndomains >= QMETRICS_DOMAINS_MAX)
                return NULL;
            strutil_lcpy(e->name, domain, sizeof e->name);
            m->ndomains++;
            return e;
        }
        if (strcmp(e->name, domain) == 0)
            return e;
        i = (i + 1) & (QMETRICS_SLOTS - 1);
    }
    return NULL;
}

void qmetrics_outcome(struct qmetrics *m, enum result_kind kind, const char *addr,
                      uint64_t latency_us)
{
    if (kind == RESULT_OK) {
        m->delivered++;
        double s = (double)latency_us / 1e6;
        size_t b = 0;
        while (b < QMETRICS_BUCKETS && s > qmetrics_bounds[b])
            b++;
        m->latency_bucket[b]++;
        m->latency_sum_us += latency_us;
        m->latency_count++;
        return;
    }
    char domain[QMETRICS_DOMAIN_LEN + 1];
    qmetrics_domain_of(addr, domain, sizeof domain);
    struct qmetrics_domain *e = qmetrics_domain(m, domain);
    if (kind == RESULT_TEMPFAIL) {
        m->deferred++;
        if (e)
            e->deferred++;
        else
            m->other_deferred++;
    } else {
        m->bounced++;
        if (e)
            e->bounced++;
        else
            m->other_bounced++;
    }
}

void queue_get_depth(const struct queue *q, struct queue_depth *d)
{
    memset(d, 0, sizeof *d);
    for (size_t i = 0; i < q->msgs.cap; i++) {
        if (q->msgs.keys[i] == 0)
            continue;
        const struct qmsg *m = q->msgs.vals[i];
        if (m->state == QM_SYNCING)
            continue; /* not accepted yet: its batch is still being synced */
        d->messages++;
        d->recipients += m->npending;
        if (d->oldest_arrival_us == 0 || m->rec.arrival_us < d->oldest_arrival_us)
            d->oldest_arrival_us = m->rec.arrival_us;
    }
}

void queue_set_metrics(struct queue *q, struct qmetrics *m)
{
    q->metrics = m;
}
