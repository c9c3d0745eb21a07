/* deliver_client: the queue's side of the delivery process's channels
 * (proc/deliver_proc.h): a pool of blocking channels that the queue's
 * delivery threads borrow one at a time, as its local transport
 * (queue_set_local). */
#ifndef TERN_PROC_DELIVER_CLIENT_H
#define TERN_PROC_DELIVER_CLIENT_H

#include <stddef.h>

#include "deliver/local.h"

struct deliver_client;

/* Takes over fds[0..n). */
struct deliver_client *deliver_client_new(const int *fds, size_t n);
void deliver_client_free(struct deliver_client *dc);
/* A local_transport_fn: arg is the client. */
int deliver_client_run(void *arg, const struct local_req *req, struct result *res);

#endif
