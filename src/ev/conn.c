/* conn: a buffered non-blocking socket stream on the ev loop.
 *
 * Life cycle: OPEN -> (conn_close, or peer EOF with writes queued) CLOSING
 * -> DONE. Entering DONE closes the fd at once and schedules on_close
 * through a 0 ms timer, so on_close always runs from the loop with no conn
 * code on the stack, exactly once. */
#include "ev/conn.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/xmalloc.h"
#include "ev/conn_priv.h"

static void conn_io(struct ev_loop *loop, int fd, unsigned events, void *arg);
static void conn_read(struct conn *c);

static size_t conn_queued(const struct conn *c)
{
    return c->wbuf.len - c->woff;
}

static void conn_close_fire(struct ev_loop *loop, void *arg)
{
    struct conn *c = arg;
    c->close_timer = 0;
    c->depth++;
    if (c->cb.on_close)
        c->cb.on_close(c, c->arg, c->close_err);
    c->depth--;
}

/* Ends the conn: stops everything, closes the fd and reports on_close
 * from the loop. Idempotent. */
void conn_finish(struct conn *c, int err)
{
    if (c->state == CONN_DONE)
        return;
    c->state = CONN_DONE;
    c->close_err = err;
    ev_timer_cancel(c->loop, c->idle_timer);
    ev_timer_cancel(c->loop, c->resume_timer);
    c->idle_timer = c->resume_timer = 0;
    conn_tls_end(c, err == 0);
    if (c->fd >= 0) {
        ev_io_del(c->loop, c->fd);
        close(c->fd);
        c->fd = -1;
    }
    c->watched = 0;
    buf_free(&c->wbuf);
    c->woff = 0;
    c->close_timer = ev_timer_add(c->loop, 0, conn_close_fire, c);
}

/* Asks the loop for exactly the events the current state needs. Level
 * triggered, so reading must be switched off while paused or full. */
void conn_watch(struct conn *c)
{
    if (c->state == CONN_DONE)
        return;
    unsigned want = 0;
    if (c->tls_state == CONN_TLS_HANDSHAKE) {
        want = c->tls_want;
    } else {
        /* A peer that does not read its replies gets no more of its
         * commands read: the write queue stays bounded too. */
        int reading = c->state == CONN_OPEN && !c->paused && !c->eof &&
                      c->rbuf.len < CONN_HIGH_WATER && !c->tls_start &&
                      conn_queued(c) < CONN_WRITE_HIGH;
        if (reading)
            want |= EV_READ;
        if (conn_queued(c) > 0)
            want |= EV_WRITE;
        /* TLS may need the other direction to make progress. */
        if (c->tls_rw_swap && (reading || conn_queued(c) > 0))
            want |= EV_READ | EV_WRITE;
        /* Records OpenSSL already decrypted raise no event on the socket. */
        if (reading && conn_tls_pending(c) && c->resume_timer == 0)
            c->resume_timer = ev_timer_add(c->loop, 0, conn_pending_fire, c);
    }
    if (want == c->watched)
        return;
    int r = ev_io_mod(c->loop, c->fd, want);
    if (r < 0) {
        conn_finish(c, r);
        return;
    }
    c->watched = want;
}

/* Sends from p; returns bytes sent (may be short on EAGAIN) or -errno. */
static ssize_t conn_send(struct conn *c, const char *p, size_t n)
{
    size_t done = 0;
    if (c->tls_state == CONN_TLS_ON) {
        ssize_t k = conn_tls_send(c, p, n);
        if (k > 0)
            c->last_active = clock_mono_ms();
        return k;
    }
    while (done < n) {
        /* MSG_NOSIGNAL: a peer that went away is an error, not SIGPIPE. */
        ssize_t k = send(c->fd, p + done, n - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0) {
            done += (size_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        return k < 0 ? -errno : -EPIPE;
    }
    if (done > 0)
        c->last_active = clock_mono_ms();
    return (ssize_t)done;
}

/* Peer EOF once the owner had every buffered byte while unpaused: flush
 * what is queued (CLOSING), then report on_close(0). */
static void conn_check_eof(struct conn *c)
{
    if (!c->eof || c->paused || c->state != CONN_OPEN)
        return;
    if (conn_queued(c) > 0)
        c->state = CONN_CLOSING;
    else
        conn_finish(c, 0);
}

static void conn_deliver(struct conn *c)
{
    if (c->cb.on_read && !c->paused && c->state == CONN_OPEN) {
        c->depth++;
        c->cb.on_read(c, c->arg);
        c->depth--;
    }
}

static void conn_flush(struct conn *c)
{
    ssize_t n = conn_send(c, c->wbuf.data + c->woff, conn_queued(c));
    if (n < 0) {
        conn_finish(c, (int)n);
        return;
    }
    c->woff += (size_t)n;
    if (conn_queued(c) > 0) {
        /* Compact only when the sent part outweighs the rest: the memmove
         * then costs at most what was sent (amortized linear). */
        if (c->woff >= conn_queued(c)) {
            buf_consume(&c->wbuf, c->woff);
            c->woff = 0;
        }
        conn_watch(c);
        return;
    }
    buf_reset(&c->wbuf);
    c->woff = 0;
    if (c->tls_start) {
        if (c->state != CONN_OPEN) {
            conn_finish(c, 0); /* closed meanwhile: no handshake to start */
            return;
        }
        conn_tls_begin(c);
        return;
    }
    conn_watch(c);
    if (c->state == CONN_CLOSING) {
        conn_finish(c, 0);
    } else if (c->state == CONN_OPEN && c->cb.on_drain) {
        c->depth++;
        c->cb.on_drain(c, c->arg);
        c->depth--;
    }
}

/* Reads what the socket (or TLS) has: > 0 bytes, 0 at EOF, -EAGAIN when
 * nothing more is there now, another -errno on failure. */
static ssize_t conn_recv(struct conn *c, char *p, size_t n)
{
    if (c->tls_state == CONN_TLS_ON)
        return conn_tls_recv(c, p, n);
    for (;;) {
        ssize_t k = read(c->fd, p, n);
        if (k >= 0)
            return k;
        if (errno == EINTR)
            continue;
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

static void conn_read(struct conn *c)
{
    size_t got = 0;
    int err = 0;
    while (c->rbuf.len < CONN_HIGH_WATER) {
        char *p = buf_reserve(&c->rbuf, CONN_READ_CHUNK);
        ssize_t n = conn_recv(c, p, CONN_READ_CHUNK);
        if (n > 0) {
            buf_commit(&c->rbuf, (size_t)n);
            got += (size_t)n;
            continue;
        }
        if (n == 0)
            c->eof = 1;
        else if (n != -EAGAIN)
            err = (int)n;
        break;
    }
    if (got > 0) {
        c->rx_total += got;
        c->last_active = clock_mono_ms();
        conn_deliver(c);
    }
    if (c->state != CONN_OPEN)
        return; /* the owner closed or aborted in on_read */
    if (err) {
        conn_finish(c, err);
        return;
    }
    conn_check_eof(c);
    conn_watch(c);
}

static void conn_io(struct ev_loop *loop, int fd, unsigned events, void *arg)
{
    struct conn *c = arg;
    if (c->tls_state == CONN_TLS_HANDSHAKE) {
        conn_tls_handshake(c);
        return;
    }
    int swap = c->tls_rw_swap;
    if ((events & EV_WRITE || swap) && conn_queued(c) > 0 && c->state != CONN_DONE)
        conn_flush(c);
    if ((events & EV_READ || swap) && (c->watched & EV_READ) && c->state == CONN_OPEN)
        conn_read(c);
}

static void conn_resume_fire(struct ev_loop *loop, void *arg)
{
    struct conn *c = arg;
    c->resume_timer = 0;
    if (c->state != CONN_OPEN || c->paused)
        return;
    if (c->rbuf.len > 0)
        conn_deliver(c);
    if (c->state != CONN_OPEN)
        return;
    conn_check_eof(c);
    conn_watch(c);
}

void conn_pending_fire(struct ev_loop *loop, void *arg)
{
    struct conn *c = arg;
    c->resume_timer = 0;
    if (c->state == CONN_OPEN && !c->paused)
        conn_read(c);
}

/* The timer is re-armed lazily: activity only updates last_active, and
 * a timer that fires early sleeps again for the remainder. */
static void conn_idle_fire(struct ev_loop *loop, void *arg)
{
    struct conn *c = arg;
    c->idle_timer = 0;
    if (c->state == CONN_DONE || c->timeout_ms == 0)
        return;
    uint64_t now = clock_mono_ms();
    uint64_t idle = now - c->last_active;
    if (now >= c->last_active && idle < c->timeout_ms) {
        c->idle_timer = ev_timer_add(loop, c->timeout_ms - idle, conn_idle_fire, c);
        return;
    }
    conn_finish(c, -ETIMEDOUT);
}

struct conn *conn_new(struct ev_loop *loop, int fd, const struct conn_cb *cb, void *arg)
{
    struct conn *c = xcalloc(1, sizeof *c);
    c->loop = loop;
    c->fd = fd;
    c->cb = *cb;
    c->arg = arg;
    c->state = CONN_OPEN;
    buf_init(&c->rbuf);
    buf_init(&c->wbuf);
    c->last_active = clock_mono_ms();
    int r = ev_io_add(loop, fd, EV_READ, conn_io, c);
    if (r < 0) {
        /* Reported like any other failure: on_close(r) from the loop. */
        log_warn("conn: cannot watch fd %d: %d", fd, r);
        if (fd >= 0)
            close(fd);
        c->fd = -1;
        conn_finish(c, r);
        return c;
    }
    c->watched = EV_READ;
    return c;
}

void conn_free(struct conn *c)
{
    if (!c)
        return;
    if (c->depth > 0)
        fatal("conn_free called from inside the conn's own callback");
    ev_timer_cancel(c->loop, c->idle_timer);
    ev_timer_cancel(c->loop, c->resume_timer);
    ev_timer_cancel(c->loop, c->close_timer);
    conn_tls_end(c, 0);
    if (c->fd >= 0) {
        ev_io_del(c->loop, c->fd);
        close(c->fd);
    }
    buf_free(&c->rbuf);
    buf_free(&c->wbuf);
    free(c);
}

struct buf *conn_rbuf(struct conn *c)
{
    return &c->rbuf;
}

void conn_write(struct conn *c, const void *p, size_t n)
{
    if (c->state != CONN_OPEN || n == 0)
        return; /* after conn_close/abort or an error nothing more is sent */
    if (c->tls_start || c->tls_state == CONN_TLS_HANDSHAKE)
        return; /* plaintext must never leak into a TLS handshake */
    if (conn_queued(c) == 0) {
        /* Nothing queued: write at once and queue only the rest. */
        ssize_t k = conn_send(c, p, n);
        if (k < 0) {
            conn_finish(c, (int)k);
            return;
        }
        p = (const char *)p + k;
        n -= (size_t)k;
        if (n == 0)
            return;
    }
    buf_append(&c->wbuf, p, n);
    conn_watch(c);
}

size_t conn_wpending(const struct conn *c)
{
    return conn_queued(c);
}

void conn_pause(struct conn *c, int paused)
{
    if (c->state != CONN_OPEN) {
        c->paused = paused != 0;
        return;
    }
    if (paused) {
        c->paused = 1;
        ev_timer_cancel(c->loop, c->resume_timer);
        c->resume_timer = 0;
    } else if (c->paused) {
        c->paused = 0;
        /* Bytes already here (or an EOF seen) would get no readable event:
         * deliver them from the loop, not from inside this call. */
        if ((c->rbuf.len > 0 || c->eof) && c->resume_timer == 0)
            c->resume_timer = ev_timer_add(c->loop, 0, conn_resume_fire, c);
    }
    conn_watch(c);
}

void conn_set_timeout(struct conn *c, uint64_t ms)
{
    ev_timer_cancel(c->loop, c->idle_timer);
    c->idle_timer = 0;
    c->timeout_ms = ms;
    if (ms == 0 || c->state == CONN_DONE)
        return;
    c->last_active = clock_mono_ms();
    c->idle_timer = ev_timer_add(c->loop, ms, conn_idle_fire, c);
}

void conn_close(struct conn *c)
{
    if (c->state != CONN_OPEN)
        return;
    ev_timer_cancel(c->loop, c->resume_timer);
    c->resume_timer = 0;
    /* Nothing queued, or only the 220 of a STARTTLS that will not happen. */
    if (conn_queued(c) == 0 || c->tls_start || c->tls_state == CONN_TLS_HANDSHAKE) {
        conn_finish(c, 0);
        return;
    }
    c->state = CONN_CLOSING;
    /* A peer that stops reading must not keep a closing conn forever. */
    if (c->timeout_ms == 0 || c->timeout_ms > CONN_CLOSE_TIMEOUT_MS)
        conn_set_timeout(c, CONN_CLOSE_TIMEOUT_MS);
    conn_watch(c);
}

void conn_abort(struct conn *c)
{
    conn_finish(c, 0);
}

uint64_t conn_rx_total(const struct conn *c)
{
    return c->rx_total;
}

int conn_fd(const struct conn *c)
{
    return c->fd;
}

int conn_is_closed(const struct conn *c)
{
    return c->eof || c->state != CONN_OPEN;
}
