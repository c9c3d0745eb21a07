/* queue_apply.c: the results of a delivery job reach the spool. The loop
 * thread alone writes recipient states and the index: each outcome is
 * logged Postfix-style, retried, expired or bounced by the retry policy
 * (sched.h), and the message is rescheduled or removed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "queue/queue_job.h"

/* Postfix's way of printing delays: two significant digits, "0" below
 * 10 ms. */
static void queue_put_delay(struct buf *b, uint64_t us)
{
    double s = (double)us / 1e6;
    if (s < 0.01)
        buf_puts(b, "0");
    else if (s < 10)
        buf_printf(b, "%.2g", s);
    else
        buf_printf(b, "%.0f", s);
}

static void queue_put_addr(struct buf *b, const char *key, const char *addr)
{
    buf_printf(b, "%s=<", key);
    strutil_escape_word(b, addr, strlen(addr));
    buf_puts(b, ">");
}

static void queue_log_result(const struct qjob *j, const struct qjob_rcpt *r,
                             const char *status, const char *note)
{
    const struct envelope_rcpt *rc = &j->env.rcpts[r->idx];
    uint64_t arrival = j->rec.arrival_us;
    struct buf b = BUF_INIT;
    buf_printf(&b, "%s: ", j->rec.qid);
    queue_put_addr(&b, "to", rc->addr);
    if (rc->orcpt) {
        buf_puts(&b, ", ");
        queue_put_addr(&b, "orig_to", rc->orcpt);
    }
    buf_printf(&b, ", relay=%s, delay=", r->relay[0] ? r->relay : "none");
    queue_put_delay(&b, r->t1_us > arrival ? r->t1_us - arrival : 0);
    /* a: before the delivery queue; b: waiting for a thread (and for the
     * recipients before this one); c: connection set-up (none); d: the
     * delivery itself. */
    buf_puts(&b, ", delays=");
    queue_put_delay(&b, j->t_queued_us > arrival ? j->t_queued_us - arrival : 0);
    buf_puts(&b, "/");
    queue_put_delay(&b, r->t0_us > j->t_queued_us ? r->t0_us - j->t_queued_us : 0);
    buf_puts(&b, "/0/");
    queue_put_delay(&b, r->t1_us > r->t0_us ? r->t1_us - r->t0_us : 0);
    buf_printf(&b, ", dsn=%s, status=%s (", r->res.enh, status);
    strutil_escape(&b, r->res.text, strlen(r->res.text));
    if (note)
        buf_printf(&b, "; %s", note);
    buf_puts(&b, ")");
    /* Informational whatever the status, as Postfix's delivery agents log
     * it: a "warning: " before it would hide the line from pflogsumm.
     * The program is the transport, as Postfix's local(8) and smtp(8). */
    log_msg_as(r->remote ? "tern/smtp" : "tern/local", LOGL_INFO, "%s", b.data);
    buf_free(&b);
}

void queue_msg_finish(struct queue *q, struct qmsg *m)
{
    uint64_t key = queue_qid_key(m->rec.qid);
    int rc = store_mark_finished(q->st, &m->rec);
    if (rc < 0)
        log_err("%s: cannot mark finished in the spool: %s", m->rec.qid, strerror(-rc));
    log_info("%s: removed", m->rec.qid);
    idmap_del(&q->msgs, key);
    free(m);
    q->stats.active--;
}

/* Remembers entry k of j in one of its lists (cap: j->nr). */
static void qjob_note(size_t **list, size_t *n, size_t cap, size_t k)
{
    if (*list == NULL)
        *list = xcalloc(cap, sizeof **list);
    (*list)[(*n)++] = k;
}

static void qjob_failed(struct qjob *j, size_t k)
{
    qjob_note(&j->failed, &j->nfailed, j->nr, k);
}

void qjob_apply(struct queue *q, struct qmsg *m, struct qjob *j, size_t k, int64_t now)
{
    const struct config *cfg = q->cfg;
    /* Whole seconds really elapsed: truncating both ends could make a
     * message look up to a second older than it is (a delay warning or an
     * expiry too early). */
    uint64_t now_us = clock_wall_us();
    int64_t age = now_us > j->rec.arrival_us ? (int64_t)((now_us - j->rec.arrival_us) / 1000000u)
                                             : 0;
    const struct qjob_rcpt *r = &j->r[k];
    struct store_slot *s = &j->slots[r->idx];
    s->attempts++;
    if (!r->unknown) {
        s->flags &= ~(unsigned)STORE_SLOT_INFLIGHT; /* the outcome is known */
        s->last_attempt = now;
    }
    /* else the intent stays with its time and pid: the next attempt looks
     * in the Maildir for this one's file before it writes another. */
    /* The last error is kept cut to the slot's size. */
    struct buf err = BUF_INIT;
    buf_printf(&err, "%d %s %s", r->res.code, r->res.enh, r->res.text);
    strutil_lcpy(s->error, err.data, sizeof s->error);
    buf_free(&err);
    switch (r->res.kind) {
    case RESULT_OK:
        s->status = STORE_DONE;
        s->error[0] = '\0';
        q->stats.delivered++;
        queue_log_result(j, r, "sent", NULL);
        if (!r->remote || !r->peer_dsn)
            qjob_note(&j->succeeded, &j->nsucceeded, j->nr, k);
        break;
    case RESULT_TEMPFAIL: {
        struct sched_retry rt;
        sched_retry(cfg, now, age, s->attempts, (s->flags & STORE_SLOT_WARNED) != 0, &rt);
        if (rt.expire) {
            s->status = STORE_FAILED;
            q->stats.bounced++;
            queue_log_result(j, r, "expired", "message older than queue_lifetime");
            /* RFC 3463 X.4.7: delivery time expired; the last error stays
             * in the text for the notification. */
            struct qjob_rcpt *rw = &j->r[k];
            char last[sizeof rw->res.text];
            strutil_lcpy(last, rw->res.text, sizeof last);
            result_set(&rw->res, RESULT_PERMFAIL, rw->res.code, "5.4.7",
                       "delivery time expired; last error: %s", last);
            qjob_failed(j, k);
            break;
        }
        s->next_attempt = rt.next;
        q->stats.deferred++;
        queue_log_result(j, r, "deferred", NULL);
        if (rt.warn) {
            s->flags |= STORE_SLOT_WARNED;
            qjob_note(&j->delayed, &j->ndelayed, j->nr, k);
        }
        break;
    }
    case RESULT_PERMFAIL:
    default:
        s->status = STORE_FAILED;
        q->stats.bounced++;
        queue_log_result(j, r, "bounced", NULL);
        qjob_failed(j, k);
        break;
    }
    if (q->metrics) {
        /* The slot says what the attempt became (an expiry is a bounce). */
        enum result_kind mk = s->status == STORE_DONE     ? RESULT_OK
                              : s->status == STORE_FAILED ? RESULT_PERMFAIL
                                                          : RESULT_TEMPFAIL;
        uint64_t arrival = j->rec.arrival_us;
        qmetrics_outcome(q->metrics, mk, j->env.rcpts[r->idx].addr,
                         r->t1_us > arrival ? r->t1_us - arrival : 0);
    }
    int rc = store_slot_write(q->st, &m->rec, r->idx, s);
    if (rc < 0)
        log_err("%s: cannot record the delivery state: %s", j->rec.qid, strerror(-rc));
}

void qjob_finalize(struct queue *q, struct qmsg *m, struct qjob *j)
{
    if (j->nfailed > 0 && !q->closing)
        qjob_notify(q, j, j->failed, j->nfailed, DSN_ACTION_FAILED);
    if (j->nsucceeded > 0 && !q->closing)
        qjob_notify(q, j, j->succeeded, j->nsucceeded, DSN_ACTION_DELIVERED);
    if (j->ndelayed > 0 && !q->closing)
        qjob_notify(q, j, j->delayed, j->ndelayed, DSN_ACTION_DELAYED);
    q->inflight--;
    m->npending = 0;
    m->next_attempt = INT64_MAX;
    m->flags &= (uint8_t)~QMF_PARKED;
    for (uint32_t i = 0; i < j->rec.nrcpt; i++) {
        if (j->slots[i].status != STORE_PENDING)
            continue;
        m->npending++;
        /* Paused now (not when the job started): a resume during the
         * attempt must not leave the recipient parked. */
        if (queue_paused_addr(q->paused, j->env.rcpts[i].addr)) {
            m->flags |= QMF_PARKED;
            continue;
        }
        if (j->slots[i].next_attempt < m->next_attempt)
            m->next_attempt = j->slots[i].next_attempt;
    }
    if (m->npending == 0) {
        queue_msg_finish(q, m);
    } else if (m->flags & QMF_DELETE) {
        log_info("%s: deleted by the operator", m->rec.qid);
        queue_msg_finish(q, m);
    } else if (m->flags & QMF_HELD) {
        m->state = QM_WAITING; /* out of the heap until released */
        int rc = store_slots_set_held(q->st, &m->rec, j->slots, 1);
        if (rc < 0)
            log_err("%s: cannot record the hold in the spool: %s", m->rec.qid, strerror(-rc));
    } else if (m->next_attempt == INT64_MAX) {
        m->state = QM_WAITING; /* every pending destination paused: resume schedules */
    } else {
        queue_dispatch_schedule(q, m);
    }
    qjob_free(j);
}

void qjob_done(struct queue *q, struct qjob *j)
{
    struct qmsg *m = idmap_get(&q->msgs, j->key);
    if (m == NULL || m->state != QM_RUNNING)
        fatal("%s: delivery result for a message not being delivered", j->rec.qid);
    const struct config *cfg = q->cfg;
    int64_t now = clock_wall();
    if (j->err < 0) {
        /* The record passed its checks at recovery or was just written:
         * this is an I/O problem that may pass. */
        q->inflight--;
        log_err("%s: cannot read the queue file: %s; will retry", j->rec.qid,
                strerror(-j->err));
        m->next_attempt = now + sched_backoff(cfg->retry_min, cfg->retry_max, 1, sched_jitter());
        queue_dispatch_schedule(q, m);
        qjob_free(j);
        return;
    }
    for (size_t k = 0; k < j->nr; k++)
        if (!j->r[k].remote)
            qjob_apply(q, m, j, k, now);
    if (j->nremote > 0 && !q->closing) {
        j->relays_out = qjob_relay(q, m, j, now);
        if (j->relays_out > 0)
            return; /* queue_relay_done() finishes the job */
    }
    qjob_finalize(q, m, j);
}

