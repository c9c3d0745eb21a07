/* deliver_client.c: see deliver_client.h. */
#include "proc/deliver_client.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/xmalloc.h"
#include "ipc/ipc.h"
#include "ipc/ipc_types.h"
#include "proc/deliver_proc.h"

/* The delivery process ends itself when one delivery is stuck for
 * DELIVER_STUCK_S; this is the backstop should it not (a stopped process):
 * the message is deferred rather than a delivery thread lost. */
#define DELIVER_CLIENT_TIMEOUT_S (2 * DELIVER_STUCK_S)

struct deliver_client {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int *idle;      /* owned: channels nobody is using */
    size_t nidle;
    size_t nalive;  /* channels not broken (in use or idle) */
};

struct deliver_client *deliver_client_new(const int *fds, size_t n)
{
    struct deliver_client *dc = xcalloc(1, sizeof *dc);
    pthread_mutex_init(&dc->mu, NULL);
    pthread_cond_init(&dc->cv, NULL);
    dc->idle = xcalloc(n ? n : 1, sizeof *dc->idle);
    struct timeval tv = {DELIVER_CLIENT_TIMEOUT_S, 0};
    for (size_t i = 0; i < n; i++) {
        if (setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0)
            log_warn("local delivery: no answer timeout on a channel: %s", strerror(errno));
        dc->idle[dc->nidle++] = fds[i];
    }
    dc->nalive = n;
    return dc;
}

void deliver_client_free(struct deliver_client *dc)
{
    if (dc == NULL)
        return;
    for (size_t i = 0; i < dc->nidle; i++)
        close(dc->idle[i]);
    free(dc->idle);
    pthread_cond_destroy(&dc->cv);
    pthread_mutex_destroy(&dc->mu);
    free(dc);
}

/* Borrows a channel; -EPIPE when none is left alive. */
static int deliver_client_take(struct deliver_client *dc)
{
    pthread_mutex_lock(&dc->mu);
    while (dc->nidle == 0 && dc->nalive > 0)
        pthread_cond_wait(&dc->cv, &dc->mu);
    int fd = dc->nidle ? dc->idle[--dc->nidle] : -EPIPE;
    pthread_mutex_unlock(&dc->mu);
    return fd;
}

/* Gives a channel back, or drops it when it broke (its state is unknown). */
static void deliver_client_give(struct deliver_client *dc, int fd, int broken)
{
    pthread_mutex_lock(&dc->mu);
    if (broken) {
        close(fd);
        dc->nalive--;
        pthread_cond_broadcast(&dc->cv);
    } else {
        dc->idle[dc->nidle++] = fd;
        pthread_cond_signal(&dc->cv);
    }
    pthread_mutex_unlock(&dc->mu);
}

/* Reads the answer: 0 with *res filled, -EBADMSG on a malformed one. Local
 * delivery only succeeds or fails for now (never bounces), and its code
 * and enhanced code agree with that: a delivery process that says more
 * is not believed (ipc_get_result checks the rest). */
static int deliver_client_answer(const struct ipc_msg *m, struct result *res)
{
    struct ipc_rd r;
    ipc_rd_init(&r, m);
    ipc_get_result(&r, res);
    if (ipc_rd_end(&r) < 0 || m->type != IPC_DELIVERED || res->kind > RESULT_TEMPFAIL)
        return -EBADMSG;
    return 0;
}

int deliver_client_run(void *arg, const struct local_req *req, struct result *res)
{
    struct deliver_client *dc = arg;
    int fd = deliver_client_take(dc);
    if (fd < 0) {
        result_set(res, RESULT_TEMPFAIL, 451, "4.3.0", "the delivery process is not running");
        return LOCAL_KNOWN;
    }
    struct buf b = BUF_INIT;
    ipc_put_str(&b, req->path);
    ipc_put_str(&b, req->return_path);
    ipc_put_str(&b, req->delivered_to);
    ipc_put_u64(&b, (uint64_t)req->off);
    ipc_put_u64(&b, req->len);
    ipc_put_u32(&b, req->check != 0);
    ipc_put_str(&b, req->qid ? req->qid : "");
    ipc_put_u64(&b, (uint64_t)req->since);
    ipc_put_u32(&b, req->pid);
    int rc = ipc_send_sync_fd(fd, IPC_DELIVER, &b, req->fd);
    buf_free(&b);
    char rbuf[2048];
    struct ipc_msg m = {0, NULL, 0, -1};
    if (rc == 0)
        rc = ipc_recv_sync(fd, rbuf, sizeof rbuf, &m);
    if (m.fd >= 0)
        close(m.fd);
    if (rc == 1 && deliver_client_answer(&m, res) == 0) {
        deliver_client_give(dc, fd, 0);
        return LOCAL_KNOWN;
    }
    log_err("local delivery: no answer from the delivery process (%s)",
            rc < 0 ? strerror(-rc) : rc == 0 ? "closed" : "malformed answer");
    deliver_client_give(dc, fd, 1);
    result_set(res, RESULT_TEMPFAIL, 451, "4.3.0", "no answer from the delivery process");
    return LOCAL_UNKNOWN; /* it may have happened: the next attempt looks first */
}
