/* net_relay_ipc: the network process's side of relaying. IPC_RELAY from
 * the queue becomes a request of deliver/relay; its answer goes back as
 * IPC_RELAY_DONE. */
#ifndef TERN_PROC_NET_RELAY_IPC_H
#define TERN_PROC_NET_RELAY_IPC_H

#include "conf/config.h"
#include "deliver/relay.h"
#include "ev/loop.h"
#include "ipc/ipc.h"

struct dns;

/* A relay whose answers go to the queue over ipc (not owned); dns may be
 * NULL. NULL after logging why. Free it with relay_free(). */
struct relay *net_relay_ipc_new(struct ev_loop *loop, const struct config *cfg,
                                struct ipc_chan *ipc, struct dns *dns);

/* An IPC_RELAY message; takes its fd (sets msg->fd to -1). Every field
 * is checked: a request that cannot be read is answered (deferred). */
void net_relay_ipc_job(struct relay *r, struct ipc_msg *msg);

#endif
