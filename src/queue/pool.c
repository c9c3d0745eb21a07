/* pool.c: a fixed set of threads around one job list (mutex + condvar)
 * and one list of finished jobs handed back through an eventfd. */
#include "queue/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xmalloc.h"

struct pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct pool_job *todo_head, *todo_tail; /* waiting to run */
    struct pool_job *done_head, *done_tail; /* finished, not reaped */
    int stop;
    int efd;
    pthread_t *threads;
    unsigned nthreads;
};

static void pool_append(struct pool_job **head, struct pool_job **tail, struct pool_job *j)
{
    j->next = NULL;
    if (*tail)
        (*tail)->next = j;
    else
        *head = j;
    *tail = j;
}

static void *pool_thread(void *arg)
{
    struct pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->todo_head == NULL && !p->stop)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->stop)
            break;
        struct pool_job *j = p->todo_head;
        p->todo_head = j->next;
        if (p->todo_head == NULL)
            p->todo_tail = NULL;
        pthread_mutex_unlock(&p->mu);
        j->run(j);
        pthread_mutex_lock(&p->mu);
        /* The loop drains the whole list when woken, so only the first
         * finished job needs to wake it: a wake-up costs more than the
         * job's bookkeeping. */
        int was_empty = p->done_head == NULL;
        pool_append(&p->done_head, &p->done_tail, j);
        uint64_t one = 1;
        if (was_empty && write(p->efd, &one, sizeof one) < 0) {
            /* EAGAIN only: the loop is already due to wake. */
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

struct pool *pool_new(unsigned n)
{
    if (n == 0)
        n = 1;
    struct pool *p = xcalloc(1, sizeof *p);
    p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->efd < 0) {
        log_err("delivery pool: eventfd: %s", strerror(errno));
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->threads = xcalloc(n, sizeof *p->threads);
    for (unsigned i = 0; i < n; i++) {
        int rc = pthread_create(&p->threads[i], NULL, pool_thread, p);
        if (rc != 0) {
            log_err("delivery pool: cannot start a thread: %s", strerror(rc));
            struct pool_job *left = pool_stop(p);
            (void)left; /* nothing was submitted yet */
            pool_free(p);
            return NULL;
        }
        p->nthreads++;
    }
    return p;
}

int pool_fd(const struct pool *p)
{
    return p->efd;
}

void pool_submit(struct pool *p, struct pool_job *jobs)
{
    size_t n = 0;
    pthread_mutex_lock(&p->mu);
    while (jobs) {
        struct pool_job *next = jobs->next;
        pool_append(&p->todo_head, &p->todo_tail, jobs);
        jobs = next;
        n++;
    }
    if (n > 1)
        pthread_cond_broadcast(&p->cv);
    else if (n == 1)
        pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

struct pool_job *pool_reap(struct pool *p)
{
    uint64_t v;
    if (read(p->efd, &v, sizeof v) < 0) {
        /* EAGAIN: the list below decides. */
    }
    pthread_mutex_lock(&p->mu);
    struct pool_job *j = p->done_head;
    if (j) {
        p->done_head = j->next;
        if (p->done_head == NULL)
            p->done_tail = NULL;
        j->next = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    return j;
}

struct pool_job *pool_stop(struct pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    p->nthreads = 0;
    pthread_mutex_lock(&p->mu);
    struct pool_job *left = p->todo_head;
    p->todo_head = p->todo_tail = NULL;
    pthread_mutex_unlock(&p->mu);
    return left;
}

void pool_free(struct pool *p)
{
    if (p == NULL)
        return;
    close(p->efd);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->threads);
    free(p);
}
