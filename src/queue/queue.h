/* queue: the queue process's core. It owns the spool (queue/store), the
 * group commit that makes accepted mail durable, the scheduler with its
 * retries, and hands delivery jobs to local delivery threads. proc/queue
 * drives it from IPC; everything here runs in the queue process's loop
 * thread except the fsync and delivery threads it starts itself. */
#ifndef TERN_QUEUE_QUEUE_H
#define TERN_QUEUE_QUEUE_H

#include "conf/config.h"
#include "ev/loop.h"
#include "mail/envelope.h"
#include "mail/result.h"
#include "deliver/local.h"

struct queue;

/* Creates the queue over cfg->spool_dir (made if missing), recovers what
 * the spool holds and schedules it for delivery. cfg must outlive the
 * queue. Returns NULL after logging why. */
struct queue *queue_new(struct ev_loop *loop, const struct config *cfg);
/* Stops threads after their current job and frees everything. Committed
 * mail stays in the spool. */
void queue_free(struct queue *q);

/* Starts a new message: assigns a queue id (written to qid, at least
 * ENVELOPE_QID_MAX+1 bytes) and returns in *fd a descriptor the receiving
 * process writes the content into (CRLF line endings, Received header
 * first). The queue keeps its own descriptor; the caller owns *fd.
 * Returns 0 or -errno. */
int queue_body_open(struct queue *q, char *qid, int *fd);

/* Drops a message that was opened but will not be committed. */
void queue_body_abort(struct queue *q, const char *qid);

/* The outcome of a commit, as the client should hear it: OK ("250 2.0.0
 * Ok: queued as QID") once the message is durable, else why not. */
typedef void (*queue_commit_cb)(void *arg, const char *qid, const struct result *res);

/* Commits message `qid` with envelope *env (taken over: env is cleared):
 * stores content and envelope and calls cb(arg, qid, res) from the loop
 * once they are durable (group commit: all messages that arrive while one
 * batch syncs go into the next), or with the failure if the batch's sync
 * failed. Recipients are expanded through the aliases here. The record's
 * content is prefix[0..prefix_len) and then the body file. Returns 0 if
 * cb will be called; otherwise -errno, with *fail (if not NULL) saying
 * what the sender should hear:
 *   552 5.3.4  larger than message_size_max (a reload lowered it)
 *   550 5.1.1  no recipient left after alias expansion (a reload removed it)
 *   452 4.3.1  the spool's file system is full, or the message would
 *              leave less than queue_minfree
 *   451 4.3.0  any other local problem (unknown qid, bad size, I/O) */
int queue_commit(struct queue *q, const char *qid, struct envelope *env, const char *prefix,
                 size_t prefix_len, queue_commit_cb cb, void *arg, struct result *fail);

/* Header fields to put above a message as it is committed (DKIM-Signature,
 * ARC sets: proc/queue_dkim): fn reads the content, size octets of fd
 * from offset 0 with pread (the file position is not its to move), and
 * appends complete CRLF field lines to out, or nothing; they go above the
 * receiving side's fields prefix[0..plen). Called in the loop thread for
 * every message before it is stored; env is the envelope as it will be
 * stored. Unset: nothing is added. */
typedef void (*queue_sign_fn)(void *arg, const struct envelope *env, const char *prefix,
                              size_t plen, int fd, uint64_t size, struct buf *out);
void queue_set_signer(struct queue *q, queue_sign_fn fn, void *arg);

/* Header fields the receiving side adds above the content it wrote
 * (Authentication-Results), passed to queue_commit as the prefix: at most
 * this many octets, complete lines ending in CRLF. */
#define QUEUE_PREFIX_MAX 65536

/* The largest message (bytes of content) the spool can take now: half of
 * the free space above queue_minfree (a message is held twice while it
 * is committed: its body file and its spool record), 0 when there is no
 * room at all. statvfs(2) of the spool, so cheap enough to call every
 * second. UINT64_MAX when the file system cannot tell. */
uint64_t queue_spool_room(const struct queue *q);

/* Local recipients go to a local transport that runs local_deliver
 * elsewhere (the delivery process, as the virtual-mail user): fn is
 * called from delivery threads; pid names its Maildir files (for the
 * look after a crash). Set before the loop runs; unset, the queue's own
 * threads deliver. */
void queue_set_local(struct queue *q, local_transport_fn fn, void *arg, uint32_t pid);

/* Remote recipients go to a relay transport (proc/net's SMTP client over
 * IPC): one request per destination domain, with the content in a sealed
 * copy (memfd) so the network process never sees the spool. */
struct queue_relay_req {
    uint64_t id;
    const char *domain;
    const struct envelope *env; /* sender, parameters, the domain's recipients */
    int fd;                     /* the content at offset 0; the transport dups it */
    uint64_t len;
};
/* Returns 0 if the request was handed over (then queue_relay_done() will
 * come), -errno otherwise (the recipients are deferred). */
typedef int (*queue_relay_fn)(void *arg, const struct queue_relay_req *req);
void queue_set_relay(struct queue *q, queue_relay_fn fn, void *arg);
/* The transport's answer for request id: res[i] for its i-th recipient,
 * the host that answered ("none" when no connection was made), and
 * whether it offered DSN (then success notices are its job, RFC 3461
 * §5.2.2; else tern sends "relayed" notices where NOTIFY asked). */
void queue_relay_done(struct queue *q, uint64_t id, const struct result *res, size_t n,
                      const char *relay, int peer_dsn);

/* A reload: new work uses cfg from now on. Delivery threads may still
 * read the settings they started with, so the old config is handed to
 * release(arg, old) once no job uses it any more (perhaps at once). */
typedef void (*queue_config_release_fn)(void *arg, const struct config *old);
void queue_set_config(struct queue *q, const struct config *cfg,
                      queue_config_release_fn release, void *arg);

/* Counters, for tests and logs. */
struct queue_stats {
    unsigned long committed, delivered, deferred, bounced, batches, recovered;
    unsigned long active; /* messages in the spool */
};
void queue_get_stats(const struct queue *q, struct queue_stats *st);

#endif
