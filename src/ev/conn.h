/* conn: a buffered, non-blocking byte stream over a socket, with an idle
 * timeout. The owner reads from conn_rbuf() in its on_read callback and
 * consumes what it used; writes are queued and flushed by the loop.
 * TLS sits behind the same interface (conn_starttls, conn_tls.c). */
#ifndef TERN_EV_CONN_H
#define TERN_EV_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "ev/loop.h"

struct conn;

struct conn_cb {
    /* New bytes are in conn_rbuf(c). The callback consumes (buf_consume)
     * what it used and may leave a partial line for later. */
    void (*on_read)(struct conn *c, void *arg);
    /* The peer closed, an error happened, or the idle timeout fired
     * (err = -ETIMEDOUT); or conn_close() finished flushing (err = 0).
     * After this callback the conn does nothing more; the owner frees it
     * with conn_free() (not from inside its own callback: from the loop's
     * before-sleep hook). */
    void (*on_close)(struct conn *c, void *arg, int err);
    /* Optional: the write queue has become empty. */
    void (*on_drain)(struct conn *c, void *arg);
    /* Optional: the TLS handshake started by conn_starttls() finished
     * (err = 0). A failed handshake ends the conn through on_close. */
    void (*on_tls)(struct conn *c, void *arg, int err);
};

struct tlsctx;

/* Takes ownership of the connected, non-blocking `fd`. */
struct conn *conn_new(struct ev_loop *loop, int fd, const struct conn_cb *cb, void *arg);
/* Closes the fd (if still open) and frees everything. Never call from
 * inside this conn's own callbacks. */
void conn_free(struct conn *c);

/* Bytes received and not yet consumed. Reading stops while this holds
 * more than the high-water mark (64 KiB) and resumes once it drops. */
struct buf *conn_rbuf(struct conn *c);
/* Queues bytes for sending; tries to send at once. */
void conn_write(struct conn *c, const void *p, size_t n);
/* Bytes queued and not yet sent. */
size_t conn_wpending(const struct conn *c);
/* Stops (1) or resumes (0) reading and on_read callbacks; resuming with
 * bytes already buffered delivers on_read again from the loop. */
void conn_pause(struct conn *c, int paused);
/* Idle timeout in ms (0 = none), re-armed by every read and write. */
void conn_set_timeout(struct conn *c, uint64_t ms);
/* Flushes what is queued (bounded by the timeout), then closes the fd
 * and reports on_close(err = 0). Further reads are ignored. */
void conn_close(struct conn *c);
/* Closes at once, dropping the queue; reports on_close(err = 0) from the loop. */
void conn_abort(struct conn *c);
/* Switches the conn to TLS as the server: flushes what is queued in
 * plaintext (the 220 of STARTTLS), throws away every byte received and
 * not yet consumed (RFC 3207 §4.2: nothing sent before the handshake may
 * count), then runs the handshake and reports on_tls. The conn takes a
 * reference to t. For implicit TLS call it right after conn_new(). */
void conn_starttls(struct conn *c, struct tlsctx *t);
/* The same as the client of the handshake (outbound SMTP), with a
 * context from tlsctx_client_new(). */
void conn_starttls_client(struct conn *c, struct tlsctx *t);
/* Before conn_starttls_client(): the server's name, sent as SNI and,
 * with verify, checked against its certificate (a name or a numeric
 * address) with the system's trusted CAs; a mismatch fails the handshake. */
void conn_tls_set_peer(struct conn *c, const char *name, int verify);
/* Why the TLS handshake failed (OpenSSL's reason; for a client the
 * certificate check's, e.g. "self-signed certificate"), or "". Still
 * valid in and after on_close. */
const char *conn_tls_error(const struct conn *c);
/* Non-zero once the handshake completed. */
int conn_is_tls(const struct conn *c);
/* The negotiated protocol ("TLSv1.3"), cipher and its secret bits, or
 * NULL / 0 without TLS. The strings are static. */
const char *conn_tls_version(const struct conn *c);
const char *conn_tls_cipher(const struct conn *c);
int conn_tls_bits(const struct conn *c);
/* Octets received so far (decrypted ones with TLS), for rate limits. */
uint64_t conn_rx_total(const struct conn *c);
/* The file descriptor (for getpeername etc.). */
int conn_fd(const struct conn *c);
/* Non-zero once the peer half-closed or the conn was closed. */
int conn_is_closed(const struct conn *c);

#endif
