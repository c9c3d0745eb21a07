/* queue_auth: AUTH checks in the queue process, which may read the users
 * file (the network process may not, and never sees a hash). A password
 * hash costs tens of milliseconds of CPU by design, so checks run on
 * their own threads and never stall the spool's event loop. */
#ifndef TERN_PROC_QUEUE_AUTH_H
#define TERN_PROC_QUEUE_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "conf/config.h"
#include "ev/loop.h"

struct queue_auth;

/* Called on the loop thread with the verdict (enum auth_result). */
typedef void (*queue_auth_done_fn)(void *arg, uint64_t req, int result);

/* NULL after logging why. */
struct queue_auth *queue_auth_new(struct ev_loop *loop, const struct config *cfg,
                                  queue_auth_done_fn done, void *arg);
void queue_auth_free(struct queue_auth *qa);
/* A reload: cfg (which must outlive its use here) replaces the settings
 * and the users file is read again. */
void queue_auth_set_config(struct queue_auth *qa, const struct config *cfg);

/* Checks user (lowercased) and password (pwlen octets, copied and wiped
 * after use). The users file is read again first if it changed. */
void queue_auth_check(struct queue_auth *qa, uint64_t req, const char *user,
                      const char *password, size_t pwlen);

#endif
