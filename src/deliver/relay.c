/* relay.c: relay jobs. A job finds its next-hop addresses (a route
 * line, an address literal, or DNS MX in preference order), walks them
 * (RFC 5321 §5.1: the next one on a connection failure or a temporary
 * failure of the whole session) until one gives per-recipient answers,
 * and reports those to the queue. Connections are relay_conn.c's. */
#include "deliver/relay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/inetsock.h"
#include "base/log.h"
#include "base/sizes.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "dns/mx.h"
#include "ev/tlsctx.h"
#include "deliver/relay_priv.h"

/* ---- answers ---- */

void relay_answer(struct relay_job *j, const struct result *res, size_t n, const char *relay,
                  int peer_dsn)
{
    j->r->answer(j->r->answer_arg, j->id, res, n, relay, peer_dsn);
}

/* Frees what a job owns. */
static void relay_job_release(struct relay_job *j)
{
    ev_timer_cancel(j->r->loop, j->deadline);
    if (j->mx)
        mx_cancel(j->mx);
    if (j->fd >= 0)
        close(j->fd);
    free(j->rcpts);
    free(j->notify);
    free(j->orcpt);
    free(j->res);
    envelope_clear(&j->env);
    free(j);
}

/* The job has its answer: the reaper frees it. */
static void relay_finish(struct relay_job *j)
{
    j->finished = 1;
    ev_timer_cancel(j->r->loop, j->deadline);
    j->deadline = 0;
    relay_schedule_reap(j->r);
}

static void relay_reap(struct ev_loop *loop, void *arg)
{
    struct relay *r = arg;
    r->reap_timer = 0;
    relay_conns_reap(r, 0);
    struct relay_job *j = r->jobs;
    while (j) {
        struct relay_job *next = j->next;
        if (j->finished) {
            if (j->prev)
                j->prev->next = j->next;
            else
                r->jobs = j->next;
            if (j->next)
                j->next->prev = j->prev;
            r->njobs--;
            relay_job_release(j);
        }
        j = next;
    }
}

void relay_schedule_reap(struct relay *r)
{
    if (r->reap_timer == 0)
        r->reap_timer = ev_timer_add(r->loop, 0, relay_reap, r);
}

/* Answers the queue for every recipient: those answered before
 * (j->res[0..rdone)), then res[0..n) for the rest. */
static void relay_answer_all(struct relay_job *j, const struct result *res, size_t n,
                             const char *relay, int peer_dsn)
{
    if (j->rdone == 0) {
        relay_answer(j, res, n, relay, peer_dsn);
    } else {
        memcpy(j->res + j->rdone, res, n * sizeof *res);
        relay_answer(j, j->res, j->rdone + n, relay, peer_dsn);
    }
    relay_finish(j);
}

void relay_fail_all(struct relay_job *j, enum result_kind k, int code, const char *enh,
                    const char *why)
{
    size_t n = j->env.nrcpts - j->rdone;
    struct result *res = xcalloc(n ? n : 1, sizeof *res);
    for (size_t i = 0; i < n; i++)
        result_set(&res[i], k, code, enh, "%s", why);
    relay_answer_all(j, res, n, "none", 0);
    free(res);
}

/* The transaction's outcome. A session that failed as a whole (no
 * connection, a refused greeting, a lost connection) moves on to the
 * next address; anything else is the answer. */
void relay_job_done(struct relay_job *j, const struct result *res, size_t n, int closed)
{
    struct relay_conn *rc = j->rc;
    size_t tried = rc && rc->client ? smtp_client_tried(rc->client) : n;
    if (tried > 0 && tried < n) {
        /* RFC 9422 MAILMAX: the session ended before the last recipients;
         * they go on a new connection now, the answers so far are kept. */
        if (j->res == NULL)
            j->res = xcalloc(j->env.nrcpts, sizeof *j->res);
        memcpy(j->res + j->rdone, res, tried * sizeof *res);
        j->rdone += tried;
        if (rc)
            relay_conn_release(rc, !closed);
        relay_try(j);
        return;
    }
    int all_temp = n > 0;
    for (size_t i = 0; i < n; i++)
        if (res[i].kind != RESULT_TEMPFAIL)
            all_temp = 0;
    if (closed && all_temp && j->cur + 1 < j->ntargets) {
        strutil_lcpy(j->last_error, res[0].text, sizeof j->last_error);
        log_msg_as("tern/smtp", LOGL_INFO, "%s: %s; trying the next host", j->env.qid,
                   res[0].text);
        if (rc)
            relay_conn_release(rc, 0);
        j->cur++;
        relay_try(j);
        return;
    }
    relay_answer_all(j, res, n, j->targets[j->cur].name,
                     rc && rc->client && smtp_client_dsn(rc->client));
    if (rc)
        relay_conn_release(rc, !closed);
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

/* Returns 0, -ENOSPC when the job has all the targets it can take, or
 * -EINVAL for an address that is not numeric. */
static int relay_add_target(struct relay_job *j, const char *host, const char *addr, int port)
{
    if (j->ntargets >= RELAY_TARGETS_MAX)
        return -ENOSPC;
    struct relay_target *t = &j->targets[j->ntargets];
    memset(t, 0, sizeof *t);
    int rc = inetsock_addr(addr, port, &t->ss, &t->sl);
    if (rc < 0)
        return rc;
    snprintf(t->name, sizeof t->name, "%s[%s]:%d", host, addr, port);
    strutil_lcpy(t->host, host, sizeof t->host);
    j->ntargets++;
    return 0;
}

/* An address literal "[192.0.2.1]" or "[IPv6:2001:db8::1]" names its host.
 * Returns 1 when the domain is one (its target added), 0 when it is no
 * literal, or -EINVAL for a malformed one. */
static int relay_literal(struct relay_job *j)
{
    size_t n = strlen(j->domain);
    if (n < 3 || j->domain[0] != '[' || j->domain[n - 1] != ']')
        return 0;
    char addr[IP_TEXT_MAX];
    const char *a = j->domain + 1;
    if (!strncasecmp(a, "IPv6:", 5))
        a += 5;
    size_t al = (size_t)(j->domain + n - 1 - a);
    if (al >= sizeof addr)
        return -EINVAL;
    memcpy(addr, a, al);
    addr[al] = '\0';
    int rc = relay_add_target(j, j->domain, addr, (int)j->r->cfg->relay_port);
    return rc < 0 ? rc : 1;
}

/* RFC 5321 §4.5.3.2 bounds every command, not a whole delivery: without
 * this a next hop that answers just in time, or a fault of ours, would
 * hold the queue's delivery slot for ever. The transfer is cut (a message
 * cut before the final reply is not delivered) and the queue retries. */
static void relay_on_deadline(struct ev_loop *loop, void *arg)
{
    struct relay_job *j = arg;
    j->deadline = 0;
    if (j->finished)
        return;
    if (j->mx) {
        mx_cancel(j->mx);
        j->mx = NULL;
    }
    if (j->waiting)
        relay_unwait(j);
    if (j->rc)
        relay_conn_release(j->rc, 0);
    char why[700];
    snprintf(why, sizeof why, "relay time limit (%us) exceeded%s%s", j->r->cfg->relay_time_limit,
             j->last_error[0] ? "; last error: " : "", j->last_error);
    log_msg_as("tern/smtp", LOGL_INFO, "%s: %s", j->env.qid, why);
    relay_fail_all(j, RESULT_TEMPFAIL, 451, "4.4.2", why);
}

static void relay_start(struct relay_job *j)
{
    j->deadline = ev_timer_add(j->r->loop, (uint64_t)j->r->cfg->relay_time_limit * 1000,
                               relay_on_deadline, j);
    const struct conf_route *rt = config_route(j->r->cfg, j->domain);
    j->route = rt;
    if (rt && rt->kind == CONF_ROUTE_DISCARD) {
        size_t n = j->env.nrcpts;
        struct result *res = xcalloc(n ? n : 1, sizeof *res);
        for (size_t i = 0; i < n; i++)
            result_set(&res[i], RESULT_OK, 250, "2.0.0", "discarded by route");
        relay_answer(j, res, n, "discard", 1);
        free(res);
        relay_finish(j);
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

void relay_submit(struct relay *r, uint64_t id, const char *domain, struct envelope *env, int fd,
                  uint64_t len)
{
    struct relay_job *j = xcalloc(1, sizeof *j);
    j->r = r;
    j->id = id;
    j->fd = fd;
    j->len = len;
    j->env = *env;
    envelope_init(env);
    strutil_lcpy(j->domain, domain, sizeof j->domain);
    j->next = r->jobs;
    if (r->jobs)
        r->jobs->prev = j;
    r->jobs = j;
    r->njobs++;
    if (j->fd < 0 || j->env.nrcpts == 0 || domain[0] == '\0' ||
        strlen(domain) >= sizeof j->domain) {
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

struct relay *relay_new(struct ev_loop *loop, const struct config *cfg, struct dns *dns,
                        _Atomic uint64_t *counters, relay_answer_fn answer, void *arg)
{
    struct relay *r = xcalloc(1, sizeof *r);
    r->dns = dns;
    r->loop = loop;
    r->cfg = cfg;
    r->counters = counters;
    r->answer = answer;
    r->answer_arg = arg;
    struct buf err = BUF_INIT;
    r->tls = tlsctx_client_new(&err);
    if (r->tls == NULL)
        log_warn("relay: no outbound TLS: %s", err.data ? err.data : "");
    buf_free(&err);
    return r;
}

void relay_free(struct relay *r)
{
    if (r == NULL)
        return;
    ev_timer_cancel(r->loop, r->reap_timer);
    relay_conns_reap(r, 1);
    struct relay_job *j = r->jobs;
    while (j) {
        struct relay_job *next = j->next;
        relay_job_release(j);
        j = next;
    }
    tlsctx_unref(r->tls);
    free(r);
}

unsigned relay_active(const struct relay *r)
{
    return r->njobs;
}
