/* commit: group commit. Appends happen in the loop thread (page cache);
 * this module makes them durable in batches with one sync thread. While
 * a batch is being synced, new messages gather in the pending batch; when
 * the sync ends the loop thread learns it through an eventfd, calls every
 * callback of the finished batch and starts the next. One batch costs one
 * fdatasync per segment file written since the previous batch (usually
 * one) and, when a segment was created or removed, one directory fsync.
 *
 * All calls are from the loop thread except the sync thread's own work.
 * The module knows nothing of ev/: the owner watches commit_fd() for
 * reading and calls commit_process() when it is readable. */
#ifndef TERN_QUEUE_COMMIT_H
#define TERN_QUEUE_COMMIT_H

#include <stddef.h>
#include <stdint.h>

struct commit;

/* status: 0 when the batch is durable, -errno if a sync failed. A failed
 * sync also fails every callback added before the failure was reaped
 * (commit_process): their data went to the same files, and a second
 * sync of a file whose writeback failed does not report it again. */
typedef void (*commit_cb)(void *arg, int status);

/* Starts the sync thread. `dir` is the directory synced when
 * commit_note_dir() asked for it (copied). NULL if the thread cannot
 * start. */
struct commit *commit_new(const char *dir);
/* Finishes the running batch and the pending one (callbacks run, with
 * their real status), stops the thread and frees everything. */
void commit_free(struct commit *c);

/* Descriptor to watch for EV_READ; call commit_process() when ready. */
int commit_fd(const struct commit *c);

/* Adds a callback to the pending batch (called once its batch synced). */
void commit_add(struct commit *c, commit_cb cb, void *arg);
/* Notes that file `fd` (identified by `key`) was written and must be
 * synced by the next batch. The descriptor is duplicated: the caller may
 * close its own at any time. Returns 0 or -errno (then the pending batch
 * fails as a whole: what it holds cannot be made durable). */
int commit_note_fd(struct commit *c, uint64_t key, int fd);
/* Notes that the directory's entries changed (created or removed file). */
void commit_note_dir(struct commit *c);

/* Starts a sync of the pending batch if none is running and it has
 * callbacks, or (force) anything at all to sync. */
void commit_start(struct commit *c, int force);
/* Is anything noted but not yet being synced? */
int commit_has_pending(const struct commit *c);
int commit_busy(const struct commit *c);

/* Reaps a finished sync: clears the eventfd, starts the next batch if one
 * has callbacks, then calls the finished batch's callbacks. */
void commit_process(struct commit *c);

/* Batches that carried at least one callback (for stats). */
unsigned long commit_nbatches(const struct commit *c);

#endif
