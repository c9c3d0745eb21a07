/* relay: delivery to other mail servers. The queue hands over a message
 * for one destination domain (its recipients there, the content as a
 * sealed descriptor); relay finds the next hops (a route line, an address
 * literal, or DNS MX), connects to them in order, runs the SMTP client
 * (smtp/smtp_client) and answers with one result per recipient. It runs
 * in the network process's loop; proc/net_relay_ipc carries requests and
 * answers between the queue and it. */
#ifndef TERN_DELIVER_RELAY_H
#define TERN_DELIVER_RELAY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/config.h"
#include "ev/loop.h"
#include "mail/envelope.h"
#include "mail/result.h"

struct relay;
struct dns;

/* What relay counts, for the metrics (an array of RELAY_EVENTS). */
enum relay_event {
    RELAY_EV_CONNECT_OK = 0,
    RELAY_EV_CONNECT_FAILED = 1,
    RELAY_EV_TLS_OK = 2,
    RELAY_EV_TLS_FAILED = 3,
    RELAY_EVENTS = 4,
};

/* The answer for request id: res[i] for its i-th recipient, the next hop
 * that answered ("host[addr]:port", "none" when no connection was made,
 * at most RELAY_NAME_MAX with its NUL), and whether it took over DSN
 * duties (RFC 3461 §5.2.2). */
typedef void (*relay_answer_fn)(void *arg, uint64_t id, const struct result *res, size_t n,
                                const char *relay, int peer_dsn);

/* NULL after logging why. cfg must outlive it; dns may be NULL (MX
 * routing defers then); counters (RELAY_EVENTS of them, may live in
 * shared memory) are incremented, never read. */
struct relay *relay_new(struct ev_loop *loop, const struct config *cfg, struct dns *dns,
                        _Atomic uint64_t *counters, relay_answer_fn answer, void *arg);
/* Frees everything; requests in progress get no answer. */
void relay_free(struct relay *r);

/* Request id: the recipients of *env (taken over: env is cleared) at
 * `domain`, content fd (taken over) of len octets. The answer comes
 * through the callback, perhaps before this returns. */
void relay_submit(struct relay *r, uint64_t id, const char *domain, struct envelope *env, int fd,
                  uint64_t len);

/* Requests in progress (shutdown waits for none). */
unsigned relay_active(const struct relay *r);

#endif
