/* relay_conn.c: outbound connections. A connection that ends its
 * transaction cleanly stays idle for a few seconds and carries the next
 * message to the same address (no new TCP and TLS handshake, no EHLO);
 * the number of connections is bounded in all and per address
 * (connections_max, connections_per_destination), and jobs
 * beyond the bounds wait in arrival order. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "ev/tlsctx.h"
#include "deliver/relay_priv.h"

static void rconn_kill(struct relay_conn *rc)
{
    if (rc->dead)
        return;
    rc->dead = 1;
    rc->r->nconns--;
    ev_timer_cancel(rc->r->loop, rc->timer);
    rc->timer = 0;
    if (rc->sock >= 0) {
        ev_io_del(rc->r->loop, rc->sock);
        close(rc->sock);
        rc->sock = -1;
    }
    if (rc->conn)
        conn_abort(rc->conn);
    relay_schedule_reap(rc->r);
}

/* Jobs that waited for a slot get another chance, oldest first. */
static void rconn_wake(struct relay *r)
{
    struct relay_job *w = r->wait_head;
    r->wait_head = r->wait_tail = NULL;
    while (w) {
        struct relay_job *next = w->wnext;
        w->wnext = NULL;
        w->waiting = 0;
        relay_try(w);
        w = next;
    }
}

void relay_unwait(struct relay_job *j)
{
    struct relay *r = j->r;
    struct relay_job *prev = NULL;
    for (struct relay_job *w = r->wait_head; w; prev = w, w = w->wnext) {
        if (w != j)
            continue;
        if (prev)
            prev->wnext = w->wnext;
        else
            r->wait_head = w->wnext;
        if (r->wait_tail == w)
            r->wait_tail = prev;
        break;
    }
    j->wnext = NULL;
    j->waiting = 0;
}

/* ---- the SMTP client's io on a conn ---- */

static void rconn_io_write(void *io, const void *p, size_t n)
{
    struct relay_conn *rc = io;
    if (rc->conn)
        conn_write(rc->conn, p, n);
}

static size_t rconn_io_pending(void *io)
{
    struct relay_conn *rc = io;
    return rc->conn ? conn_wpending(rc->conn) : 0;
}

static void rconn_io_starttls(void *io)
{
    struct relay_conn *rc = io;
    if (rc->conn == NULL || rc->r->tls == NULL) {
        smtp_client_tls_done(rc->client, 0);
        return;
    }
    rc->handshaking = 1;
    const struct conf_route *rt = rc->route;
    conn_tls_set_peer(rc->conn, rc->host, rt && rt->tls == CONF_TLS_VERIFY);
    conn_starttls_client(rc->conn, rc->r->tls);
}

static void rconn_io_timeout(void *io, uint64_t ms)
{
    struct relay_conn *rc = io;
    if (rc->conn)
        conn_set_timeout(rc->conn, ms);
}

static const struct smtp_client_io rconn_client_io = {
    rconn_io_write, rconn_io_pending, rconn_io_starttls, rconn_io_timeout,
};

static void rconn_on_read(struct conn *c, void *arg)
{
    struct relay_conn *rc = arg;
    if (!rc->dead && rc->client)
        smtp_client_input(rc->client, conn_rbuf(c));
}

static void rconn_on_drain(struct conn *c, void *arg)
{
    struct relay_conn *rc = arg;
    if (!rc->dead && rc->client)
        smtp_client_drained(rc->client);
}

static void rconn_on_tls(struct conn *c, void *arg, int err)
{
    struct relay_conn *rc = arg;
    rc->handshaking = 0;
    relay_count(rc->r, err == 0 ? RELAY_EV_TLS_OK : RELAY_EV_TLS_FAILED);
    if (!rc->dead && rc->client)
        smtp_client_tls_done(rc->client, err == 0);
}

static void rconn_on_close(struct conn *c, void *arg, int err)
{
    struct relay_conn *rc = arg;
    rc->closed = 1;
    if (rc->dead) {
        relay_schedule_reap(rc->r);
        return;
    }
    if (rc->job == NULL) {
        rconn_kill(rc); /* an idle connection the server closed */
        rconn_wake(rc->r);
        return;
    }
    if (rc->handshaking) {
        rc->handshaking = 0;
        relay_count(rc->r, RELAY_EV_TLS_FAILED);
        smtp_client_tls_done(rc->client, 0);
        return;
    }
    smtp_client_lost(rc->client, err == -ETIMEDOUT ? "timeout" : err ? strerror(-err)
                                                                    : "connection closed");
}

static const struct conn_cb rconn_conn_cb = {
    .on_read = rconn_on_read, .on_close = rconn_on_close, .on_drain = rconn_on_drain,
    .on_tls = rconn_on_tls};

static void rconn_done(void *arg, const struct result *res, size_t n, int closed)
{
    struct relay_conn *rc = arg;
    struct relay_job *j = rc->job;
    if (j)
        relay_job_done(j, res, n, closed);
}

static void rconn_send(struct relay_conn *rc, struct relay_job *j)
{
    rc->job = j;
    j->rc = rc;
    /* Recipients a server's MAILMAX left untried go on a new connection. */
    size_t from = j->rdone;
    struct smtp_client_msg m = {
        .from = j->env.from ? j->env.from : "",
        .rcpts = j->rcpts + from,
        .nrcpts = j->env.nrcpts - from,
        .fd = j->fd,
        .off = 0,
        .len = j->len,
        .body = j->env.body,
        .smtputf8 = j->env.smtputf8,
        .envid = j->env.envid,
        .ret = j->env.ret_full ? 1 : j->env.ret_hdrs ? 2 : 0,
        .notify = j->notify + from,
        .orcpt = j->orcpt + from,
    };
    smtp_client_send(rc->client, &m, rconn_done, rc);
}

/* ---- idle connections ---- */

/* Ends an idle session politely: QUIT, then the close. */
static void rconn_quit(struct relay_conn *rc)
{
    ev_timer_cancel(rc->r->loop, rc->timer);
    rc->timer = 0;
    smtp_client_quit(rc->client);
    rc->dead = 1;
    rc->r->nconns--;
    conn_close(rc->conn); /* flushes QUIT; reaped once closed */
    relay_schedule_reap(rc->r);
}

static void rconn_idle_fire(struct ev_loop *loop, void *arg)
{
    struct relay_conn *rc = arg;
    rc->timer = 0;
    if (rc->dead || rc->job)
        return;
    rconn_quit(rc);
    rconn_wake(rc->r);
}

void relay_conn_release(struct relay_conn *rc, int usable)
{
    if (rc->job)
        rc->job->rc = NULL;
    rc->job = NULL;
    if (usable && !rc->dead && smtp_client_spent(rc->client)) {
        rconn_quit(rc); /* RFC 9422 MAILMAX: no more transactions here */
    } else if (!usable || rc->dead || !smtp_client_idle(rc->client)) {
        rconn_kill(rc);
    } else {
        rc->timer = ev_timer_add(rc->r->loop, RELAY_IDLE_MS, rconn_idle_fire, rc);
    }
    rconn_wake(rc->r);
}

/* ---- connecting ---- */

static void rconn_connect_failed(struct relay_conn *rc, const char *why)
{
    struct relay_job *j = rc->job;
    rc->job = NULL;
    rconn_kill(rc);
    relay_count(rc->r, RELAY_EV_CONNECT_FAILED);
    if (j == NULL)
        return;
    j->rc = NULL;
    snprintf(j->last_error, sizeof j->last_error, "connect to %s: %s", rc->target, why);
    log_msg_as("tern/smtp", LOGL_INFO, "%s: %s", j->env.qid, j->last_error);
    j->cur++;
    relay_try(j);
}

static void rconn_on_connect(struct ev_loop *loop, int fd, unsigned events, void *arg)
{
    struct relay_conn *rc = arg;
    int err = 0;
    socklen_t el = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
        err = errno;
    if (err) {
        rconn_connect_failed(rc, strerror(err));
        return;
    }
    ev_timer_cancel(loop, rc->timer);
    rc->timer = 0;
    relay_count(rc->r, RELAY_EV_CONNECT_OK);
    ev_io_del(loop, fd);
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    rc->conn = conn_new(loop, fd, &rconn_conn_cb, rc);
    rc->sock = -1;
    const struct conf_route *rt = rc->route;
    enum smtp_client_tls pol = !rt || rt->tls == CONF_TLS_MAY ? SMTP_TLS_MAY
                               : rt->tls == CONF_TLS_NONE   ? SMTP_TLS_NONE
                                                            : SMTP_TLS_REQUIRE;
    rc->client = smtp_client_new(rc->r->cfg->hostname, rc->target, pol, &rconn_client_io, rc);
    if (rt && rt->auth_user)
        smtp_client_set_auth(rc->client, rt->auth_user, rt->auth_pass);
    struct relay_job *j = rc->job;
    rc->job = NULL;
    rconn_send(rc, j);
}

static void rconn_on_connect_timeout(struct ev_loop *loop, void *arg)
{
    struct relay_conn *rc = arg;
    rc->timer = 0;
    rconn_connect_failed(rc, "Connection timed out");
}

/* Starts a connection for job j to target t. Returns 0, or -errno with
 * j->last_error set when it failed at once. */
static int rconn_open(struct relay *r, struct relay_job *j, const struct relay_target *t)
{
    int fd = socket(t->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 ||
        (connect(fd, (const struct sockaddr *)&t->ss, t->sl) < 0 && errno != EINPROGRESS)) {
        int err = errno;
        snprintf(j->last_error, sizeof j->last_error, "connect to %s: %s", t->name,
                 strerror(err));
        if (fd >= 0)
            close(fd);
        relay_count(r, RELAY_EV_CONNECT_FAILED);
        return -err;
    }
    struct relay_conn *rc = xcalloc(1, sizeof *rc);
    rc->r = r;
    rc->sock = fd;
    rc->route = j->route;
    strutil_lcpy(rc->target, t->name, sizeof rc->target);
    strutil_lcpy(rc->host, t->host, sizeof rc->host);
    int err = ev_io_add(r->loop, fd, EV_WRITE, rconn_on_connect, rc);
    if (err < 0) {
        close(fd);
        free(rc);
        snprintf(j->last_error, sizeof j->last_error, "connect to %s: cannot watch", t->name);
        return err;
    }
    rc->timer = ev_timer_add(r->loop, RELAY_CONNECT_MS, rconn_on_connect_timeout, rc);
    rc->next = r->conns;
    if (r->conns)
        r->conns->prev = rc;
    r->conns = rc;
    r->nconns++;
    rc->job = j;
    j->rc = rc;
    return 0;
}

void relay_try(struct relay_job *j)
{
    struct relay *r = j->r;
    while (j->cur < j->ntargets) {
        const struct relay_target *t = &j->targets[j->cur];
        unsigned to_host = 0;
        for (struct relay_conn *rc = r->conns; rc; rc = rc->next) {
            if (rc->dead || strcmp(rc->target, t->name) || rc->route != j->route)
                continue;
            if (rc->job == NULL && rc->client && smtp_client_idle(rc->client)) {
                ev_timer_cancel(r->loop, rc->timer);
                rc->timer = 0;
                rconn_send(rc, j);
                return;
            }
            to_host++;
        }
        if (r->nconns >= r->cfg->connections_max ||
            to_host >= r->cfg->connections_per_destination) {
            j->waiting = 1;
            if (r->wait_tail)
                r->wait_tail->wnext = j;
            else
                r->wait_head = j;
            r->wait_tail = j;
            return;
        }
        if (rconn_open(r, j, t) == 0)
            return;
        log_msg_as("tern/smtp", LOGL_INFO, "%s: %s", j->env.qid, j->last_error);
        j->cur++;
    }
    relay_fail_all(j, RESULT_TEMPFAIL, 451, "4.4.1",
                   j->last_error[0] ? j->last_error : "no host to connect to");
}

void relay_conns_reap(struct relay *r, int all)
{
    struct relay_conn *rc = r->conns;
    while (rc) {
        struct relay_conn *next = rc->next;
        if (all && !rc->dead) {
            rc->job = NULL;
            rconn_kill(rc);
        }
        if (rc->dead && (all || rc->conn == NULL || rc->closed)) {
            if (rc->prev)
                rc->prev->next = rc->next;
            else
                r->conns = rc->next;
            if (rc->next)
                rc->next->prev = rc->prev;
            ev_timer_cancel(r->loop, rc->timer);
            smtp_client_free(rc->client);
            conn_free(rc->conn);
            free(rc);
        }
        rc = next;
    }
}
