/* resolver: libunbound in its threaded asynchronous mode, its answer pipe
 * (ub_fd) watched by our loop, a timer of ours per query. See resolver.h
 * for why a thread and not a fork. */
#include "dns/resolver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unbound.h>

#include "base/log.h"
#include "base/strutil.h"
#include "base/xmalloc.h"

struct dns_query {
    struct dns *dns;
    struct dns_query *prev, *next; /* dns->queries */
    int async_id;                  /* libunbound's id, for ub_cancel() */
    int qtype;
    ev_timer_id timer;
    dns_cb cb; /* NULL once abandoned while libunbound may still answer */
    void *arg;
};

struct dns {
    struct ev_loop *loop;
    struct ub_ctx *ctx;  /* owned */
    int fd;              /* ub_fd(ctx), watched for EV_READ */
    int broken;          /* the pipe to unbound's thread failed */
    uint64_t timeout_ms;
    struct dns_query *queries; /* owned: outstanding and abandoned queries */
    size_t nqueries;
};

static void dns_link(struct dns *dns, struct dns_query *q)
{
    q->prev = NULL;
    q->next = dns->queries;
    if (dns->queries)
        dns->queries->prev = q;
    dns->queries = q;
    dns->nqueries++;
}

static void dns_unlink(struct dns_query *q)
{
    struct dns *dns = q->dns;
    if (q->prev)
        q->prev->next = q->next;
    else
        dns->queries = q->next;
    if (q->next)
        q->next->prev = q->prev;
    dns->nqueries--;
}

/* Turns "ADDR:PORT", "ADDR", "[IPv6]:PORT" or a bare IPv6 address into
 * libunbound's "ADDR@PORT". Returns 0 or -EINVAL with a reason in err. */
static int dns_server_spec(const char *server, char *out, size_t outsize, struct buf *err)
{
    char addr[INET6_ADDRSTRLEN + 1];
    const char *port = "53";
    const char *colon = strrchr(server, ':');
    size_t alen;
    if (server[0] == '[') {
        const char *close = strchr(server, ']');
        if (close == NULL || (close[1] != '\0' && close[1] != ':'))
            goto bad;
        alen = (size_t)(close - server - 1);
        server++;
        if (close[1] == ':')
            port = close + 2;
    } else if (colon != NULL && strchr(server, ':') == colon) {
        alen = (size_t)(colon - server); /* one colon: ADDR:PORT */
        port = colon + 1;
    } else {
        alen = strlen(server); /* no colon, or a bare IPv6 address */
    }
    if (alen == 0 || alen >= sizeof addr)
        goto bad;
    memcpy(addr, server, alen);
    addr[alen] = '\0';
    unsigned char bin[16];
    if (inet_pton(AF_INET, addr, bin) != 1 && inet_pton(AF_INET6, addr, bin) != 1)
        goto bad;
    unsigned long long p;
    if (strutil_parse_u64(port, &p) < 0 || p == 0 || p > 65535)
        goto bad;
    if ((size_t)snprintf(out, outsize, "%s@%llu", addr, p) >= outsize)
        goto bad;
    return 0;
bad:
    buf_printf(err, "resolver: not an address and port: %s", strutil_esc(server));
    return -EINVAL;
}

/* Starts a query. The first one starts libunbound's thread, which must not
 * take signals meant for the loop's signalfd: it inherits the signal mask
 * of the thread that creates it, so everything is blocked meanwhile.
 * Returns libunbound's code: 0 or a UB_* error for ub_strerror(), no errno. */
static int dns_ub_start(struct dns *dns, const char *name, int rrtype, void *mydata,
                        ub_callback_type cb, int *async_id)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int r = ub_resolve_async(dns->ctx, name, rrtype, 1 /* IN */, mydata, cb, async_id);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return r;
}

static const char *dns_rcode_name(int rcode)
{
    switch (rcode) {
    case 1: return "FORMERR";
    case 2: return "SERVFAIL";
    case 4: return "NOTIMP";
    case 5: return "REFUSED";
    default: return "unexpected RCODE";
    }
}

/* Fills *a from what libunbound returned (res may be NULL when err != 0). */
static void dns_answer_from(struct dns_answer *a, int qtype, int err, const struct ub_result *res)
{
    memset(a, 0, sizeof *a);
    a->qtype = qtype;
    a->rcode = -1;
    a->qname = res && res->qname ? res->qname : "";
    if (err != 0 || res == NULL) {
        a->status = DNS_TEMPFAIL;
        a->why = err ? ub_strerror(err) : "no result";
        return;
    }
    a->rcode = res->rcode;
    a->canonname = res->canonname;
    a->secure = res->secure;
    a->bogus = res->bogus;
    if (res->bogus) {
        a->status = DNS_TEMPFAIL;
        a->why = res->why_bogus ? res->why_bogus : "DNSSEC validation failed";
    } else if (res->rcode == 3 /* NXDOMAIN */ || res->nxdomain) {
        a->status = DNS_NXDOMAIN;
    } else if (res->rcode != 0) {
        a->status = DNS_TEMPFAIL;
        a->why = dns_rcode_name(res->rcode);
    } else if (!res->havedata || res->data == NULL || res->data[0] == NULL ||
               res->len == NULL) {
        /* libunbound leaves data NULL (not just data[0]) on some answers,
         * SERVFAIL among them: never index it without looking. */
        a->status = DNS_NODATA;
    } else {
        size_t n = 0;
        while (res->data[n] != NULL)
            n++;
        a->status = DNS_OK;
        a->count = n;
        a->rdata = (const char *const *)res->data;
        a->rdlen = res->len;
    }
}

/* libunbound's callback, run from ub_process() in the loop's thread. */
static void dns_ub_done(void *mydata, int err, struct ub_result *res)
{
    struct dns_query *q = mydata;
    if (q == NULL) { /* the start-up query of dns_new() */
        ub_resolve_free(res);
        return;
    }
    dns_unlink(q);
    dns_cb cb = q->cb;
    void *arg = q->arg;
    int qtype = q->qtype;
    if (cb != NULL)
        ev_timer_cancel(q->dns->loop, q->timer);
    free(q);
    if (cb != NULL) {
        struct dns_answer a;
        dns_answer_from(&a, qtype, err, res);
        cb(arg, &a);
    }
    ub_resolve_free(res);
}

static void dns_io(struct ev_loop *loop, int fd, unsigned events, void *arg)
{
    struct dns *dns = arg;
    int r = ub_process(dns->ctx);
    if (r != 0) {
        /* unbound's thread is gone: stop watching a pipe that will stay
         * readable; what is outstanding times out as a temporary failure. */
        log_err("dns: resolver failed: %s", ub_strerror(r));
        dns->broken = 1;
        ev_io_del(loop, fd);
    }
}

/* Stops waiting for q: libunbound will not call back for it (threaded
 * ub_cancel() marks it, and ub_process() then drops its answer). */
static void dns_abandon(struct dns_query *q)
{
    struct dns *dns = q->dns;
    ev_timer_cancel(dns->loop, q->timer);
    q->timer = 0;
    q->cb = NULL;
    q->arg = NULL;
    int r = ub_cancel(dns->ctx, q->async_id);
    if (r == UB_NOERROR) {
        dns_unlink(q);
        free(q);
    } else {
        /* Unknown to libunbound (not expected): keep it until an answer
         * or dns_free() comes, rather than risk a late callback on
         * freed memory. */
        log_warn("dns: cancel: %s", ub_strerror(r));
    }
}

static void dns_timeout(struct ev_loop *loop, void *arg)
{
    struct dns_query *q = arg;
    dns_cb cb = q->cb;
    void *cbarg = q->arg;
    int qtype = q->qtype;
    q->timer = 0;
    dns_abandon(q);
    struct dns_answer a;
    memset(&a, 0, sizeof a);
    a.status = DNS_TEMPFAIL;
    a.rcode = -1;
    a.qtype = qtype;
    a.qname = "";
    a.why = "timeout";
    cb(cbarg, &a);
}

struct dns *dns_new(struct ev_loop *loop, const char *server, struct buf *err)
{
    struct dns *dns = xcalloc(1, sizeof *dns);
    dns->loop = loop;
    dns->fd = -1;
    dns->timeout_ms = DNS_TIMEOUT_MS;
    dns->ctx = ub_ctx_create();
    if (dns->ctx == NULL) {
        buf_printf(err, "resolver: cannot create the libunbound context");
        goto fail;
    }
    int r = ub_ctx_async(dns->ctx, 1);
    if (r == 0) /* a local server (127.0.0.1:5353 in tests) is fine to ask */
        r = ub_ctx_set_option(dns->ctx, "do-not-query-localhost:", "no");
    if (r != 0) {
        buf_printf(err, "resolver: %s", ub_strerror(r));
        goto fail;
    }
    if (server != NULL) {
        char spec[INET6_ADDRSTRLEN + 16];
        if (dns_server_spec(server, spec, sizeof spec, err) < 0)
            goto fail;
        r = ub_ctx_set_fwd(dns->ctx, spec);
    } else {
        r = ub_ctx_resolvconf(dns->ctx, NULL);
    }
    if (r != 0) {
        buf_printf(err, "resolver: %s: %s", server ? server : "/etc/resolv.conf",
                   r == UB_READFILE ? strerror(errno) : ub_strerror(r));
        goto fail;
    }
    /* DNSSEC hook: a trust anchor (ub_ctx_add_ta_autr()) is added here,
     * before the context is finalized; answers then carry secure/bogus
     * and DANE can use them. None is configured yet. */

    /* libunbound answers the special-use names of RFC 6761/8375 itself
     * (NXDOMAIN for "test.", "home.arpa."), without asking the server it
     * was given. A site's own DNS server may serve them (and our test
     * server serves "test."), so those two go to the server like any
     * other name. This call finalizes the context: settings end here. */
    r = ub_ctx_zone_remove(dns->ctx, "test.");
    if (r == 0)
        r = ub_ctx_zone_remove(dns->ctx, "home.arpa.");
    if (r != 0) {
        buf_printf(err, "resolver: %s", ub_strerror(r));
        goto fail;
    }
    dns->fd = ub_fd(dns->ctx);
    if (dns->fd < 0 || ev_io_add(loop, dns->fd, EV_READ, dns_io, dns) < 0) {
        buf_printf(err, "resolver: cannot watch libunbound's pipe");
        dns->fd = -1;
        goto fail;
    }
    /* Start unbound's thread now, before any chroot or user switch, so
     * that a failure shows at start-up: a query that the context answers
     * itself (localhost is a local zone), whose answer is dropped. */
    r = dns_ub_start(dns, "localhost.", DNS_TYPE_A, NULL, dns_ub_done, NULL);
    if (r != 0) {
        buf_printf(err, "resolver: %s", ub_strerror(r));
        goto fail;
    }
    return dns;
fail:
    dns_free(dns);
    return NULL;
}

void dns_free(struct dns *dns)
{
    if (dns == NULL)
        return;
    if (dns->fd >= 0)
        ev_io_del(dns->loop, dns->fd);
    /* Stops unbound's thread and drops its answers without callbacks. */
    if (dns->ctx)
        ub_ctx_delete(dns->ctx);
    while (dns->queries) {
        struct dns_query *q = dns->queries;
        ev_timer_cancel(dns->loop, q->timer);
        dns_unlink(q);
        free(q);
    }
    free(dns);
}

struct ev_loop *dns_loop(const struct dns *dns)
{
    return dns->loop;
}

void dns_set_timeout(struct dns *dns, uint64_t ms)
{
    dns->timeout_ms = ms;
}

size_t dns_pending(const struct dns *dns)
{
    return dns->nqueries;
}

struct dns_query *dns_query(struct dns *dns, const char *name, int rrtype, dns_cb cb,
                            void *arg)
{
    if (dns->broken) {
        log_warn("dns: query %s: resolver unavailable", strutil_esc(name));
        return NULL;
    }
    struct dns_query *q = xcalloc(1, sizeof *q);
    q->dns = dns;
    q->qtype = rrtype;
    q->cb = cb;
    q->arg = arg;
    dns_link(dns, q);
    int r = dns_ub_start(dns, name, rrtype, q, dns_ub_done, &q->async_id);
    if (r != 0) {
        log_warn("dns: query %s: %s", strutil_esc(name), ub_strerror(r));
        dns_unlink(q);
        free(q);
        return NULL;
    }
    q->timer = ev_timer_add(dns->loop, dns->timeout_ms, dns_timeout, q);
    return q;
}

void dns_cancel(struct dns_query *q)
{
    if (q != NULL && q->cb != NULL)
        dns_abandon(q);
}
