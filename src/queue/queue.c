/* queue.c: the spool side of the queue: queue ids, the bodies being
 * received, commits (alias expansion, append, group commit) and recovery
 * at start. Delivery starts in queue_dispatch.c. */
#include "queue/queue.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/fsio.h"
#include "base/log.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "queue/queue_priv.h"

_Static_assert(STORE_QID_LEN <= ENVELOPE_QID_MAX, "queue ids must fit the envelope");
_Static_assert(STORE_RCPT_MAX >= ENVELOPE_MAX_RCPTS, "the store must hold every envelope");

/* Content may exceed the SMTP size limit by what the receiving side
 * prepends itself (our Received header). */
#define QUEUE_SIZE_SLACK 65536
/* In-place rewrites (recipient states, finished marks) ride along with
 * the next batch; when no batch comes, they are synced after this long.
 * Losing them to a power cut would only repeat a delivery. */
#define QUEUE_FLUSH_MS 1000

/* A message being received: the queue's descriptor of its anonymous
 * file. */
struct qbody {
    int fd;
};

/* One commit waiting for its batch. */
struct qpending {
    struct queue *q;
    uint64_t key;
    char qid[STORE_QID_LEN + 1];
    queue_commit_cb cb;
    void *arg;
    char *logline; /* owned: "from=<...>, size=..., nrcpt=..." */
};

uint64_t queue_qid_key(const char *qid)
{
    uint64_t v = 0;
    size_t i;
    for (i = 0; qid[i]; i++) {
        char c = qid[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            return 0;
        if (i >= STORE_QID_LEN)
            return 0;
        v = (v << 4) | d;
    }
    return i == STORE_QID_LEN ? v : 0;
}

/* ---- sync plumbing ---- */

static void queue_on_flush_timer(struct ev_loop *loop, void *arg)
{
    struct queue *q = arg;
    q->flush_timer = 0;
    if (commit_busy(q->cm)) {
        /* Try again once the running batch is done. */
        q->flush_timer = ev_timer_add(q->loop, QUEUE_FLUSH_MS, queue_on_flush_timer, q);
        return;
    }
    commit_start(q->cm, 1);
}

static void queue_on_start_timer(struct ev_loop *loop, void *arg)
{
    struct queue *q = arg;
    q->start_timer = 0;
    commit_start(q->cm, 0);
}

/* The store wrote something that needs a sync. */
static void queue_on_dirty(void *arg, uint64_t seg, int fd)
{
    struct queue *q = arg;
    if (fd < 0) {
        commit_note_dir(q->cm);
    } else {
        int rc = commit_note_fd(q->cm, seg, fd);
        if (rc < 0)
            log_warn("spool: cannot note segment %016llX for sync: %s",
                     (unsigned long long)seg, strerror(-rc));
    }
    if (!q->closing && q->flush_timer == 0)
        q->flush_timer = ev_timer_add(q->loop, QUEUE_FLUSH_MS, queue_on_flush_timer, q);
}

static void queue_on_commit_fd(struct ev_loop *loop, int fd, unsigned events, void *arg)
{
    struct queue *q = arg;
    commit_process(q->cm);
}

/* ---- ids and bodies ---- */

/* 12 hex digits of the wall clock in microseconds and 4 of a counter:
 * sortable by arrival, unique for the life of a spool because the clock
 * has moved on by the next start; checked against what is live anyway. */
static uint64_t queue_new_key(struct queue *q)
{
    for (int tries = 0; tries < 1000; tries++) {
        uint64_t us = clock_wall_us() & 0xffffffffffffULL;
        uint64_t key = (us << 16) | q->qid_counter++;
        if (key != 0 && idmap_get(&q->msgs, key) == NULL && idmap_get(&q->bodies, key) == NULL)
            return key;
    }
    return 0;
}

static int queue_tmpfile(struct queue *q, const char *qid)
{
    int fd = open(q->tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
        return fd < 0 ? -errno : fd;
    /* No O_TMPFILE on this file system: a named file, unlinked at once. */
    struct buf path = BUF_INIT;
    buf_printf(&path, "%s/%s", q->tmpdir, qid);
    fd = open(path.data, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int rc = fd < 0 ? -errno : fd;
    if (fd >= 0)
        unlink(path.data);
    buf_free(&path);
    return rc;
}

int queue_body_open(struct queue *q, char *qid, int *fd)
{
    uint64_t key = queue_new_key(q);
    if (key == 0)
        return -EAGAIN;
    char id[STORE_QID_LEN + 1];
    snprintf(id, sizeof id, "%016llX", (unsigned long long)key);
    int own = queue_tmpfile(q, id);
    if (own < 0)
        return own;
    int theirs = fcntl(own, F_DUPFD_CLOEXEC, 0);
    if (theirs < 0) {
        int rc = -errno;
        close(own);
        return rc;
    }
    struct qbody *b = xcalloc(1, sizeof *b);
    b->fd = own;
    idmap_put(&q->bodies, key, b);
    memcpy(qid, id, sizeof id);
    *fd = theirs;
    return 0;
}

/* Takes the body of qid out of the table; returns its fd or -ENOENT. */
static int queue_body_take(struct queue *q, const char *qid)
{
    uint64_t key = queue_qid_key(qid);
    struct qbody *b = key ? idmap_del(&q->bodies, key) : NULL;
    if (b == NULL)
        return -ENOENT;
    int fd = b->fd;
    free(b);
    return fd;
}

void queue_body_abort(struct queue *q, const char *qid)
{
    int fd = queue_body_take(q, qid);
    if (fd >= 0)
        close(fd);
}

/* ---- commit ---- */

static void queue_free_rcpts(struct envelope_rcpt *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(r[i].addr);
        free(r[i].orcpt);
    }
    free(r);
}

/* Replaces each recipient by the final mailboxes its aliases name; the
 * original address is kept as orcpt (unless the client gave an ORCPT).
 * A mailbox reached twice is delivered once. Returns how many recipients
 * are deliverable (the others are kept to bounce). */
static size_t queue_expand_rcpts(struct queue *q, const char *qid, struct envelope *env)
{
    size_t deliverable = 0;
    struct envelope_rcpt *old = env->rcpts;
    size_t nold = env->nrcpts;
    env->rcpts = NULL;
    env->nrcpts = env->rcpts_cap = 0;
    struct buf addr = BUF_INIT;
    for (size_t i = 0; i < nold; i++) {
        struct conf_mailbox *mbs = NULL;
        size_t nmb = 0;
        const char *at = strrchr(old[i].addr, '@');
        if (at && !config_is_local_domain(q->cfg, at + 1)) {
            /* Relayed mail (AUTH or relay_networks): kept as it is for the
             * remote transport. */
            if (env->nrcpts < ENVELOPE_MAX_RCPTS)
                envelope_add_rcpt(env, old[i].addr, old[i].orcpt, old[i].notify);
            deliverable++;
            continue;
        }
        if (config_expand(q->cfg, old[i].addr, &mbs, &nmb) < 0 || nmb == 0) {
            /* Accepted all the same (sendmail, or a table changed since
             * RCPT): kept, so that its delivery fails and the sender
             * hears of it in a bounce, never silence after a 250. */
            struct buf a = BUF_INIT;
            strutil_escape_word(&a, old[i].addr, strlen(old[i].addr));
            log_warn("%s: to=<%s>: no local mailbox (unknown user or alias loop); it will "
                     "bounce",
                     qid, a.data ? a.data : "");
            buf_free(&a);
            free(mbs);
            if (env->nrcpts < ENVELOPE_MAX_RCPTS)
                envelope_add_rcpt(env, old[i].addr, old[i].orcpt, old[i].notify);
            continue;
        }
        for (size_t j = 0; j < nmb; j++) {
            buf_reset(&addr);
            if (mbs[j].domain[0])
                buf_printf(&addr, "%s@%s", mbs[j].user, mbs[j].domain);
            else
                buf_puts(&addr, mbs[j].user);
            int dup = 0;
            for (size_t k = 0; k < env->nrcpts && !dup; k++)
                dup = strutil_casecmp(env->rcpts[k].addr, addr.data) == 0;
            if (dup || env->nrcpts >= ENVELOPE_MAX_RCPTS)
                continue;
            const char *orcpt = old[i].orcpt;
            if (orcpt == NULL && strutil_casecmp(addr.data, old[i].addr) != 0)
                orcpt = old[i].addr;
            envelope_add_rcpt(env, addr.data, orcpt, old[i].notify);
        }
        deliverable++;
        free(mbs);
    }
    buf_free(&addr);
    queue_free_rcpts(old, nold);
    return deliverable;
}

static void queue_on_synced(void *arg, int status)
{
    struct qpending *p = arg;
    struct queue *q = p->q;
    struct result res;
    struct qmsg *m = idmap_get(&q->msgs, p->key);
    if (m == NULL) {
        /* Invariant: nothing removes a message before its batch synced. */
        fatal("%s: committed message missing from the index", p->qid);
    }
    if (status < 0) {
        /* The client hears 451 and will send it again: this copy must
         * never be delivered. Its segment's pages may have been dropped
         * by the failed sync, so later appends go to a new segment. */
        log_err("%s: not queued: spool sync failed: %s", p->qid, strerror(-status));
        result_spool_error(&res, status);
        store_retire_current(q->st);
        idmap_del(&q->msgs, p->key);
        if (store_mark_finished(q->st, &m->rec) < 0)
            log_err("%s: cannot mark the unsynced record dead", p->qid);
        free(m);
        q->stats.active--;
    } else {
        result_set(&res, RESULT_OK, 250, "2.0.0", "Ok: queued as %s", p->qid);
        q->stats.committed++;
        if (q->metrics)
            qmetrics_received(q->metrics, m->rec.nrcpt);
        log_info("%s: %s (queue active)", p->qid, p->logline);
        m->next_attempt = 0;
        if (!q->closing)
            queue_dispatch_schedule(q, m);
        else
            m->state = QM_WAITING;
    }
    p->cb(p->arg, p->qid, &res);
    free(p->logline);
    free(p);
    /* Delivery starts from the timer queue_dispatch_schedule armed, once all
     * of this batch is scheduled: one hand-over to the threads a batch. */
}

/* Free bytes of the spool's file system for an unprivileged writer (the
 * root reserve is not ours), or -errno. */
static int queue_spool_avail(const struct queue *q, uint64_t *avail, int *inodes)
{
    struct statvfs sv;
    if (statvfs(q->spool, &sv) < 0)
        return -errno;
    *avail = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
    /* A file system without inode counts reports f_files 0. */
    *inodes = sv.f_files == 0 || sv.f_favail > 0;
    return 0;
}

uint64_t queue_spool_room(const struct queue *q)
{
    uint64_t avail = 0;
    int inodes = 1;
    if (queue_spool_avail(q, &avail, &inodes) < 0)
        return UINT64_MAX;
    uint64_t minfree = q->cfg->queue_minfree;
    if (!inodes || avail <= minfree)
        return 0;
    return (avail - minfree) / 2;
}

/* Would a record of `need` bytes leave queue_minfree free? A file system
 * that cannot say is given the benefit of the doubt: the append itself
 * fails if there is no room. */
static int queue_space_for(const struct queue *q, uint64_t need)
{
    uint64_t avail = 0;
    int inodes = 1;
    if (queue_spool_avail(q, &avail, &inodes) < 0)
        return 1;
    uint64_t minfree = q->cfg->queue_minfree;
    return avail > minfree && avail - minfree >= need;
}

int queue_commit_msg(struct queue *q, const char *qid, struct envelope *env, const char *prefix,
                     size_t prefix_len, int reserve, queue_commit_cb cb, void *arg,
                     struct result *fail)
{
    struct result why = {0};
    int fd = queue_body_take(q, qid);
    if (fd < 0) {
        envelope_clear(env);
        if (fail)
            result_spool_error(fail, -ENOENT);
        return -ENOENT;
    }
    uint64_t key = queue_qid_key(qid);
    struct buf ser = BUF_INIT, signed_prefix = BUF_INIT;
    int rc;
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        rc = -errno;
        result_spool_error(&why, rc);
        goto out;
    }
    /* The receiving process says how much it wrote; the file must agree
     * (a process that lies about it is hostile or broken). */
    if ((uint64_t)sb.st_size != env->size) {
        log_err("%s: content is %llu bytes, envelope says %llu; refused", qid,
                (unsigned long long)sb.st_size, (unsigned long long)env->size);
        rc = -EINVAL;
        result_spool_error(&why, rc);
        goto out;
    }
    if (prefix_len > QUEUE_PREFIX_MAX) {
        rc = -EMSGSIZE;
        result_spool_error(&why, -EINVAL);
        goto out;
    }
    /* The receiving side checked the limit it was started with; a reload
     * may have lowered it since (RFC 5321 §4.5.3.1.10, RFC 3463 5.3.4). */
    if (q->cfg->message_size_max && env->size > q->cfg->message_size_max + QUEUE_SIZE_SLACK) {
        log_warn("%s: size=%llu exceeds message_size_max; not queued", qid,
                 (unsigned long long)env->size);
        rc = -EMSGSIZE;
        result_set(&why, RESULT_PERMFAIL, 552, "5.3.4", "Message size exceeds fixed limit");
        goto out;
    }
    strutil_lcpy(env->qid, qid, sizeof env->qid);
    size_t deliverable = queue_expand_rcpts(q, qid, env);
    if (env->nrcpts == 0 || (deliverable == 0 && !env->bounce_unknown)) {
        /* Nothing deliverable (the tables changed since RCPT): the
         * client hears what RCPT would say now, rather than a 250 for
         * mail that would only bounce. Permanent, as at RCPT. */
        log_warn("%s: no deliverable recipient after alias expansion; not queued", qid);
        rc = -EINVAL;
        result_set(&why, RESULT_PERMFAIL, 550, "5.1.1", "Error: no deliverable recipient");
        goto out;
    }
    if (q->sign) {
        /* Signatures go above everything, the receiving side's fields
         * (Authentication-Results) included. */
        q->sign(q->sign_arg, env, prefix, prefix_len, fd, env->size, &signed_prefix);
        if (signed_prefix.len && signed_prefix.len + prefix_len <= STORE_PREFIX_MAX) {
            buf_append(&signed_prefix, prefix, prefix_len);
            prefix = signed_prefix.data;
            prefix_len = signed_prefix.len;
        } else if (signed_prefix.len) {
            log_warn("%s: not signed: %zu octets of header fields to add", qid,
                     signed_prefix.len + prefix_len);
        }
    }
    envelope_serialize(env, &ser);
    if (ser.len > STORE_ENV_MAX) {
        rc = -EMSGSIZE;
        result_set(&why, RESULT_PERMFAIL, 552, "5.3.4", "Error: envelope too large");
        goto out;
    }
    struct store_rec rec = {.env_len = (uint32_t)ser.len, .nrcpt = (uint32_t)env->nrcpts,
                            .content_len = prefix_len + env->size};
    if (!reserve && !queue_space_for(q, store_rec_size(&rec))) {
        /* Mail from outside leaves queue_minfree for what the queue
         * itself must still write: notifications about queued mail. */
        log_warn("%s: not queued: the spool is full (queue_minfree %llu)", qid,
                 (unsigned long long)q->cfg->queue_minfree);
        rc = -ENOSPC;
        result_spool_error(&why, rc);
        goto out;
    }
    rc = store_append_prefixed(q->st, qid, ser.data, (uint32_t)ser.len, (uint32_t)env->nrcpts,
                               prefix, prefix_len, fd, env->size, clock_wall_us(), &rec);
    if (rc < 0) {
        log_err("%s: cannot write to the spool: %s", qid, strerror(-rc));
        result_spool_error(&why, rc);
        goto out;
    }
    struct qmsg *m = xcalloc(1, sizeof *m);
    m->rec = rec;
    m->npending = rec.nrcpt;
    m->state = QM_SYNCING;
    idmap_put(&q->msgs, key, m);
    q->stats.active++;

    struct qpending *p = xcalloc(1, sizeof *p);
    p->q = q;
    p->key = key;
    memcpy(p->qid, rec.qid, sizeof p->qid);
    p->cb = cb;
    p->arg = arg;
    struct buf line = BUF_INIT;
    buf_puts(&line, "from=<");
    strutil_escape_word(&line, env->from ? env->from : "", env->from ? strlen(env->from) : 0);
    buf_printf(&line, ">, size=%llu, nrcpt=%zu", (unsigned long long)rec.content_len,
               env->nrcpts);
    p->logline = buf_steal(&line);
    commit_add(q->cm, queue_on_synced, p);
    /* Start the batch once this loop iteration has handed us everything
     * it read, so commits that arrive together share one sync. */
    if (q->start_timer == 0)
        q->start_timer = ev_timer_add(q->loop, 0, queue_on_start_timer, q);
    rc = 0;
out:
    close(fd);
    buf_free(&ser);
    buf_free(&signed_prefix);
    envelope_clear(env);
    if (rc < 0 && fail)
        *fail = why;
    return rc;
}

void queue_set_signer(struct queue *q, queue_sign_fn fn, void *arg)
{
    q->sign = fn;
    q->sign_arg = arg;
}

int queue_commit(struct queue *q, const char *qid, struct envelope *env, const char *prefix,
                 size_t prefix_len, queue_commit_cb cb, void *arg, struct result *fail)
{
    return queue_commit_msg(q, qid, env, prefix, prefix_len, 0, cb, arg, fail);
}

/* ---- reloads ---- */

static struct qcfg *queue_cfg_push(struct queue *q, const struct config *cfg)
{
    struct qcfg *c = xcalloc(1, sizeof *c);
    c->cfg = cfg;
    c->next = q->cfgs;
    q->cfgs = c;
    return c;
}

struct qcfg *queue_cfg_take(struct queue *q)
{
    q->cfgs->jobs++;
    return q->cfgs;
}

/* Hands back every old config no job uses any more. */
static void queue_cfg_sweep(struct queue *q)
{
    struct qcfg **pp = &q->cfgs->next;
    while (*pp) {
        struct qcfg *c = *pp;
        if (c->jobs > 0) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        if (q->cfg_release)
            q->cfg_release(q->cfg_release_arg, c->cfg);
        free(c);
    }
}

void queue_cfg_give(struct queue *q, struct qcfg *c)
{
    c->jobs--;
    if (c != q->cfgs && c->jobs == 0)
        queue_cfg_sweep(q);
}

void queue_set_config(struct queue *q, const struct config *cfg,
                      queue_config_release_fn release, void *arg)
{
    q->cfg_release = release;
    q->cfg_release_arg = arg;
    q->cfg = cfg;
    queue_cfg_push(q, cfg);
    queue_cfg_sweep(q);
}

/* ---- recovery ---- */

static void queue_on_recovered(void *arg, struct store *st, const struct store_rec *rec,
                               const struct store_slot *slots)
{
    struct queue *q = arg;
    uint64_t key = queue_qid_key(rec->qid);
    struct qmsg *old = idmap_get(&q->msgs, key);
    if (old) {
        /* Two records with one id: the later one is the newer state. */
        log_warn("%s: found twice in the spool; keeping the later copy", rec->qid);
        (void)store_mark_finished(st, &old->rec);
    } else {
        old = xcalloc(1, sizeof *old);
        idmap_put(&q->msgs, key, old);
        q->stats.recovered++;
        q->stats.active++;
    }
    struct qmsg *m = old;
    m->rec = *rec;
    m->npending = 0;
    m->next_attempt = INT64_MAX;
    m->flags = 0;
    for (uint32_t i = 0; i < rec->nrcpt; i++) {
        if (slots[i].status != STORE_PENDING)
            continue;
        m->npending++;
        if (slots[i].flags & STORE_SLOT_HELD)
            m->flags |= QMF_HELD;
        if (slots[i].next_attempt < m->next_attempt)
            m->next_attempt = slots[i].next_attempt;
    }
    m->state = QM_WAITING;
}

/* Leftovers of named body files (no O_TMPFILE) from an earlier run. */
static void queue_clean_tmp(const char *tmpdir)
{
    DIR *d = opendir(tmpdir);
    if (d == NULL)
        return;
    struct dirent *de;
    struct buf path = BUF_INIT;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        buf_reset(&path);
        buf_printf(&path, "%s/%s", tmpdir, de->d_name);
        if (unlink(path.data) < 0)
            log_warn("spool: cannot remove %s: %s", path.data, strerror(errno));
    }
    buf_free(&path);
    closedir(d);
}

struct queue *queue_new(struct ev_loop *loop, const struct config *cfg)
{
    struct queue *q = xcalloc(1, sizeof *q);
    q->loop = loop;
    q->cfg = cfg;
    q->spool = xstrdup(cfg->spool_dir);
    struct buf b = BUF_INIT;
    buf_printf(&b, "%s/tmp", q->spool);
    q->tmpdir = buf_steal(&b);
    buf_printf(&b, "%s/paused", q->spool);
    q->paused_path = buf_steal(&b);
    idmap_init(&q->msgs);
    idmap_init(&q->bodies);
    idmap_init(&q->relays);
    sched_init(&q->sched);
    queue_cfg_push(q, cfg);
    int rc = fsio_mkdirs(q->tmpdir, 0700);
    if (rc < 0) {
        log_err("spool: cannot create %s: %s", q->tmpdir, strerror(-rc));
        goto fail;
    }
    queue_clean_tmp(q->tmpdir);
    rc = queue_paused_load(q);
    if (rc < 0) {
        log_err("spool: cannot read %s: %s", q->paused_path, strerror(-rc));
        goto fail;
    }
    q->st = store_open(q->spool, queue_on_recovered, q);
    if (q->st == NULL)
        goto fail;
    buf_printf(&b, "%s/seg", q->spool);
    q->cm = commit_new(b.data);
    buf_free(&b);
    if (q->cm == NULL)
        goto fail;
    store_set_dirty_cb(q->st, queue_on_dirty, q);
    rc = ev_io_add(loop, commit_fd(q->cm), EV_READ, queue_on_commit_fd, q);
    if (rc < 0) {
        log_err("queue: cannot watch the sync thread: %s", strerror(-rc));
        goto fail;
    }
    unsigned nthreads = cfg->delivery_threads ? cfg->delivery_threads : 1;
    q->pool = pool_new(nthreads);
    if (q->pool == NULL)
        goto fail;
    rc = ev_io_add(loop, pool_fd(q->pool), EV_READ, queue_dispatch_on_pool, q);
    if (rc < 0) {
        log_err("queue: cannot watch the delivery threads: %s", strerror(-rc));
        goto fail;
    }
    /* Enough jobs queued that no thread waits for the loop, few enough
     * that a large backlog stays in the heap, not in memory as jobs. */
    q->max_inflight = nthreads * 4;
    if (q->stats.recovered)
        log_info("queue: %lu messages recovered from the spool", q->stats.recovered);
    /* Recovered messages enter the heap now that delivery can start. */
    for (size_t i = 0; i < q->msgs.cap; i++) {
        struct qmsg *m = q->msgs.vals[i];
        if (q->msgs.keys[i] && !(m->flags & QMF_HELD))
            queue_dispatch_schedule(q, m);
    }
    /* The heap's timer starts delivery once the loop runs: after the
     * caller has set its transports. */
    return q;
fail:
    queue_free(q);
    return NULL;
}

void queue_free(struct queue *q)
{
    if (q == NULL)
        return;
    q->closing = 1;
    if (q->pool) {
        queue_dispatch_stop(q);
        ev_io_del(q->loop, pool_fd(q->pool));
        pool_free(q->pool);
    }
    ev_timer_cancel(q->loop, q->run_timer);
    ev_timer_cancel(q->loop, q->start_timer);
    if (q->cm) {
        /* Every commit still in flight learns its real outcome, and the
         * rewrites of the last results are synced. */
        ev_io_del(q->loop, commit_fd(q->cm));
        commit_free(q->cm);
    }
    ev_timer_cancel(q->loop, q->flush_timer);
    store_close(q->st);
    queue_relay_drop_all(q);
    idmap_free(&q->relays);
    for (size_t i = 0; i < q->msgs.cap; i++)
        if (q->msgs.keys && q->msgs.keys[i])
            free(q->msgs.vals[i]);
    idmap_free(&q->msgs);
    for (size_t i = 0; i < q->bodies.cap; i++) {
        if (q->bodies.keys && q->bodies.keys[i]) {
            struct qbody *bd = q->bodies.vals[i];
            close(bd->fd);
            free(bd);
        }
    }
    idmap_free(&q->bodies);
    sched_free(&q->sched);
    queue_paused_unref(q->paused);
    free(q->paused_path);
    /* Jobs are gone: every old config goes back to its owner. */
    while (q->cfgs) {
        struct qcfg *c = q->cfgs;
        q->cfgs = c->next;
        if (c->cfg != q->cfg && q->cfg_release)
            q->cfg_release(q->cfg_release_arg, c->cfg);
        free(c);
    }
    free(q->spool);
    free(q->tmpdir);
    free(q);
}

void queue_get_stats(const struct queue *q, struct queue_stats *st)
{
    *st = q->stats;
    st->batches = q->cm ? commit_nbatches(q->cm) : 0;
}
