/* queue_dkim: DKIM signing of outbound mail in the queue process, which
 * holds the keys (proc/dkim_keys.h) and sees every message as it is
 * committed (queue_set_signer). Signed: mail of an authenticated client,
 * of a client in relay_networks, and what the queue makes or picks up
 * itself (tern sendmail, bounces, delay warnings): an envelope with no
 * client address. Not signed: mail from elsewhere, even when it is
 * forwarded (that is ARC's job: proc/queue_arc says which mail is sealed,
 * and the seal is made here, in the same pass over the content). The key
 * is chosen by the RFC5322.From domain (exactly one From address; a
 * message with none or several is left unsigned): every dkim_sign line of
 * that domain signs, relaxed/relaxed, the usual fields over-signed
 * (mailauth/dkim_sign.h). */
#ifndef TERN_PROC_QUEUE_DKIM_H
#define TERN_PROC_QUEUE_DKIM_H

#include <stdint.h>

#include "base/buf.h"
#include "conf/config.h"
#include "mail/envelope.h"
#include "proc/dkim_keys.h"

struct queue_dkim;

struct queue_dkim *queue_dkim_new(void);
void queue_dkim_free(struct queue_dkim *d);

/* The configuration (relay_networks) and the keys to sign with from now
 * on; ring is taken over (the previous one is freed), cfg must outlive
 * the next call. */
void queue_dkim_set(struct queue_dkim *d, const struct config *cfg, struct dkim_keyring *ring);

/* A queue_sign_fn (queue/queue.h); arg is the queue_dkim. */
void queue_dkim_sign(void *arg, const struct envelope *env, const char *prefix, size_t plen,
                     int fd, uint64_t size, struct buf *out);

#endif
