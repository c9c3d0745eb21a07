#include "proc/queue_proc.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/idmap.h"
#include "base/log.h"
#include "base/sizes.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "ev/loop.h"
#include "ipc/ipc.h"
#include "ipc/ipc_types.h"
#include "mail/envelope.h"
#include "mail/hdrfield.h"
#include "mailauth/dmarc_report.h"
#include "proc/control.h"
#include "proc/deliver_client.h"
#include "proc/dkim_keys.h"
#include "proc/metrics_http.h"
#include "proc/privsep.h"
#include "proc/queue_auth.h"
#include "proc/queue_dkim.h"
#include "proc/queue_dmarc.h"
#include "queue/pickup.h"
#include "queue/queue.h"

/* The channel of one smtp process. A reload starts a new smtp process
 * while the old one drains: both talk to us for a while, and every answer
 * goes back on the channel its request came from. */
struct qchan {
    uint64_t id;
    struct qproc *qp;
    struct ipc_chan *ipc; /* owned */
    struct qchan *next_dead;
};

struct qproc {
    const struct config *cfg;    /* the current settings */
    const struct config *boot;   /* the settings of the fork (not ours to free) */
    struct ev_loop *loop;
    struct idmap chans;          /* id -> struct qchan (owned) */
    struct qchan *cur;           /* the newest smtp process: relays go there */
    struct queue_dkim *dkim;     /* the signing keys (owned) */
    struct qchan *dead;          /* closed, freed before the loop sleeps */
    uint64_t next_chan;
    struct idmap relay_chan;     /* relay request id -> channel id (as a pointer) */
    struct idmap auths;          /* our AUTH request id -> struct qproc_auth (owned) */
    uint64_t next_auth;
    struct ipc_chan *parent;     /* reloads and new channels come this way */
    struct queue *queue;
    struct queue_auth *auth;
    struct control *control;
    struct pickup *pickup;
    struct deliver_client *deliver; /* the delivery process's channels */
    struct queue_dmarc *dmarc;   /* DMARC report rows; NULL: not kept */
    uint64_t room;               /* the spool room last told the smtp processes */
};

/* The spool's free space is looked at this often and told to the smtp
 * processes when it changed: they refuse MAIL with 452 when it is gone
 * (they are chrooted and cannot look), without a round trip per MAIL.
 * The figure may be a second old; durability never depends on it (the
 * commit checks again). */
#define QPROC_ROOM_MS 1000

/* An AUTH check: who asked, under which id. */
struct qproc_auth {
    uint64_t chan;
    uint64_t req;
};

static int qproc_send(struct qproc *qp, uint64_t chan, unsigned type, const struct buf *b,
                      int fd)
{
    struct qchan *c = idmap_get(&qp->chans, chan);
    return c ? ipc_send(c->ipc, type, b, fd) : -ENOTCONN;
}

/* The queue's relay transport: the net process's SMTP client. */
static int qproc_relay(void *arg, const struct queue_relay_req *req)
{
    struct qproc *qp = arg;
    struct buf e = BUF_INIT, b = BUF_INIT;
    envelope_serialize(req->env, &e);
    ipc_put_u64(&b, req->id);
    ipc_put_str(&b, req->domain);
    ipc_put_u64(&b, req->len);
    ipc_put_bytes(&b, e.data, e.len);
    int rc = qp->cur ? ipc_send(qp->cur->ipc, IPC_RELAY, &b, req->fd) : -ENOTCONN;
    if (rc == 0)
        idmap_put(&qp->relay_chan, req->id, (void *)(uintptr_t)qp->cur->id);
    buf_free(&e);
    buf_free(&b);
    return rc;
}

/* IPC_RELAY_DONE: every field is checked, the net process is untrusted.
 * An answer for a request of this channel that cannot be read defers the
 * request's recipients (a dropped answer would hold the message's
 * delivery slot until the deadline); one without even an id is left to
 * the deadline (queue_relay.c). Returns 0, -EBADMSG for an answer that
 * does not read, or -ENOENT for an id this channel did not ask. */
static int qproc_relay_done(struct qproc *qp, struct qchan *ch, struct ipc_rd *r)
{
    uint64_t id = ipc_get_u64(r);
    if (r->err)
        return -EBADMSG;
    void *owner = idmap_get(&qp->relay_chan, id);
    if (owner == NULL || (uint64_t)(uintptr_t)owner != ch->id)
        return -ENOENT;
    char relay[RELAY_NAME_MAX];
    ipc_get_str(r, relay, sizeof relay);
    /* It reaches logs and the Remote-MTA field of notices: one word. */
    for (const char *c = relay; *c; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c > 0x7e)
            r->err = 1;
    uint32_t peer_dsn = ipc_get_u32(r);
    uint32_t n = ipc_get_u32(r);
    if (n > ENVELOPE_MAX_RCPTS)
        r->err = 1;
    struct result *res = xcalloc(!r->err && n ? n : 1, sizeof *res);
    for (uint32_t i = 0; i < n && !r->err; i++)
        ipc_get_result(r, &res[i]);
    idmap_del(&qp->relay_chan, id);
    int rc = ipc_rd_end(r);
    if (rc < 0) {
        log_err("ipc: unreadable relay answer %llu from the smtp process; deferred",
                (unsigned long long)id);
        queue_relay_done(qp->queue, id, NULL, 0, "none", 0);
    } else {
        queue_relay_done(qp->queue, id, res, n, relay, peer_dsn != 0);
    }
    free(res);
    return rc;
}

static void qproc_auth_done(void *arg, uint64_t id, int result)
{
    struct qproc *qp = arg;
    struct qproc_auth *a = idmap_del(&qp->auths, id);
    if (a == NULL)
        return;
    struct buf b = BUF_INIT;
    ipc_put_u64(&b, a->req);
    ipc_put_i32(&b, result);
    /* A lost answer: the client times out. */
    (void)qproc_send(qp, a->chan, IPC_AUTH_RESULT, &b, -1);
    buf_free(&b);
    free(a);
}

/* Remembers who asked for a commit until the queue answers. */
struct qproc_commit {
    struct qproc *qp;
    uint64_t chan;
    uint64_t req;
};

static void qproc_committed(void *arg, const char *qid, const struct result *res)
{
    struct qproc_commit *pc = arg;
    struct buf b = BUF_INIT;
    ipc_put_u64(&b, pc->req);
    ipc_put_str(&b, qid);
    ipc_put_result(&b, res);
    if (qproc_send(pc->qp, pc->chan, IPC_COMMITTED, &b, -1) < 0)
        log_warn("%s: cannot report the commit to the smtp process", qid);
    buf_free(&b);
    free(pc);
}

static void qproc_body_open(struct qproc *qp, struct qchan *ch, uint64_t req)
{
    char qid[ENVELOPE_QID_MAX + 1];
    int fd = -1;
    struct buf b = BUF_INIT;
    ipc_put_u64(&b, req);
    int rc = queue_body_open(qp->queue, qid, &fd);
    if (rc == 0) {
        ipc_put_str(&b, qid);
        rc = ipc_send(ch->ipc, IPC_BODY_OPENED, &b, fd);
        close(fd);
        if (rc < 0)
            queue_body_abort(qp->queue, qid);
    } else {
        log_warn("cannot create a queue file: %s", strerror(-rc));
        ipc_put_i32(&b, rc);
        (void)ipc_send(ch->ipc, IPC_BODY_FAILED, &b, -1);
    }
    buf_free(&b);
}

static void qproc_commit(struct qproc *qp, struct qchan *ch, uint64_t req, const char *qid,
                         const char *envp, size_t envlen, const char *pre, size_t prelen)
{
    struct envelope env;
    envelope_init(&env);
    int rc = envelope_parse(envp, envlen, &env);
    if (rc == 0 && (strcmp(env.qid, qid) != 0 || env.nrcpts == 0))
        rc = -EBADMSG;
    /* Fields above the message: whole lines that cannot end its header
     * early or slip a line of their own in. */
    if (rc == 0 && prelen > 0 && !hdrfield_block_ok(pre, prelen))
        rc = -EBADMSG;
    if (rc < 0) {
        log_err("%s: malformed envelope from the smtp process", strutil_esc(qid));
        queue_body_abort(qp->queue, qid);
    }
    struct qproc_commit *pc = xcalloc(1, sizeof *pc);
    pc->qp = qp;
    pc->chan = ch->id;
    pc->req = req;
    struct result why;
    if (rc < 0)
        result_spool_error(&why, -EPROTO);
    else
        rc = queue_commit(qp->queue, qid, &env, pre, prelen, qproc_committed, pc, &why);
    envelope_clear(&env);
    if (rc < 0)
        qproc_committed(pc, qid, &why);
}

static void qproc_send_room(struct qchan *ch, uint64_t room)
{
    struct buf b = BUF_INIT;
    ipc_put_u64(&b, room);
    if (ipc_send(ch->ipc, IPC_SPOOL_ROOM, &b, -1) < 0)
        log_warn("cannot tell an smtp process the spool's free space");
    buf_free(&b);
}

static void qproc_on_room_timer(struct ev_loop *loop, void *arg)
{
    struct qproc *qp = arg;
    uint64_t room = queue_spool_room(qp->queue);
    if (room != qp->room) {
        if (room == 0)
            log_warn("spool: full (less than queue_minfree free): new mail is refused");
        else if (qp->room == 0)
            log_info("spool: room again; mail is accepted");
        qp->room = room;
        for (size_t i = 0; i < qp->chans.cap; i++)
            if (qp->chans.keys && qp->chans.keys[i])
                qproc_send_room(qp->chans.vals[i], room);
    }
    ev_timer_add(loop, QPROC_ROOM_MS, qproc_on_room_timer, qp);
}

static void qproc_on_ipc(struct ipc_chan *ipc, struct ipc_msg *m, void *arg)
{
    struct qchan *ch = arg;
    struct qproc *qp = ch->qp;
    struct ipc_rd r;
    ipc_rd_init(&r, m);
    char qid[ENVELOPE_QID_MAX + 1];
    if (m->fd >= 0) {
        /* The net process never sends descriptors. */
        close(m->fd);
        m->fd = -1;
        log_err("ipc: unexpected descriptor from the smtp process");
        return;
    }
    switch (m->type) {
    case IPC_BODY_OPEN: {
        uint64_t req = ipc_get_u64(&r);
        if (ipc_rd_end(&r) < 0)
            break;
        qproc_body_open(qp, ch, req);
        return;
    }
    case IPC_COMMIT: {
        uint64_t req = ipc_get_u64(&r);
        ipc_get_str(&r, qid, sizeof qid);
        size_t envlen, prelen;
        const char *envp = ipc_get_bytes(&r, &envlen, IPC_MAX_PAYLOAD);
        const char *pre = ipc_get_bytes(&r, &prelen, QUEUE_PREFIX_MAX);
        if (ipc_rd_end(&r) < 0)
            break;
        qproc_commit(qp, ch, req, qid, envp, envlen, pre, prelen);
        return;
    }
    case IPC_AUTH_CHECK: {
        uint64_t req = ipc_get_u64(&r);
        char user[AUTH_USER_MAX];
        ipc_get_str(&r, user, sizeof user);
        size_t pwlen;
        const char *pw = ipc_get_bytes(&r, &pwlen, 1024);
        if (ipc_rd_end(&r) < 0)
            break;
        struct qproc_auth *a = xcalloc(1, sizeof *a);
        a->chan = ch->id;
        a->req = req;
        uint64_t id = ++qp->next_auth;
        idmap_put(&qp->auths, id, a);
        queue_auth_check(qp->auth, id, user, pw, pwlen);
        return;
    }
    case IPC_RELAY_DONE:
        if (qproc_relay_done(qp, ch, &r) < 0)
            break;
        return;
    case IPC_DMARC_ROW: {
        size_t n;
        const char *row = ipc_get_bytes(&r, &n, DMARC_REPORT_LINE_MAX);
        if (ipc_rd_end(&r) < 0)
            break;
        queue_dmarc_row(qp->dmarc, row, n, (long long)clock_wall());
        return;
    }
    case IPC_ABORT:
        ipc_get_str(&r, qid, sizeof qid);
        if (ipc_rd_end(&r) < 0)
            break;
        queue_body_abort(qp->queue, qid);
        return;
    default:
        break;
    }
    log_err("ipc: unexpected or malformed message type %u from the smtp process", m->type);
}

/* Relays handed to a channel that closed get no answer any more: they
 * are deferred like any delivery without a result. */
static void qproc_fail_relays(struct qproc *qp, uint64_t chan)
{
    for (size_t i = 0; i < qp->relay_chan.cap; i++) {
        uint64_t id = qp->relay_chan.keys ? qp->relay_chan.keys[i] : 0;
        if (id == 0 || (uint64_t)(uintptr_t)qp->relay_chan.vals[i] != chan)
            continue;
        idmap_del(&qp->relay_chan, id);
        queue_relay_done(qp->queue, id, NULL, 0, "none", 0);
        i = (size_t)-1; /* the table may have moved entries: look again */
    }
}

static void qproc_on_ipc_close(struct ipc_chan *ipc, int err, void *arg)
{
    struct qchan *ch = arg;
    struct qproc *qp = ch->qp;
    idmap_del(&qp->chans, ch->id);
    ch->next_dead = qp->dead;
    qp->dead = ch;
    qproc_fail_relays(qp, ch->id);
    if (ch != qp->cur) {
        log_info("a draining smtp process finished");
        return;
    }
    /* The parent restarts both processes; committed mail is safe. */
    qp->cur = NULL;
    if (err)
        log_warn("lost the smtp process (%s); stopping", strerror(-err));
    else
        log_info("the smtp process closed its channel; stopping");
    ev_loop_stop(qp->loop);
}

static void qproc_reap(struct ev_loop *loop, void *arg)
{
    struct qproc *qp = arg;
    while (qp->dead) {
        struct qchan *ch = qp->dead;
        qp->dead = ch->next_dead;
        ipc_chan_free(ch->ipc);
        free(ch);
    }
}

static struct qchan *qproc_chan_add(struct qproc *qp, int fd)
{
    struct qchan *ch = xcalloc(1, sizeof *ch);
    ch->id = ++qp->next_chan;
    ch->qp = qp;
    ch->ipc = ipc_chan_new(qp->loop, fd, qproc_on_ipc, qproc_on_ipc_close, ch);
    idmap_put(&qp->chans, ch->id, ch);
    qp->cur = ch;
    qproc_send_room(ch, qp->room);
    return ch;
}

/* ---- reloads (SIGHUP, through the parent) ---- */

static void qproc_config_release(void *arg, const struct config *old)
{
    struct qproc *qp = arg;
    if (old == qp->boot)
        return;
    config_free((struct config *)old);
    free((struct config *)old);
}

/* Reads the configuration file again. What only a restart can change
 * (the spool, the control socket, the users) keeps its old value. */
static void qproc_reload(struct qproc *qp, const char *keys, size_t keys_len)
{
    const struct config *old = qp->cfg;
    if (old->path == NULL && old->spool_dir == NULL)
        return;
    struct config *nc = xcalloc(1, sizeof *nc);
    config_default(nc);
    struct buf err = BUF_INIT;
    int rc = old->path ? config_load(nc, old->path, &err) : config_load_default_tables(nc, &err);
    if (rc < 0) {
        log_err("reload: configuration not reloaded: %s", err.data ? err.data : "");
        buf_free(&err);
        config_free(nc);
        free(nc);
        return;
    }
    struct dkim_keyring ring;
    if (dkim_keys_build(nc, keys, keys_len, &ring, &err) < 0) {
        log_err("reload: configuration not reloaded: DKIM keys: %s", err.data);
        buf_free(&err);
        config_free(nc);
        free(nc);
        return;
    }
    buf_free(&err);
    free(nc->spool_dir);
    nc->spool_dir = xstrdup(old->spool_dir);
    free(nc->control_socket);
    nc->control_socket = old->control_socket ? xstrdup(old->control_socket) : NULL;
    qp->cfg = nc;
    queue_auth_set_config(qp->auth, nc);
    if (qp->pickup)
        pickup_set_config(qp->pickup, nc);
    queue_dkim_set(qp->dkim, nc, &ring);
    queue_set_config(qp->queue, nc, qproc_config_release, qp);
    log_info("reload: configuration, aliases and users read again");
}

static void qproc_on_parent(struct ipc_chan *ipc, struct ipc_msg *m, void *arg)
{
    struct qproc *qp = arg;
    if (m->type == IPC_RELOAD && m->fd < 0) {
        /* The payload is the DKIM keys of the new configuration. */
        qproc_reload(qp, m->payload, m->len);
        memset((void *)m->payload, 0, m->len); /* ours: the channel's buffer */
        return;
    }
    if (m->type == IPC_NET_CHANNEL && m->fd >= 0) {
        qproc_chan_add(qp, m->fd);
        m->fd = -1;
        log_info("a new smtp process is connected");
        return;
    }
    if (m->fd >= 0)
        close(m->fd);
    log_err("ipc: unexpected message type %u from the parent", m->type);
}

static void qproc_on_parent_close(struct ipc_chan *ipc, int err, void *arg)
{
    /* The parent's death ends us anyway (PR_SET_PDEATHSIG). */
    log_debug("the parent's channel closed");
}

static void qproc_on_signal(struct ev_loop *loop, int signo, void *arg)
{
    ev_loop_stop(loop);
}

int queue_proc_main(const struct config *cfg, int ipc_fd, int parent_fd, const int *dfds,
                    size_t nd, pid_t deliver_pid, struct buf *dkim_keys)
{
    log_set_ident("tern/qmgr");
    signal(SIGPIPE, SIG_IGN);
    /* Started as root: the parent gave the spool to the daemon's user. */
    if (privsep_drop(cfg->run_user) < 0) {
        for (size_t i = 0; i < nd; i++)
            close(dfds[i]);
        return 1;
    }
    struct qproc qp = {0};
    qp.cfg = qp.boot = cfg;
    struct dkim_keyring ring;
    struct buf kerr = BUF_INIT;
    int krc = dkim_keys_build(cfg, dkim_keys->data, dkim_keys->len, &ring, &kerr);
    buf_wipe(dkim_keys);
    if (krc < 0) {
        log_err("DKIM keys: %s", kerr.data);
        buf_free(&kerr);
        return 1;
    }
    buf_free(&kerr);
    qp.dkim = queue_dkim_new();
    queue_dkim_set(qp.dkim, cfg, &ring);
    qp.loop = ev_loop_new();
    idmap_init(&qp.chans);
    idmap_init(&qp.relay_chan);
    idmap_init(&qp.auths);
    /* Before any thread: binding a long socket path goes through /proc. */
    qp.control = control_new(qp.loop, cfg);
    if (qp.control == NULL) {
        ev_loop_free(qp.loop);
        return 1;
    }
    qp.queue = queue_new(qp.loop, cfg);
    if (qp.queue == NULL) {
        control_free(qp.control);
        ev_loop_free(qp.loop);
        return 1;
    }
    control_set_queue(qp.control, qp.queue);
    qp.room = queue_spool_room(qp.queue);
    if (qp.room == 0)
        log_warn("spool: full (less than queue_minfree free): new mail is refused");
    ev_timer_add(qp.loop, QPROC_ROOM_MS, qproc_on_room_timer, &qp);
    qp.deliver = deliver_client_new(dfds, nd);
    queue_set_local(qp.queue, deliver_client_run, qp.deliver, (uint32_t)deliver_pid);
    qproc_chan_add(&qp, ipc_fd);
    qp.parent = ipc_chan_new(qp.loop, parent_fd, qproc_on_parent, qproc_on_parent_close, &qp);
    ev_hook_add(qp.loop, qproc_reap, &qp);
    queue_set_relay(qp.queue, qproc_relay, &qp);
    queue_set_signer(qp.queue, queue_dkim_sign, qp.dkim);
    /* Prometheus (metrics_listen): counters and the endpoint, if set. */
    struct metrics_http *metrics = metrics_http_start(qp.loop, qp.queue);
    /* What `tern sendmail` left while we were down, then what comes; without
     * it (logged) the daemon still serves SMTP. */
    qp.pickup = pickup_new(qp.loop, qp.queue, cfg);
    qp.dmarc = queue_dmarc_new(cfg);
    qp.auth = queue_auth_new(qp.loop, cfg, qproc_auth_done, &qp);
    if (qp.auth == NULL)
        return 1;
    ev_signal_add(qp.loop, SIGTERM, qproc_on_signal, &qp);
    ev_signal_add(qp.loop, SIGINT, qproc_on_signal, &qp);
    int rc = ev_loop_run(qp.loop);
    queue_auth_free(qp.auth);
    control_free(qp.control);
    pickup_free(qp.pickup);
    queue_dmarc_free(qp.dmarc);
    metrics_http_free(metrics);
    queue_free(qp.queue); /* hands back every old config */
    queue_dkim_free(qp.dkim);
    deliver_client_free(qp.deliver);
    qproc_config_release(&qp, qp.cfg);
    for (size_t i = 0; i < qp.chans.cap; i++) {
        if (qp.chans.keys && qp.chans.keys[i]) {
            struct qchan *ch = qp.chans.vals[i];
            ch->next_dead = qp.dead;
            qp.dead = ch;
        }
    }
    qproc_reap(qp.loop, &qp);
    for (size_t i = 0; i < qp.auths.cap; i++)
        if (qp.auths.keys && qp.auths.keys[i])
            free(qp.auths.vals[i]);
    idmap_free(&qp.auths);
    idmap_free(&qp.chans);
    idmap_free(&qp.relay_chan);
    ipc_chan_free(qp.parent);
    ev_loop_free(qp.loop);
    return rc < 0 ? 1 : 0;
}
