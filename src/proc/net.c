/* net.c: the network-facing process: listeners, session limits, the glue
 * between conn (bytes) and smtp_session (protocol), and the IPC client
 * side of the queue. */
#include "proc/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/idmap.h"
#include "base/log.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "ev/conn.h"
#include "ev/loop.h"
#include "ipc/ipc.h"
#include "ipc/ipc_types.h"
#include "proc/privsep.h"
#include "smtp/smtp_session.h"

/* Sessions are checked for idle timeouts this often. */
#define NET_SWEEP_MS 1000

struct net_client {
    struct net_client *next, *prev; /* all live clients */
    uint64_t id;
    struct net *net;
    struct conn *conn;            /* owned */
    struct smtp_session *session; /* owned */
    char ip[INET6_ADDRSTRLEN];
    uint64_t timeout_ms;
    uint64_t last_ms;
    int paused;
    int closed; /* on the free list, waiting for the before-sleep hook */
    ev_timer_id kick; /* pending re-feed after a resume */
    struct net_client *next_dead;
};

struct net {
    const struct config *cfg;
    struct ev_loop *loop;
    struct ipc_chan *ipc;
    const struct net_listener *ls;
    size_t nls;
    struct idmap clients; /* id -> client, for asynchronous answers */
    struct net_client *all;
    struct net_client *dead;
    unsigned nclients;
    uint64_t next_id;
    int stopping;
};

static void net_io_write(void *io, const void *p, size_t n)
{
    struct net_client *c = io;
    if (!c->closed)
        conn_write(c->conn, p, n);
}

static void net_client_feed(struct net_client *c)
{
    if (c->closed || c->paused)
        return;
    smtp_session_input(c->session, conn_rbuf(c->conn));
}

static void net_kick_cb(struct ev_loop *loop, void *arg)
{
    struct net_client *c = arg;
    c->kick = 0;
    net_client_feed(c);
}

static void net_io_pause(void *io, int paused)
{
    struct net_client *c = io;
    if (c->closed)
        return;
    c->paused = paused;
    conn_pause(c->conn, paused);
    c->last_ms = clock_mono_ms();
    /* Resuming: the session may have input buffered already, or a BDAT of
     * zero octets to finish; feed it from the loop, not recursively. */
    if (!paused && c->kick == 0)
        c->kick = ev_timer_add(c->net->loop, 0, net_kick_cb, c);
}

static void net_io_close(void *io)
{
    struct net_client *c = io;
    if (!c->closed)
        conn_close(c->conn);
}

static void net_io_set_timeout(void *io, uint64_t ms)
{
    struct net_client *c = io;
    c->timeout_ms = ms;
    c->last_ms = clock_mono_ms();
}

static const struct smtp_session_io net_io = {
    net_io_write, net_io_pause, net_io_close, net_io_set_timeout,
};

static void net_svc_body_open(void *svc, uint64_t sid)
{
    struct net *n = svc;
    struct buf b = BUF_INIT;
    ipc_put_u64(&b, sid);
    if (ipc_send(n->ipc, IPC_BODY_OPEN, &b, -1) < 0) {
        struct net_client *c = idmap_get(&n->clients, sid);
        if (c)
            smtp_session_body_failed(c->session, -EPIPE);
    }
    buf_free(&b);
}

static void net_svc_commit(void *svc, uint64_t sid, const char *qid, const struct envelope *env)
{
    struct net *n = svc;
    struct buf e = BUF_INIT, b = BUF_INIT;
    envelope_serialize(env, &e);
    ipc_put_u64(&b, sid);
    ipc_put_str(&b, qid);
    ipc_put_bytes(&b, e.data, e.len);
    int rc = ipc_send(n->ipc, IPC_COMMIT, &b, -1);
    buf_free(&e);
    buf_free(&b);
    if (rc < 0) {
        struct net_client *c = idmap_get(&n->clients, sid);
        if (c)
            smtp_session_committed(c->session, qid, rc);
    }
}

static void net_svc_abort(void *svc, const char *qid)
{
    struct net *n = svc;
    struct buf b = BUF_INIT;
    ipc_put_str(&b, qid);
    (void)ipc_send(n->ipc, IPC_ABORT, &b, -1); /* a lost abort only leaves a tmp file */
    buf_free(&b);
}

static const struct smtp_session_svc net_svc = {
    net_svc_body_open, net_svc_commit, net_svc_abort,
};

static void net_on_read(struct conn *conn, void *arg)
{
    struct net_client *c = arg;
    c->last_ms = clock_mono_ms();
    net_client_feed(c);
}

static void net_on_close(struct conn *conn, void *arg, int err)
{
    struct net_client *c = arg;
    if (c->closed)
        return;
    c->closed = 1;
    /* Freed from the before-sleep hook: never inside its own callback. */
    c->next_dead = c->net->dead;
    c->net->dead = c;
}

static const struct conn_cb net_conn_cb = {net_on_read, net_on_close, NULL};

static unsigned net_count_ip(const struct net *n, const char *ip)
{
    unsigned k = 0;
    for (const struct net_client *c = n->all; c; c = c->next)
        if (!c->closed && !strcmp(c->ip, ip))
            k++;
    return k;
}

static void net_peer_ip(const struct sockaddr_storage *ss, char *out, size_t outsize)
{
    const void *a = NULL;
    if (ss->ss_family == AF_INET)
        a = &((const struct sockaddr_in *)ss)->sin_addr;
    else if (ss->ss_family == AF_INET6)
        a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
    if (a == NULL || inet_ntop(ss->ss_family, a, out, (socklen_t)outsize) == NULL)
        strutil_lcpy(out, "unknown", outsize);
    /* IPv4-mapped IPv6 addresses are logged as plain IPv4. */
    if (!strncmp(out, "::ffff:", 7) && strchr(out + 7, '.'))
        memmove(out, out + 7, strlen(out + 7) + 1);
}

static void net_accept_one(struct net *n, int lfd, enum conf_role role)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
            log_warn("accept: %s", strerror(errno));
        return;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct net_client *c = xcalloc(1, sizeof *c);
    c->net = n;
    c->id = ++n->next_id;
    net_peer_ip(&ss, c->ip, sizeof c->ip);
    c->last_ms = clock_mono_ms();
    c->timeout_ms = (uint64_t)n->cfg->timeout_command * 1000;
    c->conn = conn_new(n->loop, fd, &net_conn_cb, c);
    struct smtp_session_peer peer = {c->ip, "unknown", role};
    c->session = smtp_session_new(c->id, n->cfg, &peer, &net_io, c, &net_svc, n);
    c->next = n->all;
    if (n->all)
        n->all->prev = c;
    n->all = c;
    n->nclients++;
    idmap_put(&n->clients, c->id, c);
    log_info("connect from unknown[%s]", c->ip);
    if (n->nclients > n->cfg->sessions_max) {
        log_warn("connection limit %u reached: refusing unknown[%s]", n->cfg->sessions_max, c->ip);
        smtp_session_refuse(c->session, "Error: too many connections");
    } else if (net_count_ip(n, c->ip) > n->cfg->sessions_per_ip) {
        log_warn("per-address limit %u reached: refusing unknown[%s]", n->cfg->sessions_per_ip,
                 c->ip);
        smtp_session_refuse(c->session, "Error: too many connections from your address");
    } else {
        smtp_session_start(c->session);
    }
}

static void net_on_listen(struct ev_loop *loop, int fd, unsigned events, void *arg)
{
    struct net *n = arg;
    enum conf_role role = CONF_ROLE_MX;
    for (size_t i = 0; i < n->nls; i++)
        if (n->ls[i].fd == fd)
            role = n->ls[i].role;
    /* Bounded so a flood of connections cannot starve the sessions. */
    for (int i = 0; i < 64 && !n->stopping; i++) {
        unsigned before = n->nclients;
        net_accept_one(n, fd, role);
        if (n->nclients == before)
            break;
    }
}

static void net_free_client(struct net *n, struct net_client *c)
{
    if (c->kick)
        ev_timer_cancel(n->loop, c->kick);
    idmap_del(&n->clients, c->id);
    if (c->prev)
        c->prev->next = c->next;
    else
        n->all = c->next;
    if (c->next)
        c->next->prev = c->prev;
    n->nclients--;
    smtp_session_free(c->session);
    conn_free(c->conn);
    free(c);
}

static void net_reap(struct ev_loop *loop, void *arg)
{
    struct net *n = arg;
    while (n->dead) {
        struct net_client *c = n->dead;
        n->dead = c->next_dead;
        net_free_client(n, c);
    }
    if (n->stopping && n->nclients == 0)
        ev_loop_stop(loop);
}

static void net_sweep(struct ev_loop *loop, void *arg)
{
    struct net *n = arg;
    uint64_t now = clock_mono_ms();
    for (struct net_client *c = n->all; c; c = c->next) {
        /* A session waiting for the queue is not idle: the client waits on us. */
        if (c->closed || c->paused || c->timeout_ms == 0)
            continue;
        if (now - c->last_ms >= c->timeout_ms)
            smtp_session_timeout(c->session);
    }
    ev_timer_add(loop, NET_SWEEP_MS, net_sweep, n);
}

static void net_on_ipc(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
    struct net *n = arg;
    struct ipc_rd r;
    ipc_rd_init(&r, m);
    char qid[ENVELOPE_QID_MAX + 1];
    uint64_t sid = ipc_get_u64(&r);
    struct net_client *c;
    switch (m->type) {
    case IPC_BODY_OPENED:
        ipc_get_str(&r, qid, sizeof qid);
        if (ipc_rd_end(&r) < 0 || m->fd < 0)
            break;
        c = idmap_get(&n->clients, sid);
        if (c == NULL || c->closed) {
            net_svc_abort(n, qid);
            break;
        }
        smtp_session_body_opened(c->session, qid, m->fd);
        m->fd = -1;
        return;
    case IPC_BODY_FAILED: {
        int32_t err = ipc_get_i32(&r);
        if (ipc_rd_end(&r) < 0)
            break;
        c = idmap_get(&n->clients, sid);
        if (c && !c->closed)
            smtp_session_body_failed(c->session, err < 0 ? err : -EIO);
        return;
    }
    case IPC_COMMITTED: {
        ipc_get_str(&r, qid, sizeof qid);
        int32_t status = ipc_get_i32(&r);
        if (ipc_rd_end(&r) < 0)
            break;
        c = idmap_get(&n->clients, sid);
        if (c && !c->closed)
            smtp_session_committed(c->session, qid, status > 0 ? -EIO : status);
        return;
    }
    default:
        break;
    }
    log_err("ipc: unexpected or malformed message type %u from the queue", m->type);
    if (m->fd >= 0)
        close(m->fd);
}

static void net_on_ipc_close(struct ipc_chan *ch, int err, void *arg)
{
    /* Without the queue no message can be accepted: exit and let the
     * parent restart both sides. */
    log_err("lost the queue process (%s); exiting", err ? strerror(-err) : "closed");
    exit(1);
}

static void net_on_signal(struct ev_loop *loop, int signo, void *arg)
{
    struct net *n = arg;
    if (n->stopping)
        return;
    n->stopping = 1;
    for (size_t i = 0; i < n->nls; i++) {
        ev_io_del(loop, n->ls[i].fd);
        close(n->ls[i].fd);
    }
    /* Sessions end now: a client that did not get 250 retries later. */
    for (struct net_client *c = n->all; c; c = c->next)
        if (!c->closed)
            smtp_session_refuse(c->session, "Service shutting down");
    if (n->nclients == 0)
        ev_loop_stop(loop);
}

int net_main(const struct config *cfg, const struct net_listener *ls, size_t nls, int ipc_fd)
{
    log_set_ident("tern/smtpd");
    signal(SIGPIPE, SIG_IGN);
    char empty[4096];
    snprintf(empty, sizeof empty, "%s/empty", cfg->spool_dir);
    if (privsep_confine(empty, "nobody") < 0)
        return 1;
    struct net n = {0};
    n.cfg = cfg;
    n.ls = ls;
    n.nls = nls;
    n.loop = ev_loop_new();
    idmap_init(&n.clients);
    n.ipc = ipc_chan_new(n.loop, ipc_fd, net_on_ipc, net_on_ipc_close, &n);
    for (size_t i = 0; i < nls; i++)
        if (ev_io_add(n.loop, ls[i].fd, EV_READ, net_on_listen, &n) < 0)
            fatal("cannot watch listener %zu", i);
    ev_hook_add(n.loop, net_reap, &n);
    ev_timer_add(n.loop, NET_SWEEP_MS, net_sweep, &n);
    ev_signal_add(n.loop, SIGTERM, net_on_signal, &n);
    ev_signal_add(n.loop, SIGINT, net_on_signal, &n);
    int rc = ev_loop_run(n.loop);
    net_reap(n.loop, &n);
    ipc_chan_free(n.ipc);
    idmap_free(&n.clients);
    ev_loop_free(n.loop);
    return rc < 0 ? 1 : 0;
}
