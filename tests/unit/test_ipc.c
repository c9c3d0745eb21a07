/* test_ipc: framing, field readers, fd passing and hostile input. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "ev/loop.h"
#include "ipc/ipc.h"
#include "ipc/ipc_types.h"
#include "mail/result.h"

struct got {
    int n;
    unsigned type[8];
    uint64_t u64[8];
    char str[8][64];
    int fd[8];
    int closed, close_err;
};

static void on_msg(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
    struct got *g = arg;
    struct ipc_rd r;
    ipc_rd_init(&r, m);
    int i = g->n++;
    g->type[i] = m->type;
    g->u64[i] = ipc_get_u64(&r);
    ipc_get_str(&r, g->str[i], sizeof g->str[i]);
    if (ipc_rd_end(&r) < 0)
        strcpy(g->str[i], "(bad)");
    g->fd[i] = m->fd;
    m->fd = -1;
}

static void on_close(struct ipc_chan *ch, int err, void *arg)
{
    struct got *g = arg;
    g->closed++;
    g->close_err = err;
}

static void stop_cb(struct ev_loop *loop, void *arg)
{
    ev_loop_stop(loop);
}

static void run_for(struct ev_loop *loop, uint64_t ms)
{
    ev_timer_add(loop, ms, stop_cb, NULL);
    ev_loop_run(loop);
}

static void test_roundtrip_with_fd(void)
{
    struct ev_loop *loop = ev_loop_new();
    int sp[2];
    CHECK_EQ_INT(ipc_pair(sp), 0);
    struct got ga = {0}, gb = {0};
    struct ipc_chan *a = ipc_chan_new(loop, sp[0], on_msg, on_close, &ga);
    struct ipc_chan *b = ipc_chan_new(loop, sp[1], on_msg, on_close, &gb);

    int fd = memfd_create("t", 0);
    CHECK(write(fd, "hello", 5) == 5);
    struct buf p = BUF_INIT;
    ipc_put_u64(&p, 42);
    ipc_put_str(&p, "QID1");
    CHECK_EQ_INT(ipc_send(a, IPC_BODY_OPENED, &p, fd), 0);
    close(fd); /* the message holds its own copy */
    buf_reset(&p);
    ipc_put_u64(&p, 43);
    ipc_put_str(&p, "QID2");
    CHECK_EQ_INT(ipc_send(a, IPC_COMMITTED, &p, -1), 0);
    run_for(loop, 50);

    CHECK_EQ_INT(gb.n, 2);
    CHECK_EQ_INT(gb.type[0], IPC_BODY_OPENED);
    CHECK_EQ_INT(gb.u64[0], 42);
    CHECK_EQ_STR(gb.str[0], "QID1");
    CHECK(gb.fd[0] >= 0);
    char rd[8] = {0};
    CHECK_EQ_INT(pread(gb.fd[0], rd, sizeof rd, 0), 5);
    CHECK_EQ_STR(rd, "hello");
    close(gb.fd[0]);
    CHECK_EQ_INT(gb.fd[1], -1);
    CHECK_EQ_STR(gb.str[1], "QID2");

    /* Closing one side reports a close on the other. */
    ipc_chan_free(a);
    run_for(loop, 50);
    CHECK_EQ_INT(gb.closed, 1);
    CHECK_EQ_INT(gb.close_err, 0);
    ipc_chan_free(b);
    buf_free(&p);
    ev_loop_free(loop);
}

static void test_hostile_frames(void)
{
    struct ev_loop *loop = ev_loop_new();
    int sp[2];
    CHECK_EQ_INT(ipc_pair(sp), 0);
    struct got g = {0};
    struct ipc_chan *b = ipc_chan_new(loop, sp[1], on_msg, on_close, &g);
    /* A frame with a wrong version: the channel refuses it and closes. */
    struct { uint16_t v, t; uint32_t len; } h = {IPC_VERSION + 1, IPC_COMMIT, 0};
    CHECK(send(sp[0], &h, sizeof h, 0) == (ssize_t)sizeof h);
    run_for(loop, 50);
    CHECK_EQ_INT(g.n, 0);
    CHECK_EQ_INT(g.closed, 1);
    CHECK_EQ_INT(g.close_err, -EPROTO);
    ipc_chan_free(b);
    close(sp[0]);

    /* A length that disagrees with the datagram, and an unknown type. */
    CHECK_EQ_INT(ipc_pair(sp), 0);
    memset(&g, 0, sizeof g);
    b = ipc_chan_new(loop, sp[1], on_msg, on_close, &g);
    struct { uint16_t v, t; uint32_t len; char pad[4]; } h2 = {IPC_VERSION, IPC_COMMIT, 100, "abc"};
    CHECK(send(sp[0], &h2, sizeof h2, 0) == (ssize_t)sizeof h2);
    run_for(loop, 50);
    CHECK_EQ_INT(g.n, 0);
    CHECK_EQ_INT(g.closed, 1);
    ipc_chan_free(b);
    close(sp[0]);
    ev_loop_free(loop);
}

static void test_reader_bounds(void)
{
    struct buf p = BUF_INIT;
    ipc_put_u32(&p, 1000); /* a string length far beyond the payload */
    buf_append(&p, "abc", 3);
    struct ipc_msg m = {IPC_COMMIT, p.data, p.len, -1};
    struct ipc_rd r;
    ipc_rd_init(&r, &m);
    char s[16];
    ipc_get_str(&r, s, sizeof s);
    CHECK_EQ_INT(ipc_rd_end(&r), -EBADMSG);
    CHECK_EQ_STR(s, "");

    /* Trailing bytes make the message malformed. */
    buf_reset(&p);
    ipc_put_u64(&p, 7);
    buf_putc(&p, 'x');
    m.payload = p.data;
    m.len = p.len;
    ipc_rd_init(&r, &m);
    CHECK_EQ_INT(ipc_get_u64(&r), 7);
    CHECK_EQ_INT(ipc_rd_end(&r), -EBADMSG);

    /* A NUL inside a string is refused. */
    buf_reset(&p);
    ipc_put_bytes(&p, "a\0b", 3);
    m.payload = p.data;
    m.len = p.len;
    ipc_rd_init(&r, &m);
    ipc_get_str(&r, s, sizeof s);
    CHECK_EQ_INT(ipc_rd_end(&r), -EBADMSG);
    buf_free(&p);
}

/* A result read from another process becomes a reply a client hears:
 * anything not well formed fails the reader. */
static int result_reads(uint32_t kind, int32_t code, const char *enh, const char *text)
{
    struct buf p = BUF_INIT;
    ipc_put_u32(&p, kind);
    ipc_put_i32(&p, code);
    ipc_put_str(&p, enh);
    ipc_put_str(&p, text);
    struct ipc_msg m = {IPC_COMMITTED, p.data, p.len, -1};
    struct ipc_rd r;
    ipc_rd_init(&r, &m);
    struct result res;
    ipc_get_result(&r, &res);
    int ok = ipc_rd_end(&r) == 0;
    if (ok && (res.kind != (enum result_kind)kind || res.code != code || strcmp(res.enh, enh) ||
               strcmp(res.text, text)))
        ok = -1;
    buf_free(&p);
    return ok;
}

static void test_results(void)
{
    struct result a, b;
    result_set(&a, RESULT_TEMPFAIL, 452, "4.3.1", "Insufficient system storage");
    struct buf p = BUF_INIT;
    ipc_put_result(&p, &a);
    struct ipc_msg m = {IPC_COMMITTED, p.data, p.len, -1};
    struct ipc_rd r;
    ipc_rd_init(&r, &m);
    ipc_get_result(&r, &b);
    CHECK_EQ_INT(ipc_rd_end(&r), 0);
    CHECK_EQ_INT(b.kind, a.kind);
    CHECK_EQ_INT(b.code, 452);
    CHECK_EQ_STR(b.enh, "4.3.1");
    CHECK_EQ_STR(b.text, a.text);
    buf_free(&p);

    CHECK_EQ_INT(result_reads(RESULT_OK, 250, "2.0.0", "Ok: queued as 0123456789ABCDEF"), 1);
    CHECK_EQ_INT(result_reads(RESULT_PERMFAIL, 552, "5.3.4", "too big"), 1);
    CHECK_EQ_INT(result_reads(RESULT_PERMFAIL, 550, "5.1.10", ""), 1);
    CHECK_EQ_INT(result_reads(RESULT_TEMPFAIL, 451, "4.123.456", "x"), 1);
    /* Kind and codes must agree: an OK that says 451 or a failure that
     * says 250 could make a client believe the wrong thing. */
    CHECK_EQ_INT(result_reads(3, 250, "2.0.0", "x"), 0);
    CHECK_EQ_INT(result_reads(RESULT_OK, 451, "2.0.0", "x"), 0);
    CHECK_EQ_INT(result_reads(RESULT_OK, 250, "4.0.0", "x"), 0);
    CHECK_EQ_INT(result_reads(RESULT_TEMPFAIL, 250, "2.0.0", "x"), 0);
    CHECK_EQ_INT(result_reads(RESULT_TEMPFAIL, 552, "5.3.4", "x"), 0);
    CHECK_EQ_INT(result_reads(RESULT_PERMFAIL, 452, "4.3.1", "x"), 0);
    CHECK_EQ_INT(result_reads(RESULT_PERMFAIL, 600, "5.0.0", "x"), 0);
    CHECK_EQ_INT(result_reads(RESULT_PERMFAIL, 199, "5.0.0", "x"), 0);
    CHECK_EQ_INT(result_reads(RESULT_PERMFAIL, -550, "5.0.0", "x"), 0);
    /* RFC 3463 syntax: class.subject.detail, 1 to 3 digits each. */
    CHECK_EQ_INT(result_reads(RESULT_PERMFAIL, 550, "5.1", "x"), 0);
    CHECK_EQ_INT(result_reads(RESULT_PERMFAIL, 550, "5.1.", "x"), 0);
    CHECK_EQ_INT(result_reads(RESULT_PERMFAIL, 550, "5..1", "x"), 0);
    CHECK_EQ_INT(result_reads(RESULT_PERMFAIL, 550, "5.1.1 ", "x"), 0);
    CHECK_EQ_INT(result_reads(RESULT_PERMFAIL, 550, "5.1234.1", "x"), 0);
    CHECK_EQ_INT(result_reads(RESULT_PERMFAIL, 550, "5.1.1.1", "x"), 0);
    CHECK_EQ_INT(result_reads(RESULT_PERMFAIL, 550, "", "x"), 0);
    /* Text a client would see: no line break, no control, no 8-bit. */
    CHECK_EQ_INT(result_reads(RESULT_PERMFAIL, 550, "5.1.1", "a\r\n250 2.0.0 Ok"), 0);
    CHECK_EQ_INT(result_reads(RESULT_PERMFAIL, 550, "5.1.1", "a\tb"), 0);
    CHECK_EQ_INT(result_reads(RESULT_PERMFAIL, 550, "5.1.1", "caf\xc3\xa9"), 0);
    /* Longer than the fields hold. */
    char longtext[300];
    memset(longtext, 'a', sizeof longtext - 1);
    longtext[sizeof longtext - 1] = '\0';
    CHECK_EQ_INT(result_reads(RESULT_PERMFAIL, 550, "5.1.1", longtext), 0);
    CHECK_EQ_INT(result_reads(RESULT_PERMFAIL, 550, "5.1.1.1.1.1.1.1.1", "x"), 0);
    /* A truncated one. */
    struct buf t = BUF_INIT;
    ipc_put_u32(&t, RESULT_OK);
    ipc_put_i32(&t, 250);
    struct ipc_msg tm = {IPC_COMMITTED, t.data, t.len, -1};
    ipc_rd_init(&r, &tm);
    ipc_get_result(&r, &b);
    CHECK_EQ_INT(ipc_rd_end(&r), -EBADMSG);
    buf_free(&t);
}

static void test_queueing_when_full(void)
{
    /* More than the socket buffer holds: the channel queues and delivers
     * everything, in order, once the peer reads. */
    struct ev_loop *loop = ev_loop_new();
    int sp[2];
    CHECK_EQ_INT(ipc_pair(sp), 0);
    struct got g = {0};
    struct ipc_chan *a = ipc_chan_new(loop, sp[0], on_msg, on_close, &g);
    struct buf p = BUF_INIT;
    char big[60000];
    memset(big, 'z', sizeof big);
    for (int i = 0; i < 300; i++) {
        buf_reset(&p);
        ipc_put_u64(&p, (uint64_t)i);
        ipc_put_bytes(&p, big, sizeof big);
        CHECK_EQ_INT(ipc_send(a, IPC_COMMIT, &p, -1), 0);
    }
    /* Read on the other side by hand, checking the order. */
    int order_ok = 1, count = 0;
    char *rbuf = malloc(IPC_MAX_PAYLOAD + 64);
    for (int tries = 0; tries < 20000 && count < 300; tries++) {
        ssize_t n = recv(sp[1], rbuf, IPC_MAX_PAYLOAD + 64, MSG_DONTWAIT);
        if (n > 0) {
            uint64_t id;
            memcpy(&id, rbuf + 8, sizeof id);
            if (id != (uint64_t)count)
                order_ok = 0;
            count++;
        } else {
            run_for(loop, 1);
        }
    }
    CHECK_EQ_INT(count, 300);
    CHECK(order_ok);
    free(rbuf);
    buf_free(&p);
    ipc_chan_free(a);
    close(sp[1]);
    ev_loop_free(loop);
}

int main(void)
{
    test_roundtrip_with_fd();
    test_hostile_frames();
    test_reader_bounds();
    test_results();
    test_queueing_when_full();
    return check_result("test_ipc");
}
