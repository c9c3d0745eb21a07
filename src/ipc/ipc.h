/* ipc: framed, typed messages over SOCK_SEQPACKET socketpairs, with an fd
 * passed (SCM_RIGHTS) where a file changes hands. A channel queues what it
 * cannot send at once and delivers whole messages to its callback.
 * Payloads are built and read field by field; a reader that runs off the
 * end or finds a bad field fails, and ipc_rd_end() checks nothing is left
 * over. */
#ifndef TERN_IPC_IPC_H
#define TERN_IPC_IPC_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "ev/loop.h"

struct ipc_chan;

/* A received message. payload is valid during the callback only; fd (or
 * -1) belongs to the callback, which must close or keep it. */
struct ipc_msg {
    unsigned type;
    const char *payload;
    size_t len;
    int fd;
};

typedef void (*ipc_msg_cb)(struct ipc_chan *ch, struct ipc_msg *msg, void *arg);
/* The peer went away (err 0) or the channel broke (-errno). */
typedef void (*ipc_close_cb)(struct ipc_chan *ch, int err, void *arg);

/* Creates a socketpair for two processes. Returns 0 or -errno. */
int ipc_pair(int fds[2]);
/* Takes ownership of fd (made non-blocking). */
struct ipc_chan *ipc_chan_new(struct ev_loop *loop, int fd, ipc_msg_cb on_msg,
                              ipc_close_cb on_close, void *arg);
void ipc_chan_free(struct ipc_chan *ch);
/* Queues a message; fd >= 0 is duplicated into the message (the caller
 * keeps its own). Returns 0 or -errno (payload too large, channel closed). */
int ipc_send(struct ipc_chan *ch, unsigned type, const struct buf *payload, int fd);

/* Octets queued on ch that the socket has not taken yet: a sender of
 * messages that may be dropped (proc/net_dmarc) looks at it first, so a
 * peer that stops reading cannot make the queue grow without bound. */
size_t ipc_chan_backlog(const struct ipc_chan *ch);

/* Sends one message on a blocking descriptor, outside any loop (the
 * parent, which has none). Returns 0 or -errno. */
int ipc_send_sync(int fd, unsigned type, const struct buf *payload);
/* Receives one message on a blocking descriptor into rbuf[0..cap)
 * (header included; a larger message is malformed). Returns 1 with *out
 * filled (out->payload points into rbuf; out->fd, or -1, is the caller's),
 * 0 when the peer closed, or -errno (-EPROTO: malformed). */
int ipc_recv_sync(int fd, char *rbuf, size_t cap, struct ipc_msg *out);
/* The same with descriptor `pass` attached (the caller keeps its own). */
int ipc_send_sync_fd(int fd, unsigned type, const struct buf *payload, int pass);

/* Payload builders. */
void ipc_put_u32(struct buf *b, uint32_t v);
void ipc_put_u64(struct buf *b, uint64_t v);
void ipc_put_i32(struct buf *b, int32_t v);
/* A length-prefixed byte string (also for C strings: no NUL stored). */
void ipc_put_bytes(struct buf *b, const void *p, size_t n);
void ipc_put_str(struct buf *b, const char *s);

/* Payload reader: any failure sticks, so a sequence of gets can be checked once. */
struct ipc_rd {
    const char *p;
    size_t left;
    int err;
};
void ipc_rd_init(struct ipc_rd *r, const struct ipc_msg *msg);
uint32_t ipc_get_u32(struct ipc_rd *r);
uint64_t ipc_get_u64(struct ipc_rd *r);
int32_t ipc_get_i32(struct ipc_rd *r);
/* Points into the payload; *n set. Fails if longer than max. */
const char *ipc_get_bytes(struct ipc_rd *r, size_t *n, size_t max);
/* Copies a string (no NUL inside allowed) into out of outsize bytes. */
void ipc_get_str(struct ipc_rd *r, char *out, size_t outsize);
/* A struct result (mail/result) as u32 kind, i32 code, str enh, str
 * text. Reading fails unless it is result_valid(): a process that sends
 * a reply for a client to hear must send a well-formed one. */
struct result;
void ipc_put_result(struct buf *b, const struct result *res);
void ipc_get_result(struct ipc_rd *r, struct result *out);
/* Returns 0 if every get succeeded and nothing is left, else -EBADMSG. */
int ipc_rd_end(const struct ipc_rd *r);

#endif
