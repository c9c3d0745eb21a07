/* queue_priv.h: what queue.c (spool side: bodies, commits, recovery) and
 * the delivery side (queue_dispatch.c, queue_job.c, queue_apply.c,
 * queue_relay.c, queue_notify.c, queue_ctl.c) share. Not for
 * use outside src/queue/. */
#ifndef TERN_QUEUE_QUEUE_PRIV_H
#define TERN_QUEUE_QUEUE_PRIV_H

#include <stdint.h>

#include "base/idmap.h"
#include "ev/loop.h"
#include "queue/commit.h"
#include "deliver/local.h"
#include "queue/pool.h"
#include "queue/queue.h"
#include "queue/queue_metrics.h"
#include "queue/sched.h"
#include "queue/store.h"

enum qmsg_state {
    QM_SYNCING = 0, /* appended, its batch not yet durable */
    QM_WAITING = 1, /* in the heap */
    QM_RUNNING = 2, /* a delivery job has it */
};

/* qmsg flags: the operator's commands (queue_ctl.c). */
#define QMF_HELD 0x01   /* on hold: not delivered until released (also in the slots) */
#define QMF_DELETE 0x02 /* delete once the running attempt has ended */
#define QMF_PARKED 0x04 /* a pending recipient's domain is paused: resume reschedules */

/* The paused destination domains: an immutable snapshot shared by the
 * loop thread and the jobs that started under it. Reference counts are
 * touched only in the loop thread. */
struct qpaused {
    unsigned refs;
    size_t n;
    char **domains; /* owned, lowercased */
};

/* A config and the jobs still using it (reloads, queue_set_config). */
struct qcfg {
    const struct config *cfg; /* not owned */
    unsigned jobs;
    struct qcfg *next; /* older ones, waiting for their jobs */
};

/* The index entry of one message in the spool: all the memory a deferred
 * message costs besides its 24-byte heap entry and its idmap slot (170
 * bytes in all: 100,000 deferred messages take 17 MB, measured with
 * bench/queue_memory.c). The envelope is read again from the segment for
 * every attempt. */
struct qmsg {
    struct store_rec rec;
    int64_t next_attempt; /* wall seconds: when the heap entry is due */
    uint32_t npending;    /* recipients neither delivered nor failed */
    uint8_t state;        /* enum qmsg_state */
    uint8_t flags;        /* QMF_* */
};

struct queue {
    struct ev_loop *loop;
    const struct config *cfg;
    char *spool;  /* owned: cfg->spool_dir */
    char *tmpdir; /* owned: <spool>/tmp, where bodies are received */
    struct store *st;
    struct commit *cm;
    struct pool *pool;
    struct idmap msgs;   /* qid key -> struct qmsg (owned) */
    struct idmap bodies; /* qid key -> struct qbody (owned): opened, not committed */
    struct sched sched;
    ev_timer_id run_timer;   /* next heap entry due */
    int64_t run_timer_when;  /* its due time, wall seconds */
    ev_timer_id start_timer; /* start a batch after this loop iteration */
    ev_timer_id flush_timer; /* sync in-place rewrites when idle */
    unsigned inflight, max_inflight;
    uint16_t qid_counter;
    int closing;
    struct queue_stats stats;
    struct qmetrics *metrics; /* not owned, may be NULL (queue_set_metrics) */
    queue_sign_fn sign;     /* may be NULL: nothing is signed */
    void *sign_arg;
    queue_relay_fn relay;   /* may be NULL: remote recipients wait */
    void *relay_arg;
    struct idmap relays;    /* request id -> struct qrelay (owned) */
    uint64_t relay_next_id;
    struct qpaused *paused; /* owned reference, never NULL after queue_new */
    local_transport_fn local;   /* NULL: deliver in our own threads */
    void *local_arg;
    uint32_t local_pid;     /* the pid its Maildir files are named by (0: ours) */
    struct qcfg *cfgs;      /* owned list: the current config first */
    queue_config_release_fn cfg_release;
    void *cfg_release_arg;
    char *paused_path;      /* owned: <spool>/paused, the list kept across restarts */
};

/* Queue ids are 16 hex digits: the key is their value. Returns 0 for a
 * string that is not a queue id (keys are never 0). */
uint64_t queue_qid_key(const char *qid);

/* Puts message m into the heap at m->next_attempt and (re)arms the timer. */
void queue_dispatch_schedule(struct queue *q, struct qmsg *m);
/* Starts delivery jobs for due messages while threads are free. */
void queue_dispatch_run(struct queue *q);
/* ev callback for pool_fd(). */
void queue_dispatch_on_pool(struct ev_loop *loop, int fd, unsigned events, void *arg);
/* Stops the delivery threads: running jobs finish and their results are
 * applied; jobs not started are dropped (their messages stay spooled). */
void queue_dispatch_stop(struct queue *q);
/* Frees relay requests still waiting for an answer (at shutdown). */
void queue_relay_drop_all(struct queue *q);
/* A job takes the current config (qcfg_take) and gives it back when it
 * is freed (qcfg_give). */
struct qcfg *queue_cfg_take(struct queue *q);
void queue_cfg_give(struct queue *q, struct qcfg *c);

/* queue_commit(), and with reserve set also when that would leave less
 * than queue_minfree free: for the queue's own notifications, which the
 * reserve is kept for. */
int queue_commit_msg(struct queue *q, const char *qid, struct envelope *env, const char *prefix,
                     size_t prefix_len, int reserve, queue_commit_cb cb, void *arg,
                     struct result *fail);

/* Removes a message whose every recipient is done from spool and index. */
void queue_msg_finish(struct queue *q, struct qmsg *m);

/* Paused domains (queue_pause.c). Load reads <spool>/paused (missing:
 * none paused); returns 0 or -errno. */
int queue_paused_load(struct queue *q);
/* Is domain (any case) paused in snapshot p? */
int queue_paused_has(const struct qpaused *p, const char *domain);
/* Is the domain of address addr paused in p? */
int queue_paused_addr(const struct qpaused *p, const char *addr);
struct qpaused *queue_paused_ref(struct qpaused *p);
void queue_paused_unref(struct qpaused *p);
/* Adds (add = 1) or removes a domain, writing the file durably first.
 * Returns 1 if the set changed, 0 if it already was so, -errno. */
int queue_paused_change(struct queue *q, const char *domain, int add);
#endif
