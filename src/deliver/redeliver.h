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

/* The same question for an mbox file (fd, read-write, locked by the
 * caller, `size` octets): the entries at its end, newest first, whose
 * separator line (mail/mboxrd) is dated at or after `since` (one second
 * of slack) and within an hour of it, and whose header block holds
 * "Delivered-To: <addr>" and the queue id as a word. Such an entry of
 * exactly `want` octets (the length this message's entry has) is the
 * delivery: 1. A shorter one that ends the file is what a crash cut
 * short: its offset goes to *cut (the caller truncates it away, so the
 * mailbox never keeps half a message), else *cut is UINT64_MAX. Only
 * the last 64 MiB, and entries up to a day older than `since`, are
 * looked at. Returns 1 or 0 (every doubt, and a read error, is 0). */
int redeliver_find_mbox(int fd, uint64_t size, const char *qid, const char *addr, int64_t since,
                        uint64_t want, uint64_t *cut);

#endif
