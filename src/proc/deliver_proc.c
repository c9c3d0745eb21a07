/* deliver_proc.c: see deliver_proc.h. The queue process (a less trusted
 * peer than it looks: it parses what the network sent) names the Maildir
 * or mbox path; a path outside the directory the maildir or mbox setting
 * fixes, or one that climbs with "..", is refused, and so is a command
 * that is not its alias's in this process's aliases table, and content
 * that is not a regular file holding the octets named. */
#include "proc/deliver_proc.h"

#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/strutil.h"
#include "base/sizes.h"
#include "base/xmalloc.h"
#include "ipc/ipc.h"
#include "ipc/ipc_types.h"
#include "mail/envelope.h"
#include "mail/mailaddr.h"
#include "mail/pipe_cmd.h"
#include "proc/metrics_http.h"
#include "proc/metrics_shm.h"
#include "proc/privsep.h"
#include "deliver/local.h"

/* A mailbox template's fixed directory: up to the last '/' before its
 * first '%' (a template "/srv/mail%d" must not admit "/srv/mailbox/...").
 * 0 when it has none. */
static size_t deliver_prefix_len(const char *tmpl)
{
    if (tmpl == NULL)
        return 0;
    const char *pct = strchr(tmpl, '%');
    size_t plen = pct ? (size_t)(pct - tmpl) : strlen(tmpl);
    while (plen > 0 && tmpl[plen - 1] != '/')
        plen--;
    return plen;
}

struct deliver_worker {
    pthread_t th;
    int fd;
    const struct config *cfg; /* as the process started: the aliases' commands */
    size_t maildir_len;       /* deliver_prefix_len of maildir */
    size_t mbox_len;          /* and of mbox (0: no mbox setting) */
    const char *home;         /* the mail user's home, HOME of commands */
    _Atomic int64_t busy_since; /* monotonic seconds the current delivery began; 0 idle */
};

static int64_t deliver_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec + 1; /* never 0, which means idle */
}

/* Is path under the template's fixed part, without ".." anywhere? */
static int deliver_path_ok(const char *tmpl, size_t prefix_len, const char *path)
{
    if (tmpl == NULL || prefix_len == 0 || strncmp(path, tmpl, prefix_len) != 0)
        return 0;
    for (const char *p = path; (p = strstr(p, "..")) != NULL; p += 2)
        if ((p == path || p[-1] == '/') && (p[2] == '/' || p[2] == '\0'))
            return 0;
    return 1;
}

/* Is the request's command the one its alias holds in the aliases file
 * this process started with? The queue (it parses what the network sent)
 * never gets to choose a program: at most which alias's command runs. */
static int deliver_pipe_ok(const struct deliver_worker *w, const char *pipe, const char *user,
                           const char *domain)
{
    const char *mine = config_pipe_find(w->cfg, user, domain);
    return mine != NULL && strcmp(mine, pipe) == 0;
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
    char qid[ENVELOPE_QID_MAX + 1], pipe[PIPE_CMD_MAX + 2], user[MAILADDR_LOCAL_MAX + 1];
    char ext[MAILADDR_LOCAL_MAX + 1], domain[MAILADDR_DOMAIN_MAX + 1];
    uint32_t kind = ipc_get_u32(&r);
    ipc_get_str(&r, path, sizeof path);
    ipc_get_str(&r, from, sizeof from);
    ipc_get_str(&r, to, sizeof to);
    uint64_t off = ipc_get_u64(&r);
    uint64_t len = ipc_get_u64(&r);
    uint32_t check = ipc_get_u32(&r);
    ipc_get_str(&r, qid, sizeof qid);
    uint64_t since = ipc_get_u64(&r);
    uint32_t pid = ipc_get_u32(&r);
    uint32_t lock_wait = ipc_get_u32(&r);
    ipc_get_str(&r, pipe, sizeof pipe);
    ipc_get_str(&r, user, sizeof user);
    ipc_get_str(&r, ext, sizeof ext);
    ipc_get_str(&r, domain, sizeof domain);
    uint32_t time_limit = ipc_get_u32(&r);
    struct stat st;
    if (m->type != IPC_DELIVER || ipc_rd_end(&r) < 0 || m->fd < 0 || fstat(m->fd, &st) < 0 ||
        !S_ISREG(st.st_mode) || off > (uint64_t)st.st_size || len > (uint64_t)st.st_size - off ||
        kind > LOCAL_PIPE || lock_wait < 1 || lock_wait > 120 || time_limit < 1 ||
        time_limit > 240 || (check && (qid[0] == '\0' || since > INT64_MAX / 2))) {
        log_err("deliver: malformed request from the queue");
        result_set(&res, RESULT_TEMPFAIL, 451, "4.3.0", "malformed delivery request");
    } else if (kind == LOCAL_MAILDIR && !deliver_path_ok(w->cfg->maildir, w->maildir_len, path)) {
        log_err("deliver: refused a maildir outside the maildir setting");
        result_set(&res, RESULT_TEMPFAIL, 451, "4.3.5", "maildir path outside the maildir setting");
    } else if (kind == LOCAL_MBOX && !deliver_path_ok(w->cfg->mbox, w->mbox_len, path)) {
        log_err("deliver: refused an mbox outside the mbox setting");
        result_set(&res, RESULT_TEMPFAIL, 451, "4.3.5", "mbox path outside the mbox setting");
    } else if (kind == LOCAL_PIPE && !deliver_pipe_ok(w, pipe, user, domain)) {
        /* A reload changed the command (this process keeps the aliases
         * it started with), or the queue is not to be believed. */
        struct buf a = BUF_INIT;
        strutil_escape_word(&a, user, strlen(user));
        buf_putc(&a, '@');
        strutil_escape_word(&a, domain, strlen(domain));
        log_err("deliver: refused a command that is not %s's in the aliases file tern-local "
                "started with (a restart applies a changed command)",
                a.data);
        buf_free(&a);
        result_set(&res, RESULT_TEMPFAIL, 451, "4.3.5",
                   "command not in the aliases file the delivery process started with");
    } else {
        struct local_req req = {
            .kind = (enum local_kind)kind,
            .path = path,
            .return_path = from,
            .delivered_to = to,
            .fd = m->fd,
            .off = (off_t)off,
            .len = len,
            .check = check != 0,
            .qid = qid,
            .since = (int64_t)since,
            .pid = pid,
            .lock_wait = lock_wait,
            .pipe = pipe,
            .user = user,
            .extension = ext,
            .domain = domain,
            .time_limit = time_limit,
            .home = w->home,
        };
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
    size_t mlen = deliver_prefix_len(cfg->maildir), blen = deliver_prefix_len(cfg->mbox);
    if (mlen == 0 || (cfg->mbox && blen == 0)) {
        log_err("deliver: the %s setting %s has no fixed directory", mlen ? "mbox" : "maildir",
                mlen ? cfg->mbox : cfg->maildir);
        return 1;
    }
    /* HOME of the aliases' commands: the mail user's, as a login has. */
    struct passwd *pw = getpwuid(getuid());
    char *home = xstrdup(pw && pw->pw_dir && pw->pw_dir[0] ? pw->pw_dir : "/");
    struct deliver_worker *w = xcalloc(n ? n : 1, sizeof *w);
    size_t started = 0;
    for (size_t i = 0; i < n; i++) {
        w[i].fd = fds[i];
        w[i].cfg = cfg;
        w[i].maildir_len = mlen;
        w[i].mbox_len = blen;
        w[i].home = home;
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
    free(home);
    return started == n ? 0 : 1;
}
