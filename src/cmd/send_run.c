/* send_run.c: the SMTP session of `tern send`. The relay's state machine
 * (smtp/smtp_client) speaks the protocol; this file gives it a socket
 * the way deliver/relay_conn does (ev/conn, ev/conn_tls on a loop of
 * our own), plus what a person testing a server wants: STARTTLS made a
 * requirement, implicit TLS, certificate checks, and the dialogue on
 * stderr with -v. Name lookup and connect block: one connection, and
 * nothing else to do meanwhile. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "cmd/send_priv.h"
#include "ev/conn.h"
#include "ev/loop.h"
#include "ev/tlsctx.h"
#include "smtp/smtp_client.h"

#define SEND_CA_MAX (16u << 20)

struct send_session {
    const struct send_opts *o;
    struct ev_loop *loop;
    struct conn *conn;
    struct smtp_client *client;
    struct tlsctx *tls;          /* owned reference, NULL without TLS */
    int handshaking;             /* a TLS handshake is running */
    int conn_closed;
    int finished;                /* the transaction's result is in */
    struct send_outcome *out;
    char peer[400]; /* host[address]:port, for texts */
};

/* ---- the dialogue for -v ---- */

static void send_trace(void *arg, char dir, const char *line, size_t len)
{
    struct send_session *s = arg;
    if (dir == 'C')
        s->out->cmds_sent++;
    if (!s->o->verbose)
        return;
    struct buf esc = BUF_INIT;
    strutil_escape(&esc, line, len); /* a server's bytes are not for the terminal raw */
    fprintf(stderr, "%c: %s\n", dir, esc.data ? esc.data : "");
    buf_free(&esc);
}

static void send_note(const struct send_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void send_note(const struct send_session *s, const char *fmt, ...)
{
    if (!s->o->verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("-- ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- smtp_client's io on the conn ---- */

static void send_io_write(void *io, const void *p, size_t n)
{
    struct send_session *s = io;
    if (!s->conn_closed)
        conn_write(s->conn, p, n);
}

static size_t send_io_pending(void *io)
{
    struct send_session *s = io;
    return s->conn_closed ? 0 : conn_wpending(s->conn);
}

static void send_tls_start(struct send_session *s)
{
    /* The name (or address) the user gave is what the certificate must
     * name; with --insecure only SNI goes out. */
    conn_tls_set_peer(s->conn, s->o->host, !s->o->insecure);
    s->handshaking = 1;
    conn_starttls_client(s->conn, s->tls);
}

static void send_io_starttls(void *io)
{
    struct send_session *s = io;
    if (s->conn_closed) {
        smtp_client_tls_done(s->client, 0);
        return;
    }
    send_tls_start(s);
}

static void send_io_timeout(void *io, uint64_t ms)
{
    struct send_session *s = io;
    uint64_t cap = (uint64_t)s->o->timeout_s * 1000;
    if (!s->conn_closed)
        conn_set_timeout(s->conn, ms < cap ? ms : cap);
}

/* With --starttls the client is given a starttls hook; without TLS it
 * has none, so it never tries (the user asked for plaintext). */
static const struct smtp_client_io send_io_tls = {
    send_io_write, send_io_pending, send_io_starttls, send_io_timeout,
};
static const struct smtp_client_io send_io_plain = {
    send_io_write, send_io_pending, NULL, send_io_timeout,
};

/* ---- conn callbacks ---- */

static void send_on_read(struct conn *c, void *arg)
{
    struct send_session *s = arg;
    smtp_client_input(s->client, conn_rbuf(c));
}

static void send_on_drain(struct conn *c, void *arg)
{
    struct send_session *s = arg;
    smtp_client_drained(s->client);
}

static void send_on_tls(struct conn *c, void *arg, int err)
{
    struct send_session *s = arg;
    s->handshaking = 0;
    send_note(s, "TLS: %s, %s (%d bits)%s", conn_tls_version(c), conn_tls_cipher(c),
              conn_tls_bits(c), s->o->insecure ? ", certificate not checked" : "");
    smtp_client_tls_done(s->client, err == 0); /* ignored with implicit TLS */
}

static void send_on_close(struct conn *c, void *arg, int err)
{
    struct send_session *s = arg;
    s->conn_closed = 1;
    if (!s->finished) {
        char why[800];
        const char *tls_err = conn_tls_error(c);
        if (s->handshaking) {
            snprintf(why, sizeof why, "TLS handshake with %s failed: %s", s->peer,
                     tls_err[0] ? tls_err : err ? strerror(-err) : "connection closed");
            strutil_lcpy(s->out->why, why, sizeof s->out->why);
            smtp_client_tls_done(s->client, 0); /* STARTTLS: the client says why */
        } else {
            snprintf(why, sizeof why, "%s",
                     err == -ETIMEDOUT ? "timeout" : err ? strerror(-err) : "connection closed");
        }
        if (!s->finished) /* implicit TLS, or a connection lost mid-way */
            smtp_client_lost(s->client, why);
    }
    ev_loop_stop(s->loop);
}

static const struct conn_cb send_conn_cb = {
    .on_read = send_on_read, .on_close = send_on_close, .on_drain = send_on_drain,
    .on_tls = send_on_tls};

/* The transaction ended: keep the results, then QUIT and wait for the
 * server to close (so -v shows the 221), or close a broken session. */
static void send_done(void *arg, const struct result *res, size_t n, int closed)
{
    struct send_session *s = arg;
    struct send_outcome *out = s->out;
    s->finished = 1;
    out->res = xcalloc(n ? n : 1, sizeof *res);
    memcpy(out->res, res, n * sizeof *res);
    out->n = n;
    out->closed = closed;
    const char *text;
    out->last_code = smtp_client_last_reply(s->client, &text);
    strutil_lcpy(out->last_text, text, sizeof out->last_text);
    if (s->conn_closed) {
        ev_loop_stop(s->loop);
        return;
    }
    if (!closed && smtp_client_idle(s->client)) {
        smtp_client_quit(s->client);
        uint64_t t = (uint64_t)s->o->timeout_s * 1000;
        conn_set_timeout(s->conn, t < 10000 ? t : 10000);
        return;
    }
    conn_close(s->conn);
}

/* ---- connecting ---- */

/* Waits for a non-blocking connect. Returns 0 or -errno (-ETIMEDOUT). */
static int send_connect_wait(int fd, unsigned timeout_s)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int r;
    do
        r = poll(&p, 1, (int)(timeout_s * 1000));
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    if (r == 0)
        return -ETIMEDOUT;
    int err = 0;
    socklen_t el = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
        return -errno;
    return -err;
}

/* Tries the addresses of host:port in order. Returns a connected
 * non-blocking socket, or after saying why -EAGAIN (the name cannot be
 * looked up now), -ENOENT (it has no address) or -ENOTCONN (no address
 * took the connection). */
static int send_connect(const struct send_opts *o, char *peer, size_t peersize)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = 0};
    struct addrinfo *ai = NULL;
    int g = getaddrinfo(o->host, o->port, &hints, &ai);
    if (g != 0) {
        fprintf(stderr, "tern send: %s: %s\n", strutil_esc(o->host), gai_strerror(g));
        return g == EAI_AGAIN ? -EAGAIN : -ENOENT;
    }
    int fd = -1;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        char addr[NI_MAXHOST] = "?";
        (void)getnameinfo(a->ai_addr, a->ai_addrlen, addr, sizeof addr, NULL, 0,
                          NI_NUMERICHOST);
        if (!strcmp(addr, o->host))
            snprintf(peer, peersize, "[%s]:%s", addr, o->port);
        else
            snprintf(peer, peersize, "%s[%s]:%s", o->host, addr, o->port);
        fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int err = fd < 0 ? errno : 0;
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) < 0)
            err = errno == EINPROGRESS ? -send_connect_wait(fd, o->timeout_s) : errno;
        if (err) {
            fprintf(stderr, "tern send: connect to %s: %s\n", strutil_esc(peer), strerror(err));
            if (fd >= 0)
                close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return -ENOTCONN;
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* The client TLS context: the system's CAs, or only those of --cafile. */
static struct tlsctx *send_tls_ctx(const struct send_opts *o)
{
    struct buf err = BUF_INIT, pem = BUF_INIT;
    struct tlsctx *t = NULL;
    if (o->cafile) {
        FILE *f = fopen(o->cafile, "re");
        if (f == NULL) {
            fprintf(stderr, "tern send: --cafile %s: %s\n", strutil_esc(o->cafile),
                    strerror(errno));
            goto out;
        }
        char chunk[8192];
        size_t k;
        while ((k = fread(chunk, 1, sizeof chunk, f)) > 0 && pem.len < SEND_CA_MAX)
            buf_append(&pem, chunk, k);
        fclose(f);
        t = tlsctx_client_new_ca(pem.data ? pem.data : "", pem.len, &err);
    } else {
        t = tlsctx_client_new(&err);
    }
    if (t == NULL)
        fprintf(stderr, "tern send: TLS: %s%s", o->cafile ? "--cafile: " : "",
                err.data ? err.data : "cannot set up\n");
out:
    buf_free(&err);
    buf_free(&pem);
    return t;
}

/* Does the message need SMTPUTF8 (RFC 6531: a non-ASCII address)? */
static int send_needs_utf8(const struct send_opts *o)
{
    for (const char *p = o->from; *p; p++)
        if ((unsigned char)*p >= 0x80)
            return 1;
    for (size_t i = 0; i < o->nrcpts; i++)
        for (const char *p = o->rcpts[i]; *p; p++)
            if ((unsigned char)*p >= 0x80)
                return 1;
    return 0;
}

int send_run(const struct send_opts *o, const struct send_msg *m, struct send_outcome *out)
{
    memset(out, 0, sizeof *out);
    struct send_session s = {.o = o, .out = out};
    if ((o->tls || o->starttls) && (s.tls = send_tls_ctx(o)) == NULL)
        return SEND_EX_USAGE;
    int fd = send_connect(o, s.peer, sizeof s.peer);
    if (fd < 0) {
        tlsctx_unref(s.tls);
        return fd == -EAGAIN ? SEND_EX_TEMPFAIL : fd == -ENOENT ? SEND_EX_NOHOST
                                                                 : SEND_EX_UNAVAILABLE;
    }
    send_note(&s, "connected to %s", s.peer);
    s.loop = ev_loop_new();
    s.conn = conn_new(s.loop, fd, &send_conn_cb, &s);
    enum smtp_client_tls pol = o->tls ? SMTP_TLS_IMPLICIT
                               : o->starttls ? SMTP_TLS_REQUIRE : SMTP_TLS_MAY;
    if (o->tls)
        send_tls_start(&s); /* RFC 8314 §3.3: the handshake before the greeting */
    s.client = smtp_client_new(o->helo, s.peer, pol, o->starttls ? &send_io_tls : &send_io_plain,
                               &s);
    smtp_client_set_trace(s.client, send_trace, &s);
    if (o->auth_user)
        smtp_client_set_auth(s.client, o->auth_user, o->password);
    struct smtp_client_msg msg = {
        .from = o->from,
        .rcpts = o->rcpts,
        .nrcpts = o->nrcpts,
        .fd = m->fd,
        .off = 0,
        .len = m->len,
        .body = m->eightbit ? ENV_BODY_8BITMIME : ENV_BODY_7BIT,
        .smtputf8 = send_needs_utf8(o),
    };
    smtp_client_send(s.client, &msg, send_done, &s);
    int rc = 0;
    if (!s.finished || !s.conn_closed)
        rc = ev_loop_run(s.loop);
    if (rc < 0 && !s.finished)
        smtp_client_lost(s.client, "event loop failed");
    smtp_client_free(s.client);
    conn_free(s.conn);
    ev_loop_free(s.loop);
    tlsctx_unref(s.tls);
    return 0;
}

void send_outcome_free(struct send_outcome *out)
{
    free(out->res);
    out->res = NULL;
}
