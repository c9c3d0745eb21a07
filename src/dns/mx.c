/* mx: one request = the MX query, then an AAAA and an A query per host,
 * all in flight together; the result is handed over from a zero-delay
 * timer, never from inside a call of the requester's. */
#include "dns/mx.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "dns/mx_parse.h"

/* One address lookup of one host. */
struct mx_addrq {
    struct mx_req *req;
    struct dns_query *q; /* NULL once answered */
    int family;
    enum dns_status status;
    size_t n;
    struct sockaddr_storage addrs[MX_ADDRS_MAX];
};

struct mx_req {
    struct dns *dns;
    mx_cb cb;
    void *arg;
    char domain[MX_NAME_MAX + 1];
    struct mx_result *res;    /* owned until handed to cb */
    struct dns_query *mxq;    /* the MX query while it runs */
    struct mx_rr rrs[MX_HOSTS_MAX];
    size_t nrrs;
    struct mx_addrq *aq;      /* owned: 2 * nrrs, AAAA then A per host */
    size_t pending;           /* address lookups outstanding */
    ev_timer_id deliver;
};

static void mx_deliver(struct ev_loop *loop, void *arg)
{
    struct mx_req *req = arg;
    struct mx_result *res = req->res;
    mx_cb cb = req->cb;
    void *cbarg = req->arg;
    req->res = NULL;
    req->deliver = 0;
    mx_cancel(req); /* nothing is outstanding: this only frees */
    cb(cbarg, res);
}

static void mx_finish(struct mx_req *req, enum mx_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets the outcome and schedules its delivery. */
static void mx_finish(struct mx_req *req, enum mx_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(req->res->why, sizeof req->res->why, fmt, ap);
    va_end(ap);
    req->res->status = status;
    log_debug("mx: %s: status=%d, hosts=%zu, %s", req->domain, (int)status, req->res->nhosts,
              req->res->why);
    req->deliver = ev_timer_add(dns_loop(req->dns), 0, mx_deliver, req);
}

/* Builds the host list once every address lookup has answered. */
static void mx_assemble(struct mx_req *req)
{
    struct mx_result *res = req->res;
    const char *temp = NULL; /* a host whose lookup failed temporarily */
    res->hosts = xcalloc(req->nrrs, sizeof *res->hosts);
    for (size_t i = 0; i < req->nrrs; i++) {
        const struct mx_addrq *v6 = &req->aq[2 * i], *v4 = &req->aq[2 * i + 1];
        if (v6->status == DNS_TEMPFAIL || v4->status == DNS_TEMPFAIL)
            temp = req->rrs[i].name;
        /* A host without addresses (NXDOMAIN, NODATA) is skipped. */
        struct mx_host *h = &res->hosts[res->nhosts];
        h->naddrs = mx_parse_merge_addrs(v6->addrs, v6->n, v4->addrs, v4->n, h->addrs,
                                         MX_ADDRS_MAX);
        if (h->naddrs == 0)
            continue;
        strutil_lcpy(h->name, req->rrs[i].name, sizeof h->name);
        h->pref = req->rrs[i].pref;
        res->nhosts++;
    }
    if (res->nhosts > 0)
        mx_finish(req, MX_OK, "%zu of %zu %s with addresses", res->nhosts, req->nrrs,
                  res->implicit ? "implicit MX" : "MX hosts");
    else if (temp != NULL)
        mx_finish(req, MX_TEMPFAIL, "address lookup of %s failed temporarily", temp);
    else if (res->implicit)
        mx_finish(req, MX_NOHOSTS, "%s has no MX and no address", req->domain);
    else
        mx_finish(req, MX_NOHOSTS, "no MX host of %s has an address", req->domain);
}

static void mx_on_addr(void *arg, const struct dns_answer *ans)
{
    struct mx_addrq *aq = arg;
    struct mx_req *req = aq->req;
    aq->q = NULL;
    aq->status = ans->status;
    aq->n = mx_parse_addr_answer(ans, aq->family, aq->addrs, MX_ADDRS_MAX);
    if (--req->pending == 0)
        mx_assemble(req);
}

/* Starts the AAAA and A lookups of every host in req->rrs. */
static void mx_lookup_hosts(struct mx_req *req)
{
    req->aq = xcalloc(2 * req->nrrs, sizeof *req->aq);
    for (size_t i = 0; i < 2 * req->nrrs; i++) {
        struct mx_addrq *aq = &req->aq[i];
        int v6 = i % 2 == 0;
        aq->req = req;
        aq->family = v6 ? AF_INET6 : AF_INET;
        aq->q = dns_query(req->dns, req->rrs[i / 2].name, v6 ? DNS_TYPE_AAAA : DNS_TYPE_A,
                          mx_on_addr, aq);
        if (aq->q == NULL)
            aq->status = DNS_TEMPFAIL;
        else
            req->pending++; /* dns_query never answers from inside itself */
    }
    if (req->pending == 0)
        mx_assemble(req);
}

/* Copies a DNS name without its final dot, in lower case. */
static void mx_copy_name(char *dst, size_t dstsize, const char *src)
{
    strutil_lcpy(dst, src, dstsize);
    size_t n = strlen(dst);
    if (n > 0 && dst[n - 1] == '.')
        dst[n - 1] = '\0';
    strutil_lower(dst);
}

static void mx_on_mx(void *arg, const struct dns_answer *ans)
{
    struct mx_req *req = arg;
    struct mx_result *res = req->res;
    req->mxq = NULL;
    /* libunbound followed any CNAME at the domain (RFC 5321 §5.1: the
     * MX records are those of the canonical name). */
    if (ans->canonname != NULL && mx_parse_domain_ok(ans->canonname))
        mx_copy_name(res->canon, sizeof res->canon, ans->canonname);
    switch (ans->status) {
    case DNS_TEMPFAIL:
        mx_finish(req, MX_TEMPFAIL, "MX lookup of %s failed: %s", req->domain,
                  ans->why ? ans->why : "temporary failure");
        return;
    case DNS_NXDOMAIN:
        mx_finish(req, MX_NXDOMAIN, "%s: no such domain", req->domain);
        return;
    case DNS_NODATA:
        /* No MX: the domain itself, preference 0 (RFC 5321 §5.1). */
        res->implicit = 1;
        req->nrrs = 1;
        req->rrs[0].pref = 0;
        strutil_lcpy(req->rrs[0].name, req->domain, sizeof req->rrs[0].name);
        mx_lookup_hosts(req);
        return;
    case DNS_OK:
        break;
    }
    switch (mx_parse_mx_answer(ans, req->rrs, MX_HOSTS_MAX, &req->nrrs, NULL, NULL)) {
    case MX_PARSE_NULLMX:
        mx_finish(req, MX_NULLMX, "%s accepts no mail (null MX, RFC 7505)", req->domain);
        return;
    case MX_PARSE_NONE:
        mx_finish(req, MX_NOHOSTS, "no usable MX record for %s", req->domain);
        return;
    case MX_PARSE_OK:
        mx_lookup_hosts(req);
        return;
    }
}

struct mx_req *mx_resolve(struct dns *dns, const char *domain, mx_cb cb, void *arg)
{
    struct mx_req *req = xcalloc(1, sizeof *req);
    req->dns = dns;
    req->cb = cb;
    req->arg = arg;
    req->res = xcalloc(1, sizeof *req->res);
    strutil_lcpy(req->domain, domain, sizeof req->domain);

    struct sockaddr_storage lit;
    int r = mx_parse_literal(domain, &lit);
    if (r > 0) {
        /* RFC 5321 §5.1: a literal is the address to use, no DNS. */
        struct mx_result *res = req->res;
        res->hosts = xcalloc(1, sizeof *res->hosts);
        res->nhosts = 1;
        strutil_lcpy(res->hosts[0].name, domain, sizeof res->hosts[0].name);
        res->hosts[0].naddrs = 1;
        res->hosts[0].addrs[0] = lit;
        mx_finish(req, MX_OK, "address literal");
    } else if (r < 0) {
        mx_finish(req, MX_NXDOMAIN, "unusable address literal %s", strutil_esc(domain));
    } else if (!mx_parse_domain_ok(domain)) {
        mx_finish(req, MX_NXDOMAIN, "not a valid domain name: %s", strutil_esc(domain));
    } else {
        mx_copy_name(req->domain, sizeof req->domain, domain);
        req->mxq = dns_query(dns, req->domain, DNS_TYPE_MX, mx_on_mx, req);
        if (req->mxq == NULL)
            mx_finish(req, MX_TEMPFAIL, "MX lookup of %s failed: resolver unavailable",
                      req->domain);
    }
    return req;
}

void mx_cancel(struct mx_req *req)
{
    if (req == NULL)
        return;
    dns_cancel(req->mxq);
    if (req->aq != NULL)
        for (size_t i = 0; i < 2 * req->nrrs; i++)
            dns_cancel(req->aq[i].q);
    if (req->deliver)
        ev_timer_cancel(dns_loop(req->dns), req->deliver);
    mx_result_free(req->res);
    free(req->aq);
    free(req);
}

void mx_result_free(struct mx_result *res)
{
    if (res == NULL)
        return;
    free(res->hosts);
    free(res);
}
