/* queue_job.h: one delivery attempt of one message, shared by the
 * queue's delivery side: queue_dispatch.c (due messages become jobs),
 * queue_job.c (a job in a delivery thread), queue_apply.c (its results
 * reach the spool), queue_relay.c (remote recipients go to the relay
 * transport and come back) and queue_notify.c (what the sender is told).
 * Not for use outside src/queue/. */
#ifndef TERN_QUEUE_QUEUE_JOB_H
#define TERN_QUEUE_QUEUE_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "base/sizes.h"
#include "ev/loop.h"
#include "mail/dsn.h"
#include "mail/envelope.h"
#include "mail/result.h"
#include "queue/queue_priv.h"

struct qjob_rcpt {
    uint32_t idx; /* recipient index in the envelope and the slots */
    int remote;   /* for the relay transport; res.code 0 until it answers */
    int peer_dsn; /* the next hop offered DSN */
    int unknown;  /* a local TEMPFAIL after which nobody knows if it was delivered */
    struct result res;
    char relay[RELAY_NAME_MAX]; /* who answered: "local", "mx.example[192.0.2.1]:25" */
    uint64_t t0_us, t1_us; /* this delivery's start and end */
};

/* One delivery attempt of one message (all its pending recipients). */
struct qjob {
    struct pool_job pj; /* first: the pool hands this pointer back */
    const struct config *cfg; /* the settings the job started with (qcfg) */
    struct queue *q;
    struct qcfg *qcfg;
    uint64_t key;
    struct store_rec rec;
    char *segpath; /* owned */
    uint64_t t_queued_us;
    /* Filled by the delivery thread. */
    int err;               /* -errno: the record could not be read */
    struct envelope env;   /* parsed from the segment */
    struct store_slot *slots; /* owned, rec.nrcpt of them */
    struct qjob_rcpt *r;   /* owned, the attempts made */
    size_t nr;
    uint64_t t_start_us;
    int content_fd;        /* owned sealed copy of the content for relaying, or -1 */
    int local_fd;          /* owned sealed copy for the delivery process, or -1 (thread only) */
    size_t nremote;        /* entries of r waiting for the relay transport */
    unsigned relays_out;   /* relay requests not yet answered */
    size_t *failed;        /* owned: entries of r that failed for good */
    size_t nfailed;
    size_t *succeeded;     /* owned: entries of r delivered or relayed */
    size_t nsucceeded;
    size_t *delayed;       /* owned: entries of r past delay_warning, first time */
    size_t ndelayed;
    struct qpaused *paused; /* a reference: destinations not to try now */
};

/* One relay request in flight: which entries of its job it answers for. */
struct qrelay {
    struct queue *q;
    uint64_t id;       /* the key in q->relays */
    struct qjob *job;  /* not owned: the job waits for all its requests */
    size_t *entries;   /* owned: indices into job->r */
    size_t n;
    ev_timer_id deadline; /* no answer by then: deferred (queue_relay.c) */
};

/* A job for message m (its key in q->msgs), marked running; the caller
 * submits it to the pool. */
struct qjob *qjob_new(struct queue *q, struct qmsg *m, uint64_t key);
void qjob_free(struct qjob *j);

/* In the loop thread, once the delivery thread is done with j: applies
 * the local outcomes, hands the remote recipients to the relay transport
 * and finishes the job when nothing is left outstanding. */
void qjob_done(struct queue *q, struct qjob *j);
/* Applies the outcome of attempt j->r[k] to its recipient's slot. */
void qjob_apply(struct queue *q, struct qmsg *m, struct qjob *j, size_t k, int64_t now);
/* Every attempt of job j has its outcome: notify, reschedule or finish. */
void qjob_finalize(struct queue *q, struct qmsg *m, struct qjob *j);

/* Hands the remote recipients of j to the relay transport, one request
 * per domain. Returns the number of requests in flight; recipients that
 * could not be handed over are answered (deferred) at once. */
unsigned qjob_relay(struct queue *q, struct qmsg *m, struct qjob *j, int64_t now);

/* A notification to the sender about entries[0..count) of j, all with
 * the same action (RFC 3461 NOTIFY decides who is named; never to <>). */
void qjob_notify(struct queue *q, struct qjob *j, const size_t *entries, size_t count,
                 enum dsn_action what);

#endif
