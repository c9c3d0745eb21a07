/* test_conn: a conn on one end of a socketpair, the test driving the other
 * end by hand: split lines, pause/resume, high-water mark, large writes to
 * a slow reader, EOF, errors, idle timeout, close and abort. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "check.h"
#include "ev/conn.h"
#include "ev/loop.h"

struct rec {
    struct ev_loop *loop;
    struct conn *c;
    int peer;               /* the test's end of the socketpair */
    struct buf lines;       /* complete lines seen, each ended by '|' */
    int reads, closes, close_err, drains;
    int reads_after_close;
    int pause_after_line;   /* pause after consuming this many lines */
    int nlines;
    size_t max_rbuf, consumed;
    int stop_on_close;
};

static void stop_cb(struct ev_loop *loop, void *arg)
{
    int *flag = arg;
    if (flag)
        *flag = 1;
    ev_loop_stop(loop);
}

/* Consumes complete CRLF lines, one at a time while pause_after_line
 * allows, and leaves a partial line in the buffer. */
static void on_read(struct conn *c, void *arg)
{
    struct rec *r = arg;
    struct buf *b = conn_rbuf(c);
    r->reads++;
    if (r->closes)
        r->reads_after_close++;
    if (b->len > r->max_rbuf)
        r->max_rbuf = b->len;
    for (;;) {
        char *eol = memchr(b->data, '\n', b->len);
        if (!eol)
            break;
        size_t n = (size_t)(eol - b->data) + 1;
        buf_append(&r->lines, b->data, n > 1 && eol[-1] == '\r' ? n - 2 : n - 1);
        buf_putc(&r->lines, '|');
        buf_consume(b, n);
        if (++r->nlines == r->pause_after_line) {
            conn_pause(c, 1);
            break;
        }
    }
}

static void on_read_all(struct conn *c, void *arg)
{
    struct rec *r = arg;
    struct buf *b = conn_rbuf(c);
    r->reads++;
    if (b->len > r->max_rbuf)
        r->max_rbuf = b->len;
    r->consumed += b->len;
    buf_consume(b, b->len);
}

static void on_close(struct conn *c, void *arg, int err)
{
    struct rec *r = arg;
    r->closes++;
    r->close_err = err;
    if (r->stop_on_close)
        ev_loop_stop(r->loop);
}

static void on_drain(struct conn *c, void *arg)
{
    ((struct rec *)arg)->drains++;
}

static const struct conn_cb line_cb = {.on_read = on_read, .on_close = on_close, .on_drain = on_drain};
static const struct conn_cb all_cb = {.on_read = on_read_all, .on_close = on_close, .on_drain = on_drain};

static void setup(struct rec *r, const struct conn_cb *cb)
{
    int sp[2];
    memset(r, 0, sizeof *r);
    buf_init(&r->lines);
    r->loop = ev_loop_new();
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sp) < 0)
        abort();
    r->peer = sp[1];
    r->c = conn_new(r->loop, sp[0], cb, r);
    r->stop_on_close = 1;
}

static void teardown(struct rec *r)
{
    conn_free(r->c);
    if (r->peer >= 0)
        close(r->peer);
    ev_loop_free(r->loop);
    buf_free(&r->lines);
}

static void run_until(struct rec *r, uint64_t ms)
{
    ev_timer_id t = ev_timer_add(r->loop, ms, stop_cb, NULL);
    ev_loop_run(r->loop);
    ev_timer_cancel(r->loop, t);
}

static const char *g_piece[] = {"HELO a", "\r\nMAIL FROM:<x", ">\r", "\nQUIT\r\n"};

static void piece_cb(struct ev_loop *loop, void *arg)
{
    struct rec *r = arg;
    static int i;
    const char *p = g_piece[i++];
    if (write(r->peer, p, strlen(p)) != (ssize_t)strlen(p))
        abort();
    if (i == 4) {
        shutdown(r->peer, SHUT_WR);
        i = 0;
    } else {
        ev_timer_add(loop, 5, piece_cb, r);
    }
}

static void test_split_lines(void)
{
    struct rec r;
    setup(&r, &line_cb);
    ev_timer_add(r.loop, 0, piece_cb, &r);
    run_until(&r, 2000);
    CHECK_EQ_STR(r.lines.data, "HELO a|MAIL FROM:<x>|QUIT|");
    CHECK(r.reads >= 4); /* one per piece: each arrived in its own event */
    CHECK_EQ_INT(r.closes, 1);
    CHECK_EQ_INT(r.close_err, 0);
    CHECK_EQ_INT(r.reads_after_close, 0);
    CHECK(conn_is_closed(r.c));
    /* Nothing more after on_close, however long the loop runs. */
    r.stop_on_close = 0;
    run_until(&r, 30);
    CHECK_EQ_INT(r.closes, 1);
    teardown(&r);
}

static void resume_cb(struct ev_loop *loop, void *arg)
{
    struct rec *r = arg;
    /* While paused nothing was delivered, though bytes were waiting. */
    CHECK_EQ_STR(r->lines.data, "A|");
    CHECK_EQ_INT(r->reads, 1);
    r->pause_after_line = 0;
    conn_pause(r->c, 0);
    /* Redelivery comes from the loop, not from inside conn_pause. */
    CHECK_EQ_INT(r->reads, 1);
}

static void test_pause_resume(void)
{
    struct rec r;
    setup(&r, &line_cb);
    r.pause_after_line = 1;
    r.stop_on_close = 0;
    const char *msg = "A\r\nB\r\nC\r\n";
    CHECK_EQ_INT(write(r.peer, msg, strlen(msg)), (long long)strlen(msg));
    ev_timer_add(r.loop, 30, resume_cb, &r);
    run_until(&r, 100);
    /* B and C were already buffered: no new bytes arrived after resume. */
    CHECK_EQ_STR(r.lines.data, "A|B|C|");
    CHECK_EQ_INT(r.reads, 2);
    CHECK_EQ_INT(r.closes, 0);
    teardown(&r);
}

/* EOF seen while paused is reported only after the buffered lines. */
static void test_eof_while_paused(void)
{
    struct rec r;
    setup(&r, &line_cb);
    r.pause_after_line = 1;
    const char *msg = "A\r\nB\r\npartial";
    CHECK_EQ_INT(write(r.peer, msg, strlen(msg)), (long long)strlen(msg));
    shutdown(r.peer, SHUT_WR);
    ev_timer_add(r.loop, 30, resume_cb, &r);
    run_until(&r, 2000);
    CHECK_EQ_STR(r.lines.data, "A|B|");
    CHECK_EQ_INT(r.closes, 1);
    CHECK_EQ_INT(r.close_err, 0);
    CHECK_EQ_INT(r.reads_after_close, 0);
    CHECK_EQ_MEM(conn_rbuf(r.c)->data, conn_rbuf(r.c)->len, "partial", 7);
    teardown(&r);
}

/* The peer writes 1 MiB as fast as the socket takes it. */
struct pump {
    struct rec *r;
    size_t sent, total;
};

static void pump_cb(struct ev_loop *loop, void *arg)
{
    struct pump *p = arg;
    static char chunk[16384];
    while (p->sent < p->total) {
        ssize_t n = write(p->r->peer, chunk, sizeof chunk);
        if (n <= 0)
            break;
        p->sent += (size_t)n;
    }
    if (p->sent < p->total)
        ev_timer_add(loop, 1, pump_cb, p);
    else
        shutdown(p->r->peer, SHUT_WR);
}

static void test_high_water(void)
{
    struct rec r;
    setup(&r, &all_cb);
    struct pump p = {&r, 0, 1 << 20};
    pump_cb(r.loop, &p); /* fills the socket buffer before the first read */
    CHECK(p.sent > 128 * 1024);
    run_until(&r, 5000);
    CHECK_EQ_INT(r.consumed, p.total);
    CHECK_EQ_INT(r.closes, 1);
    /* Reading stops at 64 KiB buffered; one read chunk may overshoot. */
    CHECK(r.max_rbuf <= 128 * 1024);
    teardown(&r);
}

/* The test's reader takes 32 KiB per millisecond. */
struct slow {
    struct rec *r;
    struct buf got;
    int eof;
};

static void slow_read_cb(struct ev_loop *loop, void *arg)
{
    struct slow *s = arg;
    char *p = buf_reserve(&s->got, 32768);
    ssize_t n = read(s->r->peer, p, 32768);
    if (n > 0)
        buf_commit(&s->got, (size_t)n);
    if (n == 0)
        s->eof = 1;
    if (n == 0 || (n < 0 && errno != EAGAIN))
        return;
    ev_timer_add(loop, 1, slow_read_cb, s);
}

static char *pattern_new(size_t n)
{
    char *p = malloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('a' + (i * 7 + i / 4096) % 26);
    return p;
}

static void test_large_write(void)
{
    struct rec r;
    setup(&r, &line_cb);
    r.stop_on_close = 0;
    size_t total = 4u << 20;
    char *pat = pattern_new(total);
    struct slow s = {&r, BUF_INIT, 0};
    conn_set_timeout(r.c, 5000);
    conn_write(r.c, pat, total / 2);
    conn_write(r.c, pat + total / 2, total - total / 2);
    CHECK(conn_wpending(r.c) > 0);
    CHECK_EQ_INT(r.drains, 0);
    ev_timer_add(r.loop, 1, slow_read_cb, &s);
    for (int i = 0; i < 100 && conn_wpending(r.c) > 0; i++)
        run_until(&r, 50);
    run_until(&r, 20); /* let the reader take the last bytes */
    CHECK_EQ_INT(conn_wpending(r.c), 0);
    CHECK_EQ_INT(r.drains, 1);
    CHECK_EQ_INT(r.closes, 0);
    CHECK_EQ_INT(s.got.len, total);
    CHECK(s.got.len == total && memcmp(s.got.data, pat, total) == 0);
    free(pat);
    buf_free(&s.got);
    teardown(&r);
}

static void test_close_flushes(void)
{
    struct rec r;
    setup(&r, &line_cb);
    r.stop_on_close = 0;
    size_t total = 1u << 20;
    char *pat = pattern_new(total);
    struct slow s = {&r, BUF_INIT, 0};
    conn_write(r.c, pat, total);
    CHECK(conn_wpending(r.c) > 0);
    conn_close(r.c);
    conn_write(r.c, "late", 4); /* after close: ignored */
    CHECK(conn_is_closed(r.c));
    CHECK_EQ_INT(r.closes, 0);
    ev_timer_add(r.loop, 1, slow_read_cb, &s);
    for (int i = 0; i < 100 && !s.eof; i++)
        run_until(&r, 50);
    CHECK(s.eof);
    CHECK_EQ_INT(r.closes, 1);
    CHECK_EQ_INT(r.close_err, 0);
    CHECK_EQ_INT(r.drains, 0);
    CHECK_EQ_INT(s.got.len, total);
    CHECK(s.got.len == total && memcmp(s.got.data, pat, total) == 0);
    free(pat);
    buf_free(&s.got);
    teardown(&r);
}

static void test_abort(void)
{
    struct rec r;
    setup(&r, &line_cb);
    conn_write(r.c, "hello\r\n", 7);
    conn_abort(r.c);
    conn_abort(r.c);
    CHECK_EQ_INT(r.closes, 0); /* reported from the loop, not from here */
    run_until(&r, 2000);
    CHECK_EQ_INT(r.closes, 1);
    CHECK_EQ_INT(r.close_err, 0);
    char tmp[16];
    CHECK_EQ_INT(read(r.peer, tmp, sizeof tmp), 7); /* sent before the abort */
    CHECK_EQ_INT(read(r.peer, tmp, sizeof tmp), 0);
    teardown(&r);
}

static void test_write_error(void)
{
    struct rec r;
    setup(&r, &line_cb);
    close(r.peer);
    r.peer = -1;
    /* EPIPE, not SIGPIPE: the test would die otherwise. */
    conn_write(r.c, "hello\r\n", 7);
    run_until(&r, 2000);
    CHECK_EQ_INT(r.closes, 1);
    CHECK(r.close_err < 0);
    teardown(&r);
}

static void peer_write_cb(struct ev_loop *loop, void *arg)
{
    struct rec *r = arg;
    /* MSG_NOSIGNAL: after a (wrong) early close this must fail a CHECK,
     * not kill the test. */
    (void)send(r->peer, "x", 1, MSG_NOSIGNAL);
}

static void test_idle_timeout(void)
{
    struct rec r;
    setup(&r, &line_cb);
    uint64_t start = clock_mono_ms();
    conn_set_timeout(r.c, 60);
    /* Activity every 30 ms up to 120 ms keeps it open. */
    for (int i = 1; i <= 4; i++)
        ev_timer_add(r.loop, 30u * i, peer_write_cb, &r);
    run_until(&r, 2000);
    uint64_t took = clock_mono_ms() - start;
    CHECK_EQ_INT(r.closes, 1);
    CHECK_EQ_INT(r.close_err, -ETIMEDOUT);
    CHECK(took >= 180);
    CHECK(took < 1000);
    teardown(&r);
}

int main(void)
{
    test_split_lines();
    test_pause_resume();
    test_eof_while_paused();
    test_high_water();
    test_large_write();
    test_close_flushes();
    test_abort();
    test_write_error();
    test_idle_timeout();
    return check_result("test_conn");
}
