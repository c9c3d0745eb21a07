/* queue_job.c: a delivery job. It is made in the loop thread for a due
 * message; in a delivery thread it re-reads the envelope and recipient
 * states from the segment (nothing of a waiting message is kept in
 * memory) and delivers every pending local recipient to its Maildir;
 * remote recipients are left for the relay transport (queue_relay.c).
 * Only the loop thread updates the spool's index (queue_apply.c). */
#include "queue/queue_job.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/fsio.h"
#include "base/log.h"
#include "base/sizes.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "deliver/local.h"

/* ---- in a delivery thread ---- */

/* The Maildir of recipient i, from the settings of now. Returns 0, or
 * -EINVAL / config_maildir_path's code with *res saying why not. */
static int qjob_maildir_path(const struct qjob *j, uint32_t i, char *path, size_t pathsize,
                             struct result *res)
{
    const char *addr = j->env.rcpts[i].addr;
    struct conf_mailbox mb;
    memset(&mb, 0, sizeof mb);
    const char *at = strrchr(addr, '@');
    size_t ulen = at ? (size_t)(at - addr) : strlen(addr);
    const char *dom = at ? at + 1 : "";
    if (ulen == 0 || ulen > MAILADDR_LOCAL_MAX || strlen(dom) > MAILADDR_DOMAIN_MAX) {
        result_set(res, RESULT_PERMFAIL, 550, "5.1.3", "bad recipient address in the spool");
        return -EINVAL;
    }
    memcpy(mb.user, addr, ulen);
    memcpy(mb.domain, dom, strlen(dom));
    int rc = config_maildir_path(j->cfg, &mb, path, pathsize);
    if (rc < 0) {
        /* A setting can be fixed: keep the message meanwhile. */
        result_set(res, RESULT_TEMPFAIL, 451, "4.3.5",
                   "cannot build the maildir path (check the maildir setting)");
        return rc;
    }
    /* DMARC quarantine: the Junk folder of Maildir++ (Dovecot's and
     * Courier's layout), which mail readers show as "Junk". */
    static const char junk[] = "/.Junk";
    size_t n = strlen(path);
    if (j->env.junk) {
        if (n + sizeof junk > pathsize) {
            result_set(res, RESULT_TEMPFAIL, 451, "4.3.5", "maildir path too long");
            return -ENAMETOOLONG;
        }
        memcpy(path + n, junk, sizeof junk);
    }
    return 0;
}

static int qjob_content_copy(const struct qjob *j, int segfd);

/* Delivers to recipient i. The intent goes into the slot first, so that a
 * crash during the delivery leaves a trace (redeliver.h). The delivery
 * process gets a sealed copy of this message alone, never the segment (it
 * holds other messages and is writable). Returns LOCAL_UNKNOWN when
 * the delivery may have happened despite the TEMPFAIL in *res. */
static int qjob_deliver_one(struct qjob *j, uint32_t i, int fd, struct result *res)
{
    const char *addr = j->env.rcpts[i].addr;
    struct store_slot *s = &j->slots[i];
    char path[PATH_MAX];
    if (qjob_maildir_path(j, i, path, sizeof path, res) < 0)
        return LOCAL_KNOWN;
    if (j->q->local && j->local_fd < 0) {
        j->local_fd = qjob_content_copy(j, fd);
        if (j->local_fd < 0) {
            result_set(res, RESULT_TEMPFAIL, 451, "4.3.0", "cannot copy the message: %s",
                       strerror(-j->local_fd));
            return LOCAL_KNOWN;
        }
    }
    struct local_req req = {
        .path = path,
        .return_path = j->env.from ? j->env.from : "",
        .delivered_to = addr,
        .fd = j->q->local ? j->local_fd : fd,
        .off = j->q->local ? 0 : (off_t)store_content_off(&j->rec),
        .len = j->rec.content_len,
        .check = (s->flags & STORE_SLOT_INFLIGHT) != 0,
        .qid = j->rec.qid,
        .since = s->last_attempt,
        .pid = s->attempt_pid,
    };
    s->flags |= STORE_SLOT_INFLIGHT;
    s->attempt_pid = j->q->local_pid ? j->q->local_pid : (uint32_t)getpid();
    s->last_attempt = clock_wall();
    if (store_slot_pwrite(fd, &j->rec, i, s) < 0) {
        /* Without the intent a crash could repeat the delivery unseen. */
        result_set(res, RESULT_TEMPFAIL, 451, "4.3.0", "cannot write to the queue file");
        return LOCAL_KNOWN;
    }
    if (j->q->local)
        return j->q->local(j->q->local_arg, &req, res);
    local_deliver(&req, res);
    return LOCAL_KNOWN;
}

/* Records a success at once, from the thread: the window in which a crash
 * leaves only the intent (and a search of the Maildir) stays short. */
static void qjob_record_done(struct qjob *j, uint32_t i, int fd)
{
    struct store_slot *s = &j->slots[i];
    s->status = STORE_DONE;
    s->flags &= ~(unsigned)STORE_SLOT_INFLIGHT;
    s->error[0] = '\0';
    (void)store_slot_pwrite(fd, &j->rec, i, s); /* the loop writes it again */
}

/* Does local recipient i name a mailbox under the settings of now? The
 * queue keeps recipients nobody has (queue_expand_rcpts) so they bounce. */
static int qjob_local_known(const struct qjob *j, uint32_t i)
{
    struct conf_mailbox *mbs = NULL;
    size_t n = 0;
    int ok = config_expand(j->cfg, j->env.rcpts[i].addr, &mbs, &n) == 0 && n > 0;
    free(mbs);
    return ok;
}

/* Is recipient i for another domain (relayed mail)? */
static int qjob_is_remote(const struct qjob *j, uint32_t i)
{
    const char *at = strrchr(j->env.rcpts[i].addr, '@');
    return at && !config_is_local_domain(j->cfg, at + 1);
}

/* A sealed in-memory copy of the content for the network process: it
 * gets this message and nothing else of the segment. */
static int qjob_content_copy(const struct qjob *j, int segfd)
{
    int fd = memfd_create("tern-relay", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -errno;
    off_t in = (off_t)store_content_off(&j->rec);
    uint64_t left = j->rec.content_len;
    char buf[64 * 1024];
    while (left > 0) {
        /* copy_file_range refuses to cross file systems (EXDEV) on older
         * kernels, and a memfd is always another one: plain copying. */
        size_t want = left < sizeof buf ? (size_t)left : sizeof buf;
        int rc = fsio_pread_all(segfd, buf, want, in);
        if (rc == 0)
            rc = fsio_write_all(fd, buf, want);
        if (rc < 0) {
            close(fd);
            return rc;
        }
        in += (off_t)want;
        left -= want;
    }
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

static void qjob_run(struct pool_job *pj)
{
    struct qjob *j = (struct qjob *)pj;
    j->t_start_us = clock_wall_us();
    char *envbuf = NULL;
    int fd = open(j->segpath, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        j->err = -errno;
        return;
    }
    j->slots = xcalloc(j->rec.nrcpt, sizeof *j->slots);
    j->err = store_read_slots(fd, &j->rec, j->slots);
    if (j->err == 0)
        j->err = store_read_env(fd, &j->rec, &envbuf);
    if (j->err == 0 && (envelope_parse(envbuf, j->rec.env_len, &j->env) < 0 ||
                        j->env.nrcpts != j->rec.nrcpt))
        j->err = -EBADMSG;
    free(envbuf);
    if (j->err < 0) {
        close(fd);
        return;
    }
    j->r = xcalloc(j->rec.nrcpt, sizeof *j->r);
    for (uint32_t i = 0; i < j->rec.nrcpt; i++) {
        if (j->slots[i].status != STORE_PENDING ||
            queue_paused_addr(j->paused, j->env.rcpts[i].addr))
            continue;
        struct qjob_rcpt *r = &j->r[j->nr++];
        r->idx = i;
        r->t0_us = clock_wall_us();
        if (qjob_is_remote(j, i)) {
            r->remote = 1;
            j->nremote++;
            continue; /* the loop thread hands it to the relay transport */
        }
        strutil_lcpy(r->relay, "local", sizeof r->relay);
        if (!qjob_local_known(j, i))
            result_set(&r->res, RESULT_PERMFAIL, 550, "5.1.1",
                       "no such user here (unknown user or alias loop)");
        else
            r->unknown = qjob_deliver_one(j, i, fd, &r->res) == LOCAL_UNKNOWN &&
                         r->res.kind == RESULT_TEMPFAIL;
        if (r->res.kind == RESULT_OK)
            qjob_record_done(j, i, fd);
        r->t1_us = clock_wall_us();
    }
    if (j->nremote > 0) {
        /* One copy serves both transports. */
        j->content_fd = j->local_fd >= 0 ? j->local_fd : qjob_content_copy(j, fd);
        j->local_fd = -1;
        if (j->content_fd < 0)
            log_warn("%s: cannot copy the content for relaying: %s", j->rec.qid,
                     strerror(-j->content_fd));
    }
    if (j->local_fd >= 0) {
        close(j->local_fd);
        j->local_fd = -1;
    }
    close(fd);
}

/* ---- in the loop thread ---- */

struct qjob *qjob_new(struct queue *q, struct qmsg *m, uint64_t key)
{
    struct qjob *j = xcalloc(1, sizeof *j);
    char path[PATH_MAX];
    if (store_seg_path(q->st, m->rec.seg, path, sizeof path) < 0)
        fatal("%s: segment path too long", m->rec.qid);
    j->pj.run = qjob_run;
    j->q = q;
    j->qcfg = queue_cfg_take(q);
    j->cfg = j->qcfg->cfg;
    j->key = key;
    j->rec = m->rec;
    j->segpath = xstrdup(path);
    j->t_queued_us = clock_wall_us();
    j->content_fd = -1;
    j->local_fd = -1;
    j->paused = queue_paused_ref(q->paused);
    envelope_init(&j->env);
    m->state = QM_RUNNING;
    q->inflight++;
    return j;
}

void qjob_free(struct qjob *j)
{
    if (j->content_fd >= 0)
        close(j->content_fd);
    free(j->failed);
    free(j->succeeded);
    free(j->delayed);
    queue_paused_unref(j->paused);
    queue_cfg_give(j->q, j->qcfg);
    envelope_clear(&j->env);
    free(j->slots);
    free(j->r);
    free(j->segpath);
    free(j);
}

void queue_set_local(struct queue *q, local_transport_fn fn, void *arg, uint32_t pid)
{
    q->local = fn;
    q->local_arg = arg;
    q->local_pid = pid;
}
