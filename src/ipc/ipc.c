#include "ipc/ipc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "ipc/ipc_types.h"
#include "mail/result.h"

/* Wire header of every message. */
struct ipc_hdr {
    uint16_t version;
    uint16_t type;
    uint32_t len;
};

/* A message waiting to be sent. */
struct ipc_out {
    struct ipc_out *next;
    char *data; /* owned: header + payload */
    size_t len;
    int fd; /* owned dup, or -1 */
};

struct ipc_chan {
    struct ev_loop *loop;
    int fd;
    ipc_msg_cb on_msg;
    ipc_close_cb on_close;
    void *arg;
    struct ipc_out *head, *tail;
    size_t backlog; /* octets in head..tail */
    char *rbuf; /* owned, IPC_MAX_PAYLOAD + header */
    int closed;
};

int ipc_pair(int fds[2])
{
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0)
        return -errno;
    int sz = 4 * 1024 * 1024;
    for (int i = 0; i < 2; i++) {
        /* Room for many messages in flight; failure only costs EAGAIN queuing. */
        (void)setsockopt(fds[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
        (void)setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    }
    return 0;
}

static void ipc_chan_fail(struct ipc_chan *ch, int err)
{
    if (ch->closed)
        return;
    ch->closed = 1;
    ev_io_del(ch->loop, ch->fd);
    if (ch->on_close)
        ch->on_close(ch, err, ch->arg);
}

/* Receives one message from fd into rbuf[0..cap). Returns 1 with *out
 * filled (out->fd, if any, belongs to the caller; out->payload points into
 * rbuf), 0 when the peer closed, -EAGAIN / -EINTR, -EPROTO for a malformed
 * message (logged), or another -errno. */
static int ipc_recv_msg(int fd, char *rbuf, size_t cap, int flags, struct ipc_msg *out)
{
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {rbuf, cap};
    struct msghdr mh = {0};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof cbuf;
    ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | flags);
    if (n < 0)
        return -errno;
    if (n == 0)
        return 0;
    /* Every descriptor that arrived is ours to close: a peer sending two
     * in one message (which still fits cbuf) must not leak them. Exactly
     * one descriptor in one SCM_RIGHTS is well-formed. */
    int got_fd = -1, extra = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
            c->cmsg_len < CMSG_LEN(0))
            continue;
        size_t nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < nfds; i++) {
            int got;
            memcpy(&got, CMSG_DATA(c) + i * sizeof got, sizeof got);
            if (got_fd < 0) {
                got_fd = got;
            } else {
                close(got);
                extra = 1;
            }
        }
    }
    struct ipc_hdr h;
    if ((size_t)n < sizeof h || extra || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
        log_err("ipc: malformed message (%zd bytes)", n);
        goto bad;
    }
    memcpy(&h, rbuf, sizeof h);
    if (h.version != IPC_VERSION || h.type == 0 || h.type >= IPC_TYPE_MAX ||
        h.len != (size_t)n - sizeof h) {
        log_err("ipc: bad header version=%u type=%u len=%u", h.version, h.type, h.len);
        goto bad;
    }
    *out = (struct ipc_msg){h.type, rbuf + sizeof h, h.len, got_fd};
    return 1;
bad:
    if (got_fd >= 0)
        close(got_fd);
    return -EPROTO;
}

/* Handles one waiting message. Returns 1 after one, 0 when none is
 * waiting, or -errno once the channel failed (-EPIPE: the peer closed). */
static int ipc_recv_one(struct ipc_chan *ch)
{
    struct ipc_msg msg;
    int rc = ipc_recv_msg(ch->fd, ch->rbuf, sizeof(struct ipc_hdr) + IPC_MAX_PAYLOAD,
                          MSG_DONTWAIT, &msg);
    if (rc == -EAGAIN || rc == -EINTR)
        return 0;
    if (rc <= 0) {
        ipc_chan_fail(ch, rc);
        return rc < 0 ? rc : -EPIPE;
    }
    ch->on_msg(ch, &msg, ch->arg);
    return 1;
}

int ipc_recv_sync(int fd, char *rbuf, size_t cap, struct ipc_msg *out)
{
    for (;;) {
        int rc = ipc_recv_msg(fd, rbuf, cap, 0, out);
        if (rc != -EINTR)
            return rc;
    }
}

static int ipc_flush(struct ipc_chan *ch)
{
    while (ch->head) {
        struct ipc_out *o = ch->head;
        char cbuf[CMSG_SPACE(sizeof(int))];
        struct iovec iov = {o->data, o->len};
        struct msghdr mh = {0};
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        if (o->fd >= 0) {
            memset(cbuf, 0, sizeof cbuf);
            mh.msg_control = cbuf;
            mh.msg_controllen = sizeof cbuf;
            struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(c), &o->fd, sizeof(int));
        }
        ssize_t n = sendmsg(ch->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return ev_io_mod(ch->loop, ch->fd, EV_READ | EV_WRITE);
            return -errno;
        }
        ch->head = o->next;
        if (ch->head == NULL)
            ch->tail = NULL;
        ch->backlog -= o->len;
        if (o->fd >= 0)
            close(o->fd);
        free(o->data);
        free(o);
    }
    return ev_io_mod(ch->loop, ch->fd, EV_READ);
}

static void ipc_on_io(struct ev_loop *loop, int fd, unsigned events, void *arg)
{
    struct ipc_chan *ch = arg;
    if (events & EV_WRITE) {
        int rc = ipc_flush(ch);
        if (rc < 0) {
            ipc_chan_fail(ch, rc);
            return;
        }
    }
    if (events & (EV_READ | EV_ERROR)) {
        /* Bounded per wakeup so one busy peer cannot starve the loop. */
        for (int i = 0; i < 64 && !ch->closed; i++)
            if (ipc_recv_one(ch) <= 0)
                break;
    }
}

struct ipc_chan *ipc_chan_new(struct ev_loop *loop, int fd, ipc_msg_cb on_msg,
                              ipc_close_cb on_close, void *arg)
{
    struct ipc_chan *ch = xcalloc(1, sizeof *ch);
    ch->loop = loop;
    ch->fd = fd;
    ch->on_msg = on_msg;
    ch->on_close = on_close;
    ch->arg = arg;
    ch->rbuf = xmalloc(sizeof(struct ipc_hdr) + IPC_MAX_PAYLOAD);
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        fatal("ipc: fcntl: %s", strerror(errno));
    if (ev_io_add(loop, fd, EV_READ, ipc_on_io, ch) < 0)
        fatal("ipc: cannot watch fd %d", fd);
    return ch;
}

void ipc_chan_free(struct ipc_chan *ch)
{
    if (ch == NULL)
        return;
    if (!ch->closed)
        ev_io_del(ch->loop, ch->fd);
    close(ch->fd);
    while (ch->head) {
        struct ipc_out *o = ch->head;
        ch->head = o->next;
        if (o->fd >= 0)
            close(o->fd);
        free(o->data);
        free(o);
    }
    free(ch->rbuf);
    free(ch);
}

int ipc_send(struct ipc_chan *ch, unsigned type, const struct buf *payload, int fd)
{
    size_t plen = payload ? payload->len : 0;
    if (ch->closed)
        return -EPIPE;
    if (plen > IPC_MAX_PAYLOAD)
        return -EMSGSIZE;
    struct ipc_out *o = xcalloc(1, sizeof *o);
    struct ipc_hdr h = {IPC_VERSION, (uint16_t)type, (uint32_t)plen};
    o->len = sizeof h + plen;
    o->data = xmalloc(o->len);
    memcpy(o->data, &h, sizeof h);
    if (plen)
        memcpy(o->data + sizeof h, payload->data, plen);
    o->fd = -1;
    if (fd >= 0) {
        o->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (o->fd < 0) {
            int err = -errno;
            free(o->data);
            free(o);
            return err;
        }
    }
    if (ch->tail)
        ch->tail->next = o;
    else
        ch->head = o;
    ch->tail = o;
    ch->backlog += o->len;
    int rc = ipc_flush(ch);
    if (rc < 0) {
        ipc_chan_fail(ch, rc);
        return rc;
    }
    return 0;
}

size_t ipc_chan_backlog(const struct ipc_chan *ch)
{
    return ch->backlog;
}

int ipc_send_sync(int fd, unsigned type, const struct buf *payload)
{
    return ipc_send_sync_fd(fd, type, payload, -1);
}

int ipc_send_sync_fd(int fd, unsigned type, const struct buf *payload, int pass)
{
    size_t plen = payload ? payload->len : 0;
    if (plen > IPC_MAX_PAYLOAD)
        return -EMSGSIZE;
    struct ipc_hdr h = {IPC_VERSION, (uint16_t)type, (uint32_t)plen};
    struct iovec iov[2] = {{&h, sizeof h}, {payload ? payload->data : NULL, plen}};
    struct msghdr mh = {0};
    mh.msg_iov = iov;
    mh.msg_iovlen = plen ? 2 : 1;
    char cbuf[CMSG_SPACE(sizeof(int))];
    if (pass >= 0) {
        memset(cbuf, 0, sizeof cbuf);
        mh.msg_control = cbuf;
        mh.msg_controllen = sizeof cbuf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &pass, sizeof(int));
    }
    for (;;) {
        ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (n >= 0)
            return (size_t)n == sizeof h + plen ? 0 : -EIO;
        if (errno != EINTR)
            return -errno;
    }
}

void ipc_put_u32(struct buf *b, uint32_t v)
{
    buf_append(b, &v, sizeof v);
}

void ipc_put_u64(struct buf *b, uint64_t v)
{
    buf_append(b, &v, sizeof v);
}

void ipc_put_i32(struct buf *b, int32_t v)
{
    buf_append(b, &v, sizeof v);
}

void ipc_put_bytes(struct buf *b, const void *p, size_t n)
{
    ipc_put_u32(b, (uint32_t)n);
    buf_append(b, p, n);
}

void ipc_put_str(struct buf *b, const char *s)
{
    ipc_put_bytes(b, s, strlen(s));
}

void ipc_rd_init(struct ipc_rd *r, const struct ipc_msg *msg)
{
    r->p = msg->payload;
    r->left = msg->len;
    r->err = 0;
}

static const char *ipc_take(struct ipc_rd *r, size_t n)
{
    if (r->err || n > r->left) {
        r->err = 1;
        return NULL;
    }
    const char *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

uint32_t ipc_get_u32(struct ipc_rd *r)
{
    uint32_t v = 0;
    const char *p = ipc_take(r, sizeof v);
    if (p)
        memcpy(&v, p, sizeof v);
    return v;
}

uint64_t ipc_get_u64(struct ipc_rd *r)
{
    uint64_t v = 0;
    const char *p = ipc_take(r, sizeof v);
    if (p)
        memcpy(&v, p, sizeof v);
    return v;
}

int32_t ipc_get_i32(struct ipc_rd *r)
{
    int32_t v = 0;
    const char *p = ipc_take(r, sizeof v);
    if (p)
        memcpy(&v, p, sizeof v);
    return v;
}

const char *ipc_get_bytes(struct ipc_rd *r, size_t *n, size_t max)
{
    uint32_t len = ipc_get_u32(r);
    if (len > max) {
        r->err = 1;
        *n = 0;
        return NULL;
    }
    const char *p = ipc_take(r, len);
    *n = p ? len : 0;
    return p;
}

void ipc_get_str(struct ipc_rd *r, char *out, size_t outsize)
{
    size_t n;
    const char *p = ipc_get_bytes(r, &n, outsize - 1);
    if (p == NULL || memchr(p, '\0', n)) {
        r->err = 1;
        out[0] = '\0';
        return;
    }
    memcpy(out, p, n);
    out[n] = '\0';
}

void ipc_put_result(struct buf *b, const struct result *res)
{
    ipc_put_u32(b, (uint32_t)res->kind);
    ipc_put_i32(b, res->code);
    ipc_put_str(b, res->enh);
    ipc_put_str(b, res->text);
}

void ipc_get_result(struct ipc_rd *r, struct result *out)
{
    memset(out, 0, sizeof *out);
    uint32_t kind = ipc_get_u32(r);
    out->code = ipc_get_i32(r);
    ipc_get_str(r, out->enh, sizeof out->enh);
    ipc_get_str(r, out->text, sizeof out->text);
    out->kind = kind > RESULT_PERMFAIL ? RESULT_PERMFAIL : (enum result_kind)kind;
    if (kind > RESULT_PERMFAIL || !result_valid(out))
        r->err = 1;
}

int ipc_rd_end(const struct ipc_rd *r)
{
    return (r->err || r->left) ? -EBADMSG : 0;
}
