/* net: the network-facing process. It runs every inbound SMTP session on
 * one event loop and reaches the queue process only over IPC; it never
 * opens a spool file itself (bodies go into descriptors the queue hands
 * over). */
#ifndef TERN_PROC_NET_H
#define TERN_PROC_NET_H

#include "conf/config.h"

/* One bound, listening socket and the role it serves. */
struct net_listener {
    int fd;
    enum conf_role role;
};

/* Runs the net process until SIGTERM. tls (len octets) is the TLS
 * material of proc/tls_material; ctl_fd carries the parent's later
 * IPC_TLS_RELOAD messages. Returns the exit status. */
int net_main(const struct config *cfg, const struct net_listener *ls, size_t nls, int ipc_fd,
             const char *tls, size_t tls_len, int ctl_fd);

#endif
