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
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/idmap.h"
#include "base/keycount.h"
#include "base/log.h"
#include "base/sizes.h"
#include "base/strutil.h"
#include "sasl/throttle.h"
#include "sasl/verify.h"
#include "dns/resolver.h"
#include "base/xmalloc.h"
#include "ev/conn.h"
#include "ev/tlsctx.h"
#include "ev/loop.h"
#include "ipc/ipc.h"
#include "ipc/ipc_types.h"
#include "mailauth/psl.h"
#include "proc/net_dmarc.h"
#include "proc/net_mailauth.h"
#include "proc/net_relay_ipc.h"
#include "proc/privsep.h"
#include "proc/metrics_http.h"
#include "proc/metrics_shm.h"
#include "proc/net_deadline.h"
#include "proc/tls_material.h"
#include "smtp/smtp_session.h"

/* Sessions are checked for idle timeouts this often. */
#define NET_SWEEP_MS 1000
/* accept() found no descriptor (or memory) for a new connection: the
 * listeners rest this long, since the connection stays queued and the
 * listener readable, and trying again at once would spin. */
#define NET_ACCEPT_PAUSE_MS 100
/* ... and say so at most this often. */
#define NET_ACCEPT_WARN_MS 60000

struct net_client {
    struct net_client *next, *prev; /* all live clients */
    uint64_t id;
    struct net *net;
    struct conn *conn;            /* owned */
    struct smtp_session *session; /* owned */
    char ip[INET6_ADDRSTRLEN];
    struct net_deadline dl; /* idle, command line and content rate limits */
    int paused;
    int closed; /* on the free list, waiting for the before-sleep hook */
    int counted; /* in net.per_ip and net.nopen */
    size_t listener;  /* index into net.ls / net.tls */
    int handshaking;  /* TLS handshake under way */
    int tls_done;     /* a TLS handshake completed (metrics) */
    ev_timer_id kick; /* pending re-feed after a resume */
    /* AUTH: the answer waits out the throttle's delay on this timer. */
    ev_timer_id auth_timer;
    enum smtp_auth_result auth_result;
    char auth_user[THROTTLE_KEY_MAX];
    struct net_mailauth *ma; /* owned: SPF, DMARC of judged mail; NULL until needed */
    struct net_client *next_dead;
};

struct net {
    const struct config *cfg;
    struct ev_loop *loop;
    struct ipc_chan *ipc;
    struct ipc_chan *ctl; /* from the parent: TLS reloads */
    struct relay *relay; /* outbound SMTP */
    struct dns *dns;         /* owned; NULL if the resolver could not start */
    struct tlsctx *tls[CONF_MAX_LISTENERS]; /* per listener, NULL without a certificate */
    struct throttle *auth_ip, *auth_users; /* failed AUTHs per client IP and per user */
    const struct net_listener *ls;
    size_t nls;
    struct idmap clients; /* id -> client, for asynchronous answers */
    struct keycount per_ip; /* client address -> sessions open (not closed) */
    struct net_client *all;
    struct net_client *dead;
    unsigned nclients; /* in the list, closed ones included until freed */
    unsigned nopen;    /* counted against sessions_max: not closed, not refused */
    int stress;        /* stress mode (net_stress_update) */
    ev_timer_id accept_resume; /* listeners paused after EMFILE, until this fires */
    uint64_t accept_warned_ms; /* the last warning about it */
    unsigned accept_failures;  /* since that warning */
    uint64_t next_id;
    int stopping;              /* draining after SIGTERM or SIGUSR2: no new sessions */
    int reload_drain;          /* SIGUSR2: sessions may go on until the deadline */
    uint64_t stop_deadline_ms; /* then everyone is closed */
    uint64_t spool_room;       /* IPC_SPOOL_ROOM: largest message the spool takes now */
};

static void net_io_write(void *io, const void *p, size_t n)
{
    struct net_client *c = io;
    if (c->closed)
        return;
    /* A reply: the next command line is due from now. */
    net_deadline_reply(&c->dl, clock_mono_ms());
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
    /* Time spent waiting for the queue is not the client's. */
    net_deadline_restart(&c->dl, c->dl.idle_ms, clock_mono_ms());
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
    net_deadline_restart(&c->dl, ms, clock_mono_ms());
}

static void net_io_starttls(void *io)
{
    struct net_client *c = io;
    struct tlsctx *t = c->net->tls[c->listener];
    if (c->closed || t == NULL) {
        conn_abort(c->conn);
        return;
    }
    c->handshaking = 1;
    conn_starttls(c->conn, t);
}

static const struct smtp_session_io net_io = {
    net_io_write, net_io_pause, net_io_close, net_io_set_timeout, net_io_starttls,
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

static void net_svc_commit(void *svc, uint64_t sid, const char *qid, const struct envelope *env,
                           const char *prefix, size_t prefix_len)
{
    struct net *n = svc;
    struct buf e = BUF_INIT, b = BUF_INIT;
    envelope_serialize(env, &e);
    ipc_put_u64(&b, sid);
    ipc_put_str(&b, qid);
    ipc_put_bytes(&b, e.data, e.len);
    ipc_put_bytes(&b, prefix, prefix_len);
    int rc = ipc_send(n->ipc, IPC_COMMIT, &b, -1);
    buf_free(&e);
    buf_free(&b);
    if (rc < 0) {
        struct net_client *c = idmap_get(&n->clients, sid);
        struct result res;
        result_spool_error(&res, rc);
        if (c)
            smtp_session_committed(c->session, qid, &res);
    }
}

static uint64_t net_svc_spool_room(void *svc)
{
    return ((struct net *)svc)->spool_room;
}

static void net_svc_abort(void *svc, const char *qid)
{
    struct net *n = svc;
    struct buf b = BUF_INIT;
    ipc_put_str(&b, qid);
    (void)ipc_send(n->ipc, IPC_ABORT, &b, -1); /* a lost abort only leaves a tmp file */
    buf_free(&b);
}

/* The client's role as a metrics index. */
static unsigned net_role(const struct net_client *c)
{
    return metrics_role(c->net->ls[c->listener].role);
}

static void net_auth_fire(struct ev_loop *loop, void *arg)
{
    struct net_client *c = arg;
    c->auth_timer = 0;
    if (c->closed)
        return;
    smtp_session_auth_done(c->session, c->auth_result);
    /* Counted after the session decided: it may refuse an OK (authzid). */
    enum metrics_auth_result m = smtp_session_authenticated(c->session) ? METRICS_AUTH_SUCCESS
                                 : c->auth_result == SMTP_AUTH_TEMPFAIL ? METRICS_AUTH_TEMPFAIL
                                 : c->auth_result == SMTP_AUTH_BLOCKED  ? METRICS_AUTH_BLOCKED
                                                                        : METRICS_AUTH_FAILURE;
    metrics_inc(&metrics_shm->auth[net_role(c)][m]);
}

/* Answers an AUTH after `delay_ms`, always from the loop. */
static void net_auth_answer(struct net_client *c, enum smtp_auth_result r, unsigned delay_ms)
{
    c->auth_result = r;
    if (c->auth_timer)
        ev_timer_cancel(c->net->loop, c->auth_timer);
    c->auth_timer = ev_timer_add(c->net->loop, delay_ms, net_auth_fire, c);
}

/* The throttle's key for a client: its IPv4 address, or the /64 of an
 * IPv6 address (one host usually owns a whole /64). */
static void net_auth_ip_key(const char *ip, char *out, size_t n)
{
    struct in6_addr a6;
    if (strchr(ip, ':') && inet_pton(AF_INET6, ip, &a6) == 1) {
        memset(a6.s6_addr + 8, 0, 8);
        if (inet_ntop(AF_INET6, &a6, out, (socklen_t)n) != NULL)
            return;
    }
    strutil_lcpy(out, ip, n);
}

static void net_svc_auth_check(void *svc, uint64_t sid, const char *mech, const char *user,
                               const char *password)
{
    struct net *n = svc;
    struct net_client *c = idmap_get(&n->clients, sid);
    if (c == NULL)
        return;
    strutil_lcpy(c->auth_user, user, sizeof c->auth_user);
    strutil_lower(c->auth_user);
    uint64_t now = clock_mono_ms();
    char ipkey[INET6_ADDRSTRLEN];
    net_auth_ip_key(c->ip, ipkey, sizeof ipkey);
    if (throttle_blocked(n->auth_ip, ipkey, now)) {
        net_auth_answer(c, SMTP_AUTH_BLOCKED, 0);
        return;
    }
    struct buf b = BUF_INIT;
    ipc_put_u64(&b, sid);
    ipc_put_str(&b, c->auth_user);
    ipc_put_bytes(&b, password, strlen(password));
    int rc = ipc_send(n->ipc, IPC_AUTH_CHECK, &b, -1);
    memset(b.data, 0, b.len);
    buf_free(&b);
    if (rc < 0)
        net_auth_answer(c, SMTP_AUTH_TEMPFAIL, 0);
}

/* The queue's verdict: failures are counted per IP and per user and
 * answered after a growing delay, so guessing runs at a crawl. */
static void net_auth_result(struct net *n, struct net_client *c, int32_t result)
{
    uint64_t now = clock_mono_ms();
    if (result == AUTH_OK) {
        if (c->auth_user[0])
            throttle_success(n->auth_users, c->auth_user);
        net_auth_answer(c, SMTP_AUTH_OK, 0);
        return;
    }
    if (result != AUTH_FAIL) {
        net_auth_answer(c, SMTP_AUTH_TEMPFAIL, 0);
        return;
    }
    char ipkey[INET6_ADDRSTRLEN];
    net_auth_ip_key(c->ip, ipkey, sizeof ipkey);
    throttle_fail(n->auth_ip, ipkey, now);
    if (c->auth_user[0])
        throttle_fail(n->auth_users, c->auth_user, now);
    unsigned max_ms = n->cfg->auth_failure_delay_max * 1000;
    unsigned d1 = throttle_delay_ms(n->auth_ip, ipkey, now, max_ms);
    unsigned d2 = c->auth_user[0] ? throttle_delay_ms(n->auth_users, c->auth_user, now, max_ms)
                                  : 0;
    /* Only the client address is shut out: failures for a user name slow
     * every guess at it down but never lock its owner out, which anyone
     * could otherwise do on purpose. */
    int blocked = throttle_blocked(n->auth_ip, ipkey, now);
    net_auth_answer(c, blocked ? SMTP_AUTH_BLOCKED : SMTP_AUTH_FAIL, d1 > d2 ? d1 : d2);
}

/* Mail authentication: each session gets its checks at its first judged
 * MAIL (net_mailauth). */
static void net_svc_mail_start(void *svc, uint64_t sid, uint32_t txn, const char *helo,
                               const char *from)
{
    struct net *n = svc;
    struct net_client *c = idmap_get(&n->clients, sid);
    if (c == NULL || c->closed)
        return;
    if (c->ma == NULL)
        c->ma = net_mailauth_new(n->loop, n->cfg, n->dns, c->session, c->ip);
    net_mailauth_start(c->ma, txn, helo, from);
}

static void net_svc_mail_content(void *svc, uint64_t sid, const char *p, size_t len)
{
    struct net *n = svc;
    struct net_client *c = idmap_get(&n->clients, sid);
    if (c && c->ma)
        net_mailauth_content(c->ma, p, len);
}

static void net_svc_mail_verdict(void *svc, uint64_t sid, uint32_t txn)
{
    struct net *n = svc;
    struct net_client *c = idmap_get(&n->clients, sid);
    if (c && c->ma)
        net_mailauth_verdict(c->ma, txn);
}

static const struct smtp_session_svc net_svc = {
    .body_open = net_svc_body_open,
    .commit = net_svc_commit,
    .abort = net_svc_abort,
    .auth_check = net_svc_auth_check,
    .spool_room = net_svc_spool_room,
    .mail_start = net_svc_mail_start,
    .mail_content = net_svc_mail_content,
    .mail_verdict = net_svc_mail_verdict,
};

static void net_on_read(struct conn *conn, void *arg)
{
    struct net_client *c = arg;
    net_deadline_input(&c->dl, clock_mono_ms());
    net_client_feed(c);
}

/* A client stops counting against the limits once it is closed (before
 * the hook frees it) or refused (it only flushes its 421). */
static void net_uncount(struct net *n, struct net_client *c)
{
    if (!c->counted)
        return;
    c->counted = 0;
    n->nopen--;
    (void)keycount_remove(&n->per_ip, c->ip);
}

static void net_on_close(struct conn *conn, void *arg, int err)
{
    struct net_client *c = arg;
    if (c->closed)
        return;
    if (c->handshaking) {
        log_info("SSL_accept error from unknown[%s]: %s", c->ip,
                 err == -ETIMEDOUT ? "timed out" : err ? strerror(-err) : "lost connection");
        metrics_inc(&metrics_shm->tls[net_role(c)][1]);
    }
    c->closed = 1;
    net_uncount(c->net, c);
    /* No late DNS answer may reach a closed session. */
    net_mailauth_free(c->ma);
    c->ma = NULL;
    /* Freed from the before-sleep hook: never inside its own callback. */
    c->next_dead = c->net->dead;
    c->net->dead = c;
}

static void net_on_tls(struct conn *conn, void *arg, int err)
{
    struct net_client *c = arg;
    c->handshaking = 0;
    c->tls_done = 1;
    metrics_inc(&metrics_shm->tls[net_role(c)][0]);
    net_deadline_input(&c->dl, clock_mono_ms());
    smtp_session_tls_done(c->session, conn_tls_version(conn), conn_tls_cipher(conn),
                          conn_tls_bits(conn));
}

static const struct conn_cb net_conn_cb = {
    .on_read = net_on_read, .on_close = net_on_close, .on_tls = net_on_tls};

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

static void net_listen_all(struct net *n, unsigned events)
{
    for (size_t i = 0; i < n->nls; i++)
        (void)ev_io_mod(n->loop, n->ls[i].fd, events);
}

static void net_accept_resume(struct ev_loop *loop, void *arg)
{
    struct net *n = arg;
    n->accept_resume = 0;
    if (!n->stopping) /* stopping closed the listeners: their numbers may be reused */
        net_listen_all(n, EV_READ);
}

/* Out of descriptors or memory: the sessions open go on, new ones wait in
 * the kernel's backlog until some end (or the backlog overflows and the
 * client retries). */
static void net_accept_pause(struct net *n, int err)
{
    n->accept_failures++;
    uint64_t now = clock_mono_ms();
    if (n->accept_warned_ms == 0 || now - n->accept_warned_ms >= NET_ACCEPT_WARN_MS) {
        log_warn("accept: %s (%u times since the last warning) with %u sessions open: not "
                 "accepting for %u ms; raise the file descriptor limit (LimitNOFILE) or lower "
                 "sessions_max",
                 strerror(err), n->accept_failures, n->nopen, NET_ACCEPT_PAUSE_MS);
        n->accept_warned_ms = now;
        n->accept_failures = 0;
    }
    if (n->accept_resume)
        return;
    net_listen_all(n, 0);
    n->accept_resume = ev_timer_add(n->loop, NET_ACCEPT_PAUSE_MS, net_accept_resume, n);
}

static void net_accept_one(struct net *n, size_t li)
{
    int lfd = n->ls[li].fd;
    enum conf_role role = n->ls[li].role;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
            net_accept_pause(n, errno);
        else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
            log_warn("accept: %s", strerror(errno));
        return;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct net_client *c = xcalloc(1, sizeof *c);
    c->net = n;
    c->listener = li;
    c->id = ++n->next_id;
    net_peer_ip(&ss, c->ip, sizeof c->ip);
    net_deadline_start(&c->dl, (uint64_t)n->cfg->timeout_command * 1000, clock_mono_ms());
    c->conn = conn_new(n->loop, fd, &net_conn_cb, c);
    struct smtp_session_peer peer = {c->ip, "unknown", role, n->tls[li] != NULL,
                                     role == CONF_ROLE_SMTPS, 0};
    c->session = smtp_session_new(c->id, n->cfg, &peer, &net_io, c, &net_svc, n);
    c->next = n->all;
    if (n->all)
        n->all->prev = c;
    n->all = c;
    n->nclients++;
    idmap_put(&n->clients, c->id, c);
    metrics_inc(&metrics_shm->connections[metrics_role(role)]);
    metrics_inc(&metrics_open[metrics_role(role)]);
    log_info("connect from unknown[%s]", c->ip);
    c->counted = 1;
    n->nopen++;
    unsigned from_ip = keycount_add(&n->per_ip, c->ip);
    int over = n->nopen > n->cfg->sessions_max || from_ip > n->cfg->sessions_per_ip;
    if (over && role == CONF_ROLE_SMTPS) {
        /* No reply is possible before the handshake: just close. */
        log_warn("connection limit reached: refusing unknown[%s]", c->ip);
        conn_abort(c->conn);
    } else if (n->nopen > n->cfg->sessions_max) {
        log_warn("connection limit %u reached: refusing unknown[%s]", n->cfg->sessions_max, c->ip);
        smtp_session_refuse(c->session, "Error: too many connections");
    } else if (from_ip > n->cfg->sessions_per_ip) {
        log_warn("per-address limit %u reached: refusing unknown[%s]", n->cfg->sessions_per_ip,
                 c->ip);
        smtp_session_refuse(c->session, "Error: too many connections from your address");
    } else {
        smtp_session_start(c->session);
        return;
    }
    net_uncount(n, c);
}

static void net_on_listen(struct ev_loop *loop, int fd, unsigned events, void *arg)
{
    struct net *n = arg;
    size_t li = 0;
    for (size_t i = 0; i < n->nls; i++)
        if (n->ls[i].fd == fd)
            li = i;
    /* Bounded so a flood of connections cannot starve the sessions. */
    for (int i = 0; i < 64 && !n->stopping; i++) {
        unsigned before = n->nclients;
        net_accept_one(n, li);
        if (n->nclients == before)
            break;
    }
}

static void net_free_client(struct net *n, struct net_client *c)
{
    if (c->kick)
        ev_timer_cancel(n->loop, c->kick);
    if (c->auth_timer)
        ev_timer_cancel(n->loop, c->auth_timer);
    idmap_del(&n->clients, c->id);
    net_uncount(n, c);
    if (c->prev)
        c->prev->next = c->next;
    else
        n->all = c->next;
    if (c->next)
        c->next->prev = c->prev;
    n->nclients--;
    unsigned role = net_role(c);
    metrics_dec(&metrics_open[role]);
    metrics_inc(&metrics_shm->sessions[role][c->tls_done][smtp_session_authenticated(c->session)
                                                            ? 1 : 0]);
    net_mailauth_free(c->ma);
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
    /* Stopping: done once no session and no outbound delivery is left. */
    if (n->stopping && n->nclients == 0 && relay_active(n->relay) == 0)
        ev_loop_stop(loop);
}

/* Sessions that finished their transaction since the last look are told
 * 421 now; past shutdown_timeout, everyone is. */
static void net_drain_sweep(struct net *n, uint64_t now)
{
    if (n->reload_drain) {
        /* Replaced by a reload: sessions go on as long as their clients
         * want, within shutdown_timeout; then as for a stop. */
        if (now < n->stop_deadline_ms)
            return;
        n->reload_drain = 0;
        n->stop_deadline_ms = now + (uint64_t)n->cfg->shutdown_timeout * 1000;
        log_info("reload: %u sessions still open after shutdown_timeout; closing them at "
                 "their next transaction", n->nclients);
    }
    int late = now >= n->stop_deadline_ms;
    for (struct net_client *c = n->all; c; c = c->next) {
        if (c->closed)
            continue;
        if (late)
            smtp_session_refuse(c->session, "Service shutting down");
        else
            (void)smtp_session_drain(c->session);
    }
    if (late && n->nclients > 0)
        log_warn("shutdown_timeout reached: closing %u sessions", n->nclients);
    if (late)
        ev_loop_stop(n->loop);
}

/* Stress mode (Postfix's): with stress_threshold % of sessions_max open,
 * idle sessions get timeout_stress instead of their own timeouts, so that
 * a crowd of idle connections makes room for clients that talk. Left
 * again below 3/4 of that level, so a server at the edge does not flap. */
static void net_stress_update(struct net *n)
{
    const struct config *cfg = n->cfg;
    uint64_t level = (uint64_t)n->nopen * 100;
    uint64_t enter = (uint64_t)cfg->stress_threshold * cfg->sessions_max;
    if (!n->stress && cfg->stress_threshold > 0 && level >= enter) {
        n->stress = 1;
        log_warn("entering stress mode: %u of sessions_max %u sessions open; idle timeouts "
                 "cut to timeout_stress %us",
                 n->nopen, cfg->sessions_max, cfg->timeout_stress);
    } else if (n->stress && (cfg->stress_threshold == 0 || level * 4 < enter * 3)) {
        n->stress = 0;
        log_info("leaving stress mode: %u of sessions_max %u sessions open", n->nopen,
                 cfg->sessions_max);
    }
    metrics_shm_set_stress(n->stress);
}

/* Applies the time limits (proc/net_deadline) to one session. */
static void net_client_expire(struct net_client *c, const struct net_deadline_limits *l,
                              uint64_t now)
{
    if (conn_is_closed(c->conn))
        return; /* closing already: the conn bounds its last flush */
    uint64_t rate = 0;
    enum net_expiry e = net_deadline_check(&c->dl, l, smtp_session_expects(c->session),
                                           conn_rx_total(c->conn), now, &rate);
    char why[128];
    switch (e) {
    case NET_EXPIRY_NONE:
        return;
    case NET_EXPIRY_IDLE:
        if (l->stress)
            snprintf(why, sizeof why, "stress mode, idle for timeout_stress %us",
                     c->net->cfg->timeout_stress);
        smtp_session_timeout(c->session, l->stress ? why : NULL);
        break;
    case NET_EXPIRY_LINE:
        snprintf(why, sizeof why, "no complete command line within %llus%s",
                 (unsigned long long)(l->line_ms / 1000), l->stress ? " (stress mode)" : "");
        smtp_session_timeout(c->session, why);
        break;
    case NET_EXPIRY_RATE:
        snprintf(why, sizeof why, "%llu octets/s, below data_rate_min %llu",
                 (unsigned long long)rate, (unsigned long long)l->rate_min);
        smtp_session_timeout(c->session, why);
        break;
    }
    metrics_inc(&metrics_shm->timeouts[e == NET_EXPIRY_IDLE   ? METRICS_TIMEOUT_IDLE
                                       : e == NET_EXPIRY_LINE ? METRICS_TIMEOUT_COMMAND_LINE
                                                              : METRICS_TIMEOUT_DATA_RATE]);
}

static void net_sweep(struct ev_loop *loop, void *arg)
{
    struct net *n = arg;
    uint64_t now = clock_mono_ms();
    net_stress_update(n);
    struct net_deadline_limits lim;
    net_deadline_limits_set(&lim, n->cfg, n->stress);
    for (struct net_client *c = n->all; c; c = c->next) {
        /* A session waiting for the queue is not idle: the client waits on us. */
        if (c->closed || c->paused)
            continue;
        net_client_expire(c, &lim, now);
    }
    if (n->stopping)
        net_drain_sweep(n, now);
    ev_timer_add(loop, NET_SWEEP_MS, net_sweep, n);
}

static void net_on_ipc(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
    struct net *n = arg;
    if (m->type == IPC_SPOOL_ROOM) {
        struct ipc_rd rr;
        ipc_rd_init(&rr, m);
        uint64_t room = ipc_get_u64(&rr);
        if (ipc_rd_end(&rr) == 0 && m->fd < 0) {
            n->spool_room = room;
            return;
        }
    } else if (m->type == IPC_RELAY) {
        net_relay_ipc_job(n->relay, m);
        if (m->fd >= 0)
            close(m->fd);
        return;
    }
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
    case IPC_AUTH_RESULT: {
        int32_t result = ipc_get_i32(&r);
        if (ipc_rd_end(&r) < 0)
            break;
        c = idmap_get(&n->clients, sid);
        if (c && !c->closed)
            net_auth_result(n, c, result);
        return;
    }
    case IPC_COMMITTED: {
        /* The reply the client will hear, checked field by field
         * (ipc_get_result takes only well-formed ones). A session whose
         * answer is malformed still gets one, 451: it would wait
         * forever otherwise, and the client sends the message again. */
        ipc_get_str(&r, qid, sizeof qid);
        int head_ok = r.err == 0;
        struct result res;
        ipc_get_result(&r, &res);
        if (ipc_rd_end(&r) < 0) {
            if (!head_ok)
                break;
            log_err("ipc: malformed commit answer from the queue for %s", strutil_esc(qid));
            result_spool_error(&res, -EPROTO);
        }
        c = idmap_get(&n->clients, sid);
        if (c && !c->closed)
            smtp_session_committed(c->session, qid, &res);
        return;
    }
    default:
        break;
    }
    log_err("ipc: unexpected or malformed message type %u from the queue", m->type);
    if (m->fd >= 0)
        close(m->fd);
}

/* Replaces the TLS contexts; sessions in a handshake keep the old ones
 * (tlsctx is reference counted), so a reload drops nobody. Returns 0 or
 * tls_material_build's -errno after logging why. */
static int net_tls_load(struct net *n, const char *blob, size_t len)
{
    struct tlsctx *ctxs[CONF_MAX_LISTENERS] = {0};
    struct buf err = BUF_INIT;
    int rc = tls_material_build(n->cfg, blob, len, ctxs, &err);
    if (rc < 0) {
        log_err("TLS certificates not loaded: %s", err.data ? err.data : "unknown error");
        buf_free(&err);
        return rc;
    }
    buf_free(&err);
    for (size_t i = 0; i < n->nls; i++) {
        tlsctx_unref(n->tls[i]);
        n->tls[i] = ctxs[i];
    }
    return 0;
}

static void net_on_ctl(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
    struct net *n = arg;
    if (m->fd >= 0)
        close(m->fd);
    if (m->type != IPC_TLS_RELOAD) {
        log_err("ipc: unexpected message type %u from the parent", m->type);
        return;
    }
    if (net_tls_load(n, m->payload, m->len) == 0)
        log_info("reloaded TLS certificates");
}

static void net_on_ctl_close(struct ipc_chan *ch, int err, void *arg)
{
    /* Only reloads come this way; the parent's death ends us anyway. */
    log_debug("the parent's control channel closed");
}

static void net_on_ipc_close(struct ipc_chan *ch, int err, void *arg)
{
    /* Without the queue no message can be accepted: exit and let the
     * parent restart both sides. */
    log_err("lost the queue process (%s); exiting", err ? strerror(-err) : "closed");
    exit(1);
}

/* SIGTERM (stop): sessions finish their transaction. SIGUSR2 (a reload
 * replaced this process): sessions finish as their clients please. Either
 * way no new session starts here, and outbound deliveries finish. */
static void net_on_signal(struct ev_loop *loop, int signo, void *arg)
{
    struct net *n = arg;
    if (n->stopping) {
        if (signo != SIGUSR2 && n->reload_drain) {
            n->reload_drain = 0;
            n->stop_deadline_ms = clock_mono_ms() + (uint64_t)n->cfg->shutdown_timeout * 1000;
            net_drain_sweep(n, clock_mono_ms());
        }
        return;
    }
    n->stopping = 1;
    n->reload_drain = signo == SIGUSR2;
    ev_timer_cancel(loop, n->accept_resume);
    n->accept_resume = 0;
    /* The parent keeps the listeners: a new smtp process (a reload) goes
     * on accepting from the same sockets while this one drains. */
    for (size_t i = 0; i < n->nls; i++) {
        ev_io_del(loop, n->ls[i].fd);
        close(n->ls[i].fd);
    }
    n->stop_deadline_ms = clock_mono_ms() + (uint64_t)n->cfg->shutdown_timeout * 1000;
    log_info("%s: %u sessions and %u deliveries to finish within %us",
             n->reload_drain ? "replaced by a reload" : "stopping", n->nclients,
             relay_active(n->relay), n->cfg->shutdown_timeout);
    /* Idle sessions hear 421 now; the others finish their transaction. */
    net_drain_sweep(n, clock_mono_ms());
    if (n->nclients == 0 && relay_active(n->relay) == 0)
        ev_loop_stop(loop);
}

/* Every session holds a socket, and a queue file while it receives a
 * message; a soft limit of 1024 (the usual default outside systemd's
 * LimitNOFILE) would cap the default sessions_max of 2000 at about 1000.
 * The soft limit goes up to the hard one, which is the operator's. */
static void net_raise_fd_limit(const struct config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit up = {rl.rlim_max, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            rl = up;
    }
    uint64_t need = 2 * (uint64_t)cfg->sessions_max + 2 * (uint64_t)cfg->connections_max + 64;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
        log_warn("the file descriptor limit %llu is below the %llu that sessions_max %u and "
                 "connections_max %u may need: new connections will wait when it is reached; "
                 "raise LimitNOFILE (ulimit -n)",
                 (unsigned long long)rl.rlim_cur, (unsigned long long)need, cfg->sessions_max,
                 cfg->connections_max);
}

int net_main(const struct config *cfg, const struct net_listener *ls, size_t nls, int ipc_fd,
             const char *tls, size_t tls_len, int ctl_fd)
{
    log_set_ident("tern/smtpd");
    signal(SIGPIPE, SIG_IGN);
    net_raise_fd_limit(cfg);
    metrics_shm_net_start();
    metrics_http_drop();
    struct net n = {0};
    /* The resolver reads resolv.conf and starts its thread before the
     * chroot takes the files away. */
    n.loop = ev_loop_new();
    struct buf derr = BUF_INIT;
    n.dns = dns_new(n.loop, cfg->resolver, &derr);
    if (n.dns == NULL)
        log_err("DNS resolver not available (mail by MX will wait): %s",
                derr.data ? derr.data : "");
    buf_free(&derr);
    /* The Public Suffix List (DMARC's Organizational Domains) is a file:
     * read before the chroot. */
    if (psl_org_init() < 0)
        log_warn("public suffix list: using libpsl's built-in list");
    char empty[PATH_MAX];
    snprintf(empty, sizeof empty, "%s/empty", cfg->spool_dir);
    if (privsep_confine(empty, cfg->run_user) < 0)
        return 1;
    n.cfg = cfg;
    n.ls = ls;
    n.nls = nls;
    if (net_tls_load(&n, tls, tls_len) < 0)
        return 1;
    n.auth_ip = throttle_new(cfg->auth_failures_max, cfg->auth_failure_window,
                             THROTTLE_KEYS_DEFAULT);
    n.auth_users = throttle_new(cfg->auth_failures_max, cfg->auth_failure_window,
                                THROTTLE_KEYS_DEFAULT);
    idmap_init(&n.clients);
    keycount_init(&n.per_ip);
    n.spool_room = UINT64_MAX; /* not known until the queue says */
    n.ipc = ipc_chan_new(n.loop, ipc_fd, net_on_ipc, net_on_ipc_close, &n);
    net_dmarc_set_channel(n.ipc);
    n.ctl = ipc_chan_new(n.loop, ctl_fd, net_on_ctl, net_on_ctl_close, &n);
    n.relay = net_relay_ipc_new(n.loop, cfg, n.ipc, n.dns);
    for (size_t i = 0; i < nls; i++)
        if (ev_io_add(n.loop, ls[i].fd, EV_READ, net_on_listen, &n) < 0)
            fatal("cannot watch listener %zu", i);
    ev_hook_add(n.loop, net_reap, &n);
    ev_timer_add(n.loop, NET_SWEEP_MS, net_sweep, &n);
    ev_signal_add(n.loop, SIGTERM, net_on_signal, &n);
    ev_signal_add(n.loop, SIGINT, net_on_signal, &n);
    ev_signal_add(n.loop, SIGUSR2, net_on_signal, &n);
    if (ipc_send(n.ctl, IPC_NET_READY, NULL, -1) < 0)
        log_warn("cannot tell the parent this process is ready");
    int rc = ev_loop_run(n.loop);
    net_reap(n.loop, &n);
    /* Past shutdown_timeout some sessions are still open: cut them. */
    while (n.all)
        net_free_client(&n, n.all);
    relay_free(n.relay);
    dns_free(n.dns);
    net_dmarc_set_channel(NULL);
    ipc_chan_free(n.ipc);
    ipc_chan_free(n.ctl);
    for (size_t i = 0; i < nls; i++)
        tlsctx_unref(n.tls[i]);
    throttle_free(n.auth_ip);
    throttle_free(n.auth_users);
    idmap_free(&n.clients);
    keycount_free(&n.per_ip);
    ev_loop_free(n.loop);
    return rc < 0 ? 1 : 0;
}
