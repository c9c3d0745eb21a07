/* deliver_proc.c: see deliver_proc.h. The queue process (a less trusted
 * peer than it looks: it parses what the network sent) names the Maildir
 * path; a path outside the directory the maildir setting fixes, or one
 * that climbs with "..", is refused, and so is content that is not a
 * regular file holding the octets named. */
#include "proc/deliver_proc.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/sizes.h"
#include "base/xmalloc.h"
#include "ipc/ipc.h"
#include "ipc/ipc_types.h"
#include "mail/envelope.h"
#include "mail/mailaddr.h"
#include "proc/metrics_http.h"
#include "proc/metrics_shm.h"
#include "proc/privsep.h"
#include "deliver/local.h"

struct deliver_worker {
    pthread_t th;
    int fd;
    const char *prefix; /* the maildir template up to the '/' before its first '%' */
    size_t prefix_len;
    _Atomic int64_t busy_since; /* monotonic seconds the current delivery began; 0 idle */
};

static int64_t deliver_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec + 1; /* never 0, which means idle */
}

/* Is path under the template's fixed part, without ".." anywhere? */
static int deliver_path_ok(const struct deliver_worker *w, const char *path)
{
    if (strncmp(path, w->prefix, w->prefix_len) != 0)
        return 0;
    for (const char *p = path; (p = strstr(p, "..")) != NULL; p += 2)
        if ((p == path || p[-1] == '/') && (p[2] == '/' || p[2] == '\0'))
            return 0;
    return 1;
}

static void deliver_answer(int fd, const struct result *res)
{
    struct buf b = BUF_INIT;
    ipc_put_result(&b, res);
    if (ipc_send_sync(fd, IPC_DELIVERED, &b) < 0)
        log_err("deliver: cannot answer the queue");
    buf_free(&b);
}

static void deliver_one(struct deliver_worker *w, const struct ipc_msg *m)
{
    struct result res;
    memset(&res, 0, sizeof res);
    struct ipc_rd r;
    ipc_rd_init(&r, m);
    char path[PATH_MAX], from[4 * MAILADDR_PATH_MAX], to[4 * MAILADDR_PATH_MAX];
    char qid[ENVELOPE_QID_MAX + 1];
    ipc_get_str(&r, path, sizeof path);
    ipc_get_str(&r, from, sizeof from);
    ipc_get_str(&r, to, sizeof to);
    uint64_t off = ipc_get_u64(&r);
    uint64_t len = ipc_get_u64(&r);
    uint32_t check = ipc_get_u32(&r);
    ipc_get_str(&r, qid, sizeof qid);
    uint64_t since = ipc_get_u64(&r);
    uint32_t pid = ipc_get_u32(&r);
    struct stat st;
    if (m->type != IPC_DELIVER || ipc_rd_end(&r) < 0 || m->fd < 0 || fstat(m->fd, &st) < 0 ||
        !S_ISREG(st.st_mode) || off > (uint64_t)st.st_size || len > (uint64_t)st.st_size - off ||
        (check && (qid[0] == '\0' || since > INT64_MAX / 2))) {
        log_err("deliver: malformed request from the queue");
        result_set(&res, RESULT_TEMPFAIL, 451, "4.3.0", "malformed delivery request");
    } else if (!deliver_path_ok(w, path)) {
        log_err("deliver: refused a maildir outside the maildir setting");
        result_set(&res, RESULT_TEMPFAIL, 451, "4.3.5", "maildir path outside the maildir setting");
    } else {
        struct local_req req = {path, from, to, m->fd, (off_t)off, len, check != 0,
                                      qid, (int64_t)since, pid};
        local_deliver(&req, &res);
    }
    deliver_answer(w->fd, &res);
}

static void *deliver_worker_main(void *arg)
{
    struct deliver_worker *w = arg;
    char *rbuf = xmalloc(65536);
    for (;;) {
        struct ipc_msg m;
        int rc = ipc_recv_sync(w->fd, rbuf, 65536, &m);
        if (rc <= 0)
            break; /* the queue went away (or spoke nonsense): done */
        atomic_store(&w->busy_since, deliver_now());
        deliver_one(w, &m);
        atomic_store(&w->busy_since, 0);
        if (m.fd >= 0)
            close(m.fd);
    }
    free(rbuf);
    close(w->fd);
    return NULL;
}

struct deliver_watch {
    struct deliver_worker *w;
    size_t n;
};

/* A delivery stuck past DELIVER_STUCK_S (a hung disk, a stopped thread)
 * ends the process: the supervisor restarts it, the queue sees the
 * channel close and looks in the Maildir before it tries again, and no
 * stale write can finish behind that retry. */
static void *deliver_watch_main(void *arg)
{
    const struct deliver_watch *dw = arg;
    for (;;) {
        sleep(5);
        int64_t now = deliver_now();
        for (size_t i = 0; i < dw->n; i++) {
            int64_t t = atomic_load(&dw->w[i].busy_since);
            if (t != 0 && now - t > DELIVER_STUCK_S) {
                log_err("deliver: a delivery has been running for over %d s; restarting",
                        DELIVER_STUCK_S);
                _exit(1);
            }
        }
    }
    return NULL;
}

int deliver_proc_main(const struct config *cfg, const int *fds, size_t n)
{
    log_set_ident("tern/virtual");
    signal(SIGPIPE, SIG_IGN);
    /* Not ours: the metrics socket and the shared counters. */
    metrics_http_drop();
    metrics_shm_drop_all();
    if (privsep_drop(cfg->mail_user) < 0)
        return 1;
    /* The fixed directory: up to the last '/' before the first '%' (a
     * template "/srv/mail%d" must not admit "/srv/mailbox/..."). */
    const char *pct = strchr(cfg->maildir, '%');
    size_t plen = pct ? (size_t)(pct - cfg->maildir) : strlen(cfg->maildir);
    while (plen > 0 && cfg->maildir[plen - 1] != '/')
        plen--;
    if (plen == 0) {
        log_err("deliver: the maildir setting %s has no fixed directory", cfg->maildir);
        return 1;
    }
    struct deliver_worker *w = xcalloc(n ? n : 1, sizeof *w);
    size_t started = 0;
    for (size_t i = 0; i < n; i++) {
        w[i].fd = fds[i];
        w[i].prefix = cfg->maildir;
        w[i].prefix_len = plen;
        if (pthread_create(&w[i].th, NULL, deliver_worker_main, &w[i]) != 0) {
            log_err("deliver: cannot start a thread");
            close(fds[i]);
            w[i].fd = -1;
            continue;
        }
        started++;
    }
    struct deliver_watch dw = {w, n};
    pthread_t wt;
    if (pthread_create(&wt, NULL, deliver_watch_main, &dw) != 0 || pthread_detach(wt) != 0)
        log_warn("deliver: no watchdog thread: a stuck delivery is only timed out by the queue");
    for (size_t i = 0; i < n; i++)
        if (w[i].fd >= 0)
            pthread_join(w[i].th, NULL);
    free(w);
    return started == n ? 0 : 1;
}
