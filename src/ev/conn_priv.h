/* conn_priv: struct conn, shared by conn.c (the byte stream) and
 * conn_tls.c (OpenSSL under the same interface). Nobody else sees it. */
#ifndef TERN_EV_CONN_PRIV_H
#define TERN_EV_CONN_PRIV_H

#include <sys/types.h>

#include "ev/conn.h"
#include "ev/tlsctx.h"

/* Stop reading above this many unconsumed bytes: a peer must not make us
 * buffer without bound (docs/design.md: limits before allocating). */
#define CONN_HIGH_WATER (64 * 1024)
#define CONN_READ_CHUNK (64 * 1024)
/* Reading pauses while more than this waits to be sent. */
#define CONN_WRITE_HIGH (256 * 1024)
/* The longest a closing conn may take to flush its last replies. */
#define CONN_CLOSE_TIMEOUT_MS 30000

enum conn_state { CONN_OPEN, CONN_CLOSING, CONN_DONE };
enum conn_tls_state { CONN_TLS_NONE, CONN_TLS_HANDSHAKE, CONN_TLS_ON };

struct conn {
    struct ev_loop *loop;  /* not owned */
    int fd;                /* owned; -1 once closed */
    struct conn_cb cb;
    void *arg;
    enum conn_state state;
    int paused;
    int eof;               /* the peer half-closed */
    int close_err;         /* what on_close will report */
    int depth;             /* > 0 while one of our callbacks runs */
    unsigned watched;      /* events asked of the loop */
    struct buf rbuf;
    struct buf wbuf;       /* queued bytes are wbuf.data[woff .. len) */
    size_t woff;
    uint64_t rx_total;     /* octets received (after TLS) in the conn's life */
    uint64_t timeout_ms;   /* 0 = none */
    uint64_t last_active;  /* clock_mono_ms() of the last read or write */
    ev_timer_id idle_timer;
    ev_timer_id resume_timer;
    ev_timer_id close_timer;

    /* TLS: tls_start is set by conn_starttls() until the plaintext queue
     * is flushed; then the handshake runs (tls_want: the events OpenSSL
     * waits for), then every byte goes through ssl. */
    enum conn_tls_state tls_state;
    int tls_start;
    unsigned tls_want;
    int tls_rw_swap;       /* a read needs a write, or a write a read */
    int tls_client;        /* we connect (outbound) rather than accept */
    char *tls_peer;        /* owned: the server's name (SNI, verification), or NULL */
    int tls_verify;        /* the server's certificate must verify for tls_peer */
    void *ssl;             /* owned SSL *, NULL without TLS */
    struct tlsctx *tls;    /* a reference, released with ssl */
    char tls_err[200];     /* why the handshake failed, "" if it did not */
};

/* conn.c */
void conn_finish(struct conn *c, int err);
void conn_watch(struct conn *c);
void conn_pending_fire(struct ev_loop *loop, void *arg);

/* conn_tls.c */
/* Starts the server handshake (the plaintext queue is empty). */
void conn_tls_begin(struct conn *c);
/* Advances the handshake; on success reports cb.on_tls. */
void conn_tls_handshake(struct conn *c);
/* As send/recv: bytes moved, 0 at EOF (recv), -EAGAIN, or -errno. */
ssize_t conn_tls_send(struct conn *c, const char *p, size_t n);
ssize_t conn_tls_recv(struct conn *c, char *p, size_t n);
/* Decrypted bytes wait inside OpenSSL. */
int conn_tls_pending(const struct conn *c);
/* Frees the TLS state; with clean, first sends close_notify (best effort). */
void conn_tls_end(struct conn *c, int clean);

#endif
