/* queue_run.c: the delivery side of the queue. Due messages leave the
 * heap as jobs for the delivery threads; a job re-reads its envelope and
 * recipient states from the segment (nothing of a waiting message is kept
 * in memory), delivers every pending recipient to its Maildir, and comes
 * back to the loop thread, which alone updates the spool and the index. */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/fsio.h"
#include "base/log.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "mail/envelope.h"
#include "mail/result.h"
#include "mail/dsn.h"
#include "queue/bounce.h"
#include "queue/queue_priv.h"
#include "queue/local.h"

struct qjob_rcpt {
    uint32_t idx; /* recipient index in the envelope and the slots */
    int remote;   /* for the relay transport; res.code 0 until it answers */
    int peer_dsn; /* the next hop offered DSN */
    int unknown;  /* a local TEMPFAIL after which nobody knows if it was delivered */
    struct result res;
    char relay[128]; /* who answered: "local", "mx.example[192.0.2.1]:25" */
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
    struct qjob *job;  /* not owned: the job waits for all its requests */
    size_t *entries;   /* owned: indices into job->r */
    size_t n;
};

static uint64_t queue_now_us(void)
{
    return clock_wall_us();
}

/* ---- in a delivery thread ---- */

/* The Maildir of recipient i, from the settings of now. Returns 0, or -1
 * with *res saying why not. */
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
        return -1;
    }
    memcpy(mb.user, addr, ulen);
    memcpy(mb.domain, dom, strlen(dom));
    if (config_maildir_path(j->cfg, &mb, path, pathsize) < 0) {
        /* A setting can be fixed: keep the message meanwhile. */
        result_set(res, RESULT_TEMPFAIL, 451, "4.3.5",
                   "cannot build the maildir path (check the maildir setting)");
        return -1;
    }
    return 0;
}

static int qjob_content_copy(const struct qjob *j, int segfd);

/* Delivers to recipient i. The intent goes into the slot first, so that a
 * crash during the delivery leaves a trace (redeliver.h). The delivery
 * process gets a sealed copy of this message alone, never the segment (it
 * holds other messages and is writable). Returns QUEUE_LOCAL_UNKNOWN when
 * the delivery may have happened despite the TEMPFAIL in *res. */
static int qjob_deliver_one(struct qjob *j, uint32_t i, int fd, struct result *res)
{
    const char *addr = j->env.rcpts[i].addr;
    struct store_slot *s = &j->slots[i];
    char path[4096];
    if (qjob_maildir_path(j, i, path, sizeof path, res) < 0)
        return QUEUE_LOCAL_KNOWN;
    if (j->q->local && j->local_fd < 0) {
        j->local_fd = qjob_content_copy(j, fd);
        if (j->local_fd < 0) {
            result_set(res, RESULT_TEMPFAIL, 451, "4.3.0", "cannot copy the message: %s",
                       strerror(-j->local_fd));
            return QUEUE_LOCAL_KNOWN;
        }
    }
    struct queue_local_req req = {
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
        return QUEUE_LOCAL_KNOWN;
    }
    if (j->q->local)
        return j->q->local(j->q->local_arg, &req, res);
    queue_local_deliver(&req, res);
    return QUEUE_LOCAL_KNOWN;
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
    j->t_start_us = queue_now_us();
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
        r->t0_us = queue_now_us();
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
            r->unknown = qjob_deliver_one(j, i, fd, &r->res) == QUEUE_LOCAL_UNKNOWN &&
                         r->res.kind == RESULT_TEMPFAIL;
        if (r->res.kind == RESULT_OK)
            qjob_record_done(j, i, fd);
        r->t1_us = queue_now_us();
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

static void qjob_free(struct qjob *j)
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

static uint32_t queue_jitter(void)
{
    uint64_t x = queue_now_us();
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 32;
    return (uint32_t)x;
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

/* Applies the outcome of attempt j->r[k] to its recipient's slot. */
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

static void qjob_apply(struct queue *q, struct qmsg *m, struct qjob *j, size_t k, int64_t now)
{
    const struct config *cfg = q->cfg;
    int64_t age = now - (int64_t)(j->rec.arrival_us / 1000000u);
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
    case RESULT_TEMPFAIL:
        if (age >= (int64_t)cfg->queue_lifetime) {
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
        } else {
            s->next_attempt =
                now + sched_backoff(cfg->retry_min, cfg->retry_max, s->attempts,
                                    queue_jitter());
            q->stats.deferred++;
            queue_log_result(j, r, "deferred", NULL);
            if (cfg->delay_warning && age >= (int64_t)cfg->delay_warning &&
                !(s->flags & STORE_SLOT_WARNED)) {
                s->flags |= STORE_SLOT_WARNED;
                qjob_note(&j->delayed, &j->ndelayed, j->nr, k);
            }
        }
        break;
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

/* The host part of "host[addr]:port", for Remote-MTA. */
static void qjob_remote_mta(const char *relay, char *out, size_t n)
{
    size_t l = strcspn(relay, "[");
    if (l >= n)
        l = n - 1;
    memcpy(out, relay, l);
    out[l] = '\0';
}

/* A notification to the sender about entries[0..n) of j, all with the
 * same action (RFC 3461 NOTIFY decides who is named; never to <>). */
static void qjob_notify(struct queue *q, struct qjob *j, const size_t *entries, size_t count,
                        enum dsn_action what)
{
    struct dsn_rcpt *dr = xcalloc(count, sizeof *dr);
    char (*mta)[128] = xcalloc(count, sizeof *mta);
    char (*diag)[300] = xcalloc(count, sizeof *diag);
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        const struct qjob_rcpt *r = &j->r[entries[i]];
        const struct envelope_rcpt *rc = &j->env.rcpts[r->idx];
        enum dsn_action action = what == DSN_ACTION_DELIVERED && r->remote ? DSN_ACTION_RELAYED
                                                                           : what;
        /* Our own failed notification goes to postmaster (bounce.h);
         * everything else as RFC 3461 says. */
        int ours = action == DSN_ACTION_FAILED && j->env.client_name &&
                   !strcmp(j->env.client_name, BOUNCE_MARK);
        if (!ours && !dsn_should_send(&j->env, rc, action))
            continue;
        /* The remote server's own reply when there was one (RFC 3464
         * §2.3.6): smtp_client words it "host H said: REPLY (in reply to
         * CMD)"; anything else is tern's own diagnostic. */
        const char *said = strstr(r->res.text, " said: ");
        int remote = r->remote && strcmp(r->relay, "none") != 0 && said != NULL;
        if (remote) {
            qjob_remote_mta(r->relay, mta[n], sizeof mta[n]);
            said += 7;
            const char *end = strstr(said, " (in reply to ");
            int len = end ? (int)(end - said) : (int)strlen(said);
            snprintf(diag[n], sizeof diag[n], "%.*s", len, said);
        } else {
            snprintf(diag[n], sizeof diag[n], "%d %s %s", r->res.code, r->res.enh, r->res.text);
        }
        dr[n] = (struct dsn_rcpt){
            .addr = rc->addr,
            .orcpt = rc->orcpt,
            .action = action,
            .status = r->res.enh,
            .diag = diag[n],
            .diag_type = remote ? "smtp" : "x-tern",
            .remote_mta = remote ? mta[n] : NULL,
            .last_attempt = (time_t)(r->t1_us / 1000000u),
            .retry_until = action == DSN_ACTION_DELAYED
                               ? (time_t)(j->rec.arrival_us / 1000000u) + q->cfg->queue_lifetime
                               : 0,
        };
        n++;
    }
    if (n > 0) {
        size_t len = j->rec.content_len > BOUNCE_FULL_MAX ? BOUNCE_FULL_MAX
                                                          : (size_t)j->rec.content_len;
        char *content = xmalloc(len + 1);
        int fd = open(j->segpath, O_RDONLY | O_CLOEXEC);
        int rc = fd < 0 ? -errno
                        : fsio_pread_all(fd, content, len, (off_t)store_content_off(&j->rec));
        if (fd >= 0)
            close(fd);
        if (rc == 0)
            rc = queue_bounce(q, &j->env, content, len, len < j->rec.content_len, dr, n);
        if (rc < 0)
            log_err("%s: cannot queue the notification to the sender: %s", j->rec.qid,
                    strerror(-rc));
        free(content);
    }
    free(dr);
    free(mta);
    free(diag);
}

/* Every attempt of job j has its outcome: reschedule or finish. */
static void qjob_finalize(struct queue *q, struct qmsg *m, struct qjob *j)
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
        int rc = queue_msg_write_hold(q, m, j->slots, 1);
        if (rc < 0)
            log_err("%s: cannot record the hold in the spool: %s", m->rec.qid, strerror(-rc));
    } else if (m->next_attempt == INT64_MAX) {
        m->state = QM_WAITING; /* every pending destination paused: resume schedules */
    } else {
        queue_run_schedule(q, m);
    }
    qjob_free(j);
}

/* Hands the remote recipients of j to the relay transport, one request
 * per domain. Returns the number of requests in flight; recipients that
 * could not be handed over are answered (deferred) at once. */
static unsigned qjob_relay(struct queue *q, struct qmsg *m, struct qjob *j, int64_t now)
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
            idmap_put(&q->relays, id, qr);
            sent++;
            continue;
        }
        for (size_t i = 0; i < qr->n; i++) {
            struct qjob_rcpt *r = &j->r[qr->entries[i]];
            result_set(&r->res, RESULT_TEMPFAIL, 451, "4.4.0",
                       q->relay ? "cannot reach the relay transport"
                                : "no transport for remote domains");
            r->t1_us = queue_now_us();
            qjob_apply(q, m, j, qr->entries[i], now);
        }
        free(qr->entries);
        free(qr);
    }
    free(done);
    return sent;
}

static void qjob_done(struct queue *q, struct qjob *j)
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
        m->next_attempt = now + sched_backoff(cfg->retry_min, cfg->retry_max, 1, queue_jitter());
        queue_run_schedule(q, m);
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

void queue_run_drop_relays(struct queue *q)
{
    /* Unanswered recipients stay pending in the spool: retried after the
     * restart. */
    for (size_t i = 0; i < q->relays.cap; i++) {
        if (!q->relays.keys || !q->relays.keys[i])
            continue;
        struct qrelay *qr = q->relays.vals[i];
        if (--qr->job->relays_out == 0)
            qjob_free(qr->job);
        free(qr->entries);
        free(qr);
    }
    idmap_free(&q->relays);
    idmap_init(&q->relays);
}

void queue_set_local(struct queue *q, queue_local_fn fn, void *arg, uint32_t pid)
{
    q->local = fn;
    q->local_arg = arg;
    q->local_pid = pid;
}

void queue_set_relay(struct queue *q, queue_relay_fn fn, void *arg)
{
    q->relay = fn;
    q->relay_arg = arg;
}

void queue_relay_done(struct queue *q, uint64_t id, const struct result *res, size_t n,
                      const char *relay, int peer_dsn)
{
    struct qrelay *qr = idmap_get(&q->relays, id);
    if (qr == NULL) {
        log_warn("relay result for unknown request %llu", (unsigned long long)id);
        return;
    }
    idmap_del(&q->relays, id);
    struct qjob *j = qr->job;
    struct qmsg *m = idmap_get(&q->msgs, j->key);
    int64_t now = clock_wall();
    for (size_t i = 0; i < qr->n; i++) {
        struct qjob_rcpt *r = &j->r[qr->entries[i]];
        if (i < n)
            r->res = res[i];
        else
            result_set(&r->res, RESULT_TEMPFAIL, 451, "4.4.0", "no result from the relay");
        strutil_lcpy(r->relay, relay, sizeof r->relay);
        r->peer_dsn = peer_dsn;
        r->t1_us = queue_now_us();
        if (m)
            qjob_apply(q, m, j, qr->entries[i], now);
    }
    free(qr->entries);
    free(qr);
    if (--j->relays_out == 0 && m) {
        qjob_finalize(q, m, j);
        /* A slot is free: due messages must not wait for the next arrival. */
        queue_run_dispatch(q);
    }
}

static void queue_on_run_timer(struct ev_loop *loop, void *arg)
{
    struct queue *q = arg;
    q->run_timer = 0;
    queue_run_dispatch(q);
}

/* Arms the timer for the earliest heap entry when threads are free to
 * take it (when they are not, the next result dispatches). */
static void queue_run_arm(struct queue *q)
{
    struct sched_ent e;
    if (q->closing || q->inflight >= q->max_inflight || sched_peek(&q->sched, &e) < 0)
        return;
    if (q->run_timer && q->run_timer_when <= e.when)
        return;
    ev_timer_cancel(q->loop, q->run_timer);
    uint64_t now_ms = queue_now_us() / 1000u;
    uint64_t due_ms = e.when > 0 ? (uint64_t)e.when * 1000u : 0;
    q->run_timer = ev_timer_add(q->loop, due_ms > now_ms ? due_ms - now_ms : 0,
                                queue_on_run_timer, q);
    q->run_timer_when = e.when;
}

void queue_run_schedule(struct queue *q, struct qmsg *m)
{
    m->state = QM_WAITING;
    sched_push(&q->sched, m->next_attempt, queue_qid_key(m->rec.qid));
    queue_run_arm(q);
}

/* Makes the job for message m; returns it for the caller to submit. */
static struct qjob *queue_run_job(struct queue *q, struct qmsg *m, uint64_t key)
{
    struct qjob *j = xcalloc(1, sizeof *j);
    char path[4096];
    if (store_seg_path(q->st, m->rec.seg, path, sizeof path) < 0)
        fatal("%s: segment path too long", m->rec.qid);
    j->pj.run = qjob_run;
    j->q = q;
    j->qcfg = queue_cfg_take(q);
    j->cfg = j->qcfg->cfg;
    j->key = key;
    j->rec = m->rec;
    j->segpath = xstrdup(path);
    j->t_queued_us = queue_now_us();
    j->content_fd = -1;
    j->local_fd = -1;
    j->paused = queue_paused_ref(q->paused);
    envelope_init(&j->env);
    m->state = QM_RUNNING;
    q->inflight++;
    return j;
}

void queue_run_dispatch(struct queue *q)
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
        struct qjob *j = queue_run_job(q, m, e.key);
        j->pj.next = NULL;
        *tail = &j->pj;
        tail = &j->pj.next;
    }
    if (head)
        pool_submit(q->pool, head);
    queue_run_arm(q);
}

void queue_run_on_pool(struct ev_loop *loop, int fd, unsigned events, void *arg)
{
    struct queue *q = arg;
    struct pool_job *pj;
    while ((pj = pool_reap(q->pool)) != NULL)
        qjob_done(q, (struct qjob *)pj);
    queue_run_dispatch(q);
}

void queue_run_stop(struct queue *q)
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
