/* net_relay.c: relay jobs. A job walks its list of next-hop addresses
 * (RFC 5321 §5.1: in preference order; the next one on a connection
 * failure or a temporary failure of the whole session) until one gives
 * per-recipient answers, then reports them to the queue. */
#include "proc/net_relay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "dns/mx.h"
#include "ev/conn.h"
#include "ev/tlsctx.h"
#include "ipc/ipc_types.h"
#include "mail/envelope.h"
#include "mail/result.h"
#include "smtp/smtp_client.h"

#define RELAY_TARGETS_MAX 32
#define RELAY_CONNECT_MS 30000

struct relay_target {
    struct sockaddr_storage ss;
    socklen_t sl;
    char name[300]; /* "host[addr]:port" for logs and results */
};

struct relay_job {
    struct net_relay *r;
    struct relay_job *next, *prev; /* all jobs */
    uint64_t id;
    char domain[256];
    struct envelope env;
    const char **rcpts; /* owned array; strings are env's */
    unsigned *notify;   /* owned array: DSN NOTIFY per recipient */
    const char **orcpt; /* owned array; strings are env's */
    struct mx_req *mx;  /* an MX lookup in progress */
    int fd;             /* owned content */
    uint64_t len;
    struct relay_target targets[RELAY_TARGETS_MAX];
    size_t ntargets, cur;
    /* The current attempt. */
    int sock;           /* connecting, -1 otherwise */
    ev_timer_id connect_timer;
    struct conn *conn;  /* owned */
    struct smtp_client *client; /* owned */
    int handshaking;
    char last_error[512];
    int finished;       /* answered; freed from the reaper */
};

/* A connection given up for the next address, freed from the reaper
 * (never inside its own callbacks). */
struct relay_dead {
    struct relay_dead *next;
    struct conn *conn;
    struct smtp_client *client;
};

struct net_relay {
    struct relay_dead *dead;
    struct ev_loop *loop;
    const struct config *cfg;
    struct ipc_chan *ipc;
    struct tlsctx *tls; /* client context */
    struct dns *dns;    /* not owned, may be NULL */
    struct relay_job *jobs;
    unsigned njobs;
    ev_timer_id reap_timer;
};

static void relay_try(struct relay_job *j);

/* ---- answers ---- */

static void relay_answer(struct relay_job *j, const struct result *res, size_t n,
                         const char *relay)
{
    struct buf b = BUF_INIT;
    ipc_put_u64(&b, j->id);
    ipc_put_str(&b, relay);
    ipc_put_u32(&b, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        ipc_put_u32(&b, (uint32_t)res[i].kind);
        ipc_put_i32(&b, res[i].code);
        ipc_put_str(&b, res[i].enh);
        ipc_put_str(&b, res[i].text);
    }
    if (ipc_send(j->r->ipc, IPC_RELAY_DONE, &b, -1) < 0)
        log_err("relay: cannot answer the queue for %s", j->env.qid);
    buf_free(&b);
}

/* Frees what a job owns besides its connection. */
static void relay_job_release(struct relay_job *j)
{
    if (j->mx)
        mx_cancel(j->mx);
    if (j->fd >= 0)
        close(j->fd);
    free(j->rcpts);
    free(j->notify);
    free(j->orcpt);
    envelope_clear(&j->env);
    free(j);
}

static void relay_free_dead(struct net_relay *r)
{
    while (r->dead) {
        struct relay_dead *d = r->dead;
        r->dead = d->next;
        smtp_client_free(d->client);
        conn_free(d->conn);
        free(d);
    }
}

static void relay_reap(struct ev_loop *loop, void *arg)
{
    struct net_relay *r = arg;
    r->reap_timer = 0;
    relay_free_dead(r);
    struct relay_job *j = r->jobs;
    while (j) {
        struct relay_job *next = j->next;
        if (j->finished && (j->conn == NULL || conn_is_closed(j->conn))) {
            if (j->prev)
                j->prev->next = j->next;
            else
                r->jobs = j->next;
            if (j->next)
                j->next->prev = j->prev;
            r->njobs--;
            smtp_client_free(j->client);
            conn_free(j->conn);
            if (j->sock >= 0) {
                ev_io_del(loop, j->sock);
                close(j->sock);
            }
            ev_timer_cancel(loop, j->connect_timer);
            relay_job_release(j);
        }
        j = next;
    }
}

static void relay_schedule_reap(struct net_relay *r)
{
    if (r->reap_timer == 0)
        r->reap_timer = ev_timer_add(r->loop, 0, relay_reap, r);
}

/* The same temporary failure for every recipient. */
static void relay_fail_all(struct relay_job *j, enum result_kind k, int code, const char *enh,
                           const char *why)
{
    size_t n = j->env.nrcpts;
    struct result *res = xcalloc(n ? n : 1, sizeof *res);
    for (size_t i = 0; i < n; i++)
        result_set(&res[i], k, code, enh, "%s", why);
    relay_answer(j, res, n, "none");
    free(res);
    j->finished = 1;
    relay_schedule_reap(j->r);
}

/* ---- the SMTP client on a conn ---- */

static void relay_io_write(void *io, const void *p, size_t n)
{
    struct relay_job *j = io;
    if (j->conn)
        conn_write(j->conn, p, n);
}

static size_t relay_io_pending(void *io)
{
    struct relay_job *j = io;
    return j->conn ? conn_wpending(j->conn) : 0;
}

static void relay_io_starttls(void *io)
{
    struct relay_job *j = io;
    if (j->conn == NULL || j->r->tls == NULL) {
        smtp_client_tls_done(j->client, 0);
        return;
    }
    j->handshaking = 1;
    conn_starttls_client(j->conn, j->r->tls);
}

static void relay_io_timeout(void *io, uint64_t ms)
{
    struct relay_job *j = io;
    if (j->conn)
        conn_set_timeout(j->conn, ms);
}

static const struct smtp_client_io relay_client_io = {
    relay_io_write, relay_io_pending, relay_io_starttls, relay_io_timeout,
};

static void relay_on_read(struct conn *c, void *arg)
{
    struct relay_job *j = arg;
    if (c == j->conn && j->client)
        smtp_client_input(j->client, conn_rbuf(c));
}

static void relay_on_drain(struct conn *c, void *arg)
{
    struct relay_job *j = arg;
    if (c == j->conn && j->client)
        smtp_client_drained(j->client);
}

static void relay_on_tls(struct conn *c, void *arg, int err)
{
    struct relay_job *j = arg;
    if (c != j->conn)
        return;
    j->handshaking = 0;
    if (j->client)
        smtp_client_tls_done(j->client, err == 0);
}

static void relay_on_close(struct conn *c, void *arg, int err)
{
    struct relay_job *j = arg;
    if (c != j->conn)
        return; /* a connection already given up */
    if (j->client == NULL || j->finished) {
        relay_schedule_reap(j->r);
        return;
    }
    if (j->handshaking) {
        j->handshaking = 0;
        smtp_client_tls_done(j->client, 0);
        return;
    }
    smtp_client_lost(j->client, err == -ETIMEDOUT ? "timeout" : err ? strerror(-err)
                                                                    : "connection closed");
}

static const struct conn_cb relay_conn_cb = {
    .on_read = relay_on_read, .on_close = relay_on_close, .on_drain = relay_on_drain,
    .on_tls = relay_on_tls};

/* The transaction's outcome. A session that failed as a whole (no
 * connection, a refused greeting, a lost connection) moves on to the
 * next address; anything else is the answer. */
static void relay_done(void *arg, const struct result *res, size_t n, int closed)
{
    struct relay_job *j = arg;
    int all_temp = n > 0;
    for (size_t i = 0; i < n; i++)
        if (res[i].kind != RESULT_TEMPFAIL)
            all_temp = 0;
    if (closed && all_temp && j->cur + 1 < j->ntargets) {
        strutil_lcpy(j->last_error, res[0].text, sizeof j->last_error);
        log_info("%s: %s; trying the next host", j->env.qid, res[0].text);
        struct relay_dead *d = xcalloc(1, sizeof *d);
        d->conn = j->conn;
        d->client = j->client;
        d->next = j->r->dead;
        j->r->dead = d;
        if (j->conn)
            conn_abort(j->conn);
        j->conn = NULL;
        j->client = NULL;
        j->cur++;
        relay_schedule_reap(j->r);
        relay_try(j);
        return;
    }
    relay_answer(j, res, n, j->targets[j->cur].name);
    j->finished = 1;
    if (!closed && j->client) {
        smtp_client_quit(j->client);
        conn_close(j->conn);
    } else if (j->conn) {
        conn_abort(j->conn);
    }
    relay_schedule_reap(j->r);
}

/* ---- connecting ---- */

static void relay_connected(struct relay_job *j)
{
    const struct relay_target *t = &j->targets[j->cur];
    int one = 1;
    (void)setsockopt(j->sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    j->conn = conn_new(j->r->loop, j->sock, &relay_conn_cb, j);
    j->sock = -1;
    j->client = smtp_client_new(j->r->cfg->hostname, t->name, SMTP_TLS_MAY, &relay_client_io, j);
    struct smtp_client_msg m = {
        .from = j->env.from ? j->env.from : "",
        .rcpts = j->rcpts,
        .nrcpts = j->env.nrcpts,
        .fd = j->fd,
        .off = 0,
        .len = j->len,
        .eightbit = j->env.body != ENV_BODY_7BIT,
        .smtputf8 = j->env.smtputf8,
        .envid = j->env.envid,
        .ret = j->env.ret_full ? 1 : j->env.ret_hdrs ? 2 : 0,
        .notify = j->notify,
        .orcpt = j->orcpt,
    };
    smtp_client_send(j->client, &m, relay_done, j);
}

static void relay_connect_failed(struct relay_job *j, const char *why)
{
    ev_timer_cancel(j->r->loop, j->connect_timer);
    j->connect_timer = 0;
    if (j->sock >= 0) {
        ev_io_del(j->r->loop, j->sock);
        close(j->sock);
        j->sock = -1;
    }
    snprintf(j->last_error, sizeof j->last_error, "connect to %s: %s", j->targets[j->cur].name,
             why);
    log_info("%s: %s", j->env.qid, j->last_error);
    j->cur++;
    relay_try(j);
}

static void relay_on_connect(struct ev_loop *loop, int fd, unsigned events, void *arg)
{
    struct relay_job *j = arg;
    int err = 0;
    socklen_t el = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
        err = errno;
    if (err) {
        relay_connect_failed(j, strerror(err));
        return;
    }
    ev_timer_cancel(loop, j->connect_timer);
    j->connect_timer = 0;
    ev_io_del(loop, fd);
    relay_connected(j);
}

static void relay_on_connect_timeout(struct ev_loop *loop, void *arg)
{
    struct relay_job *j = arg;
    j->connect_timer = 0;
    relay_connect_failed(j, "Connection timed out");
}

/* Tries the current target and, on immediate failure, the next ones. */
static void relay_try(struct relay_job *j)
{
    while (j->cur < j->ntargets) {
        const struct relay_target *t = &j->targets[j->cur];
        int fd = socket(t->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            snprintf(j->last_error, sizeof j->last_error, "socket: %s", strerror(errno));
            j->cur++;
            continue;
        }
        if (connect(fd, (const struct sockaddr *)&t->ss, t->sl) < 0 && errno != EINPROGRESS) {
            snprintf(j->last_error, sizeof j->last_error, "connect to %s: %s", t->name,
                     strerror(errno));
            close(fd);
            j->cur++;
            continue;
        }
        j->sock = fd;
        if (ev_io_add(j->r->loop, fd, EV_WRITE, relay_on_connect, j) < 0) {
            close(fd);
            j->sock = -1;
            j->cur++;
            continue;
        }
        j->connect_timer = ev_timer_add(j->r->loop, RELAY_CONNECT_MS, relay_on_connect_timeout, j);
        return;
    }
    relay_fail_all(j, RESULT_TEMPFAIL, 451, "4.4.1",
                   j->last_error[0] ? j->last_error : "no host to connect to");
}

static int relay_add_target(struct relay_job *j, const char *host, const char *addr, int port);

/* RFC 5321 §5.1: hosts in preference order; a host that is us, and any
 * less preferred, would loop the mail back. */
static void relay_on_mx(void *arg, struct mx_result *res)
{
    struct relay_job *j = arg;
    j->mx = NULL;
    switch (res->status) {
    case MX_OK:
        break;
    case MX_NULLMX:
        relay_fail_all(j, RESULT_PERMFAIL, 556, "5.1.10", "the domain accepts no mail (null MX)");
        mx_result_free(res);
        return;
    case MX_NXDOMAIN:
        relay_fail_all(j, RESULT_PERMFAIL, 550, "5.1.2", res->why[0] ? res->why
                                                                     : "no such domain");
        mx_result_free(res);
        return;
    default:
        relay_fail_all(j, RESULT_TEMPFAIL, 451, "4.4.3", res->why[0] ? res->why
                                                                     : "DNS lookup failed");
        mx_result_free(res);
        return;
    }
    int looped = 0;
    for (size_t h = 0; h < res->nhosts && !looped; h++) {
        const struct mx_host *mh = &res->hosts[h];
        if (strutil_casecmp(mh->name, j->r->cfg->hostname) == 0) {
            looped = 1;
            break;
        }
        for (size_t a = 0; a < mh->naddrs; a++) {
            char addr[INET6_ADDRSTRLEN];
            const struct sockaddr_storage *ss = &mh->addrs[a];
            const void *p = ss->ss_family == AF_INET6
                                ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
                                : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;
            if (inet_ntop(ss->ss_family, p, addr, sizeof addr) != NULL)
                (void)relay_add_target(j, mh->name, addr, (int)j->r->cfg->relay_port);
        }
    }
    mx_result_free(res);
    if (j->ntargets == 0 && looped) {
        relay_fail_all(j, RESULT_PERMFAIL, 554, "5.4.6",
                       "mail for this domain loops back to myself");
        return;
    }
    relay_try(j);
}

static int relay_add_target(struct relay_job *j, const char *host, const char *addr, int port)
{
    if (j->ntargets >= RELAY_TARGETS_MAX)
        return -1;
    struct relay_target *t = &j->targets[j->ntargets];
    memset(t, 0, sizeof *t);
    if (strchr(addr, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t->ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
            return -1;
        t->sl = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&t->ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1)
            return -1;
        t->sl = sizeof *s4;
    }
    snprintf(t->name, sizeof t->name, "%s[%s]:%d", host, addr, port);
    j->ntargets++;
    return 0;
}

/* An address literal "[192.0.2.1]" or "[IPv6:2001:db8::1]" names its host. */
static int relay_literal(struct relay_job *j)
{
    size_t n = strlen(j->domain);
    if (n < 3 || j->domain[0] != '[' || j->domain[n - 1] != ']')
        return 0;
    char addr[128];
    const char *a = j->domain + 1;
    if (!strncasecmp(a, "IPv6:", 5))
        a += 5;
    size_t al = (size_t)(j->domain + n - 1 - a);
    if (al >= sizeof addr)
        return -1;
    memcpy(addr, a, al);
    addr[al] = '\0';
    return relay_add_target(j, j->domain, addr, (int)j->r->cfg->relay_port) == 0 ? 1 : -1;
}

static void relay_start(struct relay_job *j)
{
    const struct conf_route *rt = config_route(j->r->cfg, j->domain);
    if (rt && rt->kind == CONF_ROUTE_DISCARD) {
        size_t n = j->env.nrcpts;
        struct result *res = xcalloc(n ? n : 1, sizeof *res);
        for (size_t i = 0; i < n; i++)
            result_set(&res[i], RESULT_OK, 250, "2.0.0", "discarded by route");
        relay_answer(j, res, n, "discard");
        free(res);
        j->finished = 1;
        relay_schedule_reap(j->r);
        return;
    }
    if (rt && rt->kind == CONF_ROUTE_HOST) {
        relay_add_target(j, rt->host, rt->host, rt->port);
        relay_try(j);
        return;
    }
    int lit = relay_literal(j);
    if (lit < 0) {
        relay_fail_all(j, RESULT_PERMFAIL, 550, "5.1.2", "bad address literal");
        return;
    }
    if (lit > 0) {
        relay_try(j);
        return;
    }
    if (j->r->dns == NULL) {
        relay_fail_all(j, RESULT_TEMPFAIL, 451, "4.4.3", "no DNS resolver");
        return;
    }
    j->mx = mx_resolve(j->r->dns, j->domain, relay_on_mx, j);
    if (j->mx == NULL)
        relay_fail_all(j, RESULT_TEMPFAIL, 451, "4.4.3", "cannot start the DNS lookup");
}

void net_relay_job(struct net_relay *r, struct ipc_msg *msg)
{
    struct ipc_rd rd;
    ipc_rd_init(&rd, msg);
    uint64_t id = ipc_get_u64(&rd);
    char domain[256];
    ipc_get_str(&rd, domain, sizeof domain);
    uint64_t len = ipc_get_u64(&rd);
    size_t elen;
    const char *ep = ipc_get_bytes(&rd, &elen, IPC_MAX_PAYLOAD);
    struct relay_job *j = xcalloc(1, sizeof *j);
    j->r = r;
    j->id = id;
    j->sock = -1;
    j->fd = msg->fd;
    msg->fd = -1;
    j->len = len;
    envelope_init(&j->env);
    strutil_lcpy(j->domain, domain, sizeof j->domain);
    j->next = r->jobs;
    if (r->jobs)
        r->jobs->prev = j;
    r->jobs = j;
    r->njobs++;
    if (ipc_rd_end(&rd) < 0 || j->fd < 0 || envelope_parse(ep, elen, &j->env) < 0 ||
        j->env.nrcpts == 0) {
        log_err("relay: malformed request from the queue");
        relay_fail_all(j, RESULT_TEMPFAIL, 451, "4.3.0", "malformed relay request");
        return;
    }
    j->rcpts = xcalloc(j->env.nrcpts, sizeof *j->rcpts);
    j->notify = xcalloc(j->env.nrcpts, sizeof *j->notify);
    j->orcpt = xcalloc(j->env.nrcpts, sizeof *j->orcpt);
    for (size_t i = 0; i < j->env.nrcpts; i++) {
        j->rcpts[i] = j->env.rcpts[i].addr;
        j->notify[i] = j->env.rcpts[i].notify;
        j->orcpt[i] = j->env.rcpts[i].orcpt;
    }
    relay_start(j);
}

struct net_relay *net_relay_new(struct ev_loop *loop, const struct config *cfg,
                                struct ipc_chan *ipc, struct dns *dns)
{
    struct net_relay *r = xcalloc(1, sizeof *r);
    r->dns = dns;
    r->loop = loop;
    r->cfg = cfg;
    r->ipc = ipc;
    struct buf err = BUF_INIT;
    r->tls = tlsctx_client_new(&err);
    if (r->tls == NULL)
        log_warn("relay: no outbound TLS: %s", err.data ? err.data : "");
    buf_free(&err);
    return r;
}

void net_relay_free(struct net_relay *r)
{
    if (r == NULL)
        return;
    for (struct relay_job *j = r->jobs; j; j = j->next)
        j->finished = 1;
    ev_timer_cancel(r->loop, r->reap_timer);
    r->reap_timer = 0;
    for (struct relay_job *j = r->jobs; j; j = j->next)
        if (j->conn)
            conn_abort(j->conn);
    /* conn_abort reports on_close from the loop; free everything now. */
    struct relay_job *j = r->jobs;
    while (j) {
        struct relay_job *next = j->next;
        smtp_client_free(j->client);
        conn_free(j->conn);
        if (j->sock >= 0) {
            ev_io_del(r->loop, j->sock);
            close(j->sock);
        }
        ev_timer_cancel(r->loop, j->connect_timer);
        relay_job_release(j);
        j = next;
    }
    relay_free_dead(r);
    tlsctx_unref(r->tls);
    free(r);
}

unsigned net_relay_active(const struct net_relay *r)
{
    return r->njobs;
}
