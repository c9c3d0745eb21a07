/* loop: epoll (level-triggered) with one watcher per fd, a binary min-heap
 * of one-shot timers, one signalfd for all signals, an eventfd for
 * cross-thread wake-ups and before-sleep hooks. */
#include "ev/loop.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xmalloc.h"
#include "ev/loop_priv.h"

/* epoll_wait batch; more ready fds are simply reported next iteration. */
#define EV_BATCH 256

static uint32_t ev_to_epoll(unsigned events)
{
    return (events & EV_READ ? EPOLLIN : 0u) | (events & EV_WRITE ? EPOLLOUT : 0u);
}

static int ev_epoll_set(struct ev_loop *loop, int fd, struct ev_io_slot *s, int op)
{
    struct epoll_event ee;
    memset(&ee, 0, sizeof ee);
    ee.events = ev_to_epoll(s->events);
    ee.data.u64 = ((uint64_t)s->gen << 32) | (uint32_t)fd;
    if (epoll_ctl(loop->epfd, op, fd, &ee) < 0)
        return -errno;
    return 0;
}

int ev_io_add(struct ev_loop *loop, int fd, unsigned events, ev_io_cb cb, void *arg)
{
    if (fd < 0)
        return -EBADF;
    if ((size_t)fd >= loop->nio) {
        size_t n = loop->nio ? loop->nio : 64;
        while (n <= (size_t)fd)
            n *= 2;
        loop->io = xrealloc(loop->io, n * sizeof *loop->io);
        memset(loop->io + loop->nio, 0, (n - loop->nio) * sizeof *loop->io);
        loop->nio = n;
    }
    struct ev_io_slot *s = &loop->io[fd];
    if (s->active)
        return -EEXIST;
    s->gen++;
    s->cb = cb;
    s->arg = arg;
    s->events = events & (EV_READ | EV_WRITE);
    s->in_epoll = 0;
    if (s->events) {
        int r = ev_epoll_set(loop, fd, s, EPOLL_CTL_ADD);
        if (r < 0)
            return r;
        s->in_epoll = 1;
    }
    s->active = 1;
    return 0;
}

int ev_io_mod(struct ev_loop *loop, int fd, unsigned events)
{
    if (fd < 0 || (size_t)fd >= loop->nio || !loop->io[fd].active)
        return -ENOENT;
    struct ev_io_slot *s = &loop->io[fd];
    unsigned old = s->events;
    s->events = events & (EV_READ | EV_WRITE);
    int r = 0;
    if (s->events == 0) {
        if (s->in_epoll && epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL) < 0)
            r = -errno;
        s->in_epoll = 0;
    } else {
        r = ev_epoll_set(loop, fd, s, s->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD);
        if (r == 0)
            s->in_epoll = 1;
        else
            s->events = old;
    }
    return r;
}

void ev_io_del(struct ev_loop *loop, int fd)
{
    if (fd < 0 || (size_t)fd >= loop->nio || !loop->io[fd].active)
        return;
    struct ev_io_slot *s = &loop->io[fd];
    /* Errors are ignored: the fd may already be closed (then epoll
     * dropped it itself). */
    if (s->in_epoll)
        (void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
    s->active = 0;
    s->in_epoll = 0;
    s->events = 0;
    s->gen++; /* events of this fd still in the current batch are now stale */
}

/* --- signals, wake-ups, hooks ------------------------------------------ */

static void ev_signal_io(struct ev_loop *loop, int fd, unsigned events, void *arg)
{
    struct signalfd_siginfo si;
    for (;;) {
        ssize_t n = read(fd, &si, sizeof si);
        if (n != (ssize_t)sizeof si) {
            if (n < 0 && errno == EINTR)
                continue;
            return;
        }
        if (si.ssi_signo < _NSIG && loop->sig[si.ssi_signo].cb)
            loop->sig[si.ssi_signo].cb(loop, (int)si.ssi_signo, loop->sig[si.ssi_signo].arg);
    }
}

int ev_signal_add(struct ev_loop *loop, int signo, ev_signal_cb cb, void *arg)
{
    if (signo <= 0 || signo >= _NSIG)
        return -EINVAL;
    sigset_t one;
    sigemptyset(&one);
    if (sigaddset(&one, signo) < 0)
        return -errno;
    int r = pthread_sigmask(SIG_BLOCK, &one, NULL);
    if (r != 0)
        return -r;
    sigaddset(&loop->sigmask, signo);
    int fd = signalfd(loop->sigfd, &loop->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (loop->sigfd < 0) {
        r = ev_io_add(loop, fd, EV_READ, ev_signal_io, NULL);
        if (r < 0) {
            close(fd);
            return r;
        }
        loop->sigfd = fd;
    }
    loop->sig[signo].cb = cb;
    loop->sig[signo].arg = arg;
    return 0;
}

void ev_hook_add(struct ev_loop *loop, ev_hook_cb cb, void *arg)
{
    loop->hooks = xrealloc(loop->hooks, (loop->nhooks + 1) * sizeof *loop->hooks);
    loop->hooks[loop->nhooks].cb = cb;
    loop->hooks[loop->nhooks].arg = arg;
    loop->nhooks++;
}

static void ev_wake_io(struct ev_loop *loop, int fd, unsigned events, void *arg)
{
    uint64_t v;
    while (read(fd, &v, sizeof v) < 0 && errno == EINTR)
        ;
    if (loop->wake_cb)
        loop->wake_cb(loop, loop->wake_arg);
}

void ev_wake_set(struct ev_loop *loop, ev_hook_cb cb, void *arg)
{
    loop->wake_cb = cb;
    loop->wake_arg = arg;
}

void ev_loop_wake(struct ev_loop *loop)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is already non-zero: a wake-up is pending. */
    while (write(loop->wakefd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

/* --- the loop ------------------------------------------------------------ */

struct ev_loop *ev_loop_new(void)
{
    struct ev_loop *loop = xcalloc(1, sizeof *loop);
    loop->sigfd = -1;
    loop->free_ts = TSLOT_FREE;
    sigemptyset(&loop->sigmask);
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    loop->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    /* Without these the process cannot work at all: a start-up error. */
    if (loop->epfd < 0 || loop->wakefd < 0)
        fatal("ev_loop_new: %s", strerror(errno));
    int r = ev_io_add(loop, loop->wakefd, EV_READ, ev_wake_io, NULL);
    if (r < 0)
        fatal("ev_loop_new: %s", strerror(-r));
    return loop;
}

void ev_loop_free(struct ev_loop *loop)
{
    if (!loop)
        return;
    /* Signals stay blocked: unblocking now would let a pending SIGTERM
     * take its default action. */
    close(loop->epfd);
    close(loop->wakefd);
    if (loop->sigfd >= 0)
        close(loop->sigfd);
    free(loop->io);
    free(loop->ts);
    free(loop->heap);
    free(loop->hooks);
    free(loop);
}

static void ev_dispatch(struct ev_loop *loop, const struct epoll_event *ee)
{
    int fd = (int)(uint32_t)ee->data.u64;
    uint32_t gen = (uint32_t)(ee->data.u64 >> 32);
    if ((size_t)fd >= loop->nio)
        return;
    struct ev_io_slot *s = &loop->io[fd];
    /* A watcher deleted (or deleted and re-added) earlier in this batch
     * has another generation; one that now asks for nothing gets nothing. */
    if (!s->active || s->gen != gen || s->events == 0)
        return;
    unsigned ev = 0;
    if (ee->events & EPOLLIN)
        ev |= EV_READ;
    if (ee->events & EPOLLOUT)
        ev |= EV_WRITE;
    ev &= s->events;
    if (ee->events & (EPOLLERR | EPOLLHUP))
        ev |= EV_ERROR | s->events; /* let the callback meet the error in read/write */
    if (ev)
        s->cb(loop, fd, ev, s->arg);
}

int ev_loop_run(struct ev_loop *loop)
{
    struct epoll_event evs[EV_BATCH];
    loop->stop = 0;
    for (;;) {
        /* Index each time: a hook may add another hook (realloc). */
        for (size_t i = 0; i < loop->nhooks; i++)
            loop->hooks[i].cb(loop, loop->hooks[i].arg);
        if (loop->stop)
            break;
        int n = epoll_wait(loop->epfd, evs, EV_BATCH, ev_timer_next_wait(loop));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int err = -errno;
            log_err("epoll_wait: %s", strerror(errno));
            return err;
        }
        for (int i = 0; i < n; i++)
            ev_dispatch(loop, &evs[i]);
        ev_timer_run_due(loop);
    }
    return 0;
}

void ev_loop_stop(struct ev_loop *loop)
{
    loop->stop = 1;
}
