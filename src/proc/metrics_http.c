/* metrics_http.c: the metrics endpoint (metrics_http.h). */
#include "proc/metrics_http.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/http_req.h"
#include "base/inetsock.h"
#include "base/log.h"
#include "base/xmalloc.h"
#include "ev/conn.h"
#include "proc/metrics.h"
#include "proc/metrics_shm.h"

/* After the answer, input is read and dropped for this long so that
 * unread bytes do not turn the close into a reset that destroys the
 * answer before the client read it (a 414 to a huge request). */
#define MH_LINGER_MS 2000

/* The listening socket the parent bound; inherited by both children. */
static int metrics_http_fd = -1;

struct mh_client {
    struct metrics_http *h;
    struct conn *conn;    /* owned */
    ev_timer_id deadline; /* the whole request must arrive by then */
    int answered;         /* a response is queued: ignore further input */
    int dead;             /* on the free list */
    struct mh_client *next, *prev, *next_dead;
};

struct metrics_http {
    struct ev_loop *loop;
    struct queue *q;
    struct qmetrics *own; /* owned: used when the shared region is missing */
    int fd;               /* the listening socket, -1 when metrics are off */
    unsigned nclients;
    struct mh_client *all, *dead;
};

/* Binds addr:port of l. Returns the fd or -errno after logging why. */
static int metrics_http_bind(const struct conf_listener *l)
{
    int fd = inetsock_listen(l->addr, l->port, 64);
    int v6 = strchr(l->addr, ':') != NULL;
    if (fd == -EINVAL)
        log_err("metrics: bad listen address %s", l->addr);
    else if (fd < 0)
        log_err("metrics: cannot listen on %s%s%s:%d: %s", v6 ? "[" : "", l->addr, v6 ? "]" : "",
                l->port, strerror(-fd));
    return fd;
}

int metrics_parent_setup(const struct config *cfg)
{
    int rc = metrics_shm_create();
    if (rc < 0)
        log_warn("metrics: no shared counters (%s): the smtp process's counters will read 0",
                 strerror(-rc));
    const struct conf_listener *l = &cfg->metrics_listen;
    if (l->port == 0 || metrics_http_fd >= 0)
        return 0;
    if (!config_ip_is_loopback(l->addr)) {
        log_err("metrics_listen %s: not a loopback address; the endpoint has no "
                "authentication", l->addr);
        return -EINVAL;
    }
    int fd = metrics_http_bind(l);
    if (fd < 0)
        return fd;
    metrics_http_fd = fd;
    int v6 = strchr(l->addr, ':') != NULL;
    log_info("metrics on http://%s%s%s:%d/metrics", v6 ? "[" : "", l->addr, v6 ? "]" : "",
             l->port);
    return 0;
}

void metrics_http_drop(void)
{
    if (metrics_http_fd >= 0)
        close(metrics_http_fd);
    metrics_http_fd = -1;
}

static const char *mh_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

static void mh_on_linger(struct ev_loop *loop, void *arg)
{
    struct mh_client *c = arg;
    c->deadline = 0;
    if (!c->dead)
        conn_abort(c->conn);
}

/* The answer is sent: half-close, so the client sees its end. */
static void mh_on_drain(struct conn *conn, void *arg)
{
    struct mh_client *c = arg;
    if (c->answered && !c->dead)
        (void)shutdown(conn_fd(conn), SHUT_WR);
}

/* Queues the whole response; the connection ends once it is sent and
 * the client closed its side (or MH_LINGER_MS later). */
static void mh_respond(struct mh_client *c, int status, const char *ctype, const struct buf *body,
                       int head_only)
{
    struct buf out = BUF_INIT;
    size_t blen = body ? body->len : 0;
    buf_printf(&out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n", status,
               mh_reason(status), ctype, blen);
    if (status == 405)
        buf_puts(&out, "Allow: GET, HEAD\r\n");
    buf_puts(&out, "Cache-Control: no-store\r\nConnection: close\r\n\r\n");
    if (blen && !head_only)
        buf_append(&out, body->data, blen);
    c->answered = 1;
    conn_write(c->conn, out.data, out.len);
    buf_free(&out);
    ev_timer_cancel(c->h->loop, c->deadline);
    c->deadline = ev_timer_add(c->h->loop, MH_LINGER_MS, mh_on_linger, c);
    if (conn_wpending(c->conn) == 0)
        (void)shutdown(conn_fd(c->conn), SHUT_WR);
}

/* head_only: the answer to a HEAD has no body (RFC 9110 §9.3.2), an
 * error's neither. */
static void mh_respond_error(struct mh_client *c, int status, int head_only)
{
    struct buf body = BUF_INIT;
    buf_printf(&body, "%d %s\n", status, mh_reason(status));
    mh_respond(c, status, "text/plain; charset=utf-8", &body, head_only);
    buf_free(&body);
}

static void mh_serve(struct mh_client *c, const struct http_req *req)
{
    int get = strcmp(req->method, "GET") == 0, head = strcmp(req->method, "HEAD") == 0;
    if (strcmp(req->path, "/metrics") != 0) {
        mh_respond_error(c, 404, head);
        return;
    }
    if (!get && !head) {
        mh_respond_error(c, 405, 0);
        return;
    }
    struct metrics_http *h = c->h;
    struct buf body = BUF_INIT;
    metrics_render(&body, h->q, metrics_qshm ? metrics_qshm : h->own, clock_wall_us());
    mh_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", &body, head);
    buf_free(&body);
}

static void mh_on_read(struct conn *conn, void *arg)
{
    struct mh_client *c = arg;
    struct buf *in = conn_rbuf(conn);
    if (c->answered) {
        buf_consume(in, in->len); /* one request per connection */
        return;
    }
    struct http_req req;
    long rc = http_req_parse(in->data, in->len, METRICS_HTTP_REQ_MAX, &req);
    if (rc == 0)
        return;
    buf_consume(in, in->len);
    if (rc < 0)
        mh_respond_error(c, (int)-rc, 0);
    else
        mh_serve(c, &req);
}

static void mh_on_close(struct conn *conn, void *arg, int err)
{
    struct mh_client *c = arg;
    if (c->dead)
        return;
    c->dead = 1;
    /* Freed from the before-sleep hook: never inside its own callback. */
    c->next_dead = c->h->dead;
    c->h->dead = c;
}

static const struct conn_cb mh_conn_cb = {
    .on_read = mh_on_read, .on_close = mh_on_close, .on_drain = mh_on_drain};

/* Slowloris: the idle timeout restarts with every byte, this does not. */
static void mh_on_deadline(struct ev_loop *loop, void *arg)
{
    struct mh_client *c = arg;
    c->deadline = 0;
    if (!c->dead && !c->answered)
        mh_respond_error(c, 408, 0);
}

static void mh_free_client(struct metrics_http *h, struct mh_client *c)
{
    ev_timer_cancel(h->loop, c->deadline);
    if (c->prev)
        c->prev->next = c->next;
    else
        h->all = c->next;
    if (c->next)
        c->next->prev = c->prev;
    h->nclients--;
    conn_free(c->conn);
    free(c);
}

static void mh_reap(struct ev_loop *loop, void *arg)
{
    struct metrics_http *h = arg;
    while (h->dead) {
        struct mh_client *c = h->dead;
        h->dead = c->next_dead;
        mh_free_client(h, c);
    }
}

static void mh_on_listen(struct ev_loop *loop, int fd, unsigned events, void *arg)
{
    struct metrics_http *h = arg;
    for (int i = 0; i < 16; i++) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                log_warn("metrics: accept: %s", strerror(errno));
            return;
        }
        if (h->nclients >= METRICS_HTTP_CLIENTS_MAX) {
            /* Scrapers come one at a time; a crowd is not one. */
            close(cfd);
            continue;
        }
        struct mh_client *c = xcalloc(1, sizeof *c);
        c->h = h;
        c->conn = conn_new(loop, cfd, &mh_conn_cb, c);
        /* A safety net only: the deadline answers 408 first, and the
         * linger after an answer is shorter. */
        conn_set_timeout(c->conn, METRICS_HTTP_TIMEOUT_MS + MH_LINGER_MS + 1000);
        c->deadline = ev_timer_add(loop, METRICS_HTTP_TIMEOUT_MS, mh_on_deadline, c);
        c->next = h->all;
        if (h->all)
            h->all->prev = c;
        h->all = c;
        h->nclients++;
    }
}

struct metrics_http *metrics_http_start(struct ev_loop *loop, struct queue *q)
{
    struct metrics_http *h = xcalloc(1, sizeof *h);
    h->loop = loop;
    h->q = q;
    h->fd = -1;
    if (metrics_qshm == NULL)
        h->own = xcalloc(1, sizeof *h->own);
    queue_set_metrics(q, metrics_qshm ? metrics_qshm : h->own);
    if (metrics_http_fd >= 0) {
        if (ev_io_add(loop, metrics_http_fd, EV_READ, mh_on_listen, h) < 0)
            log_err("metrics: cannot watch the metrics socket");
        else
            h->fd = metrics_http_fd;
        ev_hook_add(loop, mh_reap, h);
    }
    return h;
}

void metrics_http_free(struct metrics_http *h)
{
    if (h == NULL)
        return;
    queue_set_metrics(h->q, NULL); /* h->own goes away below */
    if (h->fd >= 0)
        ev_io_del(h->loop, h->fd);
    mh_reap(h->loop, h);
    while (h->all)
        mh_free_client(h, h->all);
    free(h->own);
    free(h);
}
