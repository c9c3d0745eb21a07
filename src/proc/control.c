/* control.c: see control.h. */
#include "proc/control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fsio.h"
#include "base/log.h"
#include "base/sizes.h"
#include "base/unixsock.h"
#include "base/xmalloc.h"
#include "ev/conn.h"
#include "proc/control_parse.h"
#include "queue/queue_ctl.h"

/* An operator's command is one short line: a slow one is not waited on. */
#define CONTROL_TIMEOUT_MS 10000
#define CONTROL_CLIENTS_MAX 16

struct control_client {
    struct control *ctl;
    struct conn *conn;
    int answered;
    int denied; /* neither root nor the daemon's user */
    struct control_client *next; /* on ctl->live, then on ctl->dead once closed */
};

struct control {
    struct ev_loop *loop;
    struct queue *queue; /* not owned */
    char *path;          /* owned */
    int fd;
    unsigned nclients;
    struct control_client *live; /* open connections */
    struct control_client *dead; /* closed, freed before the loop sleeps */
};

static int control_errno_exit(int rc)
{
    switch (rc) {
    case -ENOENT:
        return EX_NOINPUT;
    case -EINVAL:
        return EX_USAGE;
    case -EBUSY:
        return EX_TEMPFAIL;
    default:
        return EX_IOERR;
    }
}

/* Runs one request; rc as queue_ctl's functions return it. */
static int control_run(struct control *ctl, const struct control_req *req, struct buf *out)
{
    struct queue *q = ctl->queue;
    int rc = 0;
    switch (req->cmd) {
    case CTL_LIST:
        return queue_ctl_list(q, out);
    case CTL_SHOW:
        return queue_ctl_show(q, req->args[0], out);
    case CTL_SHAPE:
        return queue_ctl_shape(q, out);
    case CTL_FLUSH:
        return queue_ctl_flush(q, out);
    case CTL_PAUSE:
    case CTL_RESUME:
        return queue_ctl_pause(q, req->args[0], req->cmd == CTL_PAUSE, out);
    case CTL_RETRY:
    case CTL_HOLD:
    case CTL_RELEASE:
    case CTL_DELETE: {
        enum queue_ctl_op op = req->cmd == CTL_RETRY  ? QCTL_RETRY
                               : req->cmd == CTL_HOLD ? QCTL_HOLD
                               : req->cmd == CTL_RELEASE ? QCTL_RELEASE
                                                         : QCTL_DELETE;
        for (size_t i = 0; i < req->nargs; i++) {
            int r = queue_ctl_message(q, op, req->args[i], out);
            if (r < 0 && rc == 0)
                rc = r;
        }
        return rc;
    }
    }
    return -EINVAL;
}

static void control_answer(struct control_client *cl, int exit_code, const char *why,
                           const struct buf *body)
{
    struct buf head = BUF_INIT;
    if (exit_code == 0)
        buf_puts(&head, "OK\n");
    else
        buf_printf(&head, "ERR %d %s\n", exit_code, why);
    conn_write(cl->conn, head.data, head.len);
    if (body && body->len)
        conn_write(cl->conn, body->data, body->len);
    buf_free(&head);
    cl->answered = 1;
    conn_close(cl->conn);
}

static void control_on_read(struct conn *c, void *arg)
{
    struct control_client *cl = arg;
    if (cl->answered)
        return;
    struct buf *in = conn_rbuf(c);
    char *nl = in->len ? memchr(in->data, '\n', in->len) : NULL;
    if (nl == NULL) {
        if (in->len > CONTROL_LINE_MAX)
            control_answer(cl, EX_USAGE, "request line too long", NULL);
        return;
    }
    size_t len = (size_t)(nl - in->data);
    if (len > CONTROL_LINE_MAX) {
        control_answer(cl, EX_USAGE, "request line too long", NULL);
        return;
    }
    if (len > 0 && in->data[len - 1] == '\r')
        len--;
    char line[CONTROL_LINE_MAX + 1];
    memcpy(line, in->data, len);
    line[len] = '\0';
    buf_consume(in, in->len);
    struct control_req req;
    const char *why = NULL;
    if (cl->denied) {
        control_answer(cl, EX_NOPERM,
                       "permission denied: only root and the daemon's user may control the queue",
                       NULL);
        return;
    }
    if (memchr(line, '\0', len) != NULL || control_parse(line, &req, &why) < 0) {
        control_answer(cl, EX_USAGE, why ? why : "NUL in the request", NULL);
        return;
    }
    if (cl->ctl->queue == NULL) {
        control_answer(cl, EX_TEMPFAIL, "the queue is starting", NULL);
        return;
    }
    struct buf out = BUF_INIT;
    int rc = control_run(cl->ctl, &req, &out);
    if (rc < 0) {
        char reason[256];
        size_t l = out.len && out.data[0] ? strcspn(out.data, "\n") : 0;
        snprintf(reason, sizeof reason, "%.*s", (int)(l < 200 ? l : 200),
                 l ? out.data : strerror(-rc));
        control_answer(cl, control_errno_exit(rc), reason, &out);
    } else {
        control_answer(cl, 0, NULL, &out);
    }
    buf_free(&out);
}

static void control_on_close(struct conn *c, void *arg, int err)
{
    struct control_client *cl = arg;
    struct control_client **pp = &cl->ctl->live;
    while (*pp && *pp != cl)
        pp = &(*pp)->next;
    if (*pp)
        *pp = cl->next;
    cl->next = cl->ctl->dead;
    cl->ctl->dead = cl;
}

static const struct conn_cb control_conn_cb = {
    .on_read = control_on_read,
    .on_close = control_on_close,
};

static void control_reap(struct ev_loop *loop, void *arg)
{
    struct control *ctl = arg;
    while (ctl->dead) {
        struct control_client *cl = ctl->dead;
        ctl->dead = cl->next;
        conn_free(cl->conn);
        free(cl);
        ctl->nclients--;
    }
}

/* Root and the daemon's own user; nobody else, whatever the file mode. */
static int control_peer_ok(int fd)
{
    struct ucred cr;
    socklen_t len = sizeof cr;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
        return 0;
    return cr.uid == 0 || cr.uid == geteuid();
}

static void control_on_accept(struct ev_loop *loop, int fd, unsigned events, void *arg)
{
    struct control *ctl = arg;
    for (;;) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0)
            return;
        if (ctl->nclients >= CONTROL_CLIENTS_MAX) {
            static const char busy[] = "ERR 75 too many control clients\n";
            (void)!write(cfd, busy, sizeof busy - 1);
            close(cfd);
            continue;
        }
        struct control_client *cl = xcalloc(1, sizeof *cl);
        cl->ctl = ctl;
        /* Refused after its request is read: closing on unread bytes
         * would reset the connection before the client sees why. */
        cl->denied = !control_peer_ok(cfd);
        if (cl->denied)
            log_warn("control: refused a client without permission");
        cl->conn = conn_new(loop, cfd, &control_conn_cb, cl);
        conn_set_timeout(cl->conn, CONTROL_TIMEOUT_MS);
        cl->next = ctl->live;
        ctl->live = cl;
        ctl->nclients++;
    }
}

/* A socket file left by a process that is gone is removed; one that
 * answers belongs to a running daemon on the same spool. */
static int control_clear_stale(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode))
        return -EEXIST;
    int fd = unixsock_connect(path);
    if (fd >= 0) {
        close(fd);
        return -EADDRINUSE;
    }
    return unlink(path) < 0 ? -errno : 0;
}

struct control *control_new(struct ev_loop *loop, const struct config *cfg)
{
    char path[PATH_MAX];
    if (config_control_socket(cfg, path, sizeof path) < 0) {
        log_err("control: socket path too long");
        return NULL;
    }
    /* The default lives in the spool, which may not exist yet. */
    char *slash = strrchr(path, '/');
    if (slash && slash != path) {
        *slash = '\0';
        int mk = fsio_mkdirs(path, 0700);
        *slash = '/';
        if (mk < 0) {
            log_err("control: cannot create the directory of %s: %s", path, strerror(-mk));
            return NULL;
        }
    }
    int rc = control_clear_stale(path);
    if (rc < 0) {
        log_err("control: %s: %s", path,
                rc == -EADDRINUSE ? "another tern daemon is running on this spool"
                                  : strerror(-rc));
        return NULL;
    }
    struct unixsock_addr a;
    rc = unixsock_addr_init(&a, path);
    int fd = rc < 0 ? -1 : socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (rc == 0 && fd < 0)
        rc = -errno;
    if (rc == 0) {
        /* Never reachable by others, not even for the moment before chmod. */
        mode_t old = umask(0117);
        if (bind(fd, (struct sockaddr *)&a.sun, a.len) < 0 || listen(fd, 16) < 0)
            rc = -errno;
        umask(old);
    }
    unixsock_addr_release(&a);
    if (rc < 0) {
        log_err("control: cannot listen on %s: %s", path, strerror(-rc));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    struct control *ctl = xcalloc(1, sizeof *ctl);
    ctl->loop = loop;
    ctl->fd = fd;
    ctl->path = xstrdup(path);
    rc = ev_io_add(loop, fd, EV_READ, control_on_accept, ctl);
    if (rc < 0) {
        log_err("control: cannot watch the socket: %s", strerror(-rc));
        control_free(ctl);
        return NULL;
    }
    /* The hook outlives nothing: control_free comes after the loop ran. */
    ev_hook_add(loop, control_reap, ctl);
    return ctl;
}

void control_set_queue(struct control *c, struct queue *q)
{
    c->queue = q;
}

void control_free(struct control *ctl)
{
    if (ctl == NULL)
        return;
    ev_io_del(ctl->loop, ctl->fd);
    close(ctl->fd);
    (void)unlink(ctl->path);
    while (ctl->live) {
        struct control_client *cl = ctl->live;
        ctl->live = cl->next;
        cl->next = ctl->dead;
        ctl->dead = cl;
    }
    control_reap(ctl->loop, ctl);
    free(ctl->path);
    free(ctl);
}
