/* queue_proc: the queue process: owns the spool (through queue/), answers
 * the net process's requests over IPC. */
#ifndef TERN_PROC_QUEUE_PROC_H
#define TERN_PROC_QUEUE_PROC_H

#include <stddef.h>
#include <sys/types.h>

#include "base/buf.h"
#include "conf/config.h"

/* Runs the queue process until SIGTERM: ipc_fd is the first smtp
 * process's channel, parent_fd the parent's (reloads, the channels of
 * later smtp processes), dfds[0..nd) the delivery process's channels
 * (taken over), deliver_pid its pid, dkim_keys the parent's blob of
 * DKIM keys (proc/dkim_keys.h; wiped here once read). Returns the exit
 * status. */
int queue_proc_main(const struct config *cfg, int ipc_fd, int parent_fd, const int *dfds,
                    size_t nd, pid_t deliver_pid, struct buf *dkim_keys);

#endif
