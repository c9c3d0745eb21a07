/* store: the spool on disk. A sequence of append-only segment files
 * (<spool>/seg/<16 hex seq>.seg, rotated at STORE_SEGMENT_MAX), each a run
 * of self-contained records:
 *
 *   header    fixed, STORE_HDR_SIZE bytes: magic, version, a "finished"
 *             byte (mutable, outside the crc), qid, lengths, nrcpt,
 *             arrival, header crc
 *   envelope  env_len opaque bytes (the store never parses them)
 *   slots     nrcpt x STORE_SLOT_SIZE mutable per-recipient states, each
 *             with its own small crc, rewritten in place (outside the
 *             record crc)
 *   content   content_len bytes, the message as received
 *   trailer   magic, crc32 of header + envelope + content, total length
 *
 * Only the loop thread calls the store; delivery threads read records
 * through their own descriptors with the fd-based helpers at the end.
 * Nothing here fsyncs appends: the caller learns which files and
 * directories were written through the dirty callback and syncs them in
 * a batch (queue/commit). */
#ifndef TERN_QUEUE_STORE_H
#define TERN_QUEUE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define STORE_QID_LEN 16
#define STORE_HDR_SIZE 64
#define STORE_SLOT_SIZE 192
#define STORE_TRAILER_SIZE 16
#define STORE_ERR_MAX 161 /* last-error text kept per recipient */
/* Rotation size: large enough that rotation (a file creation plus a
 * directory fsync) is rare, small enough that one long-deferred message
 * keeps at most this much dead space alive. */
#define STORE_SEGMENT_MAX (64u << 20)
/* Recovery refuses headers claiming more than these. */
#define STORE_ENV_MAX (32u << 20)
#define STORE_RCPT_MAX 10000u

enum store_status { STORE_PENDING = 0, STORE_DONE = 1, STORE_FAILED = 2 };

/* Slot flags. INFLIGHT: a delivery attempt started (written just before
 * it, cleared when its outcome is recorded). Found set after a restart, it
 * means the process died mid-attempt: the mailbox may already hold the
 * message, so the queue looks there before delivering again. */
#define STORE_SLOT_INFLIGHT 0x01
#define STORE_SLOT_WARNED 0x02 /* the sender was told of the delay (once) */
#define STORE_SLOT_HELD 0x04   /* the operator put the message on hold */

/* One recipient's mutable state. */
struct store_slot {
    enum store_status status;
    unsigned flags;       /* STORE_SLOT_* */
    uint32_t attempt_pid; /* process that made the last attempt */
    unsigned attempts;
    int64_t next_attempt; /* wall seconds; 0 = as soon as possible */
    int64_t last_attempt; /* wall seconds; 0 = never tried */
    char error[STORE_ERR_MAX + 1]; /* last error, NUL-terminated */
};

/* Where a record lives and its fixed facts: what the index keeps. */
struct store_rec {
    char qid[STORE_QID_LEN + 1];
    uint64_t seg; /* segment sequence number, never 0 */
    uint64_t off; /* record start in the segment */
    uint32_t env_len;
    uint32_t nrcpt;
    uint64_t content_len;
    uint64_t arrival_us; /* wall clock at commit, microseconds */
};

struct store;

/* Called by recovery for every unfinished record, in spool order; slots
 * (nrcpt of them) are only valid during the call. A callback may call
 * store_mark_finished() (e.g. for an older copy of a duplicated qid). */
typedef void (*store_recover_cb)(void *arg, struct store *st, const struct store_rec *rec,
                                 const struct store_slot *slots);

/* Tells the owner that a file needs a sync before what was written to it
 * is durable: fd >= 0 is a segment (key seg; the fd stays the store's),
 * fd < 0 means the segment directory (a segment was created or removed). */
typedef void (*store_dirty_cb)(void *arg, uint64_t seg, int fd);

/* Opens the spool under `spool_dir` (creating seg/, corrupt/), recovers
 * every segment in order and calls cb for each live record. Stats of the
 * scan are logged. Returns NULL after logging why. */
struct store *store_open(const char *spool_dir, store_recover_cb cb, void *arg);
/* Closes every descriptor and frees the store. Syncs nothing. */
void store_close(struct store *st);

void store_set_dirty_cb(struct store *st, store_dirty_cb cb, void *arg);
/* Changes the rotation size (tests). */
void store_set_segment_max(struct store *st, uint64_t bytes);

/* Appends a record: header, env, nrcpt pending slots, content_len bytes
 * read from content_fd at offset 0, trailer. Written to the page cache
 * only (see the dirty callback). Fills *out. On failure nothing remains
 * of the record. Returns 0 or -errno. */
int store_append(struct store *st, const char *qid, const void *env, uint32_t env_len,
                 uint32_t nrcpt, int content_fd, uint64_t content_len, uint64_t arrival_us,
                 struct store_rec *out);
/* The same with prefix[0..prefix_len) stored before the content read from
 * content_fd (header fields tern adds above the message it received:
 * Authentication-Results, DKIM-Signature); the record's content is both.
 * At most STORE_PREFIX_MAX octets of prefix. */
#define STORE_PREFIX_MAX 262144
int store_append_prefixed(struct store *st, const char *qid, const void *env, uint32_t env_len,
                          uint32_t nrcpt, const void *prefix, size_t prefix_len, int content_fd,
                          uint64_t content_len, uint64_t arrival_us, struct store_rec *out);

/* Rewrites recipient i's slot in place. Returns 0 or -errno. */
int store_slot_write(struct store *st, const struct store_rec *rec, uint32_t i,
                     const struct store_slot *slot);
/* The same through any read-write descriptor of the segment, from any
 * thread (it notes nothing for sync: the owner's later store_slot_write
 * of the same record does). Returns 0 or -errno. */
int store_slot_pwrite(int fd, const struct store_rec *rec, uint32_t i,
                      const struct store_slot *slot);

/* Sets (held = 1) or clears the hold mark of every pending slot among
 * slots[0..rec->nrcpt) and rewrites those in place. Returns 0 or the
 * first -errno (the others are still tried). */
int store_slots_set_held(struct store *st, const struct store_rec *rec, struct store_slot *slots,
                         int held);

/* Marks the record finished (never recovered again) and drops its
 * segment's live count; a segment with nothing live that is not the
 * current one is removed. Returns 0 or -errno. */
int store_mark_finished(struct store *st, const struct store_rec *rec);

/* Stops appending to the current segment (e.g. after a failed sync: its
 * pages may have been dropped) so the next append starts a new one. */
void store_retire_current(struct store *st);

/* Writes the path of segment seq into out. Returns 0 or -ENAMETOOLONG. */
int store_seg_path(const struct store *st, uint64_t seq, char *out, size_t outsize);
/* The read-write descriptor of segment seq, or -EBADF if it is not open. */
int store_seg_fd(const struct store *st, uint64_t seq);
/* Counters for tests and logs. */
size_t store_nsegments(const struct store *st);
size_t store_seg_live(const struct store *st, uint64_t seq);

/* Layout of a record, from its fixed facts. */
uint64_t store_env_off(const struct store_rec *rec);
uint64_t store_slots_off(const struct store_rec *rec);
uint64_t store_content_off(const struct store_rec *rec);
uint64_t store_rec_size(const struct store_rec *rec);

/* Thread-safe readers over any descriptor of the segment. */
/* Reads the envelope bytes into a new buffer (owned by the caller). */
int store_read_env(int fd, const struct store_rec *rec, char **out);
/* Reads all nrcpt slots into slots[]. A slot whose crc does not match
 * (a torn in-place write) reads as pending with no attempts: at worst a
 * duplicate delivery, never a lost one. Returns 0 or -errno. */
int store_read_slots(int fd, const struct store_rec *rec, struct store_slot *slots);

#endif
