/* queue_proc.c: the IPC server side of the queue process. Every field the
 * net process sends is checked: a compromised net process is hostile. */
#include "proc/queue_proc.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "ev/loop.h"
#include "ipc/ipc.h"
#include "ipc/ipc_types.h"
#include "mail/envelope.h"
#include "proc/control.h"
#include "proc/metrics_http.h"
#include "proc/queue_auth.h"
#include "queue/pickup.h"
#include "queue/queue.h"

struct qproc {
    const struct config *cfg;
    struct ev_loop *loop;
    struct ipc_chan *ipc;
    struct queue *queue;
    struct queue_auth *auth;
    struct control *control;
};

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
    int rc = ipc_send(qp->ipc, IPC_RELAY, &b, req->fd);
    buf_free(&e);
    buf_free(&b);
    return rc;
}

/* IPC_RELAY_DONE: every field is checked, the net process is untrusted. */
static int qproc_relay_done(struct qproc *qp, struct ipc_rd *r)
{
    uint64_t id = ipc_get_u64(r);
    char relay[128];
    ipc_get_str(r, relay, sizeof relay);
    uint32_t peer_dsn = ipc_get_u32(r);
    uint32_t n = ipc_get_u32(r);
    if (r->err || n > ENVELOPE_MAX_RCPTS)
        return -1;
    struct result *res = xcalloc(n ? n : 1, sizeof *res);
    for (uint32_t i = 0; i < n && !r->err; i++) {
        uint32_t kind = ipc_get_u32(r);
        int32_t code = ipc_get_i32(r);
        ipc_get_str(r, res[i].enh, sizeof res[i].enh);
        ipc_get_str(r, res[i].text, sizeof res[i].text);
        if (kind > RESULT_PERMFAIL || code < 200 || code > 599)
            r->err = 1;
        res[i].kind = (enum result_kind)kind;
        res[i].code = code;
    }
    if (ipc_rd_end(r) < 0) {
        free(res);
        return -1;
    }
    queue_relay_done(qp->queue, id, res, n, relay, peer_dsn != 0);
    free(res);
    return 0;
}

static void qproc_auth_done(void *arg, uint64_t req, int result)
{
    struct qproc *qp = arg;
    struct buf b = BUF_INIT;
    ipc_put_u64(&b, req);
    ipc_put_i32(&b, result);
    (void)ipc_send(qp->ipc, IPC_AUTH_RESULT, &b, -1); /* a lost answer: the client times out */
    buf_free(&b);
}

/* Remembers who asked for a commit until the queue answers. */
struct qproc_commit {
    struct qproc *qp;
    uint64_t req;
};

static void qproc_committed(void *arg, const char *qid, int status)
{
    struct qproc_commit *pc = arg;
    struct buf b = BUF_INIT;
    ipc_put_u64(&b, pc->req);
    ipc_put_str(&b, qid);
    ipc_put_i32(&b, status);
    if (ipc_send(pc->qp->ipc, IPC_COMMITTED, &b, -1) < 0)
        log_warn("%s: cannot report the commit to the smtp process", qid);
    buf_free(&b);
    free(pc);
}

static void qproc_body_open(struct qproc *qp, uint64_t req)
{
    char qid[ENVELOPE_QID_MAX + 1];
    int fd = -1;
    struct buf b = BUF_INIT;
    ipc_put_u64(&b, req);
    int rc = queue_body_open(qp->queue, qid, &fd);
    if (rc == 0) {
        ipc_put_str(&b, qid);
        rc = ipc_send(qp->ipc, IPC_BODY_OPENED, &b, fd);
        close(fd);
        if (rc < 0)
            queue_body_abort(qp->queue, qid);
    } else {
        log_warn("cannot create a queue file: %s", strerror(-rc));
        ipc_put_i32(&b, rc);
        (void)ipc_send(qp->ipc, IPC_BODY_FAILED, &b, -1);
    }
    buf_free(&b);
}

static void qproc_commit(struct qproc *qp, uint64_t req, const char *qid, const char *envp,
                         size_t envlen)
{
    struct envelope env;
    envelope_init(&env);
    int rc = envelope_parse(envp, envlen, &env);
    if (rc == 0 && strcmp(env.qid, qid) != 0)
        rc = -1;
    if (rc == 0 && env.nrcpts == 0)
        rc = -1;
    if (rc < 0) {
        log_err("%s: malformed envelope from the smtp process", qid);
        queue_body_abort(qp->queue, qid);
        envelope_clear(&env);
        struct qproc_commit *pc = xcalloc(1, sizeof *pc);
        pc->qp = qp;
        pc->req = req;
        qproc_committed(pc, qid, -EPROTO);
        return;
    }
    struct qproc_commit *pc = xcalloc(1, sizeof *pc);
    pc->qp = qp;
    pc->req = req;
    rc = queue_commit(qp->queue, qid, &env, qproc_committed, pc);
    envelope_clear(&env);
    if (rc < 0)
        qproc_committed(pc, qid, rc);
}

static void qproc_on_ipc(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
    struct qproc *qp = arg;
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
        qproc_body_open(qp, req);
        return;
    }
    case IPC_COMMIT: {
        uint64_t req = ipc_get_u64(&r);
        ipc_get_str(&r, qid, sizeof qid);
        size_t envlen;
        const char *envp = ipc_get_bytes(&r, &envlen, IPC_MAX_PAYLOAD);
        if (ipc_rd_end(&r) < 0)
            break;
        qproc_commit(qp, req, qid, envp, envlen);
        return;
    }
    case IPC_AUTH_CHECK: {
        uint64_t req = ipc_get_u64(&r);
        char user[256];
        ipc_get_str(&r, user, sizeof user);
        size_t pwlen;
        const char *pw = ipc_get_bytes(&r, &pwlen, 1024);
        if (ipc_rd_end(&r) < 0)
            break;
        queue_auth_check(qp->auth, req, user, pw, pwlen);
        return;
    }
    case IPC_RELAY_DONE:
        if (qproc_relay_done(qp, &r) < 0)
            break;
        return;
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

static void qproc_on_ipc_close(struct ipc_chan *ch, int err, void *arg)
{
    struct qproc *qp = arg;
    /* The parent restarts both processes; committed mail is safe. */
    if (err)
        log_warn("lost the smtp process (%s); stopping", strerror(-err));
    else
        log_info("the smtp process closed its channel; stopping");
    ev_loop_stop(qp->loop);
}

static void qproc_on_signal(struct ev_loop *loop, int signo, void *arg)
{
    ev_loop_stop(loop);
}

int queue_proc_main(const struct config *cfg, int ipc_fd)
{
    log_set_ident("tern/qmgr");
    signal(SIGPIPE, SIG_IGN);
    struct qproc qp = {0};
    qp.cfg = cfg;
    qp.loop = ev_loop_new();
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
    qp.ipc = ipc_chan_new(qp.loop, ipc_fd, qproc_on_ipc, qproc_on_ipc_close, &qp);
    queue_set_relay(qp.queue, qproc_relay, &qp);
    /* Prometheus (metrics_listen): counters and the endpoint, if set. */
    struct metrics_http *metrics = metrics_http_start(qp.loop, qp.queue);
    /* What `tern sendmail` left while we were down, then what comes; without
     * it (logged) the daemon still serves SMTP. */
    struct pickup *pickup = pickup_new(qp.loop, qp.queue, cfg);
    qp.auth = queue_auth_new(qp.loop, cfg, qproc_auth_done, &qp);
    if (qp.auth == NULL)
        return 1;
    ev_signal_add(qp.loop, SIGTERM, qproc_on_signal, &qp);
    ev_signal_add(qp.loop, SIGINT, qproc_on_signal, &qp);
    int rc = ev_loop_run(qp.loop);
    queue_auth_free(qp.auth);
    control_free(qp.control);
    pickup_free(pickup);
    metrics_http_free(metrics);
    queue_free(qp.queue);
    ipc_chan_free(qp.ipc);
    ev_loop_free(qp.loop);
    return rc < 0 ? 1 : 0;
}
