/* control: the CLI's socket into the queue process (`tern queue ...`).
 * A UNIX stream socket, by default <spool_dir>/control. Who may use it is
 * checked twice: the file is 0660 inside the spool, and the peer's
 * credentials (SO_PEERCRED) must be root's or the daemon's own user's.
 * One request line per connection ("hold ID"), answered with "OK" or
 * "ERR <sysexits code> <reason>" on the first line, then text, then the
 * connection closes. */
#ifndef TERN_PROC_CONTROL_H
#define TERN_PROC_CONTROL_H

#include "conf/config.h"
#include "ev/loop.h"
#include "queue/queue.h"

struct control;

/* Binds the socket (replacing a stale one; refusing when another daemon
 * answers on it). Call before threads start: nothing here is
 * thread-safe. Returns NULL after logging why. */
struct control *control_new(struct ev_loop *loop, const struct config *cfg);
/* The queue the commands act on; until it is set, requests get ERR 75. */
void control_set_queue(struct control *c, struct queue *q);
/* Closes every connection and removes the socket file. */
void control_free(struct control *c);

#endif
