/* pickup: collects what `tern sendmail` dropped into <spool_dir>/pickup
 * while or before the daemon runs. Runs in the queue process's loop: a
 * scan at start, an inotify watch, and a rescan every PICKUP_RESCAN_MS in
 * case an event was missed. Each file is turned into a queued message
 * (Received: naming the submitting uid, the submission header fixes,
 * CRLF line ends) and removed only once the queue says it is durable.
 * The files come from untrusted local users: a bad one is set aside in
 * <spool_dir>/pickup-bad/ with a log line and never stops the others. */
#ifndef TERN_QUEUE_PICKUP_H
#define TERN_QUEUE_PICKUP_H

#include "conf/config.h"
#include "ev/loop.h"
#include "queue/queue.h"

/* Mode of the pickup directory: anyone may create a file in it, nobody
 * but its owner may list it, and the sticky bit keeps users from
 * renaming or removing each other's files. */
#define PICKUP_DIR_MODE 01733
#define PICKUP_RESCAN_MS 60000

struct pickup;

/* Creates the directories if missing, then starts collecting. Returns
 * NULL after logging why. q and cfg must outlive the pickup. */
struct pickup *pickup_new(struct ev_loop *loop, struct queue *q, const struct config *cfg);
/* Stops collecting; commits still pending finish without it. */
void pickup_free(struct pickup *p);
/* A reload: settings from cfg (which must outlive the pickup) from now on. */
void pickup_set_config(struct pickup *p, const struct config *cfg);

/* Directory paths under spool_dir, written to out; 0 or -ENAMETOOLONG. */
int pickup_dir_path(const struct config *cfg, char *out, size_t outsize);

#endif
