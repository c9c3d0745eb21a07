/* deliver_proc: the delivery process. Local delivery writes into users'
 * Maildirs, which belong to the virtual-mail user (mail_user), not to the
 * queue's user: started as root, this process becomes mail_user and
 * nothing else; it neither listens nor reads the spool, it gets each
 * message's content as a read-only descriptor. One thread per channel:
 * the queue's delivery threads each talk to one at a time. */
#ifndef TERN_PROC_DELIVER_PROC_H
#define TERN_PROC_DELIVER_PROC_H

#include <stddef.h>

#include "conf/config.h"

/* A single Maildir delivery running longer than this ends the delivery
 * process (it is restarted); the queue waits twice as long for an answer. */
#define DELIVER_STUCK_S 300

/* Serves fds[0..n) until every channel has closed. Returns the exit status. */
int deliver_proc_main(const struct config *cfg, const int *fds, size_t n);

#endif
