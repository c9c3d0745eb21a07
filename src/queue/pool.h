/* pool: the delivery threads. The loop thread submits jobs; a thread runs
 * each job's `run` (blocking work: Maildir writes and fsyncs); finished
 * jobs come back to the loop thread, which learns of them through an
 * eventfd (pool_fd) and takes them with pool_reap. A job is touched by one
 * thread at a time: the submitter until pool_submit, a worker until it is
 * reaped. */
#ifndef TERN_QUEUE_POOL_H
#define TERN_QUEUE_POOL_H

struct pool_job {
    struct pool_job *next; /* the pool's link */
    void (*run)(struct pool_job *job);
};

struct pool;

/* Starts n threads (at least one). NULL after logging why. */
struct pool *pool_new(unsigned n);
/* Descriptor to watch for EV_READ: readable when jobs finished. */
int pool_fd(const struct pool *p);
/* Queues a list of jobs (linked through `next`, NULL-terminated) with one
 * lock and one wake-up. */
void pool_submit(struct pool *p, struct pool_job *jobs);
/* Takes one finished job (in finishing order), or NULL. */
struct pool_job *pool_reap(struct pool *p);
/* Lets running jobs finish, stops the threads and returns the jobs that
 * never started (a list through `next`; the caller owns them). Finished
 * jobs stay for pool_reap. */
struct pool_job *pool_stop(struct pool *p);
/* Frees the pool (after pool_stop and reaping). */
void pool_free(struct pool *p);

#endif
