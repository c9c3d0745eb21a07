/* queue_relay.c: remote recipients of a job go to the relay transport
 * (the network process), one request per destination domain with a
 * sealed copy of the content; the answers come back by request id. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "queue/queue_job.h"

unsigned qjob_relay(struct queue *q, struct qmsg *m, struct qjob *j, int64_t now)
{
    unsigned sent = 0;
    int *done = xcalloc(j->nr, sizeof *done);
    for (size_t k = 0; k < j->nr; k++) {
        if (!j->r[k].remote || done[k])
            continue;
        const char *dom = strrchr(j->env.rcpts[j->r[k].idx].addr, '@') + 1;
        struct qrelay *qr = xcalloc(1, sizeof *qr);
        qr->job = j;
        qr->entries = xcalloc(j->nr, sizeof *qr->entries);
        struct envelope e;
        envelope_init(&e);
        envelope_set(&e.from, j->env.from);
        e.body = j->env.body;
        e.smtputf8 = j->env.smtputf8;
        e.ret_hdrs = j->env.ret_hdrs;
        envelope_set(&e.envid, j->env.envid);
        strutil_lcpy(e.qid, j->rec.qid, sizeof e.qid);
        for (size_t l = k; l < j->nr; l++) {
            if (!j->r[l].remote || done[l])
                continue;
            const struct envelope_rcpt *rc = &j->env.rcpts[j->r[l].idx];
            const char *d = strrchr(rc->addr, '@') + 1;
            if (strutil_casecmp(d, dom) != 0)
                continue;
            done[l] = 1;
            qr->entries[qr->n++] = l;
            envelope_add_rcpt(&e, rc->addr, rc->orcpt, rc->notify);
        }
        uint64_t id = ++q->relay_next_id;
        struct queue_relay_req req = {id, dom, &e, j->content_fd, j->rec.content_len};
        int rc = q->relay && j->content_fd >= 0 ? q->relay(q->relay_arg, &req) : -ENOTCONN;
        envelope_clear(&e);
        if (rc == 0) {
            idmap_put(&q->relays, id, qr);
            sent++;
            continue;
        }
        for (size_t i = 0; i < qr->n; i++) {
            struct qjob_rcpt *r = &j->r[qr->entries[i]];
            result_set(&r->res, RESULT_TEMPFAIL, 451, "4.4.0",
                       q->relay ? "cannot reach the relay transport"
                                : "no transport for remote domains");
            r->t1_us = clock_wall_us();
            qjob_apply(q, m, j, qr->entries[i], now);
        }
        free(qr->entries);
        free(qr);
    }
    free(done);
    return sent;
}

void queue_relay_drop_all(struct queue *q)
{
    /* Unanswered recipients stay pending in the spool: retried after the
     * restart. */
    for (size_t i = 0; i < q->relays.cap; i++) {
        if (!q->relays.keys || !q->relays.keys[i])
            continue;
        struct qrelay *qr = q->relays.vals[i];
        if (--qr->job->relays_out == 0)
            qjob_free(qr->job);
        free(qr->entries);
        free(qr);
    }
    idmap_free(&q->relays);
    idmap_init(&q->relays);
}

void queue_set_relay(struct queue *q, queue_relay_fn fn, void *arg)
{
    q->relay = fn;
    q->relay_arg = arg;
}

void queue_relay_done(struct queue *q, uint64_t id, const struct result *res, size_t n,
                      const char *relay, int peer_dsn)
{
    struct qrelay *qr = idmap_get(&q->relays, id);
    if (qr == NULL) {
        log_warn("relay result for unknown request %llu", (unsigned long long)id);
        return;
    }
    idmap_del(&q->relays, id);
    struct qjob *j = qr->job;
    struct qmsg *m = idmap_get(&q->msgs, j->key);
    int64_t now = clock_wall();
    for (size_t i = 0; i < qr->n; i++) {
        struct qjob_rcpt *r = &j->r[qr->entries[i]];
        if (i < n)
            r->res = res[i];
        else
            result_set(&r->res, RESULT_TEMPFAIL, 451, "4.4.0", "no result from the relay");
        strutil_lcpy(r->relay, relay, sizeof r->relay);
        r->peer_dsn = peer_dsn;
        r->t1_us = clock_wall_us();
        if (m)
            qjob_apply(q, m, j, qr->entries[i], now);
    }
    free(qr->entries);
    free(qr);
    if (--j->relays_out == 0 && m) {
        qjob_finalize(q, m, j);
        /* A slot is free: due messages must not wait for the next arrival. */
        queue_dispatch_run(q);
    }
}

