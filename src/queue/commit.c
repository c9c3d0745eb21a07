/* commit.c: the group commit's batches and its sync thread.
 *
 * Why one thread and one batch at a time: a journaling file system
 * commits concurrent syncs of one file together anyway, so a second sync
 * started while one runs would mostly wait for the first. Gathering every
 * message that arrives during a sync into the next batch gives the same
 * effect with one fdatasync per batch (bench/spool_layout.c measures it). */
#include "queue/commit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/fsio.h"
#include "base/log.h"
#include "base/xmalloc.h"

struct commit_item {
    commit_cb cb;
    void *arg;
};

struct commit_file {
    uint64_t key;
    int fd; /* owned dup */
};

struct commit_batch {
    struct commit_item *items; /* owned */
    size_t nitems, capitems;
    struct commit_file *files; /* owned */
    size_t nfiles, capfiles;
    int dir;    /* sync the directory too */
    int status; /* -errno: fails the batch; set while noting files or syncing */
};

struct commit {
    char *dir; /* owned */
    int efd;   /* eventfd: the sync thread's "done" signal to the loop */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    /* Loop thread only. */
    struct commit_batch pending;
    int running; /* `syncing` belongs to the thread until it is reaped */
    unsigned long nbatches;
    /* Shared, under mu. */
    struct commit_batch syncing;
    int work, done, stop;
};

static void commit_batch_free(struct commit_batch *b)
{
    for (size_t i = 0; i < b->nfiles; i++)
        if (b->files[i].fd >= 0)
            close(b->files[i].fd);
    free(b->items);
    free(b->files);
    memset(b, 0, sizeof *b);
}

static int commit_batch_empty(const struct commit_batch *b)
{
    return b->nitems == 0 && b->nfiles == 0 && !b->dir && b->status == 0;
}

/* The sync thread's work: every file, then the directory. A failure of
 * any makes the whole batch fail: its messages are not acknowledged. */
static void commit_sync_batch(struct commit *c, struct commit_batch *b)
{
    int status = b->status; /* a file that could not be noted fails it */
    for (size_t i = 0; i < b->nfiles; i++) {
        int rc = fsio_datasync(b->files[i].fd);
        if (rc < 0 && status == 0)
            status = rc;
        close(b->files[i].fd);
        b->files[i].fd = -1;
    }
    if (b->dir) {
        int rc = fsio_sync_dir(c->dir);
        if (rc < 0 && status == 0)
            status = rc;
    }
    b->status = status;
}

static void *commit_thread(void *arg)
{
    struct commit *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->work && !c->stop)
            pthread_cond_wait(&c->cv_work, &c->mu);
        if (!c->work)
            break;
        pthread_mutex_unlock(&c->mu);
        /* `syncing` is ours while work is set: the loop does not touch it. */
        commit_sync_batch(c, &c->syncing);
        pthread_mutex_lock(&c->mu);
        c->work = 0;
        c->done = 1;
        pthread_cond_broadcast(&c->cv_done);
        uint64_t one = 1;
        if (write(c->efd, &one, sizeof one) < 0) {
            /* Only EAGAIN (counter full) is possible; the loop is
             * already due to wake. */
        }
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

struct commit *commit_new(const char *dir)
{
    struct commit *c = xcalloc(1, sizeof *c);
    c->dir = xstrdup(dir);
    c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->efd < 0) {
        log_err("commit: eventfd: %s", strerror(errno));
        free(c->dir);
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv_work, NULL);
    pthread_cond_init(&c->cv_done, NULL);
    int rc = pthread_create(&c->thread, NULL, commit_thread, c);
    if (rc != 0) {
        log_err("commit: cannot start the sync thread: %s", strerror(rc));
        close(c->efd);
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cv_work);
        pthread_cond_destroy(&c->cv_done);
        free(c->dir);
        free(c);
        return NULL;
    }
    return c;
}

int commit_fd(const struct commit *c)
{
    return c->efd;
}

void commit_add(struct commit *c, commit_cb cb, void *arg)
{
    struct commit_batch *b = &c->pending;
    if (b->nitems == b->capitems) {
        b->capitems = b->capitems ? b->capitems * 2 : 32;
        b->items = xrealloc(b->items, b->capitems * sizeof *b->items);
    }
    b->items[b->nitems].cb = cb;
    b->items[b->nitems].arg = arg;
    b->nitems++;
}

int commit_note_fd(struct commit *c, uint64_t key, int fd)
{
    struct commit_batch *b = &c->pending;
    for (size_t i = 0; i < b->nfiles; i++)
        if (b->files[i].key == key)
            return 0;
    int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) {
        /* The file cannot be synced with this batch, so nothing in the
         * batch may be acknowledged as durable. */
        int rc = -errno;
        if (b->status == 0)
            b->status = rc;
        return rc;
    }
    if (b->nfiles == b->capfiles) {
        b->capfiles = b->capfiles ? b->capfiles * 2 : 4;
        b->files = xrealloc(b->files, b->capfiles * sizeof *b->files);
    }
    b->files[b->nfiles].key = key;
    b->files[b->nfiles].fd = dup;
    b->nfiles++;
    return 0;
}

void commit_note_dir(struct commit *c)
{
    c->pending.dir = 1;
}

int commit_has_pending(const struct commit *c)
{
    return !commit_batch_empty(&c->pending);
}

int commit_busy(const struct commit *c)
{
    return c->running;
}

void commit_start(struct commit *c, int force)
{
    if (c->running)
        return;
    if (c->pending.nitems == 0 && !(force && !commit_batch_empty(&c->pending)))
        return;
    if (c->pending.nitems)
        c->nbatches++;
    pthread_mutex_lock(&c->mu);
    c->syncing = c->pending;
    memset(&c->pending, 0, sizeof c->pending);
    c->running = 1;
    c->done = 0;
    c->work = 1;
    pthread_cond_signal(&c->cv_work);
    pthread_mutex_unlock(&c->mu);
}

void commit_process(struct commit *c)
{
    uint64_t v;
    if (read(c->efd, &v, sizeof v) < 0) {
        /* EAGAIN: nothing signalled; the check below decides. */
    }
    pthread_mutex_lock(&c->mu);
    if (!c->running || !c->done) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    struct commit_batch fin = c->syncing;
    memset(&c->syncing, 0, sizeof c->syncing);
    c->done = 0;
    pthread_mutex_unlock(&c->mu);
    c->running = 0;
    if (fin.status < 0) {
        /* What was appended while this batch synced sits in the same
         * files, and a failed writeback may have dropped its pages too;
         * the file's next sync would not say so (the error is reported
         * once). So it fails with this batch: only what is appended from
         * now on, after the owner has moved away from the file, may be
         * acknowledged. The pending files stay noted: rewrites are
         * synced again. */
        struct commit_batch *p = &c->pending;
        if (p->nitems) {
            fin.items = xrealloc(fin.items, (fin.nitems + p->nitems) * sizeof *fin.items);
            memcpy(fin.items + fin.nitems, p->items, p->nitems * sizeof *p->items);
            fin.nitems += p->nitems;
            fin.capitems = fin.nitems;
            p->nitems = 0;
        }
        log_err("spool: sync failed: %s; %zu messages not accepted", strerror(-fin.status),
                fin.nitems);
    }
    /* Start the next batch before running callbacks so the disk is busy
     * again as soon as possible. */
    commit_start(c, 0);
    for (size_t i = 0; i < fin.nitems; i++)
        fin.items[i].cb(fin.items[i].arg, fin.status);
    commit_batch_free(&fin);
}

unsigned long commit_nbatches(const struct commit *c)
{
    return c->nbatches;
}

void commit_free(struct commit *c)
{
    if (c == NULL)
        return;
    /* Drain: every callback learns its real outcome, and every file noted
     * is synced, so nothing acknowledged or rewritten is left unsynced. */
    for (;;) {
        if (c->running) {
            pthread_mutex_lock(&c->mu);
            while (!c->done)
                pthread_cond_wait(&c->cv_done, &c->mu);
            pthread_mutex_unlock(&c->mu);
            commit_process(c);
            continue;
        }
        if (commit_batch_empty(&c->pending))
            break;
        commit_start(c, 1);
    }
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_signal(&c->cv_work);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    commit_batch_free(&c->pending);
    close(c->efd);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv_work);
    pthread_cond_destroy(&c->cv_done);
    free(c->dir);
    free(c);
}
