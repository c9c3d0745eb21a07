/* mx: where mail for a domain goes (RFC 5321 §5.1). The MX records in
 * preference order, equal preferences in random order, each host with its
 * IPv6 and IPv4 addresses; no MX: the domain itself as an implicit MX;
 * a null MX (RFC 7505): no mail at all; address literals without DNS. */
#ifndef TERN_DNS_MX_H
#define TERN_DNS_MX_H

#include <stddef.h>
#include <sys/socket.h>

#include "dns/resolver.h"

/* Caps on what an answer may make us try: RFC 5321 §5.1 leaves the number
 * to the sender; a domain with more MX hosts than this is broken or
 * hostile, and each costs two lookups and connection attempts. */
#define MX_HOSTS_MAX 20
#define MX_ADDRS_MAX 10 /* per host, IPv6 and IPv4 interleaved */
#define MX_NAME_MAX 255 /* a host name in text form, without the final dot */

enum mx_status {
    MX_OK,       /* hosts[] holds at least one host with an address */
    MX_NULLMX,   /* RFC 7505 null MX: bounce, 556 5.1.10 */
    MX_NXDOMAIN, /* the domain does not exist (or is not a valid name,
                    or is an unusable address literal): bounce, 550 5.1.2 */
    MX_NOHOSTS,  /* MX hosts (or the implicit MX) exist but none has an
                    address. Temporary (451 4.4.3): RFC 5321 §5.1 has the
                    sender try every host and give up only on a permanent
                    answer, and a missing address record is, in practice,
                    more often a DNS change in progress than a final state;
                    the queue lifetime ends it if it lasts. */
    MX_TEMPFAIL, /* SERVFAIL, timeout, resolver trouble: 451 4.4.3 */
};

struct mx_host {
    char name[MX_NAME_MAX + 1]; /* lower case, no final dot; for a literal
                                   the literal as written, "[1.2.3.4]" */
    unsigned pref;
    size_t naddrs;
    /* IPv6 and IPv4 interleaved (RFC 8305 §4), IPv6 first; the port is 0:
     * the caller sets the one it connects to. */
    struct sockaddr_storage addrs[MX_ADDRS_MAX];
};

struct mx_result {
    enum mx_status status;
    struct mx_host *hosts; /* owned by the result; nhosts entries */
    size_t nhosts;
    int implicit;        /* no MX: hosts[0] is the domain itself */
    char canon[MX_NAME_MAX + 1]; /* the domain after CNAMEs ("" if none) */
    char why[256];       /* for the logs and the DSN diagnostic */
};

struct mx_req;

/* Called once with a result the callee owns (mx_result_free()). The
 * request handle is dead once the callback starts. Never called from
 * inside mx_resolve() or mx_cancel(). */
typedef void (*mx_cb)(void *arg, struct mx_result *res);

/* Looks up where mail for `domain` goes. `domain` is a domain name or an
 * address literal ("[192.0.2.1]", "[IPv6:2001:db8::1]"), as in an
 * envelope address. Returns the request handle (never NULL); cb always
 * follows, unless mx_cancel() comes first. */
struct mx_req *mx_resolve(struct dns *dns, const char *domain, mx_cb cb, void *arg);
/* Cancels a request whose callback has not started (its DNS queries too);
 * cb will not be called. NULL is ignored. */
void mx_cancel(struct mx_req *req);
void mx_result_free(struct mx_result *res);

#endif
