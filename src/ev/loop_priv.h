/* loop_priv: the loop's state, shared by loop.c (fds, signals, the run
 * loop) and loop_timer.c (the timer heap). Only ev/ includes this. */
#ifndef TERN_EV_LOOP_PRIV_H
#define TERN_EV_LOOP_PRIV_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "ev/loop.h"

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

/* Fires the due timers (loop_timer.c). */
void ev_timer_run_due(struct ev_loop *loop);
/* epoll_wait()'s timeout for "no timer": wait until an fd is ready. */
#define EV_WAIT_FOREVER (-1)
/* The epoll_wait timeout until the nearest timer: EV_WAIT_FOREVER for none. */
int ev_timer_next_wait(const struct ev_loop *loop);

#endif
