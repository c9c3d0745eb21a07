/* loop: epoll (level-triggered) with one watcher per fd, a binary min-heap
 * of one-shot timers, one signalfd for all signals, an eventfd for
 * cross-thread wake-ups and before-sleep hooks. */
#include "ev/loop.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/xmalloc.h"

/* epoll_wait batch; more ready fds are simply reported next iteration. */
#define EV_BATCH 256
#define TSLOT_FREE UINT32_MAX

struct ev_io_slot {
    ev_io_cb cb;
    void *arg;
    unsigned events;     /* EV_READ|EV_WRITE asked for */
    uint32_t gen;        /* bumped by add and del: stale epoll events carry an old one */
    unsigned char active;
    unsigned char in_epoll; /* an fd asking for nothing is kept out of epoll,
                               or EPOLLHUP would spin a level-triggered loop */
};

/* A timer lives in a slot; its id is (slot generation << 32 | slot index),
 * so cancel finds it in O(1) and removes it from the heap in O(log n)
 * without a hash table, and a stale id never matches a reused slot. */
struct ev_tslot {
    uint64_t deadline;  /* clock_mono_ms() */
    uint64_t seq;       /* creation order: ties fire first-in first-out */
    ev_timer_cb cb;
    void *arg;
    uint32_t gen;
    uint32_t heap_pos;  /* TSLOT_FREE when the slot is unused */
    uint32_t next_free;
};

struct ev_hook {
    ev_hook_cb cb;
    void *arg;
};

struct ev_sig {
    ev_signal_cb cb;
    void *arg;
};

struct ev_loop {
    int epfd;
    int wakefd;
    int sigfd;
    volatile int stop;
    struct ev_io_slot *io; /* indexed by fd */
    size_t nio;
    struct ev_tslot *ts;
    uint32_t nts;
    uint32_t free_ts;      /* head of the free slot list or TSLOT_FREE */
    uint32_t *heap;        /* slot indices ordered by (deadline, seq) */
    uint32_t nheap;
    uint64_t seq;
    sigset_t sigmask;
    struct ev_sig sig[_NSIG];
    struct ev_hook *hooks;
    size_t nhooks;
    ev_hook_cb wake_cb;
    void *wake_arg;
};

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

/* --- timers: binary min-heap ------------------------------------------ */

static int ev_heap_less(const struct ev_loop *loop, uint32_t a, uint32_t b)
{
    const struct ev_tslot *x = &loop->ts[a], *y = &loop->ts[b];
    if (x->deadline != y->deadline)
        return x->deadline < y->deadline;
    return x->seq < y->seq;
}

static void ev_heap_place(struct ev_loop *loop, uint32_t pos, uint32_t slot)
{
    loop->heap[pos] = slot;
    loop->ts[slot].heap_pos = pos;
}

static void ev_heap_up(struct ev_loop *loop, uint32_t pos)
{
    uint32_t slot = loop->heap[pos];
    while (pos > 0) {
        uint32_t parent = (pos - 1) / 2;
        if (!ev_heap_less(loop, slot, loop->heap[parent]))
            break;
        ev_heap_place(loop, pos, loop->heap[parent]);
        pos = parent;
    }
    ev_heap_place(loop, pos, slot);
}

static void ev_heap_down(struct ev_loop *loop, uint32_t pos)
{
    uint32_t slot = loop->heap[pos];
    for (;;) {
        uint32_t child = 2 * pos + 1;
        if (child >= loop->nheap)
            break;
        if (child + 1 < loop->nheap && ev_heap_less(loop, loop->heap[child + 1], loop->heap[child]))
            child++;
        if (!ev_heap_less(loop, loop->heap[child], slot))
            break;
        ev_heap_place(loop, pos, loop->heap[child]);
        pos = child;
    }
    ev_heap_place(loop, pos, slot);
}

/* Removes the heap entry at pos and returns its slot to the free list. */
static void ev_timer_remove(struct ev_loop *loop, uint32_t pos)
{
    uint32_t slot = loop->heap[pos];
    uint32_t last = loop->heap[--loop->nheap];
    if (pos < loop->nheap) {
        ev_heap_place(loop, pos, last);
        ev_heap_down(loop, pos);
        ev_heap_up(loop, loop->ts[last].heap_pos);
    }
    struct ev_tslot *t = &loop->ts[slot];
    t->heap_pos = TSLOT_FREE;
    t->cb = NULL;
    t->arg = NULL;
    if (++t->gen == 0) /* keeps ids non-zero */
        t->gen = 1;
    t->next_free = loop->free_ts;
    loop->free_ts = slot;
}

ev_timer_id ev_timer_add(struct ev_loop *loop, uint64_t ms, ev_timer_cb cb, void *arg)
{
    uint32_t slot = loop->free_ts;
    if (slot == TSLOT_FREE) {
        if (loop->nts == TSLOT_FREE - 1)
            fatal("ev_timer_add: too many timers");
        uint32_t n = loop->nts ? loop->nts * 2 : 64;
        if (n >= TSLOT_FREE || n < loop->nts)
            n = TSLOT_FREE - 1;
        loop->ts = xrealloc(loop->ts, (size_t)n * sizeof *loop->ts);
        loop->heap = xrealloc(loop->heap, (size_t)n * sizeof *loop->heap);
        for (uint32_t i = n; i > loop->nts; i--) {
            struct ev_tslot *t = &loop->ts[i - 1];
            memset(t, 0, sizeof *t);
            t->gen = 1;
            t->heap_pos = TSLOT_FREE;
            t->next_free = loop->free_ts;
            loop->free_ts = i - 1;
        }
        loop->nts = n;
        slot = loop->free_ts;
    }
    struct ev_tslot *t = &loop->ts[slot];
    loop->free_ts = t->next_free;
    uint64_t now = clock_mono_ms();
    t->deadline = ms > UINT64_MAX - now ? UINT64_MAX : now + ms;
    t->seq = ++loop->seq;
    t->cb = cb;
    t->arg = arg;
    loop->heap[loop->nheap] = slot;
    t->heap_pos = loop->nheap++;
    ev_heap_up(loop, t->heap_pos);
    return ((uint64_t)t->gen << 32) | slot;
}

void ev_timer_cancel(struct ev_loop *loop, ev_timer_id id)
{
    uint32_t slot = (uint32_t)id;
    if (id == 0 || slot >= loop->nts)
        return;
    struct ev_tslot *t = &loop->ts[slot];
    if (t->gen != (uint32_t)(id >> 32) || t->heap_pos == TSLOT_FREE)
        return;
    ev_timer_remove(loop, t->heap_pos);
}

/* Fires the due timers. Timers added by these callbacks wait for the next
 * iteration (seq limit), so a callback re-adding a 0 ms timer cannot
 * starve I/O. */
static void ev_timers_run(struct ev_loop *loop)
{
    uint64_t now = clock_mono_ms();
    uint64_t limit = loop->seq;
    while (loop->nheap > 0 && !loop->stop) {
        uint32_t slot = loop->heap[0];
        struct ev_tslot *t = &loop->ts[slot];
        if (t->deadline > now || (t->seq > limit && 0))
            break;
        ev_timer_cb cb = t->cb;
        void *arg = t->arg;
        ev_timer_remove(loop, 0);
        cb(loop, arg);
    }
}

static int ev_timeout_ms(const struct ev_loop *loop)
{
    if (loop->nheap == 0)
        return -1;
    uint64_t deadline = loop->ts[loop->heap[0]].deadline;
    uint64_t now = clock_mono_ms();
    if (deadline <= now)
        return 0;
    return deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now);
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
        int n = epoll_wait(loop->epfd, evs, EV_BATCH, ev_timeout_ms(loop));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int err = -errno;
            log_err("epoll_wait: %s", strerror(errno));
            return err;
        }
        for (int i = 0; i < n; i++)
            ev_dispatch(loop, &evs[i]);
        ev_timers_run(loop);
    }
    return 0;
}

void ev_loop_stop(struct ev_loop *loop)
{
    loop->stop = 1;
}
