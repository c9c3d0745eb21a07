/* redeliver: was a delivery that a crash interrupted completed after all?
 * The queue writes an intent (the INFLIGHT flag, its pid and the time)
 * into a recipient's slot before each Maildir delivery and records the
 * outcome after it; a slot found INFLIGHT after a restart is uncertain:
 * the process may have died after the message reached new/ but before its
 * success was written down. Delivering again would duplicate it, so the
 * Maildir is searched first. Blocking: delivery threads only. */
#ifndef TERN_DELIVER_REDELIVER_H
#define TERN_DELIVER_REDELIVER_H

#include <stddef.h>
#include <stdint.h>

/* Looks in <maildir>/new and <maildir>/cur for a file that the attempt
 * made: named by process `pid` (the "P<pid>" of the Maildir unique name,
 * maildir.h) at or after `since` (wall seconds) and within an hour of it,
 * whose header block holds "Delivered-To: <addr>" and the queue id as a
 * word (our Received header's "id <qid>"). Every doubt answers "not
 * found": the cost of a wrong "not found" is a duplicate, of a wrong
 * "found" a lost message. Returns 1 (file name written to found) or 0. */
int redeliver_find(const char *maildir, const char *qid, const char *addr, int64_t since,
                   uint32_t pid, char *found, size_t foundsize);

#endif
