/* queue_relay.c: remote recipients of a job go to the relay transport
 * (the network process), one request per destination domain with a
 * sealed copy of the content; the answers come back by request id. Every
 * request has a deadline: a lost or unreadable answer defers its
 * recipients instead of holding the message's delivery slot. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "queue/queue_job.h"

/* The network process answers within relay_time_limit (it cuts the
 * transfer then); the queue waits as long again, at most a minute more,
 * before it stops waiting. */
#define QUEUE_RELAY_GRACE_MAX 60

/* Seconds until the queue gives request of job j up. */
static unsigned queue_relay_wait(const struct qjob *j)
{
    unsigned limit = j->cfg->relay_time_limit;
    return limit + (limit < QUEUE_RELAY_GRACE_MAX ? limit : QUEUE_RELAY_GRACE_MAX);
}

static void queue_relay_on_deadline(struct ev_loop *loop, void *arg);

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
        e.ret_full = j->env.ret_full;
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
            qr->q = q;
            qr->id = id;
            qr->deadline = ev_timer_add(q->loop, (uint64_t)queue_relay_wait(j) * 1000,
                                        queue_relay_on_deadline, qr);
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

/* Takes request qr out of the table and frees it. */
static void queue_relay_free(struct queue *q, struct qrelay *qr)
{
    idmap_del(&q->relays, qr->id);
    ev_timer_cancel(q->loop, qr->deadline);
    free(qr->entries);
    free(qr);
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
        ev_timer_cancel(q->loop, qr->deadline);
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

/* Applies the answer for request qr (res[i] for its i-th recipient; the
 * ones without an answer get `missing`) and frees it; the job finishes
 * with its last request. */
static void queue_relay_answer(struct queue *q, struct qrelay *qr, const struct result *res,
                               size_t n, const char *relay, int peer_dsn,
                               const struct result *missing)
{
    struct qjob *j = qr->job;
    struct qmsg *m = idmap_get(&q->msgs, j->key);
    if (m == NULL || m->state != QM_RUNNING)
        fatal("%s: relay result for a message not being delivered", j->rec.qid);
    int64_t now = clock_wall();
    for (size_t i = 0; i < qr->n; i++) {
        struct qjob_rcpt *r = &j->r[qr->entries[i]];
        r->res = i < n ? res[i] : *missing;
        strutil_lcpy(r->relay, relay, sizeof r->relay);
        r->peer_dsn = peer_dsn;
        r->t1_us = clock_wall_us();
        qjob_apply(q, m, j, qr->entries[i], now);
    }
    queue_relay_free(q, qr);
    if (--j->relays_out == 0) {
        qjob_finalize(q, m, j);
        /* A slot is free: due messages must not wait for the next arrival. */
        queue_dispatch_run(q);
    }
}

void queue_relay_done(struct queue *q, uint64_t id, const struct result *res, size_t n,
                      const char *relay, int peer_dsn)
{
    struct qrelay *qr = idmap_get(&q->relays, id);
    if (qr == NULL) {
        /* Too late (its deadline deferred it) or never asked. */
        log_warn("relay result for unknown request %llu", (unsigned long long)id);
        return;
    }
    struct result missing;
    result_set(&missing, RESULT_TEMPFAIL, 451, "4.4.0", "no result from the relay");
    queue_relay_answer(q, qr, res, n, relay, peer_dsn, &missing);
}

static void queue_relay_on_deadline(struct ev_loop *loop, void *arg)
{
    struct qrelay *qr = arg;
    struct queue *q = qr->q;
    qr->deadline = 0;
    unsigned wait = queue_relay_wait(qr->job);
    log_warn("%s: no answer from the relay transport within %us; deferred", qr->job->rec.qid,
             wait);
    struct result missing;
    result_set(&missing, RESULT_TEMPFAIL, 451, "4.4.2",
               "no answer from the relay transport within %us", wait);
    queue_relay_answer(q, qr, NULL, 0, "none", 0, &missing);
}
