/* parent.c: the supervisor of tern's processes (docs/design.md, "Processes"). */
#include "proc/parent.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef TERN_SANITIZE
#include <sanitizer/lsan_interface.h>
#endif

#include "base/fsio.h"
#include "base/inetsock.h"
#include "base/log.h"
#include "ipc/ipc.h"
#include "ipc/ipc_types.h"
#include "proc/deliver_proc.h"
#include "proc/dkim_keys.h"
#include "proc/metrics_http.h"
#include "proc/net.h"
#include "proc/privsep.h"
#include "proc/queue_proc.h"
#include "proc/tls_material.h"

/* A child that dies this soon after its start counts as a crash loop. */
#define PARENT_MIN_UPTIME_S 5
#define PARENT_MAX_FAST_RESTARTS 5

static volatile sig_atomic_t parent_stop_sig;
static volatile sig_atomic_t parent_reload;

static void parent_on_hup(int sig)
{
    (void)sig;
    parent_reload = 1;
}

static void parent_on_term(int sig)
{
    parent_stop_sig = sig;
}

static void parent_on_chld(int sig)
{
    (void)sig; /* only interrupts sigsuspend */
}

/* Binds one listener. Returns the fd or -errno after logging why. */
static int parent_bind(const struct conf_listener *l)
{
    int fd = inetsock_listen(l->addr, l->port, 1024);
    if (fd == -EINVAL)
        log_err("bad listen address %s", l->addr);
    else if (fd < 0)
        log_err("cannot listen on %s port %d: %s", l->addr, l->port, strerror(-fd));
    return fd;
}

/* A child must not outlive its supervisor: it would keep the ports and
 * the spool while a new tern starts. `name` (at most 15 bytes) is what ps
 * and top show, so an operator can tell the processes apart. */
static void parent_child_setup(pid_t parent, const char *name)
{
    (void)prctl(PR_SET_NAME, name, 0, 0, 0); /* cosmetic: failure changes nothing */
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    signal(SIGHUP, SIG_IGN); /* reloads come from the parent, as messages */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
        _exit(1);
}

/* A child ends with _exit (the parent's atexit handlers and stdio are
 * not its own); sanitizer builds check for leaks first, since _exit skips
 * LeakSanitizer's own check. */
__attribute__((noreturn)) static void parent_child_exit(int status)
{
#ifdef TERN_SANITIZE
    __lsan_do_leak_check();
#endif
    _exit(status);
}

/* A reload leaves the old smtp process draining for a while. */
#define PARENT_DRAINING_MAX 8

/* Channels between the queue and the delivery process: one per delivery
 * thread (the config allows up to 64). */
#define PARENT_DELIVER_MAX 64

struct parent_kids {
    pid_t net, queue, deliver;
    int ctl;  /* the parent's end of the control channel to net, or -1 */
    int qctl; /* the parent's end of the channel to the queue, or -1 */
    pid_t draining[PARENT_DRAINING_MAX]; /* old smtp processes finishing their sessions */
};

/* Starts an smtp process on one end of `sp` (the queue holds the other).
 * Returns 0 or -errno after logging why; closes nothing of sp. */
static int parent_spawn_net(const struct config *cfg, const struct net_listener *ls, size_t nls,
                            const struct buf *tls, int net_end, int queue_end,
                            struct parent_kids *k)
{
    pid_t self = getpid();
    int ctl[2];
    int rc = ipc_pair(ctl);
    if (rc < 0) {
        log_err("socketpair: %s", strerror(-rc));
        return rc;
    }
    pid_t pid = fork();
    if (pid < 0) {
        rc = -errno;
        log_err("fork: %s", strerror(-rc));
        close(ctl[0]);
        close(ctl[1]);
        return rc;
    }
    if (pid == 0) {
        close(queue_end);
        close(ctl[0]);
        if (k->ctl >= 0)
            close(k->ctl);
        if (k->qctl >= 0)
            close(k->qctl);
        parent_child_setup(self, "tern-smtpd");
        parent_child_exit(net_main(cfg, ls, nls, net_end, tls->data, tls->len, ctl[1]));
    }
    close(ctl[1]);
    if (k->ctl >= 0)
        close(k->ctl);
    k->ctl = ctl[0];
    k->net = pid;
    return 0;
}

static void parent_close_all(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* Private keys (TLS, DKIM) are wiped before their memory goes (buf_wipe):
 * by the parent when it replaces them, by a child that has no use for
 * them in its copy. */

/* Starts the delivery process (as root: it becomes mail_user itself) with
 * the ends dd[0..n) of its channels; the queue gets dq[0..n). Returns 0
 * or -errno after logging why. */
static int parent_spawn_deliver(const struct config *cfg, const struct net_listener *ls,
                                size_t nls, struct buf *tls, int *dq, int *dd, size_t n,
                                struct parent_kids *k)
{
    pid_t self = getpid();
    for (size_t i = 0; i < n; i++) {
        int pair[2];
        int rc = ipc_pair(pair);
        if (rc < 0) {
            log_err("socketpair: %s", strerror(-rc));
            parent_close_all(dq, i);
            parent_close_all(dd, i);
            return rc;
        }
        dq[i] = pair[0];
        dd[i] = pair[1];
    }
    k->deliver = fork();
    if (k->deliver < 0) {
        int rc = -errno;
        log_err("fork: %s", strerror(-rc));
        parent_close_all(dq, n);
        parent_close_all(dd, n);
        return rc;
    }
    if (k->deliver == 0) {
        parent_close_all(dq, n);
        parent_child_setup(self, "tern-local");
        buf_wipe(tls);
        for (size_t i = 0; i < nls; i++)
            close(ls[i].fd);
        parent_child_exit(deliver_proc_main(cfg, dd, n));
    }
    parent_close_all(dd, n);
    return 0;
}

/* Starts the delivery, queue and net processes and their channels.
 * Returns 0 or -errno after logging why. */
static int parent_spawn(const struct config *cfg, const struct net_listener *ls, size_t nls,
                        struct buf *tls, struct parent_kids *k)
{
    pid_t self = getpid();
    int dq[PARENT_DELIVER_MAX], dd[PARENT_DELIVER_MAX];
    size_t nd = cfg->delivery_threads ? cfg->delivery_threads : 1;
    if (nd > PARENT_DELIVER_MAX)
        nd = PARENT_DELIVER_MAX;
    int rc = parent_spawn_deliver(cfg, ls, nls, tls, dq, dd, nd, k);
    if (rc < 0)
        return rc;
    /* Read after the delivery process is started and wiped before the
     * smtp process is: only the queue process, which signs, has them. */
    struct buf dkim = BUF_INIT, derr = BUF_INIT;
    rc = dkim_keys_read_checked(cfg, &dkim, &derr);
    if (rc < 0) {
        log_err("cannot read the DKIM keys: %s", derr.data);
        buf_wipe(&dkim);
        buf_free(&dkim);
        buf_free(&derr);
        parent_close_all(dq, nd);
        return rc;
    }
    buf_free(&derr);
    int sp[2], qc[2];
    rc = ipc_pair(sp);
    if (rc < 0) {
        log_err("socketpair: %s", strerror(-rc));
        buf_wipe(&dkim);
        buf_free(&dkim);
        parent_close_all(dq, nd);
        return rc;
    }
    rc = ipc_pair(qc);
    if (rc < 0) {
        log_err("socketpair: %s", strerror(-rc));
        buf_wipe(&dkim);
        buf_free(&dkim);
        close(sp[0]);
        close(sp[1]);
        parent_close_all(dq, nd);
        return rc;
    }
    k->queue = fork();
    if (k->queue < 0) {
        rc = -errno;
        log_err("fork: %s", strerror(-rc));
        buf_wipe(&dkim);
        buf_free(&dkim);
        close(sp[0]);
        close(sp[1]);
        close(qc[0]);
        close(qc[1]);
        parent_close_all(dq, nd);
        return rc;
    }
    if (k->queue == 0) {
        close(sp[0]);
        close(qc[0]);
        parent_child_setup(self, "tern-qmgr");
        buf_wipe(tls);
        for (size_t i = 0; i < nls; i++)
            close(ls[i].fd);
        parent_child_exit(queue_proc_main(cfg, sp[1], qc[1], dq, nd, k->deliver, &dkim));
    }
    buf_wipe(&dkim);
    buf_free(&dkim);
    /* The delivery channels are the queue's alone. */
    parent_close_all(dq, nd);
    close(qc[1]);
    k->qctl = qc[0];
    rc = parent_spawn_net(cfg, ls, nls, tls, sp[0], sp[1], k);
    close(sp[0]);
    close(sp[1]);
    if (rc < 0)
        kill(k->queue, SIGTERM);
    return rc;
}

/* Waits for every pid of pids[0..n) (0 entries are skipped) until the
 * deadline, then kills the rest. */
static void parent_wait_pids(pid_t *pids, size_t n, int seconds)
{
    for (int i = 0; i <= seconds * 20; i++) {
        size_t left = 0;
        for (size_t j = 0; j < n; j++) {
            if (pids[j] > 0 && waitpid(pids[j], NULL, WNOHANG) == pids[j])
                pids[j] = 0;
            left += pids[j] > 0;
        }
        if (left == 0)
            return;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (size_t j = 0; j < n; j++) {
        if (pids[j] > 0) {
            kill(pids[j], SIGKILL);
            waitpid(pids[j], NULL, 0);
            pids[j] = 0;
        }
    }
}

/* Stops the smtp processes first (no new mail; sessions may finish their
 * transaction within shutdown_timeout), then the queue, so nothing is
 * accepted that the queue cannot commit. */
static void parent_stop_kids(const struct config *cfg, struct parent_kids *k)
{
    pid_t nets[PARENT_DRAINING_MAX + 1];
    size_t n = 0;
    if (k->net > 0)
        nets[n++] = k->net;
    for (size_t i = 0; i < PARENT_DRAINING_MAX; i++)
        if (k->draining[i] > 0)
            nets[n++] = k->draining[i];
    for (size_t i = 0; i < n; i++)
        kill(nets[i], SIGTERM);
    parent_wait_pids(nets, n, (int)cfg->shutdown_timeout + 5);
    if (k->queue > 0) {
        kill(k->queue, SIGTERM);
        pid_t q[1] = {k->queue};
        parent_wait_pids(q, 1, 30);
    }
    /* The delivery process ends when the queue's channels close. */
    if (k->deliver > 0) {
        pid_t d[1] = {k->deliver};
        parent_wait_pids(d, 1, 5);
    }
    k->net = k->queue = k->deliver = 0;
    memset(k->draining, 0, sizeof k->draining);
    if (k->ctl >= 0)
        close(k->ctl);
    if (k->qctl >= 0)
        close(k->qctl);
    k->ctl = k->qctl = -1;
}

/* How long a reload waits for the new smtp process to be ready. */
#define PARENT_NET_READY_S 30

/* Waits on the control channel for IPC_NET_READY. 0, or -ETIMEDOUT,
 * -EPIPE for a closed channel, -EPROTO for another message, or -errno. */
static int parent_wait_net_ready(int ctl, int seconds)
{
    struct pollfd pfd = {ctl, POLLIN, 0};
    int rc;
    do
        rc = poll(&pfd, 1, seconds * 1000);
    while (rc < 0 && errno == EINTR);
    if (rc < 0)
        return -errno;
    if (rc == 0)
        return -ETIMEDOUT;
    char rbuf[256];
    struct ipc_msg m;
    rc = ipc_recv_sync(ctl, rbuf, sizeof rbuf, &m);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return -EPIPE;
    if (m.fd >= 0)
        close(m.fd);
    return m.type == IPC_NET_READY ? 0 : -EPROTO;
}

/* SIGHUP: the configuration, the tables and the certificates are read
 * again. The queue takes the new settings first; then a new smtp process
 * starts on the same listeners with them, and the old one drains: it
 * stops accepting, lets every session finish its transaction (within
 * shutdown_timeout) and exits. No session is cut and no socket closes. A
 * configuration with errors changes nothing. */
static void parent_reload_all(struct config *cfg, const struct net_listener *ls, size_t nls,
                              struct buf *tls, struct parent_kids *k)
{
    struct config nc;
    memset(&nc, 0, sizeof nc);
    config_default(&nc);
    struct buf err = BUF_INIT, changed = BUF_INIT, fresh = BUF_INIT, dkim = BUF_INIT;
    int rc = cfg->path ? config_load(&nc, cfg->path, &err) : config_load_default_tables(&nc, &err);
    if (rc < 0) {
        log_err("reload: configuration errors, nothing changed: %s", err.data ? err.data : "");
        goto out;
    }
    config_keep_restart_settings(&nc, cfg, &changed);
    if (changed.len)
        log_warn("reload: %s changed; that takes a restart (the running values stay)",
                 changed.data);
    buf_reset(&err);
    if (tls_material_read_checked(&nc, &fresh, &err) < 0) {
        log_err("reload: certificates unreadable, nothing changed: %s", err.data ? err.data : "");
        goto out;
    }
    if (dkim_keys_read_checked(&nc, &dkim, &err) < 0) {
        log_err("reload: DKIM keys unreadable, nothing changed: %s", err.data ? err.data : "");
        goto out;
    }
    pid_t slot = -1;
    for (size_t i = 0; i < PARENT_DRAINING_MAX && slot < 0; i++)
        if (k->draining[i] == 0)
            slot = (pid_t)i;
    if (slot < 0) {
        log_err("reload: too many smtp processes still draining; try again later");
        goto out;
    }
    int sp[2];
    rc = ipc_pair(sp);
    if (rc < 0) {
        log_err("reload: socketpair: %s", strerror(-rc));
        goto out;
    }
    /* The queue first: the new smtp process must not accept mail for a
     * domain the queue does not know yet. Then the channel to it. */
    rc = ipc_send_sync(k->qctl, IPC_RELOAD, &dkim); /* the new keys */
    if (rc == 0)
        rc = ipc_send_sync_fd(k->qctl, IPC_NET_CHANNEL, NULL, sp[1]);
    if (rc < 0) {
        log_err("reload: cannot reach the queue process: %s", strerror(-rc));
        close(sp[0]);
        close(sp[1]);
        goto out;
    }
    config_free(cfg);
    *cfg = nc;
    memset(&nc, 0, sizeof nc);
    buf_wipe(tls);
    buf_free(tls);
    *tls = fresh;
    fresh = (struct buf)BUF_INIT;
    pid_t old = k->net;
    rc = parent_spawn_net(cfg, ls, nls, tls, sp[0], sp[1], k);
    close(sp[0]);
    close(sp[1]);
    if (rc < 0) {
        /* The queue sees the channel close and stops; both restart. */
        log_err("reload: cannot start a new smtp process");
        goto out;
    }
    /* The old process accepts until the new one can: no moment in which
     * nobody takes connections, however slow the start (or reloads in a
     * row faster than it). */
    if (parent_wait_net_ready(k->ctl, PARENT_NET_READY_S) < 0)
        log_warn("reload: the new smtp process %ld did not say it is ready within %d s",
                 (long)k->net, PARENT_NET_READY_S);
    if (old > 0) {
        k->draining[slot] = old;
        kill(old, SIGUSR2); /* drain: its sessions end when their clients are done */
    }
    log_info("reload: configuration, tables and certificates loaded; smtp process %ld "
             "replaces %ld, which finishes its sessions",
             (long)k->net, (long)old);
out:
    if (nc.hostname)
        config_free(&nc);
    buf_wipe(&fresh);
    buf_free(&fresh);
    buf_wipe(&dkim);
    buf_free(&dkim);
    buf_free(&err);
    buf_free(&changed);
}

int parent_serve(struct config *cfg)
{
    log_set_ident("tern/master");
    struct net_listener ls[CONF_MAX_LISTENERS];
    size_t nls = 0;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        int fd = parent_bind(&cfg->listeners[i]);
        if (fd < 0) {
            for (size_t j = 0; j < nls; j++)
                close(ls[j].fd);
            return 1;
        }
        ls[nls].fd = fd;
        ls[nls].role = cfg->listeners[i].role;
        nls++;
    }
    if (privsep_check_user(cfg->run_user) < 0 || privsep_check_user(cfg->mail_user) < 0) {
        for (size_t j = 0; j < nls; j++)
            close(ls[j].fd);
        return 1;
    }
    /* The spool exists before the children race to create parts of it,
     * and belongs to the daemon's user before any child runs as it. */
    int mk = fsio_mkpath(cfg->spool_dir, 0755, 0700);
    if (mk < 0 || privsep_own_tree(cfg->spool_dir, cfg->run_user, "empty", "pickup") < 0 ||
        privsep_prepare_dirs(cfg) < 0) {
        if (mk < 0)
            log_err("cannot create the spool %s: %s", cfg->spool_dir, strerror(-mk));
        for (size_t j = 0; j < nls; j++)
            close(ls[j].fd);
        return 1;
    }
    /* Shared counters and the metrics socket, before any fork or drop. */
    if (metrics_parent_setup(cfg) < 0) {
        for (size_t j = 0; j < nls; j++)
            close(ls[j].fd);
        return 1;
    }

    struct buf tls = BUF_INIT, err = BUF_INIT;
    if (tls_material_read(cfg, &tls, &err) < 0) {
        log_err("cannot read the TLS certificates: %s", err.data);
        buf_free(&tls);
        buf_free(&err);
        for (size_t j = 0; j < nls; j++)
            close(ls[j].fd);
        return 1;
    }
    buf_free(&err);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = parent_on_hup;
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = parent_on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = parent_on_chld;
    sigaction(SIGCHLD, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGCHLD);
    sigaddset(&block, SIGHUP);
    sigprocmask(SIG_BLOCK, &block, &old);

    struct parent_kids k = {.ctl = -1, .qctl = -1};
    if (parent_spawn(cfg, ls, nls, &tls, &k) < 0) {
        buf_free(&tls);
        return 1;
    }
    for (size_t i = 0; i < cfg->nlisteners; i++)
        log_info("listening on %s%s%s:%d (%s)", strchr(cfg->listeners[i].addr, ':') ? "[" : "",
                 cfg->listeners[i].addr, strchr(cfg->listeners[i].addr, ':') ? "]" : "",
                 cfg->listeners[i].port, config_role_name(cfg->listeners[i].role));
    log_info("daemon started -- version %s", TERN_VERSION);

    time_t started = time(NULL);
    int fast_restarts = 0, status = 0;
    while (!parent_stop_sig) {
        sigsuspend(&old);
        if (parent_reload) {
            parent_reload = 0;
            parent_reload_all(cfg, ls, nls, &tls, &k);
        }
        int ws;
        pid_t pid;
        int died = 0;
        while ((pid = waitpid(-1, &ws, WNOHANG)) > 0) {
            for (size_t i = 0; i < PARENT_DRAINING_MAX; i++) {
                if (k.draining[i] == pid) {
                    k.draining[i] = 0;
                    log_info("the old smtp process %ld has finished draining", (long)pid);
                }
            }
            const char *who = pid == k.net        ? "smtp"
                              : pid == k.queue   ? "queue"
                              : pid == k.deliver ? "delivery"
                                                 : NULL;
            if (who == NULL)
                continue;
            if (WIFSIGNALED(ws))
                log_err("%s process %ld killed by signal %d", who, (long)pid, WTERMSIG(ws));
            else
                log_err("%s process %ld exited with status %d", who, (long)pid,
                        WEXITSTATUS(ws));
            if (pid == k.net)
                k.net = 0;
            else if (pid == k.queue)
                k.queue = 0;
            else
                k.deliver = 0;
            died = 1;
        }
        if (!died || parent_stop_sig)
            continue;
        /* The children share their channels: restart them all. The spool
         * is the truth, so a restarted queue picks up where it was. */
        parent_stop_kids(cfg, &k);
        if (time(NULL) - started < PARENT_MIN_UPTIME_S) {
            if (++fast_restarts > PARENT_MAX_FAST_RESTARTS) {
                log_err("children keep dying at start; giving up");
                status = 1;
                break;
            }
            sleep(1);
        } else {
            fast_restarts = 0;
        }
        started = time(NULL);
        log_warn("restarting the smtp, queue and delivery processes");
        /* A restarted net process starts with the latest certificates. */
        struct buf fresh = BUF_INIT, ferr = BUF_INIT;
        if (tls_material_read_checked(cfg, &fresh, &ferr) == 0) {
            buf_wipe(&tls);
            buf_free(&tls);
            tls = fresh;
        } else {
            buf_wipe(&fresh);
            buf_free(&fresh);
        }
        buf_free(&ferr);
        if (parent_spawn(cfg, ls, nls, &tls, &k) < 0) {
            status = 1;
            break;
        }
    }
    parent_stop_kids(cfg, &k);
    buf_wipe(&tls);
    buf_free(&tls);
    for (size_t i = 0; i < nls; i++)
        close(ls[i].fd);
    log_info("terminating on signal %d", (int)parent_stop_sig);
    return status;
}
