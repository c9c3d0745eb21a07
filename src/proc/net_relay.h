/* net_relay: the outbound side of the net process. The queue hands it a
 * message for one destination domain (IPC_RELAY, with the content as a
 * sealed descriptor); it finds the next hops (route lines, an address
 * literal, or DNS MX), connects to them in order, runs smtp_client and
 * answers IPC_RELAY_DONE with one result per recipient. */
#ifndef TERN_PROC_NET_RELAY_H
#define TERN_PROC_NET_RELAY_H

#include "conf/config.h"
#include "ev/loop.h"
#include "ipc/ipc.h"

struct net_relay;

struct dns;

/* NULL after logging why. The channel answers go to and the resolver
 * (NULL: MX routing defers) are not owned. */
struct net_relay *net_relay_new(struct ev_loop *loop, const struct config *cfg,
                                struct ipc_chan *ipc, struct dns *dns);
void net_relay_free(struct net_relay *r);

/* An IPC_RELAY message; takes its fd (sets msg->fd to -1). */
void net_relay_job(struct net_relay *r, struct ipc_msg *msg);

/* Number of relay jobs in progress (shutdown waits for none). */
unsigned net_relay_active(const struct net_relay *r);

#endif
