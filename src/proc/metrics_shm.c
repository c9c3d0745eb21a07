/* metrics_shm.c: the shared counter regions (metrics_shm.h). */
#include "proc/metrics_shm.h"

#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/log.h"

static struct metrics_shm metrics_shm_private;

struct metrics_shm *metrics_shm = &metrics_shm_private;
struct qmetrics *metrics_qshm;
static _Atomic uint64_t metrics_open_private[METRICS_ROLES];
_Atomic uint64_t *metrics_open = metrics_open_private;
static _Atomic uint64_t metrics_stress_private;
static _Atomic uint64_t *metrics_stress = &metrics_stress_private;

/* The region is shared between processes: the counters must be atomic
 * instructions on the memory itself, never a lock inside the process. */
_Static_assert(ATOMIC_LONG_LOCK_FREE == 2 || ATOMIC_LLONG_LOCK_FREE == 2,
               "64-bit atomics must be lock-free for a shared mapping");

static void *metrics_shm_map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

int metrics_shm_create(void)
{
    if (metrics_shm != &metrics_shm_private)
        return 0; /* made once: counters survive the children's restarts */
    /* Anonymous mappings are zero-filled: every counter starts at 0, and
     * pages of the domain table nobody touches cost no memory. */
    struct metrics_shm *n = metrics_shm_map(sizeof *n);
    if (n == NULL)
        return -errno;
    struct qmetrics *q = metrics_shm_map(sizeof *q);
    if (q == NULL) {
        int e = errno;
        munmap(n, sizeof *n);
        return -e;
    }
    metrics_shm = n;
    metrics_qshm = q;
    return 0;
}

/* Is pid a live process? EPERM: alive, under another user (the net
 * process runs unprivileged). */
static int metrics_pid_alive(int pid)
{
    return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

void metrics_shm_net_start(void)
{
    int self = (int)getpid();
    for (unsigned s = 0; s < METRICS_NET_SLOTS; s++) {
        struct metrics_net_slot *slot = &metrics_shm->net[s];
        int pid = atomic_load(&slot->pid);
        /* Our own pid there is a dead predecessor's: pids are reused. */
        if (pid != self && metrics_pid_alive(pid))
            continue;
        /* The compare-and-swap settles a race between two starting
         * processes; the loser tries the next slot. */
        if (!atomic_compare_exchange_strong(&slot->pid, &pid, self))
            continue;
        for (unsigned i = 0; i < METRICS_ROLES; i++)
            atomic_store_explicit(&slot->open[i], 0, memory_order_relaxed);
        atomic_store_explicit(&slot->stress, 0, memory_order_relaxed);
        metrics_open = slot->open;
        metrics_stress = &slot->stress;
        break;
    }
    if (metrics_open == metrics_open_private && metrics_shm != &metrics_shm_private)
        log_warn("metrics: no free slot for this smtp process's open-session gauge");
    if (metrics_qshm) {
        munmap(metrics_qshm, sizeof *metrics_qshm);
        metrics_qshm = NULL;
    }
}

void metrics_shm_drop_all(void)
{
    if (metrics_qshm) {
        munmap(metrics_qshm, sizeof *metrics_qshm);
        metrics_qshm = NULL;
    }
    if (metrics_shm != &metrics_shm_private) {
        munmap(metrics_shm, sizeof *metrics_shm);
        metrics_shm = &metrics_shm_private;
    }
}

uint64_t metrics_shm_open(unsigned r)
{
    uint64_t n = 0;
    for (unsigned s = 0; s < METRICS_NET_SLOTS; s++) {
        const struct metrics_net_slot *slot = &metrics_shm->net[s];
        if (metrics_pid_alive(atomic_load(&slot->pid)))
            n += metrics_get(&slot->open[r]);
    }
    return n;
}

void metrics_shm_set_stress(int on)
{
    atomic_store_explicit(metrics_stress, on ? 1 : 0, memory_order_relaxed);
}

uint64_t metrics_shm_stress(void)
{
    for (unsigned s = 0; s < METRICS_NET_SLOTS; s++) {
        const struct metrics_net_slot *slot = &metrics_shm->net[s];
        if (metrics_pid_alive(atomic_load(&slot->pid)) && metrics_get(&slot->stress))
            return 1;
    }
    return 0;
}
