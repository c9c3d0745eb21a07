/* loop: a small epoll event loop of our own: file descriptors, one-shot
 * timers, signals (signalfd) and before-sleep hooks. Single-threaded;
 * ev_loop_wake() is the one call safe from other threads. */
#ifndef TERN_EV_LOOP_H
#define TERN_EV_LOOP_H

#include <stdint.h>

struct ev_loop;

#define EV_READ 0x1
#define EV_WRITE 0x2
#define EV_ERROR 0x4 /* EPOLLERR/EPOLLHUP: reported with whatever was asked */

typedef void (*ev_io_cb)(struct ev_loop *loop, int fd, unsigned events, void *arg);
typedef void (*ev_timer_cb)(struct ev_loop *loop, void *arg);
typedef void (*ev_signal_cb)(struct ev_loop *loop, int signo, void *arg);
typedef void (*ev_hook_cb)(struct ev_loop *loop, void *arg);

/* Returns a new loop (owned by the caller, ev_loop_free()). */
struct ev_loop *ev_loop_new(void);
void ev_loop_free(struct ev_loop *loop);

/* Watches fd for `events` (EV_READ|EV_WRITE); one watcher per fd.
 * Returns 0 or -errno. */
int ev_io_add(struct ev_loop *loop, int fd, unsigned events, ev_io_cb cb, void *arg);
/* Changes the events watched on fd. Returns 0 or -errno. */
int ev_io_mod(struct ev_loop *loop, int fd, unsigned events);
/* Stops watching fd (does not close it). Safe inside any callback, also
 * for an fd whose event is pending in the current iteration: that event
 * is then not delivered. */
void ev_io_del(struct ev_loop *loop, int fd);

/* Timer ids are never 0 and never reused within a loop's life. */
typedef uint64_t ev_timer_id;
/* Calls cb once, `ms` milliseconds from now. */
ev_timer_id ev_timer_add(struct ev_loop *loop, uint64_t ms, ev_timer_cb cb, void *arg);
/* Cancels a pending timer; a fired, cancelled or 0 id is ignored. */
void ev_timer_cancel(struct ev_loop *loop, ev_timer_id id);

/* Delivers `signo` through the loop (blocked for the thread, read from a
 * signalfd). Returns 0 or -errno. */
int ev_signal_add(struct ev_loop *loop, int signo, ev_signal_cb cb, void *arg);

/* Registers a hook run before each wait, e.g. to free sessions that
 * closed during this iteration. */
void ev_hook_add(struct ev_loop *loop, ev_hook_cb cb, void *arg);

/* Wakes the loop from another thread; `cb` then runs in the loop's
 * thread (registered once with ev_wake_set). */
void ev_wake_set(struct ev_loop *loop, ev_hook_cb cb, void *arg);
void ev_loop_wake(struct ev_loop *loop);

/* Runs until ev_loop_stop(). Returns 0, or -errno on a fatal epoll error. */
int ev_loop_run(struct ev_loop *loop);
void ev_loop_stop(struct ev_loop *loop);

#endif
