/* parent.c: the supervisor of tern's processes (DESIGN.md, "Processes"). */
#include "proc/parent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
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

#include "base/log.h"
#include "ipc/ipc.h"
#include "ipc/ipc_types.h"
#include "proc/metrics_http.h"
#include "proc/net.h"
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

/* Binds one listener. Returns the fd or -1 after logging why. */
static int parent_bind(const struct conf_listener *l)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    if (strchr(l->addr, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)l->port);
        if (inet_pton(AF_INET6, l->addr, &s6->sin6_addr) != 1)
            goto bad;
        sl = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)l->port);
        if (inet_pton(AF_INET, l->addr, &s4->sin_addr) != 1)
            goto bad;
        sl = sizeof *s4;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_err("socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss.ss_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 1024) < 0) {
        log_err("cannot listen on %s port %d: %s", l->addr, l->port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
bad:
    log_err("bad listen address %s", l->addr);
    return -1;
}

/* A child must not outlive its supervisor: it would keep the ports and
 * the spool while a new tern starts. */
static void parent_child_setup(pid_t parent)
{
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

struct parent_kids {
    pid_t net, queue;
    int ctl; /* the parent's end of the control channel to net, or -1 */
};

/* Starts the queue process and the net process joined by a socketpair. */
static int parent_spawn(const struct config *cfg, const struct net_listener *ls, size_t nls,
                        const struct buf *tls, struct parent_kids *k)
{
    pid_t self = getpid();
    int sp[2], ctl[2];
    int rc = ipc_pair(sp);
    if (rc < 0) {
        log_err("socketpair: %s", strerror(-rc));
        return -1;
    }
    rc = ipc_pair(ctl);
    if (rc < 0) {
        log_err("socketpair: %s", strerror(-rc));
        close(sp[0]);
        close(sp[1]);
        return -1;
    }
    k->queue = fork();
    if (k->queue < 0) {
        log_err("fork: %s", strerror(errno));
        close(sp[0]);
        close(sp[1]);
        return -1;
    }
    if (k->queue == 0) {
        close(sp[0]);
        close(ctl[0]);
        close(ctl[1]);
        parent_child_setup(self);
        for (size_t i = 0; i < nls; i++)
            close(ls[i].fd);
        parent_child_exit(queue_proc_main(cfg, sp[1]));
    }
    k->net = fork();
    if (k->net < 0) {
        log_err("fork: %s", strerror(errno));
        kill(k->queue, SIGTERM);
        close(sp[0]);
        close(sp[1]);
        close(ctl[0]);
        close(ctl[1]);
        return -1;
    }
    if (k->net == 0) {
        close(sp[1]);
        close(ctl[0]);
        parent_child_setup(self);
        parent_child_exit(net_main(cfg, ls, nls, sp[0], tls->data, tls->len, ctl[1]));
    }
    close(sp[0]);
    close(sp[1]);
    close(ctl[1]);
    k->ctl = ctl[0];
    return 0;
}

static void parent_wait_pid(pid_t pid, int seconds)
{
    for (int i = 0; i < seconds * 20; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* Stops the net process first (no new mail), then the queue, so nothing
 * is accepted that the queue cannot commit. */
static void parent_stop_kids(struct parent_kids *k)
{
    if (k->net > 0) {
        kill(k->net, SIGTERM);
        parent_wait_pid(k->net, 10);
    }
    if (k->queue > 0) {
        kill(k->queue, SIGTERM);
        parent_wait_pid(k->queue, 30);
    }
    k->net = k->queue = 0;
    if (k->ctl >= 0)
        close(k->ctl);
    k->ctl = -1;
}

/* SIGHUP: certificates are read again and handed to the net process,
 * which swaps them in without dropping a session. A bad file keeps the
 * old certificates in service. */
static void parent_reload_tls(const struct config *cfg, struct parent_kids *k)
{
    struct buf tls = BUF_INIT, err = BUF_INIT;
    if (tls_material_read(cfg, &tls, &err) < 0) {
        log_err("reload: certificates not reloaded: %s", err.data ? err.data : "");
    } else if (k->ctl >= 0) {
        int rc = ipc_send_sync(k->ctl, IPC_TLS_RELOAD, &tls);
        if (rc < 0)
            log_err("reload: cannot reach the smtp process: %s", strerror(-rc));
        else
            log_info("reload: certificates passed to the smtp process");
    }
    memset(tls.data, 0, tls.len);
    buf_free(&tls);
    buf_free(&err);
}

int parent_serve(const struct config *cfg)
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

    struct parent_kids k = {0, 0, -1};
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
            parent_reload_tls(cfg, &k);
        }
        int ws;
        pid_t pid;
        int died = 0;
        while ((pid = waitpid(-1, &ws, WNOHANG)) > 0) {
            const char *who = pid == k.net ? "smtp" : pid == k.queue ? "queue" : NULL;
            if (who == NULL)
                continue;
            if (WIFSIGNALED(ws))
                log_err("%s process %ld killed by signal %d", who, (long)pid, WTERMSIG(ws));
            else
                log_err("%s process %ld exited with status %d", who, (long)pid,
                        WEXITSTATUS(ws));
            if (pid == k.net)
                k.net = 0;
            else
                k.queue = 0;
            died = 1;
        }
        if (!died || parent_stop_sig)
            continue;
        /* The two children share one socketpair: restart both. The spool
         * is the truth, so a restarted queue picks up where it was. */
        parent_stop_kids(&k);
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
        log_warn("restarting the smtp and queue processes");
        /* A restarted net process starts with the latest certificates. */
        struct buf fresh = BUF_INIT, ferr = BUF_INIT;
        if (tls_material_read(cfg, &fresh, &ferr) == 0) {
            buf_free(&tls);
            tls = fresh;
        } else {
            buf_free(&fresh);
        }
        buf_free(&ferr);
        if (parent_spawn(cfg, ls, nls, &tls, &k) < 0) {
            status = 1;
            break;
        }
    }
    parent_stop_kids(&k);
    memset(tls.data, 0, tls.len);
    buf_free(&tls);
    for (size_t i = 0; i < nls; i++)
        close(ls[i].fd);
    log_info("terminating on signal %d", (int)parent_stop_sig);
    return status;
}
