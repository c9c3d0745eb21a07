/* metrics_shm: the net process's counters, in one shared anonymous memory
 * region that the parent maps before it forks (docs/design.md: the queue
 * process owns metrics, the net process only counts). The net process
 * only increments (relaxed atomics: no lock, no IPC, nothing measurable
 * per session); the queue process only reads, at scrape time. Made by the
 * parent once, the region outlives restarts of both children, so counters
 * never go back (Prometheus would read a reset as a restart anyway).
 *
 * The layout is fixed: the parent and both children are one binary. */
#ifndef TERN_PROC_METRICS_SHM_H
#define TERN_PROC_METRICS_SHM_H

#include <stdatomic.h>
#include <stdint.h>

#include "conf/config.h"
#include "deliver/relay.h"
#include "queue/queue_metrics.h"

#define METRICS_ROLES 3 /* enum conf_role: mx, submission, smtps */
/* Net processes alive at once: the current one, up to 8 draining after
 * reloads (PARENT_DRAINING_MAX in parent.c), one exited but not reaped
 * yet, and spares. */
#define METRICS_NET_SLOTS 12

enum metrics_auth_result {
    METRICS_AUTH_SUCCESS = 0,
    METRICS_AUTH_FAILURE = 1,  /* wrong credentials (535) */
    METRICS_AUTH_TEMPFAIL = 2, /* the check could not be made (454) */
    METRICS_AUTH_BLOCKED = 3,  /* too many failures (421) */
    METRICS_AUTH_RESULTS = 4,
};

/* Sessions ended by a time limit (proc/net_deadline). */
enum metrics_timeout {
    METRICS_TIMEOUT_IDLE = 0,         /* idle, or timeout_stress under stress */
    METRICS_TIMEOUT_COMMAND_LINE = 1, /* timeout_command_line */
    METRICS_TIMEOUT_DATA_RATE = 2,    /* data_rate_min */
    METRICS_TIMEOUTS = 3,
};

struct metrics_shm {
    /* Connections accepted, including those refused over a limit. */
    _Atomic uint64_t connections[METRICS_ROLES];
    /* Sessions open now, a gauge per net process: each keeps its own
     * slot (claimed at start), so a draining process and its successor
     * do not mix, and the slot of a process that died (its sessions
     * with it) is ignored and later reused. */
    struct metrics_net_slot {
        _Atomic int pid; /* 0 = never used */
        _Atomic uint64_t open[METRICS_ROLES];
        _Atomic uint64_t stress; /* 1 while this process is in stress mode */
    } net[METRICS_NET_SLOTS];
    /* Sessions ended, by role, TLS used (0/1), authenticated (0/1). */
    _Atomic uint64_t sessions[METRICS_ROLES][2][2];
    /* Inbound TLS handshakes by result: [0] completed, [1] failed. */
    _Atomic uint64_t tls[METRICS_ROLES][2];
    _Atomic uint64_t auth[METRICS_ROLES][METRICS_AUTH_RESULTS];
    _Atomic uint64_t relay[RELAY_EVENTS]; /* enum relay_event (deliver/relay.h) */
    _Atomic uint64_t timeouts[METRICS_TIMEOUTS];
    /* DMARC report rows not sent to the queue: its channel was backed up
     * (proc/net_dmarc). */
    _Atomic uint64_t dmarc_rows_dropped;
};

/* The counters. Before metrics_shm_create() (unit tests, check-config)
 * this points at a private zeroed struct, so counting never needs a
 * NULL test. */
extern struct metrics_shm *metrics_shm;
/* The queue process's counters (queue/queue_metrics), a second region:
 * the net process unmaps it at start, so a compromised net process
 * cannot reach what the queue keeps there. NULL until created. */
extern struct qmetrics *metrics_qshm;

/* The parent maps both shared regions (MAP_SHARED|MAP_ANONYMOUS) before
 * its first fork; later calls do nothing. Returns 0 or -errno (then the
 * counters stay private to each process and restart with it). */
int metrics_shm_create(void);

/* Relaxed: the counters order nothing and are read as a snapshot. */
static inline void metrics_inc(_Atomic uint64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static inline void metrics_dec(_Atomic uint64_t *c)
{
    atomic_fetch_sub_explicit(c, 1, memory_order_relaxed);
}

static inline uint64_t metrics_get(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* A role as an index, bounded so a bad value cannot write outside. */
static inline unsigned metrics_role(enum conf_role r)
{
    return (unsigned)r < METRICS_ROLES ? (unsigned)r : 0;
}

/* This net process's open-session gauges (its slot; a private array
 * before metrics_shm_net_start() or when every slot is taken). */
extern _Atomic uint64_t *metrics_open;

/* A process that counts nothing (the delivery process) unmaps both
 * regions: a compromise there cannot forge or zero the counters. */
void metrics_shm_drop_all(void);

/* The net process starts: claims a slot for its gauges, and unmaps the
 * queue's region. */
void metrics_shm_net_start(void);

/* Sessions open now for role r, over the net processes alive. */
uint64_t metrics_shm_open(unsigned r);

/* This net process enters (1) or leaves (0) stress mode. */
void metrics_shm_set_stress(int on);
/* 1 if a live net process is in stress mode. */
uint64_t metrics_shm_stress(void);

#endif
