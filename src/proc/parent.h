/* parent: `tern serve`. Binds the listeners, starts the queue and net
 * processes with a socketpair between them, and supervises them. It
 * parses no network input. */
#ifndef TERN_PROC_PARENT_H
#define TERN_PROC_PARENT_H

#include "conf/config.h"

/* Runs the daemon until SIGTERM/SIGINT. SIGHUP reloads *cfg in place
 * (the caller still frees it). Returns the exit status. */
int parent_serve(struct config *cfg);

#endif
