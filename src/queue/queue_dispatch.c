/* queue_dispatch.c: due messages leave the scheduler's heap as delivery
 * jobs while there are free slots (max_inflight); one timer waits for the
 * earliest entry; finished jobs come back from the pool here. */
#include <stdint.h>

#include "base/clock.h"
#include "queue/queue_job.h"

static void queue_on_run_timer(struct ev_loop *loop, void *arg)
{
    struct queue *q = arg;
    q->run_timer = 0;
    queue_dispatch_run(q);
}

/* Arms the timer for the earliest heap entry when threads are free to
 * take it (when they are not, the next result dispatches). */
static void queue_dispatch_arm(struct queue *q)
{
    struct sched_ent e;
    if (q->closing || q->inflight >= q->max_inflight || sched_peek(&q->sched, &e) < 0)
        return;
    if (q->run_timer && q->run_timer_when <= e.when)
        return;
    ev_timer_cancel(q->loop, q->run_timer);
    uint64_t now_ms = clock_wall_us() / 1000u;
    uint64_t due_ms = e.when > 0 ? (uint64_t)e.when * 1000u : 0;
    q->run_timer = ev_timer_add(q->loop, due_ms > now_ms ? due_ms - now_ms : 0,
                                queue_on_run_timer, q);
    q->run_timer_when = e.when;
}

void queue_dispatch_schedule(struct queue *q, struct qmsg *m)
{
    m->state = QM_WAITING;
    sched_push(&q->sched, m->next_attempt, queue_qid_key(m->rec.qid));
    queue_dispatch_arm(q);
}

void queue_dispatch_run(struct queue *q)
{
    if (q->closing)
        return;
    int64_t now = clock_wall();
    struct sched_ent e;
    struct pool_job *head = NULL, **tail = &head;
    while (q->inflight < q->max_inflight && sched_peek(&q->sched, &e) == 0 && e.when <= now) {
        sched_pop(&q->sched, &e);
        struct qmsg *m = idmap_get(&q->msgs, e.key);
        /* Entries of messages that left or were rescheduled are stale. */
        if (m == NULL || m->state != QM_WAITING || m->next_attempt != e.when ||
            (m->flags & QMF_HELD))
            continue;
        struct qjob *j = qjob_new(q, m, e.key);
        j->pj.next = NULL;
        *tail = &j->pj;
        tail = &j->pj.next;
    }
    if (head)
        pool_submit(q->pool, head);
    queue_dispatch_arm(q);
}

void queue_dispatch_on_pool(struct ev_loop *loop, int fd, unsigned events, void *arg)
{
    struct queue *q = arg;
    struct pool_job *pj;
    while ((pj = pool_reap(q->pool)) != NULL)
        qjob_done(q, (struct qjob *)pj);
    queue_dispatch_run(q);
}

void queue_dispatch_stop(struct queue *q)
{
    struct pool_job *left = pool_stop(q->pool);
    while (left) {
        struct qjob *j = (struct qjob *)left;
        left = left->next;
        struct qmsg *m = idmap_get(&q->msgs, j->key);
        if (m)
            m->state = QM_WAITING;
        q->inflight--;
        qjob_free(j);
    }
    /* Results of finished deliveries are recorded, or they would be
     * repeated after the restart. */
    struct pool_job *pj;
    while ((pj = pool_reap(q->pool)) != NULL)
        qjob_done(q, (struct qjob *)pj);
}
