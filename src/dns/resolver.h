/* resolver: asynchronous DNS lookups with libunbound, answered on tern's
 * own event loop (src/ev/loop.h). Callers never see libunbound: an answer
 * arrives as a struct dns_answer, which mx_parse.c decodes without DNS.
 *
 * libunbound's asynchronous mode always runs its resolver in the
 * background, in a thread or a forked process (ub_ctx_async(ctx, 0)
 * forks; there is no "in the caller" mode behind ub_fd()/ub_process()).
 * We use a thread: a forked copy of the net process would hold all of
 * its memory, inherit its blocked signals and run its atexit handlers.
 * The thread only talks DNS on its own sockets and hands answers through
 * a pipe (ub_fd()) that our loop watches; every callback below runs in
 * the loop's thread, from ub_process(). The thread is started with all
 * signals blocked, so signals keep reaching the loop's signalfd. */
#ifndef TERN_DNS_RESOLVER_H
#define TERN_DNS_RESOLVER_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "ev/loop.h"

/* RR types (RFC 1035 §3.2.2, RFC 3596 §2.1). */
#define DNS_TYPE_A 1
#define DNS_TYPE_CNAME 5
#define DNS_TYPE_MX 15
#define DNS_TYPE_AAAA 28

/* A per-query timeout: a resolver that never answers must not hold a
 * delivery forever; the answer then counts as a temporary failure. */
#define DNS_TIMEOUT_MS 30000

enum dns_status {
    DNS_OK,       /* records of the type asked for (count >= 1) */
    DNS_NODATA,   /* the name exists without records of that type */
    DNS_NXDOMAIN, /* the name (or the end of its CNAME chain) does not exist */
    DNS_TEMPFAIL, /* SERVFAIL, REFUSED, timeout, resolver error: try later */
};

/* One answer. Everything it points to lives only during the callback. */
struct dns_answer {
    enum dns_status status;
    int rcode;             /* the DNS RCODE; -1 when no answer came */
    int qtype;
    const char *qname;     /* the name asked for */
    const char *canonname; /* end of the CNAME chain ("x.example." with the
                              trailing dot) or NULL when there was none */
    size_t count;          /* records in rdata[]/rdlen[] (0 unless DNS_OK) */
    const char *const *rdata; /* wire-format rdata, as the server sent it */
    const int *rdlen;
    int secure;            /* DNSSEC: validated (no trust anchor is set yet,
                              so always 0 for now; DANE will need it) */
    int bogus;             /* DNSSEC: validation failed (then DNS_TEMPFAIL) */
    const char *why;       /* for DNS_TEMPFAIL: a short reason for the logs */
};

struct dns;       /* a resolver on one loop */
struct dns_query; /* one outstanding query */

/* Called once per query, unless it was cancelled first. The query handle
 * is dead once the callback starts. The callback may start and cancel
 * other queries, but must not call dns_free(). */
typedef void (*dns_cb)(void *arg, const struct dns_answer *ans);

/* Creates a resolver on `loop`. `server` is the DNS server to ask,
 * "ADDR:PORT", "ADDR" (port 53) or "[IPv6]:PORT"; NULL asks the servers
 * of /etc/resolv.conf. Reads every file it needs now: call it before a
 * chroot. Returns NULL with a reason in `err` on failure; the caller
 * frees the resolver with dns_free(). */
struct dns *dns_new(struct ev_loop *loop, const char *server, struct buf *err);
/* Cancels every outstanding query (no callbacks) and frees the resolver.
 * Not from inside a dns_cb. NULL is ignored. */
void dns_free(struct dns *dns);
/* The loop the resolver runs on. */
struct ev_loop *dns_loop(const struct dns *dns);
/* Sets the timeout for queries started from now on (tests shorten it). */
void dns_set_timeout(struct dns *dns, uint64_t ms);

/* Asks for `rrtype` records of `name` (a domain name in text form, no
 * trailing dot needed). CNAMEs are followed. Returns the query handle, or
 * NULL when the query could not be started (the reason is logged; treat
 * it as a temporary failure): cb is then never called. cb is never
 * called from inside dns_query(). */
struct dns_query *dns_query(struct dns *dns, const char *name, int rrtype, dns_cb cb,
                            void *arg);
/* Cancels a query whose callback has not started: cb will not be called.
 * NULL is ignored. */
void dns_cancel(struct dns_query *q);
/* Outstanding queries, counting cancelled ones libunbound still holds. */
size_t dns_pending(const struct dns *dns);

#endif
